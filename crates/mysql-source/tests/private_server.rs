//! Tests that need a server of their own: a purged binlog is a typed error,
//! never skipped (purging the shared sandbox's binlogs would take them away
//! from everyone else), and the stream rides out a server restart. Each test
//! starts a private MariaDB (own datadir, own port) with
//! `scripts/mysql-sandbox` and stops it afterwards.

use mysql_source::replication::{BinlogStream, ReplicationOptions, StartPosition};
use mysql_source::{BinlogPosition, ConnectOptions, Error, RawConn, TlsMode};
use std::path::{Path, PathBuf};
use std::process::Command;

struct PrivateServer {
    dir: tempfile::TempDir,
    port: u16,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mysql-sandbox")
}

impl PrivateServer {
    fn start(slot: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // A port unlikely to be taken by the shared sandbox or another run.
        let port = 34_000 + (std::process::id() % 1_000) as u16 * 2 + slot;
        let server = Self { dir, port };
        server.script("up");
        server
    }

    fn script(&self, cmd: &str) {
        let status = Command::new("bash")
            .arg(script())
            .arg(cmd)
            .env("SYNC_MYSQL_DIR", self.dir.path())
            .env("SYNC_MYSQL_PORT", self.port.to_string())
            .env("SYNC_MYSQL_SERVER_ID", "7")
            .status()
            .expect("run scripts/mysql-sandbox");
        assert!(status.success(), "scripts/mysql-sandbox {cmd} failed");
    }

    fn options(&self) -> ConnectOptions {
        let mut o = ConnectOptions::new("127.0.0.1", self.port, "root");
        o.tls = TlsMode::Disabled;
        o
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .env("SYNC_MYSQL_DIR", self.dir.path())
            .env("SYNC_MYSQL_PORT", self.port.to_string())
            .status();
    }
}

async fn master_status(conn: &mut RawConn) -> BinlogPosition {
    let rows = conn
        .query_strings("SHOW MASTER STATUS")
        .await
        .expect("status");
    BinlogPosition {
        file: rows[0][0].clone().expect("file"),
        position: rows[0][1].clone().expect("pos").parse().expect("n"),
    }
}

#[tokio::test]
async fn resuming_into_a_purged_binlog_is_a_typed_error() {
    let server = PrivateServer::start(0);
    let mut admin = RawConn::connect(&server.options()).await.expect("connect");
    admin
        .query_drop("CREATE DATABASE IF NOT EXISTS purge_test")
        .await
        .expect("db");
    admin
        .query_drop("CREATE TABLE IF NOT EXISTS purge_test.t (id INT PRIMARY KEY)")
        .await
        .expect("table");
    let old_gtid = admin
        .query_strings("SELECT @@gtid_binlog_pos")
        .await
        .expect("gtid")[0][0]
        .clone();
    let first = master_status(&mut admin).await;
    admin
        .query_drop("INSERT INTO purge_test.t VALUES (1)")
        .await
        .expect("insert");

    // Follow the binlog to its end and keep the checkpoint, as a sync would.
    let mut opts =
        ReplicationOptions::new(server.options(), 101, StartPosition::File(first.clone()));
    opts.stop_at_end = true;
    let mut stream = BinlogStream::start(opts.clone()).await.expect("stream");
    let mut events = 0;
    while stream.next_event().await.expect("event").is_some() {
        events += 1;
    }
    assert!(events > 0);
    let checkpoint = stream.checkpoint().clone();
    assert_eq!(checkpoint.position.file, first.file);
    stream.close().await.expect("close");

    // Rotate twice, write on, purge everything before the current file.
    admin.query_drop("FLUSH BINARY LOGS").await.expect("flush");
    admin
        .query_drop("INSERT INTO purge_test.t VALUES (2)")
        .await
        .expect("insert");
    admin.query_drop("FLUSH BINARY LOGS").await.expect("flush");
    let current = master_status(&mut admin).await;
    // The server keeps files it still needs for crash recovery (the binlog
    // checkpoint trails InnoDB's log flush, once a second here): retry.
    let mut purged = false;
    for _ in 0..60 {
        admin
            .query_drop(&format!("PURGE BINARY LOGS TO '{}'", current.file))
            .await
            .expect("purge");
        let logs = admin.query_strings("SHOW BINARY LOGS").await.expect("logs");
        if logs
            .iter()
            .all(|r| r[0].as_deref().is_some_and(|f| f >= current.file.as_str()))
        {
            purged = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(purged, "the old binlogs were purged");

    // Resume from the checkpoint: the file is gone.
    opts.start = StartPosition::File(checkpoint.position.clone());
    let err = first_error(opts.clone()).await;
    match &err {
        Error::BinlogPurged { file, message } => {
            assert_eq!(file, &checkpoint.position.file);
            assert!(!message.is_empty());
        }
        other => panic!("expected BinlogPurged, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&checkpoint.position.file) && text.contains("snapshot"),
        "{text}"
    );

    // The same from a GTID position that only the purged files held.
    {
        let g = old_gtid
            .filter(|g| !g.is_empty())
            .expect("the DDL above logged GTIDs");
        let start = StartPosition::MariadbGtid(
            mysql_source::gtid::MariadbGtidPos::parse(&g).expect("gtid"),
        );
        let mut o = ReplicationOptions::new(server.options(), 102, start);
        o.stop_at_end = true;
        let err = first_error(o).await;
        assert!(matches!(err, Error::BinlogPurged { .. }), "{err:?}");
    }
    admin.close().await.expect("close");
}

/// Starts a non-blocking dump and reads it to the end: the error it must give.
async fn first_error(opts: ReplicationOptions) -> Error {
    let mut stream = match BinlogStream::start(opts).await {
        Ok(s) => s,
        Err(e) => return e,
    };
    loop {
        match stream.next_event().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!(
                "the dump ended without an error: the purged binlog was skipped {:?}",
                stream.checkpoint()
            ),
            Err(e) => return e,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_rides_out_a_server_restart() {
    let server = PrivateServer::start(1);
    let mut admin = RawConn::connect(&server.options()).await.expect("connect");
    admin
        .query_drop("CREATE DATABASE IF NOT EXISTS restart_test")
        .await
        .expect("db");
    admin
        .query_drop("CREATE TABLE IF NOT EXISTS restart_test.t (id INT PRIMARY KEY)")
        .await
        .expect("table");
    let start = master_status(&mut admin).await;
    for i in 0..20 {
        admin
            .query_drop(&format!(
                "INSERT INTO restart_test.t VALUES ({i}) /* trx {i} */"
            ))
            .await
            .expect("insert");
    }
    let mut opts = ReplicationOptions::new(server.options(), 103, StartPosition::File(start));
    opts.heartbeat = Some(std::time::Duration::from_secs(1));
    opts.reconnect.max_attempts = 60;
    opts.reconnect.max_backoff = std::time::Duration::from_millis(500);
    let mut stream = BinlogStream::start(opts).await.expect("stream");
    let mut seen = Vec::new();
    let mut restarted = false;
    while seen.len() < 40 {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(60), stream.next_event())
            .await
            .expect("an event within 60 s")
            .expect("the stream survives")
            .expect("blocking stream");
        if ev.event_type == binlog_parser::EventType::AnnotateRows {
            let sql = String::from_utf8_lossy(&ev.bytes[19..ev.bytes.len() - 4]).into_owned();
            if let Some(i) = sql
                .split("/* trx ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<u32>().ok())
            {
                seen.push(i);
            }
        }
        if seen.len() == 10 && !restarted {
            // Stop the server under the stream, write more after it is back.
            admin.close().await.expect("close");
            server.script("down");
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
            server.script("up");
            admin = RawConn::connect(&server.options())
                .await
                .expect("reconnect admin");
            for i in 20..40 {
                admin
                    .query_drop(&format!(
                        "INSERT INTO restart_test.t VALUES ({i}) /* trx {i} */"
                    ))
                    .await
                    .expect("insert");
            }
            restarted = true;
        }
    }
    assert_eq!(
        seen,
        (0..40).collect::<Vec<u32>>(),
        "every transaction once, in order, across the restart"
    );
    assert!(stream.reconnects() >= 1, "the restart forced a reconnect");
    stream.close().await.expect("close");
    admin.close().await.expect("close");
}

/// Reads until the transaction marked `/* trx {n} */` has ended (its XID).
async fn read_through(stream: &mut BinlogStream, n: u32) {
    let mut inside = false;
    loop {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(90), stream.next_event())
            .await
            .expect("an event within 90 s")
            .expect("the stream survives")
            .expect("blocking stream");
        if ev.event_type == binlog_parser::EventType::AnnotateRows {
            let sql = String::from_utf8_lossy(&ev.bytes[19..ev.bytes.len() - 4]).into_owned();
            inside = sql.contains(&format!("/* trx {n} */"));
        }
        if inside && ev.ends_transaction {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_idle_at_the_end_of_a_binlog_follows_a_restarted_server_into_the_next() {
    // Caught up and idle, the stream has delivered the last event of its
    // file; the restarted server (cleanly stopped or killed) writes a new
    // file, and the resumed dump reaches it through a rotate right after
    // the old file's end. That is no divergence (it once was taken for one).
    let server = sync_testkit::PrivateServer::start(&[]).expect("private server");
    let mut options = ConnectOptions::from_url(&server.url()).expect("url");
    options.tls = TlsMode::Disabled;
    let mut admin = RawConn::connect(&options).await.expect("connect");
    for sql in [
        "CREATE DATABASE idle_restart",
        "CREATE TABLE idle_restart.t (id INT PRIMARY KEY)",
    ] {
        admin.query_drop(sql).await.expect("table");
    }
    let start = master_status(&mut admin).await;
    admin
        .query_drop("INSERT INTO idle_restart.t VALUES (0) /* trx 0 */")
        .await
        .expect("insert");
    let mut opts = ReplicationOptions::new(options.clone(), 104, StartPosition::File(start));
    opts.heartbeat = Some(std::time::Duration::from_secs(1));
    opts.reconnect.max_attempts = 120;
    opts.reconnect.max_backoff = std::time::Duration::from_millis(500);
    let mut stream = BinlogStream::start(opts).await.expect("stream");
    read_through(&mut stream, 0).await;
    let first_file = stream.checkpoint().position.file.clone();
    for (n, crash) in [(1u32, false), (2, true)] {
        admin.close().await.expect("close");
        if crash {
            server.kill().expect("SIGKILL the server");
        } else {
            server.stop().expect("stop the server");
        }
        server.start_again().expect("start the server again");
        admin = RawConn::connect(&options).await.expect("reconnect admin");
        admin
            .query_drop(&format!(
                "INSERT INTO idle_restart.t VALUES ({n}) /* trx {n} */"
            ))
            .await
            .expect("insert");
        read_through(&mut stream, n).await;
    }
    assert!(stream.reconnects() >= 2, "each restart forced a reconnect");
    assert_ne!(
        stream.checkpoint().position.file,
        first_file,
        "the stream moved on to the restarted server's files"
    );
    stream.close().await.expect("close");
    admin.close().await.expect("close");
}

#[tokio::test]
async fn a_server_refusing_prepared_statements_is_named_and_text_rows_still_read() {
    use mysql_source::schema;
    use mysql_source::snapshot::{self, ReadProtocol, SnapshotItem, SnapshotOptions, TableJob};
    use std::collections::BTreeSet;
    use std::sync::Arc;

    // Prepared statements switched off server-wide: a private server, so no
    // other test loses them.
    let server = sync_testkit::PrivateServer::start(&[]).expect("private server");
    let mut options = ConnectOptions::from_url(&server.url()).expect("url");
    options.tls = TlsMode::Disabled;
    let mut admin = RawConn::connect(&options).await.expect("connect");
    for sql in [
        "CREATE DATABASE no_ps",
        "CREATE TABLE no_ps.t (id INT PRIMARY KEY, f FLOAT)",
        "INSERT INTO no_ps.t SELECT seq, seq / 8 FROM mysql.seq_1_to_50",
        "SET GLOBAL max_prepared_stmt_count = 0",
    ] {
        admin.query_drop(sql).await.expect(sql);
    }
    let s = schema::read_table(&mut admin, "no_ps", "t")
        .await
        .expect("schema");
    let plan = snapshot::plan_table(&mut admin, &s, 1000)
        .await
        .expect("plan");
    let job = TableJob {
        schema: Arc::new(s),
        plan: Arc::new(plan),
        done: BTreeSet::new(),
    };
    let read = |protocol| {
        let mut opts = SnapshotOptions::new(options.clone());
        opts.parallelism = 1;
        opts.protocol = protocol;
        let job = job.clone();
        async move {
            let mut run = snapshot::start(opts, vec![job]);
            let mut rows = 0;
            while let Some(item) = run.items.recv().await {
                if let SnapshotItem::Batch { batch, .. } = item? {
                    rows += batch.num_rows();
                }
            }
            Ok::<_, Error>(rows)
        }
    };
    match read(ReadProtocol::Binary).await {
        Err(Error::Snapshot { table, message }) => {
            assert_eq!(table, "no_ps.t");
            assert!(
                message.contains("read_protocol = \"text\""),
                "the error says how to go on: {message}"
            );
        }
        other => panic!("expected the refusal to be named, got {other:?}"),
    }
    assert_eq!(read(ReadProtocol::Text).await.expect("text rows"), 50);
    admin.close().await.expect("close");
}
