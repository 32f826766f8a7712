//! `precheck`, `run`, `status`, `verify` and `merge-sql`: the task file's commands.

use anyhow::{Context as _, Result, bail};
use clap::Args;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use sync_core::config::TaskConfig;
use sync_core::machine::Phase;
use sync_core::precheck::Outcome;
use sync_core::run::{ResnapshotOutcome, RunOptions, TaskRunner};
use sync_core::sink::Sink;

/// The task file argument shared by every task command.
#[derive(Debug, Args)]
pub(crate) struct TaskFile {
    /// The task file (TOML).
    #[arg(long, short, default_value = "task.toml")]
    config: PathBuf,
}

/// `run` options.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    task: TaskFile,
    /// Exit 0 once every change up to the source's binlog end at that moment is committed.
    #[arg(long)]
    exit_when_caught_up: bool,
}

/// `resnapshot` options.
#[derive(Debug, Args)]
pub(crate) struct ResnapshotArgs {
    #[command(flatten)]
    task: TaskFile,
    /// The source table, `db.table`.
    #[arg(long)]
    table: String,
}

/// `merge-sql` options.
#[derive(Debug, Args)]
pub(crate) struct MergeSqlArgs {
    #[command(flatten)]
    task: TaskFile,
    /// The source table, `db.table`.
    #[arg(long)]
    table: String,
    /// Merge the changes made before this Unix time (default: now).
    #[arg(long)]
    as_of: Option<i64>,
}

fn load(path: &Path) -> Result<TaskConfig> {
    let cfg = sync_core::taskfile::load(path)?;
    // Only an embedding program, which passes its own sink, may leave it out.
    if matches!(
        cfg.destination,
        sync_core::config::DestinationConfig::Embedded
    ) {
        anyhow::bail!(
            "task file {}: no [destination] section: add one, e.g. `[destination]` with \
             `kind = \"local\"` and `path = \"./warehouse\"`, or `kind = \"maxcompute\"` \
             (see `sync-cli init`)",
            path.display()
        );
    }
    Ok(cfg)
}

fn runner(path: &Path) -> Result<TaskRunner<Box<dyn Sink>>> {
    let cfg = load(path)?;
    let sink = sync_core::sink::open(&cfg)
        .map_err(|e| anyhow::anyhow!("task file {}: {e}", path.display()))?;
    Ok(TaskRunner::new(cfg, sink)?)
}

pub(crate) async fn run(args: RunArgs, bars: Option<Arc<crate::progress::Bars>>) -> Result<()> {
    let mut runner = runner(&args.task.config)?;
    if let Some(bars) = bars {
        runner = runner.with_progress(bars);
    }
    // One writer per task, before anything else (the metrics port too): a
    // second run fails here at once, naming the one that holds the task.
    let lock = runner.lock("run")?;
    let runner = Arc::new(runner);
    let stop = Arc::new(AtomicBool::new(false));
    let _signals = AbortOnDrop(tokio::spawn(watch_signals(runner.clone(), stop.clone())));
    let opts = RunOptions {
        exit_when_caught_up: args.exit_when_caught_up,
        stop,
    };
    let cfg = load(&args.task.config)?;
    let metrics = runner.metrics().clone();
    let _server = match cfg.monitor.listen {
        Some(addr) => {
            let (bound, handle) = sync_core::metrics::serve(addr, metrics.clone())
                .await
                .with_context(|| {
                    format!("[monitor] listen = \"{addr}\": cannot serve metrics there")
                })?;
            tracing::info!(%bound, "serving Prometheus metrics at /metrics");
            Some(AbortOnDrop(handle))
        }
        None => None,
    };
    let task_name = args.task.config.display().to_string();
    let _watch = cfg.alert.clone().map(|a| {
        AbortOnDrop(sync_core::alert::watch(
            a,
            task_name.clone(),
            metrics.clone(),
        ))
    });
    let state = match runner.run_locked(&lock, &opts).await {
        Ok(state) => state,
        Err(e) => {
            // The watcher may not tick again before the process exits: send
            // the failure alert here.
            metrics.set_failed();
            if let Some(a) = &cfg.alert {
                let mut rules = sync_core::alert::AlertRules::new(a.clone(), task_name);
                for alert in rules.observe(&metrics.snapshot(), std::time::Duration::ZERO) {
                    sync_core::alert::send(&alert, a.webhook.as_deref()).await;
                }
            }
            return Err(e.into());
        }
    };
    println!("{}", describe(&state.phase));
    Ok(())
}

/// The first SIGINT or SIGTERM stops the run cleanly (within
/// [`sync_core::run::STOP_GRACE`]); a second one ends the process at once,
/// exit code 128 + the signal's number, which is as safe as `kill -9`.
async fn watch_signals<S: Sink + 'static>(runner: Arc<TaskRunner<S>>, stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot watch SIGINT and SIGTERM: stop the run with SIGKILL");
        return;
    };
    let (first, _) = next_signal(&mut term, &mut int).await;
    tracing::warn!(
        "{first}: stopping (within {:?}); send it again to abort at once",
        sync_core::run::STOP_GRACE
    );
    runner.note_stop_cause(first);
    stop.store(true, Ordering::Relaxed);
    let (second, number) = next_signal(&mut term, &mut int).await;
    tracing::warn!("{second} again: aborting now; the next run resumes from the checkpoint");
    runner.note_abort(&format!("a second signal ({second})"));
    std::process::exit(128 + number);
}

/// The next SIGTERM or SIGINT: its name and number.
async fn next_signal(
    term: &mut tokio::signal::unix::Signal,
    int: &mut tokio::signal::unix::Signal,
) -> (&'static str, i32) {
    tokio::select! {
        _ = term.recv() => ("SIGTERM", 15),
        _ = int.recv() => ("SIGINT", 2),
    }
}

/// Aborts a background task when the command ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `status` options.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    task: TaskFile,
    /// Print one JSON object (`phase`, `alive`, the run holding the task or
    /// the last one, the checkpoint's state and the progress file) instead
    /// of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn status(args: StatusArgs) -> Result<()> {
    if args.json {
        return status_json(&args.task.config);
    }
    let args = args.task;
    let cfg = load(&args.config)?;
    let store = sync_core::checkpoint::CheckpointStore::<sync_core::machine::TaskState>::new(
        &cfg.sync.state_dir,
        "task",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let progress = sync_core::status::read(&cfg.sync.state_dir);
    let liveness = sync_core::state_lock::probe(&cfg.sync.state_dir)?;
    let run_line = sync_core::status::describe_run(&liveness, progress.as_ref(), now);
    match store.load()? {
        None => {
            println!(
                "not started (no checkpoint in {})",
                cfg.sync.state_dir.display()
            );
            println!("  {run_line}");
        }
        Some(state) => {
            println!("{}", describe(&state.phase));
            println!("  {run_line}");
            if let Some(p) = &progress {
                let heartbeat = cfg
                    .heartbeat
                    .enabled
                    .then_some(cfg.heartbeat.interval_seconds);
                for line in sync_core::status::describe(p, state.phase.name(), now, heartbeat) {
                    println!("  {line}");
                }
            }
            if let Phase::Incremental(inc) = &state.phase {
                for (table, a) in inc.added.iter().filter(|(_, a)| !a.complete()) {
                    println!(
                        "  {table}: {} (merge and verify of it are partial until both are done)",
                        sync_core::run::describe_added(a)
                    );
                }
                for (table, r) in &inc.resnapshots {
                    if let Some(start) = r.start.as_ref().filter(|_| r.baseline.done) {
                        println!(
                            "  {table}: baseline generation {} copied into {} as of {}:{}; \
                             published when the stream reaches that position",
                            r.target.generation, r.target.table, start.file, start.position
                        );
                        continue;
                    }
                    println!(
                        "  {table}: baseline generation {} being copied into {}: {} chunks ({} \
                         rows) committed; `sync-cli resnapshot` resumes it",
                        r.target.generation,
                        r.target.table,
                        r.baseline.chunks_done,
                        r.baseline.rows
                    );
                }
                if let Some(g) = inc.schemas {
                    let set =
                        sync_core::schema_history::SchemaStore::new(&cfg.sync.state_dir).load(g)?;
                    for (table, t) in &set.tables {
                        let covered = inc
                            .baselines
                            .get(table)
                            .map_or(0, |b| sync_core::records::RecordIds::counter_of(b.log_from));
                        let due: Vec<&str> = t
                            .added
                            .iter()
                            .filter(|a| a.resnapshot && a.first_record_id > covered)
                            .map(|a| a.column.as_str())
                            .collect();
                        if !due.is_empty() {
                            println!(
                                "  {table}: a new baseline is due (columns {} were added with a \
                                 default; rewritten_rows = \"resnapshot\"): stop the task and run \
                                 `sync-cli resnapshot --table {table}`",
                                due.join(", ")
                            );
                        }
                    }
                }
                for (table, g) in &inc.baselines {
                    println!(
                        "  {table}: baseline generation {} in {}, with the t_log records from \
                         record_id {} on",
                        g.generation, g.table, g.log_from
                    );
                }
                for (table, r) in &inc.removed {
                    println!(
                        "  {table}: removed from [objects] include at {}:{}: no longer synced; \
                         {}_base and {}_log stay",
                        r.at.file, r.at.position, r.dest, r.dest
                    );
                }
            }
            if let Phase::FullSync(full) = &state.phase {
                let done = full.tables.values().filter(|p| p.done).count();
                let rows: u64 = full.tables.values().map(|p| p.rows).sum();
                let chunks: u64 = full.tables.values().map(|p| p.chunks_done).sum();
                match progress.as_ref().and_then(|p| p.full_estimate.as_ref()) {
                    Some(e) => println!(
                        "  full phase: {done} of {} done; {rows} of ~{} rows copied{} \
                         in {chunks} chunks (the total is the server's estimate)",
                        match e.tables.max(full.tables.len() as u64) {
                            1 => "1 table".to_owned(),
                            n => format!("{n} tables"),
                        },
                        e.rows,
                        match (rows * 100).checked_div(e.rows) {
                            Some(pct) => format!(" ({}%)", pct.min(100)),
                            None => String::new(),
                        }
                    ),
                    None => println!(
                        "  full phase: {done} of the {} tables started done; {rows} rows in \
                         {chunks} chunks copied",
                        full.tables.len()
                    ),
                }
                for (table, p) in &full.tables {
                    let skipped = if p.skipped > 0 {
                        format!(
                            " ({} skipped as already present in the destination)",
                            p.skipped
                        )
                    } else {
                        String::new()
                    };
                    println!(
                        "  {table}: {} rows in {} chunks{skipped}{}",
                        p.rows,
                        p.chunks_done,
                        if p.done { ", done" } else { "" }
                    );
                }
            }
            if let Some(e) = &state.existing
                && !matches!(state.phase, Phase::FullSync(_))
            {
                for (table, n) in &e.skipped {
                    println!(
                        "  {table}: the full phase skipped {n} rows as already present in the \
                         destination (conflicting_tables = \"ignore\")"
                    );
                }
            }
        }
    }
    Ok(())
}

/// `tables` options.
#[derive(Debug, Args)]
pub(crate) struct TablesArgs {
    #[command(flatten)]
    task: TaskFile,
    /// Print one JSON array (each table's names, key, row estimate,
    /// columns, filter and renames) instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn tables(args: TablesArgs) -> Result<()> {
    let runner = runner(&args.task.config)?;
    let listing = runner.listing().await?;
    if args.json {
        println!("{}", serde_json::to_string(&listing)?);
    } else {
        print!("{}", sync_core::listing::render(&listing));
    }
    Ok(())
}

/// `precheck` options.
#[derive(Debug, Args)]
pub(crate) struct PrecheckArgs {
    #[command(flatten)]
    task: TaskFile,
    /// Print the report as one JSON object (`passed`, and each check's id,
    /// outcome, message and fix) instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn precheck(args: PrecheckArgs) -> Result<()> {
    let runner = runner(&args.task.config)?;
    let report = runner.precheck().await?;
    let count = |o| report.checks.iter().filter(|c| c.outcome == o).count();
    let (failures, warnings) = (count(Outcome::Failure), count(Outcome::Warning));
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["passed"] = serde_json::Value::Bool(failures == 0);
        println!("{value}");
        if failures > 0 {
            bail!("the precheck failed: fix what it names before `run`");
        }
        return Ok(());
    }
    print!("{report}");
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    println!(
        "{} passed, {}, {}",
        count(Outcome::Pass),
        plural(warnings, "warning"),
        plural(failures, "failure")
    );
    if failures > 0 {
        bail!("the precheck failed: fix what it names above before `run`");
    }
    Ok(())
}

/// `verify` options.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    task: TaskFile,
    /// Compare only this table (`db.table`; repeatable).
    #[arg(long)]
    table: Vec<String>,
    /// Print one JSON object (`equal`, and per table its counts and the
    /// first differing keys) instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn verify(args: VerifyArgs) -> Result<()> {
    let runner = runner(&args.task.config)?;
    if let Some(why) = runner.not_started()? {
        if args.json {
            println!(
                "{}",
                serde_json::json!({"equal": false, "not_started": why, "tables": []})
            );
        }
        bail!("{why}");
    }
    let mut tables = runner.tables().await?;
    for name in &args.table {
        if !tables.iter().any(|t| &t.source_name == name) {
            bail!("{}", sync_core::run::not_selected(name, &tables));
        }
    }
    if !args.table.is_empty() {
        tables.retain(|t| args.table.contains(&t.source_name));
    }
    let terminal = std::io::stderr().is_terminal() && !args.json;
    let mut reports = Vec::with_capacity(tables.len());
    for (i, t) in tables.iter().enumerate() {
        let spinner = terminal.then(|| {
            let bar = indicatif::ProgressBar::new_spinner().with_message(format!(
                "[{}/{}] comparing {} (reading both sides)",
                i + 1,
                tables.len(),
                t.source_name
            ));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        let report = runner.verify_table(t).await;
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        reports.push(report?);
    }
    let partial = runner.partial_tables()?;
    if args.json {
        let differing = reports
            .iter()
            .filter(|r| partial.contains_key(&r.table) || !r.is_equal())
            .count();
        let tables: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["equal"] =
                    serde_json::Value::Bool(r.is_equal() && !partial.contains_key(&r.table));
                if let Some(why) = partial.get(&r.table) {
                    v["partial"] = serde_json::Value::String(why.clone());
                }
                v
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"equal": differing == 0, "tables": tables})
        );
        if differing > 0 {
            bail!("{differing} of {} tables differ", reports.len());
        }
        return Ok(());
    }
    let mut differing = 0;
    for r in &reports {
        if let Some(why) = partial.get(&r.table) {
            differing += 1;
            println!(
                "{}: PARTIAL: {why}; compare it again once `sync-cli status` shows both done",
                r.table
            );
            continue;
        }
        if r.oversized > 0 {
            println!(
                "{}: {} rows hold values over the destination's field size limit, written per \
                 `[destination] oversized_values` (NULL or cut to the limit; counted as equal): {}",
                r.table,
                r.oversized,
                r.oversized_keys.join(" | ")
            );
        }
        let multiset = if r.keyless {
            ", no key: compared as a multiset"
        } else {
            ""
        };
        if r.is_equal() && r.added_null > 0 {
            println!(
                "{}: equal ({} rows{multiset}; {} of them NULL in columns added after their last change, where the source shows a default)",
                r.table, r.source_rows, r.added_null
            );
        } else if r.is_equal() {
            println!("{}: equal ({} rows{multiset})", r.table, r.source_rows);
        } else {
            differing += 1;
            let (missing, extra, different) = r.counts;
            let mut added_null = if r.added_null > 0 {
                format!(
                    ", {} equal but for NULL in columns added later",
                    r.added_null
                )
            } else {
                String::new()
            };
            if r.oversized > 0 {
                added_null.push_str(&format!(
                    ", {} equal but for values over the field size limit",
                    r.oversized
                ));
            }
            println!(
                "{}: DIFFERENT: source {} rows, destination {} rows{multiset}; {} equal{added_null}, {missing} missing, {extra} extra, {different} different",
                r.table, r.source_rows, r.destination_rows, r.same
            );
            let unit = if r.keyless { "rows" } else { "keys" };
            for (what, keys) in [
                ("missing", &r.missing),
                ("extra", &r.extra),
                ("different", &r.different),
            ] {
                if !keys.is_empty() {
                    println!("  {what} {unit}: {}", keys.join(" | "));
                }
            }
        }
    }
    let n = reports.len();
    let tables = if n == 1 { "table" } else { "tables" };
    if differing > 0 {
        bail!("{differing} of {n} {tables} differ");
    }
    println!("{n} {tables} equal");
    Ok(())
}

/// `merge` options.
#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    #[command(flatten)]
    task: TaskFile,
    /// The source table, `db.table`.
    #[arg(long)]
    table: String,
    /// The state as of this Unix time: only changes made before it count (default: all).
    #[arg(long)]
    as_of: Option<i64>,
    /// Where to write the merged rows (Parquet).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) async fn merge(args: MergeArgs) -> Result<()> {
    let runner = runner(&args.task.config)?;
    if let Some(why) = runner.not_started()? {
        bail!("nothing to merge: {why}");
    }
    warn_partial(&runner, &args.table)?;
    let merged = runner.merged(&args.table, args.as_of).await?;
    sync_core::merge::write_parquet(&args.out, &merged)?;
    println!(
        "{}: {} rows written to {}",
        args.table,
        merged.num_rows(),
        args.out.display()
    );
    Ok(())
}

pub(crate) async fn merge_sql(args: MergeSqlArgs) -> Result<()> {
    let runner = runner(&args.task.config)?;
    warn_partial(&runner, &args.table)?;
    // The destination's schema as the task tracks it (right after a DDL,
    // without a source connection); the source's before the incremental
    // phase has saved one.
    let tables = match runner.checkpointed_tables()? {
        Some(tables) => tables,
        None => runner.tables().await?,
    };
    let Some(t) = tables.iter().find(|t| t.source_name == args.table) else {
        bail!("{}", sync_core::run::not_selected(&args.table, &tables));
    };
    let columns = t.dest_columns();
    let key = t.dest_key();
    let as_of = match args.as_of {
        Some(t) => t,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64,
    };
    let result = format!("{}_{as_of}", t.dest);
    if key.is_empty() {
        let added = runner.added_columns_of(&t.source_name)?;
        if !added.is_empty() {
            let names: Vec<&str> = added.iter().map(|a| a.column.as_str()).collect();
            eprintln!(
                "warning: {} has no key and gained columns during the incremental phase ({}): \
                 its rows written before that hold NULL there, so this SQL, which matches a \
                 changed row on every column, keeps the old copy of such a row when it changes; \
                 `sync-cli merge` matches such a row on its other columns",
                args.table,
                names.join(", ")
            );
        }
    }
    let generation = runner.base_generation(&t.source_name)?;
    let defaults = runner.filled_defaults(&t.source_name)?;
    if key.is_empty() && !defaults.is_empty() {
        eprintln!(
            "warning: {} has no key: this SQL does not fill the defaults of columns added later \
             (`rewritten_rows = \"default\"`); `sync-cli merge` does",
            args.table
        );
    }
    print!(
        "{}{}",
        runner.merge_sql_prelude(t, &result)?,
        sync_core::merge::merge_sql_generation(
            &t.dest,
            generation.as_ref(),
            &defaults,
            &result,
            &columns,
            &key,
            runner.meta(),
            as_of
        )?
    );
    Ok(())
}

/// Says on stderr when `table` was added to the task and its merge is partial.
fn warn_partial(runner: &TaskRunner<Box<dyn Sink>>, table: &str) -> Result<()> {
    if let Some(why) = runner.partial_tables()?.get(table) {
        eprintln!("warning: {table} is PARTIAL: {why}; its merge lacks rows until both are done");
    }
    Ok(())
}

pub(crate) async fn resnapshot(args: ResnapshotArgs) -> Result<()> {
    let runner = Arc::new(runner(&args.task.config)?);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_signals(runner.clone(), stop.clone()));
    let _abort = AbortOnDrop(watcher);
    match runner.resnapshot(&args.table, &stop).await? {
        ResnapshotOutcome::Published(g) => println!(
            "{}: baseline generation {} published in {}: merge, merge-sql and verify read it \
             with the t_log records from record_id {} on",
            args.table, g.generation, g.table, g.log_from
        ),
        ResnapshotOutcome::Copied { generation, start } => println!(
            "{}: baseline generation {} copied into {} as of {}:{} (no key: one consistent \
             snapshot); the next `sync-cli run` publishes it when its stream reaches that position",
            args.table, generation.generation, generation.table, start.file, start.position
        ),
        ResnapshotOutcome::Stopped => println!(
            "{}: stopped; `sync-cli resnapshot` again resumes the copy",
            args.table
        ),
    }
    Ok(())
}

fn describe(phase: &Phase) -> String {
    match phase {
        Phase::Incremental(inc) => format!(
            "phase incremental: committed up to {}:{}{}; next record_id counter {}",
            inc.position.file,
            inc.position.position,
            inc.position
                .gtid
                .as_deref()
                .map(|g| format!(" (gtid {g})"))
                .unwrap_or_default(),
            inc.next_record_id
        ),
        other => format!("phase {}", other.name()),
    }
}

/// `status --json`: what the text says, for scripts.
fn status_json(config: &Path) -> Result<()> {
    let cfg = load(config)?;
    let store = sync_core::checkpoint::CheckpointStore::<sync_core::machine::TaskState>::new(
        &cfg.sync.state_dir,
        "task",
    );
    let state = store.load()?;
    let progress = sync_core::status::read(&cfg.sync.state_dir);
    let (alive, holder) = match sync_core::state_lock::probe(&cfg.sync.state_dir)? {
        sync_core::state_lock::Liveness::Alive(h) => (true, h),
        sync_core::state_lock::Liveness::NotRunning { last } => (false, last),
    };
    let phase = state.as_ref().map_or("not_started", |s| s.phase.name());
    println!(
        "{}",
        serde_json::json!({
            "phase": phase,
            "alive": alive,
            "run": holder,
            "checkpoint": state,
            "progress": progress,
        })
    );
    Ok(())
}
