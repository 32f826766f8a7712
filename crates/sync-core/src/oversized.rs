//! Values the destination cannot hold at all: a STRING or BINARY value over
//! MaxCompute's field size limit (8 MiB: every upload session reports it as
//! `MaxFieldSize`), e.g. a 30 MB BLOB or LONGTEXT.
//!
//! `[destination] oversized_values` decides what happens to one
//! ([`OversizedPolicy`]):
//!
//! * `"stop"` (the default): the task stops before the unit holding it is
//!   written, with an error naming the table, the row key and the column
//!   ([`Error::OversizedValue`]); nothing is lost, and after the policy is
//!   changed the next run goes on from there.
//! * `"null"`: the value lands as NULL.
//! * `"truncate"`: the value lands cut to the limit (text at the last whole
//!   UTF-8 character within it).
//!
//! The rule runs on every `t_base` and `t_log` batch before the sink gets
//! it, the same way on a redo, so a unit stays idempotent. Each occurrence
//! is logged (WARN, with table, key, column and size), counted in `status`
//! and `/metrics` (`sync_oversized_values_total{table,column}`) once its
//! unit is committed, and `verify` lists the rows whose only difference
//! from the source is such a value, written as NULL or cut to the limit.
//! A destination without a limit (the local warehouse) never applies it.

use crate::error::{Error, Result};
use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::warn;

/// What to write for a value over the destination's field size limit.
#[derive(Clone, Copy, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OversizedPolicy {
    /// Stop the task before the unit holding it is written.
    #[default]
    Stop,
    /// Write NULL instead.
    Null,
    /// Write the value cut to the limit.
    Truncate,
}

impl OversizedPolicy {
    /// The task file's name of the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Null => "null",
            Self::Truncate => "truncate",
        }
    }
}

/// The destination's limit and the policy for values over it.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct OversizedRule {
    /// Largest STRING/BINARY value in bytes.
    pub limit: usize,
    /// What to write for a larger one.
    pub policy: OversizedPolicy,
}

/// One value over the limit.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Occurrence {
    /// Source table, `db.table`.
    pub table: String,
    /// Destination table (`t_base` or `t_log`).
    pub destination: String,
    /// The row key as `column=value` pairs (or the row's place in its
    /// batch, for a table without a key).
    pub key: String,
    /// Destination column.
    pub column: String,
    /// Size of the source value in bytes.
    pub bytes: u64,
}

/// Text `s` cut to at most `limit` bytes, at a character boundary.
fn text_prefix(s: &str, limit: usize) -> &str {
    let mut end = limit.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The value offsets of a column the rule covers (STRING and BINARY);
/// `None` for other types.
fn value_offsets(array: &dyn Array) -> Option<&[i32]> {
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value_offsets()),
        DataType::Binary => Some(array.as_binary::<i32>().value_offsets()),
        _ => None,
    }
}

/// The rule, for the value at `row` spanning `offsets[row]..offsets[row + 1]`:
/// its size when it is not NULL and over `limit`.
fn over_limit(array: &dyn Array, offsets: &[i32], row: usize, limit: usize) -> Option<usize> {
    let len = usize::try_from(offsets.get(row + 1)? - offsets.get(row)?).unwrap_or(usize::MAX);
    (len > limit && !array.is_null(row)).then_some(len)
}

/// Where the value of `array` at `row` is over `limit`: its size.
fn oversized_at(array: &dyn Array, row: usize, limit: usize) -> Option<usize> {
    over_limit(array, value_offsets(array)?, row, limit)
}

/// Whether `dest` (a destination value) is what a policy other than stop
/// writes for the source value `source` at the same rows: NULL, or the
/// source cut to `limit`. `None` when the source value is within the limit.
pub(crate) fn landed_as_policy(
    source: &dyn Array,
    sr: usize,
    dest: &dyn Array,
    dr: usize,
    limit: usize,
) -> Option<ArrayRef> {
    oversized_at(source, sr, limit)?;
    if dest.is_null(dr) {
        return Some(arrow_array::new_null_array(source.data_type(), 1));
    }
    Some(match source.data_type() {
        DataType::Utf8 => Arc::new(arrow_array::StringArray::from(vec![text_prefix(
            source.as_string::<i32>().value(sr),
            limit,
        )])),
        _ => {
            let b = source.as_binary::<i32>().value(sr);
            Arc::new(arrow_array::BinaryArray::from(vec![
                &b[..limit.min(b.len())],
            ]))
        }
    })
}

/// The key of `row` as `a=1, b=x`; the row's place when `key` is empty.
fn key_of(batch: &RecordBatch, key: &[&str], row: usize) -> String {
    if key.is_empty() {
        return format!("(no row key: row {row} of its batch)");
    }
    key.iter()
        .map(|k| {
            let shown = batch
                .column_by_name(k)
                .and_then(|c| {
                    ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default())
                        .ok()
                        .map(|f| f.value(row).to_string())
                })
                .unwrap_or_default();
            format!("{k}={shown}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies `rule` to a batch of `destination` (a table of source `table`,
/// row key `key` by destination names): the batch as it may be written,
/// and every value over the limit (logged here).
///
/// # Errors
/// [`Error::OversizedValue`] for the first such value under
/// [`OversizedPolicy::Stop`]; Arrow errors.
pub fn apply(
    rule: &OversizedRule,
    table: &str,
    destination: &str,
    key: &[&str],
    batch: RecordBatch,
) -> Result<(RecordBatch, Vec<Occurrence>)> {
    let over = |row: usize, column: usize, bytes: usize| Occurrence {
        table: table.to_owned(),
        destination: destination.to_owned(),
        key: key_of(&batch, key, row),
        column: batch.schema().field(column).name().clone(),
        bytes: bytes as u64,
    };
    if rule.policy == OversizedPolicy::Stop {
        return match first_oversized(rule.limit, &batch) {
            None => Ok((batch, Vec::new())),
            Some((row, column, bytes)) => {
                let o = over(row, column, bytes);
                Err(Error::OversizedValue {
                    table: o.table,
                    key: o.key,
                    column: o.column,
                    bytes: o.bytes,
                    limit: rule.limit as u64,
                })
            }
        };
    }
    let (out, found) = rewrite_batch(rule, batch.clone())?;
    let found: Vec<Occurrence> = found
        .into_iter()
        .map(|o| over(o.row, o.column, o.bytes))
        .collect();
    for o in &found {
        warn!(
            table,
            destination,
            key = %o.key,
            column = %o.column,
            bytes = o.bytes,
            limit = rule.limit,
            policy = rule.policy.as_str(),
            "a value over the destination's field size limit is written {}",
            if rule.policy == OversizedPolicy::Null {
                "as NULL"
            } else {
                "cut to the limit"
            }
        );
    }
    Ok((out, found))
}

/// The rows of a STRING/BINARY column with a value over `limit`, with its
/// size; empty for other types. A column whose values sum to at most
/// `limit` bytes (nearly always) is judged from two offsets.
fn oversized_rows(array: &dyn Array, limit: usize) -> Vec<(usize, usize)> {
    let Some(offsets) = value_offsets(array) else {
        return Vec::new();
    };
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else {
        return Vec::new();
    };
    if usize::try_from(last - first).unwrap_or(usize::MAX) <= limit {
        return Vec::new();
    }
    (0..array.len())
        .filter_map(|row| over_limit(array, offsets, row, limit).map(|len| (row, len)))
        .collect()
}

/// The first value of `batch` over `limit`: `(row, column, bytes)`.
fn first_oversized(limit: usize, batch: &RecordBatch) -> Option<(usize, usize, usize)> {
    batch.columns().iter().enumerate().find_map(|(i, array)| {
        oversized_rows(array.as_ref(), limit)
            .first()
            .map(|&(row, bytes)| (row, i, bytes))
    })
}

/// Where a value over the limit is in a batch.
#[derive(Clone, Copy, Debug, Eq, Ord, PartialEq, PartialOrd)]
pub struct OverLimit {
    /// Row index.
    pub row: usize,
    /// Column index.
    pub column: usize,
    /// Size of the value in bytes.
    pub bytes: usize,
}

/// `batch` with every value over the limit written as `rule`'s policy
/// writes it (NULL, or cut; [`OversizedPolicy::Stop`] changes nothing), and
/// where those values are, without logging.
///
/// # Errors
/// Arrow errors.
pub fn rewrite_batch(
    rule: &OversizedRule,
    batch: RecordBatch,
) -> Result<(RecordBatch, Vec<OverLimit>)> {
    let mut found = Vec::new();
    if rule.policy == OversizedPolicy::Stop {
        return Ok((batch, found));
    }
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (i, array) in batch.columns().iter().enumerate() {
        let rows = oversized_rows(array.as_ref(), rule.limit);
        if rows.is_empty() {
            continue;
        }
        found.extend(rows.iter().map(|&(row, bytes)| OverLimit {
            row,
            column: i,
            bytes,
        }));
        columns[i] = rewrite(array.as_ref(), &rows, rule);
    }
    if found.is_empty() {
        return Ok((batch, found));
    }
    found.sort_unstable();
    Ok((RecordBatch::try_new(batch.schema(), columns)?, found))
}

/// A copy of `array` with the values at `rows` replaced per the policy
/// (the replaced bytes are not carried along).
fn rewrite(array: &dyn Array, rows: &[(usize, usize)], rule: &OversizedRule) -> ArrayRef {
    let over = |r: usize| rows.binary_search_by_key(&r, |&(row, _)| row).is_ok();
    let null = rule.policy == OversizedPolicy::Null;
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            let mut b = StringBuilder::with_capacity(a.len(), 0);
            for r in 0..a.len() {
                if a.is_null(r) || (null && over(r)) {
                    b.append_null();
                } else if over(r) {
                    b.append_value(text_prefix(a.value(r), rule.limit));
                } else {
                    b.append_value(a.value(r));
                }
            }
            Arc::new(b.finish())
        }
        _ => {
            let a = array.as_binary::<i32>();
            let mut b = BinaryBuilder::with_capacity(a.len(), 0);
            for r in 0..a.len() {
                if a.is_null(r) || (null && over(r)) {
                    b.append_null();
                } else if over(r) {
                    let v = a.value(r);
                    b.append_value(&v[..rule.limit.min(v.len())]);
                } else {
                    b.append_value(a.value(r));
                }
            }
            Arc::new(b.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{BinaryArray, Int64Array, StringArray};

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            (
                "t",
                Arc::new(StringArray::from(vec![Some("ok"), Some("ééé"), None])),
            ),
            (
                "b",
                Arc::new(BinaryArray::from(vec![
                    Some(&b"123456"[..]),
                    Some(&b"12"[..]),
                    None,
                ])),
            ),
        ])
        .expect("batch")
    }

    fn rule(policy: OversizedPolicy) -> OversizedRule {
        OversizedRule { limit: 5, policy }
    }

    #[test]
    fn the_writers_and_verify_judge_each_value_alike() {
        // Whole columns and a slice (offsets not starting at 0).
        let batch = batch();
        for b in [batch.clone(), batch.slice(1, 2)] {
            for column in b.columns() {
                let per_column = oversized_rows(column.as_ref(), 5);
                let per_value: Vec<(usize, usize)> = (0..b.num_rows())
                    .filter_map(|row| oversized_at(column.as_ref(), row, 5).map(|n| (row, n)))
                    .collect();
                assert_eq!(per_column, per_value);
            }
        }
        assert_eq!(oversized_rows(batch.column(1).as_ref(), 5), vec![(1, 6)]);
        assert_eq!(oversized_rows(batch.column(2).as_ref(), 5), vec![(0, 6)]);
    }

    #[test]
    fn stop_names_table_key_and_column() {
        let err = apply(
            &rule(OversizedPolicy::Stop),
            "db.t",
            "t_base",
            &["id"],
            batch(),
        )
        .expect_err("stops")
        .to_string();
        assert!(
            err.contains("db.t") && err.contains("id=2") && err.contains("`t`"),
            "{err}"
        );
        assert!(err.contains("oversized_values"), "{err}");
    }

    #[test]
    fn null_and_truncate_rewrite_only_the_values_over_the_limit() {
        let (out, found) = apply(
            &rule(OversizedPolicy::Null),
            "db.t",
            "t_base",
            &["id"],
            batch(),
        )
        .expect("null");
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].key.as_str(), found[0].bytes), ("id=1", 6));
        assert_eq!(
            (found[1].key.as_str(), found[1].column.as_str()),
            ("id=2", "t")
        );
        let t = out.column(1).as_string::<i32>();
        assert_eq!((t.value(0), t.is_null(1), t.is_null(2)), ("ok", true, true));
        let b = out.column(2).as_binary::<i32>();
        assert!(b.is_null(0) && b.value(1) == b"12" && b.is_null(2));

        let (out, found) = apply(
            &rule(OversizedPolicy::Truncate),
            "db.t",
            "t_log",
            &[],
            batch(),
        )
        .expect("truncate");
        assert_eq!(found[1].key, "(no row key: row 1 of its batch)");
        let t = out.column(1).as_string::<i32>();
        // Six bytes of "ééé" cut to five: two whole characters.
        assert_eq!(t.value(1), "éé");
        assert_eq!(out.column(2).as_binary::<i32>().value(0), b"12345");
        // Nothing over the limit: the very same batch.
        let small = batch().slice(2, 1);
        let (same, none) = apply(
            &rule(OversizedPolicy::Stop),
            "db.t",
            "t_base",
            &["id"],
            small.clone(),
        )
        .expect("fits");
        assert!(none.is_empty() && same == small);
    }

    #[test]
    fn verify_accepts_null_or_the_prefix() {
        let src = StringArray::from(vec!["ééé"]);
        let null = StringArray::from(vec![None::<&str>]);
        let cut = StringArray::from(vec!["éé"]);
        assert!(landed_as_policy(&src, 0, &null, 0, 5).is_some_and(|a| a.is_null(0)));
        let want = landed_as_policy(&src, 0, &cut, 0, 5).expect("over");
        assert_eq!(want.as_string::<i32>().value(0), "éé");
        assert!(landed_as_policy(&cut, 0, &cut, 0, 5).is_none());
    }
}
