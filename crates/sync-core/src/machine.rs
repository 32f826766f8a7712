//! The task's phases and every transition between them, in one place.
//!
//! ```text
//! Precheck ──► SchemaSync ──► FullSync ──────────────► Incremental ─┐
//!    │             │    (capture position, then chunks)     ▲   └────┘ batches
//!    │             └──► Positioning (no full phase) ────────┘
//!    └──(phases not selected are skipped)       FullSync ──► Finished (no incremental)
//! ```
//!
//! [`TaskState`] is what the checkpoint persists. [`TaskState::apply`] is the
//! only way to change it: it consumes the state and one [`Step`] and returns
//! the next state or a [`TransitionError`], so a step that the current phase
//! does not allow (a chunk after the full phase, a second batch intent while
//! one is pending) cannot slip through.
//!
//! What each phase persists:
//! * `FullSync`: the binlog position captured before the first row was read
//!   (where the incremental phase will start) and, per table, the chunks
//!   committed so far and the key to resume after.
//! * `Incremental`: the position up to which every change is committed, the
//!   next `record_id`, and at most one pending [`Intent`]: the batch being
//!   committed, so that a restart can ask the sink whether it landed; and
//!   the generation of the schemas in force at that position
//!   ([`crate::schema_history`]), which moves only with a DDL and only
//!   while no batch is pending.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A position in the source's binary log.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct SourcePosition {
    /// Binlog file name.
    pub file: String,
    /// Byte offset in the file of the next event to read.
    pub position: u64,
    /// The GTID state at this position, when the source uses GTIDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    /// Set when the position is inside the transaction that starts at
    /// `position` (a transaction too large for one commit): how many of its
    /// row changes (of synced tables) are committed. A count, not an offset,
    /// so that it holds on any server of the replication group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<u64>,
}

/// Which of the three sync types the task runs.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct SelectedPhases {
    /// Create `t_base` and `t_log` in the destination.
    pub schema: bool,
    /// Copy existing rows into `t_base`.
    pub full: bool,
    /// Stream changes into `t_log`.
    pub incremental: bool,
}

/// Progress of one table in the full phase.
#[derive(Clone, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
pub struct TableProgress {
    /// Chunks committed to `t_base`.
    pub chunks_done: u64,
    /// Rows committed to `t_base`.
    pub rows: u64,
    /// The key after which the next chunk starts (opaque to the machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<serde_json::Value>,
    /// Every chunk of the table is committed.
    pub done: bool,
    /// Rows read and not written because their key was in `t_base` before
    /// the task (`conflicting_tables = "ignore"`, [`crate::conflict`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What the task found in destination tables that existed before it
/// (`conflicting_tables = "ignore"`, [`crate::conflict`]), fixed before it
/// writes anything and kept for its whole life.
#[derive(Clone, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
pub struct Existing {
    /// The `record_id` counter the incremental phase starts at: above every
    /// record of this task's `record_id_tag` already in its `t_log` tables.
    pub next_record_id: u64,
    /// Source tables (`db.table`) whose `t_base` existed: the full phase
    /// skips the rows whose key it holds.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub base: std::collections::BTreeSet<String>,
    /// Rows the full phase skipped that way, per source table (set when the
    /// full phase ends; [`TableProgress::skipped`] counts them until then).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, u64>,
}

/// State of the full phase.
#[derive(Clone, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
pub struct FullSync {
    /// The binlog position captured before any row was read; `None` until captured.
    pub start: Option<SourcePosition>,
    /// Progress per source table (`db.table`).
    pub tables: BTreeMap<String, TableProgress>,
}

/// A batch of changes being committed: written to the checkpoint before the
/// sink makes the batch visible, cleared once the checkpoint moves past it.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Intent {
    /// The sink's name for this commit unit, derived from the range.
    pub unit: String,
    /// The position after the batch's last transaction.
    pub to: SourcePosition,
    /// The `record_id` the next batch starts with.
    pub next_record_id: u64,
    /// The XA branches prepared and undecided at `to`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xa: Vec<PreparedXa>,
}

/// An XA branch the source prepared and has not yet decided: its changes
/// wait in `state_dir/xa/<file>` for its `XA COMMIT` ([`crate::xa`]).
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct PreparedXa {
    /// The xid as SQL writes it: `X'gtrid',X'bqual',formatID`.
    pub xid: String,
    /// The file in `state_dir/xa` holding the branch's row events.
    pub file: String,
    /// Binlog `file:offset` of its XA_PREPARE event.
    pub prepared_at: String,
    /// Binlog time of its XA_PREPARE event (Unix seconds).
    pub since_unix: i64,
    /// Row events of synced tables it holds.
    pub row_events: u64,
}

/// State of the incremental phase.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Incremental {
    /// Every change before this position is committed to `t_log`.
    pub position: SourcePosition,
    /// The `record_id` of the next change record.
    pub next_record_id: u64,
    /// The batch whose commit is in flight, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Intent>,
    /// Generation of the saved schemas of the synced tables as of
    /// `position` (`None` until the first is saved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemas: Option<u64>,
    /// The XA branches prepared and undecided at `position`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xa: Vec<PreparedXa>,
    /// Tables added to `[objects] include` during this phase, by `db.table`:
    /// where their changes start and how far their baseline is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub added: BTreeMap<String, AddedTable>,
    /// Tables removed from `[objects] include` during this phase, by
    /// `db.table`: no longer synced; their destination tables stay.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, RemovedTable>,
    /// Published baseline generations (`sync-cli resnapshot`), by `db.table`:
    /// merges read that base table and only log records from its cutoff on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baselines: BTreeMap<String, BaseGeneration>,
    /// Baseline generations being copied, by `db.table` (published when
    /// their last chunk is committed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resnapshots: BTreeMap<String, Resnapshot>,
}

impl Incremental {
    /// The phase's state at its start: every change from `position` on is
    /// to come, the first with counter `next_record_id`.
    fn at(position: SourcePosition, next_record_id: u64) -> Self {
        Self {
            position,
            next_record_id,
            pending: None,
            schemas: None,
            xa: Vec::new(),
            added: BTreeMap::new(),
            removed: BTreeMap::new(),
            baselines: BTreeMap::new(),
            resnapshots: BTreeMap::new(),
        }
    }
}

/// A baseline generation of a table: a base table read after the position
/// where the log record `log_from` was the next one.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct BaseGeneration {
    /// Its number (the table's first baseline is 1).
    pub generation: u64,
    /// The destination table holding it.
    pub table: String,
    /// The first `record_id` (with its tag) of the log records that count
    /// with it; older ones are superseded by it.
    pub log_from: i64,
}

/// A baseline generation being copied.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Resnapshot {
    /// What it publishes once complete.
    pub target: BaseGeneration,
    /// Its chunks committed so far.
    pub baseline: TableProgress,
    /// For a table without a key: the position its snapshot was read at.
    /// It is published there, when the stream reaches it (its cutoff is
    /// the `record_id` of the next change then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<SourcePosition>,
}

/// A table added to a task already in the incremental phase: its changes
/// from `start` on go to its `t_log`, its baseline (read after `start`) to
/// its `t_base`.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct AddedTable {
    /// The binlog position from which its changes are streamed (`S`).
    pub start: SourcePosition,
    /// The stem of its baseline's commit unit names, fixed when it was first
    /// added (a keyless table's snapshot read again keeps it).
    pub id: String,
    /// Its tracked schema (opaque to the machine).
    pub table: serde_json::Value,
    /// It has no key: its baseline is one consistent snapshot taken at `start`.
    pub keyless: bool,
    /// The stream has reached `start`: its changes go to its `t_log`.
    pub live: bool,
    /// The `record_id` counter when it went live (set then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_record_id: Option<u64>,
    /// Its baseline's chunks committed to `t_base`.
    pub baseline: TableProgress,
}

impl AddedTable {
    /// Its baseline is in `t_base` and its changes reach `t_log`.
    pub fn complete(&self) -> bool {
        self.live && self.baseline.done
    }
}

/// A table removed from `[objects] include` during the incremental phase.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct RemovedTable {
    /// Its changes up to this position are in its `t_log`; none after.
    pub at: SourcePosition,
    /// Its destination name stem (`t` of `t_base`/`t_log`), which stay.
    pub dest: String,
}

/// The phase a task is in.
// One value per task, stepped a few times a second at most: boxing the
// incremental state would only add an indirection to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Checking both ends before anything is written.
    Precheck,
    /// Creating `t_base` and `t_log`.
    SchemaSync,
    /// Copying existing rows into `t_base`.
    FullSync(FullSync),
    /// No full phase: capturing the position where the incremental phase starts.
    Positioning,
    /// Streaming changes into `t_log`.
    Incremental(Incremental),
    /// All selected phases are done (no incremental phase was selected).
    Finished,
}

impl Phase {
    /// A short name for logs and `status`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Precheck => "precheck",
            Self::SchemaSync => "schema_sync",
            Self::FullSync(_) => "full_sync",
            Self::Positioning => "positioning",
            Self::Incremental(_) => "incremental",
            Self::Finished => "finished",
        }
    }
}

/// Something that happened, reported to the machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Every precheck passed (warnings allowed).
    PrecheckPassed,
    /// Destination tables existed before the task (`conflicting_tables =
    /// "ignore"`): what it found there (before the precheck passes; a
    /// restart at the precheck looks again).
    ExistingFound(Existing),
    /// The destination tables exist.
    SchemaSynced,
    /// The binlog position was captured (before any row is read in the full phase).
    PositionCaptured(SourcePosition),
    /// A chunk of a table is committed to `t_base`.
    ChunkCommitted {
        /// Source table, `db.table`.
        table: String,
        /// Rows in the chunk.
        rows: u64,
        /// The key to resume after, `None` for a single-chunk table.
        resume_after: Option<serde_json::Value>,
        /// This was the table's last chunk.
        last: bool,
        /// Rows of the chunk not written: their key was in `t_base` before the task.
        skipped: u64,
    },
    /// Every table's chunks are committed.
    FullSyncFinished,
    /// A batch of changes is about to be committed.
    BatchPrepared(Intent),
    /// The pending batch is visible in the sink.
    BatchCommitted,
    /// The pending batch did not land (found on restart); it will be redone.
    BatchAbandoned,
    /// A table joins the task during the incremental phase: its start
    /// position is captured (and for a keyless table its snapshot taken) but
    /// none of its rows is emitted yet. A table not yet live and without a
    /// committed chunk may be added again (its snapshot read again).
    TableAdded {
        /// Source table, `db.table`.
        table: String,
        /// Where it stands.
        added: AddedTable,
    },
    /// The stream reached an added table's start: from `to` on, generation
    /// `generation` (which tracks it) is in force and its changes are emitted.
    TableLive {
        /// Source table, `db.table`.
        table: String,
        /// The saved generation that tracks it.
        generation: u64,
        /// Where it takes effect (at or after its start).
        to: SourcePosition,
        /// The XA branches prepared and undecided at `to`.
        xa: Vec<PreparedXa>,
    },
    /// A chunk of an added table's baseline is committed to `t_base`.
    BaselineChunk {
        /// Source table, `db.table`.
        table: String,
        /// Rows in the chunk.
        rows: u64,
        /// The chunks done so far (opaque to the machine).
        resume_after: Option<serde_json::Value>,
        /// This was its last chunk.
        last: bool,
    },
    /// A new baseline generation of a synced table starts being copied
    /// (replacing one not yet complete).
    ResnapshotStarted {
        /// Source table, `db.table`.
        table: String,
        /// The generation.
        resnapshot: Resnapshot,
    },
    /// A chunk of a baseline generation is committed; the last publishes it.
    ResnapshotChunk {
        /// Source table, `db.table`.
        table: String,
        /// Rows in the chunk.
        rows: u64,
        /// The chunks done so far (opaque to the machine).
        resume_after: Option<serde_json::Value>,
        /// This was its last chunk.
        last: bool,
    },
    /// The stream reached the start of a complete keyless baseline
    /// generation: it is published with cutoff `log_from` at `to`.
    ResnapshotPublished {
        /// Source table, `db.table`.
        table: String,
        /// The first `record_id` (with its tag) of the changes after `to`.
        log_from: i64,
        /// Where it takes effect (at or after its start).
        to: SourcePosition,
        /// The XA branches prepared and undecided at `to`.
        xa: Vec<PreparedXa>,
    },
    /// A table left `[objects] include`: from `to` on, generation
    /// `generation` (which no longer tracks it) is in force.
    TableRemoved {
        /// Source table, `db.table`.
        table: String,
        /// Its destination name stem.
        dest: String,
        /// The saved generation without it.
        generation: u64,
        /// Where it takes effect.
        to: SourcePosition,
        /// The XA branches prepared and undecided at `to`.
        xa: Vec<PreparedXa>,
    },
    /// The schemas of the synced tables changed (a DDL) or were saved for the
    /// first time: generation `generation` is in force from `to` on.
    SchemaChanged {
        /// The saved generation, newer than the one in force.
        generation: u64,
        /// Where it takes effect: after the DDL (or the current position).
        to: SourcePosition,
        /// The XA branches prepared and undecided at `to`.
        xa: Vec<PreparedXa>,
    },
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Self::PrecheckPassed => "precheck_passed",
            Self::ExistingFound(_) => "existing_found",
            Self::SchemaSynced => "schema_synced",
            Self::PositionCaptured(_) => "position_captured",
            Self::ChunkCommitted { .. } => "chunk_committed",
            Self::FullSyncFinished => "full_sync_finished",
            Self::BatchPrepared(_) => "batch_prepared",
            Self::BatchCommitted => "batch_committed",
            Self::BatchAbandoned => "batch_abandoned",
            Self::SchemaChanged { .. } => "schema_changed",
            Self::TableAdded { .. } => "table_added",
            Self::TableLive { .. } => "table_live",
            Self::BaselineChunk { .. } => "baseline_chunk",
            Self::TableRemoved { .. } => "table_removed",
            Self::ResnapshotStarted { .. } => "resnapshot_started",
            Self::ResnapshotChunk { .. } => "resnapshot_chunk",
            Self::ResnapshotPublished { .. } => "resnapshot_published",
        }
    }
}

/// A step the current phase does not allow.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("step `{step}` is not allowed in phase `{phase}`: {why}")]
pub struct TransitionError {
    /// The phase the task was in.
    pub phase: &'static str,
    /// The step that was refused.
    pub step: &'static str,
    /// Why.
    pub why: &'static str,
}

/// Everything the checkpoint persists about a task.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct TaskState {
    /// The sync types the task runs.
    pub selected: SelectedPhases,
    /// Where it is.
    pub phase: Phase,
    /// This task's id, part of every commit unit's name so that tasks sharing
    /// a destination never take each other's units for their own (empty in
    /// checkpoints written before it existed: their unit names stay as they were).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    /// What the task found in destination tables that existed before it
    /// (`conflicting_tables = "ignore"`); `None` when it found none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing: Option<Existing>,
}

impl TaskState {
    /// A new task, at the precheck.
    pub fn new(selected: SelectedPhases) -> Self {
        Self {
            selected,
            phase: Phase::Precheck,
            task_id: String::new(),
            existing: None,
        }
    }

    /// The same state with this task id.
    pub fn with_task_id(mut self, task_id: impl Into<String>) -> Self {
        self.task_id = task_id.into();
        self
    }

    /// The name of a commit unit of this task.
    pub fn unit_name(&self, unit: &str) -> String {
        if self.task_id.is_empty() {
            unit.to_owned()
        } else {
            format!("{}-{unit}", self.task_id)
        }
    }

    /// The phase after the schema phase (or after the precheck when the
    /// schema phase is not selected).
    fn after_schema(&self) -> Phase {
        if self.selected.full {
            Phase::FullSync(FullSync::default())
        } else if self.selected.incremental {
            Phase::Positioning
        } else {
            Phase::Finished
        }
    }

    /// Applies one step and returns the next state.
    ///
    /// # Errors
    /// [`TransitionError`] when the step is not allowed in the current phase;
    /// the state is then unchanged (returned to no one: the caller keeps its
    /// checkpoint and stops).
    pub fn apply(self, step: Step) -> Result<Self, TransitionError> {
        let refuse = |phase: &Phase, why| TransitionError {
            phase: phase.name(),
            step: step.name(),
            why,
        };
        let selected = self.selected;
        let task_id = self.task_id;
        let mut existing = self.existing;
        // The first counter of the incremental phase: above every record
        // of the task's tag already in its destination tables.
        let first_record_id = existing.as_ref().map_or(1, |e| e.next_record_id.max(1));
        let next = match (self.phase, step.clone()) {
            (Phase::Precheck, Step::ExistingFound(found)) => {
                existing = Some(found);
                Phase::Precheck
            }
            (Phase::Precheck, Step::PrecheckPassed) => {
                if selected.schema {
                    Phase::SchemaSync
                } else {
                    Self::new(selected).after_schema()
                }
            }
            (Phase::SchemaSync, Step::SchemaSynced) => Self::new(selected).after_schema(),
            (Phase::FullSync(mut full), Step::PositionCaptured(pos)) => {
                if full.start.is_some() {
                    return Err(refuse(
                        &Phase::FullSync(full),
                        "the start position is already captured",
                    ));
                }
                full.start = Some(pos);
                Phase::FullSync(full)
            }
            (
                Phase::FullSync(mut full),
                Step::ChunkCommitted {
                    table,
                    rows,
                    resume_after,
                    last,
                    skipped,
                },
            ) => {
                if full.start.is_none() {
                    return Err(refuse(
                        &Phase::FullSync(full),
                        "no row may be read before the binlog position is captured",
                    ));
                }
                let progress = full.tables.entry(table).or_default();
                if progress.done {
                    return Err(refuse(
                        &Phase::FullSync(full),
                        "the table's last chunk was already committed",
                    ));
                }
                progress.chunks_done += 1;
                progress.rows += rows;
                progress.resume_after = resume_after;
                progress.done = last;
                progress.skipped += skipped;
                Phase::FullSync(full)
            }
            (Phase::FullSync(full), Step::FullSyncFinished) => {
                let Some(start) = full.start.clone() else {
                    return Err(refuse(
                        &Phase::FullSync(full),
                        "the start position was never captured",
                    ));
                };
                if full.tables.values().any(|t| !t.done) {
                    return Err(refuse(
                        &Phase::FullSync(full),
                        "some tables still have chunks to copy",
                    ));
                }
                if let Some(e) = existing.as_mut() {
                    e.skipped = full
                        .tables
                        .iter()
                        .filter(|(_, t)| t.skipped > 0)
                        .map(|(n, t)| (n.clone(), t.skipped))
                        .collect();
                }
                if selected.incremental {
                    Phase::Incremental(Incremental::at(start, first_record_id))
                } else {
                    Phase::Finished
                }
            }
            (Phase::Positioning, Step::PositionCaptured(pos)) => {
                Phase::Incremental(Incremental::at(pos, first_record_id))
            }
            (Phase::Incremental(mut inc), Step::BatchPrepared(intent)) => {
                if inc.pending.is_some() {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "another batch is still pending",
                    ));
                }
                if intent.next_record_id < inc.next_record_id {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "record ids must not go backwards",
                    ));
                }
                inc.pending = Some(intent);
                Phase::Incremental(inc)
            }
            (Phase::Incremental(mut inc), Step::BatchCommitted) => match inc.pending.take() {
                Some(intent) => {
                    inc.position = intent.to;
                    inc.next_record_id = intent.next_record_id;
                    inc.xa = intent.xa;
                    Phase::Incremental(inc)
                }
                None => return Err(refuse(&Phase::Incremental(inc), "no batch is pending")),
            },
            (Phase::Incremental(mut inc), Step::BatchAbandoned) => {
                if inc.pending.take().is_none() {
                    return Err(refuse(&Phase::Incremental(inc), "no batch is pending"));
                }
                Phase::Incremental(inc)
            }
            (Phase::Incremental(mut inc), Step::SchemaChanged { generation, to, xa }) => {
                if inc.pending.is_some() {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "a batch is pending: it must land before the schema changes",
                    ));
                }
                if inc.schemas.is_some_and(|g| generation <= g) {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "schema generations must grow",
                    ));
                }
                inc.position = to;
                inc.schemas = Some(generation);
                inc.xa = xa;
                Phase::Incremental(inc)
            }
            (Phase::Incremental(mut inc), Step::TableAdded { table, added }) => {
                if inc.pending.is_some() {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "a batch is pending: it must land before a table is added",
                    ));
                }
                if inc
                    .added
                    .get(&table)
                    .is_some_and(|a| a.live || a.baseline.chunks_done > 0)
                {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "the table is live or has baseline rows committed already",
                    ));
                }
                inc.removed.remove(&table);
                inc.added.insert(table, added);
                Phase::Incremental(inc)
            }
            (
                Phase::Incremental(mut inc),
                Step::TableLive {
                    table,
                    generation,
                    to,
                    xa,
                },
            ) => {
                let why = if inc.pending.is_some() {
                    Some("a batch is pending: it must land before the table goes live")
                } else if inc.schemas.is_some_and(|g| generation <= g) {
                    Some("schema generations must grow")
                } else {
                    match inc.added.get(&table) {
                        None => Some("the table was never added"),
                        Some(a) if a.live => Some("the table is live already"),
                        Some(a) if a.keyless && !a.baseline.done => {
                            Some("a keyless table goes live only after its snapshot is committed")
                        }
                        Some(_) => None,
                    }
                };
                if let Some(why) = why {
                    return Err(refuse(&Phase::Incremental(inc), why));
                }
                let next_record_id = inc.next_record_id;
                if let Some(a) = inc.added.get_mut(&table) {
                    a.live = true;
                    a.start_record_id = Some(next_record_id);
                }
                inc.position = to;
                inc.xa = xa;
                inc.schemas = Some(generation);
                Phase::Incremental(inc)
            }
            (
                Phase::Incremental(mut inc),
                Step::BaselineChunk {
                    table,
                    rows,
                    resume_after,
                    last,
                },
            ) => {
                let Some(a) = inc.added.get_mut(&table).filter(|a| !a.baseline.done) else {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "the table has no baseline being copied",
                    ));
                };
                a.baseline.chunks_done += 1;
                a.baseline.rows += rows;
                a.baseline.resume_after = resume_after;
                a.baseline.done = last;
                Phase::Incremental(inc)
            }
            (
                Phase::Incremental(mut inc),
                Step::TableRemoved {
                    table,
                    dest,
                    generation,
                    to,
                    xa,
                },
            ) => {
                if inc.pending.is_some() {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "a batch is pending: it must land before a table is removed",
                    ));
                }
                if inc.schemas.is_some_and(|g| generation <= g) {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "schema generations must grow",
                    ));
                }
                inc.added.remove(&table);
                inc.removed.insert(
                    table,
                    RemovedTable {
                        at: to.clone(),
                        dest,
                    },
                );
                inc.position = to;
                inc.xa = xa;
                inc.schemas = Some(generation);
                Phase::Incremental(inc)
            }
            (Phase::Incremental(mut inc), Step::ResnapshotStarted { table, resnapshot }) => {
                let current = inc.baselines.get(&table).map_or(1, |b| b.generation);
                if resnapshot.target.generation <= current {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "baseline generations must grow",
                    ));
                }
                inc.resnapshots.insert(table, resnapshot);
                Phase::Incremental(inc)
            }
            (
                Phase::Incremental(mut inc),
                Step::ResnapshotChunk {
                    table,
                    rows,
                    resume_after,
                    last,
                },
            ) => {
                let Some(r) = inc.resnapshots.get_mut(&table) else {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "no baseline generation of the table is being copied",
                    ));
                };
                r.baseline.chunks_done += 1;
                r.baseline.rows += rows;
                r.baseline.resume_after = resume_after;
                r.baseline.done = last;
                // A keyless generation waits for the stream to reach its start.
                if last
                    && r.start.is_none()
                    && let Some(r) = inc.resnapshots.remove(&table)
                {
                    inc.baselines.insert(table, r.target);
                }
                Phase::Incremental(inc)
            }
            (
                Phase::Incremental(mut inc),
                Step::ResnapshotPublished {
                    table,
                    log_from,
                    to,
                    xa,
                },
            ) => {
                let ready = inc
                    .resnapshots
                    .get(&table)
                    .is_some_and(|r| r.baseline.done && r.start.is_some());
                if inc.pending.is_some() || !ready {
                    return Err(refuse(
                        &Phase::Incremental(inc),
                        "only a complete keyless generation is published, with no batch pending",
                    ));
                }
                if let Some(r) = inc.resnapshots.remove(&table) {
                    let mut target = r.target;
                    target.log_from = log_from;
                    inc.baselines.insert(table, target);
                }
                inc.position = to;
                inc.xa = xa;
                Phase::Incremental(inc)
            }
            (phase, _) => return Err(refuse(&phase, "the phase does not take this step")),
        };
        Ok(Self {
            selected,
            phase: next,
            task_id,
            existing,
        })
    }
}

/// Fixtures shared by the tests of this module and of the batcher.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::SourcePosition;

    /// `file:position`, without a GTID or a place inside a transaction.
    pub(crate) fn pos(file: &str, position: u64) -> SourcePosition {
        SourcePosition {
            file: file.into(),
            position,
            gtid: None,
            within: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::pos;
    use super::*;

    const ALL: SelectedPhases = SelectedPhases {
        schema: true,
        full: true,
        incremental: true,
    };

    fn chunk(table: &str, rows: u64, last: bool) -> Step {
        Step::ChunkCommitted {
            table: table.into(),
            rows,
            resume_after: Some(rows.into()),
            last,
            skipped: 0,
        }
    }

    /// Destination tables found before the task: the incremental phase's
    /// counter starts above their records, and the full phase's skips are
    /// kept past it.
    #[test]
    fn existing_tables_set_the_first_record_id_and_keep_the_skip_counts() {
        let found = Existing {
            next_record_id: 42,
            base: ["shop.a".to_owned()].into(),
            skipped: BTreeMap::new(),
        };
        let s = TaskState::new(ALL)
            .apply(Step::ExistingFound(found))
            .and_then(|s| s.apply(Step::PrecheckPassed))
            .and_then(|s| s.apply(Step::SchemaSynced))
            .and_then(|s| s.apply(Step::PositionCaptured(pos("b.1", 4))))
            .and_then(|s| {
                s.apply(Step::ChunkCommitted {
                    table: "shop.a".into(),
                    rows: 10,
                    resume_after: None,
                    last: true,
                    skipped: 7,
                })
            })
            .and_then(|s| s.apply(Step::FullSyncFinished))
            .expect("walk");
        let Phase::Incremental(inc) = &s.phase else {
            panic!("{:?}", s.phase)
        };
        assert_eq!(inc.next_record_id, 42);
        let e = s.existing.as_ref().expect("existing");
        assert_eq!(e.skipped.get("shop.a"), Some(&7));
        // Only before the precheck passes.
        assert!(s.apply(Step::ExistingFound(Existing::default())).is_err());
        // Without it, the counter starts at 1.
        let s = TaskState::new(SelectedPhases {
            schema: false,
            full: false,
            incremental: true,
        })
        .apply(Step::PrecheckPassed)
        .and_then(|s| s.apply(Step::PositionCaptured(pos("b.1", 4))))
        .expect("walk");
        assert!(matches!(&s.phase, Phase::Incremental(i) if i.next_record_id == 1));
    }

    #[test]
    fn full_task_walks_every_phase_and_starts_incremental_at_the_captured_position() {
        let s = TaskState::new(ALL);
        let s = s.apply(Step::PrecheckPassed).expect("precheck");
        assert_eq!(s.phase, Phase::SchemaSync);
        let s = s.apply(Step::SchemaSynced).expect("schema");
        let s = s
            .apply(Step::PositionCaptured(pos("b.000002", 500)))
            .expect("capture");
        let s = s.apply(chunk("shop.a", 10, false)).expect("chunk");
        let s = s.apply(chunk("shop.a", 5, true)).expect("chunk");
        let Phase::FullSync(full) = &s.phase else {
            panic!("{:?}", s.phase)
        };
        assert_eq!(full.tables["shop.a"].rows, 15);
        assert_eq!(full.tables["shop.a"].chunks_done, 2);
        let s = s.apply(Step::FullSyncFinished).expect("finish");
        assert_eq!(
            s.phase,
            Phase::Incremental(Incremental {
                position: pos("b.000002", 500),
                next_record_id: 1,
                pending: None,
                schemas: None,
                xa: Vec::new(),
                added: BTreeMap::new(),
                removed: BTreeMap::new(),
                baselines: BTreeMap::new(),
                resnapshots: BTreeMap::new(),
            })
        );
    }

    #[test]
    fn no_row_before_the_position_and_no_finish_with_open_tables() {
        let s = TaskState::new(ALL)
            .apply(Step::PrecheckPassed)
            .and_then(|s| s.apply(Step::SchemaSynced));
        let s = s.expect("to full sync");
        let err = s
            .clone()
            .apply(chunk("shop.a", 1, true))
            .expect_err("chunk before capture");
        assert!(err.why.contains("captured"), "{err}");
        let s = s
            .apply(Step::PositionCaptured(pos("b.1", 4)))
            .expect("capture");
        let s = s.apply(chunk("shop.a", 1, false)).expect("chunk");
        assert!(s.clone().apply(Step::FullSyncFinished).is_err());
        let s = s.apply(chunk("shop.a", 1, true)).expect("last");
        assert!(
            s.apply(chunk("shop.a", 1, true)).is_err(),
            "chunk after the last"
        );
    }

    #[test]
    fn batches_advance_position_and_ids_only_when_committed() {
        let sel = SelectedPhases {
            schema: false,
            full: false,
            incremental: true,
        };
        let s = TaskState::new(sel)
            .apply(Step::PrecheckPassed)
            .expect("precheck");
        assert_eq!(s.phase, Phase::Positioning);
        let s = s
            .apply(Step::PositionCaptured(pos("b.1", 4)))
            .expect("capture");
        let intent = Intent {
            unit: "u1".into(),
            to: pos("b.1", 900),
            next_record_id: 41,
            xa: vec![PreparedXa {
                xid: "X'6131',X'',1".into(),
                file: "b.1-000000000800.xa".into(),
                prepared_at: "b.1:760".into(),
                since_unix: 1_700_000_000,
                row_events: 2,
            }],
        };
        let s = s
            .apply(Step::BatchPrepared(intent.clone()))
            .expect("prepare");
        assert!(
            s.clone().apply(Step::BatchPrepared(intent)).is_err(),
            "two pending"
        );
        let abandoned = s.clone().apply(Step::BatchAbandoned).expect("abandon");
        let Phase::Incremental(inc) = &abandoned.phase else {
            panic!()
        };
        assert_eq!(
            (
                inc.position.position,
                inc.next_record_id,
                inc.pending.is_none()
            ),
            (4, 1, true)
        );
        let s = s.apply(Step::BatchCommitted).expect("commit");
        let Phase::Incremental(inc) = &s.phase else {
            panic!()
        };
        assert_eq!(
            (
                inc.position.position,
                inc.next_record_id,
                inc.pending.is_none()
            ),
            (900, 41, true)
        );
        assert_eq!(inc.xa.len(), 1, "the held XA branches move with the batch");
        assert!(
            matches!(&abandoned.phase, Phase::Incremental(i) if i.xa.is_empty()),
            "an abandoned batch's branches are not the position's"
        );
        let back = Intent {
            unit: "u0".into(),
            to: pos("b.1", 950),
            next_record_id: 3,
            xa: Vec::new(),
        };
        assert!(
            s.apply(Step::BatchPrepared(back)).is_err(),
            "ids went backwards"
        );
    }

    #[test]
    fn schema_changes_move_the_position_only_between_batches() {
        let sel = SelectedPhases {
            schema: false,
            full: false,
            incremental: true,
        };
        let s = TaskState::new(sel)
            .apply(Step::PrecheckPassed)
            .and_then(|s| s.apply(Step::PositionCaptured(pos("b.1", 4))))
            .expect("incremental");
        let s = s
            .apply(Step::SchemaChanged {
                generation: 1,
                to: pos("b.1", 4),
                xa: Vec::new(),
            })
            .expect("first schemas");
        let pending = s
            .clone()
            .apply(Step::BatchPrepared(Intent {
                unit: "u".into(),
                to: pos("b.1", 90),
                next_record_id: 3,
                xa: Vec::new(),
            }))
            .expect("prepare");
        let err = pending
            .apply(Step::SchemaChanged {
                generation: 2,
                to: pos("b.1", 120),
                xa: Vec::new(),
            })
            .expect_err("pending batch");
        assert!(err.why.contains("pending"), "{err}");
        assert!(
            s.clone()
                .apply(Step::SchemaChanged {
                    generation: 1,
                    to: pos("b.1", 9),
                    xa: Vec::new(),
                })
                .is_err(),
            "generation did not grow"
        );
        let s = s
            .apply(Step::SchemaChanged {
                generation: 2,
                to: pos("b.1", 200),
                xa: Vec::new(),
            })
            .expect("ddl");
        let Phase::Incremental(inc) = &s.phase else {
            panic!()
        };
        assert_eq!(
            (inc.position.position, inc.schemas, inc.next_record_id),
            (200, Some(2), 1)
        );
    }

    fn incremental_at(position: u64) -> TaskState {
        let sel = SelectedPhases {
            schema: false,
            full: false,
            incremental: true,
        };
        TaskState::new(sel)
            .apply(Step::PrecheckPassed)
            .and_then(|s| s.apply(Step::PositionCaptured(pos("b.1", position))))
            .and_then(|s| {
                s.apply(Step::SchemaChanged {
                    generation: 1,
                    to: pos("b.1", position),
                    xa: Vec::new(),
                })
            })
            .expect("incremental")
    }

    fn added(keyless: bool) -> AddedTable {
        AddedTable {
            start: pos("b.1", 500),
            id: "x".into(),
            table: serde_json::Value::Null,
            keyless,
            live: false,
            start_record_id: None,
            baseline: TableProgress::default(),
        }
    }

    fn inc(s: &TaskState) -> &Incremental {
        match &s.phase {
            Phase::Incremental(i) => i,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_added_table_goes_live_once_and_its_baseline_completes_chunk_by_chunk() {
        let s = incremental_at(4)
            .apply(Step::TableAdded {
                table: "d.n".into(),
                added: added(false),
            })
            .expect("added");
        let chunk = |last| Step::BaselineChunk {
            table: "d.n".into(),
            rows: 10,
            resume_after: None,
            last,
        };
        let s = s.apply(chunk(false)).expect("chunk before live");
        assert!(
            s.clone()
                .apply(Step::TableAdded {
                    table: "d.n".into(),
                    added: added(false),
                })
                .is_err(),
            "re-added with a chunk committed"
        );
        let s = s
            .apply(Step::TableLive {
                table: "d.n".into(),
                generation: 2,
                to: pos("b.1", 520),
                // A branch prepared before the table went live: the
                // checkpoint that moves past its PREPARE must keep it.
                xa: vec![PreparedXa {
                    xid: "X'31',X'',1".into(),
                    file: "xa-1".into(),
                    prepared_at: "b.1:500".into(),
                    since_unix: 1,
                    row_events: 1,
                }],
            })
            .expect("live");
        assert_eq!(inc(&s).xa.len(), 1, "the held branch is in the checkpoint");
        let a = &inc(&s).added["d.n"];
        assert_eq!(
            (
                a.live,
                a.start_record_id,
                inc(&s).position.position,
                inc(&s).schemas
            ),
            (true, Some(1), 520, Some(2))
        );
        assert!(!a.complete());
        let s = s.apply(chunk(true)).expect("last chunk");
        assert!(inc(&s).added["d.n"].complete());
        assert!(s.apply(chunk(true)).is_err(), "chunk after the last");
        // A keyless table goes live only with its snapshot committed.
        let k = incremental_at(4)
            .apply(Step::TableAdded {
                table: "d.k".into(),
                added: added(true),
            })
            .expect("keyless");
        let live = |g| Step::TableLive {
            table: "d.k".into(),
            generation: g,
            to: pos("b.1", 600),
            xa: Vec::new(),
        };
        assert!(k.clone().apply(live(2)).is_err());
        let k = k
            .apply(Step::BaselineChunk {
                table: "d.k".into(),
                rows: 3,
                resume_after: None,
                last: true,
            })
            .and_then(|k| k.apply(live(2)))
            .expect("keyless live");
        let k = k
            .apply(Step::TableRemoved {
                table: "d.k".into(),
                dest: "k".into(),
                generation: 3,
                to: pos("b.1", 700),
                xa: Vec::new(),
            })
            .expect("removed");
        assert!(inc(&k).added.is_empty());
        assert_eq!(inc(&k).removed["d.k"].at.position, 700);
    }

    #[test]
    fn a_baseline_generation_is_published_with_its_last_chunk() {
        let target = BaseGeneration {
            generation: 2,
            table: "t_base_g2".into(),
            log_from: 41,
        };
        let s = incremental_at(4)
            .apply(Step::ResnapshotStarted {
                table: "d.t".into(),
                resnapshot: Resnapshot {
                    target: target.clone(),
                    baseline: TableProgress::default(),
                    start: None,
                },
            })
            .expect("started");
        let chunk = |last| Step::ResnapshotChunk {
            table: "d.t".into(),
            rows: 5,
            resume_after: None,
            last,
        };
        let s = s.apply(chunk(false)).expect("chunk");
        assert!(inc(&s).baselines.is_empty(), "not before the last chunk");
        let s = s.apply(chunk(true)).expect("last");
        assert_eq!(inc(&s).baselines["d.t"], target);
        assert!(inc(&s).resnapshots.is_empty());
        let again = Step::ResnapshotStarted {
            table: "d.t".into(),
            resnapshot: Resnapshot {
                target,
                baseline: TableProgress::default(),
                start: None,
            },
        };
        assert!(s.apply(again).is_err(), "generations must grow");
    }

    #[test]
    fn schema_only_task_finishes_and_state_round_trips_through_json() {
        let sel = SelectedPhases {
            schema: true,
            full: false,
            incremental: false,
        };
        let s = TaskState::new(sel)
            .apply(Step::PrecheckPassed)
            .and_then(|s| s.apply(Step::SchemaSynced));
        assert_eq!(s.expect("schema").phase, Phase::Finished);
        let s = TaskState::new(ALL)
            .with_task_id("t1")
            .apply(Step::PrecheckPassed)
            .expect("p");
        assert_eq!(
            (s.task_id.as_str(), s.unit_name("u").as_str()),
            ("t1", "t1-u")
        );
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(serde_json::from_str::<TaskState>(&json).expect("back"), s);
        // A checkpoint from before task ids keeps its unit names.
        let old: TaskState =
            serde_json::from_str(&json.replace(r#","task_id":"t1""#, "")).expect("old");
        assert_eq!(
            (old.task_id.as_str(), old.unit_name("u").as_str()),
            ("", "u")
        );
    }
}
