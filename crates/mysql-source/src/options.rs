//! Where and how to connect: [`ConnectOptions`] and the `mysql://` URL they
//! are parsed from. Data and parsing only; the connection and the
//! authentication exchange both read them. Their public path is
//! [`conn`](crate::conn).

use crate::error::{Error, Result};
use crate::tls::TlsMode;
use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls;

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
}
