//! Writing into destination tables that exist before the task
//! (`[objects] conflicting_tables = "ignore"`), as DTS's "ignore errors and
//! proceed" does: rows already there are kept in the full phase and
//! overwritten by the incremental phase.
//!
//! * **Full phase**: a source row whose key (the destination key columns,
//!   values as the task writes them) is in `t_base` already is not written;
//!   the row there stays as it is. The skipped rows are counted per table
//!   (checkpoint, `status`, the log). The keys are read once per table
//!   before its first chunk is committed ([`KeySet`]) and kept in
//!   `state_dir`, so a restart neither reads them again nor mistakes the
//!   task's own rows for old ones.
//! * **Incremental phase**: `record_id` starts above the highest id of the
//!   task's `record_id_tag` already in its `t_log` tables ([`survey`]), so
//!   every new change outranks every older record in merge, merge-sql and
//!   verify. It is read once, before anything is written, and kept in the
//!   checkpoint ([`crate::machine::Existing`]).
//! * **Refused** (precheck failure, and a definite error of the run): a
//!   table whose columns or partitioning differ from what the task would
//!   create; a table without a key whose `t_base` exists when the full phase
//!   runs (its rows cannot be told apart from the source's, so neither
//!   skipping nor adding is exact); a `t_log` holding ids of a higher
//!   `record_id_tag` (the task's ids could never outrank them).
//!
//! # Cost of the key set
//!
//! The keys of `t_base` are held in memory in their byte-comparable row
//! encoding ([`arrow_row`]), sorted and deduplicated in one buffer: about
//! the encoded key size per row (a BIGINT key: 9 bytes, so 10 million rows
//! take about 90 MB), plus 8 bytes per row when the keys differ in length
//! (strings). Building it takes, for a moment, the key columns as read,
//! a second copy of the keys and 16 bytes more per row (a BIGINT key: about
//! 45 bytes a row). Reading it costs a scan of the key columns of `t_base`
//! (the local warehouse reads only those columns; MaxCompute's download
//! sessions carry whole rows). The file in `state_dir` has the same size.

use crate::error::{Error, Result};
use crate::machine::Existing;
use crate::naming::SyncedTable;
use crate::records::{MetaColumns, RecordIds};
use crate::sink::{Sink, TableDef};
use arrow_array::{Array, BooleanArray, Int64Array, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::{Schema, SchemaRef};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

/// First bytes of a key-set file.
const MAGIC: &[u8; 8] = b"SYNCKEY1";

/// The keys of a table's rows, sorted and deduplicated in their row
/// encoding (see the module docs for the cost).
pub struct KeySet {
    converter: RowConverter,
    /// Key columns (destination names), in key order.
    columns: Vec<String>,
    /// The encoded keys, back to back.
    data: Vec<u8>,
    /// Every key's length when they all have one; else `offsets`.
    width: Option<usize>,
    /// Start of each key in `data`, and the end (variable widths only).
    offsets: Vec<u64>,
    len: usize,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("columns", &self.columns)
            .field("len", &self.len)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// `base_schema`'s key columns, in key order.
///
/// # Errors
/// [`Error::Mapping`] when a key column is not in it.
pub fn key_schema(t: &SyncedTable) -> Result<SchemaRef> {
    let fields = t
        .dest_key()
        .iter()
        .map(|k| {
            t.base_schema
                .field_with_name(k)
                .map(|f| f.clone().with_nullable(true))
                .map_err(|_| {
                    Error::Mapping(format!(
                        "{}: key column `{k}` is not among its columns",
                        t.base_table()
                    ))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

impl KeySet {
    fn converter(key: &SchemaRef) -> Result<RowConverter> {
        Ok(RowConverter::new(
            key.fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?)
    }

    /// The set of the keys in `batches` (each holding exactly `key`'s
    /// columns, as [`Sink::read_table`] returns them).
    ///
    /// # Errors
    /// [`Error::Arrow`] when a batch does not hold `key`'s types.
    pub fn build(key: &SchemaRef, batches: &[RecordBatch]) -> Result<Self> {
        let converter = Self::converter(key)?;
        let mut raw = Vec::new();
        let mut bounds: Vec<u64> = vec![0];
        for b in batches {
            let rows = converter.convert_columns(b.columns())?;
            for r in rows.iter() {
                raw.extend_from_slice(r.as_ref());
                bounds.push(raw.len() as u64);
            }
        }
        let get = |i: usize| &raw[bounds[i] as usize..bounds[i + 1] as usize];
        let mut order: Vec<usize> = (0..bounds.len() - 1).collect();
        order.sort_unstable_by(|&a, &b| get(a).cmp(get(b)));
        order.dedup_by(|a, b| get(*a) == get(*b));
        let width = order
            .first()
            .map(|&i| get(i).len())
            .filter(|w| order.iter().all(|&i| get(i).len() == *w));
        let mut data = Vec::with_capacity(order.iter().map(|&i| get(i).len()).sum());
        let mut offsets = Vec::new();
        for &i in &order {
            if width.is_none() {
                offsets.push(data.len() as u64);
            }
            data.extend_from_slice(get(i));
        }
        if width.is_none() {
            offsets.push(data.len() as u64);
        }
        Ok(Self {
            converter,
            columns: key.fields().iter().map(|f| f.name().clone()).collect(),
            data,
            width,
            offsets,
            len: order.len(),
        })
    }

    /// Distinct keys held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of memory its keys take.
    pub fn bytes(&self) -> usize {
        self.data.len() + self.offsets.len() * 8
    }

    fn key(&self, i: usize) -> &[u8] {
        match self.width {
            Some(w) => &self.data[i * w..(i + 1) * w],
            None => &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize],
        }
    }

    fn contains(&self, row: &[u8]) -> bool {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key(mid).cmp(row) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// `batch` (a `t_base` batch) without the rows whose key the set holds,
    /// and how many those were.
    ///
    /// # Errors
    /// [`Error::Mapping`] when the batch lacks a key column; [`Error::Arrow`].
    pub fn remove_known(&self, batch: RecordBatch) -> Result<(RecordBatch, u64)> {
        if self.is_empty() || batch.num_rows() == 0 {
            return Ok((batch, 0));
        }
        let columns = self
            .columns
            .iter()
            .map(|c| {
                batch
                    .column_by_name(c)
                    .cloned()
                    .ok_or_else(|| Error::Mapping(format!("a t_base batch without key `{c}`")))
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = self.converter.convert_columns(&columns)?;
        let keep: BooleanArray = rows
            .iter()
            .map(|r| Some(!self.contains(r.as_ref())))
            .collect();
        let skipped = (keep.len() - keep.true_count()) as u64;
        if skipped == 0 {
            return Ok((batch, 0));
        }
        Ok((
            arrow_select::filter::filter_record_batch(&batch, &keep)?,
            skipped,
        ))
    }

    /// Writes the set to `path` durably (temp file, fsync, rename).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        crate::private_fs::create_dir_all(dir)?;
        let tmp = path.with_extension("tmp");
        let file = crate::private_fs::create_file(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        let io = |e| Error::io("writing", &tmp, e);
        w.write_all(MAGIC).map_err(io)?;
        w.write_all(&(self.len as u64).to_le_bytes()).map_err(io)?;
        w.write_all(&(self.width.unwrap_or(0) as u64).to_le_bytes())
            .map_err(io)?;
        w.write_all(&(self.offsets.len() as u64).to_le_bytes())
            .map_err(io)?;
        for o in &self.offsets {
            w.write_all(&o.to_le_bytes()).map_err(io)?;
        }
        w.write_all(&self.data).map_err(io)?;
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("fsyncing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming into place", path, e))?;
        crate::checkpoint::sync_dir(dir)
    }

    /// The set saved at `path` for keys of `key`'s columns, `None` when
    /// there is none.
    ///
    /// # Errors
    /// [`Error::CorruptCheckpoint`] for a file that is not a key set.
    pub fn load(path: &Path, key: &SchemaRef) -> Result<Option<Self>> {
        let mut bytes = Vec::new();
        match std::fs::File::open(path) {
            Ok(mut f) => f
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io("reading", path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("opening", path, e)),
        };
        let corrupt = |reason: &str| Error::CorruptCheckpoint {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let word = |i: usize| -> Result<u64> {
            let at = MAGIC.len() + i * 8;
            bytes
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .ok_or_else(|| corrupt("truncated key set"))
        };
        if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
            return Err(corrupt("not a key set"));
        }
        let len = usize::try_from(word(0)?).map_err(|_| corrupt("key count"))?;
        let width = usize::try_from(word(1)?).map_err(|_| corrupt("key width"))?;
        let n_offsets = usize::try_from(word(2)?).map_err(|_| corrupt("offset count"))?;
        let offsets = (0..n_offsets)
            .map(|i| word(3 + i))
            .collect::<Result<Vec<_>>>()?;
        let data = bytes.split_off(MAGIC.len() + (3 + n_offsets) * 8);
        let width = (width > 0).then_some(width);
        let fits = match width {
            Some(w) => len.checked_mul(w) == Some(data.len()),
            None => {
                n_offsets == len + 1
                    && offsets.windows(2).all(|p| p[0] <= p[1])
                    && offsets.last().is_some_and(|&e| e as usize == data.len())
            }
        };
        if !fits {
            return Err(corrupt("key set sizes do not add up"));
        }
        Ok(Some(Self {
            converter: Self::converter(key)?,
            columns: key.fields().iter().map(|f| f.name().clone()).collect(),
            data,
            width,
            offsets,
            len,
        }))
    }
}

/// A destination table the task cannot write into as `ignore` promises.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Problem {
    /// The precheck check it fails: `destination_schema` (columns) or
    /// `destination_conflicts`.
    pub check: &'static str,
    /// The destination table.
    pub table: String,
    /// What differs or would go wrong.
    pub problem: String,
    /// How to resolve it.
    pub fix: String,
}

impl Problem {
    /// The run's definite error for it.
    pub fn into_error(self) -> Error {
        Error::ConflictingTable {
            table: self.table,
            problem: self.problem,
            fix: self.fix,
        }
    }
}

/// What [`survey`] found in the destination.
#[derive(Clone, Debug, Default)]
pub struct Survey {
    /// The destination tables of the task that exist already.
    pub tables: Vec<String>,
    /// What the checkpoint keeps of them.
    pub existing: Existing,
    /// The existing `t_log` tables and the highest `record_id` in each
    /// (`None`: empty).
    pub logs: Vec<(String, Option<i64>)>,
    /// Why some cannot be written into.
    pub problems: Vec<Problem>,
}

/// What the task's destination tables that exist already hold, and
/// whether it can write into them as `conflicting_tables = "ignore"`
/// promises (see the module docs). Reads the `record_id` column of every
/// existing `t_log`.
///
/// # Errors
/// Sink errors.
pub async fn survey<S: Sink + ?Sized>(
    sink: &S,
    tables: &[SyncedTable],
    cfg: &crate::config::TaskConfig,
    meta: &MetaColumns,
    log_partitions: &[String],
) -> Result<Survey> {
    let tag = cfg.source.record_id_tag;
    let selected = cfg.sync.selected();
    let mut out = Survey {
        existing: Existing {
            next_record_id: 1,
            ..Existing::default()
        },
        ..Survey::default()
    };
    let ids = Arc::new(Schema::new(vec![arrow_schema::Field::new(
        &meta.record_id,
        arrow_schema::DataType::Int64,
        true,
    )]));
    for t in tables {
        let defs = [
            TableDef {
                name: t.base_table(),
                schema: t.base_schema.clone(),
                partition_columns: Vec::new(),
            },
            TableDef {
                name: t.log_table(),
                schema: t.log_schema.clone(),
                partition_columns: log_partitions.to_vec(),
            },
        ];
        for (i, def) in defs.iter().enumerate() {
            if !sink.table_exists(&def.name).await? {
                continue;
            }
            out.tables.push(def.name.clone());
            let differences = sink.table_differences(def).await?;
            if !differences.is_empty() {
                out.problems.push(Problem {
                    check: "destination_schema",
                    table: def.name.clone(),
                    problem: format!(
                        "it differs from the table the task writes for {}: {}",
                        t.source_name,
                        differences.join("; ")
                    ),
                    fix: format!(
                        "drop or rename {} (the task then creates it), give the task's table \
                         another name ([objects.tables.\"{}\"] name), or make the columns match \
                         ([objects.tables] columns edits, [destination] type_system)",
                        def.name, t.source_name
                    ),
                });
                continue;
            }
            if i == 0 {
                if !selected.full {
                    continue;
                }
                if t.dest_key().is_empty() {
                    out.problems.push(Problem {
                        check: "destination_conflicts",
                        table: def.name.clone(),
                        problem: format!(
                            "{} has no primary key and no NOT NULL unique key, so the full phase \
                             cannot tell which of its rows {} holds already (skipping equal rows \
                             or adding every row would both be wrong for a multiset)",
                            t.source_name, def.name
                        ),
                        fix: format!(
                            "add a primary key to {}, drop or rename {} (the full phase then \
                             copies every row), or leave \"full\" out of [sync] types",
                            t.source_name, def.name
                        ),
                    });
                    continue;
                }
                out.existing.base.insert(t.source_name.clone());
                continue;
            }
            let mut max: Option<i64> = None;
            for b in sink.read_table(&def.name, &ids).await? {
                let col = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or_else(|| {
                        Error::Mapping(format!("{}: record_id is not BIGINT", def.name))
                    })?;
                if let Some(m) = col.iter().flatten().max() {
                    max = Some(max.map_or(m, |x: i64| x.max(m)));
                }
            }
            out.logs.push((def.name.clone(), max));
            let Some(max) = max else { continue };
            let their_tag = (max as u64 >> 55) as u8;
            if their_tag > tag {
                out.problems.push(Problem {
                    check: "destination_conflicts",
                    table: def.name.clone(),
                    problem: format!(
                        "it holds record_ids of record_id_tag {their_tag} (up to {max}), above \
                         this task's tag {tag}: the task's changes would rank below those \
                         records in every merge"
                    ),
                    fix: format!(
                        "set [source] record_id_tag to {their_tag} or more (a higher tag \
                         outranks), or drop or rename {}",
                        def.name
                    ),
                });
            } else if their_tag == tag {
                let next = RecordIds::counter_of(max) + 1;
                out.existing.next_record_id = out.existing.next_record_id.max(next);
            }
        }
    }
    Ok(out)
}

/// Where the key set of a table's existing `t_base` is kept.
pub fn keys_path(state_dir: &Path, source_name: &str) -> std::path::PathBuf {
    state_dir.join("existing-keys").join(format!(
        "{}.keys",
        crate::private_fs::file_component(source_name)
    ))
}

/// The key set of `t`'s existing `t_base`: the one saved in `state_dir`,
/// else read from the sink and saved. Call it before the table's first
/// chunk is committed: only then is every key in `t_base` an old one.
///
/// # Errors
/// Sink and file errors.
pub async fn load_or_read<S: Sink + ?Sized>(
    sink: &S,
    state_dir: &Path,
    t: &SyncedTable,
    first_chunk: bool,
) -> Result<KeySet> {
    let key = key_schema(t)?;
    let path = keys_path(state_dir, &t.source_name);
    if let Some(set) = KeySet::load(&path, &key)? {
        return Ok(set);
    }
    if !first_chunk {
        return Err(Error::CorruptCheckpoint {
            path,
            reason: format!(
                "the keys {} held before the task are gone, and chunks of {} are committed \
                 already, so they cannot be told from the task's own rows; restore the file or \
                 start the task over with a new state_dir",
                t.base_table(),
                t.source_name
            ),
        });
    }
    let batches = sink.read_table(&t.base_table(), &key).await?;
    let set = KeySet::build(&key, &batches)?;
    drop(batches);
    set.save(&path)?;
    tracing::info!(
        table = %t.source_name,
        base = %t.base_table(),
        keys = set.len(),
        bytes = set.bytes(),
        "read the keys the existing t_base holds: the full phase skips rows with these keys \
         (conflicting_tables = \"ignore\")"
    );
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, StringArray};
    use arrow_schema::{DataType, Field};

    fn keys(ids: &[i64], names: &[&str]) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef),
            (
                "name",
                Arc::new(StringArray::from(names.to_vec())) as ArrayRef,
            ),
        ])
        .expect("batch")
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    fn ids_of(b: &RecordBatch) -> Vec<i64> {
        b.column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64")
            .values()
            .to_vec()
    }

    #[test]
    fn a_key_set_skips_known_keys_and_survives_a_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = schema();
        // Variable width (strings), duplicates across batches.
        let set = KeySet::build(
            &key,
            &[keys(&[3, 1], &["c", "a"]), keys(&[1, 7], &["a", "seven"])],
        )
        .expect("build");
        assert_eq!(set.len(), 3);
        let path = dir.path().join("k/t.keys");
        set.save(&path).expect("save");
        let back = KeySet::load(&path, &key).expect("load").expect("there");
        for s in [&set, &back] {
            let (kept, skipped) = s
                .remove_known(keys(&[1, 2, 3, 7], &["a", "a", "x", "seven"]))
                .expect("filter");
            assert_eq!(ids_of(&kept), [2, 3]);
            assert_eq!(skipped, 2);
        }
        // Fixed width (one BIGINT column).
        let one: SchemaRef = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let batch = |v: &[i64]| {
            RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(v.to_vec())) as ArrayRef)])
                .expect("batch")
        };
        let set = KeySet::build(&one, &[batch(&[5, -1, 5, 9])]).expect("build");
        assert_eq!((set.len(), set.bytes()), (3, 27));
        set.save(&path).expect("save");
        let back = KeySet::load(&path, &one).expect("load").expect("there");
        let (kept, skipped) = back.remove_known(batch(&[-1, 0, 9, 10])).expect("filter");
        assert_eq!((ids_of(&kept), skipped), (vec![0, 10], 2));
        assert!(
            KeySet::load(&dir.path().join("none"), &one)
                .expect("no file")
                .is_none()
        );
        std::fs::write(&path, b"SYNCKEY1short").expect("torn");
        assert!(KeySet::load(&path, &one).is_err());
    }
}
