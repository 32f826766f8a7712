//! Projects, tables and partitions, kept as one JSON file per table under the
//! data directory. Names are checked before they become paths.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::OdpsError;
use odps_tunnel::session::{PartitionSpec, PartitionSpecError};
use odps_tunnel::types::{self as tunnel_types, OdpsType};

/// One column or partition key.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Column {
    /// Column name (lower-case, as MaxCompute stores it).
    pub name: String,
    /// Type name as MaxCompute prints it, e.g. `decimal(10,2)`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Column comment.
    #[serde(default)]
    pub comment: String,
    /// Whether NULL is allowed.
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

impl Column {
    /// The parsed type.
    pub fn odps_type(&self) -> Result<OdpsType, OdpsError> {
        self.type_name
            .parse()
            .map_err(|e: tunnel_types::TypeError| OdpsError::internal(e.to_string()))
    }

    /// The column as the Tunnel codecs of `odps-tunnel` take it.
    pub fn to_tunnel(&self) -> Result<tunnel_types::Column, OdpsError> {
        Ok(tunnel_types::Column {
            name: self.name.clone(),
            ty: self.odps_type()?,
            nullable: self.nullable,
        })
    }
}

/// A partition: its key values in key order.
pub type PartitionValues = Vec<(String, String)>;

/// One existing partition.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PartitionMeta {
    /// Key/value pairs in the table's key order.
    pub values: PartitionValues,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Last data change, seconds since the epoch.
    pub modified: i64,
}

/// A table's metadata.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TableMeta {
    /// Table name (lower-case).
    pub name: String,
    /// Unique id, changes when a table is dropped and created again.
    pub table_id: String,
    /// Table comment.
    #[serde(default)]
    pub comment: String,
    /// Data columns.
    pub columns: Vec<Column>,
    /// Partition keys (empty for a plain table).
    pub partition_keys: Vec<Column>,
    /// Existing partitions.
    #[serde(default)]
    pub partitions: Vec<PartitionMeta>,
    /// Lifecycle in days, if set.
    #[serde(default)]
    pub lifecycle: Option<i64>,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Last DDL change, seconds since the epoch.
    pub ddl_modified: i64,
    /// Last data change, seconds since the epoch.
    pub data_modified: i64,
    /// `TBLPROPERTIES ('transactional'='true')`.
    #[serde(default)]
    pub transactional: bool,
    /// Primary key columns (a Delta table when also transactional).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// Other table properties as given (`write.bucket.num`, …).
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
}

/// Default of `write.bucket.num` (the service's documented default is
/// not settled; 16 is what public examples use).
pub const DEFAULT_BUCKETS: u32 = 16;

impl TableMeta {
    /// Whether this is a primary-key Delta table (transactional with a
    /// primary key), written through upsert sessions only.
    pub fn is_delta(&self) -> bool {
        self.transactional && !self.primary_key.is_empty()
    }

    /// The table's bucket count (`write.bucket.num`).
    pub fn buckets(&self) -> u32 {
        self.properties
            .get("write.bucket.num")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_BUCKETS)
    }

    /// Whether the table has partition keys.
    pub fn is_partitioned(&self) -> bool {
        !self.partition_keys.is_empty()
    }

    /// Orders a parsed partition spec by the table's keys; the spec must name
    /// every key exactly once.
    pub fn full_partition(&self, spec: &[(String, String)]) -> Result<PartitionValues, OdpsError> {
        if spec.len() != self.partition_keys.len() {
            return Err(OdpsError::invalid_partition(&self.name, spec));
        }
        self.partition_keys
            .iter()
            .map(|key| {
                spec.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&key.name))
                    .map(|(_, v)| (key.name.clone(), v.clone()))
                    .ok_or_else(|| OdpsError::invalid_partition(&self.name, spec))
            })
            .collect()
    }

    /// Index of an existing partition.
    pub fn find_partition(&self, values: &PartitionValues) -> Option<usize> {
        self.partitions.iter().position(|p| &p.values == values)
    }

    /// Partitions whose values match a (possibly partial) spec.
    pub fn matching_partitions(&self, spec: &[(String, String)]) -> Vec<&PartitionMeta> {
        self.partitions
            .iter()
            .filter(|p| {
                spec.iter().all(|(k, v)| {
                    p.values
                        .iter()
                        .any(|(pk, pv)| pk.eq_ignore_ascii_case(k) && pv == v)
                })
            })
            .collect()
    }

    /// The `Reserved` object (sent as a JSON string): `Transactional`,
    /// and for a Delta table `PrimaryKey` (a list of names; the service's
    /// exact shape is not documented, pyodps reads it as a list) and the
    /// table properties.
    pub fn reserved_json(&self) -> serde_json::Value {
        let mut reserved = serde_json::Map::new();
        reserved.insert(
            "Transactional".into(),
            if self.transactional { "true" } else { "false" }.into(),
        );
        if !self.primary_key.is_empty() {
            reserved.insert("PrimaryKey".into(), self.primary_key.clone().into());
        }
        for (k, v) in &self.properties {
            if k != "transactional" {
                reserved.insert(k.clone(), v.clone().into());
            }
        }
        serde_json::Value::Object(reserved)
    }

    /// The column list as MaxCompute's schema JSON renders it.
    pub fn schema_json(&self) -> serde_json::Value {
        let col = |c: &Column| {
            serde_json::json!({
                "name": c.name, "type": c.type_name, "comment": c.comment,
                "isNullable": c.nullable, "nullable": c.nullable, "label": "",
            })
        };
        serde_json::json!({
            "tableName": self.name,
            "comment": self.comment,
            "owner": OWNER,
            "createTime": self.created,
            "lastDDLTime": self.ddl_modified,
            "lastModifiedTime": self.data_modified,
            "lifecycle": self.lifecycle.unwrap_or(-1),
            "isVirtualView": false,
            "isExternal": false,
            "size": 0,
            "Reserved": self.reserved_json().to_string(),
            "columns": self.columns.iter().map(col).collect::<Vec<_>>(),
            "partitionKeys": self.partition_keys.iter().map(col).collect::<Vec<_>>(),
        })
    }
}

/// Columns as the Tunnel codecs of `odps-tunnel` take them.
pub fn tunnel_columns(columns: &[Column]) -> Result<Vec<tunnel_types::Column>, OdpsError> {
    columns.iter().map(Column::to_tunnel).collect()
}

/// The owner every object reports.
pub const OWNER: &str = "ALIYUN$odps-emulator";

/// Renders partition values as MaxCompute prints a spec: `k1=v1,k2=v2`
/// (odps-tunnel's [`PartitionSpec`] form, the one its clients send).
pub fn spec_string(values: &[(String, String)]) -> String {
    PartitionSpec::new(values.iter().cloned()).to_string()
}

/// Parses a request's spec as the client's own [`PartitionSpec`] does
/// (`k1=v1,k2='v2'`, quotes optional), keys lower-cased: partition keys are
/// column names, which MaxCompute compares without case.
pub fn parse_spec(text: &str) -> Result<PartitionValues, OdpsError> {
    let spec: PartitionSpec = text
        .parse()
        .map_err(|e: PartitionSpecError| OdpsError::invalid_argument(e.to_string()))?;
    Ok(spec
        .pairs
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect())
}

/// The on-disk catalog.
#[derive(Debug)]
pub struct Catalog {
    root: PathBuf,
}

impl Catalog {
    /// A catalog rooted at the data directory.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A project's directory, created on first use (any project name a
    /// client asks for exists, like a fresh project the key owns).
    pub fn project_dir(&self, project: &str) -> Result<PathBuf, OdpsError> {
        check_name(project, "project")?;
        let dir = self
            .root
            .join("projects")
            .join(project.to_ascii_lowercase());
        std::fs::create_dir_all(dir.join("tables")).map_err(OdpsError::io)?;
        Ok(dir)
    }

    /// A table's directory (metadata and committed data).
    pub fn table_dir(&self, project: &str, table: &str) -> Result<PathBuf, OdpsError> {
        check_name(table, "table")?;
        Ok(self
            .project_dir(project)?
            .join("tables")
            .join(table.to_ascii_lowercase()))
    }

    /// Directory holding a partition's (or a plain table's) Parquet files.
    pub fn data_dir(
        &self,
        project: &str,
        table: &str,
        values: &PartitionValues,
    ) -> Result<PathBuf, OdpsError> {
        let mut dir = self.table_dir(project, table)?.join("data");
        for (k, v) in values {
            dir.push(format!("{k}={}", escape_path(v)));
        }
        Ok(dir)
    }

    /// Reads a table's metadata; `None` when it does not exist.
    pub fn load(&self, project: &str, table: &str) -> Result<Option<TableMeta>, OdpsError> {
        let path = self.table_dir(project, table)?.join("table.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| OdpsError::internal(format!("corrupt table metadata: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(OdpsError::io(e)),
        }
    }

    /// Reads a table's metadata or fails with MaxCompute's "table not found".
    pub fn require(&self, project: &str, table: &str) -> Result<TableMeta, OdpsError> {
        self.load(project, table)?
            .ok_or_else(|| OdpsError::no_such_table(project, table))
    }

    /// Writes a table's metadata atomically (write then rename).
    pub fn save(&self, project: &str, meta: &TableMeta) -> Result<(), OdpsError> {
        let dir = self.table_dir(project, &meta.name)?;
        std::fs::create_dir_all(&dir).map_err(OdpsError::io)?;
        let tmp = dir.join("table.json.tmp");
        let bytes =
            serde_json::to_vec_pretty(meta).map_err(|e| OdpsError::internal(e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(OdpsError::io)?;
        std::fs::rename(&tmp, dir.join("table.json")).map_err(OdpsError::io)
    }

    /// Removes a table with its data.
    pub fn drop_table(&self, project: &str, table: &str) -> Result<(), OdpsError> {
        let dir = self.table_dir(project, table)?;
        std::fs::remove_dir_all(dir).map_err(OdpsError::io)
    }
}

/// Current time in seconds since the epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A unique, increasing number for ids.
pub fn now_nanos() -> u128 {
    static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    *last = (*last + 1).max(now);
    *last
}

/// A time the catalog keeps (seconds since the epoch) as an HTTP date, in
/// odps-tunnel's format, the one the client parses.
pub fn http_date(secs: i64) -> String {
    let secs = u64::try_from(secs).unwrap_or(0);
    odps_tunnel::auth::http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Project, table and column names: letters, digits and `_` only, so a name
/// can never escape the data directory.
pub fn check_name(name: &str, what: &str) -> Result<(), OdpsError> {
    if name.is_empty()
        || name.len() > 128
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(OdpsError::invalid_argument(format!(
            "invalid {what} name {name:?}"
        )));
    }
    Ok(())
}

/// Keeps partition values path-safe: anything but `[A-Za-z0-9_-]` becomes `%XX`.
fn escape_path(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_data_dir() {
        assert!(check_name("../etc", "table").is_err());
        assert!(check_name("a/b", "table").is_err());
        assert!(check_name("good_name1", "table").is_ok());
        assert_eq!(escape_path("a/../b"), "a%2F%2E%2E%2Fb");
    }

    #[test]
    fn parses_partition_specs() {
        assert_eq!(
            parse_spec("pt='20240101', Region=cn").unwrap(),
            vec![
                ("pt".to_owned(), "20240101".to_owned()),
                ("region".to_owned(), "cn".to_owned())
            ]
        );
        assert!(parse_spec("nonsense").is_err());
        assert_eq!(parse_spec(" ").unwrap(), PartitionValues::new());
        let values = parse_spec("pt=\"1\"/Region=cn").unwrap();
        assert_eq!(spec_string(&values), "pt=1,region=cn");
    }

    #[test]
    fn formats_http_dates_as_the_client_parses_them() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        let secs = 1_735_689_600;
        assert_eq!(http_date(secs), "Wed, 01 Jan 2025 00:00:00 GMT");
        assert_eq!(
            odps_tunnel::auth::parse_http_date(&http_date(secs)),
            Some(secs)
        );
    }
}
