//! A `sysbench oltp_write_only` load at a fixed rate for a set time,
//! restarted for the rest of the time whenever it ends early (a source
//! restart can make it give up), with the transactions it reported.

use anyhow::{Context as _, Result, ensure};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Errors a transaction may meet while faults are injected; sysbench
/// retries the transaction (and reconnects) instead of stopping:
/// server shutdown, lock timeout, deadlock, connection killed, can't
/// connect, server gone, connection lost.
const IGNORED: &str = "1053,1205,1213,1927,2002,2003,2006,2013";

/// The tables sysbench writes.
#[derive(Clone, Debug)]
pub(crate) struct Load {
    /// MariaDB port (root without password on 127.0.0.1).
    pub(crate) port: u16,
    /// Database of the sbtest tables.
    pub(crate) db: String,
    /// `--tables`.
    pub(crate) tables: u32,
    /// `--table-size`.
    pub(crate) table_size: u64,
}

/// What the load reported so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoadStats {
    /// Transactions of the finished sysbench processes (their summaries).
    pub(crate) finished: f64,
    /// Transactions of the running one (its per-second reports).
    pub(crate) running: f64,
    /// sysbench processes started.
    pub(crate) starts: u32,
    /// Errors sysbench ignored (and retried) per its summaries.
    pub(crate) ignored_errors: u64,
    /// Reconnects per its summaries.
    pub(crate) reconnects: u64,
}

impl LoadStats {
    /// Transactions so far.
    pub(crate) fn transactions(&self) -> f64 {
        self.finished + self.running
    }
}

impl Load {
    fn command(&self, args: &[String], verb: &str) -> Command {
        let mut cmd = Command::new("sysbench");
        cmd.arg("oltp_write_only")
            .args(["--db-driver=mysql", "--mysql-host=127.0.0.1"])
            .arg(format!("--mysql-port={}", self.port))
            .args(["--mysql-user=root", "--mysql-password="])
            .arg(format!("--mysql-db={}", self.db))
            .arg(format!("--tables={}", self.tables))
            .arg(format!("--table-size={}", self.table_size))
            .args(args)
            .arg(verb)
            .stdin(Stdio::null());
        cmd
    }

    /// `sysbench prepare`: creates and fills the tables (the database must exist).
    pub(crate) async fn prepare(&self) -> Result<()> {
        let mut cmd = self.command(&[], "prepare");
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await?
            .context("running sysbench (Debian package `sysbench`; scripts/bench installs it)")?;
        ensure!(
            out.status.success(),
            "sysbench prepare failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// Starts `rate` transactions per second on `threads` threads for `time`.
    pub(crate) fn start(&self, rate: u32, threads: u32, time: Duration) -> Result<Running> {
        let stats = Arc::new(Mutex::new(LoadStats::default()));
        let mut running = Running {
            load: self.clone(),
            rate,
            threads,
            until: Instant::now() + time,
            child: None,
            reader: None,
            stats,
        };
        running.spawn()?;
        Ok(running)
    }
}

/// A load under way.
pub(crate) struct Running {
    load: Load,
    rate: u32,
    threads: u32,
    until: Instant,
    child: Option<Child>,
    reader: Option<std::thread::JoinHandle<()>>,
    stats: Arc<Mutex<LoadStats>>,
}

impl Running {
    fn spawn(&mut self) -> Result<()> {
        let left = self.until.saturating_duration_since(Instant::now());
        let args = [
            format!("--rate={}", self.rate),
            format!("--threads={}", self.threads),
            format!("--time={}", left.as_secs().max(1)),
            "--report-interval=1".into(),
            format!("--mysql-ignore-errors={IGNORED}"),
        ];
        let mut child = self
            .load
            .command(&args, "run")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting sysbench")?;
        let out = child.stdout.take().context("sysbench's stdout")?;
        let stats = self.stats.clone();
        self.lock().starts += 1;
        self.reader = Some(std::thread::spawn(move || {
            let mut summary = None;
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut s = stats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(tps) = interval_tps(&line) {
                    s.running += tps;
                } else if let Some(n) = summary_count(&line, "transactions:") {
                    summary = Some(n);
                } else if let Some(n) = summary_count(&line, "ignored errors:") {
                    s.ignored_errors += n as u64;
                } else if let Some(n) = summary_count(&line, "reconnects:") {
                    s.reconnects += n as u64;
                }
            }
            let mut s = stats
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The summary is exact; the per-second reports are rounded.
            s.finished += summary.unwrap_or(s.running);
            s.running = 0.0;
        }));
        self.child = Some(child);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LoadStats> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reap(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.child = None;
    }

    /// Restarts sysbench for the time left when it ended early; true once
    /// the time is over and it has ended.
    pub(crate) fn check(&mut self) -> Result<bool> {
        let ended = match self.child.as_mut() {
            Some(c) => c.try_wait()?.is_some(),
            None => true,
        };
        if !ended {
            return Ok(false);
        }
        self.reap();
        if Instant::now() + Duration::from_secs(1) < self.until {
            self.spawn()?;
            return Ok(false);
        }
        Ok(true)
    }

    /// What it reported so far.
    pub(crate) fn stats(&self) -> LoadStats {
        self.lock().clone()
    }

    /// Waits for the end of the time (restarting it as [`Running::check`]
    /// does); what it did.
    pub(crate) async fn finish(mut self) -> Result<LoadStats> {
        while !self.check()? {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(self.stats())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.reap();
    }
}

/// The tps of a per-second report line:
/// `[ 3s ] thds: 2 tps: 50.00 qps: 300.00 (r/w/o: …) lat (ms,95%): 3.13 err/s: 0.00 reconn/s: 0.00`.
fn interval_tps(line: &str) -> Option<f64> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (_, rest) = rest.split_once("tps:")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `N` of a summary line `LABEL  N  (X per sec.)`.
fn summary_count(line: &str, label: &str) -> Option<f64> {
    let rest = line.trim_start().strip_prefix(label)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_parse() {
        let l = "[ 3s ] thds: 2 tps: 49.98 qps: 299.90 (r/w/o: 0.00/199.93/99.97) lat (ms,95%): 3.13 err/s: 0.00 reconn/s: 0.00";
        assert_eq!(interval_tps(l), Some(49.98));
        assert_eq!(
            interval_tps("    transactions:  600  (49.95 per sec.)"),
            None
        );
        assert_eq!(
            summary_count(
                "    transactions:   600    (49.95 per sec.)",
                "transactions:"
            ),
            Some(600.0)
        );
        assert_eq!(
            summary_count(
                "    ignored errors:   3    (0.25 per sec.)",
                "ignored errors:"
            ),
            Some(3.0)
        );
        assert_eq!(summary_count("    queries: 10", "transactions:"), None);
    }
}
