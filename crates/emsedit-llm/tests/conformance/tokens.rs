//! Rust tokenization equals the Python `tokenizers` ids in `tokens.json`.

use emsedit_llm::LmTokenizer;

use crate::golden::fixture;

fn check(family: &str) {
    let dir = fixture(family);
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokens.json")).unwrap()).unwrap();
    let cases = cases
        .as_array()
        .or_else(|| cases["cases"].as_array())
        .expect("a list of cases");
    assert!(cases.len() >= 20, "{family}: only {} cases", cases.len());
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    for case in cases {
        let (prompt, target) = (
            case["prompt"].as_str().unwrap(),
            case["target"].as_str().unwrap(),
        );
        assert_eq!(
            tok.encode_prompt(prompt).unwrap(),
            ids(&case["prompt_ids"]),
            "{family}: prompt {prompt:?}"
        );
        assert_eq!(
            tok.encode_target(target).unwrap(),
            ids(&case["target_ids"]),
            "{family}: target {target:?}"
        );
    }
}

#[test]
fn gpt2_tokenizer_matches_python() {
    check("gpt2");
}

#[test]
fn gptj_tokenizer_matches_python() {
    check("gptj");
}

#[test]
fn llama_tokenizer_matches_python() {
    check("llama");
}

#[test]
fn gemma2_tokenizer_matches_python() {
    check("gemma2");
}
