//! Errors of the sync task.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What stopped the task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "writing checkpoint".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file name that would land outside its root (a source name with
    /// `/` or `..` that escaped the naming rules): refused, nothing written.
    #[error(
        "refusing to write {path} under {root}: the path leaves its folder; \
         the name it comes from must not hold `/`, `\\` or `..`"
    )]
    UnsafePath {
        /// The warehouse or state folder.
        root: PathBuf,
        /// The path asked for, relative to `root`.
        path: PathBuf,
    },
    /// A checkpoint file exists but cannot be read as one. The task refuses
    /// to start rather than begin again from zero.
    #[error(
        "checkpoint {path} is corrupt ({reason}); refusing to start from scratch: \
         restore it from a backup, or delete the state directory to resync everything"
    )]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Why it could not be read.
        reason: String,
    },
    /// A checkpoint written by a newer version of this program.
    #[error(
        "checkpoint {path} has format version {found}, newer than the {supported} this build \
         understands: run a newer sync-cli"
    )]
    CheckpointTooNew {
        /// The checkpoint file.
        path: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// A step that the current phase does not allow.
    #[error(transparent)]
    Transition(#[from] crate::machine::TransitionError),
    /// Arrow could not build or combine batches.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Parquet could not write or read a file.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The source failed: unreachable, refused, purged binlog, ...
    #[error("source: {0}")]
    Source(#[from] mysql_source::Error),
    /// The precheck found failures; the task did not start.
    #[error("the precheck failed, nothing was written:\n{0}")]
    Precheck(crate::precheck::Report),
    /// MaxCompute refused a request or could not be reached.
    #[error("maxcompute: {0}")]
    MaxCompute(#[from] odps_tunnel::Error),
    /// A task file setting that cannot be used; the message names it.
    #[error("{0}")]
    Config(String),
    /// Data that does not fit what the destination table expects.
    #[error("{0}")]
    Schema(String),
    /// The task stopped at a DDL statement: its `[sync.ddl]` policy says
    /// stop, or the task cannot follow it. Everything before it is
    /// committed; the next run starts at the statement again.
    #[error(
        "stopped at the DDL at binlog {file}:{position}: {message}\n  statement: {statement}\n  \
         every change before it is committed; the next run starts at this statement"
    )]
    Ddl {
        /// Binlog file.
        file: String,
        /// Offset of the statement's event in the file.
        position: u64,
        /// The statement (shortened when long).
        statement: String,
        /// What it does and why the task stops.
        message: String,
    },
    /// A value over the destination's field size limit under
    /// `[destination] oversized_values = "stop"` ([`crate::oversized`]).
    /// Nothing of its unit was written; the next run starts there again.
    #[error(
        "table {table}, key ({key}), column `{column}`: a value of {bytes} bytes is over the \
         destination's field size limit of {limit} bytes, and `[destination] oversized_values` is \
         \"stop\". Set it to \"null\" or \"truncate\" to write such values as NULL or cut to the \
         limit; everything before this unit is committed and the next run resumes here"
    )]
    OversizedValue {
        /// Source table, `db.table`.
        table: String,
        /// The row key (`column=value` pairs).
        key: String,
        /// Destination column.
        column: String,
        /// Size of the value.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// Row images that do not match the schema tracked for their position.
    #[error("binlog {file}:{position}: {message}")]
    SchemaDrift {
        /// Binlog file.
        file: String,
        /// Offset of the table-map event in the file.
        position: u64,
        /// The table and what differs.
        message: String,
    },
    /// A failure outlasted its `[retry]` window; the checkpoint stays
    /// resumable ([`crate::retry`]).
    #[error(
        "gave up after retrying {what} for {} ({attempts} attempts; `retry.{key}` allows {}): {source}. \
         The checkpoint is kept: `sync-cli run` resumes from it",
        crate::retry::human(*.retried),
        crate::retry::human(*.window)
    )]
    GaveUp {
        /// What kept failing, e.g. "a failed connection".
        what: &'static str,
        /// The `[retry]` key of the window.
        key: &'static str,
        /// How long it was retried.
        retried: std::time::Duration,
        /// The window.
        window: std::time::Duration,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        source: Box<Error>,
    },
}

impl Error {
    /// An I/O error with what was being done and where.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
