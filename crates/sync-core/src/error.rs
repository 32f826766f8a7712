//! Errors of the sync task.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What stopped the task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}{}", io_fix(.source, .path))]
    Io {
        /// What was being done, e.g. "writing checkpoint".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A destination table the task created (its checkpoint says so) is
    /// gone: writing on would recreate it without its earlier rows.
    #[error(
        "destination table {table} is missing in {destination}, but the task's checkpoint says \
         it created it and wrote into it\n  fix: point [destination] back at the warehouse or \
         project that holds it, or restore it; to start over, use a new state_dir (the task then \
         creates its tables and copies the rows again). Retrying cannot mend this, so the task \
         stopped at once"
    )]
    DestinationTableMissing {
        /// The destination table's name.
        table: String,
        /// The warehouse folder or the MaxCompute project.
        destination: String,
    },
    /// A destination table that existed before the task cannot be written
    /// into as `conflicting_tables = "ignore"` promises (columns that differ
    /// from what the task would create, a table without a key, record ids
    /// that would not outrank the old ones). The precheck reports it first.
    #[error(
        "destination table {table} exists already and cannot be written into: {problem}\n  fix: \
         {fix}. Retrying cannot mend this, so the task stopped at once"
    )]
    ConflictingTable {
        /// The destination table's name.
        table: String,
        /// What differs or what would go wrong.
        problem: String,
        /// How to resolve it.
        fix: String,
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
    /// Another process holds the task's state directory: one writer per
    /// task ([`crate::state_lock`]).
    #[error(
        "another process is running this task: {} holds its state directory {}; one writer per \
         task: stop that run first (SIGINT or SIGTERM), or give this task file its own state_dir",
        .holder.as_ref().map_or_else(|| "a process that has not said who it is yet".to_owned(), ToString::to_string),
        .state_dir.display()
    )]
    Locked {
        /// The state directory.
        state_dir: PathBuf,
        /// Who holds it, when it wrote its details already.
        holder: Option<crate::state_lock::Holder>,
    },
    /// A destination table another task writes under the same
    /// `record_id_tag`: two tasks would collide on record ids and double
    /// rows. The precheck reports it first.
    #[error(
        "destination table {table} is written by task {owner} under record_id_tag {tag}, and this \
         task ({task}) has the same tag: {}",
        crate::precheck::OWNER_FIX
    )]
    TableOwned {
        /// The destination table.
        table: String,
        /// The `record_id_tag` both tasks use.
        tag: u8,
        /// The task that owns the table under that tag.
        owner: String,
        /// This task's id.
        task: String,
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
    /// A data change to a synced table reached the binlog as statement text
    /// (the writer's session logged in `STATEMENT` or `MIXED` format), not
    /// as row changes: the task cannot read its rows. Definite: the
    /// checkpoint stays before its transaction, so the next run stops at it
    /// again.
    #[error(
        "stopped at binlog {file}:{position}: this {kind} on {tables} was logged as a statement, \
         not as row changes, so the task cannot know the rows it changed\n  statement: {statement}\n  \
         fix: the writing session had binlog_format = STATEMENT or MIXED; make every writer log \
         rows (SET GLOBAL binlog_format = 'ROW', reconnect the writers, and revoke SUPER and \
         BINLOG ADMIN from application accounts so that no session can switch back). Then set \
         [sync] unsupported_events = \"skip\" to pass this statement knowingly and resync \
         {tables} (start the task afresh: a new state_dir and new or emptied destination tables). \
         The checkpoint stays before this statement's transaction: until then every run stops \
         here"
    )]
    StatementLogged {
        /// Binlog file.
        file: String,
        /// Offset of the statement's event in the file.
        position: u64,
        /// The synced tables it writes, `db.table`, comma-separated (or
        /// why they cannot be told).
        tables: String,
        /// The kind of statement (`INSERT`, `UPDATE`, …).
        kind: &'static str,
        /// The statement, cut after its first 200 characters.
        statement: String,
    },
    /// A rows event of a synced table whose row images lack columns (the
    /// writer's session set `binlog_row_image` to `MINIMAL` or `NOBLOB`):
    /// the task cannot write whole rows, and writes none of its
    /// transaction. Definite: the checkpoint stays before that
    /// transaction, so the next run stops at it again.
    #[error(transparent)]
    RowImageNotFull(Box<RowImageNotFull>),
    /// `XA COMMIT` of a branch the task never saw prepared: it was
    /// prepared before the position the task started from, so its changes
    /// are not in the binlog the task read, and it changed synced tables
    /// (or its PREPARE is no longer in the server's binlog, so the task
    /// cannot tell). Definite: the checkpoint stays before the commit, so
    /// the next run stops at it again.
    #[error(
        "stopped at binlog {file}:{position}: XA COMMIT of branch {xid}, prepared before the \
         position this task started from: {found}, so its changes are in no binlog the task \
         read\n  fix: resync the tables it changed (start the task afresh, after the branch is \
         decided: a new state_dir and new or emptied destination tables); or set [sync] \
         unsupported_events = \"skip\" to pass it knowingly. The checkpoint stays before this \
         commit: until then every run stops here"
    )]
    XaUnknownBranch {
        /// The xid, `X'gtrid',X'bqual',formatID`.
        xid: String,
        /// Binlog file of the commit.
        file: String,
        /// Offset of the commit's event in the file.
        position: u64,
        /// What the task found of its PREPARE: where, and the synced
        /// tables it changed; or that no binlog file still holds it.
        found: String,
    },
    /// A prepared XA branch's file in `state_dir/xa` is missing or unreadable.
    #[error(
        "XA branch {xid}: {path}: {reason}; the branch's changes cannot land when it commits \
         (restore the file, or resync the task afresh)"
    )]
    XaBranchFile {
        /// The file.
        path: PathBuf,
        /// The branch's xid.
        xid: String,
        /// What is wrong.
        reason: String,
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
    /// A change of the task's table set (`[objects] include` during the
    /// incremental phase) that the task cannot carry out exactly. Definite:
    /// the checkpoint stays where it was, and the message says the fix.
    #[error("table {table}: {message}")]
    TableSet {
        /// Source `db.table`.
        table: String,
        /// What is wrong and the fix.
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

/// A rows event of a synced table whose images lack columns
/// ([`Error::RowImageNotFull`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "stopped at binlog {file}:{position}: the {kind} rows event of {table} lacks column(s) \
     {missing} in its {image} image, so the task cannot know the whole rows it changed; \
     the writing session had binlog_row_image = {setting}, not FULL\n  \
     fix: make every writer log full rows (SET GLOBAL binlog_row_image = 'FULL', reconnect \
     the writers, and revoke SUPER and BINLOG ADMIN from application accounts so that no \
     session can change it). Then set [sync] unsupported_events = \"skip\" to pass this \
     event knowingly and resync {table} (start the task afresh: a new state_dir and new or \
     emptied destination tables). No row of this event landed and the checkpoint stays \
     before its transaction: until then every run stops here"
)]
pub struct RowImageNotFull {
    /// Binlog file.
    pub file: String,
    /// Offset of the rows event in the file.
    pub position: u64,
    /// The synced table, `db.table`.
    pub table: String,
    /// `WRITE`, `UPDATE` or `DELETE`.
    pub kind: &'static str,
    /// `before` or `after`.
    pub image: &'static str,
    /// The missing columns' names, comma-separated.
    pub missing: String,
    /// The session setting that leaves them out: `MINIMAL` or `NOBLOB`.
    pub setting: &'static str,
}

/// Whether retrying cannot mend an I/O failure: the task lacks the right
/// to the path, or the path is not the kind of thing the task needs there.
/// A full disk or an interrupted call can mend (someone frees room).
pub(crate) fn io_is_definite(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::PermissionDenied
            | K::ReadOnlyFilesystem
            | K::NotADirectory
            | K::IsADirectory
            | K::InvalidFilename
            | K::InvalidInput
    )
}

/// The fix for a definite I/O failure (see [`io_is_definite`]).
fn io_fix(e: &std::io::Error, path: &std::path::Path) -> String {
    use std::io::ErrorKind as K;
    let fix = match e.kind() {
        K::PermissionDenied | K::ReadOnlyFilesystem => format!(
            "let the task's user write {} (chown/chmod, a writable mount), or point \
             [sync] state_dir / [destination] path at a folder it may write",
            path.display()
        ),
        K::NotADirectory | K::IsADirectory | K::InvalidFilename | K::InvalidInput => format!(
            "a file stands where a folder is needed, or the reverse: move it away or point \
             [sync] state_dir / [destination] path elsewhere ({})",
            path.display()
        ),
        _ => return String::new(),
    };
    format!("\n  fix: {fix}. Retrying cannot mend this, so the task stopped at once")
}

impl Error {
    /// Whether trying again may succeed: a lost connection, a timeout, a
    /// busy server or lock wait, a 5xx or throttled reply, a full disk.
    /// Everything else (a refused password, a missing destination table, a
    /// path the task may not write, data that does not map) fails at once.
    pub fn is_transient(&self) -> bool {
        crate::retry::classify(self).is_some()
    }

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
