//! The whole task, `sync-cli run`, against the tools a user would run
//! instead, measured in the same run on the same data:
//!
//! * **full**: schema + full sync of a 1,000,000-row, 22-column table into
//!   the local warehouse and into `odps-emulator` (at N and 1 reader
//!   connections) vs `mariadb-dump --quick --single-transaction` of the
//!   same table to /dev/null and `mydumper` at N and 1 threads; rows/s and
//!   peak memory of each process;
//! * **incremental**: catch-up of a backlog of 1,000,000 row changes
//!   (400k inserts, 400k updates, 200k deletes, in multi-row statements)
//!   into committed `t_log` vs `mariadb-binlog --read-from-remote-server -v
//!   --base64-output=decode-rows` over the same binlog range to /dev/null;
//!   row changes/s and peak memory. `sync-cli verify` then checks that the
//!   merged destination equals the source (outside the timing);
//! * **sweep**: how full sync and catch-up grow with the table count (the
//!   same rows over 1, 10, 100 tables), the row width (16, 256, 2,048-byte
//!   payloads) and, for catch-up, the transaction size (1, 100, 10,000 rows
//!   per transaction), each point against the same peers.
//!
//! Goals (issue 7): full sync at least as fast as mariadb-dump in rows/s;
//! catch-up at least 100,000 row changes/s; peak memory under 500 MB.
//!
//! The source is a private MariaDB under the target dir (port 3393), started
//! and stopped here; the big table is kept between runs. Figures go to
//! `SYNC_BENCH_RESULTS` (see `sync_benches::results`) when set.
//!
//! `cargo bench -p sync-benches --bench sync_vs_peers [-- full|incremental|sweep]`
//! Environment: `SYNC_BENCH_ROWS` (1000000), `SYNC_BENCH_CHANGES` (1000000),
//! `SYNC_BENCH_PARALLELISM` (4), `SYNC_BENCH_RUNS` (2, full phase only),
//! `SYNC_BENCH_SWEEP_ROWS` (1000000: rows of the table-count and
//! transaction-size sweeps; the width sweep uses half).

use std::path::Path;
use sync_benches::db::{binlog_bytes_since, connect, count, new_binlog, purge_binlogs, sql};
use sync_benches::peers::{have_mydumper, mariadb_binlog_remote, mariadb_dump, mydumper};
use sync_benches::results::{Figure, Meta, Ratio};
use sync_benches::task::{Destination, Task, TaskFile, emulator_rows, parquet_rows, sync_cli};
use sync_benches::{
    Measured, PrivateServer, WIDE_DDL, env_num, fastest, machine_line, target_dir, wide_fill,
};
use sync_testkit::emulator::{EmulatorProcess, emulator_binary};

const DB: &str = "sync_bench";
const PORT: u16 = 3393;
/// Rows per mydumper chunk (as the task's `chunk_rows` default).
const CHUNK_ROWS: u64 = 50_000;

/// Prints one figure and records it.
fn report(fig: Figure, units: u64, unit: &str, m: &Measured) -> f64 {
    let secs = m.elapsed.as_secs_f64();
    let rate = units as f64 / secs;
    println!(
        "  {:<62} {secs:>7.2} s {rate:>10.0} {unit}/s  peak RSS {:>6.1} MB",
        format!("{} ({})", fig.tool, fig.setting),
        m.peak_mb()
    );
    let key = if unit == "rows" {
        "rows_per_s"
    } else {
        "changes_per_s"
    };
    fig.metric("seconds", secs)
        .metric(key, rate)
        .metric("peak_rss_mb", m.peak_mb())
        .record();
    rate
}

/// Prints a ratio and records it.
fn ratio(section: &str, label: &str, value: f64, goal: Option<&str>) {
    println!("  ratio {label}: {value:.2}x");
    Ratio::record(section, label, value, goal);
}

fn conns(p: u64) -> String {
    if p == 1 {
        "1 connection".into()
    } else {
        format!("{p} connections")
    }
}

fn threads(p: u64) -> String {
    if p == 1 {
        "1 thread".into()
    } else {
        format!("{p} threads")
    }
}

/// Rows in every `*_base` table of a local warehouse.
fn base_rows(warehouse: &Path) -> u64 {
    std::fs::read_dir(warehouse)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with("_base"))
                .map(|e| parquet_rows(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

async fn full_bench(cli: &Path) {
    let rows = env_num("SYNC_BENCH_ROWS", 1_000_000);
    let parallelism = env_num("SYNC_BENCH_PARALLELISM", 4);
    let runs = env_num("SYNC_BENCH_RUNS", 2);
    let mut conn = connect(PORT).await;
    sql(
        &mut conn,
        &[
            format!("CREATE DATABASE IF NOT EXISTS {DB}"),
            format!("CREATE TABLE IF NOT EXISTS {DB}.wide {WIDE_DDL}"),
        ],
    )
    .await;
    if count(&mut conn, &format!("SELECT COUNT(*) FROM {DB}.wide")).await != rows {
        eprintln!("generating {rows} rows in {DB}.wide …");
        sql(&mut conn, &[format!("TRUNCATE {DB}.wide")]).await;
        sql(&mut conn, &wide_fill(&format!("{DB}.wide"), 1, rows)).await;
    }
    conn.close().await.expect("close");
    let table = format!("{DB}.wide");
    let task = |p: u64| {
        let mut t = TaskFile::new(PORT, &[&table], &["schema", "full"]);
        t.parallelism = p;
        t
    };

    let local = |p: u64| {
        fastest(runs, || {
            let task = task(p).write(&format!("full-{p}"));
            let m = task.run(cli);
            assert_eq!(
                parquet_rows(&task.warehouse.join("wide_base")),
                rows,
                "every row in wide_base"
            );
            m
        })
    };
    let emulator_bin = emulator_binary("release").expect("odps-emulator");
    let mut project = 0;
    let mut emulator = |p: u64| {
        fastest(runs, || {
            let data = target_dir().join("sync-bench/emulator-data");
            let _ = std::fs::remove_dir_all(&data);
            std::fs::create_dir_all(&data).expect("emulator data dir");
            let emu = EmulatorProcess::start(
                &emulator_bin,
                &data,
                sync_benches::task::EMULATOR_ID,
                sync_benches::task::EMULATOR_KEY,
                &[],
            )
            .expect("odps-emulator");
            project += 1;
            let mut t = task(p);
            t.destination = Some(Destination::Emulator {
                endpoint: emu.endpoint.clone(),
                tunnel: emu.tunnel.clone(),
                project: format!("bench{project}"),
            });
            let m = t.write(&format!("full-emulator-{p}")).run(cli);
            assert_eq!(
                emulator_rows(&data, "wide_base"),
                rows,
                "every row in wide_base"
            );
            drop(emu);
            let _ = std::fs::remove_dir_all(&data);
            m
        })
    };
    let local_n = local(parallelism);
    let local_1 = local(1);
    let emu_n = emulator(parallelism);
    let emu_1 = emulator(1);
    let dump = fastest(runs, || mariadb_dump(PORT, &[DB, "wide"]));
    let out = target_dir().join("sync-bench/mydumper-out");
    let myd = have_mydumper().then(|| {
        (
            fastest(runs, || {
                mydumper(PORT, DB, &["wide"], parallelism, CHUNK_ROWS, rows, &out)
            }),
            fastest(runs, || {
                mydumper(PORT, DB, &["wide"], 1, CHUNK_ROWS, rows, &out)
            }),
        )
    });

    let case = format!(
        "{} rows × 22 columns",
        sync_benches::report::thousands(rows as f64)
    );
    println!("full sync of {case}:");
    let fig = |tool: &str, setting: String, ours: bool| {
        Figure::new("full_sync", &case, tool, &setting, ours)
    };
    let ours = "sync-cli run → local warehouse";
    let ours_emu = "sync-cli run → odps-emulator";
    let r_n = report(fig(ours, conns(parallelism), true), rows, "rows", &local_n);
    let r_1 = report(fig(ours, conns(1), true), rows, "rows", &local_1);
    let e_n = report(
        fig(ours_emu, conns(parallelism), true),
        rows,
        "rows",
        &emu_n,
    );
    let e_1 = report(fig(ours_emu, conns(1), true), rows, "rows", &emu_1);
    let r_d = report(
        fig("mariadb-dump --quick → /dev/null", conns(1), false),
        rows,
        "rows",
        &dump,
    );
    let p = parallelism;
    let s = "full_sync";
    ratio(
        s,
        &format!("sync-cli → warehouse ({}) ÷ mariadb-dump, rows/s", conns(p)),
        r_n / r_d,
        Some("full_vs_dump"),
    );
    ratio(
        s,
        "sync-cli → warehouse (1 connection) ÷ mariadb-dump, rows/s",
        r_1 / r_d,
        Some("full_vs_dump"),
    );
    ratio(
        s,
        &format!("sync-cli → emulator ({}) ÷ mariadb-dump, rows/s", conns(p)),
        e_n / r_d,
        Some("full_vs_dump"),
    );
    ratio(
        s,
        "sync-cli → emulator (1 connection) ÷ mariadb-dump, rows/s",
        e_1 / r_d,
        Some("full_vs_dump"),
    );
    if let Some((m_n, m_1)) = myd {
        let d_n = report(
            fig("mydumper → SQL files", threads(p), false),
            rows,
            "rows",
            &m_n,
        );
        let d_1 = report(
            fig("mydumper → SQL files", threads(1), false),
            rows,
            "rows",
            &m_1,
        );
        ratio(
            s,
            &format!(
                "sync-cli → warehouse ({}) ÷ mydumper ({}), rows/s",
                conns(p),
                threads(p)
            ),
            r_n / d_n,
            None,
        );
        ratio(
            s,
            "sync-cli → warehouse (1 connection) ÷ mydumper (1 thread), rows/s",
            r_1 / d_1,
            None,
        );
    } else {
        println!(
            "  mydumper is not installed: its figures are left out (apt-get install mydumper)"
        );
    }
}

/// Catch-up of `changes` row changes written after `first` (a fresh binlog
/// file): ours vs mariadb-binlog, recorded under `section`; returns both
/// rates.
fn catch_up(
    cli: &Path,
    task: &Task,
    first: &str,
    changes: u64,
    fig: impl Fn(&str, &str, bool) -> Figure,
) -> (f64, f64) {
    let ours = task.run(cli);
    let peer = mariadb_binlog_remote(PORT, first);
    let r_ours = report(
        fig(
            "sync-cli run → committed t_log",
            "1 binlog connection",
            true,
        ),
        changes,
        "changes",
        &ours,
    );
    let r_peer = report(
        fig(
            "mariadb-binlog --read-from-remote-server -v → /dev/null",
            "1 binlog connection",
            false,
        ),
        changes,
        "changes",
        &peer,
    );
    (r_ours, r_peer)
}

async fn incremental_bench(cli: &Path) {
    let changes = env_num("SYNC_BENCH_CHANGES", 1_000_000);
    let (inserts, updates) = (changes * 2 / 5, changes * 2 / 5);
    let deletes = changes - inserts - updates;
    let seed_rows = updates + deletes;
    let table = format!("{DB}.churn");
    let mut conn = connect(PORT).await;
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
    let task =
        TaskFile::new(PORT, &[&table], &["schema", "full", "incremental"]).write("incremental");
    task.run(cli);

    eprintln!("writing a backlog of {changes} row changes …");
    let first = new_binlog(&mut conn).await;
    let mut backlog = wide_fill(&table, 10_000_001, 10_000_000 + inserts);
    backlog.extend(ranges(1, updates, 50_000).map(|(a, b)| {
        format!("UPDATE {table} SET bi = bi + 1, vc = CONCAT('u', vc), ts = NULL WHERE id BETWEEN {a} AND {b}")
    }));
    backlog.extend(
        ranges(updates + 1, updates + deletes, 50_000)
            .map(|(a, b)| format!("DELETE FROM {table} WHERE id BETWEEN {a} AND {b}")),
    );
    sql(&mut conn, &backlog).await;
    new_binlog(&mut conn).await;
    let bytes = binlog_bytes_since(&mut conn, &first).await;
    conn.close().await.expect("close");

    let case = format!(
        "{} row changes ({} I, {} U, {} D; {:.0} MB of binlog), 22 columns",
        sync_benches::report::thousands(changes as f64),
        sync_benches::report::thousands(inserts as f64),
        sync_benches::report::thousands(updates as f64),
        sync_benches::report::thousands(deletes as f64),
        bytes as f64 / 1e6
    );
    println!("incremental catch-up of {case}:");
    let (r_ours, r_peer) = catch_up(cli, &task, &first, changes, |tool, setting, ours| {
        Figure::new("catch_up", &case, tool, setting, ours)
    });
    ratio(
        "catch_up",
        "sync-cli ÷ mariadb-binlog, row changes/s",
        r_ours / r_peer,
        None,
    );
    task.verify(cli);
    task.remove();
    let mut conn = connect(PORT).await;
    purge_binlogs(&mut conn).await;
    conn.close().await.expect("close");
}

/// `(from, to)` ranges of at most `step` keys covering `first..=last`.
fn ranges(first: u64, last: u64, step: u64) -> impl Iterator<Item = (u64, u64)> {
    (first..=last)
        .step_by(step as usize)
        .map(move |a| (a, (a + step - 1).min(last)))
}

/// One full-sync point of a sweep: `task` (schema, full, incremental) from
/// scratch vs mariadb-dump of the database and mydumper with N threads;
/// yields ours ÷ mariadb-dump, the faster peer, and ours ÷ that peer.
fn sweep_full(
    cli: &Path,
    task: &Task,
    db: &str,
    rows: u64,
    bytes: Option<u64>,
    fig: impl Fn(&str, String, bool) -> Figure,
) -> (f64, &'static str, f64) {
    let p = env_num("SYNC_BENCH_PARALLELISM", 4);
    let with_mb = |f: Figure, m: &Measured| match bytes {
        Some(b) => f.metric("mb_per_s", b as f64 / 1e6 / m.elapsed.as_secs_f64()),
        None => f,
    };
    let ours = task.run(cli);
    assert_eq!(
        base_rows(&task.warehouse),
        rows,
        "every row in the _base tables"
    );
    let dump = mariadb_dump(PORT, &[db]);
    let r_ours = report(
        with_mb(fig("sync-cli run → local warehouse", conns(p), true), &ours),
        rows,
        "rows",
        &ours,
    );
    let r_dump = report(
        with_mb(
            fig("mariadb-dump --quick → /dev/null", conns(1), false),
            &dump,
        ),
        rows,
        "rows",
        &dump,
    );
    let mut best = ("mariadb-dump", r_dump);
    if have_mydumper() {
        let out = target_dir().join("sync-bench/mydumper-out");
        let m = mydumper(PORT, db, &[], p, CHUNK_ROWS, rows, &out);
        let r_my = report(
            with_mb(fig("mydumper → SQL files", threads(p), false), &m),
            rows,
            "rows",
            &m,
        );
        if r_my > best.1 {
            best = ("mydumper", r_my);
        }
    }
    (r_ours / r_dump, best.0, r_ours / best.1)
}

async fn sweep_bench(cli: &Path) {
    let total = env_num("SYNC_BENCH_SWEEP_ROWS", 1_000_000);
    let p = env_num("SYNC_BENCH_PARALLELISM", 4);
    let mut conn = connect(PORT).await;
    let th = sync_benches::report::thousands;

    // Table count: the same rows over 1, 10, 100 tables.
    for tables in [1u64, 10, 100] {
        let db = format!("sweep_tables_{tables}");
        let per = total / tables;
        eprintln!("sweep: {tables} tables × {per} rows …");
        let mut stmts = vec![
            format!("DROP DATABASE IF EXISTS {db}"),
            format!("CREATE DATABASE {db}"),
        ];
        for i in 1..=tables {
            stmts.push(format!("CREATE TABLE {db}.w{i} {WIDE_DDL}"));
            stmts.extend(wide_fill(&format!("{db}.w{i}"), 1, per));
        }
        sql(&mut conn, &stmts).await;
        let mut t = TaskFile::new(
            PORT,
            &[&format!("{db}.*")],
            &["schema", "full", "incremental"],
        );
        t.parallelism = p;
        let task = t.write(&format!("sweep-tables-{tables}"));
        let case = format!("{tables} tables × {} rows, 22 columns", th(per as f64));
        println!("sweep, full sync of {case}:");
        let x = tables as f64;
        let (q, peer, b) = sweep_full(
            cli,
            &task,
            &db,
            per * tables,
            None,
            |tool, setting, ours| Figure::new("sweep_tables", &case, tool, &setting, ours).x(x),
        );
        ratio(
            "sweep_tables",
            &format!("{tables} tables: sync-cli ÷ mariadb-dump, rows/s"),
            q,
            None,
        );
        ratio(
            "sweep_tables",
            &format!("{tables} tables: sync-cli ÷ the faster peer ({peer}), rows/s"),
            b,
            Some("full_vs_best_peer"),
        );

        let first = new_binlog(&mut conn).await;
        let mut backlog = Vec::new();
        for i in 1..=tables {
            backlog.extend(ranges(1, per, 50_000).map(|(a, b)| {
                format!("UPDATE {db}.w{i} SET bi = bi + 1 WHERE id BETWEEN {a} AND {b}")
            }));
        }
        sql(&mut conn, &backlog).await;
        new_binlog(&mut conn).await;
        let case = format!("{tables} tables, {} row updates", th((per * tables) as f64));
        println!("sweep, catch-up of {case}:");
        let (o, pe) = catch_up(cli, &task, &first, per * tables, |tool, setting, ours| {
            Figure::new("sweep_tables_catch_up", &case, tool, setting, ours).x(x)
        });
        ratio(
            "sweep_tables_catch_up",
            &format!("{tables} tables: sync-cli ÷ mariadb-binlog, row changes/s"),
            o / pe,
            Some("catch_up_vs_binlog"),
        );
        sql(&mut conn, &[format!("DROP DATABASE {db}")]).await;
        purge_binlogs(&mut conn).await;
        task.remove();
    }

    // Row width: payloads of 16, 256, 2,048 bytes.
    let rows = total / 2;
    for width in [16u64, 256, 2048] {
        let db = format!("sweep_width_{width}");
        eprintln!("sweep: {rows} rows of {width}-byte payloads …");
        let mut stmts = vec![
            format!("DROP DATABASE IF EXISTS {db}"),
            format!("CREATE DATABASE {db}"),
            format!(
                "CREATE TABLE {db}.t (id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b BIGINT NOT NULL, payload VARCHAR({width}) NOT NULL)"
            ),
        ];
        stmts.extend(ranges(1, rows, 100_000).map(|(a, b)| {
            format!(
                "INSERT INTO {db}.t SELECT seq, seq % 1000, seq * 7, LEFT(REPEAT(SHA2(seq, 512), {}), {width}) FROM mysql.seq_{a}_to_{b}",
                width.div_ceil(128)
            )
        }));
        sql(&mut conn, &stmts).await;
        let mut t = TaskFile::new(
            PORT,
            &[&format!("{db}.t")],
            &["schema", "full", "incremental"],
        );
        t.parallelism = p;
        let task = t.write(&format!("sweep-width-{width}"));
        let case = format!("{} rows × {width}-byte payload", th(rows as f64));
        println!("sweep, full sync of {case}:");
        let x = width as f64;
        let (q, peer, b) = sweep_full(
            cli,
            &task,
            &db,
            rows,
            Some(rows * (20 + width)),
            |tool, setting, ours| Figure::new("sweep_width", &case, tool, &setting, ours).x(x),
        );
        ratio(
            "sweep_width",
            &format!("{width}-byte rows: sync-cli ÷ mariadb-dump, rows/s"),
            q,
            None,
        );
        ratio(
            "sweep_width",
            &format!("{width}-byte rows: sync-cli ÷ the faster peer ({peer}), rows/s"),
            b,
            Some("full_vs_best_peer"),
        );

        let first = new_binlog(&mut conn).await;
        let backlog: Vec<String> = ranges(1, rows, 50_000)
            .map(|(a, b)| format!("UPDATE {db}.t SET a = a + 1 WHERE id BETWEEN {a} AND {b}"))
            .collect();
        sql(&mut conn, &backlog).await;
        new_binlog(&mut conn).await;
        let case = format!("{} row updates × {width}-byte payload", th(rows as f64));
        println!("sweep, catch-up of {case}:");
        let (o, pe) = catch_up(cli, &task, &first, rows, |tool, setting, ours| {
            Figure::new("sweep_width_catch_up", &case, tool, setting, ours).x(x)
        });
        ratio(
            "sweep_width_catch_up",
            &format!("{width}-byte rows: sync-cli ÷ mariadb-binlog, row changes/s"),
            o / pe,
            Some("catch_up_vs_binlog"),
        );
        sql(&mut conn, &[format!("DROP DATABASE {db}")]).await;
        purge_binlogs(&mut conn).await;
        task.remove();
    }

    // Transaction size: inserts committed 1, 100, 10,000 rows at a time.
    for k in [1u64, 100, 10_000] {
        let db = format!("sweep_txn_{k}");
        let n = total.div_ceil(k) * k;
        sql(
            &mut conn,
            &[
                format!("DROP DATABASE IF EXISTS {db}"),
                format!("CREATE DATABASE {db}"),
                format!("CREATE TABLE {db}.t (id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b BIGINT NOT NULL, s VARCHAR(64) NOT NULL)"),
            ],
        )
        .await;
        let task = TaskFile::new(
            PORT,
            &[&format!("{db}.t")],
            &["schema", "full", "incremental"],
        )
        .write(&format!("sweep-txn-{k}"));
        task.run(cli);
        eprintln!("sweep: {n} inserts in transactions of {k} rows …");
        let first = new_binlog(&mut conn).await;
        // Under autocommit every INSERT of the loop is its own transaction.
        sql(
            &mut conn,
            &[format!(
                "BEGIN NOT ATOMIC DECLARE i BIGINT DEFAULT 0; WHILE i < {n} DO \
                 INSERT INTO {db}.t SELECT seq + i, seq % 1000, seq * 7, SHA2(seq + i, 256) FROM mysql.seq_1_to_{k}; \
                 SET i = i + {k}; END WHILE; END"
            )],
        )
        .await;
        new_binlog(&mut conn).await;
        let case = format!(
            "{} inserts, {} rows per transaction",
            th(n as f64),
            th(k as f64)
        );
        println!("sweep, catch-up of {case}:");
        let x = k as f64;
        let (o, pe) = catch_up(cli, &task, &first, n, |tool, setting, ours| {
            Figure::new("sweep_txn", &case, tool, setting, ours).x(x)
        });
        ratio(
            "sweep_txn",
            &format!("{k} rows per transaction: sync-cli ÷ mariadb-binlog, row changes/s"),
            o / pe,
            Some("catch_up_vs_binlog"),
        );
        sql(&mut conn, &[format!("DROP DATABASE {db}")]).await;
        purge_binlogs(&mut conn).await;
        task.remove();
    }
    conn.close().await.expect("close");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    println!("{}", machine_line());
    Meta::record(
        "sync_vs_peers",
        &[
            ("SYNC_BENCH_ROWS", 1_000_000),
            ("SYNC_BENCH_CHANGES", 1_000_000),
            ("SYNC_BENCH_PARALLELISM", 4),
            ("SYNC_BENCH_RUNS", 2),
            ("SYNC_BENCH_SWEEP_ROWS", 1_000_000),
        ]
        .iter()
        .map(|(k, d)| format!("{k}={}", env_num(k, *d)))
        .collect::<Vec<_>>()
        .join(", "),
    );
    let cli = sync_cli();
    let _server = PrivateServer::start("sync-bench-mysql", PORT, 93);
    if want("full") {
        full_bench(&cli).await;
    }
    if want("incremental") {
        incremental_bench(&cli).await;
    }
    if want("sweep") {
        sweep_bench(&cli).await;
    }
}
