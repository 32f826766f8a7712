//! The checkpoint of a stopped task is damaged: truncated, emptied, zeroed,
//! garbled, replaced by other JSON, or changed in one digit (still valid
//! JSON). For each, `run` and `status` must refuse with an error saying the
//! checkpoint is corrupt, and must not touch the checkpoint or the
//! warehouse: never a silent restart from zero, never a resume from a wrong
//! position or counter. Deleted, it must not start over either: the
//! precheck finds the task's tables in the destination. With the good checkpoint back, the task catches up
//! and verifies equal, no record twice.

use crate::harness::{Ctx, Dest, Source, Task, TaskSpec, Verdict, listing};
use anyhow::{Result, bail, ensure};
use mysql_async::prelude::Queryable;
use std::time::Duration;
use sync_testkit::shop::Scale;

const DB: &str = "chaos_checkpoint";

pub(crate) async fn run(mut ctx: Ctx) -> Result<Verdict> {
    let source = Source::start(&[]).await?;
    let scale = Scale {
        customers: 800,
        products: 150,
        orders: 600,
        events: 50,
    };
    source.load_shop(DB, scale, 37).await?;
    let warehouse = ctx.dir.join("warehouse");
    let mut task = Task::new(
        &ctx,
        TaskSpec::new(&source, DB, Dest::Local(warehouse.clone())),
    )?;
    let mut conn = source.conn().await?;
    let mut next_id = 600_000;
    for _ in 0..2 {
        let done = task
            .run(&["run", "--exit-when-caught-up"], Duration::from_secs(150))
            .await?;
        ensure!(
            done.status.success(),
            "a setup run failed: {}",
            done.error_line()
        );
        for _ in 0..3 {
            conn.query_drop(sync_testkit::shop::changes_sql(DB, &mut ctx.rng, next_id))
                .await?;
            next_id += 1;
        }
    }
    conn.disconnect().await?;
    let path = task.checkpoint_path();
    let good = std::fs::read(&path)?;
    ctx.say(format!(
        "task synced, stopped in phase {} with changes it has not read; checkpoint {} bytes",
        task.phase(),
        good.len()
    ));
    let files = listing(&warehouse);

    let mut refused = 0;
    for (what, bad) in damages(&good, &mut ctx)? {
        std::fs::write(&path, &bad)?;
        for cmd in [&["run", "--exit-when-caught-up"][..], &["status"][..]] {
            let done = task.run(cmd, Duration::from_secs(90)).await?;
            let error = done.error_line();
            ensure!(
                !done.status.success(),
                "`{}` accepted a checkpoint {what}: {}",
                cmd[0],
                done.output.lines().last().unwrap_or("")
            );
            ensure!(
                error.contains("is corrupt") && error.contains("refusing to start from scratch"),
                "`{}` on a checkpoint {what} did not say it is corrupt: {error}",
                cmd[0]
            );
            if cmd[0] == "run" {
                ctx.say(format!("checkpoint {what}: run refused: {}", short(&error)));
            }
        }
        ensure!(
            std::fs::read(&path)? == bad,
            "the checkpoint {what} was overwritten"
        );
        ensure!(
            listing(&warehouse) == files,
            "the warehouse changed with a checkpoint {what}"
        );
        refused += 1;
    }
    ctx.say(format!(
        "{refused} damaged checkpoints refused by run and status; checkpoint and warehouse untouched"
    ));

    // Gone altogether, the task looks new: it must not copy everything again
    // over its own tables (the precheck finds them).
    std::fs::remove_file(&path)?;
    let done = task
        .run(&["run", "--exit-when-caught-up"], Duration::from_secs(90))
        .await?;
    let error = done.error_line();
    ensure!(
        !done.status.success() && error.contains("destination_conflicts"),
        "a run without its checkpoint did not refuse the existing tables: {error}"
    );
    ensure!(
        listing(&warehouse) == files,
        "the warehouse changed without a checkpoint"
    );
    ctx.say(format!(
        "checkpoint deleted: run refused: {}",
        short(&error)
    ));
    std::fs::write(&path, &good)?;
    ctx.say("good checkpoint restored");
    let summary = task.settle(&ctx, 1).await?;
    Ok(Verdict::Pass(format!(
        "{refused} kinds of damage and a deleted checkpoint refused loudly; {summary}"
    )))
}

/// The damaged versions of `good`, each with what was done to it.
fn damages(good: &[u8], ctx: &mut Ctx) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let mut garbled = good.to_vec();
    let at = good.len() / 2;
    for b in garbled.iter_mut().skip(at).take(24) {
        *b = b"{}[]\",:0123456789abcdefxyz"[ctx.rng.range(0, 25) as usize];
    }
    // One digit of the record id counter, lowered: valid JSON, wrong state
    // (replayed ids would collide with committed ones).
    let text = String::from_utf8(good.to_vec())?;
    let key = "\"next_record_id\": ";
    let Some(start) = text.find(key).map(|i| i + key.len()) else {
        bail!("no next_record_id in the checkpoint: {text}");
    };
    let digits = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .count();
    ensure!(digits > 0, "next_record_id is not a number");
    let last = start + digits - 1;
    let digit = text.as_bytes()[last];
    let lowered = if digit == b'0' { b'1' } else { digit - 1 };
    let mut one_digit = good.to_vec();
    one_digit[last] = lowered;
    Ok(vec![
        ("truncated to half", good[..good.len() / 2].to_vec()),
        ("emptied", Vec::new()),
        ("zeroed", vec![0; good.len()]),
        ("garbled in the middle", garbled),
        ("replaced by other JSON", br#"{"hello": "world"}"#.to_vec()),
        ("changed in one digit of next_record_id", one_digit),
    ])
}

fn short(s: &str) -> String {
    if s.chars().count() > 220 {
        format!("{}…", s.chars().take(220).collect::<String>())
    } else {
        s.to_owned()
    }
}
