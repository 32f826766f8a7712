//! Snapshot readers killed on the server (`KILL CONNECTION`) while the full
//! phase runs: the run resumes from its last committed chunk instead of
//! ending, re-reads only the chunks that were in flight, and the result
//! verifies equal.

use mysql_async::prelude::Queryable;
use std::sync::Arc;
use std::time::Duration;
use sync_core::config::TaskConfig;
use sync_core::run::{RunOptions, TaskRunner};
use sync_core::sink::local::LocalWarehouse;
use sync_testkit::wide::{WIDE_DDL, wide_fill};

const DB: &str = "core_killed_readers";
/// The task's own user, so that its connections can be told apart.
const USER: &str = "core_killed_readers";

fn config(url: &str, dir: &std::path::Path) -> TaskConfig {
    let url = url.replacen("://root@", &format!("://{USER}:reader-pass@"), 1);
    toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7121
        [destination]
        kind = "local"
        path = "{wh}"
        [objects]
        include = ["{DB}.*"]
        [sync]
        types = ["schema", "full"]
        state_dir = "{state}"
        chunk_rows = 1000
        parallelism = 2
        "#,
        wh = dir.join("warehouse").display(),
        state = dir.join("state").display(),
    ))
    .expect("task file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_snapshot_readers_cost_only_their_chunks() {
    let url = sync_testkit::mysql_url();
    assert!(
        url.contains("://root@"),
        "the sandbox URL logs in as root: {url}"
    );
    let mut admin = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    admin
        .query_drop(format!(
            "DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}; CREATE TABLE {DB}.wide {WIDE_DDL};
             CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY 'reader-pass';
             GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{USER}'@'%';"
        ))
        .await
        .expect("setup");
    for sql in wide_fill(&format!("{DB}.wide"), 1, 60_000) {
        admin.query_drop(sql).await.expect("fill");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = Arc::new(
        TaskRunner::new(
            config(&url, dir.path()),
            LocalWarehouse::new(dir.path().join("warehouse")),
        )
        .expect("runner"),
    );
    let task = {
        let runner = runner.clone();
        tokio::spawn(async move { runner.run(&RunOptions::default()).await })
    };

    // Kill a chunk reader (a SELECT from the table) three times, spaced out.
    let mut kills = 0;
    while kills < 3 && !task.is_finished() {
        let readers: Vec<u64> = admin
            .query(format!(
                "SELECT id FROM information_schema.processlist WHERE user = '{USER}' \
                 AND command IN ('Query', 'Execute') AND info LIKE 'SELECT%FROM `{DB}`.`wide`%'"
            ))
            .await
            .expect("processlist");
        if let Some(id) = readers.first() {
            if admin
                .query_drop(format!("KILL CONNECTION {id}"))
                .await
                .is_ok()
            {
                kills += 1;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let state = task
        .await
        .expect("join")
        .expect("the run rides out the kills");
    assert!(
        kills > 0,
        "the full phase ended before a reader could be killed: nothing was tested"
    );
    assert_eq!(state.phase.name(), "finished");
    assert!(
        runner.metrics().snapshot().retries >= 1,
        "the lost readers were counted as retries"
    );
    let reports = runner.verify().await.expect("verify");
    assert_eq!(reports.len(), 1);
    assert!(reports[0].is_equal(), "{:?}", reports[0]);
    assert_eq!(reports[0].source_rows, 60_000);
    admin
        .query_drop(format!("DROP DATABASE {DB}"))
        .await
        .expect("drop");
    admin.disconnect().await.expect("disconnect");
}
