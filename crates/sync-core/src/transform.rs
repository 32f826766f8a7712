//! Row filters and transforms between the source and the sink (DTS's ETL
//! step), applied alike to the snapshot's rows and to binlog row images.
//!
//! A [`Transform`] sees rows of one table as an Arrow batch under the
//! destination schema (`t_base`'s columns) and returns them, possibly with
//! changed values, plus which of them to keep. The task file's
//! `filter = "…"` ([`crate::filter`]) is applied first, then the embedder's
//! transform ([`crate::run::TaskRunner::with_transform`]).
//!
//! In `t_log`, an UPDATE is two records; when only one image is kept the
//! change is rewritten so that merging still gives the filtered source: a
//! row that stops matching becomes a DELETE of its before image, one that
//! starts matching an INSERT of its after image.
//!
//! ```
//! use arrow_array::{BooleanArray, RecordBatch};
//! use sync_core::transform::{Transform, Transformed};
//! use sync_core::run::SyncedTable;
//!
//! /// Keeps only the rows of `shop.orders` whose `total` is not NULL.
//! struct WithTotal;
//!
//! impl Transform for WithTotal {
//!     fn apply(&self, table: &SyncedTable, rows: RecordBatch) -> sync_core::Result<Transformed> {
//!         let keep: BooleanArray = match (table.source_name.as_str(), rows.column_by_name("total")) {
//!             ("shop.orders", Some(total)) => (0..rows.num_rows()).map(|i| Some(total.is_valid(i))).collect(),
//!             _ => (0..rows.num_rows()).map(|_| Some(true)).collect(),
//!         };
//!         Ok(Transformed { rows, keep })
//!     }
//! }
//! # use arrow_array::Array;
//! ```

use crate::error::{Error, Result};
use crate::naming::SyncedTable;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use std::sync::Arc;

/// What a transform made of a batch: the rows (same schema, same number of
/// rows, values possibly changed) and which of them to keep.
#[derive(Clone, Debug)]
pub struct Transformed {
    /// The rows, under the batch's schema.
    pub rows: RecordBatch,
    /// One entry per row: keep it (NULL counts as false).
    pub keep: BooleanArray,
}

/// A map-and-filter step over the rows of each synced table.
pub trait Transform: Send + Sync {
    /// Transforms `rows` of `table` (its `t_base` columns).
    ///
    /// # Errors
    /// Any error stops the task (nothing of the batch is written).
    fn apply(&self, table: &SyncedTable, rows: RecordBatch) -> Result<Transformed>;
}

/// The task file's filter of the table, then the embedder's transform.
pub(crate) fn shape_rows(
    t: &SyncedTable,
    transform: Option<&dyn Transform>,
    rows: RecordBatch,
) -> Result<Transformed> {
    let mut out = Transformed {
        keep: match &t.filter {
            Some(f) => f.evaluate(&rows),
            None => BooleanArray::from(vec![true; rows.num_rows()]),
        },
        rows,
    };
    if let Some(tr) = transform {
        let next = tr.apply(t, out.rows)?;
        if next.rows.num_rows() != out.keep.len()
            || next.keep.len() != out.keep.len()
            || next.rows.schema() != t.base_schema
        {
            return Err(Error::Transform(format!(
                "the transform of {} returned {} rows and {} keep flags for {} rows, or another schema: \
                 a transform keeps the rows' count and schema and says which to drop",
                t.source_name,
                next.rows.num_rows(),
                next.keep.len(),
                out.keep.len()
            )));
        }
        out.keep = arrow_arith_and(&out.keep, &next.keep);
        out.rows = next.rows;
    }
    Ok(out)
}

/// Whether the table needs shaping at all.
pub(crate) fn shapes(t: &SyncedTable, transform: Option<&dyn Transform>) -> bool {
    t.filter.is_some() || transform.is_some()
}

/// `t_base` rows after the filter and transform.
pub(crate) fn shape_base(
    t: &SyncedTable,
    transform: Option<&dyn Transform>,
    rows: RecordBatch,
) -> Result<RecordBatch> {
    if !shapes(t, transform) {
        return Ok(rows);
    }
    let out = shape_rows(t, transform, rows)?;
    Ok(arrow_select::filter::filter_record_batch(
        &out.rows, &out.keep,
    )?)
}

/// `t_log` records after the filter and transform, UPDATE pairs rewritten
/// where only one image is kept. `log` has the five metadata columns first
/// (record id, operation flag, timestamp, before flag, after flag).
pub(crate) fn shape_log(
    t: &SyncedTable,
    transform: Option<&dyn Transform>,
    log: RecordBatch,
) -> Result<RecordBatch> {
    if !shapes(t, transform) {
        return Ok(log);
    }
    const META: usize = 5;
    let business = RecordBatch::try_new(t.base_schema.clone(), log.columns()[META..].to_vec())?;
    let out = shape_rows(t, transform, business)?;
    let ops = log.column(1).as_string::<i32>();
    let before = log.column(3).as_string::<i32>();
    let kept = |i: usize| out.keep.is_valid(i) && out.keep.value(i);
    let mut keep = Vec::with_capacity(log.num_rows());
    let mut new_ops: Vec<&str> = Vec::with_capacity(log.num_rows());
    let mut i = 0;
    while i < log.num_rows() {
        let op = ops.value(i);
        // An update's before image is followed by its after image.
        if op == "U" && before.value(i) == "Y" && i + 1 < log.num_rows() {
            let (b, a) = (kept(i), kept(i + 1));
            let (op_b, op_a) = match (b, a) {
                (true, false) => ("D", "U"),
                (false, true) => ("U", "I"),
                _ => ("U", "U"),
            };
            keep.extend([b, a]);
            new_ops.extend([op_b, op_a]);
            i += 2;
        } else {
            keep.push(kept(i));
            new_ops.push(op);
            i += 1;
        }
    }
    let mut columns: Vec<ArrayRef> = log.columns()[..META].to_vec();
    columns[1] = Arc::new(StringArray::from(new_ops));
    columns.extend(out.rows.columns().iter().cloned());
    let rebuilt = RecordBatch::try_new(log.schema(), columns)?;
    Ok(arrow_select::filter::filter_record_batch(
        &rebuilt,
        &BooleanArray::from(keep),
    )?)
}

/// Element-wise AND with NULL as false.
fn arrow_arith_and(a: &BooleanArray, b: &BooleanArray) -> BooleanArray {
    (0..a.len())
        .map(|i| Some(a.is_valid(i) && a.value(i) && b.is_valid(i) && b.value(i)))
        .collect()
}
