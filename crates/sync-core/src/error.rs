//! Errors of the sync task.
//!
//! # What a variant says
//!
//! Each variant names what failed, so a caller matches on the kind of
//! failure rather than on message text: a binlog event that does not decode
//! ([`Error::Decode`], with its file:position), data or a table that does
//! not fit the other side ([`Error::Mapping`]), a task setting
//! ([`Error::Config`]), state the task wrote and cannot read back
//! ([`Error::Unreadable`]), a broken invariant ([`Error::Internal`]), and
//! the failures of the lower crates ([`Error::Source`],
//! [`Error::MaxCompute`], [`Error::Io`]).
//!
//! # Whether a retry can mend it
//!
//! [`Error::recovery`] answers, and it is decided once: when a lower error
//! converts into this one, by that crate's own predicates
//! (`mysql_source::Error::is_auth`/`is_transient`,
//! `odps_tunnel::Error::is_auth`/`is_retryable`, the kind of a
//! `std::io::Error`), and stored in the variant. Every other variant is
//! definite by its type, in one exhaustive `match` without a catch-all, so a
//! new variant must say whether it heals. A refused login is definite
//! before anything else: retrying the same password cannot help.

use std::fmt;
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which `[retry]` window a transient failure counts against.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum RetryKind {
    /// The source (or the MaxCompute service) cannot be reached or the
    /// connection broke.
    Connection,
    /// The destination refused an operation (DDL, upload, commit) or a file
    /// could not be written.
    Destination,
}

impl RetryKind {
    /// The metrics label: `connection` or `destination`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Destination => "destination",
        }
    }

    /// What kept failing, for [`Error::GaveUp`]'s message.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Self::Connection => "a failed connection",
            Self::Destination => "a failing destination operation",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Connection => 0,
            Self::Destination => 1,
        }
    }
}

/// Whether trying again may mend a failure ([`Error::recovery`]).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Recovery {
    /// Retrying cannot mend it: the task stops at once and says the fix.
    Definite,
    /// Trying again may succeed, within the `[retry]` window of this kind.
    Transient(RetryKind),
}

impl Recovery {
    /// How a source error may heal, by mysql-source's own predicates.
    fn of_source(e: &mysql_source::Error) -> Self {
        if e.is_auth() {
            Self::Definite
        } else if e.is_transient() {
            Self::Transient(RetryKind::Connection)
        } else {
            Self::Definite
        }
    }

    /// How a MaxCompute error may heal, by odps-tunnel's own predicates
    /// plus what a retry from the checkpoint adds (a new session).
    fn of_maxcompute(e: &odps_tunnel::Error) -> Self {
        use odps_tunnel::error::ErrorKind as Mc;
        if e.is_auth() {
            // 401/403, a refused signature or key, a clock MaxCompute
            // calls skewed: the user must fix credentials or the clock.
            return Self::Definite;
        }
        match e.kind() {
            Mc::Transport(_) | Mc::Timeout(_) => Self::Transient(RetryKind::Connection),
            Mc::Server(s) if healable_by_a_new_session(&s.code) => {
                Self::Transient(RetryKind::Destination)
            }
            Mc::Sql { message, .. } if system_failure(message) => {
                Self::Transient(RetryKind::Destination)
            }
            // A reply that is not MaxCompute's (a proxy's error page).
            Mc::Protocol(_) => Self::Transient(RetryKind::Destination),
            _ if e.is_retryable() => Self::Transient(RetryKind::Destination),
            _ => Self::Definite,
        }
    }

    /// How a file operation's failure may heal: a full disk can (someone
    /// frees room), a path the task may not write cannot.
    fn of_io(e: &std::io::Error) -> Self {
        if io_is_definite(e) {
            Self::Definite
        } else {
            Self::Transient(RetryKind::Destination)
        }
    }
}

/// What stopped the task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed ([`Error::io`] builds it).
    #[error("{action} {path}: {source}{}", io_fix(.source, .path))]
    Io {
        /// What was being done, e.g. "writing checkpoint".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
        /// Whether it may heal, decided from `source` when it was made.
        recovery: Recovery,
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
    #[error("source: {source}")]
    Source {
        /// The source's error.
        source: mysql_source::Error,
        /// Whether it may heal, decided by mysql-source's predicates when
        /// it converted (`From`).
        recovery: Recovery,
    },
    /// The precheck found failures; the task did not start.
    #[error("the precheck failed, nothing was written:\n{0}")]
    Precheck(crate::precheck::Report),
    /// MaxCompute refused a request or could not be reached.
    #[error("maxcompute: {source}")]
    MaxCompute {
        /// The tunnel's error.
        source: odps_tunnel::Error,
        /// Whether it may heal, decided by odps-tunnel's predicates when it
        /// converted (`From`).
        recovery: Recovery,
    },
    /// A task file setting that cannot be used; the message names it.
    #[error("{0}")]
    Config(String),
    /// Data, a column or a table that does not fit the other side: a type
    /// with no destination mapping, a value that does not convert, a
    /// destination table (or a file to merge) without a column the task
    /// needs. The message names the table or column.
    #[error("{0}")]
    Mapping(String),
    /// A binlog event (or a row image in it) that binlog-parser could not
    /// decode.
    #[error("binlog {at}: cannot decode the {what}: {source}")]
    Decode {
        /// Where the event is.
        at: BinlogAt,
        /// What was being decoded: `event`, `rows event`, `row`, ...
        what: &'static str,
        /// The parser's error.
        source: binlog_parser::Error,
    },
    /// A binlog event that decodes but that the task cannot follow (an XA
    /// statement it cannot read, a rows event without the image it needs).
    #[error("binlog {at}: {message}")]
    BinlogEvent {
        /// Where the event is.
        at: BinlogAt,
        /// What is wrong with it.
        message: String,
    },
    /// Replaying a prepared batch from its checkpointed intent did not
    /// reproduce it: the binlog changed under the task.
    #[error("{0}")]
    ReplayDiverged(String),
    /// A `[transform]` broke its contract (row count, schema).
    #[error("{0}")]
    Transform(String),
    /// A value the task saves (checkpoint state, a ledger, a report) did
    /// not serialize.
    #[error("{what} does not serialize: {source}")]
    Serialize {
        /// What was being saved.
        what: String,
        /// Serde's error.
        source: serde_json::Error,
    },
    /// Something the task wrote earlier (the checkpoint's schemas, a
    /// table definition, a partition in a ledger) cannot be read back.
    #[error("{what}: {reason}")]
    Unreadable {
        /// What it is, and where.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The destination is in a state the task cannot go on from by itself
    /// (a session it no longer knows mid-commit, a marker that did not
    /// read back); the message says what to check.
    #[error("{0}")]
    Destination(String),
    /// A blocking task the sink ran on a worker thread panicked or was
    /// cancelled.
    #[error("{what} task failed: {source}")]
    Join {
        /// Which task: `commit`, `read`.
        what: &'static str,
        /// Tokio's error.
        source: tokio::task::JoinError,
    },
    /// An invariant of the task itself does not hold: a bug.
    #[error("internal error: {0} (a bug in the sync task: please report it)")]
    Internal(String),
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

/// Where in the binlog an event is: `file:position`, or not known yet (the
/// driver fills it in where it knows the event).
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct BinlogAt(Option<(String, u64)>);

impl BinlogAt {
    /// The event at `position` (its first byte) in binlog `file`.
    pub fn new(file: impl Into<String>, position: u64) -> Self {
        Self(Some((file.into(), position)))
    }

    /// The binlog file and position, when known.
    pub fn position(&self) -> Option<(&str, u64)> {
        self.0.as_ref().map(|(f, p)| (f.as_str(), *p))
    }
}

impl fmt::Display for BinlogAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some((file, position)) => write!(f, "{file}:{position}"),
            None => f.write_str("(position not known)"),
        }
    }
}

impl Error {
    /// Whether trying again may succeed, and under which `[retry]` window:
    /// a lost connection, a timeout, a busy server or lock wait, a 5xx or
    /// throttled reply, a full disk heal; a refused login (MySQL 1045,
    /// MaxCompute 401/403), a missing destination table, a path the task may
    /// not write, data that does not map, a broken invariant do not.
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::Io { recovery, .. }
            | Self::Source { recovery, .. }
            | Self::MaxCompute { recovery, .. } => *recovery,
            // No catch-all: a new variant must say here whether it heals.
            Self::DestinationTableMissing { .. }
            | Self::ConflictingTable { .. }
            | Self::UnsafePath { .. }
            | Self::CorruptCheckpoint { .. }
            | Self::CheckpointTooNew { .. }
            | Self::Locked { .. }
            | Self::TableOwned { .. }
            | Self::Transition(_)
            | Self::Arrow(_)
            | Self::Parquet(_)
            | Self::Precheck(_)
            | Self::Config(_)
            | Self::Mapping(_)
            | Self::Decode { .. }
            | Self::BinlogEvent { .. }
            | Self::ReplayDiverged(_)
            | Self::Transform(_)
            | Self::Serialize { .. }
            | Self::Unreadable { .. }
            | Self::Destination(_)
            | Self::Join { .. }
            | Self::Internal(_)
            | Self::Ddl { .. }
            | Self::OversizedValue { .. }
            | Self::StatementLogged { .. }
            | Self::RowImageNotFull(_)
            | Self::XaUnknownBranch { .. }
            | Self::XaBranchFile { .. }
            | Self::SchemaDrift { .. }
            | Self::TableSet { .. }
            | Self::GaveUp { .. } => Recovery::Definite,
        }
    }

    /// Whether trying again may succeed ([`Error::recovery`]).
    pub fn is_transient(&self) -> bool {
        matches!(self.recovery(), Recovery::Transient(_))
    }

    /// An I/O error with what was being done and where; whether it may heal
    /// is decided here, from the kind of `source`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            recovery: Recovery::of_io(&source),
            source,
        }
    }

    /// A binlog-parser error while decoding `what` of the event at `at`.
    pub(crate) fn decode(at: BinlogAt, what: &'static str, source: binlog_parser::Error) -> Self {
        Self::Decode { at, what, source }
    }

    /// This error, placed at binlog `file:position` if it concerns an event
    /// whose place it does not know yet.
    pub(crate) fn at_binlog(mut self, file: &str, position: u64) -> Self {
        if let Self::Decode { at, .. } | Self::BinlogEvent { at, .. } = &mut self
            && at.0.is_none()
        {
            *at = BinlogAt::new(file, position);
        }
        self
    }

    /// A value that did not serialize while saving `what`.
    pub(crate) fn serialize(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Self {
        let what = what.into();
        move |source| Self::Serialize { what, source }
    }

    /// `what` (named with where it is) cannot be read back: `reason`.
    pub(crate) fn unreadable(what: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::Unreadable {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<mysql_source::Error> for Error {
    fn from(source: mysql_source::Error) -> Self {
        Self::Source {
            recovery: Recovery::of_source(&source),
            source,
        }
    }
}

impl From<odps_tunnel::Error> for Error {
    fn from(source: odps_tunnel::Error) -> Self {
        Self::MaxCompute {
            recovery: Recovery::of_maxcompute(&source),
            source,
        }
    }
}

/// Tunnel refusals that a retry from the checkpoint mends: it opens a new
/// upload or download session instead of the one that expired, was already
/// ended, or received a torn block.
fn healable_by_a_new_session(code: &str) -> bool {
    matches!(
        code,
        "NoSuchUpload" | "NoSuchDownload" | "InvalidStatusChange" | "MalformedDataStream"
    )
}

/// Whether a failed SQL instance failed inside MaxCompute (`ODPS-00…`:
/// system errors) rather than on the statement (`ODPS-01…` semantic
/// errors such as a missing table, `ODPS-04…` access and arguments).
fn system_failure(message: &str) -> bool {
    message.trim_start().starts_with("ODPS-00")
}
