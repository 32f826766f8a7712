//! MaxCompute through `odps-tunnel`: DDL by SQL instances, rows by Tunnel
//! upload sessions with the Arrow block writer, reads by download sessions.
//!
//! # One unit, many sessions, one ledger
//!
//! An upload session belongs to one table partition, so a commit unit (a
//! snapshot chunk, or a binlog range spanning tables and time partitions)
//! takes one session per `(table, partition)` part. MaxCompute commits each
//! session atomically, but not several together, so the sink keeps a small
//! **unit ledger**: one JSON file per unit in a directory beside the
//! checkpoint, replaced atomically (temp file, fsync, rename). A part moves
//! through three states, each saved before the next step:
//!
//! 1. `open`: the session exists; blocks may be uploading. Nothing asked the
//!    server to commit it, so its rows can never become visible.
//! 2. `committing`: every block is uploaded; the ledger names them. Only now
//!    is the commit sent.
//! 3. `committed`: the server reported the session closed.
//!
//! The unit is complete when every part is committed. A redo of the unit
//! (after a crash or an error) reconciles first: an `open` part is abandoned
//! (its session expires unseen) and uploaded again in a new session; a
//! `committing` part is asked about: closed means committed, still open means
//! the commit is sent again (a commit that did land is never repeated, a
//! closed session is recognised first); a `committed` part is skipped. No
//! row is ever in two committed sessions, so `t_log` never doubles a record.
//! [`Sink::is_committed`] answers from the ledger, asking the server only
//! about `committing` parts.
//!
//! # Formats
//!
//! A part goes up as Arrow blocks, unless one of its `timestamp` or
//! `timestamp_ntz` values lies beyond the Arrow tunnel's 64-bit nanoseconds
//! (before 1677-09-21 or after 2262-04-11, e.g. a DATETIME(6) of
//! `9999-12-31 23:59:59.999999`): then the whole part goes as protobuf
//! record blocks, which carry seconds and nanoseconds over MaxCompute's
//! whole range. Reads of tables with such columns use the record format
//! for the same reason.
//!
//! Sessions live 24 hours on MaxCompute. A `committing` part whose session
//! the server no longer knows cannot be told apart from one that landed; the
//! sink then stops with an error naming the table and partition instead of
//! guessing.
//!
//! # Owners
//!
//! A table's owners ([`Sink::claim_table`]) live at the end of its comment,
//! `[sync owners: 0=t18c… 1=t18d…]` (tag `=` task id), after whatever
//! comment the table had, which stays. A claim rewrites the comment with
//! `ALTER TABLE … SET COMMENT` and reads it back: of two tasks claiming one
//! tag at the same moment, the one whose id is read back wins and the other
//! stops.

use super::{Owners, Sink, TableBatch, TableDef};
use crate::checkpoint::{sync_dir, write_durably};
use crate::error::{Error, Result};
use crate::mapping;
use crate::timezone::Zone;
use arrow_array::RecordBatch;
use arrow_schema::{Field, SchemaRef};
use odps_tunnel::Client;
use odps_tunnel::session::{BlockId, PartitionSpec, SessionStatus};
use odps_tunnel::upsert::{DeltaTable, UpsertOptions};
use odps_tunnel::writer::{BlockFormat, UploadOptions, UploadSession, WriterOptions};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing::{debug, info};

/// Rows per download request when reading a table back.
const READ_ROWS: u64 = 100_000;
/// Where a table comment's owner list starts; it ends at the next `]`.
const OWNERS_OPEN: &str = "[sync owners:";

/// A MaxCompute project as the destination.
#[derive(Clone, Debug)]
pub struct MaxComputeSink {
    client: Client,
    ledger_dir: PathBuf,
    writer: WriterOptions,
    keys: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// `[destination] timezone`, else the project's (asked once).
    timezone: Option<Zone>,
    zone: Arc<tokio::sync::OnceCell<Zone>>,
    type_system: mapping::TypeSystem,
}

/// Where a part is in the commit protocol (see the module docs).
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
enum PartState {
    Open,
    Committing,
    Committed,
}

/// One `(table, partition)` of a unit and its upload session.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct Part {
    table: String,
    /// `k=v,k=v`, empty for an unpartitioned table.
    partition: String,
    session: String,
    state: PartState,
    #[serde(default)]
    blocks: Vec<u32>,
}

/// The ledger of one unit.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct Ledger {
    unit: String,
    complete: bool,
    parts: Vec<Part>,
}

impl MaxComputeSink {
    /// A refused upload into a table that is not there says so, with its
    /// fix ([`Error::DestinationTableMissing`]); other errors pass as they are.
    fn missing_table(&self, table: &str, e: odps_tunnel::Error) -> Error {
        match e.server() {
            Some(s) if s.code == "NoSuchTable" || s.code == "NoSuchObject" => {
                Error::DestinationTableMissing {
                    table: table.to_owned(),
                    destination: format!("MaxCompute project {}", self.client.project()),
                }
            }
            _ => Error::from(e),
        }
    }

    /// A sink writing through `client`, keeping its unit ledger in
    /// `ledger_dir` (created on first use; keep it with the checkpoint).
    pub fn new(client: Client, ledger_dir: impl Into<PathBuf>) -> Self {
        Self {
            client,
            ledger_dir: ledger_dir.into(),
            writer: WriterOptions {
                block_bytes: 16 * 1024 * 1024,
                max_in_flight: 2,
                ..WriterOptions::default()
            },
            keys: Arc::default(),
            timezone: None,
            zone: Arc::default(),
            type_system: mapping::TypeSystem::default(),
        }
    }

    /// Creates tables (and added columns) in this type system's types
    /// ([`mapping::odps_type_in`]); reads and writes follow each table's
    /// own types whatever this says.
    pub fn with_type_system(mut self, system: mapping::TypeSystem) -> Self {
        self.type_system = system;
        self
    }

    /// Reads and writes DATETIME values as wall clocks of `zone` instead of
    /// the project's own zone ([`crate::timezone`]).
    pub fn with_timezone(mut self, zone: Option<Zone>) -> Self {
        self.timezone = zone;
        self.zone = Arc::default();
        self
    }

    /// The zone DATETIME values are wall clocks of: `[destination]
    /// timezone`, else the project's `odps.sql.timezone`, else the
    /// service's default (Asia/Shanghai).
    ///
    /// # Errors
    /// When the project cannot be asked, or names a zone this build does
    /// not know (then set `[destination] timezone`).
    pub async fn timezone(&self) -> Result<Zone> {
        if let Some(z) = &self.timezone {
            return Ok(z.clone());
        }
        self.zone
            .get_or_try_init(|| async {
                let props = self.client.project_properties().await?;
                let name = props
                    .iter()
                    .find(|(k, _)| k == "odps.sql.timezone")
                    .map(|(_, v)| v.as_str())
                    .filter(|v| !v.is_empty())
                    .unwrap_or(crate::timezone::SERVICE_DEFAULT);
                Zone::parse(name).map_err(|e| {
                    Error::Config(format!(
                        "project {}'s odps.sql.timezone: {e}; set [destination] timezone",
                        self.client.project()
                    ))
                })
            })
            .await
            .cloned()
    }

    /// Creates the primary-key Delta table `name` ([`crate::mirror`]) with
    /// `schema`'s columns (in this sink's type system) and `key` as its
    /// primary key, unless it exists; an existing table must have every
    /// column.
    ///
    /// # Errors
    /// [`Error::Mapping`] for a column without a MaxCompute type or an
    /// existing table that lacks a column; service errors.
    pub async fn ensure_mirror_table(
        &self,
        name: &str,
        schema: &SchemaRef,
        key: &[&str],
    ) -> Result<()> {
        if !self.client.table_exists(name).await? {
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    Ok(odps_tunnel::types::Column::new(
                        f.name(),
                        mapping::odps_type_in(f, self.type_system)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            info!(table = name, "creating the MaxCompute mirror table");
            self.client
                .create_delta_table(&DeltaTable::new(name, &columns, key))
                .await?;
        }
        let info = self.client.table(name).await?;
        for f in schema.fields() {
            if !info
                .schema
                .columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(f.name()))
            {
                return Err(Error::Mapping(format!(
                    "MaxCompute mirror table {name} exists without column `{}`",
                    f.name()
                )));
            }
        }
        Ok(())
    }

    /// Writes one upsert session into the Delta table `table`: `deletes`
    /// (whole rows or key columns) and `upserts` (whole rows), under the
    /// task's column names and Arrow types, then commits it. Each key must
    /// appear once across both; nothing shows before the commit.
    ///
    /// # Errors
    /// [`Error::DestinationTableMissing`], [`Error::Mapping`] for rows that
    /// do not fit the table, and service errors (the session is abandoned
    /// unseen).
    pub async fn apply_mirror(
        &self,
        table: &str,
        upserts: &[RecordBatch],
        deletes: &[RecordBatch],
    ) -> Result<()> {
        let zone = self.timezone().await?;
        let mut session = self
            .client
            .create_upsert_session(table, None, UpsertOptions::default())
            .await
            .map_err(|e| self.missing_table(table, e))?;
        let columns = session.columns().to_vec();
        let convert = |b: &RecordBatch| {
            mapping::batch_to_odps(b, &columns, &zone)
                .map_err(|e| Error::Mapping(format!("mirror table {table}: {e}")))
        };
        for b in deletes {
            let odps = convert(b)?;
            session.delete(&odps).await?;
        }
        for b in upserts {
            let odps = convert(b)?;
            session.upsert(&odps).await?;
        }
        session.commit().await?;
        Ok(())
    }

    /// The MaxCompute client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The ledger directory.
    pub fn ledger_dir(&self) -> &Path {
        &self.ledger_dir
    }

    fn ledger_path(&self, unit: &str) -> PathBuf {
        // One-to-one: two units never share a ledger.
        let safe = crate::private_fs::file_component(unit);
        self.ledger_dir.join(format!("{safe}.json"))
    }

    /// Where builds before the one-to-one file names kept the ledger of a
    /// unit whose name holds characters other than `[A-Za-z0-9_.-]`.
    fn legacy_ledger_path(&self, unit: &str) -> PathBuf {
        let lossy: String = unit
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.ledger_dir.join(format!("{lossy}.json"))
    }

    fn load(&self, unit: &str) -> Result<Option<Ledger>> {
        let mut path = self.ledger_path(unit);
        let legacy = self.legacy_ledger_path(unit);
        if !path.exists() && legacy.exists() {
            // A unit in flight across an upgrade; the unit check below
            // still rejects a ledger of another unit that shared the name.
            path = legacy;
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let ledger: Ledger =
                    serde_json::from_slice(&bytes).map_err(|e| Error::CorruptCheckpoint {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if ledger.unit != unit {
                    return Err(Error::CorruptCheckpoint {
                        path,
                        reason: format!("ledger of unit {:?}, expected {unit:?}", ledger.unit),
                    });
                }
                Ok(Some(ledger))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading unit ledger", path, e)),
        }
    }

    fn save(&self, ledger: &Ledger) -> Result<()> {
        crate::private_fs::create_dir_all(&self.ledger_dir)?;
        let bytes = serde_json::to_vec(ledger).map_err(Error::serialize(format!(
            "the ledger of unit {}",
            ledger.unit
        )))?;
        // A temp file and a rename: a kill while writing leaves the old
        // ledger whole, never an empty one (each unit has its own temp name).
        let path = self.ledger_path(&ledger.unit);
        let tmp = path.with_extension("json.tmp");
        write_durably(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("renaming into place", &path, e))?;
        sync_dir(&self.ledger_dir)
    }

    /// Finishes a `committing` part: true once its session is closed.
    async fn settle(&self, part: &Part, commit: bool) -> Result<bool> {
        let spec = spec_of(&part.partition)?;
        let session = match self
            .client
            .resume_upload_session(&part.table, spec.as_ref(), &part.session)
            .await
        {
            Ok(s) => s,
            Err(e) if e.is_not_found() => {
                return Err(Error::Destination(format!(
                    "upload session {} of table {} partition {:?} was being committed and the \
                     server no longer knows it (sessions live 24 hours): cannot tell whether its \
                     rows landed; check that partition, then remove {} to redo it",
                    part.session,
                    part.table,
                    part.partition,
                    self.ledger_dir.display()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        match &session.info().status {
            SessionStatus::Closed => return Ok(true),
            SessionStatus::Normal | SessionStatus::Closing if commit => {}
            SessionStatus::Normal | SessionStatus::Closing => return Ok(false),
            other => {
                return Err(Error::Destination(format!(
                    "upload session {} of table {} partition {:?} is {}: cannot tell whether \
                     its rows landed",
                    part.session,
                    part.table,
                    part.partition,
                    other.as_str()
                )));
            }
        }
        let blocks = block_ids(&part.blocks)?;
        session.commit(&blocks).await?;
        Ok(true)
    }

    /// Uploads one part's rows into its session; returns the block ids.
    async fn upload(
        &self,
        table: &str,
        session: &UploadSession,
        batches: &[RecordBatch],
    ) -> Result<Vec<u32>> {
        let columns = session.columns().to_vec();
        // The task's batches hold timestamps in microseconds under the
        // destination names: the check needs no conversion.
        let format = BlockFormat::for_batches(&columns, batches);
        if format == BlockFormat::Protobuf {
            info!(
                table,
                "timestamps beyond the Arrow tunnel's 64-bit nanoseconds: this part goes up in the \
                 protobuf record format"
            );
        }
        let zone = self.timezone().await?;
        let mut writer = session.block_writer(self.writer.clone(), format);
        for b in batches {
            let odps = mapping::batch_to_odps(b, &columns, &zone)
                .map_err(|e| Error::Mapping(format!("table {table}: {e}")))?;
            writer.write(&odps).await?;
        }
        Ok(writer
            .finish()
            .await?
            .iter()
            .map(|r| r.block_id.get())
            .collect())
    }

    /// The partition column names of a table (asked once per table).
    async fn partition_keys(&self, table: &str) -> Result<Vec<String>> {
        if let Some(keys) = self.keys.lock().ok().and_then(|k| k.get(table).cloned()) {
            return Ok(keys);
        }
        let keys: Vec<String> = self
            .client
            .table(table)
            .await?
            .schema
            .partition_keys
            .iter()
            .map(|k| k.name.clone())
            .collect();
        if let Ok(mut cache) = self.keys.lock() {
            cache.insert(table.to_owned(), keys.clone());
        }
        Ok(keys)
    }
}

fn spec_of(text: &str) -> Result<Option<PartitionSpec>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|e: odps_tunnel::session::PartitionSpecError| {
            Error::unreadable(format!("partition {text:?} of a commit ledger"), e)
        })
}

fn block_ids(ids: &[u32]) -> Result<Vec<BlockId>> {
    ids.iter()
        .map(|&b| {
            BlockId::new(b).ok_or_else(|| {
                Error::unreadable(
                    "a block id of a commit ledger",
                    format!("{b} is out of range"),
                )
            })
        })
        .collect()
}

use crate::odps_sql::ident;

/// The comment text before the owner list, and the owners in it.
fn parse_owners(comment: &str) -> (&str, Owners) {
    let Some(start) = comment.rfind(OWNERS_OPEN) else {
        return (comment, Owners::new());
    };
    let rest = &comment[start + OWNERS_OPEN.len()..];
    let list = rest.split(']').next().unwrap_or_default();
    let owners = list
        .split_whitespace()
        .filter_map(|pair| {
            let (tag, task) = pair.split_once('=')?;
            Some((tag.parse().ok()?, task.to_owned()))
        })
        .collect();
    (comment[..start].trim_end(), owners)
}

/// `user` (the comment without owners) followed by the owner list.
fn render_owners(user: &str, owners: &Owners) -> String {
    let list: Vec<String> = owners.iter().map(|(t, id)| format!("{t}={id}")).collect();
    let marker = format!("{OWNERS_OPEN} {}]", list.join(" "));
    if user.is_empty() {
        marker
    } else {
        format!("{user} {marker}")
    }
}

/// A table's comment, as the schema JSON of its metadata holds it.
fn table_comment(info: &odps_tunnel::rest::TableInfo) -> String {
    info.schema
        .extra
        .get("comment")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The `CREATE TABLE IF NOT EXISTS` statement of a destination table.
///
/// # Errors
/// [`Error::Mapping`] for a column without a MaxCompute type or a name
/// MaxCompute cannot take.
pub fn create_table_sql(def: &TableDef, system: mapping::TypeSystem) -> Result<String> {
    let mut columns = Vec::with_capacity(def.schema.fields().len());
    for f in def.schema.fields() {
        columns.push(format!(
            "{} {}",
            ident(f.name())?,
            mapping::odps_type_in(f, system)?
        ));
    }
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        ident(&def.name)?,
        columns.join(", ")
    );
    if !def.partition_columns.is_empty() {
        let keys = def
            .partition_columns
            .iter()
            .map(|p| Ok(format!("{} STRING", ident(p)?)))
            .collect::<Result<Vec<_>>>()?;
        sql.push_str(&format!(" PARTITIONED BY ({})", keys.join(", ")));
    }
    Ok(sql)
}

#[async_trait::async_trait]
impl Sink for MaxComputeSink {
    fn column_problem(&self, field: &arrow_schema::Field) -> Option<String> {
        mapping::odps_type(field).err().map(|e| e.to_string())
    }

    fn max_field_bytes(&self) -> Option<usize> {
        // What every upload session reports as `MaxFieldSize`.
        Some(odps_tunnel::types::DEFAULT_MAX_FIELD_SIZE)
    }

    async fn table_exists(&self, name: &str) -> Result<bool> {
        Ok(self.client.table_exists(name).await?)
    }

    fn as_maxcompute(&self) -> Option<&MaxComputeSink> {
        Some(self)
    }

    async fn ensure_table(&self, def: &TableDef) -> Result<()> {
        if !self.client.table_exists(&def.name).await? {
            let sql = create_table_sql(def, self.type_system)?;
            info!(table = %def.name, "creating the MaxCompute table");
            debug!(%sql);
            self.client.run_sql(&sql).await?;
        }
        // An existing table must take every column and the same partitions.
        let info = self.client.table(&def.name).await?;
        for f in def.schema.fields() {
            if !info
                .schema
                .columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(f.name()))
            {
                return Err(Error::Mapping(format!(
                    "MaxCompute table {} exists without column `{}`",
                    def.name,
                    f.name()
                )));
            }
        }
        let keys: Vec<String> = info
            .schema
            .partition_keys
            .iter()
            .map(|k| k.name.to_ascii_lowercase())
            .collect();
        let wanted: Vec<String> = def
            .partition_columns
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        if keys != wanted {
            return Err(Error::Mapping(format!(
                "MaxCompute table {} is partitioned by ({}), the task needs ({})",
                def.name,
                keys.join(", "),
                wanted.join(", ")
            )));
        }
        Ok(())
    }

    async fn table_differences(&self, def: &TableDef) -> Result<Vec<String>> {
        if !self.client.table_exists(&def.name).await? {
            return Ok(Vec::new());
        }
        let info = self.client.table(&def.name).await?;
        let have: Vec<(String, String)> = info
            .schema
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.to_string()))
            .collect();
        let want = def
            .schema
            .fields()
            .iter()
            .map(|f| {
                Ok((
                    f.name().clone(),
                    mapping::odps_type_in(f, self.type_system)?.to_string(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let partitions: Vec<String> = info
            .schema
            .partition_keys
            .iter()
            .map(|k| k.name.clone())
            .collect();
        Ok(super::differences(
            &have,
            &want,
            &partitions,
            &def.partition_columns,
        ))
    }

    async fn commit_unit(&self, unit: &str, data: Vec<TableBatch>) -> Result<()> {
        let mut ledger = self.load(unit)?.unwrap_or_else(|| Ledger {
            unit: unit.to_owned(),
            ..Ledger::default()
        });
        if ledger.complete {
            debug!(unit, "unit already committed");
            return Ok(());
        }
        // Reconcile what an earlier attempt left: finish its commits, drop
        // sessions that never reached the commit.
        let before = ledger.parts.len();
        let mut kept = Vec::with_capacity(before);
        for mut part in std::mem::take(&mut ledger.parts) {
            match part.state {
                PartState::Committed => kept.push(part),
                PartState::Committing => {
                    self.settle(&part, true).await?;
                    info!(unit, table = %part.table, partition = %part.partition, "finished an interrupted commit");
                    part.state = PartState::Committed;
                    kept.push(part);
                }
                PartState::Open => {
                    info!(unit, table = %part.table, session = %part.session, "abandoning an upload that never reached its commit");
                }
            }
        }
        ledger.parts = kept;
        if ledger.parts.len() != before {
            self.save(&ledger)?;
        }

        // The parts still to upload, in first-seen order.
        let mut todo: Vec<(String, String, Vec<RecordBatch>)> = Vec::new();
        for tb in data.into_iter().filter(|tb| tb.batch.num_rows() > 0) {
            let spec = if tb.partition.is_empty() {
                String::new()
            } else {
                let keys = self.partition_keys(&tb.table).await?;
                if keys.len() != tb.partition.len() {
                    return Err(Error::Mapping(format!(
                        "table {} has {} partition columns, the batch names {} values",
                        tb.table,
                        keys.len(),
                        tb.partition.len()
                    )));
                }
                PartitionSpec::new(keys.into_iter().zip(tb.partition)).to_string()
            };
            if ledger
                .parts
                .iter()
                .any(|p| p.table == tb.table && p.partition == spec)
            {
                continue;
            }
            match todo
                .iter_mut()
                .find(|(t, p, _)| *t == tb.table && *p == spec)
            {
                Some((_, _, batches)) => batches.push(tb.batch),
                None => todo.push((tb.table, spec, vec![tb.batch])),
            }
        }

        if !todo.is_empty() {
            let first = ledger.parts.len();
            let mut sessions = Vec::with_capacity(todo.len());
            for (table, spec, _) in &todo {
                let session = self
                    .client
                    .create_upload_session(
                        table,
                        spec_of(spec)?.as_ref(),
                        &UploadOptions {
                            create_partition: true,
                            ..UploadOptions::default()
                        },
                    )
                    .await
                    .map_err(|e| self.missing_table(table, e))?;
                ledger.parts.push(Part {
                    table: table.clone(),
                    partition: spec.clone(),
                    session: session.id().to_owned(),
                    state: PartState::Open,
                    blocks: Vec::new(),
                });
                sessions.push(session);
            }
            self.save(&ledger)?;
            for (i, ((table, _, batches), session)) in todo.iter().zip(&sessions).enumerate() {
                let blocks = self.upload(table, session, batches).await?;
                let part = &mut ledger.parts[first + i];
                part.blocks = blocks;
                part.state = PartState::Committing;
            }
            // Only from here may the server be asked to commit.
            self.save(&ledger)?;
            for (i, session) in sessions.into_iter().enumerate() {
                let part = &mut ledger.parts[first + i];
                session.commit(&block_ids(&part.blocks)?).await?;
                part.state = PartState::Committed;
            }
        }
        ledger.complete = true;
        self.save(&ledger)?;
        Ok(())
    }

    async fn is_committed(&self, unit: &str) -> Result<bool> {
        let Some(mut ledger) = self.load(unit)? else {
            return Ok(false);
        };
        if ledger.complete {
            return Ok(true);
        }
        if ledger.parts.is_empty() {
            return Ok(false);
        }
        for i in 0..ledger.parts.len() {
            match ledger.parts[i].state {
                PartState::Committed => {}
                PartState::Open => return Ok(false),
                PartState::Committing => {
                    if !self.settle(&ledger.parts[i], false).await? {
                        return Ok(false);
                    }
                    ledger.parts[i].state = PartState::Committed;
                }
            }
        }
        ledger.complete = true;
        self.save(&ledger)?;
        Ok(true)
    }

    async fn add_columns(&self, table: &str, columns: &[Field]) -> Result<()> {
        let info = self.client.table(table).await?;
        let mut missing = Vec::new();
        for f in columns {
            if !info
                .schema
                .columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(f.name()))
            {
                missing.push(format!(
                    "{} {}",
                    ident(f.name())?,
                    mapping::odps_type_in(f, self.type_system)?
                ));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "ALTER TABLE {} ADD COLUMNS ({})",
            ident(table)?,
            missing.join(", ")
        );
        info!(table, columns = %missing.join(", "), "adding columns to the MaxCompute table");
        self.client.run_sql(&sql).await?;
        Ok(())
    }

    async fn table_owners(&self, table: &str) -> Result<Owners> {
        let info = self.client.table(table).await?;
        Ok(parse_owners(&table_comment(&info)).1)
    }

    async fn claim_table(&self, table: &str, tag: u8, task: &str) -> Result<()> {
        let comment = table_comment(&self.client.table(table).await?);
        let (user, mut owners) = parse_owners(&comment);
        if super::check_owner(&owners, table, tag, task)? {
            return Ok(());
        }
        owners.insert(tag, task.to_owned());
        let sql = format!(
            "ALTER TABLE {} SET COMMENT {}",
            ident(table)?,
            crate::odps_sql::literal(&render_owners(user, &owners))
        );
        info!(
            table,
            tag, task, "recording this task as the table's writer"
        );
        self.client.run_sql(&sql).await?;
        // Read back: a task that claimed the tag at the same moment may
        // have written last.
        let read = self.table_owners(table).await?;
        if super::check_owner(&read, table, tag, task)? {
            Ok(())
        } else {
            Err(Error::Destination(format!(
                "MaxCompute table {table}: the owner marker written into its comment did not \
                 read back"
            )))
        }
    }

    async fn read_table(&self, name: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let schema = &super::nullable(schema);
        let info = self.client.table(name).await?;
        let specs: Vec<Option<PartitionSpec>> = if info.schema.partition_keys.is_empty() {
            vec![None]
        } else {
            self.client
                .partitions(name)
                .await?
                .into_iter()
                .map(Some)
                .collect()
        };
        // Arrow carries timestamps as 64-bit nanoseconds only; the record
        // format carries every value MaxCompute holds.
        let records = info.schema.columns.iter().any(|c| c.ty.is_timestamp());
        let zone = self.timezone().await?;
        let mut out = Vec::new();
        for spec in specs {
            let download = self
                .client
                .create_download_session(name, spec.as_ref())
                .await?;
            let total = download.record_count();
            let mut start = 0;
            while start < total {
                let n = READ_ROWS.min(total - start);
                let batches = if records {
                    vec![download.read_records(start, n).await?]
                } else {
                    download.read_arrow(start, n).await?
                };
                for b in batches {
                    out.push(mapping::batch_from_odps(&b, schema, &zone)?);
                }
                start += n;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;
    use sync_testkit::emulator::{ACCESS_ID, ACCESS_KEY, Emulator};

    fn rows(ids: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef),
            (
                "v",
                Arc::new(StringArray::from_iter_values(
                    ids.iter().map(|i| format!("v{i}")),
                )),
            ),
        ])
        .expect("batch")
    }

    fn part(p: &str, ids: &[i64]) -> TableBatch {
        TableBatch {
            table: "t_log".into(),
            partition: vec![p.into()],
            batch: rows(ids),
        }
    }

    async fn ids(sink: &MaxComputeSink) -> Vec<i64> {
        let schema = rows(&[]).schema();
        let mut out: Vec<i64> = sink
            .read_table("t_log", &schema)
            .await
            .expect("read")
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("i64")
                    .values()
                    .to_vec()
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Stages rows in a new session of partition `p` without committing it.
    async fn staged(sink: &MaxComputeSink, p: &str, batch: &RecordBatch) -> (String, Vec<u32>) {
        let spec = PartitionSpec::new([("p", p)]);
        let session = sink
            .client
            .create_upload_session(
                "t_log",
                Some(&spec),
                &UploadOptions {
                    create_partition: true,
                    ..UploadOptions::default()
                },
            )
            .await
            .expect("session");
        let blocks = sink
            .upload("t_log", &session, std::slice::from_ref(batch))
            .await
            .expect("upload");
        (session.id().to_owned(), blocks)
    }

    /// Each state a crash can leave in the ledger, reconciled against the
    /// real emulator: nothing lost, nothing doubled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redo_reconciles_every_ledger_state_exactly_once() {
        let emu = Emulator::start(&[]).expect("emulator");
        let dir = tempfile::tempdir().expect("tempdir");
        let client = Client::new(
            &emu.endpoint,
            "ledger",
            odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
        )
        .expect("client");
        let sink = MaxComputeSink::new(client, dir.path());
        sink.ensure_table(&TableDef {
            name: "t_log".into(),
            schema: rows(&[]).schema(),
            partition_columns: vec!["p".into()],
        })
        .await
        .expect("table");

        // A unit whose last commit landed but whose ledger did not record it.
        sink.commit_unit("u1", vec![part("a", &[1, 2]), part("b", &[3])])
            .await
            .expect("commit u1");
        let mut ledger = sink.load("u1").expect("load").expect("ledger");
        ledger.complete = false;
        ledger.parts[1].state = PartState::Committing;
        sink.save(&ledger).expect("save");
        assert!(
            sink.is_committed("u1").await.expect("asked"),
            "a closed session is a landed part"
        );
        ledger.parts[1].state = PartState::Committing;
        ledger.complete = false;
        sink.save(&ledger).expect("save");
        sink.commit_unit("u1", vec![part("a", &[1, 2]), part("b", &[3])])
            .await
            .expect("redo u1");
        assert_eq!(ids(&sink).await, [1, 2, 3]);

        // Killed while uploading: the open session is abandoned, never committed.
        let (session, blocks) = staged(&sink, "a", &rows(&[4, 5])).await;
        sink.save(&Ledger {
            unit: "u2".into(),
            complete: false,
            parts: vec![Part {
                table: "t_log".into(),
                partition: "p=a".into(),
                session,
                state: PartState::Open,
                blocks,
            }],
        })
        .expect("save");
        assert!(!sink.is_committed("u2").await.expect("asked"));
        sink.commit_unit("u2", vec![part("a", &[4, 5])])
            .await
            .expect("redo u2");
        assert!(sink.is_committed("u2").await.expect("asked"));
        assert_eq!(ids(&sink).await, [1, 2, 3, 4, 5]);

        // Killed after the blocks, before the commit: the same session is committed.
        let (session, blocks) = staged(&sink, "b", &rows(&[6])).await;
        sink.save(&Ledger {
            unit: "u3".into(),
            complete: false,
            parts: vec![Part {
                table: "t_log".into(),
                partition: "p=b".into(),
                session: session.clone(),
                state: PartState::Committing,
                blocks,
            }],
        })
        .expect("save");
        assert!(
            !sink.is_committed("u3").await.expect("asked"),
            "an open session has not landed"
        );
        // The redo's rows are the same; the staged session's are what lands.
        sink.commit_unit("u3", vec![part("b", &[6])])
            .await
            .expect("redo u3");
        let done = sink.load("u3").expect("load").expect("ledger");
        assert!(done.complete && done.parts[0].session == session);
        assert_eq!(ids(&sink).await, [1, 2, 3, 4, 5, 6]);
        // And a unit redone once complete changes nothing.
        sink.commit_unit("u3", vec![part("b", &[6])])
            .await
            .expect("again");
        assert_eq!(ids(&sink).await, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn owners_sit_after_the_comment_and_round_trip() {
        assert_eq!(parse_owners("orders of the shop").1, Owners::new());
        let mut owners = Owners::new();
        owners.insert(0, "t18a".to_owned());
        owners.insert(7, "t18b".to_owned());
        let text = render_owners("orders [of] the shop", &owners);
        assert_eq!(text, "orders [of] the shop [sync owners: 0=t18a 7=t18b]");
        assert_eq!(
            parse_owners(&text),
            ("orders [of] the shop", owners.clone())
        );
        assert_eq!(parse_owners(&render_owners("", &owners)), ("", owners));
    }

    /// Two tasks, one table: one owner per tag, kept in the table comment.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_task_per_tag_owns_a_table_through_its_comment() {
        let emu = Emulator::start(&[]).expect("emulator");
        let dir = tempfile::tempdir().expect("tempdir");
        let client = Client::new(
            &emu.endpoint,
            "owners",
            odps_tunnel::auth::Credentials::new(ACCESS_ID, ACCESS_KEY),
        )
        .expect("client");
        client
            .run_sql("CREATE TABLE t_log (id BIGINT, v STRING) COMMENT 'the log'")
            .await
            .expect("table");
        let sink = MaxComputeSink::new(client.clone(), dir.path());
        assert!(sink.table_owners("t_log").await.expect("none").is_empty());
        sink.claim_table("t_log", 0, "ta").await.expect("claim");
        sink.claim_table("t_log", 0, "ta").await.expect("again");
        let err = sink
            .claim_table("t_log", 0, "tb")
            .await
            .expect_err("same tag, other task");
        assert!(
            matches!(&err, Error::TableOwned { owner, .. } if owner == "ta"),
            "{err}"
        );
        sink.claim_table("t_log", 3, "tb").await.expect("other tag");
        let info = client.table("t_log").await.expect("info");
        assert_eq!(table_comment(&info), "the log [sync owners: 0=ta 3=tb]");
    }

    #[test]
    fn ddl_names_types_and_partitions() {
        let def = TableDef {
            name: "orders_log".into(),
            schema: Arc::new(Schema::new(vec![
                Field::new("new_dts_sync_record_id", DataType::Int64, false),
                Field::new("total", DataType::Decimal128(14, 4), false),
                Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            ])),
            partition_columns: vec!["new_dts_sync_modifytime_year".into()],
        };
        assert_eq!(
            create_table_sql(&def, mapping::TypeSystem::Odps2).expect("ddl"),
            "CREATE TABLE IF NOT EXISTS `orders_log` (`new_dts_sync_record_id` bigint, \
             `total` decimal(14,4), `at` timestamp_ntz) PARTITIONED BY (`new_dts_sync_modifytime_year` STRING)"
        );
        let bad = TableDef {
            name: "a`b".into(),
            ..def
        };
        assert!(create_table_sql(&bad, mapping::TypeSystem::Odps2).is_err());
    }
}
