//! What the task is doing, for people and for Prometheus.
//!
//! [`Metrics`] is a small registry the runner updates at its commit points
//! (never per row): phase, rows and bytes per table, lag, retries and errors.
//! [`Metrics::render`] writes the Prometheus text format; [`serve`] exposes
//! it over HTTP at `/metrics` (and `/healthz`) on a configurable address.
//!
//! The endpoint reads no request bodies; a client gets
//! [`HEADER_READ_TIMEOUT`] to send its request headers before the
//! connection is closed, and a failing `accept()` (e.g. out of file
//! descriptors) pauses the server for 100 ms, doubling up to 1 s, instead
//! of spinning.
//!
//! ```
//! use sync_core::metrics::Metrics;
//! let m = Metrics::new();
//! m.set_phase("incremental");
//! m.add_rows("shop.orders", "incremental", 120, 9_600);
//! m.set_lag_seconds(0.8);
//! let text = m.render();
//! assert!(text.contains("sync_rows_total{table=\"shop.orders\",phase=\"incremental\"} 120"));
//! assert!(text.contains("sync_phase{phase=\"incremental\"} 1"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The phases a task reports, in order (one of them is 1, the others 0).
pub const PHASES: [&str; 6] = [
    "precheck",
    "schema_sync",
    "positioning",
    "full_sync",
    "incremental",
    "finished",
];

/// How far back the per-second rates look.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// How long [`serve`] gives a client to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct State {
    phase: String,
    /// (table, phase) → (rows, bytes).
    moved: BTreeMap<(String, String), (u64, u64)>,
    /// kind → count.
    retries: BTreeMap<String, u64>,
    /// kind → count.
    errors: BTreeMap<String, u64>,
    /// (table, column) → values over the destination's field size limit.
    oversized: BTreeMap<(String, String), u64>,
    /// Events skipped under `[sync] unsupported_events = "skip"`.
    unsupported_skipped: u64,
    /// XA branches committed and rolled back (their changes dropped).
    xa_committed: u64,
    xa_rolled_back: u64,
    /// XA branches prepared and undecided at the position read.
    xa_prepared: u64,
    lag_seconds: Option<f64>,
    /// `[destination] mirror`: rows waiting, last commit (Unix seconds).
    mirror: Option<(u64, Option<i64>)>,
    last_event_unix: Option<i64>,
    last_commit_unix: Option<f64>,
    failed: bool,
    /// (when, total rows, total bytes), oldest first, within [`RATE_WINDOW`].
    samples: Vec<(Instant, u64, u64)>,
}

/// The registry. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Metrics {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A point-in-time copy of the headline figures (for `status` and alerts).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Current phase name.
    pub phase: String,
    /// Rows moved so far, all tables and phases.
    pub rows: u64,
    /// Bytes moved so far.
    pub bytes: u64,
    /// Rows per second over the last few seconds.
    pub rows_per_second: f64,
    /// Bytes per second over the last few seconds.
    pub bytes_per_second: f64,
    /// Seconds from the source event to its commit, at the last commit.
    pub lag_seconds: Option<f64>,
    /// Retries so far, all kinds.
    pub retries: u64,
    /// Errors so far, all kinds.
    pub errors: u64,
    /// Events changing a synced table skipped without their changes
    /// (`[sync] unsupported_events = "skip"`).
    pub unsupported_events_skipped: u64,
    /// Whether the task has failed.
    pub failed: bool,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain counters
        // behind: still fine to read and update.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The task entered `phase` (see [`PHASES`]).
    pub fn set_phase(&self, phase: &str) {
        self.lock().phase = phase.to_owned();
    }

    /// `rows` rows of `bytes` bytes of `table` were committed in `phase`.
    pub fn add_rows(&self, table: &str, phase: &str, rows: u64, bytes: u64) {
        let mut s = self.lock();
        let e = s
            .moved
            .entry((table.to_owned(), phase.to_owned()))
            .or_default();
        e.0 += rows;
        e.1 += bytes;
        let now = Instant::now();
        let (total_rows, total_bytes) = totals(&s);
        s.samples.push((now, total_rows, total_bytes));
        let keep_from = s
            .samples
            .iter()
            .position(|(t, ..)| now.duration_since(*t) <= RATE_WINDOW)
            .unwrap_or(0);
        // Keep one sample older than the window as the rate's baseline.
        s.samples.drain(..keep_from.saturating_sub(1));
        s.last_commit_unix = Some(unix_now());
    }

    /// The lag at the last commit: source event time to commit time.
    pub fn set_lag_seconds(&self, lag: f64) {
        self.lock().lag_seconds = Some(lag.max(0.0));
    }

    /// Every change up to a source event of this Unix time is committed.
    pub fn set_last_event_unix(&self, t: i64) {
        self.lock().last_event_unix = Some(t);
    }

    /// One retry of `kind` (`connection` or `destination`).
    pub fn add_retry(&self, kind: &str) {
        *self.lock().retries.entry(kind.to_owned()).or_default() += 1;
    }

    /// A value of `table`.`column` over the destination's field size limit
    /// was written per `[destination] oversized_values`.
    pub fn add_oversized(&self, table: &str, column: &str) {
        *self
            .lock()
            .oversized
            .entry((table.to_owned(), column.to_owned()))
            .or_default() += 1;
    }

    /// Values over the field size limit written so far, all tables.
    pub fn oversized(&self) -> u64 {
        self.lock().oversized.values().sum()
    }

    /// One event changing a synced table was skipped without its changes
    /// (`[sync] unsupported_events = "skip"`).
    pub fn add_unsupported_skipped(&self) {
        self.lock().unsupported_skipped += 1;
    }

    /// One prepared XA branch committed: its changes landed.
    pub fn add_xa_committed(&self) {
        self.lock().xa_committed += 1;
    }

    /// One prepared XA branch rolled back: its changes were dropped.
    pub fn add_xa_rolled_back(&self) {
        self.lock().xa_rolled_back += 1;
    }

    /// How many XA branches are prepared and undecided.
    pub fn set_xa_prepared(&self, n: u64) {
        self.lock().xa_prepared = n;
    }

    /// The mirror's lag: `t_log` rows not yet in the mirror tables, and
    /// the Unix time of the last mirror commit.
    pub fn set_mirror(&self, pending_rows: u64, last_commit_unix: Option<i64>) {
        self.lock().mirror = Some((pending_rows, last_commit_unix));
    }

    /// One error of `kind`.
    pub fn add_error(&self, kind: &str) {
        *self.lock().errors.entry(kind.to_owned()).or_default() += 1;
    }

    /// The task gave up.
    pub fn set_failed(&self) {
        self.lock().failed = true;
    }

    /// The headline figures now.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        let (rows, bytes) = totals(&s);
        let (rows_per_second, bytes_per_second) = rates(&s.samples, Instant::now());
        Snapshot {
            phase: s.phase.clone(),
            rows,
            bytes,
            rows_per_second,
            bytes_per_second,
            lag_seconds: s.lag_seconds,
            retries: s.retries.values().sum(),
            errors: s.errors.values().sum(),
            unsupported_events_skipped: s.unsupported_skipped,
            failed: s.failed,
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let s = self.lock();
        let mut out = String::new();
        family(
            &mut out,
            "sync_phase",
            "gauge",
            "1 for the phase the task is in.",
        );
        for p in PHASES {
            let on = u8::from(s.phase == p);
            let _ = writeln!(out, "sync_phase{{phase=\"{p}\"}} {on}");
        }
        family(
            &mut out,
            "sync_rows_total",
            "counter",
            "Rows committed to the destination.",
        );
        for ((t, p), (rows, _)) in &s.moved {
            let _ = writeln!(
                out,
                "sync_rows_total{{table=\"{}\",phase=\"{p}\"}} {rows}",
                escape(t)
            );
        }
        family(
            &mut out,
            "sync_bytes_total",
            "counter",
            "Bytes (Arrow memory size) committed to the destination.",
        );
        for ((t, p), (_, bytes)) in &s.moved {
            let _ = writeln!(
                out,
                "sync_bytes_total{{table=\"{}\",phase=\"{p}\"}} {bytes}",
                escape(t)
            );
        }
        let (rps, bps) = rates(&s.samples, Instant::now());
        family(
            &mut out,
            "sync_rows_per_second",
            "gauge",
            "Rows committed per second over the last 10 seconds.",
        );
        let _ = writeln!(out, "sync_rows_per_second {rps}");
        family(
            &mut out,
            "sync_bytes_per_second",
            "gauge",
            "Bytes committed per second over the last 10 seconds.",
        );
        let _ = writeln!(out, "sync_bytes_per_second {bps}");
        if let Some((pending, last)) = s.mirror {
            family(
                &mut out,
                "sync_mirror_pending_rows",
                "gauge",
                "t_log rows committed and not yet committed into the mirror tables.",
            );
            let _ = writeln!(out, "sync_mirror_pending_rows {pending}");
            if let Some(t) = last {
                family(
                    &mut out,
                    "sync_mirror_last_commit_timestamp_seconds",
                    "gauge",
                    "When the last mirror commit happened (Unix seconds).",
                );
                let _ = writeln!(out, "sync_mirror_last_commit_timestamp_seconds {t}");
            }
        }
        if let Some(lag) = s.lag_seconds {
            family(
                &mut out,
                "sync_lag_seconds",
                "gauge",
                "Source event time to destination commit, at the last commit.",
            );
            let _ = writeln!(out, "sync_lag_seconds {lag}");
        }
        if let Some(t) = s.last_event_unix {
            family(
                &mut out,
                "sync_last_event_timestamp_seconds",
                "gauge",
                "Binlog time of the newest source event whose changes are all committed.",
            );
            let _ = writeln!(out, "sync_last_event_timestamp_seconds {t}");
        }
        if let Some(t) = s.last_commit_unix {
            family(
                &mut out,
                "sync_last_commit_timestamp_seconds",
                "gauge",
                "Unix time of the last destination commit.",
            );
            let _ = writeln!(out, "sync_last_commit_timestamp_seconds {t}");
        }
        family(
            &mut out,
            "sync_retries_total",
            "counter",
            "Retries, by kind.",
        );
        for (k, n) in &s.retries {
            let _ = writeln!(out, "sync_retries_total{{kind=\"{}\"}} {n}", escape(k));
        }
        family(&mut out, "sync_errors_total", "counter", "Errors, by kind.");
        for (k, n) in &s.errors {
            let _ = writeln!(out, "sync_errors_total{{kind=\"{}\"}} {n}", escape(k));
        }
        family(
            &mut out,
            "sync_unsupported_events_skipped_total",
            "counter",
            "Events changing a synced table skipped without their changes \
             (sync.unsupported_events = skip).",
        );
        let _ = writeln!(
            out,
            "sync_unsupported_events_skipped_total {}",
            s.unsupported_skipped
        );
        family(
            &mut out,
            "sync_xa_branches_decided_total",
            "counter",
            "Prepared XA branches the source decided: committed (changes landed) or rolled back (dropped).",
        );
        let _ = writeln!(
            out,
            "sync_xa_branches_decided_total{{decision=\"commit\"}} {}",
            s.xa_committed
        );
        let _ = writeln!(
            out,
            "sync_xa_branches_decided_total{{decision=\"rollback\"}} {}",
            s.xa_rolled_back
        );
        family(
            &mut out,
            "sync_xa_prepared_branches",
            "gauge",
            "XA branches prepared and undecided with changes of synced tables, held until XA COMMIT.",
        );
        let _ = writeln!(out, "sync_xa_prepared_branches {}", s.xa_prepared);
        family(
            &mut out,
            "sync_oversized_values_total",
            "counter",
            "Values over the destination's field size limit, written per `[destination] oversized_values`.",
        );
        for ((t, c), n) in &s.oversized {
            let _ = writeln!(
                out,
                "sync_oversized_values_total{{table=\"{}\",column=\"{}\"}} {n}",
                escape(t),
                escape(c)
            );
        }
        family(
            &mut out,
            "sync_failed",
            "gauge",
            "1 once the task has given up.",
        );
        let _ = writeln!(out, "sync_failed {}", u8::from(s.failed));
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn totals(s: &State) -> (u64, u64) {
    s.moved
        .values()
        .fold((0, 0), |(r, b), (r2, b2)| (r + r2, b + b2))
}

fn rates(samples: &[(Instant, u64, u64)], now: Instant) -> (f64, f64) {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return (0.0, 0.0);
    };
    // Quiet since the last commit: the rate decays towards zero.
    let span = now.duration_since(first.0).as_secs_f64();
    if span <= 0.0 || samples.len() < 2 {
        return (0.0, 0.0);
    }
    (
        (last.1 - first.1) as f64 / span,
        (last.2 - first.2) as f64 / span,
    )
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Label values: backslash, quote and newline escaped as the format asks.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `metrics` at `http://ADDR/metrics` (and `/healthz`) until the
/// returned handle is aborted or dropped with the runtime. Clients have
/// [`HEADER_READ_TIMEOUT`] to send their request headers.
///
/// # Errors
/// The address cannot be bound (in use, not local, no permission).
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(addr, metrics, HEADER_READ_TIMEOUT).await
}

/// As [`serve`], closing a connection whose request headers have not all
/// arrived within `header_read_timeout`.
///
/// # Errors
/// The address cannot be bound (in use, not local, no permission).
pub async fn serve_with(
    addr: SocketAddr,
    metrics: Metrics,
    header_read_timeout: Duration,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    backoff.reset();
                    stream
                }
                Err(e) => {
                    // E.g. EMFILE: retrying at once would spin on the same
                    // error; pause, longer while it lasts.
                    let pause = backoff.next_delay();
                    tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "metrics endpoint: accept failed; pausing");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move {
                        let (status, kind, body) = match req.uri().path() {
                            "/metrics" => (
                                StatusCode::OK,
                                "text/plain; version=0.0.4; charset=utf-8",
                                metrics.render(),
                            ),
                            "/healthz" if !metrics.snapshot().failed => {
                                (StatusCode::OK, "text/plain", "ok\n".to_owned())
                            }
                            "/healthz" => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                "text/plain",
                                "failed\n".to_owned(),
                            ),
                            _ => (
                                StatusCode::NOT_FOUND,
                                "text/plain",
                                "not found: try /metrics or /healthz\n".to_owned(),
                            ),
                        };
                        Response::builder()
                            .status(status)
                            .header("content-type", kind)
                            .body(Full::new(Bytes::from(body)))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    // Request headers are small here: refuse big ones early.
                    .max_buf_size(MAX_REQUEST_HEAD);
                if let Err(e) = builder.serve_connection(io, service).await {
                    tracing::debug!(error = %e, "metrics connection ended");
                }
            });
        }
    });
    Ok((bound, handle))
}

/// Read buffer of a metrics connection, so the most a request head may take
/// (hyper's minimum is 8 KiB).
const MAX_REQUEST_HEAD: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_family_and_escapes_labels() {
        let m = Metrics::new();
        m.set_phase("full_sync");
        m.add_rows("db.\"odd\"", "full_sync", 10, 100);
        m.add_rows("db.t", "full_sync", 5, 50);
        m.add_retry("connection");
        m.add_retry("connection");
        m.add_error("destination");
        m.add_unsupported_skipped();
        let text = m.render();
        for family in [
            "sync_phase",
            "sync_rows_total",
            "sync_bytes_total",
            "sync_rows_per_second",
            "sync_bytes_per_second",
            "sync_last_commit_timestamp_seconds",
            "sync_retries_total",
            "sync_errors_total",
            "sync_unsupported_events_skipped_total",
            "sync_failed",
        ] {
            assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
        }
        assert!(text.contains("sync_rows_total{table=\"db.\\\"odd\\\"\",phase=\"full_sync\"} 10"));
        assert!(text.contains("sync_retries_total{kind=\"connection\"} 2"));
        assert!(text.contains("\nsync_unsupported_events_skipped_total 1\n"));
        assert!(text.contains("sync_phase{phase=\"full_sync\"} 1"));
        assert!(text.contains("sync_phase{phase=\"incremental\"} 0"));
        let snap = m.snapshot();
        assert_eq!(
            (snap.rows, snap.bytes, snap.retries, snap.errors),
            (15, 150, 2, 1)
        );
        assert_eq!(snap.unsupported_events_skipped, 1);
    }

    #[tokio::test]
    async fn a_client_stalling_in_its_headers_is_disconnected() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (addr, server) = serve_with(
            "127.0.0.1:0".parse().expect("addr"),
            Metrics::new(),
            Duration::from_secs(1),
        )
        .await
        .expect("bind");
        let waited = tokio::task::spawn_blocking(move || {
            sync_testkit::probe::stalled_head_closed_after(addr, b"GET /metr")
        })
        .await
        .expect("probe");
        assert!(
            waited.is_some_and(|w| w >= Duration::from_millis(900) && w < Duration::from_secs(5)),
            "closed after {waited:?}"
        );
        // Others are still served.
        let mut ok = tokio::net::TcpStream::connect(addr).await.expect("connect");
        ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        let mut resp = String::new();
        ok.read_to_string(&mut resp).await.expect("read");
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        server.abort();
    }

    #[test]
    fn rates_come_from_the_window() {
        let t0 = Instant::now();
        let samples = [(t0, 0, 0), (t0 + Duration::from_secs(2), 200, 2_000)];
        let (r, b) = rates(&samples, t0 + Duration::from_secs(4));
        assert!((r - 50.0).abs() < 1e-9 && (b - 500.0).abs() < 1e-9);
        assert_eq!(rates(&samples[..1], t0), (0.0, 0.0));
    }
}
