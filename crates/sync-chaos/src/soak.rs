//! The soak: a task left running under a steady `sysbench oltp_write_only`
//! load for a set time while, every minute, one of the faults it must ride
//! through is injected in turn (SIGKILL of `sync-cli run` and a restart,
//! server-side KILL of its binlog dump, a clean restart and a crash of the
//! source; with the emulator as the destination also a SIGKILL and restart
//! of the emulator, and a spell of failing and stalling uploads and
//! commits). Then the load stops, the task catches up, `verify` must find
//! every table equal and no `t_log` record may be held twice. Prints each
//! minute (fault, recovery, load, lag) and writes one JSON line of the
//! result.

use crate::faults::{self, Outage};
use crate::harness::{Ctx, Dest, Emu, Source, Supervised, Task, TaskSpec};
use crate::sysbench::{Load, LoadStats};
use anyhow::{Context as _, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The faults, injected in this order, one a minute.
const FAULTS: [&str; 4] = [
    "sigkill",
    "kill-connections",
    "source-restart",
    "source-crash",
];
/// With the emulator as the destination, these join the turn.
const EMULATOR_FAULTS: [&str; 2] = ["emulator-restart", "emulator-failures"];
/// The emulator's options while `emulator-failures` lasts: retryable 500s
/// on uploads and commits, and stalls.
const EMULATOR_FAILING: [&str; 10] = [
    "--fail-block-rate",
    "0.2",
    "--fail-commit-rate",
    "0.3",
    "--stall-rate",
    "0.1",
    "--stall-ms",
    "3000",
    "--fault-seed",
    "12",
];
/// How long `emulator-failures` lasts.
const FAILING_FOR: Duration = Duration::from_secs(20);
const DB: &str = "sbtest";
/// Offset of the first fault; the next come a minute apart.
const FIRST_FAULT: Duration = Duration::from_secs(30);
const FAULT_EVERY: Duration = Duration::from_secs(60);

/// The soak's settings.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// How long the load runs and faults are injected.
    pub(crate) duration: Duration,
    /// sysbench `--rate` (transactions per second).
    pub(crate) rate: u32,
    /// sysbench `--tables`.
    pub(crate) tables: u32,
    /// sysbench `--table-size`.
    pub(crate) table_size: u64,
    /// Where the JSON line is appended, if anywhere.
    pub(crate) record: Option<PathBuf>,
    /// The suite's seed (recorded).
    pub(crate) seed: u64,
    /// Write into the MaxCompute emulator (and fail it too) instead of the
    /// local warehouse.
    pub(crate) emulator: bool,
}

/// One injected fault.
#[derive(Debug)]
struct Fault {
    kind: &'static str,
    /// Seconds into the soak.
    at: f64,
    /// The newest committed source event must be at least this (Unix s)
    /// for the task to count as recovered.
    recovered_when: i64,
    /// Seconds from the fault to the first commit of a later event.
    recovery: Option<f64>,
    detail: String,
}

/// What one minute saw.
#[derive(Debug, Default)]
struct Minute {
    transactions: f64,
    fault: Option<usize>,
}

/// The lag sampled once a second in a task of its own, so that faults
/// which take a while to inject (a source restart) are sampled through.
struct Sampler {
    /// `(seconds into the soak, lag seconds)`.
    samples: Arc<Mutex<Vec<(f64, f64)>>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(state_dir: PathBuf, start: Instant, started_unix: f64) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let out = samples.clone();
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut warm = false;
            loop {
                tick.tick().await;
                let newest = sync_core::status::read(&state_dir).and_then(|p| p.last_event_unix);
                // From the first committed change of the load on: before
                // it, the newest event is the idle source's last one.
                warm = warm || newest.is_some_and(|t| t as f64 >= started_unix.floor());
                if warm && let Some(t) = newest {
                    let lag = (unix_now() - t as f64).max(0.0);
                    lock(&out).push((start.elapsed().as_secs_f64(), lag));
                }
            }
        });
        Self { samples, handle }
    }

    /// The lags sampled from `from` to `to` seconds into the soak.
    fn lags(&self, from: f64, to: f64) -> Vec<f64> {
        lock(&self.samples)
            .iter()
            .filter(|(at, _)| (from..to).contains(at))
            .map(|(_, lag)| *lag)
            .collect()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parses `20m`, `90s`, `1h`, `1h30m` or plain seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (e.g. 20m, 90s, 1h30m)");
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let (mut total, mut number) = (0u64, String::new());
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let unit = match ch {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The `q` quantile (0..=1) of `values` (nearest rank), NaN when empty.
pub(crate) fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// `git rev-parse --short HEAD`, marked when the sources differ from it.
fn commit() -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output();
    let Ok(out) = out else {
        return "unknown".into();
    };
    let head = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || head.is_empty() {
        return "unknown".into();
    }
    let clean = std::process::Command::new("git")
        .args(["diff", "--quiet", "HEAD", "--", "crates"])
        .status()
        .is_ok_and(|s| s.success());
    if clean {
        head
    } else {
        format!("{head} (with uncommitted changes)")
    }
}

/// The newest committed source event (Unix seconds) per `progress.json`.
fn last_event(task: &Task) -> Option<i64> {
    sync_core::status::read(&task.state_dir).and_then(|p| p.last_event_unix)
}

/// Runs the soak; Ok(true) when its verdict is a pass.
pub(crate) async fn run(mut ctx: Ctx, s: Settings) -> Result<bool> {
    // The commit the binaries were built from, before anything can change it.
    let commit = commit();
    let source = Source::start(&[]).await?;
    source
        .exec(&format!("CREATE DATABASE {DB}"))
        .await
        .context("creating the sbtest database")?;
    let load = Load {
        port: source.port(),
        db: DB.into(),
        tables: s.tables,
        table_size: s.table_size,
    };
    load.prepare().await?;
    ctx.say(format!(
        "private MariaDB on port {}; sysbench prepared {} tables × {} rows",
        source.port(),
        s.tables,
        s.table_size
    ));
    let mut emu = if s.emulator {
        let emu = Emu::start(&ctx, &[])?;
        ctx.say(format!("emulator at {}", emu.endpoint));
        Some(emu)
    } else {
        None
    };
    let dest = match &emu {
        Some(emu) => Dest::MaxCompute {
            endpoint: emu.endpoint.clone(),
            tunnel: emu.tunnel.clone(),
            project: "soak".into(),
        },
        None => Dest::Local(ctx.dir.join("warehouse")),
    };
    // The emulator's faults interleaved with the others, so that a short
    // soak meets both kinds.
    let mut kinds: Vec<&'static str> = FAULTS.to_vec();
    if s.emulator {
        kinds.insert(1, EMULATOR_FAULTS[1]);
        kinds.insert(3, EMULATOR_FAULTS[0]);
    }
    let mut spec = TaskSpec::new(&source, DB, dest);
    // A long run: commit units of a second's changes, not of 40 rows.
    spec.chunk_rows = 5000;
    spec.batch_rows = 5000;
    spec.flush_ms = 1000;
    let mut task = Task::new(&ctx, spec)?;
    let mut sup = Supervised::start(&mut task)?;
    crate::harness::wait_for("the incremental phase", Duration::from_secs(300), || {
        if let Some(e) = sup.check(&mut task)? {
            bail!("the task exited before the incremental phase: {e}");
        }
        Ok(task.phase() == "incremental")
    })
    .await?;
    ctx.say("full phase done; the task is in its incremental phase");

    let started_unix = unix_now();
    let start = Instant::now();
    let mut running = load.start(s.rate, 2, s.duration)?;
    let sampler = Sampler::start(task.state_dir.clone(), start, started_unix);
    ctx.say(format!(
        "sysbench oltp_write_only --rate={} --threads=2 for {} s; a fault every {} s from {} s on, in turn: {}",
        s.rate,
        s.duration.as_secs(),
        FAULT_EVERY.as_secs(),
        FIRST_FAULT.as_secs(),
        kinds.join(", ")
    ));
    let minutes = s.duration.as_secs().div_ceil(60) as usize;
    let mut per_minute: Vec<Minute> = (0..minutes).map(|_| Minute::default()).collect();
    let mut faults: Vec<Fault> = Vec::new();
    let mut exits: Vec<String> = Vec::new();
    let mut next_fault = FIRST_FAULT;
    let mut printed = 0usize;
    let mut tx_at_minute = 0.0;
    // When the emulator's failures of an `emulator-failures` end.
    let mut failing_until: Option<Instant> = None;
    while start.elapsed() < s.duration {
        if let Some(e) = emu.as_mut()
            && failing_until.is_some_and(|t| Instant::now() >= t)
        {
            failing_until = None;
            match e.restart(&[]).await {
                Ok(()) => ctx.say("emulator restarted without failures"),
                Err(err) => bail!("restarting the emulator: {err:#}"),
            }
        }
        if let Some(e) = sup.check(&mut task)? {
            ctx.say(format!("the task exited by itself (restarted): {e}"));
            exits.push(e);
        }
        running.check()?;
        let now = start.elapsed();
        let minute = ((now.as_secs() / 60) as usize).min(minutes - 1);
        let newest = last_event(&task);
        if let Some(f) = faults.last_mut()
            && f.recovery.is_none()
            && newest.is_some_and(|t| t >= f.recovered_when)
        {
            f.recovery = Some(now.as_secs_f64() - f.at);
        }
        while printed < minute {
            print_minute(
                &ctx,
                printed,
                &mut per_minute,
                &faults,
                &running.stats(),
                &sampler,
                &mut tx_at_minute,
            );
            printed += 1;
        }
        if now >= next_fault {
            next_fault += FAULT_EVERY;
            let kind = kinds[faults.len() % kinds.len()];
            let at = now.as_secs_f64();
            let mut to = Targets {
                source: &source,
                sup: &mut sup,
                task: &mut task,
                emu: emu.as_mut(),
            };
            let injected = inject(&mut ctx, kind, &mut to).await;
            if kind == "emulator-failures" && injected.is_ok() {
                failing_until = Some(Instant::now() + FAILING_FOR);
            }
            let detail = match injected {
                Ok(d) => d,
                Err(e) => format!("FAILED: {e:#}"),
            };
            ctx.say(format!("fault {}: {kind}: {detail}", faults.len() + 1));
            per_minute[minute].fault = Some(faults.len());
            faults.push(Fault {
                kind,
                at,
                recovered_when: unix_now().ceil() as i64,
                recovery: None,
                detail,
            });
            continue;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let load_stats = running.finish().await?;
    if let Some(e) = emu.as_mut()
        && failing_until.take().is_some()
    {
        e.restart(&[]).await?;
        ctx.say("emulator restarted without failures");
    }
    let load_end_unix = unix_now();
    while printed < minutes {
        print_minute(
            &ctx,
            printed,
            &mut per_minute,
            &faults,
            &load_stats,
            &sampler,
            &mut tx_at_minute,
        );
        printed += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    let lags = sampler.lags(0.0, seconds);
    drop(sampler);
    ctx.say(format!(
        "load over: {:.0} transactions in {seconds:.0} s ({:.1}/s; {} sysbench starts, {} ignored errors, {} reconnects)",
        load_stats.transactions(),
        load_stats.transactions() / seconds,
        load_stats.starts,
        load_stats.ignored_errors,
        load_stats.reconnects
    ));

    // The running task catches up with the last second of the load.
    let catch_start = Instant::now();
    let caught = crate::harness::wait_for("the task catching up", Duration::from_secs(600), || {
        if let Some(e) = sup.check(&mut task)? {
            ctx.say(format!("the task exited by itself (restarted): {e}"));
            exits.push(e);
        }
        if let Some(f) = faults.last_mut()
            && f.recovery.is_none()
            && last_event(&task).is_some_and(|t| t >= f.recovered_when)
        {
            f.recovery = Some(start.elapsed().as_secs_f64() - f.at);
        }
        Ok(last_event(&task).is_some_and(|t| t as f64 >= load_end_unix.floor() - 1.0))
    })
    .await;
    let catch_up = catch_start.elapsed().as_secs_f64();
    match &caught {
        Ok(()) => ctx.say(format!(
            "the running task caught up {catch_up:.1} s after the load"
        )),
        Err(e) => ctx.say(format!("{e:#}")),
    }
    let stopped = sup.stop().await?;
    ctx.say(format!(
        "stopped by SIGTERM: {}",
        stopped.map_or("-".into(), |s| s.to_string())
    ));
    let verify = match task.catch_up(3).await {
        Ok(_) => task.verify().await,
        Err(e) => Err(e),
    };
    match &verify {
        Ok(line) => ctx.say(format!("verify: {line}")),
        Err(e) => ctx.say(format!("{e:#}")),
    }
    let records = task.log_records().await?;
    ctx.say(format!(
        "t_log: {} records, {} held twice{}",
        records.total,
        records.doubled,
        if records.problems.is_empty() {
            String::new()
        } else {
            format!(" ({})", records.problems.join("; "))
        }
    ));

    let recoveries: Vec<f64> = faults.iter().filter_map(|f| f.recovery).collect();
    let mut by_kind: BTreeMap<&str, u32> = BTreeMap::new();
    for f in &faults {
        *by_kind.entry(f.kind).or_default() += 1;
    }
    let unrecovered: Vec<String> = faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.recovery.is_none() || f.detail.starts_with("FAILED"))
        .map(|(i, f)| format!("fault {} ({}): {}", i + 1, f.kind, f.detail))
        .collect();
    let mut problems = Vec::new();
    if let Err(e) = &verify {
        problems.push(format!("verify: {}", first_line(&format!("{e:#}"))));
    }
    if records.doubled > 0 {
        problems.push(format!("{} t_log records held twice", records.doubled));
    }
    if records.total == 0 {
        problems.push("no change reached t_log".into());
    }
    if let Err(e) = &caught {
        problems.push(format!("{e:#}"));
    }
    problems.extend(unrecovered.iter().cloned());
    problems.extend(
        exits
            .iter()
            .map(|e| format!("the task exited by itself: {e}")),
    );
    let pass = problems.is_empty();
    let line = serde_json::json!({
        "kind": "soak",
        "date": chrono::DateTime::from_timestamp(started_unix as i64, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        "commit": commit,
        "seed": s.seed,
        "destination": if s.emulator { "emulator" } else { "local" },
        "duration_s": seconds.round(),
        "tables": s.tables,
        "table_size": s.table_size,
        "rate_target": s.rate,
        "rate_achieved": round2(load_stats.transactions() / seconds),
        "transactions": load_stats.transactions().round(),
        "load_restarts": load_stats.starts.saturating_sub(1),
        "load_errors_retried": load_stats.ignored_errors,
        "changes": records.total,
        "faults": by_kind,
        "faults_total": faults.len(),
        "recoveries": recoveries.len(),
        "recovery_p50_s": round2(quantile(&recoveries, 0.5)),
        "recovery_max_s": round2(quantile(&recoveries, 1.0)),
        "unexpected_exits": exits.len(),
        "lag_samples": lags.len(),
        "lag_p50_s": round2(quantile(&lags, 0.5)),
        "lag_p99_s": round2(quantile(&lags, 0.99)),
        "lag_max_s": round2(quantile(&lags, 1.0)),
        "catch_up_s": round2(catch_up),
        "verify": match &verify {
            Ok(l) => l.clone(),
            Err(e) => first_line(&format!("{e:#}")),
        },
        "verify_ok": verify.is_ok(),
        "duplicates": records.doubled,
        "verdict": if pass { "pass" } else { "fail" },
        "problems": problems,
    });
    let text = serde_json::to_string(&line)?;
    println!("   {text}");
    if let Some(path) = &s.record {
        append(path, &text)?;
        ctx.say(format!("recorded in {}", path.display()));
    }
    ctx.say(format!(
        "verdict: {} — {} faults ({}), {} recovered (p50 {:.1} s, max {:.1} s), lag p50 {:.1} s max {:.1} s, {} changes in t_log, {}",
        if pass { "PASS" } else { "FAIL" },
        faults.len(),
        by_kind
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        recoveries.len(),
        quantile(&recoveries, 0.5),
        quantile(&recoveries, 1.0),
        quantile(&lags, 0.5),
        quantile(&lags, 1.0),
        records.total,
        if pass {
            "verify equal, no record twice".to_owned()
        } else {
            problems.join("; ")
        }
    ));
    Ok(pass)
}

/// What the faults act on.
struct Targets<'a> {
    source: &'a Source,
    sup: &'a mut Supervised,
    task: &'a mut Task,
    emu: Option<&'a mut Emu>,
}

/// Injects one fault of `kind`; a line of what it did.
async fn inject(ctx: &mut Ctx, kind: &str, to: &mut Targets<'_>) -> Result<String> {
    let Targets {
        source,
        sup,
        task,
        emu,
    } = to;
    let source: &Source = source;
    match kind {
        "sigkill" => {
            let phase = task.phase();
            sup.kill_and_restart(task)?;
            Ok(format!(
                "sync-cli run SIGKILLed (checkpoint phase {phase}) and started again"
            ))
        }
        "kill-connections" => {
            let took = Instant::now();
            let (dump, again) = faults::kill_dump(ctx, source, sup, task).await?;
            Ok(format!(
                "KILL CONNECTION {dump} (the binlog dump); dumping again on {again} after {:.1} s",
                took.elapsed().as_secs_f64()
            ))
        }
        "source-restart" | "source-crash" => {
            let how = if kind == "source-crash" {
                Outage::Crash
            } else {
                Outage::Shutdown
            };
            let down = ctx.millis(1000, 3000);
            let run = sup
                .run()
                .ok_or_else(|| anyhow!("no run to restart the source under"))?;
            let away = faults::restart_source(ctx, source, run, how, down).await?;
            Ok(format!(
                "source {} and started again ({away:.1} s away); the binlog stream resumed",
                how.name()
            ))
        }
        "emulator-restart" | "emulator-failures" => {
            let emu = emu
                .as_deref_mut()
                .ok_or_else(|| anyhow!("{kind} without the emulator"))?;
            if kind == "emulator-failures" {
                emu.restart(&EMULATOR_FAILING).await?;
                return Ok(format!(
                    "emulator restarted with {} for {} s",
                    EMULATOR_FAILING.join(" "),
                    FAILING_FOR.as_secs()
                ));
            }
            emu.kill()?;
            let down = ctx.millis(1000, 3000);
            tokio::time::sleep(down).await;
            emu.restart(&[]).await?;
            Ok(format!(
                "emulator SIGKILLed and restarted over its data after {:.1} s",
                down.as_secs_f64()
            ))
        }
        other => bail!("unknown fault {other}"),
    }
}

fn print_minute(
    ctx: &Ctx,
    i: usize,
    minutes: &mut [Minute],
    faults: &[Fault],
    load: &LoadStats,
    sampler: &Sampler,
    tx_at_minute: &mut f64,
) {
    let lags = sampler.lags(i as f64 * 60.0, (i + 1) as f64 * 60.0);
    let m = &mut minutes[i];
    m.transactions = load.transactions() - *tx_at_minute;
    *tx_at_minute = load.transactions();
    let fault = match m.fault.map(|f| &faults[f]) {
        Some(f) => match f.recovery {
            Some(r) => format!("{}, recovered in {r:.1} s", f.kind),
            None => format!("{}, not recovered yet", f.kind),
        },
        None => "no fault".into(),
    };
    ctx.say(format!(
        "minute {:2}: {fault}; load {:.1} tx/s; lag p50 {:.1} s, max {:.1} s ({} samples)",
        i + 1,
        m.transactions / 60.0,
        quantile(&lags, 0.5),
        quantile(&lags, 1.0),
        lags.len()
    ));
}

fn round2(v: f64) -> Option<f64> {
    v.is_finite().then(|| (v * 100.0).round() / 100.0)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

fn append(path: &std::path::Path, line: &str) -> Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{line}").with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("20m"), Ok(Duration::from_secs(1200)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "m", "20x", "0m", "5m3", "-1m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v = [3.0, 1.0, 2.0, 10.0];
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert_eq!(quantile(&v, 1.0), 10.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
