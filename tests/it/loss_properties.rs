//! Properties every loss must have, on random inputs (proptest), and its clear errors.

use crate::common::*;
use burn::prelude::*;
use contrastive::loss::{infonce, margin, mutual_info, nce, LossConfig, LossKind, Mining};
use contrastive::score::Score;
use contrastive::views::PositiveMap;
use proptest::prelude::*;

const SCORE_LOSSES: [LossKind; 9] = [
    LossKind::NtXent,
    LossKind::SupconIn,
    LossKind::Debiased,
    LossKind::Nce,
    LossKind::NegativeSampling,
    LossKind::DimJsd,
    LossKind::DimDv,
    LossKind::Pair,
    LossKind::Triplet,
];

/// Batch-hard triplets: batch-all averages over the triplets with a non-zero loss, which
/// is not monotone (a triplet that reaches zero leaves the average).
fn cfg(kind: LossKind) -> LossConfig {
    LossConfig {
        kind,
        temperature: 0.5,
        beta: 0.5,
        mining: Mining::Hard,
        ..LossConfig::default()
    }
}

/// A loss over a score matrix.
type ScoreLoss = fn(Tensor<2>, &PositiveMap) -> contrastive::Result<Tensor<1>>;

/// One query against `cols` keys, key 0 its positive.
fn one_query_map(cols: usize) -> PositiveMap {
    let mut positive = vec![0.0; cols];
    positive[0] = 1.0;
    PositiveMap::from_dense(1, cols, &positive, &vec![1.0; cols]).unwrap()
}

fn value(kind: LossKind, q: &[f32], k: &[f32], cols: usize, dim: usize) -> f32 {
    let map = one_query_map(cols);
    values(
        cfg(kind)
            .compute(
                plain(q.to_vec(), 1, dim),
                plain(k.to_vec(), cols, dim),
                &map,
            )
            .unwrap(),
    )[0]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Moving the positive key towards its query lowers (never raises) the loss.
    #[test]
    fn loss_falls_as_the_positive_moves_closer(
        q in prop::collection::vec(-1.0f32..1.0, 4),
        k in prop::collection::vec(-1.0f32..1.0, 20),
        step in 0.2f32..0.9,
    ) {
        let (cols, dim) = (5, 4);
        prop_assume!(q.iter().map(|v| v * v).sum::<f32>() > 0.05);
        prop_assume!(k[..dim].iter().map(|v| v * v).sum::<f32>() > 0.05);
        let mut closer = k.clone();
        for d in 0..dim {
            closer[d] += step * (q[d] - k[d]);
        }
        for kind in SCORE_LOSSES {
            let (before, after) = (value(kind, &q, &k, cols, dim), value(kind, &q, &closer, cols, dim));
            prop_assert!(after <= before + 1e-5, "{:?}: {} -> {}", kind, before, after);
        }
    }

    /// Permuting queries and keys together with the positive map leaves the loss unchanged.
    #[test]
    fn invariant_to_permuting_the_batch_with_its_map(
        z in prop::collection::vec(-1.0f32..1.0, 6 * 3),
        labels in prop::collection::vec(0u32..2, 6),
        perm in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let n = 6;
        prop_assume!((0..2).all(|l| labels.iter().filter(|&&x| x == l).count() >= 2));
        let map_of = |lab: &[u32]| {
            let mut positive = vec![0.0; n * n];
            let mut candidate = vec![1.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    if i == j { candidate[i * n + j] = 0.0; } else if lab[i] == lab[j] { positive[i * n + j] = 1.0; }
                }
            }
            PositiveMap::from_dense(n, n, &positive, &candidate).unwrap()
        };
        let zp: Vec<f32> = perm.iter().flat_map(|&i| z[i * 3..i * 3 + 3].to_vec()).collect();
        let lp: Vec<u32> = perm.iter().map(|&i| labels[i]).collect();
        for kind in SCORE_LOSSES {
            let a = cfg(kind).compute(plain(z.clone(), n, 3), plain(z.clone(), n, 3), &map_of(&labels)).unwrap();
            let b = cfg(kind).compute(plain(zp.clone(), n, 3), plain(zp.clone(), n, 3), &map_of(&lp)).unwrap();
            let (a, b) = (values(a)[0], values(b)[0]);
            prop_assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{:?}: {} vs {}", kind, a, b);
        }
    }

    /// Scores as large as ±1e4, and as large as ±1e12 (beyond any finite mask sentinel),
    /// give finite losses and gradients.
    #[test]
    fn finite_for_extreme_scores(
        s in prop::collection::vec(-1e4f32..1e4, 3 * 5),
        scale in prop::sample::select(vec![1f32, 1e5, 1e8]),
    ) {
        let s: Vec<f32> = s.iter().map(|v| v * scale).collect();
        let positive = [1., 0., 0., 0., 0., 0., 1., 0., 0., 0., 0., 0., 1., 1., 0.];
        let candidate = [1., 1., 1., 1., 1., 0., 1., 1., 1., 1., 1., 1., 1., 1., 1.];
        let map = PositiveMap::from_dense(3, 5, &positive, &candidate).unwrap();
        let losses: [(&str, ScoreLoss); 7] = [
            ("info-nce", infonce::info_nce),
            ("supcon-in", infonce::supcon_in),
            ("nce", |x, m| nce::nce(x, m, None)),
            ("nce first-batch", |x, m| {
                let held = nce::log_mean_exp(&x, m)?;
                nce::nce(x, m, Some(held))
            }),
            ("negative-sampling", nce::negative_sampling),
            ("dim-jsd", mutual_info::jensen_shannon),
            ("dim-dv", mutual_info::donsker_varadhan),
        ];
        for (name, f) in losses {
            let x = tracked(s.clone(), 3, 5);
            let l = f(x.clone(), &map).unwrap();
            let v = values(l.clone())[0];
            prop_assert!(v.is_finite(), "{}: loss {}", name, v);
            let g = values(x.grad(&l.backward()).unwrap());
            prop_assert!(g.iter().all(|v| v.is_finite()), "{}: gradient not finite", name);
        }
        let x = tracked(s.clone(), 3, 5);
        let l = infonce::debiased(x.clone(), &map, 0.1, 1.0, 0.5).unwrap();
        prop_assert!(values(l.clone())[0].is_finite(), "debiased loss");
        prop_assert!(values(x.grad(&l.backward()).unwrap()).iter().all(|v| v.is_finite()), "debiased gradient");
    }

    /// As the temperature goes to 0, t * InfoNCE tends to the hinge max(0, max_n s_n - s_p).
    #[test]
    fn small_temperature_limit_is_the_hinge(s in prop::collection::vec(-1.0f32..1.0, 6)) {
        let map = one_query_map(6);
        let t = 1e-3;
        let scores: Vec<f32> = s.iter().map(|v| v / t as f32).collect();
        let l = values(infonce::info_nce(plain(scores, 1, 6), &map).unwrap())[0] * t as f32;
        let hinge = (s[1..].iter().fold(f32::MIN, |m, &v| m.max(v)) - s[0]).max(0.0);
        prop_assert!((l - hinge).abs() < 5e-3, "t*L = {} vs hinge {}", l, hinge);
    }
}

#[test]
fn invalid_parameters_and_maps_are_clear_errors() {
    let q = plain(vec![1.0, 0.0, 0.0, 1.0], 2, 2);
    let map = PositiveMap::from_dense(2, 2, &[0., 1., 1., 0.], &[0., 1., 1., 0.]).unwrap();
    let err = |c: LossConfig, map: &PositiveMap| {
        c.compute(q.clone(), q.clone(), map)
            .unwrap_err()
            .to_string()
    };

    let triplet = LossConfig {
        kind: LossKind::Triplet,
        ..LossConfig::default()
    };
    let invalid = [
        (
            LossConfig {
                temperature: 0.0,
                ..LossConfig::default()
            },
            &["loss.temperature", "> 0"][..],
        ),
        (
            LossConfig {
                margin: -1.0,
                ..triplet.clone()
            },
            &["loss.margin"],
        ),
        (
            LossConfig {
                selective: true,
                soft_margin: true,
                ..triplet.clone()
            },
            &["loss.selective", "loss.soft_margin = false"],
        ),
        (
            LossConfig {
                kind: LossKind::Pair,
                selective: true,
                ..LossConfig::default()
            },
            &["loss.selective", "triplet"],
        ),
        (
            LossConfig {
                mining: Mining::All,
                mining_warmup_epochs: 1,
                ..triplet
            },
            &["loss.mining_warmup_epochs"],
        ),
    ];
    for (cfg, needles) in invalid {
        let e = err(cfg, &map);
        assert!(needles.iter().all(|n| e.contains(n)), "{e}");
    }
    // each query's only candidate is its positive: no negative
    let e = err(LossConfig::default(), &map);
    assert!(e.contains("query 0 has no negative"), "{e}");
    let no_pos = PositiveMap::from_dense(2, 2, &[0.0; 4], &[1.0; 4]).unwrap();
    let e = err(LossConfig::default(), &no_pos);
    assert!(e.contains("query 0 has no positive"), "{e}");
    let wrong = PositiveMap::from_dense(3, 2, &[0.0; 6], &[1.0; 6]).unwrap();
    let e = err(LossConfig::default(), &wrong);
    assert!(e.contains("3x2") && e.contains("2 queries"), "{e}");
    let k3 = plain(vec![1.0; 6], 2, 3);
    let m = PositiveMap::from_dense(2, 2, &[1., 0., 0., 1.], &[1.0; 4]).unwrap();
    let e = LossConfig::default()
        .compute(q.clone(), k3, &m)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 dimensions but keys have 3"), "{e}");
    let e = margin::pair(plain(vec![0.5; 4], 2, 2), &m, -0.5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("margin -0.5"), "{e}");
    let _ = Score::Cosine;
}

/// Central finite differences of every loss agree with its autodiff gradient. (NCE is
/// checked against PyTorch only: it holds its estimate of the partition function `Z`
/// constant, as InstDisc does, so its gradient deliberately omits `dZ/ds`.)
#[test]
fn gradients_match_finite_differences() {
    let kinds = [
        LossKind::NtXent,
        LossKind::SupconIn,
        LossKind::Debiased,
        LossKind::NegativeSampling,
        LossKind::DimJsd,
        LossKind::DimDv,
        LossKind::Pair,
        LossKind::Triplet,
        LossKind::AlignUniform,
    ];
    let (r, c, d) = (4, 6, 3);
    let q: Vec<f32> = (0..r * d)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 9.0)
        .collect();
    let k: Vec<f32> = (0..c * d)
        .map(|i| ((i * 17 % 19) as f32 - 9.0) / 8.0)
        .collect();
    let mut positive = vec![0.0; r * c];
    for i in 0..r {
        positive[i * c + i] = 1.0;
    }
    positive[c + 5] = 1.0;
    let map = PositiveMap::from_dense(r, c, &positive, &[1.0; 24]).unwrap();
    let base = LossConfig {
        temperature: 0.7,
        beta: 0.5,
        mining: Mining::All,
        ..LossConfig::default()
    };
    let soft_triplet = LossConfig {
        kind: LossKind::Triplet,
        soft_margin: true,
        ..base.clone()
    };
    // Its loss jumps where s_an = s_ap; on these fixed inputs the nearest triplet is 0.012
    // from that boundary, which no step of h crosses.
    let selective_triplet = LossConfig {
        kind: LossKind::Triplet,
        selective: true,
        ..base.clone()
    };
    let configs = kinds
        .into_iter()
        .flat_map(|kind| [Score::Cosine, Score::Dot].map(|score| (kind, score)))
        .map(|(kind, score)| LossConfig {
            kind,
            score,
            ..base.clone()
        })
        .chain([soft_triplet, selective_triplet]);
    for cfg in configs {
        let (kind, score, soft, selective) = (cfg.kind, cfg.score, cfg.soft_margin, cfg.selective);
        let f = |q: &[f32], k: &[f32]| -> f64 {
            f64::from(
                values(
                    cfg.compute(plain(q.to_vec(), r, d), plain(k.to_vec(), c, d), &map)
                        .unwrap(),
                )[0],
            )
        };
        let (tq, tk) = (tracked(q.clone(), r, d), tracked(k.clone(), c, d));
        let grads = cfg
            .compute(tq.clone(), tk.clone(), &map)
            .unwrap()
            .backward();
        let (gq, gk) = (
            values(tq.grad(&grads).unwrap()),
            values(tk.grad(&grads).unwrap()),
        );
        let h = 1e-2f32;
        for (which, x, g) in [("q", &q, &gq), ("k", &k, &gk)] {
            for i in 0..x.len() {
                let (mut p, mut m) = (x.clone(), x.clone());
                p[i] += h;
                m[i] -= h;
                let diff = if which == "q" {
                    f(&p, &k) - f(&m, &k)
                } else {
                    f(&q, &p) - f(&q, &m)
                };
                let fd = diff / (2.0 * f64::from(h));
                let tol = 2e-2 * fd.abs().max(0.05);
                assert!(
                    (fd - f64::from(g[i])).abs() <= tol,
                    "{kind:?}/{score:?}/soft {soft}/selective {selective} d{which}[{i}]: autodiff {} vs finite diff {fd}",
                    g[i]
                );
            }
        }
    }
}
