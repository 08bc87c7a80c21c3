//! `--export-reference DIR`: each cell also writes what the reference code needs to rerun it
//! from the same state (`scripts/reference/paired.py`): `DIR/<key>/case.json` with the
//! editor's settings and the token batches the run trains and edits on, and
//! `DIR/<key>/init.safetensors`, the untrained networks (the checkpoint format of
//! [`HyperEditor::save`], drawn with the cell's seed exactly as the run draws them).

use std::path::Path;

use emsedit::eval::data::MicroBatch;
use emsedit::eval::scenario::{Report, Run, prepare, run};
use emsedit::llm::Batch;
use emsedit::meta::{EditBatch, Editor, HyperEditor};
use emsedit::methods::EditorConfig;
use emsedit::tensor::burn::tensor::backend::Backend;
use serde_json::{Value, json};

use super::matrix::Cell;

fn batch(b: &Batch) -> Value {
    json!({
        "batch": b.batch,
        "time": b.time,
        "input_ids": b.input_ids,
        "attention_mask": b.attention_mask,
        "labels": b.labels,
    })
}

fn edit_batch(b: &EditBatch) -> Value {
    let kind = |m: &[Batch]| m.iter().map(batch).collect::<Vec<_>>();
    json!({
        "records": b.records,
        "edit": kind(&b.edit),
        "equiv": kind(&b.equiv),
        "unrel": kind(&b.unrel),
    })
}

/// A scoring micro-batch: the tokens, and CounterFact's old labels (rows × old_width).
fn scored(m: &MicroBatch) -> Value {
    let mut v = batch(&m.batch);
    if let Some(old) = &m.old_labels {
        v["old_labels"] = json!(old);
        v["old_width"] = json!(m.old_width);
    }
    v
}

/// Runs `cell` as the runner does, after writing its reference inputs under `dir`.
pub fn run_exported<B: Backend>(input: &Run<B>, cell: &Cell, dir: &Path) -> Result<Report, String> {
    let config = match cell
        .method
        .config(cell.modules.clone(), &cell.scenario)
        .map_err(|e| e.to_string())?
    {
        EditorConfig::Hyper(c) => c,
        _ => {
            return Err(format!(
                "{}: --export-reference supports the hypernetwork editors only",
                cell.id
            ));
        }
    };
    let mut editor = HyperEditor::<B>::new(config.clone());
    let dir = dir.join(&cell.key);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Saving builds the networks: the draws the run would make when training starts.
    let init = dir.join("init.safetensors");
    editor
        .save(input.model, &init)
        .map_err(|e| format!("{}: {e}", init.display()))?;
    let train_batches = cell
        .scenario
        .train_batches
        .unwrap_or_else(|| editor.train_batches(cell.scenario.num_seq));
    let prepared = prepare(input, &cell.scenario, train_batches).map_err(|e| e.to_string())?;
    let eval: Vec<Value> = prepared
        .eval_batches
        .iter()
        .map(|b| {
            let [edit, equiv, unrel] = &b.kinds;
            let kind = |m: &[MicroBatch]| m.iter().map(scored).collect::<Vec<_>>();
            json!({
                "batch": edit_batch(&b.batch),
                "score": {"edit": kind(edit), "equiv": kind(equiv), "unrel": kind(unrel)},
            })
        })
        .collect();
    let case = json!({
        "about": "A cell's inputs for the reference code (xtask/src/reproduce/export.rs).",
        "id": cell.id,
        "key": cell.key,
        "model": cell.model_path,
        "editor": config,
        "scenario": cell.scenario,
        "train": prepared.train_batches.iter().map(edit_batch).collect::<Vec<_>>(),
        "eval": eval,
    });
    let path = dir.join("case.json");
    let text = serde_json::to_string(&case).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    run(&mut editor, input, &cell.scenario).map_err(|e| e.to_string())
}
