//! The benches' side of the source server: connections to a private
//! MariaDB on 127.0.0.1 (root, no password, no TLS), statements, and
//! binlog positions.

use mysql_source::{ConnectOptions, RawConn, TlsMode};
use std::time::Duration;

/// Connection options for the server on `port`.
pub fn options(port: u16) -> ConnectOptions {
    let mut o = ConnectOptions::new("127.0.0.1", port, "root");
    o.tls = TlsMode::Disabled;
    o.read_timeout = Some(Duration::from_secs(900));
    o
}

/// A connection to the server on `port`.
pub async fn connect(port: u16) -> RawConn {
    RawConn::connect(&options(port)).await.expect("connect")
}

/// Runs each statement; panics naming the one that fails.
pub async fn sql(conn: &mut RawConn, statements: &[String]) {
    for s in statements {
        conn.query_drop(s).await.expect(s);
    }
}

/// The first column of the first row (empty for NULL).
pub async fn one(conn: &mut RawConn, q: &str) -> String {
    conn.query_strings(q).await.expect(q)[0][0]
        .clone()
        .unwrap_or_default()
}

/// The first column of the first row as a number.
pub async fn count(conn: &mut RawConn, q: &str) -> u64 {
    one(conn, q).await.parse().expect("a number")
}

/// The current binlog file (`SHOW MASTER STATUS`).
pub async fn binlog_file(conn: &mut RawConn) -> String {
    one(conn, "SHOW MASTER STATUS").await
}

/// Bytes of the binlog files from `first` (by name) to the newest.
pub async fn binlog_bytes_since(conn: &mut RawConn, first: &str) -> u64 {
    let logs = conn
        .query_strings("SHOW BINARY LOGS")
        .await
        .expect("SHOW BINARY LOGS");
    logs.iter()
        .filter(|r| r[0].as_deref().is_some_and(|f| f >= first))
        .filter_map(|r| r[1].as_deref().and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

/// Starts a fresh binlog file and returns its name: a backlog written
/// next starts at the top of that file.
pub async fn new_binlog(conn: &mut RawConn) -> String {
    sql(conn, &["FLUSH BINARY LOGS".to_string()]).await;
    binlog_file(conn).await
}

/// Drops every binlog file but a fresh current one, so repeated backlogs do
/// not fill the disk (only when no task still has to read them).
pub async fn purge_binlogs(conn: &mut RawConn) {
    let current = new_binlog(conn).await;
    sql(conn, &[format!("PURGE BINARY LOGS TO '{current}'")]).await;
}
