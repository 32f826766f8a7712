//! The server's identity and binlog settings: what the precheck and the
//! snapshot need to know before reading any row.

use crate::conn::{ConnectOptions, RawConn};
use crate::error::{Error, Result};

/// A position in the server's binary log.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct BinlogPosition {
    /// Binlog file name, e.g. `mariadb-bin.000003`.
    pub file: String,
    /// Byte offset in that file.
    pub position: u64,
}

impl std::fmt::Display for BinlogPosition {
    /// `file:position`, as logs and errors show it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.position)
    }
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
    /// Connects to `url` (`mysql://user:pass@host:port`, see
    /// [`ConnectOptions::from_url`]) and reads the settings.
    ///
    /// # Errors
    /// [`Error::Url`] for a malformed URL, [`Error::Unreachable`] when the
    /// server is unreachable, the other connection errors of
    /// [`RawConn::connect`], [`Error::Server`] when it refuses a query.
    pub async fn read(url: &str) -> Result<Self> {
        let opts = ConnectOptions::from_url(url)?;
        let mut conn = RawConn::connect(&opts).await?;
        let info = Self::read_from(&mut conn).await;
        conn.close().await?;
        info
    }

    /// Reads the settings over an open connection.
    ///
    /// # Errors
    /// As [`ServerInfo::read`].
    pub async fn read_from(conn: &mut RawConn) -> Result<Self> {
        let rows = conn
            .query_strings(
                "SELECT VERSION(), @@server_id, @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_checksum",
            )
            .await?;
        let row = rows
            .into_iter()
            .next()
            .ok_or_else(|| Error::Unexpected("no row for the server variables".into()))?;
        let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let version = get(0);
        let server_id = get(1)
            .parse::<u32>()
            .map_err(|_| Error::Unexpected(format!("@@server_id is not a number: '{}'", get(1))))?;
        let log_bin = get(2) == "1";
        let metadata = conn
            .query_strings("SHOW GLOBAL VARIABLES LIKE 'binlog_row_metadata'")
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.get(1).cloned().flatten());
        let position = if log_bin {
            Some(current_position(conn).await?)
        } else {
            None
        };
        Ok(Self {
            is_mariadb: version.to_ascii_lowercase().contains("mariadb"),
            version,
            server_id,
            log_bin,
            binlog_format: get(3),
            binlog_row_image: get(4),
            binlog_row_metadata: metadata,
            binlog_checksum: get(5),
            position,
        })
    }
}

/// The current end of the binary log (`SHOW MASTER STATUS`, or MySQL
/// 8.4's `SHOW BINARY LOG STATUS`).
///
/// # Errors
/// [`Error::Unexpected`] when binary logging is off (the statement returns no row).
pub async fn current_position(conn: &mut RawConn) -> Result<BinlogPosition> {
    let rows = match conn.query_strings("SHOW MASTER STATUS").await {
        Ok(r) => r,
        Err(Error::Server { .. }) => conn.query_strings("SHOW BINARY LOG STATUS").await?,
        Err(e) => return Err(e),
    };
    let row = rows.into_iter().next().ok_or_else(|| {
        Error::Unexpected("SHOW MASTER STATUS returned no row: binary logging is off".into())
    })?;
    let file = row.first().cloned().flatten();
    let position = row.get(1).cloned().flatten().and_then(|p| p.parse().ok());
    match (file, position) {
        (Some(file), Some(position)) => Ok(BinlogPosition { file, position }),
        _ => Err(Error::Unexpected(
            "SHOW MASTER STATUS row without file and position".into(),
        )),
    }
}
