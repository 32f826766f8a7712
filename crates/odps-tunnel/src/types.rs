//! The MaxCompute 2.0 type system, its type strings and its Arrow mapping.
//!
//! # Type strings
//!
//! [`OdpsType`] parses type strings the way MaxCompute writes them in table
//! schemas and DDL (`bigint`, `decimal(10,2)`, `varchar(20)`,
//! `array<map<string,bigint>>`, ``struct<a:int,`b c`:string>``), case- and
//! whitespace-insensitively, and prints them back in lower case without spaces.
//!
//! # Arrow mapping
//!
//! | MaxCompute | Arrow |
//! |---|---|
//! | boolean | Boolean |
//! | tinyint / smallint / int / bigint | Int8 / Int16 / Int32 / Int64 |
//! | float / double | Float32 / Float64 |
//! | string, varchar(n), char(n), json | Utf8 |
//! | binary | Binary |
//! | date | Date32 |
//! | datetime | Timestamp(ms) |
//! | timestamp, timestamp_ntz | Timestamp(ns), or Struct{sec: Int64, nano: Int32} (see below) |
//! | decimal(p,s) | Decimal128(p,s) when p ≤ 38, else Decimal256(p,s); bare `decimal` is (54,18) |
//! | interval_day_time | Struct{sec: Int64, nano: Int32} |
//! | interval_year_month | Int64 (months) |
//! | `array<T>` | `List<T>` (item field `item`) |
//! | `map<K,V>` | `Map<entries{key: K not null, value: V}>` |
//! | `struct<..>` | Struct with the same field names |
//!
//! The reference SDK has no Arrow mapping for `json`; this crate sends it as
//! its text, which is what the protobuf format carries too.
//!
//! # Timestamps beyond 64-bit nanoseconds
//!
//! MaxCompute stores `timestamp` and `timestamp_ntz` values from
//! 0000-01-01 00:00:00 to 9999-12-31 23:59:59.999999999. The Arrow tunnel
//! carries them as `timestamp[ns]` only (pyodps and the Java SDK both map
//! them to 64-bit nanoseconds and send no unit: there is no schema message),
//! which holds 1677-09-21 00:12:43.145224192 .. 2262-04-11 23:47:16.854775807
//! UTC. The protobuf record format carries seconds and nanoseconds, the whole
//! range. [`TimestampForm`] names the two Arrow forms: [`TimestampForm::Nanos`]
//! (what [`OdpsType::to_arrow`] gives and the Arrow tunnel takes) and
//! [`TimestampForm::SecNano`], a `Struct{sec: Int64, nano: Int32}` (pyodps's
//! "timestamp as struct"). [`conform_batch_in`] accepts either form, or a
//! `Timestamp` of any unit, and converts exactly into the one asked for, or
//! says which value does not fit; [`needs_record_format`] tells whether a
//! batch can travel over the Arrow tunnel at all. Nested timestamps (inside
//! arrays, maps and structs) are always `Timestamp(ns)`.
//!
//! # Values that do not fit
//!
//! [`conform_batch`] checks an Arrow batch against a table schema before it
//! is uploaded: column presence, Arrow types, and that every value fits its
//! MaxCompute type (text length of `varchar`/`char`, field size, decimal
//! precision, date and time ranges, valid JSON). Errors name the column and
//! the row.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Decimal256Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Default precision of a bare `decimal` (MaxCompute 1.0 decimal).
pub const DEFAULT_DECIMAL_PRECISION: u8 = 54;
/// Default scale of a bare `decimal`.
pub const DEFAULT_DECIMAL_SCALE: u8 = 18;
/// Largest `varchar(n)`.
pub const MAX_VARCHAR_LENGTH: u32 = 65_535;
/// Largest `char(n)`.
pub const MAX_CHAR_LENGTH: u32 = 255;
/// Default largest string/binary value, in bytes (sessions report their own).
pub const DEFAULT_MAX_FIELD_SIZE: usize = 8 * 1024 * 1024;

/// Days from 1970-01-01 to 0000-01-01 (proleptic Gregorian), the first date
/// MaxCompute stores (DATE, DATETIME and TIMESTAMP all start there, per the
/// 2.0 data type edition page).
const MIN_DAY: i64 = -719_528;
/// Nanoseconds per second.
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// How `timestamp` and `timestamp_ntz` values are held in an Arrow batch
/// (see the module docs).
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq)]
pub enum TimestampForm {
    /// `Timestamp(ns)`: what the Arrow tunnel carries, 1677-09-21 .. 2262-04-11.
    #[default]
    Nanos,
    /// `Struct{sec: Int64, nano: Int32}`: seconds since the epoch and
    /// nanoseconds 0..=999,999,999 after them, over MaxCompute's whole range
    /// (what the protobuf record format carries).
    SecNano,
}

/// The Arrow type of [`TimestampForm::SecNano`] (and of `interval_day_time`).
pub fn sec_nano_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        Field::new("sec", DataType::Int64, true),
        Field::new("nano", DataType::Int32, true),
    ]))
}
/// Days from 1970-01-01 to 9999-12-31, the last date MaxCompute stores.
const MAX_DAY: i64 = 2_932_896;

/// Errors about types and values.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TypeError {
    /// A type string could not be parsed.
    #[error("invalid MaxCompute type {input:?}: {reason}")]
    Parse {
        /// The type string.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An Arrow type has no MaxCompute counterpart.
    #[error("Arrow type {0} has no MaxCompute type")]
    UnsupportedArrowType(String),
    /// A batch lacks a column of the table.
    #[error("column {0:?} of the table is missing from the batch")]
    MissingColumn(String),
    /// A batch column has the wrong Arrow type.
    #[error(
        "column {column:?} is {actual} in the batch, but the table's {odps_type} needs {expected}"
    )]
    ArrowTypeMismatch {
        /// Column name.
        column: String,
        /// The table's MaxCompute type.
        odps_type: String,
        /// The Arrow type the table needs.
        expected: String,
        /// The Arrow type found.
        actual: String,
    },
    /// A value does not fit its MaxCompute type.
    #[error("column {column:?} row {row}: {reason}")]
    ValueDoesNotFit {
        /// Column name.
        column: String,
        /// Row index within the batch.
        row: usize,
        /// Why it does not fit.
        reason: String,
    },
    /// A non-nullable column holds a null.
    #[error("column {column:?} row {row}: null in a NOT NULL column")]
    NullInNotNull {
        /// Column name.
        column: String,
        /// Row index within the batch.
        row: usize,
    },
}

/// A MaxCompute 2.0 data type.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
#[non_exhaustive]
pub enum OdpsType {
    /// 64-bit integer.
    Bigint,
    /// 32-bit integer.
    Int,
    /// 16-bit integer.
    Smallint,
    /// 8-bit integer.
    Tinyint,
    /// 64-bit float.
    Double,
    /// 32-bit float.
    Float,
    /// Decimal; `None` precision is the bare `decimal` (54,18). A given
    /// precision without scale (`decimal(10)`) has scale 0.
    Decimal {
        /// Total digits, 1..=54 (MaxCompute 2.0 allows up to 38).
        precision: Option<u8>,
        /// Digits after the point.
        scale: Option<u8>,
    },
    /// UTF-8 text up to the field size limit.
    String,
    /// Text of at most n characters.
    Varchar(u32),
    /// Text of at most n characters (fixed-length in SQL semantics).
    Char(u32),
    /// Bytes.
    Binary,
    /// Boolean.
    Boolean,
    /// Calendar date.
    Date,
    /// Instant with millisecond precision.
    Datetime,
    /// Instant with nanosecond precision.
    Timestamp,
    /// Wall-clock time with nanosecond precision, no time zone.
    TimestampNtz,
    /// JSON document.
    Json,
    /// Interval in seconds and nanoseconds.
    IntervalDayTime,
    /// Interval in months.
    IntervalYearMonth,
    /// Array of one element type.
    Array(Box<OdpsType>),
    /// Map from key type to value type.
    Map(Box<OdpsType>, Box<OdpsType>),
    /// Struct of named fields.
    Struct(Vec<StructField>),
}

/// One field of a [`OdpsType::Struct`].
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub struct StructField {
    /// Field name.
    pub name: String,
    /// Field type.
    pub ty: OdpsType,
}

impl OdpsType {
    /// The (precision, scale) used on the wire for a decimal, `None` for other types.
    pub fn decimal_precision_scale(&self) -> Option<(u8, u8)> {
        match self {
            Self::Decimal {
                precision: None, ..
            } => Some((DEFAULT_DECIMAL_PRECISION, DEFAULT_DECIMAL_SCALE)),
            Self::Decimal {
                precision: Some(p),
                scale,
            } => Some((*p, scale.unwrap_or(0))),
            _ => None,
        }
    }

    /// The Arrow type the Tunnel uses for this type.
    pub fn to_arrow(&self) -> DataType {
        match self {
            Self::Bigint | Self::IntervalYearMonth => DataType::Int64,
            Self::Int => DataType::Int32,
            Self::Smallint => DataType::Int16,
            Self::Tinyint => DataType::Int8,
            Self::Double => DataType::Float64,
            Self::Float => DataType::Float32,
            Self::Decimal { .. } => {
                let (p, s) = self
                    .decimal_precision_scale()
                    .unwrap_or((DEFAULT_DECIMAL_PRECISION, DEFAULT_DECIMAL_SCALE));
                if p <= 38 {
                    DataType::Decimal128(p, s as i8)
                } else {
                    DataType::Decimal256(p, s as i8)
                }
            }
            Self::String | Self::Varchar(_) | Self::Char(_) | Self::Json => DataType::Utf8,
            Self::Binary => DataType::Binary,
            Self::Boolean => DataType::Boolean,
            Self::Date => DataType::Date32,
            Self::Datetime => DataType::Timestamp(TimeUnit::Millisecond, None),
            Self::Timestamp | Self::TimestampNtz => DataType::Timestamp(TimeUnit::Nanosecond, None),
            Self::IntervalDayTime => sec_nano_type(),
            Self::Array(item) => {
                DataType::List(Arc::new(Field::new("item", item.to_arrow(), true)))
            }
            Self::Map(key, value) => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", key.to_arrow(), false),
                        Field::new("value", value.to_arrow(), true),
                    ])),
                    false,
                )),
                false,
            ),
            Self::Struct(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|f| Field::new(&f.name, f.ty.to_arrow(), true))
                    .collect(),
            ),
        }
    }

    /// The Arrow type of this type in `form`: [`to_arrow`](Self::to_arrow),
    /// except that a `timestamp` or `timestamp_ntz` is
    /// [`sec_nano_type`] in [`TimestampForm::SecNano`] (at the top level
    /// only; nested timestamps stay `Timestamp(ns)`).
    pub fn to_arrow_in(&self, form: TimestampForm) -> DataType {
        match (self, form) {
            (Self::Timestamp | Self::TimestampNtz, TimestampForm::SecNano) => sec_nano_type(),
            _ => self.to_arrow(),
        }
    }

    /// Whether this is `timestamp` or `timestamp_ntz`.
    pub fn is_timestamp(&self) -> bool {
        matches!(self, Self::Timestamp | Self::TimestampNtz)
    }

    /// The MaxCompute type for an Arrow type, as the reference SDK infers it
    /// (`Utf8` → `string`, `Timestamp(ms)` → `datetime`, other timestamps →
    /// `timestamp`, ...).
    ///
    /// # Errors
    ///
    /// [`TypeError::UnsupportedArrowType`] for types without a counterpart.
    pub fn from_arrow(ty: &DataType) -> Result<Self, TypeError> {
        Ok(match ty {
            DataType::Boolean => Self::Boolean,
            DataType::Int8 => Self::Tinyint,
            DataType::Int16 => Self::Smallint,
            DataType::Int32 => Self::Int,
            DataType::Int64 => Self::Bigint,
            DataType::Float32 => Self::Float,
            DataType::Float64 => Self::Double,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Self::String,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Self::Binary,
            DataType::Date32 => Self::Date,
            DataType::Timestamp(TimeUnit::Millisecond, _) => Self::Datetime,
            DataType::Timestamp(_, _) => Self::Timestamp,
            DataType::Decimal128(p, s) | DataType::Decimal256(p, s) if *s >= 0 => Self::Decimal {
                precision: Some(*p),
                scale: Some(*s as u8),
            },
            DataType::List(f) | DataType::LargeList(f) => {
                Self::Array(Box::new(Self::from_arrow(f.data_type())?))
            }
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => Self::Map(
                    Box::new(Self::from_arrow(kv[0].data_type())?),
                    Box::new(Self::from_arrow(kv[1].data_type())?),
                ),
                _ => return Err(TypeError::UnsupportedArrowType(ty.to_string())),
            },
            DataType::Struct(fields) if is_sec_nano(fields) => Self::Timestamp,
            DataType::Struct(fields) => Self::Struct(
                fields
                    .iter()
                    .map(|f| {
                        Ok(StructField {
                            name: f.name().clone(),
                            ty: Self::from_arrow(f.data_type())?,
                        })
                    })
                    .collect::<Result<_, TypeError>>()?,
            ),
            _ => return Err(TypeError::UnsupportedArrowType(ty.to_string())),
        })
    }

    /// Whether this is a nested type (array, map or struct).
    pub fn is_nested(&self) -> bool {
        matches!(self, Self::Array(_) | Self::Map(..) | Self::Struct(_))
    }
}

fn is_sec_nano(fields: &Fields) -> bool {
    fields.len() == 2
        && fields[0].name() == "sec"
        && fields[0].data_type() == &DataType::Int64
        && fields[1].name() == "nano"
        && fields[1].data_type() == &DataType::Int32
}

impl fmt::Display for OdpsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bigint => f.write_str("bigint"),
            Self::Int => f.write_str("int"),
            Self::Smallint => f.write_str("smallint"),
            Self::Tinyint => f.write_str("tinyint"),
            Self::Double => f.write_str("double"),
            Self::Float => f.write_str("float"),
            Self::Decimal {
                precision: None, ..
            } => f.write_str("decimal"),
            Self::Decimal {
                precision: Some(p),
                scale: None,
            } => write!(f, "decimal({p})"),
            Self::Decimal {
                precision: Some(p),
                scale: Some(s),
            } => write!(f, "decimal({p},{s})"),
            Self::String => f.write_str("string"),
            Self::Varchar(n) => write!(f, "varchar({n})"),
            Self::Char(n) => write!(f, "char({n})"),
            Self::Binary => f.write_str("binary"),
            Self::Boolean => f.write_str("boolean"),
            Self::Date => f.write_str("date"),
            Self::Datetime => f.write_str("datetime"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::TimestampNtz => f.write_str("timestamp_ntz"),
            Self::Json => f.write_str("json"),
            Self::IntervalDayTime => f.write_str("interval_day_time"),
            Self::IntervalYearMonth => f.write_str("interval_year_month"),
            Self::Array(t) => write!(f, "array<{t}>"),
            Self::Map(k, v) => write!(f, "map<{k},{v}>"),
            Self::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    if is_plain_identifier(&field.name) {
                        write!(f, "{}:{}", field.name, field.ty)?;
                    } else {
                        write!(f, "`{}`:{}", field.name.replace('`', "``"), field.ty)?;
                    }
                }
                f.write_str(">")
            }
        }
    }
}

fn is_plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

impl FromStr for OdpsType {
    type Err = TypeError;

    fn from_str(s: &str) -> Result<Self, TypeError> {
        let mut p = TypeParser { input: s, pos: 0 };
        let ty = p.parse_type().map_err(|reason| TypeError::Parse {
            input: s.to_owned(),
            reason,
        })?;
        p.skip_ws();
        if p.pos != s.len() {
            return Err(TypeError::Parse {
                input: s.to_owned(),
                reason: format!("unexpected text at byte {}", p.pos),
            });
        }
        Ok(ty)
    }
}

impl serde::Serialize for OdpsType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for OdpsType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

struct TypeParser<'a> {
    input: &'a str,
    pos: usize,
}

impl TypeParser<'_> {
    fn skip_ws(&mut self) {
        while self
            .input
            .as_bytes()
            .get(self.pos)
            .is_some_and(u8::is_ascii_whitespace)
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.input.as_bytes().get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.pos))
        }
    }

    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.pos;
        while self
            .input
            .as_bytes()
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.pos += 1;
        }
        self.input[start..self.pos].to_owned()
    }

    fn number(&mut self) -> Result<u32, String> {
        let w = self.word();
        w.parse()
            .map_err(|_| format!("expected a number, found {w:?}"))
    }

    fn field_name(&mut self) -> Result<String, String> {
        if self.peek() == Some(b'`') {
            self.pos += 1;
            let mut name = String::new();
            loop {
                let rest = &self.input[self.pos..];
                let end = rest.find('`').ok_or("unterminated `name`")?;
                name.push_str(&rest[..end]);
                self.pos += end + 1;
                if self.input.as_bytes().get(self.pos) == Some(&b'`') {
                    name.push('`');
                    self.pos += 1;
                } else {
                    return Ok(name);
                }
            }
        }
        let w = self.word();
        if w.is_empty() {
            return Err(format!("expected a field name at byte {}", self.pos));
        }
        Ok(w)
    }

    fn skip_comment(&mut self) -> Result<(), String> {
        let save = self.pos;
        if self.word().eq_ignore_ascii_case("comment") {
            self.expect(b'\'')?;
            let rest = &self.input[self.pos..];
            let end = rest.find('\'').ok_or("unterminated comment")?;
            self.pos += end + 1;
        } else {
            self.pos = save;
        }
        Ok(())
    }

    fn parse_type(&mut self) -> Result<OdpsType, String> {
        let name = self.word().to_ascii_lowercase();
        Ok(match name.as_str() {
            "bigint" => OdpsType::Bigint,
            "int" => OdpsType::Int,
            "smallint" => OdpsType::Smallint,
            "tinyint" => OdpsType::Tinyint,
            "double" => OdpsType::Double,
            "float" => OdpsType::Float,
            "string" => OdpsType::String,
            "binary" => OdpsType::Binary,
            "boolean" => OdpsType::Boolean,
            "date" => OdpsType::Date,
            "datetime" => OdpsType::Datetime,
            "timestamp" => OdpsType::Timestamp,
            "timestamp_ntz" => OdpsType::TimestampNtz,
            "json" => OdpsType::Json,
            "interval_day_time" => OdpsType::IntervalDayTime,
            "interval_year_month" => OdpsType::IntervalYearMonth,
            "decimal" => {
                if self.peek() == Some(b'(') {
                    self.pos += 1;
                    let p = self.number()?;
                    let s = if self.peek() == Some(b',') {
                        self.pos += 1;
                        Some(self.number()?)
                    } else {
                        None
                    };
                    self.expect(b')')?;
                    if !(1..=u32::from(DEFAULT_DECIMAL_PRECISION)).contains(&p) {
                        return Err(format!("decimal precision {p} is not in 1..=54"));
                    }
                    if s.is_some_and(|s| s > p) {
                        return Err("decimal scale is larger than its precision".into());
                    }
                    OdpsType::Decimal {
                        precision: Some(p as u8),
                        scale: s.map(|s| s as u8),
                    }
                } else {
                    OdpsType::Decimal {
                        precision: None,
                        scale: None,
                    }
                }
            }
            "varchar" | "char" => {
                self.expect(b'(')?;
                let n = self.number()?;
                self.expect(b')')?;
                let max = if name == "char" {
                    MAX_CHAR_LENGTH
                } else {
                    MAX_VARCHAR_LENGTH
                };
                if n == 0 || n > max {
                    return Err(format!("{name}({n}): length must be in 1..={max}"));
                }
                if name == "char" {
                    OdpsType::Char(n)
                } else {
                    OdpsType::Varchar(n)
                }
            }
            "array" => {
                self.expect(b'<')?;
                let t = self.parse_type()?;
                self.expect(b'>')?;
                OdpsType::Array(Box::new(t))
            }
            "map" => {
                self.expect(b'<')?;
                let k = self.parse_type()?;
                self.expect(b',')?;
                let v = self.parse_type()?;
                self.expect(b'>')?;
                OdpsType::Map(Box::new(k), Box::new(v))
            }
            "struct" => {
                self.expect(b'<')?;
                let mut fields = Vec::new();
                loop {
                    let name = self.field_name()?;
                    self.expect(b':')?;
                    let ty = self.parse_type()?;
                    self.skip_comment()?;
                    fields.push(StructField { name, ty });
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'>') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(format!("expected ',' or '>' at byte {}", self.pos)),
                    }
                }
                OdpsType::Struct(fields)
            }
            "" => return Err(format!("expected a type name at byte {}", self.pos)),
            other => return Err(format!("unknown type name {other:?}")),
        })
    }
}

/// A table column: name, type, and whether it may hold nulls.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Column type.
    pub ty: OdpsType,
    /// Whether nulls are allowed.
    pub nullable: bool,
}

impl Column {
    /// A nullable column.
    pub fn new(name: impl Into<String>, ty: OdpsType) -> Self {
        Self {
            name: name.into(),
            ty,
            nullable: true,
        }
    }
}

/// The Arrow schema of a table's data columns (partition columns excluded),
/// as the Tunnel's Arrow format carries them.
pub fn arrow_schema(columns: &[Column]) -> SchemaRef {
    arrow_schema_in(columns, TimestampForm::Nanos)
}

/// The Arrow schema of a table's data columns with timestamps in `form`.
pub fn arrow_schema_in(columns: &[Column], form: TimestampForm) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, c.ty.to_arrow_in(form), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// Checks `batch` against the table's data `columns` and returns a batch in
/// the table's column order and exact Arrow types, ready to encode.
///
/// Columns are matched by name, case-insensitively. A batch column that the
/// table lacks is an error, so that data is never dropped silently. Arrays
/// must have the table's Arrow types ([`OdpsType::to_arrow`]); only metadata
/// may differ: timestamps of the right unit with any time zone (the wire
/// carries instants), and other names or nullability flags of list, map and
/// struct children. Nothing is cast (no `LargeUtf8` → `Utf8`, no `Int32` →
/// `Int64`): cast before writing. `max_field_size` bounds string and binary
/// values in bytes.
///
/// The one exception is `timestamp` and `timestamp_ntz`: see
/// [`conform_batch_in`], of which this is the [`TimestampForm::Nanos`] form.
///
/// # Errors
///
/// [`TypeError::MissingColumn`], [`TypeError::ArrowTypeMismatch`],
/// [`TypeError::ValueDoesNotFit`], [`TypeError::NullInNotNull`].
pub fn conform_batch(
    columns: &[Column],
    batch: &RecordBatch,
    max_field_size: usize,
) -> Result<RecordBatch, TypeError> {
    conform_batch_in(columns, batch, max_field_size, TimestampForm::Nanos)
}

/// [`conform_batch`] with the top-level `timestamp` and `timestamp_ntz`
/// columns in `form`. Their values may come as a `Timestamp` of any unit
/// and time zone, or as [`sec_nano_type`]; each is converted exactly or
/// refused with [`TypeError::ValueDoesNotFit`] naming the row (a value
/// outside the 64-bit nanoseconds of [`TimestampForm::Nanos`], or outside
/// MaxCompute's 0000-01-01 .. 9999-12-31).
///
/// # Errors
///
/// As [`conform_batch`].
pub fn conform_batch_in(
    columns: &[Column],
    batch: &RecordBatch,
    max_field_size: usize,
    form: TimestampForm,
) -> Result<RecordBatch, TypeError> {
    let schema = batch.schema();
    for field in schema.fields() {
        if !columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(field.name()))
        {
            return Err(TypeError::MissingColumn(format!(
                "{} (batch column not in the table)",
                field.name()
            )));
        }
    }
    let mut arrays = Vec::with_capacity(columns.len());
    for col in columns {
        let idx = schema
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(&col.name))
            .ok_or_else(|| TypeError::MissingColumn(col.name.clone()))?;
        let array = if col.ty.is_timestamp() {
            convert_timestamps(&col.name, &col.ty, batch.column(idx), form)?
        } else {
            conform_array(&col.name, &col.ty, batch.column(idx))?
        };
        if !col.nullable
            && let Some(row) = (0..array.len()).find(|&i| array.is_null(i))
        {
            return Err(TypeError::NullInNotNull {
                column: col.name.clone(),
                row,
            });
        }
        check_values(&col.name, &col.ty, array.as_ref(), max_field_size)?;
        arrays.push(array);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(arrow_schema_in(columns, form), arrays, &options).map_err(
        |e| TypeError::ValueDoesNotFit {
            column: String::new(),
            row: 0,
            reason: e.to_string(),
        },
    )
}

/// Whether `batch` holds a `timestamp` or `timestamp_ntz` value (in any
/// form [`conform_batch_in`] takes) that 64-bit nanoseconds cannot carry,
/// so that it must travel in the protobuf record format rather than the
/// Arrow one. Columns are matched by name, case-insensitively; a column
/// the batch lacks or of another type counts as fitting (the encoder
/// reports it).
pub fn needs_record_format(columns: &[Column], batch: &RecordBatch) -> bool {
    let schema = batch.schema();
    columns.iter().filter(|c| c.ty.is_timestamp()).any(|c| {
        schema
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(&c.name))
            .is_some_and(|i| beyond_nanos(batch.column(i)))
    })
}

/// How many ticks of `unit` make a second.
fn ticks_per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => NANOS_PER_SEC,
    }
}

/// A tick count as whole seconds (floored) and the nanoseconds after them.
fn split_ticks(ticks: i64, per_second: i64) -> (i64, i32) {
    let nano = ticks.rem_euclid(per_second) * (NANOS_PER_SEC / per_second);
    // Below 10^9: fits i32.
    (ticks.div_euclid(per_second), nano as i32)
}

/// Whether a timestamp array holds a value 64-bit nanoseconds cannot.
fn beyond_nanos(array: &ArrayRef) -> bool {
    let fits = |sec: i64, nano: i64| {
        sec.checked_mul(NANOS_PER_SEC)
            .and_then(|n| n.checked_add(nano))
            .is_some()
    };
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => false,
        DataType::Timestamp(unit, _) => {
            let per = ticks_per_second(*unit);
            let Ok(raw) = array
                .to_data()
                .into_builder()
                .data_type(DataType::Int64)
                .build()
            else {
                return false;
            };
            arrow_array::Int64Array::from(raw)
                .iter()
                .flatten()
                .any(|v| {
                    let (sec, nano) = split_ticks(v, per);
                    !fits(sec, i64::from(nano))
                })
        }
        DataType::Struct(fields) if is_sec_nano(fields) => {
            let s = array.as_struct();
            let sec = s.column(0).as_primitive::<arrow_array::types::Int64Type>();
            let nano = s.column(1).as_primitive::<arrow_array::types::Int32Type>();
            (0..s.len()).any(|i| {
                s.is_valid(i) && sec.is_valid(i) && !fits(sec.value(i), i64::from(nano.value(i)))
            })
        }
        _ => false,
    }
}

/// The first and last second MaxCompute stores (0000-01-01 00:00:00 and
/// 9999-12-31 23:59:59 UTC).
const MIN_SECOND: i64 = MIN_DAY * 86_400;
const MAX_SECOND: i64 = (MAX_DAY + 1) * 86_400 - 1;

/// Seconds and nanoseconds of a timestamp column in any form, row by row
/// (`None` for a null).
fn sec_nanos(
    column: &str,
    ty: &OdpsType,
    array: &ArrayRef,
) -> Result<Vec<Option<(i64, i32)>>, TypeError> {
    let mismatch = || TypeError::ArrowTypeMismatch {
        column: column.to_owned(),
        odps_type: ty.to_string(),
        expected: format!("{} or {}", ty.to_arrow(), sec_nano_type()),
        actual: array.data_type().to_string(),
    };
    match array.data_type() {
        DataType::Timestamp(unit, _) => {
            let per = ticks_per_second(*unit);
            let raw = array
                .to_data()
                .into_builder()
                .data_type(DataType::Int64)
                .build()
                .map_err(|_| mismatch())?;
            let raw = arrow_array::Int64Array::from(raw);
            Ok(raw.iter().map(|v| v.map(|v| split_ticks(v, per))).collect())
        }
        DataType::Struct(fields) if is_sec_nano(fields) => {
            let s = array.as_struct();
            let sec = s.column(0).as_primitive::<arrow_array::types::Int64Type>();
            let nano = s.column(1).as_primitive::<arrow_array::types::Int32Type>();
            Ok((0..s.len())
                .map(|i| {
                    (s.is_valid(i) && sec.is_valid(i)).then(|| {
                        let n = if nano.is_valid(i) { nano.value(i) } else { 0 };
                        (sec.value(i), n)
                    })
                })
                .collect())
        }
        _ => Err(mismatch()),
    }
}

/// A `timestamp`/`timestamp_ntz` column in `form`, converted exactly, its
/// values checked against MaxCompute's range.
fn convert_timestamps(
    column: &str,
    ty: &OdpsType,
    array: &ArrayRef,
    form: TimestampForm,
) -> Result<ArrayRef, TypeError> {
    let values = sec_nanos(column, ty, array)?;
    for (row, v) in values.iter().enumerate() {
        let Some((sec, nano)) = *v else { continue };
        if !(0..NANOS_PER_SEC).contains(&i64::from(nano)) {
            return Err(does_not_fit(
                column,
                row,
                format!("{nano} nanoseconds are outside 0..=999999999"),
            ));
        }
        if !(MIN_SECOND..=MAX_SECOND).contains(&sec) {
            return Err(does_not_fit(
                column,
                row,
                format!("{sec} s since the epoch is outside 0000-01-01..9999-12-31"),
            ));
        }
    }
    Ok(match form {
        TimestampForm::Nanos => {
            let mut out = Vec::with_capacity(values.len());
            for (row, v) in values.iter().enumerate() {
                out.push(match *v {
                    None => None,
                    Some((sec, nano)) => Some(
                        sec.checked_mul(NANOS_PER_SEC)
                            .and_then(|n| n.checked_add(i64::from(nano)))
                            .ok_or_else(|| {
                                does_not_fit(
                                    column,
                                    row,
                                    format!(
                                        "{sec} s since the epoch is outside the 64-bit nanoseconds \
                                         the Arrow tunnel carries (1677-09-21 .. 2262-04-11); \
                                         the protobuf record format carries it"
                                    ),
                                )
                            })?,
                    ),
                });
            }
            Arc::new(arrow_array::TimestampNanosecondArray::from(out))
        }
        TimestampForm::SecNano => {
            let nulls = arrow_buffer::NullBuffer::from_iter(values.iter().map(Option::is_some));
            let sec: arrow_array::Int64Array = values
                .iter()
                .map(|v| Some(v.map_or(0, |(s, _)| s)))
                .collect();
            let nano: arrow_array::Int32Array = values
                .iter()
                .map(|v| Some(v.map_or(0, |(_, n)| n)))
                .collect();
            let DataType::Struct(fields) = sec_nano_type() else {
                return Err(does_not_fit(column, 0, "no struct type".into()));
            };
            Arc::new(
                arrow_array::StructArray::try_new(
                    fields,
                    vec![Arc::new(sec), Arc::new(nano)],
                    (values.iter().any(Option::is_none)).then_some(nulls),
                )
                .map_err(|e| does_not_fit(column, 0, e.to_string()))?,
            )
        }
    })
}

/// Makes `array` carry exactly the Arrow type of `ty`, where only metadata
/// differs (time zone, field names, nullability flags); otherwise errors.
fn conform_array(column: &str, ty: &OdpsType, array: &ArrayRef) -> Result<ArrayRef, TypeError> {
    let expected = ty.to_arrow();
    let actual = array.data_type();
    if actual == &expected {
        return Ok(Arc::clone(array));
    }
    let mismatch = || TypeError::ArrowTypeMismatch {
        column: column.to_owned(),
        odps_type: ty.to_string(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    };
    if !same_layout(actual, &expected) {
        return Err(mismatch());
    }
    // Same physical layout: reinterpret the data under the expected type.
    let data = array
        .to_data()
        .into_builder()
        .data_type(expected.clone())
        .build()
        .map_err(|_| mismatch())?;
    let data = retype_children(data, &expected).map_err(|_| mismatch())?;
    Ok(arrow_array::make_array(data))
}

fn retype_children(
    data: arrow_data::ArrayData,
    expected: &DataType,
) -> Result<arrow_data::ArrayData, arrow_schema::ArrowError> {
    let child_types: Vec<DataType> = match expected {
        DataType::List(f) => vec![f.data_type().clone()],
        DataType::Map(f, _) => vec![f.data_type().clone()],
        DataType::Struct(fields) => fields.iter().map(|f| f.data_type().clone()).collect(),
        _ => return Ok(data),
    };
    let children = data
        .child_data()
        .iter()
        .zip(&child_types)
        .map(|(child, ty)| {
            let rebuilt = child.clone().into_builder().data_type(ty.clone()).build()?;
            retype_children(rebuilt, ty)
        })
        .collect::<Result<Vec<_>, _>>()?;
    data.into_builder().child_data(children).build()
}

fn same_layout(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::Timestamp(ua, _), DataType::Timestamp(ub, _)) => ua == ub,
        (DataType::List(fa), DataType::List(fb)) => same_layout(fa.data_type(), fb.data_type()),
        (DataType::Map(fa, _), DataType::Map(fb, _)) => same_layout(fa.data_type(), fb.data_type()),
        (DataType::Struct(fa), DataType::Struct(fb)) => {
            fa.len() == fb.len()
                && fa
                    .iter()
                    .zip(fb.iter())
                    .all(|(x, y)| same_layout(x.data_type(), y.data_type()))
        }
        (x, y) => x == y,
    }
}

fn does_not_fit(column: &str, row: usize, reason: String) -> TypeError {
    TypeError::ValueDoesNotFit {
        column: column.to_owned(),
        row,
        reason,
    }
}

/// Checks that every value of `array` (already of `ty`'s Arrow type) fits `ty`.
fn check_values(
    column: &str,
    ty: &OdpsType,
    array: &dyn Array,
    max_field_size: usize,
) -> Result<(), TypeError> {
    match ty {
        OdpsType::String | OdpsType::Varchar(_) | OdpsType::Char(_) | OdpsType::Json => {
            let strings = array.as_string::<i32>();
            for (row, value) in strings.iter().enumerate() {
                let Some(value) = value else { continue };
                if value.len() > max_field_size {
                    return Err(does_not_fit(
                        column,
                        row,
                        format!(
                            "{} bytes exceed the field size limit of {max_field_size}",
                            value.len()
                        ),
                    ));
                }
                match ty {
                    OdpsType::Varchar(n) | OdpsType::Char(n) => {
                        let chars = value.chars().count();
                        if chars > *n as usize {
                            return Err(does_not_fit(
                                column,
                                row,
                                format!("{chars} characters do not fit {ty}"),
                            ));
                        }
                    }
                    OdpsType::Json => {
                        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(value) {
                            return Err(does_not_fit(column, row, format!("invalid JSON: {e}")));
                        }
                    }
                    _ => {}
                }
            }
        }
        OdpsType::Binary => {
            for (row, value) in array.as_binary::<i32>().iter().enumerate() {
                if let Some(value) = value
                    && value.len() > max_field_size
                {
                    return Err(does_not_fit(
                        column,
                        row,
                        format!(
                            "{} bytes exceed the field size limit of {max_field_size}",
                            value.len()
                        ),
                    ));
                }
            }
        }
        OdpsType::Decimal { .. } => {
            let (p, _) = ty.decimal_precision_scale().unwrap_or((38, 0));
            let res = if p <= 38 {
                array
                    .as_primitive::<Decimal128Type>()
                    .validate_decimal_precision(p)
            } else {
                array
                    .as_primitive::<Decimal256Type>()
                    .validate_decimal_precision(p)
            };
            if let Err(e) = res {
                let row = first_bad_decimal(array, p).unwrap_or(0);
                return Err(does_not_fit(column, row, format!("{e} for {ty}")));
            }
        }
        OdpsType::Date => {
            for (row, v) in array.as_primitive::<Date32Type>().iter().enumerate() {
                if let Some(v) = v
                    && !(MIN_DAY..=MAX_DAY).contains(&i64::from(v))
                {
                    return Err(does_not_fit(
                        column,
                        row,
                        format!("day {v} is outside 0000-01-01..9999-12-31"),
                    ));
                }
            }
        }
        OdpsType::Datetime => {
            let (lo, hi) = (MIN_DAY * 86_400_000, (MAX_DAY + 1) * 86_400_000 - 1);
            for (row, v) in array
                .as_primitive::<TimestampMillisecondType>()
                .iter()
                .enumerate()
            {
                if let Some(v) = v
                    && !(lo..=hi).contains(&v)
                {
                    return Err(does_not_fit(
                        column,
                        row,
                        format!("{v} ms is outside 0000-01-01..9999-12-31"),
                    ));
                }
            }
        }
        OdpsType::Timestamp | OdpsType::TimestampNtz => {
            // Top-level columns are checked as they are converted
            // (`convert_timestamps`); nested ones are i64 nanoseconds, whose
            // 1677..2262 lie inside MaxCompute's range.
        }
        OdpsType::Array(item) => {
            let list = array.as_list::<i32>();
            check_values(column, item, list.values().as_ref(), max_field_size)
                .map_err(|e| nested_row(e, |child| list_row(list.value_offsets(), child)))?;
        }
        OdpsType::Map(key, value) => {
            let map = array.as_map();
            let offsets = map.value_offsets();
            if let Some(i) = (0..map.keys().len()).find(|&i| map.keys().is_null(i)) {
                return Err(does_not_fit(
                    column,
                    list_row(offsets, i),
                    "null map key".into(),
                ));
            }
            check_values(column, key, map.keys().as_ref(), max_field_size)
                .map_err(|e| nested_row(e, |child| list_row(offsets, child)))?;
            check_values(column, value, map.values().as_ref(), max_field_size)
                .map_err(|e| nested_row(e, |child| list_row(offsets, child)))?;
        }
        OdpsType::Struct(fields) => {
            let s = array.as_struct();
            for (field, child) in fields.iter().zip(s.columns()) {
                check_values(column, &field.ty, child.as_ref(), max_field_size)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn first_bad_decimal(array: &dyn Array, p: u8) -> Option<usize> {
    if p <= 38 {
        let a = array.as_primitive::<Decimal128Type>();
        (0..a.len())
            .find(|&i| a.is_valid(i) && a.slice(i, 1).validate_decimal_precision(p).is_err())
    } else {
        let a = array.as_primitive::<Decimal256Type>();
        (0..a.len())
            .find(|&i| a.is_valid(i) && a.slice(i, 1).validate_decimal_precision(p).is_err())
    }
}

fn list_row(offsets: &[i32], child: usize) -> usize {
    // The parent row whose range [offsets[r], offsets[r+1]) holds `child`.
    offsets
        .partition_point(|&o| o as usize <= child)
        .saturating_sub(1)
}

fn nested_row(e: TypeError, map_row: impl Fn(usize) -> usize) -> TypeError {
    match e {
        TypeError::ValueDoesNotFit {
            column,
            row,
            reason,
        } => TypeError::ValueDoesNotFit {
            column,
            row: map_row(row),
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::types::TimestampNanosecondType;
    use arrow_array::{Decimal128Array, Int64Array, StringArray, TimestampNanosecondArray};

    const ALL: &[&str] = &[
        "bigint",
        "int",
        "smallint",
        "tinyint",
        "double",
        "float",
        "decimal",
        "decimal(10)",
        "decimal(10,2)",
        "decimal(54,18)",
        "string",
        "varchar(20)",
        "char(3)",
        "binary",
        "boolean",
        "date",
        "datetime",
        "timestamp",
        "timestamp_ntz",
        "json",
        "interval_day_time",
        "interval_year_month",
        "array<bigint>",
        "map<string,array<int>>",
        "struct<a:int,b:map<string,decimal(5,1)>,`c d`:string>",
    ];

    #[test]
    fn type_strings_round_trip() {
        for s in ALL {
            let ty: OdpsType = s.parse().unwrap();
            assert_eq!(ty.to_string(), *s);
        }
    }

    #[test]
    fn type_strings_are_case_and_space_insensitive() {
        let ty: OdpsType = " MAP< STRING , Array<INT> > ".parse().unwrap();
        assert_eq!(ty.to_string(), "map<string,array<int>>");
        let ty: OdpsType = "struct<x:int comment 'the x', y:string>".parse().unwrap();
        assert_eq!(ty.to_string(), "struct<x:int,y:string>");
    }

    #[test]
    fn bad_type_strings_are_errors() {
        for s in [
            "",
            "bigints",
            "varchar(0)",
            "varchar(70000)",
            "char(256)",
            "decimal(5,6)",
            "decimal(60,1)",
            "array<int",
            "map<int>",
            "struct<>",
            "int int",
        ] {
            assert!(
                matches!(s.parse::<OdpsType>(), Err(TypeError::Parse { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn arrow_mapping_both_ways() {
        let cases = [
            ("bigint", DataType::Int64),
            ("datetime", DataType::Timestamp(TimeUnit::Millisecond, None)),
            ("timestamp", DataType::Timestamp(TimeUnit::Nanosecond, None)),
            ("decimal(10,2)", DataType::Decimal128(10, 2)),
            ("decimal", DataType::Decimal256(54, 18)),
            ("date", DataType::Date32),
        ];
        for (s, arrow) in cases {
            let ty: OdpsType = s.parse().unwrap();
            assert_eq!(ty.to_arrow(), arrow, "{s}");
        }
        for s in [
            "bigint",
            "int",
            "boolean",
            "double",
            "float",
            "binary",
            "string",
            "date",
            "datetime",
            "timestamp",
            "decimal(10,2)",
            "array<map<string,bigint>>",
            "struct<a:int,b:array<string>>",
        ] {
            let ty: OdpsType = s.parse().unwrap();
            assert_eq!(OdpsType::from_arrow(&ty.to_arrow()).unwrap(), ty, "{s}");
        }
        assert!(matches!(
            OdpsType::from_arrow(&DataType::Float16),
            Err(TypeError::UnsupportedArrowType(_))
        ));
    }

    fn batch(fields: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(fields).unwrap()
    }

    #[test]
    fn conform_reorders_and_strips_time_zone() {
        let cols = vec![
            Column::new("id", OdpsType::Bigint),
            Column::new("ts", OdpsType::Timestamp),
        ];
        let ts = TimestampNanosecondArray::from(vec![1, 2]).with_timezone("UTC");
        let b = batch(vec![
            ("TS", Arc::new(ts) as ArrayRef),
            ("id", Arc::new(Int64Array::from(vec![1, 2]))),
        ]);
        let out = conform_batch(&cols, &b, DEFAULT_MAX_FIELD_SIZE).unwrap();
        assert_eq!(out.schema(), arrow_schema(&cols));
        assert_eq!(
            out.column(1)
                .as_primitive::<TimestampNanosecondType>()
                .value(1),
            2
        );
    }

    #[test]
    fn timestamps_convert_exactly_between_forms_or_say_why_not() {
        use arrow_array::TimestampMicrosecondArray;
        let cols = vec![Column::new("t", OdpsType::TimestampNtz)];
        // 0000-01-01 00:00:00, 9999-12-31 23:59:59.999999, NULL, 1970-01-01 00:00:00.000001.
        let us = TimestampMicrosecondArray::from(vec![
            Some(MIN_SECOND * 1_000_000),
            Some(253_402_300_799_999_999),
            None,
            Some(1),
        ]);
        let b = batch(vec![("t", Arc::new(us) as ArrayRef)]);
        assert!(needs_record_format(&cols, &b));
        assert!(!needs_record_format(&cols, &b.slice(2, 2)));
        let err = conform_batch(&cols, &b, DEFAULT_MAX_FIELD_SIZE).unwrap_err();
        assert!(
            matches!(&err, TypeError::ValueDoesNotFit { row: 0, reason, .. } if reason.contains("protobuf record format")),
            "{err}"
        );
        let sn =
            conform_batch_in(&cols, &b, DEFAULT_MAX_FIELD_SIZE, TimestampForm::SecNano).unwrap();
        assert_eq!(sn.schema(), arrow_schema_in(&cols, TimestampForm::SecNano));
        let st = sn.column(0).as_struct();
        let sec = st.column(0).as_primitive::<arrow_array::types::Int64Type>();
        let nano = st.column(1).as_primitive::<arrow_array::types::Int32Type>();
        assert_eq!((sec.value(0), nano.value(0)), (MIN_SECOND, 0));
        assert_eq!(
            (sec.value(1), nano.value(1)),
            (253_402_300_799, 999_999_000)
        );
        assert!(st.is_null(2));
        assert_eq!((sec.value(3), nano.value(3)), (0, 1_000));
        // The struct form converts back: to nanoseconds where they reach.
        let ns = conform_batch(&cols, &sn.slice(2, 2), DEFAULT_MAX_FIELD_SIZE).unwrap();
        let ns = ns.column(0).as_primitive::<TimestampNanosecondType>();
        assert!(ns.is_null(0) && ns.value(1) == 1_000);
        // Before 1970, seconds round down and nanoseconds count up.
        let before = TimestampMicrosecondArray::from(vec![-1]);
        let b = batch(vec![("t", Arc::new(before) as ArrayRef)]);
        let sn =
            conform_batch_in(&cols, &b, DEFAULT_MAX_FIELD_SIZE, TimestampForm::SecNano).unwrap();
        let st = sn.column(0).as_struct();
        assert_eq!(
            (
                st.column(0)
                    .as_primitive::<arrow_array::types::Int64Type>()
                    .value(0),
                st.column(1)
                    .as_primitive::<arrow_array::types::Int32Type>()
                    .value(0)
            ),
            (-1, 999_999_000)
        );
        // Beyond MaxCompute's range, and nanoseconds out of their range.
        let late = arrow_array::TimestampSecondArray::from(vec![MAX_SECOND + 1]);
        let b = batch(vec![("t", Arc::new(late) as ArrayRef)]);
        assert!(matches!(
            conform_batch_in(&cols, &b, DEFAULT_MAX_FIELD_SIZE, TimestampForm::SecNano),
            Err(TypeError::ValueDoesNotFit { row: 0, .. })
        ));
        let odd = arrow_array::StructArray::try_new(
            match sec_nano_type() {
                DataType::Struct(f) => f,
                _ => unreachable!(),
            },
            vec![
                Arc::new(Int64Array::from(vec![0])),
                Arc::new(arrow_array::Int32Array::from(vec![1_000_000_000])),
            ],
            None,
        )
        .unwrap();
        let b = batch(vec![("t", Arc::new(odd) as ArrayRef)]);
        assert!(conform_batch_in(&cols, &b, 1, TimestampForm::SecNano).is_err());
        // Dates and datetimes start at 0000-01-01.
        let cols = vec![Column::new("d", OdpsType::Date)];
        let days = arrow_array::Date32Array::from(vec![MIN_DAY as i32]);
        assert!(conform_batch(&cols, &batch(vec![("d", Arc::new(days) as ArrayRef)]), 1).is_ok());
        let days = arrow_array::Date32Array::from(vec![MIN_DAY as i32 - 1]);
        assert!(conform_batch(&cols, &batch(vec![("d", Arc::new(days) as ArrayRef)]), 1).is_err());
    }

    #[test]
    fn values_that_do_not_fit_are_named() {
        let cols = vec![Column::new("v", OdpsType::Varchar(3))];
        let b = batch(vec![(
            "v",
            Arc::new(StringArray::from(vec![Some("abc"), None, Some("abcd")])) as ArrayRef,
        )]);
        let err = conform_batch(&cols, &b, DEFAULT_MAX_FIELD_SIZE).unwrap_err();
        assert_eq!(
            err,
            TypeError::ValueDoesNotFit {
                column: "v".into(),
                row: 2,
                reason: "4 characters do not fit varchar(3)".into()
            }
        );

        let cols = vec![Column::new("d", "decimal(4,2)".parse().unwrap())];
        let dec = Decimal128Array::from(vec![1234, 12345])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let b = batch(vec![("d", Arc::new(dec) as ArrayRef)]);
        // Decimal128(10,2) is not decimal(4,2)'s Arrow type.
        assert!(matches!(
            conform_batch(&cols, &b, DEFAULT_MAX_FIELD_SIZE),
            Err(TypeError::ArrowTypeMismatch { .. })
        ));
        let dec = Decimal128Array::from(vec![1234, 12345])
            .with_precision_and_scale(4, 2)
            .unwrap();
        let b = batch(vec![("d", Arc::new(dec) as ArrayRef)]);
        match conform_batch(&cols, &b, DEFAULT_MAX_FIELD_SIZE) {
            Err(TypeError::ValueDoesNotFit { row, .. }) => assert_eq!(row, 1),
            other => panic!("{other:?}"),
        }

        let cols = vec![Column::new("j", OdpsType::Json)];
        let b = batch(vec![(
            "j",
            Arc::new(StringArray::from(vec!["{\"a\":1}", "{nope"])) as ArrayRef,
        )]);
        assert!(matches!(
            conform_batch(&cols, &b, DEFAULT_MAX_FIELD_SIZE),
            Err(TypeError::ValueDoesNotFit { row: 1, .. })
        ));

        let cols = vec![Column::new("s", OdpsType::String)];
        let b = batch(vec![(
            "s",
            Arc::new(StringArray::from(vec!["12345"])) as ArrayRef,
        )]);
        assert!(matches!(
            conform_batch(&cols, &b, 4),
            Err(TypeError::ValueDoesNotFit { row: 0, .. })
        ));
    }

    #[test]
    fn nested_values_report_the_outer_row() {
        let cols = vec![Column::new("a", "array<varchar(2)>".parse().unwrap())];
        let mut lb = ListBuilder::new(StringBuilder::new());
        lb.append_value([Some("ab"), Some("c")]);
        lb.append_value([Some("ok"), Some("long")]);
        let b = batch(vec![("a", Arc::new(lb.finish()) as ArrayRef)]);
        match conform_batch(&cols, &b, DEFAULT_MAX_FIELD_SIZE) {
            Err(TypeError::ValueDoesNotFit { row, .. }) => assert_eq!(row, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_and_extra_and_wrong_columns() {
        let cols = vec![Column::new("id", OdpsType::Bigint)];
        let b = batch(vec![("x", Arc::new(Int64Array::from(vec![1])) as ArrayRef)]);
        assert!(matches!(
            conform_batch(&cols, &b, DEFAULT_MAX_FIELD_SIZE),
            Err(TypeError::MissingColumn(_))
        ));
        let b = batch(vec![(
            "id",
            Arc::new(StringArray::from(vec!["1"])) as ArrayRef,
        )]);
        assert!(matches!(
            conform_batch(&cols, &b, DEFAULT_MAX_FIELD_SIZE),
            Err(TypeError::ArrowTypeMismatch { .. })
        ));
        let mut cols = cols;
        cols[0].nullable = false;
        let b = batch(vec![(
            "id",
            Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
        )]);
        assert_eq!(
            conform_batch(&cols, &b, DEFAULT_MAX_FIELD_SIZE).unwrap_err(),
            TypeError::NullInNotNull {
                column: "id".into(),
                row: 1
            }
        );
    }
}
