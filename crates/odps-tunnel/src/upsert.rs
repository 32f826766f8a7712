//! Upsert sessions on primary-key Delta tables (transactional tables 2.0):
//! write UPSERT and DELETE rows, commit once, and the table shows per key
//! the last committed state.
//!
//! # Protocol
//!
//! The session lives at the table resource plus `/upserts` on the Tunnel:
//! `POST ?slotnum=1[&lifecycle=h]` creates it, `GET ?upsertid=ID` reloads
//! it, `PUT ?upsertid&bucketid&slotid&record_count` uploads one bucket's
//! block, `POST ?upsertid` commits and `DELETE ?upsertid` aborts, each with
//! `partition=` for a partitioned table and the header
//! `odps-tunnel-routed-server` naming the bucket's slot. The session answers
//! with [`wire::UpsertSessionInfo`]: the key columns (`hash_key`), the
//! [`hash::Hasher`] and which slot serves which bucket. A row goes to
//! bucket `hash(key) % buckets` ([`hash`]); each bucket is a protobuf record
//! stream with five hidden columns ([`wire`]).
//!
//! # Exactly once
//!
//! A session shows nothing until its one commit, and then all of it, so a
//! crash before the commit leaves nothing behind: open a new session and
//! write the unit again. An UPSERT replaces the whole row and a DELETE
//! removes the key, so writing the same unit twice (a replay after a crash
//! that hit right after a commit) gives the same table. Within a session,
//! rows of one key keep their write order (they share a bucket, and a
//! bucket's blocks go out one after another).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use arrow_array::{Int64Array, RecordBatch, StringArray};
//! use odps_tunnel::auth::Credentials;
//! use odps_tunnel::session::PartitionSpec;
//! use odps_tunnel::types::{Column, OdpsType};
//! use odps_tunnel::upsert::{DeltaTable, UpsertOptions};
//! use odps_tunnel::Client;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new("http://127.0.0.1:8080/api", "my_project", Credentials::new("id", "key"))?;
//! let columns = [Column::new("id", OdpsType::Bigint), Column::new("name", OdpsType::String)];
//! let partition_keys = [Column::new("pt", OdpsType::String)];
//! client
//!     .create_delta_table(&DeltaTable::new("users", &columns, &["id"]).partitioned_by(&partition_keys))
//!     .await?;
//!
//! let pt: PartitionSpec = "pt=20240101".parse()?;
//! let mut session = client.create_upsert_session("users", Some(&pt), UpsertOptions::default()).await?;
//! let rows = RecordBatch::try_from_iter([
//!     ("id", Arc::new(Int64Array::from(vec![1, 2])) as _),
//!     ("name", Arc::new(StringArray::from(vec!["ann", "bob"])) as _),
//! ])?;
//! session.upsert(&rows).await?;
//! // A delete needs only the key columns.
//! let gone = RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(vec![2])) as _)])?;
//! session.delete(&gone).await?;
//! session.commit().await?;
//!
//! let merged = client.query_records("SELECT * FROM users WHERE pt='20240101'").await?;
//! assert_eq!(merged.batch.num_rows(), 1);
//! # Ok(())
//! # }
//! ```

pub mod hash;
pub mod wire;

pub use self::wire::{Operation, UpsertSessionInfo, UpsertStatus};

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use bytes::Bytes;
use hyper::Method;

use self::hash::{Hasher, KeyHasher, bucket};
use self::wire::{ROUTED_SERVER_HEADER, SlotInfo, record_columns, with_hidden_columns};
use crate::compress::Compression;
use crate::encode::proto::RecordEncoder;
use crate::error::{Error, ErrorKind, Result};
use crate::rest::{Client, Plane};
use crate::session::{PartitionSpec, TUNNEL_VERSION, TUNNEL_VERSION_HEADER};
use crate::types::{
    Column, DEFAULT_MAX_FIELD_SIZE, TimestampForm, arrow_schema_in, conform_batch_in,
};
use crate::writer::RetryPolicy;

/// Options of an upsert session.
#[derive(Clone, Debug)]
pub struct UpsertOptions {
    /// Slots asked for (`slotnum`; pyodps and the default ask for 1).
    pub slot_num: u32,
    /// Session lifetime in hours, 1..=24 (`lifecycle`); `None` or out of
    /// range leaves the server's default.
    pub lifecycle_hours: Option<u32>,
    /// Whole-body compression of each block.
    pub compression: Compression,
    /// A bucket's buffer is uploaded once it holds this many bytes (1 MiB,
    /// as in both SDKs).
    pub bucket_flush_bytes: usize,
    /// Every bucket is uploaded once all buffers hold this many bytes (64 MiB).
    pub max_buffer_bytes: usize,
    /// Retries of block uploads and of the commit (transient errors only).
    pub retry: RetryPolicy,
    /// How long [`UpsertSession::commit`] waits for `committed` (120 s).
    pub commit_timeout: Duration,
}

impl Default for UpsertOptions {
    fn default() -> Self {
        Self {
            slot_num: 1,
            lifecycle_hours: None,
            compression: Compression::None,
            bucket_flush_bytes: 1 << 20,
            max_buffer_bytes: 64 << 20,
            retry: RetryPolicy::default(),
            commit_timeout: Duration::from_secs(120),
        }
    }
}

/// A primary-key Delta table to create ([`Client::create_delta_table`]).
#[derive(Clone, Debug)]
pub struct DeltaTable<'a> {
    /// Table name.
    pub name: &'a str,
    /// Data columns.
    pub columns: &'a [Column],
    /// Primary key column names (each a data column; made `NOT NULL`).
    pub primary_key: &'a [&'a str],
    /// Partition key columns.
    pub partition_keys: &'a [Column],
    /// `write.bucket.num`; `None` leaves the service's default.
    pub buckets: Option<u32>,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
}

impl<'a> DeltaTable<'a> {
    /// An unpartitioned table, `IF NOT EXISTS`, default bucket count.
    pub fn new(name: &'a str, columns: &'a [Column], primary_key: &'a [&'a str]) -> Self {
        Self {
            name,
            columns,
            primary_key,
            partition_keys: &[],
            buckets: None,
            if_not_exists: true,
        }
    }

    /// With partition keys.
    pub fn partitioned_by(mut self, keys: &'a [Column]) -> Self {
        self.partition_keys = keys;
        self
    }

    /// With `write.bucket.num`.
    pub fn with_buckets(mut self, buckets: u32) -> Self {
        self.buckets = Some(buckets);
        self
    }

    /// The `CREATE TABLE` statement, as pyodps renders one: the columns, then
    /// `PRIMARY KEY (…)` inside the column list, then
    /// `TBLPROPERTIES ('transactional'='true'[, 'write.bucket.num'='n'])`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for an empty key or a key column that
    /// is not a data column.
    pub fn to_sql(&self) -> Result<String> {
        if self.primary_key.is_empty() {
            return Err(Error::invalid(format!(
                "Delta table {}: the primary key is empty",
                self.name
            )));
        }
        for key in self.primary_key {
            if !self
                .columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(key))
            {
                return Err(Error::invalid(format!(
                    "Delta table {}: primary key column {key} is not a data column",
                    self.name
                )));
            }
        }
        let quote = |n: &str| format!("`{}`", n.replace('`', "``"));
        let mut sql = format!(
            "CREATE TABLE {}{} (\n",
            if self.if_not_exists {
                "IF NOT EXISTS "
            } else {
                ""
            },
            quote(self.name)
        );
        for c in self.columns {
            let key = self
                .primary_key
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&c.name));
            let not_null = if key || !c.nullable { " NOT NULL" } else { "" };
            sql.push_str(&format!("  {} {}{not_null},\n", quote(&c.name), c.ty));
        }
        let keys: Vec<String> = self.primary_key.iter().map(|k| quote(k)).collect();
        sql.push_str(&format!("  PRIMARY KEY ({})\n)\n", keys.join(", ")));
        if !self.partition_keys.is_empty() {
            let parts: Vec<String> = self
                .partition_keys
                .iter()
                .map(|c| format!("{} {}", quote(&c.name), c.ty))
                .collect();
            sql.push_str(&format!("PARTITIONED BY ({})\n", parts.join(", ")));
        }
        sql.push_str("TBLPROPERTIES ('transactional'='true'");
        if let Some(n) = self.buckets {
            sql.push_str(&format!(", 'write.bucket.num'='{n}'"));
        }
        sql.push_str(");");
        Ok(sql)
    }
}

impl Client {
    /// Creates a primary-key Delta table (see [`DeltaTable::to_sql`]).
    ///
    /// # Errors
    ///
    /// As [`DeltaTable::to_sql`] and [`Client::run_sql`].
    pub async fn create_delta_table(&self, table: &DeltaTable<'_>) -> Result<()> {
        self.run_sql(&table.to_sql()?).await.map(drop)
    }

    /// Opens an upsert session on a primary-key Delta table or one of its
    /// partitions.
    ///
    /// # Errors
    ///
    /// Server errors (no such table or partition, not a primary-key table,
    /// …), transport errors, and [`ErrorKind::Protocol`] for a session the
    /// client cannot route rows in (unknown hasher, buckets not `0..n`, key
    /// columns of an unhashable type).
    pub async fn create_upsert_session(
        &self,
        table: &str,
        partition: Option<&PartitionSpec>,
        options: UpsertOptions,
    ) -> Result<UpsertSession> {
        let target = Target {
            client: self.clone(),
            table: table.to_owned(),
            partition: partition.cloned().unwrap_or_default(),
        };
        let slots = options.slot_num.max(1).to_string();
        let lifecycle = options
            .lifecycle_hours
            .filter(|h| (1..=24).contains(h))
            .map(|h| h.to_string());
        let mut extra = vec![("slotnum", Some(slots.as_str()))];
        if let Some(h) = &lifecycle {
            extra.push(("lifecycle", Some(h.as_str())));
        }
        let body = target.send(Method::POST, &extra, None, None).await?;
        let info = parse_info(&body)?;
        tracing::debug!(session = %info.id, table, partition = %target.partition, "upsert session created");
        UpsertSession::new(Arc::new(target), info, options)
    }

    /// Reopens an upsert session by id (to commit or abort it after a
    /// restart; rows buffered by the old process are gone, blocks it
    /// uploaded are part of the session).
    ///
    /// # Errors
    ///
    /// As [`create_upsert_session`](Self::create_upsert_session).
    pub async fn resume_upsert_session(
        &self,
        table: &str,
        partition: Option<&PartitionSpec>,
        id: &str,
        options: UpsertOptions,
    ) -> Result<UpsertSession> {
        let target = Target {
            client: self.clone(),
            table: table.to_owned(),
            partition: partition.cloned().unwrap_or_default(),
        };
        let info = target.reload(id).await?;
        UpsertSession::new(Arc::new(target), info, options)
    }
}

struct Target {
    client: Client,
    table: String,
    partition: PartitionSpec,
}

impl Target {
    /// One request on the session resource; the response body.
    async fn send(
        &self,
        method: Method,
        extra: &[(&str, Option<&str>)],
        routed: Option<&str>,
        body: Option<(Bytes, Option<&str>)>,
    ) -> Result<Bytes> {
        let path = format!("{}/upserts", self.client.table_path(&self.table));
        let spec = self.partition.to_string();
        let mut params = extra.to_vec();
        if !self.partition.is_empty() {
            params.push(("partition", Some(spec.as_str())));
        }
        if let Some(q) = &self.client.options().quota_name {
            params.push(("quotaName", Some(q.as_str())));
        }
        let mut headers = vec![(TUNNEL_VERSION_HEADER, TUNNEL_VERSION)];
        if let Some(server) = routed {
            headers.push((ROUTED_SERVER_HEADER, server));
        }
        let payload = match body {
            Some((bytes, encoding)) => {
                if let Some(e) = encoding {
                    // Not signed: only Content-MD5, Content-Type, Date and x-odps-* are.
                    headers.push(("Content-Encoding", e));
                }
                Some(("application/octet-stream", bytes))
            }
            None => None,
        };
        let response = self
            .client
            .request(Plane::Tunnel, method, &path, &params, &headers, payload)
            .await?;
        Ok(response.body)
    }

    async fn reload(&self, id: &str) -> Result<UpsertSessionInfo> {
        let mut attempt = 1;
        loop {
            match self
                .send(Method::GET, &[("upsertid", Some(id))], None, None)
                .await
            {
                Ok(body) => return parse_info(&body),
                Err(e) if e.is_retryable() && attempt < self.client.options().max_attempts => {
                    tracing::warn!(session = id, attempt, error = %e, "upsert session reload failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100) * attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn parse_info(body: &[u8]) -> Result<UpsertSessionInfo> {
    serde_json::from_slice(body).map_err(|e| Error::protocol(format!("upsert session JSON: {e}")))
}

/// One bucket's buffer: a record stream being filled.
struct Bucket {
    encoder: RecordEncoder,
}

/// A sealed bucket block waiting for its PUT.
struct Block {
    bucket: u32,
    rows: u64,
    body: Bytes,
}

/// What one block upload needs, owned so uploads can run in parallel.
struct Put {
    target: Arc<Target>,
    id: String,
    encoding: Option<&'static str>,
    retry: RetryPolicy,
}

impl Put {
    /// PUTs a block to its slot, retrying transient errors with the same
    /// bytes (the block is applied once per try that reached the server,
    /// and applying the same full rows twice in a row changes nothing). A
    /// 308 comes back to the caller, which reloads the slot map.
    async fn send(&self, slot: &SlotInfo, block: &Block) -> Result<()> {
        let bucket = block.bucket.to_string();
        let count = block.rows.to_string();
        let extra = [
            ("upsertid", Some(self.id.as_str())),
            ("bucketid", Some(bucket.as_str())),
            ("slotid", Some(slot.slot_id.as_str())),
            ("record_count", Some(count.as_str())),
        ];
        let mut attempt = 1;
        let mut backoff = self.retry.initial_backoff;
        loop {
            let result = self
                .target
                .send(
                    Method::PUT,
                    &extra,
                    Some(&slot.worker_addr),
                    Some((block.body.clone(), self.encoding)),
                )
                .await;
            match result {
                Ok(_) => {
                    tracing::debug!(session = %self.id, bucket = block.bucket, rows = block.rows,
                        bytes = block.body.len(), attempt, "upsert block uploaded");
                    return Ok(());
                }
                Err(e) if e.is_retryable() && attempt < self.retry.max_attempts.max(1) => {
                    tracing::warn!(session = %self.id, bucket = block.bucket, attempt, error = %e,
                        "upsert block upload failed; sending it again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.max_backoff);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Where the session stands on the client side.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum State {
    Open,
    Committed,
    Aborted,
    /// An upload failed for good: what the server holds is unknown.
    Failed,
}

/// An open upsert session. See the [module docs](self).
///
/// Write with [`upsert`](Self::upsert) and [`delete`](Self::delete), then
/// [`commit`](Self::commit) once. Dropping it without a commit leaves
/// nothing visible (the server expires the session). After an upload that
/// failed for good the session refuses further writes and the commit
/// ([`ErrorKind::UpsertSession`]): open a new one and write the unit again.
///
/// There is no background keep-alive: a session that stays open longer
/// than its lifetime (`lifecycle_hours`, or the server's default) expires;
/// call [`reload`](Self::reload) now and then when writing slowly.
pub struct UpsertSession {
    target: Arc<Target>,
    info: UpsertSessionInfo,
    options: UpsertOptions,
    columns: Vec<Column>,
    record_columns: Vec<Column>,
    key_hasher: KeyHasher,
    key_columns: Vec<String>,
    buckets: Vec<Bucket>,
    buffered: usize,
    state: State,
    rows: [u64; 2],
}

impl std::fmt::Debug for UpsertSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpsertSession")
            .field("id", &self.info.id)
            .field("table", &self.target.table)
            .field("partition", &self.target.partition.to_string())
            .field("buckets", &self.buckets.len())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl UpsertSession {
    fn new(target: Arc<Target>, info: UpsertSessionInfo, options: UpsertOptions) -> Result<Self> {
        let columns = info.schema.data_columns();
        let hasher = Hasher::from_name(&info.hasher).ok_or_else(|| {
            Error::protocol(format!(
                "upsert session {}: unknown hasher {:?}",
                info.id, info.hasher
            ))
        })?;
        let count = info.bucket_count().ok_or_else(|| {
            Error::protocol(format!(
                "upsert session {}: the slots do not name buckets 0..n",
                info.id
            ))
        })?;
        if info.hash_key.is_empty() {
            return Err(Error::protocol(format!(
                "upsert session {} has no hash key (is {} a primary-key table?)",
                info.id, target.table
            )));
        }
        let key_hasher = KeyHasher::new(hasher, &columns, &info.hash_key)
            .map_err(|e| Error::protocol(format!("upsert session {}: {e}", info.id)))?;
        let record_columns = record_columns(&columns);
        let buckets = (0..count)
            .map(|_| Bucket {
                encoder: RecordEncoder::try_new(&record_columns),
            })
            .collect();
        let state = match info.status {
            UpsertStatus::Normal => State::Open,
            UpsertStatus::Committed => State::Committed,
            _ => State::Aborted,
        };
        Ok(Self {
            key_columns: info.hash_key.clone(),
            target,
            options,
            columns,
            record_columns,
            key_hasher,
            buckets,
            buffered: 0,
            state,
            rows: [0, 0],
            info,
        })
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The session JSON as last received.
    pub fn info(&self) -> &UpsertSessionInfo {
        &self.info
    }

    /// The table's data columns (what an upsert row holds).
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The primary key columns rows are routed by.
    pub fn key_columns(&self) -> &[String] {
        &self.key_columns
    }

    /// The number of buckets.
    pub fn bucket_count(&self) -> u32 {
        self.buckets.len() as u32
    }

    /// Rows accepted so far: `(upserts, deletes)`.
    pub fn rows_written(&self) -> (u64, u64) {
        (self.rows[0], self.rows[1])
    }

    /// Asks the server for the session (also keeps it alive: both SDKs
    /// reload every 30 s while writing).
    ///
    /// # Errors
    ///
    /// Server and transport errors; [`ErrorKind::UpsertSession`] when the
    /// bucket count changed (rows already routed would be misplaced).
    pub async fn reload(&mut self) -> Result<&UpsertSessionInfo> {
        let info = self.target.reload(&self.info.id).await?;
        if info.bucket_count() != Some(self.bucket_count()) {
            return Err(self.not_open("the session's slot map changed its bucket count"));
        }
        if info.status == UpsertStatus::Committed {
            self.state = State::Committed;
        }
        self.info = info;
        Ok(&self.info)
    }

    fn not_open(&self, message: &str) -> Error {
        ErrorKind::UpsertSession {
            id: self.info.id.clone(),
            status: self.info.status.to_string(),
            message: message.to_owned(),
        }
        .into()
    }

    /// Buffers rows to insert or replace whole. `batch` has the table's
    /// data columns (by name, any order; timestamps of any unit or as
    /// [`crate::types::sec_nano_type`] structs); key columns must not be
    /// NULL. Uploads a bucket once its buffer is full.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Type`] when the batch does not fit the table,
    /// [`ErrorKind::UpsertRow`] for a NULL key (nothing of the batch is
    /// buffered then), [`ErrorKind::UpsertSession`] after commit or abort,
    /// and the error of an upload that failed for good.
    pub async fn upsert(&mut self, batch: &RecordBatch) -> Result<()> {
        self.write(batch, Operation::Upsert).await
    }

    /// Buffers keys to delete: `batch` needs the key columns only; other
    /// columns, if given, are sent as they are. Errors as [`upsert`](Self::upsert).
    ///
    /// # Errors
    ///
    /// As [`upsert`](Self::upsert).
    pub async fn delete(&mut self, batch: &RecordBatch) -> Result<()> {
        self.write(batch, Operation::Delete).await
    }

    /// Buffers rows for `op` (see [`upsert`](Self::upsert) and [`delete`](Self::delete)).
    ///
    /// # Errors
    ///
    /// As [`upsert`](Self::upsert).
    pub async fn write(&mut self, batch: &RecordBatch, op: Operation) -> Result<()> {
        match self.state {
            State::Open => {}
            State::Failed => {
                return Err(self.not_open(
                    "an upload of this session failed; write the unit again in a new session",
                ));
            }
            State::Committed | State::Aborted => {
                return Err(self.not_open("rows written after the session ended"));
            }
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let conformed = self.conform(batch, op)?;
        let hashes = self
            .key_hasher
            .row_hashes(&conformed)
            .map_err(|e| Error::from(ErrorKind::UpsertRow(e.to_string())))?;
        let n = self.bucket_count();
        let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); self.buckets.len()];
        for (row, h) in hashes.iter().enumerate() {
            rows_of[bucket(*h, n) as usize].push(row as u32);
        }
        let full = with_hidden_columns(&self.columns, &conformed, op, TimestampForm::SecNano)?;
        let mut full_buckets = Vec::new();
        for (b, rows) in rows_of.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let part =
                arrow_select::take::take_record_batch(&full, &UInt32Array::from(rows.clone()))?;
            let encoder = &mut self.buckets[b].encoder;
            let before = encoder.buffered_len();
            if let Err(e) = encoder.write(&part) {
                // Other buckets may hold part of the batch already.
                self.state = State::Failed;
                return Err(Error::invalid(format!("encoding upsert rows: {e}")));
            }
            self.buffered += encoder.buffered_len() - before;
            if encoder.buffered_len() >= self.options.bucket_flush_bytes {
                full_buckets.push(b);
            }
        }
        self.rows[usize::from(op == Operation::Delete)] += batch.num_rows() as u64;
        if self.buffered >= self.options.max_buffer_bytes {
            self.flush().await?;
        } else if !full_buckets.is_empty() {
            let mut blocks = Vec::new();
            for b in full_buckets {
                blocks.extend(self.take_block(b)?);
            }
            self.upload(blocks).await?;
        }
        Ok(())
    }

    /// The batch in the table's layout: a delete may omit non-key columns
    /// (sent as NULL); key columns must be present and non-NULL.
    fn conform(&self, batch: &RecordBatch, op: Operation) -> Result<RecordBatch> {
        let schema = batch.schema();
        let find = |name: &str| {
            schema
                .fields()
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(name))
        };
        for key in &self.key_columns {
            let Some(i) = find(key) else {
                return Err(
                    ErrorKind::UpsertRow(format!("the batch has no key column {key}")).into(),
                );
            };
            if let Some(row) = (0..batch.num_rows()).find(|&r| batch.column(i).is_null(r)) {
                return Err(
                    ErrorKind::UpsertRow(format!("key column {key} is NULL in row {row}")).into(),
                );
            }
        }
        if op == Operation::Upsert {
            return Ok(conform_batch_in(
                &self.columns,
                batch,
                DEFAULT_MAX_FIELD_SIZE,
                TimestampForm::SecNano,
            )?);
        }
        // A delete: missing columns are NULL, and NOT NULL does not apply
        // to the columns a delete does not carry.
        let loose: Vec<Column> = self
            .columns
            .iter()
            .map(|c| Column {
                nullable: true,
                ..c.clone()
            })
            .collect();
        let target = arrow_schema_in(&loose, TimestampForm::SecNano);
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (c, field) in loose.iter().zip(target.fields()) {
            match find(&c.name) {
                Some(i) => {
                    fields.push(schema.field(i).clone());
                    arrays.push(batch.column(i).clone());
                }
                None => {
                    fields.push(field.as_ref().clone());
                    arrays.push(arrow_array::new_null_array(
                        field.data_type(),
                        batch.num_rows(),
                    ));
                }
            }
        }
        for f in schema.fields() {
            if !loose.iter().any(|c| c.name.eq_ignore_ascii_case(f.name())) {
                return Err(
                    ErrorKind::Type(crate::types::TypeError::MissingColumn(format!(
                        "{} (batch column not in the table)",
                        f.name()
                    )))
                    .into(),
                );
            }
        }
        let padded = RecordBatch::try_new_with_options(
            Arc::new(arrow_schema::Schema::new(fields)),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?;
        Ok(conform_batch_in(
            &loose,
            &padded,
            DEFAULT_MAX_FIELD_SIZE,
            TimestampForm::SecNano,
        )?)
    }

    /// Uploads every bucket's buffered rows, the buckets in parallel (as
    /// both SDKs do; a bucket's blocks still go out in order).
    ///
    /// # Errors
    ///
    /// The error of an upload that failed for good.
    pub async fn flush(&mut self) -> Result<()> {
        let mut jobs = Vec::new();
        for b in 0..self.buckets.len() {
            if let Some(job) = self.take_block(b)? {
                jobs.push(job);
            }
        }
        self.upload(jobs).await
    }

    /// Seals bucket `b`'s buffer into a block body, if it holds rows.
    fn take_block(&mut self, b: usize) -> Result<Option<Block>> {
        let fresh = RecordEncoder::try_new(&self.record_columns);
        let encoder = std::mem::replace(&mut self.buckets[b].encoder, fresh);
        let rows = encoder.rows_written();
        if rows == 0 {
            return Ok(None);
        }
        let raw = encoder.finish();
        self.buffered = self.buffered.saturating_sub(raw.len());
        let compression = self.options.compression;
        let body = if compression == Compression::None {
            Bytes::from(raw)
        } else {
            match compression.compress(&raw) {
                Ok(c) => Bytes::from(c),
                Err(e) => {
                    self.state = State::Failed;
                    return Err(Error::invalid(format!("compressing an upsert block: {e}")));
                }
            }
        };
        Ok(Some(Block {
            bucket: b as u32,
            rows,
            body,
        }))
    }

    async fn upload(&mut self, blocks: Vec<Block>) -> Result<()> {
        let result = self.upload_blocks(blocks).await;
        if result.is_err() {
            // Some of the session's rows may be on the server and others
            // not: it must never be committed.
            self.state = State::Failed;
        }
        result
    }

    async fn upload_blocks(&mut self, mut blocks: Vec<Block>) -> Result<()> {
        let mut rounds = 1;
        loop {
            let mut set = tokio::task::JoinSet::new();
            for block in blocks.drain(..) {
                let slot = self
                    .info
                    .slot_of(block.bucket)
                    .ok_or_else(|| {
                        Error::protocol(format!("no slot serves bucket {}", block.bucket))
                    })?
                    .clone();
                let put = Put {
                    target: Arc::clone(&self.target),
                    id: self.info.id.clone(),
                    encoding: self.options.compression.content_encoding(),
                    retry: self.options.retry.clone(),
                };
                set.spawn(async move {
                    let result = put.send(&slot, &block).await;
                    (block, result)
                });
            }
            let mut moved = Vec::new();
            let mut failed = None;
            while let Some(joined) = set.join_next().await {
                let (block, result) =
                    joined.map_err(|e| Error::transport(format!("upsert upload task: {e}")))?;
                match result {
                    Ok(()) => {}
                    // 308: the bucket moved to another slot; reload and resend.
                    Err(e) if e.server().is_some_and(|s| s.status == 308) => moved.push(block),
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            if moved.is_empty() {
                return Ok(());
            }
            if rounds >= self.options.retry.max_attempts.max(1) {
                return Err(self.not_open("buckets kept moving between slots (HTTP 308)"));
            }
            tracing::warn!(session = %self.info.id, buckets = moved.len(), "buckets reassigned; reloading the session");
            self.reload().await?;
            blocks = moved;
            rounds += 1;
        }
    }

    fn routed_server(&self) -> Option<String> {
        self.info.slot_of(0).map(|s| s.worker_addr.clone())
    }

    /// Uploads what is buffered and commits the session: every row becomes
    /// visible at once. Waits (polling) until the server says `committed`.
    /// A commit that went through although its answer was lost is
    /// recognized on reload and counts as success.
    ///
    /// # Errors
    ///
    /// Upload errors; [`ErrorKind::UpsertSession`] when the session ended
    /// in another status or is still committing after
    /// [`UpsertOptions::commit_timeout`]; server and transport errors.
    pub async fn commit(mut self) -> Result<UpsertSessionInfo> {
        match self.state {
            State::Committed => return Err(self.not_open("commit asked twice")),
            State::Aborted => return Err(self.not_open("commit asked of an ended session")),
            State::Failed => {
                return Err(self.not_open(
                    "an upload of this session failed; write the unit again in a new session",
                ));
            }
            State::Open => {}
        }
        self.flush().await?;
        let id = self.info.id.clone();
        let start = Instant::now();
        let mut attempt = 1;
        let mut backoff = self.options.retry.initial_backoff;
        // The first POST, retried on transient errors; a lost answer shows
        // as `committed` on reload.
        loop {
            let routed = self.routed_server();
            let result = self
                .target
                .send(
                    Method::POST,
                    &[("upsertid", Some(id.as_str()))],
                    routed.as_deref(),
                    None,
                )
                .await;
            match result {
                Ok(body) => {
                    if let Ok(info) = parse_info(&body) {
                        self.info = info;
                    } else {
                        self.reload().await?;
                    }
                    break;
                }
                Err(e) => {
                    let retry =
                        e.is_retryable() && attempt < self.options.retry.max_attempts.max(1);
                    match self.target.reload(&id).await {
                        Ok(info) if info.status == UpsertStatus::Committed => {
                            self.info = info;
                            break;
                        }
                        Ok(info) => self.info = info,
                        Err(reload) => {
                            tracing::warn!(session = %id, error = %reload, "reload after a failed commit failed")
                        }
                    }
                    if !retry {
                        return Err(e);
                    }
                    tracing::warn!(session = %id, attempt, error = %e, "upsert commit failed; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.retry.max_backoff);
                    attempt += 1;
                }
            }
        }
        // The service may answer `committing` first: poll as the SDKs do.
        let mut delay = Duration::from_secs(1);
        while matches!(
            self.info.status,
            UpsertStatus::Normal | UpsertStatus::Committing
        ) {
            if start.elapsed() > self.options.commit_timeout {
                return Err(self.not_open("still not committed at the commit timeout"));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
            let routed = self.routed_server();
            if let Err(e) = self
                .target
                .send(
                    Method::POST,
                    &[("upsertid", Some(id.as_str()))],
                    routed.as_deref(),
                    None,
                )
                .await
            {
                if e.server()
                    .is_some_and(|s| s.code.contains("SessionNotFound"))
                {
                    // pyodps and Java count a vanished session as committed.
                    self.info.status = UpsertStatus::Committed;
                    break;
                }
                if !e.is_retryable() {
                    return Err(e);
                }
            }
            self.info = self.target.reload(&id).await?;
        }
        if self.info.status != UpsertStatus::Committed {
            return Err(self.not_open("the commit did not end committed"));
        }
        self.state = State::Committed;
        tracing::info!(session = %id, table = %self.target.table, partition = %self.target.partition,
            upserts = self.rows[0], deletes = self.rows[1], "upsert session committed");
        Ok(self.info)
    }

    /// Aborts the session: nothing of it becomes visible.
    ///
    /// # Errors
    ///
    /// Server and transport errors.
    pub async fn abort(mut self) -> Result<()> {
        let routed = self.routed_server();
        let id = self.info.id.clone();
        self.target
            .send(
                Method::DELETE,
                &[("upsertid", Some(id.as_str()))],
                routed.as_deref(),
                None,
            )
            .await?;
        self.state = State::Aborted;
        tracing::info!(session = %id, "upsert session aborted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::OdpsType;

    #[test]
    fn delta_table_sql_is_pyodps_shaped() {
        let cols = [
            Column::new("id", OdpsType::Bigint),
            Column::new("name", OdpsType::String),
        ];
        let parts = [Column::new("pt", OdpsType::String)];
        let sql = DeltaTable::new("t", &cols, &["id"])
            .partitioned_by(&parts)
            .with_buckets(4)
            .to_sql()
            .unwrap();
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS `t` (\n  `id` bigint NOT NULL,\n  `name` string,\n  PRIMARY KEY (`id`)\n)\nPARTITIONED BY (`pt` string)\nTBLPROPERTIES ('transactional'='true', 'write.bucket.num'='4');"
        );
        assert!(DeltaTable::new("t", &cols, &["nope"]).to_sql().is_err());
        assert!(DeltaTable::new("t", &cols, &[]).to_sql().is_err());
    }
}
