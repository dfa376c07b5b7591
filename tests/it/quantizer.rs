//! The Gumbel-softmax product quantiser against the PyTorch reference of
//! tests/fixtures/make_quantizer_fixture.py: quantised values, diversity loss, and the
//! straight-through gradients of `sum(q * R) + diversity`.

use crate::common::{fixture, floats, rel_err, values};
use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::TensorData;
use contrastive::head::quantizer::{Quantizer, QuantizerConfig};

fn leaf<const D: usize>(v: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), device).require_grad()
}

#[test]
fn quantiser_matches_the_reference_values_and_straight_through_gradients() {
    let f = fixture("quantizer.json");
    let n_of = |k: &str| f[k].as_u64().unwrap() as usize;
    let (n, d, g, v) = (n_of("n"), n_of("d"), n_of("groups"), n_of("entries"));
    let device = Device::flex().autodiff();
    let z = leaf(floats(&f["z"]), [n, d], &device);
    let w = leaf(floats(&f["w"]), [d, g * v], &device);
    let b = leaf(floats(&f["b"]), [g * v], &device);
    let codebook = leaf(floats(&f["codebook"]), [g, v, d / g], &device);
    let quantizer = Quantizer {
        logits: Linear {
            weight: Param::from_tensor(w.clone()),
            bias: Some(Param::from_tensor(b.clone())),
        },
        codebook: Param::from_tensor(codebook.clone()),
    };
    let noise = Tensor::from_data(TensorData::new(floats(&f["noise"]), [n, g * v]), &device);
    let out = quantizer.forward(z.clone(), noise, f["tau"].as_f64().unwrap());
    assert!(rel_err(&values(out.q.clone()), &floats(&f["q"])) < 1e-5);
    let want = f["diversity"].as_f64().unwrap() as f32;
    assert!(rel_err(&values(out.diversity.clone()), &[want]) < 1e-5);
    let r = Tensor::from_data(TensorData::new(floats(&f["r"]), [n, d]), &device);
    let loss = (out.q * r).sum() + out.diversity;
    let grads = loss.backward();
    let w = quantizer.logits.weight.val();
    let b = quantizer.logits.bias.as_ref().unwrap().val();
    let c = quantizer.codebook.val();
    for (name, got, key) in [
        ("z", values(z.grad(&grads).unwrap()), "grad_z"),
        ("W", values(w.grad(&grads).unwrap()), "grad_w"),
        ("b", values(b.grad(&grads).unwrap()), "grad_b"),
        ("codebook", values(c.grad(&grads).unwrap()), "grad_codebook"),
    ] {
        let e = rel_err(&got, &floats(&f[key]));
        assert!(e < 1e-5, "gradient of {name}: relative error {e}");
    }
}

#[test]
fn forward_value_is_the_hard_pick_and_even_usage_has_no_diversity_loss() {
    let device = Device::flex();
    let cfg = QuantizerConfig {
        groups: 2,
        entries: 3,
        ..QuantizerConfig::default()
    };
    let q = cfg.init(4, &device).unwrap();
    // Zero weights: every logit is its bias; noise decides the pick.
    let q = Quantizer {
        logits: Linear {
            weight: Param::from_tensor(Tensor::zeros([4, 6], &device)),
            bias: Some(Param::from_tensor(Tensor::zeros([6], &device))),
        },
        ..q
    };
    let noise = Tensor::from_data(
        TensorData::new(
            vec![
                5.0, 0.0, 0.0, 0.0, 0.0, 5.0, //
                0.0, 5.0, 0.0, 5.0, 0.0, 0.0, //
                0.0, 0.0, 5.0, 0.0, 5.0, 0.0f32,
            ],
            [3, 6],
        ),
        &device,
    );
    let out = q.forward(Tensor::zeros([3, 4], &device), noise, 1.0);
    let book = values(q.codebook.val());
    let entry =
        |group: usize, e: usize| book[(group * 3 + e) * 2..(group * 3 + e) * 2 + 2].to_vec();
    let want: Vec<f32> = [(0, 2), (1, 0), (2, 1)]
        .iter()
        .flat_map(|&(a, b)| [entry(0, a), entry(1, b)].concat())
        .collect();
    assert!(rel_err(&values(out.q), &want) < 1e-6);
    // Equal logits: the mean softmax is uniform, entropy log V, exp(H) = V per group.
    assert!(values(out.diversity)[0].abs() < 1e-6);
    assert!((cfg.temperature_at(0, 10) - 2.0).abs() < 1e-12);
    assert!((cfg.temperature_at(10, 10) - 0.5).abs() < 1e-12);
    assert!((cfg.temperature_at(5, 10) - 1.0).abs() < 1e-12);
}
