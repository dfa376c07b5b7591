//! Losses against PyTorch reference values (tests/fixtures/make_fixtures.py).

mod common;

use common::*;
use contrastive::loss::LossConfig;
use contrastive::score::Score;
use contrastive::views::{PositiveMap, Relation, Tag};

fn two_view_tags(n: usize) -> Vec<Tag> {
    (0..2 * n)
        .map(|i| Tag {
            instance: (i % n) as u32,
            label: 0,
            view: (i / n) as u16,
        })
        .collect()
}

#[test]
fn nt_xent_matches_pytorch_value_and_gradient() {
    let fx = fixture("losses.json");
    for case in fx["nt_xent"].as_array().unwrap() {
        let n = case["n"].as_u64().unwrap() as usize;
        let d = case["dim"].as_u64().unwrap() as usize;
        let temp = case["temperature"].as_f64().unwrap();
        let z = tracked(floats(&case["z"]), 2 * n, d);
        let tags = two_view_tags(n);
        let map = PositiveMap::build(Relation::Instance, &tags, &tags, true);
        let loss = LossConfig {
            kind: "nt-xent".into(),
            score: Score::Cosine,
            temperature: temp,
        }
        .compute(z.clone(), z.clone(), &map)
        .unwrap();
        let value = values(loss.clone())[0];
        let want = case["loss"].as_f64().unwrap() as f32;
        assert!(
            rel_err(&[value], &[want]) < 1e-5,
            "n={n} t={temp}: {value} vs {want}"
        );
        let grads = loss.backward();
        let g = values(z.grad(&grads).unwrap());
        let e = rel_err(&g, &floats(&case["grad_z"]));
        assert!(e < 1e-5, "n={n} t={temp}: gradient relative error {e}");
    }
}
