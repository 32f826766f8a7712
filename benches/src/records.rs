//! Records of the long runs kept in the repository beside the bench
//! results: the soak's (`soak.jsonl`, one line per run of
//! `sync-chaos --soak`) and the long fuzz run's (`fuzz.jsonl`, one line per
//! target and run of `scripts/fuzz-long`). `bench-report` renders them as
//! the report's "Soak" and "Fuzzing" sections.
//!
//! ```
//! let line = r#"{"kind":"fuzz","target":"binlog_rows","minutes":10,"seconds":601,
//!   "executions":123456,"execs_per_s":205,"corpus_files":812,"corpus_bytes":90210,
//!   "coverage":1500,"features":6000,"crashes":0,"commit":"abc1234","date":"2026-12-02T03:00:00Z"}"#;
//! let fuzz = sync_benches::records::parse_fuzz(&line.replace('\n', "")).unwrap();
//! assert_eq!(fuzz[0].executions, 123456);
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The soak's file in the records directory.
pub const SOAK_FILE: &str = "soak.jsonl";
/// The fuzz run's file in the records directory.
pub const FUZZ_FILE: &str = "fuzz.jsonl";
/// The hand-written profile notes in the records folder.
pub const NOTES_FILE: &str = "notes.md";

/// One soak run (`sync-chaos --soak`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Soak {
    /// Start, UTC (`YYYY-MM-DDTHH:MM:SSZ`).
    pub date: String,
    /// Commit of the binaries.
    pub commit: String,
    /// Where the task wrote (`local`).
    #[serde(default)]
    pub destination: String,
    /// Seconds of load.
    pub duration_s: f64,
    /// sysbench tables.
    pub tables: u32,
    /// Rows per table.
    pub table_size: u64,
    /// sysbench `--rate`.
    pub rate_target: f64,
    /// Transactions per second achieved.
    pub rate_achieved: Option<f64>,
    /// Transactions sysbench committed.
    pub transactions: f64,
    /// Records in `t_log` after the run.
    pub changes: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u32>,
    /// Faults after which the task committed newer changes again.
    pub recoveries: u32,
    /// Median seconds from a fault to that commit.
    pub recovery_p50_s: Option<f64>,
    /// Longest of them.
    pub recovery_max_s: Option<f64>,
    /// Times the task exited by itself.
    #[serde(default)]
    pub unexpected_exits: u32,
    /// Lag samples (one a second).
    #[serde(default)]
    pub lag_samples: u64,
    /// Median lag, seconds.
    pub lag_p50_s: Option<f64>,
    /// 99th percentile lag, seconds.
    #[serde(default)]
    pub lag_p99_s: Option<f64>,
    /// Highest lag, seconds.
    pub lag_max_s: Option<f64>,
    /// Seconds the running task took to catch up after the load.
    #[serde(default)]
    pub catch_up_s: Option<f64>,
    /// `verify`'s summary, or its failure.
    pub verify: String,
    /// `t_log` records held twice.
    pub duplicates: u64,
    /// `pass` or `fail`.
    pub verdict: String,
}

/// One target of one long fuzz run (`scripts/fuzz-long`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Fuzz {
    /// The cargo-fuzz target.
    pub target: String,
    /// Seconds fuzzed.
    pub seconds: f64,
    /// Inputs executed.
    pub executions: u64,
    /// Per second, as libFuzzer averaged it.
    pub execs_per_s: f64,
    /// Corpus files after the run.
    pub corpus_files: u64,
    /// Their bytes.
    pub corpus_bytes: u64,
    /// libFuzzer's `cov` (covered edges).
    pub coverage: u64,
    /// libFuzzer's `ft` (features).
    pub features: u64,
    /// Crashing inputs found.
    pub crashes: u64,
    /// Commit fuzzed.
    pub commit: String,
    /// Start, UTC.
    pub date: String,
}

/// Everything found in a records directory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Records {
    /// Soak runs, in file order.
    pub soak: Vec<Soak>,
    /// Fuzz targets' runs, in file order.
    pub fuzz: Vec<Fuzz>,
    /// `notes.md`: what profiles showed and what each speed change did,
    /// written by hand and shown as the report's last section.
    pub notes: Option<String>,
}

fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Result<Vec<T>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Parses soak lines.
///
/// # Errors
/// The first line that is not a soak record, as `line N: reason`.
pub fn parse_soak(text: &str) -> Result<Vec<Soak>, String> {
    parse(text)
}

/// Parses fuzz lines.
///
/// # Errors
/// The first line that is not a fuzz record, as `line N: reason`.
pub fn parse_fuzz(text: &str) -> Result<Vec<Fuzz>, String> {
    parse(text)
}

/// Reads `soak.jsonl` and `fuzz.jsonl` of `dir`; a missing file is no records.
///
/// # Errors
/// A file that cannot be read or parsed, named with the line.
pub fn load(dir: &Path) -> Result<Records, String> {
    let read = |name: &str| -> Result<Option<(String, String)>, String> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(Some((t, path.display().to_string()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    };
    let mut records = Records::default();
    if let Some((text, path)) = read(SOAK_FILE)? {
        records.soak = parse_soak(&text).map_err(|e| format!("{path}: {e}"))?;
    }
    if let Some((text, path)) = read(FUZZ_FILE)? {
        records.fuzz = parse_fuzz(&text).map_err(|e| format!("{path}: {e}"))?;
    }
    records.notes = read(NOTES_FILE)?
        .map(|(text, _)| text.trim().to_owned())
        .filter(|t| !t.is_empty());
    Ok(records)
}
