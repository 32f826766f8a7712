//! SIGKILL `sync-cli run` at random moments (full phase, incremental phase,
//! between a sink commit and its checkpoint) while a writer keeps changing the
//! source; after a final catch-up, `verify` passes and no `t_log` record is
//! doubled.
//!
//! One writer per task: a second `run` over one state directory (the same
//! task file, or another naming the same `state_dir`) fails at once naming
//! the holder, and a `kill -9`ed holder's lock is taken over. Prompt stops:
//! SIGINT in the full phase ends the run within 2 s with nothing partial
//! committed and the next run resumes exactly; a second signal aborts at
//! once; `status` says whether a run is alive and why the last one stopped.

use crate::common::cli;
use mysql_async::prelude::Queryable;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use sync_core::sink::local::LocalWarehouse;
use sync_testkit::records::{doubled, log_record_keys};
use sync_testkit::rng::Rng;
use sync_testkit::shop::{Scale, changes_sql, shop_sql};

const DB: &str = "cli_kill_shop";

fn task_file(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("task.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{url}\"\nserver_id = 7410\n[destination]\nkind = \"local\"\npath = \"{}\"\n\
             [objects]\ninclude = [\"{DB}.*\"]\n[sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
             state_dir = \"{}\"\nchunk_rows = 150\nbatch_rows = 40\nlog_partitions = [\"day\"]\n",
            dir.join("warehouse").display(),
            dir.join("state").display()
        ),
    )
    .expect("task file");
    path
}

/// Waits until the checkpoint holds a captured binlog position.
async fn wait_for_position(checkpoint: &std::path::Path) {
    let t0 = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(checkpoint).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let phase = &v["state"]["phase"];
        let positioned = phase["phase"] == "incremental"
            || (phase["phase"] == "full_sync" && !phase["start"].is_null());
        if positioned {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the first run never captured its position: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn write_some(conn: &mut mysql_async::Conn, rng: &mut Rng, round: u32) {
    conn.query_drop(changes_sql(DB, rng, 200_000 + round))
        .await
        .expect("writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_resume_without_loss_or_duplicates() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!("DROP DATABASE IF EXISTS {DB}"))
        .await
        .expect("drop");
    conn.query_drop(shop_sql(
        DB,
        Scale {
            customers: 1500,
            products: 300,
            orders: 1500,
            events: 100,
        },
        11,
    ))
    .await
    .expect("load");
    let dir = tempfile::tempdir().expect("tempdir");
    let task = task_file(dir.path(), &url);
    let mut rng = Rng::new(2026);

    for round in 0..12u32 {
        write_some(&mut conn, &mut rng, round).await;
        let mut child = cli()
            .args(["run", "-c"])
            .arg(&task)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sync-cli");
        if round == 0 {
            // The first run must get past the precheck and capture its
            // position, or (on a loaded machine) every kill lands before any
            // change could reach t_log.
            wait_for_position(&dir.path().join("state/task.json")).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.range(50, 900) as u64)).await;
        write_some(&mut conn, &mut rng, 100 + round).await;
        tokio::time::sleep(Duration::from_millis(rng.range(0, 300) as u64)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    let out = cli()
        .args(["run", "--exit-when-caught-up", "-c"])
        .arg(&task)
        .output()
        .expect("catch up");
    assert!(
        out.status.success(),
        "catch-up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli()
        .args(["verify", "-c"])
        .arg(&task)
        .output()
        .expect("verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("5 tables equal"), "{text}");

    let wh = LocalWarehouse::new(dir.path().join("warehouse"));
    let mut total = 0;
    for table in [
        "customers_log",
        "orders_log",
        "order_items_log",
        "products_log",
        "event_log_log",
    ] {
        let keys = log_record_keys(&wh.read_table_blocking(table).expect("read")).expect("keys");
        assert_eq!(doubled(&keys), vec![], "{table} holds a doubled record");
        total += keys.len();
    }
    assert!(
        total > 100,
        "the writer's changes reached t_log ({total} records)"
    );
    conn.query_drop(format!("DROP DATABASE {DB}"))
        .await
        .expect("drop");
}

/// A task file over `db.*` into `dir/warehouse` with state in `dir/state`;
/// `extra` goes at the end (a `[throttle]` section, say).
fn small_task(
    dir: &Path,
    name: &str,
    url: &str,
    db: &str,
    server_id: u32,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{url}\"\nserver_id = {server_id}\n[destination]\nkind = \"local\"\npath = \"{}\"\n\
             [objects]\ninclude = [\"{db}.*\"]\n[sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
             state_dir = \"{}\"\nbatch_rows = 40\n{extra}\n",
            dir.join("warehouse").display(),
            dir.join("state").display()
        ),
    )
    .expect("task file");
    path
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
}

/// Waits up to `limit` for `child` to exit: its status and how long it took.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some((status, start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn checkpoint(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("state/task.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

fn verify_equal(cli: &sync_testkit::cli::Cli) -> String {
    let out = cli.output(&["verify"]).expect("verify");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "verify failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn no_doubled_log(dir: &Path, table: &str) -> usize {
    let wh = LocalWarehouse::new(dir.join("warehouse"));
    let keys = log_record_keys(&wh.read_table_blocking(table).expect("read")).expect("keys");
    assert_eq!(doubled(&keys), vec![], "{table} holds a doubled record");
    keys.len()
}

async fn source(url: &str, setup: &str) -> mysql_async::Conn {
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(setup).await.expect("setup");
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_fails_at_once_naming_the_holder_and_a_killed_holder_is_taken_over() {
    let url = sync_testkit::mysql_url();
    let db = "cli_lock";
    let mut conn = source(
        &url,
        &format!(
            "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};
             CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT);
             INSERT INTO {db}.t SELECT seq, seq FROM {db}.seq_1_to_96"
        ),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("run.log");
    // The report's case: two task files that differ only in server_id.
    let task_a = small_task(dir.path(), "a.toml", &url, db, 7411, "");
    let task_b = small_task(dir.path(), "b.toml", &url, db, 7412, "");
    let a = sync_testkit::cli::Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task_a);
    let b = sync_testkit::cli::Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task_b);
    assert!(
        a.status().contains("no run alive; none has run yet"),
        "{}",
        a.status()
    );

    let mut first = a.start_incremental(&log);
    let holder = format!("pid {}", first.id());
    let status = b.status();
    assert!(
        status.contains(&format!("run alive: {holder} on host")),
        "{status}"
    );
    for (cli, which) in [(&b, "the other task file"), (&a, "the same task file")] {
        let started = Instant::now();
        let out = cli
            .output(&["run", "--exit-when-caught-up"])
            .expect("second run");
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{which}: {err}");
        assert!(
            err.contains("another process is running this task") && err.contains(&holder),
            "{which}: {err}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{which}: refused after {took:?}"
        );
    }
    conn.query_drop(format!(
        "UPDATE {db}.t SET v = -v WHERE id % 3 = 0; DELETE FROM {db}.t WHERE id > 90; \
         INSERT INTO {db}.t VALUES (200, 200)"
    ))
    .await
    .expect("changes");
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");
    let status = a.status();
    assert!(
        status.contains("no run alive; the last one") && status.contains("ended without a word"),
        "{status}"
    );

    // The dead holder's lock is the next run's.
    let out = b
        .output(&["run", "--exit-when-caught-up"])
        .expect("take over");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("ended without letting go"), "{err}");
    let status = b.status();
    assert!(
        status.contains("no run alive; the last one stopped") && status.contains("caught up"),
        "{status}"
    );
    assert!(verify_equal(&a).contains("1 table equal"));
    // 32 updates (two records each), 6 deletes, 1 insert: none twice.
    assert_eq!(no_doubled_log(dir.path(), "t_log"), 32 * 2 + 6 + 1);
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_in_the_full_phase_stops_within_2_s_and_the_next_run_resumes_exactly() {
    let url = sync_testkit::mysql_url();
    let db = "cli_stop";
    let mut conn = source(
        &url,
        &format!(
            "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};
             CREATE TABLE {db}.big (id INT PRIMARY KEY, pad VARCHAR(64));
             INSERT INTO {db}.big SELECT seq, REPEAT('x', 60) FROM {db}.seq_1_to_60000"
        ),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("run.log");
    // About ten seconds of full phase: a stop lands with chunks being read.
    let task = small_task(
        dir.path(),
        "task.toml",
        &url,
        db,
        7413,
        "chunk_rows = 1000\nparallelism = 2\n[throttle]\nfull_rows_per_second = 6000",
    );
    let cli = sync_testkit::cli::Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task);
    let mut child = cli.spawn_run(&log).expect("run");
    let table = format!("{db}.big");
    let chunks_done = |v: &serde_json::Value| {
        v["state"]["phase"]["tables"][&table]["chunks_done"]
            .as_u64()
            .unwrap_or(0)
    };
    sync_testkit::probe::wait_until("three chunks", Duration::from_secs(120), || {
        chunks_done(&checkpoint(dir.path())) >= 3
    });
    // Changes during the full phase land in t_log once it is over.
    conn.query_drop(format!(
        "UPDATE {db}.big SET pad = 'changed' WHERE id % 1000 = 7; \
         DELETE FROM {db}.big WHERE id % 1000 = 8; INSERT INTO {db}.big VALUES (70000, 'new')"
    ))
    .await
    .expect("changes");
    assert!(
        cli.status()
            .contains(&format!("run alive: pid {}", child.id()))
    );
    signal(&child, "INT");
    let (code, took) = wait_exit(&mut child, Duration::from_secs(10)).expect("exited");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(code.success(), "{code:?}\n{text}");
    assert!(
        took < Duration::from_secs(2),
        "stopped after {took:?}\n{text}"
    );

    // Nothing partial: t_base holds exactly the rows of the checkpointed chunks.
    let v = checkpoint(dir.path());
    assert_eq!(v["state"]["phase"]["phase"], "full_sync", "{v}");
    let rows = v["state"]["phase"]["tables"][&table]["rows"]
        .as_u64()
        .expect("rows");
    let done = chunks_done(&v);
    assert!(
        done < 60,
        "the stop came before the phase ended ({done} chunks)"
    );
    let wh = LocalWarehouse::new(dir.path().join("warehouse"));
    let base: usize = wh
        .read_table_blocking("big_base")
        .expect("t_base")
        .iter()
        .map(arrow_array::RecordBatch::num_rows)
        .sum();
    assert_eq!(base as u64, rows, "t_base against the checkpoint");
    let status = cli.status();
    assert!(
        status.contains("no run alive; the last one stopped")
            && status.contains("stopped by SIGINT in the full_sync phase"),
        "{status}"
    );
    // The full phase's size by the server's estimate (InnoDB's TABLE_ROWS
    // may lag a bulk load, so only its presence is checked).
    assert!(
        status.contains(&format!("full phase: 0 of 1 table done; {rows} of ~"))
            && status.contains("the total is the server's estimate"),
        "{status}"
    );

    // The next run reads exactly the rest: merged state equals the source,
    // no key twice in t_base, no record twice in t_log.
    let out = cli
        .output(&["run", "--exit-when-caught-up"])
        .expect("resume");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(verify_equal(&cli).contains("1 table equal"));
    let mut ids: Vec<i64> = Vec::new();
    for b in wh.read_table_blocking("big_base").expect("t_base") {
        let column = b.column_by_name("id").expect("id");
        let any = column.as_any();
        if let Some(a) = any.downcast_ref::<arrow_array::Int32Array>() {
            ids.extend(a.values().iter().map(|&v| i64::from(v)));
        } else if let Some(a) = any.downcast_ref::<arrow_array::Int64Array>() {
            ids.extend(a.values().iter().copied());
        } else {
            panic!("id is {}", column.data_type());
        }
    }
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all, "a key twice in t_base");
    no_doubled_log(dir.path(), "big_log");
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// A source that accepts connections and never answers: a run waits in its
/// first connect, past any clean stop.
fn silent_source() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("mysql://root@127.0.0.1:{port}")
}

#[test]
fn a_stuck_run_stops_within_2_s_and_a_second_signal_aborts_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("run.log");
    let task = small_task(dir.path(), "task.toml", &silent_source(), "any", 7414, "");
    let cli = sync_testkit::cli::Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task);
    let wait_alive = |child: &Child| {
        let pid = format!("run alive: pid {}", child.id());
        sync_testkit::probe::wait_until("the run holds its lock", Duration::from_secs(30), || {
            cli.status().contains(&pid)
        });
        // Into its first connect to the source.
        std::thread::sleep(Duration::from_millis(300));
    };

    // One signal: a clean stop cannot finish (the connect hangs), so the run
    // is abandoned where it stands at the end of its grace.
    let mut child = cli.spawn_run(&log).expect("run");
    wait_alive(&child);
    signal(&child, "TERM");
    let (code, took) = wait_exit(&mut child, Duration::from_secs(10)).expect("exited");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(code.success(), "{code:?}\n{text}");
    assert!(
        took < Duration::from_secs(2),
        "stopped after {took:?}\n{text}"
    );
    let status = cli.status();
    assert!(
        status.contains("stopped by SIGTERM in the precheck phase"),
        "{status}"
    );

    // Two: the second ends it at once.
    let mut child = cli.spawn_run(&log).expect("run");
    wait_alive(&child);
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "INT");
    let (code, took) = wait_exit(&mut child, Duration::from_secs(10)).expect("exited");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code.code(), Some(130), "{text}");
    assert!(
        took < Duration::from_millis(900),
        "aborted after {took:?}\n{text}"
    );
    let status = cli.status();
    assert!(
        status.contains("no run alive; the last one stopped")
            && status.contains("aborted by a second signal (SIGINT)"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_added_to_include_survives_kill_9_mid_backfill() {
    let url = sync_testkit::mysql_url();
    let db = "cli_add_table";
    let mut conn = source(
        &url,
        &format!(
            "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};
             CREATE TABLE {db}.a (id INT PRIMARY KEY, v INT);
             INSERT INTO {db}.a SELECT seq, seq FROM {db}.seq_1_to_20;
             CREATE TABLE {db}.n (id INT PRIMARY KEY, pad VARCHAR(64));
             INSERT INTO {db}.n SELECT seq, REPEAT('x', 60) FROM {db}.seq_1_to_20000"
        ),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("run.log");
    let task = small_task(
        dir.path(),
        "task.toml",
        &url,
        db,
        7415,
        "chunk_rows = 1000\nparallelism = 2\n[throttle]\nfull_qps = 4",
    );
    let only_a = std::fs::read_to_string(&task)
        .expect("task file")
        .replace(&format!("\"{db}.*\""), &format!("\"{db}.a\""));
    std::fs::write(&task, &only_a).expect("only a");
    let cli = sync_testkit::cli::Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task);
    let out = cli
        .output(&["run", "--exit-when-caught-up"])
        .expect("a alone");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // n joins; the run is killed with its baseline part way, changes flowing.
    std::fs::write(
        &task,
        only_a.replace(&format!("\"{db}.a\""), &format!("\"{db}.a\", \"{db}.n\"")),
    )
    .expect("with n");
    let mut child = cli.spawn_run(&log).expect("run");
    let table = format!("{db}.n");
    let chunks_done = |v: &serde_json::Value| {
        v["state"]["phase"]["added"][&table]["baseline"]["chunks_done"]
            .as_u64()
            .unwrap_or(0)
    };
    conn.query_drop(format!(
        "UPDATE {db}.n SET pad = 'early' WHERE id % 500 = 1; UPDATE {db}.a SET v = 0 WHERE id = 1"
    ))
    .await
    .expect("early changes");
    sync_testkit::probe::wait_until("three chunks of n", Duration::from_secs(120), || {
        chunks_done(&checkpoint(dir.path())) >= 3
    });
    conn.query_drop(format!(
        "UPDATE {db}.n SET pad = 'changed' WHERE id % 1000 = 7; \
         DELETE FROM {db}.n WHERE id % 1000 = 8; INSERT INTO {db}.n VALUES (70000, 'new'); \
         DELETE FROM {db}.a WHERE id = 2"
    ))
    .await
    .expect("changes");
    signal(&child, "KILL");
    wait_exit(&mut child, Duration::from_secs(10)).expect("killed");
    let v = checkpoint(dir.path());
    let done = chunks_done(&v);
    assert!(
        done < 20,
        "killed before the baseline ended ({done} chunks)"
    );
    let status = cli.status();
    assert!(
        status.contains(&format!("{table}: added to the task: being backfilled")),
        "{status}"
    );
    let out = cli.output(&["verify"]).expect("verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains(&format!("{table}: PARTIAL")),
        "{text}"
    );

    // The next run copies the rest: both tables equal, nothing twice.
    let out = cli
        .output(&["run", "--exit-when-caught-up"])
        .expect("resume");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(verify_equal(&cli).contains("2 tables equal"));
    no_doubled_log(dir.path(), "n_log");
    no_doubled_log(dir.path(), "a_log");
    let wh = LocalWarehouse::new(dir.path().join("warehouse"));
    let mut ids: Vec<i32> = Vec::new();
    for b in wh.read_table_blocking("n_base").expect("n_base") {
        let column = b.column_by_name("id").expect("id");
        let a = column
            .as_any()
            .downcast_ref::<arrow_array::Int32Array>()
            .expect("int32 id");
        ids.extend(a.values().iter().copied());
    }
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all, "a key twice in n_base");
    assert!(!cli.status().contains("being backfilled"));
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// `kill -9` of a run whose checkpoint has passed an XA branch's PREPARE:
/// the branch survives, `status` shows it, and its `XA COMMIT` (from another
/// session, in the next binlog file) lands its rows after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_xa_branch_survives_kill_9_and_lands_at_its_commit_in_the_next_file() {
    let url = sync_testkit::mysql_url();
    let db = "cli_xa";
    let mut conn = source(&url, "DO 1").await;
    let _ = conn.query_drop("XA ROLLBACK 'cli-xa-1'").await;
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};
         CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)"
    ))
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("run.log");
    let task = small_task(dir.path(), "task.toml", &url, db, 7416, "");
    let cli = sync_testkit::cli::Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task);
    let out = cli
        .output(&["run", "--exit-when-caught-up"])
        .expect("schema and full");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut run = cli.start_incremental(&log);
    let branch = source(
        &url,
        &format!(
            "XA START 'cli-xa-1'; INSERT INTO {db}.t SELECT seq, seq FROM {db}.seq_1_to_60;
             XA END 'cli-xa-1'; XA PREPARE 'cli-xa-1'"
        ),
    )
    .await;
    branch.disconnect().await.expect("disconnect");
    conn.query_drop(format!("INSERT INTO {db}.t VALUES (100, 100)"))
        .await
        .expect("insert");
    // Until the checkpoint has passed the PREPARE (and the plain insert).
    let t0 = Instant::now();
    loop {
        let cp = checkpoint(dir.path());
        let phase = &cp["state"]["phase"];
        let held = phase["xa"].as_array().map_or(0, Vec::len);
        if held == 1 && phase["pending"].is_null() && no_doubled_log(dir.path(), "t_log") == 1 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the checkpoint never passed the PREPARE: {cp}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = cli.status();
    assert!(
        status.contains("1 XA branch(es) prepared and undecided")
            && status.contains("X'636C692D78612D31',X'',1"),
        "{status}"
    );
    run.kill().expect("SIGKILL");
    run.wait().expect("reap");

    conn.query_drop("FLUSH BINARY LOGS").await.expect("flush");
    conn.query_drop("XA COMMIT 'cli-xa-1'")
        .await
        .expect("commit");
    conn.query_drop(format!("UPDATE {db}.t SET v = -v WHERE id <= 10"))
        .await
        .expect("update");
    let out = cli
        .output(&["run", "--exit-when-caught-up"])
        .expect("catch up");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    verify_equal(&cli);
    // 1 + 60 inserts, 10 updates of two records each, none twice.
    assert_eq!(no_doubled_log(dir.path(), "t_log"), 1 + 60 + 20);
    let status = cli.status();
    assert!(!status.contains("XA branch"), "{status}");
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// pt-online-schema-change for real under a writer, the sync `kill -9`ed
/// again and again while the rows are copied into the shadow and at the
/// cut-over: `t` keeps syncing through the swap, its new column lands, no
/// tool table reaches the warehouse, nothing is missed or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pt_online_schema_change_under_a_writer_survives_kill_9_of_the_sync() {
    let tool = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("pt-online-schema-change"))
            .find(|p| p.is_file())
    });
    let Some(tool) = tool else {
        let message = "pt-online-schema-change is not installed: this test needs it \
                       (`apt-get install percona-toolkit`)";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("\n!!! SKIPPED: {message} !!!\n");
        return;
    };
    let url = sync_testkit::mysql_url();
    let db = "cli_osc_kill";
    let mut conn = source(
        &url,
        &format!(
            "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};
             CREATE TABLE {db}.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT, s VARCHAR(20));
             INSERT INTO {db}.t (v, s) SELECT seq, CONCAT('r', seq) FROM {db}.seq_1_to_600"
        ),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("run.log");
    let task = small_task(dir.path(), "task.toml", &url, db, 7417, "");
    let cli = sync_testkit::cli::Cli::new(env!("CARGO_BIN_EXE_sync-cli"), &task);
    let out = cli
        .output(&["run", "--exit-when-caught-up"])
        .expect("schema and full");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A writer on its own connection for the whole change.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (url, stop) = (url.clone(), stop.clone());
        tokio::spawn(async move {
            let mut conn = source(&url, "DO 1").await;
            let mut rng = Rng::new(11);
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = rng.range(1, 700);
                let sql = match n % 3 {
                    0 => format!("INSERT INTO {db}.t (v, s) VALUES ({n}, 'w{n}')"),
                    1 => format!("UPDATE {db}.t SET v = v + 1, s = 'u{n}' WHERE id = {id}"),
                    _ => format!("DELETE FROM {db}.t WHERE id = {id}"),
                };
                conn.query_drop(sql).await.expect("write");
                n += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            n
        })
    };
    let opts = mysql_async::Opts::from_url(&url).expect("url");
    let mut dsn = format!(
        "D={db},t=t,h={},P={},u={}",
        opts.ip_or_hostname(),
        opts.tcp_port(),
        opts.user().unwrap_or("root")
    );
    if let Some(p) = opts.pass() {
        dsn.push_str(&format!(",p={p}"));
    }
    let mut osc = Command::new(tool)
        .args(["--alter", "ADD COLUMN c INT", "--execute"])
        .args([
            "--chunk-size",
            "25",
            "--sleep",
            "0.2",
            "--recursion-method",
            "none",
        ])
        .arg(&dsn)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pt-online-schema-change");
    let mut kills = 0;
    while osc.try_wait().expect("wait").is_none() {
        let mut run = cli.spawn_run(&log).expect("run");
        std::thread::sleep(Duration::from_millis(700));
        signal(&run, "KILL");
        wait_exit(&mut run, Duration::from_secs(10)).expect("killed");
        kills += 1;
    }
    let out = osc.wait_with_output().expect("pt-osc output");
    assert!(
        out.status.success(),
        "pt-online-schema-change failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        kills >= 2,
        "the sync was killed during the change ({kills})"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.expect("writer");
    assert!(writes > 20, "{writes} writes");
    conn.query_drop(format!(
        "UPDATE {db}.t SET c = id WHERE id % 4 = 0; INSERT INTO {db}.t (v, s, c) VALUES (-1, 'after', 9)"
    ))
    .await
    .expect("the new column");

    let out = cli
        .output(&["run", "--exit-when-caught-up"])
        .expect("catch up");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(verify_equal(&cli).contains("1 table equal"));
    no_doubled_log(dir.path(), "t_log");
    let landed: Vec<String> = std::fs::read_dir(dir.path().join("warehouse"))
        .expect("warehouse")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('_') && !n.starts_with('.'))
        .collect();
    let mut landed_sorted = landed.clone();
    landed_sorted.sort();
    assert_eq!(landed_sorted, ["t_base", "t_log"], "no tool table lands");
    let def = std::fs::read_to_string(dir.path().join("warehouse/t_log/_table.json"))
        .expect("t_log definition");
    assert!(def.contains("\"c\""), "the new column is in t_log: {def}");
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}
