//! Which invariances a representation has learned (the review's first open question):
//! for each family of transformation at several strengths, how similar the embedding of
//! a test input stays to the embedding of its transformed version, against random pairs,
//! and how well kNN still classifies transformed inputs.
//!
//! The score of a family at a strength is `(s_T - s_rand) / (1 - s_rand)`, with `s_T` the
//! mean cosine similarity of `f(x)` and `f(T x)` over the test inputs and `s_rand` the mean
//! cosine of `f(x_i)` and `f(x_j)` over random pairs: 1 when the transformation does not
//! move the embedding (invariant), 0 when it moves it as far as another random input.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::data::Split;
use crate::error::{Error, Result};
use crate::eval::{self, Output};
use crate::report::{html, plot};
use crate::train::saved::{Loaded, SavedRun};
use crate::views::augment::{self, colour, CropBox};
use crate::views::transform::mix;

/// A family of transformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// A centred crop keeping this fraction of the area, resized back.
    CropScale,
    /// Horizontal flip.
    Flip,
    /// Rotation by this many degrees about the centre (zeros outside).
    Rotation,
    /// Values multiplied by `1 - s`.
    Brightness,
    /// Contrast scaled by `1 - s` about the mean.
    Contrast,
    /// Saturation scaled by `1 - s` (RGB only).
    Saturation,
    /// Hue rotated by `s` turns (RGB only).
    Hue,
    /// Luma in every channel (RGB only).
    Greyscale,
    /// Gaussian blur of standard deviation `s` pixels.
    Blur,
    /// Values above `1 - s` inverted.
    Solarise,
    /// Gaussian noise of standard deviation `s` (values in `[0, 1]`).
    Noise,
    /// A square of side `s` of the image's side set to 0 at a random place (cut-out).
    Occlusion,
    /// Series: shifted in time by `s` of their length (edge values repeated).
    TimeShift,
    /// Series: time warped, `t' = t + s L sin(pi t / L) / pi`.
    Warp,
    /// Series: this fraction of the channels set to 0.
    ChannelDropout,
}

/// The families and strengths probed on images (`channels` 1 or 3) or series.
pub fn families(series: bool, channels: usize) -> Vec<(Family, Vec<f32>)> {
    use Family::*;
    if series {
        let mut f = vec![
            (TimeShift, vec![0.05, 0.1, 0.25]),
            (Warp, vec![0.05, 0.1, 0.2]),
            (Noise, vec![0.05, 0.1, 0.2]),
        ];
        if channels > 1 {
            f.push((ChannelDropout, vec![1.0 / channels as f32, 0.5]));
        }
        return f;
    }
    let mut f = vec![
        (CropScale, vec![0.8, 0.5, 0.25]),
        (Flip, vec![1.0]),
        (Rotation, vec![10.0, 30.0, 90.0]),
        (Brightness, vec![0.2, 0.4, 0.6]),
        (Contrast, vec![0.2, 0.4, 0.6]),
    ];
    if channels == 3 {
        f.extend([
            (Saturation, vec![0.5, 1.0]),
            (Hue, vec![0.1, 0.25, 0.5]),
            (Greyscale, vec![1.0]),
        ]);
    }
    f.extend([
        (Blur, vec![0.5, 1.0, 2.0]),
        (Solarise, vec![0.25, 0.5]),
        (Noise, vec![0.05, 0.1, 0.2]),
        (Occlusion, vec![0.25, 0.5]),
    ]);
    f
}

/// Applies `family` at `strength` to the `[c, h, w]` image (or `[c, 1, length]` series)
/// `img` in `[0, 1]` units, drawing from `rng` where the family is random.
pub fn apply(family: Family, s: f32, img: &mut [f32], shape: [usize; 3], rng: &mut impl Rng) {
    let [c, h, w] = shape;
    match family {
        Family::CropScale => {
            let side = |n: usize| ((n as f32 * s.sqrt()).round() as usize).clamp(1, n);
            let (ch, cw) = (side(h), side(w));
            let b = CropBox {
                top: (h - ch) / 2,
                left: (w - cw) / 2,
                height: ch,
                width: cw,
            };
            resample(img, |dst, src| {
                augment::crop_resize(src, shape, b, h, false, dst)
            });
        }
        Family::Flip => resample(img, |dst, src| {
            let full = CropBox {
                top: 0,
                left: 0,
                height: h,
                width: w,
            };
            augment::crop_resize(src, shape, full, h, true, dst)
        }),
        Family::Rotation => resample(img, |dst, src| rotate(src, shape, s, dst)),
        Family::Brightness => augment::brightness(img, 1.0 - s),
        Family::Contrast => augment::contrast(img, c, 1.0 - s),
        Family::Saturation => colour::saturation(img, c, 1.0 - s),
        Family::Hue => colour::hue(img, c, s),
        Family::Greyscale => colour::grayscale(img, c),
        Family::Blur => {
            let kernel =
                augment::blur::gaussian_kernel(augment::blur::auto_kernel_size(h.max(w)), s);
            augment::blur::blur(img, shape, &kernel);
        }
        Family::Solarise => colour::solarize(img, 1.0 - s),
        Family::Noise => img.iter_mut().for_each(|v| *v += s * normal(rng)),
        Family::Occlusion => {
            let side = |n: usize| ((n as f32 * s).round() as usize).clamp(1, n);
            let (oh, ow) = (side(h), side(w));
            let (top, left) = (rng.random_range(0..=h - oh), rng.random_range(0..=w - ow));
            for ch in 0..c {
                for y in top..top + oh {
                    img[ch * h * w + y * w + left..ch * h * w + y * w + left + ow].fill(0.0);
                }
            }
        }
        Family::TimeShift => {
            let k = (s * w as f32).round() as isize;
            resample(img, |dst, src| {
                remap_time(src, shape, dst, |t| {
                    (t as isize - k).clamp(0, w as isize - 1) as f32
                })
            });
        }
        Family::Warp => resample(img, |dst, src| {
            let l = (w - 1).max(1) as f32;
            remap_time(src, shape, dst, |t| {
                let t = t as f32;
                (t + s * l * (std::f32::consts::PI * t / l).sin() / std::f32::consts::PI)
                    .clamp(0.0, l)
            })
        }),
        Family::ChannelDropout => {
            let drop = ((s * c as f32).round() as usize).clamp(1, c);
            let mut order: Vec<usize> = (0..c).collect();
            for i in (1..c).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            for &ch in &order[..drop] {
                img[ch * h * w..(ch + 1) * h * w].fill(0.0);
            }
        }
    }
}

/// Runs `f(dst, src)` with a copy of `img` as the source, writing into `img`.
fn resample(img: &mut [f32], f: impl FnOnce(&mut [f32], &[f32])) {
    let src = img.to_vec();
    f(img, &src);
}

/// Rotation by `degrees` about the centre, bilinear, zeros outside the image.
fn rotate(src: &[f32], [c, h, w]: [usize; 3], degrees: f32, dst: &mut [f32]) {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        let at = |y: isize, x: isize| match (0..h as isize).contains(&y)
            && (0..w as isize).contains(&x)
        {
            true => plane[y as usize * w + x as usize],
            false => 0.0,
        };
        for y in 0..h {
            for x in 0..w {
                let (dy, dx) = (y as f32 - cy, x as f32 - cx);
                let sy = cos * dy - sin * dx + cy;
                let sx = sin * dy + cos * dx + cx;
                let (y0, x0) = (sy.floor(), sx.floor());
                let (fy, fx) = (sy - y0, sx - x0);
                let (y0, x0) = (y0 as isize, x0 as isize);
                let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1) * fx;
                let bot = at(y0 + 1, x0) * (1.0 - fx) + at(y0 + 1, x0 + 1) * fx;
                dst[ch * h * w + y * w + x] = top * (1.0 - fy) + bot * fy;
            }
        }
    }
}

/// Every row of a `[c, h, length]` series read at source time `source(t)` (linear).
fn remap_time(src: &[f32], [c, h, w]: [usize; 3], dst: &mut [f32], source: impl Fn(usize) -> f32) {
    for row in 0..c * h {
        let line = &src[row * w..(row + 1) * w];
        for t in 0..w {
            let s = source(t);
            let (i0, f) = (s.floor() as usize, s - s.floor());
            let i1 = (i0 + 1).min(w - 1);
            dst[row * w + t] = line[i0] * (1.0 - f) + line[i1] * f;
        }
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut impl Rng) -> f32 {
    let (u, v): (f32, f32) = (rng.random::<f32>().max(1e-12), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// The inputs `x` (`n` samples of `shape`, `[0, 1]` units) transformed by `family` at
/// `strength`, each sample from its own seed.
pub fn transformed(
    x: &[f32],
    shape: [usize; 3],
    family: Family,
    strength: f32,
    seed: u64,
) -> Vec<f32> {
    let len: usize = shape.iter().product();
    let mut out = x.to_vec();
    for (i, img) in out.chunks_mut(len).enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, i as u64, family as u64));
        apply(family, strength, img, shape, &mut rng);
    }
    out
}

/// Mean cosine similarity of rows `a[i]` and `b[i]` (`dim` wide).
pub fn mean_cosine(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let cos = |x: &[f32], y: &[f32]| {
        let dot: f64 = x
            .iter()
            .zip(y)
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum();
        let n = |v: &[f32]| v.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt();
        dot / (n(x) * n(y)).max(1e-12)
    };
    let rows = a.len() / dim.max(1);
    (0..rows)
        .map(|i| cos(&a[i * dim..(i + 1) * dim], &b[i * dim..(i + 1) * dim]))
        .sum::<f64>()
        / rows.max(1) as f64
}

/// The rows of `f` (`dim` wide) in a random order with no row in its own place, seeded:
/// the random pairs of the baseline.
pub fn derangement(f: &[f32], dim: usize, seed: u64) -> Vec<f32> {
    let n = f.len() / dim.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // a random cyclic shift of a random permutation: sigma(perm[i]) = perm[i + 1]
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        perm.swap(i, rng.random_range(0..=i));
    }
    let mut to = vec![0usize; n];
    for i in 0..n {
        to[perm[i]] = perm[(i + 1) % n];
    }
    (0..n)
        .flat_map(|i| f[to[i] * dim..(to[i] + 1) * dim].to_vec())
        .collect()
}

/// The invariance score `(s_T - s_rand) / (1 - s_rand)`.
pub fn score(same: f64, random: f64) -> f64 {
    (same - random) / (1.0 - random).max(1e-12)
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub family: Family,
    pub strength: f32,
    /// Invariance score of `h` and of `z`.
    pub h: f64,
    pub z: f64,
    /// kNN top-1 on the transformed test inputs (train features untransformed).
    pub knn_top1: Option<f64>,
}

/// A run's probe: the random-pair similarities, kNN on untransformed test inputs, and
/// every family at every strength.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invariance {
    /// The run probed.
    pub run: String,
    /// Test inputs probed.
    pub samples: usize,
    /// Mean cosine of random pairs of `h` and of `z`: the 0 of the scores.
    pub random_h: f64,
    pub random_z: f64,
    /// kNN top-1 on the test inputs as they are.
    pub knn_top1: Option<f64>,
    pub probes: Vec<Probe>,
}

/// File names of a probe's outputs in its folder.
pub const JSON: &str = "invariance.json";

/// Probes the run `saved` (its data and model in `loaded`) on the first `limit` test
/// samples (0: all), with transformation draws from `seed`.
pub fn probe(saved: &SavedRun, loaded: &Loaded, limit: usize, seed: u64) -> Result<Invariance> {
    let cfg = &saved.config;
    let test = loaded.test.head(match limit {
        0 => loaded.test.len(),
        n => n,
    })?;
    if test.is_empty() {
        return Err(Error::data(&cfg.data.dir, "no test samples to probe"));
    }
    let series = test.shape[1] == 1
        && test.shape[2] > 1
        && cfg.encoder.kind == crate::encoder::EncoderKind::Conv1d;
    let (mean, std, device, model) = (&loaded.mean, &loaded.std, &loaded.device, &loaded.model);
    let features = |split: &Split, output| {
        eval::extract_output(cfg, model, split, (mean, std), device, output)
    };
    let (h0, z0) = (
        features(&test, Output::Representation),
        features(&test, Output::Projection),
    );
    let random_h = mean_cosine(&h0.data, &derangement(&h0.data, h0.dim, seed), h0.dim);
    let random_z = mean_cosine(&z0.data, &derangement(&z0.data, z0.dim, seed), z0.dim);
    let classes = loaded.ds.classes;
    let labelled = loaded
        .train
        .labels()
        .iter()
        .any(|&l| (l as usize) < classes);
    let memory = match labelled {
        true => Some(
            eval::extract_source_output(
                cfg,
                model,
                &loaded.train,
                (mean, std),
                device,
                Output::Representation,
            )?
            .labelled(classes),
        ),
        false => None,
    };
    let (k, t) = (cfg.eval.knn_k, cfg.eval.knn_temperature);
    let knn = |f: &eval::knn::Features| {
        memory.as_ref().and_then(|m| {
            let f = f.labelled(classes);
            (!f.is_empty() && !m.is_empty()).then(|| {
                eval::knn::accuracy(&eval::knn::predict(m, &f, k, t, classes, device), &f.labels)
            })
        })
    };
    let mut probes = Vec::new();
    for (family, strengths) in families(series, test.shape[0]) {
        for strength in strengths {
            let x = Split {
                data: transformed(&test.data, test.shape, family, strength, seed),
                shape: test.shape,
                labels: test.labels.clone(),
            };
            let (h, z) = (
                features(&x, Output::Representation),
                features(&x, Output::Projection),
            );
            probes.push(Probe {
                family,
                strength,
                h: score(mean_cosine(&h0.data, &h.data, h.dim), random_h),
                z: score(mean_cosine(&z0.data, &z.data, z.dim), random_z),
                knn_top1: knn(&h),
            });
        }
    }
    Ok(Invariance {
        run: saved.dir.display().to_string(),
        samples: test.len(),
        random_h,
        random_z,
        knn_top1: knn(&h0),
        probes,
    })
}

/// The name of a family as written in tables.
pub fn family_name(f: Family) -> String {
    crate::error::kind_name(&f)
}

/// The probes of one or more runs side by side, as Markdown: one row per family and
/// strength, the invariance of `h` and `z` and the kNN accuracy of each run.
pub fn markdown(runs: &[Invariance]) -> String {
    let (header, rows) = table(runs);
    let line = |c: &[String]| format!("| {} |\n", c.join(" | "));
    let mut out = line(&header);
    out += &line(&vec!["---".to_string(); header.len()]);
    rows.iter().for_each(|r| out += &line(r));
    out
}

fn table(runs: &[Invariance]) -> (Vec<String>, Vec<Vec<String>>) {
    let names: Vec<String> = runs.iter().map(|r| short(&r.run)).collect();
    let mut header = vec!["family".to_string(), "strength".to_string()];
    for n in &names {
        header.extend([format!("h {n}"), format!("z {n}"), format!("kNN {n}")]);
    }
    let acc = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{a:.4}"));
    let mut rows = vec![[
        vec!["none".to_string(), "-".to_string()],
        runs.iter()
            .flat_map(|r| ["1".to_string(), "1".to_string(), acc(r.knn_top1)])
            .collect(),
    ]
    .concat()];
    for (i, p) in runs[0].probes.iter().enumerate() {
        let mut row = vec![family_name(p.family), format!("{}", p.strength)];
        for r in runs {
            match r
                .probes
                .get(i)
                .filter(|q| q.family == p.family && q.strength == p.strength)
            {
                Some(q) => row.extend([
                    format!("{:.3}", q.h),
                    format!("{:.3}", q.z),
                    acc(q.knn_top1),
                ]),
                None => row.extend(["-".to_string(), "-".to_string(), "-".to_string()]),
            }
        }
        rows.push(row);
    }
    (header, rows)
}

/// The last part of a run's path, as its name in tables.
fn short(run: &str) -> String {
    Path::new(run)
        .file_name()
        .map_or(run.to_string(), |n| n.to_string_lossy().into_owned())
}

/// A chart of the invariance of `h` of each run: one line per family over its strengths
/// (the mildest first), one chart per run, written as `invariance-<i>.png` into `dir`;
/// returns the file names with captions.
pub fn charts(runs: &[Invariance], dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let mut series: Vec<plot::Series> = Vec::new();
        for p in &r.probes {
            let name = family_name(p.family);
            let point = |s: &plot::Series| s.points.len() as f64 + 1.0;
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => {
                    let x = point(s);
                    s.points.push((x, p.h));
                }
                None => series.push(plot::Series {
                    name,
                    points: vec![(1.0, p.h)],
                    markers: true,
                }),
            }
        }
        let file = format!("invariance-{i}.png");
        let title = format!("Invariance of h: {}", short(&r.run));
        plot::lines(
            &dir.join(&file),
            &title,
            "strength (1 = mildest)",
            "invariance (1 = invariant, 0 = random pair)",
            &series,
        )?;
        out.push((file, title));
    }
    Ok(out)
}

/// Writes `invariance.json` (the first run's), `invariance.md`, the charts and
/// `invariance.html` into `dir`.
pub fn write(runs: &[Invariance], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let put = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    };
    let json = serde_json::to_string_pretty(&runs[0]).map_err(|e| Error::Invalid(e.to_string()))?;
    put(JSON, json)?;
    put("invariance.md", markdown(runs))?;
    let charts = charts(runs, dir)?;
    put(
        "invariance.html",
        html::page("Invariance probe", &section(runs, &charts, "")),
    )
}

/// The probe as an HTML section (for `invariance.html` and the run's report), its
/// pictures at `prefix` + file name.
pub fn section(runs: &[Invariance], charts: &[(String, String)], prefix: &str) -> String {
    let (header, rows) = table(runs);
    let mut body = format!(
        "<h2>Invariances</h2>\n<p>For each transformation, the cosine similarity of a test input's embedding and its transformed version's, as a fraction of the way from random pairs (0) to identical (1), over {} test inputs; kNN top-1 of the transformed inputs against the untransformed training set.</p>\n",
        runs[0].samples
    );
    body += &html::table(&header, &rows);
    for (file, caption) in charts {
        body += &html::figure(&format!("{prefix}{file}"), caption);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(n: usize, shape: [usize; 3], seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * shape.iter().product::<usize>())
            .map(|_| rng.random::<f32>())
            .collect()
    }

    /// `x` (`n` samples of `len`) through a fixed random linear map to 8 dimensions,
    /// after `pre` per sample.
    fn encode(x: &[f32], len: usize, pre: impl Fn(&mut [f32])) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let w: Vec<f32> = (0..8 * len).map(|_| normal(&mut rng)).collect();
        x.chunks(len)
            .flat_map(|img| {
                let mut img = img.to_vec();
                pre(&mut img);
                (0..8)
                    .map(|o| {
                        w[o * len..(o + 1) * len]
                            .iter()
                            .zip(&img)
                            .map(|(a, b)| a * b)
                            .sum::<f32>()
                    })
                    .collect::<Vec<f32>>()
            })
            .collect()
    }

    fn probe(
        x: &[f32],
        shape: [usize; 3],
        family: Family,
        s: f32,
        pre: impl Fn(&mut [f32]) + Copy,
    ) -> f64 {
        let len: usize = shape.iter().product();
        let f = encode(x, len, pre);
        let t = encode(&transformed(x, shape, family, s, 3), len, pre);
        score(
            mean_cosine(&f, &t, 8),
            mean_cosine(&f, &derangement(&f, 8, 5), 8),
        )
    }

    /// An encoder that sees only the luma cannot tell saturation apart, nor greyscale;
    /// one that sees only the value (the largest channel) cannot tell the hue apart.
    #[test]
    fn invariant_by_construction_scores_one() {
        let shape = [3, 6, 6];
        let x = images(64, shape, 1);
        let luma = |img: &mut [f32]| colour::grayscale(img, 3);
        let value = |img: &mut [f32]| {
            let n = img.len() / 3;
            for i in 0..n {
                let v = img[i].max(img[n + i]).max(img[2 * n + i]);
                (img[i], img[n + i], img[2 * n + i]) = (v, v, v);
            }
        };
        for (family, s) in [
            (Family::Saturation, 0.5),
            (Family::Saturation, 1.0),
            (Family::Greyscale, 1.0),
        ] {
            let got = probe(&x, shape, family, s, luma);
            assert!((got - 1.0).abs() < 1e-5, "{family:?} {s}: {got}");
        }
        for s in [0.1, 0.25, 0.5] {
            let got = probe(&x, shape, Family::Hue, s, value);
            assert!((got - 1.0).abs() < 1e-4, "hue {s}: {got}");
        }
        // and a transformation it does see scores below 1
        assert!(probe(&x, shape, Family::Hue, 0.25, luma) < 0.99);
    }

    /// A random encoder of random (zero-mean) inputs drowned in independent noise scores
    /// near 0: the transformed input is as unrelated to its source as another random
    /// input is; with no noise it scores 1.
    #[test]
    fn a_random_encoder_under_overwhelming_noise_scores_its_baseline() {
        let shape = [1, 8, 8];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let x: Vec<f32> = (0..256 * 64).map(|_| normal(&mut rng)).collect();
        let got = probe(&x, shape, Family::Noise, 20.0, |_| ());
        assert!(got.abs() < 0.1, "{got}");
        let none = probe(&x, shape, Family::Noise, 0.0, |_| ());
        assert!((none - 1.0).abs() < 1e-9, "{none}");
    }

    #[test]
    fn derangements_move_every_row() {
        let f: Vec<f32> = (0..20).map(|i| i as f32).collect();
        let d = derangement(&f, 2, 7);
        for i in 0..10 {
            assert_ne!(d[2 * i], f[2 * i]);
        }
        let mut sorted = d.clone();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(sorted, f);
    }

    /// Geometry: a 90-degree rotation of a one-pixel image moves the pixel a quarter
    /// turn; a flip mirrors; a time shift delays.
    #[test]
    fn transformations_do_what_they_say() {
        let shape = [1, 3, 3];
        let mut img = vec![0.0; 9];
        img[1] = 1.0; // top middle
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut r = img.clone();
        apply(Family::Rotation, 90.0, &mut r, shape, &mut rng);
        let at = r.iter().position(|&v| (v - 1.0).abs() < 1e-4).unwrap();
        assert!(at == 3 || at == 5, "{r:?}");
        let mut f = vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        apply(Family::Flip, 1.0, &mut f, shape, &mut rng);
        assert!((f[2] - 1.0).abs() < 1e-6, "{f:?}");
        let mut s = vec![0.0, 1.0, 2.0, 3.0];
        apply(Family::TimeShift, 0.25, &mut s, [1, 1, 4], &mut rng);
        assert_eq!(s, vec![0.0, 0.0, 1.0, 2.0]);
    }
}
