//! Heartbeat writes to the source (`[heartbeat]`), so that an idle source
//! still produces binlog events: the checkpoint keeps moving (the binlog
//! the task needs stays recent) and the lag stays measurable instead of
//! growing with the quiet.
//!
//! While the incremental phase runs, one row per task (keyed by the task's
//! `server_id`) of a small table is updated every `interval_seconds`:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS `dts`.`dts_heartbeat` (
//!   server_id INT UNSIGNED NOT NULL PRIMARY KEY, beat_at DATETIME(6) NOT NULL) ENGINE=InnoDB;
//! INSERT INTO `dts`.`dts_heartbeat` VALUES (5501, UTC_TIMESTAMP(6))
//!   ON DUPLICATE KEY UPDATE beat_at = VALUES(beat_at);
//! ```
//!
//! The task creates the database and the table when its user may (else a
//! DBA creates them, and the user needs INSERT and UPDATE on the table). The
//! heartbeat table is never synced: it is left out of the selection
//! ([`exclude`]), so its row events only move the position and the lag
//! ([`crate::status`]). A failed write is logged (once per distinct error)
//! and tried again at the next beat; it never stops the task.

use crate::config::TaskConfig;
use mysql_source::schema::quote_ident;
use mysql_source::{ConnectOptions, RawConn};
use serde::Deserialize;
use std::time::Duration;
use tracing::{info, warn};

/// The `[heartbeat]` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Write heartbeats (off unless asked: it writes to the source).
    #[serde(default)]
    pub enabled: bool,
    /// Seconds between writes (1–3600).
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    /// The table, `db.table`.
    #[serde(default = "default_table")]
    pub table: String,
}

fn default_interval() -> u64 {
    1
}
fn default_table() -> String {
    "dts.dts_heartbeat".into()
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_seconds: default_interval(),
            table: default_table(),
        }
    }
}

impl HeartbeatConfig {
    /// The table as `(database, table)`, when `table` names one.
    pub fn db_table(&self) -> Option<(&str, &str)> {
        self.table
            .split_once('.')
            .filter(|(d, t)| !d.is_empty() && !t.is_empty() && !t.contains('.'))
    }

    /// A value that cannot work: (key path, message).
    pub(crate) fn invalid(&self) -> Option<(Vec<&'static str>, String)> {
        if !(1..=3600).contains(&self.interval_seconds) {
            return Some((
                vec!["heartbeat", "interval_seconds"],
                format!(
                    "`heartbeat.interval_seconds` must be between 1 and 3600, but it is {}",
                    self.interval_seconds
                ),
            ));
        }
        if self.db_table().is_none() || self.table.contains('*') {
            return Some((
                vec!["heartbeat", "table"],
                format!(
                    "`heartbeat.table` must name one table as \"db.table\", but it is \"{}\"",
                    self.table
                ),
            ));
        }
        None
    }
}

/// Leaves the heartbeat table (when enabled) out of the selection, for
/// every reader of `cfg.objects`: schema, full and incremental phases,
/// verify.
pub fn exclude(cfg: &mut TaskConfig) {
    if cfg.heartbeat.enabled && cfg.heartbeat.db_table().is_some() {
        let table = cfg.heartbeat.table.clone();
        if !cfg.objects.exclude.contains(&table) {
            cfg.objects.exclude.push(table);
        }
    }
}

/// The writer; stops when dropped.
#[derive(Debug)]
pub struct Heartbeat {
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts writing heartbeats when `cfg` enables them.
pub fn start(cfg: &HeartbeatConfig, connect: &ConnectOptions, server_id: u32) -> Option<Heartbeat> {
    let (db, table) = cfg.db_table().filter(|_| cfg.enabled)?;
    let writer = Writer {
        connect: connect.clone(),
        db: quote_ident(db),
        table: format!("{}.{}", quote_ident(db), quote_ident(table)),
        server_id,
    };
    let interval = Duration::from_secs(cfg.interval_seconds.max(1));
    info!(table = %cfg.table, ?interval, "writing heartbeats to the source");
    Some(Heartbeat {
        handle: tokio::spawn(writer.run(interval)),
    })
}

struct Writer {
    connect: ConnectOptions,
    db: String,
    table: String,
    server_id: u32,
}

impl Writer {
    async fn run(self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut conn: Option<RawConn> = None;
        let mut created = false;
        let mut last_error: Option<String> = None;
        loop {
            tick.tick().await;
            match self.beat(&mut conn, &mut created).await {
                Ok(()) => {
                    if last_error.take().is_some() {
                        info!(table = %self.table, "heartbeat writes work again");
                    }
                }
                Err(e) => {
                    conn = None;
                    // The table may have gone with its database: create again.
                    created = false;
                    let msg = e.to_string();
                    if last_error.as_deref() != Some(msg.as_str()) {
                        warn!(
                            table = %self.table,
                            error = %msg,
                            "cannot write the heartbeat (the lag grows on an idle source); grant the task's user \
                             CREATE, INSERT and UPDATE on it, or create it as the heartbeat module docs show"
                        );
                        last_error = Some(msg);
                    }
                }
            }
        }
    }

    async fn beat(
        &self,
        conn: &mut Option<RawConn>,
        created: &mut bool,
    ) -> mysql_source::Result<()> {
        if conn.is_none() {
            *conn = Some(RawConn::connect(&self.connect).await?);
        }
        let Some(c) = conn.as_mut() else {
            return Ok(());
        };
        if !*created {
            // Without CREATE the statements fail even when the table exists:
            // the write below tells whether it does.
            let made = async {
                c.query_drop(&format!("CREATE DATABASE IF NOT EXISTS {}", self.db))
                    .await?;
                c.query_drop(&format!(
                    "CREATE TABLE IF NOT EXISTS {} (server_id INT UNSIGNED NOT NULL PRIMARY KEY, \
                     beat_at DATETIME(6) NOT NULL) ENGINE=InnoDB",
                    self.table
                ))
                .await
            }
            .await;
            match made {
                Ok(()) => {}
                Err(e) if e.is_transient() => return Err(e),
                Err(_) => {}
            }
            *created = true;
        }
        c.query_drop(&format!(
            "INSERT INTO {} (server_id, beat_at) VALUES ({}, UTC_TIMESTAMP(6)) \
             ON DUPLICATE KEY UPDATE beat_at = VALUES(beat_at)",
            self.table, self.server_id
        ))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_and_intervals_are_checked() {
        let ok = HeartbeatConfig {
            enabled: true,
            ..HeartbeatConfig::default()
        };
        assert_eq!(ok.db_table(), Some(("dts", "dts_heartbeat")));
        assert!(ok.invalid().is_none());
        for bad in ["heartbeat", "a.b.c", ".t", "db.*"] {
            let cfg = HeartbeatConfig {
                table: bad.into(),
                ..HeartbeatConfig::default()
            };
            let (key, _) = cfg.invalid().expect(bad);
            assert_eq!(key, ["heartbeat", "table"]);
        }
        let slow = HeartbeatConfig {
            interval_seconds: 0,
            ..HeartbeatConfig::default()
        };
        assert_eq!(
            slow.invalid().expect("zero").0,
            ["heartbeat", "interval_seconds"]
        );
    }
}
