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
    velocity: Option<Tensor<D>>,
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

impl<const D: usize> SgdState<D> {
    /// One momentum step from `state`: `v' = (wd p + g) + m v` (the first step's velocity
    /// is `wd p + g`) and `p' = p - lr v'`; shared by [`Sgd`] and
    /// [`Lars`](super::lars::Lars), which passes its adapted update as `g` and `wd = 0`.
    pub(super) fn descend(
        state: Option<Self>,
        p: Tensor<D>,
        g: Tensor<D>,
        (m, wd, lr): (f32, f32, f32),
    ) -> (Tensor<D>, Option<Self>) {
        let (momentum, v) = match state.and_then(|s| s.velocity) {
            Some(v) => (m, v),
            None => (0.0, g.clone()),
        };
        let velocity = kernels::sgd_velocity(v, g, p.clone(), momentum, wd);
        let next = kernels::sgd_descend(p, velocity.clone(), lr);
        let velocity = (m > 0.0).then_some(velocity);
        (next, Some(Self { velocity }))
    }

    /// The velocity moved to `device`.
    pub(super) fn moved(self, device: &Device) -> Self {
        Self {
            velocity: self.velocity.map(|v| v.to_device(device)),
        }
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
        let hyper = (self.momentum, self.weight_decay, lr as f32);
        SgdState::descend(state, tensor, grad, hyper)
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        state.moved(device)
    }
}
