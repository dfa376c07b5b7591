//! The trainer's evaluations: online kNN during training and the final one with its
//! baselines.

use std::time::Instant;

use super::{Outcome, Trainer};
use crate::data::Source;
use crate::error::Result;
use crate::eval::geometry::Geometry;
use crate::eval::knn::Features;
use crate::eval::{self, Evaluation, Scores};
use crate::model::Model;
use crate::train::metrics::Record;

/// The most pixel bytes a streamed source's raw-input baseline reads into memory.
const RAW_BASELINE_BYTES: usize = 1 << 30;

/// The final evaluation: scores with per-class detail, the geometry of augmented views
/// (transform views only), and the raw-input and random-init baselines.
struct Evaluated {
    evaluation: Evaluation,
    geometry: Option<Geometry>,
    baseline: Option<Scores>,
    random_init: Option<Scores>,
}

impl Trainer {
    /// The final evaluation, written as the last metrics record and returned.
    /// Rank 0 evaluates; the other ranks of a data-parallel run return no scores.
    pub(super) fn finish(mut self, images_per_s: f64, final_loss: Option<f32>) -> Result<Outcome> {
        if !self.writes_run() {
            return Ok(Outcome {
                dir: self.dir.clone(),
                unlabelled: None,
                scores: Default::default(),
                baseline: None,
                random_init: None,
                images_per_s,
                final_loss,
            });
        }
        let Evaluated {
            evaluation,
            geometry,
            baseline,
            random_init,
        } = self.evaluate()?;
        let scores = evaluation.scores;
        let knn = evaluation.knn.as_ref();
        let record = Record {
            knn_top1: scores.knn_top1,
            knn_top5: scores.knn_top5,
            linear_top1: scores.linear_top1,
            images_per_s: Some(images_per_s),
            knn_per_class: knn.map(|k| k.per_class.clone()),
            knn_confusion: knn.map(|k| k.confusion.clone()),
            linear_per_class: evaluation.linear.map(|l| l.per_class),
            alignment: geometry.as_ref().map(|g| g.alignment),
            uniformity: geometry.as_ref().map(|g| g.uniformity),
            baseline_knn_top1: baseline.as_ref().and_then(|b| b.knn_top1),
            baseline_linear_top1: baseline.as_ref().and_then(|b| b.linear_top1),
            random_init_knn_top1: random_init.as_ref().and_then(|r| r.knn_top1),
            random_init_linear_top1: random_init.as_ref().and_then(|r| r.linear_top1),
            ..Record::at(self.cfg.train.epochs, self.total_steps())
        };
        self.write(record)?;
        Ok(Outcome {
            dir: self.dir.clone(),
            unlabelled: evaluation.unlabelled,
            scores,
            baseline,
            random_init,
            images_per_s,
            final_loss,
        })
    }

    /// Representations of `source` under `model`, as the evaluation reads them.
    fn features(&self, model: &Model, source: &Source) -> Result<Features> {
        let (mean, std) = (self.mean.as_slice(), self.std.as_slice());
        eval::extract_source(&self.cfg, model, source, (mean, std), &self.device)
    }

    /// The test split used for evaluation.
    fn test_split(&self) -> Source {
        self.ds.test.clone().truncate(self.cfg.eval.test_limit)
    }

    /// kNN accuracy of the current representation (online evaluation), on the labelled
    /// samples; `None` when either split has none.
    pub(super) fn online_knn(&self) -> Result<Option<f64>> {
        let classes = self.ds.classes;
        let test = self.test_split();
        let ftr = self.features(&self.model, &self.train)?.labelled(classes);
        let fte = self.features(&self.model, &test)?.labelled(classes);
        if ftr.is_empty() || fte.is_empty() {
            return Ok(None);
        }
        let (k, t) = (self.cfg.eval.knn_k, self.cfg.eval.knn_temperature);
        let pred = eval::knn::predict(&ftr, &fte, k, t, classes, &self.device);
        Ok(Some(eval::knn::accuracy(&pred, &fte.labels)))
    }

    /// The online probe's accuracy on the labelled test samples; `None` when there are
    /// none.
    pub(super) fn probe_accuracy(
        &self,
        probe: &crate::eval::online::OnlineProbe,
    ) -> Result<Option<f64>> {
        let (mean, std) = (self.mean.as_slice(), self.std.as_slice());
        let test = self.test_split();
        let h = eval::Output::Representation;
        let fte = eval::extract_source_output(
            &self.cfg,
            &self.model,
            &test,
            (mean, std),
            &self.device,
            h,
        )?
        .labelled(self.ds.classes);
        Ok((!fte.is_empty()).then(|| eval::knn::accuracy(&probe.predict(&fte.data), &fte.labels)))
    }

    /// kNN and linear probe on the representation (with per-class scores, and alignment
    /// and uniformity for augmented views), on raw inputs and on a random-init encoder
    /// when configured.
    fn evaluate(&self) -> Result<Evaluated> {
        let test = self.test_split();
        let t0 = Instant::now();
        let ftr = self.features(&self.model, &self.train)?;
        let fte = self.features(&self.model, &test)?;
        let secs = t0.elapsed().as_secs_f64();
        let (cfg, seed) = (&self.cfg.eval, self.cfg.train.seed);
        let evaluation = eval::evaluate(&ftr, &fte, self.ds.classes, cfg, seed, &self.device);
        let geometry = eval::geometry::measure(
            &self.model,
            &test,
            &fte,
            &self.views,
            (&self.mean, &self.std),
            seed,
            &self.device,
        )?;
        self.say(&format!(
            "evaluated: features {secs:.1}s, kNN {:.1}s, linear probe {:.1}s",
            evaluation.scores.knn_seconds, evaluation.scores.linear_seconds
        ));
        if let Some(why) = &evaluation.unlabelled {
            self.say(why);
        }
        let baseline = match cfg.baseline {
            true => self.raw_baseline(&test)?,
            false => None,
        };
        let random_init = if cfg.random_init {
            let fresh = Model::new(&self.cfg, self.shape, &self.ad)?;
            let (rtr, rte) = (
                self.features(&fresh, &self.train)?,
                self.features(&fresh, &test)?,
            );
            Some(eval::evaluate(&rtr, &rte, self.ds.classes, cfg, seed, &self.device).scores)
        } else {
            None
        };
        Ok(Evaluated {
            evaluation,
            geometry,
            baseline,
            random_init,
        })
    }

    /// The raw-input baseline's scores. A streamed source is read at the evaluated size,
    /// and only when both splits' pixels fit in [`RAW_BASELINE_BYTES`]; else it is left
    /// out, with a line saying why.
    fn raw_baseline(&self, test: &Source) -> Result<Option<eval::Scores>> {
        let (mean, std) = (self.mean.as_slice(), self.std.as_slice());
        let raw = |s: &Source| -> Result<Features> {
            match s.memory() {
                Some(split) => Ok(eval::raw(split, mean, std)),
                None => Ok(eval::raw(&s.head(s.len())?, mean, std)),
            }
        };
        let values = (self.train.len() + test.len()) * self.shape.iter().product::<usize>();
        if self.train.memory().is_none() && values * 4 > RAW_BASELINE_BYTES {
            self.say(&format!(
                "raw-input baseline left out: {} of pixels at the evaluated size is over {}",
                crate::host::human(values as f64 * 4.0),
                crate::host::human(RAW_BASELINE_BYTES as f64)
            ));
            return Ok(None);
        }
        let (rtr, rte) = (raw(&self.train)?, raw(test)?);
        let (cfg, seed) = (&self.cfg.eval, self.cfg.train.seed);
        Ok(Some(
            eval::evaluate(&rtr, &rte, self.ds.classes, cfg, seed, &self.device).scores,
        ))
    }
}
