//! The full-load read: binlog position first, then lock-free primary-key
//! chunks over several connections, decoded straight into Arrow.
//!
//! # Why "position first, then lock-free chunks" makes `base + log` exact
//!
//! 1. [`capture_position`] records a binlog position `P` (and GTID state)
//!    such that every transaction written to the binlog before `P` is
//!    already committed in InnoDB. On MariaDB it opens a consistent
//!    snapshot and reads `binlog_snapshot_file/position`, which the server
//!    keeps consistent with that snapshot; on MySQL 8.0.13+ it reads
//!    `performance_schema.log_status`, which reports position and
//!    `gtid_executed` consistent with InnoDB (needs `BACKUP_ADMIN`), and
//!    falls back to `SHOW MASTER STATUS` (whose binlog end can run a group
//!    commit ahead of InnoDB for an instant — grant `BACKUP_ADMIN`).
//! 2. Each chunk is then read by one `SELECT` (prepared, binary rows) in
//!    autocommit mode: an InnoDB consistent read, no row or table locks. The
//!    chunk shows every row of its key range as of some instant `t ≥ P`.
//! 3. The incremental phase reads the binlog from `P` with full row images.
//!    For a key `k`, every change after `P` is in that log. If `k` changed
//!    after `P`, its last log record (an after-image or a delete) is its
//!    final state, whatever the chunk saw; if it did not change, the chunk
//!    (read at `t ≥ P`) holds exactly its state at `P`, which is final.
//!    So merging base and log by key, latest log record winning, yields the
//!    source table, with no lock and no coordination between chunks.
//!
//! The argument needs a key: tables without a primary or NOT NULL unique key
//! are read in one scan and must be flagged by the caller's precheck.
//!
//! # Resume, progress, throttling
//! A [`TablePlan`] lists the chunk boundaries; the caller stores it with
//! the ids of the chunks it has made durable and passes both back after a
//! restart ([`TableJob::done`]); those chunks are not read again.
//! [`Progress`] counts rows, bytes and chunks; [`Throttle`] caps queries,
//! rows and bytes per second across all connections (token buckets, see
//! [`crate::throttle`]): each chunk query is paid for before it is sent, each
//! batch's rows and bytes as it is handed out, batches being cut to a tenth
//! of a second's worth of the limits.

use crate::arrow::{ColumnBuilder, arrow_field};
use crate::binary_row::{BinaryCell, BinaryRow, WireLayout};
use crate::conn::{ConnectOptions, RawConn, TextRow};
use crate::error::{Error, Result};
use crate::gtid::{GtidState, MariadbGtidPos};
use crate::replication::Checkpoint;
use crate::schema::{ColumnType, TableSchema, quote_ident, quote_str};
use crate::server::BinlogPosition;
pub use crate::throttle::{Throttle, ThrottleLimits};
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tracing::debug;

/// Captures the binlog position (and GTID state) before any row is read;
/// see the module docs for why this order makes the merge exact.
///
/// # Errors
/// [`Error::Unexpected`] when binary logging is off; query errors.
pub async fn capture_position(conn: &mut RawConn) -> Result<Checkpoint> {
    if conn.hello().is_mariadb {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await?;
        let cp = snapshot_position(conn).await;
        conn.query_drop("COMMIT").await?;
        return cp;
    }
    // MySQL 8.0.13+: performance_schema.log_status blocks commits for an
    // instant and reports the binlog position and gtid_executed consistent
    // with InnoDB (needs BACKUP_ADMIN). Without it, the end of the binlog.
    let status = conn
        .query_strings("SELECT LOCAL FROM performance_schema.log_status")
        .await;
    let consistent = status
        .ok()
        .and_then(|rows| rows.into_iter().next())
        .and_then(|r| r.into_iter().next().flatten())
        .and_then(|j| log_status_checkpoint(&j));
    if let Some(cp) = consistent {
        return Ok(cp);
    }
    let rows = match conn.query_strings("SHOW MASTER STATUS").await {
        Ok(r) => r,
        // MySQL 8.4 renamed it.
        Err(Error::Server { .. }) => conn.query_strings("SHOW BINARY LOG STATUS").await?,
        Err(e) => return Err(e),
    };
    let row = rows.first().ok_or_else(|| {
        Error::Unexpected("SHOW MASTER STATUS is empty: binary logging is off".into())
    })?;
    let file = row.first().cloned().flatten().unwrap_or_default();
    let position = row
        .get(1)
        .cloned()
        .flatten()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4);
    let gtid = match row
        .get(4)
        .cloned()
        .flatten()
        .filter(|g| !g.trim().is_empty())
    {
        Some(g) => GtidState::Mysql(crate::gtid::MysqlGtidSet::parse(&g)?),
        None => GtidState::None,
    };
    Ok(Checkpoint {
        position: BinlogPosition { file, position },
        gtid,
    })
}

/// The binlog position (and GTID state) of the consistent snapshot open on
/// `conn` (MariaDB: `binlog_snapshot_file/position`).
async fn snapshot_position(conn: &mut RawConn) -> Result<Checkpoint> {
    let rows = conn
        .query_strings("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await?;
    let get = |name: &str| {
        rows.iter()
            .find(|r| r.first().cloned().flatten().as_deref() == Some(name))
            .and_then(|r| r.get(1).cloned().flatten())
    };
    let file = get("Binlog_snapshot_file").filter(|f| !f.is_empty());
    let pos = get("Binlog_snapshot_position").and_then(|p| p.parse::<u64>().ok());
    let (Some(file), Some(position)) = (file, pos) else {
        return Err(Error::Unexpected(
            "binlog_snapshot_file is empty: binary logging is off".into(),
        ));
    };
    let q = format!("SELECT BINLOG_GTID_POS({}, {position})", quote_str(&file));
    let gtid = match conn
        .query_strings(&q)
        .await?
        .first()
        .and_then(|r| r.first())
        .cloned()
        .flatten()
    {
        Some(g) => GtidState::Mariadb(MariadbGtidPos::parse(&g)?),
        None => GtidState::None,
    };
    Ok(Checkpoint {
        position: BinlogPosition { file, position },
        gtid,
    })
}

/// Reads `{"gtid_executed": "...", "binary_log_file": "...", "binary_log_position": N}`
/// from `performance_schema.log_status.LOCAL`.
fn log_status_checkpoint(json: &str) -> Option<Checkpoint> {
    fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
        let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
        let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
        match rest.strip_prefix('"') {
            Some(s) => s.find('"').map(|end| &s[..end]),
            None => rest.split([',', '}']).next().map(str::trim),
        }
    }
    let file = field(json, "binary_log_file")?.to_owned();
    let position = field(json, "binary_log_position")?.parse().ok()?;
    if file.is_empty() {
        return None;
    }
    // gtid_executed is printed with "\n" between uuids.
    let gtid_text = field(json, "gtid_executed")
        .unwrap_or("")
        .replace("\\n", "");
    let gtid = if gtid_text.trim().is_empty() {
        GtidState::None
    } else {
        GtidState::Mysql(crate::gtid::MysqlGtidSet::parse(&gtid_text).ok()?)
    };
    Some(Checkpoint {
        position: BinlogPosition { file, position },
        gtid,
    })
}

/// One chunk: key range `(lower, upper]`; `None` bounds are open.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ChunkPlan {
    /// Id, 0-based, stable for the plan.
    pub id: u32,
    /// Exclusive lower bound (SQL literals of the key columns).
    pub lower: Option<Vec<String>>,
    /// Inclusive upper bound.
    pub upper: Option<Vec<String>>,
}

/// How a table is split.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct TablePlan {
    /// The key columns chunks are ranged on (empty: one full scan).
    pub key: Vec<String>,
    /// The chunks in key order.
    pub chunks: Vec<ChunkPlan>,
}

/// Splits a table into chunks of about `chunk_rows` rows. The last chunk
/// is open-ended so rows inserted beyond the current maximum are read too
/// (and the first one open below).
///
/// A single integer key whose values are dense (its `MIN..=MAX` span at
/// most twice the server's row estimate) is cut into spans of `chunk_rows`
/// values: two index dives instead of a scan, and no chunk can hold more
/// than `chunk_rows` rows since keys are unique. Any other key is read once
/// in order, keeping every `chunk_rows`-th value as a boundary.
///
/// # Errors
/// Query errors.
pub async fn plan_table(
    conn: &mut RawConn,
    schema: &TableSchema,
    chunk_rows: u64,
) -> Result<TablePlan> {
    if let Some(plan) = plan_by_span(conn, schema, chunk_rows).await? {
        return Ok(plan);
    }
    plan_by_scan(conn, schema, chunk_rows).await
}

/// The rows per chunk for a table: `max_rows`, or fewer when the server's
/// average row length (`information_schema.TABLES.AVG_ROW_LENGTH`, an
/// estimate that counts page overhead, so on the safe side) says that many
/// rows would pass `max_bytes`. Wide rows thus make short chunks, which
/// bounds the memory a chunk in flight takes. At least 1; `max_rows` when
/// the server has no estimate yet.
///
/// # Errors
/// Query errors.
pub async fn chunk_rows_for(
    conn: &mut RawConn,
    schema: &TableSchema,
    max_rows: u64,
    max_bytes: u64,
) -> Result<u64> {
    let avg = table_statistic(conn, schema, "AVG_ROW_LENGTH").await?;
    let max_rows = max_rows.max(1);
    if avg == 0 {
        return Ok(max_rows);
    }
    Ok((max_bytes / avg).clamp(1, max_rows))
}

/// One of the server's estimates in `information_schema.TABLES`
/// (`TABLE_ROWS`, `AVG_ROW_LENGTH`) for the table; 0 when it has none.
async fn table_statistic(conn: &mut RawConn, schema: &TableSchema, column: &str) -> Result<u64> {
    Ok(conn
        .query_strings(&format!(
            "SELECT {column} FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
            quote_str(&schema.database),
            quote_str(&schema.table)
        ))
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0))
}

/// The span plan of [`plan_table`], or `None` when the key is not a single
/// dense integer column.
async fn plan_by_span(
    conn: &mut RawConn,
    schema: &TableSchema,
    chunk_rows: u64,
) -> Result<Option<TablePlan>> {
    let Some([key]) = schema.row_key() else {
        return Ok(None);
    };
    if !schema
        .column(key)
        .is_some_and(|c| c.column_type.is_integer())
    {
        return Ok(None);
    }
    let chunk_rows = i128::from(chunk_rows.max(1));
    let estimate = i128::from(table_statistic(conn, schema, "TABLE_ROWS").await?);
    // Small tables scan quickly; a stale estimate of 0 lands here too.
    if estimate < chunk_rows {
        return Ok(None);
    }
    let k = quote_ident(key);
    let bounds = conn
        .query_strings(&format!(
            "SELECT MIN({k}), MAX({k}) FROM {}",
            table_ref(schema)
        ))
        .await?;
    let parse = |i: usize| {
        bounds
            .first()
            .and_then(|r| r.get(i).cloned().flatten())
            .and_then(|v| v.parse::<i128>().ok())
    };
    let (Some(min), Some(max)) = (parse(0), parse(1)) else {
        return Ok(None);
    };
    if max - min + 1 > 2 * estimate {
        return Ok(None);
    }
    let mut chunks = Vec::new();
    let mut lower: Option<Vec<String>> = None;
    let mut upper = min - 1 + chunk_rows;
    while upper < max {
        let b = vec![upper.to_string()];
        chunks.push(ChunkPlan {
            id: chunks.len() as u32,
            lower: lower.replace(b.clone()),
            upper: Some(b),
        });
        upper += chunk_rows;
    }
    chunks.push(ChunkPlan {
        id: chunks.len() as u32,
        lower,
        upper: None,
    });
    Ok(Some(TablePlan {
        key: vec![key.clone()],
        chunks,
    }))
}

/// The scan plan of [`plan_table`] (also for tables without a key: one
/// chunk).
async fn plan_by_scan(
    conn: &mut RawConn,
    schema: &TableSchema,
    chunk_rows: u64,
) -> Result<TablePlan> {
    let Some(key) = schema.row_key().map(<[String]>::to_vec) else {
        return Ok(TablePlan {
            key: Vec::new(),
            chunks: vec![ChunkPlan {
                id: 0,
                lower: None,
                upper: None,
            }],
        });
    };
    let chunk_rows = chunk_rows.max(1);
    let cols = key
        .iter()
        .map(|k| quote_ident(k))
        .collect::<Vec<_>>()
        .join(", ");
    let literal_kinds: Vec<bool> = key
        .iter()
        .map(|k| schema.column(k).is_some_and(is_numeric))
        .collect();
    let binary: Vec<bool> = key
        .iter()
        .map(|k| schema.column(k).is_some_and(is_binary))
        .collect();
    // A table of fewer rows is one chunk: the server skips along the index
    // without sending the keys, where the scan below would send them all.
    let probe = format!(
        "SELECT 1 FROM {} ORDER BY {cols} LIMIT 1 OFFSET {}",
        table_ref(schema),
        chunk_rows - 1
    );
    if conn.query_strings(&probe).await?.is_empty() {
        return Ok(TablePlan {
            key,
            chunks: vec![ChunkPlan {
                id: 0,
                lower: None,
                upper: None,
            }],
        });
    }
    let sql = format!("SELECT {cols} FROM {} ORDER BY {cols}", table_ref(schema));
    conn.start_query(&sql).await?;
    let mut bounds: Vec<Vec<String>> = Vec::new();
    let mut n: u64 = 0;
    while let Some(row) = conn.next_row().await? {
        n += 1;
        if n.is_multiple_of(chunk_rows) {
            let mut cells = TextRow::new(&row);
            let mut b = Vec::with_capacity(key.len());
            for i in 0..key.len() {
                let cell = cells.next_cell()?.unwrap_or(b"");
                b.push(sql_literal(cell, literal_kinds[i], binary[i]));
            }
            bounds.push(b);
        }
    }
    let mut chunks = Vec::with_capacity(bounds.len() + 1);
    let mut lower = None;
    for (i, b) in bounds.into_iter().enumerate() {
        chunks.push(ChunkPlan {
            id: i as u32,
            lower: lower.take(),
            upper: Some(b.clone()),
        });
        lower = Some(b);
    }
    chunks.push(ChunkPlan {
        id: chunks.len() as u32,
        lower,
        upper: None,
    });
    Ok(TablePlan { key, chunks })
}

fn is_numeric(c: &crate::schema::ColumnSchema) -> bool {
    c.column_type.is_integer()
        || matches!(c.column_type, ColumnType::Decimal { .. } | ColumnType::Year)
}

fn is_binary(c: &crate::schema::ColumnSchema) -> bool {
    matches!(
        c.column_type,
        ColumnType::Binary { .. } | ColumnType::VarBinary { .. } | ColumnType::Blob { .. }
    ) || c.charset.is_none()
        && !is_numeric(c)
        && !matches!(
            c.column_type,
            ColumnType::Date
                | ColumnType::DateTime { .. }
                | ColumnType::Timestamp { .. }
                | ColumnType::Time { .. }
        )
}

fn sql_literal(cell: &[u8], numeric: bool, binary: bool) -> String {
    if numeric {
        String::from_utf8_lossy(cell).into_owned()
    } else if binary {
        let mut s = String::with_capacity(cell.len() * 2 + 3);
        s.push_str("X'");
        for b in cell {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\'');
        s
    } else {
        quote_str(&String::from_utf8_lossy(cell))
    }
}

fn table_ref(schema: &TableSchema) -> String {
    format!(
        "{}.{}",
        quote_ident(&schema.database),
        quote_ident(&schema.table)
    )
}

/// `key > bound` for a (possibly composite) key, expanded so every server's
/// range optimizer uses the index: `a > x OR (a = x AND b > y)`.
fn key_after(key: &[String], bound: &[String], inclusive: bool) -> String {
    let mut ors = Vec::with_capacity(key.len());
    for i in 0..key.len() {
        let mut ands: Vec<String> = (0..i)
            .map(|j| format!("{} = {}", quote_ident(&key[j]), bound[j]))
            .collect();
        let last = i + 1 == key.len();
        let op = if last && inclusive { ">=" } else { ">" };
        ands.push(format!("{} {op} {}", quote_ident(&key[i]), bound[i]));
        ors.push(format!("({})", ands.join(" AND ")));
    }
    format!("({})", ors.join(" OR "))
}

/// How chunk rows travel from the server (`"binary"` or `"text"` in a
/// task file).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadProtocol {
    /// Prepared statements and binary rows: numbers and temporals in their
    /// native form, cheaper for the server to send and for us to decode.
    #[default]
    Binary,
    /// Plain queries and text rows, for servers or proxies that refuse
    /// prepared statements.
    Text,
}

/// The SELECT of one chunk.
pub fn chunk_sql(
    schema: &TableSchema,
    plan: &TablePlan,
    chunk: &ChunkPlan,
    protocol: ReadProtocol,
) -> String {
    let cols = schema
        .columns
        .iter()
        .map(|c| {
            let q = quote_ident(&c.name);
            // The text protocol prints FLOAT with six significant digits
            // (10044.125 comes out as "10044.1"); as a DOUBLE it prints in
            // full, and float → double is exact, so this loses nothing.
            if c.column_type == ColumnType::Float && protocol == ReadProtocol::Text {
                format!("{q} * 1e0 AS {q}")
            } else {
                q
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut conds = Vec::new();
    if let Some(l) = &chunk.lower {
        conds.push(key_after(&plan.key, l, false));
    }
    if let Some(u) = &chunk.upper {
        conds.push(format!("NOT {}", key_after(&plan.key, u, false)));
    }
    let mut sql = format!("SELECT {cols} FROM {}", table_ref(schema));
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    sql
}

/// Counters of a running snapshot.
#[derive(Debug, Default)]
pub struct Progress {
    rows: AtomicU64,
    bytes: AtomicU64,
    chunks_done: AtomicU64,
    chunks_total: AtomicU64,
}

/// A copy of the counters.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct ProgressReport {
    /// Rows read.
    pub rows: u64,
    /// Row payload bytes read.
    pub bytes: u64,
    /// Chunks finished (including those skipped as already done).
    pub chunks_done: u64,
    /// Chunks in all plans.
    pub chunks_total: u64,
}

impl Progress {
    /// The current counts.
    pub fn report(&self) -> ProgressReport {
        ProgressReport {
            rows: self.rows.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            chunks_done: self.chunks_done.load(Ordering::Relaxed),
            chunks_total: self.chunks_total.load(Ordering::Relaxed),
        }
    }
}

/// A table to read.
#[derive(Clone, Debug)]
pub struct TableJob {
    /// Its schema (all columns are read, invisible and generated ones included).
    pub schema: Arc<TableSchema>,
    /// Its chunks.
    pub plan: Arc<TablePlan>,
    /// Chunk ids already durable from an earlier run: skipped.
    pub done: BTreeSet<u32>,
}

/// What the snapshot hands out.
#[derive(Debug)]
pub enum SnapshotItem {
    /// Rows of a chunk (a chunk gives zero or more batches, then `ChunkDone`).
    Batch {
        /// Index into the jobs.
        table: usize,
        /// Chunk id.
        chunk: u32,
        /// The rows.
        batch: RecordBatch,
    },
    /// All rows of the chunk were handed out.
    ChunkDone {
        /// Index into the jobs.
        table: usize,
        /// Chunk id.
        chunk: u32,
        /// Rows in the chunk.
        rows: u64,
    },
}

/// Options of the parallel read.
#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    /// Connection options for the reader connections.
    pub connect: ConnectOptions,
    /// Reader connections.
    pub parallelism: usize,
    /// Rows per Arrow batch (at most).
    pub batch_rows: usize,
    /// Batches buffered between readers and the consumer (back-pressure).
    pub channel_capacity: usize,
    /// Rate limits.
    pub throttle: ThrottleLimits,
    /// Binary (prepared statements, the default) or text rows.
    pub protocol: ReadProtocol,
}

impl SnapshotOptions {
    /// 4 connections, 8192-row batches, 16 batches buffered, no limits,
    /// binary rows.
    pub fn new(connect: ConnectOptions) -> Self {
        Self {
            connect,
            parallelism: 4,
            batch_rows: 8192,
            channel_capacity: 16,
            throttle: ThrottleLimits::default(),
            protocol: ReadProtocol::Binary,
        }
    }
}

/// A running snapshot: receive items until `None`.
#[derive(Debug)]
pub struct SnapshotRun {
    /// Batches and chunk completions, in no particular order across chunks
    /// (in order within a chunk).
    pub items: mpsc::Receiver<Result<SnapshotItem>>,
    /// Live counters.
    pub progress: Arc<Progress>,
    /// Arrow schema per job.
    pub schemas: Vec<SchemaRef>,
}

/// The Arrow schema the snapshot produces for a table.
pub fn arrow_schema(schema: &TableSchema) -> SchemaRef {
    Arc::new(Schema::new(
        schema.columns.iter().map(arrow_field).collect::<Vec<_>>(),
    ))
}

/// Starts reading `jobs` over `opts.parallelism` connections.
pub fn start(opts: SnapshotOptions, jobs: Vec<TableJob>) -> SnapshotRun {
    let progress = Arc::new(Progress::default());
    let schemas: Vec<SchemaRef> = jobs.iter().map(|j| arrow_schema(&j.schema)).collect();
    let mut queue = VecDeque::new();
    let mut total = 0u64;
    let mut skipped = 0u64;
    for (t, job) in jobs.iter().enumerate() {
        for c in &job.plan.chunks {
            total += 1;
            if job.done.contains(&c.id) {
                skipped += 1;
            } else {
                queue.push_back((t, c.id));
            }
        }
    }
    progress.chunks_total.store(total, Ordering::Relaxed);
    progress.chunks_done.store(skipped, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(opts.channel_capacity.max(1));
    let queue = Arc::new(Mutex::new(queue));
    let jobs = Arc::new(jobs);
    let throttle = Arc::new(Throttle::new(opts.throttle.clone()));
    let opts = Arc::new(opts);
    for _ in 0..opts.parallelism.max(1) {
        let (tx, queue, jobs, throttle, opts, progress, schemas) = (
            tx.clone(),
            queue.clone(),
            jobs.clone(),
            throttle.clone(),
            opts.clone(),
            progress.clone(),
            schemas.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = worker(&opts, &jobs, &schemas, &queue, &throttle, &progress, &tx).await
            {
                let _ = tx.send(Err(e)).await;
            }
        });
    }
    SnapshotRun {
        items: rx,
        progress,
        schemas,
    }
}

type Queue = Mutex<VecDeque<(usize, u32)>>;

async fn worker(
    opts: &SnapshotOptions,
    jobs: &[TableJob],
    schemas: &[SchemaRef],
    queue: &Queue,
    throttle: &Throttle,
    progress: &Progress,
    tx: &mpsc::Sender<Result<SnapshotItem>>,
) -> Result<()> {
    let next = || {
        queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    };
    let Some(mut item) = next() else {
        return Ok(());
    };
    let mut conn = RawConn::connect(&opts.connect).await?;
    prepare_session(&mut conn).await?;
    loop {
        let (t, chunk_id) = item;
        let job = &jobs[t];
        let chunk = job
            .plan
            .chunks
            .iter()
            .find(|c| c.id == chunk_id)
            .ok_or_else(|| Error::Unexpected(format!("chunk {chunk_id} not in plan")))?;
        throttle.take(1.0, 0.0, 0.0).await;
        let rows = read_chunk(
            &mut conn,
            job,
            &schemas[t],
            chunk,
            opts.batch_rows,
            opts.protocol,
            throttle,
            progress,
            |batch| {
                tx.send(Ok(SnapshotItem::Batch {
                    table: t,
                    chunk: chunk_id,
                    batch,
                }))
            },
        )
        .await?;
        progress.chunks_done.fetch_add(1, Ordering::Relaxed);
        if tx
            .send(Ok(SnapshotItem::ChunkDone {
                table: t,
                chunk: chunk_id,
                rows,
            }))
            .await
            .is_err()
        {
            break;
        }
        match next() {
            Some(i) => item = i,
            None => break,
        }
    }
    conn.close().await
}

/// Reads every row of `schema`'s table in one consistent snapshot and
/// returns the binlog position of that snapshot with the rows.
///
/// For a table without a key the merge cannot tell a row read after a change
/// from the change itself (identical rows are distinct copies), so its
/// baseline must be exactly the table at a position from which the binlog
/// is then applied: this read gives both. MariaDB only (its snapshot reports
/// `binlog_snapshot_file/position`); on MySQL there is no such pairing
/// without a global read lock.
///
/// # Errors
/// [`Error::Snapshot`] on MySQL; query and decode errors.
pub async fn read_consistent(
    conn: &mut RawConn,
    schema: Arc<TableSchema>,
    batch_rows: usize,
    protocol: ReadProtocol,
) -> Result<(Checkpoint, Vec<RecordBatch>)> {
    if !conn.hello().is_mariadb {
        return Err(Error::Snapshot {
            table: format!("{}.{}", schema.database, schema.table),
            message: "reading a table without a key at an exact binlog position needs MariaDB's \
                      consistent snapshot position; add a primary key, or sync the table with a \
                      new task"
                .into(),
        });
    }
    prepare_session(conn).await?;
    let job = TableJob {
        plan: Arc::new(TablePlan {
            key: Vec::new(),
            chunks: vec![ChunkPlan {
                id: 0,
                lower: None,
                upper: None,
            }],
        }),
        schema,
        done: BTreeSet::new(),
    };
    let arrow = arrow_schema(&job.schema);
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await?;
    let read = async {
        let cp = snapshot_position(conn).await?;
        let mut batches = Vec::new();
        read_chunk(
            conn,
            &job,
            &arrow,
            &job.plan.chunks[0],
            batch_rows,
            protocol,
            &Throttle::new(ThrottleLimits::default()),
            &Progress::default(),
            |b| {
                batches.push(b);
                std::future::ready(Ok::<(), ()>(()))
            },
        )
        .await?;
        Ok::<_, Error>((cp, batches))
    }
    .await;
    conn.query_drop("COMMIT").await?;
    read
}

/// Session settings every reader uses: UTC for TIMESTAMP text, utf8mb4
/// results, backslash escapes on (for the key literals).
pub async fn prepare_session(conn: &mut RawConn) -> Result<()> {
    conn.query_drop("SET NAMES utf8mb4").await?;
    conn.query_drop("SET SESSION time_zone = '+00:00'").await?;
    conn.query_drop("SET SESSION sql_mode = ''").await?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
}

/// Reads one chunk into batches of at most `batch_rows` rows, handing each
/// to `emit`; returns the row count.
///
/// # Errors
/// Query errors, [`Error::Decode`] for a value that does not fit its column.
#[allow(clippy::too_many_arguments)]
pub async fn read_chunk<F, Fut, E>(
    conn: &mut RawConn,
    job: &TableJob,
    schema: &SchemaRef,
    chunk: &ChunkPlan,
    batch_rows: usize,
    protocol: ReadProtocol,
    throttle: &Throttle,
    progress: &Progress,
    mut emit: F,
) -> Result<u64>
where
    F: FnMut(RecordBatch) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), E>>,
{
    let sql = chunk_sql(&job.schema, &job.plan, chunk, protocol);
    debug!(%sql, "snapshot chunk");
    // Under a rows or bytes limit a batch is paid for before the next is
    // read, so it is kept to a tenth of a second's worth.
    let batch_rows = throttle.batch_rows(batch_rows);
    let columns = &job.schema.columns;
    let mut builders = columns
        .iter()
        .map(|c| ColumnBuilder::for_column(c, batch_rows))
        .collect::<Result<Vec<_>>>()?;
    // Row values stay out of errors (they end up in logs): the column, its
    // type and the shape of what the server sent.
    let decode_error = |i: usize, message: &str, sent: String| Error::Decode {
        column: columns.get(i).map(|c| c.name.clone()).unwrap_or_default(),
        message: format!(
            "{message} (a {} column; the server sent {sent})",
            columns
                .get(i)
                .map(|c| c.column_type_text.as_str())
                .unwrap_or("?")
        ),
    };
    // The binary protocol's wire layouts, one per column; `None` for text.
    let (statement, layouts) = match protocol {
        ReadProtocol::Text => {
            conn.start_query(&sql).await?;
            (None, Vec::new())
        }
        ReadProtocol::Binary => {
            let stmt = conn
                .prepare(&sql)
                .await
                .map_err(|e| prepare_refused(&job.schema, e))?;
            let wire = conn.execute(stmt).await?;
            if wire.len() != columns.len() {
                return Err(Error::Unexpected(format!(
                    "the chunk query returned {} columns for {} in the schema",
                    wire.len(),
                    columns.len()
                )));
            }
            (Some(stmt), wire.iter().map(WireLayout::of).collect())
        }
    };
    let (mut in_batch, mut total, mut bytes) = (0usize, 0u64, 0u64);
    while let Some(row) = conn.next_row().await? {
        if statement.is_some() {
            let mut cells = BinaryRow::new(&row, layouts.len())?;
            for (i, (b, layout)) in builders.iter_mut().zip(&layouts).enumerate() {
                let cell = cells.next_cell(*layout)?;
                b.append_binary(cell)
                    .map_err(|m| decode_error(i, m, binary_cell_shape(cell)))?;
            }
        } else {
            let mut cells = TextRow::new(&row);
            for (i, b) in builders.iter_mut().enumerate() {
                let cell = cells.next_cell()?;
                b.append(cell).map_err(|m| {
                    decode_error(
                        i,
                        m,
                        cell.map_or_else(|| "NULL".into(), |c| format!("{} bytes", c.len())),
                    )
                })?;
            }
        }
        in_batch += 1;
        bytes += row.len() as u64;
        if in_batch == batch_rows || throttle.bytes_due(bytes) {
            flush(
                &mut builders,
                schema,
                &mut in_batch,
                &mut total,
                &mut bytes,
                throttle,
                progress,
                &mut emit,
            )
            .await?;
        }
    }
    if let Some(stmt) = statement {
        conn.close_statement(stmt).await?;
    }
    flush(
        &mut builders,
        schema,
        &mut in_batch,
        &mut total,
        &mut bytes,
        throttle,
        progress,
        &mut emit,
    )
    .await?;
    Ok(total)
}

/// What a binary cell was, without its value (for error messages).
fn binary_cell_shape(cell: Option<BinaryCell<'_>>) -> String {
    match cell {
        None => "NULL".into(),
        Some(BinaryCell::Int(_) | BinaryCell::UInt(_)) => "an integer".into(),
        Some(BinaryCell::Float(_)) => "a FLOAT".into(),
        Some(BinaryCell::Double(_)) => "a DOUBLE".into(),
        Some(BinaryCell::DateTime(_)) => "a date/time".into(),
        Some(BinaryCell::Time(_)) => "a TIME".into(),
        Some(BinaryCell::Bytes(b)) => format!("{} bytes", b.len()),
    }
}

/// A chunk query the server would not prepare: with prepared statements
/// disabled or unsupported (a proxy), say how to read without them.
fn prepare_refused(schema: &TableSchema, e: Error) -> Error {
    match e {
        Error::Server { code, message, .. } if matches!(code, 1295 | 1461 | 1047) => {
            Error::Snapshot {
                table: format!("{}.{}", schema.database, schema.table),
                message: format!(
                    "the server refuses prepared statements (error {code}: {message}); \
                     read with the text protocol instead (`[sync] read_protocol = \"text\"` \
                     in a sync-cli task file)"
                ),
            }
        }
        other => other,
    }
}

#[allow(clippy::too_many_arguments)]
async fn flush<F, Fut, E>(
    builders: &mut [ColumnBuilder],
    schema: &SchemaRef,
    in_batch: &mut usize,
    total: &mut u64,
    bytes: &mut u64,
    throttle: &Throttle,
    progress: &Progress,
    emit: &mut F,
) -> Result<()>
where
    F: FnMut(RecordBatch) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), E>>,
{
    if *in_batch == 0 {
        return Ok(());
    }
    let rows = *in_batch;
    let arrays = builders
        .iter_mut()
        .zip(schema.fields())
        .map(|(b, f)| {
            b.finish(rows).map_err(|message| Error::Decode {
                column: f.name().clone(),
                message,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    progress.rows.fetch_add(*in_batch as u64, Ordering::Relaxed);
    progress.bytes.fetch_add(*bytes, Ordering::Relaxed);
    throttle.take(0.0, *in_batch as f64, *bytes as f64).await;
    *total += *in_batch as u64;
    *in_batch = 0;
    *bytes = 0;
    emit(batch)
        .await
        .map_err(|_| Error::Unexpected("the snapshot consumer went away".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_log_status_json() {
        let j = r#"{"gtid_executed": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n55778904-0299-11f1-b1b8-4ef0c4956feb:1-3", "binary_log_file": "binlog.000007", "binary_log_position": 1234}"#;
        let cp = log_status_checkpoint(j).expect("parse");
        assert_eq!(
            cp.position,
            BinlogPosition {
                file: "binlog.000007".into(),
                position: 1234
            }
        );
        assert_eq!(
            cp.gtid.to_string(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,55778904-0299-11f1-b1b8-4ef0c4956feb:1-3"
        );
        assert!(log_status_checkpoint("{}").is_none());
    }

    #[test]
    fn composite_key_predicate() {
        let key = vec!["a".to_owned(), "b".to_owned()];
        let p = key_after(&key, &["1".to_owned(), "'x'".to_owned()], false);
        assert_eq!(p, "((`a` > 1) OR (`a` = 1 AND `b` > 'x'))");
    }
}
