//! Embeds the sync task with a transform (DTS's ETL step): customers' email
//! addresses are masked and customers from one country are left out, in the
//! full phase and in every change alike. `verify` applies the same transform
//! to the source, so it still proves the destination complete.
//!
//! ```text
//! scripts/mysql-sandbox up && cargo run -p sync-cli -- demo-data | mariadb -h127.0.0.1 -P3307 -uroot
//! cargo run -p sync-examples --example transform -- mysql://root@127.0.0.1:3307 shop ./warehouse-masked
//! ```

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use std::sync::Arc;
use sync_core::builder::TaskBuilder;
use sync_core::config::SyncType;
use sync_core::run::{RunOptions, SyncedTable, TaskRunner};
use sync_core::sink::local::LocalWarehouse;
use sync_core::transform::{Transform, Transformed};

/// Masks `email` to its domain and drops customers whose `country` is `XX`.
struct MaskEmails;

impl Transform for MaskEmails {
    fn apply(&self, table: &SyncedTable, rows: RecordBatch) -> sync_core::Result<Transformed> {
        let n = rows.num_rows();
        let schema = rows.schema();
        let (Ok(email), Ok(country)) = (schema.index_of("email"), schema.index_of("country"))
        else {
            // Other tables pass unchanged.
            let keep = BooleanArray::from(vec![true; n]);
            return Ok(Transformed { rows, keep });
        };
        let masked: StringArray = rows
            .column(email)
            .as_string::<i32>()
            .iter()
            .map(|e| e.map(|e| format!("***@{}", e.rsplit('@').next().unwrap_or(""))))
            .collect();
        let keep: BooleanArray = rows
            .column(country)
            .as_string::<i32>()
            .iter()
            .map(|c| Some(c != Some("XX")))
            .collect();
        let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
        columns[email] = Arc::new(masked);
        tracing::debug!(table = %table.source_name, rows = n, "masked");
        Ok(Transformed {
            rows: RecordBatch::try_new(schema, columns)?,
            keep,
        })
    }
}

/// Syncs `db.customers` of the server at `url` into a local warehouse under
/// `out`, emails masked, until caught up; then verifies it against the
/// source read through the same transform, an error if they differ.
pub(crate) async fn sync_masked(
    url: &str,
    db: &str,
    out: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = TaskBuilder::new(url, 5599)
        .include([format!("{db}.customers")])
        .types([SyncType::Schema, SyncType::Full, SyncType::Incremental])
        .state_dir(out.join("state"))
        .build()?;
    let runner = TaskRunner::new(cfg, LocalWarehouse::new(out.join("warehouse")))?
        .with_transform(Arc::new(MaskEmails));
    let opts = RunOptions {
        exit_when_caught_up: true,
        ..RunOptions::default()
    };
    let state = runner.run(&opts).await?;
    println!("synced to {}: phase {}", out.display(), state.phase.name());
    let mut equal = true;
    for report in runner.verify().await? {
        println!(
            "{}: {} source rows after the transform, {} in the destination, equal: {}",
            report.table,
            report.source_rows,
            report.destination_rows,
            report.is_equal()
        );
        equal &= report.is_equal();
    }
    if !equal {
        return Err("the warehouse differs from the transformed source".into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3307".into());
    let db = args.next().unwrap_or_else(|| "shop".into());
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| "./warehouse-masked".into()));
    sync_masked(&url, &db, &out).await
}
