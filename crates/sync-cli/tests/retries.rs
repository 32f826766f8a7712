//! `[retry]` windows with real outages: a private MariaDB stopped during
//! the incremental phase and started again within the window (the task
//! rides it out, the retry shows in `status`, the log and the metrics), or
//! kept down past the window (the task exits non-zero saying what failed and
//! for how long, and a later run resumes); and odps-emulator refusing every
//! commit while a switch file exists (retried, then given up on).
//! Windows are set in seconds (`connection_seconds`, `other_seconds`, the
//! test-only keys) so the tests stay short.

use crate::common::{connect, start, stop};
use mysql_async::prelude::Queryable;
use std::path::Path;
use std::process::Child;
use std::time::Duration;
use sync_core::sink::local::LocalWarehouse;
use sync_testkit::PrivateServer;
use sync_testkit::cli::Cli;
use sync_testkit::emulator::{ACCESS_ID, ACCESS_KEY, Emulator};
use sync_testkit::probe::{free_port, http_get, metric, wait_until};

const LOCAL: &str = "kind = \"local\"";

fn task_file(
    dir: &Path,
    url: &str,
    db: &str,
    destination: &str,
    port: u16,
    retry: &str,
) -> std::path::PathBuf {
    let destination = if destination == LOCAL {
        format!("{LOCAL}\npath = \"{}\"", dir.join("warehouse").display())
    } else {
        destination.to_owned()
    };
    let path = dir.join("task.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{url}\"\nserver_id = 7501\n[destination]\n{destination}\n\
             [objects]\ninclude = [\"{db}.*\"]\n[sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
             state_dir = \"{}\"\nflush_interval_ms = 300\n[monitor]\nlisten = \"127.0.0.1:{port}\"\n\
             [retry]\n{retry}\n",
            dir.join("state").display()
        ),
    )
    .expect("task file");
    path
}

async fn insert(url: &str, db: &str, ids: std::ops::Range<u32>) {
    let mut c = connect(url).await;
    for id in ids {
        c.query_drop(format!("INSERT INTO {db}.items VALUES ({id}, 'item {id}')"))
            .await
            .expect("insert");
    }
    c.disconnect().await.expect("disconnect");
}

async fn create(url: &str, db: &str, rows: u32) {
    let mut c = connect(url).await;
    c.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; \
         CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(40))"
    ))
    .await
    .expect("source");
    c.disconnect().await.expect("disconnect");
    insert(url, db, 1..rows + 1).await;
}

fn log_rows(dir: &Path) -> usize {
    LocalWarehouse::new(dir.join("warehouse"))
        .read_table_blocking("items_log")
        .map(|b| b.iter().map(|b| b.num_rows()).sum())
        .unwrap_or(0)
}

fn scrape(port: u16, name: &str) -> f64 {
    http_get(port, "/metrics")
        .and_then(|m| metric(&m, name))
        .unwrap_or(0.0)
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("run.log")).unwrap_or_default()
}

/// Waits for `child` to end by itself.
fn exit_of(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let mut code = None;
    wait_until("the task to give up", timeout, || {
        code = child.try_wait().expect("try_wait");
        code.is_some()
    });
    code.expect("exited")
}

fn verify(cli: &Cli) {
    let out = cli.output(&["verify"]).expect("verify");
    assert!(
        out.status.success(),
        "verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_outage_within_the_window_is_ridden_out() {
    let server = PrivateServer::start(&[]).expect("private server");
    let (url, db) = (server.url(), "retry_ride");
    create(&url, db, 20).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let task = task_file(
        dir.path(),
        &url,
        db,
        LOCAL,
        port,
        "connection_seconds = 300\nother_seconds = 60",
    );
    let cli = Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task);
    let child = start(&cli, dir.path());
    insert(&url, db, 21..31).await;
    wait_until("the first changes", Duration::from_secs(60), || {
        log_rows(dir.path()) == 10
    });

    server.stop().expect("stop the source");
    // The first attempt's reason is the broken stream (the server ends the
    // dump as it shuts down); the next ones find the server gone.
    wait_until("status to show the retry", Duration::from_secs(60), || {
        let status = cli.status();
        status.contains("retrying a connection failure")
            && status.contains("cannot reach the MySQL server")
    });
    let status = cli.status();
    assert!(
        status.contains("`retry.connection_seconds` allows 5 min"),
        "{status}"
    );
    wait_until("a few attempts", Duration::from_secs(60), || {
        scrape(port, "sync_retries_total{kind=\"connection\"}") >= 3.0
    });
    server.start_again().expect("start the source again");

    insert(&url, db, 31..41).await;
    wait_until(
        "the changes after the outage",
        Duration::from_secs(120),
        || log_rows(dir.path()) == 20,
    );
    wait_until("status to drop the retry", Duration::from_secs(30), || {
        !cli.status().contains("retrying")
    });
    let status = cli.status();
    let retries: u64 = status
        .split(" retries")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(retries >= 3, "status counts the retries: {status}");
    assert!(scrape(port, "sync_errors_total{kind=\"connection\"}") >= 3.0);
    let log = log_of(dir.path());
    assert!(
        log.contains("binlog connection lost; reconnecting"),
        "{log}"
    );
    assert!(log.contains("recovered from a failure"), "{log}");
    stop(child, dir.path());
    verify(&cli);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_started_during_a_source_outage_waits_for_the_source() {
    let server = PrivateServer::start(&[]).expect("private server");
    let (url, db) = (server.url(), "retry_start");
    create(&url, db, 20).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let task = task_file(
        dir.path(),
        &url,
        db,
        LOCAL,
        port,
        "connection_seconds = 300\nother_seconds = 60",
    );
    let cli = Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task);
    server.stop().expect("stop the source");
    let mut child = cli
        .spawn(
            &["run", "--exit-when-caught-up"],
            &dir.path().join("run.log"),
        )
        .expect("sync-cli run");
    wait_until("a few attempts", Duration::from_secs(90), || {
        scrape(port, "sync_retries_total{kind=\"connection\"}") >= 2.0
    });
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the task waits for the source instead of failing its precheck\n{}",
        log_of(dir.path())
    );
    server.start_again().expect("start the source again");
    let code = exit_of(&mut child, Duration::from_secs(180));
    let log = log_of(dir.path());
    assert!(code.success(), "{log}");
    assert!(
        log.contains("retrying after a failure") && log.contains("recovered from a failure"),
        "{log}"
    );
    assert_eq!(
        log_rows(dir.path()),
        0,
        "every row came with the full phase"
    );
    verify(&cli);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_outage_past_the_window_stops_the_task_resumably() {
    let server = PrivateServer::start(&[]).expect("private server");
    let (url, db) = (server.url(), "retry_give_up");
    create(&url, db, 20).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let task = task_file(
        dir.path(),
        &url,
        db,
        LOCAL,
        free_port(),
        "connection_seconds = 8\nother_seconds = 4",
    );
    let cli = Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task);
    let mut child = start(&cli, dir.path());
    insert(&url, db, 21..31).await;
    wait_until("the first changes", Duration::from_secs(60), || {
        log_rows(dir.path()) == 10
    });

    server.stop().expect("stop the source");
    let code = exit_of(&mut child, Duration::from_secs(120));
    let log = log_of(dir.path());
    assert!(!code.success(), "the task must fail past its window\n{log}");
    assert!(
        log.contains("gave up after retrying a failed connection for")
            && log.contains("`retry.connection_seconds` allows 8 s")
            && log.contains("resumes from it"),
        "{log}"
    );
    let status = cli.status();
    assert!(
        status.contains("gave up after retrying a connection failure"),
        "{status}"
    );

    server.start_again().expect("start the source again");
    insert(&url, db, 31..41).await;
    let again = cli
        .output(&["run", "--exit-when-caught-up"])
        .expect("run again");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(log_rows(dir.path()), 20, "every change, once");
    assert!(!cli.status().contains("gave up"), "{}", cli.status());
    verify(&cli);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_commit_failures_are_retried_then_given_up_resumably() {
    let url = sync_testkit::mysql_url();
    let db = "retry_destination";
    create(&url, db, 20).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let switch = dir.path().join("fail-commits");
    let switch_arg = switch.display().to_string();
    let emu = Emulator::start(&["--fail-commits-while", &switch_arg]).expect("emulator");
    let port = free_port();
    let destination = format!(
        "kind = \"maxcompute\"\nendpoint = \"{}\"\ntunnel_endpoint = \"{}\"\nproject = \"retry_dest\"\n\
         access_id_env = \"RETRY_TEST_ID\"\naccess_key_env = \"RETRY_TEST_KEY\"",
        emu.endpoint, emu.tunnel
    );
    let task = task_file(
        dir.path(),
        &url,
        db,
        &destination,
        port,
        "connection_seconds = 120\nother_seconds = 25",
    );
    let cli = Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task)
        .env("RETRY_TEST_ID", ACCESS_ID)
        .env("RETRY_TEST_KEY", ACCESS_KEY);
    let log_committed = || {
        scrape(
            port,
            "sync_rows_total{table=\"items_log\",phase=\"incremental\"}",
        )
    };
    let mut child = start(&cli, dir.path());

    // A short outage: commits fail for a while, then work again.
    std::fs::write(&switch, b"").expect("switch on");
    insert(&url, db, 21..31).await;
    wait_until("status to show the retry", Duration::from_secs(90), || {
        cli.status().contains("retrying a destination failure")
    });
    assert!(scrape(port, "sync_retries_total{kind=\"destination\"}") >= 1.0);
    std::fs::remove_file(&switch).expect("switch off");
    wait_until("the changes to land", Duration::from_secs(120), || {
        log_committed() >= 10.0
    });
    wait_until("status to drop the retry", Duration::from_secs(30), || {
        !cli.status().contains("retrying")
    });

    // A long one: past `other_seconds` the task stops.
    std::fs::write(&switch, b"").expect("switch on");
    insert(&url, db, 31..41).await;
    let code = exit_of(&mut child, Duration::from_secs(180));
    let log = log_of(dir.path());
    assert!(!code.success(), "the task must fail past its window\n{log}");
    assert!(
        log.contains("gave up after retrying a failing destination operation for")
            && log.contains("`retry.other_seconds` allows 25 s")
            && log.contains("commits are switched off"),
        "{log}"
    );

    std::fs::remove_file(&switch).expect("switch off");
    let again = cli
        .output(&["run", "--exit-when-caught-up"])
        .expect("run again");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    verify(&cli);
}
