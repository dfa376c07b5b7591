//! The run configuration: a TOML file, `--set a.b=c` overrides, and validation that
//! names the key, the value and what is allowed.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::data::config::{DataConfig, PerChannel};
use crate::encoder::{EncoderConfig, EncoderKind};
use crate::error::{kind_name, Error, Result};
pub use crate::eval::config::EvalConfig;
use crate::head::{ContextKind, HeadConfig, HeadKind};
use crate::keys::config::{KeyEncoderKind, KeySourceKind, KeysConfig, Pairing};
use crate::loss::LossConfig;
use crate::pairs::Relation;
pub use crate::train::config::{OptimConfig, OptimKind, Schedule, TrainConfig};
pub use crate::views::config::{ViewsConfig, ViewsKind};

/// A whole run: the four parts of a contrastive method plus data, optimiser and training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data: DataConfig,
    pub views: ViewsConfig,
    pub encoder: EncoderConfig,
    pub head: HeadConfig,
    pub keys: KeysConfig,
    pub loss: LossConfig,
    pub optim: OptimConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
}

impl Config {
    /// Reads `path` and applies `overrides` (`a.b=c`, the value in TOML syntax or a bare
    /// string), then validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path, overrides)
    }

    /// Parses TOML `text` (named `path` in errors) with `overrides`.
    ///
    /// ```
    /// use contrastive::config::{Config, OptimKind};
    /// let text = "[loss]\nkind = \"vicreg\"\n[optim]\nkind = \"lars\"\n";
    /// let cfg = Config::parse(text, "my.toml".as_ref(), &["train.epochs=3".into()])?;
    /// assert_eq!((cfg.optim.kind, cfg.train.epochs), (OptimKind::Lars, 3));
    /// // a misspelt kind names the key, the value and what is allowed
    /// let e = Config::parse("[optim]\nkind = \"lamb\"\n", "my.toml".as_ref(), &[]).unwrap_err();
    /// assert_eq!(e.to_string(), "config key `optim.kind` = lamb: expected sgd, lars, adam, adamw");
    /// # Ok::<(), contrastive::Error>(())
    /// ```
    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            msg: one_line(&e.to_string()),
        })?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let cfg: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let msg = one_line(&e.inner().to_string());
                match unknown_variant(&msg) {
                    Some((value, allowed)) => Error::config(key, value, allowed),
                    None => Error::ConfigFile {
                        path: path.to_path_buf(),
                        msg: format!("key `{key}`: {msg}"),
                    },
                }
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks each section, then the rules that join sections.
    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        self.views.validate()?;
        self.encoder.validate()?;
        self.head.validate()?;
        self.keys.validate()?;
        self.loss.validate()?;
        self.loss.validate_read()?;
        self.optim.validate()?;
        self.train.validate()?;
        self.eval.validate()?;
        if self.data.streamed() && self.views.kind != crate::views::config::ViewsKind::Transform {
            return Err(Error::config(
                "views.kind",
                format!("{:?}", self.views.kind).to_lowercase(),
                "\"transform\" for streamed images (data.dataset = \"images\"): senses and windows read data held in memory",
            ));
        }
        let stage = self.eval.stage;
        if stage > 0
            && (self.eval.layer != crate::eval::config::Layer::H
                || self.encoder.stage_output(stage).is_none())
        {
            return Err(Error::config(
                "eval.stage",
                stage,
                "0, or with eval.layer = \"h\" a stage of the encoder (1-based; convnet, conv1d and resnet encoders)",
            ));
        }
        self.validate_views()?;
        self.validate_prototypes()?;
        self.validate_batches()
    }

    /// The similarity distribution's fit with the encoders and the pairing.
    fn validate_views(&self) -> Result<()> {
        let v = &self.views;
        // Each sense's encoder must see a loss: joint pairing reads every view, cross
        // pairing without a bank only views 0 and 1, context pairing only view 0's encoder.
        let read = match self.keys.pairing {
            Pairing::Joint => true,
            Pairing::Cross => v.modalities.len() <= 2 || self.keys.source == KeySourceKind::Bank,
            _ => false,
        };
        if self.encoder.per_view
            && (v.kind != ViewsKind::Modalities
                || self.keys.encoder != KeyEncoderKind::Shared
                || !read)
        {
            return Err(Error::config(
                "encoder.per_view",
                true,
                "false unless views.kind = \"modalities\", keys.encoder = \"shared\" and every sense reaches the loss (joint pairing, or cross pairing of two senses)",
            ));
        }
        if self.keys.pairing == Pairing::Predictive
            && (v.kind != ViewsKind::Windows
                || v.stride == 0
                || v.n < 2
                || self.head.context.kind == ContextKind::None)
        {
            return Err(Error::config(
                "keys.pairing",
                "predictive",
                "views.kind = \"windows\" with stride >= 1, n >= 2 and a head.context",
            ));
        }
        if self.encoder.kind == EncoderKind::Vit && self.views.local_crops > 0 {
            self.encoder
                .vit
                .fits("views.local_size", self.views.local_size)?;
        }
        if self.keys.pairing == Pairing::Context
            && matches!(self.encoder.kind, EncoderKind::Mlp | EncoderKind::Vit)
        {
            return Err(Error::config(
                "keys.pairing",
                "context",
                "an encoder with a feature map (convnet, conv1d, resnet*)",
            ));
        }
        let local = self.keys.local_stage;
        if local > 0 {
            if self.keys.pairing != Pairing::Context || self.encoder.stage_output(local).is_none() {
                return Err(Error::config(
                    "keys.local_stage",
                    local,
                    "0, or with keys.pairing = \"context\" a stage of the encoder (1-based)",
                ));
            }
            if self.head.kind == HeadKind::Identity {
                return Err(Error::config(
                    "head.kind",
                    "identity",
                    "linear or mlp: keys.local_stage embeds the local features by their own head",
                ));
            }
        }
        let min_views = if self.keys.source == KeySourceKind::Bank
            || self.keys.pairing == Pairing::Context
            || self.views.kind != ViewsKind::Transform
        {
            1
        } else {
            2
        };
        if self.views.n < min_views && self.views.per_view.is_empty() {
            return Err(Error::config("views.n", self.views.n, "at least 2 views"));
        }
        self.views
            .validate_local(self.keys.pairing, self.encoder.kind)
    }

    /// Prototypes are read by SwAV under joint pairing and by DINO under multi-crop
    /// pairing; DINO's centre moves once per step, so it needs the one loss call of
    /// multi-crop pairing.
    fn validate_prototypes(&self) -> Result<()> {
        use crate::loss::LossKind;
        let kind = self.loss.kind;
        let k = self.head.prototypes;
        if kind == LossKind::Swav && k < 2 {
            return Err(Error::config(
                "head.prototypes",
                k,
                "at least 2 with loss.kind = \"swav\"",
            ));
        }
        if !matches!(kind, LossKind::Swav | LossKind::Dino) && k > 0 {
            return Err(Error::config(
                "head.prototypes",
                k,
                "0 unless loss.kind = \"swav\" or \"dino\"",
            ));
        }
        let needs = match kind {
            LossKind::Swav => Some((
                Pairing::Joint,
                "joint with loss.kind = \"swav\" (every crop in one forward pass)",
            )),
            LossKind::Dino => Some((
                Pairing::MultiCrop,
                "multi-crop with loss.kind = \"dino\" (one loss, and one centre update, per step)",
            )),
            _ => None,
        };
        if kind == LossKind::ProtoNce
            && (self.views.relation == crate::pairs::Relation::Cluster
                || self.views.recluster_every == 0)
        {
            return Err(Error::config(
                "views.relation",
                kind_name(&self.views.relation),
                "an instance relation with views.recluster_every >= 1 for loss.kind = \"proto-nce\" (its prototypes come from loss.proto.clusters)",
            ));
        }
        let needs = needs.or((kind == LossKind::ProtoNce).then_some((
            Pairing::Joint,
            "joint with loss.kind = \"proto-nce\" (the prototypes score every row of the batch)",
        )));
        if let Some((_, why)) = needs.filter(|(p, _)| *p != self.keys.pairing) {
            return Err(Error::config(
                "keys.pairing",
                kind_name(&self.keys.pairing),
                why,
            ));
        }
        Ok(())
    }

    /// P x K batches against the key states that need every sample once per epoch.
    fn validate_batches(&self) -> Result<()> {
        let p = self.train.classes_per_batch;
        if p == 0 {
            return Ok(());
        }
        let once = [
            (
                self.keys.source == KeySourceKind::Bank,
                "keys.source = \"bank\"",
            ),
            (
                self.views.relation == Relation::Cluster,
                "views.relation = \"cluster\"",
            ),
            (self.keys.neighbours, "keys.neighbours = true"),
        ];
        match once.iter().find(|(on, _)| *on) {
            Some((_, what)) => Err(Error::config(
                "train.classes_per_batch",
                p,
                format!("0 with {what}, whose state needs every sample once per epoch"),
            )),
            None => Ok(()),
        }
    }

    /// The learning rate at the start of the schedule.
    pub fn base_lr(&self) -> f64 {
        if self.optim.scale_lr {
            self.optim.lr * self.train.batch_size as f64 / 256.0
        } else {
            self.optim.lr
        }
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not serialise: {e}\n"))
    }
}

/// The most parts a `--set` key may have: the deepest key of a config has four, and each
/// part nests a table (60,000 of them overflowed the stack when serialised).
const MAX_KEY_PARTS: usize = 8;

/// The first key (dotted, in sorted order) whose value differs between `a` and `b`, with
/// both values as TOML (`(absent)` where a table lacks the key).
pub fn first_difference(a: &toml::Table, b: &toml::Table) -> Option<(String, String, String)> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&toml::Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
    for k in keys {
        let (x, y) = (a.get(k), b.get(k));
        if x == y {
            continue;
        }
        if let (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) = (x, y) {
            if let Some((sub, old, new)) = first_difference(x, y) {
                return Some((format!("{k}.{sub}"), old, new));
            }
            continue;
        }
        return Some((k.clone(), show(x), show(y)));
    }
    None
}

/// Sets `a.b.c=value` in `table`; the value is parsed as TOML, else taken as a string.
fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(Error::config(
            "--set",
            assignment,
            "key=value, e.g. train.epochs=3",
        ));
    };
    let key = key.trim();
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) || parts.len() > MAX_KEY_PARTS {
        return Err(Error::config(
            "--set",
            one_line(&assignment.chars().take(80).collect::<String>()),
            format!("a dotted key such as train.epochs, of at most {MAX_KEY_PARTS} parts"),
        ));
    }
    let mut t = table;
    for p in &parts[..parts.len() - 1] {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| Error::config(key, raw, format!("`{p}` to be a table")))?;
    }
    t.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// The value and the allowed names of serde's "unknown variant `x`, expected one of `a`,
/// `b`" (or "expected `a` or `b`"), so that a misspelt kind reads like every other bad
/// value: `config key `k` = x: expected a, b`.
fn unknown_variant(msg: &str) -> Option<(String, String)> {
    let rest = msg.strip_prefix("unknown variant `")?;
    let (value, rest) = rest.split_once('`')?;
    let allowed = rest.split_once("expected")?.1;
    // `a`, `b` or `c`: names while the text between them is a list's separator (toml
    // appends the key after the list, which the caller names itself)
    let parts: Vec<&str> = allowed.split('`').collect();
    let mut names = Vec::new();
    for (i, name) in parts.iter().enumerate().skip(1).step_by(2) {
        names.push(*name);
        if !matches!(
            parts.get(i + 1),
            Some(&", ") | Some(&" or ") | Some(&", or ")
        ) {
            break;
        }
    }
    Some((value.to_string(), names.join(", ")))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_is_named_with_both_values() {
        let a: toml::Table = "[optim]\nlr = 0.06\nkind = \"sgd\"\n[train]\nseed = 0\n"
            .parse()
            .unwrap();
        let b: toml::Table = "[optim]\nlr = 0.1\nkind = \"sgd\"\n[train]\nseed = 1\n"
            .parse()
            .unwrap();
        assert_eq!(
            first_difference(&a, &b),
            Some(("optim.lr".into(), "0.06".into(), "0.1".into()))
        );
        assert_eq!(first_difference(&a, &a), None);
    }

    /// Issue 18, item 12: values that were accepted and gave silently wrong results.
    #[test]
    fn non_finite_means_and_probe_rates_are_refused() {
        for (set, key) in [
            ("data.mean=nan", "data.mean"),
            ("data.mean=[0.1, inf, 0.2]", "data.mean"),
            ("eval.linear_lr=0", "eval.linear_lr"),
            ("eval.linear_lr=nan", "eval.linear_lr"),
            ("eval.linear_lr=-1", "eval.linear_lr"),
        ] {
            let e = Config::parse("", Path::new("x.toml"), &[set.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
    }

    /// Issue 18, item 10: a key of 60,000 dotted parts overflowed the stack.
    #[test]
    fn a_key_of_too_many_parts_is_refused() {
        let key = vec!["a"; 60_000].join(".");
        let e = Config::parse("", Path::new("x.toml"), &[format!("{key}=1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 8 parts") && e.len() < 300, "{e}");
    }

    #[test]
    fn override_sets_nested_and_typed_values() {
        let c = Config::parse(
            "",
            Path::new("x.toml"),
            &["train.epochs=3".into(), "data.dataset=mnist".into()],
        )
        .unwrap();
        assert_eq!(c.train.epochs, 3);
        assert_eq!(c.data.dataset, "mnist");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[train]\nepoch = 3\n", Path::new("x.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml") && e.contains("train.epoch") && e.contains("epochs"),
            "{e}"
        );
    }

    #[test]
    fn invalid_value_names_key_value_and_range() {
        let e = Config::parse("", Path::new("x.toml"), &["loss.temperature=0".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config key `loss.temperature` = 0: expected a finite value > 0"
        );
    }

    #[test]
    fn a_loss_setting_its_kind_does_not_read_is_refused() {
        let e = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            Config::parse("", Path::new("x.toml"), &sets).map_err(|e| e.to_string())
        };
        assert_eq!(
            e(&["loss.margin=0.3"]).unwrap_err(),
            "config key `loss.margin` = 0.3: expected its default: loss.kind = \"nt-xent\" \
             does not read it"
        );
        assert_eq!(
            e(&["loss.kind=\"vicreg\"", "loss.swav.epsilon=0.1"]).unwrap_err(),
            "config key `loss.swav.epsilon` = 0.1: expected its default: loss.kind = \
             \"vicreg\" does not read it"
        );
        assert!(e(&["loss.kind=\"triplet\"", "loss.margin=0.3"]).is_ok());
        assert!(e(&["loss.kind=\"nt-xent\"", "loss.temperature=0.3"]).is_ok());
    }

    /// The new methods' parts refuse the combinations they cannot honour, naming the key.
    #[test]
    fn new_method_parts_refuse_what_they_cannot_honour() {
        let err = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            Config::parse("", Path::new("x.toml"), &sets)
                .unwrap_err()
                .to_string()
        };
        let dino = ["loss.kind=\"dino\"", "head.prototypes=16"];
        assert!(err(&dino).contains("`keys.pairing` = joint: expected multi-crop"));
        let e = err(&["loss.kind=\"proto-nce\"", "views.relation=\"cluster\""]);
        assert!(e.contains("`views.relation` = cluster"), "{e}");
        let e = err(&["loss.kind=\"proto-nce\"", "loss.proto.clusters=[]"]);
        assert!(e.contains("`loss.proto.clusters`"), "{e}");
        let e = err(&["keys.pairing=\"multi-crop\"", "keys.source=\"queue\""]);
        assert!(e.contains("`keys.pairing` = multi-crop"), "{e}");
        let vit = [
            "encoder.kind=\"vit\"",
            "views.local_crops=2",
            "views.local_size=10",
        ];
        let e = err(&[&vit[..], &["keys.pairing=\"multi-crop\""]].concat());
        assert!(
            e.contains("`views.local_size` = 10: expected a multiple of encoder.vit.patch = 4"),
            "{e}"
        );
        let e = err(&["encoder.kind=\"vit\"", "encoder.vit.heads=3"]);
        assert!(
            e.contains("`encoder.vit.heads` = 3: expected a divisor of encoder.vit.dim = 128"),
            "{e}"
        );
        let e = err(&["optim.kind=\"lars\"", "optim.exclude_bias_norm=true"]);
        assert!(e.contains("`optim.exclude_bias_norm` = true"), "{e}");
        let e = err(&["eval.online_probe_lr=0"]);
        assert!(e.contains("`eval.online_probe_lr` = 0"), "{e}");
        let e = err(&[
            "loss.kind=\"dino\"",
            "loss.dino.center_momentum=2",
            "keys.pairing=\"multi-crop\"",
        ]);
        assert!(e.contains("`loss.dino.center_momentum` = 2"), "{e}");
    }

    #[test]
    fn lars_fields_are_checked() {
        let err = |set: &str| {
            Config::parse("", Path::new("x.toml"), &[set.into()])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("optim.kind=lamb"),
            "config key `optim.kind` = lamb: expected sgd, lars, adam, adamw"
        );
        assert_eq!(
            err("optim.trust_coefficient=0"),
            "config key `optim.trust_coefficient` = 0: expected a finite value > 0"
        );
        assert_eq!(
            err("optim.bias_lr_scale=-1"),
            "config key `optim.bias_lr_scale` = -1: expected a finite value > 0"
        );
        let sets = ["optim.kind=lars", "optim.bias_lr_scale=0.024"].map(String::from);
        assert!(Config::parse("", Path::new("x.toml"), &sets).is_ok());
    }

    #[test]
    fn local_stage_needs_context_pairing_a_stage_and_a_head() {
        let err = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            Config::parse("[views]\nn = 1\n", Path::new("x"), &sets)
                .unwrap_err()
                .to_string()
        };
        let stage = "config key `keys.local_stage` =";
        assert!(err(&["keys.local_stage=2"]).starts_with(stage));
        let context = "keys.pairing=context";
        assert!(err(&[context, "keys.local_stage=5"]).starts_with(stage));
        assert!(err(&[context, "keys.local_stage=2", "head.kind=identity"])
            .starts_with("config key `head.kind` = identity"));
        let ok = ["keys.pairing=context", "keys.local_stage=4"].map(String::from);
        assert!(Config::parse("[views]\nn = 1\n", Path::new("x"), &ok).is_ok());
    }

    #[test]
    fn classes_per_batch_divides_the_batch_and_needs_no_once_per_epoch_state() {
        let parse = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            Config::parse("[train]\nbatch_size = 32\n", Path::new("x"), &sets)
        };
        let err = |sets: &[&str]| parse(sets).unwrap_err().to_string();
        let key = "config key `train.classes_per_batch` =";
        for p in ["1", "3"] {
            let e = err(&[&format!("train.classes_per_batch={p}")]);
            assert!(e.starts_with(&format!("{key} {p}: expected 0 (shuffled batches), or at least 2 and a divisor of train.batch_size = 32")), "{e}");
        }
        for (sets, what) in [
            (&["keys.source=bank"][..], "keys.source = \"bank\""),
            (&["views.relation=cluster"], "views.relation = \"cluster\""),
            (
                &["keys.neighbours=true", "keys.pairing=cross"],
                "keys.neighbours = true",
            ),
        ] {
            let e = err(&[&["train.classes_per_batch=4"], sets].concat());
            assert!(
                e.starts_with(&format!("{key} 4: expected 0 with {what}")),
                "{e}"
            );
        }
        assert!(parse(&["train.classes_per_batch=4"]).is_ok());
    }

    #[test]
    fn per_view_encoders_need_modalities_and_a_shared_key_encoder() {
        let modal = "[views]\nkind = \"modalities\"\nmodalities = [[0], [1]]\n[keys]\npairing = \"cross\"\n";
        let parse = |text: &str, sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            Config::parse(text, Path::new("x"), &sets)
        };
        let want = "config key `encoder.per_view` = true: expected false unless views.kind = \"modalities\", keys.encoder = \"shared\" and every sense reaches the loss (joint pairing, or cross pairing of two senses)";
        let e = parse("", &["encoder.per_view=true"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, want);
        let e = parse(modal, &["encoder.per_view=true", "keys.encoder=momentum"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, want);
        let three = ["encoder.per_view=true", "views.modalities=[[0], [1], [0]]"];
        assert_eq!(parse(modal, &three).unwrap_err().to_string(), want);
        let e = parse(modal, &["encoder.per_view=true", "keys.pairing=context"]).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert!(parse(modal, &[&three[..], &["keys.pairing=joint"]].concat()).is_ok());
        assert!(parse(modal, &["encoder.per_view=true"]).is_ok());
    }

    #[test]
    fn scalar_or_list_per_channel() {
        let c = Config::parse("[data]\nmean = [0.1, 0.2, 0.3]\n", Path::new("x"), &[]).unwrap();
        assert_eq!(
            c.data.mean.expand("data.mean", 3).unwrap(),
            vec![0.1, 0.2, 0.3]
        );
        assert!(c.data.mean.expand("data.mean", 1).is_err());
    }
}
