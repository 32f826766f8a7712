//! `odps-emulator`, the project's MaxCompute-compatible server, as a child
//! process on a free port with its own data directory; and the Python with
//! pyodps that referees what lands in it.
//!
//! The binary is `ODPS_EMULATOR_BIN` when set, else built with cargo into
//! the calling test's target directory (once per test process).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The access id the emulator is started with.
pub const ACCESS_ID: &str = "test-id";
/// The access key the emulator is started with.
pub const ACCESS_KEY: &str = "test-key";

fn io_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

fn emulator_binary() -> std::io::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("ODPS_EMULATOR_BIN") {
            return Ok(PathBuf::from(bin));
        }
        // target/<profile>/deps/<test>-<hash> → target/<profile>
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or("test binary outside a target directory")?
            .to_path_buf();
        let target_dir = profile_dir
            .parent()
            .ok_or("test binary outside a target directory")?
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "odps-emulator", "--bin", "odps-emulator"])
            .env("CARGO_TARGET_DIR", &target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
        if !status.success() {
            return Err("building odps-emulator failed".into());
        }
        Ok(profile_dir.join("odps-emulator"))
    })
    .clone()
    .map_err(io_error)
}

/// A running emulator; killed and its data removed when dropped.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
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
        let mut child = Command::new(emulator_binary()?)
            .arg("--data")
            .arg(&data)
            .args([
                "--port",
                "0",
                "--access-id",
                ACCESS_ID,
                "--access-key",
                ACCESS_KEY,
            ])
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
                .ok_or_else(|| {
                    io_error(format!("unexpected first line from the emulator: {line:?}"))
                })
        };
        let (endpoint, tunnel) = match (word_after("endpoint"), word_after("tunnel")) {
            (Ok(e), Ok(t)) => (e, t),
            (Err(e), _) | (_, Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Self {
            child,
            endpoint,
            tunnel,
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
        let _ = self.child.kill();
        let _ = self.child.wait();
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
