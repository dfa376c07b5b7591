//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;

/// Serialises the tests that change process-wide state (the device's random generator,
/// `kernels::set_enabled`): they hold the guard while they run.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fixture JSON `name` from tests/fixtures.
pub fn fixture(name: &str) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A JSON array of numbers as `f32`s.
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

/// A JSON number as a `usize`.
pub fn usize_of(v: &serde_json::Value) -> usize {
    v.as_u64().expect("an integer") as usize
}

/// A 2-D tensor on the autodiff flex device, not tracked.
pub fn plain(data: Vec<f32>, rows: usize, cols: usize) -> Tensor<2> {
    let d = Device::flex().autodiff();
    Tensor::<2>::from_data(TensorData::new(data, [rows, cols]), &d)
}

/// A 2-D tensor on the autodiff flex device that tracks its gradient.
pub fn tracked(data: Vec<f32>, rows: usize, cols: usize) -> Tensor<2> {
    let d = Device::flex().autodiff();
    Tensor::<2>::from_data(TensorData::new(data, [rows, cols]), &d).require_grad()
}

/// Values of a tensor.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// Largest absolute difference relative to the largest absolute reference value.
pub fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "length");
    let scale = want
        .iter()
        .fold(0f64, |m, &w| m.max(f64::from(w).abs()))
        .max(1e-30);
    let diff = got.iter().zip(want).fold(0f64, |m, (&g, &w)| {
        m.max((f64::from(g) - f64::from(w)).abs())
    });
    diff / scale
}

/// The folder that holds the datasets (`CONTRASTIVE_DATA`, default `data/`).
pub fn data_dir() -> PathBuf {
    std::env::var_os("CONTRASTIVE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"))
}

/// Dataset `name` under [`data_dir`] (`fashion-mnist`, `ucr/BasicMotions`, ...); panics
/// with the command that fetches it when it is missing. Tests that call it are
/// `#[ignore]`d (a fresh clone has no data) and run by `scripts/test.sh`.
pub fn dataset(name: &str) -> PathBuf {
    let data = data_dir().join(name);
    assert!(
        data.exists(),
        "{} is missing: run `contrastive data fetch {name}` (scripts/test.sh does)",
        data.display()
    );
    data
}

/// The path of preset `name` in configs/.
pub fn preset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("configs/{name}.toml"))
}

/// `contrastive train --quiet --config CONFIG --set S... --out OUT`.
pub fn train<S: AsRef<std::ffi::OsStr>>(
    config: &Path,
    sets: impl IntoIterator<Item = S>,
    out: &Path,
) -> std::process::Command {
    let mut c = bin();
    c.args(["train", "--quiet", "--config"]).arg(config);
    for s in sets {
        c.arg("--set").arg(s);
    }
    c.arg("--out").arg(out);
    c
}

/// The `contrastive` binary built for these tests.
pub fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_contrastive"))
}

/// Every float parameter of a module, flattened, in visiting order.
pub fn param_values<M: Module>(m: &M) -> Vec<Vec<f32>> {
    struct Values(Vec<Vec<f32>>);
    impl ModuleVisitor for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().into_data().iter::<f32>().collect());
        }
    }
    let mut v = Values(Vec::new());
    m.visit(&mut v);
    v.0
}

/// Central differences of `f` at `x` (step 1e-2) agree with the gradient `g` to 2% (or
/// 1e-3 where the derivative is below 0.05).
pub fn agrees_with_central_differences(
    x: &[f32],
    g: &[f32],
    f: impl Fn(&[f32]) -> f64,
    what: &str,
) {
    let h = 1e-2f32;
    for i in 0..x.len() {
        let (mut p, mut m) = (x.to_vec(), x.to_vec());
        p[i] += h;
        m[i] -= h;
        let fd = (f(&p) - f(&m)) / (2.0 * f64::from(h));
        let tol = 2e-2 * fd.abs().max(0.05);
        assert!(
            (fd - f64::from(g[i])).abs() <= tol,
            "{what}[{i}]: autodiff {} vs finite diff {fd}",
            g[i]
        );
    }
}

/// The records of `run`'s metrics.jsonl without the wall-clock fields, to compare runs.
pub fn records_untimed(run: &Path) -> Vec<serde_json::Value> {
    contrastive::train::metrics::read(&run.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .map(|mut r| {
            if let Some(o) = r.as_object_mut() {
                o.remove("epoch_seconds");
                o.remove("images_per_s");
            }
            r
        })
        .collect()
}

/// Forward (`z`), a fixed linear loss `sum(z * r)`, backward; every parameter with its
/// gradient.
pub fn outputs_and_grads(
    model: &contrastive::model::Model,
    x: &Tensor<4>,
    r: &Tensor<2>,
) -> (Vec<f32>, Vec<contrastive::model::NamedParam>) {
    let (_, z) = model.forward(x.clone());
    let zs: Vec<f32> = z.clone().into_data().iter::<f32>().collect();
    let grads = (z * r.clone()).sum().backward();
    (zs, model.named_params(Some(&grads)))
}
