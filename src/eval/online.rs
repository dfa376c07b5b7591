//! The online linear probe (solo-learn's and lightly's online classifier): a linear
//! softmax classifier on the detached representation `h` of each training batch, trained
//! beside the encoder by its own SGD, so that accuracy can be followed during training
//! without waiting for the probe after it. Its gradient never reaches the encoder.
//!
//! Computed on the host: a `classes x dim` matrix-vector product per row is far below the
//! cost of launching device work, and host code keeps the state exact across resumes.

/// SGD momentum of the probe (solo-learn's classifier optimiser).
const MOMENTUM: f32 = 0.9;

/// A linear classifier `softmax(W h + b)` with its momentum buffers and the epoch's
/// running accuracy on the batches it was trained on (measured before each update).
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineProbe {
    pub dim: usize,
    pub classes: usize,
    pub lr: f32,
    w: Vec<f32>,
    b: Vec<f32>,
    vw: Vec<f32>,
    vb: Vec<f32>,
    /// Rows predicted correctly and rows seen since the epoch began.
    pub correct: u64,
    pub seen: u64,
}

impl OnlineProbe {
    /// A probe of zero weights (the softmax of zeros is uniform: no seed needed).
    pub fn new(dim: usize, classes: usize, lr: f64) -> Self {
        Self {
            dim,
            classes,
            lr: lr as f32,
            w: vec![0.0; classes * dim],
            b: vec![0.0; classes],
            vw: vec![0.0; classes * dim],
            vb: vec![0.0; classes],
            correct: 0,
            seen: 0,
        }
    }

    fn logits(&self, h: &[f32]) -> Vec<f32> {
        (0..self.classes)
            .map(|c| {
                let w = &self.w[c * self.dim..(c + 1) * self.dim];
                self.b[c] + w.iter().zip(h).map(|(a, x)| a * x).sum::<f32>()
            })
            .collect()
    }

    /// The predicted class of each row of `h` (`n x dim`).
    pub fn predict(&self, h: &[f32]) -> Vec<u32> {
        h.chunks(self.dim)
            .map(|row| argmax(&self.logits(row)))
            .collect()
    }

    /// One SGD step on the mean cross-entropy of the rows of `h` whose label is a class
    /// (`< classes`; unlabelled rows are skipped), after counting how many it already
    /// predicts correctly: `g_W = mean_i (p_i - y_i) h_iᵀ`, `v = 0.9 v + g`, `W -= lr v`.
    pub fn step(&mut self, h: &[f32], labels: &[u32]) {
        let (mut gw, mut gb) = (vec![0.0f32; self.w.len()], vec![0.0f32; self.classes]);
        let mut n = 0usize;
        for (row, &y) in h.chunks(self.dim).zip(labels) {
            if y as usize >= self.classes {
                continue;
            }
            let logits = self.logits(row);
            self.correct += u64::from(argmax(&logits) == y);
            let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = logits.iter().map(|l| (l - top).exp()).collect();
            let sum: f32 = e.iter().sum();
            for c in 0..self.classes {
                let g = e[c] / sum - f32::from(c == y as usize);
                gb[c] += g;
                gw[c * self.dim..(c + 1) * self.dim]
                    .iter_mut()
                    .zip(row)
                    .for_each(|(a, x)| *a += g * x);
            }
            n += 1;
        }
        if n == 0 {
            return;
        }
        self.seen += n as u64;
        let scale = 1.0 / n as f32;
        for (p, v, g) in [
            (&mut self.w, &mut self.vw, gw),
            (&mut self.b, &mut self.vb, gb),
        ] {
            for ((p, v), g) in p.iter_mut().zip(v.iter_mut()).zip(g) {
                *v = MOMENTUM * *v + g * scale;
                *p -= self.lr * *v;
            }
        }
    }

    /// The epoch's running accuracy, and a fresh count for the next epoch.
    pub fn take_accuracy(&mut self) -> Option<f64> {
        let acc = (self.seen > 0).then(|| self.correct as f64 / self.seen as f64);
        (self.correct, self.seen) = (0, 0);
        acc
    }

    /// The state as checkpoint bytes: `W, b, v_W, v_b` as little-endian `f32`, then the
    /// two counts as `u64`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let floats = [&self.w, &self.b, &self.vw, &self.vb];
        let mut out: Vec<u8> = floats
            .iter()
            .flat_map(|v| v.iter().flat_map(|x| x.to_le_bytes()))
            .collect();
        out.extend(self.correct.to_le_bytes());
        out.extend(self.seen.to_le_bytes());
        out
    }

    /// Restores the state written by [`Self::to_bytes`] for a probe of the same shape.
    pub fn read_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        let floats = 2 * (self.w.len() + self.b.len());
        if bytes.len() != 4 * floats + 16 {
            return Err(format!(
                "online probe of {} bytes, expected {} for {} classes of {} dimensions",
                bytes.len(),
                4 * floats + 16,
                self.classes,
                self.dim
            ));
        }
        let mut f = bytes[..4 * floats]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        for v in [&mut self.w, &mut self.b, &mut self.vw, &mut self.vb] {
            v.iter_mut().for_each(|x| *x = f.next().unwrap_or(0.0));
        }
        let u = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        (self.correct, self.seen) = (u(4 * floats), u(4 * floats + 8));
        Ok(())
    }
}

fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |b, (i, &x)| if x > b.1 { (i, x) } else { b },
        )
        .0 as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two separable classes: the probe learns them, and its state survives the bytes.
    #[test]
    fn the_probe_learns_separable_classes_and_round_trips() {
        let h: Vec<f32> = (0..64)
            .flat_map(|i| {
                let s = if i % 2 == 0 { 1.0 } else { -1.0 };
                [s + (i as f32 * 0.37).sin() * 0.3, (i as f32 * 0.91).cos()]
            })
            .collect();
        let labels: Vec<u32> = (0..64).map(|i| (i % 2) as u32).collect();
        let mut p = OnlineProbe::new(2, 2, 0.5);
        for _ in 0..20 {
            p.step(&h, &labels);
        }
        let pred = p.predict(&h);
        let right = pred.iter().zip(&labels).filter(|(a, b)| a == b).count();
        assert_eq!(right, 64);
        let mut q = OnlineProbe::new(2, 2, 0.5);
        q.read_bytes(&p.to_bytes()).unwrap();
        assert_eq!(p, q);
        assert!(q.read_bytes(&[0; 3]).unwrap_err().contains("expected"));
    }

    /// The gradient of the mean cross-entropy, against central differences of the loss.
    #[test]
    fn the_step_follows_the_cross_entropy_gradient() {
        let (h, y) = (vec![0.5f32, -1.0, 2.0, 0.25], vec![1u32, 0]);
        let loss = |w: &[f32]| -> f64 {
            let p = OnlineProbe {
                w: w.to_vec(),
                ..OnlineProbe::new(2, 2, 1.0)
            };
            h.chunks(2)
                .zip(&y)
                .map(|(r, &c)| {
                    let l = p.logits(r);
                    let lse = l.iter().map(|x| f64::from(*x).exp()).sum::<f64>().ln();
                    lse - f64::from(l[c as usize])
                })
                .sum::<f64>()
                / 2.0
        };
        let w0 = vec![0.1f32, -0.2, 0.3, 0.05];
        let mut p = OnlineProbe {
            w: w0.clone(),
            ..OnlineProbe::new(2, 2, 1.0)
        };
        p.step(&h, &y);
        // with lr 1 and no history, the step is the gradient itself
        for i in 0..4 {
            let (mut a, mut b) = (w0.clone(), w0.clone());
            a[i] += 1e-3;
            b[i] -= 1e-3;
            let fd = (loss(&a) - loss(&b)) / 2e-3;
            let g = f64::from(w0[i] - p.w[i]);
            assert!((fd - g).abs() < 1e-3, "{i}: {fd} vs {g}");
        }
    }
}
