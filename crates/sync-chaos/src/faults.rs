//! Faults that a running task must ride through, shared by the scenarios
//! that inject them once and by the soak that injects them in turn.

use crate::harness::{Ctx, Run, Source, Supervised, Task, error_of, wait_for};
use anyhow::{Result, bail, ensure};
use std::time::{Duration, Instant};

/// The id of the task's binlog dump connection (other than `killed`), once
/// there is one (the supervisor restarts a run that exited meanwhile).
pub(crate) async fn wait_for_dump(
    ctx: &Ctx,
    source: &Source,
    run: &mut Supervised,
    task: &mut Task,
    killed: Option<u64>,
) -> Result<u64> {
    let start = Instant::now();
    loop {
        if let Some(e) = run.check(task)? {
            ctx.say(format!("the task exited (restarted): {e}"));
        }
        let dump = source
            .task_connections()
            .await?
            .into_iter()
            .find(|(id, cmd, _)| cmd == "Binlog Dump" && Some(*id) != killed);
        if let Some((id, _, _)) = dump {
            return Ok(id);
        }
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "no binlog dump connection of the task within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Server-side `KILL CONNECTION` of the task's binlog dump; returns the
/// killed id and the one it dumped again on.
pub(crate) async fn kill_dump(
    ctx: &Ctx,
    source: &Source,
    run: &mut Supervised,
    task: &mut Task,
) -> Result<(u64, u64)> {
    let dump = wait_for_dump(ctx, source, run, task, None).await?;
    source.exec(&format!("KILL CONNECTION {dump}")).await?;
    let again = wait_for_dump(ctx, source, run, task, Some(dump)).await?;
    Ok((dump, again))
}

/// How the source goes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outage {
    /// A clean shutdown.
    Shutdown,
    /// SIGKILL (crash recovery at the start).
    Crash,
}

impl Outage {
    /// How the scenario's log names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Shutdown => "clean shutdown",
            Self::Crash => "SIGKILL",
        }
    }
}

/// Takes the source down (`how`) for `down`, starts it again, and waits
/// until `run` has resumed its binlog stream; fails when the task exits
/// instead. Returns the seconds the server was away.
pub(crate) async fn restart_source(
    ctx: &Ctx,
    source: &Source,
    run: &mut Run,
    how: Outage,
    down: Duration,
) -> Result<f64> {
    // Counted before the server goes: the stream may be back before the
    // start script returns.
    let resumed = run.count("binlog stream resumed");
    let went = Instant::now();
    match how {
        Outage::Crash => source.kill().await?,
        Outage::Shutdown => source.stop().await?,
    }
    ctx.say(format!("source server stopped ({})", how.name()));
    tokio::time::sleep(down).await;
    source.start_again().await?;
    let away = went.elapsed().as_secs_f64();
    ctx.say(format!(
        "source server started again, {away:.1} s after it went down"
    ));
    wait_for(
        "the binlog stream resuming after the restart",
        Duration::from_secs(90),
        || {
            if let Some(status) = run.exited()? {
                bail!(
                    "the task exited ({status}) instead of reconnecting: {}",
                    error_of(&run.output())
                );
            }
            Ok(run.count("binlog stream resumed") > resumed)
        },
    )
    .await?;
    Ok(away)
}
