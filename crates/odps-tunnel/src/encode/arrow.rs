//! The Tunnel's Arrow block framing: chunked Arrow IPC record-batch messages
//! with CRC32C checksums.
//!
//! ```text
//! u32be chunk_size
//! { chunk_size payload bytes, u32be crc32c(chunk) }*      every full chunk
//! k < chunk_size payload bytes                           last partial chunk (k may be 0)
//! u32be crc32c(all payload bytes)
//! ```
//!
//! The payload is a sequence of encapsulated IPC `RecordBatch` messages; the
//! schema is the table's, known to both sides, so no schema message is sent.
//! A block with no data at all is just the payload CRC of nothing (`0`).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Int64Array, RecordBatch};
//! use odps_tunnel::encode::arrow::{decode_block, BlockEncoder};
//! use odps_tunnel::types::{Column, OdpsType};
//!
//! let columns = vec![Column::new("id", OdpsType::Bigint)];
//! let batch = RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as _)])?;
//! let mut encoder = BlockEncoder::try_new(&columns)?;
//! encoder.write(&batch)?;
//! let body = encoder.finish();
//! let batches = decode_block(&columns, &body)?;
//! assert_eq!(batches[0].column(0).as_ref(), batch.column(0).as_ref());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::Write;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::MetadataVersion;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::{
    DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions, write_message,
};
use arrow_schema::SchemaRef;

use super::{ChecksumScope, DecodeError, EncodeError};
use crate::types::{Column, DEFAULT_MAX_FIELD_SIZE, arrow_schema, conform_batch};

/// The chunk size the SDKs use.
pub const DEFAULT_CHUNK_SIZE: u32 = 65_536;
/// Largest chunk size a decoder accepts (guards memory on hostile input).
pub const MAX_CHUNK_SIZE: u32 = 64 * 1024 * 1024;

/// The CRC32C operator "append `n` zero bytes", for one fixed `n`: with it,
/// `crc(a ‖ b) = shift(crc(a)) ^ crc(b)` for every `b` of `n` bytes costs 32
/// bit steps, where a general combine (`crc32c::crc32c_combine`) rebuilds
/// the operator from log2(n) matrix squarings on every call.
#[derive(Clone, Debug)]
struct ZeroShift([u32; 32]);

impl ZeroShift {
    fn new(n: usize) -> Self {
        // One zero bit (the reflected CRC-32C polynomial), then 2, 4, 8.
        let mut op = [0u32; 32];
        op[0] = 0x82F6_3B78;
        for (i, row) in op.iter_mut().enumerate().skip(1) {
            *row = 1 << (i - 1);
        }
        for _ in 0..3 {
            op = gf2_compose(&op, &op);
        }
        let mut shift = [0u32; 32];
        for (i, row) in shift.iter_mut().enumerate() {
            *row = 1 << i;
        }
        let mut n = n;
        while n > 0 {
            if n & 1 == 1 {
                shift = gf2_compose(&op, &shift);
            }
            op = gf2_compose(&op, &op);
            n >>= 1;
        }
        Self(shift)
    }

    /// `crc(a ‖ b)` from `crc(a)` and `crc(b)`, `b` being `n` bytes long.
    fn combine(&self, crc_a: u32, crc_b: u32) -> u32 {
        gf2_times(&self.0, crc_a) ^ crc_b
    }
}

fn gf2_times(matrix: &[u32; 32], mut vector: u32) -> u32 {
    let mut sum = 0;
    let mut i = 0;
    while vector != 0 {
        if vector & 1 == 1 {
            sum ^= matrix[i];
        }
        vector >>= 1;
        i += 1;
    }
    sum
}

/// `a` after `b`.
fn gf2_compose(a: &[u32; 32], b: &[u32; 32]) -> [u32; 32] {
    let mut out = [0u32; 32];
    for (o, col) in out.iter_mut().zip(b) {
        *o = gf2_times(a, *col);
    }
    out
}

/// Cuts payload bytes into checksummed chunks.
#[derive(Clone, Debug)]
pub struct ChunkFramer {
    chunk_size: usize,
    shift: ZeroShift,
    in_chunk: usize,
    chunk_crc: u32,
    payload_crc: u32,
    payload_len: u64,
    started: bool,
}

impl ChunkFramer {
    /// A framer with chunks of `chunk_size` bytes.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidChunkSize`] when `chunk_size` is 0.
    pub fn new(chunk_size: u32) -> Result<Self, EncodeError> {
        if chunk_size == 0 {
            return Err(EncodeError::InvalidChunkSize);
        }
        Ok(Self {
            chunk_size: chunk_size as usize,
            shift: ZeroShift::new(chunk_size as usize),
            in_chunk: 0,
            chunk_crc: 0,
            payload_crc: 0,
            payload_len: 0,
            started: false,
        })
    }

    /// Appends the framing of `data` to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        if data.is_empty() {
            return;
        }
        if !self.started {
            // The size header comes with the first byte, as in both SDKs.
            out.extend_from_slice(&(self.chunk_size as u32).to_be_bytes());
            self.started = true;
        }
        self.payload_len += data.len() as u64;
        // One CRC pass: the payload CRC is combined from the chunk CRCs.
        while !data.is_empty() {
            let take = (self.chunk_size - self.in_chunk).min(data.len());
            let (piece, rest) = data.split_at(take);
            out.extend_from_slice(piece);
            self.chunk_crc = crc32c::crc32c_append(self.chunk_crc, piece);
            self.in_chunk += take;
            if self.in_chunk == self.chunk_size {
                out.extend_from_slice(&self.chunk_crc.to_be_bytes());
                self.payload_crc = self.shift.combine(self.payload_crc, self.chunk_crc);
                self.chunk_crc = 0;
                self.in_chunk = 0;
            }
            data = rest;
        }
    }

    /// Appends the closing payload checksum to `out`.
    pub fn finish(self, out: &mut Vec<u8>) {
        let crc = crc32c::crc32c_combine(self.payload_crc, self.chunk_crc, self.in_chunk);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    /// Payload bytes framed so far.
    pub fn payload_len(&self) -> u64 {
        self.payload_len
    }
}

/// Options of a [`BlockEncoder`].
#[derive(Clone, Debug)]
pub struct EncoderOptions {
    /// Chunk size; [`DEFAULT_CHUNK_SIZE`] unless a server asks otherwise.
    pub chunk_size: u32,
    /// Largest string/binary value in bytes (the session's `MaxFieldSize`).
    pub max_field_size: usize,
    /// Check every value against its MaxCompute type before encoding. Turn
    /// off only for batches that came out of a table of the same schema.
    pub check_values: bool,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_field_size: DEFAULT_MAX_FIELD_SIZE,
            check_values: true,
        }
    }
}

/// Encodes `RecordBatch`es into one Arrow block body, without I/O.
///
/// `write` appends to an internal buffer; [`take_buffered`](Self::take_buffered)
/// drains what is ready (to stream it), and [`finish`](Self::finish) returns the
/// rest with the closing checksum.
pub struct BlockEncoder {
    columns: Vec<Column>,
    schema: SchemaRef,
    options: EncoderOptions,
    framer: ChunkFramer,
    out: Vec<u8>,
    ipc_options: IpcWriteOptions,
    generator: IpcDataGenerator,
    tracker: DictionaryTracker,
    context: IpcWriteContext,
    rows: u64,
}

impl std::fmt::Debug for BlockEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockEncoder")
            .field("columns", &self.columns)
            .field("rows", &self.rows)
            .field("payload_bytes", &self.framer.payload_len())
            .finish_non_exhaustive()
    }
}

/// Struct in a Write: streams IPC bytes straight through the framer.
struct FramingSink<'a> {
    framer: &'a mut ChunkFramer,
    out: &'a mut Vec<u8>,
}

impl Write for FramingSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.framer.push(buf, self.out);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BlockEncoder {
    /// An encoder for a table's data columns with default options.
    ///
    /// # Errors
    ///
    /// As [`try_new_with_options`](Self::try_new_with_options).
    pub fn try_new(columns: &[Column]) -> Result<Self, EncodeError> {
        Self::try_new_with_options(columns, EncoderOptions::default())
    }

    /// An encoder with explicit options.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidChunkSize`] for a zero chunk size.
    pub fn try_new_with_options(
        columns: &[Column],
        options: EncoderOptions,
    ) -> Result<Self, EncodeError> {
        let framer = ChunkFramer::new(options.chunk_size)?;
        // 8-byte alignment, as pyarrow writes: smaller than Arrow's 64 default.
        let ipc_options = IpcWriteOptions::try_new(8, false, MetadataVersion::V5)
            .map_err(|e| EncodeError::Ipc(e.to_string()))?;
        Ok(Self {
            columns: columns.to_vec(),
            schema: arrow_schema(columns),
            options,
            framer,
            out: Vec::new(),
            ipc_options,
            generator: IpcDataGenerator::default(),
            tracker: DictionaryTracker::new(false),
            context: IpcWriteContext::default(),
            rows: 0,
        })
    }

    /// The Arrow schema batches are encoded with.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Checks `batch` against the table and appends it to the block.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Type`] when a column is missing, has the wrong type or
    /// holds a value that does not fit; [`EncodeError::Ipc`] if Arrow fails.
    /// On error nothing of `batch` has been added.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        let conformed;
        let batch = if self.options.check_values || batch.schema() != self.schema {
            conformed = conform_batch(&self.columns, batch, self.options.max_field_size)?;
            &conformed
        } else {
            batch
        };
        let (dictionaries, encoded) = self
            .generator
            .encode(
                batch,
                &mut self.tracker,
                &self.ipc_options,
                &mut self.context,
            )
            .map_err(|e| EncodeError::Ipc(e.to_string()))?;
        if !dictionaries.is_empty() {
            return Err(EncodeError::Ipc(
                "dictionary-encoded columns are not part of the Tunnel format".into(),
            ));
        }
        let sink = FramingSink {
            framer: &mut self.framer,
            out: &mut self.out,
        };
        write_message(sink, encoded, &self.ipc_options)
            .map_err(|e| EncodeError::Ipc(e.to_string()))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows_written(&self) -> u64 {
        self.rows
    }

    /// Payload (IPC) bytes written so far, before framing.
    pub fn payload_bytes(&self) -> u64 {
        self.framer.payload_len()
    }

    /// Framed bytes waiting in the buffer.
    pub fn buffered_len(&self) -> usize {
        self.out.len()
    }

    /// Takes the framed bytes produced so far (without the closing checksum).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Ends the block: the remaining framed bytes and the closing checksum.
    pub fn finish(mut self) -> Vec<u8> {
        self.framer.finish(&mut self.out);
        self.out
    }
}

/// Checks and strips the framing, incrementally.
#[derive(Clone, Debug, Default)]
pub struct Deframer {
    chunk_size: Option<(usize, ZeroShift)>,
    /// Input not yet consumed: a header or chunk cut between two pushes.
    buf: Vec<u8>,
    /// Input offset of the next byte not consumed.
    offset: u64,
    chunk_index: u64,
    payload_crc: u32,
}

impl Deframer {
    /// A deframer waiting for the chunk size header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds input bytes; appends payload whose chunk checksum is verified.
    ///
    /// # Errors
    ///
    /// [`DecodeError::InvalidChunkSize`], [`DecodeError::ChecksumMismatch`].
    pub fn push(&mut self, data: &[u8], payload: &mut Vec<u8>) -> Result<(), DecodeError> {
        // Whole chunks are read from `data` itself: only a piece cut
        // between two pushes is copied aside.
        if self.buf.is_empty() {
            let used = self.consume(data, payload)?;
            self.buf.extend_from_slice(&data[used..]);
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(data);
        let used = self.consume(&buf, payload)?;
        buf.drain(..used);
        self.buf = buf;
        Ok(())
    }

    /// Consumes the header and the whole chunks at the start of `input`;
    /// returns how many bytes it consumed.
    fn consume(&mut self, input: &[u8], payload: &mut Vec<u8>) -> Result<usize, DecodeError> {
        let mut pos = 0;
        if self.chunk_size.is_none() {
            if input.len() < 4 {
                return Ok(0);
            }
            let size = read_u32(&input[..4]);
            // A 4-byte body of 0 is an empty block; judged in `finish`.
            if input.len() > 4 && (size == 0 || size > MAX_CHUNK_SIZE) {
                return Err(DecodeError::InvalidChunkSize(size));
            }
            if size == 0 {
                return Ok(0);
            }
            self.chunk_size = Some((size as usize, ZeroShift::new(size as usize)));
            pos = 4;
            self.offset += 4;
        }
        let Some((size, shift)) = &self.chunk_size else {
            return Ok(pos);
        };
        let size = *size;
        payload.reserve(input.len() - pos);
        // The final piece holds fewer than size+4 bytes, so a run of size+4
        // bytes is always a full chunk and its checksum.
        while input.len() - pos >= size + 4 {
            let chunk = &input[pos..pos + size];
            let expected = read_u32(&input[pos + size..pos + size + 4]);
            let actual = crc32c::crc32c(chunk);
            if expected != actual {
                return Err(DecodeError::ChecksumMismatch {
                    scope: ChecksumScope::Chunk(self.chunk_index),
                    offset: self.offset + size as u64,
                    expected,
                    actual,
                });
            }
            self.payload_crc = shift.combine(self.payload_crc, actual);
            payload.extend_from_slice(chunk);
            self.chunk_index += 1;
            pos += size + 4;
            self.offset += (size + 4) as u64;
        }
        Ok(pos)
    }

    /// Ends the input: appends the last partial chunk after checking the
    /// payload checksum.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`] when the input ended early,
    /// [`DecodeError::ChecksumMismatch`] when the payload checksum is wrong.
    pub fn finish(self, payload: &mut Vec<u8>) -> Result<(), DecodeError> {
        if self.chunk_size.is_none() {
            return match self.buf.len() {
                4 if read_u32(&self.buf) == 0 => Ok(()),
                4 => Err(DecodeError::Truncated {
                    what: "Arrow block payload checksum",
                    offset: 4,
                    needed: 4,
                }),
                n => Err(DecodeError::Truncated {
                    what: "Arrow block chunk size header",
                    offset: n as u64,
                    needed: 4 - n as u64,
                }),
            };
        }
        let n = self.buf.len();
        if n < 4 {
            return Err(DecodeError::Truncated {
                what: "Arrow block payload checksum",
                offset: self.offset + n as u64,
                needed: 4 - n as u64,
            });
        }
        let (last, crc) = self.buf.split_at(n - 4);
        let expected = read_u32(crc);
        let actual = crc32c::crc32c_append(self.payload_crc, last);
        if expected != actual {
            return Err(DecodeError::ChecksumMismatch {
                scope: ChecksumScope::Payload,
                offset: self.offset + (n - 4) as u64,
                expected,
                actual,
            });
        }
        payload.extend_from_slice(last);
        Ok(())
    }
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Strips and checks the framing of a whole body, returning the payload.
///
/// # Errors
///
/// As [`Deframer::push`] and [`Deframer::finish`].
pub fn deframe(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut payload = Vec::with_capacity(body.len());
    let mut d = Deframer::new();
    d.push(body, &mut payload)?;
    d.finish(&mut payload)?;
    Ok(payload)
}

/// Decodes Arrow block bodies into `RecordBatch`es of a table's schema,
/// incrementally.
pub struct BlockDecoder {
    schema: SchemaRef,
    deframer: Deframer,
    ipc: StreamDecoder,
    payload: Vec<u8>,
    payload_seen: u64,
}

impl std::fmt::Debug for BlockDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockDecoder")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl BlockDecoder {
    /// A decoder for a table's data columns.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Ipc`] if the schema cannot be expressed in Arrow IPC.
    pub fn try_new(columns: &[Column]) -> Result<Self, DecodeError> {
        Self::try_new_with_schema(arrow_schema(columns))
    }

    /// A decoder for batches of an explicit Arrow schema (e.g. a column
    /// subset of a download).
    ///
    /// # Errors
    ///
    /// [`DecodeError::Ipc`] if the schema cannot be expressed in Arrow IPC.
    pub fn try_new_with_schema(schema: SchemaRef) -> Result<Self, DecodeError> {
        let ipc_err = |e: arrow_schema::ArrowError| DecodeError::Ipc(e.to_string());
        // The wire carries no schema message: make one and feed it first.
        let options = IpcWriteOptions::default();
        let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
            &schema,
            &mut DictionaryTracker::new(false),
            &options,
        );
        let mut schema_message = Vec::new();
        write_message(&mut schema_message, encoded, &options).map_err(ipc_err)?;
        let mut ipc = StreamDecoder::new();
        let mut buffer = Buffer::from_vec(schema_message);
        if ipc.decode(&mut buffer).map_err(ipc_err)?.is_some() || !buffer.is_empty() {
            return Err(DecodeError::Ipc("schema message did not decode".into()));
        }
        Ok(Self {
            schema,
            deframer: Deframer::new(),
            ipc,
            payload: Vec::new(),
            payload_seen: 0,
        })
    }

    /// The schema of the decoded batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Feeds body bytes; returns the batches whose bytes are complete and verified.
    ///
    /// # Errors
    ///
    /// Framing and checksum errors, and [`DecodeError::Ipc`] for a bad payload.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<RecordBatch>, DecodeError> {
        self.deframer.push(data, &mut self.payload)?;
        self.drain_payload()
    }

    /// Ends the body; returns the last batches.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`] if the body or an IPC message ended early,
    /// and the errors of [`push`](Self::push).
    pub fn finish(mut self) -> Result<Vec<RecordBatch>, DecodeError> {
        let deframer = std::mem::take(&mut self.deframer);
        deframer.finish(&mut self.payload)?;
        let batches = self.drain_payload()?;
        // An IPC message cut in the middle is a truncated body. (With no
        // payload at all the decoder still sits after the schema message.)
        if self.payload_seen == 0 {
            return Ok(batches);
        }
        self.ipc.finish().map_err(|_| DecodeError::Truncated {
            what: "Arrow IPC message",
            offset: self.payload_seen,
            needed: 1,
        })?;
        Ok(batches)
    }

    fn drain_payload(&mut self) -> Result<Vec<RecordBatch>, DecodeError> {
        let mut batches = Vec::new();
        if self.payload.is_empty() {
            return Ok(batches);
        }
        self.payload_seen += self.payload.len() as u64;
        let mut buffer = Buffer::from_vec(std::mem::take(&mut self.payload));
        while !buffer.is_empty() {
            match self.ipc.decode(&mut buffer) {
                Ok(Some(batch)) => batches.push(batch),
                Ok(None) => break,
                Err(e) => return Err(DecodeError::Ipc(e.to_string())),
            }
        }
        Ok(batches)
    }
}

/// Decodes a whole Arrow block body.
///
/// # Errors
///
/// As [`BlockDecoder::push`] and [`BlockDecoder::finish`].
pub fn decode_block(columns: &[Column], body: &[u8]) -> Result<Vec<RecordBatch>, DecodeError> {
    let mut decoder = BlockDecoder::try_new(columns)?;
    let mut batches = decoder.push(body)?;
    batches.extend(decoder.finish()?);
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::OdpsType;
    use arrow_array::builder::{Int64Builder, ListBuilder, MapBuilder, StringBuilder};
    use arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array,
        Int32Array, Int64Array, StringArray, StructArray, TimestampMillisecondArray,
        TimestampNanosecondArray,
    };
    use arrow_schema::{DataType, Field};
    use std::sync::Arc;

    #[test]
    fn a_zero_shift_combines_as_the_crc_of_the_concatenation() {
        let data: Vec<u8> = (0..200_003u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for n in [0, 1, 7, 64, 4096, 65_536, 100_000] {
            let shift = ZeroShift::new(n);
            for split in [0, 1, 1000, 99_999] {
                let (a, b) = (&data[..split], &data[split..split + n]);
                let want = crc32c::crc32c(&data[..split + n]);
                assert_eq!(
                    shift.combine(crc32c::crc32c(a), crc32c::crc32c(b)),
                    want,
                    "n {n}, split {split}"
                );
                assert_eq!(
                    crc32c::crc32c_combine(crc32c::crc32c(a), crc32c::crc32c(b), n),
                    want
                );
            }
        }
    }

    #[test]
    fn a_body_pushed_in_any_pieces_deframes_alike() {
        let columns = wide_columns();
        let batch = wide_batch(50, 7);
        let mut enc = BlockEncoder::try_new_with_options(
            &columns,
            EncoderOptions {
                chunk_size: 64,
                ..EncoderOptions::default()
            },
        )
        .unwrap();
        enc.write(&batch).unwrap();
        let body = enc.finish();
        let whole = deframe(&body).unwrap();
        for piece in [1, 3, 63, 64, 67, 68, 1000] {
            let mut d = Deframer::new();
            let mut payload = Vec::new();
            for p in body.chunks(piece) {
                d.push(p, &mut payload).unwrap();
            }
            d.finish(&mut payload).unwrap();
            assert_eq!(payload, whole, "pieces of {piece}");
        }
        // A flipped byte is caught at the same offset whatever the pieces.
        let mut bad = body;
        bad[4 + 10] ^= 1;
        let whole_err = deframe(&bad).unwrap_err().to_string();
        for piece in [1, 5, 70] {
            let mut d = Deframer::new();
            let mut payload = Vec::new();
            let err = bad
                .chunks(piece)
                .try_for_each(|p| d.push(p, &mut payload))
                .unwrap_err();
            assert_eq!(err.to_string(), whole_err);
        }
    }

    fn wide_columns() -> Vec<Column> {
        [
            ("id", "bigint"),
            ("i", "int"),
            ("d", "double"),
            ("b", "boolean"),
            ("s", "string"),
            ("bin", "binary"),
            ("day", "date"),
            ("dt", "datetime"),
            ("ts", "timestamp"),
            ("dec", "decimal(18,3)"),
            ("arr", "array<string>"),
            ("m", "map<string,bigint>"),
            ("st", "struct<x:int,y:string>"),
        ]
        .into_iter()
        .map(|(n, t)| Column::new(n, t.parse().unwrap()))
        .collect()
    }

    fn wide_batch(rows: usize, seed: i64) -> RecordBatch {
        let n = rows as i64;
        let ids: Vec<i64> = (0..n).map(|i| i * 7 + seed).collect();
        let mut arr = ListBuilder::new(StringBuilder::new());
        let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
        for i in 0..n {
            if i % 5 == 0 {
                arr.append_null();
                map.append(false).unwrap();
            } else {
                arr.append_value([Some(format!("a{i}")), None]);
                map.keys().append_value(format!("k{i}"));
                map.values().append_value(i);
                map.append(true).unwrap();
            }
        }
        let st = StructArray::from(vec![
            (
                Arc::new(Field::new("x", DataType::Int32, true)),
                Arc::new(Int32Array::from_iter((0..n).map(|i| Some(i as i32)))) as ArrayRef,
            ),
            (
                Arc::new(Field::new("y", DataType::Utf8, true)),
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| (i % 2 == 0).then_some("y")),
                )),
            ),
        ]);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(Int32Array::from_iter(
                (0..n).map(|i| (i % 3 != 0).then_some(i as i32)),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| i as f64 / 3.0),
            )),
            Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 2 == 0)))),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("row-{i}-ü")),
            )),
            Arc::new(BinaryArray::from_iter_values(
                (0..n).map(|i| vec![i as u8; 3]),
            )),
            Arc::new(Date32Array::from_iter_values(
                (0..n).map(|i| 19_000 + i as i32),
            )),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                (0..n).map(|i| 1_700_000_000_000 + i),
            )),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                (0..n).map(|i| 1_700_000_000_000_000_123 + i),
            )),
            Arc::new(
                Decimal128Array::from_iter_values((0..n).map(|i| i128::from(i) * 1001))
                    .with_precision_and_scale(18, 3)
                    .unwrap(),
            ),
            Arc::new(arr.finish()),
            Arc::new(map.finish()),
            Arc::new(st),
        ];
        let columns = wide_columns();
        let schema = arrow_schema(&columns);
        // Builders name map/list children their own way; conform fixes that.
        let raw = RecordBatch::try_new(
            Arc::new(arrow_schema::Schema::new(
                columns
                    .iter()
                    .zip(&cols)
                    .map(|(c, a)| Field::new(&c.name, a.data_type().clone(), true))
                    .collect::<Vec<_>>(),
            )),
            cols,
        )
        .unwrap();
        let out = conform_batch(&columns, &raw, DEFAULT_MAX_FIELD_SIZE).unwrap();
        assert_eq!(out.schema(), schema);
        out
    }

    #[test]
    fn round_trip_all_types_small_chunks() {
        let columns = wide_columns();
        let batches = [wide_batch(100, 0), wide_batch(37, 1000), wide_batch(1, 5)];
        for chunk_size in [1, 7, 64, 4096, DEFAULT_CHUNK_SIZE] {
            let mut enc = BlockEncoder::try_new_with_options(
                &columns,
                EncoderOptions {
                    chunk_size,
                    ..EncoderOptions::default()
                },
            )
            .unwrap();
            for b in &batches {
                enc.write(b).unwrap();
            }
            assert_eq!(enc.rows_written(), 138);
            let body = enc.finish();
            let decoded = decode_block(&columns, &body).unwrap();
            assert_eq!(decoded.len(), 3);
            for (d, b) in decoded.iter().zip(&batches) {
                assert_eq!(d, b);
            }
        }
    }

    #[test]
    fn incremental_decode_matches_whole() {
        let columns = wide_columns();
        let batch = wide_batch(500, 3);
        let mut enc = BlockEncoder::try_new_with_options(
            &columns,
            EncoderOptions {
                chunk_size: 1000,
                ..EncoderOptions::default()
            },
        )
        .unwrap();
        enc.write(&batch).unwrap();
        let mut body = enc.take_buffered();
        body.extend(enc.finish());
        let mut dec = BlockDecoder::try_new(&columns).unwrap();
        let mut got = Vec::new();
        for piece in body.chunks(333) {
            got.extend(dec.push(piece).unwrap());
        }
        got.extend(dec.finish().unwrap());
        assert_eq!(got, vec![batch]);
    }

    #[test]
    fn framing_layout_is_exact() {
        let mut framer = ChunkFramer::new(4).unwrap();
        let mut out = Vec::new();
        framer.push(b"abcdefghij", &mut out);
        framer.finish(&mut out);
        let mut expect = Vec::new();
        expect.extend(4u32.to_be_bytes());
        expect.extend(b"abcd");
        expect.extend(crc32c::crc32c(b"abcd").to_be_bytes());
        expect.extend(b"efgh");
        expect.extend(crc32c::crc32c(b"efgh").to_be_bytes());
        expect.extend(b"ij");
        expect.extend(crc32c::crc32c(b"abcdefghij").to_be_bytes());
        assert_eq!(out, expect);
        assert_eq!(deframe(&out).unwrap(), b"abcdefghij");
        // Exact multiple: the last piece is only the payload checksum.
        let mut framer = ChunkFramer::new(5).unwrap();
        let mut out = Vec::new();
        framer.push(b"abcdefghij", &mut out);
        framer.finish(&mut out);
        assert_eq!(out.len(), 4 + 2 * 9 + 4);
        assert_eq!(deframe(&out).unwrap(), b"abcdefghij");
    }

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn empty_block_is_just_a_zero_checksum() {
        let columns = vec![Column::new("id", OdpsType::Bigint)];
        let body = BlockEncoder::try_new(&columns).unwrap().finish();
        assert_eq!(body, [0, 0, 0, 0]);
        assert!(decode_block(&columns, &body).unwrap().is_empty());
    }

    #[test]
    fn corrupted_chunk_is_a_checksum_error() {
        let columns = wide_columns();
        let mut enc = BlockEncoder::try_new_with_options(
            &columns,
            EncoderOptions {
                chunk_size: 256,
                ..EncoderOptions::default()
            },
        )
        .unwrap();
        enc.write(&wide_batch(50, 0)).unwrap();
        let body = enc.finish();
        let mut bad = body.clone();
        bad[10] ^= 1;
        match decode_block(&columns, &bad) {
            Err(DecodeError::ChecksumMismatch {
                scope: ChecksumScope::Chunk(0),
                offset,
                ..
            }) => assert_eq!(offset, 4 + 256),
            other => panic!("{other:?}"),
        }
        // Damage in the last partial chunk is caught by the payload checksum.
        let mut bad = body.clone();
        let n = bad.len();
        bad[n - 5] ^= 1;
        assert!(matches!(
            decode_block(&columns, &bad),
            Err(DecodeError::ChecksumMismatch {
                scope: ChecksumScope::Payload,
                ..
            })
        ));
        // Damage in a chunk checksum itself.
        let mut bad = body;
        bad[4 + 256] ^= 0x80;
        assert!(matches!(
            decode_block(&columns, &bad),
            Err(DecodeError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn truncated_body_is_a_typed_error() {
        let columns = wide_columns();
        let mut enc = BlockEncoder::try_new_with_options(
            &columns,
            EncoderOptions {
                chunk_size: 300,
                ..EncoderOptions::default()
            },
        )
        .unwrap();
        enc.write(&wide_batch(20, 0)).unwrap();
        let body = enc.finish();
        for cut in [0, 2, 5, 100, 304, 308, body.len() - 1] {
            let err = decode_block(&columns, &body[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    DecodeError::Truncated { .. } | DecodeError::ChecksumMismatch { .. }
                ),
                "cut {cut}: {err:?}"
            );
        }
        // Cut exactly after a chunk checksum: framing is whole-looking up to
        // there, so the payload CRC or IPC message length catches it.
        let cut = 4 + 2 * 304;
        assert!(decode_block(&columns, &body[..cut]).is_err());
    }

    #[test]
    fn bad_chunk_size_is_rejected() {
        let mut body = 0u32.to_be_bytes().to_vec();
        body.extend([1, 2, 3, 4, 5]);
        assert_eq!(deframe(&body), Err(DecodeError::InvalidChunkSize(0)));
        assert!(ChunkFramer::new(0).is_err());
    }

    #[test]
    fn batch_not_fitting_table_is_refused_before_encoding() {
        let columns = vec![Column::new("v", OdpsType::Varchar(2))];
        let mut enc = BlockEncoder::try_new(&columns).unwrap();
        let b = RecordBatch::try_from_iter([(
            "v",
            Arc::new(StringArray::from(vec!["abc"])) as ArrayRef,
        )])
        .unwrap();
        assert!(matches!(enc.write(&b), Err(EncodeError::Type(_))));
        assert_eq!(enc.rows_written(), 0);
        assert_eq!(enc.finish(), [0, 0, 0, 0]);
    }
}
