//! Model directories (config.json and the safetensors header), hypernetwork checkpoints, data
//! files, method overrides and scenario sizes.

use emsedit::eval::data::{Dataset, load};
use emsedit::eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit::meta::{HyperEditor, HyperEditorConfig};
use emsedit::methods::{MethodSpec, Overrides};
use emsedit::{Batch, CausalLm, Cpu, LmTokenizer, Run, ScenarioConfig, cpu, run};
use proptest::prelude::*;

use crate::cases::{check, fixture, hostile_json, hostile_u64, scratch};

fn copy_model(family: &str, tag: &str) -> std::path::PathBuf {
    let dir = scratch(tag);
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(
            fixture(&format!("fixtures/llm/{family}")).join(f),
            dir.join(f),
        )
        .unwrap();
    }
    dir
}

/// Loads and, when it loads, runs a forward pass: either may fail, neither may panic.
fn load_and_run(dir: &std::path::Path) {
    if let Ok(lm) = CausalLm::<Cpu>::load(dir, &cpu()) {
        let batch = Batch {
            batch: 1,
            time: 3,
            input_ids: vec![1, 2, 3],
            attention_mask: vec![1; 3],
            labels: vec![-100, 2, 3],
        };
        let _ = lm.forward(&batch);
        let _ = lm.generate(&[1, 2], 2, None);
    }
}

const CONFIG_KEYS: &[(&str, &[&str])] = &[
    (
        "gpt2",
        &[
            "vocab_size",
            "n_positions",
            "n_embd",
            "n_layer",
            "n_head",
            "n_inner",
            "layer_norm_epsilon",
            "activation_function",
            "model_type",
        ],
    ),
    (
        "llama",
        &[
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
            "max_position_embeddings",
            "rms_norm_eps",
            "rope_parameters",
            "tie_word_embeddings",
        ],
    ),
    (
        "gemma2",
        &[
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "head_dim",
            "sliding_window",
            "layer_types",
            "query_pre_attn_scalar",
            "final_logit_softcapping",
            "rope_parameters",
            "max_position_embeddings",
        ],
    ),
];

#[test]
fn model_configs() {
    let strategy = (
        0..CONFIG_KEYS.len(),
        any::<prop::sample::Index>(),
        hostile_json(),
        prop::option::of(("[a-z_.]{1,20}", hostile_json())),
    );
    check(96, strategy, |(family, key, value, nested)| {
        let (name, keys) = CONFIG_KEYS[family];
        let dir = copy_model(name, "config");
        let path = dir.join("config.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json[key.get(keys)] = value;
        if let Some((k, v)) = nested {
            if !json["rope_parameters"].is_object() {
                json["rope_parameters"] = serde_json::json!({});
            }
            json["rope_parameters"][k] = v;
        }
        std::fs::write(&path, json.to_string()).unwrap();
        load_and_run(&dir);
    });
}

#[test]
fn safetensors_headers() {
    let strategy = (
        0usize..4,
        hostile_u64(),
        any::<prop::sample::Index>(),
        any::<u8>(),
    );
    check(96, strategy, |(how, number, at, byte)| {
        let dir = copy_model("gpt2", "safetensors");
        let path = dir.join("model.safetensors");
        let mut bytes = std::fs::read(&path).unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        match how {
            // The header length itself.
            0 => bytes[..8].copy_from_slice(&number.to_le_bytes()),
            // A byte of the JSON header (shapes, offsets, dtypes).
            1 => {
                let i = 8 + at.index(header_len);
                bytes[i] = byte;
            }
            // A number in the header replaced by a hostile one.
            2 => {
                let text = String::from_utf8_lossy(&bytes[8..8 + header_len]).to_string();
                let digits: Vec<usize> = text
                    .match_indices(|c: char| c.is_ascii_digit())
                    .map(|(i, _)| i)
                    .collect();
                let i = digits[at.index(digits.len())];
                let end = text[i..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(text.len(), |e| i + e);
                let new = format!("{}{}{}", &text[..i], number, &text[end..]);
                let mut out = (new.len() as u64).to_le_bytes().to_vec();
                out.extend(new.as_bytes());
                out.extend(&bytes[8 + header_len..]);
                bytes = out;
            }
            // Cut short.
            _ => bytes.truncate(at.index(bytes.len())),
        }
        std::fs::write(&path, bytes).unwrap();
        load_and_run(&dir);
    });
}

#[test]
fn hypernetwork_checkpoints() {
    let lm = CausalLm::<Cpu>::load(&fixture("fixtures/llm/gpt2"), &cpu()).unwrap();
    let mut config = HyperEditorConfig::emsedit_sequential(vec![
        "transformer.h.1.mlp.c_proj".into(),
        "transformer.h.2.mlp.c_proj".into(),
    ]);
    config.hyper.rank = 4;
    config.hyper.blocks = 1;
    let path = scratch("ckpt").join("editor.safetensors");
    HyperEditor::<Cpu>::new(config).save(&lm, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let head: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let keys = [
        "steps",
        "groups",
        "config.steps",
        "config.hyper.rank",
        "config.hyper.blocks",
        "config.hyper.lr",
        "config.meta_lr",
        "config.layout",
        "config.modules",
        "format",
    ];
    let strategy = (
        any::<prop::sample::Index>(),
        hostile_json(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    );
    check(128, strategy, |(key, value, at, byte, flip)| {
        let mut head = head.clone();
        let mut inner: serde_json::Value =
            serde_json::from_str(head["__metadata__"]["emsedit"].as_str().unwrap()).unwrap();
        let mut slot = &mut inner;
        for part in key.get(&keys).split('.') {
            slot = &mut slot[part];
        }
        *slot = value;
        head["__metadata__"]["emsedit"] = inner.to_string().into();
        let text = head.to_string();
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend(text.as_bytes());
        out.extend(&bytes[8 + header_len..]);
        if flip {
            let i = at.index(out.len());
            out[i] = byte;
        }
        let file = scratch("ckpt-case").join("e.safetensors");
        std::fs::write(&file, out).unwrap();
        let _ = HyperEditor::<Cpu>::load(&lm, &file);
    });
}

fn record_strategy() -> impl Strategy<Value = serde_json::Value> {
    let fields = [
        "src",
        "rephrase",
        "alt",
        "loc",
        "loc_ans",
        "prompt",
        "target_new",
        "ground_truth",
        "rephrase_prompt",
        "locality_prompt",
        "locality_ground_truth",
        "requested_rewrite",
        "paraphrase_prompts",
        "neighborhood_prompts",
        "edit",
        "Relation_Specificity",
        "Subject_Aliasing",
        "Compositionality_I",
        "subject",
    ];
    let value = prop_oneof![
        3 => hostile_json(),
        1 => Just(serde_json::json!({"prompt": "A is B.", "original_fact": {"prompt": "A is C."}})),
        1 => Just(serde_json::json!({"prompt": "{} is", "subject": "A", "target_new": {"str": "B"}, "target_true": {"str": "C"}})),
        1 => Just(serde_json::json!([{"test_queries": [{"prompt": "p", "answers": [{"value": "v", "aliases": ["a", 3]}]}], "test_condition": "XOR"}])),
    ];
    prop::collection::vec((prop::sample::select(fields.to_vec()), value), 0..12).prop_map(|kv| {
        serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    })
}

#[test]
fn data_files() {
    let datasets = [
        Dataset::Zsre,
        Dataset::CounterfactTrain,
        Dataset::CounterfactEval,
        Dataset::Ripple,
    ];
    let strategy = (
        prop::collection::vec(record_strategy(), 0..6),
        0..datasets.len(),
        prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    );
    check(256, strategy, |(records, ds, corrupt)| {
        let mut bytes = serde_json::to_vec(&records).unwrap();
        if let Some((at, b)) = corrupt.filter(|_| !bytes.is_empty()) {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let path = scratch("data").join("data.json");
        std::fs::write(&path, bytes).unwrap();
        if let Ok(loaded) = load(&path, datasets[ds]) {
            let _ = loaded.strict();
        }
    });
}

#[test]
fn overrides_and_scenario_sizes() {
    let dir = fixture("fixtures/llm/gpt2");
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    let world = FactWorld::generate(WorldConfig {
        seed: 1,
        subjects: 40,
        train_records: 6,
        eval_records: 6,
    });
    let (train, eval) = (
        world.zsre_records(Split::Train),
        world.zsre_records(Split::Eval),
    );
    let size = || {
        prop_oneof![
            Just(0usize),
            Just(1),
            Just(2),
            Just(3),
            Just(usize::MAX),
            Just(1 << 40),
            Just(100_000_000)
        ]
    };
    let strategy = (
        prop::sample::select(vec![
            "ft",
            "ultraedit",
            "emsedit",
            "malmen2",
            "rledit",
            "mend",
        ]),
        (size(), size(), size()),
        (size(), size(), size(), size(), size()),
        prop_oneof![
            Just(1e-2),
            Just(0.0),
            Just(-1.0),
            Just(f64::NAN),
            Just(1e300)
        ],
    );
    check(
        64,
        strategy,
        |(method, (steps, rank, blocks), (n, t, b, chunk, epochs), lr)| {
            let Ok(mut spec) = MethodSpec::parse(method) else {
                return;
            };
            spec.overrides = Overrides {
                steps: Some(steps),
                rank: Some(rank),
                blocks: Some(blocks),
                lr: Some(lr),
                ..Overrides::cpu_scale()
            };
            let mut scenario = ScenarioConfig::sequential(n, t);
            scenario.train_batches = Some(b);
            scenario.chunk = chunk;
            scenario.train_epochs = epochs;
            let modules = vec!["transformer.h.2.mlp.c_proj".to_string()];
            let Ok(mut editor) = spec.build::<Cpu>(modules, &scenario) else {
                return;
            };
            let input = Run::new(&lm, &tok, &train, &eval);
            let _ = run(editor.as_mut(), &input, &scenario);
        },
    );
}

#[test]
fn world_sizes() {
    check(
        64,
        (hostile_u64(), hostile_u64(), hostile_u64()),
        |(s, tr, ev)| {
            let config = WorldConfig {
                seed: 0,
                subjects: s as usize,
                train_records: tr as usize,
                eval_records: ev as usize,
            };
            if let Ok(world) = FactWorld::try_generate(config) {
                assert!(world.zsre_records(Split::Train).len() <= 100_000);
            }
        },
    );
}
