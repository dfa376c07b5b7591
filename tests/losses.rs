//! Losses and scores against PyTorch reference values (tests/fixtures/make_fixtures.py,
//! written from the papers' formulas and checked there against lightly and
//! pytorch-metric-learning): values and gradients to 1e-5, relative to the largest
//! reference value.

mod common;

use common::*;
use contrastive::loss::{LossConfig, LossKind, Mining};
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
    }
}

fn usize_of(v: &serde_json::Value) -> usize {
    v.as_u64().unwrap() as usize
}

#[test]
fn every_loss_matches_the_reference_value_and_gradients() {
    let fx = fixture("losses.json");
    let cases = fx["losses"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let name = format!("{} on {} {}", case["kind"], case["map"], case);
        let name = &name[..name.len().min(120)];
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
        let loss = config(case)
            .compute(q.clone(), k.clone(), &map, None)
            .unwrap();
        let value = values(loss.clone());
        let want = case["loss"].as_f64().unwrap() as f32;
        assert!(
            rel_err(&value, &[want]) < 1e-5,
            "{name}: loss {} vs {want}",
            value[0]
        );
        let grads = loss.backward();
        let gq = values(q.grad(&grads).unwrap());
        let e = rel_err(&gq, &floats(&case["grad_q"]));
        assert!(e < 1e-5, "{name}: query gradient relative error {e}");
        if !shared {
            let gk = values(k.grad(&grads).unwrap());
            let e = rel_err(&gk, &floats(&case["grad_k"]));
            assert!(e < 1e-5, "{name}: key gradient relative error {e}");
        }
    }
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
    assert_eq!(checked.len(), 4, "{checked:?}");
}
