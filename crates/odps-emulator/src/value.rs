//! One cell as the protobuf record format carries it, and its conversion to
//! and from Arrow arrays of the column's storage type. The Arrow tunnel never
//! goes through here; the record format does.

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Decimal256Builder, Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder,
    Int64Builder, ListBuilder, MapBuilder, MapFieldNames, StringBuilder, StructBuilder,
    TimestampMillisecondBuilder, TimestampNanosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimestampMillisecondType, TimestampNanosecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_buffer::i256;

use crate::error::OdpsError;
use crate::odps_type::OdpsType;

/// One value of a MaxCompute column.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// `boolean`.
    Bool(bool),
    /// Any integer type.
    Int(i64),
    /// `float`.
    Float(f32),
    /// `double`.
    Double(f64),
    /// `decimal`, as its plain decimal text.
    Decimal(String),
    /// String-like or binary bytes.
    Bytes(Vec<u8>),
    /// `date`: days since the epoch.
    Date(i64),
    /// `datetime`: milliseconds since the epoch.
    DateTime(i64),
    /// `timestamp`/`timestamp_ntz`: seconds and nanoseconds since the epoch.
    Timestamp(i64, i32),
    /// `array`.
    Array(Vec<Value>),
    /// `map`: keys and values in order.
    Map(Vec<(Value, Value)>),
    /// `struct`: field values in order.
    Struct(Vec<Value>),
}

/// Builds the Arrow array of `ty`'s storage type from a column of values.
pub fn to_array(ty: &OdpsType, values: &[Value]) -> Result<ArrayRef, OdpsError> {
    let mut builder = make_builder(ty);
    for v in values {
        append(builder.as_mut(), ty, v)?;
    }
    Ok(builder.finish())
}

fn make_builder(ty: &OdpsType) -> Box<dyn ArrayBuilder> {
    match ty {
        OdpsType::Boolean => Box::new(BooleanBuilder::new()),
        OdpsType::TinyInt => Box::new(Int8Builder::new()),
        OdpsType::SmallInt => Box::new(Int16Builder::new()),
        OdpsType::Int => Box::new(Int32Builder::new()),
        OdpsType::BigInt => Box::new(Int64Builder::new()),
        OdpsType::Float => Box::new(Float32Builder::new()),
        OdpsType::Double => Box::new(Float64Builder::new()),
        OdpsType::Decimal(_) => {
            let (p, s) = ty.decimal_precision_scale();
            if p > 38 {
                Box::new(Decimal256Builder::new().with_data_type(ty.to_arrow()))
            } else {
                Box::new(
                    Decimal128Builder::new()
                        .with_precision_and_scale(p, s)
                        .unwrap_or_default(),
                )
            }
        }
        OdpsType::String | OdpsType::Varchar(_) | OdpsType::Char(_) | OdpsType::Json => {
            Box::new(StringBuilder::new())
        }
        OdpsType::Binary => Box::new(BinaryBuilder::new()),
        OdpsType::Date => Box::new(Date32Builder::new()),
        OdpsType::DateTime => Box::new(TimestampMillisecondBuilder::new()),
        OdpsType::Timestamp | OdpsType::TimestampNtz => Box::new(TimestampNanosecondBuilder::new()),
        OdpsType::Array(item) => Box::new(ListBuilder::new(make_builder(item))),
        OdpsType::Map(k, v) => Box::new(MapBuilder::new(
            Some(MapFieldNames {
                entry: "entries".into(),
                key: "key".into(),
                value: "value".into(),
            }),
            make_builder(k),
            make_builder(v),
        )),
        OdpsType::Struct(fields) => {
            let arrow_fields = match ty.to_arrow() {
                arrow_schema::DataType::Struct(f) => f,
                _ => Default::default(),
            };
            Box::new(StructBuilder::new(
                arrow_fields,
                fields.iter().map(|(_, t)| make_builder(t)).collect(),
            ))
        }
    }
}

fn mismatch(ty: &OdpsType, v: &Value) -> OdpsError {
    OdpsError::invalid_argument(format!("value {v:?} does not fit type {ty}"))
}

fn downcast<T: 'static>(b: &mut dyn ArrayBuilder) -> Result<&mut T, OdpsError> {
    b.as_any_mut()
        .downcast_mut::<T>()
        .ok_or_else(|| OdpsError::internal("array builder of an unexpected type"))
}

fn append(b: &mut dyn ArrayBuilder, ty: &OdpsType, v: &Value) -> Result<(), OdpsError> {
    macro_rules! int {
        ($builder:ty, $t:ty) => {{
            let b = downcast::<$builder>(b)?;
            match v {
                Value::Null => b.append_null(),
                Value::Int(i) => b.append_value(<$t>::try_from(*i).map_err(|_| mismatch(ty, v))?),
                _ => return Err(mismatch(ty, v)),
            }
        }};
    }
    match ty {
        OdpsType::Boolean => {
            let b = downcast::<BooleanBuilder>(b)?;
            match v {
                Value::Null => b.append_null(),
                Value::Bool(x) => b.append_value(*x),
                _ => return Err(mismatch(ty, v)),
            }
        }
        OdpsType::TinyInt => int!(Int8Builder, i8),
        OdpsType::SmallInt => int!(Int16Builder, i16),
        OdpsType::Int => int!(Int32Builder, i32),
        OdpsType::BigInt => int!(Int64Builder, i64),
        OdpsType::Float => {
            let b = downcast::<Float32Builder>(b)?;
            match v {
                Value::Null => b.append_null(),
                Value::Float(x) => b.append_value(*x),
                _ => return Err(mismatch(ty, v)),
            }
        }
        OdpsType::Double => {
            let b = downcast::<Float64Builder>(b)?;
            match v {
                Value::Null => b.append_null(),
                Value::Double(x) => b.append_value(*x),
                _ => return Err(mismatch(ty, v)),
            }
        }
        OdpsType::Decimal(_) => {
            let (p, s) = ty.decimal_precision_scale();
            let unscaled = match v {
                Value::Null => None,
                Value::Decimal(text) => {
                    Some(parse_decimal(text, s).ok_or_else(|| mismatch(ty, v))?)
                }
                _ => return Err(mismatch(ty, v)),
            };
            if p > 38 {
                downcast::<Decimal256Builder>(b)?.append_option(unscaled.map(i256::from_i128));
            } else {
                downcast::<Decimal128Builder>(b)?.append_option(unscaled);
            }
        }
        OdpsType::String | OdpsType::Varchar(_) | OdpsType::Char(_) | OdpsType::Json => {
            let b = downcast::<StringBuilder>(b)?;
            match v {
                Value::Null => b.append_null(),
                Value::Bytes(x) => {
                    b.append_value(std::str::from_utf8(x).map_err(|_| mismatch(ty, v))?)
                }
                _ => return Err(mismatch(ty, v)),
            }
        }
        OdpsType::Binary => {
            let b = downcast::<BinaryBuilder>(b)?;
            match v {
                Value::Null => b.append_null(),
                Value::Bytes(x) => b.append_value(x),
                _ => return Err(mismatch(ty, v)),
            }
        }
        OdpsType::Date => {
            let b = downcast::<Date32Builder>(b)?;
            match v {
                Value::Null => b.append_null(),
                Value::Date(d) => b.append_value(i32::try_from(*d).map_err(|_| mismatch(ty, v))?),
                _ => return Err(mismatch(ty, v)),
            }
        }
        OdpsType::DateTime => {
            let b = downcast::<TimestampMillisecondBuilder>(b)?;
            match v {
                Value::Null => b.append_null(),
                Value::DateTime(ms) => b.append_value(*ms),
                _ => return Err(mismatch(ty, v)),
            }
        }
        OdpsType::Timestamp | OdpsType::TimestampNtz => {
            let b = downcast::<TimestampNanosecondBuilder>(b)?;
            match v {
                Value::Null => b.append_null(),
                Value::Timestamp(sec, nanos) => b.append_value(
                    sec.checked_mul(1_000_000_000)
                        .and_then(|n| n.checked_add(i64::from(*nanos)))
                        .ok_or_else(|| mismatch(ty, v))?,
                ),
                _ => return Err(mismatch(ty, v)),
            }
        }
        OdpsType::Array(item) => {
            let b = downcast::<ListBuilder<Box<dyn ArrayBuilder>>>(b)?;
            match v {
                Value::Null => b.append_null(),
                Value::Array(items) => {
                    for x in items {
                        append(b.values().as_mut(), item, x)?;
                    }
                    b.append(true);
                }
                _ => return Err(mismatch(ty, v)),
            }
        }
        OdpsType::Map(kt, vt) => {
            let b = downcast::<MapBuilder<Box<dyn ArrayBuilder>, Box<dyn ArrayBuilder>>>(b)?;
            match v {
                Value::Null => b
                    .append(false)
                    .map_err(|e| OdpsError::internal(e.to_string()))?,
                Value::Map(entries) => {
                    for (k, x) in entries {
                        if *k == Value::Null {
                            return Err(mismatch(ty, v));
                        }
                        append(b.keys().as_mut(), kt, k)?;
                        append(b.values().as_mut(), vt, x)?;
                    }
                    b.append(true)
                        .map_err(|e| OdpsError::internal(e.to_string()))?;
                }
                _ => return Err(mismatch(ty, v)),
            }
        }
        OdpsType::Struct(fields) => {
            let b = downcast::<StructBuilder>(b)?;
            match v {
                Value::Null => {
                    for (i, (_, ft)) in fields.iter().enumerate() {
                        let fb = b
                            .field_builders_mut()
                            .get_mut(i)
                            .ok_or_else(|| OdpsError::internal("struct builder field"))?;
                        append(fb.as_mut(), ft, &Value::Null)?;
                    }
                    b.append_null();
                }
                Value::Struct(items) if items.len() == fields.len() => {
                    for (i, ((_, ft), x)) in fields.iter().zip(items).enumerate() {
                        let fb = b
                            .field_builders_mut()
                            .get_mut(i)
                            .ok_or_else(|| OdpsError::internal("struct builder field"))?;
                        append(fb.as_mut(), ft, x)?;
                    }
                    b.append(true);
                }
                _ => return Err(mismatch(ty, v)),
            }
        }
    }
    Ok(())
}

/// Reads row `i` of an array of `ty`'s storage type.
pub fn from_array(ty: &OdpsType, array: &dyn Array, i: usize) -> Result<Value, OdpsError> {
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    let wrong = || OdpsError::internal(format!("stored array does not match type {ty}"));
    Ok(match ty {
        OdpsType::Boolean => Value::Bool(array.as_boolean_opt().ok_or_else(wrong)?.value(i)),
        OdpsType::TinyInt => Value::Int(
            array
                .as_primitive_opt::<Int8Type>()
                .ok_or_else(wrong)?
                .value(i)
                .into(),
        ),
        OdpsType::SmallInt => Value::Int(
            array
                .as_primitive_opt::<Int16Type>()
                .ok_or_else(wrong)?
                .value(i)
                .into(),
        ),
        OdpsType::Int => Value::Int(
            array
                .as_primitive_opt::<Int32Type>()
                .ok_or_else(wrong)?
                .value(i)
                .into(),
        ),
        OdpsType::BigInt => Value::Int(
            array
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(wrong)?
                .value(i),
        ),
        OdpsType::Float => Value::Float(
            array
                .as_primitive_opt::<Float32Type>()
                .ok_or_else(wrong)?
                .value(i),
        ),
        OdpsType::Double => Value::Double(
            array
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(wrong)?
                .value(i),
        ),
        OdpsType::Decimal(_) => {
            let (p, s) = ty.decimal_precision_scale();
            let unscaled = if p > 38 {
                let v = array
                    .as_primitive_opt::<Decimal256Type>()
                    .ok_or_else(wrong)?
                    .value(i);
                v.to_i128().ok_or_else(wrong)?
            } else {
                array
                    .as_primitive_opt::<Decimal128Type>()
                    .ok_or_else(wrong)?
                    .value(i)
            };
            Value::Decimal(format_decimal(unscaled, s))
        }
        OdpsType::String | OdpsType::Varchar(_) | OdpsType::Char(_) | OdpsType::Json => {
            Value::Bytes(
                array
                    .as_string_opt::<i32>()
                    .ok_or_else(wrong)?
                    .value(i)
                    .as_bytes()
                    .to_vec(),
            )
        }
        OdpsType::Binary => Value::Bytes(
            array
                .as_binary_opt::<i32>()
                .ok_or_else(wrong)?
                .value(i)
                .to_vec(),
        ),
        OdpsType::Date => Value::Date(
            array
                .as_primitive_opt::<Date32Type>()
                .ok_or_else(wrong)?
                .value(i)
                .into(),
        ),
        OdpsType::DateTime => Value::DateTime(
            array
                .as_primitive_opt::<TimestampMillisecondType>()
                .ok_or_else(wrong)?
                .value(i),
        ),
        OdpsType::Timestamp | OdpsType::TimestampNtz => {
            let ns = array
                .as_primitive_opt::<TimestampNanosecondType>()
                .ok_or_else(wrong)?
                .value(i);
            // Euclidean split keeps nanos in 0..1e9 for instants before 1970.
            Value::Timestamp(
                ns.div_euclid(1_000_000_000),
                ns.rem_euclid(1_000_000_000) as i32,
            )
        }
        OdpsType::Array(item) => {
            let list = array.as_list_opt::<i32>().ok_or_else(wrong)?.value(i);
            Value::Array(
                (0..list.len())
                    .map(|j| from_array(item, &list, j))
                    .collect::<Result<_, _>>()?,
            )
        }
        OdpsType::Map(kt, vt) => {
            let map = array.as_map_opt().ok_or_else(wrong)?;
            let entries = map.value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            Value::Map(
                (0..entries.len())
                    .map(|j| Ok((from_array(kt, keys, j)?, from_array(vt, values, j)?)))
                    .collect::<Result<_, OdpsError>>()?,
            )
        }
        OdpsType::Struct(fields) => {
            let st = array.as_struct_opt().ok_or_else(wrong)?;
            Value::Struct(
                fields
                    .iter()
                    .zip(st.columns())
                    .map(|((_, ft), col)| from_array(ft, col, i))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

/// Parses a plain decimal (`-12.5`, `3`, `1e3` refused) into an unscaled
/// integer at `scale`, rounding half away from zero when there are more digits.
pub fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let scale = usize::try_from(scale).ok()?;
    let mut unscaled: i128 = 0;
    for b in int_part.bytes() {
        unscaled = unscaled
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    let frac = frac_part.as_bytes();
    for k in 0..scale {
        let d = frac.get(k).map_or(0, |b| b - b'0');
        unscaled = unscaled.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    if frac.get(scale).is_some_and(|b| *b >= b'5') {
        unscaled = unscaled.checked_add(1)?;
    }
    Some(if negative { -unscaled } else { unscaled })
}

/// Prints an unscaled integer at `scale` as plain decimal text.
pub fn format_decimal(unscaled: i128, scale: i8) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::try_from(scale).unwrap_or(0);
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    format!("{sign}{int_part}.{frac_part}")
}

/// An all-NULL array of a column's storage type (columns added after a file
/// was written read as NULL).
pub fn null_array(ty: &OdpsType, len: usize) -> ArrayRef {
    arrow_array::new_null_array(&ty.to_arrow(), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_round_trips() {
        assert_eq!(parse_decimal("-12.345", 2), Some(-1235));
        assert_eq!(parse_decimal("7", 3), Some(7000));
        assert_eq!(parse_decimal("1e3", 0), None);
        assert_eq!(format_decimal(-1235, 2), "-12.35");
        assert_eq!(format_decimal(5, 3), "0.005");
        assert_eq!(format_decimal(42, 0), "42");
    }

    #[test]
    fn nested_values_round_trip_through_arrow() {
        let ty = OdpsType::parse("struct<a:array<int>,m:map<string,double>>").unwrap();
        let values = vec![
            Value::Struct(vec![
                Value::Array(vec![Value::Int(1), Value::Null]),
                Value::Map(vec![(Value::Bytes(b"k".to_vec()), Value::Double(1.5))]),
            ]),
            Value::Null,
        ];
        let array = to_array(&ty, &values).unwrap();
        assert_eq!(array.data_type(), &ty.to_arrow());
        for (i, v) in values.iter().enumerate() {
            assert_eq!(&from_array(&ty, &array, i).unwrap(), v);
        }
    }
}
