//! Test support shared by the workspace.
//!
//! * [`mysql_url`] finds the sandbox MariaDB that `scripts/mysql-sandbox up`
//!   starts; tests that need a server call it and fail loudly without one.
//! * [`emulator`] finds or builds `odps-emulator`, runs it on a free port for
//!   a test or bench, and finds the Python with pyodps that checks what
//!   landed in it.
//! * [`shop`] generates the demo shop database as SQL, deterministically from
//!   a seed, for the demo, tests and benches.
//! * [`PrivateServer`] starts a MariaDB of a test's own (own datadir, port and
//!   extra options) for tests the shared sandbox must not host.
//! * [`memory`] measures peak resident memory (of a child or of this process).
//! * [`wide`] fills a 22-column table of many types at a million rows, server-side.
//! * [`records`] reads `t_log` record keys and finds doubled ones (the
//!   exactly-once checks of the kill tests and `sync-chaos`).
//! * [`cli`] drives the `sync-cli` binary: commands on a task file, a background run, `status` figures.
//! * [`edges`]: the table of every edge value of every type, and pyodps's merge of it.
//! * [`probe`]: a free port, polling for a condition, an HTTP GET, Prometheus samples.
//! * [`layers`]: import cycles between a crate's top-level modules; its tests hold the
//!   workspace's library crates to none (beyond a known debt that may only shrink).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cli;
pub mod edges;
pub mod emulator;
pub mod layers;
pub mod memory;
mod private_server;
pub mod probe;
pub mod records;
pub mod rng;
pub mod shop;
pub mod wide;

pub use private_server::{PrivateServer, PrivateServerError};

/// Environment variable that points tests at a MySQL-compatible server.
pub const MYSQL_URL_ENV: &str = "SYNC_TEST_MYSQL_URL";

/// Why a server-backed test cannot run.
#[derive(Debug)]
pub struct MissingServer;

impl std::fmt::Display for MissingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{MYSQL_URL_ENV} is not set: this test needs the sandbox MariaDB. Start it with \
             `scripts/mysql-sandbox up` and run `export {MYSQL_URL_ENV}=$(scripts/mysql-sandbox url)`, \
             or run the whole suite with `scripts/test`, which does both"
        )
    }
}

impl std::error::Error for MissingServer {}

/// The URL of the test server, e.g. `mysql://root@127.0.0.1:3307`.
///
/// # Errors
/// [`MissingServer`] when [`MYSQL_URL_ENV`] is unset or empty; its message
/// says how to start the sandbox.
pub fn try_mysql_url() -> Result<String, MissingServer> {
    match std::env::var(MYSQL_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Ok(url.trim().to_owned()),
        _ => Err(MissingServer),
    }
}

/// The URL of the test server; panics with instructions when there is none.
///
/// A test that needs the server must fail without it, never pass silently.
#[allow(clippy::panic)]
pub fn mysql_url() -> String {
    match try_mysql_url() {
        Ok(url) => url,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_server_message_says_how_to_start_it() {
        let msg = MissingServer.to_string();
        assert!(msg.contains("scripts/mysql-sandbox up"), "{msg}");
        assert!(msg.contains(MYSQL_URL_ENV), "{msg}");
    }
}
