//! GGUF → Hugging Face directory: `config.json`, `model.safetensors` (f32) and
//! `tokenizer.json`, which [`crate::CausalLm::load`] and [`crate::LmTokenizer::load_dir`] read.
//!
//! llama.cpp's conventions are undone on the way:
//!
//! - **LLaMA Q/K rows.** llama.cpp's converter permutes the output rows of `q_proj` and
//!   `k_proj` from HF's rotate-half layout (pairs `(i, i + d/2)`) to the interleaved one
//!   (pairs `(2i, 2i + 1)`) per head: `w.reshape(heads, 2, d/2, a).swapaxes(1, 2)`. The
//!   inverse is `w.reshape(heads, d/2, 2, a).swapaxes(1, 2)` (KV heads for `k_proj`).
//! - **Gemma norms.** Gemma computes `x̂ · (1 + w)` and stores `w`; llama.cpp stores `1 + w`
//!   (every `*norm.weight`, q/k norms included). The converter writes `g − 1` (f32).
//! - **Names and orientation.** `blk.{i}.attn_q.weight` → `model.layers.{i}.self_attn.q_proj.weight`
//!   and so on; GGUF dimensions are fastest-first, so a tensor of dims `[a, b]` is the b×a
//!   matrix HF stores, bytes unchanged.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, View};
use serde_json::{Value as Json, json};

use super::GgufError;
use super::reader::GgufFile;
use super::tokenizer;

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// `general.architecture` (`llama`, `gemma3`).
    pub arch: String,
    /// Tensors written.
    pub tensors: usize,
    /// Parameters written.
    pub parameters: u64,
    /// Tensors per GGML type in the source.
    pub types: BTreeMap<String, usize>,
    /// The files written.
    pub files: Vec<PathBuf>,
}

/// How a tensor is changed on the way.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fix {
    None,
    /// Undo llama.cpp's rotary row permutation with this many heads.
    Unpermute(usize),
    /// Subtract the 1 llama.cpp added to a Gemma norm weight.
    MinusOne,
}

/// An f32 tensor ready for safetensors.
struct F32Tensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &F32Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// The rows of a `rows × cols` matrix (row-major) from llama.cpp's interleaved rotary order
/// back to HF's rotate-half order, `heads` heads of `rows / heads` rows each.
pub fn unpermute_rows(data: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let head_dim = rows / heads;
    let half = head_dim / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                // GGUF row (h, i, j) holds HF row (h, j, i).
                let src = h * head_dim + 2 * i + j;
                let dst = h * head_dim + j * half + i;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// The shortest decimal that reads back as the same f32 (so `1e-5`, not `9.99999974e-6`).
fn f32_json(v: f64) -> Json {
    let short: f64 = format!("{}", v as f32).parse().unwrap_or(v);
    json!(short)
}

struct Plan {
    config: Json,
    /// GGUF name → (HF name, fix).
    names: Vec<(String, String, Fix)>,
    /// GGUF names that may be absent (the untied LM head).
    optional: HashSet<String>,
}

fn usize_key(g: &GgufFile, key: &str) -> Result<usize, GgufError> {
    let v = g.uint(key)?;
    usize::try_from(v).map_err(|_| GgufError::Metadata {
        path: g.path().to_path_buf(),
        key: key.to_string(),
        detail: format!("{v} is too large"),
    })
}

/// `tokenizer_config.json` and `generation_config.json`, so that `transformers` loads the
/// directory's tokenizer as `tokenizer.json` encodes (a generic fast tokenizer: without a
/// config it would pick the architecture's class and add that class's own BOS) and knows the
/// special tokens.
fn side_configs(g: &GgufFile, config: &Json) -> Result<(Json, Json), GgufError> {
    let tokens = g.strings("tokenizer.ggml.tokens")?;
    let name = |key: &str| -> Result<Json, GgufError> {
        Ok(match g.get(key) {
            Some(_) => {
                let id = usize::try_from(g.uint(key)?).unwrap_or(usize::MAX);
                tokens.get(id).map_or(Json::Null, |t| json!(t))
            }
            None => Json::Null,
        })
    };
    let tok = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": name("tokenizer.ggml.bos_token_id")?,
        "eos_token": name("tokenizer.ggml.eos_token_id")?,
        "pad_token": name("tokenizer.ggml.padding_token_id")?,
        "unk_token": name("tokenizer.ggml.unknown_token_id")?,
        "add_bos_token": g.bool_or("tokenizer.ggml.add_bos_token", false)?,
        "add_eos_token": g.bool_or("tokenizer.ggml.add_eos_token", false)?,
        "clean_up_tokenization_spaces": false,
        "model_max_length": config["max_position_embeddings"],
    });
    let mut generation = serde_json::Map::new();
    for key in ["bos_token_id", "eos_token_id", "pad_token_id"] {
        if let Some(v) = config.get(key) {
            generation.insert(key.into(), v.clone());
        }
    }
    Ok((tok, Json::Object(generation)))
}

/// `block_count`, bounded by the tensor directory: every layer has tensors of its own, so a
/// count above the number of tensors cannot be right (and must not size the module plan).
fn layer_count(g: &GgufFile, key: &str) -> Result<usize, GgufError> {
    let layers = usize_key(g, key)?;
    let tensors = g.tensors().len();
    if layers == 0 || layers > tensors {
        return Err(GgufError::Metadata {
            path: g.path().to_path_buf(),
            key: key.to_string(),
            detail: format!("{layers} layers, but the file holds {tensors} tensors"),
        });
    }
    Ok(layers)
}

/// A float that must be finite and positive (epsilons, rotary bases).
fn positive_float(g: &GgufFile, key: &str) -> Result<Json, GgufError> {
    let v = g.float(key)?;
    if !(v.is_finite() && v > 0.0) {
        return Err(GgufError::Metadata {
            path: g.path().to_path_buf(),
            key: key.to_string(),
            detail: format!("{v} must be finite and positive"),
        });
    }
    Ok(f32_json(v))
}

fn vocab_size(g: &GgufFile, arch: &str) -> Result<usize, GgufError> {
    match g.get(&format!("{arch}.vocab_size")) {
        Some(_) => usize_key(g, &format!("{arch}.vocab_size")),
        None => Ok(g.array("tokenizer.ggml.tokens")?.len()),
    }
}

fn token_ids(g: &GgufFile) -> Result<Json, GgufError> {
    let mut ids = serde_json::Map::new();
    for (key, field) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ] {
        if g.get(key).is_some() {
            ids.insert(field.into(), json!(g.uint(key)?));
        }
    }
    Ok(Json::Object(ids))
}

fn merge(mut a: Json, b: Json) -> Json {
    if let (Some(a), Json::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn llama_plan(g: &GgufFile) -> Result<Plan, GgufError> {
    let key = |k: &str| format!("llama.{k}");
    let (d, layers) = (
        usize_key(g, &key("embedding_length"))?,
        layer_count(g, &key("block_count"))?,
    );
    let heads = usize_key(g, &key("attention.head_count"))?;
    let kv_heads = match g.get(&key("attention.head_count_kv")) {
        Some(_) => usize_key(g, &key("attention.head_count_kv"))?,
        None => heads,
    };
    if heads == 0 || kv_heads == 0 || d % heads != 0 {
        return Err(GgufError::Metadata {
            path: g.path().to_path_buf(),
            key: key("attention.head_count"),
            detail: format!("{heads} heads ({kv_heads} KV) do not fit width {d}"),
        });
    }
    let head_dim = match g.get(&key("rope.dimension_count")) {
        Some(_) => usize_key(g, &key("rope.dimension_count"))?,
        None => d / heads,
    };
    if g.get(&key("rope.scaling.type")).is_some() {
        return Err(GgufError::Unsupported {
            path: g.path().to_path_buf(),
            key: key("rope.scaling.type"),
            detail: "rope scaling is not converted".into(),
        });
    }
    let tied = g.tensor("output.weight").is_err();
    let config = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size(g, "llama")?,
        "hidden_size": d,
        "intermediate_size": usize_key(g, &key("feed_forward_length"))?,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "max_position_embeddings": usize_key(g, &key("context_length"))?,
        "rms_norm_eps": positive_float(g, &key("attention.layer_norm_rms_epsilon"))?,
        "rope_theta": match g.get(&key("rope.freq_base")) {
            Some(_) => positive_float(g, &key("rope.freq_base"))?,
            None => json!(10000.0),
        },
        "hidden_act": "silu",
        "attention_bias": false,
        "mlp_bias": false,
        "tie_word_embeddings": tied,
        "torch_dtype": "float32",
    });
    let mut names = vec![
        (
            "token_embd.weight".into(),
            "model.embed_tokens.weight".into(),
            Fix::None,
        ),
        (
            "output_norm.weight".into(),
            "model.norm.weight".into(),
            Fix::None,
        ),
        ("output.weight".into(), "lm_head.weight".into(), Fix::None),
    ];
    for i in 0..layers {
        for (from, to, fix) in [
            ("attn_norm", "input_layernorm", Fix::None),
            ("ffn_norm", "post_attention_layernorm", Fix::None),
            ("attn_q", "self_attn.q_proj", Fix::Unpermute(heads)),
            ("attn_k", "self_attn.k_proj", Fix::Unpermute(kv_heads)),
            ("attn_v", "self_attn.v_proj", Fix::None),
            ("attn_output", "self_attn.o_proj", Fix::None),
            ("ffn_gate", "mlp.gate_proj", Fix::None),
            ("ffn_up", "mlp.up_proj", Fix::None),
            ("ffn_down", "mlp.down_proj", Fix::None),
        ] {
            names.push((
                format!("blk.{i}.{from}.weight"),
                format!("model.layers.{i}.{to}.weight"),
                fix,
            ));
        }
    }
    Ok(Plan {
        config: merge(config, token_ids(g)?),
        names,
        optional: HashSet::from(["output.weight".to_string()]),
    })
}

/// Gemma-3 layers are global every `GEMMA3_GLOBAL_EVERY`-th layer (llama.cpp hard-codes this
/// and the local RoPE base; the GGUF does not carry them).
const GEMMA3_GLOBAL_EVERY: usize = 6;
const GEMMA3_LOCAL_ROPE_BASE: f64 = 10_000.0;

fn gemma3_plan(g: &GgufFile) -> Result<Plan, GgufError> {
    let key = |k: &str| format!("gemma3.{k}");
    let (d, layers) = (
        usize_key(g, &key("embedding_length"))?,
        layer_count(g, &key("block_count"))?,
    );
    let heads = usize_key(g, &key("attention.head_count"))?;
    let kv_heads = usize_key(g, &key("attention.head_count_kv"))?;
    let head_dim = usize_key(g, &key("attention.key_length"))?;
    let layer_types: Vec<&str> = (0..layers)
        .map(|i| {
            if (i + 1) % GEMMA3_GLOBAL_EVERY == 0 {
                "full_attention"
            } else {
                "sliding_attention"
            }
        })
        .collect();
    let config = json!({
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "vocab_size": vocab_size(g, "gemma3")?,
        "hidden_size": d,
        "intermediate_size": usize_key(g, &key("feed_forward_length"))?,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "max_position_embeddings": usize_key(g, &key("context_length"))?,
        "rms_norm_eps": positive_float(g, &key("attention.layer_norm_rms_epsilon"))?,
        "rope_theta": positive_float(g, &key("rope.freq_base"))?,
        "rope_local_base_freq": GEMMA3_LOCAL_ROPE_BASE,
        "rope_scaling": null,
        "query_pre_attn_scalar": head_dim,
        "sliding_window": usize_key(g, &key("attention.sliding_window"))?,
        "layer_types": layer_types,
        "hidden_activation": "gelu_pytorch_tanh",
        "attention_bias": false,
        "attn_logit_softcapping": null,
        "final_logit_softcapping": null,
        "tie_word_embeddings": true,
        "torch_dtype": "float32",
    });
    if g.tensor("output.weight").is_ok() {
        return Err(GgufError::Tensor {
            path: g.path().to_path_buf(),
            tensor: "output.weight".into(),
            detail: "Gemma-3 ties the LM head to the embedding; an untied head is not supported"
                .into(),
        });
    }
    let mut names = vec![
        (
            "token_embd.weight".into(),
            "model.embed_tokens.weight".into(),
            Fix::None,
        ),
        (
            "output_norm.weight".into(),
            "model.norm.weight".into(),
            Fix::MinusOne,
        ),
    ];
    for i in 0..layers {
        for (from, to, fix) in [
            ("attn_norm", "input_layernorm", Fix::MinusOne),
            (
                "post_attention_norm",
                "post_attention_layernorm",
                Fix::MinusOne,
            ),
            ("ffn_norm", "pre_feedforward_layernorm", Fix::MinusOne),
            ("post_ffw_norm", "post_feedforward_layernorm", Fix::MinusOne),
            ("attn_q_norm", "self_attn.q_norm", Fix::MinusOne),
            ("attn_k_norm", "self_attn.k_norm", Fix::MinusOne),
            ("attn_q", "self_attn.q_proj", Fix::None),
            ("attn_k", "self_attn.k_proj", Fix::None),
            ("attn_v", "self_attn.v_proj", Fix::None),
            ("attn_output", "self_attn.o_proj", Fix::None),
            ("ffn_gate", "mlp.gate_proj", Fix::None),
            ("ffn_up", "mlp.up_proj", Fix::None),
            ("ffn_down", "mlp.down_proj", Fix::None),
        ] {
            names.push((
                format!("blk.{i}.{from}.weight"),
                format!("model.layers.{i}.{to}.weight"),
                fix,
            ));
        }
    }
    Ok(Plan {
        config: merge(config, token_ids(g)?),
        names,
        optional: HashSet::new(),
    })
}

fn write_err(path: &Path) -> impl Fn(String) -> GgufError + '_ {
    move |detail| GgufError::Write {
        path: path.to_path_buf(),
        detail,
    }
}

fn write_json(path: &Path, json: &Json) -> Result<(), GgufError> {
    let text = serde_json::to_string_pretty(json).map_err(|e| write_err(path)(e.to_string()))?;
    std::fs::write(path, text).map_err(|source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Converts the GGUF file `gguf` into the directory `out` (created if needed).
/// `progress(done, total)` is called after each tensor.
pub fn convert_gguf(
    gguf: &Path,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Converted, GgufError> {
    let g = GgufFile::open(gguf)?;
    let arch = g.str("general.architecture")?.to_string();
    let plan = match arch.as_str() {
        "llama" => llama_plan(&g)?,
        "gemma3" => gemma3_plan(&g)?,
        other => {
            return Err(GgufError::Unsupported {
                path: gguf.to_path_buf(),
                key: "general.architecture".into(),
                detail: format!(
                    "architecture `{other}` is not supported (supported: llama, gemma3)"
                ),
            });
        }
    };
    let tokenizer = tokenizer::from_gguf(&g)?;
    let known: HashSet<&str> = plan.names.iter().map(|(n, _, _)| n.as_str()).collect();
    if let Some(extra) = g
        .tensors()
        .iter()
        .find(|t| !known.contains(t.name.as_str()))
    {
        return Err(GgufError::Tensor {
            path: gguf.to_path_buf(),
            tensor: extra.name.clone(),
            detail: format!("no Hugging Face name is known for this tensor of a `{arch}` model"),
        });
    }
    let mut types = BTreeMap::new();
    let mut tensors: Vec<(String, F32Tensor)> = Vec::new();
    let mut parameters = 0u64;
    let total = plan.names.len();
    for (done, (from, to, fix)) in plan.names.iter().enumerate() {
        let info = match g.tensor(from) {
            Ok(info) => info.clone(),
            Err(_) if plan.optional.contains(from) => continue,
            Err(e) => return Err(e),
        };
        *types.entry(info.ty.name().to_string()).or_insert(0) += 1;
        let shape = info.shape();
        let mut data = g.dequantize(from)?;
        match *fix {
            Fix::None => {}
            Fix::MinusOne => data.iter_mut().for_each(|v| *v -= 1.0),
            Fix::Unpermute(heads) => {
                let (rows, cols) = match shape[..] {
                    [rows, cols] if heads > 0 && rows % heads == 0 && (rows / heads) % 2 == 0 => {
                        (rows, cols)
                    }
                    _ => {
                        return Err(GgufError::Tensor {
                            path: gguf.to_path_buf(),
                            tensor: from.clone(),
                            detail: format!(
                                "shape {shape:?} does not split into {heads} heads of even width"
                            ),
                        });
                    }
                };
                data = unpermute_rows(&data, rows, cols, heads);
            }
        }
        parameters += data.len() as u64;
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((to.clone(), F32Tensor { shape, bytes }));
        progress(done + 1, total);
    }
    std::fs::create_dir_all(out).map_err(|source| GgufError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let (config_path, weights_path, tokenizer_path) = (
        out.join("config.json"),
        out.join("model.safetensors"),
        out.join("tokenizer.json"),
    );
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    safetensors::serialize_to_file(
        tensors.iter().map(|(n, t)| (n.as_str(), t)),
        Some(metadata),
        &weights_path,
    )
    .map_err(|e| write_err(&weights_path)(e.to_string()))?;
    write_json(&config_path, &plan.config)?;
    write_json(&tokenizer_path, &tokenizer)?;
    let (tok_config, generation) = side_configs(&g, &plan.config)?;
    write_json(&out.join("tokenizer_config.json"), &tok_config)?;
    write_json(&out.join("generation_config.json"), &generation)?;
    Ok(Converted {
        arch,
        tensors: tensors.len(),
        parameters,
        types,
        files: vec![config_path, weights_path, tokenizer_path],
    })
}
