//! Helpers shared by the modules of the integration-test binary.

use std::path::Path;
use std::process::{Child, Command};
use sync_testkit::cli::Cli;

/// The `sync-cli` executable under test.
pub(crate) fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sync-cli"))
}

/// A connection to `url`.
pub(crate) async fn connect(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(url).expect("url"))
        .await
        .expect("connect")
}

/// Starts `run` (log in `dir/run.log`) and waits for the incremental phase.
pub(crate) fn start(cli: &Cli, dir: &Path) -> Child {
    cli.start_incremental(&dir.join("run.log"))
}

/// Stops a `run` started by [`start`].
pub(crate) fn stop(child: Child, dir: &Path) {
    sync_testkit::cli::stop_run(child, &dir.join("run.log"));
}
