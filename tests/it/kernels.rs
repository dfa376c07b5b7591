//! The fast kernels against burn's plain operations: same outputs, same gradients for
//! every parameter, same running statistics, on R1's ConvNet and a small ResNet.

use burn::prelude::*;
use burn::tensor::Distribution;
use contrastive::config::Config;
use contrastive::encoder::{EncoderKind, Stem};
use contrastive::kernels;
use contrastive::loss::{LossConfig, LossKind};
use contrastive::model::Model;

use crate::common::outputs_and_grads as run;
use contrastive::score::Score;
use contrastive::views::{PositiveMap, Relation, Tag};

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        err <= 2e-4 * scale,
        "{what}: max difference {err} against scale {scale}"
    );
}

fn compare(cfg: &Config, input: [usize; 3], n: usize) {
    let device = Device::flex().autodiff();
    device.seed(7);
    let model = Model::new(cfg, input, &device).unwrap();
    let [c, h, w] = input;
    let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let out_dim = cfg.head.out;
    let r = Tensor::<2>::random([n, out_dim], Distribution::Normal(0.0, 1.0), &device);

    // Independent copies: clones would share their running statistics.
    let copy = || {
        Model::new(cfg, input, &device)
            .unwrap()
            .load_record(model.clone().into_record())
    };
    kernels::set_enabled(false);
    let (z_plain, p_plain) = run(&copy(), &x, &r);
    kernels::set_enabled(true);
    let (z_fast, p_fast) = run(&copy(), &x, &r);

    close(&z_fast, &z_plain, "output z");
    assert_eq!(p_fast.len(), p_plain.len());
    let mut with_grad = 0;
    for (f, p) in p_fast.iter().zip(&p_plain) {
        let (name, vf, gf, vp, gp) = (&f.path, &f.values, &f.grad, &p.values, &p.grad);
        assert_eq!(name, &p.path);
        // running statistics are parameters too: they must have been updated alike
        close(vf, vp, &format!("{name} value"));
        match (gf, gp) {
            (Some(a), Some(b)) => {
                close(a, b, &format!("{name} gradient"));
                with_grad += 1;
            }
            (None, None) => {}
            _ => panic!("{name}: gradient on one path only"),
        }
    }
    assert!(with_grad >= 8, "only {with_grad} parameters had gradients");

    // Inference mode (running statistics, no autodiff) agrees as well.
    let valid = model.valid();
    let xv = Tensor::<4>::from_data(x.clone().into_data(), &Device::flex());
    kernels::set_enabled(false);
    let a: Vec<f32> = valid
        .forward(xv.clone())
        .0
        .into_data()
        .iter::<f32>()
        .collect();
    kernels::set_enabled(true);
    let b: Vec<f32> = valid.forward(xv).0.into_data().iter::<f32>().collect();
    close(&b, &a, "inference representation h");
}

/// The fused score + InfoNCE kernel against burn's composition: loss and gradients.
fn compare_loss(score: Score, shared: bool) {
    let device = Device::flex().autodiff();
    let (n, d) = (12, 9);
    let zq = Tensor::<2>::random([2 * n, d], Distribution::Normal(0.0, 1.0), &device);
    let zk = Tensor::<2>::random([2 * n, d], Distribution::Normal(0.0, 1.0), &device);
    let tags: Vec<Tag> = (0..2 * n)
        .map(|i| Tag::new((i % n) as u32, (i % 3) as u32, (i / n) as u16))
        .collect();
    let loss = LossConfig {
        kind: LossKind::Supcon,
        score,
        temperature: 0.3,
        ..LossConfig::default()
    };
    let run = || {
        let q = Tensor::<2>::from_data(zq.clone().into_data(), &device).require_grad();
        let k = Tensor::<2>::from_data(zk.clone().into_data(), &device).require_grad();
        let map = PositiveMap::build(Relation::Label, &tags, &tags, shared);
        let l = if shared {
            loss.compute(q.clone(), q.clone(), &map)
        } else {
            loss.compute(q.clone(), k.clone(), &map)
        }
        .unwrap();
        let grads = l.backward();
        let v: Vec<f32> = l.into_data().iter::<f32>().collect();
        let gq: Vec<f32> = q.grad(&grads).unwrap().into_data().iter::<f32>().collect();
        let gk: Vec<f32> = if shared {
            vec![]
        } else {
            k.grad(&grads).unwrap().into_data().iter::<f32>().collect()
        };
        (v, gq, gk)
    };
    kernels::set_enabled(false);
    let plain = run();
    kernels::set_enabled(true);
    let fast = run();
    close(&fast.0, &plain.0, "loss");
    close(&fast.1, &plain.1, "query gradient");
    close(&fast.2, &plain.2, "key gradient");
}

#[test]
fn fast_kernels_equal_the_plain_path() {
    let _serial = crate::common::serial();
    for score in [Score::Cosine, Score::Dot] {
        compare_loss(score, true);
        compare_loss(score, false);
    }

    // One test: the switch is process-wide.
    let r1 = Config::default();
    compare(&r1, [1, 28, 28], 24);

    let mut resnet = Config::default();
    resnet.encoder.kind = EncoderKind::Resnet;
    resnet.encoder.channels = vec![8, 16];
    resnet.encoder.blocks = vec![1, 1];
    compare(&resnet, [3, 12, 12], 6);

    let mut imagenet = resnet.clone();
    imagenet.encoder.stem = Stem::Imagenet;
    compare(&imagenet, [3, 20, 20], 4);

    let mut mlp = Config::default();
    mlp.encoder.kind = EncoderKind::Mlp;
    mlp.encoder.channels = vec![32, 16];
    mlp.encoder.bn = true;
    compare(&mlp, [1, 6, 6], 10);

    mlp.encoder.bn = false;
    mlp.head.bn = false;
    compare(&mlp, [1, 6, 6], 10);
}
