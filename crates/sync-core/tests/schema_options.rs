//! The schema-sync options, each read back from what landed in the local
//! warehouse: capitalization, database / table / column renames, column
//! lists, and the conflicting-tables mode.

use crate::common::caught_up;
use arrow_array::{Array, RecordBatch};
use mysql_async::prelude::Queryable;
use std::collections::BTreeSet;
use std::path::Path;
use sync_core::Error;
use sync_core::machine::Phase;
use sync_core::run::TaskRunner;
use sync_core::sink::local::LocalWarehouse;

fn task(
    server_id: u32,
    url: &str,
    dir: &Path,
    state: &str,
    objects: &str,
    types: &str,
) -> TaskRunner<LocalWarehouse> {
    tagged_task(server_id, url, dir, state, 0, objects, types)
}

/// [`task`] writing under `record_id_tag = tag`.
fn tagged_task(
    server_id: u32,
    url: &str,
    dir: &Path,
    state: &str,
    tag: u8,
    objects: &str,
    types: &str,
) -> TaskRunner<LocalWarehouse> {
    let text = format!(
        "[source]\nurl = \"{url}\"\nserver_id = {server_id}\nrecord_id_tag = {tag}\n\
         [destination]\nkind = \"local\"\npath = \"{}\"\n\
         [objects]\n{objects}\n\
         [sync]\ntypes = {types}\nstate_dir = \"{}\"\nchunk_rows = 7\nbatch_rows = 5\n",
        dir.join("warehouse").display(),
        dir.join(state).display()
    );
    let cfg = sync_core::taskfile::parse(&text, "task.toml").expect("task file");
    TaskRunner::new(cfg, LocalWarehouse::new(dir.join("warehouse"))).expect("runner")
}

/// The table folders of the warehouse (bookkeeping left out).
fn folders(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("warehouse"))
        .expect("warehouse")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('_') && !n.starts_with('.'))
        .collect()
}

fn read(dir: &Path, table: &str) -> Vec<RecordBatch> {
    LocalWarehouse::new(dir.join("warehouse"))
        .read_table_blocking(table)
        .expect("read")
}

fn fields(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .first()
        .expect("rows")
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let col = b.column_by_name(column).expect(column);
        let col = arrow_cast::cast(col, &arrow_schema::DataType::Utf8).expect("cast");
        let col = col
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("utf8");
        out.extend((0..col.len()).map(|i| col.value(i).to_owned()));
    }
    out.sort();
    out
}

async fn assert_verified(runner: &TaskRunner<LocalWarehouse>, tables: usize) {
    let reports = runner.verify().await.expect("verify");
    assert_eq!(reports.len(), tables);
    for r in &reports {
        assert!(r.is_equal(), "{} differs: {r:?}", r.table);
        assert!(r.source_rows > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_column_lists_and_capitalization_land_as_configured() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    let rows_sql: String = (1..=20)
        .map(|i| format!("({i}, 'c{i}@x.org', 'Name {i}', 'secret {i}'),"))
        .collect();
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS opt_names; CREATE DATABASE opt_names; USE opt_names;
         CREATE TABLE Customers (Id INT PRIMARY KEY, Email VARCHAR(40), FullName VARCHAR(40), Secret VARCHAR(40));
         INSERT INTO Customers VALUES {};
         CREATE TABLE Orders (id INT PRIMARY KEY, Total DECIMAL(10,2));
         INSERT INTO Orders VALUES (1, 9.50), (2, 12.00), (3, 0.99);",
        rows_sql.trim_end_matches(',')
    ))
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = "include = [\"opt_names.*\"]\ncapitalization = \"upper\"\n\
                   databases = { opt_names = \"crm\" }\n\
                   [objects.tables.\"opt_names.Customers\"]\nname = \"Clients\"\n\
                   columns = [\"Id\", \"Email\", \"FullName\"]\nrename_columns = { Email = \"Mail\" }";
    let runner = task(
        7311,
        &url,
        dir.path(),
        "state",
        objects,
        "[\"schema\", \"full\", \"incremental\"]",
    );
    let state = runner.run(&caught_up()).await.expect("run");
    assert!(
        matches!(state.phase, Phase::Incremental(_)),
        "{:?}",
        state.phase
    );
    assert_eq!(
        folders(dir.path()),
        [
            "CLIENTS_base",
            "CLIENTS_log",
            "CRM_ORDERS_base",
            "CRM_ORDERS_log"
        ]
        .map(String::from)
        .into(),
        "a table rename wins over the database prefix; the suffixes stay as DTS writes them"
    );
    let base = read(dir.path(), "CLIENTS_base");
    assert_eq!(
        fields(&base),
        ["ID", "MAIL", "FULLNAME"],
        "Secret is not synced"
    );
    assert_eq!(rows(&base), 20);
    assert!(strings(&base, "MAIL").contains(&"c7@x.org".to_owned()));
    assert_eq!(
        fields(&read(dir.path(), "CRM_ORDERS_base")),
        ["ID", "TOTAL"]
    );

    // Changes, including one to the unsynced column only.
    conn.query_drop(
        "USE opt_names;
         INSERT INTO Customers VALUES (21, 'new@x.org', 'New', 'hidden');
         UPDATE Customers SET Email = 'moved@x.org' WHERE Id = 3;
         UPDATE Customers SET Secret = 'changed' WHERE Id = 4;
         DELETE FROM Customers WHERE Id = 5;
         UPDATE Orders SET Total = Total + 1 WHERE id = 2;",
    )
    .await
    .expect("changes");
    runner.run(&caught_up()).await.expect("catch up");
    let log = read(dir.path(), "CLIENTS_log");
    let names = fields(&log);
    assert_eq!(
        &names[5..],
        ["ID", "MAIL", "FULLNAME"],
        "the log carries the same names after the metadata columns"
    );
    assert_eq!(names[0], "new_dts_sync_record_id");
    // 1 insert + 2 updates (two records each) + 1 delete.
    assert_eq!(rows(&log), 6);
    let mails = strings(&log, "MAIL");
    assert!(mails.contains(&"moved@x.org".to_owned()) && mails.contains(&"new@x.org".to_owned()));
    let all_text: String = log.iter().chain(&base).map(|b| format!("{b:?}")).collect();
    assert!(
        !all_text.contains("secret") && !all_text.contains("hidden"),
        "no Secret value landed"
    );
    assert_verified(&runner, 2).await;

    // The same source with the source's case, in another warehouse.
    let other = tempfile::tempdir().expect("tempdir");
    let runner = task(
        7311,
        &url,
        other.path(),
        "state",
        "include = [\"opt_names.*\"]\ncapitalization = \"source\"\ndatabases = { opt_names = \"crm\" }",
        "[\"schema\", \"full\"]",
    );
    runner.run(&caught_up()).await.expect("run");
    assert_eq!(
        folders(other.path()),
        [
            "crm_Customers_base",
            "crm_Customers_log",
            "crm_Orders_base",
            "crm_Orders_log"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        fields(&read(other.path(), "crm_Customers_base")),
        ["Id", "Email", "FullName", "Secret"]
    );
    // And the default: lower case, no prefix.
    let lower = tempfile::tempdir().expect("tempdir");
    let runner = task(
        7311,
        &url,
        lower.path(),
        "state",
        "include = [\"opt_names.Orders\"]",
        "[\"schema\", \"full\"]",
    );
    runner.run(&caught_up()).await.expect("run");
    assert_eq!(
        folders(lower.path()),
        ["orders_base", "orders_log"].map(String::from).into()
    );
    assert_eq!(fields(&read(lower.path(), "orders_base")), ["id", "total"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_tables_stop_the_task_or_are_written_into() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(
        "DROP DATABASE IF EXISTS opt_conf; CREATE DATABASE opt_conf; USE opt_conf;
         CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(10));
         INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    )
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let full = "[\"schema\", \"full\"]";
    let first = task(
        7312,
        &url,
        dir.path(),
        "state1",
        "include = [\"opt_conf.*\"]",
        full,
    );
    first.run(&caught_up()).await.expect("first task");
    assert_eq!(rows(&read(dir.path(), "items_base")), 3);

    // A second task onto the same tables: mode "error" refuses ...
    let second = task(
        7312,
        &url,
        dir.path(),
        "state2",
        "include = [\"opt_conf.*\"]",
        full,
    );
    match second.run(&caught_up()).await {
        Err(Error::Precheck(r)) => {
            let c = r.get("destination_conflicts").expect("check");
            assert_eq!(
                c.message,
                "destination tables exist already: items_base, items_log"
            );
        }
        other => panic!("expected the precheck to refuse, got {other:?}"),
    }
    assert_eq!(rows(&read(dir.path(), "items_base")), 3, "nothing written");

    // ... mode "ignore" does not let a second task write them under the
    // first one's record_id_tag (its rows would collide on record ids) ...
    let ignore = "include = [\"opt_conf.*\"]\nconflicting_tables = \"ignore\"";
    let second = task(7312, &url, dir.path(), "state2", ignore, full);
    match second.run(&caught_up()).await {
        Err(Error::Precheck(r)) => {
            let c = r.get("destination_owners").expect("check");
            assert!(
                c.message.contains("record_id_tag 0") && c.message.contains("items_base (task t"),
                "{}",
                c.message
            );
        }
        other => panic!("expected the precheck to refuse, got {other:?}"),
    }
    assert_eq!(rows(&read(dir.path(), "items_base")), 3, "nothing written");

    // ... but under another tag writes into them, keeping what they held:
    // rows whose key is there already are skipped and counted.
    conn.query_drop("INSERT INTO opt_conf.items VALUES (4, 'd')")
        .await
        .expect("one more row");
    let second = tagged_task(7312, &url, dir.path(), "state3", 1, ignore, full);
    let state = second.run(&caught_up()).await.expect("second task");
    assert_eq!(state.phase, Phase::Finished);
    let skipped = state.existing.as_ref().map(|e| e.skipped.clone());
    assert_eq!(
        skipped.unwrap_or_default().get("opt_conf.items"),
        Some(&3),
        "three keys were there"
    );
    let base = read(dir.path(), "items_base");
    assert_eq!(
        rows(&base),
        4,
        "the first task's rows stay, the second adds the new key only"
    );
    assert_eq!(strings(&base, "label"), ["a", "b", "c", "d"]);
}

/// Every file below `root`, relative to it.
fn files_under(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p.strip_prefix(root).expect("under").display().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_source_names_land_under_safe_names_inside_the_warehouse() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(
        "DROP DATABASE IF EXISTS opt_hostile; CREATE DATABASE opt_hostile; USE opt_hostile;
         CREATE TABLE `../../../escape` (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO `../../../escape` VALUES (1, 'a'), (2, 'b');
         CREATE TABLE `Order-Items` (`order-id` INT PRIMARY KEY, `名前` VARCHAR(20),
           `Mixed Case Col` INT, `select` INT);
         INSERT INTO `Order-Items` VALUES (1, 'x', 10, 100), (2, 'y', 20, 200);",
    )
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    // The folder the hostile name points at from inside the warehouse.
    let target = dir.path().join("warehouse/../../../escape_base");
    let before = target.exists();
    let runner = task(
        7313,
        &url,
        dir.path(),
        "state",
        "include = [\"opt_hostile.*\"]",
        "[\"schema\", \"full\", \"incremental\"]",
    );
    let report = runner.precheck().await.expect("precheck");
    let names = report
        .checks
        .iter()
        .find(|c| c.id == "destination_names")
        .expect("destination_names check");
    assert!(
        names.message.contains("../../../escape") && names.message.contains("Order-Items"),
        "{}",
        names.message
    );
    runner.run(&caught_up()).await.expect("full phase");
    conn.query_drop(
        "USE opt_hostile;
         INSERT INTO `../../../escape` VALUES (3, 'c');
         UPDATE `Order-Items` SET `名前` = 'z', `select` = 201 WHERE `order-id` = 2;",
    )
    .await
    .expect("changes");
    runner.run(&caught_up()).await.expect("catch-up");
    assert_verified(&runner, 2).await;

    // Only the warehouse and the state folder exist, and every name in them
    // is a plain one.
    let top: BTreeSet<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["state", "warehouse"].map(String::from).into());
    assert_eq!(
        target.exists(),
        before,
        "nothing written outside the warehouse"
    );
    let tables = folders(dir.path());
    assert_eq!(tables.len(), 4, "{tables:?}");
    for t in &tables {
        assert!(
            t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{t}"
        );
    }
    assert!(
        tables
            .iter()
            .any(|t| t.starts_with("t__") && t.contains("_escape_") && t.ends_with("_base")),
        "{tables:?}"
    );
    let items = tables
        .iter()
        .find(|t| t.starts_with("order_items_") && t.ends_with("_base"))
        .expect("order_items");
    let columns = fields(&read(dir.path(), items));
    assert!(columns[0].starts_with("order_id_"), "{columns:?}");
    assert!(columns[1].starts_with("c_"), "{columns:?}");
    assert!(columns[2].starts_with("mixed_case_col_"), "{columns:?}");
    assert_eq!(
        columns[3], "select",
        "a reserved word is quoted, not renamed"
    );
    // The chunk plans of both tables: one file each, straight in plans/
    // (the hostile name is one escaped component, not a path).
    let plans: Vec<String> = files_under(&dir.path().join("state"))
        .into_iter()
        .filter(|f| f.starts_with("plans/"))
        .collect();
    assert_eq!(plans.len(), 2, "{plans:?}");
    for f in &plans {
        assert_eq!(Path::new(f).components().count(), 2, "{f}");
    }
}
