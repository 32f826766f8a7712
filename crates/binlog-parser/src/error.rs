//! Typed errors. Every error names the file offset of the event it concerns
//! (0 when an event is decoded on its own, e.g. from a network packet).

use crate::event_type::EventType;

/// Everything that can go wrong while decoding a binlog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input does not start with the binlog magic `fe 62 69 6e`.
    #[error("not a binlog: the first bytes are {found:02x?}, not fe 62 69 6e")]
    BadMagic {
        /// The first (up to four) bytes found.
        found: Vec<u8>,
    },
    /// The input ends inside an event (header or body).
    #[error("truncated event at offset {offset}: it needs {needed} bytes, only {available} remain")]
    Truncated {
        /// Offset of the event's first byte.
        offset: u64,
        /// Bytes the event needs (19 for a header, else its `event_size`).
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// The CRC32 stored at the end of an event does not match its bytes.
    #[error(
        "checksum mismatch in event at offset {offset}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    Checksum {
        /// Offset of the event's first byte.
        offset: u64,
        /// CRC32 found in the event.
        stored: u32,
        /// CRC32 computed over the event.
        computed: u32,
    },
    /// An event's bytes do not follow its format.
    #[error("malformed {event_type:?} event at offset {offset}, byte {at} of the event: {reason}")]
    Malformed {
        /// Offset of the event's first byte.
        offset: u64,
        /// Type of the event.
        event_type: EventType,
        /// Byte position inside the event where decoding failed.
        at: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A valid construct this decoder does not handle (e.g. encrypted binlogs).
    #[error("unsupported {event_type:?} event at offset {offset}: {reason}")]
    Unsupported {
        /// Offset of the event's first byte.
        offset: u64,
        /// Type of the event.
        event_type: EventType,
        /// What is unsupported.
        reason: &'static str,
    },
    /// A rows event refers to a table id for which no TABLE_MAP was seen.
    #[error("rows event at offset {offset} refers to table id {table_id}, which has no table map")]
    MissingTableMap {
        /// Offset of the rows event.
        offset: u64,
        /// The unknown table id.
        table_id: u64,
    },
    /// A compressed payload (zstd or zlib) could not be decompressed.
    #[error("cannot decompress the {event_type:?} event at offset {offset}: {reason}")]
    Decompress {
        /// Offset of the event's first byte.
        offset: u64,
        /// Type of the event.
        event_type: EventType,
        /// Decompressor message.
        reason: String,
    },
    /// Reading the underlying stream failed.
    #[error("I/O error at offset {offset}: {source}")]
    Io {
        /// Offset the reader had reached.
        offset: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Offset of the event (or stream position) the error concerns.
    pub fn offset(&self) -> u64 {
        match self {
            Error::BadMagic { .. } => 0,
            Error::Truncated { offset, .. }
            | Error::Checksum { offset, .. }
            | Error::Malformed { offset, .. }
            | Error::Unsupported { offset, .. }
            | Error::MissingTableMap { offset, .. }
            | Error::Decompress { offset, .. }
            | Error::Io { offset, .. } => *offset,
        }
    }

    /// The same error, re-anchored at the event that starts at `offset`.
    /// Used when an event decoded on its own turns out to live in a file.
    pub(crate) fn at_event(mut self, event_offset: u64) -> Self {
        match &mut self {
            Error::BadMagic { .. } => {}
            Error::Truncated { offset, .. }
            | Error::Checksum { offset, .. }
            | Error::Malformed { offset, .. }
            | Error::Unsupported { offset, .. }
            | Error::MissingTableMap { offset, .. }
            | Error::Decompress { offset, .. }
            | Error::Io { offset, .. } => *offset = event_offset,
        }
        self
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
