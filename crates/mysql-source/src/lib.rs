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
//! | `options` | [`ConnectOptions`] and the `mysql://` URL they come from (public path: [`conn`]) |
//! | `packet` | wire framing: frame headers, sequence ids, 16 MiB continuations, read timeout, TLS upgrade |
//! | [`conn`] | raw async connection: packets as `Bytes`, handshake, text queries, prepared statements |
//! | `auth` | `mysql_native_password`, `caching_sha2_password`, `client_ed25519`, `mysql_clear_password`; the password itself only over verified TLS or by opt-in |
//! | [`tls`] | rustls with modes disabled / preferred / required / verify_ca / verify_identity |
//! | [`server`] | the server's version and binlog settings, the current binlog position |
//! | [`gtid`] | MySQL GTID sets (tagged too), MariaDB GTID positions |
//! | [`replication`] | register as a replica, dump, transaction boundaries, reconnect and resume |
//! | [`schema`] | columns, keys and types from information_schema |
//! | [`snapshot`] | position first, then lock-free primary-key chunks into Arrow |
//! | [`throttle`] | token-bucket rate limits: queries, rows and bytes per second |
//! | [`arrow`] | text- and binary-protocol values straight into Arrow builders |
//! | [`binary_row`] | the binary row format of prepared-statement results, borrowed |
//!
//! Imports point down the table's wire layers (options, tls, packet, auth,
//! conn); sync-testkit's `layers` test keeps the crate free of import cycles.
//!
//! # Following the binlog
//!
//! ```no_run
//! use mysql_source::replication::{BinlogStream, ReplicationOptions, StartPosition};
//! use mysql_source::{BinlogPosition, ConnectOptions};
//!
//! # async fn run() -> mysql_source::Result<()> {
//! let opts = ConnectOptions::from_url("mysql://repl:secret@db:3306?ssl-mode=verify_identity")?;
//! let start = StartPosition::File(BinlogPosition { file: "mariadb-bin.000042".into(), position: 4 });
//! let mut stream = BinlogStream::start(ReplicationOptions::new(opts, 4242, start)).await?;
//! while let Some(event) = stream.next_event().await? {
//!     // event.bytes: one whole event, a slice of the read buffer, for binlog-parser.
//!     if event.ends_transaction {
//!         let checkpoint = stream.checkpoint(); // store it: a restart resumes here
//!         println!("{} {}", checkpoint.position.file, checkpoint.gtid);
//!     }
//! }
//! # Ok(()) }
//! ```
//! The stream is pull-based (a slow consumer slows the server down, memory
//! stays at one event plus the read buffer) and survives dropped
//! connections without splitting or repeating a transaction; see
//! [`replication`].
//!
//! # Snapshotting tables
//!
//! ```no_run
//! use mysql_source::snapshot::{self, SnapshotItem, SnapshotOptions, TableJob};
//! use mysql_source::{ConnectOptions, RawConn, schema};
//! use std::sync::Arc;
//!
//! # async fn run() -> mysql_source::Result<()> {
//! let opts = ConnectOptions::from_url("mysql://reader:secret@db:3306")?;
//! let mut conn = RawConn::connect(&opts).await?;
//! // 1. The binlog position first: the incremental phase starts there.
//! let start = snapshot::capture_position(&mut conn).await?;
//! // 2. Then lock-free primary-key chunks, in parallel, into Arrow.
//! let table = schema::read_table(&mut conn, "shop", "orders").await?;
//! let plan = snapshot::plan_table(&mut conn, &table, 50_000).await?;
//! let job = TableJob { schema: Arc::new(table), plan: Arc::new(plan), done: Default::default() };
//! let mut run = snapshot::start(SnapshotOptions::new(opts), vec![job]);
//! while let Some(item) = run.items.recv().await {
//!     match item? {
//!         SnapshotItem::Batch { batch, .. } => println!("{} rows", batch.num_rows()),
//!         SnapshotItem::ChunkDone { chunk, .. } => println!("chunk {chunk} durable?"),
//!     }
//! }
//! println!("follow the binlog from {:?}", start.position);
//! # Ok(()) }
//! ```
//! Why this order makes `merge(base, log)` exact is explained in [`snapshot`].
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
