//! Compare the source with the merged destination, table by table.
//!
//! Both sides are keyed by the table's row key (primary key, else a NOT NULL
//! unique key, else every column) and compared row by row on every column, so
//! a difference names the keys that are missing, extra or different.

use crate::error::Result;
use crate::merge::{MergeSpec, merge};
use crate::run::SyncedTable;
use arrow_array::RecordBatch;
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
}

impl TableReport {
    /// Whether the two sides are equal.
    pub fn is_equal(&self) -> bool {
        self.counts == (0, 0, 0)
    }
}

/// Compares `source` rows with the merge of `base` and `log` for table `t`.
///
/// # Errors
/// Arrow errors, or schema errors from [`merge`].
pub fn compare(
    t: &SyncedTable,
    meta: &crate::records::MetaColumns,
    source: &[RecordBatch],
    base: &[RecordBatch],
    log: &[RecordBatch],
) -> Result<TableReport> {
    let key = t.dest_key();
    let merged = merge(
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
    let index = |batches: &[RecordBatch]| -> Result<HashMap<OwnedRow, (OwnedRow, String)>> {
        let mut map = HashMap::new();
        for b in batches {
            let b = crate::merge::project(schema, b)?;
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
                map.insert(k.row(row).owned(), (r.row(row).owned(), shown));
            }
        }
        Ok(map)
    };
    let src = index(source)?;
    let dst = index(std::slice::from_ref(&merged))?;
    let mut report = TableReport {
        table: t.source_name.clone(),
        source_rows: source.iter().map(RecordBatch::num_rows).sum(),
        destination_rows: merged.num_rows(),
        ..TableReport::default()
    };
    for (k, (row, shown)) in &src {
        match dst.get(k) {
            None => note(&mut report.missing, &mut report.counts.0, shown),
            Some((other, _)) if other != row => {
                note(&mut report.different, &mut report.counts.2, shown)
            }
            Some(_) => {}
        }
    }
    for (k, (_, shown)) in &dst {
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
