//! Every corpus file decodes to its end (or to a typed error at a known
//! offset), and the tricky files decode to the values the MySQL tests wrote.
#![allow(clippy::unwrap_used)]

use binlog_parser::{
    BinlogFile, DecodeContext, Error, EventData, EventType, RowsEvent, TableMap, Value,
};

fn corpus(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/binlogs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Decodes every event and every value; returns (event types, row images
/// as text, errors).
struct Walk {
    types: Vec<EventType>,
    images: Vec<String>,
    errors: Vec<Error>,
}

fn show(v: &Value<'_>) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Year(y) => y.to_string(),
        Value::Date(d) => d.to_string(),
        Value::Time(t) => t.to_string(),
        Value::DateTime(d) => d.to_string(),
        Value::Timestamp(t) => format!("ts:{}", t.seconds),
        Value::String(s) => format!("'{}'", String::from_utf8_lossy(s)),
        Value::Bytes(b) => format!(
            "x'{}'",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
        Value::Enum(e) => format!("enum:{e}"),
        Value::Set(s) => format!("set:{s}"),
        Value::Bit(b) => format!("b:{b}"),
        Value::Json(j) => format!("json:{}", j.to_json_text().unwrap()),
        Value::JsonDiff(d) => format!("diff:{}", d.entries().count()),
        Value::Geometry(g) => format!("geom:{}", g.len()),
        Value::Vector(v) => format!(
            "vec:{:?}",
            v.chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>()
        ),
        other => format!("{other:?}"),
    }
}

/// Appends every image of `rows` as `"B|A i=value ..."`.
fn push_images(ctx: &DecodeContext, rows: &RowsEvent<'_>, images: &mut Vec<String>) {
    for change in ctx.rows(rows).unwrap() {
        let change = change.unwrap();
        for (tag, img) in [("B", change.before), ("A", change.after)] {
            if let Some(img) = img {
                let vals: Vec<String> = img
                    .values()
                    .map(|r| {
                        let (i, v) = r.unwrap();
                        format!("{i}={}", show(&v))
                    })
                    .collect();
                images.push(format!("{tag} {}", vals.join(" ")));
            }
        }
    }
}

fn walk(name: &str) -> Walk {
    let bytes = corpus(name);
    let mut w = Walk {
        types: Vec::new(),
        images: Vec::new(),
        errors: Vec::new(),
    };
    let mut file = match BinlogFile::new(&bytes) {
        Ok(f) => f,
        Err(e) => {
            w.errors.push(e);
            return w;
        }
    };
    while let Some(ev) = file.next_event() {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                w.errors.push(e);
                continue;
            }
        };
        w.types.push(ev.event_type());
        match &ev.data {
            EventData::Rows(rows) => push_images(file.context(), rows, &mut w.images),
            EventData::TransactionPayload(p) => {
                let buf = p.decompress().unwrap();
                let inner = binlog_parser::PayloadEvents::new(&buf, ev.offset());
                for raw in inner {
                    let iev = file.context_mut().decode(raw.unwrap()).unwrap();
                    w.types.push(iev.event_type());
                    if let EventData::Rows(rows) = &iev.data {
                        push_images(file.context(), rows, &mut w.images);
                    }
                }
            }
            _ => {}
        }
    }
    w
}

/// Every table map of the file, in order.
fn table_maps(bytes: &[u8]) -> Vec<TableMap> {
    let mut file = BinlogFile::new(bytes).unwrap();
    let mut maps = Vec::new();
    while let Some(ev) = file.next_event() {
        if let EventData::TableMap(tm) = ev.unwrap().data {
            maps.push(file.context().table(tm.table_id).unwrap().clone());
        }
    }
    maps
}

const ALL: &[&str] = &[
    "binlog-invisible-columns.000001",
    "binlog_56_gtid_reserved_word.000001",
    "binlog_savepoint.000001",
    "binlog_transaction.000001",
    "binlog_transaction_previous_GTID_no_tag.000001",
    "binlog_transaction_with_GTID.000001",
    "binlog_transaction_with_GTID_TAG.000001",
    "binlog_transaction_with_anonymous_GTID.000001",
    "binlog_truncated_event.000001",
    "binlog_truncated_prev_gtid_event.000001",
    "bug11747887-bin.000003",
    "bug16266.000001",
    "bug27213339-bin.000001",
    "bug32407.001",
    "bug33029-slave-relay-bin.000001",
    "bug40482-bin.000001",
    "corrupt-relay-bin.000624",
    "json-opaque.binlog",
    "json.binlog.000001",
    "mariadb-bin.000001",
    "master-bin.000001",
    "minimal_row_metadata.000001",
    "mysql-enum-string-set.000001",
    "mysql_type_bit.000001",
    "rpl_atomic_ddl_rollback_full.000001",
    "rpl_atomic_ddl_rollback_table.000001",
    "rpl_atomic_ddl_rollback_view.000001",
    "rpl_cross_version_default_utf8mb4_collation.000001",
    "rpl_unfiltered_hidden_gcol.000001",
    "slave-relay-bin.000001",
    "time_issue.000001",
    "transaction_compression.000001",
    "update-full-row.binlog",
    "update-partial-row.binlog",
    "vector.binlog",
    "ver_5_1-wl2325_r.001",
    "ver_5_1-wl2325_s.001",
    "ver_5_1_23.001",
    "ver_trunk_row_v2.001",
    "write-full-row.binlog",
    "write-partial-row.binlog",
];

#[test]
fn every_file_decodes_to_the_end_or_fails_where_expected() {
    let dir = format!("{}/testdata/binlogs", env!("CARGO_MANIFEST_DIR"));
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".md")
        })
        .count();
    assert_eq!(on_disk, ALL.len(), "corpus list out of date");
    for name in ALL {
        let w = walk(name);
        let errs: Vec<String> = w
            .errors
            .iter()
            .map(|e| match e {
                Error::Truncated { offset, .. } => format!("truncated@{offset}"),
                Error::Malformed {
                    offset, event_type, ..
                } => format!("malformed {event_type:?}@{offset}"),
                other => format!("{other}"),
            })
            .collect();
        let expected: &[&str] = match *name {
            "binlog_truncated_event.000001" => &["truncated@4"],
            "binlog_truncated_prev_gtid_event.000001" => &["truncated@120"],
            // QUERY with a corrupt status-variable block (log_pos 199 in the source).
            "corrupt-relay-bin.000624" => &["malformed Query@91204"],
            // Deliberately broken TABLE_MAP of MySQL's wl2325 test.
            "ver_5_1-wl2325_r.001" => &["malformed TableMap@650"],
            _ => &[],
        };
        assert_eq!(errs, expected, "{name}");
        if expected.is_empty() {
            assert!(!w.types.is_empty(), "{name}: no events");
        }
    }
}

#[test]
fn corrupt_relay_log_continues_after_the_bad_event() {
    let w = walk("corrupt-relay-bin.000624");
    assert_eq!(w.types.last(), Some(&EventType::Rotate));
    assert_eq!(
        w.types
            .iter()
            .filter(|t| **t == EventType::FormatDescription)
            .count(),
        2
    );
}

#[test]
fn negative_time() {
    assert_eq!(walk("time_issue.000001").images, ["A 0=-507:48:27"]);
}

#[test]
fn json_opaque_values() {
    assert_eq!(
        walk("json-opaque.binlog").images,
        [
            "A 0=json:{\"a\": \"base64:type15:VQ==\"}",
            "A 0=json:{\"b\": \"2012-03-18\"}",
            "A 0=json:{\"c\": \"2012-03-18 11:30:45.000000\"}",
            "A 0=json:{\"c\": \"87:31:46.654321\"}",
            "A 0=json:{\"d\": 123.456}",
            "A 0=json:{\"e\": 9.00}",
            "A 0=json:{\"e\": [0, 1, true, false]}",
            "A 0=json:{\"e\": null}",
        ]
    );
}

#[test]
fn vector_values() {
    let w = walk("vector.binlog");
    assert!(
        w.images.contains(&"A 0=1 1=vec:[1.1, 2.2, 3.3]".to_owned()),
        "{:?}",
        w.images
    );
    assert!(
        w.images
            .contains(&"A 0=2 1=vec:[1.0, -1.0, 0.0]".to_owned()),
        "{:?}",
        w.images
    );
}

#[test]
fn bit_values() {
    assert_eq!(
        walk("mysql_type_bit.000001").images,
        ["A 0=b:4 1='foo' 2=b:32"]
    );
}

#[test]
fn compressed_transaction() {
    let w = walk("transaction_compression.000001");
    assert!(w.types.contains(&EventType::TransactionPayload));
    assert!(w.types.contains(&EventType::TableMap));
    assert!(w.types.contains(&EventType::Xid));
    assert_eq!(w.images.len(), 1, "{:?}", w.images);
}

fn members_of(bytes: &[u8], col: usize, enum_or_set: u64) -> String {
    let maps = table_maps(bytes);
    let c = &maps.first().expect("no table map").columns[col];
    let names: Vec<String> = c
        .members
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    match c.kind {
        binlog_parser::ColumnType::Enum => names[enum_or_set as usize - 1].clone(),
        _ => names
            .iter()
            .enumerate()
            .filter(|(i, _)| enum_or_set & (1 << i) != 0)
            .map(|(_, n)| n.as_str())
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[test]
fn enum_set_and_long_char() {
    let w = walk("mysql-enum-string-set.000001");
    assert_eq!(w.images.len(), 4);
    // CHAR(128) utf8mb4: max 512 bytes, so a 2-byte length (the real-type trick).
    let first = &w.images[0];
    assert!(first.starts_with("A 0='0123456789"), "{first}");
    let after_update = &w.images[2];
    assert!(
        after_update.starts_with("A 0='field1' 1='field_2' 2=enum:2 3=set:10 4='0123"),
        "{after_update}"
    );
    let bytes = corpus("mysql-enum-string-set.000001");
    assert_eq!(members_of(&bytes, 2, 2), "variant2");
    assert_eq!(members_of(&bytes, 3, 10), "two,four");
}

#[test]
fn invisible_columns() {
    assert_eq!(
        walk("binlog-invisible-columns.000001").images,
        [
            "A 0=1 1=2 2=-3 3='4' 4=x'05' 5=6000000000",
            "A 0=NULL 1=NULL 2=-33 3='44' 4=x'55' 5=NULL",
            "B 0=NULL 1=NULL 2=-33 3='44' 4=x'55' 5=NULL",
            "A 0=111 1=222 2=-333 3='444' 4=x'55' 5=NULL",
        ]
    );
    for t in table_maps(&corpus("binlog-invisible-columns.000001")) {
        let vis: Vec<bool> = t.columns.iter().map(|c| c.visible.unwrap()).collect();
        assert_eq!(vis, [false, false, true, true, true, false]);
        assert_eq!(t.columns[5].name.as_deref(), Some("f6"));
        assert!(t.columns[5].unsigned && !t.columns[2].unsigned);
    }
}

#[test]
fn hidden_generated_column_is_absent_from_the_image() {
    // Table map: a, the hidden functional-index column, b; image: a and b.
    assert_eq!(
        walk("rpl_unfiltered_hidden_gcol.000001").images,
        ["A 0=1 2='1'"]
    );
}

#[test]
fn minimal_row_metadata_partial_image() {
    assert_eq!(
        walk("minimal_row_metadata.000001").images,
        ["A 0=1 2='a' 4=3230202323"]
    );
}

#[test]
fn tagged_gtids() {
    let bytes = corpus("binlog_transaction_with_GTID_TAG.000001");
    let mut gtids = Vec::new();
    let mut prev = String::new();
    for ev in BinlogFile::new(&bytes).unwrap() {
        match ev.unwrap().data {
            EventData::Gtid(g) => gtids.push(g.gtid_string()),
            EventData::PreviousGtids(p) => prev = p.to_gtid_set_string(),
            _ => {}
        }
    }
    assert_eq!(gtids, ["55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3"]);
    assert_eq!(
        prev,
        "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13,55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:1-2"
    );
    assert_eq!(
        walk("binlog_transaction_with_GTID_TAG.000001").images,
        ["A 0=3 1=100 2=250.00"]
    );
}

#[test]
fn mariadb_file() {
    let w = walk("mariadb-bin.000001");
    assert_eq!(
        w.images,
        [
            "A 0=62 1='foo' 2=enum:2 3=x'7b22666f6f223a317d' 4=ts:1650493084",
            "A 0=63 1='foo' 2=enum:2 3=x'7b22666f6f223a317d' 4=ts:1650493195",
        ]
    );
    let bytes = corpus("mariadb-bin.000001");
    assert_eq!(members_of(&bytes, 2, 2), "JSON");
    let mut seqs = Vec::new();
    let mut annotate = Vec::new();
    for ev in BinlogFile::new(&bytes).unwrap() {
        match ev.unwrap().data {
            EventData::MariadbGtid(g) => seqs.push((g.domain_id, g.seq_no)),
            EventData::AnnotateRows(a) => {
                annotate.push(String::from_utf8_lossy(a.query).into_owned())
            }
            EventData::BinlogCheckpoint(c) => assert_eq!(c.name, b"mariadb-bin.000001"),
            _ => {}
        }
    }
    assert_eq!(seqs, [(0, 1), (0, 2)]);
    assert!(
        annotate[0].starts_with("insert into outbox"),
        "{annotate:?}"
    );
}

#[test]
fn partial_json_update_applies_to_the_before_document() {
    let bytes = corpus("json.binlog.000001");
    let mut file = BinlogFile::new(&bytes).unwrap();
    // Last full JSON document per id, then the partial diffs applied to it.
    let mut docs = std::collections::BTreeMap::new();
    let mut applied = Vec::new();
    while let Some(ev) = file.next_event() {
        let ev = ev.unwrap();
        let EventData::Rows(rows) = &ev.data else {
            continue;
        };
        for change in file.context().rows(rows).unwrap() {
            let change = change.unwrap();
            let before_id = change.before.map(|b| b.get(0).unwrap().unwrap());
            let Some(after) = change.after else { continue };
            let vals: Vec<_> = after.values().map(|r| r.unwrap()).collect();
            let id = vals
                .iter()
                .find(|(i, _)| *i == 0)
                .map(|(_, v)| *v)
                .or(before_id)
                .unwrap();
            let Value::Int(id) = id else { panic!() };
            for (i, v) in &vals {
                match v {
                    Value::Json(j) => {
                        docs.insert(id, j.as_bytes().to_vec());
                    }
                    Value::JsonDiff(d) => {
                        assert_eq!(*i, 1);
                        let before = binlog_parser::Json::from_bytes(&docs[&id]);
                        let text = d.apply(&before).unwrap();
                        // The generated column `age` of the same image must agree.
                        let age = vals.iter().find(|(c, _)| *c == 3).unwrap().1;
                        applied.push((id, text, age.as_i128()));
                    }
                    _ => {}
                }
            }
        }
    }
    assert_eq!(applied.len(), 6);
    assert_eq!(
        applied[0],
        (
            1,
            r#"{"age": 26, "data": "xxxxxxxxxx", "name": "Joe"}"#.to_owned(),
            Some(26)
        )
    );
    assert_eq!(
        applied[5],
        (
            6,
            r#"{"age": 42, "data": "zzzzzzzzzz", "name": "Pete"}"#.to_owned(),
            Some(42)
        )
    );
}

#[test]
fn checksum_mismatch_is_a_typed_error_at_the_event() {
    let mut bytes = corpus("mysql_type_bit.000001");
    // Corrupt one byte inside the rows event at offset 927.
    bytes[927 + 25] ^= 0x55;
    let errs: Vec<Error> = BinlogFile::new(&bytes)
        .unwrap()
        .filter_map(|e| e.err())
        .collect();
    assert_eq!(errs.len(), 1);
    assert!(
        matches!(errs[0], Error::Checksum { offset: 927, .. }),
        "{:?}",
        errs[0]
    );
}

/// A reader that hands out at most 7 bytes per call.
struct Dribble<'a>(&'a [u8]);
impl std::io::Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(7).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn stream_reader_matches_slice_reader() {
    for name in ALL {
        let bytes = corpus(name);
        let from_slice: Vec<String> = match BinlogFile::new(&bytes) {
            Ok(f) => f
                .map(|r| match r {
                    Ok(ev) => format!("{}:{:?}", ev.offset(), ev.event_type()),
                    Err(e) => format!("err@{}", e.offset()),
                })
                .collect(),
            Err(e) => vec![format!("err@{}", e.offset())],
        };
        let mut from_stream = Vec::new();
        match binlog_parser::BinlogReader::new(Dribble(&bytes)) {
            Err(e) => from_stream.push(format!("err@{}", e.offset())),
            Ok(mut r) => loop {
                let pos = r.position();
                match r.next_event() {
                    Ok(Some((ev, _))) => {
                        from_stream.push(format!("{}:{:?}", ev.offset(), ev.event_type()))
                    }
                    Ok(None) => break,
                    Err(e) => {
                        from_stream.push(format!("err@{}", e.offset()));
                        // A decode error leaves the stream at the next event.
                        if r.position() == pos {
                            break;
                        }
                    }
                }
            },
        }
        assert_eq!(from_slice, from_stream, "{name}");
    }
}

#[test]
fn network_packets_decode_like_the_file() {
    let bytes = corpus("json.binlog.000001");
    let mut ctx = binlog_parser::DecodeContext::new();
    let mut pos = 4;
    let mut images = 0;
    while pos < bytes.len() {
        let size = u32::from_le_bytes(bytes[pos + 9..pos + 13].try_into().unwrap()) as usize;
        // A packet is exactly one event (after the 0x00 OK byte).
        let packet = bytes[pos..pos + size].to_vec();
        let ev = ctx.decode_packet(&packet).unwrap();
        if let EventData::Rows(r) = &ev.data {
            for ch in ctx.rows(r).unwrap() {
                let ch = ch.unwrap();
                images += usize::from(ch.before.is_some()) + usize::from(ch.after.is_some());
            }
        }
        pos += size;
    }
    assert_eq!(images, 30);
}

#[test]
fn incident_event_then_rotate() {
    let bytes = corpus("bug40482-bin.000001");
    let events: Vec<(u64, EventType, String)> = BinlogFile::new(&bytes)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let detail = match &e.data {
                EventData::Incident(i) => {
                    format!("message={:?}", String::from_utf8_lossy(i.message))
                }
                EventData::Rotate(r) => format!("{}@{}", r.name_lossy(), r.position),
                _ => String::new(),
            };
            (e.offset(), e.event_type(), detail)
        })
        .collect();
    assert_eq!(
        events,
        [
            (4, EventType::FormatDescription, String::new()),
            (106, EventType::Incident, "message=\"\"".to_owned()),
            (128, EventType::Rotate, "master-bin.000003@4".to_owned()),
        ]
    );
}

#[test]
fn heartbeat_v2_packet() {
    // HEARTBEAT_V2 body: (type, len, value)… then 0; 1 = log name, 2 = position.
    let mut body = vec![1u8, 17];
    body.extend_from_slice(b"mariadb-bin.00042");
    body.extend_from_slice(&[2, 3, 0xfc, 0x34, 0x12, 0]);
    let size = 19 + body.len();
    let mut packet = vec![0, 0, 0, 0, 41, 1, 0, 0, 0];
    packet.extend_from_slice(&(size as u32).to_le_bytes());
    packet.extend_from_slice(&[0; 6]);
    packet.extend_from_slice(&body);
    let mut ctx = binlog_parser::DecodeContext::new();
    let ev = ctx.decode_packet(&packet).unwrap();
    let EventData::Heartbeat(h) = ev.data else {
        panic!("{:?}", ev.data)
    };
    assert_eq!(h.log_name, b"mariadb-bin.00042");
    assert_eq!(h.position, 0x1234);
}
