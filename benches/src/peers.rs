//! The tools a user would run instead of ours, as commands against a
//! private server on 127.0.0.1 (root, no password): `mariadb-dump`,
//! `mydumper`, `mariadb-binlog`; and what their output says.

use crate::{Measured, dev_null, measure};
use std::path::Path;
use std::process::Command;

/// `mariadb-dump --quick --single-transaction` of `what` (a database and
/// optionally tables) to /dev/null, measured; panics when it fails.
pub fn mariadb_dump(port: u16, what: &[&str]) -> Measured {
    let m = measure(
        Command::new("mariadb-dump")
            .args([
                "--no-defaults",
                "-h127.0.0.1",
                &format!("-P{port}"),
                "-uroot",
            ])
            .args(["--quick", "--single-transaction"])
            .args(what)
            .stdout(dev_null()),
    );
    assert!(m.status.success(), "mariadb-dump failed: {:?}", m.status);
    m
}

/// `mydumper` of database `db` (only `tables` when given, names without
/// the database) with `threads` threads and chunks of `chunk_rows` rows
/// into a fresh `out` directory (it cannot write to /dev/null), measured;
/// panics when it fails or when its files do not hold `rows` rows.
/// `--trx-consistency-only` matches a single-transaction dump.
pub fn mydumper(
    port: u16,
    db: &str,
    tables: &[&str],
    threads: u64,
    chunk_rows: u64,
    rows: u64,
    out: &Path,
) -> Measured {
    let _ = std::fs::remove_dir_all(out);
    let mut cmd = Command::new("mydumper");
    cmd.args(["-h", "127.0.0.1", "-P", &port.to_string(), "-u", "root"])
        .args(["-B", db, "-t", &threads.to_string()])
        .args(["-r", &chunk_rows.to_string(), "--trx-consistency-only"])
        .args(["-v", "1", "-o"])
        .arg(out)
        .stdout(dev_null());
    if !tables.is_empty() {
        cmd.args(["-T", &tables.join(",")]);
    }
    let m = measure(&mut cmd);
    assert!(m.status.success(), "mydumper failed: {:?}", m.status);
    let dumped = dumped_rows(out);
    assert_eq!(
        dumped,
        rows,
        "rows in mydumper's files under {}",
        out.display()
    );
    let _ = std::fs::remove_dir_all(out);
    m
}

/// Rows in mydumper's data files: it writes one row per line, each
/// starting with `(` (newlines inside values are escaped).
fn dumped_rows(out: &Path) -> u64 {
    let mut n = 0;
    for path in crate::task::files_under(out) {
        let name = path.file_name().map(|f| f.to_string_lossy().into_owned());
        if name.is_some_and(|f| f.ends_with(".sql") && !f.contains("-schema")) {
            let file = std::fs::File::open(&path).expect("mydumper file");
            n += std::io::BufRead::split(std::io::BufReader::new(file), b'\n')
                .filter(|l| l.as_ref().is_ok_and(|l| l.first() == Some(&b'(')))
                .count() as u64;
        }
    }
    n
}

/// Whether `mydumper` is installed.
pub fn have_mydumper() -> bool {
    Command::new("mydumper")
        .arg("--version")
        .stdout(dev_null())
        .stderr(dev_null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `mariadb-binlog --read-from-remote-server -v --base64-output=decode-rows`
/// from the top of binlog file `first` to the newest file, to /dev/null,
/// measured; panics when it fails.
pub fn mariadb_binlog_remote(port: u16, first: &str) -> Measured {
    let m = measure(
        Command::new("mariadb-binlog")
            .args(["--no-defaults", "--read-from-remote-server", "-h127.0.0.1"])
            .args([&format!("-P{port}"), "-uroot"])
            .args(["-v", "--base64-output=decode-rows", "--to-last-log", first])
            .stdout(dev_null()),
    );
    assert!(m.status.success(), "mariadb-binlog failed: {:?}", m.status);
    m
}

/// `mariadb-binlog -v --base64-output=decode-rows FILE` to /dev/null,
/// measured; panics when it fails.
pub fn mariadb_binlog_file(file: &Path) -> Measured {
    let m = measure(
        Command::new("mariadb-binlog")
            .args(["--no-defaults", "-v", "--base64-output=decode-rows"])
            .arg(file)
            .stdout(dev_null()),
    );
    assert!(m.status.success(), "mariadb-binlog failed: {:?}", m.status);
    m
}

/// `transactions: N (X per sec.)` of sysbench's summary: the achieved
/// rate, NaN when the summary has none.
pub fn sysbench_tps(out: &str) -> f64 {
    out.lines()
        .find(|l| l.trim_start().starts_with("transactions:"))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Finds the first column of the rows inserted into one table in
/// `mariadb-binlog -v` output, line by line.
#[derive(Debug)]
pub struct InsertedKeys {
    header: String,
    in_insert: bool,
}

impl InsertedKeys {
    /// Watches for inserts into `` `db`.`table` ``.
    pub fn new(db: &str, table: &str) -> Self {
        Self {
            header: format!("### INSERT INTO `{db}`.`{table}`"),
            in_insert: false,
        }
    }

    /// The key (`@1`) of an inserted row when `line` completes one.
    pub fn feed(&mut self, line: &str) -> Option<i64> {
        if line == self.header {
            self.in_insert = true;
            return None;
        }
        if self.in_insert
            && let Some(v) = line.strip_prefix("###   @1=")
        {
            self.in_insert = false;
            return v.trim().parse().ok();
        }
        if !line.starts_with("###") {
            self.in_insert = false;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysbench_summary_gives_the_achieved_rate() {
        let out = "SQL statistics:\n    queries performed:\n        write: 23992\n    \
                   transactions:                        5998   (99.95 per sec.)\n";
        assert_eq!(sysbench_tps(out), 99.95);
        assert!(sysbench_tps("FATAL: error").is_nan());
    }

    #[test]
    fn inserted_keys_of_one_table_only() {
        let out = "#Q> INSERT INTO lagbench.heartbeat VALUES (7, 1)\n\
                   ### INSERT INTO `sbtest`.`sbtest1`\n### SET\n###   @1=5\n\
                   ### INSERT INTO `lagbench`.`heartbeat`\n### SET\n###   @1=7\n###   @2=1\n\
                   ### UPDATE `lagbench`.`heartbeat`\n### WHERE\n###   @1=8\n\
                   ### INSERT INTO `lagbench`.`heartbeat`\n### SET\n###   @1=9\n";
        let mut keys = InsertedKeys::new("lagbench", "heartbeat");
        let got: Vec<i64> = out.lines().filter_map(|l| keys.feed(l)).collect();
        assert_eq!(got, [7, 9]);
    }
}
