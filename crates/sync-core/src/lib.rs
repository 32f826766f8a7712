//! The sync task: MySQL to MaxCompute the way DTS does it.
//!
//! Each source table `t` becomes `t_base` (the full baseline) and `t_log`
//! (every change since the baseline's binlog position, with the metadata
//! columns `record_id`, `operation_flag`, `utc_timestamp`, `before_flag`,
//! `after_flag`). Merging the two gives the source's rows.
//!
//! # Module plan
//!
//! | module | job |
//! |---|---|
//! | `machine` | the phases `Precheck → SchemaSync → FullSync → Incremental` and their transitions, in one place |
//! | `checkpoint` | versioned checkpoints written atomically (temp file, fsync, rename) |
//! | `mapping` | MySQL column types to MaxCompute types and Arrow arrays |
//! | `records` | row changes to `_log` records with deterministic `record_id`s |
//! | `phase/*` | precheck, schema sync, full sync, incremental sync |
//! | `sink/*` | the `Sink` trait; the local Parquet warehouse and MaxCompute |
//! | `merge` | rebuild current state from `t_base` + `t_log` |
//!
//! They land with the sync-core issue; until then this crate exposes nothing.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
