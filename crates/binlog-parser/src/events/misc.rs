//! Small events: HEARTBEAT (27) and HEARTBEAT_V2 (41), ROWS_QUERY (29),
//! INCIDENT (26), INTVAR (5), RAND (13).

use crate::error::Result;
use crate::header::EventType;
use crate::parse::{packed, run, take, u8_, u16_, u64_};

/// Keep-alive sent by a source on an idle replication stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatEvent<'a> {
    /// Current binlog file name of the source.
    pub log_name: &'a [u8],
    /// Position in that file (v1: the header's `log_pos`).
    pub position: u64,
}

impl<'a> HeartbeatEvent<'a> {
    pub(crate) fn parse_v1(body: &'a [u8], log_pos: u32) -> Self {
        HeartbeatEvent {
            log_name: body,
            position: u64::from(log_pos),
        }
    }

    pub(crate) fn parse_v2(body: &'a [u8], body_start: usize) -> Result<Self> {
        run(EventType::HeartbeatV2, body, body_start, |mut i| {
            let mut ev = HeartbeatEvent {
                log_name: &[],
                position: 0,
            };
            while !i.is_empty() {
                let (r, ty) = u8_(i)?;
                if ty == 0 {
                    i = r;
                    break;
                }
                let (r, len) = packed(r)?;
                let (r, value) = take(len as usize)(r)?;
                match ty {
                    1 => ev.log_name = value,
                    2 => ev.position = packed(value)?.1,
                    _ => {}
                }
                i = r;
            }
            Ok((i, ev))
        })
    }
}

/// ROWS_QUERY: the original statement behind the following rows events
/// (`binlog_rows_query_log_events=ON`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsQueryEvent<'a> {
    /// Statement text.
    pub query: &'a [u8],
}

impl<'a> RowsQueryEvent<'a> {
    pub(crate) fn parse(body: &'a [u8]) -> Self {
        // The leading length byte is truncated to 255: the text runs to the end.
        RowsQueryEvent {
            query: body.get(1..).unwrap_or(&[]),
        }
    }
}

/// INCIDENT: something happened on the source that replicas must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentEvent<'a> {
    /// Incident type (1 = LOST_EVENTS: the stream has a gap).
    pub incident: u16,
    /// Message.
    pub message: &'a [u8],
}

impl<'a> IncidentEvent<'a> {
    pub(crate) fn parse(body: &'a [u8], body_start: usize) -> Result<Self> {
        run(EventType::Incident, body, body_start, |i| {
            let (i, incident) = u16_(i)?;
            if i.is_empty() {
                return Ok((
                    i,
                    IncidentEvent {
                        incident,
                        message: &[],
                    },
                ));
            }
            let (i, n) = u8_(i)?;
            let (i, message) = take(usize::from(n))(i)?;
            Ok((i, IncidentEvent { incident, message }))
        })
    }
}

/// INTVAR: LAST_INSERT_ID (1) or INSERT_ID (2) for the next statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntvarEvent {
    /// 1 = LAST_INSERT_ID, 2 = INSERT_ID.
    pub kind: u8,
    /// The value.
    pub value: u64,
}

impl IntvarEvent {
    pub(crate) fn parse(body: &[u8], body_start: usize) -> Result<Self> {
        run(EventType::Intvar, body, body_start, |i| {
            let (i, kind) = u8_(i)?;
            let (i, value) = u64_(i)?;
            Ok((i, IntvarEvent { kind, value }))
        })
    }
}

/// RAND: the two seeds of RAND() for the next statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandEvent {
    /// Seed 1.
    pub seed1: u64,
    /// Seed 2.
    pub seed2: u64,
}

impl RandEvent {
    pub(crate) fn parse(body: &[u8], body_start: usize) -> Result<Self> {
        run(EventType::Rand, body, body_start, |i| {
            let (i, seed1) = u64_(i)?;
            let (i, seed2) = u64_(i)?;
            Ok((i, RandEvent { seed1, seed2 }))
        })
    }
}
