//! `[heartbeat]` and the lag `status` shows, on idle private servers (their
//! binlogs hold nothing but what the test does): with heartbeats the lag
//! stays small and the checkpoint keeps moving, and the heartbeat table —
//! inside the synced database — is never synced; without them the lag grows
//! with the quiet and `status` says the source may be idle.

use crate::common::{connect, start, stop};
use mysql_async::prelude::Queryable;
use std::path::Path;
use std::time::{Duration, Instant};
use sync_testkit::PrivateServer;
use sync_testkit::cli::{Cli, status_lag, status_position};
use sync_testkit::probe::{free_port, http_get, metric, wait_until};

fn task_file(dir: &Path, url: &str, db: &str, port: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join("task.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{url}\"\nserver_id = 7401\n[destination]\nkind = \"local\"\npath = \"{}\"\n\
             [objects]\ninclude = [\"{db}.*\"]\n[sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
             state_dir = \"{}\"\nflush_interval_ms = 300\n[monitor]\nlisten = \"127.0.0.1:{port}\"\n{extra}",
            dir.join("warehouse").display(),
            dir.join("state").display()
        ),
    )
    .expect("task file");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_source_with_heartbeats_keeps_a_small_lag_and_a_moving_checkpoint() {
    let server = PrivateServer::start(&[]).expect("private server");
    let db = "hb_on";
    let mut conn = connect(&server.url()).await;
    conn.query_drop(format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.items (id INT PRIMARY KEY); INSERT INTO {db}.items VALUES (1), (2)"
    ))
    .await
    .expect("source");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // The heartbeat table sits in the synced database: it must stay out.
    let task = task_file(
        dir.path(),
        &server.url(),
        db,
        port,
        &format!(
            "[heartbeat]\nenabled = true\ninterval_seconds = 1\ntable = \"{db}.dts_heartbeat\"\n"
        ),
    );
    let cli = Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task);
    let child = start(&cli, dir.path());
    let first = status_position(&cli.status()).expect("a position");

    // No writes by the test from here on: only heartbeats reach the binlog.
    let t0 = Instant::now();
    let mut lags = Vec::new();
    let mut moved = None;
    while t0.elapsed() < Duration::from_secs(25) || moved.is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "the checkpoint never moved from {first}: {}",
            cli.status()
        );
        let status = cli.status();
        if let Some(lag) = status_lag(&status) {
            lags.push(lag);
            assert!(
                lag < 10.0,
                "the lag grew on an idle source with heartbeats:\n{status}"
            );
            assert!(status.contains("heartbeat every 1 s"), "{status}");
        }
        let here = status_position(&status).expect("a position");
        if here != first && moved.is_none() {
            moved = Some(here);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        lags.len() >= 15,
        "status showed a lag {} times: {lags:?}",
        lags.len()
    );
    println!("lag seen by status on an idle source with heartbeats: {lags:?}");

    let m = http_get(port, "/metrics").expect("metrics");
    let last_event = metric(&m, "sync_last_event_timestamp_seconds").expect("last event gauge");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        now - last_event < 10.0,
        "last event {last_event}, now {now}"
    );
    stop(child, dir.path());

    // Heartbeats were written (one row, ours) and never synced.
    let beats: Vec<(u32, String)> = conn
        .query(format!(
            "SELECT server_id, CAST(beat_at AS CHAR) FROM {db}.dts_heartbeat"
        ))
        .await
        .expect("heartbeat table");
    assert_eq!(beats.len(), 1, "{beats:?}");
    assert_eq!(beats[0].0, 7401);
    let tables: Vec<String> = std::fs::read_dir(dir.path().join("warehouse"))
        .expect("warehouse")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('_') && !n.starts_with('.'))
        .collect();
    let mut sorted = tables.clone();
    sorted.sort();
    assert_eq!(sorted, ["items_base", "items_log"], "{tables:?}");
    let verify = cli.output(&["verify"]).expect("verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    conn.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_source_without_heartbeats_shows_a_growing_lag_and_says_so() {
    let server = PrivateServer::start(&[]).expect("private server");
    let db = "hb_off";
    let mut conn = connect(&server.url()).await;
    conn.query_drop(format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.items (id INT PRIMARY KEY); INSERT INTO {db}.items VALUES (1)"
    ))
    .await
    .expect("source");
    let dir = tempfile::tempdir().expect("tempdir");
    let task = task_file(dir.path(), &server.url(), db, free_port(), "");
    let cli = Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task);
    let child = start(&cli, dir.path());
    assert!(
        cli.status().contains("lag unknown"),
        "no event committed yet: {}",
        cli.status()
    );

    // One change, then quiet.
    conn.query_drop(format!("INSERT INTO {db}.items VALUES (2)"))
        .await
        .expect("insert");
    wait_until("the change's commit", Duration::from_secs(60), || {
        status_lag(&cli.status()).is_some()
    });
    let committed = status_position(&cli.status()).expect("a position");
    let mut lags = Vec::new();
    wait_until("the lag to pass 20 s", Duration::from_secs(90), || {
        let status = cli.status();
        let lag = status_lag(&status).expect("a lag");
        lags.push(lag);
        assert_eq!(
            status_position(&status).as_deref(),
            Some(committed.as_str()),
            "nothing happened on the source, yet the position moved"
        );
        if lag > 20.0 {
            assert!(
                status.contains("the source is idle or the task is stalled"),
                "{status}"
            );
            return true;
        }
        false
    });
    assert!(
        lags.windows(2).all(|w| w[1] >= w[0] - 1.0),
        "the lag must grow while the source is quiet: {lags:?}"
    );
    stop(child, dir.path());
    conn.disconnect().await.expect("disconnect");
}
