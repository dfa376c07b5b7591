//! VICReg, Sinkhorn-Knopp and SwAV against `tests/fixtures/vicreg_swav.json` (float64
//! PyTorch from the papers' formulas, checked there against lightly's `VICRegLoss`,
//! `sinkhorn` and `SwaVLoss`), and their gradients against finite differences.

use burn::prelude::*;
use contrastive::loss::regression::{vicreg, Vicreg};
use contrastive::loss::swav::{sinkhorn, swav, Swav};
use contrastive::pairs::PositiveMap;

use crate::common::{
    agrees_with_central_differences, fixture, floats, plain, rel_err, tracked, usize_of, values,
};

fn weights(case: &serde_json::Value) -> Vicreg {
    let f = |k: &str| case[k].as_f64().expect(k);
    Vicreg {
        invariance: f("sim_weight"),
        variance: f("var_weight"),
        covariance: f("cov_weight"),
        eps: f("eps"),
    }
}

fn settings(case: &serde_json::Value) -> Swav {
    Swav {
        iterations: usize_of(&case["iterations"]),
        epsilon: case["epsilon"].as_f64().expect("epsilon"),
    }
}

#[test]
fn the_fixture_script_checked_itself_against_lightly() {
    let fx = fixture("vicreg_swav.json");
    let checked: Vec<&str> = fx["checked"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for want in [
        "vicreg = lightly VICRegLoss",
        "sinkhorn = lightly sinkhorn",
        "swav = lightly SwaVLoss",
    ] {
        assert!(checked.contains(&want), "{want} in {checked:?}");
    }
}

#[test]
fn vicreg_matches_the_reference_value_and_gradients() {
    let fx = fixture("vicreg_swav.json");
    for case in fx["vicreg"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (n, d) = (usize_of(&case["n"]), usize_of(&case["d"]));
        let (a, b) = (
            tracked(floats(&case["a"]), n, d),
            tracked(floats(&case["b"]), n, d),
        );
        let map = PositiveMap::paired(n);
        let loss = vicreg(a.clone(), b.clone(), &map, &weights(case)).unwrap();
        let want = case["loss"].as_f64().unwrap();
        let got = f64::from(values(loss.clone())[0]);
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{name}: loss {got} vs {want}"
        );
        let grads = loss.backward();
        for (t, key) in [(&a, "grad_a"), (&b, "grad_b")] {
            let g = values(t.grad(&grads).unwrap());
            let e = rel_err(&g, &floats(&case[key]));
            assert!(e < 1e-3, "{name}: {key} relative error {e}");
        }
    }
}

#[test]
fn sinkhorn_codes_match_the_reference() {
    let fx = fixture("vicreg_swav.json");
    for case in fx["sinkhorn"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (r, c) = (usize_of(&case["rows"]), usize_of(&case["cols"]));
        let got = sinkhorn(&floats(&case["scores"]), r, c, &settings(case));
        let e = rel_err(&got, &floats(&case["codes"]));
        assert!(e < 1e-5, "{name}: codes relative error {e}");
    }
}

#[test]
fn swav_matches_the_reference_value_and_gradients() {
    let fx = fixture("vicreg_swav.json");
    let mut ran = 0;
    for case in fx["swav"].as_array().unwrap() {
        if !case["queue"].is_null() {
            continue; // no queue here: the trainer's SwAV scores the batch's crops alone
        }
        let name = case["name"].as_str().unwrap();
        let (b, k) = (usize_of(&case["rows"]), usize_of(&case["prototypes"]));
        let crops: Vec<Tensor<2>> = case["crops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| tracked(floats(c), b, k))
            .collect();
        let t = case["temperature"].as_f64().unwrap();
        let loss = swav(&crops, usize_of(&case["high"]), t, &settings(case)).unwrap();
        let want = case["loss"].as_f64().unwrap();
        let got = f64::from(values(loss.clone())[0]);
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{name}: {got} vs {want}"
        );
        let grads = loss.backward();
        for (i, (c, g)) in crops
            .iter()
            .zip(case["grad_crops"].as_array().unwrap())
            .enumerate()
        {
            let want = floats(g);
            // a crop that is only a target takes no part in the graph: no gradient at all
            let got = c.grad(&grads).map_or(vec![0.0; b * k], values);
            if want.iter().all(|v| *v == 0.0) {
                assert!(
                    got.iter().all(|v| v.abs() < 1e-7),
                    "{name}: crop {i} is only a target"
                );
            } else {
                let e = rel_err(&got, &want);
                assert!(e < 1e-3, "{name}: crop {i} gradient relative error {e}");
            }
        }
        ran += 1;
    }
    assert!(ran >= 3, "{ran} SwAV cases without a queue");
}

/// Central differences of VICReg agree with its autodiff gradient (away from the variance
/// hinge's kink, which these inputs do not reach).
#[test]
fn vicreg_gradients_match_finite_differences() {
    let (n, d) = (5, 3);
    let a: Vec<f32> = (0..n * d)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 19.0)
        .collect();
    let b: Vec<f32> = (0..n * d)
        .map(|i| ((i * 17 % 19) as f32 - 9.0) / 17.0)
        .collect();
    let map = PositiveMap::paired(n);
    let w = Vicreg::default();
    let f = |a: &[f32], b: &[f32]| -> f64 {
        let l = vicreg(plain(a.to_vec(), n, d), plain(b.to_vec(), n, d), &map, &w).unwrap();
        f64::from(values(l)[0])
    };
    let (ta, tb) = (tracked(a.clone(), n, d), tracked(b.clone(), n, d));
    let grads = vicreg(ta.clone(), tb.clone(), &map, &w).unwrap().backward();
    let (ga, gb) = (
        values(ta.grad(&grads).unwrap()),
        values(tb.grad(&grads).unwrap()),
    );
    agrees_with_central_differences(&a, &ga, |x| f(x, &b), "da");
    agrees_with_central_differences(&b, &gb, |x| f(&a, x), "db");
}

/// Central differences of SwAV (codes held fixed, as the method detaches them) agree with
/// its autodiff gradient.
#[test]
fn swav_gradients_match_finite_differences() {
    let (b, k, v) = (4, 3, 3);
    let data: Vec<Vec<f32>> = (0..v)
        .map(|c| {
            (0..b * k)
                .map(|i| (((i + 7 * c) * 29 % 31) as f32 - 15.0) / 16.0)
                .collect()
        })
        .collect();
    let s = Swav::default();
    // Perturbing a high crop also moves its codes; differentiate the low crop only, and
    // the high crops through their predictions with the codes of the unperturbed scores.
    let f = |low: &[f32]| -> f64 {
        let crops = vec![
            plain(data[0].clone(), b, k),
            plain(data[1].clone(), b, k),
            plain(low.to_vec(), b, k),
        ];
        f64::from(values(swav(&crops, 2, 0.5, &s).unwrap())[0])
    };
    let crops: Vec<Tensor<2>> = data.iter().map(|d| tracked(d.clone(), b, k)).collect();
    let grads = swav(&crops, 2, 0.5, &s).unwrap().backward();
    let g = values(crops[2].grad(&grads).unwrap());
    agrees_with_central_differences(&data[2], &g, f, "low crop");
}

#[test]
fn swav_refuses_too_few_crops_with_a_message() {
    let one = vec![plain(vec![0.0; 6], 2, 3)];
    let e = swav(&one, 1, 0.1, &Swav::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least two crops"), "{e}");
}
