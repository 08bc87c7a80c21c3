//! Bad inputs answer with errors that name the file, tensor, field or module.

use std::path::Path;

use emsedit_llm::{Batch, CausalLm, LlmError};
use emsedit_tensor::{Cpu, cpu};

use crate::golden::fixture;

/// A scratch copy of a fixture directory.
pub fn scratch(family: &str, tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("emsedit-llm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture(family).join(f), dir.join(f)).unwrap();
    }
    dir
}

pub fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut json);
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
}

fn load(dir: &Path) -> LlmError {
    CausalLm::<Cpu>::load(dir, &cpu()).unwrap_err()
}

#[test]
fn config_shape_disagreeing_with_weights_names_the_tensor() {
    let dir = scratch("gpt2", "shape");
    edit_config(&dir, |j| j["n_embd"] = 48.into());
    let err = load(&dir);
    assert!(matches!(err, LlmError::TensorShape { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("transformer.h.0"),
        "{msg}"
    );
}

#[test]
fn unknown_model_type_and_missing_field_name_the_field() {
    let dir = scratch("gpt2", "type");
    edit_config(&dir, |j| j["model_type"] = "mamba".into());
    let err = load(&dir);
    assert!(
        matches!(err, LlmError::UnknownModelType { .. }) && err.to_string().contains("mamba"),
        "{err}"
    );

    edit_config(&dir, |j| {
        j["model_type"] = "gpt2".into();
        j.as_object_mut().unwrap().remove("n_layer");
    });
    let err = load(&dir);
    assert!(
        matches!(&err, LlmError::Config { field, .. } if field == "n_layer"),
        "{err}"
    );
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let dir = scratch("gpt2", "missing");
    edit_config(&dir, |j| j["n_layer"] = 4.into());
    let err = load(&dir);
    assert!(
        matches!(&err, LlmError::MissingTensor { name, .. } if name.starts_with("transformer.h.3")),
        "{err}"
    );
}

#[test]
fn unknown_module_and_overlong_batch_are_errors() {
    let lm = CausalLm::<Cpu>::load(&fixture("gpt2"), &cpu()).unwrap();
    for bad in [
        "transformer.h.9.mlp.c_proj",
        "transformer.h.1.mlp.fc_out",
        "model.layers.1.mlp.up_proj",
    ] {
        let err = lm.module(bad).unwrap_err();
        assert!(
            matches!(err, LlmError::UnknownModule { .. }) && err.to_string().contains(bad),
            "{err}"
        );
    }
    let time = lm.context_len() + 1;
    let long = Batch {
        batch: 1,
        time,
        input_ids: vec![1; time],
        attention_mask: vec![1; time],
        labels: vec![-100; time],
    };
    let err = lm.forward(&long).unwrap_err();
    assert!(err.to_string().contains("context"), "{err}");
    let bad_id = Batch {
        input_ids: vec![100_000],
        attention_mask: vec![1],
        labels: vec![5],
        batch: 1,
        time: 1,
    };
    assert!(
        lm.forward(&bad_id)
            .unwrap_err()
            .to_string()
            .contains("input_ids[0][0]")
    );
}
