//! The raw-pass cases shared by the `smollm2` and `gemma3` benches, on the batch that
//! `scripts/bench-reference/passes.py` times in PyTorch (8 rows × 11 tokens, the last 3
//! labelled): the forward with every logit, the forward with the head at the labelled
//! positions only, and the forward + backward an edit step runs (keys, output gradients and Γ
//! of the edited modules), from the embeddings and from the prefix cache; and the same 8 rows
//! as two micro-batches of 4 (the spec's edit micro-batches, one pass each): what a pass costs
//! beyond its tokens (docs/performance.md); and those two packed into rows
//! (`CausalLm::edit_gradients_packed`, what the editors run), split into a pass per core (the
//! CPU default, `emsedit_llm::parts`), without Γ (`CausalLm::edit_keys_packed`, CACHE's pass)
//! and as one pass. The cases before the last split their rows the same way. Beside them, the
//! uncached pass with the head's loss through autodiff instead of
//! [`emsedit_llm::head_loss`]'s one sweep, and the head alone at 12 rows both ways.

use std::hint::black_box;
use std::time::Duration;

use burn::backend::Autodiff;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use criterion::BenchmarkGroup;
use criterion::Criterion;
use criterion::measurement::WallTime;
use emsedit_llm::head_loss::{HEAD_BLOCK_ROWS, head_nll};
use emsedit_llm::layers::lm_logits;
use emsedit_llm::{Batch, CausalLm, IGNORE};
use emsedit_tensor::{Cpu, cpu};

const BATCH: usize = 8;
const TIME: usize = 11;
const ANSWER: usize = 3;

/// Deterministic ids, the same as `passes.py`'s.
fn batch(vocab: usize) -> Batch {
    let n = BATCH * TIME;
    let input_ids: Vec<i64> = (0..n).map(|i| ((i * 7919 + 13) % vocab) as i64).collect();
    let labels = (0..n)
        .map(|i| {
            if i % TIME >= TIME - ANSWER {
                input_ids[(i + 1) % n]
            } else {
                IGNORE
            }
        })
        .collect();
    Batch {
        batch: BATCH,
        time: TIME,
        input_ids,
        attention_mask: vec![1; n],
        labels,
    }
}

/// Runs every case on the fetched model `dir_name` (under the models cache) with the edited
/// modules `names`, as the criterion group `group`; says why and runs nothing when the model
/// has not been fetched.
pub fn bench_model(c: &mut Criterion, dir_name: &str, group: &str, names: &[String]) {
    emsedit_tensor::reuse_freed_memory();
    let dir = match emsedit_llm::models_cache::fetched(dir_name) {
        Ok(dir) => dir,
        Err(why) => {
            eprintln!("{group} bench: {why}");
            return;
        }
    };
    let mut lm = CausalLm::<Cpu>::load(&dir, &cpu()).expect("the converted model loads");
    let batch = batch(lm.vocab_size());
    let modules: Vec<_> = names
        .iter()
        .map(|n| lm.module(n).expect("module"))
        .collect();

    let mut group = c.benchmark_group(group);
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.bench_function("forward_all_logits", |b| {
        b.iter(|| black_box(lm.forward(&batch).unwrap().into_data()))
    });
    group.bench_function("forward_label_logits", |b| {
        b.iter(|| black_box(lm.label_logits(&batch).unwrap().into_data()))
    });
    // From the embeddings, then with the prefix cache on (every pass after the first hits it).
    for (name, cached) in [
        ("forward_backward_edit_hooks", false),
        ("forward_backward_edit_hooks_prefix_cached", true),
    ] {
        if cached {
            lm.start_prefix_cache(&modules);
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                let g = lm.edit_gradients(&batch, &modules).unwrap();
                black_box(g.gammas[0].clone().into_data())
            })
        });
    }
    // The uncached pass with the head through autodiff (reads E twice) instead of one sweep.
    lm.stop_prefix_cache();
    lm.set_head_sweep(false);
    group.bench_function("forward_backward_edit_hooks_autodiff_head", |b| {
        b.iter(|| {
            let g = lm.edit_gradients(&batch, &modules).unwrap();
            black_box(g.gammas[0].clone().into_data())
        })
    });
    lm.set_head_sweep(true);
    head_cases(&mut group, &lm);
    lm.start_prefix_cache(&modules);
    // The same rows as two passes of 4 (the cache is still on: both halves hit it).
    let halves = [half(&batch, 0), half(&batch, 1)];
    group.bench_function("two_micro_batches_of_4_prefix_cached", |b| {
        b.iter(|| {
            for h in &halves {
                let g = lm.edit_gradients(h, &modules).unwrap();
                black_box(g.gammas[0].clone().into_data());
            }
        })
    });
    // The same two micro-batches packed into one row, one pass (what the editors run now).
    group.bench_function("two_micro_batches_of_4_packed_prefix_cached", |b| {
        b.iter(|| {
            let g = lm.edit_gradients_packed(&halves, &modules).unwrap();
            black_box(g.gammas[0].clone().into_data());
        })
    });
    // The same pass without Γ (CACHE's: keys and output gradients only).
    group.bench_function(
        "two_micro_batches_of_4_packed_prefix_cached_no_gamma",
        |b| {
            b.iter(|| {
                let g = lm.edit_keys_packed(&halves, &modules).unwrap();
                black_box(g.keys[0].clone().into_data());
            })
        },
    );
    // The same packed pass unsplit: one pass over both rows instead of one per core.
    lm.set_pass_parts(1);
    group.bench_function("two_micro_batches_of_4_packed_one_pass", |b| {
        b.iter(|| {
            let g = lm.edit_gradients_packed(&halves, &modules).unwrap();
            black_box(g.gammas[0].clone().into_data());
        })
    });
    lm.set_pass_parts(emsedit_llm::parts::CPU_PASS_PARTS);
    lm.stop_prefix_cache();
    shift_cases(&mut group, &mut lm, &batch, &modules);
    group.finish();
}

/// An edit's `W + Δ` on every edited module (row-major Δ, as the editors make them), and
/// the uncached forward + backward on the model the shifts left.
fn shift_cases(
    group: &mut BenchmarkGroup<'_, WallTime>,
    lm: &mut CausalLm<Cpu>,
    batch: &Batch,
    modules: &[emsedit_llm::ModuleId],
) {
    let shifts: Vec<Tensor<Cpu, 2>> = modules
        .iter()
        .map(|&m| Tensor::full(lm.weight(m).dims(), 1e-7, &cpu()))
        .collect();
    group.bench_function("apply_shifts_edited_modules", |b| {
        b.iter(|| {
            for (&m, s) in modules.iter().zip(&shifts) {
                black_box(lm.apply_shift(m, s).unwrap());
            }
        })
    });
    group.bench_function("forward_backward_edit_hooks_after_shifts", |b| {
        b.iter(|| {
            let g = lm.edit_gradients(batch, modules).unwrap();
            black_box(g.gammas[0].clone().into_data())
        })
    });
}

/// Rows `[4i, 4i + 4)` of the bench batch.
fn half(batch: &Batch, i: usize) -> Batch {
    let rows = BATCH / 2;
    let span = i * rows * TIME..(i + 1) * rows * TIME;
    Batch {
        batch: rows,
        time: TIME,
        input_ids: batch.input_ids[span.clone()].to_vec(),
        attention_mask: batch.attention_mask[span.clone()].to_vec(),
        labels: batch.labels[span].to_vec(),
    }
}

/// The head alone at one part's 12 labelled rows: the loss and its input gradient through
/// autodiff against [`head_nll`]'s one sweep.
fn head_cases(group: &mut BenchmarkGroup<'_, WallTime>, lm: &CausalLm<Cpu>) {
    let Some(e) = lm.plain_head() else { return };
    let [vocab, d] = e.dims();
    let n = 12;
    let h: Vec<f32> = (0..n * d)
        .map(|i| ((i * 31) % 97) as f32 / 97.0 - 0.5)
        .collect();
    let h = Tensor::<Cpu, 2>::from_data(TensorData::new(h, [n, d]), &cpu());
    let ids: Vec<i64> = (0..n as i64).map(|i| (i * 7919) % vocab as i64).collect();
    let e_ad = Tensor::<Autodiff<Cpu>, 2>::from_inner(e.clone());
    group.bench_function("head_12_rows_autodiff", |b| {
        b.iter(|| {
            let x = Tensor::<Autodiff<Cpu>, 2>::from_inner(h.clone()).require_grad();
            let logits = lm_logits(x.clone().unsqueeze::<3>(), &e_ad).reshape([n, vocab]);
            let t = Tensor::from_data(TensorData::new(ids.clone(), [n, 1]), &cpu());
            let loss = log_softmax(logits, 1).gather(1, t).sum().neg();
            let grads = loss.backward();
            black_box(x.grad(&grads).unwrap().into_data())
        })
    });
    group.bench_function("head_12_rows_sweep", |b| {
        b.iter(|| {
            let t = Tensor::<Cpu, 1, Int>::from_data(TensorData::new(ids.clone(), [n]), &cpu());
            let (nll, g) = head_nll(h.clone(), &e, t, HEAD_BLOCK_ROWS);
            black_box((nll.into_data(), g.into_data()))
        })
    });
}
