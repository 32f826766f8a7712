//! The Prometheus endpoint over real HTTP, and alerts posted to a real
//! HTTP receiver.

use std::time::Duration;
use sync_core::alert::{AlertConfig, AlertRules};
use sync_core::metrics::{self, Metrics};
use sync_core::webhook::{self, WebhookError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn metrics_endpoint_serves_the_prometheus_text_format() {
    let m = Metrics::new();
    let (addr, server) = metrics::serve("127.0.0.1:0".parse().expect("addr"), m.clone())
        .await
        .expect("bind");
    m.set_phase("incremental");
    m.add_rows("shop.orders", "incremental", 42, 4_200);
    m.set_lag_seconds(1.5);
    m.add_retry("connection");

    let resp = get(addr, "/metrics").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("content-type: text/plain; version=0.0.4"));
    assert!(resp.contains("sync_phase{phase=\"incremental\"} 1"));
    assert!(resp.contains("sync_rows_total{table=\"shop.orders\",phase=\"incremental\"} 42"));
    assert!(resp.contains("sync_lag_seconds 1.5"));
    assert!(resp.contains("sync_retries_total{kind=\"connection\"} 1"));
    assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
    m.set_failed();
    assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 503"));
    assert!(get(addr, "/metrics").await.contains("sync_failed 1"));

    // The address in use is an error, not a silent second server.
    let taken = metrics::serve(addr, Metrics::new()).await;
    assert!(taken.is_err(), "binding a used address must fail");
    server.abort();
}

/// A webhook receiver answering `status`, handing over every body it gets.
async fn receiver(status: u16) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/hooks/sync?token=s3cret",
        listener.local_addr().expect("addr")
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let ok = req.method() == hyper::Method::POST
                                && req.uri().path() == "/hooks/sync"
                                && req
                                    .headers()
                                    .get("content-type")
                                    .is_some_and(|v| v == "application/json");
                            let body = req.into_body().collect().await?.to_bytes();
                            if ok {
                                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
                            }
                            let mut resp = hyper::Response::new(http_body_util::Full::new(
                                hyper::body::Bytes::new(),
                            ));
                            *resp.status_mut() =
                                hyper::StatusCode::from_u16(if ok { status } else { 400 })
                                    .expect("status code");
                            Ok::<_, hyper::Error>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn lag_alert_is_posted_to_the_webhook_and_resolves() {
    let (url, mut bodies) = receiver(200).await;
    let cfg = AlertConfig {
        lag_seconds: 5.0,
        for_seconds: 0,
        webhook: Some(url.clone()),
    };
    let m = Metrics::new();
    let mut rules = AlertRules::new(cfg, "shop-task");
    m.set_lag_seconds(42.0);
    for a in rules.observe(&m.snapshot(), Duration::ZERO) {
        sync_core::alert::send(&a, Some(&url)).await;
    }
    let body = tokio::time::timeout(Duration::from_secs(5), bodies.recv())
        .await
        .expect("posted in time")
        .expect("a body");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["alert"], "lag");
    assert_eq!(v["state"], "firing");
    assert_eq!(v["task"], "shop-task");
    assert_eq!(v["lag_seconds"], 42.0);
    m.set_lag_seconds(0.5);
    for a in rules.observe(&m.snapshot(), Duration::from_secs(1)) {
        sync_core::alert::send(&a, Some(&url)).await;
    }
    let body = bodies.recv().await.expect("resolved body");
    assert!(body.contains("\"state\":\"resolved\""), "{body}");
}

#[tokio::test]
async fn webhook_failures_are_typed_and_never_show_the_token() {
    let (url, _bodies) = receiver(500).await;
    let e = webhook::post_json(&url, b"{}".to_vec())
        .await
        .expect_err("500");
    assert!(matches!(e, WebhookError::Status { status: 500, .. }), "{e}");
    assert!(!e.to_string().contains("s3cret"), "{e}");

    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let e = webhook::post_json(&format!("http://{closed}/x?token=s3cret"), b"{}".to_vec())
        .await
        .expect_err("refused");
    assert!(matches!(e, WebhookError::Transport { .. }), "{e}");
    assert!(
        e.to_string().contains("connect") && !e.to_string().contains("s3cret"),
        "{e}"
    );
}
