//! Dataset readers on small files written here in each official layout, their one-line
//! errors, and `data info` end to end.

use std::io::Write;
use std::path::Path;

use crate::common::{bin, dataset};
use contrastive::data::{self, fetch, idx};
use image::{GrayImage, Luma, Rgb, RgbImage};

fn load_err(name: &str, dir: &Path) -> String {
    let e = data::load(name, dir).unwrap_err().to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

// ---- CIFAR ----

/// A record: label byte(s), then red, green and blue planes filled with `r`, `g`, `b`.
fn cifar_record(labels: &[u8], [r, g, b]: [u8; 3]) -> Vec<u8> {
    let mut rec = labels.to_vec();
    for v in [r, g, b] {
        rec.extend(std::iter::repeat_n(v, 1024));
    }
    rec
}

fn write_cifar10(dir: &Path) {
    for k in 1..=5u8 {
        let mut bytes = cifar_record(&[k - 1], [10, 20, 30]);
        bytes.extend(cifar_record(&[9], [0, 0, 255]));
        write(&dir.join(format!("data_batch_{k}.bin")), bytes);
    }
    write(&dir.join("test_batch.bin"), cifar_record(&[3], [255, 0, 0]));
}

#[test]
fn cifar10_reads_records_in_chw_order() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path());
    let ds = data::load("cifar10", d.path()).unwrap();
    assert_eq!((ds.train.len(), ds.test.len(), ds.classes), (10, 1, 10));
    assert_eq!(ds.train.shape, [3, 32, 32]);
    assert_eq!(ds.train.labels[..4], [0, 9, 1, 9]);
    let s = ds.train.sample(0);
    assert_eq!((s[0], s[1023]), (10.0 / 255.0, 10.0 / 255.0));
    assert_eq!((s[1024], s[2048]), (20.0 / 255.0, 30.0 / 255.0));
    assert_eq!(ds.test.labels, vec![3]);
    assert_eq!(ds.class_names[9], "9");
}

#[test]
fn cifar10_errors_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path());
    let f = d.path().join("data_batch_2.bin");
    let b = std::fs::read(&f).unwrap();
    write(&f, &b[..b.len() - 7]);
    let e = load_err("cifar10", d.path());
    assert!(
        e.contains("data_batch_2.bin: truncated: 6139 bytes")
            && e.contains("multiple of the 3073-byte record"),
        "{e}"
    );

    write_cifar10(d.path());
    write(
        &d.path().join("test_batch.bin"),
        cifar_record(&[10], [0; 3]),
    );
    let e = load_err("cifar10", d.path());
    assert!(
        e.contains("test_batch.bin: record 0: label 10 out of range 0..10"),
        "{e}"
    );

    write_cifar10(d.path());
    std::fs::remove_file(d.path().join("data_batch_4.bin")).unwrap();
    let e = load_err("cifar10", d.path());
    assert!(e.contains("data_batch_4.bin: not found"), "{e}");
}

#[test]
fn cifar100_uses_fine_labels_inside_the_archive_folder() {
    let d = tempfile::tempdir().unwrap();
    let inner = d.path().join("cifar-100-binary");
    let mut train = cifar_record(&[4, 30], [1, 2, 3]);
    train.extend(cifar_record(&[19, 99], [4, 5, 6]));
    write(&inner.join("train.bin"), train);
    write(&inner.join("test.bin"), cifar_record(&[0, 7], [0; 3]));
    let names: String = (0..100).map(|i| format!("class{i}\n")).collect();
    write(&inner.join("fine_label_names.txt"), names);
    let ds = data::load("cifar100", d.path()).unwrap();
    assert_eq!(ds.train.labels, vec![30, 99]);
    assert_eq!(ds.test.labels, vec![7]);
    assert_eq!((ds.classes, ds.class_names[99].as_str()), (100, "class99"));

    write(&inner.join("test.bin"), cifar_record(&[0, 100], [0; 3]));
    let e = load_err("cifar100", d.path());
    assert!(
        e.contains("test.bin: record 0: label 100 out of range 0..100"),
        "{e}"
    );
}

// ---- image folders ----

fn grey(path: &Path, w: u32, h: u32, level: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    GrayImage::from_pixel(w, h, Luma([level]))
        .save(path)
        .unwrap();
}

fn colour(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_pixel(w, h, Rgb(rgb)).save(path).unwrap();
}

/// `train/{cat,dog}` and `test/{cat,dog}`, grey, 5x4 pixels.
fn write_tree(root: &Path) {
    grey(&root.join("train/dog/b.png"), 5, 4, 255);
    grey(&root.join("train/dog/a.png"), 5, 4, 51);
    grey(&root.join("train/cat/x.png"), 5, 4, 0);
    grey(&root.join("test/cat/y.png"), 5, 4, 102);
    grey(&root.join("test/dog/z.png"), 5, 4, 204);
    write(&root.join("train/cat/notes.txt"), "not an image");
}

#[test]
fn folder_classes_are_sorted_sub_folders() {
    let d = tempfile::tempdir().unwrap();
    write_tree(d.path());
    let ds = data::load("folder", d.path()).unwrap();
    assert_eq!(ds.class_names, vec!["cat", "dog"]);
    assert_eq!(ds.train.shape, [1, 4, 5]);
    assert_eq!(ds.train.labels, vec![0, 1, 1]);
    assert_eq!(ds.test.labels, vec![0, 1]);
    // dog/a.png (51) comes before dog/b.png (255).
    assert_eq!(ds.train.sample(1)[0], 0.2);
    assert_eq!(ds.test.sample(1)[19], 0.8);
}

#[test]
fn folder_with_one_colour_image_gives_three_channels() {
    let d = tempfile::tempdir().unwrap();
    write_tree(d.path());
    colour(&d.path().join("test/cat/y.png"), 5, 4, [255, 0, 51]);
    let ds = data::load("folder", d.path()).unwrap();
    assert_eq!(ds.train.shape, [3, 4, 5]);
    let s = ds.test.sample(0);
    assert_eq!((s[0], s[20], s[40]), (1.0, 0.0, 0.2));
    let g = ds.train.sample(1);
    assert_eq!((g[0], g[20], g[40]), (0.2, 0.2, 0.2));
}

#[test]
fn folder_reads_jpeg() {
    let d = tempfile::tempdir().unwrap();
    write_tree(d.path());
    colour(&d.path().join("train/cat/w.jpg"), 5, 4, [200, 100, 50]);
    let ds = data::load("folder", d.path()).unwrap();
    assert_eq!((ds.train.len(), ds.train.shape), (4, [3, 4, 5]));
}

#[test]
fn folder_errors_name_the_files() {
    let d = tempfile::tempdir().unwrap();
    write_tree(d.path());
    grey(&d.path().join("test/dog/z.png"), 6, 4, 0);
    let e = load_err("folder", d.path());
    assert!(
        e.contains("z.png: 6x4 pixels, but ") && e.contains("cat/x.png is 5x4"),
        "{e}"
    );

    let d = tempfile::tempdir().unwrap();
    write_tree(d.path());
    write(
        &d.path().join("train/cat/broken.png"),
        b"\x89PNG\r\n\x1a\nnonsense",
    );
    let e = load_err("folder", d.path());
    assert!(e.contains("broken.png: cannot decode image"), "{e}");

    let d = tempfile::tempdir().unwrap();
    write_tree(d.path());
    std::fs::create_dir_all(d.path().join("train/emu")).unwrap();
    let e = load_err("folder", d.path());
    assert!(e.contains("emu: empty folder"), "{e}");

    let d = tempfile::tempdir().unwrap();
    write_tree(d.path());
    grey(&d.path().join("test/fox/f.png"), 5, 4, 0);
    let e = load_err("folder", d.path());
    assert!(
        e.contains("fox: class `fox` is not a train class (cat, dog)"),
        "{e}"
    );

    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("readme.txt"), "no images here");
    let e = load_err("folder", d.path());
    assert!(e.contains("no images"), "{e}");
}

#[test]
fn flat_folder_is_unlabelled_and_serves_both_splits() {
    let d = tempfile::tempdir().unwrap();
    grey(&d.path().join("1.png"), 3, 3, 0);
    grey(&d.path().join("2.png"), 3, 3, 255);
    let ds = data::load("folder", d.path()).unwrap();
    assert_eq!(ds.classes, 0);
    assert_eq!(ds.train.labels, vec![u32::MAX; 2]);
    assert_eq!(ds.test.data, ds.train.data);
}

// ---- UCR/UEA time series ----

const UNI_TRAIN: &str = "# a comment\n\
@problemName Toy\n@timeStamps false\n@missing true\n@univariate true\n\
@equalLength false\n@classLabel true b a\n@data\n\
1,2,3,4,5:a\n\
0,?,4:b\n\
?,?,1,?:a\n";

const UNI_TEST: &str =
    "@problemName Toy\n@univariate true\n@classLabel true b a\n@data\n1,1,1,1,1:b\n";

fn write_ts(dir: &Path, name: &str, train: &str, test: &str) {
    write(&dir.join(format!("{name}_TRAIN.ts")), train);
    write(&dir.join(format!("{name}_TEST.ts")), test);
}

#[test]
fn univariate_ts_fills_missing_values_and_resamples_to_the_longest() {
    let d = tempfile::tempdir().unwrap();
    write_ts(d.path(), "Toy", UNI_TRAIN, UNI_TEST);
    let ds = data::load("ucr", d.path()).unwrap();
    assert_eq!(ds.name, "ucr/Toy");
    assert_eq!(ds.train.shape, [1, 1, 5]);
    assert_eq!(ds.class_names, vec!["b", "a"]);
    assert_eq!(ds.train.labels, vec![1, 0, 1]);
    assert_eq!(ds.test.labels, vec![0]);
    assert_eq!(ds.train.sample(0), &[1.0, 2.0, 3.0, 4.0, 5.0]);
    // 0,?,4 -> 0,2,4 -> resampled to five points.
    assert_eq!(ds.train.sample(1), &[0.0, 1.0, 2.0, 3.0, 4.0]);
    // ?,?,1,? -> 1,1,1,1.
    assert_eq!(ds.train.sample(2), &[1.0; 5]);
    let same = data::load("ucr/Toy", d.path()).unwrap();
    assert_eq!(same.train.data, ds.train.data);
}

#[test]
fn multivariate_ts_gives_one_channel_per_dimension() {
    let d = tempfile::tempdir().unwrap();
    let train = "@problemName M\n@univariate false\n@dimensions 2\n@classLabel true x y\n@data\n\
                 1,2,3:4,5,6:y\n7,8,9:0,0,0:x\n";
    let test = "@dimensions 2\n@classLabel true x y\n@data\n1,1,1:2,2,2:x\n";
    write_ts(d.path(), "M", train, test);
    let ds = data::load("ucr", d.path()).unwrap();
    assert_eq!(ds.train.shape, [2, 1, 3]);
    assert_eq!(ds.train.sample(0), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(ds.train.labels, vec![1, 0]);
    assert_eq!(ds.test.sample(0), &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
}

#[test]
fn ts_errors_name_file_and_line() {
    let cases = [
        (
            UNI_TRAIN.replace("0,?,4:b", "0,abc,4:b"),
            "Toy_TRAIN.ts: line 10: dimension 1, value 2: `abc` is not a number",
        ),
        (
            UNI_TRAIN.replace("0,?,4:b", "0,1:2,4:b"),
            "Toy_TRAIN.ts: line 10: 2 dimensions, expected 1",
        ),
        (
            UNI_TRAIN.replace("0,?,4:b", "0,1,4:c"),
            "Toy_TRAIN.ts: line 10: label `c` is not in @classLabel (b, a)",
        ),
        (
            UNI_TRAIN.replace("@data\n", ""),
            "Toy_TRAIN.ts: line 8: a series before the @data line",
        ),
        (
            UNI_TRAIN.lines().take(7).collect::<Vec<_>>().join("\n"),
            "Toy_TRAIN.ts: no @data line",
        ),
        (
            "\n# only a comment\n".to_owned(),
            "Toy_TRAIN.ts: empty file",
        ),
    ];
    for (train, want) in cases {
        let d = tempfile::tempdir().unwrap();
        write_ts(d.path(), "Toy", &train, UNI_TEST);
        let e = load_err("ucr", d.path());
        assert!(e.contains(want), "want `{want}` in: {e}");
    }
}

#[test]
fn ts_test_labels_must_be_train_classes() {
    let d = tempfile::tempdir().unwrap();
    let test = UNI_TEST
        .replace("true b a", "true b a z")
        .replace(":b", ":z");
    write_ts(d.path(), "Toy", UNI_TRAIN, &test);
    let e = load_err("ucr", d.path());
    assert!(
        e.contains("Toy_TEST.ts: line 5: label `z` is not a class of"),
        "{e}"
    );
}

#[test]
fn ts_dimensions_must_agree_between_train_and_test() {
    let d = tempfile::tempdir().unwrap();
    write_ts(
        d.path(),
        "Toy",
        UNI_TRAIN,
        "@classLabel true b a\n@data\n1,2:3,4:a\n",
    );
    let e = load_err("ucr", d.path());
    assert!(e.contains("Toy_TEST.ts: line 3: 2 dimensions, but"), "{e}");
}

#[test]
fn tsv_labels_sort_numerically_and_trailing_nans_are_padding() {
    let d = tempfile::tempdir().unwrap();
    write(
        &d.path().join("Tab_TRAIN.tsv"),
        "10\t1\t2\t3\n-1\t0\tNaN\t4\n2\t5\t6\tNaN\n",
    );
    write(&d.path().join("Tab_TEST.tsv"), "2\t1\t1\t1\n");
    let ds = data::load("ucr", d.path()).unwrap();
    assert_eq!(ds.class_names, vec!["-1", "2", "10"]);
    assert_eq!(ds.train.labels, vec![2, 0, 1]);
    assert_eq!(ds.train.shape, [1, 1, 3]);
    assert_eq!(ds.train.sample(1), &[0.0, 2.0, 4.0]);
    // 5,6 (trailing NaN dropped) resampled to three points.
    assert_eq!(ds.train.sample(2), &[5.0, 5.5, 6.0]);

    write(&d.path().join("Tab_TEST.tsv"), "2\t1\tx1\t1\n");
    let e = load_err("ucr", d.path());
    assert!(
        e.contains("Tab_TEST.tsv: line 1: value 2: `x1` is not a number"),
        "{e}"
    );
}

#[test]
fn ucr_folder_problems_are_found_by_file_name() {
    let d = tempfile::tempdir().unwrap();
    let e = load_err("ucr", d.path());
    assert!(
        e.contains("no <Name>_TRAIN.ts or <Name>_TRAIN.tsv file"),
        "{e}"
    );
    write_ts(d.path(), "A", UNI_TRAIN, UNI_TEST);
    write_ts(d.path(), "B", UNI_TRAIN, UNI_TEST);
    let e = load_err("ucr", d.path());
    assert!(e.contains("several problems (A, B)"), "{e}");
    assert_eq!(data::load("ucr/B", d.path()).unwrap().name, "ucr/B");
    std::fs::remove_file(d.path().join("B_TEST.ts")).unwrap();
    let e = load_err("ucr/B", d.path());
    assert!(e.contains("B_TEST.ts: not found"), "{e}");
}

// ---- digits ----

fn digits_row(level: u8, label: u8) -> String {
    let mut v = vec![level.to_string(); 64];
    v.push(label.to_string());
    v.join(",") + "\n"
}

fn write_gz(path: &Path, text: &str) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    write(path, gz.finish().unwrap());
}

#[test]
fn digits_puts_every_fourth_row_in_test() {
    let d = tempfile::tempdir().unwrap();
    let text: String = (0..8).map(|i| digits_row(2 * i, i)).collect();
    write_gz(&d.path().join("digits.csv.gz"), &text);
    let ds = data::load("digits", d.path()).unwrap();
    assert_eq!(ds.train.shape, [1, 8, 8]);
    assert_eq!(ds.train.labels, vec![0, 1, 2, 4, 5, 6]);
    assert_eq!(ds.test.labels, vec![3, 7]);
    assert_eq!(ds.test.sample(1)[0], 14.0 / 16.0);

    let bad = text.replace(&digits_row(10, 5), &digits_row(17, 5));
    write_gz(&d.path().join("digits.csv.gz"), &bad);
    let e = load_err("digits", d.path());
    assert!(
        e.contains("digits.csv.gz: line 6: pixel 1: 17 out of range 0..=16"),
        "{e}"
    );
}

// ---- fetch recipes ----

#[test]
fn every_fetch_recipe_is_a_dataset_name_load_accepts() {
    let d = tempfile::tempdir().unwrap();
    for r in fetch::RECIPES {
        let e = data::load(r.name, d.path()).unwrap_err();
        assert!(
            matches!(e, contrastive::error::Error::Data { .. }),
            "{}: {e}",
            r.name
        );
    }
    let names = fetch::names();
    for want in [
        "digits",
        "mnist",
        "fashion-mnist",
        "ucr/GunPoint",
        "ucr/ItalyPowerDemand",
        "ucr/OSULeaf",
        "ucr/ArrowHead",
        "ucr/BasicMotions",
        "ucr/JapaneseVowels",
    ] {
        assert!(names.split(", ").any(|n| n == want), "{want} in {names}");
    }
}

// ---- data info ----

fn write_idx(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let images = |n: usize| {
        idx::encode(
            &[n, 6, 6],
            &(0..n * 36).map(|i| i as u8).collect::<Vec<_>>(),
        )
    };
    let labels = |l: &[u8]| idx::encode(&[l.len()], l);
    write(&dir.join("train-images-idx3-ubyte"), images(5));
    write(
        &dir.join("train-labels-idx1-ubyte"),
        labels(&[0, 1, 1, 2, 2]),
    );
    write(&dir.join("t10k-images-idx3-ubyte"), images(2));
    write(&dir.join("t10k-labels-idx1-ubyte"), labels(&[2, 0]));
}

#[test]
fn data_info_prints_counts_and_writes_a_decodable_grid() {
    let d = tempfile::tempdir().unwrap();
    let set = d.path().join("tiny");
    write_idx(&set);
    let png = d.path().join("grid.png");
    let out = bin()
        .args(["data", "info"])
        .arg(&set)
        .arg("--out")
        .arg(&png)
        .args(["--views", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "dataset: mnist",
        "inferred from the path",
        "sample shape: [1, 6, 6]",
        "classes: 3",
        "train: 5 samples",
        "0: 1, 1: 2, 2: 2",
        "test: 2 samples",
        "0: 1, 1: 0, 2: 1",
        "2 rows of augmented views",
    ] {
        assert!(stdout.contains(want), "`{want}` in:\n{stdout}");
    }
    let img = image::open(&png).unwrap();
    // 5 samples of 6 px enlarged 16x (96 px) with 4 px gaps; 1 + 2 rows.
    assert_eq!((img.width(), img.height()), (4 + 5 * 100, 4 + 3 * 100));
}

#[test]
fn data_info_draws_series_without_augmented_rows() {
    let d = tempfile::tempdir().unwrap();
    write_ts(d.path(), "Toy", UNI_TRAIN, UNI_TEST);
    let png = d.path().join("series.png");
    let out = bin()
        .args(["data", "info"])
        .arg(d.path().join("Toy_TRAIN.ts"))
        .arg("--out")
        .arg(&png)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("dataset: ucr/Toy"), "{stdout}");
    assert!(
        stdout.contains("sample shape: [1, 1, 5] (channels, 1, length)"),
        "{stdout}"
    );
    assert!(stdout.contains("b: 1, a: 2"), "{stdout}");
    assert!(
        stdout.contains("augmented views are drawn for images only"),
        "{stdout}"
    );
    assert!(image::open(&png).is_ok());
}

#[test]
fn data_info_reports_a_bad_file_in_one_line() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path());
    write(&d.path().join("test_batch.bin"), [0u8; 10]);
    let out = bin()
        .args(["data", "info"])
        .arg(d.path())
        .arg("--out")
        .arg(d.path().join("x.png"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("test_batch.bin: truncated"), "{stderr}");
}

// ---- real data ----

/// The registry datasets that `data fetch` puts under the data folder.
#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn real_registry_datasets_load_with_their_published_sizes() {
    let sets = [
        ("ucr/GunPoint", 50, 150, [1, 1, 150], 2),
        ("ucr/ItalyPowerDemand", 67, 1029, [1, 1, 24], 2),
        ("ucr/OSULeaf", 200, 242, [1, 1, 427], 6),
        ("ucr/ArrowHead", 36, 175, [1, 1, 251], 3),
        ("ucr/BasicMotions", 40, 40, [6, 1, 100], 4),
        ("ucr/JapaneseVowels", 270, 370, [12, 1, 29], 9),
        ("digits", 1348, 449, [1, 8, 8], 10),
    ];
    for (name, train, test, shape, classes) in sets {
        let ds = data::load(name, &dataset(name)).unwrap();
        assert_eq!(
            (ds.train.len(), ds.test.len(), ds.train.shape, ds.classes),
            (train, test, shape, classes),
            "{name}"
        );
        assert!(ds.train.data.iter().all(|v| v.is_finite()), "{name}");
    }
}
