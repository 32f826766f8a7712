//! Topologies on real servers: a failover to a promoted replica (resume by
//! GTID), one source into two destinations, two sources into one.

use crate::common::{caught_up, connect};
use mysql_async::prelude::Queryable;
use std::path::Path;
use sync_core::config::TaskConfig;
use sync_core::machine::Phase;
use sync_core::run::TaskRunner;
use sync_core::sink::local::LocalWarehouse;
use sync_testkit::PrivateServer;

fn runner(source: &str, objects: &str, dir: &Path, server_id: u32) -> TaskRunner<LocalWarehouse> {
    let text = format!(
        "[source]\n{source}\nserver_id = {server_id}\n\
         [destination]\nkind = \"local\"\npath = \"{}\"\n\
         [objects]\n{objects}\n\
         [sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\nstate_dir = \"{}\"\nbatch_rows = 30\n",
        dir.join("warehouse").display(),
        dir.join(format!("state-{server_id}")).display()
    );
    let cfg: TaskConfig = sync_core::taskfile::parse(&text, "task.toml").expect("task file");
    TaskRunner::new(cfg, LocalWarehouse::new(dir.join("warehouse"))).expect("runner")
}

async fn assert_verified(r: &TaskRunner<LocalWarehouse>) {
    let reports = r.verify().await.expect("verify");
    assert!(!reports.is_empty());
    for rep in reports {
        assert!(rep.is_equal(), "{} differs: {rep:?}", rep.table);
    }
}

/// Every `record_id` of a `t_log`, with how many records carry it.
fn record_ids(r: &TaskRunner<LocalWarehouse>, log: &str) -> std::collections::BTreeMap<i64, usize> {
    let mut out = std::collections::BTreeMap::new();
    for b in r.sink().read_table_blocking(log).expect("t_log") {
        let ids = b
            .column_by_name("new_dts_sync_record_id")
            .expect("record id")
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .expect("int64")
            .clone();
        for id in ids.values() {
            *out.entry(*id).or_default() += 1;
        }
    }
    out
}

/// The source's GTID position, waited for on `replica`.
async fn replica_catches_up(primary: &mut mysql_async::Conn, replica: &mut mysql_async::Conn) {
    let pos: String = primary
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .expect("gtid pos")
        .expect("a row");
    let waited: Option<i64> = replica
        .query_first(format!("SELECT MASTER_GTID_WAIT('{pos}', 120)"))
        .await
        .expect("wait");
    assert_eq!(waited, Some(0), "the replica reached {pos}");
}

/// 12 changes on `fo.t` (4 inserts, 4 updates, 4 deletes) from id `base`.
fn changes(base: u32) -> String {
    format!(
        "INSERT INTO fo.t VALUES ({a}, 1), ({b}, 2), ({c}, 3), ({d}, 4);
         UPDATE fo.t SET v = v + 100 WHERE id BETWEEN {a} AND {d};
         DELETE FROM fo.t WHERE id BETWEEN {e} AND {f};",
        a = base,
        b = base + 1,
        c = base + 2,
        d = base + 3,
        e = base / 100,
        f = base / 100 + 3,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_follows_a_promoted_replica_by_gtid() {
    let primary = PrivateServer::start(&["server-id=11"]).expect("primary");
    let replica = PrivateServer::start(&["server-id=12"]).expect("replica");
    let mut a = connect(&primary.url()).await;
    let mut b = connect(&replica.url()).await;
    // The replica starts from the primary's position now (both servers
    // wrote their own bootstrap statements, which must not replay).
    let start: String = a
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .expect("gtid pos")
        .expect("a row");
    b.query_drop(format!(
        "RESET MASTER; SET GLOBAL gtid_slave_pos = '{start}';
         CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'root', \
         MASTER_USE_GTID = slave_pos; START SLAVE",
        primary.port()
    ))
    .await
    .expect("replication");
    a.query_drop(
        "CREATE DATABASE fo; CREATE TABLE fo.t (id INT PRIMARY KEY, v INT);
         INSERT INTO fo.t SELECT seq, seq FROM fo.seq_1_to_100",
    )
    .await
    .expect("primary data");
    replica_catches_up(&mut a, &mut b).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let source = format!(
        "url = \"{}\"\nfailover_urls = [\"{}\"]\nresume = \"gtid\"",
        primary.url(),
        replica.url()
    );
    let task = runner(&source, "include = [\"fo.*\"]", dir.path(), 7171);
    task.run(&caught_up())
        .await
        .expect("full sync on the primary");
    a.query_drop(changes(1000)).await.expect("first changes");
    task.run(&caught_up())
        .await
        .expect("catch up on the primary");

    // Changes the task has not read yet reach the replica; the primary dies.
    a.query_drop(changes(2000)).await.expect("second changes");
    replica_catches_up(&mut a, &mut b).await;
    let _ = a.query_drop("SHUTDOWN").await;
    drop(a);
    b.query_drop("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0")
        .await
        .expect("promote");
    b.query_drop(changes(3000))
        .await
        .expect("changes on the new primary");

    let state = task
        .run(&caught_up())
        .await
        .expect("catch up on the replica");
    let Phase::Incremental(inc) = &state.phase else {
        panic!("{:?}", state.phase)
    };
    assert!(
        inc.position
            .gtid
            .as_deref()
            .is_some_and(|g| g.contains("0-12-")),
        "{inc:?}"
    );
    assert_eq!(
        task.source().port,
        replica.port(),
        "the task moved to the replica"
    );
    assert_verified(&task).await;
    // Three rounds of 4 inserts, 4 updates (two records) and 4 deletes:
    // 36 ids, 48 records, none written twice.
    let ids = record_ids(&task, "t_log");
    assert_eq!(ids.len(), 36, "{ids:?}");
    assert_eq!(ids.values().sum::<usize>(), 48);
    assert!(ids.values().all(|&n| n <= 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_feeds_two_destinations_and_two_sources_one() {
    let shared = sync_testkit::mysql_url();
    let other = PrivateServer::start(&["server-id=21"]).expect("second source");
    let setup = |db: &str| {
        format!(
            "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};
             CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT);
             INSERT INTO {db}.t SELECT seq, seq FROM {db}.seq_1_to_50"
        )
    };
    let mut s1 = connect(&shared).await;
    let mut s2 = connect(&other.url()).await;
    s1.query_drop(setup("topo")).await.expect("source 1");
    s2.query_drop(setup("topo")).await.expect("source 2");

    // One to many: two tasks on one source, distinct server ids, own warehouses.
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    let url1 = format!("url = \"{shared}\"");
    let fan_a = runner(&url1, "include = [\"topo.*\"]", one.path(), 7181);
    let fan_b = runner(&url1, "include = [\"topo.*\"]", two.path(), 7182);
    // Many to one: both sources into one warehouse, renamed apart, tagged ids.
    let joint = tempfile::tempdir().expect("tempdir");
    let into = |db_prefix: &str| {
        format!("include = [\"topo.*\"]\n[objects.databases]\ntopo = \"{db_prefix}\"")
    };
    let from1 = runner(
        &format!("{url1}\nrecord_id_tag = 1"),
        &into("east"),
        joint.path(),
        7183,
    );
    let from2 = runner(
        &format!("url = \"{}\"\nrecord_id_tag = 2", other.url()),
        &into("west"),
        joint.path(),
        7184,
    );
    for r in [&fan_a, &fan_b, &from1, &from2] {
        r.run(&caught_up()).await.expect("full");
    }
    let edit = "UPDATE topo.t SET v = -v WHERE id % 5 = 0; DELETE FROM topo.t WHERE id > 45; \
                INSERT INTO topo.t VALUES (100, 100)";
    s1.query_drop(edit).await.expect("changes 1");
    s2.query_drop(edit).await.expect("changes 2");
    // The fan-out tasks stream concurrently from the one source.
    let opts = caught_up();
    let (a, b) = tokio::join!(fan_a.run(&opts), fan_b.run(&opts));
    a.expect("fan-out a");
    b.expect("fan-out b");
    from1.run(&caught_up()).await.expect("many-to-one 1");
    from2.run(&caught_up()).await.expect("many-to-one 2");
    for r in [&fan_a, &fan_b, &from1, &from2] {
        assert_verified(r).await;
    }
    let east = record_ids(&from1, "east_t_log");
    let west = record_ids(&from2, "west_t_log");
    assert_eq!(east.len(), 16, "10 updates, 5 deletes, 1 insert");
    assert_eq!(west.len(), 16);
    assert!(east.keys().all(|id| id >> 55 == 1), "{east:?}");
    assert!(west.keys().all(|id| id >> 55 == 2), "{west:?}");
    s1.query_drop("DROP DATABASE topo").await.expect("drop");
}
