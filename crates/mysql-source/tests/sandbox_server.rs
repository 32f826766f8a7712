//! Talks to the sandbox MariaDB over TCP: the server is up with the binary
//! logging a row-based sync needs, and writes move the binlog position.

use mysql_source::{ConnectOptions, Error, RawConn, ServerInfo};

#[tokio::test]
async fn sandbox_has_row_based_binary_logging() {
    let url = sync_testkit::mysql_url();
    let info = ServerInfo::read(&url).await.expect("read server settings");
    assert!(info.is_mariadb, "the sandbox is MariaDB: {}", info.version);
    assert!(info.log_bin, "log_bin must be on");
    assert_eq!(info.binlog_format, "ROW");
    assert_eq!(info.binlog_row_image, "FULL");
    assert_eq!(info.binlog_row_metadata.as_deref(), Some("FULL"));
    assert_ne!(info.server_id, 0);
    let pos = info.position.expect("SHOW MASTER STATUS has a row");
    assert!(pos.file.starts_with("mariadb-bin."), "{}", pos.file);
    assert!(pos.position >= 4);
}

#[tokio::test]
async fn a_write_advances_the_binlog_position() {
    let url = sync_testkit::mysql_url();
    let opts = ConnectOptions::from_url(&url).expect("url");
    let mut conn = RawConn::connect(&opts).await.expect("connect");
    let before = mysql_source::server::current_position(&mut conn)
        .await
        .expect("position");
    for sql in [
        "CREATE DATABASE IF NOT EXISTS foundation_test",
        "CREATE TABLE IF NOT EXISTS foundation_test.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(10))",
        "INSERT INTO foundation_test.t (v) VALUES ('x')",
    ] {
        conn.query_drop(sql).await.expect("write");
    }
    let after = mysql_source::server::current_position(&mut conn)
        .await
        .expect("position");
    assert!(
        after.file > before.file || after.position > before.position,
        "{before:?} -> {after:?}"
    );
    conn.close().await.expect("close");
}

#[tokio::test]
async fn unreachable_server_is_unreachable() {
    // Port 1 on loopback: nothing listens there.
    let err = ServerInfo::read("mysql://root@127.0.0.1:1")
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_password_is_access_denied() {
    let url = sync_testkit::mysql_url();
    let port = url.rsplit(':').next().expect("port");
    let err = ServerInfo::read(&format!("mysql://sync_native:wrong@127.0.0.1:{port}"))
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
    assert!(!err.to_string().contains("wrong"), "{err}");
}
