//! ProtoNCE against a PyTorch implementation from the paper's equations and the authors'
//! code (tests/fixtures/make_proto_fixture.py): the concentrations, the loss and its
//! gradient, and the gradient against finite differences.

use contrastive::loss::proto::{concentration, proto_nce};

use crate::common::{
    agrees_with_central_differences, fixture, floats, plain, rel_err, tracked, usize_of, values,
};

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn concentrations_match_the_authors_estimate() {
    let f = fixture("proto.json");
    let phi = concentration(
        &floats(&f["data"]),
        usize_of(&f["d"]),
        &floats(&f["centroids"]),
        &u32s(&f["assign"]),
        f["alpha"].as_f64().unwrap(),
        f["temperature"].as_f64().unwrap(),
    );
    let want = floats(&f["phi"]);
    assert!(rel_err(&phi, &want) < 1e-5, "{phi:?} vs {want:?}");
}

#[test]
fn proto_nce_matches_pytorch_value_and_gradient() {
    let f = fixture("proto.json");
    let (d, k) = (usize_of(&f["d"]), usize_of(&f["k"]));
    let (v, target, phi) = (floats(&f["v"]), u32s(&f["target"]), floats(&f["phi"]));
    let m = target.len();
    let centroids = floats(&f["centroids"]);
    let q = tracked(v.clone(), m, d);
    let loss = proto_nce(q.clone(), &target, plain(centroids.clone(), k, d), &phi).unwrap();
    let got = f64::from(values(loss.clone())[0]);
    let want = f["loss"].as_f64().unwrap();
    assert!(
        (got - want).abs() < 1e-5 * want.abs().max(1.0),
        "{got} vs {want}"
    );
    let g = values(q.grad(&loss.backward()).unwrap());
    assert!(rel_err(&g, &floats(&f["grad"])) < 1e-4);
    let value = |x: &[f32]| {
        let l = proto_nce(
            plain(x.to_vec(), m, d),
            &target,
            plain(centroids.clone(), k, d),
            &phi,
        )
        .unwrap();
        f64::from(values(l)[0])
    };
    agrees_with_central_differences(&v, &g, value, "proto-nce");
}

#[test]
fn an_assignment_past_the_prototypes_is_an_error() {
    let e = proto_nce(
        plain(vec![1.0, 0.0], 1, 2),
        &[2],
        plain(vec![1.0, 0.0, 0.0, 1.0], 2, 2),
        &[0.2, 0.2],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("cluster 2 out of range for 2 prototypes"),
        "{e}"
    );
}
