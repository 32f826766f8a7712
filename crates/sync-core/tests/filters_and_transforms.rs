//! A row filter from the task file, a column subset with a rename, and an
//! embedder's transform, in both phases: what lands is the filtered,
//! transformed source, updates that cross the filter become inserts and
//! deletes, and `verify` (which shapes the source the same way) passes.

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use mysql_async::prelude::Queryable;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use sync_core::config::TaskConfig;
use sync_core::run::{RunOptions, SyncedTable, TaskRunner};
use sync_core::sink::local::LocalWarehouse;
use sync_core::transform::{Transform, Transformed};

const DB: &str = "core_filters";

fn config(url: &str, dir: &std::path::Path, filter: &str) -> TaskConfig {
    toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7161
        [destination]
        kind = "local"
        path = "{wh}"
        [objects]
        include = ["{DB}.orders"]
        [objects.tables."{DB}.orders"]
        columns = ["id", "country", "amount"]
        rename_columns = {{ amount = "total" }}
        filter = "{filter}"
        [sync]
        types = ["schema", "full", "incremental"]
        state_dir = "{state}"
        chunk_rows = 7
        "#,
        wh = dir.join("warehouse").display(),
        state = dir.join("state").display(),
    ))
    .expect("task file")
}

/// Drops ids divisible by 10 and writes countries in lower case.
struct LowerCountryNoTens;

impl Transform for LowerCountryNoTens {
    fn apply(&self, _t: &SyncedTable, rows: RecordBatch) -> sync_core::Result<Transformed> {
        let ids = rows
            .column_by_name("id")
            .expect("id")
            .as_primitive::<Int32Type>();
        let keep: BooleanArray = ids.iter().map(|id| id.map(|v| v % 10 != 0)).collect();
        let i = rows.schema().index_of("country")?;
        let lower: StringArray = rows
            .column(i)
            .as_string::<i32>()
            .iter()
            .map(|c| c.map(str::to_lowercase))
            .collect();
        let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
        columns[i] = Arc::new(lower);
        Ok(Transformed {
            rows: RecordBatch::try_new(rows.schema(), columns)?,
            keep,
        })
    }
}

/// `(id → country)` of a table's rows, and the rows' total.
fn ids(batches: &[RecordBatch]) -> BTreeMap<i32, String> {
    let mut out = BTreeMap::new();
    for b in batches {
        let id = b
            .column_by_name("id")
            .expect("id")
            .as_primitive::<Int32Type>();
        let c = b
            .column_by_name("country")
            .expect("country")
            .as_string::<i32>();
        for r in 0..b.num_rows() {
            out.insert(id.value(r), c.value(r).to_owned());
        }
    }
    out
}

fn ops(log: &[RecordBatch]) -> BTreeMap<(i32, String), usize> {
    let mut out = BTreeMap::new();
    for b in log {
        let id = b
            .column_by_name("id")
            .expect("id")
            .as_primitive::<Int32Type>();
        let op = b
            .column_by_name("new_dts_sync_operation_flag")
            .expect("op")
            .as_string::<i32>();
        for r in 0..b.num_rows() {
            *out.entry((id.value(r), op.value(r).to_owned()))
                .or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_transforms_shape_both_phases_and_verify() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    // 60 orders: DE for id % 3 = 0, FR for 1, IT for 2; amounts id / 2.
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}; USE {DB};
         CREATE TABLE orders (id INT PRIMARY KEY, country CHAR(2), amount DECIMAL(10,2), note TEXT);
         INSERT INTO orders SELECT seq, ELT(1 + seq % 3, 'DE', 'FR', 'IT'), seq / 2, CONCAT('n', seq)
           FROM seq_1_to_60;"
    ))
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&url, dir.path(), "country IN ('DE', 'FR') AND amount >= 10");
    let runner = TaskRunner::new(cfg, LocalWarehouse::new(dir.path().join("warehouse")))
        .expect("runner")
        .with_transform(Arc::new(LowerCountryNoTens));
    let opts = RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    };
    runner.run(&opts).await.expect("full");
    let base = runner
        .sink()
        .read_table_blocking("orders_base")
        .expect("t_base");
    let landed = ids(&base);
    // amount = id / 2 ≥ 10 → id ≥ 20; not IT (id % 3 = 2); not id % 10 = 0.
    let expected: BTreeMap<i32, String> = (20..=60)
        .filter(|id| id % 3 != 2 && id % 10 != 0)
        .map(|id| (id, if id % 3 == 0 { "de" } else { "fr" }.to_owned()))
        .collect();
    assert_eq!(landed, expected);
    assert_eq!(
        base[0].schema().field(2).name(),
        "total",
        "columns subset and rename"
    );
    assert_eq!(base[0].num_columns(), 3, "note is not synced");

    // Changes crossing the filter both ways, staying inside it, outside it.
    conn.query_drop(format!(
        "USE {DB};
         UPDATE orders SET country = 'DE' WHERE id = 23;     -- IT → DE: starts matching
         UPDATE orders SET country = 'IT' WHERE id = 21;     -- DE → IT: stops matching
         UPDATE orders SET amount = amount + 1 WHERE id = 22; -- FR, stays in
         UPDATE orders SET amount = 1 WHERE id = 25;          -- FR, drops below 10
         UPDATE orders SET note = 'x' WHERE id = 5;           -- outside, stays out
         INSERT INTO orders VALUES (103, 'FR', 50, 'in'), (104, 'IT', 50, 'out'), (110, 'DE', 50, 'tens');
         DELETE FROM orders WHERE id IN (28, 29);             -- FR in, IT out
         UPDATE orders SET id = 203 WHERE id = 31;            -- key change, stays in"
    ))
    .await
    .expect("changes");
    runner.run(&opts).await.expect("catch up");
    for r in runner.verify().await.expect("verify") {
        assert!(r.is_equal(), "{} differs: {r:?}", r.table);
    }
    let log = runner
        .sink()
        .read_table_blocking("orders_log")
        .expect("t_log");
    let got = ops(&log);
    let want: BTreeMap<(i32, String), usize> = [
        ((23, "I"), 1),  // the after image only
        ((21, "D"), 1),  // the before image only
        ((22, "U"), 2),  // both images
        ((25, "D"), 1),  // before only
        ((103, "I"), 1), // a matching insert
        ((28, "D"), 1),  // a matching delete
        ((31, "U"), 1),  // key change: before image …
        ((203, "U"), 1), // … and after image
    ]
    .into_iter()
    .map(|((id, op), n)| ((id, op.to_owned()), n))
    .collect();
    assert_eq!(got, want, "t_log records by id and operation");
    let lower = log.iter().all(|b| {
        let c = b
            .column_by_name("country")
            .expect("country")
            .as_string::<i32>();
        c.iter().flatten().all(|v| v == v.to_lowercase())
    });
    assert!(lower, "the transform ran on binlog images too");
    conn.query_drop(format!("DROP DATABASE {DB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn a_filter_that_does_not_compile_fails_the_precheck_with_its_reason() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    let db = "core_filters_bad";
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};
         CREATE TABLE {db}.orders (id INT PRIMARY KEY, country CHAR(2), amount DECIMAL(10,2), note TEXT)"
    ))
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[source]\nurl = \"{url}\"\nserver_id = 7162\n[destination]\nkind = \"local\"\npath = \"{}\"\n\
         [objects]\ninclude = [\"{db}.orders\"]\n[objects.tables.\"{db}.orders\"]\ncolumns = [\"id\", \"amount\"]\n\
         filter = \"note = 'x'\"\n[sync]\ntypes = [\"schema\", \"full\"]\nstate_dir = \"{}\"\n",
        dir.path().join("wh").display(),
        dir.path().join("state").display()
    );
    let cfg = sync_core::taskfile::parse(&text, "task.toml").expect("parses");
    let runner = TaskRunner::new(cfg, LocalWarehouse::new(dir.path().join("wh"))).expect("runner");
    let report = runner.precheck().await.expect("precheck runs");
    let text = report.to_string();
    assert!(!report.passed(), "{text}");
    assert!(
        text.contains("filter: `note` is not a synced column"),
        "{text}"
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}
