//! The MaxCompute destination misbehaving: the emulator fails a share of
//! block uploads and commits with retryable 500s and stalls a share for
//! seconds (`--fail-block-rate`, `--fail-commit-rate`, `--stall-rate`),
//! crashes inside the first commit (`--crash-at commit-before-manifest`) and
//! is restarted over its data, is SIGKILLed and restarted mid-run in the
//! incremental phase, and `sync-cli` itself is SIGKILLed while a unit is
//! being committed. Runs that give up (retries exhausted) are restarted, as a
//! service manager would; each must have said why. The end: verify equal
//! and no record twice.

use crate::harness::{Ctx, Dest, Emu, Source, Supervised, Task, TaskSpec, Verdict, Writer};
use anyhow::{Result, ensure};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use sync_testkit::shop::Scale;

const DB: &str = "chaos_emulator";
const FAULTS: [&str; 10] = [
    "--fail-block-rate",
    "0.1",
    "--fail-commit-rate",
    "0.15",
    "--stall-rate",
    "0.05",
    "--stall-ms",
    "3000",
    "--fault-seed",
    "11",
];

pub(crate) async fn run(mut ctx: Ctx) -> Result<Verdict> {
    let source = Source::start(&[]).await?;
    let scale = Scale {
        customers: 1200,
        products: 200,
        orders: 900,
        events: 100,
    };
    source.load_shop(DB, scale, 34).await?;
    let mut first = FAULTS.to_vec();
    first.extend(["--crash-at", "commit-before-manifest"]);
    let mut emu = Emu::start(&ctx, &first)?;
    ctx.say(format!(
        "private MariaDB on port {}; emulator at {} with {} --crash-at commit-before-manifest",
        source.port(),
        emu.endpoint,
        FAULTS.join(" ")
    ));
    let mut spec = TaskSpec::new(
        &source,
        DB,
        Dest::MaxCompute {
            endpoint: emu.endpoint.clone(),
            tunnel: emu.tunnel.clone(),
            project: "chaos".into(),
        },
    );
    // Every commit is a few Tunnel round trips with faults: fewer, larger
    // batches keep the debug build up with the writer.
    spec.batch_rows = 1000;
    spec.flush_ms = 500;
    let mut task = Task::new(&ctx, spec)?;
    let writer = Writer::start(&source, DB, 10, 500_000, (100, 400));
    let mut run = Supervised::start(&mut task)?;

    // Full phase: the crash hook fires at the first commit; restart the
    // emulator (without the hook) while the task retries.
    let mut crashed = false;
    let deadline = Instant::now() + Duration::from_secs(180);
    while task.phase() != "incremental" {
        ensure!(
            Instant::now() < deadline,
            "the incremental phase not reached within 180 s"
        );
        supervise(&ctx, &mut run, &mut task)?;
        if !crashed && emu.crashed()? {
            crashed = true;
            ctx.say(format!(
                "the emulator crashed inside a commit (checkpoint phase {})",
                task.phase()
            ));
            tokio::time::sleep(ctx.millis(300, 1500)).await;
            emu.restart(&FAULTS).await?;
            ctx.say("emulator restarted over its data, same port, faults on");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(crashed, "the emulator's crash hook never fired");
    ctx.say("incremental phase reached");

    // Incremental phase: a hard kill and restart of the emulator.
    pause(&mut ctx, &mut run, &mut task, 1000, 2500).await?;
    emu.kill()?;
    ctx.say("emulator SIGKILLed");
    pause(&mut ctx, &mut run, &mut task, 1000, 3000).await?;
    emu.restart(&FAULTS).await?;
    ctx.say("emulator restarted over its data, same port, faults on");
    pause(&mut ctx, &mut run, &mut task, 1000, 2000).await?;

    // And sync-cli killed while a unit is committing (maybe stalled).
    let since = SystemTime::now();
    let mut caught = false;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        supervise(&ctx, &mut run, &mut task)?;
        if ledger_shows(&task.state_dir, "committing", since) {
            run.kill_and_restart(&mut task)?;
            caught = true;
            ctx.say("sync-cli SIGKILLed while a unit's sessions were committing; started again");
            break;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    if !caught {
        ctx.say("no commit was caught in flight within 30 s (no kill made)");
    }
    pause(&mut ctx, &mut run, &mut task, 2000, 3000).await?;

    let stats = writer.stop().await?;
    let status = run.stop().await?;
    ctx.say(format!(
        "writer made {} rounds; the last run stopped on SIGTERM: {}",
        stats.rounds,
        status.map_or("-".into(), |s| s.to_string())
    ));
    for e in &run.exits {
        ensure!(
            e.to_lowercase().contains("maxcompute"),
            "a run failed without naming the destination: {e}"
        );
    }
    let summary = task.settle(&ctx, 5).await?;
    Ok(Verdict::Pass(format!(
        "emulator crashed in a commit, killed and restarted, {} runs gave up under the faults (each naming MaxCompute) and were restarted; {summary}",
        run.exits.len()
    )))
}

/// Restarts the run if it gave up, saying why it did.
fn supervise(ctx: &Ctx, run: &mut Supervised, task: &mut Task) -> Result<()> {
    if let Some(e) = run.check(task)? {
        ctx.say(format!("the task gave up (restarted): {e}"));
    }
    Ok(())
}

/// A random pause while supervising the run.
async fn pause(
    ctx: &mut Ctx,
    run: &mut Supervised,
    task: &mut Task,
    lo: u64,
    hi: u64,
) -> Result<()> {
    let until = Instant::now() + ctx.millis(lo, hi);
    while Instant::now() < until {
        supervise(ctx, run, task)?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Whether a unit ledger written since `since` shows a part in `state`.
fn ledger_shows(state_dir: &Path, state: &str, since: SystemTime) -> bool {
    let needle = format!("\"state\":\"{state}\"");
    let Ok(entries) = std::fs::read_dir(state_dir.join("maxcompute-units")) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|m| m >= since)
            && std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(&needle))
    })
}
