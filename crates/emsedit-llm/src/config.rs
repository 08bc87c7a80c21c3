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
        self.n_inner.unwrap_or(4 * self.n_embd)
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
            None if self.gemma3 => !(i + 1).is_multiple_of(6),
            None => i.is_multiple_of(2),
        }
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
        self.n_inner.unwrap_or(4 * self.n_embd)
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
    serde_json::from_value(json).map_err(|e| {
        let msg = e.to_string();
        // serde names the field in backticks: surface it as the field.
        let field = msg.split('`').nth(1).unwrap_or("(root)").to_string();
        field_error(path, &field, msg)
    })
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
    /// Reads and checks `config.json`.
    pub fn load(path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path).map_err(|source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| field_error(path, "(root)", e.to_string()))?;
        let model_type = json
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| field_error(path, "model_type", "missing or not a string"))?
            .to_string();
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
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), LlmError> {
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
