//! `train.precision = "bf16"` against f32: a ResNet's outputs and every gradient, and a
//! short training run on real images, where the CPU has AVX512-BF16 (elsewhere bf16 keeps
//! f32, which the last test checks).

use burn::prelude::*;
use burn::tensor::Distribution;
use contrastive::config::Config;
use contrastive::encoder::EncoderKind;
use contrastive::kernels::bf16;
use contrastive::model::Model;

use contrastive::train::metrics;

use crate::common::{dataset, outputs_and_grads as run, preset, train};

/// ‖a − b‖ / ‖b‖.
fn relative(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let n: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (d / n.max(1e-30)).sqrt()
}

#[test]
fn bf16_resnet_outputs_and_gradients_stay_near_f32() {
    if !bf16::supported() {
        eprintln!("skipped: this CPU has no AVX512-BF16");
        return;
    }
    let _serial = crate::common::serial();
    let mut cfg = Config::default();
    cfg.encoder.kind = EncoderKind::Resnet;
    cfg.encoder.channels = vec![16, 32, 64];
    cfg.encoder.blocks = vec![1, 1, 1];
    let device = Device::flex().autodiff();
    device.seed(3);
    let model = Model::new(&cfg, [3, 16, 16], &device).unwrap();
    let x = Tensor::<4>::random([32, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    let r = Tensor::<2>::random([32, cfg.head.out], Distribution::Normal(0.0, 1.0), &device);
    let copy = || {
        Model::new(&cfg, [3, 16, 16], &device)
            .unwrap()
            .load_record(model.clone().into_record())
    };
    let (z32, p32) = run(&copy(), &x, &r);
    // The yardstick: f32 again with the input moved by relative noise of ±2⁻⁹, half the
    // largest error of one bf16 rounding (2⁻⁸). At initialisation, with batch norm over 32
    // images, gradients are sensitive: this alone moves the convolutions' weight gradients
    // by 8–10%.
    let noise = Tensor::<4>::random(x.dims(), Distribution::Uniform(-1.0, 1.0), &device);
    let (zn, pn) = run(&copy(), &(x.clone() * (noise / 512.0 + 1.0)), &r);
    assert!(bf16::set_enabled(true));
    let (z16, p16) = run(&copy(), &x, &r);
    bf16::set_enabled(false);
    // bf16 rounds every product's operands in every layer, not the input once: it may
    // move outputs and gradients by a few times the yardstick (measured: outputs 1.2%
    // against 0.3%, gradients at most 1.6 times the yardstick's move), not by a wrong
    // product's 100%.
    let (e, yard) = (relative(&z16, &z32), relative(&zn, &z32));
    assert!(e > 0.0, "bf16 changed nothing: were its products used?");
    assert!(
        e < 0.04 && e < 6.0 * yard,
        "output z: {e} (yardstick {yard})"
    );
    let mut checked = 0;
    for ((a, b), n) in p16.iter().zip(&p32).zip(&pn) {
        if let (Some(ga), Some(gb), Some(gn)) = (&a.grad, &b.grad, &n.grad) {
            let (e, yard) = (relative(ga, gb), relative(gn, gb));
            assert!(
                e <= 3.0 * yard + 0.01,
                "gradient of {}: moved {e} by bf16, {yard} by the yardstick",
                a.path
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} gradients compared");
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn a_bf16_run_trains_as_the_f32_run_does() {
    let out = tempfile::tempdir().unwrap();
    let sets = |precision: &str| {
        vec![
            format!("data.dir={}", dataset("fashion-mnist").display()),
            "data.limit=1024".into(),
            "train.batch_size=128".into(),
            "eval.linear_epochs=2".into(),
            format!("train.precision={precision}"),
        ]
    };
    let losses = |precision: &str| -> Vec<f64> {
        let run = out.path().join(precision);
        let o = train(&preset("simclr-fashion-mnist"), sets(precision), &run)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // Step records: the epoch summaries are the ones with a speed.
        metrics::read(&run.join("metrics.jsonl"))
            .unwrap()
            .iter()
            .filter(|r| r.get("images_per_s").is_none())
            .filter_map(|r| r.get("loss").and_then(|l| l.as_f64()))
            .collect()
    };
    let f32_losses = losses("f32");
    let bf16_losses = losses("bf16");
    assert_eq!(f32_losses.len(), 1024 / 128);
    assert_eq!(bf16_losses.len(), f32_losses.len());
    if !bf16::supported() {
        assert_eq!(bf16_losses, f32_losses, "without AVX512-BF16, bf16 is f32");
        return;
    }
    // The same start: the first step's loss (before any update) differs by rounding alone.
    let first = (bf16_losses[0] - f32_losses[0]).abs() / f32_losses[0];
    assert!(
        first < 0.01,
        "first loss {} vs {}",
        bf16_losses[0],
        f32_losses[0]
    );
    assert_ne!(bf16_losses, f32_losses, "bf16 changed nothing");
    for (b, f) in bf16_losses.iter().zip(&f32_losses) {
        assert!(
            (b - f).abs() / f < 0.05,
            "bf16 {bf16_losses:?} vs f32 {f32_losses:?}"
        );
    }
}
