//! Errors of the MySQL source.
//!
//! Each failure a caller may want to react to differently has its own
//! variant: an unreachable host is not a wrong password, which is not a bad
//! certificate, which is not a purged binlog.

use std::time::Duration;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to the source server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection URL could not be parsed.
    #[error("invalid MySQL URL: {0}")]
    Url(String),
    /// The TCP connection to the server could not be opened.
    #[error("cannot reach the MySQL server at {addr}: {source}")]
    Unreachable {
        /// `host:port` we tried.
        addr: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A connect or read did not finish in time.
    #[error("timed out after {after:?} while {what}")]
    Timeout {
        /// What we were waiting for.
        what: &'static str,
        /// The configured limit.
        after: Duration,
    },
    /// The established connection broke (reset, EOF, I/O error).
    #[error("the connection to the MySQL server broke: {0}")]
    Io(#[source] std::io::Error),
    /// The server refused the user name or password.
    #[error("access denied for user '{user}': {message} (check the user name and password)")]
    AccessDenied {
        /// The user we logged in as.
        user: String,
        /// The server's message.
        message: String,
    },
    /// Authentication would send the password (or something it can be
    /// recovered from) where the connection does not protect it, and no URL
    /// option allows that. Nothing derived from the password was sent.
    #[error("the server asks for {plugin}, which would send the password {exposure}; {remedy}")]
    InsecureAuth {
        /// The plugin (and step) that needs the password, e.g. `mysql_clear_password`.
        plugin: &'static str,
        /// How the password would travel, e.g. `unencrypted`.
        exposure: &'static str,
        /// The settings that allow it, naming the URL options.
        remedy: &'static str,
    },
    /// The server sent a packet longer than the configured cap
    /// (`ConnectOptions::max_packet_bytes`).
    #[error(
        "the server sent a packet longer than {limit} bytes (max-packet-bytes); \
         refusing to buffer it"
    )]
    PacketTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The server asked for an authentication plugin this client does not speak.
    #[error("the server asks for the unsupported authentication plugin '{0}'")]
    UnsupportedAuthPlugin(String),
    /// The server's certificate was rejected (unknown CA, wrong host name, expired, ...).
    #[error("the server's TLS certificate is not trusted: {0}")]
    Certificate(String),
    /// TLS could not be set up (no TLS on the server, bad CA file, handshake failure).
    #[error("TLS error: {0}")]
    Tls(String),
    /// The server answered with an error.
    #[error("MySQL server error {code} ({state}): {message}")]
    Server {
        /// The server's error number, e.g. 1045 for access denied.
        code: u16,
        /// The SQLSTATE.
        state: String,
        /// The server's message.
        message: String,
    },
    /// The binlog the stream needs is gone from the server (error 1236 and kin).
    #[error(
        "the binlog needed to resume is no longer on the server ({file}): {message}. \
         The changes in it are lost for this sync: take a new full snapshot of the tables \
         (and raise the server's binlog retention, e.g. expire_logs_days / binlog_expire_logs_seconds)"
    )]
    BinlogPurged {
        /// The binlog file (or GTID position) we asked for.
        file: String,
        /// The server's message.
        message: String,
    },
    /// Another replica uses the same server id, or the id is the source's own.
    #[error(
        "replica server id {server_id} is already in use ({detail}); give this sync its own server id"
    )]
    ServerIdInUse {
        /// The clashing id.
        server_id: u32,
        /// Who holds it.
        detail: String,
    },
    /// After a reconnect the server sent different events than before the drop.
    #[error("the binlog diverged after reconnecting: {0}")]
    Diverged(String),
    /// The server broke the wire protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server answered, but not in the shape we expected.
    #[error("unexpected answer from the MySQL server: {0}")]
    Unexpected(String),
    /// binlog-parser rejected an event.
    #[error("bad binlog event: {0}")]
    Parse(#[from] binlog_parser::Error),
    /// A binlog event could not be framed.
    #[error("cannot frame a binlog event: {0}")]
    Binlog(String),
    /// Building an Arrow batch failed.
    #[error("cannot build an Arrow batch: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A value of a result row could not be decoded into its Arrow column.
    #[error("cannot decode column `{column}`: {message}")]
    Decode {
        /// The column name.
        column: String,
        /// What was wrong with the value.
        message: String,
    },
    /// The table cannot be read as asked (no such table, unsupported key ...).
    #[error("cannot snapshot `{table}`: {message}")]
    Snapshot {
        /// `db.table`.
        table: String,
        /// Why.
        message: String,
    },
}

impl Error {
    /// True when retrying on a fresh connection may help (broken connection,
    /// timeout, server going away). Authentication, TLS, purged binlogs and
    /// protocol errors are final.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Io(_) | Error::Timeout { .. } | Error::Unreachable { .. } => true,
            // Killed connection, server shutdown, lost connection; a server
            // that is busy (too many connections) or a lock wait that timed
            // out or deadlocked: all heal by trying again later.
            Error::Server { code, .. } => matches!(
                code,
                1053 | 1927 | 2006 | 2013 | 1152 | 1159 | 1161 | 1040 | 1203 | 1205 | 1213
            ),
            _ => false,
        }
    }

    /// True when the server refused who we are or what we may do: a wrong
    /// user or password, a missing privilege, an expired password, or an
    /// authentication this client will not or cannot speak. Retrying with
    /// the same credentials cannot help; the user must fix them.
    pub fn is_auth(&self) -> bool {
        match self {
            Error::AccessDenied { .. }
            | Error::InsecureAuth { .. }
            | Error::UnsupportedAuthPlugin(_) => true,
            // ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_ERROR,
            // ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR,
            // ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR,
            // ER_MUST_CHANGE_PASSWORD, ER_MUST_CHANGE_PASSWORD_LOGIN.
            Error::Server { code, .. } => {
                matches!(code, 1044 | 1045 | 1142 | 1143 | 1227 | 1698 | 1820 | 1862)
            }
            _ => false,
        }
    }
}
