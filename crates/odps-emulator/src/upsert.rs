//! Primary-key Delta tables: their DDL checks, upsert sessions and the
//! merged state that reads see.
//!
//! An upsert session (`/projects/{p}/tables/{t}/upserts` on the Tunnel)
//! offers one slot serving buckets `0..write.bucket.num`. Each `PUT` of a
//! bucket's block is decoded, checked (operation bytes, key columns not
//! NULL, every row hashed to the bucket it was sent to, `record_count`) and
//! staged as a Parquet file beside the session, in arrival order. Nothing
//! is visible before the commit, which merges the staged rows into the
//! partition's state, per primary key the last operation (an UPSERT
//! replaces the row, a DELETE removes the key), writes the merged state as
//! one file and publishes it by the manifest rename of [`crate::storage`]:
//! a commit is wholly visible or not at all. A session commits once;
//! writing to or committing a committed or aborted session is refused.
//!
//! Reads: `SELECT * FROM t [WHERE pt=…]` (what pyodps runs for such a
//! table), `SELECT COUNT(*)` and download sessions all read the merged file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::Int8Type;
use arrow_array::{Array, ArrayRef, Int8Array, RecordBatch, StringArray};
use arrow_row::{RowConverter, SortField};
use serde::{Deserialize, Serialize};

use crate::catalog::now_nanos;
use crate::catalog::{self, Catalog, Column, PartitionValues, TableMeta, now_secs};
use crate::error::OdpsError;
use crate::faults::{self, Faults};
use crate::request::TableRequest;
use crate::storage::{self, ResultSet};
use odps_tunnel::encode::proto::RecordDecoder;
use odps_tunnel::types::{TimestampForm, conform_batch_in};
use odps_tunnel::upsert::hash::{Hasher, KeyHasher, bucket};
use odps_tunnel::upsert::wire::{Operation, record_columns};

/// Largest `write.bucket.num` accepted (third-party validators say 4096).
const MAX_BUCKETS: u32 = 4096;
/// Name of the operation column in staged files.
const OP_COLUMN: &str = "__operation";

/// Checks a `CREATE TABLE` with a primary key and marks the key columns
/// `NOT NULL`. The message is the semantic error's text.
///
/// Refused: key columns that are not data columns (partition columns
/// included), key columns of a type with no bucket hash, a key on a table
/// that is not `'transactional'='true'` (the docs say a Delta table needs
/// both; whether the service refuses a key alone is not documented), and a
/// `write.bucket.num` outside 1..=4096.
pub fn check_delta_ddl(
    table: &str,
    columns: &mut [Column],
    partition_keys: &[Column],
    primary_key: &[String],
    transactional: bool,
    properties: &BTreeMap<String, String>,
) -> Result<(), String> {
    if let Some(n) = properties.get("write.bucket.num")
        && !n
            .parse::<u32>()
            .is_ok_and(|n| (1..=MAX_BUCKETS).contains(&n))
    {
        return Err(format!(
            "write.bucket.num of {table} must be 1..={MAX_BUCKETS}, not {n:?}"
        ));
    }
    if primary_key.is_empty() {
        return Ok(());
    }
    if !transactional {
        return Err(format!(
            "primary key on {table} needs TBLPROPERTIES ('transactional'='true')"
        ));
    }
    let mut seen = BTreeSet::new();
    for key in primary_key {
        if !seen.insert(key) {
            return Err(format!("primary key column {key} is named twice"));
        }
        if partition_keys.iter().any(|p| &p.name == key) {
            return Err(format!(
                "primary key column {key} is a partition column of {table}"
            ));
        }
        let Some(column) = columns.iter_mut().find(|c| &c.name == key) else {
            return Err(format!(
                "primary key column {key} is not a column of {table}"
            ));
        };
        column.nullable = false;
    }
    let tunnel = catalog::tunnel_columns(columns).map_err(|e| e.message)?;
    KeyHasher::new(Hasher::Default, &tunnel, primary_key).map_err(|e| e.to_string())?;
    Ok(())
}

/// A session's status.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Normal,
    Committed,
    Aborted,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Committed => "committed",
            Self::Aborted => "aborted",
        }
    }
}

/// One staged block.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct Staged {
    file: String,
    bucket: u32,
    rows: u64,
}

/// An upsert session, persisted beside its staged blocks.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct Session {
    id: String,
    table: String,
    table_id: String,
    partition: PartitionValues,
    columns: Vec<Column>,
    primary_key: Vec<String>,
    buckets: u32,
    status: Status,
    /// Blocks in arrival order.
    staged: Vec<Staged>,
}

/// Upsert sessions of every project.
#[derive(Debug)]
pub struct Upserts {
    catalog: Arc<Catalog>,
    meta_lock: Arc<Mutex<()>>,
    sessions_lock: Mutex<()>,
    worker_addr: String,
    faults: Faults,
}

fn refused(message: impl Into<String>) -> OdpsError {
    OdpsError::new(400, "InvalidStatusChange", message.into())
}

fn no_session(id: &str) -> OdpsError {
    OdpsError::new(
        404,
        "UpsertSessionNotFound",
        format!("upsert session {id} does not exist"),
    )
}

fn malformed(message: impl std::fmt::Display) -> OdpsError {
    OdpsError::new(
        400,
        "MalformedDataStream",
        format!("ODPS-0420061: Malformed data stream - {message}"),
    )
}

fn internal(e: impl std::fmt::Display) -> OdpsError {
    OdpsError::internal(e.to_string())
}

impl Upserts {
    /// Sessions over the catalog; `worker_addr` (`ip:port`) is the slot
    /// address sessions report; `faults` fail block PUTs and commits before
    /// they change anything, as for upload sessions.
    pub fn new(
        catalog: Arc<Catalog>,
        meta_lock: Arc<Mutex<()>>,
        worker_addr: String,
        faults: Faults,
    ) -> Self {
        Self {
            catalog,
            meta_lock,
            sessions_lock: Mutex::new(()),
            worker_addr,
            faults,
        }
    }

    fn dir(&self, project: &str, id: &str) -> Result<PathBuf, OdpsError> {
        catalog::check_name(id, "upsert id")?;
        Ok(self.catalog.project_dir(project)?.join("upserts").join(id))
    }

    fn load(&self, project: &str, id: &str) -> Result<Session, OdpsError> {
        let path = self.dir(project, id)?.join("session.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_session(id)),
            Err(e) => return Err(OdpsError::io(e)),
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| OdpsError::internal(format!("corrupt upsert session: {e}")))
    }

    fn save(&self, project: &str, session: &Session) -> Result<(), OdpsError> {
        let dir = self.dir(project, &session.id)?;
        std::fs::create_dir_all(&dir).map_err(OdpsError::io)?;
        let tmp = dir.join("session.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(session).map_err(internal)?)
            .map_err(OdpsError::io)?;
        std::fs::rename(tmp, dir.join("session.json")).map_err(OdpsError::io)
    }

    fn session_for(&self, req: &TableRequest<'_>, id: &str) -> Result<Session, OdpsError> {
        let session = self.load(req.project, id)?;
        if !session.table.eq_ignore_ascii_case(req.table) {
            return Err(OdpsError::invalid_argument(format!(
                "upsert session {id} belongs to table {}, not {}",
                session.table, req.table
            )));
        }
        Ok(session)
    }

    fn json(&self, session: &Session, meta: &TableMeta) -> String {
        let mut view = meta.clone();
        view.columns = session.columns.clone();
        serde_json::json!({
            "id": session.id,
            "status": session.status.as_str(),
            "quota_name": "",
            "enable_partial_update": false,
            "schema": view.schema_json(),
            "hash_key": session.primary_key,
            "hasher": Hasher::Default.name(),
            "slots": [{
                "slot_id": "0",
                "buckets": (0..session.buckets).collect::<Vec<_>>(),
                "worker_addr": self.worker_addr,
            }],
        })
        .to_string()
    }

    /// `POST R/upserts?slotnum=…`: a new session on a Delta table.
    pub fn create(&self, req: &TableRequest<'_>) -> Result<String, OdpsError> {
        let meta = self.catalog.require(req.project, req.table)?;
        if !meta.is_delta() {
            return Err(OdpsError::invalid_argument(format!(
                "table {} is not a primary-key Delta table (transactional with a primary key); \
                 upsert sessions need one",
                meta.name
            )));
        }
        let partition = partition_of(&meta, req)?;
        let session = Session {
            id: format!("{:032x}", now_nanos()),
            table: meta.name.clone(),
            table_id: meta.table_id.clone(),
            partition,
            columns: meta.columns.clone(),
            primary_key: meta.primary_key.clone(),
            buckets: meta.buckets(),
            status: Status::Normal,
            staged: Vec::new(),
        };
        self.save(req.project, &session)?;
        tracing::info!(project = req.project, table = req.table, id = %session.id, "upsert session created");
        Ok(self.json(&session, &meta))
    }

    /// `GET R/upserts?upsertid=…`: the session.
    pub fn status(&self, req: &TableRequest<'_>, id: &str) -> Result<String, OdpsError> {
        let mut session = self.session_for(req, id)?;
        if session.status == Status::Normal && self.is_published(req.project, &session)? {
            session.status = Status::Committed;
        }
        let meta = self.catalog.require(req.project, req.table)?;
        Ok(self.json(&session, &meta))
    }

    fn is_published(&self, project: &str, session: &Session) -> Result<bool, OdpsError> {
        let dir = self
            .catalog
            .data_dir(project, &session.table, &session.partition)?;
        Ok(storage::Manifest::load(&dir)?.has_upload(&session.id))
    }

    /// `PUT R/upserts?upsertid&bucketid&slotid&record_count`: stages one
    /// bucket's block after checking every row.
    pub async fn put(
        &self,
        req: &TableRequest<'_>,
        id: &str,
        body: bytes::Bytes,
    ) -> Result<(), OdpsError> {
        self.faults.before(faults::Operation::Block).await?;
        let session = self.session_for(req, id)?;
        if session.status != Status::Normal {
            return Err(refused(format!(
                "upsert session {id} is {}; it takes no more data",
                session.status.as_str()
            )));
        }
        let bucket_id: u32 = req
            .param("bucketid")
            .and_then(|b| b.parse().ok())
            .filter(|b| *b < session.buckets)
            .ok_or_else(|| {
                OdpsError::invalid_argument(format!(
                    "bucketid must be 0..{} for upsert session {id}",
                    session.buckets
                ))
            })?;
        let declared: Option<u64> =
            match req.param("record_count") {
                Some(n) => Some(n.parse().map_err(|_| {
                    OdpsError::invalid_argument(format!("invalid record_count {n:?}"))
                })?),
                None => None,
            };
        let dir = self.dir(req.project, id)?;
        let file = format!("put-{:032x}.parquet", now_nanos());
        let path = dir.join(&file);
        let columns = session.columns.clone();
        let key = session.primary_key.clone();
        let buckets = session.buckets;
        // Decoding and Parquet encoding are CPU work.
        let rows = tokio::task::spawn_blocking(move || {
            stage_block(&columns, &key, buckets, bucket_id, declared, &body, &path)
        })
        .await
        .map_err(|e| OdpsError::internal(format!("upsert block worker failed: {e}")))??;
        let _guard = self.sessions_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut session = self.load(req.project, id)?;
        if session.status != Status::Normal {
            return Err(refused(format!(
                "upsert session {id} ended during the upload"
            )));
        }
        session.staged.push(Staged {
            file,
            bucket: bucket_id,
            rows,
        });
        self.save(req.project, &session)?;
        tracing::debug!(%id, bucket = bucket_id, rows, "upsert block staged");
        Ok(())
    }

    /// `POST R/upserts?upsertid`: merges the staged rows into the table.
    pub async fn commit(&self, req: &TableRequest<'_>, id: &str) -> Result<String, OdpsError> {
        self.faults.before(faults::Operation::Commit).await?;
        let _meta_guard = self.meta_lock.lock().unwrap_or_else(|p| p.into_inner());
        let _guard = self.sessions_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut session = self.session_for(req, id)?;
        if session.status != Status::Normal {
            return Err(refused(format!(
                "upsert session {id} is already {}; a session commits once",
                session.status.as_str()
            )));
        }
        let mut meta = self.catalog.require(req.project, req.table)?;
        if meta.table_id != session.table_id {
            return Err(refused(format!(
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
        let session_dir = self.dir(req.project, id)?;
        if !manifest.has_upload(id) {
            let schema = storage::arrow_schema(&meta.columns)?;
            let mut base = Vec::new();
            for f in &manifest.files {
                for b in storage::read_parquet(&data_dir.join(&f.file))? {
                    base.push(storage::adapt(&b, &meta.columns, &schema)?);
                }
            }
            let mut ops = Vec::new();
            for staged in &session.staged {
                for b in storage::read_parquet(&session_dir.join(&staged.file))? {
                    let op = b
                        .column_by_name(OP_COLUMN)
                        .ok_or_else(|| OdpsError::internal("staged block without operations"))?
                        .as_primitive::<Int8Type>()
                        .clone();
                    ops.push((storage::adapt(&b, &meta.columns, &schema)?, op));
                }
            }
            let merged = merge(&schema, &meta.columns, &meta.primary_key, base, ops)?;
            let name = format!("{id}-merged.parquet");
            storage::write_parquet(
                &data_dir.join(&name),
                &schema,
                std::slice::from_ref(&merged),
            )?;
            let replaced = std::mem::take(&mut manifest.files);
            manifest.version += 1;
            manifest.files.push(storage::ManifestEntry {
                file: name,
                rows: merged.num_rows() as u64,
                upload: id.to_owned(),
            });
            // The commit point: the merged state replaces the old one.
            manifest.publish(&data_dir, || {})?;
            for old in replaced {
                if let Err(e) = std::fs::remove_file(data_dir.join(&old.file)) {
                    tracing::warn!(file = %old.file, error = %e, "could not remove a replaced file");
                }
            }
        }
        session.status = Status::Committed;
        let staged = std::mem::take(&mut session.staged);
        self.save(req.project, &session)?;
        for s in staged {
            let _ = std::fs::remove_file(session_dir.join(s.file));
        }
        let now = now_secs();
        meta.data_modified = now;
        if let Some(i) = partition_index {
            meta.partitions[i].modified = now;
        }
        self.catalog.save(req.project, &meta)?;
        tracing::info!(%id, table = %meta.name, "upsert session committed");
        Ok(self.json(&session, &meta))
    }

    /// `DELETE R/upserts?upsertid`: drops the session's staged rows.
    pub fn abort(&self, req: &TableRequest<'_>, id: &str) -> Result<String, OdpsError> {
        let _guard = self.sessions_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut session = self.session_for(req, id)?;
        if session.status == Status::Committed {
            return Err(refused(format!(
                "upsert session {id} is committed; it cannot be aborted"
            )));
        }
        session.status = Status::Aborted;
        let dir = self.dir(req.project, id)?;
        for s in std::mem::take(&mut session.staged) {
            let _ = std::fs::remove_file(dir.join(s.file));
        }
        self.save(req.project, &session)?;
        let meta = self.catalog.require(req.project, req.table)?;
        tracing::info!(%id, "upsert session aborted");
        Ok(self.json(&session, &meta))
    }
}

/// The session's partition: it must exist (whether the service creates a
/// missing partition for an upsert session is not documented).
fn partition_of(meta: &TableMeta, req: &TableRequest<'_>) -> Result<PartitionValues, OdpsError> {
    let spec = req.partition()?;
    if meta.is_partitioned() {
        let values = meta.full_partition(&spec)?;
        if meta.find_partition(&values).is_none() {
            return Err(OdpsError::no_such_partition(
                &meta.name,
                &catalog::spec_string(&values),
            ));
        }
        Ok(values)
    } else if spec.is_empty() {
        Ok(Vec::new())
    } else {
        Err(OdpsError::invalid_argument(format!(
            "table {} is not partitioned",
            meta.name
        )))
    }
}

/// Decodes, checks and writes one block; its row count.
fn stage_block(
    columns: &[Column],
    key: &[String],
    buckets: u32,
    bucket_id: u32,
    declared: Option<u64>,
    body: &[u8],
    path: &std::path::Path,
) -> Result<u64, OdpsError> {
    let data = catalog::tunnel_columns(columns)?;
    // Deletes carry only their key: NOT NULL applies to upserts, checked below.
    let loose: Vec<_> = data
        .iter()
        .map(|c| odps_tunnel::types::Column {
            nullable: true,
            ..c.clone()
        })
        .collect();
    let layout = record_columns(&loose);
    let decoded = RecordDecoder::new(&layout)
        .with_timestamp_form(TimestampForm::SecNano)
        .decode(body)
        .map_err(malformed)?
        .batch;
    let rows = decoded.num_rows();
    if let Some(n) = declared
        && n != rows as u64
    {
        return Err(malformed(format!(
            "record_count says {n} records, the body holds {rows}"
        )));
    }
    let n = data.len();
    let ops = decoded.column(n + 2).as_primitive::<Int8Type>().clone();
    for row in 0..rows {
        if ops.is_null(row) || Operation::from_code(ops.value(row)).is_none() {
            return Err(malformed(format!(
                "record {row}: __operation must be 'U' (85) or 'D' (68)"
            )));
        }
    }
    let data_batch = decoded
        .project(&(0..n).collect::<Vec<_>>())
        .map_err(internal)?;
    let checked = conform_batch_in(&loose, &data_batch, usize::MAX, TimestampForm::SecNano)
        .map_err(|e| OdpsError::new(400, "InvalidData", format!("invalid data: {e}")))?;
    for (i, c) in data.iter().enumerate() {
        let is_key = key.iter().any(|k| k.eq_ignore_ascii_case(&c.name));
        if !is_key && c.nullable {
            continue;
        }
        let array = checked.column(i);
        if let Some(row) = (0..rows)
            .find(|&r| array.is_null(r) && (is_key || ops.value(r) == Operation::Upsert.code()))
        {
            return Err(OdpsError::new(
                400,
                "InvalidData",
                format!("invalid data: record {row}: column {} is NULL", c.name),
            ));
        }
    }
    let hasher = KeyHasher::new(Hasher::Default, &data, key).map_err(internal)?;
    let hashes = hasher.row_hashes(&checked).map_err(internal)?;
    if let Some((row, h)) = hashes
        .iter()
        .enumerate()
        .find(|(_, h)| bucket(**h, buckets) != bucket_id)
    {
        return Err(OdpsError::invalid_argument(format!(
            "record {row} was sent to bucket {bucket_id}, but its key hashes to bucket {}",
            bucket(*h, buckets)
        )));
    }
    let mut fields: Vec<arrow_schema::Field> = checked
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(arrow_schema::Field::new(
        OP_COLUMN,
        arrow_schema::DataType::Int8,
        false,
    ));
    let mut arrays = checked.columns().to_vec();
    arrays.push(Arc::new(ops) as ArrayRef);
    let schema = Arc::new(arrow_schema::Schema::new(fields));
    let staged = RecordBatch::try_new(schema.clone(), arrays).map_err(internal)?;
    storage::write_parquet(path, &schema, &[staged])?;
    Ok(rows as u64)
}

/// Per key, the last operation wins: `base` rows count as upserts, then
/// `ops` in order. The result is ordered by key.
fn merge(
    schema: &arrow_schema::SchemaRef,
    columns: &[Column],
    key: &[String],
    base: Vec<RecordBatch>,
    ops: Vec<(RecordBatch, Int8Array)>,
) -> Result<RecordBatch, OdpsError> {
    let key_index: Vec<usize> = key
        .iter()
        .map(|k| {
            columns
                .iter()
                .position(|c| &c.name == k)
                .ok_or_else(|| OdpsError::internal(format!("key column {k} missing")))
        })
        .collect::<Result<_, _>>()?;
    let converter = RowConverter::new(
        key_index
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect(),
    )
    .map_err(internal)?;
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut state: BTreeMap<arrow_row::OwnedRow, Option<(usize, usize)>> = BTreeMap::new();
    let sources = base
        .into_iter()
        .map(|b| (b, None))
        .chain(ops.into_iter().map(|(b, o)| (b, Some(o))));
    for (batch, op) in sources {
        let keys: Vec<ArrayRef> = key_index.iter().map(|&i| batch.column(i).clone()).collect();
        let rows = converter.convert_columns(&keys).map_err(internal)?;
        let index = batches.len();
        for r in 0..batch.num_rows() {
            let delete = op
                .as_ref()
                .is_some_and(|o| o.value(r) == Operation::Delete.code());
            state.insert(rows.row(r).owned(), (!delete).then_some((index, r)));
        }
        batches.push(batch);
    }
    let picks: Vec<(usize, usize)> = state.into_values().flatten().collect();
    if picks.is_empty() {
        return Ok(RecordBatch::new_empty(schema.clone()));
    }
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    arrow_select::interleave::interleave_record_batch(&refs, &picks).map_err(internal)
}

/// `SELECT * FROM t [WHERE …]` over a Delta table: the merged rows of the
/// matching partitions, data columns then partition columns.
pub fn select_all(
    catalog: &Catalog,
    project: &str,
    meta: &TableMeta,
    filter: &[(String, String)],
) -> Result<ResultSet, OdpsError> {
    for (k, _) in filter {
        if !meta.partition_keys.iter().any(|p| &p.name == k) {
            return Err(OdpsError::unsupported(format!(
                "WHERE on column {k}: only equality on partition keys is supported"
            )));
        }
    }
    let parts: Vec<PartitionValues> = if meta.is_partitioned() {
        meta.matching_partitions(filter)
            .into_iter()
            .map(|p| p.values.clone())
            .collect()
    } else {
        vec![Vec::new()]
    };
    let schema = storage::arrow_schema(&meta.columns)?;
    let mut columns = meta.columns.clone();
    columns.extend(meta.partition_keys.iter().cloned());
    let out_schema = storage::arrow_schema(&columns)?;
    let mut batches = Vec::new();
    for values in parts {
        let dir = catalog.data_dir(project, &meta.name, &values)?;
        for file in storage::data_files(&dir)? {
            for b in storage::read_parquet(&file.path)? {
                let b = storage::adapt(&b, &meta.columns, &schema)?;
                let mut arrays = b.columns().to_vec();
                for (key, (_, value)) in meta.partition_keys.iter().zip(&values) {
                    arrays.push(constant(key, value, b.num_rows())?);
                }
                batches.push(RecordBatch::try_new(out_schema.clone(), arrays).map_err(internal)?);
            }
        }
    }
    Ok(ResultSet { columns, batches })
}

/// A partition value as a column of `rows` copies.
fn constant(key: &Column, value: &str, rows: usize) -> Result<ArrayRef, OdpsError> {
    use odps_tunnel::types::OdpsType;
    let bad = || OdpsError::invalid_argument(format!("partition value {value:?} of {}", key.name));
    Ok(match key.odps_type()? {
        OdpsType::String | OdpsType::Varchar(_) | OdpsType::Char(_) => {
            Arc::new(StringArray::from(vec![value; rows]))
        }
        OdpsType::Bigint => Arc::new(arrow_array::Int64Array::from(vec![
            value
                .parse::<i64>()
                .map_err(|_| bad())?;
            rows
        ])),
        OdpsType::Int => Arc::new(arrow_array::Int32Array::from(vec![
            value
                .parse::<i32>()
                .map_err(|_| bad())?;
            rows
        ])),
        other => {
            return Err(OdpsError::unsupported(format!(
                "SELECT * with a {other} partition column"
            )));
        }
    })
}

/// The `?result` text of a `SELECT *`: CSV with a header line.
pub fn csv(rows: &ResultSet) -> Result<String, OdpsError> {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = rows
        .columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    let options = arrow_cast::display::FormatOptions::default();
    for batch in &rows.batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|a| arrow_cast::display::ArrayFormatter::try_new(a.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(internal)?;
        for r in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .zip(batch.columns())
                .map(|(f, a)| {
                    if a.is_null(r) {
                        "\\N".to_owned()
                    } else {
                        quote(&f.value(r).to_string())
                    }
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            type_name: ty.into(),
            comment: String::new(),
            nullable: true,
        }
    }

    #[test]
    fn the_last_operation_per_key_wins() {
        let columns = vec![col("id", "bigint"), col("v", "string")];
        let schema = storage::arrow_schema(&columns).unwrap();
        let batch = |ids: Vec<i64>, vs: Vec<&str>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(arrow_array::Int64Array::from(ids)),
                    Arc::new(StringArray::from(vs)),
                ],
            )
            .unwrap()
        };
        let base = vec![batch(vec![1, 2, 3], vec!["a", "b", "c"])];
        let u = Operation::Upsert.code();
        let d = Operation::Delete.code();
        let ops = vec![
            (
                batch(vec![2, 2, 4, 3], vec!["b1", "b2", "d", ""]),
                Int8Array::from(vec![u, u, u, d]),
            ),
            (
                batch(vec![4, 1, 4], vec!["", "a1", "d2"]),
                Int8Array::from(vec![d, u, u]),
            ),
        ];
        let merged = merge(&schema, &columns, &["id".into()], base, ops).unwrap();
        let ids = merged
            .column(0)
            .as_primitive::<arrow_array::types::Int64Type>();
        let vs = merged.column(1).as_string::<i32>();
        let got: Vec<(i64, &str)> = (0..merged.num_rows())
            .map(|r| (ids.value(r), vs.value(r)))
            .collect();
        assert_eq!(got, [(1, "a1"), (2, "b2"), (4, "d2")]);
    }

    #[test]
    fn delta_ddl_checks() {
        let props = BTreeMap::new();
        let mut cols = vec![col("id", "bigint"), col("m", "map<string,string>")];
        let pt = [col("pt", "string")];
        assert!(check_delta_ddl("t", &mut cols, &pt, &["id".into()], true, &props).is_ok());
        assert!(!cols[0].nullable);
        for (key, transactional, fragment) in [
            ("nope", true, "not a column"),
            ("pt", true, "partition column"),
            ("m", true, "cannot be a hash key"),
            ("id", false, "transactional"),
        ] {
            let err = check_delta_ddl("t", &mut cols, &pt, &[key.into()], transactional, &props)
                .unwrap_err();
            assert!(err.contains(fragment), "{key}: {err}");
        }
        let big = BTreeMap::from([("write.bucket.num".to_owned(), "5000".to_owned())]);
        assert!(check_delta_ddl("t", &mut cols, &pt, &[], false, &big).is_err());
    }
}
