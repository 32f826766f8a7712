//! Shared setup of the workspace benches (inputs built from the sandbox,
//! peers to measure against, figures recorded as JSON lines) and the
//! `bench-report` binary that turns the figures into `BENCHMARKS.md` and
//! SVG charts. The benches themselves live in `benches/`; `scripts/bench`
//! runs them all.
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod chart;
pub mod db;
pub mod peers;
pub mod records;
pub mod report;
pub mod results;
pub mod task;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
pub use sync_testkit::memory::{Measured, Watched, measure, own_peak_rss};
pub use sync_testkit::wide::{WIDE_DDL, wide_fill, wide_select};

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// A numeric environment variable, or `default` when unset or not a number.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The fastest of `runs` runs (at least one) and what it returned.
pub fn best<T>(runs: u64, mut f: impl FnMut() -> (Duration, T)) -> (Duration, T) {
    let mut out = f();
    for _ in 1..runs {
        let r = f();
        if r.0 < out.0 {
            out = r;
        }
    }
    out
}

/// `/dev/null` as a child's stdout or stderr.
pub fn dev_null() -> Stdio {
    Stdio::from(std::fs::File::create("/dev/null").expect("/dev/null"))
}

/// A private MariaDB started with `scripts/mysql-sandbox` under the target
/// dir (own datadir, own port), stopped on drop. The datadir is kept, so
/// later runs reuse the data a bench generated.
pub struct PrivateServer {
    dir: PathBuf,
    port: u16,
}

impl PrivateServer {
    /// Starts (or reuses) the server named `name` on `port`.
    pub fn start(name: &str, port: u16, server_id: u32) -> Self {
        let dir = target_dir().join(name);
        let ok = Command::new("bash")
            .arg(repo_root().join("scripts/mysql-sandbox"))
            .arg("up")
            .env("SYNC_MYSQL_DIR", &dir)
            .env("SYNC_MYSQL_PORT", port.to_string())
            .env("SYNC_MYSQL_SERVER_ID", server_id.to_string())
            .status()
            .expect("scripts/mysql-sandbox")
            .success();
        assert!(ok, "the private MariaDB did not start");
        Self { dir, port }
    }

    /// Its TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its datadir root (config, binlogs, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/mysql-sandbox"))
            .arg("down")
            .env("SYNC_MYSQL_DIR", &self.dir)
            .env("SYNC_MYSQL_PORT", self.port.to_string())
            .status();
    }
}

/// The fastest of `runs` (at least one) measured runs, with the highest peak
/// memory of all of them.
pub fn fastest(runs: u64, mut f: impl FnMut() -> Measured) -> Measured {
    let mut out = f();
    for _ in 1..runs {
        let m = f();
        let peak_rss = out.peak_rss.max(m.peak_rss);
        if m.elapsed < out.elapsed {
            out = m;
        }
        out.peak_rss = peak_rss;
    }
    out
}

/// The `p`-th percentile (0–100, nearest rank) of ascending `sorted`
/// values; NaN when there are none.
///
/// ```
/// let v = [1.0, 2.0, 3.0, 4.0];
/// assert_eq!(sync_benches::percentile(&v, 50.0), 2.0);
/// assert_eq!(sync_benches::percentile(&v, 99.0), 4.0);
/// assert!(sync_benches::percentile(&[], 50.0).is_nan());
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One line about the machine the figures come from.
pub fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024 / 1024);
    format!("machine: {cpu}, {cores} cores, {mem} GiB RAM")
}
