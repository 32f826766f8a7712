//! TRANSACTION_PAYLOAD_EVENT (40): a zstd-compressed run of events
//! (MySQL 8.0.20+ with `binlog_transaction_compression=ON`).

use std::borrow::Cow;

use crate::compression::zstd_all;
use crate::error::{Error, Result};
use crate::header::{EventHeader, EventType, HEADER_LEN, RawEvent};
use crate::parse::{fail, packed, run, take};

/// Compression of a transaction payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadCompression {
    /// zstd (type 0).
    Zstd,
    /// Stored as is (type 255).
    None,
    /// Any other value.
    Other(u64),
}

/// A compressed transaction. Call [`TransactionPayloadEvent::decompress`]
/// once, then walk the inner events with [`PayloadEvents`]: they borrow from
/// the one decompressed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionPayloadEvent<'a> {
    /// Offset of the event in its file.
    pub offset: u64,
    /// Compression type.
    pub compression: PayloadCompression,
    /// Uncompressed size announced by the writer (a hint).
    pub uncompressed_size: u64,
    /// The compressed bytes.
    pub payload: &'a [u8],
}

impl<'a> TransactionPayloadEvent<'a> {
    pub(crate) fn parse(body: &'a [u8], body_start: usize) -> Result<Self> {
        run(EventType::TransactionPayload, body, body_start, |mut i| {
            let mut size = None;
            let mut compression = PayloadCompression::Zstd;
            let mut uncompressed_size = 0;
            loop {
                let (r, t) = packed(i)?;
                if t == 0 {
                    i = r;
                    break;
                }
                let (r, len) = packed(r)?;
                if len > r.len() as u64 {
                    return fail(r, "payload header field runs past the event");
                }
                let (r, v) = take(len as usize)(r)?;
                let value = || packed(v).map(|(_, x)| x);
                match t {
                    1 => size = Some(value()?),
                    2 => {
                        compression = match value()? {
                            0 => PayloadCompression::Zstd,
                            255 => PayloadCompression::None,
                            o => PayloadCompression::Other(o),
                        }
                    }
                    3 => uncompressed_size = value()?,
                    _ => {}
                }
                i = r;
            }
            let size = size.unwrap_or(i.len() as u64);
            if size > i.len() as u64 {
                return fail(i, "payload size runs past the event");
            }
            let (i, payload) = take(size as usize)(i)?;
            Ok((
                i,
                TransactionPayloadEvent {
                    offset: 0,
                    compression,
                    uncompressed_size,
                    payload,
                },
            ))
        })
    }

    /// Decompresses the payload into one buffer (borrowed if stored raw).
    ///
    /// # Errors
    /// [`Error::Decompress`] for corrupt zstd data or an unknown compression.
    pub fn decompress(&self) -> Result<Cow<'a, [u8]>> {
        match self.compression {
            PayloadCompression::None => Ok(Cow::Borrowed(self.payload)),
            PayloadCompression::Zstd => zstd_all(self.payload, self.uncompressed_size)
                .map(Cow::Owned)
                .map_err(|reason| Error::Decompress {
                    offset: self.offset,
                    event_type: EventType::TransactionPayload,
                    reason,
                }),
            PayloadCompression::Other(_) => Err(Error::Unsupported {
                offset: self.offset,
                event_type: EventType::TransactionPayload,
                reason: "unknown payload compression type",
            }),
        }
    }
}

/// Frames the events inside a decompressed payload (no checksums, log_pos 0).
/// Decode each with [`DecodeContext::decode`](crate::DecodeContext::decode).
#[derive(Debug, Clone)]
pub struct PayloadEvents<'b> {
    data: &'b [u8],
    pos: usize,
    offset: u64,
    failed: bool,
}

impl<'b> PayloadEvents<'b> {
    /// Walks `data` (from [`TransactionPayloadEvent::decompress`]); errors
    /// name `payload_offset`, the offset of the payload event.
    pub fn new(data: &'b [u8], payload_offset: u64) -> Self {
        PayloadEvents {
            data,
            pos: 0,
            offset: payload_offset,
            failed: false,
        }
    }
}

impl<'b> Iterator for PayloadEvents<'b> {
    type Item = Result<RawEvent<'b>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let r = EventHeader::parse(rest).and_then(|header| {
            let size = header.event_size as usize;
            if size > rest.len() {
                return Err(Error::Truncated {
                    offset: 0,
                    needed: size as u64,
                    available: rest.len() as u64,
                });
            }
            if header.event_type == EventType::TransactionPayload {
                return Err(Error::Malformed {
                    offset: 0,
                    event_type: header.event_type,
                    at: 0,
                    reason: "transaction payload nested in a transaction payload",
                });
            }
            Ok(RawEvent {
                offset: self.offset,
                header,
                bytes: &rest[..size],
                body: &rest[HEADER_LEN..size],
                in_payload: true,
            })
        });
        match r {
            Ok(raw) => {
                self.pos += raw.bytes.len();
                Some(Ok(raw))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e.at_event(self.offset)))
            }
        }
    }
}
