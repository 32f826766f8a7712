//! A small HTTP/1.1 client on hyper 1: endpoints, a per-host pool of
//! connections, and TLS through rustls (ring) with the webpki roots.
//!
//! Each request takes an idle connection or opens one, so several block
//! uploads run on several connections at once; a connection goes back to the
//! pool once its response body has been read whole.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{Error, ErrorKind, Result};

/// A base URL such as `http://127.0.0.1:8080/api` or
/// `https://service.cn-hangzhou.maxcompute.aliyun.com/api`.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub struct Endpoint {
    tls: bool,
    host: String,
    port: u16,
    base_path: String,
}

impl Endpoint {
    /// Whether requests use HTTPS.
    pub fn is_https(&self) -> bool {
        self.tls
    }

    /// Host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path prefix (e.g. `/api`), without trailing slash; may be empty.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// Whether the host is this machine's loopback: `localhost`, an address
    /// in `127.0.0.0/8`, or `::1` (also as `::ffff:127.x.y.z`).
    pub fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        match self.host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
            Ok(std::net::IpAddr::V6(ip)) => {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            Err(_) => false,
        }
    }

    /// Refuses a plain-HTTP endpoint off this machine unless `allow_insecure`:
    /// MaxCompute's signature does not cover the body, so on a network path
    /// without TLS the data could be changed unnoticed. `which` names the
    /// endpoint in the error.
    pub(crate) fn check_transport(&self, which: &'static str, allow_insecure: bool) -> Result<()> {
        if self.tls || self.is_loopback() {
            return Ok(());
        }
        if allow_insecure {
            tracing::warn!(endpoint = %self, which, "using a plain-HTTP MaxCompute endpoint (allow_insecure_http)");
            return Ok(());
        }
        Err(ErrorKind::InsecureEndpoint {
            which,
            endpoint: self.to_string(),
        }
        .into())
    }

    /// `host[:port]` as the `Host` header wants it.
    pub fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same scheme with another `host[:port]` (as tunnel discovery returns it).
    pub(crate) fn with_authority(&self, authority: &str) -> Result<Self> {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", authority.trim()).parse()
    }

    fn pool_key(&self) -> (bool, String, u16) {
        (self.tls, self.host.clone(), self.port)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.base_path)
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::from(ErrorKind::InvalidArgument(format!(
                "invalid endpoint URL {s:?}"
            )))
        };
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None => default_port,
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad())?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() || path.contains(['?', '#']) {
            return Err(bad());
        }
        Ok(Self {
            tls,
            host,
            port,
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// A response read whole.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

type Sender = SendRequest<Full<Bytes>>;

/// The pooled HTTP client.
pub(crate) struct HttpClient {
    pool: Mutex<HashMap<(bool, String, u16), Vec<Sender>>>,
    tls: OnceLock<std::result::Result<tokio_rustls::TlsConnector, String>>,
    timeout: Duration,
    max_idle_per_host: usize,
    max_response_bytes: usize,
    extra_roots_pem: Option<Vec<u8>>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client whose exchanges time out after `timeout` and whose response
    /// bodies may hold at most `max_response_bytes`.
    pub(crate) fn new(
        timeout: Duration,
        max_response_bytes: usize,
        extra_roots_pem: Option<Vec<u8>>,
    ) -> Self {
        Self {
            pool: Mutex::new(HashMap::new()),
            tls: OnceLock::new(),
            timeout,
            max_idle_per_host: 32,
            max_response_bytes,
            extra_roots_pem,
        }
    }

    fn tls_connector(&self) -> Result<tokio_rustls::TlsConnector> {
        self.tls
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                if let Some(pem) = &self.extra_roots_pem {
                    use rustls::pki_types::CertificateDer;
                    use rustls::pki_types::pem::PemObject;
                    for cert in CertificateDer::pem_slice_iter(pem) {
                        let cert = cert.map_err(|e| format!("extra root PEM: {e}"))?;
                        roots
                            .add(cert)
                            .map_err(|e| format!("extra root certificate: {e}"))?;
                    }
                }
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
                Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
            })
            .clone()
            .map_err(|e| Error::transport(format!("TLS setup: {e}")))
    }

    fn take_idle(&self, endpoint: &Endpoint) -> Option<Sender> {
        let mut pool = self.pool.lock().ok()?;
        let idle = pool.get_mut(&endpoint.pool_key())?;
        while let Some(sender) = idle.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, endpoint: &Endpoint, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut pool) = self.pool.lock() {
            let idle = pool.entry(endpoint.pool_key()).or_default();
            if idle.len() < self.max_idle_per_host {
                idle.push(sender);
            }
        }
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Sender> {
        let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| Error::transport(format!("connect to {}: {e}", endpoint.authority())))?;
        // Small requests (session calls) should not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        if endpoint.tls {
            let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
                .map_err(|e| Error::invalid(format!("TLS server name {}: {e}", endpoint.host)))?;
            let tls = self
                .tls_connector()?
                .connect(name, tcp)
                .await
                .map_err(|e| Error::transport(format!("TLS with {}: {e}", endpoint.host)))?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    }

    /// Sends a request and reads the response whole.
    ///
    /// A pooled connection may have been closed by the server while idle; a
    /// request that fails on one before any answer is sent again once on a
    /// new connection.
    pub(crate) async fn send(
        &self,
        endpoint: &Endpoint,
        request: Request<Full<Bytes>>,
    ) -> Result<Response> {
        let fut = async {
            let (parts, body) = request.into_parts();
            let rebuild = || {
                let mut r = Request::new(body.clone());
                *r.method_mut() = parts.method.clone();
                *r.uri_mut() = parts.uri.clone();
                *r.headers_mut() = parts.headers.clone();
                r
            };
            if let Some(mut sender) = self.take_idle(endpoint) {
                match sender.send_request(rebuild()).await {
                    Ok(response) => return self.finish(endpoint, sender, response).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "pooled connection failed; using a new one")
                    }
                }
            }
            let mut sender = self.connect(endpoint).await?;
            let response = sender
                .send_request(rebuild())
                .await
                .map_err(|e| Error::transport(format!("HTTP request: {e}")))?;
            self.finish(endpoint, sender, response).await
        };
        tokio::time::timeout(self.timeout, fut).await.map_err(|_| {
            Error::from(ErrorKind::Timeout(format!(
                "HTTP request to {endpoint} after {:?}",
                self.timeout
            )))
        })?
    }

    async fn finish(
        &self,
        endpoint: &Endpoint,
        sender: Sender,
        response: hyper::Response<hyper::body::Incoming>,
    ) -> Result<Response> {
        let (parts, body) = response.into_parts();
        let limit = self.max_response_bytes;
        let too_large = || {
            Error::from(ErrorKind::ResponseTooLarge {
                endpoint: endpoint.to_string(),
                limit,
            })
        };
        // A declared length over the limit is refused before reading; the
        // connection is dropped with the unread body, not pooled.
        let declared = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        let body = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
            Err(e) => return Err(Error::transport(format!("HTTP response body: {e}"))),
        };
        self.put_idle(endpoint, sender);
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

async fn handshake<T>(io: TokioIo<T>) -> Result<Sender>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| Error::transport(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "HTTP connection closed");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e: Endpoint = "http://127.0.0.1:8080/api/".parse().unwrap();
        assert!(!e.is_https());
        assert_eq!(
            (e.host(), e.port(), e.base_path()),
            ("127.0.0.1", 8080, "/api")
        );
        assert_eq!(e.to_string(), "http://127.0.0.1:8080/api");
        let e: Endpoint = "https://service.cn-hangzhou.maxcompute.aliyun.com/api"
            .parse()
            .unwrap();
        assert_eq!(e.port(), 443);
        assert_eq!(e.authority(), "service.cn-hangzhou.maxcompute.aliyun.com");
        let e: Endpoint = "http://[::1]:9000".parse().unwrap();
        assert_eq!((e.host(), e.port(), e.base_path()), ("::1", 9000, ""));
        assert_eq!(e.authority(), "[::1]:9000");
        let t = e.with_authority("dt.example.com:81").unwrap();
        assert_eq!(t.to_string(), "http://dt.example.com:81");
        for bad in ["ftp://x", "http://", "http://h:port", "http://h/a?b"] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts_are_told_apart() {
        for local in [
            "http://127.0.0.1:8080/api",
            "http://127.9.8.7",
            "http://localhost:1",
            "http://LOCALHOST",
            "http://[::1]:9000",
            "http://[::ffff:127.0.0.1]",
        ] {
            let e: Endpoint = local.parse().unwrap();
            assert!(e.is_loopback(), "{local}");
            assert!(e.check_transport("endpoint", false).is_ok(), "{local}");
        }
        for remote in [
            "http://10.1.2.3/api",
            "http://128.0.0.1",
            "http://localhost.example.com",
            "http://[::2]",
            "http://0.0.0.0:80",
            "http://service.cn-hangzhou.maxcompute.aliyun.com/api",
        ] {
            let e: Endpoint = remote.parse().unwrap();
            assert!(!e.is_loopback(), "{remote}");
            let err = e.check_transport("endpoint", false).unwrap_err();
            assert!(
                matches!(err.kind(), ErrorKind::InsecureEndpoint { .. }),
                "{err}"
            );
            assert!(err.to_string().contains("allow_insecure_http"), "{err}");
            assert!(e.check_transport("endpoint", true).is_ok());
        }
        let https: Endpoint = "https://10.1.2.3/api".parse().unwrap();
        assert!(https.check_transport("endpoint", false).is_ok());
    }
}
