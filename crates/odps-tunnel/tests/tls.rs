//! Transport: the client talks TLS (rustls, ring) to a local server whose
//! certificate chains to a CA made here with `openssl`, and the server checks
//! the request's signature with the same `auth` functions the emulator uses.
//! Over plain HTTP, a tunnel endpoint off this machine named by the service
//! is refused unless allowed, and response bodies over the cap fail typed.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use odps_tunnel::ErrorKind;
use odps_tunnel::auth::{self, Credentials};
use odps_tunnel::rest::{Client, ClientOptions};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed for the TLS test");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a leaf certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=odps-tunnel test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// Serves `GET /api/projects/{p}/tunnel?service` over TLS, answering with
/// its own address when the signature verifies, 403 otherwise.
async fn serve(listener: TcpListener, dir: &Path) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("leaf.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("leaf.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let authority = listener.local_addr().unwrap().to_string();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let authority = authority.clone();
        tokio::spawn(async move {
            // A client that refuses our certificate ends the handshake.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let authority = authority.clone();
                async move {
                    let path = req
                        .uri()
                        .path()
                        .strip_prefix("/api")
                        .unwrap_or_default()
                        .to_owned();
                    let headers: Vec<(String, String)> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                        .collect();
                    let canonical = auth::canonical_string(
                        req.method().as_str(),
                        &path,
                        req.uri().query(),
                        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    );
                    let signed_ok = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(auth::parse_authorization)
                        .is_some_and(|(id, sig)| {
                            id == "tls-id" && auth::verify("tls-key", &canonical, sig)
                        });
                    let response = if signed_ok && path == "/projects/p/tunnel" {
                        Response::new(Full::new(Bytes::from(authority)))
                    } else {
                        let mut r = Response::new(Full::new(Bytes::from_static(
                            b"<Error><Code>SignatureNotMatch</Code><Message>bad signature</Message></Error>",
                        )));
                        *r.status_mut() = hyper::StatusCode::FORBIDDEN;
                        r
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

#[tokio::test]
async fn https_with_a_private_ca_and_signature_checked_by_the_server() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server_dir = dir.path().to_path_buf();
    tokio::spawn(async move { serve(listener, &server_dir).await });
    let endpoint = format!("https://127.0.0.1:{port}/api");

    let trusting = Client::with_options(
        &endpoint,
        "p",
        Credentials::new("tls-id", "tls-key"),
        ClientOptions {
            extra_roots_pem: Some(std::fs::read(dir.path().join("ca.pem")).unwrap()),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let tunnel = trusting.tunnel_endpoint().await.unwrap();
    assert_eq!(tunnel.to_string(), format!("https://127.0.0.1:{port}"));

    // Same server, wrong secret: the server's check fails, as a typed error.
    let wrong_key = Client::with_options(
        &endpoint,
        "p",
        Credentials::new("tls-id", "other"),
        ClientOptions {
            extra_roots_pem: Some(std::fs::read(dir.path().join("ca.pem")).unwrap()),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let err = wrong_key.tunnel_endpoint().await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");

    // Without the private CA the certificate is refused.
    let default_roots = Client::new(&endpoint, "p", Credentials::new("tls-id", "tls-key")).unwrap();
    let err = default_roots.tunnel_endpoint().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Transport(_)), "{err:?}");
}

/// A plain-HTTP server on loopback answering by path: tunnel discovery with
/// `tunnel`, `/tables/big` with a 2 MiB body (declared), `/tables/chunked`
/// with 2 MiB in chunks (no declared length), anything else with 404.
async fn plain_server(tunnel: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                let path = path.split('?').next().unwrap_or("");
                // Errors: the client may hang up once it has seen enough.
                if path.ends_with("/tunnel") {
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{tunnel}",
                        tunnel.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                } else if path.ends_with("/tables/big") {
                    let body = vec![b'x'; 2 << 20];
                    let _ = stream
                        .write_all(
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len())
                                .as_bytes(),
                        )
                        .await;
                    let _ = stream.write_all(&body).await;
                } else if path.ends_with("/tables/chunked") {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                        .await;
                    let chunk = vec![b'x'; 64 * 1024];
                    for _ in 0..32 {
                        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                        frame.extend_from_slice(&chunk);
                        frame.extend_from_slice(b"\r\n");
                        if stream.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                } else {
                    let _ = stream
                        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                        .await;
                }
            });
        }
    });
    port
}

fn plain_client(port: u16, options: ClientOptions) -> Client {
    Client::with_options(
        &format!("http://127.0.0.1:{port}/api"),
        "p",
        Credentials::new("id", "key"),
        options,
    )
    .unwrap()
}

#[tokio::test]
async fn a_plain_http_tunnel_off_this_machine_named_by_the_service_is_refused() {
    for tunnel in ["10.1.2.3:8080", "http://dt.example.com"] {
        let port = plain_server(tunnel).await;
        let err = plain_client(port, ClientOptions::default())
            .tunnel_endpoint()
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InsecureEndpoint { .. }),
            "{tunnel}: {err:?}"
        );
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        let allowed = plain_client(
            port,
            ClientOptions {
                allow_insecure_http: true,
                ..ClientOptions::default()
            },
        );
        let ep = allowed.tunnel_endpoint().await.unwrap();
        assert!(!ep.is_https() && !ep.is_loopback(), "{ep}");
    }
    // A loopback tunnel is fine without the option.
    let port = plain_server("127.0.0.1:9").await;
    let ep = plain_client(port, ClientOptions::default())
        .tunnel_endpoint()
        .await
        .unwrap();
    assert_eq!(ep.to_string(), "http://127.0.0.1:9");
}

#[tokio::test]
async fn response_bodies_over_the_cap_fail_typed() {
    let port = plain_server("127.0.0.1:9").await;
    let capped = plain_client(
        port,
        ClientOptions {
            max_response_bytes: 1 << 20,
            max_attempts: 1,
            ..ClientOptions::default()
        },
    );
    for table in ["big", "chunked"] {
        let err = capped.table(table).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::ResponseTooLarge { limit, .. } if *limit == 1 << 20),
            "{table}: {err:?}"
        );
        assert!(!err.is_retryable(), "{table}");
    }
    // Under a larger cap the same bodies are read (and then fail as XML).
    let roomy = plain_client(
        port,
        ClientOptions {
            max_response_bytes: 4 << 20,
            max_attempts: 1,
            ..ClientOptions::default()
        },
    );
    for table in ["big", "chunked"] {
        let err = roomy.table(table).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Protocol(_)),
            "{table}: {err:?}"
        );
    }
}
