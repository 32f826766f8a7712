//! Server-side `KILL CONNECTION` of the task's connections, found in
//! `information_schema.processlist` by the task's own user: its snapshot
//! readers (chunk `SELECT`s) during the full phase, its binlog dump during
//! the incremental phase, while a writer changes the source. The task must
//! ride through every kill without exiting (snapshot chunks are re-read,
//! the binlog stream reconnects at its checkpoint) and verify equal.
//!
//! The snapshot readers are held where they can be caught instead of raced
//! for: once every table's chunk plan is made, an admin session holds
//! `LOCK TABLES … WRITE` on the largest table, so a reader of it waits on
//! the metadata lock (its chunk query listed in the processlist) until it is
//! killed, and the lock is released after the last kill. The full phase is
//! throttled (`[throttle] full_qps`) so that the table is still unread when
//! the lock is taken, however fast the machine.

use crate::faults::kill_dump;
use crate::harness::{Ctx, Dest, Source, Supervised, Task, TaskSpec, Verdict, Writer, wait_for};
use anyhow::{Result, ensure};
use mysql_async::prelude::Queryable;
use std::time::{Duration, Instant};
use sync_testkit::shop::Scale;

const DB: &str = "chaos_kill_conn";
const SNAPSHOT_KILLS: u32 = 6;
const DUMP_KILLS: u32 = 4;
/// The table whose readers are held: the one with the most chunks.
const HELD_TABLE: &str = "order_items";
/// Chunk queries per second in the full phase (about 100 chunks): `HELD_TABLE`
/// alone takes ~50 of them, so it is far from read when the plans are made.
const FULL_QPS: u32 = 8;

pub(crate) async fn run(mut ctx: Ctx) -> Result<Verdict> {
    let source = Source::start(&[]).await?;
    let scale = Scale {
        customers: 6000,
        products: 600,
        orders: 6000,
        events: 300,
    };
    source.load_shop(DB, scale, 32).await?;
    ctx.say(format!(
        "private MariaDB on port {}; shop loaded ({} customers, {} orders and their items)",
        source.port(),
        scale.customers,
        scale.orders
    ));
    let mut spec = TaskSpec::new(&source, DB, Dest::Local(ctx.dir.join("warehouse")));
    spec.chunk_rows = 300;
    spec.extra = format!("[throttle]\nfull_qps = {FULL_QPS}\n");
    let mut task = Task::new(&ctx, spec)?;
    let writer = Writer::start(&source, DB, 8, 500_000, (30, 150));
    let mut run = Supervised::start(&mut task)?;

    // Full phase: once the chunk plans are made (planning reads the tables
    // too), hold the readers of HELD_TABLE on its metadata lock.
    let plans = task.state_dir.join("plans");
    let tables = [
        "customers",
        "products",
        "orders",
        "order_items",
        "event_log",
    ];
    wait_for("the chunk plans", Duration::from_secs(120), || {
        if let Some(e) = run.check(&mut task)? {
            ctx.say(format!("the task exited (restarted): {e}"));
        }
        Ok(tables
            .iter()
            .all(|t| plans.join(format!("{DB}.{t}.json")).exists()))
    })
    .await?;
    ensure!(
        task.phase() == "full_sync",
        "the full phase ended before its readers could be held (phase {})",
        task.phase()
    );
    let mut lock = source.conn().await?;
    lock.query_drop("SET SESSION lock_wait_timeout = 30")
        .await?;
    lock.query_drop(format!("LOCK TABLES `{DB}`.`{HELD_TABLE}` WRITE"))
        .await?;
    ctx.say(format!(
        "chunk plans made; {HELD_TABLE} write-locked: its readers wait"
    ));

    // Kill one chunk reader at a time.
    let mut snapshot_kills = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while snapshot_kills < SNAPSHOT_KILLS && task.phase() != "incremental" {
        ensure!(
            Instant::now() < deadline,
            "the full phase did not end within 120 s"
        );
        if let Some(e) = run.check(&mut task)? {
            ctx.say(format!("the task exited (restarted): {e}"));
        }
        let readers: Vec<_> = source
            .task_connections()
            .await?
            .into_iter()
            .filter(|(_, cmd, info)| {
                // Text protocol: Query; binary (the default): Prepare, Execute.
                matches!(cmd.as_str(), "Query" | "Prepare" | "Execute")
                    && info.starts_with("SELECT")
                    && info.contains(&format!("FROM `{DB}`."))
            })
            .collect();
        if let Some((id, _, info)) = readers.first() {
            if source.exec(&format!("KILL CONNECTION {id}")).await.is_ok() {
                snapshot_kills += 1;
                let table = info
                    .split(" FROM ")
                    .nth(1)
                    .and_then(|t| t.split_whitespace().next())
                    .unwrap_or("?");
                ctx.say(format!(
                    "KILL CONNECTION {id}: a snapshot reader of {table}"
                ));
            }
            tokio::time::sleep(ctx.millis(200, 600)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    lock.query_drop("UNLOCK TABLES").await?;
    lock.disconnect().await?;
    ctx.say(format!("{HELD_TABLE} unlocked"));
    wait_for("the incremental phase", Duration::from_secs(120), || {
        if let Some(e) = run.check(&mut task)? {
            ctx.say(format!("the task exited (restarted): {e}"));
        }
        Ok(task.phase() == "incremental")
    })
    .await?;
    ctx.say("incremental phase reached");

    // Incremental phase: kill the binlog dump, wait for it to come back.
    let mut dump_kills = 0;
    while dump_kills < DUMP_KILLS {
        tokio::time::sleep(ctx.millis(800, 2000)).await;
        let back = Instant::now();
        let (dump, again) = kill_dump(&ctx, &source, &mut run, &mut task).await?;
        dump_kills += 1;
        ctx.say(format!(
            "KILL CONNECTION {dump}: the binlog dump; the task dumped again on connection {again} {:.1} s later",
            back.elapsed().as_secs_f64()
        ));
    }
    let stats = writer.stop().await?;
    let reconnects = run.run().map_or(0, |r| r.count("binlog stream resumed"));
    let resumes = run
        .run()
        .map_or(0, |r| r.count("full phase: a source connection was lost"));
    let status = run.stop().await?;
    ctx.say(format!(
        "writer made {} rounds; the task logged {resumes} full-phase resumes and {reconnects} stream reconnects; stopped by SIGTERM: {}",
        stats.rounds,
        status.map_or("-".into(), |s| s.to_string())
    ));
    ensure!(
        run.exits.is_empty(),
        "the task exited {} times under the kills (a supervisor restarted it); first: {}",
        run.exits.len(),
        run.exits[0]
    );
    ensure!(snapshot_kills > 0, "no snapshot reader was caught to kill");
    ensure!(
        status.is_some_and(|s| s.success()),
        "the task did not stop cleanly on SIGTERM: {status:?}"
    );
    let summary = task.settle(&ctx, 1).await?;
    Ok(Verdict::Pass(format!(
        "{snapshot_kills} snapshot readers and {dump_kills} binlog dumps killed, the task never exited; {summary}"
    )))
}
