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
//! | [`private_fs`] | files with rows or state: `0600` in `0700` folders, never outside their root | here |
//! | [`checkpoint`] | versioned checkpoints written atomically (temp file, fsync, rename) | here |
//! | [`batcher`] | the incremental batcher, sans-IO: which changes go into which `t_log` batch and where it ends (`on_event → Decision`, `poll_timeout(now)`); its deterministic simulation (`SIM_SEED`/`SIM_SEEDS`) | here |
//! | [`records`] | row changes to `_log` records: flags, naming rules, partitions, deterministic `record_id`s | here |
//! | [`sink`] | the `Sink` trait, the local Parquet warehouse and the MaxCompute sink | here |
//! | [`merge`] | rebuild current state from `t_base` + `t_log`, and the same as MaxCompute SQL | here |
//! | [`odps_sql`] | the one pair of quoting functions (identifiers, literals) for the MaxCompute SQL the task builds | here |
//! | [`naming`] | destination names: capitalization, database/table/column renames, column lists | here |
//! | [`progress`] | the full phase's progress, as log lines or (in `sync-cli`) progress bars | here |
//! | [`precheck`] | every DTS precheck, each pass / warning / failure with a fix hint | here |
//! | [`filter`] | row filters: the task file's SQL conditions, evaluated alike on snapshot rows and binlog images | here |
//! | [`transform`] | the embedder's map/filter hook over Arrow rows, and how kept/dropped images rewrite `t_log` | here |
//! | [`mapping`] | MySQL column types to MaxCompute types, and the exact Arrow conversions both ways | here |
//! | [`timezone`] | the zone DATETIME values are wall clocks of in the destination (`[destination] timezone`, else the project's) | here |
//! | [`oversized`] | `[destination] oversized_values`: STRING/BINARY values over MaxCompute's field size limit (stop, NULL or cut) | here |
//! | [`charset`] | MySQL character sets of text columns in binlog row images, decoded strictly to UTF-8 | here |
//! | [`ddl`] | the DDL statements that change synced tables, parsed from binlog QUERY events | here |
//! | [`xa`] | XA branches: held aside (on disk, listed in the checkpoint) from XA PREPARE until the source commits or rolls them back | here |
//! | [`osc`] | online schema-change tools (gh-ost, pt-online-schema-change, DMS): their tables by name, a change's state until its cut-over | here |
//! | [`schema_history`] | the synced tables' schemas in force at each binlog position: DDL under the `[sync.ddl]` policy, table-map checks, generations saved with the checkpoint | here |
//! | [`retry`] | the `[retry]` windows: which failures are retried, backoff, giving up | here |
//! | [`throttle`] | the `[throttle]` limits of the full and incremental phases | here |
//! | [`heartbeat`] | `[heartbeat]` writes on the source, so an idle source still moves the position and the lag | here |
//! | [`state_lock`] | one writer per task: the `state_dir` lock a run holds, and whether a run is alive | here |
//! | [`status`] | `state_dir/progress.json` for `status`: lag, last commit, a retry under way, the run and why it stopped | here |
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
//! The sink writes a batch (step 3) while the stream decodes the next one,
//! which exists in memory only: its intent (step 2) is checkpointed only
//! after the batch before it has passed step 4, so the checkpoint never
//! holds more than one intent, and a crash loses nothing that was not
//! going to be read again from the checkpoint's position.
//!
//! A batch normally ends at a transaction boundary. A transaction with more
//! than `max_batch_records` change records is committed in parts, each
//! ending after a whole binlog event: the position of such a part is the
//! transaction's start plus [`machine::SourcePosition::within`], the number
//! of its row changes committed. A restart dumps from the transaction's
//! start, reads those changes again without writing them, and allocates ids
//! from the next one, so the parts and their ids come out exactly as before
//! (also on another server of the group after a failover). Memory is bounded
//! by `max_batch_records` (twice that: one part being written, the next
//! being read) whatever the transaction's size; the price is that
//! a reader of `t_log` may see the first parts of a large transaction before
//! its last.
//!
//! A DDL on a synced table ends the batch before it; the schemas in force
//! after it are saved as a new generation before the checkpoint moves past
//! it ([`machine::Step::SchemaChanged`]), and the destination change it
//! needs (`ADD COLUMN`) is idempotent, so a crash anywhere around it redoes
//! exactly the DDL ([`schema_history`]).
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
