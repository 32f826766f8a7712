//! A long-running `sync-cli run` with `[monitor]` and `[alert]`: a change
//! lands in `t_log` within seconds although the batch is far from full, the
//! Prometheus endpoint reports the phase, rows per table and the lag,
//! `status` shows the lag, and a task that cannot start posts its failure
//! alert to the webhook.

use mysql_async::prelude::Queryable;
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use sync_core::sink::local::LocalWarehouse;
use sync_testkit::probe::free_port;

const DB: &str = "cli_monitor";

fn task_file(dir: &std::path::Path, url: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("task.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{url}\"\nserver_id = 7430\n[destination]\nkind = \"local\"\npath = \"{}\"\n\
             [objects]\ninclude = [\"{DB}.*\"]\n[sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
             state_dir = \"{}\"\nbatch_rows = 1000000\nflush_interval_ms = 300\n{extra}",
            dir.join("warehouse").display(),
            dir.join("state").display()
        ),
    )
    .expect("task file");
    path
}

fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_land_within_the_flush_interval_and_metrics_show_them() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB};
         CREATE TABLE {DB}.items (id INT PRIMARY KEY, name VARCHAR(20));
         INSERT INTO {DB}.items VALUES (1, 'one'), (2, 'two')"
    ))
    .await
    .expect("source");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let file = task_file(
        dir.path(),
        &url,
        &format!("[monitor]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_sync-cli"))
        .args(["run", "-c"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sync-cli run");

    let sink = LocalWarehouse::new(dir.path().join("warehouse"));
    let log_rows = || {
        sink.read_table_blocking("items_log")
            .map(|b| b.iter().map(|b| b.num_rows()).sum::<usize>())
            .unwrap_or(0)
    };
    // The full phase is done once the metrics say incremental.
    wait_for("the incremental phase", Duration::from_secs(60), || {
        scrape(port).is_some_and(|m| m.contains("sync_phase{phase=\"incremental\"} 1"))
    });
    let m = scrape(port).expect("metrics");
    assert!(
        m.contains("sync_rows_total{table=\"items_base\",phase=\"full_sync\"} 2"),
        "{m}"
    );

    // One insert and one update: 3 records, far below batch_rows.
    conn.query_drop(format!(
        "INSERT INTO {DB}.items VALUES (3, 'three'); UPDATE {DB}.items SET name = 'uno' WHERE id = 1"
    ))
    .await
    .expect("changes");
    let t0 = Instant::now();
    loop {
        if log_rows() == 3 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the changes did not land while the batch was not full"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The rows are visible a moment before the commit is counted.
    wait_for("the commit in the metrics", Duration::from_secs(30), || {
        scrape(port).is_some_and(|m| {
            m.contains("sync_rows_total{table=\"items_log\",phase=\"incremental\"} 3")
        })
    });
    let m = scrape(port).expect("metrics");
    let lag: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("sync_lag_seconds "))
        .expect("a lag gauge")
        .parse()
        .expect("number");
    assert!((0.0..60.0).contains(&lag), "lag {lag}");

    let status = || {
        let out = Command::new(env!("CARGO_BIN_EXE_sync-cli"))
            .args(["status", "-c"])
            .arg(&file)
            .output()
            .expect("status");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The checkpoint and progress.json follow the metrics by a moment.
    wait_for("the lag in status", Duration::from_secs(30), || {
        status().contains("age of the newest committed source event")
    });
    assert!(status().contains("phase incremental"), "{}", status());

    // SIGTERM stops at a transaction boundary, exit 0.
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let code = child.wait().expect("wait");
    assert!(code.success(), "{code:?}");
    conn.query_drop(format!("DROP DATABASE {DB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn a_failed_task_posts_its_alert_to_the_webhook() {
    // A receiver that records one request.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hook = format!(
        "http://{}/alert?token=s3cret",
        listener.local_addr().expect("addr")
    );
    let received = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = Vec::new();
        // Headers, then the JSON body (small: one read usually).
        while !String::from_utf8_lossy(&got).contains('}') {
            let n = s.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        String::from_utf8_lossy(&got).into_owned()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    // Nobody listens on this source port: the task retries for its two
    // seconds, then fails.
    let url = format!("mysql://root@127.0.0.1:{}", free_port());
    let file = task_file(
        dir.path(),
        &url,
        &format!(
            "[alert]\nwebhook = \"{hook}\"\n[retry]\nconnection_seconds = 2\nother_seconds = 1\n"
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sync-cli"))
        .args(["run", "-c"])
        .arg(&file)
        .output()
        .expect("sync-cli run");
    assert!(!out.status.success(), "an unreachable source fails the run");
    let request = received.join().expect("receiver");
    assert!(
        request.starts_with("POST /alert?token=s3cret HTTP/1.1"),
        "{request}"
    );
    assert!(request.contains("\"alert\":\"failed\""), "{request}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("s3cret"),
        "the webhook token leaked: {stderr}"
    );
}
