//! Augmentation throughput: two views of a 256-image Fashion-MNIST batch per draw, through
//! the rayon-parallel `TransformViews` on all cores, with recipe R1's augmentation and with
//! the full SimCLR set (colour jitter with saturation and hue, grayscale, blur, solarise).
//! Saturation and hue are no-ops on grey images, so the set also runs on synthetic RGB
//! 32x32 images (CIFAR's shape) as `simclr-rgb32`.
//!
//! usage: augment_bench [data dir = data/fashion-mnist] [repeats = 7] [draws per repeat = 40]

use std::path::PathBuf;
use std::time::Instant;

use contrastive::data::{self, Split};
use contrastive::views::augment::AugmentConfig;
use contrastive::views::transform::TransformViews;
use contrastive::views::Sampler;

const BATCH: usize = 256;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).map_or("data/fashion-mnist", String::as_str));
    let repeats: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7);
    let draws: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(40);
    let train = data::load("fashion-mnist", &dir)?.train;
    let simclr = AugmentConfig {
        brightness: 0.4,
        contrast: 0.4,
        saturation: 0.4,
        hue: 0.1,
        grayscale_p: 0.2,
        blur_p: 0.5,
        solarize_p: 0.2,
        ..AugmentConfig::default()
    };
    let rgb = Split {
        data: (0..4096 * 3 * 32 * 32)
            .map(|i| ((i * 7919 + i / 7) % 256) as f32 / 255.0)
            .collect(),
        shape: [3, 32, 32],
        labels: vec![0; 4096],
    };
    println!("threads: {}", rayon::current_num_threads());
    for (name, cfg, train) in [
        ("r1", AugmentConfig::default(), &train),
        ("simclr", simclr.clone(), &train),
        ("simclr-rgb32", simclr, &rgb),
    ] {
        let c = train.shape[0];
        let views = TransformViews {
            augment: vec![cfg; 2],
            mean: vec![0.5; c],
            std: vec![0.25; c],
        };
        let mut rates = Vec::with_capacity(repeats);
        for r in 0..=repeats {
            let t0 = Instant::now();
            for d in 0..draws {
                let start = (r * draws + d) * BATCH % (train.len() - BATCH);
                let idx: Vec<usize> = (start..start + BATCH).collect();
                std::hint::black_box(views.sample(train, &idx, d as u64).ok());
            }
            // The first repeat warms caches and the thread pool.
            if r > 0 {
                rates.push((draws * BATCH) as f64 / t0.elapsed().as_secs_f64());
            }
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "RESULT augment={name} images_per_s={:.0} views_per_s={:.0} repeats={repeats} batch={BATCH}",
            rates[rates.len() / 2],
            2.0 * rates[rates.len() / 2]
        );
    }
    Ok(())
}
