//! XID_EVENT (16): commit of a transaction in a transactional engine.

use crate::error::Result;
use crate::header::EventType;
use crate::parse::{run, u64_};

/// Commit marker carrying the transaction's XID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidEvent {
    /// Transaction id assigned by the server.
    pub xid: u64,
}

impl XidEvent {
    pub(crate) fn parse(body: &[u8], body_start: usize) -> Result<Self> {
        run(EventType::Xid, body, body_start, |i| {
            let (i, xid) = u64_(i)?;
            Ok((i, XidEvent { xid }))
        })
    }
}
