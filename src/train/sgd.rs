//! SGD with momentum and L2 weight decay, as burn's `Sgd` with dampening 0 and no
//! Nesterov: `v' = (wd p + g) + m v` (the first step's velocity is `wd p + g`) and
//! `p' = p - lr v'`, rounded in burn's order.
//!
//! burn's version is six serial tensor operations per parameter; here the update is two
//! parallel passes on `flex` ([`crate::kernels::sgd`]) and burn's operations elsewhere. The
//! velocity is recorded under burn's names (`momentum.velocity`), so a checkpoint written
//! with either optimiser resumes with the other.

use burn::optim::{join_path, LearningRate, Optimizer, RecordState, StateSink, StateSource};
use burn::prelude::*;

use crate::kernels;

/// The optimiser: momentum `m` (0: plain SGD, no state) and weight decay `wd`.
#[derive(Debug, Clone, Copy)]
pub struct Sgd {
    pub momentum: f32,
    pub weight_decay: f32,
}

/// One parameter's velocity, kept when momentum is on.
#[derive(Debug, Clone)]
pub struct SgdState<const D: usize> {
    pub(super) velocity: Option<Tensor<D>>,
}

/// burn's `SgdState` nests the velocity as `momentum.velocity`.
const NEST: &str = "momentum";
const LEAF: &str = "velocity";

impl<const D: usize> RecordState for SgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(v) = &self.velocity {
            out.push_tensor(&join_path(prefix, NEST), LEAF, v.clone().into_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let velocity = src
            .take_tensor(&join_path(prefix, NEST), LEAF)
            .map(|data| Tensor::from_data(data, device));
        Some(Self { velocity })
    }
}

impl Optimizer for Sgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<SgdState<D>>,
    ) -> (Tensor<D>, Option<SgdState<D>>) {
        let (m, v) = match state.and_then(|s| s.velocity) {
            Some(v) => (self.momentum, v),
            None => (0.0, grad.clone()),
        };
        let velocity = kernels::sgd_velocity(v, grad, tensor.clone(), m, self.weight_decay);
        let next = kernels::sgd_descend(tensor, velocity.clone(), lr as f32);
        let velocity = (self.momentum > 0.0).then_some(velocity);
        (next, Some(SgdState { velocity }))
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        SgdState {
            velocity: state.velocity.map(|v| v.to_device(device)),
        }
    }
}
