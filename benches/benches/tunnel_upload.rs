//! Upload throughput of odps-tunnel's Arrow block writer against pyodps's
//! Arrow writer, both uploading the same data to the same `odps-emulator`
//! over loopback, measured in one run.
//!
//! ```sh
//! cargo bench -p sync-benches --bench tunnel_upload
//! ```
//!
//! Needs a Python with pyodps and pyarrow: `ODPS_BENCH_PYTHON`, else
//! `<repo>/.venv/bin/python` (`python3 -m venv .venv && .venv/bin/pip install
//! pyodps pyarrow`). Without it only our figure is printed. The emulator
//! binary is `ODPS_EMULATOR_BIN`, else built with the bench profile. Rows:
//! `TUNNEL_BENCH_ROWS` (default 1,000,000); our writer's block size and
//! blocks in flight: `TUNNEL_BENCH_BLOCK_MB` (8: the 45 MB default data then makes 6 blocks, so uploads overlap encoding; pyodps writes one block, its default), `TUNNEL_BENCH_IN_FLIGHT` (4). Each side runs once to warm up,
//! then `TUNNEL_BENCH_RUNS` times (default 3) alternating; the median counts.
//! MB/s is the size of the data as an Arrow IPC stream divided by the time
//! from opening the upload session to the end of the commit.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use odps_tunnel::auth::Credentials;
use odps_tunnel::encode::arrow::BlockEncoder;
use odps_tunnel::rest::Client;
use odps_tunnel::session::{BlockId, PartitionSpec};
use odps_tunnel::types::{Column, OdpsType};
use odps_tunnel::writer::{UploadOptions, WriterOptions};
use sync_benches::results::{Figure, Meta, Ratio};
use sync_testkit::emulator::{EmulatorProcess, emulator_binary};

const ID: &str = "bench-id";
const KEY: &str = "bench-key";
const PROJECT: &str = "bench";
const TABLE: &str = "upload_bench";

const PYODPS_UPLOAD: &str = r#"
import sys, time
import pyarrow as pa
from odps import ODPS
from odps.tunnel import TableTunnel

endpoint, tunnel_endpoint, data, pt = sys.argv[1:5]
with pa.memory_map(data) as source:
    table = pa.ipc.open_stream(source).read_all()
o = ODPS("bench-id", "bench-key", project="bench", endpoint=endpoint)
tunnel = TableTunnel(o, endpoint=tunnel_endpoint)
start = time.perf_counter()
session = tunnel.create_upload_session("upload_bench", partition_spec=pt, create_partition=True)
with session.open_arrow_writer(0) as writer:
    for batch in table.to_batches():
        writer.write(batch)
session.commit([0])
print(time.perf_counter() - start)
"#;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn make_batches(rows: usize) -> Vec<RecordBatch> {
    let batch_rows = 65_536;
    (0..rows)
        .step_by(batch_rows)
        .map(|start| {
            let n = batch_rows.min(rows - start) as i64;
            let ids: Vec<i64> = (start as i64..start as i64 + n).collect();
            RecordBatch::try_from_iter([
                ("id", Arc::new(Int64Array::from(ids.clone())) as ArrayRef),
                (
                    "name",
                    Arc::new(StringArray::from_iter_values(
                        ids.iter().map(|i| format!("customer-{i:08}")),
                    )),
                ),
                (
                    "amount",
                    Arc::new(Float64Array::from_iter_values(
                        ids.iter().map(|i| *i as f64 * 0.25),
                    )),
                ),
                (
                    "ts",
                    Arc::new(TimestampNanosecondArray::from_iter_values(
                        ids.iter()
                            .map(|i| 1_700_000_000_000_000_000 + i * 1_000_000),
                    )),
                ),
            ])
            .unwrap()
        })
        .collect()
}

fn ipc_stream(batches: &[RecordBatch]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    drop(w);
    out
}

async fn ours(client: &Client, batches: &[RecordBatch], pt: &str) -> Duration {
    let spec = PartitionSpec::new([("pt", pt)]);
    let start = Instant::now();
    let session = client
        .create_upload_session(
            TABLE,
            Some(&spec),
            &UploadOptions {
                create_partition: true,
                ..UploadOptions::default()
            },
        )
        .await
        .unwrap();
    let mut writer = session.arrow_writer(WriterOptions {
        block_bytes: env_or("TUNNEL_BENCH_BLOCK_MB", 8) << 20,
        max_in_flight: env_or("TUNNEL_BENCH_IN_FLIGHT", 4),
        ..WriterOptions::default()
    });
    for b in batches {
        writer.write(b).await.unwrap();
    }
    let written = start.elapsed();
    let receipts = writer.finish().await.unwrap();
    let finished = start.elapsed();
    let ids: Vec<BlockId> = receipts.iter().map(|r| r.block_id).collect();
    session.commit(&ids).await.unwrap();
    if std::env::var_os("TUNNEL_BENCH_VERBOSE").is_some() {
        eprintln!(
            "  ours: session+write {written:?}, all blocks uploaded {finished:?}, committed {:?}",
            start.elapsed()
        );
    }
    start.elapsed()
}

fn pyodps(python: &Path, emu: &EmulatorProcess, data: &Path, pt: &str) -> Option<Duration> {
    let out = Command::new(python)
        .args(["-c", PYODPS_UPLOAD, &emu.endpoint, &emu.tunnel])
        .arg(data)
        .arg(format!("pt={pt}"))
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "pyodps upload failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs us with no
    // args and would upload a lot: only bench when asked to.
    if !std::env::args().any(|a| a == "--bench") {
        println!("tunnel_upload: run with `cargo bench` to measure");
        return;
    }
    let rows: usize = std::env::var("TUNNEL_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("TUNNEL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let python = std::env::var("ODPS_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".venv/bin/python"));
    let python = python.exists().then_some(python);

    Meta::record(
        "tunnel_upload",
        &format!(
            "TUNNEL_BENCH_ROWS={rows}, TUNNEL_BENCH_RUNS={runs}, TUNNEL_BENCH_BLOCK_MB={}, TUNNEL_BENCH_IN_FLIGHT={}",
            env_or("TUNNEL_BENCH_BLOCK_MB", 8),
            env_or("TUNNEL_BENCH_IN_FLIGHT", 4)
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let batches = make_batches(rows);
    let stream = ipc_stream(&batches);
    let data_file = dir.path().join("data.arrows");
    std::fs::write(&data_file, &stream).unwrap();
    let mb = stream.len() as f64 / 1e6;
    // The bench profile shares its dependencies with this bench's build.
    let binary = emulator_binary("bench").unwrap();
    let emu = EmulatorProcess::start(&binary, &dir.path().join("emulator"), ID, KEY, &[]).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = Client::new(&emu.endpoint, PROJECT, Credentials::new(ID, KEY)).unwrap();
    rt.block_on(client.run_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (id BIGINT, name STRING, amount DOUBLE, ts TIMESTAMP) PARTITIONED BY (pt STRING)"
    )))
    .unwrap();

    let (mut ours_t, mut theirs_t) = (Vec::new(), Vec::new());
    for run in 0..=runs {
        let t = rt.block_on(ours(&client, &batches, &format!("rs{run}")));
        let p = python
            .as_deref()
            .and_then(|py| pyodps(py, &emu, &data_file, &format!("py{run}")));
        if run > 0 {
            ours_t.push(t);
            theirs_t.extend(p);
        }
    }
    // Client-side cost alone: encoding the same data into blocks, no I/O.
    let columns: Vec<Column> = [
        ("id", OdpsType::Bigint),
        ("name", OdpsType::String),
        ("amount", OdpsType::Double),
        ("ts", OdpsType::Timestamp),
    ]
    .into_iter()
    .map(|(n, t)| Column::new(n, t))
    .collect();
    let start = Instant::now();
    let mut framed = 0;
    for _ in 0..runs {
        let mut enc = BlockEncoder::try_new(&columns).unwrap();
        for b in &batches {
            enc.write(b).unwrap();
        }
        framed += enc.finish().len();
    }
    let encode_mbs = mb * runs as f64 / start.elapsed().as_secs_f64();
    assert!(framed > 0);

    let ours_s = median(ours_t).as_secs_f64();
    let ours_mbs = mb / ours_s;
    println!("tunnel_upload: {rows} rows, {mb:.1} MB as Arrow IPC, {runs} runs, median");
    println!("  odps-tunnel ArrowBlockWriter: {ours_mbs:8.1} MB/s");
    println!("    (its BlockEncoder alone, no I/O: {encode_mbs:.1} MB/s)");
    let case = format!(
        "{} rows × 4 columns, {mb:.1} MB as Arrow IPC",
        sync_benches::report::thousands(rows as f64)
    );
    let figure = |tool: &str, setting: &str, ours: bool, secs: f64| {
        Figure::new("tunnel_upload", &case, tool, setting, ours)
            .metric("input_mb", mb)
            .metric("seconds", secs)
            .metric("mb_per_s", mb / secs)
            .metric("rows_per_s", rows as f64 / secs)
            .record();
    };
    figure(
        "odps-tunnel ArrowBlockWriter",
        "8 MB blocks, 4 in flight",
        true,
        ours_s,
    );
    if theirs_t.len() == runs {
        let theirs_s = median(theirs_t).as_secs_f64();
        let theirs_mbs = mb / theirs_s;
        figure("pyodps open_arrow_writer", "1 block", false, theirs_s);
        println!("  pyodps ArrowWriter:           {theirs_mbs:8.1} MB/s");
        println!(
            "  ratio odps-tunnel / pyodps:   {:8.2}x",
            ours_mbs / theirs_mbs
        );
        Ratio::record(
            "tunnel_upload",
            "odps-tunnel ÷ pyodps, MB/s",
            ours_mbs / theirs_mbs,
            Some("upload_vs_pyodps"),
        );
    } else {
        println!("  pyodps: not measured (no Python with pyodps, or its upload failed)");
    }
}
