//! FT's loss threshold (EasyEdit FT-L): no step on a micro-batch already below it, and no
//! pass after the first whose mean loss is below it.

mod common;

use emsedit_llm::CausalLm;
use emsedit_meta::{EditBatch, Editor, Ft, FtConfig};
use emsedit_tensor::Cpu;

const MODULE: &str = "transformer.h.2.mlp.c_proj";

fn setup() -> (CausalLm<Cpu>, EditBatch) {
    let (lm, mut batches) = common::fixture_and_batches(4);
    (lm, batches.remove(0))
}

fn weight_bits(lm: &CausalLm<Cpu>) -> Vec<u32> {
    let w = lm.weight(lm.module(MODULE).unwrap());
    let v: Vec<f32> = w.into_data().convert::<f32>().into_vec().unwrap();
    v.iter().map(|x| x.to_bits()).collect()
}

fn ft(steps: usize, stop_loss: Option<f32>) -> Ft {
    let mut c = FtConfig::new(vec![MODULE.into()]);
    c.lr = 1e-2;
    c.steps = steps;
    c.stop_loss = stop_loss;
    Ft::new(c)
}

/// The edit batch's loss and the module's bits after an FT edit of `steps` passes.
fn after(lm: &CausalLm<Cpu>, batch: &EditBatch, editor: &mut Ft) -> (f32, Vec<u32>) {
    let mut lm = lm.clone();
    editor.edit(&mut lm, batch).unwrap();
    let m = lm.module(MODULE).unwrap();
    let loss = lm.edit_gradients(&batch.edit[0], &[m]).unwrap().loss;
    (loss, weight_bits(&lm))
}

#[test]
fn ft_stops_at_the_first_pass_below_the_threshold() {
    let (lm, batch) = setup();
    assert_eq!(batch.edit.len(), 1, "one micro-batch per pass");
    let m = lm.module(MODULE).unwrap();
    let start = lm.edit_gradients(&batch.edit[0], &[m]).unwrap().loss;
    let (late, _) = after(&lm, &batch, &mut ft(20, None));
    assert!(late < start);
    // Halfway between the loss before and after 20 passes: crossed after about 10.
    let threshold = (start + late) / 2.0;

    // Without the threshold: the first pass count whose result is below it.
    let (passes, bits) = (0..25)
        .find_map(|q| {
            let (loss, bits) = after(&lm, &batch, &mut ft(q, None));
            (loss < threshold).then_some((q, bits))
        })
        .expect("20 passes bring the loss below the threshold");
    assert!(passes >= 1);

    // With it: pass `passes + 1` finds the loss below, takes no step and stops there, so the
    // weights are those of `passes` unthresholded passes, not of 25.
    let mut editor = ft(25, Some(threshold));
    let (loss, stopped) = after(&lm, &batch, &mut editor);
    assert!(stopped == bits, "stopped after {passes} passes");
    assert_eq!(editor.last_passes(), passes + 1);
    assert!(loss < threshold);
    let mut editor = ft(25, None);
    let (_, all) = after(&lm, &batch, &mut editor);
    assert!(all != stopped, "25 passes went further");
    assert_eq!(editor.last_passes(), 25);
}

#[test]
fn ft_takes_no_step_below_the_threshold() {
    let (lm, batch) = setup();
    let before = weight_bits(&lm);
    let (_, bits) = after(&lm, &batch, &mut ft(25, Some(f32::MAX)));
    assert!(bits == before);
    let (_, bits) = after(&lm, &batch, &mut ft(1, None));
    assert!(bits != before);
}
