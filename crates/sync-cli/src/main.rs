//! `sync-cli`: the command-line front end. All logic lives in the library
//! crates; this binary parses arguments and maps errors to exit codes.

mod binlog;
mod init;
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
    /// Write a commented task file for a source (its databases listed; the password never written).
    Init(init::InitArgs),
    /// Check both ends before a run: each check passes, warns or fails with a fix (exit 1 on a failure).
    Precheck(task::PrecheckArgs),
    /// List the tables the task selects: destination names, key, row estimate, columns and their types, edits.
    Tables(task::TablesArgs),
    /// Run the task (precheck first): schema, full and incremental sync, from its checkpoint.
    Run(task::RunArgs),
    /// Show the task's phase and position from its checkpoint.
    Status(task::StatusArgs),
    /// Compare the source with the merged destination, per table (exit 1 on a difference).
    Verify(task::VerifyArgs),
    /// Rebuild a table's state from `t_base` + `t_log` into a Parquet file.
    Merge(task::MergeArgs),
    /// Print the MaxCompute SQL that merges `t_base` and `t_log` into a table's state.
    MergeSql(task::MergeSqlArgs),
    /// Copy a new baseline generation of a table while the task is stopped (repairs lost changes).
    Resnapshot(task::ResnapshotArgs),
    /// Print a shell completion script: `sync-cli completions bash > /etc/bash_completion.d/sync-cli`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `sync-cli man | man -l -`.
    Man,
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

fn main() -> std::process::ExitCode {
    match run_command() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", render_error(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and each of its causes once: a cause whose text the message
/// already holds (many errors quote their source) is not repeated, and no
/// backtrace is printed for what is a finding, not a crash.
fn render_error(e: &anyhow::Error) -> String {
    let mut out = format!("error: {e}");
    let mut shown = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if shown.contains(&text) {
            continue;
        }
        out.push_str(&format!("\n  caused by: {text}"));
        shown.push_str(&text);
    }
    out
}

fn run_command() -> anyhow::Result<()> {
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
        Command::Tables(args) => runtime()?.block_on(task::tables(args))?,
        Command::Init(args) => runtime()?.block_on(init::init(args))?,
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
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "sync-cli",
                &mut std::io::stdout(),
            );
        }
        Command::Man => {
            use clap::CommandFactory as _;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
        }
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

#[cfg(test)]
mod tests {
    use super::{Cli, render_error};
    use clap::CommandFactory as _;

    #[test]
    fn completions_and_the_man_page_cover_every_command() {
        let mut bash = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "sync-cli",
            &mut bash,
        );
        let bash = String::from_utf8(bash).expect("utf-8");
        let mut man = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut man)
            .expect("man page");
        let man = String::from_utf8(man).expect("utf-8");
        for command in Cli::command().get_subcommands() {
            let name = command.get_name();
            assert!(bash.contains(name), "bash completion lacks {name}");
            // roff writes a hyphen as `\-`.
            assert!(
                man.contains(&name.replace('-', "\\-")),
                "man page lacks {name}"
            );
        }
        assert!(
            man.starts_with(".ie") || man.contains(".TH"),
            "{}",
            &man[..80.min(man.len())]
        );
    }

    #[test]
    fn each_cause_is_printed_once() {
        let inner = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(inner)
            .context("writing checkpoint /s/task.json: disk on fire")
            .context("the run stopped");
        assert_eq!(
            render_error(&e),
            "error: the run stopped\n  caused by: writing checkpoint /s/task.json: disk on fire"
        );
    }
}
