//! Triplet mining: which (anchor, positive, negative) triplets of a batch a triplet loss
//! sees, chosen from the current distances and the positive map.

use serde::{Deserialize, Serialize};

use crate::pairs::PositiveMap;

/// How triplets are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mining {
    /// Every valid triplet (Hermans et al. 2017, "batch all").
    All,
    /// Per anchor, its farthest positive and nearest negative ("batch hard").
    Hard,
    /// Per (anchor, positive) pair, the nearest negative farther than the positive;
    /// when there is none, the farthest negative (FaceNet's semi-hard negatives, as
    /// TensorFlow Addons' `triplet_semihard_loss` chooses them). No margin bounds the
    /// choice: one triplet per pair, always.
    SemiHard,
    /// Every triplet in the semi-hard band `0 < d(a, n) - d(a, p) <= margin`
    /// (pytorch-metric-learning's `TripletMarginMiner(type_of_triplets="semihard")`): no
    /// fallback, so a pair whose negatives all lie outside the band gives no triplet, and
    /// the loss averages over the triplets with a non-zero hinge, as for `all`.
    SemiHardAll,
}

/// Mining kinds, for errors and help.
pub const KINDS: &str = "all, hard, semi-hard, semi-hard-all";

/// A triplet as indices into the `rows x cols` distance matrix: `(anchor row, positive
/// column, negative column)`.
pub type Triplet = (usize, usize, usize);

/// The triplets `mining` selects given distances `d` (row-major `rows x cols`); `margin`
/// bounds the band of [`Mining::SemiHardAll`] and is read by no other rule.
///
/// The two semi-hard rules differ. One anchor `a`, its positive `p` at `d(a, p) = 1.0`,
/// negatives at 0.5, 1.1, 1.2 and 3.0, margin 0.2:
/// - `hard` takes the nearest negative, 0.5 (hinge `1.0 - 0.5 + 0.2 = 0.7`);
/// - `semi-hard` takes the nearest negative beyond the positive, 1.1 (hinge 0.1);
/// - `semi-hard-all` takes 1.1 and 1.2 (band `(1.0, 1.2]`; hinges 0.1 and 0), and the
///   loss is 0.1, the mean over the non-zero one;
/// - with the positive at 5.0 instead, `semi-hard` falls back to the farthest negative
///   (3.0, hinge 2.2) while `semi-hard-all` has no triplet.
///
/// Ties (duplicate rows give them) go to the first key in column order, for the nearest
/// and the farthest alike, so that the subgradient taken is one triplet's.
///
/// FaceNet (Schroff et al. 2015, sec. 3.2) describes semi-hard negatives as those with
/// `d(a, p) < d(a, n)` that still lie inside the margin, chosen per anchor-positive pair
/// within a mini-batch: `semi-hard-all` keeps all of them, `semi-hard` the hardest.
pub fn mine(mining: Mining, d: &[f32], map: &PositiveMap, margin: f32) -> Vec<Triplet> {
    let cols = map.cols;
    let mut out = Vec::new();
    for a in 0..map.rows {
        let dr = &d[a * cols..(a + 1) * cols];
        let ps = map.positives_of(a);
        let ns: Vec<usize> = (0..cols)
            .filter(|&j| map.is_candidate(a, j) && !map.is_positive(a, j))
            .collect();
        if ps.is_empty() || ns.is_empty() {
            continue;
        }
        match mining {
            Mining::All => {
                for &p in &ps {
                    out.extend(ns.iter().map(|&n| (a, p, n)));
                }
            }
            Mining::Hard => {
                // reversed: `max_by` keeps the last of equal maxima
                let p = *ps
                    .iter()
                    .rev()
                    .max_by(|&&x, &&y| dr[x].total_cmp(&dr[y]))
                    .unwrap_or(&ps[0]);
                let n = *ns
                    .iter()
                    .min_by(|&&x, &&y| dr[x].total_cmp(&dr[y]))
                    .unwrap_or(&ns[0]);
                out.push((a, p, n));
            }
            Mining::SemiHard => {
                for &p in &ps {
                    let farther = ns
                        .iter()
                        .filter(|&&n| dr[n] > dr[p])
                        .min_by(|&&x, &&y| dr[x].total_cmp(&dr[y]));
                    let n = farther
                        .or_else(|| ns.iter().rev().max_by(|&&x, &&y| dr[x].total_cmp(&dr[y])));
                    if let Some(&n) = n {
                        out.push((a, p, n));
                    }
                }
            }
            Mining::SemiHardAll => {
                for &p in &ps {
                    out.extend(
                        ns.iter()
                            .filter(|&&n| dr[n] > dr[p] && dr[n] - dr[p] <= margin)
                            .map(|&n| (a, p, n)),
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairs::{Relation, Tag};

    #[test]
    fn hard_and_semi_hard_pick_the_right_negatives() {
        // one anchor (row 0) against keys: 0 = itself (excluded), 1 positive, 2..5 negatives
        let tag = |i: u32, l: u32| Tag::new(i, l, 0);
        let keys = [
            tag(0, 0),
            tag(1, 0),
            tag(2, 1),
            tag(3, 1),
            tag(4, 1),
            tag(5, 1),
        ];
        let map = PositiveMap::build(Relation::Label, &keys[..1], &keys, true);
        let d = [0.0, 1.0, 0.5, 1.2, 3.0, 1.1];
        assert_eq!(mine(Mining::Hard, &d, &map, 0.2), vec![(0, 1, 2)]);
        assert_eq!(mine(Mining::SemiHard, &d, &map, 0.2), vec![(0, 1, 5)]);
        assert_eq!(mine(Mining::All, &d, &map, 0.2).len(), 4);
        assert_eq!(
            mine(Mining::SemiHardAll, &d, &map, 0.25),
            vec![(0, 1, 3), (0, 1, 5)],
            "the band (1.0, 1.25]"
        );
        assert_eq!(mine(Mining::SemiHardAll, &d, &map, 0.15), vec![(0, 1, 5)]);
        let far = [0.0, 9.0, 0.5, 1.2, 3.0, 1.1];
        assert_eq!(
            mine(Mining::SemiHard, &far, &map, 0.2),
            vec![(0, 1, 4)],
            "no negative beyond: the farthest"
        );
        assert!(mine(Mining::SemiHardAll, &far, &map, 0.2).is_empty());
    }
}
