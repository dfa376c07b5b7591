//! Evaluation of representations: weighted kNN, a linear probe, per-class scores,
//! alignment and uniformity, and 2-D maps.

pub mod clustering;
pub mod config;
pub mod confusion;
pub mod geometry;
pub mod knn;
pub mod linear;
#[cfg(feature = "report")]
pub mod map2d;
pub mod online;
pub mod retrieval;

use std::borrow::Cow;

use burn::prelude::*;
use burn::tensor::TensorData;
use serde::Serialize;

use crate::config::EvalConfig;

use crate::data::source::Rows;
use crate::data::{Source, Split};
use crate::model::Model;
use confusion::ClassScores;
use knn::Features;

/// Rows per forward pass when extracting features.
const BATCH: usize = 512;

/// Top-1 accuracies of one evaluation, and the seconds each part took. The accuracies
/// are `None` where they cannot be computed (no labelled training or test sample).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Scores {
    pub knn_top1: Option<f64>,
    /// kNN top-5 accuracy, where there are more than 5 classes.
    pub knn_top5: Option<f64>,
    pub linear_top1: Option<f64>,
    pub knn_seconds: f64,
    pub linear_seconds: f64,
}

/// An evaluation with each classifier's per-class scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub scores: Scores,
    /// `None` when the data cannot be classified: [`Evaluation::unlabelled`] says why.
    pub knn: Option<ClassScores>,
    pub linear: Option<ClassScores>,
    /// Why no classifier ran, when none did.
    pub unlabelled: Option<String>,
}

/// Which output of the model is exported or evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The encoder's representation `h`.
    Representation,
    /// The projection head's embedding `z = g(h)` (`h` without a head).
    Projection,
    /// The encoder's feature map after its first `n` blocks, averaged over positions.
    Blocks(usize),
}

/// The evaluated output (`eval.layer`: `h`, or `z`) of every sample of `split` as the
/// run of `cfg` defines it, normalised with `mean`/`std`, using the model in inference
/// mode (batch norm with running statistics). For multisensory views a sample's
/// representation is the concatenation of its senses' (as CMC evaluates).
pub fn extract(
    cfg: &crate::config::Config,
    model: &Model,
    split: &Split,
    mean: &[f32],
    std: &[f32],
    device: &Device,
) -> Features {
    extract_output(cfg, model, split, (mean, std), device, output_of(cfg))
}

/// The output the evaluation reads (`eval.layer`, `eval.stage`).
fn output_of(cfg: &crate::config::Config) -> Output {
    match (cfg.eval.layer, cfg.encoder.stage_output(cfg.eval.stage)) {
        (config::Layer::H, Some((blocks, _))) if cfg.eval.stage > 0 => Output::Blocks(blocks),
        (config::Layer::H, _) => Output::Representation,
        (config::Layer::Z, _) => Output::Projection,
    }
}

/// Like [`extract`], for the chosen `output`.
pub fn extract_output(
    cfg: &crate::config::Config,
    model: &Model,
    split: &Split,
    (mean, std): (&[f32], &[f32]),
    device: &Device,
    output: Output,
) -> Features {
    if cfg.views.kind != crate::views::config::ViewsKind::Modalities {
        return encode(model, split, mean, std, device, output);
    }
    let parts: Vec<Features> = cfg
        .views
        .modalities
        .iter()
        .enumerate()
        .map(|(v, channels)| {
            let sub = split.channels(channels);
            let pick = |v: &[f32]| -> Vec<f32> { channels.iter().map(|&c| v[c]).collect() };
            encode(
                &model.for_view(v),
                &sub,
                &pick(mean),
                &pick(std),
                device,
                output,
            )
        })
        .collect();
    let dim: usize = parts.iter().map(|p| p.dim).sum();
    let data = (0..split.len())
        .flat_map(|i| parts.iter().flat_map(move |p| p.row(i).to_vec()))
        .collect();
    Features {
        data,
        dim,
        labels: split.labels.clone(),
    }
}

/// `output` of every sample of `split` fed to `model` as it is, in batches.
fn encode(
    model: &Model,
    split: &Split,
    mean: &[f32],
    std: &[f32],
    device: &Device,
    output: Output,
) -> Features {
    let d = split.sample_len();
    let rows = |start: usize, n: usize| -> std::result::Result<_, std::convert::Infallible> {
        Ok((
            Cow::Borrowed(&split.data[start * d..(start + n) * d]),
            Cow::Borrowed(&split.labels[start..start + n]),
        ))
    };
    let Ok(f) = encode_rows(
        model,
        (split.len(), split.shape),
        rows,
        (mean, std),
        device,
        output,
    );
    f
}

/// `output` of `n` samples of `shape`, read `BATCH` at a time by `rows(start, count)` as
/// values and labels, normalised with `mean`/`std` and fed to `model`.
fn encode_rows<'a, E>(
    model: &Model,
    (n, [c, h, w]): (usize, [usize; 3]),
    rows: impl Fn(usize, usize) -> std::result::Result<Rows<'a>, E>,
    (mean, std): (&[f32], &[f32]),
    device: &Device,
    output: Output,
) -> std::result::Result<Features, E> {
    let model = model.valid();
    let mut data = Vec::new();
    let mut labels = Vec::with_capacity(n);
    let mut dim = 0;
    for start in (0..n).step_by(BATCH) {
        let m = BATCH.min(n - start);
        let (x, y) = rows(start, m)?;
        let mut x = x.into_owned();
        labels.extend_from_slice(&y);
        for img in x.chunks_mut(c * h * w) {
            crate::views::augment::normalise(img, mean, std);
        }
        let x = Tensor::<4>::from_data(TensorData::new(x, [m, c, h, w]), device);
        let f = match output {
            Output::Representation => model.encoder.forward(x),
            Output::Projection => model.forward(x).1,
            // [`extract`] asks for blocks only of encoders with feature maps (their
            // `stage_output`), for which the split cannot fail
            Output::Blocks(n) => match model.encoder.features_split(x.clone(), n) {
                Ok((map, _)) => crate::encoder::global_avg_pool(map),
                Err(_) => model.encoder.forward(x),
            },
        };
        dim = f.dims()[1];
        data.extend(f.into_data().iter::<f32>());
    }
    Ok(Features { data, dim, labels })
}

/// [`extract`] of a training or test [`Source`], held in memory or streamed (images read
/// a batch at a time, resized and centre-cropped).
pub fn extract_source(
    cfg: &crate::config::Config,
    model: &Model,
    source: &Source,
    (mean, std): (&[f32], &[f32]),
    device: &Device,
) -> crate::error::Result<Features> {
    extract_source_output(cfg, model, source, (mean, std), device, output_of(cfg))
}

/// [`extract_output`] of a [`Source`].
pub fn extract_source_output(
    cfg: &crate::config::Config,
    model: &Model,
    source: &Source,
    (mean, std): (&[f32], &[f32]),
    device: &Device,
    output: Output,
) -> crate::error::Result<Features> {
    match source.memory() {
        Some(split) => Ok(extract_output(
            cfg,
            model,
            split,
            (mean, std),
            device,
            output,
        )),
        None => {
            let rows = |start, n| source.rows(start, n);
            let shape = crate::data::Fetch::shape(source);
            encode_rows(
                model,
                (source.len(), shape),
                rows,
                (mean, std),
                device,
                output,
            )
        }
    }
}

/// The raw inputs as features (the pixel baseline), normalised with `mean`/`std`.
pub fn raw(split: &Split, mean: &[f32], std: &[f32]) -> Features {
    Features {
        data: split.normalised(mean, std),
        dim: split.sample_len(),
        labels: split.labels.clone(),
    }
}

/// kNN and (when `cfg.linear_epochs > 0`) linear-probe accuracy on `test`, with `train`
/// as the kNN memory and the probe's training set. Only labelled samples (labels below
/// `classes`) take part; with none on either side no classifier runs and the evaluation
/// says so ([`Evaluation::unlabelled`]).
pub fn evaluate(
    train: &Features,
    test: &Features,
    classes: usize,
    cfg: &EvalConfig,
    seed: u64,
    device: &Device,
) -> Evaluation {
    let empty = (train.is_empty(), test.is_empty());
    let (train, test) = (train.labelled(classes), test.labelled(classes));
    let missing = match (empty, train.is_empty(), test.is_empty()) {
        ((_, true), ..) => Some("the test split is empty"),
        ((true, _), ..) => Some("the training split is empty"),
        (_, true, true) => Some("neither split has labels"),
        (_, true, false) => Some("the training split has no labels"),
        (_, false, true) => Some("the test split has no labels"),
        (_, false, false) => None,
    };
    if let Some(why) = missing {
        return Evaluation {
            scores: Scores {
                knn_top1: None,
                knn_top5: None,
                linear_top1: None,
                knn_seconds: 0.0,
                linear_seconds: 0.0,
            },
            knn: None,
            linear: None,
            unlabelled: Some(format!("kNN and linear probe not computed: {why}")),
        };
    }
    let t0 = std::time::Instant::now();
    let top = if classes > 5 { 5 } else { 1 };
    let ranked = knn::ranked(
        &train,
        &test,
        cfg.knn_k,
        cfg.knn_temperature,
        classes,
        top,
        device,
    );
    let pred: Vec<u32> = ranked.iter().map(|r| r[0]).collect();
    let knn = ClassScores::new(&pred, &test.labels, classes);
    let knn_top5 = (top == 5).then(|| knn::top_k_accuracy(&ranked, &test.labels));
    let knn_seconds = t0.elapsed().as_secs_f64();
    let linear = (cfg.linear_epochs > 0).then(|| {
        let p = linear::probe(
            &train,
            &test,
            classes,
            linear::ProbeConfig {
                epochs: cfg.linear_epochs,
                lr: cfg.linear_lr,
                batch: cfg.linear_batch,
                seed,
            },
            device,
        );
        ClassScores::new(&p.test_pred, &test.labels, classes)
    });
    Evaluation {
        scores: Scores {
            knn_top1: Some(knn.top1),
            knn_top5,
            linear_top1: linear.as_ref().map(|l| l.top1),
            knn_seconds,
            linear_seconds: t0.elapsed().as_secs_f64() - knn_seconds,
        },
        knn: Some(knn),
        linear,
        unlabelled: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 18, items 7 and 10: an empty or unlabelled split is named, not scored 0 and
    /// not a panic; unlabelled rows beside labelled ones are left out of the scores.
    #[test]
    fn what_cannot_be_classified_is_said() {
        let f = |labels: Vec<u32>| Features {
            data: labels.iter().flat_map(|&l| [l as f32 % 7.0, 1.0]).collect(),
            dim: 2,
            labels,
        };
        let cfg = EvalConfig {
            linear_epochs: 2,
            ..EvalConfig::default()
        };
        let device = Device::flex();
        let train = f(vec![0, 1, 0, 1, u32::MAX]);
        for (test, why) in [
            (f(vec![]), "the test split is empty"),
            (f(vec![u32::MAX, u32::MAX]), "the test split has no labels"),
        ] {
            let e = evaluate(&train, &test, 2, &cfg, 0, &device);
            assert_eq!(e.scores.knn_top1, None);
            assert!(e.unlabelled.as_deref().unwrap().ends_with(why), "{e:?}");
        }
        let e = evaluate(&train, &f(vec![0, u32::MAX, 1]), 2, &cfg, 0, &device);
        assert_eq!(e.knn.as_ref().map(|k| k.per_class.len()), Some(2));
        assert_eq!(e.scores.knn_top1, Some(1.0));
        assert!(e.unlabelled.is_none());
    }

    /// `eval.layer = "z"` evaluates the head's embedding: its width, not `h`'s; `eval.stage`
    /// an earlier block's pooled map, of that block's width.
    #[test]
    fn the_evaluated_layer_is_the_configured_one() {
        let device = Device::flex();
        let text = "[encoder]\nchannels = [4, 8]\nstrides = [1, 2]\n[head]\nkind = \"mlp\"\nhidden = 6\nout = 5\n";
        let split = Split {
            data: (0..2 * 36).map(|i| (i % 5) as f32 / 5.0).collect(),
            shape: [1, 6, 6],
            labels: vec![0, 1],
        };
        for (layer, dim) in [("layer=\"h\"", 8), ("layer=\"z\"", 5), ("stage=1", 4)] {
            let sets = [format!("eval.{layer}")];
            let cfg =
                crate::config::Config::parse(text, std::path::Path::new("x.toml"), &sets).unwrap();
            let model = Model::new(&cfg, split.shape, &device).unwrap();
            assert_eq!(
                extract(&cfg, &model, &split, &[0.5], &[0.5], &device).dim,
                dim,
                "{layer}"
            );
        }
    }

    /// With one encoder per sense, each sense's half of the features is its own encoder's
    /// `h` of that sense's channel.
    #[test]
    fn each_sense_is_encoded_by_its_own_encoder() {
        let device = Device::flex();
        let (cfg, model) = crate::model::tests::per_view_model(&device);
        let data: Vec<f32> = (0..3 * 2 * 36)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let split = Split {
            data,
            shape: [2, 6, 6],
            labels: vec![0, 1, 2],
        };
        let f = extract(&cfg, &model, &split, &[0.0, 0.0], &[1.0, 1.0], &device);
        assert_eq!(f.dim, 16);
        let sense = |c: usize| {
            let x: Vec<f32> = (0..3)
                .flat_map(|i| split.data[(i * 2 + c) * 36..(i * 2 + c + 1) * 36].to_vec())
                .collect();
            Tensor::<4>::from_data(TensorData::new(x, [3, 1, 6, 6]), &device)
        };
        let h0: Vec<f32> = model
            .encoder
            .forward(sense(0))
            .into_data()
            .iter::<f32>()
            .collect();
        let h1: Vec<f32> = model.view_encoders[0]
            .forward(sense(1))
            .into_data()
            .iter::<f32>()
            .collect();
        for i in 0..3 {
            let want: Vec<f32> = [&h0[i * 8..(i + 1) * 8], &h1[i * 8..(i + 1) * 8]].concat();
            let got = f.row(i);
            assert!(
                got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5),
                "sample {i}: {got:?} vs {want:?}"
            );
        }
    }
}
