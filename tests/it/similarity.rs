//! The similarity distributions: each one's positive map, checked exactly on tiny
//! hand-made data (who is positive for whom).

use burn::prelude::*;
use burn::tensor::TensorData;
use contrastive::config::Config;
use contrastive::data::Split;
use contrastive::encoder::Encoder;
use contrastive::keys::Queue;
use contrastive::model::Model;
use contrastive::train::keystate::KeyState;
use contrastive::train::pairing;
use contrastive::views::cluster::kmeans;
use contrastive::views::modalities::ModalityViews;
use contrastive::views::sequence::WindowViews;
use contrastive::views::transform::TransformViews;
use contrastive::views::{Group, PositiveMap, Relation, Rule, Sampler, Tag, ViewBatch};

fn positives(m: &PositiveMap) -> Vec<Vec<usize>> {
    (0..m.rows).map(|i| m.positives_of(i)).collect()
}

/// `n` series of `channels x length` whose value at (sample, channel, t) is
/// `100 * sample + 10 * channel + t` (t < 10), so every copied value says where it came from.
fn series(n: usize, channels: usize, length: usize) -> Split {
    let data = (0..n * channels * length)
        .map(|i| {
            let (s, rest) = (i / (channels * length), i % (channels * length));
            (100 * s + 10 * (rest / length) + rest % length) as f32
        })
        .collect();
    Split {
        data,
        shape: [channels, 1, length],
        labels: (0..n as u32).collect(),
    }
}

#[test]
fn multisensory_views_pair_each_sense_with_the_same_samples_other_sense() {
    let s = series(3, 4, 2);
    let views = ModalityViews {
        groups: vec![vec![0, 1], vec![2, 3]],
        mean: vec![0.0; 4],
        std: vec![1.0; 4],
    };
    let b = views.sample(&s, &[2, 0], 0).unwrap();
    let g = &b.groups[0];
    assert_eq!(g.shape, [4, 2, 1, 2]);
    // Row 0: sample 2, channels 0-1; row 3: sample 0, channels 2-3.
    assert_eq!(&g.data[..4], &[200.0, 201.0, 210.0, 211.0]);
    assert_eq!(&g.data[12..], &[20.0, 21.0, 30.0, 31.0]);
    let m = PositiveMap::build(Relation::Instance, &g.tags, &g.tags, true);
    assert_eq!(positives(&m), vec![vec![2], vec![3], vec![0], vec![1]]);
}

#[test]
fn close_windows_are_positives_and_distant_ones_only_negatives() {
    let length = 40;
    let s = series(3, 1, length);
    let sampler = WindowViews {
        window: 4,
        n: 2,
        max_gap: 3,
        distant: 1,
        stride: 0,
        mean: vec![0.0],
        std: vec![1.0],
    };
    let b = sampler.sample(&s, &[0, 1, 2], 9).unwrap();
    let g = &b.groups[0];
    let tags = &g.tags;
    assert_eq!(g.shape, [9, 1, 1, 4]);
    for (r, t) in tags.iter().enumerate() {
        let start = t.time as usize;
        let want = &s.sample(t.instance as usize)[start..start + 4];
        assert_eq!(
            &g.data[r * 4..(r + 1) * 4],
            want,
            "row {r} copies its window"
        );
    }
    let rule = Rule {
        relation: Relation::Temporal,
        max_gap: 3,
    };
    let m = PositiveMap::build(rule, tags, tags, true);
    for i in 0..3 {
        let (a, b, far) = (i, 3 + i, 6 + i);
        assert!(tags[a].time.abs_diff(tags[b].time) <= 3);
        assert!(
            tags[far].time.abs_diff(tags[a].time) > 3 && tags[far].time.abs_diff(tags[b].time) > 3
        );
        assert_eq!(m.positives_of(a), vec![b], "close windows of sequence {i}");
        assert_eq!(m.positives_of(b), vec![a]);
        assert!(
            m.positives_of(far).is_empty(),
            "the distant window has no positive"
        );
        assert!(
            m.is_candidate(a, far),
            "but it is a negative of the close ones"
        );
    }
    let (rows, sub) = pairing::anchors(&m).expect("distant rows are not anchors");
    assert_eq!(rows, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(sub.cols, 9);
}

#[test]
fn labels_make_every_same_class_view_positive() {
    let tags: Vec<Tag> = [(0, 7), (1, 7), (2, 8), (0, 7), (1, 7), (2, 8)]
        .iter()
        .enumerate()
        .map(|(r, &(i, l))| Tag::new(i, l, (r / 3) as u16))
        .collect();
    let m = PositiveMap::build(Relation::Label, &tags, &tags, true);
    assert_eq!(
        positives(&m),
        vec![
            vec![1, 3, 4],
            vec![0, 3, 4],
            vec![5],
            vec![0, 1, 4],
            vec![0, 1, 3],
            vec![2]
        ]
    );
}

#[test]
fn prototypes_join_instances_of_one_cluster_and_unassigned_rows_keep_their_instance() {
    let tag = |i: u32, view: u16, cluster: u32| Tag {
        cluster,
        ..Tag::new(i, u32::MAX, view)
    };
    let tags = [
        tag(0, 0, 5),
        tag(1, 0, 5),
        tag(2, 0, 6),
        tag(3, 0, u32::MAX),
        tag(0, 1, 5),
        tag(1, 1, 5),
        tag(2, 1, 6),
        tag(3, 1, u32::MAX),
    ];
    let m = PositiveMap::build(Relation::Cluster, &tags, &tags, true);
    assert_eq!(
        positives(&m),
        vec![
            vec![1, 4, 5],
            vec![0, 4, 5],
            vec![6],
            vec![7],
            vec![0, 1, 5],
            vec![0, 1, 4],
            vec![2],
            vec![3]
        ]
    );
}

#[test]
fn kmeans_recovers_well_separated_groups() {
    // 30 unit vectors around three orthogonal directions of R^3.
    let mut data = Vec::new();
    for c in 0..3 {
        for j in 0..10 {
            let mut v = [0.05 * (j as f32 - 5.0) / 5.0; 3];
            v[c] = 1.0;
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            data.extend(v.iter().map(|x| x / n));
        }
    }
    let (_, assign) = kmeans(&data, 3, 3, 1);
    for c in 0..3 {
        let group = &assign[c * 10..(c + 1) * 10];
        assert!(group.iter().all(|&a| a == group[0]), "group {c}: {group:?}");
    }
    assert!(assign[0] != assign[10] && assign[10] != assign[20] && assign[0] != assign[20]);
}

#[test]
fn nearest_neighbour_keys_come_from_the_support_set_by_cosine() {
    let mut support = Queue {
        dim: 2,
        capacity: 3,
        ..Queue::default()
    };
    assert!(support.nearest(&[1.0, 0.0]).is_none(), "empty support set");
    let tags: Vec<Tag> = (0..4).map(|i| Tag::new(i, 0, 1)).collect();
    // The first entry falls out of the 3-key FIFO.
    support.push(&[0.0, 1.0, 5.0, 0.1, -1.0, 0.0, 0.0, -3.0], &tags);
    assert_eq!(support.tags.len(), 3);
    let nn = support.nearest(&[2.0, 0.0, -0.1, -1.0, 0.0, 0.5]).unwrap();
    // Cosine, not distance: (2, 0) is nearest the long (5, 0.1).
    assert_eq!(nn, vec![0, 2, 0]);
}

fn image_model(cfg_text: &str, input: [usize; 3]) -> (Config, Model, Device) {
    let cfg = Config::parse(cfg_text, std::path::Path::new("test.toml"), &[]).unwrap();
    let device = Device::flex().autodiff();
    let model = Model::new(&cfg, input, &device).unwrap();
    (cfg, model, device)
}

fn tensor(g: &Group, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(g.data.clone(), g.shape), device)
}

/// The views of `cfg` of three 8x8 grey images.
fn three_images(cfg: &Config) -> ViewBatch {
    let split = Split {
        data: (0..3 * 64).map(|i| (i % 7) as f32 / 7.0).collect(),
        shape: [1, 8, 8],
        labels: vec![0, 1, 2],
    };
    let sampler = TransformViews {
        augment: cfg.views.augments(),
        mean: vec![0.5],
        std: vec![0.5],
    };
    sampler.sample(&split, &[0, 1, 2], 3).unwrap()
}

/// The loss and positive map of `views` under `cfg`'s pairing, at the first step.
fn pair_up(
    cfg: &Config,
    model: &Model,
    views: &ViewBatch,
    device: &Device,
) -> (Tensor<1>, PositiveMap) {
    let step = pairing::Step {
        cfg,
        model,
        keys: &mut KeyState::default(),
        loss: &cfg.loss.build().unwrap(),
        state: &mut Default::default(),
        device,
        global: 0,
        total: 1,
        ledger: &mut Default::default(),
        features: None,
    };
    pairing::loss(step, views).unwrap()
}

#[test]
fn context_pairs_every_local_feature_with_its_own_global_summary() {
    let (cfg, model, device) = image_model(
        "[encoder]\nkind = \"convnet\"\nchannels = [4, 8]\nstrides = [1, 2]\n[head]\nkind = \"identity\"\n[keys]\npairing = \"context\"\n[views]\nn = 1\n[loss]\nkind = \"info-nce\"\n",
        [1, 8, 8],
    );
    let views = three_images(&cfg);
    let (loss, map) = pair_up(&cfg, &model, &views, &device);
    assert!(loss.into_scalar::<f32>().is_finite());
    // 4x4 positions per image after the stride-2 block.
    assert_eq!((map.rows, map.cols), (48, 3));
    for r in 0..48 {
        assert_eq!(map.positives_of(r), vec![r / 16], "local feature {r}");
        assert_eq!(map.negatives(r), 2);
    }
}

#[test]
fn context_pairing_can_take_its_local_features_from_an_earlier_stage() {
    let (cfg, model, device) = image_model(
        "[encoder]\nkind = \"convnet\"\nchannels = [4, 8, 16]\nstrides = [1, 2, 2]\n[head]\nkind = \"linear\"\nout = 5\n[keys]\npairing = \"context\"\nlocal_stage = 2\n[views]\nn = 1\n[loss]\nkind = \"dim-jsd\"\n",
        [1, 8, 8],
    );
    let views = three_images(&cfg);
    let x = tensor(&views.groups[0], &device);
    // The locals are the second block's 4x4 map (8 channels) through the local head.
    let Encoder::ConvNet(net) = &model.encoder else {
        panic!("a convnet encoder")
    };
    let local_head = model.local_head.as_ref().expect("a local head");
    let mut f = x.clone().permute([0, 2, 3, 1]);
    for b in &net.blocks[..2] {
        f = b.forward(f);
    }
    let expected: Vec<f32> = local_head
        .forward(f.reshape([48, 8]))
        .into_data()
        .iter::<f32>()
        .collect();
    let (zl, zg, positions) = model.local_global(x).unwrap();
    assert_eq!((zl.dims(), zg.dims(), positions), ([48, 5], [3, 5], 16));
    let got: Vec<f32> = zl.into_data().iter::<f32>().collect();
    assert_eq!(got, expected);
    let (loss, map) = pair_up(&cfg, &model, &views, &device);
    assert_eq!((map.rows, map.cols), (48, 3));
    assert_eq!(map.positives_of(17), vec![1]);
    // The local head, the global head and the block only the summary reads all learn.
    let grads = loss.backward();
    let params = model.named_params(Some(&grads));
    for path in [
        "local_head.out.weight",
        "head.out.weight",
        "encoder.ConvNet.blocks.2.conv.weight",
        "encoder.ConvNet.blocks.0.conv.weight",
    ] {
        let p = params.iter().find(|p| p.path == path).expect(path);
        let g = p.grad.as_ref().expect(path);
        assert!(
            g.iter().any(|v| *v != 0.0) && g.iter().all(|v| v.is_finite()),
            "{path}"
        );
    }
}

#[test]
fn predictive_coding_targets_the_window_k_steps_ahead_of_the_same_series() {
    let (cfg, model, device) = image_model(
        "[views]\nkind = \"windows\"\nrelation = \"temporal\"\nn = 4\nwindow = 4\nstride = 4\n[encoder]\nkind = \"conv1d\"\nchannels = [4]\nstrides = [1]\nkernel = 3\n[head]\nkind = \"linear\"\nout = 5\n[head.context]\nkind = \"gru\"\ndim = 6\nsteps = 1\n[keys]\npairing = \"predictive\"\n[loss]\nkind = \"info-nce\"\nscore = \"dot\"\ntemperature = 1.0\n",
        [1, 1, 16],
    );
    let s = series(3, 1, 20);
    let sampler = WindowViews {
        window: 4,
        n: 4,
        max_gap: 0,
        distant: 0,
        stride: 4,
        mean: vec![0.0],
        std: vec![100.0],
    };
    let views = sampler.sample(&s, &[0, 1, 2], 1).unwrap();
    let starts: Vec<u32> = views.groups[0].tags.iter().map(|t| t.time).collect();
    for i in 0..3 {
        for t in 1..4 {
            assert_eq!(
                starts[t * 3 + i],
                starts[(t - 1) * 3 + i] + 4,
                "consecutive windows"
            );
        }
    }
    let (loss, map) = pair_up(&cfg, &model, &views, &device);
    assert!(loss.into_scalar::<f32>().is_finite());
    // k = 1: query (i, t) for t in 0..3 predicts window t + 1 of series i, row (t + 1) * 3 + i.
    assert_eq!((map.rows, map.cols), (9, 12));
    for i in 0..3 {
        for t in 0..3 {
            assert_eq!(map.positives_of(i * 3 + t), vec![(t + 1) * 3 + i]);
        }
    }
}

/// DINO's multi-crop pairing: every crop, global and local, is a query; the global crops
/// are the keys; a query's positives are its image's keys of another view, and the key of
/// its own view is no candidate.
#[test]
fn multi_crop_pairs_every_crop_with_the_other_global_crops_of_its_image() {
    let (cfg, model, device) = image_model(
        "[encoder]\nkind = \"convnet\"\nchannels = [4, 8]\nstrides = [1, 2]\n[head]\nkind = \"identity\"\n[keys]\npairing = \"multi-crop\"\n[views]\nn = 2\nlocal_crops = 2\nlocal_size = 4\n[loss]\nkind = \"info-nce\"\n",
        [1, 8, 8],
    );
    let views = three_images(&cfg);
    assert_eq!(
        views.groups.len(),
        2,
        "a group of global and one of local crops"
    );
    let q: Vec<Tag> = views.groups.iter().flat_map(|g| g.tags.clone()).collect();
    let k: Vec<Tag> = q.iter().copied().filter(|t| t.view < 2).collect();
    let (loss, map) = pair_up(&cfg, &model, &views, &device);
    assert!(loss.into_scalar::<f32>().is_finite());
    assert_eq!((map.rows, map.cols), (12, 6));
    for (r, t) in q.iter().enumerate() {
        let want: Vec<usize> = (0..k.len())
            .filter(|&j| k[j].instance == t.instance && k[j].view != t.view)
            .collect();
        assert_eq!(map.positives_of(r), want, "crop {r} ({t:?})");
        let own = usize::from(t.view < 2);
        assert_eq!(map.negatives(r), 6 - want.len() - own, "crop {r}");
    }
}
