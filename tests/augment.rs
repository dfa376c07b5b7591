//! Augmentations: shapes, value ranges, determinism, and the resampling itself.

use contrastive::data::Split;
use contrastive::views::augment::{crop_resize, sample_crop, AugmentConfig, CropBox};
use contrastive::views::transform::TransformViews;
use contrastive::views::Sampler;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn split(n: usize) -> Split {
    let data = (0..n * 28 * 28)
        .map(|i| ((i * 7919) % 256) as f32 / 255.0)
        .collect();
    Split {
        data,
        shape: [1, 28, 28],
        labels: (0..n as u32).map(|i| i % 3).collect(),
    }
}

fn views() -> TransformViews {
    TransformViews {
        augment: vec![AugmentConfig::default(); 2],
        mean: vec![0.286],
        std: vec![0.353],
    }
}

#[test]
fn two_views_have_the_batch_shape_and_tags() {
    let s = split(10);
    let idx = [3, 1, 4, 1, 5];
    let b = views().sample(&s, &idx, 7);
    assert_eq!(b.groups.len(), 1);
    let g = &b.groups[0];
    assert_eq!(g.shape, [10, 1, 28, 28]);
    assert_eq!(g.data.len(), 10 * 28 * 28);
    let inst: Vec<u32> = g.tags.iter().map(|t| t.instance).collect();
    assert_eq!(inst, vec![3, 1, 4, 1, 5, 3, 1, 4, 1, 5]);
    let view: Vec<u16> = g.tags.iter().map(|t| t.view).collect();
    assert_eq!(view, vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    assert_eq!(g.tags[2].label, 4 % 3);
}

#[test]
fn values_stay_in_the_normalised_pixel_range() {
    let s = split(32);
    let idx: Vec<usize> = (0..32).collect();
    let b = views().sample(&s, &idx, 1);
    let (lo, hi) = ((0.0 - 0.286) / 0.353, (1.0 - 0.286) / 0.353);
    for &v in &b.groups[0].data {
        assert!(v.is_finite() && v >= lo - 1e-5 && v <= hi + 1e-5, "{v}");
    }
}

#[test]
fn same_seed_same_views_other_seed_other_views() {
    let s = split(16);
    let idx: Vec<usize> = (0..16).collect();
    let a = views().sample(&s, &idx, 42);
    let b = views().sample(&s, &idx, 42);
    let c = views().sample(&s, &idx, 43);
    assert_eq!(a.groups[0].data, b.groups[0].data);
    assert_ne!(a.groups[0].data, c.groups[0].data);
    let n = 16 * 28 * 28;
    assert_ne!(
        a.groups[0].data[..n],
        a.groups[0].data[n..],
        "the two views differ"
    );
}

#[test]
fn crops_lie_inside_the_image_with_area_in_range() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for _ in 0..2000 {
        let b = sample_crop(&mut rng, 28, 28, [0.2, 1.0], [0.75, 4.0 / 3.0]);
        assert!(b.top + b.height <= 28 && b.left + b.width <= 28);
        let frac = (b.height * b.width) as f32 / 784.0;
        assert!((0.15..=1.0).contains(&frac), "{b:?}");
        let ratio = b.width as f32 / b.height as f32;
        assert!((0.6..=1.6).contains(&ratio), "{b:?}");
    }
}

#[test]
fn full_crop_at_same_size_is_the_identity_and_flip_mirrors() {
    let s = split(1);
    let img = s.sample(0);
    let full = CropBox {
        top: 0,
        left: 0,
        height: 28,
        width: 28,
    };
    let mut out = vec![0.0; 784];
    crop_resize(img, [1, 28, 28], full, 28, false, &mut out);
    assert_eq!(out, img);
    crop_resize(img, [1, 28, 28], full, 28, true, &mut out);
    for y in 0..28 {
        for x in 0..28 {
            assert_eq!(out[y * 28 + x], img[y * 28 + 27 - x]);
        }
    }
}

#[test]
fn downscaling_by_two_averages_pixel_pairs() {
    let img: Vec<f32> = (0..16).map(|v| v as f32).collect();
    let full = CropBox {
        top: 0,
        left: 0,
        height: 4,
        width: 4,
    };
    let mut out = vec![0.0; 4];
    crop_resize(&img, [1, 4, 4], full, 2, false, &mut out);
    // align_corners=False: output pixel 0 samples source 0.5, i.e. the mean of 0 and 1.
    assert_eq!(out, vec![2.5, 4.5, 10.5, 12.5]);
}
