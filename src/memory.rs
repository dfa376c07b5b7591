//! The memory a run needs, estimated from its config before anything large is allocated,
//! so that an absurd size (`head.hidden = 1e9`, `views.n = 1e5`) is refused with the keys
//! that cause it instead of ending in an allocation abort.
//!
//! The estimate is a lower bound: weights, their gradients and one optimiser state (three
//! copies), and one batch's activations kept for the backward pass (the input and every
//! block's output, twice: values and gradients). A refused run could not have fitted; one
//! that passes may still need more (temporaries, the kNN evaluation).

use crate::config::Config;
use crate::encoder::EncoderKind;
use crate::error::{Error, Result};
use crate::head::HeadKind;
use crate::host::{available, human};

/// One part of the estimate: the keys that size it and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub what: &'static str,
    /// The config keys and values that size this part.
    pub keys: String,
    pub bytes: f64,
}

const F32: f64 = 4.0;

/// The parts of the memory a run of `cfg` on samples of shape `input` needs.
pub fn estimate(cfg: &Config, input: [usize; 3]) -> Vec<Part> {
    let input = cfg.views.model_input(input);
    let e = &cfg.encoder;
    let (c0, h0, w0) = (input[0] as f64, input[1] as f64, input[2] as f64);
    let (encoder, blocks) = encoder_params(cfg, c0, h0 * w0);
    let head = head_params(cfg, e.output_dim() as f64);
    let augments = cfg.views.augments();
    let mut activations = 0.0;
    for a in &augments {
        let area = if a.size > 0 {
            let s = a.size as f64;
            if h0 == 1.0 {
                s
            } else {
                s * s
            }
        } else {
            h0 * w0
        };
        activations += c0 * area
            + blocks
                .iter()
                .map(|(c, shrink)| c * area / shrink)
                .sum::<f64>();
    }
    let batch = cfg.train.batch_size as f64;
    vec![
        Part {
            what: "encoder weights, gradients and optimiser state",
            keys: format!(
                "encoder.kind = {}, encoder.channels = {:?}",
                crate::error::kind_name(&e.kind),
                e.channels
            ),
            bytes: 3.0 * F32 * encoder,
        },
        Part {
            what: "head weights, gradients and optimiser state",
            keys: format!(
                "head.hidden = {}, head.depth = {}, head.out = {}",
                cfg.head.hidden, cfg.head.depth, cfg.head.out
            ),
            bytes: 3.0 * F32 * head,
        },
        Part {
            what: "one batch of activations",
            keys: format!(
                "train.batch_size = {}, views.n = {}, views.augment.size = {}",
                cfg.train.batch_size,
                augments.len(),
                cfg.views.augment.size
            ),
            bytes: 2.0 * F32 * batch * activations,
        },
    ]
}

/// Parameters of the encoder, and per block its channels and how much it shrinks the
/// input's area (for the activations).
fn encoder_params(cfg: &Config, c0: f64, area: f64) -> (f64, Vec<(f64, f64)>) {
    let e = &cfg.encoder;
    let mlp = e.kind == EncoderKind::Mlp;
    let widths: Vec<f64> = match e.kind {
        EncoderKind::Resnet18 | EncoderKind::Resnet34 => vec![64.0, 128.0, 256.0, 512.0],
        _ => e.channels.iter().map(|&c| c as f64).collect(),
    };
    let repeats: Vec<f64> = match e.kind {
        EncoderKind::Resnet18 => vec![2.0; 4],
        EncoderKind::Resnet34 => vec![3.0, 4.0, 6.0, 3.0],
        EncoderKind::Resnet => e.blocks.iter().map(|&b| 2.0 * b as f64).collect(),
        _ => vec![1.0; widths.len()],
    };
    let kernel = match e.kind {
        EncoderKind::Mlp => 1.0,
        EncoderKind::Conv1d => e.kernel as f64,
        _ => 9.0,
    };
    let mut params = 0.0;
    let mut blocks = Vec::new();
    let (mut prev, mut shrink) = (if mlp { c0 * area } else { c0 }, 1.0);
    for (i, &c) in widths.iter().enumerate() {
        let r = repeats.get(i).copied().unwrap_or(1.0);
        params += prev * c * kernel + (r - 1.0) * c * c * kernel;
        if !mlp {
            shrink *= e
                .strides
                .get(i)
                .map_or(if i == 0 { 1.0 } else { 4.0 }, |&s| (s * s) as f64);
        }
        blocks.push((c * r, if mlp { area } else { shrink }));
        prev = c;
    }
    (params, blocks)
}

/// Parameters of the projection head (and predictor) on `d`-dimensional `h`.
fn head_params(cfg: &Config, d: f64) -> f64 {
    let h = &cfg.head;
    let (hidden, out) = (h.hidden as f64, h.out as f64);
    let layers = match h.kind {
        HeadKind::Identity => 0.0,
        HeadKind::Linear => d * out,
        _ if h.depth <= 1 => d * out,
        _ => d * hidden + (h.depth as f64 - 2.0) * hidden * hidden + hidden * out,
    };
    let predictor = if h.predictor {
        2.0 * out * h.predictor_hidden as f64
    } else {
        0.0
    };
    layers + predictor
}

/// Refuses a run whose estimated memory exceeds what the machine has available, naming
/// the largest part's keys.
pub fn check(cfg: &Config, input: [usize; 3]) -> Result<()> {
    let Some(avail) = available() else {
        return Ok(());
    };
    let parts = estimate(cfg, input);
    let total: f64 = parts.iter().map(|p| p.bytes).sum();
    if total <= avail as f64 {
        return Ok(());
    }
    let big = parts
        .iter()
        .max_by(|a, b| a.bytes.total_cmp(&b.bytes))
        .expect("three parts");
    Err(Error::Config {
        key: big.keys.clone(),
        value: format!("{} for {}", human(big.bytes), big.what),
        allowed: format!(
            "a run that fits: it needs at least {} in all, {} is available",
            human(total),
            human(avail as f64)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(sets: &[&str]) -> Config {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/simclr-fashion-mnist.toml"),
        )
        .unwrap();
        Config::parse(&text, Path::new("simclr.toml"), &sets).unwrap()
    }

    #[test]
    fn the_preset_fits_and_absurd_sizes_are_refused_by_key() {
        let total = |c: &Config| {
            estimate(c, [1, 28, 28])
                .iter()
                .map(|p| p.bytes)
                .sum::<f64>()
        };
        let r1 = total(&config(&[]));
        assert!(r1 > 1e6 && r1 < 2e9, "R1 needs {}", human(r1));
        for (set, key) in [
            ("head.hidden=1000000000", "head.hidden"),
            ("head.depth=100000", "head.depth"),
            ("views.n=100000", "views.n"),
            ("views.augment.size=100000", "views.augment.size"),
        ] {
            let c = config(&[set]);
            let parts = estimate(&c, [1, 28, 28]);
            let big = parts
                .iter()
                .max_by(|a, b| a.bytes.total_cmp(&b.bytes))
                .unwrap();
            assert!(big.bytes > 3e10, "{set}: {}", human(big.bytes));
            assert!(big.keys.contains(key), "{set}: {}", big.keys);
            if available().is_some() {
                let e = check(&c, [1, 28, 28]).unwrap_err().to_string();
                assert!(e.contains(key) && e.contains("available"), "{e}");
            }
        }
    }
}
