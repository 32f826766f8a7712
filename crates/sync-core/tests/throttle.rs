//! `[throttle]` against the sandbox MariaDB: each limit (full phase: chunk
//! queries/s, rows/s, MB/s; incremental: rows/s, MB/s) is set so that the
//! run takes about 25 s, and the rate achieved between the first and the
//! last commit must stay within 10% above the limit. The limit is an upper
//! bound: the lower side (90% of the limit) is only checked when the same
//! work unthrottled ran at least three times faster than the limit.
//!
//! The achieved rates are printed (`cargo test ... -- --nocapture`).
//!
//! A test binary of its own (see Cargo.toml): other tests in the same
//! process would load the CPU and write to the binlog it measures.

use mysql_async::prelude::Queryable;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sync_core::progress::FullSyncProgress;
use sync_core::run::{RunOptions, TaskRunner};
use sync_core::sink::local::LocalWarehouse;
use tokio::sync::Barrier;

/// Commits as (when, units so far): chunks for the full phase's query
/// limit, rows otherwise.
#[derive(Default)]
struct Commits(Mutex<Vec<(Instant, u64, u64)>>);

impl Commits {
    /// Units per second between the first and the last commit, over `unit`
    /// (0: chunks, 1: rows).
    fn rate(&self, unit: usize) -> f64 {
        let c = self.0.lock().expect("commits");
        let (Some(first), Some(last)) = (c.first(), c.last()) else {
            return 0.0;
        };
        let pick = |e: &(Instant, u64, u64)| if unit == 0 { e.1 } else { e.2 };
        let secs = last.0.duration_since(first.0).as_secs_f64();
        (pick(last) - pick(first)) as f64 / secs.max(1e-9)
    }

    /// Units committed in all (0: chunks, 1: rows).
    fn total(&self, unit: usize) -> f64 {
        let c = self.0.lock().expect("commits");
        c.last()
            .map_or(0.0, |e| if unit == 0 { e.1 } else { e.2 } as f64)
    }

    fn seconds(&self) -> f64 {
        let c = self.0.lock().expect("commits");
        match (c.first(), c.last()) {
            (Some(a), Some(b)) => b.0.duration_since(a.0).as_secs_f64(),
            _ => 0.0,
        }
    }

    fn push(&self, chunks: u64, rows: u64) {
        self.0
            .lock()
            .expect("commits")
            .push((Instant::now(), chunks, rows));
    }
}

/// Records every full-phase chunk commit with the running totals.
struct FullCommits(Arc<Commits>, Mutex<(u64, u64)>);

impl FullSyncProgress for FullCommits {
    fn table_started(&self, _: &str, _: u64, _: u64, _: u64) {}
    fn chunk_committed(&self, _: &str, rows: u64, _: u64, _: u64, _: u64) {
        let mut t = self.1.lock().expect("totals");
        t.0 += 1;
        t.1 += rows;
        self.0.push(t.0, t.1);
    }
    fn table_finished(&self, _: &str, _: u64) {}
}

async fn source() -> mysql_async::Conn {
    let url = sync_testkit::mysql_url();
    mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect")
}

/// A task over `db` into `dir`; `chunk_rows` in `[sync]`, `extra` after it.
fn runner(
    dir: &std::path::Path,
    name: &str,
    db: &str,
    server_id: u32,
    chunk_rows: u64,
    extra: &str,
) -> TaskRunner<LocalWarehouse> {
    let text = format!(
        "[source]\nurl = \"{}\"\nserver_id = {server_id}\n[destination]\nkind = \"local\"\npath = \"{}\"\n\
         [objects]\ninclude = [\"{db}.*\"]\n[sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
         state_dir = \"{}\"\nparallelism = 2\nchunk_rows = {chunk_rows}\nflush_interval_ms = 500\n{extra}",
        sync_testkit::mysql_url(),
        dir.join(format!("{name}-warehouse")).display(),
        dir.join(format!("{name}-state")).display(),
    );
    let cfg = sync_core::taskfile::parse(&text, "task.toml").expect("task file");
    let sink = LocalWarehouse::new(dir.join(format!("{name}-warehouse")));
    TaskRunner::new(cfg, sink).expect("runner")
}

async fn run_to_end(r: &TaskRunner<LocalWarehouse>) {
    let opts = RunOptions {
        exit_when_caught_up: true,
        ..RunOptions::default()
    };
    r.run(&opts).await.expect("run");
}

/// Runs the full phase of `db` in chunks of `chunk_rows` unthrottled, then
/// with `throttle`; returns (unthrottled, throttled) rates of `unit` (0:
/// chunk queries, 1: rows) and the throttled seconds.
async fn full_rates(
    barrier: &Barrier,
    db: &str,
    server_id: u32,
    chunk_rows: u64,
    throttle: &str,
    unit: usize,
) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut out = Vec::new();
    for (name, extra) in [("free", String::new()), ("limited", throttle.to_owned())] {
        if name == "limited" {
            barrier.wait().await;
        }
        let commits = Arc::new(Commits::default());
        let progress = Arc::new(FullCommits(commits.clone(), Mutex::new((0, 0))));
        let r = runner(dir.path(), name, db, server_id, chunk_rows, &extra).with_progress(progress);
        let t0 = Instant::now();
        run_to_end(&r).await;
        let wall = t0.elapsed().as_secs_f64();
        out.push((
            commits.rate(unit),
            commits.seconds(),
            commits.total(unit) / wall,
        ));
    }
    // The unthrottled rate over the whole run (start-up included): a floor.
    (out[0].2, out[1].0, out[1].1)
}

/// One limit's figures: (what, limit, unthrottled, achieved, seconds).
struct Measured(&'static str, f64, f64, f64, f64);

impl Measured {
    fn new(what: &'static str, limit: f64, unthrottled: f64, achieved: f64, seconds: f64) -> Self {
        Self(what, limit, unthrottled, achieved, seconds)
    }

    /// Problems with the figures, as the module docs define them.
    fn problems(&self) -> Vec<String> {
        let Self(what, limit, unthrottled, achieved, seconds) = *self;
        let mut out = Vec::new();
        if seconds < 15.0 {
            out.push(format!(
                "{what}: the run was too short to measure ({seconds:.1} s)"
            ));
        }
        if achieved > limit * 1.1 {
            out.push(format!(
                "{what}: {achieved:.2} is over the limit {limit} by more than 10%"
            ));
        }
        if unthrottled >= 3.0 * limit && achieved < limit * 0.9 {
            out.push(format!(
                "{what}: {achieved:.2} is under 90% of the limit {limit} (unthrottled {unthrottled:.1})"
            ));
        }
        out
    }
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self(what, limit, unthrottled, achieved, seconds) = *self;
        write!(
            f,
            "{what}: limit {limit}, achieved {achieved:.3} over {seconds:.1} s ({:.1}% of the limit), unthrottled {unthrottled:.1}",
            achieved / limit * 100.0
        )
    }
}

/// All five limits at once (each run mostly waits on its limiter), so the
/// whole measurement takes about half a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_limit_holds_within_ten_percent() {
    // The throttled runs start together, after every fill and unthrottled
    // run: those would stall them (a big transaction holds the binlog).
    let b = Barrier::new(5);
    let all = tokio::join!(
        full_rows(&b),
        full_queries(&b),
        full_megabytes(&b),
        incremental_rows(&b),
        incremental_megabytes(&b)
    );
    let all = [all.0, all.1, all.2, all.3, all.4];
    for m in &all {
        println!("{m}");
    }
    let problems: Vec<String> = all.iter().flat_map(Measured::problems).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Held by every write to the source while a test reads the binlog size of
/// its own changes: the five measurements share one server.
static SOURCE_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn fill(db: &str, ddl: &str, insert: &str) {
    let _alone = SOURCE_WRITES.lock().await;
    let mut c = source().await;
    c.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; {ddl}; {insert}"
    ))
    .await
    .expect("fill");
    c.disconnect().await.expect("disconnect");
}

async fn full_rows(barrier: &Barrier) -> Measured {
    let db = "throttle_full_rows";
    fill(
        db,
        &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT NOT NULL)"),
        &format!("INSERT INTO {db}.t SELECT seq, seq FROM mysql.seq_1_to_30000"),
    )
    .await;
    let limit = 1_200.0;
    let (free, got, secs) = full_rates(
        barrier,
        db,
        7301,
        1_000,
        &format!("[throttle]\nfull_rows_per_second = {limit}\n"),
        1,
    )
    .await;
    Measured::new("full rows/s", limit, free, got, secs)
}

async fn full_queries(barrier: &Barrier) -> Measured {
    let db = "throttle_full_qps";
    fill(
        db,
        &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT NOT NULL)"),
        &format!("INSERT INTO {db}.t SELECT seq, seq FROM mysql.seq_1_to_2500"),
    )
    .await;
    // Chunks of 20 rows: 126 chunk queries.
    let limit = 5.0;
    let (free, got, secs) = full_rates(
        barrier,
        db,
        7302,
        20,
        &format!("[throttle]\nfull_qps = {limit}\n"),
        0,
    )
    .await;
    Measured::new("full queries/s", limit, free, got, secs)
}

async fn full_megabytes(barrier: &Barrier) -> Measured {
    let db = "throttle_full_mb";
    fill(
        db,
        &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, payload VARCHAR(1000) NOT NULL)"),
        &format!("INSERT INTO {db}.t SELECT seq, REPEAT('x', 1000) FROM mysql.seq_1_to_25000"),
    )
    .await;
    let limit_mb = 1.0;
    let (free, got, secs) = full_rates(
        barrier,
        db,
        7303,
        1_000,
        &format!("[throttle]\nfull_mb_per_second = {limit_mb}\n"),
        1,
    )
    .await;
    // A row's text-protocol payload: the id (1 length byte + up to 5
    // digits) and the 1,000-byte string (3 length bytes).
    let row_bytes = 1_000.0 + 3.0 + 6.0;
    let mb = |rows: f64| rows * row_bytes / 1e6;
    Measured::new("full MB/s", limit_mb, mb(free), mb(got), secs)
}

/// The incremental phase: two tasks positioned on the empty table, then
/// `rows` inserted; the unthrottled task catches up first, then the
/// throttled one. Returns (unthrottled, throttled) rows/s, the throttled
/// seconds, and the binlog bytes per row change.
async fn incremental_rates(
    barrier: &Barrier,
    db: &str,
    server_ids: (u32, u32),
    ddl: &str,
    insert: &str,
    throttle: &str,
) -> (f64, f64, f64, f64) {
    fill(db, ddl, "DO 0").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tasks = [
        ("free", server_ids.0, String::new()),
        ("limited", server_ids.1, throttle.to_owned()),
    ];
    for (name, id, _) in &tasks {
        run_to_end(&runner(dir.path(), name, db, *id, 1_000, "")).await;
    }
    let mut c = source().await;
    let alone = SOURCE_WRITES.lock().await;
    let before = binlog_end(&mut c).await;
    c.query_drop(insert).await.expect("changes");
    let after = binlog_end(&mut c).await;
    drop(alone);
    let rows: u64 = c
        .query_first(format!("SELECT COUNT(*) FROM {db}.t"))
        .await
        .expect("count")
        .expect("a row");
    c.disconnect().await.expect("disconnect");
    assert_eq!(before.0, after.0, "the binlog rotated during the test");
    let bytes_per_row = (after.1 - before.1) as f64 / rows as f64;
    let mut out = Vec::new();
    for (name, id, extra) in &tasks {
        if *name == "limited" {
            barrier.wait().await;
        }
        let r = runner(dir.path(), name, db, *id, 1_000, extra);
        let commits = Arc::new(Commits::default());
        let sampler = sample_rows(r.metrics().clone(), commits.clone());
        let t0 = Instant::now();
        run_to_end(&r).await;
        let wall = t0.elapsed().as_secs_f64();
        sampler.abort();
        // The final commit may land between two samples.
        commits.push(0, r.metrics().snapshot().rows);
        out.push((commits.rate(1), commits.seconds(), commits.total(1) / wall));
    }
    (out[0].2, out[1].0, out[1].1, bytes_per_row)
}

/// Samples the committed rows every 20 ms, recording each change.
fn sample_rows(
    m: sync_core::metrics::Metrics,
    commits: Arc<Commits>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0;
        loop {
            let rows = m.snapshot().rows;
            if rows != last {
                commits.push(0, rows);
                last = rows;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

async fn binlog_end(c: &mut mysql_async::Conn) -> (String, u64) {
    let row: mysql_async::Row = c
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("status")
        .expect("binlog on");
    (
        row.get::<String, _>(0).expect("file"),
        row.get::<u64, _>(1).expect("position"),
    )
}

async fn incremental_rows(barrier: &Barrier) -> Measured {
    let db = "throttle_inc_rows";
    let limit = 1_000.0;
    let inserts: String = (0..25)
        .map(|i| {
            format!(
                "INSERT INTO {db}.t SELECT seq + {}, seq FROM mysql.seq_1_to_1000;",
                i * 1000
            )
        })
        .collect();
    let (free, got, secs, _) = incremental_rates(
        barrier,
        db,
        (7304, 7305),
        &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT NOT NULL)"),
        &inserts,
        &format!("[throttle]\nincremental_rows_per_second = {limit}\n"),
    )
    .await;
    Measured::new("incremental rows/s", limit, free, got, secs)
}

async fn incremental_megabytes(barrier: &Barrier) -> Measured {
    let db = "throttle_inc_mb";
    let limit_mb = 0.8;
    let inserts: String = (0..40)
        .map(|i| {
            format!(
                "INSERT INTO {db}.t SELECT seq + {}, REPEAT('y', 1000) FROM mysql.seq_1_to_500;",
                i * 500
            )
        })
        .collect();
    let (free, got, secs, bytes_per_row) = incremental_rates(
        barrier,
        db,
        (7306, 7307),
        &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, payload VARCHAR(1000) NOT NULL)"),
        &inserts,
        &format!("[throttle]\nincremental_mb_per_second = {limit_mb}\n"),
    )
    .await;
    // The binlog bytes per row include the few non-rows events of each
    // transaction, so this slightly over-states what the limiter counts.
    let mb = |rows: f64| rows * bytes_per_row / 1e6;
    Measured::new("incremental MB/s", limit_mb, mb(free), mb(got), secs)
}
