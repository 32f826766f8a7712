//! Steady-state lag of a running `sync-cli run` under a sysbench
//! `oltp_write_only` load at fixed rates, from source commit to sink
//! commit, against the floor any replica pays (`mariadb-binlog
//! --read-from-remote-server --stop-never -v` receiving the same events).
//!
//! Method: the task (schema, full, incremental into the local warehouse;
//! sbtest tables and a heartbeat table) is started and waited for until it
//! has caught up. Then, for each rate, sysbench runs for the given time
//! while this bench inserts a heartbeat row every 50 ms and notes when the
//! source acknowledged each commit. A heartbeat's sink commit time is the
//! modification time of the commit marker (`_commits/<unit>`, written last)
//! of the unit whose `t_log` file holds the row; the floor's is the moment
//! `mariadb-binlog`'s (line-buffered) output shows the row. p50, p99 and max
//! of both are recorded with sysbench's achieved rate and the peak memory
//! of `sync-cli`.
//!
//! The source is a private MariaDB under the target dir (port 3394),
//! started and stopped here; the sbtest tables are kept between runs.
//! Needs `sysbench` (Debian package `sysbench`).
//!
//! `cargo bench -p sync-benches --bench sync_lag`
//! Environment: `SYNC_LAG_RATES` (100,500,1000 transactions/s),
//! `SYNC_LAG_SECONDS` (60 per rate), `SYNC_LAG_TABLES` (4),
//! `SYNC_LAG_TABLE_SIZE` (100000), `SYNC_LAG_FLUSH_MS` (the task's
//! `flush_interval_ms`; one pass with a fresh task per value, 1000,100).

use arrow_array::{Array, Int64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use sync_benches::db::{connect, count, one, sql};
use sync_benches::peers::{InsertedKeys, sysbench_tps};
use sync_benches::results::{Figure, Meta};
use sync_benches::task::{TaskFile, sync_cli};
use sync_benches::{PrivateServer, Watched, dev_null, env_num, machine_line, percentile};

const PORT: u16 = 3394;
const HEARTBEAT: &str = "lagbench.heartbeat";
/// How often a heartbeat row is inserted.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(50);

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn sysbench(args: &[String], command: &str) -> Command {
    let mut cmd = Command::new("sysbench");
    cmd.arg("oltp_write_only")
        .args(["--db-driver=mysql", "--mysql-host=127.0.0.1"])
        .arg(format!("--mysql-port={PORT}"))
        .args([
            "--mysql-user=root",
            "--mysql-password=",
            "--mysql-db=sbtest",
        ])
        .args(args)
        .arg(command);
    cmd
}

/// Commit times of the heartbeat rows that landed in committed `t_log`
/// files, read incrementally.
struct Landed {
    warehouse: PathBuf,
    read: BTreeSet<PathBuf>,
    commit_of: HashMap<i64, f64>,
}

impl Landed {
    fn new(warehouse: PathBuf) -> Self {
        Self {
            warehouse,
            read: BTreeSet::new(),
            commit_of: HashMap::new(),
        }
    }

    /// Reads the files of units committed since the last scan.
    fn scan(&mut self) {
        let commits = self.warehouse.join("_commits");
        for file in sync_benches::task::files_under(&self.warehouse.join("heartbeat_log")) {
            let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".parquet") || name.starts_with('.') || self.read.contains(&file) {
                continue;
            }
            // `<unit>-<n>.parquet`; the unit's marker is `_commits/<unit>`.
            let Some((unit, _)) = name.trim_end_matches(".parquet").rsplit_once('-') else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(commits.join(unit)) else {
                continue; // not committed yet
            };
            let committed = meta
                .modified()
                .expect("mtime")
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                .as_secs_f64();
            let reader = ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(&file).expect("t_log file"),
            )
            .expect("parquet")
            .build()
            .expect("parquet reader");
            for batch in reader {
                let batch = batch.expect("batch");
                let ids = batch
                    .column_by_name("id")
                    .expect("an id column")
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("BIGINT id");
                for i in 0..ids.len() {
                    self.commit_of.entry(ids.value(i)).or_insert(committed);
                }
            }
            self.read.insert(file);
        }
    }

    /// Waits until every id of `ids` landed; panics after `timeout`.
    fn wait_for(&mut self, ids: impl Iterator<Item = i64> + Clone, timeout: Duration) {
        let t0 = Instant::now();
        loop {
            self.scan();
            if ids.clone().all(|id| self.commit_of.contains_key(&id)) {
                return;
            }
            assert!(
                t0.elapsed() < timeout,
                "heartbeats did not land in the warehouse within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `mariadb-binlog --stop-never` from the current position, its output
/// parsed as it comes: when each heartbeat id was seen.
fn floor_reader(file: &str, pos: &str) -> (Watched, Arc<Mutex<HashMap<i64, f64>>>) {
    let mut w = Watched::spawn(
        Command::new("stdbuf")
            .args([
                "-oL",
                "mariadb-binlog",
                "--no-defaults",
                "--read-from-remote-server",
            ])
            .args(["-h127.0.0.1", &format!("-P{PORT}"), "-uroot"])
            .args(["--stop-never", "--stop-never-slave-server-id=9402"])
            .args(["-v", "--base64-output=decode-rows"])
            .arg(format!("--start-position={pos}"))
            .arg(file)
            .stdout(Stdio::piped())
            .stderr(dev_null()),
    );
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let out = w.take_stdout().expect("piped stdout");
    let s = seen.clone();
    std::thread::spawn(move || {
        let mut keys = InsertedKeys::new("lagbench", "heartbeat");
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Some(id) = keys.feed(&line) {
                s.lock().expect("lock").entry(id).or_insert_with(now);
            }
        }
    });
    (w, seen)
}

/// Inserts heartbeat `id`; returns when the source acknowledged its commit.
async fn beat(conn: &mut mysql_source::RawConn, id: i64) -> f64 {
    let sql = format!(
        "INSERT INTO {HEARTBEAT} VALUES ({id}, {})",
        (now() * 1e6) as i64
    );
    conn.query_drop(&sql).await.expect("heartbeat");
    now()
}

/// A comma-separated list of numbers from the environment.
fn list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect()
}

fn joined(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

fn stats(mut lags_ms: Vec<f64>) -> (f64, f64, f64, usize) {
    lags_ms.sort_by(f64::total_cmp);
    (
        percentile(&lags_ms, 50.0),
        percentile(&lags_ms, 99.0),
        lags_ms.last().copied().unwrap_or(f64::NAN),
        lags_ms.len(),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rates = list("SYNC_LAG_RATES", "100,500,1000");
    let flushes = list("SYNC_LAG_FLUSH_MS", "1000,100");
    let secs = env_num("SYNC_LAG_SECONDS", 60);
    let tables = env_num("SYNC_LAG_TABLES", 4);
    let size = env_num("SYNC_LAG_TABLE_SIZE", 100_000);
    println!("{}", machine_line());
    Meta::record(
        "sync_lag",
        &format!(
            "SYNC_LAG_RATES={}, SYNC_LAG_SECONDS={secs}, SYNC_LAG_TABLES={tables}, \
             SYNC_LAG_TABLE_SIZE={size}, SYNC_LAG_FLUSH_MS={}",
            joined(&rates),
            joined(&flushes)
        ),
    );
    let cli = sync_cli();
    let _server = PrivateServer::start("sync-lag-mysql", PORT, 94);
    let mut conn = connect(PORT).await;
    sql(&mut conn, &["CREATE DATABASE IF NOT EXISTS sbtest".into()]).await;
    let last = format!(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sbtest' AND TABLE_NAME = 'sbtest{tables}'"
    );
    let ready = count(&mut conn, &last).await == 1
        && one(&mut conn, &format!("SELECT COUNT(*) FROM sbtest.sbtest{tables}")).await
            == size.to_string()
        && count(&mut conn, &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sbtest' AND TABLE_NAME = 'sbtest{}'", tables + 1)).await == 0;
    let sizes = [format!("--tables={tables}"), format!("--table-size={size}")];
    if !ready {
        eprintln!("sysbench prepare: {tables} tables × {size} rows …");
        sql(
            &mut conn,
            &[
                "DROP DATABASE sbtest".into(),
                "CREATE DATABASE sbtest".into(),
            ],
        )
        .await;
        let ok = sysbench(&sizes, "prepare")
            .stdout(dev_null())
            .status()
            .expect("sysbench (apt-get install sysbench)")
            .success();
        assert!(ok, "sysbench prepare failed");
    }
    sql(
        &mut conn,
        &[
            "CREATE DATABASE IF NOT EXISTS lagbench".into(),
            format!("DROP TABLE IF EXISTS {HEARTBEAT}"),
            format!(
                "CREATE TABLE {HEARTBEAT} (id BIGINT NOT NULL PRIMARY KEY, sent_us BIGINT NOT NULL)"
            ),
        ],
    )
    .await;

    let status = conn
        .query_strings("SHOW MASTER STATUS")
        .await
        .expect("status");
    let (file, pos) = (
        status[0][0].clone().expect("file"),
        status[0][1].clone().expect("position"),
    );
    let (floor, seen) = floor_reader(&file, &pos);
    let mut next_id = 0i64;
    let mut acks: BTreeMap<i64, f64> = BTreeMap::new();
    for (pass, &flush_ms) in flushes.iter().enumerate() {
        let mut t = TaskFile::new(
            PORT,
            &["sbtest.*", HEARTBEAT],
            &["schema", "full", "incremental"],
        );
        t.sync_extra.push(format!("flush_interval_ms = {flush_ms}"));
        let task = t.write(&format!("lag-flush-{flush_ms}"));
        let sync = task.start(&cli);
        let mut landed = Landed::new(task.warehouse.clone());

        // Steady state: the full phase is done and a heartbeat went through
        // t_log (rows written before the snapshot land in t_base instead, so
        // heartbeats go on until one arrives).
        eprintln!("flush_interval_ms = {flush_ms}: waiting for the task to catch up …");
        let t0 = Instant::now();
        loop {
            acks.insert(next_id, beat(&mut conn, next_id).await);
            next_id += 1;
            landed.scan();
            if !landed.commit_of.is_empty() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(900),
                "the task did not reach its incremental phase within 15 minutes"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let case_of = |rate: u64| {
            format!(
                "oltp_write_only --rate={rate} for {secs} s, {tables} tables × {} rows",
                sync_benches::report::thousands(size as f64)
            )
        };
        for &rate in &rates {
            let mut bench = Watched::spawn(
                sysbench(
                    &[
                        sizes[0].clone(),
                        sizes[1].clone(),
                        "--threads=4".into(),
                        format!("--rate={rate}"),
                        format!("--time={secs}"),
                        "--report-interval=0".into(),
                    ],
                    "run",
                )
                .stdout(Stdio::piped()),
            );
            let mut out = bench.take_stdout().expect("piped stdout");
            let output = std::thread::spawn(move || {
                let mut s = String::new();
                let _ = out.read_to_string(&mut s);
                s
            });
            let first = next_id;
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while bench.try_status().is_none() {
                tick.tick().await;
                let t = beat(&mut conn, next_id).await;
                acks.insert(next_id, t);
                next_id += 1;
            }
            let done = bench.wait();
            assert!(done.status.success(), "sysbench run failed");
            let tps = sysbench_tps(&output.join().expect("sysbench output"));
            let ids = first..next_id;
            landed.wait_for(ids.clone(), Duration::from_secs(600));
            // The floor may trail a little; give it until the sink is done.
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(30)
                && !ids
                    .clone()
                    .all(|id| seen.lock().expect("lock").contains_key(&id))
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            let ours_ms: Vec<f64> = ids
                .clone()
                .map(|id| (landed.commit_of[&id] - acks[&id]) * 1e3)
                .collect();
            let floor_ms: Vec<f64> = {
                let seen = seen.lock().expect("lock");
                ids.clone()
                    .filter_map(|id| seen.get(&id).map(|s| (s - acks[&id]) * 1e3))
                    .collect()
            };
            let case = case_of(rate);
            println!("{case} (achieved {tps:.0} tx/s):");
            let mut figures = vec![(
                "sync-cli run → local warehouse",
                format!("flush_interval_ms = {flush_ms}"),
                true,
                ours_ms,
                sync.peak_rss(),
            )];
            // The floor does not depend on the task's settings: once is enough.
            if pass == 0 {
                figures.push((
                    "mariadb-binlog --stop-never -v (floor)",
                    "line-buffered output".to_string(),
                    false,
                    floor_ms,
                    floor.peak_rss(),
                ));
            }
            for (tool, setting, ours, lags, peak) in figures {
                let (p50, p99, max, n) = stats(lags);
                println!(
                    "  {tool:<42} p50 {p50:>7.1} ms  p99 {p99:>7.1} ms  max {max:>7.1} ms  ({n} heartbeats)  peak RSS {:>6.1} MB",
                    peak as f64 / 1e6
                );
                Figure::new("lag", &case, tool, &setting, ours)
                    .x(rate as f64)
                    .metric("achieved_tps", tps)
                    .metric("samples", n as f64)
                    .metric("p50_ms", p50)
                    .metric("p99_ms", p99)
                    .metric("max_ms", max)
                    .metric("peak_rss_mb", peak as f64 / 1e6)
                    .record();
            }
        }
        let m = sync.terminate();
        eprintln!(
            "sync-cli run stopped ({:?}), peak RSS {:.1} MB",
            m.status,
            m.peak_mb()
        );
    }
    floor.terminate();
    conn.close().await.expect("close");
}
