//! Compare the source with the merged destination, table by table.
//!
//! Both sides are keyed by the table's row key (primary key, else a NOT NULL
//! unique key) and compared row by row on every column, so a difference
//! names the keys that are missing, extra or different. A table without a
//! key is compared as a multiset of whole rows: each copy in the source is
//! paired with one equal copy in the destination, and the copies left over
//! are missing or extra (two identical source rows need two identical
//! destination rows). Either way the counts add up:
//! `source_rows = same + added_null + oversized + different + missing` and
//! `destination_rows = same + added_null + oversized + different + extra`.
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
//! oversized_values` writes it ([`crate::oversized`]): NULL or cut to the
//! limit (either, for a table with a key: the policy may have changed
//! between runs; the task file's policy, for one without). Such rows count
//! as equal when every other column is, and are reported in
//! [`TableReport::oversized`] with their keys and columns.

use crate::error::Result;
use crate::merge::{MergeSpec, late_columns, merge_ranked, nulled_row, row_converter};
use crate::oversized::{OversizedPolicy, OversizedRule};
use crate::records::RecordIds;
use crate::run::SyncedTable;
use crate::schema_history::AddedColumn;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_row::{OwnedRow, RowConverter, SortField};
use std::collections::HashMap;
use std::sync::Arc;

/// How many differing keys a report lists per kind.
const SHOWN: usize = 10;

/// The outcome for one table (serialized as `sync-cli verify --json` prints it).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TableReport {
    /// Source `db.table`.
    pub table: String,
    /// Rows in the source.
    pub source_rows: usize,
    /// Rows in the merged destination.
    pub destination_rows: usize,
    /// The table has no key: compared as a multiset of whole rows, and
    /// `missing` and `extra` list whole rows.
    pub keyless: bool,
    /// Keys in the source only (first few).
    pub missing: Vec<String>,
    /// Keys in the destination only (first few).
    pub extra: Vec<String>,
    /// Keys whose rows differ (first few).
    pub different: Vec<String>,
    /// Total counts of missing, extra and different keys (rows, without a key;
    /// none differ there).
    pub counts: (usize, usize, usize),
    /// Rows equal on every column.
    pub same: usize,
    /// Rows equal but for NULL in columns added after their last change.
    pub added_null: usize,
    /// Rows equal but for values over the destination's field size limit,
    /// written as NULL or cut to the limit (`[destination] oversized_values`).
    pub oversized: usize,
    /// Their keys and those columns (first few).
    pub oversized_keys: Vec<String>,
}

impl TableReport {
    /// Whether the two sides are equal.
    pub fn is_equal(&self) -> bool {
        self.counts == (0, 0, 0)
    }

    /// Whether every row is accounted for once on each side:
    /// `source_rows = same + added_null + oversized + different + missing`
    /// and `destination_rows = same + added_null + oversized + different + extra`.
    pub fn counts_add_up(&self) -> bool {
        let (missing, extra, different) = self.counts;
        let paired = self.same + self.added_null + self.oversized + different;
        self.source_rows == paired + missing && self.destination_rows == paired + extra
    }
}

/// Compares `source` rows with the merge of `base` and `log` for table `t`;
/// `added` are the destination columns added during the incremental phase,
/// `oversized` the destination's field size limit and the task's policy
/// for values over it (`None`: no limit).
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
    oversized: Option<OversizedRule>,
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
            added,
        },
    )?;
    let schema = &t.base_schema;
    let source: Vec<RecordBatch> = source
        .iter()
        .map(|b| crate::merge::project(schema, b))
        .collect::<Result<_>>()?;
    let mut report = TableReport {
        table: t.source_name.clone(),
        source_rows: source.iter().map(RecordBatch::num_rows).sum(),
        destination_rows: merged.num_rows(),
        keyless: key.is_empty(),
        ..TableReport::default()
    };
    if key.is_empty() {
        // Without a key, rows pair up whole: the source as the task file's
        // policy writes values over the limit.
        let mut rewritten = HashMap::new();
        let source = match oversized.filter(|r| r.policy != OversizedPolicy::Stop) {
            None => source,
            Some(rule) => source
                .into_iter()
                .enumerate()
                .map(|(n, b)| {
                    let (b, found) = crate::oversized::rewrite_batch(&rule, b)?;
                    for o in found {
                        rewritten
                            .entry((n, o.row))
                            .or_insert_with(Vec::new)
                            .push(schema.field(o.column).name().clone());
                    }
                    Ok(b)
                })
                .collect::<Result<Vec<_>>>()?,
        };
        compare_multiset(
            &mut report,
            schema,
            &source,
            &merged,
            &winners,
            added,
            &rewritten,
        )?;
        return Ok(report);
    }
    let key_idx: Vec<usize> = key.iter().filter_map(|k| schema.index_of(k).ok()).collect();
    let all = row_converter(schema)?;
    let keys = RowConverter::new(
        key_idx
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect(),
    )?;
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
    let late = late_columns(schema, added);
    let limit = oversized.map(|r| r.limit);
    // Whether the rows are equal once the source row is taken as it lands:
    // NULL in the added columns the destination row, being older than
    // them, holds NULL in; values over the field size limit as NULL or cut
    // (whichever the destination holds). `Some(columns over the limit)`
    // when they are.
    let explained =
        |sb: usize, sr: usize, dr: usize, dst_row: &OwnedRow| -> Result<Option<Vec<String>>> {
            let nulled = null_late(&late, &merged, &winners, dr);
            let b = &source[sb];
            let over: Vec<(usize, ArrayRef)> = match limit {
                None => Vec::new(),
                Some(limit) => (0..schema.fields().len())
                    .filter(|j| !nulled.iter().any(|&(n, _)| n == *j))
                    .filter_map(|j| {
                        crate::oversized::landed_as_policy(
                            b.column(j).as_ref(),
                            sr,
                            merged.column(j).as_ref(),
                            dr,
                            limit,
                        )
                        .map(|a| (j, a))
                    })
                    .collect(),
            };
            if nulled.is_empty() && over.is_empty() {
                return Ok(None);
            }
            let landed = if over.is_empty() {
                nulled_row(&all, b, sr, &nulled)?
            } else {
                let arrays: Vec<ArrayRef> = (0..b.num_columns())
                    .map(|j| match over.iter().find(|(o, _)| *o == j) {
                        Some((_, a)) => Arc::clone(a),
                        None if nulled.iter().any(|&(n, _)| n == j) => {
                            arrow_array::new_null_array(b.column(j).data_type(), 1)
                        }
                        None => b.column(j).slice(sr, 1),
                    })
                    .collect();
                all.convert_columns(&arrays)?.row(0).owned()
            };
            Ok((landed == *dst_row).then(|| {
                over.iter()
                    .map(|(j, _)| schema.field(*j).name().clone())
                    .collect()
            }))
        };
    for (k, (row, shown, sb, sr)) in &src {
        match dst.get(k) {
            None => note(&mut report.missing, &mut report.counts.0, shown),
            Some((other, _, _, dr)) if other != row => match explained(*sb, *sr, *dr, other)? {
                Some(over) if !over.is_empty() => note(
                    &mut report.oversized_keys,
                    &mut report.oversized,
                    &format!("{shown} ({})", over.join(", ")),
                ),
                Some(_) => report.added_null += 1,
                None => note(&mut report.different, &mut report.counts.2, shown),
            },
            Some(_) => report.same += 1,
        }
    }
    for (k, (_, shown, _, _)) in &dst {
        if !src.contains_key(k) {
            note(&mut report.extra, &mut report.counts.1, shown);
        }
    }
    Ok(report)
}

/// The multiset comparison of a table without a key: equal copies pair up
/// first; then a destination copy holding NULL in columns added after it
/// was written pairs with a source row equal on the other columns.
/// `rewritten` are the source rows whose values over the field size limit
/// were rewritten as the policy writes them, with those columns.
fn compare_multiset(
    report: &mut TableReport,
    schema: &arrow_schema::SchemaRef,
    source: &[RecordBatch],
    merged: &RecordBatch,
    winners: &[i64],
    added: &[AddedColumn],
    rewritten: &HashMap<(usize, usize), Vec<String>>,
) -> Result<()> {
    let paired =
        |report: &mut TableReport, copy: (usize, usize), late: bool| match rewritten.get(&copy) {
            Some(columns) => note(
                &mut report.oversized_keys,
                &mut report.oversized,
                &format!("a row without a key ({})", columns.join(", ")),
            ),
            None if late => report.added_null += 1,
            None => report.same += 1,
        };
    let all = row_converter(schema)?;
    // Source copies by whole row: (batch, row) of each.
    let mut src: HashMap<OwnedRow, Vec<(usize, usize)>> = HashMap::new();
    for (n, b) in source.iter().enumerate() {
        let rows = all.convert_columns(b.columns())?;
        for row in 0..b.num_rows() {
            src.entry(rows.row(row).owned()).or_default().push((n, row));
        }
    }
    let dst = all.convert_columns(merged.columns())?;
    let late = late_columns(schema, added);
    // Destination copies no equal source copy took, by the added columns
    // they are older than and the row they hold.
    let mut older: HashMap<(Vec<usize>, OwnedRow), Vec<usize>> = HashMap::new();
    let mut extra = Vec::new();
    for dr in 0..merged.num_rows() {
        let row = dst.row(dr).owned();
        if let Some(copy) = src.get_mut(&row).and_then(Vec::pop) {
            paired(report, copy, false);
            continue;
        }
        let nulled = null_late(&late, merged, winners, dr);
        if nulled.is_empty() {
            extra.push(dr);
        } else {
            let columns = nulled.iter().map(|&(c, _)| c).collect();
            older.entry((columns, row)).or_default().push(dr);
        }
    }
    let shapes: Vec<Vec<usize>> = {
        let mut s: Vec<Vec<usize>> = older.keys().map(|(c, _)| c.clone()).collect();
        s.sort();
        s.dedup();
        s
    };
    let mut missing = Vec::new();
    for copies in src.into_values() {
        'copy: for (sb, sr) in copies {
            for columns in &shapes {
                let nulled: Vec<(usize, u64)> = columns.iter().map(|&c| (c, 0)).collect();
                let key = (columns.clone(), nulled_row(&all, &source[sb], sr, &nulled)?);
                if let Some(d) = older.get_mut(&key)
                    && d.pop().is_some()
                {
                    paired(report, (sb, sr), true);
                    continue 'copy;
                }
            }
            missing.push((sb, sr));
        }
    }
    extra.extend(older.into_values().flatten());
    extra.sort_unstable();
    missing.sort_unstable();
    for (sb, sr) in missing {
        note(
            &mut report.missing,
            &mut report.counts.0,
            &shown(&source[sb], sr)?,
        );
    }
    for dr in extra {
        note(&mut report.extra, &mut report.counts.1, &shown(merged, dr)?);
    }
    Ok(())
}

/// The added columns (of `late`) that row `dr` of `merged` holds NULL in
/// and is older than (the record that made it came before their `ALTER`).
fn null_late(
    late: &[(usize, u64)],
    merged: &RecordBatch,
    winners: &[i64],
    dr: usize,
) -> Vec<(usize, u64)> {
    let made_by = RecordIds::counter_of(winners.get(dr).copied().unwrap_or(0));
    late.iter()
        .filter(|&&(c, first)| made_by < first && merged.column(c).is_null(dr))
        .copied()
        .collect()
}

/// A whole row as `verify` lists it: every column, comma-separated.
fn shown(batch: &RecordBatch, row: usize) -> Result<String> {
    let mut out = Vec::with_capacity(batch.num_columns());
    for c in batch.columns() {
        out.push(
            ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default())?
                .value(row)
                .to_string(),
        );
    }
    Ok(out.join(", "))
}

fn note(list: &mut Vec<String>, count: &mut usize, key: &str) {
    *count += 1;
    if list.len() < SHOWN {
        list.push(key.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, StringArray};
    use arrow_schema::{DataType, Field, Schema, SchemaRef};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Int32, true),
        ]))
    }

    fn rows(rows: &[(i32, &str, Option<i32>)]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int32Array::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
                Arc::new(Int32Array::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
            ],
        )
        .expect("batch")
    }

    fn compared(
        source: &[(i32, &str, Option<i32>)],
        merged: &[(i32, &str, Option<i32>)],
        winners: &[i64],
        added: &[AddedColumn],
    ) -> TableReport {
        let (source, merged) = (rows(source), rows(merged));
        let mut report = TableReport {
            source_rows: source.num_rows(),
            destination_rows: merged.num_rows(),
            keyless: true,
            ..TableReport::default()
        };
        compare_multiset(
            &mut report,
            &schema(),
            &[source],
            &merged,
            winners,
            added,
            &HashMap::new(),
        )
        .expect("compare");
        assert!(report.counts_add_up(), "{report:?}");
        report
    }

    #[test]
    fn identical_rows_count_once_each() {
        let two = [(1, "x", Some(1)), (1, "x", Some(1)), (2, "y", None)];
        let r = compared(&two, &two, &[0, 0, 0], &[]);
        assert!(r.is_equal() && r.same == 3, "{r:?}");

        // The destination collapsed two identical rows into one: one missing.
        let r = compared(&two, &[(1, "x", Some(1)), (2, "y", None)], &[0, 0], &[]);
        assert_eq!(r.counts, (1, 0, 0), "{r:?}");
        assert_eq!(r.missing, ["1, x, 1"]);

        // A third copy in the destination: one extra, none different.
        let three = [(1, "x", Some(1)), (1, "x", Some(1)), (1, "x", Some(1))];
        let r = compared(&two[..2], &three, &[0, 0, 0], &[]);
        assert_eq!(r.counts, (0, 1, 0), "{r:?}");
        assert_eq!((r.source_rows, r.destination_rows, r.same), (2, 3, 2));
    }

    #[test]
    fn rewritten_copies_are_listed_as_oversized() {
        // Row 1 of the source held a value over the limit; the copy given
        // here is as the policy wrote it, and the destination holds that.
        let both = [(1, "x", Some(1)), (2, "cut", None)];
        let rewritten = HashMap::from([((0, 1), vec!["b".to_owned()])]);
        let mut report = TableReport {
            source_rows: 2,
            destination_rows: 2,
            keyless: true,
            ..TableReport::default()
        };
        compare_multiset(
            &mut report,
            &schema(),
            &[rows(&both)],
            &rows(&both),
            &[0, 0],
            &[],
            &rewritten,
        )
        .expect("compare");
        assert!(report.is_equal() && report.counts_add_up(), "{report:?}");
        assert_eq!((report.same, report.oversized), (1, 1));
        assert_eq!(report.oversized_keys, ["a row without a key (b)"]);
    }

    #[test]
    fn older_copies_are_equal_but_for_null_in_added_columns() {
        // `c` was added at record counter 10: the baseline copy (record 0)
        // holds NULL there, the source its default 5.
        let added = [AddedColumn {
            column: "c".into(),
            first_record_id: 10,
            default: None,
            resnapshot: false,
        }];
        let source = [(1, "x", Some(5)), (1, "x", Some(5)), (2, "y", Some(5))];
        let merged = [(1, "x", None), (1, "x", Some(5)), (2, "y", None)];
        let tagged_new = (3_i64 << 55) | 11;
        let r = compared(&source, &merged, &[0, tagged_new, 0], &added);
        assert!(r.is_equal(), "{r:?}");
        assert_eq!((r.same, r.added_null), (1, 2));

        // A copy written after the ALTER holding NULL is a real difference.
        let r = compared(&source[..1], &[(1, "x", None)], &[tagged_new], &added);
        assert_eq!(r.counts, (1, 1, 0), "{r:?}");
    }
}
