//! DDL on synced tables while the incremental phase runs, against the
//! sandbox MariaDB: `ADD COLUMN` in its forms lands in `t_base` and `t_log`
//! (local warehouse and the MaxCompute emulator, read back by pyodps), rows
//! decode with the schema of their time across a restart, a DDL the policy
//! stops at names the statement and its binlog position, a schema change
//! outside the binlog stops the task at the table's next row, a write a
//! session logged in STATEMENT or MIXED format (or with a row image that is
//! not full) stops the task at its transaction (or is skipped and counted
//! under `unsupported_events = "skip"`) when it touches a synced table, and
//! passes when it touches other tables; tables added to `[objects] include`
//! get their baseline and changes under a writer and a stop mid-backfill,
//! and a table removed from it stops being synced. Online schema-change
//! tools (pt-online-schema-change run for real, gh-ost and DMS replayed) are
//! followed under a writer and across restarts: `t` keeps syncing, their
//! tables never land.

use crate::common::caught_up;
use arrow_array::{Array, RecordBatch};
use mysql_async::prelude::Queryable;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use sync_core::Error;
use sync_core::machine::{Incremental, Phase, TaskState};
use sync_core::run::{ResnapshotOutcome, RunOptions, TaskRunner};
use sync_core::sink::Sink;
use sync_core::sink::local::LocalWarehouse;
use sync_core::sink::maxcompute::MaxComputeSink;
use sync_testkit::emulator::{ACCESS_ID, ACCESS_KEY, Emulator, pyodps_python};

/// A task file syncing `db.*`; `destination` is its `[destination]` body,
/// `extra` more `[sync]` lines.
fn task_file(db: &str, server_id: u32, dir: &Path, destination: &str, extra: &str) -> String {
    format!(
        "[source]\nurl = \"{url}\"\nserver_id = {server_id}\n\
         [destination]\n{destination}\n\
         [objects]\ninclude = [\"{db}.*\"]\n\
         [sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\nstate_dir = \"{state}\"\n\
         log_partitions = [\"year\"]\nchunk_rows = 7\nbatch_rows = 4\n{extra}\n",
        url = sync_testkit::mysql_url(),
        state = dir.join("state").display(),
    )
}

fn local_task(db: &str, server_id: u32, dir: &Path, extra: &str) -> TaskRunner<LocalWarehouse> {
    let wh = dir.join("warehouse");
    let text = task_file(
        db,
        server_id,
        dir,
        &format!("kind = \"local\"\npath = \"{}\"", wh.display()),
        extra,
    );
    let cfg = sync_core::taskfile::parse(&text, "task.toml").expect("task file");
    TaskRunner::new(cfg, LocalWarehouse::new(wh)).expect("runner")
}

async fn connect() -> mysql_async::Conn {
    let url = sync_testkit::mysql_url();
    mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect")
}

/// A fresh database holding `ddl`.
async fn fresh_db(conn: &mut mysql_async::Conn, db: &str, ddl: &str) {
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; USE {db}; {ddl}"
    ))
    .await
    .expect("database");
}

/// Every value as text (`None` for NULL), per row, keyed by the `id` column.
fn by_id(batches: &[RecordBatch], columns: &[&str]) -> BTreeMap<i64, Vec<Option<String>>> {
    let mut out = BTreeMap::new();
    for b in batches {
        let text = |name: &str| {
            let col = b
                .column_by_name(name)
                .unwrap_or_else(|| panic!("column {name} in {:?}", b.schema()));
            arrow_cast::cast(col, &arrow_schema::DataType::Utf8).expect("as text")
        };
        let ids = text("id");
        let ids = ids
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("utf8");
        let cols: Vec<_> = columns.iter().map(|c| text(c)).collect();
        for row in 0..b.num_rows() {
            let values = cols
                .iter()
                .map(|c| {
                    let c = c
                        .as_any()
                        .downcast_ref::<arrow_array::StringArray>()
                        .expect("utf8");
                    c.is_valid(row).then(|| c.value(row).to_owned())
                })
                .collect();
            out.insert(ids.value(row).parse().expect("id"), values);
        }
    }
    out
}

fn v(s: &str) -> Option<String> {
    Some(s.to_owned())
}

fn incremental(state: &TaskState) -> &Incremental {
    match &state.phase {
        Phase::Incremental(inc) => inc,
        other => panic!("not incremental: {other:?}"),
    }
}

async fn assert_verified<S: Sink>(runner: &TaskRunner<S>) -> Vec<sync_core::verify::TableReport> {
    let reports = runner.verify().await.expect("verify");
    for r in &reports {
        assert!(r.is_equal(), "{} differs: {r:?}", r.table);
    }
    reports
}

/// The rows that MariaDB's `ADD COLUMN` variants leave, as the test expects
/// them merged: ids 1-5 from the snapshot, 6 before the first ALTER, and
/// rows written between and after the ALTERs.
const CHANGES: &str = "
    INSERT INTO items VALUES (6, 'six', 6);
    UPDATE items SET qty = 10 WHERE id = 1;
    ALTER TABLE items ADD COLUMN a INT, ADD COLUMN b VARCHAR(10) DEFAULT 'x';
    INSERT INTO items (id, name, qty, a, b) VALUES (7, 'seven', 7, 70, 'seven');
    INSERT INTO items (id, name, qty) VALUES (8, 'eight', 8);
    UPDATE items SET a = 20 WHERE id = 2;
    ALTER TABLE `items` ADD (c INT, d DECIMAL(6,2) DEFAULT 1.5);
    ALTER TABLE items ADD COLUMN f DATETIME(3) FIRST, ADD COLUMN g BIGINT UNSIGNED NOT NULL DEFAULT 5 AFTER id;
    INSERT INTO items VALUES ('2026-01-02 03:04:05.678', 9, 99, 'nine', 9, 90, 'nine', 900, 9.25);
    UPDATE items SET qty = qty + 1 WHERE id = 3;
    DELETE FROM items WHERE id = 5;";

const ITEMS: &str = "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), qty INT) CHARACTER SET utf8mb4;
    INSERT INTO items VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3), (4, 'four', 4), (5, 'five', 5);";

const ADDED: [&str; 7] = ["a", "b", "c", "d", "f", "g", "qty"];

/// What the merge of `items` must hold after [`CHANGES`]: old rows keep
/// NULL in the added columns (no backfill), later ones carry their values
/// and the defaults the binlog images hold.
fn expected_items() -> BTreeMap<i64, Vec<Option<String>>> {
    BTreeMap::from([
        (1, vec![None, None, None, None, None, None, v("10")]),
        (2, vec![v("20"), v("x"), None, None, None, None, v("2")]),
        (3, vec![None, v("x"), None, v("1.50"), None, v("5"), v("4")]),
        (4, vec![None, None, None, None, None, None, v("4")]),
        (6, vec![None, None, None, None, None, None, v("6")]),
        (7, vec![v("70"), v("seven"), None, None, None, None, v("7")]),
        (8, vec![None, v("x"), None, None, None, None, v("8")]),
        (
            9,
            vec![
                v("90"),
                v("nine"),
                v("900"),
                v("9.25"),
                v("2026-01-02T03:04:05.678"),
                v("99"),
                v("9"),
            ],
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_column_variants_land_in_t_base_and_t_log_and_verify() {
    let db = "core_ddl_add";
    let mut conn = connect().await;
    fresh_db(&mut conn, db, ITEMS).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = local_task(db, 7201, dir.path(), "");
    runner.run(&caught_up()).await.expect("full sync");
    conn.query_drop(format!("USE {db}; {CHANGES}"))
        .await
        .expect("changes");
    let state = runner.run(&caught_up()).await.expect("catch up");
    // One generation at the phase's start, one per ALTER.
    assert_eq!(incremental(&state).schemas, Some(4));

    let reports = assert_verified(&runner).await;
    // Rows last changed before an ADD COLUMN with a default read NULL there,
    // while MariaDB shows the default: 1, 2, 4, 6, 7, 8 (3 and 9 changed
    // after the last ALTER).
    assert_eq!(reports[0].added_null, 6, "{:?}", reports[0]);
    let merged = runner
        .merged(&format!("{db}.items"), None)
        .await
        .expect("merge");
    assert_eq!(by_id(&[merged], &ADDED), expected_items());
    // A table named without its database: the error says which one is meant.
    let err = runner
        .merged("ITEMS", None)
        .await
        .expect_err("not db.table")
        .to_string();
    assert!(
        err.ends_with(&format!("; did you mean {db}.items?")),
        "{err}"
    );

    // The destination tables have the columns after the old ones.
    let def: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("warehouse/items_log/_table.json")).expect("def"),
    )
    .expect("json");
    let names: Vec<&str> = def["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .skip(5)
        .collect();
    assert_eq!(names, ["id", "name", "qty", "a", "b", "c", "d", "f", "g"]);
    // t_log: the insert before the first ALTER was written without the new
    // columns and reads NULL there; the after image of 3's update has them.
    let t = runner.tables().await.expect("tables").remove(0);
    let log = runner
        .sink()
        .read_table("items_log", &t.log_schema)
        .await
        .expect("t_log");
    let rows = log.iter().map(RecordBatch::num_rows).sum::<usize>();
    assert_eq!(
        rows,
        1 + 2 + 1 + 1 + 2 + 1 + 2 + 1,
        "records of the changes"
    );
    let inserted = by_id(&log, &["b", "g"]);
    assert_eq!(inserted[&6], [None, None]);
    assert_eq!(inserted[&9], [v("nine"), v("99")]);
    let base = runner
        .sink()
        .read_table("items_base", &t.base_schema)
        .await
        .expect("t_base");
    assert!(
        by_id(&base, &["a", "g"])
            .values()
            .all(|r| r == &[None, None]),
        "t_base rows predate the ALTERs"
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_before_an_alter_decodes_rows_with_the_schema_of_their_time() {
    let db = "core_ddl_restart";
    let mut conn = connect().await;
    fresh_db(
        &mut conn,
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t VALUES (1, 'a');",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    local_task(db, 7202, dir.path(), "")
        .run(&caught_up())
        .await
        .expect("full sync");
    // The task is down while rows, a column added in front, and more rows
    // arrive: at the restart information_schema shows (z, id, v), but the
    // rows before the ALTER have only (id, v).
    conn.query_drop(format!(
        "USE {db};
         INSERT INTO t VALUES (2, 'b'), (3, 'c');
         UPDATE t SET v = 'aa' WHERE id = 1;
         ALTER TABLE t ADD COLUMN z INT NOT NULL DEFAULT 7 FIRST;
         INSERT INTO t VALUES (40, 4, 'd');
         UPDATE t SET z = 20 WHERE id = 2;"
    ))
    .await
    .expect("changes");
    let saved = std::fs::read_to_string(dir.path().join("state/schemas/00000001.json"))
        .expect("the schemas saved at the phase's start");
    assert!(
        saved.contains("\"v\"") && !saved.contains("\"z\""),
        "{saved}"
    );

    // A new runner, as after a process restart.
    let runner = local_task(db, 7202, dir.path(), "");
    let state = runner.run(&caught_up()).await.expect("restart");
    assert_eq!(incremental(&state).schemas, Some(2));
    assert!(
        !dir.path().join("state/schemas/00000001.json").exists(),
        "pruned"
    );
    let reports = assert_verified(&runner).await;
    assert_eq!(
        reports[0].added_null, 2,
        "1 and 3 predate z: {:?}",
        reports[0]
    );
    let merged = runner
        .merged(&format!("{db}.t"), None)
        .await
        .expect("merge");
    assert_eq!(
        by_id(&[merged], &["z", "v"]),
        BTreeMap::from([
            (1, vec![None, v("aa")]),
            (2, vec![v("20"), v("b")]),
            (3, vec![None, v("c")]),
            (4, vec![v("40"), v("d")]),
        ])
    );

    // Restarted again after the ALTER: the saved generation 2 is in force.
    conn.query_drop(format!("USE {db}; INSERT INTO t VALUES (50, 5, 'e');"))
        .await
        .expect("more");
    let runner = local_task(db, 7202, dir.path(), "");
    runner.run(&caught_up()).await.expect("second restart");
    assert_verified(&runner).await;
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// Tables created while the task runs (`create_table = "apply"`, the
/// default) are synced from their CREATE on: every row lands in `t_log`,
/// `t_base` stays empty, character sets come from the statement, `LIKE`
/// copies a synced table, a restart keeps following them (through an ALTER
/// too), and `verify` compares them like the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_created_while_the_task_is_stopped_are_added_and_their_alters_followed() {
    let db = "core_ddl_create";
    let mut conn = connect().await;
    fresh_db(
        &mut conn,
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t VALUES (1, 'a');",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    local_task(db, 7205, dir.path(), "")
        .run(&caught_up())
        .await
        .expect("full sync");
    conn.query_drop(format!(
        "USE {db};
         CREATE TABLE fresh (
           id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
           code CHAR(3) NOT NULL,
           name VARCHAR(40) CHARACTER SET utf8mb4,
           price DECIMAL(10,2) NOT NULL DEFAULT 0,
           made DATETIME(3),
           kind ENUM('a','b'),
           PRIMARY KEY (id), UNIQUE KEY by_code (code)
         ) DEFAULT CHARSET=latin1;
         INSERT INTO fresh (code, name, price, made, kind) VALUES
           ('çé1', 'naïve €', 1.50, '2026-01-02 03:04:05.678', 'b'),
           ('abc', NULL, 2, NULL, 'a'), ('zzz', 'gone', 3, NULL, NULL);
         UPDATE fresh SET price = 9.99, code = 'ñño' WHERE code = 'abc';
         DELETE FROM fresh WHERE code = 'zzz';
         CREATE TABLE twin LIKE t;
         INSERT INTO twin VALUES (1, 'x'), (2, 'y');
         UPDATE twin SET v = 'yy' WHERE id = 2;"
    ))
    .await
    .expect("creates and changes");
    let runner = local_task(db, 7205, dir.path(), "");
    let state = runner.run(&caught_up()).await.expect("incremental");
    assert_eq!(
        incremental(&state).schemas,
        Some(3),
        "one generation per table going live: {:?}",
        incremental(&state).added
    );
    let reports = assert_verified(&runner).await;
    let verified: BTreeSet<&str> = reports.iter().map(|r| r.table.as_str()).collect();
    assert!(
        ["fresh", "twin", "t"]
            .iter()
            .all(|t| verified.iter().any(|v| v.ends_with(t))),
        "{verified:?}"
    );
    let tables = runner.tables().await.expect("tables");
    let fresh = tables
        .iter()
        .find(|t| t.source_name == format!("{db}.fresh"))
        .expect("fresh is selected");
    let base = runner
        .sink()
        .read_table(&fresh.base_table(), &fresh.base_schema)
        .await
        .expect("fresh_base");
    // Created while the task was stopped, so added at the next run: its
    // baseline holds its rows, its CREATE in the binlog is passed over.
    assert_eq!(base.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    let merged = runner
        .merged(&format!("{db}.fresh"), None)
        .await
        .expect("merge fresh");
    assert_eq!(
        by_id(&[merged], &["code", "name", "price", "made", "kind"]),
        BTreeMap::from([
            (
                1,
                vec![
                    v("çé1"),
                    v("naïve €"),
                    v("1.50"),
                    v("2026-01-02T03:04:05.678"),
                    v("b")
                ]
            ),
            (2, vec![v("ñño"), None, v("9.99"), None, v("a")]),
        ])
    );
    let merged = runner
        .merged(&format!("{db}.twin"), None)
        .await
        .expect("merge twin");
    assert_eq!(
        by_id(&[merged], &["v"]),
        BTreeMap::from([(1, vec![v("x")]), (2, vec![v("yy")])])
    );

    // After a restart the saved generation keeps both tables; an ALTER of
    // a created table is followed like any other.
    conn.query_drop(format!(
        "USE {db};
         ALTER TABLE fresh ADD COLUMN note TEXT;
         INSERT INTO fresh (code, note) VALUES ('new', 'après');
         UPDATE twin SET v = 'xx' WHERE id = 1;"
    ))
    .await
    .expect("more");
    let runner = local_task(db, 7205, dir.path(), "");
    runner.run(&caught_up()).await.expect("restart");
    assert_verified(&runner).await;
    let merged = runner
        .merged(&format!("{db}.fresh"), None)
        .await
        .expect("merge fresh again");
    assert_eq!(
        by_id(&[merged], &["code", "note"]).get(&4),
        Some(&vec![v("new"), v("après")])
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// A row of `SHOW BINLOG EVENTS`: file, position, type, server id, end
/// position, info.
type BinlogEvent = (String, u64, String, u32, u64, String);

/// The event `pick` chooses among a binlog file's events (its index),
/// searching the server's binlogs newest first: other tests of this binary
/// write to the same server and may rotate its binlog between a test's
/// change and this look-up. Returns the file, its events and the index.
async fn find_event(
    conn: &mut mysql_async::Conn,
    what: &str,
    pick: impl Fn(&[BinlogEvent]) -> Option<usize>,
) -> (String, Vec<BinlogEvent>, usize) {
    let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await.expect("logs");
    for row in logs.iter().rev() {
        let file: String = row.get(0).expect("file");
        let events: Vec<BinlogEvent> = conn
            .query(format!("SHOW BINLOG EVENTS IN '{file}'"))
            .await
            .expect("events");
        if let Some(i) = pick(&events) {
            return (file, events, i);
        }
    }
    panic!("no {what} in the binlogs")
}

/// `(file, position of the last event whose text contains `needle`,
/// position of the event before it)` in the server's binlogs.
async fn event_position(conn: &mut mysql_async::Conn, needle: &str) -> (String, u64, u64) {
    let (file, events, i) = find_event(conn, needle, |events| {
        events.iter().rposition(|e| e.5.contains(needle))
    })
    .await;
    (file, events[i].1, events[i - 1].1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_column_under_stop_names_the_statement_and_position_then_ignore_goes_on() {
    let db = "core_ddl_stop";
    let mut conn = connect().await;
    fresh_db(
        &mut conn,
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10), w INT); INSERT INTO t VALUES (1, 'a', 1);",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = local_task(db, 7203, dir.path(), "");
    runner.run(&caught_up()).await.expect("full sync");
    conn.query_drop(format!(
        "USE {db};
         INSERT INTO t VALUES (2, 'b', 2);
         ALTER TABLE t DROP COLUMN v /* no longer needed */;
         INSERT INTO t VALUES (3, 3);"
    ))
    .await
    .expect("changes");
    let (file, at, gtid_at) = event_position(
        &mut conn,
        &format!("use `{db}`; ALTER TABLE t DROP COLUMN v"),
    )
    .await;

    for attempt in 0..2 {
        let err = runner
            .run(&caught_up())
            .await
            .expect_err("stops at the DDL");
        let Error::Ddl {
            file: f,
            position,
            statement,
            message,
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!((f, *position), (&file, at), "attempt {attempt}: {err}");
        assert!(
            statement.contains("ALTER TABLE t DROP COLUMN v"),
            "{statement}"
        );
        assert!(
            message.contains("drop column `v` of core_ddl_stop.t")
                && message.contains("`sync.ddl.other` is \"stop\""),
            "{message}"
        );
        let text = err.to_string();
        assert!(text.contains(&format!("{file}:{at}")), "{text}");
        // Everything before the statement landed; the checkpoint is at its transaction.
        let state = runner.state().expect("state").expect("saved");
        let inc = incremental(&state);
        assert_eq!(
            (inc.position.file.as_str(), inc.position.position),
            (file.as_str(), gtid_at)
        );
        let log = runner.sink().read_table_blocking("t_log").expect("t_log");
        assert_eq!(by_id(&log, &["v"]), BTreeMap::from([(2, vec![v("b")])]));
    }

    // With the policy relaxed the task goes on: the destination keeps `v`,
    // later rows hold NULL there, and the rest decodes right.
    let runner = local_task(db, 7203, dir.path(), "ddl = { drop_column = \"ignore\" }");
    runner.run(&caught_up()).await.expect("goes on");
    assert_verified(&runner).await;
    let log = runner.sink().read_table_blocking("t_log").expect("t_log");
    assert_eq!(
        by_id(&log, &["v", "w"]),
        BTreeMap::from([(2, vec![v("b"), v("2")]), (3, vec![None, v("3")])])
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_change_outside_the_binlog_stops_the_task_at_the_next_row() {
    let db = "core_ddl_drift";
    let mut conn = connect().await;
    fresh_db(
        &mut conn,
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t VALUES (1, 'a');",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = local_task(db, 7204, dir.path(), "");
    runner.run(&caught_up()).await.expect("full sync");
    conn.query_drop(format!(
        "USE {db};
         SET SESSION sql_log_bin = 0;
         ALTER TABLE t ADD COLUMN hidden INT AFTER id;
         SET SESSION sql_log_bin = 1;
         INSERT INTO t VALUES (2, 20, 'b');"
    ))
    .await
    .expect("changes");
    let err = runner.run(&caught_up()).await.expect_err("mismatch");
    let Error::SchemaDrift { message, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        message.contains("rows of core_ddl_drift.t")
            && message.contains("3 columns (id, hidden, v)")
            && message.contains("has 2 (id, v)"),
        "{message}"
    );
    assert!(
        runner
            .sink()
            .read_table_blocking("t_log")
            .expect("t_log")
            .iter()
            .all(|b| b.num_rows() == 0),
        "nothing was mis-mapped into t_log"
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// `(file, position)` of the last event of `event_type` (a prefix, e.g.
/// `Update_rows`) on `table` (`db.t`) in the server's binlogs, and of the
/// GTID event that starts its transaction. (Other tests write rows events
/// of their own tables at the same time.)
async fn typed_event_position(
    conn: &mut mysql_async::Conn,
    event_type: &str,
    table: &str,
) -> (String, u64, u64) {
    let mapped = format!("({table})");
    let (file, events, i) = find_event(conn, event_type, |events| {
        (0..events.len()).rev().find(|&i| {
            events[i].2.starts_with(event_type)
                && events[..i]
                    .iter()
                    .rfind(|e| e.2 == "Table_map")
                    .is_some_and(|m| m.5.ends_with(&mapped))
        })
    })
    .await;
    let gtid = events[..i]
        .iter()
        .rposition(|e| e.2 == "Gtid")
        .expect("its GTID event");
    (file, events[i].1, events[gtid].1)
}

/// A synced table `t` with row 1, synced through the full phase; then row
/// 2 in ROW format, row 3 by a session in STATEMENT format, row 4 in ROW
/// format again. Returns the runner's directory, the connection, and the
/// binlog file, the position of the statement-logged INSERT and that of
/// its transaction's GTID event.
async fn statement_logged_write(
    db: &str,
    server_id: u32,
    extra: &str,
) -> (
    tempfile::TempDir,
    TaskRunner<LocalWarehouse>,
    mysql_async::Conn,
    String,
    u64,
    u64,
) {
    let mut conn = connect().await;
    fresh_db(
        &mut conn,
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t VALUES (1, 'a');",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = local_task(db, server_id, dir.path(), extra);
    runner.run(&caught_up()).await.expect("full sync");
    conn.query_drop(format!(
        "USE {db};
         INSERT INTO t VALUES (2, 'b');
         SET SESSION binlog_format = 'STATEMENT';
         /* app */ INSERT INTO t VALUES (3, 'stmt');
         SET SESSION binlog_format = 'ROW';
         INSERT INTO t VALUES (4, 'd');"
    ))
    .await
    .expect("changes");
    let (file, at, gtid_at) = event_position(
        &mut conn,
        &format!("use `{db}`; /* app */ INSERT INTO t VALUES (3, 'stmt')"),
    )
    .await;
    (dir, runner, conn, file, at, gtid_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_logged_write_stops_the_task_at_it_on_every_run_until_skipped() {
    let db = "core_stmt_stop";
    let (dir, runner, mut conn, file, at, gtid_at) = statement_logged_write(db, 7206, "").await;
    for attempt in 0..2 {
        let err = runner
            .run(&caught_up())
            .await
            .expect_err("stops at the statement");
        assert!(
            sync_core::retry::classify(&err).is_none(),
            "definite: {err}"
        );
        let Error::StatementLogged {
            file: f,
            position,
            tables,
            kind,
            statement,
        } = &err
        else {
            panic!("attempt {attempt}: {err}")
        };
        assert_eq!((f, *position), (&file, at), "attempt {attempt}: {err}");
        assert_eq!((tables.as_str(), *kind), ("core_stmt_stop.t", "INSERT"));
        assert_eq!(statement, "/* app */ INSERT INTO t VALUES (3, 'stmt')");
        let text = err.to_string();
        assert!(
            text.contains(&format!("{file}:{at}"))
                && text.contains("binlog_format = STATEMENT or MIXED")
                && text.contains("SET GLOBAL binlog_format = 'ROW'")
                && text.contains("unsupported_events = \"skip\""),
            "{text}"
        );
        // The checkpoint stays at the statement's transaction; the ROW
        // write before it landed, the one after it did not.
        let state = runner.state().expect("state").expect("saved");
        let inc = incremental(&state);
        assert_eq!(
            (inc.position.file.as_str(), inc.position.position),
            (file.as_str(), gtid_at),
            "attempt {attempt}"
        );
        let log = runner.sink().read_table_blocking("t_log").expect("t_log");
        assert_eq!(
            by_id(&log, &["v"]),
            BTreeMap::from([(2, vec![v("b")])]),
            "attempt {attempt}"
        );
    }

    // Skipped knowingly, the task goes on past it and counts it.
    let runner = local_task(db, 7206, dir.path(), "unsupported_events = \"skip\"");
    runner.run(&caught_up()).await.expect("skips and goes on");
    assert_eq!(runner.metrics().snapshot().unsupported_events_skipped, 1);
    let log = runner.sink().read_table_blocking("t_log").expect("t_log");
    assert_eq!(
        by_id(&log, &["v"]),
        BTreeMap::from([(2, vec![v("b")]), (4, vec![v("d")])])
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_logged_writes_of_every_kind_under_skip_are_skipped_and_counted() {
    let db = "core_stmt_skip";
    let (dir, runner, mut conn, _, _, _) =
        statement_logged_write(db, 7207, "unsupported_events = \"skip\"").await;
    // A file the server reads for LOAD DATA (logged as EXECUTE_LOAD_QUERY).
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "5,load\n6,load\n").expect("csv");
    conn.query_drop(format!(
        "USE {db};
         CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC MODIFIES SQL DATA
         BEGIN INSERT INTO t VALUES (x, 'func'); RETURN x; END"
    ))
    .await
    .expect("function");
    conn.query_drop(format!(
        "USE {db};
         SET SESSION binlog_format = 'STATEMENT';
         LOAD DATA INFILE '{}' INTO TABLE t FIELDS TERMINATED BY ',';
         SELECT f(7);
         SET STATEMENT max_statement_time = 100 FOR DELETE FROM t WHERE id = 2;
         CREATE TABLE fresh (id INT PRIMARY KEY, v VARCHAR(10)) SELECT id, v FROM t WHERE id = 1;
         SET SESSION binlog_format = 'MIXED';
         UPDATE t SET v = 'mixed' WHERE id = 1;
         SET SESSION binlog_format = 'ROW';
         INSERT INTO t VALUES (8, 'h');
         INSERT INTO fresh VALUES (9, 'i');",
        csv.display()
    ))
    .await
    .expect("changes");
    runner.run(&caught_up()).await.expect("skips and goes on");
    // INSERT, LOAD DATA, the function call, DELETE, UPDATE. (`fresh`, which
    // CREATE … SELECT makes, exists when the run starts: the task adds it
    // with a baseline read at its start, so that statement loses nothing.)
    assert_eq!(runner.metrics().snapshot().unsupported_events_skipped, 5);
    assert!(
        runner
            .metrics()
            .render()
            .contains("\nsync_unsupported_events_skipped_total 5\n")
    );
    let progress = sync_core::status::read(&dir.path().join("state")).expect("progress.json");
    assert_eq!(progress.metrics.unsupported_events_skipped, 5);
    let lines = sync_core::status::describe(&progress, "incremental", 0.0, None);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("5 event(s) changing a synced table skipped")),
        "{lines:?}"
    );
    let log = runner.sink().read_table_blocking("t_log").expect("t_log");
    assert_eq!(
        by_id(&log, &["v"]),
        BTreeMap::from([(2, vec![v("b")]), (4, vec![v("d")]), (8, vec![v("h")])])
    );
    // The table CREATE … SELECT made exists when the run starts, so the
    // task adds it: its baseline, read at its start position, holds the
    // rows its SELECT put in as well as the later insert.
    let merged = runner
        .merged(&format!("{db}.fresh"), None)
        .await
        .expect("merge fresh");
    let fresh = by_id(&[merged], &["v"]);
    assert_eq!(fresh.keys().copied().collect::<Vec<_>>(), vec![1, 9]);
    assert_eq!(fresh[&9], vec![v("i")]);
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_image_that_is_not_full_stops_the_task_and_nothing_of_it_lands() {
    let db = "core_minimal_image";
    let mut conn = connect().await;
    fresh_db(
        &mut conn,
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL, n INT NOT NULL);
         INSERT INTO t VALUES (1, 'a', 1);",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = local_task(db, 7209, dir.path(), "");
    runner.run(&caught_up()).await.expect("full sync");
    conn.query_drop(format!(
        "USE {db};
         INSERT INTO t VALUES (2, 'b', 2);
         SET SESSION binlog_row_image = 'MINIMAL';
         BEGIN;
         INSERT INTO t VALUES (5, 'e', 5);
         UPDATE t SET n = 10 WHERE id = 1;
         COMMIT;
         SET SESSION binlog_row_image = 'FULL';
         INSERT INTO t VALUES (6, 'f', 6);"
    ))
    .await
    .expect("changes");
    let (file, at, gtid_at) =
        typed_event_position(&mut conn, "Update_rows", &format!("{db}.t")).await;
    for attempt in 0..2 {
        // Before: "Column 'id' is declared as non-nullable but contains
        // null values", or NULLs landing in nullable columns.
        let err = runner
            .run(&caught_up())
            .await
            .expect_err("stops at the update");
        assert!(
            sync_core::retry::classify(&err).is_none(),
            "definite: {err}"
        );
        let Error::RowImageNotFull(gap) = &err else {
            panic!("attempt {attempt}: {err}")
        };
        let sync_core::error::RowImageNotFull {
            file: f,
            position,
            table,
            kind,
            image,
            missing,
            setting,
        } = gap.as_ref();
        assert_eq!((f, *position), (&file, at), "attempt {attempt}: {err}");
        assert_eq!(
            (table.as_str(), *kind, *image, missing.as_str(), *setting),
            (
                "core_minimal_image.t",
                "UPDATE",
                "before",
                "v, n",
                "MINIMAL"
            )
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("{file}:{at}"))
                && text.contains("binlog_row_image = MINIMAL")
                && text.contains("SET GLOBAL binlog_row_image = 'FULL'"),
            "{text}"
        );
        // Nothing of its transaction landed (not even the whole INSERT of
        // row 5 before it): the checkpoint stays before that transaction
        // (row 2's, read in the same batch, may land or be read again).
        let state = runner.state().expect("state").expect("saved");
        let inc = incremental(&state);
        assert!(
            inc.position.file == file && inc.position.position <= gtid_at,
            "attempt {attempt}: {inc:?}"
        );
        let log = runner.sink().read_table_blocking("t_log").expect("t_log");
        let landed = by_id(&log, &["v", "n"]);
        assert!(
            landed.is_empty() || landed == BTreeMap::from([(2, vec![v("b"), v("2")])]),
            "attempt {attempt}: {landed:?}"
        );
    }

    // Skipped knowingly: the rest of the transaction and what follows land.
    let runner = local_task(db, 7209, dir.path(), "unsupported_events = \"skip\"");
    runner.run(&caught_up()).await.expect("skips and goes on");
    assert_eq!(runner.metrics().snapshot().unsupported_events_skipped, 1);
    let log = runner.sink().read_table_blocking("t_log").expect("t_log");
    assert_eq!(
        by_id(&log, &["v", "n"]),
        BTreeMap::from([
            (2, vec![v("b"), v("2")]),
            (5, vec![v("e"), v("5")]),
            (6, vec![v("f"), v("6")]),
        ])
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_logged_writes_to_tables_not_selected_pass() {
    let db = "core_stmt_pass";
    let other = "core_stmt_unselected";
    let mut conn = connect().await;
    fresh_db(
        &mut conn,
        other,
        "CREATE TABLE u (id INT PRIMARY KEY, n INT);",
    )
    .await;
    fresh_db(
        &mut conn,
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t VALUES (1, 'a');",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = local_task(db, 7208, dir.path(), "");
    runner.run(&caught_up()).await.expect("full sync");
    conn.query_drop(format!(
        "SET SESSION binlog_format = 'STATEMENT';
         USE {other};
         INSERT INTO u VALUES (1, 1);
         UPDATE u SET n = 2 WHERE id = 1;
         USE {db};
         INSERT INTO {other}.u VALUES (2, 2);
         DELETE FROM `{other}`.`u` WHERE id = 1;
         SET SESSION binlog_format = 'ROW';
         INSERT INTO t VALUES (2, 'b');"
    ))
    .await
    .expect("changes");
    runner.run(&caught_up()).await.expect("passes");
    assert_eq!(runner.metrics().snapshot().unsupported_events_skipped, 0);
    let log = runner.sink().read_table_blocking("t_log").expect("t_log");
    assert_eq!(by_id(&log, &["v"]), BTreeMap::from([(2, vec![v("b")])]));
    for d in [db, other] {
        conn.query_drop(format!("DROP DATABASE {d}"))
            .await
            .expect("drop");
    }
}

/// pyodps reads a table's columns and every row (all partitions) as text.
const PYODPS_READ: &str = r#"
import json, sys
from odps import ODPS
from odps.tunnel import TableTunnel

endpoint, tunnel_endpoint, project, id_, key, table = sys.argv[1:7]
partitions = json.loads(sys.argv[7])
o = ODPS(id_, key, project=project, endpoint=endpoint)
tunnel = TableTunnel(o, endpoint=tunnel_endpoint)
t = o.get_table(table)
schema = t.table_schema if hasattr(t, "table_schema") else t.schema
rows = []
for p in partitions or [None]:
    kw = {"partition_spec": p} if p else {}
    down = tunnel.create_download_session(table, **kw)
    names = [c.name for c in down.schema.simple_columns]
    if down.count:
        with down.open_record_reader(0, down.count) as reader:
            for rec in reader:
                rows.append({n: (None if v is None else str(v)) for n, v in zip(names, rec.values)})
print(json.dumps({"columns": [c.name for c in schema.simple_columns], "rows": rows}))
"#;

fn pyodps_read(
    python: &Path,
    emu: &Emulator,
    project: &str,
    table: &str,
    partitions: &[String],
) -> serde_json::Value {
    let out = Command::new(python)
        .args(["-c", PYODPS_READ, &emu.endpoint, &emu.tunnel, project])
        .args([ACCESS_ID, ACCESS_KEY, table])
        .arg(serde_json::json!(partitions).to_string())
        .env("TZ", "UTC")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "pyodps failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json from python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_column_lands_in_maxcompute_and_pyodps_reads_it() {
    let Some(python) = pyodps_python() else {
        panic!(
            "this test needs a Python with pyodps and pyarrow: run `scripts/pyodps-tests` \
             (it creates .venv) or set ODPS_TEST_PYTHON"
        );
    };
    let db = "core_ddl_mc";
    let project = "ddl_mc";
    let mut conn = connect().await;
    fresh_db(&mut conn, db, ITEMS).await;
    let emu = Emulator::start(&[]).expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = task_file(
        db,
        7210,
        dir.path(),
        &format!(
            "kind = \"maxcompute\"\nendpoint = \"{}\"\nproject = \"{project}\"",
            emu.endpoint
        ),
        "",
    );
    let cfg = sync_core::taskfile::parse(&text, "task.toml").expect("task file");
    let client = odps_tunnel::Client::new(
        &emu.endpoint,
        project,
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .expect("client");
    let sink = MaxComputeSink::new(client.clone(), dir.path().join("state/maxcompute-units"));
    let runner = TaskRunner::new(cfg, sink).expect("runner");
    runner.run(&caught_up()).await.expect("full sync");
    conn.query_drop(format!("USE {db}; {CHANGES}"))
        .await
        .expect("changes");
    runner.run(&caught_up()).await.expect("catch up");
    assert_verified(&runner).await;
    let merged = runner
        .merged(&format!("{db}.items"), None)
        .await
        .expect("merge");
    assert_eq!(by_id(&[merged], &ADDED), expected_items());

    // The official SDK sees the columns appended, old rows NULL in them.
    let base = pyodps_read(&python, &emu, project, "items_base", &[]);
    assert_eq!(
        base["columns"],
        serde_json::json!(["id", "name", "qty", "a", "b", "c", "d", "f", "g"])
    );
    let base_rows = base["rows"].as_array().expect("rows");
    assert_eq!(base_rows.len(), 5);
    assert!(
        base_rows
            .iter()
            .all(|r| r["b"].is_null() && r["g"].is_null())
    );
    let partitions: Vec<String> = client
        .partitions("items_log")
        .await
        .expect("partitions")
        .iter()
        .map(ToString::to_string)
        .collect();
    let log = pyodps_read(&python, &emu, project, "items_log", &partitions);
    let log_rows = log["rows"].as_array().expect("rows");
    assert_eq!(log_rows.len(), 11, "records of the changes");
    let insert = |id: &str| {
        log_rows
            .iter()
            .find(|r| r["id"] == id && r["new_dts_sync_operation_flag"] == "I")
            .unwrap_or_else(|| panic!("insert of {id}"))
    };
    assert!(insert("6")["b"].is_null(), "written before the ALTER");
    assert_eq!(insert("8")["b"], "x", "the default, from the binlog image");
    assert_eq!(
        (&insert("9")["d"], &insert("9")["g"]),
        (&serde_json::json!("9.25"), &serde_json::json!("99"))
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// A task over the tables `include` lists, throttled to `full_qps` chunk
/// queries a second, 100 rows a chunk.
fn task_over(db: &str, dir: &Path, include: &[&str], server_id: u32) -> TaskRunner<LocalWarehouse> {
    let wh = dir.join("warehouse");
    let include: Vec<String> = include.iter().map(|t| format!("\"{db}.{t}\"")).collect();
    let text = format!(
        "[source]\nurl = \"{url}\"\nserver_id = {server_id}\n\
         [destination]\nkind = \"local\"\npath = \"{wh}\"\n\
         [objects]\ninclude = [{include}]\n\
         [sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\nstate_dir = \"{state}\"\n\
         log_partitions = [\"year\"]\nchunk_rows = 100\nbatch_rows = 50\nparallelism = 2\n\
         [throttle]\nfull_qps = 8\n",
        url = sync_testkit::mysql_url(),
        wh = wh.display(),
        include = include.join(", "),
        state = dir.join("state").display(),
    );
    let cfg = sync_core::taskfile::parse(&text, "task.toml").expect("task file");
    TaskRunner::new(cfg, LocalWarehouse::new(wh)).expect("runner")
}

/// Writes into `a`, `n` (keyed) and `k` (no key) of `db` until `stop`:
/// inserts, updates and deletes, a few per transaction; returns how many
/// transactions it committed.
async fn write_until(db: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> u64 {
    let mut conn = connect().await;
    conn.query_drop(format!("USE {db}")).await.expect("use");
    let mut rng = sync_testkit::rng::Rng::new(15);
    let mut done = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && done < 5000 {
        let id = rng.range(1, 3200);
        let a = rng.range(1, 60);
        let v = rng.range(0, 9);
        let sql = match rng.range(0, 5) {
            0 => format!(
                "BEGIN; UPDATE n SET v = v + 1, s = 'u{done}' WHERE id = {id}; \
                 UPDATE a SET v = v + 1 WHERE id = {a}; COMMIT"
            ),
            1 => format!("BEGIN; DELETE FROM n WHERE id = {id}; COMMIT"),
            2 => format!(
                "BEGIN; INSERT INTO n VALUES ({}, {v}, 'new') ON DUPLICATE KEY UPDATE v = -1; \
                 INSERT IGNORE INTO a VALUES ({}, {v}); COMMIT",
                3000 + done,
                100 + done
            ),
            3 => format!("BEGIN; INSERT INTO k VALUES ({v}, 'k'), ({v}, 'k'); COMMIT"),
            4 => format!("BEGIN; UPDATE k SET s = 'w' WHERE v = {v} LIMIT 1; COMMIT"),
            _ => format!("BEGIN; DELETE FROM k WHERE v = {v} LIMIT 1; COMMIT"),
        };
        conn.query_drop(sql).await.expect("write");
        done += 1;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    done
}

/// Every record of a `t_log` as `(record_id, before_flag)` (an update's
/// two images share an id), asserting none is there twice.
fn log_records(r: &TaskRunner<LocalWarehouse>, log: &str) -> BTreeSet<(i64, String)> {
    let mut seen = BTreeSet::new();
    for b in r.sink().read_table_blocking(log).expect("t_log") {
        let ids = b
            .column_by_name("new_dts_sync_record_id")
            .expect("record id")
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .expect("int64")
            .clone();
        let flags = arrow_cast::cast(
            b.column_by_name("new_dts_sync_before_flag")
                .expect("before flag"),
            &arrow_schema::DataType::Utf8,
        )
        .expect("text");
        let flags = flags
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("utf8");
        for (i, id) in ids.values().iter().enumerate() {
            let record = (*id, flags.value(i).to_owned());
            assert!(seen.insert(record.clone()), "{log}: {record:?} twice");
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_added_to_include_get_baseline_and_changes_under_a_writer_and_a_stop_mid_backfill() {
    let db = "core_add_table";
    let mut conn = connect().await;
    fresh_db(
        &mut conn,
        db,
        "CREATE TABLE a (id INT PRIMARY KEY, v INT);
         CREATE TABLE n (id INT PRIMARY KEY, v INT, s VARCHAR(20));
         CREATE TABLE k (v INT, s VARCHAR(10));",
    )
    .await;
    conn.query_drop(format!(
        "USE {db};
         INSERT INTO a SELECT seq, seq FROM seq_1_to_60;
         INSERT INTO n SELECT seq, seq % 7, CONCAT('r', seq) FROM seq_1_to_3000;
         INSERT INTO k SELECT seq % 10, 'k' FROM seq_1_to_400;"
    ))
    .await
    .expect("rows");
    let dir = tempfile::tempdir().expect("tempdir");
    let first = task_over(db, dir.path(), &["a"], 7231);
    first.run(&caught_up()).await.expect("a alone");
    assert!(
        incremental(&first.state().expect("state").expect("saved"))
            .added
            .is_empty()
    );

    // A writer into the synced table and both new ones, all along.
    let stop_writer = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn(write_until(db.to_owned(), stop_writer.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // n and k join the task; the run is stopped once n's baseline is part way.
    let runner = std::sync::Arc::new(task_over(db, dir.path(), &["a", "n", "k"], 7231));
    let opts = RunOptions::default();
    let stop = opts.stop.clone();
    let watch = runner.clone();
    let watcher = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let Ok(Some(state)) = watch.state() else {
                continue;
            };
            if let Phase::Incremental(inc) = &state.phase
                && let Some(n) = inc.added.get("core_add_table.n")
                && n.baseline.chunks_done >= 3
            {
                let k = &inc.added["core_add_table.k"];
                assert!(k.baseline.done, "k's snapshot lands before anything else");
                assert!(!n.baseline.done, "n stopped mid-backfill: {n:?}");
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                return state;
            }
        }
    });
    let mid = runner.run(&opts).await.expect("run stopped mid-backfill");
    let seen = watcher.await.expect("watcher");
    let inc = incremental(&mid);
    let n = &inc.added["core_add_table.n"];
    assert!(!n.keyless && !n.baseline.done, "{n:?}");
    assert!(inc.added["core_add_table.k"].keyless);
    assert!(
        n.baseline.chunks_done
            >= incremental(&seen).added["core_add_table.n"]
                .baseline
                .chunks_done
    );
    let partial = runner.partial_tables().expect("partial");
    assert!(
        partial["core_add_table.n"].contains("being backfilled"),
        "{partial:?}"
    );

    // The next run resumes the baseline where it stopped, the writer going on.
    task_over(db, dir.path(), &["a", "n", "k"], 7231)
        .run(&caught_up())
        .await
        .expect("resume");
    stop_writer.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.expect("writer");
    assert!(writes > 50, "the writer wrote {writes} transactions");
    let runner = task_over(db, dir.path(), &["a", "n", "k"], 7231);
    let state = runner.run(&caught_up()).await.expect("caught up");
    let inc = incremental(&state);
    for t in ["n", "k"] {
        let added = &inc.added[&format!("{db}.{t}")];
        assert!(added.complete(), "{t}: {added:?}");
        assert!(added.start_record_id.is_some());
    }
    assert!(runner.partial_tables().expect("partial").is_empty());
    let reports = assert_verified(&runner).await;
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(reports.iter().any(|r| r.keyless && r.table.ends_with(".k")));
    // No record twice, within a table or across them (one id counter).
    let mut all = BTreeSet::new();
    for log in ["a_log", "n_log", "k_log"] {
        let records = log_records(&runner, log);
        assert!(!records.is_empty(), "{log} is empty");
        assert!(all.is_disjoint(&records), "{log} shares record ids");
        all.extend(records);
    }
    // n's baseline holds each key once: chunks redone after the stop replaced their first attempt.
    let n_base = runner.sink().read_table_blocking("n_base").expect("n_base");
    let mut keys = BTreeMap::<i64, usize>::new();
    for row in by_id(&n_base, &[]).keys() {
        *keys.entry(*row).or_default() += 1;
    }
    let rows: usize = n_base.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, keys.len(), "a key twice in n_base");

    // a leaves the task: its changes stop, its destination tables stay.
    let before = runner
        .merged(&format!("{db}.a"), None)
        .await
        .expect("a merged");
    conn.query_drop(format!(
        "USE {db}; UPDATE a SET v = -5 WHERE id = 1; INSERT INTO n VALUES (9001, 1, 'after')"
    ))
    .await
    .expect("after removal");
    let runner = task_over(db, dir.path(), &["n", "k"], 7231);
    let state = runner.run(&caught_up()).await.expect("without a");
    let removed = &incremental(&state).removed[&format!("{db}.a")];
    assert_eq!(removed.dest, "a");
    assert!(runner.sink().table_exists("a_base").await.expect("exists"));
    assert_verified(&runner).await;
    let with_a = task_over(db, dir.path(), &["a", "n", "k"], 7231);
    let after = with_a
        .merged(&format!("{db}.a"), None)
        .await
        .expect("a merged after");
    assert_eq!(
        by_id(&[after], &["v"]),
        by_id(&[before], &["v"]),
        "a's destination is as it was when it left the task"
    );
    // Adding a back while its old destination tables exist is refused, with the fix.
    let err = with_a.run(&caught_up()).await.expect_err("a back");
    assert!(matches!(err, Error::TableSet { .. }), "{err}");
    assert!(err.to_string().contains("conflicting_tables"), "{err}");
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resnapshot_publishes_a_new_baseline_generation_that_repairs_lost_changes() {
    let db = "core_resnapshot";
    let mut conn = connect().await;
    fresh_db(&mut conn, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT);").await;
    conn.query_drop(format!(
        "USE {db}; INSERT INTO t SELECT seq, seq FROM seq_1_to_2000"
    ))
    .await
    .expect("rows");
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = task_over(db, dir.path(), &["t"], 7232);
    runner.run(&caught_up()).await.expect("first");
    // Changes the binlog never sees: the destination keeps the old rows.
    conn.query_drop(format!(
        "USE {db}; SET SESSION sql_log_bin = 0; DELETE FROM t WHERE id <= 5;
         UPDATE t SET v = -1 WHERE id = 10; SET SESSION sql_log_bin = 1;
         UPDATE t SET v = 7 WHERE id = 20; INSERT INTO t VALUES (5000, 1)"
    ))
    .await
    .expect("lost changes");
    runner.run(&caught_up()).await.expect("second");
    let report = &runner.verify().await.expect("verify")[0];
    assert_eq!(report.counts, (0, 5, 1), "{report:?}");

    // A change after the checkpoint, then a new baseline while the task is stopped.
    conn.query_drop(format!("USE {db}; UPDATE t SET v = 9 WHERE id = 50"))
        .await
        .expect("after the checkpoint");
    // Not while a run holds the task.
    let held = runner.lock("run").expect("lock");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let err = runner
        .resnapshot(&format!("{db}.t"), &stop)
        .await
        .expect_err("locked");
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    drop(held);
    // Stopped after its first chunk, then resumed: each chunk once.
    let runner = std::sync::Arc::new(runner);
    let watch = runner.clone();
    let flag = stop.clone();
    let watcher = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            if let Ok(Some(state)) = watch.state()
                && incremental(&state)
                    .resnapshots
                    .values()
                    .any(|r| r.baseline.chunks_done >= 1)
            {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        }
    });
    let first = runner
        .resnapshot(&format!("{db}.t"), &stop)
        .await
        .expect("resnapshot");
    watcher.await.expect("watcher");
    assert_eq!(first, ResnapshotOutcome::Stopped);
    let state = runner.state().expect("state").expect("saved");
    let part = &incremental(&state).resnapshots[&format!("{db}.t")];
    assert!(
        !part.baseline.done && part.baseline.chunks_done >= 1,
        "{part:?}"
    );
    stop.store(false, std::sync::atomic::Ordering::Relaxed);
    let ResnapshotOutcome::Published(g) = runner
        .resnapshot(&format!("{db}.t"), &stop)
        .await
        .expect("resnapshot")
    else {
        panic!("not published")
    };
    let base = runner
        .sink()
        .read_table_blocking("t_base_g2")
        .expect("t_base_g2");
    let rows: usize = base.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, by_id(&base, &[]).len(), "a key twice in t_base_g2");
    assert_eq!((g.generation, g.table.as_str()), (2, "t_base_g2"));
    assert_eq!(
        runner.base_generation(&format!("{db}.t")).expect("gen"),
        Some(g.clone())
    );
    conn.query_drop(format!(
        "USE {db}; DELETE FROM t WHERE id = 30; UPDATE t SET v = 8 WHERE id = 40"
    ))
    .await
    .expect("later changes");
    runner.run(&caught_up()).await.expect("third");
    assert_verified(&runner).await;
    let mut records = log_records(&runner, "t_log");
    records.retain(|(id, _)| *id >= g.log_from);
    assert_eq!(
        records.len(),
        5,
        "the updates of 50 and 40 (two images each) and the delete of 30: {records:?}"
    );
    let t = &runner.tables().await.expect("tables")[0];
    let sql = sync_core::merge::merge_sql_generation(
        &t.dest,
        Some(&g),
        &[],
        "t_now",
        &t.dest_columns(),
        &t.dest_key(),
        runner.meta(),
        2_000_000_000,
    )
    .expect("sql");
    assert!(
        sql.contains("FROM `t_base_g2`") && sql.contains(&format!(">= {}", g.log_from)),
        "{sql}"
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_rows_fill_the_default_or_ask_for_a_new_baseline() {
    let mut conn = connect().await;
    for (db, mode, server_id) in [
        ("core_rewritten_default", "default", 7235),
        ("core_rewritten_resnap", "resnapshot", 7236),
    ] {
        fresh_db(
            &mut conn,
            db,
            "CREATE TABLE d (id INT PRIMARY KEY, v INT); INSERT INTO d VALUES (1, 1), (2, 2), (3, 3);",
        )
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let extra = format!("ddl = {{ rewritten_rows = \"{mode}\" }}");
        local_task(db, server_id, dir.path(), &extra)
            .run(&caught_up())
            .await
            .expect("full");
        conn.query_drop(format!(
            "USE {db};
             ALTER TABLE d ADD COLUMN c INT NOT NULL DEFAULT 5, ADD COLUMN s VARCHAR(5) DEFAULT 'x ''y';
             UPDATE d SET v = 9 WHERE id = 2;
             INSERT INTO d VALUES (4, 4, 7, 'z');"
        ))
        .await
        .expect("alter");
        let runner = local_task(db, server_id, dir.path(), &extra);
        runner.run(&caught_up()).await.expect("incremental");
        let report = &runner.verify().await.expect("verify")[0];
        assert!(report.is_equal(), "{report:?}");
        let merged = runner
            .merged(&format!("{db}.d"), None)
            .await
            .expect("merge");
        let rows = by_id(&[merged], &["v", "c", "s"]);
        if mode == "default" {
            // Rows 1 and 3 were filled by the ALTER: the merge fills them too.
            assert_eq!(report.added_null, 0, "{report:?}");
            assert_eq!(rows[&1], vec![v("1"), v("5"), v("x 'y")]);
            assert_eq!(rows[&2], vec![v("9"), v("5"), v("x 'y")]);
            assert_eq!(rows[&4], vec![v("4"), v("7"), v("z")]);
            let t = &runner.tables().await.expect("tables")[0];
            let defaults = runner.filled_defaults(&t.source_name).expect("defaults");
            let sql = sync_core::merge::merge_sql_generation(
                &t.dest,
                None,
                &defaults,
                "d_now",
                &t.dest_columns(),
                &t.dest_key(),
                runner.meta(),
                2_000_000_000,
            )
            .expect("sql");
            assert!(
                sql.contains("CASE WHEN `c` IS NULL AND")
                    && sql.contains("THEN 5 ELSE `c` END AS `c`"),
                "{sql}"
            );
        } else {
            // NULL until a new baseline, which `resnapshot` makes.
            assert_eq!(report.added_null, 2, "{report:?}");
            assert_eq!(rows[&1], vec![v("1"), None, None]);
            let done = runner
                .resnapshot(
                    &format!("{db}.d"),
                    &std::sync::atomic::AtomicBool::new(false),
                )
                .await
                .expect("resnapshot");
            assert!(matches!(done, ResnapshotOutcome::Published(_)), "{done:?}");
            let report = &runner.verify().await.expect("verify")[0];
            assert!(report.is_equal() && report.added_null == 0, "{report:?}");
        }
        conn.query_drop(format!("DROP DATABASE {db}"))
            .await
            .expect("drop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_table_is_resnapshotted_at_its_own_position_and_published_by_the_run() {
    let db = "core_resnapshot_keyless";
    let mut conn = connect().await;
    fresh_db(&mut conn, db, "CREATE TABLE k (v INT, s VARCHAR(10));").await;
    conn.query_drop(format!(
        "USE {db}; INSERT INTO k SELECT seq % 4, 'a' FROM seq_1_to_40"
    ))
    .await
    .expect("rows");
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = task_over(db, dir.path(), &["k"], 7237);
    runner.run(&caught_up()).await.expect("first");
    conn.query_drop(format!(
        "USE {db}; SET SESSION sql_log_bin = 0; DELETE FROM k WHERE v = 1 LIMIT 1;
         INSERT INTO k VALUES (9, 'ghost'); SET SESSION sql_log_bin = 1;
         UPDATE k SET s = 'b' WHERE v = 2 LIMIT 1"
    ))
    .await
    .expect("lost changes");
    runner.run(&caught_up()).await.expect("second");
    assert!(!runner.verify().await.expect("verify")[0].is_equal());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let outcome = runner
        .resnapshot(&format!("{db}.k"), &stop)
        .await
        .expect("resnapshot");
    let ResnapshotOutcome::Copied { generation, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(generation.table, "k_base_g2");
    assert_eq!(
        runner.base_generation(&format!("{db}.k")).expect("gen"),
        None
    );
    // Identical rows changed after the snapshot: the log applies on top of it.
    conn.query_drop(format!(
        "USE {db}; INSERT INTO k VALUES (3, 'a'), (3, 'a'); DELETE FROM k WHERE v = 0 LIMIT 2;
         UPDATE k SET s = 'c' WHERE v = 3 LIMIT 1"
    ))
    .await
    .expect("later changes");
    runner.run(&caught_up()).await.expect("publishes");
    let published = runner
        .base_generation(&format!("{db}.k"))
        .expect("gen")
        .expect("published by the run");
    assert_eq!(published.generation, 2);
    assert!(published.log_from > 0);
    let reports = assert_verified(&runner).await;
    assert!(
        reports[0].keyless && reports[0].counts_add_up(),
        "{reports:?}"
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ddl_on_a_table_mid_backfill_stops_the_task_with_the_way_out() {
    let db = "core_add_ddl";
    let mut conn = connect().await;
    fresh_db(
        &mut conn,
        db,
        "CREATE TABLE a (id INT PRIMARY KEY); CREATE TABLE n (id INT PRIMARY KEY, v INT);",
    )
    .await;
    conn.query_drop(format!(
        "USE {db}; INSERT INTO a VALUES (1); INSERT INTO n SELECT seq, seq FROM seq_1_to_3000"
    ))
    .await
    .expect("rows");
    let dir = tempfile::tempdir().expect("tempdir");
    task_over(db, dir.path(), &["a"], 7238)
        .run(&caught_up())
        .await
        .expect("a alone");
    let runner = std::sync::Arc::new(task_over(db, dir.path(), &["a", "n"], 7238));
    let opts = RunOptions::default();
    let (watch, flag) = (runner.clone(), opts.stop.clone());
    let watcher = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            if let Ok(Some(state)) = watch.state()
                && let Some(n) = incremental(&state).added.get("core_add_ddl.n")
                && n.live
                && n.baseline.chunks_done >= 1
            {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        }
    });
    runner.run(&opts).await.expect("stopped mid-backfill");
    watcher.await.expect("watcher");
    conn.query_drop(format!("USE {db}; ALTER TABLE n ADD COLUMN z INT"))
        .await
        .expect("alter");
    let err = task_over(db, dir.path(), &["a", "n"], 7238)
        .run(&caught_up())
        .await
        .expect_err("a DDL mid-backfill");
    assert!(matches!(err, Error::Ddl { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("baseline is still being copied") && text.contains("[objects] include"),
        "{text}"
    );
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

// Online schema-change tools: pt-online-schema-change run for real, gh-ost
// and Alibaba DMS lock-free DDL replayed statement by statement, each while
// a writer changes the table and the sync is restarted (and cut off
// mid-run, as a `kill -9` would) in the middle of the change.

/// The table every online schema change below alters.
const OSC_TABLE: &str = "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, \
     s VARCHAR(20)) CHARACTER SET utf8mb4;
     INSERT INTO t (v, s) SELECT seq, CONCAT('s', seq) FROM seq_1_to_400;";

/// How a writer reaches the table under change: directly (pt-osc's
/// triggers follow it), or also into a ghost table the way gh-ost and DMS
/// apply what they read from the binlog (their own, later transactions).
#[derive(Clone)]
struct Mirror {
    shadow: String,
    comment: &'static str,
}

/// Inserts, updates and deletes on `db.t` until `stop` is set; each change
/// is its own transaction, and with `mirror` is applied to the ghost table
/// afterwards in another. Returns how many changes it made.
async fn osc_writer(
    db: String,
    seed: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mirror: Option<Mirror>,
) -> u64 {
    use std::sync::atomic::Ordering;
    let mut conn = connect().await;
    conn.query_drop(format!("USE {db}")).await.expect("use");
    let mut rng = sync_testkit::rng::Rng::new(seed);
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = rng.range(1, 450);
        let (sql, mirrored) = match rng.range(0, 2) {
            0 => (
                format!("INSERT INTO t (v, s) VALUES ({id}, 'w{done}')"),
                "REPLACE INTO {g} (id, v, s) SELECT id, v, s FROM t WHERE id = LAST_INSERT_ID()",
            ),
            1 => (
                format!("UPDATE t SET v = v + 1, s = 'u{done}' WHERE id = {id}"),
                "REPLACE INTO {g} (id, v, s) SELECT id, v, s FROM t WHERE id = {id}",
            ),
            _ => (
                format!("DELETE FROM t WHERE id = {id}"),
                "DELETE FROM {g} WHERE id = {id}",
            ),
        };
        // Lock waits and deadlocks with the copy roll the change back whole.
        if conn.query_drop(&sql).await.is_err() {
            continue;
        }
        if let Some(m) = &mirror {
            let apply = mirrored
                .replace("{g}", &format!("{} {}", m.comment, m.shadow))
                .replace("{id}", &id.to_string());
            conn.query_drop(apply).await.expect("mirrored change");
        }
        done += 1;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    done
}

fn start_writer(
    db: &str,
    seed: u64,
    mirror: Option<Mirror>,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<u64>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handle = tokio::spawn(osc_writer(db.to_owned(), seed, stop.clone(), mirror));
    (stop, handle)
}

async fn stop_writer(
    (stop, handle): (
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        tokio::task::JoinHandle<u64>,
    ),
) -> u64 {
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    handle.await.expect("writer")
}

/// One run of the sync cut off after `ms` milliseconds wherever it is (the
/// future is dropped: nothing after that point runs, as after `kill -9`).
async fn cut_off_run(db: &str, server_id: u32, dir: &Path, ms: u64) {
    let runner = local_task(db, server_id, dir, "");
    let forever = RunOptions::default();
    match tokio::time::timeout(std::time::Duration::from_millis(ms), runner.run(&forever)).await {
        Err(_) => {}
        // MariaDB's information_schema can miss a table while a RENAME
        // swaps it: the precheck then finds nothing to sync and the run
        // does not start, which is as if it had not run.
        Ok(Err(Error::Precheck(report))) => eprintln!("a run did not start: {report:?}"),
        Ok(r) => panic!("a run that never ends ended: {r:?}"),
    }
}

/// The checks every online schema change must pass: `t` merges to what the
/// source holds (`c` included), no change record twice, no destination
/// table for the tool's shadow, helper or trash tables.
async fn assert_osc_followed(db: &str, server_id: u32, dir: &Path) {
    let runner = local_task(db, server_id, dir, "");
    runner.run(&caught_up()).await.expect("final run");
    let reports = assert_verified(&runner).await;
    assert_eq!(
        reports.iter().map(|r| r.table.as_str()).collect::<Vec<_>>(),
        vec![format!("{db}.t")],
        "only t is synced"
    );
    let tables = runner.tables().await.expect("tables");
    assert_eq!(tables.len(), 1, "{tables:?}");
    assert!(
        tables[0].dest_columns().contains(&"c"),
        "t's destination has the new column: {:?}",
        tables[0].dest_columns()
    );
    let merged = runner
        .merged(&format!("{db}.t"), None)
        .await
        .expect("merge t");
    let rows = by_id(&[merged], &["v", "s", "c"]);
    assert!(
        rows.values().any(|r| r[2].is_some()),
        "values written into c after the cut-over land"
    );
    let log = runner.sink().read_table_blocking("t_log").expect("t_log");
    let keys = sync_testkit::records::log_record_keys(&log).expect("keys");
    assert!(!keys.is_empty());
    assert_eq!(sync_testkit::records::doubled(&keys), vec![]);
    let mut in_warehouse: Vec<String> = std::fs::read_dir(dir.join("warehouse"))
        .expect("warehouse")
        .flatten()
        .filter(|e| e.path().join("_table.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    in_warehouse.sort();
    assert_eq!(in_warehouse, vec!["t_base", "t_log"]);
}

/// `pt-online-schema-change`, or `None` (said loudly) when it is not
/// installed; under `CI` its absence fails the test.
fn pt_osc() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("pt-online-schema-change"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let message = "pt-online-schema-change is not installed: this test needs it \
                       (`apt-get install percona-toolkit`)";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("\n!!! SKIPPED: {message} !!!\n");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osc_pt_online_schema_change_under_a_writer_is_followed_across_restarts() {
    let Some(tool) = pt_osc() else { return };
    let db = "core_osc_pt";
    let server_id = 7250;
    let mut conn = connect().await;
    fresh_db(&mut conn, db, OSC_TABLE).await;
    let dir = tempfile::tempdir().expect("tempdir");
    local_task(db, server_id, dir.path(), "")
        .run(&caught_up())
        .await
        .expect("full sync");

    let writer = start_writer(db, 1, None);
    // Twenty chunks a quarter of a second apart: the sync is restarted
    // (and cut off) while the rows are copied and the triggers fire.
    let opts = mysql_async::Opts::from_url(&sync_testkit::mysql_url()).expect("url");
    let mut dsn = format!(
        "D={db},t=t,h={},P={},u={}",
        opts.ip_or_hostname(),
        opts.tcp_port(),
        opts.user().unwrap_or("root")
    );
    if let Some(p) = opts.pass() {
        dsn.push_str(&format!(",p={p}"));
    }
    let mut child = Command::new(tool)
        .args([
            "--alter",
            "ADD COLUMN c INT",
            "--execute",
            "--chunk-size",
            "20",
            "--sleep",
            "0.25",
            "--recursion-method",
            "none",
        ])
        .arg(&dsn)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pt-online-schema-change");
    loop {
        let triggers: Option<u64> = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = '{db}'"
            ))
            .await
            .expect("triggers");
        if triggers == Some(3) {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "pt-osc ended early"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let runner = local_task(db, server_id, dir.path(), "");
    let report = runner.precheck().await.expect("precheck");
    let check = report
        .checks
        .iter()
        .find(|c| c.id == "online_ddl_tables")
        .expect("online_ddl_tables");
    assert_eq!(
        check.outcome,
        sync_core::precheck::Outcome::Warning,
        "{check:?}"
    );
    assert!(
        check.message.contains("core_osc_pt._t_new (shadow)"),
        "{check:?}"
    );
    assert!(check.message.contains("is followed"), "{check:?}");
    runner
        .run(&caught_up())
        .await
        .expect("a run while the rows are copied");
    let schemas: Vec<String> = std::fs::read_dir(dir.path().join("state/schemas"))
        .expect("schema generations")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).expect("generation"))
        .collect();
    assert!(
        schemas.iter().any(|g| g.contains("core_osc_pt._t_new")),
        "the run stopped mid-change with the shadow saved: {schemas:?}"
    );
    let mut runs = 0;
    while child.try_wait().expect("wait").is_none() {
        cut_off_run(db, server_id, dir.path(), 350).await;
        runs += 1;
    }
    let out = child.wait_with_output().expect("pt-osc output");
    assert!(
        out.status.success(),
        "pt-online-schema-change failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(runs > 0, "the sync ran while the rows were copied");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let changes = stop_writer(writer).await;
    assert!(changes > 0);
    conn.query_drop(format!(
        "USE {db}; UPDATE t SET c = id * 10 WHERE id % 3 = 0; \
         INSERT INTO t (v, s, c) VALUES (-1, 'after', 7);"
    ))
    .await
    .expect("writes to the new column");
    assert_osc_followed(db, server_id, dir.path()).await;
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// The names one tool run uses for `t`.
struct OscNames {
    shadow: &'static str,
    helper: &'static str,
    trash: &'static str,
    /// The marker the tool writes into its statements.
    comment: &'static str,
}

/// Replays a triggerless tool's statements (gh-ost's, DMS's) around `t`:
/// the helper and shadow tables made, the shadow altered, rows copied in
/// chunks while a writer changes `t` and the tool applies each change to
/// the shadow, the sync restarted and cut off in between; then the writer
/// pauses (the tool's lock), `cut_over` runs, and writes go on.
/// With `start_within`, the task's first run comes after the tool made its
/// tables (a task started while a change is under way).
async fn replayed_osc(
    db: &str,
    server_id: u32,
    names: &OscNames,
    start_within: bool,
    setup: &str,
    cut_over: &str,
) {
    let OscNames {
        shadow,
        helper,
        trash,
        comment,
    } = names;
    let mut conn = connect().await;
    fresh_db(&mut conn, db, OSC_TABLE).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fill = |sql: &str| {
        sql.replace("{db}", db)
            .replace("{shadow}", shadow)
            .replace("{helper}", helper)
            .replace("{trash}", trash)
            .replace("{c}", comment)
    };
    if start_within {
        conn.query_drop(format!("USE {db}; {}", fill(setup)))
            .await
            .expect("shadow and helper tables");
    }
    local_task(db, server_id, dir.path(), "")
        .run(&caught_up())
        .await
        .expect("full sync");
    if !start_within {
        conn.query_drop(format!("USE {db}; {}", fill(setup)))
            .await
            .expect("shadow and helper tables");
    }
    let writer = start_writer(
        db,
        2,
        Some(Mirror {
            shadow: shadow.to_string(),
            comment,
        }),
    );
    local_task(db, server_id, dir.path(), "")
        .run(&caught_up())
        .await
        .expect("a run before the copy");
    for (i, from) in (0..450).step_by(50).enumerate() {
        conn.query_drop(fill(&format!(
            "INSERT {{c}} IGNORE INTO `{{db}}`.`{{shadow}}` (`id`, `v`, `s`) \
             (SELECT `id`, `v`, `s` FROM `{{db}}`.`t` FORCE INDEX (`PRIMARY`) \
             WHERE `id` >= {from} AND `id` < {} LOCK IN SHARE MODE)",
            from + 50
        )))
        .await
        .expect("copy a chunk");
        conn.query_drop(fill(&format!(
            "INSERT {{c}} INTO `{{db}}`.`{{helper}}` (id, hint, value) VALUES (1, 'heartbeat', '{i}') \
             ON DUPLICATE KEY UPDATE value = VALUES(value)"
        )))
        .await
        .expect("heartbeat");
        if i % 3 == 1 {
            cut_off_run(db, server_id, dir.path(), 300).await;
        }
    }
    local_task(db, server_id, dir.path(), "")
        .run(&caught_up())
        .await
        .expect("a run after the copy");
    stop_writer(writer).await;
    conn.query_drop(format!("USE {db}; {}", fill(cut_over)))
        .await
        .expect("cut-over");
    let after = start_writer(db, 3, None);
    cut_off_run(db, server_id, dir.path(), 300).await;
    stop_writer(after).await;
    conn.query_drop(format!(
        "USE {db}; UPDATE t SET c = id * 10 WHERE id % 3 = 0; \
         INSERT INTO t (v, s, c) VALUES (-1, 'after', 7);"
    ))
    .await
    .expect("writes to the new column");
    assert_osc_followed(db, server_id, dir.path()).await;
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osc_gh_ost_statements_with_an_atomic_cut_over_are_followed() {
    replayed_osc(
        "core_osc_ghost",
        7251,
        &OscNames {
            shadow: "_t_gho",
            helper: "_t_ghc",
            trash: "_t_del",
            comment: "/* gh-ost */",
        },
        false,
        "create /* gh-ost */ table `{db}`.`{helper}` (
           id bigint auto_increment, last_update timestamp not null DEFAULT CURRENT_TIMESTAMP
             ON UPDATE CURRENT_TIMESTAMP, hint varchar(64) charset ascii not null,
           value varchar(4096) charset ascii not null, primary key(id), unique key hint_uidx(hint)
         ) auto_increment=256 comment='gh-ost changelog';
         create /* gh-ost */ table `{db}`.`{shadow}` like `{db}`.`t`;
         alter /* gh-ost */ table `{db}`.`{shadow}` ADD COLUMN c INT;",
        "create /* gh-ost */ table `{db}`.`{trash}` (
           id int auto_increment primary key
         ) engine=InnoDB comment='ghost-cut-over-sentry';
         drop /* gh-ost */ table if exists `{db}`.`{trash}`;
         rename /* gh-ost */ table `{db}`.`t` to `{db}`.`{trash}`, `{db}`.`{shadow}` to `{db}`.`t`;
         drop /* gh-ost */ table if exists `{db}`.`{helper}`;
         drop /* gh-ost */ table if exists `{db}`.`{trash}`;",
    )
    .await;
}

/// gh-ost's `--cut-over=two-step`: the table is briefly absent between two
/// `ALTER TABLE … RENAME`s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osc_gh_ost_statements_with_a_two_step_cut_over_are_followed() {
    replayed_osc(
        "core_osc_ghost2",
        7253,
        &OscNames {
            shadow: "_t_gho",
            helper: "_t_ghc",
            trash: "_t_del",
            comment: "/* gh-ost */",
        },
        false,
        "create /* gh-ost */ table `{db}`.`{helper}` (
           id bigint auto_increment, last_update timestamp not null DEFAULT CURRENT_TIMESTAMP
             ON UPDATE CURRENT_TIMESTAMP, hint varchar(64) charset ascii not null,
           value varchar(4096) charset ascii not null, primary key(id), unique key hint_uidx(hint)
         ) auto_increment=256 comment='gh-ost changelog';
         create /* gh-ost */ table `{db}`.`{shadow}` like `{db}`.`t`;
         alter /* gh-ost */ table `{db}`.`{shadow}` ADD COLUMN c INT;",
        "alter /* gh-ost */ table `{db}`.`t` rename `{db}`.`{trash}`;
         alter /* gh-ost */ table `{db}`.`{shadow}` rename `{db}`.`t`;
         drop /* gh-ost */ table if exists `{db}`.`{helper}`;
         drop /* gh-ost */ table if exists `{db}`.`{trash}`;",
    )
    .await;
}

/// DMS, with the task's first run after DMS made its tables: the shadow's
/// columns are read when the incremental phase begins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osc_dms_lock_free_ddl_statements_are_followed_from_a_start_within() {
    replayed_osc(
        "core_osc_dms",
        7252,
        &OscNames {
            shadow: "tp_4501684_ogt_t",
            helper: "tp_4501684_ogl_t",
            trash: "tp_4501684_del_t",
            comment: "",
        },
        true,
        "CREATE TABLE `{db}`.`{helper}` (id BIGINT PRIMARY KEY, hint VARCHAR(64) NOT NULL,
           value VARCHAR(255) NOT NULL);
         CREATE TABLE `{db}`.`{shadow}` LIKE `{db}`.`t`;
         ALTER TABLE `{db}`.`{shadow}` ADD COLUMN c INT;",
        "RENAME TABLE `{db}`.`t` TO `{db}`.`{trash}`, `{db}`.`{shadow}` TO `{db}`.`t`;
         DROP TABLE IF EXISTS `{db}`.`{trash}`;
         DROP TABLE IF EXISTS `{db}`.`{helper}`;",
    )
    .await;
}
