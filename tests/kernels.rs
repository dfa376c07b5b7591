//! The fast kernels against burn's plain operations: same outputs, same gradients for
//! every parameter, same running statistics, on R1's ConvNet and a small ResNet.

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Distribution;
use contrastive::config::Config;
use contrastive::kernels;
use contrastive::model::Model;

/// A parameter's module path, value and gradient.
type Entry = (String, Vec<f32>, Option<Vec<f32>>);

/// Collects every float parameter's value and gradient, by module path.
struct Collect<'a> {
    grads: &'a burn::tensor::Gradients,
    path: Vec<String>,
    out: Vec<Entry>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let grad = t
            .grad(self.grads)
            .map(|g| g.into_data().iter::<f32>().collect());
        self.out.push((
            self.path.join("."),
            t.into_data().iter::<f32>().collect(),
            grad,
        ));
    }
}

/// Forward (`z`), a fixed linear loss, backward; every parameter with its gradient.
fn run(model: &Model, x: &Tensor<4>, r: &Tensor<2>) -> (Vec<f32>, Vec<Entry>) {
    let (_, z) = model.forward(x.clone());
    let zs: Vec<f32> = z.clone().into_data().iter::<f32>().collect();
    let grads = (z * r.clone()).sum().backward();
    let mut c = Collect {
        grads: &grads,
        path: vec![],
        out: vec![],
    };
    model.visit(&mut c);
    (zs, c.out)
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        err <= 2e-4 * scale,
        "{what}: max difference {err} against scale {scale}"
    );
}

fn compare(cfg: &Config, input: [usize; 3], n: usize) {
    let device = Device::flex().autodiff();
    device.seed(7);
    let model = Model::new(cfg, input, &device).unwrap();
    let [c, h, w] = input;
    let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let out_dim = cfg.head.out;
    let r = Tensor::<2>::random([n, out_dim], Distribution::Normal(0.0, 1.0), &device);

    // Independent copies: clones would share their running statistics.
    let copy = || {
        Model::new(cfg, input, &device)
            .unwrap()
            .load_record(model.clone().into_record())
    };
    kernels::set_enabled(false);
    let (z_plain, p_plain) = run(&copy(), &x, &r);
    kernels::set_enabled(true);
    let (z_fast, p_fast) = run(&copy(), &x, &r);

    close(&z_fast, &z_plain, "output z");
    assert_eq!(p_fast.len(), p_plain.len());
    let mut with_grad = 0;
    for ((name, vf, gf), (name2, vp, gp)) in p_fast.iter().zip(&p_plain) {
        assert_eq!(name, name2);
        // running statistics are parameters too: they must have been updated alike
        close(vf, vp, &format!("{name} value"));
        match (gf, gp) {
            (Some(a), Some(b)) => {
                close(a, b, &format!("{name} gradient"));
                with_grad += 1;
            }
            (None, None) => {}
            _ => panic!("{name}: gradient on one path only"),
        }
    }
    assert!(with_grad >= 8, "only {with_grad} parameters had gradients");

    // Inference mode (running statistics, no autodiff) agrees as well.
    let valid = model.valid();
    let xv = Tensor::<4>::from_data(x.clone().into_data(), &Device::flex());
    kernels::set_enabled(false);
    let a: Vec<f32> = valid
        .forward(xv.clone())
        .0
        .into_data()
        .iter::<f32>()
        .collect();
    kernels::set_enabled(true);
    let b: Vec<f32> = valid.forward(xv).0.into_data().iter::<f32>().collect();
    close(&b, &a, "inference representation h");
}

#[test]
fn fast_kernels_equal_the_plain_path() {
    // One test: the switch is process-wide.
    let r1 = Config::default();
    compare(&r1, [1, 28, 28], 24);

    let mut resnet = Config::default();
    resnet.encoder.kind = "resnet".into();
    resnet.encoder.channels = vec![8, 16];
    resnet.encoder.blocks = vec![1, 1];
    compare(&resnet, [3, 12, 12], 6);

    let mut imagenet = resnet.clone();
    imagenet.encoder.stem = "imagenet".into();
    compare(&imagenet, [3, 20, 20], 4);

    let mut mlp = Config::default();
    mlp.encoder.kind = "mlp".into();
    mlp.encoder.channels = vec![32, 16];
    mlp.encoder.bn = true;
    compare(&mlp, [1, 6, 6], 10);
}
