//! The binlog a stopped task resumes from is purged (`PURGE BINARY LOGS TO`
//! a newer file) after changes were made that the task has not read. The
//! task can no longer be exact, so it must fail loudly: exit non-zero, name
//! the missing file, leave its checkpoint and `t_log` as they were, and never
//! skip to a file that still exists. `verify` then shows the destination
//! behind the source (the changes were never read), which is the truth.

use crate::harness::{Ctx, Dest, Source, Task, TaskSpec, Verdict};
use anyhow::{Result, bail, ensure};
use mysql_async::prelude::Queryable;
use std::time::Duration;
use sync_testkit::shop::Scale;

const DB: &str = "chaos_purge";

pub(crate) async fn run(mut ctx: Ctx) -> Result<Verdict> {
    let source = Source::start(&[]).await?;
    let scale = Scale {
        customers: 800,
        products: 150,
        orders: 600,
        events: 50,
    };
    source.load_shop(DB, scale, 36).await?;
    let mut task = Task::new(
        &ctx,
        TaskSpec::new(&source, DB, Dest::Local(ctx.dir.join("warehouse"))),
    )?;
    // Synced, then changes that reach t_log, then stopped.
    let mut conn = source.conn().await?;
    for round in 0..2u32 {
        let done = task
            .run(&["run", "--exit-when-caught-up"], Duration::from_secs(150))
            .await?;
        ensure!(
            done.status.success(),
            "a setup run failed: {}",
            done.error_line()
        );
        if round == 0 {
            for i in 0..3 {
                conn.query_drop(sync_testkit::shop::changes_sql(
                    DB,
                    &mut ctx.rng,
                    590_000 + i,
                ))
                .await?;
            }
        }
    }
    let checkpoint = task.checkpoint_path();
    let saved = std::fs::read(&checkpoint)?;
    let Some(sync_core::machine::Phase::Incremental(inc)) = task.state()?.map(|s| s.phase) else {
        bail!("the first run did not reach the incremental phase");
    };
    let file = inc.position.file.clone();
    let records = task.log_records().await?.total;
    ctx.say(format!(
        "synced and stopped at {file}:{}; t_log holds {records} records",
        inc.position.position
    ));

    // Changes the task has not read, then their binlog purged.
    for round in 0..6u32 {
        conn.query_drop(sync_testkit::shop::changes_sql(
            DB,
            &mut ctx.rng,
            600_000 + round,
        ))
        .await?;
        if round % 2 == 1 {
            conn.query_drop("FLUSH BINARY LOGS").await?;
        }
    }
    let logs = source.binlogs().await?;
    let newest = logs.last().cloned().unwrap_or_default();
    // MariaDB keeps a file until InnoDB's binlog checkpoint has moved past
    // it (the purge then only warns): try until it is gone.
    let start = std::time::Instant::now();
    let left = loop {
        conn.query_drop(format!("PURGE BINARY LOGS TO '{newest}'"))
            .await?;
        let left = source.binlogs().await?;
        if !left.contains(&file) {
            break left;
        }
        let warnings: Vec<mysql_async::Row> = conn.query("SHOW WARNINGS").await?;
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "{file} survived PURGE BINARY LOGS for 60 s: {left:?}, warnings {warnings:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    conn.disconnect().await?;
    ctx.say(format!(
        "6 rounds of changes written, binlogs rotated and purged up to {newest}: {file} is gone (left: {})",
        left.join(", ")
    ));

    let done = task
        .run(&["run", "--exit-when-caught-up"], Duration::from_secs(120))
        .await?;
    let error = done.error_line();
    ctx.say(format!("resumed run ended ({}): {error}", done.status));
    ensure!(
        !done.status.success(),
        "the task resumed over a purged binlog and exited 0"
    );
    ensure!(
        error.contains(&file),
        "the error does not name the missing file {file}: {error}"
    );
    ensure!(
        std::fs::read(&checkpoint)? == saved,
        "the checkpoint changed although the task could not resume"
    );
    let found = task.log_records().await?;
    let after = found.total;
    ensure!(
        found.problems.is_empty(),
        "doubled records: {}",
        found.problems.join("; ")
    );
    ensure!(
        after == records,
        "t_log went from {records} to {after} records"
    );
    ctx.say("checkpoint unchanged, t_log unchanged");

    // A second try must refuse the same way (no state was "repaired").
    let again = task
        .run(&["run", "--exit-when-caught-up"], Duration::from_secs(120))
        .await?;
    ensure!(
        !again.status.success() && again.error_line().contains(&file),
        "a second run did not refuse the same way: {}",
        again.error_line()
    );
    let status = task.run(&["status"], Duration::from_secs(30)).await?;
    ensure!(
        status
            .output
            .contains(&format!("{file}:{}", inc.position.position)),
        "status does not show the old position: {}",
        status.output
    );
    let verify = task.run(&["verify"], Duration::from_secs(120)).await?;
    ensure!(
        !verify.status.success() && verify.output.contains("DIFFERENT"),
        "verify does not show the destination behind the source:\n{}",
        verify.output
    );
    let differing = verify
        .output
        .lines()
        .filter(|l| l.contains("DIFFERENT"))
        .count();
    ctx.say(format!(
        "status still shows {file}:{}; verify reports {differing} tables behind the source, as it must",
        inc.position.position
    ));
    Ok(Verdict::Pass(format!(
        "failed loudly naming {file}, twice; checkpoint and t_log untouched; verify shows the unread changes missing"
    )))
}
