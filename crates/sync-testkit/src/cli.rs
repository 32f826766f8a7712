//! Driving the `sync-cli` binary from a test: commands against one task
//! file, a background `run` with its log in a file, and the figures of
//! `status` (lag, committed position).
//!
//! ```no_run
//! // In a sync-cli test: Cli::new(env!("CARGO_BIN_EXE_sync-cli"), path_of_the_task_file)
//! let cli = sync_testkit::cli::Cli::new("target/debug/sync-cli", "task.toml");
//! let status = cli.status();
//! let lag = sync_testkit::cli::status_lag(&status);
//! # let _ = lag;
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// `sync-cli` bound to one task file and environment.
#[derive(Clone, Debug)]
pub struct Cli {
    bin: PathBuf,
    task: PathBuf,
    env: Vec<(String, String)>,
}

impl Cli {
    /// The binary `bin` (a test's `env!("CARGO_BIN_EXE_sync-cli")`) on `task`.
    pub fn new(bin: impl Into<PathBuf>, task: impl Into<PathBuf>) -> Self {
        Self {
            bin: bin.into(),
            task: task.into(),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable for every command (e.g. credentials).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// `sync-cli ARGS -c TASK`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).arg("-c").arg(&self.task);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `sync-cli ARGS -c TASK` to its end.
    ///
    /// # Errors
    /// The process cannot be started.
    pub fn output(&self, args: &[&str]) -> std::io::Result<Output> {
        self.command(args).output()
    }

    /// The text `status` prints (stdout), empty when it cannot run.
    pub fn status(&self) -> String {
        self.output(&["status"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Starts `sync-cli run -c TASK` with its log (stderr) appended to `log`.
    ///
    /// # Errors
    /// The log cannot be opened or the process started.
    pub fn spawn_run(&self, log: &Path) -> std::io::Result<Child> {
        self.spawn(&["run"], log)
    }

    /// Starts `sync-cli ARGS -c TASK` with its log (stderr, at `info`)
    /// appended to `log`.
    ///
    /// # Errors
    /// The log cannot be opened or the process started.
    pub fn spawn(&self, args: &[&str], log: &Path) -> std::io::Result<Child> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        self.command(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
    }

    /// Starts `run` (log appended to `log`) and waits, up to two minutes,
    /// until `status` shows the incremental phase.
    ///
    /// # Panics
    /// When it cannot start or does not get there in time (a test helper).
    pub fn start_incremental(&self, log: &Path) -> Child {
        let child = self.spawn_run(log).expect("sync-cli run");
        crate::probe::wait_until(
            "the incremental phase",
            std::time::Duration::from_secs(120),
            || self.status().contains("phase incremental"),
        );
        child
    }
}

/// Stops a background `run` with SIGTERM and checks that it exits 0.
///
/// # Panics
/// When it exits otherwise (the message holds the log at `log`).
pub fn stop_run(mut child: Child, log: &Path) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let code = child.wait().expect("wait");
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(code.success(), "{code:?}\n{text}");
}

/// The lag `status` prints (`lag 1.3 s`, `lag 47 s …`, `lag 2.5 min …`), in seconds.
pub fn status_lag(status: &str) -> Option<f64> {
    let rest = status.lines().find_map(|l| l.trim().strip_prefix("lag "))?;
    let mut words = rest.split_whitespace();
    let value: f64 = words.next()?.parse().ok()?;
    let unit = words.next()?.trim_end_matches([',', ':', ';']);
    Some(match unit {
        "s" => value,
        "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    })
}

/// The committed binlog position `status` prints (`FILE:POS`).
pub fn status_position(status: &str) -> Option<String> {
    let rest = status.split("committed up to ").nth(1)?;
    let end = rest.find([';', ' ']).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_figures_parse() {
        let text = "phase incremental: committed up to mariadb-bin.000002:1234; next record_id counter 9\n  \
                    lag 2.5 min since the newest committed source event: none came since\n";
        assert_eq!(status_lag(text), Some(150.0));
        assert_eq!(
            status_position(text).as_deref(),
            Some("mariadb-bin.000002:1234")
        );
        assert_eq!(status_lag("  lag 1.3 s (age of ...)"), Some(1.3));
        assert_eq!(status_lag("phase full_sync"), None);
    }
}
