//! What each command does, on the library's public API.

use std::path::{Path, PathBuf};
use std::time::Instant;

use emsedit::eval::data::{Dataset, EditRecord, detect, load, load_facts, skip_summary};
use emsedit::eval::scenario::{edit_batches, evaluate};
use emsedit::llm::export::save_edited;
use emsedit::llm::patch::Patch;
use emsedit::meta::{Editor, HyperEditor};
use emsedit::methods::{EditorConfig, MethodSpec, Mode, Overrides, default_modules};
use emsedit::models::NamedModel;
use emsedit::{CausalLm, Cpu, LmTokenizer, ModuleId, ScenarioConfig, Scores, cpu, seed};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::{Cli, Command, ModelArg, PatchAction};

type Error = Box<dyn std::error::Error>;

/// A loaded model, where it came from, and its defaults.
struct Model {
    lm: CausalLm<Cpu>,
    tok: LmTokenizer,
    named: Option<NamedModel>,
}

fn load_model(arg: &ModelArg) -> Result<Model, Error> {
    let as_dir = PathBuf::from(&arg.model);
    let (dir, named) = if as_dir.join("config.json").is_file() {
        (as_dir, None)
    } else if as_dir.is_dir() {
        return Err(format!(
            "{}: no config.json (not a model directory)",
            as_dir.display()
        )
        .into());
    } else {
        let named = NamedModel::get(&arg.model)
            .map_err(|e| format!("{e}, and no directory `{}` exists", arg.model))?;
        let dir = named.dir();
        if !dir.join("config.json").is_file() {
            return Err(format!(
                "{}: not there yet (run `cargo xtask fetch-models` for the real models)",
                dir.display()
            )
            .into());
        }
        (dir, Some(named))
    };
    let lm = CausalLm::<Cpu>::load(&dir, &cpu())?;
    let tok = LmTokenizer::load_dir(&dir)?;
    tok.check_vocab(lm.vocab_size())?;
    Ok(Model { lm, tok, named })
}

impl Model {
    /// The edited modules and the hypernetwork scale for `mode`.
    fn defaults(&self, mode: Mode) -> (Vec<String>, Overrides) {
        match &self.named {
            Some(m) => (m.modules(mode).to_vec(), m.overrides()),
            None => {
                let modules = default_modules(&self.lm, mode);
                let narrow = self
                    .lm
                    .module(&modules[0])
                    .map(|id| self.lm.weight(id).dims().into_iter().min().unwrap_or(0) < 512)
                    .unwrap_or(true);
                let scale = if narrow {
                    Overrides::cpu_scale()
                } else {
                    Overrides::default()
                };
                (modules, scale)
            }
        }
    }
}

fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn records(path: &Path, train: bool) -> Result<Vec<EditRecord>, Error> {
    let format = match detect(path)? {
        Dataset::CounterfactEval if train => Dataset::CounterfactTrain,
        other => other,
    };
    let loaded = load(path, format)?;
    let note = skip_summary(&loaded.skipped);
    if !note.is_empty() {
        eprintln!("{}: {note}", path.display());
    }
    Ok(loaded.records)
}

fn facts(path: &Path) -> Result<Vec<EditRecord>, Error> {
    let loaded = load_facts(path)?;
    let note = skip_summary(&loaded.skipped);
    if !note.is_empty() {
        eprintln!("{}: {note}", path.display());
    }
    if loaded.records.is_empty() {
        return Err(format!("{}: no facts to use", path.display()).into());
    }
    Ok(loaded.records)
}

fn with_patches(lm: &mut CausalLm<Cpu>, patches: &[PathBuf]) -> Result<(), Error> {
    for p in patches {
        Patch::load(p)?
            .apply(lm)
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

/// Runs the command.
pub fn run(cli: &Cli) -> Result<(), Error> {
    let quiet = cli.json;
    match &cli.command {
        Command::Train {
            model,
            method,
            data,
            n_edits,
            batches,
            batch,
            epochs,
            seed: s,
            steps,
            out,
        } => {
            let m = load_model(model)?;
            let mut train = records(data, true)?;
            let n = (*n_edits).max(1);
            let available = train.len() / n;
            let count = batches.unwrap_or(available);
            if count == 0 || count > available {
                return Err(format!(
                    "{}: {} usable records make {available} batches of {n}; {count} asked",
                    data.display(),
                    train.len()
                )
                .into());
            }
            train.truncate(count * n);
            let scenario = if *batch {
                ScenarioConfig::batch(n)
            } else {
                ScenarioConfig::sequential(n, count.max(2))
            };
            let mode = Mode::of(&scenario);
            let (modules, scale) = m.defaults(mode);
            let mut spec: MethodSpec = method.parse()?;
            spec.overrides = Overrides {
                steps: *steps,
                ..scale.for_kind(spec.kind)
            };
            let EditorConfig::Hyper(config) = spec.config(modules, &scenario)? else {
                return Err(format!(
                    "`{method}` is training-free: edit with `emsedit edit --method {method}`"
                )
                .into());
            };
            let stream: Vec<_> = edit_batches(&m.tok, &train, n, 4, false)?
                .into_iter()
                .map(|b| b.batch)
                .collect();
            seed::<Cpu>(&cpu(), *s);
            let mut editor = HyperEditor::<Cpu>::new(config);
            let mut lm = m.lm.clone();
            let progress = bar(*epochs as u64, "training epochs", quiet);
            let start = Instant::now();
            for _ in 0..*epochs {
                editor.train(&mut lm, &stream)?;
                progress.inc(1);
            }
            progress.finish_and_clear();
            let seconds = start.elapsed().as_secs_f64();
            editor.save(&lm, out)?;
            let summary = json!({
                "checkpoint": out, "method": editor.config().name,
                "mode": if *batch { "batch" } else { "sequential" },
                "modules": editor.config().modules, "records": count * n, "batches": count,
                "epochs": epochs, "seconds": seconds,
            });
            if cli.json {
                println!("{summary}");
            } else {
                println!(
                    "trained {} on {} records ({count} batches of {n}, {epochs} epoch(s)) in \
                     {seconds:.1} s → {}",
                    editor.config().name,
                    count * n,
                    out.display()
                );
            }
        }
        Command::Edit {
            model,
            editor,
            method,
            facts: path,
            n_edits,
            out,
            patch,
        } => {
            let m = load_model(model)?;
            let facts = facts(path)?;
            let n = n_edits.unwrap_or(facts.len()).clamp(1, facts.len());
            let mut lm = m.lm.clone();
            let (mut ed, names): (Box<dyn Editor<Cpu>>, Vec<String>) = match (editor, method) {
                (Some(file), _) => {
                    let e = HyperEditor::<Cpu>::load(&lm, file)?;
                    let names = e.config().modules.clone();
                    (Box::new(e), names)
                }
                (None, Some(name)) => {
                    let mode = if n == facts.len() {
                        Mode::Batch
                    } else {
                        Mode::Sequential
                    };
                    let (modules, _) = m.defaults(mode);
                    let spec: MethodSpec = name.parse()?;
                    let scenario = ScenarioConfig::sequential(n, facts.len().div_ceil(n));
                    (spec.build::<Cpu>(modules.clone(), &scenario)?, modules)
                }
                (None, None) => return Err("give --editor or --method".into()),
            };
            let modules = names
                .iter()
                .map(|n| lm.module(n))
                .collect::<Result<Vec<ModuleId>, _>>()?;
            let batches = edit_batches(&m.tok, &facts, n, 4, false)?;
            let dropped = facts.len() - batches.len() * n;
            if dropped > 0 {
                eprintln!(
                    "note: the last {dropped} fact(s) do not fill a batch of {n} and are not edited"
                );
            }
            let progress = bar(batches.len() as u64, "edit batches", quiet);
            let start = Instant::now();
            for b in &batches {
                ed.edit(&mut lm, &b.batch)?;
                progress.inc(1);
            }
            progress.finish_and_clear();
            let seconds = start.elapsed().as_secs_f64();
            let edited = batches.len() * n;
            let info = json!({
                "method": ed.name(), "tool": concat!("emsedit ", env!("CARGO_PKG_VERSION")),
                "facts": facts[..edited].iter().map(|r| json!({"prompt": r.edit.prompt, "target": r.edit.target})).collect::<Vec<_>>(),
            });
            let mut out_json = json!({"edited": edited, "method": ed.name(), "seconds": seconds});
            // The patch is the change; the edited model is the base with the patch applied
            // (within a few ulps of the editor's own weights), so that the two always agree.
            let made = Patch::between(&m.lm, &lm, &modules, info)?;
            if let Some(p) = patch {
                made.save(p)?;
                let bytes = std::fs::metadata(p).map(|md| md.len()).unwrap_or(0);
                out_json["patch"] = json!({"path": p, "bytes": bytes, "ranks": made.header.ranks});
            }
            if let Some(dir) = out {
                let mut patched = m.lm.clone();
                made.apply(&mut patched)?;
                save_edited(&patched, &modules, dir)?;
                out_json["model"] = json!(dir);
            }
            if cli.json {
                println!("{out_json}");
            } else {
                println!(
                    "edited {edited} fact(s) with {} in {seconds:.2} s",
                    ed.name()
                );
                if let Some(p) = patch {
                    println!(
                        "patch: {} ({} bytes)",
                        p.display(),
                        out_json["patch"]["bytes"]
                    );
                }
                if let Some(dir) = out {
                    println!("model: {}", dir.display());
                }
            }
        }
        Command::Eval {
            model,
            data,
            patch,
            limit,
        } => {
            let mut m = load_model(model)?;
            with_patches(&mut m.lm, patch)?;
            let mut recs = facts(data)?;
            if let Some(l) = limit {
                recs.truncate(*l);
            }
            let progress = bar(100, "evaluating (%)", quiet);
            let s: Scores = evaluate(&m.lm, &m.tok, &recs, &mut |f| {
                progress.set_position((100.0 * f) as u64)
            })?;
            progress.finish_and_clear();
            let has_locality = recs.iter().any(|r| !r.unrel.is_empty());
            if cli.json {
                println!(
                    "{}",
                    json!({"records": recs.len(), "efficacy": s.efficacy,
                        "generalization": s.generalization,
                        "specificity": has_locality.then_some(s.specificity)})
                );
            } else {
                let spec = if has_locality {
                    pct(s.specificity)
                } else {
                    "–".into()
                };
                println!("| records | efficacy | generalization | specificity |");
                println!("|---:|---:|---:|---:|");
                println!(
                    "| {} | {} | {} | {spec} |",
                    recs.len(),
                    pct(s.efficacy),
                    pct(s.generalization)
                );
            }
        }
        Command::Ask {
            model,
            prompt,
            patch,
            max_new,
        } => {
            let mut m = load_model(model)?;
            with_patches(&mut m.lm, patch)?;
            let ids = m.tok.encode_prompt(prompt)?;
            let stop = ["<|endoftext|>", "</s>", "<eos>", "<|im_end|>"]
                .iter()
                .find_map(|t| m.tok.token_id(t));
            let out = m.lm.generate(&ids, *max_new, stop)?;
            let text = m.tok.decode(&out)?;
            if cli.json {
                println!("{}", json!({"prompt": prompt, "completion": text}));
            } else {
                println!("{prompt}{text}");
            }
        }
        Command::Patch { action } => patch_action(action, cli.json)?,
    }
    Ok(())
}

fn patch_action(action: &PatchAction, json_out: bool) -> Result<(), Error> {
    match action {
        PatchAction::Apply(run) | PatchAction::Revert(run) => {
            let (model, patch, out) = (&run.model, &run.patch, &run.out);
            let apply = matches!(action, PatchAction::Apply(_));
            let mut m = load_model(model)?;
            let patches = patch
                .iter()
                .map(|p| Patch::load(p).map(|x| (p, x)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut modules: Vec<ModuleId> = Vec::new();
            let ordered: Vec<_> = if apply {
                patches.iter().collect()
            } else {
                patches.iter().rev().collect()
            };
            for (p, x) in ordered {
                let r = if apply {
                    x.apply(&mut m.lm)
                } else {
                    x.revert(&mut m.lm)
                };
                r.map_err(|e| format!("{}: {e}", p.display()))?;
                for name in &x.header.modules {
                    let id = m.lm.module(name)?;
                    if !modules.contains(&id) {
                        modules.push(id);
                    }
                }
            }
            save_edited(&m.lm, &modules, out)?;
            let verb = if apply { "applied" } else { "reverted" };
            if json_out {
                println!("{}", json!({verb: patch, "model": out}));
            } else {
                println!("{verb} {} patch(es) → {}", patch.len(), out.display());
            }
        }
        PatchAction::Show { patch } => {
            let p = Patch::load(patch)?;
            let bytes = std::fs::metadata(patch).map(|m| m.len()).unwrap_or(0);
            if json_out {
                println!("{}", json!({"header": p.header, "bytes": bytes}));
            } else {
                println!("{}: {bytes} bytes", patch.display());
                println!("{}", serde_json::to_string_pretty(&p.header)?);
            }
        }
    }
    Ok(())
}
