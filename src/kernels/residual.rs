//! The residual join of a basic block, `y = max(a + b, 0)`, in one parallel pass; its
//! gradient `da = db = dy * [y > 0]` is [`super::relu_gate`], one pass too.
//!
//! Through burn the join is an add and a ReLU, each a serial pass over the activations
//! forward and again backward, while one core waits.

use std::mem::MaybeUninit;

simd! {
fn add_relu_chunk(y: &mut [MaybeUninit<f32>], a: &[f32], b: &[f32]) {
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        y.write((a + b).max(0.0));
    }
}
}

/// `max(a + b, 0)`, element by element. Its gradient for either operand is
/// [`super::relu_gate`] of its output.
pub fn forward(a: &[f32], b: &[f32]) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "add_relu: operands differ in length");
    // SAFETY: `add_relu_chunk` writes every element of its chunk.
    unsafe { super::elementwise(a.len(), |r, y| add_relu_chunk(y, &a[r.clone()], &b[r])) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_gate_follow_their_formulas() {
        // Longer than one chunk, with a tail.
        let n = super::super::CHUNK + 37;
        let a: Vec<f32> = (0..n).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..n)
            .map(|i| ((i * 104_729) % 11) as f32 * 0.5 - 2.5)
            .collect();
        let y = forward(&a, &b);
        let dy: Vec<f32> = (0..n).map(|i| (i % 5) as f32 + 1.0).collect();
        let g = super::super::relu_gate(&y, &dy);
        let mut zeros = 0;
        for i in 0..n {
            assert_eq!(y[i], (a[i] + b[i]).max(0.0));
            assert_eq!(g[i], if a[i] + b[i] > 0.0 { dy[i] } else { 0.0 });
            zeros += usize::from(a[i] + b[i] <= 0.0);
        }
        assert!(
            zeros > n / 10 && zeros < n * 9 / 10,
            "both sides of the gate"
        );
    }
}
