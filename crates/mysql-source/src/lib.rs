//! The MySQL side of the sync: everything that touches the MySQL wire.
//!
//! `sync-core` never opens a socket; it asks this crate for the server's
//! settings, table schemas, snapshot chunks and the replication stream.
//!
//! # Module plan
//!
//! | module | job |
//! |---|---|
//! | [`error`] | typed errors: unreachable, timeout, access denied, certificate, purged binlog, ... |
//! | [`conn`] | raw async connection: packets as `Bytes`, handshake, text protocol |
//! | `auth` | `mysql_native_password`, `caching_sha2_password`, `client_ed25519` |
//! | [`tls`] | rustls with modes disabled / preferred / required / verify_ca / verify_identity |
//! | [`server`] | the server's version and binlog settings, the current binlog position |
//! | [`gtid`] | MySQL GTID sets (tagged too), MariaDB GTID positions |
//! | [`replication`] | register as a replica, dump, transaction boundaries, reconnect and resume |
//! | [`schema`] | columns, keys and types from information_schema |
//! | [`snapshot`] | position first, then lock-free primary-key chunks into Arrow |
//! | [`arrow`] | text-protocol values straight into Arrow builders |
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod arrow;
mod auth;
pub mod conn;
pub mod error;
pub mod gtid;
pub mod replication;
pub mod schema;
pub mod server;
pub mod snapshot;
pub mod tls;

pub use conn::{ConnectOptions, RawConn};
pub use error::{Error, Result};
pub use server::{BinlogPosition, ServerInfo};
pub use tls::TlsMode;
