//! The source server goes away under a running task in the incremental
//! phase: first a clean shutdown and start, then a SIGKILL (crash recovery)
//! and start, each with a writer that keeps going as soon as the server is
//! back. The binlog stream must reconnect at its checkpoint without the task
//! exiting, and the result verify equal with no record twice.

use crate::faults::{Outage, restart_source};
use crate::harness::{Ctx, Dest, Source, Task, TaskSpec, Verdict, Writer, wait_for};
use anyhow::{Result, bail, ensure};
use std::time::Duration;
use sync_testkit::shop::Scale;

const DB: &str = "chaos_restart";

pub(crate) async fn run(mut ctx: Ctx) -> Result<Verdict> {
    let source = Source::start(&[]).await?;
    let scale = Scale {
        customers: 1500,
        products: 300,
        orders: 1500,
        events: 100,
    };
    source.load_shop(DB, scale, 33).await?;
    ctx.say(format!(
        "private MariaDB on port {}; shop loaded",
        source.port()
    ));
    let mut task = Task::new(
        &ctx,
        TaskSpec::new(&source, DB, Dest::Local(ctx.dir.join("warehouse"))),
    )?;
    let writer = Writer::start(&source, DB, 9, 500_000, (30, 150));
    let mut run = task.start(&["run"])?;
    wait_for("the incremental phase", Duration::from_secs(150), || {
        Ok(task.phase() == "incremental" || run.exited()?.is_some())
    })
    .await?;
    if run.exited()?.is_some() {
        bail!(
            "the task ended before the incremental phase: {}",
            crate::harness::error_of(&run.output())
        );
    }
    ctx.say("incremental phase reached");
    for how in [Outage::Shutdown, Outage::Crash] {
        tokio::time::sleep(ctx.millis(1000, 2500)).await;
        ctx.say(format!("writer at round {}", writer.rounds()));
        let down = ctx.millis(1500, 3000);
        restart_source(&ctx, &source, &mut run, how, down).await?;
        ctx.say(format!(
            "the task reconnected its binlog stream ({} reconnect attempts logged so far)",
            run.count("binlog connection lost; reconnecting")
        ));
        // Changes made after the restart must reach t_log too.
        let now = writer.rounds();
        wait_for("the writer resuming", Duration::from_secs(60), || {
            Ok(writer.rounds() >= now + 5)
        })
        .await?;
    }
    let stats = writer.stop().await?;
    ctx.say(format!(
        "writer: {} rounds went through, {} failed while the server was away",
        stats.rounds, stats.failed
    ));
    let status = run.sigterm(Duration::from_secs(60)).await?;
    ensure!(
        status.success(),
        "the task did not stop cleanly on SIGTERM: {status}"
    );
    let summary = task.settle(&ctx, 1).await?;
    Ok(Verdict::Pass(format!(
        "a clean restart and a crash of the source, the task reconnected without exiting; {summary}"
    )))
}
