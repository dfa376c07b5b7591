//! Per-class accuracy and the confusion matrix of a classifier's test predictions.

use serde::Serialize;

/// How a classifier did on each class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    /// Fraction of all test samples classified correctly.
    pub top1: f64,
    /// Number of test samples classified correctly.
    pub correct: usize,
    /// `correct_c / count_c` for each class `c` (0 for a class without test samples).
    pub per_class: Vec<f64>,
    /// `confusion[true][predicted]`: row `c` sums to the number of test samples of class `c`.
    pub confusion: Vec<Vec<usize>>,
}

impl ClassScores {
    /// Scores of `pred` against `truth` over `classes` classes; samples whose label is not
    /// below `classes` (unlabelled) count in `top1` only.
    pub fn new(pred: &[u32], truth: &[u32], classes: usize) -> Self {
        let mut confusion = vec![vec![0usize; classes]; classes];
        let mut correct = 0;
        for (&p, &t) in pred.iter().zip(truth) {
            correct += usize::from(p == t);
            if let Some(row) = confusion.get_mut(t as usize) {
                if let Some(cell) = row.get_mut(p as usize) {
                    *cell += 1;
                }
            }
        }
        let per_class = confusion
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let n: usize = row.iter().sum();
                if n == 0 {
                    0.0
                } else {
                    row[c] as f64 / n as f64
                }
            })
            .collect();
        Self {
            top1: correct as f64 / truth.len().max(1) as f64,
            correct,
            per_class,
            confusion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_count_true_classes() {
        let s = ClassScores::new(&[0, 1, 1, 2], &[0, 1, 2, 2], 3);
        assert_eq!(
            s.confusion,
            vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 1, 1]]
        );
        assert_eq!(s.per_class, vec![1.0, 1.0, 0.5]);
        assert_eq!((s.correct, s.top1), (3, 0.75));
    }
}
