//! A transaction larger than `max_batch_records` is committed in parts, and
//! a task that fails between parts — before a part lands, or after it landed
//! but before the checkpoint moved — resumes inside the transaction without
//! losing or repeating a record.
//!
//! XA transactions land as the source decides them: a prepared branch's
//! rows only at its `XA COMMIT` (also when that comes after a restart, a
//! crash and a binlog rotation, and in parts when the branch is large),
//! never after `XA ROLLBACK`; `XA COMMIT … ONE PHASE` is an ordinary
//! transaction; the commit of a branch prepared before the task started
//! stops the task.

use crate::common::{caught_up, connect};
use mysql_async::prelude::Queryable;
use std::sync::atomic::{AtomicUsize, Ordering};
use sync_core::config::TaskConfig;
use sync_core::machine::{Phase, TaskState};
use sync_core::run::TaskRunner;
use sync_core::sink::local::LocalWarehouse;
use sync_core::sink::{Sink, TableBatch, TableDef};
use sync_core::{Error, Result};

const DB: &str = "core_big_txn";

fn config(url: &str, dir: &std::path::Path) -> TaskConfig {
    config_for(url, dir, DB, 7151)
}

fn config_for(url: &str, dir: &std::path::Path, db: &str, server_id: u32) -> TaskConfig {
    toml::from_str(&format!(
        r#"
        [source]
        url = "{url}"
        server_id = {server_id}
        [destination]
        kind = "local"
        path = "{wh}"
        [objects]
        include = ["{db}.*"]
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
        let injected = || Error::Destination(format!("injected failure of commit {n} ({unit})"));
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
    let ids = record_ids(plain.sink());
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

/// The `record_id` of every `t_log` record.
fn record_ids(wh: &LocalWarehouse) -> Vec<i64> {
    let log = wh.read_table_blocking("t_log").expect("read t_log");
    log.iter()
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
        .collect()
}

/// Each change one id, both records of an update the same one, no id twice.
fn assert_ids_once(ids: &[i64], changes: usize, updates: usize) {
    let mut per_id = std::collections::BTreeMap::<i64, usize>::new();
    for id in ids {
        *per_id.entry(*id).or_default() += 1;
    }
    assert_eq!(per_id.len(), changes, "one id per change: {per_id:?}");
    assert_eq!(per_id.values().filter(|&&n| n == 2).count(), updates);
    assert!(per_id.values().all(|&n| n <= 2), "an id twice: {per_id:?}");
}

/// Rolls back branches a failed earlier run of a test left prepared (they
/// would hold their locks).
async fn forget_branches(conn: &mut mysql_async::Conn, xids: &[&str]) {
    for xid in xids {
        let _ = conn.query_drop(format!("XA ROLLBACK '{xid}'")).await;
    }
}

/// A fresh database `db` with table `t`, and a task over it that has run
/// its schema and (empty) full phases; `xids` are the test's branches.
async fn xa_task(
    url: &str,
    dir: &std::path::Path,
    db: &str,
    server_id: u32,
    xids: &[&str],
) -> (mysql_async::Conn, TaskConfig, TaskRunner<LocalWarehouse>) {
    let mut conn = connect(url).await;
    forget_branches(&mut conn, xids).await;
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};
         CREATE TABLE {db}.t (id INT PRIMARY KEY, a INT NOT NULL)"
    ))
    .await
    .expect("setup");
    let cfg = config_for(url, dir, db, server_id);
    let runner =
        TaskRunner::new(cfg.clone(), LocalWarehouse::new(dir.join("warehouse"))).expect("runner");
    runner
        .run(&caught_up())
        .await
        .expect("schema and empty full");
    (conn, cfg, runner)
}

/// Prepares XA branch `xid` running `dml` on a connection of its own,
/// which then disconnects: the branch stays prepared for another session
/// to decide.
async fn prepare_branch(url: &str, xid: &str, dml: &str) {
    let mut c = connect(url).await;
    c.query_drop(format!(
        "XA START '{xid}'; {dml}; XA END '{xid}'; XA PREPARE '{xid}'"
    ))
    .await
    .expect("xa prepare");
    c.disconnect().await.expect("disconnect");
}

/// The xids of the held branches with changes of this task's tables (the
/// tests share the sandbox's binlog: other tests' branches are held too,
/// with none).
fn held(inc: &sync_core::machine::Incremental) -> Vec<&str> {
    inc.xa
        .iter()
        .filter(|b| b.row_events > 0)
        .map(|b| b.xid.as_str())
        .collect()
}

async fn assert_equal(runner: &TaskRunner<LocalWarehouse>) {
    for r in runner.verify().await.expect("verify") {
        assert!(r.is_equal(), "{} differs from the source: {r:?}", r.table);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xa_branch_rolled_back_after_prepare_never_lands() {
    const XDB: &str = "core_xa_rollback";
    let url = sync_testkit::mysql_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut conn, cfg, runner) = xa_task(&url, dir.path(), XDB, 7152, &["rb-1"]).await;
    prepare_branch(
        &url,
        "rb-1",
        &format!("INSERT INTO {XDB}.t VALUES (1, 1), (2, 2)"),
    )
    .await;
    conn.query_drop(format!("INSERT INTO {XDB}.t VALUES (3, 3)"))
        .await
        .expect("insert");
    // The batch past the PREPARE fails to land, as a crash would stop
    // it: the checkpoint stays before the branch, whose pending end lists it.
    let state = run_failing(&cfg, dir.path(), Fault::BeforeLanding(1)).await;
    let inc = incremental(&state);
    assert!(held(inc).is_empty(), "not at the checkpoint: {:?}", inc.xa);
    let pending = inc.pending.as_ref().expect("pending batch");
    assert!(
        pending
            .xa
            .iter()
            .any(|b| b.xid == "X'72622D31',X'',1" && b.row_events > 0),
        "{pending:?}"
    );
    // Read while the branch is prepared: nothing of it lands yet.
    let state = runner.run(&caught_up()).await.expect("run");
    assert_eq!(
        held(incremental(&state)),
        ["X'72622D31',X'',1"],
        "the branch is held"
    );
    assert_eq!(record_ids(runner.sink()).len(), 1, "only the plain insert");
    conn.query_drop("XA ROLLBACK 'rb-1'")
        .await
        .expect("rollback");
    conn.query_drop(format!("UPDATE {XDB}.t SET a = 30 WHERE id = 3"))
        .await
        .expect("update");
    let state = runner.run(&caught_up()).await.expect("run");
    let inc = incremental(&state);
    assert!(held(inc).is_empty(), "decided: {:?}", inc.xa);
    // Before, the branch's two inserts landed as if committed: rows 1 and
    // 2 were in the merged state but never in the source.
    assert_equal(&runner).await;
    let ids = record_ids(runner.sink());
    assert_eq!(ids.len(), 3, "insert 3 and its update: {ids:?}");
    assert_ids_once(&ids, 2, 1);
    let files: std::collections::BTreeSet<String> =
        std::fs::read_dir(dir.path().join("state").join("xa"))
            .expect("xa folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
    let listed: std::collections::BTreeSet<String> =
        inc.xa.iter().map(|b| b.file.clone()).collect();
    assert_eq!(files, listed, "the rolled back branch's file is gone");
    conn.query_drop(format!("DROP DATABASE {XDB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_xa_branch_lands_at_its_commit_after_restarts_crashes_and_a_rotation() {
    const XDB: &str = "core_xa_commit";
    let url = sync_testkit::mysql_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut conn, cfg, runner) = xa_task(&url, dir.path(), XDB, 7153, &["big-1"]).await;
    // 2,500 inserts and 500 updates: larger than `max_batch_records`
    // (1,000), so the commit lands in parts.
    prepare_branch(
        &url,
        "big-1",
        &format!(
            "INSERT INTO {XDB}.t SELECT seq, seq FROM {XDB}.seq_1_to_2500;
             UPDATE {XDB}.t SET a = -a WHERE id <= 500"
        ),
    )
    .await;
    conn.query_drop(format!("INSERT INTO {XDB}.t VALUES (5000, 1)"))
        .await
        .expect("insert");
    let state = runner
        .run(&caught_up())
        .await
        .expect("run past the prepare");
    let inc = incremental(&state);
    assert_eq!(held(inc), ["X'6269672D31',X'',1"], "held in the checkpoint");
    assert_eq!(
        record_ids(runner.sink()).len(),
        1,
        "prepared is not committed"
    );
    let progress = sync_core::status::read(&dir.path().join("state")).expect("progress");
    let report = progress.xa_prepared.expect("status shows the branch");
    assert_eq!(report.count, 1);
    assert!(report.oldest_since_unix > 0);
    // The source is as the task has it: a prepared branch is invisible.
    assert_equal(&runner).await;
    // A restart with nothing new still holds it.
    let state = TaskRunner::new(
        cfg.clone(),
        LocalWarehouse::new(dir.path().join("warehouse")),
    )
    .expect("runner")
    .run(&caught_up())
    .await
    .expect("idle restart");
    assert_eq!(held(incremental(&state)).len(), 1);

    // The commit comes in the next binlog file, from another session.
    conn.query_drop("FLUSH BINARY LOGS").await.expect("flush");
    conn.query_drop(format!("INSERT INTO {XDB}.t VALUES (5001, 1)"))
        .await
        .expect("insert");
    conn.query_drop("XA COMMIT 'big-1'").await.expect("commit");
    conn.query_drop(format!("DELETE FROM {XDB}.t WHERE id = 5000"))
        .await
        .expect("delete");
    // The second part fails before it lands: the checkpoint lies inside
    // the commit's group, the branch still held.
    let state = run_failing(&cfg, dir.path(), Fault::BeforeLanding(2)).await;
    let inc = incremental(&state);
    assert!(inc.position.within.is_some(), "inside the commit: {inc:?}");
    assert_eq!(held(inc).len(), 1, "still held until the commit is passed");
    // The next part lands and the run dies before the checkpoint moves.
    run_failing(&cfg, dir.path(), Fault::AfterLanding(1)).await;
    let done = runner.run(&caught_up()).await.expect("catch up");
    let inc = incremental(&done);
    assert!(inc.pending.is_none() && inc.position.within.is_none());
    assert!(held(inc).is_empty(), "decided: {:?}", inc.xa);
    let progress = sync_core::status::read(&dir.path().join("state")).expect("progress");
    assert_eq!(progress.xa_prepared, None);
    assert_equal(&runner).await;
    let ids = record_ids(runner.sink());
    // 1 + 2,500 + 2×500 + 1 + 1 records; 2,503 + 500 changes.
    assert_eq!(ids.len(), 1 + 2500 + 1000 + 1 + 1, "every record once");
    assert_ids_once(&ids, 1 + 2500 + 500 + 1 + 1, 500);
    conn.query_drop(format!("DROP DATABASE {XDB}"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_one_phase_is_ordinary_and_a_commit_of_an_unseen_branch_stops() {
    const XDB: &str = "core_xa_one";
    let url = sync_testkit::mysql_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = connect(&url).await;
    forget_branches(&mut conn, &["early-1", "early-2"]).await;
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {XDB}; CREATE DATABASE {XDB};
         CREATE TABLE {XDB}.u (id INT PRIMARY KEY);
         DROP DATABASE IF EXISTS {XDB}_other; CREATE DATABASE {XDB}_other;
         CREATE TABLE {XDB}_other.u (id INT PRIMARY KEY)"
    ))
    .await
    .expect("setup");
    // Prepared before the task exists: their rows are in no binlog the
    // task reads. One changes a synced table, the other one not.
    prepare_branch(&url, "early-1", &format!("INSERT INTO {XDB}.u VALUES (1)")).await;
    prepare_branch(
        &url,
        "early-2",
        &format!("INSERT INTO {XDB}_other.u VALUES (1)"),
    )
    .await;
    conn.query_drop(format!(
        "CREATE TABLE {XDB}.t (id INT PRIMARY KEY, a INT NOT NULL)"
    ))
    .await
    .expect("table t");
    let cfg = config_for(&url, dir.path(), XDB, 7154);
    let runner =
        TaskRunner::new(cfg, LocalWarehouse::new(dir.path().join("warehouse"))).expect("runner");
    runner.run(&caught_up()).await.expect("schema and full");
    conn.query_drop(format!(
        "XA START 'one-1'; INSERT INTO {XDB}.t VALUES (1, 1), (2, 2); XA END 'one-1';
         XA COMMIT 'one-1' ONE PHASE"
    ))
    .await
    .expect("one phase");
    let state = runner.run(&caught_up()).await.expect("run");
    assert!(held(incremental(&state)).is_empty());
    assert_equal(&runner).await;
    assert_ids_once(&record_ids(runner.sink()), 2, 0);

    // The branch that changed no synced table passes (its PREPARE is
    // found in the server's binlog).
    conn.query_drop("XA COMMIT 'early-2'")
        .await
        .expect("commit");
    let state = runner.run(&caught_up()).await.expect("passes");
    assert_equal(&runner).await;

    let before = incremental(&state).position.clone();
    conn.query_drop("XA COMMIT 'early-1'")
        .await
        .expect("commit");
    let err = runner
        .run(&caught_up())
        .await
        .expect_err("a commit of a branch never seen prepared stops the task");
    let text = err.to_string();
    assert!(
        matches!(&err, Error::XaUnknownBranch { xid, .. } if xid == "X'6561726C792D31',X'',1"),
        "{text}"
    );
    assert!(text.contains("mariadb-bin."), "names the position: {text}");
    assert!(
        text.contains(&format!("changed synced tables {XDB}.u")),
        "names what it changed: {text}"
    );
    let state = runner.state().expect("state").expect("checkpoint");
    let inc = incremental(&state);
    assert_eq!(
        (&inc.position.file, inc.position.position),
        (&before.file, before.position),
        "the checkpoint stays before the commit"
    );
    conn.query_drop(format!("DROP DATABASE {XDB}; DROP DATABASE {XDB}_other"))
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}
