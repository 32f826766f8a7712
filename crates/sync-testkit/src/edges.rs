//! The edge-value table: every edge of every MySQL type (DATETIME/TIMESTAMP
//! 0–6 digits over their whole ranges, zero dates, TIME ±838:59:59.999999,
//! YEAR, DECIMAL(65,30), BIGINT UNSIGNED and BIT(64) at their maximum, JSON,
//! ENUM/SET with emoji members, 30 character sets, values over MaxCompute's
//! 8 MiB field limit), the source's rendering of each value as the
//! destination must hold it, and pyodps's own merge of what landed in
//! `odps-emulator` — shared by the in-process test and the kill -9 test.

use std::path::Path;
use std::process::Command;

/// MaxCompute's field size limit, for values over it.
const LIMIT: usize = 8 * 1024 * 1024;

/// How a column is compared: as text, or as the float it prints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Compared as text.
    Text,
    /// Compared as the `f32` it prints.
    F32,
    /// Compared as the `f64` it prints.
    F64,
    /// Text or bytes over MaxCompute's 8 MiB field limit: compared by length
    /// and CRC-32 after the policy (`oversized_values`) is applied.
    Big,
}

/// A column of the edge table: name, DDL, the source's rendering of its
/// value (MySQL SQL; NULL for zero dates, as the task writes them), kind.
pub struct EdgeColumn {
    /// Column name.
    pub name: &'static str,
    /// Its DDL after the name.
    pub ddl: &'static str,
    /// MySQL expression rendering its value as the destination holds it.
    pub select: String,
    /// How it is compared.
    pub kind: Kind,
}

fn dt(name: &'static str, ddl: &'static str) -> EdgeColumn {
    EdgeColumn {
        name,
        ddl,
        // Zero dates and dates with a zero month or day land as NULL.
        select: format!(
            "IF(MONTH({name}) = 0 OR DAY({name}) = 0, NULL, DATE_FORMAT({name}, '%Y-%m-%d %H:%i:%s.%f'))"
        ),
        kind: Kind::Text,
    }
}

fn plain(name: &'static str, ddl: &'static str, select: &str, kind: Kind) -> EdgeColumn {
    EdgeColumn {
        name,
        ddl,
        select: select.replace('@', name),
        kind,
    }
}

/// The charsets MariaDB knows that hold more than ASCII, each with text it
/// can store, plus one without a decoder here (ASCII passes).
const CHARSETS: &[(&str, &str)] = &[
    ("latin1", "Café ÿ €"),
    ("latin2", "Žluťoučký kůň"),
    ("latin5", "Türkçe İğ"),
    ("latin7", "Ąžuolas ų"),
    ("greek", "Ελληνικά"),
    ("hebrew", "שלום"),
    ("cp1250", "Łódź"),
    ("cp1251", "Ёлка"),
    ("cp1256", "مرحبا"),
    ("cp1257", "Ąžuolas"),
    ("cp866", "Привет"),
    ("koi8r", "Привет"),
    ("koi8u", "Привіт"),
    ("macroman", "Café"),
    ("tis620", "ภาษาไทย"),
    ("gbk", "中文字符"),
    ("gb2312", "简体中文"),
    ("big5", "繁體中文"),
    ("sjis", "ｶﾀｶﾅ漢字"),
    ("cp932", "①漢字"),
    ("ujis", "日本語"),
    ("eucjpms", "日本語"),
    ("euckr", "한국어"),
    ("ucs2", "ucs2 ü 中"),
    ("utf16", "😀 utf16"),
    ("utf16le", "😀 le"),
    ("utf32", "😀 utf32"),
    ("utf8mb3", "mb3 ü 中"),
    ("ascii", "plain"),
    ("dec8", "ascii only"),
];

/// Every column of the edge table, in order.
pub fn columns() -> Vec<EdgeColumn> {
    let mut c = vec![
        plain("id", "INT PRIMARY KEY", "CAST(@ AS CHAR)", Kind::Text),
        dt("dt0", "DATETIME"),
        dt("dt1", "DATETIME(1)"),
        dt("dt3", "DATETIME(3)"),
        dt("dt4", "DATETIME(4)"),
        dt("dt6", "DATETIME(6)"),
        dt("ts0", "TIMESTAMP NULL"),
        dt("ts2", "TIMESTAMP(2) NULL"),
        dt("ts3", "TIMESTAMP(3) NULL"),
        dt("ts5", "TIMESTAMP(5) NULL"),
        dt("ts6", "TIMESTAMP(6) NULL"),
        plain(
            "d",
            "DATE",
            "IF(MONTH(@) = 0 OR DAY(@) = 0, NULL, CAST(@ AS CHAR))",
            Kind::Text,
        ),
        plain("t0", "TIME", "CAST(@ AS CHAR)", Kind::Text),
        plain("t6", "TIME(6)", "CAST(@ AS CHAR)", Kind::Text),
        plain("y", "YEAR", "CAST(@ + 0 AS CHAR)", Kind::Text),
        plain("d65", "DECIMAL(65,30)", "CAST(@ AS CHAR)", Kind::Text),
        plain("d38", "DECIMAL(38,18)", "CAST(@ AS CHAR)", Kind::Text),
        plain("bu", "BIGINT UNSIGNED", "CAST(@ AS CHAR)", Kind::Text),
        plain("bi", "BIGINT", "CAST(@ AS CHAR)", Kind::Text),
        plain("b64", "BIT(64)", "CAST(@ + 0 AS CHAR)", Kind::Text),
        plain("b1", "BIT(1)", "CAST(@ + 0 AS CHAR)", Kind::Text),
        plain("tu", "TINYINT UNSIGNED", "CAST(@ AS CHAR)", Kind::Text),
        plain("mi", "MEDIUMINT", "CAST(@ AS CHAR)", Kind::Text),
        plain("f", "FLOAT", "CAST(@ AS CHAR)", Kind::F32),
        plain("dbl", "DOUBLE", "CAST(@ AS CHAR)", Kind::F64),
        plain("j", "JSON", "CAST(@ AS CHAR)", Kind::Text),
        plain("e", "ENUM('a','ü','😀')", "CAST(@ AS CHAR)", Kind::Text),
        plain("st", "SET('x','ü','🚲')", "CAST(@ AS CHAR)", Kind::Text),
        plain("c", "CHAR(5)", "CAST(@ AS CHAR)", Kind::Text),
        plain("bin", "BINARY(4)", "HEX(@)", Kind::Text),
        plain("vb", "VARBINARY(16)", "HEX(@)", Kind::Text),
        plain("txt", "LONGTEXT", "@", Kind::Big),
        plain("bl", "LONGBLOB", "@", Kind::Big),
    ];
    for (cs, _) in CHARSETS {
        let name: &'static str = Box::leak(format!("c_{cs}").into_boxed_str());
        let ddl: &'static str =
            Box::leak(format!("VARCHAR(40) CHARACTER SET {cs}").into_boxed_str());
        c.push(plain(name, ddl, "CONVERT(@ USING utf8mb4)", Kind::Text));
    }
    c
}

/// Rows 1..8: the edges of every type (MySQL literals in `edge_columns`
/// order but the charset columns, which `edge_insert` fills).
pub const EDGE_ROWS: &[&str] = &[
    // 1: every minimum.
    "1, '1000-01-01 00:00:00', '1000-01-01 00:00:00.0', '1000-01-01 00:00:00.000', \
     '1000-01-01 00:00:00.0000', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01', \
     '1970-01-01 00:00:01.00', '1970-01-01 00:00:01.000', '1970-01-01 00:00:01.00000', \
     '1970-01-01 00:00:01.000000', '1000-01-01', '-838:59:59', '-838:59:59.999999', 1901, \
     '-99999999999999999999999999999999999.999999999999999999999999999999', \
     '-99999999999999999999.999999999999999999', 0, -9223372036854775808, 0, 0, 0, -8388608, \
     -3.40282e38, -1.7976931348623157e308, '{\"a\": [1, 2.5, null, \"ü\"]}', 'a', '', '', \
     X'00000000', X'', '', X''",
    // 2: every maximum.
    "2, '9999-12-31 23:59:59', '9999-12-31 23:59:59.9', '9999-12-31 23:59:59.999', \
     '9999-12-31 23:59:59.9999', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', \
     '2038-01-19 03:14:07.99', '2038-01-19 03:14:07.999', '2038-01-19 03:14:07.99999', \
     '2038-01-19 03:14:07.999999', '9999-12-31', '838:59:59', '838:59:59.999999', 2155, \
     '99999999999999999999999999999999999.999999999999999999999999999999', \
     '99999999999999999999.999999999999999999', 18446744073709551615, 9223372036854775807, \
     b'1111111111111111111111111111111111111111111111111111111111111111', 1, 255, 8388607, \
     3.40282e38, 1.7976931348623157e308, '[]', '😀', 'x,ü,🚲', 'abcde', X'FFFFFFFF', \
     X'00FF00FF00FF00FF00FF00FF00FF00FF', 'ü', X'FF'",
    // 3: NULL everywhere it can be.
    "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
     NULL, NULL, NULL",
    // 4: zero dates and partly-zero dates (NULL in MaxCompute), YEAR 0000,
    // a zero TIMESTAMP, -0.0, the smallest fractions.
    "4, '0000-00-00 00:00:00', '2024-00-15 10:00:00.5', '2024-02-00 10:00:00.123', \
     '0000-00-00 00:00:00.0000', '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00', \
     '2000-01-01 00:00:00.01', '2000-01-01 00:00:00.001', '2000-01-01 00:00:00.00001', \
     '2000-01-01 00:00:00.000001', '0000-00-00', '00:00:00', '-00:00:00.000001', 0, \
     '0.000000000000000000000000000001', '0.000000000000000001', 1, -1, 1, 1, 1, 0, \
     -0.0, -0.0, 'null', 'ü', 'ü', 'ab  ', X'00', X'00', 'tiny', X'00'",
    // 5: just inside the Arrow tunnel's 64-bit nanoseconds.
    "5, '1677-09-21 00:12:44', '1677-09-21 00:12:43.2', '1677-09-21 00:12:43.146', \
     '2262-04-11 23:47:16.8547', '1677-09-21 00:12:43.145225', '2001-09-09 01:46:40', \
     '2001-09-09 01:46:40.12', '2001-09-09 01:46:40.123', '2001-09-09 01:46:40.12345', \
     '2001-09-09 01:46:40.123456', '1677-09-21', '12:34:56', '-12:34:56.5', 1970, \
     '1.5', '-1.5', 9223372036854775808, 42, 9223372036854775808, 0, 128, 1, \
     1.5, 0.1, '{\"k\": \"v\"}', 'ü', 'x,🚲', 'ü', X'0102', X'0102030405', 'x', X'01'",
    // 6: just outside them (the record format carries these).
    "6, '1677-09-21 00:12:43', '2262-04-11 23:47:16.9', '2262-04-11 23:47:16.855', \
     '2262-04-11 23:47:16.8548', '1677-09-21 00:12:43.145224', '2024-02-29 12:00:00', \
     '2024-02-29 12:00:00.5', '2024-02-29 12:00:00.5', '2024-02-29 12:00:00.5', \
     '2024-02-29 12:00:00.5', '2262-04-12', '-00:00:01', '00:00:00.5', 2100, \
     '-0.000000000000000000000000000001', '0.5', 4294967296, -42, 4294967296, 1, 7, -7, \
     -1.5e-3, 2.2250738585072014e-308, '\"text\"', 'a', 'x', 'x', X'FF00', X'FF', 'y', X'FF'",
    // 7: values over MaxCompute's 8 MiB field limit (a multi-byte character
    // across the limit, and a blob 2 bytes over it).
    "7, '2024-01-01 00:00:00', NULL, NULL, NULL, '9999-12-31 23:59:59.999999', NULL, NULL, NULL, \
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, CONCAT(REPEAT('a', 8388607), 'é'), \
     REPEAT(X'00FF', 4194305)",
    // 8: everyday values.
    "8, '2024-02-29 13:14:15', '2024-02-29 13:14:15.1', '2024-02-29 13:14:15.123', \
     '2024-02-29 13:14:15.1234', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15', \
     '2024-02-29 13:14:15.12', '2024-02-29 13:14:15.123', '2024-02-29 13:14:15.12345', \
     '2024-02-29 13:14:15.123456', '2024-02-29', '13:14:15', '13:14:15.123456', 2024, \
     '12345.678900000000000000000000000001', '3.141592653589793238', 12345, -12345, 5, 0, 200, \
     -300, 3.25, 2.718281828459045, '{\"n\": 1}', 'a', 'ü,🚲', 'abc', X'CAFEBABE', X'DEADBEEF', \
     'small text', X'0001'",
];

/// An INSERT of the edge rows `ids` (1..=8) into `db.edge_values`, their ids
/// moved by `offset`.
pub fn insert_sql(db: &str, ids: &[i64], offset: i64, columns: &[EdgeColumn]) -> String {
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    let rows: Vec<String> = ids
        .iter()
        .map(|&i| {
            let base = EDGE_ROWS[(i - 1) as usize];
            let (first, rest) = base.split_once(',').expect("id first");
            let id: i64 = first.trim().parse().expect("id");
            // Charset columns: the sample text, NULL in the NULL row.
            let texts: Vec<String> = CHARSETS
                .iter()
                .map(|(_, t)| {
                    if id == 3 {
                        "NULL".into()
                    } else {
                        format!("'{t}'")
                    }
                })
                .collect();
            format!("({},{rest}, {})", id + offset, texts.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {db}.edge_values ({}) VALUES {}",
        names.join(", "),
        rows.join(",\n")
    )
}

/// After [`insert_sql`] of rows 1..=8 with offset 10: each extreme moved to
/// the other end, a key change, deletes (their before images too), one
/// multi-statement transaction. Each statement is its own transaction but
/// the one marked.
pub fn changes_sql(db: &str) -> String {
    format!(
        "SET sql_mode = ''; USE {db};
         UPDATE edge_values SET dt6 = '9999-12-31 23:59:59.999999', dt4 = '1000-01-01 00:00:00.0001',
           d = '9999-12-31', t6 = '838:59:59.999999', bu = 18446744073709551615, ts6 = '2038-01-19 03:14:07.999999'
           WHERE id = 1;
         UPDATE edge_values SET dt6 = '1000-01-01 00:00:00', dt0 = '0000-00-00 00:00:00', id = 102 WHERE id = 2;
         UPDATE edge_values SET dt6 = '2262-04-11 23:47:16.854775', c_gbk = '新的', c_utf32 = '🚲' WHERE id = 5;
         START TRANSACTION;
         DELETE FROM edge_values WHERE id IN (6, 16);
         UPDATE edge_values SET txt = 'short now', bl = X'00' WHERE id = 17;
         COMMIT;
         DELETE FROM edge_values WHERE id = 13;"
    )
}

/// The `CREATE TABLE` of `db.edge_values`.
pub fn create_sql(db: &str, columns: &[EdgeColumn]) -> String {
    let ddl: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.ddl))
        .collect();
    format!(
        "CREATE TABLE {db}.edge_values ({}) CHARACTER SET utf8mb4",
        ddl.join(", ")
    )
}

/// The SELECT (run with `time_zone = '+00:00'`) whose rows, given to
/// [`expected_rows`], are what the destination must hold.
pub fn select_sql(db: &str, columns: &[EdgeColumn]) -> String {
    let select: Vec<&str> = columns.iter().map(|c| c.select.as_str()).collect();
    format!(
        "SELECT {} FROM {db}.edge_values ORDER BY id",
        select.join(", ")
    )
}

/// The source's rows (the cells of [`select_sql`] as bytes) as the
/// destination must hold them: values over the limit as `policy_of(id)`
/// writes them (`"null"`, else cut to the limit), long values as their
/// length and CRC-32.
pub fn expected_rows(
    raw: Vec<Vec<Option<Vec<u8>>>>,
    columns: &[EdgeColumn],
    policy_of: impl Fn(i64) -> &'static str,
) -> Vec<Vec<Option<String>>> {
    raw.into_iter()
        .map(|row| {
            let id: i64 = row[0]
                .as_deref()
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| s.parse().ok())
                .expect("id first");
            row.into_iter()
                .zip(columns)
                .map(|(v, c)| {
                    let v = v?;
                    if c.kind != Kind::Big {
                        return Some(String::from_utf8(v).expect("utf-8 text"));
                    }
                    let landed: Vec<u8> = if v.len() <= LIMIT {
                        v
                    } else if policy_of(id) == "null" {
                        return None;
                    } else if c.name == "txt" {
                        let s = String::from_utf8(v).expect("utf-8 text");
                        let mut end = LIMIT;
                        while !s.is_char_boundary(end) {
                            end -= 1;
                        }
                        s.as_bytes()[..end].to_vec()
                    } else {
                        v[..LIMIT].to_vec()
                    };
                    Some(if landed.len() > 4096 {
                        format!(
                            "len={} crc32={:08x}",
                            landed.len(),
                            crc32fast::hash(&landed)
                        )
                    } else if c.name == "txt" {
                        String::from_utf8(landed).expect("utf-8")
                    } else {
                        landed.iter().map(|b| format!("{b:02X}")).collect()
                    })
                })
                .collect()
        })
        .collect()
}

/// Where pyodps finds the emulator: its endpoints, project and keys.
pub struct Project<'a> {
    /// The service endpoint.
    pub endpoint: &'a str,
    /// The tunnel endpoint.
    pub tunnel: &'a str,
    /// The project name.
    pub name: &'a str,
    /// Access id and key.
    pub keys: (&'a str, &'a str),
}

/// pyodps's merge of `edge_values_base` and every partition of
/// `edge_values_log`, rows sorted by id, each cell as [`expected_rows`]
/// renders it.
pub fn pyodps_merge(
    python: &Path,
    project: &Project<'_>,
    columns: &[EdgeColumn],
) -> Vec<Vec<Option<String>>> {
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    let job = serde_json::json!([{
        "base": "edge_values_base",
        "log": "edge_values_log",
        "key": ["id"],
        "columns": names,
    }]);
    let out = Command::new(python)
        .args([
            "-c",
            PYODPS_EDGE_MERGE,
            project.endpoint,
            project.tunnel,
            project.name,
            project.keys.0,
            project.keys.1,
        ])
        .arg(job.to_string())
        .env("TZ", "UTC")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "pyodps merge failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    serde_json::from_value(merged["edge_values_log"].clone()).expect("rows of strings")
}

/// Python-datetime stand-ins for those two pandas names; the bytes are
/// still decoded, checksummed and converted by pyodps.
const PYODPS_EDGE_MERGE: &str = r#"
import datetime, decimal, json, sys, zlib
import pandas
from odps import ODPS, options
from odps.tunnel import TableTunnel

class WideTimestamp:
    def __new__(cls, value):
        return value

def wide_timedelta(nanoseconds=0):
    if nanoseconds % 1000:
        raise ValueError("sub-microsecond timestamp %d" % nanoseconds)
    return datetime.timedelta(microseconds=nanoseconds // 1000)

pandas.Timestamp = WideTimestamp
pandas.Timedelta = wide_timedelta
options.allow_antique_date = True

endpoint, tunnel_endpoint, project, id_, key = sys.argv[1:6]
jobs = json.loads(sys.argv[6])
o = ODPS(id_, key, project=project, endpoint=endpoint)
tunnel = TableTunnel(o, endpoint=tunnel_endpoint)

def rows(table, partition=None):
    kw = {"partition_spec": partition} if partition else {}
    down = tunnel.create_download_session(table, **kw)
    if down.count == 0:
        return []
    names = [c.name for c in down.schema.simple_columns]
    with down.open_record_reader(0, down.count) as reader:
        return [dict(zip(names, rec.values)) for rec in reader]

def text(v):
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray)):
        if len(v) > 4096:
            return "len=%d crc32=%08x" % (len(v), zlib.crc32(v))
        return v.hex().upper()
    if isinstance(v, str):
        raw = v.encode("utf-8")
        if len(raw) > 4096:
            return "len=%d crc32=%08x" % (len(raw), zlib.crc32(raw))
        return v
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f").rjust(26, "0")
    if isinstance(v, datetime.date):
        return v.isoformat().rjust(10, "0")
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, float):
        return repr(v)
    return str(v)

out = {}
for job in jobs:
    best = {}
    for r in rows(job["base"]):
        best[tuple(r[k] for k in job["key"])] = (0, 1, r)
    log = o.get_table(job["log"])
    specs = [str(p.partition_spec) for p in log.partitions] if log.table_schema.partitions else [None]
    for p in specs:
        for r in rows(job["log"], p):
            rank = (r["new_dts_sync_record_id"], 1 if r["new_dts_sync_after_flag"] == "Y" else 0)
            k = tuple(r[c] for c in job["key"])
            if k not in best or rank > best[k][:2]:
                best[k] = rank + (r,)
    merged = [[text(r[c]) for c in job["columns"]] for (_, after, r) in best.values() if after == 1]
    out[job["log"]] = sorted(merged, key=lambda row: int(row[0]))
print(json.dumps(out))
"#;

/// Asserts that `ours` (read from the destination) equals `source`, cell by
/// cell (floats as the numbers they print), naming the first difference.
pub fn assert_rows_equal(
    what: &str,
    ours: &[Vec<Option<String>>],
    source: &[Vec<Option<String>>],
    columns: &[EdgeColumn],
) {
    assert_eq!(ours.len(), source.len(), "{what}: row count");
    for (a, b) in ours.iter().zip(source) {
        for (i, c) in columns.iter().enumerate() {
            let equal = match (c.kind, &a[i], &b[i]) {
                (Kind::F32, Some(x), Some(y)) => {
                    x.parse::<f32>().ok() == y.parse::<f32>().ok() && x.parse::<f32>().is_ok()
                }
                (Kind::F64, Some(x), Some(y)) => {
                    x.parse::<f64>().ok() == y.parse::<f64>().ok() && x.parse::<f64>().is_ok()
                }
                (_, x, y) => x == y,
            };
            assert!(
                equal,
                "{what}: id {:?} column {}: pyodps read {:?}, the source holds {:?}",
                b[0], c.name, a[i], b[i]
            );
        }
    }
}
