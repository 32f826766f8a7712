//! MariaDB control events: GTID (162), GTID_LIST (163), BINLOG_CHECKPOINT
//! (161), ANNOTATE_ROWS (160).

use crate::error::Result;
use crate::header::EventType;
use crate::parse::{run, take, u8_, u32_, u64_};

/// MariaDB GTID: starts an event group (replaces `BEGIN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariadbGtidEvent<'a> {
    /// Sequence number.
    pub seq_no: u64,
    /// Replication domain.
    pub domain_id: u32,
    /// flags2 (1 standalone, 2 group commit id, 4 transactional, 8 allow
    /// parallel, 16 waited, 32 DDL, 64 prepared XA, 128 completed XA).
    pub flags: u8,
    /// Group commit id (flag 2).
    pub commit_id: Option<u64>,
    /// XA: `(format_id, gtrid, bqual)` (flags 64/128).
    pub xid: Option<(u32, &'a [u8], &'a [u8])>,
    /// flags_extra byte, if present.
    pub flags_extra: Option<u8>,
    /// Number of extra engines (flags_extra & 1).
    pub extra_engines: Option<u8>,
    /// Sequence number of the start-alter (flags_extra & (4|8)).
    pub sa_seq_no: Option<u64>,
}

impl MariadbGtidEvent<'_> {
    /// flags2 bit: the group is a single statement with no BEGIN/COMMIT.
    pub const FL_STANDALONE: u8 = 1;
    /// flags2 bit: commit_id present.
    pub const FL_GROUP_COMMIT_ID: u8 = 2;

    /// Whether the group has no terminating XID/COMMIT (DDL).
    pub fn is_standalone(&self) -> bool {
        self.flags & Self::FL_STANDALONE != 0
    }
}

impl<'a> MariadbGtidEvent<'a> {
    pub(crate) fn parse(body: &'a [u8], body_start: usize) -> Result<Self> {
        run(EventType::MariadbGtid, body, body_start, |i| {
            let (i, seq_no) = u64_(i)?;
            let (i, domain_id) = u32_(i)?;
            let (mut i, flags) = u8_(i)?;
            let mut ev = MariadbGtidEvent {
                seq_no,
                domain_id,
                flags,
                commit_id: None,
                xid: None,
                flags_extra: None,
                extra_engines: None,
                sa_seq_no: None,
            };
            if flags & Self::FL_GROUP_COMMIT_ID != 0 {
                let (r, c) = u64_(i)?;
                ev.commit_id = Some(c);
                i = r;
            }
            if flags & (64 | 128) != 0 {
                let (r, format_id) = u32_(i)?;
                let (r, gl) = u8_(r)?;
                let (r, bl) = u8_(r)?;
                let (r, g) = take(usize::from(gl))(r)?;
                let (r, b) = take(usize::from(bl))(r)?;
                ev.xid = Some((format_id, g, b));
                i = r;
            }
            if let Some((&fx, r)) = i.split_first()
                && fx != 0
            {
                {
                    ev.flags_extra = Some(fx);
                    i = r;
                    if fx & 1 != 0 {
                        let (r, n) = u8_(i)?;
                        ev.extra_engines = Some(n);
                        i = r;
                    }
                    if fx & (4 | 8) != 0 {
                        let (r, s) = u64_(i)?;
                        ev.sa_seq_no = Some(s);
                        i = r;
                    }
                }
            }
            Ok((i, ev))
        })
    }
}

/// MariaDB GTID_LIST: the binlog state at the start of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariadbGtidListEvent {
    /// Flags in the top 4 bits of the count word.
    pub flags: u8,
    /// `(domain_id, server_id, seq_no)` triples.
    pub gtids: Vec<(u32, u32, u64)>,
}

impl MariadbGtidListEvent {
    pub(crate) fn parse(body: &[u8], body_start: usize) -> Result<Self> {
        run(EventType::MariadbGtidList, body, body_start, |i| {
            let (mut i, word) = u32_(i)?;
            let count = word & 0x0fff_ffff;
            let flags = (word >> 28) as u8;
            let mut gtids = Vec::with_capacity((count as usize).min(i.len() / 16));
            for _ in 0..count {
                let (r, d) = u32_(i)?;
                let (r, s) = u32_(r)?;
                let (r, q) = u64_(r)?;
                gtids.push((d, s, q));
                i = r;
            }
            Ok((i, MariadbGtidListEvent { flags, gtids }))
        })
    }
}

/// MariaDB BINLOG_CHECKPOINT: oldest binlog still needed for crash recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinlogCheckpointEvent<'a> {
    /// File name.
    pub name: &'a [u8],
}

impl<'a> BinlogCheckpointEvent<'a> {
    pub(crate) fn parse(body: &'a [u8], body_start: usize) -> Result<Self> {
        run(EventType::BinlogCheckpoint, body, body_start, |i| {
            let (i, n) = u32_(i)?;
            let (i, name) = take(n as usize)(i)?;
            Ok((i, BinlogCheckpointEvent { name }))
        })
    }
}

/// MariaDB ANNOTATE_ROWS: the statement behind the following rows events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnotateRowsEvent<'a> {
    /// Statement text.
    pub query: &'a [u8],
}
