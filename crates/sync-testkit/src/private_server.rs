//! A MariaDB of a test's own: `scripts/mysql-sandbox` on a temporary datadir
//! and a free port, with optional extra server options. For tests that need
//! settings the shared sandbox must not get (they would change every other
//! test's binlog) or that do things to the server (purge, restart).
//!
//! ```no_run
//! let server = sync_testkit::PrivateServer::start(&["log_bin_compress=ON"])?;
//! let url = server.url(); // mysql://root@127.0.0.1:PORT
//! let binlogs = server.binlog_dir();
//! # let _ = (url, binlogs);
//! # Ok::<(), sync_testkit::PrivateServerError>(())
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a private server could not be started.
#[derive(Debug)]
pub struct PrivateServerError(String);

impl std::fmt::Display for PrivateServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PrivateServerError {}

/// A running private MariaDB; stopped (and its datadir removed) on drop.
#[derive(Debug)]
pub struct PrivateServer {
    dir: tempfile::TempDir,
    port: u16,
    extra_cnf: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mysql-sandbox")
}

/// A port nobody listens on right now (the kernel's pick).
fn free_port() -> Result<u16, PrivateServerError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| PrivateServerError(format!("no free TCP port on 127.0.0.1: {e}")))
}

impl PrivateServer {
    /// Starts a server with `extra_cnf` (one `name=value` per entry) added to
    /// the sandbox's `[mariadbd]` options.
    ///
    /// # Errors
    /// [`PrivateServerError`] with the script's output when it fails.
    pub fn start(extra_cnf: &[&str]) -> Result<Self, PrivateServerError> {
        let dir = tempfile::tempdir()
            .map_err(|e| PrivateServerError(format!("cannot create a temporary datadir: {e}")))?;
        let server = Self {
            dir,
            port: free_port()?,
            extra_cnf: extra_cnf.join("\n"),
        };
        server.script("up")?;
        Ok(server)
    }

    fn script(&self, cmd: &str) -> Result<(), PrivateServerError> {
        let out = Command::new("bash")
            .arg(script())
            .arg(cmd)
            .env("SYNC_MYSQL_DIR", self.dir.path())
            .env("SYNC_MYSQL_PORT", self.port.to_string())
            .env("SYNC_MYSQL_EXTRA_CNF", &self.extra_cnf)
            .output()
            .map_err(|e| PrivateServerError(format!("cannot run scripts/mysql-sandbox: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(PrivateServerError(format!(
                "scripts/mysql-sandbox {cmd} (port {}) failed: {}",
                self.port,
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    /// Stops the server; its datadir and port stay reserved for
    /// [`PrivateServer::start_again`] (an outage for retry tests).
    ///
    /// # Errors
    /// [`PrivateServerError`] with the script's output when it fails.
    pub fn stop(&self) -> Result<(), PrivateServerError> {
        self.script("down")
    }

    /// Starts a stopped server again on the same port and datadir.
    ///
    /// # Errors
    /// [`PrivateServerError`] with the script's output when it fails.
    pub fn start_again(&self) -> Result<(), PrivateServerError> {
        self.script("up")
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://root@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// Where the server writes its binlog files.
    pub fn binlog_dir(&self) -> PathBuf {
        self.dir.path().join("binlog")
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        // Best effort: a failure here must not hide the test's own result.
        let _ = self.script("down");
    }
}
