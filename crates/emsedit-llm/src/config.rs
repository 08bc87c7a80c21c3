//! `config.json` as Hugging Face writes it, one serde struct per architecture.

use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::LlmError;

/// The architectures this crate implements, by HF `model_type`.
pub const SUPPORTED: &str = "gpt2, gptj, llama, gemma2, gemma3_text";

/// A parsed `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// `model_type: "gpt2"`.
    Gpt2(Gpt2Config),
    /// `model_type: "gptj"`.
    Gptj(GptjConfig),
    /// `model_type: "llama"`.
    Llama(LlamaConfig),
    /// `model_type: "gemma2"`, and `"gemma3_text"` (Gemma-3, marked by
    /// [`Gemma2Config::gemma3`]; the two share one config struct).
    Gemma2(Gemma2Config),
}

/// GPT-J's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GptjConfig {
    /// Vocabulary size V.
    pub vocab_size: usize,
    /// Context length.
    pub n_positions: usize,
    /// Hidden size d.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Rotary dimensions per head (the rest pass through); the whole head when null.
    #[serde(default)]
    pub rotary_dim: Option<usize>,
    /// MLP width (4d when null).
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// MLP activation.
    #[serde(default = "Gpt2Config::default_activation")]
    pub activation_function: String,
    /// LayerNorm epsilon.
    #[serde(default = "Gpt2Config::default_eps")]
    pub layer_norm_epsilon: f64,
}

impl GptjConfig {
    /// Head width.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head.max(1)
    }
    /// Rotary dimensions per head.
    pub fn rotary(&self) -> usize {
        self.rotary_dim.unwrap_or(self.head_dim())
    }
    /// MLP width.
    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(self.n_embd.saturating_mul(4))
    }
}

/// Gemma-2's config, and Gemma-3's (`model_type: "gemma3_text"`, with [`Self::gemma3`] set).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Gemma2Config {
    /// Gemma-3: q/k RMS norms, a separate RoPE base for the sliding layers, global attention
    /// every sixth layer by default. Set from `model_type`, not read from the file.
    #[serde(skip)]
    pub gemma3: bool,
    /// Gemma-3: the RoPE base of the sliding-window layers (`rope_theta` is the global one).
    #[serde(default)]
    pub rope_local_base_freq: Option<f64>,
    /// Gemma-3 (transformers < 5): RoPE scaling of the global layers (only none or `default`).
    #[serde(default)]
    pub rope_scaling: Option<RopeParameters>,
    /// Vocabulary size V.
    pub vocab_size: usize,
    /// Hidden size d.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_key_value_heads: usize,
    /// Head width.
    pub head_dim: usize,
    /// Context length.
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon.
    #[serde(default = "LlamaConfig::default_eps")]
    pub rms_norm_eps: f64,
    /// MLP activation (only `gelu_pytorch_tanh`).
    #[serde(default = "Gemma2Config::default_act")]
    pub hidden_activation: String,
    /// Attention scores are scaled by `query_pre_attn_scalar^-1/2`.
    pub query_pre_attn_scalar: f64,
    /// `tanh` soft-capping of attention scores.
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    /// `tanh` soft-capping of the final logits.
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    /// Window of the sliding-attention layers.
    pub sliding_window: usize,
    /// `sliding_attention` / `full_attention` per layer (even layers slide when absent).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// Gemma-3 configs of transformers 4.50–4.52: every `n`-th layer is global (without
    /// `layer_types`; 6 when absent). Gemma-2's alternation is the pattern 2.
    #[serde(default)]
    pub sliding_window_pattern: Option<usize>,
    /// Biases on q/k/v/o.
    #[serde(default)]
    pub attention_bias: bool,
    /// transformers ≥ 5.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// transformers < 5.
    #[serde(default)]
    pub rope_theta: Option<f64>,
}

impl Gemma2Config {
    fn default_act() -> String {
        "gelu_pytorch_tanh".into()
    }
    /// Whether layer `i` uses sliding-window attention.
    pub fn is_sliding(&self, i: usize) -> bool {
        match &self.layer_types {
            Some(types) => types.get(i).is_some_and(|t| t == "sliding_attention"),
            None => !(i + 1).is_multiple_of(self.pattern()),
        }
    }
    /// Every how many layers one is global (when `layer_types` is absent).
    pub fn pattern(&self) -> usize {
        self.sliding_window_pattern
            .unwrap_or(if self.gemma3 { 6 } else { 2 })
    }
    /// Gemma-3: the rotary parameters of the sliding-window layers.
    pub fn local_rope(&self) -> RopeParameters {
        RopeParameters {
            rope_theta: Some(self.rope_local_base_freq.unwrap_or(10_000.0)),
            ..RopeParameters::default()
        }
    }
    /// The rotary parameters.
    pub fn rope(&self) -> RopeParameters {
        let mut rope = self.rope_parameters.clone().unwrap_or_default();
        rope.rope_theta = rope.rope_theta.or(self.rope_theta);
        rope
    }
}

fn default_true() -> bool {
    true
}

/// GPT-2's config (the fields the forward pass reads).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Gpt2Config {
    /// Vocabulary size V.
    pub vocab_size: usize,
    /// Context length.
    pub n_positions: usize,
    /// Hidden size d.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// MLP width (4d when null).
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// MLP activation.
    #[serde(default = "Gpt2Config::default_activation")]
    pub activation_function: String,
    /// LayerNorm epsilon.
    #[serde(default = "Gpt2Config::default_eps")]
    pub layer_norm_epsilon: f64,
    /// Scale attention scores by 1/√head_dim.
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    /// Also scale by 1/(layer+1).
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    /// The LM head shares the token embedding.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

/// Rotary scaling parameters, from transformers 5's `rope_parameters` or the older
/// `rope_theta` + `rope_scaling` pair.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct RopeParameters {
    /// Base θ.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// `default` or `llama3` (older files say `type`).
    #[serde(default, alias = "type")]
    pub rope_type: Option<String>,
    /// llama3: scaling factor.
    #[serde(default)]
    pub factor: Option<f64>,
    /// llama3: low-frequency factor.
    #[serde(default)]
    pub low_freq_factor: Option<f64>,
    /// llama3: high-frequency factor.
    #[serde(default)]
    pub high_freq_factor: Option<f64>,
    /// llama3: the pre-training context length.
    #[serde(default)]
    pub original_max_position_embeddings: Option<f64>,
}

/// LLaMA's config (LLaMA-2/3, SmolLM2 and other `LlamaForCausalLM` checkpoints).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LlamaConfig {
    /// Vocabulary size V.
    pub vocab_size: usize,
    /// Hidden size d.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); equal to the query heads when absent.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Head width; d / heads when absent.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Context length.
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon.
    #[serde(default = "LlamaConfig::default_eps")]
    pub rms_norm_eps: f64,
    /// MLP activation (only `silu`).
    #[serde(default = "LlamaConfig::default_act")]
    pub hidden_act: String,
    /// Biases on q/k/v/o.
    #[serde(default)]
    pub attention_bias: bool,
    /// Biases on the MLP.
    #[serde(default)]
    pub mlp_bias: bool,
    /// The LM head shares the token embedding.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// transformers ≥ 5.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// transformers < 5.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// transformers < 5.
    #[serde(default)]
    pub rope_scaling: Option<RopeParameters>,
}

impl LlamaConfig {
    fn default_eps() -> f64 {
        1e-6
    }
    fn default_act() -> String {
        "silu".into()
    }
    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    /// Head width.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }
    /// The rotary parameters, whichever way the file spells them.
    pub fn rope(&self) -> RopeParameters {
        let mut rope = self
            .rope_parameters
            .clone()
            .or_else(|| self.rope_scaling.clone())
            .unwrap_or_default();
        rope.rope_theta = rope.rope_theta.or(self.rope_theta);
        rope
    }
}

impl Gpt2Config {
    fn default_activation() -> String {
        "gelu_new".into()
    }
    fn default_eps() -> f64 {
        1e-5
    }
    /// MLP width.
    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(self.n_embd.saturating_mul(4))
    }
}

fn field_error(path: &Path, field: &str, detail: impl Into<String>) -> LlmError {
    LlmError::Config {
        path: path.to_path_buf(),
        field: field.to_string(),
        detail: detail.into(),
    }
}

fn parse<T: DeserializeOwned>(path: &Path, json: serde_json::Value) -> Result<T, LlmError> {
    let text = json.to_string();
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        // The path of the key that failed (`rope_parameters.factor`), not the value; for a
        // missing key, the key itself under that path.
        let inner = e.inner().to_string();
        let parent = match e.path().to_string() {
            p if p == "." || p.is_empty() => None,
            p => Some(p),
        };
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (parent, missing) {
            (Some(p), Some(m)) => format!("{p}.{m}"),
            (None, Some(m)) => m.to_string(),
            (Some(p), None) => p,
            (None, None) => "(root)".to_string(),
        };
        field_error(path, &field, inner)
    })
}

/// Keys that would change the computation in ways this crate does not implement, with the
/// boolean that is harmless (`None`: absent or null only).
const UNSUPPORTED: &[(&str, &str, Option<bool>)] = &[
    ("gpt2", "add_cross_attention", Some(false)),
    ("llama", "use_sliding_window", Some(false)),
    ("llama", "sliding_window", None),
    ("llama", "attn_logit_softcapping", None),
    ("llama", "final_logit_softcapping", None),
    ("gemma2", "use_bidirectional_attention", Some(false)),
    ("gemma3_text", "use_bidirectional_attention", Some(false)),
];

fn refuse_unsupported(
    path: &Path,
    model_type: &str,
    json: &serde_json::Value,
) -> Result<(), LlmError> {
    for (arch, key, harmless) in UNSUPPORTED {
        if *arch != model_type {
            continue;
        }
        let Some(v) = json.get(*key).filter(|v| !v.is_null()) else {
            continue;
        };
        if harmless.is_none_or(|h| v.as_bool() != Some(h)) {
            return Err(field_error(
                path,
                key,
                format!("{v} changes the computation and is not supported for {model_type}"),
            ));
        }
    }
    Ok(())
}

/// Largest width, head count, vocabulary or layer count a config may give.
pub const MAX_DIM: usize = 1 << 24;
/// Largest context a config may give (rotary tables are capped far below).
pub const MAX_POSITIONS: usize = 1 << 32;

/// A finite, positive number (epsilons, rotary bases and factors, scalars).
fn positive(path: &Path, field: &str, v: f64) -> Result<(), LlmError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(field_error(
            path,
            field,
            format!("{v} must be finite and positive"),
        ))
    }
}

fn positive_opt(path: &Path, field: &str, v: Option<f64>) -> Result<(), LlmError> {
    v.map_or(Ok(()), |v| positive(path, field, v))
}

fn rope_checks(path: &Path, prefix: &str, rope: &RopeParameters) -> Result<(), LlmError> {
    for (field, v) in [
        ("rope_theta", rope.rope_theta),
        ("factor", rope.factor),
        ("low_freq_factor", rope.low_freq_factor),
        ("high_freq_factor", rope.high_freq_factor),
        (
            "original_max_position_embeddings",
            rope.original_max_position_embeddings,
        ),
    ] {
        positive_opt(path, &format!("{prefix}{field}"), v)?;
    }
    Ok(())
}

/// transformers ≥ 5 writes Gemma-3's rotary parameters per layer type
/// (`rope_parameters: {full_attention: {...}, sliding_attention: {...}}`); this moves them to
/// the < 5 fields (`rope_theta`, `rope_local_base_freq`, `rope_scaling`).
fn gemma3_rope_v5(mut json: serde_json::Value) -> serde_json::Value {
    let Some(params) = json.get("rope_parameters").cloned() else {
        return json;
    };
    let (Some(full), Some(local)) = (
        params.get("full_attention"),
        params.get("sliding_attention"),
    ) else {
        return json;
    };
    if let Some(obj) = json.as_object_mut() {
        obj.remove("rope_parameters");
        if let Some(theta) = full.get("rope_theta") {
            obj.insert("rope_theta".into(), theta.clone());
        }
        if let Some(theta) = local.get("rope_theta") {
            obj.insert("rope_local_base_freq".into(), theta.clone());
        }
        obj.insert("rope_scaling".into(), full.clone());
    }
    json
}

impl ModelConfig {
    /// Longest sequence a model of this config accepts: GPT-2's position table, or the
    /// rotary models' context capped at [`crate::layers::MAX_ROPE_POSITIONS`] (their rotary
    /// tables are built for that many positions, never for a number read from a file).
    pub fn context_len(&self) -> usize {
        let cap = crate::layers::MAX_ROPE_POSITIONS;
        match self {
            Self::Gpt2(c) => c.n_positions,
            Self::Gptj(c) => c.n_positions.min(cap),
            Self::Llama(c) => c.max_position_embeddings.min(cap),
            Self::Gemma2(c) => c.max_position_embeddings.min(cap),
        }
    }

    /// Reads and checks `config.json`.
    pub fn load(path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path).map_err(|source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| field_error(path, "(root)", e.to_string()))?;
        let model_type = json
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| field_error(path, "model_type", "missing or not a string"))?
            .to_string();
        let json_copy = json.clone();
        let config = match model_type.as_str() {
            "gpt2" => Self::Gpt2(parse(path, json)?),
            "gptj" => Self::Gptj(parse(path, json)?),
            "llama" => Self::Llama(parse(path, json)?),
            "gemma2" => Self::Gemma2(parse(path, json)?),
            "gemma3_text" => Self::Gemma2(Gemma2Config {
                gemma3: true,
                ..parse(path, gemma3_rope_v5(json))?
            }),
            _ => {
                return Err(LlmError::UnknownModelType {
                    path: path.to_path_buf(),
                    model_type,
                    supported: SUPPORTED,
                });
            }
        };
        refuse_unsupported(path, &model_type, &json_copy)?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), LlmError> {
        let dims: Vec<(&str, usize)> = match self {
            Self::Gpt2(c) => vec![
                ("vocab_size", c.vocab_size),
                ("n_positions", c.n_positions),
                ("n_embd", c.n_embd),
                ("n_layer", c.n_layer),
            ],
            Self::Gptj(c) => vec![
                ("vocab_size", c.vocab_size),
                ("n_positions", c.n_positions),
                ("n_embd", c.n_embd),
                ("n_layer", c.n_layer),
            ],
            Self::Llama(c) => vec![
                ("vocab_size", c.vocab_size),
                ("hidden_size", c.hidden_size),
                ("intermediate_size", c.intermediate_size),
                ("num_hidden_layers", c.num_hidden_layers),
                ("max_position_embeddings", c.max_position_embeddings),
            ],
            Self::Gemma2(c) => vec![
                ("vocab_size", c.vocab_size),
                ("hidden_size", c.hidden_size),
                ("intermediate_size", c.intermediate_size),
                ("num_hidden_layers", c.num_hidden_layers),
                ("head_dim", c.head_dim),
                ("max_position_embeddings", c.max_position_embeddings),
                ("sliding_window", c.sliding_window),
            ],
        };
        if let Some((field, _)) = dims.iter().find(|(_, v)| *v == 0) {
            return Err(field_error(path, field, "must be at least 1"));
        }
        // Widths, heads and counts far beyond any model (so that products of two of them, the
        // shapes the weights are checked against, cannot overflow).
        let widths: Vec<(&str, usize)> = match self {
            Self::Gpt2(c) => vec![("n_head", c.n_head), ("n_inner", c.inner())],
            Self::Gptj(c) => vec![
                ("n_head", c.n_head),
                ("n_inner", c.inner()),
                ("rotary_dim", c.rotary()),
            ],
            Self::Llama(c) => vec![
                ("num_attention_heads", c.num_attention_heads),
                ("num_key_value_heads", c.kv_heads()),
                ("head_dim", c.head_dim()),
            ],
            Self::Gemma2(c) => vec![
                ("num_attention_heads", c.num_attention_heads),
                ("num_key_value_heads", c.num_key_value_heads),
            ],
        };
        for (field, v) in dims.iter().chain(&widths) {
            let max = if field.contains("position") {
                MAX_POSITIONS
            } else {
                MAX_DIM
            };
            if *v > max {
                return Err(field_error(
                    path,
                    field,
                    format!("{v} is more than the maximum of {max}"),
                ));
            }
        }
        match self {
            Self::Gpt2(c) => positive(path, "layer_norm_epsilon", c.layer_norm_epsilon)?,
            Self::Gptj(c) => positive(path, "layer_norm_epsilon", c.layer_norm_epsilon)?,
            Self::Llama(c) => {
                positive(path, "rms_norm_eps", c.rms_norm_eps)?;
                positive_opt(path, "rope_theta", c.rope_theta)?;
                if let Some(r) = &c.rope_parameters {
                    rope_checks(path, "rope_parameters.", r)?;
                }
                if let Some(r) = &c.rope_scaling {
                    rope_checks(path, "rope_scaling.", r)?;
                }
            }
            Self::Gemma2(c) => {
                positive(path, "rms_norm_eps", c.rms_norm_eps)?;
                positive(path, "query_pre_attn_scalar", c.query_pre_attn_scalar)?;
                positive_opt(path, "attn_logit_softcapping", c.attn_logit_softcapping)?;
                positive_opt(path, "final_logit_softcapping", c.final_logit_softcapping)?;
                positive_opt(path, "rope_theta", c.rope_theta)?;
                positive_opt(path, "rope_local_base_freq", c.rope_local_base_freq)?;
                if let Some(r) = &c.rope_parameters {
                    rope_checks(path, "rope_parameters.", r)?;
                }
                if let Some(r) = &c.rope_scaling {
                    rope_checks(path, "rope_scaling.", r)?;
                }
                if c.sliding_window_pattern == Some(0) {
                    return Err(field_error(
                        path,
                        "sliding_window_pattern",
                        "must be at least 1",
                    ));
                }
            }
        }
        match self {
            Self::Gpt2(c) => {
                if c.n_head == 0 || c.n_embd % c.n_head != 0 {
                    return Err(field_error(
                        path,
                        "n_head",
                        format!("{} heads do not divide n_embd = {}", c.n_head, c.n_embd),
                    ));
                }
                if c.activation_function != "gelu_new" {
                    return Err(field_error(
                        path,
                        "activation_function",
                        format!(
                            "`{}` is not supported (only gelu_new)",
                            c.activation_function
                        ),
                    ));
                }
                if c.scale_attn_by_inverse_layer_idx {
                    return Err(field_error(
                        path,
                        "scale_attn_by_inverse_layer_idx",
                        "not supported",
                    ));
                }
            }
            Self::Gptj(c) => {
                if c.n_head == 0 || c.n_embd % c.n_head != 0 {
                    return Err(field_error(
                        path,
                        "n_head",
                        format!("{} heads do not divide n_embd = {}", c.n_head, c.n_embd),
                    ));
                }
                if c.rotary() > c.head_dim() || c.rotary() % 2 != 0 {
                    return Err(field_error(
                        path,
                        "rotary_dim",
                        format!(
                            "{} must be even and at most the head width {}",
                            c.rotary(),
                            c.head_dim()
                        ),
                    ));
                }
                if c.activation_function != "gelu_new" {
                    return Err(field_error(
                        path,
                        "activation_function",
                        format!(
                            "`{}` is not supported (only gelu_new)",
                            c.activation_function
                        ),
                    ));
                }
            }
            Self::Gemma2(c) => {
                let (h, kv) = (c.num_attention_heads, c.num_key_value_heads);
                if h == 0 || kv == 0 || h % kv != 0 {
                    return Err(field_error(
                        path,
                        "num_key_value_heads",
                        format!("{kv} key/value heads must divide {h} query heads"),
                    ));
                }
                if c.hidden_activation != "gelu_pytorch_tanh" {
                    return Err(field_error(
                        path,
                        "hidden_activation",
                        format!(
                            "`{}` is not supported (only gelu_pytorch_tanh)",
                            c.hidden_activation
                        ),
                    ));
                }
                if let Some(types) = &c.layer_types {
                    if types.len() != c.num_hidden_layers {
                        return Err(field_error(
                            path,
                            "layer_types",
                            format!("{} entries for {} layers", types.len(), c.num_hidden_layers),
                        ));
                    }
                    if let Some(bad) = types
                        .iter()
                        .find(|t| *t != "sliding_attention" && *t != "full_attention")
                    {
                        return Err(field_error(
                            path,
                            "layer_types",
                            format!("unknown layer type `{bad}`"),
                        ));
                    }
                }
                if let Some(rope) = c.rope_scaling.as_ref().filter(|_| c.gemma3)
                    && !matches!(rope.rope_type.as_deref(), None | Some("default"))
                {
                    return Err(field_error(
                        path,
                        "rope_scaling",
                        "only default rotary embeddings are supported for gemma3_text",
                    ));
                }
                if !matches!(c.rope().rope_type.as_deref(), None | Some("default")) {
                    return Err(field_error(
                        path,
                        "rope_parameters.rope_type",
                        "only default rotary embeddings are supported for gemma2",
                    ));
                }
            }
            Self::Llama(c) => {
                let (h, kv) = (c.num_attention_heads, c.kv_heads());
                if h == 0 || kv == 0 || h % kv != 0 {
                    return Err(field_error(
                        path,
                        "num_key_value_heads",
                        format!("{kv} key/value heads must divide {h} query heads"),
                    ));
                }
                if c.hidden_act != "silu" {
                    return Err(field_error(
                        path,
                        "hidden_act",
                        format!("`{}` is not supported (only silu)", c.hidden_act),
                    ));
                }
                let rope = c.rope();
                match rope.rope_type.as_deref() {
                    None | Some("default") => {}
                    Some("llama3") => {
                        for (field, v) in [
                            ("factor", rope.factor),
                            ("low_freq_factor", rope.low_freq_factor),
                            ("high_freq_factor", rope.high_freq_factor),
                            (
                                "original_max_position_embeddings",
                                rope.original_max_position_embeddings,
                            ),
                        ] {
                            if v.is_none() {
                                return Err(field_error(
                                    path,
                                    &format!("rope_parameters.{field}"),
                                    "required by llama3 scaling",
                                ));
                            }
                        }
                    }
                    Some(other) => {
                        return Err(field_error(
                            path,
                            "rope_parameters.rope_type",
                            format!("`{other}` is not supported"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
