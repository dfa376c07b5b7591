//! LARS (You et al. 2017) as Barlow Twins trains with it: each weight tensor's update is
//! rescaled by its trust ratio, so the step is a fixed fraction of the weight's norm
//! whatever the loss's scale. (SimCLR's and BYOL's LARS keep `lr` inside the velocity,
//! `v' = m v + lr q u`, which differs under a schedule.)
//!
//! For a tensor `p` of two or more dimensions, with gradient `g`:
//! `u = g + wd p`, `q = eta |p| / |u|` (1 when either norm is 0), `v' = q u + m v`,
//! `p' = p - lr v'`. Biases and normalisation parameters (one-dimensional tensors) are left
//! out of the decay and the adaptation, as in those papers: `v' = g + m v`,
//! `p' = p - lr s v'` with `s` the bias learning-rate scale (Barlow Twins: 0.0048 / 0.2).
//! burn has no LARS. The velocity is recorded as [`Sgd`](super::sgd::Sgd)'s is.

use burn::optim::{LearningRate, Optimizer};
use burn::prelude::*;

use super::sgd::SgdState;

/// The optimiser: momentum `m`, weight decay `wd`, trust coefficient `eta`, and the
/// learning-rate scale `s` of one-dimensional tensors.
#[derive(Debug, Clone, Copy)]
pub struct Lars {
    pub momentum: f32,
    pub weight_decay: f32,
    pub trust_coefficient: f32,
    pub bias_lr_scale: f32,
}

impl Lars {
    /// `q u` with `u = g + wd p`: the decayed gradient scaled by its trust ratio, computed
    /// on the device (no read back to the host).
    fn adapted<const D: usize>(&self, p: Tensor<D>, g: Tensor<D>) -> Tensor<D> {
        let u = p.clone().mul_scalar(self.weight_decay).add(g);
        let p_norm = p.square().sum().sqrt();
        let u_norm = u.clone().square().sum().sqrt();
        let both = p_norm
            .clone()
            .greater_elem(0.0)
            .bool_and(u_norm.clone().greater_elem(0.0));
        let ratio = p_norm.mul_scalar(self.trust_coefficient).div(u_norm);
        let q = ratio.ones_like().mask_where(both, ratio);
        u.mul(q.reshape([1; D]))
    }
}

impl Optimizer for Lars {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<SgdState<D>>,
    ) -> (Tensor<D>, Option<SgdState<D>>) {
        let (update, lr) = if D == 1 {
            (grad, lr as f32 * self.bias_lr_scale)
        } else {
            (self.adapted(tensor.clone(), grad), lr as f32)
        };
        SgdState::descend(state, tensor, update, (self.momentum, 0.0, lr))
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        state.moved(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zero update (zero gradient, no decay) takes the trust ratio's fallback of 1, not
    /// `0 / 0`: the weight stays put and stays finite.
    #[test]
    fn zero_update_leaves_the_weight_finite_and_unchanged() {
        let device = Device::flex();
        let p = Tensor::<2>::from_floats([[1.0, -2.0], [0.5, 3.0]], &device);
        let lars = Lars {
            momentum: 0.9,
            weight_decay: 0.0,
            trust_coefficient: 1e-3,
            bias_lr_scale: 1.0,
        };
        let (next, _) = lars.step(0.1, p.clone(), p.zeros_like(), None);
        let (next, got): (Vec<f32>, Vec<f32>) = (
            next.into_data().iter::<f32>().collect(),
            p.into_data().iter::<f32>().collect(),
        );
        assert_eq!(next, got);
    }
}
