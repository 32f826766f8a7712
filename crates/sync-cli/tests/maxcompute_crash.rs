//! `sync-cli run` into `odps-emulator` under injected Tunnel faults (failed
//! block uploads and commits), SIGKILLed while a unit's upload sessions are
//! open (blocks uploading) and while they are being committed (the unit
//! ledger says `committing`), and at random moments, while a writer keeps
//! changing the source. After a final catch-up `verify` reports every table
//! equal and `t_log` holds no record twice.
//!
//! `killed_runs_keep_the_mirror_exactly_once` does the same with `[destination]
//! mirror` on, aiming kills right after mirror commits: each mirror table
//! then equals the merge of what landed (which `verify` proves equal to the
//! source).

use mysql_async::prelude::Queryable;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use sync_testkit::edges;
use sync_testkit::emulator::{ACCESS_ID, ACCESS_KEY, Emulator};
use sync_testkit::records::{doubled, log_record_keys};
use sync_testkit::rng::Rng;
use sync_testkit::shop::{Scale, changes_sql, shop_sql};

const DB: &str = "cli_mc_crash_shop";
const PROJECT: &str = "mc_crash";
const TABLES: [&str; 5] = [
    "customers",
    "orders",
    "order_items",
    "products",
    "event_log",
];

fn task_file(dir: &Path, url: &str, emu: &Emulator) -> std::path::PathBuf {
    task_file_with(dir, url, emu, 7420, DB, "")
}

fn task_file_with(
    dir: &Path,
    url: &str,
    emu: &Emulator,
    server_id: u32,
    db: &str,
    destination: &str,
) -> std::path::PathBuf {
    let path = dir.join("task.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{url}\"\nserver_id = {server_id}\n\
             [destination]\nkind = \"maxcompute\"\nendpoint = \"{}\"\ntunnel_endpoint = \"{}\"\nproject = \"{PROJECT}\"\n\
             access_id_env = \"MC_CRASH_ID\"\naccess_key_env = \"MC_CRASH_KEY\"\n{destination}\
             [objects]\ninclude = [\"{db}.*\"]\n[sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
             state_dir = \"{}\"\nchunk_rows = 150\nbatch_rows = 40\nlog_partitions = [\"day\", \"hour\"]\n",
            emu.endpoint,
            emu.tunnel,
            dir.join("state").display()
        ),
    )
    .expect("task file");
    path
}

fn cli(args: &[&str], task: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sync-cli"));
    cmd.args(args)
        .arg("-c")
        .arg(task)
        .env("MC_CRASH_ID", ACCESS_ID)
        .env("MC_CRASH_KEY", ACCESS_KEY);
    cmd
}

async fn write_some(conn: &mut mysql_async::Conn, rng: &mut Rng, round: u32) {
    conn.query_drop(changes_sql(DB, rng, 300_000 + round))
        .await
        .expect("writer");
}

/// Whether a unit ledger written since `since` shows a part in `state`.
fn ledger_shows(dir: &Path, state: &str, since: SystemTime) -> bool {
    let needle = format!("\"state\":\"{state}\"");
    std::fs::read_dir(dir.join("state").join("maxcompute-units"))
        .map(|entries| {
            entries.flatten().any(|e| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m >= since)
                    && std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(&needle))
            })
        })
        .unwrap_or(false)
}

/// Waits up to `limit` for this run to write a ledger in `state`; true when seen.
async fn wait_for_ledger(dir: &Path, state: &str, child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    let since = SystemTime::now();
    while start.elapsed() < limit {
        if ledger_shows(dir, state, since) {
            return true;
        }
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    false
}

/// Every `(record_id, before_flag)` of a `t_log`, over all its partitions.
async fn log_records(client: &odps_tunnel::Client, table: &str) -> Vec<(i64, String)> {
    let mut batches = Vec::new();
    for spec in client.partitions(table).await.expect("partitions") {
        let down = client
            .create_download_session(table, Some(&spec))
            .await
            .expect("download");
        // The record format: it carries every timestamp MaxCompute holds.
        batches.push(
            down.read_records(0, down.record_count())
                .await
                .expect("read"),
        );
    }
    log_record_keys(&batches).expect("keys")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_with_tunnel_faults_resume_without_loss_or_duplicates() {
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
            customers: 1200,
            products: 200,
            orders: 900,
            events: 100,
        },
        17,
    ))
    .await
    .expect("load");
    // A delay on every block upload and commit widens the windows the kills aim at.
    let emu = Emulator::start(&[
        "--fail-block-rate",
        "0.15",
        "--fail-commit-rate",
        "0.25",
        "--delay-ms",
        "40",
        "--fault-seed",
        "7",
    ])
    .expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let task = task_file(dir.path(), &url, &emu);
    let mut rng = Rng::new(77);
    let (mut at_open, mut at_committing) = (0, 0);

    for round in 0..9u32 {
        write_some(&mut conn, &mut rng, round).await;
        let mut child = cli(&["run"], &task)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sync-cli");
        let aim = ["open", "committing", "random"][round as usize % 3];
        if aim == "random" {
            tokio::time::sleep(Duration::from_millis(rng.range(100, 1500) as u64)).await;
            write_some(&mut conn, &mut rng, 100 + round).await;
        } else {
            // Make sure there is something to commit, then wait for the window.
            write_some(&mut conn, &mut rng, 100 + round).await;
            if wait_for_ledger(dir.path(), aim, &mut child, Duration::from_secs(20)).await {
                if aim == "open" {
                    at_open += 1;
                } else {
                    at_committing += 1;
                }
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    eprintln!(
        "kills while sessions were open: {at_open}; while a unit was committing: {at_committing}"
    );
    assert!(at_open > 0, "no kill landed while sessions were open");
    assert!(
        at_committing > 0,
        "no kill landed while a unit was committing"
    );

    // Injected faults may still exhaust a commit's retries: a failed run is
    // one more crash, and the next run reconciles.
    let mut caught_up = false;
    for _ in 0..4 {
        let out = cli(&["run", "--exit-when-caught-up"], &task)
            .output()
            .expect("catch up");
        if out.status.success() {
            caught_up = true;
            break;
        }
        eprintln!(
            "catch-up failed, retrying: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(caught_up, "the catch-up never succeeded");
    let out = cli(&["verify"], &task).output().expect("verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("5 tables equal"), "{text}");

    // `merge` rebuilds one table from what landed: as many rows as the source.
    let out_file = dir.path().join("customers.parquet");
    let table = format!("{DB}.customers");
    let out_arg = out_file.to_string_lossy().into_owned();
    let out = cli(&["merge", "--table", &table, "--out", &out_arg], &task)
        .output()
        .expect("merge");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "merge failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count: Option<u64> = conn
        .query_first(format!("SELECT COUNT(*) FROM {DB}.customers"))
        .await
        .expect("count");
    let count = count.expect("a count");
    assert!(
        text.contains(&format!(": {count} rows written")),
        "{text} (source has {count})"
    );
    assert!(std::fs::metadata(&out_file).is_ok_and(|m| m.len() > 0));

    let client = odps_tunnel::Client::new(
        &emu.endpoint,
        PROJECT,
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .expect("client");
    let mut total = 0;
    for t in TABLES {
        let records = log_records(&client, &format!("{t}_log")).await;
        assert_eq!(doubled(&records), vec![], "{t}_log holds a doubled record");
        total += records.len();
    }
    assert!(
        total > 100,
        "the writer's changes reached t_log ({total} records)"
    );
    conn.query_drop(format!("DROP DATABASE {DB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}

const EDGE_DB: &str = "cli_mc_edges";
const EDGE_PROJECT: &str = "mc_edges_kill";

fn edge_task_file(dir: &Path, url: &str, emu: &Emulator) -> std::path::PathBuf {
    let path = dir.join("task.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{url}\"\nserver_id = 7421\n\
             [destination]\nkind = \"maxcompute\"\nendpoint = \"{}\"\ntunnel_endpoint = \"{}\"\nproject = \"{EDGE_PROJECT}\"\n\
             access_id_env = \"MC_CRASH_ID\"\naccess_key_env = \"MC_CRASH_KEY\"\noversized_values = \"truncate\"\n\
             [objects]\ninclude = [\"{EDGE_DB}.*\"]\n[sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
             state_dir = \"{}\"\nchunk_rows = 1\nbatch_rows = 2\nlog_partitions = [\"year\"]\n",
            emu.endpoint,
            emu.tunnel,
            dir.join("state").display()
        ),
    )
    .expect("task file");
    path
}

/// The phase the task's checkpoint is in (`sync-cli status --json`).
fn phase(task: &Path) -> String {
    let out = cli(&["status", "--json"], task).output().expect("status");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["phase"].as_str().unwrap_or("unknown").to_owned()
}

/// Every edge value of every type (`sync_testkit::edges`) through a sync
/// killed with SIGKILL while upload sessions are open and while units are
/// committing, in the full phase (one row per chunk) and in the incremental
/// phase (two rows per batch, the extremes moved, a key change, deletes, a
/// multi-statement transaction): after the catch-up pyodps's own merge of
/// `t_base` + `t_log` equals the source, `verify` says equal, and no record
/// landed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edge_value_lands_exactly_through_kill_9_in_both_phases() {
    let Some(python) = sync_testkit::emulator::pyodps_python() else {
        panic!(
            "this test needs a Python with pyodps and pyarrow: run `scripts/pyodps-tests` \
             (it creates .venv) or set ODPS_TEST_PYTHON"
        );
    };
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    let columns = edges::columns();
    // Zero dates need a lax sql_mode (MySQL keeps them then).
    conn.query_drop(format!(
        "SET sql_mode = ''; SET time_zone = '+00:00';
         DROP DATABASE IF EXISTS {EDGE_DB}; CREATE DATABASE {EDGE_DB}; {};",
        edges::create_sql(EDGE_DB, &columns)
    ))
    .await
    .expect("edge table");
    conn.query_drop(edges::insert_sql(
        EDGE_DB,
        &[1, 2, 3, 4, 5, 6, 7, 8],
        0,
        &columns,
    ))
    .await
    .expect("snapshot rows");

    // A delay on every block upload and commit widens the windows the kills aim at.
    let emu = Emulator::start(&["--delay-ms", "40"]).expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let task = edge_task_file(dir.path(), &url, &emu);
    let mut kills: Vec<(String, &str)> = Vec::new();
    for round in 0..8u32 {
        if round == 4 {
            // The full phase was killed through; finish it, then the
            // incremental half under more kills.
            let out = cli(&["run", "--exit-when-caught-up"], &task)
                .output()
                .expect("full phase");
            assert!(
                out.status.success(),
                "the run after the full-phase kills failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            conn.query_drop(edges::insert_sql(
                EDGE_DB,
                &[1, 2, 3, 4, 5, 6, 7, 8],
                10,
                &columns,
            ))
            .await
            .expect("incremental rows");
            conn.query_drop(edges::changes_sql(EDGE_DB))
                .await
                .expect("changes");
        }
        let mut child = cli(&["run"], &task)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sync-cli");
        let aim = ["open", "committing"][round as usize % 2];
        let hit = wait_for_ledger(dir.path(), aim, &mut child, Duration::from_secs(20)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        if hit {
            kills.push((phase(&task), aim));
        }
    }
    eprintln!("kills (phase after the kill, ledger state): {kills:?}");
    for want_phase in ["full_sync", "incremental"] {
        for want_state in ["open", "committing"] {
            assert!(
                kills
                    .iter()
                    .any(|(p, s)| p == want_phase && *s == want_state),
                "no kill landed in {want_phase} while a unit was {want_state}: {kills:?}"
            );
        }
    }

    let out = cli(&["run", "--exit-when-caught-up"], &task)
        .output()
        .expect("catch up");
    assert!(
        out.status.success(),
        "catch-up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["verify"], &task).output().expect("verify");
    assert!(
        out.status.success(),
        "verify failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    conn.query_drop("SET time_zone = '+00:00'")
        .await
        .expect("zone");
    let rows: Vec<mysql_async::Row> = conn
        .query(edges::select_sql(EDGE_DB, &columns))
        .await
        .expect("select");
    let raw = rows
        .into_iter()
        .map(|r| {
            (0..columns.len())
                .map(|i| r.get::<Option<Vec<u8>>, _>(i).flatten())
                .collect()
        })
        .collect();
    let source = edges::expected_rows(raw, &columns, |_| "truncate");
    let project = edges::Project {
        endpoint: &emu.endpoint,
        tunnel: &emu.tunnel,
        name: EDGE_PROJECT,
        keys: (ACCESS_ID, ACCESS_KEY),
    };
    let ours = edges::pyodps_merge(&python, &project, &columns);
    edges::assert_rows_equal("edge_values", &ours, &source, &columns);

    let client = odps_tunnel::Client::new(
        &emu.endpoint,
        EDGE_PROJECT,
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .expect("client");
    let records = log_records(&client, "edge_values_log").await;
    assert_eq!(
        doubled(&records),
        vec![],
        "edge_values_log holds a doubled record"
    );
    assert!(
        records.len() >= 16,
        "the changes reached t_log: {records:?}"
    );
    conn.query_drop(format!("DROP DATABASE {EDGE_DB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}

const MIRROR_DB: &str = "cli_mc_crash_mirror";

/// Whether `state/mirror.json` was written since `since`.
fn mirror_written(dir: &Path, since: SystemTime) -> bool {
    std::fs::metadata(dir.join("state").join("mirror.json"))
        .and_then(|m| m.modified())
        .is_ok_and(|m| m >= since)
}

/// Each mirror table equals the merge of its `t_base` + `t_log`, read back
/// through a Tunnel download of the Delta table (the merged state).
async fn assert_mirrors_match_merge(task: &Path) -> usize {
    use sync_core::sink::Sink;
    let cfg = sync_core::taskfile::load(task).expect("task file");
    let sync_core::config::DestinationConfig::Maxcompute(mc) = &cfg.destination else {
        panic!("a MaxCompute task")
    };
    let sink = sync_core::sink::maxcompute::MaxComputeSink::new(
        odps_tunnel::Client::new(
            &mc.endpoint,
            PROJECT,
            odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
        )
        .expect("client"),
        cfg.sync.state_dir.join("maxcompute-units"),
    );
    let meta = cfg.sync.naming_rule.meta_columns();
    let runner = sync_core::run::TaskRunner::new(cfg, sink).expect("runner");
    let mut mirrored = 0;
    for t in runner.tables().await.expect("tables") {
        let key = t.dest_key();
        if key.is_empty() {
            assert!(
                !runner.sink().table_exists(&t.dest).await.expect("exists"),
                "{} has no key and no mirror",
                t.source_name
            );
            continue;
        }
        let merged = runner.merged(&t.source_name, None).await.expect("merge");
        let mirror = runner
            .sink()
            .read_table(&t.dest, &t.base_schema)
            .await
            .expect("read the mirror");
        // The mirror's rows, sorted by key the way merge sorts them.
        let spec = sync_core::merge::MergeSpec {
            meta: &meta,
            key: &key,
            as_of: None,
            added: &[],
        };
        let mirror = sync_core::merge::merge(&t.base_schema, &mirror, &[], spec).expect("sort");
        assert!(merged.num_rows() > 0, "{} is empty", t.source_name);
        assert_eq!(
            mirror.num_rows(),
            merged.num_rows(),
            "{}: the mirror's row count",
            t.source_name
        );
        assert!(
            sync_core::merge::same_rows(&mirror, &merged),
            "{}: the mirror differs from the merge of what landed",
            t.source_name
        );
        mirrored += 1;
    }
    mirrored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_keep_the_mirror_exactly_once() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!("DROP DATABASE IF EXISTS {MIRROR_DB}"))
        .await
        .expect("drop");
    conn.query_drop(shop_sql(
        MIRROR_DB,
        Scale {
            customers: 600,
            products: 100,
            orders: 500,
            events: 50,
        },
        23,
    ))
    .await
    .expect("load");
    let emu = Emulator::start(&["--delay-ms", "5"]).expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let task = task_file_with(
        dir.path(),
        &url,
        &emu,
        7422,
        MIRROR_DB,
        "mirror = true\nmirror_commit_seconds = 0\n",
    );

    // A writer changes the source all along (inserts, updates, key
    // changes, deletes, multi-statement transactions).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let url = url.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut w = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
                .await
                .expect("connect");
            let mut rng = Rng::new(91);
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                w.query_drop(changes_sql(MIRROR_DB, &mut rng, 400_000 + round))
                    .await
                    .expect("writer");
                round += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            round
        })
    };

    let mut rng = Rng::new(78);
    let mut after_mirror_commit = 0;
    for round in 0..6u32 {
        let mut child = cli(&["run"], &task)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sync-cli");
        if round % 2 == 0 {
            // Right after a mirror commit (its state file written).
            let since = SystemTime::now();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) && !mirror_written(dir.path(), since) {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            if mirror_written(dir.path(), since) {
                after_mirror_commit += 1;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(rng.range(300, 2500) as u64)).await;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = writer.await.expect("writer");
    eprintln!("writer rounds: {rounds}; kills right after a mirror commit: {after_mirror_commit}");
    assert!(
        after_mirror_commit > 0,
        "no kill landed after a mirror commit"
    );

    let out = cli(&["run", "--exit-when-caught-up"], &task)
        .output()
        .expect("catch up");
    assert!(
        out.status.success(),
        "catch-up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["verify"], &task).output().expect("verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("5 tables equal"), "{text}");
    let mirrored = assert_mirrors_match_merge(&task).await;
    assert_eq!(mirrored, 4, "four shop tables have a key");

    let client = odps_tunnel::Client::new(
        &emu.endpoint,
        PROJECT,
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .expect("client");
    for t in TABLES {
        let records = log_records(&client, &format!("{t}_log")).await;
        assert_eq!(doubled(&records), vec![], "{t}_log holds a doubled record");
    }
    conn.query_drop(format!("DROP DATABASE {MIRROR_DB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}
