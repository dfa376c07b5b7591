//! SimSiam's negative cosine against lightly's `NegativeCosineSimilarity`, symmetrised as
//! SimSiam trains (tests/fixtures/make_neg_cosine_fixture.py), and its gradient against
//! finite differences.

use contrastive::loss::{LossConfig, LossKind};
use contrastive::pairs::PositiveMap;

use crate::common::{
    agrees_with_central_differences, fixture, floats, plain, rel_err, tracked, usize_of, values,
};

/// The keys of rows `[view 0, view 1]` swapped, so that row `i` of the predictions pairs
/// with row `i` of the keys: view 0 predicts view 1 and back.
fn swapped(z: &[f32], n: usize, d: usize) -> Vec<f32> {
    [&z[n * d..], &z[..n * d]].concat()
}

#[test]
fn neg_cosine_matches_lightly_value_and_gradient() {
    let cfg = LossConfig {
        kind: LossKind::NegCosine,
        ..LossConfig::default()
    };
    for case in fixture("neg_cosine.json")["cases"].as_array().unwrap() {
        let (n, d) = (usize_of(&case["n"]), usize_of(&case["d"]));
        let p = floats(&case["p"]);
        let k = swapped(&floats(&case["z"]), n, d);
        let q = tracked(p.clone(), 2 * n, d);
        let loss = cfg
            .compute(
                q.clone(),
                plain(k.clone(), 2 * n, d),
                &PositiveMap::paired(2 * n),
            )
            .unwrap();
        let got = values(loss.clone())[0];
        let want = case["loss"].as_f64().unwrap();
        assert!((f64::from(got) - want).abs() < 1e-6, "{got} vs {want}");
        let g = values(q.grad(&loss.backward()).unwrap());
        assert!(rel_err(&g, &floats(&case["grad"])) < 1e-4);
        let f = |x: &[f32]| {
            let l = cfg
                .compute(
                    plain(x.to_vec(), 2 * n, d),
                    plain(k.clone(), 2 * n, d),
                    &PositiveMap::paired(2 * n),
                )
                .unwrap();
            f64::from(values(l)[0])
        };
        agrees_with_central_differences(&p, &g, f, "neg-cosine");
    }
}
