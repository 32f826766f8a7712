//! The sync task: MySQL to MaxCompute the way DTS does it.
//!
//! Each source table `t` becomes `t_base` (the full baseline) and `t_log`
//! (every change since the baseline's binlog position, with the metadata
//! columns `record_id`, `operation_flag`, `utc_timestamp`, `before_flag`,
//! `after_flag`). Merging the two gives the source's rows.
//!
//! # Modules
//!
//! | module | job | status |
//! |---|---|---|
//! | [`machine`] | the phases `Precheck → SchemaSync → FullSync → Incremental` and their transitions, in one place | here |
//! | [`checkpoint`] | versioned checkpoints written atomically (temp file, fsync, rename) | here |
//! | [`records`] | row changes to `_log` records: flags, naming rules, partitions, deterministic `record_id`s | here |
//! | [`sink`] | the `Sink` trait, the local Parquet warehouse and the MaxCompute sink | here |
//! | [`merge`] | rebuild current state from `t_base` + `t_log`, and the same as MaxCompute SQL | here |
//! | [`naming`] | destination names: capitalization, database/table/column renames, column lists | here |
//! | [`progress`] | the full phase's progress, as log lines or (in `sync-cli`) progress bars | here |
//! | [`precheck`] | every DTS precheck, each pass / warning / failure with a fix hint | here |
//! | [`mapping`] | MySQL column types to MaxCompute types, and the exact Arrow conversions both ways | here |
//! | [`retry`] | the `[retry]` windows: which failures are retried, backoff, giving up | here |
//! | [`throttle`] | the `[throttle]` limits of the full and incremental phases | here |
//! | [`heartbeat`] | `[heartbeat]` writes on the source, so an idle source still moves the position and the lag | here |
//! | [`status`] | `state_dir/progress.json` for `status`: lag, last commit, a retry under way | here |
//!
//! # Exactly once
//!
//! 1. `record_id` is a counter carried in the checkpoint and advanced per row
//!    change in binlog order ([`records::RecordIds`]): replaying a binlog
//!    range from a checkpoint yields the same ids and the same records.
//! 2. Before a batch for the range `[a, b)` becomes visible, the checkpoint
//!    records an [`machine::Intent`] naming the commit unit (derived from the
//!    range, prefixed with the task's id so that tasks sharing a destination
//!    never share a unit) and `b` (temp file, fsync, rename).
//! 3. The sink commits the unit; [`sink::Sink::commit_unit`] is idempotent per
//!    unit name.
//! 4. The checkpoint moves to `b` and drops the intent.
//! 5. On restart with an intent: if the sink reports the unit committed, move
//!    to `b`; otherwise commit it again (same unit, same rows: no duplicates)
//!    or drop the intent and redo the range from `a`.
//!
//! The full phase commits one unit per chunk, named by table and chunk
//! number, and ends by handing the binlog position captured before the first
//! chunk to the incremental phase.
//!
//! ## How each sink keeps step 3 idempotent
//!
//! * Local warehouse: a manifest of the unit's files, written before them;
//!   a marker once all are in place ([`sink::local`]).
//! * MaxCompute: a unit takes one Tunnel upload session per table
//!   partition, and a **unit ledger** (one small JSON file per unit in
//!   `<state_dir>/maxcompute-units`, replaced atomically like the
//!   checkpoint) records each session through `open` (created, uploading),
//!   `committing` (all blocks up, their ids saved; only now is the commit
//!   sent) and `committed`. [`sink::Sink::is_committed`] is true when the
//!   ledger says so or every `committing` session reports itself closed. A
//!   redo finishes `committing` sessions (commit again if still open, never
//!   when closed), abandons `open` ones (never committed, so invisible) and
//!   uploads their rows again in new sessions: no session is ever committed
//!   twice, none is skipped ([`sink::maxcompute`]).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod alert;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod heartbeat;
pub mod machine;
pub mod mapping;
pub mod merge;
pub mod metrics;
pub mod naming;
pub mod precheck;
pub mod progress;
pub mod records;
pub mod retry;
pub mod rowconv;
pub mod run;
pub mod sink;
pub mod status;
pub mod taskfile;
pub mod throttle;
pub mod verify;
pub mod webhook;

pub use error::{Error, Result};
