//! Rebuild a table's state from `t_base` + `t_log`, the way DTS's merge SQL does.
//!
//! # Tables with a key
//! For every primary key (else NOT NULL unique key), the record with the
//! highest `(record_id, after_flag)` wins, baseline rows counting as
//! `record_id` 0 with `after_flag = 'Y'`; the key survives when the winner is
//! an after image. So the last change wins, an UPDATE's after image beats its
//! before image, a DELETE removes the key, a primary-key change removes the
//! old key and creates the new one, and the overlap between the baseline and
//! the first log records (changes the snapshot already saw) resolves to the
//! same rows. Records sharing one `record_id` and image (a retried upload)
//! are harmless.
//!
//! # Tables without a key
//! A table with neither is a multiset: two identical rows are two copies,
//! and MySQL logs an UPDATE or DELETE that touches one of them (`… LIMIT 1`)
//! as one before image. So the merge replays the images in record order
//! (`record_id`, the before image of an UPDATE first) over the baseline's
//! rows: an after image adds one copy of its row, a before image removes one
//! copy of its row (every column equal, NULL equal to NULL). A record
//! uploaded twice counts once. A before image that finds no copy removes
//! nothing; only a change the baseline already held makes one (a row changed
//! while the full phase read the table), and it is logged. Per distinct row
//! that is a running count clamped at zero, which [`merge_sql`] computes the
//! same way in SQL.
//!
//! Columns added during the incremental phase ([`MergeSpec::added`]) hold
//! NULL in copies written before the `ALTER TABLE` (MaxCompute does not
//! backfill), while later before images carry the source's value. A before
//! image that finds no copy equal on every column therefore removes a copy
//! written before the `ALTER` that equals it on the other columns. (The SQL
//! of [`merge_sql`] matches on every column only.)
//!
//! [`merge_sql`] prints the same queries for MaxCompute.

use crate::error::{Error, Result};
use crate::records::{MetaColumns, RecordIds};
use crate::schema_history::AddedColumn;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_row::{OwnedRow, RowConverter, Rows, SortField};
use arrow_schema::SchemaRef;
use std::collections::HashMap;
use tracing::warn;

/// What to merge.
#[derive(Clone, Copy, Debug)]
pub struct MergeSpec<'a> {
    /// The metadata column names of `t_log`.
    pub meta: &'a MetaColumns,
    /// Primary-key columns. Empty: the table has no key and its rows are a
    /// multiset (see the module docs, "Tables without a key").
    pub key: &'a [&'a str],
    /// Only changes strictly before this Unix time count (state as of then).
    pub as_of: Option<i64>,
    /// Columns added during the incremental phase (destination names), for
    /// a table without a key (see the module docs); a keyed table ignores
    /// them.
    pub added: &'a [AddedColumn],
}

/// Writes a batch as one Parquet file (zstd), atomically: temp file, fsync,
/// rename; its columns in the local warehouse's form
/// ([`crate::mapping::parquet_type`]: TIME as text).
///
/// # Errors
/// [`Error::Parquet`] and [`Error::Io`]; [`Error::Mapping`] for a column
/// that does not convert.
pub fn write_parquet(path: &std::path::Path, batch: &RecordBatch) -> Result<()> {
    let batch = &crate::mapping::batch_to_parquet(batch, &[])?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(
            parquet::basic::ZstdLevel::default(),
        ))
        .build();
    let mut buf = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    let tmp = path.with_extension("parquet.tmp");
    crate::checkpoint::write_durably(&tmp, &buf)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming into place", path, e))
}

/// The log records from `record_id` `from` on (those that count with a
/// baseline generation published by `resnapshot`, whose cutoff it is).
///
/// # Errors
/// [`Error::Mapping`] when a batch lacks the `record_id` column;
/// [`Error::Arrow`] from Arrow itself.
pub fn log_from(log: Vec<RecordBatch>, meta: &MetaColumns, from: i64) -> Result<Vec<RecordBatch>> {
    log.into_iter()
        .map(|b| {
            let ids = b
                .column_by_name(&meta.record_id)
                .and_then(|c| c.as_any().downcast_ref::<arrow_array::Int64Array>())
                .ok_or_else(|| {
                    Error::Mapping(format!("a t_log batch without `{}`", meta.record_id))
                })?;
            let keep: arrow_array::BooleanArray = ids
                .iter()
                .map(|id| Some(id.is_some_and(|id| id >= from)))
                .collect();
            Ok(arrow_select::filter::filter_record_batch(&b, &keep)?)
        })
        .collect()
}

/// Where a candidate row lives and how it ranks.
#[derive(Clone, Copy)]
struct Candidate {
    record_id: i64,
    after: bool,
    batch: usize,
    row: usize,
}

/// One copy of a row of a table without a key: where it lives and the
/// record that made it (0: the baseline).
#[derive(Clone, Copy, Debug)]
struct Held {
    record_id: i64,
    batch: usize,
    row: usize,
}

/// The merged rows, with `schema` (the business columns, as in `t_base`;
/// every column nullable), sorted by key (a table without a key: by the
/// whole row, identical rows next to each other).
///
/// `base` batches hold the business columns; `log` batches hold the metadata
/// columns plus the business columns (any order, found by name). A business
/// column a batch lacks (written before an `ADD COLUMN`) is NULL.
///
/// # Errors
/// [`Error::Mapping`] when a log batch lacks a metadata column, or a column
/// has the wrong type; [`Error::Arrow`] from Arrow itself.
pub fn merge(
    schema: &SchemaRef,
    base: &[RecordBatch],
    log: &[RecordBatch],
    spec: MergeSpec<'_>,
) -> Result<RecordBatch> {
    Ok(merge_ranked(schema, base, log, spec)?.0)
}

/// As [`merge`], with the `record_id` of the record that made each merged
/// row (0 for a baseline row), in the rows' order.
///
/// # Errors
/// As [`merge`].
pub fn merge_ranked(
    schema: &SchemaRef,
    base: &[RecordBatch],
    log: &[RecordBatch],
    spec: MergeSpec<'_>,
) -> Result<(RecordBatch, Vec<i64>)> {
    let (merged, ids) = merge_ranked_raw(schema, base, log, spec)?;
    Ok((fill_defaults(merged, &ids, spec.added)?, ids))
}

/// The rows last changed before an `ADD COLUMN` with a constant default
/// recorded (`[sync.ddl] rewritten_rows = "default"`) get that default
/// where they hold NULL in it: the source filled them without a log row.
fn fill_defaults(merged: RecordBatch, ids: &[i64], added: &[AddedColumn]) -> Result<RecordBatch> {
    let schema = merged.schema();
    let mut columns = merged.columns().to_vec();
    let mut changed = false;
    for a in added {
        let (Some(default), Ok(i)) = (&a.default, schema.index_of(&a.column)) else {
            continue;
        };
        let old = &columns[i];
        let fill: arrow_array::BooleanArray = (0..merged.num_rows())
            .map(|r| {
                let counter =
                    crate::records::RecordIds::counter_of(ids.get(r).copied().unwrap_or(0));
                Some(counter < a.first_record_id && old.is_null(r))
            })
            .collect();
        if fill.true_count() == 0 {
            continue;
        }
        let text = arrow_array::StringArray::from(vec![default.as_str(); merged.num_rows()]);
        let value = arrow_cast::cast(&text, old.data_type()).map_err(|e| {
            Error::Mapping(format!(
                "the default {default:?} of added column `{}` does not fit its type {}: {e}",
                a.column,
                old.data_type()
            ))
        })?;
        columns[i] = arrow_select::zip::zip(&fill, &value, old)?;
        changed = true;
    }
    if !changed {
        return Ok(merged);
    }
    Ok(RecordBatch::try_new_with_options(
        schema,
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(merged.num_rows())),
    )?)
}

fn merge_ranked_raw(
    schema: &SchemaRef,
    base: &[RecordBatch],
    log: &[RecordBatch],
    spec: MergeSpec<'_>,
) -> Result<(RecordBatch, Vec<i64>)> {
    let mut sources: Vec<RecordBatch> = Vec::with_capacity(base.len() + log.len());
    for b in base {
        sources.push(project(schema, b)?);
    }
    if spec.key.is_empty() {
        return merge_multiset(schema, sources, log, spec);
    }
    let key_idx: Vec<usize> = spec
        .key
        .iter()
        .map(|k| {
            schema
                .index_of(k)
                .map_err(|_| Error::Mapping(format!("key column `{k}` is not in the table")))
        })
        .collect::<Result<_>>()?;
    let converter = RowConverter::new(
        key_idx
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect(),
    )?;

    let mut winners: HashMap<OwnedRow, Candidate> = HashMap::new();
    let mut offer = |key: OwnedRow, c: Candidate| {
        let entry = winners.entry(key).or_insert(c);
        if (c.record_id, c.after) > (entry.record_id, entry.after) {
            *entry = c;
        }
    };
    for (batch, b) in sources.iter().enumerate() {
        let keys = converter.convert_columns(&key_columns(b, &key_idx))?;
        for row in 0..b.num_rows() {
            offer(
                keys.row(row).owned(),
                Candidate {
                    record_id: 0,
                    after: true,
                    batch,
                    row,
                },
            );
        }
    }
    for l in log {
        let m = LogMeta::of(l, spec.meta)?;
        let projected = project(schema, l)?;
        let keys = converter.convert_columns(&key_columns(&projected, &key_idx))?;
        let batch = sources.len();
        sources.push(projected);
        for row in 0..l.num_rows() {
            if !m.counts(row, spec.as_of) {
                continue;
            }
            let c = Candidate {
                record_id: m.record_id.value(row),
                after: m.after(row),
                batch,
                row,
            };
            offer(keys.row(row).owned(), c);
        }
    }

    let mut survivors: Vec<(OwnedRow, Candidate)> =
        winners.into_iter().filter(|(_, c)| c.after).collect();
    survivors.sort_by(|a, b| a.0.cmp(&b.0));
    let picks: Vec<(usize, usize)> = survivors.iter().map(|(_, c)| (c.batch, c.row)).collect();
    let ids = survivors.iter().map(|(_, c)| c.record_id).collect();
    Ok((take(schema, &sources, &picks)?, ids))
}

/// The merge of a table without a key: the baseline's rows are copies, the
/// log's images (in record order) add and remove one copy each.
fn merge_multiset(
    schema: &SchemaRef,
    mut sources: Vec<RecordBatch>,
    log: &[RecordBatch],
    spec: MergeSpec<'_>,
) -> Result<(RecordBatch, Vec<i64>)> {
    let converter = row_converter(schema)?;
    let mut rows: Vec<Rows> = Vec::with_capacity(sources.len() + log.len());
    let mut held: HashMap<OwnedRow, Vec<Held>> = HashMap::new();
    for (batch, b) in sources.iter().enumerate() {
        let r = converter.convert_columns(b.columns())?;
        for row in 0..b.num_rows() {
            held.entry(r.row(row).owned()).or_default().push(Held {
                record_id: 0,
                batch,
                row,
            });
        }
        rows.push(r);
    }
    let mut images: Vec<Candidate> = Vec::new();
    for l in log {
        let m = LogMeta::of(l, spec.meta)?;
        let projected = project(schema, l)?;
        let batch = sources.len();
        rows.push(converter.convert_columns(projected.columns())?);
        sources.push(projected);
        for row in 0..l.num_rows() {
            if m.counts(row, spec.as_of) {
                images.push(Candidate {
                    record_id: m.record_id.value(row),
                    after: m.after(row),
                    batch,
                    row,
                });
            }
        }
    }
    // Record order, an UPDATE's before image first; a retried upload's
    // second copy of a record is dropped.
    images.sort_by_key(|i| (i.record_id, i.after));
    images.dedup_by_key(|i| (i.record_id, i.after));
    let late = late_columns(schema, spec.added);
    let mut unmatched = 0_usize;
    for im in images {
        let key = rows[im.batch].row(im.row).owned();
        if im.after {
            held.entry(key).or_default().push(Held {
                record_id: im.record_id,
                batch: im.batch,
                row: im.row,
            });
            continue;
        }
        if let Some(copies) = held.get_mut(&key)
            && copies.pop().is_some()
        {
            continue;
        }
        if !remove_older(&converter, &mut held, &sources[im.batch], im.row, &late)? {
            unmatched += 1;
        }
    }
    if unmatched > 0 {
        warn!(
            unmatched,
            "before images of a table without a key matched no row, so they removed nothing: \
             changes the baseline already held (rows changed while the full phase read the table)"
        );
    }
    let mut groups: Vec<(OwnedRow, Vec<Held>)> =
        held.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let mut picks = Vec::new();
    let mut ids = Vec::new();
    for (_, mut copies) in groups {
        copies.sort_by_key(|h| h.record_id);
        for h in copies {
            picks.push((h.batch, h.row));
            ids.push(h.record_id);
        }
    }
    Ok((take(schema, &sources, &picks)?, ids))
}

/// Removes a copy that the before image at `row` of `batch` equals once the
/// added columns newer than that copy are left out (the copy, written before
/// their `ALTER`, holds NULL there); whether there was one.
fn remove_older(
    converter: &RowConverter,
    held: &mut HashMap<OwnedRow, Vec<Held>>,
    batch: &RecordBatch,
    row: usize,
    late: &[(usize, u64)],
) -> Result<bool> {
    for j in (0..late.len()).rev() {
        let first = late[j].1;
        let key = nulled_row(converter, batch, row, &late[j..])?;
        if let Some(copies) = held.get_mut(&key)
            && let Some(at) = copies
                .iter()
                .rposition(|h| RecordIds::counter_of(h.record_id) < first)
        {
            copies.swap_remove(at);
            return Ok(true);
        }
    }
    Ok(false)
}

/// The added columns of `schema`: (index, the first record counter after
/// the `ALTER`), oldest `ALTER` first.
pub(crate) fn late_columns(schema: &SchemaRef, added: &[AddedColumn]) -> Vec<(usize, u64)> {
    let mut late: Vec<(usize, u64)> = added
        .iter()
        .filter_map(|a| Some((schema.index_of(&a.column).ok()?, a.first_record_id)))
        .collect();
    late.sort_by_key(|&(_, first)| first);
    late
}

/// Row `row` of `batch` in `converter`'s form, with the columns in `nulled`
/// (`(index, _)` pairs) NULL.
pub(crate) fn nulled_row(
    converter: &RowConverter,
    batch: &RecordBatch,
    row: usize,
    nulled: &[(usize, u64)],
) -> Result<OwnedRow> {
    let arrays: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if nulled.iter().any(|&(n, _)| n == i) {
                arrow_array::new_null_array(c.data_type(), 1)
            } else {
                c.slice(row, 1)
            }
        })
        .collect();
    Ok(converter.convert_columns(&arrays)?.row(0).owned())
}

/// A converter of whole rows of `schema` (every column), for equality and order.
pub(crate) fn row_converter(schema: &SchemaRef) -> Result<RowConverter> {
    Ok(RowConverter::new(
        schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect(),
    )?)
}

/// The rows `picks` (`(batch, row)`) of `sources` as one batch of `schema`,
/// every column nullable.
fn take(
    schema: &SchemaRef,
    sources: &[RecordBatch],
    picks: &[(usize, usize)],
) -> Result<RecordBatch> {
    let out_schema = crate::sink::nullable(schema);
    if picks.is_empty() {
        return Ok(RecordBatch::new_empty(out_schema));
    }
    let columns = (0..schema.fields().len())
        .map(|col| {
            let arrays: Vec<&dyn Array> = sources.iter().map(|b| b.column(col).as_ref()).collect();
            arrow_select::interleave::interleave(&arrays, picks)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(out_schema, columns)?)
}

/// The business columns of `batch` in `schema`'s order, every one nullable;
/// a column the batch lacks (written before an `ADD COLUMN`) is NULL.
pub(crate) fn project(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let Some(col) = batch.column_by_name(f.name()) else {
                return Ok(arrow_array::new_null_array(f.data_type(), batch.num_rows()));
            };
            if col.data_type() != f.data_type() {
                return Err(Error::Mapping(format!(
                    "column `{}` is {} in a batch to merge, expected {}",
                    f.name(),
                    col.data_type(),
                    f.data_type()
                )));
            }
            Ok(col.clone())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        crate::sink::nullable(schema),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

fn key_columns(batch: &RecordBatch, key_idx: &[usize]) -> Vec<ArrayRef> {
    key_idx.iter().map(|&i| batch.column(i).clone()).collect()
}

/// The metadata columns a merge reads from one `t_log` batch.
struct LogMeta<'b> {
    record_id: &'b Int64Array,
    after_flag: &'b StringArray,
    utc_timestamp: &'b Int64Array,
}

impl<'b> LogMeta<'b> {
    fn of(batch: &'b RecordBatch, meta: &MetaColumns) -> Result<Self> {
        Ok(Self {
            record_id: column(batch, &meta.record_id)?,
            after_flag: column(batch, &meta.after_flag)?,
            utc_timestamp: column(batch, &meta.utc_timestamp)?,
        })
    }

    /// Whether record `row` is an after image.
    fn after(&self, row: usize) -> bool {
        self.after_flag.value(row) == "Y"
    }

    /// Whether record `row` counts in a merge as of `as_of`.
    fn counts(&self, row: usize, as_of: Option<i64>) -> bool {
        as_of.is_none_or(|t| self.utc_timestamp.value(row) < t)
    }
}

fn column<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> Result<&'b T> {
    let col = batch.column_by_name(name).ok_or_else(|| {
        Error::Mapping(format!(
            "metadata column `{name}` is missing from a t_log batch"
        ))
    })?;
    if col.null_count() > 0 {
        return Err(Error::Mapping(format!(
            "metadata column `{name}` has NULLs"
        )));
    }
    col.as_any().downcast_ref::<T>().ok_or_else(|| {
        Error::Mapping(format!(
            "metadata column `{name}` has type {}",
            col.data_type()
        ))
    })
}

/// The MaxCompute SQL that writes the merged state of `<table>_base` +
/// `<table>_log` (changes before `as_of`, Unix seconds) into `result`.
/// Every name goes through [`crate::odps_sql::ident`].
///
/// With a `key`, DTS's query: per key, the record with the highest
/// `(record_id, after_flag)` wins and the key survives when it is an after
/// image. Without one (an empty `key`), the multiset replay of the module
/// docs: per distinct row, the baseline's copies and the images in record
/// order make a running count (+1 per copy and after image, −1 per before
/// image) clamped at zero, and that many copies are written. Unlike
/// [`merge`], it matches a before image only with copies equal on every
/// column, also in columns added during the incremental phase.
///
/// # Errors
/// [`Error::Mapping`] for a name MaxCompute cannot take.
pub fn merge_sql(
    table: &str,
    result: &str,
    columns: &[&str],
    key: &[&str],
    meta: &MetaColumns,
    as_of: i64,
) -> Result<String> {
    merge_sql_generation(table, None, &[], result, columns, key, meta, as_of)
}

/// A default filled in by `merge-sql` (`[sync.ddl] rewritten_rows =
/// "default"`): the column, the first `record_id` (with its tag) written
/// after its `ADD COLUMN`, and the constant.
#[derive(Clone, Debug)]
pub struct FilledDefault {
    /// Destination column name.
    pub column: String,
    /// Rows made by an older record (or the baseline) get the default.
    pub before_record_id: i64,
    /// The constant, as text.
    pub value: String,
}

/// As [`merge_sql`], for a baseline generation published by `resnapshot`:
/// its base table, and only log records from its cutoff on.
///
/// # Errors
/// As [`merge_sql`].
#[allow(clippy::too_many_arguments)]
pub fn merge_sql_generation(
    table: &str,
    generation: Option<&crate::machine::BaseGeneration>,
    defaults: &[FilledDefault],
    result: &str,
    columns: &[&str],
    key: &[&str],
    meta: &MetaColumns,
    as_of: i64,
) -> Result<String> {
    use crate::odps_sql::{ident, literal};
    let list = |names: &[&str]| -> Result<String> {
        Ok(names
            .iter()
            .map(|c| ident(c))
            .collect::<Result<Vec<_>>>()?
            .join(", "))
    };
    let cols = list(columns)?;
    let (rid, op, after, ts) = (
        ident(&meta.record_id)?,
        ident(&meta.operation_flag)?,
        ident(&meta.after_flag)?,
        ident(&meta.utc_timestamp)?,
    );
    let (result, log, base) = (
        ident(result)?,
        ident(&format!("{table}_log"))?,
        ident(
            &generation
                .map(|g| g.table.clone())
                .unwrap_or_else(|| format!("{table}_base")),
        )?,
    );
    // The log records that count with the baseline (all without a generation).
    let as_of = match generation {
        Some(g) => format!("{as_of} AND {rid} >= {}", g.log_from),
        None => as_of.to_string(),
    };
    // Helper columns, named apart from the business columns.
    let fresh = |name: &str| {
        let mut name = name.to_owned();
        while columns.iter().any(|c| c.eq_ignore_ascii_case(&name)) {
            name.push('_');
        }
        name
    };
    let (insert, yes) = (literal("I"), literal("Y"));
    if key.is_empty() {
        let (step, run, total, copy, low) = (
            fresh("dts_step"),
            fresh("dts_run"),
            fresh("dts_total"),
            fresh("dts_copy"),
            fresh("dts_low"),
        );
        return Ok(format!(
            "SET odps.sql.allow.fullscan=true;\n\
             INSERT OVERWRITE TABLE {result}\n\
             SELECT {cols} FROM (\n  \
               SELECT {cols}, {after}, {copy}, {total}, MIN({run}) OVER (PARTITION BY {cols}) AS {low}\n  \
               FROM (\n    \
                 SELECT {cols}, {after},\n      \
                   SUM({step}) OVER (PARTITION BY {cols} ORDER BY {rid}, {after} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS {run},\n      \
                   SUM({step}) OVER (PARTITION BY {cols}) AS {total},\n      \
                   ROW_NUMBER() OVER (PARTITION BY {cols}, {after} ORDER BY {rid}) AS {copy}\n    \
                 FROM (\n      \
                   SELECT DISTINCT {rid}, {after}, CASE WHEN {after} = {yes} THEN 1 ELSE -1 END AS {step}, {cols} FROM {log} WHERE {ts} < {as_of}\n      \
                   UNION ALL\n      \
                   SELECT 0 AS {rid}, {yes} AS {after}, 1 AS {step}, {cols} FROM {base}\n    \
                 ) images\n  \
               ) running\n\
             ) counted\n\
             WHERE {after} = {yes} AND {copy} <= {total} - CASE WHEN {low} < 0 THEN {low} ELSE 0 END;\n"
        ));
    }
    let partition = list(key)?;
    let rn = fresh("dts_rn");
    // Rows last changed before an ADD COLUMN get its constant default.
    let out = columns
        .iter()
        .map(|c| {
            let name = ident(c)?;
            Ok(match defaults.iter().find(|d| d.column == *c) {
                None => name,
                Some(d) => {
                    let number = d.value.parse::<f64>().is_ok();
                    let value = if number {
                        d.value.clone()
                    } else {
                        literal(&d.value)
                    };
                    format!(
                        "CASE WHEN {name} IS NULL AND {rid} < {} THEN {value} ELSE {name} END AS {name}",
                        d.before_record_id
                    )
                }
            })
        })
        .collect::<Result<Vec<_>>>()?
        .join(", ");
    Ok(format!(
        "SET odps.sql.allow.fullscan=true;\n\
         INSERT OVERWRITE TABLE {result}\n\
         SELECT {out} FROM (\n  \
           SELECT *, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {rid} DESC, {after} DESC) AS {rn}\n  \
           FROM (\n    \
             SELECT {rid}, {op}, {after}, {cols} FROM {log} WHERE {ts} < {as_of}\n    \
             UNION ALL\n    \
             SELECT 0 AS {rid}, {insert} AS {op}, {yes} AS {after}, {cols} FROM {base}\n  \
           ) merged\n\
         ) ranked\n\
         WHERE {rn} = 1 AND {after} = {yes};\n"
    ))
}

/// Whether two merged tables hold the same rows (both sorted by key, as
/// [`merge`] returns them; for tables without a key, the same multiset).
pub fn same_rows(a: &RecordBatch, b: &RecordBatch) -> bool {
    a.num_rows() == b.num_rows()
        && a.columns()
            .iter()
            .zip(b.columns())
            .all(|(x, y)| x.to_data() == y.to_data())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{LogRecordMeta, NamingRule, Op};
    use arrow_array::{Int32Array, builder::StringBuilder};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    fn base(rows: &[(i32, &str)]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int32Array::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rows.iter().map(|r| Some(r.1)).collect::<Vec<_>>(),
                )),
            ],
        )
        .expect("base")
    }

    /// `(op, record_id, ts, before image, after image)`.
    type Change<'a> = (Op, i64, i64, Option<(i32, &'a str)>, Option<(i32, &'a str)>);

    /// A t_log batch from changes `(op, record_id, ts, before, after)`.
    fn log(meta: &MetaColumns, changes: &[Change<'_>]) -> RecordBatch {
        let (mut rid, mut op, mut ts, mut bf, mut af, mut id, mut name) = (
            vec![],
            StringBuilder::new(),
            vec![],
            StringBuilder::new(),
            StringBuilder::new(),
            vec![],
            StringBuilder::new(),
        );
        for &(o, r, t, before, after) in changes {
            for m in LogRecordMeta::for_change(o, r, t) {
                let row = if m.before_flag() == "Y" {
                    before
                } else {
                    after
                }
                .expect("image");
                rid.push(m.record_id);
                op.append_value(m.op.flag());
                ts.push(m.utc_timestamp);
                bf.append_value(m.before_flag());
                af.append_value(m.after_flag());
                id.push(row.0);
                name.append_value(row.1);
            }
        }
        let mut fields = meta.fields();
        fields.extend(schema().fields().iter().map(|f| f.as_ref().clone()));
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            vec![
                Arc::new(Int64Array::from(rid)),
                Arc::new(op.finish()),
                Arc::new(Int64Array::from(ts)),
                Arc::new(bf.finish()),
                Arc::new(af.finish()),
                Arc::new(Int32Array::from(id)),
                Arc::new(name.finish()),
            ],
        )
        .expect("log")
    }

    #[test]
    fn last_change_wins_deletes_remove_and_pk_changes_move() {
        let meta = NamingRule::Previous.meta_columns();
        let b = base(&[(1, "a"), (2, "b"), (3, "c")]);
        let l = log(
            &meta,
            &[
                (Op::Insert, 1, 10, None, Some((4, "d"))),
                (Op::Update, 2, 11, Some((1, "a")), Some((1, "a2"))),
                (Op::Delete, 3, 12, Some((2, "b")), None),
                (Op::Update, 4, 13, Some((3, "c")), Some((30, "c"))),
                (Op::Update, 5, 14, Some((1, "a2")), Some((1, "a3"))),
            ],
        );
        let spec = MergeSpec {
            meta: &meta,
            key: &["id"],
            as_of: None,
            added: &[],
        };
        let merged = merge(
            &schema(),
            std::slice::from_ref(&b),
            std::slice::from_ref(&l),
            spec,
        )
        .expect("merge");
        assert!(
            same_rows(&merged, &base(&[(1, "a3"), (4, "d"), (30, "c")])),
            "{merged:?}"
        );

        // As of t=12: the delete (ts 12) and later changes do not count yet.
        let at = merge(
            &schema(),
            &[b],
            &[l],
            MergeSpec {
                as_of: Some(12),
                ..spec
            },
        )
        .expect("merge");
        assert!(
            same_rows(&at, &base(&[(1, "a2"), (2, "b"), (3, "c"), (4, "d")])),
            "{at:?}"
        );
    }

    #[test]
    fn overlap_with_the_baseline_and_retried_records_merge_to_the_same_rows() {
        let meta = NamingRule::New.meta_columns();
        // The snapshot already saw the insert of 2; the log replays it, twice (a retried upload).
        let b = base(&[(1, "a"), (2, "b")]);
        let once = log(&meta, &[(Op::Insert, 1, 5, None, Some((2, "b")))]);
        let spec = MergeSpec {
            meta: &meta,
            key: &["id"],
            as_of: None,
            added: &[],
        };
        let merged = merge(&schema(), &[b], &[once.clone(), once], spec).expect("merge");
        assert!(same_rows(&merged, &base(&[(1, "a"), (2, "b")])));
    }

    #[test]
    fn missing_metadata_column_is_a_schema_error() {
        let meta = NamingRule::New.meta_columns();
        let other = NamingRule::Previous.meta_columns();
        let l = log(&other, &[(Op::Insert, 1, 5, None, Some((2, "b")))]);
        let spec = MergeSpec {
            meta: &meta,
            key: &["id"],
            as_of: None,
            added: &[],
        };
        let err = merge(&schema(), &[], &[l], spec).expect_err("wrong naming rule");
        assert!(err.to_string().contains("new_dts_sync_record_id"), "{err}");
    }

    #[test]
    fn merge_sql_follows_the_dts_template() {
        let meta = NamingRule::Previous.meta_columns();
        let sql = merge_sql(
            "customer",
            "customer_1565944878",
            &["id", "address"],
            &["id"],
            &meta,
            1_565_944_878,
        )
        .expect("sql");
        assert!(
            sql.contains("FROM `customer_log` WHERE `utc_timestamp` < 1565944878"),
            "{sql}"
        );
        assert!(
            sql.contains("SELECT 0 AS `record_id`, 'I' AS `operation_flag`, 'Y' AS `after_flag`"),
            "{sql}"
        );
        assert!(
            sql.contains("PARTITION BY `id` ORDER BY `record_id` DESC, `after_flag` DESC"),
            "{sql}"
        );
        assert!(
            sql.contains("WHERE dts_rn = 1 AND `after_flag` = 'Y'"),
            "{sql}"
        );
        // A name that would end its quotes early is refused, not spliced in.
        let hostile = "x` WHERE 1=1; DROP TABLE customer_base; --";
        for (table, result, column) in [
            (hostile, "r", "id"),
            ("customer", hostile, "id"),
            ("customer", "r", hostile),
        ] {
            let err = merge_sql(table, result, &[column], &[], &meta, 0).expect_err("refused");
            assert!(err.to_string().contains("backtick"), "{err}");
        }
    }

    /// The rows of a merged two-column batch, in order.
    fn pairs(b: &RecordBatch) -> Vec<(Option<i32>, Option<String>)> {
        let id = b
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .expect("int");
        let name = b
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8");
        (0..b.num_rows())
            .map(|i| {
                (
                    id.is_valid(i).then(|| id.value(i)),
                    name.is_valid(i).then(|| name.value(i).to_owned()),
                )
            })
            .collect()
    }

    fn rows_of(rows: &[(i32, &str)]) -> Vec<(Option<i32>, Option<String>)> {
        rows.iter()
            .map(|&(i, n)| (Some(i), Some(n.to_owned())))
            .collect()
    }

    #[test]
    fn keyless_rows_are_a_multiset_and_one_change_touches_one_copy() {
        let meta = NamingRule::New.meta_columns();
        // Two copies of (1, a), three of (2, b).
        let b = base(&[(1, "a"), (2, "b"), (1, "a"), (2, "b"), (2, "b")]);
        let l = log(
            &meta,
            &[
                // UPDATE … LIMIT 1 of one (1, a); DELETE … LIMIT 1 of one (2, b).
                (Op::Update, 1, 10, Some((1, "a")), Some((1, "z"))),
                (Op::Delete, 2, 11, Some((2, "b")), None),
                // A third identical row arrives, then one copy leaves again.
                (Op::Insert, 3, 12, None, Some((1, "a"))),
                (Op::Insert, 4, 13, None, Some((1, "a"))),
                (Op::Delete, 5, 14, Some((1, "a")), None),
            ],
        );
        let spec = MergeSpec {
            meta: &meta,
            key: &[],
            as_of: None,
            added: &[],
        };
        let (merged, ids) = merge_ranked(
            &schema(),
            std::slice::from_ref(&b),
            std::slice::from_ref(&l),
            spec,
        )
        .expect("merge");
        assert_eq!(
            pairs(&merged),
            rows_of(&[(1, "a"), (1, "a"), (1, "z"), (2, "b"), (2, "b")]),
        );
        assert_eq!(ids.len(), merged.num_rows());
        assert!(ids.contains(&1), "the after image made (1, z): {ids:?}");

        // As of t=12: the two inserts and the last delete do not count yet.
        let at = merge(
            &schema(),
            std::slice::from_ref(&b),
            std::slice::from_ref(&l),
            MergeSpec {
                as_of: Some(12),
                ..spec
            },
        )
        .expect("merge");
        assert_eq!(
            pairs(&at),
            rows_of(&[(1, "a"), (1, "z"), (2, "b"), (2, "b")])
        );

        // A retried upload (every record twice) changes nothing.
        let twice = merge(&schema(), &[b], &[l.clone(), l], spec).expect("merge");
        assert!(same_rows(&twice, &merged), "{twice:?}");
    }

    #[test]
    fn keyless_before_image_without_a_copy_removes_nothing() {
        let meta = NamingRule::New.meta_columns();
        // The baseline already lacks (5, x) (deleted while it was read), then
        // (5, x) comes back: one copy, as in the source.
        let l = log(
            &meta,
            &[
                (Op::Delete, 1, 10, Some((5, "x")), None),
                (Op::Insert, 2, 11, None, Some((5, "x"))),
                (Op::Update, 3, 12, Some((6, "y")), Some((6, "w"))),
            ],
        );
        let spec = MergeSpec {
            meta: &meta,
            key: &[],
            as_of: None,
            added: &[],
        };
        let merged = merge(&schema(), &[], &[l], spec).expect("merge");
        assert_eq!(pairs(&merged), rows_of(&[(5, "x"), (6, "w")]));
    }

    #[test]
    fn keyless_change_after_add_column_removes_the_older_copy() {
        use crate::schema_history::AddedColumn;
        let meta = NamingRule::New.meta_columns();
        let wide = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("c", DataType::Int32, true),
        ]));
        // The baseline predates `ADD COLUMN c INT NOT NULL DEFAULT 5`.
        let b = base(&[(1, "a"), (1, "a")]);
        // The first record after the ALTER (counter 3, under tag 9):
        // UPDATE … SET name = 'b' LIMIT 1, whose images carry c = 5.
        let rid = (9_i64 << 55) | 3;
        let mut fields = meta.fields();
        fields.extend(wide.fields().iter().map(|f| f.as_ref().clone()));
        let l = RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            vec![
                Arc::new(Int64Array::from(vec![rid, rid])),
                Arc::new(StringArray::from(vec!["U", "U"])),
                Arc::new(Int64Array::from(vec![20, 20])),
                Arc::new(StringArray::from(vec!["Y", "N"])),
                Arc::new(StringArray::from(vec!["N", "Y"])),
                Arc::new(Int32Array::from(vec![1, 1])),
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int32Array::from(vec![5, 5])),
            ],
        )
        .expect("log");
        let added = [AddedColumn {
            column: "c".into(),
            first_record_id: 3,
            default: None,
            resnapshot: false,
        }];
        let spec = MergeSpec {
            meta: &meta,
            key: &[],
            as_of: None,
            added: &added,
        };
        let merged = merge(
            &wide,
            std::slice::from_ref(&b),
            std::slice::from_ref(&l),
            spec,
        )
        .expect("merge");
        assert_eq!(merged.num_rows(), 2, "{merged:?}");
        let c = merged
            .column(2)
            .as_any()
            .downcast_ref::<Int32Array>()
            .expect("int");
        assert_eq!(pairs(&merged), rows_of(&[(1, "a"), (1, "b")]));
        assert!(c.is_null(0) && c.value(1) == 5, "{merged:?}");
        // Without knowing the column was added, the old copy stays.
        let blind = merge(&wide, &[b], &[l], MergeSpec { added: &[], ..spec }).expect("merge");
        assert_eq!(blind.num_rows(), 3);
    }

    #[test]
    fn merge_sql_replays_a_keyless_table_as_a_multiset() {
        let meta = NamingRule::New.meta_columns();
        // A business column named like a helper column pushes the helper aside.
        let sql = merge_sql("ev", "ev_9", &["at", "dts_step"], &[], &meta, 9).expect("sql");
        assert!(
            sql.contains(
                "SELECT DISTINCT `new_dts_sync_record_id`, `new_dts_sync_after_flag`, \
                 CASE WHEN `new_dts_sync_after_flag` = 'Y' THEN 1 ELSE -1 END AS dts_step_, \
                 `at`, `dts_step` FROM `ev_log` WHERE `new_dts_sync_utc_timestamp` < 9"
            ),
            "{sql}"
        );
        assert!(
            sql.contains(
                "SUM(dts_step_) OVER (PARTITION BY `at`, `dts_step` ORDER BY \
                 `new_dts_sync_record_id`, `new_dts_sync_after_flag` ROWS BETWEEN UNBOUNDED \
                 PRECEDING AND CURRENT ROW)"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("SELECT 0 AS `new_dts_sync_record_id`, 'Y' AS `new_dts_sync_after_flag`, 1 AS dts_step_, `at`, `dts_step` FROM `ev_base`"),
            "{sql}"
        );
        assert!(
            sql.ends_with(
                "WHERE `new_dts_sync_after_flag` = 'Y' AND dts_copy <= dts_total - \
                 CASE WHEN dts_low < 0 THEN dts_low ELSE 0 END;\n"
            ),
            "{sql}"
        );
        assert!(!sql.contains("ROW_NUMBER() OVER (PARTITION BY `at`, `dts_step` ORDER BY `new_dts_sync_record_id` DESC"));
    }
}
