//! A raw async MySQL connection: packet framing, the handshake, TLS,
//! text queries and prepared statements, with the bytes kept visible.
//!
//! The replication stream and the snapshot both need what a general client
//! hides: the binlog packets as [`Bytes`] slices of the read buffer (no copy
//! per event), and result rows as raw packets that the snapshot decodes
//! straight into Arrow builders. Packet types and scrambles come from
//! `mysql_common`; this module only moves bytes.

use crate::auth;
use crate::error::{Error, Result};
use crate::tls::{self, TlsMode};
use bytes::{Buf, Bytes, BytesMut};
use mysql_common_037::constants::{CapabilityFlags, StatusFlags};
use mysql_common_037::io::ParseBuf;
use mysql_common_037::packets::{Column, ErrPacket, HandshakePacket, SslRequest};
use mysql_common_037::proto::MySerialize;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The largest payload of one wire packet; longer payloads are split.
const MAX_PAYLOAD: usize = 0xff_ffff;
/// Reads ask the socket for at least this much room.
const READ_CHUNK: usize = 256 * 1024;
/// `max_packet_size` announced in the handshake (1 GiB, the server maximum).
const MAX_PACKET_SIZE: u32 = 1 << 30;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password; `None` for an empty one.
    pub password: Option<String>,
    /// Default database.
    pub database: Option<String>,
    /// TLS mode.
    pub tls: TlsMode,
    /// PEM of the CA that signs the server certificate (replaces the default roots).
    pub ca_pem: Option<Vec<u8>>,
    /// Name the certificate must carry (`verify_identity`); defaults to `host`.
    pub tls_server_name: Option<String>,
    /// PEM of the server's RSA public key for `caching_sha2_password` full
    /// authentication without TLS; asked from the server when absent.
    pub server_rsa_key_pem: Option<Vec<u8>>,
    /// Limit for TCP connect plus handshake.
    pub connect_timeout: Duration,
    /// Limit for each read once connected; `None` waits forever.
    pub read_timeout: Option<Duration>,
}

impl ConnectOptions {
    /// Options for `host:port` as `user`, TLS preferred, 10 s connect timeout.
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            user: user.into(),
            password: None,
            database: None,
            tls: TlsMode::Preferred,
            ca_pem: None,
            tls_server_name: None,
            server_rsa_key_pem: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Some(Duration::from_secs(60)),
        }
    }

    /// Parses `mysql://user:password@host:port/db?ssl-mode=verify_ca&ssl-ca=/path/ca.pem`.
    ///
    /// Known parameters: `ssl-mode` (`disabled`, `preferred`, `required`,
    /// `verify_ca`, `verify_identity`), `ssl-ca` (a PEM file, read now),
    /// `connect-timeout` and `read-timeout` (seconds).
    ///
    /// # Errors
    /// [`Error::Url`] for a malformed URL or an unreadable CA file.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
            .ok_or_else(|| Error::Url(format!("'{url}' does not start with mysql://")))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, db) = match rest.split_once('/') {
            Some((a, d)) => (a, (!d.is_empty()).then(|| percent_decode(d))),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (u, h),
            None => ("", authority),
        };
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (percent_decode(u), Some(percent_decode(p))),
            None => (percent_decode(userinfo), None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| Error::Url(format!("bad port '{p}' in '{url}'")))?;
                (
                    h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                    port,
                )
            }
            _ => (hostport.to_owned(), 3306),
        };
        if host.is_empty() {
            return Err(Error::Url(format!("no host in '{url}'")));
        }
        let mut opts = Self::new(
            host,
            port,
            if user.is_empty() {
                "root".to_owned()
            } else {
                user
            },
        );
        opts.password = password.filter(|p| !p.is_empty());
        opts.database = db;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k.replace('_', "-").as_str() {
                "ssl-mode" | "sslmode" | "tls" => opts.tls = TlsMode::parse(&v)?,
                "ssl-ca" | "sslca" => {
                    opts.ca_pem = Some(
                        std::fs::read(&v)
                            .map_err(|e| Error::Url(format!("cannot read ssl-ca '{v}': {e}")))?,
                    )
                }
                "connect-timeout" => {
                    opts.connect_timeout = Duration::from_secs_f64(parse_secs(&v)?)
                }
                "read-timeout" => {
                    opts.read_timeout = Some(Duration::from_secs_f64(parse_secs(&v)?))
                }
                other => return Err(Error::Url(format!("unknown URL parameter '{other}'"))),
            }
        }
        Ok(opts)
    }

    /// Sets the password.
    #[must_use]
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets the TLS mode and, optionally, a custom CA (PEM).
    #[must_use]
    pub fn with_tls(mut self, mode: TlsMode, ca_pem: Option<Vec<u8>>) -> Self {
        self.tls = mode;
        self.ca_pem = ca_pem;
        self
    }
}

fn parse_secs(v: &str) -> Result<f64> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| Error::Url(format!("bad number of seconds '{v}'")))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| {
                std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .flatten();
        if let Some(v) = hex {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The socket, plain or wrapped in TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Transient state while upgrading to TLS.
    Upgrading,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
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
    stream: Stream,
    rbuf: BytesMut,
    /// Frames of a payload over 16 MiB read so far.
    joining: BytesMut,
    seq: u8,
    caps: CapabilityFlags,
    hello: ServerHello,
    read_timeout: Option<Duration>,
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
            stream: Stream::Plain(tcp),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            joining: BytesMut::new(),
            seq: 0,
            caps: CapabilityFlags::empty(),
            hello: ServerHello {
                version: String::new(),
                is_mariadb: false,
                connection_id: 0,
                auth_plugin: String::new(),
                tls: false,
            },
            read_timeout: opts.read_timeout,
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
            let Stream::Plain(tcp) = std::mem::replace(&mut conn.stream, Stream::Upgrading) else {
                return Err(Error::Tls("TLS negotiated twice".into()));
            };
            let tls_stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(tls::handshake_error)?;
            conn.stream = Stream::Tls(Box::new(tls_stream));
            conn.hello.tls = true;
        }
        conn.caps = caps;
        let plugin = auth::authenticate(&mut conn, &handshake, opts).await?;
        conn.hello.auth_plugin = plugin;
        Ok(conn)
    }

    /// What the server said about itself.
    pub fn hello(&self) -> &ServerHello {
        &self.hello
    }

    /// The negotiated capability flags.
    pub(crate) fn capabilities(&self) -> CapabilityFlags {
        self.caps
    }

    /// Changes the read timeout (e.g. to cover the heartbeat period of a dump).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// Reads one logical packet (joining 16 MiB continuation packets); the
    /// result shares the read buffer's allocation when it fits one frame.
    /// Cancel-safe: bytes read before a cancellation stay buffered.
    ///
    /// # Errors
    /// [`Error::Io`] on a broken connection, [`Error::Timeout`] when the read
    /// timeout passes.
    pub async fn read_packet(&mut self) -> Result<Bytes> {
        loop {
            let frame = self.read_frame().await?;
            if self.joining.is_empty() && frame.len() < MAX_PAYLOAD {
                return Ok(frame);
            }
            // Payloads of 16 MiB and more come in several frames: join them
            // (one copy). The partial payload lives in `self`, so a cancelled
            // read loses nothing.
            self.joining.extend_from_slice(&frame);
            if frame.len() < MAX_PAYLOAD {
                return Ok(self.joining.split().freeze());
            }
        }
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        self.fill(4).await?;
        let len = usize::from(self.rbuf[0])
            | usize::from(self.rbuf[1]) << 8
            | usize::from(self.rbuf[2]) << 16;
        let seq = self.rbuf[3];
        self.fill(4 + len).await?;
        self.rbuf.advance(4);
        self.seq = seq.wrapping_add(1);
        Ok(self.rbuf.split_to(len).freeze())
    }

    /// Makes sure `n` bytes are buffered.
    async fn fill(&mut self, n: usize) -> Result<()> {
        while self.rbuf.len() < n {
            self.rbuf.reserve((n - self.rbuf.len()).max(READ_CHUNK));
            let read = self.stream.read_buf(&mut self.rbuf);
            let got = match self.read_timeout {
                Some(limit) => match tokio::time::timeout(limit, read).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(Error::Timeout {
                            what: "reading from the server",
                            after: limit,
                        });
                    }
                },
                None => read.await,
            }
            .map_err(Error::Io)?;
            if got == 0 {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
        }
        Ok(())
    }

    /// Writes one logical packet with the current sequence id.
    ///
    /// # Errors
    /// [`Error::Io`] on a broken connection.
    pub async fn write_packet(&mut self, payload: &[u8]) -> Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 4 * (payload.len() / MAX_PAYLOAD + 1));
        let mut chunks = payload.chunks(MAX_PAYLOAD).peekable();
        if payload.is_empty() {
            out.extend_from_slice(&[0, 0, 0, self.seq]);
            self.seq = self.seq.wrapping_add(1);
        }
        while let Some(chunk) = chunks.next() {
            let len = chunk.len();
            out.extend_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8, self.seq]);
            out.extend_from_slice(chunk);
            self.seq = self.seq.wrapping_add(1);
            if chunks.peek().is_none() && len == MAX_PAYLOAD {
                out.extend_from_slice(&[0, 0, 0, self.seq]);
                self.seq = self.seq.wrapping_add(1);
            }
        }
        self.stream.write_all(&out).await.map_err(Error::Io)?;
        self.stream.flush().await.map_err(Error::Io)
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
        self.seq = 0;
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
    /// [`RawConn::next_row`] in the binary row format ([`BinaryRow`]).
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
        self.stream.shutdown().await.map_err(Error::Io)
    }
}

/// Decodes an ERR packet into the matching typed error.
pub(crate) fn server_error(packet: &[u8], caps: CapabilityFlags) -> Error {
    match ParseBuf(packet).parse::<ErrPacket<'_>>(caps) {
        Ok(ErrPacket::Error(e)) => Error::Server {
            code: e.error_code(),
            state: e
                .sql_state_ref()
                .map(|s| s.as_str().into_owned())
                .unwrap_or_default(),
            message: String::from_utf8_lossy(e.message_ref()).into_owned(),
        },
        Ok(ErrPacket::Progress(_)) => Error::Protocol("unexpected progress report".into()),
        Err(e) => Error::Protocol(format!("bad ERR packet: {e}")),
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
