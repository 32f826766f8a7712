//! Full row decode of a large MariaDB binlog: `binlog-parser` against
//! `mysql_common` (feature `binlog`) and `mysql-binlog-connector-rust` on the
//! same bytes, in the same run, and against `mariadb-binlog -v
//! --base64-output=decode-rows` of the same file.
//!
//! Setup builds the input from a private MariaDB (port 3395, datadir under
//! the target dir, started and stopped here): a 19-column `orders` table
//! gets batched INSERTs, range UPDATEs and range DELETEs until about
//! `BINLOG_BENCH_MB` (default 200) MB of binlog are written; the events are
//! cut out of the server's binlog into `target/binlog-bench/orders-<MB>mb.bin`
//! and reused by later runs.
//!
//! The figures recorded (see `sync_benches::results`): the three Rust
//! decoders taking turns in this process (best of 3 rounds each),
//! `mariadb-binlog` on the file (best of 2), and the peak memory of each
//! decoder in a child process of its own (this binary re-run with
//! `BINLOG_BENCH_CHILD=<decoder>`).
//!
//! Run: `cargo bench -p sync-benches --bench binlog_decode`
//! (quick: `BINLOG_BENCH_MB=20 cargo bench -p sync-benches --bench binlog_decode`;
//! `BINLOG_BENCH_CRITERION=0` skips the criterion statistics).
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use mysql_async::prelude::Queryable;
use sync_benches::results::{Figure, Meta, Ratio};

/// The private server that generates the input.
const PORT: u16 = 3395;

const TABLE: &str = "CREATE TABLE orders (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    customer_id INT UNSIGNED NOT NULL,
    qty SMALLINT NOT NULL,
    status TINYINT NOT NULL,
    region MEDIUMINT NOT NULL,
    price DECIMAL(12,2) NOT NULL,
    weight FLOAT,
    score DOUBLE,
    created DATETIME(6) NOT NULL,
    updated TIMESTAMP(3) NULL,
    ship_date DATE,
    yr YEAR,
    sku VARCHAR(32) NOT NULL,
    note TEXT,
    flags SET('gift','express','fragile','return'),
    kind ENUM('retail','wholesale','internal'),
    payload VARBINARY(64),
    bits BIT(8),
    attrs JSON
) CHARACTER SET utf8mb4";

/// One batch: `n` rows computed server-side from a sequence table.
fn insert_batch(n: u32) -> String {
    format!(
        "INSERT INTO orders (customer_id, qty, status, region, price, weight, score, created, updated,
            ship_date, yr, sku, note, flags, kind, payload, bits, attrs)
         SELECT FLOOR(RAND()*4000000000), FLOOR(RAND()*65535)-32768, FLOOR(RAND()*256)-128,
            FLOOR(RAND()*16777215)-8388608, ROUND(RAND()*1000000, 2), RAND()*100, RAND()*1e6,
            NOW(6) - INTERVAL FLOOR(RAND()*1e8) SECOND, IF(seq % 7 = 0, NULL, NOW(3)),
            CURDATE() - INTERVAL FLOOR(RAND()*3000) DAY, 1901 + FLOOR(RAND()*254),
            CONCAT('SKU-', seq, '-', FLOOR(RAND()*1e6)),
            IF(seq % 3 = 0, NULL, REPEAT(CONCAT('note ', seq, ' '), 1 + seq % 8)),
            ELT(1 + seq % 4, 'gift', 'express', 'gift,fragile', ''), ELT(1 + seq % 3, 'retail', 'wholesale', 'internal'),
            UNHEX(SHA2(seq, 256)), seq % 256,
            JSON_OBJECT('seq', seq, 'tags', JSON_ARRAY('a', seq % 10), 'ok', seq % 2 = 0)
         FROM seq_1_to_{n}"
    )
}

async fn master_status(conn: &mut mysql_async::Conn) -> (String, u64) {
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .unwrap();
    (row.get(0).unwrap(), row.get(1).unwrap())
}

fn file_number(name: &str) -> u32 {
    name.rsplit('.').next().unwrap().parse().unwrap()
}

/// Bytes of binlog between two `SHOW MASTER STATUS` positions.
fn range_len(dir: &Path, start: &(String, u64), end: &(String, u64)) -> u64 {
    let stem = start.0.rsplit_once('.').unwrap().0;
    let mut total = 0;
    for n in file_number(&start.0)..=file_number(&end.0) {
        let name = format!("{stem}.{n:06}");
        let size = std::fs::metadata(dir.join(&name))
            .map(|m| m.len())
            .unwrap_or(0);
        let from = if name == start.0 { start.1 } else { 4 };
        let to = if name == end.0 { end.1 } else { size };
        total += to.saturating_sub(from);
    }
    total
}

/// A standalone binlog: magic, the first file's FDE, then every event in
/// the range (later files contribute their own FDE).
fn cut_range(dir: &Path, start: &(String, u64), end: &(String, u64)) -> Vec<u8> {
    let stem = start.0.rsplit_once('.').unwrap().0;
    let first = std::fs::read(dir.join(&start.0)).unwrap();
    let fde_len = u32::from_le_bytes(first[4 + 9..4 + 13].try_into().unwrap()) as usize;
    let mut out = first[..4 + fde_len].to_vec();
    for n in file_number(&start.0)..=file_number(&end.0) {
        let name = format!("{stem}.{n:06}");
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let from = if name == start.0 { start.1 as usize } else { 4 };
        let to = if name == end.0 {
            end.1 as usize
        } else {
            bytes.len()
        };
        out.extend_from_slice(&bytes[from..to]);
    }
    out
}

fn generate(path: &Path, target_bytes: u64) {
    let server = sync_benches::PrivateServer::start("binlog-bench-mysql", PORT, 95);
    let url = format!("mysql://root@127.0.0.1:{PORT}");
    let dir = server.dir().join("binlog");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
        let db = format!("binlog_bench_gen_{}", std::process::id());
        conn.query_drop(format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
        conn.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
        conn.query_drop(format!("USE {db}")).await.unwrap();
        conn.query_drop(TABLE).await.unwrap();
        let start = master_status(&mut conn).await;
        let mut batch = 0u64;
        let mut max_id = 0u64;
        loop {
            conn.query_drop(insert_batch(2000)).await.unwrap();
            max_id += 2000;
            batch += 1;
            if batch.is_multiple_of(4) {
                let lo = max_id.saturating_sub(6000);
                conn.query_drop(format!(
                    "UPDATE orders SET qty = qty DIV 2, price = price + 1.05, updated = NOW(3), \
                     note = CONCAT('upd ', id) WHERE id BETWEEN {lo} AND {}",
                    lo + 1500
                ))
                .await
                .unwrap();
                for k in 0..50 {
                    conn.query_drop(format!(
                        "UPDATE orders SET status = status DIV 2, sku = CONCAT(sku, '-u') WHERE id = {}",
                        lo + 2000 + k * 13
                    ))
                    .await
                    .unwrap();
                }
            }
            if batch.is_multiple_of(10) {
                let lo = max_id.saturating_sub(9000);
                conn.query_drop(format!("DELETE FROM orders WHERE id BETWEEN {lo} AND {}", lo + 800))
                    .await
                    .unwrap();
            }
            let now = master_status(&mut conn).await;
            let len = range_len(&dir, &start, &now);
            if len >= target_bytes {
                let bytes = cut_range(&dir, &start, &now);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
                break;
            }
        }
        conn.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
        conn.disconnect().await.unwrap();
    });
}

/// The input file, generated when missing.
fn input_path() -> PathBuf {
    let mb = sync_benches::env_num("BINLOG_BENCH_MB", 200);
    let path = sync_benches::target_dir().join(format!("binlog-bench/orders-{mb}mb.bin"));
    if !path.exists() {
        eprintln!("building {} from a private MariaDB …", path.display());
        let t = Instant::now();
        generate(&path, mb * 1_000_000);
        eprintln!("built in {:.1}s", t.elapsed().as_secs_f64());
    }
    path
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    events: u64,
    row_images: u64,
    values: u64,
}

/// binlog-parser: frame (CRC32 verified), decode every event, every row
/// image, every value.
fn decode_ours(bytes: &[u8]) -> Counts {
    use binlog_parser::{BinlogFile, EventData};
    let mut c = Counts::default();
    let mut file = BinlogFile::new(bytes).unwrap();
    while let Some(ev) = file.next_event() {
        let ev = ev.unwrap();
        c.events += 1;
        if let EventData::Rows(rows) = &ev.data {
            for change in file.context().rows(rows).unwrap() {
                let change = change.unwrap();
                for img in [change.before, change.after].into_iter().flatten() {
                    c.row_images += 1;
                    for v in img.values() {
                        black_box(v.unwrap());
                        c.values += 1;
                    }
                }
            }
        }
    }
    c
}

/// mysql_common: read every event, decode every row of every rows event and
/// touch every value.
fn decode_mysql_common(bytes: &[u8]) -> Counts {
    use mysql_common::binlog::EventStreamReader;
    use mysql_common::binlog::consts::BinlogVersion;
    use mysql_common::binlog::events::EventData;
    let mut c = Counts::default();
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut input = &bytes[4..];
    while let Some(ev) = reader.read(&mut input).unwrap() {
        c.events += 1;
        if let Some(EventData::RowsEvent(rows)) = ev.read_data().unwrap() {
            let tme = reader.get_tme(rows.table_id()).unwrap();
            for row in rows.rows(tme) {
                let (before, after) = row.unwrap();
                for r in [before, after].into_iter().flatten() {
                    c.row_images += 1;
                    for i in 0..r.len() {
                        black_box(r.as_ref(i));
                        c.values += 1;
                    }
                }
            }
        }
    }
    c
}

/// mysql-binlog-connector-rust: its parser decodes every row eagerly; count
/// and touch every value.
fn decode_connector_rust(bytes: &[u8]) -> Counts {
    use mysql_binlog_connector_rust::binlog_parser::BinlogParser;
    use mysql_binlog_connector_rust::event::event_data::EventData;
    let mut c = Counts::default();
    let mut parser = BinlogParser {
        checksum_length: 4,
        table_map_event_by_table_id: Default::default(),
    };
    let mut cursor = std::io::Cursor::new(bytes);
    parser.check_magic(&mut cursor).unwrap();
    while (cursor.position() as usize) < bytes.len() {
        let (_, data) = parser.next(&mut cursor).unwrap();
        c.events += 1;
        let mut touch = |values: &[_]| {
            c.row_images += 1;
            for v in values {
                black_box(v);
                c.values += 1;
            }
        };
        match data {
            EventData::WriteRows(ev) => ev.rows.iter().for_each(|r| touch(&r.column_values)),
            EventData::DeleteRows(ev) => ev.rows.iter().for_each(|r| touch(&r.column_values)),
            EventData::UpdateRows(ev) => ev.rows.iter().for_each(|(b, a)| {
                touch(&b.column_values);
                touch(&a.column_values);
            }),
            _ => {}
        }
    }
    c
}

fn best_of(n: usize, f: impl Fn() -> Counts) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// A full decode of a binlog file.
type Decoder = fn(&[u8]) -> Counts;

/// The decoders by name, for the child runs.
const DECODERS: [(&str, Decoder); 3] = [
    ("binlog-parser", decode_ours),
    ("mysql_common", decode_mysql_common),
    ("mysql-binlog-connector-rust", decode_connector_rust),
];

/// Child mode: read the file, decode it once with the named decoder, exit.
fn child(name: &str, path: &str) {
    let bytes = std::fs::read(path).unwrap();
    let (_, decode) = DECODERS.iter().find(|(n, _)| *n == name).unwrap();
    black_box(decode(&bytes));
}

/// Peak memory of one decoder in a process of its own.
fn child_peak(name: &str, path: &Path) -> u64 {
    let m = sync_benches::measure(
        std::process::Command::new(std::env::current_exe().unwrap())
            .env("BINLOG_BENCH_CHILD", name)
            .env("BINLOG_BENCH_FILE", path),
    );
    assert!(m.status.success(), "decoding with {name} in a child failed");
    m.peak_rss
}

fn main() {
    if let (Ok(name), Ok(path)) = (
        std::env::var("BINLOG_BENCH_CHILD"),
        std::env::var("BINLOG_BENCH_FILE"),
    ) {
        return child(&name, &path);
    }
    println!("{}", sync_benches::machine_line());
    let path = input_path();
    let bytes = std::fs::read(&path).unwrap();
    let ours = decode_ours(&bytes);
    let theirs = decode_mysql_common(&bytes);
    let bcr = decode_connector_rust(&bytes);
    println!(
        "input: {:.1} MB, {} events, {} row images, {} values",
        bytes.len() as f64 / 1e6,
        ours.events,
        ours.row_images,
        ours.values
    );
    // Same work: same events and row images (values differ only in how
    // mysql_common counts absent columns, which MINIMAL images do not have here).
    assert_eq!(ours.events, theirs.events, "event counts differ");
    assert_eq!(
        ours.row_images, theirs.row_images,
        "row image counts differ"
    );
    assert_eq!(
        ours.events, bcr.events,
        "event counts differ (connector-rust)"
    );
    assert_eq!(
        ours.row_images, bcr.row_images,
        "row image counts differ (connector-rust)"
    );

    if sync_benches::env_num("BINLOG_BENCH_CRITERION", 1) != 0 {
        let mut c = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(15))
            .configure_from_args();
        {
            let mut g = c.benchmark_group("binlog_full_decode");
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            for (name, decode) in DECODERS {
                g.bench_function(name, |b| b.iter(|| decode(black_box(&bytes))));
            }
            g.finish();
        }
        c.final_summary();
    }

    // Same-run figures: the three decoders take turns (so a change of
    // machine load hits all of them alike), best of 3 rounds each.
    let mut best = [Duration::MAX; 3];
    for _ in 0..3 {
        for (i, (_, decode)) in DECODERS.iter().enumerate() {
            best[i] = best[i].min(best_of(1, || decode(&bytes)));
        }
    }
    let peer = sync_benches::fastest(2, || sync_benches::peers::mariadb_binlog_file(&path));
    let mb = bytes.len() as f64 / 1e6;
    let case = format!(
        "{mb:.0} MB binlog, {} events, {} row images",
        sync_benches::report::thousands(ours.events as f64),
        sync_benches::report::thousands(ours.row_images as f64)
    );
    let figure = |tool: &str, setting: &str, ours_tool: bool, d: Duration, peak: u64| {
        let secs = d.as_secs_f64();
        println!(
            "{tool:<30} {:>7.0} MB/s {:>10.0} row images/s  peak RSS {:>6.1} MB ({setting})",
            mb / secs,
            ours.row_images as f64 / secs,
            peak as f64 / 1e6
        );
        Figure::new("binlog_decode", &case, tool, setting, ours_tool)
            .metric("input_mb", mb)
            .metric("seconds", secs)
            .metric("mb_per_s", mb / secs)
            .metric("row_images_per_s", ours.row_images as f64 / secs)
            .metric("peak_rss_mb", peak as f64 / 1e6)
            .record();
    };
    for (i, (name, _)) in DECODERS.iter().enumerate() {
        let peak = child_peak(name, &path);
        figure(name, "in-process, best of 3", i == 0, best[i], peak);
    }
    figure(
        "mariadb-binlog -v",
        "child process, best of 2",
        false,
        peer.elapsed,
        peer.peak_rss,
    );
    let ours_t = best[0].as_secs_f64();
    for (label, t) in [
        ("mysql_common", best[1].as_secs_f64()),
        ("mysql-binlog-connector-rust", best[2].as_secs_f64()),
        ("mariadb-binlog -v", peer.elapsed.as_secs_f64()),
    ] {
        println!("ratio binlog-parser / {label}: {:.1}x", t / ours_t);
        Ratio::record(
            "binlog_decode",
            &format!("binlog-parser ÷ {label}, MB/s"),
            t / ours_t,
            None,
        );
    }
    Meta::record(
        "binlog_decode",
        &format!(
            "BINLOG_BENCH_MB={}",
            sync_benches::env_num("BINLOG_BENCH_MB", 200)
        ),
    );
}
