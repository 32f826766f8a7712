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
use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tracing::warn;

/// The largest payload of one wire packet; longer payloads are split.
const MAX_PAYLOAD: usize = 0xff_ffff;
/// Reads ask the socket for at least this much room.
const READ_CHUNK: usize = 256 * 1024;
/// `max_packet_size` announced in the handshake (1 GiB, the server maximum).
const MAX_PACKET_SIZE: u32 = 1 << 30;
/// Default cap on one logical packet the server may send (1 GiB, the
/// server's own `max_allowed_packet` maximum); see
/// [`ConnectOptions::max_packet_bytes`].
pub const DEFAULT_MAX_PACKET_BYTES: usize = 1 << 30;

/// Where and how to connect.
///
/// `Debug` prints the password as `***` and the PEM files as their length,
/// so options can be logged.
#[derive(Clone)]
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
    /// PEM of the CA that signs the server certificate (replaces the default
    /// roots). [`TlsMode::VerifyCa`] needs it; [`TlsMode::VerifyIdentity`]
    /// falls back to the public (Mozilla) roots without it.
    pub ca_pem: Option<Vec<u8>>,
    /// Name the certificate must carry (`verify_identity`); defaults to `host`.
    pub tls_server_name: Option<String>,
    /// PEM of the server's RSA public key for `caching_sha2_password` full
    /// authentication without TLS (URL: `server-public-key=PATH`).
    pub server_rsa_key_pem: Option<Vec<u8>>,
    /// Allows asking the server for its RSA public key (`caching_sha2_password`
    /// without TLS and without [`ConnectOptions::server_rsa_key_pem`]; URL:
    /// `get-server-public-key=true`). Off by default: a man in the middle
    /// can hand out his own key and read the password.
    pub get_server_public_key: bool,
    /// Allows sending the password itself where the connection does not
    /// protect it: `mysql_clear_password`, and `caching_sha2_password` full
    /// authentication, over TLS whose certificate is not verified or (for
    /// `mysql_clear_password`) without TLS (URL: `enable-cleartext-plugin=true`).
    /// Off by default.
    pub enable_cleartext_plugin: bool,
    /// Cap on one logical packet from the server (16 MiB frames joined);
    /// a longer packet is [`Error::PacketTooLarge`] before it is buffered
    /// (URL: `max-packet-bytes=N`). Defaults to [`DEFAULT_MAX_PACKET_BYTES`].
    pub max_packet_bytes: usize,
    /// Limit for TCP connect plus handshake.
    pub connect_timeout: Duration,
    /// Limit for each read once connected; `None` waits forever.
    pub read_timeout: Option<Duration>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pem = |p: &Option<Vec<u8>>| p.as_ref().map(|p| format!("<{} bytes>", p.len()));
        f.debug_struct("ConnectOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field("ca_pem", &pem(&self.ca_pem))
            .field("tls_server_name", &self.tls_server_name)
            .field("server_rsa_key_pem", &pem(&self.server_rsa_key_pem))
            .field("get_server_public_key", &self.get_server_public_key)
            .field("enable_cleartext_plugin", &self.enable_cleartext_plugin)
            .field("max_packet_bytes", &self.max_packet_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
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
            get_server_public_key: false,
            enable_cleartext_plugin: false,
            max_packet_bytes: DEFAULT_MAX_PACKET_BYTES,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Some(Duration::from_secs(60)),
        }
    }

    /// Parses `mysql://user:password@host:port/db?ssl-mode=verify_ca&ssl-ca=/path/ca.pem`.
    ///
    /// The user info ends at the last `@` of the URL, so a password may hold
    /// `/ ? # @ :` as they are (or percent-encoded: `%40` is `@`); an `@` in
    /// a parameter value must therefore be written `%40`. The host part ends
    /// at the first `/`, `?` or `#` after that `@`.
    ///
    /// Known parameters:
    /// - `ssl-mode`: `disabled`, `preferred`, `required`, `verify_ca`,
    ///   `verify_identity`. Default: `verify_ca` when `ssl-ca` is given (as
    ///   libmysqlclient does for `--ssl-ca`), `preferred` otherwise.
    /// - `ssl-ca`: a PEM file, read now. `ssl-mode=verify_ca` needs it;
    ///   `verify_identity` without it trusts the public (Mozilla) roots and
    ///   checks the host name.
    /// - `enable-cleartext-plugin=true`: allows sending the password itself
    ///   over a connection that does not protect it (see
    ///   [`ConnectOptions::enable_cleartext_plugin`]).
    /// - `server-public-key=PATH`: the server's RSA public key (PEM, read now)
    ///   for `caching_sha2_password` without TLS.
    /// - `get-server-public-key=true`: allows asking the server for that key.
    /// - `max-packet-bytes`: cap on one packet from the server (default 1 GiB).
    /// - `connect-timeout` and `read-timeout` (seconds).
    ///
    /// # Errors
    /// [`Error::Url`] for a malformed URL, an unreadable CA or key file, or
    /// `ssl-mode=verify_ca` without `ssl-ca`. The message never holds the
    /// password (see [`redact_url`]).
    pub fn from_url(url: &str) -> Result<Self> {
        let parts = split_url(url).ok_or_else(|| {
            Error::Url(format!(
                "'{}' does not start with mysql://",
                redact_url(url)
            ))
        })?;
        if !matches!(parts.scheme, "mysql" | "mariadb") {
            return Err(Error::Url(format!(
                "'{}' does not start with mysql:// or mariadb://",
                redact_url(url)
            )));
        }
        let (user, password) = match parts.userinfo {
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (percent_decode(u), Some(percent_decode(p))),
                None => (percent_decode(info), None),
            },
            None => (String::new(), None),
        };
        let hostport = parts.host_port;
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| Error::Url(format!("bad port '{p}' in '{}'", redact_url(url))))?;
                (
                    h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                    port,
                )
            }
            _ => (hostport.to_owned(), 3306),
        };
        if host.is_empty() {
            return Err(Error::Url(format!("no host in '{}'", redact_url(url))));
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
        opts.database = (!parts.path.is_empty()).then(|| percent_decode(parts.path));
        let mut mode = None;
        for pair in parts
            .query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k.replace('_', "-").as_str() {
                "ssl-mode" | "sslmode" | "tls" => mode = Some(TlsMode::parse(&v)?),
                "ssl-ca" | "sslca" => {
                    opts.ca_pem = Some(
                        std::fs::read(&v)
                            .map_err(|e| Error::Url(format!("cannot read ssl-ca '{v}': {e}")))?,
                    )
                }
                "server-public-key" | "server-public-key-path" => {
                    let pem = std::fs::read(&v).map_err(|e| {
                        Error::Url(format!("cannot read server-public-key '{v}': {e}"))
                    })?;
                    if !String::from_utf8_lossy(&pem).contains("-----BEGIN ") {
                        return Err(Error::Url(format!(
                            "server-public-key '{v}' is not a PEM file"
                        )));
                    }
                    opts.server_rsa_key_pem = Some(pem);
                }
                "get-server-public-key" => {
                    opts.get_server_public_key = parse_bool("get-server-public-key", &v)?
                }
                "enable-cleartext-plugin" => {
                    opts.enable_cleartext_plugin = parse_bool("enable-cleartext-plugin", &v)?
                }
                "max-packet-bytes" => {
                    opts.max_packet_bytes = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| Error::Url(format!("bad max-packet-bytes '{v}'")))?
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
        opts.tls = match (mode, opts.ca_pem.is_some()) {
            (Some(TlsMode::VerifyCa), false) => {
                return Err(Error::Url(
                    "ssl-mode=verify_ca needs ssl-ca=PATH, the PEM file of the CA that signs \
                     the server certificate (or use ssl-mode=verify_identity, which checks the \
                     host name against the public roots)"
                        .into(),
                ));
            }
            (Some(m), _) => m,
            (None, true) => TlsMode::VerifyCa,
            (None, false) => TlsMode::Preferred,
        };
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

/// The pieces of a `scheme://userinfo@host:port/path?query#fragment` URL,
/// borrowed.
struct UrlParts<'a> {
    scheme: &'a str,
    /// Everything before the last `@`, still percent-encoded.
    userinfo: Option<&'a str>,
    /// Everything after the last `@` up to the first `/`, `?` or `#`.
    host_port: &'a str,
    /// The path without its leading `/` (the database), still encoded.
    path: &'a str,
    query: Option<&'a str>,
}

/// Splits a URL; `None` without `scheme://`. The user info ends at the
/// *last* `@`, so passwords may hold `/ ? # @ :` unencoded.
fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let (userinfo, after) = match rest.rfind('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let host_port = &after[..end];
    let tail = &after[end..];
    let tail = tail.split_once('#').map_or(tail, |(t, _)| t);
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    Some(UrlParts {
        scheme,
        userinfo,
        host_port,
        path: path.strip_prefix('/').unwrap_or(path),
        query,
    })
}

/// `url` without its password: `mysql://user:***@host:port/db?params`.
///
/// Use it wherever a connection URL may reach an error message or a log.
/// The password is found as [`ConnectOptions::from_url`] finds it (up to the
/// last `@`), so one holding `/ ? # @ :` is hidden whole. A string that is
/// no URL but holds an `@` loses everything before its last `@`.
pub fn redact_url(url: &str) -> String {
    match split_url(url) {
        Some(parts) => {
            let Some(info) = parts.userinfo else {
                return url.to_owned();
            };
            let after = &url[parts.scheme.len() + 3 + info.len() + 1..];
            match info.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***@{after}", parts.scheme),
                None => format!("{}://{info}@{after}", parts.scheme),
            }
        }
        None => match url.rfind('@') {
            Some(i) => format!("***@{}", &url[i + 1..]),
            None => url.to_owned(),
        },
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::Url(format!("{key} takes true or false, not '{v}'"))),
    }
}

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
    /// Cap on one logical packet from the server.
    max_packet: usize,
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
            max_packet: opts.max_packet_bytes,
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
        warn_unprotected(opts, conn.hello.tls);
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
    /// timeout passes, [`Error::PacketTooLarge`] when the packet would pass
    /// [`ConnectOptions::max_packet_bytes`] (checked on each frame's header,
    /// before its bytes are buffered).
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
        if self.joining.len().saturating_add(len) > self.max_packet {
            // The rest of the packet stays unread: the connection is unusable.
            self.joining = BytesMut::new();
            return Err(Error::PacketTooLarge {
                limit: self.max_packet,
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Holds each character a URL parser could trip over.
    const SECRET: &str = "pa/s?s#w@r:d";

    #[test]
    fn a_password_with_url_delimiters_parses() {
        let o = ConnectOptions::from_url(&format!(
            "mysql://repl:{SECRET}@db.example:3310/shop?ssl-mode=required"
        ))
        .expect("parse");
        assert_eq!(o.user, "repl");
        assert_eq!(o.password.as_deref(), Some(SECRET));
        assert_eq!((o.host.as_str(), o.port), ("db.example", 3310));
        assert_eq!(o.database.as_deref(), Some("shop"));
        assert_eq!(o.tls, TlsMode::Required);
        // Percent-encoded, the same.
        let o = ConnectOptions::from_url("mysql://repl:pa%2Fs%3Fs%23w%40r%3Ad@db.example/shop")
            .expect("parse");
        assert_eq!(o.password.as_deref(), Some(SECRET));
        assert_eq!((o.host.as_str(), o.port), ("db.example", 3306));
        // The report's example: `/` in the password is no longer a port.
        let o = ConnectOptions::from_url("mysql://repl:pa/ss@host/").expect("parse");
        assert_eq!(o.password.as_deref(), Some("pa/ss"));
        assert_eq!((o.host.as_str(), o.database.as_deref()), ("host", None));
        // IPv6 and a fragment.
        let o = ConnectOptions::from_url(&format!("mysql://u:{SECRET}@[::1]:3400#frag"))
            .expect("parse");
        assert_eq!((o.host.as_str(), o.port), ("::1", 3400));
    }

    #[test]
    fn errors_and_debug_never_show_the_password() {
        for url in [
            format!("mysql://repl:{SECRET}@host:notaport/db"),
            format!("mysql://repl:{SECRET}@:3306/db"),
            format!("mysqlx://repl:{SECRET}@host/db"),
            format!("repl:{SECRET}@host/db"),
            format!("mysql://repl:{SECRET}@host/db?bogus=1"),
            format!("mysql://repl:{SECRET}@host/db?ssl-mode=verify_ca"),
        ] {
            let err = ConnectOptions::from_url(&url).expect_err(&redact_url(&url));
            let text = format!("{err} {err:?}");
            assert!(!text.contains(SECRET), "{text}");
            assert!(!text.contains("pa/s"), "{text}");
        }
        let o = ConnectOptions::from_url(&format!("mysql://repl:{SECRET}@host/db")).expect("ok");
        let debug = format!("{o:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("password: Some(\"***\")"), "{debug}");
    }

    #[test]
    fn redact_url_hides_the_whole_password() {
        assert_eq!(
            redact_url(&format!(
                "mysql://repl:{SECRET}@db:3306/shop?ssl-mode=required"
            )),
            "mysql://repl:***@db:3306/shop?ssl-mode=required"
        );
        assert_eq!(redact_url("mysql://repl@db/x"), "mysql://repl@db/x");
        assert_eq!(redact_url("mysql://db:3306"), "mysql://db:3306");
        assert_eq!(redact_url(&format!("repl:{SECRET}@db")), "***@db");
    }

    #[test]
    fn tls_defaults_and_verify_ca_needs_a_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").expect("write");
        let ca = ca.display().to_string();
        let url = |q: &str| format!("mysql://u@h/?{q}");
        let tls = |q: &str| ConnectOptions::from_url(&url(q)).map(|o| o.tls);
        assert_eq!(tls("").expect("ok"), TlsMode::Preferred);
        assert_eq!(tls(&format!("ssl-ca={ca}")).expect("ok"), TlsMode::VerifyCa);
        assert_eq!(
            tls(&format!("ssl-ca={ca}&ssl-mode=verify_identity")).expect("ok"),
            TlsMode::VerifyIdentity
        );
        assert_eq!(
            tls("ssl-mode=verify_identity").expect("public roots"),
            TlsMode::VerifyIdentity
        );
        let err = tls("ssl-mode=verify_ca").expect_err("no CA");
        assert!(matches!(err, Error::Url(_)), "{err:?}");
        assert!(err.to_string().contains("ssl-ca"), "{err}");
        // Set by hand, the same mode fails when the connection is set up.
        let err = tls::client_config(TlsMode::VerifyCa, None).expect_err("no CA");
        assert!(err.to_string().contains("ssl-ca"), "{err}");
    }

    #[test]
    fn key_and_cleartext_options() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .expect("write");
        let o = ConnectOptions::from_url(&format!(
            "mysql://u@h/?server-public-key={}&get-server-public-key=true&enable-cleartext-plugin=true&max-packet-bytes=1000",
            key.display()
        ))
        .expect("parse");
        assert!(o.server_rsa_key_pem.is_some());
        assert!(o.get_server_public_key && o.enable_cleartext_plugin);
        assert_eq!(o.max_packet_bytes, 1000);
        let o = ConnectOptions::from_url("mysql://u@h/").expect("parse");
        assert!(!o.get_server_public_key && !o.enable_cleartext_plugin);
        assert_eq!(o.max_packet_bytes, DEFAULT_MAX_PACKET_BYTES);
        let not_pem = dir.path().join("key.txt");
        std::fs::write(&not_pem, "hello").expect("write");
        assert!(
            ConnectOptions::from_url(&format!(
                "mysql://u@h/?server-public-key={}",
                not_pem.display()
            ))
            .is_err()
        );
        assert!(ConnectOptions::from_url("mysql://u@h/?enable-cleartext-plugin=maybe").is_err());
    }

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
