//! The whole task, `sync-cli run`, against the tools a user would run
//! instead, measured in the same run on the same data:
//!
//! * **full**: schema + full sync of a 1,000,000-row, 22-column table into
//!   the local warehouse (at 1 and N reader connections) vs
//!   `mariadb-dump --quick --single-transaction` of the same table to
//!   /dev/null; rows/s and peak memory of each process;
//! * **incremental**: catch-up of a backlog of 1,000,000 row changes
//!   (400k inserts, 400k updates, 200k deletes, in multi-row statements)
//!   into committed `t_log` vs `mariadb-binlog --read-from-remote-server -v
//!   --base64-output=decode-rows` over the same binlog range to /dev/null;
//!   row changes/s and peak memory. `sync-cli verify` then checks that the
//!   merged destination equals the source (outside the timing).
//!
//! Goals (issue 7): full sync at least as fast as mariadb-dump in rows/s;
//! catch-up at least 100,000 row changes/s; peak memory under 500 MB.
//!
//! The source is a private MariaDB under the target dir (port 3393), started
//! and stopped here; the big table is kept between runs.
//!
//! `cargo bench -p sync-benches --bench sync_vs_peers [-- full|incremental]`
//! Environment: `SYNC_BENCH_ROWS` (1000000), `SYNC_BENCH_CHANGES` (1000000),
//! `SYNC_BENCH_PARALLELISM` (4), `SYNC_BENCH_RUNS` (2, full phase only),
//! `SYNC_BENCH_CLI` (a prebuilt release `sync-cli` instead of building one).

use mysql_source::{ConnectOptions, RawConn, TlsMode};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use sync_benches::{
    Measured, PrivateServer, WIDE_DDL, dev_null, env_num, machine_line, measure, repo_root,
    target_dir, wide_fill,
};

const DB: &str = "sync_bench";
const PORT: u16 = 3393;

fn options() -> ConnectOptions {
    let mut o = ConnectOptions::new("127.0.0.1", PORT, "root");
    o.tls = TlsMode::Disabled;
    o.read_timeout = Some(Duration::from_secs(600));
    o
}

async fn sql(conn: &mut RawConn, statements: &[String]) {
    for s in statements {
        conn.query_drop(s).await.expect(s);
    }
}

async fn one(conn: &mut RawConn, q: &str) -> String {
    conn.query_strings(q).await.expect(q)[0][0]
        .clone()
        .unwrap_or_default()
}

/// `cargo build --release -p sync-cli`, and the binary's path; or the
/// binary `SYNC_BENCH_CLI` names (built beforehand, e.g. by `scripts/bench`).
fn sync_cli() -> PathBuf {
    if let Some(cli) = std::env::var_os("SYNC_BENCH_CLI") {
        return PathBuf::from(cli);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(cargo)
        .args(["build", "--release", "-q", "-p", "sync-cli"])
        .current_dir(repo_root())
        .status()
        .expect("cargo build")
        .success();
    assert!(ok, "building sync-cli failed");
    target_dir().join("release/sync-cli")
}

/// A fresh task directory (warehouse, state, task file) for `include`.
fn task(name: &str, include: &str, types: &str, parallelism: u64) -> PathBuf {
    let dir = target_dir().join("sync-bench").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("task dir");
    let file = dir.join("task.toml");
    std::fs::write(
        &file,
        format!(
            "[source]\nurl = \"mysql://root@127.0.0.1:{PORT}\"\nserver_id = 9301\n\
             [destination]\nkind = \"local\"\npath = \"{}\"\n\
             [objects]\ninclude = [\"{include}\"]\n\
             [sync]\ntypes = [{types}]\nstate_dir = \"{}\"\nparallelism = {parallelism}\n",
            dir.join("warehouse").display(),
            dir.join("state").display()
        ),
    )
    .expect("task file");
    file
}

fn run_task(cli: &Path, file: &Path) -> Measured {
    let m = measure(
        Command::new(cli)
            .args(["run", "--exit-when-caught-up", "-c"])
            .arg(file)
            .env("RUST_LOG", "warn")
            .stdout(dev_null()),
    );
    assert!(m.status.success(), "sync-cli run failed: {:?}", m.status);
    m
}

fn verify(cli: &Path, file: &Path) {
    let out = Command::new(cli)
        .args(["verify", "-c"])
        .arg(file)
        .env("RUST_LOG", "warn")
        .output()
        .expect("sync-cli verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "verify found differences:\n{text}");
    eprintln!("  verify: {}", text.lines().last().unwrap_or_default());
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn report(what: &str, units: u64, unit: &str, m: &Measured) -> f64 {
    let rate = units as f64 / m.elapsed.as_secs_f64();
    println!(
        "  {what:<58} {:>7.2} s {:>10.0} {unit}/s  peak RSS {:>6.1} MB",
        m.elapsed.as_secs_f64(),
        rate,
        mb(m.peak_rss)
    );
    rate
}

fn fastest(runs: u64, mut f: impl FnMut() -> Measured) -> Measured {
    let mut out = f();
    for _ in 1..runs {
        let m = f();
        if m.elapsed < out.elapsed {
            out = Measured {
                peak_rss: out.peak_rss.max(m.peak_rss),
                ..m
            };
        } else {
            out.peak_rss = out.peak_rss.max(m.peak_rss);
        }
    }
    out
}

async fn full_bench(cli: &Path) {
    let rows = env_num("SYNC_BENCH_ROWS", 1_000_000);
    let parallelism = env_num("SYNC_BENCH_PARALLELISM", 4);
    let runs = env_num("SYNC_BENCH_RUNS", 2);
    let mut conn = RawConn::connect(&options()).await.expect("connect");
    sql(
        &mut conn,
        &[
            format!("CREATE DATABASE IF NOT EXISTS {DB}"),
            format!("CREATE TABLE IF NOT EXISTS {DB}.wide {WIDE_DDL}"),
        ],
    )
    .await;
    let have: u64 = one(&mut conn, &format!("SELECT COUNT(*) FROM {DB}.wide"))
        .await
        .parse()
        .expect("count");
    if have != rows {
        eprintln!("generating {rows} rows in {DB}.wide …");
        sql(&mut conn, &[format!("TRUNCATE {DB}.wide")]).await;
        sql(&mut conn, &wide_fill(&format!("{DB}.wide"), 1, rows)).await;
    }
    conn.close().await.expect("close");

    let ours = |p: u64| {
        fastest(runs, || {
            let file = task(
                &format!("full-{p}"),
                &format!("{DB}.wide"),
                "\"schema\", \"full\"",
                p,
            );
            let m = run_task(cli, &file);
            let landed = parquet_rows(&file.with_file_name("warehouse").join("wide_base"));
            assert_eq!(landed, rows, "every row in wide_base");
            m
        })
    };
    let n = ours(parallelism);
    let one_conn = ours(1);
    let dump = fastest(runs, || {
        let m = measure(
            Command::new("mariadb-dump")
                .args([
                    "--no-defaults",
                    "-h127.0.0.1",
                    &format!("-P{PORT}"),
                    "-uroot",
                ])
                .args(["--quick", "--single-transaction", DB, "wide"])
                .stdout(dev_null()),
        );
        assert!(m.status.success(), "mariadb-dump failed");
        m
    });
    println!("full sync of {rows} rows × 22 columns:");
    let r_n = report(
        &format!("sync-cli run (schema+full → warehouse), {parallelism} connections"),
        rows,
        "rows",
        &n,
    );
    let r_1 = report(
        "sync-cli run (schema+full → warehouse), 1 connection",
        rows,
        "rows",
        &one_conn,
    );
    let r_d = report(
        "mariadb-dump --quick --single-transaction → /dev/null",
        rows,
        "rows",
        &dump,
    );
    println!(
        "  ratio (ours / mariadb-dump rows/s): {parallelism} connections {:.2}x, 1 connection {:.2}x",
        r_n / r_d,
        r_1 / r_d
    );
}

async fn incremental_bench(cli: &Path) {
    let changes = env_num("SYNC_BENCH_CHANGES", 1_000_000);
    let (inserts, updates) = (changes * 2 / 5, changes * 2 / 5);
    let deletes = changes - inserts - updates;
    let seed_rows = updates + deletes;
    let table = format!("{DB}.churn");
    let mut conn = RawConn::connect(&options()).await.expect("connect");
    eprintln!("seeding {seed_rows} rows in {table} …");
    sql(
        &mut conn,
        &[
            format!("CREATE DATABASE IF NOT EXISTS {DB}"),
            format!("DROP TABLE IF EXISTS {table}"),
            format!("CREATE TABLE {table} {WIDE_DDL}"),
        ],
    )
    .await;
    sql(&mut conn, &wide_fill(&table, 1, seed_rows)).await;
    let file = task(
        "incremental",
        &table,
        "\"schema\", \"full\", \"incremental\"",
        2,
    );
    run_task(cli, &file);

    eprintln!("writing a backlog of {changes} row changes …");
    sql(&mut conn, &["FLUSH BINARY LOGS".to_string()]).await;
    let status = conn
        .query_strings("SHOW MASTER STATUS")
        .await
        .expect("status");
    let start_file = status[0][0].clone().expect("file");
    let mut backlog = wide_fill(&table, 10_000_001, 10_000_000 + inserts);
    let step = 50_000;
    let mut k = 1;
    while k <= updates {
        let end = (k + step - 1).min(updates);
        backlog.push(format!(
            "UPDATE {table} SET bi = bi + 1, vc = CONCAT('u', vc), ts = NULL WHERE id BETWEEN {k} AND {end}"
        ));
        k = end + 1;
    }
    let mut k = updates + 1;
    while k <= updates + deletes {
        let end = (k + step - 1).min(updates + deletes);
        backlog.push(format!(
            "DELETE FROM {table} WHERE id BETWEEN {k} AND {end}"
        ));
        k = end + 1;
    }
    sql(&mut conn, &backlog).await;
    sql(&mut conn, &["FLUSH BINARY LOGS".to_string()]).await;
    let logs = conn.query_strings("SHOW BINARY LOGS").await.expect("logs");
    let bytes: u64 = logs
        .iter()
        .filter(|r| r[0].as_deref().is_some_and(|f| f >= start_file.as_str()))
        .filter_map(|r| r[1].as_deref().and_then(|v| v.parse::<u64>().ok()))
        .sum();
    conn.close().await.expect("close");

    let ours = run_task(cli, &file);
    let peer = measure(
        Command::new("mariadb-binlog")
            .args(["--no-defaults", "--read-from-remote-server", "-h127.0.0.1"])
            .args([
                &format!("-P{PORT}"),
                "-uroot",
                "-v",
                "--base64-output=decode-rows",
            ])
            .args(["--to-last-log", &start_file])
            .stdout(dev_null()),
    );
    assert!(peer.status.success(), "mariadb-binlog failed");
    println!(
        "incremental catch-up of {changes} row changes ({inserts} I, {updates} U, {deletes} D; {:.1} MB of binlog):",
        mb(bytes)
    );
    let r_ours = report(
        "sync-cli run (→ committed t_log)",
        changes,
        "changes",
        &ours,
    );
    let r_peer = report(
        "mariadb-binlog --read-from-remote-server -v → /dev/null",
        changes,
        "changes",
        &peer,
    );
    println!("  ratio (ours / mariadb-binlog): {:.2}x", r_ours / r_peer);
    verify(cli, &file);
}

/// Rows in every Parquet file under `dir`, from the file footers.
fn parquet_rows(dir: &Path) -> u64 {
    let mut n = 0;
    for entry in walk(dir) {
        if entry.extension().is_some_and(|e| e == "parquet") {
            let f = std::fs::File::open(&entry).expect("parquet file");
            let reader =
                parquet::file::reader::SerializedFileReader::new(f).expect("parquet footer");
            n += parquet::file::reader::FileReader::metadata(&reader)
                .file_metadata()
                .num_rows() as u64;
        }
    }
    n
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    println!("{}", machine_line());
    let cli = sync_cli();
    let _server = PrivateServer::start("sync-bench-mysql", PORT, 93);
    if want("full") {
        full_bench(&cli).await;
    }
    if want("incremental") {
        incremental_bench(&cli).await;
    }
}
