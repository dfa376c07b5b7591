//! DINO's loss against lightly's `DINOLoss` (tests/fixtures/make_dino_fixture.py): the
//! value, the student's gradient and the moved centre over two calls, the gradient
//! against finite differences, and the teacher-temperature warm-up.

use contrastive::loss::dino::{dino, Dino};
use contrastive::pairs::PositiveMap;

use crate::common::{
    agrees_with_central_differences, fixture, floats, plain, rel_err, tracked, usize_of, values,
};

/// Student rows `[crop, batch]` against teacher rows `[crop, batch]`: a student crop's
/// positives are the teacher crops of its image with another crop index, lightly's pairs.
fn lightly_pairs(students: usize, teachers: usize, b: usize) -> PositiveMap {
    let positives = (0..students * b)
        .map(|r| {
            let (v, i) = (r / b, r % b);
            (0..teachers)
                .filter(|&t| t != v)
                .map(|t| (t * b + i) as u32)
                .collect()
        })
        .collect();
    PositiveMap::new(
        students * b,
        teachers * b,
        positives,
        vec![vec![]; students * b],
    )
    .unwrap()
}

#[test]
fn dino_matches_lightly_value_gradient_and_centre() {
    let f = fixture("dino.json");
    let (b, d) = (usize_of(&f["batch"]), usize_of(&f["dim"]));
    let (ns, nt) = (usize_of(&f["students"]), usize_of(&f["teachers"]));
    let map = lightly_pairs(ns, nt, b);
    let mut center = None;
    for (call, c) in f["calls"].as_array().unwrap().iter().enumerate() {
        let s = floats(&c["student"]);
        let t = floats(&c["teacher"]);
        let before = center.clone();
        let q = tracked(s.clone(), ns * b, d);
        let loss = dino(
            q.clone(),
            plain(t.clone(), nt * b, d),
            &map,
            &mut center,
            0.1,
            0.04,
            0.9,
        )
        .unwrap();
        let got = f64::from(values(loss.clone())[0]);
        let want = c["loss"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-4 * want.abs().max(1.0),
            "call {call}: {got} vs {want}"
        );
        let g = values(q.grad(&loss.backward()).unwrap());
        assert!(
            rel_err(&g, &floats(&c["grad"])) < 1e-4,
            "call {call}: gradient"
        );
        let moved = center.clone().unwrap();
        assert!(
            rel_err(&moved, &floats(&c["center"])) < 1e-5,
            "call {call}: centre"
        );
        let value = |x: &[f32]| {
            let mut held = before.clone();
            let l = dino(
                plain(x.to_vec(), ns * b, d),
                plain(t.clone(), nt * b, d),
                &map,
                &mut held,
                0.1,
                0.04,
                0.9,
            )
            .unwrap();
            f64::from(values(l)[0])
        };
        agrees_with_central_differences(&s, &g, value, "dino");
    }
}

#[test]
fn the_teacher_temperature_warms_up_as_lightly_schedules_it() {
    let s = &fixture("dino.json")["schedule"];
    let cfg = Dino {
        warmup_teacher_temperature: s["warmup"].as_f64().unwrap(),
        teacher_temperature: s["final"].as_f64().unwrap(),
        warmup_epochs: usize_of(&s["epochs"]),
        ..Dino::default()
    };
    for (epoch, want) in s["values"].as_array().unwrap().iter().enumerate() {
        let want = want.as_f64().unwrap();
        let got = cfg.teacher_at(epoch);
        assert!((got - want).abs() < 1e-6, "epoch {epoch}: {got} vs {want}");
    }
}

/// A teacher whose centre was estimated on other outputs is refused, not broadcast.
#[test]
fn a_centre_of_another_width_is_an_error() {
    let map = lightly_pairs(2, 2, 1);
    let mut center = Some(vec![0.0; 3]);
    let e = dino(
        plain(vec![0.0; 4], 2, 2),
        plain(vec![0.0; 4], 2, 2),
        &map,
        &mut center,
        0.1,
        0.04,
        0.9,
    )
    .unwrap_err();
    assert!(e.to_string().contains("centre has 3 dimensions"), "{e}");
}
