//! Committed data as Parquet files: one file per committed block, in a
//! directory per table or partition. A file is written under a temporary
//! name and renamed, so readers never see half a file.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::catalog::Column;
use crate::error::OdpsError;

fn internal(e: impl std::fmt::Display) -> OdpsError {
    OdpsError::internal(e.to_string())
}

/// The Arrow schema of a table's data columns.
pub fn arrow_schema(columns: &[Column]) -> Result<SchemaRef, OdpsError> {
    Ok(odps_tunnel::types::arrow_schema(
        &crate::catalog::tunnel_columns(columns)?,
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
    let tmp = path.with_extension(format!("{:x}.tmp", crate::instances::now_nanos()));
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
    writer.close().map_err(internal)?;
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

/// Rows in one Parquet file, from its footer.
pub fn row_count(path: &Path) -> Result<u64, OdpsError> {
    let file = File::open(path).map_err(OdpsError::io)?;
    let reader = SerializedFileReader::new(file).map_err(internal)?;
    Ok(u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0))
}

/// The Parquet files of a data directory (and, for a partial partition spec,
/// its sub-directories), in commit order.
pub fn data_files(dir: &Path) -> Result<Vec<PathBuf>, OdpsError> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), OdpsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(OdpsError::io(e)),
    };
    for entry in entries {
        let path = entry.map_err(OdpsError::io)?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            files.push(path);
        }
    }
    Ok(())
}

/// Brings a stored batch to the table's current columns: matched by name,
/// columns added after the file was written read as NULL.
pub fn adapt(
    batch: &RecordBatch,
    columns: &[Column],
    schema: &SchemaRef,
) -> Result<RecordBatch, OdpsError> {
    let arrays = columns
        .iter()
        .map(|c| {
            Ok(match batch.column_by_name(&c.name) {
                Some(array) => array.clone(),
                None => arrow_array::new_null_array(&c.odps_type()?.to_arrow(), batch.num_rows()),
            })
        })
        .collect::<Result<Vec<ArrayRef>, OdpsError>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), arrays, &options).map_err(internal)
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
        let path = dir.path().join("a").join("0001.parquet");
        write_parquet(&path, &schema, &[batch]).unwrap();
        assert_eq!(data_files(dir.path()).unwrap(), vec![path.clone()]);
        assert_eq!(row_count(&path).unwrap(), 2);
        let new = vec![col("id", "bigint"), col("extra", "array<string>")];
        let new_schema = arrow_schema(&new).unwrap();
        let read = read_parquet(&path).unwrap();
        let adapted = adapt(&read[0], &new, &new_schema).unwrap();
        assert_eq!(adapted.num_columns(), 2);
        assert_eq!(adapted.column(1).null_count(), 2);
    }
}
