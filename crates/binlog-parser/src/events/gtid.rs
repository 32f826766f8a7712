//! MySQL GTID events: GTID (33), ANONYMOUS_GTID (34), GTID_TAGGED (42,
//! MySQL 8.3+) and PREVIOUS_GTIDS (35).

use crate::error::Result;
use crate::header::EventType;
use crate::parse::{
    PResult, fail, i64_, packed, run, take, u8_, u32_, u56_, u64_, varlen, varlen_signed,
};

/// A MySQL GTID event: starts a transaction and names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtidEvent<'a> {
    /// True for ANONYMOUS_GTID (no GTID assigned; sid is all zeros).
    pub anonymous: bool,
    /// Flags (1 = the transaction may contain statement-based events).
    pub flags: u8,
    /// Source UUID.
    pub sid: [u8; 16],
    /// Transaction number.
    pub gno: i64,
    /// Tag of a tagged GTID (MySQL 8.3+), ASCII.
    pub tag: Option<&'a [u8]>,
    /// Logical clock: last committed (5.7+).
    pub last_committed: Option<i64>,
    /// Logical clock: sequence number (5.7+).
    pub sequence_number: Option<i64>,
    /// Commit time on the immediate source, µs since the epoch (8.0.1+).
    pub immediate_commit_ts: Option<u64>,
    /// Commit time on the original source (equals immediate unless logged).
    pub original_commit_ts: Option<u64>,
    /// Size of the transaction in bytes (8.0.2+).
    pub transaction_length: Option<u64>,
    /// Server version of the immediate source (8.0.14+).
    pub immediate_server_version: Option<u32>,
    /// Server version of the original source.
    pub original_server_version: Option<u32>,
    /// Group-replication commit ticket (8.0.33+).
    pub commit_group_ticket: Option<u64>,
}

impl<'a> GtidEvent<'a> {
    fn empty(anonymous: bool) -> Self {
        GtidEvent {
            anonymous,
            flags: 0,
            sid: [0; 16],
            gno: 0,
            tag: None,
            last_committed: None,
            sequence_number: None,
            immediate_commit_ts: None,
            original_commit_ts: None,
            transaction_length: None,
            immediate_server_version: None,
            original_server_version: None,
            commit_group_ticket: None,
        }
    }

    pub(crate) fn parse(body: &'a [u8], body_start: usize, event_type: EventType) -> Result<Self> {
        if event_type == EventType::GtidTagged {
            return run(event_type, body, body_start, parse_tagged);
        }
        let anonymous = event_type == EventType::AnonymousGtid;
        run(event_type, body, body_start, |i| {
            let mut ev = GtidEvent::empty(anonymous);
            let (i, flags) = u8_(i)?;
            let (i, sid) = take(16)(i)?;
            let (mut i, gno) = i64_(i)?;
            ev.flags = flags;
            ev.sid.copy_from_slice(sid);
            ev.gno = gno;
            // 5.7+: logical clock
            if i.len() >= 17 && i[0] == 2 {
                let (r, _) = u8_(i)?;
                let (r, lc) = i64_(r)?;
                let (r, sn) = i64_(r)?;
                ev.last_committed = Some(lc);
                ev.sequence_number = Some(sn);
                i = r;
            }
            // 8.0.1+: commit timestamps
            if i.len() >= 7 {
                let (r, ts) = u56_(i)?;
                let (r, original) = if ts & (1 << 55) != 0 {
                    let (r, o) = u56_(r)?;
                    (r, o)
                } else {
                    (r, ts)
                };
                ev.immediate_commit_ts = Some(ts & !(1 << 55));
                ev.original_commit_ts = Some(original);
                i = r;
            }
            if !i.is_empty() {
                let (r, len) = packed(i)?;
                ev.transaction_length = Some(len);
                i = r;
            }
            if i.len() >= 4 {
                let (r, v) = u32_(i)?;
                let immediate = v & !(1 << 31);
                let (r, original) = if v & (1 << 31) != 0 {
                    u32_(r)?
                } else {
                    (r, immediate)
                };
                ev.immediate_server_version = Some(immediate);
                ev.original_server_version = Some(original);
                i = r;
            }
            if i.len() >= 8 {
                let (r, t) = u64_(i)?;
                ev.commit_group_ticket = Some(t);
                i = r;
            }
            Ok((i, ev))
        })
    }

    /// The GTID as `uuid:gno` or `uuid:tag:gno`.
    pub fn gtid_string(&self) -> String {
        let mut s = format_uuid(&self.sid);
        if let Some(tag) = self.tag {
            s.push(':');
            s.push_str(&String::from_utf8_lossy(tag));
        }
        s.push(':');
        s.push_str(&self.gno.to_string());
        s
    }
}

/// Formats 16 bytes as a hyphenated lower-case UUID.
pub fn format_uuid(sid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (n, b) in sid.iter().enumerate() {
        if matches!(n, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn parse_tagged(i: &[u8]) -> PResult<'_, GtidEvent<'_>> {
    let start_len = i.len();
    let (i, version) = u8_(i)?;
    if version != 2 {
        return fail(i, "unsupported serialization version of tagged GTID");
    }
    let (i, payload_size) = varlen(i)?;
    let (i, last_non_ignorable) = varlen(i)?;
    let consumed = (start_len - i.len()) as u64;
    let Some(fields_len) = payload_size.checked_sub(consumed) else {
        return fail(i, "tagged GTID payload size smaller than its envelope");
    };
    let Ok(fields_len) = usize::try_from(fields_len) else {
        return fail(i, "tagged GTID payload size too large");
    };
    if fields_len > i.len() {
        return fail(i, "tagged GTID payload runs past the event");
    }
    let (rest, mut f) = take(fields_len)(i)?;
    let mut ev = GtidEvent::empty(false);
    while !f.is_empty() {
        let (r, id) = varlen(f)?;
        f = match id {
            0 => {
                let (r, v) = varlen(r)?;
                ev.flags = v as u8;
                r
            }
            1 => {
                let mut r = r;
                for b in ev.sid.iter_mut() {
                    let (rr, v) = varlen(r)?;
                    *b = v as u8;
                    r = rr;
                }
                r
            }
            2 => {
                let (r, v) = varlen_signed(r)?;
                ev.gno = v;
                r
            }
            3 => {
                let (r, n) = varlen(r)?;
                let Ok(n) = usize::try_from(n) else {
                    return fail(r, "tag too long");
                };
                if n > r.len() {
                    return fail(r, "tag runs past the event");
                }
                let (r, tag) = take(n)(r)?;
                ev.tag = Some(tag);
                r
            }
            4 => {
                let (r, v) = varlen_signed(r)?;
                ev.last_committed = Some(v);
                r
            }
            5 => {
                let (r, v) = varlen_signed(r)?;
                ev.sequence_number = Some(v);
                r
            }
            6 => {
                let (r, v) = varlen(r)?;
                ev.immediate_commit_ts = Some(v);
                r
            }
            7 => {
                let (r, v) = varlen(r)?;
                ev.original_commit_ts = Some(v);
                r
            }
            8 => {
                let (r, v) = varlen(r)?;
                ev.transaction_length = Some(v);
                r
            }
            9 => {
                let (r, v) = varlen(r)?;
                ev.immediate_server_version = Some(v as u32);
                r
            }
            10 => {
                let (r, v) = varlen(r)?;
                ev.original_server_version = Some(v as u32);
                r
            }
            11 => {
                let (r, v) = varlen(r)?;
                ev.commit_group_ticket = Some(v);
                r
            }
            id if id > last_non_ignorable => break,
            _ => return fail(r, "unknown non-ignorable field in tagged GTID"),
        };
    }
    if ev.original_commit_ts.is_none() {
        ev.original_commit_ts = ev.immediate_commit_ts;
    }
    if ev.original_server_version.is_none() {
        ev.original_server_version = ev.immediate_server_version;
    }
    Ok((rest, ev))
}

/// One source of a PREVIOUS_GTIDS set: UUID, optional tag, intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtidSetEntry<'a> {
    /// Source UUID.
    pub sid: [u8; 16],
    /// Tag (tagged format only; `None` = untagged).
    pub tag: Option<&'a [u8]>,
    /// `[start, end)` intervals of transaction numbers.
    pub intervals: Vec<(i64, i64)>,
}

/// PREVIOUS_GTIDS_EVENT: the GTID set of all earlier binlog files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousGtidsEvent<'a> {
    /// The set, one entry per (UUID, tag).
    pub entries: Vec<GtidSetEntry<'a>>,
}

impl<'a> PreviousGtidsEvent<'a> {
    pub(crate) fn parse(body: &'a [u8], body_start: usize) -> Result<Self> {
        run(EventType::PreviousGtids, body, body_start, |i| {
            let (mut i, header) = u64_(i)?;
            let tagged = header >> 56 != 0;
            let n_sids = if tagged {
                (header >> 8) & ((1 << 48) - 1)
            } else {
                header
            };
            let mut entries = Vec::new();
            for _ in 0..n_sids {
                let (r, sid) = take(16)(i)?;
                let mut r = r;
                let mut tag = None;
                if tagged {
                    let (rr, n) = varlen(r)?;
                    let Ok(n) = usize::try_from(n) else {
                        return fail(rr, "tag too long");
                    };
                    if n > rr.len() {
                        return fail(rr, "tag runs past the event");
                    }
                    let (rr, t) = take(n)(rr)?;
                    if n > 0 {
                        tag = Some(t);
                    }
                    r = rr;
                }
                let (r, n_intervals) = u64_(r)?;
                // Each interval takes 16 bytes: bound by what is left.
                if n_intervals > (r.len() / 16) as u64 {
                    return fail(r, "interval count runs past the event");
                }
                let mut r = r;
                let mut intervals = Vec::with_capacity(n_intervals as usize);
                for _ in 0..n_intervals {
                    let (rr, start) = i64_(r)?;
                    let (rr, end) = i64_(rr)?;
                    intervals.push((start, end));
                    r = rr;
                }
                let mut s = [0u8; 16];
                s.copy_from_slice(sid);
                entries.push(GtidSetEntry {
                    sid: s,
                    tag,
                    intervals,
                });
                i = r;
            }
            Ok((i, PreviousGtidsEvent { entries }))
        })
    }

    /// The set in MySQL's text form, e.g. `uuid:1-5:7,uuid2:tag:1-3`.
    pub fn to_gtid_set_string(&self) -> String {
        let mut out = String::new();
        for (n, e) in self.entries.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&format_uuid(&e.sid));
            if let Some(tag) = e.tag {
                out.push(':');
                out.push_str(&String::from_utf8_lossy(tag));
            }
            for &(start, end) in &e.intervals {
                if end - 1 == start {
                    out.push_str(&format!(":{start}"));
                } else {
                    out.push_str(&format!(":{start}-{}", end - 1));
                }
            }
        }
        out
    }
}
