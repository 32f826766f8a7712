#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod alert;
pub mod backoff;
pub mod batcher;
pub mod builder;
pub mod charset;
pub mod checkpoint;
pub mod config;
pub mod conflict;
pub mod ddl;
pub mod error;
pub mod filter;
pub mod heartbeat;
pub mod listing;
pub mod machine;
pub mod mapping;
pub mod merge;
pub mod metrics;
pub mod mirror;
pub mod naming;
pub mod odps_sql;
pub mod osc;
pub mod oversized;
pub mod precheck;
pub mod private_fs;
pub mod progress;
pub mod records;
pub mod retry;
pub mod row_image;
pub mod rowconv;
pub mod run;
pub mod schema_history;
pub mod sink;
pub mod state_lock;
pub mod status;
pub mod taskfile;
pub mod throttle;
pub mod timezone;
pub mod transform;
pub mod verify;
pub mod webhook;
pub mod xa;

pub use error::{Error, Result};
