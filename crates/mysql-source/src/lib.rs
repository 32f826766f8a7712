#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod arrow;
mod auth;
pub mod binary_row;
pub mod conn;
pub mod error;
pub mod gtid;
mod options;
mod packet;
pub mod replication;
pub mod schema;
pub mod server;
pub mod snapshot;
pub mod throttle;
pub mod tls;

pub use conn::{ConnectOptions, RawConn, redact_url};
pub use error::{Error, Result};
pub use server::{BinlogPosition, ServerInfo};
pub use tls::TlsMode;
