//! Versioned checkpoints, written atomically.
//!
//! A checkpoint is one JSON file `<state_dir>/<name>.json` holding a format
//! version, a CRC-32 of the state and the caller's state.
//! [`CheckpointStore::save`] writes a temp file, fsyncs it, renames it over
//! the old one and fsyncs the directory, so a crash at any instant leaves
//! either the old or the new checkpoint whole. A file that cannot be parsed,
//! whose state does not match its checksum (damaged or edited after it was
//! written, even if it is still valid JSON), or that a newer build wrote, is
//! refused with a typed error: the task never silently restarts from zero,
//! nor resumes from a position or counter it did not write.
//!
//! The checksum covers the state's compact JSON rendering
//! (`serde_json::to_vec` of the parsed value), so reformatting the file does
//! not matter but any changed value does. Checkpoints written before the
//! checksum existed (no `crc32` field) still load.

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};
use std::fs::{self, File};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// The checkpoint format this build writes and the newest it reads.
///
/// 2: a position may lie inside a transaction (`within`, for transactions
/// committed in parts); a build that reads only 1 would replay such a part.
/// 3: the incremental state lists the prepared, undecided XA branches
/// (`xa`), and may be adding or removing tables (`added`, `removed`,
/// baselines, re-snapshots); a build that reads only 2 would drop them, and
/// the changes, baselines and start positions with them.
pub const CHECKPOINT_VERSION: u32 = 3;

#[derive(serde::Deserialize)]
struct VersionProbe {
    version: u32,
}

#[derive(Serialize, serde::Deserialize)]
struct Envelope<T> {
    version: u32,
    /// CRC-32 of the compact JSON of `state`; absent in older checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crc32: Option<u32>,
    state: T,
}

/// The checksum of a state value (see the module docs).
fn checksum(state: &serde_json::Value) -> Result<u32> {
    let bytes = serde_json::to_vec(state).map_err(Error::serialize("checkpoint state"))?;
    Ok(crc32fast::hash(&bytes))
}

/// Loads and saves one checkpoint file of state `T`.
#[derive(Debug)]
pub struct CheckpointStore<T> {
    path: PathBuf,
    _state: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> CheckpointStore<T> {
    /// A store for `<dir>/<name>.json`; the directory is created on first save.
    pub fn new(dir: impl AsRef<Path>, name: &str) -> Self {
        Self {
            path: dir.as_ref().join(format!("{name}.json")),
            _state: PhantomData,
        }
    }

    /// Where the checkpoint lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or `None` when no checkpoint was ever written.
    ///
    /// # Errors
    /// [`Error::CorruptCheckpoint`] for a file that is not a checkpoint,
    /// [`Error::CheckpointTooNew`] for one from a newer build, [`Error::Io`]
    /// when it cannot be read.
    pub fn load(&self) -> Result<Option<T>> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading checkpoint", &self.path, e)),
        };
        let corrupt = |reason: String| Error::CorruptCheckpoint {
            path: self.path.clone(),
            reason,
        };
        let probe: VersionProbe =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if probe.version > CHECKPOINT_VERSION {
            return Err(Error::CheckpointTooNew {
                path: self.path.clone(),
                found: probe.version,
                supported: CHECKPOINT_VERSION,
            });
        }
        let envelope: Envelope<serde_json::Value> =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if let Some(expected) = envelope.crc32 {
            let found = checksum(&envelope.state)?;
            if found != expected {
                return Err(corrupt(format!(
                    "its state does not match its checksum (crc32 {found:08x}, written as \
                     {expected:08x}): it was damaged or edited after it was written"
                )));
            }
        }
        let state = serde_json::from_value(envelope.state).map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(state))
    }

    /// Replaces the checkpoint with `state`, atomically and durably.
    ///
    /// # Errors
    /// [`Error::Io`] when any step (create, write, fsync, rename) fails; the
    /// previous checkpoint is then still in place.
    pub fn save(&self, state: &T) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        crate::private_fs::create_dir_all(dir)?;
        let state = serde_json::to_value(state).map_err(Error::serialize("checkpoint state"))?;
        let envelope = Envelope {
            version: CHECKPOINT_VERSION,
            crc32: Some(checksum(&state)?),
            state,
        };
        let json =
            serde_json::to_vec_pretty(&envelope).map_err(Error::serialize("checkpoint state"))?;
        let tmp = self.path.with_extension("json.tmp");
        write_durably(&tmp, &json)?;
        fs::rename(&tmp, &self.path)
            .map_err(|e| Error::io("renaming checkpoint into place", &self.path, e))?;
        sync_dir(dir)
    }
}

pub(crate) use crate::private_fs::write_durably;

/// Fsyncs a directory so that a rename inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsyncing directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct State {
        position: u64,
        file: String,
    }

    fn state(position: u64) -> State {
        State {
            position,
            file: "mariadb-bin.000001".into(),
        }
    }

    #[test]
    fn absent_then_saved_then_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::<State>::new(dir.path().join("state"), "task");
        assert_eq!(store.load().expect("load"), None);
        store.save(&state(4)).expect("save");
        assert_eq!(store.load().expect("load"), Some(state(4)));
        store.save(&state(1234)).expect("save");
        assert_eq!(store.load().expect("load"), Some(state(1234)));
        assert!(
            !store.path().with_extension("json.tmp").exists(),
            "temp file left behind"
        );
    }

    #[test]
    fn corrupt_file_is_refused_not_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::<State>::new(dir.path(), "task");
        store.save(&state(99)).expect("save");
        let mut bytes = fs::read(store.path()).expect("read");
        bytes.truncate(bytes.len() / 2);
        fs::write(store.path(), &bytes).expect("truncate");
        let err = store.load().expect_err("a torn checkpoint must not load");
        assert!(matches!(err, Error::CorruptCheckpoint { .. }), "{err}");
        assert!(
            err.to_string().contains("refusing to start from scratch"),
            "{err}"
        );
    }

    #[test]
    fn a_changed_value_that_still_parses_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::<State>::new(dir.path(), "task");
        store.save(&state(1234)).expect("save");
        let text = fs::read_to_string(store.path()).expect("read");
        assert!(text.contains("\"crc32\""), "{text}");
        // One digit of the position: valid JSON, a valid state, not the one written.
        fs::write(store.path(), text.replace("1234", "1204")).expect("edit");
        let err = store
            .load()
            .expect_err("an edited checkpoint must not load");
        assert!(matches!(err, Error::CorruptCheckpoint { .. }), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn reformatting_keeps_it_and_a_checkpoint_without_checksum_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::<State>::new(dir.path(), "task");
        store.save(&state(7)).expect("save");
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(store.path()).expect("read")).expect("json");
        fs::write(store.path(), serde_json::to_vec(&v).expect("compact")).expect("rewrite");
        assert_eq!(store.load().expect("load"), Some(state(7)));
        fs::write(
            store.path(),
            br#"{"version": 1, "state": {"position": 9, "file": "mariadb-bin.000001"}}"#,
        )
        .expect("write");
        assert_eq!(store.load().expect("load"), Some(state(9)));
    }

    #[test]
    fn newer_version_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::<State>::new(dir.path(), "task");
        fs::write(
            store.path(),
            br#"{"version": 7, "state": {"future": true}}"#,
        )
        .expect("write");
        let err = store.load().expect_err("newer format");
        assert!(
            matches!(
                err,
                Error::CheckpointTooNew {
                    found: 7,
                    supported: CHECKPOINT_VERSION,
                    ..
                }
            ),
            "{err}"
        );
    }
}
