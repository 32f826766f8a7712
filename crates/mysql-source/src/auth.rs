//! The authentication exchange after the initial handshake.
//!
//! Supported plugins: `mysql_native_password`, `caching_sha2_password`
//! (fast path; full authentication over TLS with the clear password, or
//! without TLS with the server's RSA public key) and MariaDB's
//! `client_ed25519`. The scrambles themselves are `mysql_common`'s
//! ([`AuthPlugin::gen_data`]).
//!
//! # Where the password itself may travel
//!
//! `mysql_clear_password` sends the password as it is, and so does
//! `caching_sha2_password` full authentication over TLS; without TLS the
//! latter encrypts it with the server's RSA public key. Each is refused
//! with [`Error::InsecureAuth`], before anything derived from the password
//! is sent, unless the connection protects the password or an URL option
//! allows the exposure:
//!
//! | step | verified TLS (`verify_ca`/`verify_identity`) | unverified TLS (`preferred`/`required`) | no TLS |
//! |---|---|---|---|
//! | `mysql_clear_password` | sent | `enable-cleartext-plugin=true` | `enable-cleartext-plugin=true` |
//! | `caching_sha2_password` full auth | sent | `enable-cleartext-plugin=true` | RSA: `server-public-key=PATH`, or `get-server-public-key=true` to ask the server for its key |
//!
//! An empty password has nothing to protect and is always sent.
//!
//! `caching_sha2_password` against a real server is only testable with
//! MySQL 8, which the project's sandbox does not run; the exchange follows
//! the documentation, and the refusals are tested against a fake server.

use crate::error::{Error, Result};
use crate::options::ConnectOptions;
use crate::packet::{PacketIo, server_error};
use mysql_common_037::constants::CapabilityFlags;
use mysql_common_037::io::ParseBuf;
use mysql_common_037::packets::{
    AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse,
};
use mysql_common_037::proto::MySerialize;

/// How well the connection protects what travels over it.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Channel {
    /// No TLS.
    Plain,
    /// TLS without checking the server's certificate (`preferred`, `required`).
    UnverifiedTls,
    /// TLS with a verified certificate (`verify_ca`, `verify_identity`).
    VerifiedTls,
}

impl Channel {
    /// The channel of a connection that is encrypted (`tls`) or not.
    pub(crate) fn of(tls: bool, opts: &ConnectOptions) -> Self {
        match (tls, opts.tls.is_verified()) {
            (false, _) => Self::Plain,
            (true, false) => Self::UnverifiedTls,
            (true, true) => Self::VerifiedTls,
        }
    }

    fn exposure(self) -> &'static str {
        match self {
            Self::Plain => "unencrypted",
            Self::UnverifiedTls => {
                "over TLS whose certificate is not verified (a man in the middle could read it)"
            }
            Self::VerifiedTls => "over verified TLS",
        }
    }
}

/// How to allow sending the password itself.
const CLEARTEXT_REMEDY: &str = "connect with ssl-mode=verify_identity (or ssl-mode=verify_ca and \
     ssl-ca=PATH), or add enable-cleartext-plugin=true to the URL";

/// How to allow `caching_sha2_password` full authentication without TLS.
const RSA_REMEDY: &str = "add server-public-key=PATH (the server's RSA public key, PEM) or \
     get-server-public-key=true to the URL, or connect with ssl-mode=verify_identity (or \
     ssl-mode=verify_ca and ssl-ca=PATH)";

/// True when there is a password worth protecting.
fn has_password(opts: &ConnectOptions) -> bool {
    opts.password.as_deref().is_some_and(|p| !p.is_empty())
}

/// Refuses `mysql_clear_password` where the connection does not protect
/// the password and no option allows it.
fn check_clear_password(channel: Channel, opts: &ConnectOptions) -> Result<()> {
    if channel == Channel::VerifiedTls || opts.enable_cleartext_plugin || !has_password(opts) {
        return Ok(());
    }
    Err(Error::InsecureAuth {
        plugin: "mysql_clear_password",
        exposure: channel.exposure(),
        remedy: CLEARTEXT_REMEDY,
    })
}

/// Runs the exchange until the server's OK; returns the plugin that was used.
pub(crate) async fn authenticate(
    io: &mut PacketIo,
    caps: CapabilityFlags,
    channel: Channel,
    handshake: &HandshakePacket<'_>,
    opts: &ConnectOptions,
) -> Result<String> {
    let mut nonce = handshake.nonce();
    let mut plugin = handshake
        .auth_plugin()
        .map(AuthPlugin::into_owned)
        .unwrap_or(AuthPlugin::MysqlNativePassword);
    let pass = opts.password.as_deref();
    if plugin == AuthPlugin::MysqlClearPassword {
        check_clear_password(channel, opts)?;
    }
    let data = scramble(&plugin, pass, &nonce)?;
    let version = handshake
        .maria_db_server_version_parsed()
        .or_else(|| handshake.server_version_parsed())
        .unwrap_or((5, 7, 0));
    let response = HandshakeResponse::new(
        Some(data),
        version,
        Some(opts.user.as_bytes()),
        opts.database.as_deref().map(str::as_bytes),
        Some(plugin.clone()),
        caps,
        None,
        1 << 30,
    );
    let mut buf = Vec::new();
    response.serialize(&mut buf);
    io.write_packet(&buf).await?;

    let mut switched = false;
    loop {
        let packet = io.read_packet().await?;
        match packet.first() {
            Some(0x00) => return Ok(String::from_utf8_lossy(plugin.as_bytes()).into_owned()),
            Some(0xff) => {
                return Err(match server_error(&packet, caps) {
                    Error::Server {
                        code: 1045,
                        message,
                        ..
                    } => Error::AccessDenied {
                        user: opts.user.clone(),
                        message,
                    },
                    other => other,
                });
            }
            Some(0xfe) if !switched => {
                // AuthSwitchRequest: another plugin and a fresh nonce.
                let req: AuthSwitchRequest<'_> = ParseBuf(&packet)
                    .parse(())
                    .map_err(|e| Error::Protocol(format!("bad auth switch request: {e}")))?;
                plugin = req.auth_plugin().into_owned();
                nonce = req.plugin_data().to_vec();
                switched = true;
                if plugin == AuthPlugin::MysqlClearPassword {
                    check_clear_password(channel, opts)?;
                }
                let data = scramble(&plugin, pass, &nonce)?;
                io.write_packet(&data).await?;
            }
            Some(0x01) if plugin == AuthPlugin::CachingSha2Password => match packet.get(1) {
                // Fast path: the server had the password hash cached; OK follows.
                Some(0x03) => {}
                // Full authentication.
                Some(0x04) => caching_sha2_full(io, caps, opts, channel, &nonce).await?,
                _ => {
                    return Err(Error::Protocol(
                        "unexpected caching_sha2_password message".into(),
                    ));
                }
            },
            _ => {
                return Err(Error::Protocol(format!(
                    "unexpected packet during authentication with {}",
                    String::from_utf8_lossy(plugin.as_bytes())
                )));
            }
        }
    }
}

/// The plugin's answer to `nonce`; empty for an empty password.
fn scramble(plugin: &AuthPlugin<'_>, pass: Option<&str>, nonce: &[u8]) -> Result<Vec<u8>> {
    match plugin {
        AuthPlugin::MysqlNativePassword | AuthPlugin::CachingSha2Password | AuthPlugin::Ed25519 => {
            Ok(plugin
                .gen_data(pass, nonce)
                .map(|d| d.to_vec())
                .unwrap_or_default())
        }
        AuthPlugin::MysqlClearPassword => {
            let mut v = pass.unwrap_or("").as_bytes().to_vec();
            v.push(0);
            Ok(v)
        }
        other => Err(Error::UnsupportedAuthPlugin(
            String::from_utf8_lossy(other.as_bytes()).into_owned(),
        )),
    }
}

/// `caching_sha2_password` full authentication: the clear password over
/// TLS, else the password XOR nonce encrypted with the server's RSA key;
/// each only where the module's table allows it.
async fn caching_sha2_full(
    io: &mut PacketIo,
    caps: CapabilityFlags,
    opts: &ConnectOptions,
    channel: Channel,
    nonce: &[u8],
) -> Result<()> {
    const STEP: &str = "caching_sha2_password full authentication";
    let mut pass = opts.password.as_deref().unwrap_or("").as_bytes().to_vec();
    pass.push(0);
    match channel {
        Channel::VerifiedTls => return io.write_packet(&pass).await,
        Channel::UnverifiedTls => {
            if opts.enable_cleartext_plugin || !has_password(opts) {
                return io.write_packet(&pass).await;
            }
            return Err(Error::InsecureAuth {
                plugin: STEP,
                exposure: channel.exposure(),
                remedy: CLEARTEXT_REMEDY,
            });
        }
        Channel::Plain => {}
    }
    let key = match &opts.server_rsa_key_pem {
        Some(k) => k.clone(),
        None if opts.get_server_public_key || !has_password(opts) => {
            io.write_packet(&[0x02]).await?;
            let packet = io.read_packet().await?;
            match packet.split_first() {
                Some((0x01, key)) => key.to_vec(),
                Some((0xff, _)) => return Err(server_error(&packet, caps)),
                _ => return Err(Error::Protocol("the server sent no RSA public key".into())),
            }
        }
        None => {
            return Err(Error::InsecureAuth {
                plugin: STEP,
                exposure: "unencrypted, or encrypted with an RSA key a man in the middle could \
                           replace",
                remedy: RSA_REMEDY,
            });
        }
    };
    if nonce.is_empty() {
        return Err(Error::Protocol(
            "empty nonce for caching_sha2_password".into(),
        ));
    }
    for (i, b) in pass.iter_mut().enumerate() {
        *b ^= nonce[i % nonce.len()];
    }
    // mysql_common's RSA helper panics on a malformed key; a bad key from the
    // server must be an error, not a crash.
    let encrypted = std::panic::catch_unwind(|| mysql_common_037::crypto::encrypt(&pass, &key))
        .map_err(|_| Error::Protocol("the server's RSA public key is malformed".into()))?;
    io.write_packet(&encrypted).await
}

#[cfg(test)]
mod tests {
    //! Against a fake server on loopback: the refusals happen before
    //! anything derived from the password leaves, and the opt-ins work.

    use super::*;
    use crate::conn::RawConn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    /// Holds each character a URL parser could trip over.
    const PASSWORD: &str = "s3cr/e?t#p@ss:w";

    /// A HandshakeV10 without TLS that offers `plugin`.
    fn handshake(plugin: &str) -> Vec<u8> {
        // LONG_PASSWORD, LONG_FLAG, CONNECT_WITH_DB, PROTOCOL_41, TRANSACTIONS,
        // SECURE_CONNECTION, MULTI_RESULTS, PS_MULTI_RESULTS, PLUGIN_AUTH,
        // PLUGIN_AUTH_LENENC_CLIENT_DATA; no SSL.
        let caps: u32 = 0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x2_0000 | 0x4_0000;
        let caps = caps | 0x8_0000 | 0x20_0000;
        let mut p = vec![0x0a];
        p.extend_from_slice(b"8.0.36-fake\0");
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh");
        p.push(0);
        p.extend_from_slice(&(caps as u16).to_le_bytes());
        p.push(0x21);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        p
    }

    async fn send(s: &mut TcpStream, seq: u8, payload: &[u8]) -> std::io::Result<()> {
        let len = payload.len();
        let mut out = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
        out.extend_from_slice(payload);
        s.write_all(&out).await
    }

    /// One packet from the client as `(seq, payload)`; `None` at EOF.
    async fn receive(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 4];
        s.read_exact(&mut head).await.ok()?;
        let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
        let mut payload = vec![0; len];
        s.read_exact(&mut payload).await.ok()?;
        Some((head[3], payload))
    }

    /// Serves one connection: the handshake offering `plugin`, then
    /// `answers[i]` after the client's i-th packet. Yields every packet the
    /// client sent.
    async fn fake_server(
        plugin: &'static str,
        answers: Vec<Vec<u8>>,
    ) -> (u16, JoinHandle<Vec<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            send(&mut s, 0, &handshake(plugin))
                .await
                .expect("handshake");
            let mut seen = Vec::new();
            while let Some((seq, packet)) = receive(&mut s).await {
                if let Some(answer) = answers.get(seen.len()) {
                    let _ = send(&mut s, seq.wrapping_add(1), answer).await;
                }
                seen.push(packet);
            }
            seen
        });
        (port, task)
    }

    fn options(port: u16, params: &str) -> ConnectOptions {
        ConnectOptions::from_url(&format!("mysql://app:{PASSWORD}@127.0.0.1:{port}/{params}"))
            .expect("url")
    }

    fn contains(haystack: &[Vec<u8>], needle: &[u8]) -> bool {
        haystack
            .iter()
            .any(|p| p.windows(needle.len()).any(|w| w == needle))
    }

    const OK: [u8; 7] = [0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];

    #[tokio::test]
    async fn clear_password_without_tls_is_refused_before_sending() {
        let (port, server) = fake_server("mysql_clear_password", vec![OK.to_vec()]).await;
        let err = RawConn::connect(&options(port, ""))
            .await
            .expect_err("must refuse");
        assert!(matches!(err, Error::InsecureAuth { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("enable-cleartext-plugin=true"), "{text}");
        assert!(text.contains("ssl-mode=verify_identity"), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
        let seen = server.await.expect("server");
        assert!(seen.is_empty(), "nothing is sent: {seen:?}");
    }

    #[tokio::test]
    async fn clear_password_after_auth_switch_is_refused_before_sending() {
        let mut switch = vec![0xfe];
        switch.extend_from_slice(b"mysql_clear_password\0");
        switch.extend_from_slice(b"01234567890123456789\0");
        let (port, server) = fake_server("mysql_native_password", vec![switch]).await;
        let err = RawConn::connect(&options(port, ""))
            .await
            .expect_err("must refuse");
        assert!(matches!(err, Error::InsecureAuth { .. }), "{err:?}");
        assert!(err.to_string().contains("enable-cleartext-plugin=true"));
        let seen = server.await.expect("server");
        assert_eq!(seen.len(), 1, "only the handshake response (a hash)");
        assert!(!contains(&seen, PASSWORD.as_bytes()));
    }

    #[tokio::test]
    async fn enable_cleartext_plugin_sends_the_password() {
        let (port, server) = fake_server("mysql_clear_password", vec![OK.to_vec()]).await;
        let conn = RawConn::connect(&options(port, "?enable-cleartext-plugin=true"))
            .await
            .expect("opted in");
        assert_eq!(conn.hello().auth_plugin, "mysql_clear_password");
        assert!(!conn.hello().tls);
        conn.close().await.expect("close");
        let seen = server.await.expect("server");
        let mut expected = PASSWORD.as_bytes().to_vec();
        expected.push(0);
        assert!(contains(&seen, &expected), "the server saw the password");
    }

    #[tokio::test]
    async fn caching_sha2_full_auth_without_tls_needs_a_key_option() {
        let (port, server) = fake_server("caching_sha2_password", vec![vec![0x01, 0x04]]).await;
        let err = RawConn::connect(&options(port, ""))
            .await
            .expect_err("must refuse");
        assert!(matches!(err, Error::InsecureAuth { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("get-server-public-key=true"), "{text}");
        assert!(text.contains("server-public-key=PATH"), "{text}");
        let seen = server.await.expect("server");
        assert_eq!(
            seen.len(),
            1,
            "no key request (0x02) after the scramble: {seen:?}"
        );
        assert!(!contains(&seen, PASSWORD.as_bytes()));
    }

    #[tokio::test]
    async fn get_server_public_key_asks_for_the_key() {
        // The server refuses to hand out a key: the request itself is the point.
        let mut err_packet = vec![0xff, 0x15, 0x04, b'#'];
        err_packet.extend_from_slice(b"28000no key for you");
        let (port, server) =
            fake_server("caching_sha2_password", vec![vec![0x01, 0x04], err_packet]).await;
        let err = RawConn::connect(&options(port, "?get-server-public-key=true"))
            .await
            .expect_err("the fake refuses");
        assert!(matches!(err, Error::Server { code: 1045, .. }), "{err:?}");
        let seen = server.await.expect("server");
        assert_eq!(
            seen.get(1).map(Vec::as_slice),
            Some(&[0x02][..]),
            "{seen:?}"
        );
        assert!(!contains(&seen, PASSWORD.as_bytes()));
    }

    #[test]
    fn unverified_tls_needs_the_opt_in_for_clear_passwords() {
        let mut opts = ConnectOptions::new("h", 1, "u").with_password(PASSWORD);
        let err = check_clear_password(Channel::UnverifiedTls, &opts).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("not verified"), "{text}");
        assert!(text.contains("enable-cleartext-plugin=true"), "{text}");
        assert!(check_clear_password(Channel::VerifiedTls, &opts).is_ok());
        opts.enable_cleartext_plugin = true;
        assert!(check_clear_password(Channel::UnverifiedTls, &opts).is_ok());
        assert!(check_clear_password(Channel::Plain, &opts).is_ok());
    }
}
