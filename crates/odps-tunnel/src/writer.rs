//! The Tunnel data plane: upload sessions with the Arrow block writer, and
//! download sessions for reading data back.
//!
//! # Upload
//!
//! [`Client::create_upload_session`] opens a session for a table or one of its
//! partitions; persist [`UploadSession::id`] to resume it after a restart with
//! [`Client::resume_upload_session`]. [`UploadSession::arrow_writer`] gives a
//! [`BlockWriter`] of Arrow blocks (and [`UploadSession::record_writer`] one
//! of protobuf record blocks): it encodes `RecordBatch`es into blocks of about
//! [`WriterOptions::block_bytes`], uploads up to
//! [`WriterOptions::max_in_flight`] blocks at once, and retries a failed block
//! by uploading the same bytes under the same block id (the Tunnel replaces a
//! block on a second PUT), with exponential backoff.
//! [`BlockWriter::finish`] returns a [`BlockReceipt`] per block; pass
//! their ids to [`UploadSession::commit`], which makes the data visible at once.
//!
//! # Choosing the format
//!
//! The Arrow format is the fast one, but carries `timestamp` and
//! `timestamp_ntz` values as 64-bit nanoseconds, 1677-09-21 .. 2262-04-11
//! only (see [`crate::types`]). [`BlockFormat::for_batches`] picks the
//! protobuf record format for batches holding a value outside that window;
//! it carries MaxCompute's whole range. Both writers take timestamps as a
//! `Timestamp` of any unit or as [`crate::types::sec_nano_type`] structs.
//!
//! # Compression
//!
//! [`WriterOptions::compression`] compresses each block body as a whole
//! (`Content-Encoding: deflate` or `zstd`, see [`crate::compress`]); the
//! compression runs on tokio's blocking pool, block by block in parallel.
//! [`UploadSession::upload_compressed_block`] does the same for a ready-made
//! body, e.g. a protobuf record stream.
//!
//! # Memory Usage
//!
//! A writer holds at most `max_in_flight` sealed blocks being uploaded plus
//! the block being filled, so about `(max_in_flight + 1) × block_bytes`.
//! [`BlockWriter::write`] waits for an upload to finish before sealing
//! another block when that many are in flight.
//!
//! # Dropping
//!
//! A writer dropped without `finish` aborts its uploads; uploaded blocks stay
//! invisible until a commit names them.
//!
//! # Download
//!
//! [`Client::create_download_session`] and [`DownloadSession::read_arrow`]
//! read rows back as Arrow (or [`DownloadSession::read_records`] in the
//! protobuf format, which carries every timestamp MaxCompute holds).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use bytes::Bytes;
use hyper::Method;
use tokio::task::JoinSet;

use crate::compress::Compression;
use crate::encode::arrow::{BlockEncoder, DEFAULT_CHUNK_SIZE, EncoderOptions, decode_block};
use crate::encode::proto::{RecordDecoder, RecordEncoder};
use crate::error::{Error, ErrorKind, Result};
use crate::rest::{Client, Plane};
use crate::session::{
    BlockId, DownloadSessionInfo, PartitionSpec, SessionStatus, TUNNEL_VERSION,
    TUNNEL_VERSION_HEADER, UploadSessionInfo,
};
use crate::types::{Column, DEFAULT_MAX_FIELD_SIZE, TimestampForm, needs_record_format};

const OCTET_STREAM: &str = "application/octet-stream";
const TUNNEL_HEADERS: &[(&str, &str)] = &[(TUNNEL_VERSION_HEADER, TUNNEL_VERSION)];

/// Options of [`Client::create_upload_session`].
#[derive(Clone, Debug, Default)]
pub struct UploadOptions {
    /// Create the partition if it does not exist.
    pub create_partition: bool,
    /// Replace the table's (partition's) data on commit.
    pub overwrite: bool,
}

/// The body format of a block.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum BlockFormat {
    /// Chunked Arrow IPC (`?arrow`).
    Arrow,
    /// Protobuf records.
    Protobuf,
}

impl BlockFormat {
    /// [`Arrow`](Self::Arrow), unless a batch holds a `timestamp` or
    /// `timestamp_ntz` value that the Arrow tunnel's 64-bit nanoseconds
    /// cannot carry: then [`Protobuf`](Self::Protobuf), which carries
    /// MaxCompute's whole range.
    pub fn for_batches<'a>(
        columns: &[Column],
        batches: impl IntoIterator<Item = &'a RecordBatch>,
    ) -> Self {
        if batches.into_iter().any(|b| needs_record_format(columns, b)) {
            Self::Protobuf
        } else {
            Self::Arrow
        }
    }
}

/// What one uploaded block holds.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct BlockReceipt {
    /// The block id.
    pub block_id: BlockId,
    /// Rows in the block.
    pub rows: u64,
    /// Body bytes sent (after compression).
    pub bytes: u64,
    /// Uploads it took (1 when the first one succeeded).
    pub attempts: u32,
}

struct Target {
    client: Client,
    table: String,
    partition: PartitionSpec,
}

impl Target {
    fn path(&self) -> String {
        self.client.table_path(&self.table)
    }

    fn params<'a>(
        &'a self,
        partition: &'a str,
        extra: &[(&'a str, Option<&'a str>)],
    ) -> Vec<(&'a str, Option<&'a str>)> {
        let mut p = extra.to_vec();
        if !self.partition.is_empty() {
            p.push(("partition", Some(partition)));
        }
        if let Some(q) = &self.client.options().quota_name {
            p.push(("quotaName", Some(q.as_str())));
        }
        p
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::protocol(format!("{what} JSON: {e}")))
}

impl Client {
    /// Opens an upload session on a table, or on one partition of it.
    ///
    /// # Errors
    ///
    /// Server errors (no such table or partition, ...) and transport errors.
    pub async fn create_upload_session(
        &self,
        table: &str,
        partition: Option<&PartitionSpec>,
        options: &UploadOptions,
    ) -> Result<UploadSession> {
        let target = Target {
            client: self.clone(),
            table: table.to_owned(),
            partition: partition.cloned().unwrap_or_default(),
        };
        let spec = target.partition.to_string();
        let mut extra = vec![("uploads", Some("1"))];
        if options.create_partition {
            extra.push(("create_partition", Some("true")));
        }
        if options.overwrite {
            extra.push(("overwrite", Some("true")));
        }
        let response = self
            .request(
                Plane::Tunnel,
                Method::POST,
                &target.path(),
                &target.params(&spec, &extra),
                TUNNEL_HEADERS,
                None,
            )
            .await?;
        let info: UploadSessionInfo = parse_json(&response.body, "upload session")?;
        tracing::debug!(session = %info.id, table, partition = %spec, "upload session created");
        Ok(UploadSession::new(target, info))
    }

    /// Reopens an upload session from its persisted id.
    ///
    /// # Errors
    ///
    /// Server errors (unknown or expired session) and transport errors.
    pub async fn resume_upload_session(
        &self,
        table: &str,
        partition: Option<&PartitionSpec>,
        id: &str,
    ) -> Result<UploadSession> {
        let target = Target {
            client: self.clone(),
            table: table.to_owned(),
            partition: partition.cloned().unwrap_or_default(),
        };
        let info = reload_upload(&target, id).await?;
        Ok(UploadSession::new(target, info))
    }

    /// Opens a download session on a table or partition.
    ///
    /// # Errors
    ///
    /// Server and transport errors; [`ErrorKind::Timeout`] if the session
    /// stays `initiating` for more than the SQL timeout.
    pub async fn create_download_session(
        &self,
        table: &str,
        partition: Option<&PartitionSpec>,
    ) -> Result<DownloadSession> {
        let target = Target {
            client: self.clone(),
            table: table.to_owned(),
            partition: partition.cloned().unwrap_or_default(),
        };
        let spec = target.partition.to_string();
        let response = self
            .request(
                Plane::Tunnel,
                Method::POST,
                &target.path(),
                &target.params(&spec, &[("downloads", None)]),
                TUNNEL_HEADERS,
                None,
            )
            .await?;
        let mut info: DownloadSessionInfo = parse_json(&response.body, "download session")?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(100);
        while info.status == SessionStatus::Initiating {
            if start.elapsed() > self.options().sql_timeout {
                return Err(ErrorKind::Timeout(format!(
                    "download session {} still initiating",
                    info.id
                ))
                .into());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            let response = self
                .get(
                    Plane::Tunnel,
                    &target.path(),
                    &target.params(&spec, &[("downloadid", Some(info.id.as_str()))]),
                    TUNNEL_HEADERS,
                )
                .await?;
            info = parse_json(&response.body, "download session")?;
        }
        Ok(DownloadSession {
            columns: info.schema.data_columns(),
            target,
            info,
        })
    }
}

async fn reload_upload(target: &Target, id: &str) -> Result<UploadSessionInfo> {
    let spec = target.partition.to_string();
    let response = target
        .client
        .get(
            Plane::Tunnel,
            &target.path(),
            &target.params(&spec, &[("uploadid", Some(id))]),
            TUNNEL_HEADERS,
        )
        .await?;
    parse_json(&response.body, "upload session")
}

/// Retry policy of block uploads.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Uploads of one block before giving up (at least 1).
    pub max_attempts: u32,
    /// Pause before the second upload; doubled each time.
    pub initial_backoff: Duration,
    /// Longest pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

struct SessionCore {
    target: Target,
    id: String,
    retry: RetryPolicy,
}

impl SessionCore {
    /// PUTs one block body, retrying retryable failures with the same id and
    /// bytes. `encoding` is the `Content-Encoding` of an already compressed body.
    async fn upload(
        &self,
        block: BlockId,
        body: Bytes,
        format: BlockFormat,
        encoding: Option<&str>,
    ) -> Result<u32> {
        let spec = self.target.partition.to_string();
        let block_str = block.to_string();
        let mut extra = vec![
            ("uploadid", Some(self.id.as_str())),
            ("blockid", Some(block_str.as_str())),
        ];
        if format == BlockFormat::Arrow {
            extra.push(("arrow", None));
        }
        let params = self.target.params(&spec, &extra);
        let mut headers = TUNNEL_HEADERS.to_vec();
        if let Some(encoding) = encoding {
            // Not signed: only Content-MD5, Content-Type, Date and x-odps-* are.
            headers.push(("Content-Encoding", encoding));
        }
        let mut attempt = 1;
        let mut backoff = self.retry.initial_backoff;
        loop {
            let result = self
                .target
                .client
                .request(
                    Plane::Tunnel,
                    Method::PUT,
                    &self.target.path(),
                    &params,
                    &headers,
                    Some((OCTET_STREAM, body.clone())),
                )
                .await;
            match result {
                Ok(_) => return Ok(attempt),
                Err(e) if e.is_retryable() && attempt < self.retry.max_attempts.max(1) => {
                    tracing::warn!(block = %block, attempt, error = %e, "block upload failed; uploading it again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.max_backoff);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// An open upload session.
pub struct UploadSession {
    core: Arc<SessionCore>,
    info: UploadSessionInfo,
    columns: Vec<Column>,
}

impl std::fmt::Debug for UploadSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadSession")
            .field("id", &self.core.id)
            .field("table", &self.core.target.table)
            .field("partition", &self.core.target.partition.to_string())
            .finish_non_exhaustive()
    }
}

impl UploadSession {
    fn new(target: Target, info: UploadSessionInfo) -> Self {
        Self {
            columns: info.schema.data_columns(),
            core: Arc::new(SessionCore {
                target,
                id: info.id.clone(),
                retry: RetryPolicy::default(),
            }),
            info,
        }
    }

    /// The session id; persist it to resume the session.
    pub fn id(&self) -> &str {
        &self.core.id
    }

    /// The session JSON as last received.
    pub fn info(&self) -> &UploadSessionInfo {
        &self.info
    }

    /// The table's data columns (what a block holds).
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Sets the retry policy of block uploads made from now on.
    pub fn set_retry_policy(&mut self, retry: RetryPolicy) {
        if let Some(core) = Arc::get_mut(&mut self.core) {
            core.retry = retry;
        } else {
            self.core = Arc::new(SessionCore {
                target: Target {
                    client: self.core.target.client.clone(),
                    table: self.core.target.table.clone(),
                    partition: self.core.target.partition.clone(),
                },
                id: self.core.id.clone(),
                retry,
            });
        }
    }

    /// Asks the server for the session's status and uploaded blocks.
    ///
    /// # Errors
    ///
    /// Server and transport errors.
    pub async fn reload(&mut self) -> Result<&UploadSessionInfo> {
        self.info = reload_upload(&self.core.target, &self.core.id).await?;
        Ok(&self.info)
    }

    /// The ids of the blocks the server holds for this session.
    pub fn uploaded_blocks(&self) -> BTreeSet<BlockId> {
        self.info.blocks.iter().map(|b| b.id).collect()
    }

    /// Uploads one ready-made block body (retried per the retry policy).
    /// Returns the number of uploads it took.
    ///
    /// # Errors
    ///
    /// The last error when the block could not be uploaded.
    pub async fn upload_block(
        &self,
        block: BlockId,
        body: Bytes,
        format: BlockFormat,
    ) -> Result<u32> {
        self.core.upload(block, body, format, None).await
    }

    /// Compresses a ready-made block body and uploads it with its
    /// `Content-Encoding` (retried per the retry policy). Returns the number
    /// of uploads it took.
    ///
    /// # Errors
    ///
    /// As [`upload_block`](Self::upload_block), and a compressor error.
    pub async fn upload_compressed_block(
        &self,
        block: BlockId,
        body: &[u8],
        format: BlockFormat,
        compression: Compression,
    ) -> Result<u32> {
        let body = compress_body(compression, Bytes::copy_from_slice(body)).await?;
        self.core
            .upload(block, body, format, compression.content_encoding())
            .await
    }

    /// A writer of Arrow blocks into this session.
    pub fn arrow_writer(&self, options: WriterOptions) -> BlockWriter {
        self.block_writer(options, BlockFormat::Arrow)
    }

    /// A writer of protobuf record blocks into this session.
    pub fn record_writer(&self, options: WriterOptions) -> BlockWriter {
        self.block_writer(options, BlockFormat::Protobuf)
    }

    /// A writer of blocks in `format` into this session (one session may
    /// take blocks of both formats; the sync sink still keeps to one).
    pub fn block_writer(&self, options: WriterOptions, format: BlockFormat) -> BlockWriter {
        BlockWriter {
            format,
            core: Arc::clone(&self.core),
            columns: self.columns.clone(),
            max_field_size: self
                .info
                .max_field_size
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(DEFAULT_MAX_FIELD_SIZE),
            next_block: options.first_block_id,
            options,
            current: None,
            in_flight: JoinSet::new(),
            receipts: Vec::new(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Commits the session with exactly these blocks: checks that the server
    /// holds the same set, then makes the data visible.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when the server's block list differs
    /// from `blocks` (nothing is committed then); server and transport errors.
    pub async fn commit(mut self, blocks: &[BlockId]) -> Result<UploadSessionInfo> {
        let wanted: BTreeSet<BlockId> = blocks.iter().copied().collect();
        let mut attempt = 1;
        let mut backoff = self.core.retry.initial_backoff;
        loop {
            self.reload().await?;
            if self.info.status == SessionStatus::Closed {
                // An earlier attempt went through.
                return Ok(self.info);
            }
            let held = self.uploaded_blocks();
            if held != wanted {
                return Err(Error::invalid(format!(
                    "session {} holds blocks {:?}, commit asked for {:?}",
                    self.core.id, held, wanted
                )));
            }
            let target = &self.core.target;
            let spec = target.partition.to_string();
            let result = target
                .client
                .request(
                    Plane::Tunnel,
                    Method::POST,
                    &target.path(),
                    &target.params(&spec, &[("uploadid", Some(self.core.id.as_str()))]),
                    TUNNEL_HEADERS,
                    None,
                )
                .await;
            match result {
                Ok(response) => {
                    return if response.body.iter().all(u8::is_ascii_whitespace) {
                        Ok(self.info)
                    } else {
                        parse_json(&response.body, "committed session")
                    };
                }
                Err(e) if e.is_retryable() && attempt < self.core.retry.max_attempts.max(1) => {
                    tracing::warn!(session = %self.core.id, attempt, error = %e, "commit failed; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.core.retry.max_backoff);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Options of a [`BlockWriter`].
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// A block is sealed and uploaded once its body reaches this many bytes.
    pub block_bytes: usize,
    /// Blocks uploading at once.
    pub max_in_flight: usize,
    /// The first block id; later blocks count up from it.
    pub first_block_id: u32,
    /// Arrow framing chunk size (unused by record blocks).
    pub chunk_size: u32,
    /// Whole-body compression of each block.
    pub compression: Compression,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            block_bytes: 64 * 1024 * 1024,
            max_in_flight: 4,
            first_block_id: 0,
            chunk_size: DEFAULT_CHUNK_SIZE,
            compression: Compression::None,
        }
    }
}

/// Compresses a body on the blocking pool (it is CPU work); `None` passes it
/// through untouched.
async fn compress_body(compression: Compression, body: Bytes) -> Result<Bytes> {
    if compression == Compression::None {
        return Ok(body);
    }
    tokio::task::spawn_blocking(move || compression.compress(&body))
        .await
        .map_err(|e| Error::transport(format!("block compression task: {e}")))?
        .map(Bytes::from)
        .map_err(|e| Error::invalid(format!("compressing a block with {compression}: {e}")))
}

/// The encoder of the block being filled.
enum Encoder {
    Arrow(Box<BlockEncoder>),
    Records(RecordEncoder),
}

impl Encoder {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Self::Arrow(e) => e.write(batch)?,
            Self::Records(e) => e.write(batch)?,
        }
        Ok(())
    }

    fn buffered_len(&self) -> usize {
        match self {
            Self::Arrow(e) => e.buffered_len(),
            Self::Records(e) => e.buffered_len(),
        }
    }

    fn rows_written(&self) -> u64 {
        match self {
            Self::Arrow(e) => e.rows_written(),
            Self::Records(e) => e.rows_written(),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Arrow(e) => (*e).finish(),
            Self::Records(e) => e.finish(),
        }
    }
}

struct OpenBlock {
    id: BlockId,
    encoder: Encoder,
}

/// The writer of Arrow blocks, by its former name.
pub type ArrowBlockWriter = BlockWriter;

/// Writes `RecordBatch`es as blocks of one [`BlockFormat`] into an upload
/// session. See the [module docs](self) for memory use and retries.
pub struct BlockWriter {
    format: BlockFormat,
    core: Arc<SessionCore>,
    columns: Vec<Column>,
    max_field_size: usize,
    options: WriterOptions,
    next_block: u32,
    current: Option<OpenBlock>,
    in_flight: JoinSet<Result<BlockReceipt>>,
    receipts: Vec<BlockReceipt>,
    rows: u64,
    bytes: u64,
}

impl std::fmt::Debug for BlockWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockWriter")
            .field("format", &self.format)
            .field("session", &self.core.id)
            .field("rows", &self.rows)
            .field("blocks_done", &self.receipts.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl BlockWriter {
    /// The format of the blocks this writer uploads.
    pub fn format(&self) -> BlockFormat {
        self.format
    }

    /// Adds a batch to the current block; seals and uploads the block once it
    /// is large enough, waiting first if `max_in_flight` uploads are running.
    ///
    /// # Errors
    ///
    /// A type error when the batch does not fit the table (the batch is not
    /// written); the error of a block upload that failed for good.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.current.is_none() {
            let id = BlockId::new(self.next_block).ok_or_else(|| {
                Error::invalid(format!(
                    "block id {} is beyond the session's limit",
                    self.next_block
                ))
            })?;
            let encoder = match self.format {
                BlockFormat::Arrow => Encoder::Arrow(Box::new(BlockEncoder::try_new_with_options(
                    &self.columns,
                    EncoderOptions {
                        chunk_size: self.options.chunk_size,
                        max_field_size: self.max_field_size,
                        check_values: true,
                    },
                )?)),
                BlockFormat::Protobuf => Encoder::Records(
                    RecordEncoder::try_new(&self.columns).with_max_field_size(self.max_field_size),
                ),
            };
            self.next_block += 1;
            self.current = Some(OpenBlock { id, encoder });
        }
        let Some(open) = self.current.as_mut() else {
            return Err(Error::protocol("no open block"));
        };
        open.encoder.write(batch)?;
        self.rows += batch.num_rows() as u64;
        if open.encoder.buffered_len() >= self.options.block_bytes {
            self.seal().await?;
        }
        Ok(())
    }

    /// Seals the current block (if any) and starts its upload.
    ///
    /// # Errors
    ///
    /// The error of an earlier block upload that failed for good.
    pub async fn flush(&mut self) -> Result<()> {
        self.seal().await
    }

    async fn seal(&mut self) -> Result<()> {
        let Some(open) = self.current.take() else {
            return Ok(());
        };
        while self.in_flight.len() >= self.options.max_in_flight.max(1) {
            self.join_one().await?;
        }
        let rows = open.encoder.rows_written();
        let body = Bytes::from(open.encoder.finish());
        let core = Arc::clone(&self.core);
        let id = open.id;
        let compression = self.options.compression;
        let format = self.format;
        self.in_flight.spawn(async move {
            let body = compress_body(compression, body).await?;
            let bytes = body.len() as u64;
            let attempts = core
                .upload(id, body, format, compression.content_encoding())
                .await?;
            Ok(BlockReceipt {
                block_id: id,
                rows,
                bytes,
                attempts,
            })
        });
        Ok(())
    }

    async fn join_one(&mut self) -> Result<()> {
        match self.in_flight.join_next().await {
            Some(Ok(Ok(receipt))) => {
                self.bytes += receipt.bytes;
                self.receipts.push(receipt);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(e),
            Some(Err(join)) => Err(Error::transport(format!("block upload task: {join}"))),
            None => Ok(()),
        }
    }

    /// Rows accepted so far.
    pub fn rows_written(&self) -> u64 {
        self.rows
    }

    /// Body bytes of the blocks uploaded so far.
    pub fn bytes_uploaded(&self) -> u64 {
        self.bytes
    }

    /// Seals the last block, waits for every upload and returns the receipts
    /// in block id order.
    ///
    /// # Errors
    ///
    /// The first block upload that failed for good (the others are aborted).
    pub async fn finish(mut self) -> Result<Vec<BlockReceipt>> {
        self.seal().await?;
        while !self.in_flight.is_empty() {
            self.join_one().await?;
        }
        let mut receipts = std::mem::take(&mut self.receipts);
        receipts.sort_by_key(|r| r.block_id);
        Ok(receipts)
    }
}

/// An open download session.
pub struct DownloadSession {
    target: Target,
    info: DownloadSessionInfo,
    columns: Vec<Column>,
}

impl std::fmt::Debug for DownloadSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadSession")
            .field("id", &self.info.id)
            .field("records", &self.info.record_count)
            .finish_non_exhaustive()
    }
}

impl DownloadSession {
    /// The session id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Rows readable.
    pub fn record_count(&self) -> u64 {
        self.info.record_count
    }

    /// The session JSON.
    pub fn info(&self) -> &DownloadSessionInfo {
        &self.info
    }

    /// The table's data columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    async fn read_body(&self, start: u64, count: u64, arrow: bool) -> Result<Bytes> {
        let spec = self.target.partition.to_string();
        let range = format!("({start},{count})");
        let mut extra = vec![("data", None)];
        if arrow {
            extra.push(("arrow", None));
        }
        extra.push(("downloadid", Some(self.info.id.as_str())));
        extra.push(("rowrange", Some(range.as_str())));
        let response = self
            .target
            .client
            .get(
                Plane::Tunnel,
                &self.target.path(),
                &self.target.params(&spec, &extra),
                TUNNEL_HEADERS,
            )
            .await?;
        Ok(response.body)
    }

    /// Reads `count` rows from row `start` in the Arrow format.
    ///
    /// # Errors
    ///
    /// Request errors and [`ErrorKind::Decode`] for a damaged body.
    pub async fn read_arrow(&self, start: u64, count: u64) -> Result<Vec<RecordBatch>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let body = self.read_body(start, count, true).await?;
        Ok(decode_block(&self.columns, &body)?)
    }

    /// Reads `count` rows from row `start` in the protobuf record format,
    /// `timestamp` and `timestamp_ntz` columns as
    /// [`crate::types::sec_nano_type`] structs (this format carries every
    /// value MaxCompute holds; [`read_arrow`](Self::read_arrow) only those
    /// 64-bit nanoseconds hold).
    ///
    /// # Errors
    ///
    /// Request errors and [`ErrorKind::Decode`] for a damaged body.
    pub async fn read_records(&self, start: u64, count: u64) -> Result<RecordBatch> {
        let body = self.read_body(start, count, false).await?;
        Ok(RecordDecoder::new(&self.columns)
            .with_timestamp_form(TimestampForm::SecNano)
            .decode(&body)?
            .batch)
    }
}
