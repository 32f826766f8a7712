//! Runs the examples the way their readers do, against the real servers the
//! tests start, so an example that stops compiling or working fails here.
//! Each example is included as a module and its work function called; its
//! `main` only parses the command line.

use mysql_async::prelude::Queryable;
use mysql_source::{ConnectOptions, RawConn};
use odps_tunnel::Client;
use odps_tunnel::auth::Credentials;
use sync_testkit::emulator::{ACCESS_ID, ACCESS_KEY, Emulator};
use sync_testkit::rng::Rng;
use sync_testkit::shop::{Scale, changes_sql, shop_sql};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[path = "../custom_sink.rs"]
#[allow(dead_code)] // `main` is the command line's
mod custom_sink;

#[path = "../transform.rs"]
#[allow(dead_code)] // `main` is the command line's
mod transform;

#[path = "../stream_changes.rs"]
#[allow(dead_code)] // `main` is the command line's
mod stream_changes;

#[path = "../upload_arrow.rs"]
#[allow(dead_code)] // `main` is the command line's
mod upload_arrow;

/// `upload_arrow` against the emulator: the three rows it uploads are
/// counted back, and a second run appends three more (an upload session
/// without `overwrite` adds to the partition).
#[tokio::test]
async fn upload_arrow_commits_a_batch_and_counts_it_back() -> TestResult {
    let emulator = Emulator::start(&[])?;
    let client = Client::new(
        &emulator.endpoint,
        "examples",
        Credentials::new(ACCESS_ID, ACCESS_KEY),
    )?;
    assert_eq!(upload_arrow::upload(&client).await?, 3);
    assert_eq!(upload_arrow::upload(&client).await?, 6);
    Ok(())
}

/// `stream_changes` on the sandbox MariaDB: from the position it would
/// start at, an INSERT of two rows, an UPDATE and a DELETE come out as one
/// line per row change, in order, each transaction closed by the position to
/// resume from.
#[tokio::test]
async fn stream_changes_prints_every_row_change_in_order() -> TestResult {
    let connect = ConnectOptions::from_url(&sync_testkit::mysql_url())?;
    let from = stream_changes::current_position(&connect).await?;
    let mut conn = RawConn::connect(&connect).await?;
    for sql in [
        "CREATE DATABASE IF NOT EXISTS examples_stream",
        "DROP TABLE IF EXISTS examples_stream.t",
        "CREATE TABLE examples_stream.t (id INT PRIMARY KEY, v TEXT)",
        "INSERT INTO examples_stream.t VALUES (1, 'x'), (2, 'y')",
        "UPDATE examples_stream.t SET v = 'z' WHERE id = 2",
        "DELETE FROM examples_stream.t WHERE id = 1",
    ] {
        conn.query_drop(sql).await?;
    }
    conn.close().await?;

    let mut out = Vec::new();
    // A replica id of this process only (`--once`: stop at the binlog's end).
    let server_id = 4_300_000 + std::process::id() % 100_000;
    stream_changes::stream_changes(connect, server_id, from, true, &mut out).await?;
    let text = String::from_utf8(out)?;
    let changes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" examples_stream.t "))
        .collect();
    assert_eq!(
        changes,
        [
            "INSERT examples_stream.t {id=1, v='x'}",
            "INSERT examples_stream.t {id=2, v='y'}",
            "UPDATE examples_stream.t {id=2, v='y'} -> {id=2, v='z'}",
            "DELETE examples_stream.t {id=1, v='x'}",
        ],
        "{text}"
    );
    let commits = text
        .lines()
        .filter(|l| l.starts_with("-- committed; resume from "))
        .count();
    assert!(commits >= 3, "{text}");
    Ok(())
}

/// A small demo shop in database `db` of the sandbox, made anew.
async fn load_shop(db: &str) -> Result<mysql_async::Conn, Box<dyn std::error::Error>> {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url)?).await?;
    conn.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await?;
    let scale = Scale {
        customers: 120,
        products: 40,
        orders: 150,
        events: 30,
    };
    conn.query_drop(shop_sql(db, scale, 7)).await?;
    Ok(conn)
}

/// `custom_sink` on the sandbox: the shop lands in its Arrow files equal to
/// the source (the example verifies), and after a writer's changes a second
/// run resumes from the checkpoint and is equal again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_sink_syncs_the_shop_into_arrow_files_and_resumes() -> TestResult {
    const DB: &str = "examples_custom_sink";
    let mut conn = load_shop(DB).await?;
    let out = tempfile::tempdir()?;
    let url = sync_testkit::mysql_url();
    custom_sink::sync_to_arrow_files(&url, DB, out.path()).await?;
    conn.query_drop(changes_sql(DB, &mut Rng::new(3), 900_001))
        .await?;
    custom_sink::sync_to_arrow_files(&url, DB, out.path()).await?;
    conn.disconnect().await?;
    Ok(())
}

/// `transform` on the sandbox: `customers` lands with masked emails and
/// without the rows the transform drops, equal to the source read through
/// the same transform, also after changes and a resumed run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_masks_and_filters_customers_and_resumes() -> TestResult {
    const DB: &str = "examples_transform";
    let mut conn = load_shop(DB).await?;
    let out = tempfile::tempdir()?;
    let url = sync_testkit::mysql_url();
    transform::sync_masked(&url, DB, out.path()).await?;
    conn.query_drop(changes_sql(DB, &mut Rng::new(4), 900_002))
        .await?;
    transform::sync_masked(&url, DB, out.path()).await?;
    conn.disconnect().await?;
    Ok(())
}
