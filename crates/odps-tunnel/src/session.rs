//! The Tunnel's session JSON and the names that go with it.
//!
//! These are the bodies the Tunnel answers to "create upload session",
//! "reload upload session", "commit" and "create download session", with the
//! field names MaxCompute uses (`UploadID`, `UploadedBlockList`, `Schema`, …).
//! The table schema inside (`columns`, `partitionKeys`) is the same JSON the
//! REST API puts in a table's `<Schema>` element, so [`TableSchema`] serves
//! both.
//!
//! # Example
//!
//! ```
//! use odps_tunnel::session::{SessionStatus, UploadSessionInfo};
//!
//! let body = r#"{"UploadID":"u1","Status":"normal","UploadedBlockList":[{"BlockID":3}],
//!   "Schema":{"columns":[{"name":"id","type":"bigint","comment":"","isNullable":true}],
//!             "partitionKeys":[{"name":"pt","type":"string"}]},"MaxFieldSize":8388608}"#;
//! let session: UploadSessionInfo = serde_json::from_str(body)?;
//! assert_eq!(session.status, SessionStatus::Normal);
//! assert_eq!(session.blocks[0].id.get(), 3);
//! assert_eq!(session.schema.columns[0].ty.to_string(), "bigint");
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::types::{Column, OdpsType};

/// Value of the `x-odps-tunnel-version` header.
pub const TUNNEL_VERSION: &str = "6";
/// Header naming the Tunnel protocol version (signed: it is `x-odps-*`).
pub const TUNNEL_VERSION_HEADER: &str = "x-odps-tunnel-version";
/// Header carrying the client's user agent; signed.
pub const USER_AGENT_HEADER: &str = "x-odps-user-agent";
/// Header carrying the request id in responses.
pub const REQUEST_ID_HEADER: &str = "x-odps-request-id";
/// Largest block id a session accepts (ids run from 0).
pub const MAX_BLOCK_ID: u32 = 19_999;

/// A block id within an upload session (0..=19999).
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlockId(u32);

impl BlockId {
    /// A block id, or `None` when it is beyond [`MAX_BLOCK_ID`].
    pub fn new(id: u32) -> Option<Self> {
        (id <= MAX_BLOCK_ID).then_some(Self(id))
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Session status as the Tunnel reports it (case-insensitive on input,
/// lower case on output).
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
#[non_exhaustive]
pub enum SessionStatus {
    /// Status not known.
    Unknown,
    /// Open: blocks may be uploaded, or the download is ready.
    Normal,
    /// Commit in progress.
    Closing,
    /// Committed.
    Closed,
    /// Cancelled.
    Canceled,
    /// Past its lifetime.
    Expired,
    /// Broken on the server side.
    Critical,
    /// A download session still preparing (async mode).
    Initiating,
    /// Any other word the server used.
    Other(String),
}

impl SessionStatus {
    /// The wire word.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Unknown => "unknown",
            Self::Normal => "normal",
            Self::Closing => "closing",
            Self::Closed => "closed",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
            Self::Critical => "critical",
            Self::Initiating => "initiating",
            Self::Other(s) => s,
        }
    }
}

impl FromStr for SessionStatus {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "unknown" => Self::Unknown,
            "normal" => Self::Normal,
            "closing" => Self::Closing,
            "closed" => Self::Closed,
            "canceled" | "cancelled" => Self::Canceled,
            "expired" => Self::Expired,
            "critical" => Self::Critical,
            "initiating" => Self::Initiating,
            _ => Self::Other(s.to_owned()),
        })
    }
}

impl Serialize for SessionStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SessionStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(s.parse().unwrap_or(Self::Unknown))
    }
}

/// One column in schema JSON.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(from = "ColumnJsonRaw")]
pub struct ColumnJson {
    /// Column name.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub ty: OdpsType,
    /// Column comment.
    pub comment: String,
    /// Whether nulls are allowed (`isNullable`; some servers also or only
    /// write `nullable`).
    #[serde(rename = "isNullable")]
    pub nullable: bool,
}

/// What servers send for a column, before settling `isNullable`/`nullable`.
#[derive(Deserialize)]
struct ColumnJsonRaw {
    name: String,
    #[serde(rename = "type")]
    ty: OdpsType,
    #[serde(default)]
    comment: Option<String>,
    #[serde(rename = "isNullable", default, deserialize_with = "lenient_bool")]
    is_nullable: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    nullable: Option<bool>,
}

impl From<ColumnJsonRaw> for ColumnJson {
    fn from(raw: ColumnJsonRaw) -> Self {
        Self {
            name: raw.name,
            ty: raw.ty,
            comment: raw.comment.unwrap_or_default(),
            nullable: raw.is_nullable.or(raw.nullable).unwrap_or(true),
        }
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<B>::deserialize(d)? {
        Some(B::Bool(b)) => Some(b),
        Some(B::Text(t)) => Some(!t.eq_ignore_ascii_case("false")),
        None => None,
    })
}

impl ColumnJson {
    /// A nullable column without comment.
    pub fn new(name: impl Into<String>, ty: OdpsType) -> Self {
        Self {
            name: name.into(),
            ty,
            comment: String::new(),
            nullable: true,
        }
    }
}

impl From<&ColumnJson> for Column {
    fn from(c: &ColumnJson) -> Self {
        Self {
            name: c.name.clone(),
            ty: c.ty.clone(),
            nullable: c.nullable,
        }
    }
}

/// A table schema as JSON: data columns and partition keys, plus whatever
/// else the server sent (kept so it can be written back unchanged).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
pub struct TableSchema {
    /// Data columns, in table order.
    #[serde(default)]
    pub columns: Vec<ColumnJson>,
    /// Partition key columns.
    #[serde(rename = "partitionKeys", default)]
    pub partition_keys: Vec<ColumnJson>,
    /// Other fields (`comment`, `owner`, `createTime`, `lifecycle`, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl TableSchema {
    /// The data columns as [`Column`]s (what the Arrow and protobuf formats carry).
    pub fn data_columns(&self) -> Vec<Column> {
        self.columns.iter().map(Column::from).collect()
    }
}

/// One uploaded block in [`UploadSessionInfo::blocks`].
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct BlockEntry {
    /// The block id.
    #[serde(rename = "BlockID")]
    pub id: BlockId,
    /// Other fields the server sent about the block.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BlockEntry {
    /// An entry with only the id.
    pub fn new(id: BlockId) -> Self {
        Self {
            id,
            extra: serde_json::Map::new(),
        }
    }
}

/// The upload session JSON.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct UploadSessionInfo {
    /// Session id, to be persisted for resuming.
    #[serde(rename = "UploadID")]
    pub id: String,
    /// Session status.
    #[serde(rename = "Status")]
    pub status: SessionStatus,
    /// Blocks the server holds for this session.
    #[serde(rename = "UploadedBlockList", default)]
    pub blocks: Vec<BlockEntry>,
    /// The table schema.
    #[serde(rename = "Schema", default)]
    pub schema: TableSchema,
    /// Largest string/binary value in bytes.
    #[serde(
        rename = "MaxFieldSize",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_field_size: Option<u64>,
    /// Quota (resource group) name.
    #[serde(rename = "QuotaName", default, skip_serializing_if = "Option::is_none")]
    pub quota_name: Option<String>,
}

/// The download session JSON.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct DownloadSessionInfo {
    /// Session id.
    #[serde(rename = "DownloadID")]
    pub id: String,
    /// Session status (`initiating` while an async session prepares).
    #[serde(rename = "Status")]
    pub status: SessionStatus,
    /// Number of records readable.
    #[serde(rename = "RecordCount", default)]
    pub record_count: u64,
    /// The table schema.
    #[serde(rename = "Schema", default)]
    pub schema: TableSchema,
    /// Quota (resource group) name.
    #[serde(rename = "QuotaName", default, skip_serializing_if = "Option::is_none")]
    pub quota_name: Option<String>,
    /// Whether reads may be bounded by raw size.
    #[serde(rename = "SupportReadByRawSize", default)]
    pub support_read_by_raw_size: bool,
}

/// A partition spec such as `pt=20240101,region=eu`.
///
/// Parsing accepts the SDK's spellings (`pt='x'`, `pt="x"`, spaces, `/` as
/// separator); printing gives the Tunnel's form `k=v,k=v` without quotes.
#[derive(Clone, Debug, Default, Eq, Hash, PartialEq)]
pub struct PartitionSpec {
    /// `(key, value)` pairs in order.
    pub pairs: Vec<(String, String)>,
}

/// A partition spec that could not be parsed.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("invalid partition spec {0:?}: expected k=v[,k=v...]")]
pub struct PartitionSpecError(pub String);

impl PartitionSpec {
    /// A spec from pairs.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Whether there are no pairs (a non-partitioned target).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl FromStr for PartitionSpec {
    type Err = PartitionSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut pairs = Vec::new();
        for part in s.split([',', '/']).map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| PartitionSpecError(s.to_owned()))?;
            let k = k.trim();
            let v = v.trim().trim_matches(|c| c == '\'' || c == '"');
            if k.is_empty() {
                return Err(PartitionSpecError(s.to_owned()));
            }
            pairs.push((k.to_owned(), v.to_owned()));
        }
        Ok(Self { pairs })
    }
}

impl fmt::Display for PartitionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_session_round_trips_with_unknown_fields() {
        let body = r#"{"UploadID":"u","Status":"NORMAL","UploadedBlockList":[{"BlockID":0,"RecordCount":5}],
            "Schema":{"columns":[{"name":"a","type":"decimal(10,2)","comment":"c","isNullable":"false"}],
                      "partitionKeys":[],"lifecycle":7},"QuotaName":"q"}"#;
        let s: UploadSessionInfo = serde_json::from_str(body).unwrap();
        assert_eq!(s.status, SessionStatus::Normal);
        assert!(!s.schema.columns[0].nullable);
        assert_eq!(s.blocks[0].extra["RecordCount"], 5);
        assert_eq!(s.schema.extra["lifecycle"], 7);
        let again: UploadSessionInfo =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);
        assert!(
            serde_json::to_string(&s)
                .unwrap()
                .contains("\"Status\":\"normal\"")
        );
    }

    #[test]
    fn download_session_parses() {
        let body = r#"{"DownloadID":"d","Status":"initiating","RecordCount":42,
            "Schema":{"columns":[{"name":"x","type":"array<int>","nullable":true}]}}"#;
        let s: DownloadSessionInfo = serde_json::from_str(body).unwrap();
        assert_eq!(s.status, SessionStatus::Initiating);
        assert_eq!(s.record_count, 42);
        assert_eq!(s.schema.data_columns()[0].ty.to_string(), "array<int>");
    }

    #[test]
    fn bad_type_in_schema_is_an_error() {
        let body = r#"{"columns":[{"name":"x","type":"nosuch"}]}"#;
        assert!(serde_json::from_str::<TableSchema>(body).is_err());
    }

    #[test]
    fn partition_specs() {
        let p: PartitionSpec = "pt='20240101', region = eu".parse().unwrap();
        assert_eq!(p.to_string(), "pt=20240101,region=eu");
        assert_eq!("a=1/b=2".parse::<PartitionSpec>().unwrap().pairs.len(), 2);
        assert!("novalue".parse::<PartitionSpec>().is_err());
        assert!("".parse::<PartitionSpec>().unwrap().is_empty());
    }

    #[test]
    fn block_ids_are_bounded() {
        assert!(BlockId::new(MAX_BLOCK_ID).is_some());
        assert!(BlockId::new(MAX_BLOCK_ID + 1).is_none());
    }
}
