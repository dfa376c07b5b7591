//! Losses and scores against PyTorch reference values (tests/fixtures/make_fixtures.py,
//! written from the papers' formulas and checked there against lightly and
//! pytorch-metric-learning): values and gradients to 1e-5, relative to the largest
//! reference value.

use crate::common::*;
use contrastive::kernels;
use contrastive::loss::masks::masked_logsumexp;
use contrastive::loss::{LossConfig, LossKind, Mining, NceZ};
use contrastive::score::{score_matrix, Bilinear, Score};
use contrastive::views::PositiveMap;

fn parse<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> T {
    serde_json::from_value(v.clone()).expect("fixture field")
}

fn config(case: &serde_json::Value) -> LossConfig {
    LossConfig {
        kind: parse::<LossKind>(&case["kind"]),
        score: parse::<Score>(&case["score"]),
        temperature: case["temperature"].as_f64().unwrap(),
        margin: case["margin"].as_f64().unwrap(),
        mining: parse::<Mining>(&case["mining"]),
        mining_warmup_epochs: 0,
        normalize: case["normalize"].as_bool().unwrap(),
        tau_plus: case["tau_plus"].as_f64().unwrap(),
        beta: case["beta"].as_f64().unwrap(),
        weight: case["weight"].as_f64().unwrap(),
        lambda: case["lambda"].as_f64().unwrap(),
        soft_margin: case["soft_margin"].as_bool().unwrap(),
        selective: case["selective"].as_bool().unwrap(),
        exclude_false_negatives: false,
        nce_z: parse::<NceZ>(&case["nce_z"]),
        ..LossConfig::default()
    }
}

/// Computes `case` and compares loss and gradients with its reference: the largest error
/// relative to the larger of `floor` and the largest reference value must stay below
/// `tol` (and the loss within `loss_rtol` of its own value, where the case sets one).
fn check_case(case: &serde_json::Value, tol: f64, floor: f64, what: &str) {
    let name = format!("{what}: {} {}", case["kind"], case);
    let name = &name[..name.len().min(140)];
    let (rows, cols, dim) = (
        usize_of(&case["rows"]),
        usize_of(&case["cols"]),
        usize_of(&case["dim"]),
    );
    let shared = case["shared"].as_bool().unwrap();
    let map = PositiveMap::from_dense(
        rows,
        cols,
        &floats(&case["positive"]),
        &floats(&case["candidate"]),
    )
    .unwrap();
    let q = tracked(floats(&case["q"]), rows, dim);
    let k = if shared {
        q.clone()
    } else {
        tracked(floats(&case["k"]), cols, dim)
    };
    let loss = config(case).compute(q.clone(), k.clone(), &map).unwrap();
    let err = |got: &[f32], want: &[f32]| {
        assert_eq!(got.len(), want.len(), "{name}: length");
        let scale = want
            .iter()
            .fold(floor.max(1e-30), |m, &w| m.max(f64::from(w).abs()));
        let diff = got.iter().zip(want).fold(0f64, |m, (&g, &w)| {
            m.max((f64::from(g) - f64::from(w)).abs())
        });
        diff / scale
    };
    let value = values(loss.clone());
    let want = case["loss"].as_f64().unwrap() as f32;
    assert!(
        err(&value, &[want]) < tol,
        "{name}: loss {} vs {want}",
        value[0]
    );
    if let Some(rtol) = case["loss_rtol"].as_f64() {
        let rel = (f64::from(value[0]) - f64::from(want)).abs() / f64::from(want).abs();
        assert!(
            rel < rtol,
            "{name}: loss {} vs {want}, {rel} of it",
            value[0]
        );
    }
    let grads = loss.backward();
    let gq = values(q.grad(&grads).unwrap());
    let e = err(&gq, &floats(&case["grad_q"]));
    assert!(
        e < tol,
        "{name}: query gradient error {e}: {gq:?} vs {:?}",
        floats(&case["grad_q"])
    );
    if !shared {
        let gk = values(k.grad(&grads).unwrap());
        let e = err(&gk, &floats(&case["grad_k"]));
        assert!(e < tol, "{name}: key gradient error {e}");
    }
}

#[test]
fn every_loss_matches_the_reference_value_and_gradients() {
    let fx = fixture("losses.json");
    let cases = fx["losses"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        check_case(case, 1e-5, 0.0, case["map"].as_str().unwrap());
    }
}

/// Near-duplicate rows, scores beyond -1e9 and a small loss at a low temperature, with the
/// fast kernels on and off (tests/fixtures/make_fixtures.py, `edge_cases`).
#[test]
fn losses_stay_exact_at_the_edges() {
    let _serial = crate::common::serial();
    let fx = fixture("losses.json");
    let cases = fx["edges"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for on in [true, false] {
        kernels::set_enabled(on);
        for case in cases {
            let name = format!("{} (kernels {on})", case["name"].as_str().unwrap());
            check_case(case, case["tol"].as_f64().unwrap(), 1.0, &name);
        }
    }
    kernels::set_enabled(true);
}

#[test]
fn distances_have_the_zero_subgradient_where_rows_coincide() {
    let q = tracked(vec![0.5, -0.25, 0.5, -0.25, 1.0, 2.0], 3, 2);
    let d = contrastive::score::distances(q.clone(), q.clone());
    let dv = values(d.clone());
    assert!(dv[1].abs() < 1e-12 && dv[0].abs() < 1e-12, "{dv:?}");
    let grads = d.sum().backward();
    let g = values(q.grad(&grads).unwrap());
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    // rows 0 and 1 coincide: their pair adds nothing; each is pulled by row 2 alone,
    // twice (as query and as key): 2 (x - x2) / |x - x2|
    let (dx, dy) = (0.5f32 - 1.0, -0.25f32 - 2.0);
    let n = (dx * dx + dy * dy).sqrt();
    for r in 0..2 {
        assert!((g[2 * r] - 2.0 * dx / n).abs() < 1e-5, "{g:?}");
        assert!((g[2 * r + 1] - 2.0 * dy / n).abs() < 1e-5, "{g:?}");
    }
}

#[test]
fn a_row_with_every_entry_masked_sums_to_minus_infinity_with_zero_gradient() {
    use burn::tensor::{Bool, TensorData};
    let x = tracked(vec![1.0, 2.0, 3.0, -4.0, 5.0, 6.0], 2, 3);
    let device = x.device();
    let mask = burn::prelude::Tensor::<2, Bool>::from_data(
        TensorData::new(vec![false, true, false, true, true, true], [2, 3]),
        &device,
    );
    let lse = masked_logsumexp(x.clone(), mask);
    let v = values(lse.clone());
    let want = (1f64.exp() + 3f64.exp()).ln() as f32;
    assert!((v[0] - want).abs() < 1e-6, "{v:?}");
    assert_eq!(v[1], f32::NEG_INFINITY);
    // only the finite row feeds the loss
    let grads = lse.slice([0..1, 0..1]).sum().backward();
    let g = values(x.grad(&grads).unwrap());
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    assert_eq!(&g[3..], &[0.0, 0.0, 0.0]);
    assert!((g[0] + g[2] - 1.0).abs() < 1e-6 && g[1] == 0.0, "{g:?}");
}

#[test]
fn every_score_matches_the_reference() {
    let fx = fixture("losses.json");
    for case in fx["scores"].as_array().unwrap() {
        let score = parse::<Score>(&case["score"]);
        let q = tracked(floats(&case["q"]), 5, 4);
        let k = tracked(floats(&case["k"]), 7, 4);
        let w = tracked(floats(&case["w"]), 4, 4);
        let bilinear = Bilinear {
            w: burn::module::Param::from_tensor(w.clone()),
        };
        let r = tracked(floats(&case["r"]), 5, 7).detach();
        let s = score_matrix(
            score,
            q.clone(),
            k.clone(),
            case["temperature"].as_f64().unwrap(),
            Some(&bilinear),
        )
        .unwrap();
        assert!(
            rel_err(&values(s.clone()), &floats(&case["scores"])) < 1e-5,
            "{score:?} values"
        );
        let grads = (s * r).sum().backward();
        assert!(
            rel_err(&values(q.grad(&grads).unwrap()), &floats(&case["grad_q"])) < 1e-5,
            "{score:?} dq"
        );
        assert!(
            rel_err(&values(k.grad(&grads).unwrap()), &floats(&case["grad_k"])) < 1e-5,
            "{score:?} dk"
        );
        if score == Score::Bilinear {
            let gw = values(bilinear.w.val().grad(&grads).unwrap());
            assert!(rel_err(&gw, &floats(&case["grad_w"])) < 1e-5, "bilinear dW");
        }
    }
}

#[test]
fn the_fixture_script_checked_itself_against_the_libraries() {
    let fx = fixture("losses.json");
    let checked: Vec<String> = fx["library_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(checked.len(), 6, "{checked:?}");
}
