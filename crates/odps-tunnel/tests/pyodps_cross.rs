//! The official SDK as referee, both ways, through `odps-emulator`: rows
//! written by our Arrow block writer are read back by pyodps's Arrow reader,
//! and rows written by pyodps's Arrow writer are read back by our download
//! session, with identical values.
//!
//! Needs a Python with pyodps and pyarrow: `ODPS_TEST_PYTHON`, else the
//! repository's `.venv/bin/python` (made by `scripts/pyodps-tests`). Without
//! one the test says so on stderr and checks nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, ListBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampNanosecondType,
};
use arrow_array::{
    Array, ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampNanosecondArray,
};
use odps_tunnel::Client;
use odps_tunnel::compress::Compression;
use odps_tunnel::encode::proto::RecordEncoder;
use odps_tunnel::session::{BlockId, PartitionSpec};
use odps_tunnel::writer::{BlockFormat, UploadOptions, UploadSession, WriterOptions};

use crate::emulator::Emulator;

const ROWS: i64 = 3000;

/// The same rows the Python side makes in `PYODPS_SIDE`.
fn expected_rows() -> Vec<serde_json::Value> {
    (0..ROWS)
        .map(|i| {
            serde_json::json!([
                i,
                if i % 5 == 0 {
                    serde_json::Value::Null
                } else {
                    format!("n-{i}-é").into()
                },
                i as f64 * 0.5,
                1_700_000_000_000_000_000_i64 + i * 1_000_001,
                18_000 + i,
                format!("{}.{:03}", i, i % 1000),
                if i % 7 == 0 {
                    serde_json::Value::Null
                } else {
                    serde_json::json!([i, serde_json::Value::Null, -i])
                },
            ])
        })
        .collect()
}

fn our_batch() -> RecordBatch {
    let ids: Vec<i64> = (0..ROWS).collect();
    let mut arr = ListBuilder::new(Int64Builder::new());
    for i in 0..ROWS {
        if i % 7 == 0 {
            arr.append_null();
        } else {
            arr.append_value([Some(i), None, Some(-i)]);
        }
    }
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids.clone())) as ArrayRef),
        (
            "name",
            Arc::new(StringArray::from_iter(
                ids.iter().map(|i| (i % 5 != 0).then(|| format!("n-{i}-é"))),
            )),
        ),
        (
            "amount",
            Arc::new(Float64Array::from_iter_values(
                ids.iter().map(|i| *i as f64 * 0.5),
            )),
        ),
        (
            "ts",
            Arc::new(TimestampNanosecondArray::from_iter_values(
                ids.iter()
                    .map(|i| 1_700_000_000_000_000_000 + i * 1_000_001),
            )),
        ),
        (
            "day",
            Arc::new(Date32Array::from_iter_values(
                ids.iter().map(|i| 18_000 + *i as i32),
            )),
        ),
        (
            "dec",
            Arc::new(
                Decimal128Array::from_iter_values(
                    ids.iter()
                        .map(|i| i128::from(*i) * 1000 + i128::from(i % 1000)),
                )
                .with_precision_and_scale(18, 3)
                .unwrap(),
            ),
        ),
        ("arr", Arc::new(arr.finish())),
    ])
    .unwrap()
}

/// Turns our batches into the JSON rows the Python side prints.
fn rows_of(batches: &[RecordBatch]) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    for b in batches {
        let id = b.column(0).as_primitive::<Int64Type>();
        let name = b.column(1).as_string::<i32>();
        let amount = b.column(2).as_primitive::<Float64Type>();
        let ts = b.column(3).as_primitive::<TimestampNanosecondType>();
        let day = b.column(4).as_primitive::<Date32Type>();
        let dec = b.column(5).as_primitive::<Decimal128Type>();
        let arr = b.column(6).as_list::<i32>();
        for r in 0..b.num_rows() {
            let d = dec.value(r);
            rows.push(serde_json::json!([
                id.value(r),
                name.is_valid(r).then(|| name.value(r)),
                amount.value(r),
                ts.value(r),
                day.value(r),
                format!("{}.{:03}", d / 1000, d % 1000),
                arr.is_valid(r).then(|| {
                    let v = arr.value(r);
                    let v = v.as_primitive::<Int64Type>();
                    (0..v.len())
                        .map(|k| v.is_valid(k).then(|| v.value(k)))
                        .collect::<Vec<_>>()
                }),
            ]));
        }
    }
    rows.sort_by_key(|r| r[0].as_i64());
    rows
}

/// Opens the tunnel from the command line and defines `read_rows(pt)`, which
/// prints nothing and returns a partition's rows as `rows_of` renders them.
const PYODPS_PRELUDE: &str = r#"
import decimal, json, sys
import pyarrow as pa
from odps import ODPS
from odps.tunnel import TableTunnel

endpoint, tunnel_endpoint, project, id_, key, rows = sys.argv[1:7]
rows = int(rows)
o = ODPS(id_, key, project=project, endpoint=endpoint)
tunnel = TableTunnel(o, endpoint=tunnel_endpoint)

def read_rows(pt):
    down = tunnel.create_download_session("cross", partition_spec=pt)
    with down.open_arrow_reader(0, down.count) as reader:
        table = reader.read()
    out = []
    cols = [table.column(n).to_pylist() for n in ["id", "name", "amount"]]
    ts = table.column("ts").cast(pa.timestamp("ns")).cast(pa.int64()).to_pylist()
    day = table.column("day").cast(pa.int32()).to_pylist()
    dec = [str(d) for d in table.column("dec").to_pylist()]
    arr = table.column("arr").to_pylist()
    for i in range(table.num_rows):
        out.append([cols[0][i], cols[1][i], cols[2][i], ts[i], day[i], dec[i], arr[i]])
    out.sort(key=lambda r: r[0])
    return out
"#;

/// Reads what odps-tunnel wrote, then writes rows for odps-tunnel to read.
const PYODPS_SIDE: &str = r#"
print(json.dumps(read_rows("pt=rs")))

# Write rows for odps-tunnel to read.
batch = pa.record_batch([
    pa.array(range(rows), pa.int64()),
    pa.array([None if i % 5 == 0 else "n-%d-\u00e9" % i for i in range(rows)], pa.string()),
    pa.array([i * 0.5 for i in range(rows)], pa.float64()),
    pa.array([1700000000000000000 + i * 1000001 for i in range(rows)], pa.timestamp("ns", tz="UTC")),
    pa.array([18000 + i for i in range(rows)], pa.date32()),
    pa.array([decimal.Decimal("%d.%03d" % (i, i % 1000)) for i in range(rows)], pa.decimal128(18, 3)),
    pa.array([None if i % 7 == 0 else [i, None, -i] for i in range(rows)], pa.list_(pa.int64())),
], names=["id", "name", "amount", "ts", "day", "dec", "arr"])
up = tunnel.create_upload_session("cross", partition_spec="pt=py", create_partition=True)
with up.open_arrow_writer(0) as writer:
    writer.write(batch)
up.commit([0])
"#;

fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("ODPS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let ok = Command::new(&candidate)
        .args(["-c", "import odps, pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(candidate)
}

fn require_python() -> PathBuf {
    python().unwrap_or_else(|| {
        panic!(
            "pyodps_cross needs a Python with pyodps and pyarrow: run `scripts/pyodps-tests` \
             (it creates .venv) or set ODPS_TEST_PYTHON; `scripts/test` does both"
        )
    })
}

/// Runs `PYODPS_PRELUDE` then `script` against the emulator, with `extra`
/// arguments after the prelude's; parses the JSON it prints.
fn run_pyodps<T: serde::de::DeserializeOwned>(
    python: &Path,
    emu: &Emulator,
    project: &str,
    script: &str,
    extra: &[String],
) -> T {
    let out = Command::new(python)
        .args([
            "-c",
            &format!("{PYODPS_PRELUDE}{script}"),
            &emu.endpoint,
            &emu.tunnel,
            project,
            crate::emulator::ACCESS_ID,
        ])
        .arg(crate::emulator::ACCESS_KEY)
        .arg(ROWS.to_string())
        .args(extra)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyodps side failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An emulator with the `cross` table in `project`.
async fn cross_table(project: &str) -> (Emulator, Client) {
    let emu = Emulator::start(&[]);
    let client = emu.client(project);
    client
        .run_sql(
            "CREATE TABLE cross (id BIGINT, name STRING, amount DOUBLE, ts TIMESTAMP, day DATE, \
             dec DECIMAL(18,3), arr ARRAY<BIGINT>) PARTITIONED BY (pt STRING)",
        )
        .await
        .unwrap();
    (emu, client)
}

async fn open_partition(client: &Client, pt: &str) -> UploadSession {
    client
        .create_upload_session(
            "cross",
            Some(&PartitionSpec::new([("pt", pt)])),
            &UploadOptions {
                create_partition: true,
                ..UploadOptions::default()
            },
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn pyodps_reads_ours_and_we_read_pyodps() {
    let python = require_python();
    let (emu, client) = cross_table("tunnel_cross").await;
    let session = open_partition(&client, "rs").await;
    let mut writer = session.arrow_writer(WriterOptions {
        block_bytes: 32 * 1024,
        ..WriterOptions::default()
    });
    let batch = our_batch();
    for start in (0..ROWS as usize).step_by(700) {
        writer
            .write(&batch.slice(start, 700.min(ROWS as usize - start)))
            .await
            .unwrap();
    }
    let blocks: Vec<BlockId> = writer
        .finish()
        .await
        .unwrap()
        .iter()
        .map(|r| r.block_id)
        .collect();
    assert!(blocks.len() > 1);
    session.commit(&blocks).await.unwrap();

    let read_by_pyodps: Vec<serde_json::Value> =
        run_pyodps(&python, &emu, "tunnel_cross", PYODPS_SIDE, &[]);
    let expected = expected_rows();
    assert_eq!(read_by_pyodps.len(), expected.len());
    assert_eq!(read_by_pyodps, expected);

    let theirs = PartitionSpec::new([("pt", "py")]);
    let download = client
        .create_download_session("cross", Some(&theirs))
        .await
        .unwrap();
    assert_eq!(download.record_count(), ROWS as u64);
    let got = download
        .read_arrow(0, download.record_count())
        .await
        .unwrap();
    assert_eq!(rows_of(&got), expected);
    // And our Arrow batch itself renders to the same rows (the check above is not vacuous).
    assert_eq!(rows_of(&[batch]), expected);
}

/// Reads what the compressed uploads wrote, one partition after another.
const PYODPS_READS_COMPRESSED: &str = r#"
print(json.dumps([read_rows(pt) for pt in sys.argv[7:]]))
"#;

#[tokio::test]
async fn pyodps_reads_our_compressed_blocks() {
    let python = require_python();
    let (emu, client) = cross_table("tunnel_compressed").await;
    let batch = our_batch();
    let mut partitions = Vec::new();
    // The Arrow writer, several blocks, each compressed.
    for compression in [Compression::DEFLATE, Compression::Zstd { level: 3 }] {
        let pt = format!("arrow_{}", compression.content_encoding().unwrap());
        let session = open_partition(&client, &pt).await;
        let mut writer = session.arrow_writer(WriterOptions {
            block_bytes: 32 * 1024,
            compression,
            ..WriterOptions::default()
        });
        for start in (0..ROWS as usize).step_by(700) {
            writer
                .write(&batch.slice(start, 700.min(ROWS as usize - start)))
                .await
                .unwrap();
        }
        let receipts = writer.finish().await.unwrap();
        assert!(receipts.len() > 1, "{receipts:?}");
        let ids: Vec<BlockId> = receipts.iter().map(|r| r.block_id).collect();
        session.commit(&ids).await.unwrap();
        partitions.push(pt);
    }
    // A protobuf record stream, compressed.
    for compression in [Compression::DEFLATE, Compression::ZSTD] {
        let pt = format!("records_{}", compression.content_encoding().unwrap());
        let session = open_partition(&client, &pt).await;
        let mut encoder = RecordEncoder::try_new(session.columns());
        encoder.write(&batch).unwrap();
        let body = encoder.finish();
        let block = BlockId::new(0).unwrap();
        session
            .upload_compressed_block(block, &body, BlockFormat::Protobuf, compression)
            .await
            .unwrap();
        session.commit(&[block]).await.unwrap();
        partitions.push(pt);
    }
    let args: Vec<String> = partitions.iter().map(|p| format!("pt={p}")).collect();
    let read: Vec<Vec<serde_json::Value>> = run_pyodps(
        &python,
        &emu,
        "tunnel_compressed",
        PYODPS_READS_COMPRESSED,
        &args,
    );
    let expected = expected_rows();
    assert_eq!(read.len(), 4);
    for (pt, rows) in partitions.iter().zip(&read) {
        assert_eq!(rows, &expected, "partition {pt}");
    }
}
