//! Starts the emulator in-process and speaks raw HTTP to it: a request signed
//! with the wrong key is refused in MaxCompute's own error format, the same
//! request signed right is served; a block in an unknown `Content-Encoding`
//! is refused with an error naming it; bodies over the size cap and
//! compression bombs are refused with 413 and the server keeps serving; a
//! client that stalls in its headers is disconnected.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use odps_emulator::auth::{self, SignedParts};
use odps_emulator::{Config, Emulator};
use tokio::net::TcpStream;

const ACCESS_ID: &str = "rust-test-id";
const ACCESS_KEY: &str = "rust-test-secret";

/// Sends a GET signed with `secret`; returns status, headers and body.
async fn signed_get(
    emulator: &Emulator,
    path: &str,
    query: &str,
    secret: &str,
) -> (u16, hyper::HeaderMap, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    signed_get_at(emulator, path, query, secret, i64::try_from(now).unwrap()).await
}

/// As [`signed_get`], with the `Date` header set to `secs` since the epoch.
async fn signed_get_at(
    emulator: &Emulator,
    path: &str,
    query: &str,
    secret: &str,
    secs: i64,
) -> (u16, hyper::HeaderMap, String) {
    signed_request(
        emulator,
        "GET",
        path,
        query,
        secret,
        secs,
        &[],
        Bytes::new(),
    )
    .await
}

/// Sends a request signed with `secret` at `secs`, with extra (unsigned
/// unless `x-odps-*`) headers and a body.
#[allow(clippy::too_many_arguments)]
async fn signed_request(
    emulator: &Emulator,
    method: &str,
    path: &str,
    query: &str,
    secret: &str,
    secs: i64,
    extra: &[(&str, &str)],
    body: Bytes,
) -> (u16, hyper::HeaderMap, String) {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    let date = odps_tunnel::auth::http_date(time);
    // The signed resource is the part after the endpoint, so `/api` is not in it.
    let signed_path = path.strip_prefix("/api").unwrap_or(path);
    let mut headers = vec![
        ("date".to_owned(), date.clone()),
        ("x-odps-user-agent".to_owned(), "rust-test".to_owned()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())),
    );
    let canonical = auth::canonical_string(&SignedParts {
        method,
        headers: headers.clone(),
        path: signed_path,
        query: Some(query),
    });
    let signature = auth::sign(secret, &canonical);
    let stream = TcpStream::connect(emulator.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{path}?{query}"))
        .header("host", emulator.addr().to_string())
        .header("authorization", format!("ODPS {ACCESS_ID}:{signature}"));
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let resp = sender
        .send_request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn wrong_key_is_refused_in_maxcompute_error_format() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(Config::new(dir.path(), ACCESS_ID, ACCESS_KEY))
        .await
        .unwrap();

    let (status, headers, body) = signed_get(
        &emulator,
        "/api/projects/rust_sig/tunnel",
        "service&curr_project=rust_sig",
        "wrong-secret",
    )
    .await;
    assert_eq!(status, 403);
    assert!(headers.contains_key("x-odps-request-id"));
    assert_eq!(headers["content-type"], "application/xml");
    assert!(body.contains("<Error>"), "{body}");
    assert!(body.contains("<Code>SignatureNotMatch</Code>"), "{body}");
    assert!(body.contains("ODPS-0410042"), "{body}");
    assert!(body.contains("<RequestId>"), "{body}");
    assert!(
        !body.contains(ACCESS_KEY),
        "the secret must never be echoed"
    );

    // The Tunnel answers in its JSON error format.
    let (status, _, body) = signed_get(
        &emulator,
        "/projects/rust_sig/tables/t",
        "downloadid=x",
        "wrong-secret",
    )
    .await;
    assert_eq!(status, 403);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["Code"], "SignatureNotMatch");

    // Signed with the right key, the same request is served.
    let (status, _, body) = signed_get(
        &emulator,
        "/api/projects/rust_sig/tunnel",
        "service&curr_project=rust_sig",
        ACCESS_KEY,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, emulator.addr().to_string());

    // A correct signature over an old Date is refused: no replays.
    let (status, _, body) = signed_get_at(
        &emulator,
        "/api/projects/rust_sig/tunnel",
        "service&curr_project=rust_sig",
        ACCESS_KEY,
        1_000_000_000,
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>RequestTimeTooSkewed</Code>"), "{body}");

    emulator.shutdown().await;
}

#[tokio::test]
async fn unknown_content_encoding_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(Config::new(dir.path(), ACCESS_ID, ACCESS_KEY))
        .await
        .unwrap();
    let client = odps_tunnel::Client::new(
        &emulator.endpoint(),
        "rust_enc",
        odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
    )
    .unwrap();
    client.run_sql("CREATE TABLE t (id BIGINT)").await.unwrap();
    let session = client
        .create_upload_session("t", None, &Default::default())
        .await
        .unwrap();
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let query = format!(
        "uploadid={}&blockid=0&arrow&curr_project=rust_enc",
        session.id()
    );
    let (status, _, body) = signed_request(
        &emulator,
        "PUT",
        "/projects/rust_enc/tables/t",
        &query,
        ACCESS_KEY,
        now,
        &[
            ("content-type", "application/octet-stream"),
            ("content-encoding", "br"),
            ("x-odps-tunnel-version", "6"),
        ],
        Bytes::from_static(b"\x0b\x02\x80"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let message = json["Message"].as_str().unwrap();
    assert!(message.contains("Content-Encoding br"), "{message}");
    assert!(message.contains("deflate, zstd"), "{message}");
    // Nothing was staged.
    let mut session = session;
    assert!(session.reload().await.unwrap().blocks.is_empty());
    emulator.shutdown().await;
}

fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// An emulator with a 1 MiB body cap and a 1 s header timeout.
async fn small_emulator(dir: &std::path::Path) -> Emulator {
    let mut config = Config::new(dir, ACCESS_ID, ACCESS_KEY);
    config.max_body_bytes = 1 << 20;
    config.header_read_timeout = Duration::from_secs(1);
    Emulator::start(config).await.unwrap()
}

#[tokio::test]
async fn a_body_over_the_cap_gets_413_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = small_emulator(dir.path()).await;
    let block = |body: Bytes, encoding: Option<&'static str>| {
        let mut extra = vec![
            ("content-type", "application/octet-stream"),
            ("x-odps-tunnel-version", "6"),
        ];
        extra.extend(encoding.map(|e| ("content-encoding", e)));
        let emulator = &emulator;
        async move {
            signed_request(
                emulator,
                "PUT",
                "/projects/rust_cap/tables/t",
                "uploadid=u&blockid=0&arrow&curr_project=rust_cap",
                ACCESS_KEY,
                now_secs(),
                &extra,
                body,
            )
            .await
        }
    };

    // 2 MiB declared and sent: refused in the Tunnel's JSON error format.
    let (status, _, body) = block(Bytes::from(vec![b'x'; 2 << 20]), None).await;
    assert_eq!(status, 413, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["Code"], "RequestEntityTooLarge");

    // A zstd bomb: 64 MiB of zeros in a few KB inflates past the cap.
    let mut bomb = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        std::io::Write::write_all(&mut bomb, &zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let (status, _, body) = block(Bytes::from(bomb), Some("zstd")).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("RequestEntityTooLarge"), "{body}");

    // The server is still up and serves the next request.
    let (status, _, body) = signed_get(
        &emulator,
        "/api/projects/rust_cap/tunnel",
        "service&curr_project=rust_cap",
        ACCESS_KEY,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, emulator.addr().to_string());
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_client_stalling_in_its_headers_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = small_emulator(dir.path()).await;
    let addr = emulator.addr();
    // Closed (EOF or reset) once the 1 s header timeout has passed.
    let waited = tokio::task::spawn_blocking(move || {
        sync_testkit::probe::stalled_head_closed_after(addr, b"GET /api/projects/p HTT")
    })
    .await
    .unwrap();
    assert!(
        waited.is_some_and(|w| w >= Duration::from_millis(900) && w < Duration::from_secs(5)),
        "closed after {waited:?}"
    );
    // And it still serves others.
    let (status, _, _) = signed_get(
        &emulator,
        "/api/projects/rust_slow/tunnel",
        "service&curr_project=rust_slow",
        ACCESS_KEY,
    )
    .await;
    assert_eq!(status, 200);
    emulator.shutdown().await;
}
