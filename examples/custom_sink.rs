//! Embeds the sync task with a destination of one's own: a `Sink` that
//! keeps each table as Arrow IPC files, one folder per commit unit, made
//! visible by a marker written last. The settings are built in code
//! (`TaskBuilder`), with no `[destination]`: the sink passed to
//! `TaskRunner::new` is the destination. `verify` then compares the source
//! with what the sink reads back.
//!
//! ```text
//! scripts/mysql-sandbox up && cargo run -p sync-cli -- demo-data | mariadb -h127.0.0.1 -P3307 -uroot
//! cargo run -p sync-examples --example custom_sink -- mysql://root@127.0.0.1:3307 shop ./arrow-out
//! ```
//!
//! What a sink owes the task (see `sync_core::sink`): `commit_unit` is
//! idempotent per unit name and all-or-nothing (a crash mid-unit leaves
//! nothing a reader sees, and the same unit is committed again after a
//! restart), `is_committed` says whether a unit landed, and `read_table`
//! returns every committed row in the schema asked for.

use arrow_array::{RecordBatch, new_null_array};
use arrow_schema::{Field, SchemaRef};
use std::path::{Path, PathBuf};
use sync_core::builder::TaskBuilder;
use sync_core::config::SyncType;
use sync_core::run::{RunOptions, TaskRunner};
use sync_core::sink::{Sink, TableBatch, TableDef};
use sync_core::{Error, Result};

/// Arrow IPC files under a root: `<table>/<unit>/<n>.arrow`, and
/// `_committed/<unit>` once every file of the unit is in place.
struct ArrowFiles {
    root: PathBuf,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    // `Error::io` decides whether the failure may heal (a full disk) or
    // not (a folder the task may not write) from the kind of `source`.
    move |source| Error::io(action, path, source)
}

impl ArrowFiles {
    fn marker(&self, unit: &str) -> PathBuf {
        self.root.join("_committed").join(unit)
    }

    /// Writes `batch` to `path` through a temporary file, so a reader never
    /// sees half a file.
    fn write_file(path: &Path, batch: &RecordBatch) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let file = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
        let mut writer = arrow_ipc::writer::FileWriter::try_new(file, &batch.schema())?;
        writer.write(batch)?;
        writer.finish()?;
        std::fs::rename(&tmp, path).map_err(io("renaming", &tmp))
    }

    /// The rows of one file in `schema`'s columns: a column the file lacks
    /// (added later) reads NULL.
    fn read_file(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let file = std::fs::File::open(path).map_err(io("opening", path))?;
        let reader = arrow_ipc::reader::FileReader::try_new(file, None)?;
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch?;
            let columns = schema
                .fields()
                .iter()
                .map(|f| match batch.column_by_name(f.name()) {
                    Some(c) => c.clone(),
                    None => new_null_array(f.data_type(), batch.num_rows()),
                })
                .collect();
            out.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Sink for ArrowFiles {
    async fn table_exists(&self, name: &str) -> Result<bool> {
        Ok(self.root.join(name).is_dir())
    }

    async fn ensure_table(&self, def: &TableDef) -> Result<()> {
        let dir = self.root.join(&def.name);
        std::fs::create_dir_all(&dir).map_err(io("creating", &dir))
    }

    async fn commit_unit(&self, unit: &str, data: Vec<TableBatch>) -> Result<()> {
        if self.is_committed(unit).await? {
            return Ok(());
        }
        for (n, part) in data.iter().enumerate() {
            let dir = self.root.join(&part.table).join(unit);
            std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
            // Partition values (t_log's modifytime columns) go into the name.
            let name = match part.partition.is_empty() {
                true => format!("{n}.arrow"),
                false => format!("{n}-{}.arrow", part.partition.join("-")),
            };
            Self::write_file(&dir.join(name), &part.batch)?;
        }
        let marker = self.marker(unit);
        let dir = self.root.join("_committed");
        std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        std::fs::write(&marker, b"").map_err(io("writing", &marker))
    }

    async fn is_committed(&self, unit: &str) -> Result<bool> {
        Ok(self.marker(unit).exists())
    }

    async fn add_columns(&self, _table: &str, _columns: &[Field]) -> Result<()> {
        // Each file carries its own schema; `read_file` fills the gaps.
        Ok(())
    }

    async fn read_table(&self, name: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let dir = self.root.join(name);
        let mut out = Vec::new();
        for unit in std::fs::read_dir(&dir).map_err(io("listing", &dir))? {
            let unit = unit.map_err(io("listing", &dir))?;
            // Files of a unit that never finished are not the table's rows.
            if !self.marker(&unit.file_name().to_string_lossy()).exists() {
                continue;
            }
            let files = std::fs::read_dir(unit.path()).map_err(io("listing", &unit.path()))?;
            for file in files {
                let path = file.map_err(io("listing", &unit.path()))?.path();
                if path.extension().is_some_and(|e| e == "arrow") {
                    out.extend(Self::read_file(&path, schema)?);
                }
            }
        }
        Ok(out)
    }
}

/// Syncs database `db` of the server at `url` into Arrow files under `out`
/// until caught up, then verifies them against the source: an error if any
/// table differs.
pub(crate) async fn sync_to_arrow_files(
    url: &str,
    db: &str,
    out: &Path,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let cfg = TaskBuilder::new(url, 5598)
        .include([format!("{db}.*")])
        .types([SyncType::Schema, SyncType::Full, SyncType::Incremental])
        .state_dir(out.join("state"))
        .build()?;
    let sink = ArrowFiles {
        root: out.join("tables"),
    };
    let runner = TaskRunner::new(cfg, sink)?;
    let opts = RunOptions {
        exit_when_caught_up: true,
        ..RunOptions::default()
    };
    let state = runner.run(&opts).await?;
    println!("synced to {}: phase {}", out.display(), state.phase.name());
    let mut equal = true;
    for report in runner.verify().await? {
        println!(
            "{}: {} source rows, {} in the Arrow files, equal: {}",
            report.table,
            report.source_rows,
            report.destination_rows,
            report.is_equal()
        );
        equal &= report.is_equal();
    }
    if !equal {
        return Err("the Arrow files differ from the source".into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3307".into());
    let db = args.next().unwrap_or_else(|| "shop".into());
    let out = PathBuf::from(args.next().unwrap_or_else(|| "./arrow-out".into()));
    sync_to_arrow_files(&url, &db, &out).await
}
