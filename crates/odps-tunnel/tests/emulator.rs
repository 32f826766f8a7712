//! Round trips through `odps-emulator`, the project's MaxCompute-compatible
//! server: SQL DDL, table metadata, Arrow and protobuf uploads, downloads,
//! resumed sessions, signature checks and injected faults.
//!
//! The emulator binary is taken from `ODPS_EMULATOR_BIN` when set, else built
//! with cargo into this test's target directory (once per run, see
//! `sync_testkit::emulator`).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use bytes::Bytes;
use odps_tunnel::auth::Credentials;
use odps_tunnel::encode::proto::RecordEncoder;
use odps_tunnel::rest::{Client, ClientOptions};
use odps_tunnel::session::{BlockId, PartitionSpec};
use odps_tunnel::types::{Column, OdpsType};
use odps_tunnel::writer::{BlockFormat, RetryPolicy, UploadOptions, WriterOptions};
use odps_tunnel::{ErrorKind, Result};
use sync_testkit::emulator::{EmulatorProcess, test_emulator_binary};

pub(crate) const ACCESS_ID: &str = "test-id";
pub(crate) const ACCESS_KEY: &str = "test-key";

/// A running emulator on a free port with its own data directory.
pub(crate) struct Emulator {
    process: EmulatorProcess,
    pub(crate) endpoint: String,
    pub(crate) tunnel: String,
    _data: Option<tempfile::TempDir>,
}

impl Emulator {
    pub(crate) fn start(extra: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut emu = Self::start_in(data.path(), extra);
        emu._data = Some(data);
        emu
    }

    /// An emulator over an existing data directory (kept when it stops).
    pub(crate) fn start_in(data: &Path, extra: &[&str]) -> Self {
        let process = EmulatorProcess::start(
            &test_emulator_binary().unwrap(),
            data,
            ACCESS_ID,
            ACCESS_KEY,
            extra,
        )
        .unwrap();
        Self {
            endpoint: process.endpoint.clone(),
            tunnel: process.tunnel.clone(),
            process,
            _data: None,
        }
    }

    pub(crate) fn client(&self, project: &str) -> Client {
        self.client_with_key(project, ACCESS_KEY)
    }

    fn client_with_key(&self, project: &str, key: &str) -> Client {
        Client::with_options(
            &self.endpoint,
            project,
            Credentials::new(ACCESS_ID, key),
            ClientOptions {
                request_timeout: std::time::Duration::from_secs(60),
                ..ClientOptions::default()
            },
        )
        .unwrap()
    }
}

fn batch(start: i64, n: i64) -> RecordBatch {
    let ids: Vec<i64> = (start..start + n).collect();
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids.clone())) as ArrayRef),
        (
            "name",
            Arc::new(StringArray::from_iter(
                ids.iter()
                    .map(|i| (i % 7 != 0).then(|| format!("name-{i}"))),
            )),
        ),
        (
            "ts",
            Arc::new(TimestampNanosecondArray::from_iter_values(
                ids.iter().map(|i| 1_700_000_000_000_000_000 + i * 1_001),
            )),
        ),
    ])
    .unwrap()
}

fn ids_of(batches: &[RecordBatch]) -> Vec<i64> {
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    ids.sort_unstable();
    ids
}

async fn create_events_table(client: &Client) -> Result<()> {
    client
        .run_sql(
            "CREATE TABLE IF NOT EXISTS events (id BIGINT, name STRING, ts TIMESTAMP) PARTITIONED BY (pt STRING)",
        )
        .await
        .map(|_| ())
}

#[tokio::test]
async fn ddl_schema_partitions_and_sql_errors() {
    let emu = Emulator::start(&[]);
    let client = emu.client("tunnel_ddl");
    client
        .run_sql(
            "CREATE TABLE all_types (c_bigint BIGINT, c_int INT, c_smallint SMALLINT, c_tinyint TINYINT, \
             c_double DOUBLE, c_float FLOAT, c_decimal DECIMAL(20,4), c_string STRING, c_varchar VARCHAR(10), \
             c_char CHAR(4), c_binary BINARY, c_boolean BOOLEAN, c_date DATE, c_datetime DATETIME, \
             c_timestamp TIMESTAMP, c_timestamp_ntz TIMESTAMP_NTZ, c_json JSON, c_array ARRAY<BIGINT>, \
             c_map MAP<STRING,BIGINT>, c_struct STRUCT<x:INT,y:STRING>) PARTITIONED BY (pt STRING, region STRING)",
        )
        .await
        .unwrap();
    let table = client.table("all_types").await.unwrap();
    let types: Vec<String> = table
        .schema
        .columns
        .iter()
        .map(|c| c.ty.to_string())
        .collect();
    assert_eq!(
        types,
        [
            "bigint",
            "int",
            "smallint",
            "tinyint",
            "double",
            "float",
            "decimal(20,4)",
            "string",
            "varchar(10)",
            "char(4)",
            "binary",
            "boolean",
            "date",
            "datetime",
            "timestamp",
            "timestamp_ntz",
            "json",
            "array<bigint>",
            "map<string,bigint>",
            "struct<x:int,y:string>"
        ]
    );
    let keys: Vec<&str> = table
        .schema
        .partition_keys
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(keys, ["pt", "region"]);

    client
        .run_sql("ALTER TABLE all_types ADD IF NOT EXISTS PARTITION (pt='20240101', region='eu')")
        .await
        .unwrap();
    let parts = client.partitions("all_types").await.unwrap();
    assert_eq!(
        parts,
        vec![PartitionSpec::new([("pt", "20240101"), ("region", "eu")])]
    );

    client
        .run_sql("ALTER TABLE all_types ADD COLUMNS (c_extra BIGINT)")
        .await
        .unwrap();
    let table = client.table("all_types").await.unwrap();
    assert_eq!(table.schema.columns.last().unwrap().name, "c_extra");

    let err = client
        .run_sql("ALTER TABLE no_such_table ADD COLUMNS (x BIGINT)")
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Sql { .. }), "{err}");

    client.run_sql("DROP TABLE all_types").await.unwrap();
    assert!(!client.table_exists("all_types").await.unwrap());
    let err = client.table("all_types").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn wrong_key_is_refused_with_a_typed_error() {
    let emu = Emulator::start(&[]);
    let err = emu
        .client_with_key("tunnel_auth", "wrong-key")
        .run_sql("CREATE TABLE t (id BIGINT)")
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    let server = err.server().unwrap();
    assert!(!server.code.is_empty());
}

#[tokio::test]
async fn arrow_upload_commit_and_download() {
    let emu = Emulator::start(&[]);
    let client = emu.client("tunnel_arrow");
    create_events_table(&client).await.unwrap();
    let pt = PartitionSpec::new([("pt", "p1")]);
    let session = client
        .create_upload_session(
            "events",
            Some(&pt),
            &UploadOptions {
                create_partition: true,
                ..UploadOptions::default()
            },
        )
        .await
        .unwrap();
    let mut writer = session.arrow_writer(WriterOptions {
        block_bytes: 16 * 1024,
        max_in_flight: 3,
        ..WriterOptions::default()
    });
    let mut sent = Vec::new();
    for i in 0..20 {
        let b = batch(i * 500, 500);
        writer.write(&b).await.unwrap();
        sent.push(b);
    }
    let receipts = writer.finish().await.unwrap();
    assert!(
        receipts.len() > 3,
        "small blocks should make several: {receipts:?}"
    );
    assert_eq!(receipts.iter().map(|r| r.rows).sum::<u64>(), 10_000);

    // Nothing is visible before the commit.
    let before = client.create_download_session("events", Some(&pt)).await;
    if let Ok(d) = before {
        assert_eq!(d.record_count(), 0);
    }

    let ids: Vec<BlockId> = receipts.iter().map(|r| r.block_id).collect();
    session.commit(&ids).await.unwrap();

    let download = client
        .create_download_session("events", Some(&pt))
        .await
        .unwrap();
    assert_eq!(download.record_count(), 10_000);
    let got = download
        .read_arrow(0, download.record_count())
        .await
        .unwrap();
    assert_eq!(ids_of(&got), (0..10_000).collect::<Vec<_>>());
    // Values, not just ids: put rows in id order and compare columns.
    let mut rows: Vec<(i64, Option<String>, i64)> = Vec::new();
    for b in &got {
        let id = b.column(0).as_primitive::<Int64Type>();
        let name = b.column(1).as_string::<i32>();
        let ts = b
            .column(2)
            .as_primitive::<arrow_array::types::TimestampNanosecondType>();
        for r in 0..b.num_rows() {
            rows.push((
                id.value(r),
                name.is_valid(r).then(|| name.value(r).to_owned()),
                ts.value(r),
            ));
        }
    }
    rows.sort();
    for (i, (id, name, ts)) in rows.iter().enumerate() {
        let i = i as i64;
        assert_eq!(*id, i);
        assert_eq!(name.clone(), (i % 7 != 0).then(|| format!("name-{i}")));
        assert_eq!(*ts, 1_700_000_000_000_000_000 + i * 1_001);
    }

    // The protobuf reader sees the same rows.
    let records = download.read_records(0, 100).await.unwrap();
    assert_eq!(records.num_rows(), 100);
}

#[tokio::test]
async fn protobuf_block_upload() {
    let emu = Emulator::start(&[]);
    let client = emu.client("tunnel_proto");
    client
        .run_sql("CREATE TABLE plain (id BIGINT, name STRING, ts TIMESTAMP)")
        .await
        .unwrap();
    let session = client
        .create_upload_session("plain", None, &UploadOptions::default())
        .await
        .unwrap();
    let columns: Vec<Column> = session.columns().to_vec();
    assert_eq!(columns[2].ty, OdpsType::Timestamp);
    let mut enc = RecordEncoder::try_new(&columns);
    enc.write(&batch(0, 321)).unwrap();
    let block = BlockId::new(7).unwrap();
    session
        .upload_block(block, Bytes::from(enc.finish()), BlockFormat::Protobuf)
        .await
        .unwrap();
    session.commit(&[block]).await.unwrap();
    let download = client.create_download_session("plain", None).await.unwrap();
    assert_eq!(download.record_count(), 321);
    let got = download.read_arrow(0, 321).await.unwrap();
    assert_eq!(ids_of(&got), (0..321).collect::<Vec<_>>());
}

#[tokio::test]
async fn resumed_session_commits_blocks_from_both_runs() {
    let emu = Emulator::start(&[]);
    let client = emu.client("tunnel_resume");
    create_events_table(&client).await.unwrap();
    let pt = PartitionSpec::new([("pt", "r")]);
    let options = UploadOptions {
        create_partition: true,
        ..UploadOptions::default()
    };
    let session = client
        .create_upload_session("events", Some(&pt), &options)
        .await
        .unwrap();
    let id = session.id().to_owned();
    let mut writer = session.arrow_writer(WriterOptions::default());
    writer.write(&batch(0, 1000)).await.unwrap();
    let first = writer.finish().await.unwrap();
    drop(session); // "crash": only the id survives

    let session = client
        .resume_upload_session("events", Some(&pt), &id)
        .await
        .unwrap();
    let held = session.uploaded_blocks();
    assert_eq!(
        held,
        first.iter().map(|r| r.block_id).collect::<BTreeSet<_>>()
    );
    let next = held.iter().map(|b| b.get()).max().unwrap() + 1;
    let mut writer = session.arrow_writer(WriterOptions {
        first_block_id: next,
        ..WriterOptions::default()
    });
    writer.write(&batch(1000, 500)).await.unwrap();
    let second = writer.finish().await.unwrap();
    let all: Vec<BlockId> = first.iter().chain(&second).map(|r| r.block_id).collect();

    // A commit naming a block the server does not hold is refused.
    let bogus = [all.clone(), vec![BlockId::new(999).unwrap()]].concat();
    let resumed = client
        .resume_upload_session("events", Some(&pt), &id)
        .await
        .unwrap();
    assert!(resumed.commit(&bogus).await.is_err());

    session.commit(&all).await.unwrap();
    let download = client
        .create_download_session("events", Some(&pt))
        .await
        .unwrap();
    let got = download
        .read_arrow(0, download.record_count())
        .await
        .unwrap();
    assert_eq!(ids_of(&got), (0..1500).collect::<Vec<_>>());
}

#[tokio::test]
async fn retries_under_injected_faults_keep_every_row_once() {
    let emu = Emulator::start(&[
        "--fail-block-rate",
        "0.3",
        "--fail-commit-rate",
        "0.5",
        "--fault-seed",
        "7",
    ]);
    let client = emu.client("tunnel_faults");
    create_events_table(&client).await.unwrap();
    let pt = PartitionSpec::new([("pt", "f")]);
    let mut session = client
        .create_upload_session(
            "events",
            Some(&pt),
            &UploadOptions {
                create_partition: true,
                ..UploadOptions::default()
            },
        )
        .await
        .unwrap();
    session.set_retry_policy(RetryPolicy {
        max_attempts: 20,
        initial_backoff: std::time::Duration::from_millis(5),
        max_backoff: std::time::Duration::from_millis(50),
    });
    let mut writer = session.arrow_writer(WriterOptions {
        block_bytes: 8 * 1024,
        max_in_flight: 4,
        ..WriterOptions::default()
    });
    for i in 0..30 {
        writer.write(&batch(i * 200, 200)).await.unwrap();
    }
    let receipts = writer.finish().await.unwrap();
    assert!(
        receipts.iter().any(|r| r.attempts > 1),
        "with 30% failures some block must have been retried: {receipts:?}"
    );
    let ids: Vec<BlockId> = receipts.iter().map(|r| r.block_id).collect();
    session.commit(&ids).await.unwrap();
    let download = client
        .create_download_session("events", Some(&pt))
        .await
        .unwrap();
    let got = download
        .read_arrow(0, download.record_count())
        .await
        .unwrap();
    assert_eq!(ids_of(&got), (0..6000).collect::<Vec<_>>());
}

/// Rows visible in a partition of `events`, by a download session and by
/// `SELECT COUNT(*)`, which must agree.
async fn visible_rows(client: &Client, pt: &PartitionSpec) -> u64 {
    let download = client
        .create_download_session("events", Some(pt))
        .await
        .unwrap();
    let (k, v) = &pt.pairs[0];
    let counted = client
        .run_sql(&format!("SELECT COUNT(*) FROM events WHERE {k}='{v}'"))
        .await
        .unwrap();
    assert_eq!(
        counted.trim().lines().last().unwrap(),
        download.record_count().to_string()
    );
    download.record_count()
}

#[tokio::test]
async fn a_commit_killed_midway_is_all_or_nothing() {
    // (crash point, whether the blocks are visible after the restart)
    for (point, published) in [
        ("commit-after-first-block", false),
        ("commit-before-manifest", false),
        ("commit-after-manifest", true),
    ] {
        let data = tempfile::tempdir().unwrap();
        let pt = PartitionSpec::new([("pt", "c")]);
        // Rows committed before, by a run without the hook, must survive.
        {
            let emu = Emulator::start_in(data.path(), &[]);
            let client = emu.client("tunnel_crash");
            create_events_table(&client).await.unwrap();
            let session = client
                .create_upload_session(
                    "events",
                    Some(&pt),
                    &UploadOptions {
                        create_partition: true,
                        ..UploadOptions::default()
                    },
                )
                .await
                .unwrap();
            let mut writer = session.arrow_writer(WriterOptions::default());
            writer.write(&batch(-100, 100)).await.unwrap();
            let receipts = writer.finish().await.unwrap();
            session.commit(&[receipts[0].block_id]).await.unwrap();
        }
        let mut emu = Emulator::start_in(data.path(), &["--crash-at", point]);
        let client = emu.client("tunnel_crash");
        let mut session = client
            .create_upload_session("events", Some(&pt), &UploadOptions::default())
            .await
            .unwrap();
        session.set_retry_policy(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        });
        let id = session.id().to_owned();
        let mut writer = session.arrow_writer(WriterOptions {
            block_bytes: 16 * 1024,
            ..WriterOptions::default()
        });
        for i in 0..10 {
            writer.write(&batch(i * 500, 500)).await.unwrap();
        }
        let receipts = writer.finish().await.unwrap();
        assert!(
            receipts.len() > 2,
            "a commit of several blocks: {receipts:?}"
        );
        let ids: Vec<BlockId> = receipts.iter().map(|r| r.block_id).collect();
        let err = session.commit(&ids).await.unwrap_err();
        assert!(err.is_retryable(), "{point}: {err:?}");
        let status = emu.process.wait().unwrap();
        assert!(!status.success(), "{point}: the emulator should have died");

        let emu = Emulator::start_in(data.path(), &[]);
        let client = emu.client("tunnel_crash");
        let expected = if published { 5100 } else { 100 };
        assert_eq!(visible_rows(&client, &pt).await, expected, "{point}");
        // The client's retry of the commit finishes it, exactly once.
        let resumed = client
            .resume_upload_session("events", Some(&pt), &id)
            .await
            .unwrap();
        resumed.commit(&ids).await.unwrap();
        assert_eq!(visible_rows(&client, &pt).await, 5100, "{point}");
        let download = client
            .create_download_session("events", Some(&pt))
            .await
            .unwrap();
        let got = download.read_arrow(0, 5100).await.unwrap();
        assert_eq!(ids_of(&got), (-100..5000).collect::<Vec<_>>(), "{point}");
    }
}

/// DATETIME(6)'s whole range (year 1000 to 9999) lands exactly through the
/// record writer, comes back through the record reader, and is refused by
/// the Arrow tunnel, whose 64-bit nanoseconds cannot carry it; values the
/// service cannot hold are refused at upload, as the service does.
#[tokio::test]
async fn timestamps_beyond_nanoseconds_and_oversized_values() {
    use arrow_array::TimestampMicrosecondArray;
    let emu = Emulator::start(&[]);
    let client = emu.client("tunnel_edges");
    client
        .run_sql("CREATE TABLE edges (id BIGINT, ntz TIMESTAMP_NTZ, s STRING)")
        .await
        .unwrap();
    let session = client
        .create_upload_session("edges", None, &UploadOptions::default())
        .await
        .unwrap();
    let columns: Vec<Column> = session.columns().to_vec();
    // µs since the epoch: 1000-01-01 00:00:00, 9999-12-31 23:59:59.999999, NULL, 2024.
    let micros = vec![
        Some(-30_610_224_000_000_000),
        Some(253_402_300_799_999_999),
        None,
        Some(1_704_067_200_000_001),
    ];
    let rows = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef,
        ),
        (
            "ntz",
            Arc::new(TimestampMicrosecondArray::from(micros.clone())),
        ),
        ("s", Arc::new(StringArray::from(vec!["a", "b", "c", "d"]))),
    ])
    .unwrap();
    assert_eq!(
        BlockFormat::for_batches(&columns, [&rows]),
        BlockFormat::Protobuf
    );
    assert_eq!(
        BlockFormat::for_batches(&columns, [&rows.slice(2, 2)]),
        BlockFormat::Arrow
    );
    // The Arrow writer refuses them before sending anything.
    let mut arrow = session.arrow_writer(WriterOptions::default());
    let err = arrow.write(&rows).await.unwrap_err().to_string();
    assert!(err.contains("ntz") && err.contains("protobuf"), "{err}");
    let mut writer = session.record_writer(WriterOptions::default());
    writer.write(&rows).await.unwrap();
    let blocks: Vec<BlockId> = writer
        .finish()
        .await
        .unwrap()
        .iter()
        .map(|r| r.block_id)
        .collect();
    session.commit(&blocks).await.unwrap();

    let download = client.create_download_session("edges", None).await.unwrap();
    let back = download.read_records(0, 4).await.unwrap();
    let ntz = back.column(1).as_struct();
    let sec = ntz.column(0).as_primitive::<Int64Type>();
    let nano = ntz
        .column(1)
        .as_primitive::<arrow_array::types::Int32Type>();
    let got: Vec<Option<i64>> = (0..4)
        .map(|i| {
            ntz.is_valid(i)
                .then(|| sec.value(i) * 1_000_000 + i64::from(nano.value(i)) / 1000)
        })
        .collect();
    assert_eq!(got, micros);
    let err = download.read_arrow(0, 4).await.unwrap_err();
    assert!(
        err.to_string().contains("record format"),
        "the Arrow tunnel cannot carry year 1000: {err}"
    );
    // The rows inside the window read as Arrow nanoseconds.
    let inside = download.read_arrow(2, 2).await.unwrap();
    let ns = inside[0]
        .column(1)
        .as_primitive::<arrow_array::types::TimestampNanosecondType>();
    assert!(ns.is_null(0) && ns.value(1) == 1_704_067_200_000_001_000);

    // Bodies a client did not check: a string over MaxFieldSize, and a
    // timestamp after 9999-12-31 (seconds and nanoseconds carry it).
    let session = client
        .create_upload_session("edges", None, &UploadOptions::default())
        .await
        .unwrap();
    let big = "x".repeat(8 * 1024 * 1024 + 1);
    let over = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(vec![5])) as ArrayRef),
        ("ntz", Arc::new(TimestampMicrosecondArray::from(vec![0]))),
        ("s", Arc::new(StringArray::from(vec![big.as_str()]))),
    ])
    .unwrap();
    let mut enc = RecordEncoder::try_new(&columns).with_max_field_size(usize::MAX);
    enc.write(&over).unwrap();
    let err = session
        .upload_block(
            BlockId::new(0).unwrap(),
            Bytes::from(enc.finish()),
            BlockFormat::Protobuf,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("InvalidData") && err.contains("field size"),
        "{err}"
    );
    let late = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(vec![6])) as ArrayRef),
        (
            "ntz",
            Arc::new(arrow_array::StructArray::from(vec![
                (
                    Arc::new(arrow_schema::Field::new(
                        "sec",
                        arrow_schema::DataType::Int64,
                        true,
                    )),
                    Arc::new(Int64Array::from(vec![253_402_300_800])) as ArrayRef,
                ),
                (
                    Arc::new(arrow_schema::Field::new(
                        "nano",
                        arrow_schema::DataType::Int32,
                        true,
                    )),
                    Arc::new(arrow_array::Int32Array::from(vec![0])) as ArrayRef,
                ),
            ])),
        ),
        ("s", Arc::new(StringArray::from(vec!["z"]))),
    ])
    .unwrap();
    // Our encoder refuses year 10000 too; the emulator is checked with a
    // hand-made record (field 1 = 6, field 2 = sec/nano, field 3 = "z").
    assert!(RecordEncoder::try_new(&columns).write(&late).is_err());
    let body = hand_made_record(6, 253_402_300_800, 0, "z");
    let err = session
        .upload_block(
            BlockId::new(1).unwrap(),
            Bytes::from(body),
            BlockFormat::Protobuf,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("InvalidData") && err.contains("9999-12-31"),
        "{err}"
    );
}

/// One protobuf record (id bigint, ntz timestamp_ntz, s string) with its
/// checksums, for values the encoder refuses.
fn hand_made_record(id: i64, sec: i64, nano: i32, s: &str) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let zz = |v: i64| ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    let mut crc = 0u32;
    let mut add = |b: &[u8]| crc = crc32c::crc32c_append(crc, b);
    varint(&mut out, 1 << 3);
    varint(&mut out, zz(id));
    add(&1i32.to_le_bytes());
    add(&id.to_le_bytes());
    varint(&mut out, (2 << 3) | 2);
    varint(&mut out, zz(sec));
    varint(&mut out, zz(i64::from(nano)) & 0xffff_ffff);
    add(&2i32.to_le_bytes());
    add(&sec.to_le_bytes());
    add(&nano.to_le_bytes());
    varint(&mut out, (3 << 3) | 2);
    varint(&mut out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
    add(&3i32.to_le_bytes());
    add(s.as_bytes());
    varint(&mut out, u64::from(33_553_408u32 << 3));
    varint(&mut out, u64::from(crc));
    varint(&mut out, u64::from(33_554_430u32 << 3));
    varint(&mut out, zz(1));
    varint(&mut out, u64::from(33_554_431u32 << 3));
    varint(&mut out, u64::from(crc32c::crc32c(&crc.to_le_bytes())));
    out
}

/// Upsert sessions under injected faults (a share of block PUTs and commits
/// fail with a retryable 500 before changing anything): every retry lands,
/// and the table holds each key's last state exactly once.
#[tokio::test]
async fn upserts_under_injected_faults_land_once() {
    use odps_tunnel::types::{Column, OdpsType};
    use odps_tunnel::upsert::{DeltaTable, UpsertOptions};
    let emu = Emulator::start(&[
        "--fail-block-rate",
        "0.3",
        "--fail-commit-rate",
        "0.5",
        "--fault-seed",
        "11",
    ]);
    let client = emu.client("upsert_faults");
    let cols = [
        Column::new("id", OdpsType::Bigint),
        Column::new("v", OdpsType::String),
    ];
    client
        .create_delta_table(&DeltaTable::new("f", &cols, &["id"]).with_buckets(8))
        .await
        .unwrap();
    let options = || UpsertOptions {
        bucket_flush_bytes: 256,
        retry: RetryPolicy {
            max_attempts: 30,
            initial_backoff: std::time::Duration::from_millis(1),
            max_backoff: std::time::Duration::from_millis(5),
        },
        ..UpsertOptions::default()
    };
    let rows = |ids: std::ops::Range<i64>, tag: &str| {
        RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int64Array::from_iter_values(ids.clone())) as ArrayRef,
            ),
            (
                "v",
                Arc::new(StringArray::from_iter_values(
                    ids.map(|i| format!("{tag}{i}")),
                )),
            ),
        ])
        .unwrap()
    };
    let mut s = client
        .create_upsert_session("f", None, options())
        .await
        .unwrap();
    s.upsert(&rows(0..200, "a")).await.unwrap();
    s.commit().await.unwrap();
    let mut s = client
        .create_upsert_session("f", None, options())
        .await
        .unwrap();
    s.upsert(&rows(0..100, "b")).await.unwrap();
    let gone = RecordBatch::try_from_iter([(
        "id",
        Arc::new(Int64Array::from_iter_values(150..200)) as ArrayRef,
    )])
    .unwrap();
    s.delete(&gone).await.unwrap();
    s.commit().await.unwrap();
    let merged = client.query_records("SELECT * FROM f").await.unwrap();
    let ids = merged.batch.column(0).as_primitive::<Int64Type>();
    let vs = merged.batch.column(1).as_string::<i32>();
    let mut got: Vec<(i64, String)> = (0..merged.batch.num_rows())
        .map(|r| (ids.value(r), vs.value(r).to_owned()))
        .collect();
    got.sort();
    let want: Vec<(i64, String)> = (0..150)
        .map(|i| (i, format!("{}{i}", if i < 100 { "b" } else { "a" })))
        .collect();
    assert_eq!(got, want);
}
