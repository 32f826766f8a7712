//! Progress of the full phase, reported to whoever shows it: log lines by
//! default ([`LogProgress`]), progress bars in `sync-cli` on a terminal.

use tracing::info;

/// Receives the full phase's progress, table by table.
pub trait FullSyncProgress: Send + Sync {
    /// A table's copy starts (or resumes with `chunks_done` chunks and
    /// `rows_done` rows already committed).
    fn table_started(&self, table: &str, chunks_total: u64, chunks_done: u64, rows_done: u64);
    /// A chunk of `rows` rows is committed; `rows_done` counts the table's rows so far.
    fn chunk_committed(
        &self,
        table: &str,
        rows: u64,
        chunks_done: u64,
        chunks_total: u64,
        rows_done: u64,
    );
    /// Every chunk of the table is committed.
    fn table_finished(&self, table: &str, rows_done: u64);
}

/// Progress as plain `tracing` log lines (one per committed chunk).
#[derive(Clone, Copy, Debug, Default)]
pub struct LogProgress;

impl FullSyncProgress for LogProgress {
    fn table_started(&self, table: &str, chunks_total: u64, chunks_done: u64, rows_done: u64) {
        info!(
            table,
            chunks_total, chunks_done, rows_done, "full sync: copying table"
        );
    }

    fn chunk_committed(
        &self,
        table: &str,
        rows: u64,
        chunks_done: u64,
        chunks_total: u64,
        rows_done: u64,
    ) {
        info!(
            table,
            rows, rows_done, "full sync: chunk {chunks_done}/{chunks_total} committed"
        );
    }

    fn table_finished(&self, table: &str, rows_done: u64) {
        info!(table, rows_done, "full sync: table done");
    }
}
