//! Compare the source with the merged destination, table by table.
//!
//! Both sides are keyed by the table's row key (primary key, else a NOT NULL
//! unique key, else every column) and compared row by row on every column, so
//! a difference names the keys that are missing, extra or different.
//!
//! One difference is expected and not counted: a column added during the
//! incremental phase ([`AddedColumn`]) is NULL in the destination for rows
//! whose last change came before the `ALTER TABLE` (MaxCompute does not
//! backfill), while the source shows its default for them. Such rows count
//! as equal when every other column is, and are reported in
//! [`TableReport::added_null`].
//!
//! Another is listed, not counted: a source STRING/BINARY value over the
//! destination's field size limit that landed as `[destination]
//! oversized_values` writes it, NULL or cut to the limit
//! ([`crate::oversized`]). Such rows count as equal when every other column
//! is, and are reported in [`TableReport::oversized`] with their keys.

use crate::error::Result;
use crate::merge::{MergeSpec, merge_ranked};
use crate::run::SyncedTable;
use crate::schema_history::AddedColumn;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_row::{OwnedRow, RowConverter, SortField};
use std::collections::HashMap;

/// How many differing keys a report lists per kind.
const SHOWN: usize = 10;

/// The outcome for one table.
#[derive(Clone, Debug, Default)]
pub struct TableReport {
    /// Source `db.table`.
    pub table: String,
    /// Rows in the source.
    pub source_rows: usize,
    /// Rows in the merged destination.
    pub destination_rows: usize,
    /// Keys in the source only (first few).
    pub missing: Vec<String>,
    /// Keys in the destination only (first few).
    pub extra: Vec<String>,
    /// Keys whose rows differ (first few).
    pub different: Vec<String>,
    /// Total counts of missing, extra and different keys.
    pub counts: (usize, usize, usize),
    /// Rows equal but for NULL in columns added after their last change.
    pub added_null: usize,
    /// Rows equal but for values over the destination's field size limit,
    /// written as NULL or cut to the limit.
    pub oversized: usize,
    /// Their keys, and the columns (first few).
    pub oversized_keys: Vec<String>,
}

impl TableReport {
    /// Whether the two sides are equal.
    pub fn is_equal(&self) -> bool {
        self.counts == (0, 0, 0)
    }
}

/// Compares `source` rows with the merge of `base` and `log` for table `t`;
/// `added` are the destination columns added during the incremental phase,
/// `field_limit` the destination's largest STRING/BINARY value in bytes.
///
/// # Errors
/// Arrow errors, or schema errors from [`merge_ranked`].
pub fn compare(
    t: &SyncedTable,
    meta: &crate::records::MetaColumns,
    source: &[RecordBatch],
    base: &[RecordBatch],
    log: &[RecordBatch],
    added: &[AddedColumn],
    field_limit: Option<usize>,
) -> Result<TableReport> {
    let key = t.dest_key();
    let (merged, winners) = merge_ranked(
        &t.base_schema,
        base,
        log,
        MergeSpec {
            meta,
            key: &key,
            as_of: None,
        },
    )?;
    let schema = &t.base_schema;
    let key_idx: Vec<usize> = if key.is_empty() {
        (0..schema.fields().len()).collect()
    } else {
        key.iter().filter_map(|k| schema.index_of(k).ok()).collect()
    };
    let all = RowConverter::new(
        schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect(),
    )?;
    let keys = RowConverter::new(
        key_idx
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect(),
    )?;
    let source: Vec<RecordBatch> = source
        .iter()
        .map(|b| crate::merge::project(schema, b))
        .collect::<Result<_>>()?;
    // key -> (whole row, key as shown, batch, row)
    type Index = HashMap<OwnedRow, (OwnedRow, String, usize, usize)>;
    let index = |batches: &[RecordBatch]| -> Result<Index> {
        let mut map = HashMap::new();
        for (n, b) in batches.iter().enumerate() {
            let k = keys.convert_columns(
                &key_idx
                    .iter()
                    .map(|&i| b.column(i).clone())
                    .collect::<Vec<_>>(),
            )?;
            let r = all.convert_columns(b.columns())?;
            let fmts = key_idx
                .iter()
                .map(|&i| ArrayFormatter::try_new(b.column(i).as_ref(), &FormatOptions::default()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            for row in 0..b.num_rows() {
                let shown = fmts
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                map.insert(k.row(row).owned(), (r.row(row).owned(), shown, n, row));
            }
        }
        Ok(map)
    };
    let src = index(&source)?;
    let dst = index(std::slice::from_ref(&merged))?;
    // Added columns: (index in the schema, first record id after the ALTER).
    let late: Vec<(usize, i64)> = added
        .iter()
        .filter_map(|a| {
            let i = schema.index_of(&a.column).ok()?;
            Some((i, i64::try_from(a.first_record_id).unwrap_or(i64::MAX)))
        })
        .collect();
    // Whether the rows are equal once the source row is taken as it lands:
    // NULL in the added columns the destination row, being older than
    // them, holds NULL in; values over the field size limit as the policy
    // wrote them. `Some((late, oversized columns))` when they are.
    let explained = |sb: usize,
                     sr: usize,
                     dr: usize,
                     dst_row: &OwnedRow|
     -> Result<Option<(bool, Vec<String>)>> {
        let winner = winners.get(dr).copied().unwrap_or(0);
        let null_late: Vec<usize> = late
            .iter()
            .filter(|(c, first)| winner < *first && merged.column(*c).is_null(dr))
            .map(|(c, _)| *c)
            .collect();
        let b = &source[sb];
        let mut over = Vec::new();
        let arrays: Vec<ArrayRef> = (0..schema.fields().len())
            .map(|j| {
                if null_late.contains(&j) {
                    return arrow_array::new_null_array(schema.field(j).data_type(), 1);
                }
                let landed = field_limit.and_then(|limit| {
                    crate::oversized::landed_as_policy(
                        b.column(j).as_ref(),
                        sr,
                        merged.column(j).as_ref(),
                        dr,
                        limit,
                    )
                });
                match landed {
                    Some(a) => {
                        over.push(schema.field(j).name().clone());
                        a
                    }
                    None => b.column(j).slice(sr, 1),
                }
            })
            .collect();
        if null_late.is_empty() && over.is_empty() {
            return Ok(None);
        }
        let r = all.convert_columns(&arrays)?;
        Ok((r.row(0) == dst_row.row()).then_some((!null_late.is_empty(), over)))
    };
    let mut report = TableReport {
        table: t.source_name.clone(),
        source_rows: source.iter().map(RecordBatch::num_rows).sum(),
        destination_rows: merged.num_rows(),
        ..TableReport::default()
    };
    for (k, (row, shown, sb, sr)) in &src {
        match dst.get(k) {
            None => note(&mut report.missing, &mut report.counts.0, shown),
            Some((other, _, _, dr)) if other != row => match explained(*sb, *sr, *dr, other)? {
                Some((late, over)) => {
                    report.added_null += usize::from(late);
                    if !over.is_empty() {
                        let listed = format!("{shown} ({})", over.join(", "));
                        note(&mut report.oversized_keys, &mut report.oversized, &listed);
                    }
                }
                None => note(&mut report.different, &mut report.counts.2, shown),
            },
            Some(_) => {}
        }
    }
    for (k, (_, shown, _, _)) in &dst {
        if !src.contains_key(k) {
            note(&mut report.extra, &mut report.counts.1, shown);
        }
    }
    Ok(report)
}

fn note(list: &mut Vec<String>, count: &mut usize, key: &str) {
    *count += 1;
    if list.len() < SHOWN {
        list.push(key.to_owned());
    }
}
