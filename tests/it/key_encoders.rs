//! Key strategies: the EMA update equals its formula, and no gradient reaches a frozen
//! key encoder (momentum, snapshot, teacher) or the stored keys of queues and banks.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::{Distribution, Gradients};
use contrastive::config::Config;
use contrastive::keys::{self, Queue};
use contrastive::model::Model;
use contrastive::views::{PositiveMap, Relation, Tag};

use crate::common::param_values as values;

fn model(device: &Device) -> (Config, Model) {
    let cfg = Config::parse(
        "[encoder]\nkind = \"convnet\"\nchannels = [4, 8]\nstrides = [1, 2]\n[head]\nkind = \"mlp\"\nhidden = 8\nout = 4\n",
        std::path::Path::new("test.toml"),
        &[],
    )
    .unwrap();
    let m = Model::new(&cfg, [1, 6, 6], device).unwrap();
    (cfg, m)
}

#[test]
fn ema_update_is_m_key_plus_one_minus_m_online() {
    let device = Device::flex().autodiff();
    let (_, online) = model(&device);
    let (_, other) = model(&device);
    let key = keys::frozen_copy(&other, model(&device).1);
    let (k0, q) = (values(&key), values(&online));
    let m = 0.9;
    let updated = values(&keys::ema(key, &online, m));
    for ((u, k), q) in updated.iter().zip(&k0).zip(&q) {
        for ((&u, &k), &q) in u.iter().zip(k).zip(q) {
            let want = m as f32 * k + (1.0 - m as f32) * q;
            assert!(
                (u - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{u} vs {want}"
            );
        }
    }
}

#[test]
fn no_gradient_reaches_key_encoders_or_stored_keys() {
    let device = Device::flex().autodiff();
    let (cfg, online) = model(&device);
    let key = keys::frozen_copy(&online, model(&device).1);
    let x = Tensor::<4>::random([4, 1, 6, 6], Distribution::Normal(0.0, 1.0), &device);
    let (_, q) = online.forward(x.clone());
    let (_, k) = key.forward(x);
    let mut queue = Queue {
        dim: 4,
        capacity: 8,
        ..Queue::default()
    };
    let tags: Vec<Tag> = (0..4).map(|i| Tag::new(i, 0, 1)).collect();
    queue.push(&keys::host(&k), &tags);
    let stored = keys::device_rows(queue.z.clone(), 4, &device);
    let all = Tensor::cat(vec![k.detach(), stored], 0);
    let mut key_tags = tags.clone();
    key_tags.extend(&queue.tags);
    let q_tags: Vec<Tag> = (0..4).map(|i| Tag::new(i, 0, 0)).collect();
    let map = PositiveMap::build(Relation::Instance, &q_tags, &key_tags, false);
    let loss = cfg.loss.compute(q, all.clone(), &map).unwrap();
    let grads = loss.backward();
    let mut with_grad = Grads(&grads, 0, 0);
    online.visit(&mut with_grad);
    // Batch-norm running statistics are parameters without gradients; weights have them.
    assert!(
        with_grad.1 > 0 && with_grad.1 >= with_grad.2 / 2,
        "the online model learns: {} of {} parameters",
        with_grad.1,
        with_grad.2
    );
    let mut frozen = Grads(&grads, 0, 0);
    key.visit(&mut frozen);
    assert_eq!(
        frozen.1, 0,
        "no parameter of the key encoder has a gradient"
    );
    assert!(all.grad(&grads).is_none(), "queue keys are constants");
}

/// Counts parameters that have a gradient (`.1`) among all parameters (`.2`).
struct Grads<'a>(&'a Gradients, usize, usize);

impl ModuleVisitor for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.2 += 1;
        if param.val().grad(self.0).is_some() {
            self.1 += 1;
        }
    }
}
