//! Committed data as Parquet files, published through a manifest.
//!
//! Each data directory (a plain table's, or one partition's) holds Parquet
//! files and `_manifest.json`, the list of the files that are table data.
//! A file becomes visible only when a new manifest naming it replaces the old
//! one by `rename`, so a commit of many blocks is one atomic step: a process
//! killed anywhere in a commit leaves either the old or the new file list,
//! and files that no manifest names are never read. Files and manifests are
//! written under temporary names, flushed to disk and renamed.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

use crate::catalog::Column;
use crate::error::OdpsError;
use odps_tunnel::types::TimestampForm;

/// Name of a data directory's manifest.
pub const MANIFEST: &str = "_manifest.json";

fn internal(e: impl std::fmt::Display) -> OdpsError {
    OdpsError::internal(e.to_string())
}

/// One published file of a data directory.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ManifestEntry {
    /// File name inside the data directory.
    pub file: String,
    /// Rows in the file.
    pub rows: u64,
    /// The upload session that committed it.
    pub upload: String,
}

/// The published files of one data directory, in commit order.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Manifest {
    /// Bumped by every commit.
    pub version: u64,
    /// The visible files.
    pub files: Vec<ManifestEntry>,
}

impl Manifest {
    /// Reads a directory's manifest; a directory without one has no data.
    pub fn load(dir: &Path) -> Result<Self, OdpsError> {
        match std::fs::read(dir.join(MANIFEST)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| OdpsError::internal(format!("corrupt data manifest: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(OdpsError::io(e)),
        }
    }

    /// Whether an upload session's files are published here.
    pub fn has_upload(&self, upload: &str) -> bool {
        self.files.iter().any(|f| f.upload == upload)
    }

    /// Replaces the directory's manifest atomically: temporary file, fsync,
    /// rename, directory fsync. `before_rename` runs between the fsync and
    /// the rename (the crash hook of the commit tests).
    pub fn publish(&self, dir: &Path, before_rename: impl FnOnce()) -> Result<(), OdpsError> {
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        let bytes = serde_json::to_vec_pretty(self).map_err(internal)?;
        let mut file = File::create(&tmp).map_err(OdpsError::io)?;
        file.write_all(&bytes).map_err(OdpsError::io)?;
        file.sync_all().map_err(OdpsError::io)?;
        drop(file);
        before_rename();
        std::fs::rename(&tmp, dir.join(MANIFEST)).map_err(OdpsError::io)?;
        sync_dir(dir)
    }
}

/// Flushes a directory's entries (renames, new files) to disk.
pub fn sync_dir(dir: &Path) -> Result<(), OdpsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(OdpsError::io)
}

/// The Arrow schema a table's data columns are stored and read in: the
/// Tunnel's types, with `timestamp` and `timestamp_ntz` as seconds and
/// nanoseconds ([`TimestampForm::SecNano`]), so that every value MaxCompute
/// holds (0000-01-01 .. 9999-12-31) is kept exactly, not only what 64-bit
/// nanoseconds hold.
pub fn arrow_schema(columns: &[Column]) -> Result<SchemaRef, OdpsError> {
    Ok(odps_tunnel::types::arrow_schema_in(
        &crate::catalog::tunnel_columns(columns)?,
        TimestampForm::SecNano,
    ))
}

/// Writes batches to one Parquet file, atomically.
pub fn write_parquet(
    path: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), OdpsError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(OdpsError::io)?;
    }
    // A unique temporary name: a retried block may race with its first try.
    let tmp = path.with_extension(format!("{:x}.tmp", crate::catalog::now_nanos()));
    let file = File::create(&tmp).map_err(OdpsError::io)?;
    // Plain encoding without statistics: the emulator stores data for reading
    // it back, and must keep up with the fastest client it is tested with.
    let props = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(internal)?;
    for batch in batches {
        writer.write(batch).map_err(internal)?;
    }
    let file = writer.into_inner().map_err(internal)?;
    // On disk before it can be published.
    file.sync_all().map_err(OdpsError::io)?;
    std::fs::rename(&tmp, path).map_err(OdpsError::io)
}

/// Reads one Parquet file.
pub fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, OdpsError> {
    let file = File::open(path).map_err(OdpsError::io)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(internal)?
        .build()
        .map_err(internal)?;
    reader.map(|b| b.map_err(internal)).collect()
}

/// A query's result rows: its columns and batches (timestamps as seconds
/// and nanoseconds, as stored).
#[derive(Debug, Default)]
pub struct ResultSet {
    /// Result columns.
    pub columns: Vec<Column>,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

/// A published data file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataFile {
    /// Its path.
    pub path: PathBuf,
    /// Its rows.
    pub rows: u64,
}

/// The published files of a data directory (and, for a partial partition
/// spec, of its sub-directories), each directory's in commit order.
pub fn data_files(dir: &Path) -> Result<Vec<DataFile>, OdpsError> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    Ok(files)
}

fn collect(dir: &Path, files: &mut Vec<DataFile>) -> Result<(), OdpsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(OdpsError::io(e)),
    };
    let mut subdirs = Vec::new();
    for entry in entries {
        let path = entry.map_err(OdpsError::io)?.path();
        if path.is_dir() {
            subdirs.push(path);
        }
    }
    files.extend(Manifest::load(dir)?.files.into_iter().map(|f| DataFile {
        path: dir.join(f.file),
        rows: f.rows,
    }));
    subdirs.sort();
    for sub in subdirs {
        collect(&sub, files)?;
    }
    Ok(())
}

/// Brings a stored batch to the table's current columns, in the stored
/// form of [`arrow_schema()`] (`schema`): matched by name, columns added after
/// the file was written read as NULL, timestamps of files written before
/// the seconds-and-nanoseconds form converted.
pub fn adapt(
    batch: &RecordBatch,
    columns: &[Column],
    schema: &SchemaRef,
) -> Result<RecordBatch, OdpsError> {
    let mut converted = false;
    let arrays = columns
        .iter()
        .zip(schema.fields())
        .map(|(c, field)| {
            Ok(match batch.column_by_name(&c.name) {
                Some(array) => {
                    converted |= array.data_type() != field.data_type();
                    array.clone()
                }
                None => arrow_array::new_null_array(field.data_type(), batch.num_rows()),
            })
        })
        .collect::<Result<Vec<ArrayRef>, OdpsError>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    if !converted {
        return RecordBatch::try_new_with_options(schema.clone(), arrays, &options)
            .map_err(internal);
    }
    let as_stored = arrow_schema::Schema::new(
        columns
            .iter()
            .zip(&arrays)
            .map(|(c, a)| arrow_schema::Field::new(&c.name, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    let old = RecordBatch::try_new_with_options(std::sync::Arc::new(as_stored), arrays, &options)
        .map_err(internal)?;
    odps_tunnel::types::conform_batch_in(
        &crate::catalog::tunnel_columns(columns)?,
        &old,
        usize::MAX,
        TimestampForm::SecNano,
    )
    .map_err(internal)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;

    use super::*;

    #[test]
    fn added_columns_read_as_null() {
        let dir = tempfile::tempdir().unwrap();
        let col = |n: &str, t: &str| Column {
            name: n.into(),
            type_name: t.into(),
            comment: String::new(),
            nullable: true,
        };
        let old = vec![col("id", "bigint")];
        let schema = arrow_schema(&old).unwrap();
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))])
                .unwrap();
        let data = dir.path().join("a");
        let path = data.join("0001.parquet");
        write_parquet(&path, &schema, &[batch]).unwrap();
        // Written is not published.
        assert_eq!(data_files(dir.path()).unwrap(), vec![]);
        let manifest = Manifest {
            version: 1,
            files: vec![ManifestEntry {
                file: "0001.parquet".into(),
                rows: 2,
                upload: "u1".into(),
            }],
        };
        manifest.publish(&data, || {}).unwrap();
        assert_eq!(
            data_files(dir.path()).unwrap(),
            vec![DataFile {
                path: path.clone(),
                rows: 2
            }]
        );
        assert!(Manifest::load(&data).unwrap().has_upload("u1"));
        let new = vec![col("id", "bigint"), col("extra", "array<string>")];
        let new_schema = arrow_schema(&new).unwrap();
        let read = read_parquet(&path).unwrap();
        let adapted = adapt(&read[0], &new, &new_schema).unwrap();
        assert_eq!(adapted.num_columns(), 2);
        assert_eq!(adapted.column(1).null_count(), 2);
    }
}
