//! The whole task against the sandbox MariaDB into `odps-emulator` through
//! the MaxCompute sink: schema, full and incremental phases, then `verify`;
//! and pyodps, the official SDK, reads `t_base` and `t_log` back and merges
//! them in its own script (per key the DTS way; a table without a key as a
//! multiset), compared with the source's SELECT. (The emulator runs no
//! `SELECT` beyond `COUNT(*)`, so the SQL of `merge-sql` is run elsewhere:
//! by MariaDB in `end_to_end_local.rs`.)
//! (pyodps reads records here: its Arrow reader takes a `decimal(p,0)`
//! column for `decimal(p,18)`.)

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
    // Every type, with the edges MaxCompute can take (a DATETIME(6) travels
    // as timestamp_ntz, nanoseconds in 64 bits: see sync_core::mapping).
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
