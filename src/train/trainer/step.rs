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
        let world = crate::dist::world();
        self.keys.before_step(&self.cfg, global, self.steps);
        // every batch norm of the step's forward and backward is a collective under sync_bn
        let sync = self.cfg.train.sync_bn && world.size() > 1;
        crate::kernels::norm::set_sync(sync);
        let stepped = self.forward_backward(global, total, views);
        crate::kernels::norm::set_sync(false);
        let (value, mut grads, bound) = stepped?;
        if world.size() > 1 {
            // parameters after the gather: every rank holds the whole gradient when it
            // computed the whole loss (averaged), its share when the queries were split
            let replicated = match pairing::splits_queries(&self.cfg) {
                true => Vec::new(),
                false => self.model.after_gather_params(),
            };
            crate::dist::all_reduce_grads(world, &mut grads, &self.model, &replicated);
        }
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.keys.after_step(&self.cfg, &self.model, global, total);
        Ok((value, bound))
    }

    /// The loss of the batch, its finite value, this rank's parameter gradients and the
    /// InfoNCE bound. On several ranks the loss is taken back to the gathered rows first,
    /// then through them to the parameters ([`crate::dist::Ledger::local_loss`]).
    fn forward_backward(
        &mut self,
        global: usize,
        total: usize,
        views: &ViewBatch,
    ) -> Result<(f32, GradientsParams, Option<f64>)> {
        let world = crate::dist::world();
        let split = pairing::splits_queries(&self.cfg);
        let mut ledger = crate::dist::Ledger::default();
        let mut features = None;
        let probing = self.probe.is_some();
        let step = Step {
            cfg: &self.cfg,
            model: &self.model,
            keys: &mut self.keys,
            loss: &self.loss,
            state: &mut self.loss_state,
            device: &self.ad,
            global,
            total,
            ledger: &mut ledger,
            features: probing.then_some(&mut features),
        };
        let (loss, map) = pairing::loss(step, views)?;
        if let (Some(probe), Some((h, tags))) = (self.probe.as_mut(), features) {
            let labels: Vec<u32> = tags.iter().map(|t| t.label).collect();
            probe.step(&crate::keys::host(&h), &labels);
        }
        let mut value = [loss.clone().into_scalar::<f32>()];
        if split {
            world.all_reduce_sum(&mut value);
        }
        let [value] = value;
        if !value.is_finite() {
            return Err(Error::NonFinite {
                step: global + 1,
                epoch: global / self.steps + 1,
                loss: value,
                kept: list_checkpoints(&self.dir.join("checkpoints"))?.pop(),
            });
        }
        let grads = loss.backward();
        let grads = match ledger.is_empty() {
            true => GradientsParams::from_grads(grads, &self.model),
            false => {
                let local = ledger.local_loss(&grads, world, split);
                let mut params = GradientsParams::from_grads(grads, &self.model);
                if let Some(local) = local {
                    let through = GradientsParams::from_grads(local.backward(), &self.model);
                    crate::dist::merge_grads(&mut params, through, &self.model);
                }
                params
            }
        };
        let bound = (self.cfg.loss.contrastive()).then(|| info_nce_bound(f64::from(value), &map));
        Ok((value, grads, bound))
    }
}
