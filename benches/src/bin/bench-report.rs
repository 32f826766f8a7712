//! `bench-report RESULTS.jsonl --out BENCHMARKS.md --charts DIR [--commit C]
//! [--command CMD] [--records DIR] [--merge OLD.jsonl] [--keep FILE.jsonl]`:
//! turns the JSON lines the benches appended into `BENCHMARKS.md` and SVG
//! charts in DIR (linked relative to the document), with the soak and fuzz
//! records (`soak.jsonl`, `fuzz.jsonl`) of the records directory (default:
//! the results file's). `--merge` keeps the sections of an earlier run's
//! lines that RESULTS does not measure again; `--keep` writes the lines the
//! report was made of (for the next `--merge`).

use std::path::{Path, PathBuf};
use sync_benches::report::{self, RunInfo};

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-report: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut input, mut out, mut charts, mut records) = (None, None, None, None);
    let (mut merge, mut keep) = (None, None);
    let mut info = RunInfo {
        date: today(),
        commit: "unknown".into(),
        command: "scripts/bench".into(),
        charts_dir: String::new(),
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--charts" => charts = Some(PathBuf::from(value()?)),
            "--records" => records = Some(PathBuf::from(value()?)),
            "--merge" => merge = Some(PathBuf::from(value()?)),
            "--keep" => keep = Some(PathBuf::from(value()?)),
            "--commit" => info.commit = value()?,
            "--command" => info.command = value()?,
            "--date" => info.date = value()?,
            _ if !a.starts_with('-') && input.is_none() => input = Some(PathBuf::from(&a)),
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    let input = input.ok_or("usage: bench-report RESULTS.jsonl --out FILE.md --charts DIR")?;
    let out = out.unwrap_or_else(|| PathBuf::from("BENCHMARKS.md"));
    let charts = charts.unwrap_or_else(|| PathBuf::from("benches/charts"));
    info.charts_dir = relative(&charts, out.parent().unwrap_or(Path::new("")));
    let text =
        std::fs::read_to_string(&input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    let mut lines =
        sync_benches::results::parse(&text).map_err(|e| format!("{}: {e}", input.display()))?;
    if let Some(old) = &merge {
        let text =
            std::fs::read_to_string(old).map_err(|e| format!("reading {}: {e}", old.display()))?;
        let old_lines =
            sync_benches::results::parse(&text).map_err(|e| format!("{}: {e}", old.display()))?;
        lines = sync_benches::results::merge(old_lines, lines);
    }
    if let Some(keep) = &keep {
        let mut text = String::new();
        for l in &lines {
            text.push_str(&serde_json::to_string(l).map_err(|e| e.to_string())?);
            text.push('\n');
        }
        std::fs::write(keep, text).map_err(|e| format!("writing {}: {e}", keep.display()))?;
    }
    let records = records.unwrap_or_else(|| input.parent().unwrap_or(Path::new("")).to_path_buf());
    let records = sync_benches::records::load(&records)?;
    let r = report::build(&lines, &info, &records);
    std::fs::create_dir_all(&charts).map_err(|e| format!("creating {}: {e}", charts.display()))?;
    for (name, svg) in &r.charts {
        let path = charts.join(name);
        std::fs::write(&path, svg).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    std::fs::write(&out, &r.markdown).map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!(
        "wrote {} and {} charts in {}",
        out.display(),
        r.charts.len(),
        charts.display()
    );
    Ok(())
}

/// `charts` relative to `base` when it lies inside it (both as given).
fn relative(charts: &Path, base: &Path) -> String {
    charts
        .strip_prefix(base)
        .unwrap_or(charts)
        .to_string_lossy()
        .into_owned()
}

/// Today's UTC date as `YYYY-MM-DD` (civil-from-days, proleptic Gregorian).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
