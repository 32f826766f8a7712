//! Integration tests of sync-core, in one binary (a module per file): the
//! whole task into a local warehouse and into the MaxCompute emulator, DDL
//! during the incremental phase, filters and transforms, killed snapshot
//! readers, large and XA transactions, a million rows under a writer,
//! monitoring, the precheck, schema options and topologies.
//!
//! Two stay binaries of their own (see Cargo.toml): `large_transaction_memory`
//! asserts the process's own peak RSS, and `throttle` measures rates and the
//! binlog bytes of its own writes, which other tests of one process would
//! distort.
//!
//! The tests run in parallel threads of one process against one server, so
//! each task has a replica `server_id` of its own (a second replica with a
//! live id is refused). Blocks in use: end_to_end_local 7101-7105,
//! end_to_end_maxcompute 7111-7117, killed_snapshot_readers 7121,
//! large_transaction 7151-7154 (large_transaction_memory 7155),
//! filters_and_transforms 7161-7162, topologies 7171-7184,
//! ddl_during_incremental 7201-7253, throttle 7301-7307, schema_options
//! 7311-7313, precheck 7341-7351, million_rows_under_writer 7361. Each test
//! also has databases of its own.

mod common;
mod ddl_during_incremental;
mod end_to_end_local;
mod end_to_end_maxcompute;
mod filters_and_transforms;
mod killed_snapshot_readers;
mod large_transaction;
mod million_rows_under_writer;
mod monitoring;
mod precheck;
mod schema_options;
mod topologies;
