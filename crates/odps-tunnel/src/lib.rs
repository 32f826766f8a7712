#![doc = include_str!("../README.md")]
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
