//! The Tunnel's classic protobuf record format (the SDKs' record writer and
//! reader, and the default when `arrow` is not in the request).
//!
//! There is no `.proto` message: a stream is a flat run of protobuf fields.
//!
//! * A record is, for every non-null data column `i` (field number `i + 1`),
//!   a tag and the value; a null is an absent field. The record ends with
//!   field [`TUNNEL_END_RECORD`] (varint) carrying the record's CRC32C.
//! * The record CRC32C covers, per non-null column in order, the field number
//!   as 4-byte little-endian `i32` and then the value's "checksum bytes":
//!   1 byte for a boolean, 8-byte LE `i64` for integers, dates (days),
//!   datetimes (ms) and year-month intervals, 4/8-byte LE floats, raw bytes
//!   for text, binary and decimals (as text), and 8-byte seconds + 4-byte
//!   nanoseconds for timestamps and day-time intervals. Inside arrays, maps
//!   and structs only the leaf values count (not lengths or null flags).
//! * The stream ends with [`TUNNEL_META_COUNT`] (zigzag record count) and
//!   [`TUNNEL_META_CHECKSUM`] (CRC32C over every record CRC as 4-byte LE).
//!   A server may put its metrics (a length-delimited field, then
//!   [`TUNNEL_END_METRICS`] with their CRC) between those two.
//!
//! Value encodings: integers, dates and datetimes are zigzag varints; floats
//! and doubles fixed 32/64-bit LE; text, binary, JSON and decimals
//! length-prefixed bytes; timestamps and day-time intervals a zigzag `i64`
//! of seconds then a zigzag `i32` of nanoseconds, with no length prefix
//! (although the tag says length-delimited); arrays a varint count then, per
//! element, a null flag (varint bool) and the value; maps the keys as an
//! array then the values as an array; structs per field a null flag and the value.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{RecordBatch, StringArray};
//! use odps_tunnel::encode::proto::{RecordDecoder, RecordEncoder};
//! use odps_tunnel::types::{Column, OdpsType};
//!
//! let columns = vec![Column::new("name", OdpsType::String)];
//! let batch = RecordBatch::try_from_iter([("name", Arc::new(StringArray::from(vec![Some("a"), None])) as _)])?;
//! let mut encoder = RecordEncoder::try_new(&columns);
//! encoder.write(&batch)?;
//! let stream = encoder.finish();
//! let decoded = RecordDecoder::new(&columns).decode(&stream)?;
//! assert_eq!(decoded.batch, batch);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimestampMillisecondType, TimestampNanosecondType,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Decimal256Array,
    Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, ListArray, MapArray,
    RecordBatch, RecordBatchOptions, StringArray, StructArray, TimestampMillisecondArray,
    TimestampNanosecondArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer, i256};
use arrow_schema::{DataType, Fields};

use super::{ChecksumScope, DecodeError, EncodeError};
use crate::types::{
    Column, DEFAULT_MAX_FIELD_SIZE, OdpsType, TimestampForm, arrow_schema_in, conform_batch_in,
};

/// Field number closing a record (varint CRC32C of the record).
pub const TUNNEL_END_RECORD: u32 = 33_553_408;
/// Field number of the record count in the stream trailer (zigzag varint).
pub const TUNNEL_META_COUNT: u32 = 33_554_430;
/// Field number of the stream checksum in the trailer (varint).
pub const TUNNEL_META_CHECKSUM: u32 = 33_554_431;
/// Field number closing the server metrics (varint CRC32C of them).
pub const TUNNEL_END_METRICS: u32 = 33_554_176;

const WT_VARINT: u32 = 0;
const WT_FIXED64: u32 = 1;
const WT_LEN: u32 = 2;
const WT_FIXED32: u32 = 5;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A running CRC32C.
#[derive(Clone, Copy, Debug, Default)]
struct Crc(u32);

impl Crc {
    fn bytes(&mut self, b: &[u8]) {
        self.0 = crc32c::crc32c_append(self.0, b);
    }
    fn int(&mut self, v: i32) {
        self.bytes(&v.to_le_bytes());
    }
    fn long(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A `uint32` varint as pyodps's C writer puts it: through an `int32`, so a
/// value of 2^31 or more goes out sign-extended in 10 bytes. Protobuf readers
/// (pyodps, Java, ours) take both forms.
fn put_u32(out: &mut Vec<u8>, v: u32) {
    put_varint(out, i64::from(v as i32) as u64);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    put_varint(out, u64::from((field << 3) | wire_type));
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

/// Encodes `RecordBatch`es as a protobuf record stream, without I/O.
#[derive(Debug)]
pub struct RecordEncoder {
    columns: Vec<Column>,
    out: Vec<u8>,
    stream_crc: Crc,
    count: i64,
    max_field_size: usize,
}

impl RecordEncoder {
    /// An encoder for a table's data columns.
    pub fn try_new(columns: &[Column]) -> Self {
        Self {
            columns: columns.to_vec(),
            out: Vec::new(),
            stream_crc: Crc::default(),
            count: 0,
            max_field_size: DEFAULT_MAX_FIELD_SIZE,
        }
    }

    /// Sets the largest string/binary value accepted (the session's `MaxFieldSize`).
    pub fn with_max_field_size(mut self, bytes: usize) -> Self {
        self.max_field_size = bytes;
        self
    }

    /// Checks `batch` against the table and appends its rows as records.
    /// `timestamp` and `timestamp_ntz` columns may come in either
    /// [`TimestampForm`] or as a `Timestamp` of any unit: this format carries
    /// MaxCompute's whole range (see [`crate::types::conform_batch_in`]).
    ///
    /// # Errors
    ///
    /// [`EncodeError::Type`] when the batch does not fit the table; nothing
    /// of the batch is written then.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        let batch = conform_batch_in(
            &self.columns,
            batch,
            self.max_field_size,
            TimestampForm::SecNano,
        )?;
        for row in 0..batch.num_rows() {
            let mut crc = Crc::default();
            for (i, col) in self.columns.iter().enumerate() {
                let array = batch.column(i);
                if array.is_null(row) {
                    continue;
                }
                let field = i as u32 + 1;
                crc.int(field as i32);
                put_tag(&mut self.out, field, wire_type(&col.ty));
                encode_value(&col.ty, array.as_ref(), row, &mut self.out, &mut crc);
            }
            put_tag(&mut self.out, TUNNEL_END_RECORD, WT_VARINT);
            put_u32(&mut self.out, crc.0);
            self.stream_crc.int(crc.0 as i32);
            self.count += 1;
        }
        Ok(())
    }

    /// Records written so far.
    pub fn rows_written(&self) -> u64 {
        self.count as u64
    }

    /// Bytes waiting in the buffer.
    pub fn buffered_len(&self) -> usize {
        self.out.len()
    }

    /// Takes the bytes produced so far (without the trailer).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Ends the stream: the remaining bytes and the trailer.
    pub fn finish(mut self) -> Vec<u8> {
        put_tag(&mut self.out, TUNNEL_META_COUNT, WT_VARINT);
        put_varint(&mut self.out, zigzag64(self.count));
        put_tag(&mut self.out, TUNNEL_META_CHECKSUM, WT_VARINT);
        put_u32(&mut self.out, self.stream_crc.0);
        self.out
    }
}

fn wire_type(ty: &OdpsType) -> u32 {
    match ty {
        OdpsType::Float => WT_FIXED32,
        OdpsType::Double => WT_FIXED64,
        OdpsType::Bigint
        | OdpsType::Int
        | OdpsType::Smallint
        | OdpsType::Tinyint
        | OdpsType::Boolean
        | OdpsType::Date
        | OdpsType::Datetime
        | OdpsType::IntervalYearMonth => WT_VARINT,
        _ => WT_LEN,
    }
}

fn put_long(out: &mut Vec<u8>, crc: &mut Crc, v: i64) {
    crc.long(v);
    put_varint(out, zigzag64(v));
}

fn put_bytes(out: &mut Vec<u8>, crc: &mut Crc, b: &[u8]) {
    crc.bytes(b);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_sec_nano(out: &mut Vec<u8>, crc: &mut Crc, sec: i64, nano: i32) {
    crc.long(sec);
    put_varint(out, zigzag64(sec));
    crc.int(nano);
    put_varint(out, zigzag32(nano));
}

/// Encodes the non-null value at `row` (the array has `ty`'s Arrow type).
fn encode_value(ty: &OdpsType, array: &dyn Array, row: usize, out: &mut Vec<u8>, crc: &mut Crc) {
    match ty {
        OdpsType::Boolean => {
            let v = array.as_boolean().value(row);
            crc.bytes(&[u8::from(v)]);
            put_varint(out, u64::from(v));
        }
        OdpsType::Tinyint => put_long(out, crc, array.as_primitive::<Int8Type>().value(row).into()),
        OdpsType::Smallint => put_long(
            out,
            crc,
            array.as_primitive::<Int16Type>().value(row).into(),
        ),
        OdpsType::Int => put_long(
            out,
            crc,
            array.as_primitive::<Int32Type>().value(row).into(),
        ),
        OdpsType::Bigint | OdpsType::IntervalYearMonth => {
            put_long(out, crc, array.as_primitive::<Int64Type>().value(row))
        }
        OdpsType::Date => put_long(
            out,
            crc,
            array.as_primitive::<Date32Type>().value(row).into(),
        ),
        OdpsType::Datetime => put_long(
            out,
            crc,
            array.as_primitive::<TimestampMillisecondType>().value(row),
        ),
        OdpsType::Float => {
            let v = array.as_primitive::<Float32Type>().value(row).to_le_bytes();
            crc.bytes(&v);
            out.extend_from_slice(&v);
        }
        OdpsType::Double => {
            let v = array.as_primitive::<Float64Type>().value(row).to_le_bytes();
            crc.bytes(&v);
            out.extend_from_slice(&v);
        }
        OdpsType::String | OdpsType::Varchar(_) | OdpsType::Char(_) | OdpsType::Json => {
            put_bytes(out, crc, array.as_string::<i32>().value(row).as_bytes());
        }
        OdpsType::Binary => put_bytes(out, crc, array.as_binary::<i32>().value(row)),
        OdpsType::Decimal { .. } => {
            let (p, s) = ty.decimal_precision_scale().unwrap_or((38, 0));
            let digits = if p <= 38 {
                array
                    .as_primitive::<Decimal128Type>()
                    .value(row)
                    .to_string()
            } else {
                array
                    .as_primitive::<Decimal256Type>()
                    .value(row)
                    .to_string()
            };
            put_bytes(out, crc, format_decimal(&digits, s).as_bytes());
        }
        OdpsType::Timestamp | OdpsType::TimestampNtz => {
            let (sec, nano) = if let Some(s) = array.as_struct_opt() {
                // A top-level column, in `TimestampForm::SecNano`.
                (
                    s.column(0).as_primitive::<Int64Type>().value(row),
                    s.column(1).as_primitive::<Int32Type>().value(row),
                )
            } else {
                // Nested timestamps are nanoseconds.
                let ns = array.as_primitive::<TimestampNanosecondType>().value(row);
                (
                    ns.div_euclid(NANOS_PER_SEC),
                    ns.rem_euclid(NANOS_PER_SEC) as i32,
                )
            };
            put_sec_nano(out, crc, sec, nano);
        }
        OdpsType::IntervalDayTime => {
            let s = array.as_struct();
            let sec = s.column(0).as_primitive::<Int64Type>();
            let nano = s.column(1).as_primitive::<Int32Type>();
            let sec = if sec.is_null(row) { 0 } else { sec.value(row) };
            let nano = if nano.is_null(row) {
                0
            } else {
                nano.value(row)
            };
            put_sec_nano(out, crc, sec, nano);
        }
        OdpsType::Array(item) => {
            let list = array.as_list::<i32>();
            let (start, end) = offsets_of(list.value_offsets(), row);
            encode_elements(item, list.values().as_ref(), start, end, out, crc);
        }
        OdpsType::Map(key, value) => {
            let map = array.as_map();
            let (start, end) = offsets_of(map.value_offsets(), row);
            encode_elements(key, map.keys().as_ref(), start, end, out, crc);
            encode_elements(value, map.values().as_ref(), start, end, out, crc);
        }
        OdpsType::Struct(fields) => {
            let s = array.as_struct();
            for (field, child) in fields.iter().zip(s.columns()) {
                if child.is_null(row) {
                    put_varint(out, 1);
                } else {
                    put_varint(out, 0);
                    encode_value(&field.ty, child.as_ref(), row, out, crc);
                }
            }
        }
    }
}

fn offsets_of(offsets: &[i32], row: usize) -> (usize, usize) {
    (offsets[row] as usize, offsets[row + 1] as usize)
}

fn encode_elements(
    ty: &OdpsType,
    values: &dyn Array,
    start: usize,
    end: usize,
    out: &mut Vec<u8>,
    crc: &mut Crc,
) {
    put_varint(out, (end - start) as u64);
    for i in start..end {
        if values.is_null(i) {
            put_varint(out, 1);
        } else {
            put_varint(out, 0);
            encode_value(ty, values, i, out, crc);
        }
    }
}

/// Places the decimal point `scale` digits from the right of an integer's
/// digits: `("-1234", 2)` → `"-12.34"`, `("5", 3)` → `"0.005"`.
fn format_decimal(digits: &str, scale: u8) -> String {
    let (neg, abs) = match digits.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, digits),
    };
    let scale = scale as usize;
    let mut s = String::with_capacity(abs.len() + 3);
    if neg {
        s.push('-');
    }
    if scale == 0 {
        s.push_str(abs);
    } else if abs.len() > scale {
        s.push_str(&abs[..abs.len() - scale]);
        s.push('.');
        s.push_str(&abs[abs.len() - scale..]);
    } else {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', scale - abs.len()));
        s.push_str(abs);
    }
    s
}

/// Parses decimal text (`-12.5`, `1E+3`, `.5`) into the integer of its value
/// times 10^scale, rounding half away from zero. Returns the digit string
/// (with sign) or `None` when the text is not a number.
fn scale_decimal_text(text: &str, scale: u8) -> Option<String> {
    let text = text.trim();
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    // value = digits * 10^(exp - frac_len); we want digits * 10^(exp - frac_len + scale)
    let shift = exp - frac_part.len() as i32 + i32::from(scale);
    if shift >= 0 {
        if shift > 400 {
            return None;
        }
        digits.extend(std::iter::repeat_n(b'0', shift as usize));
    } else {
        let cut = (-shift) as usize;
        let round_up = if cut <= digits.len() {
            let dropped = digits.split_off(digits.len() - cut);
            dropped.first().is_some_and(|d| *d >= b'5')
        } else {
            digits.clear();
            false
        };
        if round_up {
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, b'1');
                    break;
                }
                i -= 1;
                if digits[i] == b'9' {
                    digits[i] = b'0';
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
    }
    let start = digits
        .iter()
        .position(|d| *d != b'0')
        .unwrap_or(digits.len());
    let mut s = String::from(if neg && start < digits.len() { "-" } else { "" });
    if start == digits.len() {
        s.push('0');
    } else {
        s.push_str(std::str::from_utf8(&digits[start..]).ok()?);
    }
    Some(s)
}

/// What [`RecordDecoder::decode`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedRecords {
    /// All records as one batch of the table's Arrow schema.
    pub batch: RecordBatch,
    /// Server metrics JSON, when the stream carried them.
    pub metrics: Option<String>,
}

/// Decodes a protobuf record stream into Arrow, checking every checksum.
#[derive(Clone, Debug)]
pub struct RecordDecoder {
    columns: Vec<Column>,
    require_trailer: bool,
    timestamps: TimestampForm,
}

/// One decoded value, before it becomes part of an Arrow array.
#[derive(Clone, Debug)]
enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Float(f32),
    Double(f64),
    Bytes(Vec<u8>),
    SecNano(i64, i32),
    List(Vec<Value>),
    Map(Vec<Value>, Vec<Value>),
    Struct(Vec<Value>),
}

struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::Protobuf {
            offset: self.pos as u64,
            reason: reason.into(),
        }
    }

    fn truncated(&self, what: &'static str, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            what,
            offset: self.data.len() as u64,
            needed: needed as u64,
        }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(self.truncated("protobuf varint", 1));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn sint64(&mut self) -> Result<i64, DecodeError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn sint32(&mut self) -> Result<i32, DecodeError> {
        let v = self.varint()? as u32;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    fn uint32(&mut self) -> Result<u32, DecodeError> {
        let v = self.varint()?;
        // Accept the sign-extended 10-byte form some writers use (see `put_u32`).
        u32::try_from(v)
            .or_else(|_| i32::try_from(v as i64).map(|x| x as u32))
            .map_err(|_| self.err("uint32 out of range"))
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.varint()? != 0)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(self.truncated(what, n - (self.data.len() - self.pos)));
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.err("length out of range"))?;
        self.take(n, "protobuf length-delimited value")
    }

    fn tag(&mut self) -> Result<(u32, u32), DecodeError> {
        let t = self.varint()?;
        let t = u32::try_from(t).map_err(|_| self.err("tag out of range"))?;
        Ok((t >> 3, t & 7))
    }
}

impl RecordDecoder {
    /// A decoder for a table's data columns. The stream trailer is required.
    pub fn new(columns: &[Column]) -> Self {
        Self {
            columns: columns.to_vec(),
            require_trailer: true,
            timestamps: TimestampForm::Nanos,
        }
    }

    /// Accept a stream that ends after a whole record without the trailer.
    pub fn allow_missing_trailer(mut self) -> Self {
        self.require_trailer = false;
        self
    }

    /// Builds top-level `timestamp` and `timestamp_ntz` columns in `form`.
    /// The default, [`TimestampForm::Nanos`], fails on a value beyond 64-bit
    /// nanoseconds (before 1677-09-21 or after 2262-04-11);
    /// [`TimestampForm::SecNano`] holds every value the format carries.
    pub fn with_timestamp_form(mut self, form: TimestampForm) -> Self {
        self.timestamps = form;
        self
    }

    /// Decodes a whole stream.
    ///
    /// # Errors
    ///
    /// [`DecodeError::ChecksumMismatch`] for a wrong record, metrics or stream
    /// CRC, [`DecodeError::Truncated`] for a stream that ends early,
    /// [`DecodeError::CountMismatch`] for a wrong count, and
    /// [`DecodeError::Protobuf`] for unknown fields, bad wire types, values
    /// out of range or invalid text.
    pub fn decode(&self, data: &[u8]) -> Result<DecodedRecords, DecodeError> {
        let mut input = Input { data, pos: 0 };
        let n = self.columns.len();
        let mut columns: Vec<Vec<Value>> = vec![Vec::new(); n];
        let mut record: Vec<Value> = vec![Value::Null; n];
        let mut crc = Crc::default();
        let mut stream_crc = Crc::default();
        let mut count: i64 = 0;
        let mut in_record = false;
        let mut metrics = None;
        loop {
            if input.pos == data.len() {
                if in_record || self.require_trailer {
                    return Err(input.truncated("protobuf record stream trailer", 1));
                }
                break;
            }
            let tag_pos = input.pos;
            let (field, wt) = input.tag()?;
            match field {
                0 => continue,
                TUNNEL_END_RECORD => {
                    let expected = input.uint32()?;
                    if expected != crc.0 {
                        return Err(DecodeError::ChecksumMismatch {
                            scope: ChecksumScope::Record(count as u64),
                            offset: tag_pos as u64,
                            expected,
                            actual: crc.0,
                        });
                    }
                    stream_crc.int(crc.0 as i32);
                    crc = Crc::default();
                    for (col, v) in columns.iter_mut().zip(record.iter_mut()) {
                        col.push(std::mem::replace(v, Value::Null));
                    }
                    count += 1;
                    in_record = false;
                }
                TUNNEL_META_COUNT => {
                    if in_record {
                        return Err(input.err("trailer inside a record"));
                    }
                    let expected = input.sint64()?;
                    if expected != count {
                        return Err(DecodeError::CountMismatch {
                            expected,
                            actual: count,
                        });
                    }
                    let (mut next, next_wt) = input.tag()?;
                    if next != TUNNEL_META_CHECKSUM {
                        if next_wt != WT_LEN {
                            return Err(input.err(format!("unexpected field {next} in trailer")));
                        }
                        let mut mcrc = Crc::default();
                        mcrc.int(next as i32);
                        let text = input.bytes()?;
                        mcrc.bytes(text);
                        metrics = Some(String::from_utf8_lossy(text).into_owned());
                        let (end, _) = input.tag()?;
                        if end != TUNNEL_END_METRICS {
                            return Err(
                                input.err(format!("expected end of metrics, got field {end}"))
                            );
                        }
                        let at = input.pos;
                        let expected = input.uint32()?;
                        if expected != mcrc.0 {
                            return Err(DecodeError::ChecksumMismatch {
                                scope: ChecksumScope::Metrics,
                                offset: at as u64,
                                expected,
                                actual: mcrc.0,
                            });
                        }
                        next = input.tag()?.0;
                    }
                    if next != TUNNEL_META_CHECKSUM {
                        return Err(
                            input.err(format!("expected stream checksum, got field {next}"))
                        );
                    }
                    let at = input.pos;
                    let expected = input.uint32()?;
                    if expected != stream_crc.0 {
                        return Err(DecodeError::ChecksumMismatch {
                            scope: ChecksumScope::Stream,
                            offset: at as u64,
                            expected,
                            actual: stream_crc.0,
                        });
                    }
                    break;
                }
                f if f >= 1 && (f as usize) <= n => {
                    let col = &self.columns[f as usize - 1];
                    if wt != wire_type(&col.ty) {
                        return Err(input.err(format!(
                            "column {} ({}) has wire type {wt}",
                            col.name, col.ty
                        )));
                    }
                    crc.int(f as i32);
                    record[f as usize - 1] = decode_value(&col.ty, &mut input, &mut crc)?;
                    in_record = true;
                }
                f => return Err(input.err(format!("unknown field number {f}"))),
            }
        }
        if input.pos != data.len() {
            return Err(input.err("bytes after the stream trailer"));
        }
        let arrays = self
            .columns
            .iter()
            .zip(columns)
            .map(|(c, values)| {
                let built = if c.ty.is_timestamp() && self.timestamps == TimestampForm::SecNano {
                    build_sec_nano(values, "a timestamp")
                } else {
                    build_array(&c.ty, values)
                };
                built.map_err(|r| input.err(format!("column {}: {r}", c.name)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(count as usize));
        let batch = RecordBatch::try_new_with_options(
            arrow_schema_in(&self.columns, self.timestamps),
            arrays,
            &options,
        )
        .map_err(|e| input.err(e.to_string()))?;
        Ok(DecodedRecords { batch, metrics })
    }
}

fn decode_value(ty: &OdpsType, input: &mut Input<'_>, crc: &mut Crc) -> Result<Value, DecodeError> {
    Ok(match ty {
        OdpsType::Boolean => {
            let v = input.bool()?;
            crc.bytes(&[u8::from(v)]);
            Value::Bool(v)
        }
        OdpsType::Tinyint
        | OdpsType::Smallint
        | OdpsType::Int
        | OdpsType::Bigint
        | OdpsType::IntervalYearMonth
        | OdpsType::Date
        | OdpsType::Datetime => {
            let v = input.sint64()?;
            crc.long(v);
            Value::Long(v)
        }
        OdpsType::Float => {
            let b = input.take(4, "float")?;
            crc.bytes(b);
            Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        OdpsType::Double => {
            let b = input.take(8, "double")?;
            crc.bytes(b);
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::Double(f64::from_le_bytes(a))
        }
        OdpsType::String
        | OdpsType::Varchar(_)
        | OdpsType::Char(_)
        | OdpsType::Json
        | OdpsType::Binary
        | OdpsType::Decimal { .. } => {
            let b = input.bytes()?;
            crc.bytes(b);
            Value::Bytes(b.to_vec())
        }
        OdpsType::Timestamp | OdpsType::TimestampNtz | OdpsType::IntervalDayTime => {
            let sec = input.sint64()?;
            crc.long(sec);
            let nano = input.sint32()?;
            crc.int(nano);
            Value::SecNano(sec, nano)
        }
        OdpsType::Array(item) => Value::List(decode_elements(item, input, crc)?),
        OdpsType::Map(k, v) => {
            let keys = decode_elements(k, input, crc)?;
            let values = decode_elements(v, input, crc)?;
            if keys.len() != values.len() {
                return Err(input.err("map has different numbers of keys and values"));
            }
            Value::Map(keys, values)
        }
        OdpsType::Struct(fields) => {
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                out.push(if input.bool()? {
                    Value::Null
                } else {
                    decode_value(&f.ty, input, crc)?
                });
            }
            Value::Struct(out)
        }
    })
}

fn decode_elements(
    ty: &OdpsType,
    input: &mut Input<'_>,
    crc: &mut Crc,
) -> Result<Vec<Value>, DecodeError> {
    let n = input.uint32()? as usize;
    // Each element takes at least one byte: a hostile count cannot make us allocate.
    if n > input.data.len() - input.pos {
        return Err(input.truncated(
            "protobuf array elements",
            n - (input.data.len() - input.pos),
        ));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(if input.bool()? {
            Value::Null
        } else {
            decode_value(ty, input, crc)?
        });
    }
    Ok(out)
}

fn nulls_of(values: &[Value]) -> Option<NullBuffer> {
    values
        .iter()
        .any(|v| matches!(v, Value::Null))
        .then(|| NullBuffer::from_iter(values.iter().map(|v| !matches!(v, Value::Null))))
}

fn longs(values: &[Value]) -> Result<Vec<Option<i64>>, String> {
    values
        .iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Long(x) => Ok(Some(*x)),
            other => Err(format!("expected an integer, got {other:?}")),
        })
        .collect()
}

fn narrow<T: TryFrom<i64>>(values: &[Value], what: &str) -> Result<Vec<Option<T>>, String> {
    longs(values)?
        .into_iter()
        .map(|v| {
            v.map(|x| T::try_from(x).map_err(|_| format!("{x} does not fit {what}")))
                .transpose()
        })
        .collect()
}

fn texts(values: &[Value]) -> Result<Vec<Option<&[u8]>>, String> {
    values
        .iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b.as_slice())),
            other => Err(format!("expected bytes, got {other:?}")),
        })
        .collect()
}

/// A seconds+nanoseconds struct column (a timestamp in
/// [`TimestampForm::SecNano`], or an `interval_day_time`) from decoded
/// values; `what` names the kind in errors.
fn build_sec_nano(values: Vec<Value>, what: &str) -> Result<ArrayRef, String> {
    let DataType::Struct(fields) = crate::types::sec_nano_type() else {
        return Err("the seconds+nanoseconds type is a struct".into());
    };
    let mut secs = Vec::with_capacity(values.len());
    let mut nanos = Vec::with_capacity(values.len());
    for v in &values {
        match v {
            Value::Null => {
                secs.push(None);
                nanos.push(None);
            }
            Value::SecNano(s, n) => {
                secs.push(Some(*s));
                nanos.push(Some(*n));
            }
            other => return Err(format!("expected {what}, got {other:?}")),
        }
    }
    Ok(Arc::new(
        StructArray::try_new(
            fields,
            vec![
                Arc::new(Int64Array::from(secs)),
                Arc::new(Int32Array::from(nanos)),
            ],
            nulls_of(&values),
        )
        .map_err(|e| e.to_string())?,
    ))
}

/// Builds the Arrow array of `ty` from decoded values.
fn build_array(ty: &OdpsType, values: Vec<Value>) -> Result<ArrayRef, String> {
    let arrow_type = ty.to_arrow();
    Ok(match ty {
        OdpsType::Boolean => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Bool(b) => Ok(Some(*b)),
                    other => Err(format!("expected a boolean, got {other:?}")),
                })
                .collect::<Result<BooleanArray, String>>()?,
        ),
        OdpsType::Tinyint => Arc::new(Int8Array::from(narrow::<i8>(&values, "tinyint")?)),
        OdpsType::Smallint => Arc::new(Int16Array::from(narrow::<i16>(&values, "smallint")?)),
        OdpsType::Int => Arc::new(Int32Array::from(narrow::<i32>(&values, "int")?)),
        OdpsType::Bigint | OdpsType::IntervalYearMonth => {
            Arc::new(Int64Array::from(longs(&values)?))
        }
        OdpsType::Date => Arc::new(Date32Array::from(narrow::<i32>(&values, "date")?)),
        OdpsType::Datetime => Arc::new(TimestampMillisecondArray::from(longs(&values)?)),
        OdpsType::Float => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Float(f) => Ok(Some(*f)),
                    other => Err(format!("expected a float, got {other:?}")),
                })
                .collect::<Result<Float32Array, String>>()?,
        ),
        OdpsType::Double => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Double(f) => Ok(Some(*f)),
                    other => Err(format!("expected a double, got {other:?}")),
                })
                .collect::<Result<Float64Array, String>>()?,
        ),
        OdpsType::String | OdpsType::Varchar(_) | OdpsType::Char(_) | OdpsType::Json => {
            let t = texts(&values)?
                .into_iter()
                .map(|b| b.map(std::str::from_utf8).transpose())
                .collect::<Result<StringArray, _>>()
                .map_err(|e| format!("invalid UTF-8: {e}"))?;
            Arc::new(t)
        }
        OdpsType::Binary => Arc::new(BinaryArray::from(texts(&values)?)),
        OdpsType::Decimal { .. } => {
            let (p, s) = ty.decimal_precision_scale().unwrap_or((38, 0));
            let digits = texts(&values)?
                .into_iter()
                .map(|b| {
                    b.map(|b| {
                        std::str::from_utf8(b)
                            .ok()
                            .and_then(|t| scale_decimal_text(t, s))
                            .ok_or_else(|| {
                                format!("invalid decimal {:?}", String::from_utf8_lossy(b))
                            })
                    })
                    .transpose()
                })
                .collect::<Result<Vec<_>, _>>()?;
            if p <= 38 {
                let v = digits
                    .into_iter()
                    .map(|d| {
                        d.map(|d| {
                            d.parse::<i128>()
                                .map_err(|_| format!("{d} does not fit decimal({p},{s})"))
                        })
                        .transpose()
                    })
                    .collect::<Result<Decimal128Array, _>>()?;
                let v = v
                    .with_precision_and_scale(p, s as i8)
                    .map_err(|e| e.to_string())?;
                v.validate_decimal_precision(p).map_err(|e| e.to_string())?;
                Arc::new(v)
            } else {
                let v = digits
                    .into_iter()
                    .map(|d| {
                        d.map(|d| {
                            i256::from_string(&d)
                                .ok_or_else(|| format!("{d} does not fit decimal({p},{s})"))
                        })
                        .transpose()
                    })
                    .collect::<Result<Decimal256Array, _>>()?;
                let v = v
                    .with_precision_and_scale(p, s as i8)
                    .map_err(|e| e.to_string())?;
                v.validate_decimal_precision(p).map_err(|e| e.to_string())?;
                Arc::new(v)
            }
        }
        OdpsType::Timestamp | OdpsType::TimestampNtz => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::SecNano(s, n) => s
                        .checked_mul(NANOS_PER_SEC)
                        .and_then(|x| x.checked_add(i64::from(*n)))
                        .map(Some)
                        .ok_or_else(|| {
                            format!("timestamp {s}s {n}ns is outside the nanosecond range")
                        }),
                    other => Err(format!("expected a timestamp, got {other:?}")),
                })
                .collect::<Result<TimestampNanosecondArray, String>>()?,
        ),
        OdpsType::IntervalDayTime => build_sec_nano(values, "an interval")?,
        OdpsType::Array(item) => {
            let DataType::List(field) = arrow_type else {
                return Err("array maps to a list".into());
            };
            let nulls = nulls_of(&values);
            let mut lengths = Vec::with_capacity(values.len());
            let mut children = Vec::new();
            for v in values {
                match v {
                    Value::Null => lengths.push(0),
                    Value::List(items) => {
                        lengths.push(items.len());
                        children.extend(items);
                    }
                    other => return Err(format!("expected an array, got {other:?}")),
                }
            }
            let child = build_array(item, children)?;
            Arc::new(
                ListArray::try_new(field, OffsetBuffer::from_lengths(lengths), child, nulls)
                    .map_err(|e| e.to_string())?,
            )
        }
        OdpsType::Map(key, value) => {
            let DataType::Map(entries_field, sorted) = arrow_type else {
                return Err("map maps to an Arrow map".into());
            };
            let DataType::Struct(kv_fields) = entries_field.data_type().clone() else {
                return Err("map entries are a struct".into());
            };
            let nulls = nulls_of(&values);
            let mut lengths = Vec::with_capacity(values.len());
            let (mut keys, mut vals) = (Vec::new(), Vec::new());
            for v in values {
                match v {
                    Value::Null => lengths.push(0),
                    Value::Map(k, v) => {
                        if k.iter().any(|x| matches!(x, Value::Null)) {
                            return Err("null map key".into());
                        }
                        lengths.push(k.len());
                        keys.extend(k);
                        vals.extend(v);
                    }
                    other => return Err(format!("expected a map, got {other:?}")),
                }
            }
            let entries = StructArray::try_new(
                kv_fields,
                vec![build_array(key, keys)?, build_array(value, vals)?],
                None,
            )
            .map_err(|e| e.to_string())?;
            Arc::new(
                MapArray::try_new(
                    entries_field,
                    OffsetBuffer::from_lengths(lengths),
                    entries,
                    nulls,
                    sorted,
                )
                .map_err(|e| e.to_string())?,
            )
        }
        OdpsType::Struct(fields) => {
            let DataType::Struct(arrow_fields) = arrow_type else {
                return Err("struct maps to a struct".into());
            };
            let nulls = nulls_of(&values);
            let mut per_field: Vec<Vec<Value>> =
                vec![Vec::with_capacity(values.len()); fields.len()];
            for v in values {
                match v {
                    Value::Null => per_field.iter_mut().for_each(|f| f.push(Value::Null)),
                    Value::Struct(items) if items.len() == fields.len() => {
                        for (f, item) in per_field.iter_mut().zip(items) {
                            f.push(item);
                        }
                    }
                    other => return Err(format!("expected a struct, got {other:?}")),
                }
            }
            let children = fields
                .iter()
                .zip(per_field)
                .map(|(f, vals)| build_array(&f.ty, vals))
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(struct_array(arrow_fields, children, nulls)?)
        }
    })
}

fn struct_array(
    fields: Fields,
    children: Vec<ArrayRef>,
    nulls: Option<NullBuffer>,
) -> Result<StructArray, String> {
    StructArray::try_new(fields, children, nulls).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::conform_batch;
    use arrow_array::builder::{Int64Builder, ListBuilder, MapBuilder, StringBuilder};
    use arrow_schema::Field;

    fn all_columns() -> Vec<Column> {
        [
            ("b", "boolean"),
            ("t", "tinyint"),
            ("sm", "smallint"),
            ("i", "int"),
            ("big", "bigint"),
            ("f", "float"),
            ("d", "double"),
            ("dec", "decimal(20,4)"),
            ("bigdec", "decimal"),
            ("s", "string"),
            ("vc", "varchar(10)"),
            ("ch", "char(4)"),
            ("j", "json"),
            ("bin", "binary"),
            ("day", "date"),
            ("dt", "datetime"),
            ("ts", "timestamp"),
            ("tsn", "timestamp_ntz"),
            ("idt", "interval_day_time"),
            ("iym", "interval_year_month"),
            ("arr", "array<bigint>"),
            ("m", "map<string,bigint>"),
            ("st", "struct<x:int,y:array<string>>"),
        ]
        .into_iter()
        .map(|(n, t)| Column::new(n, t.parse().unwrap()))
        .collect()
    }

    fn all_batch() -> RecordBatch {
        let cols = all_columns();
        let n = 4;
        let mut arr = ListBuilder::new(Int64Builder::new());
        arr.append_value([Some(1), None, Some(-3)]);
        arr.append_null();
        arr.append_value(Vec::<Option<i64>>::new());
        arr.append_value([Some(i64::MAX)]);
        let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
        map.keys().append_value("a");
        map.values().append_null();
        map.append(true).unwrap();
        map.append(false).unwrap();
        map.keys().append_value("b");
        map.values().append_value(2);
        map.keys().append_value("c");
        map.values().append_value(3);
        map.append(true).unwrap();
        map.append(true).unwrap();
        let mut ys = ListBuilder::new(StringBuilder::new());
        ys.append_value([Some("p"), None]);
        ys.append_null();
        ys.append_value([Some("q")]);
        ys.append_value(Vec::<Option<&str>>::new());
        let ys = ys.finish();
        let st = StructArray::try_new(
            vec![
                Field::new("x", DataType::Int32, true),
                Field::new("y", ys.data_type().clone(), true),
            ]
            .into(),
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None, Some(3), Some(4)])),
                Arc::new(ys),
            ],
            Some(NullBuffer::from(vec![true, true, false, true])),
        )
        .unwrap();
        let idt = StructArray::try_new(
            vec![
                Field::new("sec", DataType::Int64, true),
                Field::new("nano", DataType::Int32, true),
            ]
            .into(),
            vec![
                Arc::new(Int64Array::from(vec![
                    Some(86_400),
                    Some(-5),
                    None,
                    Some(0),
                ])),
                Arc::new(Int32Array::from(vec![
                    Some(1),
                    Some(999_999_999),
                    None,
                    Some(0),
                ])),
            ],
            Some(NullBuffer::from(vec![true, true, false, true])),
        )
        .unwrap();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
            ])),
            Arc::new(Int8Array::from(vec![Some(-128), Some(127), None, Some(0)])),
            Arc::new(Int16Array::from(vec![Some(-32768), Some(1), None, Some(0)])),
            Arc::new(Int32Array::from(vec![
                Some(i32::MIN),
                Some(i32::MAX),
                None,
                Some(-1),
            ])),
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(i64::MAX),
                None,
                Some(0),
            ])),
            Arc::new(Float32Array::from(vec![
                Some(1.5),
                Some(f32::NAN),
                None,
                Some(-0.0),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(1e300),
                Some(-2.25),
                None,
                Some(0.1),
            ])),
            Arc::new(
                Decimal128Array::from(vec![Some(12_345_678), Some(-1), None, Some(0)])
                    .with_precision_and_scale(20, 4)
                    .unwrap(),
            ),
            Arc::new(
                Decimal256Array::from(vec![
                    Some(
                        i256::from_string("123456789012345678901234567890123456789012345678")
                            .unwrap(),
                    ),
                    Some(i256::from_i128(-5)),
                    None,
                    Some(i256::ZERO),
                ])
                .with_precision_and_scale(54, 18)
                .unwrap(),
            ),
            Arc::new(StringArray::from(vec![
                Some("héllo"),
                Some(""),
                None,
                Some("x"),
            ])),
            Arc::new(StringArray::from(vec![
                Some("abcdefghij"),
                Some("ü"),
                None,
                Some(""),
            ])),
            Arc::new(StringArray::from(vec![
                Some("ab"),
                Some("abcd"),
                None,
                Some(""),
            ])),
            Arc::new(StringArray::from(vec![
                Some("{\"a\":[1,2]}"),
                Some("null"),
                None,
                Some("3"),
            ])),
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x00\xff"[..]),
                Some(b""),
                None,
                Some(b"z"),
            ])),
            Arc::new(Date32Array::from(vec![
                Some(-719_162),
                Some(2_932_896),
                None,
                Some(0),
            ])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(-1),
                Some(1_700_000_000_123),
                None,
                Some(0),
            ])),
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(-1),
                Some(1_700_000_000_123_456_789),
                None,
                Some(0),
            ])),
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(5),
                Some(-1_000_000_001),
                None,
                Some(0),
            ])),
            Arc::new(idt),
            Arc::new(Int64Array::from(vec![Some(13), Some(-1), None, Some(0)])),
            Arc::new(arr.finish()),
            Arc::new(map.finish()),
            Arc::new(st),
        ];
        let raw = RecordBatch::try_new(
            Arc::new(arrow_schema::Schema::new(
                cols.iter()
                    .zip(&arrays)
                    .map(|(c, a)| Field::new(&c.name, a.data_type().clone(), true))
                    .collect::<Vec<_>>(),
            )),
            arrays,
        )
        .unwrap();
        assert_eq!(raw.num_rows(), n);
        conform_batch(&cols, &raw, DEFAULT_MAX_FIELD_SIZE).unwrap()
    }

    #[test]
    fn timestamps_beyond_nanoseconds_round_trip_as_seconds_and_nanoseconds() {
        let cols = vec![
            Column::new("ts", OdpsType::Timestamp),
            Column::new("arr", "array<timestamp>".parse().unwrap()),
        ];
        // 9999-12-31 23:59:59.999999999 as seconds and nanoseconds; a nested
        // timestamp in nanoseconds.
        let st = crate::types::conform_batch_in(
            &cols,
            &RecordBatch::try_from_iter([
                (
                    "ts",
                    Arc::new(arrow_array::TimestampSecondArray::from(vec![
                        Some(253_402_300_799),
                        None,
                    ])) as ArrayRef,
                ),
                ("arr", {
                    let mut b =
                        ListBuilder::new(arrow_array::builder::TimestampNanosecondBuilder::new());
                    b.append_value([Some(-5)]);
                    b.append_null();
                    Arc::new(b.finish()) as ArrayRef
                }),
            ])
            .unwrap(),
            DEFAULT_MAX_FIELD_SIZE,
            TimestampForm::SecNano,
        )
        .unwrap();
        let mut enc = RecordEncoder::try_new(&cols);
        enc.write(&st).unwrap();
        let stream = enc.finish();
        let err = RecordDecoder::new(&cols).decode(&stream).unwrap_err();
        assert!(err.to_string().contains("nanosecond range"), "{err}");
        let got = RecordDecoder::new(&cols)
            .with_timestamp_form(TimestampForm::SecNano)
            .decode(&stream)
            .unwrap()
            .batch;
        assert_eq!(got, st);
    }

    #[test]
    fn round_trip_every_type() {
        let cols = all_columns();
        let batch = all_batch();
        let mut enc = RecordEncoder::try_new(&cols);
        enc.write(&batch).unwrap();
        enc.write(&batch.slice(1, 2)).unwrap();
        assert_eq!(enc.rows_written(), 6);
        let stream = enc.finish();
        let got = RecordDecoder::new(&cols).decode(&stream).unwrap();
        let want = arrow_select_concat(&[batch.clone(), batch.slice(1, 2)]);
        // NaN != NaN, so compare the float column bitwise and the rest directly.
        for (i, c) in cols.iter().enumerate() {
            if c.name == "f" {
                let a = got.batch.column(i).as_primitive::<Float32Type>();
                let b = want.column(i).as_primitive::<Float32Type>();
                assert_eq!(a.nulls(), b.nulls());
                for r in 0..a.len() {
                    assert_eq!(a.value(r).to_bits(), b.value(r).to_bits());
                }
            } else {
                assert_eq!(
                    got.batch.column(i).as_ref(),
                    want.column(i).as_ref(),
                    "{}",
                    c.name
                );
            }
        }
        assert!(got.metrics.is_none());
    }

    fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
        // Test-only concat by re-encoding rows through Arrow IPC would hide bugs;
        // build it by slicing values instead.
        let schema = batches[0].schema();
        let cols = (0..schema.fields().len())
            .map(|i| {
                let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
                concat(&parts)
            })
            .collect();
        RecordBatch::try_new(schema, cols).unwrap()
    }

    fn concat(parts: &[&dyn Array]) -> ArrayRef {
        let datas: Vec<_> = parts.iter().map(|a| a.to_data()).collect();
        let refs: Vec<_> = datas.iter().collect();
        let mut m = arrow_data::transform::MutableArrayData::new(refs, true, 0);
        for (i, d) in datas.iter().enumerate() {
            m.try_extend(i, 0, d.len()).unwrap();
        }
        arrow_array::make_array(m.freeze())
    }

    #[test]
    fn known_bytes_for_a_simple_record() {
        // One record: bigint 1 in column 1, string "a" in column 2.
        let cols = vec![
            Column::new("id", OdpsType::Bigint),
            Column::new("s", OdpsType::String),
        ];
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("s", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ])
        .unwrap();
        let mut enc = RecordEncoder::try_new(&cols);
        enc.write(&batch).unwrap();
        let stream = enc.finish();
        let mut crc = Crc::default();
        crc.int(1);
        crc.long(1);
        crc.int(2);
        crc.bytes(b"a");
        let mut want = vec![0x08, 0x02, 0x12, 0x01, b'a'];
        put_tag(&mut want, TUNNEL_END_RECORD, 0);
        put_u32(&mut want, crc.0);
        let mut sc = Crc::default();
        sc.int(crc.0 as i32);
        put_tag(&mut want, TUNNEL_META_COUNT, 0);
        put_varint(&mut want, 2);
        put_tag(&mut want, TUNNEL_META_CHECKSUM, 0);
        put_u32(&mut want, sc.0);
        assert_eq!(stream, want);
    }

    fn sample_stream() -> (Vec<Column>, Vec<u8>) {
        let cols = all_columns();
        let mut enc = RecordEncoder::try_new(&cols);
        enc.write(&all_batch()).unwrap();
        (cols, enc.finish())
    }

    #[test]
    fn corrupted_record_is_a_checksum_error() {
        let (cols, stream) = sample_stream();
        // Flip a bit inside the string "héllo" (found by search, so the
        // stream stays well-formed and only the checksum can notice).
        let at = stream
            .windows(5)
            .position(|w| w == "héllo".as_bytes()[..5].as_ref())
            .unwrap();
        let mut bad = stream;
        bad[at + 1] ^= 0x01;
        assert!(matches!(
            RecordDecoder::new(&cols).decode(&bad),
            Err(DecodeError::ChecksumMismatch {
                scope: ChecksumScope::Record(0),
                ..
            })
        ));
    }

    #[test]
    fn truncated_stream_is_a_typed_error() {
        let (cols, stream) = sample_stream();
        for cut in [1, 10, stream.len() / 2, stream.len() - 1] {
            let err = RecordDecoder::new(&cols)
                .decode(&stream[..cut])
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    DecodeError::Truncated { .. } | DecodeError::Protobuf { .. }
                ),
                "cut {cut}: {err:?}"
            );
        }
        assert!(matches!(
            RecordDecoder::new(&cols).decode(&[]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn wrong_count_and_stream_checksum() {
        let cols = vec![Column::new("id", OdpsType::Bigint)];
        let mut enc = RecordEncoder::try_new(&cols);
        enc.write(
            &RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(vec![7])) as ArrayRef)])
                .unwrap(),
        )
        .unwrap();
        let good = enc.finish();
        let mut meta = Vec::new();
        put_tag(&mut meta, TUNNEL_META_COUNT, 0);
        let pos = good
            .windows(meta.len())
            .rposition(|w| w == meta.as_slice())
            .unwrap();
        let mut bad = good.clone();
        bad[pos + meta.len()] = 4; // zigzag 2
        assert_eq!(
            RecordDecoder::new(&cols).decode(&bad),
            Err(DecodeError::CountMismatch {
                expected: 2,
                actual: 1
            })
        );
        let mut bad = good;
        let n = bad.len();
        bad[n - 2] ^= 0x01;
        assert!(matches!(
            RecordDecoder::new(&cols).decode(&bad),
            Err(DecodeError::ChecksumMismatch {
                scope: ChecksumScope::Stream,
                ..
            })
        ));
    }

    #[test]
    fn metrics_between_count_and_checksum_are_read() {
        let cols = vec![Column::new("id", OdpsType::Bigint)];
        let enc = RecordEncoder::try_new(&cols);
        let empty = enc.finish();
        // Rebuild: count, metrics field, end-metrics, checksum.
        let mut s = Vec::new();
        put_tag(&mut s, TUNNEL_META_COUNT, 0);
        put_varint(&mut s, 0);
        let field = 33_554_000u32;
        put_tag(&mut s, field, WT_LEN);
        let text = br#"{"a":1}"#;
        put_varint(&mut s, text.len() as u64);
        s.extend_from_slice(text);
        let mut m = Crc::default();
        m.int(field as i32);
        m.bytes(text);
        put_tag(&mut s, TUNNEL_END_METRICS, 0);
        put_varint(&mut s, u64::from(m.0));
        put_tag(&mut s, TUNNEL_META_CHECKSUM, 0);
        put_varint(&mut s, 0);
        let got = RecordDecoder::new(&cols).decode(&s).unwrap();
        assert_eq!(got.metrics.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(got.batch.num_rows(), 0);
        assert_eq!(
            RecordDecoder::new(&cols)
                .decode(&empty)
                .unwrap()
                .batch
                .num_rows(),
            0
        );
    }

    #[test]
    fn decimal_text_scaling() {
        assert_eq!(scale_decimal_text("12.345", 2).as_deref(), Some("1235"));
        assert_eq!(scale_decimal_text("-12.344", 2).as_deref(), Some("-1234"));
        assert_eq!(scale_decimal_text("1.5E+3", 0).as_deref(), Some("1500"));
        assert_eq!(scale_decimal_text(".5", 1).as_deref(), Some("5"));
        assert_eq!(scale_decimal_text("0.00", 4).as_deref(), Some("0"));
        assert_eq!(scale_decimal_text("9.99", 1).as_deref(), Some("100"));
        assert_eq!(scale_decimal_text("abc", 1), None);
        assert_eq!(scale_decimal_text("", 1), None);
        assert_eq!(format_decimal("-1234", 2), "-12.34");
        assert_eq!(format_decimal("5", 3), "0.005");
        assert_eq!(format_decimal("0", 0), "0");
    }

    #[test]
    fn out_of_range_values_from_the_wire_are_errors() {
        let cols = vec![Column::new("t", OdpsType::Tinyint)];
        let wide = vec![Column::new("t", OdpsType::Bigint)];
        let mut enc = RecordEncoder::try_new(&wide);
        enc.write(
            &RecordBatch::try_from_iter([("t", Arc::new(Int64Array::from(vec![300])) as ArrayRef)])
                .unwrap(),
        )
        .unwrap();
        let s = enc.finish();
        assert!(matches!(
            RecordDecoder::new(&cols).decode(&s),
            Err(DecodeError::Protobuf { .. })
        ));
    }
}
