//! Augmentations: shapes, value ranges, determinism, the resampling, every SimCLR / MoCo v2
//! / BYOL operation against hand-computed values, asymmetric views, multi-crop and the
//! validation of their settings.

use std::path::Path;

use contrastive::config::Config;
use contrastive::data::Split;
use contrastive::views::augment::{
    augment, blur, brightness, colour, contrast, crop_resize, normalise, sample_crop,
    AugmentConfig, CropBox,
};
use contrastive::views::transform::TransformViews;
use contrastive::views::{PositiveMap, Relation, Sampler};
use rand::{Rng, SeedableRng};
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
    let b = views().sample(&s, &idx, 7).unwrap();
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
    let b = views().sample(&s, &idx, 1).unwrap();
    let (lo, hi) = ((0.0 - 0.286) / 0.353, (1.0 - 0.286) / 0.353);
    for &v in &b.groups[0].data {
        assert!(v.is_finite() && v >= lo - 1e-5 && v <= hi + 1e-5, "{v}");
    }
}

#[test]
fn same_seed_same_views_other_seed_other_views() {
    let s = split(16);
    let idx: Vec<usize> = (0..16).collect();
    let a = views().sample(&s, &idx, 42).unwrap();
    let b = views().sample(&s, &idx, 42).unwrap();
    let c = views().sample(&s, &idx, 43).unwrap();
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

fn rgb(n: usize, side: usize) -> Split {
    let data = (0..n * 3 * side * side)
        .map(|i| ((i * 7919 + i / 5) % 256) as f32 / 255.0)
        .collect();
    Split {
        data,
        shape: [3, side, side],
        labels: vec![0; n],
    }
}

/// SimCLR's ImageNet recipe at strength 1 (Chen et al. 2020, appendix A) with MoCo v2's
/// blur and BYOL's solarisation.
fn simclr() -> AugmentConfig {
    AugmentConfig {
        brightness: 0.8,
        contrast: 0.8,
        saturation: 0.8,
        hue: 0.2,
        grayscale_p: 0.2,
        blur_p: 0.5,
        solarize_p: 0.2,
        ..AugmentConfig::default()
    }
}

/// Views with no normalisation, so the values are the `[0, 1]` pixels.
fn raw_views(augment: Vec<AugmentConfig>, channels: usize) -> TransformViews {
    TransformViews {
        augment,
        mean: vec![0.0; channels],
        std: vec![1.0; channels],
    }
}

/// Only the operations under test: a full-image crop at the same size, nothing else.
fn plain() -> AugmentConfig {
    AugmentConfig {
        crop_scale: [1.0, 1.0],
        crop_ratio: [1.0, 1.0],
        flip_p: 0.0,
        jitter_p: 0.0,
        ..AugmentConfig::default()
    }
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-5
}

#[test]
fn grayscale_of_a_known_pixel_is_its_luma_on_every_channel() {
    let mut img = vec![0.2, 0.6, 1.0];
    colour::grayscale(&mut img, 3);
    let l = 0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 1.0;
    assert!(img.iter().all(|&v| close(v, l)), "{img:?}");
    let mut grey = vec![0.3, 0.7];
    colour::grayscale(&mut grey, 1);
    assert_eq!(grey, vec![0.3, 0.7], "one channel: unchanged");
}

#[test]
fn solarize_inverts_values_at_or_above_the_threshold() {
    let mut img = vec![0.0, 0.49, 0.5, 0.8, 1.0];
    colour::solarize(&mut img, 0.5);
    assert_eq!(img, vec![0.0, 0.49, 0.5, 1.0 - 0.8, 0.0]);
}

#[test]
fn blur_kernel_matches_torchvision_and_auto_size_is_simclr_s() {
    // torchvision _get_gaussian_kernel1d(3, 1.0) = [0.2741, 0.4519, 0.2741].
    let k = blur::gaussian_kernel(3, 1.0);
    for (g, w) in k.iter().zip([0.274_068_6, 0.451_862_8, 0.274_068_6]) {
        assert!(close(*g, w), "{k:?}");
    }
    assert_eq!(blur::auto_kernel_size(224), 23);
    assert_eq!(blur::auto_kernel_size(28), 3);
    assert_eq!(blur::auto_kernel_size(12), 1);
}

#[test]
fn blur_of_a_centred_delta_sums_to_one_and_is_symmetric() {
    let (n, c) = (9, 4);
    let mut img = vec![0.0; n * n];
    img[c * n + c] = 1.0;
    let k = blur::gaussian_kernel(5, 1.3);
    blur::blur(&mut img, [1, n, n], &k);
    assert!(close(img.iter().sum(), 1.0));
    for y in 0..n {
        for x in 0..n {
            let v = img[y * n + x];
            assert!(close(v, img[y * n + (n - 1 - x)]) && close(v, img[x * n + y]));
        }
    }
    assert!(close(img[c * n + c], k[2] * k[2]));
    assert!(close(img[(c - 1) * n + c + 2], k[1] * k[4]));
}

#[test]
fn blur_pads_by_reflection_at_the_border() {
    let n = 5;
    let mut img = vec![0.0; n * n];
    img[0] = 1.0;
    let k = blur::gaussian_kernel(3, 1.0);
    blur::blur(&mut img, [1, n, n], &k);
    // Reflect: the pixel beyond the edge mirrors pixel 1 (zero), so no mass returns.
    assert!(close(img[0], k[1] * k[1]));
    assert!(close(img[1], k[1] * k[2]));
    assert!(close(img[n + 1], k[2] * k[2]));
    assert!(close(img[2], 0.0));
    let mut flat = vec![0.37; 3 * 4 * 4];
    blur::blur(&mut flat, [3, 4, 4], &blur::gaussian_kernel(7, 2.0));
    assert!(
        flat.iter().all(|&v| close(v, 0.37)),
        "constant stays constant"
    );
}

#[test]
fn hue_shift_of_pure_red_by_a_third_gives_green() {
    let mut img = vec![1.0, 0.0, 0.0];
    colour::hue(&mut img, 3, 1.0 / 3.0);
    assert!(
        close(img[0], 0.0) && close(img[1], 1.0) && close(img[2], 0.0),
        "{img:?}"
    );
    let mut img = vec![1.0, 0.0, 0.0];
    colour::hue(&mut img, 3, -1.0 / 3.0);
    assert!(
        close(img[0], 0.0) && close(img[2], 1.0),
        "red - 1/3 is blue: {img:?}"
    );
}

#[test]
fn hsv_round_trips_and_knows_its_colours() {
    for (r, g, b) in [
        (0.2, 0.6, 1.0),
        (0.9, 0.1, 0.4),
        (0.5, 0.5, 0.5),
        (0.0, 0.3, 0.1),
    ] {
        let (h, s, v) = colour::rgb_to_hsv(r, g, b);
        let (r2, g2, b2) = colour::hsv_to_rgb(h, s, v);
        assert!(close(r, r2) && close(g, g2) && close(b, b2), "{r} {g} {b}");
    }
    let (h, s, v) = colour::rgb_to_hsv(0.0, 0.0, 1.0);
    assert!(close(h, 2.0 / 3.0) && close(s, 1.0) && close(v, 1.0));
}

#[test]
fn saturation_zero_gives_grayscale_and_one_the_identity() {
    let px = vec![0.2, 0.6, 1.0, 0.9, 0.1, 0.4];
    let mut a = px.clone();
    colour::saturation(&mut a, 3, 0.0);
    let mut g = px.clone();
    colour::grayscale(&mut g, 3);
    assert!(a.iter().zip(&g).all(|(x, y)| close(*x, *y)), "{a:?} {g:?}");
    let mut one = px.clone();
    colour::saturation(&mut one, 3, 1.0);
    assert_eq!(one, px);
    let mut mono = vec![0.3, 0.7];
    colour::saturation(&mut mono, 1, 0.0);
    colour::hue(&mut mono, 1, 0.25);
    assert_eq!(mono, vec![0.3, 0.7], "one channel: no-ops");
}

/// The R1 pipeline as it was before the SimCLR set: the new operations, off by default,
/// must leave its random stream and results bit for bit unchanged.
fn r1_reference(cfg: &AugmentConfig, seed: u64, src: &[f32], dst: &mut [f32]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let b = sample_crop(&mut rng, 28, 28, cfg.crop_scale, cfg.crop_ratio);
    let flip = rng.random::<f32>() < cfg.flip_p;
    crop_resize(src, [1, 28, 28], b, 28, flip, dst);
    if rng.random::<f32>() < cfg.jitter_p {
        let bf = 1.0 - cfg.brightness + 2.0 * cfg.brightness * rng.random::<f32>();
        let cf = 1.0 - cfg.contrast + 2.0 * cfg.contrast * rng.random::<f32>();
        if rng.random::<f32>() < 0.5 {
            brightness(dst, bf);
            contrast(dst, 1, cf);
        } else {
            contrast(dst, 1, cf);
            brightness(dst, bf);
        }
    }
    normalise(dst, &[0.286], &[0.353]);
}

#[test]
fn r1_views_are_unchanged_by_the_new_operations() {
    let s = split(64);
    let cfg = AugmentConfig::default();
    let (mut got, mut want) = (vec![0.0; 784], vec![0.0; 784]);
    for i in 0..64 {
        let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
        augment(
            &cfg,
            &mut rng,
            s.sample(i),
            [1, 28, 28],
            &[0.286],
            &[0.353],
            &mut got,
        );
        r1_reference(&cfg, i as u64, s.sample(i), &mut want);
        assert_eq!(got, want, "image {i}");
    }
}

#[test]
fn full_set_is_deterministic_and_stays_in_the_pixel_range() {
    for (s, c) in [(rgb(48, 32), 3), (split(48), 1)] {
        let idx: Vec<usize> = (0..48).collect();
        let v = raw_views(vec![simclr(); 2], c);
        let a = v.sample(&s, &idx, 5).unwrap();
        let b = v.sample(&s, &idx, 5).unwrap();
        let other = v.sample(&s, &idx, 6).unwrap();
        assert_eq!(a.groups[0].data, b.groups[0].data);
        assert_ne!(a.groups[0].data, other.groups[0].data);
        for &x in &a.groups[0].data {
            assert!(x.is_finite() && (0.0..=1.0).contains(&x), "{x}");
        }
    }
}

#[test]
fn every_new_operation_at_p_one_changes_the_view() {
    let s = rgb(4, 32);
    let idx = [0, 1, 2, 3];
    let base = raw_views(vec![plain()], 3)
        .sample(&s, &idx, 1)
        .unwrap()
        .groups[0]
        .data
        .clone();
    assert_eq!(base, s.data, "the plain view is the image itself");
    let ops = [
        AugmentConfig {
            jitter_p: 1.0,
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.5,
            ..plain()
        },
        AugmentConfig {
            jitter_p: 1.0,
            brightness: 0.0,
            contrast: 0.0,
            hue: 0.3,
            ..plain()
        },
        AugmentConfig {
            grayscale_p: 1.0,
            ..plain()
        },
        AugmentConfig {
            blur_p: 1.0,
            ..plain()
        },
        AugmentConfig {
            solarize_p: 1.0,
            ..plain()
        },
    ];
    for cfg in ops {
        let got = raw_views(vec![cfg.clone()], 3).sample(&s, &idx, 1).unwrap();
        assert_ne!(got.groups[0].data, base, "{cfg:?}");
    }
}

#[test]
fn byol_asymmetric_views_are_honoured() {
    let text = "[views]\nn = 2\n\
        [[views.per_view]]\ncrop_scale = [1.0, 1.0]\ncrop_ratio = [1.0, 1.0]\nflip_p = 0.0\n\
        jitter_p = 0.0\nblur_p = 1.0\n\
        [[views.per_view]]\ncrop_scale = [1.0, 1.0]\ncrop_ratio = [1.0, 1.0]\nflip_p = 0.0\n\
        jitter_p = 0.0\nblur_p = 0.1\nsolarize_p = 0.2\n";
    let cfg = Config::parse(text, Path::new("byol.toml"), &[]).unwrap();
    let n = 400;
    let s = split(n);
    let idx: Vec<usize> = (0..n).collect();
    let g = &raw_views(cfg.views.augments(), 1)
        .sample(&s, &idx, 3)
        .unwrap()
        .groups[0];
    let len = 784;
    let unchanged = |v: usize| {
        (0..n)
            .filter(|&i| g.data[(v * n + i) * len..(v * n + i + 1) * len] == *s.sample(i))
            .count()
    };
    assert_eq!(unchanged(0), 0, "view 0 is always blurred");
    // View 1 is untouched with probability 0.9 * 0.8 = 0.72.
    let frac = unchanged(1) as f64 / n as f64;
    assert!((0.62..=0.82).contains(&frac), "{frac}");
}

#[test]
fn local_crops_form_their_own_group_of_positives() {
    let cfg = Config::parse(
        "",
        Path::new("x.toml"),
        &["views.local_crops=3".into(), "views.local_size=12".into()],
    )
    .unwrap();
    let augments = cfg.views.augments();
    assert_eq!(augments.len(), 5);
    assert_eq!(
        (augments[4].size, augments[4].crop_scale),
        (12, [0.05, 0.4])
    );
    let s = split(6);
    let idx = [0, 1, 2, 3];
    let b = raw_views(augments, 1).sample(&s, &idx, 0).unwrap();
    assert_eq!(b.groups.len(), 2);
    assert_eq!(b.groups[0].shape, [8, 1, 28, 28]);
    assert_eq!(b.groups[1].shape, [12, 1, 12, 12]);
    assert!(b.groups[1].tags.iter().all(|t| t.view >= 2));
    let tags = b.tags();
    let map = PositiveMap::build(Relation::Instance, &tags, &tags, true);
    for (i, t) in tags.iter().enumerate() {
        let pos = map.positives_of(i);
        assert_eq!(
            pos.len(),
            4,
            "the other 4 of 5 views of instance {}",
            t.instance
        );
        assert!(pos.iter().all(|&j| tags[j].instance == t.instance));
    }
}

#[test]
fn invalid_augmentations_name_the_key_and_range() {
    let cases = [
        ("views.augment.hue=0.6", "views.augment.hue", "[0, 0.5]"),
        (
            "views.augment.saturation=-1",
            "views.augment.saturation",
            "[0, 1]",
        ),
        (
            "views.augment.grayscale_p=1.5",
            "views.augment.grayscale_p",
            "[0, 1]",
        ),
        (
            "views.augment.blur_p=-0.1",
            "views.augment.blur_p",
            "[0, 1]",
        ),
        (
            "views.augment.solarize_p=2",
            "views.augment.solarize_p",
            "[0, 1]",
        ),
        (
            "views.augment.blur_sigma=[2.0, 0.1]",
            "views.augment.blur_sigma",
            "0 < min <= max",
        ),
        (
            "views.augment.blur_kernel=4",
            "views.augment.blur_kernel",
            "odd",
        ),
        (
            "views.augment.solarize_threshold=1.5",
            "views.augment.solarize_threshold",
            "[0, 1]",
        ),
        (
            "views.augment.crop_scale=[0.5, 0.2]",
            "views.augment.crop_scale",
            "0 < min <= max <= 1",
        ),
        ("views.local_crops=2", "views.local_size", ">= 1"),
    ];
    for (set, key, allowed) in cases {
        let e = Config::parse("", Path::new("x.toml"), &[set.into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("`{key}`")) && e.contains(allowed),
            "{set}: {e}"
        );
    }
    let per_view = "[[views.per_view]]\n[[views.per_view]]\nblur_p = 3.0\n";
    let e = Config::parse(per_view, Path::new("x.toml"), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`views.per_view[1].blur_p`"), "{e}");
    let e = Config::parse(
        "[keys]\npairing = \"cross\"\n[views]\nlocal_crops = 2\nlocal_size = 12\n",
        Path::new("x.toml"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`views.local_crops`") && e.contains("joint"),
        "{e}"
    );
}
