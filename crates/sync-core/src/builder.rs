//! A task's settings built in code, for programs that embed the task.
//!
//! [`TaskBuilder`] sets the keys of a task file by name and type, then
//! checks the result exactly as [`crate::taskfile::parse`] checks a file
//! (same defaults, same errors), so an embedder needs no TOML text and no
//! second copy of any default.
//!
//! ```
//! use sync_core::builder::TaskBuilder;
//! use sync_core::config::SyncType;
//!
//! let cfg = TaskBuilder::new("mysql://sync@db.internal:3306", 5599)
//!     .include(["shop.*"])
//!     .exclude(["shop.audit_*"])
//!     .types([SyncType::Schema, SyncType::Full, SyncType::Incremental])
//!     .state_dir("./state")
//!     .set("sync", "chunk_rows", 20_000)
//!     .build()
//!     .expect("valid settings");
//! assert_eq!(cfg.sync.chunk_rows, 20_000);
//! // No destination: the program passes its own sink to `TaskRunner::new`.
//! assert!(matches!(cfg.destination, sync_core::config::DestinationConfig::Embedded));
//! ```

use crate::config::{SyncType, TaskConfig};
use crate::taskfile::ConfigError;
use std::path::Path;

/// The name the builder's settings go by in its errors.
const ORIGIN: &str = "TaskBuilder";

/// Builds a [`TaskConfig`]; see the module docs.
#[derive(Clone, Debug)]
pub struct TaskBuilder {
    /// Keys by section header (`sync`, `sync.ddl`, `objects.tables."shop.t"`).
    sections: std::collections::BTreeMap<String, toml::Table>,
}

impl TaskBuilder {
    /// Settings reading from the server at `source_url` as replica
    /// `server_id`; everything else at its default until set.
    pub fn new(source_url: &str, server_id: u32) -> Self {
        Self {
            sections: std::collections::BTreeMap::new(),
        }
        .set("source", "url", source_url)
        .set("source", "server_id", i64::from(server_id))
        .set("objects", "include", toml::Value::Array(Vec::new()))
        .set("sync", "types", toml::Value::Array(Vec::new()))
        .set("sync", "state_dir", "state")
    }

    /// `[objects] include`: the `db.table` patterns to sync (`*` and `?`).
    pub fn include<S: Into<String>>(self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.set("objects", "include", strings(patterns))
    }

    /// `[objects] exclude`: patterns left out of `include`.
    pub fn exclude<S: Into<String>>(self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.set("objects", "exclude", strings(patterns))
    }

    /// `[sync] types`: the phases to run.
    pub fn types(self, types: impl IntoIterator<Item = SyncType>) -> Self {
        let names = types.into_iter().map(|t| match t {
            SyncType::Schema => "schema",
            SyncType::Full => "full",
            SyncType::Incremental => "incremental",
        });
        self.set("sync", "types", strings(names))
    }

    /// `[sync] state_dir`: where the checkpoint and the task's files live.
    pub fn state_dir(self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_string_lossy().into_owned();
        self.set("sync", "state_dir", path)
    }

    /// `[destination]` as a local Parquet warehouse at `path` (what
    /// [`crate::sink::open`] opens; not needed when the program passes its
    /// own sink).
    pub fn local_warehouse(self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_string_lossy().into_owned();
        self.set("destination", "kind", "local")
            .set("destination", "path", path)
    }

    /// Any other key of the task file: `section` is its header as a task
    /// file writes it between brackets (`"sync"`, `"sync.ddl"`,
    /// `"objects.tables.\"shop.orders\""`), `key` the key. Checked, like
    /// every setting, by [`TaskBuilder::build`].
    pub fn set(mut self, section: &str, key: &str, value: impl Into<toml::Value>) -> Self {
        self.sections
            .entry(section.to_owned())
            .or_default()
            .insert(key.to_owned(), value.into());
        self
    }

    /// The settings, checked as a task file is.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key (`source.server_id`, …) and what is
    /// wrong, as for a task file; its `file` is `TaskBuilder`.
    pub fn build(self) -> Result<TaskConfig, ConfigError> {
        let mut text = String::new();
        for (section, keys) in &self.sections {
            let body = toml::to_string(keys).map_err(|e| ConfigError {
                file: ORIGIN.to_owned(),
                line: 0,
                key: Some(section.clone()),
                message: format!("the settings cannot be written as TOML: {e}"),
            })?;
            text.push_str(&format!("[{section}]\n{body}\n"));
        }
        crate::taskfile::parse(&text, ORIGIN)
    }
}

fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> toml::Value {
    toml::Value::Array(
        items
            .into_iter()
            .map(|s| toml::Value::String(s.into()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DestinationConfig;

    #[test]
    fn builds_what_the_same_task_file_gives() {
        let built = TaskBuilder::new("mysql://u@h:3306", 77)
            .include(["shop.*"])
            .types([SyncType::Schema, SyncType::Full])
            .state_dir("st")
            .local_warehouse("wh")
            .set("throttle", "full_rows_per_second", 500)
            .set("sync.ddl", "rewritten_rows", "default")
            .set("objects.tables.\"shop.t\"", "name", "t2")
            .build()
            .expect("settings");
        let file = crate::taskfile::parse(
            "[source]\nurl = \"mysql://u@h:3306\"\nserver_id = 77\n\
             [destination]\nkind = \"local\"\npath = \"wh\"\n\
             [objects]\ninclude = [\"shop.*\"]\n\
             [sync]\ntypes = [\"schema\", \"full\"]\nstate_dir = \"st\"\n\
             [objects.tables.\"shop.t\"]\nname = \"t2\"\n\
             [sync.ddl]\nrewritten_rows = \"default\"\n\
             [throttle]\nfull_rows_per_second = 500\n",
            "task.toml",
        )
        .expect("file");
        assert_eq!(format!("{built:?}"), format!("{file:?}"));
        assert!(matches!(built.destination, DestinationConfig::Local { .. }));
    }

    #[test]
    fn errors_name_the_key_as_for_a_file() {
        let err = TaskBuilder::new("mysql://u@h:3306", 0)
            .include(["shop.*"])
            .types([SyncType::Full])
            .build()
            .expect_err("server_id 0");
        assert_eq!(err.file, "TaskBuilder");
        assert_eq!(err.key.as_deref(), Some("source.server_id"), "{err}");
        let err = TaskBuilder::new("mysql://u@h:3306", 1)
            .include(["shop.*"])
            .types([SyncType::Full])
            .set("sync", "no_such_key", true)
            .build()
            .expect_err("unknown key");
        assert!(err.to_string().contains("no_such_key"), "{err}");
    }

    #[test]
    fn without_a_destination_the_task_is_embedded() {
        let cfg = TaskBuilder::new("mysql://u@h:3306", 1)
            .include(["shop.*"])
            .types([SyncType::Incremental])
            .build()
            .expect("settings");
        assert!(matches!(cfg.destination, DestinationConfig::Embedded));
        let err = crate::sink::open(&cfg).err().expect("no sink to open");
        assert!(
            err.to_string().contains("no [destination] section"),
            "{err}"
        );
    }
}
