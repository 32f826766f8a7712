//! Schema and parallel snapshot of the Sakila sample database (in
//! `testdata/sakila`, loaded into a database of its own on the sandbox).

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, UInt16Type};
use mysql_source::schema::{self, ColumnType};
use mysql_source::snapshot::{self, SnapshotItem, SnapshotOptions, TableJob};
use mysql_source::{ConnectOptions, RawConn};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

const DB: &str = "mysql_source_sakila";

fn sandbox() -> ConnectOptions {
    ConnectOptions::from_url(&sync_testkit::mysql_url()).expect("sandbox URL")
}

/// Loads schema and data with the `mariadb` client (the files use DELIMITER).
fn load_sakila() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sakila");
    let o = sandbox();
    for file in ["sakila-mv-schema.sql", "sakila-mv-data.sql"] {
        let sql = std::fs::read_to_string(dir.join(file)).expect("read sakila");
        let sql = sql
            .replace(
                "SCHEMA IF EXISTS sakila;",
                &format!("SCHEMA IF EXISTS {DB};"),
            )
            .replace("SCHEMA sakila;", &format!("SCHEMA {DB};"))
            .replace("USE sakila;", &format!("USE {DB};"))
            .replace("sakila.", &format!("{DB}."));
        let mut child = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h",
                &o.host,
                "-P",
                &o.port.to_string(),
                "-u",
                &o.user,
            ])
            .args(o.password.as_ref().map(|p| format!("-p{p}")))
            .stdin(Stdio::piped())
            .spawn()
            .expect("the mariadb client is needed to load sakila");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(sql.as_bytes())
            .expect("feed sql");
        assert!(
            child.wait().expect("wait").success(),
            "loading {file} failed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sakila_schema_and_parallel_snapshot() {
    load_sakila();
    let mut conn = RawConn::connect(&sandbox()).await.expect("connect");

    // Schema: a few facts the Sakila DDL states.
    let film = schema::read_table(&mut conn, DB, "film")
        .await
        .expect("film schema");
    assert_eq!(film.primary_key, vec!["film_id"]);
    let id = film.column("film_id").expect("film_id");
    assert_eq!(
        (id.column_type.clone(), id.unsigned, id.auto_increment),
        (ColumnType::SmallInt, true, true)
    );
    let rating = film.column("rating").expect("rating");
    assert_eq!(
        rating.column_type,
        ColumnType::Enum(
            vec!["G", "PG", "PG-13", "R", "NC-17"]
                .into_iter()
                .map(String::from)
                .collect()
        )
    );
    let features = film.column("special_features").expect("special_features");
    assert!(
        matches!(&features.column_type, ColumnType::Set(m) if m.len() == 4),
        "{features:?}"
    );
    assert_eq!(
        film.column("rental_rate").expect("rate").column_type,
        ColumnType::Decimal {
            precision: 4,
            scale: 2
        }
    );
    assert_eq!(
        film.column("release_year").expect("year").column_type,
        ColumnType::Year
    );
    assert!(film.column("title").expect("title").charset.is_some());
    // (`address.location` GEOMETRY sits in a /*!50705 */ comment that MariaDB
    // skips; the many-types test covers GEOMETRY.)
    let rental = schema::read_table(&mut conn, DB, "rental")
        .await
        .expect("rental");
    assert!(
        rental
            .unique_keys
            .iter()
            .any(|k| k.columns == ["rental_date", "inventory_id", "customer_id"] && k.not_null)
    );

    // Snapshot every base table in parallel chunks.
    let position = snapshot::capture_position(&mut conn)
        .await
        .expect("position");
    assert!(position.position.position >= 4);
    let tables = conn
        .query_strings(&format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{DB}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1"
        ))
        .await
        .expect("tables");
    let mut jobs = Vec::new();
    let mut expected = BTreeMap::new();
    for t in tables {
        let name = t[0].clone().expect("name");
        let s = schema::read_table(&mut conn, DB, &name)
            .await
            .expect("schema");
        let plan = snapshot::plan_table(&mut conn, &s, 1000)
            .await
            .expect("plan");
        let count: u64 = conn
            .query_strings(&format!("SELECT COUNT(*) FROM {DB}.`{name}`"))
            .await
            .expect("count")[0][0]
            .clone()
            .expect("n")
            .parse()
            .expect("n");
        expected.insert(name.clone(), count);
        jobs.push(TableJob {
            schema: Arc::new(s),
            plan: Arc::new(plan),
            done: BTreeSet::new(),
        });
    }
    assert_eq!(expected.len(), 16, "{expected:?}");
    let names: Vec<String> = jobs.iter().map(|j| j.schema.table.clone()).collect();
    let mut opts = SnapshotOptions::new(sandbox());
    opts.parallelism = 3;
    opts.batch_rows = 700;
    let mut run = snapshot::start(opts, jobs);
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    let mut chunk_rows: BTreeMap<(usize, u32), u64> = BTreeMap::new();
    let mut amount_sum: i128 = 0;
    let mut years = BTreeSet::new();
    let mut text_bytes = 0usize;
    while let Some(item) = run.items.recv().await {
        match item.expect("snapshot item") {
            SnapshotItem::Batch {
                table,
                chunk,
                batch,
            } => {
                *rows.entry(names[table].clone()).or_default() += batch.num_rows() as u64;
                *chunk_rows.entry((table, chunk)).or_default() += batch.num_rows() as u64;
                if names[table] == "payment" {
                    let a = batch
                        .column_by_name("amount")
                        .expect("amount")
                        .as_primitive::<Decimal128Type>();
                    amount_sum += a.iter().flatten().sum::<i128>();
                }
                if names[table] == "film" {
                    let y = batch
                        .column_by_name("release_year")
                        .expect("year")
                        .as_primitive::<UInt16Type>();
                    years.extend(y.iter().flatten());
                }
                if names[table] == "film_text" {
                    let d = batch
                        .column_by_name("description")
                        .expect("description")
                        .as_string::<i32>();
                    text_bytes += d.iter().flatten().map(str::len).sum::<usize>();
                }
            }
            SnapshotItem::ChunkDone { table, chunk, rows } => {
                assert_eq!(
                    chunk_rows.get(&(table, chunk)).copied().unwrap_or(0),
                    rows,
                    "chunk {chunk} of {}",
                    names[table]
                );
            }
        }
    }
    for (name, want) in &expected {
        assert_eq!(
            rows.get(name).copied().unwrap_or(0),
            *want,
            "rows of {name}"
        );
    }
    let report = run.progress.report();
    assert_eq!(report.chunks_done, report.chunks_total);
    assert_eq!(report.rows, expected.values().sum::<u64>());
    assert!(
        report.chunks_total > 16,
        "big tables were split: {report:?}"
    );
    let sql_sum = conn
        .query_strings(&format!("SELECT SUM(amount) * 100 FROM {DB}.payment"))
        .await
        .expect("sum")[0][0]
        .clone()
        .expect("sum");
    assert_eq!(
        amount_sum.to_string(),
        sql_sum.split('.').next().expect("int part")
    );
    assert_eq!(years, BTreeSet::from([2006]));
    let sql_len = conn
        .query_strings(&format!(
            "SELECT SUM(LENGTH(description)) FROM {DB}.film_text"
        ))
        .await
        .expect("len")[0][0]
        .clone()
        .expect("len");
    assert_eq!(text_bytes.to_string(), sql_len);
    conn.close().await.expect("close");
}
