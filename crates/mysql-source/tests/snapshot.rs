//! The parallel snapshot against the sandbox MariaDB: many column types
//! decoded exactly as the server computes them, resume from finished
//! chunks, and "position first, then lock-free chunks" under a writer.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, DurationMicrosecondType, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use binlog_parser::{DecodeContext, EventData, Value};
use mysql_source::replication::{BinlogStream, ReplicationOptions, StartPosition};
use mysql_source::schema;
use mysql_source::snapshot::{
    self, ReadProtocol, SnapshotItem, SnapshotOptions, TableJob, ThrottleLimits,
};
use mysql_source::{ConnectOptions, RawConn};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

const DB: &str = "mysql_source_snapshot";

fn sandbox() -> ConnectOptions {
    ConnectOptions::from_url(&sync_testkit::mysql_url()).expect("sandbox URL")
}

async fn one(conn: &mut RawConn, sql: &str) -> String {
    conn.query_strings(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))[0][0]
        .clone()
        .unwrap_or_default()
}

async fn create_database(conn: &mut RawConn) {
    conn.query_drop(&format!("CREATE DATABASE IF NOT EXISTS {DB}"))
        .await
        .expect("db");
}

async fn drop_table(conn: &mut RawConn, table: &str) {
    conn.query_drop(&format!("DROP TABLE {DB}.{table}"))
        .await
        .expect("drop");
}

/// A whole table to read: nothing done yet.
fn whole_table_job(schema: schema::TableSchema, plan: snapshot::TablePlan) -> TableJob {
    TableJob {
        schema: Arc::new(schema),
        plan: Arc::new(plan),
        done: BTreeSet::new(),
    }
}

/// Reads the whole table through the parallel snapshot; returns the batches and the items' chunk ids.
async fn snapshot_all(
    jobs: Vec<TableJob>,
    parallelism: usize,
    throttle: ThrottleLimits,
) -> (Vec<RecordBatch>, BTreeMap<u32, u64>) {
    snapshot_with(jobs, parallelism, throttle, ReadProtocol::Binary).await
}

async fn snapshot_with(
    jobs: Vec<TableJob>,
    parallelism: usize,
    throttle: ThrottleLimits,
    protocol: ReadProtocol,
) -> (Vec<RecordBatch>, BTreeMap<u32, u64>) {
    let mut opts = SnapshotOptions::new(sandbox());
    opts.parallelism = parallelism;
    opts.batch_rows = 333;
    opts.throttle = throttle;
    opts.protocol = protocol;
    let mut run = snapshot::start(opts, jobs);
    let mut batches = Vec::new();
    let mut chunks = BTreeMap::new();
    while let Some(item) = run.items.recv().await {
        match item.expect("snapshot") {
            SnapshotItem::Batch { batch, .. } => batches.push(batch),
            SnapshotItem::ChunkDone { chunk, rows, .. } => {
                chunks.insert(chunk, rows);
            }
        }
    }
    (batches, chunks)
}

const TYPES_DDL: &str = "(
    id BIGINT NOT NULL PRIMARY KEY,
    ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, iu INT UNSIGNED,
    bi BIGINT, bu BIGINT UNSIGNED, de DECIMAL(20,6), f FLOAT, d DOUBLE, b BIT(12), y YEAR,
    dt DATE, tm TIME(3), dtt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL,
    c CHAR(10), vc VARCHAR(100), vb VARBINARY(50), tx TEXT, bl BLOB,
    e ENUM('red','green','blue'), st SET('a','b','c'), j JSON, g POINT,
    gen INT AS (mi + 1) STORED, inv INT INVISIBLE
)";

const TYPES_INSERT: &str = "SELECT seq,
    IF(seq % 13 = 0, NULL, seq % 256 - 128), seq % 256, seq % 65536 - 32768, seq * 97 % 16777216 - 8388608,
    seq * 104729 % 4294967296, seq * 1000003 - 2500000000, 18446744073709551615 - seq,
    (seq * 7919 % 100000000) / 1000000 - 50, seq / 8.0, seq * 1.25e10, seq % 4096, 1901 + seq % 255,
    DATE('1000-01-01') + INTERVAL (seq * 37) DAY, SEC_TO_TIME(seq * 61 - 400000) + INTERVAL (seq % 1000) * 1000 MICROSECOND,
    TIMESTAMP('1969-07-20 20:17:40') + INTERVAL (seq * 7777777) SECOND + INTERVAL seq MICROSECOND,
    IF(seq % 7 = 0, NULL, FROM_UNIXTIME(1000000000 + seq * 3601) + INTERVAL seq MICROSECOND),
    CONCAT('c', seq % 1000), CONCAT('ü😀', REPEAT('v', seq % 50)), UNHEX(REPEAT(HEX(seq % 256), seq % 20)),
    REPEAT('text ', seq % 30), UNHEX(SHA2(seq, 256)),
    ELT(1 + seq % 3, 'red', 'green', 'blue'), MAKE_SET(seq % 8, 'a', 'b', 'c'),
    JSON_OBJECT('k', seq, 's', CONCAT('x', seq)), POINT(seq, -seq)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_types_decode_as_the_server_computes_them() {
    let table = format!("types_{}", std::process::id());
    let mut conn = RawConn::connect(&sandbox()).await.expect("connect");
    snapshot::prepare_session(&mut conn).await.expect("session");
    create_database(&mut conn).await;
    conn.query_drop(&format!("DROP TABLE IF EXISTS {DB}.{table}"))
        .await
        .expect("drop");
    conn.query_drop(&format!("CREATE TABLE {DB}.{table} {TYPES_DDL}"))
        .await
        .expect("create");
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{table} (id, ti, tu, si, mi, iu, bi, bu, de, f, d, b, y, dt, tm, dtt, ts, c, vc, vb, tx, bl, e, st, j, g) \
         {TYPES_INSERT} FROM (SELECT CAST(seq AS SIGNED) AS seq FROM mysql.seq_1_to_5000) s"
    ))
    .await
    .expect("fill");
    conn.query_drop(&format!("UPDATE {DB}.{table} SET inv = id * 3"))
        .await
        .expect("invisible");

    let s = schema::read_table(&mut conn, DB, &table)
        .await
        .expect("schema");
    assert!(s.column("inv").expect("inv").invisible);
    assert!(
        s.column("gen")
            .expect("gen")
            .generated
            .as_ref()
            .is_some_and(|g| g.stored)
    );
    assert!(s.column("tu").expect("tu").unsigned && !s.column("ti").expect("ti").unsigned);
    assert_eq!(
        s.column("vc").expect("vc").charset.as_deref(),
        Some("utf8mb4")
    );
    let plan = snapshot::plan_table(&mut conn, &s, 700)
        .await
        .expect("plan");
    assert_eq!(plan.chunks.len(), 8, "5000 rows in chunks of 700");
    let job = whole_table_job(s, plan);
    let (batches, chunks) = snapshot_all(vec![job.clone()], 3, ThrottleLimits::default()).await;
    assert_eq!(chunks.values().sum::<u64>(), 5000);

    // Sums per column, computed by the server and from the Arrow batches.
    let t = format!("{DB}.{table}");
    let mut checks: Vec<(&str, String, String)> = Vec::new();
    macro_rules! sum_int {
        ($col:literal, $ty:ty, $acc:ty) => {{
            let ours: $acc = batches
                .iter()
                .map(|b| {
                    b.column_by_name($col)
                        .expect($col)
                        .as_primitive::<$ty>()
                        .iter()
                        .flatten()
                        .map(<$acc>::from)
                        .sum::<$acc>()
                })
                .sum();
            checks.push((
                $col,
                ours.to_string(),
                one(
                    &mut conn,
                    &format!("SELECT CAST(SUM({}) AS CHAR) FROM {t}", $col),
                )
                .await,
            ));
        }};
    }
    sum_int!("ti", Int8Type, i64);
    sum_int!("tu", UInt8Type, u64);
    sum_int!("si", Int16Type, i64);
    sum_int!("mi", Int32Type, i64);
    sum_int!("iu", UInt32Type, u64);
    sum_int!("bi", Int64Type, i128);
    sum_int!("bu", UInt64Type, u128);
    sum_int!("b", UInt64Type, u64);
    sum_int!("y", UInt16Type, u64);
    sum_int!("gen", Int32Type, i64);
    sum_int!("inv", Int32Type, i64);
    let dec: i128 = batches
        .iter()
        .map(|b| {
            b.column_by_name("de")
                .expect("de")
                .as_primitive::<Decimal128Type>()
                .iter()
                .flatten()
                .sum::<i128>()
        })
        .sum();
    checks.push((
        "de",
        dec.to_string(),
        one(
            &mut conn,
            &format!("SELECT CAST(SUM(de) * 1000000 AS SIGNED) FROM {t}"),
        )
        .await,
    ));
    let days: i64 = batches
        .iter()
        .map(|b| {
            b.column_by_name("dt")
                .expect("dt")
                .as_primitive::<Date32Type>()
                .iter()
                .flatten()
                .map(i64::from)
                .sum::<i64>()
        })
        .sum();
    checks.push((
        "dt",
        days.to_string(),
        one(
            &mut conn,
            &format!("SELECT SUM(TO_DAYS(dt) - TO_DAYS('1970-01-01')) FROM {t}"),
        )
        .await,
    ));
    let tm: i64 = batches
        .iter()
        .map(|b| {
            b.column_by_name("tm")
                .expect("tm")
                .as_primitive::<DurationMicrosecondType>()
                .iter()
                .flatten()
                .sum::<i64>()
        })
        .sum();
    checks.push((
        "tm",
        tm.to_string(),
        one(
            &mut conn,
            &format!("SELECT CAST(SUM(TIME_TO_SEC(tm) * 1000000) AS SIGNED) FROM {t}"),
        )
        .await,
    ));
    let dtt: i128 = batches
        .iter()
        .map(|b| {
            b.column_by_name("dtt")
                .expect("dtt")
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .flatten()
                .map(i128::from)
                .sum::<i128>()
        })
        .sum();
    checks.push((
        "dtt",
        dtt.to_string(),
        one(
            &mut conn,
            &format!(
                "SELECT CAST(SUM(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', dtt)) AS CHAR) FROM {t}"
            ),
        )
        .await,
    ));
    let ts: i128 = batches
        .iter()
        .map(|b| {
            b.column_by_name("ts")
                .expect("ts")
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .flatten()
                .map(i128::from)
                .sum::<i128>()
        })
        .sum();
    checks.push((
        "ts",
        ts.to_string(),
        one(
            &mut conn,
            &format!(
                "SELECT CAST(SUM(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', ts)) AS CHAR) FROM {t}"
            ),
        )
        .await,
    ));
    let f: f64 = batches
        .iter()
        .map(|b| {
            b.column_by_name("f")
                .expect("f")
                .as_primitive::<Float32Type>()
                .iter()
                .flatten()
                .map(f64::from)
                .sum::<f64>()
        })
        .sum();
    checks.push((
        "f",
        format!("{f:.0}"),
        one(&mut conn, &format!("SELECT ROUND(SUM(f)) FROM {t}")).await,
    ));
    let d: f64 = batches
        .iter()
        .map(|b| {
            b.column_by_name("d")
                .expect("d")
                .as_primitive::<Float64Type>()
                .iter()
                .flatten()
                .sum::<f64>()
        })
        .sum();
    checks.push((
        "d",
        format!("{:.0}", d / 1e10),
        one(&mut conn, &format!("SELECT ROUND(SUM(d) / 1e10) FROM {t}")).await,
    ));
    macro_rules! sum_len {
        ($col:literal, $sql:literal, str) => {{
            let ours: usize = batches
                .iter()
                .map(|b| {
                    b.column_by_name($col)
                        .expect($col)
                        .as_string::<i32>()
                        .iter()
                        .flatten()
                        .map(|v| v.chars().count())
                        .sum::<usize>()
                })
                .sum();
            checks.push((
                $col,
                ours.to_string(),
                one(
                    &mut conn,
                    &format!(concat!("SELECT SUM(", $sql, ") FROM {}"), t),
                )
                .await,
            ));
        }};
        ($col:literal, $sql:literal, bin) => {{
            let ours: usize = batches
                .iter()
                .map(|b| {
                    b.column_by_name($col)
                        .expect($col)
                        .as_binary::<i32>()
                        .iter()
                        .flatten()
                        .map(<[u8]>::len)
                        .sum::<usize>()
                })
                .sum();
            checks.push((
                $col,
                ours.to_string(),
                one(
                    &mut conn,
                    &format!(concat!("SELECT SUM(", $sql, ") FROM {}"), t),
                )
                .await,
            ));
        }};
    }
    sum_len!("c", "CHAR_LENGTH(c)", str);
    sum_len!("vc", "CHAR_LENGTH(vc)", str);
    sum_len!("tx", "CHAR_LENGTH(tx)", str);
    sum_len!("e", "CHAR_LENGTH(e)", str);
    sum_len!("st", "CHAR_LENGTH(st)", str);
    sum_len!("j", "CHAR_LENGTH(j)", str);
    sum_len!("vb", "LENGTH(vb)", bin);
    sum_len!("bl", "LENGTH(bl)", bin);
    sum_len!("g", "LENGTH(g)", bin);
    let nulls: usize = batches
        .iter()
        .map(|b| b.column_by_name("ts").expect("ts").null_count())
        .sum();
    checks.push((
        "ts nulls",
        nulls.to_string(),
        one(&mut conn, &format!("SELECT COUNT(*) - COUNT(ts) FROM {t}")).await,
    ));
    let mismatches: Vec<_> = checks
        .iter()
        .filter(|(_, ours, theirs)| ours != theirs)
        .collect();
    assert!(
        mismatches.is_empty(),
        "columns whose Arrow values differ from the server's: {mismatches:?}"
    );
    assert_eq!(checks.len(), 28);

    // Resume: with half the chunks marked done, only the others are read.
    let done: BTreeSet<u32> = chunks.keys().copied().filter(|c| c % 2 == 0).collect();
    let want: u64 = chunks
        .iter()
        .filter(|(c, _)| !done.contains(c))
        .map(|(_, n)| n)
        .sum();
    let resumed = TableJob {
        done: done.clone(),
        ..job
    };
    let (batches, again) = snapshot_all(vec![resumed], 2, ThrottleLimits::default()).await;
    assert_eq!(
        again.keys().copied().collect::<BTreeSet<_>>(),
        chunks
            .keys()
            .copied()
            .filter(|c| !done.contains(c))
            .collect()
    );
    assert_eq!(
        batches.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
        want
    );
    conn.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_under_writes_plus_binlog_from_its_position_is_the_final_table() {
    let table = format!("moving_{}", std::process::id());
    let mut conn = RawConn::connect(&sandbox()).await.expect("connect");
    create_database(&mut conn).await;
    conn.query_drop(&format!("DROP TABLE IF EXISTS {DB}.{table}"))
        .await
        .expect("drop");
    conn.query_drop(&format!(
        "CREATE TABLE {DB}.{table} (id INT PRIMARY KEY, version INT NOT NULL, payload VARCHAR(64) NOT NULL)"
    ))
    .await
    .expect("create");
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{table} SELECT seq, 0, CONCAT('row ', seq, ' v0') FROM mysql.seq_1_to_20000"
    ))
    .await
    .expect("fill");

    // A writer that keeps changing the table (single-row statements).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let written = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let (wt, wstop, wcount) = (table.clone(), stop.clone(), written.clone());
    let writer = tokio::spawn(async move {
        let mut w = RawConn::connect(&sandbox()).await.expect("writer");
        let mut n: i64 = 0;
        while !wstop.load(std::sync::atomic::Ordering::Relaxed) || n < 300 {
            n += 1;
            let id = (n * 7919) % 25_000 + 1;
            let sql = match n % 3 {
                0 => format!("DELETE FROM {DB}.{wt} WHERE id = {id}"),
                1 => format!(
                    "INSERT INTO {DB}.{wt} VALUES ({id}, {n}, 'row {id} v{n}') ON DUPLICATE KEY UPDATE version = {n}, payload = 'row {id} v{n}'"
                ),
                _ => format!(
                    "UPDATE {DB}.{wt} SET version = {n}, payload = 'row {id} v{n}' WHERE id = {id}"
                ),
            };
            w.query_drop(&sql).await.expect("write");
            wcount.store(n, std::sync::atomic::Ordering::Relaxed);
            if n % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        w.close().await.expect("close");
        n
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Position first, then chunks (throttled so the writer overlaps them).
    let position = snapshot::capture_position(&mut conn)
        .await
        .expect("position");
    let before = written.load(std::sync::atomic::Ordering::Relaxed);
    let s = schema::read_table(&mut conn, DB, &table)
        .await
        .expect("schema");
    let plan = snapshot::plan_table(&mut conn, &s, 1500)
        .await
        .expect("plan");
    let job = whole_table_job(s, plan);
    // About 1.5 s for the 20,000 rows (half a second's worth in the burst).
    let throttle = ThrottleLimits {
        rows_per_sec: Some(10_000.0),
        ..Default::default()
    };
    let (batches, _) = snapshot_all(vec![job], 3, throttle).await;
    let during = written.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(
        during >= 100,
        "the writer changed the table while the chunks were read ({during} writes)"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.expect("writer");
    assert!(writes >= 300, "the writer kept going");

    // base: id -> (version, payload) as the chunks saw it.
    let mut merged: BTreeMap<i64, (i64, String)> = BTreeMap::new();
    for b in &batches {
        let ids = b
            .column_by_name("id")
            .expect("id")
            .as_primitive::<Int32Type>();
        let versions = b
            .column_by_name("version")
            .expect("version")
            .as_primitive::<Int32Type>();
        let payloads = b
            .column_by_name("payload")
            .expect("payload")
            .as_string::<i32>();
        for i in 0..b.num_rows() {
            let old = merged.insert(
                i64::from(ids.value(i)),
                (i64::from(versions.value(i)), payloads.value(i).to_owned()),
            );
            assert!(old.is_none(), "id {} read twice", ids.value(i));
        }
    }
    // log: every change after the captured position, latest wins.
    // Replica ids outside replication.rs's 3_000_000..4_000_000: the two
    // files run in one test process, at the same time.
    let mut opts = ReplicationOptions::new(
        sandbox(),
        4_100_000 + std::process::id() % 100_000,
        StartPosition::File(position.position.clone()),
    );
    opts.stop_at_end = true;
    let mut stream = BinlogStream::start(opts).await.expect("stream");
    // Row images decoded by binlog-parser: after images upsert, before
    // images of deletes remove.
    let mut ctx = DecodeContext::new();
    let mut log_ops = 0;
    while let Some(ev) = stream.next_event().await.expect("event") {
        let decoded = ctx.decode_packet(&ev.bytes).expect("decode");
        let EventData::Rows(rows) = &decoded.data else {
            continue;
        };
        let map = ctx.table(rows.table_id).expect("table map");
        if map.schema != DB || map.table != table {
            continue;
        }
        for change in ctx.rows(rows).expect("rows") {
            let change = change.expect("row");
            log_ops += 1;
            match (change.before, change.after) {
                (_, Some(after)) => {
                    let mut vals = after.values().map(|v| v.expect("value").1);
                    let (Some(Value::Int(id)), Some(Value::Int(version)), Some(Value::String(p))) =
                        (vals.next(), vals.next(), vals.next())
                    else {
                        panic!("unexpected after image");
                    };
                    merged.insert(id, (version, String::from_utf8_lossy(p).into_owned()));
                }
                (Some(before), None) => match before.values().next() {
                    Some(Ok((_, Value::Int(id)))) => {
                        merged.remove(&id);
                    }
                    other => panic!("unexpected before image {other:?}"),
                },
                (None, None) => panic!("row change without images"),
            }
        }
    }
    assert!(log_ops > 0, "changes happened after the captured position");

    // The final table.
    let rows = conn
        .query_strings(&format!(
            "SELECT id, version, payload FROM {DB}.{table} ORDER BY id"
        ))
        .await
        .expect("final");
    let fin: BTreeMap<i64, (i64, String)> = rows
        .into_iter()
        .map(|r| {
            let id = r[0].as_deref().expect("id").parse().expect("id");
            (
                id,
                (
                    r[1].as_deref().expect("v").parse().expect("v"),
                    r[2].clone().expect("p"),
                ),
            )
        })
        .collect();
    assert_eq!(merged.len(), fin.len(), "row count of base + log");
    let diff: Vec<_> = fin
        .iter()
        .filter(|(k, v)| merged.get(k) != Some(v))
        .take(5)
        .collect();
    assert!(
        diff.is_empty(),
        "base + log differs from the final table: {diff:?}"
    );
    conn.close().await.expect("close");
}

#[tokio::test]
async fn values_larger_than_one_packet_arrive_whole() {
    // 17 MiB: more than one 16 MiB wire packet, in a result row and in a binlog event.
    const LEN: usize = 17 << 20;
    let table = format!("big_{}", std::process::id());
    let mut conn = RawConn::connect(&sandbox()).await.expect("connect");
    create_database(&mut conn).await;
    conn.query_drop(&format!("DROP TABLE IF EXISTS {DB}.{table}"))
        .await
        .expect("drop");
    conn.query_drop(&format!(
        "CREATE TABLE {DB}.{table} (id INT PRIMARY KEY, b LONGBLOB)"
    ))
    .await
    .expect("create");
    let position = snapshot::capture_position(&mut conn)
        .await
        .expect("position");
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{table} VALUES (1, REPEAT('x', {LEN}))"
    ))
    .await
    .expect("insert");

    let s = schema::read_table(&mut conn, DB, &table)
        .await
        .expect("schema");
    let plan = snapshot::plan_table(&mut conn, &s, 10).await.expect("plan");
    let job = whole_table_job(s, plan);
    let (batches, _) = snapshot_all(vec![job], 1, ThrottleLimits::default()).await;
    let lens: Vec<usize> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("b")
                .expect("b")
                .as_binary::<i32>()
                .iter()
                .flatten()
                .map(<[u8]>::len)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lens, vec![LEN]);

    let mut opts = ReplicationOptions::new(
        sandbox(),
        4_200_000 + std::process::id() % 100_000,
        StartPosition::File(position.position.clone()),
    );
    opts.stop_at_end = true;
    let mut stream = BinlogStream::start(opts).await.expect("stream");
    let mut ctx = DecodeContext::new();
    let mut found = Vec::new();
    while let Some(ev) = stream.next_event().await.expect("event") {
        let decoded = ctx.decode_packet(&ev.bytes).expect("decode");
        let EventData::Rows(rows) = &decoded.data else {
            continue;
        };
        let map = ctx.table(rows.table_id).expect("table map");
        if map.table != table {
            continue;
        }
        for change in ctx.rows(rows).expect("rows") {
            let after = change.expect("row").after.expect("insert");
            if let Some(Ok((_, Value::Bytes(b) | Value::String(b)))) = after.values().nth(1) {
                found.push(b.len());
            }
        }
    }
    assert_eq!(
        found,
        vec![LEN],
        "the 17 MiB row image came through the stream whole"
    );
    drop_table(&mut conn, &table).await;
    conn.close().await.expect("close");
}

#[tokio::test]
async fn unique_key_tables_chunk_on_it_and_keyless_tables_scan_once() {
    let mut conn = RawConn::connect(&sandbox()).await.expect("connect");
    create_database(&mut conn).await;
    let uk = format!("uk_{}", std::process::id());
    let nokey = format!("nokey_{}", std::process::id());
    for t in [&uk, &nokey] {
        conn.query_drop(&format!("DROP TABLE IF EXISTS {DB}.{t}"))
            .await
            .expect("drop");
    }
    // A composite unique key over a string with quotes and backslashes, and a
    // case-insensitive collation: the chunk bounds must follow the server's order.
    conn.query_drop(&format!(
        "CREATE TABLE {DB}.{uk} (name VARCHAR(40) NOT NULL, n INT NOT NULL, v INT, UNIQUE KEY u (name, n)) \
         DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
    ))
    .await
    .expect("create");
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{uk} SELECT CONCAT(ELT(1 + seq % 5, 'a''b', 'A\\\\c', 'b', 'Ä', 'z'), seq % 7), seq, seq \
         FROM mysql.seq_1_to_3000"
    ))
    .await
    .expect("fill");
    conn.query_drop(&format!("CREATE TABLE {DB}.{nokey} (v INT)"))
        .await
        .expect("create");
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{nokey} SELECT seq FROM mysql.seq_1_to_500"
    ))
    .await
    .expect("fill");

    let s = schema::read_table(&mut conn, DB, &uk)
        .await
        .expect("schema");
    assert!(s.primary_key.is_empty());
    assert_eq!(s.row_key(), Some(&["name".to_owned(), "n".to_owned()][..]));
    let plan = snapshot::plan_table(&mut conn, &s, 200)
        .await
        .expect("plan");
    assert!(plan.chunks.len() >= 10, "{} chunks", plan.chunks.len());
    let job = whole_table_job(s, plan);
    let (batches, _) = snapshot_all(vec![job], 3, ThrottleLimits::default()).await;
    let mut seen = BTreeSet::new();
    for b in &batches {
        let v = b
            .column_by_name("v")
            .expect("v")
            .as_primitive::<Int32Type>();
        for x in v.iter().flatten() {
            assert!(seen.insert(x), "row {x} read twice");
        }
    }
    assert_eq!(seen.len(), 3000, "every row once");

    let s = schema::read_table(&mut conn, DB, &nokey)
        .await
        .expect("schema");
    assert_eq!(s.row_key(), None);
    let plan = snapshot::plan_table(&mut conn, &s, 100)
        .await
        .expect("plan");
    assert_eq!(plan.chunks.len(), 1, "one ordered scan");
    let job = whole_table_job(s, plan);
    let (batches, _) = snapshot_all(vec![job], 2, ThrottleLimits::default()).await;
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        500
    );
    conn.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_and_text_rows_decode_to_the_same_batches() {
    // Every type of the types table, plus the edges where the two wire
    // formats differ most: zero and partly-zero dates, negative and
    // 838-hour times, midnight datetimes (sent short in binary), integer
    // extremes, empty strings and NULL in every column.
    let table = format!("protocols_{}", std::process::id());
    let mut conn = RawConn::connect(&sandbox()).await.expect("connect");
    snapshot::prepare_session(&mut conn).await.expect("session");
    create_database(&mut conn).await;
    conn.query_drop(&format!("CREATE OR REPLACE TABLE {DB}.{table} {TYPES_DDL}"))
        .await
        .expect("create");
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{table} (id, ti, tu, si, mi, iu, bi, bu, de, f, d, b, y, dt, tm, dtt, ts, c, vc, vb, tx, bl, e, st, j, g) \
         {TYPES_INSERT} FROM (SELECT CAST(seq AS SIGNED) AS seq FROM mysql.seq_1_to_3000) s"
    ))
    .await
    .expect("fill");
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{table} (id, ti, tu, si, mi, iu, bi, bu, de, f, d, b, y, dt, tm, dtt, ts, c, vc, vb, tx, bl, e, st, j, g) VALUES \
         (-1, -128, 255, -32768, -8388608, 4294967295, -9223372036854775808, 18446744073709551615, \
          -99999999999999.999999, -3.4e38, -1.7976931348623157e308, b'111111111111', 0, \
          '0000-00-00', '-838:59:59.999', '0000-00-00 00:00:00', '1970-01-01 00:00:01', \
          '', '', '', '', '', '', '', '[]', POINT(0, 0)), \
         (-2, 127, 0, 32767, 8388607, 0, 9223372036854775807, 0, 0, 0, 0, 0, 2155, \
          '2024-00-00', '838:59:59', '2024-02-29 00:00:00', '2038-01-19 03:14:07.999999', \
          'x', 'y', 'z', 't', 'b', 'blue', 'a,b,c', '{{}}', POINT(-1.5, 2.25)), \
         (-3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
          NULL, '00:00:00', '9999-12-31 23:59:59.999999', NULL, NULL, NULL, NULL, NULL, NULL, \
          NULL, NULL, NULL, NULL)"
    ))
    .await
    .expect("edges");
    let s = schema::read_table(&mut conn, DB, &table)
        .await
        .expect("schema");
    let plan = snapshot::plan_table(&mut conn, &s, 1000)
        .await
        .expect("plan");
    let job = whole_table_job(s, plan);
    // One connection: the batches come in key order, so they compare as they are.
    let (binary, _) = snapshot_with(
        vec![job.clone()],
        1,
        ThrottleLimits::default(),
        ReadProtocol::Binary,
    )
    .await;
    let (text, _) =
        snapshot_with(vec![job], 1, ThrottleLimits::default(), ReadProtocol::Text).await;
    let rows = |b: &[RecordBatch]| b.iter().map(RecordBatch::num_rows).sum::<usize>();
    assert_eq!(rows(&binary), 3003);
    assert_eq!(rows(&text), 3003);
    let schema = binary[0].schema();
    let all_binary = arrow_select::concat::concat_batches(&schema, &binary).expect("concat");
    let all_text = arrow_select::concat::concat_batches(&schema, &text).expect("concat");
    for (field, (b, t)) in schema
        .fields()
        .iter()
        .zip(all_binary.columns().iter().zip(all_text.columns()))
    {
        assert_eq!(b.as_ref(), t.as_ref(), "column {}", field.name());
    }
    // The edge rows hold what the server stores, not just the same thing twice.
    let ids = all_binary
        .column_by_name("id")
        .expect("id")
        .as_primitive::<Int64Type>();
    let at = |id: i64| {
        (0..ids.len())
            .find(|&i| ids.value(i) == id)
            .expect("edge row")
    };
    let tm = all_binary
        .column_by_name("tm")
        .expect("tm")
        .as_primitive::<DurationMicrosecondType>();
    assert_eq!(
        tm.value(at(-1)),
        -(838 * 3600 + 59 * 60 + 59) * 1_000_000 - 999_000
    );
    let dt = all_binary.column_by_name("dt").expect("dt");
    assert!(
        dt.is_null(at(-1)) && dt.is_null(at(-2)),
        "zero dates are NULL"
    );
    let bu = all_binary
        .column_by_name("bu")
        .expect("bu")
        .as_primitive::<UInt64Type>();
    assert_eq!(bu.value(at(-1)), u64::MAX);
    let f = all_binary
        .column_by_name("f")
        .expect("f")
        .as_primitive::<Float32Type>();
    assert_eq!(f.value(at(-1)), -3.4e38);
    drop_table(&mut conn, &table).await;
    conn.close().await.expect("close");
}

#[tokio::test]
async fn wide_rows_get_short_chunks() {
    let table = format!("wide_{}", std::process::id());
    let mut conn = RawConn::connect(&sandbox()).await.expect("connect");
    create_database(&mut conn).await;
    conn.query_drop(&format!(
        "CREATE OR REPLACE TABLE {DB}.{table} (id INT PRIMARY KEY, pad VARCHAR(4000)) CHARACTER SET latin1"
    ))
    .await
    .expect("create");
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{table} SELECT seq, REPEAT(CHAR(65 + seq % 26), 3000) FROM mysql.seq_1_to_3000"
    ))
    .await
    .expect("fill");
    conn.query_drop(&format!("ANALYZE TABLE {DB}.{table}"))
        .await
        .expect("analyze");
    let s = schema::read_table(&mut conn, DB, &table)
        .await
        .expect("schema");
    // 1 MB of 3,000-byte rows (plus page overhead in the server's average).
    let rows = snapshot::chunk_rows_for(&mut conn, &s, 50_000, 1_000_000)
        .await
        .expect("rows");
    assert!((100..=333).contains(&rows), "{rows} rows per 1 MB chunk");
    // Narrow limits by rows still win.
    let capped = snapshot::chunk_rows_for(&mut conn, &s, 50, 1_000_000)
        .await
        .expect("rows");
    assert_eq!(capped, 50);
    let plan = snapshot::plan_table(&mut conn, &s, rows)
        .await
        .expect("plan");
    assert!(plan.chunks.len() >= 9, "{} chunks", plan.chunks.len());
    let job = whole_table_job(s, plan);
    let (_, chunks) = snapshot_all(vec![job], 2, ThrottleLimits::default()).await;
    assert_eq!(chunks.values().sum::<u64>(), 3000);
    assert!(chunks.values().all(|&n| n <= rows), "{chunks:?}");
    drop_table(&mut conn, &table).await;
    conn.close().await.expect("close");
}

#[tokio::test]
async fn float_values_arrive_exactly_not_as_printed() {
    // The text protocol prints FLOAT with six significant digits; the
    // snapshot must still hand over the stored single-precision value.
    let table = format!("floats_{}", std::process::id());
    let mut conn = RawConn::connect(&sandbox()).await.expect("connect");
    create_database(&mut conn).await;
    conn.query_drop(&format!(
        "CREATE OR REPLACE TABLE {DB}.{table} (id INT PRIMARY KEY, f FLOAT, fu FLOAT UNSIGNED)"
    ))
    .await
    .expect("create");
    let values: [(f32, f32); 5] = [
        (10044.125, 0.0),
        (0.1, 3.4e38),
        (-1.175_494_4e-38, 1e-38),
        (16_777_217.0, 123_456.79),
        (-3.4e38, f32::from_bits(5)),
    ];
    let rows: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, (f, fu))| format!("({i}, {f:e}, {fu:e})"))
        .collect();
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{table} VALUES {}, (9, NULL, NULL)",
        rows.join(", ")
    ))
    .await
    .expect("fill");
    let s = schema::read_table(&mut conn, DB, &table)
        .await
        .expect("schema");
    let plan = snapshot::plan_table(&mut conn, &s, 2).await.expect("plan");
    let job = whole_table_job(s, plan);
    let (batches, _) = snapshot_all(vec![job], 2, ThrottleLimits::default()).await;
    let mut got = BTreeMap::new();
    for b in &batches {
        let ids = b
            .column_by_name("id")
            .expect("id")
            .as_primitive::<Int32Type>();
        let f = b
            .column_by_name("f")
            .expect("f")
            .as_primitive::<Float32Type>();
        let fu = b
            .column_by_name("fu")
            .expect("fu")
            .as_primitive::<Float32Type>();
        for i in 0..b.num_rows() {
            got.insert(
                ids.value(i),
                (
                    f.is_valid(i).then(|| f.value(i)),
                    fu.is_valid(i).then(|| fu.value(i)),
                ),
            );
        }
    }
    for (i, (f, fu)) in values.iter().enumerate() {
        let i = i32::try_from(i).expect("small");
        assert_eq!(got.get(&i), Some(&(Some(*f), Some(*fu))), "row {i}");
    }
    assert_eq!(got.get(&9), Some(&(None, None)));
    drop_table(&mut conn, &table).await;
    conn.close().await.expect("close");
}

#[tokio::test]
async fn a_dense_integer_key_is_planned_by_spans_and_a_sparse_one_by_a_scan() {
    let table = format!("span_{}", std::process::id());
    let mut conn = RawConn::connect(&sandbox()).await.expect("connect");
    create_database(&mut conn).await;
    conn.query_drop(&format!("DROP TABLE IF EXISTS {DB}.{table}"))
        .await
        .expect("drop");
    conn.query_drop(&format!(
        "CREATE TABLE {DB}.{table} (id BIGINT PRIMARY KEY, v INT)"
    ))
    .await
    .expect("create");
    // Keys 1..=5000 without every tenth: dense, but the 700th row is not key 700.
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{table} SELECT seq, seq FROM mysql.seq_1_to_5000 WHERE seq % 10 <> 0"
    ))
    .await
    .expect("fill");
    conn.query_drop(&format!("ANALYZE TABLE {DB}.{table}"))
        .await
        .expect("analyze");
    let s = schema::read_table(&mut conn, DB, &table)
        .await
        .expect("schema");
    let plan = snapshot::plan_table(&mut conn, &s, 700)
        .await
        .expect("plan");
    let uppers: Vec<Option<String>> = plan
        .chunks
        .iter()
        .map(|c| c.upper.as_ref().map(|u| u[0].clone()))
        .collect();
    let expected: Vec<Option<String>> = (1..=7)
        .map(|k| Some((k * 700).to_string()))
        .chain([None])
        .collect();
    assert_eq!(uppers, expected, "spans of 700 key values");
    let job = whole_table_job(s.clone(), plan);
    let (batches, chunks) = snapshot_all(vec![job], 3, ThrottleLimits::default()).await;
    assert!(chunks.values().all(|&n| n <= 700), "{chunks:?}");
    let mut seen = BTreeSet::new();
    for b in &batches {
        for id in b.column(0).as_primitive::<Int64Type>().iter().flatten() {
            assert!(seen.insert(id), "row {id} read twice");
        }
    }
    assert_eq!(seen.len(), 4500, "every row once");

    // One far key makes the span much wider than the rows: a scan plan.
    conn.query_drop(&format!("INSERT INTO {DB}.{table} VALUES (1000000000, 0)"))
        .await
        .expect("far key");
    let plan = snapshot::plan_table(&mut conn, &s, 700)
        .await
        .expect("plan");
    assert_eq!(plan.chunks.len(), 7, "4501 rows in chunks of 700");
    assert_ne!(plan.chunks[0].upper, Some(vec!["700".to_owned()]));
    drop_table(&mut conn, &table).await;
}

#[tokio::test]
async fn a_table_smaller_than_a_chunk_is_one_chunk_and_one_row_more_splits_it() {
    let table = format!("small_{}", std::process::id());
    let mut conn = RawConn::connect(&sandbox()).await.expect("connect");
    create_database(&mut conn).await;
    conn.query_drop(&format!("DROP TABLE IF EXISTS {DB}.{table}"))
        .await
        .expect("drop");
    // A string key: no span plan, so the row count alone decides.
    conn.query_drop(&format!(
        "CREATE TABLE {DB}.{table} (k VARCHAR(20) PRIMARY KEY, v INT)"
    ))
    .await
    .expect("create");
    conn.query_drop(&format!(
        "INSERT INTO {DB}.{table} SELECT LPAD(seq, 6, '0'), seq FROM mysql.seq_1_to_99"
    ))
    .await
    .expect("fill");
    let s = schema::read_table(&mut conn, DB, &table)
        .await
        .expect("schema");
    let plan = snapshot::plan_table(&mut conn, &s, 100)
        .await
        .expect("plan");
    assert_eq!(plan.key, vec!["k".to_owned()]);
    assert_eq!(plan.chunks.len(), 1, "99 rows, chunks of 100");
    assert_eq!(
        (&plan.chunks[0].lower, &plan.chunks[0].upper),
        (&None, &None)
    );

    // The 100th row is a boundary: the scan plan, as before the probe.
    conn.query_drop(&format!("INSERT INTO {DB}.{table} VALUES ('000100', 100)"))
        .await
        .expect("one more");
    let plan = snapshot::plan_table(&mut conn, &s, 100)
        .await
        .expect("plan");
    assert_eq!(plan.chunks.len(), 2, "100 rows, chunks of 100");
    assert_eq!(plan.chunks[0].upper, Some(vec!["'000100'".to_owned()]));
    assert_eq!(plan.chunks[1].upper, None);
    let job = whole_table_job(s, plan);
    let (_, chunks) = snapshot_all(vec![job], 2, ThrottleLimits::default()).await;
    assert_eq!(chunks.values().sum::<u64>(), 100, "every row once");
    drop_table(&mut conn, &table).await;
}
