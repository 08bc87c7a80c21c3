//! The method registry: editors by name (`ft`, `mend`, `malmen`, `malmen2`, `rledit`,
//! `rledit2`, `ultraedit`, `ultraedit2`, `emsedit`), optional overrides (K, the ablation
//! switches, the hypernetwork's scale), the default edited modules of each architecture, and
//! one function that builds a ready [`Editor`] for a scenario.
//!
//! ```
//! use emsedit::methods::{MethodSpec, Mode};
//! use emsedit::ScenarioConfig;
//!
//! let mut spec: MethodSpec = "MALMEN2".parse()?;
//! spec.overrides.rank = Some(8);
//! let modules = vec!["transformer.h.2.mlp.c_proj".to_string()];
//! let config = spec.config(modules, &ScenarioConfig::batch(8))?;
//! assert_eq!(config.name(), "MALMEN2");
//! assert_eq!(Mode::of(&ScenarioConfig::sequential(1, 4)), Mode::Sequential);
//! # Ok::<(), emsedit::methods::MethodError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::Backend;
use emsedit_eval::scenario::ScenarioConfig;
use emsedit_llm::{CausalLm, ModelConfig};
use emsedit_meta::{
    Editor, Ft, FtConfig, HyperEditor, HyperEditorConfig, Layout, Locality, UltraEdit,
    UltraEditConfig,
};
use serde::{Deserialize, Serialize};

/// The names [`MethodSpec::parse`] accepts, for messages.
pub const VALID: &str = "ft, mend, malmen, malmen2, rledit, rledit2, ultraedit, ultraedit2, \
                         emsedit (malmen, rledit and ultraedit also take another K as a suffix, \
                         e.g. malmen3)";

/// Errors of the registry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MethodError {
    /// A name that is not in the registry.
    #[error("unknown method `{name}`: expected one of {valid}")]
    Unknown {
        /// The name as given.
        name: String,
        /// The valid names ([`VALID`]).
        valid: &'static str,
    },
    /// An override the method does not have (FT has no hypernetwork, ...).
    #[error("method `{method}` has no setting `{setting}`")]
    NotApplicable {
        /// The method's name.
        method: String,
        /// The override's name.
        setting: &'static str,
    },
    /// An override with a value that cannot work.
    #[error("method `{method}`: {detail}")]
    Invalid {
        /// The method's name.
        method: String,
        /// What is wrong.
        detail: String,
    },
}

/// The editor families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodKind {
    /// Fine-tuning of the edited modules (EasyEdit FT-L).
    Ft,
    /// MEND as the reference runs it.
    Mend,
    /// MALMEN (K = 1) and MALMEN2 (K = 2).
    Malmen,
    /// RLEdit (K = 1) and RLEdit2 (K = 2).
    Rledit,
    /// The training-free UltraEdit (K = 1) and UltraEdit2 (K = 2).
    UltraEdit,
    /// EMSEdit (K = 2; the batch or the sequential layout by scenario).
    EmsEdit,
}

impl MethodKind {
    /// Every kind, in registry order.
    pub const ALL: [MethodKind; 6] = [
        Self::Ft,
        Self::Mend,
        Self::Malmen,
        Self::Rledit,
        Self::UltraEdit,
        Self::EmsEdit,
    ];

    /// The lower-case base name (`malmen`).
    pub fn base_name(self) -> &'static str {
        match self {
            Self::Ft => "ft",
            Self::Mend => "mend",
            Self::Malmen => "malmen",
            Self::Rledit => "rledit",
            Self::UltraEdit => "ultraedit",
            Self::EmsEdit => "emsedit",
        }
    }

    /// Whether the method trains a hypernetwork (and so takes rank, blocks, meta_lr and the
    /// layout switches).
    pub fn has_hypernet(self) -> bool {
        matches!(
            self,
            Self::Mend | Self::Malmen | Self::Rledit | Self::EmsEdit
        )
    }

    /// The number of back-propagation steps K of the plain name.
    pub fn default_steps(self) -> usize {
        match self {
            Self::EmsEdit => 2,
            _ => 1,
        }
    }

    fn takes_suffix(self) -> bool {
        matches!(self, Self::Malmen | Self::Rledit | Self::UltraEdit)
    }
}

/// The hypernetwork layout, as written in configuration files (`shared`, `step-specific`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutChoice {
    /// One network shared by all steps ([`Layout::Shared`]).
    Shared,
    /// One network per step ([`Layout::StepSpecific`]).
    #[serde(alias = "step_specific", alias = "stepspecific")]
    StepSpecific,
}

impl From<LayoutChoice> for Layout {
    fn from(c: LayoutChoice) -> Self {
        match c {
            LayoutChoice::Shared => Layout::Shared,
            LayoutChoice::StepSpecific => Layout::StepSpecific,
        }
    }
}

/// Optional changes to a method's preset: K, the ablation switches and the hypernetwork's
/// scale. `None` keeps the preset's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Back-propagation steps K.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Shared or step-specific networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<LayoutChoice>,
    /// Step k's rank is ⌊r/(k+1)⌋ (step-specific networks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank_decay: Option<bool>,
    /// Update a shared network after every step (EMSEdit's step-wise updating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stepwise_update: Option<bool>,
    /// Reproduce the reference implementation's quirks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_quirks: Option<bool>,
    /// Hypernetwork rank r.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Hypernetwork blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<usize>,
    /// Adam learning rate of the hypernetworks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_lr: Option<f64>,
    /// The initial (hypernetworks) or constant (UltraEdit) step size η.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// FT's Adam learning rate (default EasyEdit FT-L's 5e-4); FT only, so that the scale's
    /// `lr` does not reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ft_lr: Option<f64>,
    /// EMSEdit's L2 penalty weight ρ (default 0.5, the reference's); EMSEdit only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reg_coef: Option<f64>,
}

impl Overrides {
    /// The CPU scale for small models (the embedded default): spec §8's rank 128 and 2 blocks,
    /// with the initial step size η raised from 1e-6 to 1e-2 and the meta learning rate from
    /// 1e-5 to 1e-3. With the paper's values every hypernetwork editor (and UltraEdit, whose
    /// constant step is `lr`) leaves a 128-wide model's predictions unchanged (measured:
    /// 0.0 efficacy), and the one or two Adam steps of a short training stream move η by 1e-5.
    /// Results at this scale are in docs/results.md.
    pub fn cpu_scale() -> Self {
        Self {
            rank: Some(128),
            blocks: Some(2),
            lr: Some(1e-2),
            meta_lr: Some(1e-3),
            ..Self::default()
        }
    }

    /// These overrides less the settings `kind` has no use for (FT takes only `ft_lr`;
    /// UltraEdit only K, the quirks switch and its step size).
    pub fn for_kind(&self, kind: MethodKind) -> Self {
        match kind {
            MethodKind::Ft => Self {
                ft_lr: self.ft_lr,
                ..Self::default()
            },
            MethodKind::UltraEdit => Self {
                steps: self.steps,
                reference_quirks: self.reference_quirks,
                lr: self.lr,
                ..Self::default()
            },
            _ => self.clone(),
        }
    }

    /// The settings that are set, by name.
    pub fn set_names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut add = |set: bool, name| {
            if set {
                out.push(name);
            }
        };
        add(self.steps.is_some(), "steps");
        add(self.layout.is_some(), "layout");
        add(self.rank_decay.is_some(), "rank_decay");
        add(self.stepwise_update.is_some(), "stepwise_update");
        add(self.reference_quirks.is_some(), "reference_quirks");
        add(self.rank.is_some(), "rank");
        add(self.blocks.is_some(), "blocks");
        add(self.meta_lr.is_some(), "meta_lr");
        add(self.lr.is_some(), "lr");
        add(self.ft_lr.is_some(), "ft_lr");
        add(self.reg_coef.is_some(), "reg_coef");
        out
    }

    /// `self` with the settings of `other` that are set laid over it.
    pub fn merged(&self, other: &Overrides) -> Overrides {
        Overrides {
            steps: other.steps.or(self.steps),
            layout: other.layout.or(self.layout),
            rank_decay: other.rank_decay.or(self.rank_decay),
            stepwise_update: other.stepwise_update.or(self.stepwise_update),
            reference_quirks: other.reference_quirks.or(self.reference_quirks),
            rank: other.rank.or(self.rank),
            blocks: other.blocks.or(self.blocks),
            meta_lr: other.meta_lr.or(self.meta_lr),
            lr: other.lr.or(self.lr),
            ft_lr: other.ft_lr.or(self.ft_lr),
            reg_coef: other.reg_coef.or(self.reg_coef),
        }
    }
}

/// Whether a scenario edits in one batch or a stream of batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One edit batch (`num_seq == 1`).
    Batch,
    /// Several edit batches applied one after another.
    Sequential,
}

impl Mode {
    /// Batch when the scenario has one edit batch, sequential otherwise.
    pub fn of(scenario: &ScenarioConfig) -> Self {
        if scenario.num_seq == 1 {
            Self::Batch
        } else {
            Self::Sequential
        }
    }
}

/// A method as named, with its overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodSpec {
    /// The family.
    pub kind: MethodKind,
    /// K as given by the name (`malmen2` → 2), before [`Overrides::steps`].
    pub named_steps: usize,
    /// Changes to the preset.
    #[serde(default)]
    pub overrides: Overrides,
}

impl MethodSpec {
    /// Parses a registry name, case-insensitively (`ft`, `MALMEN2`, `EMSEdit`, ...).
    pub fn parse(name: &str) -> Result<Self, MethodError> {
        let unknown = || MethodError::Unknown {
            name: name.to_string(),
            valid: VALID,
        };
        let lower = name.trim().to_ascii_lowercase();
        let digits = lower.trim_end_matches(|c: char| c.is_ascii_digit());
        let kind = MethodKind::ALL
            .into_iter()
            .find(|k| k.base_name() == digits)
            .ok_or_else(unknown)?;
        let named_steps = if digits.len() == lower.len() {
            kind.default_steps()
        } else {
            if !kind.takes_suffix() {
                return Err(unknown());
            }
            match lower[digits.len()..].parse::<usize>() {
                Ok(k) if k >= 1 => k,
                _ => return Err(unknown()),
            }
        };
        Ok(Self {
            kind,
            named_steps,
            overrides: Overrides::default(),
        })
    }

    /// K after overrides.
    pub fn steps(&self) -> usize {
        self.overrides.steps.unwrap_or(self.named_steps)
    }

    /// The canonical lower-case name (`malmen2`; K overrides are not part of it).
    pub fn name(&self) -> String {
        if self.kind.takes_suffix() && self.named_steps != 1 {
            format!("{}{}", self.kind.base_name(), self.named_steps)
        } else {
            self.kind.base_name().to_string()
        }
    }

    /// The name in reports: `FT`, `MALMEN2`, `RLEdit3`, `UltraEdit2`, `EMSEdit`, and
    /// `EMSEdit (K=3)` when K differs from EMSEdit's 2.
    pub fn display_name(&self) -> String {
        let k = self.steps();
        let suffixed = |base: &str| {
            if k == 1 {
                base.to_string()
            } else {
                format!("{base}{k}")
            }
        };
        match self.kind {
            MethodKind::Ft => "FT".into(),
            MethodKind::Mend if k == 1 => "MEND".into(),
            MethodKind::Mend => format!("MEND (K={k})"),
            MethodKind::Malmen => suffixed("MALMEN"),
            MethodKind::Rledit => suffixed("RLEdit"),
            MethodKind::UltraEdit => suffixed("UltraEdit"),
            MethodKind::EmsEdit if k == 2 => "EMSEdit".into(),
            MethodKind::EmsEdit => format!("EMSEdit (K={k})"),
        }
    }

    /// Checks that every override applies to this method and has a usable value.
    pub fn check(&self) -> Result<(), MethodError> {
        let o = &self.overrides;
        const HYPER: [&str; 9] = [
            "steps",
            "layout",
            "rank_decay",
            "stepwise_update",
            "reference_quirks",
            "rank",
            "blocks",
            "meta_lr",
            "lr",
        ];
        let allowed: Vec<&str> = match self.kind {
            MethodKind::Ft => vec!["ft_lr"],
            MethodKind::UltraEdit => vec!["steps", "reference_quirks", "lr"],
            MethodKind::EmsEdit => [&HYPER[..], &["reg_coef"]].concat(),
            _ => HYPER.to_vec(),
        };
        // The scale settings ([`Overrides::cpu_scale`]) are accepted by every method, so that
        // one scale serves a whole comparison; methods without a hypernetwork ignore them.
        const SCALE: [&str; 4] = ["rank", "blocks", "meta_lr", "lr"];
        if let Some(setting) = o
            .set_names()
            .into_iter()
            .find(|s| !allowed.contains(s) && !SCALE.contains(s))
        {
            return Err(MethodError::NotApplicable {
                method: self.name(),
                setting,
            });
        }
        let invalid = |detail: &str| {
            Err(MethodError::Invalid {
                method: self.name(),
                detail: detail.to_string(),
            })
        };
        if o.steps == Some(0) {
            return invalid("steps must be at least 1");
        }
        if o.rank == Some(0) {
            return invalid("rank must be at least 1");
        }
        for (key, v, max) in [
            ("steps", o.steps, emsedit_meta::MAX_STEPS),
            ("rank", o.rank, emsedit_meta::MAX_RANK),
            ("blocks", o.blocks, emsedit_meta::MAX_BLOCKS),
        ] {
            if let Some(v) = v.filter(|&v| v > max) {
                return invalid(&format!("{key} = {v} is more than the maximum of {max}"));
            }
        }
        if o.meta_lr.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return invalid("meta_lr must be a positive number");
        }
        if o.lr.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return invalid("lr must be a positive number");
        }
        if o.ft_lr.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return invalid("ft_lr must be a positive number");
        }
        if o.reg_coef.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            return invalid("reg_coef must be a number ≥ 0");
        }
        Ok(())
    }

    /// The editor's full configuration for `modules` and `scenario`.
    ///
    /// EMSEdit takes [`HyperEditorConfig::emsedit_batch`] when the scenario has one edit batch
    /// and [`HyperEditorConfig::emsedit_sequential`] otherwise.
    pub fn config(
        &self,
        modules: Vec<String>,
        scenario: &ScenarioConfig,
    ) -> Result<EditorConfig, MethodError> {
        self.check()?;
        let o = &self.overrides.for_kind(self.kind);
        let k = self.steps();
        let hyper = |mut c: HyperEditorConfig| {
            c.name = self.display_name();
            c.steps = k;
            if let Some(layout) = o.layout {
                c.layout = layout.into();
            }
            if let Some(v) = o.rank_decay {
                c.rank_decay = v;
            }
            if let Some(v) = o.stepwise_update {
                c.stepwise_update = v;
            }
            if let Some(v) = o.reference_quirks {
                c.reference_quirks = v;
            }
            if let Some(v) = o.rank {
                c.hyper.rank = v;
            }
            if let Some(v) = o.blocks {
                c.hyper.blocks = v;
            }
            if let Some(v) = o.meta_lr {
                c.meta_lr = v;
            }
            if let Some(v) = o.lr {
                c.hyper.lr = v;
            }
            if let (Some(v), Locality::L2 { reg_coef }) = (o.reg_coef, &mut c.locality) {
                *reg_coef = v;
            }
            EditorConfig::Hyper(c)
        };
        Ok(match self.kind {
            MethodKind::Ft => {
                let mut c = FtConfig::new(modules);
                if let Some(v) = o.ft_lr {
                    c.lr = v;
                }
                EditorConfig::Ft(c)
            }
            MethodKind::UltraEdit => {
                let mut c = UltraEditConfig::new(modules);
                c.steps = k;
                if let Some(v) = o.reference_quirks {
                    c.reference_quirks = v;
                }
                if let Some(v) = o.lr {
                    c.lr = v;
                }
                EditorConfig::UltraEdit(c)
            }
            MethodKind::Mend => hyper(HyperEditorConfig::mend(modules)),
            MethodKind::Malmen => hyper(HyperEditorConfig::malmen(modules, k)),
            MethodKind::Rledit => hyper(HyperEditorConfig::rledit(modules, k)),
            MethodKind::EmsEdit => hyper(match Mode::of(scenario) {
                Mode::Batch => HyperEditorConfig::emsedit_batch(modules),
                Mode::Sequential => HyperEditorConfig::emsedit_sequential(modules),
            }),
        })
    }

    /// A fresh editor for `modules` and `scenario` (seed the backend first for reproducible
    /// hypernetwork initialization: [`crate::seed`]).
    pub fn build<B: Backend>(
        &self,
        modules: Vec<String>,
        scenario: &ScenarioConfig,
    ) -> Result<Box<dyn Editor<B>>, MethodError> {
        Ok(self.config(modules, scenario)?.build())
    }
}

impl FromStr for MethodSpec {
    type Err = MethodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for MethodSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_name())
    }
}

/// A resolved editor configuration, one variant per editor type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EditorConfig {
    /// [`Ft`].
    Ft(FtConfig),
    /// [`HyperEditor`] (EMSEdit, MALMEN, MEND, RLEdit).
    Hyper(HyperEditorConfig),
    /// [`UltraEdit`].
    UltraEdit(UltraEditConfig),
}

impl EditorConfig {
    /// The name the editor reports.
    pub fn name(&self) -> String {
        match self {
            Self::Ft(_) => "FT".into(),
            Self::Hyper(c) => c.name.clone(),
            Self::UltraEdit(c) if c.steps == 1 => "UltraEdit".into(),
            Self::UltraEdit(c) => format!("UltraEdit{}", c.steps),
        }
    }

    /// The edited modules.
    pub fn modules(&self) -> &[String] {
        match self {
            Self::Ft(c) => &c.modules,
            Self::Hyper(c) => &c.modules,
            Self::UltraEdit(c) => &c.modules,
        }
    }

    /// A fresh editor.
    pub fn build<B: Backend>(self) -> Box<dyn Editor<B>> {
        match self {
            Self::Ft(c) => Box::new(Ft::new(c)),
            Self::Hyper(c) => Box::new(HyperEditor::<B>::new(c)),
            Self::UltraEdit(c) => Box::new(UltraEdit::<B>::new(c)),
        }
    }
}

/// Builds the editor named `name` (see [`MethodSpec::parse`]) with `overrides`, on `modules`
/// for `scenario`.
pub fn build<B: Backend>(
    name: &str,
    overrides: &Overrides,
    modules: Vec<String>,
    scenario: &ScenarioConfig,
) -> Result<Box<dyn Editor<B>>, MethodError> {
    let mut spec = MethodSpec::parse(name)?;
    spec.overrides = overrides.clone();
    spec.build(modules, scenario)
}

/// Maps reference layer indices of a `reference` layer deep model onto a `depth` layer deep
/// one (rounded to the nearest layer, duplicates dropped, order kept).
fn scaled(layers: impl IntoIterator<Item = usize>, reference: usize, depth: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for l in layers {
        let mapped = ((2 * l * depth + reference) / (2 * reference)).min(depth.saturating_sub(1));
        if !out.contains(&mapped) {
            out.push(mapped);
        }
    }
    out
}

fn named(prefix: &str, layers: &[usize], slot: &str) -> Vec<String> {
    layers
        .iter()
        .map(|l| format!("{prefix}.{l}.{slot}"))
        .collect()
}

/// The default edited modules of a model config (spec §2.2, scaled to the model's depth as
/// in §8):
///
/// - GPT-2: `mlp.c_proj` of the upper half of the layers (GPT-2 small: layers 6–11); a
///   48-layer GPT-2-XL keeps the reference's layers 6–11;
/// - GPT-J: `mlp.fc_out` of the last 6 of 28 layers for batch editing, `mlp.fc_in` of the even
///   layers 10–26 of 28 for sequential editing;
/// - LLaMA: `mlp.gate_proj` of layers 11–15 of 32, then `mlp.up_proj` of layers 18–24;
/// - Gemma-2: `mlp.down_proj` of layers 32–40 of 42 for batch editing, `mlp.gate_proj` then
///   `mlp.up_proj` of the same layers for sequential editing.
///
/// Layer indices of other depths are the reference's scaled proportionally.
pub fn default_modules_for(config: &ModelConfig, mode: Mode) -> Vec<String> {
    match config {
        ModelConfig::Gpt2(c) => {
            let layers: Vec<usize> = if c.n_layer == 48 {
                (6..12).collect()
            } else {
                (c.n_layer / 2..c.n_layer).collect()
            };
            named("transformer.h", &layers, "mlp.c_proj")
        }
        ModelConfig::Gptj(c) => match mode {
            Mode::Batch => named(
                "transformer.h",
                &scaled(22..28, 28, c.n_layer),
                "mlp.fc_out",
            ),
            Mode::Sequential => named(
                "transformer.h",
                &scaled((10..27).step_by(2), 28, c.n_layer),
                "mlp.fc_in",
            ),
        },
        ModelConfig::Llama(c) => {
            let n = c.num_hidden_layers;
            let mut out = named("model.layers", &scaled(11..16, 32, n), "mlp.gate_proj");
            out.extend(named("model.layers", &scaled(18..25, 32, n), "mlp.up_proj"));
            out
        }
        ModelConfig::Gemma2(c) => {
            let layers = scaled(32..41, 42, c.num_hidden_layers);
            match mode {
                Mode::Batch => named("model.layers", &layers, "mlp.down_proj"),
                Mode::Sequential => {
                    let mut out = named("model.layers", &layers, "mlp.gate_proj");
                    out.extend(named("model.layers", &layers, "mlp.up_proj"));
                    out
                }
            }
        }
    }
}

/// [`default_modules_for`] of a loaded model.
pub fn default_modules<B: Backend>(lm: &CausalLm<B>, mode: Mode) -> Vec<String> {
    default_modules_for(lm.config(), mode)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{Cpu, cpu};

    #[test]
    fn names_parse_case_insensitively() {
        let cases = [
            ("ft", MethodKind::Ft, 1, "FT"),
            ("MEND", MethodKind::Mend, 1, "MEND"),
            ("Malmen", MethodKind::Malmen, 1, "MALMEN"),
            ("malmen2", MethodKind::Malmen, 2, "MALMEN2"),
            ("RLEdit", MethodKind::Rledit, 1, "RLEdit"),
            ("rledit2", MethodKind::Rledit, 2, "RLEdit2"),
            ("UltraEdit", MethodKind::UltraEdit, 1, "UltraEdit"),
            ("ultraedit2", MethodKind::UltraEdit, 2, "UltraEdit2"),
            (" EMSEdit ", MethodKind::EmsEdit, 2, "EMSEdit"),
            ("malmen3", MethodKind::Malmen, 3, "MALMEN3"),
        ];
        for (name, kind, k, display) in cases {
            let spec: MethodSpec = name.parse().unwrap();
            assert_eq!((spec.kind, spec.steps()), (kind, k), "{name}");
            assert_eq!(spec.display_name(), display, "{name}");
            assert_eq!(MethodSpec::parse(&spec.name()).unwrap(), spec, "{name}");
        }
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        for bad in [
            "", "rome", "emsedit2", "ft2", "malmen0", "malmen-2", "mend3",
        ] {
            let err = MethodSpec::parse(bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("`{bad}`")), "{msg}");
            assert!(msg.contains("malmen2") && msg.contains("emsedit"), "{msg}");
        }
    }

    fn modules() -> Vec<String> {
        vec!["transformer.h.2.mlp.c_proj".into()]
    }

    fn hyper(spec: &MethodSpec, scenario: &ScenarioConfig) -> HyperEditorConfig {
        match spec.config(modules(), scenario).unwrap() {
            EditorConfig::Hyper(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn emsedit_picks_its_layout_by_scenario() {
        let spec = MethodSpec::parse("emsedit").unwrap();
        let batch = hyper(&spec, &ScenarioConfig::batch(8));
        assert_eq!(
            batch,
            HyperEditorConfig::emsedit_batch(modules()),
            "the batch preset"
        );
        let seq = hyper(&spec, &ScenarioConfig::sequential(8, 4));
        assert_eq!(seq, HyperEditorConfig::emsedit_sequential(modules()));
    }

    #[test]
    fn presets_are_the_meta_crate_ones() {
        let batch = ScenarioConfig::batch(8);
        let parse = |n: &str| MethodSpec::parse(n).unwrap();
        assert_eq!(
            hyper(&parse("malmen2"), &batch),
            HyperEditorConfig::malmen(modules(), 2)
        );
        assert_eq!(
            hyper(&parse("rledit"), &batch),
            HyperEditorConfig::rledit(modules(), 1)
        );
        assert_eq!(
            hyper(&parse("mend"), &batch),
            HyperEditorConfig::mend(modules())
        );
        assert_eq!(
            parse("ft").config(modules(), &batch).unwrap(),
            EditorConfig::Ft(FtConfig::new(modules()))
        );
        let mut ultra = UltraEditConfig::new(modules());
        ultra.steps = 2;
        assert_eq!(
            parse("ultraedit2").config(modules(), &batch).unwrap(),
            EditorConfig::UltraEdit(ultra)
        );
    }

    #[test]
    fn overrides_apply_and_name_the_variant() {
        let mut spec = MethodSpec::parse("emsedit").unwrap();
        spec.overrides = Overrides {
            steps: Some(3),
            layout: Some(LayoutChoice::Shared),
            rank_decay: Some(false),
            stepwise_update: Some(false),
            reference_quirks: Some(true),
            rank: Some(16),
            blocks: Some(2),
            meta_lr: Some(1e-4),
            lr: Some(1e-3),
            ft_lr: None,
            reg_coef: Some(0.05),
        };
        let c = hyper(&spec, &ScenarioConfig::sequential(4, 2));
        assert_eq!(c.locality, Locality::L2 { reg_coef: 0.05 });
        assert_eq!(c.name, "EMSEdit (K=3)");
        assert_eq!(c.steps, 3);
        assert_eq!(c.layout, Layout::Shared);
        assert!(!c.rank_decay && !c.stepwise_update && c.reference_quirks);
        assert_eq!((c.hyper.rank, c.hyper.blocks), (16, 2));
        assert_eq!((c.meta_lr, c.hyper.lr), (1e-4, 1e-3));

        // FT takes its own learning rate and ignores the hypernetworks' η.
        let mut ft = MethodSpec::parse("ft").unwrap();
        ft.overrides.lr = Some(1e-2);
        let config = |spec: &MethodSpec| spec.config(vec!["m".into()], &ScenarioConfig::batch(4));
        match config(&ft).unwrap() {
            EditorConfig::Ft(c) => assert_eq!(c.lr, 5e-4),
            other => panic!("{other:?}"),
        }
        ft.overrides.ft_lr = Some(1e-3);
        match config(&ft).unwrap() {
            EditorConfig::Ft(c) => assert_eq!(c.lr, 1e-3),
            other => panic!("{other:?}"),
        }
        ft.overrides.ft_lr = Some(-1.0);
        assert!(config(&ft).is_err());
        spec.overrides.ft_lr = Some(1e-3);
        assert!(spec.check().is_err(), "ft_lr is FT's only");

        let mut malmen = MethodSpec::parse("malmen").unwrap();
        malmen.overrides.reg_coef = Some(0.1);
        assert!(malmen.check().is_err(), "reg_coef is EMSEdit's only");
        malmen.overrides.reg_coef = None;
        malmen.overrides.steps = Some(2);
        assert_eq!(malmen.display_name(), "MALMEN2");
        assert_eq!(hyper(&malmen, &ScenarioConfig::batch(4)).name, "MALMEN2");
    }

    #[test]
    fn inapplicable_or_bad_overrides_are_errors() {
        let mut ft = MethodSpec::parse("ft").unwrap();
        ft.overrides.steps = Some(2);
        let err = ft.check().unwrap_err();
        assert_eq!(
            err,
            MethodError::NotApplicable {
                method: "ft".into(),
                setting: "steps"
            }
        );
        ft.overrides.steps = None;
        ft.overrides.layout = Some(LayoutChoice::Shared);
        assert!(ft.check().unwrap_err().to_string().contains("`layout`"));
        // Every method takes the scale settings; those without a hypernetwork ignore them.
        for name in ["ft", "ultraedit", "mend", "emsedit"] {
            let mut spec = MethodSpec::parse(name).unwrap();
            spec.overrides = Overrides::cpu_scale();
            spec.check().unwrap();
            let scenario = ScenarioConfig::sequential(2, 2);
            let config = spec.config(vec!["m".into()], &scenario).unwrap();
            match config {
                EditorConfig::Ft(c) => assert_eq!(c, FtConfig::new(vec!["m".into()])),
                EditorConfig::UltraEdit(c) => assert_eq!(c.lr, 1e-2),
                EditorConfig::Hyper(c) => assert_eq!(c.hyper.rank, 128),
            }
        }
        let mut ems = MethodSpec::parse("emsedit").unwrap();
        ems.overrides.rank = Some(100_000_000);
        let err = ems.check().unwrap_err().to_string();
        assert!(
            err.contains("rank = 100000000") && err.contains("maximum"),
            "{err}"
        );
        ems.overrides.rank = None;
        ems.overrides.steps = Some(0);
        assert!(ems.check().unwrap_err().to_string().contains("at least 1"));
        ems.overrides.steps = None;
        ems.overrides.meta_lr = Some(f64::NAN);
        assert!(ems.check().is_err());
        ems.overrides.meta_lr = None;
        ems.overrides.reg_coef = Some(0.0);
        ems.check().unwrap();
        ems.overrides.reg_coef = Some(-0.5);
        assert!(ems.check().unwrap_err().to_string().contains("reg_coef"));
    }

    #[test]
    fn overrides_read_from_toml_like_json() {
        let o: Overrides =
            serde_json::from_str(r#"{"layout": "step-specific", "rank_decay": false}"#).unwrap();
        assert_eq!(o.layout, Some(LayoutChoice::StepSpecific));
        assert_eq!(o.set_names(), vec!["layout", "rank_decay"]);
        assert!(serde_json::from_str::<Overrides>(r#"{"rnak": 3}"#).is_err());
        let merged = o.merged(&Overrides {
            rank_decay: Some(true),
            rank: Some(4),
            ..Overrides::default()
        });
        assert_eq!(merged.rank_decay, Some(true));
        assert_eq!(merged.rank, Some(4));
        assert_eq!(merged.layout, Some(LayoutChoice::StepSpecific));
    }

    #[test]
    fn layer_scaling_reproduces_the_reference_depth() {
        assert_eq!(scaled(22..28, 28, 28), (22..28).collect::<Vec<_>>());
        assert_eq!(scaled(11..16, 32, 32), (11..16).collect::<Vec<_>>());
        assert_eq!(scaled(32..41, 42, 3), vec![2]);
        assert_eq!(scaled(18..25, 32, 4), vec![2, 3]);
    }

    fn fixture(name: &str) -> CausalLm<Cpu> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/llm")
            .join(name);
        CausalLm::<Cpu>::load(&dir, &cpu()).unwrap()
    }

    #[test]
    fn default_modules_resolve_on_every_family() {
        let expect = [
            (
                "gpt2",
                Mode::Batch,
                vec!["transformer.h.1.mlp.c_proj", "transformer.h.2.mlp.c_proj"],
            ),
            ("gptj", Mode::Batch, vec!["transformer.h.1.mlp.fc_out"]),
            ("gptj", Mode::Sequential, vec!["transformer.h.1.mlp.fc_in"]),
            (
                "llama",
                Mode::Batch,
                vec!["model.layers.1.mlp.gate_proj", "model.layers.2.mlp.up_proj"],
            ),
            ("gemma2", Mode::Batch, vec!["model.layers.2.mlp.down_proj"]),
            (
                "gemma2",
                Mode::Sequential,
                vec!["model.layers.2.mlp.gate_proj", "model.layers.2.mlp.up_proj"],
            ),
        ];
        for (name, mode, want) in expect {
            let lm = fixture(name);
            let got = default_modules(&lm, mode);
            assert_eq!(got, want, "{name} {mode:?}");
            for m in &got {
                lm.module(m).unwrap();
            }
        }
    }

    #[test]
    fn build_returns_a_named_editor() {
        let lm = fixture("gpt2");
        let scenario = ScenarioConfig::sequential(2, 2);
        let modules = default_modules(&lm, Mode::of(&scenario));
        for name in ["ft", "mend", "malmen2", "rledit2", "ultraedit2", "emsedit"] {
            let editor =
                build::<Cpu>(name, &Overrides::default(), modules.clone(), &scenario).unwrap();
            let spec = MethodSpec::parse(name).unwrap();
            assert_eq!(editor.name(), spec.display_name(), "{name}");
        }
        assert!(matches!(
            build::<Cpu>("rome", &Overrides::default(), modules, &scenario),
            Err(MethodError::Unknown { .. })
        ));
    }
}
