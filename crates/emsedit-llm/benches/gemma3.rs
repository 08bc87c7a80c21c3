//! Raw passes of the real Gemma-3-270M (`common`'s cases) with the 8 edited modules of
//! `src/models.toml`'s sequential list (`gate_proj` and `up_proj` of layers 14–17), as
//! PyTorch's `scripts/bench-reference/passes.py` times them.
//!
//! Needs `cargo xtask fetch-models` (the models cache: `$EMSEDIT_MODELS_DIR`, else
//! `~/.cache/emsedit/models`). `cargo bench -p emsedit-llm --bench gemma3`.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let names: Vec<String> = ["gate_proj", "up_proj"]
        .iter()
        .flat_map(|m| (14..18).map(move |i| format!("model.layers.{i}.mlp.{m}")))
        .collect();
    common::bench_model(c, "gemma3-270m", "gemma3_b8x11", &names);
}

criterion_group!(benches, bench);
criterion_main!(benches);
