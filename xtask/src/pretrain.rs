//! `cargo xtask pretrain`: the embedded default model in `fixtures/model`.
//!
//! World (seed 0, default size) → corpus → byte-level BPE → a small GPT-2 trained on the
//! corpus → `config.json`, `model.safetensors`, `tokenizer.json` and `pretrain.json` (the
//! settings and the measured fact accuracy).

use std::path::{Path, PathBuf};
use std::time::Instant;

use emsedit::eval::scenario::answer_accuracy;
use emsedit::eval::synthetic::{FactWorld, WorldConfig};
use emsedit::llm::bpe;
use emsedit::llm::config::Gpt2Config;
use emsedit::llm::pretrain::{PretrainConfig, PretrainProgress};
use emsedit::{CausalLm, Cpu, LmTokenizer, cpu, seed};
use serde::Serialize;

/// The size of the default model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSize {
    pub vocab: usize,
    pub layers: usize,
    pub width: usize,
    pub heads: usize,
    pub context: usize,
}

impl Default for ModelSize {
    fn default() -> Self {
        Self {
            vocab: 1024,
            layers: 4,
            width: 128,
            heads: 4,
            context: 64,
        }
    }
}

#[derive(Serialize)]
struct Record<'a> {
    world: WorldConfig,
    size: &'a ModelSize,
    pretrain: &'a PretrainConfig,
    init_seed: u64,
    corpus_lines: usize,
    final_loss: f32,
    fact_accuracy: f64,
    seconds: f64,
}

pub fn run(out: &Path, size: &ModelSize, config: &PretrainConfig) -> Result<(), String> {
    let started = Instant::now();
    let world = FactWorld::generate(WorldConfig::default());
    let corpus = world.corpus();
    let lines: Vec<&str> = corpus.lines().collect();
    eprintln!(
        "world: {} facts, corpus of {} lines",
        world.facts.len(),
        lines.len()
    );

    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let tok_path = out.join("tokenizer.json");
    let json = bpe::train(&lines, size.vocab).map_err(|e| e.to_string())?;
    std::fs::write(&tok_path, &json).map_err(|e| format!("{}: {e}", tok_path.display()))?;
    let tok = LmTokenizer::from_json(&tok_path, &json).map_err(|e| e.to_string())?;
    // Each line ends with <|endoftext|>, so that generation stops after the answer.
    let eot = tok
        .token_id(bpe::END_OF_TEXT)
        .ok_or("the trained tokenizer lacks <|endoftext|>")?;
    let sequences = lines
        .iter()
        .map(|l| {
            tok.encode_prompt(l).map(|mut ids| {
                ids.push(eot);
                ids
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let longest = sequences.iter().map(Vec::len).max().unwrap_or(0);
    let mean = sequences.iter().map(Vec::len).sum::<usize>() as f64 / sequences.len() as f64;
    eprintln!(
        "tokenizer: {} tokens; sequences {mean:.1} tokens on average, {longest} at most",
        tok.vocab_size()
    );
    if longest > size.context {
        return Err(format!(
            "a corpus line has {longest} tokens, more than the context of {}",
            size.context
        ));
    }

    let device = cpu();
    let init_seed = config.seed;
    seed::<Cpu>(&device, init_seed);
    let gpt2 = Gpt2Config {
        vocab_size: tok.vocab_size(),
        n_positions: size.context,
        n_embd: size.width,
        n_layer: size.layers,
        n_head: size.heads,
        n_inner: None,
        activation_function: "gelu_new".into(),
        layer_norm_epsilon: 1e-5,
        scale_attn_weights: true,
        scale_attn_by_inverse_layer_idx: false,
        tie_word_embeddings: true,
    };
    let mut lm = CausalLm::<Cpu>::init_gpt2(gpt2, &device);
    let bar = crate::reproduce::progress::bar(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "pretrain {bar:32} {pos}/{len} steps  {msg}  [{elapsed_precise}, eta {eta}]",
        )
        .map_err(|e| e.to_string())?,
    );
    // Without a terminal (a log file) the bar is hidden: a line every tenth of the way instead.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut final_loss = f32::NAN;
    let mut smoothed = None::<f32>;
    let mut report = |p: &PretrainProgress| {
        final_loss = p.loss;
        let s = smoothed.map_or(p.loss, |s| 0.95 * s + 0.05 * p.loss);
        smoothed = Some(s);
        bar.set_length(p.total as u64);
        bar.set_position(p.step as u64);
        bar.set_message(format!("epoch {} loss {s:.4} lr {:.2e}", p.epoch + 1, p.lr));
        if !terminal && (p.step.is_multiple_of((p.total / 10).max(1)) || p.step == p.total) {
            eprintln!(
                "pretrain: step {}/{} epoch {} loss {s:.4} lr {:.2e} [{:.0} s]",
                p.step,
                p.total,
                p.epoch + 1,
                p.lr,
                started.elapsed().as_secs_f64()
            );
        }
    };
    lm.pretrain(&sequences, config, &mut report)
        .map_err(|e| e.to_string())?;
    bar.finish();
    lm.save(out).map_err(|e| e.to_string())?;

    let lm = CausalLm::<Cpu>::load(out, &device).map_err(|e| e.to_string())?;
    let accuracy = answer_accuracy(&lm, &tok, &world.fact_tuples()).map_err(|e| e.to_string())?;
    eprintln!("fact accuracy: {:.2}%", 100.0 * accuracy);
    let record = Record {
        world: world.config,
        size,
        pretrain: config,
        init_seed,
        corpus_lines: lines.len(),
        final_loss,
        fact_accuracy: accuracy,
        seconds: started.elapsed().as_secs_f64(),
    };
    let path = out.join("pretrain.json");
    let text = serde_json::to_string_pretty(&record).map_err(|e| e.to_string())? + "\n";
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// The default output folder.
pub fn default_out(root: &Path) -> PathBuf {
    root.join("fixtures/model")
}
