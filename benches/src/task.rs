//! `sync-cli` tasks for the end-to-end benches: the release binary, task
//! files for either destination, runs measured as child processes, and
//! counts of what landed.

use crate::{Measured, Watched, dev_null, measure, repo_root, target_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable naming a ready-made `sync-cli` binary (else it is
/// built with `cargo build --release`).
pub const SYNC_CLI_BIN_ENV: &str = "SYNC_CLI_BIN";

/// AccessKey pair the benches start the emulator with.
pub const EMULATOR_ID: &str = "bench-id";
/// See [`EMULATOR_ID`].
pub const EMULATOR_KEY: &str = "bench-key";

/// The release `sync-cli`: [`SYNC_CLI_BIN_ENV`], else built now.
pub fn sync_cli() -> PathBuf {
    if let Some(bin) = std::env::var_os(SYNC_CLI_BIN_ENV) {
        return PathBuf::from(bin);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(cargo)
        .args(["build", "--release", "-q", "-p", "sync-cli"])
        .current_dir(repo_root())
        .status()
        .expect("cargo build")
        .success();
    assert!(ok, "building sync-cli failed");
    target_dir().join("release/sync-cli")
}

/// Where a task writes.
#[derive(Clone, Debug)]
pub enum Destination {
    /// The local warehouse at this path.
    Local(PathBuf),
    /// A MaxCompute project behind `odps-emulator` (AccessKey
    /// [`EMULATOR_ID`]/[`EMULATOR_KEY`]).
    Emulator {
        /// Service endpoint (`…/api`).
        endpoint: String,
        /// Tunnel endpoint.
        tunnel: String,
        /// Project name (created on first use).
        project: String,
    },
}

/// A task file being put together; [`TaskFile::write`] creates a fresh
/// task directory under `target/sync-bench/<name>`.
#[derive(Clone, Debug)]
pub struct TaskFile {
    /// Source server port on 127.0.0.1 (user root, no password).
    pub port: u16,
    /// `[source] server_id`.
    pub server_id: u32,
    /// `[objects] include`.
    pub include: Vec<String>,
    /// `[sync] types`.
    pub types: Vec<&'static str>,
    /// `[sync] parallelism`.
    pub parallelism: u64,
    /// More `[sync]` lines, e.g. `flush_interval_ms = 100`.
    pub sync_extra: Vec<String>,
    /// Where it writes; `None`: a local warehouse in the task directory.
    pub destination: Option<Destination>,
}

impl TaskFile {
    /// A task reading `include` from the server on `port`.
    pub fn new(port: u16, include: &[&str], types: &[&'static str]) -> Self {
        Self {
            port,
            server_id: 9301,
            include: include.iter().map(|s| (*s).to_owned()).collect(),
            types: types.to_vec(),
            parallelism: 2,
            sync_extra: Vec::new(),
            destination: None,
        }
    }

    /// Writes `target/sync-bench/<name>/task.toml` into an emptied
    /// directory and returns the task.
    pub fn write(&self, name: &str) -> Task {
        let dir = target_dir().join("sync-bench").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("task dir");
        let warehouse = dir.join("warehouse");
        let destination = match &self.destination {
            None => format!("kind = \"local\"\npath = \"{}\"\n", warehouse.display()),
            Some(Destination::Local(p)) => {
                format!("kind = \"local\"\npath = \"{}\"\n", p.display())
            }
            Some(Destination::Emulator {
                endpoint,
                tunnel,
                project,
            }) => format!(
                "kind = \"maxcompute\"\nendpoint = \"{endpoint}\"\ntunnel_endpoint = \"{tunnel}\"\n\
                 project = \"{project}\"\naccess_id_env = \"BENCH_ODPS_ID\"\naccess_key_env = \"BENCH_ODPS_KEY\"\n"
            ),
        };
        let quoted = |v: &[String]| {
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let types: Vec<String> = self.types.iter().map(|s| (*s).to_owned()).collect();
        let text = format!(
            "[source]\nurl = \"mysql://root@127.0.0.1:{}\"\nserver_id = {}\n\
             [destination]\n{destination}\
             [objects]\ninclude = [{}]\n\
             [sync]\ntypes = [{}]\nstate_dir = \"{}\"\nparallelism = {}\n{}",
            self.port,
            self.server_id,
            quoted(&self.include),
            quoted(&types),
            dir.join("state").display(),
            self.parallelism,
            self.sync_extra
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        );
        let file = dir.join("task.toml");
        std::fs::write(&file, text).expect("task file");
        Task {
            file,
            warehouse,
            state: dir.join("state"),
        }
    }
}

/// A written task.
#[derive(Clone, Debug)]
pub struct Task {
    /// Its task file.
    pub file: PathBuf,
    /// Its local warehouse (when the destination is the default one).
    pub warehouse: PathBuf,
    /// Its state directory.
    pub state: PathBuf,
}

impl Task {
    fn command(&self, cli: &Path, until_caught_up: bool) -> Command {
        let mut cmd = Command::new(cli);
        cmd.arg("run");
        if until_caught_up {
            cmd.arg("--exit-when-caught-up");
        }
        cmd.arg("-c")
            .arg(&self.file)
            .env("RUST_LOG", "warn")
            .env("BENCH_ODPS_ID", EMULATOR_ID)
            .env("BENCH_ODPS_KEY", EMULATOR_KEY)
            .stdout(dev_null());
        cmd
    }

    /// `sync-cli run --exit-when-caught-up`, measured; panics when it fails.
    pub fn run(&self, cli: &Path) -> Measured {
        let m = measure(&mut self.command(cli, true));
        assert!(m.status.success(), "sync-cli run failed: {:?}", m.status);
        m
    }

    /// `sync-cli run` until stopped ([`Watched::terminate`]).
    pub fn start(&self, cli: &Path) -> Watched {
        Watched::spawn(&mut self.command(cli, false))
    }

    /// Removes the task directory (warehouse and state included).
    pub fn remove(self) {
        if let Some(dir) = self.file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// `sync-cli verify`; panics when the destination differs.
    pub fn verify(&self, cli: &Path) {
        let out = Command::new(cli)
            .args(["verify", "-c"])
            .arg(&self.file)
            .env("RUST_LOG", "warn")
            .env("BENCH_ODPS_ID", EMULATOR_ID)
            .env("BENCH_ODPS_KEY", EMULATOR_KEY)
            .output()
            .expect("sync-cli verify");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "verify found differences:\n{text}");
        eprintln!("  verify: {}", text.lines().last().unwrap_or_default());
    }
}

/// Rows in every Parquet file under `dir`, from the file footers.
pub fn parquet_rows(dir: &Path) -> u64 {
    let mut n = 0;
    for path in files_under(dir) {
        if path.extension().is_some_and(|e| e == "parquet") {
            let f = std::fs::File::open(&path).expect("parquet file");
            let reader =
                parquet::file::reader::SerializedFileReader::new(f).expect("parquet footer");
            n += parquet::file::reader::FileReader::metadata(&reader)
                .file_metadata()
                .num_rows() as u64;
        }
    }
    n
}

/// Rows the emulator published for tables whose data directory path
/// contains `table` (summed over their `_manifest.json` files).
pub fn emulator_rows(data: &Path, table: &str) -> u64 {
    let mut n = 0;
    for path in files_under(data) {
        let in_table = path
            .components()
            .any(|c| c.as_os_str().to_str() == Some(table));
        if in_table && path.file_name().is_some_and(|f| f == "_manifest.json") {
            let bytes = std::fs::read(&path).expect("manifest");
            let manifest: serde_json::Value =
                serde_json::from_slice(&bytes).expect("manifest json");
            n += manifest["files"].as_array().map_or(0, |files| {
                files.iter().filter_map(|f| f["rows"].as_u64()).sum()
            });
        }
    }
    n
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_files_name_the_destination_and_options() {
        let mut t = TaskFile::new(3399, &["db.a", "db.b"], &["schema", "full"]);
        t.parallelism = 4;
        t.sync_extra.push("flush_interval_ms = 100".into());
        t.destination = Some(Destination::Emulator {
            endpoint: "http://127.0.0.1:1/api".into(),
            tunnel: "http://127.0.0.1:1".into(),
            project: "p1".into(),
        });
        let task = t.write("unit-test-task-file");
        let text = std::fs::read_to_string(&task.file).unwrap();
        let cfg = sync_core::taskfile::parse(&text, "task.toml").unwrap();
        assert_eq!(cfg.source.url, "mysql://root@127.0.0.1:3399");
        assert_eq!(cfg.source.server_id, 9301);
        assert_eq!(cfg.objects.include, ["db.a", "db.b"]);
        assert_eq!(cfg.sync.types.len(), 2);
        assert_eq!(cfg.sync.parallelism, 4);
        assert_eq!(cfg.sync.flush_interval_ms, 100);
        assert_eq!(cfg.sync.state_dir, task.state);
        let sync_core::config::DestinationConfig::Maxcompute(mc) = cfg.destination else {
            panic!("a MaxCompute destination: {text}")
        };
        assert_eq!(mc.project, "p1");
        assert_eq!(mc.tunnel_endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(mc.access_key_env, "BENCH_ODPS_KEY");
        let _ = std::fs::remove_dir_all(task.file.parent().unwrap());
    }
}
