//! The SGD optimiser against burn's `Sgd` (momentum, dampening 0, weight decay): same
//! parameters after several steps on both kernel paths, and each resumes from the other's
//! saved state.

use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use contrastive::kernels;
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

/// `steps` steps of the loss `sum(layer(x) * r)`, whose gradient changes with the weights
/// only through weight decay and momentum, so every term of the update is exercised.
fn train(optim: &mut ModuleOptimizer, mut layer: Linear, steps: usize) -> Linear {
    let device = layer.weight.device();
    for s in 0..steps {
        device.seed(s as u64);
        let x = Tensor::<2>::random([8, 6], Distribution::Normal(0.0, 1.0), &device);
        let r = Tensor::<2>::random([8, 4], Distribution::Normal(0.0, 1.0), &device);
        let loss = (layer.forward(x).tanh() * r).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        layer = optim.step(0.1, layer, grads);
    }
    layer
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
