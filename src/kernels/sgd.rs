//! The SGD update, `v' = (wd p + g) + m v` and `p' = p - lr v'`, each one parallel pass, in
//! the order burn's `Sgd` rounds them.
//!
//! burn's `Sgd` composes it from six tensor operations (scale, add, scale, add, scale,
//! subtract), each a serial pass with its own allocation; on the MLP step that was 5% of
//! the step with one core idle.

use std::mem::MaybeUninit;

simd! {
fn velocity_chunk(out: &mut [MaybeUninit<f32>], v: &[f32], g: &[f32], p: &[f32], m: f32, wd: f32) {
    for (((o, &v), &g), &p) in out.iter_mut().zip(v).zip(g).zip(p) {
        o.write((wd * p + g) + m * v);
    }
}
}

simd! {
fn descend_chunk(out: &mut [MaybeUninit<f32>], p: &[f32], d: &[f32], lr: f32) {
    for ((o, &p), &d) in out.iter_mut().zip(p).zip(d) {
        o.write(p - lr * d);
    }
}
}

/// The new velocity `(wd p + g) + m v` (with `m = 0` the decayed gradient, whatever `v`).
pub fn velocity(v: &[f32], g: &[f32], p: &[f32], m: f32, wd: f32) -> Vec<f32> {
    assert!(
        v.len() == g.len() && g.len() == p.len(),
        "sgd: velocity, gradient and parameter differ in length"
    );
    // SAFETY: `velocity_chunk` writes every element of its chunk.
    unsafe {
        super::elementwise(g.len(), |r, out| {
            velocity_chunk(out, &v[r.clone()], &g[r.clone()], &p[r], m, wd)
        })
    }
}

/// The new parameter `p - lr d`.
pub fn descend(p: &[f32], d: &[f32], lr: f32) -> Vec<f32> {
    assert_eq!(p.len(), d.len(), "sgd: parameter and step differ in length");
    // SAFETY: `descend_chunk` writes every element of its chunk.
    unsafe {
        super::elementwise(p.len(), |r, out| {
            descend_chunk(out, &p[r.clone()], &d[r], lr)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_follow_their_formulas() {
        let n = super::super::CHUNK + 5;
        let f =
            |s: usize| -> Vec<f32> { (0..n).map(|i| ((i * s) % 17) as f32 / 8.0 - 1.0).collect() };
        let (v, g, p) = (f(3), f(5), f(7));
        let nv = velocity(&v, &g, &p, 0.9, 0.01);
        let np = descend(&p, &nv, 0.1);
        for i in 0..n {
            assert_eq!(nv[i], (0.01 * p[i] + g[i]) + 0.9 * v[i]);
            assert_eq!(np[i], p[i] - 0.1 * nv[i]);
        }
    }
}
