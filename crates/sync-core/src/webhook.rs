//! A one-shot JSON `POST` over HTTP or HTTPS (rustls with the webpki
//! roots), for alert webhooks. Deliberately small: one request per
//! connection, a timeout, no redirects.

use std::sync::Arc;
use std::time::Duration;

/// Why a webhook call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not `http://host[:port]/path` or `https://…`.
    #[error("webhook URL {0}: expected http://host[:port][/path] or https://…")]
    BadUrl(String),
    /// Connecting, TLS or the HTTP exchange failed.
    #[error("webhook {url}: {reason}")]
    Transport {
        /// The redacted URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The receiver answered with a non-2xx status.
    #[error("webhook {url}: HTTP {status}")]
    Status {
        /// The redacted URL.
        url: String,
        /// The status code.
        status: u16,
    },
}

const TIMEOUT: Duration = Duration::from_secs(10);

struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse(url: &str) -> Result<Target, WebhookError> {
    let bad = || WebhookError::BadUrl(redact(url));
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(bad());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
        None => (authority, if tls { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok(Target {
        tls,
        host: host.to_owned(),
        port,
        path: path.to_owned(),
    })
}

/// The URL without its query string: webhook tokens often live there and
/// must not reach the logs.
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_owned(),
    }
}

/// Posts `body` as `application/json` to `url`.
///
/// # Errors
/// [`WebhookError`]: bad URL, transport failure or a non-2xx answer.
pub async fn post_json(url: &str, body: Vec<u8>) -> Result<(), WebhookError> {
    let t = parse(url)?;
    let shown = redact(url);
    let fail = |reason: String| WebhookError::Transport {
        url: shown.clone(),
        reason,
    };
    let status = tokio::time::timeout(TIMEOUT, exchange(&t, body))
        .await
        .map_err(|_| fail(format!("no answer within {} s", TIMEOUT.as_secs())))?
        .map_err(fail)?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(WebhookError::Status { url: shown, status })
    }
}

async fn exchange(t: &Target, body: Vec<u8>) -> Result<u16, String> {
    let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if t.tls {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(t.host.clone())
            .map_err(|e| format!("TLS server name: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        request(hyper_util::rt::TokioIo::new(tls), t, body).await
    } else {
        request(hyper_util::rt::TokioIo::new(tcp), t, body).await
    }
}

async fn request<T>(io: T, t: &Target, body: Vec<u8>) -> Result<u16, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let host = if (t.tls && t.port == 443) || (!t.tls && t.port == 80) {
        t.host.clone()
    } else {
        format!("{}:{}", t.host, t.port)
    };
    let req = hyper::Request::post(t.path.as_str())
        .header("host", host)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("sync-core/", env!("CARGO_PKG_VERSION")),
        )
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    Ok(resp.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_tokens_are_redacted() {
        let t = parse("https://hooks.example.com/x/y?token=s3cret").expect("https");
        assert!(t.tls && t.port == 443 && t.host == "hooks.example.com");
        assert_eq!(t.path, "/x/y?token=s3cret");
        let t = parse("http://127.0.0.1:9000").expect("http");
        assert!(!t.tls && t.port == 9000 && t.path == "/");
        for bad in ["ftp://x", "http://", "http://u:p@h/", "http://h:port/"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(redact("https://h/p?token=s3cret"), "https://h/p?…");
        let e = parse("nope?token=s3cret").err().expect("bad");
        assert!(!e.to_string().contains("s3cret"));
    }
}
