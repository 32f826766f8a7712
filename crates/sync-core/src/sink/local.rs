//! The local warehouse: one folder per destination table, `name=value`
//! folders per partition level, Parquet files inside; readable by any
//! Parquet tool (files and folders starting with `_` or `.` are ours).
//!
//! Columns are stored in the Parquet form of [`mapping::parquet_type`]:
//! every engine (DuckDB, Spark, pandas) reads each value as the source shows
//! it, TIME as its text. Tables written before TIME became text hold it as
//! INT64 microseconds (an Arrow Duration); those keep that form for the
//! columns `_table.json` records so (one type per column across a table's
//! files), and reads take either.
//!
//! ```text
//! warehouse/
//!   customers_base/<unit>-<n>.parquet
//!   customers_log/new_dts_sync_modifytime_year=2026/.../<unit>-<n>.parquet
//!   _commits/<unit>          one empty marker per fully committed unit
//!   customers_log/_owner.tag-0   the id of the task writing it under record_id_tag 0
//! ```
//!
//! An owner marker ([`Sink::claim_table`]) is written under a temp name and
//! hard-linked into place, which fails when the name exists: of two tasks
//! claiming one tag at the same instant, exactly one wins.
//!
//! A unit commits file by file. First a manifest listing the unit's files is
//! written to `_pending/<unit>.json`; then each file is written under a temp
//! name, fsynced and renamed into place; then the marker is written and the
//! manifest removed. A crash midway leaves some files and the manifest; the
//! redo deletes the files the manifest names before writing again, so nothing
//! is doubled even when the redo's rows differ (a snapshot chunk read again).

use super::{Owners, Sink, TableBatch, TableDef};
use crate::checkpoint::{sync_dir, write_durably};
pub use crate::config::ParquetCompression;
use crate::error::{Error, Result};
use crate::mapping;
use crate::private_fs::{self, file_component, within};
use arrow_array::RecordBatch;
use arrow_schema::{Field, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing::warn;

/// Folder of the commit markers.
const COMMITS: &str = "_commits";
/// Folder of the manifests of units being committed.
const PENDING: &str = "_pending";
/// Name prefix of a table's owner markers, followed by the tag.
const OWNER_PREFIX: &str = "_owner.tag-";

/// How the warehouse writes its Parquet files.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct ParquetOptions {
    /// The codec of every column.
    pub compression: ParquetCompression,
    /// Dictionary encoding of every column.
    pub dictionary: bool,
}

impl ParquetOptions {
    fn properties(&self) -> WriterProperties {
        let codec = match self.compression {
            ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::Lz4 => Compression::LZ4_RAW,
            ParquetCompression::None => Compression::UNCOMPRESSED,
        };
        WriterProperties::builder()
            .set_compression(codec)
            .set_dictionary_enabled(self.dictionary)
            .build()
    }
}

/// A warehouse directory on the local file system.
#[derive(Clone, Debug)]
pub struct LocalWarehouse {
    root: PathBuf,
    parquet: ParquetOptions,
    /// Tables whose INT64 TIME columns were warned about (once per process).
    warned: Arc<Mutex<BTreeSet<String>>>,
}

impl LocalWarehouse {
    /// A warehouse rooted at `root` (created on first write), writing
    /// ZSTD-compressed Parquet without dictionaries.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            parquet: ParquetOptions::default(),
            warned: Arc::default(),
        }
    }

    /// The same warehouse writing its files with `parquet`.
    pub fn with_parquet(mut self, parquet: ParquetOptions) -> Self {
        self.parquet = parquet;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every row of a table, all partitions, in file-name order, as stored
    /// (TIME as text: [`mapping::parquet_type`]; [`Sink::read_table`] gives
    /// the task's types).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Parquet`] when a file cannot be read.
    pub fn read_table_blocking(&self, name: &str) -> Result<Vec<RecordBatch>> {
        let mut files = Vec::new();
        collect_parquet(&within(&self.root, name)?, &mut files)?;
        files.sort();
        let mut batches = Vec::new();
        for path in files {
            let file = fs::File::open(&path).map_err(|e| Error::io("opening", &path, e))?;
            for batch in ParquetRecordBatchReaderBuilder::try_new(file)?.build()? {
                batches.push(batch?);
            }
        }
        Ok(batches)
    }

    /// Says once per table that its TIME columns keep the INT64 form.
    fn warn_legacy(&self, table: &str, columns: &[String]) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.insert(table.to_owned()) {
            warn!(
                table,
                columns = %columns.join(", "),
                "these TIME columns were created by an older version as INT64 microseconds and \
                 stay so in this table (merge and verify read them right; other Parquet engines \
                 read a number of microseconds): a table created now stores TIME as its text"
            );
        }
    }

    /// Every row of a table in `schema`'s columns ([`super::conform_read`]),
    /// each file read for those columns only.
    fn read_columns_blocking(&self, name: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let mut files = Vec::new();
        collect_parquet(&within(&self.root, name)?, &mut files)?;
        files.sort();
        let mut batches = Vec::new();
        for path in files {
            let file = fs::File::open(&path).map_err(|e| Error::io("opening", &path, e))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
            // Top-level columns by name, without case, as conform_read matches them.
            let stored = builder.schema().clone();
            let roots: Vec<usize> = stored
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| {
                    schema
                        .fields()
                        .iter()
                        .any(|w| w.name().eq_ignore_ascii_case(f.name()))
                })
                .map(|(i, _)| i)
                .collect();
            // None of them in this file (all added later): read it whole,
            // for its row count.
            let mask = if roots.is_empty() {
                parquet::arrow::ProjectionMask::all()
            } else {
                parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), roots)
            };
            for batch in builder.with_projection(mask).build()? {
                batches.push(super::conform_read(
                    &times_from_text(&batch?, schema)?,
                    schema,
                )?);
            }
        }
        Ok(batches)
    }

    /// Runs file system work on a blocking thread, so the tables of a
    /// schema phase overlap their fsyncs.
    async fn blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|source| Error::Join { what, source })?
    }

    /// [`Sink::ensure_table`] (file system calls: on a blocking thread).
    fn ensure_table_blocking(&self, def: &TableDef) -> Result<()> {
        let dir = within(&self.root, &def.name)?;
        let path = dir.join("_table.json");
        if path.exists() {
            return Ok(());
        }
        private_fs::create_dir_all(&dir)?;
        let columns: Vec<serde_json::Value> =
            def.schema.fields().iter().map(|f| column_json(f)).collect();
        let json = serde_json::json!({"name": def.name, "columns": columns, "partition_columns": def.partition_columns});
        write_durably(&path, json.to_string().as_bytes())?;
        sync_dir(&dir)
    }

    /// The owner markers of `table` (tag → task id).
    fn owners_blocking(&self, table: &str) -> Result<Owners> {
        let dir = within(&self.root, table)?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Owners::new()),
            Err(e) => return Err(Error::io("listing", &dir, e)),
        };
        let mut owners = Owners::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing", &dir, e))?;
            let name = entry.file_name();
            let Some(tag) = name
                .to_str()
                .and_then(|n| n.strip_prefix(OWNER_PREFIX))
                .and_then(|t| t.parse::<u8>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let task = fs::read_to_string(&path)
                .map_err(|e| Error::io("reading the owner marker", &path, e))?;
            owners.insert(tag, task.trim().to_owned());
        }
        Ok(owners)
    }

    /// [`Sink::claim_table`] (file system calls: on a blocking thread).
    fn claim_table_blocking(&self, table: &str, tag: u8, task: &str) -> Result<()> {
        if super::check_owner(&self.owners_blocking(table)?, table, tag, task)? {
            return Ok(());
        }
        let dir = within(&self.root, table)?;
        private_fs::create_dir_all(&dir)?;
        let marker = dir.join(format!("{OWNER_PREFIX}{tag}"));
        let tmp = dir.join(format!(".owner.tag-{tag}.{}.tmp", std::process::id()));
        write_durably(&tmp, task.as_bytes())?;
        let linked = fs::hard_link(&tmp, &marker);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => sync_dir(&dir),
            // Another task claimed the tag since the read: it wins.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                super::check_owner(&self.owners_blocking(table)?, table, tag, task).map(|_| ())
            }
            Err(e) => Err(Error::io("writing the owner marker", &marker, e)),
        }
    }

    fn commit_blocking(&self, unit: &str, data: Vec<TableBatch>) -> Result<()> {
        // An earlier attempt at this unit may have left files (a crash before
        // its marker): its manifest names them, and they go first, so a redo
        // whose rows differ (a re-read snapshot chunk) leaves no stale copy.
        let pending_dir = self.root.join(PENDING);
        private_fs::create_dir_all(&pending_dir)?;
        let manifest = pending_dir.join(format!("{}.json", file_component(unit)));
        if let Ok(bytes) = fs::read(&manifest) {
            let old: Vec<PathBuf> = serde_json::from_slice(&bytes).unwrap_or_default();
            for f in old {
                match fs::remove_file(within(&self.root, &f)?) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::io("removing a file of an unfinished commit", f, e));
                    }
                }
            }
        }
        // One file per table partition (and schema) of the unit, however
        // many batches feed it: a snapshot chunk is one file, not one per
        // reader batch, which saves a writer, a footer and two fsyncs each.
        let mut stored = Vec::with_capacity(data.len());
        for tb in &data {
            let def = stored_def(&self.root, &tb.table)?;
            if !def.legacy_times.is_empty() {
                self.warn_legacy(&tb.table, &def.legacy_times);
            }
            let mut dir = within(Path::new(""), &tb.table)?;
            for (col, value) in def.partition_columns.iter().zip(&tb.partition) {
                dir.push(format!("{col}={value}"));
            }
            stored.push((
                dir,
                mapping::batch_to_parquet(&tb.batch, &def.legacy_times)?,
            ));
        }
        let mut files: Vec<(PathBuf, Vec<&RecordBatch>)> = Vec::new();
        let mut seq: BTreeMap<PathBuf, usize> = BTreeMap::new();
        let mut last: BTreeMap<PathBuf, usize> = BTreeMap::new();
        for (dir, batch) in &stored {
            if let Some(&i) = last.get(dir)
                && files[i].1[0].schema() == batch.schema()
            {
                files[i].1.push(batch);
                continue;
            }
            let n = seq.entry(dir.clone()).or_default();
            last.insert(dir.clone(), files.len());
            let name = format!("{}-{n:05}.parquet", file_component(unit));
            files.push((dir.join(name), vec![batch]));
            *n += 1;
        }
        let planned: Vec<&PathBuf> = files.iter().map(|(p, _)| p).collect();
        let listing = serde_json::to_vec(&planned)
            .map_err(Error::serialize(format!("the file list of unit {unit}")))?;
        write_durably(&manifest, &listing)?;
        sync_dir(&pending_dir)?;
        for (rel, batches) in &files {
            let file = within(&self.root, rel)?;
            let dir = file.parent().unwrap_or(&self.root).to_path_buf();
            private_fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(
                ".{}.tmp",
                rel.file_name().unwrap_or_default().to_string_lossy()
            ));
            write_durably(&tmp, &parquet_bytes(batches, &self.parquet)?)?;
            fs::rename(&tmp, &file).map_err(|e| Error::io("renaming into place", &file, e))?;
            sync_dir(&dir)?;
        }
        let commits = self.root.join(COMMITS);
        private_fs::create_dir_all(&commits)?;
        write_durably(&commits.join(file_component(unit)), b"")?;
        sync_dir(&commits)?;
        fs::remove_file(&manifest).map_err(|e| Error::io("removing", &manifest, e))
    }
}

/// A column's entry in `_table.json`: its stored (Parquet) type.
fn column_json(f: &Field) -> serde_json::Value {
    serde_json::json!({"name": f.name(), "type": mapping::parquet_type(f).to_string(), "nullable": f.is_nullable()})
}

/// One Parquet file of `batches` (at least one, all of one schema).
fn parquet_bytes(batches: &[&RecordBatch], opts: &ParquetOptions) -> Result<Vec<u8>> {
    let Some(first) = batches.first() else {
        return Err(Error::Internal("a Parquet file of no batches".into()));
    };
    // Room for the file at a guessed 1:2 ratio saves the growing copies.
    let memory: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let mut buf = Vec::with_capacity(memory / 2);
    let mut writer = ArrowWriter::try_new(&mut buf, first.schema(), Some(opts.properties()))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(buf)
}

/// What `_table.json` says about how a table is stored.
struct StoredDef {
    /// Partition column names, coarse to fine.
    partition_columns: Vec<String>,
    /// TIME columns an older version created as Duration (INT64), which
    /// keep that form.
    legacy_times: Vec<String>,
}

fn stored_def(root: &Path, table: &str) -> Result<StoredDef> {
    let path = within(root, table)?.join("_table.json");
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        // Never recreate a table behind the task's back: its earlier rows
        // (and the checkpoint's promise that they are there) would be gone.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::DestinationTableMissing {
                table: table.to_owned(),
                destination: root.display().to_string(),
            });
        }
        Err(e) => return Err(Error::io("reading table definition", &path, e)),
    };
    let def: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::unreadable(path.display().to_string(), e))?;
    let partition_columns = def["partition_columns"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let legacy_times = def["columns"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["type"].as_str().is_some_and(mapping::is_legacy_time_type))
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(StoredDef {
        partition_columns,
        legacy_times,
    })
}

/// A stored batch with its TIME text read back as the Duration `schema`
/// says (a column matched as [`super::conform_read`] matches it).
fn times_from_text(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let have = batch.schema();
    let mut columns = batch.columns().to_vec();
    let mut fields: Vec<Field> = have.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut changed = false;
    for want in schema.fields() {
        if !matches!(want.data_type(), arrow_schema::DataType::Duration(_)) {
            continue;
        }
        let found = have.index_of(want.name()).ok().or_else(|| {
            have.fields()
                .iter()
                .position(|h| h.name().eq_ignore_ascii_case(want.name()))
        });
        if let Some(i) = found
            && columns[i].data_type() != want.data_type()
        {
            columns[i] = mapping::array_from_parquet(&columns[i], want)?;
            fields[i] = fields[i]
                .clone()
                .with_data_type(columns[i].data_type().clone());
            changed = true;
        }
    }
    if !changed {
        return Ok(batch.clone());
    }
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        std::sync::Arc::new(arrow_schema::Schema::new(fields)),
        columns,
        &options,
    )?)
}

fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect_parquet(&path, out)?;
        } else if name.ends_with(".parquet") {
            out.push(path);
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Sink for LocalWarehouse {
    async fn probe(&self) -> Result<()> {
        // Writing and removing a file proves more than the folder's existence.
        private_fs::create_dir_all(&self.root)?;
        let path = self.root.join(format!(".probe-{}", std::process::id()));
        write_durably(&path, b"probe")?;
        fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))
    }

    async fn table_exists(&self, name: &str) -> Result<bool> {
        Ok(within(&self.root, name)?.join("_table.json").exists())
    }

    async fn ensure_table(&self, def: &TableDef) -> Result<()> {
        let (this, def) = (self.clone(), def.clone());
        self.blocking("create a table", move || this.ensure_table_blocking(&def))
            .await
    }

    async fn table_differences(&self, def: &TableDef) -> Result<Vec<String>> {
        let path = within(&self.root, &def.name)?.join("_table.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("reading table definition", &path, e)),
        };
        let stored: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::unreadable(path.display().to_string(), e))?;
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let have: Vec<(String, String)> = stored["columns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["name"].as_str().unwrap_or_default().to_owned(),
                            c["type"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let want: Vec<(String, String)> = def
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        Ok(super::differences(
            &have,
            &want,
            &strings(&stored["partition_columns"]),
            &def.partition_columns,
        ))
    }

    async fn commit_unit(&self, unit: &str, data: Vec<TableBatch>) -> Result<()> {
        let this = self.clone();
        let unit = unit.to_owned();
        tokio::task::spawn_blocking(move || this.commit_blocking(&unit, data))
            .await
            .map_err(|source| Error::Join {
                what: "commit",
                source,
            })?
    }

    async fn is_committed(&self, unit: &str) -> Result<bool> {
        Ok(self.root.join(COMMITS).join(file_component(unit)).exists())
    }

    /// Rewrites `_table.json` with the new columns; the Parquet files are
    /// self-describing, and readers take a column a file lacks as NULL.
    async fn add_columns(&self, table: &str, columns: &[Field]) -> Result<()> {
        let path = within(&self.root, table)?.join("_table.json");
        let bytes = fs::read(&path).map_err(|e| Error::io("reading table definition", &path, e))?;
        let mut def: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::unreadable(path.display().to_string(), e))?;
        let Some(list) = def["columns"].as_array_mut() else {
            return Err(Error::unreadable(
                path.display().to_string(),
                "no column list",
            ));
        };
        let mut added = false;
        for f in columns {
            let known = list.iter().any(|c| {
                c["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(f.name()))
            });
            if !known {
                list.push(column_json(f));
                added = true;
            }
        }
        if added {
            write_durably(&path, def.to_string().as_bytes())?;
            sync_dir(path.parent().unwrap_or(&self.root))?;
        }
        Ok(())
    }

    /// Reads only the columns of `schema` from each file (a key or the
    /// `record_id` alone costs what those columns hold, not the rows).
    async fn read_table(&self, name: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let this = self.clone();
        let name = name.to_owned();
        let schema = schema.clone();
        tokio::task::spawn_blocking(move || this.read_columns_blocking(&name, &schema))
            .await
            .map_err(|source| Error::Join {
                what: "read",
                source,
            })?
    }

    async fn table_owners(&self, table: &str) -> Result<Owners> {
        self.owners_blocking(table)
    }

    async fn claim_table(&self, table: &str, tag: u8, task: &str) -> Result<()> {
        let (this, table, task) = (self.clone(), table.to_owned(), task.to_owned());
        self.blocking("claim a table", move || {
            this.claim_table_blocking(&table, tag, &task)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(ids: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("v", DataType::Utf8, true),
        ]));
        let names: Vec<String> = ids.iter().map(|i| format!("row {i} 🚲")).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names)),
            ],
        )
        .expect("batch")
    }

    fn rows(batches: &[RecordBatch]) -> usize {
        batches.iter().map(RecordBatch::num_rows).sum()
    }

    #[tokio::test]
    async fn committed_units_are_readable_and_a_redo_doubles_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wh = LocalWarehouse::new(dir.path());
        let def = TableDef {
            name: "t_log".into(),
            schema: batch(&[]).schema(),
            partition_columns: vec!["modifytime_day".into()],
        };
        assert!(!wh.table_exists("t_log").await.expect("exists"));
        wh.ensure_table(&def).await.expect("create");
        assert!(wh.table_exists("t_log").await.expect("exists"));
        let unit = vec![
            TableBatch {
                table: "t_log".into(),
                partition: vec!["01".into()],
                batch: batch(&[1, 2]),
            },
            TableBatch {
                table: "t_log".into(),
                partition: vec!["02".into()],
                batch: batch(&[3]),
            },
            TableBatch {
                table: "t_log".into(),
                partition: vec!["02".into()],
                batch: batch(&[4, 5, 6]),
            },
        ];
        assert!(!wh.is_committed("u1").await.expect("committed?"));
        wh.commit_unit("u1", unit).await.expect("commit");
        assert!(wh.is_committed("u1").await.expect("committed?"));
        assert_eq!(rows(&wh.read_table_blocking("t_log").expect("read")), 6);
        // The two batches of partition 02 share one file.
        let files_02 = fs::read_dir(dir.path().join("t_log/modifytime_day=02"))
            .expect("partition 02")
            .count();
        assert_eq!(files_02, 1);
        // A crash after the files but before the marker: the redo replaces, never adds,
        // even when it brings fewer files than the first attempt.
        fs::remove_file(dir.path().join("_commits/u1")).expect("drop marker");
        let listing: Vec<PathBuf> = [
            "t_log/modifytime_day=01/u1-00000.parquet",
            "t_log/modifytime_day=02/u1-00000.parquet",
            "t_log/modifytime_day=02/u1-00001.parquet",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        fs::create_dir_all(dir.path().join("_pending")).expect("pending dir");
        fs::write(
            dir.path().join("_pending/u1.json"),
            serde_json::to_vec(&listing).expect("json"),
        )
        .expect("manifest");
        let smaller = vec![TableBatch {
            table: "t_log".into(),
            partition: vec!["02".into()],
            batch: batch(&[3, 4]),
        }];
        wh.commit_unit("u1", smaller).await.expect("redo");
        assert_eq!(rows(&wh.read_table_blocking("t_log").expect("read")), 2);
        assert!(!dir.path().join("_pending/u1.json").exists());
    }

    #[tokio::test]
    async fn every_codec_a_task_file_may_name_writes_and_reads_back() {
        for name in ParquetCompression::NAMES {
            let dir = tempfile::tempdir().expect("tempdir");
            let compression = ParquetCompression::from_name(name).expect("codec");
            let wh = LocalWarehouse::new(dir.path()).with_parquet(ParquetOptions {
                compression,
                dictionary: false,
            });
            let def = TableDef {
                name: "t_base".into(),
                schema: batch(&[]).schema(),
                partition_columns: vec![],
            };
            wh.ensure_table(&def).await.expect("create");
            let unit = vec![TableBatch {
                table: "t_base".into(),
                partition: vec![],
                batch: batch(&[1, 2, 3]),
            }];
            wh.commit_unit("u1", unit)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let back = wh.read_table_blocking("t_base").expect("read");
            assert_eq!(back, vec![batch(&[1, 2, 3])], "{name}");
        }
    }

    #[tokio::test]
    async fn added_columns_read_as_null_in_older_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wh = LocalWarehouse::new(dir.path());
        let def = TableDef {
            name: "t_base".into(),
            schema: batch(&[]).schema(),
            partition_columns: vec![],
        };
        wh.ensure_table(&def).await.expect("create");
        let one = |b: RecordBatch| {
            vec![TableBatch {
                table: "t_base".into(),
                partition: vec![],
                batch: b,
            }]
        };
        wh.commit_unit("u1", one(batch(&[1, 2])))
            .await
            .expect("old rows");
        let extra = Field::new("extra", DataType::Int64, false);
        wh.add_columns("t_base", std::slice::from_ref(&extra))
            .await
            .expect("add");
        wh.add_columns("t_base", std::slice::from_ref(&extra))
            .await
            .expect("again: nothing twice");
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("t_base/_table.json")).expect("def"))
                .expect("json");
        assert_eq!(json["columns"].as_array().map(Vec::len), Some(3));
        let old = batch(&[3]);
        let mut fields: Vec<Field> = old
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(extra);
        let schema = Arc::new(Schema::new(fields));
        let mut columns = old.columns().to_vec();
        columns.push(Arc::new(Int64Array::from(vec![30])));
        let new = RecordBatch::try_new(schema.clone(), columns).expect("new rows");
        wh.commit_unit("u2", one(new)).await.expect("new rows");
        let read = wh.read_table("t_base", &schema).await.expect("read");
        let extra: Vec<Option<i64>> = read
            .iter()
            .flat_map(|b| {
                let c = b
                    .column(2)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("i64");
                c.iter().collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(extra, [None, None, Some(30)]);
        assert!(read[0].schema().field(2).is_nullable());
        // Only the added column: the older file's rows still count.
        let only = Arc::new(Schema::new(vec![Field::new(
            "extra",
            DataType::Int64,
            true,
        )]));
        let read = wh
            .read_table("t_base", &only)
            .await
            .expect("read one column");
        assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
        assert_eq!(read[0].num_columns(), 1);
    }

    fn times(name: &str, us: Vec<Option<i64>>) -> RecordBatch {
        use std::collections::HashMap;
        let field = Field::new(
            name,
            DataType::Duration(arrow_schema::TimeUnit::Microsecond),
            true,
        )
        .with_metadata(HashMap::from([(
            mapping::MYSQL_TYPE.to_owned(),
            "time(6)".to_owned(),
        )]));
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![field])),
            vec![Arc::new(arrow_array::DurationMicrosecondArray::from(us))],
        )
        .expect("batch")
    }

    fn stored_json(dir: &Path, table: &str) -> serde_json::Value {
        serde_json::from_slice(&fs::read(dir.join(table).join("_table.json")).expect("def"))
            .expect("json")
    }

    #[tokio::test]
    async fn time_is_stored_as_text_and_older_int64_tables_keep_reading_right() {
        let edges = vec![
            Some(-3_020_399_999_999),
            Some(3_020_399_999_999),
            Some(1),
            None,
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        let wh = LocalWarehouse::new(dir.path());
        let one = |table: &str, b: RecordBatch| {
            vec![TableBatch {
                table: table.into(),
                partition: vec![],
                batch: b,
            }]
        };
        // A table created now: the text MaxCompute gets, read back exactly.
        let new = times("tm", edges.clone());
        let def = TableDef {
            name: "new_base".into(),
            schema: new.schema(),
            partition_columns: vec![],
        };
        wh.ensure_table(&def).await.expect("create");
        assert_eq!(
            stored_json(dir.path(), "new_base")["columns"][0]["type"],
            "Utf8"
        );
        wh.commit_unit("u1", one("new_base", new.clone()))
            .await
            .expect("commit");
        let raw = wh.read_table_blocking("new_base").expect("raw");
        let text = raw[0]
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("TIME stored as text");
        assert_eq!(
            text.iter().collect::<Vec<_>>(),
            [
                Some("-838:59:59.999999"),
                Some("838:59:59.999999"),
                Some("00:00:00.000001"),
                None
            ]
        );
        let read = wh
            .read_table("new_base", &new.schema())
            .await
            .expect("read");
        assert_eq!(read[0].column(0).as_ref(), new.column(0).as_ref());

        // A table an older version created: `_table.json` records the
        // Duration, its files hold INT64 microseconds. It keeps that form
        // (one type per column across its files), a TIME column added now
        // is text, and reads give the task's Duration for both.
        let old_dir = dir.path().join("old_base");
        fs::create_dir_all(&old_dir).expect("dir");
        fs::write(
            old_dir.join("_table.json"),
            r#"{"name":"old_base","columns":[{"name":"tm","type":"Duration(µs)","nullable":true}],"partition_columns":[]}"#,
        )
        .expect("old definition");
        wh.ensure_table(&TableDef {
            name: "old_base".into(),
            schema: new.schema(),
            partition_columns: vec![],
        })
        .await
        .expect("exists: warned, kept");
        wh.commit_unit("o1", one("old_base", new.clone()))
            .await
            .expect("old form");
        let added = times("tm2", vec![Some(-45_000_500_000), None, None, Some(0)]);
        wh.add_columns("old_base", &[added.schema().field(0).clone()])
            .await
            .expect("add");
        let both = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                new.schema().field(0).clone(),
                added.schema().field(0).clone(),
            ])),
            vec![new.column(0).clone(), added.column(0).clone()],
        )
        .expect("both");
        wh.commit_unit("o2", one("old_base", both.clone()))
            .await
            .expect("new column");
        let raw = wh.read_table_blocking("old_base").expect("raw");
        for b in &raw {
            assert_eq!(
                b.column(0).data_type(),
                &DataType::Duration(arrow_schema::TimeUnit::Microsecond)
            );
        }
        assert_eq!(raw[1].column(1).data_type(), &DataType::Utf8);
        let read = wh
            .read_table("old_base", &both.schema())
            .await
            .expect("read");
        assert_eq!(read[0].column(0).as_ref(), new.column(0).as_ref());
        assert_eq!(read[0].column(1).null_count(), 4);
        assert_eq!(read[1].column(0).as_ref(), new.column(0).as_ref());
        assert_eq!(read[1].column(1).as_ref(), added.column(0).as_ref());

        // Text that is no TIME is refused, naming the column.
        let bad = Arc::new(Schema::new(vec![Field::new("tm", DataType::Utf8, true)]));
        fs::write(
            dir.path().join("new_base/x.parquet"),
            parquet_bytes(
                &[
                    &RecordBatch::try_new(bad, vec![Arc::new(StringArray::from(vec!["25:61:00"]))])
                        .expect("bad"),
                ],
                &ParquetOptions::default(),
            )
            .expect("bytes"),
        )
        .expect("bad file");
        let err = wh
            .read_table("new_base", &new.schema())
            .await
            .expect_err("not a TIME");
        assert!(err.to_string().contains("`tm`"), "{err}");
    }

    #[tokio::test]
    async fn one_task_per_tag_owns_a_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wh = LocalWarehouse::new(dir.path());
        assert!(wh.table_owners("t_log").await.expect("none").is_empty());
        wh.claim_table("t_log", 0, "ta").await.expect("first claim");
        wh.claim_table("t_log", 0, "ta")
            .await
            .expect("again: a no-op");
        let err = wh
            .claim_table("t_log", 0, "tb")
            .await
            .expect_err("same tag, other task");
        assert!(
            matches!(&err, Error::TableOwned { owner, tag: 0, .. } if owner == "ta"),
            "{err}"
        );
        wh.claim_table("t_log", 1, "tb").await.expect("other tag");
        let owners = wh.table_owners("t_log").await.expect("owners");
        assert_eq!(
            owners.into_iter().collect::<Vec<_>>(),
            [(0, "ta".to_owned()), (1, "tb".to_owned())]
        );
        // Invisible to readers of the table.
        assert!(wh.read_table_blocking("t_log").expect("read").is_empty());
    }

    #[tokio::test]
    async fn leftover_temp_files_are_invisible() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wh = LocalWarehouse::new(dir.path());
        let def = TableDef {
            name: "t_base".into(),
            schema: batch(&[]).schema(),
            partition_columns: vec![],
        };
        wh.ensure_table(&def).await.expect("create");
        wh.commit_unit(
            "c1",
            vec![TableBatch {
                table: "t_base".into(),
                partition: vec![],
                batch: batch(&[1]),
            }],
        )
        .await
        .expect("commit");
        fs::write(
            dir.path().join("t_base/.c2-00000.parquet.tmp"),
            b"half a file",
        )
        .expect("torn temp");
        assert_eq!(rows(&wh.read_table_blocking("t_base").expect("read")), 1);
    }
}
