//! One writer per task: a run holds an exclusive lock on its `state_dir`.
//!
//! Two runs over one state directory (a second `sync-cli run`, or a second
//! task file naming the same `state_dir`) would both write the same binlog
//! range into the destination, doubling its records. So [`StateLock::acquire`]
//! takes an OS advisory lock (`flock(2)`, exclusive, non-blocking) on
//! `<state_dir>/run.lock` before anything else, and a second run fails at
//! once with [`Error::Locked`] naming the holder.
//!
//! The lock belongs to the open file, not to the file's contents: the kernel
//! drops it when the holder's process ends, however it ends (`kill -9`, a
//! crash, a lost machine's reboot), so a dead holder never blocks the next
//! run and no stale-lock heuristics are needed. The file's contents only
//! *describe* the holder (pid, host, start time, command) for the error
//! message and for `status`, which asks the same lock whether a run is alive
//! ([`probe`]).
//!
//! ```
//! # fn main() -> sync_core::Result<()> {
//! use sync_core::state_lock::{Liveness, StateLock, probe};
//! let dir = tempfile::tempdir().expect("tempdir");
//! let lock = StateLock::acquire(dir.path(), "run")?;
//! assert!(StateLock::acquire(dir.path(), "run").is_err(), "one writer per task");
//! assert!(matches!(probe(dir.path())?, Liveness::Alive(Some(_))));
//! drop(lock);
//! assert!(matches!(probe(dir.path())?, Liveness::NotRunning { .. }));
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::metrics::unix_now;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::{info, warn};

/// The lock file in the state directory.
pub const LOCK_FILE: &str = "run.lock";

/// Tries before [`StateLock::acquire`] gives up: a `status` that holds the
/// lock shared for a moment, or a holder that has not written its details
/// yet, must not fail a run.
const ATTEMPTS: u32 = 6;
/// Pause between tries (so at most about a quarter of a second in all).
const PAUSE: Duration = Duration::from_millis(50);

/// Who holds (or last held) a state directory's lock.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name of the machine it runs on.
    pub host: String,
    /// When it took the lock (Unix seconds).
    pub started_unix: f64,
    /// What it runs, e.g. `run`.
    pub command: String,
    /// When it let go of the lock normally (Unix seconds); absent while it
    /// holds it, and when it ended without letting go (killed, crashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_unix: Option<f64>,
}

impl Holder {
    fn this_process(command: &str) -> Self {
        Self {
            pid: std::process::id(),
            host: host_name(),
            started_unix: unix_now(),
            command: command.to_owned(),
            released_unix: None,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {} (`{}` started {})",
            self.pid,
            self.host,
            self.command,
            crate::status::utc_date_time(self.started_unix)
        )
    }
}

/// An exclusive hold on a state directory; dropping it lets go.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
    holder: Holder,
}

impl StateLock {
    /// Takes the lock of `state_dir` (created if missing) for `command`, or
    /// fails at once when another process holds it.
    ///
    /// # Errors
    /// [`Error::Locked`] naming the holder; [`Error::Io`] when the folder or
    /// the lock file cannot be created or locked (an unwritable `state_dir`).
    pub fn acquire(state_dir: &Path, command: &str) -> Result<Self> {
        crate::private_fs::create_dir_all(state_dir)?;
        let path = state_dir.join(LOCK_FILE);
        let mut file = crate::private_fs::open_or_create(&path)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match try_lock(&file, Mode::Exclusive) {
                Ok(true) => break,
                Ok(false) if attempt < ATTEMPTS => std::thread::sleep(PAUSE),
                Ok(false) => {
                    return Err(Error::Locked {
                        state_dir: state_dir.to_path_buf(),
                        holder: read_holder(&mut file),
                    });
                }
                Err(e) => return Err(Error::io("locking", &path, e)),
            }
        }
        if let Some(last) = read_holder(&mut file)
            && last.released_unix.is_none()
        {
            warn!(
                previous = %last,
                "the previous run over this state directory ended without letting go of it \
                 (killed or crashed); taking it over"
            );
        }
        let holder = Holder::this_process(command);
        write_holder(&mut file, &holder).map_err(|e| Error::io("writing", &path, e))?;
        info!(lock = %path.display(), "holding the task's state directory");
        Ok(Self { file, path, holder })
    }

    /// This process's details as the lock file holds them.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    /// Marks the holder released (best effort: the lock itself goes with
    /// the file, which closes right after).
    fn drop(&mut self) {
        let mut holder = self.holder.clone();
        holder.released_unix = Some(unix_now());
        if let Err(e) = write_holder(&mut self.file, &holder) {
            warn!(path = %self.path.display(), error = %e, "could not mark the lock file released");
        }
    }
}

/// Whether a run holds a state directory, as [`probe`] finds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Liveness {
    /// A process holds the lock; its details when it wrote them already.
    Alive(Option<Holder>),
    /// Nobody holds it.
    NotRunning {
        /// The last holder, when one ever wrote its details.
        last: Option<Holder>,
    },
}

/// Asks the lock of `state_dir` whether a run holds it, without taking it
/// for more than a moment (shared, so it never blocks a run starting: see
/// [`StateLock::acquire`]'s retries) and without creating anything.
///
/// # Errors
/// [`Error::Io`] when the lock file exists but cannot be opened or locked.
pub fn probe(state_dir: &Path) -> Result<Liveness> {
    let path = state_dir.join(LOCK_FILE);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Liveness::NotRunning { last: None });
        }
        Err(e) => return Err(Error::io("opening", &path, e)),
    };
    let free = try_lock(&file, Mode::Shared).map_err(|e| Error::io("locking", &path, e))?;
    let holder = read_holder(&mut file);
    Ok(if free {
        Liveness::NotRunning { last: holder }
    } else {
        Liveness::Alive(holder)
    })
}

/// How [`try_lock`] locks.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Exclusive,
    Shared,
}

/// `flock(LOCK_NB)`: true when taken, false when another open file holds
/// a conflicting lock.
#[cfg(unix)]
fn try_lock(file: &File, mode: Mode) -> std::io::Result<bool> {
    use rustix::fs::{FlockOperation, flock};
    let op = match mode {
        Mode::Exclusive => FlockOperation::NonBlockingLockExclusive,
        Mode::Shared => FlockOperation::NonBlockingLockShared,
    };
    match flock(file, op) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Without `flock(2)` the lock is the file's existence only: not built.
#[cfg(not(unix))]
fn try_lock(_file: &File, _mode: Mode) -> std::io::Result<bool> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "state directory locks need a Unix system",
    ))
}

/// The details in the lock file (`None` when empty or unreadable: a holder
/// that has not written them yet).
fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_holder(file: &mut File, holder: &Holder) -> std::io::Result<()> {
    let json = serde_json::to_vec(holder).map_err(std::io::Error::other)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&json)?;
    file.sync_data()
}

/// This machine's host name (`unknown` when it has none).
fn host_name() -> String {
    #[cfg(unix)]
    {
        let name = rustix::system::uname();
        let name = name.nodename().to_string_lossy();
        if !name.is_empty() {
            return name.into_owned();
        }
    }
    "unknown".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_named_then_takes_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let first = StateLock::acquire(&state, "run").expect("first");
        let started = std::time::Instant::now();
        let err = StateLock::acquire(&state, "run").expect_err("second");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())) && text.contains("`run`"),
            "{text}"
        );
        assert!(matches!(
            err,
            Error::Locked {
                holder: Some(_),
                ..
            }
        ));
        let Liveness::Alive(Some(seen)) = probe(&state).expect("probe") else {
            panic!("held")
        };
        // (The start time goes through JSON: equal to the microsecond.)
        assert_eq!(
            (seen.pid, &seen.host, &seen.command),
            (
                first.holder().pid,
                &first.holder().host,
                &first.holder().command
            )
        );
        assert!((seen.started_unix - first.holder().started_unix).abs() < 1e-3);
        drop(first);
        let Liveness::NotRunning { last: Some(last) } = probe(&state).expect("probe") else {
            panic!("released")
        };
        assert!(last.released_unix.is_some());
        let again = StateLock::acquire(&state, "run").expect("free again");
        assert_eq!(again.holder().released_unix, None);
    }

    #[test]
    fn probing_creates_nothing_and_never_blocks_a_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            probe(dir.path()).expect("probe"),
            Liveness::NotRunning { last: None }
        );
        assert!(!dir.path().join(LOCK_FILE).exists());
        let lock = StateLock::acquire(dir.path(), "run").expect("lock");
        for _ in 0..3 {
            assert!(matches!(probe(dir.path()), Ok(Liveness::Alive(Some(_)))));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(lock.path())
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
