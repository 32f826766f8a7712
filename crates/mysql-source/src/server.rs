//! The server's identity and binlog settings: what the precheck and the
//! snapshot need to know before reading any row.

use crate::error::{Error, Result};
use mysql_async::prelude::Queryable;

/// A position in the server's binary log.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct BinlogPosition {
    /// Binlog file name, e.g. `mariadb-bin.000003`.
    pub file: String,
    /// Byte offset in that file.
    pub position: u64,
}

/// The server's version and the settings a row-based sync depends on.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// `SELECT VERSION()`.
    pub version: String,
    /// True for MariaDB servers.
    pub is_mariadb: bool,
    /// `@@server_id`.
    pub server_id: u32,
    /// `@@log_bin`: binary logging on.
    pub log_bin: bool,
    /// `@@binlog_format`, e.g. `ROW`.
    pub binlog_format: String,
    /// `@@binlog_row_image`, e.g. `FULL`.
    pub binlog_row_image: String,
    /// `@@binlog_row_metadata` when the server has it (MySQL 8.0.1+, MariaDB 10.5+).
    pub binlog_row_metadata: Option<String>,
    /// `@@binlog_checksum`, e.g. `CRC32`.
    pub binlog_checksum: String,
    /// The current binlog position (`SHOW MASTER STATUS`); `None` when binary logging is off.
    pub position: Option<BinlogPosition>,
}

impl ServerInfo {
    /// Connects to `url` (`mysql://user:pass@host:port`) and reads the settings.
    ///
    /// # Errors
    /// [`Error::Url`] for a malformed URL, [`Error::Connection`] when the
    /// server is unreachable, [`Error::Server`] when it refuses a query.
    pub async fn read(url: &str) -> Result<Self> {
        let opts = mysql_async::Opts::from_url(url).map_err(|e| Error::Url(e.to_string()))?;
        let mut conn = mysql_async::Conn::new(opts).await?;
        let info = Self::read_from(&mut conn).await;
        conn.disconnect().await?;
        info
    }

    /// Reads the settings over an open connection.
    ///
    /// # Errors
    /// As [`ServerInfo::read`].
    pub async fn read_from(conn: &mut mysql_async::Conn) -> Result<Self> {
        let row: Option<(String, u32, u8, String, String, String)> = conn
            .query_first(
                "SELECT VERSION(), @@server_id, @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_checksum",
            )
            .await?;
        let (version, server_id, log_bin, binlog_format, binlog_row_image, binlog_checksum) =
            row.ok_or_else(|| Error::Unexpected("no row for the server variables".into()))?;
        let metadata: Option<(String, String)> = conn
            .query_first("SHOW GLOBAL VARIABLES LIKE 'binlog_row_metadata'")
            .await?;
        let position = if log_bin == 1 {
            Some(current_position(conn).await?)
        } else {
            None
        };
        Ok(Self {
            is_mariadb: version.to_ascii_lowercase().contains("mariadb"),
            version,
            server_id,
            log_bin: log_bin == 1,
            binlog_format,
            binlog_row_image,
            binlog_row_metadata: metadata.map(|(_, v)| v),
            binlog_checksum,
            position,
        })
    }
}

/// The current end of the binary log (`SHOW MASTER STATUS`).
///
/// # Errors
/// [`Error::Unexpected`] when binary logging is off (the statement returns no row).
pub async fn current_position(conn: &mut mysql_async::Conn) -> Result<BinlogPosition> {
    let row: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await?;
    let row = row.ok_or_else(|| {
        Error::Unexpected("SHOW MASTER STATUS returned no row: binary logging is off".into())
    })?;
    let file: Option<String> = row.get(0);
    let position: Option<u64> = row.get(1);
    match (file, position) {
        (Some(file), Some(position)) => Ok(BinlogPosition { file, position }),
        _ => Err(Error::Unexpected(
            "SHOW MASTER STATUS row without file and position".into(),
        )),
    }
}
