//! Zero-copy decoder of MySQL 5.7/8.x and MariaDB binary log events.
//!
//! The crate does no I/O: it takes `&'a [u8]` and returns events and row
//! values that borrow from it. Files, sockets and decompression buffers are
//! the caller's business (`mysql-source` and `sync-cli binlog` are callers).
//!
//! # Module plan
//!
//! | module | job |
//! |---|---|
//! | `error` | typed errors carrying the offset of the failing event |
//! | `header` | binlog magic, the v4 common header, checksum verification |
//! | `events/*` | one module per event type (format description, rotate, query, GTIDs, table map, rows, …) |
//! | `value` | row-image decoding into borrowed, typed values |
//! | `reader` | bounded-memory iteration over a file or a stream of packets |
//!
//! The modules land with the binlog-parser issue; until then this crate
//! exposes nothing.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
