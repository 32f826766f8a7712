//! Deterministic simulation of the incremental commit path.
//!
//! From a seed: a generated binlog (random INSERT/UPDATE/DELETE over a few
//! tables with varied column types, key changes, multi-row events, very large
//! transactions, rotations, DDLs, events of other tables; positions by file
//! and offset or by GTID), read by a driver loop
//! that does what `run.rs`'s `stream` does with the [`Batcher`]'s decisions
//! (checkpoint the intent with [`prepare`], write, checkpoint the landing,
//! recover a pending intent with [`pending`]) against a simulated sink that
//! fails, stalls and crashes before or after a commit lands, on a simulated
//! clock, with stops and reconnects (every run restarts from the durable
//! checkpoint, as the task does after an error).
//!
//! Not simulated (yet): XA branches, tables added or removed while running,
//! the mirror, a sink that tears a visible write, and a stream started by
//! GTID (the simulated stream restarts at the checkpoint's file and offset).
//!
//! Each seed checks: every change is in `_log` exactly once with the
//! content the binlog holds (no record id twice, none missing),
//! `merge(base, log)` equals the generated source state, and the saved
//! checkpoints never go backwards.
//!
//! `SIM_SEEDS=k` runs seeds `0..k`; `SIM_SEED=n` replays seed `n` alone. A
//! failing seed prints `SIM_SEED=n`.

use super::{Batcher, Commit, Decision, End, Limits, Read, pending, prepare};
use crate::machine::{Intent, Phase, SelectedPhases, SourcePosition, Step, TaskState};
use crate::merge::{MergeSpec, merge, same_rows};
use crate::records::{MetaColumns, NamingRule};
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// splitmix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

#[derive(Clone, Copy, Debug)]
enum Ty {
    Int,
    Text,
    Float,
    Bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Null,
    Int(i64),
    Text(String),
    Float(f64),
    Bool(bool),
}

/// A row: the key first, then the table's columns.
type Row = Vec<Val>;

struct Table {
    types: Vec<Ty>,
    base: BTreeMap<i64, Row>,
    now: BTreeMap<i64, Row>,
    next_key: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Insert,
    Update,
    Delete,
}

/// One row change as the binlog holds it.
#[derive(Clone, Debug)]
struct Change {
    table: usize,
    op: OpKind,
    before: Option<Row>,
    after: Option<Row>,
}

/// One binlog event.
struct Event {
    /// Where it starts: (file number, offset).
    start: (u32, u64),
    changes: Vec<Change>,
    /// The stream's checkpoint after it when it ends a transaction.
    ends: Option<SourcePosition>,
    /// A DDL of a synced table (its own transaction).
    ddl: bool,
}

/// One `_log` record.
#[derive(Clone, Debug, PartialEq)]
struct Record {
    table: usize,
    record_id: i64,
    op: OpKind,
    before: bool,
    row: Row,
}

fn file_name(n: u32) -> String {
    format!("sim-bin.{n:06}")
}

/// A position; `seq` transactions are in the GTID state there.
fn at(file: u32, position: u64, seq: u64) -> SourcePosition {
    SourcePosition {
        file: file_name(file),
        position,
        gtid: Some(format!("0-1-{seq}")),
        within: None,
    }
}

/// Checkpoint order: a part inside a transaction lies after its start and
/// before its end. By GTID only the GTID state counts (the boundaries that
/// end no transaction of their own share one).
fn order(p: &SourcePosition, by_gtid: bool) -> (String, u64, u64) {
    let within = p.within.map_or(0, |k| k + 1);
    if by_gtid {
        let seq = p
            .gtid
            .as_deref()
            .and_then(|g| g.rsplit('-').next()?.parse().ok());
        (String::new(), seq.unwrap_or(0), within)
    } else {
        (p.file.clone(), p.position, within)
    }
}

fn value(rng: &mut Rng, ty: Ty) -> Val {
    if rng.chance(100) {
        return Val::Null;
    }
    match ty {
        Ty::Int => Val::Int(rng.below(2001) as i64 - 1000),
        Ty::Text => {
            let len = rng.below(12) as usize;
            Val::Text(
                (0..len)
                    .map(|_| char::from(b'a' + rng.below(26) as u8))
                    .collect(),
            )
        }
        Ty::Float => Val::Float((rng.below(4001) as f64 - 2000.0) / 8.0),
        Ty::Bool => Val::Bool(rng.chance(500)),
    }
}

fn row(rng: &mut Rng, key: i64, types: &[Ty]) -> Row {
    std::iter::once(Val::Int(key))
        .chain(types.iter().map(|&t| value(rng, t)))
        .collect()
}

/// The generated source: its tables and its binlog.
struct Source {
    tables: Vec<Table>,
    events: Vec<Event>,
    /// Every change in binlog order: change `k` gets record id `k + 1`.
    changes: Vec<Change>,
    /// Where the binlog ends.
    end: SourcePosition,
    /// Index of the event starting at each position.
    starts: BTreeMap<(u32, u64), usize>,
}

impl Source {
    fn generate(rng: &mut Rng) -> Self {
        let mut tables: Vec<Table> = (0..rng.range(1, 3))
            .map(|_| {
                let types: Vec<Ty> = (0..rng.range(1, 4))
                    .map(|_| match rng.below(4) {
                        0 => Ty::Int,
                        1 => Ty::Text,
                        2 => Ty::Float,
                        _ => Ty::Bool,
                    })
                    .collect();
                let mut base = BTreeMap::new();
                let rows = rng.below(8) as i64;
                for key in 0..rows {
                    base.insert(key, row(rng, key, &types));
                }
                Table {
                    types,
                    now: base.clone(),
                    base,
                    next_key: rows,
                }
            })
            .collect();
        let (mut file, mut pos, mut seq) = (1u32, 4u64, 0u64);
        let mut events = Vec::new();
        let mut changes = Vec::new();
        // An event; one that ends a transaction adds it to the GTID state.
        let push = |events: &mut Vec<Event>,
                    (file, pos, seq): (&mut u32, &mut u64, &mut u64),
                    rng: &mut Rng,
                    ev_changes: Vec<Change>,
                    ends: bool| {
            let start = (*file, *pos);
            *pos += rng.range(20, 400);
            *seq += u64::from(ends);
            events.push(Event {
                start,
                changes: ev_changes,
                ends: ends.then(|| at(*file, *pos, *seq)),
                ddl: false,
            });
        };
        for _ in 0..rng.range(5, 60) {
            if rng.chance(80) {
                // ROTATE: the next event starts the next file.
                events.push(Event {
                    start: (file, pos),
                    changes: Vec::new(),
                    ends: Some(at(file + 1, 4, seq)),
                    ddl: false,
                });
                file += 1;
                pos = 4;
            }
            if rng.chance(60) {
                // A DDL of a synced table: the batch before it lands first.
                push(
                    &mut events,
                    (&mut file, &mut pos, &mut seq),
                    rng,
                    Vec::new(),
                    true,
                );
                if let Some(e) = events.last_mut() {
                    e.ddl = true;
                }
            }
            if rng.chance(150) {
                // A heartbeat or a transaction of a table not synced.
                push(
                    &mut events,
                    (&mut file, &mut pos, &mut seq),
                    rng,
                    Vec::new(),
                    true,
                );
            }
            // BEGIN
            push(
                &mut events,
                (&mut file, &mut pos, &mut seq),
                rng,
                Vec::new(),
                false,
            );
            let large = rng.chance(40);
            let n_events = if large {
                rng.range(10, 40)
            } else {
                rng.range(1, 4)
            };
            for _ in 0..n_events {
                let t = rng.below(tables.len() as u64) as usize;
                let table = &mut tables[t];
                let op = match rng.below(3) {
                    0 => OpKind::Insert,
                    _ if table.now.is_empty() => OpKind::Insert,
                    1 => OpKind::Update,
                    _ => OpKind::Delete,
                };
                let mut ev_changes = Vec::new();
                let n = if large {
                    rng.range(1, 30)
                } else {
                    rng.range(1, 5)
                };
                for _ in 0..n {
                    let pick = |rng: &mut Rng, table: &Table| -> Option<i64> {
                        let i = rng.below(table.now.len() as u64) as usize;
                        table.now.keys().nth(i).copied()
                    };
                    let change = match op {
                        OpKind::Insert => {
                            let key = table.next_key;
                            table.next_key += 1;
                            let after = row(rng, key, &table.types);
                            table.now.insert(key, after.clone());
                            Change {
                                table: t,
                                op,
                                before: None,
                                after: Some(after),
                            }
                        }
                        OpKind::Update => {
                            let Some(key) = pick(rng, table) else { break };
                            let before = table.now.remove(&key).unwrap_or_default();
                            // Now and then the key itself changes.
                            let new_key = if rng.chance(100) {
                                table.next_key += 1;
                                table.next_key - 1
                            } else {
                                key
                            };
                            let after = row(rng, new_key, &table.types);
                            table.now.insert(new_key, after.clone());
                            Change {
                                table: t,
                                op,
                                before: Some(before),
                                after: Some(after),
                            }
                        }
                        OpKind::Delete => {
                            let Some(key) = pick(rng, table) else { break };
                            let before = table.now.remove(&key).unwrap_or_default();
                            Change {
                                table: t,
                                op,
                                before: Some(before),
                                after: None,
                            }
                        }
                    };
                    ev_changes.push(change);
                }
                changes.extend(ev_changes.iter().cloned());
                push(
                    &mut events,
                    (&mut file, &mut pos, &mut seq),
                    rng,
                    ev_changes,
                    false,
                );
            }
            // COMMIT (XID)
            push(
                &mut events,
                (&mut file, &mut pos, &mut seq),
                rng,
                Vec::new(),
                true,
            );
        }
        let starts = events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.start, i))
            .collect();
        Self {
            tables,
            events,
            changes,
            end: at(file, pos, seq),
            starts,
        }
    }

    /// The first event a stream from `position` reads.
    fn index_of(&self, position: &SourcePosition) -> Result<usize, String> {
        if position.file == self.end.file && position.position == self.end.position {
            return Ok(self.events.len());
        }
        let file: u32 = position
            .file
            .strip_prefix("sim-bin.")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("not a simulated binlog file: {}", position.file))?;
        self.starts
            .get(&(file, position.position))
            .copied()
            .ok_or_else(|| format!("no event starts at {}:{}", position.file, position.position))
    }
}

/// Faults, per mille per opportunity.
#[derive(Clone, Copy)]
struct Faults {
    /// The source connection drops (the task restarts from its checkpoint).
    reconnect: u64,
    /// The sink refuses a write (transient error).
    sink_error: u64,
    /// The process dies inside a commit, after the data landed.
    crash_after_landing: u64,
    /// The sink takes long.
    stall: u64,
    /// The user stops the task.
    stop: u64,
}

const CALM: Faults = Faults {
    reconnect: 0,
    sink_error: 0,
    crash_after_landing: 0,
    stall: 0,
    stop: 0,
};

/// Why a run ended early: the task restarts from its checkpoint.
enum Abort {
    Restart,
    Bug(String),
}

impl From<super::Diverged> for Abort {
    fn from(e: super::Diverged) -> Self {
        Abort::Bug(e.to_string())
    }
}

/// What the seeds exercised (printed with `--nocapture`).
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    changes: usize,
    runs: u64,
    restarts: u64,
    stops: u64,
    /// Pending intents found landed after a restart.
    landed_before_restart: u64,
    /// Pending intents redone after a restart.
    replays: u64,
    commits: u64,
    /// Commits ending inside a transaction (large transactions).
    parts: u64,
    /// Commits the clock made.
    timeouts: u64,
    rotations: usize,
    /// DDLs followed.
    ddls: u64,
}

/// The simulated destination, checkpoint store and clock.
struct World {
    stats: Stats,
    rng: Rng,
    source: Source,
    limits: Limits,
    /// `_log`, in landing order.
    log: Vec<Record>,
    /// Units the sink has committed.
    units: HashSet<String>,
    /// The durable checkpoint, as the store writes it.
    checkpoint: String,
    now: Duration,
    faults: Faults,
}

impl World {
    fn load(&self) -> Result<TaskState, Abort> {
        serde_json::from_str(&self.checkpoint).map_err(|e| Abort::Bug(e.to_string()))
    }

    /// What `TaskRunner::step` does: apply, then save; here also checked
    /// to never go backwards.
    fn step(&mut self, state: TaskState, step: Step) -> Result<TaskState, Abort> {
        let next = state.apply(step).map_err(|e| Abort::Bug(e.to_string()))?;
        let (Phase::Incremental(old), Phase::Incremental(new)) = (&self.load()?.phase, &next.phase)
        else {
            return Err(Abort::Bug("left the incremental phase".into()));
        };
        if order(&new.position, self.limits.by_gtid) < order(&old.position, self.limits.by_gtid)
            || new.next_record_id < old.next_record_id
        {
            return Err(Abort::Bug(format!(
                "the checkpoint went backwards: {:?}/{} after {:?}/{}",
                new.position, new.next_record_id, old.position, old.next_record_id
            )));
        }
        self.checkpoint = serde_json::to_string(&next).map_err(|e| Abort::Bug(e.to_string()))?;
        Ok(next)
    }

    /// The sink's commit of a unit: all of it becomes visible, or none.
    fn sink_commit(&mut self, unit: &str, records: Vec<Record>) -> Result<(), Abort> {
        if self.rng.chance(self.faults.stall) {
            self.now += Duration::from_millis(self.rng.range(1_000, 30_000));
        }
        if self.rng.chance(self.faults.sink_error) {
            return Err(Abort::Restart);
        }
        if !self.units.insert(unit.to_string()) {
            return Err(Abort::Bug(format!("unit {unit} was committed twice")));
        }
        self.log.extend(records);
        if self.rng.chance(self.faults.crash_after_landing) {
            return Err(Abort::Restart);
        }
        Ok(())
    }

    /// The batch in flight lands (the driver's `settle` and `landed`).
    fn settle(
        &mut self,
        state: TaskState,
        in_flight: &mut Option<(String, Vec<Record>)>,
    ) -> Result<TaskState, Abort> {
        match in_flight.take() {
            Some((unit, records)) => {
                self.sink_commit(&unit, records)?;
                self.step(state, Step::BatchCommitted)
            }
            None => Ok(state),
        }
    }

    /// The driver's `hand_over`: the previous batch lands, this one's
    /// intent is checkpointed and its write starts.
    fn hand_over(
        &mut self,
        state: TaskState,
        in_flight: &mut Option<(String, Vec<Record>)>,
        batch: &mut Vec<Record>,
        commit: Commit,
    ) -> Result<TaskState, Abort> {
        let mut state = self.settle(state, in_flight)?;
        self.stats.commits += 1;
        if commit.to.within.is_some() {
            self.stats.parts += 1;
        }
        let (intent, step): (Intent, Option<Step>) =
            prepare(&state, commit, Vec::new(), self.limits.by_gtid)?;
        if let Some(step) = step {
            state = self.step(state, step)?;
        }
        *in_flight = Some((intent.unit, std::mem::take(batch)));
        Ok(state)
    }

    /// One run of the incremental phase from the durable checkpoint, as
    /// `run.rs`'s `stream` does it. `Ok(true)`: caught up.
    fn run(&mut self) -> Result<bool, Abort> {
        let mut state = self.load()?;
        let mut forced = None;
        if let Some(intent) = pending(&state).cloned() {
            if self.units.contains(&intent.unit) {
                self.stats.landed_before_restart += 1;
                state = self.step(state, Step::BatchCommitted)?;
            } else {
                self.stats.replays += 1;
                forced = Some(intent);
            }
        }
        let Phase::Incremental(inc) = &state.phase else {
            return Err(Abort::Bug("not incremental".into()));
        };
        let mut batcher = Batcher::new(
            self.limits.clone(),
            inc.position.clone(),
            0,
            inc.next_record_id,
            forced,
        );
        let mut next = self.source.index_of(&inc.position).map_err(Abort::Bug)?;
        let mut cp = SourcePosition {
            within: None,
            ..inc.position.clone()
        };
        let mut batch: Vec<Record> = Vec::new();
        let mut in_flight: Option<(String, Vec<Record>)> = None;
        let mut stop_requested = false;
        let mut stopped = false;
        loop {
            // The driver's `select!`: whichever is ready, in a random order.
            if self.rng.chance(self.faults.reconnect) {
                // The connection dropped: what is in flight may or may not
                // have landed before the task restarts.
                if let Some((unit, records)) = in_flight.take()
                    && self.rng.chance(500)
                {
                    self.sink_commit(&unit, records)?;
                }
                return Err(Abort::Restart);
            }
            if in_flight.is_some() && self.rng.chance(300) {
                state = self.settle(state, &mut in_flight)?;
                continue;
            }
            if let Some(due) = batcher.deadline()
                && (self.now >= due || self.rng.chance(50))
            {
                self.now = self.now.max(due);
                if let Some(Decision::Commit(commit)) = batcher.poll_timeout(self.now, &cp) {
                    self.stats.timeouts += 1;
                    state = self.hand_over(state, &mut in_flight, &mut batch, *commit)?;
                }
                continue;
            }
            if stop_requested {
                self.stats.stops += 1;
                stopped = true;
                break;
            }
            let Some(ev) = self.source.events.get(next) else {
                break;
            };
            next += 1;
            self.now += Duration::from_millis(self.rng.below(40));
            for c in &ev.changes {
                let metas = if c.op == OpKind::Update { 2 } else { 1 };
                let Some(record_id) = batcher.take_change(metas) else {
                    continue;
                };
                for (before, image) in [(true, &c.before), (false, &c.after)] {
                    if let Some(row) = image {
                        batch.push(Record {
                            table: c.table,
                            record_id,
                            op: c.op,
                            before,
                            row: row.clone(),
                        });
                    }
                }
            }
            if self.rng.chance(self.faults.stop) {
                stop_requested = true;
            }
            let Some(ends) = &ev.ends else {
                let read = Read::Inside { at: cp.clone() };
                if let Decision::Commit(commit) = batcher.on_event(read, self.now)? {
                    state = self.hand_over(state, &mut in_flight, &mut batch, *commit)?;
                }
                continue;
            };
            cp = ends.clone();
            if ev.ddl {
                // What `on_query` does with a DDL it follows.
                if !batcher.standalone(true) {
                    return Err(Abort::Bug(format!(
                        "a DDL at {:?} inside a batch being redone",
                        ev.start
                    )));
                }
                state = self.settle(state, &mut in_flight)?;
                if let Some(commit) = batcher.commit_before_statement() {
                    state = self.hand_over(state, &mut in_flight, &mut batch, commit)?;
                    state = self.settle(state, &mut in_flight)?;
                }
                let generation = match &state.phase {
                    Phase::Incremental(inc) => inc.schemas.map_or(1, |g| g + 1),
                    _ => 1,
                };
                let to = cp.clone();
                state = self.step(
                    state,
                    Step::SchemaChanged {
                        generation,
                        to,
                        xa: Vec::new(),
                    },
                )?;
                self.stats.ddls += 1;
                batcher.moved_to(cp.clone());
                continue;
            }
            if stop_requested {
                batcher.on_stop();
            }
            let read = Read::TxnEnd { at: cp.clone() };
            if let Decision::Commit(commit) = batcher.on_event(read, self.now)? {
                state = self.hand_over(state, &mut in_flight, &mut batch, *commit)?;
            }
        }
        state = self.settle(state, &mut in_flight)?;
        match batcher.on_end(cp, stopped) {
            End::DropOpenTransaction | End::KeepPending => return Ok(false),
            End::Commit(commit) => {
                state = self.hand_over(state, &mut in_flight, &mut batch, *commit)?;
                self.settle(state, &mut in_flight)?;
            }
            End::Done => {}
        }
        Ok(!stopped)
    }

    /// The invariants, once the whole binlog is read.
    fn check(&self) -> Result<(), String> {
        let state = self
            .load()
            .map_err(|_| "the checkpoint does not load".to_string())?;
        let Phase::Incremental(inc) = &state.phase else {
            return Err("not incremental".into());
        };
        if inc.pending.is_some() || inc.position != self.source.end {
            return Err(format!(
                "caught up, but the checkpoint is at {:?} (pending {:?}), not at the end {:?}",
                inc.position, inc.pending, self.source.end
            ));
        }
        let n = self.source.changes.len() as u64;
        if inc.next_record_id != n + 1 {
            return Err(format!(
                "next record id {} after {n} changes",
                inc.next_record_id
            ));
        }
        // Exactly once, with the binlog's content.
        let mut seen = HashSet::new();
        for r in &self.log {
            if !seen.insert((r.record_id, r.before)) {
                return Err(format!("record id {} is in _log twice", r.record_id));
            }
            let Some(c) = usize::try_from(r.record_id - 1)
                .ok()
                .and_then(|k| self.source.changes.get(k))
            else {
                return Err(format!("record id {} belongs to no change", r.record_id));
            };
            let image = if r.before { &c.before } else { &c.after };
            if r.table != c.table || r.op != c.op || image.as_ref() != Some(&r.row) {
                return Err(format!(
                    "record id {} holds {r:?}, the binlog has {c:?}",
                    r.record_id
                ));
            }
        }
        let expected: usize = self
            .source
            .changes
            .iter()
            .map(|c| usize::from(c.before.is_some()) + usize::from(c.after.is_some()))
            .sum();
        if self.log.len() != expected {
            let ids: HashSet<i64> = self.log.iter().map(|r| r.record_id).collect();
            let missing = (1..=n as i64).find(|id| !ids.contains(id));
            return Err(format!(
                "_log holds {} records, the binlog {expected} (first missing record id: {missing:?})",
                self.log.len()
            ));
        }
        // merge(base, log) == source.
        let meta = NamingRule::New.meta_columns();
        for (t, table) in self.source.tables.iter().enumerate() {
            let schema = schema(&table.types);
            let base = batch(&schema, &table.types, table.base.values(), None)
                .map_err(|e| e.to_string())?;
            let records: Vec<&Record> = self.log.iter().filter(|r| r.table == t).collect();
            let log = log_batch(&meta, &table.types, &records).map_err(|e| e.to_string())?;
            let spec = MergeSpec {
                meta: &meta,
                key: &["id"],
                as_of: None,
                added: &[],
            };
            let merged = merge(&schema, &[base], &[log], spec).map_err(|e| e.to_string())?;
            let want = batch(&schema, &table.types, table.now.values(), None)
                .map_err(|e| e.to_string())?;
            if !same_rows(&merged, &want) {
                return Err(format!(
                    "table {t}: merge(base, log) has {} rows, the source {}; they differ",
                    merged.num_rows(),
                    want.num_rows()
                ));
            }
        }
        Ok(())
    }
}

fn schema(types: &[Ty]) -> SchemaRef {
    let fields = std::iter::once(Field::new("id", DataType::Int64, false)).chain(
        types.iter().enumerate().map(|(i, ty)| {
            let dt = match ty {
                Ty::Int => DataType::Int64,
                Ty::Text => DataType::Utf8,
                Ty::Float => DataType::Float64,
                Ty::Bool => DataType::Boolean,
            };
            Field::new(format!("c{i}"), dt, true)
        }),
    );
    Arc::new(Schema::new(fields.collect::<Vec<_>>()))
}

/// The business columns of `rows`, prefixed by `meta` columns when given.
fn batch<'a>(
    schema: &SchemaRef,
    types: &[Ty],
    rows: impl Iterator<Item = &'a Row> + Clone,
    meta: Option<(Vec<Field>, Vec<ArrayRef>)>,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut columns: Vec<ArrayRef> = Vec::new();
    let mut key = Int64Builder::new();
    for r in rows.clone() {
        match &r[0] {
            Val::Int(k) => key.append_value(*k),
            _ => key.append_null(),
        }
    }
    columns.push(Arc::new(key.finish()));
    for (i, ty) in types.iter().enumerate() {
        let vals = rows.clone().map(|r| &r[i + 1]);
        let column: ArrayRef = match ty {
            Ty::Int => {
                let mut b = Int64Builder::new();
                vals.for_each(|v| {
                    b.append_option(if let Val::Int(x) = v { Some(*x) } else { None })
                });
                Arc::new(b.finish())
            }
            Ty::Text => {
                let mut b = StringBuilder::new();
                vals.for_each(|v| {
                    b.append_option(if let Val::Text(x) = v { Some(x) } else { None })
                });
                Arc::new(b.finish())
            }
            Ty::Float => {
                let mut b = Float64Builder::new();
                vals.for_each(|v| {
                    b.append_option(if let Val::Float(x) = v {
                        Some(*x)
                    } else {
                        None
                    })
                });
                Arc::new(b.finish())
            }
            Ty::Bool => {
                let mut b = BooleanBuilder::new();
                vals.for_each(|v| {
                    b.append_option(if let Val::Bool(x) = v { Some(*x) } else { None })
                });
                Arc::new(b.finish())
            }
        };
        columns.push(column);
    }
    match meta {
        None => RecordBatch::try_new(schema.clone(), columns),
        Some((fields, mut meta_columns)) => {
            let all: Vec<Field> = fields
                .into_iter()
                .chain(schema.fields().iter().map(|f| f.as_ref().clone()))
                .collect();
            meta_columns.extend(columns);
            RecordBatch::try_new(Arc::new(Schema::new(all)), meta_columns)
        }
    }
}

fn log_batch(
    meta: &MetaColumns,
    types: &[Ty],
    records: &[&Record],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut id = Int64Builder::new();
    let mut op = StringBuilder::new();
    let mut ts = Int64Builder::new();
    let mut before = StringBuilder::new();
    let mut after = StringBuilder::new();
    for r in records {
        id.append_value(r.record_id);
        op.append_value(match r.op {
            OpKind::Insert => "I",
            OpKind::Update => "U",
            OpKind::Delete => "D",
        });
        ts.append_value(0);
        before.append_value(if r.before { "Y" } else { "N" });
        after.append_value(if r.before { "N" } else { "Y" });
    }
    let meta_columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(op.finish()),
        Arc::new(ts.finish()),
        Arc::new(before.finish()),
        Arc::new(after.finish()),
    ];
    batch(
        &schema(types),
        types,
        records.iter().map(|r| &r.row),
        Some((meta.fields(), meta_columns)),
    )
}

/// Simulates one seed; `Err` says what broke.
fn simulate(seed: u64) -> Result<Stats, String> {
    let mut rng = Rng(seed);
    let source = Source::generate(&mut rng);
    let limits = Limits {
        batch_rows: rng.range(1, 60) as usize,
        max_batch_records: rng.range(1, 50) as usize,
        flush_interval: Duration::from_millis(rng.range(1, 2_000)),
        idle_interval: Duration::from_secs(10),
        by_gtid: rng.chance(500),
    };
    let selected = SelectedPhases {
        schema: false,
        full: false,
        incremental: true,
    };
    let start = TaskState::new(selected)
        .with_task_id("sim")
        .apply(Step::PrecheckPassed)
        .and_then(|s| s.apply(Step::PositionCaptured(at(1, 4, 0))))
        .map_err(|e| e.to_string())?;
    let faults = Faults {
        reconnect: rng.below(8),
        sink_error: rng.below(60),
        crash_after_landing: rng.below(60),
        stall: rng.below(100),
        stop: rng.below(6),
    };
    let stats = Stats {
        changes: source.changes.len(),
        rotations: source
            .events
            .iter()
            .filter(|e| e.ends.as_ref().is_some_and(|p| p.position == 4))
            .count(),
        ..Stats::default()
    };
    let mut world = World {
        stats,
        rng,
        source,
        limits,
        log: Vec::new(),
        units: HashSet::new(),
        checkpoint: serde_json::to_string(&start).map_err(|e| e.to_string())?,
        now: Duration::ZERO,
        faults,
    };
    for run in 0..200 {
        // Faults for a while, then calm, so that every seed finishes.
        if run == 40 {
            world.faults = CALM;
        }
        world.stats.runs += 1;
        match world.run() {
            Ok(true) => return world.check().map(|()| world.stats),
            Ok(false) => {}
            Err(Abort::Restart) => world.stats.restarts += 1,
            Err(Abort::Bug(message)) => return Err(message),
        }
    }
    Err("no progress after 200 runs".into())
}

#[test]
fn seeds() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let k = std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(DEFAULT_SEEDS);
            (0..k).collect()
        }
    };
    let mut total = Stats::default();
    let n = seeds.len();
    for seed in seeds {
        match std::panic::catch_unwind(|| simulate(seed)) {
            Ok(Ok(s)) => {
                total.changes += s.changes;
                total.runs += s.runs;
                total.restarts += s.restarts;
                total.stops += s.stops;
                total.landed_before_restart += s.landed_before_restart;
                total.replays += s.replays;
                total.commits += s.commits;
                total.parts += s.parts;
                total.timeouts += s.timeouts;
                total.rotations += s.rotations;
                total.ddls += s.ddls;
            }
            Ok(Err(message)) => panic!("SIM_SEED={seed}: {message}"),
            Err(_) => panic!("SIM_SEED={seed}: panicked (see above)"),
        }
    }
    eprintln!("simulated {n} seeds: {total:?}");
}

/// Seeds per `cargo test` run by default: a few seconds in a debug build.
const DEFAULT_SEEDS: u64 = 500;
