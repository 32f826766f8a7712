//! Retrying failures for as long as the task file allows (`[retry]`), the
//! way DTS does: failed connections for up to `connection_minutes` (10–1440,
//! default 720), other failures — the destination refusing a DDL or a
//! commit, a file that cannot be written — for up to `other_minutes` (1–1440,
//! default 10, shorter than the connection window).
//!
//! An outage starts at its first failure and ends at the next checkpointed
//! step (or, for the source, when the binlog stream is connected again).
//! Within its window each attempt waits twice as long as the one before
//! (from [`INITIAL_BACKOFF`] up to [`MAX_BACKOFF`], each wait up to 20 %
//! shorter at random, the last wait cut to end with the window: a
//! [`Backoff`] per outage); past the window the task stops with
//! [`Error::GaveUp`], which says what failed and for how long. Every step is
//! checkpointed before the next begins, so a retry — and a later run after
//! giving up — resumes from the last checkpoint exactly as after a crash.
//!
//! The binlog stream keeps its own reconnect loop (it resumes inside the
//! open transaction without re-reading the batch); [`Retrier::reconnect_policy`]
//! bounds it by the same connection window and reports its attempts here,
//! so status, logs and metrics see one outage whichever loop retries.
//!
//! ```
//! use sync_core::retry::{RetryKind, classify};
//! let down = sync_core::Error::from(mysql_source::Error::Io(std::io::ErrorKind::ConnectionReset.into()));
//! assert_eq!(classify(&down), Some(RetryKind::Connection));
//! assert_eq!(classify(&sync_core::Error::Mapping("bad row".into())), None);
//! ```

pub use crate::backoff::Backoff;
pub use crate::error::RetryKind;
use crate::error::{Error, Recovery, Result};
use crate::metrics::{Metrics, unix_now};
use crate::status::{RetryReport, StatusFile};
use mysql_source::replication::{ReconnectEvent, ReconnectObserver, ReconnectPolicy};
use serde::Deserialize;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{error, info, warn};

/// The first wait after a failure.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The part of each wait that [`Retrier`] leaves to chance (up to 20 %
/// shorter), so that tasks failing together do not retry together.
const RETRY_JITTER: f64 = 0.2;

/// The `[retry]` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Minutes to retry a failed connection (10–1440).
    #[serde(default = "default_connection_minutes")]
    pub connection_minutes: u64,
    /// Minutes to retry other failures (1–1440, less than `connection_minutes`).
    #[serde(default = "default_other_minutes")]
    pub other_minutes: u64,
    /// For tests: the connection window in seconds (replaces `connection_minutes`).
    #[serde(default)]
    pub connection_seconds: Option<u64>,
    /// For tests: the other window in seconds (replaces `other_minutes`).
    #[serde(default)]
    pub other_seconds: Option<u64>,
}

fn default_connection_minutes() -> u64 {
    720
}
fn default_other_minutes() -> u64 {
    10
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            connection_minutes: default_connection_minutes(),
            other_minutes: default_other_minutes(),
            connection_seconds: None,
            other_seconds: None,
        }
    }
}

impl RetryConfig {
    /// How long a failure of `kind` is retried.
    pub fn window(&self, kind: RetryKind) -> Duration {
        let (minutes, seconds) = match kind {
            RetryKind::Connection => (self.connection_minutes, self.connection_seconds),
            RetryKind::Destination => (self.other_minutes, self.other_seconds),
        };
        Duration::from_secs(seconds.unwrap_or(minutes.saturating_mul(60)))
    }

    /// The key that sets the window of `kind` (as written, or its default).
    fn key(&self, kind: RetryKind) -> &'static str {
        match kind {
            RetryKind::Connection if self.connection_seconds.is_some() => "connection_seconds",
            RetryKind::Connection => "connection_minutes",
            RetryKind::Destination if self.other_seconds.is_some() => "other_seconds",
            RetryKind::Destination => "other_minutes",
        }
    }

    /// A value that cannot work: (key path, message).
    pub(crate) fn invalid(&self) -> Option<(Vec<&'static str>, String)> {
        for (key, value, low) in [
            ("connection_minutes", self.connection_minutes, 10),
            ("other_minutes", self.other_minutes, 1),
        ] {
            if !(low..=1440).contains(&value) {
                return Some((
                    vec!["retry", key],
                    format!(
                        "`retry.{key}` must be between {low} and 1440 (minutes), but it is {value}"
                    ),
                ));
            }
        }
        for (key, value) in [
            ("connection_seconds", self.connection_seconds),
            ("other_seconds", self.other_seconds),
        ] {
            if value == Some(0) {
                return Some((
                    vec!["retry", key],
                    format!("`retry.{key}` must be at least 1"),
                ));
            }
        }
        let (conn, other) = (
            self.window(RetryKind::Connection),
            self.window(RetryKind::Destination),
        );
        if other >= conn {
            let (ck, ok) = (
                self.key(RetryKind::Connection),
                self.key(RetryKind::Destination),
            );
            return Some((
                vec!["retry", ok],
                format!(
                    "`retry.{ok}` ({}) must be shorter than `retry.{ck}` ({}): other failures are retried for less time than failed connections",
                    human(other),
                    human(conn)
                ),
            ));
        }
        None
    }
}

/// Which window `e` is retried under; `None` for failures a retry cannot
/// mend (bad data, a corrupt checkpoint, a purged binlog, a refused password,
/// a table missing in the destination, a file the task may not write). The
/// decision is [`Error::recovery`]'s, made when the failure was made.
pub fn classify(e: &Error) -> Option<RetryKind> {
    match e.recovery() {
        Recovery::Transient(kind) => Some(kind),
        Recovery::Definite => None,
    }
}

pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{} min", trim(s / 60.0))
    } else {
        format!("{} h", trim(s / 3600.0))
    }
}

fn trim(v: f64) -> String {
    let t = format!("{v:.1}");
    t.strip_suffix(".0").map(str::to_owned).unwrap_or(t)
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    since_unix: f64,
    attempts: u32,
    reason: String,
    /// The waits of this outage; a new outage starts short again.
    backoff: Backoff,
}

#[derive(Debug)]
struct Inner {
    cfg: RetryConfig,
    /// The waits each outage starts from.
    backoff: Backoff,
    metrics: Metrics,
    status: Arc<StatusFile>,
    /// One per [`RetryKind`].
    outages: Mutex<[Option<Outage>; 2]>,
}

/// Decides, waits and reports; shared by the runner and the binlog stream.
#[derive(Clone, Debug)]
pub struct Retrier {
    inner: Arc<Inner>,
}

impl Retrier {
    /// Retries per `cfg`, counting into `metrics` and reporting to `status`.
    pub fn new(cfg: RetryConfig, metrics: Metrics, status: Arc<StatusFile>) -> Self {
        // Tasks of one host or fleet differ in process id or start time.
        let seed = u64::from(std::process::id()) ^ (unix_now() * 1e9) as u64;
        let backoff = Backoff::new(INITIAL_BACKOFF, MAX_BACKOFF).with_jitter(RETRY_JITTER, seed);
        Self::with_backoff(cfg, metrics, status, backoff)
    }

    /// As [`Retrier::new`], waiting as `backoff` says.
    fn with_backoff(
        cfg: RetryConfig,
        metrics: Metrics,
        status: Arc<StatusFile>,
        backoff: Backoff,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                backoff,
                metrics,
                status,
                outages: Mutex::new([None, None]),
            }),
        }
    }

    fn outages(&self) -> MutexGuard<'_, [Option<Outage>; 2]> {
        self.inner
            .outages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `e` stopped the task: waits before the next attempt (`Ok`), or hands
    /// back why the task must stop — `e` itself when no retry can help,
    /// [`Error::GaveUp`] when its window ran out. A `stop` request ends the
    /// wait early (`Ok`: the caller sees the flag).
    ///
    /// # Errors
    /// As above.
    pub async fn failed(&self, e: Error, stop: &AtomicBool) -> Result<()> {
        let Some(kind) = classify(&e) else {
            return Err(e);
        };
        self.inner.metrics.add_error(kind.label());
        let window = self.inner.cfg.window(kind);
        let reason = e.to_string();
        let (attempt, elapsed, since_unix, delay) = {
            let mut outages = self.outages();
            let o = outages[kind.index()].get_or_insert_with(|| Outage {
                since: Instant::now(),
                since_unix: unix_now(),
                attempts: 0,
                reason: String::new(),
                backoff: self.inner.backoff.clone(),
            });
            o.attempts += 1;
            o.reason.clone_from(&reason);
            let delay = o.backoff.next_delay();
            (o.attempts, o.since.elapsed(), o.since_unix, delay)
        };
        let key = self.inner.cfg.key(kind);
        let mut report = RetryReport {
            kind: kind.label().to_owned(),
            reason,
            since_unix,
            attempts: attempt,
            window_seconds: window.as_secs_f64(),
            window_key: format!("retry.{key}"),
            gave_up: false,
        };
        if elapsed >= window {
            report.gave_up = true;
            error!(
                kind = kind.label(),
                attempts = attempt,
                retried = %human(elapsed),
                window = %human(window),
                error = %e,
                "giving up: the failure outlasted its retry window"
            );
            self.inner.status.retry(Some(report));
            return Err(Error::GaveUp {
                what: kind.what(),
                key,
                retried: elapsed,
                window,
                attempts: attempt,
                source: Box::new(e),
            });
        }
        let wait = delay.min(window.saturating_sub(elapsed));
        self.inner.metrics.add_retry(kind.label());
        warn!(
            kind = kind.label(),
            attempt,
            retried = %human(elapsed),
            window = %human(window),
            wait = ?wait,
            error = %e,
            "retrying after a failure"
        );
        self.inner.status.retry(Some(report));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = crate::run::stopped(stop) => {}
        }
        Ok(())
    }

    /// Progress was made: every outage is over.
    pub fn recovered(&self) {
        self.end(&[RetryKind::Connection, RetryKind::Destination]);
    }

    /// The source answers again (the binlog stream is connected).
    pub fn connected(&self) {
        self.end(&[RetryKind::Connection]);
    }

    fn end(&self, kinds: &[RetryKind]) {
        let ended: Vec<(RetryKind, Outage)> = {
            let mut outages = self.outages();
            kinds
                .iter()
                .filter_map(|k| outages[k.index()].take().map(|o| (*k, o)))
                .collect()
        };
        if ended.is_empty() {
            return;
        }
        for (kind, o) in &ended {
            info!(
                kind = kind.label(),
                attempts = o.attempts,
                after = %human(o.since.elapsed()),
                "recovered from a failure"
            );
        }
        let still = self.outages().iter().any(Option::is_some);
        if !still {
            self.inner.status.retry(None);
        }
    }

    /// The binlog stream's reconnect policy: no attempt limit, the
    /// connection window, this retrier told of every attempt.
    pub fn reconnect_policy(&self) -> ReconnectPolicy {
        let me = self.clone();
        ReconnectPolicy {
            observer: Some(ReconnectObserver::new(move |ev| me.on_stream(ev))),
            ..policy(&self.inner.cfg)
        }
    }

    fn on_stream(&self, ev: &ReconnectEvent<'_>) {
        match ev {
            ReconnectEvent::Retrying {
                attempt,
                cause,
                since,
                ..
            } => {
                let kind = RetryKind::Connection;
                let reason = format!("source: {cause}");
                let since_unix = {
                    let mut outages = self.outages();
                    let o = outages[kind.index()].get_or_insert_with(|| Outage {
                        since: *since,
                        since_unix: unix_now() - since.elapsed().as_secs_f64(),
                        attempts: 0,
                        reason: String::new(),
                        backoff: self.inner.backoff.clone(),
                    });
                    o.attempts += 1;
                    o.reason.clone_from(&reason);
                    // The stream waited this one itself; a retry here
                    // afterwards goes on from the longer wait.
                    let _ = o.backoff.next_delay();
                    o.since_unix
                };
                self.inner.metrics.add_error(kind.label());
                self.inner.metrics.add_retry(kind.label());
                let window = self.inner.cfg.window(kind);
                self.inner.status.retry(Some(RetryReport {
                    kind: kind.label().to_owned(),
                    reason,
                    since_unix,
                    attempts: *attempt,
                    window_seconds: window.as_secs_f64(),
                    window_key: format!("retry.{}", self.inner.cfg.key(kind)),
                    gave_up: false,
                }));
            }
            ReconnectEvent::Resumed { .. } => self.connected(),
        }
    }
}

/// The stream's reconnect policy: the waits of [`Retrier`] (without the
/// jitter: mysql-source's loop doubles on its own) and the connection window.
fn policy(cfg: &RetryConfig) -> ReconnectPolicy {
    ReconnectPolicy {
        max_attempts: u32::MAX,
        initial_backoff: INITIAL_BACKOFF,
        max_backoff: MAX_BACKOFF,
        max_elapsed: Some(cfg.window(RetryKind::Connection)),
        observer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A retrier whose waits double exactly (no jitter), so that the
    /// paused clock shows them.
    fn retrier(dir: &std::path::Path, cfg: RetryConfig) -> (Retrier, Metrics) {
        let m = Metrics::new();
        let status = Arc::new(StatusFile::new(dir, m.clone()));
        let backoff = Backoff::new(INITIAL_BACKOFF, MAX_BACKOFF);
        (Retrier::with_backoff(cfg, m.clone(), status, backoff), m)
    }

    fn down() -> Error {
        Error::from(mysql_source::Error::Io(
            std::io::ErrorKind::ConnectionRefused.into(),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn backs_off_within_the_window_then_gives_up_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = RetryConfig {
            connection_seconds: Some(20),
            other_seconds: Some(5),
            ..RetryConfig::default()
        };
        let (r, m) = retrier(dir.path(), cfg);
        let stop = AtomicBool::new(false);
        let t0 = Instant::now();
        let mut waits = Vec::new();
        let err = loop {
            let before = Instant::now();
            match r.failed(down(), &stop).await {
                Ok(()) => waits.push(before.elapsed().as_secs()),
                Err(e) => break e,
            }
        };
        // 1 + 2 + 4 + 8 = 15 s, then the last wait is cut to the window's end.
        assert_eq!(waits, [1, 2, 4, 8, 5]);
        assert_eq!(t0.elapsed().as_secs(), 20);
        let msg = err.to_string();
        assert!(
            msg.contains("gave up after retrying a failed connection for 20 s")
                && msg.contains("retry.connection_seconds")
                && msg.to_lowercase().contains("connection refused")
                && msg.contains("resumes"),
            "{msg}"
        );
        let text = m.render();
        assert!(
            text.contains("sync_retries_total{kind=\"connection\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("sync_errors_total{kind=\"connection\"} 6"),
            "{text}"
        );
        let report = crate::status::read(dir.path())
            .and_then(|p| p.retry)
            .expect("a retry report");
        assert!(report.gave_up && report.attempts == 6, "{report:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn progress_ends_an_outage_and_fatal_errors_are_not_retried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = RetryConfig {
            connection_seconds: Some(20),
            other_seconds: Some(5),
            ..RetryConfig::default()
        };
        let (r, _) = retrier(dir.path(), cfg);
        let stop = AtomicBool::new(false);
        for _ in 0..3 {
            r.failed(down(), &stop).await.expect("within the window");
        }
        assert!(
            crate::status::read(dir.path())
                .and_then(|p| p.retry)
                .is_some()
        );
        r.recovered();
        assert_eq!(crate::status::read(dir.path()).and_then(|p| p.retry), None);
        // A new outage starts with a short wait again.
        let t0 = Instant::now();
        r.failed(down(), &stop).await.expect("new outage");
        assert_eq!(t0.elapsed().as_secs(), 1);
        let fatal = r.failed(Error::Mapping("bad".into()), &stop).await;
        assert!(matches!(fatal, Err(Error::Mapping(_))));
    }

    #[test]
    fn windows_are_validated() {
        let ok = RetryConfig::default();
        assert_eq!(
            ok.window(RetryKind::Connection),
            Duration::from_secs(720 * 60)
        );
        assert!(ok.invalid().is_none());
        let low = RetryConfig {
            connection_minutes: 5,
            ..RetryConfig::default()
        };
        let (key, msg) = low.invalid().expect("too low");
        assert_eq!(key, ["retry", "connection_minutes"]);
        assert!(msg.contains("between 10 and 1440"), "{msg}");
        let inverted = RetryConfig {
            connection_minutes: 15,
            other_minutes: 20,
            ..RetryConfig::default()
        };
        let (key, msg) = inverted.invalid().expect("inverted");
        assert_eq!(key, ["retry", "other_minutes"]);
        assert!(
            msg.contains("shorter than `retry.connection_minutes` (15 min)"),
            "{msg}"
        );
        assert_eq!(human(Duration::from_secs(43_200)), "12 h");
        assert_eq!(human(Duration::from_secs(750)), "12.5 min");
    }

    #[tokio::test]
    async fn only_what_can_heal_is_retried() {
        use odps_tunnel::ServerError;
        use odps_tunnel::error::ErrorKind;
        let mc = |status: u16, code: &str| {
            Error::from(odps_tunnel::Error::from(ServerError::new(
                status, code, "x",
            )))
        };
        let mc_kind = |kind: ErrorKind| Error::from(odps_tunnel::Error::from(kind));
        let sql = |message: &str| {
            mc_kind(ErrorKind::Sql {
                instance_id: "i1".into(),
                message: message.into(),
            })
        };
        let io = |kind: std::io::ErrorKind| Error::io("writing", "/w/t", kind.into());
        let mysql = |code: u16| {
            Error::from(mysql_source::Error::Server {
                code,
                state: "HY000".into(),
                message: "x".into(),
            })
        };
        let source = |e: mysql_source::Error| Error::from(e);
        let decode = || {
            Error::decode(
                crate::error::BinlogAt::new("mysql-bin.000003", 4711),
                "rows event",
                binlog_parser::Error::MissingTableMap {
                    offset: 4711,
                    table_id: 9,
                },
            )
        };
        let cancelled = {
            let task = tokio::spawn(std::future::pending::<()>());
            task.abort();
            task.await.expect_err("aborted")
        };
        let d = Some(RetryKind::Destination);
        let c = Some(RetryKind::Connection);
        for (e, want) in [
            // MaxCompute, by odps-tunnel's is_auth / is_retryable.
            (mc(503, "ServiceUnavailable"), d),
            (mc(500, "InternalServerError"), d),
            (mc(429, "Throttled"), d),
            (mc(404, "NoSuchUpload"), d),
            (mc(409, "InvalidStatusChange"), d),
            (mc(404, "NoSuchTable"), None),
            (mc(403, "AccessDenied"), None),
            (mc(401, "Unauthorized"), None),
            (mc(403, "RequestTimeTooSkewed"), None),
            (mc(400, "InvalidSignature"), None),
            (mc(400, "InvalidArgument"), None),
            (mc_kind(ErrorKind::Transport("connection reset".into())), c),
            (mc_kind(ErrorKind::Timeout("upload".into())), c),
            (mc_kind(ErrorKind::Protocol("a proxy's page".into())), d),
            (mc_kind(ErrorKind::InvalidArgument("bad".into())), None),
            (sql("ODPS-0010000: System internal error"), d),
            (sql("ODPS-0130131: Table not found"), None),
            // Files, by the kind of the std::io::Error.
            (io(std::io::ErrorKind::StorageFull), d),
            (io(std::io::ErrorKind::Interrupted), d),
            (io(std::io::ErrorKind::PermissionDenied), None),
            (io(std::io::ErrorKind::NotADirectory), None),
            // MySQL, by mysql-source's is_auth / is_transient.
            (
                source(mysql_source::Error::Io(
                    std::io::ErrorKind::ConnectionReset.into(),
                )),
                c,
            ),
            (
                source(mysql_source::Error::Unreachable {
                    addr: "db:3306".into(),
                    source: std::io::ErrorKind::ConnectionRefused.into(),
                }),
                c,
            ),
            (mysql(2013), c),
            (mysql(1205), c),
            (mysql(1213), c),
            (mysql(1040), c),
            (mysql(1045), None),
            (mysql(1227), None),
            (
                source(mysql_source::Error::AccessDenied {
                    user: "sync".into(),
                    message: "x".into(),
                }),
                None,
            ),
            (mysql(1146), None),
            (
                source(mysql_source::Error::BinlogPurged {
                    file: "mysql-bin.000001".into(),
                    message: "x".into(),
                }),
                None,
            ),
            // The task's own failures are definite by their type.
            (Error::Config("x".into()), None),
            (Error::Mapping("x".into()), None),
            (decode(), None),
            (
                Error::BinlogEvent {
                    at: crate::error::BinlogAt::new("mysql-bin.000003", 4),
                    message: "x".into(),
                },
                None,
            ),
            (Error::ReplayDiverged("x".into()), None),
            (Error::Transform("x".into()), None),
            (
                Error::serialize("checkpoint state")(
                    serde_json::from_str::<u8>("x").expect_err("not json"),
                ),
                None,
            ),
            (
                Error::unreadable("the checkpoint's schema of d.t", "x"),
                None,
            ),
            (Error::Destination("x".into()), None),
            (
                Error::Join {
                    what: "commit",
                    source: cancelled,
                },
                None,
            ),
            (Error::Internal("x".into()), None),
        ] {
            assert_eq!(classify(&e), want, "{e}");
            assert_eq!(e.is_transient(), want.is_some(), "{e}");
        }
        // A refused login stays definite even when the reply also says
        // "retryable" (a 5xx status with an access-denied code).
        assert_eq!(classify(&mc(503, "AccessDenied")), None);
        // A decode error says where it is; one placed later keeps the place.
        let text = decode().to_string();
        assert!(
            text.starts_with("binlog mysql-bin.000003:4711: cannot decode the rows event:"),
            "{text}"
        );
        let unplaced = Error::decode(
            crate::error::BinlogAt::default(),
            "row",
            binlog_parser::Error::MissingTableMap {
                offset: 0,
                table_id: 9,
            },
        );
        assert!(unplaced.to_string().contains("(position not known)"));
        let placed = unplaced.at_binlog("mysql-bin.000007", 120).to_string();
        assert!(
            placed.starts_with("binlog mysql-bin.000007:120: cannot decode the row:"),
            "{placed}"
        );
        assert!(
            Error::Internal("x".into())
                .to_string()
                .contains("a bug in the sync task")
        );
        let denied = io(std::io::ErrorKind::PermissionDenied).to_string();
        assert!(
            denied.contains("fix: let the task's user write /w/t"),
            "{denied}"
        );
        assert!(
            !io(std::io::ErrorKind::StorageFull)
                .to_string()
                .contains("fix:")
        );
    }
}
