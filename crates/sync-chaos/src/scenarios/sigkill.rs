//! SIGKILL `sync-cli run` again and again while a writer changes the source:
//! at short random moments while the full phase runs (between chunk commits
//! and their checkpoints), then at longer ones in the incremental phase
//! (between a batch's intent, its commit and its checkpoint). The final
//! catch-up must verify equal with no `t_log` record twice.

use crate::harness::{Ctx, Dest, Source, Task, TaskSpec, Verdict, Writer, wait_for};
use anyhow::{Result, bail, ensure};
use std::time::Duration;
use sync_testkit::shop::Scale;

const DB: &str = "chaos_sigkill";
/// Kills to land in each phase before the scenario stops killing.
const FULL_KILLS: u32 = 5;
const INCREMENTAL_KILLS: u32 = 8;
const MAX_ROUNDS: u32 = 40;

pub(crate) async fn run(mut ctx: Ctx) -> Result<Verdict> {
    let source = Source::start(&[]).await?;
    let scale = Scale {
        customers: 3000,
        products: 400,
        orders: 3000,
        events: 200,
    };
    source.load_shop(DB, scale, 31).await?;
    ctx.say(format!(
        "private MariaDB on port {}; shop loaded ({} customers, {} orders and their items)",
        source.port(),
        scale.customers,
        scale.orders
    ));
    let mut task = Task::new(
        &ctx,
        TaskSpec::new(&source, DB, Dest::Local(ctx.dir.join("warehouse"))),
    )?;
    let writer = Writer::start(&source, DB, 7, 500_000, (20, 120));
    let (mut full, mut incremental, mut pending) = (0u32, 0u32, 0u32);
    for round in 0..MAX_ROUNDS {
        if full >= FULL_KILLS && incremental >= INCREMENTAL_KILLS {
            break;
        }
        let mut run = task.start(&["run"])?;
        if round == 0 {
            // Past the precheck and positioned, or every kill could land
            // before any change is meant for t_log.
            wait_for(
                "the first run capturing its binlog position",
                Duration::from_secs(120),
                || Ok(task.positioned()),
            )
            .await?;
        }
        let in_full = task.phase() != "incremental";
        let pause = if in_full {
            ctx.millis(50, 900)
        } else {
            ctx.millis(100, 1800)
        };
        tokio::time::sleep(pause).await;
        if let Some(status) = run.exited()? {
            bail!(
                "sync-cli run ended by itself ({status}) before its kill: {}",
                crate::harness::error_of(&run.output())
            );
        }
        let at = task.state()?;
        run.sigkill()?;
        let phase = at.as_ref().map_or("none", |s| s.phase.name());
        let batch_in_flight = matches!(
            at.as_ref().map(|s| &s.phase),
            Some(sync_core::machine::Phase::Incremental(i)) if i.pending.is_some()
        );
        match phase {
            "incremental" => incremental += 1,
            _ => full += 1,
        }
        pending += u32::from(batch_in_flight);
        ctx.say(format!(
            "kill {:2}: SIGKILL after {:4} ms, checkpoint phase {phase}{}",
            round + 1,
            pause.as_millis(),
            if batch_in_flight {
                " (a batch prepared, not yet checkpointed as committed)"
            } else {
                ""
            }
        ));
    }
    let stats = writer.stop().await?;
    ctx.say(format!(
        "{} kills before the incremental phase, {incremental} in it ({pending} with a batch in flight); the writer made {} rounds of changes",
        full, stats.rounds
    ));
    ensure!(full > 0, "no kill landed before the incremental phase");
    ensure!(incremental > 0, "no kill landed in the incremental phase");
    let summary = task.settle(&ctx, 1).await?;
    Ok(Verdict::Pass(format!(
        "{} kills ({full} full phase, {incremental} incremental); {summary}",
        full + incremental
    )))
}
