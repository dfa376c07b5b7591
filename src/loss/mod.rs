//! Contrastive losses with their scoring functions, usable on their own (as one uses
//! pytorch-metric-learning) or from a config (`loss.kind`, `loss.score`, ...).
//!
//! Every loss reads the positive map of the similarity distribution, never positions in
//! the batch, so any loss works with any way of making positive pairs. The formula, with
//! its source, is in each function's documentation.

pub mod dino;
pub mod geometry;
pub mod infonce;
pub mod margin;
pub mod masks;
pub mod mining;
pub mod mutual_info;
pub mod nce;
pub mod params;
pub mod proto;
pub mod regression;
pub mod swav;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pairs::PositiveMap;
use crate::score::{distances, l2_normalise, score_matrix, Bilinear, Score};
pub use mining::Mining;
pub use params::LossParams;

/// The losses of the review's taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// SimCLR's normalized-temperature cross-entropy (multi-positive InfoNCE, `L_out`).
    NtXent,
    /// InfoNCE, one positive against negatives (same formula as `nt-xent`).
    InfoNce,
    /// Supervised contrastive `L_out`, positives from labels (same formula).
    Supcon,
    /// Supervised contrastive `L_in`.
    SupconIn,
    /// Debiased contrastive loss with hard-negative reweighting (`tau_plus`, `beta`).
    Debiased,
    /// Noise-contrastive estimation (InstDisc).
    Nce,
    /// Negative sampling (word2vec).
    NegativeSampling,
    /// Pair contrastive loss with a margin (Hadsell et al.).
    Pair,
    /// Triplet loss with a margin and mining (FaceNet).
    Triplet,
    /// Deep InfoMax's Jensen-Shannon estimator.
    DimJsd,
    /// Deep InfoMax's Donsker-Varadhan estimator.
    DimDv,
    /// Alignment plus `weight` times uniformity (Wang & Isola).
    AlignUniform,
    /// BYOL's regression of the prediction on the target (non-contrastive baseline).
    Byol,
    /// SimSiam's negative cosine of the prediction and the (stop-gradient) projection.
    NegCosine,
    /// Barlow Twins' redundancy reduction (non-contrastive baseline), weight `lambda`.
    BarlowTwins,
    /// VICReg's variance-invariance-covariance regularisation (non-contrastive baseline),
    /// weights in `[loss.vicreg]`.
    Vicreg,
    /// SwAV's swapped prediction of Sinkhorn cluster codes over `head.prototypes`
    /// (natural clustering), settings in `[loss.swav]`; joint pairing only.
    Swav,
    /// Decoupled contrastive loss: InfoNCE without the positive in the denominator.
    Dcl,
    /// DCL with von Mises-Fisher weights on the positives, `sigma` in `[loss.dclw]`.
    Dclw,
    /// DINO's self-distillation: the cross-entropy of the student's softmax at
    /// `temperature` against the teacher's centred, sharpened softmax of another crop,
    /// teacher settings in `[loss.dino]`; multi-crop pairing only.
    Dino,
    /// PCL's ProtoNCE: the instance InfoNCE (`nt-xent`) plus `weight` times, averaged over
    /// the clusterings of `[loss.proto]`, each embedding's InfoNCE against the k-means
    /// prototypes at their concentrations; joint pairing.
    ProtoNce,
}

/// Loss kinds, for errors and help.
pub const KINDS: &str =
    "nt-xent, info-nce, supcon, supcon-in, debiased, nce, negative-sampling, pair, triplet, dim-jsd, dim-dv, align-uniform, byol, barlow-twins, vicreg, swav, dcl, dclw, neg-cosine, dino, proto-nce";

/// Which loss, with which score and parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    pub kind: LossKind,
    /// Scoring function of the score-based losses.
    pub score: Score,
    /// Temperature dividing the scores.
    pub temperature: f64,
    /// Margin of `pair` and `triplet`.
    pub margin: f64,
    /// Triplet mining.
    pub mining: Mining,
    /// Epochs at the start of training that mine semi-hard triplets before `mining =
    /// "hard"` takes over (FaceNet's remedy: the hardest negatives collapse a model early
    /// in training).
    pub mining_warmup_epochs: usize,
    /// Triplet loss with Hermans et al.'s soft margin `ln(1 + exp(d_ap - d_an))` in place
    /// of the hinge (`margin` is then unused).
    pub soft_margin: bool,
    /// Triplet loss with Xuan et al.'s selectively contrastive loss on the mined triplets,
    /// over cosine similarities at `temperature` (`margin` is then unused).
    pub selective: bool,
    /// L2-normalise embeddings before the distances of `pair` and `triplet`.
    pub normalize: bool,
    /// Class prior `tau_plus` of `debiased`.
    pub tau_plus: f64,
    /// Hard-negative concentration `beta` of `debiased` (0 = no reweighting).
    pub beta: f64,
    /// How `beta` is reached over training: the review's curriculum of easy negatives
    /// early and hard ones later is `linear` or `cosine`, from 0 at the first step to
    /// `beta` at the last.
    pub beta_schedule: BetaSchedule,
    /// Weight of the uniformity term of `align-uniform`.
    pub weight: f64,
    /// Weight of the off-diagonal term of `barlow-twins`.
    pub lambda: f64,
    /// Drop from the candidates keys that share the query's label without being positive
    /// (false negatives, when labels are known).
    pub exclude_false_negatives: bool,
    /// How `nce` estimates its partition function `Z`.
    pub nce_z: NceZ,
    /// The weights of `vicreg`.
    pub vicreg: regression::Vicreg,
    /// The Sinkhorn settings of `swav`.
    pub swav: swav::Swav,
    /// The weighting of `dclw`.
    pub dclw: infonce::Dclw,
    /// The teacher's temperature and centre of `dino`.
    pub dino: dino::Dino,
    /// The clusterings and weight of `proto-nce`.
    pub proto: proto::Proto,
}

/// How NCE estimates its partition function `Z = n mean e^s` ([`nce::nce`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NceZ {
    /// Per query, from its own candidates in each batch.
    Batch,
    /// One scalar from every score of the first batch, then held for the rest of training
    /// (InstDisc's own code, lemniscate's `NCEAverage`); kept in checkpoints.
    FirstBatch,
}

/// The course of the hard-negative concentration `beta` over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BetaSchedule {
    /// `beta` throughout.
    Constant,
    /// `beta t / T` at step `t` of `T`.
    Linear,
    /// `beta (1 - cos(pi t / T)) / 2` at step `t` of `T`.
    Cosine,
}

impl BetaSchedule {
    /// The fraction of `beta` at step `step` of `total`.
    pub fn fraction(self, step: usize, total: usize) -> f64 {
        let t = step as f64 / total.saturating_sub(1).max(1) as f64;
        match self {
            Self::Constant => 1.0,
            Self::Linear => t.min(1.0),
            Self::Cosine => (1.0 - (std::f64::consts::PI * t.min(1.0)).cos()) / 2.0,
        }
    }
}

/// What a loss estimates once and then holds for the rest of training: written to every
/// checkpoint so that a resumed run uses the same values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LossState {
    /// `log mean e^s` of NCE's first batch, under `nce_z = "first-batch"`.
    pub nce_log_mean_exp: Option<f64>,
    /// DINO's centre of the teacher's outputs, moved after every step.
    pub dino_center: Option<Vec<f32>>,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            kind: LossKind::NtXent,
            score: Score::Cosine,
            temperature: 0.2,
            margin: 0.5,
            mining: Mining::Hard,
            mining_warmup_epochs: 0,
            soft_margin: false,
            selective: false,
            normalize: true,
            tau_plus: 0.1,
            beta: 0.0,
            beta_schedule: BetaSchedule::Constant,
            weight: 1.0,
            lambda: 5e-3,
            exclude_false_negatives: false,
            nce_z: NceZ::Batch,
            vicreg: regression::Vicreg::default(),
            swav: swav::Swav::default(),
            dclw: infonce::Dclw::default(),
            dino: dino::Dino::default(),
            proto: proto::Proto::default(),
        }
    }
}

impl LossConfig {
    /// The settings `kind` reads besides `kind`; every other one must keep its default,
    /// so that a value with no effect (a margin on InfoNCE) is an error, not ignored.
    fn reads(kind: LossKind) -> &'static [&'static str] {
        const SCORED: &[&str] = &["score", "temperature", "exclude_false_negatives"];
        match kind {
            LossKind::NtXent
            | LossKind::InfoNce
            | LossKind::Supcon
            | LossKind::SupconIn
            | LossKind::NegativeSampling
            | LossKind::DimJsd
            | LossKind::DimDv => SCORED,
            LossKind::Debiased => &[
                "score",
                "temperature",
                "exclude_false_negatives",
                "tau_plus",
                "beta",
                "beta_schedule",
            ],
            LossKind::Nce => &["score", "temperature", "exclude_false_negatives", "nce_z"],
            LossKind::Dcl => SCORED,
            LossKind::Dclw => &["score", "temperature", "exclude_false_negatives", "dclw"],
            LossKind::Pair => &["margin", "normalize", "exclude_false_negatives"],
            LossKind::Triplet => &[
                "margin",
                "normalize",
                "exclude_false_negatives",
                "mining",
                "mining_warmup_epochs",
                "soft_margin",
                "selective",
                "temperature",
            ],
            LossKind::AlignUniform => &["weight"],
            LossKind::Byol | LossKind::NegCosine => &[],
            LossKind::BarlowTwins => &["lambda"],
            LossKind::Vicreg => &["vicreg"],
            LossKind::Swav => &["swav", "temperature"],
            LossKind::Dino => &["dino", "temperature"],
            LossKind::ProtoNce => &["score", "temperature", "exclude_false_negatives", "proto"],
        }
    }

    /// A config file's loss sets only what its kind reads: a value with no effect (a
    /// margin on InfoNCE) is refused, naming the key. (Library code that fills a
    /// [`LossConfig`] literal is not held to this: [`Self::validate`] leaves it out.)
    pub fn validate_read(&self) -> Result<()> {
        match self.unread() {
            Some((key, value)) => Err(Error::config(
                format!("loss.{key}"),
                value,
                format!(
                    "its default: loss.kind = \"{}\" does not read it",
                    crate::error::kind_name(&self.kind)
                ),
            )),
            None => Ok(()),
        }
    }

    /// The first setting that differs from its default although the kind never reads it.
    fn unread(&self) -> Option<(String, serde_json::Value)> {
        let (mine, default) = (
            serde_json::to_value(self).ok()?,
            serde_json::to_value(Self::default()).ok()?,
        );
        let reads = Self::reads(self.kind);
        mine.as_object()?.iter().find_map(|(key, v)| {
            let d = default.get(key.as_str())?;
            if key == "kind" || reads.contains(&key.as_str()) || d == v {
                return None;
            }
            // a sub-table: name its first changed key
            let inner = v.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, x)| d.get(k.as_str()) != Some(x))
                    .map(|(k, x)| (format!("{key}.{k}"), x.clone()))
            });
            Some(inner.unwrap_or_else(|| (key.clone(), v.clone())))
        })
    }

    /// Checks the loss's values, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(Error::config(
                "loss.temperature",
                self.temperature,
                "a finite value > 0",
            ));
        }
        if !(self.margin >= 0.0 && self.margin.is_finite()) {
            return Err(Error::config(
                "loss.margin",
                self.margin,
                "a finite value >= 0",
            ));
        }
        if self.selective {
            let clash = if self.kind != LossKind::Triplet {
                Some("loss.kind = \"triplet\"")
            } else if self.soft_margin {
                Some("loss.soft_margin = false")
            } else if !self.normalize {
                Some("loss.normalize = true (it scores cosine similarities)")
            } else {
                None
            };
            if let Some(need) = clash {
                return Err(Error::config(
                    "loss.selective",
                    true,
                    format!("false, or {need}"),
                ));
            }
        }
        if self.mining_warmup_epochs > 0
            && (self.kind != LossKind::Triplet || self.mining != Mining::Hard)
        {
            return Err(Error::config(
                "loss.mining_warmup_epochs",
                self.mining_warmup_epochs,
                "0 unless loss.kind = \"triplet\" and loss.mining = \"hard\"",
            ));
        }
        if self.mining == Mining::SemiHardAll
            && self.kind == LossKind::Triplet
            && (self.soft_margin || self.selective || self.margin == 0.0)
        {
            return Err(Error::config(
                "loss.mining",
                "semi-hard-all",
                "a hinge with loss.margin > 0 (its band is 0 < d_an - d_ap <= margin), not \
                 loss.soft_margin or loss.selective",
            ));
        }
        if self.nce_z != NceZ::Batch && self.kind != LossKind::Nce {
            return Err(Error::config(
                "loss.nce_z",
                "first-batch",
                "\"batch\" unless loss.kind = \"nce\"",
            ));
        }
        self.vicreg.validate()?;
        self.swav.validate()?;
        self.dclw.validate()?;
        self.dino.validate()?;
        self.proto.validate()?;
        if !(0.0..1.0).contains(&self.tau_plus) {
            return Err(Error::config(
                "loss.tau_plus",
                self.tau_plus,
                "a class prior in [0, 1)",
            ));
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return Err(Error::config("loss.beta", self.beta, "a finite value >= 0"));
        }
        if !(self.weight >= 0.0 && self.weight.is_finite()) {
            return Err(Error::config(
                "loss.weight",
                self.weight,
                "a finite value >= 0",
            ));
        }
        if !(self.lambda >= 0.0 && self.lambda.is_finite()) {
            return Err(Error::config(
                "loss.lambda",
                self.lambda,
                "a finite value >= 0",
            ));
        }
        Ok(())
    }

    /// The loss as it applies in `epoch` (from 0), with no warm-up left to schedule:
    /// semi-hard mining during the first `mining_warmup_epochs`, `mining` after them, and
    /// DINO's teacher temperature of this epoch.
    pub fn for_epoch(&self, epoch: usize) -> Self {
        let warming = epoch < self.mining_warmup_epochs;
        let teacher = self.dino.teacher_at(epoch);
        Self {
            dino: dino::Dino {
                teacher_temperature: teacher,
                warmup_teacher_temperature: teacher,
                warmup_epochs: 0,
                ..self.dino
            },
            mining: if warming {
                Mining::SemiHard
            } else {
                self.mining
            },
            mining_warmup_epochs: 0,
            ..self.clone()
        }
    }

    /// The loss as it applies at step `step` of `total` in `epoch`: [`Self::for_epoch`],
    /// with `beta` on its schedule.
    pub fn at_step(&self, epoch: usize, step: usize, total: usize) -> Self {
        Self {
            beta: self.beta * self.beta_schedule.fraction(step, total),
            beta_schedule: BetaSchedule::Constant,
            ..self.for_epoch(epoch)
        }
    }

    /// Whether the loss compares queries and keys through [`Score::Bilinear`].
    pub fn needs_bilinear(&self) -> bool {
        self.score == Score::Bilinear && self.uses_scores()
    }
    fn uses_scores(&self) -> bool {
        !matches!(
            self.kind,
            LossKind::Pair
                | LossKind::Triplet
                | LossKind::AlignUniform
                | LossKind::Byol
                | LossKind::NegCosine
                | LossKind::BarlowTwins
                | LossKind::Vicreg
                | LossKind::Swav
                | LossKind::Dino
        )
    }

    /// Whether the loss needs negatives (the non-contrastive baselines do not).
    pub fn contrastive(&self) -> bool {
        !matches!(
            self.kind,
            LossKind::Byol
                | LossKind::NegCosine
                | LossKind::BarlowTwins
                | LossKind::Vicreg
                | LossKind::Swav
                | LossKind::Dino
        )
    }

    /// The loss of queries `q` against keys `k` under `map`, for a loss that learns no
    /// parameters (a bilinear score learns `W`: build the [`Loss`] and give it its
    /// [`LossParams`]). A value the loss holds across steps ([`LossState`]) is estimated
    /// from this batch alone.
    ///
    /// ```
    /// use burn::prelude::*;
    /// use burn::tensor::TensorData;
    /// use contrastive::loss::{LossConfig, LossKind};
    /// use contrastive::pairs::PositiveMap;
    /// let device = Device::flex();
    /// // two views of 2 samples, rows [x0, x1, x0', x1']: each row's positive is its twin
    /// let z = Tensor::<2>::from_data(
    ///     TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0, 0.9, 0.1, 0.1, 0.9], [4, 2]),
    ///     &device,
    /// );
    /// let cfg = LossConfig { kind: LossKind::NtXent, temperature: 0.5, ..LossConfig::default() };
    /// let loss = cfg.compute(z.clone(), z, &PositiveMap::two_views(2))?;
    /// assert!(loss.into_scalar::<f32>() < 1.0);
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    pub fn compute(&self, q: Tensor<2>, k: Tensor<2>, map: &PositiveMap) -> Result<Tensor<1>> {
        self.build()?
            .compute_with(q, k, map, &LossParams::none(), &mut LossState::default())
    }

    /// The loss, its settings checked once here rather than at every step.
    pub fn build(&self) -> Result<Loss> {
        self.validate().map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Loss { cfg: self.clone() })
    }

    /// [`Loss::compute_with`] on settings already checked.
    fn compute_checked(
        &self,
        q: Tensor<2>,
        k: Tensor<2>,
        map: &PositiveMap,
        bilinear: Option<&Bilinear>,
        state: &mut LossState,
    ) -> Result<Tensor<1>> {
        let ([rq, dq], [rk, dk]) = (q.dims(), k.dims());
        if map.rows != rq || map.cols != rk {
            return Err(Error::Invalid(format!(
                "positive map is {}x{} but there are {rq} queries and {rk} keys",
                map.rows, map.cols
            )));
        }
        let t = self.temperature;
        match self.kind {
            LossKind::NtXent | LossKind::InfoNce | LossKind::Supcon | LossKind::ProtoNce
                if matches!(self.score, Score::Cosine | Score::Dot) =>
            {
                infonce::check_map(rq, rk, map)?;
                if dq != dk {
                    return Err(Error::Invalid(format!(
                        "queries have {dq} dimensions but keys have {dk}"
                    )));
                }
                let cosine = self.score == Score::Cosine;
                if let Some(loss) = crate::kernels::contrastive(&q, &k, t, cosine, map) {
                    return Ok(loss);
                }
                infonce::info_nce(score_matrix(self.score, q, k, t, bilinear)?, map)
            }
            LossKind::NtXent | LossKind::InfoNce | LossKind::Supcon | LossKind::ProtoNce => {
                infonce::info_nce(score_matrix(self.score, q, k, t, bilinear)?, map)
            }
            LossKind::SupconIn => {
                infonce::supcon_in(score_matrix(self.score, q, k, t, bilinear)?, map)
            }
            LossKind::Debiased => infonce::debiased(
                score_matrix(self.score, q, k, t, bilinear)?,
                map,
                self.tau_plus,
                self.beta,
                t,
            ),
            LossKind::Dcl => {
                infonce::decoupled(score_matrix(self.score, q, k, t, bilinear)?, map, None)
            }
            LossKind::Dclw => infonce::decoupled(
                score_matrix(self.score, q, k, t, bilinear)?,
                map,
                Some((t, self.dclw.sigma)),
            ),
            LossKind::Nce => {
                let s = score_matrix(self.score, q, k, t, bilinear)?;
                let held = match (self.nce_z, state.nce_log_mean_exp) {
                    (NceZ::Batch, _) => None,
                    (NceZ::FirstBatch, Some(l)) => Some(l),
                    (NceZ::FirstBatch, None) => {
                        let l = nce::log_mean_exp(&s, map)?;
                        state.nce_log_mean_exp = Some(l);
                        Some(l)
                    }
                };
                nce::nce(s, map, held)
            }
            LossKind::NegativeSampling => {
                nce::negative_sampling(score_matrix(self.score, q, k, t, bilinear)?, map)
            }
            LossKind::DimJsd => {
                mutual_info::jensen_shannon(score_matrix(self.score, q, k, t, bilinear)?, map)
            }
            LossKind::DimDv => {
                mutual_info::donsker_varadhan(score_matrix(self.score, q, k, t, bilinear)?, map)
            }
            LossKind::Pair | LossKind::Triplet => {
                if dq != dk {
                    return Err(Error::Invalid(format!(
                        "queries have {dq} dimensions but keys have {dk}"
                    )));
                }
                if self.selective {
                    let s = score_matrix(Score::Cosine, q, k, 1.0, None)?;
                    return margin::selective_triplet(s, map, self.mining, t);
                }
                let (q, k) = if self.normalize {
                    (l2_normalise(q), l2_normalise(k))
                } else {
                    (q, k)
                };
                let d = distances(q, k);
                match self.kind {
                    LossKind::Pair => margin::pair(d, map, self.margin),
                    _ => {
                        let m = (!self.soft_margin).then_some(self.margin);
                        margin::triplet(d, map, m, self.mining)
                    }
                }
            }
            LossKind::Byol => regression::byol(q, k, map),
            LossKind::NegCosine => regression::negative_cosine(q, k, map),
            LossKind::Dino => dino::dino(
                q,
                k,
                map,
                &mut state.dino_center,
                t,
                self.dino.teacher_temperature,
                self.dino.center_momentum,
            ),
            LossKind::BarlowTwins => regression::barlow_twins(q, k, map, self.lambda),
            LossKind::Vicreg => regression::vicreg(q, k, map, &self.vicreg),
            LossKind::Swav => Err(Error::Invalid(
                "swav scores crops against prototypes: call loss::swav::swav on them (the \
                 trainer does, under joint pairing with head.prototypes > 0)"
                    .into(),
            )),
            LossKind::AlignUniform => {
                let align = geometry::alignment(q.clone(), k.clone(), map, 2.0)?;
                let uniform = geometry::uniformity(q, 2.0)?
                    .add(geometry::uniformity(k, 2.0)?)
                    .div_scalar(2.0);
                Ok(align + uniform.mul_scalar(self.weight))
            }
        }
    }
}

/// A loss whose settings were checked when it was built ([`LossConfig::build`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Loss {
    cfg: LossConfig,
}

impl Loss {
    /// The settings it was built from.
    pub fn config(&self) -> &LossConfig {
        &self.cfg
    }

    /// The loss of queries `q` against keys `k` under `map`, with the parameters it
    /// learns in `params` ([`LossParams::new`]); values it holds across steps are read
    /// from `state`, and set there from this batch when they are not yet.
    pub fn compute_with(
        &self,
        q: Tensor<2>,
        k: Tensor<2>,
        map: &PositiveMap,
        params: &LossParams,
        state: &mut LossState,
    ) -> Result<Tensor<1>> {
        self.cfg
            .compute_checked(q, k, map, params.critic.as_ref(), state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The curriculum of hard negatives: 0 at the first step, `beta` at the last, through
    /// the middle linearly or on half a cosine; a constant `beta` throughout.
    #[test]
    fn beta_follows_its_schedule() {
        let cfg = |schedule| LossConfig {
            kind: LossKind::Debiased,
            beta: 2.0,
            beta_schedule: schedule,
            ..LossConfig::default()
        };
        let at = |s, step| cfg(s).at_step(0, step, 11).beta;
        assert_eq!(
            [
                at(BetaSchedule::Linear, 0),
                at(BetaSchedule::Linear, 5),
                at(BetaSchedule::Linear, 10)
            ],
            [0.0, 1.0, 2.0]
        );
        assert!((at(BetaSchedule::Cosine, 5) - 1.0).abs() < 1e-12);
        assert!(at(BetaSchedule::Cosine, 2) < at(BetaSchedule::Linear, 2));
        assert_eq!(at(BetaSchedule::Constant, 0), 2.0);
        assert_eq!(
            cfg(BetaSchedule::Linear).at_step(0, 3, 11).beta_schedule,
            BetaSchedule::Constant
        );
    }
}
