//! The MaxCompute 2.0 type system as the emulator needs it: parsing type
//! names from DDL and schema JSON, printing them back, and the Arrow type each
//! one travels as on the Tunnel and is stored as in Parquet.

use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

/// Precision of a bare `decimal` (the MaxCompute 1.0 type), as the SDK assumes.
const DEFAULT_DECIMAL_PRECISION: u8 = 54;
/// Scale of a bare `decimal`.
const DEFAULT_DECIMAL_SCALE: i8 = 18;

/// One MaxCompute column type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OdpsType {
    /// `boolean`
    Boolean,
    /// `tinyint`
    TinyInt,
    /// `smallint`
    SmallInt,
    /// `int`
    Int,
    /// `bigint`
    BigInt,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `decimal(p,s)`; `None` for the bare `decimal`.
    Decimal(Option<(u8, i8)>),
    /// `string`
    String,
    /// `varchar(n)`
    Varchar(u32),
    /// `char(n)`
    Char(u32),
    /// `binary`
    Binary,
    /// `date`
    Date,
    /// `datetime` (milliseconds)
    DateTime,
    /// `timestamp` (nanoseconds)
    Timestamp,
    /// `timestamp_ntz` (nanoseconds, no time zone)
    TimestampNtz,
    /// `json`
    Json,
    /// `array<T>`
    Array(Box<OdpsType>),
    /// `map<K,V>`
    Map(Box<OdpsType>, Box<OdpsType>),
    /// `struct<name:T,...>`
    Struct(Vec<(String, OdpsType)>),
}

/// A type name the emulator does not understand.
#[derive(Debug, thiserror::Error)]
#[error("invalid or unsupported type {0:?}")]
pub struct TypeError(pub String);

impl OdpsType {
    /// Parses a type name such as `decimal(10,2)` or `map<string,array<int>>`
    /// (case-insensitive, backquoted struct field names allowed).
    pub fn parse(text: &str) -> Result<Self, TypeError> {
        let mut parser = TypeParser { text, pos: 0 };
        let parsed = parser.parse_type()?;
        parser.skip_ws();
        if parser.pos != text.len() {
            return Err(TypeError(text.to_owned()));
        }
        Ok(parsed)
    }

    /// The Arrow type this column has on the Arrow tunnel and in storage.
    pub fn to_arrow(&self) -> DataType {
        match self {
            Self::Boolean => DataType::Boolean,
            Self::TinyInt => DataType::Int8,
            Self::SmallInt => DataType::Int16,
            Self::Int => DataType::Int32,
            Self::BigInt => DataType::Int64,
            Self::Float => DataType::Float32,
            Self::Double => DataType::Float64,
            Self::Decimal(_) => {
                let (p, s) = self.decimal_precision_scale();
                if p > 38 {
                    DataType::Decimal256(p, s)
                } else {
                    DataType::Decimal128(p, s)
                }
            }
            Self::String | Self::Varchar(_) | Self::Char(_) | Self::Json => DataType::Utf8,
            Self::Binary => DataType::Binary,
            Self::Date => DataType::Date32,
            Self::DateTime => DataType::Timestamp(TimeUnit::Millisecond, None),
            Self::Timestamp | Self::TimestampNtz => DataType::Timestamp(TimeUnit::Nanosecond, None),
            Self::Array(item) => {
                DataType::List(Arc::new(Field::new("item", item.to_arrow(), true)))
            }
            Self::Map(key, value) => {
                let entries = Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", key.to_arrow(), false),
                        Field::new("value", value.to_arrow(), true),
                    ])),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
            Self::Struct(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|(name, ty)| Field::new(name, ty.to_arrow(), true))
                    .collect::<Vec<_>>()
                    .into(),
            ),
        }
    }

    /// Precision and scale, with the SDK's defaults for a bare `decimal`.
    pub fn decimal_precision_scale(&self) -> (u8, i8) {
        match self {
            Self::Decimal(Some((p, s))) => (*p, *s),
            _ => (DEFAULT_DECIMAL_PRECISION, DEFAULT_DECIMAL_SCALE),
        }
    }
}

impl fmt::Display for OdpsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boolean => f.write_str("boolean"),
            Self::TinyInt => f.write_str("tinyint"),
            Self::SmallInt => f.write_str("smallint"),
            Self::Int => f.write_str("int"),
            Self::BigInt => f.write_str("bigint"),
            Self::Float => f.write_str("float"),
            Self::Double => f.write_str("double"),
            Self::Decimal(None) => f.write_str("decimal"),
            Self::Decimal(Some((p, s))) => write!(f, "decimal({p},{s})"),
            Self::String => f.write_str("string"),
            Self::Varchar(n) => write!(f, "varchar({n})"),
            Self::Char(n) => write!(f, "char({n})"),
            Self::Binary => f.write_str("binary"),
            Self::Date => f.write_str("date"),
            Self::DateTime => f.write_str("datetime"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::TimestampNtz => f.write_str("timestamp_ntz"),
            Self::Json => f.write_str("json"),
            Self::Array(item) => write!(f, "array<{item}>"),
            Self::Map(k, v) => write!(f, "map<{k},{v}>"),
            Self::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, (name, ty)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}:{ty}")?;
                }
                f.write_str(">")
            }
        }
    }
}

/// A small recursive-descent parser over a type name.
struct TypeParser<'a> {
    text: &'a str,
    pos: usize,
}

impl TypeParser<'_> {
    fn err(&self) -> TypeError {
        TypeError(self.text.to_owned())
    }

    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.text[self.pos..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), TypeError> {
        if self.eat(c) { Ok(()) } else { Err(self.err()) }
    }

    fn word(&mut self) -> Result<String, TypeError> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        if let Some(quoted) = rest.strip_prefix('`') {
            let end = quoted.find('`').ok_or_else(|| self.err())?;
            self.pos += end + 2;
            return Ok(quoted[..end].to_owned());
        }
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.err());
        }
        self.pos += len;
        Ok(rest[..len].to_owned())
    }

    fn number(&mut self) -> Result<u32, TypeError> {
        self.word()?.parse().map_err(|_| self.err())
    }

    fn parse_type(&mut self) -> Result<OdpsType, TypeError> {
        let name = self.word()?.to_ascii_lowercase();
        Ok(match name.as_str() {
            "boolean" => OdpsType::Boolean,
            "tinyint" => OdpsType::TinyInt,
            "smallint" => OdpsType::SmallInt,
            "int" => OdpsType::Int,
            "bigint" => OdpsType::BigInt,
            "float" => OdpsType::Float,
            "double" => OdpsType::Double,
            "string" => OdpsType::String,
            "binary" => OdpsType::Binary,
            "date" => OdpsType::Date,
            "datetime" => OdpsType::DateTime,
            "timestamp" => OdpsType::Timestamp,
            "timestamp_ntz" => OdpsType::TimestampNtz,
            "json" => OdpsType::Json,
            "decimal" => {
                if self.eat('(') {
                    let p = self.number()?;
                    let s = if self.eat(',') { self.number()? } else { 0 };
                    self.expect(')')?;
                    if !(1..=76).contains(&p) || s > p || s > 38 {
                        return Err(self.err());
                    }
                    // Both bounds were checked just above.
                    OdpsType::Decimal(Some((p as u8, s as i8)))
                } else {
                    OdpsType::Decimal(None)
                }
            }
            "varchar" | "char" => {
                self.expect('(')?;
                let n = self.number()?;
                self.expect(')')?;
                if name == "varchar" {
                    OdpsType::Varchar(n)
                } else {
                    OdpsType::Char(n)
                }
            }
            "array" => {
                self.expect('<')?;
                let item = self.parse_type()?;
                self.expect('>')?;
                OdpsType::Array(Box::new(item))
            }
            "map" => {
                self.expect('<')?;
                let key = self.parse_type()?;
                self.expect(',')?;
                let value = self.parse_type()?;
                self.expect('>')?;
                OdpsType::Map(Box::new(key), Box::new(value))
            }
            "struct" => {
                self.expect('<')?;
                let mut fields = Vec::new();
                loop {
                    let field = self.word()?;
                    self.expect(':')?;
                    let ty = self.parse_type()?;
                    fields.push((field, ty));
                    self.skip_ws();
                    // Struct fields may carry a comment: `name:type COMMENT '...'`.
                    if self.text[self.pos..]
                        .to_ascii_lowercase()
                        .starts_with("comment")
                    {
                        self.word()?;
                        self.skip_ws();
                        let rest = &self.text[self.pos..];
                        let quote = rest.chars().next().ok_or_else(|| self.err())?;
                        let end = rest[1..].find(quote).ok_or_else(|| self.err())?;
                        self.pos += end + 2;
                    }
                    if !self.eat(',') {
                        break;
                    }
                }
                self.expect('>')?;
                OdpsType::Struct(fields)
            }
            _ => return Err(self.err()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_nested_types() {
        for text in [
            "bigint",
            "decimal(10,2)",
            "varchar(20)",
            "array<int>",
            "map<string,array<decimal(38,18)>>",
            "struct<a:int,b:struct<c:string>>",
        ] {
            assert_eq!(OdpsType::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            OdpsType::parse("STRUCT<`x`: BIGINT, y:Map<String, Double>>")
                .unwrap()
                .to_string(),
            "struct<x:bigint,y:map<string,double>>"
        );
        assert!(OdpsType::parse("decimal(10,2").is_err());
        assert!(OdpsType::parse("blob").is_err());
    }

    #[test]
    fn bare_decimal_maps_to_decimal256() {
        assert_eq!(
            OdpsType::parse("decimal").unwrap().to_arrow(),
            DataType::Decimal256(54, 18)
        );
    }
}
