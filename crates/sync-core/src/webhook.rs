//! A one-shot JSON `POST` over HTTP or HTTPS (rustls with the webpki
//! roots), for alert webhooks. Deliberately small: one request per
//! connection, a timeout, no redirects.
//!
//! Webhook URLs carry their secret in the path (Slack, Teams, Discord) or
//! the query, so logs and errors show a URL only as `scheme://host[:port]`
//! (see [`redact`]).

use std::sync::Arc;
use std::time::Duration;

/// Why a webhook call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not `http://host[:port]/path` or `https://…` (the field
    /// is the redacted URL).
    #[error("webhook URL {0}: expected http://host[:port][/path] or https://host[:port][/path]")]
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
    let (authority, path) = split_authority(rest);
    if authority.contains('@') {
        return Err(bad());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (h, p.parse().map_err(|_| bad())?),
            None if after.is_empty() => (h, if tls { 443 } else { 80 }),
            None => return Err(bad()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (authority, if tls { 443 } else { 80 }),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    // The fragment is never sent; a bare `?query` gets the root path.
    let path = path.split('#').next().unwrap_or_default();
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Ok(Target {
        tls,
        host: host.to_owned(),
        port,
        path,
    })
}

/// `(authority, rest)` of what follows `scheme://`: the authority ends at
/// the first `/`, `?` or `#`.
fn split_authority(rest: &str) -> (&str, &str) {
    rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()))
}

/// Checks that `url` is an `http://` or `https://` URL a webhook can be
/// posted to (for the task file's check, before anything is sent).
///
/// # Errors
/// [`WebhookError::BadUrl`] with the redacted URL.
pub fn validate(url: &str) -> Result<(), WebhookError> {
    parse(url).map(|_| ())
}

/// The URL as logs and errors may show it: `scheme://host[:port]`, without
/// user info, path, query or fragment, where webhook tokens live (Slack,
/// Teams and Discord keep theirs in the path). Text that is not a URL shows
/// as `<not a URL>`.
///
/// ```
/// use sync_core::webhook::redact;
/// assert_eq!(
///     redact("https://hooks.slack.com/services/T000/B000/XXXX?token=abc"),
///     "https://hooks.slack.com"
/// );
/// assert_eq!(redact("http://u:pw@10.0.0.5:8080/hook"), "http://10.0.0.5:8080");
/// ```
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return "<not a URL>".to_owned();
    }
    let (authority, _) = split_authority(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{}://{host_port}", scheme.to_ascii_lowercase())
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
        let t = parse("http://[::1]:9000?k=v#frag").expect("v6");
        assert!(t.host == "::1" && t.port == 9000 && t.path == "/?k=v");
        for bad in [
            "ftp://x",
            "http://",
            "http://u:p@h/",
            "http://h:port/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "HTTPS//h/x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert!(validate("https://hooks.slack.com/services/T0/B0/X").is_ok());
        let e = parse("nope?token=s3cret").err().expect("bad");
        assert!(!e.to_string().contains("s3cret"));
        let e = parse("ftp://u:pw@h/secret/path?token=s3cret")
            .err()
            .expect("bad");
        let shown = e.to_string();
        assert!(
            shown.contains("ftp://h") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(
            !shown.contains("pw") && !shown.contains("secret/path"),
            "{shown}"
        );
    }

    #[test]
    fn urls_show_only_scheme_host_and_port() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T000/B000/XXXX?token=abc"),
            "https://hooks.slack.com"
        );
        assert_eq!(redact("https://h/p?token=s3cret"), "https://h");
        assert_eq!(redact("http://h:8080?token=s3cret"), "http://h:8080");
        assert_eq!(redact("http://h#frag"), "http://h");
        assert_eq!(redact("HTTPS://user:pw@[::1]:9/x"), "https://[::1]:9");
        assert_eq!(
            redact("https://discord.com/api/webhooks/123/tok"),
            "https://discord.com"
        );
        assert_eq!(redact("nope?token=s3cret"), "<not a URL>");
        assert_eq!(redact("a b://x/y"), "<not a URL>");
    }

    #[tokio::test]
    async fn errors_show_only_scheme_host_and_port() {
        // Nothing listens on a port just released.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let url = format!("http://127.0.0.1:{port}/services/T000/B000/XXXX?token=abc");
        let e = post_json(&url, b"{}".to_vec()).await.expect_err("refused");
        let shown = e.to_string();
        assert!(
            shown.contains(&format!("http://127.0.0.1:{port}")),
            "{shown}"
        );
        assert!(!shown.contains("XXXX") && !shown.contains("abc"), "{shown}");
        assert!(!format!("{e:?}").contains("XXXX"), "{e:?}");
    }
}
