//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the plain
//! test that replays their corpus (`tests/fuzz_replay.rs`). They decode
//! everything reachable from the input and must never panic.

use crate::events::{DecodeContext, EventData};
use crate::json::Json;
use crate::reader::BinlogFile;
use crate::value::Value;
use crate::{EventType, PayloadEvents};

/// Decodes every value of every row of `ev` (rendering JSON, applying
/// diffs to an empty document, decompressing columns).
fn touch_rows(ctx: &DecodeContext, ev: &EventData<'_>) {
    let EventData::Rows(rows) = ev else { return };
    let Ok(iter) = ctx.rows(rows) else { return };
    for change in iter {
        let Ok(change) = change else { break };
        for img in [change.before, change.after].into_iter().flatten() {
            for v in img.values() {
                let Ok((_, v)) = v else { break };
                match v {
                    Value::Json(j) => {
                        let _ = j.to_json_text();
                    }
                    Value::JsonDiff(d) => {
                        let _ = d.apply(&Json::from_bytes(&[0, 0, 0, 4, 0]));
                        for e in d.entries() {
                            if e.is_err() {
                                break;
                            }
                        }
                    }
                    Value::Decimal(d) => {
                        let _ = d.to_i128();
                        let _ = d.to_string();
                    }
                    Value::Compressed(_) => {
                        let _ = v.decompress();
                    }
                    Value::Timestamp(t) => {
                        let _ = t.to_string();
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Event decoding: `data` as a binlog file (with or without magic) and as
/// a single network packet.
pub fn decode_events(data: &[u8]) {
    // With CRC32 verification, then without (so corrupt bodies get decoded).
    for verify in [true, false] {
        walk_file(data, verify);
    }
    let mut ctx = DecodeContext::new();
    let _ = ctx.decode_packet(data);
}

fn walk_file(data: &[u8], verify: bool) {
    let mut file = match BinlogFile::new(data) {
        Ok(f) => f,
        Err(_) => BinlogFile::at(data, 0, DecodeContext::new()),
    };
    file.context_mut().set_verify_checksums(verify);
    let mut events = 0usize;
    while let Some(ev) = file.next_event() {
        events += 1;
        if events > 100_000 {
            break;
        }
        let Ok(ev) = ev else { continue };
        touch_rows(file.context(), &ev.data);
        match &ev.data {
            EventData::TransactionPayload(p) => {
                let Ok(buf) = p.decompress() else { continue };
                for raw in PayloadEvents::new(&buf, ev.offset()) {
                    let Ok(raw) = raw else { break };
                    let Ok(inner) = file.context_mut().decode(raw) else {
                        continue;
                    };
                    touch_rows(file.context(), &inner.data);
                }
            }
            EventData::Query(q) => {
                for v in q.status_vars() {
                    if v.is_err() {
                        break;
                    }
                }
            }
            EventData::TableMap(tm) => {
                for f in tm.optional_fields() {
                    if f.is_err() {
                        break;
                    }
                }
            }
            EventData::Gtid(g) => {
                let _ = g.gtid_string();
            }
            EventData::PreviousGtids(p) => {
                let _ = p.to_gtid_set_string();
            }
            _ => {}
        }
    }
}

/// Table maps the row-decoding target can pick from: contexts built from
/// real corpus files.
pub fn row_contexts(files: &[&[u8]]) -> Vec<(DecodeContext, u64)> {
    let mut out = Vec::new();
    for bytes in files {
        let Ok(mut file) = BinlogFile::new(bytes) else {
            continue;
        };
        let mut last_table = None;
        while let Some(ev) = file.next_event() {
            if let Ok(ev) = ev
                && let EventData::TableMap(tm) = ev.data
            {
                last_table = Some(tm.table_id);
            }
        }
        if let Some(id) = last_table {
            out.push((file.context().clone(), id));
        }
    }
    out
}

/// The rows event types [`decode_rows`] picks from (`data[1]` is an index;
/// `fuzz/seed_corpus.py` keeps the same order).
pub const ROW_EVENT_TYPES: [EventType; 8] = [
    EventType::WriteRows,
    EventType::UpdateRows,
    EventType::DeleteRows,
    EventType::PartialUpdateRows,
    EventType::WriteRowsV1,
    EventType::UpdateRowsV1,
    EventType::DeleteRowsV1,
    EventType::WriteRowsCompressedV1,
];

/// Row decoding: `data[0]` picks one of `contexts`, `data[1]` the rows
/// event type (an index into [`ROW_EVENT_TYPES`]), the rest is the rows event body after its table id.
pub fn decode_rows(contexts: &mut [(DecodeContext, u64)], data: &[u8]) {
    if contexts.is_empty() || data.len() < 2 {
        return;
    }
    let (ctx, table_id) = &mut contexts[usize::from(data[0]) % contexts.len()];
    let event_type = ROW_EVENT_TYPES[usize::from(data[1]) % ROW_EVENT_TYPES.len()];
    // A packet without checksum: header, table id, fuzz bytes.
    let body_len = 6 + data.len() - 2;
    let size = 19 + body_len + ctx.format().checksum_len();
    let mut packet = Vec::with_capacity(size);
    packet.extend_from_slice(&[0, 0, 0, 0, event_type.code(), 1, 0, 0, 0]);
    packet.extend_from_slice(&(size as u32).to_le_bytes());
    packet.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    packet.extend_from_slice(&table_id.to_le_bytes()[..6]);
    packet.extend_from_slice(&data[2..]);
    ctx.set_verify_checksums(false);
    packet.resize(size, 0);
    if let Ok(ev) = ctx.decode_packet(&packet) {
        touch_rows(ctx, &ev.data);
    }
}
