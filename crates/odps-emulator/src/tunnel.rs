//! The batch Tunnel: upload sessions (create, status, block upload, commit)
//! and download sessions (create, status, read), in the Arrow and the
//! protobuf record formats. Uploaded blocks are staged beside the session and
//! only become table data when the session is committed.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::catalog::{
    self, Catalog, Column, PartitionMeta, PartitionValues, TableMeta, now_nanos, now_secs,
};
use crate::error::OdpsError;
use crate::faults::{CrashPoint, Faults, Operation};
use crate::request::TableRequest;
use odps_tunnel::encode::arrow::{BlockEncoder, EncoderOptions, decode_block};
use odps_tunnel::encode::proto::{RecordDecoder, RecordEncoder};
use odps_tunnel::types::{TimestampForm, conform_batch_in};

use crate::storage;

/// Largest block id a session accepts (ids run from 0).
const MAX_BLOCK_ID: u64 = 19_999;
/// Largest single field the SDK may send, reported in the session.
const MAX_FIELD_SIZE: u64 = 8 * 1024 * 1024;

/// An upload session, persisted beside its staged blocks.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct UploadSession {
    id: String,
    table: String,
    table_id: String,
    partition: PartitionValues,
    columns: Vec<Column>,
    partition_keys: Vec<Column>,
    overwrite: bool,
    committed: bool,
    /// Block id → rows staged for it.
    blocks: BTreeMap<u64, u64>,
}

/// A download session: the files and row count at creation time.
#[derive(Clone, Debug)]
struct DownloadSession {
    meta: TableMeta,
    files: Vec<PathBuf>,
    /// An instance's result rows, served instead of files.
    result: Vec<RecordBatch>,
    record_count: u64,
}

/// Tunnel state shared by all requests.
#[derive(Debug)]
pub struct Tunnel {
    catalog: Arc<Catalog>,
    meta_lock: Arc<Mutex<()>>,
    sessions_lock: Mutex<()>,
    downloads: Mutex<HashMap<(String, String), DownloadSession>>,
    faults: Faults,
}

/// The body format of a block or a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Chunked Arrow IPC record batches.
    Arrow,
    /// The protobuf record format.
    Protobuf,
}

fn session_error(message: impl Into<String>) -> OdpsError {
    OdpsError::new(400, "InvalidStatusChange", message.into())
}

/// A body that does not decode: MaxCompute's malformed-data error.
fn malformed(err: odps_tunnel::encode::DecodeError) -> OdpsError {
    OdpsError::new(
        400,
        "MalformedDataStream",
        format!("ODPS-0420061: Malformed data stream - {err}"),
    )
}

/// A value the table's type cannot hold: the SDKs' "InvalidData" (pyodps
/// refuses a string over the field size with that code before sending it;
/// the service's own code for such a body is not documented).
fn invalid_data(err: odps_tunnel::types::TypeError) -> OdpsError {
    OdpsError::new(400, "InvalidData", format!("invalid data: {err}"))
}

fn no_session(id: &str) -> OdpsError {
    OdpsError::new(
        404,
        "NoSuchUpload",
        format!("upload session {id} does not exist"),
    )
}

impl Tunnel {
    /// Tunnel state over the catalog; `meta_lock` serializes metadata changes.
    pub fn new(catalog: Arc<Catalog>, meta_lock: Arc<Mutex<()>>, faults: Faults) -> Self {
        Self {
            catalog,
            meta_lock,
            sessions_lock: Mutex::new(()),
            downloads: Mutex::new(HashMap::new()),
            faults,
        }
    }

    fn upload_dir(&self, project: &str, id: &str) -> Result<PathBuf, OdpsError> {
        catalog::check_name(id, "upload id")?;
        Ok(self.catalog.project_dir(project)?.join("uploads").join(id))
    }

    fn load_upload(&self, project: &str, id: &str) -> Result<UploadSession, OdpsError> {
        let path = self.upload_dir(project, id)?.join("session.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_session(id)),
            Err(e) => return Err(OdpsError::io(e)),
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| OdpsError::internal(format!("corrupt upload session: {e}")))
    }

    fn save_upload(&self, project: &str, session: &UploadSession) -> Result<(), OdpsError> {
        let dir = self.upload_dir(project, &session.id)?;
        std::fs::create_dir_all(&dir).map_err(OdpsError::io)?;
        let tmp = dir.join("session.json.tmp");
        let bytes = serde_json::to_vec(session).map_err(|e| OdpsError::internal(e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(OdpsError::io)?;
        std::fs::rename(tmp, dir.join("session.json")).map_err(OdpsError::io)
    }

    /// `POST R?uploads`: a new upload session.
    pub fn create_upload(&self, req: &TableRequest<'_>) -> Result<String, OdpsError> {
        let _guard = self.meta_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut meta = self.catalog.require(req.project, req.table)?;
        if meta.is_delta() {
            // pyodps and Java write such tables through upsert sessions
            // only; the service's answer to a batch upload is not documented.
            return Err(OdpsError::unsupported(format!(
                "batch upload sessions on the primary-key Delta table {}: write it through an upsert session",
                meta.name
            )));
        }
        let spec = req.partition()?;
        let partition = if meta.is_partitioned() {
            let values = meta.full_partition(&spec)?;
            if meta.find_partition(&values).is_none() {
                if req.param("create_partition").is_some_and(|v| v != "false") {
                    let now = now_secs();
                    meta.partitions.push(PartitionMeta {
                        values: values.clone(),
                        created: now,
                        modified: now,
                    });
                    self.catalog.save(req.project, &meta)?;
                } else {
                    return Err(OdpsError::no_such_partition(
                        &meta.name,
                        &catalog::spec_string(&values),
                    ));
                }
            }
            values
        } else if spec.is_empty() {
            Vec::new()
        } else {
            return Err(OdpsError::invalid_argument(format!(
                "table {} is not partitioned",
                meta.name
            )));
        };
        let session = UploadSession {
            id: format!("{:032x}", now_nanos()),
            table: meta.name.clone(),
            table_id: meta.table_id.clone(),
            partition,
            columns: meta.columns.clone(),
            partition_keys: meta.partition_keys.clone(),
            overwrite: req.param("overwrite").is_some_and(|v| v == "true"),
            committed: false,
            blocks: BTreeMap::new(),
        };
        self.save_upload(req.project, &session)?;
        tracing::info!(project = req.project, table = req.table, id = %session.id, "upload session created");
        upload_json(&session, &meta)
    }

    /// `GET R?uploadid`: the session with its uploaded blocks.
    pub fn upload_status(&self, req: &TableRequest<'_>, id: &str) -> Result<String, OdpsError> {
        let mut session = self.load_upload(req.project, id)?;
        check_session_table(&session, req)?;
        if !session.committed && self.is_published(req.project, &session)? {
            session.committed = true;
        }
        let meta = self.catalog.require(req.project, req.table)?;
        upload_json(&session, &meta)
    }

    /// `PUT R?uploadid&blockid`: stages one block (replacing an earlier one
    /// with the same id).
    pub async fn upload_block(
        &self,
        req: &TableRequest<'_>,
        id: &str,
        body: bytes::Bytes,
        format: Format,
    ) -> Result<(), OdpsError> {
        self.faults.before(Operation::Block).await?;
        let block: u64 = req
            .param("blockid")
            .and_then(|b| b.parse().ok())
            .filter(|b| *b <= MAX_BLOCK_ID)
            .ok_or_else(|| {
                OdpsError::invalid_argument(format!("block id must be 0..={MAX_BLOCK_ID}"))
            })?;
        let session = self.load_upload(req.project, id)?;
        check_session_table(&session, req)?;
        if session.committed {
            return Err(session_error(format!(
                "upload session {id} is already committed"
            )));
        }
        let schema = storage::arrow_schema(&session.columns)?;
        let columns = catalog::tunnel_columns(&session.columns)?;
        let path = self
            .upload_dir(req.project, id)?
            .join(format!("block-{block:05}.parquet"));
        // Decoding and Parquet encoding are CPU work: keep them off the I/O threads.
        let started = std::time::Instant::now();
        let rows = tokio::task::spawn_blocking(move || {
            let decoded = match format {
                Format::Arrow => decode_block(&columns, &body).map_err(malformed)?,
                Format::Protobuf => vec![
                    RecordDecoder::new(&columns)
                        .with_timestamp_form(TimestampForm::SecNano)
                        .decode(&body)
                        .map_err(malformed)?
                        .batch,
                ],
            };
            // What the service stores: each value checked against its type
            // (field size, decimal precision, date and time ranges, text
            // lengths, JSON), timestamps kept as seconds and nanoseconds.
            let batches = decoded
                .iter()
                .map(|b| {
                    conform_batch_in(&columns, b, MAX_FIELD_SIZE as usize, TimestampForm::SecNano)
                        .map_err(invalid_data)
                })
                .collect::<Result<Vec<_>, OdpsError>>()?;
            let decoded_ms = started.elapsed().as_millis();
            storage::write_parquet(&path, &schema, &batches)?;
            tracing::debug!(decoded_ms, "block decoded and written");
            Ok::<usize, OdpsError>(batches.iter().map(RecordBatch::num_rows).sum())
        })
        .await
        .map_err(|e| OdpsError::internal(format!("block worker failed: {e}")))??;
        let _guard = self.sessions_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut session = self.load_upload(req.project, id)?;
        if session.committed {
            return Err(session_error(format!(
                "upload session {id} was committed during the upload"
            )));
        }
        session.blocks.insert(block, rows as u64);
        self.save_upload(req.project, &session)?;
        tracing::debug!(%id, block, rows, ?format, store_ms = started.elapsed().as_millis(), "block staged");
        Ok(())
    }

    /// `POST R?uploadid`: publishes every staged block at once.
    pub async fn commit(&self, req: &TableRequest<'_>, id: &str) -> Result<String, OdpsError> {
        self.faults.before(Operation::Commit).await?;
        let _meta_guard = self.meta_lock.lock().unwrap_or_else(|p| p.into_inner());
        let _guard = self.sessions_lock.lock().unwrap_or_else(|p| p.into_inner());
        let session = self.load_upload(req.project, id)?;
        check_session_table(&session, req)?;
        if session.committed {
            return Err(session_error(format!(
                "upload session {id} is already committed"
            )));
        }
        let meta = self.catalog.require(req.project, req.table)?;
        if meta.table_id != session.table_id {
            return Err(session_error(format!(
                "table {} was dropped after the session was created",
                meta.name
            )));
        }
        let partition_index = if meta.is_partitioned() {
            Some(meta.find_partition(&session.partition).ok_or_else(|| {
                OdpsError::no_such_partition(&meta.name, &catalog::spec_string(&session.partition))
            })?)
        } else {
            None
        };
        let data_dir = self
            .catalog
            .data_dir(req.project, req.table, &session.partition)?;
        std::fs::create_dir_all(&data_dir).map_err(OdpsError::io)?;
        let mut manifest = storage::Manifest::load(&data_dir)?;
        if manifest.has_upload(id) {
            // A commit that was cut off after publishing: finish its bookkeeping.
            return self.finish_commit(req, session, meta, partition_index);
        }
        // Move the staged files next to the table data. They stay invisible
        // until the manifest names them; names are fixed per session and
        // block, so a commit cut off here is redone by the next try.
        let upload_dir = self.upload_dir(req.project, id)?;
        let mut entries = Vec::with_capacity(session.blocks.len());
        for (block, rows) in &session.blocks {
            let name = format!("{id}-{block:05}.parquet");
            let to = data_dir.join(&name);
            match std::fs::rename(upload_dir.join(format!("block-{block:05}.parquet")), &to) {
                Ok(()) => {}
                // An earlier, interrupted commit moved it already.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && to.exists() => {}
                Err(e) => return Err(OdpsError::io(e)),
            }
            entries.push(storage::ManifestEntry {
                file: name,
                rows: *rows,
                upload: id.to_owned(),
            });
            self.faults.crash_point(CrashPoint::AfterFirstBlock);
        }
        storage::sync_dir(&data_dir)?;
        let replaced = if session.overwrite {
            std::mem::take(&mut manifest.files)
        } else {
            Vec::new()
        };
        manifest.version += 1;
        manifest.files.extend(entries);
        // The commit point: every block becomes visible with this rename.
        manifest.publish(&data_dir, || {
            self.faults.crash_point(CrashPoint::BeforeManifest);
        })?;
        self.faults.crash_point(CrashPoint::AfterManifest);
        for old in replaced {
            if let Err(e) = std::fs::remove_file(data_dir.join(&old.file)) {
                tracing::warn!(file = %old.file, error = %e, "could not remove an overwritten file");
            }
        }
        self.finish_commit(req, session, meta, partition_index)
    }

    /// Marks a published session committed and the table's data modified.
    fn finish_commit(
        &self,
        req: &TableRequest<'_>,
        mut session: UploadSession,
        mut meta: TableMeta,
        partition_index: Option<usize>,
    ) -> Result<String, OdpsError> {
        session.committed = true;
        self.save_upload(req.project, &session)?;
        let now = now_secs();
        meta.data_modified = now;
        if let Some(i) = partition_index {
            meta.partitions[i].modified = now;
        }
        self.catalog.save(req.project, &meta)?;
        tracing::info!(id = %session.id, blocks = session.blocks.len(), "upload session committed");
        upload_json(&session, &meta)
    }

    /// Whether a session not marked committed was published by a commit cut
    /// off before its bookkeeping.
    fn is_published(&self, project: &str, session: &UploadSession) -> Result<bool, OdpsError> {
        let dir = self
            .catalog
            .data_dir(project, &session.table, &session.partition)?;
        Ok(storage::Manifest::load(&dir)?.has_upload(&session.id))
    }

    /// `POST R?downloads`: a download session over the committed data.
    pub fn create_download(&self, req: &TableRequest<'_>) -> Result<String, OdpsError> {
        let meta = self.catalog.require(req.project, req.table)?;
        let spec = req.partition()?;
        let values = if meta.is_partitioned() {
            let values = meta.full_partition(&spec)?;
            if meta.find_partition(&values).is_none() {
                return Err(OdpsError::no_such_partition(
                    &meta.name,
                    &catalog::spec_string(&values),
                ));
            }
            values
        } else if spec.is_empty() {
            Vec::new()
        } else {
            return Err(OdpsError::invalid_argument(format!(
                "table {} is not partitioned",
                meta.name
            )));
        };
        let files =
            storage::data_files(&self.catalog.data_dir(req.project, req.table, &values)?)?;
        let record_count = files.iter().map(|f| f.rows).sum();
        let files = files.into_iter().map(|f| f.path).collect();
        let id = format!("{:032x}", now_nanos());
        let json = download_json(&id, &meta, record_count);
        let mut downloads = self.downloads.lock().unwrap_or_else(|p| p.into_inner());
        downloads.insert(
            (req.project.to_ascii_lowercase(), id),
            DownloadSession {
                meta,
                files,
                result: Vec::new(),
                record_count,
            },
        );
        Ok(json)
    }

    /// `POST /projects/{p}/instances/{id}?downloads`: the instance tunnel
    /// over a query's result (a `SELECT COUNT(*)` gives one `bigint` row,
    /// a `SELECT *` its rows).
    pub fn create_instance_download(
        &self,
        project: &str,
        instance: &crate::instances::Instance,
    ) -> Result<String, OdpsError> {
        let no_result = || {
            OdpsError::invalid_argument(format!(
                "instance {} has no result set to download",
                instance.id
            ))
        };
        if !instance.success {
            return Err(no_result());
        }
        let (columns, batches) = if let Some(rows) = &instance.rows {
            (rows.columns.clone(), rows.batches.clone())
        } else {
            let count = instance.count.ok_or_else(no_result)?;
            let column = Column {
                name: "_c0".into(),
                type_name: "bigint".into(),
                comment: String::new(),
                nullable: true,
            };
            let schema = storage::arrow_schema(std::slice::from_ref(&column))?;
            let value = i64::try_from(count).unwrap_or(i64::MAX);
            let batch = RecordBatch::try_new(
                schema,
                vec![std::sync::Arc::new(arrow_array::Int64Array::from(vec![
                    value,
                ]))],
            )
            .map_err(|e| OdpsError::internal(e.to_string()))?;
            (vec![column], vec![batch])
        };
        let record_count = batches.iter().map(|b| b.num_rows() as u64).sum();
        let meta = TableMeta {
            name: String::new(),
            table_id: instance.id.clone(),
            comment: String::new(),
            columns,
            partition_keys: Vec::new(),
            partitions: Vec::new(),
            lifecycle: None,
            created: instance.start,
            ddl_modified: instance.end,
            data_modified: instance.end,
            transactional: false,
            primary_key: Vec::new(),
            properties: Default::default(),
        };
        let id = format!("{:032x}", now_nanos());
        let json = download_json(&id, &meta, record_count);
        let mut downloads = self.downloads.lock().unwrap_or_else(|p| p.into_inner());
        downloads.insert(
            (project.to_ascii_lowercase(), id),
            DownloadSession {
                meta,
                files: Vec::new(),
                result: batches,
                record_count,
            },
        );
        Ok(json)
    }

    fn download(&self, project: &str, id: &str) -> Result<DownloadSession, OdpsError> {
        let downloads = self.downloads.lock().unwrap_or_else(|p| p.into_inner());
        downloads
            .get(&(project.to_ascii_lowercase(), id.to_owned()))
            .cloned()
            .ok_or_else(|| {
                OdpsError::new(
                    404,
                    "NoSuchDownload",
                    format!("download session {id} does not exist"),
                )
            })
    }

    /// `GET R?downloadid`: the download session.
    pub fn download_status(&self, req: &TableRequest<'_>, id: &str) -> Result<String, OdpsError> {
        let session = self.download(req.project, id)?;
        Ok(download_json(id, &session.meta, session.record_count))
    }

    /// `GET R?data&downloadid&rowrange=(start,count)[&columns=…]`: rows as a
    /// body in the asked format.
    pub fn read(
        &self,
        req: &TableRequest<'_>,
        id: &str,
        format: Format,
    ) -> Result<Vec<u8>, OdpsError> {
        let session = self.download(req.project, id)?;
        let (start, count) = parse_row_range(req.param("rowrange").unwrap_or(""))?;
        if start
            .checked_add(count)
            .is_none_or(|end| end > session.record_count)
        {
            return Err(OdpsError::invalid_argument(format!(
                "row range ({start},{count}) is outside the {} records of the session",
                session.record_count
            )));
        }
        let columns = match req.param("columns").filter(|c| !c.is_empty()) {
            None => session.meta.columns.clone(),
            Some(list) => list
                .split(',')
                .map(|name| {
                    session
                        .meta
                        .columns
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(name.trim()))
                        .cloned()
                        .ok_or_else(|| {
                            OdpsError::invalid_argument(format!("no column {name} in the table"))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let schema = storage::arrow_schema(&columns)?;
        let mut batches = Vec::new();
        let (mut skip, mut left) = (start, count);
        let sources = session
            .result
            .iter()
            .map(|b| Ok(vec![b.clone()]))
            .chain(session.files.iter().map(|f| storage::read_parquet(f)));
        for source in sources {
            if left == 0 {
                break;
            }
            for batch in source? {
                let rows = batch.num_rows() as u64;
                if skip >= rows {
                    skip -= rows;
                    continue;
                }
                let take = (rows - skip).min(left);
                // Both fit in usize: they are bounded by this batch's row count.
                let slice = batch.slice(skip as usize, take as usize);
                batches.push(storage::adapt(&slice, &columns, &schema)?);
                skip = 0;
                left -= take;
                if left == 0 {
                    break;
                }
            }
        }
        let columns = catalog::tunnel_columns(&columns)?;
        let encode_error = |e: odps_tunnel::encode::EncodeError| OdpsError::internal(e.to_string());
        match format {
            Format::Arrow => {
                // Stored batches already have the table's types, but for
                // timestamps, stored as seconds and nanoseconds: the Arrow
                // tunnel carries 64-bit nanoseconds, so a value beyond them
                // is refused (the record format carries it). What the real
                // service does there is not documented.
                let arrow_form = |b: &RecordBatch| {
                    conform_batch_in(&columns, b, usize::MAX, TimestampForm::Nanos).map_err(|e| {
                        OdpsError::new(
                            400,
                            "InvalidData",
                            format!(
                                "invalid data: {e}; the Arrow tunnel carries timestamps as 64-bit \
                                 nanoseconds: read this range in the record format"
                            ),
                        )
                    })
                };
                let has_timestamps = columns.iter().any(|c| c.ty.is_timestamp());
                let options = EncoderOptions {
                    check_values: false,
                    ..EncoderOptions::default()
                };
                let mut encoder =
                    BlockEncoder::try_new_with_options(&columns, options).map_err(encode_error)?;
                for batch in &batches {
                    if has_timestamps {
                        encoder.write(&arrow_form(batch)?).map_err(encode_error)?;
                    } else {
                        encoder.write(batch).map_err(encode_error)?;
                    }
                }
                Ok(encoder.finish())
            }
            Format::Protobuf => {
                let mut encoder = RecordEncoder::try_new(&columns);
                for batch in &batches {
                    encoder.write(batch).map_err(encode_error)?;
                }
                Ok(encoder.finish())
            }
        }
    }
}

fn check_session_table(session: &UploadSession, req: &TableRequest<'_>) -> Result<(), OdpsError> {
    if !session.table.eq_ignore_ascii_case(req.table) {
        return Err(OdpsError::invalid_argument(format!(
            "upload session {} belongs to table {}, not {}",
            session.id, session.table, req.table
        )));
    }
    Ok(())
}

fn parse_row_range(text: &str) -> Result<(u64, u64), OdpsError> {
    let bad = || OdpsError::invalid_argument(format!("invalid rowrange {text:?}"));
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (a, b) = inner.split_once(',').ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

fn session_schema(
    meta: &TableMeta,
    columns: &[Column],
    partition_keys: &[Column],
) -> serde_json::Value {
    let mut view = meta.clone();
    view.columns = columns.to_vec();
    view.partition_keys = partition_keys.to_vec();
    view.schema_json()
}

fn upload_json(session: &UploadSession, meta: &TableMeta) -> Result<String, OdpsError> {
    let blocks: Vec<_> = session
        .blocks
        .iter()
        .map(|(id, rows)| serde_json::json!({ "BlockID": id, "RecordCount": rows }))
        .collect();
    Ok(serde_json::json!({
        "UploadID": session.id,
        "Status": if session.committed { "closed" } else { "normal" },
        "UploadedBlockList": blocks,
        "Schema": session_schema(meta, &session.columns, &session.partition_keys),
        "MaxFieldSize": MAX_FIELD_SIZE,
        "QuotaName": "",
    })
    .to_string())
}

fn download_json(id: &str, meta: &TableMeta, record_count: u64) -> String {
    serde_json::json!({
        "DownloadID": id,
        "Status": "normal",
        "RecordCount": record_count,
        "Schema": session_schema(meta, &meta.columns, &meta.partition_keys),
        "QuotaName": "",
        "SupportReadByRawSize": false,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_row_ranges() {
        assert_eq!(parse_row_range("(0,10)").unwrap(), (0, 10));
        assert_eq!(parse_row_range(" (5, 1) ").unwrap(), (5, 1));
        assert!(parse_row_range("0,10").is_err());
    }
}
