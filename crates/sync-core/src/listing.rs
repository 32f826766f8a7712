//! What a task selects and where each table and column lands
//! (`sync-cli tables`): computed from the task file and the source's
//! schemas by the same rules every phase uses ([`crate::naming`],
//! [`crate::mapping`]), without writing anything.

use crate::config::{DestinationConfig, TaskConfig};
use crate::mapping::{self, TypeSystem};
use crate::schema_history::TrackedTable;
use serde::Serialize;

/// One selected source table.
#[derive(Clone, Debug, Serialize)]
pub struct TableListing {
    /// `db.table` in the source.
    pub source: String,
    /// The destination's `t_base`.
    pub base: String,
    /// The destination's `t_log`.
    pub log: String,
    /// The mirror table (`[destination] mirror`), `None` without one (off,
    /// or a table without a key).
    pub mirror: Option<String>,
    /// `t_log`'s partition columns.
    pub log_partitions: Vec<String>,
    /// The destination names of the row key (primary key, else a NOT NULL
    /// unique key); empty for a table without one (merged as a multiset).
    pub key: Vec<String>,
    /// The server's row estimate (`information_schema.TABLES.TABLE_ROWS`).
    pub rows_estimate: Option<u64>,
    /// Every source column, synced or not, in the source's order.
    pub columns: Vec<ColumnListing>,
    /// The row filter, as the task file writes it.
    pub filter: Option<String>,
    /// Names that did not land as the source spells them: task-file
    /// renames, the capitalization policy, and the escape of characters
    /// MaxCompute does not take.
    pub renamed: Vec<String>,
}

/// One source column.
#[derive(Clone, Debug, Serialize)]
pub struct ColumnListing {
    /// Its name in the source.
    pub source: String,
    /// Its MySQL type, as `COLUMN_TYPE` prints it.
    pub source_type: String,
    /// Its destination name; `None` when `[objects.tables] columns` leaves
    /// it out.
    pub dest: Option<String>,
    /// Its destination type: the MaxCompute type (in the task's type
    /// system), or for the local warehouse the Arrow type of its Parquet
    /// column.
    pub dest_type: Option<String>,
}

/// The listing of `tracked` (the task's selected tables) for `cfg`;
/// `estimates` by `db.table`.
pub fn list(
    cfg: &TaskConfig,
    tracked: &[TrackedTable],
    estimates: &std::collections::HashMap<String, u64>,
) -> Vec<TableListing> {
    let meta = cfg.sync.naming_rule.meta_columns();
    let naming = crate::naming::Naming::new(&cfg.objects);
    let system = match &cfg.destination {
        DestinationConfig::Maxcompute(mc) => Some(mc.type_system),
        DestinationConfig::Local { .. } | DestinationConfig::Embedded => None,
    };
    let mirror = matches!(&cfg.destination, DestinationConfig::Maxcompute(mc) if mc.mirror);
    let partitions: Vec<String> =
        crate::records::LogPartitioning::new(cfg.sync.log_partitions.iter().copied())
            .levels()
            .iter()
            .map(|&l| cfg.sync.naming_rule.partition_column(l))
            .collect();
    tracked
        .iter()
        .map(|t| {
            let synced = t.synced(&meta);
            let columns = t
                .source
                .columns
                .iter()
                .zip(&t.lands_in)
                .map(|(c, dest)| {
                    let field = dest.as_ref().and_then(|d| {
                        synced
                            .base_schema
                            .fields()
                            .iter()
                            .find(|f| f.name() == d)
                            .cloned()
                    });
                    ColumnListing {
                        source: c.name.clone(),
                        source_type: c.column_type_text.clone(),
                        dest: dest.clone(),
                        dest_type: field.map(|f| dest_type(&f, system)),
                    }
                })
                .collect();
            TableListing {
                source: t.source_name(),
                base: synced.base_table(),
                log: synced.log_table(),
                mirror: crate::mirror::Mirror::name_of(&synced).filter(|_| mirror),
                log_partitions: partitions.clone(),
                key: synced.dest_key().into_iter().map(str::to_owned).collect(),
                rows_estimate: estimates.get(&t.source_name()).copied(),
                columns,
                filter: t.filter.clone(),
                renamed: naming.renamed(&t.source),
            }
        })
        .collect()
}

fn dest_type(field: &arrow_schema::Field, system: Option<TypeSystem>) -> String {
    match system {
        Some(system) => mapping::odps_type_in(field, system)
            .map(|t| t.to_string())
            .unwrap_or_else(|e| format!("(none: {e})")),
        None => mapping::parquet_type(field).to_string(),
    }
}

/// The listing as text: one block per table.
pub fn render(tables: &[TableListing]) -> String {
    let mut out = String::new();
    for t in tables {
        let rows = t
            .rows_estimate
            .map_or_else(|| "rows unknown".to_owned(), |n| format!("~{n} rows"));
        let key = if t.key.is_empty() {
            "no key: merged as a multiset".to_owned()
        } else {
            format!("key ({})", t.key.join(", "))
        };
        out.push_str(&format!(
            "{} → {} / {}{}  [{key}; {rows}]\n",
            t.source,
            t.base,
            t.log,
            if t.log_partitions.is_empty() {
                String::new()
            } else {
                format!(" (partitioned by {})", t.log_partitions.join(", "))
            }
        ));
        if let Some(m) = &t.mirror {
            out.push_str(&format!("  mirror: {m}\n"));
        }
        if let Some(f) = &t.filter {
            out.push_str(&format!("  filter: {f}\n"));
        }
        for r in &t.renamed {
            out.push_str(&format!("  renamed: {r}\n"));
        }
        for c in &t.columns {
            match (&c.dest, &c.dest_type) {
                (Some(d), Some(ty)) => {
                    out.push_str(&format!(
                        "  {:<24} {:<20} → {d} {ty}\n",
                        c.source, c.source_type
                    ));
                }
                _ => out.push_str(&format!(
                    "  {:<24} {:<20} (not synced: [objects.tables] columns)\n",
                    c.source, c.source_type
                )),
            }
        }
    }
    let n = tables.len();
    out.push_str(&format!(
        "{n} table{} selected\n",
        if n == 1 { "" } else { "s" }
    ));
    out
}
