//! Streams the row changes of a live MySQL/MariaDB server as a replica
//! would, with `mysql-source` (the replication connection: login, TLS,
//! reconnects, transaction boundaries) and `binlog-parser` (decoding each
//! event where it lies in the packet), and prints them; no sync task, no
//! destination.
//!
//! ```text
//! scripts/mysql-sandbox up
//! cargo run -p sync-examples --example stream_changes -- mysql://root@127.0.0.1:3307 4242
//! # in another shell: mariadb -h127.0.0.1 -P3307 -uroot -e "CREATE DATABASE IF NOT EXISTS d; CREATE TABLE d.t (id INT PRIMARY KEY, v TEXT); INSERT INTO d.t VALUES (1, 'x')"
//! ```
//!
//! It starts at the server's current position (the end of its binlog), so
//! only changes made from then on appear; `--once` stops at the end of what
//! the server holds instead of waiting for more. Each committed transaction
//! ends with the position a restart would resume from.

use std::io::Write;

use binlog_parser::{DecodeContext, EventData, RowsKind};
use mysql_source::BinlogPosition;
use mysql_source::conn::{ConnectOptions, RawConn};
use mysql_source::replication::{BinlogStream, ReplicationOptions, StartPosition};
use sync_examples::show;

/// Where the server's binlog ends now.
pub(crate) async fn current_position(
    connect: &ConnectOptions,
) -> Result<BinlogPosition, Box<dyn std::error::Error>> {
    let mut conn = RawConn::connect(connect).await?;
    let here = mysql_source::snapshot::capture_position(&mut conn).await?;
    conn.close().await?;
    Ok(here.position)
}

/// Streams the row changes from `from` on as replica `server_id`, one line
/// per change into `out`; with `once`, stops at the end of what the server
/// holds instead of waiting for more.
pub(crate) async fn stream_changes(
    connect: ConnectOptions,
    server_id: u32,
    from: BinlogPosition,
    once: bool,
    out: &mut impl Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = ReplicationOptions::new(connect, server_id, StartPosition::File(from));
    opts.stop_at_end = once;
    let mut stream = BinlogStream::start(opts).await?;
    let mut ctx = DecodeContext::new();
    while let Some(ev) = stream.next_event().await? {
        let event = ctx.decode_packet(&ev.bytes)?;
        if let EventData::Rows(rows) = &event.data {
            let table = ctx
                .table(rows.table_id)
                .ok_or_else(|| format!("no table map for table id {}", rows.table_id))?;
            let name = format!("{}.{}", table.schema, table.table);
            for change in rows.rows(table)? {
                let change = change?;
                match (rows.kind, change.before, change.after) {
                    (RowsKind::Write, _, Some(a)) => {
                        writeln!(out, "INSERT {name} {{{}}}", show(&a))?
                    }
                    (RowsKind::Delete, Some(b), _) => {
                        writeln!(out, "DELETE {name} {{{}}}", show(&b))?
                    }
                    (_, Some(b), Some(a)) => {
                        writeln!(out, "UPDATE {name} {{{}}} -> {{{}}}", show(&b), show(&a))?
                    }
                    _ => {}
                }
            }
        }
        if ev.ends_transaction {
            let at = &stream.checkpoint().position;
            writeln!(out, "-- committed; resume from {}:{}", at.file, at.position)?;
        }
    }
    stream.close().await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: stream_changes URL SERVER_ID [--once]";
    let url = args.next().ok_or(usage)?;
    let server_id: u32 = args.next().ok_or(usage)?.parse()?;
    let once = args.any(|a| a == "--once");

    let connect = ConnectOptions::from_url(&url)?;
    // Where the binlog ends now: the stream starts there.
    let here = current_position(&connect).await?;
    println!("-- from {}:{}", here.file, here.position);
    stream_changes(
        connect,
        server_id,
        here,
        once,
        &mut std::io::stdout().lock(),
    )
    .await
}
