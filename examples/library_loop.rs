//! Training with the library's pieces alone, no CLI and no `Trainer`: a dataset, a view
//! sampler, a model, a positive map, a loss and an optimiser, then a kNN probe. It builds
//! with `--no-default-features` (the data must then be present, since fetching is a
//! feature): SimCLR on the first 4,096 Fashion-MNIST images for 16 steps.
//!
//! Run: `cargo run --release --example library_loop`

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;
use contrastive::config::Config;
use contrastive::eval::{self, knn};
use contrastive::model::Model;
use contrastive::pairs::{PositiveMap, Relation};
use contrastive::train::schedule::learning_rate;

fn main() -> contrastive::Result<()> {
    let overrides = ["data.limit=4096", "train.batch_size=128"].map(String::from);
    let cfg = Config::load("configs/simclr-fashion-mnist.toml".as_ref(), &overrides)?;
    let ds = cfg.data.load(&mut |m| eprintln!("{m}"))?;
    let train = ds.train.clone().truncate(cfg.data.limit);
    let mean = cfg.data.mean.expand("data.mean", train.shape[0])?;
    let std = cfg.data.std.expand("data.std", train.shape[0])?;
    let sampler = cfg.views.sampler(train.shape, &mean, &std)?;
    let device = Device::flex().autodiff();
    let mut model = Model::new(&cfg, train.shape, &device)?;
    let mut optim = cfg.optim.init();
    let (batch, steps) = (cfg.train.batch_size, 16);
    for step in 0..steps {
        let indices: Vec<usize> = (step * batch..(step + 1) * batch).collect();
        let views = sampler
            .sample(&train, &indices, step as u64)
            .expect("views of data held in memory");
        let g = &views.groups[0];
        let x = Tensor::<4>::from_data(TensorData::new(g.data.clone(), g.shape), &device);
        let (_, z) = model.forward(x);
        // every row is a query and a key; the other view of its image is its positive
        let tags = views.tags();
        let map = PositiveMap::build(Relation::Instance, &tags, &tags, true);
        let loss = cfg.loss.compute(z.clone(), z, &map)?;
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = learning_rate(cfg.base_lr(), true, step, steps, 0);
        model = optim.step(lr, model, grads);
        println!("step {step:2}  loss {value:.4}");
    }
    let test = ds.test.clone().truncate(2000);
    let plain = Device::flex();
    let ftr = eval::extract(&cfg, &model, &train, &mean, &std, &plain);
    let fte = eval::extract(&cfg, &model, &test, &mean, &std, &plain);
    let pred = knn::predict(&ftr, &fte, 200, 0.1, ds.classes, &plain);
    println!(
        "kNN top-1 on 2,000 test images: {:.4}",
        knn::accuracy(&pred, &fte.labels)
    );
    Ok(())
}
