//! The upsert session's wire shapes, without I/O: the session JSON, the
//! five hidden columns every record carries and the per-bucket block body.
//!
//! A block body is a protobuf record stream ([`crate::encode::proto`]) whose
//! record layout is the table's data columns followed by [`HIDDEN_COLUMNS`]:
//! `__version` and `__app_version` (NULL), `__operation` (`'U'` = 85 or
//! `'D'` = 68), `__key_cols` (NULL) and `__value_cols` (an empty array: a
//! full-row upsert). Partition columns are never sent.
//!
//! # Example
//!
//! ```
//! use odps_tunnel::upsert::wire::{UpsertSessionInfo, UpsertStatus};
//!
//! let body = r#"{"id":"u1","status":"normal","quota_name":"","enable_partial_update":false,
//!   "schema":{"columns":[{"name":"id","type":"bigint","comment":"","nullable":false}],"partitionKeys":[]},
//!   "hash_key":["id"],"hasher":"default",
//!   "slots":[{"slot_id":"0","buckets":[0,1],"worker_addr":"127.0.0.1:8080"}]}"#;
//! let info: UpsertSessionInfo = serde_json::from_str(body)?;
//! assert_eq!(info.status, UpsertStatus::Normal);
//! assert_eq!(info.bucket_count(), Some(2));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::sync::Arc;

use arrow_array::builder::{Int8Builder, Int64Builder, ListBuilder};
use arrow_array::{Array, ArrayRef, Int64Array, ListArray, RecordBatch, RecordBatchOptions};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::session::TableSchema;
use crate::types::{Column, OdpsType, TimestampForm, arrow_schema_in};

/// Names of the hidden columns, in order, after the data columns.
pub const HIDDEN_COLUMNS: [&str; 5] = [
    "__version",
    "__app_version",
    "__operation",
    "__key_cols",
    "__value_cols",
];

/// Header naming the worker (slot) a request is for.
pub const ROUTED_SERVER_HEADER: &str = "odps-tunnel-routed-server";

/// What a record does.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Operation {
    /// Insert the row, or replace the row with the same key.
    Upsert,
    /// Remove the row with this key (only the key columns matter).
    Delete,
}

impl Operation {
    /// The `__operation` byte: `'U'` or `'D'`.
    pub fn code(self) -> i8 {
        match self {
            Self::Upsert => b'U' as i8,
            Self::Delete => b'D' as i8,
        }
    }

    /// The operation of an `__operation` byte.
    pub fn from_code(code: i8) -> Option<Self> {
        match code as u8 {
            b'U' => Some(Self::Upsert),
            b'D' => Some(Self::Delete),
            _ => None,
        }
    }
}

/// The record layout of a block: `data` columns, then the hidden ones.
pub fn record_columns(data: &[Column]) -> Vec<Column> {
    let mut columns = data.to_vec();
    let list = OdpsType::Array(Box::new(OdpsType::Bigint));
    for (name, ty) in HIDDEN_COLUMNS.iter().zip([
        OdpsType::Bigint,
        OdpsType::Bigint,
        OdpsType::Tinyint,
        list.clone(),
        list,
    ]) {
        columns.push(Column::new(*name, ty));
    }
    columns
}

/// Appends the hidden columns for `op` to `batch` (laid out as `data`,
/// timestamps in `form`), giving a batch of [`record_columns`] layout.
///
/// # Errors
///
/// Arrow's error when `batch` does not have the `data` layout.
pub fn with_hidden_columns(
    data: &[Column],
    batch: &RecordBatch,
    op: Operation,
    form: TimestampForm,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let rows = batch.num_rows();
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    arrays.push(Arc::new(Int64Array::new_null(rows)));
    arrays.push(Arc::new(Int64Array::new_null(rows)));
    let mut ops = Int8Builder::with_capacity(rows);
    ops.append_slice(&vec![op.code(); rows]);
    arrays.push(Arc::new(ops.finish()));
    let mut keys = ListBuilder::new(Int64Builder::new());
    let mut values = ListBuilder::new(Int64Builder::new());
    for _ in 0..rows {
        keys.append_null();
        values.append(true);
    }
    let keys: ListArray = keys.finish();
    let values: ListArray = values.finish();
    arrays.push(Arc::new(keys));
    arrays.push(Arc::new(values));
    let schema = arrow_schema_in(&record_columns(data), form);
    // The list builders name their child `item` as the schema does.
    let arrays = arrays
        .into_iter()
        .zip(schema.fields())
        .map(|(a, f)| {
            if a.data_type() == f.data_type() {
                return Ok(a);
            }
            let data = a
                .to_data()
                .into_builder()
                .data_type(f.data_type().clone())
                .build()?;
            Ok(arrow_array::make_array(data))
        })
        .collect::<Result<Vec<_>, arrow_schema::ArrowError>>()?;
    RecordBatch::try_new_with_options(
        schema,
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
}

/// An upsert session's status (case-insensitive on input).
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
#[non_exhaustive]
pub enum UpsertStatus {
    /// Open for writing.
    Normal,
    /// Commit in progress.
    Committing,
    /// Committed: the data is visible.
    Committed,
    /// Past its lifetime.
    Expired,
    /// Broken on the server side.
    Critical,
    /// Aborted: nothing of it is visible.
    Aborted,
    /// Any other word.
    Other(String),
}

impl UpsertStatus {
    /// The wire word (lower case).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Normal => "normal",
            Self::Committing => "committing",
            Self::Committed => "committed",
            Self::Expired => "expired",
            Self::Critical => "critical",
            Self::Aborted => "aborted",
            Self::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Self::Normal,
            "committing" => Self::Committing,
            "committed" => Self::Committed,
            "expired" => Self::Expired,
            "critical" => Self::Critical,
            "aborted" => Self::Aborted,
            _ => Self::Other(s.to_owned()),
        }
    }
}

impl std::fmt::Display for UpsertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for UpsertStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for UpsertStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

/// One slot (worker) of a session and the buckets it serves.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct SlotInfo {
    /// Slot id (a string on the wire).
    #[serde(deserialize_with = "string_or_number")]
    pub slot_id: String,
    /// Bucket ids served by this slot.
    pub buckets: Vec<u32>,
    /// `ip:port` of the worker, sent back in `odps-tunnel-routed-server`.
    pub worker_addr: String,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// The upsert session JSON (create, reload and commit answers).
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct UpsertSessionInfo {
    /// Session id.
    pub id: String,
    /// Status.
    pub status: UpsertStatus,
    /// Quota name.
    #[serde(default)]
    pub quota_name: String,
    /// Whether partial updates are enabled on the table.
    #[serde(default)]
    pub enable_partial_update: bool,
    /// The table schema (data columns and partition keys).
    pub schema: TableSchema,
    /// The columns rows are routed by (the primary key).
    pub hash_key: Vec<String>,
    /// The hash: `default` or `legacy`.
    pub hasher: String,
    /// Slots and their buckets.
    pub slots: Vec<SlotInfo>,
}

impl UpsertSessionInfo {
    /// The number of buckets, when the slots name exactly `0..n`.
    pub fn bucket_count(&self) -> Option<u32> {
        let mut all: Vec<u32> = self
            .slots
            .iter()
            .flat_map(|s| s.buckets.iter().copied())
            .collect();
        all.sort_unstable();
        let n = u32::try_from(all.len()).ok()?;
        (n > 0 && all.iter().copied().eq(0..n)).then_some(n)
    }

    /// The slot serving `bucket`.
    pub fn slot_of(&self, bucket: u32) -> Option<&SlotInfo> {
        self.slots.iter().find(|s| s.buckets.contains(&bucket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::proto::{RecordDecoder, RecordEncoder};

    /// The captured pyodps DELETE of id=8 over (id bigint, name string,
    /// ts datetime), everything else NULL (Delta-table notes §2.4).
    #[test]
    fn encodes_the_captured_delete_byte_for_byte() {
        let data = vec![
            Column::new("id", OdpsType::Bigint),
            Column::new("name", OdpsType::String),
            Column::new("ts", OdpsType::Datetime),
        ];
        let batch = RecordBatch::try_new(
            arrow_schema_in(&data, TimestampForm::Nanos),
            vec![
                Arc::new(Int64Array::from(vec![8])),
                Arc::new(arrow_array::StringArray::new_null(1)),
                Arc::new(arrow_array::TimestampMillisecondArray::new_null(1)),
            ],
        )
        .unwrap();
        let full =
            with_hidden_columns(&data, &batch, Operation::Delete, TimestampForm::Nanos).unwrap();
        let mut encoder = RecordEncoder::try_new(&record_columns(&data));
        encoder.write(&full).unwrap();
        let body = encoder.finish();
        // Our encoder writes a CRC with bit 31 set as the 10-byte
        // sign-extended varint, as pyodps' C encoder does; the capture (Java
        // and pyodps' Python encoder) has the 5-byte form. Both decode alike.
        let want: Vec<u8> = vec![
            0x08, 0x10, 0x30, 0x88, 0x01, 0x42, 0x00, 0x80, 0xc0, 0xff, 0x7f, 0x94, 0xcf, 0xad,
            0xa9, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x01, 0xf0, 0xff, 0xff, 0x7f, 0x02, 0xf8, 0xff,
            0xff, 0x7f, 0xb7, 0xd3, 0xa4, 0xd7, 0xfd, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        let captured: Vec<u8> = vec![
            0x08, 0x10, 0x30, 0x88, 0x01, 0x42, 0x00, 0x80, 0xc0, 0xff, 0x7f, 0x94, 0xcf, 0xad,
            0xa9, 0x0e, 0xf0, 0xff, 0xff, 0x7f, 0x02, 0xf8, 0xff, 0xff, 0x7f, 0xb7, 0xd3, 0xa4,
            0xd7, 0x0d,
        ];
        let decoded = RecordDecoder::new(&record_columns(&data))
            .decode(&captured)
            .unwrap();
        assert_eq!(decoded.batch, full);
        assert_eq!(body, want);
        let back = RecordDecoder::new(&record_columns(&data))
            .decode(&body)
            .unwrap();
        assert_eq!(back.batch.num_rows(), 1);
    }
}
