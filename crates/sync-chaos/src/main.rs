//! `sync-chaos`: the fault-injection suite behind `scripts/chaos`.
//!
//! Each scenario starts what it needs of its own (a private MariaDB, an
//! emulator, a task directory), injects one kind of fault into a running
//! `sync-cli`, prints what it did, and ends with `sync-cli verify` (or, where
//! the task must refuse to go on, with proof that it refused loudly and
//! skipped nothing). Every scenario runs under a time bound; the last line is
//! `N passed, N failed` and the exit code is 1 when any failed.
//!
//! `--soak DURATION` runs the soak instead (see [`soak`]).

mod faults;
mod harness;
mod scenarios;
mod soak;
mod sysbench;

use clap::Parser;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Fault-injection suite for sync-cli (see README, "Chaos suite").
#[derive(Debug, Parser)]
#[command(name = "sync-chaos", version, about)]
struct Args {
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Time bound of each scenario in seconds; a scenario over it fails.
    #[arg(long, default_value_t = 240)]
    timeout: u64,
    /// Seed of every random choice (kill moments, data, faults).
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Directory for the scenarios' task files, warehouses and logs (kept
    /// for a failed scenario, removed for a passed one).
    #[arg(long, default_value = "target/chaos")]
    work: PathBuf,
    /// Keep the work directory of a passed scenario too.
    #[arg(long)]
    keep: bool,
    /// The sync-cli binary (default: next to this one).
    #[arg(long)]
    cli: Option<PathBuf>,
    /// The odps-emulator binary (default: next to this one).
    #[arg(long)]
    emulator: Option<PathBuf>,
    /// Run the soak instead of the scenarios, for this long (e.g. `20m`,
    /// `90s`): a steady sysbench load and a fault every minute.
    #[arg(long, value_name = "DURATION", value_parser = soak::parse_duration)]
    soak: Option<Duration>,
    /// The soak's sysbench `--rate` (transactions per second).
    #[arg(long, default_value_t = 50, requires = "soak")]
    rate: u32,
    /// The soak's sysbench tables.
    #[arg(long, default_value_t = 4, requires = "soak")]
    tables: u32,
    /// Rows per sysbench table.
    #[arg(long, default_value_t = 10_000, requires = "soak")]
    table_size: u64,
    /// The soak writes into the MaxCompute emulator (and also kills it and
    /// makes it fail) instead of the local warehouse.
    #[arg(long, requires = "soak")]
    soak_emulator: bool,
    /// Append the soak's result (one JSON line) to this file.
    #[arg(long, env = "SYNC_SOAK_RECORD", value_name = "FILE")]
    record: Option<PathBuf>,
    /// Scenarios to run (default: all), by name.
    names: Vec<String>,
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no parent directory", exe.display()))?;
    Ok(dir.join(name))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let all = scenarios::ALL;
    if args.list {
        for s in all {
            println!("{:<20} {}", s.name, s.about);
        }
        return Ok(());
    }
    let mut chosen = Vec::new();
    for name in &args.names {
        match all.iter().find(|s| s.name == name) {
            Some(s) => chosen.push(s),
            None => {
                let names: Vec<&str> = all.iter().map(|s| s.name).collect();
                anyhow::bail!("unknown scenario {name:?}; one of: {}", names.join(", "));
            }
        }
    }
    if chosen.is_empty() {
        chosen = all.iter().collect();
    }
    let bins = harness::Bins {
        cli: match args.cli.clone() {
            Some(p) => p,
            None => sibling("sync-cli")?,
        },
        emulator: match args.emulator.clone() {
            Some(p) => p,
            None => sibling("odps-emulator")?,
        },
    };
    for bin in [&bins.cli, &bins.emulator] {
        anyhow::ensure!(
            bin.is_file(),
            "{} is missing: build it first (scripts/chaos does)",
            bin.display()
        );
    }
    std::fs::create_dir_all(&args.work)?;
    let work = std::path::absolute(&args.work)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Some(duration) = args.soak {
        anyhow::ensure!(
            args.names.is_empty(),
            "--soak runs no scenarios: drop {:?}",
            args.names
        );
        return soak_main(&runtime, &args, bins, &work, duration);
    }
    let bound = Duration::from_secs(args.timeout);
    let suite_start = Instant::now();
    let (mut passed, mut failed, mut skipped) = (0, 0, Vec::new());
    for s in chosen {
        println!("== {}: {}", s.name, s.about);
        let dir = work.join(s.name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let ctx = harness::Ctx::new(s.name, dir.clone(), bins.clone(), args.seed);
        let start = Instant::now();
        let outcome = runtime.block_on(async {
            match tokio::time::timeout(bound, (s.run)(ctx)).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!(
                    "timed out after {} s (the time bound; --timeout changes it)",
                    bound.as_secs()
                )),
            }
        });
        let took = start.elapsed().as_secs_f64();
        match outcome {
            Ok(harness::Verdict::Pass(summary)) => {
                passed += 1;
                println!("-- {}: PASS in {took:.1} s: {summary}", s.name);
                if !args.keep {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            Ok(harness::Verdict::Skip(reason)) => {
                println!("-- {}: SKIPPED in {took:.1} s: {reason}", s.name);
                skipped.push(s.name);
            }
            Err(e) => {
                failed += 1;
                println!("-- {}: FAIL in {took:.1} s: {e:#}", s.name);
                println!("   (its files and logs are kept in {})", dir.display());
            }
        }
    }
    println!("suite took {:.1} s", suite_start.elapsed().as_secs_f64());
    if !skipped.is_empty() {
        println!("skipped (counted neither way): {}", skipped.join(", "));
    }
    println!("{passed} passed, {failed} failed");
    // Blocking drops (servers shut down by script) are done; leave now.
    runtime.shutdown_timeout(Duration::from_secs(5));
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// `--soak`: the soak in `work/soak` (kept when it fails), bounded by its
/// duration plus half an hour for setup, catch-up and verify.
fn soak_main(
    runtime: &tokio::runtime::Runtime,
    args: &Args,
    bins: harness::Bins,
    work: &std::path::Path,
    duration: Duration,
) -> anyhow::Result<()> {
    println!(
        "== soak: {} s of sysbench load, a fault every minute",
        duration.as_secs()
    );
    let dir = work.join("soak");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let ctx = harness::Ctx::new("soak", dir.clone(), bins, args.seed);
    let settings = soak::Settings {
        duration,
        rate: args.rate,
        tables: args.tables,
        table_size: args.table_size,
        record: args.record.clone(),
        seed: args.seed,
        emulator: args.soak_emulator,
    };
    let bound = duration + Duration::from_secs(1800);
    let outcome = runtime.block_on(async {
        tokio::time::timeout(bound, soak::run(ctx, settings))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after {} s", bound.as_secs())))
    });
    let pass = match outcome {
        Ok(pass) => pass,
        Err(e) => {
            println!("-- soak: FAIL: {e:#}");
            false
        }
    };
    if pass && !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else if !pass {
        println!("   (its files and logs are kept in {})", dir.display());
    }
    println!("soak: {}", if pass { "PASS" } else { "FAIL" });
    if !pass {
        std::process::exit(1);
    }
    Ok(())
}
