//! A transaction larger than `max_batch_records` is committed in parts, and
//! a task that fails between parts — before a part lands, or after it landed
//! but before the checkpoint moved — resumes inside the transaction without
//! losing or repeating a record.

use mysql_async::prelude::Queryable;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use sync_core::config::TaskConfig;
use sync_core::machine::{Phase, TaskState};
use sync_core::run::{RunOptions, TaskRunner};
use sync_core::sink::local::LocalWarehouse;
use sync_core::sink::{Sink, TableBatch, TableDef};
use sync_core::{Error, Result};

const DB: &str = "core_big_txn";

fn config(url: &str, dir: &std::path::Path) -> TaskConfig {
    toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = 7151
        [destination]
        kind = "local"
        path = "{wh}"
        [objects]
        include = ["{DB}.*"]
        [sync]
        types = ["schema", "full", "incremental"]
        state_dir = "{state}"
        batch_rows = 100
        max_batch_records = 1000
        "#,
        wh = dir.join("warehouse").display(),
        state = dir.join("state").display(),
    ))
    .expect("task file")
}

/// When the real warehouse underneath fails a commit: the `n`-th one
/// (1-based), before or after the unit landed.
#[derive(Clone, Copy)]
enum Fault {
    BeforeLanding(usize),
    AfterLanding(usize),
}

/// The local warehouse, with one injected commit failure.
struct FailingCommit {
    inner: LocalWarehouse,
    fault: Fault,
    commits: AtomicUsize,
}

#[async_trait::async_trait]
impl Sink for FailingCommit {
    async fn table_exists(&self, name: &str) -> Result<bool> {
        self.inner.table_exists(name).await
    }
    async fn ensure_table(&self, def: &TableDef) -> Result<()> {
        self.inner.ensure_table(def).await
    }
    async fn commit_unit(&self, unit: &str, data: Vec<TableBatch>) -> Result<()> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        // An error no `[retry]` window covers: the run stops there, as a
        // crash would stop it.
        let injected = || Error::Schema(format!("injected failure of commit {n} ({unit})"));
        match self.fault {
            Fault::BeforeLanding(at) if at == n => Err(injected()),
            Fault::AfterLanding(at) if at == n => {
                self.inner.commit_unit(unit, data).await?;
                Err(injected())
            }
            _ => self.inner.commit_unit(unit, data).await,
        }
    }
    async fn add_columns(&self, table: &str, fields: &[arrow_schema::Field]) -> Result<()> {
        self.inner.add_columns(table, fields).await
    }
    async fn is_committed(&self, unit: &str) -> Result<bool> {
        self.inner.is_committed(unit).await
    }
    async fn read_table(
        &self,
        name: &str,
        schema: &arrow_schema::SchemaRef,
    ) -> Result<Vec<arrow_array::RecordBatch>> {
        self.inner.read_table(name, schema).await
    }
}

fn caught_up() -> RunOptions {
    RunOptions {
        exit_when_caught_up: true,
        stop: Arc::new(AtomicBool::new(false)),
    }
}

/// Runs the task over a sink that fails as `fault` says; returns the
/// checkpoint the failure left.
async fn run_failing(cfg: &TaskConfig, dir: &std::path::Path, fault: Fault) -> TaskState {
    let sink = FailingCommit {
        inner: LocalWarehouse::new(dir.join("warehouse")),
        fault,
        commits: AtomicUsize::new(0),
    };
    let runner = TaskRunner::new(cfg.clone(), sink).expect("runner");
    let err = runner
        .run(&caught_up())
        .await
        .expect_err("the injected failure stops the run");
    assert!(err.to_string().contains("injected failure"), "{err}");
    runner.state().expect("state").expect("a checkpoint")
}

fn incremental(state: &TaskState) -> &sync_core::machine::Incremental {
    match &state.phase {
        Phase::Incremental(inc) => inc,
        other => panic!("not incremental: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_too_large_for_one_batch_lands_in_parts_and_resumes_inside() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB};
         CREATE TABLE {DB}.t (id INT PRIMARY KEY, a INT NOT NULL, s VARCHAR(40))"
    ))
    .await
    .expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&url, dir.path());
    let plain = TaskRunner::new(
        cfg.clone(),
        LocalWarehouse::new(dir.path().join("warehouse")),
    )
    .expect("runner");
    plain
        .run(&caught_up())
        .await
        .expect("schema and empty full");

    // One transaction of 10,000 change records: 5,000 inserts, 2,000 updates
    // (two records each), 1,000 deletes.
    conn.query_drop(format!(
        "START TRANSACTION;
         INSERT INTO {DB}.t SELECT seq, seq, CONCAT('row ', seq) FROM {DB}.seq_1_to_5000;
         UPDATE {DB}.t SET a = a + 1, s = NULL WHERE id <= 2000;
         DELETE FROM {DB}.t WHERE id > 4000;
         COMMIT"
    ))
    .await
    .expect("the big transaction");

    // The third part fails before landing: two parts are in, and the
    // checkpoint lies inside the transaction.
    let state = run_failing(&cfg, dir.path(), Fault::BeforeLanding(3)).await;
    let inc = incremental(&state);
    assert!(
        inc.position.within.is_some(),
        "checkpoint inside the transaction: {:?}",
        inc.position
    );
    let first_stop = inc.position.clone();
    assert!(inc.next_record_id > 2000, "two parts of ≥1000: {inc:?}");
    // The next part lands, then the run fails before the checkpoint moves:
    // the restart must find it committed and go on after it.
    let state = run_failing(&cfg, dir.path(), Fault::AfterLanding(1)).await;
    let inc = incremental(&state);
    let pending = inc.pending.as_ref().expect("a pending part");
    assert!(pending.to.within.is_some(), "{pending:?}");
    assert!(
        pending.to.within > first_stop.within,
        "{pending:?} after {first_stop:?}"
    );

    let done = plain.run(&caught_up()).await.expect("catch up");
    let inc = incremental(&done);
    assert!(inc.pending.is_none());
    assert_eq!(inc.position.within, None, "ends at a transaction boundary");
    for r in plain.verify().await.expect("verify") {
        assert!(r.is_equal(), "{} differs: {r:?}", r.table);
    }
    let log = plain
        .sink()
        .read_table_blocking("t_log")
        .expect("read t_log");
    let ids: Vec<i64> = log
        .iter()
        .flat_map(|b| {
            let col = b
                .column_by_name("new_dts_sync_record_id")
                .expect("record id column");
            let col = col
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .expect("int64")
                .clone();
            col.values().to_vec()
        })
        .collect();
    assert_eq!(ids.len(), 5000 + 2 * 2000 + 1000, "every record once");
    // Each change one id, both records of an update the same one: 8,000
    // ids, consecutive from the first.
    let mut per_id = std::collections::BTreeMap::<i64, usize>::new();
    for id in ids {
        *per_id.entry(id).or_default() += 1;
    }
    assert_eq!(per_id.len(), 8000, "no id lost, none repeated across parts");
    let (first, last) = (per_id.keys().next(), per_id.keys().last());
    assert_eq!(last.zip(first).map(|(l, f)| l - f), Some(7999));
    assert_eq!(per_id.values().filter(|&&n| n == 2).count(), 2000);
    assert!(per_id.values().all(|&n| n <= 2));
    conn.query_drop(format!("DROP DATABASE {DB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}
