#![allow(clippy::unwrap_used, missing_docs)]
//! Prints table maps (columns with metadata) and queries of binlog files (debug aid).
use binlog_parser::*;
fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap();
        println!("== {path}");
        let mut f = BinlogFile::new(&bytes).unwrap();
        while let Some(ev) = f.next_event() {
            let Ok(ev) = ev else { continue };
            match &ev.data {
                EventData::TableMap(tm) => {
                    let t = f.context().table(tm.table_id).unwrap();
                    println!("  TM {}.{} pk={:?}", t.schema, t.table, t.primary_key);
                    for c in &t.columns {
                        println!(
                            "    {:?} name={:?} uns={} cs={:?} vis={:?} members={:?} null={}",
                            c.kind,
                            c.name,
                            c.unsigned,
                            c.charset,
                            c.visible,
                            c.members
                                .iter()
                                .map(|m| String::from_utf8_lossy(m).into_owned())
                                .collect::<Vec<_>>(),
                            c.nullable
                        );
                    }
                }
                EventData::Query(q) => println!("  Q {}", q.query_lossy()),
                EventData::Gtid(g) => println!("  GTID {}", g.gtid_string()),
                EventData::PreviousGtids(p) => println!("  PREV {}", p.to_gtid_set_string()),
                _ => {}
            }
        }
    }
}
