//! `scripts/mysql-sandbox` on a private datadir and port: `up` twice is
//! fine, `status` and `url` report it, and `down` then `up` keeps the data.

use std::path::PathBuf;
use std::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mysql-sandbox")
}

fn sandbox(dir: &std::path::Path, port: u16, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .env("SYNC_MYSQL_DIR", dir)
        .env("SYNC_MYSQL_PORT", port.to_string())
        .env("SYNC_MYSQL_SERVER_ID", "77")
        .output()
        .expect("run scripts/mysql-sandbox")
}

fn sql(port: u16, query: &str) -> String {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "-h127.0.0.1", "-uroot", "-N", "-B"])
        .arg(format!("-P{port}"))
        .args(["-e", query])
        .output()
        .expect("mariadb client");
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn up_is_idempotent_and_down_up_keeps_the_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = 3398;
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    ok(sandbox(dir.path(), port, &["up"]));
    let again = ok(sandbox(dir.path(), port, &["up"]));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));
    let url = ok(sandbox(dir.path(), port, &["url"]));
    assert_eq!(
        String::from_utf8_lossy(&url.stdout).trim(),
        format!("mysql://root@127.0.0.1:{port}")
    );
    assert_eq!(
        sql(
            port,
            "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@server_id"
        ),
        "1\tROW\tFULL\tFULL\t77"
    );
    sql(
        port,
        "CREATE DATABASE keep; CREATE TABLE keep.t (id INT PRIMARY KEY); INSERT INTO keep.t VALUES (1), (2)",
    );
    ok(sandbox(dir.path(), port, &["down"]));
    let status = sandbox(dir.path(), port, &["status"]);
    assert!(
        !status.status.success(),
        "status of a stopped sandbox is non-zero"
    );
    ok(sandbox(dir.path(), port, &["up"]));
    assert_eq!(sql(port, "SELECT COUNT(*) FROM keep.t"), "2");
    ok(sandbox(dir.path(), port, &["down"]));
}
