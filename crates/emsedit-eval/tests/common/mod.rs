//! Setup shared by integration tests: the embedded GPT-2 fixture and edit batches of a small
//! synthetic fact world.

use std::path::Path;

use emsedit_eval::scenario::edit_batches;
use emsedit_eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_meta::EditBatch;
use emsedit_tensor::{Cpu, cpu};

/// The fixture model and the edit batches (4 records each, micro-batches of 4) of a world
/// with `records` train records (seed 3, 40 subjects).
pub fn fixture_and_batches(records: usize) -> (CausalLm<Cpu>, Vec<EditBatch>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/llm/gpt2");
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    let world = FactWorld::generate(WorldConfig {
        seed: 3,
        subjects: 40,
        train_records: records,
        eval_records: records,
    });
    let batches = edit_batches(&tok, &world.zsre_records(Split::Train), 4, 4, false)
        .unwrap()
        .into_iter()
        .map(|b| b.batch)
        .collect();
    (lm, batches)
}
