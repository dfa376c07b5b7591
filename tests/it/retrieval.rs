//! Retrieval metrics against pytorch-metric-learning's `AccuracyCalculator` on the same
//! embeddings (tests/fixtures/make_retrieval_fixture.py), and cases with a known answer.

use contrastive::eval::knn::Features;
use contrastive::eval::retrieval::retrieval;

use crate::common::{fixture, floats, usize_of};

#[test]
fn retrieval_metrics_equal_pytorch_metric_learning() {
    let fx = fixture("retrieval.json");
    for case in fx["cases"].as_array().unwrap() {
        let f = Features {
            data: floats(&case["embeddings"]),
            dim: usize_of(&case["d"]),
            labels: case["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect(),
        };
        let r = retrieval(&f).unwrap();
        let close = |got: f64, key: &str| {
            let want = case[key].as_f64().unwrap();
            assert!((got - want).abs() < 1e-6, "{key}: {got} vs {want}");
        };
        close(r.recall_at[0].1, "precision_at_1");
        close(r.r_precision, "r_precision");
        close(r.map_at_r, "map_at_r");
        for (k, v) in &r.recall_at {
            let want = case["recall_at"][k.to_string()].as_f64().unwrap();
            assert!((v - want).abs() < 1e-6, "Recall@{k}: {v} vs {want}");
        }
    }
}

#[test]
fn perfectly_separated_classes_score_one_and_singletons_do_not_count() {
    // two tight classes far apart, and one singleton class (nothing to retrieve)
    let f = Features {
        data: vec![
            1.0, 0.0, 0.99, 0.1, 0.98, 0.05, 0.0, 1.0, 0.1, 0.99, -1.0, 0.0,
        ],
        dim: 2,
        labels: vec![0, 0, 0, 1, 1, 2],
    };
    let r = retrieval(&f).unwrap();
    assert_eq!(r.queries, 5);
    assert_eq!((r.r_precision, r.map_at_r), (1.0, 1.0));
    assert!(r.recall_at.iter().all(|&(_, v)| v == 1.0));
    let lone = Features {
        data: vec![1.0, 0.0, 0.0, 1.0],
        dim: 2,
        labels: vec![0, 1],
    };
    assert!(retrieval(&lone).is_none());
}
