//! Runnable examples of embedding the toolkit: see the `*.rs` files beside
//! this crate's manifest and run them with `cargo run -p sync-examples --example NAME`.
//! `tests/examples.rs` runs them (each included as a module) against the
//! sandbox MariaDB and the emulator: `cargo test -p sync-examples --test examples`.
#![deny(missing_docs)]

use binlog_parser::{RowImage, Value};

/// One row image as `name=value, …`, values as SQL literals (what the
/// examples print for every change).
pub fn show(img: &RowImage<'_, '_>) -> String {
    let table = img.table();
    let mut parts = Vec::new();
    for r in img.values() {
        let (idx, v) = match r {
            Ok(x) => x,
            Err(e) => {
                parts.push(format!("<{e}>"));
                break;
            }
        };
        let col = &table.columns[idx];
        let name = col.name.clone().unwrap_or_else(|| format!("@{}", idx + 1));
        let text = match v {
            Value::Null => "NULL".to_owned(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Double(d) => d.to_string(),
            Value::Decimal(d) => d.to_string(),
            Value::Year(y) => y.to_string(),
            Value::Date(d) => format!("'{d}'"),
            Value::Time(t) => format!("'{t}'"),
            Value::DateTime(d) => format!("'{d}'"),
            Value::Timestamp(t) => format!("'{t}'"),
            Value::String(s) => format!("'{}'", String::from_utf8_lossy(s)),
            Value::Bytes(b) => format!(
                "x'{}'",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
            Value::Enum(e) => match col.members.get(usize::from(e).wrapping_sub(1)) {
                Some(m) => format!("'{}'", String::from_utf8_lossy(m)),
                None => e.to_string(),
            },
            Value::Json(j) => j.to_json_text().unwrap_or_else(|e| format!("<{e}>")),
            other => format!("{other:?}"),
        };
        parts.push(format!("{name}={text}"));
    }
    parts.join(", ")
}
