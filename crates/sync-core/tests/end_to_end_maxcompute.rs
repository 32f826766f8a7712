//! The whole task against the sandbox MariaDB into `odps-emulator` through
//! the MaxCompute sink: schema, full and incremental phases, then `verify`;
//! and pyodps, the official SDK, reads `t_base` and `t_log` back and merges
//! them in its own script (per key the DTS way; a table without a key as a
//! multiset), compared with the source's SELECT. (The emulator runs no
//! `SELECT` beyond `COUNT(*)`, so the SQL of `merge-sql` is run elsewhere:
//! by MariaDB in `end_to_end_local.rs`.)
//! (pyodps reads records here: its Arrow reader takes a `decimal(p,0)`
//! column for `decimal(p,18)`.)
//!
//! `every_edge_value_lands_exactly_and_pyodps_merges_it` does the same with
//! a table of every edge value of every type (DATETIME/TIMESTAMP 0–6
//! digits over their whole ranges, zero dates, TIME ±838:59:59.999999,
//! YEAR, DECIMAL(65,30), BIGINT UNSIGNED and BIT(64) at their maximum,
//! JSON, ENUM/SET with emoji members, 30 character sets, values over
//! MaxCompute's 8 MiB field limit under each `oversized_values` policy).

use mysql_async::prelude::Queryable;
use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use sync_core::config::TaskConfig;
use sync_core::machine::Phase;
use sync_core::run::{RunOptions, TaskRunner};
use sync_core::sink::Sink;
use sync_core::sink::maxcompute::MaxComputeSink;
use sync_testkit::edges::{self, EdgeColumn};
use sync_testkit::emulator::{ACCESS_ID, ACCESS_KEY, Emulator, pyodps_python};
use sync_testkit::shop::{Scale, shop_sql};

const DB: &str = "core_mc_shop";
const PROJECT: &str = "mc_e2e";

fn config(url: &str, emu: &Emulator, dir: &std::path::Path) -> TaskConfig {
    toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7111
        [destination]
        kind = "maxcompute"
        endpoint = "{endpoint}"
        project = "{PROJECT}"
        [objects]
        include = ["{DB}.*"]
        [sync]
        types = ["schema", "full", "incremental"]
        state_dir = "{state}"
        log_partitions = ["year", "month", "day"]
        chunk_rows = 97
        batch_rows = 50
        "#,
        endpoint = emu.endpoint,
        state = dir.join("state").display(),
    ))
    .expect("task file")
}

fn sink(emu: &Emulator, dir: &std::path::Path) -> MaxComputeSink {
    let client = odps_tunnel::Client::new(
        &emu.endpoint,
        PROJECT,
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .expect("client");
    MaxComputeSink::new(client, dir.join("state").join("maxcompute-units"))
}

async fn assert_equal(runner: &TaskRunner<MaxComputeSink>) {
    let reports = runner.verify().await.expect("verify");
    assert_eq!(
        reports.len(),
        8,
        "five shop tables, edge, the hostile name and dups"
    );
    for r in &reports {
        assert!(r.is_equal(), "{} differs: {r:?}", r.table);
        assert!(r.counts_add_up(), "{r:?}");
        assert!(r.source_rows > 0, "{} is empty", r.table);
    }
}

fn strings(batches: &[arrow_array::RecordBatch], column: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let col = b.column_by_name(column).expect("column");
        let col = col
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("utf8");
        out.extend(col.iter().map(|v| v.unwrap_or_default().to_owned()));
    }
    out
}

/// pyodps reads `t_base` and every `t_log` partition through download
/// sessions and merges them: per key, the record with the highest
/// record_id wins (the after image within an UPDATE), baseline rows count
/// as record 0, and a winning before image (a DELETE) drops the key. A
/// table without a key is a multiset: in record order (before image
/// first), an after image adds one copy of its row and a before image
/// removes one.
const PYODPS_MERGE: &str = r#"
import json, sys
from odps import ODPS
from odps.tunnel import TableTunnel

endpoint, tunnel_endpoint, project, id_, key = sys.argv[1:6]
jobs = json.loads(sys.argv[6])
o = ODPS(id_, key, project=project, endpoint=endpoint)
tunnel = TableTunnel(o, endpoint=tunnel_endpoint)

# The record (protobuf) reader: pyodps's Arrow reader takes decimal(p,0)
# for decimal(p,18) (`scale or default_scale`), which BIGINT UNSIGNED keys hit.
def rows(table, partition=None):
    kw = {"partition_spec": partition} if partition else {}
    down = tunnel.create_download_session(table, **kw)
    if down.count == 0:
        return []
    names = [c.name for c in down.schema.simple_columns]
    with down.open_record_reader(0, down.count) as reader:
        return [dict(zip(names, rec.values)) for rec in reader]

def text(v):
    if v is None:
        return None
    if hasattr(v, "strftime"):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(v)

out = {}
for job in jobs:
    if not job["key"]:
        copies = {}
        for r in rows(job["base"]):
            k = tuple(text(r[c]) for c in job["columns"])
            copies[k] = copies.get(k, 0) + 1
        images = []
        for p in job["partitions"]:
            images += rows(job["log"], p)
        images.sort(key=lambda r: (r["new_dts_sync_record_id"], r["new_dts_sync_after_flag"]))
        for r in images:
            k = tuple(text(r[c]) for c in job["columns"])
            if r["new_dts_sync_after_flag"] == "Y":
                copies[k] = copies.get(k, 0) + 1
            elif copies.get(k, 0) > 0:
                copies[k] -= 1
        merged = [list(k) for k, n in copies.items() for _ in range(n)]
        out[job["log"]] = sorted(merged, key=lambda row: [x or "" for x in row])
        continue
    best = {}
    for r in rows(job["base"]):
        best[tuple(r[k] for k in job["key"])] = (0, 1, r)
    for p in job["partitions"]:
        for r in rows(job["log"], p):
            rank = (r["new_dts_sync_record_id"], 1 if r["new_dts_sync_after_flag"] == "Y" else 0)
            k = tuple(r[c] for c in job["key"])
            if k not in best or rank > best[k][:2]:
                best[k] = rank + (r,)
    merged = [[text(r[c]) for c in job["columns"]] for (_, after, r) in best.values() if after == 1]
    out[job["log"]] = sorted(merged, key=lambda row: [int(x) for x in row[:len(job["key"])]])
print(json.dumps(out))
"#;

struct MergeJob {
    table: &'static str,
    key: &'static [&'static str],
    columns: &'static [&'static str],
    /// The same columns as MySQL prints them.
    select: &'static str,
}

const JOBS: &[MergeJob] = &[
    MergeJob {
        table: "customers",
        key: &["id"],
        columns: &["id", "email", "name", "country", "credit", "signup_at"],
        select: "SELECT CAST(id AS CHAR), email, name, country, CAST(credit AS CHAR), CAST(signup_at AS CHAR) FROM customers ORDER BY id",
    },
    MergeJob {
        table: "orders",
        key: &["id"],
        columns: &["id", "customer_id", "total", "note"],
        select: "SELECT CAST(id AS CHAR), CAST(customer_id AS CHAR), CAST(total AS CHAR), note FROM orders ORDER BY id",
    },
    MergeJob {
        table: "order_items",
        key: &["order_id", "line"],
        columns: &["order_id", "line", "qty", "unit_price"],
        select: "SELECT CAST(order_id AS CHAR), CAST(line AS CHAR), CAST(qty AS CHAR), CAST(unit_price AS CHAR) FROM order_items ORDER BY order_id, line",
    },
    MergeJob {
        table: "products",
        key: &["id"],
        columns: &["id", "sku", "title", "price"],
        select: "SELECT CAST(id AS CHAR), sku, title, CAST(price AS CHAR) FROM products ORDER BY id",
    },
    MergeJob {
        table: "dups",
        key: &[],
        columns: &["a", "b"],
        select: "SELECT CAST(a AS CHAR), b FROM dups ORDER BY CAST(a AS CHAR), IFNULL(b, '')",
    },
];

async fn pyodps_merge_matches_source(
    python: &std::path::Path,
    emu: &Emulator,
    client: &odps_tunnel::Client,
    conn: &mut mysql_async::Conn,
) {
    let mut jobs = Vec::new();
    for job in JOBS {
        let log = format!("{}_log", job.table);
        let partitions: Vec<String> = client
            .partitions(&log)
            .await
            .expect("partitions")
            .iter()
            .map(ToString::to_string)
            .collect();
        jobs.push(serde_json::json!({
            "base": format!("{}_base", job.table),
            "log": log,
            "key": job.key,
            "columns": job.columns,
            "partitions": partitions,
        }));
    }
    let out = Command::new(python)
        .args([
            "-c",
            PYODPS_MERGE,
            &emu.endpoint,
            &emu.tunnel,
            PROJECT,
            ACCESS_ID,
            ACCESS_KEY,
        ])
        .arg(serde_json::Value::Array(jobs).to_string())
        .env("TZ", "UTC")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "pyodps merge failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json from python");
    for job in JOBS {
        conn.query_drop(format!("USE {DB}")).await.expect("use");
        let rows: Vec<mysql_async::Row> = conn.query(job.select).await.expect("select");
        let source: Vec<Vec<Option<String>>> = rows
            .into_iter()
            .map(|r| {
                (0..job.columns.len())
                    .map(|i| r.get::<Option<String>, _>(i).flatten())
                    .collect()
            })
            .collect();
        let ours: Vec<Vec<Option<String>>> =
            serde_json::from_value(merged[format!("{}_log", job.table)].clone())
                .expect("rows of strings");
        assert!(!source.is_empty(), "{} is empty", job.table);
        assert_eq!(ours.len(), source.len(), "{}: row count", job.table);
        for (a, b) in ours.iter().zip(&source) {
            assert_eq!(
                a, b,
                "{}: pyodps's merge differs from the source",
                job.table
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_syncs_into_maxcompute_and_pyodps_merges_it() {
    let Some(python) = pyodps_python() else {
        panic!(
            "this test needs a Python with pyodps and pyarrow: run `scripts/pyodps-tests` \
             (it creates .venv) or set ODPS_TEST_PYTHON"
        );
    };
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!("DROP DATABASE IF EXISTS {DB}"))
        .await
        .expect("drop");
    let scale = Scale {
        customers: 300,
        products: 50,
        orders: 200,
        events: 40,
    };
    conn.query_drop(shop_sql(DB, scale, 5)).await.expect("load");
    // Every type, with everyday edges (every edge of every type:
    // `every_edge_value_lands_exactly_and_pyodps_merges_it`).
    conn.query_drop(format!(
        "CREATE TABLE {DB}.edge (
           id BIGINT UNSIGNED PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, mi MEDIUMINT,
           mu MEDIUMINT UNSIGNED, bu BIGINT UNSIGNED, d10 DECIMAL(10,3), d65 DECIMAL(65,30), d38 DECIMAL(38,20),
           f FLOAT, dbl DOUBLE, b BIT(12), b64 BIT(64), y YEAR, dt DATE, tm TIME(3), dtm DATETIME(6), dt0 DATETIME,
           ts TIMESTAMP(2) NULL, ts6 TIMESTAMP(6) NULL,
           c CHAR(5), vc VARCHAR(20), bin BINARY(4), vb VARBINARY(8), tx TEXT, bl BLOB,
           e ENUM('a','b','c'), st SET('x','y','z'), j JSON) CHARACTER SET utf8mb4;
         INSERT INTO {DB}.edge (id, bu, dt0, y) VALUES (10, 1, '2000-01-01 00:00:00', 2000);
         CREATE TABLE {DB}.`../Order-Items` (`order-id` INT PRIMARY KEY, `名前` VARCHAR(20), `select` INT);
         INSERT INTO {DB}.`../Order-Items` VALUES (1, 'x', 10), (2, 'y', 20);
         CREATE TABLE {DB}.dups (a INT, b VARCHAR(10));
         INSERT INTO {DB}.dups VALUES (1, 'x'), (1, 'x'), (2, NULL), (2, NULL), (2, NULL)"
    ))
    .await
    .expect("edge table");

    let emu = Emulator::start(&[]).expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let runner =
        TaskRunner::new(config(&url, &emu, dir.path()), sink(&emu, dir.path())).expect("runner");
    let opts = RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let state = runner.run(&opts).await.expect("first run");
    assert!(
        matches!(state.phase, Phase::Incremental(_)),
        "{:?}",
        state.phase
    );
    assert_equal(&runner).await;
    let client = runner.sink().client().clone();
    let log_table = client.table("customers_log").await.expect("t_log");
    let keys: Vec<&str> = log_table
        .schema
        .partition_keys
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "new_dts_sync_modifytime_year",
            "new_dts_sync_modifytime_month",
            "new_dts_sync_modifytime_day"
        ]
    );
    // A name MaxCompute does not take lands escaped, with its columns.
    let hostile =
        sync_core::naming::destination_name(sync_core::naming::NameKind::Table, "../order-items");
    let table = client
        .table(&format!("{hostile}_base"))
        .await
        .expect("the escaped table");
    let names: Vec<&str> = table
        .schema
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        names.len() == 3 && names[0].starts_with("order_id_") && names[2] == "select",
        "{names:?}"
    );
    let base = client.table("edge_base").await.expect("edge_base");
    let types: Vec<(String, String)> = base
        .schema
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty.to_string()))
        .collect();
    for (col, ty) in [
        ("bu", "decimal(20,0)"),
        ("tu", "smallint"),
        ("d65", "string"),
        ("d38", "string"),
        ("b", "bigint"),
        ("b64", "decimal(20,0)"),
        ("tm", "string"),
        ("dtm", "timestamp_ntz"),
        ("dt0", "datetime"),
        ("ts", "datetime"),
        ("ts6", "timestamp"),
        ("bin", "binary"),
        ("j", "string"),
    ] {
        assert!(
            types.contains(&(col.to_owned(), ty.to_owned())),
            "{col} should be {ty}: {types:?}"
        );
    }

    // After the snapshot: updates (one moving a primary key), deletes, inserts,
    // a multi-statement transaction, the key-less table, and every edge value.
    conn.query_drop(format!(
        "USE {DB};
         UPDATE customers SET credit = credit + 1.25, name = CONCAT(name, ' ✓') WHERE id % 7 = 0;
         UPDATE products SET id = id + 5 WHERE id = 1000000000000;
         DELETE FROM order_items WHERE order_id % 11 = 0;
         INSERT INTO customers (id, email, name, country, signup_at) VALUES (100001, 'new@example.com', 'Neu', 'DE', '2026-01-02 03:04:05.678');
         START TRANSACTION;
         UPDATE orders SET total = total * 2, note = NULL WHERE id BETWEEN 10 AND 40;
         DELETE FROM orders WHERE id = 41;
         INSERT INTO orders (id, customer_id, total, currency) VALUES (900001, 1, 9.5, 'USD');
         COMMIT;
         DELETE FROM event_log WHERE level < 0;
         UPDATE `../Order-Items` SET `名前` = 'z', `select` = 21 WHERE `order-id` = 2;
         INSERT INTO `../Order-Items` VALUES (3, '名', 30);
         UPDATE customers SET last_login = NULL, preferred_time = '-12:30:00.5', flags = b'11111111' WHERE id = 2;
         INSERT INTO edge VALUES
           (1, -128, 255, -8388608, 16777215, 18446744073709551615, -1234567.891,
            -12345678901234567890123456789012345.123456789012345678901234567891, 123456789012345678.12345678901234567890,
            -1.5e-3, 1.7976931348623157e308, b'101010101010', b'1111111111111111111111111111111111111111111111111111111111111111',
            1901, '1000-01-01', '-838:59:59.000', '2262-04-11 23:47:16.854775', '9999-12-31 23:59:59',
            '1970-01-01 00:00:01.01', '2038-01-19 03:14:07.999999', 'ab  ', '🚲 ünïcode', X'01000000', X'', '', X'00FF00', 'a', 'x,z', '{{\"k\": [1, 2.5, null]}}'),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
           (3, 127, 0, 8388607, 0, 0, 0, 0, 0, 0, -0.0, b'0', b'0', 2155, '2024-02-29', '00:00:00.001', '1677-09-22 00:00:00.000001',
            '1000-01-01 00:00:00', '2038-01-19 03:14:07.99', '1970-01-01 00:00:01.000001', '', '', X'00000000', X'0000', 'x', X'', 'c', '', '[]');
         UPDATE edge SET bin = X'00000001', c = 'zz', e = 'b', st = 'y' WHERE id = 3;
         DELETE FROM edge WHERE id = 2;
         UPDATE dups SET b = 'y' WHERE a = 1 LIMIT 1;
         DELETE FROM dups WHERE a = 2 LIMIT 1;"
    ))
    .await
    .expect("changes");
    let state = runner.run(&opts).await.expect("catch up");
    let Phase::Incremental(inc) = &state.phase else {
        panic!("{:?}", state.phase)
    };
    assert!(inc.pending.is_none());
    assert_equal(&runner).await;

    // 42 customers with id % 7 = 0 updated (two records each), id 2 updated
    // alone, one inserted: the flags as DTS writes them, no record doubled.
    let t = runner
        .tables()
        .await
        .expect("tables")
        .into_iter()
        .find(|t| t.dest == "customers")
        .expect("customers");
    let log = runner
        .sink()
        .read_table("customers_log", &t.log_schema)
        .await
        .expect("read t_log");
    let ops = strings(&log, "new_dts_sync_operation_flag");
    let updated = (1..=300).filter(|i| i % 7 == 0).count() + 1;
    assert_eq!(ops.iter().filter(|o| *o == "U").count(), 2 * updated);
    assert_eq!(ops.iter().filter(|o| *o == "I").count(), 1);
    let before = strings(&log, "new_dts_sync_before_flag");
    let ids: Vec<i64> = log
        .iter()
        .flat_map(|b| {
            b.column_by_name("new_dts_sync_record_id")
                .expect("id")
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .expect("i64")
                .values()
                .to_vec()
        })
        .collect();
    let unique: HashSet<(i64, &String)> = ids.iter().copied().zip(&before).collect();
    assert_eq!(unique.len(), ids.len(), "a t_log record is doubled");

    pyodps_merge_matches_source(&python, &emu, &client, &mut conn).await;

    conn.query_drop(format!("DROP DATABASE {DB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}

// ---------------------------------------------------------------------------
// Every valid MySQL value, through both Tunnel formats.
// ---------------------------------------------------------------------------

const EDGE_DB: &str = "core_mc_edges";
const EDGE_PROJECT: &str = "mc_edges";

fn edge_config(url: &str, emu: &Emulator, dir: &std::path::Path, policy: &str) -> TaskConfig {
    toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7112
        [destination]
        kind = "maxcompute"
        endpoint = "{endpoint}"
        project = "{EDGE_PROJECT}"
        oversized_values = "{policy}"
        [objects]
        include = ["{EDGE_DB}.*"]
        [sync]
        types = ["schema", "full", "incremental"]
        state_dir = "{state}"
        log_partitions = ["year"]
        chunk_rows = 3
        batch_rows = 4
        "#,
        endpoint = emu.endpoint,
        state = dir.join("state").display(),
    ))
    .expect("task file")
}

fn edge_runner(
    url: &str,
    emu: &Emulator,
    dir: &std::path::Path,
    policy: &str,
) -> TaskRunner<MaxComputeSink> {
    let client = odps_tunnel::Client::new(
        &emu.endpoint,
        EDGE_PROJECT,
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .expect("client");
    let sink = MaxComputeSink::new(client, dir.join("state").join("maxcompute-units"));
    TaskRunner::new(edge_config(url, emu, dir, policy), sink).expect("runner")
}

/// The source's edge rows as the destination must hold them.
async fn edge_source_rows(
    conn: &mut mysql_async::Conn,
    columns: &[EdgeColumn],
    policy_of: impl Fn(i64) -> &'static str,
) -> Vec<Vec<Option<String>>> {
    conn.query_drop("SET time_zone = '+00:00'")
        .await
        .expect("zone");
    let rows: Vec<mysql_async::Row> = conn
        .query(edges::select_sql(EDGE_DB, columns))
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
    edges::expected_rows(raw, columns, policy_of)
}

fn pyodps_edge_merge(
    python: &std::path::Path,
    emu: &Emulator,
    columns: &[EdgeColumn],
) -> Vec<Vec<Option<String>>> {
    let project = edges::Project {
        endpoint: &emu.endpoint,
        tunnel: &emu.tunnel,
        name: EDGE_PROJECT,
        keys: (ACCESS_ID, ACCESS_KEY),
    };
    edges::pyodps_merge(python, &project, columns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edge_value_lands_exactly_and_pyodps_merges_it() {
    let Some(python) = pyodps_python() else {
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

    let emu = Emulator::start(&[]).expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let runner = edge_runner(&url, &emu, dir.path(), "truncate");
    let state = runner.run(&opts).await.expect("full phase");
    assert!(
        matches!(state.phase, Phase::Incremental(_)),
        "{:?}",
        state.phase
    );
    let client = runner.sink().client().clone();
    let types: Vec<(String, String)> = client
        .table("edge_values_base")
        .await
        .expect("edge_values_base")
        .schema
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty.to_string()))
        .collect();
    for (col, ty) in [
        ("dt0", "datetime"),
        ("dt3", "datetime"),
        ("dt4", "timestamp_ntz"),
        ("dt6", "timestamp_ntz"),
        ("ts3", "datetime"),
        ("ts6", "timestamp"),
        ("d", "date"),
        ("t6", "string"),
        ("y", "int"),
        ("d65", "string"),
        ("d38", "decimal(38,18)"),
        ("bu", "decimal(20,0)"),
        ("b64", "decimal(20,0)"),
        ("txt", "string"),
        ("bl", "binary"),
    ] {
        assert!(
            types.contains(&(col.to_owned(), ty.to_owned())),
            "{col} should be {ty}: {types:?}"
        );
    }
    // Row 7's text and blob are over the limit, cut to it and counted.
    let metrics = runner.metrics().render();
    assert!(
        metrics.contains(&format!(
            "sync_oversized_values_total{{table=\"{EDGE_DB}.edge_values\",column=\"txt\"}} 1"
        )) && metrics.contains("column=\"bl\"} 1"),
        "{metrics}"
    );
    let progress = sync_core::status::read(&dir.path().join("state")).expect("progress.json");
    let lines = sync_core::status::describe(&progress, "incremental", 0.0, None).join("\n");
    assert!(
        lines.contains(
            "2 values over the destination's field size limit this run, cut to the limit"
        ) && lines.contains("id=7"),
        "{lines}"
    );
    let reports = runner.verify().await.expect("verify");
    assert!(reports[0].is_equal(), "{:?}", reports[0]);
    assert_eq!(reports[0].oversized, 1, "{:?}", reports[0]);
    assert!(
        reports[0].oversized_keys[0].starts_with("7 (txt, bl)"),
        "{:?}",
        reports[0]
    );

    // The incremental phase: every edge again, each extreme moved to the
    // other end, a key change, deletes (their before images too).
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
    let state = runner.run(&opts).await.expect("incremental phase");
    let Phase::Incremental(inc) = &state.phase else {
        panic!("{:?}", state.phase)
    };
    assert!(inc.pending.is_none());
    let reports = runner.verify().await.expect("verify");
    assert!(reports[0].is_equal(), "{:?}", reports[0]);
    assert_eq!(reports[0].oversized, 1, "row 7 still: {:?}", reports[0]);

    // `stop`: the task stops at the next such value, naming table, key and column.
    conn.query_drop(format!(
        "INSERT INTO {EDGE_DB}.edge_values (id, txt, bl) VALUES (30, REPEAT('x', 8388609), REPEAT(X'01', 9000000))"
    ))
    .await
    .expect("oversized row");
    let stopping = edge_runner(&url, &emu, dir.path(), "stop");
    let err = stopping.run(&opts).await.expect_err("stops").to_string();
    assert!(
        err.contains(&format!("{EDGE_DB}.edge_values"))
            && err.contains("id=30")
            && err.contains("`txt`")
            && err.contains("oversized_values"),
        "{err}"
    );
    let progress = sync_core::status::read(&dir.path().join("state")).expect("progress.json");
    let lines = sync_core::status::describe(&progress, "incremental", 0.0, None).join("\n");
    assert!(
        lines.contains("stopped at a value over") && lines.contains("id=30"),
        "{lines}"
    );
    // `null` goes on past it.
    let nulling = edge_runner(&url, &emu, dir.path(), "null");
    nulling.run(&opts).await.expect("null policy");
    let reports = nulling.verify().await.expect("verify");
    assert!(reports[0].is_equal(), "{:?}", reports[0]);
    assert_eq!(reports[0].oversized, 2, "rows 7 and 30: {:?}", reports[0]);

    // pyodps's merge equals the source: every edge exactly, zero dates NULL,
    // row 7's values cut to the limit, row 30's NULL.
    let source = edge_source_rows(&mut conn, &columns, |id| {
        if id == 30 { "null" } else { "truncate" }
    })
    .await;
    let ours = pyodps_edge_merge(&python, &emu, &columns);
    edges::assert_rows_equal("edge_values", &ours, &source, &columns);

    conn.query_drop(format!("DROP DATABASE {EDGE_DB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}

/// pyodps reads a table's rows in the machine's zone (`TZ`), as a user in
/// that zone does: every value as text, the partition specs too.
const PYODPS_ZONED_ROWS: &str = r#"
import datetime, decimal, json, sys
from odps import ODPS, options
from odps.tunnel import TableTunnel

options.allow_antique_date = True
endpoint, tunnel_endpoint, project, id_, key, table = sys.argv[1:7]
o = ODPS(id_, key, project=project, endpoint=endpoint)
tunnel = TableTunnel(o, endpoint=tunnel_endpoint)
t = o.get_table(table)
specs = [str(p.partition_spec) for p in t.partitions] if t.table_schema.partitions else [None]
out = []
for spec in specs:
    kw = {"partition_spec": spec} if spec else {}
    down = tunnel.create_download_session(table, **kw)
    if down.count == 0:
        continue
    names = [c.name for c in down.schema.simple_columns]
    with down.open_record_reader(0, down.count) as reader:
        for rec in reader:
            row = {"_partition": spec}
            for n, v in zip(names, rec.values):
                if isinstance(v, datetime.datetime):
                    v = v.strftime("%Y-%m-%d %H:%M:%S.%f").rjust(26, "0")[:23]
                if isinstance(v, decimal.Decimal):
                    v = format(v, "f")
                row[n] = None if v is None else str(v)
            out.append(row)
print(json.dumps(out))
"#;

/// In a project whose `odps.sql.timezone` is Asia/Shanghai (the service's
/// default), a DATETIME reads through pyodps as the wall clock the source
/// shows — over the whole range, Shanghai's local mean time before 1901
/// and its repeated summer-time hour included — while a TIMESTAMP keeps
/// its instant and the `modifytime_*` partitions follow
/// `partition_timezone`. A wall clock the zone skipped stops the task,
/// naming the column and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datetimes_read_unchanged_in_an_asia_shanghai_project() {
    let Some(python) = pyodps_python() else {
        panic!(
            "this test needs a Python with pyodps and pyarrow: run `scripts/pyodps-tests` \
             (it creates .venv) or set ODPS_TEST_PYTHON"
        );
    };
    const ZDB: &str = "core_mc_zone";
    const ZPROJECT: &str = "mc_zone";
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!(
        "SET time_zone = '+00:00';
         DROP DATABASE IF EXISTS {ZDB}; CREATE DATABASE {ZDB};
         CREATE TABLE {ZDB}.events (id INT PRIMARY KEY, dt0 DATETIME, dt3 DATETIME(3),
           ts3 TIMESTAMP(3) NULL);
         INSERT INTO {ZDB}.events VALUES
           (1, '1000-01-01 00:00:00', '1000-01-01 00:00:00.000', NULL),
           (2, '1928-01-01 00:00:00', '1900-06-30 12:00:00.001', '1970-01-01 00:00:01'),
           (3, '1986-09-14 01:30:00', '1991-09-15 01:30:00.500', '1986-09-13 17:30:00'),
           (4, '2024-01-02 03:04:05', '2024-01-02 03:04:05.123', '2024-01-01 19:04:05.123'),
           (5, '9999-12-31 23:59:59', '9999-12-31 23:59:59.999', '2038-01-19 03:14:07.999');"
    ))
    .await
    .expect("source");
    let emu = Emulator::start(&["--timezone", "Asia/Shanghai"]).expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg: TaskConfig = toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7113
        [destination]
        kind = "maxcompute"
        endpoint = "{endpoint}"
        project = "{ZPROJECT}"
        [objects]
        include = ["{ZDB}.*"]
        [sync]
        types = ["schema", "full", "incremental"]
        state_dir = "{state}"
        log_partitions = ["day", "hour"]
        partition_timezone = "Asia/Shanghai"
        "#,
        endpoint = emu.endpoint,
        state = dir.path().join("state").display(),
    ))
    .expect("task file");
    let client = odps_tunnel::Client::new(
        &emu.endpoint,
        ZPROJECT,
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .expect("client");
    let sink = MaxComputeSink::new(client, dir.path().join("state").join("maxcompute-units"));
    assert_eq!(
        sink.timezone().await.expect("zone").name(),
        "Asia/Shanghai",
        "the project's own zone, asked of the service"
    );
    let runner = TaskRunner::new(cfg, sink).expect("runner");
    let opts = RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };
    runner.run(&opts).await.expect("full phase");
    conn.query_drop(format!(
        "SET time_zone = '+00:00';
         INSERT INTO {ZDB}.events VALUES (6, '2000-02-29 23:59:59', '1986-09-14 01:59:59.999',
           '2000-02-29 15:59:59.500');
         UPDATE {ZDB}.events SET dt0 = '1949-10-01 15:00:00', dt3 = '1000-01-01 00:00:00.001' WHERE id = 4;
         DELETE FROM {ZDB}.events WHERE id = 2;"
    ))
    .await
    .expect("changes");
    runner.run(&opts).await.expect("incremental phase");
    let reports = runner.verify().await.expect("verify");
    assert!(reports[0].is_equal(), "{:?}", reports[0]);

    // The referee: pyodps in Shanghai shows the source's wall clocks, and
    // TIMESTAMPs as the source shows them in +08:00.
    let read = |table: &str| {
        let out = Command::new(&python)
            .args([
                "-c",
                PYODPS_ZONED_ROWS,
                &emu.endpoint,
                &emu.tunnel,
                ZPROJECT,
            ])
            .args([ACCESS_ID, ACCESS_KEY, table])
            .env("TZ", "Asia/Shanghai")
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "pyodps failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<serde_json::Map<String, serde_json::Value>>>(&out.stdout)
            .expect("json")
    };
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    conn.query_drop("SET time_zone = '+08:00'")
        .await
        .expect("zone");
    type Row = (String, Option<String>, Option<String>, Option<String>);
    let source: Vec<Row> = conn
        .query(format!(
            "SELECT CAST(id AS CHAR),
               DATE_FORMAT(dt0, '%Y-%m-%d %H:%i:%s.000'), DATE_FORMAT(dt3, '%Y-%m-%d %H:%i:%s.%f'),
               DATE_FORMAT(ts3, '%Y-%m-%d %H:%i:%s.%f') FROM {ZDB}.events ORDER BY id"
        ))
        .await
        .expect("source rows");
    assert_eq!(source.len(), 5, "ids 1, 3, 4, 5, 6");
    let base = read("events_base");
    let log = read("events_log");
    for (id, dt0, dt3, ts3) in &source {
        // The merged row: the latest after image in the log, else the base row.
        let latest = log
            .iter()
            .filter(|r| text(r.get("id")).as_deref() == Some(id.as_str()))
            .filter(|r| text(r.get("new_dts_sync_after_flag")).as_deref() == Some("Y"))
            .max_by_key(|r| {
                text(r.get("new_dts_sync_record_id"))
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0)
            })
            .or_else(|| {
                base.iter()
                    .find(|r| text(r.get("id")).as_deref() == Some(id.as_str()))
            })
            .unwrap_or_else(|| panic!("row {id} missing"));
        let ms = |s: &Option<String>| s.as_ref().map(|s| s[..23].to_owned());
        assert_eq!(text(latest.get("dt0")), ms(dt0), "id {id} dt0");
        assert_eq!(text(latest.get("dt3")), ms(dt3), "id {id} dt3");
        assert_eq!(text(latest.get("ts3")), ms(ts3), "id {id} ts3");
    }
    // Partitions: the Shanghai day and hour of each record's event time.
    assert!(!log.is_empty());
    for r in &log {
        let utc: i64 = text(r.get("new_dts_sync_utc_timestamp"))
            .and_then(|s| s.parse().ok())
            .expect("utc_timestamp");
        let local = utc + 8 * 3600;
        let want = format!(
            "new_dts_sync_modifytime_day='{:02}',new_dts_sync_modifytime_hour='{:02}'",
            sync_testkit_day(local),
            local.rem_euclid(86_400) / 3600
        );
        assert_eq!(text(r.get("_partition")).as_deref(), Some(want.as_str()));
    }

    // 1986-05-04 02:30 never happened in Shanghai: the task stops there.
    conn.query_drop(format!(
        "INSERT INTO {ZDB}.events (id, dt0) VALUES (7, '1986-05-04 02:30:00')"
    ))
    .await
    .expect("gap row");
    let err = runner.run(&opts).await.expect_err("stops").to_string();
    assert!(
        err.contains("`dt0`")
            && err.contains("never happened in Asia/Shanghai")
            && err.contains("[destination] timezone"),
        "{err}"
    );
}

/// The day of the month of Unix seconds `t`.
fn sync_testkit_day(t: i64) -> u32 {
    let days = t.div_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), day only.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    (doy - (153 * mp + 2) / 5 + 1) as u32
}

/// `type_system = "odps1"` into a 1.0 project (which refuses DDL with a 2.0
/// type unless the job sets `odps.sql.type.system.odps2`): the tables get
/// 1.0 types only, and pyodps reads every value back as the README's
/// mapping says, through both phases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_0_project_gets_1_0_types_and_every_value() {
    let Some(python) = pyodps_python() else {
        panic!(
            "this test needs a Python with pyodps and pyarrow: run `scripts/pyodps-tests` \
             (it creates .venv) or set ODPS_TEST_PYTHON"
        );
    };
    const TDB: &str = "core_mc_odps1";
    const TPROJECT: &str = "mc_odps1";
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!(
        "SET time_zone = '+00:00';
         DROP DATABASE IF EXISTS {TDB}; CREATE DATABASE {TDB};
         CREATE TABLE {TDB}.v (id INT PRIMARY KEY, ti TINYINT, iu INT UNSIGNED, bu BIGINT UNSIGNED,
           f FLOAT, dc DECIMAL(10,2), dw DECIMAL(65,30), d DATE, dt0 DATETIME, dt6 DATETIME(6),
           ts6 TIMESTAMP(6) NULL, tm TIME(3), s VARCHAR(20), bl BLOB, b BIT(5));
         INSERT INTO {TDB}.v VALUES
           (1, -128, 4294967295, 18446744073709551615, 0.1, -12345678.90,
            '-99999999999999999999999999999999999.999999999999999999999999999999', '1000-01-01',
            '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
            '-838:59:59.000', 'ü😀', X'00FF10', b'10101'),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
    ))
    .await
    .expect("source");
    let emu = Emulator::start(&["--type-system", "odps1"]).expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg: TaskConfig = toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7114
        [destination]
        kind = "maxcompute"
        endpoint = "{endpoint}"
        project = "{TPROJECT}"
        type_system = "odps1"
        [objects]
        include = ["{TDB}.*"]
        [sync]
        types = ["schema", "full", "incremental"]
        state_dir = "{state}"
        "#,
        endpoint = emu.endpoint,
        state = dir.path().join("state").display(),
    ))
    .expect("task file");
    let client = odps_tunnel::Client::new(
        &emu.endpoint,
        TPROJECT,
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .expect("client");
    let sink = MaxComputeSink::new(client.clone(), dir.path().join("state/maxcompute-units"))
        .with_type_system(sync_core::mapping::TypeSystem::Odps1);
    let runner = TaskRunner::new(cfg, sink).expect("runner");
    let opts = RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };
    runner.run(&opts).await.expect("full phase");
    conn.query_drop(format!(
        "INSERT INTO {TDB}.v VALUES (3, 127, 0, 0, -3.25, 0.05, '0.000000000000000000000000000001',
           '9999-12-31', '9999-12-31 23:59:59', '1000-01-01 00:00:00.000001',
           '1970-01-01 00:00:01.000001', '838:59:59.999', '', X'', b'0');
         UPDATE {TDB}.v SET s = 'changed', dt6 = '2024-02-29 13:14:15.123456' WHERE id = 1;"
    ))
    .await
    .expect("changes");
    runner.run(&opts).await.expect("incremental phase");
    let reports = runner.verify().await.expect("verify");
    assert!(reports[0].is_equal(), "{:?}", reports[0]);

    for table in ["v_base", "v_log"] {
        for c in client.table(table).await.expect("table").schema.columns {
            let ty = c.ty.to_string();
            assert!(
                [
                    "bigint", "double", "decimal", "string", "datetime", "boolean"
                ]
                .contains(&ty.as_str()),
                "{table}.{}: {ty} is not a 1.0 type",
                c.name
            );
        }
    }

    // pyodps's merge of what landed against the source, rendered as the
    // 1.0 mapping says.
    let read = |table: &str| {
        let out = Command::new(&python)
            .args([
                "-c",
                PYODPS_ZONED_ROWS,
                &emu.endpoint,
                &emu.tunnel,
                TPROJECT,
            ])
            .args([ACCESS_ID, ACCESS_KEY, table])
            .env("TZ", "UTC")
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "pyodps failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<serde_json::Map<String, serde_json::Value>>>(&out.stdout)
            .expect("json")
    };
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    let (base, log) = (read("v_base"), read("v_log"));
    conn.query_drop("SET time_zone = '+00:00'")
        .await
        .expect("zone");
    let source: Vec<mysql_async::Row> = conn
        .query(format!(
            "SELECT CAST(id AS CHAR), CAST(ti AS CHAR), CAST(iu AS CHAR), CAST(bu AS CHAR),
               CAST(f AS CHAR), CAST(dc AS CHAR), CAST(dw AS CHAR),
               DATE_FORMAT(d, '%Y-%m-%d 00:00:00.000'), DATE_FORMAT(dt0, '%Y-%m-%d %H:%i:%s.000'),
               DATE_FORMAT(dt6, '%Y-%m-%d %H:%i:%s.%f'), DATE_FORMAT(ts6, '%Y-%m-%d %H:%i:%s.%f'),
               CAST(tm AS CHAR), s, HEX(bl), CAST(b + 0 AS CHAR)
             FROM {TDB}.v ORDER BY id"
        ))
        .await
        .expect("source rows");
    assert_eq!(source.len(), 3);
    let names = [
        "id", "ti", "iu", "bu", "f", "dc", "dw", "d", "dt0", "dt6", "ts6", "tm", "s", "bl", "b",
    ];
    // Decimals as pyodps prints them carry the 1.0 scale's zeros.
    let number = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    for row in source {
        let id: String = row.get(0).expect("id");
        let latest = log
            .iter()
            .filter(|r| text(r.get("id")).as_deref() == Some(id.as_str()))
            .filter(|r| text(r.get("new_dts_sync_after_flag")).as_deref() == Some("Y"))
            .max_by_key(|r| {
                text(r.get("new_dts_sync_record_id"))
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0)
            })
            .or_else(|| {
                base.iter()
                    .find(|r| text(r.get("id")).as_deref() == Some(id.as_str()))
            })
            .unwrap_or_else(|| panic!("row {id} missing"));
        for (i, name) in names.iter().enumerate() {
            let want: Option<String> = row.get(i).expect("value");
            let got = text(latest.get(*name));
            let same = match (name, &want, &got) {
                (&"f", Some(w), Some(g)) => {
                    w.parse::<f32>().ok() == g.parse::<f64>().ok().map(|v| v as f32)
                }
                (&"bu" | &"dc" | &"dw", Some(w), Some(g)) => number(w) == number(g),
                (&"dt6" | &"ts6", Some(w), Some(g)) => w == g,
                (&"d" | &"dt0", Some(w), Some(g)) => g.starts_with(w.as_str()),
                _ => want == got,
            };
            assert!(
                same,
                "id {id} {name}: pyodps read {got:?}, the source holds {want:?}"
            );
        }
    }
}

/// Every `t_log` record of a MaxCompute table as `(record_id,
/// before_flag)`, asserted to be there once each.
async fn unique_mc_records(runner: &TaskRunner<MaxComputeSink>, table: &str) -> Vec<(i64, String)> {
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new(
            "new_dts_sync_record_id",
            arrow_schema::DataType::Int64,
            true,
        ),
        arrow_schema::Field::new(
            "new_dts_sync_before_flag",
            arrow_schema::DataType::Utf8,
            true,
        ),
    ]));
    let mut out = Vec::new();
    for b in runner
        .sink()
        .read_table(table, &schema)
        .await
        .expect("t_log")
    {
        let ids = b
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .expect("i64")
            .clone();
        let flags = b
            .column(1)
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("utf8")
            .clone();
        for i in 0..b.num_rows() {
            out.push((ids.value(i), flags.value(i).to_owned()));
        }
    }
    let mut seen = HashSet::new();
    for r in &out {
        assert!(seen.insert(r.clone()), "{r:?} twice in {table}");
    }
    out
}

/// `conflicting_tables = "ignore"` onto MaxCompute tables an earlier task
/// filled: the full phase skips the keys `t_base` holds, new changes get
/// record ids above the old ones, the merge equals the source; a table of
/// other column types fails the precheck, naming the columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_writes_into_an_earlier_tasks_maxcompute_tables() {
    const IDB: &str = "core_mc_ignore";
    const IPROJECT: &str = "mc_ignore";
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {IDB}; CREATE DATABASE {IDB}; USE {IDB};
         CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_20;
         CREATE TABLE u (id INT PRIMARY KEY, v VARCHAR(5))"
    ))
    .await
    .expect("source");
    let emu = Emulator::start(&[]).expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let client = odps_tunnel::Client::new(
        &emu.endpoint,
        IPROJECT,
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .expect("client");
    let task = |state: &str, server_id: u32, include: &str, ignore: bool| {
        let cfg: TaskConfig = toml::from_str(&format!(
            r#"
            [source]
            url = "{url}"
            server_id = {server_id}
            [destination]
            kind = "maxcompute"
            endpoint = "{endpoint}"
            project = "{IPROJECT}"
            [objects]
            include = ["{IDB}.{include}"]
            conflicting_tables = "{mode}"
            [sync]
            types = ["schema", "full", "incremental"]
            state_dir = "{state}"
            log_partitions = ["year"]
            chunk_rows = 7
            "#,
            endpoint = emu.endpoint,
            mode = if ignore { "ignore" } else { "error" },
            state = dir.path().join(state).display(),
        ))
        .expect("task file");
        let sink = MaxComputeSink::new(client.clone(), dir.path().join(state).join("units"));
        TaskRunner::new(cfg, sink).expect("runner")
    };
    let opts = || RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };

    let earlier = task("state-earlier", 7115, "t", false);
    earlier.run(&opts()).await.expect("earlier: full");
    conn.query_drop(format!(
        "USE {IDB}; UPDATE t SET v = 'old' WHERE id = 2; DELETE FROM t WHERE id = 3;
         INSERT INTO t VALUES (101, 'a')"
    ))
    .await
    .expect("earlier changes");
    earlier.run(&opts()).await.expect("earlier: changes");
    let old = unique_mc_records(&earlier, "t_log").await;
    let old_max = old.iter().map(|r| r.0).max().expect("old records");
    assert_eq!(old_max, 3);
    // That task is gone for good: its owner list goes from the comments.
    for table in ["t_base", "t_log"] {
        client
            .run_sql(&format!("ALTER TABLE {table} SET COMMENT ''"))
            .await
            .expect("comment");
    }

    // A table of other types is refused, naming the columns.
    client
        .run_sql("CREATE TABLE u_base (id BIGINT, v STRING, extra DOUBLE)")
        .await
        .expect("u_base");
    let report = task("state-u", 7116, "u", true)
        .precheck()
        .await
        .expect("precheck");
    let c = report.get("destination_schema").expect("check");
    assert_eq!(c.outcome, sync_core::precheck::Outcome::Failure, "{report}");
    assert!(
        c.message.contains(
            "column `id` is bigint, the task writes int; column `extra` (double) is not one the \
             task writes"
        ),
        "{}",
        c.message
    );

    let runner = task("state-new", 7116, "t", true);
    let state = runner.run(&opts()).await.expect("new: full");
    let Phase::Incremental(inc) = &state.phase else {
        panic!("{:?}", state.phase)
    };
    assert_eq!(inc.next_record_id, 4, "above the earlier task's records");
    let skipped = state.existing.as_ref().map(|e| e.skipped.clone());
    // 19 of the 20 source rows have keys t_base held: ids 1-20 but 3 (101
    // was in t_log only).
    assert_eq!(
        skipped.unwrap_or_default().get(&format!("{IDB}.t")),
        Some(&19)
    );
    conn.query_drop(format!(
        "USE {IDB}; UPDATE t SET v = 'new' WHERE id IN (2, 101); DELETE FROM t WHERE id = 4;
         INSERT INTO t VALUES (200, 'n')"
    ))
    .await
    .expect("new changes");
    // A new runner: a restart reads nothing again and keeps counting on.
    let runner = task("state-new", 7116, "t", true);
    runner.run(&opts()).await.expect("new: changes");
    let all = unique_mc_records(&runner, "t_log").await;
    let new_ids: Vec<i64> = all
        .iter()
        .map(|r| r.0)
        .filter(|id| !old.iter().any(|o| o.0 == *id))
        .collect();
    assert_eq!(
        new_ids.len(),
        6,
        "two updates of two images, a delete, an insert"
    );
    assert!(new_ids.iter().all(|&id| id > old_max), "{new_ids:?}");
    let reports = runner.verify().await.expect("verify");
    assert_eq!(reports.len(), 1);
    assert!(reports[0].is_equal(), "{:?}", reports[0]);
    conn.query_drop(format!("DROP DATABASE {IDB}"))
        .await
        .expect("drop");
}

// ---------------------------------------------------------------------------
// The mirror table (`[destination] mirror`).

const MIRROR_DB: &str = "core_mc_mirror";

/// pyodps reads each mirror table as a user would: `open_reader` on the
/// Delta table (which runs `SELECT *`), every value as text.
const PYODPS_READ_MIRRORS: &str = r#"
import json, sys
from odps import ODPS

endpoint, project, id_, key = sys.argv[1:5]
tables = json.loads(sys.argv[5])
o = ODPS(id_, key, project=project, endpoint=endpoint)
out = {}
for name in tables:
    t = o.get_table(name)
    assert t.is_transactional and list(t.primary_key), name
    with t.open_reader() as reader:
        rows = [[None if v is None else str(v) for v in r.values] for r in reader]
    out[name] = {"key": list(t.primary_key), "rows": sorted(rows, key=lambda r: [x or "" for x in r])}
print(json.dumps(out))
"#;

/// The mirror tables as pyodps reads them: per table its key and rows.
fn pyodps_mirrors(
    python: &std::path::Path,
    emu: &Emulator,
    project: &str,
    tables: &[&str],
) -> serde_json::Value {
    let out = Command::new(python)
        .args([
            "-c",
            PYODPS_READ_MIRRORS,
            &emu.endpoint,
            project,
            ACCESS_ID,
            ACCESS_KEY,
        ])
        .arg(serde_json::json!(tables).to_string())
        .env("TZ", "UTC")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "pyodps read of the mirrors failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json from python")
}

/// The source's rows of `select` as text, sorted like the pyodps script sorts.
async fn source_text(
    conn: &mut mysql_async::Conn,
    select: &str,
    n: usize,
) -> Vec<Vec<Option<String>>> {
    let rows: Vec<mysql_async::Row> = conn.query(select).await.expect("select");
    let mut out: Vec<Vec<Option<String>>> = rows
        .into_iter()
        .map(|r| {
            (0..n)
                .map(|i| r.get::<Option<String>, _>(i).flatten())
                .collect()
        })
        .collect();
    out.sort_by_key(|r| {
        r.iter()
            .map(|v| v.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    out
}

/// Every mirror table, read by pyodps, equals its source table.
async fn assert_mirrors_equal(
    python: &std::path::Path,
    emu: &Emulator,
    project: &str,
    conn: &mut mysql_async::Conn,
    extra: bool,
) {
    let read = pyodps_mirrors(python, emu, project, &["acct", "pair"]);
    // After `ALTER TABLE acct ADD COLUMN extra`, the mirror has it too.
    let (more, n) = if extra {
        (", CAST(extra AS CHAR)", 5)
    } else {
        ("", 4)
    };
    let acct = source_text(
        conn,
        &format!(
            "SELECT CAST(id AS CHAR), name, CAST(qty AS CHAR), CAST(big AS CHAR){more} FROM {MIRROR_DB}.acct"
        ),
        n,
    )
    .await;
    let pair = source_text(
        conn,
        &format!("SELECT CAST(a AS CHAR), b, CAST(v AS CHAR) FROM {MIRROR_DB}.pair"),
        3,
    )
    .await;
    for (name, source, key) in [("acct", acct, vec!["id"]), ("pair", pair, vec!["a", "b"])] {
        let ours: Vec<Vec<Option<String>>> =
            serde_json::from_value(read[name]["rows"].clone()).expect("rows");
        let keys: Vec<String> = serde_json::from_value(read[name]["key"].clone()).expect("key");
        assert_eq!(keys, key, "{name}: the mirror's primary key");
        assert!(!source.is_empty(), "{name} is empty");
        assert_eq!(ours.len(), source.len(), "{name}: the mirror's row count");
        assert_eq!(ours, source, "{name}: the mirror differs from the source");
    }
}

fn mirror_config(
    url: &str,
    emu: &Emulator,
    dir: &std::path::Path,
    project: &str,
    types: &str,
) -> TaskConfig {
    toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7117
        [destination]
        kind = "maxcompute"
        endpoint = "{endpoint}"
        project = "{project}"
        mirror = true
        mirror_commit_seconds = 0
        [objects]
        include = ["{MIRROR_DB}.*"]
        [sync]
        types = [{types}]
        state_dir = "{state}"
        chunk_rows = 40
        batch_rows = 25
        "#,
        endpoint = emu.endpoint,
        state = dir.join("state").display(),
    ))
    .expect("task file")
}

/// `[destination] mirror`: inserts, updates, primary-key changes, deletes
/// and multi-statement transactions, during the full phase and after it,
/// land in each keyed table's Delta mirror, which pyodps reads as is equal
/// to the source; the key-less table gets none, and a precheck warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_table_equals_the_source_through_full_and_incremental() {
    let Some(python) = pyodps_python() else {
        panic!(
            "this test needs a Python with pyodps and pyarrow: run `scripts/pyodps-tests` \
             (it creates .venv) or set ODPS_TEST_PYTHON"
        );
    };
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    let mut rows = Vec::new();
    for i in 1..=300 {
        rows.push(format!(
            "({i}, 'n{i}', {}, {})",
            i % 17,
            i64::from(i) * 1_000_000_007
        ));
    }
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {MIRROR_DB};
         CREATE DATABASE {MIRROR_DB};
         USE {MIRROR_DB};
         CREATE TABLE acct (id INT PRIMARY KEY, name VARCHAR(20), qty INT, big BIGINT);
         INSERT INTO acct VALUES {};
         CREATE TABLE pair (a INT, b VARCHAR(8), v INT, PRIMARY KEY (a, b));
         INSERT INTO pair SELECT id % 10, CONCAT('k', id % 7), id FROM acct WHERE id <= 70;
         CREATE TABLE nokey (x INT, y INT);
         INSERT INTO nokey VALUES (1, 1), (1, 1), (2, 2);",
        rows.join(", ")
    ))
    .await
    .expect("load");

    let emu = Emulator::start(&[]).expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = TaskRunner::new(
        mirror_config(
            &url,
            &emu,
            dir.path(),
            PROJECT,
            r#""schema", "full", "incremental""#,
        ),
        sink(&emu, dir.path()),
    )
    .expect("runner");
    let report = runner.precheck().await.expect("precheck");
    let warning = report
        .checks
        .iter()
        .find(|c| c.id == "mirror_keyless")
        .expect("the mirror_keyless check");
    assert_eq!(warning.outcome, sync_core::precheck::Outcome::Warning);
    assert!(warning.message.contains("nokey"), "{}", warning.message);

    // Changes while the full phase runs (the snapshot and the log overlap).
    let writer_url = url.clone();
    let writer = tokio::spawn(async move {
        let mut w = mysql_async::Conn::new(mysql_async::Opts::from_url(&writer_url).expect("url"))
            .await
            .expect("connect");
        for i in 0..20 {
            w.query_drop(format!(
                "USE {MIRROR_DB};
                 UPDATE acct SET qty = qty + 1, name = CONCAT(name, '+') WHERE id % 20 = {i};
                 INSERT INTO acct VALUES ({}, 'during', {i}, NULL);
                 DELETE FROM acct WHERE id = {};
                 START TRANSACTION;
                 UPDATE pair SET v = v + 100 WHERE a = {};
                 UPDATE acct SET id = id + 10000 WHERE id = {};
                 COMMIT;",
                1000 + i,
                3 + i * 7,
                i % 10,
                100 + i
            ))
            .await
            .expect("changes during the full phase");
        }
    });
    let opts = RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let state = runner.run(&opts).await.expect("first run");
    writer.await.expect("writer");
    assert!(
        matches!(state.phase, Phase::Incremental(_)),
        "{:?}",
        state.phase
    );
    // Catch up with whatever the writer did after the first run's end.
    runner.run(&opts).await.expect("catch up");
    let client = runner.sink().client().clone();
    assert!(client.table_exists("acct").await.expect("exists"));
    assert!(
        !client.table_exists("nokey").await.expect("exists"),
        "a table without a key gets no mirror"
    );
    assert_mirrors_equal(&python, &emu, PROJECT, &mut conn, false).await;

    // After the full phase: updates, primary-key changes (one onto a key
    // just freed), deletes, an insert deleted again, multi-statement
    // transactions, on both tables.
    conn.query_drop(format!(
        "USE {MIRROR_DB};
         UPDATE acct SET name = 'upd', qty = NULL WHERE id % 9 = 0;
         DELETE FROM acct WHERE id BETWEEN 200 AND 220;
         UPDATE acct SET id = 200 WHERE id = 230;
         INSERT INTO acct VALUES (5000, 'gone', 1, 1);
         DELETE FROM acct WHERE id = 5000;
         START TRANSACTION;
         UPDATE acct SET id = id + 100000 WHERE id BETWEEN 50 AND 60;
         INSERT INTO acct VALUES (55, 'back', 55, -1);
         DELETE FROM pair WHERE a = 3;
         UPDATE pair SET b = CONCAT(b, 'x') WHERE a = 4;
         COMMIT;
         START TRANSACTION;
         INSERT INTO pair VALUES (99, 'z', 1);
         UPDATE pair SET v = 2 WHERE a = 99;
         UPDATE pair SET a = 98 WHERE a = 99;
         COMMIT;
         ALTER TABLE acct ADD COLUMN extra INT;
         UPDATE acct SET extra = id * 3 WHERE id % 5 = 0;
         DELETE FROM acct WHERE id = 10;
         UPDATE nokey SET y = 5 WHERE x = 1 LIMIT 1;"
    ))
    .await
    .expect("changes");
    let state = runner.run(&opts).await.expect("incremental");
    let Phase::Incremental(inc) = &state.phase else {
        panic!("{:?}", state.phase)
    };
    assert_mirrors_equal(&python, &emu, PROJECT, &mut conn, true).await;

    // The state file says what the mirror holds: every record committed.
    let mirror = sync_core::mirror::load_state(&dir.path().join("state"))
        .expect("mirror state")
        .expect("written");
    assert!(mirror.tables["acct"].base_filled && mirror.tables["pair"].base_filled);
    assert_eq!(mirror.applied_through, inc.next_record_id);
    assert!(!mirror.tables.contains_key("nokey"));
    // status and /metrics show the mirror's lag: nothing waits after a clean exit.
    let progress = sync_core::status::read(&dir.path().join("state")).expect("progress.json");
    let lag = progress
        .mirror
        .clone()
        .expect("the mirror's lag in progress.json");
    assert_eq!(lag.pending_rows, 0);
    assert_eq!(lag.last_commit_unix, mirror.last_commit_unix);
    let text = sync_core::status::describe(
        &progress,
        "incremental",
        lag.last_commit_unix.unwrap_or(0) as f64,
        None,
    );
    assert!(
        text.iter()
            .any(|l| l.starts_with("mirror: 0 t_log rows not yet in the mirror tables")),
        "{text:?}"
    );
    let metrics = runner.metrics().render();
    assert!(metrics.contains("sync_mirror_pending_rows 0"), "{metrics}");
    assert!(
        metrics.contains("sync_mirror_last_commit_timestamp_seconds "),
        "{metrics}"
    );
    // t_base + t_log still merge to the source too.
    for r in runner.verify().await.expect("verify") {
        assert!(r.is_equal(), "{} differs: {r:?}", r.table);
    }

    // A task without an incremental phase fills its mirrors at the end.
    let full_dir = tempfile::tempdir().expect("tempdir");
    let project = "mc_mirror_full";
    let client = odps_tunnel::Client::new(
        &emu.endpoint,
        project,
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .expect("client");
    let full = TaskRunner::new(
        mirror_config(&url, &emu, full_dir.path(), project, r#""schema", "full""#),
        MaxComputeSink::new(
            client,
            full_dir.path().join("state").join("maxcompute-units"),
        ),
    )
    .expect("runner");
    let state = full.run(&opts).await.expect("full only");
    assert!(matches!(state.phase, Phase::Finished), "{:?}", state.phase);
    assert_mirrors_equal(&python, &emu, project, &mut conn, true).await;

    conn.query_drop(format!("DROP DATABASE {MIRROR_DB}"))
        .await
        .expect("drop");
}
