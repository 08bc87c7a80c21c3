//! The library API in brief: train EMSEdit's hypernetwork on a few edits, edit one fact, and
//! generate before and after.
//!
//! `cargo run --release --example edit_one [-- MODEL_DIR]`

use emsedit::eval::scenario::edit_batches;
use emsedit::eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit::methods::{MethodSpec, Mode, Overrides, default_modules};
use emsedit::{CausalLm, Cpu, LmTokenizer, ScenarioConfig, cpu, seed};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model"),
        Into::into,
    );
    let (device, tok) = (cpu(), LmTokenizer::load_dir(&dir)?);
    let mut lm = CausalLm::<Cpu>::load(&dir, &device)?;
    let world = FactWorld::generate(WorldConfig::default());
    let (train, fact) = (
        world.zsre_records(Split::Train),
        &world.zsre_records(Split::Eval)[0],
    );
    let complete =
        |lm: &CausalLm<Cpu>, prompt: &str| -> Result<String, Box<dyn std::error::Error>> {
            let stop = tok.token_id("<|endoftext|>");
            Ok(tok.decode(&lm.generate(&tok.encode_prompt(prompt)?, 8, stop)?)?)
        };
    println!("edit: {:?} → {:?}", fact.edit.prompt, fact.edit.target);
    println!("before: {}", complete(&lm, &fact.edit.prompt)?);

    // EMSEdit for sequential editing, at spec §8's CPU scale, trained on 4 batches of 8 edits.
    seed::<Cpu>(&device, 0);
    let scenario = ScenarioConfig::sequential(8, 4);
    let mut spec: MethodSpec = "emsedit".parse()?;
    spec.overrides = Overrides::cpu_scale();
    let mut editor = spec.build::<Cpu>(default_modules(&lm, Mode::Sequential), &scenario)?;
    let stream = edit_batches(&tok, &train[..32], 8, 4, false)?;
    // Training hands `lm` back exactly as it was.
    editor.train(
        &mut lm,
        &stream.into_iter().map(|b| b.batch).collect::<Vec<_>>(),
    )?;

    let edit = edit_batches(&tok, std::slice::from_ref(fact), 1, 4, false)?;
    editor.edit(&mut lm, &edit[0].batch)?;
    println!("after:  {}", complete(&lm, &fact.edit.prompt)?);
    println!(
        "paraphrase {:?}: {}",
        fact.equiv[0].prompt,
        complete(&lm, &fact.equiv[0].prompt)?
    );
    Ok(())
}
