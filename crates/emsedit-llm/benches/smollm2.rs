//! Raw passes of the real SmolLM2-135M (`common`'s cases) with the 12 edited modules of
//! `src/models.toml`'s sequential list, as PyTorch's `scripts/bench-reference/passes.py` times
//! them.
//!
//! Needs `cargo xtask fetch-models` (the models cache: `$EMSEDIT_MODELS_DIR`, else
//! `~/.cache/emsedit/models`). `cargo bench -p emsedit-llm --bench smollm2`.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let names: Vec<String> = (10..15)
        .map(|i| format!("model.layers.{i}.mlp.gate_proj"))
        .chain((17..24).map(|i| format!("model.layers.{i}.mlp.up_proj")))
        .collect();
    common::bench_model(c, "smollm2-135m", "smollm2_b8x11", &names);
}

criterion_group!(benches, bench);
criterion_main!(benches);
