//! MySQL column types to MaxCompute (2.0) types, and the conversions between
//! the Arrow arrays this crate builds and the ones the Tunnel carries.
//!
//! The task holds rows in the Arrow types of `mysql_source::arrow` (the
//! snapshot and the binlog produce the same ones). A destination column's
//! MaxCompute type follows from that Arrow type, refined by the MySQL
//! `COLUMN_TYPE` that [`arrow_field`] keeps in each field's metadata
//! ([`MYSQL_TYPE`]) for fractional seconds and BIT widths:
//!
//! | MySQL | Arrow here | MaxCompute |
//! |---|---|---|
//! | TINYINT, SMALLINT, MEDIUMINT/INT, BIGINT | Int8 … Int64 | tinyint, smallint, int, bigint |
//! | TINYINT/SMALLINT/MEDIUMINT/INT UNSIGNED, YEAR | UInt8 / UInt16 / UInt32 | smallint / int / bigint (the next wider) |
//! | BIGINT UNSIGNED, BIT(64) | UInt64 | decimal(20,0) |
//! | BIT(1..63) | UInt64 | bigint |
//! | DECIMAL(p,s), p ≤ 38, s ≤ 18 | Decimal128(p,s) | decimal(p,s) |
//! | DECIMAL with s > 18 or p > 38 | Decimal128 / Utf8 | string (the exact decimal text) |
//! | FLOAT, DOUBLE | Float32, Float64 | float, double |
//! | DATE | Date32 | date |
//! | TIME(fsp) | Duration(µs) | string, `[-]HHH:MM:SS[.fraction]` as MySQL prints it (the local warehouse's Parquet holds the same text: [`parquet_type`]) |
//! | DATETIME(0..3) / TIMESTAMP(0..3) | Timestamp(µs) | datetime (milliseconds) |
//! | DATETIME(4..6) | Timestamp(µs) | timestamp_ntz |
//! | TIMESTAMP(4..6) | Timestamp(µs, UTC) | timestamp |
//! | CHAR, VARCHAR, TEXT, ENUM, SET, JSON | Utf8 | string |
//! | BINARY, VARBINARY, BLOB, GEOMETRY | Binary | binary |
//!
//! Every conversion is exact both ways or fails with an error naming the
//! column: integers widen, unsigned 64-bit values become decimals, times
//! are scaled only when no digit is lost. DATETIME(0..3) travels as
//! `datetime` (64-bit milliseconds) over its whole range. `timestamp` and
//! `timestamp_ntz` hold 0000-01-01 .. 9999-12-31 in nanoseconds, but the
//! Tunnel's Arrow form counts nanoseconds in 64 bits (1677-09-21 ..
//! 2262-04-11): [`to_odps`] leaves those columns in microseconds, and the
//! MaxCompute sink sends a part holding a value beyond that window in the
//! protobuf record format, which carries seconds and nanoseconds
//! (`odps_tunnel::types::TimestampForm`); the rest goes as Arrow. Reads
//! come back as nanoseconds or as seconds-and-nanoseconds structs, both
//! converted back exactly ([`from_odps`]). A DATETIME(0..3) is a wall
//! clock stored in an instant type: [`batch_to_odps`] and
//! [`batch_from_odps`] move it by the destination's zone
//! ([`crate::timezone`]), so the project shows it unchanged.
//!
//! Zero dates (`0000-00-00`, `0000-00-00 00:00:00`, a zero TIMESTAMP) and
//! dates with a zero month or day (`2024-00-15`), which MySQL keeps under a
//! lax `sql_mode`, are NULL on both paths (the snapshot and the binlog):
//! MaxCompute has no such values.

use crate::error::{Error, Result};
use crate::timezone::Zone;
use arrow_array::cast::AsArray;
use arrow_array::types::{DurationMicrosecondType, Int64Type};
use arrow_array::{
    Array, ArrayRef, DurationMicrosecondArray, Int64Array, RecordBatch, RecordBatchOptions,
    StringArray,
};
use arrow_cast::{CastOptions, cast_with_options};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use mysql_source::schema::{ColumnSchema, TableSchema};
use odps_tunnel::types::{Column, OdpsType};
use std::collections::HashMap;
use std::sync::Arc;

/// Field metadata key holding the source column's MySQL `COLUMN_TYPE`
/// (e.g. `datetime(6)`, `bit(8)`), set by [`arrow_schema()`].
pub const MYSQL_TYPE: &str = "mysql_type";

/// Largest decimal scale MaxCompute 2.0 stores.
const MAX_DECIMAL_SCALE: i8 = 18;

/// The Arrow field of a source column, with its MySQL column type in the
/// metadata.
pub fn arrow_field(col: &ColumnSchema) -> Field {
    mysql_source::arrow::arrow_field(col).with_metadata(HashMap::from([(
        MYSQL_TYPE.to_owned(),
        col.column_type_text.to_ascii_lowercase(),
    )]))
}

/// The Arrow schema of a source table's rows, with each field's MySQL
/// column type in its metadata.
pub fn arrow_schema(schema: &TableSchema) -> SchemaRef {
    Arc::new(Schema::new(
        schema.columns.iter().map(arrow_field).collect::<Vec<_>>(),
    ))
}

/// The `(n)` of a MySQL type such as `datetime(6)` or `bit(12)`.
fn type_parameter(field: &Field) -> Option<u32> {
    let text = field.metadata().get(MYSQL_TYPE)?;
    let open = text.find('(')?;
    let close = text[open..].find(')')? + open;
    text[open + 1..close].trim().parse().ok()
}

fn mysql_type_starts(field: &Field, prefix: &str) -> bool {
    field
        .metadata()
        .get(MYSQL_TYPE)
        .is_some_and(|t| t.starts_with(prefix))
}

/// Fractional-second digits of a time column (6 when unknown).
fn fsp(field: &Field) -> u32 {
    if mysql_type_starts(field, "time")
        || mysql_type_starts(field, "datetime")
        || mysql_type_starts(field, "timestamp")
    {
        type_parameter(field).unwrap_or(0).min(6)
    } else {
        6
    }
}

/// The MaxCompute type of a destination column (see the module table).
///
/// # Errors
/// [`Error::Mapping`] for an Arrow type the task never builds.
pub fn odps_type(field: &Field) -> Result<OdpsType> {
    Ok(match field.data_type() {
        DataType::Boolean => OdpsType::Boolean,
        DataType::Int8 => OdpsType::Tinyint,
        DataType::Int16 | DataType::UInt8 => OdpsType::Smallint,
        DataType::Int32 | DataType::UInt16 => OdpsType::Int,
        DataType::Int64 | DataType::UInt32 => OdpsType::Bigint,
        DataType::UInt64 => {
            if mysql_type_starts(field, "bit") && type_parameter(field).is_some_and(|w| w < 64) {
                OdpsType::Bigint
            } else {
                OdpsType::Decimal {
                    precision: Some(20),
                    scale: Some(0),
                }
            }
        }
        DataType::Float32 => OdpsType::Float,
        DataType::Float64 => OdpsType::Double,
        DataType::Decimal128(p, s) if *s >= 0 && *s <= MAX_DECIMAL_SCALE && *p <= 38 => {
            OdpsType::Decimal {
                precision: Some(*p),
                scale: Some(*s as u8),
            }
        }
        DataType::Decimal128(..) | DataType::Utf8 | DataType::Duration(TimeUnit::Microsecond) => {
            OdpsType::String
        }
        DataType::Binary => OdpsType::Binary,
        DataType::Date32 => OdpsType::Date,
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            if fsp(field) <= 3 {
                OdpsType::Datetime
            } else if tz.is_some() {
                OdpsType::Timestamp
            } else {
                OdpsType::TimestampNtz
            }
        }
        other => {
            return Err(Error::Mapping(format!(
                "column `{}`: Arrow type {other} has no MaxCompute mapping",
                field.name()
            )));
        }
    })
}

/// The MaxCompute data type edition a task creates its tables in
/// (`[destination] type_system`).
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, Eq, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeSystem {
    /// The 2.0 types (the module table): exact and compact.
    #[default]
    Odps2,
    /// The 1.0 types only (`bigint`, `double`, `decimal`, `string`,
    /// `datetime`, `boolean`), for projects that keep
    /// `odps.sql.type.system.odps2` off: see [`odps_type_in`].
    Odps1,
}

impl TypeSystem {
    /// The `set` statements SQL over the task's tables needs in a project
    /// whose default edition may differ (empty for 1.0: its types are in
    /// every edition).
    pub fn sql_flags(self) -> &'static [&'static str] {
        match self {
            Self::Odps2 => &[
                "set odps.sql.type.system.odps2=true;",
                "set odps.sql.decimal.odps2=true;",
            ],
            Self::Odps1 => &[],
        }
    }
}

/// The MaxCompute type of a destination column in a type system. In 1.0
/// every value stays exact: integers widen to `bigint`, FLOAT to `double`,
/// DECIMAL to `decimal` (38,18) when it fits (else its text), DATE to
/// `datetime` (its midnight, a wall clock like DATETIME), DATETIME and
/// TIMESTAMP with 4–6 fractional digits to their text
/// (`YYYY-MM-DD HH:MM:SS.ffffff`; TIMESTAMP in UTC), binary strings to their
/// hexadecimal text (upper case).
///
/// # Errors
/// As [`odps_type`].
pub fn odps_type_in(field: &Field, system: TypeSystem) -> Result<OdpsType> {
    let two = odps_type(field)?;
    if system == TypeSystem::Odps2 {
        return Ok(two);
    }
    Ok(match two {
        OdpsType::Tinyint | OdpsType::Smallint | OdpsType::Int | OdpsType::Bigint => {
            OdpsType::Bigint
        }
        OdpsType::Float | OdpsType::Double => OdpsType::Double,
        OdpsType::Decimal { precision, scale } => {
            let (p, s) = (precision.unwrap_or(38), scale.unwrap_or(18));
            if u32::from(p) - u32::from(s).min(u32::from(p)) <= 20 && s <= 18 {
                OdpsType::Decimal {
                    precision: None,
                    scale: None,
                }
            } else {
                OdpsType::String
            }
        }
        OdpsType::Date | OdpsType::Datetime => OdpsType::Datetime,
        OdpsType::Boolean => OdpsType::Boolean,
        _ => OdpsType::String,
    })
}

/// The Arrow type the local warehouse (and `sync-cli merge --out`) stores a
/// task column as in Parquet: TIME (Duration) as the text MaxCompute gets
/// (`[-]HHH:MM:SS[.fraction]`), since Parquet has no type for a signed
/// duration beyond 24 hours (its TIME is a time of day, its INTERVAL counts
/// milliseconds) and a bare INT64 reads as a number in every engine but an
/// Arrow one; every other type as is, each a type Parquet readers know.
pub fn parquet_type(field: &Field) -> DataType {
    match field.data_type() {
        DataType::Duration(_) => DataType::Utf8,
        other => other.clone(),
    }
}

/// Whether a type recorded in a warehouse's `_table.json` is the Duration
/// that versions before TIME became text stored (an INT64 in Parquet).
pub fn is_legacy_time_type(recorded: &str) -> bool {
    recorded.starts_with("Duration")
}

/// A task batch in the Parquet form of [`parquet_type`], leaving the
/// columns named in `legacy` (tables written before TIME became text keep
/// their INT64 column, so each file of a table has one type per column).
///
/// # Errors
/// [`Error::Mapping`] naming a column that does not convert.
pub fn batch_to_parquet(batch: &RecordBatch, legacy: &[String]) -> Result<RecordBatch> {
    let schema = batch.schema();
    let converts =
        |f: &Field| parquet_type(f) != *f.data_type() && !legacy.iter().any(|l| l == f.name());
    if !schema.fields().iter().any(|f| converts(f)) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut arrays = Vec::with_capacity(schema.fields().len());
    for (f, array) in schema.fields().iter().zip(batch.columns()) {
        if converts(f) {
            arrays.push(to_odps(array, f, &OdpsType::String)?);
            fields.push(f.as_ref().clone().with_data_type(parquet_type(f)));
        } else {
            arrays.push(Arc::clone(array));
            fields.push(f.as_ref().clone());
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        arrays,
        &options,
    )?)
}

/// A column read from the warehouse as the task's `field`: TIME text back
/// to Duration; a column in the task's type (a TIME written as Duration by
/// an older version, every other type) as is.
///
/// # Errors
/// [`Error::Mapping`] naming the column when a value is not a TIME.
pub fn array_from_parquet(array: &ArrayRef, field: &Field) -> Result<ArrayRef> {
    match (array.data_type(), field.data_type()) {
        (DataType::Utf8, DataType::Duration(TimeUnit::Microsecond)) => from_odps(array, field),
        _ => Ok(Arc::clone(array)),
    }
}

const EXACT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: arrow_cast::display::FormatOptions::new(),
};

fn conversion_error(
    column: &str,
    from: &DataType,
    to: &DataType,
    why: impl std::fmt::Display,
) -> Error {
    Error::Mapping(format!(
        "column `{column}`: cannot convert {from} to {to}: {why}"
    ))
}

/// Converts a task array (`field`) into the Arrow form of MaxCompute type `ty`.
///
/// # Errors
/// [`Error::Mapping`] naming the column when a value does not fit exactly.
pub fn to_odps(array: &ArrayRef, field: &Field, ty: &OdpsType) -> Result<ArrayRef> {
    let target = ty.to_arrow();
    let from = array.data_type();
    if from == &target {
        return Ok(Arc::clone(array));
    }
    let fail = |why: &dyn std::fmt::Display| conversion_error(field.name(), from, &target, why);
    match (from, &target) {
        (DataType::Duration(TimeUnit::Microsecond), DataType::Utf8) => {
            let d = array.as_primitive::<DurationMicrosecondType>();
            let digits = fsp(field);
            Ok(Arc::new(texts(d.iter(), 16, |us, out| {
                push_time(out, us, digits)
            })))
        }
        // `timestamp`/`timestamp_ntz`: kept in microseconds (the Tunnel
        // writers convert into the form their format carries).
        (DataType::Timestamp(TimeUnit::Microsecond, _), DataType::Timestamp(..))
            if ty.is_timestamp() =>
        {
            Ok(Arc::clone(array))
        }
        (DataType::Timestamp(unit, _), DataType::Timestamp(to_unit, to_tz)) => {
            rescale(array, *unit, *to_unit, to_tz.clone()).map_err(|e| fail(&e))
        }
        // 1.0: DATE as its midnight.
        (DataType::Date32, DataType::Timestamp(to_unit, to_tz)) => rescale(
            &date_micros(array),
            TimeUnit::Microsecond,
            *to_unit,
            to_tz.clone(),
        )
        .map_err(|e| fail(&e)),
        // 1.0: sub-millisecond times and binary strings as text.
        (DataType::Timestamp(TimeUnit::Microsecond, _), DataType::Utf8) => {
            let t = array.as_primitive::<arrow_array::types::TimestampMicrosecondType>();
            Ok(Arc::new(texts(t.iter(), 26, push_datetime)))
        }
        (DataType::Binary, DataType::Utf8) => {
            let b = array.as_binary::<i32>();
            let bytes = b.value_data().len() * 2;
            Ok(Arc::new(texts(
                b.iter(),
                bytes / b.len().max(1),
                |v, out| push_hex_upper(out, v),
            )))
        }
        _ => cast_with_options(array, &target, &EXACT).map_err(|e| fail(&e)),
    }
}

/// A DATE array as microsecond timestamps of each day's midnight.
fn date_micros(array: &ArrayRef) -> ArrayRef {
    let d = array.as_primitive::<arrow_array::types::Date32Type>();
    Arc::new(
        d.iter()
            .map(|v| v.map(|days| i64::from(days) * 86_400_000_000))
            .collect::<arrow_array::TimestampMicrosecondArray>(),
    )
}

/// A text column of `values`, each written by `write` into one reused
/// buffer (no allocation per value: these run once per row and column).
fn texts<T>(
    values: impl ExactSizeIterator<Item = Option<T>>,
    bytes_per_value: usize,
    mut write: impl FnMut(T, &mut String),
) -> StringArray {
    let mut b = arrow_array::builder::StringBuilder::with_capacity(
        values.len(),
        values.len() * bytes_per_value,
    );
    let mut text = String::new();
    for v in values {
        match v {
            None => b.append_null(),
            Some(v) => {
                text.clear();
                write(v, &mut text);
                b.append_value(&text);
            }
        }
    }
    b.finish()
}

/// Appends `v` in decimal with at least `width` digits.
fn push_padded(out: &mut String, v: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut v = v;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(digits.len().saturating_sub(width));
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the epoch.
fn push_datetime(us: i64, out: &mut String) {
    let secs = us.div_euclid(1_000_000);
    let (y, m, d) = binlog_parser::calendar::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400) as u64;
    if y < 0 {
        out.push('-');
    }
    push_padded(out, y.unsigned_abs(), 4);
    out.push('-');
    push_padded(out, u64::from(m), 2);
    out.push('-');
    push_padded(out, u64::from(d), 2);
    out.push(' ');
    push_padded(out, t / 3600, 2);
    out.push(':');
    push_padded(out, t % 3600 / 60, 2);
    out.push(':');
    push_padded(out, t % 60, 2);
    out.push('.');
    push_padded(out, us.rem_euclid(1_000_000) as u64, 6);
}

/// [`push_datetime`] into a new string.
#[cfg(test)]
fn format_datetime(us: i64) -> String {
    let mut out = String::new();
    push_datetime(us, &mut out);
    out
}

/// The inverse of [`push_datetime`].
fn parse_datetime(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 26 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[19] != b'.' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, f) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = binlog_parser::calendar::days_from_civil(y, m as u32, d as u32);
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + f)
}

fn push_hex_upper(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Microseconds from a seconds-and-nanoseconds struct array (the record
/// format's timestamps), exactly.
fn sec_nano_micros(
    array: &ArrayRef,
    tz: Option<Arc<str>>,
) -> std::result::Result<ArrayRef, String> {
    let s = array.as_struct();
    let (sec, nano) = (
        s.column(0).as_primitive::<Int64Type>(),
        s.column(1).as_primitive::<arrow_array::types::Int32Type>(),
    );
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || sec.is_null(i) {
            out.push(None);
            continue;
        }
        let n = i64::from(nano.value(i));
        if n % 1000 != 0 {
            return Err(format!(
                "{}.{n:09} s has digits finer than microseconds",
                sec.value(i)
            ));
        }
        out.push(Some(
            sec.value(i)
                .checked_mul(1_000_000)
                .and_then(|us| us.checked_add(n / 1000))
                .ok_or_else(|| format!("{} s is outside the microsecond range", sec.value(i)))?,
        ));
    }
    Ok(Arc::new(
        arrow_array::TimestampMicrosecondArray::from(out).with_timezone_opt(tz),
    ))
}

/// Converts an array read from MaxCompute back into the task's Arrow type
/// of `field`.
///
/// # Errors
/// [`Error::Mapping`] naming the column when a value does not fit exactly.
pub fn from_odps(array: &ArrayRef, field: &Field) -> Result<ArrayRef> {
    let target = field.data_type();
    let from = array.data_type();
    if from == target {
        return Ok(Arc::clone(array));
    }
    let fail = |why: &dyn std::fmt::Display| conversion_error(field.name(), from, target, why);
    match (from, target) {
        (DataType::Utf8, DataType::Duration(TimeUnit::Microsecond)) => {
            let s = array.as_string::<i32>();
            let mut out = Vec::with_capacity(s.len());
            for v in s.iter() {
                out.push(match v {
                    None => None,
                    Some(text) => Some(
                        parse_time(text)
                            .ok_or_else(|| fail(&format!("{text:?} is not a TIME value")))?,
                    ),
                });
            }
            Ok(Arc::new(DurationMicrosecondArray::from(out)))
        }
        (DataType::Timestamp(unit, _), DataType::Timestamp(to_unit, to_tz)) => {
            rescale(array, *unit, *to_unit, to_tz.clone()).map_err(|e| fail(&e))
        }
        (DataType::Struct(_), DataType::Timestamp(TimeUnit::Microsecond, tz))
            if from == &odps_tunnel::types::sec_nano_type() =>
        {
            sec_nano_micros(array, tz.clone()).map_err(|e| fail(&e))
        }
        (DataType::Utf8, DataType::Timestamp(TimeUnit::Microsecond, tz)) => {
            let s = array.as_string::<i32>();
            let mut out = Vec::with_capacity(s.len());
            for v in s.iter() {
                out.push(match v {
                    None => None,
                    Some(t) => Some(
                        parse_datetime(t)
                            .ok_or_else(|| fail(&format!("{t:?} is not a date and time")))?,
                    ),
                });
            }
            Ok(Arc::new(
                arrow_array::TimestampMicrosecondArray::from(out).with_timezone_opt(tz.clone()),
            ))
        }
        (DataType::Utf8, DataType::Binary) => {
            let s = array.as_string::<i32>();
            let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(s.len());
            for v in s.iter() {
                out.push(match v {
                    None => None,
                    Some(t) => {
                        Some(unhex(t).ok_or_else(|| fail(&"a value is not hexadecimal text"))?)
                    }
                });
            }
            Ok(Arc::new(arrow_array::BinaryArray::from_iter(out)))
        }
        (DataType::Timestamp(unit, _), DataType::Date32) => {
            let us = rescale(array, *unit, TimeUnit::Microsecond, None).map_err(|e| fail(&e))?;
            let t = us.as_primitive::<arrow_array::types::TimestampMicrosecondType>();
            let mut out = Vec::with_capacity(t.len());
            for v in t.iter() {
                out.push(match v {
                    None => None,
                    Some(us) if us.rem_euclid(86_400_000_000) == 0 => {
                        Some(i32::try_from(us.div_euclid(86_400_000_000)).map_err(|e| fail(&e))?)
                    }
                    Some(_) => return Err(fail(&"a DATE read back is not a midnight")),
                });
            }
            Ok(Arc::new(arrow_array::Date32Array::from(out)))
        }
        _ => cast_with_options(array, target, &EXACT).map_err(|e| fail(&e)),
    }
}

fn per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// Whether a column is a DATETIME (a wall clock: no zone in its Arrow
/// type) landing in MaxCompute's `datetime` (an instant), so that it is
/// moved by the project's zone ([`crate::timezone`]).
fn is_wall_clock_datetime(field: &Field, ty: &OdpsType) -> bool {
    *ty == OdpsType::Datetime
        && matches!(
            field.data_type(),
            DataType::Timestamp(_, None) | DataType::Date32
        )
}

/// Maps every value of a microsecond timestamp array through `f`.
fn shift(
    array: &ArrayRef,
    field: &Field,
    f: impl Fn(i64) -> std::result::Result<i64, String>,
) -> Result<ArrayRef> {
    let Some(ts) = array.as_primitive_opt::<arrow_array::types::TimestampMicrosecondType>() else {
        return Ok(Arc::clone(array));
    };
    let mut out = Vec::with_capacity(ts.len());
    for v in ts.iter() {
        out.push(match v {
            None => None,
            Some(us) => Some(f(us).map_err(|why| {
                Error::Mapping(format!(
                    "column `{}`: {why}, so no instant reads as this DATETIME in the \
                     destination's time zone; set [destination] timezone to a fixed offset \
                     (e.g. \"+08:00\", which has no clock changes) or \"UTC\"",
                    field.name()
                ))
            })?),
        });
    }
    Ok(Arc::new(
        arrow_array::TimestampMicrosecondArray::from(out).with_timezone_opt(ts.timezone()),
    ))
}

/// Changes a timestamp array's unit without losing a digit (else an error)
/// and sets the time zone label (the values are instants either way).
fn rescale(
    array: &ArrayRef,
    from: TimeUnit,
    to: TimeUnit,
    tz: Option<Arc<str>>,
) -> std::result::Result<ArrayRef, String> {
    let raw = cast_with_options(array, &DataType::Int64, &EXACT).map_err(|e| e.to_string())?;
    let raw = raw.as_primitive::<Int64Type>();
    let (f, t) = (per_second(from), per_second(to));
    let scaled: Int64Array = if t >= f {
        let m = t / f;
        raw.try_unary(|v| {
            v.checked_mul(m).ok_or_else(|| {
                arrow_schema::ArrowError::ComputeError(format!(
                    "{v} ({from:?}) is outside the range of {to:?} timestamps"
                ))
            })
        })
        .map_err(|e| e.to_string())?
    } else {
        let d = f / t;
        raw.try_unary(|v| {
            if v % d == 0 {
                Ok(v / d)
            } else {
                Err(arrow_schema::ArrowError::ComputeError(format!(
                    "{v} ({from:?}) has digits finer than {to:?}"
                )))
            }
        })
        .map_err(|e| e.to_string())?
    };
    let data = scaled
        .into_data()
        .into_builder()
        .data_type(DataType::Timestamp(to, tz))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(arrow_array::make_array(data))
}

/// A TIME value as MySQL prints it: `[-]H:MM:SS` (at least two hour digits)
/// and `digits` fractional digits.
fn push_time(out: &mut String, us: i64, digits: u32) {
    if us < 0 {
        out.push('-');
    }
    let a = us.unsigned_abs();
    let (secs, frac) = (a / 1_000_000, a % 1_000_000);
    push_padded(out, secs / 3600, 2);
    out.push(':');
    push_padded(out, secs / 60 % 60, 2);
    out.push(':');
    push_padded(out, secs % 60, 2);
    if digits > 0 {
        let digits = digits.min(6);
        out.push('.');
        push_padded(out, frac / 10u64.pow(6 - digits), digits as usize);
    } else if frac != 0 {
        // More digits than the column declares: keep them rather than lose them.
        out.push('.');
        push_padded(out, frac, 6);
    }
}

/// [`push_time`] into a new string.
#[cfg(test)]
fn format_time(us: i64, digits: u32) -> String {
    let mut out = String::new();
    push_time(&mut out, us, digits);
    out
}

/// Parses what [`push_time`] prints.
fn parse_time(text: &str) -> Option<i64> {
    let (neg, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (hms, frac) = match rest.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let mut parts = hms.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || m > 59 || s > 59 {
        return None;
    }
    let mut us = (h * 3600 + m * 60 + s) * 1_000_000;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        us += f.parse::<i64>().ok()? * 10_i64.pow(6 - f.len() as u32);
    }
    Some(if neg { -us } else { us })
}

/// A task batch as the table `columns` take it: columns matched by name
/// (case-insensitively), in table order, converted to the Tunnel's types
/// (`timestamp` and `timestamp_ntz` left in microseconds: see the module
/// docs).
///
/// # Errors
/// [`Error::Mapping`] for a batch column the table lacks (data is never
/// dropped), a table column the batch lacks, or a value that does not fit.
pub fn batch_to_odps(batch: &RecordBatch, columns: &[Column], zone: &Zone) -> Result<RecordBatch> {
    let schema = batch.schema();
    for f in schema.fields() {
        if !columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(f.name()))
        {
            return Err(Error::Mapping(format!(
                "column `{}` is not in the destination table (its columns: {})",
                f.name(),
                columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut arrays = Vec::with_capacity(columns.len());
    for c in columns {
        let (i, field) = schema
            .fields()
            .iter()
            .enumerate()
            .find(|(_, f)| f.name().eq_ignore_ascii_case(&c.name))
            .ok_or_else(|| {
                Error::Mapping(format!(
                    "the destination table has a column `{}` the task does not write",
                    c.name
                ))
            })?;
        let column = if is_wall_clock_datetime(field, &c.ty) && !zone.is_utc() {
            let wall = match field.data_type() {
                DataType::Date32 => date_micros(batch.column(i)),
                _ => Arc::clone(batch.column(i)),
            };
            shift(&wall, field, |us| zone.wall_to_instant(us))?
        } else {
            Arc::clone(batch.column(i))
        };
        arrays.push(to_odps(&column, field, &c.ty)?);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    let schema = Schema::new(
        columns
            .iter()
            .zip(&arrays)
            .map(|(c, a)| Field::new(&c.name, a.data_type().clone(), c.nullable))
            .collect::<Vec<_>>(),
    );
    Ok(RecordBatch::try_new_with_options(
        Arc::new(schema),
        arrays,
        &options,
    )?)
}

/// A batch read from MaxCompute in the task's `schema`: columns matched by
/// name (case-insensitively) and converted back.
///
/// # Errors
/// [`Error::Mapping`] for a column of `schema` the table lacks, or a value
/// that does not fit.
pub fn batch_from_odps(
    batch: &RecordBatch,
    schema: &SchemaRef,
    zone: &Zone,
) -> Result<RecordBatch> {
    let have = batch.schema();
    let mut arrays = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let i = have
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(field.name()))
            .ok_or_else(|| {
                Error::Mapping(format!(
                    "column `{}` is missing from the destination table",
                    field.name()
                ))
            })?;
        let read = batch.column(i);
        let wall_clock = *have.field(i).data_type() == OdpsType::Datetime.to_arrow()
            && matches!(
                field.data_type(),
                DataType::Timestamp(_, None) | DataType::Date32
            );
        arrays.push(if wall_clock && !zone.is_utc() {
            let us = rescale(read, TimeUnit::Millisecond, TimeUnit::Microsecond, None)
                .map_err(|e| Error::Mapping(format!("column `{}`: {e}", field.name())))?;
            from_odps(
                &shift(&us, field, |us| Ok(zone.instant_to_wall(us)))?,
                field,
            )?
        } else {
            from_odps(read, field)?
        });
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &options,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Decimal128Array, TimestampMicrosecondArray, UInt16Array, UInt64Array};

    fn field(name: &str, ty: DataType, mysql: &str) -> Field {
        Field::new(name, ty, true)
            .with_metadata(HashMap::from([(MYSQL_TYPE.to_owned(), mysql.to_owned())]))
    }

    fn round_trip(array: ArrayRef, f: &Field) -> (OdpsType, ArrayRef) {
        let ty = odps_type(f).expect("mapped");
        let odps = to_odps(&array, f, &ty).expect("to odps");
        if ty.is_timestamp() {
            assert_eq!(odps.as_ref(), array.as_ref(), "timestamps stay in µs");
        } else {
            assert_eq!(odps.data_type(), &ty.to_arrow());
        }
        let back = from_odps(&odps, f).expect("back");
        assert_eq!(back.as_ref(), array.as_ref(), "{} round trip", f.name());
        (ty, odps)
    }

    #[test]
    fn every_task_type_round_trips_exactly() {
        let (ty, _) = round_trip(
            Arc::new(UInt64Array::from(vec![Some(u64::MAX), None, Some(0)])),
            &field("u", DataType::UInt64, "bigint(20) unsigned"),
        );
        assert_eq!(ty.to_string(), "decimal(20,0)");
        let (ty, _) = round_trip(
            Arc::new(UInt64Array::from(vec![4095, 0])),
            &field("b", DataType::UInt64, "bit(12)"),
        );
        assert_eq!(ty, OdpsType::Bigint);
        let (ty, _) = round_trip(
            Arc::new(UInt16Array::from(vec![65535, 1901])),
            &field("y", DataType::UInt16, "smallint(5) unsigned"),
        );
        assert_eq!(ty, OdpsType::Int);
        let wide =
            Decimal128Array::from(vec![Some(-123_456_789_012_345_678_901_234_567_i128), None])
                .with_precision_and_scale(38, 30)
                .expect("decimal");
        let (ty, odps) = round_trip(
            Arc::new(wide),
            &field("d", DataType::Decimal128(38, 30), "decimal(38,30)"),
        );
        assert_eq!(ty, OdpsType::String);
        assert_eq!(
            odps.as_string::<i32>().value(0),
            "-0.000123456789012345678901234567"
        );
        let (ty, odps) = round_trip(
            Arc::new(DurationMicrosecondArray::from(vec![
                Some(-3_020_399_000_000),
                Some(-45_000_500_000),
                Some(1_000),
                None,
            ])),
            &field("t", DataType::Duration(TimeUnit::Microsecond), "time(3)"),
        );
        assert_eq!(ty, OdpsType::String);
        let text = odps.as_string::<i32>();
        assert_eq!(text.value(0), "-838:59:59.000");
        assert_eq!(text.value(1), "-12:30:00.500");
        assert_eq!(text.value(2), "00:00:00.001");
        // DATETIME(0..3): milliseconds over the whole MySQL range.
        let (ty, _) = round_trip(
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(253_402_300_799_999_000),
                Some(-30_610_224_000_000_000),
            ])),
            &field(
                "dt",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                "datetime(3)",
            ),
        );
        assert_eq!(ty, OdpsType::Datetime);
        let (ty, _) = round_trip(
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_700_000_000_123_456)])
                    .with_timezone("UTC"),
            ),
            &field(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                "timestamp(6)",
            ),
        );
        assert_eq!(ty, OdpsType::Timestamp);
    }

    #[test]
    fn the_1_0_types_carry_every_value_exactly_in_any_zone() {
        use arrow_array::{BinaryArray, Date32Array, Float32Array, Int8Array};
        let columns: Vec<(Field, ArrayRef, OdpsType)> = vec![
            (
                field("i8", DataType::Int8, "tinyint"),
                Arc::new(Int8Array::from(vec![Some(-128), None, Some(127)])),
                OdpsType::Bigint,
            ),
            (
                field("u", DataType::UInt64, "bigint unsigned"),
                Arc::new(UInt64Array::from(vec![Some(u64::MAX), Some(0)])),
                OdpsType::Decimal {
                    precision: None,
                    scale: None,
                },
            ),
            (
                field("f", DataType::Float32, "float"),
                Arc::new(Float32Array::from(vec![Some(0.1f32), Some(f32::MAX)])),
                OdpsType::Double,
            ),
            (
                field("d", DataType::Decimal128(38, 30), "decimal(38,30)"),
                Arc::new(
                    Decimal128Array::from(vec![Some(-15), None])
                        .with_precision_and_scale(38, 30)
                        .expect("decimal"),
                ),
                OdpsType::String,
            ),
            (
                field("d2", DataType::Decimal128(20, 2), "decimal(20,2)"),
                Arc::new(
                    Decimal128Array::from(vec![Some(-999_999_999_999_999_999), None])
                        .with_precision_and_scale(20, 2)
                        .expect("decimal"),
                ),
                OdpsType::Decimal {
                    precision: None,
                    scale: None,
                },
            ),
            (
                field("day", DataType::Date32, "date"),
                Arc::new(Date32Array::from(vec![
                    Some(-354_285),
                    Some(2_932_896),
                    None,
                ])),
                OdpsType::Datetime,
            ),
            (
                field(
                    "dt6",
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                    "datetime(6)",
                ),
                Arc::new(TimestampMicrosecondArray::from(vec![
                    Some(253_402_300_799_999_999),
                    Some(-30_610_224_000_000_000),
                    Some(-1),
                ])),
                OdpsType::String,
            ),
            (
                field("bin", DataType::Binary, "blob"),
                Arc::new(BinaryArray::from_iter(vec![
                    Some(vec![0u8, 0xFF, 0x10]),
                    Some(vec![]),
                    None,
                ])),
                OdpsType::String,
            ),
        ];
        for zone in ["UTC", "Asia/Shanghai"] {
            let zone = crate::timezone::Zone::parse(zone).expect("zone");
            let fields: Vec<Field> = columns.iter().map(|(f, _, _)| f.clone()).collect();
            let odps_columns: Vec<Column> = columns
                .iter()
                .map(|(f, _, want)| {
                    let ty = odps_type_in(f, TypeSystem::Odps1).expect("mapped");
                    assert_eq!(&ty, want, "{}", f.name());
                    Column {
                        name: f.name().clone(),
                        ty,
                        nullable: true,
                    }
                })
                .collect();
            for (f, array, _) in &columns {
                let one = RecordBatch::try_new(
                    Arc::new(Schema::new(vec![f.clone()])),
                    vec![Arc::clone(array)],
                )
                .expect("batch");
                let col = odps_columns
                    .iter()
                    .find(|c| &c.name == f.name())
                    .expect("column");
                let odps = batch_to_odps(&one, std::slice::from_ref(col), &zone).expect("to odps");
                assert_eq!(
                    odps.column(0).data_type(),
                    &col.ty.to_arrow(),
                    "{}",
                    f.name()
                );
                let back = batch_from_odps(&odps, &one.schema(), &zone).expect("back");
                assert_eq!(
                    back.column(0).as_ref(),
                    array.as_ref(),
                    "{} in {zone:?}",
                    f.name()
                );
            }
            assert_eq!(fields.len(), odps_columns.len());
        }
        assert_eq!(
            format_datetime(-30_610_224_000_000_000),
            "1000-01-01 00:00:00.000000"
        );
        assert_eq!(
            parse_datetime("9999-12-31 23:59:59.999999"),
            Some(253_402_300_799_999_999)
        );
        assert_eq!(parse_datetime("2024-13-01 00:00:00.000000"), None);
        assert_eq!(unhex("0G"), None);
    }

    #[test]
    fn text_forms_are_written_exactly() {
        let cases = [
            (0, 0, "00:00:00"),
            (-3_020_399_000_000, 0, "-838:59:59"),
            (3_020_399_999_999, 6, "838:59:59.999999"),
            (3_020_399_999_999, 3, "838:59:59.999"),
            (-1_500_000, 1, "-00:00:01.5"),
            (1_000_042, 0, "00:00:01.000042"),
        ];
        for (us, digits, want) in cases {
            assert_eq!(format_time(us, digits), want);
            assert!(parse_time(want).is_some(), "{want} parses back");
        }
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00.000000");
        assert_eq!(
            format_datetime(253_402_300_799_999_999),
            "9999-12-31 23:59:59.999999"
        );
        assert_eq!(
            format_datetime(-30_610_224_000_000_000),
            "1000-01-01 00:00:00.000000"
        );
        let mut hex = String::new();
        push_hex_upper(&mut hex, &[0x00, 0xAB, 0x7F, 0xFF]);
        assert_eq!(hex, "00AB7FFF");
    }

    #[test]
    fn datetime6_over_its_whole_range_travels_exactly() {
        use odps_tunnel::types::{Column, TimestampForm, conform_batch_in, needs_record_format};
        // 1000-01-01 00:00:00 and 9999-12-31 23:59:59.999999: beyond the
        // Arrow tunnel's nanoseconds, carried by the record format.
        let f = field(
            "dt",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            "datetime(6)",
        );
        let ty = odps_type(&f).expect("mapped");
        assert_eq!(ty, OdpsType::TimestampNtz);
        let edges: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
            Some(253_402_300_799_999_999),
            Some(-30_610_224_000_000_000),
            None,
        ]));
        let batch = RecordBatch::try_from_iter([("dt", edges.clone())]).expect("batch");
        let columns = [Column::new("dt", ty)];
        let odps = batch_to_odps(&batch, &columns, &Zone::utc()).expect("to odps");
        assert!(needs_record_format(&columns, &odps));
        assert!(conform_batch_in(&columns, &odps, 1 << 20, TimestampForm::Nanos).is_err());
        let records =
            conform_batch_in(&columns, &odps, 1 << 20, TimestampForm::SecNano).expect("sec/nano");
        let back = from_odps(records.column(0), &f).expect("back");
        assert_eq!(back.as_ref(), edges.as_ref());
        // Inside the window the Arrow tunnel's nanoseconds come back too.
        let inside: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(vec![1_700_000_000_123_456]));
        let batch = RecordBatch::try_from_iter([("dt", inside.clone())]).expect("batch");
        assert!(!needs_record_format(&columns, &batch));
        let ns = conform_batch_in(&columns, &batch, 1 << 20, TimestampForm::Nanos).expect("ns");
        assert_eq!(
            from_odps(ns.column(0), &f).expect("back").as_ref(),
            inside.as_ref()
        );
    }

    #[test]
    fn values_that_do_not_fit_are_refused_not_truncated() {
        // Sub-millisecond digits in a column mapped to datetime.
        let f3 = field(
            "d3",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            "datetime(3)",
        );
        let odd: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![1_001]));
        assert!(to_odps(&odd, &f3, &OdpsType::Datetime).is_err());
        assert!(parse_time("12:61:00").is_none() && parse_time("x").is_none());
    }
}
