//! Result values (text or binary protocol) straight into Arrow builders: one builder per
//! column, no per-value heap objects on the way.
//!
//! The mapping (shared in spirit with the binlog side, see the architecture
//! notes): integers keep width and signedness; DECIMAL(p ≤ 38) → Decimal128,
//! wider → Utf8; FLOAT/DOUBLE → Float32/Float64; BIT → UInt64; YEAR →
//! UInt16; DATE → Date32; TIME → Duration(µs) (it spans ±838 h); DATETIME →
//! Timestamp(µs) without zone (wall clock); TIMESTAMP → Timestamp(µs, "UTC")
//! (the snapshot session runs with `time_zone = '+00:00'`); character types,
//! ENUM, SET and JSON → Utf8; binary strings, BLOBs, GEOMETRY → Binary.
//! Zero dates (`0000-00-00`) and other invalid dates become NULL.

use crate::binary_row::BinaryCell;
use crate::error::{Error, Result};
use crate::schema::{ColumnSchema, ColumnType};
use arrow_array::builder::{
    BinaryBuilder, Date32Builder, Decimal128Builder, DurationMicrosecondBuilder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder,
    TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{Array, ArrayRef, StringArray};
use arrow_schema::{DataType, Field, TimeUnit};
use binlog_parser::calendar::days_from_civil;
use std::sync::Arc;

/// The Arrow type of a column.
pub fn arrow_type(col: &ColumnSchema) -> DataType {
    let u = col.unsigned;
    match &col.column_type {
        ColumnType::TinyInt => {
            if u {
                DataType::UInt8
            } else {
                DataType::Int8
            }
        }
        ColumnType::SmallInt => {
            if u {
                DataType::UInt16
            } else {
                DataType::Int16
            }
        }
        ColumnType::MediumInt | ColumnType::Int => {
            if u {
                DataType::UInt32
            } else {
                DataType::Int32
            }
        }
        ColumnType::BigInt => {
            if u {
                DataType::UInt64
            } else {
                DataType::Int64
            }
        }
        ColumnType::Decimal { precision, scale } if *precision <= 38 => {
            DataType::Decimal128(*precision, i8::try_from(*scale).unwrap_or(0))
        }
        ColumnType::Decimal { .. } => DataType::Utf8,
        ColumnType::Float => DataType::Float32,
        ColumnType::Double => DataType::Float64,
        ColumnType::Bit { .. } => DataType::UInt64,
        ColumnType::Year => DataType::UInt16,
        ColumnType::Date => DataType::Date32,
        ColumnType::Time { .. } => DataType::Duration(TimeUnit::Microsecond),
        ColumnType::DateTime { .. } => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::Timestamp { .. } => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        ColumnType::Char { .. } | ColumnType::VarChar { .. } | ColumnType::Text { .. } => {
            if col.charset.is_none() || col.charset.as_deref() == Some("binary") {
                DataType::Binary
            } else {
                DataType::Utf8
            }
        }
        ColumnType::Enum(_) | ColumnType::Set(_) | ColumnType::Json => DataType::Utf8,
        ColumnType::Binary { .. }
        | ColumnType::VarBinary { .. }
        | ColumnType::Blob { .. }
        | ColumnType::Geometry(_) => DataType::Binary,
        ColumnType::Other(_) => {
            if col.charset.is_some() {
                DataType::Utf8
            } else {
                DataType::Binary
            }
        }
    }
}

/// The Arrow field of a column.
pub fn arrow_field(col: &ColumnSchema) -> Field {
    Field::new(&col.name, arrow_type(col), col.nullable)
}

/// One column's builder.
#[derive(Debug)]
pub(crate) enum ColumnBuilder {
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    Bit(UInt64Builder),
    Dec(Decimal128Builder, u8),
    F32(Float32Builder),
    F64(Float64Builder),
    Date(Date32Builder),
    Time(DurationMicrosecondBuilder),
    Ts(TimestampMicrosecondBuilder),
    /// UTF-8 text, collected as bytes and validated once per batch.
    Utf8(BinaryBuilder),
    Bin(BinaryBuilder),
}

impl ColumnBuilder {
    /// A builder for `data_type` with room for `rows` values.
    pub(crate) fn new(data_type: &DataType, rows: usize) -> Result<Self> {
        Ok(match data_type {
            DataType::Int8 => Self::I8(Int8Builder::with_capacity(rows)),
            DataType::Int16 => Self::I16(Int16Builder::with_capacity(rows)),
            DataType::Int32 => Self::I32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => Self::I64(Int64Builder::with_capacity(rows)),
            DataType::UInt8 => Self::U8(UInt8Builder::with_capacity(rows)),
            DataType::UInt16 => Self::U16(UInt16Builder::with_capacity(rows)),
            DataType::UInt32 => Self::U32(UInt32Builder::with_capacity(rows)),
            DataType::UInt64 => Self::U64(UInt64Builder::with_capacity(rows)),
            DataType::Decimal128(p, s) => Self::Dec(
                Decimal128Builder::with_capacity(rows).with_precision_and_scale(*p, *s)?,
                u8::try_from(*s).unwrap_or(0),
            ),
            DataType::Float32 => Self::F32(Float32Builder::with_capacity(rows)),
            DataType::Float64 => Self::F64(Float64Builder::with_capacity(rows)),
            DataType::Date32 => Self::Date(Date32Builder::with_capacity(rows)),
            DataType::Duration(TimeUnit::Microsecond) => {
                Self::Time(DurationMicrosecondBuilder::with_capacity(rows))
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => Self::Ts(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone_opt(tz.clone()),
            ),
            DataType::Utf8 => Self::Utf8(BinaryBuilder::with_capacity(rows, rows * 16)),
            DataType::Binary => Self::Bin(BinaryBuilder::with_capacity(rows, rows * 16)),
            other => return Err(Error::Unexpected(format!("no builder for {other}"))),
        })
    }

    /// The BIT variant (raw big-endian bytes on the wire, not digits).
    pub(crate) fn for_column(col: &ColumnSchema, rows: usize) -> Result<Self> {
        if matches!(col.column_type, ColumnType::Bit { .. }) {
            return Ok(Self::Bit(UInt64Builder::with_capacity(rows)));
        }
        Self::new(&arrow_type(col), rows)
    }

    /// Appends one text-protocol cell (`None` = NULL).
    #[inline]
    pub(crate) fn append(&mut self, cell: Option<&[u8]>) -> std::result::Result<(), &'static str> {
        let Some(v) = cell else {
            self.append_null();
            return Ok(());
        };
        match self {
            Self::I8(b) => b.append_value(i8::try_from(parse_i64(v)?).map_err(|_| "out of range")?),
            Self::I16(b) => {
                b.append_value(i16::try_from(parse_i64(v)?).map_err(|_| "out of range")?)
            }
            Self::I32(b) => {
                b.append_value(i32::try_from(parse_i64(v)?).map_err(|_| "out of range")?)
            }
            Self::I64(b) => b.append_value(parse_i64(v)?),
            Self::U8(b) => b.append_value(u8::try_from(parse_u64(v)?).map_err(|_| "out of range")?),
            Self::U16(b) => {
                b.append_value(u16::try_from(parse_u64(v)?).map_err(|_| "out of range")?)
            }
            Self::U32(b) => {
                b.append_value(u32::try_from(parse_u64(v)?).map_err(|_| "out of range")?)
            }
            Self::U64(b) => b.append_value(parse_u64(v)?),
            Self::Bit(b) => {
                if v.len() > 8 {
                    return Err("BIT wider than 64 bits");
                }
                b.append_value(v.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x)));
            }
            Self::Dec(b, scale) => b.append_value(parse_decimal(v, *scale)?),
            Self::F32(b) => b.append_value(parse_float(v)? as f32),
            Self::F64(b) => b.append_value(parse_float(v)?),
            Self::Date(b) => match parse_date(v)? {
                Some(d) => b.append_value(d),
                None => b.append_null(),
            },
            Self::Time(b) => b.append_value(parse_time(v)?),
            Self::Ts(b) => match parse_datetime(v)? {
                Some(t) => b.append_value(t),
                None => b.append_null(),
            },
            Self::Utf8(b) => b.append_value(v),
            Self::Bin(b) => b.append_value(v),
        }
        Ok(())
    }

    /// Appends one binary-protocol value (`None` = NULL); see
    /// [`crate::binary_row`]. Zero and invalid dates become NULL, as in
    /// [`ColumnBuilder::append`].
    #[inline]
    pub(crate) fn append_binary(
        &mut self,
        cell: Option<BinaryCell<'_>>,
    ) -> std::result::Result<(), &'static str> {
        let Some(v) = cell else {
            self.append_null();
            return Ok(());
        };
        match (self, v) {
            (Self::I8(b), v) => b.append_value(narrow(v)?),
            (Self::I16(b), v) => b.append_value(narrow(v)?),
            (Self::I32(b), v) => b.append_value(narrow(v)?),
            (Self::I64(b), v) => b.append_value(narrow(v)?),
            (Self::U8(b), v) => b.append_value(narrow(v)?),
            (Self::U16(b), v) => b.append_value(narrow(v)?),
            (Self::U32(b), v) => b.append_value(narrow(v)?),
            (Self::U64(b), v) => b.append_value(narrow(v)?),
            (Self::F32(b), BinaryCell::Float(f)) => b.append_value(f),
            (Self::F64(b), BinaryCell::Double(f)) => b.append_value(f),
            (Self::F64(b), BinaryCell::Float(f)) => b.append_value(f64::from(f)),
            (Self::Date(b), BinaryCell::DateTime(p)) => {
                match civil_days(u32::from(p.year), u32::from(p.month), u32::from(p.day)) {
                    Some(d) => b.append_value(d),
                    None => b.append_null(),
                }
            }
            (Self::Ts(b), BinaryCell::DateTime(p)) => {
                match civil_days(u32::from(p.year), u32::from(p.month), u32::from(p.day)) {
                    Some(days) => b.append_value(day_micros(
                        days,
                        u32::from(p.hour),
                        u32::from(p.minute),
                        u32::from(p.second),
                        i64::from(p.micros),
                    )),
                    None => b.append_null(),
                }
            }
            (Self::Time(b), BinaryCell::Time(t)) => b.append_value(t.total_micros()),
            // BIT, DECIMAL digits and every string travel as bytes, laid
            // out as in the text protocol.
            (this, BinaryCell::Bytes(bytes)) => return this.append(Some(bytes)),
            _ => return Err("unexpected binary value for this column type"),
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            Self::I8(b) => b.append_null(),
            Self::I16(b) => b.append_null(),
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::U8(b) => b.append_null(),
            Self::U16(b) => b.append_null(),
            Self::U32(b) => b.append_null(),
            Self::U64(b) | Self::Bit(b) => b.append_null(),
            Self::Dec(b, _) => b.append_null(),
            Self::F32(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Ts(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Bin(b) => b.append_null(),
        }
    }

    /// The built array; the builder starts over with room for `rows`
    /// values (and as many text bytes as this batch had), so the next
    /// batch does not grow its buffers from nothing.
    ///
    /// # Errors
    /// A text column holding bytes that are not UTF-8 (its first such value).
    pub(crate) fn finish(&mut self, rows: usize) -> std::result::Result<ArrayRef, String> {
        macro_rules! primitive {
            ($b:expr, $t:ty) => {{
                let a = $b.finish();
                *$b = <$t>::with_capacity(rows).with_data_type(a.data_type().clone());
                Arc::new(a) as ArrayRef
            }};
        }
        Ok(match self {
            Self::I8(b) => primitive!(b, Int8Builder),
            Self::I16(b) => primitive!(b, Int16Builder),
            Self::I32(b) => primitive!(b, Int32Builder),
            Self::I64(b) => primitive!(b, Int64Builder),
            Self::U8(b) => primitive!(b, UInt8Builder),
            Self::U16(b) => primitive!(b, UInt16Builder),
            Self::U32(b) => primitive!(b, UInt32Builder),
            Self::U64(b) | Self::Bit(b) => primitive!(b, UInt64Builder),
            Self::Dec(b, _) => primitive!(b, Decimal128Builder),
            Self::F32(b) => primitive!(b, Float32Builder),
            Self::F64(b) => primitive!(b, Float64Builder),
            Self::Date(b) => primitive!(b, Date32Builder),
            Self::Time(b) => primitive!(b, DurationMicrosecondBuilder),
            Self::Ts(b) => primitive!(b, TimestampMicrosecondBuilder),
            Self::Utf8(b) => {
                let a = b.finish();
                *b = BinaryBuilder::with_capacity(rows, a.value_data().len());
                // One validation of the whole buffer (and of the value
                // boundaries) is much cheaper than one call per value.
                match StringArray::try_from_binary(a.clone()) {
                    Ok(text) => Arc::new(text),
                    Err(_) => {
                        // Where, not what: row values stay out of errors.
                        let (row, len) = a
                            .iter()
                            .enumerate()
                            .find_map(|(i, v)| {
                                v.filter(|v| std::str::from_utf8(v).is_err())
                                    .map(|v| (i, v.len()))
                            })
                            .unwrap_or_default();
                        return Err(format!(
                            "not UTF-8 (row {row} of the batch, a value of {len} bytes)"
                        ));
                    }
                }
            }
            Self::Bin(b) => {
                let a = b.finish();
                *b = BinaryBuilder::with_capacity(rows, a.value_data().len());
                Arc::new(a)
            }
        })
    }
}

type ParseResult<T> = std::result::Result<T, &'static str>;

/// A binary integer into a narrower (or differently signed) column.
#[inline]
fn narrow<T: TryFrom<i64> + TryFrom<u64>>(v: BinaryCell<'_>) -> ParseResult<T> {
    match v {
        BinaryCell::Int(n) => T::try_from(n).map_err(|_| "out of range"),
        BinaryCell::UInt(n) => T::try_from(n).map_err(|_| "out of range"),
        _ => Err("an integer column sent a non-integer value"),
    }
}

#[inline]
fn parse_u64(v: &[u8]) -> ParseResult<u64> {
    if v.is_empty() {
        return Err("empty number");
    }
    let mut n: u64 = 0;
    for &c in v {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Err("not a number");
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or("out of range")?;
    }
    Ok(n)
}

#[inline]
fn parse_i64(v: &[u8]) -> ParseResult<i64> {
    match v.split_first() {
        Some((b'-', rest)) => {
            let n = parse_u64(rest)?;
            if n == 1 << 63 {
                Ok(i64::MIN)
            } else {
                i64::try_from(n).map(|n| -n).map_err(|_| "out of range")
            }
        }
        _ => i64::try_from(parse_u64(v)?).map_err(|_| "out of range"),
    }
}

fn parse_float(v: &[u8]) -> ParseResult<f64> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or("not a float")
}

/// `-123.45` at `scale` → unscaled i128 (extra digits truncated, missing ones padded).
fn parse_decimal(v: &[u8], scale: u8) -> ParseResult<i128> {
    let (neg, digits) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, v),
    };
    let mut n: i128 = 0;
    let mut frac: i32 = -1;
    for &c in digits {
        if c == b'.' {
            if frac >= 0 {
                return Err("two decimal points");
            }
            frac = 0;
            continue;
        }
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Err("not a decimal");
        }
        if frac >= 0 {
            if frac >= i32::from(scale) {
                continue;
            }
            frac += 1;
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(i128::from(d)))
            .ok_or("decimal out of range")?;
    }
    for _ in frac.max(0)..i32::from(scale) {
        n = n.checked_mul(10).ok_or("decimal out of range")?;
    }
    Ok(if neg { -n } else { n })
}

#[inline]
fn digits(v: &[u8]) -> ParseResult<u32> {
    let mut n = 0u32;
    for &c in v {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Err("bad date/time digit");
        }
        n = n * 10 + u32::from(d);
    }
    Ok(n)
}

/// `YYYY-MM-DD` → days; `None` for zero or invalid dates.
fn parse_date(v: &[u8]) -> ParseResult<Option<i32>> {
    if v.len() < 10 || v[4] != b'-' || v[7] != b'-' {
        return Err("bad DATE");
    }
    Ok(civil_days(
        digits(&v[..4])?,
        digits(&v[5..7])?,
        digits(&v[8..10])?,
    ))
}

/// Days since the epoch of a calendar date; `None` for zero or invalid
/// dates (which MySQL keeps under a lax `sql_mode`).
fn civil_days(y: u32, m: u32, d: u32) -> Option<i32> {
    if m == 0 || d == 0 || m > 12 || d > 31 {
        return None;
    }
    i32::try_from(days_from_civil(i64::from(y), m, d)).ok()
}

/// Microseconds since the epoch of a day and a wall-clock time on it.
fn day_micros(days: i32, hour: u32, minute: u32, second: u32, micros: i64) -> i64 {
    let secs = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    (i64::from(days) * 86_400 + secs) * 1_000_000 + micros
}

/// Fraction digits after a `.` as microseconds.
fn parse_micros(v: &[u8]) -> ParseResult<i64> {
    let Some((b'.', f)) = v.split_first() else {
        return Ok(0);
    };
    let f = &f[..f.len().min(6)];
    let mut n = i64::from(digits(f)?);
    for _ in f.len()..6 {
        n *= 10;
    }
    Ok(n)
}

/// `YYYY-MM-DD hh:mm:ss[.ffffff]` → µs since the epoch; `None` for zero dates.
fn parse_datetime(v: &[u8]) -> ParseResult<Option<i64>> {
    if v.len() < 19 || v[10] != b' ' || v[13] != b':' || v[16] != b':' {
        return Err("bad DATETIME");
    }
    let Some(days) = parse_date(&v[..10])? else {
        return Ok(None);
    };
    Ok(Some(day_micros(
        days,
        digits(&v[11..13])?,
        digits(&v[14..16])?,
        digits(&v[17..19])?,
        parse_micros(&v[19..])?,
    )))
}

/// `[-]hhh:mm:ss[.ffffff]` → signed µs.
fn parse_time(v: &[u8]) -> ParseResult<i64> {
    let (neg, v) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, v),
    };
    let c1 = v.iter().position(|&c| c == b':').ok_or("bad TIME")?;
    if v.len() < c1 + 6 || v[c1 + 3] != b':' {
        return Err("bad TIME");
    }
    let h = i64::from(digits(&v[..c1])?);
    let m = i64::from(digits(&v[c1 + 1..c1 + 3])?);
    let s = i64::from(digits(&v[c1 + 4..c1 + 6])?);
    let us = ((h * 60 + m) * 60 + s) * 1_000_000 + parse_micros(&v[c1 + 6..])?;
    Ok(if neg { -us } else { us })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_u64(b"18446744073709551615"), Ok(u64::MAX));
        assert!(parse_u64(b"18446744073709551616").is_err());
        assert_eq!(parse_decimal(b"-123.45", 2), Ok(-12345));
        assert_eq!(parse_decimal(b"7", 3), Ok(7000));
        assert_eq!(parse_decimal(b"0.5", 1), Ok(5));
    }

    #[test]
    fn temporals() {
        assert_eq!(parse_date(b"1970-01-02"), Ok(Some(1)));
        assert_eq!(parse_date(b"0000-00-00"), Ok(None));
        assert_eq!(parse_date(b"2000-03-01"), Ok(Some(11_017)));
        assert_eq!(
            parse_datetime(b"1970-01-01 00:00:01.5"),
            Ok(Some(1_500_000))
        );
        assert_eq!(
            parse_time(b"-838:59:59.000001"),
            Ok(-(838 * 3600 + 59 * 60 + 59) * 1_000_000 - 1)
        );
        assert_eq!(parse_time(b"01:00:00"), Ok(3_600_000_000));
    }
}
