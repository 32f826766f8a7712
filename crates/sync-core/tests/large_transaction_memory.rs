//! One transaction of a million row changes (about 210 MB of row data)
//! syncs with memory bounded by `max_batch_records`, not by the
//! transaction: the run's peak resident memory is asserted, then `verify`.
//!
//! Alone in its test binary (see Cargo.toml), so the process's peak is
//! this test's.

use mysql_async::prelude::Queryable;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use sync_core::config::TaskConfig;
use sync_core::run::{RunOptions, TaskRunner};
use sync_core::sink::local::LocalWarehouse;
use sync_testkit::memory::own_peak_rss;

const DB: &str = "core_big_txn_memory";
const ROWS: u64 = 1_000_000;
/// Value bytes per row: the whole transaction holds ROWS × this of strings.
const WIDTH: u64 = 200;
const MAX_BATCH_RECORDS: u64 = 50_000;
/// The bound asserted: the transaction's strings alone (200 MB) would not fit.
const PEAK_LIMIT: u64 = 160_000_000;

fn config(url: &str, dir: &std::path::Path) -> TaskConfig {
    toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7155
        [destination]
        kind = "local"
        path = "{wh}"
        [objects]
        include = ["{DB}.*"]
        [sync]
        types = ["schema", "full", "incremental"]
        state_dir = "{state}"
        max_batch_records = {MAX_BATCH_RECORDS}
        "#,
        wh = dir.join("warehouse").display(),
        state = dir.join("state").display(),
    ))
    .expect("task file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_row_transaction_syncs_in_bounded_memory() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB};
         CREATE TABLE {DB}.t (id INT PRIMARY KEY, s VARCHAR(255) NOT NULL)"
    ))
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = TaskRunner::new(
        config(&url, dir.path()),
        LocalWarehouse::new(dir.path().join("warehouse")),
    )
    .expect("runner");
    let opts = RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };
    runner.run(&opts).await.expect("schema and empty full");

    // One statement, one transaction: a million inserts.
    conn.query_drop(format!(
        "INSERT INTO {DB}.t SELECT seq, REPEAT(CHAR(65 + seq % 26), {WIDTH}) FROM {DB}.seq_1_to_{ROWS}"
    ))
    .await
    .expect("the million-row transaction");
    let before = own_peak_rss();
    runner.run(&opts).await.expect("catch up");
    let peak = own_peak_rss();
    eprintln!(
        "peak RSS {:.1} MB (before the catch-up {:.1} MB) for {ROWS} records of {WIDTH} value bytes, \
         max_batch_records = {MAX_BATCH_RECORDS}",
        peak as f64 / 1e6,
        before as f64 / 1e6
    );
    assert!(peak > 0, "no /proc/self/status: cannot check the bound");
    assert!(
        peak < PEAK_LIMIT,
        "peak RSS {peak} B over the bound {PEAK_LIMIT} B: the transaction was buffered whole"
    );
    // After the measurement: verify holds both sides in memory.
    for r in runner.verify().await.expect("verify") {
        assert!(r.is_equal(), "{} differs: {r:?}", r.table);
        assert_eq!(r.source_rows as u64, ROWS);
    }
    conn.query_drop(format!("DROP DATABASE {DB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}
