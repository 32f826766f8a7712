//! Figures as JSON lines: every bench appends what it measured to the file
//! named by [`RESULTS_ENV`] (nothing is written when it is unset), and the
//! `bench-report` binary turns the lines into `BENCHMARKS.md` and charts.
//!
//! ```
//! use sync_benches::results::{Figure, Line};
//! let f = Figure::new("full_sync", "1,000 rows", "mariadb-dump", "1 connection", false)
//!     .metric("rows_per_s", 5000.0)
//!     .metric("peak_rss_mb", 12.5);
//! let line = serde_json::to_string(&Line::Figure(f)).unwrap();
//! assert!(line.starts_with(r#"{"kind":"figure","section":"full_sync""#));
//! let back: Line = serde_json::from_str(&line).unwrap();
//! assert!(matches!(back, Line::Figure(f) if f.metrics["rows_per_s"] == 5000.0));
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;

/// Environment variable naming the results file (JSON lines, appended).
pub const RESULTS_ENV: &str = "SYNC_BENCH_RESULTS";

/// Environment variable naming the run that measures (e.g. ``commit `abc1234`,
/// 2026-12-07``); every line records it, so a report that keeps some
/// sections of an earlier run says which run measured each.
pub const RUN_ENV: &str = "SYNC_BENCH_RUN";

/// The run label of [`RUN_ENV`], if set.
fn run_label() -> Option<String> {
    std::env::var(RUN_ENV).ok().filter(|r| !r.is_empty())
}

/// One line of the results file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    /// A measured figure.
    Figure(Figure),
    /// A ratio of two figures of the same run.
    Ratio(Ratio),
    /// Which bench ran, where and how.
    Meta(Meta),
}

/// One measurement of one tool in one setting.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Figure {
    /// The report section, e.g. `full_sync`.
    pub section: String,
    /// What was measured, e.g. `1,000,000 rows × 22 columns`; figures of one
    /// case are compared with each other.
    pub case: String,
    /// The program, e.g. `mariadb-dump --quick`.
    pub tool: String,
    /// Its setting, e.g. `4 connections`.
    pub setting: String,
    /// Whether the tool is this project's.
    pub ours: bool,
    /// The swept value of a sweep (tables, row bytes, rows per transaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    /// Named values, e.g. `rows_per_s`, `peak_rss_mb`, `p99_ms`.
    pub metrics: BTreeMap<String, f64>,
    /// The run that measured it ([`RUN_ENV`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl Figure {
    /// A figure without metrics yet.
    pub fn new(section: &str, case: &str, tool: &str, setting: &str, ours: bool) -> Self {
        Self {
            section: section.into(),
            case: case.into(),
            tool: tool.into(),
            setting: setting.into(),
            ours,
            x: None,
            metrics: BTreeMap::new(),
            run: run_label(),
        }
    }

    /// Sets the swept value.
    pub fn x(mut self, x: f64) -> Self {
        self.x = Some(x);
        self
    }

    /// Adds a metric (non-finite values are left out: JSON has no NaN).
    pub fn metric(mut self, name: &str, value: f64) -> Self {
        if value.is_finite() {
            self.metrics.insert(name.into(), value);
        }
        self
    }

    /// Appends the figure to the results file.
    pub fn record(self) {
        append(&Line::Figure(self));
    }
}

/// `ours ÷ peer` (or any two figures of one run), with the goal it is
/// judged against, if any.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Ratio {
    /// The report section it belongs to.
    pub section: String,
    /// What is divided by what, e.g. `sync-cli (4 connections) ÷ mariadb-dump, rows/s`.
    pub label: String,
    /// The quotient.
    pub value: f64,
    /// A goal's id, when the ratio decides one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// The run that measured it ([`RUN_ENV`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl Ratio {
    /// Appends `value` under `label` (a non-finite quotient is not recorded).
    pub fn record(section: &str, label: &str, value: f64, goal: Option<&str>) {
        if value.is_finite() {
            append(&Line::Ratio(Self {
                section: section.into(),
                label: label.into(),
                value,
                goal: goal.map(Into::into),
                run: run_label(),
            }));
        }
    }
}

/// Where a bench ran.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    /// The bench's name.
    pub bench: String,
    /// [`crate::machine_line`].
    pub machine: String,
    /// Its sizes, as `NAME=value` pairs.
    pub settings: String,
    /// The run ([`RUN_ENV`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl Meta {
    /// Appends a meta line for `bench`.
    pub fn record(bench: &str, settings: &str) {
        append(&Line::Meta(Self {
            bench: bench.into(),
            machine: crate::machine_line(),
            settings: settings.into(),
            run: run_label(),
        }));
    }
}

/// Appends one line to the results file, if one is named. A bench whose
/// results cannot be written must not pass for a complete run, so failures
/// panic.
fn append(line: &Line) {
    let Some(path) = std::env::var_os(RESULTS_ENV) else {
        return;
    };
    let text = serde_json::to_string(line).expect("a figure serializes");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.to_string_lossy()));
    writeln!(file, "{text}").unwrap_or_else(|e| panic!("writing {}: {e}", path.to_string_lossy()));
}

/// The lines of an earlier run `old` that `new` does not measure again
/// (figures and ratios of sections `new` has no figure of, and the metas of
/// the runs those belong to), followed by `new`: a partial run
/// (`scripts/bench --only`) keeps the rest of the last report, each line
/// still naming the run that measured it.
pub fn merge(old: Vec<Line>, new: Vec<Line>) -> Vec<Line> {
    use std::collections::BTreeSet;
    let sections: BTreeSet<String> = new
        .iter()
        .filter_map(|l| match l {
            Line::Figure(f) => Some(f.section.clone()),
            _ => None,
        })
        .collect();
    let kept: Vec<Line> = old
        .into_iter()
        .filter(|l| match l {
            Line::Figure(f) => !sections.contains(&f.section),
            Line::Ratio(r) => !sections.contains(&r.section),
            Line::Meta(_) => true,
        })
        .collect();
    let kept_runs: BTreeSet<Option<String>> = kept
        .iter()
        .filter_map(|l| match l {
            Line::Figure(f) => Some(f.run.clone()),
            _ => None,
        })
        .collect();
    kept.into_iter()
        .filter(|l| match l {
            Line::Meta(m) => kept_runs.contains(&m.run),
            _ => true,
        })
        .chain(new)
        .collect()
}

/// Parses a results file; lines that are not JSON of a [`Line`] are errors
/// naming their number.
///
/// # Errors
/// The first line that does not parse, as `line N: reason`.
pub fn parse(text: &str) -> Result<Vec<Line>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_bad_lines_are_named() {
        let f = Figure::new("s", "c", "t", "x", true)
            .x(10.0)
            .metric("rows_per_s", 1.5)
            .metric("nan", f64::NAN);
        let r = Line::Ratio(Ratio {
            section: "s".into(),
            label: "a ÷ b".into(),
            value: 2.0,
            goal: Some("g".into()),
            run: None,
        });
        let text = format!(
            "{}\n\n{}\n",
            serde_json::to_string(&Line::Figure(f.clone())).unwrap(),
            serde_json::to_string(&r).unwrap()
        );
        let lines = parse(&text).unwrap();
        assert_eq!(lines, vec![Line::Figure(f), r]);
        let Line::Figure(back) = &lines[0] else {
            panic!("a figure")
        };
        assert!(!back.metrics.contains_key("nan"));
        let err = parse("{\"kind\":\"figure\"}\nnot json").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }

    #[test]
    fn a_partial_run_replaces_only_the_sections_it_measured() {
        let run = |r: &str| Some(r.to_owned());
        let fig = |section: &str, r: &str| {
            let mut f = Figure::new(section, "c", "t", "x", true);
            f.run = run(r);
            Line::Figure(f)
        };
        let meta = |bench: &str, r: &str| {
            Line::Meta(Meta {
                bench: bench.into(),
                machine: "m".into(),
                settings: String::new(),
                run: run(r),
            })
        };
        let ratio = |section: &str, r: &str| {
            Line::Ratio(Ratio {
                section: section.into(),
                label: "a ÷ b".into(),
                value: 1.0,
                goal: None,
                run: run(r),
            })
        };
        let old = vec![
            meta("decode", "old"),
            fig("binlog_decode", "old"),
            meta("sync", "old"),
            fig("full_sync", "old"),
            ratio("full_sync", "old"),
            fig("catch_up", "old"),
            meta("gone", "older"),
        ];
        let new = vec![
            meta("sync", "new"),
            fig("full_sync", "new"),
            ratio("full_sync", "new"),
        ];
        let merged = merge(old, new.clone());
        let mut want = vec![
            meta("decode", "old"),
            fig("binlog_decode", "old"),
            meta("sync", "old"),
            fig("catch_up", "old"),
        ];
        want.extend(new);
        assert_eq!(merged, want);
    }
}
