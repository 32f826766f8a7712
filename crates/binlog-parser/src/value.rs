//! Row-image values: one [`Value`] per column, borrowing from the event
//! bytes, plus (re-exported here) the small typed structs for decimals and
//! temporal values.
//!
//! The decoder here is the hot loop of the crate: hand-written, safe,
//! bounds-checked slice reads (no nom), no allocation.

use crate::column::{Column, ColumnType};
use crate::json::{Json, JsonDiff};

// The scalar types live below both this module and JSON (which holds
// decimals and temporals too); these are their public paths.
pub use crate::decimal::{Decimal, decimal_size};
pub use crate::temporal::{Date, DateTime, Time, Timestamp};

/// One column value of a row image.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// Signed integer (TINYINT … BIGINT), sign-extended.
    Int(i64),
    /// Unsigned integer (column flagged unsigned).
    UInt(u64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL, exact.
    Decimal(Decimal<'a>),
    /// YEAR (0 for the zero year).
    Year(u16),
    /// DATE.
    Date(Date),
    /// TIME / TIME2.
    Time(Time),
    /// DATETIME / DATETIME2.
    DateTime(DateTime),
    /// TIMESTAMP / TIMESTAMP2 (UTC).
    Timestamp(Timestamp),
    /// Character data of a column whose charset is known and not binary.
    String(&'a [u8]),
    /// Binary data, or character data whose charset is unknown.
    Bytes(&'a [u8]),
    /// ENUM index (1-based; 0 = the empty error value).
    Enum(u16),
    /// SET bitmask (bit i = i-th member).
    Set(u64),
    /// BIT value, right-aligned.
    Bit(u64),
    /// MySQL binary JSON (lazy).
    Json(Json<'a>),
    /// Partial JSON update: a diff to apply to the before image's document.
    JsonDiff(JsonDiff<'a>),
    /// GEOMETRY: SRID (4 bytes LE) then WKB.
    Geometry(&'a [u8]),
    /// VECTOR: little-endian f32 values.
    Vector(&'a [u8]),
    /// MariaDB COMPRESSED column: call [`Value::decompress`].
    Compressed(&'a [u8]),
}

impl<'a> Value<'a> {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Bytes of a string-like value (String, Bytes, Geometry, Vector).
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Value::String(b) | Value::Bytes(b) | Value::Geometry(b) | Value::Vector(b) => Some(b),
            _ => None,
        }
    }

    /// Integer value widened to i128 (Int, UInt, Year, Enum, Set, Bit).
    pub fn as_i128(&self) -> Option<i128> {
        match *self {
            Value::Int(v) => Some(i128::from(v)),
            Value::UInt(v) | Value::Set(v) | Value::Bit(v) => Some(i128::from(v)),
            Value::Year(v) | Value::Enum(v) => Some(i128::from(v)),
            _ => None,
        }
    }

    /// Decompresses a MariaDB COMPRESSED column value (allocates).
    ///
    /// # Errors
    /// A message if the header or the zlib stream is corrupt.
    pub fn decompress(&self) -> Result<Vec<u8>, String> {
        let Value::Compressed(data) = *self else {
            return Err("not a compressed value".to_owned());
        };
        let Some((&hdr, rest)) = data.split_first() else {
            return Ok(Vec::new());
        };
        if hdr == 0 {
            return Ok(rest.to_vec());
        }
        let n = usize::from(hdr & 0x07);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(format!("bad compressed column header {hdr:#04x}"));
        }
        let len = rest[..n].iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
        // bit 3 set = raw deflate without zlib header.
        crate::compression::zlib_exact(&rest[n..], len, hdr & 0x08 == 0)
    }
}

// ---- hot-loop readers -------------------------------------------------------

const EOF: &str = "row image ends inside a value";

#[inline(always)]
fn get<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], &'static str> {
    let end = pos.checked_add(n).ok_or(EOF)?;
    let s = data.get(*pos..end).ok_or(EOF)?;
    *pos = end;
    Ok(s)
}

#[inline(always)]
fn le_uint(b: &[u8]) -> u64 {
    let mut v = 0u64;
    for (k, &x) in b.iter().enumerate().take(8) {
        v |= u64::from(x) << (8 * k);
    }
    v
}

#[inline(always)]
fn be_uint(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0u64, |a, &x| a << 8 | u64::from(x))
}

#[inline(always)]
fn fixed<const N: usize>(data: &[u8], pos: &mut usize) -> Result<[u8; N], &'static str> {
    let end = pos.checked_add(N).ok_or(EOF)?;
    let s: [u8; N] = data
        .get(*pos..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(EOF)?;
    *pos = end;
    Ok(s)
}

#[inline(always)]
fn length_prefixed<'a>(
    data: &'a [u8],
    pos: &mut usize,
    len_bytes: u8,
) -> Result<&'a [u8], &'static str> {
    let n = match len_bytes {
        1 => usize::from(fixed::<1>(data, pos)?[0]),
        2 => usize::from(u16::from_le_bytes(fixed::<2>(data, pos)?)),
        3 => le_uint(get(data, pos, 3)?) as usize,
        4 => u32::from_le_bytes(fixed::<4>(data, pos)?) as usize,
        _ => return Err("invalid length-prefix width in table map metadata"),
    };
    get(data, pos, n)
}

fn frac_micros(data: &[u8], pos: &mut usize, fsp: u8) -> Result<u32, &'static str> {
    Ok(match fsp {
        0 => 0,
        1 | 2 => u32::from(fixed::<1>(data, pos)?[0]) * 10_000,
        3 | 4 => u32::from(u16::from_be_bytes(fixed::<2>(data, pos)?)) * 100,
        5 | 6 => be_uint(get(data, pos, 3)?) as u32,
        _ => return Err("fractional-second precision above 6"),
    })
}

fn time_from_packed(packed: i64) -> Time {
    let negative = packed < 0;
    let p = packed.unsigned_abs();
    let hms = p >> 24;
    Time {
        negative,
        hours: ((hms >> 12) % (1 << 10)) as u16,
        minutes: ((hms >> 6) % 64) as u8,
        seconds: (hms % 64) as u8,
        micros: (p % (1 << 24)) as u32,
    }
}

fn time2(data: &[u8], pos: &mut usize, fsp: u8) -> Result<Time, &'static str> {
    let packed: i64 = match fsp {
        0 => (be_uint(get(data, pos, 3)?) as i64 - 0x80_0000) << 24,
        1 | 2 => {
            let mut int = be_uint(get(data, pos, 3)?) as i64 - 0x80_0000;
            let mut frac = i64::from(fixed::<1>(data, pos)?[0]);
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x100;
            }
            (int << 24) + frac * 10_000
        }
        3 | 4 => {
            let mut int = be_uint(get(data, pos, 3)?) as i64 - 0x80_0000;
            let mut frac = i64::from(u16::from_be_bytes(fixed::<2>(data, pos)?));
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x1_0000;
            }
            (int << 24) + frac * 100
        }
        5 | 6 => be_uint(get(data, pos, 6)?) as i64 - 0x8000_0000_0000,
        _ => return Err("fractional-second precision above 6"),
    };
    Ok(time_from_packed(packed))
}

fn datetime2(data: &[u8], pos: &mut usize, fsp: u8) -> Result<DateTime, &'static str> {
    let int = be_uint(get(data, pos, 5)?) as i64 - 0x80_0000_0000;
    let micros = frac_micros(data, pos, fsp)?;
    let ymdhms = int.unsigned_abs();
    let ymd = ymdhms >> 17;
    let ym = ymd >> 5;
    let hms = ymdhms % (1 << 17);
    Ok(DateTime {
        year: (ym / 13) as u16,
        month: (ym % 13) as u8,
        day: (ymd % 32) as u8,
        hour: (hms >> 12) as u8,
        minute: ((hms >> 6) % 64) as u8,
        second: (hms % 64) as u8,
        micros,
    })
}

/// Decodes the value of `col` at `data[*pos..]`, advancing `pos`.
/// `partial_json` = the column holds a JSON diff (PARTIAL_UPDATE after image).
#[inline]
pub(crate) fn decode_value<'a>(
    col: &Column,
    data: &'a [u8],
    pos: &mut usize,
    partial_json: bool,
) -> Result<Value<'a>, &'static str> {
    Ok(match col.kind {
        ColumnType::Tiny => {
            let b = fixed::<1>(data, pos)?[0];
            if col.unsigned {
                Value::UInt(u64::from(b))
            } else {
                Value::Int(i64::from(b as i8))
            }
        }
        ColumnType::Short => {
            let b = fixed::<2>(data, pos)?;
            if col.unsigned {
                Value::UInt(u64::from(u16::from_le_bytes(b)))
            } else {
                Value::Int(i64::from(i16::from_le_bytes(b)))
            }
        }
        ColumnType::Int24 => {
            let b = fixed::<3>(data, pos)?;
            let u = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
            if col.unsigned {
                Value::UInt(u64::from(u))
            } else {
                // sign-extend the 24-bit value
                Value::Int(i64::from(((u << 8) as i32) >> 8))
            }
        }
        ColumnType::Long => {
            let b = fixed::<4>(data, pos)?;
            if col.unsigned {
                Value::UInt(u64::from(u32::from_le_bytes(b)))
            } else {
                Value::Int(i64::from(i32::from_le_bytes(b)))
            }
        }
        ColumnType::LongLong => {
            let b = fixed::<8>(data, pos)?;
            if col.unsigned {
                Value::UInt(u64::from_le_bytes(b))
            } else {
                Value::Int(i64::from_le_bytes(b))
            }
        }
        ColumnType::Float => Value::Float(f32::from_le_bytes(fixed::<4>(data, pos)?)),
        ColumnType::Double => Value::Double(f64::from_le_bytes(fixed::<8>(data, pos)?)),
        ColumnType::NewDecimal => {
            let precision = col.param as u8;
            if precision == 0 || precision > 65 || col.scale > 30 || col.scale > precision {
                return Err("invalid DECIMAL precision/scale in table map");
            }
            let bytes = get(data, pos, decimal_size(precision, col.scale))?;
            Value::Decimal(Decimal {
                precision,
                scale: col.scale,
                bytes,
            })
        }
        ColumnType::Year => {
            let b = fixed::<1>(data, pos)?[0];
            Value::Year(if b == 0 { 0 } else { 1900 + u16::from(b) })
        }
        ColumnType::Date | ColumnType::NewDate => {
            let v = le_uint(get(data, pos, 3)?) as u32;
            Value::Date(Date {
                year: (v >> 9) as u16,
                month: ((v >> 5) & 15) as u8,
                day: (v & 31) as u8,
            })
        }
        ColumnType::Time => {
            let b = fixed::<3>(data, pos)?;
            let u = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
            let v = ((u << 8) as i32) >> 8;
            let a = v.unsigned_abs();
            Value::Time(Time {
                negative: v < 0,
                hours: (a / 10_000) as u16,
                minutes: (a / 100 % 100) as u8,
                seconds: (a % 100) as u8,
                micros: 0,
            })
        }
        ColumnType::DateTime => {
            let v = u64::from_le_bytes(fixed::<8>(data, pos)?);
            let d = v / 1_000_000;
            let t = v % 1_000_000;
            Value::DateTime(DateTime {
                year: (d / 10_000) as u16,
                month: (d / 100 % 100) as u8,
                day: (d % 100) as u8,
                hour: (t / 10_000) as u8,
                minute: (t / 100 % 100) as u8,
                second: (t % 100) as u8,
                micros: 0,
            })
        }
        ColumnType::Timestamp => Value::Timestamp(Timestamp {
            seconds: u32::from_le_bytes(fixed::<4>(data, pos)?),
            micros: 0,
        }),
        ColumnType::Timestamp2 => {
            let seconds = u32::from_be_bytes(fixed::<4>(data, pos)?);
            let micros = frac_micros(data, pos, col.param as u8)?;
            Value::Timestamp(Timestamp { seconds, micros })
        }
        ColumnType::DateTime2 => Value::DateTime(datetime2(data, pos, col.param as u8)?),
        ColumnType::Time2 => Value::Time(time2(data, pos, col.param as u8)?),
        ColumnType::VarChar | ColumnType::VarString | ColumnType::String => {
            let b = length_prefixed(data, pos, col.len_bytes)?;
            if col.is_text() {
                Value::String(b)
            } else {
                Value::Bytes(b)
            }
        }
        ColumnType::Blob | ColumnType::TinyBlob | ColumnType::MediumBlob | ColumnType::LongBlob => {
            let b = length_prefixed(data, pos, col.len_bytes)?;
            if col.is_text() {
                Value::String(b)
            } else {
                Value::Bytes(b)
            }
        }
        ColumnType::Enum => match col.len_bytes {
            1 => Value::Enum(u16::from(fixed::<1>(data, pos)?[0])),
            2 => Value::Enum(u16::from_le_bytes(fixed::<2>(data, pos)?)),
            _ => return Err("invalid ENUM size in table map"),
        },
        ColumnType::Set => match col.len_bytes {
            1..=8 => Value::Set(le_uint(get(data, pos, usize::from(col.len_bytes))?)),
            _ => return Err("invalid SET size in table map"),
        },
        ColumnType::Bit => {
            let n = (col.param as usize).div_ceil(8);
            if n > 8 {
                return Err("BIT wider than 64 bits");
            }
            Value::Bit(be_uint(get(data, pos, n)?))
        }
        ColumnType::Json => {
            let b = length_prefixed(data, pos, col.len_bytes)?;
            if partial_json {
                Value::JsonDiff(JsonDiff::new(b))
            } else {
                Value::Json(Json::new(b))
            }
        }
        ColumnType::Geometry => Value::Geometry(length_prefixed(data, pos, col.len_bytes)?),
        ColumnType::Vector => Value::Vector(length_prefixed(data, pos, col.len_bytes)?),
        ColumnType::BlobCompressed | ColumnType::VarCharCompressed => {
            Value::Compressed(length_prefixed(data, pos, col.len_bytes)?)
        }
        ColumnType::Null => Value::Null,
        ColumnType::Decimal => return Err("pre-5.0 DECIMAL is not decodable from a binlog"),
        ColumnType::TypedArray => return Err("TYPED_ARRAY cannot appear in a row image"),
        ColumnType::Unknown(_) => return Err("unknown column type in table map"),
    })
}

/// Skips the value of `col` at `data[*pos..]` (finds where an image ends).
#[inline]
pub(crate) fn skip_value(col: &Column, data: &[u8], pos: &mut usize) -> Result<(), &'static str> {
    let n = match col.kind {
        ColumnType::Tiny | ColumnType::Year => 1,
        ColumnType::Short => 2,
        ColumnType::Int24 | ColumnType::Date | ColumnType::NewDate | ColumnType::Time => 3,
        ColumnType::Long | ColumnType::Float | ColumnType::Timestamp => 4,
        ColumnType::LongLong | ColumnType::Double | ColumnType::DateTime => 8,
        ColumnType::Timestamp2 => 4 + (col.param as usize).div_ceil(2),
        ColumnType::DateTime2 => 5 + (col.param as usize).div_ceil(2),
        ColumnType::Time2 => 3 + (col.param as usize).div_ceil(2),
        ColumnType::Enum | ColumnType::Set => usize::from(col.len_bytes),
        ColumnType::Bit => (col.param as usize).div_ceil(8),
        ColumnType::NewDecimal => decimal_size(col.param as u8, col.scale),
        _ => {
            decode_value(col, data, pos, false)?;
            return Ok(());
        }
    };
    get(data, pos, n).map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dec(p: u8, s: u8, bytes: &[u8]) -> String {
        Decimal {
            precision: p,
            scale: s,
            bytes,
        }
        .to_string()
    }

    #[test]
    fn decimal_examples() {
        // 1234567890.1234 as DECIMAL(14,4), from MySQL's decimal.c comment
        // (-1234567890.1234 is the byte-inverted form).
        let pos = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
        assert_eq!(dec(14, 4, &pos), "1234567890.1234");
        let neg: Vec<u8> = pos.iter().map(|b| b ^ 0xff).collect();
        assert_eq!(dec(14, 4, &neg), "-1234567890.1234");
        assert_eq!(
            Decimal {
                precision: 14,
                scale: 4,
                bytes: &neg
            }
            .to_i128(),
            Some(-12345678901234)
        );
        assert_eq!(dec(5, 2, &[0x80, 0x00, 0x05]), "0.05");
    }

    #[test]
    fn time2_negative_fraction() {
        // -00:00:00.5 with fsp 1: int part -1 stored, frac 0x100-50
        let raw = (0x80_0000i64 - 1) as u32;
        let b = [
            (raw >> 16) as u8,
            (raw >> 8) as u8,
            raw as u8,
            (0x100 - 50) as u8,
        ];
        let t = time2(&b, &mut 0, 1).unwrap();
        assert!(t.negative);
        assert_eq!(
            (t.hours, t.minutes, t.seconds, t.micros),
            (0, 0, 0, 500_000)
        );
    }
}
