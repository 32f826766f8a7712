#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! | module | job |
//! |---|---|
//! | [`error`] | typed errors, including MaxCompute's own error code and message |
//! | [`auth`] | request signing (canonical string, HMAC-SHA1), STS tokens; secrets never printed |
//! | [`types`] | the MaxCompute 2.0 type system and its Arrow mapping |
//! | [`session`] | upload and download session JSON, partition specs, block ids |
//! | [`encode`] | no-I/O block codecs: chunked Arrow IPC with CRC32C, protobuf records |
//! | [`compress`] | whole-body compression of uploads (`Content-Encoding: deflate` or `zstd`) |
//! | [`xml`] | the small XML tree used for REST bodies |
//! | [`rest`] | signed HTTP client (hyper, rustls): SQL instances, table schemas and partitions, tunnel discovery |
//! | [`upsert`] | upsert sessions on primary-key Delta tables: bucket hashing, UPSERT/DELETE blocks, commit; creating such tables |
//! | [`query`] | SQL query results through the instance tunnel (how Delta tables are read) |
//! | [`writer`] | upload sessions with the Arrow block writer (blocks in flight, retries, resume), download sessions |
//!
//! The no-I/O modules (`auth`, `types`, `session`, `encode`, `compress`, `xml`, and
//! [`ServerError`]'s body rendering) are shared with `odps-emulator`, so
//! client and server cannot drift apart.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]
// Tests may unwrap: a panic there is the failure report.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod backoff;
pub mod compress;
pub mod encode;
pub mod error;
pub mod query;
pub mod rest;
pub mod session;
pub mod types;
pub mod upsert;
pub mod writer;
pub mod xml;

pub use error::{Error, ErrorKind, Result, ServerError};
pub use rest::Client;
