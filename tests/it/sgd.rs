//! The SGD optimiser against burn's `Sgd` (momentum, dampening 0, weight decay): same
//! parameters after several steps on both kernel paths, and each resumes from the other's
//! saved state. LARS against Barlow Twins' own (tests/fixtures/make_lars_fixture.py),
//! straight through and resumed from its saved state.

use crate::common::{fixture, floats, rel_err};
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use contrastive::kernels;
use contrastive::train::lars::Lars;
use contrastive::train::sgd::Sgd;

const MOMENTUM: f64 = 0.9;
const DECAY: f64 = 5e-4;

fn burn_sgd() -> ModuleOptimizer {
    SgdConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(DECAY as f32)))
        .with_momentum(Some(
            MomentumConfig::new()
                .with_momentum(MOMENTUM)
                .with_dampening(0.0),
        ))
        .init()
}

fn ours() -> ModuleOptimizer {
    ModuleOptimizer::from(Sgd {
        momentum: MOMENTUM as f32,
        weight_decay: DECAY as f32,
    })
}

/// The steps `steps` of the loss `sum(tanh(layer(x)) * r)` at learning rate `lr`, with
/// `(x, r)` for step `s` from `batch(s)`.
fn run_steps(
    optim: &mut ModuleOptimizer,
    mut layer: Linear,
    steps: std::ops::Range<usize>,
    lr: f64,
    batch: impl Fn(usize, &Device) -> (Tensor<2>, Tensor<2>),
) -> Linear {
    let device = layer.weight.device();
    for s in steps {
        let (x, r) = batch(s, &device);
        let loss = (layer.forward(x).tanh() * r).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        layer = optim.step(lr, layer, grads);
    }
    layer
}

/// `steps` steps on random batches, whose gradient changes with the weights only through
/// weight decay and momentum, so every term of the update is exercised.
fn train(optim: &mut ModuleOptimizer, layer: Linear, steps: usize) -> Linear {
    run_steps(optim, layer, 0..steps, 0.1, |s, device| {
        device.seed(s as u64);
        let normal = Distribution::Normal(0.0, 1.0);
        (
            Tensor::random([8, 6], normal, device),
            Tensor::random([8, 4], normal, device),
        )
    })
}

fn values(layer: &Linear) -> Vec<f32> {
    let mut v: Vec<f32> = layer.weight.val().into_data().iter::<f32>().collect();
    v.extend(layer.bias.as_ref().unwrap().val().into_data().iter::<f32>());
    v
}

fn assert_close(a: &Linear, b: &Linear, what: &str) {
    let (a, b) = (values(a), values(b));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-6 * y.abs().max(1.0),
            "{what}: [{i}] {x} vs {y}"
        );
    }
}

#[test]
fn sgd_equals_burns_and_resumes_from_its_state() {
    let _serial = crate::common::serial();
    let device = Device::flex().autodiff();
    device.seed(42);
    let start = LinearConfig::new(6, 4).init(&device);
    let moved = values(&train(&mut ours(), start.clone(), 1));
    assert!(
        moved.iter().zip(values(&start)).any(|(a, b)| a != &b),
        "a step changes the parameters"
    );
    for fast in [true, false] {
        kernels::set_enabled(fast);
        let reference = train(&mut burn_sgd(), start.clone(), 4);
        assert_close(&train(&mut ours(), start.clone(), 4), &reference, "4 steps");

        // Two steps with one optimiser, its state saved, two more with the other, against
        // four with burn's (`train` replays the same two batches: four momentum updates).
        let mut continued = burn_sgd();
        let half = train(&mut continued, start.clone(), 2);
        let reference = train(&mut continued, half, 2);
        for (first, second) in [(burn_sgd as fn() -> _, ours as fn() -> _), (ours, burn_sgd)] {
            let mut a = first();
            let half = train(&mut a, start.clone(), 2);
            let mut b = second().from_bytes(a.into_bytes().unwrap()).unwrap();
            assert_close(&train(&mut b, half, 2), &reference, "resumed");
        }
    }
    kernels::set_enabled(true);
}

/// The steps `steps` of the fixture case `case`, on its recorded batches.
fn replay(
    optim: &mut ModuleOptimizer,
    layer: Linear,
    case: &serde_json::Value,
    steps: std::ops::Range<usize>,
    lr: f64,
) -> Linear {
    run_steps(optim, layer, steps, lr, |s, device| {
        let x = TensorData::new(floats(&case["x"][s]), [8, 6]);
        let r = TensorData::new(floats(&case["r"][s]), [8, 4]);
        (Tensor::from_data(x, device), Tensor::from_data(r, device))
    })
}

/// The Linear(6, 4) a fixture case starts from (`weight` as burn holds it, `[in, out]`).
fn fixture_layer(case: &serde_json::Value, device: &Device) -> Linear {
    let weight = TensorData::new(floats(&case["weight"]), [6, 4]);
    let bias = TensorData::new(floats(&case["bias"]), [4]);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(weight, device)),
        bias: Some(Param::from_tensor(Tensor::from_data(bias, device))),
    }
}

/// Asserts that `layer` holds the case's `weight_after` and `bias_after` to 1e-5.
fn matches_fixture(layer: &Linear, case: &serde_json::Value, what: &str) {
    let w: Vec<f32> = layer.weight.val().into_data().iter::<f32>().collect();
    let b: Vec<f32> = layer
        .bias
        .as_ref()
        .unwrap()
        .val()
        .into_data()
        .iter::<f32>()
        .collect();
    let (ew, eb) = (
        rel_err(&w, &floats(&case["weight_after"])),
        rel_err(&b, &floats(&case["bias_after"])),
    );
    assert!(ew < 1e-5 && eb < 1e-5, "{what}: weight {ew:e}, bias {eb:e}");
}

#[test]
fn lars_equals_barlow_twins_reference_and_resumes_from_its_state() {
    let _serial = crate::common::serial();
    let f = fixture("lars.json");
    let num = |k: &str| f[k].as_f64().expect("number");
    let lars = || {
        ModuleOptimizer::from(Lars {
            momentum: num("momentum") as f32,
            weight_decay: num("weight_decay") as f32,
            trust_coefficient: num("trust") as f32,
            bias_lr_scale: num("bias_lr_scale") as f32,
        })
    };
    let (lr, steps) = (num("lr"), f["steps"].as_u64().expect("steps") as usize);
    let device = Device::flex().autodiff();
    for (name, case) in f["cases"].as_object().expect("cases") {
        let start = fixture_layer(case, &device);
        let check =
            |layer: &Linear, what: &str| matches_fixture(layer, case, &format!("{name}, {what}"));
        for fast in [true, false] {
            kernels::set_enabled(fast);
            check(
                &replay(&mut lars(), start.clone(), case, 0..steps, lr),
                "straight",
            );
            let mut first = lars();
            let half = replay(&mut first, start.clone(), case, 0..2, lr);
            let mut second = lars().from_bytes(first.into_bytes().unwrap()).unwrap();
            check(&replay(&mut second, half, case, 2..steps, lr), "resumed");
        }
    }
    kernels::set_enabled(true);
}

#[test]
fn adamw_equals_pytorch_and_resumes_from_its_state() {
    let f = fixture("adamw.json");
    let num = |k: &str| f[k].as_f64().expect("number");
    let (lr, steps) = (num("lr"), f["steps"].as_u64().expect("steps") as usize);
    let adamw = || {
        contrastive::train::config::OptimConfig {
            kind: contrastive::train::config::OptimKind::Adamw,
            weight_decay: num("weight_decay"),
            ..Default::default()
        }
        .init()
    };
    let case = &f["case"];
    let device = Device::flex().autodiff();
    let start = fixture_layer(case, &device);
    let check = |layer: &Linear, what: &str| matches_fixture(layer, case, what);
    check(
        &replay(&mut adamw(), start.clone(), case, 0..steps, lr),
        "straight",
    );
    let mut first = adamw();
    let half = replay(&mut first, start.clone(), case, 0..2, lr);
    let mut second = adamw().from_bytes(first.into_bytes().unwrap()).unwrap();
    check(&replay(&mut second, half, case, 2..steps, lr), "resumed");
}
