//! Forward and forward+backward throughput of a GPT-2-small-shaped model (random weights) at
//! batch 4 × 32 tokens on the CPU backend, backward as the editors run it: to the keys, output
//! gradients and Γ of `transformer.h.{6..11}.mlp.c_proj`.
//!
//! `cargo bench -p emsedit-llm --bench lm`; throughput is in tokens/s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use emsedit_llm::config::Gpt2Config;
use emsedit_llm::{Batch, CausalLm, IGNORE};
use emsedit_tensor::{Cpu, cpu, seed};

const BATCH: usize = 4;
const TIME: usize = 32;

fn gpt2_small() -> Gpt2Config {
    Gpt2Config {
        vocab_size: 50257,
        n_positions: 1024,
        n_embd: 768,
        n_layer: 12,
        n_head: 12,
        n_inner: None,
        activation_function: "gelu_new".into(),
        layer_norm_epsilon: 1e-5,
        scale_attn_weights: true,
        scale_attn_by_inverse_layer_idx: false,
        tie_word_embeddings: true,
    }
}

fn bench(c: &mut Criterion) {
    emsedit_tensor::reuse_freed_memory();
    let device = cpu();
    let mut rng = seed::<Cpu>(&device, 0);
    let lm = CausalLm::<Cpu>::init_gpt2(gpt2_small(), &device);
    let n = BATCH * TIME;
    let input_ids: Vec<i64> = (0..n)
        .map(|_| rand::Rng::random_range(&mut rng, 0..50257))
        .collect();
    // The last 4 positions of every row carry labels, like a 4-token answer.
    let labels = (0..n)
        .map(|i| {
            if i % TIME >= TIME - 4 {
                input_ids[(i + 1) % n]
            } else {
                IGNORE
            }
        })
        .collect();
    let batch = Batch {
        batch: BATCH,
        time: TIME,
        input_ids,
        attention_mask: vec![1; n],
        labels,
    };
    let modules: Vec<_> = (6..12)
        .map(|i| lm.module(&format!("transformer.h.{i}.mlp.c_proj")).unwrap())
        .collect();
    let mut group = c.benchmark_group("gpt2_small_b4x32");
    group
        .throughput(Throughput::Elements(n as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("forward", |b| {
        b.iter(|| black_box(lm.forward(&batch).unwrap().into_data()))
    });
    group.bench_function("forward_backward_edit_hooks", |b| {
        b.iter(|| {
            let g = lm.edit_gradients(&batch, &modules).unwrap();
            black_box(g.gammas[0].clone().into_data())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
