//! Streamed image collections (`data.dataset = "images"`): the same samples as a folder
//! held in memory, from folders, manifests and tar shards; exact resume after kill -9;
//! corrupt and changed files named or skipped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{bin, preset, records_untimed, train};
use contrastive::data::stream::index::{Index, Kind};

const CLASSES: [&str; 4] = ["ant", "bee", "cat", "dog"];

/// Image `i` of class `c`: a coloured disc of the class's hue on a noisy background,
/// `w` x `h` pixels.
pub(crate) fn picture(c: usize, i: usize, w: u32, h: u32) -> image::RgbImage {
    let hue: [u8; 3] = [[220, 60, 40], [40, 200, 60], [50, 80, 230], [220, 200, 40]][c];
    let mut s = (c * 7919 + i * 104_729) as u64 | 1;
    let mut noise = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 60) as u8
    };
    let (cx, cy) = (w as f32 * 0.5, h as f32 * 0.5);
    let r = (w.min(h) as f32) * (0.25 + 0.02 * (i % 5) as f32);
    image::RgbImage::from_fn(w, h, |x, y| {
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        let n = noise();
        if d < r {
            image::Rgb([
                hue[0].saturating_sub(n),
                hue[1].saturating_sub(n),
                hue[2].saturating_sub(n),
            ])
        } else {
            image::Rgb([n, n, n])
        }
    })
}

/// Writes `train/<class>/NNN.EXT` (`per_class` each) and `test/<class>/NNN.EXT` (a
/// quarter as many); `mixed` gives every third image another size and aspect.
pub(crate) fn collection(
    dir: &Path,
    per_class: usize,
    ext: &str,
    mixed: bool,
) -> Vec<(PathBuf, usize, bool)> {
    let mut written = Vec::new();
    for (split, n) in [("train", per_class), ("test", per_class / 4)] {
        for (c, name) in CLASSES.iter().enumerate() {
            let folder = dir.join(split).join(name);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..n {
                let (w, h) = if mixed && i % 3 == 0 {
                    (40, 30)
                } else {
                    (24, 24)
                };
                let path = folder.join(format!("{i:03}.{ext}"));
                picture(c, i + if split == "test" { 1000 } else { 0 }, w, h)
                    .save(&path)
                    .unwrap();
                written.push((path, c, split == "test"));
            }
        }
    }
    written
}

/// The overrides of a short run on 24-pixel RGB images.
pub(crate) fn sets(extra: &[&str]) -> Vec<String> {
    [
        "data.mean=[0.3, 0.3, 0.3]",
        "data.std=[0.3, 0.3, 0.3]",
        "data.image_size=24",
        "train.batch_size=32",
        "train.epochs=2",
        "train.checkpoint_every=2",
        "train.keep_checkpoints=3",
        "eval.linear_epochs=2",
        "eval.random_init=false",
        "encoder.channels=[8, 16, 16, 32]",
        "head.hidden=32",
        "head.out=16",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

fn run(out: &Path, dataset: &str, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut s = sets(extra);
    s.push(format!("data.dataset={dataset}"));
    s.push(format!("data.dir={}", dir.display()));
    train(&preset("simclr-fashion-mnist"), s, out)
        .output()
        .unwrap()
}

fn ok(o: std::process::Output) -> std::process::Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

#[test]
fn a_streamed_folder_trains_exactly_as_the_folder_in_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pictures");
    collection(&dir, 32, "png", false);
    let memory = tmp.path().join("memory");
    ok(run(&memory, "folder", &dir, &[]));
    let want = records_untimed(&memory);
    assert!(want.last().unwrap().get("knn_top1").is_some(), "{want:?}");
    // full-size crops of equal-size images, decoded now or from the cache: the same views
    for cache in ["data.cache_mb=0", "data.cache_mb=64"] {
        let out = tmp.path().join(cache);
        ok(run(&out, "images", &dir, &[cache]));
        assert_eq!(records_untimed(&out), want, "{cache}");
    }
    // the tools read a streamed run back: eval scores what training scored
    let out = tmp.path().join("data.cache_mb=0");
    let knn = want.last().unwrap()["knn_top1"].as_f64().unwrap();
    let o = ok(bin().arg("eval").arg(&out).output().unwrap());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("{knn:.4}")), "{text}");
    ok(bin().arg("report").arg(&out).output().unwrap());
    ok(bin()
        .args(["embed", "--limit", "20"])
        .arg(&out)
        .output()
        .unwrap());
    assert!(out.join("embeddings/test_embeddings.npy").is_file());
}

#[test]
fn folders_manifests_and_tar_shards_index_the_same_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pictures");
    let written = collection(&dir, 8, "jpg", true);

    let mut csv = String::from("path,label,split\n");
    let mut jsonl = String::new();
    for (p, c, test) in &written {
        let rel = p.strip_prefix(&dir).unwrap().display().to_string();
        let split = if *test { "test" } else { "train" };
        csv.push_str(&format!("{rel},{},{split}\n", CLASSES[*c]));
        jsonl.push_str(&format!(
            "{{\"path\": \"{rel}\", \"label\": \"{}\", \"split\": \"{split}\"}}\n",
            CLASSES[*c]
        ));
    }
    std::fs::write(dir.join("list.csv"), csv).unwrap();
    std::fs::write(dir.join("list.jsonl"), jsonl).unwrap();

    // WebDataset shards: <key>.jpg with <key>.cls holding the class name
    let shards = tmp.path().join("shards");
    std::fs::create_dir(&shards).unwrap();
    for (split, test) in [("train", false), ("test", true)] {
        let file = std::fs::File::create(shards.join(format!("{split}-000000.tar"))).unwrap();
        let mut tar = tar::Builder::new(file);
        for (k, (p, c, _)) in written.iter().enumerate().filter(|(_, w)| w.2 == test) {
            tar.append_path_with_name(p, format!("{k:05}.jpg")).unwrap();
            let cls = CLASSES[*c].as_bytes();
            let mut h = tar::Header::new_gnu();
            h.set_size(cls.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, format!("{k:05}.cls"), cls).unwrap();
        }
        tar.finish().unwrap();
    }

    let summary = |idx: &Index| {
        let mut v: Vec<(bool, String)> = idx
            .entries
            .iter()
            .map(|e| (e.test, idx.classes[e.label as usize].clone()))
            .collect();
        v.sort();
        v
    };
    let folder = Index::scan(&dir, 0.1).unwrap();
    assert_eq!(folder.kind, Kind::Folder);
    assert_eq!(folder.classes, CLASSES);
    assert_eq!(folder.entries.len(), written.len());
    for (file, kind) in [
        (dir.join("list.csv"), Kind::Manifest),
        (dir.join("list.jsonl"), Kind::Manifest),
        (shards.clone(), Kind::Tar),
    ] {
        let idx = Index::scan(&file, 0.1).unwrap();
        assert_eq!(idx.kind, kind);
        assert_eq!(idx.classes, CLASSES, "{}", file.display());
        assert_eq!(summary(&idx), summary(&folder), "{}", file.display());
    }
    // the manifest lists the folder's files in the folder's order: the same run
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(run(&a, "images", &dir, &["train.epochs=1"]));
    ok(run(
        &b,
        "images",
        &dir.join("list.csv"),
        &["train.epochs=1"],
    ));
    assert_eq!(records_untimed(&a), records_untimed(&b));
    // shard members are read from their offsets, and the run evaluates
    let c = tmp.path().join("c");
    ok(run(&c, "images", &shards, &["train.epochs=1"]));
    assert!(records_untimed(&c)
        .last()
        .unwrap()
        .get("knn_top1")
        .is_some());

    // the index file is read instead of the tree, and `data info` reports sizes
    let o = ok(bin().args(["data", "index"]).arg(&dir).output().unwrap());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("indexed {} images", written.len()))
    );
    let indexed = Index::open(&dir, 0.1).unwrap();
    assert_eq!(summary(&indexed), summary(&folder));
    assert!(indexed
        .entries
        .iter()
        .all(|e| e.width > 0 && e.channels == 3));
    let o = ok(bin().args(["data", "info"]).arg(&dir).output().unwrap());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("width (px)") && text.contains("24.000") && text.contains("40.000"),
        "{text}"
    );
}

#[test]
fn corrupt_files_are_named_or_skipped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pictures");
    let written = collection(&dir, 16, "jpg", true);
    let bad = &written[5].0;
    let bytes = std::fs::read(bad).unwrap();
    std::fs::write(bad, &bytes[..100]).unwrap();

    let o = run(
        &tmp.path().join("a"),
        "images",
        &dir,
        &["data.cache_mb=0", "train.epochs=1"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err.lines().last().unwrap();
    assert!(
        line.contains(&bad.display().to_string()) && line.contains("cannot decode image"),
        "{err}"
    );

    let b = tmp.path().join("b");
    ok(run(
        &b,
        "images",
        &dir,
        &["data.cache_mb=0", "data.skip_bad=true"],
    ));
    let epochs: Vec<_> = records_untimed(&b)
        .into_iter()
        .filter(|r| r.get("mi_bound").is_some())
        .collect();
    let skipped: Vec<u64> = epochs
        .iter()
        .map(|r| r["skipped_files"].as_u64().unwrap())
        .collect();
    // the bad file is met in the first epoch and not tried again
    assert_eq!(skipped, [1, 0], "{epochs:?}");
}

#[test]
fn changed_files_are_refused_and_resume_needs_the_same_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pictures");
    let written = collection(&dir, 16, "png", false);
    ok(bin().args(["data", "index"]).arg(&dir).output().unwrap());
    let changed = &written[3].0;
    picture(2, 999, 24, 24).save(changed).unwrap();
    let o = run(&tmp.path().join("a"), "images", &dir, &["train.epochs=1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains(&changed.display().to_string())
            && err.contains("changed since it was indexed"),
        "{err}"
    );

    // re-indexed, the run trains; a resume after another file arrives is refused
    ok(bin().args(["data", "index"]).arg(&dir).output().unwrap());
    let b = tmp.path().join("b");
    ok(run(&b, "images", &dir, &["train.epochs=1"]));
    picture(0, 500, 24, 24)
        .save(dir.join("train/ant/new.png"))
        .unwrap();
    ok(bin().args(["data", "index"]).arg(&dir).output().unwrap());
    let o = bin().args(["train", "--resume"]).arg(&b).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("was written on other data"),
        "{err}"
    );
}

#[test]
fn a_streamed_run_killed_mid_epoch_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pictures");
    collection(&dir, 128, "jpg", true);
    let extra = ["data.cache_mb=0", "data.workers=2"];
    let a = tmp.path().join("a");
    ok(run(&a, "images", &dir, &extra));
    let want = records_untimed(&a);
    // 16 steps an epoch: killed after the checkpoint at step 4 of the first epoch
    let b = tmp.path().join("b");
    let mut s = sets(&extra);
    s.push("data.dataset=images".into());
    s.push(format!("data.dir={}", dir.display()));
    let mut child = train(&preset("simclr-fashion-mnist"), s, &b)
        .spawn()
        .unwrap();
    let lines =
        || std::fs::read_to_string(b.join("metrics.jsonl")).map_or(0, |t| t.lines().count());
    let t0 = Instant::now();
    while lines() < 5 {
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    ok(bin().args(["train", "--resume"]).arg(&b).output().unwrap());
    assert_eq!(records_untimed(&b), want);
}

/// `data.reduced_decode`: large JPEGs decoded at 1/4 or 1/8 of their sides where every
/// view's crop allows give nearly the views of full-size decodes, the same every time.
#[test]
fn reduced_scale_decodes_draw_nearly_the_full_size_views() {
    use contrastive::data::stream::{self, Options};
    use contrastive::data::Source;
    use contrastive::views::augment::AugmentConfig;
    use contrastive::views::transform::TransformViews;
    use contrastive::views::Sampler;

    let tmp = tempfile::tempdir().unwrap();
    for (c, name) in CLASSES.iter().enumerate() {
        let folder = tmp.path().join("train").join(name);
        std::fs::create_dir_all(&folder).unwrap();
        // smooth pictures: on noise, a full-size crop's bilinear samples alias where the
        // scaled IDCT averages, and the two would differ by the noise, not by the decode
        for i in 0..8 {
            let r = 60.0 + 8.0 * i as f32;
            image::RgbImage::from_fn(320, 256, |x, y| {
                let (x, y) = (x as f32, y as f32);
                let inside = (x - 160.0).hypot(y - 128.0) < r;
                let d = if inside { 200.0 } else { 40.0 * c as f32 };
                image::Rgb([
                    (255.0 * x / 320.0) as u8,
                    (255.0 * y / 256.0) as u8,
                    d as u8,
                ])
            })
            .save(folder.join(format!("{i}.jpg")))
            .unwrap();
        }
    }
    let open = |reduced_decode| {
        let o = Options {
            side: 24,
            max_pixels: 1 << 24,
            skip_bad: false,
            cache_bytes: 0,
            holdout: 0.0,
            reduced_decode,
        };
        Source::Stream(stream::open(tmp.path(), &o).unwrap().train)
    };
    let views = TransformViews {
        augment: vec![
            AugmentConfig {
                size: 24,
                jitter_p: 0.0,
                ..AugmentConfig::default()
            };
            2
        ],
        mean: vec![0.0; 3],
        std: vec![1.0; 3],
    };
    let idx: Vec<usize> = (0..32).collect();
    let (full, reduced) = (open(false), open(true));
    let a = views.sample(&full, &idx, 3).unwrap().groups.remove(0).data;
    let b = views
        .sample(&reduced, &idx, 3)
        .unwrap()
        .groups
        .remove(0)
        .data;
    assert_eq!(
        b,
        views
            .sample(&reduced, &idx, 3)
            .unwrap()
            .groups
            .remove(0)
            .data
    );
    let mean_diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .sum::<f64>()
        / a.len() as f64;
    eprintln!("mean |full - reduced| = {mean_diff:.4}");
    assert!(a != b, "no image was decoded at a reduced scale");
    // measured: 0.0074 of the [0, 1] range
    assert!(mean_diff < 0.015, "mean difference {mean_diff}");
}
