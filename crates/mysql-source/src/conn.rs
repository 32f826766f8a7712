//! A raw async MySQL connection: the handshake, TLS, text queries and
//! prepared statements over the packet framing, with the bytes kept visible.
//!
//! The replication stream and the snapshot both need what a general client
//! hides: the binlog packets as [`Bytes`] slices of the read buffer (no copy
//! per event), and result rows as raw packets that the snapshot decodes
//! straight into Arrow builders. Packet types and scrambles come from
//! `mysql_common`; this module only moves bytes.

use crate::auth::{self, Channel};
use crate::error::{Error, Result};
use crate::packet::{PacketIo, server_error};
use crate::tls::{self, TlsMode};
use bytes::Bytes;
use mysql_common_037::constants::{CapabilityFlags, StatusFlags};
use mysql_common_037::io::ParseBuf;
use mysql_common_037::packets::{Column, HandshakePacket, SslRequest};
use mysql_common_037::proto::MySerialize;
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::net::TcpStream;
use tracing::warn;

// Options sit below the connection and the authentication exchange that
// both read them; this is their public path.
pub use crate::options::{ConnectOptions, DEFAULT_MAX_PACKET_BYTES, redact_url};

/// `max_packet_size` announced in the handshake (1 GiB, the server maximum).
const MAX_PACKET_SIZE: u32 = 1 << 30;
/// Logs once per server and kind of weakness that the connection does not
/// protect what travels over it (not once per connection: a snapshot opens
/// many).
fn warn_unprotected(opts: &ConnectOptions, tls: bool) {
    let what = match (tls, opts.tls) {
        (true, TlsMode::VerifyCa | TlsMode::VerifyIdentity) => return,
        (true, _) => {
            "encrypted, but the server's certificate is not verified (a man in the middle can read it)"
        }
        (false, TlsMode::Disabled) => "unencrypted (ssl-mode=disabled)",
        (false, _) => "unencrypted: the server does not offer TLS",
    };
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let first = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(format!("{}:{}:{what}", opts.host, opts.port));
    if first {
        warn!(
            host = %opts.host,
            port = opts.port,
            ssl_mode = ?opts.tls,
            "the connection to the MySQL server is {what}; connect with \
             ssl-mode=verify_identity (or ssl-ca=PATH for verify_ca) to protect it"
        );
    }
}

/// What the server told about itself in the handshake.
#[derive(Clone, Debug)]
pub struct ServerHello {
    /// Version string, e.g. `5.5.5-10.11.6-MariaDB`.
    pub version: String,
    /// True for MariaDB.
    pub is_mariadb: bool,
    /// The server's thread id of this connection (for `KILL`).
    pub connection_id: u32,
    /// Authentication plugin that finally accepted us.
    pub auth_plugin: String,
    /// True when the connection is encrypted.
    pub tls: bool,
}

/// One column of a text result set.
#[derive(Clone, Debug)]
pub struct ResultColumn {
    /// Column name (alias).
    pub name: String,
    /// Wire type (`MYSQL_TYPE_*`).
    pub column_type: u8,
    /// Column flags (`UNSIGNED_FLAG`, `BINARY_FLAG`, ...).
    pub flags: u16,
    /// Collation id (63 = binary).
    pub charset: u16,
}

/// A statement prepared on one connection (see [`RawConn::prepare`]).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Prepared {
    id: u32,
}

/// A raw connection to a MySQL-compatible server.
pub struct RawConn {
    io: PacketIo,
    caps: CapabilityFlags,
    hello: ServerHello,
    /// True once a result set was started and not read to its end.
    in_result: bool,
}

impl std::fmt::Debug for RawConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawConn")
            .field("hello", &self.hello)
            .finish_non_exhaustive()
    }
}

impl RawConn {
    /// Connects, negotiates TLS and authenticates.
    ///
    /// # Errors
    /// [`Error::Unreachable`] (nothing listens), [`Error::Timeout`],
    /// [`Error::Tls`]/[`Error::Certificate`], [`Error::AccessDenied`],
    /// [`Error::UnsupportedAuthPlugin`], [`Error::Server`].
    pub async fn connect(opts: &ConnectOptions) -> Result<Self> {
        let limit = opts.connect_timeout;
        match tokio::time::timeout(limit, Self::connect_inner(opts)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                what: "connecting and logging in",
                after: limit,
            }),
        }
    }

    async fn connect_inner(opts: &ConnectOptions) -> Result<Self> {
        let addr = format!("{}:{}", opts.host, opts.port);
        let tcp = TcpStream::connect((opts.host.as_str(), opts.port))
            .await
            .map_err(|source| Error::Unreachable {
                addr: addr.clone(),
                source,
            })?;
        tcp.set_nodelay(true).map_err(Error::Io)?;
        let mut conn = Self {
            io: PacketIo::new(tcp, opts.read_timeout, opts.max_packet_bytes),
            caps: CapabilityFlags::empty(),
            hello: ServerHello {
                version: String::new(),
                is_mariadb: false,
                connection_id: 0,
                auth_plugin: String::new(),
                tls: false,
            },
            in_result: false,
        };
        let packet = conn.read_packet().await?;
        if packet.first() == Some(&0xff) {
            return Err(conn.server_error(&packet));
        }
        let handshake: HandshakePacket<'_> = ParseBuf(&packet)
            .parse(())
            .map_err(|e| Error::Protocol(format!("bad initial handshake: {e}")))?;
        let server_caps = handshake.capabilities();
        conn.hello.version = handshake.server_version_str().into_owned();
        conn.hello.is_mariadb = conn.hello.version.to_ascii_lowercase().contains("mariadb");
        conn.hello.connection_id = handshake.connection_id();

        let mut caps = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_LONG_PASSWORD
            | CapabilityFlags::CLIENT_LONG_FLAG
            | CapabilityFlags::CLIENT_TRANSACTIONS
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | CapabilityFlags::CLIENT_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PS_MULTI_RESULTS;
        if opts.database.is_some() {
            caps |= CapabilityFlags::CLIENT_CONNECT_WITH_DB;
        }
        caps &= server_caps | CapabilityFlags::CLIENT_CONNECT_WITH_DB;
        let server_tls = server_caps.contains(CapabilityFlags::CLIENT_SSL);
        let want_tls = match opts.tls {
            TlsMode::Disabled => false,
            TlsMode::Preferred => server_tls,
            _ => {
                if !server_tls {
                    return Err(Error::Tls(format!(
                        "TLS mode {:?} asked for, but the server at {addr} does not offer TLS",
                        opts.tls
                    )));
                }
                true
            }
        };
        if want_tls {
            caps |= CapabilityFlags::CLIENT_SSL;
            let mut buf = Vec::new();
            SslRequest::new(caps, MAX_PACKET_SIZE, 45).serialize(&mut buf);
            conn.write_packet(&buf).await?;
            let config = tls::client_config(opts.tls, opts.ca_pem.as_deref())?;
            let name = tls::server_name(opts.tls_server_name.as_deref().unwrap_or(&opts.host))?;
            conn.io.start_tls(config, name).await?;
            conn.hello.tls = true;
        }
        warn_unprotected(opts, conn.hello.tls);
        conn.caps = caps;
        let channel = Channel::of(conn.hello.tls, opts);
        let plugin = auth::authenticate(&mut conn.io, caps, channel, &handshake, opts).await?;
        conn.hello.auth_plugin = plugin;
        Ok(conn)
    }

    /// What the server said about itself.
    pub fn hello(&self) -> &ServerHello {
        &self.hello
    }

    /// Changes the read timeout (e.g. to cover the heartbeat period of a dump).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.io.set_read_timeout(timeout);
    }

    /// Reads one logical packet (joining 16 MiB continuation packets); the
    /// result shares the read buffer's allocation when it fits one frame.
    /// Cancel-safe: bytes read before a cancellation stay buffered.
    ///
    /// # Errors
    /// [`Error::Io`] on a broken connection, [`Error::Timeout`] when the read
    /// timeout passes, [`Error::PacketTooLarge`] when the packet would pass
    /// [`ConnectOptions::max_packet_bytes`] (checked on each frame's header,
    /// before its bytes are buffered).
    pub async fn read_packet(&mut self) -> Result<Bytes> {
        self.io.read_packet().await
    }

    /// Writes one logical packet with the current sequence id.
    ///
    /// # Errors
    /// [`Error::Io`] on a broken connection.
    pub async fn write_packet(&mut self, payload: &[u8]) -> Result<()> {
        self.io.write_packet(payload).await
    }

    /// Sends a command packet (sequence id restarts at 0).
    ///
    /// # Errors
    /// [`Error::Io`] on a broken connection.
    pub async fn send_command(&mut self, payload: &[u8]) -> Result<()> {
        if self.in_result {
            return Err(Error::Protocol(
                "a result set is still being read on this connection".into(),
            ));
        }
        self.io.reset_seq();
        self.write_packet(payload).await
    }

    /// Turns an ERR packet into an error.
    pub(crate) fn server_error(&self, packet: &[u8]) -> Error {
        server_error(packet, self.caps)
    }

    /// Runs a statement that returns no rows (or whose rows are dropped).
    ///
    /// # Errors
    /// [`Error::Server`] when the server refuses it, I/O errors.
    pub async fn query_drop(&mut self, sql: &str) -> Result<()> {
        self.start_query(sql).await?;
        while self.next_row().await?.is_some() {}
        Ok(())
    }

    /// Runs a query and collects its rows as optional strings (for small
    /// control queries; the snapshot uses [`RawConn::next_row`]).
    ///
    /// # Errors
    /// As [`RawConn::query_drop`].
    pub async fn query_strings(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let columns = self.start_query(sql).await?;
        let mut rows = Vec::new();
        while let Some(row) = self.next_row().await? {
            let mut cells = TextRow::new(&row);
            let mut out = Vec::with_capacity(columns.len());
            for _ in 0..columns.len() {
                out.push(
                    cells
                        .next_cell()?
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                );
            }
            rows.push(out);
        }
        Ok(rows)
    }

    /// Sends a text query and reads the column definitions. Rows follow
    /// through [`RawConn::next_row`]; a statement without a result set gives
    /// no columns and no rows.
    ///
    /// # Errors
    /// [`Error::Server`] when the server refuses the statement.
    pub async fn start_query(&mut self, sql: &str) -> Result<Vec<ResultColumn>> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(0x03); // COM_QUERY
        payload.extend_from_slice(sql.as_bytes());
        self.send_command(&payload).await?;
        self.read_result_header().await
    }

    /// Prepares `sql` (`COM_STMT_PREPARE`) for [`RawConn::execute`]; the
    /// statement takes no parameters (its values are literals).
    ///
    /// # Errors
    /// [`Error::Server`] when the server refuses it (a syntax error, or
    /// prepared statements disabled: `max_prepared_stmt_count = 0`).
    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(0x16); // COM_STMT_PREPARE
        payload.extend_from_slice(sql.as_bytes());
        self.send_command(&payload).await?;
        let ok = self.read_packet().await?;
        match ok.first() {
            Some(0x00) if ok.len() >= 12 => {}
            Some(0xff) => return Err(self.server_error(&ok)),
            _ => return Err(Error::Protocol("bad COM_STMT_PREPARE response".into())),
        }
        let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
        let columns = u16::from_le_bytes([ok[5], ok[6]]);
        let params = u16::from_le_bytes([ok[7], ok[8]]);
        let prepared = Prepared { id };
        // Parameter and column definitions (each list closed by an EOF);
        // the execute sends the columns again, so both are skipped here.
        for count in [params, columns] {
            if count == 0 {
                continue;
            }
            for _ in 0..count {
                self.read_packet().await?;
            }
            if self.read_packet().await?.first() != Some(&0xfe) {
                return Err(Error::Protocol(
                    "missing EOF after the prepared statement's definitions".into(),
                ));
            }
        }
        if params != 0 {
            self.close_statement(prepared).await?;
            return Err(Error::Protocol(
                "a prepared snapshot statement must take no parameters".into(),
            ));
        }
        Ok(prepared)
    }

    /// Executes a prepared statement (`COM_STMT_EXECUTE`, no cursor) and
    /// reads its column definitions; rows follow through
    /// [`RawConn::next_row`] in the binary row format ([`BinaryRow`](crate::binary_row::BinaryRow)).
    ///
    /// # Errors
    /// [`Error::Server`] when the execution fails.
    pub async fn execute(&mut self, stmt: Prepared) -> Result<Vec<ResultColumn>> {
        let mut payload = [0u8; 10];
        payload[0] = 0x17; // COM_STMT_EXECUTE
        payload[1..5].copy_from_slice(&stmt.id.to_le_bytes());
        // flags 0: no cursor, rows stream as for a text query
        payload[6..10].copy_from_slice(&1u32.to_le_bytes()); // iteration count
        self.send_command(&payload).await?;
        self.read_result_header().await
    }

    /// Frees a prepared statement (`COM_STMT_CLOSE`, which has no reply).
    ///
    /// # Errors
    /// [`Error::Io`] on a broken connection.
    pub async fn close_statement(&mut self, stmt: Prepared) -> Result<()> {
        let mut payload = [0u8; 5];
        payload[0] = 0x19; // COM_STMT_CLOSE
        payload[1..5].copy_from_slice(&stmt.id.to_le_bytes());
        self.send_command(&payload).await
    }

    /// The column count and definitions that start a result set (or the
    /// OK of a statement without one).
    async fn read_result_header(&mut self) -> Result<Vec<ResultColumn>> {
        let first = self.read_packet().await?;
        match first.first() {
            Some(0x00) => return Ok(Vec::new()),
            Some(0xff) => return Err(self.server_error(&first)),
            Some(0xfb) => {
                return Err(Error::Protocol(
                    "the server asked for LOCAL INFILE data".into(),
                ));
            }
            None => {
                return Err(Error::Protocol(
                    "empty packet instead of a result set".into(),
                ));
            }
            _ => {}
        }
        let count = ParseBuf(&first)
            .checked_eat_lenenc_int()
            .ok_or_else(|| Error::Protocol("bad column count".into()))?;
        // Servers allow 4096 columns; a count far beyond is a broken peer.
        if count > u64::from(u16::MAX) {
            return Err(Error::Protocol(format!("a result set of {count} columns")));
        }
        let mut columns = Vec::with_capacity(count.min(4096) as usize);
        for _ in 0..count {
            let packet = self.read_packet().await?;
            let col: Column = ParseBuf(&packet)
                .parse(())
                .map_err(|e| Error::Protocol(format!("bad column definition: {e}")))?;
            columns.push(ResultColumn {
                name: String::from_utf8_lossy(col.name_ref()).into_owned(),
                column_type: col.column_type() as u8,
                flags: col.flags().bits(),
                charset: col.character_set(),
            });
        }
        let eof = self.read_packet().await?;
        if eof.first() != Some(&0xfe) {
            return Err(Error::Protocol(
                "missing EOF after the column definitions".into(),
            ));
        }
        self.in_result = true;
        Ok(columns)
    }

    /// The next row packet of the current result set, `None` at its end.
    ///
    /// # Errors
    /// [`Error::Server`] when the query fails midway (e.g. killed).
    pub async fn next_row(&mut self) -> Result<Option<Bytes>> {
        if !self.in_result {
            return Ok(None);
        }
        let packet = self.read_packet().await?;
        match packet.first() {
            Some(0xfe) if packet.len() < 9 => {
                self.in_result = false;
                let status = if packet.len() >= 5 {
                    u16::from_le_bytes([packet[3], packet[4]])
                } else {
                    0
                };
                if StatusFlags::from_bits_truncate(status)
                    .contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS)
                {
                    return Err(Error::Protocol(
                        "multiple result sets are not supported here".into(),
                    ));
                }
                Ok(None)
            }
            Some(0xff) => {
                self.in_result = false;
                Err(self.server_error(&packet))
            }
            _ => Ok(Some(packet)),
        }
    }

    /// Sends `COM_QUIT` and closes the socket.
    ///
    /// # Errors
    /// I/O errors while closing (harmless).
    pub async fn close(mut self) -> Result<()> {
        self.in_result = false;
        let _ = self.send_command(&[0x01]).await;
        self.io.shutdown().await
    }
}

/// Walks the cells of one text-protocol row packet without copying.
#[derive(Debug)]
pub struct TextRow<'a> {
    buf: &'a [u8],
}

impl<'a> TextRow<'a> {
    /// Starts at the first cell of `packet`.
    pub fn new(packet: &'a [u8]) -> Self {
        Self { buf: packet }
    }

    /// The next cell: `None` for SQL NULL, else its bytes.
    ///
    /// # Errors
    /// [`Error::Protocol`] when the packet ends early.
    #[inline]
    pub fn next_cell(&mut self) -> Result<Option<&'a [u8]>> {
        let (&first, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| Error::Protocol("row packet ends early".into()))?;
        let (len, rest) = match first {
            0xfb => {
                self.buf = rest;
                return Ok(None);
            }
            0..=0xfa => (usize::from(first), rest),
            0xfc if rest.len() >= 2 => (
                usize::from(u16::from_le_bytes([rest[0], rest[1]])),
                &rest[2..],
            ),
            0xfd if rest.len() >= 3 => (
                usize::from(rest[0]) | usize::from(rest[1]) << 8 | usize::from(rest[2]) << 16,
                &rest[3..],
            ),
            0xfe if rest.len() >= 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&rest[..8]);
                (
                    usize::try_from(u64::from_le_bytes(b)).unwrap_or(usize::MAX),
                    &rest[8..],
                )
            }
            _ => return Err(Error::Protocol("bad length in a row packet".into())),
        };
        if rest.len() < len {
            return Err(Error::Protocol("row packet ends early".into()));
        }
        let (cell, rest) = rest.split_at(len);
        self.buf = rest;
        Ok(Some(cell))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::MAX_PAYLOAD;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn an_oversized_packet_is_refused_before_it_is_buffered() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            // Full 16 MiB frames, never the last one: an endless packet
            // (bounded here so a failing client cannot hang the test).
            let mut frame = vec![0u8; 4 + MAX_PAYLOAD];
            frame[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
            let mut sent = 0usize;
            for seq in 0..64u8 {
                frame[3] = seq;
                if s.write_all(&frame).await.is_err() {
                    break;
                }
                sent += MAX_PAYLOAD;
            }
            sent
        });
        let mut opts = ConnectOptions::new("127.0.0.1", port, "u");
        opts.max_packet_bytes = 32 << 20;
        let err = RawConn::connect(&opts).await.expect_err("too large");
        assert!(
            matches!(err, Error::PacketTooLarge { limit } if limit == 32 << 20),
            "{err:?}"
        );
        assert!(err.to_string().contains("max-packet-bytes"), "{err}");
        let sent = server.await.expect("server");
        assert!(
            sent < 64 * MAX_PAYLOAD,
            "the client stopped reading: {sent}"
        );
    }
}
