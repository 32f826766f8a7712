//! `odps-emulator`, the project's MaxCompute-compatible server, as a child
//! process on a free port; and the Python with pyodps that referees what
//! lands in it.
//!
//! [`Emulator`] is the one-call form for tests (own temporary data
//! directory, default credentials). [`EmulatorProcess`] runs a given binary
//! over a given data directory (a restart over the same data, a bench's
//! build profile). The binary is `ODPS_EMULATOR_BIN` when set, else built
//! with cargo into the calling test's target directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;

/// The access id the emulator is started with.
pub const ACCESS_ID: &str = "test-id";
/// The access key the emulator is started with.
pub const ACCESS_KEY: &str = "test-key";
/// Environment variable naming a ready-made emulator binary.
pub const EMULATOR_BIN_ENV: &str = "ODPS_EMULATOR_BIN";

fn io_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

/// The emulator binary: `ODPS_EMULATOR_BIN`, else built with cargo's
/// `profile` (`dev`, `release`, `bench`, ...) into the target directory that
/// holds the running executable (`target/<dir>/deps/<exe>`).
///
/// # Errors
///
/// When the running executable is not inside a target directory, or cargo
/// cannot run or fails.
pub fn emulator_binary(profile: &str) -> std::io::Result<PathBuf> {
    if let Ok(bin) = std::env::var(EMULATOR_BIN_ENV) {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let target_dir = exe
        .ancestors()
        .nth(3)
        .ok_or_else(|| {
            io_error(format!(
                "{} is not inside a target directory",
                exe.display()
            ))
        })?
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--profile", profile])
        .args(["-p", "odps-emulator", "--bin", "odps-emulator"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()?;
    if !status.success() {
        return Err(io_error(format!("building odps-emulator failed: {status}")));
    }
    // cargo's output directory of the dev profile is `debug`, of the bench
    // profile `release`.
    let out_dir = match profile {
        "dev" | "test" => "debug",
        "release" | "bench" => "release",
        custom => custom,
    };
    Ok(target_dir.join(out_dir).join("odps-emulator"))
}

/// [`emulator_binary`] in the calling test's own profile (`release` when it
/// runs from `target/release`, else `dev`), built once per process.
///
/// # Errors
///
/// As [`emulator_binary`].
pub fn test_emulator_binary() -> std::io::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let release = exe
            .ancestors()
            .nth(2)
            .is_some_and(|d| d.ends_with("release"));
        emulator_binary(if release { "release" } else { "dev" }).map_err(|e| e.to_string())
    })
    .clone()
    .map_err(io_error)
}

/// A running emulator process over a data directory it does not own; killed
/// when dropped.
#[derive(Debug)]
pub struct EmulatorProcess {
    child: Child,
    /// Service endpoint, e.g. `http://127.0.0.1:40123/api`.
    pub endpoint: String,
    /// Tunnel endpoint, e.g. `http://127.0.0.1:40123`.
    pub tunnel: String,
}

impl EmulatorProcess {
    /// Starts `binary` on a free loopback port over `data`, checking
    /// signatures against `access_id`/`access_key`; `extra` are more options
    /// (e.g. `--fail-commit-rate 0.3`). Its log (at `warn`) goes to this
    /// process's stderr.
    ///
    /// # Errors
    ///
    /// When the process cannot start or does not announce its endpoints.
    pub fn start(
        binary: &Path,
        data: &Path,
        access_id: &str,
        access_key: &str,
        extra: &[&str],
    ) -> std::io::Result<Self> {
        Self::start_at(binary, data, 0, access_id, access_key, extra)
    }

    /// As [`EmulatorProcess::start`] on a given loopback `port` (0: a free
    /// one), e.g. the port of an earlier process over the same data, so that
    /// clients configured with its endpoint reach the restarted emulator.
    ///
    /// # Errors
    ///
    /// When the process cannot start (the port is taken) or does not
    /// announce its endpoints.
    pub fn start_at(
        binary: &Path,
        data: &Path,
        port: u16,
        access_id: &str,
        access_key: &str,
        extra: &[&str],
    ) -> std::io::Result<Self> {
        let mut child = Command::new(binary)
            .arg("--data")
            .arg(data)
            .args(["--port", &port.to_string(), "--access-id", access_id])
            .args(["--access-key", access_key])
            // The tests compare through pyodps in UTC: their projects are in
            // UTC unless a test names a zone (the service's default is
            // Asia/Shanghai, which the time-zone tests use).
            .args(if extra.contains(&"--timezone") {
                &[][..]
            } else {
                &["--timezone", "UTC"][..]
            })
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        // "odps-emulator listening: endpoint <url> tunnel <url>"
        let word_after = |key: &str| {
            line.split_whitespace()
                .skip_while(|w| *w != key)
                .nth(1)
                .map(str::to_owned)
        };
        match (word_after("endpoint"), word_after("tunnel")) {
            (Some(endpoint), Some(tunnel)) => Ok(Self {
                child,
                endpoint,
                tunnel,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(io_error(format!(
                    "unexpected first line from the emulator: {line:?}"
                )))
            }
        }
    }

    /// The TCP port it listens on.
    pub fn port(&self) -> Option<u16> {
        self.tunnel.rsplit(':').next().and_then(|p| p.parse().ok())
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent or waiting fails.
    pub fn kill(&mut self) -> std::io::Result<ExitStatus> {
        self.child.kill()?;
        self.child.wait()
    }

    /// Its exit status if it has ended (e.g. at a crash point), without waiting.
    ///
    /// # Errors
    ///
    /// When the status cannot be read.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits for the process to end by itself (e.g. at a crash point).
    ///
    /// # Errors
    ///
    /// When waiting fails.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running emulator with its own data directory and the default
/// credentials; killed and its data removed when dropped.
#[derive(Debug)]
pub struct Emulator {
    process: EmulatorProcess,
    /// Service endpoint, e.g. `http://127.0.0.1:40123/api`.
    pub endpoint: String,
    /// Tunnel endpoint.
    pub tunnel: String,
    data: PathBuf,
}

impl Emulator {
    /// Starts an emulator with extra arguments (e.g. `--fail-commit-rate 0.3`).
    ///
    /// # Errors
    /// When the binary cannot be built or started, or does not announce its
    /// endpoints.
    pub fn start(extra: &[&str]) -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let data =
            std::env::temp_dir().join(format!("odps-emulator-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&data)?;
        let process = EmulatorProcess::start(
            &test_emulator_binary()?,
            &data,
            ACCESS_ID,
            ACCESS_KEY,
            extra,
        )?;
        Ok(Self {
            endpoint: process.endpoint.clone(),
            tunnel: process.tunnel.clone(),
            process,
            data,
        })
    }

    /// The emulator's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Stop the process before its data goes.
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// A Python with pyodps and pyarrow: `ODPS_TEST_PYTHON`, else the
/// repository's `.venv/bin/python` (made by `scripts/pyodps-tests`); `None`
/// when neither imports both.
pub fn pyodps_python() -> Option<PathBuf> {
    let candidate = std::env::var_os("ODPS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let ok = Command::new(&candidate)
        .args(["-c", "import odps, pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(candidate)
}
