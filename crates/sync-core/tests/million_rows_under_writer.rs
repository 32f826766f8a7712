//! A million rows of 22 column types synced while a writer keeps changing
//! them: the full phase reads lock-free chunks from the position it captured
//! first, the incremental phase replays the binlog from that position, and
//! `verify` finds the merged destination equal to the final source table.
//!
//! `SYNC_TEST_BIG_ROWS` sets the table size (default 1,000,000).

use mysql_async::prelude::Queryable;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use sync_core::config::TaskConfig;
use sync_core::machine::Phase;
use sync_core::run::{RunOptions, TaskRunner};
use sync_core::sink::local::LocalWarehouse;
use sync_testkit::wide::{WIDE_DDL, wide_fill, wide_select};

const DB: &str = "core_million";

fn config(url: &str, dir: &std::path::Path) -> TaskConfig {
    toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7361
        [destination]
        kind = "local"
        path = "{wh}"
        [objects]
        include = ["{DB}.wide"]
        [sync]
        types = ["schema", "full", "incremental"]
        state_dir = "{state}"
        log_partitions = ["year"]
        chunk_rows = 20000
        parallelism = 2
        "#,
        wh = dir.join("warehouse").display(),
        state = dir.join("state").display(),
    ))
    .expect("task file")
}

/// One writer step: single-row updates, deletes, inserts, primary-key moves
/// and multi-statement transactions, spread over the whole key range.
fn change(n: u64, rows: u64) -> String {
    let id = n * 7_919 % rows + 1;
    let t = format!("{DB}.wide");
    match n % 6 {
        0 => format!("DELETE FROM {t} WHERE id = {id}"),
        1 => format!(
            "UPDATE {t} SET vc = CONCAT('w{n} ', vc), bi = bi - {n}, ts = NULL, e = 'blue', st = 'a,c' WHERE id = {id}"
        ),
        2 => format!(
            "INSERT IGNORE INTO {t} {}",
            wide_select(&format!("(SELECT {} AS seq) s", 5_000_000 + n))
        ),
        3 => format!("UPDATE IGNORE {t} SET id = id + 3000000 WHERE id = {id}"),
        4 => format!(
            "START TRANSACTION; UPDATE {t} SET de = -de, dt = '2024-02-29' WHERE id BETWEEN {id} AND {}; \
             DELETE FROM {t} WHERE id = {}; COMMIT",
            id + 20,
            id + 21
        ),
        _ => format!("UPDATE {t} SET tx = NULL, tm = '-12:00:00.5', dtt = NOW(6) WHERE id = {id}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_under_a_writer_merge_to_the_final_table() {
    let rows: u64 = std::env::var("SYNC_TEST_BIG_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let url = sync_testkit::mysql_url();
    let opts = mysql_async::Opts::from_url(&url).expect("url");
    let mut conn = mysql_async::Conn::new(opts.clone()).await.expect("connect");
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}; CREATE TABLE {DB}.wide {WIDE_DDL}"
    ))
    .await
    .expect("table");
    for sql in wide_fill(&format!("{DB}.wide"), 1, rows) {
        conn.query_drop(sql).await.expect("fill");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written, opts) = (stop.clone(), written.clone(), opts.clone());
        tokio::spawn(async move {
            let mut w = mysql_async::Conn::new(opts).await.expect("writer");
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                w.query_drop(change(n, rows)).await.expect("write");
                written.store(n, Ordering::Relaxed);
            }
            w.disconnect().await.expect("disconnect");
            n
        })
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let runner = TaskRunner::new(
        config(&url, dir.path()),
        LocalWarehouse::new(dir.path().join("warehouse")),
    )
    .expect("runner");
    let run = RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let before = written.load(Ordering::Relaxed);
    let state = runner
        .run(&run)
        .await
        .expect("schema + full + first catch-up");
    let during = written.load(Ordering::Relaxed) - before;
    assert!(
        matches!(state.phase, Phase::Incremental(_)),
        "{:?}",
        state.phase
    );
    assert!(
        during >= 200,
        "the writer kept changing the table during the full phase ({during} changes)"
    );
    // Changes after the full phase too, then the writer stops and the task
    // catches up with everything it wrote.
    while written.load(Ordering::Relaxed) < before + during + 200 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let total = writer.await.expect("writer");
    let state = runner.run(&run).await.expect("final catch-up");
    let Phase::Incremental(inc) = &state.phase else {
        panic!("{:?}", state.phase)
    };
    assert!(inc.pending.is_none(), "no batch left pending");
    assert!(inc.next_record_id > total, "every change made records");

    let reports = runner.verify().await.expect("verify");
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert!(r.is_equal(), "base + log differs from the source: {r:?}");
    assert!(
        r.source_rows as u64 >= rows - total,
        "{} rows in the source",
        r.source_rows
    );
    conn.query_drop(format!("DROP DATABASE {DB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}
