//! The few event fields the replication stream needs to find transaction
//! boundaries: the common header, the query text of QUERY events, the GTID
//! of GTID events and the target of ROTATE events.
//!
//! Everything else about an event is `binlog-parser`'s job; the stream
//! hands the bytes on untouched.

use crate::error::{Error, Result};

/// Size of the v4 common header.
pub(crate) const HEADER_LEN: usize = 19;

/// Event type codes the stream reacts to.
pub(crate) mod kind {
    pub(crate) const QUERY: u8 = 2;
    pub(crate) const STOP: u8 = 3;
    pub(crate) const ROTATE: u8 = 4;
    pub(crate) const FORMAT_DESCRIPTION: u8 = 15;
    pub(crate) const XID: u8 = 16;
    pub(crate) const HEARTBEAT: u8 = 27;
    pub(crate) const GTID: u8 = 33;
    pub(crate) const ANONYMOUS_GTID: u8 = 34;
    pub(crate) const PREVIOUS_GTIDS: u8 = 35;
    pub(crate) const XA_PREPARE: u8 = 38;
    pub(crate) const TRANSACTION_PAYLOAD: u8 = 40;
    pub(crate) const HEARTBEAT_V2: u8 = 41;
    pub(crate) const GTID_TAGGED: u8 = 42;
    pub(crate) const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub(crate) const MARIADB_GTID: u8 = 162;
    pub(crate) const MARIADB_GTID_LIST: u8 = 163;
}

/// Header flag of events the server made up for the stream.
pub(crate) const FLAG_ARTIFICIAL: u16 = 0x20;

/// The common header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) event_type: u8,
    pub(crate) server_id: u32,
    pub(crate) event_size: u32,
    pub(crate) log_pos: u32,
    pub(crate) flags: u16,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the common header and checks that `event_size` is the length we got.
pub(crate) fn header(event: &[u8]) -> Result<Header> {
    if event.len() < HEADER_LEN {
        return Err(Error::Binlog(format!(
            "event of {} bytes is shorter than its header",
            event.len()
        )));
    }
    let h = Header {
        event_type: event[4],
        server_id: u32_at(event, 5),
        event_size: u32_at(event, 9),
        log_pos: u32_at(event, 13),
        flags: u16::from_le_bytes([event[17], event[18]]),
    };
    if h.event_size as usize != event.len() {
        return Err(Error::Binlog(format!(
            "event type {} says {} bytes but the packet holds {}",
            h.event_type,
            h.event_size,
            event.len()
        )));
    }
    Ok(h)
}

/// The body without header and checksum.
fn body(event: &[u8], checksum_len: usize) -> Result<&[u8]> {
    event
        .get(HEADER_LEN..event.len().saturating_sub(checksum_len))
        .ok_or_else(|| Error::Binlog("event body shorter than its checksum".into()))
}

/// The statement text of a QUERY event.
pub(crate) fn query_text(event: &[u8], checksum_len: usize) -> Result<&[u8]> {
    let b = body(event, checksum_len)?;
    if b.len() < 13 {
        return Err(Error::Binlog("QUERY event without its post-header".into()));
    }
    let db_len = usize::from(b[8]);
    let status_len = usize::from(u16::from_le_bytes([b[11], b[12]]));
    let start = 13 + status_len + db_len + 1;
    b.get(start..)
        .ok_or_else(|| Error::Binlog("QUERY event shorter than its status block".into()))
}

/// MariaDB GTID event: (domain, seq, flags2); the server id is in the header.
pub(crate) fn mariadb_gtid(event: &[u8], checksum_len: usize) -> Result<(u32, u64, u8)> {
    let b = body(event, checksum_len)?;
    if b.len() < 13 {
        return Err(Error::Binlog("MariaDB GTID event too short".into()));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&b[..8]);
    Ok((u32_at(b, 8), u64::from_le_bytes(seq), b[12]))
}

/// MySQL GTID event (untagged): (sid, gno).
pub(crate) fn mysql_gtid(event: &[u8], checksum_len: usize) -> Result<([u8; 16], u64)> {
    let b = body(event, checksum_len)?;
    if b.len() < 25 {
        return Err(Error::Binlog("GTID event too short".into()));
    }
    let mut sid = [0u8; 16];
    sid.copy_from_slice(&b[1..17]);
    let mut gno = [0u8; 8];
    gno.copy_from_slice(&b[17..25]);
    Ok((sid, u64::from_le_bytes(gno)))
}

/// ROTATE: (position in the next file, next file name).
pub(crate) fn rotate(event: &[u8], checksum_len: usize) -> Result<(u64, String)> {
    let b = body(event, checksum_len)?;
    if b.len() < 8 {
        return Err(Error::Binlog("ROTATE event too short".into()));
    }
    let mut pos = [0u8; 8];
    pos.copy_from_slice(&b[..8]);
    Ok((
        u64::from_le_bytes(pos),
        String::from_utf8_lossy(&b[8..]).into_owned(),
    ))
}

/// True for `BEGIN`, false otherwise (case-insensitive, surrounding blanks ignored).
pub(crate) fn is_begin(q: &[u8]) -> bool {
    q.trim_ascii().eq_ignore_ascii_case(b"BEGIN")
}

/// True for `COMMIT` / `ROLLBACK` (and `XA COMMIT` / `XA ROLLBACK`).
pub(crate) fn is_end(q: &[u8]) -> bool {
    let q = q.trim_ascii();
    q.eq_ignore_ascii_case(b"COMMIT")
        || q.eq_ignore_ascii_case(b"ROLLBACK")
        || (q.len() > 9 && q[..9].eq_ignore_ascii_case(b"XA COMMIT"))
        || (q.len() > 11 && q[..11].eq_ignore_ascii_case(b"XA ROLLBACK"))
}
