//! The local warehouse's file system fills up. The warehouse and the task's
//! state directory share a small tmpfs (`mount -t tmpfs -o size=…`, so this
//! needs root), as they would share a disk: the full phase
//! runs out of space and must stop with an error naming the disk, keeping
//! the chunks it committed; the tmpfs is enlarged and the task resumes into
//! the incremental phase; then a filler file takes every free byte while a
//! writer changes the source, and the task must stop again, loudly; the
//! filler is removed and the catch-up must verify equal, no record twice.

use crate::harness::{Ctx, Dest, Source, Task, TaskSpec, Verdict, Writer, wait_for};
use anyhow::{Context as _, Result, bail, ensure};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use sync_core::machine::Phase;
use sync_testkit::shop::Scale;

const DB: &str = "chaos_disk";
/// Too small for the full phase's Parquet files (about 2 MB here).
const SMALL: &str = "512k";
const LARGE: &str = "256m";
const ENOSPC: &str = "No space left on device";

pub(crate) async fn run(mut ctx: Ctx) -> Result<Verdict> {
    let disk_dir = ctx.dir.join("disk");
    std::fs::create_dir_all(&disk_dir)?;
    let disk = match Tmpfs::mount(&disk_dir, SMALL) {
        Ok(d) => d,
        Err(e) => {
            return Ok(Verdict::Skip(format!(
                "cannot mount a tmpfs for the warehouse ({e:#}); this scenario needs root \
                 (or CAP_SYS_ADMIN)"
            )));
        }
    };
    let warehouse = disk_dir.join("warehouse");
    ctx.say(format!(
        "warehouse and state directory on a tmpfs of {SMALL} at {}",
        disk_dir.display()
    ));
    let source = Source::start(&[]).await?;
    let scale = Scale {
        customers: 4000,
        products: 800,
        orders: 4000,
        events: 1000,
    };
    source.load_shop(DB, scale, 35).await?;
    let mut spec = TaskSpec::new(&source, DB, Dest::Local(warehouse.clone()));
    spec.state_dir = Some(disk_dir.join("state"));
    // A full disk is retried within `other` (an operator may free space);
    // a short window lets the run give up within the scenario's time.
    spec.extra = "[retry]\nconnection_seconds = 30\nother_seconds = 5\n".into();
    let mut task = Task::new(&ctx, spec)?;
    let writer = Writer::start(&source, DB, 12, 500_000, (30, 150));

    // 1. The full phase runs out of space.
    let done = task
        .run(&["run", "--exit-when-caught-up"], Duration::from_secs(150))
        .await?;
    ensure!(
        !done.status.success(),
        "the full phase fit into {SMALL}: nothing was tested"
    );
    let error = done.error_line();
    ctx.say(format!("full phase stopped ({}): {error}", done.status));
    ensure!(
        error.contains(ENOSPC),
        "the error does not say the disk is full: {error}"
    );
    ensure!(
        error.contains(&disk_dir.display().to_string()),
        "the error does not name the path it could not write: {error}"
    );
    let chunks = match task.state()?.map(|s| s.phase) {
        Some(Phase::FullSync(f)) => f.tables.values().map(|t| t.chunks_done).sum::<u64>(),
        other => bail!("expected the checkpoint in the full phase, found {other:?}"),
    };
    ctx.say(format!(
        "the checkpoint keeps the {chunks} chunks committed before the disk filled"
    ));
    ensure!(chunks > 0, "no chunk was committed before the disk filled");

    // 2. More space: the task resumes into the incremental phase.
    disk.resize(LARGE)?;
    ctx.say(format!("tmpfs enlarged to {LARGE}; task started again"));
    let mut run = task.start(&["run"])?;
    wait_for("the incremental phase", Duration::from_secs(150), || {
        if let Some(status) = run.exited()? {
            bail!(
                "the task ended ({status}): {}",
                crate::harness::error_of(&run.output())
            );
        }
        Ok(task.phase() == "incremental")
    })
    .await?;
    let resumed = run.count("full sync: chunk ");
    ctx.say(format!(
        "incremental phase reached ({resumed} chunk commits logged by this run)"
    ));

    // 3. A filler takes every free byte; the writer's next batch cannot land.
    tokio::time::sleep(ctx.millis(500, 1500)).await;
    let filler = disk_dir.join("filler");
    let filled = tokio::task::spawn_blocking({
        let filler = filler.clone();
        move || fill(&filler)
    })
    .await??;
    ctx.say(format!(
        "filler wrote {} KiB: the tmpfs is full",
        filled / 1024
    ));
    let status = run.wait(Duration::from_secs(90)).await?;
    let Some(status) = status else {
        bail!("the task still runs 90 s after the disk filled (no error?)");
    };
    let error = crate::harness::error_of(&run.output());
    ctx.say(format!("incremental phase stopped ({status}): {error}"));
    ensure!(!status.success(), "the task exited 0 on a full disk");
    ensure!(
        error.contains(ENOSPC),
        "the error does not say the disk is full: {error}"
    );
    ensure!(
        task.phase() == "incremental",
        "the checkpoint left the incremental phase"
    );

    // 4. Space freed: catch up and verify.
    std::fs::remove_file(&filler)?;
    ctx.say("filler removed");
    let stats = writer.stop().await?;
    ctx.say(format!("writer made {} rounds", stats.rounds));
    let summary = task.settle(&ctx, 1).await?;
    let leftovers = crate::harness::listing(&disk_dir)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(".tmp"))
        .count();
    ctx.say(format!(
        "temp files left on the disk by the failed writes: {leftovers}"
    ));
    Ok(Verdict::Pass(format!(
        "full disk stopped the full and the incremental phase with \"{ENOSPC}\", both resumed; {summary}"
    )))
}

/// Writes zeros to `path` until the file system is full; the bytes written.
fn fill(path: &Path) -> Result<u64> {
    let mut f = std::fs::File::create(path)?;
    let block = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => return Err(e.into()),
        }
    }
    // Smaller pieces take what a whole block could not.
    for _ in 0..64 {
        match f.write(&block[..1024]) {
            Ok(n) if n > 0 => written += n as u64,
            _ => break,
        }
    }
    Ok(written)
}

/// A tmpfs mounted for the scenario; unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Self> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "chaos-tmpfs"])
            .arg(path)
            .output()
            .context("running mount")?;
        ensure!(
            out.status.success(),
            "mount -t tmpfs: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    fn resize(&self, size: &str) -> Result<()> {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .output()?;
        ensure!(
            out.status.success(),
            "mount -o remount: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process still holding a file there must not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
    }
}
