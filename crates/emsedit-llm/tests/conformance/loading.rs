//! Sharded checkpoints and half-precision weights load through the same path.

use std::collections::HashMap;

use emsedit_llm::CausalLm;
use emsedit_tensor::{Cpu, cpu};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::golden::{Golden, fixture, max_abs_diff, values};

/// Rewrites the gpt2 fixture as two shards plus an index, the second shard in `dtype`.
fn shard(dtype: Dtype, tag: &str) -> std::path::PathBuf {
    let src = fixture("gpt2");
    let dir = std::env::temp_dir().join(format!("emsedit-shards-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(|n| n.to_string()).collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (i, part) in [first, second].into_iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let mut data: HashMap<String, (Vec<usize>, Vec<u8>)> = HashMap::new();
        for name in part {
            let view = st.tensor(name).unwrap();
            let floats: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            let raw = match (i, dtype) {
                (1, Dtype::BF16) => floats
                    .iter()
                    .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                    .collect(),
                (1, Dtype::F16) => floats
                    .iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
                _ => view.data().to_vec(),
            };
            data.insert(name.clone(), (view.shape().to_vec(), raw));
            weight_map.insert(name.clone(), file.clone().into());
        }
        let views: Vec<(String, TensorView)> = data
            .iter()
            .map(|(n, (shape, raw))| {
                let dt = if i == 1 { dtype } else { Dtype::F32 };
                (n.clone(), TensorView::new(dt, shape.clone(), raw).unwrap())
            })
            .collect();
        safetensors::serialize_to_file(views, None, &dir.join(&file)).unwrap();
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    dir
}

#[test]
fn sharded_f32_checkpoint_gives_the_same_logits() {
    let dir = shard(Dtype::F32, "f32");
    let golden = Golden::load("gpt2");
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let (_, logits) = values(lm.forward(&golden.batch()).unwrap());
    assert!(max_abs_diff(&logits, &golden.get("logits").1) <= 1e-4);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bf16_and_f16_shards_are_widened_to_f32() {
    for (dtype, tag) in [(Dtype::BF16, "bf16"), (Dtype::F16, "f16")] {
        let dir = shard(dtype, tag);
        let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
        let exact = CausalLm::<Cpu>::load(&fixture("gpt2"), &cpu()).unwrap();
        // transformer.h.2.* sorts into the second (half-precision) shard.
        let id = lm.module("transformer.h.2.mlp.c_proj").unwrap();
        let (_, got) = values(lm.weight(id));
        let (_, want) = values(exact.weight(id));
        let rounded: Vec<f64> = want
            .iter()
            .map(|&x| match dtype {
                Dtype::BF16 => half::bf16::from_f32(x as f32).to_f32() as f64,
                _ => half::f16::from_f32(x as f32).to_f32() as f64,
            })
            .collect();
        assert_eq!(got, rounded, "{tag}");
        assert_ne!(got, want, "{tag}: rounding should be visible");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
