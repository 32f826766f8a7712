//! `sync-cli binlog dump|stats FILE`: print or count what a binlog file holds,
//! decoded with `binlog-parser`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use binlog_parser::{
    BinlogFile, Column, ColumnType, DecodeContext, Event, EventData, PayloadEvents, RowImage,
    RowsKind, TableMap, Value,
};
use clap::{Args, Subcommand};
use serde_json::{Map, Value as Json, json};

/// `sync-cli binlog …`
#[derive(Debug, Args)]
pub(crate) struct BinlogArgs {
    #[command(subcommand)]
    command: BinlogCommand,
}

#[derive(Debug, Subcommand)]
enum BinlogCommand {
    /// Print every event and row change (like `mysqlbinlog -v`).
    Dump {
        /// Binlog file.
        file: PathBuf,
        /// One JSON object per row change instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Decode every value of every row and print counts and throughput.
    Stats {
        /// Binlog file.
        file: PathBuf,
        /// One JSON object (keys `events`, `row_images`, `bytes`, …).
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `binlog` subcommand.
pub(crate) fn run(args: BinlogArgs) -> anyhow::Result<()> {
    match args.command {
        BinlogCommand::Dump { file, json } => dump(&file, json),
        BinlogCommand::Stats { file, json } => stats(&file, json),
    }
}

fn read(file: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

/// Calls `f` for every event, descending into transaction payloads.
/// Decode errors of single events are reported and skipped; framing errors end the walk.
fn walk(
    bytes: &[u8],
    mut f: impl FnMut(&Event<'_>, &DecodeContext),
    mut on_error: impl FnMut(binlog_parser::Error),
) -> anyhow::Result<()> {
    let mut file = BinlogFile::new(bytes)?;
    while let Some(ev) = file.next_event() {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                on_error(e);
                continue;
            }
        };
        f(&ev, file.context());
        if let EventData::TransactionPayload(p) = &ev.data {
            let buf = match p.decompress() {
                Ok(b) => b,
                Err(e) => {
                    on_error(e);
                    continue;
                }
            };
            for raw in PayloadEvents::new(&buf, ev.offset()) {
                match raw.and_then(|r| file.context_mut().decode(r)) {
                    Ok(inner) => f(&inner, file.context()),
                    Err(e) => {
                        on_error(e);
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

fn column_label(t: &TableMap, idx: usize) -> String {
    t.columns[idx]
        .name
        .clone()
        .unwrap_or_else(|| format!("@{}", idx + 1))
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(2 + b.len() * 2);
    s.push_str("0x");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

fn text_or_hex(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => hex(b),
    }
}

fn member(col: &Column, i: usize) -> Option<String> {
    col.members
        .get(i)
        .map(|m| String::from_utf8_lossy(m).into_owned())
}

fn to_json(col: &Column, v: &Value<'_>) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Float(f) => json!(f),
        Value::Double(d) => json!(d),
        Value::Decimal(d) => json!(d.to_string()),
        Value::Year(y) => json!(y),
        Value::Date(d) => json!(d.to_string()),
        Value::Time(t) => json!(t.to_string()),
        Value::DateTime(d) => json!(d.to_string()),
        Value::Timestamp(t) => json!(t.to_string()),
        Value::String(b) => json!(String::from_utf8_lossy(b)),
        Value::Bytes(b) if col.kind == ColumnType::Blob && col.charset.is_none() => {
            json!(text_or_hex(b))
        }
        Value::Bytes(b) => json!(hex(b)),
        Value::Enum(e) => match usize::from(*e).checked_sub(1).and_then(|i| member(col, i)) {
            Some(m) => json!(m),
            None => json!(e),
        },
        Value::Set(s) if !col.members.is_empty() => json!(
            (0..col.members.len())
                .filter(|i| s & (1 << i) != 0)
                .filter_map(|i| member(col, i))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Set(s) => json!(s),
        Value::Bit(b) => json!(b),
        Value::Json(j) => match j.to_json_text() {
            Ok(t) => serde_json::from_str(&t).unwrap_or(Json::String(t)),
            Err(e) => json!({ "error": e.to_string() }),
        },
        Value::JsonDiff(d) => Json::Array(
            d.entries()
                .map(|e| match e {
                    Ok(e) => json!({
                        "op": format!("{:?}", e.op),
                        "path": String::from_utf8_lossy(e.path),
                        "value": e.value.and_then(|v| v.to_json_text().ok()),
                    }),
                    Err(err) => json!({ "error": err.to_string() }),
                })
                .collect(),
        ),
        Value::Geometry(g) => json!(hex(g)),
        Value::Vector(v) => json!(
            v.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>()
        ),
        Value::Compressed(_) => match v.decompress() {
            Ok(b) => json!(text_or_hex(&b)),
            Err(e) => json!({ "error": e }),
        },
        other => json!(format!("{other:?}")),
    }
}

fn image_json(img: &RowImage<'_, '_>) -> anyhow::Result<Json> {
    let t = img.table();
    let mut m = Map::new();
    for r in img.values() {
        let (idx, v) = r?;
        m.insert(column_label(t, idx), to_json(&t.columns[idx], &v));
    }
    Ok(Json::Object(m))
}

fn kind_name(k: RowsKind) -> &'static str {
    match k {
        RowsKind::Write => "insert",
        RowsKind::Update => "update",
        RowsKind::PartialUpdate => "partial_update",
        RowsKind::Delete => "delete",
    }
}

fn dump(path: &PathBuf, as_json: bool) -> anyhow::Result<()> {
    let bytes = read(path)?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut errors = 0usize;
    let mut failure: Option<anyhow::Error> = None;
    walk(
        &bytes,
        |ev, ctx| {
            if failure.is_some() {
                return;
            }
            if let Err(e) = dump_event(&mut out, ev, ctx, as_json) {
                failure = Some(e);
            }
        },
        |e| {
            errors += 1;
            eprintln!("error: {e}");
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    out.flush()?;
    if errors > 0 {
        anyhow::bail!("{errors} events could not be decoded");
    }
    Ok(())
}

fn dump_event(
    out: &mut impl Write,
    ev: &Event<'_>,
    ctx: &DecodeContext,
    as_json: bool,
) -> anyhow::Result<()> {
    let h = ev.header();
    if !as_json {
        writeln!(
            out,
            "# at {}  {}  server_id={} end_log_pos={} ts={}",
            ev.offset(),
            h.event_type.name(),
            h.server_id,
            h.log_pos,
            h.timestamp
        )?;
    }
    match &ev.data {
        EventData::Rows(rows) => {
            let table = ctx.table(rows.table_id).ok_or_else(|| {
                anyhow::anyhow!(
                    "no table map for table id {} at {}",
                    rows.table_id,
                    ev.offset()
                )
            })?;
            for change in rows.rows(table)? {
                let change = change?;
                if as_json {
                    let mut o = Map::new();
                    o.insert("offset".into(), json!(ev.offset()));
                    o.insert("type".into(), json!(kind_name(rows.kind)));
                    o.insert("schema".into(), json!(table.schema));
                    o.insert("table".into(), json!(table.table));
                    if let Some(b) = change.before {
                        o.insert("before".into(), image_json(&b)?);
                    }
                    if let Some(a) = change.after {
                        o.insert("after".into(), image_json(&a)?);
                    }
                    writeln!(out, "{}", Json::Object(o))?;
                } else {
                    let verb = match rows.kind {
                        RowsKind::Write => "INSERT INTO",
                        RowsKind::Update | RowsKind::PartialUpdate => "UPDATE",
                        RowsKind::Delete => "DELETE FROM",
                    };
                    writeln!(out, "### {verb} `{}`.`{}`", table.schema, table.table)?;
                    for (label, img) in [("WHERE", change.before), ("SET", change.after)] {
                        let Some(img) = img else { continue };
                        writeln!(out, "### {label}")?;
                        for r in img.values() {
                            let (idx, v) = r?;
                            let col = &table.columns[idx];
                            writeln!(
                                out,
                                "###   @{}={} /* {} */",
                                idx + 1,
                                to_json(col, &v),
                                col.name.as_deref().unwrap_or("")
                            )?;
                        }
                    }
                }
            }
        }
        _ if as_json => {}
        EventData::Query(q) => writeln!(out, "{};", q.query_lossy())?,
        EventData::Gtid(g) => writeln!(out, "# GTID {}", g.gtid_string())?,
        EventData::MariadbGtid(g) => {
            writeln!(out, "# GTID {}-{}-{}", g.domain_id, h.server_id, g.seq_no)?
        }
        EventData::Xid(x) => writeln!(out, "COMMIT /* xid={} */;", x.xid)?,
        EventData::XaPrepare(x) => {
            let xid = sync_core::xa::xid_text(x.xid.format_id, x.xid.gtrid, x.xid.bqual);
            if x.one_phase {
                writeln!(out, "XA COMMIT {xid} ONE PHASE;")?
            } else {
                writeln!(out, "XA PREPARE {xid};")?
            }
        }
        EventData::Rotate(r) => writeln!(out, "# rotate to {} pos {}", r.name_lossy(), r.position)?,
        EventData::TableMap(tm) => writeln!(
            out,
            "# table map {}: `{}`.`{}`",
            tm.table_id,
            String::from_utf8_lossy(tm.schema),
            String::from_utf8_lossy(tm.table)
        )?,
        EventData::AnnotateRows(a) => writeln!(out, "# {}", String::from_utf8_lossy(a.query))?,
        EventData::RowsQuery(a) => writeln!(out, "# {}", String::from_utf8_lossy(a.query))?,
        EventData::FormatDescription(f) => writeln!(
            out,
            "# server {} binlog v{} checksum {:?}",
            f.server_version, f.binlog_version, f.checksum_alg
        )?,
        _ => {}
    }
    Ok(())
}

/// Counts gathered by `binlog stats`.
#[derive(Debug, Default)]
struct Stats {
    events: u64,
    row_images: u64,
    values: u64,
    errors: u64,
    /// The first decode error, with where it happened.
    first_error: Option<String>,
    by_type: BTreeMap<&'static str, u64>,
    rows_per_table: BTreeMap<String, u64>,
}

/// Decodes every event and every value of `bytes`.
fn collect_stats(bytes: &[u8]) -> anyhow::Result<Stats> {
    let mut st = Stats::default();
    let errors = std::cell::Cell::new(0u64);
    let first = std::cell::RefCell::new(None::<String>);
    let failed = |what: String| {
        errors.set(errors.get() + 1);
        first.borrow_mut().get_or_insert(what);
    };
    walk(
        bytes,
        |ev, ctx| {
            st.events += 1;
            *st.by_type.entry(ev.event_type().name()).or_default() += 1;
            let EventData::Rows(rows) = &ev.data else {
                return;
            };
            let at = ev.header().log_pos;
            let Some(table) = ctx.table(rows.table_id) else {
                failed(format!(
                    "the rows event ending at offset {at} names table id {} without a table map",
                    rows.table_id
                ));
                return;
            };
            let changes = match rows.rows(table) {
                Ok(c) => c,
                Err(e) => {
                    failed(format!("the rows event ending at offset {at}: {e}"));
                    return;
                }
            };
            let mut n = 0u64;
            for change in changes {
                let change = match change {
                    Ok(c) => c,
                    Err(e) => {
                        failed(format!(
                            "a row of the rows event ending at offset {at}: {e}"
                        ));
                        break;
                    }
                };
                n += 1;
                for img in [change.before, change.after].into_iter().flatten() {
                    st.row_images += 1;
                    for v in img.values() {
                        match v {
                            Ok(v) => {
                                std::hint::black_box(v);
                                st.values += 1;
                            }
                            Err(e) => failed(format!(
                                "a value in the rows event ending at offset {at}: {e}"
                            )),
                        }
                    }
                }
            }
            let key = format!("{}.{}", table.schema, table.table);
            match st.rows_per_table.get_mut(&key) {
                Some(c) => *c += n,
                None => {
                    st.rows_per_table.insert(key, n);
                }
            }
        },
        |e| failed(e.to_string()),
    )?;
    st.errors = errors.get();
    st.first_error = first.into_inner();
    Ok(st)
}

fn stats(path: &PathBuf, as_json: bool) -> anyhow::Result<()> {
    let bytes = read(path)?;
    let started = Instant::now();
    let st = collect_stats(&bytes)?;
    let secs = started.elapsed().as_secs_f64();
    let mbps = bytes.len() as f64 / 1e6 / secs.max(1e-9);
    if as_json {
        let o = json!({
            "events": st.events,
            "row_images": st.row_images,
            "values": st.values,
            "bytes": bytes.len(),
            "errors": st.errors,
            "events_by_type": st.by_type,
            "rows_per_table": st.rows_per_table,
            "seconds": secs,
            "decode_mb_per_s": mbps,
        });
        println!("{o}");
    } else {
        println!("file:        {}", path.display());
        println!("bytes:       {}", bytes.len());
        println!("events:      {}", st.events);
        println!("row images:  {}", st.row_images);
        println!("values:      {}", st.values);
        println!("errors:      {}", st.errors);
        println!("decode:      {secs:.3} s, {mbps:.1} MB/s");
        println!("events by type:");
        for (t, n) in &st.by_type {
            println!("  {t:<28} {n}");
        }
        println!("rows per table:");
        for (t, n) in &st.rows_per_table {
            println!("  {t:<40} {n}");
        }
    }
    // As `dump` does: counts over events that could not be decoded are not
    // the file's, and a script must be able to tell.
    if st.errors > 0 {
        anyhow::bail!(
            "{} events could not be decoded; the first: {}",
            st.errors,
            st.first_error.as_deref().unwrap_or("(no detail)")
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<u8> {
        let p = format!(
            "{}/../binlog-parser/testdata/binlogs/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(p).unwrap()
    }

    #[test]
    fn stats_count_images_and_types() {
        let st = collect_stats(&corpus("json.binlog.000001")).unwrap();
        // 3 + 3 inserts, 6 updates and 6 partial updates (two images each).
        assert_eq!(st.row_images, 30);
        assert_eq!(st.errors, 0);
        assert_eq!(st.by_type["PartialUpdateRows"], 1);
        assert_eq!(st.rows_per_table["mysql.t"], 18);
    }

    #[test]
    fn stats_fail_when_an_event_cannot_be_decoded() {
        let mut bytes = corpus("json.binlog.000001");
        // A byte inside the last event's body: its checksum no longer holds.
        let at = bytes.len() - 6;
        bytes[at] ^= 0xFF;
        let st = collect_stats(&bytes).unwrap();
        assert!(st.errors > 0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.000001");
        std::fs::write(&path, &bytes).unwrap();
        let err = stats(&path, true).unwrap_err().to_string();
        assert!(err.contains("could not be decoded; the first: "), "{err}");
        assert!(err.contains("offset"), "{err}");
        assert!(stats(&dir.path().join("../missing"), true).is_err());
    }

    #[test]
    fn stats_descend_into_compressed_transactions() {
        let st = collect_stats(&corpus("transaction_compression.000001")).unwrap();
        assert_eq!(st.row_images, 1);
        assert_eq!(st.by_type["WriteRows"], 1);
    }

    #[test]
    fn dump_json_prints_one_object_per_row_change() {
        let bytes = corpus("mariadb-bin.000001");
        let mut out = Vec::new();
        walk(
            &bytes,
            |ev, ctx| dump_event(&mut out, ev, ctx, true).unwrap(),
            |e| panic!("{e}"),
        )
        .unwrap();
        let lines: Vec<Json> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["type"], "insert");
        assert_eq!(lines[0]["after"]["id"], 62);
        assert_eq!(lines[0]["after"]["event_type"], "JSON");
        assert_eq!(lines[0]["after"]["created"], "2022-04-20 22:18:04");
    }
}
