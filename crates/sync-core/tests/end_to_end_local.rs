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
