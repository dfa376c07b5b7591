//! Triplet mining: which (anchor, positive, negative) triplets of a batch a triplet loss
//! sees, chosen from the current distances and the positive map.

use serde::{Deserialize, Serialize};

use crate::views::PositiveMap;

/// How triplets are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mining {
    /// Every valid triplet (Hermans et al. 2017, "batch all").
    All,
    /// Per anchor, its farthest positive and nearest negative ("batch hard").
    Hard,
    /// Per (anchor, positive) pair, the nearest negative farther than the positive;
    /// when there is none, the farthest negative (FaceNet's semi-hard negatives, as
    /// TensorFlow Addons' `triplet_semihard_loss` chooses them).
    SemiHard,
}

/// Mining kinds, for errors and help.
pub const KINDS: &str = "all, hard, semi-hard";

/// A triplet as indices into the `rows x cols` distance matrix: `(anchor row, positive
/// column, negative column)`.
pub type Triplet = (usize, usize, usize);

/// The triplets `mining` selects given distances `d` (row-major `rows x cols`).
pub fn mine(mining: Mining, d: &[f32], map: &PositiveMap) -> Vec<Triplet> {
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
                let p = *ps
                    .iter()
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
                    let n =
                        farther.or_else(|| ns.iter().max_by(|&&x, &&y| dr[x].total_cmp(&dr[y])));
                    if let Some(&n) = n {
                        out.push((a, p, n));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{Relation, Tag};

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
        assert_eq!(mine(Mining::Hard, &d, &map), vec![(0, 1, 2)]);
        assert_eq!(mine(Mining::SemiHard, &d, &map), vec![(0, 1, 5)]);
        assert_eq!(mine(Mining::All, &d, &map).len(), 4);
        let far = [0.0, 9.0, 0.5, 1.2, 3.0, 1.1];
        assert_eq!(
            mine(Mining::SemiHard, &far, &map),
            vec![(0, 1, 4)],
            "no negative beyond: the farthest"
        );
    }
}
