//! SQL query results through the instance tunnel: run a `SELECT`, then read
//! its rows as a download session on the instance
//! (`POST /projects/{p}/instances/{id}?downloads`, then
//! `GET …?data&downloadid=…&rowrange=(start,count)` on the Tunnel), in the
//! protobuf record format, which carries every value MaxCompute holds.
//!
//! This is how primary-key Delta tables are read: the service serves them
//! through SQL (pyodps's `Table.open_reader` on such a table silently runs
//! `SELECT * FROM t [WHERE pt='x']` and reads the instance's result), and a
//! query sees the merged state, per key the last committed row.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(client: odps_tunnel::Client) -> odps_tunnel::Result<()> {
//! let result = client.query_records("SELECT * FROM users WHERE pt='20240101'").await?;
//! println!("{} rows of {:?}", result.batch.num_rows(), result.columns);
//! # Ok(())
//! # }
//! ```

use arrow_array::RecordBatch;
use hyper::Method;

use crate::encode::proto::RecordDecoder;
use crate::error::{Error, Result};
use crate::rest::{Client, Plane, encode_component};
use crate::session::{DownloadSessionInfo, TUNNEL_VERSION, TUNNEL_VERSION_HEADER};
use crate::types::{Column, TimestampForm, arrow_schema_in};

/// Rows read per request.
const ROWS_PER_READ: u64 = 100_000;

/// A query's result set.
#[derive(Clone, Debug)]
pub struct QueryResult {
    /// The SQL instance that ran it.
    pub instance_id: String,
    /// The result columns (for `SELECT *` on a partitioned table: the data
    /// columns, then the partition columns).
    pub columns: Vec<Column>,
    /// The rows; `timestamp` and `timestamp_ntz` columns as
    /// [`crate::types::sec_nano_type`] structs.
    pub batch: RecordBatch,
}

impl Client {
    /// Runs a query and reads its whole result through the instance tunnel.
    ///
    /// # Errors
    ///
    /// As [`Client::run_sql`], then server, transport and decode errors of
    /// the download.
    pub async fn query_records(&self, sql: &str) -> Result<QueryResult> {
        let id = self.create_instance(sql).await?;
        self.wait_instance(&id).await?;
        let path = format!(
            "{}/instances/{}",
            self.project_path(),
            encode_component(&id)
        );
        let headers = [(TUNNEL_VERSION_HEADER, TUNNEL_VERSION)];
        let mut params = vec![("downloads", None)];
        if let Some(q) = &self.options().quota_name {
            params.push(("quotaName", Some(q.as_str())));
        }
        let response = self
            .request(Plane::Tunnel, Method::POST, &path, &params, &headers, None)
            .await?;
        let info: DownloadSessionInfo = serde_json::from_slice(&response.body)
            .map_err(|e| Error::protocol(format!("instance download session JSON: {e}")))?;
        let columns = info.schema.data_columns();
        let decoder = RecordDecoder::new(&columns).with_timestamp_form(TimestampForm::SecNano);
        let mut batches = Vec::new();
        let mut start = 0;
        while start < info.record_count {
            let count = (info.record_count - start).min(ROWS_PER_READ);
            let range = format!("({start},{count})");
            let params = [
                ("data", None),
                ("downloadid", Some(info.id.as_str())),
                ("rowrange", Some(range.as_str())),
            ];
            let body = self
                .get(Plane::Tunnel, &path, &params, &headers)
                .await?
                .body;
            batches.push(decoder.decode(&body)?.batch);
            start += count;
        }
        let schema = arrow_schema_in(&columns, TimestampForm::SecNano);
        let batch = arrow_select::concat::concat_batches(&schema, &batches)?;
        Ok(QueryResult {
            instance_id: id,
            columns,
            batch,
        })
    }
}
