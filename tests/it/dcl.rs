//! DCL and DCLW against `tests/fixtures/dcl.json` (float64 PyTorch from the paper's
//! equation 6, checked there against lightly's `DCLLoss` and `DCLWLoss`), and their
//! gradients against finite differences.

use burn::prelude::*;
use contrastive::loss::infonce::Dclw;
use contrastive::loss::{LossConfig, LossKind};
use contrastive::pairs::PositiveMap;

use crate::common::{
    agrees_with_central_differences, fixture, floats, plain, rel_err, tracked, usize_of, values,
};

fn config(case: &serde_json::Value) -> LossConfig {
    LossConfig {
        kind: match case["kind"].as_str() {
            Some("dcl") => LossKind::Dcl,
            _ => LossKind::Dclw,
        },
        temperature: case["temperature"].as_f64().unwrap(),
        dclw: Dclw {
            sigma: case["sigma"].as_f64().unwrap(),
        },
        ..LossConfig::default()
    }
}

/// The loss of rows `z` (`2n x d`: both views) under `cfg`, two views of `n` samples.
fn loss(cfg: &LossConfig, z: Tensor<2>, n: usize) -> Tensor<1> {
    cfg.compute(z.clone(), z, &PositiveMap::two_views(n))
        .unwrap()
}

#[test]
fn dcl_and_dclw_match_lightly_values_and_gradients() {
    let fx = fixture("dcl.json");
    for case in fx["cases"].as_array().unwrap() {
        let (n, d) = (usize_of(&case["n"]), usize_of(&case["d"]));
        let cfg = config(case);
        let z = tracked(floats(&case["z"]), 2 * n, d);
        let l = loss(&cfg, z.clone(), n);
        let got = values(l.clone())[0];
        let want = case["loss"].as_f64().unwrap();
        assert!(
            (f64::from(got) - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{:?}: {got} vs {want} (lightly {})",
            cfg.kind,
            case["lightly"]
        );
        let g = values(z.grad(&l.backward()).unwrap());
        let e = rel_err(&g, &floats(&case["grad"]));
        assert!(e < 1e-4, "{:?}: gradient off by {e}", cfg.kind);
    }
}

/// DCL only: DCLW's weights carry no gradient (lightly and the paper's code detach them),
/// so its finite differences would include a term the method drops; its gradient is
/// checked against the fixture above.
#[test]
fn dcl_gradients_match_finite_differences() {
    let fx = fixture("dcl.json");
    let cases = fx["cases"].as_array().unwrap();
    for case in cases.iter().filter(|c| c["kind"] == "dcl") {
        let (n, d) = (usize_of(&case["n"]), usize_of(&case["d"]));
        let cfg = config(case);
        let x = floats(&case["z"]);
        let z = tracked(x.clone(), 2 * n, d);
        let l = loss(&cfg, z.clone(), n);
        let g = values(z.grad(&l.backward()).unwrap());
        let f = |v: &[f32]| f64::from(values(loss(&cfg, plain(v.to_vec(), 2 * n, d), n))[0]);
        agrees_with_central_differences(&x, &g, f, &format!("{:?}", cfg.kind));
    }
}

#[test]
fn the_positive_leaves_the_denominator() {
    // one sample's two views identical and far from the other sample: InfoNCE's loss
    // goes to 0, DCL's goes to -1/t (the positive's score, no log(1 + ...) left)
    let z = plain(vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0], 4, 2);
    let dcl = LossConfig {
        kind: LossKind::Dcl,
        temperature: 0.1,
        ..LossConfig::default()
    };
    let v = values(loss(&dcl, z, 2))[0];
    // each anchor: -1/0.1 + log(e^0 + e^0) over its two orthogonal negatives
    let want = -10.0 + 2f32.ln();
    assert!((v - want).abs() < 1e-4, "{v} vs {want}");
}

#[test]
fn dclw_sigma_is_checked_and_only_dclw_reads_it() {
    let parse = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        contrastive::config::Config::parse("", std::path::Path::new("x.toml"), &sets)
            .map_err(|e| e.to_string())
    };
    let e = parse(&["loss.kind=\"dclw\"", "loss.dclw.sigma=0"]).unwrap_err();
    assert!(e.contains("loss.dclw.sigma"), "{e}");
    let e = parse(&["loss.kind=\"dcl\"", "loss.dclw.sigma=0.3"]).unwrap_err();
    assert!(e.contains("does not read it"), "{e}");
    assert!(parse(&["loss.kind=\"dclw\"", "loss.dclw.sigma=0.3"]).is_ok());
}
