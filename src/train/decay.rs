//! Weight decay on weights only: biases and normalisation parameters (the model's
//! one-dimensional tensors) step without it, as SimCLR's, BYOL's and DINO's recipes do
//! and as solo-learn's `exclude_bias_n_norm_wd` and lightly's `get_weight_decay_parameters`
//! offer. Decay pulls a batch-norm scale towards 0, which no loss asks for.

use burn::optim::{LearningRate, Optimizer};
use burn::prelude::*;

/// An optimiser that steps rank-1 tensors with `plain` (the same optimiser, decay 0) and
/// the others with `decayed`. Both share one state type, so checkpoints are those of the
/// wrapped optimiser.
#[derive(Clone)]
pub struct WeightsOnly<O> {
    pub decayed: O,
    pub plain: O,
}

impl<O: Optimizer> Optimizer for WeightsOnly<O> {
    type State<const D: usize> = O::State<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        match D {
            1 => self.plain.step(lr, tensor, grad, state),
            _ => self.decayed.step(lr, tensor, grad, state),
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        O::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::sgd::Sgd;

    /// A bias steps by its gradient alone; a weight matrix adds `wd p`.
    #[test]
    fn only_tensors_of_two_or_more_dimensions_decay() {
        let device = Device::flex();
        let o = WeightsOnly {
            decayed: Sgd {
                momentum: 0.0,
                weight_decay: 0.5,
            },
            plain: Sgd {
                momentum: 0.0,
                weight_decay: 0.0,
            },
        };
        let b = Tensor::<1>::from_floats([2.0], &device);
        let (b, _) = o.step(0.1, b, Tensor::<1>::from_floats([1.0], &device), None);
        let w = Tensor::<2>::from_floats([[2.0]], &device);
        let (w, _) = o.step(0.1, w, Tensor::<2>::from_floats([[1.0]], &device), None);
        let (b, w) = (b.into_scalar::<f32>(), w.reshape([1]).into_scalar::<f32>());
        assert!((b - 1.9).abs() < 1e-6, "bias {b}");
        assert!((w - 1.8).abs() < 1e-6, "weight {w}");
    }
}
