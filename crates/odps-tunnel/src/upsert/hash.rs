//! Routing a row to a bucket of an upsert session, with the hash the SDKs
//! use (pyodps `odps/tunnel/hasher.py`, Java `tunnel/hasher/*`), so rows of
//! one primary key always land in the same bucket.
//!
//! A row's hash is the wrapping `i32` sum of its key columns' hashes, in the
//! session's `hash_key` order, then `h ^ (h >> 8)` (arithmetic shift), which
//! clears bit 31: the bucket is `h % bucket_count`. A NULL key adds 0, as
//! pyodps does (Java refuses NULL keys; [`crate::upsert::UpsertSession`]
//! refuses them before hashing).
//!
//! Per type (default hasher): integers → `mix64(v)`; `float` → `mix64` of
//! its bits as a sign-extended `i32`; `double` → `mix64` of its bits;
//! `boolean` → two constants; text and binary → a byte hash of the UTF-8
//! bytes (pyodps; Java hashes a binary's `toString()`, so avoid binary
//! keys); `date` → `mix64(days × 86400)`; `datetime` → `mix64(epoch ms)`;
//! `timestamp` and `timestamp_ntz` → `mix64((seconds << 30) | nanos)`
//! with seconds floored as Java's `Instant` does (pyodps truncates toward
//! zero, so for instants before 1970 with a fraction of a second the two
//! SDKs disagree; we follow Java, which reads the wire's seconds and nanos
//! as they are); `decimal(p,s)` → the unscaled integer at scale `s`, as
//! `mix64(low 64 bits) + mix64(bits 64..127)` when `p > 18`, else `mix64`.
//!
//! # Example
//!
//! ```
//! use odps_tunnel::upsert::hash::{Hasher, bucket};
//!
//! // pyodps 0.13.2 `hash_value("default", "bigint", 1)`
//! assert_eq!(Hasher::Default.hash_i64(1), 357654460);
//! assert_eq!(Hasher::Default.hash_bytes("abc".as_bytes()), -317513893);
//! assert_eq!(bucket(Hasher::Default.finish(357654460), 16), 3);
//! ```

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimestampMillisecondType, TimestampNanosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use crate::types::{Column, OdpsType};

/// Which hash the session asks for (its `hasher` field).
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq)]
pub enum Hasher {
    /// `default`: a 64-bit mix and a one-at-a-time byte hash.
    #[default]
    Default,
    /// `legacy`: `(x >> 32) ^ x` and `h * 31 + b`.
    Legacy,
}

/// A key column type the hash does not cover.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("column {column}: type {ty} cannot be a hash key of an upsert session")]
pub struct UnsupportedKey {
    /// The column.
    pub column: String,
    /// Its type.
    pub ty: String,
}

impl Hasher {
    /// The hasher named by a session's `hasher` field, if known.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "default" => Some(Self::Default),
            "legacy" => Some(Self::Legacy),
            _ => None,
        }
    }

    /// The session's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Legacy => "legacy",
        }
    }

    /// The hash of a 64-bit integer (and of every type mapped onto one).
    pub fn hash_i64(self, v: i64) -> i32 {
        match self {
            Self::Default => {
                let mut x = (!v).wrapping_add(v.wrapping_shl(18));
                x ^= x >> 31;
                x = x.wrapping_mul(21);
                x ^= x >> 11;
                x = x.wrapping_add(x.wrapping_shl(6));
                x ^= x >> 22;
                x as i32
            }
            Self::Legacy => ((v >> 32) ^ v) as i32,
        }
    }

    /// The hash of text or bytes; each byte counts as a signed `i8`.
    pub fn hash_bytes(self, bytes: &[u8]) -> i32 {
        match self {
            Self::Default => {
                let mut h: i32 = 0;
                for &b in bytes {
                    h = h.wrapping_add(i32::from(b as i8));
                    h = h.wrapping_add(h.wrapping_shl(10));
                    h ^= h >> 6;
                }
                h = h.wrapping_add(h.wrapping_shl(3));
                h ^= h >> 11;
                h.wrapping_add(h.wrapping_shl(15))
            }
            Self::Legacy => bytes.iter().fold(0i32, |h, &b| {
                h.wrapping_mul(31).wrapping_add(i32::from(b as i8))
            }),
        }
    }

    /// The hash of a boolean (two fixed constants in both hashers).
    pub fn hash_bool(self, v: bool) -> i32 {
        if v { 0x172B_A9C7 } else { -0x3A59_CB12 }
    }

    /// The hash of a `timestamp`: seconds since the epoch (floored) and
    /// nanoseconds 0..=999,999,999 after them.
    pub fn hash_sec_nano(self, sec: i64, nano: i32) -> i32 {
        self.hash_i64(sec.wrapping_shl(30) | i64::from(nano))
    }

    /// The hash of a decimal given as its unscaled integer at the column's
    /// scale, for a column of precision `precision`.
    pub fn hash_decimal(self, unscaled: i128, precision: u8) -> i32 {
        if precision > 18 {
            self.hash_i64(unscaled as i64)
                .wrapping_add(self.hash_i64((unscaled >> 64) as i64))
        } else {
            self.hash_i64(unscaled as i64)
        }
    }

    /// The final step over the sum of the key hashes: never negative.
    pub fn finish(self, sum: i32) -> i32 {
        sum ^ (sum >> 8)
    }
}

/// The bucket of a row hash (from [`Hasher::finish`]) among `buckets`.
pub fn bucket(row_hash: i32, buckets: u32) -> u32 {
    (i64::from(row_hash).rem_euclid(i64::from(buckets.max(1)))) as u32
}

/// Hashes the key columns of batches laid out as a table's data columns.
#[derive(Clone, Debug)]
pub struct KeyHasher {
    hasher: Hasher,
    keys: Vec<(usize, OdpsType)>,
}

impl KeyHasher {
    /// A hasher of the columns named in `hash_key` (matched
    /// case-insensitively) among `columns`, the batch layout.
    ///
    /// # Errors
    ///
    /// [`UnsupportedKey`] for a key column that is missing or of a type with
    /// no hash (complex types, `json`, intervals).
    pub fn new(
        hasher: Hasher,
        columns: &[Column],
        hash_key: &[String],
    ) -> Result<Self, UnsupportedKey> {
        let keys = hash_key
            .iter()
            .map(|name| {
                let (i, c) = columns
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.name.eq_ignore_ascii_case(name))
                    .ok_or_else(|| UnsupportedKey {
                        column: name.clone(),
                        ty: "(missing)".into(),
                    })?;
                let ok = matches!(
                    c.ty,
                    OdpsType::Bigint
                        | OdpsType::Int
                        | OdpsType::Smallint
                        | OdpsType::Tinyint
                        | OdpsType::Double
                        | OdpsType::Float
                        | OdpsType::Decimal { .. }
                        | OdpsType::String
                        | OdpsType::Varchar(_)
                        | OdpsType::Char(_)
                        | OdpsType::Binary
                        | OdpsType::Boolean
                        | OdpsType::Date
                        | OdpsType::Datetime
                        | OdpsType::Timestamp
                        | OdpsType::TimestampNtz
                );
                if ok {
                    Ok((i, c.ty.clone()))
                } else {
                    Err(UnsupportedKey {
                        column: c.name.clone(),
                        ty: c.ty.to_string(),
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { hasher, keys })
    }

    /// The hasher in use.
    pub fn hasher(&self) -> Hasher {
        self.hasher
    }

    /// Indexes of the key columns in the batch layout, in hash order.
    pub fn key_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.keys.iter().map(|(i, _)| *i)
    }

    /// The row hash of every row of `batch`, a batch in the table's column
    /// order and Arrow types (timestamps as `Timestamp(ns)` or as
    /// seconds-and-nanoseconds structs).
    ///
    /// # Errors
    ///
    /// [`UnsupportedKey`] when a key column's Arrow type does not match its
    /// MaxCompute type.
    pub fn row_hashes(&self, batch: &RecordBatch) -> Result<Vec<i32>, UnsupportedKey> {
        let mut sums = vec![0i32; batch.num_rows()];
        for (index, ty) in &self.keys {
            let array = batch.column(*index);
            let name = batch.schema().field(*index).name().clone();
            for (row, sum) in sums.iter_mut().enumerate() {
                if array.is_null(row) {
                    continue;
                }
                let h = self
                    .value_hash(ty, array.as_ref(), row)
                    .ok_or_else(|| UnsupportedKey {
                        column: name.clone(),
                        ty: format!("{ty} held as Arrow {}", array.data_type()),
                    })?;
                *sum = sum.wrapping_add(h);
            }
        }
        Ok(sums.into_iter().map(|s| self.hasher.finish(s)).collect())
    }

    fn value_hash(&self, ty: &OdpsType, array: &dyn Array, row: usize) -> Option<i32> {
        let h = self.hasher;
        Some(match (ty, array.data_type()) {
            (OdpsType::Bigint, DataType::Int64) => {
                h.hash_i64(array.as_primitive::<Int64Type>().value(row))
            }
            (OdpsType::Int, DataType::Int32) => {
                h.hash_i64(array.as_primitive::<Int32Type>().value(row).into())
            }
            (OdpsType::Smallint, DataType::Int16) => {
                h.hash_i64(array.as_primitive::<Int16Type>().value(row).into())
            }
            (OdpsType::Tinyint, DataType::Int8) => {
                h.hash_i64(array.as_primitive::<Int8Type>().value(row).into())
            }
            (OdpsType::Float, DataType::Float32) => h.hash_i64(i64::from(
                array.as_primitive::<Float32Type>().value(row).to_bits() as i32,
            )),
            (OdpsType::Double, DataType::Float64) => {
                h.hash_i64(array.as_primitive::<Float64Type>().value(row).to_bits() as i64)
            }
            (OdpsType::Boolean, DataType::Boolean) => h.hash_bool(array.as_boolean().value(row)),
            (OdpsType::String | OdpsType::Varchar(_) | OdpsType::Char(_), DataType::Utf8) => {
                h.hash_bytes(array.as_string::<i32>().value(row).as_bytes())
            }
            (OdpsType::Binary, DataType::Binary) => {
                h.hash_bytes(array.as_binary::<i32>().value(row))
            }
            (OdpsType::Date, DataType::Date32) => {
                h.hash_i64(i64::from(array.as_primitive::<Date32Type>().value(row)) * 86_400)
            }
            (OdpsType::Datetime, DataType::Timestamp(TimeUnit::Millisecond, _)) => {
                h.hash_i64(array.as_primitive::<TimestampMillisecondType>().value(row))
            }
            (
                OdpsType::Timestamp | OdpsType::TimestampNtz,
                DataType::Timestamp(TimeUnit::Nanosecond, _),
            ) => {
                let ns = array.as_primitive::<TimestampNanosecondType>().value(row);
                h.hash_sec_nano(
                    ns.div_euclid(1_000_000_000),
                    ns.rem_euclid(1_000_000_000) as i32,
                )
            }
            (OdpsType::Timestamp | OdpsType::TimestampNtz, DataType::Struct(_)) => {
                let s = array.as_struct();
                let sec = s.column(0).as_primitive_opt::<Int64Type>()?.value(row);
                let nano = s.column(1).as_primitive_opt::<Int32Type>()?.value(row);
                h.hash_sec_nano(sec, nano)
            }
            (OdpsType::Decimal { .. }, DataType::Decimal128(p, _)) => {
                h.hash_decimal(array.as_primitive::<Decimal128Type>().value(row), *p)
            }
            (OdpsType::Decimal { .. }, DataType::Decimal256(p, _)) => {
                let (low, _) = array.as_primitive::<Decimal256Type>().value(row).to_parts();
                h.hash_decimal(low as i128, *p)
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from pyodps 0.13.2 `hash_value` (default hasher), as listed in
    /// the project's Delta-table notes; the pyodps cross test checks many more.
    #[test]
    fn matches_pyodps_vectors() {
        let h = Hasher::Default;
        assert_eq!(h.hash_i64(0), 0);
        assert_eq!(h.hash_i64(1), 357_654_460);
        assert_eq!(h.hash_i64(-1), 357_653_185);
        assert_eq!(h.hash_i64(123_456_789_012), 2_047_411_506);
        assert_eq!(h.hash_bytes(b"abc"), -317_513_893);
        assert_eq!(h.hash_bytes(b""), 0);
        assert_eq!(h.hash_bytes("中文".as_bytes()), -574_066_242);
        assert_eq!(h.hash_i64(1.5f64.to_bits() as i64), 356_777_983);
        assert_eq!(h.hash_bool(true), 388_737_479);
        assert_eq!(h.hash_decimal(1235, 10), -682_024_206);
        assert_eq!(
            h.hash_decimal(-1_500_000_000_000_000_000, 38),
            -1_067_082_850
        );
        let row = h.finish(h.hash_i64(42).wrapping_add(h.hash_bytes(b"alice")));
        assert_eq!(row, 2_129_151_659);
        assert_eq!((bucket(row, 16), bucket(row, 4)), (11, 3));
        let buckets: Vec<u32> = (1..=7)
            .map(|i| bucket(h.finish(h.hash_i64(i)), 16))
            .collect();
        assert_eq!(buckets, [3, 14, 9, 12, 13, 10, 14]);
    }
}
