//! Linear probe: multinomial logistic regression on frozen, standardised features.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::{Int, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::knn::Features;

/// How the probe is trained.
#[derive(Debug, Clone, Copy)]
pub struct ProbeConfig {
    pub epochs: usize,
    pub lr: f64,
    pub batch: usize,
    pub seed: u64,
}

/// A trained probe's predictions.
#[derive(Debug, Clone)]
pub struct Probe {
    pub train_pred: Vec<u32>,
    pub test_pred: Vec<u32>,
}

/// Standardises with the training mean and (biased) standard deviation, leaving constant
/// features unscaled, then trains `Linear(dim, classes)` with Adam on cross-entropy,
/// shuffling each epoch and keeping the last partial batch.
pub fn probe(
    train: &Features,
    test: &Features,
    classes: usize,
    cfg: ProbeConfig,
    device: &Device,
) -> Probe {
    let (mean, std) = moments(train);
    let scale = |f: &Features| -> Vec<f32> {
        f.data
            .chunks(f.dim)
            .flat_map(|r| r.iter().enumerate().map(|(j, v)| (v - mean[j]) / std[j]))
            .collect()
    };
    let (xtr, xte) = (scale(train), scale(test));
    let dim = train.dim;
    let ad = device.clone().autodiff();
    ad.seed(cfg.seed);
    let mut clf: Linear = LinearConfig::new(dim, classes).init(&ad);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let ce = CrossEntropyLossConfig::new().init(&ad);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let n = train.len();
    let mut order: Vec<usize> = (0..n).collect();
    for _ in 0..cfg.epochs {
        order.shuffle(&mut rng);
        for idx in order.chunks(cfg.batch) {
            let mut xb = Vec::with_capacity(idx.len() * dim);
            for &i in idx {
                xb.extend_from_slice(&xtr[i * dim..(i + 1) * dim]);
            }
            let yb: Vec<i64> = idx.iter().map(|&i| i64::from(train.labels[i])).collect();
            let x = Tensor::<2>::from_data(TensorData::new(xb, [idx.len(), dim]), &ad);
            let y = Tensor::<1, Int>::from_data(TensorData::new(yb, [idx.len()]), &ad);
            let loss = ce.forward(clf.forward(x), y);
            let grads = GradientsParams::from_grads(loss.backward(), &clf);
            clf = optim.step(cfg.lr, clf, grads);
        }
    }
    let clf = clf.valid();
    let predict = |x: Vec<f32>, rows: usize| -> Vec<u32> {
        let x = Tensor::<2>::from_data(TensorData::new(x, [rows, dim]), device);
        let p = clf.forward(x).argmax(1).into_data();
        p.iter::<i64>().map(|v| v as u32).collect()
    };
    Probe {
        train_pred: predict(xtr, train.len()),
        test_pred: predict(xte, test.len()),
    }
}

/// Per-feature mean and biased standard deviation (1 where it is below 1e-6).
fn moments(f: &Features) -> (Vec<f32>, Vec<f32>) {
    let n = f.len().max(1) as f64;
    let mut mean = vec![0f64; f.dim];
    for r in f.data.chunks(f.dim) {
        r.iter()
            .zip(&mut mean)
            .for_each(|(v, m)| *m += f64::from(*v));
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; f.dim];
    for r in f.data.chunks(f.dim) {
        for j in 0..f.dim {
            let d = f64::from(r[j]) - mean[j];
            var[j] += d * d;
        }
    }
    let std = var
        .iter()
        .map(|v| {
            let s = (v / n).sqrt();
            if s < 1e-6 {
                1.0
            } else {
                s as f32
            }
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), std)
}
