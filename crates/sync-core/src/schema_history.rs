//! The schemas of the synced tables in force at each binlog position.
//!
//! A row image carries values by position only, so it can be read only with
//! the table's schema *of its time*, not the one `information_schema` shows
//! now (which may be ahead of the binlog position being read). The task
//! therefore tracks, per synced table, a [`TrackedTable`]: the source
//! columns in row-image order, the destination column each lands in, and
//! the destination's own columns. The set of them, a [`SchemaSet`], starts
//! from `information_schema` when the incremental phase begins and from then
//! on changes only with the DDL read from the binlog ([`SchemaSet::plan`],
//! under the task's `[sync.ddl]` policy); every TABLE_MAP event of a tracked
//! table is checked against it ([`TrackedTable::check_map`]), so a schema
//! change the task missed stops it with an error instead of mis-mapping rows.
//!
//! # Persistence
//!
//! Each set is saved as a generation, `<state_dir>/schemas/<generation>.json`
//! (versioned, written atomically like the checkpoint), *before* the
//! checkpoint's [`crate::machine::Step::SchemaChanged`] names it together
//! with the position after the DDL. A crash in between leaves the old
//! generation in force at the old position; the DDL is read again and the
//! same generation rewritten. A restart loads the generation the checkpoint
//! names, never `information_schema`.

use crate::checkpoint::CheckpointStore;
use crate::config::{DdlAction, DdlConfig, DdlKind};
use crate::ddl::{
    AlterSpec, ColumnDef, ColumnPosition, KeyKind, Statement, TableDefinition, TableName,
};
use crate::error::{Error, Result};
use crate::filter::RowFilter;
use crate::mapping;
use crate::naming::{Naming, SyncedTable};
use crate::records::MetaColumns;
use arrow_schema::{Field, Schema};
use binlog_parser::TableMap;
use mysql_source::schema::{ColumnSchema, ColumnType, TableSchema};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod online;

/// A destination business column and the source column definition it was
/// created from (which decides its MaxCompute type).
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct DestColumn {
    /// Destination name.
    pub name: String,
    /// The source column as it was when the destination column was created.
    pub column: ColumnSchema,
}

/// A destination column added by an `ADD COLUMN` during the incremental phase.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct AddedColumn {
    /// Destination name.
    pub column: String,
    /// The first `record_id` written after the `ALTER TABLE`: rows whose
    /// last record is older hold NULL there (MaxCompute does not backfill),
    /// whatever default the source shows for them.
    pub first_record_id: u64,
    /// Under `[sync.ddl] rewritten_rows = "default"`: the column's constant
    /// default (as text), which merges fill in for those rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Under `rewritten_rows = "resnapshot"`: those rows need a new
    /// baseline generation read after the `ALTER`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resnapshot: bool,
}

/// One synced table as of a binlog position.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct TrackedTable {
    /// The source table: every column, in row-image order.
    pub source: TableSchema,
    /// Per source column (same order), the destination column it lands in;
    /// `None` when it is not synced.
    pub lands_in: Vec<Option<String>>,
    /// Destination name stem (`t` of `t_base` / `t_log`).
    pub dest: String,
    /// The destination's business columns, in the destination's order.
    pub dest_columns: Vec<DestColumn>,
    /// Destination columns added during the incremental phase.
    #[serde(default)]
    pub added: Vec<AddedColumn>,
    /// The task file's row filter, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

impl TrackedTable {
    /// `db.table` of the source.
    pub fn source_name(&self) -> String {
        format!("{}.{}", self.source.database, self.source.table)
    }

    /// The row filter compiled against the destination columns (found by
    /// their source names). Destination columns are only ever added, never
    /// removed or retyped, so a filter that compiled once compiles against
    /// every later generation.
    ///
    /// # Errors
    /// The compiler's message.
    pub fn compile_filter(&self) -> std::result::Result<Option<RowFilter>, String> {
        let Some(text) = &self.filter else {
            return Ok(None);
        };
        let fields: Vec<Field> = self
            .dest_columns
            .iter()
            .map(|d| mapping::arrow_field(&d.column).with_name(&d.name))
            .collect();
        RowFilter::compile(text, &Schema::new(fields), |name| {
            self.dest_columns
                .iter()
                .position(|d| d.column.name.eq_ignore_ascii_case(name))
        })
        .map(Some)
    }

    /// The table as the task reads and writes it.
    pub fn synced(&self, meta: &MetaColumns) -> SyncedTable {
        let image_columns: Vec<usize> = self
            .lands_in
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.as_ref().map(|_| i))
            .collect();
        let mut projected = self.source.clone();
        projected.columns = image_columns
            .iter()
            .filter_map(|&i| self.source.columns.get(i).cloned())
            .collect();
        let feeds: Vec<Option<usize>> = self
            .dest_columns
            .iter()
            .map(|d| {
                image_columns
                    .iter()
                    .position(|&i| self.lands_in[i].as_deref() == Some(d.name.as_str()))
            })
            .collect();
        let fields: Vec<Field> = self
            .dest_columns
            .iter()
            .zip(&feeds)
            .map(|(d, feed)| {
                let nullable = feed
                    .and_then(|k| projected.columns.get(k))
                    .is_none_or(|c| c.nullable);
                mapping::arrow_field(&d.column)
                    .with_name(&d.name)
                    .with_nullable(nullable)
            })
            .collect();
        let mut log_fields = meta.fields();
        log_fields.extend(fields.iter().cloned());
        SyncedTable {
            source_column_count: self.source.columns.len(),
            image_columns,
            source_name: self.source_name(),
            dest: self.dest.clone(),
            schema: Arc::new(projected),
            base_schema: Arc::new(Schema::new(fields)),
            log_schema: Arc::new(Schema::new(log_fields)),
            feeds,
            filter: self.compile_filter().ok().flatten().map(Arc::new),
        }
    }

    /// Whether a TABLE_MAP describes the rows this schema expects: the same
    /// number of columns, the same names (when the binlog carries them,
    /// `binlog_row_metadata = FULL`), compatible types, signedness and
    /// text/binary character sets.
    ///
    /// # Errors
    /// A message saying what differs.
    pub fn check_map(&self, map: &TableMap) -> std::result::Result<(), String> {
        let ours = &self.source.columns;
        let names = |it: &mut dyn Iterator<Item = String>| it.collect::<Vec<_>>().join(", ");
        if map.columns.len() != ours.len() {
            let theirs = if map.columns.iter().all(|c| c.name.is_some()) {
                format!(
                    " ({})",
                    names(&mut map.columns.iter().filter_map(|c| c.name.clone()))
                )
            } else {
                String::new()
            };
            return Err(format!(
                "its row images have {} columns{theirs}, the schema tracked for this position has {} ({})",
                map.columns.len(),
                ours.len(),
                names(&mut ours.iter().map(|c| c.name.clone()))
            ));
        }
        for (i, (col, tm)) in ours.iter().zip(&map.columns).enumerate() {
            if let Some(name) = &tm.name
                && !name.eq_ignore_ascii_case(&col.name)
            {
                return Err(format!(
                    "column {} is `{name}` in the row images, `{}` in the schema tracked for this position",
                    i + 1,
                    col.name
                ));
            }
            if let Some(why) = incompatible(col, tm, map.columns.iter().any(|c| c.name.is_some())) {
                return Err(format!(
                    "column `{}` ({}) is logged as {:?}{why}",
                    col.name, col.column_type_text, tm.kind
                ));
            }
        }
        Ok(())
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.source
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The source index a position puts a column at; `default` without one.
    fn place(
        &self,
        position: Option<&ColumnPosition>,
        default: usize,
    ) -> std::result::Result<usize, String> {
        match position {
            None => Ok(default),
            Some(ColumnPosition::First) => Ok(0),
            Some(ColumnPosition::After(name)) => {
                self.index_of(name).map(|i| i + 1).ok_or_else(|| {
                    format!(
                        "AFTER names `{name}`, which the tracked schema of {} does not have",
                        self.source_name()
                    )
                })
            }
        }
    }

    fn insert(&mut self, at: usize, column: ColumnSchema, lands: Option<String>) {
        let at = at.min(self.source.columns.len());
        self.source.columns.insert(at, column);
        self.lands_in.insert(at, lands);
        self.renumber();
    }

    fn remove(&mut self, i: usize) -> (ColumnSchema, Option<String>) {
        let col = self.source.columns.remove(i);
        let lands = self.lands_in.remove(i);
        self.renumber();
        (col, lands)
    }

    fn renumber(&mut self) {
        for (i, c) in self.source.columns.iter_mut().enumerate() {
            c.ordinal = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
    }

    /// A character set for a new character column given none: the table's,
    /// as far as its other columns tell.
    fn default_charset(&self) -> String {
        self.source
            .columns
            .iter()
            .filter_map(|c| c.charset.as_deref())
            .find(|c| *c != "binary")
            .unwrap_or("utf8mb4")
            .to_owned()
    }

    fn is_key_column(&self, name: &str) -> bool {
        self.source
            .row_key()
            .is_some_and(|k| k.iter().any(|c| c.eq_ignore_ascii_case(name)))
    }

    fn rename_in_keys(&mut self, from: &str, to: &str) {
        let keys = self.source.primary_key.iter_mut().chain(
            self.source
                .unique_keys
                .iter_mut()
                .flat_map(|k| k.columns.iter_mut()),
        );
        for k in keys {
            if k.eq_ignore_ascii_case(from) {
                *k = to.to_owned();
            }
        }
    }
}

/// Why a table-map column cannot hold values of `col`, if it cannot.
fn incompatible(col: &ColumnSchema, tm: &binlog_parser::Column, full: bool) -> Option<String> {
    use binlog_parser::ColumnType as B;
    let k = tm.kind;
    let time = |fsp: u8, old: B, new: B| k == old || (k == new && tm.fsp() == fsp);
    let ok = match &col.column_type {
        ColumnType::TinyInt => k == B::Tiny,
        ColumnType::SmallInt => k == B::Short,
        ColumnType::MediumInt => k == B::Int24,
        ColumnType::Int => k == B::Long,
        ColumnType::BigInt => k == B::LongLong,
        ColumnType::Decimal { precision, scale } => {
            k == B::Decimal || tm.decimal_precision_scale() == Some((*precision, *scale))
        }
        ColumnType::Float => k == B::Float,
        ColumnType::Double => k == B::Double,
        ColumnType::Bit { width } => tm.bit_width() == Some(u32::from(*width)),
        ColumnType::Year => k == B::Year,
        ColumnType::Date => matches!(k, B::Date | B::NewDate),
        ColumnType::Time { fsp } => time(*fsp, B::Time, B::Time2),
        ColumnType::DateTime { fsp } => time(*fsp, B::DateTime, B::DateTime2),
        ColumnType::Timestamp { fsp } => time(*fsp, B::Timestamp, B::Timestamp2),
        ColumnType::Char { .. } | ColumnType::Binary { .. } => k == B::String,
        ColumnType::VarChar { .. } | ColumnType::VarBinary { .. } => {
            matches!(k, B::VarChar | B::VarString | B::VarCharCompressed)
        }
        ColumnType::Text { .. } | ColumnType::Blob { .. } => matches!(
            k,
            B::Blob | B::TinyBlob | B::MediumBlob | B::LongBlob | B::BlobCompressed
        ),
        ColumnType::Enum(members) | ColumnType::Set(members) => {
            let kind = if matches!(col.column_type, ColumnType::Enum(_)) {
                B::Enum
            } else {
                B::Set
            };
            if k != kind {
                false
            } else if !tm.members.is_empty()
                && (tm.members.len() != members.len()
                    // The binlog has them in the column's character set:
                    // compared only when that cannot differ from UTF-8.
                    || (tm.members.iter().flatten().all(|b| (0x20..0x7f).contains(b))
                        && tm
                            .members
                            .iter()
                            .zip(members)
                            .any(|(a, b)| a.as_slice() != b.as_bytes())))
            {
                return Some(": its members differ".into());
            } else {
                true
            }
        }
        // MariaDB's JSON is a LONGTEXT.
        ColumnType::Json => matches!(k, B::Json | B::Blob),
        ColumnType::Geometry(_) => k == B::Geometry,
        _ => true,
    };
    if !ok {
        return Some(String::new());
    }
    // Signedness is logged with the names (binlog_row_metadata = FULL).
    if full && col.column_type.is_integer() && tm.unsigned != col.unsigned {
        return Some(format!(
            ": {} in the row images",
            if tm.unsigned { "unsigned" } else { "signed" }
        ));
    }
    let text_type = matches!(
        col.column_type,
        ColumnType::Char { .. } | ColumnType::VarChar { .. } | ColumnType::Text { .. }
    );
    let binary_type = matches!(
        col.column_type,
        ColumnType::Binary { .. } | ColumnType::VarBinary { .. } | ColumnType::Blob { .. }
    );
    if let Some(cs) = tm.charset {
        let ours_binary =
            binary_type || (text_type && col.charset.as_deref().is_none_or(|c| c == "binary"));
        if (text_type || binary_type) && (cs == BINARY_COLLATION) != ours_binary {
            return Some(format!(
                ": {} in the row images",
                if cs == BINARY_COLLATION {
                    "binary"
                } else {
                    "text"
                }
            ));
        }
    }
    None
}

/// The collation id of the `binary` character set.
const BINARY_COLLATION: u32 = 63;

/// The tracked tables as of one binlog position, by source `db.table`.
#[derive(Clone, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
pub struct SchemaSet {
    /// The tables.
    pub tables: BTreeMap<String, TrackedTable>,
    /// Shadow tables of online schema changes under way, by `db.table`
    /// (tracked, never synced: [`crate::osc`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shadows: BTreeMap<String, crate::osc::Shadow>,
    /// A synced table moved away while a shadow exists: a cut-over's first
    /// half, until the next DDL decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<crate::osc::Held>,
}

/// What a DDL statement means for the synced tables.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// No tracked schema changes (a statement about other tables, an
    /// alteration without effect on rows, or one the policy ignores without
    /// schema effect); `notes` say what was ignored.
    Unchanged {
        /// Log lines about ignored changes.
        notes: Vec<String>,
    },
    /// The tracked schemas change; the destination tables get these columns.
    Changed {
        /// The set in force after the statement.
        next: SchemaSet,
        /// Destination tables and the columns to add to each.
        add_columns: ColumnAdds,
        /// Tables created by the statement that the task now syncs
        /// (`db.table` keys of `next`): their destination tables are made.
        created: Vec<String>,
        /// Log lines about ignored changes.
        notes: Vec<String>,
    },
    /// The task must stop at the statement.
    Stop {
        /// Why: the change and the policy key, or why it cannot be followed.
        message: String,
    },
    /// A data change to synced tables written as a statement (its session
    /// logged in `STATEMENT` format): no rows events carry its changes, so
    /// the task stops at it or, under `[sync] unsupported_events = "skip"`,
    /// skips it knowingly.
    StatementLogged {
        /// The tables it writes that the task syncs (or, for `CREATE TABLE
        /// … SELECT`, would start to sync), `db.table`; a note instead when
        /// the statement's tables cannot be read.
        tables: Vec<String>,
        /// `INSERT`, `UPDATE`, … ([`crate::ddl::DmlKind::as_str`]).
        kind: &'static str,
        /// What the statement does besides as DDL (`CREATE TABLE … SELECT`
        /// creates its table), else [`Plan::Unchanged`].
        then: Box<Plan>,
    },
}

/// Destination tables and the columns to add to each, in order.
pub type ColumnAdds = Vec<(String, Vec<Field>)>;

/// What [`SchemaSet::plan`] needs besides the statement.
#[derive(Clone, Copy, Debug)]
pub struct PlanContext<'a> {
    /// `[sync.ddl]`.
    pub policy: &'a DdlConfig,
    /// The task's naming rules (new columns' names, column lists, include patterns).
    pub naming: &'a Naming,
    /// Metadata and partition column names, lower case: no business column may take them.
    pub reserved: &'a [String],
    /// The `record_id` the next change record will get.
    pub next_record_id: u64,
    /// Default character set per database (lower case names): what a new
    /// table's character columns get when its statement names none.
    pub database_charsets: &'a HashMap<String, String>,
    /// Tables being added to the task whose start the stream has not
    /// reached (`db.table`): untracked until then, never created by a DDL
    /// (their baseline is read as they are at their start).
    pub adding: &'a [String],
}

impl SchemaSet {
    /// The set of the given tables.
    pub fn new(tables: impl IntoIterator<Item = TrackedTable>) -> Self {
        Self {
            tables: tables.into_iter().map(|t| (t.source_name(), t)).collect(),
            ..Self::default()
        }
    }

    /// The key of a tracked table: exact, else the one matching without case.
    fn key_of(&self, t: &TableName) -> Option<String> {
        let exact = t.to_string();
        if self.tables.contains_key(&exact) {
            return Some(exact);
        }
        let mut folded = self
            .tables
            .keys()
            .filter(|k| k.eq_ignore_ascii_case(&exact));
        match (folded.next(), folded.next()) {
            (Some(k), None) => Some(k.clone()),
            _ => None,
        }
    }

    /// What `stmt` does to the tracked tables under `cx.policy`.
    pub fn plan(&self, stmt: &Statement, cx: &PlanContext<'_>) -> Plan {
        let mut w = Work {
            next: self.clone(),
            adds: Vec::new(),
            created: Vec::new(),
            notes: Vec::new(),
            cx,
        };
        let done = match w.online_ddl(stmt) {
            Some(done) => done,
            None => w.statement(stmt),
        }
        .and_then(|()| w.release_orphaned_hold());
        match done {
            Err(message) => Plan::Stop { message },
            Ok(()) if w.next == *self => Plan::Unchanged { notes: w.notes },
            Ok(()) => Plan::Changed {
                next: w.next,
                add_columns: w.adds,
                created: w.created,
                notes: w.notes,
            },
        }
    }
}

impl Work<'_, '_> {
    /// What `stmt` does to the tracked tables, online schema changes aside.
    fn statement(&mut self, stmt: &Statement) -> std::result::Result<(), Stop> {
        let w = self;
        match stmt {
            Statement::AlterTable { table, specs } => w.alter(table, specs),
            Statement::RenameTables(pairs) => {
                pairs.iter().try_for_each(|(from, to)| w.rename(from, to))
            }
            Statement::DropTables(tables) => {
                tables.iter().try_for_each(|t| w.drop(t, "drop table"))
            }
            Statement::Truncate(t) => w.truncate(t),
            Statement::CreateTable {
                table,
                if_not_exists,
                or_replace,
                definition,
            } => w.create(table, *if_not_exists, *or_replace, definition),
            Statement::CreateIndex { table, kind } => {
                w.with_table(table, |w, tt| w.key_added(tt, *kind))
            }
            Statement::DropIndex { table, name } => {
                w.with_table(table, |w, tt| w.key_dropped(tt, name))
            }
            Statement::DropDatabase(db) => {
                let tables: Vec<TableName> = w
                    .next
                    .tables
                    .values()
                    .filter(|t| t.source.database.eq_ignore_ascii_case(db))
                    .map(|t| TableName {
                        database: t.source.database.clone(),
                        table: t.source.table.clone(),
                    })
                    .collect();
                tables.iter().try_for_each(|t| w.drop(t, "drop database"))
            }
        }
    }
}

/// A plan being worked out: the next set, columns to add, notes.
struct Work<'a, 'c> {
    next: SchemaSet,
    adds: ColumnAdds,
    created: Vec<String>,
    notes: Vec<String>,
    cx: &'a PlanContext<'c>,
}

/// A reason to stop (the message of [`Plan::Stop`]).
type Stop = String;

impl Work<'_, '_> {
    /// The action for `kind`; `Err` (the stop message) when it is `stop`.
    fn decide(
        &mut self,
        kind: DdlKind,
        what: &str,
        ignored: &str,
    ) -> std::result::Result<DdlAction, Stop> {
        let (action, key) = self.cx.policy.action(kind);
        match action {
            DdlAction::Stop => {
                let choices = if kind == DdlKind::AddColumn {
                    format!(
                        "\"apply\" adds it to the destination tables, \"ignore\" goes on without it ({ignored})"
                    )
                } else {
                    format!("\"ignore\" goes on: {ignored}")
                };
                Err(format!(
                    "{what}: `sync.ddl.{}` is \"stop\" ({choices})",
                    key.key()
                ))
            }
            DdlAction::Ignore => {
                self.notes.push(format!(
                    "{what}: ignored (`sync.ddl.{}` = \"ignore\"): {ignored}",
                    key.key()
                ));
                Ok(DdlAction::Ignore)
            }
            DdlAction::Apply => Ok(DdlAction::Apply),
        }
    }

    fn cannot(what: &str, why: &str) -> Stop {
        format!("{what}: the task cannot follow it: {why}")
    }

    /// Runs `f` on the tracked table `t` (nothing when it is not tracked).
    fn with_table(
        &mut self,
        t: &TableName,
        f: impl FnOnce(&mut Self, &mut TrackedTable) -> std::result::Result<(), Stop>,
    ) -> std::result::Result<(), Stop> {
        let Some(key) = self.next.key_of(t) else {
            return Ok(());
        };
        let Some(mut tt) = self.next.tables.get(&key).cloned() else {
            return Ok(());
        };
        f(self, &mut tt)?;
        self.next.tables.insert(key, tt);
        Ok(())
    }

    fn alter(&mut self, table: &TableName, specs: &[AlterSpec]) -> std::result::Result<(), Stop> {
        let Some(key) = self.next.key_of(table) else {
            // An untracked table renamed to a name the task selects appears.
            for spec in specs {
                if let AlterSpec::RenameTable(to) = spec {
                    self.appeared(
                        to,
                        &format!("table {to} appears (renamed from {table})"),
                        None,
                    )?;
                }
            }
            return Ok(());
        };
        let Some(mut tt) = self.next.tables.remove(&key) else {
            return Ok(());
        };
        for spec in specs {
            self.spec(&mut tt, spec)?;
        }
        let new_key = tt.source_name();
        if new_key != key && self.next.tables.contains_key(&new_key) {
            return Err(Self::cannot(
                &format!("rename table {key} to {new_key}"),
                "the task tracks a table of that name already",
            ));
        }
        self.next.tables.insert(new_key, tt);
        Ok(())
    }

    fn spec(&mut self, tt: &mut TrackedTable, spec: &AlterSpec) -> std::result::Result<(), Stop> {
        let name = tt.source_name();
        match spec {
            AlterSpec::AddColumns {
                columns,
                position,
                if_not_exists,
            } => {
                for (n, def) in columns.iter().enumerate() {
                    let at = tt.place(
                        if n == 0 { position.as_ref() } else { None },
                        tt.source.columns.len(),
                    );
                    let what = format!("add column `{}` to {name}", def.column.name);
                    let at = at.map_err(|why| Self::cannot(&what, &why))?;
                    self.add_column(tt, def, at, *if_not_exists, &what)?;
                }
            }
            AlterSpec::DropColumn {
                name: col,
                if_exists,
            } => {
                let what = format!("drop column `{col}` of {name}");
                let Some(i) = tt.index_of(col) else {
                    if *if_exists {
                        return Ok(());
                    }
                    return Err(Self::cannot(&what, "the tracked schema has no such column"));
                };
                if let Some(dest) = &tt.lands_in[i] {
                    let ignored = format!(
                        "the destination keeps column `{dest}`; later rows hold NULL there"
                    );
                    self.decide(DdlKind::DropColumn, &what, &ignored)?;
                }
                if tt.is_key_column(col) {
                    self.decide(
                        DdlKind::RowKey,
                        &what,
                        "merges use the key in force when they run",
                    )?;
                }
                tt.remove(i);
                tt.source
                    .primary_key
                    .retain(|k| !k.eq_ignore_ascii_case(col));
                tt.source
                    .unique_keys
                    .retain(|u| !u.columns.iter().any(|k| k.eq_ignore_ascii_case(col)));
            }
            AlterSpec::ChangeColumn {
                old,
                column,
                position,
                if_exists,
            } => self.change_column(tt, old, column, position.as_ref(), *if_exists)?,
            AlterSpec::RenameColumn { from, to } => {
                let Some(i) = tt.index_of(from) else {
                    return Err(Self::cannot(
                        &format!("rename column `{from}` of {name}"),
                        "the tracked schema has no such column",
                    ));
                };
                let mut column = tt.source.columns[i].clone();
                column.name = to.clone();
                let def = ColumnDef {
                    column,
                    key: None,
                    literal_default: None,
                };
                self.change_column(tt, from, &def, None, false)?;
            }
            AlterSpec::RenameTable(to) => {
                let what = format!("rename table {name} to {to}");
                self.decide(
                    DdlKind::RenameTable,
                    &what,
                    &format!(
                        "the task follows the table under its new name into {}_base / {}_log",
                        tt.dest, tt.dest
                    ),
                )?;
                tt.source.database = to.database.clone();
                tt.source.table = to.table.clone();
            }
            AlterSpec::AddKey { kind, .. } => self.key_added(tt, *kind)?,
            AlterSpec::DropPrimaryKey => {
                self.decide(
                    DdlKind::RowKey,
                    &format!("drop the primary key of {name}"),
                    "merges use the key in force when they run",
                )?;
            }
            AlterSpec::DropKey(key) => self.key_dropped(tt, key)?,
            AlterSpec::ConvertCharset(cs) => {
                let binary = cs == "binary";
                let lands_text = tt.source.columns.iter().zip(&tt.lands_in).any(|(c, l)| {
                    l.is_some()
                        && matches!(
                            c.column_type,
                            ColumnType::Char { .. }
                                | ColumnType::VarChar { .. }
                                | ColumnType::Text { .. }
                        )
                });
                if binary && lands_text {
                    self.decide(
                        DdlKind::ModifyColumn,
                        &format!("convert {name} to the binary character set"),
                        "the destination keeps its string columns; a value that is not valid UTF-8 stops the task",
                    )?;
                }
                for c in &mut tt.source.columns {
                    convert_charset(c, cs);
                }
            }
            AlterSpec::RowsRemoved(op) => {
                self.decide(
                    DdlKind::TruncateTable,
                    &format!("`{op}` on {name} removes rows without row events"),
                    "the destination keeps those rows",
                )?;
            }
            AlterSpec::SystemVersioning => {
                return Err(Self::cannot(
                    &format!("system versioning on {name}"),
                    "it adds or removes hidden columns; resync the table",
                ));
            }
            AlterSpec::NoRowEffect => {}
            AlterSpec::Unparsed { text, reason } => {
                self.decide(
                    DdlKind::Other,
                    &format!("`{text}` on {name} ({reason})"),
                    "the tracked schema stays as it is; if the columns did change, the table's next row stops the task",
                )?;
            }
        }
        Ok(())
    }

    fn add_column(
        &mut self,
        tt: &mut TrackedTable,
        def: &ColumnDef,
        at: usize,
        if_not_exists: bool,
        what: &str,
    ) -> std::result::Result<(), Stop> {
        let cx = self.cx;
        let mut col = def.column.clone();
        if tt.index_of(&col.name).is_some() {
            if if_not_exists {
                return Ok(());
            }
            return Err(Self::cannot(
                what,
                "the tracked schema has a column of that name already",
            ));
        }
        let key_change = def.key == Some(KeyKind::Primary)
            || (def.key == Some(KeyKind::Unique) && tt.source.primary_key.is_empty());
        if key_change {
            self.decide(
                DdlKind::RowKey,
                what,
                "merges use the key in force when they run",
            )?;
        }
        if is_character(&col.column_type) && col.charset.is_none() {
            col.charset = Some(tt.default_charset());
        }
        let (db, table) = (tt.source.database.clone(), tt.source.table.clone());
        let synced = cx.naming.selects_column(&db, &table, &col.name);
        let mut lands = None;
        if synced {
            let action = self.decide(
                DdlKind::AddColumn,
                what,
                "the destination does not get the column",
            )?;
            if action == DdlAction::Apply {
                if let Some(why) = crate::precheck::unsupported_type(&col.column_type) {
                    return Err(Self::cannot(what, &why));
                }
                let dest = cx.naming.column(&db, &table, &col.name);
                let field = mapping::arrow_field(&col)
                    .with_name(&dest)
                    .with_nullable(true);
                if let Err(e) = mapping::odps_type(&field) {
                    return Err(Self::cannot(what, &e.to_string()));
                }
                let folded = dest.to_lowercase();
                if cx.reserved.contains(&folded)
                    || tt
                        .dest_columns
                        .iter()
                        .any(|d| d.name.to_lowercase() == folded)
                {
                    return Err(Self::cannot(
                        what,
                        &format!(
                            "it would land as `{dest}`, a name {}_log has already",
                            tt.dest
                        ),
                    ));
                }
                tt.dest_columns.push(DestColumn {
                    name: dest.clone(),
                    column: col.clone(),
                });
                let rewritten = cx.policy.rewritten_rows;
                tt.added.push(AddedColumn {
                    column: dest.clone(),
                    first_record_id: cx.next_record_id,
                    default: def
                        .literal_default
                        .clone()
                        .filter(|_| rewritten == crate::config::RewrittenRows::Default),
                    resnapshot: rewritten == crate::config::RewrittenRows::Resnapshot
                        && col.default.is_some(),
                });
                for table in [format!("{}_base", tt.dest), format!("{}_log", tt.dest)] {
                    match self.adds.iter_mut().find(|(t, _)| *t == table) {
                        Some((_, fields)) => fields.push(field.clone()),
                        None => self.adds.push((table, vec![field.clone()])),
                    }
                }
                lands = Some(dest);
            }
        }
        tt.insert(at, col, lands);
        Ok(())
    }

    fn change_column(
        &mut self,
        tt: &mut TrackedTable,
        old: &str,
        def: &ColumnDef,
        position: Option<&ColumnPosition>,
        if_exists: bool,
    ) -> std::result::Result<(), Stop> {
        let name = tt.source_name();
        let new = &def.column;
        let what = if new.name.eq_ignore_ascii_case(old) {
            format!("modify column `{old}` of {name}")
        } else {
            format!("change column `{old}` of {name} to `{}`", new.name)
        };
        let Some(i) = tt.index_of(old) else {
            if if_exists {
                return Ok(());
            }
            return Err(Self::cannot(&what, "the tracked schema has no such column"));
        };
        let mut new = new.clone();
        if is_character(&new.column_type) && new.charset.is_none() {
            new.charset = tt.source.columns[i]
                .charset
                .clone()
                .filter(|c| c != "binary")
                .or_else(|| Some(tt.default_charset()));
        }
        if let Some(dest) = tt.lands_in[i].clone() {
            let (db, table) = (tt.source.database.clone(), tt.source.table.clone());
            if self.cx.naming.column(&db, &table, &new.name) != dest {
                self.decide(
                    DdlKind::RenameColumn,
                    &what,
                    &format!("rows keep landing in destination column `{dest}`"),
                )?;
            }
            let was = tt
                .dest_columns
                .iter()
                .find(|d| d.name == dest)
                .map(|d| d.column.clone())
                .unwrap_or_else(|| tt.source.columns[i].clone());
            if destination_type_differs(&was, &new) {
                self.decide(
                    DdlKind::ModifyColumn,
                    &format!("{what} ({} to {})", was.column_type_text, new.column_type_text),
                    &format!(
                        "destination column `{dest}` keeps type {}; a value that does not fit it stops the task",
                        was.column_type_text
                    ),
                )?;
            }
        }
        if def.key == Some(KeyKind::Primary)
            || tt.is_key_column(old) && !new.name.eq_ignore_ascii_case(old)
        {
            self.decide(
                DdlKind::RowKey,
                &what,
                "merges use the key in force when they run",
            )?;
        }
        let (_, lands) = tt.remove(i);
        let at = tt
            .place(position, i)
            .map_err(|why| Self::cannot(&what, &why))?;
        let new_name = new.name.clone();
        tt.insert(at, new, lands);
        tt.rename_in_keys(old, &new_name);
        Ok(())
    }

    fn key_added(&mut self, tt: &mut TrackedTable, kind: KeyKind) -> std::result::Result<(), Stop> {
        let changes_key = match kind {
            KeyKind::Primary => true,
            KeyKind::Unique => tt.source.primary_key.is_empty(),
            _ => false,
        };
        if changes_key {
            self.decide(
                DdlKind::RowKey,
                &format!(
                    "add a {} key to {}",
                    if kind == KeyKind::Primary {
                        "primary"
                    } else {
                        "unique"
                    },
                    tt.source_name()
                ),
                "merges use the key in force when they run",
            )?;
        }
        Ok(())
    }

    fn key_dropped(&mut self, tt: &mut TrackedTable, key: &str) -> std::result::Result<(), Stop> {
        let is_row_key = key.eq_ignore_ascii_case("primary")
            || (tt.source.primary_key.is_empty()
                && tt
                    .source
                    .unique_keys
                    .iter()
                    .any(|u| u.name.eq_ignore_ascii_case(key)));
        if is_row_key {
            self.decide(
                DdlKind::RowKey,
                &format!("drop key `{key}` of {}", tt.source_name()),
                "merges use the key in force when they run",
            )?;
            tt.source
                .unique_keys
                .retain(|u| !u.name.eq_ignore_ascii_case(key));
        }
        Ok(())
    }

    fn rename(&mut self, from: &TableName, to: &TableName) -> std::result::Result<(), Stop> {
        let Some(tt) = self
            .next
            .key_of(from)
            .and_then(|k| self.next.tables.get(&k))
        else {
            return self.appeared(
                to,
                &format!("table {to} appears (renamed from {from})"),
                None,
            );
        };
        let from = TableName {
            database: tt.source.database.clone(),
            table: tt.source.table.clone(),
        };
        self.alter(&from, &[AlterSpec::RenameTable(to.clone())])
    }

    fn drop(&mut self, t: &TableName, verb: &str) -> std::result::Result<(), Stop> {
        let Some(key) = self.next.key_of(t) else {
            return Ok(());
        };
        let dest = self
            .next
            .tables
            .get(&key)
            .map(|tt| tt.dest.clone())
            .unwrap_or_default();
        self.decide(
            DdlKind::DropTable,
            &format!("{verb} {key}"),
            &format!("{dest}_base / {dest}_log stay; the task stops following {key}"),
        )?;
        self.next.tables.remove(&key);
        Ok(())
    }

    fn truncate(&mut self, t: &TableName) -> std::result::Result<(), Stop> {
        let Some(key) = self.next.key_of(t) else {
            return Ok(());
        };
        self.decide(
            DdlKind::TruncateTable,
            &format!("truncate table {key}"),
            "the destination keeps the rows it had",
        )?;
        Ok(())
    }

    fn create(
        &mut self,
        t: &TableName,
        if_not_exists: bool,
        or_replace: bool,
        definition: &TableDefinition,
    ) -> std::result::Result<(), Stop> {
        if self.next.key_of(t).is_some() {
            if or_replace {
                self.drop(t, "replace table")?;
            } else if if_not_exists {
                return Ok(());
            } else {
                return Err(Self::cannot(
                    &format!("create table {t}"),
                    "the task tracks a table of that name already",
                ));
            }
        }
        self.appeared(t, &format!("table {t} is created"), Some(definition))
    }

    /// A table the include patterns select starts to exist: under
    /// `create_table = "apply"` the task syncs it from here on, when
    /// `definition` says what its columns are.
    fn appeared(
        &mut self,
        t: &TableName,
        what: &str,
        definition: Option<&TableDefinition>,
    ) -> std::result::Result<(), Stop> {
        if self.next.key_of(t).is_some()
            || !self.cx.naming.selects_table(&t.database, &t.table)
            || self.cx.adding.contains(&t.to_string())
        {
            return Ok(());
        }
        let what = format!("{what} and the include patterns select it");
        let action = self.decide(
            DdlKind::CreateTable,
            &what,
            "this task does not sync it (a task started afresh would)",
        )?;
        if action != DdlAction::Apply {
            return Ok(());
        }
        let mut schema = match definition {
            Some(TableDefinition::Columns(schema)) => schema.clone(),
            Some(TableDefinition::Like(other)) => {
                let Some(like) = self
                    .next
                    .key_of(other)
                    .and_then(|k| self.next.tables.get(&k))
                else {
                    return Err(Self::cannot(
                        &what,
                        &format!(
                            "it is created LIKE {other}, which this task does not track, so its columns are unknown"
                        ),
                    ));
                };
                TableSchema {
                    database: t.database.clone(),
                    table: t.table.clone(),
                    ..like.source.clone()
                }
            }
            Some(TableDefinition::Unknown) | None => {
                return Err(Self::cannot(
                    &what,
                    "the statement does not list its columns; create it with a column list, \
                     or set `sync.ddl.create_table = \"ignore\"` and sync it with a new task",
                ));
            }
        };
        let charset = self
            .cx
            .database_charsets
            .get(&t.database.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| "utf8mb4".to_owned());
        for c in &mut schema.columns {
            if is_character(&c.column_type) && c.charset.is_none() {
                c.charset = Some(charset.clone());
            }
        }
        let tracked = self
            .cx
            .naming
            .tracked(&schema)
            .map_err(|e| Self::cannot(&what, &e))?;
        for d in &tracked.dest_columns {
            if self.cx.reserved.contains(&d.name.to_ascii_lowercase()) {
                return Err(Self::cannot(
                    &what,
                    &format!(
                        "its column `{}` takes the name of a metadata or partition column",
                        d.name
                    ),
                ));
            }
            let field = mapping::arrow_field(&d.column);
            if let Err(e) = mapping::odps_type(&field) {
                return Err(Self::cannot(
                    &what,
                    &format!("column `{}` ({}): {e}", d.name, d.column.column_type_text),
                ));
            }
        }
        if schema.row_key().is_none() {
            self.notes.push(format!(
                "{what}: it has no primary or non-null unique key, so merges cannot tell equal rows apart"
            ));
        }
        let key = tracked.source_name();
        self.created.push(key.clone());
        self.next.tables.insert(key, tracked);
        Ok(())
    }
}

/// `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `XA …`: the QUERY events of
/// every transaction, never DDL.
fn is_transaction_control(sql: &str) -> bool {
    let word: String = sql
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    ["begin", "commit", "rollback", "savepoint", "xa", "release"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

fn is_character(t: &ColumnType) -> bool {
    matches!(
        t,
        ColumnType::Char { .. }
            | ColumnType::VarChar { .. }
            | ColumnType::Text { .. }
            | ColumnType::Enum(_)
            | ColumnType::Set(_)
    )
}

/// `CONVERT TO CHARACTER SET cs` on one column.
fn convert_charset(c: &mut ColumnSchema, cs: &str) {
    if !is_character(&c.column_type) {
        return;
    }
    if cs != "binary" {
        c.charset = Some(cs.to_owned());
        c.collation = None;
        return;
    }
    let (t, text) = match &c.column_type {
        ColumnType::Char { len } => (ColumnType::Binary { len: *len }, format!("binary({len})")),
        ColumnType::VarChar { len } => (
            ColumnType::VarBinary { len: *len },
            format!("varbinary({len})"),
        ),
        ColumnType::Text { max_bytes } => (
            ColumnType::Blob {
                max_bytes: *max_bytes,
            },
            c.column_type_text.replace("text", "blob"),
        ),
        _ => return,
    };
    c.column_type = t;
    c.column_type_text = text;
    c.charset = None;
    c.collation = None;
}

/// Whether a column redefined as `new` needs another destination type than `was`.
fn destination_type_differs(was: &ColumnSchema, new: &ColumnSchema) -> bool {
    let (a, b) = (mapping::arrow_field(was), mapping::arrow_field(new));
    if a.data_type() != b.data_type() {
        return true;
    }
    match (mapping::odps_type(&a), mapping::odps_type(&b)) {
        (Ok(x), Ok(y)) => x != y,
        _ => true,
    }
}

/// The saved generations of schema sets: `<state_dir>/schemas/<generation>.json`.
#[derive(Clone, Debug)]
pub struct SchemaStore {
    dir: PathBuf,
}

impl SchemaStore {
    /// The store of a task's state directory.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("schemas"),
        }
    }

    fn file_name(generation: u64) -> String {
        format!("{generation:08}")
    }

    /// Saves `set` as `generation` (atomically, durably).
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn save(&self, generation: u64, set: &SchemaSet) -> Result<()> {
        CheckpointStore::new(&self.dir, &Self::file_name(generation)).save(set)
    }

    /// The set saved as `generation`.
    ///
    /// # Errors
    /// [`Error::CorruptCheckpoint`] when it is missing or unreadable (the
    /// checkpoint names it), [`Error::CheckpointTooNew`].
    pub fn load(&self, generation: u64) -> Result<SchemaSet> {
        let store = CheckpointStore::new(&self.dir, &Self::file_name(generation));
        store.load()?.ok_or_else(|| Error::CorruptCheckpoint {
            path: store.path().to_path_buf(),
            reason: format!("schema generation {generation}, named by the checkpoint, is missing"),
        })
    }

    /// Removes the generations before `current` (no longer named by any
    /// checkpoint); failures are only logged.
    pub fn prune(&self, current: u64) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let older = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|g| g < current);
            if older && let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "could not remove an old schema generation");
            }
        }
    }
}

/// The schemas in force while the incremental phase reads the binlog, with
/// the tables as the task writes them.
#[derive(Debug)]
pub struct Tracker {
    store: SchemaStore,
    generation: Option<u64>,
    set: SchemaSet,
    meta: MetaColumns,
    by_name: HashMap<String, HashMap<String, (TrackedTable, SyncedTable)>>,
}

impl Tracker {
    /// A tracker of `set`, saved as `generation` (`None`: not saved yet).
    pub fn new(
        store: SchemaStore,
        generation: Option<u64>,
        set: SchemaSet,
        meta: &MetaColumns,
    ) -> Self {
        let mut t = Self {
            store,
            generation,
            set: SchemaSet::default(),
            meta: meta.clone(),
            by_name: HashMap::new(),
        };
        t.replace(generation, set);
        t
    }

    fn replace(&mut self, generation: Option<u64>, set: SchemaSet) {
        self.by_name.clear();
        for t in set.tables.values() {
            self.by_name
                .entry(t.source.database.clone())
                .or_default()
                .insert(t.source.table.clone(), (t.clone(), t.synced(&self.meta)));
        }
        self.generation = generation;
        self.set = set;
    }

    /// The generation in force (`None`: not saved yet).
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// The set in force.
    pub fn set(&self) -> &SchemaSet {
        &self.set
    }

    /// The synced table `db.table`, if tracked.
    pub fn synced(&self, db: &str, table: &str) -> Option<&SyncedTable> {
        self.by_name.get(db)?.get(table).map(|(_, s)| s)
    }

    /// The tracked source table `db.table`, if the task syncs it.
    pub fn tracked(&self, db: &str, table: &str) -> Option<&TrackedTable> {
        self.by_name.get(db)?.get(table).map(|(t, _)| t)
    }

    /// Checks a TABLE_MAP of a tracked table ([`TrackedTable::check_map`]).
    ///
    /// # Errors
    /// A message naming the table and what differs.
    pub fn check_map(&self, map: &TableMap) -> std::result::Result<(), String> {
        let Some((t, _)) = self
            .by_name
            .get(&map.schema)
            .and_then(|m| m.get(&map.table))
        else {
            return Ok(());
        };
        t.check_map(map).map_err(|why| {
            format!(
                "rows of {} do not match the schema tracked for their position: {why}. The table \
                 changed without a DDL the task could follow (e.g. with sql_log_bin = 0); resync it",
                t.source_name()
            )
        })
    }

    /// What a QUERY event's statement means for the tracked tables;
    /// `default_db` is the event's current database, `sql_mode` its mode.
    pub fn plan_query(
        &self,
        sql: &str,
        default_db: &str,
        sql_mode: Option<u64>,
        cx: &PlanContext<'_>,
    ) -> Plan {
        if is_transaction_control(sql) {
            return Plan::Unchanged { notes: Vec::new() };
        }
        let opts = crate::ddl::ParseOptions::from_sql_mode(sql_mode.unwrap_or(0));
        let ddl = self.plan_ddl(sql, default_db, opts, cx);
        self.plan_dml(sql, default_db, opts, cx, ddl)
    }

    /// What `sql` means as DDL ([`Tracker::plan_query`]).
    fn plan_ddl(
        &self,
        sql: &str,
        default_db: &str,
        opts: crate::ddl::ParseOptions,
        cx: &PlanContext<'_>,
    ) -> Plan {
        match crate::ddl::parse(sql, default_db, opts) {
            Ok(None) => Plan::Unchanged { notes: Vec::new() },
            Ok(Some(stmt)) => self.set.plan(&stmt, cx),
            Err(e) => match cx.policy.action(DdlKind::Other) {
                (DdlAction::Ignore, _) => Plan::Unchanged {
                    notes: vec![format!(
                        "a DDL whose tables cannot be read ({e}): ignored (`sync.ddl.other` = \"ignore\")"
                    )],
                },
                _ => Plan::Stop {
                    message: format!(
                        "the tables of this DDL cannot be read ({e}): `sync.ddl.other` is \"stop\" \
                         (\"ignore\" goes on; a synced table it changed stops the task at its next row)"
                    ),
                },
            },
        }
    }

    /// `ddl` (what `sql` means as DDL), or [`Plan::StatementLogged`] when
    /// `sql` is a data change written as a statement to a synced table.
    /// In row-based logging no QUERY event carries DML, so any DML text
    /// here is a change without rows events. Tables the task does not sync
    /// (the heartbeat table among them) pass.
    fn plan_dml(
        &self,
        sql: &str,
        default_db: &str,
        opts: crate::ddl::ParseOptions,
        cx: &PlanContext<'_>,
        ddl: Plan,
    ) -> Plan {
        // Not DML; or text that cannot be split into tokens, which the DDL
        // parser has judged already.
        let Ok(Some(dml)) = crate::ddl::parse_dml(sql, default_db, opts) else {
            return ddl;
        };
        let kind = dml.kind.as_str();
        if let Some(f) = &dml.routine {
            // A stored function may write any table, but the binlog does
            // not say which: it counts when it lives in, or is called from,
            // a database the task syncs tables of.
            let synced_db = |db: &str| {
                self.set
                    .tables
                    .values()
                    .any(|t| t.source.database.eq_ignore_ascii_case(db))
            };
            if !synced_db(&f.database) && !synced_db(default_db) {
                return ddl;
            }
            return Plan::StatementLogged {
                tables: vec![format!(
                    "the tables stored function {f} writes (the binlog does not name them)"
                )],
                kind,
                then: Box::new(ddl),
            };
        }
        let tables = match dml.tables {
            Ok(tables) => tables,
            // Which tables it writes is unknown: one may be synced.
            Err(e) => {
                return Plan::StatementLogged {
                    tables: vec![format!(
                        "tables the statement does not name clearly ({})",
                        e.message
                    )],
                    kind,
                    then: Box::new(ddl),
                };
            }
        };
        let creates = dml.kind == crate::ddl::DmlKind::CreateSelect
            && cx.policy.action(DdlKind::CreateTable).0 == DdlAction::Apply;
        let touched: Vec<String> = tables
            .iter()
            .filter_map(|t| match self.set.key_of(t) {
                Some(key) => Some(key),
                // A table a CREATE … SELECT makes and the task would sync.
                None if creates
                    && cx.naming.selects_table(&t.database, &t.table)
                    && !cx.adding.contains(&t.to_string()) =>
                {
                    Some(t.to_string())
                }
                None => None,
            })
            .collect();
        if touched.is_empty() {
            return ddl;
        }
        Plan::StatementLogged {
            tables: touched,
            kind,
            then: Box::new(ddl),
        }
    }

    /// Saves `next` as the next generation (before the checkpoint names
    /// it) and returns that generation.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save_next(&self, next: &SchemaSet) -> Result<u64> {
        let generation = self.generation.map_or(1, |g| g + 1);
        self.store.save(generation, next)?;
        Ok(generation)
    }

    /// Puts `next` in force as `generation` (after the checkpoint named it)
    /// and removes the older generations.
    pub fn advance(&mut self, generation: u64, next: SchemaSet) {
        self.replace(Some(generation), next);
        self.store.prune(generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ObjectsConfig;
    use crate::ddl::{ParseOptions, parse};
    use crate::records::NamingRule;
    use mysql_source::schema::UniqueKey;

    fn col(name: &str, ct: ColumnType, text: &str) -> ColumnSchema {
        ColumnSchema {
            name: name.into(),
            ordinal: 0,
            column_type: ct,
            column_type_text: text.into(),
            unsigned: false,
            nullable: true,
            charset: None,
            collation: None,
            default: None,
            auto_increment: false,
            generated: None,
            invisible: false,
            comment: String::new(),
        }
    }

    fn orders() -> TableSchema {
        let mut note = col("note", ColumnType::VarChar { len: 20 }, "varchar(20)");
        note.charset = Some("utf8mb4".into());
        let mut id = col("id", ColumnType::BigInt, "bigint(20)");
        id.nullable = false;
        let mut t = TableSchema {
            database: "shop".into(),
            table: "orders".into(),
            columns: vec![id, col("qty", ColumnType::Int, "int(11)"), note],
            primary_key: vec!["id".into()],
            unique_keys: vec![UniqueKey {
                name: "uq".into(),
                columns: vec!["qty".into()],
                not_null: false,
            }],
            engine: "InnoDB".into(),
        };
        for (i, c) in t.columns.iter_mut().enumerate() {
            c.ordinal = i as u32 + 1;
        }
        t
    }

    struct Fixture {
        naming: Naming,
        set: SchemaSet,
        reserved: Vec<String>,
    }

    fn fixture(extra: &str) -> Fixture {
        let objects: ObjectsConfig =
            toml::from_str(&format!("include = [\"shop.*\"]\n{extra}")).expect("objects");
        let naming = Naming::new(&objects);
        let tracked = naming.tracked(&orders()).expect("tracked");
        let meta = NamingRule::New.meta_columns();
        Fixture {
            naming,
            set: SchemaSet::new([tracked]),
            reserved: meta.all().iter().map(|s| s.to_lowercase()).collect(),
        }
    }

    fn plan(f: &Fixture, policy: &DdlConfig, sql: &str) -> Plan {
        let stmt = parse(sql, "shop", ParseOptions::default())
            .expect("parses")
            .expect("a statement");
        f.set.plan(
            &stmt,
            &PlanContext {
                policy,
                naming: &f.naming,
                reserved: &f.reserved,
                next_record_id: 77,
                database_charsets: &HashMap::new(),
                adding: &[],
            },
        )
    }

    fn changed(p: Plan) -> (SchemaSet, ColumnAdds, Vec<String>) {
        match p {
            Plan::Changed {
                next,
                add_columns,
                notes,
                ..
            } => (next, add_columns, notes),
            other => panic!("{other:?}"),
        }
    }

    fn stop(p: Plan) -> String {
        match p {
            Plan::Stop { message } => message,
            other => panic!("{other:?}"),
        }
    }

    fn names(t: &TrackedTable) -> Vec<&str> {
        t.source.columns.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn add_column_is_placed_in_the_source_and_appended_in_the_destination() {
        let f = fixture("");
        let policy = DdlConfig::default();
        let (next, adds, notes) = changed(plan(
            &f,
            &policy,
            "ALTER TABLE orders ADD COLUMN a INT FIRST, ADD COLUMN B VARCHAR(10) DEFAULT 'x' AFTER id, ADD (c INT, d TEXT)",
        ));
        assert!(notes.is_empty());
        let t = &next.tables["shop.orders"];
        assert_eq!(names(t), ["a", "id", "B", "qty", "note", "c", "d"]);
        assert_eq!(
            t.source
                .columns
                .iter()
                .map(|c| c.ordinal)
                .collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            t.source.columns[2].charset.as_deref(),
            Some("utf8mb4"),
            "the table's charset"
        );
        let dest: Vec<&str> = t.dest_columns.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(dest, ["id", "qty", "note", "a", "b", "c", "d"]);
        assert_eq!(t.added.len(), 4);
        assert!(t.added.iter().all(|a| a.first_record_id == 77));
        assert_eq!(adds.len(), 2);
        assert_eq!(adds[0].0, "orders_base");
        assert_eq!(adds[1].0, "orders_log");
        assert_eq!(
            adds[0]
                .1
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c", "d"]
        );
        // The synced view reads images in source order and lands them by name.
        let s = t.synced(&NamingRule::New.meta_columns());
        assert_eq!(s.image_columns, [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            s.feeds,
            [
                Some(1),
                Some(3),
                Some(4),
                Some(0),
                Some(2),
                Some(5),
                Some(6)
            ]
        );
        assert_eq!(s.dest_key(), ["id"]);
    }

    #[test]
    fn policies_stop_or_ignore_and_say_which_key() {
        let f = fixture("");
        let mut policy = DdlConfig::default();
        let msg = stop(plan(&f, &policy, "ALTER TABLE orders DROP COLUMN note"));
        assert!(
            msg.contains("drop column `note` of shop.orders")
                && msg.contains("`sync.ddl.other` is \"stop\""),
            "{msg}"
        );
        policy.drop_column = Some(DdlAction::Ignore);
        let (next, adds, notes) = changed(plan(&f, &policy, "ALTER TABLE orders DROP COLUMN note"));
        assert!(adds.is_empty());
        assert!(notes[0].contains("keeps column `note`"), "{notes:?}");
        let t = &next.tables["shop.orders"];
        assert_eq!(names(t), ["id", "qty"]);
        let s = t.synced(&NamingRule::New.meta_columns());
        assert_eq!(s.feeds, [Some(0), Some(1), None], "note gets NULL");
        assert!(s.base_schema.field(2).is_nullable());

        policy.add_column = DdlAction::Stop;
        let msg = stop(plan(&f, &policy, "ALTER TABLE orders ADD x INT"));
        assert!(
            msg.contains("`sync.ddl.add_column` is \"stop\"") && msg.contains("\"apply\""),
            "{msg}"
        );
        policy.add_column = DdlAction::Ignore;
        let (next, adds, _) = changed(plan(&f, &policy, "ALTER TABLE orders ADD x INT FIRST"));
        assert!(adds.is_empty());
        let s = next.tables["shop.orders"].synced(&NamingRule::New.meta_columns());
        assert_eq!(s.image_columns, [1, 2, 3], "x is read past, not synced");

        let msg = stop(plan(&f, &DdlConfig::default(), "TRUNCATE TABLE orders"));
        assert!(msg.contains("truncate table shop.orders"), "{msg}");
        let msg = stop(plan(&f, &DdlConfig::default(), "RENAME TABLE orders TO o2"));
        assert!(msg.contains("rename table shop.orders to shop.o2"), "{msg}");
        let msg = stop(plan(
            &f,
            &DdlConfig::default(),
            "ALTER TABLE orders MODIFY qty BIGINT",
        ));
        assert!(msg.contains("int(11) to bigint"), "{msg}");
        let msg = stop(plan(
            &f,
            &DdlConfig::default(),
            "ALTER TABLE orders DROP PRIMARY KEY",
        ));
        assert!(msg.contains("primary key"), "{msg}");
        let msg = stop(plan(
            &f,
            &DdlConfig::default(),
            "DROP TABLE IF EXISTS orders, other",
        ));
        assert!(msg.contains("drop table shop.orders"), "{msg}");
        let msg = stop(plan(
            &f,
            &DdlConfig::default(),
            "ALTER TABLE orders FROBNICATE",
        ));
        assert!(msg.contains("unknown alteration"), "{msg}");
    }

    #[test]
    fn harmless_changes_are_followed_without_asking() {
        let f = fixture("");
        let policy = DdlConfig::default();
        // Wider VARCHAR, a move, an index, a default: no destination change.
        let (next, adds, notes) = changed(plan(
            &f,
            &policy,
            "ALTER TABLE orders MODIFY note VARCHAR(200) NOT NULL FIRST, ADD INDEX (qty), ALTER COLUMN qty SET DEFAULT 1",
        ));
        assert!(adds.is_empty() && notes.is_empty());
        let t = &next.tables["shop.orders"];
        assert_eq!(names(t), ["note", "id", "qty"]);
        assert_eq!(
            t.source.columns[0].column_type,
            ColumnType::VarChar { len: 200 }
        );
        assert_eq!(t.lands_in[0].as_deref(), Some("note"));
        for sql in [
            "ALTER TABLE other ADD x INT",
            "ALTER TABLE orders ENGINE = InnoDB, ALGORITHM = INPLACE",
            "CREATE TABLE IF NOT EXISTS orders (id INT)",
            "CREATE INDEX i ON orders (qty)",
            "DROP TABLE elsewhere.orders",
        ] {
            assert_eq!(
                plan(&f, &policy, sql),
                Plan::Unchanged { notes: vec![] },
                "{sql}"
            );
        }
        // A new table matching the patterns, under ignore: a note.
        let ignore_new = DdlConfig {
            create_table: DdlAction::Ignore,
            ..policy
        };
        let Plan::Unchanged { notes } = plan(&f, &ignore_new, "CREATE TABLE fresh (id INT)") else {
            panic!()
        };
        assert!(
            notes[0].contains("shop.fresh") && notes[0].contains("create_table"),
            "{notes:?}"
        );
        let strict = DdlConfig {
            create_table: DdlAction::Stop,
            ..DdlConfig::default()
        };
        assert!(stop(plan(&f, &strict, "RENAME TABLE x.y TO shop.fresh")).contains("appears"));
        // A table being added to the task is read at its start: its CREATE
        // before then neither stops the task nor makes it tracked.
        let stmt = parse(
            "CREATE TABLE fresh (id INT)",
            "shop",
            ParseOptions::default(),
        )
        .expect("parses")
        .expect("a statement");
        let adding = ["shop.fresh".to_owned()];
        let cx = PlanContext {
            policy: &strict,
            naming: &f.naming,
            reserved: &f.reserved,
            next_record_id: 77,
            database_charsets: &HashMap::new(),
            adding: &adding,
        };
        assert_eq!(f.set.plan(&stmt, &cx), Plan::Unchanged { notes: vec![] });
    }

    #[test]
    fn created_tables_are_tracked_under_apply() {
        let f = fixture("");
        let policy = DdlConfig::default();
        let Plan::Changed {
            next,
            add_columns,
            created,
            notes,
        } = plan(
            &f,
            &policy,
            "CREATE TABLE fresh (id INT NOT NULL, label VARCHAR(10), PRIMARY KEY (id)) DEFAULT CHARSET=latin1",
        )
        else {
            panic!("apply is the default")
        };
        assert!(add_columns.is_empty() && notes.is_empty(), "{notes:?}");
        assert_eq!(created, ["shop.fresh"]);
        let t = &next.tables["shop.fresh"];
        assert_eq!(names(t), ["id", "label"]);
        assert_eq!(t.source.primary_key, ["id"]);
        assert_eq!(t.source.columns[1].charset.as_deref(), Some("latin1"));
        assert_eq!(t.dest, "fresh");
        // LIKE a tracked table copies its columns; no charset anywhere takes
        // the database's (utf8mb4 when unknown).
        let Plan::Changed { next, created, .. } =
            plan(&f, &policy, "CREATE TABLE copy LIKE orders")
        else {
            panic!("like")
        };
        assert_eq!(created, ["shop.copy"]);
        assert_eq!(
            names(&next.tables["shop.copy"]),
            names(&next.tables["shop.orders"])
        );
        let Plan::Changed { next, notes, .. } = plan(&f, &policy, "CREATE TABLE bare (s TEXT)")
        else {
            panic!("bare")
        };
        assert_eq!(
            next.tables["shop.bare"].source.columns[0]
                .charset
                .as_deref(),
            Some("utf8mb4")
        );
        assert!(
            notes[0].contains("no primary or non-null unique key"),
            "{notes:?}"
        );
        // Columns that cannot be known, or that clash with metadata columns, stop.
        for (sql, why) in [
            ("CREATE TABLE n LIKE elsewhere.t", "does not track"),
            ("CREATE TABLE n SELECT 1 AS a", "does not list its columns"),
            ("RENAME TABLE x.y TO shop.n", "does not list its columns"),
            (
                "CREATE TABLE n (id INT, new_dts_sync_record_id INT)",
                "metadata",
            ),
        ] {
            let message = stop(plan(&f, &policy, sql));
            assert!(message.contains(why), "{sql}: {message}");
        }
        // Tables the patterns do not select are none of the task's business.
        assert_eq!(
            plan(&f, &policy, "CREATE TABLE elsewhere.n (id INT)"),
            Plan::Unchanged { notes: vec![] }
        );
    }

    #[test]
    fn renames_under_ignore_keep_the_destination() {
        let f = fixture("");
        let policy = DdlConfig {
            other: DdlAction::Ignore,
            ..DdlConfig::default()
        };
        let (next, _, notes) = changed(plan(
            &f,
            &policy,
            "ALTER TABLE orders CHANGE note remark TEXT, RENAME TO shop.orders2",
        ));
        assert_eq!(notes.len(), 2, "{notes:?}");
        let t = &next.tables["shop.orders2"];
        assert_eq!(names(t), ["id", "qty", "remark"]);
        assert_eq!(t.lands_in[2].as_deref(), Some("note"));
        assert_eq!(t.dest, "orders");
        // Two tracked tables swapped through a temporary name.
        let mut f2 = fixture("");
        let mut other = f2.set.tables["shop.orders"].clone();
        other.source.table = "archive".into();
        other.dest = "archive".into();
        f2.set.tables.insert("shop.archive".into(), other);
        let (next, _, _) = changed(plan(
            &f2,
            &policy,
            "RENAME TABLE orders TO tmp, archive TO orders, tmp TO archive",
        ));
        assert_eq!(next.tables["shop.orders"].dest, "archive");
        assert_eq!(next.tables["shop.archive"].dest, "orders");
    }

    /// Plans `sqls` in turn, each on the set the one before left; the
    /// last plan, and the columns every step added.
    fn plan_all(f: &mut Fixture, policy: &DdlConfig, sqls: &[&str]) -> (Plan, ColumnAdds) {
        let mut adds = Vec::new();
        let mut last = Plan::Unchanged { notes: Vec::new() };
        for sql in sqls {
            last = plan(f, policy, sql);
            if let Plan::Changed {
                next, add_columns, ..
            } = &last
            {
                f.set = next.clone();
                adds.extend(add_columns.iter().cloned());
            }
        }
        (last, adds)
    }

    #[test]
    fn online_schema_changes_cut_over_in_one_or_two_steps_and_aborts_leave_nothing() {
        let policy = DdlConfig::default();
        let added = |adds: &ColumnAdds| -> Vec<String> {
            adds.iter()
                .flat_map(|(t, fs)| fs.iter().map(move |f| format!("{t}.{}", f.name())))
                .collect()
        };
        // gh-ost, two-step: the table is briefly absent, the move is held.
        let mut f = fixture("");
        let (_, adds) = plan_all(
            &mut f,
            &policy,
            &[
                "create /* gh-ost */ table _orders_ghc (id bigint primary key, hint varchar(64))",
                "create /* gh-ost */ table `shop`.`_orders_gho` like `shop`.`orders`",
                "alter /* gh-ost */ table `shop`.`_orders_gho` ADD COLUMN c INT",
                "alter /* gh-ost */ table `shop`.`orders` rename `shop`.`_orders_del`",
            ],
        );
        assert!(adds.is_empty());
        assert!(f.set.held.is_some() && f.set.shadows.contains_key("shop._orders_gho"));
        // Saved with the generation, so a restart decides the same way.
        let saved = serde_json::to_string(&f.set).expect("json");
        assert_eq!(
            serde_json::from_str::<SchemaSet>(&saved).expect("read back"),
            f.set
        );
        assert_eq!(f.set.tables.keys().collect::<Vec<_>>(), ["shop.orders"]);
        let (_, adds) = plan_all(
            &mut f,
            &policy,
            &["alter /* gh-ost */ table `shop`.`_orders_gho` rename `shop`.`orders`"],
        );
        assert_eq!(added(&adds), ["orders_base.c", "orders_log.c"]);
        assert_eq!(
            names(&f.set.tables["shop.orders"]),
            ["id", "qty", "note", "c"]
        );
        assert!(f.set.held.is_none() && f.set.shadows.is_empty());

        // pt-osc drop_swap: DROP, then RENAME of the shadow.
        let mut f = fixture("");
        let (_, adds) = plan_all(
            &mut f,
            &policy,
            &[
                "CREATE TABLE `shop`.`_orders_new` (id BIGINT NOT NULL, qty INT, \
                 note VARCHAR(20), PRIMARY KEY (id))",
                "ALTER TABLE `shop`.`_orders_new` ADD COLUMN c INT",
                "DROP TABLE `shop`.`orders`",
                "RENAME TABLE `shop`.`_orders_new` TO `shop`.`orders`",
            ],
        );
        assert_eq!(added(&adds), ["orders_base.c", "orders_log.c"]);
        assert_eq!(f.set.tables["shop.orders"].dest, "orders");

        // An abort: the shadow dropped; a later rename is a rename again.
        let mut f = fixture("");
        plan_all(
            &mut f,
            &policy,
            &[
                "CREATE TABLE _orders_gho LIKE orders",
                "ALTER TABLE _orders_gho ADD COLUMN c INT",
                "DROP TABLE IF EXISTS _orders_gho",
            ],
        );
        assert_eq!(f.set, fixture("").set);
        assert!(stop(plan(&f, &policy, "RENAME TABLE orders TO orders_x")).contains("rename"));

        // A held move that no shadow completes is the move it was.
        let mut f = fixture("");
        let (last, _) = plan_all(
            &mut f,
            &policy,
            &[
                "CREATE TABLE _orders_gho LIKE orders",
                "RENAME TABLE orders TO _orders_old",
                "CREATE TABLE other (id INT PRIMARY KEY)",
                "ALTER TABLE shop2.x ADD COLUMN y INT",
            ],
        );
        assert!(
            matches!(last, Plan::Unchanged { .. }),
            "DDL of other tables: still held"
        );
        assert!(f.set.held.is_some());
        let (last, _) = plan_all(
            &mut f,
            &policy,
            &["CREATE TABLE orders (id INT PRIMARY KEY)"],
        );
        assert!(stop(last).contains("held"));
        // Only a move to a tool's name is held: rows of any other name
        // could follow at once.
        // Nor does a move stay held once no shadow is left to complete it.
        let mut f = fixture("");
        let (last, _) = plan_all(
            &mut f,
            &policy,
            &[
                "CREATE TABLE _other_gho (id INT PRIMARY KEY)",
                "DROP TABLE orders",
                "DROP TABLE _other_gho",
            ],
        );
        assert!(stop(last).contains("drop table shop.orders"));
        let mut f = fixture("");
        let (last, _) = plan_all(
            &mut f,
            &policy,
            &[
                "CREATE TABLE _orders_gho LIKE orders",
                "RENAME TABLE orders TO orders_x",
            ],
        );
        assert!(stop(last).contains("rename table shop.orders to shop.orders_x"));
        // A swap that keeps the old table under a selected name of the
        // user's own: that table appears, and its columns are unknown.
        let mut f = fixture("");
        let (last, _) = plan_all(
            &mut f,
            &policy,
            &[
                "CREATE TABLE _orders_gho LIKE orders",
                "RENAME TABLE orders TO orders_before, _orders_gho TO orders",
            ],
        );
        assert!(stop(last).contains("table shop.orders_before appears"));

        // A shadow made with other columns than the table's cannot say
        // what changed.
        let mut f = fixture("");
        let (last, _) = plan_all(
            &mut f,
            &policy,
            &[
                "CREATE TABLE _orders_new (id BIGINT PRIMARY KEY, c INT)",
                "RENAME TABLE orders TO _orders_old, _orders_new TO orders",
            ],
        );
        assert!(stop(last).contains("created with the columns"));

        // Found already made when the phase began: the columns' difference.
        let mut f = fixture("");
        let mut shadow = orders();
        shadow.table = "_orders_gho".into();
        shadow.columns.remove(1);
        shadow
            .columns
            .insert(1, col("c", ColumnType::Int, "int(11)"));
        f.set.shadows.insert(
            "shop._orders_gho".into(),
            crate::osc::Shadow::loaded(shadow),
        );
        let policy = DdlConfig {
            drop_column: Some(DdlAction::Ignore),
            ..DdlConfig::default()
        };
        let (_, adds) = plan_all(
            &mut f,
            &policy,
            &["RENAME TABLE orders TO _orders_del, _orders_gho TO orders"],
        );
        assert_eq!(added(&adds), ["orders_base.c", "orders_log.c"]);
        assert_eq!(names(&f.set.tables["shop.orders"]), ["id", "c", "note"]);
    }

    #[test]
    fn tool_tables_are_never_synced_unless_named_and_the_patterns_are_configurable() {
        let policy = DdlConfig::default();
        let f = fixture("");
        for sql in [
            "CREATE TABLE _orders_ghc (id INT PRIMARY KEY)",
            "CREATE TABLE _orders_del (id INT PRIMARY KEY)",
            "CREATE TABLE tp_4501684_ogl_orders (id INT PRIMARY KEY)",
            "CREATE TABLE tp_4501684_del_orders (id INT PRIMARY KEY)",
        ] {
            assert_eq!(
                plan(&f, &policy, sql),
                Plan::Unchanged { notes: vec![] },
                "{sql}"
            );
        }
        let (next, _, _) = changed(plan(
            &f,
            &policy,
            "CREATE TABLE tp_1_ogt_orders LIKE orders",
        ));
        assert!(next.shadows.contains_key("shop.tp_1_ogt_orders"));
        assert_eq!(next.tables.len(), 1);
        // Shadows where nothing is synced are nothing to the task.
        assert_eq!(
            plan(
                &f,
                &policy,
                "CREATE TABLE other_db._x_gho (id INT PRIMARY KEY)"
            ),
            Plan::Unchanged { notes: vec![] }
        );
        // A literal include makes it a table like any other.
        let named = Naming::new(
            &toml::from_str::<ObjectsConfig>("include = [\"shop.*\", \"shop._orders_old\"]")
                .expect("objects"),
        );
        assert_eq!(named.osc_role("shop", "_orders_old"), None);
        assert_eq!(
            named.osc_role("shop", "_orders_gho"),
            Some(crate::osc::Role::Shadow)
        );
        let off = fixture("[online_ddl]\nfollow = false");
        assert!(off.naming.selects_table("shop", "_orders_gho"));
        let own = fixture("[online_ddl]\nshadow_tables = [\"^shadow_\"]");
        assert!(own.naming.selects_table("shop", "_orders_gho"));
        assert!(!own.naming.selects_table("shop", "shadow_orders"));
    }

    #[test]
    fn column_lists_and_renames_decide_what_a_new_column_lands_as() {
        let f = fixture(
            "[tables.\"shop.orders\"]\ncolumns = [\"id\", \"note\"]\nrename_columns = { note = \"remark\" }",
        );
        let (next, adds, _) = changed(plan(
            &f,
            &DdlConfig::default(),
            "ALTER TABLE orders ADD extra INT AFTER id",
        ));
        assert!(adds.is_empty(), "not in the column list");
        let t = &next.tables["shop.orders"];
        let s = t.synced(&NamingRule::New.meta_columns());
        assert_eq!(
            s.image_columns,
            [0, 3],
            "id and note, past the new column and qty"
        );
        assert_eq!(s.dest_columns(), ["id", "remark"]);
        let f = fixture("");
        let msg = stop(plan(
            &f,
            &DdlConfig::default(),
            "ALTER TABLE orders ADD new_dts_sync_record_id INT",
        ));
        assert!(msg.contains("cannot follow"), "{msg}");
        let msg = stop(plan(
            &f,
            &DdlConfig::default(),
            "ALTER TABLE orders ADD ip INET6",
        ));
        assert!(msg.contains("inet6"), "{msg}");
        let msg = stop(plan(
            &f,
            &DdlConfig::default(),
            "ALTER TABLE orders ADD x INT AFTER nope",
        ));
        assert!(msg.contains("`nope`"), "{msg}");
        assert_eq!(
            plan(
                &f,
                &DdlConfig::default(),
                "ALTER TABLE orders ADD COLUMN IF NOT EXISTS qty INT"
            ),
            Plan::Unchanged { notes: vec![] }
        );
    }

    /// A MariaDB table map of `orders` as FULL metadata writes it.
    fn table_map(types: &[u8], names: &[&str], unsigned_bits: u8, collation: u8) -> TableMap {
        let mut opt = vec![1, 1, unsigned_bits, 2, 1, collation];
        let mut list = Vec::new();
        for n in names {
            list.push(n.len() as u8);
            list.extend(n.as_bytes());
        }
        opt.push(4);
        opt.push(list.len() as u8);
        opt.extend(list);
        let metadata: Vec<u8> = types
            .iter()
            .flat_map(|&t| if t == 15 { vec![80, 0] } else { vec![] })
            .collect();
        let ev = binlog_parser::TableMapEvent {
            table_id: 1,
            flags: 0,
            schema: b"shop",
            table: b"orders",
            column_types: types,
            metadata: &metadata,
            null_bits: &[0xff],
            optional_metadata: &opt,
            body: &[],
        };
        TableMap::from_event(&ev, true).expect("table map")
    }

    #[test]
    fn table_maps_are_checked_column_by_column() {
        let f = fixture("");
        let t = &f.set.tables["shop.orders"];
        let (bigint, int, varchar) = (8, 3, 15);
        let utf8mb4 = 45;
        let check = |types: &[u8], names: &[&str], unsigned, collation| {
            t.check_map(&table_map(types, names, unsigned, collation))
        };
        check(&[bigint, int, varchar], &["id", "QTY", "note"], 0, utf8mb4).expect("matches");
        let err = check(
            &[bigint, int, varchar, int],
            &["id", "qty", "note", "x"],
            0,
            utf8mb4,
        )
        .expect_err("one more column");
        assert!(
            err.contains("4 columns (id, qty, note, x)") && err.contains("has 3 (id, qty, note)"),
            "{err}"
        );
        let err = check(
            &[bigint, int, varchar],
            &["id", "qty", "remark"],
            0,
            utf8mb4,
        )
        .expect_err("renamed");
        assert!(err.contains("column 3 is `remark`"), "{err}");
        let err = check(
            &[bigint, bigint, varchar],
            &["id", "qty", "note"],
            0,
            utf8mb4,
        )
        .expect_err("retyped");
        assert!(
            err.contains("`qty` (int(11)) is logged as LongLong"),
            "{err}"
        );
        let err = check(
            &[bigint, int, varchar],
            &["id", "qty", "note"],
            0x40,
            utf8mb4,
        )
        .expect_err("unsigned");
        assert!(err.contains("`qty`") && err.contains("unsigned"), "{err}");
        let err =
            check(&[bigint, int, varchar], &["id", "qty", "note"], 0, 63).expect_err("binary");
        assert!(err.contains("`note`") && err.contains("binary"), "{err}");
    }

    #[test]
    fn sets_round_trip_through_the_store_and_old_generations_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SchemaStore::new(dir.path());
        let f = fixture("");
        let meta = NamingRule::New.meta_columns();
        let mut tracker = Tracker::new(store.clone(), None, f.set.clone(), &meta);
        assert!(tracker.synced("shop", "orders").is_some());
        let (next, _, _) = changed(plan(
            &f,
            &DdlConfig::default(),
            "ALTER TABLE orders ADD a INT",
        ));
        let g = tracker.save_next(&f.set).expect("save 1");
        tracker.advance(g, f.set);
        let g2 = tracker.save_next(&next).expect("save 2");
        assert_eq!((g, g2), (1, 2));
        tracker.advance(g2, next.clone());
        assert_eq!(store.load(2).expect("load"), next);
        assert!(
            matches!(store.load(1), Err(Error::CorruptCheckpoint { .. })),
            "pruned"
        );
        assert_eq!(
            tracker
                .synced("shop", "orders")
                .map(|s| s.source_column_count),
            Some(4)
        );
    }

    #[test]
    fn dml_in_a_query_event_on_a_synced_table_is_statement_logged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = fixture("exclude = [\"shop.hb\"]");
        let meta = NamingRule::New.meta_columns();
        let tracker = Tracker::new(SchemaStore::new(dir.path()), None, f.set.clone(), &meta);
        let policy = DdlConfig::default();
        let cx = PlanContext {
            policy: &policy,
            naming: &f.naming,
            reserved: &f.reserved,
            next_record_id: 1,
            database_charsets: &HashMap::new(),
            adding: &[],
        };
        let q = |sql: &str, db: &str| tracker.plan_query(sql, db, None, &cx);
        let logged = |plan: Plan| match plan {
            Plan::StatementLogged { tables, kind, .. } => (tables, kind),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            logged(q("INSERT INTO orders VALUES (1, 2, 'x')", "shop")),
            (vec!["shop.orders".to_owned()], "INSERT")
        );
        // Unqualified names are the event's database's; case folds as the
        // tracked names do.
        assert_eq!(
            q("INSERT INTO orders VALUES (1, 2, 'x')", "other"),
            Plan::Unchanged { notes: vec![] }
        );
        assert_eq!(
            logged(q("update other.x JOIN `shop`.`ORDERS` o SET o.qty = 1", "")).0,
            ["shop.orders"]
        );
        assert_eq!(
            q(
                "UPDATE other.x JOIN shop.orders o ON o.id = x.id SET x.n = o.qty",
                ""
            ),
            Plan::Unchanged { notes: vec![] }
        );
        // A table the patterns select that a CREATE … SELECT makes.
        let (tables, kind) = logged(q("CREATE TABLE fresh (id INT) SELECT 1 AS id", "shop"));
        assert_eq!(
            (tables, kind),
            (vec!["shop.fresh".to_owned()], "CREATE TABLE … SELECT")
        );
        // Not selected (the heartbeat table is excluded like this), or not DML.
        for (sql, db) in [
            ("REPLACE INTO hb VALUES (1, NOW())", "shop"),
            ("CREATE TABLE other.fresh SELECT 1", "shop"),
            ("BEGIN", "shop"),
            ("COMMIT", "shop"),
            ("SAVEPOINT a", "shop"),
            ("XA END 'x'", "shop"),
            ("SET @a = 1", "shop"),
        ] {
            assert_eq!(q(sql, db), Plan::Unchanged { notes: vec![] }, "{sql}");
        }
        // DDL keeps its path.
        assert!(matches!(
            q("ALTER TABLE orders ADD a INT", "shop"),
            Plan::Changed { .. }
        ));
        // Tables that cannot be read may be synced ones.
        assert!(logged(q("INSERT INTO t VALUES (1)", "")).0[0].contains("does not name clearly"));
        // A stored function may write any table: one of a synced
        // database, or called from one, counts.
        let (tables, kind) = logged(q("SELECT `shop`.`f`(1)", "other"));
        assert_eq!(kind, "stored function call");
        assert_eq!(
            tables,
            ["the tables stored function shop.f writes (the binlog does not name them)"]
        );
        assert_eq!(logged(q("SELECT `other`.`f`(1)", "shop")).1, kind);
        assert_eq!(
            q("SELECT `other`.`f`(1)", "other"),
            Plan::Unchanged { notes: vec![] }
        );
        assert!(logged(q("SELECT 1 + f(2)", "other")).0[0].contains("a stored function writes"));
    }
}
