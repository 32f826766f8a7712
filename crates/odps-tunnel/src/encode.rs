//! No-I/O block codecs: the Tunnel's Arrow framing and its protobuf record
//! format, each with encoder and decoder.
//!
//! Both sides of the wire use these: the client's writer and download reader,
//! and `odps-emulator`'s upload and download handlers. Nothing here does I/O;
//! bytes go in and out of `Vec<u8>`s.
//!
//! # Arrow blocks
//!
//! [`arrow::BlockEncoder`] turns `RecordBatch`es into a block body:
//! a big-endian `u32` chunk size, then the payload (Arrow IPC record-batch
//! messages only: no schema message, no end-of-stream marker) cut into chunks
//! of that size, each full chunk followed by the big-endian CRC32C of its
//! bytes, then the last partial chunk and the CRC32C of the whole payload.
//! [`arrow::BlockDecoder`] checks all of it and gives the batches back.
//!
//! # Protobuf records
//!
//! [`proto::RecordEncoder`] writes records as protobuf fields numbered by
//! column position, each record closed by its CRC32C, and the stream closed
//! by the record count and a CRC32C over the record CRCs.
//! [`proto::RecordDecoder`] reads it back into Arrow batches.

pub mod arrow;
pub mod proto;

/// Where a checksum was found wrong.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub enum ChecksumScope {
    /// The CRC after a full Arrow chunk (chunk index from 0).
    Chunk(u64),
    /// The CRC over the whole Arrow payload.
    Payload,
    /// The CRC closing a protobuf record (record index from 0).
    Record(u64),
    /// The CRC over all record CRCs of a protobuf stream.
    Stream,
    /// The CRC over the server metrics of a protobuf stream.
    Metrics,
}

/// A block or stream that cannot be decoded.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A checksum does not match the data.
    #[error(
        "checksum mismatch ({scope:?}) at byte {offset}: expected {expected:#010x}, computed {actual:#010x}"
    )]
    ChecksumMismatch {
        /// Which checksum.
        scope: ChecksumScope,
        /// Byte offset of the checksum in the input.
        offset: u64,
        /// The value in the input.
        expected: u32,
        /// The value computed from the data.
        actual: u32,
    },
    /// The input ended early.
    #[error("truncated input: {what} needs {needed} more bytes at byte {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset where the input ended.
        offset: u64,
        /// Bytes missing (at least).
        needed: u64,
    },
    /// The chunk size header is not usable.
    #[error("invalid Arrow chunk size {0}")]
    InvalidChunkSize(u32),
    /// The Arrow IPC payload is malformed or does not match the schema.
    #[error("Arrow IPC payload: {0}")]
    Ipc(String),
    /// The protobuf stream is malformed.
    #[error("protobuf record stream at byte {offset}: {reason}")]
    Protobuf {
        /// Byte offset of the problem.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The stream's record count does not match the records read.
    #[error("record count mismatch: trailer says {expected}, read {actual}")]
    CountMismatch {
        /// Count in the trailer.
        expected: i64,
        /// Records actually read.
        actual: i64,
    },
}

/// Errors while encoding a block.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The batch does not fit the table (see [`crate::types::conform_batch`]).
    #[error(transparent)]
    Type(#[from] crate::types::TypeError),
    /// Arrow could not encode the batch.
    #[error("Arrow IPC encoding: {0}")]
    Ipc(String),
    /// The chunk size is zero.
    #[error("chunk size must be at least 1")]
    InvalidChunkSize,
}
