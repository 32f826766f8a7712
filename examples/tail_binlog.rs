//! Tails a MySQL/MariaDB binlog file and prints every row change, following
//! the server into the next file on ROTATE.
//!
//! ```text
//! cargo run -p sync-examples --example tail_binlog -- target/mysql-sandbox/binlog/mariadb-bin.000002
//! cargo run -p sync-examples --example tail_binlog -- FILE --once   # print what is there, then stop
//! ```
//!
//! The file may still be growing: a partly written event at its end is
//! left for the next poll instead of being reported as truncated.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use binlog_parser::{BinlogFile, DecodeContext, Error, EventData, RowsKind};
use sync_examples::show;

/// Reads whatever was appended to `path` since `pos`.
fn read_from(path: &Path, pos: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(pos))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut path = PathBuf::from(args.next().ok_or("usage: tail_binlog FILE [--once]")?);
    let once = args.any(|a| a == "--once");

    let magic = read_from(&path, 0)?;
    BinlogFile::new(&magic)?; // checks the magic
    let mut pos = 4u64;
    let mut ctx = DecodeContext::new();
    loop {
        let data = read_from(&path, pos)?;
        let mut file = BinlogFile::at(&data, 0, ctx);
        let mut consumed = 0u64;
        let mut next_file = None;
        while let Some(ev) = file.next_event() {
            let ev = match ev {
                Ok(ev) => ev,
                // The writer has not finished this event yet: poll again.
                Err(Error::Truncated { .. }) => break,
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    consumed = file.position();
                    continue;
                }
            };
            consumed = ev.end_offset();
            match &ev.data {
                EventData::Rows(rows) => {
                    let Some(table) = file.context().table(rows.table_id) else {
                        eprintln!("no table map for table id {}", rows.table_id);
                        continue;
                    };
                    let name = format!("{}.{}", table.schema, table.table);
                    for change in rows.rows(table)? {
                        let change = change?;
                        let at = pos + ev.offset();
                        match (rows.kind, change.before, change.after) {
                            (RowsKind::Write, _, Some(a)) => {
                                println!("{at} INSERT {name} {{{}}}", show(&a))
                            }
                            (RowsKind::Delete, Some(b), _) => {
                                println!("{at} DELETE {name} {{{}}}", show(&b))
                            }
                            (_, Some(b), Some(a)) => {
                                println!("{at} UPDATE {name} {{{}}} -> {{{}}}", show(&b), show(&a))
                            }
                            _ => {}
                        }
                    }
                }
                EventData::Rotate(r) if ev.header().log_pos != 0 => {
                    // A real rotate: the server continues in the next file.
                    next_file = Some(path.with_file_name(r.name_lossy().as_ref()));
                    break;
                }
                _ => {}
            }
        }
        ctx = file.context().clone();
        pos += consumed;
        if let Some(next) = next_file {
            println!("-- rotate to {}", next.display());
            path = next;
            pos = 4;
            ctx = DecodeContext::new();
            continue;
        }
        if once {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
