//! `resnapshot`: a new baseline generation of a synced table, on demand
//! (live-operations.md §2.4 A), to repair a destination that lost changes
//! (a delete made with `sql_log_bin = 0`, rows removed from `t_log`).
//!
//! Run while the task is stopped (it takes the task's lock), it takes as
//! its start the checkpoint's position `P` and as cutoff `R` the `record_id`
//! the next change after `P` gets. Every change after `P` reaches `t_log`
//! with an id of at least `R` (the next `run` streams from `P`), and every
//! chunk is read after `P`, so generation `g` in `t_base_g<g>` plus the log
//! records from `R` on is the table, exactly as for the first baseline. The
//! chunks are committed one unit each and checkpointed; the last publishes
//! `(g, R)` in the same checkpoint write, and from then on `merge`,
//! `merge-sql` and `verify` read only that base table and those records.
//!
//! A table without a key cannot take a baseline read after `P` (identical
//! rows would double), so its generation is the whole table read in one
//! consistent snapshot at its own position `S`, committed as one unit; the
//! next `run` publishes it when its stream reaches `S`, with the id of the
//! next change there as cutoff.

use super::TaskRunner;
use crate::error::{Error, Result};
use crate::machine::{BaseGeneration, Phase, Resnapshot, SourcePosition, Step, TableProgress};
use crate::records::RecordIds;
use crate::sink::{Sink, TableDef};
use mysql_source::RawConn;
use mysql_source::snapshot::{self, TableJob};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::info;

/// What [`TaskRunner::resnapshot`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResnapshotOutcome {
    /// The generation is published: merges read it from now on.
    Published(BaseGeneration),
    /// A table without a key: the generation is copied as of `start`; the
    /// next `run` publishes it when its stream reaches `start`.
    Copied {
        /// The generation (its cutoff is set when published).
        generation: BaseGeneration,
        /// The position of its snapshot.
        start: SourcePosition,
    },
    /// A stop cut the copy short; running it again resumes it.
    Stopped,
}

impl<S: Sink> TaskRunner<S> {
    /// Copies a new baseline generation of `source_name` (`db.table`) and
    /// publishes it (a table without a key: has the next `run` publish
    /// it); resumes a copy a stop or crash interrupted.
    ///
    /// # Errors
    /// [`Error::Locked`] while a run holds the task; [`Error::Config`] when
    /// the task is not in its incremental phase or does not select the
    /// table; [`Error::TableSet`] for a table still being added; source,
    /// sink and checkpoint errors.
    pub async fn resnapshot(
        &self,
        source_name: &str,
        stop: &AtomicBool,
    ) -> Result<ResnapshotOutcome> {
        let _lock = self.lock("resnapshot")?;
        let mut state = self
            .store
            .load()?
            .ok_or_else(|| Error::Config("the task has no checkpoint: `run` it first".into()))?;
        let Phase::Incremental(inc) = &state.phase else {
            return Err(Error::Config(format!(
                "a new baseline needs a task in the incremental phase; this one is in {}",
                state.phase.name()
            )));
        };
        let tables = self.tables().await?;
        let t = tables
            .iter()
            .find(|t| t.source_name == source_name)
            .ok_or_else(|| {
                Error::Config(format!(
                    "table {source_name} is not selected by the task file"
                ))
            })?;
        let refuse = |message: &str| Error::TableSet {
            table: source_name.to_owned(),
            message: message.to_owned(),
        };
        if inc.added.get(source_name).is_some_and(|a| !a.complete()) {
            return Err(refuse(
                "it is still being added to the task: `run` until `status` shows its baseline \
                 complete",
            ));
        }
        if t.dest_key().is_empty() {
            return self.resnapshot_keyless(state, t).await;
        }
        let r = match inc.resnapshots.get(source_name) {
            Some(r) => r.clone(),
            None => {
                let generation = inc.baselines.get(source_name).map_or(1, |b| b.generation) + 1;
                let r = Resnapshot {
                    target: BaseGeneration {
                        generation,
                        table: format!("{}_g{generation}", t.base_table()),
                        log_from: RecordIds::new(self.cfg.source.record_id_tag, inc.next_record_id)
                            .allocate(),
                    },
                    baseline: TableProgress::default(),
                    start: None,
                };
                state = self.step(
                    state,
                    Step::ResnapshotStarted {
                        table: source_name.to_owned(),
                        resnapshot: r.clone(),
                    },
                )?;
                let _ = std::fs::remove_file(self.resnapshot_plan_path(source_name, generation));
                r
            }
        };
        let target = r.target.clone();
        self.sink
            .ensure_table(&TableDef {
                name: target.table.clone(),
                schema: t.base_schema.clone(),
                partition_columns: vec![],
            })
            .await?;
        self.claim(&target.table, &state.task_id).await?;
        info!(table = %source_name, generation = target.generation, base = %target.table, "copying a new baseline generation");
        let mut conn = RawConn::connect(&self.source())
            .await
            .map_err(super::source_err)?;
        let plan = self
            .load_or_plan_at(
                &mut conn,
                t,
                self.resnapshot_plan_path(source_name, target.generation),
            )
            .await?;
        let _ = conn.close().await;
        let chunks = plan.chunks.len();
        let mut done: BTreeSet<u32> = r
            .baseline
            .resume_after
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let mut sopts = self.snapshot_options();
        sopts.throttle = self.cfg.throttle.full_limits();
        let mut run = snapshot::start(
            sopts,
            vec![TableJob {
                schema: t.schema.clone(),
                plan: Arc::new(plan),
                done: done.clone(),
            }],
        );
        let tables = [t];
        let mut pending = HashMap::new();
        let mut ready = VecDeque::new();
        while done.len() < chunks {
            if stop.load(Ordering::Relaxed) {
                return Ok(ResnapshotOutcome::Stopped);
            }
            let Some(item) = run.items.recv().await else {
                break;
            };
            self.take_item(item, &tables, &mut pending, &mut ready)?;
            while let Some(c) = ready.pop_front() {
                let unit = state.unit_name(&format!(
                    "base-{source_name}-g{}-{:06}",
                    target.generation, c.chunk
                ));
                let (_, chunk, rows) = self.commit_chunk_to(t, &target.table, unit, c).await?;
                done.insert(chunk);
                state = self.step(
                    state,
                    Step::ResnapshotChunk {
                        table: source_name.to_owned(),
                        rows,
                        resume_after: Some(serde_json::json!(done)),
                        last: done.len() == chunks,
                    },
                )?;
            }
        }
        if done.len() < chunks {
            return Err(Error::Internal(format!(
                "the new baseline of {source_name} ended with chunks missing"
            )));
        }
        info!(table = %source_name, generation = target.generation, "published a new baseline generation");
        Ok(ResnapshotOutcome::Published(target))
    }

    /// A table without a key: its snapshot at its own position, one unit.
    async fn resnapshot_keyless(
        &self,
        mut state: crate::machine::TaskState,
        t: &crate::naming::SyncedTable,
    ) -> Result<ResnapshotOutcome> {
        let name = t.source_name.clone();
        let Phase::Incremental(inc) = &state.phase else {
            return Ok(ResnapshotOutcome::Stopped);
        };
        let existing = inc.resnapshots.get(&name).cloned();
        let generation = existing.as_ref().map_or_else(
            || inc.baselines.get(&name).map_or(1, |b| b.generation) + 1,
            |r| r.target.generation,
        );
        let unit = state.unit_name(&format!("base-{name}-g{generation}-{:06}", 0));
        let copied = |r: &Resnapshot| ResnapshotOutcome::Copied {
            generation: r.target.clone(),
            start: r.start.clone().unwrap_or_else(|| SourcePosition {
                file: String::new(),
                position: 0,
                gtid: None,
                within: None,
            }),
        };
        let last = |rows| Step::ResnapshotChunk {
            table: name.clone(),
            rows,
            resume_after: Some(serde_json::json!([0])),
            last: true,
        };
        if let Some(r) = &existing {
            if r.baseline.done {
                return Ok(copied(r));
            }
            if r.start.is_some() && self.sink.is_committed(&unit).await? {
                self.step(state, last(0))?;
                return Ok(copied(r));
            }
        }
        let mut conn = RawConn::connect(&self.source())
            .await
            .map_err(super::source_err)?;
        let (cp, batches) = snapshot::read_consistent(
            &mut conn,
            t.schema.clone(),
            8192,
            self.cfg.sync.read_protocol,
        )
        .await
        .map_err(super::source_err)?;
        let _ = conn.close().await;
        let r = Resnapshot {
            target: BaseGeneration {
                generation,
                table: format!("{}_g{generation}", t.base_table()),
                log_from: 0,
            },
            baseline: TableProgress::default(),
            start: Some(super::position_of(&cp)),
        };
        state = self.step(
            state,
            Step::ResnapshotStarted {
                table: name.clone(),
                resnapshot: r.clone(),
            },
        )?;
        self.sink
            .ensure_table(&TableDef {
                name: r.target.table.clone(),
                schema: t.base_schema.clone(),
                partition_columns: vec![],
            })
            .await?;
        self.claim(&r.target.table, &state.task_id).await?;
        let rows = self
            .commit_snapshot(t, &r.target.table, unit, batches)
            .await?;
        self.step(state, last(rows))?;
        info!(table = %name, generation, rows, "copied a new baseline generation of a table without a key; the next run publishes it");
        Ok(copied(&r))
    }

    /// The published baseline generation of `source_name`, if a
    /// `resnapshot` made one (else its baseline is `t_base` and all of `t_log`).
    ///
    /// # Errors
    /// Checkpoint errors.
    pub fn base_generation(&self, source_name: &str) -> Result<Option<BaseGeneration>> {
        Ok(match self.store.load()? {
            Some(crate::machine::TaskState {
                phase: Phase::Incremental(inc),
                ..
            }) => inc.baselines.get(source_name).cloned(),
            _ => None,
        })
    }

    fn resnapshot_plan_path(&self, name: &str, generation: u64) -> std::path::PathBuf {
        self.cfg.sync.state_dir.join("plans").join(format!(
            "resnapshot-{}-g{generation}.json",
            crate::private_fs::file_component(name)
        ))
    }
}
