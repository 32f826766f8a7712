//! Binlog row images into Arrow arrays of the very types the snapshot
//! produces (`mysql_source::arrow::arrow_type`), so that `t_base` (read by
//! the snapshot) and `t_log` (read from the binlog) hold identical values for
//! the same MySQL value: integers keep width and signedness, DECIMAL is exact,
//! DATETIME is a wall clock and TIMESTAMP an instant in UTC (both µs), TIME a
//! duration, zero and invalid dates NULL, ENUM and SET their member names.
//!
//! ENUM and SET member names come from the TABLE_MAP event when it carries
//! them (`binlog_row_metadata = FULL`; [`RowColumns::use_logged_members`]),
//! else from the schema. The schema can be lossy: MariaDB's
//! `information_schema` (and `SHOW CREATE TABLE`) print a member holding a
//! character beyond the BMP (an emoji) as `?`, while the TABLE_MAP carries
//! its bytes.

use crate::charset::TextDecoding;
use crate::error::{BinlogAt, Error, Result};
use arrow_array::ArrayRef;
use arrow_array::builder::{
    BinaryBuilder, Date32Builder, Decimal128Builder, DurationMicrosecondBuilder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_schema::{DataType, TimeUnit};
use binlog_parser::Value;
use binlog_parser::calendar::days_from_civil;
use mysql_source::schema::{ColumnSchema, ColumnType};
use std::sync::Arc;

/// One Arrow builder per column, typed like the snapshot's.
#[derive(Debug)]
enum Builder {
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder),
    Date(Date32Builder),
    Duration(DurationMicrosecondBuilder),
    Ts(TimestampMicrosecondBuilder),
    Utf8(StringBuilder),
    Bin(BinaryBuilder),
}

/// ENUM/SET member names of a TABLE_MAP: its raw bytes, and decoded.
type LoggedMembers = (Vec<Vec<u8>>, Vec<String>);

/// Builds the Arrow columns of one table from row images.
#[derive(Debug)]
pub struct RowColumns {
    columns: Vec<(ColumnSchema, Builder)>,
    /// Per column: how its text bytes become UTF-8 (the binlog carries them
    /// in the column's character set).
    decodings: Vec<TextDecoding>,
    /// Per row-image column: the builder it goes to, `None` when not synced.
    slots: Vec<Option<usize>>,
    /// Per column: ENUM/SET member names as the last TABLE_MAP logged them,
    /// when it did.
    logged: Vec<Option<LoggedMembers>>,
    scratch: String,
}

impl RowColumns {
    /// Builders for `columns` (the table's columns in order, as the snapshot reads them).
    pub fn new(columns: &[ColumnSchema]) -> Self {
        let all: Vec<usize> = (0..columns.len()).collect();
        Self::projected(columns, &all, columns.len())
    }

    /// Builders for the synced `columns` of a table whose row images have
    /// `image_len` columns; `image_columns[i]` is the image position of `columns[i]`.
    /// Image columns not listed are skipped.
    pub fn projected(columns: &[ColumnSchema], image_columns: &[usize], image_len: usize) -> Self {
        let mut slots = vec![None; image_len];
        for (slot, &pos) in image_columns.iter().enumerate() {
            if let Some(s) = slots.get_mut(pos) {
                *s = Some(slot);
            }
        }
        let columns: Vec<(ColumnSchema, Builder)> = columns
            .iter()
            .map(|c| {
                let b = match mysql_source::arrow::arrow_type(c) {
                    DataType::Int8 => Builder::I8(Int8Builder::new()),
                    DataType::Int16 => Builder::I16(Int16Builder::new()),
                    DataType::Int32 => Builder::I32(Int32Builder::new()),
                    DataType::Int64 => Builder::I64(Int64Builder::new()),
                    DataType::UInt8 => Builder::U8(UInt8Builder::new()),
                    DataType::UInt16 => Builder::U16(UInt16Builder::new()),
                    DataType::UInt32 => Builder::U32(UInt32Builder::new()),
                    DataType::UInt64 => Builder::U64(UInt64Builder::new()),
                    DataType::Float32 => Builder::F32(Float32Builder::new()),
                    DataType::Float64 => Builder::F64(Float64Builder::new()),
                    DataType::Decimal128(p, s) => Builder::Dec(
                        Decimal128Builder::new().with_data_type(DataType::Decimal128(p, s)),
                    ),
                    DataType::Date32 => Builder::Date(Date32Builder::new()),
                    DataType::Duration(_) => Builder::Duration(DurationMicrosecondBuilder::new()),
                    DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                        Builder::Ts(TimestampMicrosecondBuilder::new().with_timezone_opt(tz))
                    }
                    DataType::Utf8 => Builder::Utf8(StringBuilder::new()),
                    _ => Builder::Bin(BinaryBuilder::new()),
                };
                (c.clone(), b)
            })
            .collect();
        let decodings = columns
            .iter()
            .map(|(c, _)| {
                c.charset
                    .as_deref()
                    .map_or(TextDecoding::Utf8, TextDecoding::for_charset)
            })
            .collect();
        Self {
            logged: vec![None; columns.len()],
            columns,
            decodings,
            slots,
            scratch: String::new(),
        }
    }

    /// Takes the ENUM/SET member names of the rows that follow from their
    /// TABLE_MAP, where it logs them (see the module docs); a map without
    /// them leaves the schema's names in use.
    ///
    /// # Errors
    /// [`Error::Mapping`] for a member name not valid in its column's
    /// character set.
    pub fn use_logged_members(&mut self, map: &binlog_parser::TableMap) -> Result<()> {
        for (pos, column) in map.columns.iter().enumerate() {
            let Some(Some(slot)) = self.slots.get(pos).copied() else {
                continue;
            };
            if column.members.is_empty()
                || !matches!(
                    self.columns[slot].0.column_type,
                    ColumnType::Enum(_) | ColumnType::Set(_)
                )
                || self.logged[slot]
                    .as_ref()
                    .is_some_and(|(raw, _)| *raw == column.members)
            {
                continue;
            }
            let decoding = self.decodings[slot];
            let names = column
                .members
                .iter()
                .map(|m| {
                    decoding.decode(m).map(|t| t.into_owned()).map_err(|why| {
                        Error::Mapping(format!(
                            "column `{}`: a member name in the binlog's table map: {why}",
                            self.columns[slot].0.name
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            self.logged[slot] = Some((column.members.clone(), names));
        }
        Ok(())
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether the table has no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Appends one row. `values` yields `(column index, value)`; columns it
    /// skips (absent from a MINIMAL image) are appended as NULL.
    ///
    /// # Errors
    /// [`Error::Decode`] for a value the parser rejects; [`Error::Mapping`]
    /// when the image has more columns than the table, or a value does not
    /// fit its column's type (the binlog and the schema disagree).
    pub fn append<'a>(
        &mut self,
        values: impl Iterator<Item = binlog_parser::Result<(usize, Value<'a>)>>,
    ) -> Result<()> {
        let mut next = 0;
        for item in values {
            let (idx, value) =
                item.map_err(|e| Error::decode(BinlogAt::default(), "row image", e))?;
            let Some(&slot) = self.slots.get(idx) else {
                return Err(Error::Mapping(format!(
                    "row image has column {} but the table has {} columns: the table's schema changed",
                    idx + 1,
                    self.slots.len()
                )));
            };
            let Some(slot) = slot else { continue };
            while next < slot {
                self.append_null(next);
                next += 1;
            }
            self.append_value(slot, &value)?;
            next = slot + 1;
        }
        while next < self.columns.len() {
            self.append_null(next);
            next += 1;
        }
        Ok(())
    }

    /// The built columns; the builders start over empty.
    pub fn finish(&mut self) -> Vec<ArrayRef> {
        self.columns
            .iter_mut()
            .map(|(_, b)| -> ArrayRef {
                match b {
                    Builder::I8(b) => Arc::new(b.finish()),
                    Builder::I16(b) => Arc::new(b.finish()),
                    Builder::I32(b) => Arc::new(b.finish()),
                    Builder::I64(b) => Arc::new(b.finish()),
                    Builder::U8(b) => Arc::new(b.finish()),
                    Builder::U16(b) => Arc::new(b.finish()),
                    Builder::U32(b) => Arc::new(b.finish()),
                    Builder::U64(b) => Arc::new(b.finish()),
                    Builder::F32(b) => Arc::new(b.finish()),
                    Builder::F64(b) => Arc::new(b.finish()),
                    Builder::Dec(b) => Arc::new(b.finish()),
                    Builder::Date(b) => Arc::new(b.finish()),
                    Builder::Duration(b) => Arc::new(b.finish()),
                    Builder::Ts(b) => Arc::new(b.finish()),
                    Builder::Utf8(b) => Arc::new(b.finish()),
                    Builder::Bin(b) => Arc::new(b.finish()),
                }
            })
            .collect()
    }

    fn append_null(&mut self, idx: usize) {
        match &mut self.columns[idx].1 {
            Builder::I8(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::U8(b) => b.append_null(),
            Builder::U16(b) => b.append_null(),
            Builder::U32(b) => b.append_null(),
            Builder::U64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Dec(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Duration(b) => b.append_null(),
            Builder::Ts(b) => b.append_null(),
            Builder::Utf8(b) => b.append_null(),
            Builder::Bin(b) => b.append_null(),
        }
    }

    fn append_value(&mut self, idx: usize, value: &Value<'_>) -> Result<()> {
        if value.is_null() {
            self.append_null(idx);
            return Ok(());
        }
        let decoding = self.decodings[idx];
        let logged = self.logged[idx].as_ref().map(|(_, names)| names.as_slice());
        let (col, builder) = &mut self.columns[idx];
        let mismatch = || {
            Error::Mapping(format!(
                "column `{}` ({}): a binlog value of kind {} does not fit; the binlog and the \
                 table schema disagree",
                col.name,
                col.column_type_text,
                value_kind(value)
            ))
        };
        match builder {
            Builder::I8(b) => b.append_value(
                signed(value)
                    .and_then(|v| i8::try_from(v).ok())
                    .ok_or_else(mismatch)?,
            ),
            Builder::I16(b) => b.append_value(
                signed(value)
                    .and_then(|v| i16::try_from(v).ok())
                    .ok_or_else(mismatch)?,
            ),
            Builder::I32(b) => b.append_value(
                signed(value)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(mismatch)?,
            ),
            Builder::I64(b) => b.append_value(signed(value).ok_or_else(mismatch)?),
            Builder::U8(b) => b.append_value(
                unsigned(value, 8)
                    .and_then(|v| u8::try_from(v).ok())
                    .ok_or_else(mismatch)?,
            ),
            Builder::U16(b) => {
                let v = match value {
                    Value::Year(y) => Some(u64::from(*y)),
                    _ => unsigned(value, 16),
                };
                b.append_value(v.and_then(|v| u16::try_from(v).ok()).ok_or_else(mismatch)?)
            }
            Builder::U32(b) => {
                let bits = if col.column_type == ColumnType::MediumInt {
                    24
                } else {
                    32
                };
                b.append_value(
                    unsigned(value, bits)
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or_else(mismatch)?,
                )
            }
            Builder::U64(b) => match value {
                Value::Bit(v) => b.append_value(*v),
                _ => b.append_value(unsigned(value, 64).ok_or_else(mismatch)?),
            },
            Builder::F32(b) => match value {
                Value::Float(f) => b.append_value(*f),
                _ => return Err(mismatch()),
            },
            Builder::F64(b) => match value {
                Value::Double(f) => b.append_value(*f),
                Value::Float(f) => b.append_value(f64::from(*f)),
                _ => return Err(mismatch()),
            },
            Builder::Dec(b) => match value {
                Value::Decimal(d) => b.append_value(d.to_i128().ok_or_else(mismatch)?),
                _ => return Err(mismatch()),
            },
            Builder::Date(b) => {
                match value {
                    Value::Date(d) if d.month != 0 && d.day != 0 => b.append_value(
                        days_from_civil(i64::from(d.year), u32::from(d.month), u32::from(d.day))
                            as i32,
                    ),
                    Value::Date(_) => b.append_null(),
                    _ => return Err(mismatch()),
                }
            }
            Builder::Duration(b) => match value {
                Value::Time(t) => b.append_value(t.total_micros()),
                _ => return Err(mismatch()),
            },
            Builder::Ts(b) => match value {
                Value::DateTime(d) if d.month != 0 && d.day != 0 => {
                    let days =
                        days_from_civil(i64::from(d.year), u32::from(d.month), u32::from(d.day));
                    let secs = days * 86_400
                        + i64::from(d.hour) * 3600
                        + i64::from(d.minute) * 60
                        + i64::from(d.second);
                    b.append_value(secs * 1_000_000 + i64::from(d.micros))
                }
                Value::DateTime(_) => b.append_null(),
                Value::Timestamp(t) if t.seconds == 0 && t.micros == 0 => b.append_null(),
                Value::Timestamp(t) => {
                    b.append_value(i64::from(t.seconds) * 1_000_000 + i64::from(t.micros))
                }
                _ => return Err(mismatch()),
            },
            Builder::Utf8(b) => {
                let scratch = &mut self.scratch;
                scratch.clear();
                match (value, &col.column_type) {
                    (Value::String(s) | Value::Bytes(s), _) => {
                        let text = decoding.decode(s).map_err(|why| {
                            Error::Mapping(format!(
                                "column `{}` ({}, character set {}): {why}",
                                col.name,
                                col.column_type_text,
                                col.charset.as_deref().unwrap_or("utf8mb4")
                            ))
                        })?;
                        b.append_value(text);
                        return Ok(());
                    }
                    (Value::Enum(i), ColumnType::Enum(members)) => {
                        let members = logged.unwrap_or(members);
                        let name = match *i {
                            0 => "",
                            i => members
                                .get(usize::from(i) - 1)
                                .map(String::as_str)
                                .ok_or_else(mismatch)?,
                        };
                        b.append_value(name);
                        return Ok(());
                    }
                    (Value::Set(mask), ColumnType::Set(members)) => {
                        let members = logged.unwrap_or(members);
                        for (bit, m) in members.iter().enumerate() {
                            if bit < 64 && mask & (1 << bit) != 0 {
                                if !scratch.is_empty() {
                                    scratch.push(',');
                                }
                                scratch.push_str(m);
                            }
                        }
                    }
                    (Value::Decimal(d), _) => {
                        use std::fmt::Write as _;
                        let _ = write!(scratch, "{d}");
                    }
                    (Value::Json(j), _) => {
                        scratch.push_str(&j.to_json_text().map_err(|_| mismatch())?)
                    }
                    _ => return Err(mismatch()),
                }
                b.append_value(scratch.as_str());
            }
            Builder::Bin(b) => match (value.as_bytes(), &col.column_type) {
                // The binlog drops a BINARY(n)'s trailing zero bytes; SELECT
                // (and so the snapshot) returns all n of them.
                (Some(bytes), ColumnType::Binary { len }) if bytes.len() < *len as usize => {
                    let mut padded = bytes.to_vec();
                    padded.resize(*len as usize, 0);
                    b.append_value(&padded);
                }
                (Some(bytes), _) => b.append_value(bytes),
                (None, _) => return Err(mismatch()),
            },
        }
        Ok(())
    }
}

fn signed(v: &Value<'_>) -> Option<i64> {
    match *v {
        Value::Int(i) => Some(i),
        Value::UInt(u) => i64::try_from(u).ok(),
        Value::Year(y) => Some(i64::from(y)),
        _ => None,
    }
}

/// An unsigned column's value; a signed reading (no signedness metadata) is
/// reinterpreted at the column's width.
fn unsigned(v: &Value<'_>, bits: u32) -> Option<u64> {
    match *v {
        Value::UInt(u) => Some(u),
        Value::Int(i) if i >= 0 => Some(i as u64),
        Value::Int(i) if bits == 64 => Some(i as u64),
        Value::Int(i) => Some((i as u64) & ((1u64 << bits) - 1)),
        _ => None,
    }
}

/// What a binlog value is, without the value: row data stays out of
/// errors and logs.
fn value_kind(value: &Value<'_>) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Int(_) => "signed integer".into(),
        Value::UInt(_) => "unsigned integer".into(),
        Value::Float(_) => "FLOAT".into(),
        Value::Double(_) => "DOUBLE".into(),
        Value::Decimal(_) => "DECIMAL".into(),
        Value::Year(_) => "YEAR".into(),
        Value::Date(_) => "DATE".into(),
        Value::Time(_) => "TIME".into(),
        Value::DateTime(_) => "DATETIME".into(),
        Value::Timestamp(_) => "TIMESTAMP".into(),
        Value::String(s) => format!("text ({} bytes)", s.len()),
        Value::Bytes(s) => format!("bytes ({} bytes)", s.len()),
        Value::Enum(_) => "ENUM index".into(),
        Value::Set(_) => "SET bitmask".into(),
        Value::Bit(_) => "BIT".into(),
        Value::Json(_) => "JSON".into(),
        Value::JsonDiff(_) => "partial JSON".into(),
        Value::Geometry(g) => format!("GEOMETRY ({} bytes)", g.len()),
        Value::Vector(v) => format!("VECTOR ({} bytes)", v.len()),
        Value::Compressed(c) => format!("compressed ({} bytes)", c.len()),
        _ => "value".into(),
    }
}
