//! Integration tests of sync-cli, in one binary (a module per file): the
//! `sync-cli` executable run as users run it, killed and resumed (local
//! warehouse and the MaxCompute emulator), with heartbeats, monitoring,
//! retries, the precheck and progress output.
//!
//! The tests run in parallel threads of one process against one server, so
//! each task has a replica `server_id` of its own (a second replica with a
//! live id is refused). Blocks in use: heartbeat_and_lag 7401 (private
//! servers), kill_and_resume 7410-7417, maxcompute_crash 7420-7422,
//! monitoring_and_lag 7430, precheck_and_progress 7441-7448, retries 7501
//! (private servers). sync-core's tests use 7101-7361. Each test also has
//! databases of its own.

mod common;
mod heartbeat_and_lag;
mod kill_and_resume;
mod maxcompute_crash;
mod monitoring_and_lag;
mod precheck_and_progress;
mod retries;
