//! The raw connection against the sandbox MariaDB: every auth plugin it
//! has, with and without TLS, every TLS mode, and distinct errors for a
//! wrong password, an unreachable host and an untrusted certificate.

use mysql_source::{ConnectOptions, Error, RawConn, TlsMode};
use std::path::PathBuf;
use std::time::Duration;

fn sandbox() -> ConnectOptions {
    ConnectOptions::from_url(&sync_testkit::mysql_url()).expect("sandbox URL")
}

fn sandbox_dir() -> PathBuf {
    std::env::var_os("SYNC_TEST_MYSQL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/mysql-sandbox")
        })
}

fn sandbox_ca() -> Vec<u8> {
    let path = sandbox_dir().join("tls/ca.pem");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the sandbox runs with --tls; cannot read {}: {e}",
            path.display()
        )
    })
}

fn as_user(user: &str, pass: &str, tls: TlsMode) -> ConnectOptions {
    let mut o = sandbox();
    o.user = user.into();
    o.password = Some(pass.into());
    o.tls = tls;
    o.ca_pem = Some(sandbox_ca());
    o
}

async fn whoami(opts: &ConnectOptions) -> (String, bool, String) {
    let mut conn = RawConn::connect(opts)
        .await
        .unwrap_or_else(|e| panic!("connect as {}: {e}", opts.user));
    let rows = conn
        .query_strings("SELECT CURRENT_USER(), @@ssl_cipher IS NOT NULL, (SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher')")
        .await
        .expect("query");
    let tls = conn.hello().tls;
    let plugin = conn.hello().auth_plugin.clone();
    conn.close().await.expect("close");
    let user = rows[0][0].clone().expect("user");
    let cipher = rows[0][2].clone().unwrap_or_default();
    assert_eq!(
        tls,
        !cipher.is_empty(),
        "client TLS flag and server Ssl_cipher agree"
    );
    (user, tls, plugin)
}

#[tokio::test]
async fn native_password_with_and_without_tls() {
    let (user, tls, plugin) =
        whoami(&as_user("sync_native", "native-pass", TlsMode::Disabled)).await;
    assert!(user.starts_with("sync_native@"), "{user}");
    assert!(!tls);
    assert_eq!(plugin, "mysql_native_password");
    let (_, tls, _) = whoami(&as_user(
        "sync_native",
        "native-pass",
        TlsMode::VerifyIdentity,
    ))
    .await;
    assert!(tls);
}

#[tokio::test]
async fn ed25519_with_and_without_tls() {
    let (user, tls, plugin) =
        whoami(&as_user("sync_ed25519", "ed25519-pass", TlsMode::Disabled)).await;
    assert!(user.starts_with("sync_ed25519@"), "{user}");
    assert!(!tls);
    assert_eq!(plugin, "client_ed25519");
    let (_, tls, plugin) =
        whoami(&as_user("sync_ed25519", "ed25519-pass", TlsMode::Required)).await;
    assert!(tls);
    assert_eq!(plugin, "client_ed25519");
}

#[tokio::test]
async fn every_tls_mode_connects_with_the_sandbox_ca() {
    for mode in [
        TlsMode::Preferred,
        TlsMode::Required,
        TlsMode::VerifyCa,
        TlsMode::VerifyIdentity,
    ] {
        let (user, tls, _) = whoami(&as_user("sync_tls", "tls-pass", mode)).await;
        assert!(user.starts_with("sync_tls@"), "{mode:?}: {user}");
        assert!(tls, "{mode:?}");
    }
}

#[tokio::test]
async fn require_ssl_user_is_refused_without_tls() {
    let err = RawConn::connect(&as_user("sync_tls", "tls-pass", TlsMode::Disabled))
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_password_is_access_denied() {
    let err = RawConn::connect(&as_user("sync_native", "wrong", TlsMode::Disabled))
        .await
        .expect_err("must fail");
    match &err {
        Error::AccessDenied { user, message } => {
            assert_eq!(user, "sync_native");
            assert!(message.contains("Access denied"), "{message}");
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    let err = RawConn::connect(&as_user("sync_ed25519", "wrong", TlsMode::Required))
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
}

#[tokio::test]
async fn unreachable_host_is_unreachable() {
    let mut opts = sandbox();
    opts.port = 1;
    let err = RawConn::connect(&opts).await.expect_err("must fail");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

#[tokio::test]
async fn silent_server_is_a_connect_timeout() {
    // A listener that accepts and never speaks.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let _accept = tokio::spawn(async move {
        let (_sock, _) = listener.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut opts = ConnectOptions::new("127.0.0.1", port, "root");
    opts.connect_timeout = Duration::from_millis(300);
    let err = RawConn::connect(&opts).await.expect_err("must time out");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn untrusted_certificate_is_a_certificate_error() {
    // Without the sandbox CA only the public roots are trusted.
    let mut opts = as_user("sync_native", "native-pass", TlsMode::VerifyIdentity);
    opts.ca_pem = None;
    let err = RawConn::connect(&opts).await.expect_err("must fail");
    assert!(matches!(err, Error::Certificate(_)), "{err:?}");
    // `verify_ca` without a CA of its own would trust every public CA for
    // any host name: refused before connecting.
    opts.tls = TlsMode::VerifyCa;
    let err = RawConn::connect(&opts).await.expect_err("must fail");
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("ssl-ca")),
        "{err:?}"
    );
    // `required` encrypts without checking: the same server is accepted.
    opts.tls = TlsMode::Required;
    RawConn::connect(&opts)
        .await
        .expect("required mode skips verification")
        .close()
        .await
        .expect("close");
}

#[tokio::test]
async fn host_name_mismatch_fails_only_verify_identity() {
    // The sandbox certificate names localhost and 127.0.0.1, not db.example.
    let mut opts = as_user("sync_native", "native-pass", TlsMode::VerifyIdentity);
    opts.tls_server_name = Some("db.example".into());
    let err = RawConn::connect(&opts).await.expect_err("must fail");
    assert!(matches!(err, Error::Certificate(_)), "{err:?}");
    opts.tls = TlsMode::VerifyCa;
    RawConn::connect(&opts)
        .await
        .expect("verify_ca ignores the name")
        .close()
        .await
        .expect("close");
}

#[tokio::test]
async fn url_parameters() {
    let o = ConnectOptions::from_url(
        "mysql://u%40x:p%3Aw@db.example:3310/shop?ssl-mode=verify_identity&connect-timeout=2",
    )
    .expect("parse");
    assert_eq!(
        (
            o.user.as_str(),
            o.password.as_deref(),
            o.host.as_str(),
            o.port
        ),
        ("u@x", Some("p:w"), "db.example", 3310)
    );
    assert_eq!(o.database.as_deref(), Some("shop"));
    assert_eq!(o.tls, TlsMode::VerifyIdentity);
    assert_eq!(o.connect_timeout, Duration::from_secs(2));
    assert!(matches!(
        ConnectOptions::from_url("mysql://h/?bogus=1"),
        Err(Error::Url(_))
    ));
}

#[tokio::test]
async fn ssl_ca_alone_verifies_the_sandbox_ca() {
    let ca = sandbox_dir().join("tls/ca.pem");
    let base = sync_testkit::mysql_url();
    let port = base.rsplit(':').next().expect("port");
    let url = format!(
        "mysql://sync_tls:tls-pass@127.0.0.1:{port}/?ssl-ca={}",
        ca.display()
    );
    let opts = ConnectOptions::from_url(&url).expect("parse");
    assert_eq!(opts.tls, TlsMode::VerifyCa);
    let (user, tls, _) = whoami(&opts).await;
    assert!(user.starts_with("sync_tls@"), "{user}");
    assert!(tls);
    let err = ConnectOptions::from_url(&format!(
        "mysql://sync_tls:tls-pass@127.0.0.1:{port}/?ssl-mode=verify_ca"
    ))
    .expect_err("verify_ca without ssl-ca");
    assert!(err.to_string().contains("ssl-ca"), "{err}");
    assert!(!err.to_string().contains("tls-pass"), "{err}");
}
