//! The replication stream against the sandbox MariaDB: a workload of
//! multi-statement transactions while the dump connection is killed from
//! the server side several times; every committed transaction must arrive
//! exactly once, in order, whole.

use binlog_parser::EventType;
use mysql_source::replication::{BinlogStream, Event, ReplicationOptions, StartPosition};
use mysql_source::{ConnectOptions, Error, RawConn};
use std::collections::BTreeMap;
use std::time::Duration;

const DB: &str = "mysql_source_repl";

fn sandbox() -> ConnectOptions {
    ConnectOptions::from_url(&sync_testkit::mysql_url()).expect("sandbox URL")
}

/// A server id no other test or engineer uses at the same time.
fn replica_id(salt: u32) -> u32 {
    3_000_000 + (std::process::id() % 100_000) * 10 + salt
}

async fn position(conn: &mut RawConn) -> mysql_source::BinlogPosition {
    let rows = conn
        .query_strings("SHOW MASTER STATUS")
        .await
        .expect("status");
    mysql_source::BinlogPosition {
        file: rows[0][0].clone().expect("file"),
        position: rows[0][1].clone().expect("pos").parse().expect("number"),
    }
}

/// The ANNOTATE_ROWS statement text of an event (MariaDB), if it is one.
fn annotate(ev: &Event) -> Option<String> {
    (ev.event_type == EventType::AnnotateRows)
        .then(|| String::from_utf8_lossy(&ev.bytes[19..ev.bytes.len() - 4]).into_owned())
}

/// `/* trx 12 stmt 3 */` → (12, 3).
fn marker(sql: &str, table: &str) -> Option<(u32, u32)> {
    if !sql.contains(table) {
        return None;
    }
    let start = sql.find("/* trx ")? + 7;
    let rest = &sql[start..];
    let mut it = rest.split_whitespace();
    let trx = it.next()?.parse().ok()?;
    let _ = it.next()?; // "stmt"
    let stmt = it.next()?.parse().ok()?;
    Some((trx, stmt))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_dump_connections_lose_and_repeat_nothing() {
    let table = format!("kill_{}", std::process::id());
    let mut admin = RawConn::connect(&sandbox()).await.expect("connect");
    admin
        .query_drop(&format!("CREATE DATABASE IF NOT EXISTS {DB}"))
        .await
        .expect("db");
    admin
        .query_drop(&format!(
            "CREATE TABLE IF NOT EXISTS {DB}.{table} (id INT PRIMARY KEY, v INT NOT NULL, s VARCHAR(200))"
        ))
        .await
        .expect("table");
    admin
        .query_drop(&format!("DELETE FROM {DB}.{table}"))
        .await
        .expect("clean");
    let start = position(&mut admin).await;

    const TRX: u32 = 120;
    const STMTS: u32 = 4;
    let writer_table = table.clone();
    let writer = tokio::spawn(async move {
        let mut w = RawConn::connect(&sandbox()).await.expect("writer");
        for i in 0..TRX {
            w.query_drop("BEGIN").await.expect("begin");
            let base = i as i64 * 10;
            // Enough rows now and then to split a transaction over many events.
            let many = if i.is_multiple_of(10) { 400 } else { 3 };
            let values: Vec<String> = (0..many)
                .map(|k| format!("({}, {k}, REPEAT('x', 150))", base * 1000 + k))
                .collect();
            let t = &writer_table;
            w.query_drop(&format!(
                "INSERT INTO {DB}.{t} VALUES {} /* trx {i} stmt 0 */",
                values.join(",")
            ))
            .await
            .expect("insert");
            w.query_drop(&format!(
                "UPDATE {DB}.{t} SET v = v + 1 WHERE id = {} /* trx {i} stmt 1 */",
                base * 1000
            ))
            .await
            .expect("update");
            w.query_drop(&format!(
                "DELETE FROM {DB}.{t} WHERE id = {} /* trx {i} stmt 2 */",
                base * 1000 + 1
            ))
            .await
            .expect("delete");
            w.query_drop(&format!(
                "UPDATE {DB}.{t} SET s = 'y' WHERE id >= {} /* trx {i} stmt 3 */",
                base * 1000
            ))
            .await
            .expect("update many");
            w.query_drop("COMMIT").await.expect("commit");
            if i.is_multiple_of(7) {
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }
        w.close().await.expect("close");
    });

    let mut opts = ReplicationOptions::new(sandbox(), replica_id(1), StartPosition::File(start));
    opts.heartbeat = Some(Duration::from_secs(1));
    let mut stream = BinlogStream::start(opts).await.expect("start stream");

    // Per transaction (delimited by the stream's boundaries): the markers seen.
    let mut trxs: Vec<Vec<(u32, u32)>> = Vec::new();
    let mut current: Vec<(u32, u32)> = Vec::new();
    let mut last_seq: Option<u64> = None;
    let mut seen_pos: BTreeMap<(String, u32), usize> = BTreeMap::new();
    let mut file = String::new();
    let mut events = 0usize;
    let mut kills = 0u32;
    let mut in_trx_kills = 0u32;
    let mut last_killed = None;
    let mut forced = 0u32;
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(60), stream.next_event())
            .await
            .expect("no event for 60 s")
            .expect("stream error")
            .expect("blocking stream never ends");
        events += 1;
        if ev.event_type == EventType::Rotate {
            // ROTATE: the file of the following events.
            file = String::from_utf8_lossy(&ev.bytes[27..ev.bytes.len() - 4]).into_owned();
        }
        if ev.log_pos != 0 {
            *seen_pos.entry((file.clone(), ev.log_pos)).or_default() += 1;
        }
        if ev.event_type == EventType::MariadbGtid {
            let seq = u64::from_le_bytes(ev.bytes[19..27].try_into().expect("8"));
            if let Some(prev) = last_seq {
                assert!(
                    seq > prev,
                    "GTID seq {seq} after {prev}: repeated or out of order"
                );
            }
            last_seq = Some(seq);
        }
        if let Some(m) = annotate(&ev).and_then(|sql| marker(&sql, &table)) {
            current.push(m);
        }
        if ev.ends_transaction {
            if !current.is_empty() {
                trxs.push(std::mem::take(&mut current));
            }
            if trxs.last().is_some_and(|t| t[0].0 == TRX - 1) {
                break;
            }
        }
        // Kill the dump connection from the server side now and then, often
        // in the middle of a transaction.
        // (The stream may still be draining its buffer after a kill: wait for
        // the new connection before the next one.)
        let id = stream.connection_id().expect("connected");
        if events.is_multiple_of(211) && kills < 6 && Some(id) != last_killed {
            admin
                .query_drop(&format!("KILL CONNECTION {id}"))
                .await
                .expect("kill");
            last_killed = Some(id);
            kills += 1;
            if !current.is_empty() {
                in_trx_kills += 1;
                // The killed connection usually still holds the rest of the
                // transaction in its buffers, so the stream would notice the
                // kill only at a later boundary. Every other time, also drop
                // those buffered bytes: the stream must then resume from the
                // transaction's start and skip what it already handed out.
                if !in_trx_kills.is_multiple_of(2) {
                    stream.reconnect_now().await.expect("reconnect");
                    forced += 1;
                }
            }
        }
    }
    writer.await.expect("writer");
    let checkpoint = stream.checkpoint().clone();
    // The last kill may not have been noticed before the workload ended.
    let unnoticed = u32::from(stream.connection_id() == last_killed);
    let reconnects = stream.reconnects() + unnoticed;
    let dropped = stream.dropped_replays();
    let closed = stream.close().await;
    // A last kill that went unnoticed left a dead connection: saying goodbye
    // on it may fail (broken pipe); on a live one it must not.
    if unnoticed == 0 {
        closed.expect("close");
    }

    assert!(
        kills >= 4,
        "the workload was long enough for several kills ({events} events)"
    );
    assert!(
        in_trx_kills >= 1,
        "at least one kill hit the middle of a transaction"
    );
    assert!(
        reconnects >= kills,
        "every kill led to one reconnect: {reconnects} < {kills}"
    );
    assert!(forced >= 1);
    assert!(
        dropped > 0,
        "a kill inside a transaction made the server re-send events the stream dropped"
    );
    // Exactly once, in order, whole.
    assert_eq!(
        trxs.len(),
        TRX as usize,
        "one group per committed transaction"
    );
    for (i, t) in trxs.iter().enumerate() {
        let want: Vec<(u32, u32)> = (0..STMTS).map(|s| (i as u32, s)).collect();
        assert_eq!(t, &want, "transaction {i} arrived whole and once");
    }
    let dup: Vec<_> = seen_pos.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "events delivered twice: {dup:?}");
    // The checkpoint carries the GTID of the last transaction.
    assert!(
        checkpoint
            .gtid
            .to_string()
            .contains(&format!("-{}", last_seq.expect("gtids"))),
        "{checkpoint:?}"
    );
}

#[tokio::test]
async fn gtid_start_resumes_after_the_given_transaction() {
    let table = format!("gtid_{}", std::process::id());
    let mut admin = RawConn::connect(&sandbox()).await.expect("connect");
    admin
        .query_drop(&format!("CREATE DATABASE IF NOT EXISTS {DB}"))
        .await
        .expect("db");
    admin
        .query_drop(&format!(
            "CREATE TABLE IF NOT EXISTS {DB}.{table} (id INT PRIMARY KEY)"
        ))
        .await
        .expect("table");
    admin
        .query_drop(&format!(
            "INSERT INTO {DB}.{table} VALUES (1) /* trx 0 stmt 0 */"
        ))
        .await
        .expect("first");
    let gtid = admin
        .query_strings("SELECT @@gtid_binlog_pos")
        .await
        .expect("gtid")[0][0]
        .clone()
        .expect("pos");
    admin
        .query_drop(&format!(
            "INSERT INTO {DB}.{table} VALUES (2) /* trx 1 stmt 0 */"
        ))
        .await
        .expect("second");

    let start = StartPosition::MariadbGtid(
        mysql_source::gtid::MariadbGtidPos::parse(&gtid).expect("parse"),
    );
    let mut opts = ReplicationOptions::new(sandbox(), replica_id(2), start);
    opts.stop_at_end = true;
    let mut stream = BinlogStream::start(opts).await.expect("start");
    let mut markers = Vec::new();
    while let Some(ev) = stream.next_event().await.expect("event") {
        if let Some(m) = annotate(&ev).and_then(|sql| marker(&sql, &table)) {
            markers.push(m);
        }
    }
    assert_eq!(markers, vec![(1, 0)], "only the transaction after {gtid}");
    assert_ne!(
        stream.checkpoint().gtid.to_string(),
        gtid,
        "the checkpoint moved past the start"
    );
    // The server hangs up after the dump: closing a finished stream is clean.
    stream.close().await.expect("close after the end");
}

#[tokio::test]
async fn a_clashing_server_id_is_refused() {
    let mut admin = RawConn::connect(&sandbox()).await.expect("connect");
    let start = StartPosition::File(position(&mut admin).await);
    // The source's own id.
    let own: u32 = admin.query_strings("SELECT @@server_id").await.expect("id")[0][0]
        .clone()
        .expect("id")
        .parse()
        .expect("n");
    let err = BinlogStream::start(ReplicationOptions::new(sandbox(), own, start.clone()))
        .await
        .expect_err("own id");
    assert!(matches!(err, Error::ServerIdInUse { .. }), "{err:?}");
    // Another live replica's id.
    let id = replica_id(3);
    let mut first = BinlogStream::start(ReplicationOptions::new(sandbox(), id, start.clone()))
        .await
        .expect("first");
    // COM_REGISTER_SLAVE has completed: the id is listed in SHOW SLAVE HOSTS.
    let err = BinlogStream::start(ReplicationOptions::new(sandbox(), id, start.clone()))
        .await
        .err();
    let err = err.expect("the second replica with the same id is refused");
    assert!(
        matches!(err, Error::ServerIdInUse { server_id, .. } if server_id == id),
        "{err:?}"
    );
    let _ = tokio::time::timeout(Duration::from_millis(200), first.next_event()).await;
    first.close().await.expect("close");
}

#[tokio::test]
async fn a_user_with_only_the_privileges_dts_asks_for_streams() {
    // SELECT, REPLICATION SLAVE, REPLICATION CLIENT: on MariaDB 10.5+ such a
    // user may not run SHOW SLAVE HOSTS (REPLICATION MASTER ADMIN), which
    // once failed the stream's start with a misleading syntax error.
    let table = format!("grants_{}", std::process::id());
    let mut admin = RawConn::connect(&sandbox()).await.expect("connect");
    for sql in [
        format!("CREATE DATABASE IF NOT EXISTS {DB}"),
        format!("CREATE TABLE IF NOT EXISTS {DB}.{table} (id INT PRIMARY KEY)"),
        "CREATE USER IF NOT EXISTS 'repl_dts_only'@'%' IDENTIFIED BY 'dts-pass'".to_owned(),
        "GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl_dts_only'@'%'"
            .to_owned(),
    ] {
        admin.query_drop(&sql).await.expect("setup");
    }
    let start = StartPosition::File(position(&mut admin).await);
    let mut user = sandbox();
    user.user = "repl_dts_only".into();
    user.password = Some("dts-pass".into());
    let mut stream = BinlogStream::start(ReplicationOptions::new(user, replica_id(5), start))
        .await
        .expect("a replica with the DTS privileges starts streaming");
    admin
        .query_drop(&format!(
            "INSERT INTO {DB}.{table} VALUES (1) /* trx 0 stmt 0 */"
        ))
        .await
        .expect("write");
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let ev = stream.next_event().await.expect("event").expect("blocking");
            if annotate(&ev).and_then(|sql| marker(&sql, &table)).is_some() {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "the insert arrived on the stream");
    stream.close().await.expect("close");
    admin
        .query_drop(&format!("DROP TABLE {DB}.{table}"))
        .await
        .expect("drop");
}

#[tokio::test]
async fn heartbeats_keep_an_idle_stream_alive() {
    let table = format!("idle_{}", std::process::id());
    let mut admin = RawConn::connect(&sandbox()).await.expect("connect");
    admin
        .query_drop(&format!("CREATE DATABASE IF NOT EXISTS {DB}"))
        .await
        .expect("db");
    admin
        .query_drop(&format!(
            "CREATE TABLE IF NOT EXISTS {DB}.{table} (id INT PRIMARY KEY)"
        ))
        .await
        .expect("table");
    let start = position(&mut admin).await;
    let mut opts = ReplicationOptions::new(sandbox(), replica_id(4), StartPosition::File(start));
    // Read timeout = 3 heartbeats + 5 s = 8 s: silence longer than that
    // would count as a dead connection, heartbeats prevent it.
    opts.heartbeat = Some(Duration::from_secs(1));
    let mut stream = BinlogStream::start(opts).await.expect("stream");
    // Drain what is there, then stay idle for longer than the read timeout
    // (other engineers' writes may arrive meanwhile; they are read too).
    let idle_until = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::timeout_at(idle_until, stream.next_event())
        .await
        .is_ok()
    {}
    admin
        .query_drop(&format!(
            "REPLACE INTO {DB}.{table} VALUES (1) /* trx 0 stmt 0 */"
        ))
        .await
        .expect("write");
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let ev = stream.next_event().await.expect("event").expect("blocking");
            if annotate(&ev).and_then(|sql| marker(&sql, &table)).is_some() {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "the write after the idle period arrived");
    assert_eq!(
        stream.reconnects(),
        0,
        "no read timeout fired: the server sent heartbeats"
    );
    stream.close().await.expect("close");
}
