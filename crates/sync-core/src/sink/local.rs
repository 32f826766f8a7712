//! The local warehouse: one folder per destination table, `name=value`
//! folders per partition level, Parquet files inside; readable by any
//! Parquet tool (files and folders starting with `_` or `.` are ours).
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
use crate::private_fs::{self, file_component, within};
use arrow_array::RecordBatch;
use arrow_schema::{Field, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

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
}

impl LocalWarehouse {
    /// A warehouse rooted at `root` (created on first write), writing
    /// ZSTD-compressed Parquet without dictionaries.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            parquet: ParquetOptions::default(),
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

    /// Every row of a table, all partitions, in file-name order.
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
                batches.push(super::conform_read(&batch?, schema)?);
            }
        }
        Ok(batches)
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
        let mut files: Vec<(PathBuf, Vec<&RecordBatch>)> = Vec::new();
        let mut seq: BTreeMap<PathBuf, usize> = BTreeMap::new();
        let mut last: BTreeMap<PathBuf, usize> = BTreeMap::new();
        for tb in &data {
            let mut dir = within(Path::new(""), &tb.table)?;
            for (col, value) in partition_columns(&self.root, &tb.table)?
                .iter()
                .zip(&tb.partition)
            {
                dir.push(format!("{col}={value}"));
            }
            if let Some(&i) = last.get(&dir)
                && files[i].1[0].schema() == tb.batch.schema()
            {
                files[i].1.push(&tb.batch);
                continue;
            }
            let n = seq.entry(dir.clone()).or_default();
            last.insert(dir.clone(), files.len());
            let name = format!("{}-{n:05}.parquet", file_component(unit));
            files.push((dir.join(name), vec![&tb.batch]));
            *n += 1;
        }
        let planned: Vec<&PathBuf> = files.iter().map(|(p, _)| p).collect();
        let listing = serde_json::to_vec(&planned).map_err(|e| Error::Schema(e.to_string()))?;
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

/// A column's entry in `_table.json`.
fn column_json(f: &Field) -> serde_json::Value {
    serde_json::json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()})
}

/// One Parquet file of `batches` (at least one, all of one schema).
fn parquet_bytes(batches: &[&RecordBatch], opts: &ParquetOptions) -> Result<Vec<u8>> {
    let Some(first) = batches.first() else {
        return Err(Error::Schema("a Parquet file of no batches".into()));
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

fn partition_columns(root: &Path, table: &str) -> Result<Vec<String>> {
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
        .map_err(|e| Error::Schema(format!("{}: {e}", path.display())))?;
    Ok(def["partition_columns"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
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

    async fn table_differences(&self, def: &TableDef) -> Result<Vec<String>> {
        let path = within(&self.root, &def.name)?.join("_table.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("reading table definition", &path, e)),
        };
        let stored: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Schema(format!("{}: {e}", path.display())))?;
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
            .map_err(|e| Error::Schema(format!("commit task failed: {e}")))?
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
            .map_err(|e| Error::Schema(format!("{}: {e}", path.display())))?;
        let Some(list) = def["columns"].as_array_mut() else {
            return Err(Error::Schema(format!("{}: no column list", path.display())));
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
            .map_err(|e| Error::Schema(format!("read task failed: {e}")))?
    }

    async fn table_owners(&self, table: &str) -> Result<Owners> {
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

    async fn claim_table(&self, table: &str, tag: u8, task: &str) -> Result<()> {
        if super::check_owner(&self.table_owners(table).await?, table, tag, task)? {
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
                super::check_owner(&self.table_owners(table).await?, table, tag, task).map(|_| ())
            }
            Err(e) => Err(Error::io("writing the owner marker", &marker, e)),
        }
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
