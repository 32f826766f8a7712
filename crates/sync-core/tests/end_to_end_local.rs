//! The whole task against the sandbox MariaDB into a local warehouse: schema,
//! full and incremental phases, with changes before and after the snapshot,
//! then `verify` compares the source with the merged destination.

use mysql_async::prelude::Queryable;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use sync_core::config::TaskConfig;
use sync_core::machine::Phase;
use sync_core::run::{RunOptions, TaskRunner};
use sync_core::sink::local::LocalWarehouse;
use sync_testkit::shop::{Scale, shop_sql};

fn config(url: &str, db: &str, dir: &std::path::Path) -> TaskConfig {
    toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7101
        [destination]
        kind = "local"
        path = "{wh}"
        [objects]
        include = ["{db}.*"]
        [sync]
        types = ["schema", "full", "incremental"]
        state_dir = "{state}"
        log_partitions = ["year", "month"]
        chunk_rows = 97
        batch_rows = 50
        "#,
        wh = dir.join("warehouse").display(),
        state = dir.join("state").display(),
    ))
    .expect("task file")
}

async fn assert_equal(runner: &TaskRunner<LocalWarehouse>) {
    let reports = runner.verify().await.expect("verify");
    assert_eq!(reports.len(), 7, "five shop tables, edge and charsets");
    for r in &reports {
        assert!(r.is_equal(), "{} differs: {r:?}", r.table);
        assert!(
            r.source_rows > 0 || r.table.ends_with(".edge") || r.table.ends_with(".charsets"),
            "{} is empty",
            r.table
        );
    }
}

fn count(batches: &[arrow_array::RecordBatch], column: &str, value: &str) -> usize {
    batches
        .iter()
        .map(|b| {
            let col = b.column_by_name(column).expect("column");
            let col = col
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .expect("utf8");
            col.iter().filter(|v| *v == Some(value)).count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_syncs_full_then_incremental_and_verifies_equal() {
    let url = sync_testkit::mysql_url();
    let db = "core_e2e_shop";
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .expect("drop");
    let scale = Scale {
        customers: 400,
        products: 60,
        orders: 300,
        events: 40,
    };
    conn.query_drop(shop_sql(db, scale, 3)).await.expect("load");
    // Rows of this table arrive only through the binlog (it is empty at the
    // snapshot): verify then compares binlog-built values with SELECT's.
    conn.query_drop(format!(
        "CREATE TABLE {db}.edge (
           id BIGINT UNSIGNED PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, mi MEDIUMINT,
           mu MEDIUMINT UNSIGNED, bu BIGINT UNSIGNED, d10 DECIMAL(10,3), d65 DECIMAL(65,30),
           f FLOAT, dbl DOUBLE, b BIT(12), y YEAR, dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(2) NULL,
           c CHAR(5), vc VARCHAR(20), bin BINARY(4), vb VARBINARY(8), tx TEXT, bl BLOB,
           e ENUM('a','b','c'), st SET('x','y','z'), j JSON) CHARACTER SET utf8mb4;
         CREATE TABLE {db}.charsets (
           id INT PRIMARY KEY, l1 VARCHAR(20) CHARACTER SET latin1, gbk VARCHAR(20) CHARACTER SET gbk,
           b5 VARCHAR(20) CHARACTER SET big5, cyr TEXT CHARACTER SET cp1251, sj CHAR(4) CHARACTER SET sjis,
           u16 VARCHAR(10) CHARACTER SET utf16, kr VARCHAR(10) CHARACTER SET euckr) CHARACTER SET latin1"
    ))
    .await
    .expect("edge and charsets tables");

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&url, db, dir.path());
    let runner = TaskRunner::new(
        cfg.clone(),
        LocalWarehouse::new(dir.path().join("warehouse")),
    )
    .expect("runner");
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

    // Changes after the snapshot: updates (one moving a primary key), deletes,
    // inserts, a multi-statement transaction, and a change to the key-less table.
    conn.query_drop(format!(
        "USE {db};
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
         UPDATE customers SET last_login = NULL, preferred_time = '-12:30:00.5', flags = b'11111111' WHERE id = 2;
         INSERT INTO edge VALUES
           (1, -128, 255, -8388608, 16777215, 18446744073709551615, -1234567.891,
            -12345678901234567890123456789012345.123456789012345678901234567891, -1.5e-3, 1.7976931348623157e308,
            b'101010101010', 1901, '1000-01-01', '-838:59:59.000', '9999-12-31 23:59:59.999999',
            '1970-01-01 00:00:01.01', 'ab  ', '🚲 ünïcode', X'01000000', X'', '', X'00FF00', 'a', 'x,z', '{{\"k\": [1, 2.5, null]}}'),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
           (3, 127, 0, 8388607, 0, 0, 0, 0, 0, -0.0, b'0', 2155, '2024-02-29', '00:00:00.001', '2000-01-01 00:00:00',
            '2038-01-19 03:14:07.99', '', '', X'00000000', X'0000', 'x', X'', 'c', '', '[]');
         UPDATE edge SET bin = X'00000001', c = 'zz', e = 'b', st = 'y' WHERE id = 3;
         INSERT INTO charsets VALUES
           (1, 'café € ÿ', '中文字符', '中文', 'Привет', 'あいう', 'Ω€😀', '한국어'),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
           (3, 'plain', 'plain', 'plain', 'plain', 'abc', 'plain', 'plain');
         UPDATE charsets SET l1 = 'naïve', gbk = '简体', cyr = 'Мир' WHERE id = 3;
         DELETE FROM edge WHERE id = 2;"
    ))
    .await
    .expect("changes");
    let state = runner.run(&opts).await.expect("catch up");
    let Phase::Incremental(inc) = &state.phase else {
        panic!("{:?}", state.phase)
    };
    assert!(inc.next_record_id > 1, "changes were recorded");
    assert!(inc.pending.is_none());
    assert_equal(&runner).await;
    // 57 customers with id % 7 = 0 updated (two records each), one updated
    // again alone (id 2), one inserted: 117 records, flags as DTS writes them.
    let log = runner
        .sink()
        .read_table_blocking("customers_log")
        .expect("read t_log");
    assert_eq!(count(&log, "new_dts_sync_operation_flag", "U"), 116);
    assert_eq!(count(&log, "new_dts_sync_operation_flag", "I"), 1);
    assert_eq!(count(&log, "new_dts_sync_before_flag", "Y"), 58);
    assert_eq!(log.iter().map(|b| b.num_rows()).sum::<usize>(), 117);

    // A third run with nothing new changes nothing.
    let again = runner.run(&opts).await.expect("idle run");
    let Phase::Incremental(inc2) = &again.phase else {
        panic!()
    };
    assert_eq!(inc2.next_record_id, inc.next_record_id);
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}

/// Every row of `batches` as text (NULL as `NULL`), sorted: a multiset.
fn texts(batches: &[arrow_array::RecordBatch], columns: &[&str]) -> Vec<String> {
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter<'_>> = columns
            .iter()
            .map(|c| {
                ArrayFormatter::try_new(b.column_by_name(c).expect("column").as_ref(), &opts)
                    .expect("formatter")
            })
            .collect();
        for row in 0..b.num_rows() {
            let cells: Vec<String> = fmts.iter().map(|f| f.value(row).to_string()).collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

/// The rows of a MariaDB table as [`texts`] gives them.
async fn mysql_texts(conn: &mut mysql_async::Conn, table: &str) -> Vec<String> {
    let mut rows: Vec<String> = conn
        .query(format!(
            "SELECT CONCAT_WS('|', a, b, IFNULL(CAST(c AS CHAR), 'NULL')) FROM {table}"
        ))
        .await
        .expect("select");
    rows.sort();
    rows
}

/// A value of a `t_base`/`t_log` column as a MariaDB parameter.
fn param(col: &arrow_array::ArrayRef, row: usize) -> mysql_async::Value {
    use arrow_array::{Array, Float64Array, Int32Array, Int64Array, StringArray};
    if col.is_null(row) {
        return mysql_async::Value::NULL;
    }
    let any = col.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        a.value(row).into()
    } else if let Some(a) = any.downcast_ref::<Int32Array>() {
        a.value(row).into()
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        a.value(row).into()
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        a.value(row).into()
    } else {
        panic!("no parameter for {}", col.data_type())
    }
}

/// Copies `batches` (columns `columns`) into the MariaDB table `table`.
async fn load(
    conn: &mut mysql_async::Conn,
    table: &str,
    columns: &[&str],
    batches: &[arrow_array::RecordBatch],
) {
    let marks = vec!["?"; columns.len()].join(", ");
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({marks})",
        columns.join(", ")
    );
    for b in batches {
        let cols: Vec<&arrow_array::ArrayRef> = columns
            .iter()
            .map(|c| b.column_by_name(c).expect("column"))
            .collect();
        for row in 0..b.num_rows() {
            let params: Vec<mysql_async::Value> = cols.iter().map(|c| param(c, row)).collect();
            conn.exec_drop(&sql, params).await.expect("insert");
        }
    }
}

/// A table without a key holds identical rows; UPDATE … LIMIT 1 and
/// DELETE … LIMIT 1 change one copy each (one before image in the binlog).
/// `merge`, `verify` and the SQL of `merge-sql` (run by MariaDB, whose
/// window functions take the same query) keep every copy: the merged
/// state equals the source as a multiset, and verify's counts add up.
/// Before, identical rows merged into one: copies were lost, and verify
/// counted the source's copies apart but not the destination's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_table_merges_as_a_multiset() {
    let url = sync_testkit::mysql_url();
    let db = "core_e2e_keyless";
    let sql_db = "core_e2e_keyless_sql";
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS {sql_db};
         CREATE DATABASE {db}; USE {db};
         CREATE TABLE t (a INT, b VARCHAR(10), c DOUBLE NULL);
         INSERT INTO t VALUES (1, 'x', NULL), (1, 'x', NULL), (2, 'y', 1.5), (2, 'y', 1.5),
           (2, 'y', 1.5), (3, 'z', NULL), (4, 'w', NULL), (4, 'w', NULL)"
    ))
    .await
    .expect("source");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&url, db, dir.path());
    // Its own replica id: the shop test streams at the same time.
    cfg.source.server_id = 7102;
    let runner =
        TaskRunner::new(cfg, LocalWarehouse::new(dir.path().join("warehouse"))).expect("runner");
    let opts = RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };
    runner.run(&opts).await.expect("first run");
    let base = runner.sink().read_table_blocking("t_base").expect("t_base");
    assert_eq!(
        base.iter().map(|b| b.num_rows()).sum::<usize>(),
        8,
        "t_base holds every copy"
    );

    conn.query_drop(format!(
        "USE {db};
         UPDATE t SET b = 'x2' WHERE a = 1 LIMIT 1;
         DELETE FROM t WHERE a = 2 LIMIT 1;
         UPDATE t SET c = 2.5 WHERE a = 2 LIMIT 1;
         INSERT INTO t VALUES (3, 'z', NULL);
         DELETE FROM t WHERE a = 3 LIMIT 1;
         UPDATE t SET b = 'w2' WHERE a = 4"
    ))
    .await
    .expect("changes");
    runner.run(&opts).await.expect("catch up");
    let log = runner.sink().read_table_blocking("t_log").expect("t_log");
    // One before image per copy changed: 1 + 1 + 1 + 1 + 2.
    assert_eq!(count(&log, "new_dts_sync_before_flag", "Y"), 6);

    let source = mysql_texts(&mut conn, &format!("{db}.t")).await;
    assert_eq!(
        source,
        [
            "1|x2|NULL",
            "1|x|NULL",
            "2|y|1.5",
            "2|y|2.5",
            "3|z|NULL",
            "4|w2|NULL",
            "4|w2|NULL"
        ]
    );
    let merged = runner
        .merged(&format!("{db}.t"), None)
        .await
        .expect("merge");
    assert_eq!(texts(&[merged], &["a", "b", "c"]), source, "merge");

    let reports = runner.verify().await.expect("verify");
    let r = &reports[0];
    assert!(r.is_equal() && r.keyless, "{r:?}");
    assert!(r.counts_add_up(), "{r:?}");
    assert_eq!((r.source_rows, r.destination_rows, r.same), (7, 7, 7));

    // merge-sql's query, run by MariaDB over copies of t_base and t_log.
    let tables = runner.tables().await.expect("tables");
    let t = &tables[0];
    assert!(t.dest_key().is_empty());
    let columns = t.dest_columns();
    let as_of = 4_000_000_000;
    let sql = sync_core::merge::merge_sql(
        &t.dest,
        &format!("{}_merged", t.dest),
        &columns,
        &[],
        runner.meta(),
        as_of,
    )
    .expect("merge sql");
    let query = sql
        .strip_prefix("SET odps.sql.allow.fullscan=true;\n")
        .expect("the MaxCompute setting first")
        .replace("INSERT OVERWRITE TABLE", "INSERT INTO");
    conn.query_drop(format!(
        "CREATE DATABASE {sql_db}; USE {sql_db};
         CREATE TABLE t_base (a INT, b VARCHAR(10), c DOUBLE);
         CREATE TABLE t_merged LIKE t_base;
         CREATE TABLE t_log (new_dts_sync_record_id BIGINT, new_dts_sync_operation_flag VARCHAR(1),
           new_dts_sync_utc_timestamp BIGINT, new_dts_sync_before_flag VARCHAR(1),
           new_dts_sync_after_flag VARCHAR(1), a INT, b VARCHAR(10), c DOUBLE)"
    ))
    .await
    .expect("scratch tables");
    load(&mut conn, "t_base", &columns, &base).await;
    let mut log_columns = runner.meta().all().to_vec();
    log_columns.extend(columns.iter().copied());
    load(&mut conn, "t_log", &log_columns, &log).await;
    // A retried upload of the whole log changes nothing.
    load(&mut conn, "t_log", &log_columns, &log).await;
    conn.query_drop(&query).await.expect("merge sql runs");
    assert_eq!(
        mysql_texts(&mut conn, "t_merged").await,
        source,
        "merge-sql"
    );

    // As `merge` does, a before image that finds no copy removes nothing
    // (the count is clamped at zero), so the insert after it still lands.
    conn.query_drop(
        "TRUNCATE t_merged;
         INSERT INTO t_log VALUES (1000, 'D', 1, 'Y', 'N', 9, 'q', NULL),
           (1001, 'I', 1, 'N', 'Y', 9, 'q', NULL), (1002, 'D', 1, 'Y', 'N', 1, 'x', NULL)",
    )
    .await
    .expect("more records");
    conn.query_drop(&query).await.expect("merge sql runs");
    let mut expected: Vec<String> = source
        .iter()
        .filter(|r| *r != "1|x|NULL")
        .cloned()
        .collect();
    expected.push("9|q|NULL".into());
    expected.sort();
    assert_eq!(
        mysql_texts(&mut conn, "t_merged").await,
        expected,
        "clamped"
    );

    conn.query_drop(format!("DROP DATABASE {db}; DROP DATABASE {sql_db}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}

/// Every `t_log` record as `(record_id, before_flag)`.
fn log_records(batches: &[arrow_array::RecordBatch]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for b in batches {
        let ids = b
            .column_by_name("new_dts_sync_record_id")
            .expect("record_id")
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .expect("i64")
            .clone();
        let flags = b
            .column_by_name("new_dts_sync_before_flag")
            .expect("before_flag")
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("utf8")
            .clone();
        for i in 0..b.num_rows() {
            out.push((ids.value(i), flags.value(i).to_owned()));
        }
    }
    out
}

/// Asserts that no record is in `t_log` twice (an UPDATE's two images share
/// one id, told apart by `before_flag`); returns the records.
fn unique_records(runner: &TaskRunner<LocalWarehouse>) -> Vec<(i64, String)> {
    let records = log_records(&runner.sink().read_table_blocking("t_log").expect("t_log"));
    let mut seen = std::collections::HashSet::new();
    for r in &records {
        assert!(seen.insert(r.clone()), "{r:?} twice in t_log");
    }
    records
}

/// Stops the run after the first committed chunk of the full phase.
struct StopAfterAChunk(Arc<AtomicBool>);

impl sync_core::progress::FullSyncProgress for StopAfterAChunk {
    fn table_started(&self, _: &str, _: u64, _: u64, _: u64) {}
    fn chunk_committed(&self, _: &str, _: u64, _: u64, _: u64, _: u64) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    fn table_finished(&self, _: &str, _: u64) {}
}

/// `conflicting_tables = "ignore"` onto tables an earlier task filled: the
/// full phase skips the keys `t_base` holds (counted, across a restart in
/// the middle), new changes get record ids above the old ones, and the
/// merge equals the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_keeps_existing_rows_and_outranks_old_records() {
    let url = sync_testkit::mysql_url();
    let db = "core_e2e_ignore";
    let name = format!("{db}.t");
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; USE {db};
         CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_40"
    ))
    .await
    .expect("source");
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = dir.path().join("warehouse");
    let opts = || RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };

    // An earlier task fills t_base and writes changes into t_log.
    let mut cfg = config(&url, db, dir.path());
    cfg.source.server_id = 7103;
    cfg.sync.state_dir = dir.path().join("state-earlier");
    let earlier = TaskRunner::new(cfg, LocalWarehouse::new(&warehouse)).expect("runner");
    earlier.run(&opts()).await.expect("earlier: full");
    conn.query_drop(format!(
        "USE {db}; UPDATE t SET v = 'old' WHERE id IN (2, 3); DELETE FROM t WHERE id IN (4, 5);
         INSERT INTO t VALUES (101, 'a'), (102, 'b')"
    ))
    .await
    .expect("earlier changes");
    earlier.run(&opts()).await.expect("earlier: changes");
    let old = unique_records(&earlier);
    let old_max = old.iter().map(|r| r.0).max().expect("old records");
    assert_eq!(old_max, 6, "2 updates, 2 deletes, 2 inserts");
    // That task is gone for good: its owner markers go, as the README says.
    for table in ["t_base", "t_log"] {
        std::fs::remove_file(warehouse.join(table).join("_owner.tag-0")).expect("marker");
    }

    // A new task writes into them.
    let new_task = || {
        let mut cfg = config(&url, db, dir.path());
        cfg.source.server_id = 7104;
        cfg.sync.state_dir = dir.path().join("state-new");
        cfg.sync.chunk_rows = 10;
        cfg.objects.conflicting_tables = sync_core::config::ConflictMode::Ignore;
        TaskRunner::new(cfg, LocalWarehouse::new(&warehouse)).expect("runner")
    };
    let report = new_task().precheck().await.expect("precheck");
    let c = report.get("destination_conflicts").expect("check");
    assert_eq!(c.outcome, sync_core::precheck::Outcome::Warning, "{report}");
    assert!(
        c.message
            .contains("skips every source row whose key t_base holds already")
            && c.message
                .contains("record_ids from counter 7 of record_id_tag 0 on")
            && c.message.contains("t_log up to record_id 6"),
        "{}",
        c.message
    );
    // Stopped after its first chunk, then restarted: the keys it reads are
    // the ones from before it, not its own rows.
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = new_task()
        .with_progress(Arc::new(StopAfterAChunk(stop.clone())))
        .run(&RunOptions {
            exit_when_caught_up: true,
            stop,
        })
        .await
        .expect("new: first chunk");
    assert!(
        matches!(stopped.phase, Phase::FullSync(_)),
        "{:?}",
        stopped.phase
    );
    let state = new_task().run(&opts()).await.expect("new: full");
    let Phase::Incremental(inc) = &state.phase else {
        panic!("{:?}", state.phase)
    };
    assert_eq!(inc.next_record_id, 7, "above the earlier task's records");
    let existing = state.existing.as_ref().expect("existing tables found");
    // 38 of the 40 source rows have keys t_base held (ids 1-40 but 4 and 5);
    // 101 and 102 were only in t_log.
    assert_eq!(existing.skipped.get(&name), Some(&38), "{existing:?}");
    let base = new_task()
        .sink()
        .read_table_blocking("t_base")
        .expect("t_base");
    assert_eq!(base.iter().map(|b| b.num_rows()).sum::<usize>(), 42);
    assert!(
        std::fs::read_dir(dir.path().join("state-new/existing-keys"))
            .expect("key sets")
            .count()
            == 1
    );

    // New changes, then a restart and more: ids above every older one.
    conn.query_drop(format!(
        "USE {db}; UPDATE t SET v = 'new' WHERE id IN (2, 101); DELETE FROM t WHERE id = 3;
         INSERT INTO t VALUES (200, 'n')"
    ))
    .await
    .expect("new changes");
    let runner = new_task();
    runner.run(&opts()).await.expect("new: changes");
    let after = unique_records(&runner);
    let new_ids: Vec<i64> = after
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
    for r in runner.verify().await.expect("verify") {
        assert!(r.is_equal(), "{r:?}");
    }
    let first_max = *new_ids.iter().max().expect("new");
    conn.query_drop(format!(
        "USE {db}; UPDATE t SET v = 'again' WHERE id IN (1, 2)"
    ))
    .await
    .expect("after the restart");
    let runner = new_task();
    let state = runner.run(&opts()).await.expect("restarted");
    let last = unique_records(&runner);
    let newest: Vec<i64> = last
        .iter()
        .map(|r| r.0)
        .filter(|id| !after.iter().any(|o| o.0 == *id))
        .collect();
    assert_eq!(newest.len(), 4);
    assert!(newest.iter().all(|&id| id > first_max), "{newest:?}");
    for r in runner.verify().await.expect("verify") {
        assert!(r.is_equal(), "{r:?}");
    }
    let merged = runner.merged(&name, None).await.expect("merged");
    assert_eq!(merged.num_rows(), 40);
    assert_eq!(
        state.existing.as_ref().and_then(|e| e.skipped.get(&name)),
        Some(&38),
        "the count outlives the full phase"
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// A Python with the `duckdb` package: `ODPS_TEST_PYTHON` (the venv that
/// `scripts/pyodps-tests` makes from its pinned requirements, duckdb among
/// them), else the repository's `.venv/bin/python`. `None`, said loudly,
/// when neither imports it; under `CI` that fails the test.
fn duckdb_python() -> Option<std::path::PathBuf> {
    let candidate = std::env::var_os("ODPS_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let ok = std::process::Command::new(&candidate)
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let message = format!(
            "{} cannot import duckdb: this test needs it (run `scripts/pyodps-tests`, which \
             installs the pinned requirements into .venv, or set ODPS_TEST_PYTHON)",
            candidate.display()
        );
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("\n!!! SKIPPED: {message} !!!\n");
    }
    ok.then_some(candidate)
}

/// One cell as text, `None` for NULL.
type Rows = Vec<Vec<Option<String>>>;

/// Runs `statements` in one in-memory DuckDB (session zone UTC), then each
/// of `queries`; their rows, every cell as text.
fn duckdb(python: &std::path::Path, statements: &[String], queries: &[String]) -> Vec<Rows> {
    use std::io::Write;
    const SCRIPT: &str = "import duckdb, json, sys\n\
        job = json.load(sys.stdin)\n\
        con = duckdb.connect()\n\
        con.execute(\"SET TimeZone = 'UTC'\")\n\
        for s in job['statements']:\n    con.execute(s)\n\
        out = [[[None if v is None else str(v) for v in row] for row in con.execute(q).fetchall()] for q in job['queries']]\n\
        print(json.dumps(out))\n";
    let mut child = std::process::Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    let job = serde_json::json!({"statements": statements, "queries": queries});
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(job.to_string().as_bytes())
        .expect("job");
    let out = child.wait_with_output().expect("duckdb ran");
    assert!(
        out.status.success(),
        "duckdb failed: {}\n{statements:#?}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("rows as json")
}

/// `read_parquet` over every Parquet file of a warehouse table (the README's
/// query): files of one table may differ in columns (added later), so by
/// name; `name=value` folders are `t_log`'s partitions.
fn parquet_table(warehouse: &std::path::Path, table: &str) -> String {
    format!(
        "read_parquet('{}/{table}/**/*.parquet', union_by_name = true, hive_partitioning = true)",
        warehouse.display()
    )
}

/// The MaxCompute SQL of `merge-sql` in DuckDB's dialect, and nothing else
/// changed: the `set odps.…` session flags go; backticked names take double
/// quotes; each of `tables` becomes [`parquet_table`]; the result table's
/// MaxCompute types become DuckDB's (`string` VARCHAR, `binary` BLOB,
/// `datetime`/`timestamp_ntz` TIMESTAMP, `timestamp` TIMESTAMPTZ; the
/// numeric types, `date` and `decimal(p,s)` are spelt alike); `INSERT
/// OVERWRITE TABLE` into the table just created is an `INSERT INTO`. The
/// window functions, `UNION ALL`, `CASE` and the `'I'`/`'Y'` literals are
/// the same in both (a literal with a backslash escape would not be:
/// refused).
fn merge_sql_for_duckdb(sql: &str, warehouse: &std::path::Path, tables: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for statement in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
        if statement.to_ascii_lowercase().starts_with("set odps.") {
            continue;
        }
        assert!(
            !statement.contains('\\'),
            "a MaxCompute escape: {statement}"
        );
        let mut s = statement.replace('`', "\"");
        if let Some(rest) = s.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
            let (name, columns) = rest.split_once(" (").expect("column list");
            let columns = columns.strip_suffix(')').expect("closing parenthesis");
            let columns: Vec<String> = columns
                .split(", ")
                .map(|def| {
                    let (column, ty) = def.rsplit_once(' ').expect("name and type");
                    let ty = match ty {
                        "string" => "VARCHAR",
                        "binary" => "BLOB",
                        "datetime" | "timestamp_ntz" => "TIMESTAMP",
                        "timestamp" => "TIMESTAMPTZ",
                        other => other,
                    };
                    format!("{column} {ty}")
                })
                .collect();
            s = format!("CREATE TABLE {name} ({})", columns.join(", "));
        }
        s = s.replace("INSERT OVERWRITE TABLE", "INSERT INTO");
        for t in tables {
            s = s.replace(&format!("\"{t}\""), &parquet_table(warehouse, t));
        }
        out.push(s);
    }
    out
}

/// The edge table's columns: name, its text in MariaDB (session zone UTC),
/// its text in DuckDB; FLOAT and DOUBLE compare as numbers (the two print
/// exponents differently).
const EDGE_COLUMNS: &[(&str, &str, &str)] = &[
    ("id", "CAST(id AS CHAR)", "CAST(id AS VARCHAR)"),
    ("tm", "CAST(tm AS CHAR)", "tm"),
    ("tm0", "CAST(tm0 AS CHAR)", "tm0"),
    (
        "dt6",
        "DATE_FORMAT(dt6, '%Y-%m-%d %H:%i:%s.%f')",
        "strftime(dt6, '%Y-%m-%d %H:%M:%S.%f')",
    ),
    (
        "dt0",
        "DATE_FORMAT(dt0, '%Y-%m-%d %H:%i:%s.%f')",
        "strftime(dt0, '%Y-%m-%d %H:%M:%S.%f')",
    ),
    (
        "ts",
        "DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f')",
        "strftime(ts, '%Y-%m-%d %H:%M:%S.%f')",
    ),
    ("d65", "CAST(d65 AS CHAR)", "CAST(d65 AS VARCHAR)"),
    ("d10", "CAST(d10 AS CHAR)", "CAST(d10 AS VARCHAR)"),
    ("bu", "CAST(bu AS CHAR)", "CAST(bu AS VARCHAR)"),
    ("b64", "CAST(b64 + 0 AS CHAR)", "CAST(b64 AS VARCHAR)"),
    ("b5", "CAST(b5 + 0 AS CHAR)", "CAST(b5 AS VARCHAR)"),
    ("j", "j", "j"),
    ("e", "e", "e"),
    ("st", "st", "st"),
    ("u", "u", "u"),
    ("bl", "HEX(bl)", "hex(bl)"),
    ("vb", "HEX(vb)", "hex(vb)"),
    ("y", "CAST(y + 0 AS CHAR)", "CAST(y AS VARCHAR)"),
    ("d", "DATE_FORMAT(d, '%Y-%m-%d')", "strftime(d, '%Y-%m-%d')"),
    ("ti", "CAST(ti AS CHAR)", "CAST(ti AS VARCHAR)"),
    ("f", "CAST(f AS CHAR)", "CAST(f AS VARCHAR)"),
    ("dbl", "CAST(dbl AS CHAR)", "CAST(dbl AS VARCHAR)"),
];

/// The `SELECT` of [`EDGE_COLUMNS`] (`mysql`: MariaDB's texts, else DuckDB's) over `from`, by id.
fn edge_select(from: &str, mysql: bool) -> String {
    let list: Vec<&str> = EDGE_COLUMNS
        .iter()
        .map(|(_, m, d)| if mysql { *m } else { *d })
        .collect();
    format!("SELECT {} FROM {from} ORDER BY id", list.join(", "))
}

/// The edge table's rows in MariaDB, as [`EDGE_COLUMNS`] prints them.
async fn edge_rows(conn: &mut mysql_async::Conn, db: &str) -> Rows {
    let rows: Vec<mysql_async::Row> = conn
        .query(edge_select(&format!("{db}.edges"), true))
        .await
        .expect("select");
    rows.into_iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<Option<String>, _>(i).expect("text"))
                .collect()
        })
        .collect()
}

/// Asserts two readings of the edge table hold the same values, cell by cell.
fn assert_same_edges(source: &Rows, read: &Rows, what: &str) {
    assert_eq!(source.len(), read.len(), "{what}: row count");
    for (s, r) in source.iter().zip(read) {
        for (((name, _, _), a), b) in EDGE_COLUMNS.iter().zip(s).zip(r) {
            let same = match (*name, a, b) {
                ("f" | "dbl", Some(a), Some(b)) => {
                    a.parse::<f64>().expect("number") == b.parse::<f64>().expect("number")
                }
                _ => a == b,
            };
            assert!(
                same,
                "{what}: row {:?} column {name}: source {a:?}, read {b:?}",
                s[0]
            );
        }
    }
}

/// The local warehouse read by another engine: DuckDB reads every column
/// of a table of edge values (TIME ±838:59:59.999999 as its text, DATETIME(6)
/// over its whole range, DECIMAL(65,30), BIGINT UNSIGNED and BIT(64) at their
/// maximum, JSON, ENUM, SET, utf8mb4, BLOB, YEAR, DATE, NULLs) as MariaDB
/// shows it, and the SQL of `merge-sql`, translated only in dialect, merges
/// its Parquet files into the source's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_the_warehouse_and_runs_merge_sql_over_it() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let url = sync_testkit::mysql_url();
    let db = "core_e2e_duckdb";
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    let ones = "b'1111111111111111111111111111111111111111111111111111111111111111'";
    conn.query_drop(format!(
        "SET time_zone = '+00:00';
         DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; USE {db};
         CREATE TABLE edges (
           id INT PRIMARY KEY, tm TIME(6), tm0 TIME, dt6 DATETIME(6), dt0 DATETIME,
           ts TIMESTAMP(6) NULL, d65 DECIMAL(65,30), d10 DECIMAL(10,3), bu BIGINT UNSIGNED,
           b64 BIT(64), b5 BIT(5), j JSON, e ENUM('a','b','c'), st SET('x','y','z'),
           u VARCHAR(40), bl BLOB, vb VARBINARY(8), y YEAR, d DATE, ti TINYINT, f FLOAT,
           dbl DOUBLE) CHARACTER SET utf8mb4;
         INSERT INTO edges VALUES
           (1, '-838:59:59.999999', '838:59:59', '1000-01-01 00:00:00', '9999-12-31 23:59:59',
            '1970-01-01 00:00:01', -99999999999999999999999999999999999.999999999999999999999999999999,
            -9999999.999, 18446744073709551615, {ones}, b'10101', '{{\"k\": [1, 2.5, null], \"s\": \"ü\"}}',
            'c', 'x,z', '🚲 ünïcode 中文 ✓', X'00FF10', X'', 1901, '1000-01-01', -128, -1.5e-3,
            1.7976931348623157e308),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, NULL, NULL, NULL),
           (3, '838:59:59.999999', '-00:00:01', '9999-12-31 23:59:59.999999', '1000-01-01 00:00:00',
            '2038-01-19 03:14:07.999999', 0.000000000000000000000000000001, 0, 0, b'0', b'0', '[]',
            'a', '', '', X'', X'0000000000000000', 2155, '9999-12-31', 127, 0, -0.0),
           (4, '-12:30:00.5', '00:00:00', '2024-02-29 12:34:56.000001', '2000-01-01 00:00:00',
            '2024-02-29 23:59:59.5', 1.5, 1.5, 9223372036854775808, b'1', b'11111', 'null',
            'b', 'x,y,z', 'naïve', X'FF', X'01', 0, '2024-02-29', 0, 3.25, 1e-300)"
    ))
    .await
    .expect("source");
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = dir.path().join("warehouse");
    let mut cfg = config(&url, db, dir.path());
    // Its own replica id: the other tests stream at the same time.
    cfg.source.server_id = 7105;
    let runner = TaskRunner::new(cfg, LocalWarehouse::new(&warehouse)).expect("runner");
    let opts = RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };
    runner.run(&opts).await.expect("first run");

    // The snapshot's rows, read straight from t_base's Parquet files.
    let snapshot = edge_rows(&mut conn, db).await;
    assert_eq!(snapshot.len(), 4);
    let base = duckdb(
        &python,
        &[],
        &[
            edge_select(&parquet_table(&warehouse, "edges_base"), false),
            format!(
                "SELECT column_name, column_type FROM (DESCRIBE SELECT tm, tm0 FROM {})",
                parquet_table(&warehouse, "edges_base")
            ),
        ],
    );
    assert_same_edges(&snapshot, &base[0], "t_base in DuckDB");
    assert_eq!(
        base[1],
        [
            [Some("tm".to_owned()), Some("VARCHAR".to_owned())],
            [Some("tm0".to_owned()), Some("VARCHAR".to_owned())]
        ],
        "TIME is text"
    );

    // Changes through the binlog: every edge again, on both images.
    conn.query_drop(format!(
        "SET time_zone = '+00:00'; USE {db};
         UPDATE edges SET tm = '838:59:59.999999', tm0 = '-838:59:59', u = 'changed ✓',
           bl = X'01', j = '{{\"a\": {{\"b\": \"😀\"}}}}', st = 'y', e = 'a' WHERE id = 1;
         UPDATE edges SET id = 30, tm = '-00:00:00.000001' WHERE id = 3;
         DELETE FROM edges WHERE id = 4;
         UPDATE edges SET tm = '00:00:00.5', d65 = 12345678901234567890123456789012345.123456789012345678901234567891,
           bu = 18446744073709551615, b64 = {ones}, y = 1901, d = '1000-01-01', dt6 = '1000-01-01 00:00:00.000001'
           WHERE id = 2;
         INSERT INTO edges VALUES
           (5, '-838:59:59.999999', '838:59:59', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59',
            '2038-01-19 03:14:07.999999', -0.000000000000000000000000000001, 9999999.999,
            18446744073709551615, {ones}, b'11111', '{{}}', 'c', 'x,y,z', '𝄞 ✓ 中', X'000102', X'FFFFFFFFFFFFFFFF',
            2155, '9999-12-31', -1, 1.5e38, -2.2250738585072014e-308),
           (6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
    ))
    .await
    .expect("changes");
    runner.run(&opts).await.expect("catch up");
    let now = edge_rows(&mut conn, db).await;
    let reports = runner.verify().await.expect("verify");
    assert!(reports[0].is_equal(), "{:?}", reports[0]);

    // The README's query: t_log's after images with their partitions, TIME
    // as an INTERVAL.
    let log = duckdb(
        &python,
        &[],
        &[format!(
            "SELECT CAST(id AS VARCHAR), tm, CAST(epoch_us(CAST(tm AS INTERVAL)) AS VARCHAR) \
             FROM {} WHERE new_dts_sync_after_flag = 'Y' AND new_dts_sync_modifytime_year >= 2000 \
             AND id IN (1, 5) ORDER BY new_dts_sync_record_id",
            parquet_table(&warehouse, "edges_log")
        )],
    );
    let text = |v: &[&str]| v.iter().map(|s| Some((*s).to_owned())).collect::<Vec<_>>();
    assert_eq!(
        log[0],
        [
            text(&["1", "838:59:59.999999", "3020399999999"]),
            text(&["5", "-838:59:59.999999", "-3020399999999"])
        ]
    );

    // merge-sql's statements, as `sync-cli merge-sql` prints them, in DuckDB.
    let tables = runner.tables().await.expect("tables");
    let t = &tables[0];
    let result = format!("{}_merged", t.dest);
    let sql = format!(
        "{}{}",
        runner.merge_sql_prelude(t, &result).expect("prelude"),
        sync_core::merge::merge_sql(
            &t.dest,
            &result,
            &t.dest_columns(),
            &t.dest_key(),
            runner.meta(),
            4_000_000_000,
        )
        .expect("merge sql")
    );
    assert!(sql.contains("`tm` string"), "TIME is a string: {sql}");
    let statements = merge_sql_for_duckdb(
        &sql,
        &warehouse,
        &[&format!("{}_base", t.dest), &format!("{}_log", t.dest)],
    );
    let merged = duckdb(
        &python,
        &statements,
        &[edge_select(&format!("\"{result}\""), false)],
    );
    assert_same_edges(&now, &merged[0], "merge-sql in DuckDB");

    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}
