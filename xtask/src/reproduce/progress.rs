//! Progress bars (indicatif) and logs (tracing) on one terminal: log lines are written with
//! the bars suspended, so they do not tear the bars.

use std::io::Write;
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// A progress bar of `len` steps on stderr (hidden when stderr is not a terminal).
pub fn bar(len: u64) -> ProgressBar {
    bars().add(ProgressBar::new(len))
}

/// The bar over a matrix's cells: elapsed time, cells done, the estimate, a message.
pub fn cells_bar(len: u64) -> ProgressBar {
    let bar = bar(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} cells (eta {eta}) {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Writes log lines to stderr with the progress bars suspended.
#[derive(Clone, Copy)]
struct Suspended;

impl Write for Suspended {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        bars().suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Suspended {
    type Writer = Suspended;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Installs the log subscriber: `RUST_LOG`-style filter (`info` by default, e.g.
/// `RUST_LOG=warn` or `RUST_LOG=xtask=debug`), lines on stderr. A second call is a no-op.
pub fn init_logging() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(Suspended)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}
