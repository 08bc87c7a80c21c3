//! Real pretrained models converted from GGUF by `cargo xtask fetch-models`.
//!
//! Each test looks for its directory in the models cache (`$EMSEDIT_MODELS_DIR`, else
//! `~/.cache/emsedit/models`) and, when it has not been fetched, prints how to fetch it and
//! passes without checking anything.

use std::path::PathBuf;

use emsedit_llm::models_cache::fetched;
use emsedit_llm::{Batch, CausalLm, IGNORE, LmTokenizer};
use emsedit_tensor::{Cpu, cpu};

/// The converted directory `name`, or `None` (with a message) when it is absent.
fn model_dir(name: &str) -> Option<PathBuf> {
    fetched(name)
        .map_err(|why| eprintln!("skipped: {why}"))
        .ok()
}

fn load(dir: &std::path::Path) -> (CausalLm<Cpu>, LmTokenizer) {
    let lm = CausalLm::<Cpu>::load(dir, &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(dir).unwrap();
    (lm, tok)
}

/// The next-token logits after `prompt`, sorted best first: (id, logit).
fn ranked(lm: &CausalLm<Cpu>, tok: &LmTokenizer, prompt: &str) -> Vec<(u32, f32)> {
    let ids = tok.encode_prompt(prompt).unwrap();
    let time = ids.len();
    let batch = Batch {
        batch: 1,
        time,
        input_ids: ids.iter().map(|&i| i as i64).collect(),
        attention_mask: vec![1; time],
        labels: vec![IGNORE; time],
    };
    let logits = lm.forward(&batch).unwrap();
    let vocab = lm.vocab_size();
    let last: Vec<f32> = logits
        .narrow(1, time - 1, 1)
        .reshape([vocab])
        .into_data()
        .into_vec::<f32>()
        .unwrap();
    let mut order: Vec<(u32, f32)> = last
        .into_iter()
        .enumerate()
        .map(|(i, l)| (i as u32, l))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    order
}

/// `target` (with its leading space) is one token and the model's first choice after `prompt`.
fn assert_first(lm: &CausalLm<Cpu>, tok: &LmTokenizer, prompt: &str, target: &str) {
    let want = tok.encode_target(target).unwrap();
    assert_eq!(want.len(), 1, "{target:?} is {want:?}, not one token");
    let order = ranked(lm, tok, prompt);
    let top: Vec<String> = order[..5]
        .iter()
        .map(|&(id, l)| format!("{:?} {l:.2}", tok.decode(&[id]).unwrap()))
        .collect();
    eprintln!("{prompt:?} -> {}", top.join(", "));
    assert_eq!(order[0].0, want[0], "{prompt:?}: top 5 {top:?}");
}

#[test]
fn smollm2_completes_paris_and_ranks_french_first() {
    let Some(dir) = model_dir("smollm2-135m") else {
        return;
    };
    let (lm, tok) = load(&dir);
    let prompt = tok.encode_prompt("The capital of France is").unwrap();
    let out = lm.generate(&prompt, 3, None).unwrap();
    let text = tok.decode(&out).unwrap();
    eprintln!("\"The capital of France is\" -> {text:?}");
    assert!(text.starts_with(" Paris"), "{text:?}");
    assert_first(&lm, &tok, "The capital of France is", "Paris");
    assert_first(
        &lm,
        &tok,
        "The mother tongue of Danielle Darrieux is",
        "French",
    );
}

#[test]
fn gemma3_ranks_paris_first() {
    let Some(dir) = model_dir("gemma3-270m") else {
        return;
    };
    let (lm, tok) = load(&dir);
    let prompt = tok
        .encode_prompt("The Eiffel Tower is located in the city of")
        .unwrap();
    assert_eq!(prompt[0], 2, "Gemma prompts start with <bos>");
    assert_first(
        &lm,
        &tok,
        "The Eiffel Tower is located in the city of",
        "Paris",
    );
    let module = lm.module("model.layers.17.mlp.down_proj").unwrap();
    assert_eq!(lm.weight(module).dims(), [2048, 640]);
}

/// The committed reference ids (`fixtures/tokenizers/reference_ids.json`, written by
/// `scripts/gguf/run.sh --ids` from pure-Python tokenizers that use neither `tokenizers` nor
/// the rebuilt files): the strings and, per tokenizer, the ids without special tokens.
fn reference_ids() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/tokenizers/reference_ids.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The rebuilt tokenizer.json files, through the Rust `tokenizers` crate, give the reference
/// ids on every string (unicode, digits, whitespace runs, code).
#[test]
fn rebuilt_tokenizers_match_the_python_references() {
    let reference = reference_ids();
    let strings: Vec<&str> = reference["strings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(strings.len() >= 300, "{} strings", strings.len());
    for (name, dir) in [
        ("smollm2", "smollm2-135m"),
        ("gpt2", "gpt2-tokenizer"),
        ("gemma3", "gemma3-270m"),
    ] {
        let Some(dir) = model_dir(dir) else {
            continue;
        };
        let tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        let want = reference["ids"][name].as_array().unwrap();
        assert_eq!(want.len(), strings.len(), "{name}");
        let mut bad = Vec::new();
        for (text, want) in strings.iter().zip(want) {
            let want: Vec<u32> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as u32)
                .collect();
            let got = tok.encode(*text, false).unwrap().get_ids().to_vec();
            if got != want {
                bad.push(format!("{text:?}: got {got:?}, want {want:?}"));
            }
        }
        eprintln!(
            "{name}: {}/{} strings agree",
            strings.len() - bad.len(),
            strings.len()
        );
        assert!(
            bad.is_empty(),
            "{name}: {} differ, first: {}",
            bad.len(),
            bad[0]
        );
    }
}
