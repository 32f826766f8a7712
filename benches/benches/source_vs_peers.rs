//! mysql-source against the MariaDB command-line tools, both measured in
//! the same run on the same data:
//!
//! * **snapshot**: a 1,000,000-row table of many column types read into
//!   Arrow batches (parallel primary-key chunks, and on one connection)
//!   vs `mariadb-dump --quick --single-transaction` of the table to
//!   /dev/null;
//! * **binlog**: streaming a binlog from the server and decoding every row
//!   image with binlog-parser vs `mariadb-binlog --read-from-remote-server
//!   -v --base64-output=decode-rows` of the same files to /dev/null.
//!
//! The data lives in a private MariaDB (own datadir under the target dir,
//! own port) that this bench starts with `scripts/mysql-sandbox` and stops
//! at the end, so the shared sandbox's binlog does not grow by hundreds of
//! megabytes. The datadir is kept: later runs reuse the generated data.
//!
//! `cargo bench -p sync-benches --bench source_vs_peers [-- snapshot|binlog]`
//! Environment: `SOURCE_BENCH_ROWS` (default 1000000), `SOURCE_BENCH_RUNS` (3).

use arrow_array::RecordBatch;
use binlog_parser::{DecodeContext, EventData};
use mysql_source::replication::{BinlogStream, ReplicationOptions, StartPosition};
use mysql_source::snapshot::{self, SnapshotItem, SnapshotOptions, TableJob};
use mysql_source::{BinlogPosition, ConnectOptions, RawConn, TlsMode, schema};
use std::collections::BTreeSet;
use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use sync_benches::{PrivateServer, WIDE_DDL, best, dev_null, env_num, wide_fill, wide_select};

const DB: &str = "source_bench";
const PORT: u16 = 3391;

fn options() -> ConnectOptions {
    let mut o = ConnectOptions::new("127.0.0.1", PORT, "root");
    o.tls = TlsMode::Disabled;
    o.read_timeout = Some(Duration::from_secs(600));
    o
}

async fn one(conn: &mut RawConn, sql: &str) -> String {
    conn.query_strings(sql).await.expect(sql)[0][0]
        .clone()
        .unwrap_or_default()
}

async fn snapshot_bench(runs: u64) {
    let rows = env_num("SOURCE_BENCH_ROWS", 1_000_000);
    let mut conn = RawConn::connect(&options()).await.expect("connect");
    conn.query_drop(&format!("CREATE DATABASE IF NOT EXISTS {DB}"))
        .await
        .expect("db");
    conn.query_drop(&format!("CREATE TABLE IF NOT EXISTS {DB}.snap {WIDE_DDL}"))
        .await
        .expect("table");
    let have: u64 = one(&mut conn, &format!("SELECT COUNT(*) FROM {DB}.snap"))
        .await
        .parse()
        .expect("n");
    if have != rows {
        eprintln!("generating {rows} rows in {DB}.snap …");
        conn.query_drop(&format!("TRUNCATE {DB}.snap"))
            .await
            .expect("truncate");
        for sql in wide_fill(&format!("{DB}.snap"), 1, rows) {
            conn.query_drop(&sql).await.expect("fill");
        }
    }
    let table_bytes = one(&mut conn, &format!("SELECT DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{DB}' AND TABLE_NAME = 'snap'")).await;
    let s = Arc::new(
        schema::read_table(&mut conn, DB, "snap")
            .await
            .expect("schema"),
    );
    conn.close().await.expect("close");

    let rt = tokio::runtime::Handle::current();
    let ours = |parallelism: usize| {
        let s = s.clone();
        let (d, (n, bytes)) = best(runs, || {
            let s = s.clone();
            tokio::task::block_in_place(|| {
                rt.block_on(async move {
                    let t0 = Instant::now();
                    let mut conn = RawConn::connect(&options()).await.expect("connect");
                    let plan = snapshot::plan_table(&mut conn, &s, 50_000)
                        .await
                        .expect("plan");
                    conn.close().await.expect("close");
                    let job = TableJob {
                        schema: s,
                        plan: Arc::new(plan),
                        done: BTreeSet::new(),
                    };
                    let mut opts = SnapshotOptions::new(options());
                    opts.parallelism = parallelism;
                    let mut run = snapshot::start(opts, vec![job]);
                    let mut n = 0u64;
                    let mut arrow_bytes = 0usize;
                    while let Some(item) = run.items.recv().await {
                        if let SnapshotItem::Batch { batch, .. } = item.expect("snapshot") {
                            n += batch.num_rows() as u64;
                            arrow_bytes += batch.get_array_memory_size();
                            black_box::<&RecordBatch>(&batch);
                        }
                    }
                    (
                        t0.elapsed(),
                        (n, (arrow_bytes, run.progress.report().bytes)),
                    )
                })
            })
        });
        assert_eq!(n, rows, "every row read");
        (d, bytes)
    };
    let (d4, (arrow4, wire4)) = ours(4);
    let (d1, _) = ours(1);

    let (dd, ()) = best(runs, || {
        let t0 = Instant::now();
        let ok = Command::new("mariadb-dump")
            .args([
                "--no-defaults",
                "-h127.0.0.1",
                &format!("-P{PORT}"),
                "-uroot",
                "--quick",
                "--single-transaction",
            ])
            .args([DB, "snap"])
            .stdout(dev_null())
            .status()
            .expect("mariadb-dump")
            .success();
        assert!(ok, "mariadb-dump failed");
        (t0.elapsed(), ())
    });

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!(
        "snapshot of {rows} rows ({table_bytes} bytes of InnoDB data, {wire4} bytes of row packets, {arrow4} bytes of Arrow):"
    );
    println!(
        "  mysql-source, 4 connections → Arrow : {:>7.3} s  {:>10.0} rows/s",
        d4.as_secs_f64(),
        rate(d4)
    );
    println!(
        "  mysql-source, 1 connection  → Arrow : {:>7.3} s  {:>10.0} rows/s",
        d1.as_secs_f64(),
        rate(d1)
    );
    println!(
        "  mariadb-dump --quick --single-transaction → /dev/null : {:>7.3} s  {:>10.0} rows/s",
        dd.as_secs_f64(),
        rate(dd)
    );
    println!(
        "  ratio (dump time / ours): 4 connections {:.2}x, 1 connection {:.2}x",
        dd.as_secs_f64() / d4.as_secs_f64(),
        dd.as_secs_f64() / d1.as_secs_f64()
    );
}

async fn binlog_bench(runs: u64) {
    let mut conn = RawConn::connect(&options()).await.expect("connect");
    conn.query_drop(&format!("CREATE DATABASE IF NOT EXISTS {DB}"))
        .await
        .expect("db");
    let marker = conn.query_strings(&format!("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{DB}' AND TABLE_NAME = 'log_done'")).await.expect("marker");
    if marker.is_empty() {
        eprintln!("generating the binlog workload …");
        conn.query_drop("FLUSH BINARY LOGS").await.expect("flush");
        conn.query_drop(&format!("DROP TABLE IF EXISTS {DB}.log_start"))
            .await
            .expect("t");
        conn.query_drop(&format!("CREATE TABLE {DB}.log_start (f VARCHAR(64))"))
            .await
            .expect("t");
        let rows = conn
            .query_strings("SHOW MASTER STATUS")
            .await
            .expect("status");
        let file = rows[0][0].clone().expect("file");
        conn.query_drop(&format!("INSERT INTO {DB}.log_start VALUES ('{file}')"))
            .await
            .expect("t");
        conn.query_drop(&format!("DROP TABLE IF EXISTS {DB}.orders"))
            .await
            .expect("drop");
        conn.query_drop(&format!("CREATE TABLE {DB}.orders {WIDE_DDL}"))
            .await
            .expect("create");
        // 300 × 1000-row INSERTs, 100 range UPDATEs, 20,000 single-row
        // UPDATEs, 50 range DELETEs, 10,000 single-row INSERTs.
        for i in 0..300u64 {
            let from = format!(
                "(SELECT CAST(seq AS SIGNED) AS seq FROM mysql.seq_{}_to_{}) s",
                i * 1000 + 1,
                i * 1000 + 1000
            );
            conn.query_drop(&format!("INSERT INTO {DB}.orders {}", wide_select(&from)))
                .await
                .expect("insert");
        }
        for i in 0..100u64 {
            conn.query_drop(&format!("UPDATE {DB}.orders SET vc = CONCAT(vc, 'u'), bi = bi + 1 WHERE id BETWEEN {} AND {}", i * 3000 + 1, i * 3000 + 1000)).await.expect("update");
        }
        for i in 0..20_000u64 {
            conn.query_drop(&format!(
                "UPDATE {DB}.orders SET ti = -(ti DIV 2), c = 'x{i}' WHERE id = {}",
                i * 13 % 300_000 + 1
            ))
            .await
            .expect("update");
        }
        for i in 0..50u64 {
            conn.query_drop(&format!(
                "DELETE FROM {DB}.orders WHERE id BETWEEN {} AND {}",
                i * 6000 + 1,
                i * 6000 + 300
            ))
            .await
            .expect("delete");
        }
        for i in 0..10_000u64 {
            let from = format!("(SELECT CAST({} AS SIGNED) AS seq) s", 1_000_000 + i);
            conn.query_drop(&format!("INSERT INTO {DB}.orders {}", wide_select(&from)))
                .await
                .expect("insert");
        }
        conn.query_drop(&format!("CREATE TABLE {DB}.log_done (x INT)"))
            .await
            .expect("done");
        conn.query_drop("FLUSH BINARY LOGS").await.expect("flush");
    }
    let start_file = one(&mut conn, &format!("SELECT f FROM {DB}.log_start")).await;
    let logs = conn.query_strings("SHOW BINARY LOGS").await.expect("logs");
    let files: Vec<String> = logs
        .iter()
        .filter_map(|r| r[0].clone())
        .filter(|f| *f >= start_file)
        .collect();
    let bytes: u64 = logs
        .iter()
        .filter(|r| r[0].as_deref().is_some_and(|f| f >= start_file.as_str()))
        .filter_map(|r| r[1].as_deref().and_then(|v| v.parse::<u64>().ok()))
        .sum();
    conn.close().await.expect("close");

    let rt = tokio::runtime::Handle::current();
    let (ours, (events, images, values)) = best(runs, || {
        let start = StartPosition::File(BinlogPosition {
            file: start_file.clone(),
            position: 4,
        });
        tokio::task::block_in_place(|| {
            rt.block_on(async move {
                let t0 = Instant::now();
                let mut opts = ReplicationOptions::new(options(), 9_100, start);
                opts.stop_at_end = true;
                opts.heartbeat = None;
                let mut stream = BinlogStream::start(opts).await.expect("stream");
                let mut ctx = DecodeContext::new();
                let (mut events, mut images, mut values) = (0u64, 0u64, 0u64);
                while let Some(ev) = stream.next_event().await.expect("event") {
                    events += 1;
                    let decoded = ctx.decode_packet(&ev.bytes).expect("decode");
                    if let EventData::Rows(rows) = &decoded.data {
                        for change in ctx.rows(rows).expect("table map") {
                            let change = change.expect("row");
                            for img in [change.before, change.after].into_iter().flatten() {
                                images += 1;
                                for v in img.values() {
                                    black_box(v.expect("value"));
                                    values += 1;
                                }
                            }
                        }
                    }
                }
                stream.close().await.expect("close");
                (t0.elapsed(), (events, images, values))
            })
        })
    });

    let (theirs, ()) = best(runs, || {
        let t0 = Instant::now();
        let ok = Command::new("mariadb-binlog")
            .args([
                "--no-defaults",
                "--read-from-remote-server",
                "-h127.0.0.1",
                &format!("-P{PORT}"),
                "-uroot",
            ])
            .args(["-v", "--base64-output=decode-rows", "--to-last-log"])
            .arg(&files[0])
            .stdout(dev_null())
            .status()
            .expect("mariadb-binlog")
            .success();
        assert!(ok, "mariadb-binlog failed");
        (t0.elapsed(), ())
    });
    let mb = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "binlog of {bytes} bytes in {} files: {events} events, {images} row images, {values} values:",
        files.len()
    );
    println!(
        "  mysql-source stream + binlog-parser rows : {:>7.3} s  {:>8.1} MB/s  {:>10.0} row images/s",
        ours.as_secs_f64(),
        mb(ours),
        images as f64 / ours.as_secs_f64()
    );
    println!(
        "  mariadb-binlog -v --base64-output=decode-rows → /dev/null : {:>7.3} s  {:>8.1} MB/s",
        theirs.as_secs_f64(),
        mb(theirs)
    );
    println!(
        "  ratio (mariadb-binlog time / ours): {:.2}x",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let runs = env_num("SOURCE_BENCH_RUNS", 3);
    let _server = PrivateServer::start("source-bench-mysql", PORT, 91);
    if want("snapshot") {
        snapshot_bench(runs).await;
    }
    if want("binlog") {
        binlog_bench(runs).await;
    }
}
