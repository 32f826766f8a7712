//! What every scenario needs: its context and log, a private source server
//! with a task user, the task file and `sync-cli` processes, a background
//! writer, the emulator, and the final catch-up + `verify` + doubled-record
//! check.

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use mysql_async::prelude::Queryable;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use sync_core::checkpoint::CheckpointStore;
use sync_core::machine::{Phase, TaskState};
use sync_core::run::TaskRunner;
use sync_core::sink::Sink;
use sync_testkit::PrivateServer;
use sync_testkit::emulator::{ACCESS_ID, ACCESS_KEY, EmulatorProcess};
use sync_testkit::rng::Rng;

/// The binaries under test.
#[derive(Clone, Debug)]
pub(crate) struct Bins {
    /// `sync-cli`.
    pub(crate) cli: PathBuf,
    /// `odps-emulator`.
    pub(crate) emulator: PathBuf,
}

/// How a scenario ended when it did not fail.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// It passed; one line of what it proved.
    Pass(String),
    /// It could not run here (the reason says why); counted neither way.
    Skip(String),
}

/// One scenario's context: name, work directory, binaries, seeded randomness.
pub(crate) struct Ctx {
    pub(crate) dir: PathBuf,
    pub(crate) bins: Bins,
    pub(crate) rng: Rng,
    started: Instant,
}

impl Ctx {
    pub(crate) fn new(name: &str, dir: PathBuf, bins: Bins, seed: u64) -> Self {
        // Each scenario draws its own sequence from the suite's seed.
        let salt = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Self {
            dir,
            bins,
            rng: Rng::new(seed ^ salt),
            started: Instant::now(),
        }
    }

    /// Prints one step of the scenario, with the time since it started.
    pub(crate) fn say(&self, msg: impl Display) {
        println!("   [{:6.1} s] {msg}", self.started.elapsed().as_secs_f64());
    }

    /// A random pause of `lo..=hi` milliseconds.
    pub(crate) fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.rng.range(lo as i64, hi as i64) as u64)
    }
}

/// Polls `cond` every 50 ms until it holds; an error naming `what` after `limit`.
pub(crate) async fn wait_for(
    what: &str,
    limit: Duration,
    mut cond: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if cond()? {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("{what}: not within {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The user the task connects as, so that its connections can be told apart
/// from the scenario's own in the processlist.
pub(crate) const TASK_USER: &str = "chaos_task";
const TASK_PASSWORD: &str = "chaos-pass";

/// A private MariaDB (own datadir and port) with the task user.
pub(crate) struct Source {
    server: Arc<PrivateServer>,
    /// root, for loading data, the writer and the faults.
    pub(crate) admin_url: String,
    /// The task user's URL, for the task file.
    pub(crate) task_url: String,
}

impl Source {
    /// Starts a server with extra `[mariadbd]` options and creates the task
    /// user with the privileges the precheck asks for.
    pub(crate) async fn start(extra_cnf: &[&str]) -> Result<Self> {
        let extra: Vec<String> = extra_cnf.iter().map(|s| (*s).to_owned()).collect();
        let server = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
            PrivateServer::start(&refs)
        })
        .await??;
        let port = server.port();
        let source = Self {
            server: Arc::new(server),
            admin_url: format!("mysql://root@127.0.0.1:{port}"),
            task_url: format!("mysql://{TASK_USER}:{TASK_PASSWORD}@127.0.0.1:{port}"),
        };
        source
            .exec(&format!(
                "CREATE USER IF NOT EXISTS '{TASK_USER}'@'%' IDENTIFIED BY '{TASK_PASSWORD}';
                 GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{TASK_USER}'@'%';"
            ))
            .await?;
        Ok(source)
    }

    /// The server's port.
    pub(crate) fn port(&self) -> u16 {
        self.server.port()
    }

    /// A root connection.
    pub(crate) async fn conn(&self) -> Result<mysql_async::Conn> {
        let opts = mysql_async::Opts::from_url(&self.admin_url)?;
        Ok(mysql_async::Conn::new(opts).await?)
    }

    /// Runs statements as root on a fresh connection.
    pub(crate) async fn exec(&self, sql: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        conn.query_drop(sql).await?;
        conn.disconnect().await?;
        Ok(())
    }

    /// Loads the generated shop database as `db`.
    pub(crate) async fn load_shop(
        &self,
        db: &str,
        scale: sync_testkit::shop::Scale,
        seed: u64,
    ) -> Result<()> {
        self.exec(&sync_testkit::shop::shop_sql(db, scale, seed))
            .await
            .context("loading the shop database")
    }

    /// The task user's connections: `(id, command, info)`.
    pub(crate) async fn task_connections(&self) -> Result<Vec<(u64, String, String)>> {
        let mut conn = self.conn().await?;
        let rows: Vec<(u64, String, Option<String>)> = conn
            .query(format!(
                "SELECT id, command, info FROM information_schema.processlist WHERE user = '{TASK_USER}'"
            ))
            .await?;
        conn.disconnect().await?;
        Ok(rows
            .into_iter()
            .map(|(id, cmd, info)| (id, cmd, info.unwrap_or_default()))
            .collect())
    }

    /// The binlog files the server keeps, oldest first.
    pub(crate) async fn binlogs(&self) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        let rows: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
        conn.disconnect().await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.get::<String, _>(0))
            .collect())
    }

    async fn blocking(
        &self,
        f: fn(&PrivateServer) -> Result<(), sync_testkit::PrivateServerError>,
    ) -> Result<()> {
        let server = self.server.clone();
        tokio::task::spawn_blocking(move || f(&server)).await??;
        Ok(())
    }

    /// Shuts the server down cleanly.
    pub(crate) async fn stop(&self) -> Result<()> {
        self.blocking(PrivateServer::stop).await
    }

    /// Kills the server with SIGKILL.
    pub(crate) async fn kill(&self) -> Result<()> {
        self.blocking(PrivateServer::kill).await
    }

    /// Starts it again on the same port and datadir.
    pub(crate) async fn start_again(&self) -> Result<()> {
        self.blocking(PrivateServer::start_again).await
    }
}

/// Where the task writes.
#[derive(Clone, Debug)]
pub(crate) enum Dest {
    /// The local warehouse at this path.
    Local(PathBuf),
    /// A MaxCompute project in the emulator.
    MaxCompute {
        endpoint: String,
        tunnel: String,
        project: String,
    },
}

/// The task file's settings.
#[derive(Clone, Debug)]
pub(crate) struct TaskSpec {
    pub(crate) url: String,
    pub(crate) db: String,
    pub(crate) dest: Dest,
    pub(crate) chunk_rows: u64,
    pub(crate) batch_rows: u64,
    pub(crate) parallelism: u32,
    pub(crate) flush_ms: u64,
    /// Where the checkpoint goes (default: `state` in the scenario directory).
    pub(crate) state_dir: Option<PathBuf>,
    /// More task-file sections, appended as written.
    pub(crate) extra: String,
}

impl TaskSpec {
    /// Small chunks and batches, so that a short run has many commit points.
    pub(crate) fn new(source: &Source, db: &str, dest: Dest) -> Self {
        Self {
            url: source.task_url.clone(),
            db: db.to_owned(),
            dest,
            chunk_rows: 150,
            batch_rows: 40,
            parallelism: 2,
            flush_ms: 200,
            state_dir: None,
            extra: String::new(),
        }
    }
}

const ID_ENV: &str = "CHAOS_ODPS_ACCESS_ID";
const KEY_ENV: &str = "CHAOS_ODPS_ACCESS_KEY";

/// A task: its file, its state directory, and the `sync-cli` runs made of it.
pub(crate) struct Task {
    pub(crate) file: PathBuf,
    pub(crate) state_dir: PathBuf,
    spec: TaskSpec,
    dir: PathBuf,
    cli: PathBuf,
    runs: u32,
}

impl Task {
    /// Writes the task file into the scenario's directory.
    pub(crate) fn new(ctx: &Ctx, spec: TaskSpec) -> Result<Self> {
        let state_dir = spec
            .state_dir
            .clone()
            .unwrap_or_else(|| ctx.dir.join("state"));
        let dest = match &spec.dest {
            Dest::Local(path) => format!("kind = \"local\"\npath = \"{}\"\n", path.display()),
            Dest::MaxCompute {
                endpoint,
                tunnel,
                project,
            } => format!(
                "kind = \"maxcompute\"\nendpoint = \"{endpoint}\"\ntunnel_endpoint = \"{tunnel}\"\n\
                 project = \"{project}\"\naccess_id_env = \"{ID_ENV}\"\naccess_key_env = \"{KEY_ENV}\"\n"
            ),
        };
        let text = format!(
            "[source]\nurl = \"{}\"\nserver_id = 9301\n[destination]\n{dest}\
             [objects]\ninclude = [\"{}.*\"]\n\
             [sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\nstate_dir = \"{}\"\n\
             chunk_rows = {}\nbatch_rows = {}\nparallelism = {}\nflush_interval_ms = {}\n\
             log_partitions = [\"day\"]\n{}",
            spec.url,
            spec.db,
            state_dir.display(),
            spec.chunk_rows,
            spec.batch_rows,
            spec.parallelism,
            spec.flush_ms,
            spec.extra
        );
        let file = ctx.dir.join("task.toml");
        std::fs::write(&file, text)?;
        Ok(Self {
            file,
            state_dir,
            spec,
            dir: ctx.dir.clone(),
            cli: ctx.bins.cli.clone(),
            runs: 0,
        })
    }

    /// The checkpoint file.
    pub(crate) fn checkpoint_path(&self) -> PathBuf {
        self.state_dir.join("task.json")
    }

    /// Starts `sync-cli ARGS -c task.toml` in the background; its output
    /// goes to `cli-NN.log` in the scenario directory.
    pub(crate) fn start(&mut self, args: &[&str]) -> Result<Run> {
        self.runs += 1;
        let log = self.dir.join(format!(
            "cli-{:02}-{}.log",
            self.runs,
            args.first().unwrap_or(&"")
        ));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(&self.cli)
            .args(args)
            .arg("-c")
            .arg(&self.file)
            .env(ID_ENV, ACCESS_ID)
            .env(KEY_ENV, ACCESS_KEY)
            .env("RUST_LOG", "info")
            // The error itself, not anyhow's backtrace of where it was wrapped.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", self.cli.display()))?;
        Ok(Run { child, log })
    }

    /// Runs `sync-cli ARGS` to its end (at most `limit`).
    pub(crate) async fn run(&mut self, args: &[&str], limit: Duration) -> Result<Finished> {
        let mut run = self.start(args)?;
        match run.wait(limit).await? {
            Some(status) => Ok(Finished {
                status,
                output: run.output(),
            }),
            None => bail!(
                "sync-cli {} did not end within {} s; its log: {}",
                args.join(" "),
                limit.as_secs(),
                run.log.display()
            ),
        }
    }

    /// `run --exit-when-caught-up` until one succeeds (at most `attempts`;
    /// a destination that still injects faults may fail a run). Returns the
    /// failed runs' error lines.
    pub(crate) async fn catch_up(&mut self, attempts: u32) -> Result<Vec<String>> {
        let mut failures = Vec::new();
        for _ in 0..attempts.max(1) {
            let done = self
                .run(&["run", "--exit-when-caught-up"], Duration::from_secs(150))
                .await?;
            if done.status.success() {
                return Ok(failures);
            }
            failures.push(done.error_line());
        }
        bail!(
            "the catch-up failed {} times; last: {}",
            failures.len(),
            failures.last().map_or("", String::as_str)
        )
    }

    /// `verify`: Ok with its summary line when every table is equal.
    pub(crate) async fn verify(&mut self) -> Result<String> {
        let done = self.run(&["verify"], Duration::from_secs(120)).await?;
        let text = done.output;
        let summary = text
            .lines()
            .find(|l| l.ends_with("tables equal"))
            .map(str::to_owned);
        match summary {
            Some(line) if done.status.success() => Ok(line),
            _ => bail!("verify failed:\n{}", indent(&text)),
        }
    }

    /// The saved checkpoint (as `sync-core` reads it).
    pub(crate) fn state(&self) -> Result<Option<TaskState>> {
        Ok(CheckpointStore::<TaskState>::new(&self.state_dir, "task").load()?)
    }

    /// The checkpoint's phase name, `none` before the first one.
    pub(crate) fn phase(&self) -> String {
        match self.state() {
            Ok(Some(s)) => s.phase.name().to_owned(),
            Ok(None) => "none".to_owned(),
            Err(e) => format!("unreadable ({e})"),
        }
    }

    /// Whether the task has captured its binlog position (every change from
    /// then on reaches `t_log`).
    pub(crate) fn positioned(&self) -> bool {
        matches!(
            self.state().ok().flatten().map(|s| s.phase),
            Some(Phase::FullSync(sync_core::machine::FullSync {
                start: Some(_),
                ..
            })) | Some(Phase::Incremental(_))
        )
    }

    /// The destination as `sync-core` opens it, for reading back.
    fn sink(&self) -> Result<Box<dyn Sink>> {
        Ok(match &self.spec.dest {
            Dest::Local(path) => Box::new(sync_core::sink::local::LocalWarehouse::new(path)),
            Dest::MaxCompute {
                endpoint, project, ..
            } => Box::new(sync_core::sink::maxcompute::MaxComputeSink::new(
                odps_tunnel::Client::new(
                    endpoint,
                    project,
                    odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
                )?,
                self.state_dir.join("maxcompute-units"),
            )),
        })
    }

    /// Every `t_log`'s records: their total, how many are held twice, and
    /// a description of each table holding a record twice.
    pub(crate) async fn log_records(&self) -> Result<LogRecords> {
        let cfg = sync_core::taskfile::load(&self.file)?;
        let runner = TaskRunner::new(cfg, self.sink()?)?;
        let mut found = LogRecords::default();
        for t in runner.tables().await? {
            let batches = runner
                .sink()
                .read_table(&t.log_table(), &t.log_schema)
                .await?;
            let keys = sync_testkit::records::log_record_keys(&batches).map_err(|e| anyhow!(e))?;
            let doubled = sync_testkit::records::doubled(&keys);
            found.doubled += doubled.len();
            if !doubled.is_empty() {
                found.problems.push(format!(
                    "{} holds {} records twice (first: {:?})",
                    t.log_table(),
                    doubled.len(),
                    doubled.first()
                ));
            }
            found.total += keys.len();
        }
        Ok(found)
    }

    /// The end of every scenario that expects the task to get through: a
    /// catch-up, `verify` equal, and no `t_log` record twice. Returns what
    /// it found, for the verdict.
    pub(crate) async fn settle(&mut self, ctx: &Ctx, attempts: u32) -> Result<String> {
        let failures = self.catch_up(attempts).await?;
        for f in &failures {
            ctx.say(format!("a catch-up run failed (retried): {f}"));
        }
        let summary = self.verify().await?;
        ctx.say(format!("verify: {summary}"));
        let LogRecords {
            total: records,
            problems,
            ..
        } = self.log_records().await?;
        ensure!(
            problems.is_empty(),
            "doubled records: {}",
            problems.join("; ")
        );
        ensure!(records > 0, "no change reached t_log");
        ctx.say(format!("t_log: {records} records, none twice"));
        Ok(format!("{summary}; {records} t_log records, none twice"))
    }
}

/// What the `t_log` tables hold, from [`Task::log_records`].
#[derive(Debug, Default)]
pub(crate) struct LogRecords {
    /// Records in every `t_log`.
    pub(crate) total: usize,
    /// Records held more than once.
    pub(crate) doubled: usize,
    /// One line per table holding a record twice.
    pub(crate) problems: Vec<String>,
}

/// A finished `sync-cli` command.
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    /// stdout and stderr, interleaved.
    pub(crate) output: String,
}

impl Finished {
    /// The error `sync-cli` ended with (its `Error:` line and what follows).
    pub(crate) fn error_line(&self) -> String {
        error_of(&self.output)
    }
}

/// The error a `sync-cli` log ends with: from its `Error:` line on, joined
/// (of a failed precheck, only its failures).
pub(crate) fn error_of(output: &str) -> String {
    match output.rfind("Error: ") {
        Some(at) => {
            let lines = output[at..]
                .lines()
                .take_while(|l| !l.starts_with("Stack backtrace:"))
                .map(str::trim)
                .filter(|l| !l.is_empty());
            let precheck = output[at..].contains("the precheck failed");
            lines
                .enumerate()
                .filter(|(i, l)| !precheck || *i == 0 || l.starts_with("failure"))
                .map(|(_, l)| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join(" ")
        }
        None => output
            .lines()
            .last()
            .unwrap_or("(no output)")
            .trim()
            .to_owned(),
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `sync-cli` process; killed when dropped.
pub(crate) struct Run {
    child: Child,
    pub(crate) log: PathBuf,
}

impl Run {
    /// Its exit status once it has ended.
    pub(crate) fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits up to `limit` for it to end.
    pub(crate) async fn wait(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.exited()? {
                return Ok(Some(s));
            }
            if start.elapsed() > limit {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, and reap it.
    pub(crate) fn sigkill(&mut self) -> Result<()> {
        if self.exited()?.is_none() {
            self.child.kill()?;
        }
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits up to `limit` for the clean stop.
    pub(crate) async fn sigterm(&mut self, limit: Duration) -> Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM {} failed", self.child.id());
        self.wait(limit).await?.ok_or_else(|| {
            anyhow!(
                "sync-cli did not stop within {} s of SIGTERM",
                limit.as_secs()
            )
        })
    }

    /// What it printed so far.
    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many of its log lines contain `needle`.
    pub(crate) fn count(&self, needle: &str) -> usize {
        self.output().lines().filter(|l| l.contains(needle)).count()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `sync-cli run` restarted whenever it exits, as a service manager would
/// restart it; every exit is recorded with its error.
pub(crate) struct Supervised {
    run: Option<Run>,
    /// The error line of every exit so far.
    pub(crate) exits: Vec<String>,
}

impl Supervised {
    pub(crate) fn start(task: &mut Task) -> Result<Self> {
        Ok(Self {
            run: Some(task.start(&["run"])?),
            exits: Vec::new(),
        })
    }

    /// Restarts the run if it has exited; returns the error it exited with.
    pub(crate) fn check(&mut self, task: &mut Task) -> Result<Option<String>> {
        let ended = match self.run.as_mut() {
            Some(run) => run.exited()?.map(|_| error_of(&run.output())),
            None => Some(String::new()),
        };
        if let Some(e) = &ended {
            if !e.is_empty() {
                self.exits.push(e.clone());
            }
            self.run = Some(task.start(&["run"])?);
        }
        Ok(ended.filter(|e| !e.is_empty()))
    }

    /// The current run.
    pub(crate) fn run(&mut self) -> Option<&mut Run> {
        self.run.as_mut()
    }

    /// SIGKILLs the current run and starts a new one.
    pub(crate) fn kill_and_restart(&mut self, task: &mut Task) -> Result<()> {
        if let Some(mut run) = self.run.take() {
            run.sigkill()?;
        }
        self.run = Some(task.start(&["run"])?);
        Ok(())
    }

    /// Stops the current run with SIGTERM; its exit status.
    pub(crate) async fn stop(&mut self) -> Result<Option<ExitStatus>> {
        match self.run.take() {
            Some(mut run) => Ok(Some(run.sigterm(Duration::from_secs(60)).await?)),
            None => Ok(None),
        }
    }
}

/// A writer changing the shop database in the background until stopped
/// (it reconnects after errors, e.g. while the server restarts).
pub(crate) struct Writer {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    handle: tokio::task::JoinHandle<WriterStats>,
}

/// What a writer did.
#[derive(Debug)]
pub(crate) struct WriterStats {
    /// Rounds of [`sync_testkit::shop::changes_sql`] that went through.
    pub(crate) rounds: u64,
    /// Rounds that failed (connection lost, server down).
    pub(crate) failed: u64,
}

impl Writer {
    /// Starts writing to `db`, a round every `pause_ms` (drawn from the
    /// range), inserting customers from id `first_id` up.
    pub(crate) fn start(
        source: &Source,
        db: &str,
        seed: u64,
        first_id: u32,
        pause_ms: (u64, u64),
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let url = source.admin_url.clone();
        let db = db.to_owned();
        let (flag, count) = (stop.clone(), rounds.clone());
        let handle = tokio::spawn(async move {
            let mut rng = Rng::new(seed);
            let mut conn: Option<mysql_async::Conn> = None;
            let (mut next_id, mut failed) = (first_id, 0);
            while !flag.load(Ordering::Relaxed) {
                if conn.is_none() {
                    conn = match mysql_async::Opts::from_url(&url) {
                        Ok(opts) => mysql_async::Conn::new(opts).await.ok(),
                        Err(_) => None,
                    };
                }
                if let Some(c) = conn.as_mut() {
                    let sql = sync_testkit::shop::changes_sql(&db, &mut rng, next_id);
                    // A fresh id every round, also after a failure: a round cut
                    // off midway may have inserted its customer.
                    next_id += 1;
                    if c.query_drop(sql).await.is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed += 1;
                        conn = None;
                    }
                } else {
                    failed += 1;
                }
                let pause = rng.range(pause_ms.0 as i64, pause_ms.1 as i64) as u64;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            if let Some(c) = conn {
                let _ = c.disconnect().await;
            }
            WriterStats {
                rounds: count.load(Ordering::Relaxed),
                failed,
            }
        });
        Self {
            stop,
            rounds,
            handle,
        }
    }

    /// Rounds that went through so far.
    pub(crate) fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Stops after the round in progress.
    pub(crate) async fn stop(self) -> Result<WriterStats> {
        self.stop.store(true, Ordering::Relaxed);
        Ok(self.handle.await?)
    }
}

/// The emulator over a data directory of the scenario's, restartable on
/// the same port (so the task's endpoint stays valid).
pub(crate) struct Emu {
    process: Option<EmulatorProcess>,
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    pub(crate) endpoint: String,
    pub(crate) tunnel: String,
}

impl Emu {
    /// Starts it on a free port with `extra` options.
    pub(crate) fn start(ctx: &Ctx, extra: &[&str]) -> Result<Self> {
        let data = ctx.dir.join("odps-data");
        std::fs::create_dir_all(&data)?;
        let process =
            EmulatorProcess::start(&ctx.bins.emulator, &data, ACCESS_ID, ACCESS_KEY, extra)?;
        let port = process
            .port()
            .ok_or_else(|| anyhow!("the emulator announced no port: {}", process.tunnel))?;
        Ok(Self {
            endpoint: process.endpoint.clone(),
            tunnel: process.tunnel.clone(),
            process: Some(process),
            bin: ctx.bins.emulator.clone(),
            data,
            port,
        })
    }

    /// SIGKILLs the process (a crash; committed data and sessions stay on disk).
    pub(crate) fn kill(&mut self) -> Result<()> {
        if let Some(mut p) = self.process.take() {
            p.kill()?;
        }
        Ok(())
    }

    /// Whether the process ended by itself (e.g. at a `--crash-at` point).
    pub(crate) fn crashed(&mut self) -> Result<bool> {
        match self.process.as_mut() {
            Some(p) => Ok(p.try_wait()?.is_some()),
            None => Ok(true),
        }
    }

    /// Starts it again over the same data and port with `extra` options
    /// (after [`Emu::kill`] or a crash).
    pub(crate) async fn restart(&mut self, extra: &[&str]) -> Result<()> {
        self.kill()?;
        // The port is free once the old listener is gone; retry briefly.
        let mut last = None;
        for _ in 0..50 {
            match EmulatorProcess::start_at(
                &self.bin, &self.data, self.port, ACCESS_ID, ACCESS_KEY, extra,
            ) {
                Ok(p) => {
                    self.process = Some(p);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(anyhow!(
            "the emulator did not start again on port {}: {last:?}",
            self.port
        ))
    }
}

/// Lists every file under `dir` with its size (for "nothing was written").
pub(crate) fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) => out.push((path, m.len())),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}
