#![allow(clippy::unwrap_used, missing_docs)]
//! Walks binlog files given on the command line and prints every event and row (debug aid).
use binlog_parser::*;
fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap();
        println!("== {path}");
        let mut f = match BinlogFile::new(&bytes) {
            Ok(f) => f,
            Err(e) => {
                println!("  ERR {e}");
                continue;
            }
        };
        while let Some(ev) = f.next_event() {
            match ev {
                Err(e) => println!("  ERR {e}"),
                Ok(ev) => {
                    let t = ev.event_type();
                    match &ev.data {
                        EventData::Rows(r) => {
                            println!("  {} {:?} table {}", ev.offset(), t, r.table_id);
                            match f.context().rows(r) {
                                Err(e) => println!("    ERR {e}"),
                                Ok(rows) => {
                                    for ch in rows {
                                        match ch {
                                            Err(e) => println!("    ERR {e}"),
                                            Ok(ch) => {
                                                for (n, img) in
                                                    [ch.before, ch.after].into_iter().enumerate()
                                                {
                                                    if let Some(img) = img {
                                                        let vals: Vec<String> = img
                                                            .values()
                                                            .map(|v| match v {
                                                                Ok((i, Value::Json(j))) => format!(
                                                                    "{i}=json:{:?}",
                                                                    j.to_json_text()
                                                                ),
                                                                Ok((i, v)) => format!("{i}={v:?}"),
                                                                Err(e) => format!("ERR {e}"),
                                                            })
                                                            .collect();
                                                        println!(
                                                            "    {} {}",
                                                            if n == 0 { "B" } else { "A" },
                                                            vals.join(" | ")
                                                        );
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        EventData::TransactionPayload(p) => {
                            println!("  {} payload {:?}", ev.offset(), p.compression);
                        }
                        d => println!(
                            "  {} {:?} {}",
                            ev.offset(),
                            t,
                            format!("{d:?}").chars().take(200).collect::<String>()
                        ),
                    }
                }
            }
        }
    }
}
