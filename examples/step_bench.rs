//! One contrastive training step, timed: the Rust side of `benches/compare.py`.
//!
//! Workloads mirror `benches/peer/torch_step_bench.py` (`resnet`, `mlp`), recipe R1 (`r1`)
//! and the anchors' ResNet-18 SimCLR step of `benches/peer_step.py` (`resnet18`): the same
//! model, batch, loss and optimiser, on fixed random inputs.
//!
//! usage: step_bench <resnet|resnet18|mlp|r1> [warmup=3] [timed=17] [sgd|lars] [f32|bf16]
//!
//! The optimiser defaults to SGD, as the peer's; `lars` swaps in LARS (Barlow Twins' trust
//! coefficient 1e-3) to time what its per-tensor norms add to a step. `bf16` runs the
//! layers' products in bf16 (`train.precision = "bf16"`); the words may come in any order
//! after the workload, the first number is the warm-up and the second the timed steps.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;

use contrastive::config::Config;
use contrastive::encoder::EncoderKind;
use contrastive::head::HeadKind;
use contrastive::loss::{LossConfig, LossKind};
use contrastive::model::Model;
use contrastive::score::Score;
use contrastive::train::lars::Lars;
use contrastive::train::sgd::Sgd;
use contrastive::views::{PositiveMap, Relation, Tag};

struct Workload {
    cfg: Config,
    input: [usize; 3],
    batch: usize,
    temperature: f64,
    lr: f64,
    weight_decay: f64,
    /// Both views in one forward pass (R1) or one pass per view (the peer's step bench).
    joint: bool,
}

fn workload(name: &str) -> Workload {
    let mut cfg = Config::default();
    match name {
        "resnet" => {
            cfg.encoder.kind = EncoderKind::Resnet;
            cfg.encoder.channels = vec![32, 64, 128, 256];
            cfg.encoder.blocks = vec![1, 1, 1, 1];
            cfg.head.bn = false;
            Workload {
                cfg,
                input: [3, 32, 32],
                batch: 128,
                temperature: 0.5,
                lr: 0.05,
                weight_decay: 0.0,
                joint: false,
            }
        }
        "resnet18" => {
            // ResNet-18 with the CIFAR stem and lightly's SimCLR head for it (512-512-128,
            // batch norm), on 32x32 RGB, as solo-learn and lightly benchmark SimCLR.
            cfg.encoder.kind = EncoderKind::Resnet18;
            cfg.head.hidden = 512;
            cfg.head.out = 128;
            Workload {
                cfg,
                input: [3, 32, 32],
                batch: 256,
                temperature: 0.5,
                lr: 0.06,
                weight_decay: 5e-4,
                joint: false,
            }
        }
        "mlp" => {
            cfg.encoder.kind = EncoderKind::Mlp;
            cfg.encoder.channels = vec![512, 512];
            cfg.head.kind = HeadKind::Linear;
            Workload {
                cfg,
                input: [1, 28, 28],
                batch: 512,
                temperature: 0.5,
                lr: 0.05,
                weight_decay: 0.0,
                joint: false,
            }
        }
        "r1" => Workload {
            cfg,
            input: [1, 28, 28],
            batch: 256,
            temperature: 0.2,
            lr: 0.06,
            weight_decay: 5e-4,
            joint: true,
        },
        other => {
            eprintln!("unknown workload {other}: expected resnet, resnet18, mlp or r1");
            std::process::exit(2);
        }
    }
}

fn main() {
    contrastive::backend::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("resnet");
    let numbers: Vec<usize> = args.iter().filter_map(|s| s.parse().ok()).collect();
    let warmup = numbers.first().copied().unwrap_or(3);
    let timed = numbers.get(1).copied().unwrap_or(17);
    let word = |choices: &[&'static str]| {
        args.iter()
            .skip(1)
            .find_map(|a| choices.iter().find(|c| **c == a.as_str()).copied())
            .unwrap_or(choices[0])
    };
    let optimizer = word(&["sgd", "lars"]);
    let precision = word(&["f32", "bf16"]);
    if let Some(bad) = args.iter().skip(1).find(|a| {
        a.parse::<usize>().is_err() && !["sgd", "lars", "f32", "bf16"].contains(&a.as_str())
    }) {
        eprintln!("unknown argument {bad}: expected numbers, sgd|lars and f32|bf16");
        std::process::exit(2);
    }
    if contrastive::kernels::bf16::set_enabled(precision == "bf16") != (precision == "bf16") {
        eprintln!("bf16 asked for, but this CPU has no AVX512-BF16");
        std::process::exit(2);
    }
    let w = workload(which);
    let device = contrastive::backend::default_device();
    device.seed(0);
    let ad = device.autodiff();
    let mut model = Model::new(&w.cfg, w.input, &ad).expect("workload config is valid");
    let mut optim = match optimizer {
        "sgd" => ModuleOptimizer::from(Sgd {
            momentum: 0.9,
            weight_decay: w.weight_decay as f32,
        }),
        "lars" => ModuleOptimizer::from(Lars {
            momentum: 0.9,
            weight_decay: w.weight_decay as f32,
            trust_coefficient: 1e-3,
            bias_lr_scale: 1.0,
        }),
        _ => unreachable!("`word` returns one of its choices"),
    };
    let loss = LossConfig {
        kind: LossKind::NtXent,
        score: Score::Cosine,
        temperature: w.temperature,
        ..LossConfig::default()
    };
    let [c, h, wd] = w.input;
    let n = w.batch;
    let x1 = Tensor::<4>::random([n, c, h, wd], Distribution::Normal(0.0, 1.0), &ad);
    let x2 = Tensor::<4>::random([n, c, h, wd], Distribution::Normal(0.0, 1.0), &ad);
    let tags: Vec<Tag> = (0..2 * n)
        .map(|i| Tag::new((i % n) as u32, 0, (i / n) as u16))
        .collect();
    let map = PositiveMap::build(Relation::Instance, &tags, &tags, true);

    let mut losses = Vec::new();
    let mut t0 = Instant::now();
    for i in 0..warmup + timed {
        if i == warmup {
            t0 = Instant::now();
        }
        let z = if w.joint {
            model
                .forward(Tensor::cat(vec![x1.clone(), x2.clone()], 0))
                .1
        } else {
            Tensor::cat(
                vec![model.forward(x1.clone()).1, model.forward(x2.clone()).1],
                0,
            )
        };
        let l = loss
            .compute(z.clone(), z, &map)
            .expect("valid positive map");
        losses.push(l.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(l.backward(), &model);
        model = optim.step(w.lr, model, grads);
    }
    let secs = t0.elapsed().as_secs_f64();
    let sps = timed as f64 / secs;
    let l: Vec<String> = losses.iter().map(|l| format!("{l:.4}")).collect();
    println!("losses: {}", l.join(" "));
    println!(
        "RESULT framework=contrastive-flex workload={which} optimizer={optimizer} precision={precision} steps_per_s={sps:.3} images_per_s={:.1} step_ms={:.1} first_loss={:.4} last_loss={:.4}",
        sps * n as f64,
        1000.0 / sps,
        losses[0],
        losses[losses.len() - 1]
    );
}
