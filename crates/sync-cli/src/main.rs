//! `sync-cli`: the command-line front end. All logic lives in the library
//! crates; this binary parses arguments and maps errors to exit codes.

mod binlog;

use clap::{Parser, Subcommand};
use std::io::Write as _;

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
    match cli.command {
        Command::Binlog(args) => binlog::run(args)?,
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
