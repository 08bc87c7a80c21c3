//! Configs and weights that would compute nonsense are refused at load, naming the key or
//! tensor; sizes from a file never size an allocation on their own.

use emsedit_llm::config::ModelConfig;
use emsedit_llm::layers::MAX_ROPE_POSITIONS;
use emsedit_llm::{CausalLm, LlmError, LmTokenizer};
use emsedit_tensor::{Cpu, cpu};

use crate::errors::{edit_config, scratch};
use crate::golden::fixture;

fn config_error(
    family: &str,
    tag: &str,
    f: impl FnOnce(&mut serde_json::Value),
) -> (String, String) {
    let dir = scratch(family, tag);
    edit_config(&dir, f);
    match CausalLm::<Cpu>::load(&dir, &cpu()).unwrap_err() {
        LlmError::Config { field, detail, .. } => (field, detail),
        other => panic!("{tag}: {other}"),
    }
}

#[test]
fn non_positive_or_non_finite_numbers_name_their_key() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, &str, Edit, &str)> = vec![
        (
            "gpt2",
            "eps",
            Box::new(|j| j["layer_norm_epsilon"] = (-1.0).into()),
            "layer_norm_epsilon",
        ),
        (
            "llama",
            "theta",
            Box::new(|j| j["rope_parameters"]["rope_theta"] = 0.into()),
            "rope_parameters.rope_theta",
        ),
        (
            "llama",
            "factor",
            Box::new(|j| j["rope_parameters"]["factor"] = 0.into()),
            "rope_parameters.factor",
        ),
        (
            "llama",
            "rms",
            Box::new(|j| j["rms_norm_eps"] = 0.into()),
            "rms_norm_eps",
        ),
        (
            "gemma2",
            "scalar",
            Box::new(|j| j["query_pre_attn_scalar"] = (-4).into()),
            "query_pre_attn_scalar",
        ),
        (
            "gemma2",
            "cap",
            Box::new(|j| j["final_logit_softcapping"] = 0.into()),
            "final_logit_softcapping",
        ),
        (
            "gemma2",
            "window",
            Box::new(|j| j["sliding_window"] = 0.into()),
            "sliding_window",
        ),
        (
            "gpt2",
            "layers0",
            Box::new(|j| j["n_layer"] = 0.into()),
            "n_layer",
        ),
    ];
    for (family, tag, edit, key) in cases {
        let (field, detail) = config_error(family, tag, edit);
        assert_eq!(field, key, "{tag}: {detail}");
    }
}

#[test]
fn type_errors_name_the_key_not_the_value() {
    let (field, detail) = config_error("gpt2", "float", |j| j["n_embd"] = 128.5.into());
    assert_eq!(field, "n_embd", "{detail}");
    let (field, detail) = config_error("llama", "nested", |j| {
        j["rope_parameters"]["factor"] = "eight".into()
    });
    assert_eq!(field, "rope_parameters.factor", "{detail}");
}

#[test]
fn unimplemented_keys_that_change_the_computation_are_refused() {
    let (field, _) = config_error("gemma2", "bidir", |j| {
        j["use_bidirectional_attention"] = true.into()
    });
    assert_eq!(field, "use_bidirectional_attention");
    let (field, _) = config_error("llama", "slide", |j| j["sliding_window"] = 16.into());
    assert_eq!(field, "sliding_window");
    // Harmless values of the same keys load.
    let dir = scratch("gemma2", "bidir-off");
    edit_config(&dir, |j| j["use_bidirectional_attention"] = false.into());
    assert!(CausalLm::<Cpu>::load(&dir, &cpu()).is_ok());
}

#[test]
fn sliding_window_pattern_is_honoured() {
    let dir = scratch("gemma2", "pattern");
    let path = dir.join("config.json");
    let read = |f: &dyn Fn(&mut serde_json::Value)| {
        edit_config(&dir, f);
        match ModelConfig::load(&path).unwrap() {
            ModelConfig::Gemma2(c) => (0..6).map(|i| c.is_sliding(i)).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        }
    };
    // transformers 4.50–4.52 Gemma-3 configs: no layer_types, a pattern.
    let gemma3 = |pattern: Option<usize>| {
        move |j: &mut serde_json::Value| {
            j["model_type"] = "gemma3_text".into();
            j.as_object_mut().unwrap().remove("layer_types");
            j["sliding_window_pattern"] = pattern.map_or(serde_json::Value::Null, Into::into);
        }
    };
    assert_eq!(
        read(&gemma3(Some(2))),
        [true, false, true, false, true, false]
    );
    assert_eq!(read(&gemma3(None)), [true, true, true, true, true, false]);
    assert_eq!(
        read(&gemma3(Some(3))),
        [true, true, false, true, true, false]
    );
    edit_config(&dir, gemma3(Some(0)));
    assert!(ModelConfig::load(&path).is_err());
}

#[test]
fn non_finite_weights_name_the_tensor() {
    let dir = scratch("gpt2", "nan");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let [start, _] = serde_json::from_value::<[usize; 2]>(
        header["transformer.ln_f.weight"]["data_offsets"].clone(),
    )
    .unwrap();
    let mut bytes = bytes.clone();
    let at = 8 + n + start + 4;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let err = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap_err();
    assert!(
        matches!(&err, LlmError::NonFiniteTensor { name, .. } if name == "transformer.ln_f.weight"),
        "{err}"
    );
}

#[test]
fn tensors_the_config_does_not_use_are_listed() {
    let dir = scratch("gpt2", "fewer-layers");
    edit_config(&dir, |j| j["n_layer"] = 1.into());
    let err = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap_err();
    let LlmError::UnusedTensors { names, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        names.iter().all(|n| !n.starts_with("transformer.h.0.")),
        "{err}"
    );
    assert!(
        names.contains(&"transformer.h.1.mlp.c_proj.weight".to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("does not use"), "{err}");
}

#[test]
fn a_huge_context_does_not_size_the_rotary_tables() {
    let dir = scratch("llama", "context");
    edit_config(&dir, |j| {
        j["max_position_embeddings"] = 100_000_000u64.into()
    });
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    assert_eq!(lm.context_len(), MAX_ROPE_POSITIONS);
    // Beyond any model: refused, naming the key.
    let (field, _) = config_error("llama", "context-huge", |j| {
        j["max_position_embeddings"] = 1_000_000_000_000u64.into()
    });
    assert_eq!(field, "max_position_embeddings");
}

#[test]
fn a_tokenizer_of_another_model_is_refused() {
    let llama = LmTokenizer::load_dir(&fixture("llama")).unwrap();
    llama.check_vocab(482).unwrap();
    let err = llama.check_vocab(1024).unwrap_err();
    assert!(
        matches!(
            err,
            LlmError::VocabMismatch {
                tokenizer: 482,
                model: 1024,
                ..
            }
        ),
        "{err}"
    );
    assert!(llama.check_vocab(400).is_err());
}
