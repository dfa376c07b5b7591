//! Retrieval metrics against pytorch-metric-learning's `AccuracyCalculator` on the same
//! embeddings (tests/fixtures/make_retrieval_fixture.py), NMI and AMI against
//! scikit-learn (tests/fixtures/make_clustering_fixture.py), and cases with a known
//! answer.

use contrastive::eval::clustering::{clustering, nmi_ami};
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

/// NMI and AMI equal scikit-learn's on fixed assignments (tests/fixtures/
/// make_clustering_fixture.py), including a perfect and a near-random one.
#[test]
fn nmi_and_ami_equal_scikit_learn() {
    let fx = fixture("clustering.json");
    let ints = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    for case in fx["cases"].as_array().unwrap() {
        let (nmi, ami) = nmi_ami(&ints(&case["labels"]), &ints(&case["clusters"]));
        let (want_nmi, want_ami) = (case["nmi"].as_f64().unwrap(), case["ami"].as_f64().unwrap());
        assert!((nmi - want_nmi).abs() < 1e-9, "NMI {nmi} vs {want_nmi}");
        assert!((ami - want_ami).abs() < 1e-9, "AMI {ami} vs {want_ami}");
    }
}

#[test]
fn well_separated_classes_cluster_perfectly() {
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for c in 0..3u32 {
        for i in 0..10 {
            let mut row = vec![0.01 * i as f32; 3];
            row[c as usize] = 1.0;
            data.extend(row);
            labels.push(c);
        }
    }
    let f = Features {
        data,
        dim: 3,
        labels,
    };
    let c = clustering(&f, 3, 0).unwrap();
    assert_eq!((c.nmi, c.ami, c.clusters), (1.0, 1.0, 3));
}
