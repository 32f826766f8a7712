//! What a `t_log` holds, for the exactly-once checks: every record's
//! `(record_id, before_flag)`, and which of them occur more than once.
//!
//! An UPDATE is two records sharing a `record_id` (before image `Y`, after
//! image `N`), so the pair identifies a record; a replay after a crash that
//! doubled a record shows up as a repeated pair.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
//! use sync_testkit::records::{BEFORE_FLAG, RECORD_ID, doubled, log_record_keys};
//! let batch = RecordBatch::try_from_iter([
//!     (RECORD_ID, Arc::new(Int64Array::from(vec![1, 1, 2, 2])) as ArrayRef),
//!     (BEFORE_FLAG, Arc::new(StringArray::from(vec!["Y", "N", "N", "N"])) as ArrayRef),
//! ])?;
//! let keys = log_record_keys(&[batch])?;
//! assert_eq!(doubled(&keys), vec![(2, "N".to_owned())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use std::collections::BTreeMap;

/// The `record_id` column under the default naming rule (`"new"`).
pub const RECORD_ID: &str = "new_dts_sync_record_id";
/// The `before_flag` column under the default naming rule.
pub const BEFORE_FLAG: &str = "new_dts_sync_before_flag";

/// Every `(record_id, before_flag)` of `batches` (read from a `t_log`), in
/// order.
///
/// # Errors
/// A message naming the column when one is missing or of another type.
pub fn log_record_keys(batches: &[RecordBatch]) -> Result<Vec<(i64, String)>, String> {
    let mut out = Vec::new();
    for b in batches {
        let ids = b
            .column_by_name(RECORD_ID)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| format!("no BIGINT column {RECORD_ID}"))?;
        let before = b
            .column_by_name(BEFORE_FLAG)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| format!("no STRING column {BEFORE_FLAG}"))?;
        for i in 0..b.num_rows() {
            out.push((ids.value(i), before.value(i).to_owned()));
        }
    }
    Ok(out)
}

/// The keys that occur more than once, each listed once, in key order.
pub fn doubled(keys: &[(i64, String)]) -> Vec<(i64, String)> {
    let mut counts: BTreeMap<&(i64, String), usize> = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k.clone())
        .collect()
}
