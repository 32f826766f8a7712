//! Uploads an Arrow `RecordBatch` into a MaxCompute table with `odps-tunnel`
//! alone: create the table over the REST API, open a Tunnel upload session
//! on a partition, stream the batch through the Arrow block writer, commit
//! the blocks, then read the row count back (SQL `COUNT(*)`, and a download
//! session). No sync task and no MySQL.
//!
//! Against the local emulator (or a real endpoint and project); the
//! AccessKey comes from the environment, as the Alibaba Cloud SDKs take it:
//!
//! ```text
//! cargo run -p odps-emulator -- --data ./emulator-data --port 8080 --access-id AK --access-key SK &
//! export ALIBABA_CLOUD_ACCESS_KEY_ID=AK ALIBABA_CLOUD_ACCESS_KEY_SECRET=SK
//! cargo run -p sync-examples --example upload_arrow -- http://127.0.0.1:8080/api demo
//! ```
//!
//! An upload session's blocks stay invisible until its commit, which makes
//! all of them visible at once; a program that dies before the commit
//! leaves nothing behind (persist `session.id()` to resume instead).

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use odps_tunnel::Client;
use odps_tunnel::auth::Credentials;
use odps_tunnel::session::PartitionSpec;
use odps_tunnel::writer::{UploadOptions, WriterOptions};

/// The table the example writes.
const TABLE: &str = "page_views";

/// Uploads three rows into `page_views`, partition `ds=20240101`, and
/// returns how many rows that partition holds afterwards.
pub(crate) async fn upload(client: &Client) -> Result<u64, Box<dyn std::error::Error>> {
    client
        .run_sql(&format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (user_id BIGINT, url STRING, seen_at TIMESTAMP) \
             PARTITIONED BY (ds STRING)"
        ))
        .await?;

    // Arrow columns in the table's order, with MaxCompute's types (see
    // `odps_tunnel::types` for the mapping); TIMESTAMP takes any unit.
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, true),
        Field::new("url", DataType::Utf8, true),
        Field::new(
            "seen_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 1])),
            Arc::new(StringArray::from(vec!["/", "/pricing", "/docs"])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    1_704_067_200_000_000,
                    1_704_067_260_500_000,
                    1_704_067_321_000_000,
                ])
                .with_timezone("UTC"),
            ),
        ],
    )?;

    let ds: PartitionSpec = "ds=20240101".parse()?;
    let options = UploadOptions {
        create_partition: true,
        ..UploadOptions::default()
    };
    let session = client
        .create_upload_session(TABLE, Some(&ds), &options)
        .await?;
    println!("upload session {}", session.id());
    let mut writer = session.arrow_writer(WriterOptions::default());
    writer.write(&batch).await?;
    let receipts = writer.finish().await?;
    let blocks: Vec<_> = receipts.iter().map(|r| r.block_id).collect();
    // Nothing is visible before this; after it, every block at once.
    session.commit(&blocks).await?;
    println!(
        "committed {} rows in {} block(s)",
        batch.num_rows(),
        blocks.len()
    );

    // Read back: SQL answers with CSV text (a header, then the count) ...
    let result = client
        .run_sql(&format!("SELECT COUNT(*) FROM {TABLE} WHERE ds='20240101'"))
        .await?;
    let counted: u64 = result
        .lines()
        .last()
        .ok_or("empty COUNT(*) result")?
        .trim_matches('"')
        .parse()?;
    // ... and a download session knows its record count before reading.
    let download = client.create_download_session(TABLE, Some(&ds)).await?;
    let read: usize = download
        .read_arrow(0, download.record_count())
        .await?
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    println!("{TABLE} partition {ds}: COUNT(*) = {counted}, downloaded {read} rows");
    if read as u64 != counted {
        return Err(format!("COUNT(*) says {counted} rows, the download read {read}").into());
    }
    Ok(counted)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: upload_arrow ENDPOINT PROJECT (AccessKey in ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET)";
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().ok_or(usage)?;
    let project = args.next().ok_or(usage)?;
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set; {usage}"));
    let access_id = env("ALIBABA_CLOUD_ACCESS_KEY_ID")?;
    let access_key = env("ALIBABA_CLOUD_ACCESS_KEY_SECRET")?;
    let client = Client::new(&endpoint, &project, Credentials::new(access_id, access_key))?;
    upload(&client).await?;
    Ok(())
}
