//! DINO (Caron et al. 2021): self-distillation. A student's softmax over the output
//! dimensions must match a teacher's centred and sharpened softmax of another crop of the
//! same image; the centre is a moving average of the teacher's batch means.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pairs::PositiveMap;

/// The teacher's side of DINO: its temperature, with a linear warm-up over the first
/// epochs, and the momentum of its centre. The student's temperature is `loss.temperature`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Dino {
    /// The teacher's temperature after the warm-up (sharpening: below the student's).
    pub teacher_temperature: f64,
    /// The teacher's temperature in the first epoch.
    pub warmup_teacher_temperature: f64,
    /// Epochs over which the teacher's temperature rises linearly to its final value.
    pub warmup_epochs: usize,
    /// `c = m c + (1 - m) mean(teacher outputs)` after every step: the `m`.
    pub center_momentum: f64,
}

impl Default for Dino {
    /// lightly's `DINOLoss` defaults: teacher temperature 0.04 (no warm-up), centre
    /// momentum 0.9.
    fn default() -> Self {
        Self {
            teacher_temperature: 0.04,
            warmup_teacher_temperature: 0.04,
            warmup_epochs: 0,
            center_momentum: 0.9,
        }
    }
}

impl Dino {
    /// Checks the settings, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        for (key, t) in [
            ("loss.dino.teacher_temperature", self.teacher_temperature),
            (
                "loss.dino.warmup_teacher_temperature",
                self.warmup_teacher_temperature,
            ),
        ] {
            if !(t > 0.0 && t.is_finite()) {
                return Err(Error::config(key, t, "a finite value > 0"));
            }
        }
        if !(0.0..=1.0).contains(&self.center_momentum) {
            return Err(Error::config(
                "loss.dino.center_momentum",
                self.center_momentum,
                "a value in [0, 1]",
            ));
        }
        Ok(())
    }

    /// The teacher's temperature in `epoch` (from 0): lightly's and DINO's schedule,
    /// `linspace(warmup, final, warmup_epochs)[epoch]`, then the final value.
    pub fn teacher_at(&self, epoch: usize) -> f64 {
        let w = self.warmup_epochs;
        if epoch >= w {
            return self.teacher_temperature;
        }
        let t = if w > 1 {
            epoch as f64 / (w - 1) as f64
        } else {
            0.0
        };
        self.warmup_teacher_temperature
            + (self.teacher_temperature - self.warmup_teacher_temperature) * t
    }
}

/// The DINO loss of student outputs `q` `[n_q, K]` against teacher outputs `k` `[n_k, K]`
/// (detached here) over the positive pairs of `map` (same image, another crop):
///
/// `L = -1/|P| sum_{(i, j) in P} softmax((k_j - c) / t_teacher) · log_softmax(q_i / t_student)`,
///
/// lightly's `DINOLoss` when `P` pairs every student crop with every teacher crop of
/// another view index. `center` (`c`, zeros when `None`) is then moved to
/// `m c + (1 - m) mean_j k_j`.
pub fn dino(
    q: Tensor<2>,
    k: Tensor<2>,
    map: &PositiveMap,
    center: &mut Option<Vec<f32>>,
    student_temperature: f64,
    teacher_temperature: f64,
    center_momentum: f64,
) -> Result<Tensor<1>> {
    let ([nq, dq], [nk, dk]) = (q.dims(), k.dims());
    if dq != dk {
        return Err(Error::Invalid(format!(
            "DINO's student has {dq} outputs but its teacher {dk}"
        )));
    }
    let pairs: usize = map.positives.iter().map(Vec::len).sum();
    if pairs == 0 {
        return Err(Error::Invalid(
            "DINO needs a teacher crop of another view for some student crop".into(),
        ));
    }
    let device = q.device();
    let k = k.detach();
    let c = center.clone().unwrap_or_else(|| vec![0.0; dk]);
    if c.len() != dk {
        return Err(Error::Invalid(format!(
            "DINO's centre has {} dimensions but the teacher {dk} (a checkpoint of another head?)",
            c.len()
        )));
    }
    let c_t = Tensor::<1>::from_data(TensorData::new(c.clone(), [dk]), &device).reshape([1, dk]);
    let t = softmax((k.clone() - c_t).div_scalar(teacher_temperature), 1);
    let log_s = log_softmax(q.div_scalar(student_temperature), 1);
    let mut weights = vec![0.0f32; nq * nk];
    for (i, row) in map.positives.iter().enumerate() {
        for &j in row {
            weights[i * nk + j as usize] = 1.0;
        }
    }
    let w = Tensor::<2>::from_data(TensorData::new(weights, [nq, nk]), &device);
    let loss = (log_s.matmul(t.transpose()) * w)
        .sum()
        .div_scalar(-(pairs as f64));
    let mean: Vec<f32> = k.mean_dim(0).into_data().iter::<f32>().collect();
    let m = center_momentum as f32;
    *center = Some(
        c.iter()
            .zip(&mean)
            .map(|(&c, &b)| m * c + (1.0 - m) * b)
            .collect(),
    );
    Ok(loss.reshape([1]))
}
