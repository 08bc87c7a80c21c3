//! `--jobs N`: up to N cells at once, each in a child `xtask reproduce` process that runs
//! exactly one cell (`--cell-key`) into its own folder `<out>/.jobs/<key>/` with
//! `RAYON_NUM_THREADS` = cores / N. The parent appends each finished child's record to the
//! main `results.jsonl` and removes the folder; a failed child's log stays there. A separate
//! process per cell keeps each cell's seed, peak memory and thread pool its own.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tracing::{error, info};

use super::matrix::Cell;
use super::runner::{Outcome, Record, Results};

/// How the children are started.
#[derive(Debug, Clone)]
pub struct Jobs {
    /// Cells at once.
    pub n: usize,
    /// The matrix the children read.
    pub matrix: ChildMatrix,
    /// The other arguments after `reproduce` for a child (`--device D`, ...).
    pub args: Vec<OsString>,
}

/// The matrix of a run as its children get it.
#[derive(Debug, Clone)]
pub enum ChildMatrix {
    /// A preset of the binary, by name.
    Preset(String),
    /// The text of a matrix file as the parent read it: written to `<out>/.jobs/matrix.toml`
    /// for the children, so that editing the file during a run changes no cell of it.
    Text(String),
}

/// This process's executable, for the children: on Linux `/proc/self/exe`, the running
/// binary even after a rebuild has replaced the file at its path, so that every cell of a run
/// runs the same code; elsewhere the path it was started from.
fn self_exe() -> Result<PathBuf, String> {
    let running = Path::new("/proc/self/exe");
    if running.exists() {
        return Ok(running.to_path_buf());
    }
    std::env::current_exe().map_err(|e| format!("the xtask executable: {e}"))
}

/// The children's matrix arguments, writing the parent's copy of a matrix file into `work`.
fn matrix_args(matrix: &ChildMatrix, work: &Path) -> Result<Vec<OsString>, String> {
    Ok(match matrix {
        ChildMatrix::Preset(name) => vec!["--preset".into(), name.into()],
        ChildMatrix::Text(text) => {
            std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
            let path = work.join(MATRIX_COPY);
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            vec!["--config".into(), path.into()]
        }
    })
}

/// The children's copy of a matrix file, under `<out>/.jobs/`.
const MATRIX_COPY: &str = "matrix.toml";

/// Threads for each child: `RAYON_NUM_THREADS` when set (children inherit it), else the
/// machine's cores shared out between the jobs (at least one each).
pub fn threads_per_job(n: usize) -> usize {
    let set = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&t| t > 0);
    set.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        (cores / n.max(1)).max(1)
    })
}

/// The order to start `pending` in: first the cells without an estimate, in matrix order,
/// then the others longest first, a cell's estimate being the time of a finished cell of its
/// seed group (`estimate`). With several cells at once, a long cell started last would run
/// alone at the end while the other cores idle.
pub fn longest_first<'a>(
    pending: &[&'a Cell],
    estimate: impl Fn(&Cell) -> Option<f64>,
) -> Vec<&'a Cell> {
    let mut order: Vec<(Option<f64>, &Cell)> = pending.iter().map(|&c| (estimate(c), c)).collect();
    // Stable: unknown estimates keep their order, equal ones too.
    order.sort_by(|(a, _), (b, _)| match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(a), Some(b)) => b.total_cmp(a),
    });
    order.into_iter().map(|(_, c)| c).collect()
}

/// Streams of at least this many edits make a hypernetwork editor's cell run alone.
pub const ALONE_FROM_EDITS: usize = 100;

/// Whether `cell` runs alone with every core rather than beside another cell: a hypernetwork
/// editor (trained; not FT or UltraEdit) on a stream of at least [`ALONE_FROM_EDITS`] edits,
/// except RLEdit's sequential cells. On 2 cores such a cell took 0.24–0.57 (batch) and
/// 0.29–0.41 (sequential EMSEdit and MALMEN2) of its time beside another cell when run alone
/// on both threads, so one at a time finishes them sooner; RLEdit's sequential training (many
/// small backtracking passes) took 0.67, the search's small cells and FT's and UltraEdit's
/// streams 0.88–1.16, so two at once stays best for them (docs/results.md, "Runs and
/// wall-clock on 2 cores").
pub fn runs_alone(cell: &Cell) -> bool {
    use emsedit::methods::MethodKind;
    let kind = cell.method.kind;
    let trained = !matches!(kind, MethodKind::Ft | MethodKind::UltraEdit);
    let sequential = cell.scenario.num_seq > 1;
    let edits = cell.scenario.n_edits.saturating_mul(cell.scenario.num_seq);
    trained && edits >= ALONE_FROM_EDITS && !(sequential && kind == MethodKind::Rledit)
}

/// `order` with the cells that run alone first (each group in its given order): they run one
/// at a time on every core, then the rest N at once.
pub fn alone_first(order: Vec<&Cell>) -> Vec<&Cell> {
    let (mut alone, shared): (Vec<&Cell>, Vec<&Cell>) =
        order.into_iter().partition(|c| runs_alone(c));
    alone.extend(shared);
    alone
}

struct Running<'a> {
    cell: &'a Cell,
    dir: PathBuf,
    child: Child,
    started: Instant,
}

/// Runs `pending` in child processes, at most `jobs.n` at once, appending each finished cell
/// to `results` in the order the cells finish.
pub fn run(
    jobs: &Jobs,
    out: &Path,
    pending: &[&Cell],
    results: &mut Results,
) -> Result<Outcome, String> {
    let exe = self_exe()?;
    let (threads, alone_threads) = (threads_per_job(jobs.n), threads_per_job(1));
    let work = out.join(".jobs");
    let matrix = matrix_args(&jobs.matrix, &work)?;
    let alone = pending.iter().filter(|c| runs_alone(c)).count();
    info!(
        "running up to {} cells at once, {threads} threads each, after {alone} cells of \
         hypernetwork editors on {ALONE_FROM_EDITS}+ edits one at a time on {alone_threads} \
         threads (docs/reproduce.md; logs under {})",
        jobs.n,
        work.display()
    );
    let bar = super::progress::cells_bar(pending.len() as u64);
    let mut outcome = Outcome::default();
    let mut queue = pending.iter().enumerate().peekable();
    let mut running: Vec<Running> = Vec::new();
    loop {
        while let Some(&(_, &next)) = queue.peek() {
            let (limit, n_threads) = if runs_alone(next) {
                (1, alone_threads)
            } else {
                (jobs.n, threads)
            };
            if running.len() >= limit || running.iter().any(|r| runs_alone(r.cell)) {
                break;
            }
            let Some((i, &cell)) = queue.next() else {
                break;
            };
            super::runner::log_start(i, pending.len(), cell);
            match start(&exe, &matrix, jobs, n_threads, &work, cell) {
                Ok(r) => running.push(r),
                Err(e) => {
                    error!("cell {} failed: {e}", cell.id);
                    outcome.failed.push((cell.id.clone(), e));
                    bar.inc(1);
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let ids: Vec<&str> = running.iter().map(|r| r.cell.id.as_str()).collect();
        bar.set_message(ids.join("; "));
        std::thread::sleep(Duration::from_millis(250));
        let mut k = 0;
        while k < running.len() {
            match running[k].child.try_wait() {
                Ok(None) => k += 1,
                Ok(Some(status)) => {
                    let r = running.swap_remove(k);
                    match collect(&r, status) {
                        Ok(record) => {
                            super::runner::log_done(&record);
                            if let Err(e) = results.append(record) {
                                // The results file cannot take more: stop the other cells.
                                for mut other in running {
                                    let _ = other.child.kill();
                                }
                                return Err(e);
                            }
                            let _ = std::fs::remove_dir_all(&r.dir);
                            outcome.ran += 1;
                        }
                        Err(e) => {
                            error!("cell {} failed: {e}", r.cell.id);
                            outcome.failed.push((r.cell.id.clone(), e));
                        }
                    }
                    bar.inc(1);
                }
                Err(e) => {
                    let mut r = running.swap_remove(k);
                    let _ = r.child.kill();
                    let e = format!("waiting for cell {}: {e}", r.cell.id);
                    error!("{e}");
                    outcome.failed.push((r.cell.id.clone(), e));
                    bar.inc(1);
                }
            }
        }
    }
    bar.finish_and_clear();
    // Left only when a cell failed (its log is inside).
    let _ = std::fs::remove_file(work.join(MATRIX_COPY));
    let _ = std::fs::remove_dir(&work);
    Ok(outcome)
}

/// Starts the child of `cell` in a fresh `<work>/<key>/`, its output in `log` there.
fn start<'a>(
    exe: &Path,
    matrix: &[OsString],
    jobs: &Jobs,
    threads: usize,
    work: &Path,
    cell: &'a Cell,
) -> Result<Running<'a>, String> {
    let dir = work.join(&cell.key);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log_path = dir.join("log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let child = Command::new(exe)
        .arg("reproduce")
        .args(matrix)
        .args(&jobs.args)
        .arg("--out")
        .arg(&dir)
        .arg("--cell-key")
        .arg(&cell.key)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", exe.display()))?;
    Ok(Running {
        cell,
        dir,
        child,
        started: Instant::now(),
    })
}

/// The record a finished child wrote, or why there is none (with the end of its log).
fn collect(r: &Running, status: ExitStatus) -> Result<Record, String> {
    let log = r.dir.join("log");
    let tail = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(12);
        format!(
            "\n    {}\n    (log: {})",
            lines[from..].join("\n    "),
            log.display()
        )
    };
    if !status.success() {
        return Err(format!(
            "the cell's process ended with {status} after {:.0}s:{}",
            r.started.elapsed().as_secs_f64(),
            tail()
        ));
    }
    let results = Results::open(&r.dir.join("results.jsonl"))?;
    results
        .get(&r.cell.key)
        .cloned()
        .ok_or_else(|| format!("the cell's process wrote no result:{}", tail()))
}
