//! Where records land: one async trait, two implementations.
//!
//! * [`local::LocalWarehouse`]: a directory of Parquet files, the embedded default.
//! * [`maxcompute::MaxComputeSink`]: a MaxCompute project through `odps-tunnel`.
//!
//! [`open`] builds the one a task file's `[destination]` names.
//!
//! Exactly-once rests on one promise every sink keeps: [`Sink::commit_unit`]
//! is idempotent per unit name. Committing a unit that was already committed,
//! fully or partly, with the same data leaves exactly one copy of each row.
//! The task derives unit names and contents from binlog ranges and chunk ids,
//! so a redo after a crash always offers the same unit with the same data.
//!
//! # Owners
//!
//! A destination table records which task writes it under which
//! `record_id_tag` ([`Sink::claim_table`]): the local warehouse as one
//! marker file per tag in the table's folder, MaxCompute in the table's
//! comment. Two tasks of one source writing one table under one tag would
//! double its rows and collide on record ids; the precheck refuses the
//! second ([`crate::precheck`], check `destination_owners`), and a claim
//! made during a run refuses it too.

pub mod local;
pub mod maxcompute;

use crate::config::{DestinationConfig, TaskConfig};
use crate::error::{Error, Result};
use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema, SchemaRef};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Who writes a destination table: task id per `record_id_tag`.
pub type Owners = BTreeMap<u8, String>;

/// A destination table.
#[derive(Clone, Debug)]
pub struct TableDef {
    /// Destination name, e.g. `customers_log`.
    pub name: String,
    /// The data columns (partition columns excluded).
    pub schema: SchemaRef,
    /// Partition column names, coarse to fine (all STRING).
    pub partition_columns: Vec<String>,
}

/// Rows for one table partition within a commit unit.
#[derive(Clone, Debug)]
pub struct TableBatch {
    /// Destination table name.
    pub table: String,
    /// Partition values, one per partition column, in order.
    pub partition: Vec<String>,
    /// The rows.
    pub batch: RecordBatch,
}

/// A destination.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// Proves the destination answers (for the precheck). The default asks
    /// whether a table exists, which needs the service and the credentials;
    /// a sink that can prove more (that it may write) overrides it.
    async fn probe(&self) -> Result<()> {
        self.table_exists("_sync_probe").await.map(|_| ())
    }
    /// Why this destination cannot store a column of this Arrow type, if it
    /// cannot (for the precheck's `column_types`). The default stores every type.
    fn column_problem(&self, _field: &arrow_schema::Field) -> Option<String> {
        None
    }
    /// The largest STRING/BINARY value the destination stores, in bytes
    /// (`None`: no limit). Larger values meet `[destination]
    /// oversized_values` ([`crate::oversized`]) before they reach the sink.
    fn max_field_bytes(&self) -> Option<usize> {
        None
    }
    /// Whether a table exists (for the conflicting-tables precheck).
    async fn table_exists(&self, name: &str) -> Result<bool>;
    /// The MaxCompute sink this is, if it is one (the mirror writes
    /// through it: [`crate::mirror`]).
    fn as_maxcompute(&self) -> Option<&maxcompute::MaxComputeSink> {
        None
    }
    /// Creates the table when it does not exist yet.
    async fn ensure_table(&self, def: &TableDef) -> Result<()>;
    /// How an existing table differs from what [`Sink::ensure_table`] would
    /// create for `def`, one line per column (missing, extra, or of another
    /// type, in the destination's own type names) or partitioning; empty
    /// when it matches or does not exist. The default finds no difference.
    async fn table_differences(&self, _def: &TableDef) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Makes every row of a unit visible. Idempotent per `unit` (see the module docs).
    async fn commit_unit(&self, unit: &str, data: Vec<TableBatch>) -> Result<()>;
    /// Whether `unit` was committed completely.
    async fn is_committed(&self, unit: &str) -> Result<bool>;
    /// Adds the columns a table does not have yet (a redo after a crash adds
    /// nothing twice). They come after the existing data columns, as
    /// MaxCompute appends them; rows written before read NULL there.
    async fn add_columns(&self, table: &str, columns: &[Field]) -> Result<()>;
    /// Every committed row of a table (for merge and verify), in `schema`'s
    /// column order and Arrow types (the table's data columns), every column
    /// nullable: a column the stored rows lack (added later) reads NULL.
    async fn read_table(&self, name: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>>;
    /// The tasks that claimed an existing `table` (see the module docs);
    /// empty when none did. The default keeps no owners.
    async fn table_owners(&self, _table: &str) -> Result<Owners> {
        Ok(Owners::new())
    }
    /// Records `task` as the writer of the existing `table` under `tag`,
    /// unless it is already; the default keeps no owners.
    ///
    /// # Errors
    /// [`Error::TableOwned`] when another task holds `tag` there.
    async fn claim_table(&self, _table: &str, _tag: u8, _task: &str) -> Result<()> {
        Ok(())
    }
}

/// Whether `owners` lets `task` write under `tag`: `Ok(true)` when it holds
/// the tag already, `Ok(false)` when nobody does.
///
/// # Errors
/// [`Error::TableOwned`] naming the other task.
pub fn check_owner(owners: &Owners, table: &str, tag: u8, task: &str) -> Result<bool> {
    match owners.get(&tag) {
        None => Ok(false),
        Some(owner) if owner == task => Ok(true),
        Some(owner) => Err(Error::TableOwned {
            table: table.to_owned(),
            tag,
            owner: owner.clone(),
            task: task.to_owned(),
        }),
    }
}

#[async_trait::async_trait]
impl Sink for Box<dyn Sink> {
    async fn probe(&self) -> Result<()> {
        self.as_ref().probe().await
    }
    fn column_problem(&self, field: &arrow_schema::Field) -> Option<String> {
        self.as_ref().column_problem(field)
    }
    fn max_field_bytes(&self) -> Option<usize> {
        self.as_ref().max_field_bytes()
    }
    async fn table_exists(&self, name: &str) -> Result<bool> {
        self.as_ref().table_exists(name).await
    }
    fn as_maxcompute(&self) -> Option<&maxcompute::MaxComputeSink> {
        self.as_ref().as_maxcompute()
    }
    async fn ensure_table(&self, def: &TableDef) -> Result<()> {
        self.as_ref().ensure_table(def).await
    }
    async fn table_differences(&self, def: &TableDef) -> Result<Vec<String>> {
        self.as_ref().table_differences(def).await
    }
    async fn commit_unit(&self, unit: &str, data: Vec<TableBatch>) -> Result<()> {
        self.as_ref().commit_unit(unit, data).await
    }
    async fn is_committed(&self, unit: &str) -> Result<bool> {
        self.as_ref().is_committed(unit).await
    }
    async fn add_columns(&self, table: &str, columns: &[Field]) -> Result<()> {
        self.as_ref().add_columns(table, columns).await
    }
    async fn read_table(&self, name: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        self.as_ref().read_table(name, schema).await
    }
    async fn table_owners(&self, table: &str) -> Result<Owners> {
        self.as_ref().table_owners(table).await
    }
    async fn claim_table(&self, table: &str, tag: u8, task: &str) -> Result<()> {
        self.as_ref().claim_table(table, tag, task).await
    }
}

/// The differences between a table's columns and partitioning as stored
/// (`have`: name and type, in the destination's type names) and those the
/// task would create (`want`), for [`Sink::table_differences`]. Names
/// compare without case, as both destinations take them.
pub fn differences(
    have: &[(String, String)],
    want: &[(String, String)],
    have_partitions: &[String],
    want_partitions: &[String],
) -> Vec<String> {
    let find = |list: &[(String, String)], name: &str| {
        list.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, t)| t.clone())
    };
    let mut out = Vec::new();
    for (name, ty) in want {
        match find(have, name) {
            None => out.push(format!("column `{name}` ({ty}) is missing")),
            Some(t) if !t.eq_ignore_ascii_case(ty) => {
                out.push(format!("column `{name}` is {t}, the task writes {ty}"))
            }
            Some(_) => {}
        }
    }
    for (name, ty) in have {
        if find(want, name).is_none() {
            out.push(format!("column `{name}` ({ty}) is not one the task writes"));
        }
    }
    let lower = |v: &[String]| v.iter().map(|p| p.to_ascii_lowercase()).collect::<Vec<_>>();
    if lower(have_partitions) != lower(want_partitions) {
        out.push(format!(
            "it is partitioned by ({}), the task writes ({})",
            have_partitions.join(", "),
            want_partitions.join(", ")
        ));
    }
    out
}

/// `schema` with every field nullable: what reads return, since rows written
/// before a column was added hold NULL in it.
pub fn nullable(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// A stored batch as `schema`'s columns (matched by name, exactly, else
/// without case): a column it lacks is NULL.
///
/// # Errors
/// [`Error::Mapping`] when a column has another type than `schema` says.
pub fn conform_read(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let have = batch.schema();
    let out = nullable(schema);
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let found = have.index_of(f.name()).ok().or_else(|| {
                have.fields()
                    .iter()
                    .position(|h| h.name().eq_ignore_ascii_case(f.name()))
            });
            match found {
                None => Ok(arrow_array::new_null_array(f.data_type(), batch.num_rows())),
                Some(i) if batch.column(i).data_type() == f.data_type() => {
                    Ok(batch.column(i).clone())
                }
                Some(i) => Err(Error::Mapping(format!(
                    "column `{}` is stored as {}, the task expects {}",
                    f.name(),
                    batch.column(i).data_type(),
                    f.data_type()
                ))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        out,
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// The sink a task file's `[destination]` names. The MaxCompute sink keeps
/// its unit ledger in `<state_dir>/maxcompute-units`.
///
/// # Errors
/// [`Error::Config`] naming the setting: an access key variable that is not
/// set, a malformed endpoint.
pub fn open(cfg: &TaskConfig) -> Result<Box<dyn Sink>> {
    Ok(match &cfg.destination {
        DestinationConfig::Local {
            path,
            compression,
            dictionary,
        } => {
            let codec = compression.as_deref().unwrap_or("zstd");
            let compression = local::ParquetCompression::from_name(codec).ok_or_else(|| {
                Error::Config(format!(
                    "[destination] compression: unknown codec {codec:?} (one of zstd, snappy, lz4, none)"
                ))
            })?;
            Box::new(
                local::LocalWarehouse::new(path).with_parquet(local::ParquetOptions {
                    compression,
                    dictionary: *dictionary,
                }),
            )
        }
        DestinationConfig::Embedded => {
            return Err(Error::Config(
                "the task file has no [destination] section: add one (kind = \"local\" with a \
                 path, or kind = \"maxcompute\"); only a program that passes its own sink to \
                 TaskRunner may leave it out"
                    .to_owned(),
            ));
        }
        DestinationConfig::Maxcompute(mc) => {
            let client = mc.client()?;
            let zone = match &mc.timezone {
                Some(name) => Some(crate::timezone::Zone::parse(name).map_err(Error::Config)?),
                None => None,
            };
            Box::new(
                maxcompute::MaxComputeSink::new(
                    client,
                    cfg.sync.state_dir.join("maxcompute-units"),
                )
                .with_timezone(zone)
                .with_type_system(mc.type_system),
            )
        }
    })
}
