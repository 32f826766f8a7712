//! Checks against bytes and signatures produced by pyodps 0.13.2, the official
//! Python SDK (see `testdata/README.md` for how they were made).

use std::fs;
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use odps_tunnel::auth::{Credentials, canonical_string};
use odps_tunnel::encode::arrow::{BlockEncoder, EncoderOptions, decode_block};
use odps_tunnel::encode::proto::{RecordDecoder, RecordEncoder};
use odps_tunnel::types::Column;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn read_stream(name: &str) -> Vec<RecordBatch> {
    let file = fs::File::open(testdata(name)).unwrap();
    StreamReader::try_new(file, None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn columns(spec: &[(&str, &str)]) -> Vec<Column> {
    spec.iter()
        .map(|(n, t)| Column::new(*n, t.parse().unwrap()))
        .collect()
}

fn assert_same_values(got: &RecordBatch, want: &RecordBatch) {
    assert_eq!(got.num_rows(), want.num_rows());
    for (i, field) in want.schema().fields().iter().enumerate() {
        assert_eq!(
            got.column(i).to_data(),
            want.column(i).to_data(),
            "column {}",
            field.name()
        );
    }
}

#[test]
fn signatures_match_pyodps() {
    let cases: serde_json::Value =
        serde_json::from_slice(&fs::read(testdata("signatures.json")).unwrap()).unwrap();
    let creds = Credentials::new("AK", "SK");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let headers: Vec<(String, String)> = case["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let query = case["query"].as_str().unwrap();
        let canonical = canonical_string(
            case["method"].as_str().unwrap(),
            case["path"].as_str().unwrap(),
            (!query.is_empty()).then_some(query),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        assert_eq!(
            creds.authorization(&canonical),
            case["authorization"].as_str().unwrap(),
            "canonical string was:\n{canonical}"
        );
    }
}

const ARROW_COLUMNS: &[(&str, &str)] = &[
    ("id", "bigint"),
    ("i", "int"),
    ("sm", "smallint"),
    ("ti", "tinyint"),
    ("d", "double"),
    ("f", "float"),
    ("dec", "decimal(18,3)"),
    ("s", "string"),
    ("vc", "varchar(10)"),
    ("bin", "binary"),
    ("b", "boolean"),
    ("day", "date"),
    ("dt", "datetime"),
    ("ts", "timestamp"),
    ("arr", "array<bigint>"),
    ("m", "map<string,bigint>"),
    ("st", "struct<x:int,y:string>"),
];

#[test]
fn arrow_block_written_by_pyodps_decodes() {
    let cols = columns(ARROW_COLUMNS);
    let body = fs::read(testdata("arrow_block.bin")).unwrap();
    let got = decode_block(&cols, &body).unwrap();
    let want = read_stream("arrow_block.expected.arrows");
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_same_values(g, w);
    }
}

#[test]
fn arrow_block_we_write_has_pyodps_framing() {
    // Same batches, same chunk size: the framing (chunk layout, checksums)
    // must decode, and the chunk size header must match pyodps's.
    let cols = columns(ARROW_COLUMNS);
    let want = read_stream("arrow_block.expected.arrows");
    let mut enc = BlockEncoder::try_new_with_options(
        &cols,
        EncoderOptions {
            chunk_size: 1000,
            ..EncoderOptions::default()
        },
    )
    .unwrap();
    for b in &want {
        enc.write(b).unwrap();
    }
    let ours = enc.finish();
    let theirs = fs::read(testdata("arrow_block.bin")).unwrap();
    assert_eq!(ours[..4], theirs[..4]);
    let back = decode_block(&cols, &ours).unwrap();
    for (g, w) in back.iter().zip(&want) {
        assert_same_values(g, w);
    }
}

const RECORD_COLUMNS: &[(&str, &str)] = &[
    ("b", "boolean"),
    ("ti", "tinyint"),
    ("sm", "smallint"),
    ("i", "int"),
    ("big", "bigint"),
    ("f", "float"),
    ("d", "double"),
    ("dec", "decimal(20,4)"),
    ("s", "string"),
    ("vc", "varchar(10)"),
    ("ch", "char(4)"),
    ("j", "json"),
    ("bin", "binary"),
    ("day", "date"),
    ("dt", "datetime"),
    ("ts", "timestamp"),
    ("tsn", "timestamp_ntz"),
    ("arr", "array<bigint>"),
    ("m", "map<string,bigint>"),
    ("st", "struct<x:int,y:string>"),
];

#[test]
fn record_stream_written_by_pyodps_decodes() {
    let cols = columns(RECORD_COLUMNS);
    let stream = fs::read(testdata("records.bin")).unwrap();
    let got = RecordDecoder::new(&cols).decode(&stream).unwrap();
    let want = read_stream("records.expected.arrows");
    assert_same_values(&got.batch, &want[0]);
}

#[test]
fn record_stream_we_write_is_byte_identical_to_pyodps() {
    let cols = columns(RECORD_COLUMNS);
    let want = read_stream("records.expected.arrows");
    let mut enc = RecordEncoder::try_new(&cols);
    enc.write(&want[0]).unwrap();
    assert_eq!(enc.finish(), fs::read(testdata("records.bin")).unwrap());
}
