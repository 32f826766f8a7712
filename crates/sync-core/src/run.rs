//! Drives a task through its phases against a real source and a sink.
//!
//! Every step goes through [`TaskState::apply`] and is checkpointed before
//! the next one starts; see the crate docs for the exactly-once protocol.
//!
//! # One writer
//!
//! A run holds its `state_dir`'s lock ([`crate::state_lock`]) from before
//! its precheck to its end; a second run over the same state directory
//! fails at once naming the holder. Each destination table records the task
//! that writes it under its `record_id_tag` ([`Sink::claim_table`]), so a
//! second task over the same tables and tag is refused too.
//!
//! # Stopping
//!
//! [`RunOptions::stop`] stops a run within [`STOP_GRACE`] of being set, in
//! every phase: the incremental phase at the next transaction boundary
//! (committing what it read up to there), the full phase at once (chunks
//! being read are dropped, a chunk being committed is let finish), anything
//! else (a precheck, a connect to a source that does not answer) where it
//! is. Whatever has not finished by the end of the grace is abandoned
//! where it stands, which is as safe as `kill -9` at that instant: the
//! checkpoint and the sinks' commit units make the next run resume exactly
//! (crate docs). Each stop, and why, is recorded for `status`
//! ([`crate::status`]).

use crate::batcher::{Batcher, Commit, Decision, End, Limits, Read};
use crate::checkpoint::CheckpointStore;
use crate::config::{TaskConfig, UnsupportedEvents};
use crate::error::{BinlogAt, Error, Result};
use crate::machine::{Incremental, Intent, Phase, PreparedXa, SourcePosition, Step, TaskState};
use crate::metrics::{Metrics, unix_now};
use crate::naming::Naming;
use crate::oversized::{Occurrence, OversizedPolicy, OversizedRule};
use crate::progress::{FullSyncProgress, LogProgress};
use crate::records::{LogPartitioning, LogRecordMeta, MetaColumns, Op, RecordIds};
use crate::retry::Retrier;
use crate::rowconv::RowColumns;
use crate::schema_history::{Plan, PlanContext, SchemaSet, SchemaStore, TrackedTable, Tracker};
use crate::sink::{Sink, TableBatch, TableDef};
use crate::state_lock::StateLock;
use crate::status::{StatusFile, StopReason};
use crate::throttle::IncrementalThrottle;
use crate::transform::{Transform, shape_base, shape_log};
use crate::xa::{HeldEvents, XaBranches, XaStatement, xid_text};
use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use binlog_parser::{DecodeContext, EventData, RowsKind};
use mysql_source::replication::{BinlogStream, ReplicationOptions, StartPosition};
use mysql_source::schema::TableSchema;
use mysql_source::snapshot::{self, ChunkPlan, SnapshotItem, SnapshotOptions, TableJob, TablePlan};
use mysql_source::{BinlogPosition, ConnectOptions, RawConn};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;
use tracing::{info, warn};

pub use crate::naming::SyncedTable;
pub use crate::status::{PROGRESS_FILE, Progress, ProgressTotals};
pub use resnapshot::ResnapshotOutcome;
pub use table_set::describe_added;

mod resnapshot;
mod table_set;

/// Options of one run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Stop once every change up to the binlog's end at start-up is committed.
    pub exit_when_caught_up: bool,
    /// Set to stop within [`STOP_GRACE`] (see the module docs).
    pub stop: Arc<AtomicBool>,
}

/// How long a run may take to stop cleanly once [`RunOptions::stop`] is set;
/// after it, whatever is under way is abandoned (safely: module docs).
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// A task bound to its source and sink.
pub struct TaskRunner<S: Sink> {
    cfg: TaskConfig,
    /// The server this run reads from: `[source] url`, or after a failover
    /// one of `failover_urls` (see [`TaskRunner::run`]).
    connect: std::sync::Mutex<ConnectOptions>,
    /// `url`, then `failover_urls`, parsed.
    servers: Vec<ConnectOptions>,
    sink: S,
    store: CheckpointStore<TaskState>,
    meta: MetaColumns,
    partitioning: LogPartitioning,
    progress: Arc<dyn FullSyncProgress>,
    metrics: Metrics,
    transform: Option<Arc<dyn Transform>>,
    status: Arc<StatusFile>,
    retry: Retrier,
    throttle: IncrementalThrottle,
    /// What asked the run to stop (a signal's name), for `status`.
    stop_cause: std::sync::Mutex<Option<String>>,
    /// The XA branches prepared and undecided at the position the stream
    /// has read to: what a checkpoint moving there records ([`crate::xa`]).
    xa_held: std::sync::Mutex<Vec<PreparedXa>>,
    /// `[destination] mirror` ([`crate::mirror`]).
    mirror: Option<Arc<crate::mirror::Mirror>>,
}

impl<S: Sink> TaskRunner<S> {
    /// A runner for `cfg` writing into `sink`.
    ///
    /// # Errors
    /// [`Error::Config`] for a source URL that does not parse.
    pub fn new(mut cfg: TaskConfig, sink: S) -> Result<Self> {
        crate::heartbeat::exclude(&mut cfg);
        let mut servers = Vec::new();
        for (key, url) in std::iter::once(("url", &cfg.source.url)).chain(
            cfg.source
                .failover_urls
                .iter()
                .map(|u| ("failover_urls", u)),
        ) {
            let mut connect = ConnectOptions::from_url(url)
                .map_err(|e| Error::Config(format!("[source] {key}: {e}")))?;
            if connect.password.is_none() {
                connect.password = std::env::var("SYNC_SOURCE_PASSWORD").ok();
            }
            servers.push(connect);
        }
        let connect = std::sync::Mutex::new(servers[0].clone());
        let store = CheckpointStore::new(&cfg.sync.state_dir, "task");
        let meta = cfg.sync.naming_rule.meta_columns();
        let mut partitioning = LogPartitioning::new(cfg.sync.log_partitions.iter().copied());
        if let Some(name) = &cfg.sync.partition_timezone {
            partitioning =
                partitioning.in_zone(crate::timezone::Zone::parse(name).map_err(Error::Config)?);
        }
        let metrics = Metrics::new();
        let (status, retry) = reporting(&cfg, &metrics);
        let mirror = mirror_on(&cfg)
            .then(|| sink.as_maxcompute().cloned())
            .flatten()
            .map(|sink| {
                Arc::new(crate::mirror::Mirror::new(
                    sink,
                    meta.clone(),
                    mirror_every(&cfg),
                    &cfg.sync.state_dir,
                ))
            });
        Ok(Self {
            mirror,
            throttle: cfg.throttle.incremental(),
            cfg,
            connect,
            servers,
            sink,
            store,
            meta,
            partitioning,
            progress: Arc::new(LogProgress),
            metrics,
            transform: None,
            status,
            retry,
            stop_cause: std::sync::Mutex::new(None),
            xa_held: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Reports the full phase's progress to `progress` instead of log lines.
    pub fn with_progress(mut self, progress: Arc<dyn FullSyncProgress>) -> Self {
        self.progress = progress;
        self
    }

    /// Reports into `metrics` (e.g. one served by [`crate::metrics::serve`]).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        (self.status, self.retry) = reporting(&self.cfg, &metrics);
        self.metrics = metrics;
        self
    }

    /// Passes every row of both phases through `transform` (after the task
    /// file's filters) before it reaches the sink; `verify` applies it to
    /// the source's rows too. See [`crate::transform`].
    pub fn with_transform(mut self, transform: Arc<dyn Transform>) -> Self {
        self.transform = Some(transform);
        self
    }

    /// The metrics this runner updates at every commit.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `[destination] oversized_values` with the sink's field size limit
    /// (`None` when the sink has no limit).
    pub fn oversized_rule(&self) -> Option<OversizedRule> {
        let limit = self.sink.max_field_bytes()?;
        let policy = match &self.cfg.destination {
            crate::config::DestinationConfig::Maxcompute(mc) => mc.oversized_values,
            crate::config::DestinationConfig::Local { .. }
            | crate::config::DestinationConfig::Embedded => OversizedPolicy::default(),
        };
        Some(OversizedRule { limit, policy })
    }

    /// Counts the values over the field size limit of a committed unit.
    fn note_oversized(&self, found: &[Occurrence]) {
        let Some(rule) = self.oversized_rule().filter(|_| !found.is_empty()) else {
            return;
        };
        for o in found {
            self.metrics.add_oversized(&o.table, &o.column);
        }
        self.status.oversized(found, rule.policy, false);
    }

    /// The source server this runner reads from now.
    pub fn source(&self) -> ConnectOptions {
        self.connect
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// With `failover_urls`: moves to the first server of the group that
    /// answers and is writable (the primary), else the first that answers;
    /// a no-op for a single server, whose errors the run reports itself.
    async fn pick_source(&self) {
        if self.servers.len() < 2 {
            return;
        }
        let mut fallback = None;
        for (i, server) in self.servers.iter().enumerate() {
            let Ok(mut conn) = RawConn::connect(server).await else {
                warn!(server = i, host = %server.host, port = server.port, "source server does not answer");
                continue;
            };
            let read_only = conn
                .query_strings("SELECT @@read_only")
                .await
                .ok()
                .and_then(|rows| rows.first().and_then(|r| r.first().cloned().flatten()));
            let _ = conn.close().await;
            if read_only.as_deref() == Some("0") {
                if i > 0 {
                    warn!(host = %server.host, port = server.port, "failing over to this source server");
                }
                *self
                    .connect
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = server.clone();
                return;
            }
            fallback.get_or_insert(server.clone());
        }
        if let Some(server) = fallback {
            *self
                .connect
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = server;
        }
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The metadata column names.
    pub fn meta(&self) -> &MetaColumns {
        &self.meta
    }

    /// The saved state, if any.
    ///
    /// # Errors
    /// As [`CheckpointStore::load`].
    pub fn state(&self) -> Result<Option<TaskState>> {
        self.store.load()
    }

    /// The selected source tables with their destination schemas.
    ///
    /// # Errors
    /// Source errors; [`Error::Config`] when `[objects.tables]` names a
    /// column a table does not have (the precheck reports it first).
    pub async fn tables(&self) -> Result<Vec<SyncedTable>> {
        Ok(self
            .tracked_tables()
            .await?
            .iter()
            .map(|t| t.synced(&self.meta))
            .collect())
    }

    /// Every selected table with its destination names, key, row estimate,
    /// columns and edits ([`crate::listing`]); reads the source, writes
    /// nothing.
    ///
    /// # Errors
    /// Source errors.
    pub async fn listing(&self) -> Result<Vec<crate::listing::TableListing>> {
        let tracked = self.tracked_tables().await?;
        let mut conn = RawConn::connect(&self.source()).await.map_err(source_err)?;
        let estimates = row_estimates(
            &mut conn,
            tracked.iter().map(|t| t.source.database.as_str()),
        )
        .await?;
        let _ = conn.close().await;
        Ok(crate::listing::list(&self.cfg, &tracked, &estimates))
    }

    /// The synced tables as the checkpoint's schema generation holds them
    /// (what the destination has, DDL followed so far included); `None`
    /// before the incremental phase has saved one. Needs no source.
    ///
    /// # Errors
    /// Checkpoint and schema store errors.
    pub fn checkpointed_tables(&self) -> Result<Option<Vec<SyncedTable>>> {
        let Some(TaskState {
            phase:
                Phase::Incremental(Incremental {
                    schemas: Some(generation),
                    ..
                }),
            ..
        }) = self.store.load()?
        else {
            return Ok(None);
        };
        let set = SchemaStore::new(&self.cfg.sync.state_dir).load(generation)?;
        Ok(Some(
            set.tables.values().map(|t| t.synced(&self.meta)).collect(),
        ))
    }

    /// What SQL over `t`'s merge needs first: the `set` flags of the task's
    /// type system and the `CREATE TABLE IF NOT EXISTS` of `result` (the
    /// merged table, with `t_base`'s columns and types).
    ///
    /// # Errors
    /// A column without a MaxCompute type, or a name MaxCompute cannot take.
    pub fn merge_sql_prelude(&self, t: &SyncedTable, result: &str) -> Result<String> {
        let system = match &self.cfg.destination {
            crate::config::DestinationConfig::Maxcompute(mc) => mc.type_system,
            crate::config::DestinationConfig::Local { .. }
            | crate::config::DestinationConfig::Embedded => crate::mapping::TypeSystem::default(),
        };
        let mut out: String = system
            .sql_flags()
            .iter()
            .map(|f| format!("{f}\n"))
            .collect();
        let mut columns = Vec::new();
        for f in t.base_schema.fields() {
            columns.push(format!(
                "{} {}",
                crate::odps_sql::ident(f.name())?,
                crate::mapping::odps_type_in(f, system)?
            ));
        }
        out.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} ({});\n",
            crate::odps_sql::ident(result)?,
            columns.join(", ")
        ));
        Ok(out)
    }

    /// The selected source tables as they are now, with every column and
    /// where each lands (where the incremental phase's schema history starts).
    ///
    /// # Errors
    /// As [`TaskRunner::tables`].
    pub async fn tracked_tables(&self) -> Result<Vec<TrackedTable>> {
        let mut conn = RawConn::connect(&self.source()).await.map_err(source_err)?;
        let schemas = read_selected(&mut conn, &self.cfg.objects)
            .await
            .map_err(source_err)?;
        let _ = conn.close().await;
        let naming = Naming::new(&self.cfg.objects);
        schemas
            .iter()
            .map(|s| naming.tracked(s).map_err(Error::Config))
            .collect()
    }

    /// The shadow tables of online schema changes under way in the
    /// databases of the `tracked` tables ([`crate::osc`]), as they are now.
    async fn shadow_tables(&self, tracked: &[TrackedTable]) -> Result<Vec<TableSchema>> {
        let mut conn = RawConn::connect(&self.source()).await.map_err(source_err)?;
        let rows = conn
            .query_strings(
                "SELECT table_schema, table_name FROM information_schema.tables \
                 WHERE table_type = 'BASE TABLE' ORDER BY 1, 2",
            )
            .await
            .map_err(source_err)?;
        let naming = Naming::new(&self.cfg.objects);
        let mut out = Vec::new();
        for row in rows {
            let (Some(Some(db)), Some(Some(table))) = (row.first(), row.get(1)) else {
                continue;
            };
            let synced_db = tracked
                .iter()
                .any(|t| t.source.database.eq_ignore_ascii_case(db));
            if synced_db && naming.osc_role(db, table) == Some(crate::osc::Role::Shadow) {
                info!(table = %format!("{db}.{table}"), "an online schema change is under way: its shadow table is followed");
                out.push(
                    mysql_source::schema::read_table(&mut conn, db, table)
                        .await
                        .map_err(source_err)?,
                );
            }
        }
        let _ = conn.close().await;
        Ok(out)
    }

    /// The partition column names of `t_log`.
    pub fn partition_columns(&self) -> Vec<String> {
        self.partitioning
            .levels()
            .iter()
            .map(|&l| self.cfg.sync.naming_rule.partition_column(l))
            .collect()
    }

    /// Runs every precheck against the source and the sink.
    ///
    /// # Errors
    /// [`Error::CorruptCheckpoint`] and kin when the checkpoint cannot be read.
    pub async fn precheck(&self) -> Result<crate::precheck::Report> {
        // A checkpoint that cannot be read for want of rights or of a folder
        // is a finding (the `state_dir` check says why), not an abort.
        let (state, unreadable) = match self.store.load() {
            Ok(s) => (s, None),
            Err(e @ Error::Io { .. }) => (None, Some(e)),
            Err(e) => return Err(e),
        };
        let task_id = state
            .as_ref()
            .map(|s| s.task_id.clone())
            .unwrap_or_default();
        let resumed = state
            .as_ref()
            .is_some_and(|s| !matches!(s.phase, Phase::Precheck));
        let by_gtid = self.cfg.source.resume == crate::config::ResumeBy::Gtid;
        let created = match state.as_ref().map(|s| &s.phase) {
            None | Some(Phase::Precheck | Phase::SchemaSync | Phase::Finished) => {
                crate::precheck::Created::Nothing
            }
            Some(Phase::Positioning) => crate::precheck::Created::Tables(None),
            Some(Phase::FullSync(f)) => {
                crate::precheck::Created::Tables(Some(f.tables.keys().cloned().collect()))
            }
            Some(Phase::Incremental(Incremental {
                schemas: Some(g), ..
            })) => {
                let set = SchemaStore::new(&self.cfg.sync.state_dir).load(*g)?;
                let sel = self.cfg.sync.selected();
                crate::precheck::Created::Named(
                    set.tables
                        .values()
                        .flat_map(|t| {
                            let t = t.synced(&self.meta);
                            let base = (sel.schema || sel.full).then(|| t.base_table());
                            let log = (sel.schema || sel.incremental).then(|| t.log_table());
                            base.into_iter().chain(log)
                        })
                        .collect(),
                )
            }
            Some(Phase::Incremental(_)) => crate::precheck::Created::Tables(None),
        };
        let resume_binlog = state.filter(|_| !by_gtid).and_then(|s| match s.phase {
            Phase::FullSync(f) => f.start.map(|p| p.file),
            Phase::Incremental(i) => Some(i.position.file),
            _ => None,
        });
        let partition_columns = self.partition_columns();
        let mut report = crate::precheck::run(&crate::precheck::Inputs {
            cfg: &self.cfg,
            connect: &self.source(),
            sink: &self.sink,
            meta: &self.meta,
            partition_columns: &partition_columns,
            resumed,
            resume_binlog,
            task_id: &task_id,
            created,
        })
        .await;
        if let Some(e) = unreadable {
            report.fail(
                "checkpoint",
                format!("cannot read the task's checkpoint: {e}"),
                "let the task's user read and write [sync] state_dir and the files in it",
            );
        }
        Ok(report)
    }

    /// Runs the task from its checkpoint until it finishes, is stopped, or
    /// (with `exit_when_caught_up`) has caught up, holding the task's
    /// state directory lock throughout ([`TaskRunner::lock`]).
    ///
    /// A lost source connection does not end the run: the binlog stream
    /// reconnects at its checkpoint, and the full phase resumes from its
    /// last committed chunk (re-reading the chunks in flight), with backoff
    /// for as long as `[retry]` allows ([`crate::retry`]).
    ///
    /// # Errors
    /// [`Error::Locked`] at once when another process runs the task; source,
    /// sink and checkpoint errors (the checkpoint stays resumable).
    pub async fn run(&self, opts: &RunOptions) -> Result<TaskState> {
        let lock = self.lock("run")?;
        self.run_locked(&lock, opts).await
    }

    /// Takes the lock of the task's `state_dir` for `command` (see
    /// [`crate::state_lock`]): what [`TaskRunner::run`] does first. Take it
    /// yourself to hold it before other start-up work (the CLI binds its
    /// metrics port after it), then call [`TaskRunner::run_locked`].
    ///
    /// # Errors
    /// As [`StateLock::acquire`].
    pub fn lock(&self, command: &str) -> Result<StateLock> {
        StateLock::acquire(&self.cfg.sync.state_dir, command)
    }

    /// [`TaskRunner::run`] under a lock taken with [`TaskRunner::lock`].
    ///
    /// # Errors
    /// [`Error::Config`] when `lock` is not this task's; as [`TaskRunner::run`].
    pub async fn run_locked(&self, lock: &StateLock, opts: &RunOptions) -> Result<TaskState> {
        if lock.path() != self.cfg.sync.state_dir.join(crate::state_lock::LOCK_FILE) {
            return Err(Error::Config(format!(
                "the lock {} is not the one of this task's state_dir {}",
                lock.path().display(),
                self.cfg.sync.state_dir.display()
            )));
        }
        self.status.run_started(lock.holder());
        let result = self.run_until_stopped(opts).await;
        let (reason, message) = self.stop_report(&result, opts);
        info!(reason = ?reason, "{message}");
        self.status.run_stopped(reason, message);
        result
    }

    /// Says what asked the run to stop (e.g. `SIGTERM`), for `status`; call
    /// it before setting [`RunOptions::stop`].
    pub fn note_stop_cause(&self, cause: &str) {
        *self
            .stop_cause
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cause.to_owned());
    }

    /// Records for `status` that the run is aborted by `cause` (a second
    /// signal); the caller ends the process right after, which is as safe
    /// as `kill -9`.
    pub fn note_abort(&self, cause: &str) {
        self.status.run_stopped(
            StopReason::Aborted,
            format!(
                "aborted by {cause} without waiting for a clean stop (as after kill -9); the next \
                 run resumes from the checkpoint"
            ),
        );
    }

    /// The run, given [`STOP_GRACE`] to stop once `opts.stop` is set, then
    /// abandoned where it stands (module docs).
    async fn run_until_stopped(&self, opts: &RunOptions) -> Result<TaskState> {
        let mut work = std::pin::pin!(self.run_phases(opts));
        tokio::select! {
            biased;
            result = &mut work => result,
            () = stopped(&opts.stop) => {
                match tokio::time::timeout(STOP_GRACE, &mut work).await {
                    Ok(result) => result,
                    Err(_) => {
                        warn!(
                            grace = ?STOP_GRACE,
                            "the run did not stop cleanly in time: abandoned where it was; \
                             the next run resumes from the checkpoint"
                        );
                        self.load_or_new()
                    }
                }
            }
        }
    }

    /// Why the run ended, for `status`.
    fn stop_report(&self, result: &Result<TaskState>, opts: &RunOptions) -> (StopReason, String) {
        let state = match result {
            Ok(state) => state,
            Err(Error::Precheck(report)) => {
                let failed: Vec<&str> = report.failures().map(|c| c.id).collect();
                return (
                    StopReason::Failed,
                    format!(
                        "failed: the precheck failed ({}); `sync-cli precheck` shows the fixes",
                        failed.join(", ")
                    ),
                );
            }
            Err(e) => {
                let text = e.to_string();
                let mut lines = text.lines();
                let first = lines.next().unwrap_or_default();
                let more = if lines.next().is_some() { " …" } else { "" };
                return (StopReason::Failed, format!("failed: {first}{more}"));
            }
        };
        let phase = state.phase.name();
        if matches!(state.phase, Phase::Finished) {
            (
                StopReason::Finished,
                "finished: every selected phase is done".into(),
            )
        } else if opts.stop.load(Ordering::Relaxed) {
            let cause = self
                .stop_cause
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
                .unwrap_or_else(|| "a stop request".into());
            (
                StopReason::Requested,
                format!(
                    "stopped by {cause} in the {phase} phase; the next run resumes from the \
                     checkpoint"
                ),
            )
        } else if opts.exit_when_caught_up {
            (
                StopReason::CaughtUp,
                format!(
                    "caught up (exit when caught up) in the {phase} phase: every change up to the \
                     binlog's end at its start is committed"
                ),
            )
        } else {
            (
                StopReason::Finished,
                format!("the binlog stream ended in the {phase} phase"),
            )
        }
    }

    /// The body of a run, under its lock.
    async fn run_phases(&self, opts: &RunOptions) -> Result<TaskState> {
        let mut state = self.load_or_new()?;
        self.pick_source().await;
        self.await_both_ends(opts).await?;
        // On every start, not only the first: a restarted task meets the
        // server's settings and privileges as they are now.
        let report = self.precheck().await?;
        for c in &report.checks {
            if c.outcome == crate::precheck::Outcome::Warning {
                warn!(check = c.id, "precheck: {}", c.message);
            }
        }
        if !report.passed() {
            return Err(Error::Precheck(report));
        }
        let tracked = self.tracked_tables().await?;
        let tables: Vec<SyncedTable> = tracked.iter().map(|t| t.synced(&self.meta)).collect();
        if !matches!(state.phase, Phase::Precheck) {
            self.claim_tables(&state, &tables).await?;
        }
        if let Some(m) = &self.mirror
            && !matches!(state.phase, Phase::Precheck | Phase::SchemaSync)
        {
            for t in &tables {
                m.register(t);
            }
        }
        self.status.started(state.phase.name());
        loop {
            if opts.stop.load(Ordering::Relaxed) {
                self.flush_mirror(&state).await?;
                return Ok(state);
            }
            match self.advance(state, &tracked, &tables, opts).await {
                Ok((next, done)) if done => {
                    self.flush_mirror(&next).await?;
                    return Ok(next);
                }
                Ok((next, _)) => state = next,
                // Every step is checkpointed: after a retryable failure the
                // task goes on from the last checkpoint, as after a restart
                // (and with `failover_urls`, on the server that is primary now).
                Err(e) => {
                    self.retry.failed(e, &opts.stop).await?;
                    state = self.load_or_new()?;
                    self.pick_source().await;
                }
            }
        }
    }

    /// Commits what waits for the mirror (at a clean stop or exit); a task
    /// without an incremental phase fills it once its full phase is done.
    async fn flush_mirror(&self, state: &TaskState) -> Result<()> {
        if let Some(m) = &self.mirror {
            m.flush().await?;
            if matches!(state.phase, Phase::Finished) {
                m.recover(&self.sink, 0, &[]).await?;
            }
            self.note_mirror(m);
        }
        Ok(())
    }

    fn mirror_report(&self, m: &crate::mirror::Mirror) -> crate::status::MirrorReport {
        let (pending_rows, last_commit_unix) = m.lag();
        crate::status::MirrorReport {
            pending_rows,
            last_commit_unix,
        }
    }

    /// The mirror's lag into the metrics and the status file.
    fn note_mirror(&self, m: &crate::mirror::Mirror) {
        let (pending, last) = m.lag();
        self.metrics.set_mirror(pending, last);
        self.status.mirror(self.mirror_report(m));
    }

    /// Waits, within the `[retry]` connection window, until the sink and the
    /// source answer: a task started during an outage rides it out like a
    /// running one. Any other failure (a refused password, a path that is
    /// not writable) is left to the precheck, which reports it with its fix.
    ///
    /// # Errors
    /// [`Error::GaveUp`] when the outage outlasts its window.
    async fn await_both_ends(&self, opts: &RunOptions) -> Result<()> {
        loop {
            let failure = match self.sink.probe().await {
                Err(e) => e,
                Ok(()) => match RawConn::connect(&self.source()).await {
                    Ok(conn) => {
                        let _ = conn.close().await;
                        self.retry.recovered();
                        return Ok(());
                    }
                    Err(e) => source_err(e),
                },
            };
            // Only an end that cannot be reached is waited for; a refusal
            // (a password, an unwritable path) is the precheck's to report.
            let unreachable =
                crate::retry::classify(&failure) == Some(crate::retry::RetryKind::Connection);
            if !unreachable || opts.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.retry.failed(failure, &opts.stop).await?;
            self.pick_source().await;
        }
    }

    /// Each database's default character set (lower-case names), for the
    /// character columns of tables created during the incremental phase.
    async fn database_charsets(&self) -> Result<HashMap<String, String>> {
        let mut conn = RawConn::connect(&self.source()).await.map_err(source_err)?;
        let rows = conn
            .query_strings(
                "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA",
            )
            .await
            .map_err(source_err)?;
        let _ = conn.close().await;
        Ok(rows
            .into_iter()
            .filter_map(|r| match r.as_slice() {
                [Some(db), Some(cs)] => Some((db.to_ascii_lowercase(), cs.to_ascii_lowercase())),
                _ => None,
            })
            .collect())
    }

    fn load_or_new(&self) -> Result<TaskState> {
        Ok(match self.store.load()? {
            Some(s) => s,
            None => TaskState::new(self.cfg.sync.selected()).with_task_id(new_task_id()),
        })
    }

    /// One phase's work: the next state, and whether the run is over.
    async fn advance(
        &self,
        state: TaskState,
        tracked: &[TrackedTable],
        tables: &[SyncedTable],
        opts: &RunOptions,
    ) -> Result<(TaskState, bool)> {
        Ok(match &state.phase {
            Phase::Precheck => {
                let state = self.survey_existing(state, tables).await?;
                // The task id is in the checkpoint from here on: claims
                // made with it outlive a crash.
                let next = self.step(state, Step::PrecheckPassed)?;
                self.claim_tables(&next, tables).await?;
                (next, false)
            }
            Phase::SchemaSync => {
                // Tables at a time, like the readers: many small tables
                // overlap their DDL round trips and fsyncs.
                let task_id = state.task_id.as_str();
                for_each_limited(tables, self.cfg.sync.parallelism, |t| {
                    Box::pin(self.ensure_tables(t, task_id))
                })
                .await?;
                (self.step(state, Step::SchemaSynced)?, false)
            }
            Phase::Positioning => {
                let mut conn = RawConn::connect(&self.source()).await.map_err(source_err)?;
                let cp = snapshot::capture_position(&mut conn)
                    .await
                    .map_err(source_err)?;
                let _ = conn.close().await;
                (
                    self.step(state, Step::PositionCaptured(position_of(&cp)))?,
                    false,
                )
            }
            Phase::FullSync(_) => (self.full_sync(state, tables, &opts.stop).await?, false),
            Phase::Incremental(_) => {
                let (next, again) = self.incremental(state, tracked, opts).await?;
                (next, !again)
            }
            Phase::Finished => (state, true),
        })
    }

    /// Every row of a source table as it is now, as the snapshot reads it.
    ///
    /// # Errors
    /// Source errors.
    pub async fn read_source(&self, t: &SyncedTable) -> Result<Vec<RecordBatch>> {
        let mut conn = RawConn::connect(&self.source()).await.map_err(source_err)?;
        let plan = self.plan_chunks(&mut conn, t).await?;
        let _ = conn.close().await;
        let sopts = self.snapshot_options();
        let job = TableJob {
            schema: t.schema.clone(),
            plan: Arc::new(plan),
            done: BTreeSet::new(),
        };
        let mut run = snapshot::start(sopts, vec![job]);
        let mut batches = Vec::new();
        while let Some(item) = run.items.recv().await {
            if let SnapshotItem::Batch { batch, .. } = item.map_err(source_err)? {
                batches.push(shape_base(t, self.transform.as_deref(), t.to_dest(batch)?)?);
            }
        }
        Ok(batches)
    }

    /// Compares every selected source table with its merged destination.
    ///
    /// # Errors
    /// Source and sink errors.
    pub async fn verify(&self) -> Result<Vec<crate::verify::TableReport>> {
        let mut reports = Vec::new();
        for t in self.tables().await? {
            reports.push(self.verify_table(&t).await?);
        }
        Ok(reports)
    }

    /// [`TaskRunner::verify`] of one table (from [`TaskRunner::tables`]).
    ///
    /// # Errors
    /// Source, sink and checkpoint errors.
    pub async fn verify_table(&self, t: &SyncedTable) -> Result<crate::verify::TableReport> {
        let added = self.added_columns()?;
        let source = self.read_source(t).await?;
        let (base, log) = self.base_and_log(t).await?;
        let added = added.get(&t.source_name).map_or(&[][..], Vec::as_slice);
        crate::verify::compare(
            t,
            &self.meta,
            &source,
            &base,
            &log,
            added,
            self.oversized_rule(),
        )
    }

    /// Why nothing of the task can be compared or merged yet, if so: no
    /// checkpoint, or one from before the first row landed.
    ///
    /// # Errors
    /// Checkpoint errors.
    pub fn not_started(&self) -> Result<Option<String>> {
        let state_dir = self.cfg.sync.state_dir.display();
        Ok(match self.store.load()? {
            None => Some(format!(
                "not started: there is no checkpoint in {state_dir}; run the task first \
                 (sync-cli run)"
            )),
            Some(TaskState {
                phase: Phase::Precheck | Phase::SchemaSync,
                ..
            }) => Some(format!(
                "not started: the task in {state_dir} has not copied any row yet; run it first \
                 (sync-cli run)"
            )),
            Some(_) => None,
        })
    }

    /// One table's state rebuilt from its `t_base` and `t_log` (as of a Unix
    /// time: only changes strictly before it count), read from the sink.
    ///
    /// # Errors
    /// [`Error::Config`] when the task does not select `source_name`
    /// (`db.table`); source, sink and merge errors.
    pub async fn merged(&self, source_name: &str, as_of: Option<i64>) -> Result<RecordBatch> {
        let tables = self.tables().await?;
        let t = tables
            .iter()
            .find(|t| t.source_name == source_name)
            .ok_or_else(|| Error::Config(not_selected(source_name, &tables)))?;
        let (base, log) = self.base_and_log(t).await?;
        let added = self.added_columns_of(source_name)?;
        crate::merge::merge(
            &t.base_schema,
            &base,
            &log,
            crate::merge::MergeSpec {
                meta: &self.meta,
                key: &t.dest_key(),
                as_of,
                added: &added,
            },
        )
    }

    /// A table's baseline and the log records that count with it: `t_base`
    /// and all of `t_log`, or the published generation of a `resnapshot`
    /// with the records from its cutoff on.
    async fn base_and_log(&self, t: &SyncedTable) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>)> {
        let generation = self.base_generation(&t.source_name)?;
        let base_table = generation
            .as_ref()
            .map_or_else(|| t.base_table(), |g| g.table.clone());
        let base = self.sink.read_table(&base_table, &t.base_schema).await?;
        let log = self.sink.read_table(&t.log_table(), &t.log_schema).await?;
        let log = match &generation {
            Some(g) => crate::merge::log_from(log, &self.meta, g.log_from)?,
            None => log,
        };
        Ok((base, log))
    }

    /// The destination columns of `source_name` (`db.table`) added during
    /// the incremental phase, from the schemas the checkpoint names (none
    /// before that phase).
    ///
    /// # Errors
    /// Checkpoint and schema store errors.
    pub fn added_columns_of(
        &self,
        source_name: &str,
    ) -> Result<Vec<crate::schema_history::AddedColumn>> {
        Ok(self
            .added_columns()?
            .remove(source_name)
            .unwrap_or_default())
    }

    /// The defaults `merge-sql` fills in for `source_name` (`[sync.ddl]
    /// rewritten_rows = "default"`).
    ///
    /// # Errors
    /// Checkpoint and schema store errors.
    pub fn filled_defaults(&self, source_name: &str) -> Result<Vec<crate::merge::FilledDefault>> {
        Ok(self
            .added_columns_of(source_name)?
            .into_iter()
            .filter_map(|a| {
                Some(crate::merge::FilledDefault {
                    before_record_id: RecordIds::new(
                        self.cfg.source.record_id_tag,
                        a.first_record_id,
                    )
                    .allocate(),
                    value: a.default?,
                    column: a.column,
                })
            })
            .collect())
    }

    /// Per source table, the destination columns added during the
    /// incremental phase (from the schemas the checkpoint names).
    fn added_columns(&self) -> Result<HashMap<String, Vec<crate::schema_history::AddedColumn>>> {
        let Some(TaskState {
            phase:
                Phase::Incremental(Incremental {
                    schemas: Some(generation),
                    ..
                }),
            ..
        }) = self.store.load()?
        else {
            return Ok(HashMap::new());
        };
        let set = SchemaStore::new(&self.cfg.sync.state_dir).load(generation)?;
        Ok(set
            .tables
            .into_iter()
            .map(|(name, t)| (name, t.added))
            .collect())
    }

    /// The schemas in force at the checkpoint: the generation it names, else
    /// (the phase's first run) the tables as read at start, saved now. A
    /// checkpoint from before schema tracking with a batch pending saves
    /// them at the first DDL instead.
    fn schema_tracker(
        &self,
        state: TaskState,
        tracked: &[TrackedTable],
        shadows: Vec<TableSchema>,
    ) -> Result<(Tracker, TaskState)> {
        let store = SchemaStore::new(&self.cfg.sync.state_dir);
        let Phase::Incremental(inc) = &state.phase else {
            return Err(Error::Internal(
                "schema tracking outside the incremental phase".into(),
            ));
        };
        if let Some(g) = inc.schemas {
            let set = store.load(g)?;
            return Ok((Tracker::new(store, Some(g), set, &self.meta), state));
        }
        let mut set = SchemaSet::new(tracked.iter().cloned());
        set.shadows = shadows
            .into_iter()
            .map(|s| {
                (
                    format!("{}.{}", s.database, s.table),
                    crate::osc::Shadow::loaded(s),
                )
            })
            .collect();
        let mut tracker = Tracker::new(store, None, set.clone(), &self.meta);
        if inc.pending.is_some() {
            return Ok((tracker, state));
        }
        let to = inc.position.clone();
        let generation = tracker.save_next(&set)?;
        let xa = inc.xa.clone();
        let state = self.step(state, Step::SchemaChanged { generation, to, xa })?;
        tracker.advance(generation, set);
        Ok((tracker, state))
    }

    /// Appends the row changes of a rows event of synced table `t` to the
    /// batch, each with the record id `batcher` gives it (none for a change
    /// that landed before a restart), at time `timestamp`. Returns the
    /// number of ids allocated.
    fn append_changes(
        &self,
        batch: &mut LogBatch,
        ctx: &DecodeContext,
        rows: &binlog_parser::RowsEvent<'_>,
        t: &SyncedTable,
        batcher: &mut Batcher,
        timestamp: i64,
    ) -> Result<u64> {
        let map = ctx.table(rows.table_id);
        let changes_before = batcher.next_record_id();
        let op = match rows.kind {
            RowsKind::Write => Op::Insert,
            RowsKind::Update | RowsKind::PartialUpdate => Op::Update,
            RowsKind::Delete => Op::Delete,
        };
        for change in ctx
            .rows(rows)
            .map_err(|e| Error::decode(BinlogAt::default(), "rows event", e))?
        {
            let change = change.map_err(|e| Error::decode(BinlogAt::default(), "row", e))?;
            let metas = LogRecordMeta::for_change(op, 0, 0).count();
            let Some(record_id) = batcher.take_change(metas) else {
                continue;
            };
            for meta in LogRecordMeta::for_change(op, record_id, timestamp) {
                let image = if meta.before_flag() == "Y" {
                    change.before
                } else {
                    change.after
                };
                let image = image.ok_or_else(|| Error::BinlogEvent {
                    at: BinlogAt::default(),
                    message: format!("{} event without a row image", op.flag()),
                })?;
                let partition = self.partitioning.values(timestamp);
                let builder = batch.builder(t, partition);
                if let Some(map) = map {
                    builder.row.use_logged_members(map)?;
                }
                builder.append(&meta, image.values())?;
            }
        }
        Ok(batcher.next_record_id() - changes_before)
    }

    /// An `XA COMMIT` of branch `xid` at `file:position` that this task
    /// never saw prepared: `None` when its PREPARE, found in the server's
    /// binlog before the task's start, changed no synced table (nothing to
    /// land); else what was found, for the error.
    async fn earlier_branch(
        &self,
        xid: &str,
        file: &str,
        position: u64,
        tracker: &Tracker,
    ) -> Result<Option<String>> {
        let mut conn = RawConn::connect(&self.source()).await.map_err(source_err)?;
        let found = crate::xa::find_earlier_branch(&mut conn, xid, file, position, |db, t| {
            tracker.synced(db, t).is_some()
        })
        .await;
        let _ = conn.close().await;
        Ok(match found.map_err(source_err)? {
            Some(b) if b.synced_tables.is_empty() => {
                info!(%xid, prepared_at = %b.prepared_at, "XA COMMIT at {file}:{position} of a branch prepared before the task's start position that changed no synced table: nothing to land");
                None
            }
            Some(b) => Some(format!(
                "its XA PREPARE at {} changed synced tables {}",
                b.prepared_at,
                b.synced_tables.join(", ")
            )),
            None => Some(
                "its XA PREPARE is in no binlog file the server still has, so the task cannot \
                 tell which tables it changed"
                    .to_owned(),
            ),
        })
    }

    /// The XA branches held at the stream's read position.
    fn xa_held(&self) -> Vec<PreparedXa> {
        self.xa_held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The read position's held XA branches changed: later checkpoints
    /// record them, and `status` shows them.
    fn note_xa(&self, held: &[PreparedXa]) {
        *self
            .xa_held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = held.to_vec();
        let touching = held.iter().filter(|b| b.row_events > 0).count();
        self.metrics.set_xa_prepared(touching as u64);
        self.status.xa_prepared(held);
    }

    fn step(&self, state: TaskState, step: Step) -> Result<TaskState> {
        let next = state.apply(step)?;
        self.store.save(&next)?;
        self.metrics.set_phase(phase_metric(&next.phase));
        self.retry.recovered();
        Ok(next)
    }

    /// With `conflicting_tables = "ignore"`, before anything is written:
    /// what the destination tables that exist already hold (checkpointed),
    /// or a definite error for one the task cannot write into
    /// ([`crate::conflict`]).
    async fn survey_existing(&self, state: TaskState, tables: &[SyncedTable]) -> Result<TaskState> {
        if self.cfg.objects.conflicting_tables != crate::precheck::ConflictMode::Ignore {
            return Ok(state);
        }
        let found = crate::conflict::survey(
            &self.sink,
            tables,
            &self.cfg,
            &self.meta,
            &self.partition_columns(),
        )
        .await?;
        if let Some(p) = found.problems.into_iter().next() {
            return Err(p.into_error());
        }
        if found.tables.is_empty() {
            return Ok(state);
        }
        info!(
            tables = %found.tables.join(", "),
            next_record_id = found.existing.next_record_id,
            "destination tables exist already (conflicting_tables = \"ignore\"): the full phase \
             skips the keys their t_base holds, and record ids continue above their t_log's"
        );
        self.step(state, Step::ExistingFound(found.existing))
    }

    /// Creates a table's `t_base` and `t_log` where missing, and claims them
    /// for task `task_id` ([`Sink::claim_table`]).
    async fn ensure_tables(&self, t: &SyncedTable, task_id: &str) -> Result<()> {
        let partitions = self.partition_columns();
        self.sink
            .ensure_table(&TableDef {
                name: t.base_table(),
                schema: t.base_schema.clone(),
                partition_columns: vec![],
            })
            .await?;
        self.sink
            .ensure_table(&TableDef {
                name: t.log_table(),
                schema: t.log_schema.clone(),
                partition_columns: partitions,
            })
            .await?;
        if let Some(m) = &self.mirror {
            m.ensure_table(t).await?;
        }
        self.claim(&t.base_table(), task_id).await?;
        self.claim(&t.log_table(), task_id).await
    }

    /// Claims every existing destination table of `tables` for the task of
    /// `state` (checkpoints from before task ids claim nothing).
    async fn claim_tables(&self, state: &TaskState, tables: &[SyncedTable]) -> Result<()> {
        for t in tables {
            for name in [t.base_table(), t.log_table()] {
                if self.sink.table_exists(&name).await? {
                    self.claim(&name, &state.task_id).await?;
                }
            }
        }
        Ok(())
    }

    async fn claim(&self, table: &str, task_id: &str) -> Result<()> {
        if task_id.is_empty() {
            return Ok(());
        }
        self.sink
            .claim_table(table, self.cfg.source.record_id_tag, task_id)
            .await
    }

    /// The full phase: every chunk not committed yet, read in parallel and
    /// committed one unit per chunk. A `stop` drops the chunks being read
    /// (the next run reads them again) and lets a commit under way finish.
    async fn full_sync(
        &self,
        mut state: TaskState,
        tables: &[SyncedTable],
        stop: &AtomicBool,
    ) -> Result<TaskState> {
        let mut conn = RawConn::connect(&self.source()).await.map_err(source_err)?;
        if matches!(&state.phase, Phase::FullSync(f) if f.start.is_none()) {
            let cp = snapshot::capture_position(&mut conn)
                .await
                .map_err(source_err)?;
            info!(file = %cp.position.file, position = cp.position.position, "captured the binlog position before the snapshot");
            state = self.step(state, Step::PositionCaptured(position_of(&cp)))?;
        }
        let Phase::FullSync(full) = &state.phase else {
            return Ok(state);
        };
        // A guide for `status`; a server that cannot say leaves it out.
        if let Ok(estimates) =
            row_estimates(&mut conn, tables.iter().map(|t| t.schema.database.as_str())).await
        {
            self.status.full_estimate(crate::status::FullEstimate {
                tables: tables.len() as u64,
                rows: tables
                    .iter()
                    .filter_map(|t| estimates.get(&t.source_name))
                    .sum(),
            });
        }
        let mut jobs = Vec::new();
        let mut job_tables = Vec::new();
        let mut rows_done = Vec::new();
        let todo: Vec<&SyncedTable> = tables
            .iter()
            .filter(|t| !full.tables.get(&t.source_name).is_some_and(|p| p.done))
            .collect();
        let plans = self.load_or_plan_all(&mut conn, &todo).await?;
        for (t, plan) in todo.into_iter().zip(plans) {
            let progress = full.tables.get(&t.source_name).cloned().unwrap_or_default();
            rows_done.push(progress.rows);
            let done: BTreeSet<u32> = progress
                .resume_after
                .as_ref()
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            jobs.push(TableJob {
                schema: t.schema.clone(),
                plan: Arc::new(plan),
                done,
            });
            job_tables.push(t);
        }
        let _ = conn.close().await;
        // Keys of t_base tables that existed before the task
        // (conflicting_tables = "ignore"): read when the table's first
        // chunk is ready, before it is committed, and dropped after its
        // last, so only the tables being copied hold theirs in memory.
        let skips: Vec<bool> = job_tables
            .iter()
            .map(|t| {
                state
                    .existing
                    .as_ref()
                    .is_some_and(|e| e.base.contains(&t.source_name))
            })
            .collect();
        let mut known: Vec<Option<crate::conflict::KeySet>> =
            job_tables.iter().map(|_| None).collect();
        let mut skipped_of: HashMap<(usize, u32), u64> = HashMap::new();
        let mut sopts = self.snapshot_options();
        sopts.throttle = self.cfg.throttle.full_limits();
        let chunk_counts: Vec<usize> = jobs.iter().map(|j| j.plan.chunks.len()).collect();
        let mut done_sets: Vec<BTreeSet<u32>> = jobs.iter().map(|j| j.done.clone()).collect();
        for (i, t) in job_tables.iter().enumerate() {
            self.progress.table_started(
                &t.source_name,
                chunk_counts[i] as u64,
                done_sets[i].len() as u64,
                rows_done[i],
            );
        }
        let mut run = snapshot::start(sopts, jobs);
        let mut pending: HashMap<(usize, u32), Vec<RecordBatch>> = HashMap::new();
        // Chunks read in full, waiting for their commit; one commit runs
        // while the readers go on, so encoding and fsyncs overlap the read.
        // A chunk's checkpoint step follows its own commit, so a crash
        // loses only uncommitted chunks, which the resume reads again.
        let mut ready: VecDeque<ReadyChunk> = VecDeque::new();
        let mut committing: Vec<CommitFuture<'_>> = Vec::new();
        let commits_in_flight = self.cfg.sync.parallelism.clamp(1, COMMITS_IN_FLIGHT);
        // A second commit only while both fit the memory of one chunk
        // (`chunk_mb`): small tables overlap, big chunks commit one by one.
        let budget =
            usize::try_from(self.cfg.sync.chunk_mb.saturating_mul(1_000_000)).unwrap_or(usize::MAX);
        let mut in_flight_bytes: HashMap<(usize, u32), usize> = HashMap::new();
        let mut reading = true;
        let mut failure = None;
        let mut stopping = false;
        loop {
            while committing.len() < commits_in_flight
                && failure.is_none()
                && let Some(next) = ready.front()
                && (committing.is_empty()
                    || in_flight_bytes.values().sum::<usize>() + next.bytes() <= budget)
                && let Some(mut c) = ready.pop_front()
            {
                if skips[c.table] && known[c.table].is_none() {
                    let t = job_tables[c.table];
                    let first = match &state.phase {
                        Phase::FullSync(f) => f
                            .tables
                            .get(&t.source_name)
                            .is_none_or(|p| p.chunks_done == 0),
                        _ => false,
                    };
                    known[c.table] = Some(
                        crate::conflict::load_or_read(
                            &self.sink,
                            &self.cfg.sync.state_dir,
                            t,
                            first,
                        )
                        .await?,
                    );
                }
                if let Some(keys) = &known[c.table] {
                    let mut skipped = 0;
                    let mut kept = Vec::with_capacity(c.batches.len());
                    for b in std::mem::take(&mut c.batches) {
                        let (b, n) = keys.remove_known(b)?;
                        skipped += n;
                        if b.num_rows() > 0 {
                            kept.push(b);
                        }
                    }
                    c.batches = kept;
                    skipped_of.insert((c.table, c.chunk), skipped);
                }
                let t = job_tables[c.table];
                let unit = state.unit_name(&format!("base-{}-{:06}", t.source_name, c.chunk));
                in_flight_bytes.insert((c.table, c.chunk), c.bytes());
                committing.push(self.commit_chunk(t, unit, c));
            }
            if !reading && committing.is_empty() {
                break;
            }
            tokio::select! {
                done = first_done(&mut committing), if !committing.is_empty() => {
                    // The other commits in flight finish (and are
                    // checkpointed) before the error ends the attempt.
                    let (table, chunk, rows) = match done {
                        Ok(done) => done,
                        Err(e) => {
                            failure.get_or_insert(e);
                            reading = false;
                            ready.clear();
                            pending.clear();
                            run.items.close();
                            continue;
                        }
                    };
                    in_flight_bytes.remove(&(table, chunk));
                    let t = job_tables[table];
                    done_sets[table].insert(chunk);
                    let last = done_sets[table].len() == chunk_counts[table];
                    rows_done[table] += rows;
                    self.progress.chunk_committed(
                        &t.source_name,
                        rows,
                        done_sets[table].len() as u64,
                        chunk_counts[table] as u64,
                        rows_done[table],
                    );
                    if last {
                        self.progress
                            .table_finished(&t.source_name, rows_done[table]);
                    }
                    let resume_after = Some(serde_json::json!(done_sets[table]));
                    state = self.step(
                        state,
                        Step::ChunkCommitted {
                            table: t.source_name.clone(),
                            rows,
                            resume_after,
                            last,
                            skipped: skipped_of.remove(&(table, chunk)).unwrap_or(0),
                        },
                    )?;
                    if last
                        && skips[table]
                        && let Phase::FullSync(f) = &state.phase
                        && let Some(p) = f.tables.get(&t.source_name)
                    {
                        known[table] = None;
                        info!(
                            table = %t.source_name,
                            skipped = p.skipped,
                            written = p.rows.saturating_sub(p.skipped),
                            "full sync: {} rows of {} skipped as already present in {} (their \
                             key was there before the task; conflicting_tables = \"ignore\")",
                            p.skipped,
                            t.source_name,
                            t.base_table()
                        );
                    }
                }
                item = run.items.recv(), if reading && ready.len() < READY_CHUNKS => {
                    let took = match item {
                        None => {
                            reading = false;
                            Ok(())
                        }
                        Some(item) => self.take_item(item, &job_tables, &mut pending, &mut ready),
                    };
                    // A commit in flight is finished (and checkpointed)
                    // before the error ends the attempt: a retry must not
                    // race a commit of the same unit still running.
                    if let Err(e) = took {
                        failure.get_or_insert(e);
                        reading = false;
                        ready.clear();
                    }
                }
                () = stopped(stop), if !stopping => {
                    // Chunks read in part or in full but not committed are
                    // dropped (the readers stop at their next batch); the
                    // checkpoint names the committed ones, so the next run
                    // reads exactly the rest.
                    stopping = true;
                    reading = false;
                    ready.clear();
                    pending.clear();
                    run.items.close();
                    info!(
                        committing = committing.len(),
                        "stopping the full phase: the chunks being read are dropped"
                    );
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if stopping {
            return Ok(state);
        }
        // Tables that were empty in every chunk still need their last mark.
        for (i, t) in job_tables.iter().enumerate() {
            if done_sets[i].len() != chunk_counts[i] {
                return Err(Error::Internal(format!(
                    "snapshot of {} ended with chunks missing",
                    t.source_name
                )));
            }
        }
        self.step(state, Step::FullSyncFinished)
    }

    /// Files a snapshot item: a batch joins its chunk's rows, a finished
    /// chunk goes to the commit queue.
    fn take_item(
        &self,
        item: std::result::Result<SnapshotItem, mysql_source::Error>,
        job_tables: &[&SyncedTable],
        pending: &mut HashMap<(usize, u32), Vec<RecordBatch>>,
        ready: &mut VecDeque<ReadyChunk>,
    ) -> Result<()> {
        match item.map_err(source_err)? {
            SnapshotItem::Batch {
                table,
                chunk,
                batch,
            } => {
                let t = job_tables[table];
                let rows = shape_base(t, self.transform.as_deref(), t.to_dest(batch)?)?;
                pending.entry((table, chunk)).or_default().push(rows);
            }
            SnapshotItem::ChunkDone { table, chunk, rows } => {
                let batches = pending.remove(&(table, chunk)).unwrap_or_default();
                ready.push_back(ReadyChunk {
                    table,
                    chunk,
                    rows,
                    batches,
                });
            }
        }
        Ok(())
    }

    /// [`crate::oversized::apply`], with a stop recorded for `status`.
    fn limit_oversized(
        &self,
        rule: &OversizedRule,
        table: &str,
        destination: &str,
        key: &[&str],
        batch: RecordBatch,
    ) -> Result<(RecordBatch, Vec<Occurrence>)> {
        crate::oversized::apply(rule, table, destination, key, batch).inspect_err(|e| {
            if let Error::OversizedValue {
                table,
                key,
                column,
                bytes,
                ..
            } = e
            {
                let stopped = Occurrence {
                    table: table.clone(),
                    destination: destination.to_owned(),
                    key: key.clone(),
                    column: column.clone(),
                    bytes: *bytes,
                };
                self.status
                    .oversized(std::slice::from_ref(&stopped), rule.policy, true);
            }
        })
    }

    /// Commits one snapshot chunk as its unit; yields what its checkpoint
    /// step needs.
    fn commit_chunk<'a>(
        &'a self,
        t: &'a SyncedTable,
        unit: String,
        c: ReadyChunk,
    ) -> CommitFuture<'a> {
        Box::pin(async move { self.commit_chunk_to(t, &t.base_table(), unit, c).await })
    }

    /// [`Self::commit_chunk`] into the base table `base` (a generation's).
    async fn commit_chunk_to(
        &self,
        t: &SyncedTable,
        base: &str,
        unit: String,
        c: ReadyChunk,
    ) -> Result<(usize, u32, u64)> {
        {
            let bytes: usize = c
                .batches
                .iter()
                .map(RecordBatch::get_array_memory_size)
                .sum();
            let rule = self.oversized_rule();
            let mut found = Vec::new();
            let mut data = Vec::with_capacity(c.batches.len());
            for batch in c.batches {
                let batch = match &rule {
                    Some(rule) => {
                        let (batch, more) =
                            self.limit_oversized(rule, &t.source_name, base, &t.dest_key(), batch)?;
                        found.extend(more);
                        batch
                    }
                    None => batch,
                };
                data.push(TableBatch {
                    table: base.to_owned(),
                    partition: vec![],
                    batch,
                });
            }
            self.sink.commit_unit(&unit, data).await?;
            self.metrics
                .add_rows(base, "full_sync", c.rows, bytes as u64);
            self.note_oversized(&found);
            Ok((c.table, c.chunk, c.rows))
        }
    }

    /// The chunk plan of each of `tables`, in their order: the saved ones,
    /// and new ones planned over up to `parallelism` connections, so many
    /// small tables do not wait on each other's planning queries.
    async fn load_or_plan_all(
        &self,
        conn: &mut RawConn,
        tables: &[&SyncedTable],
    ) -> Result<Vec<TablePlan>> {
        let mut plans: Vec<Option<TablePlan>> = Vec::with_capacity(tables.len());
        for t in tables {
            plans.push(self.saved_plan(&self.plan_path(t))?);
        }
        let missing: Vec<usize> = (0..tables.len()).filter(|&i| plans[i].is_none()).collect();
        let lanes = self.cfg.sync.parallelism.clamp(1, missing.len().max(1));
        let mut planners: Vec<PlanFuture<'_>> = Vec::with_capacity(lanes);
        let mut first = Some(conn);
        for lane in 0..lanes {
            let mine: Vec<usize> = missing.iter().copied().skip(lane).step_by(lanes).collect();
            let given = first.take();
            planners.push(Box::pin(async move {
                let mut own = None;
                let conn = match given {
                    Some(c) => c,
                    None => own.insert(RawConn::connect(&self.source()).await.map_err(source_err)?),
                };
                let mut out = Vec::with_capacity(mine.len());
                for i in mine {
                    out.push((
                        i,
                        self.load_or_plan_at(conn, tables[i], self.plan_path(tables[i]))
                            .await?,
                    ));
                }
                if let Some(c) = own {
                    let _ = c.close().await;
                }
                Ok(out)
            }));
        }
        // Every planner finishes (or fails) before the first error returns.
        let mut failure = None;
        while !planners.is_empty() {
            match first_done(&mut planners).await {
                Ok(done) => {
                    for (i, plan) in done {
                        plans[i] = Some(plan);
                    }
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        plans
            .into_iter()
            .zip(tables)
            .map(|(p, t)| {
                p.ok_or_else(|| Error::Internal(format!("no chunk plan for {}", t.source_name)))
            })
            .collect()
    }

    /// The chunk plan saved at `path`, if there is one.
    fn saved_plan(&self, path: &std::path::Path) -> Result<Option<TablePlan>> {
        let Ok(bytes) = std::fs::read(path) else {
            return Ok(None);
        };
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::CorruptCheckpoint {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        plan_from_json(&v)
            .map(Some)
            .ok_or_else(|| Error::CorruptCheckpoint {
                path: path.to_path_buf(),
                reason: "not a chunk plan".into(),
            })
    }

    /// The chunk plan saved at `path`, else a new one saved there.
    async fn load_or_plan_at(
        &self,
        conn: &mut RawConn,
        t: &SyncedTable,
        path: PathBuf,
    ) -> Result<TablePlan> {
        if let Some(plan) = self.saved_plan(&path)? {
            return Ok(plan);
        }
        let plan = self.plan_chunks(conn, t).await?;
        let dir = self.cfg.sync.state_dir.join("plans");
        crate::private_fs::create_dir_all(&dir)?;
        crate::checkpoint::write_durably(&path, plan_to_json(&plan).to_string().as_bytes())?;
        Ok(plan)
    }

    /// Splits a table into chunks of at most `chunk_rows` rows and about
    /// `chunk_mb` megabytes.
    async fn plan_chunks(&self, conn: &mut RawConn, t: &SyncedTable) -> Result<TablePlan> {
        let sync = &self.cfg.sync;
        let rows = snapshot::chunk_rows_for(
            conn,
            &t.schema,
            sync.chunk_rows,
            sync.chunk_mb.saturating_mul(1_000_000),
        )
        .await
        .map_err(source_err)?;
        let plan = snapshot::plan_table(conn, &t.schema, rows)
            .await
            .map_err(source_err)?;
        // Said only where the smaller chunks split the table: a small table
        // of wide rows is one chunk either way.
        if rows < sync.chunk_rows && plan.chunks.len() > 1 {
            info!(
                table = %t.source_name,
                rows,
                chunks = plan.chunks.len(),
                "wide rows: fewer rows per chunk to stay within chunk_mb"
            );
        }
        Ok(plan)
    }

    /// The snapshot readers' options from the task (no throttle).
    fn snapshot_options(&self) -> SnapshotOptions {
        let mut sopts = SnapshotOptions::new(self.source());
        sopts.parallelism = self.cfg.sync.parallelism;
        sopts.protocol = self.cfg.sync.read_protocol;
        sopts
    }

    fn plan_path(&self, t: &SyncedTable) -> PathBuf {
        self.cfg.sync.state_dir.join("plans").join(format!(
            "{}.json",
            crate::private_fs::file_component(&t.source_name)
        ))
    }

    /// The incremental phase until the stream ends or a stop; also says
    /// whether to read on (caught up before an added table's start).
    async fn incremental(
        &self,
        state: TaskState,
        tracked: &[TrackedTable],
        opts: &RunOptions,
    ) -> Result<(TaskState, bool)> {
        let position = |s: &TaskState| match &s.phase {
            Phase::Incremental(inc) => Some(inc.position.clone()),
            _ => None,
        };
        let was = position(&state);
        let pending = |s: &TaskState| {
            !table_set::waiting(s).is_empty() || !table_set::publishing(s).is_empty()
        };
        let none_waiting = !pending(&state);
        if let (Some(m), Phase::Incremental(inc)) = (&self.mirror, &state.phase) {
            let waiting: Vec<String> = table_set::waiting(&state)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            m.recover(&self.sink, inc.next_record_id, &waiting).await?;
            self.note_mirror(m);
        }
        let state = self.stream(state, tracked, opts).await?;
        // Caught up before the start of a table being added (captured after
        // the stream's end was): read on to it, so that a run that exits
        // when caught up leaves every added table live (once more at most
        // per table set change: the next stream's end lies past the start).
        let again = opts.exit_when_caught_up
            && !opts.stop.load(Ordering::Relaxed)
            && pending(&state)
            && (none_waiting || position(&state) != was);
        Ok((state, again))
    }

    async fn stream(
        &self,
        mut state: TaskState,
        tracked: &[TrackedTable],
        opts: &RunOptions,
    ) -> Result<TaskState> {
        if !matches!(state.phase, Phase::Incremental(_)) {
            return Ok(state);
        }
        let mut forced: Option<Intent> = None;
        if let Some(intent) = crate::batcher::pending(&state).cloned() {
            if self.sink.is_committed(&intent.unit).await? {
                info!(unit = %intent.unit, "the pending batch landed before the restart");
                state = self.step(state, Step::BatchCommitted)?;
            } else {
                info!(unit = %intent.unit, "the pending batch did not land: redoing exactly that range");
                forced = Some(intent);
            }
        }
        // The first generation also holds the shadow tables of online
        // schema changes under way, so that their cut-over is followed.
        let shadows = match &state.phase {
            Phase::Incremental(Incremental { schemas: None, .. }) => {
                self.shadow_tables(tracked).await?
            }
            _ => Vec::new(),
        };
        let (mut tracker, next_state) = self.schema_tracker(state, tracked, shadows)?;
        state = next_state;
        let Phase::Incremental(Incremental {
            position,
            next_record_id,
            xa: held,
            pending,
            ..
        }) = state.phase.clone()
        else {
            return Ok(state);
        };
        let pending_xa = pending.map(|p| p.xa).unwrap_or_default();
        let mut xa = XaBranches::load(&self.cfg.sync.state_dir, &held, &pending_xa)?;
        self.note_xa(xa.held());
        // The stream's FORMAT_DESCRIPTION: a held branch's events need it
        // to be decoded again at its commit.
        let mut fde: Vec<u8> = Vec::new();
        let naming = Naming::new(&self.cfg.objects);
        let database_charsets = self.database_charsets().await?;
        let reserved: Vec<String> = self
            .meta
            .all()
            .iter()
            .map(|s| s.to_lowercase())
            .chain(self.partition_columns().iter().map(|s| s.to_lowercase()))
            .collect();
        let by_gtid = self.cfg.source.resume == crate::config::ResumeBy::Gtid;
        let start = if by_gtid {
            gtid_start(&position)?
        } else {
            StartPosition::File(BinlogPosition {
                file: position.file.clone(),
                position: position.position,
            })
        };
        // Where a transaction starts: by GTID the file and offset are those
        // of whichever server the stream reads from, so only the GTID counts.
        let mut ropts = ReplicationOptions::new(self.source(), self.cfg.source.server_id, start);
        ropts.stop_at_end = opts.exit_when_caught_up;
        ropts.reconnect = self.retry.reconnect_policy();
        let mut stream = BinlogStream::start(ropts).await.map_err(source_err)?;
        self.retry.connected();
        let _heartbeat = crate::heartbeat::start(
            &self.cfg.heartbeat,
            &self.source(),
            self.cfg.source.server_id,
        );
        let mut ctx = DecodeContext::new();
        let mut batch = LogBatch::default();
        // The batching decisions (sans-IO); this loop feeds it what it read
        // and the time, and executes what it decides.
        let mut batcher = Batcher::new(
            self.batch_limits(),
            position,
            self.cfg.source.record_id_tag,
            next_record_id,
            forced,
        );
        let clock = tokio::time::Instant::now();
        let mut stopped_by_request = false;
        // The batch the sink is writing while the stream reads on (the
        // second core encodes it): at most one, landed before the next is
        // sent and before anything else steps the state.
        let mut in_flight: Option<Landing<'_>> = None;
        // Tables added to or removed from `[objects] include` ([`table_set`]):
        // the set changes at the first boundary with nothing pending (a
        // checkpoint from before schema tracking waits for its first DDL).
        let mut table_set_due =
            matches!(&state.phase, Phase::Incremental(i) if i.schemas.is_some());
        let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut backfill: Option<table_set::BackfillFuture<'_>> = None;
        let mut waiting = table_set::waiting(&state);
        let mut publishing = table_set::publishing(&state);
        self.metrics.set_phase(phase_metric(&state.phase));
        loop {
            if batcher.replaying().is_none()
                && batcher.at_boundary()
                && (table_set_due || !waiting.is_empty() || !publishing.is_empty())
            {
                let here = position_of(stream.checkpoint());
                let due = |waiting: &[(String, SourcePosition)]| -> Vec<String> {
                    waiting
                        .iter()
                        .filter(|(_, start)| table_set::reached(&here, start, by_gtid))
                        .map(|(n, _)| n.clone())
                        .collect()
                };
                if table_set_due || !due(&waiting).is_empty() || !due(&publishing).is_empty() {
                    // Nothing of the old set may be open across the change.
                    state = self.settle(state, &mut in_flight).await?;
                    if let Some(commit) = batcher.commit_at_boundary(here.clone()) {
                        state = self.commit_batch(state, &mut batch, commit).await?;
                    }
                    if table_set_due {
                        table_set_due = false;
                        state = self
                            .change_table_set(state, tracked, &mut tracker, &here)
                            .await?;
                        backfill = self.backfill(&state, chunk_tx.clone())?;
                    }
                    let now_due = due(&table_set::waiting(&state));
                    state = self.go_live(state, &mut tracker, &now_due, &here)?;
                    let now_due = due(&table_set::publishing(&state));
                    state = self.publish_due(state, &now_due, &here, batcher.next_record_id())?;
                    waiting = table_set::waiting(&state);
                    publishing = table_set::publishing(&state);
                    if matches!(&state.phase, Phase::Incremental(i) if i.position == here) {
                        batcher.moved_to(here);
                    }
                }
            }
            let due = batcher.deadline().map(|d| clock + d);
            let mirror_due = self
                .mirror
                .as_ref()
                .and_then(|m| m.next_due())
                .map(tokio::time::Instant::from_std);
            let next = tokio::select! {
                () = sleep_until(mirror_due), if mirror_due.is_some() => {
                    if let Some(m) = &self.mirror {
                        m.flush().await?;
                        self.note_mirror(m);
                    }
                    continue;
                }
                landed = async {
                    match in_flight.as_mut() {
                        Some(landing) => (&mut landing.write).await,
                        None => std::future::pending().await,
                    }
                }, if in_flight.is_some() => {
                    landed?;
                    if let Some(landing) = in_flight.take() {
                        state = self.landed(state, landing.done)?;
                    }
                    continue;
                }
                ev = stream.next_event() => ev.map_err(source_err)?,
                Some(c) = chunk_rx.recv() => {
                    state = self.baseline_landed(state, c)?;
                    continue;
                }
                copied = async {
                    match backfill.as_mut() {
                        Some(work) => work.await,
                        None => std::future::pending().await,
                    }
                }, if backfill.is_some() => {
                    backfill = None;
                    copied?;
                    continue;
                }
                () = stopped(&opts.stop) => {
                    stopped_by_request = true;
                    None
                }
                () = sleep_until(due), if due.is_some() => {
                    let here = position_of(stream.checkpoint());
                    if let Some(Decision::Commit(commit)) = batcher.poll_timeout(clock.elapsed(), &here) {
                        state = self.hand_over(state, &mut in_flight, &mut batch, *commit).await?;
                    }
                    continue;
                }
            };
            // The end of the binlog is always a transaction boundary: the
            // server writes each transaction whole.
            let Some(ev) = next else { break };
            let event = ctx.decode_packet(&ev.bytes).map_err(|e| {
                let at = u64::from(ev.log_pos).saturating_sub(ev.bytes.len() as u64);
                Error::decode(
                    BinlogAt::new(&stream.checkpoint().position.file, at),
                    "event",
                    e,
                )
            })?;
            let timestamp = i64::from(event.header().timestamp);
            if timestamp > 0 {
                batch.last_event_time = Some(timestamp);
            }
            // Where an XA branch's group starts and what it holds.
            match &event.data {
                EventData::FormatDescription(_) => fde = ev.bytes.to_vec(),
                EventData::MariadbGtid(g) => {
                    xa.drop_open();
                    if g.flags & MARIADB_GTID_PREPARED_XA != 0
                        && let Some((format_id, gtrid, bqual)) = g.xid
                    {
                        xa.open(xid_text(format_id, gtrid, bqual), &fde)?;
                    }
                }
                EventData::Gtid(_) => xa.drop_open(),
                EventData::TableMap(_) if xa.is_open() => xa.hold(&ev.bytes, false)?,
                _ => {}
            }
            if let EventData::Rows(rows) = &event.data {
                let table = ctx
                    .table(rows.table_id)
                    .and_then(|m| tracker.synced(&m.schema, &m.table));
                let gap = table
                    .and_then(|_| ctx.table(rows.table_id))
                    .and_then(|map| {
                        let gap = crate::row_image::gap(rows, map)?;
                        let source = tracker.tracked(&map.schema, &map.table);
                        let missing = gap
                            .missing
                            .iter()
                            .map(|&i| {
                                source
                                    .and_then(|t| t.source.columns.get(i))
                                    .map(|c| c.name.clone())
                                    .or_else(|| map.columns.get(i).and_then(|c| c.name.clone()))
                                    .unwrap_or_else(|| format!("#{}", i + 1))
                            })
                            .collect::<Vec<_>>()
                            .join(", ");
                        Some((format!("{}.{}", map.schema, map.table), gap, missing))
                    });
                if let Some((name, gap, missing)) = gap {
                    let file = stream.checkpoint().position.file.clone();
                    let at = u64::from(ev.log_pos).saturating_sub(ev.bytes.len() as u64);
                    let kind = match rows.kind {
                        RowsKind::Write => "WRITE",
                        RowsKind::Update | RowsKind::PartialUpdate => "UPDATE",
                        RowsKind::Delete => "DELETE",
                    };
                    match self.cfg.sync.unsupported_events {
                        UnsupportedEvents::Stop => {
                            // Nothing partial lands: the batch only when it
                            // holds none of this event's transaction.
                            state = self.settle(state, &mut in_flight).await?;
                            if let Some(commit) = batcher.commit_before_error() {
                                self.commit_batch(state, &mut batch, commit).await?;
                            }
                            let _ = stream.close().await;
                            return Err(Error::RowImageNotFull(Box::new(
                                crate::error::RowImageNotFull {
                                    file,
                                    position: at,
                                    table: name,
                                    kind,
                                    image: gap.image,
                                    missing,
                                    setting: gap.setting,
                                },
                            )));
                        }
                        UnsupportedEvents::Skip => {
                            warn!(
                                file = %file,
                                position = at,
                                table = %name,
                                missing = %missing,
                                "skipped a {kind} rows event at {file}:{at} whose {} image lacks \
                                 columns (binlog_row_image = {}): its changes are not in the \
                                 destination (`sync.unsupported_events` = \"skip\")",
                                gap.image,
                                gap.setting
                            );
                            self.status.skipped_unsupported();
                        }
                    }
                } else if xa.is_open() && table.is_some() {
                    // A branch's rows wait for its XA COMMIT.
                    xa.hold(&ev.bytes, true)?;
                } else if let Some(t) = table {
                    let changes = self
                        .append_changes(&mut batch, &ctx, rows, t, &mut batcher, timestamp)
                        .map_err(|e| {
                            let at = u64::from(ev.log_pos).saturating_sub(ev.bytes.len() as u64);
                            e.at_binlog(&stream.checkpoint().position.file, at)
                        })?;
                    // A stop cuts the wait short; the loop then stops at
                    // the next boundary (or drops the open transaction).
                    tokio::select! {
                        () = self.throttle.rows_event(changes, ev.bytes.len()) => {}
                        () = stopped(&opts.stop) => {}
                    }
                }
            }
            let event_at = u64::from(ev.log_pos).saturating_sub(ev.bytes.len() as u64);
            if let EventData::TableMap(tm) = &event.data
                && let Some(map) = ctx.table(tm.table_id)
            {
                tracker
                    .check_map(map)
                    .map_err(|message| Error::SchemaDrift {
                        file: stream.checkpoint().position.file.clone(),
                        position: event_at,
                        message,
                    })?;
            }
            // A committed XA branch's held events, applied here (and the
            // branch to forget once they are).
            let mut replay: Option<(HeldEvents, Option<String>)> = None;
            let xa_statement = match &event.data {
                EventData::Query(q) => crate::xa::statement(&q.query_lossy()),
                _ => None,
            };
            if let EventData::XaPrepare(p) = &event.data {
                let xid = xid_text(p.xid.format_id, p.xid.gtrid, p.xid.bqual);
                if p.one_phase {
                    // MySQL's `XA COMMIT … ONE PHASE`: committed right here.
                    replay = xa.commit_open()?.map(|events| (events, None));
                } else {
                    let file = stream.checkpoint().position.file.clone();
                    let name = crate::xa::branch_file_name(&file, u64::from(ev.log_pos));
                    xa.prepare(xid, name, format!("{file}:{event_at}"), timestamp)?;
                    self.note_xa(xa.held());
                }
            }
            if let Some(statement) = xa_statement {
                let file = stream.checkpoint().position.file.clone();
                let statement = statement.map_err(|message| Error::BinlogEvent {
                    at: BinlogAt::new(file.as_str(), event_at),
                    message,
                })?;
                match statement {
                    XaStatement::Start(xid) => {
                        if !xa.is_open() {
                            xa.open(xid, &fde)?;
                        }
                    }
                    XaStatement::End => {}
                    XaStatement::Commit { xid, one_phase } => {
                        if one_phase || xa.is_open() {
                            replay = xa.commit_open()?.map(|events| (events, None));
                        } else if let Some(branch) = xa.held().iter().find(|b| b.xid == xid) {
                            info!(%xid, prepared_at = %branch.prepared_at, row_events = branch.row_events, "XA COMMIT: the branch's changes land now");
                            replay = Some((xa.events(branch)?, Some(xid)));
                        } else if let Some(found) =
                            self.earlier_branch(&xid, &file, event_at, &tracker).await?
                        {
                            match self.cfg.sync.unsupported_events {
                                UnsupportedEvents::Stop => {
                                    state = self.settle(state, &mut in_flight).await?;
                                    if let Some(commit) = batcher.commit_before_error() {
                                        self.commit_batch(state, &mut batch, commit).await?;
                                    }
                                    let _ = stream.close().await;
                                    return Err(Error::XaUnknownBranch {
                                        xid,
                                        file,
                                        position: event_at,
                                        found,
                                    });
                                }
                                UnsupportedEvents::Skip => {
                                    warn!(
                                        %xid,
                                        file = %file,
                                        position = event_at,
                                        "skipped XA COMMIT at {file}:{event_at} of a branch \
                                         prepared before the task's start position ({found}): its \
                                         changes are not in the destination \
                                         (`sync.unsupported_events` = \"skip\")"
                                    );
                                    self.status.skipped_unsupported();
                                }
                            }
                        }
                    }
                    XaStatement::Rollback(xid) => {
                        if xa.is_open() {
                            xa.drop_open();
                        } else if let Some(branch) = xa.decide(&xid) {
                            info!(%xid, prepared_at = %branch.prepared_at, row_events = branch.row_events, "XA ROLLBACK: the branch's changes are dropped");
                            self.metrics.add_xa_rolled_back();
                            self.note_xa(xa.held());
                        } else {
                            info!(%xid, file = %file, position = event_at, "XA ROLLBACK of a branch prepared before the task's start position: none of its changes landed");
                        }
                    }
                }
            } else if let EventData::Query(q) = &event.data {
                let query = Query {
                    sql: &q.query_lossy(),
                    default_db: &String::from_utf8_lossy(q.schema),
                    sql_mode: q.sql_mode(),
                    at: event_at,
                    standalone: batcher.standalone(ev.ends_transaction),
                };
                let open = OpenBatch {
                    batch: &mut batch,
                    batcher: &mut batcher,
                };
                let adding: Vec<String> = waiting.iter().map(|(n, _)| n.clone()).collect();
                let cx = PlanContext {
                    policy: &self.cfg.sync.ddl,
                    naming: &naming,
                    reserved: &reserved,
                    next_record_id: open.batcher.next_record_id(),
                    database_charsets: &database_charsets,
                    adding: &adding,
                };
                let plan = tracker.plan_query(query.sql, query.default_db, query.sql_mode, &cx);
                // BEGIN, DML in statement form, DDL of other tables: the
                // batch in flight need not land first.
                if !matches!(plan, Plan::Unchanged { .. }) {
                    state = self.settle(state, &mut in_flight).await?;
                }
                match self
                    .on_query(
                        state,
                        &query,
                        plan,
                        open,
                        &mut tracker,
                        &cx,
                        stream.checkpoint(),
                    )
                    .await
                {
                    Ok((next, None)) => state = next,
                    Ok((next, Some(here))) => {
                        // The DDL was followed: the next batch starts after it.
                        state = next;
                        batcher.moved_to(here);
                        continue;
                    }
                    Err(e) => {
                        let _ = stream.close().await;
                        return Err(e);
                    }
                }
            }
            if let Some((mut events, decided)) = replay {
                let mut held_ctx = DecodeContext::new();
                while let Some(bytes) = events.next_event()? {
                    let e = held_ctx.decode_packet(&bytes).map_err(|e| {
                        let at = BinlogAt::new(&stream.checkpoint().position.file, event_at);
                        Error::decode(at, "XA branch event held for the commit here", e)
                    })?;
                    let EventData::Rows(rows) = &e.data else {
                        continue;
                    };
                    let Some(t) = held_ctx
                        .table(rows.table_id)
                        .and_then(|m| tracker.synced(&m.schema, &m.table))
                    else {
                        continue;
                    };
                    self.append_changes(&mut batch, &held_ctx, rows, t, &mut batcher, timestamp)
                        .map_err(|e| e.at_binlog(&stream.checkpoint().position.file, event_at))?;
                    // A large branch lands in parts, inside the commit's group.
                    if let Decision::Commit(commit) = batcher.on_held_rows().map_err(diverged)? {
                        state = self
                            .hand_over(state, &mut in_flight, &mut batch, *commit)
                            .await?;
                    }
                }
                if let Some(xid) = decided {
                    xa.decide(&xid);
                    self.metrics.add_xa_committed();
                    self.note_xa(xa.held());
                }
            }
            if !ev.ends_transaction {
                let at = position_of(stream.checkpoint());
                if let Decision::Commit(commit) = batcher
                    .on_event(Read::Inside { at }, clock.elapsed())
                    .map_err(diverged)?
                {
                    state = self
                        .hand_over(state, &mut in_flight, &mut batch, *commit)
                        .await?;
                }
                continue;
            }
            if batcher.records() == 0 && in_flight.is_none() {
                self.status.caught_up(batch.last_event_time);
            }
            if opts.stop.load(Ordering::Relaxed) {
                batcher.on_stop();
            }
            let at = position_of(stream.checkpoint());
            if let Decision::Commit(commit) = batcher
                .on_event(Read::TxnEnd { at }, clock.elapsed())
                .map_err(diverged)?
            {
                state = self
                    .hand_over(state, &mut in_flight, &mut batch, *commit)
                    .await?;
                xa.collect(&saved_xa(&state))?;
            }
        }
        state = self.settle(state, &mut in_flight).await?;
        let cp = position_of(stream.checkpoint());
        match batcher.on_end(cp.clone(), stopped_by_request) {
            End::DropOpenTransaction => {
                // Stopped inside a transaction: its records are dropped here
                // and read again from the last committed position on the
                // next run.
                info!(
                    "stopped inside a transaction; the next run resumes at the last committed batch"
                );
                let _ = stream.close().await;
                return self
                    .finish_backfill(state, None, &mut chunk_rx, &opts.stop)
                    .await;
            }
            End::KeepPending => {
                warn!(
                    "the stream ended before the pending batch's end position; the batch stays pending"
                );
                return Ok(state);
            }
            End::Commit(commit) => {
                state = self.commit_batch(state, &mut batch, *commit).await?;
            }
            End::Done => {}
        }
        xa.collect(&saved_xa(&state))?;
        let _ = stream.close().await;
        if stopped_by_request {
            return self
                .finish_backfill(state, None, &mut chunk_rx, &opts.stop)
                .await;
        }
        // Caught up: added tables whose start the stream reached go live,
        // and their baselines are let finish.
        let due: Vec<String> = waiting
            .iter()
            .filter(|(_, start)| table_set::reached(&cp, start, by_gtid))
            .map(|(n, _)| n.clone())
            .collect();
        let at_cp = matches!(&state.phase, Phase::Incremental(i) if i.position == cp);
        if !due.is_empty() && at_cp {
            state = self.go_live(state, &mut tracker, &due, &cp)?;
        }
        let due: Vec<String> = publishing
            .iter()
            .filter(|(_, start)| table_set::reached(&cp, start, by_gtid))
            .map(|(n, _)| n.clone())
            .collect();
        if !due.is_empty() && at_cp {
            state = self.publish_due(state, &due, &cp, batcher.next_record_id())?;
        }
        self.finish_backfill(state, backfill, &mut chunk_rx, &opts.stop)
            .await
    }

    /// A QUERY event that changes a synced table (`plan`, from
    /// [`Tracker::plan_query`]): the DDL is followed (the batch before it
    /// committed, the destination changed, the new schemas saved and the
    /// checkpoint moved past it: returns that position) or stops the task.
    #[allow(clippy::too_many_arguments)]
    async fn on_query(
        &self,
        mut state: TaskState,
        q: &Query<'_>,
        plan: Plan,
        mut open: OpenBatch<'_>,
        tracker: &mut Tracker,
        cx: &PlanContext<'_>,
        after: &mysql_source::replication::Checkpoint,
    ) -> Result<(TaskState, Option<SourcePosition>)> {
        let file = open.batcher.boundary().file.clone();
        let stop = |message: String| Error::Ddl {
            file: file.clone(),
            position: q.at,
            statement: shorten(q.sql),
            message,
        };
        let plan = match plan {
            Plan::StatementLogged { tables, kind, then } => {
                let tables = tables.join(", ");
                let statement = shorten_to(q.sql, STATEMENT_SHOWN);
                match self.cfg.sync.unsupported_events {
                    UnsupportedEvents::Stop => {
                        // The checkpoint never passes the statement: what
                        // came before lands (up to the start of the
                        // statement's transaction, when the batch holds
                        // nothing of it), the next run stops here again.
                        if let Some(commit) = open.batcher.commit_before_error() {
                            self.commit_batch(state, open.batch, commit).await?;
                        }
                        return Err(Error::StatementLogged {
                            file: file.clone(),
                            position: q.at,
                            tables,
                            kind,
                            statement,
                        });
                    }
                    UnsupportedEvents::Skip => {
                        warn!(
                            file = %file,
                            position = q.at,
                            tables = %tables,
                            statement = %statement,
                            "skipped a {kind} logged as a statement at {}:{}: its changes are not \
                             in the destination (`sync.unsupported_events` = \"skip\")",
                            file,
                            q.at
                        );
                        self.status.skipped_unsupported();
                        *then
                    }
                }
            }
            other => other,
        };
        let (next, add_columns, created, notes) = match plan {
            Plan::StatementLogged { .. } => {
                // `then` is what the statement means as DDL, never this.
                return Err(stop(
                    "a data change logged as a statement nested in another".into(),
                ));
            }
            Plan::Unchanged { notes } => {
                for note in notes {
                    warn!(file = %file, position = q.at, "{note}");
                }
                return Ok((state, None));
            }
            Plan::Stop { message } => {
                // Everything before the statement lands; a rerun starts
                // at it. (Inside a transaction the batch holds part of
                // it: that part is read again instead.)
                if q.standalone {
                    self.commit_before(state, &mut open).await?;
                }
                return Err(stop(message));
            }
            Plan::Changed {
                next,
                add_columns,
                created,
                notes,
            } => (next, add_columns, created, notes),
        };
        let (mut next, mut created) = (next, created);
        let added = match &state.phase {
            Phase::Incremental(inc) => inc.added.clone(),
            _ => BTreeMap::new(),
        };
        for (name, a) in &added {
            if !a.live {
                // Being added: untracked until its start, where it is
                // read as it is then.
                if created.contains(name) {
                    created.retain(|n| n != name);
                    next.tables.remove(name);
                }
            } else if !a.baseline.done && next.tables.get(name) != tracker.set().tables.get(name) {
                if q.standalone {
                    self.commit_before(state, &mut open).await?;
                }
                return Err(stop(format!(
                    "it changes {name}, whose baseline is still being copied ({}): its t_base \
                     would mix two schemas. Remove {name} from [objects] include and run (the \
                     task passes the statement), then drop {name}'s destination tables and \
                     add it again: its baseline is read with the new schema. Next time, \
                     change an added table after `sync-cli status` shows its baseline complete",
                    table_set::describe_added(a)
                )));
            }
        }
        if created.is_empty() && add_columns.is_empty() && next == *tracker.set() {
            // Only a table being added was created: nothing changes yet.
            return Ok((state, None));
        }
        if !q.standalone {
            return Err(stop(
                "it changes a synced table's schema inside a transaction (or while a batch is \
                 replayed): the task cannot split the transaction there"
                    .into(),
            ));
        }
        for note in notes {
            warn!(file = %file, position = q.at, "{note}");
        }
        // A DDL is its own transaction: what came before commits first, so
        // that no batch spans two schemas.
        state = self.commit_before(state, &mut open).await?;
        // Baseline generations of `resnapshot` gain the columns of `t_base`.
        let generations: Vec<String> = match &state.phase {
            Phase::Incremental(inc) => inc
                .baselines
                .values()
                .chain(inc.resnapshots.values().map(|r| &r.target))
                .map(|g| g.table.clone())
                .collect(),
            _ => Vec::new(),
        };
        for (table, fields) in &add_columns {
            self.sink.add_columns(table, fields).await?;
            if let Some(m) = &self.mirror {
                m.add_columns(table, fields).await?;
            }
            let prefix = format!("{table}_g");
            for g in generations.iter().filter(|g| g.starts_with(&prefix)) {
                self.sink.add_columns(g, fields).await?;
            }
        }
        if let Some(m) = &self.mirror {
            for t in next.tables.values() {
                m.refresh(&t.synced(&self.meta));
            }
        }
        for name in &created {
            if let Some(t) = next.tables.get(name) {
                self.ensure_tables(&t.synced(&self.meta), &state.task_id)
                    .await?;
                info!(table = %name, dest = %t.dest, "a new table is synced from its CREATE TABLE on");
            }
        }
        for t in next.tables.values() {
            for a in t
                .added
                .iter()
                .filter(|a| a.resnapshot && a.first_record_id == cx.next_record_id)
            {
                warn!(
                    table = %t.source_name(),
                    column = %a.column,
                    "column `{}` was added with a default that MySQL gave every existing row without \
                     a log row: those rows hold NULL in the destination until a new baseline; run \
                     `sync-cli resnapshot --table {}` while the task is stopped \
                     (`sync.ddl.rewritten_rows` = \"resnapshot\")",
                    a.column,
                    t.source_name()
                );
            }
        }
        let here = position_of(after);
        let generation = tracker.save_next(&next)?;
        state = self.step(
            state,
            Step::SchemaChanged {
                generation,
                to: here.clone(),
                xa: self.xa_held(),
            },
        )?;
        tracker.advance(generation, next);
        info!(file = %here.file, position = here.position, generation, statement = %shorten(q.sql), "followed a DDL");
        Ok((state, Some(here)))
    }

    /// Commits the batch gathered before a statement, if it holds records.
    async fn commit_before(&self, state: TaskState, open: &mut OpenBatch<'_>) -> Result<TaskState> {
        match open.batcher.commit_before_statement() {
            Some(commit) => self.commit_batch(state, open.batch, commit).await,
            None => Ok(state),
        }
    }

    /// Where batches end ([`Batcher`]), from the task file.
    fn batch_limits(&self) -> Limits {
        Limits {
            batch_rows: self.cfg.sync.batch_rows,
            max_batch_records: self.cfg.sync.max_batch_records,
            // A batch also ends when it has waited `flush_interval` since
            // its first boundary (or longer when it only moves the
            // position), so a quiet source still sees its changes land
            // within about a second.
            flush_interval: Duration::from_millis(self.cfg.sync.flush_interval_ms.max(1)),
            idle_interval: IDLE_CHECKPOINT_INTERVAL,
            by_gtid: self.cfg.source.resume == crate::config::ResumeBy::Gtid,
        }
    }

    /// Commits a batch and waits for it to land (where nothing may be read
    /// past it: before a DDL).
    async fn commit_batch(
        &self,
        state: TaskState,
        batch: &mut LogBatch,
        commit: Commit,
    ) -> Result<TaskState> {
        let mut in_flight = None;
        let state = self.hand_over(state, &mut in_flight, batch, commit).await?;
        self.settle(state, &mut in_flight).await
    }

    /// Steps 2 and 3 of the exactly-once protocol (crate docs): the batch's
    /// intent is checkpointed, then the sink's write starts. The caller
    /// awaits [`Landing::write`] and hands the result to [`Self::landed`]
    /// before anything else steps the state.
    fn send_batch(
        &self,
        state: TaskState,
        batch: &mut LogBatch,
        commit: Commit,
    ) -> Result<(TaskState, Landing<'_>)> {
        let last_event_time = batch.last_event_time;
        let rule = self.oversized_rule();
        let mut oversized = Vec::new();
        let mut data = batch.finish(self.transform.as_deref())?;
        if let Some(rule) = &rule {
            for (d, t) in &mut data {
                let empty = RecordBatch::new_empty(d.batch.schema());
                let taken = std::mem::replace(&mut d.batch, empty);
                let (limited, found) =
                    self.limit_oversized(rule, &t.source_name, &d.table, &t.dest_key(), taken)?;
                d.batch = limited;
                oversized.extend(found);
            }
        }
        let data: Vec<TableBatch> = data.into_iter().map(|(d, _)| d).collect();
        // What lands is what the mirror gets, once it landed.
        let mirrored: Vec<(String, RecordBatch)> = match &self.mirror {
            Some(_) => data
                .iter()
                .map(|d| (d.table.clone(), d.batch.clone()))
                .collect(),
            None => Vec::new(),
        };
        let moved: Vec<(String, u64, u64)> = data
            .iter()
            .map(|d| {
                (
                    d.table.clone(),
                    d.batch.num_rows() as u64,
                    d.batch.get_array_memory_size() as u64,
                )
            })
            .collect();
        let (intent, step) =
            crate::batcher::prepare(&state, commit, self.xa_held(), self.batch_limits().by_gtid)
                .map_err(diverged)?;
        let unit = intent.unit;
        let state = match step {
            Some(step) => self.step(state, step)?,
            None => state,
        };
        let write_unit = unit.clone();
        let write = Box::pin(async move { self.sink.commit_unit(&write_unit, data).await });
        let done = SentBatch {
            unit,
            mirrored,
            moved,
            last_event_time,
            oversized,
        };
        Ok((state, Landing { write, done }))
    }

    /// Step 4: the sink has the batch; the checkpoint moves past it.
    fn landed(&self, state: TaskState, done: SentBatch) -> Result<TaskState> {
        let SentBatch {
            unit,
            mirrored,
            moved,
            last_event_time,
            oversized,
        } = done;
        self.note_oversized(&oversized);
        let rows: u64 = moved.iter().map(|(_, rows, _)| rows).sum();
        let lag = last_event_time.map(|t| (unix_now() - t as f64).max(0.0));
        // Two decimals: a lag is read by people, not compared to the µs.
        let lag_seconds = lag.map(|l| (l * 100.0).round() / 100.0);
        info!(%unit, rows, lag_seconds, "committed a t_log batch");
        for (table, rows, bytes) in moved {
            self.metrics.add_rows(&table, "incremental", rows, bytes);
        }
        if let Some(lag) = lag {
            self.metrics.set_lag_seconds(lag);
        }
        let next = self.step(state, Step::BatchCommitted)?;
        if let (Some(m), Phase::Incremental(inc)) = (&self.mirror, &next.phase) {
            m.hand(mirrored, inc.next_record_id)?;
            self.note_mirror(m);
        }
        self.write_progress(&next, last_event_time, lag);
        Ok(next)
    }

    /// Waits for the batch in flight, if any, to land.
    async fn settle(
        &self,
        state: TaskState,
        in_flight: &mut Option<Landing<'_>>,
    ) -> Result<TaskState> {
        match in_flight.take() {
            Some(mut landing) => {
                (&mut landing.write).await?;
                let state = self.landed(state, landing.done)?;
                if let Some(m) = &self.mirror {
                    m.flush_if_due().await?;
                    self.note_mirror(m);
                }
                Ok(state)
            }
            None => Ok(state),
        }
    }

    /// Lets the batch in flight land, then sends the next one; the stream
    /// reads on while the sink writes it.
    async fn hand_over<'s>(
        &'s self,
        state: TaskState,
        in_flight: &mut Option<Landing<'s>>,
        batch: &mut LogBatch,
        commit: Commit,
    ) -> Result<TaskState> {
        let state = self.settle(state, in_flight).await?;
        let (state, landing) = self.send_batch(state, batch, commit)?;
        *in_flight = Some(landing);
        Ok(state)
    }

    /// `state_dir/progress.json`: what `status` shows beyond the checkpoint.
    fn write_progress(&self, state: &TaskState, last_event_time: Option<i64>, lag: Option<f64>) {
        self.status
            .committed(state.phase.name(), last_event_time, lag);
    }
}

/// A QUERY event as [`TaskRunner::on_query`] reads it.
struct Query<'a> {
    sql: &'a str,
    /// The event's current database.
    default_db: &'a str,
    sql_mode: Option<u64>,
    /// Offset of the event in its binlog file.
    at: u64,
    /// A transaction of its own (and no batch being replayed).
    standalone: bool,
}

/// The batch gathered before a QUERY event, and where it ends.
struct OpenBatch<'a> {
    batch: &'a mut LogBatch,
    batcher: &'a mut Batcher,
}

/// A `t_log` batch whose intent is checkpointed and whose write to the
/// sink is under way.
struct Landing<'s> {
    write: std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 's>>,
    done: SentBatch,
}

/// What is reported and checkpointed once a batch has landed.
struct SentBatch {
    unit: String,
    /// The `t_log` rows as they land, for the mirror (empty without one).
    mirrored: Vec<(String, RecordBatch)>,
    /// Per table: rows and Arrow bytes (for the metrics).
    moved: Vec<(String, u64, u64)>,
    last_event_time: Option<i64>,
    /// Values over the destination's field size limit, written per policy.
    oversized: Vec<Occurrence>,
}

/// `t_log` records being gathered, per destination table and partition.
#[derive(Default)]
struct LogBatch {
    tables: BTreeMap<(String, Vec<String>), LogBuilder>,
    /// Binlog time of the newest event read (for the lag at commit).
    last_event_time: Option<i64>,
}

impl LogBatch {
    fn builder(&mut self, t: &SyncedTable, partition: Vec<String>) -> &mut LogBuilder {
        self.tables
            .entry((t.log_table(), partition))
            .or_insert_with(|| LogBuilder::new(t))
    }

    /// The batch's rows per table partition, each with its table.
    fn finish(
        &mut self,
        transform: Option<&dyn Transform>,
    ) -> Result<Vec<(TableBatch, SyncedTable)>> {
        let mut out = Vec::new();
        for ((table, partition), mut b) in std::mem::take(&mut self.tables) {
            let log = b.finish()?;
            let batch = shape_log(&b.table, transform, log)?;
            if batch.num_rows() > 0 {
                out.push((
                    TableBatch {
                        table,
                        partition,
                        batch,
                    },
                    b.table,
                ));
            }
        }
        Ok(out)
    }
}

struct LogBuilder {
    /// The table, for its filter when the batch is finished.
    table: SyncedTable,
    schema: SchemaRef,
    record_id: Int64Builder,
    op: StringBuilder,
    ts: Int64Builder,
    before: StringBuilder,
    after: StringBuilder,
    row: RowColumns,
}

impl LogBuilder {
    fn new(t: &SyncedTable) -> Self {
        Self {
            table: t.clone(),
            schema: t.log_schema.clone(),
            record_id: Int64Builder::new(),
            op: StringBuilder::new(),
            ts: Int64Builder::new(),
            before: StringBuilder::new(),
            after: StringBuilder::new(),
            row: RowColumns::projected(&t.schema.columns, &t.image_columns, t.source_column_count),
        }
    }

    fn append<'a>(
        &mut self,
        meta: &LogRecordMeta,
        values: impl Iterator<Item = binlog_parser::Result<(usize, binlog_parser::Value<'a>)>>,
    ) -> Result<()> {
        self.row.append(values)?;
        self.record_id.append_value(meta.record_id);
        self.op.append_value(meta.op.flag());
        self.ts.append_value(meta.utc_timestamp);
        self.before.append_value(meta.before_flag());
        self.after.append_value(meta.after_flag());
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let rows = arrow_array::builder::ArrayBuilder::len(&self.record_id);
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.record_id.finish()),
            Arc::new(self.op.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.before.finish()),
            Arc::new(self.after.finish()),
        ];
        columns.extend(self.table.conform(self.row.finish(), rows)?);
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// How often an idle stream (events of unselected tables only, e.g. the
/// heartbeat) moves the checkpoint forward.
const IDLE_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// Chunks read in full and held for their commit at most (beyond the one
/// being committed): bounds memory when the sink is slower than the reads.
const READY_CHUNKS: usize = 1;

/// Snapshot chunk commits under way at most (together within the memory of
/// one chunk). Two overlapped encoding and fsyncs of many small tables, but
/// a kill -9 test of the mirror lost a row once with two; one until that is
/// understood.
const COMMITS_IN_FLIGHT: usize = 1;

/// Resolves with the output of the first of `futures` to finish, and drops
/// it from the list; the others stay as they are (cancel-safe).
async fn first_done<T>(futures: &mut Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> T {
    std::future::poll_fn(|cx| {
        for i in 0..futures.len() {
            if let Poll::Ready(out) = futures[i].as_mut().poll(cx) {
                drop(futures.swap_remove(i));
                return Poll::Ready(out);
            }
        }
        Poll::Pending
    })
    .await
}

/// One planning connection's work: each table's index and chunk plan.
type PlanFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<(usize, TablePlan)>>> + Send + 'a>>;

/// Runs `work` on each item, at most `limit` at a time; the ones started
/// finish before the first error returns.
async fn for_each_limited<'a, I: IntoIterator>(
    items: I,
    limit: usize,
    work: impl Fn(I::Item) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>,
) -> Result<()> {
    let mut items = items.into_iter();
    let mut running = Vec::new();
    let mut failure = None;
    loop {
        while failure.is_none() && running.len() < limit.max(1) {
            match items.next() {
                Some(item) => running.push(work(item)),
                None => break,
            }
        }
        if running.is_empty() {
            return failure.map_or(Ok(()), Err);
        }
        if let Err(e) = first_done(&mut running).await {
            failure.get_or_insert(e);
        }
    }
}

/// A snapshot chunk read in full.
struct ReadyChunk {
    table: usize,
    chunk: u32,
    rows: u64,
    batches: Vec<RecordBatch>,
}

impl ReadyChunk {
    /// The memory its rows take.
    fn bytes(&self) -> usize {
        self.batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }
}

/// A chunk's commit: its table index, chunk id and row count.
type CommitFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(usize, u32, u64)>> + Send + 'a>>;

/// The metrics name of a phase (see [`crate::metrics::PHASES`]).
fn phase_metric(phase: &Phase) -> &'static str {
    match phase {
        Phase::Precheck => "precheck",
        Phase::SchemaSync => "schema_sync",
        Phase::Positioning => "positioning",
        Phase::FullSync(_) => "full_sync",
        Phase::Incremental(_) => "incremental",
        Phase::Finished => "finished",
    }
}

/// The progress file and the retrier of a runner, reporting into `metrics`.
/// `[destination] mirror` (MaxCompute only).
fn mirror_on(cfg: &TaskConfig) -> bool {
    matches!(&cfg.destination, crate::config::DestinationConfig::Maxcompute(mc) if mc.mirror)
}

/// `[destination] mirror_commit_seconds`.
fn mirror_every(cfg: &TaskConfig) -> Duration {
    match &cfg.destination {
        crate::config::DestinationConfig::Maxcompute(mc) => {
            Duration::from_secs(mc.mirror_commit_seconds)
        }
        crate::config::DestinationConfig::Local { .. }
        | crate::config::DestinationConfig::Embedded => Duration::ZERO,
    }
}

fn reporting(cfg: &TaskConfig, metrics: &Metrics) -> (Arc<StatusFile>, Retrier) {
    let status = Arc::new(StatusFile::new(&cfg.sync.state_dir, metrics.clone()));
    let retry = Retrier::new(cfg.retry.clone(), metrics.clone(), status.clone());
    (status, retry)
}

/// Sleeps until `due`, or forever when there is none.
async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Resolves once `stop` is set (polled: a signal handler only flips the flag).
pub(crate) async fn stopped(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The stream's start after `position`'s GTID state.
/// flags2 bit of a MariaDB GTID event: the group is a prepared XA branch.
const MARIADB_GTID_PREPARED_XA: u8 = 64;

/// The XA branches a saved checkpoint names: at its position, and at its
/// pending batch's end.
fn saved_xa(state: &TaskState) -> Vec<PreparedXa> {
    match &state.phase {
        Phase::Incremental(inc) => inc
            .xa
            .iter()
            .chain(inc.pending.iter().flat_map(|p| &p.xa))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// A batch redone after a restart that did not reproduce its intent.
fn diverged(e: crate::batcher::Diverged) -> Error {
    Error::ReplayDiverged(e.to_string())
}

fn gtid_start(position: &SourcePosition) -> Result<StartPosition> {
    let gtid = position.gtid.as_deref().unwrap_or_default();
    if gtid.is_empty() {
        return Err(Error::Config(format!(
            "[source] resume = \"gtid\", but the checkpoint at {}:{} has no GTID position \
             (the source had no GTIDs when it was taken): use resume = \"position\" on this server",
            position.file, position.position
        )));
    }
    let bad = |e: mysql_source::Error| {
        Error::Config(format!(
            "the checkpoint's GTID position `{gtid}` does not parse: {e}"
        ))
    };
    Ok(if gtid.contains(':') {
        StartPosition::MysqlGtid(mysql_source::gtid::MysqlGtidSet::parse(gtid).map_err(bad)?)
    } else {
        StartPosition::MariadbGtid(mysql_source::gtid::MariadbGtidPos::parse(gtid).map_err(bad)?)
    })
}

/// A statement as error messages show it: at most 500 characters.
/// How much of a statement logged as a statement an error or log shows.
const STATEMENT_SHOWN: usize = 200;

/// Why `name` names no table of the task, with the names the user may
/// have meant (`types` for `shop.types`, another case).
pub fn not_selected(name: &str, tables: &[SyncedTable]) -> String {
    let wanted = name.rsplit('.').next().unwrap_or(name);
    let near: Vec<&str> = tables
        .iter()
        .map(|t| t.source_name.as_str())
        .filter(|s| {
            s.eq_ignore_ascii_case(name)
                || s.rsplit('.')
                    .next()
                    .is_some_and(|t| t.eq_ignore_ascii_case(wanted))
        })
        .collect();
    let mut message = format!("table {name} is not selected by the task file");
    if !near.is_empty() {
        message.push_str(&format!("; did you mean {}?", near.join(" or ")));
    } else if !name.contains('.') {
        message.push_str("; name it as db.table");
    }
    message
}

fn shorten(sql: &str) -> String {
    shorten_to(sql, 500)
}

/// `sql` trimmed, cut after `chars` characters (marked with `…`).
fn shorten_to(sql: &str, chars: usize) -> String {
    let sql = sql.trim();
    match sql.char_indices().nth(chars) {
        Some((i, _)) => format!("{} …", &sql[..i]),
        None => sql.to_owned(),
    }
}

/// The server's row estimate of every base table, by `db.table`
/// (`information_schema.TABLES.TABLE_ROWS`).
/// The server's row estimate of each table of `databases`, by
/// `db.table`. Only those databases: on a server of many tables, asking for
/// all of them opens every one.
async fn row_estimates<'a>(
    conn: &mut RawConn,
    databases: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, u64>> {
    let list: BTreeSet<&str> = databases.into_iter().collect();
    if list.is_empty() {
        return Ok(HashMap::new());
    }
    let list: Vec<String> = list
        .into_iter()
        .map(mysql_source::schema::quote_str)
        .collect();
    let rows = conn
        .query_strings(&format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN ({})",
            list.join(", ")
        ))
        .await
        .map_err(source_err)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r.as_slice() {
            [Some(db), Some(t), Some(n)] => Some((format!("{db}.{t}"), n.parse().ok()?)),
            _ => None,
        })
        .collect())
}

fn position_of(cp: &mysql_source::replication::Checkpoint) -> SourcePosition {
    let gtid = cp.gtid.to_string();
    SourcePosition {
        file: cp.position.file.clone(),
        position: cp.position.position,
        gtid: (!gtid.is_empty()).then_some(gtid),
        within: None,
    }
}

/// A fresh task id: the start time in hex, distinct for tasks created apart.
fn new_task_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("t{:x}", nanos ^ u128::from(std::process::id()))
}

/// The schemas of the source tables that `objects` selects, in name order.
pub(crate) async fn read_selected(
    conn: &mut RawConn,
    objects: &crate::config::ObjectsConfig,
) -> mysql_source::Result<Vec<TableSchema>> {
    let rows = conn
        .query_strings(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema NOT IN \
             ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1, 2",
        )
        .await?;
    let naming = Naming::new(objects);
    let mut out = Vec::new();
    for row in rows {
        let (Some(Some(db)), Some(Some(table))) = (row.first(), row.get(1)) else {
            continue;
        };
        if naming.selects_table(db, table) {
            out.push(mysql_source::schema::read_table(conn, db, table).await?);
        }
    }
    Ok(out)
}

fn source_err(e: mysql_source::Error) -> Error {
    Error::from(e)
}

fn plan_to_json(plan: &TablePlan) -> serde_json::Value {
    serde_json::json!({
        "key": plan.key,
        "chunks": plan.chunks.iter().map(|c| serde_json::json!({"id": c.id, "lower": c.lower, "upper": c.upper})).collect::<Vec<_>>(),
    })
}

fn plan_from_json(v: &serde_json::Value) -> Option<TablePlan> {
    let key = serde_json::from_value(v.get("key")?.clone()).ok()?;
    let chunks = v
        .get("chunks")?
        .as_array()?
        .iter()
        .map(|c| {
            Some(ChunkPlan {
                id: u32::try_from(c.get("id")?.as_u64()?).ok()?,
                lower: serde_json::from_value(c.get("lower")?.clone()).ok()?,
                upper: serde_json::from_value(c.get("upper")?.clone()).ok()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(TablePlan { key, chunks })
}
