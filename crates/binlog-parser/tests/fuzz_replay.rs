//! Replays the fuzz targets' inputs in plain `cargo test`: every corpus file,
//! every truncation of the small ones, byte flips, rows-event bodies against
//! real table maps, and `fuzz/corpus` + `fuzz/artifacts` when present.
#![allow(clippy::unwrap_used)]

use binlog_parser::DecodeContext;
use binlog_parser::fuzzing::{ROW_EVENT_TYPES, decode_events, decode_rows, row_contexts};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/binlogs");

// `ROW_FILES`: the corpus files whose table maps the row target uses.
include!("../../../fuzz/fuzz_targets/row_files.rs");

fn files() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn corpus_truncations_and_flips_never_panic() {
    for (_, bytes) in files() {
        decode_events(&bytes);
        if bytes.len() > 4096 {
            continue;
        }
        for cut in 0..bytes.len() {
            decode_events(&bytes[..cut]);
        }
        for pos in (4..bytes.len()).step_by(3) {
            let mut b = bytes.clone();
            b[pos] ^= 0xa5;
            decode_events(&b);
        }
    }
}

/// The row target's table maps: contexts built from `ROW_FILES`.
fn row_file_contexts() -> Vec<(DecodeContext, u64)> {
    row_contexts(&ROW_FILES)
}

/// Rows-event seeds as `seed_corpus.py` builds them.
fn row_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (idx, data) in ROW_FILES.iter().enumerate() {
        let mut pos = 4;
        while pos + 19 <= data.len() {
            let t = data[pos + 4];
            let size = u32::from_le_bytes(data[pos + 9..pos + 13].try_into().unwrap()) as usize;
            if size < 19 || pos + size > data.len() {
                break;
            }
            if let Some(ti) = ROW_EVENT_TYPES.iter().position(|x| x.code() == t) {
                let body = &data[pos + 19..pos + size - 4];
                let mut seed = vec![idx as u8, ti as u8];
                seed.extend_from_slice(&body[6..]);
                seeds.push(seed);
            }
            pos += size;
        }
    }
    seeds
}

#[test]
fn rows_seeds_and_mutations_never_panic() {
    let mut ctxs = row_file_contexts();
    assert_eq!(ctxs.len(), ROW_FILES.len());
    let seeds = row_seeds();
    assert!(seeds.len() >= 25, "{}", seeds.len());
    for seed in &seeds {
        decode_rows(&mut ctxs, seed);
        for cut in 0..seed.len() {
            decode_rows(&mut ctxs, &seed[..cut]);
        }
        for pos in 2..seed.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut s = seed.clone();
                s[pos] ^= flip;
                decode_rows(&mut ctxs, &s);
            }
        }
        // Every event type against every table.
        for t in 0..ROW_EVENT_TYPES.len() as u8 {
            for c in 0..ctxs.len() as u8 {
                let mut s = seed.clone();
                s[0] = c;
                s[1] = t;
                decode_rows(&mut ctxs, &s);
            }
        }
    }
}

#[test]
fn fuzz_corpus_and_artifacts_never_panic() {
    let fuzz = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");
    let mut ctxs = row_file_contexts();
    for sub in ["corpus", "artifacts"] {
        for (target, rows) in [("binlog_events", false), ("binlog_rows", true)] {
            let Ok(dir) = std::fs::read_dir(format!("{fuzz}/{sub}/{target}")) else {
                continue; // absent in a fresh clone
            };
            for e in dir {
                let data = std::fs::read(e.unwrap().path()).unwrap();
                if rows {
                    decode_rows(&mut ctxs, &data);
                } else {
                    decode_events(&data);
                }
            }
        }
    }
}

/// Inputs that once crashed a fuzz target, kept in `testdata/fuzz/`
/// (`rows-*` for the row target, `events-*` for the event target).
#[test]
fn past_fuzz_crashes_never_panic() {
    // rows-json-diff-length-overflow: a partial-update JSON diff whose value
    // length (8-byte packed int) overflowed `pos + len` (found with debug
    // assertions on; release builds wrapped).
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/fuzz");
    let mut ctxs = row_file_contexts();
    let mut replayed = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        if name.starts_with("rows-") {
            decode_rows(&mut ctxs, &data);
        } else if name.starts_with("events-") {
            decode_events(&data);
        } else {
            continue;
        }
        replayed += 1;
    }
    assert!(replayed >= 1, "no crash inputs found in {dir}");
}
