//! The MySQL side of the sync: everything that touches the MySQL wire.
//!
//! `sync-core` never opens a socket; it asks this crate for the server's
//! settings, table schemas, snapshot chunks and the replication stream.
//!
//! # Module plan
//!
//! | module | job | status |
//! |---|---|---|
//! | [`error`] | typed errors: connection, authentication, server errors | here |
//! | [`server`] | the server's version and binlog settings, the current binlog position | here |
//! | `conn`, `auth`, `tls` | handshake, auth plugins, rustls | with the mysql-source issue |
//! | `replication` | register as a replica, dump from a position or GTID set | with the mysql-source issue |
//! | `schema` | columns, keys and types from information_schema | with the mysql-source issue |
//! | `snapshot` | position first, then lock-free primary-key chunks into Arrow | with the mysql-source issue |
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod error;
pub mod server;

pub use error::{Error, Result};
pub use server::{BinlogPosition, ServerInfo};
