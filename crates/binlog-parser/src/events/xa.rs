//! XA_PREPARE_LOG_EVENT (38): ends the event group of an XA branch. With
//! `one_phase` unset the branch is only prepared: its changes take effect
//! when a later group (`XA COMMIT xid`) commits it, or never (`XA ROLLBACK
//! xid`). MySQL 8 writes `XA COMMIT … ONE PHASE` as this event with
//! `one_phase` set: the group is then an ordinary committed transaction.

use crate::error::Result;
use crate::header::EventType;
use crate::parse::{fail, run, take, u8_, u32_};

/// Largest `gtrid` and `bqual` of an XA xid (the X/Open limit, 64 bytes each).
pub const XID_PART_MAX: u32 = 64;

/// An XA transaction id: format id, global transaction id and branch qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XaXid<'a> {
    /// `formatID` (1 unless the client chose another).
    pub format_id: u32,
    /// Global transaction id (`gtrid`), at most 64 bytes.
    pub gtrid: &'a [u8],
    /// Branch qualifier (`bqual`), at most 64 bytes.
    pub bqual: &'a [u8],
}

/// XA_PREPARE: the end of an XA branch's event group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XaPrepareEvent<'a> {
    /// True for `XA COMMIT … ONE PHASE` (MySQL): the group is committed.
    pub one_phase: bool,
    /// The branch's xid.
    pub xid: XaXid<'a>,
}

impl<'a> XaPrepareEvent<'a> {
    pub(crate) fn parse(body: &'a [u8], body_start: usize) -> Result<Self> {
        run(EventType::XaPrepare, body, body_start, |i| {
            let (i, one_phase) = u8_(i)?;
            let (i, format_id) = u32_(i)?;
            let (i, gtrid_len) = u32_(i)?;
            let (i, bqual_len) = u32_(i)?;
            if gtrid_len > XID_PART_MAX || bqual_len > XID_PART_MAX {
                return fail(i, "XA xid part longer than 64 bytes");
            }
            let (i, gtrid) = take(gtrid_len as usize)(i)?;
            let (i, bqual) = take(bqual_len as usize)(i)?;
            Ok((
                i,
                XaPrepareEvent {
                    one_phase: one_phase != 0,
                    xid: XaXid {
                        format_id,
                        gtrid,
                        bqual,
                    },
                },
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body MariaDB 10.11 wrote for `XA PREPARE 'a1'` (from a sandbox binlog).
    #[test]
    fn mariadb_prepare() {
        let body = [0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'1'];
        let ev = XaPrepareEvent::parse(&body, 19).expect("decodes");
        assert!(!ev.one_phase);
        assert_eq!(ev.xid.format_id, 1);
        assert_eq!(ev.xid.gtrid, b"a1");
        assert_eq!(ev.xid.bqual, b"");
    }

    /// MySQL 8's form of `XA COMMIT 'g','b',7 ONE PHASE`: the same layout
    /// with `one_phase` set.
    #[test]
    fn mysql_one_phase() {
        let mut body = vec![1, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0];
        body.extend_from_slice(b"gbq");
        let ev = XaPrepareEvent::parse(&body, 19).expect("decodes");
        assert!(ev.one_phase);
        assert_eq!(
            ev.xid,
            XaXid {
                format_id: 7,
                gtrid: b"g",
                bqual: b"bq"
            }
        );
    }

    /// A whole MySQL 8 event (common header, no checksum) through the
    /// context, as a replica receives it.
    #[test]
    fn decodes_as_a_typed_event() {
        let mut body = vec![0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(b"x-1");
        let size = (19 + body.len()) as u32;
        let mut ev = vec![0, 0, 0, 0, 38, 1, 0, 0, 0];
        ev.extend_from_slice(&size.to_le_bytes());
        ev.extend_from_slice(&900u32.to_le_bytes());
        ev.extend_from_slice(&[0, 0]);
        ev.extend_from_slice(&body);
        let mut ctx = crate::DecodeContext::new();
        let decoded = ctx.decode_packet(&ev).expect("decodes");
        let crate::EventData::XaPrepare(xa) = decoded.data else {
            panic!("not an XA_PREPARE: {:?}", decoded.data);
        };
        assert!(!xa.one_phase);
        assert_eq!(xa.xid.gtrid, b"x-1");
    }

    #[test]
    fn hostile_lengths_are_errors() {
        let mut body = vec![0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        body.extend_from_slice(b"x");
        assert!(XaPrepareEvent::parse(&body, 19).is_err());
        let short = [0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, b'a'];
        assert!(XaPrepareEvent::parse(&short, 19).is_err());
        assert!(XaPrepareEvent::parse(&[0, 1], 19).is_err());
    }
}
