//! Zero-copy decoder of MySQL 5.x/8.x/9.x and MariaDB binary log events.
//!
//! The crate takes bytes — a whole file ([`BinlogFile`]), a stream
//! ([`BinlogReader`]) or single network packets
//! ([`DecodeContext::decode_packet`]) — and returns events and row values
//! that borrow from them. Row decoding allocates nothing per row or value.
//! Every failure is a typed [`Error`] carrying the event's offset; no input
//! makes the decoder panic.
//!
//! | module | job |
//! |---|---|
//! | [`header`] | binlog magic, the v4 common header, event types, CRC32 |
//! | [`events`] | one module per event type, and the [`DecodeContext`] |
//! | [`value`] | row values: integers, decimals, temporals, strings… |
//! | [`json`] | MySQL binary JSON (lazy) and partial-update diffs |
//! | [`reader`] | framing over a slice or a bounded-memory stream |
//!
//! ```
//! use binlog_parser::{BinlogFile, EventData, Value};
//! # let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/binlogs/time_issue.000001")).unwrap();
//! let mut file = BinlogFile::new(&bytes)?;
//! while let Some(event) = file.next_event() {
//!     let event = event?;
//!     if let EventData::Rows(rows) = &event.data {
//!         for change in file.context().rows(rows)? {
//!             for (column, value) in change?.after.unwrap().values().flatten() {
//!                 if let Value::Time(t) = value {
//!                     println!("column {column}: {t}");
//!                 }
//!             }
//!         }
//!     }
//! }
//! # Ok::<(), binlog_parser::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

// Imports point down only, from leaves (event_type, calendar, column,
// compression, decimal) through error, temporal, parse, header, json, value,
// events to reader; sync-testkit's `layers` test holds the crate to that.
pub mod calendar;
mod column;
pub(crate) mod compression;
mod decimal;
pub mod error;
mod event_type;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod json;
pub(crate) mod parse;
pub mod reader;
mod temporal;
pub mod value;

pub use error::{Error, Result};
pub use events::format_description::{Flavor, FormatDescription};
pub use events::rows::{RowChange, RowImage, Rows, RowsEvent, RowsKind, Values};
pub use events::table_map::{Column, ColumnType, TableMap, TableMapEvent};
pub use events::transaction_payload::{PayloadEvents, TransactionPayloadEvent};
pub use events::xa::{XaPrepareEvent, XaXid};
pub use events::{DecodeContext, Event, EventData};
pub use header::{ChecksumAlg, EventHeader, EventType};
pub use json::{Json, JsonDiff, JsonValue};
pub use reader::{BinlogFile, BinlogReader, RawEvent};
pub use value::{Date, DateTime, Decimal, Time, Timestamp, Value};
