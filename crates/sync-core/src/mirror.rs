//! The mirror: per table with a key, a primary-key Delta table named like
//! the table's destination stem (`shop.orders` → `orders`), equal to the
//! source, kept through Tunnel upsert sessions (`[destination] mirror`,
//! MaxCompute only).
//!
//! # Exactly once, by derivation
//!
//! The mirror is never fed anything but what already landed: its state is
//! [`crate::merge::merge`] of `t_base` and `t_log`, per key the record with
//! the highest `(record_id, after image)`, the key absent when that record
//! is a before image. So the mirror needs no ledger of its own beyond how far
//! it got:
//!
//! * **Base fill.** Once a table's baseline is complete (the incremental
//!   phase runs), `t_base` and every `t_log` record are read back, merged,
//!   and written in one session: the merged rows as UPSERTs, every key the
//!   log touched that did not survive as a DELETE. Then the table is marked
//!   `base_filled`.
//! * **Incremental feed.** Every `t_log` batch, once committed, is handed
//!   over ([`Mirror::hand`]). Per table the batches wait until
//!   `mirror_commit_seconds` passed since the last flush (and at every clean
//!   stop); a flush merges them the same way, writes one session per table
//!   (DELETEs, then UPSERTs, one row per key) and commits it.
//! * **State.** `<state_dir>/mirror.json` ([`crate::checkpoint`]: versioned,
//!   checksummed, replaced atomically) holds per table `base_filled` and
//!   `applied_record_id` (the highest record counter whose effect a commit
//!   holds), and `applied_through`, the task's record counter every earlier
//!   record of which is in the mirror. It is written only after a commit.
//! * **Recovery.** At the start of the incremental phase, a table whose base
//!   is not filled is filled; when the task's committed record counter is
//!   beyond `applied_through`, each table's `t_log` records above its
//!   `applied_record_id` are applied. A commit that landed just before a
//!   crash is thus applied again: upserting and deleting the same final
//!   states leaves the same table.
//!
//! A failed mirror write fails the step like any other MaxCompute write
//! (retried per `[retry]`); the main checkpoint never moves back for it.

use crate::checkpoint::CheckpointStore;
use crate::error::{Error, Result};
use crate::merge::{MergeSpec, merge};
use crate::naming::SyncedTable;
use crate::records::{MetaColumns, RecordIds};
use crate::sink::maxcompute::MaxComputeSink;
use crate::sink::{Sink, conform_read};
use arrow_array::{Array, Int64Array, RecordBatch, UInt32Array};
use arrow_row::{RowConverter, SortField};
use arrow_schema::SchemaRef;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::info;

/// Rows of one table waiting in memory beyond which they are reduced to
/// one per key (between flushes, a busy table would otherwise hold every
/// change of `mirror_commit_seconds`).
const COMPACT_ROWS: usize = 100_000;

/// The name of the mirror's state file in `state_dir` (plus `.json`).
pub const STATE_NAME: &str = "mirror";

/// What the mirror holds, per mirror table (see the module docs).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct MirrorState {
    /// Per mirror table name.
    pub tables: BTreeMap<String, TableState>,
    /// Every record whose counter is below this is in the mirror.
    pub applied_through: u64,
    /// Unix seconds of the last mirror commit.
    #[serde(default)]
    pub last_commit_unix: Option<i64>,
}

/// One mirror table's progress.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct TableState {
    /// `t_base` is in the mirror.
    pub base_filled: bool,
    /// The highest record counter whose effect a mirror commit holds.
    pub applied_record_id: u64,
}

/// Reads the mirror's state file of a task (for `status`); `None` before
/// the first mirror commit.
///
/// # Errors
/// As [`CheckpointStore::load`].
pub fn load_state(state_dir: &Path) -> Result<Option<MirrorState>> {
    CheckpointStore::new(state_dir, STATE_NAME).load()
}

/// A table the mirror keeps.
#[derive(Clone, Debug)]
struct Target {
    table: SyncedTable,
    key: Vec<String>,
}

/// `t_log` rows handed over and not yet flushed, per mirror table.
#[derive(Default)]
struct Pending {
    log: BTreeMap<String, Vec<RecordBatch>>,
    rows: u64,
    /// The task's record counter after the newest batch handed over.
    through: u64,
    /// `through` as of the last flush.
    flushed: u64,
}

/// The mirror of one task (see the module docs).
pub struct Mirror {
    sink: MaxComputeSink,
    meta: MetaColumns,
    every: Duration,
    store: CheckpointStore<MirrorState>,
    targets: Mutex<BTreeMap<String, Target>>,
    pending: Mutex<Pending>,
    last_flush: Mutex<Option<Instant>>,
    /// Unix seconds of the last mirror commit (for `status` and metrics).
    last_commit: Mutex<Option<i64>>,
}

impl Mirror {
    /// The mirror writing through `sink`, flushing at most every `every`,
    /// its state in `state_dir`.
    pub fn new(sink: MaxComputeSink, meta: MetaColumns, every: Duration, state_dir: &Path) -> Self {
        Self {
            sink,
            meta,
            every,
            store: CheckpointStore::new(state_dir, STATE_NAME),
            targets: Mutex::default(),
            pending: Mutex::default(),
            last_flush: Mutex::default(),
            last_commit: Mutex::default(),
        }
    }

    /// The mirror table of `t` (its destination stem), or `None` for a
    /// table without a key, which gets no mirror.
    pub fn name_of(t: &SyncedTable) -> Option<String> {
        (!t.dest_key().is_empty()).then(|| t.dest.clone())
    }

    /// Creates `t`'s mirror table if it has a key, and keeps it from now on.
    ///
    /// # Errors
    /// As [`MaxComputeSink::ensure_mirror_table`].
    pub async fn ensure_table(&self, t: &SyncedTable) -> Result<()> {
        let Some(name) = Self::name_of(t) else {
            return Ok(());
        };
        let key: Vec<String> = t.dest_key().iter().map(|k| (*k).to_owned()).collect();
        let keys: Vec<&str> = key.iter().map(String::as_str).collect();
        self.sink
            .ensure_mirror_table(&name, &t.base_schema, &keys)
            .await?;
        self.register(t);
        Ok(())
    }

    /// Keeps `t` (a table whose mirror exists) from now on.
    pub fn register(&self, t: &SyncedTable) {
        let Some(name) = Self::name_of(t) else {
            return;
        };
        let key = t.dest_key().iter().map(|k| (*k).to_owned()).collect();
        lock(&self.targets).insert(
            name,
            Target {
                table: t.clone(),
                key,
            },
        );
    }

    /// Updates a kept table's schema after a DDL; a table not kept stays so.
    pub fn refresh(&self, t: &SyncedTable) {
        let known = Self::name_of(t).is_some_and(|n| lock(&self.targets).contains_key(&n));
        if known {
            self.register(t);
        }
    }

    /// Adds `columns` to the mirror of the table whose `t_base` is
    /// `base_table`, if it has one (as the task adds them to `t_base`).
    ///
    /// # Errors
    /// As [`Sink::add_columns`].
    pub async fn add_columns(
        &self,
        base_table: &str,
        columns: &[arrow_schema::Field],
    ) -> Result<()> {
        let name = lock(&self.targets)
            .iter()
            .find(|(_, t)| t.table.base_table() == base_table)
            .map(|(n, _)| n.clone());
        match name {
            Some(name) => self.sink.add_columns(&name, columns).await,
            None => Ok(()),
        }
    }

    /// Takes the `t_log` batches of a committed unit (destination table
    /// name and rows); `through` is the task's record counter after it.
    ///
    /// # Errors
    /// From reducing a busy table's waiting rows to one per key (a batch
    /// without the metadata columns); nothing is lost then: the rows stay
    /// in `t_log`, and the next start applies them.
    pub fn hand(&self, batches: Vec<(String, RecordBatch)>, through: u64) -> Result<()> {
        let targets = lock(&self.targets);
        let mut pending = lock(&self.pending);
        for (log_table, batch) in batches {
            let Some((name, target)) = targets
                .iter()
                .find(|(_, t)| t.table.log_table() == log_table)
            else {
                continue;
            };
            pending.rows += batch.num_rows() as u64;
            let waiting = pending.log.entry(name.clone()).or_default();
            waiting.push(batch);
            if waiting.iter().map(RecordBatch::num_rows).sum::<usize>() > COMPACT_ROWS {
                let reduced = self.reduce(target, waiting)?;
                *waiting = vec![reduced];
            }
        }
        pending.through = pending.through.max(through);
        Ok(())
    }

    /// `log` as one record per key with the same merged effect: the
    /// winning row as an after image, or a deleted key as a before image,
    /// each under the highest `record_id` of `log` (later records have
    /// higher ones, so they still win over it).
    fn reduce(&self, target: &Target, log: &[RecordBatch]) -> Result<RecordBatch> {
        let schema = &target.table.base_schema;
        let key: Vec<&str> = target.key.iter().map(String::as_str).collect();
        let merged = merge(
            schema,
            &[],
            log,
            MergeSpec {
                meta: &self.meta,
                key: &key,
                as_of: None,
                added: &[],
            },
        )?;
        let gone = gone_keys(schema, &key, &merged, log)?;
        let mut highest = None;
        for b in log {
            if let Some(ids) = b
                .column_by_name(&self.meta.record_id)
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            {
                highest = ids.iter().flatten().chain(highest).max();
            }
        }
        let id = highest.unwrap_or(0);
        let log_schema = &target.table.log_schema;
        let as_log = |rows: &RecordBatch, after: bool| -> Result<RecordBatch> {
            let n = rows.num_rows();
            let flag = |on: bool| {
                std::sync::Arc::new(arrow_array::StringArray::from(vec![
                    if on {
                        "Y"
                    } else {
                        "N"
                    };
                    n
                ])) as arrow_array::ArrayRef
            };
            let columns = log_schema
                .fields()
                .iter()
                .map(|f| {
                    let name = f.name();
                    Ok(if *name == self.meta.record_id {
                        std::sync::Arc::new(Int64Array::from(vec![id; n])) as arrow_array::ArrayRef
                    } else if *name == self.meta.operation_flag {
                        std::sync::Arc::new(arrow_array::StringArray::from(vec![
                            if after {
                                "I"
                            } else {
                                "D"
                            };
                            n
                        ])) as arrow_array::ArrayRef
                    } else if *name == self.meta.utc_timestamp {
                        std::sync::Arc::new(Int64Array::from(vec![0; n])) as arrow_array::ArrayRef
                    } else if *name == self.meta.before_flag {
                        flag(!after)
                    } else if *name == self.meta.after_flag {
                        flag(after)
                    } else {
                        rows.column_by_name(name).cloned().ok_or_else(|| {
                            Error::Internal(format!("mirror: column `{name}` missing"))
                        })?
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new_with_options(
                crate::sink::nullable(log_schema),
                columns,
                &arrow_array::RecordBatchOptions::new().with_row_count(Some(n)),
            )?)
        };
        let parts = [as_log(&merged, true)?, as_log(&gone, false)?];
        Ok(arrow_select::concat::concat_batches(
            &crate::sink::nullable(log_schema),
            &parts,
        )?)
    }

    /// `t_log` rows committed and not yet in the mirror, and the Unix time
    /// of the last mirror commit (`None` before the first).
    pub fn lag(&self) -> (u64, Option<i64>) {
        (lock(&self.pending).rows, *lock(&self.last_commit))
    }

    /// When the next flush is due (`None`: nothing waits), so that a quiet
    /// source still sees its last changes reach the mirror.
    pub fn next_due(&self) -> Option<Instant> {
        let pending = lock(&self.pending);
        if pending.log.is_empty() && pending.through <= pending.flushed {
            return None;
        }
        Some(match *lock(&self.last_flush) {
            Some(t) => t + self.every,
            None => Instant::now(),
        })
    }

    /// Whether a flush is due: records wait and `mirror_commit_seconds`
    /// passed since the last flush.
    pub fn due(&self) -> bool {
        let pending = lock(&self.pending);
        if pending.log.is_empty() && pending.through <= pending.flushed {
            return false;
        }
        lock(&self.last_flush).is_none_or(|t| t.elapsed() >= self.every)
    }

    fn load(&self) -> Result<MirrorState> {
        let state = self.store.load()?.unwrap_or_default();
        let mut last = lock(&self.last_commit);
        *last = last.max(state.last_commit_unix);
        Ok(state)
    }

    fn committed_now(&self, state: &mut MirrorState) {
        let now = crate::metrics::unix_now() as i64;
        state.last_commit_unix = Some(now);
        *lock(&self.last_commit) = Some(now);
    }

    /// Writes every waiting record into the mirror: one session per table,
    /// then the state file.
    ///
    /// # Errors
    /// Mirror writes and the state file; the records stay waiting then
    /// (the next [`Self::recover`] reads them back from `t_log` anyway).
    pub async fn flush(&self) -> Result<()> {
        let (log, through, taken) = {
            let mut pending = lock(&self.pending);
            if pending.log.is_empty() && pending.through <= pending.flushed {
                return Ok(());
            }
            (
                std::mem::take(&mut pending.log),
                pending.through,
                pending.rows,
            )
        };
        let targets = lock(&self.targets).clone();
        let mut state = self.load()?;
        for (name, batches) in &log {
            let Some(target) = targets.get(name) else {
                continue;
            };
            let highest = self.apply(name, target, &[], batches).await?;
            let entry = state.tables.entry(name.clone()).or_default();
            entry.applied_record_id = entry.applied_record_id.max(highest);
            self.committed_now(&mut state);
            self.store.save(&state)?;
        }
        // Every record below `through` is in the mirror now.
        if through > state.applied_through {
            state.applied_through = through;
            for t in state.tables.values_mut() {
                if t.base_filled {
                    t.applied_record_id = t.applied_record_id.max(through.saturating_sub(1));
                }
            }
            self.store.save(&state)?;
        }
        {
            let mut pending = lock(&self.pending);
            pending.rows = pending.rows.saturating_sub(taken);
            pending.flushed = pending.flushed.max(through);
        }
        *lock(&self.last_flush) = Some(Instant::now());
        Ok(())
    }

    /// Flushes when due ([`Self::due`]).
    ///
    /// # Errors
    /// As [`Self::flush`].
    pub async fn flush_if_due(&self) -> Result<()> {
        if self.due() {
            self.flush().await
        } else {
            Ok(())
        }
    }

    /// Brings every kept table up to what landed (module docs, "Recovery"):
    /// fills bases not filled yet, applies `t_log` records the mirror has
    /// not committed. `committed` is the task's checkpointed record counter;
    /// `waiting` names source tables whose baseline is not complete yet.
    ///
    /// # Errors
    /// Reads of `t_base`/`t_log`, mirror writes, the state file.
    pub async fn recover(&self, sink: &dyn Sink, committed: u64, waiting: &[String]) -> Result<()> {
        // What waited in memory is in `t_log` too: read back below.
        *lock(&self.pending) = Pending::default();
        let targets = lock(&self.targets).clone();
        let mut state = self.load()?;
        let behind = committed > state.applied_through;
        for (name, target) in &targets {
            if waiting.contains(&target.table.source_name) {
                continue;
            }
            let done = state.tables.get(name).cloned().unwrap_or_default();
            if done.base_filled && !behind {
                continue;
            }
            let t = &target.table;
            let log = sink.read_table(&t.log_table(), &t.log_schema).await?;
            // A base not filled yet takes every log record.
            let from = if done.base_filled {
                done.applied_record_id
            } else {
                0
            };
            let log = above(log, &self.meta, from)?;
            let base = if done.base_filled {
                Vec::new()
            } else {
                sink.read_table(&t.base_table(), &t.base_schema).await?
            };
            if base.is_empty() && log.iter().all(|b| b.num_rows() == 0) && done.base_filled {
                continue;
            }
            info!(
                table = %name,
                base_fill = !done.base_filled,
                "bringing the mirror table up to what landed"
            );
            let highest = self.apply(name, target, &base, &log).await?;
            let entry = state.tables.entry(name.clone()).or_default();
            entry.base_filled = true;
            entry.applied_record_id = entry
                .applied_record_id
                .max(highest)
                .max(committed.saturating_sub(1));
            self.committed_now(&mut state);
            self.store.save(&state)?;
        }
        if committed > state.applied_through {
            state.applied_through = committed;
            self.store.save(&state)?;
        }
        *lock(&self.last_flush) = Some(Instant::now());
        Ok(())
    }

    /// Writes merge(`base`, `log`) of one table into its mirror; returns the
    /// highest record counter in `log` (0 when none).
    async fn apply(
        &self,
        name: &str,
        target: &Target,
        base: &[RecordBatch],
        log: &[RecordBatch],
    ) -> Result<u64> {
        let schema = &target.table.base_schema;
        let key: Vec<&str> = target.key.iter().map(String::as_str).collect();
        let merged = merge(
            schema,
            base,
            log,
            MergeSpec {
                meta: &self.meta,
                key: &key,
                as_of: None,
                added: &[],
            },
        )?;
        let deletes = gone_keys(schema, &key, &merged, log)?;
        let mut highest = 0;
        for b in log {
            if let Some(ids) = b
                .column_by_name(&self.meta.record_id)
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            {
                for id in ids.iter().flatten() {
                    highest = highest.max(RecordIds::counter_of(id));
                }
            }
        }
        let upserts = if merged.num_rows() > 0 {
            vec![merged]
        } else {
            Vec::new()
        };
        let deletes = if deletes.num_rows() > 0 {
            vec![deletes]
        } else {
            Vec::new()
        };
        if upserts.is_empty() && deletes.is_empty() {
            return Ok(highest);
        }
        let rows = (
            upserts.iter().map(RecordBatch::num_rows).sum::<usize>(),
            deletes.iter().map(RecordBatch::num_rows).sum::<usize>(),
        );
        // Columns added by DDL since the table was made (a no-op otherwise):
        // the rows carry every column of the table's current schema.
        let fields: Vec<arrow_schema::Field> =
            schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        self.sink.add_columns(name, &fields).await?;
        self.sink.apply_mirror(name, &upserts, &deletes).await?;
        info!(
            table = name,
            upserts = rows.0,
            deletes = rows.1,
            "committed into the mirror table"
        );
        Ok(highest)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `t_log` rows whose record counter is above `applied`.
fn above(log: Vec<RecordBatch>, meta: &MetaColumns, applied: u64) -> Result<Vec<RecordBatch>> {
    log.into_iter()
        .map(|b| {
            let ids = b
                .column_by_name(&meta.record_id)
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                .ok_or_else(|| {
                    Error::Mapping(format!("a t_log batch without `{}`", meta.record_id))
                })?;
            let keep: arrow_array::BooleanArray = ids
                .iter()
                .map(|id| Some(id.is_some_and(|id| RecordIds::counter_of(id) > applied)))
                .collect();
            Ok(arrow_select::filter::filter_record_batch(&b, &keep)?)
        })
        .collect()
}

/// One row (as `schema`) per key the log touched that `merged` does not
/// hold: the keys to delete.
fn gone_keys(
    schema: &SchemaRef,
    key: &[&str],
    merged: &RecordBatch,
    log: &[RecordBatch],
) -> Result<RecordBatch> {
    let idx: Vec<usize> = key
        .iter()
        .map(|k| {
            schema
                .index_of(k)
                .map_err(|_| Error::Mapping(format!("key column `{k}` is not in the table")))
        })
        .collect::<Result<_>>()?;
    let converter = RowConverter::new(
        idx.iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect(),
    )?;
    let keys_of = |b: &RecordBatch| {
        converter.convert_columns(&idx.iter().map(|&i| b.column(i).clone()).collect::<Vec<_>>())
    };
    let kept = keys_of(merged)?;
    let mut seen: HashSet<Vec<u8>> = kept.iter().map(|r| r.as_ref().to_vec()).collect();
    let mut out = Vec::new();
    for b in log {
        let rows = conform_read(b, schema)?;
        let keys = keys_of(&rows)?;
        let take: Vec<u32> = (0..rows.num_rows())
            .filter(|&r| seen.insert(keys.row(r).as_ref().to_vec()))
            .map(|r| r as u32)
            .collect();
        if !take.is_empty() {
            out.push(arrow_select::take::take_record_batch(
                &rows,
                &UInt32Array::from(take),
            )?);
        }
    }
    let schema = crate::sink::nullable(schema);
    Ok(arrow_select::concat::concat_batches(&schema, &out)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::NamingRule;
    use arrow_array::{ArrayRef, Int32Array, StringArray};
    use mysql_source::schema::{ColumnSchema, ColumnType, TableSchema};
    use std::sync::Arc;

    fn col(name: &str, ordinal: u32) -> ColumnSchema {
        ColumnSchema {
            name: name.into(),
            ordinal,
            column_type: ColumnType::Int,
            column_type_text: "int(11)".into(),
            unsigned: false,
            nullable: ordinal != 1,
            charset: None,
            collation: None,
            default: None,
            auto_increment: false,
            generated: None,
            invisible: false,
            comment: String::new(),
        }
    }

    fn table() -> SyncedTable {
        let schema = TableSchema {
            database: "shop".into(),
            table: "orders".into(),
            columns: vec![col("id", 1), col("v", 2)],
            primary_key: vec!["id".into()],
            unique_keys: vec![],
            engine: "InnoDB".into(),
        };
        let objects = toml::from_str("include = [\"shop.*\"]").expect("objects");
        crate::naming::Naming::new(&objects)
            .table(&schema, &NamingRule::New.meta_columns())
            .expect("table")
    }

    /// One `t_log` row: (record_id, before image?, id, v).
    type Row = (i64, bool, i32, i32);

    fn log(t: &SyncedTable, rows: &[Row]) -> RecordBatch {
        let s = |f: &dyn Fn(&Row) -> &'static str| {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef
        };
        RecordBatch::try_new(
            t.log_schema.clone(),
            vec![
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                s(&|_| "U"),
                Arc::new(Int64Array::from(vec![0; rows.len()])),
                s(&|r| if r.1 { "Y" } else { "N" }),
                s(&|r| if r.1 { "N" } else { "Y" }),
                Arc::new(Int32Array::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
                Arc::new(Int32Array::from(
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                )),
            ],
        )
        .expect("log batch")
    }

    /// Reducing waiting rows to one per key keeps what they do to the
    /// mirror, alone and with later records on top.
    #[test]
    fn reduced_rows_keep_their_merged_effect() {
        let t = table();
        let meta = NamingRule::New.meta_columns();
        let mirror = Mirror::new(
            MaxComputeSink::new(
                odps_tunnel::Client::new(
                    "http://127.0.0.1:9/api",
                    "p",
                    odps_tunnel::auth::Credentials::new("a", "b"),
                )
                .expect("client"),
                "units",
            ),
            meta.clone(),
            Duration::ZERO,
            Path::new("unused"),
        );
        let target = Target {
            key: vec!["id".into()],
            table: t.clone(),
        };
        // 1 inserted then updated; 2 deleted; 3 moved to 4; 5 inserted and deleted.
        let early = vec![
            log(
                &t,
                &[(1, false, 1, 10), (2, true, 1, 10), (2, false, 1, 11)],
            ),
            log(&t, &[(3, true, 2, 20), (4, true, 3, 30), (4, false, 4, 30)]),
            log(&t, &[(5, false, 5, 50), (6, true, 5, 50)]),
        ];
        let later = log(&t, &[(7, false, 2, 21), (8, true, 4, 30)]);
        let reduced = mirror.reduce(&target, &early).expect("reduce");
        let spec = MergeSpec {
            meta: &meta,
            key: &["id"],
            as_of: None,
            added: &[],
        };
        let schema = &t.base_schema;
        for (a, b) in [
            (early.clone(), vec![reduced.clone()]),
            (
                early.iter().cloned().chain([later.clone()]).collect(),
                vec![reduced.clone(), later],
            ),
        ] {
            let full = merge(schema, &[], &a, spec).expect("merge");
            let short = merge(schema, &[], &b, spec).expect("merge");
            assert!(crate::merge::same_rows(&full, &short));
            let gone_full = gone_keys(schema, &["id"], &full, &a).expect("gone");
            let gone_short = gone_keys(schema, &["id"], &short, &b).expect("gone");
            let ids = |b: &RecordBatch| {
                let mut v: Vec<i32> = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int32Array>()
                    .expect("i32")
                    .iter()
                    .flatten()
                    .collect();
                v.sort_unstable();
                v
            };
            assert_eq!(ids(&gone_full), ids(&gone_short));
        }
        assert_eq!(reduced.num_rows(), 5, "one row per key touched");
    }
}
