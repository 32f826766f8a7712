//! `state_dir/progress.json`: what `sync-cli status` shows beyond the
//! checkpoint — the lag, the last commit, this run's totals, a retry in
//! progress (or the one the task gave up on), the run that holds the task
//! and why the last run stopped.
//!
//! Whether a run is alive comes from the state directory's lock
//! ([`crate::state_lock::probe`]), never from this file: a run killed with
//! `kill -9` cannot say that it ended, so a run recorded as started with no
//! stop recorded, whose lock is free, ended without a word
//! ([`describe_run`]).
//!
//! The lag follows DTS: the age of the newest source event whose changes
//! are all in the destination. It moves at every commit and, between
//! commits, at every transaction end that leaves nothing uncommitted (an
//! event of an unselected table, e.g. a heartbeat write), so with
//! `[heartbeat]` it stays near the heartbeat interval on an idle source,
//! and without it grows while the source is quiet.
//!
//! The file is advisory: it is replaced atomically (temp file, rename) but
//! not fsynced, and a failed write is only logged.

use crate::metrics::{Metrics, unix_now};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use tracing::warn;

/// The file `status` reads besides the checkpoint.
pub const PROGRESS_FILE: &str = "progress.json";

/// What `state_dir/progress.json` holds.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Phase at the last update.
    pub phase: String,
    /// When the last incremental commit happened (Unix seconds).
    #[serde(default)]
    pub committed_at_unix: Option<f64>,
    /// Binlog time of the newest event whose changes are all committed (Unix seconds).
    pub last_event_unix: Option<i64>,
    /// Commit time minus event time, at the last commit or caught-up point.
    pub lag_seconds: Option<f64>,
    /// When this file was last written (Unix seconds).
    #[serde(default)]
    pub updated_at_unix: f64,
    /// The failure being retried now, or the one the task gave up on.
    #[serde(default)]
    pub retry: Option<RetryReport>,
    /// Values over the destination's field size limit met by this run.
    #[serde(default)]
    pub oversized: Option<OversizedReport>,
    /// Totals of this run.
    pub metrics: ProgressTotals,
    /// The process that runs (or last ran) the task.
    #[serde(default)]
    pub run: Option<crate::state_lock::Holder>,
    /// Why the last run stopped; absent while a run is under way (and after
    /// one that was killed or crashed).
    #[serde(default)]
    pub last_stop: Option<StopReport>,
    /// XA branches the source prepared and has not decided yet (their
    /// changes wait for `XA COMMIT`), as of the position read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xa_prepared: Option<XaReport>,
    /// What the full phase copies, by the server's estimate, taken when it
    /// (re)starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_estimate: Option<FullEstimate>,
    /// The mirror tables' lag (`[destination] mirror`), as of this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorReport>,
}

/// The full phase's size: every selected table and the server's row
/// estimates (`information_schema.TABLES.TABLE_ROWS`, which InnoDB keeps
/// only roughly: a guide for progress, never a check).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FullEstimate {
    /// Tables the full phase copies (done or not).
    pub tables: u64,
    /// Rows of those tables by the server's estimate.
    pub rows: u64,
}

/// How far the mirror tables are behind `t_log` ([`crate::mirror`]).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MirrorReport {
    /// `t_log` rows committed and not yet committed into the mirror tables.
    pub pending_rows: u64,
    /// When the last mirror commit happened (Unix seconds).
    pub last_commit_unix: Option<i64>,
}

/// Prepared, undecided XA branches ([`crate::xa`]).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct XaReport {
    /// How many.
    pub count: u64,
    /// The oldest one's xid.
    pub oldest_xid: String,
    /// Binlog time of the oldest one's XA PREPARE (Unix seconds).
    pub oldest_since_unix: i64,
    /// Binlog `file:offset` of the oldest one's XA PREPARE.
    pub oldest_prepared_at: String,
}

/// Why a run stopped, for `status`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StopReport {
    /// When (Unix seconds).
    pub at_unix: f64,
    /// The kind of stop.
    pub reason: StopReason,
    /// What `status` prints.
    pub message: String,
}

/// The kinds of [`StopReport`].
#[derive(Clone, Copy, Debug, Eq, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `exit_when_caught_up`: every change up to the binlog's end at start-up is committed.
    CaughtUp,
    /// Every selected phase is done (a task without the incremental phase).
    Finished,
    /// SIGINT, SIGTERM or the embedder's stop flag: a clean stop.
    Requested,
    /// A second signal: stopped where it was, like `kill -9`.
    Aborted,
    /// An error ended the run.
    Failed,
}

/// A failure being retried (or given up on), for `status`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetryReport {
    /// `connection` or `destination` (see [`crate::retry::RetryKind`]).
    pub kind: String,
    /// The last error.
    pub reason: String,
    /// When the first failure of this outage happened (Unix seconds).
    pub since_unix: f64,
    /// Attempts so far.
    pub attempts: u32,
    /// The retry window (seconds).
    pub window_seconds: f64,
    /// The task key that sets the window.
    pub window_key: String,
    /// True once the window ran out and the task stopped.
    pub gave_up: bool,
}

/// Values over the destination's field size limit, for `status`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OversizedReport {
    /// `[destination] oversized_values` of the run: `stop`, `null` or `truncate`.
    pub policy: String,
    /// Values written as NULL or cut to the limit (in committed units).
    pub written: u64,
    /// The last few, newest last.
    pub last: Vec<crate::oversized::Occurrence>,
    /// The one the task stopped at (`oversized_values = "stop"`).
    #[serde(default)]
    pub stopped_at: Option<crate::oversized::Occurrence>,
}

/// How many occurrences [`OversizedReport::last`] keeps.
const OVERSIZED_SHOWN: usize = 5;

/// Totals of a run, as [`Progress`] reports them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProgressTotals {
    /// Rows committed by this run.
    pub rows: u64,
    /// Rows per second over the last few seconds.
    pub rows_per_second: f64,
    /// Retries so far.
    pub retries: u64,
    /// Events changing a synced table skipped without their changes
    /// (`[sync] unsupported_events = "skip"`).
    #[serde(default)]
    pub unsupported_events_skipped: u64,
}

impl From<crate::metrics::Snapshot> for ProgressTotals {
    fn from(s: crate::metrics::Snapshot) -> Self {
        Self {
            rows: s.rows,
            rows_per_second: s.rows_per_second,
            retries: s.retries,
            unsupported_events_skipped: s.unsupported_events_skipped,
        }
    }
}

/// Reads `progress.json` from a state directory (`None` when absent or unreadable).
pub fn read(state_dir: &std::path::Path) -> Option<Progress> {
    let bytes = std::fs::read(state_dir.join(PROGRESS_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What `status` prints about `p` at `now` (Unix seconds), one line each;
/// `phase` is the checkpoint's, `heartbeat` the heartbeat interval in
/// seconds when heartbeats are on.
pub fn describe(p: &Progress, phase: &str, now: f64, heartbeat: Option<u64>) -> Vec<String> {
    use crate::retry::human;
    let secs = |s: f64| human(std::time::Duration::from_secs_f64(s.max(0.0)));
    let mut lines = Vec::new();
    if let Some(t) = p.last_event_unix {
        let age = (now - t as f64).max(0.0);
        lines.push(match heartbeat {
            Some(every) if age <= (3 * every) as f64 + 10.0 => format!(
                "lag {age:.1} s (age of the newest committed source event; heartbeat every {every} s)"
            ),
            Some(every) => format!(
                "lag {}: no heartbeat committed for that long (one is written every {every} s): \
                 the task is stalled, retrying or not running",
                secs(age)
            ),
            None if age <= 10.0 => {
                format!("lag {age:.1} s (age of the newest committed source event)")
            }
            None => format!(
                "lag {} since the newest committed source event: none came since, so the source is idle \
                 or the task is stalled ([heartbeat] tells them apart); lag at that commit {}",
                secs(age),
                p.lag_seconds
                    .map_or_else(|| "unknown".to_owned(), |l| format!("{l:.1} s"))
            ),
        });
    }
    if p.last_event_unix.is_none() && phase == "incremental" {
        lines.push("lag unknown: no source event committed by this task yet".to_owned());
    }
    let commit = match p.committed_at_unix {
        Some(t) => format!("last commit {} ago", secs(now - t)),
        None => "no incremental commit yet".to_owned(),
    };
    lines.push(format!(
        "{commit}; {} rows this run ({:.0} rows/s), {} retries",
        p.metrics.rows, p.metrics.rows_per_second, p.metrics.retries
    ));
    if let Some(m) = &p.mirror {
        let last = match m.last_commit_unix {
            Some(t) => format!("last mirror commit {} ago", secs(now - t as f64)),
            None => "no mirror commit yet".to_owned(),
        };
        lines.push(format!(
            "mirror: {} t_log rows not yet in the mirror tables; {last}",
            m.pending_rows
        ));
    }
    if let Some(o) = &p.oversized {
        let shown = |x: &crate::oversized::Occurrence| {
            format!(
                "{} key ({}) column `{}`, {} bytes",
                x.table, x.key, x.column, x.bytes
            )
        };
        if o.written > 0 {
            let how = if o.policy == "truncate" {
                "cut to the limit"
            } else {
                "written as NULL"
            };
            let last = o.last.iter().map(shown).collect::<Vec<_>>().join("; ");
            lines.push(format!(
                "{} values over the destination's field size limit this run, {how} \
                 (`oversized_values = \"{}\"`); last: {last}",
                o.written, o.policy
            ));
        }
        if let Some(x) = &o.stopped_at {
            lines.push(format!(
                "stopped at a value over the destination's field size limit: {} \
                 (`oversized_values = \"stop\"`; \"null\" or \"truncate\" go on past it)",
                shown(x)
            ));
        }
    }
    if p.metrics.unsupported_events_skipped > 0 {
        lines.push(format!(
            "{} event(s) changing a synced table skipped this run without their changes \
             (`sync.unsupported_events` = \"skip\"): those tables differ from the source until resynced",
            p.metrics.unsupported_events_skipped
        ));
    }
    if let Some(x) = &p.xa_prepared {
        lines.push(format!(
            "{} XA branch(es) prepared and undecided, their changes of synced tables held until \
             XA COMMIT; oldest {} prepared at {} ({}, {} ago)",
            x.count,
            x.oldest_xid,
            x.oldest_prepared_at,
            utc_date_time(x.oldest_since_unix as f64),
            secs(now - x.oldest_since_unix as f64)
        ));
    }
    if let Some(r) = &p.retry {
        let window = secs(r.window_seconds);
        lines.push(if r.gave_up {
            format!(
                "gave up after retrying a {} failure for {} ({} attempts; `{}` allows {window}): {}; \
                 `sync-cli run` resumes from the checkpoint",
                r.kind,
                secs(p.updated_at_unix - r.since_unix),
                r.attempts,
                r.window_key,
                r.reason
            )
        } else {
            format!(
                "retrying a {} failure since {} ({}, {} attempts; `{}` allows {window}): {}",
                r.kind,
                utc_time(r.since_unix),
                secs(now - r.since_unix),
                r.attempts,
                r.window_key,
                r.reason
            )
        });
    }
    lines
}

/// What `status` says about the run: whether one is alive (from the lock,
/// `liveness`) and, when none is, why the last one stopped (from `p`).
pub fn describe_run(
    liveness: &crate::state_lock::Liveness,
    p: Option<&Progress>,
    now: f64,
) -> String {
    use crate::retry::human;
    use crate::state_lock::Liveness;
    let ago = |t: f64| human(std::time::Duration::from_secs_f64((now - t).max(0.0)));
    match liveness {
        Liveness::Alive(Some(h)) => format!(
            "run alive: pid {} on host {}, `{}` started {} ({} ago)",
            h.pid,
            h.host,
            h.command,
            utc_date_time(h.started_unix),
            ago(h.started_unix)
        ),
        Liveness::Alive(None) => "run alive (starting: it has not written its details yet)".into(),
        Liveness::NotRunning { last } => {
            let stop = p.and_then(|p| p.last_stop.as_ref());
            let started = p.and_then(|p| p.run.as_ref()).or(last.as_ref());
            match (stop, started) {
                (Some(s), _) => format!(
                    "no run alive; the last one stopped {} ({} ago): {}",
                    utc_date_time(s.at_unix),
                    ago(s.at_unix),
                    s.message
                ),
                (None, Some(h)) if h.released_unix.is_none() => format!(
                    "no run alive; the last one (pid {} on host {}, started {}) ended without a \
                     word: killed (kill -9, out of memory) or crashed; `sync-cli run` resumes \
                     from the checkpoint",
                    h.pid,
                    h.host,
                    utc_date_time(h.started_unix)
                ),
                (None, Some(h)) => format!(
                    "no run alive; the last one was pid {} on host {}, started {}",
                    h.pid,
                    h.host,
                    utc_date_time(h.started_unix)
                ),
                (None, None) => "no run alive; none has run yet".into(),
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time.
pub fn utc_date_time(unix: f64) -> String {
    chrono::DateTime::from_timestamp(unix.max(0.0) as i64, 0).map_or_else(
        || format!("{unix:.0} (Unix time)"),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `HH:MM:SS UTC` of a Unix time.
fn utc_time(unix: f64) -> String {
    let s = (unix.max(0.0) as u64) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// The writer of `progress.json` for one runner.
#[derive(Debug)]
pub struct StatusFile {
    path: PathBuf,
    metrics: Metrics,
    current: Mutex<Progress>,
}

impl StatusFile {
    /// The file in `state_dir`, starting from what it holds now.
    pub fn new(state_dir: &std::path::Path, metrics: Metrics) -> Self {
        Self {
            path: state_dir.join(PROGRESS_FILE),
            current: Mutex::new(read(state_dir).unwrap_or_default()),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A run starts in `phase`: an old run's retry report is dropped.
    pub fn started(&self, phase: &str) {
        let mut p = self.lock();
        p.phase = phase.to_owned();
        p.retry = None;
        p.oversized = None;
        self.write(&mut p);
    }

    /// Values over the destination's field size limit: written per
    /// `policy` in a committed unit, or (`stopped`) the one the task stops at.
    pub fn oversized(
        &self,
        found: &[crate::oversized::Occurrence],
        policy: crate::oversized::OversizedPolicy,
        stopped: bool,
    ) {
        let mut p = self.lock();
        let report = p.oversized.get_or_insert_with(OversizedReport::default);
        report.policy = policy.as_str().to_owned();
        if stopped {
            report.stopped_at = found.first().cloned();
        } else {
            report.written += found.len() as u64;
            report.last.extend(found.iter().cloned());
            let extra = report.last.len().saturating_sub(OVERSIZED_SHOWN);
            report.last.drain(..extra);
        }
        self.write(&mut p);
    }

    /// An incremental commit landed; `last_event` is the newest event in it.
    pub fn committed(&self, phase: &str, last_event: Option<i64>, lag: Option<f64>) {
        let mut p = self.lock();
        p.phase = phase.to_owned();
        p.committed_at_unix = Some(unix_now());
        if last_event.is_some() {
            p.last_event_unix = last_event;
        }
        if lag.is_some() {
            p.lag_seconds = lag;
        }
        if let Some(t) = p.last_event_unix {
            self.metrics.set_last_event_unix(t);
        }
        self.write(&mut p);
    }

    /// Every change up to an event of time `event` is committed (nothing
    /// read since the last commit needs one): the lag is that event's age.
    pub fn caught_up(&self, event: Option<i64>) {
        let Some(t) = event else { return };
        let mut p = self.lock();
        // Event times have whole seconds: one write per second at most.
        if p.last_event_unix.is_some_and(|old| old >= t) {
            return;
        }
        let lag = (unix_now() - t as f64).max(0.0);
        p.last_event_unix = Some(t);
        p.lag_seconds = Some(lag);
        self.metrics.set_lag_seconds(lag);
        self.metrics.set_last_event_unix(t);
        self.write(&mut p);
    }

    /// A run took the task: the last stop report is dropped (until this one
    /// stops: a run that never records its stop was killed).
    pub fn run_started(&self, holder: &crate::state_lock::Holder) {
        let mut p = self.lock();
        p.run = Some(holder.clone());
        p.last_stop = None;
        self.write(&mut p);
    }

    /// The run stops for `reason`, described by `message`.
    pub fn run_stopped(&self, reason: StopReason, message: impl Into<String>) {
        let mut p = self.lock();
        p.last_stop = Some(StopReport {
            at_unix: unix_now(),
            reason,
            message: message.into(),
        });
        self.write(&mut p);
    }

    /// The full phase copies `estimate` (the whole phase, done tables included).
    pub fn full_estimate(&self, estimate: FullEstimate) {
        let mut p = self.lock();
        p.full_estimate = Some(estimate);
        self.write(&mut p);
    }

    /// An event changing a synced table was skipped without its changes:
    /// counted in the metrics, and `progress.json` shows it at once.
    pub fn skipped_unsupported(&self) {
        self.metrics.add_unsupported_skipped();
        let mut p = self.lock();
        self.write(&mut p);
    }

    /// The XA branches prepared and undecided at the position read.
    /// Only branches holding changes of synced tables count: the others
    /// are kept (so that their commit is known) but concern no table.
    pub fn xa_prepared(&self, held: &[crate::machine::PreparedXa]) {
        let held: Vec<_> = held.iter().filter(|b| b.row_events > 0).collect();
        let report = held
            .iter()
            .min_by_key(|b| b.since_unix)
            .map(|oldest| XaReport {
                count: held.len() as u64,
                oldest_xid: oldest.xid.clone(),
                oldest_since_unix: oldest.since_unix,
                oldest_prepared_at: oldest.prepared_at.clone(),
            });
        let mut p = self.lock();
        if p.xa_prepared == report {
            return;
        }
        p.xa_prepared = report;
        self.write(&mut p);
    }

    /// The mirror's lag now; written with the next update of the file.
    pub fn mirror(&self, report: MirrorReport) {
        self.lock().mirror = Some(report);
    }

    /// A retry is under way (`Some`) or over (`None`).
    pub fn retry(&self, report: Option<RetryReport>) {
        let mut p = self.lock();
        p.retry = report;
        self.write(&mut p);
    }

    fn write(&self, p: &mut Progress) {
        p.updated_at_unix = unix_now();
        p.metrics = self.metrics.snapshot().into();
        let tmp = self.path.with_extension("json.tmp");
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        let written = crate::private_fs::create_dir_all(dir)
            .and_then(|()| {
                serde_json::to_vec_pretty(&*p)
                    .map_err(crate::Error::serialize("the progress report"))
            })
            .and_then(|bytes| crate::private_fs::write_durably(&tmp, &bytes))
            .and_then(|()| {
                std::fs::rename(&tmp, &self.path)
                    .map_err(|e| crate::Error::io("renaming into place", &self.path, e))
            });
        if let Err(e) = written {
            warn!(path = %self.path.display(), error = %e, "could not write the progress report");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_moves_the_lag_and_a_new_run_drops_the_old_retry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Metrics::new();
        let s = StatusFile::new(dir.path(), m.clone());
        s.retry(Some(RetryReport {
            kind: "connection".into(),
            reason: "down".into(),
            since_unix: 1.0,
            attempts: 3,
            window_seconds: 60.0,
            window_key: "retry.connection_minutes".into(),
            gave_up: true,
        }));
        assert!(read(dir.path()).expect("file").retry.is_some());
        let again = StatusFile::new(dir.path(), m.clone());
        again.started("incremental");
        assert_eq!(read(dir.path()).expect("file").retry, None);
        let now = unix_now() as i64;
        again.caught_up(Some(now - 2));
        let p = read(dir.path()).expect("file");
        assert_eq!(p.last_event_unix, Some(now - 2));
        assert!(
            p.lag_seconds.is_some_and(|l| (2.0..10.0).contains(&l)),
            "{p:?}"
        );
        // An older event does not move it back.
        again.caught_up(Some(now - 50));
        assert_eq!(
            read(dir.path()).expect("file").last_event_unix,
            Some(now - 2)
        );
        assert!(m.render().contains("sync_last_event_timestamp_seconds"));
    }

    #[test]
    fn prepared_xa_branches_reach_progress_and_describe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = StatusFile::new(dir.path(), Metrics::new());
        let branch = |xid: &str, since: i64, rows: u64| crate::machine::PreparedXa {
            xid: xid.into(),
            file: format!("{xid}.xa"),
            prepared_at: "mariadb-bin.000002:669".into(),
            since_unix: since,
            row_events: rows,
        };
        s.xa_prepared(&[
            branch("X'62',X'',1", 1_700_000_100, 3),
            branch("X'61',X'',1", 1_700_000_000, 1),
            branch("X'63',X'',1", 1_600_000_000, 0),
        ]);
        let p = read(dir.path()).expect("progress");
        let x = p.xa_prepared.clone().expect("report");
        assert_eq!((x.count, x.oldest_xid.as_str()), (2, "X'61',X'',1"));
        let lines = describe(&p, "incremental", 1_700_000_060.0, None).join("\n");
        assert!(
            lines.contains("2 XA branch(es) prepared and undecided")
                && lines.contains("X'61',X'',1")
                && lines.contains("mariadb-bin.000002:669"),
            "{lines}"
        );
        s.xa_prepared(&[]);
        assert_eq!(read(dir.path()).expect("progress").xa_prepared, None);
    }

    #[test]
    fn skipped_unsupported_events_reach_progress_and_describe() {
        let dir = tempfile::tempdir().expect("dir");
        let m = Metrics::new();
        let s = StatusFile::new(dir.path(), m.clone());
        s.skipped_unsupported();
        s.skipped_unsupported();
        let p = read(dir.path()).expect("file");
        assert_eq!(p.metrics.unsupported_events_skipped, 2);
        let lines = describe(&p, "incremental", unix_now(), None);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("2 event(s) changing a synced table skipped")),
            "{lines:?}"
        );
        assert!(
            m.render()
                .contains("sync_unsupported_events_skipped_total 2")
        );
    }

    #[test]
    fn describe_tells_idle_from_current_and_shows_retries() {
        let mut p = Progress {
            phase: "incremental".into(),
            committed_at_unix: Some(1_000.0),
            last_event_unix: Some(1_000),
            lag_seconds: Some(0.4),
            updated_at_unix: 1_000.0,
            ..Progress::default()
        };
        let fresh = describe(&p, "incremental", 1_001.5, Some(1));
        assert!(
            fresh[0].starts_with("lag 1.5 s") && fresh[0].contains("heartbeat every 1 s"),
            "{fresh:?}"
        );
        let idle = describe(&p, "incremental", 1_090.0, None);
        assert!(
            idle[0].starts_with("lag 90 s") && idle[0].contains("idle"),
            "{idle:?}"
        );
        let stalled = describe(&p, "incremental", 1_090.0, Some(1));
        assert!(stalled[0].contains("stalled"), "{stalled:?}");
        p.retry = Some(RetryReport {
            kind: "connection".into(),
            reason: "source: refused".into(),
            since_unix: 1_000.0,
            attempts: 4,
            window_seconds: 43_200.0,
            window_key: "retry.connection_minutes".into(),
            gave_up: false,
        });
        let retrying = describe(&p, "incremental", 1_012.0, None);
        assert_eq!(
            retrying[2],
            "retrying a connection failure since 00:16:40 UTC (12 s, 4 attempts; `retry.connection_minutes` allows 12 h): source: refused"
        );
    }
}
