//! `sync-cli`: the command-line front end. All logic lives in the library
//! crates; this binary parses arguments and maps errors to exit codes.

mod binlog;
mod progress;
mod task;

use clap::{Parser, Subcommand};
use std::io::{IsTerminal as _, Write as _};

/// Sync MySQL, MariaDB and PolarDB for MySQL into Alibaba MaxCompute.
#[derive(Debug, Parser)]
#[command(name = "sync-cli", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a binlog file: `dump` prints events and rows, `stats` counts them.
    Binlog(binlog::BinlogArgs),
    /// Check both ends before a run: each check passes, warns or fails with a fix (exit 1 on a failure).
    Precheck(task::TaskFile),
    /// Run the task (precheck first): schema, full and incremental sync, from its checkpoint.
    Run(task::RunArgs),
    /// Show the task's phase and position from its checkpoint.
    Status(task::TaskFile),
    /// Compare the source with the merged destination, per table (exit 1 on a difference).
    Verify(task::TaskFile),
    /// Rebuild a table's state from `t_base` + `t_log` into a Parquet file.
    Merge(task::MergeArgs),
    /// Print the MaxCompute SQL that merges `t_base` and `t_log` into a table's state.
    MergeSql(task::MergeSqlArgs),
    /// Copy a new baseline generation of a table while the task is stopped (repairs lost changes).
    Resnapshot(task::ResnapshotArgs),
    /// Print the demo shop database (schema and rows) as SQL on stdout.
    DemoData {
        /// Database to create.
        #[arg(long, default_value = "shop")]
        database: String,
        /// Seed of the generator: the same seed gives the same rows.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Multiply the demo's row counts by this factor.
        #[arg(long, default_value_t = 1)]
        scale: u32,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    // Bars on a terminal; plain log lines (one per chunk) otherwise.
    let bars = std::io::stderr().is_terminal().then(progress::Bars::new);
    match &bars {
        Some(b) => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(b.log_writer())
            .init(),
        None => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .init(),
    }
    let runtime = || tokio::runtime::Runtime::new();
    match cli.command {
        Command::Binlog(args) => binlog::run(args)?,
        Command::Precheck(args) => runtime()?.block_on(task::precheck(args))?,
        Command::Run(args) => {
            let rt = runtime()?;
            let ran = rt.block_on(task::run(args, bars));
            // A stopped run may have left work it abandoned (a commit on a
            // blocking thread): the process ends without waiting for it, as
            // safe as `kill -9` (the next run redoes it).
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
            ran?
        }
        Command::Status(args) => task::status(args)?,
        Command::Verify(args) => runtime()?.block_on(task::verify(args))?,
        Command::Merge(args) => runtime()?.block_on(task::merge(args))?,
        Command::MergeSql(args) => runtime()?.block_on(task::merge_sql(args))?,
        Command::Resnapshot(args) => runtime()?.block_on(task::resnapshot(args))?,
        Command::DemoData {
            database,
            seed,
            scale,
        } => {
            let base = sync_testkit::shop::Scale::DEMO;
            let scaled = sync_testkit::shop::Scale {
                customers: base.customers * scale,
                products: base.products * scale,
                orders: base.orders * scale,
                events: base.events * scale,
            };
            let sql = sync_testkit::shop::shop_sql(&database, scaled, seed);
            std::io::stdout().lock().write_all(sql.as_bytes())?;
        }
    }
    Ok(())
}
