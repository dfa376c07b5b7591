//! One optimisation step of the trainer.

use burn::optim::GradientsParams;

use super::Trainer;
use crate::error::{Error, Result};
use crate::loss::mutual_info::info_nce_bound;
use crate::train::pairing::{self, Step};
use crate::train::rundir::list_checkpoints;
use crate::views::ViewBatch;

impl Trainer {
    /// One optimisation step at `global` (from 0) with learning rate `lr`; returns the
    /// loss and, for the InfoNCE family, the bound `log N - L`.
    pub(super) fn train_step(
        &mut self,
        global: usize,
        lr: f64,
        views: &ViewBatch,
    ) -> Result<(f32, Option<f64>)> {
        let total = self.total_steps();
        self.keys.before_step(&self.cfg, global, self.steps);
        let step = Step {
            cfg: &self.cfg,
            model: &self.model,
            keys: &mut self.keys,
            loss: &self.loss,
            state: &mut self.loss_state,
            device: &self.ad,
            global,
            total,
        };
        let (loss, map) = pairing::loss(step, views)?;
        let value = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            return Err(Error::NonFinite {
                step: global + 1,
                epoch: global / self.steps + 1,
                loss: value,
                kept: list_checkpoints(&self.dir.join("checkpoints"))?.pop(),
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.keys.after_step(&self.cfg, &self.model, global, total);
        let bound = (self.cfg.loss.contrastive()).then(|| info_nce_bound(f64::from(value), &map));
        Ok((value, bound))
    }
}
