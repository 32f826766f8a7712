//! Rebuild a table's state from `t_base` + `t_log`, the way DTS's merge SQL does.
//!
//! For every primary key, the record with the highest `(record_id, after_flag)`
//! wins, baseline rows counting as `record_id` 0 with `after_flag = 'Y'`; the
//! key survives when the winner is an after image. So the last change wins, an
//! UPDATE's after image beats its before image, a DELETE removes the key, a
//! primary-key change removes the old key and creates the new one, and the
//! overlap between the baseline and the first log records (changes the
//! snapshot already saw) resolves to the same rows. Records sharing one
//! `record_id` and image (a retried upload) are harmless.
//!
//! [`merge_sql`] prints the same query for MaxCompute.

use crate::error::{Error, Result};
use crate::records::MetaColumns;
use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_row::{OwnedRow, RowConverter, SortField};
use arrow_schema::SchemaRef;
use std::collections::HashMap;

/// What to merge.
#[derive(Clone, Copy, Debug)]
pub struct MergeSpec<'a> {
    /// The metadata column names of `t_log`.
    pub meta: &'a MetaColumns,
    /// Primary-key columns. Empty: every business column is the key (a table
    /// without a key keeps one copy of each distinct row).
    pub key: &'a [&'a str],
    /// Only changes strictly before this Unix time count (state as of then).
    pub as_of: Option<i64>,
}

/// Writes a batch as one Parquet file (zstd), atomically: temp file, fsync, rename.
///
/// # Errors
/// [`Error::Parquet`] and [`Error::Io`].
pub fn write_parquet(path: &std::path::Path, batch: &RecordBatch) -> Result<()> {
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

/// Where a candidate row lives and how it ranks.
#[derive(Clone, Copy)]
struct Candidate {
    record_id: i64,
    after: bool,
    batch: usize,
    row: usize,
}

/// The merged rows, with `schema` (the business columns, as in `t_base`;
/// every column nullable), sorted by key.
///
/// `base` batches hold the business columns; `log` batches hold the metadata
/// columns plus the business columns (any order, found by name). A business
/// column a batch lacks (written before an `ADD COLUMN`) is NULL.
///
/// # Errors
/// [`Error::Schema`] when a log batch lacks a metadata column, or a column
/// has the wrong type; [`Error::Arrow`] from Arrow itself.
pub fn merge(
    schema: &SchemaRef,
    base: &[RecordBatch],
    log: &[RecordBatch],
    spec: MergeSpec<'_>,
) -> Result<RecordBatch> {
    Ok(merge_ranked(schema, base, log, spec)?.0)
}

/// As [`merge`], with the `record_id` of each merged row's winning record
/// (0 for a baseline row), in the rows' order.
///
/// # Errors
/// As [`merge`].
pub fn merge_ranked(
    schema: &SchemaRef,
    base: &[RecordBatch],
    log: &[RecordBatch],
    spec: MergeSpec<'_>,
) -> Result<(RecordBatch, Vec<i64>)> {
    let out_schema = crate::sink::nullable(schema);
    let mut sources: Vec<RecordBatch> = Vec::with_capacity(base.len() + log.len());
    for b in base {
        sources.push(project(schema, b)?);
    }
    let key_names: Vec<&str> = if spec.key.is_empty() {
        schema.fields().iter().map(|f| f.name().as_str()).collect()
    } else {
        spec.key.to_vec()
    };
    let key_idx: Vec<usize> = key_names
        .iter()
        .map(|k| {
            schema
                .index_of(k)
                .map_err(|_| Error::Schema(format!("key column `{k}` is not in the table")))
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
        let record_id = column::<Int64Array>(l, &spec.meta.record_id)?;
        let after = column::<StringArray>(l, &spec.meta.after_flag)?;
        let ts = column::<Int64Array>(l, &spec.meta.utc_timestamp)?;
        let projected = project(schema, l)?;
        let keys = converter.convert_columns(&key_columns(&projected, &key_idx))?;
        let batch = sources.len();
        sources.push(projected);
        for row in 0..l.num_rows() {
            if spec.as_of.is_some_and(|t| ts.value(row) >= t) {
                continue;
            }
            let c = Candidate {
                record_id: record_id.value(row),
                after: after.value(row) == "Y",
                batch,
                row,
            };
            offer(keys.row(row).owned(), c);
        }
    }

    let mut survivors: Vec<(OwnedRow, Candidate)> =
        winners.into_iter().filter(|(_, c)| c.after).collect();
    survivors.sort_by(|a, b| a.0.cmp(&b.0));
    if survivors.is_empty() {
        return Ok((RecordBatch::new_empty(out_schema), Vec::new()));
    }
    let picks: Vec<(usize, usize)> = survivors.iter().map(|(_, c)| (c.batch, c.row)).collect();
    let columns = (0..schema.fields().len())
        .map(|col| {
            let arrays: Vec<&dyn Array> = sources.iter().map(|b| b.column(col).as_ref()).collect();
            arrow_select::interleave::interleave(&arrays, &picks)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let ids = survivors.iter().map(|(_, c)| c.record_id).collect();
    Ok((RecordBatch::try_new(out_schema, columns)?, ids))
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
                return Err(Error::Schema(format!(
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

fn key_columns(batch: &RecordBatch, key_idx: &[usize]) -> Vec<arrow_array::ArrayRef> {
    key_idx.iter().map(|&i| batch.column(i).clone()).collect()
}

fn column<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> Result<&'b T> {
    let col = batch.column_by_name(name).ok_or_else(|| {
        Error::Schema(format!(
            "metadata column `{name}` is missing from a t_log batch"
        ))
    })?;
    if col.null_count() > 0 {
        return Err(Error::Schema(format!("metadata column `{name}` has NULLs")));
    }
    col.as_any().downcast_ref::<T>().ok_or_else(|| {
        Error::Schema(format!(
            "metadata column `{name}` has type {}",
            col.data_type()
        ))
    })
}

/// The MaxCompute SQL that writes the merged state of `<table>_base` +
/// `<table>_log` (changes before `as_of`, Unix seconds) into `result`.
/// Every name goes through [`crate::odps_sql::ident`].
///
/// # Errors
/// [`Error::Schema`] for a name MaxCompute cannot take.
pub fn merge_sql(
    table: &str,
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
    let partition = list(if key.is_empty() { columns } else { key })?;
    let (rid, op, after, ts) = (
        ident(&meta.record_id)?,
        ident(&meta.operation_flag)?,
        ident(&meta.after_flag)?,
        ident(&meta.utc_timestamp)?,
    );
    let (result, log, base) = (
        ident(result)?,
        ident(&format!("{table}_log"))?,
        ident(&format!("{table}_base"))?,
    );
    let (insert, yes) = (literal("I"), literal("Y"));
    Ok(format!(
        "SET odps.sql.allow.fullscan=true;\n\
         INSERT OVERWRITE TABLE {result}\n\
         SELECT {cols} FROM (\n  \
           SELECT *, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {rid} DESC, {after} DESC) AS dts_rn\n  \
           FROM (\n    \
             SELECT {rid}, {op}, {after}, {cols} FROM {log} WHERE {ts} < {as_of}\n    \
             UNION ALL\n    \
             SELECT 0 AS {rid}, {insert} AS {op}, {yes} AS {after}, {cols} FROM {base}\n  \
           ) merged\n\
         ) ranked\n\
         WHERE dts_rn = 1 AND {after} = {yes};\n"
    ))
}

/// Whether two merged tables hold the same rows (both sorted by key, as [`merge`] returns them).
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
}
