//! `odps-emulator`: a local MaxCompute-compatible server (REST API under
//! `/api`, the batch Tunnel at the root) for tests and demos.

use std::io::IsTerminal as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A local MaxCompute-compatible server: REST API under /api, Tunnel at the root"
)]
struct Args {
    /// Data directory for projects, tables and Parquet files.
    #[arg(long, env = "ODPS_EMULATOR_DATA")]
    data: PathBuf,
    /// TCP port (0 picks a free one; the chosen endpoint is printed).
    #[arg(long, env = "ODPS_EMULATOR_PORT", default_value_t = 8080)]
    port: u16,
    /// Address to bind.
    #[arg(long, env = "ODPS_EMULATOR_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// AccessKey id that requests must be signed with.
    #[arg(long, env = "ODPS_EMULATOR_ACCESS_ID")]
    access_id: String,
    /// AccessKey secret that requests must be signed with.
    #[arg(long, env = "ODPS_EMULATOR_ACCESS_KEY", hide_env_values = true)]
    access_key: String,
    /// Share (0..1) of block uploads that fail with a retryable error.
    #[arg(long, env = "ODPS_EMULATOR_FAIL_BLOCK_RATE", default_value_t = 0.0)]
    fail_block_rate: f64,
    /// Share (0..1) of commits that fail with a retryable error (before publishing).
    #[arg(long, env = "ODPS_EMULATOR_FAIL_COMMIT_RATE", default_value_t = 0.0)]
    fail_commit_rate: f64,
    /// Delay in milliseconds before each block upload and commit.
    #[arg(long, env = "ODPS_EMULATOR_DELAY_MS", default_value_t = 0)]
    delay_ms: u64,
    /// Share (0..1) of block uploads and commits that stall for --stall-ms
    /// before being handled (a congested service; clients may give up meanwhile).
    #[arg(long, env = "ODPS_EMULATOR_STALL_RATE", default_value_t = 0.0)]
    stall_rate: f64,
    /// How long a stalled block upload or commit hangs, in milliseconds.
    #[arg(long, env = "ODPS_EMULATOR_STALL_MS", default_value_t = 5000)]
    stall_ms: u64,
    /// Seed of the fault generator (same seed, same faults).
    #[arg(long, env = "ODPS_EMULATOR_FAULT_SEED", default_value_t = 1)]
    fault_seed: u64,
    /// Largest request body in MiB, as sent and once decompressed; larger
    /// ones are refused with 413 RequestEntityTooLarge.
    #[arg(long, env = "ODPS_EMULATOR_MAX_BODY_MB", default_value_t = 256)]
    max_body_mb: usize,
    /// Seconds a client has to send a request's headers before its
    /// connection is closed.
    #[arg(long, env = "ODPS_EMULATOR_HEADER_TIMEOUT_SECS", default_value_t = 30)]
    header_timeout_secs: u64,
    /// The projects' time zone (`odps.sql.timezone`), as the service
    /// reports it: an IANA name or an offset.
    #[arg(long, env = "ODPS_EMULATOR_TIMEZONE", default_value = odps_emulator::DEFAULT_TIMEZONE)]
    timezone: String,
    /// The projects' data type edition: `odps2` (default) or `odps1`, where
    /// DDL with a 2.0 type fails unless the job sets
    /// `odps.sql.type.system.odps2=true`.
    #[arg(long, env = "ODPS_EMULATOR_TYPE_SYSTEM", default_value = "odps2")]
    type_system: String,
    /// Test hook: abort the process when a commit reaches this point
    /// (commit-after-first-block, commit-before-manifest, commit-after-manifest).
    #[arg(long)]
    crash_at: Option<odps_emulator::faults::CrashPoint>,
    /// Test hook: every commit fails with a retryable error while this file exists.
    #[arg(long, value_name = "PATH")]
    fail_commits_while: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    for (name, rate) in [
        ("--fail-block-rate", args.fail_block_rate),
        ("--fail-commit-rate", args.fail_commit_rate),
        ("--stall-rate", args.stall_rate),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&rate),
            "{name} must be between 0 and 1, got {rate}"
        );
    }
    anyhow::ensure!(
        args.max_body_mb >= 1,
        "--max-body-mb must be at least 1, got {}",
        args.max_body_mb
    );
    anyhow::ensure!(
        args.header_timeout_secs >= 1,
        "--header-timeout-secs must be at least 1, got {}",
        args.header_timeout_secs
    );
    let mut config = odps_emulator::Config::new(&args.data, &args.access_id, &args.access_key);
    config.timezone = args.timezone;
    config.odps2 = match args.type_system.as_str() {
        "odps2" => true,
        "odps1" => false,
        other => anyhow::bail!("--type-system must be odps1 or odps2, got {other:?}"),
    };
    config.listen = SocketAddr::new(args.host, args.port);
    config.max_body_bytes = args
        .max_body_mb
        .checked_mul(1 << 20)
        .context("--max-body-mb is too large")?;
    config.header_read_timeout = Duration::from_secs(args.header_timeout_secs);
    config.faults = odps_emulator::FaultConfig {
        fail_block_rate: args.fail_block_rate,
        fail_commit_rate: args.fail_commit_rate,
        delay: Duration::from_millis(args.delay_ms),
        stall_rate: args.stall_rate,
        stall: Duration::from_millis(args.stall_ms),
        seed: args.fault_seed,
        crash_at: args.crash_at,
        fail_commits_while: args.fail_commits_while,
    };
    let emulator = odps_emulator::Emulator::start(config)
        .await
        .with_context(|| format!("starting the emulator on {}:{}", args.host, args.port))?;
    // One line on stdout so scripts can learn the endpoint (useful with --port 0).
    println!(
        "odps-emulator listening: endpoint {} tunnel {}",
        emulator.endpoint(),
        emulator.tunnel_endpoint()
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = wait_for_terminate() => {}
    }
    emulator.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn wait_for_terminate() {
    std::future::pending().await
}
