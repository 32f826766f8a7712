#![doc = include_str!("../README.md")]
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
