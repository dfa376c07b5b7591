//! NT-Xent and SupCon forward + backward at batch 256, 1024 and 4096 (2N views of dim 128),
//! timed: the Rust side of `benches/compare.py --suite losses`.
//!
//! usage: loss_bench <ntxent|supcon> <batch> [repeats=5]; prints the median in the peer's
//! RESULT format. The positive map is built inside the timed region, as PyTorch builds
//! its masks inside its loss.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use contrastive::loss::{LossConfig, LossKind};
use contrastive::score::Score;
use contrastive::views::{PositiveMap, Relation, Tag};

fn main() {
    contrastive::backend::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("ntxent");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    let reps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let (relation, kind) = match which {
        "ntxent" => (Relation::Instance, LossKind::NtXent),
        "supcon" => (Relation::Label, LossKind::Supcon),
        other => {
            eprintln!("unknown loss {other}: expected ntxent or supcon");
            std::process::exit(2);
        }
    };
    let device = Device::flex().autodiff();
    device.seed(0);
    let z0 = Tensor::<2>::random([2 * n, 128], Distribution::Normal(0.0, 1.0), &device);
    let tags: Vec<Tag> = (0..2 * n)
        .map(|i| Tag::new((i % n) as u32, ((i % n) % 10) as u32, (i / n) as u16))
        .collect();
    let cfg = LossConfig {
        kind,
        score: Score::Cosine,
        temperature: 0.1,
        ..LossConfig::default()
    };
    let mut times = Vec::new();
    let mut value = 0.0;
    for _ in 0..reps + 1 {
        let z = z0.clone().detach().require_grad();
        let t0 = Instant::now();
        let map = PositiveMap::build(relation, &tags, &tags, true);
        let loss = cfg.compute(z.clone(), z.clone(), &map).expect("valid map");
        let grads = loss.backward();
        let g = z.grad(&grads).expect("gradient");
        let _ = g.into_data();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        value = loss.into_scalar::<f32>();
    }
    times.remove(0);
    times.sort_by(f64::total_cmp);
    println!(
        "RESULT framework=contrastive-flex workload={which}-{n} ms={:.2} loss={value:.4}",
        times[times.len() / 2]
    );
}
