//! Changing the table set of a task in the incremental phase: tables added
//! to `[objects] include` get a baseline and their changes, tables removed
//! from it stop being synced (their destination tables stay).
//!
//! # Adding a table `N` (see live-operations.md §2)
//!
//! 1. At a transaction boundary with no batch pending, the task captures a
//!    binlog position `S` (later than the stream's) and checkpoints it with
//!    `N`'s schema ([`Step::TableAdded`]) before any row of `N` is emitted.
//! 2. The stream ignores `N` until it reaches `S`; there the batch before
//!    commits and a schema generation that tracks `N` takes effect
//!    ([`Step::TableLive`]): every change of `N` from `S` on goes to `N_log`
//!    with ordinary record ids, the same on every replay.
//! 3. With a key, `N`'s baseline is read in throttled key-range chunks while
//!    the stream runs, each committed to `N_base` as one unit named by its
//!    chunk id and then checkpointed ([`Step::BaselineChunk`]); after a crash
//!    only the chunks not checkpointed are read again (a redone unit replaces
//!    its earlier attempt). Every chunk is read after `S`, and every log row
//!    outranks every base row in the merge, so a base row is either the
//!    key's state or overridden by a later log row: no watermark is needed.
//! 4. Without a key, rows cannot be told apart, so a base row read after a
//!    change would double it. Its baseline is the whole table read in one
//!    consistent snapshot, and `S` is that snapshot's own binlog position
//!    ([`snapshot::read_consistent`]): the baseline is the table exactly at
//!    `S`, the log everything after. It is committed before `N` goes live.
//!
//! Until both are done, `status`, `merge` and `verify` say that `N` is partial.

use super::{ReadyChunk, TaskRunner, new_task_id, position_of, source_err, stopped};
use crate::error::{Error, Result};
use crate::machine::{
    AddedTable, Incremental, Phase, SourcePosition, Step, TableProgress, TaskState,
};
use crate::naming::SyncedTable;
use crate::schema_history::{SchemaSet, TrackedTable, Tracker};
use crate::sink::Sink;
use crate::transform::shape_base;
use mysql_source::RawConn;
use mysql_source::snapshot::{self, TableJob};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// A baseline chunk committed to `t_base`, waiting for its checkpoint step.
#[derive(Debug)]
pub(super) struct ChunkLanded {
    table: String,
    chunk: u32,
    rows: u64,
    /// Chunks in the table's plan.
    chunks: usize,
}

/// The baselines being copied: commits chunks and reports each on a channel.
pub(super) type BackfillFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;

/// The added tables of `state` that the stream has not reached yet, with
/// their start positions.
pub(super) fn waiting(state: &TaskState) -> Vec<(String, SourcePosition)> {
    match &state.phase {
        Phase::Incremental(inc) => inc
            .added
            .iter()
            .filter(|(_, a)| !a.live)
            .map(|(n, a)| (n.clone(), a.start.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

/// The complete keyless baseline generations of `state` waiting for the
/// stream to reach their start, with it.
pub(super) fn publishing(state: &TaskState) -> Vec<(String, SourcePosition)> {
    match &state.phase {
        Phase::Incremental(inc) => inc
            .resnapshots
            .iter()
            .filter(|(_, r)| r.baseline.done)
            .filter_map(|(n, r)| Some((n.clone(), r.start.clone()?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the stream, at `here` (a transaction boundary), has reached
/// `start`: with `by_gtid` by the MariaDB GTID state when both carry one
/// (valid on any server of the group), else by binlog file and offset.
pub(super) fn reached(here: &SourcePosition, start: &SourcePosition, by_gtid: bool) -> bool {
    if by_gtid && let (Some(h), Some(s)) = (mariadb_gtids(&here.gtid), mariadb_gtids(&start.gtid)) {
        return s
            .iter()
            .all(|(domain, seq)| h.get(domain).is_some_and(|have| have >= seq));
    }
    file_order(&here.file) >= file_order(&start.file)
        && (here.file != start.file || here.position >= start.position)
}

/// `d-s-n,…` as the last sequence number per domain; `None` for anything
/// else (MySQL GTID sets, no GTIDs).
fn mariadb_gtids(gtid: &Option<String>) -> Option<HashMap<u32, u64>> {
    let text = gtid.as_deref().filter(|g| !g.is_empty())?;
    text.split(',')
        .map(|part| {
            let mut it = part.trim().split('-');
            let domain = it.next()?.parse().ok()?;
            let _server: u32 = it.next()?.parse().ok()?;
            let seq = it.next()?.parse().ok()?;
            it.next().is_none().then_some((domain, seq))
        })
        .collect()
}

/// A binlog file name as (base name, sequence number) for ordering.
fn file_order(file: &str) -> (&str, u64) {
    match file.rsplit_once('.') {
        Some((base, n)) => (base, n.parse().unwrap_or(0)),
        None => (file, 0),
    }
}

impl<S: Sink> TaskRunner<S> {
    /// At a transaction boundary `here` with nothing pending: stops syncing
    /// the tracked tables `[objects] include` no longer selects and adds the
    /// selected ones the task does not sync yet (captures their start and,
    /// for keyless tables, commits their snapshot).
    pub(super) async fn change_table_set(
        &self,
        mut state: TaskState,
        tracked: &[TrackedTable],
        tracker: &mut Tracker,
        here: &SourcePosition,
    ) -> Result<TaskState> {
        let Phase::Incremental(inc) = &state.phase else {
            return Ok(state);
        };
        let objects = &self.cfg.objects;
        // Removed: tracked (or being added) and no longer selected.
        let gone: Vec<(String, String)> = tracker
            .set()
            .tables
            .values()
            .map(|t| {
                (
                    t.source_name(),
                    t.source.database.clone(),
                    t.source.table.clone(),
                    t.dest.clone(),
                )
            })
            .chain(
                inc.added
                    .iter()
                    .filter(|(_, a)| !a.live)
                    .filter_map(|(n, a)| {
                        let t: TrackedTable = serde_json::from_value(a.table.clone()).ok()?;
                        Some((
                            n.clone(),
                            t.source.database.clone(),
                            t.source.table.clone(),
                            t.dest,
                        ))
                    }),
            )
            .filter(|(_, db, table, _)| !objects.selects(db, table))
            .map(|(name, _, _, dest)| (name, dest))
            .collect();
        for (name, dest) in gone {
            let mut next = tracker.set().clone();
            next.tables.remove(&name);
            let generation = tracker.save_next(&next)?;
            state = self.step(
                state,
                Step::TableRemoved {
                    table: name.clone(),
                    dest: dest.clone(),
                    generation,
                    to: here.clone(),
                    xa: self.xa_held(),
                },
            )?;
            tracker.advance(generation, next);
            warn!(
                table = %name,
                file = %here.file,
                position = here.position,
                "{name} is no longer selected by [objects] include: its changes after {}:{} are not \
                 synced; {dest}_base and {dest}_log stay as they are",
                here.file,
                here.position
            );
        }
        // Added: selected, not tracked, not being added already.
        for t in tracked {
            let name = t.source_name();
            let known = match &state.phase {
                Phase::Incremental(inc) => inc.added.contains_key(&name),
                _ => true,
            };
            if known || tracker.set().tables.contains_key(&name) {
                continue;
            }
            let synced = t.synced(&self.meta);
            self.check_new_destination(&synced).await?;
            state = self.add_table(state, t, &synced, new_task_id()).await?;
        }
        // Keyless tables whose snapshot did not land before a restart.
        let unfinished: Vec<(String, AddedTable)> = match &state.phase {
            Phase::Incremental(inc) => inc
                .added
                .iter()
                .filter(|(_, a)| a.keyless && !a.baseline.done)
                .map(|(n, a)| (n.clone(), a.clone()))
                .collect(),
            _ => Vec::new(),
        };
        for (name, a) in unfinished {
            let t: TrackedTable = serde_json::from_value(a.table.clone())
                .map_err(|e| Error::unreadable(format!("the checkpoint's schema of {name}"), e))?;
            let synced = t.synced(&self.meta);
            if self
                .sink
                .is_committed(&state.unit_name(&base_unit(&name, &a.id, 0)))
                .await?
            {
                state = self.step(state, baseline_done(&name, 0))?;
            } else {
                info!(table = %name, "the snapshot of a table without a key did not land: reading it again at a new position");
                state = self.add_table(state, &t, &synced, a.id.clone()).await?;
            }
        }
        Ok(state)
    }

    /// A new table's destination tables must not exist already (a table
    /// removed earlier, another task's), whatever `conflicting_tables`
    /// says: `ignore` applies to the tables a task starts with, whose keys
    /// and record ids it reads before it writes ([`crate::conflict`]); a
    /// table added while the task streams would get a baseline beside old
    /// rows and record ids below old ones.
    async fn check_new_destination(&self, t: &SyncedTable) -> Result<()> {
        for name in [t.base_table(), t.log_table()] {
            if self.sink.table_exists(&name).await? {
                return Err(Error::TableSet {
                    table: t.source_name.clone(),
                    message: format!(
                        "it was added to [objects] include, but its destination table {name} exists \
                         already (from an earlier sync of it, or another task), and a new baseline \
                         beside old rows would double them (conflicting_tables = \"ignore\" \
                         covers only the tables a task starts with). Drop or rename {} and {}, or \
                         name it differently ([objects.tables.\"{}\"] name)",
                        t.base_table(),
                        t.log_table(),
                        t.source_name
                    ),
                });
            }
        }
        Ok(())
    }

    /// Captures a new table's start (a keyless table: with its snapshot,
    /// committed here), checkpoints it and creates its destination tables.
    async fn add_table(
        &self,
        state: TaskState,
        t: &TrackedTable,
        synced: &SyncedTable,
        id: String,
    ) -> Result<TaskState> {
        let name = synced.source_name.clone();
        let keyless = synced.dest_key().is_empty();
        let mut conn = RawConn::connect(&self.source()).await.map_err(source_err)?;
        let (cp, rows) = if keyless {
            let (cp, batches) = snapshot::read_consistent(
                &mut conn,
                synced.schema.clone(),
                8192,
                self.cfg.sync.read_protocol,
            )
            .await
            .map_err(source_err)?;
            (cp, Some(batches))
        } else {
            let cp = snapshot::capture_position(&mut conn)
                .await
                .map_err(source_err)?;
            (cp, None)
        };
        let _ = conn.close().await;
        let start = position_of(&cp);
        let table =
            serde_json::to_value(t).map_err(Error::serialize(format!("the schema of {name}")))?;
        let state = self.step(
            state,
            Step::TableAdded {
                table: name.clone(),
                added: AddedTable {
                    start: start.clone(),
                    id: id.clone(),
                    table,
                    keyless,
                    live: false,
                    start_record_id: None,
                    baseline: TableProgress::default(),
                },
            },
        )?;
        self.ensure_tables(synced, &state.task_id).await?;
        // A plan left by an earlier sync of the same name is not this one's.
        let _ = std::fs::remove_file(self.added_plan_path(&name, &id));
        info!(
            table = %name,
            file = %start.file,
            position = start.position,
            keyless,
            "a table was added to [objects] include: its changes are synced from {}:{} on, its \
             baseline is being copied",
            start.file,
            start.position
        );
        let Some(batches) = rows else {
            return Ok(state);
        };
        let unit = state.unit_name(&base_unit(&name, &id, 0));
        let count = self
            .commit_snapshot(synced, &synced.base_table(), unit, batches)
            .await?;
        let mut step = baseline_done(&name, 0);
        if let Step::BaselineChunk { rows, .. } = &mut step {
            *rows = count;
        }
        info!(table = %name, rows = count, "the snapshot of a table without a key is committed");
        self.step(state, step)
    }

    /// Commits a table's snapshot (rows as read) to `base` as one unit;
    /// returns its row count.
    pub(super) async fn commit_snapshot(
        &self,
        t: &SyncedTable,
        base: &str,
        unit: String,
        batches: Vec<arrow_array::RecordBatch>,
    ) -> Result<u64> {
        let mut shaped = Vec::with_capacity(batches.len());
        let mut count = 0;
        for b in batches {
            count += b.num_rows() as u64;
            shaped.push(shape_base(t, self.transform.as_deref(), t.to_dest(b)?)?);
        }
        self.commit_chunk_to(
            t,
            base,
            unit,
            ReadyChunk {
                table: 0,
                chunk: 0,
                rows: count,
                batches: shaped,
            },
        )
        .await?;
        Ok(count)
    }

    /// Puts in force, at `here`, the added tables whose start the stream
    /// has reached (the caller has committed everything before `here`).
    pub(super) fn go_live(
        &self,
        mut state: TaskState,
        tracker: &mut Tracker,
        due: &[String],
        here: &SourcePosition,
    ) -> Result<TaskState> {
        for name in due {
            let Phase::Incremental(inc) = &state.phase else {
                return Ok(state);
            };
            let Some(a) = inc.added.get(name) else {
                continue;
            };
            let t: TrackedTable = serde_json::from_value(a.table.clone())
                .map_err(|e| Error::unreadable(format!("the checkpoint's schema of {name}"), e))?;
            if tracker.set().tables.contains_key(name) {
                return Err(Error::TableSet {
                    table: name.clone(),
                    message: format!(
                        "the task started to track it from the binlog (a CREATE or RENAME before \
                         {}:{}) while it was being added; remove it from [objects] include, run, \
                         drop its destination tables and add it again",
                        here.file, here.position
                    ),
                });
            }
            let mut next: SchemaSet = tracker.set().clone();
            next.tables.insert(name.clone(), t);
            let generation = tracker.save_next(&next)?;
            state = self.step(
                state,
                Step::TableLive {
                    table: name.clone(),
                    generation,
                    to: here.clone(),
                    xa: self.xa_held(),
                },
            )?;
            tracker.advance(generation, next);
            info!(table = %name, file = %here.file, position = here.position, "an added table is live: its changes go to its t_log from here on");
        }
        Ok(state)
    }

    /// Publishes, at `here`, the keyless baseline generations whose start
    /// the stream has reached, with the next `record_id` as their cutoff
    /// (the caller has committed everything before `here`).
    pub(super) fn publish_due(
        &self,
        mut state: TaskState,
        due: &[String],
        here: &SourcePosition,
        next_counter: u64,
    ) -> Result<TaskState> {
        for name in due {
            let log_from =
                crate::records::RecordIds::new(self.cfg.source.record_id_tag, next_counter)
                    .allocate();
            state = self.step(
                state,
                Step::ResnapshotPublished {
                    table: name.clone(),
                    log_from,
                    to: here.clone(),
                    xa: self.xa_held(),
                },
            )?;
            info!(table = %name, file = %here.file, position = here.position, "published a new baseline generation of a table without a key");
        }
        Ok(state)
    }

    /// The copy of the baselines of `state`'s added tables with a key that
    /// are not complete, or `None`; it reports each committed chunk on `tx`.
    pub(super) fn backfill<'a>(
        &'a self,
        state: &TaskState,
        tx: mpsc::UnboundedSender<ChunkLanded>,
    ) -> Result<Option<BackfillFuture<'a>>> {
        let Phase::Incremental(inc) = &state.phase else {
            return Ok(None);
        };
        let mut todo = Vec::new();
        for (name, a) in &inc.added {
            if a.keyless || a.baseline.done {
                continue;
            }
            let t: TrackedTable = serde_json::from_value(a.table.clone())
                .map_err(|e| Error::unreadable(format!("the checkpoint's schema of {name}"), e))?;
            let done: BTreeSet<u32> = a
                .baseline
                .resume_after
                .as_ref()
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            todo.push((t.synced(&self.meta), a.id.clone(), done));
        }
        if todo.is_empty() {
            return Ok(None);
        }
        let task = state.clone();
        Ok(Some(Box::pin(async move {
            let mut conn = RawConn::connect(&self.source()).await.map_err(source_err)?;
            let mut jobs = Vec::new();
            for (t, id, done) in &todo {
                let path = self.added_plan_path(&t.source_name, id);
                let plan = self.load_or_plan_at(&mut conn, t, path).await?;
                jobs.push(TableJob {
                    schema: t.schema.clone(),
                    plan: Arc::new(plan),
                    done: done.clone(),
                });
            }
            let _ = conn.close().await;
            let counts: Vec<usize> = jobs.iter().map(|j| j.plan.chunks.len()).collect();
            let mut sopts = self.snapshot_options();
            sopts.throttle = self.cfg.throttle.full_limits();
            let mut run = snapshot::start(sopts, jobs);
            let tables: Vec<&SyncedTable> = todo.iter().map(|(t, _, _)| t).collect();
            let mut pending = HashMap::new();
            let mut ready = VecDeque::new();
            while let Some(item) = run.items.recv().await {
                self.take_item(item, &tables, &mut pending, &mut ready)?;
                while let Some(c) = ready.pop_front() {
                    let (t, id, _) = &todo[c.table];
                    let unit = task.unit_name(&base_unit(&t.source_name, id, c.chunk));
                    let (i, chunk, rows) = self.commit_chunk(t, unit, c).await?;
                    let landed = ChunkLanded {
                        table: t.source_name.clone(),
                        chunk,
                        rows,
                        chunks: counts[i],
                    };
                    if tx.send(landed).is_err() {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })))
    }

    /// Checkpoints a committed baseline chunk.
    pub(super) fn baseline_landed(&self, state: TaskState, c: ChunkLanded) -> Result<TaskState> {
        let Phase::Incremental(Incremental { added, .. }) = &state.phase else {
            return Ok(state);
        };
        let Some(a) = added.get(&c.table).filter(|a| !a.baseline.done) else {
            return Ok(state);
        };
        let mut done: BTreeSet<u32> = a
            .baseline
            .resume_after
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        if !done.insert(c.chunk) {
            return Ok(state);
        }
        let last = done.len() >= c.chunks;
        let rows_so_far = a.baseline.rows + c.rows;
        let state = self.step(
            state,
            Step::BaselineChunk {
                table: c.table.clone(),
                rows: c.rows,
                resume_after: Some(serde_json::json!(done)),
                last,
            },
        )?;
        if last {
            info!(table = %c.table, rows = rows_so_far, "the baseline of an added table is complete");
        }
        Ok(state)
    }

    /// Lets the baselines finish (the stream has ended): drives `backfill`
    /// and checkpoints what lands, until done or `stop`.
    pub(super) async fn finish_backfill(
        &self,
        mut state: TaskState,
        backfill: Option<BackfillFuture<'_>>,
        rx: &mut mpsc::UnboundedReceiver<ChunkLanded>,
        stop: &AtomicBool,
    ) -> Result<TaskState> {
        if let Some(mut work) = backfill {
            loop {
                tokio::select! {
                    done = &mut work => {
                        done?;
                        break;
                    }
                    Some(c) = rx.recv() => state = self.baseline_landed(state, c)?,
                    () = stopped(stop) => break,
                }
            }
        }
        while let Ok(c) = rx.try_recv() {
            state = self.baseline_landed(state, c)?;
        }
        Ok(state)
    }

    /// The added tables of the checkpoint whose merge is partial, with why:
    /// their baseline is being copied or their changes are not streamed yet.
    ///
    /// # Errors
    /// Checkpoint errors.
    pub fn partial_tables(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let Some(TaskState {
            phase: Phase::Incremental(inc),
            ..
        }) = self.store.load()?
        else {
            return Ok(Default::default());
        };
        Ok(inc
            .added
            .iter()
            .filter(|(_, a)| !a.complete())
            .map(|(n, a)| (n.clone(), describe_added(a)))
            .collect())
    }

    fn added_plan_path(&self, name: &str, id: &str) -> std::path::PathBuf {
        self.cfg.sync.state_dir.join("plans").join(format!(
            "added-{}-{}.json",
            crate::private_fs::file_component(name),
            crate::private_fs::file_component(id)
        ))
    }
}

/// What an added table's state means, for `status`, `merge` and `verify`.
pub fn describe_added(a: &AddedTable) -> String {
    let baseline = if a.baseline.done {
        format!("baseline complete ({} rows)", a.baseline.rows)
    } else {
        format!(
            "being backfilled: {} baseline chunks ({} rows) committed so far",
            a.baseline.chunks_done, a.baseline.rows
        )
    };
    let changes = if a.live {
        format!(
            "changes synced from {}:{} on",
            a.start.file, a.start.position
        )
    } else {
        format!(
            "changes synced once the stream reaches {}:{}",
            a.start.file, a.start.position
        )
    };
    format!("added to the task: {baseline}; {changes}")
}

/// The commit unit of chunk `chunk` of an added table's baseline.
fn base_unit(name: &str, id: &str, chunk: u32) -> String {
    format!("added-{name}-{id}-{chunk:06}")
}

/// The step of a single-chunk baseline's only chunk.
fn baseline_done(name: &str, rows: u64) -> Step {
    Step::BaselineChunk {
        table: name.to_owned(),
        rows,
        resume_after: Some(serde_json::json!([0])),
        last: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &str, position: u64, gtid: Option<&str>) -> SourcePosition {
        SourcePosition {
            file: file.into(),
            position,
            gtid: gtid.map(str::to_owned),
            within: None,
        }
    }

    #[test]
    fn reached_orders_files_offsets_and_mariadb_gtids() {
        let s = at("bin.000009", 500, None);
        assert!(!reached(&at("bin.000009", 499, None), &s, false));
        assert!(reached(&at("bin.000009", 500, None), &s, false));
        assert!(reached(&at("bin.000010", 4, None), &s, false));
        assert!(!reached(&at("bin.000008", 900, None), &s, true));
        let s = at("a.000001", 1, Some("0-1-40,1-1-7"));
        assert!(!reached(&at("b.000001", 9, Some("0-2-41,1-1-6")), &s, true));
        assert!(reached(&at("b.000001", 9, Some("0-2-41,1-1-7")), &s, true));
        // Resumed by position, the offsets count, whatever the GTIDs say.
        assert!(!reached(
            &at("a.000001", 0, Some("0-2-41,1-1-7")),
            &s,
            false
        ));
    }
}
