//! InstDisc training steps traced for the PyTorch cross-check
//! `benches/peer_instdisc_trace.py`: the preset's model, augmented Fashion-MNIST views,
//! memory bank, sampled negatives, NCE loss and SGD on a cosine schedule over `steps`.
//! Writes the initial parameters, the initial bank, every step's views and key indices,
//! every step's loss and the final parameters (running statistics included), so the peer
//! can replay the same steps from the same random draws; 234 steps are one epoch.
//!
//! usage: instdisc_trace OUT_DIR [steps=20] [seed=0]

use std::path::{Path, PathBuf};

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use contrastive::config::Config;
use contrastive::keys::{self, Bank};
use contrastive::model::Model;
use contrastive::npy;
use contrastive::train::schedule::learning_rate;
use contrastive::train::sgd::Sgd;
use contrastive::views::transform::{mix, TransformViews};
use contrastive::views::{PositiveMap, Sampler};

fn dump(model: &Model, dir: PathBuf) {
    std::fs::create_dir_all(&dir).expect("create the dump folder");
    for p in model.named_params(None) {
        let file = dir.join(format!("{}.npy", p.path));
        npy::write(&file, &p.values, &p.shape).expect("write a parameter");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/tmp/instdisc-trace"),
    );
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let cfg = Config::load(Path::new("configs/instdisc-fashion-mnist.toml"), &[])
        .expect("the InstDisc preset");
    let data = contrastive::data::load(&cfg.data.dataset, &cfg.data.dir)
        .expect("Fashion-MNIST (scripts/fetch-data.sh)");
    let train = data.train;
    let device = contrastive::backend::default_device();
    device.seed(seed);
    let ad = device.autodiff();
    let mut model = Model::new(&cfg, train.shape, &ad).expect("the preset's model");
    dump(&model, out.join("init"));
    let mut bank = Bank::new(cfg.head.out, train.labels.clone(), seed);
    npy::write(
        &out.join("bank.npy"),
        &bank.z,
        &[train.labels.len(), bank.dim],
    )
    .expect("write the bank");
    let sampler = TransformViews {
        augment: cfg.views.augments(),
        mean: vec![cfg.data.mean.expand("data.mean", 1).expect("one mean")[0]],
        std: vec![cfg.data.std.expand("data.std", 1).expect("one std")[0]],
    };
    let mut optim = ModuleOptimizer::from(Sgd {
        momentum: cfg.optim.momentum as f32,
        weight_decay: cfg.optim.weight_decay as f32,
    });
    let batch = cfg.train.batch_size;
    let mut losses = Vec::new();
    for step in 0..steps {
        let indices: Vec<usize> = (step * batch..(step + 1) * batch).collect();
        let views = sampler
            .sample(&train, &indices, mix(seed, step as u64, 0))
            .expect("views of data held in memory");
        let g = &views.groups[0];
        let x = Tensor::<4>::from_data(TensorData::new(g.data.clone(), g.shape), &ad);
        let (_, z) = model.forward(x);
        let inst: Vec<u32> = g.tags.iter().map(|t| t.instance).collect();
        let idx = bank.candidates(&inst, cfg.keys.bank_negatives, seed, step);
        let (kz, ktags) = bank.gather(&idx);
        let k = keys::device_rows(kz, bank.dim, &ad);
        let map = PositiveMap::build(cfg.views.relation, &g.tags, &ktags, false);
        let loss = cfg.loss.compute(z.clone(), k, &map).expect("NCE");
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = learning_rate(cfg.optim.lr, true, step, steps, 0);
        model = optim.step(lr, model, grads);
        bank.update(&inst, &keys::host(&z), cfg.keys.bank_momentum as f32);
        npy::write(&out.join(format!("x{step}.npy")), &g.data, &g.shape).expect("write x");
        let rows: Vec<i64> = inst.iter().map(|&i| i64::from(i)).collect();
        npy::write(&out.join(format!("inst{step}.npy")), &rows, &[rows.len()]).expect("inst");
        let keys: Vec<i64> = idx.iter().map(|&i| i64::from(i)).collect();
        npy::write(&out.join(format!("keys{step}.npy")), &keys, &[keys.len()]).expect("keys");
    }
    npy::write(&out.join("losses.npy"), &losses, &[steps]).expect("write the losses");
    dump(&model, out.join("final"));
    println!(
        "{steps} steps traced to {}; losses {losses:?}",
        out.display()
    );
}
