//! ROTATE_EVENT (4): the name of the next binlog file and where to start in it.

use crate::error::Result;
use crate::header::EventType;
use crate::parse::{run, u64_};

/// Points at the next binlog file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotateEvent<'a> {
    /// Position to start at in the next file (4 = its first event).
    pub position: u64,
    /// File name bytes (no NUL).
    pub name: &'a [u8],
}

impl<'a> RotateEvent<'a> {
    pub(crate) fn parse(body: &'a [u8], body_start: usize) -> Result<Self> {
        run(EventType::Rotate, body, body_start, |i| {
            let (i, position) = u64_(i)?;
            Ok((&i[i.len()..], RotateEvent { position, name: i }))
        })
    }

    /// File name as text (lossy).
    pub fn name_lossy(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.name)
    }
}
