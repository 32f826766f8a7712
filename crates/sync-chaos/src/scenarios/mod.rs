//! The scenarios, one module each, and their registry.

mod binlog_purged;
mod corrupt_checkpoint;
mod disk_full;
mod emulator_faults;
mod kill_connections;
mod sigkill;
mod source_restart;

use crate::harness::{Ctx, Verdict};
use std::future::Future;
use std::pin::Pin;

/// A scenario's body: runs to its verdict, or fails with the reason.
type Body = fn(Ctx) -> Pin<Box<dyn Future<Output = anyhow::Result<Verdict>> + Send>>;

/// One scenario of the suite.
pub(crate) struct Scenario {
    /// The name `scripts/chaos NAME` selects it by.
    pub(crate) name: &'static str,
    /// One line on what it does.
    pub(crate) about: &'static str,
    /// Its body.
    pub(crate) run: Body,
}

/// Every scenario, in the order the suite runs them.
pub(crate) static ALL: &[Scenario] = &[
    Scenario {
        name: "sigkill",
        about: "SIGKILL `sync-cli run` at random moments of the full and incremental phases, under a writer",
        run: |c| Box::pin(sigkill::run(c)),
    },
    Scenario {
        name: "kill-connections",
        about: "server-side KILL of the task's snapshot and binlog dump connections while it runs",
        run: |c| Box::pin(kill_connections::run(c)),
    },
    Scenario {
        name: "source-restart",
        about: "the source MariaDB stopped and started, then SIGKILLed and started, during the incremental phase",
        run: |c| Box::pin(source_restart::run(c)),
    },
    Scenario {
        name: "emulator-faults",
        about: "MaxCompute emulator failing and stalling uploads and commits, crashing inside a commit, killed and restarted",
        run: |c| Box::pin(emulator_faults::run(c)),
    },
    Scenario {
        name: "disk-full",
        about: "the local warehouse's disk fills up (small tmpfs) in the full phase, then in the incremental phase",
        run: |c| Box::pin(disk_full::run(c)),
    },
    Scenario {
        name: "binlog-purged",
        about: "the binlog the checkpoint points into is purged while the task is stopped",
        run: |c| Box::pin(binlog_purged::run(c)),
    },
    Scenario {
        name: "corrupt-checkpoint",
        about: "the checkpoint file truncated, emptied, garbled, altered or deleted while the task is stopped",
        run: |c| Box::pin(corrupt_checkpoint::run(c)),
    },
];
