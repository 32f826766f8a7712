//! Helpers shared by the modules of the integration-test binary.

use sync_core::run::RunOptions;

/// Run options that end the run once the incremental phase has caught up.
pub(crate) fn caught_up() -> RunOptions {
    RunOptions {
        exit_when_caught_up: true,
        ..RunOptions::default()
    }
}

/// A connection to `url`.
pub(crate) async fn connect(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(url).expect("url"))
        .await
        .expect("connect")
}
