//! The incremental phase's batcher: which row changes go into which `t_log`
//! batch, and where each batch ends. Sans-IO: no awaits, no clock reads, no
//! sink; the driver ([`crate::run`]) reads the binlog, feeds what it read and
//! the time into a [`Batcher`], and executes the [`Commit`]s it gets back
//! (checkpoint the intent, write the batch, checkpoint its landing).
//!
//! The rules it holds:
//! - a batch ends only at a transaction boundary (`batch_rows`, the flush
//!   interval, the idle checkpoint interval, a stop), except that a
//!   transaction larger than `max_batch_records` is committed in parts,
//!   each ending after a whole rows event and counted in row changes
//!   ([`SourcePosition::within`]);
//! - after a restart with a pending intent, the same range is read again and
//!   the batch ends exactly where the intent says ([`Commit::replay`]);
//! - resuming inside a transaction committed in parts skips the changes that
//!   landed before ([`Batcher::take_change`]);
//! - record ids are allocated here, in binlog order, so a replay of the same
//!   range gives the same ids.

use crate::machine::{Intent, Phase, PreparedXa, SourcePosition, Step, TaskState};
use crate::records::RecordIds;
use std::time::Duration;

/// A batch being redone after a restart did not end where its intent
/// says: the binlog changed under the task. (Its own type: the batcher sits
/// below [`crate::error`], which the driver converts it into.)
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Diverged {
    /// A replayed part read more changes of its transaction than it held.
    #[error(
        "replaying pending part {unit} passed its end ({changes} changes into the transaction \
         at {file}:{position}, the part ended after {within}): the binlog changed under the task"
    )]
    PastPartEnd {
        /// The pending unit.
        unit: String,
        /// Changes read into the transaction.
        changes: u64,
        /// Where the transaction starts.
        file: String,
        /// Offset of its start.
        position: u64,
        /// Changes the part held.
        within: u64,
    },
    /// The replayed batch ended elsewhere, or with other record ids.
    #[error(
        "replaying pending batch {unit} ended at {file}:{position} with next record id \
         {next_record_id}, but it was prepared to end at {intent_file}:{intent_position} with \
         {intent_next_record_id}: the binlog changed under the task"
    )]
    Elsewhere {
        /// The pending unit.
        unit: String,
        /// Where the replay ended.
        file: String,
        /// Offset where the replay ended.
        position: u64,
        /// The counter after the replay.
        next_record_id: u64,
        /// Where the intent ends.
        intent_file: String,
        /// Offset where the intent ends.
        intent_position: u64,
        /// The counter the intent recorded.
        intent_next_record_id: u64,
    },
}

type Result<T> = std::result::Result<T, Diverged>;

/// Where batches end, from the task file.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `sync.batch_rows`: a batch ends at the first transaction boundary
    /// with at least this many records.
    pub batch_rows: usize,
    /// `sync.max_batch_records`: a transaction larger than this is committed
    /// in parts.
    pub max_batch_records: usize,
    /// `sync.flush_interval_ms`: a batch ends at the first boundary this
    /// long after it opened.
    pub flush_interval: Duration,
    /// How often a stream without records (events of unselected tables,
    /// heartbeats) still moves the checkpoint.
    pub idle_interval: Duration,
    /// `[source] resume = "gtid"`: a transaction is known by its GTID only.
    pub by_gtid: bool,
}

/// A batch to commit: its range `[from, to)` and the record id after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// Where the batch starts (the checkpoint before it).
    pub from: SourcePosition,
    /// Where it ends (the checkpoint after it).
    pub to: SourcePosition,
    /// The counter the next change gets.
    pub next_record_id: u64,
    /// The pending intent this batch redoes (after a restart), if any.
    pub replay: Option<Intent>,
}

/// What the driver does after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep gathering.
    Buffer,
    /// Commit the batch gathered so far (and keep reading).
    Commit(Box<Commit>),
}

/// How an event read from the stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// Inside a transaction; the stream's last boundary is `at`.
    Inside {
        /// The stream's checkpoint (its last transaction boundary).
        at: SourcePosition,
    },
    /// The event ended its transaction; the stream's checkpoint is `at`.
    TxnEnd {
        /// The position after the transaction.
        at: SourcePosition,
    },
}

/// What to do when the stream ends (caught up, or stopped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Nothing open: the checkpoint stands.
    Done,
    /// Commit the rest.
    Commit(Box<Commit>),
    /// Stopped inside a transaction: its records are dropped and read again
    /// from the last committed position on the next run.
    DropOpenTransaction,
    /// The stream ended before the pending batch being replayed did: the
    /// intent stays pending.
    KeepPending,
}

/// The incremental batcher's state (see the module docs).
#[derive(Clone, Debug)]
pub struct Batcher {
    limits: Limits,
    ids: RecordIds,
    /// Where the open batch starts.
    batch_start: SourcePosition,
    /// The last transaction boundary: where a DDL's own transaction starts.
    boundary: SourcePosition,
    /// Whether the last event read ended a transaction: only there may a
    /// batch end, so that no transaction is ever split across commits.
    at_boundary: bool,
    /// Row changes read of the open transaction.
    txn_changes: u64,
    /// Changes of the open transaction that landed before a restart.
    skip_changes: u64,
    /// The pending intent being redone.
    forced: Option<Intent>,
    /// When the open batch reached its first boundary.
    open_since: Option<Duration>,
    /// `t_log` records in the open batch.
    records: usize,
    /// The stop signal was seen.
    stopping: bool,
}

impl Batcher {
    /// Starts at the checkpoint `position` with the counter `next_record_id`;
    /// `replay` is the pending intent to redo (the sink did not have it).
    pub fn new(
        limits: Limits,
        position: SourcePosition,
        record_id_tag: u8,
        next_record_id: u64,
        replay: Option<Intent>,
    ) -> Self {
        Self {
            limits,
            ids: RecordIds::new(record_id_tag, next_record_id),
            // Resuming inside a transaction committed in parts: its first
            // `within` row changes already landed. Counting changes rather
            // than bytes keeps this valid on another server of the
            // replication group (failover), whose binlog offsets differ.
            skip_changes: position.within.unwrap_or(0),
            boundary: position.clone(),
            batch_start: position,
            at_boundary: true,
            txn_changes: 0,
            forced: replay,
            open_since: None,
            records: 0,
            stopping: false,
        }
    }

    /// The counter the next change gets.
    pub fn next_record_id(&self) -> u64 {
        self.ids.next_counter()
    }

    /// Records in the open batch.
    pub fn records(&self) -> usize {
        self.records
    }

    /// The pending intent being redone, if any.
    pub fn replaying(&self) -> Option<&Intent> {
        self.forced.as_ref()
    }

    /// Whether the last event read ended its transaction.
    pub fn at_boundary(&self) -> bool {
        self.at_boundary
    }

    /// Where the open batch starts.
    pub fn batch_start(&self) -> &SourcePosition {
        &self.batch_start
    }

    /// The last transaction boundary read.
    pub fn boundary(&self) -> &SourcePosition {
        &self.boundary
    }

    /// A row change of a synced table was read: its record id, or `None`
    /// when it landed before the restart (skip it). `records` is how many
    /// `t_log` records it makes (2 for an UPDATE).
    pub fn take_change(&mut self, records: usize) -> Option<i64> {
        self.txn_changes += 1;
        if self.txn_changes <= self.skip_changes {
            return None;
        }
        self.records += records;
        Some(self.ids.allocate())
    }

    /// The stop signal: the batch ends at the next transaction boundary.
    pub fn on_stop(&mut self) {
        self.stopping = true;
    }

    /// An event was read and handled (its changes taken); `now` is the
    /// driver's monotonic clock.
    ///
    /// # Errors
    /// [`Diverged`] when a replayed part passed its recorded end (the
    /// binlog changed under the task).
    pub fn on_event(&mut self, read: Read, now: Duration) -> Result<Decision> {
        match read {
            Read::Inside { at } => {
                self.at_boundary = false;
                // A transaction too large for one batch is committed in
                // parts, each ending after a whole event; a replay ends its
                // part after the very same change.
                let part_end = SourcePosition {
                    within: Some(self.txn_changes),
                    ..at
                };
                self.part(part_end)
            }
            Read::TxnEnd { at } => {
                self.at_boundary = true;
                self.txn_changes = 0;
                self.skip_changes = 0;
                self.boundary = at.clone();
                let opened = *self.open_since.get_or_insert(now);
                let flush = match &self.forced {
                    Some(intent) if self.limits.by_gtid => {
                        intent.to.within.is_none() && at.gtid == intent.to.gtid
                    }
                    Some(intent) => {
                        intent.to.within.is_none()
                            && at.file == intent.to.file
                            && at.position >= intent.to.position
                    }
                    None => {
                        self.records >= self.limits.batch_rows
                            || self.stopping
                            || (self.records > 0
                                && now.saturating_sub(opened) >= self.limits.flush_interval)
                    }
                };
                Ok(if flush {
                    Decision::Commit(Box::new(self.commit(at)))
                } else {
                    Decision::Buffer
                })
            }
        }
    }

    /// A rows event of a committed XA branch was replayed (its changes
    /// taken): a large branch lands in parts, inside the commit's group.
    ///
    /// # Errors
    /// As [`Self::on_event`].
    pub fn on_held_rows(&mut self) -> Result<Decision> {
        let part_end = SourcePosition {
            within: Some(self.txn_changes),
            ..self.boundary.clone()
        };
        self.part(part_end)
    }

    /// When [`Self::poll_timeout`] has something to commit (`None`: only an
    /// event can end the batch).
    pub fn deadline(&self) -> Option<Duration> {
        if self.forced.is_some() || !self.at_boundary {
            return None;
        }
        self.open_since.map(|t| {
            t + if self.records > 0 {
                self.limits.flush_interval
            } else {
                self.limits.flush_interval.max(self.limits.idle_interval)
            }
        })
    }

    /// The clock moved to `now` with no event read; the stream's checkpoint
    /// is `here`. A batch open long enough commits (a quiet source still
    /// sees its changes land, an idle one its checkpoint move).
    pub fn poll_timeout(&mut self, now: Duration, here: &SourcePosition) -> Option<Decision> {
        match self.deadline() {
            Some(due) if now >= due => Some(Decision::Commit(Box::new(self.commit(here.clone())))),
            _ => None,
        }
    }

    /// Where the checkpoint stands at `here` by a step outside the batcher
    /// (a DDL followed, the table set changed): the next batch starts there.
    pub fn moved_to(&mut self, here: SourcePosition) {
        self.boundary = here.clone();
        self.batch_start = here;
        self.open_since = None;
        self.at_boundary = true;
    }

    /// The open batch, up to the stream's checkpoint `here`, when the task
    /// is at a boundary with nothing replayed and something to commit
    /// (before the table set changes).
    pub fn commit_at_boundary(&mut self, here: SourcePosition) -> Option<Commit> {
        (self.records > 0).then(|| self.commit(here))
    }

    /// The batch before a DDL's own transaction (which starts at the last
    /// boundary), if it holds records.
    pub fn commit_before_statement(&mut self) -> Option<Commit> {
        (self.records > 0).then(|| self.commit(self.boundary.clone()))
    }

    /// Before the task stops with an error at the current event: the batch
    /// may land up to the start of the event's transaction only when it
    /// holds none of that transaction (and no batch is being redone).
    pub fn commit_before_error(&mut self) -> Option<Commit> {
        (self.forced.is_none() && self.txn_changes == 0 && self.records > 0)
            .then(|| self.commit(self.boundary.clone()))
    }

    /// Whether a statement read now stands alone: its own transaction, and
    /// no batch is being redone.
    pub fn standalone(&self, ends_transaction: bool) -> bool {
        ends_transaction && self.forced.is_none()
    }

    /// The stream ended at `here` (the end of the binlog is always a
    /// transaction boundary); `stopped`: by the stop signal.
    pub fn on_end(&mut self, here: SourcePosition, stopped: bool) -> End {
        if stopped && !self.at_boundary {
            return End::DropOpenTransaction;
        }
        if self.records == 0 && here == self.batch_start {
            return End::Done;
        }
        if self.forced.is_some() {
            return End::KeepPending;
        }
        End::Commit(Box::new(self.commit(here)))
    }

    fn part(&mut self, part_end: SourcePosition) -> Result<Decision> {
        let ends = part_ends_here(
            self.forced.as_ref(),
            &part_end,
            self.txn_changes,
            self.records,
            self.limits.max_batch_records,
            self.limits.by_gtid,
        )?;
        Ok(if ends {
            Decision::Commit(Box::new(self.commit(part_end)))
        } else {
            Decision::Buffer
        })
    }

    /// Ends the open batch at `to`; the next one starts there.
    fn commit(&mut self, to: SourcePosition) -> Commit {
        let from = std::mem::replace(&mut self.batch_start, to.clone());
        self.open_since = None;
        self.records = 0;
        Commit {
            from,
            to,
            next_record_id: self.ids.next_counter(),
            replay: self.forced.take(),
        }
    }
}

/// The intent of a [`Commit`], and the step that checkpoints it (`None`
/// when the commit redoes a pending intent, already checkpointed).
/// `by_gtid`: positions are compared by their GTID state (as
/// [`Limits::by_gtid`]).
///
/// # Errors
/// [`Diverged`] when a redone batch did not reproduce its intent's
/// range and ids (the binlog changed under the task).
pub fn prepare(
    state: &TaskState,
    commit: Commit,
    xa: Vec<PreparedXa>,
    by_gtid: bool,
) -> Result<(Intent, Option<Step>)> {
    let Commit {
        from,
        to,
        next_record_id,
        replay,
    } = commit;
    match replay {
        // The intent is already in the checkpoint: the replay must have
        // reproduced exactly its range and ids, or something is wrong. By
        // GTID, the events that end no transaction of their own (ROTATE,
        // FORMAT_DESCRIPTION, GTID_LIST, BINLOG_CHECKPOINT) make several
        // boundaries with one GTID state and no change between them; the
        // replay ends at the first of them, which holds the same batch.
        Some(intent) => {
            let same_end = if by_gtid {
                intent.to.gtid == to.gtid && intent.to.within == to.within
            } else {
                intent.to == to
            };
            if !same_end || intent.next_record_id != next_record_id {
                return Err(Diverged::Elsewhere {
                    unit: intent.unit,
                    file: to.file,
                    position: to.position,
                    next_record_id,
                    intent_file: intent.to.file,
                    intent_position: intent.to.position,
                    intent_next_record_id: intent.next_record_id,
                });
            }
            Ok((intent, None))
        }
        None => {
            let unit = state.unit_name(&match from.within {
                None => format!("log-{}-{:012}", from.file, from.position),
                Some(k) => format!("log-{}-{:012}-{k:012}", from.file, from.position),
            });
            let intent = Intent {
                unit,
                to,
                next_record_id,
                xa,
            };
            Ok((intent.clone(), Some(Step::BatchPrepared(intent))))
        }
    }
}

/// The pending intent of an incremental checkpoint: after a restart the
/// driver asks the sink whether it landed ([`Step::BatchCommitted`]) or
/// redoes it ([`Batcher::new`]'s `replay`).
pub fn pending(state: &TaskState) -> Option<&Intent> {
    match &state.phase {
        Phase::Incremental(inc) => inc.pending.as_ref(),
        _ => None,
    }
}

/// Whether `a` and `b` start the same transaction: by GTID the file and
/// offset are those of whichever server the stream reads from, so only the
/// GTID counts.
fn same_txn(by_gtid: bool, a: &SourcePosition, b: &SourcePosition) -> bool {
    if by_gtid {
        a.gtid == b.gtid
    } else {
        a.file == b.file && a.position == b.position
    }
}

/// Whether a part of a transaction committed in parts ends at `part_end`
/// (`changes` row changes into it): at the pending intent's end when one is
/// replayed, else when the batch is full.
fn part_ends_here(
    forced: Option<&Intent>,
    part_end: &SourcePosition,
    changes: u64,
    records: usize,
    max_records: usize,
    by_gtid: bool,
) -> Result<bool> {
    let Some(intent) = forced else {
        return Ok(records >= max_records);
    };
    let same = same_txn(by_gtid, &intent.to, part_end);
    if intent.to.within.is_some_and(|w| w < changes) && same {
        return Err(Diverged::PastPartEnd {
            unit: intent.unit.clone(),
            changes,
            file: part_end.file.clone(),
            position: part_end.position,
            within: intent.to.within.unwrap_or(0),
        });
    }
    Ok(same && intent.to.within == part_end.within)
}

#[cfg(test)]
mod sim;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::SelectedPhases;
    use crate::machine::fixtures::pos;

    fn within(p: SourcePosition, k: u64) -> SourcePosition {
        SourcePosition {
            within: Some(k),
            ..p
        }
    }

    fn limits() -> Limits {
        Limits {
            batch_rows: 4,
            max_batch_records: 6,
            flush_interval: Duration::from_millis(1000),
            idle_interval: Duration::from_secs(10),
            by_gtid: false,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn commit_of(d: Decision) -> Commit {
        match d {
            Decision::Commit(c) => *c,
            Decision::Buffer => panic!("expected a commit"),
        }
    }

    /// One transaction of `changes` inserts ending at `at`.
    fn txn(b: &mut Batcher, changes: usize, at: SourcePosition, now: Duration) -> Decision {
        for _ in 0..changes {
            b.take_change(1).expect("not skipped");
        }
        b.on_event(Read::TxnEnd { at }, now).expect("as planned")
    }

    #[test]
    fn buffers_until_batch_rows_then_commits_at_the_boundary() {
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        assert_eq!(txn(&mut b, 2, pos("b.1", 100), ms(0)), Decision::Buffer);
        assert_eq!(b.records(), 2);
        let c = commit_of(txn(&mut b, 2, pos("b.1", 200), ms(1)));
        assert_eq!(
            c,
            Commit {
                from: pos("b.1", 4),
                to: pos("b.1", 200),
                next_record_id: 5,
                replay: None
            }
        );
        assert_eq!((b.records(), b.batch_start()), (0, &pos("b.1", 200)));
    }

    #[test]
    fn an_update_counts_two_records_and_one_id() {
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 7, None);
        assert_eq!(b.take_change(2), Some(7));
        assert_eq!((b.records(), b.next_record_id()), (2, 8));
    }

    #[test]
    fn flush_interval_ends_a_batch_at_the_next_boundary_or_by_timeout() {
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        assert_eq!(txn(&mut b, 1, pos("b.1", 100), ms(0)), Decision::Buffer);
        // Opened at 0: due at 1000.
        assert_eq!(b.deadline(), Some(ms(1000)));
        assert_eq!(b.poll_timeout(ms(999), &pos("b.1", 100)), None);
        // An event after the interval ends it at its boundary ...
        let c = commit_of(txn(&mut b, 0, pos("b.1", 150), ms(1000)));
        assert_eq!((c.from, c.to), (pos("b.1", 4), pos("b.1", 150)));
        // ... and so does the clock alone.
        assert_eq!(txn(&mut b, 1, pos("b.1", 200), ms(2000)), Decision::Buffer);
        let c = commit_of(
            b.poll_timeout(ms(3000), &pos("b.1", 200))
                .expect("as planned"),
        );
        assert_eq!((c.from, c.to), (pos("b.1", 150), pos("b.1", 200)));
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn an_idle_stream_moves_the_checkpoint_after_the_idle_interval() {
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        assert_eq!(txn(&mut b, 0, pos("b.1", 100), ms(0)), Decision::Buffer);
        assert_eq!(b.deadline(), Some(Duration::from_secs(10)));
        assert_eq!(b.poll_timeout(ms(9999), &pos("b.1", 100)), None);
        let c = commit_of(
            b.poll_timeout(ms(10_000), &pos("b.1", 300))
                .expect("as planned"),
        );
        assert_eq!((c.to, c.next_record_id), (pos("b.1", 300), 1));
    }

    #[test]
    fn no_timeout_inside_a_transaction() {
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        assert_eq!(txn(&mut b, 1, pos("b.1", 100), ms(0)), Decision::Buffer);
        b.take_change(1);
        let d = b.on_event(
            Read::Inside {
                at: pos("b.1", 100),
            },
            ms(5),
        );
        assert_eq!(d.expect("as planned"), Decision::Buffer);
        assert_eq!(b.deadline(), None);
        assert_eq!(b.poll_timeout(ms(60_000), &pos("b.1", 100)), None);
    }

    #[test]
    fn a_large_transaction_is_committed_in_parts_counted_in_changes() {
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        let start = pos("b.1", 4);
        for _ in 0..5 {
            b.take_change(1);
        }
        let d = b.on_event(Read::Inside { at: start.clone() }, ms(0));
        assert_eq!(d.expect("as planned"), Decision::Buffer);
        b.take_change(1);
        let c = commit_of(
            b.on_event(Read::Inside { at: start.clone() }, ms(0))
                .expect("as planned"),
        );
        assert_eq!((c.from, c.to), (start.clone(), within(start.clone(), 6)));
        assert_eq!(b.batch_start(), &within(start.clone(), 6));
        // The rest of the transaction ends the next part at its boundary
        // when the batch is full.
        let c = commit_of(txn(&mut b, 4, pos("b.1", 900), ms(0)));
        assert_eq!((c.from, c.to), (within(start, 6), pos("b.1", 900)));
    }

    #[test]
    fn resuming_inside_a_transaction_skips_what_landed() {
        let start = within(pos("b.1", 4), 3);
        let mut b = Batcher::new(limits(), start, 0, 10, None);
        assert_eq!(b.take_change(1), None);
        assert_eq!(b.take_change(1), None);
        assert_eq!(b.take_change(1), None);
        assert_eq!(b.take_change(1), Some(10));
        assert_eq!(b.records(), 1);
        // The next transaction skips nothing.
        assert_eq!(txn(&mut b, 0, pos("b.1", 50), ms(0)), Decision::Buffer);
        assert_eq!(b.take_change(1), Some(11));
    }

    #[test]
    fn a_replay_ends_exactly_at_its_intent() {
        let intent = Intent {
            unit: "u".into(),
            to: pos("b.1", 300),
            next_record_id: 3,
            xa: Vec::new(),
        };
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, Some(intent.clone()));
        assert_eq!(b.deadline(), None);
        assert!(!b.standalone(true));
        // batch_rows is 4: not reached; the intent decides.
        assert_eq!(txn(&mut b, 1, pos("b.1", 100), ms(0)), Decision::Buffer);
        assert_eq!(b.poll_timeout(ms(60_000), &pos("b.1", 100)), None);
        let c = commit_of(txn(&mut b, 1, pos("b.1", 300), ms(0)));
        assert_eq!(c.replay.as_ref(), Some(&intent));
        let state = TaskState::new(SelectedPhases {
            schema: true,
            full: false,
            incremental: true,
        });
        let (again, step) = prepare(&state, c, Vec::new(), false).expect("as planned");
        assert_eq!((again, step), (intent, None));
        assert!(b.standalone(true));
    }

    #[test]
    fn a_replayed_part_ends_after_the_same_change_or_errors_past_it() {
        let intent = Intent {
            unit: "u".into(),
            to: within(pos("b.1", 4), 2),
            next_record_id: 3,
            xa: Vec::new(),
        };
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, Some(intent.clone()));
        b.take_change(1);
        let d = b.on_event(Read::Inside { at: pos("b.1", 4) }, ms(0));
        assert_eq!(d.expect("as planned"), Decision::Buffer);
        b.take_change(1);
        let c = commit_of(
            b.on_event(Read::Inside { at: pos("b.1", 4) }, ms(0))
                .expect("as planned"),
        );
        assert_eq!((c.to, c.replay), (intent.to.clone(), Some(intent.clone())));

        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, Some(intent));
        b.take_change(1);
        b.take_change(1);
        b.take_change(1);
        let e = b.on_event(Read::Inside { at: pos("b.1", 4) }, ms(0));
        assert!(matches!(
            e,
            Err(Diverged::PastPartEnd {
                within: 2,
                changes: 3,
                ..
            })
        ));
    }

    #[test]
    fn a_replay_that_does_not_match_its_intent_is_an_error() {
        let intent = Intent {
            unit: "u".into(),
            to: pos("b.1", 300),
            next_record_id: 9,
            xa: Vec::new(),
        };
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, Some(intent));
        let c = commit_of(txn(&mut b, 1, pos("b.1", 300), ms(0)));
        let state = TaskState::new(SelectedPhases {
            schema: true,
            full: false,
            incremental: true,
        });
        let e = prepare(&state, c, Vec::new(), false).expect_err("an error");
        assert!(e.to_string().contains("the binlog changed under the task"));
        assert!(matches!(
            e,
            Diverged::Elsewhere {
                next_record_id: 2,
                intent_next_record_id: 9,
                ..
            }
        ));
    }

    #[test]
    fn by_gtid_a_replay_may_end_at_another_boundary_of_the_same_gtid_state() {
        // The batch ended after a ROTATE (same GTID state as the XID before
        // it); the replay ends at the XID: the same batch.
        let gtid = |p: SourcePosition, g: &str| SourcePosition {
            gtid: Some(g.into()),
            ..p
        };
        let intent = Intent {
            unit: "u".into(),
            to: gtid(pos("b.2", 4), "0-1-7"),
            next_record_id: 2,
            xa: Vec::new(),
        };
        let state = TaskState::new(SelectedPhases {
            schema: true,
            full: false,
            incremental: true,
        });
        let by_gtid = Limits {
            by_gtid: true,
            ..limits()
        };
        let start = gtid(pos("b.1", 4), "0-1-6");
        let mut b = Batcher::new(by_gtid, start, 0, 1, Some(intent.clone()));
        let c = commit_of(txn(&mut b, 1, gtid(pos("b.1", 900), "0-1-7"), ms(0)));
        let (again, step) = prepare(&state, c.clone(), Vec::new(), true).expect("the same batch");
        assert_eq!((again, step), (intent, None));
        // By file and position it is another end.
        assert!(prepare(&state, c, Vec::new(), false).is_err());
    }

    #[test]
    fn prepare_names_the_unit_by_the_range_start() {
        let state = TaskState::new(SelectedPhases {
            schema: true,
            full: false,
            incremental: true,
        });
        let c = Commit {
            from: within(pos("b.1", 4), 6),
            to: pos("b.1", 90),
            next_record_id: 12,
            replay: None,
        };
        let (intent, step) = prepare(&state, c, Vec::new(), false).expect("as planned");
        assert!(intent.unit.ends_with("log-b.1-000000000004-000000000006"));
        assert_eq!(step, Some(Step::BatchPrepared(intent)));
    }

    #[test]
    fn a_stop_ends_the_batch_at_the_next_boundary() {
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        b.on_stop();
        let c = commit_of(txn(&mut b, 1, pos("b.1", 100), ms(0)));
        assert_eq!(c.to, pos("b.1", 100));
    }

    #[test]
    fn the_end_of_the_stream() {
        // Nothing read: nothing to do.
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        assert_eq!(b.on_end(pos("b.1", 4), false), End::Done);
        // Stopped inside a transaction: dropped.
        b.take_change(1);
        let d = b.on_event(Read::Inside { at: pos("b.1", 4) }, ms(0));
        assert_eq!(d.expect("as planned"), Decision::Buffer);
        assert_eq!(b.on_end(pos("b.1", 4), true), End::DropOpenTransaction);
        // Caught up: the rest commits (also when it only moves the position).
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        assert_eq!(txn(&mut b, 0, pos("b.1", 60), ms(0)), Decision::Buffer);
        match b.on_end(pos("b.1", 60), false) {
            End::Commit(c) => assert_eq!((c.from, c.to), (pos("b.1", 4), pos("b.1", 60))),
            other => panic!("{other:?}"),
        }
        // A replay cut short stays pending.
        let intent = Intent {
            unit: "u".into(),
            to: pos("b.1", 300),
            next_record_id: 9,
            xa: Vec::new(),
        };
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, Some(intent));
        assert_eq!(txn(&mut b, 1, pos("b.1", 100), ms(0)), Decision::Buffer);
        assert_eq!(b.on_end(pos("b.1", 100), false), End::KeepPending);
    }

    #[test]
    fn commits_before_a_statement_and_before_an_error() {
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        assert_eq!(b.commit_before_statement(), None);
        assert_eq!(txn(&mut b, 1, pos("b.1", 100), ms(0)), Decision::Buffer);
        let c = b.commit_before_statement().expect("as planned");
        assert_eq!((c.from, c.to), (pos("b.1", 4), pos("b.1", 100)));
        // Before an error: not when the batch holds part of the
        // transaction the error is in.
        assert_eq!(txn(&mut b, 1, pos("b.1", 200), ms(0)), Decision::Buffer);
        b.take_change(1);
        assert_eq!(b.commit_before_error(), None);
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        assert_eq!(txn(&mut b, 1, pos("b.1", 100), ms(0)), Decision::Buffer);
        let c = b.commit_before_error().expect("as planned");
        assert_eq!(c.to, pos("b.1", 100));
        // At a boundary (table set change): to the stream's checkpoint.
        assert_eq!(b.commit_at_boundary(pos("b.1", 150)), None);
        assert_eq!(txn(&mut b, 1, pos("b.1", 150), ms(0)), Decision::Buffer);
        let c = b.commit_at_boundary(pos("b.1", 150)).expect("as planned");
        assert_eq!((c.from, c.to), (pos("b.1", 100), pos("b.1", 150)));
    }

    #[test]
    fn a_held_xa_branch_lands_in_parts_inside_its_commit_group() {
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        assert_eq!(txn(&mut b, 0, pos("b.1", 40), ms(0)), Decision::Buffer);
        for _ in 0..6 {
            b.take_change(1);
        }
        let c = commit_of(b.on_held_rows().expect("as planned"));
        assert_eq!(c.to, within(pos("b.1", 40), 6));
    }

    #[test]
    fn moved_to_starts_the_next_batch_there() {
        let mut b = Batcher::new(limits(), pos("b.1", 4), 0, 1, None);
        assert_eq!(txn(&mut b, 0, pos("b.1", 40), ms(0)), Decision::Buffer);
        b.moved_to(pos("b.1", 80));
        assert_eq!(b.batch_start(), &pos("b.1", 80));
        assert_eq!(b.boundary(), &pos("b.1", 80));
        assert_eq!(b.deadline(), None);
    }
}
