//! Progress bars for the full phase when stderr is a terminal; log lines
//! stay readable above them (each is written with the bars suspended).

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use sync_core::progress::FullSyncProgress;

/// One bar per table: chunks committed of the plan, rows so far.
pub(crate) struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        })
    }

    /// A tracing writer that prints log lines without tearing the bars.
    pub(crate) fn log_writer(&self) -> SuspendingStderr {
        SuspendingStderr(self.multi.clone())
    }

    fn with_bar(&self, table: &str, f: impl FnOnce(&ProgressBar)) {
        let bars = self.bars.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bar) = bars.get(table) {
            f(bar);
        }
    }
}

impl FullSyncProgress for Bars {
    fn table_started(&self, table: &str, chunks_total: u64, chunks_done: u64, rows_done: u64) {
        let style = ProgressStyle::with_template(
            "{prefix:<28!} [{bar:30.cyan/blue}] {pos}/{len} chunks  {msg}  {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = self.multi.add(ProgressBar::new(chunks_total));
        bar.set_style(style);
        bar.set_prefix(table.to_owned());
        bar.set_position(chunks_done);
        bar.set_message(format!("{rows_done} rows"));
        self.bars
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(table.to_owned(), bar);
    }

    fn chunk_committed(
        &self,
        table: &str,
        _rows: u64,
        chunks_done: u64,
        _chunks_total: u64,
        rows_done: u64,
    ) {
        self.with_bar(table, |bar| {
            bar.set_position(chunks_done);
            bar.set_message(format!("{rows_done} rows"));
        });
    }

    fn table_finished(&self, table: &str, rows_done: u64) {
        self.with_bar(table, |bar| {
            bar.finish_with_message(format!("{rows_done} rows, done"))
        });
    }
}

/// stderr, written with the progress bars cleared and redrawn around each write.
#[derive(Clone)]
pub(crate) struct SuspendingStderr(MultiProgress);

impl Write for SuspendingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.suspend(|| io::stderr().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SuspendingStderr {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
