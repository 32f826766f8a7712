//! `BENCHMARKS.md` and its charts from the JSON lines of one run
//! ([`crate::results`]): a section per bench with its method, a table of
//! every figure, the same-run ratios and a chart; then peak memory and the
//! goals; then the records of the long runs kept beside the results
//! ([`crate::records`]): the soak and the fuzz runs.

use crate::chart::{self, Axes, Bar, Series};
use crate::records::{Fuzz, Records, Soak};
use crate::results::{Figure, Line, Meta, Ratio};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// What the report says about the run besides the figures.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// Day of the run, `YYYY-MM-DD`.
    pub date: String,
    /// Git commit the binaries were built from.
    pub commit: String,
    /// The command that produced the results, e.g. `scripts/bench`.
    pub command: String,
    /// Folder of the SVG files, relative to `BENCHMARKS.md`.
    pub charts_dir: String,
}

/// The generated document and charts.
#[derive(Clone, Debug)]
pub struct Report {
    /// `BENCHMARKS.md`.
    pub markdown: String,
    /// `(file name, SVG text)` of every chart.
    pub charts: Vec<(String, String)>,
}

enum Kind {
    /// One bar per figure of `metric`.
    Bars {
        metric: &'static str,
        unit: &'static str,
    },
    /// One line per tool and setting (and metric) over the swept value.
    Lines {
        metrics: &'static [&'static str],
        x_label: &'static str,
        y_label: &'static str,
        log_x: bool,
    },
}

struct Spec {
    id: &'static str,
    title: &'static str,
    method: &'static str,
    kind: Kind,
}

const SPECS: &[Spec] = &[
    Spec {
        id: "binlog_decode",
        title: "1. Binlog decode",
        method: "One binlog file (its size is in the case line; a 19-column `orders` table: batched \
INSERTs, range and single-row UPDATEs, range DELETEs; FULL row images) is decoded completely: every event, every row \
image, every value. `binlog-parser`, `mysql_common` (feature `binlog`) and \
`mysql-binlog-connector-rust` run in one process taking turns (best of 3 rounds each), so a change of \
machine load hits all of them alike. `mariadb-binlog -v --base64-output=decode-rows FILE > /dev/null` \
is the same file through MariaDB's own tool (best of 2 runs; it also formats text). Peak memory comes \
from a separate child process per decoder; the Rust decoders hold the whole file in memory (its size \
is part of their peak), `mariadb-binlog` streams it.",
        kind: Kind::Bars {
            metric: "mb_per_s",
            unit: "MB/s",
        },
    },
    Spec {
        id: "full_sync",
        title: "2. Full sync",
        method: "`sync-cli run` with `types = [\"schema\", \"full\"]` of a 22-column table of most MySQL types \
into the local warehouse (Parquet files) and into `odps-emulator` (the MaxCompute emulator, Tunnel \
uploads in Arrow), at N and at 1 reader connections, against `mariadb-dump --quick \
--single-transaction` of the same table to /dev/null (one connection: it has no parallel mode) and \
`mydumper --trx-consistency-only -r 50000` at N and 1 threads (it writes SQL files to disk). Each \
time is the whole process (connect, prechecks, snapshot, last commit), fastest of the runs; every \
run of ours checks that every row landed.",
        kind: Kind::Bars {
            metric: "rows_per_s",
            unit: "rows/s",
        },
    },
    Spec {
        id: "tunnel_upload",
        title: "2b. Tunnel upload",
        method: "The same 1,000,000 rows (`id BIGINT, name STRING, amount DOUBLE, ts TIMESTAMP`; their size is \
that of the data as one Arrow IPC stream) uploaded into one partition of a table of `odps-emulator` \
over loopback by `odps-tunnel`'s Arrow block writer (8 MB blocks, 4 in flight) and by pyodps's Arrow \
writer (`open_arrow_writer`, one block), taking turns against the same emulator. The time runs from \
opening the upload session to the end of its commit; median of 3 runs after one warm-up each. The \
emulator decodes, checks and stores every block on the same 2 cores, so both writers pay for it.",
        kind: Kind::Bars {
            metric: "mb_per_s",
            unit: "MB/s",
        },
    },
    Spec {
        id: "catch_up",
        title: "3. Incremental catch-up",
        method: "A task that has finished its full phase is stopped; a backlog of row changes (40 % inserts, \
40 % updates, 20 % deletes, in multi-row statements) is written to the source; then `sync-cli run \
--exit-when-caught-up` is timed from start until every change is in committed `t_log` files of the \
local warehouse, against `mariadb-binlog --read-from-remote-server -v --base64-output=decode-rows` of \
the same binlog range to /dev/null. `sync-cli verify` then checks (outside the timing) that the \
merged destination equals the source.",
        kind: Kind::Bars {
            metric: "changes_per_s",
            unit: "row changes/s",
        },
    },
    Spec {
        id: "lag",
        title: "4. Steady-state lag",
        method: "`sysbench oltp_write_only` runs at fixed rates (`--rate`) against sbtest tables that a \
running `sync-cli run` (schema, full, incremental; local warehouse; `batch_rows = 20000`) already \
caught up with, once with the default `flush_interval_ms = 1000` (a batch commits at the latest a \
second after its first record, so the lag is spread over 0–1 s by design) and once with a fresh task \
at `flush_interval_ms = 100`. Besides the load, the bench inserts a heartbeat \
row every 50 ms into a table of the same task and notes when the source acknowledged its commit. \
The row lands in a `t_log` file of some commit unit; that unit's commit marker (`_commits/<unit>`, \
written last) carries the sink's commit time as its modification time. Lag = marker time − source \
commit time, p50/p99/max over all heartbeats of a rate. The floor is \
`mariadb-binlog --read-from-remote-server --stop-never -v` (line-buffered) streaming the same server: \
the time its decoded output shows the heartbeat row, i.e. what any replica pays to receive the \
event. Source, sink and the bench share one clock; the marker's time has the file system's \
granularity (a few ms). The task's own view (`lag_seconds` in `progress.json`, `sync_lag_seconds` at \
`/metrics`) uses the binlog event time, which has one-second resolution, so it is not used here.",
        kind: Kind::Lines {
            metrics: &["p50_ms", "p99_ms"],
            x_label: "sysbench --rate (transactions/s)",
            y_label: "lag (ms)",
            log_x: false,
        },
    },
    Spec {
        id: "sweep_tables",
        title: "5a. Sweep: table count (full sync)",
        method: "The same total number of 22-column rows spread over 1, 10 and 100 tables of one database; \
`sync-cli run` (schema, full, incremental; N connections; local warehouse) against `mariadb-dump` of \
the database and `mydumper` with N threads.",
        kind: Kind::Lines {
            metrics: &["rows_per_s"],
            x_label: "tables",
            y_label: "rows/s",
            log_x: true,
        },
    },
    Spec {
        id: "sweep_tables_catch_up",
        title: "5b. Sweep: table count (catch-up)",
        method: "After 5a, every row of every table is updated once (one UPDATE per table and 50,000 \
rows), and the task catches up (`t_log` gets the before and after image of each); \
against `mariadb-binlog --read-from-remote-server -v` over the same range.",
        kind: Kind::Lines {
            metrics: &["changes_per_s"],
            x_label: "tables",
            y_label: "row changes/s",
            log_x: true,
        },
    },
    Spec {
        id: "sweep_width",
        title: "5c. Sweep: row width (full sync)",
        method: "A table of `id BIGINT, a INT, b BIGINT, payload VARCHAR` with payloads of 16, 256 and 2,048 \
bytes of hex text per row, same row count; full sync as in 5a. MB/s counts the payload and the \
numbers as stored in the source (8 + 4 + 8 + payload bytes per row).",
        kind: Kind::Lines {
            metrics: &["rows_per_s"],
            x_label: "payload bytes per row",
            y_label: "rows/s",
            log_x: true,
        },
    },
    Spec {
        id: "sweep_width_catch_up",
        title: "5d. Sweep: row width (catch-up)",
        method: "After 5c, every row is updated once (`a = a + 1`, so both images carry the payload); \
catch-up as in 5b.",
        kind: Kind::Lines {
            metrics: &["changes_per_s"],
            x_label: "payload bytes per row",
            y_label: "row changes/s",
            log_x: true,
        },
    },
    Spec {
        id: "sweep_txn",
        title: "5e. Sweep: transaction size (catch-up)",
        method: "A backlog of inserts into a narrow table (`id`, two integers, a 64-byte string) committed \
in transactions of 1, 100 and 10,000 rows each (a server-side loop of `INSERT … SELECT` under \
autocommit); catch-up as in 5b.",
        kind: Kind::Lines {
            metrics: &["changes_per_s"],
            x_label: "rows per transaction",
            y_label: "row changes/s",
            log_x: true,
        },
    },
];

/// Columns of the tables, in this order; other metrics follow by name.
const METRICS: &[(&str, &str)] = &[
    ("achieved_tps", "achieved tx/s"),
    ("rows", "rows"),
    ("changes", "row changes"),
    ("input_mb", "input MB"),
    ("seconds", "time s"),
    ("mb_per_s", "MB/s"),
    ("row_images_per_s", "row images/s"),
    ("rows_per_s", "rows/s"),
    ("changes_per_s", "row changes/s"),
    ("samples", "samples"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("max_ms", "max ms"),
    ("peak_rss_mb", "peak RSS MB"),
];

/// The catch-up goal, row changes per second.
const CATCH_UP_GOAL: f64 = 500_000.0;
/// The Tunnel upload goal, odps-tunnel ÷ pyodps.
const UPLOAD_GOAL: f64 = 2.0;
/// The memory goal, MB.
const MEMORY_GOAL_MB: f64 = 500.0;

/// Builds the report of `lines` and the long runs' `records`.
pub fn build(lines: &[Line], info: &RunInfo, records: &Records) -> Report {
    let figures: Vec<&Figure> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Figure(f) => Some(f),
            _ => None,
        })
        .collect();
    let ratios: Vec<&Ratio> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Ratio(r) => Some(r),
            _ => None,
        })
        .collect();
    let metas: Vec<&Meta> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Meta(m) => Some(m),
            _ => None,
        })
        .collect();
    let mut md = String::new();
    let mut charts = Vec::new();
    header(&mut md, info, &metas);
    goals(&mut md, &figures, &ratios);
    for spec in SPECS {
        let fs: Vec<&Figure> = figures
            .iter()
            .copied()
            .filter(|f| f.section == spec.id)
            .collect();
        if fs.is_empty() {
            continue;
        }
        let _ = writeln!(md, "## {}\n\n{}\n", spec.title, spec.method);
        let runs: BTreeSet<&str> = fs.iter().filter_map(|f| f.run.as_deref()).collect();
        if !runs.is_empty() {
            let runs: Vec<&str> = runs.into_iter().collect();
            let _ = writeln!(md, "Measured by the run of {}.\n", runs.join("; "));
        }
        table(&mut md, &fs);
        let rs: Vec<&&Ratio> = ratios.iter().filter(|r| r.section == spec.id).collect();
        if !rs.is_empty() {
            md.push_str("Same-run ratios:\n\n");
            for r in rs {
                let _ = writeln!(md, "- {}: **{:.2}×**", r.label, r.value);
            }
            md.push('\n');
        }
        let name = format!("{}.svg", spec.id);
        let svg = match spec.kind {
            Kind::Bars { metric, unit } => bars(spec.title, metric, unit, &fs),
            Kind::Lines {
                metrics,
                x_label,
                y_label,
                log_x,
            } => lines_chart(spec.title, metrics, x_label, y_label, log_x, &fs),
        };
        let _ = writeln!(
            md,
            "![{}]({}/{name})\n",
            spec.title,
            info.charts_dir.trim_end_matches('/')
        );
        charts.push((name, svg));
    }
    memory(&mut md, &figures, info, &mut charts);
    soak(&mut md, &records.soak);
    fuzzing(&mut md, &records.fuzz);
    if let Some(notes) = &records.notes {
        let _ = writeln!(
            md,
            "## 9. Profile notes\n\nWhat `perf` showed in the cases above and what each change \
             did, from `benches/results/notes.md` (written by hand).\n\n{notes}"
        );
    }
    Report {
        markdown: md,
        charts,
    }
}

fn header(md: &mut String, info: &RunInfo, metas: &[&Meta]) {
    md.push_str("# Benchmarks\n\n");
    let _ = writeln!(
        md,
        "Generated by `{}` on {} from commit `{}` (`bench-report` writes this file from the \
         JSON lines the benches append; do not edit by hand).\n",
        info.command, info.date, info.commit
    );
    let machines: BTreeSet<&str> = metas.iter().map(|m| m.machine.as_str()).collect();
    for m in machines {
        let _ = writeln!(md, "- {m}");
    }
    for m in metas {
        if !m.settings.is_empty() {
            match &m.run {
                Some(run) => {
                    let _ = writeln!(md, "- `{}` ({run}): {}", m.bench, m.settings);
                }
                None => {
                    let _ = writeln!(md, "- `{}`: {}", m.bench, m.settings);
                }
            }
        }
    }
    let runs: BTreeSet<&str> = metas.iter().filter_map(|m| m.run.as_deref()).collect();
    if runs.len() > 1 {
        md.push_str(
            "\nThis report keeps the sections of an earlier run that the last run (`scripts/bench \
             --only`) did not measure again; each section names the run that measured it, and its \
             ratios compare figures of that one run.\n",
        );
    }
    md.push_str(
        "\n**Noise.** This machine has 2 cores, which the source server, the tool under test and its peer \
         share, and it may carry other load, so absolute figures move by tens of percent between runs. \
         Compare each figure with its peer of the same run (the ratios), not with other machines. \
         Every peer runs on the same data, against the same private MariaDB (own datadir and port, \
         started by the bench), in the same run.\n\n\
         Reproduce: `scripts/bench` (about 30–40 minutes; installs `mydumper` and `sysbench` with \
         apt-get when missing), or `scripts/bench --quick` for small sizes. The benches can also run \
         one by one (`cargo bench -p sync-benches --bench NAME`); their doc comments list their \
         environment variables.\n\n",
    );
}

fn goals(md: &mut String, figures: &[&Figure], ratios: &[&Ratio]) {
    md.push_str("## Goals\n\n| goal | figure (and its run) | met |\n|---|---|---|\n");
    let run = |r: &Option<String>| r.as_ref().map_or(String::new(), |r| format!(" ({r})"));
    for r in ratios
        .iter()
        .filter(|r| r.goal.as_deref() == Some("full_vs_dump"))
    {
        let _ = writeln!(
            md,
            "| full sync at least as fast as mariadb-dump (rows/s) | {}: {:.2}×{} | {} |",
            r.label,
            r.value,
            run(&r.run),
            yes(r.value >= 1.0)
        );
    }
    for r in ratios
        .iter()
        .filter(|r| r.goal.as_deref() == Some("upload_vs_pyodps"))
    {
        let _ = writeln!(
            md,
            "| Tunnel Arrow upload at least 2× pyodps's Arrow writer (MB/s) | {}: {:.2}×{} | {} |",
            r.label,
            r.value,
            run(&r.run),
            yes(r.value >= UPLOAD_GOAL)
        );
    }
    // Every sweep case against its best peer of the same run.
    for (goal, text) in [
        (
            "full_vs_best_peer",
            "full sync at least as fast as the best peer (rows/s), every sweep case",
        ),
        (
            "catch_up_vs_binlog",
            "catch-up at least as fast as mariadb-binlog (row changes/s), every sweep case",
        ),
    ] {
        for r in ratios.iter().filter(|r| r.goal.as_deref() == Some(goal)) {
            let _ = writeln!(
                md,
                "| {text} | {}: {:.2}×{} | {} |",
                r.label,
                r.value,
                run(&r.run),
                yes(r.value >= 1.0)
            );
        }
    }
    for f in figures.iter().filter(|f| f.section == "catch_up" && f.ours) {
        if let Some(v) = f.metrics.get("changes_per_s") {
            let _ = writeln!(
                md,
                "| catch-up ≥ 500,000 row changes/s | {} ({}): {} row changes/s{} | {} |",
                f.tool,
                f.case,
                thousands(*v),
                run(&f.run),
                yes(*v >= CATCH_UP_GOAL)
            );
        }
    }
    let worst = figures
        .iter()
        .filter(|f| f.ours)
        .filter_map(|f| f.metrics.get("peak_rss_mb").map(|m| (*m, f)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((mb, f)) = worst {
        let _ = writeln!(
            md,
            "| peak memory < 500 MB | highest of ours: {mb:.0} MB ({}, {}){} | {} |",
            f.section,
            label(f),
            run(&f.run),
            yes(mb < MEMORY_GOAL_MB)
        );
    }
    md.push('\n');
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

fn table(md: &mut String, fs: &[&Figure]) {
    let cases: BTreeSet<&str> = fs.iter().map(|f| f.case.as_str()).collect();
    let with_case = cases.len() > 1;
    let present: BTreeSet<&str> = fs
        .iter()
        .flat_map(|f| f.metrics.keys().map(String::as_str))
        .collect();
    let mut cols: Vec<(&str, String)> = METRICS
        .iter()
        .filter(|(k, _)| present.contains(k))
        .map(|(k, l)| (*k, (*l).to_string()))
        .collect();
    for k in &present {
        if !METRICS.iter().any(|(m, _)| m == k) {
            cols.push((k, (*k).to_string()));
        }
    }
    let mut head = String::from("|");
    let mut rule = String::from("|");
    if with_case {
        head.push_str(" case |");
        rule.push_str("---|");
    }
    head.push_str(" tool | setting |");
    rule.push_str("---|---|");
    for (_, label) in &cols {
        let _ = write!(head, " {label} |");
        rule.push_str("---:|");
    }
    if !with_case && let Some(c) = cases.first() {
        let _ = writeln!(md, "Case: {c}.\n");
    }
    let _ = writeln!(md, "{head}\n{rule}");
    for f in fs {
        let mut row = String::from("|");
        if with_case {
            let _ = write!(row, " {} |", f.case);
        }
        if f.ours {
            let _ = write!(row, " **{}** | {} |", f.tool, f.setting);
        } else {
            let _ = write!(row, " {} | {} |", f.tool, f.setting);
        }
        for (k, _) in &cols {
            match f.metrics.get(*k) {
                Some(v) => {
                    let _ = write!(row, " {} |", cell(k, *v));
                }
                None => row.push_str(" |"),
            }
        }
        let _ = writeln!(md, "{row}");
    }
    md.push('\n');
}

/// A table cell: thousands separators for big numbers, a fitting number
/// of decimals for small ones.
fn cell(metric: &str, v: f64) -> String {
    match metric {
        "seconds" => format!("{v:.2}"),
        "input_mb" | "peak_rss_mb" | "mb_per_s" | "p50_ms" | "p99_ms" | "max_ms" => {
            if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        }
        _ => thousands(v),
    }
}

/// `v` rounded, with `,` between thousands.
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn label(f: &Figure) -> String {
    if f.setting.is_empty() {
        f.tool.clone()
    } else {
        format!("{} ({})", f.tool, f.setting)
    }
}

fn bars(title: &str, metric: &str, unit: &str, fs: &[&Figure]) -> String {
    let bars: Vec<Bar> = fs
        .iter()
        .filter_map(|f| {
            f.metrics.get(metric).map(|v| Bar {
                label: label(f),
                value: *v,
                ours: f.ours,
            })
        })
        .collect();
    chart::bar_chart(title, unit, &bars)
}

fn lines_chart(
    title: &str,
    metrics: &[&str],
    x_label: &str,
    y_label: &str,
    log_x: bool,
    fs: &[&Figure],
) -> String {
    let mut series: Vec<Series> = Vec::new();
    for f in fs {
        let Some(x) = f.x else { continue };
        for m in metrics {
            let Some(y) = f.metrics.get(*m) else { continue };
            let name = if metrics.len() > 1 {
                format!("{} {}", label(f), m.trim_end_matches("_ms"))
            } else {
                label(f)
            };
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((x, *y)),
                None => series.push(Series {
                    name,
                    points: vec![(x, *y)],
                    ours: f.ours,
                }),
            }
        }
    }
    let axes = Axes {
        x_label: x_label.into(),
        y_label: y_label.into(),
        log_x,
    };
    chart::line_chart(title, &axes, &series)
}

fn memory(
    md: &mut String,
    figures: &[&Figure],
    info: &RunInfo,
    charts: &mut Vec<(String, String)>,
) {
    let main = ["binlog_decode", "full_sync", "catch_up", "lag"];
    let with_peak: Vec<&Figure> = figures
        .iter()
        .copied()
        .filter(|f| main.contains(&f.section.as_str()) && f.metrics.contains_key("peak_rss_mb"))
        .collect();
    if with_peak.is_empty() {
        return;
    }
    md.push_str(
        "## 6. Peak memory\n\nPeak resident set size (Linux `VmHWM`, sampled every 20 ms) of each \
         process above; the sweeps' tables list theirs too. For the lag runs it is the peak of the \
         long-running `sync-cli run` up to the end of that rate.\n\n",
    );
    let bars: Vec<Bar> = with_peak
        .iter()
        .map(|f| Bar {
            label: format!("{}: {}", short_section(&f.section), label(f)),
            value: f.metrics["peak_rss_mb"],
            ours: f.ours,
        })
        .collect();
    charts.push((
        "peak_memory.svg".into(),
        chart::bar_chart("Peak memory", "MB", &bars),
    ));
    let _ = writeln!(
        md,
        "![Peak memory]({}/peak_memory.svg)\n",
        info.charts_dir.trim_end_matches('/')
    );
}

fn short_section(id: &str) -> &str {
    match id {
        "binlog_decode" => "decode",
        "full_sync" => "full",
        "catch_up" => "catch-up",
        other => other,
    }
}

/// Seconds with one decimal, `–` when unknown.
fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}"))
}

fn soak(md: &mut String, runs: &[Soak]) {
    if runs.is_empty() {
        return;
    }
    md.push_str(
        "## 7. Soak\n\n`sync-chaos --soak` (`scripts/chaos --soak 20m --record \
         benches/results/soak.jsonl`): a private MariaDB, a task (schema, full, incremental; local \
         warehouse; debug build) left running under `sysbench oltp_write_only` at a fixed rate, and \
         every minute one fault in turn: `sync-cli run` SIGKILLed and started again (`sigkill`), \
         server-side `KILL CONNECTION` of its binlog dump (`kill-connections`), the source shut \
         down and started (`source-restart`), the source SIGKILLed and started (`source-crash`); with \
         `--soak-emulator` the task writes into the MaxCompute emulator, which is also SIGKILLed and \
         restarted (`emulator-restart`) and fails and stalls uploads and commits for 20 s \
         (`emulator-failures`). A fault counts as recovered when the task commits a source event newer than the fault. Lag \
         is the age of the newest committed source event (`last_event_unix` in `progress.json`, \
         as `sync-cli status` shows it; one-second resolution), sampled every second, faults \
         included. At the end the load stops, the task catches up, `sync-cli verify` must find \
         every table equal and no `t_log` record may be held twice. One row per run, from \
         `benches/results/soak.jsonl`.\n\n\
         | date | commit | load | tx/s achieved | t_log changes | faults | recovered (p50 / max s) \
         | lag p50 / p99 / max s | catch-up s | verify | records twice | verdict |\n\
         |---|---|---|---:|---:|---|---|---|---:|---|---:|---|\n",
    );
    for r in runs {
        let faults: u32 = r.faults.values().sum();
        let kinds = r
            .faults
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let exits = if r.unexpected_exits > 0 {
            format!(", {} exits", r.unexpected_exits)
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "| {} | `{}` | {:.0} min at {} tx/s, {} tables × {} rows → {} | {} | {} | {faults}: {kinds} | \
             {}/{faults} ({} / {}){exits} | {} / {} / {} | {} | {} | {} | {} |",
            r.date,
            r.commit,
            r.duration_s / 60.0,
            thousands(r.rate_target),
            r.tables,
            thousands(r.table_size as f64),
            if r.destination.is_empty() {
                "local"
            } else {
                &r.destination
            },
            r.rate_achieved.map_or("–".into(), |v| format!("{v:.1}")),
            thousands(r.changes as f64),
            r.recoveries,
            secs(r.recovery_p50_s),
            secs(r.recovery_max_s),
            secs(r.lag_p50_s),
            secs(r.lag_p99_s),
            secs(r.lag_max_s),
            secs(r.catch_up_s),
            r.verify,
            r.duplicates,
            if r.verdict == "pass" {
                "pass".to_owned()
            } else {
                format!("**{}**", r.verdict)
            }
        );
    }
    md.push('\n');
}

fn fuzzing(md: &mut String, runs: &[Fuzz]) {
    if runs.is_empty() {
        return;
    }
    md.push_str(
        "## 8. Fuzzing\n\n`scripts/fuzz-long MINUTES`: each cargo-fuzz target of `fuzz/` \
         (libFuzzer, nightly, cargo-fuzz's default build: optimised with debug assertions and \
         overflow checks) for MINUTES under `nice -n 19`, on the corpus seeded from the decoder's \
         test binlogs plus what earlier runs kept. Coverage and features are libFuzzer's `cov` and \
         `ft` at the end; a crash is any input libFuzzer left in `fuzz/artifacts/`. One row per \
         target and run, from `benches/results/fuzz.jsonl`.\n\n\
         | date | commit | target | time s | executions | exec/s | corpus files | corpus KB \
         | coverage | features | crashes |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let crashes = if r.crashes == 0 {
            "0".to_owned()
        } else {
            format!("**{}**", r.crashes)
        };
        let _ = writeln!(
            md,
            "| {} | `{}` | `{}` | {:.0} | {} | {} | {} | {} | {} | {} | {crashes} |",
            r.date,
            r.commit,
            r.target,
            r.seconds,
            thousands(r.executions as f64),
            thousands(r.execs_per_s),
            thousands(r.corpus_files as f64),
            thousands(r.corpus_bytes as f64 / 1024.0),
            thousands(r.coverage as f64),
            thousands(r.features as f64),
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(section: &str, tool: &str, setting: &str, ours: bool) -> Figure {
        Figure::new(section, "1,000 rows", tool, setting, ours)
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-12_345.0), "-12,345");
    }

    #[test]
    fn report_has_sections_tables_ratios_goals_and_charts() {
        let lines = vec![
            Line::Meta(Meta {
                bench: "sync_vs_peers".into(),
                machine: "machine: X, 2 cores".into(),
                settings: "SYNC_BENCH_ROWS=1000".into(),
                run: None,
            }),
            Line::Figure(
                fig(
                    "full_sync",
                    "sync-cli run → local warehouse",
                    "4 connections",
                    true,
                )
                .metric("rows_per_s", 120_000.0)
                .metric("seconds", 8.25)
                .metric("peak_rss_mb", 612.0),
            ),
            Line::Figure(
                fig("full_sync", "mariadb-dump", "1 connection", false)
                    .metric("rows_per_s", 100_000.0)
                    .metric("peak_rss_mb", 5.5),
            ),
            Line::Ratio(Ratio {
                section: "full_sync".into(),
                label: "sync-cli (4 connections) ÷ mariadb-dump".into(),
                value: 1.2,
                goal: Some("full_vs_dump".into()),
                run: None,
            }),
            Line::Figure(
                fig("catch_up", "sync-cli run → t_log", "", true).metric("changes_per_s", 90_000.0),
            ),
            Line::Ratio(Ratio {
                section: "sweep_txn".into(),
                label: "100 rows per transaction: sync-cli ÷ mariadb-binlog".into(),
                value: 0.8,
                goal: Some("catch_up_vs_binlog".into()),
                run: None,
            }),
            Line::Figure(
                fig("lag", "sync-cli", "", true)
                    .x(100.0)
                    .metric("p50_ms", 500.0)
                    .metric("p99_ms", 990.0),
            ),
            Line::Figure(
                fig("lag", "sync-cli", "", true)
                    .x(500.0)
                    .metric("p50_ms", 520.0)
                    .metric("p99_ms", 1010.0),
            ),
        ];
        let info = RunInfo {
            date: "2026-01-02".into(),
            commit: "abc1234".into(),
            command: "scripts/bench".into(),
            charts_dir: "benches/charts/".into(),
        };
        let r = build(&lines, &info, &Records::default());
        let md = &r.markdown;
        assert!(md.contains("on 2026-01-02 from commit `abc1234`"), "{md}");
        assert!(md.contains("- machine: X, 2 cores\n- `sync_vs_peers`: SYNC_BENCH_ROWS=1000"));
        assert!(md.contains("## 2. Full sync"));
        assert!(
            md.contains("Case: 1,000 rows.\n\n| tool | setting | time s | rows/s | peak RSS MB |")
        );
        assert!(md.contains(
            "| **sync-cli run → local warehouse** | 4 connections | 8.25 | 120,000 | 612 |"
        ));
        assert!(
            md.contains("| mariadb-dump | 1 connection | | 100,000 | 5.5 |"),
            "{md}"
        );
        assert!(md.contains("- sync-cli (4 connections) ÷ mariadb-dump: **1.20×**"));
        assert!(md.contains(": 1.20× | yes |"));
        assert!(md.contains("90,000 row changes/s | **no** |"));
        assert!(
            md.contains("| catch-up at least as fast as mariadb-binlog (row changes/s), every sweep case | 100 rows per transaction: sync-cli ÷ mariadb-binlog: 0.80× | **no** |"),
            "{md}"
        );
        assert!(md.contains("highest of ours: 612 MB (full_sync, sync-cli run → local warehouse (4 connections)) | **no** |"));
        assert!(md.contains("![2. Full sync](benches/charts/full_sync.svg)"));
        assert!(
            !md.contains("## 1. Binlog decode"),
            "sections without figures are left out"
        );
        assert!(!md.contains("## 7. Soak") && !md.contains("## 8. Fuzzing"));
        let names: Vec<&str> = r.charts.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "full_sync.svg",
                "catch_up.svg",
                "lag.svg",
                "peak_memory.svg"
            ]
        );
        let lag = &r.charts[2].1;
        assert!(
            lag.contains(">sync-cli p50<") && lag.contains(">sync-cli p99<"),
            "{lag}"
        );
    }

    #[test]
    fn profile_notes_render_as_the_last_section() {
        let records = Records {
            notes: Some("- one change, and why".into()),
            ..Records::default()
        };
        let info = RunInfo {
            date: "2026-01-02".into(),
            commit: "abc1234".into(),
            command: "scripts/bench".into(),
            charts_dir: "benches/charts/".into(),
        };
        let md = build(&[], &info, &records).markdown;
        assert!(
            md.trim_end().ends_with("## 9. Profile notes\n\nWhat `perf` showed in the cases above and what each change did, from `benches/results/notes.md` (written by hand).\n\n- one change, and why"),
            "{md}"
        );
    }

    #[test]
    fn soak_and_fuzz_records_render_as_sections() {
        let soak = crate::records::parse_soak(SOAK_LINE).unwrap();
        let fuzz = crate::records::parse_fuzz(FUZZ_LINES).unwrap();
        let records = Records {
            soak,
            fuzz,
            notes: None,
        };
        let r = build(&[], &RunInfo::default(), &records);
        let md = &r.markdown;
        assert!(md.contains("## 7. Soak\n"), "{md}");
        assert!(md.contains(
            "| 2026-12-02T02:30:00Z | `abc1234` | 20 min at 50 tx/s, 4 tables × 10,000 rows → local | 49.9 \
             | 239,520 | 20: 5 kill-connections, 5 sigkill, 5 source-crash, 5 source-restart \
             | 20/20 (1.3 / 6.0) | 1.0 / 4.0 / 7.2 | 1.5 | 4 of 4 tables equal | 0 | pass |"
        ), "{md}");
        assert!(md.contains("## 8. Fuzzing\n"));
        assert!(md.contains(
            "| 2026-12-02T03:00:00Z | `abc1234` | `binlog_events` | 600 | 1,234,567 | 2,058 | 812 \
             | 88 | 1,500 | 6,001 | 0 |"
        ), "{md}");
        assert!(
            md.contains("| `binlog_rows` | 601 | 99 | 0 | 3 | 1 | 7 | 8 | **1** |"),
            "{md}"
        );
        assert!(
            md.find("## 7. Soak") < md.find("## 8. Fuzzing"),
            "soak before fuzzing"
        );
    }

    const SOAK_LINE: &str = r#"{"kind":"soak","date":"2026-12-02T02:30:00Z","commit":"abc1234","seed":2026,"destination":"local","duration_s":1200.0,"tables":4,"table_size":10000,"rate_target":50,"rate_achieved":49.9,"transactions":59880.0,"load_restarts":0,"load_errors_retried":3,"changes":239520,"faults":{"kill-connections":5,"sigkill":5,"source-crash":5,"source-restart":5},"faults_total":20,"recoveries":20,"recovery_p50_s":1.3,"recovery_max_s":6.0,"unexpected_exits":0,"lag_samples":1190,"lag_p50_s":1.0,"lag_p99_s":4.0,"lag_max_s":7.2,"catch_up_s":1.5,"verify":"4 of 4 tables equal","verify_ok":true,"duplicates":0,"verdict":"pass","problems":[]}"#;

    const FUZZ_LINES: &str = concat!(
        r#"{"kind":"fuzz","target":"binlog_events","minutes":10,"seconds":600,"executions":1234567,"execs_per_s":2058,"corpus_files":812,"corpus_bytes":90210,"coverage":1500,"features":6001,"new_units":300,"peak_rss_mb":90,"crashes":0,"toolchain":"1.97.0-nightly","commit":"abc1234","date":"2026-12-02T03:00:00Z"}"#,
        "\n",
        r#"{"kind":"fuzz","target":"binlog_rows","minutes":10,"seconds":601,"executions":99,"execs_per_s":0,"corpus_files":3,"corpus_bytes":1024,"coverage":7,"features":8,"new_units":0,"peak_rss_mb":90,"crashes":1,"toolchain":"1.97.0-nightly","commit":"abc1234","date":"2026-12-02T03:10:00Z"}"#,
        "\n"
    );
}
