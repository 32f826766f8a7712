//! Destination names: the one place that decides what a source database,
//! table or column is called in the destination.
//!
//! Schema sync, the full and incremental phases, merge and verify all take
//! their names from a [`SyncedTable`] built here, so they cannot disagree.
//!
//! The rules, in order (the `_base` / `_log` suffixes and the metadata
//! columns are appended afterwards, as DTS does):
//! 1. a table rename (`[objects.tables."db.t"] name = "x"`) gives the stem `x`;
//! 2. else a database rename (`[objects.databases] db = "d"`) gives `d_t`:
//!    the destination (a MaxCompute project, a warehouse folder) has one
//!    namespace for every source database, so the mapped database becomes a
//!    prefix;
//! 3. else the stem is the source table name;
//! 4. column renames (`rename_columns = { a = "b" }`) replace column names;
//! 5. the capitalization policy (`capitalization`, default `lower` as DTS
//!    does for MaxCompute) is applied to every name from steps 1–4;
//! 6. a name MaxCompute would not take as it is becomes one it takes
//!    ([`destination_name`]): the local warehouse uses the same names as
//!    folders, so no source name can reach outside the warehouse either.
//!
//! A column list (`columns = [...]`) keeps only those columns; it must hold
//! the table's row key, or the merge could not tell rows apart. Column names
//! in lists and renames compare without case, as MySQL compares them; table
//! names in `[objects.tables]` are exact (`db.table` as the source spells it).

use crate::config::ObjectsConfig;
use crate::filter::RowFilter;
use crate::records::MetaColumns;
use crate::schema_history::{DestColumn, TrackedTable};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use mysql_source::schema::TableSchema;
use std::collections::HashMap;
use std::sync::Arc;

/// Case of destination names (DTS: "capitalization of object names in the destination").
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capitalization {
    /// Lower case: what DTS does for MaxCompute by default.
    #[default]
    Lower,
    /// Upper case.
    Upper,
    /// Exactly as in the source (and as written in renames).
    Source,
}

impl Capitalization {
    /// `name` under this policy.
    pub fn apply(self, name: &str) -> String {
        match self {
            Self::Lower => name.to_lowercase(),
            Self::Upper => name.to_uppercase(),
            Self::Source => name.to_owned(),
        }
    }
}

/// What a destination name is for.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum NameKind {
    /// A table stem (`_base` / `_log` are appended).
    Table,
    /// A column.
    Column,
}

/// Longest name MaxCompute takes, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Longest table stem: `_base` must still fit.
pub const MAX_STEM_BYTES: usize = MAX_NAME_BYTES - "_base".len();

/// `name` as MaxCompute (and the warehouse's folders) can take it.
///
/// MaxCompute's rule: ASCII letters, digits and `_`, at most 128 bytes, a
/// table's name starting with a letter. A name that follows it stays as it
/// is (a column may also start with `_`). Any other name is escaped, one
/// way only and without collisions between distinct names: every other
/// character becomes `_`, `t_` (tables) or `c_` (columns) goes in front
/// when the result would not start with a letter, the result is cut to fit,
/// and `_` plus the CRC-32 of the original name in hex is appended.
///
/// ```
/// use sync_core::naming::{NameKind, destination_name};
/// assert_eq!(destination_name(NameKind::Table, "orders"), "orders");
/// assert_eq!(destination_name(NameKind::Column, "_version"), "_version");
/// let escaped = destination_name(NameKind::Table, "../../x");
/// assert!(escaped.starts_with("t_______x_") && escaped.len() == 18, "{escaped}");
/// assert!(destination_name(NameKind::Column, "order-id").starts_with("order_id_"));
/// ```
pub fn destination_name(kind: NameKind, name: &str) -> std::borrow::Cow<'_, str> {
    let max = match kind {
        NameKind::Table => MAX_STEM_BYTES,
        NameKind::Column => MAX_NAME_BYTES,
    };
    let starts_well = |c: Option<char>| match kind {
        NameKind::Table => c.is_some_and(|c| c.is_ascii_alphabetic()),
        NameKind::Column => c.is_some_and(|c| c.is_ascii_alphabetic() || c == '_'),
    };
    let valid = name.len() <= max
        && starts_well(name.chars().next())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        return std::borrow::Cow::Borrowed(name);
    }
    let body: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let prefix = if body.starts_with(|c: char| c.is_ascii_alphabetic()) {
        ""
    } else {
        match kind {
            NameKind::Table => "t_",
            NameKind::Column => "c_",
        }
    };
    let suffix = format!("_{:08x}", crc32fast::hash(name.as_bytes()));
    let room = max - prefix.len() - suffix.len();
    // `body` is ASCII, so any byte offset is a character boundary.
    let body = &body[..body.len().min(room)];
    std::borrow::Cow::Owned(format!("{prefix}{body}{suffix}"))
}

/// A source table and its destination tables.
#[derive(Clone, Debug)]
pub struct SyncedTable {
    /// The source table's schema, reduced to the synced columns (source names).
    pub schema: Arc<TableSchema>,
    /// For each synced column, its 0-based position among all the table's
    /// columns: its index in binlog row images.
    pub image_columns: Vec<usize>,
    /// Number of columns of the source table (synced or not).
    pub source_column_count: usize,
    /// `db.table`.
    pub source_name: String,
    /// Destination name stem: `t` of `t_base` / `t_log`.
    pub dest: String,
    /// Arrow schema of the business columns under their destination names,
    /// in the destination's order (= `t_base`).
    pub base_schema: SchemaRef,
    /// Arrow schema of `t_log`: metadata columns, then the business columns.
    pub log_schema: SchemaRef,
    /// The task file's row filter of the table, if any.
    pub filter: Option<Arc<RowFilter>>,
    /// For each `base_schema` field, the index in `schema.columns` of the
    /// source column it holds; `None` when no source column does any more
    /// (a dropped column the policy ignored: NULL). A table as first synced
    /// has `feeds[i] == Some(i)`.
    pub feeds: Vec<Option<usize>>,
}

impl SyncedTable {
    /// `t_base`.
    pub fn base_table(&self) -> String {
        format!("{}_base", self.dest)
    }

    /// `t_log`.
    pub fn log_table(&self) -> String {
        format!("{}_log", self.dest)
    }

    /// Destination names of the business columns, in table order.
    pub fn dest_columns(&self) -> Vec<&str> {
        self.base_schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect()
    }

    /// Destination names of the row key (empty when the table has none).
    pub fn dest_key(&self) -> Vec<&str> {
        let Some(key) = self.schema.row_key() else {
            return Vec::new();
        };
        key.iter()
            .filter_map(|k| {
                let i = self.schema.columns.iter().position(|c| &c.name == k)?;
                let j = self.feeds.iter().position(|f| *f == Some(i))?;
                Some(self.base_schema.field(j).name().as_str())
            })
            .collect()
    }

    /// The synced columns' arrays (in `schema.columns` order and their own
    /// types) as the destination's columns: in `base_schema` order, cast to
    /// its types, NULL where no source column feeds one.
    ///
    /// # Errors
    /// [`crate::Error::Mapping`] naming the column when a value does not fit
    /// the destination type exactly.
    pub fn conform(&self, columns: Vec<ArrayRef>, rows: usize) -> crate::Result<Vec<ArrayRef>> {
        let fields = self.base_schema.fields();
        let identity = columns.len() == fields.len()
            && self.feeds.iter().enumerate().all(|(i, f)| *f == Some(i))
            && columns
                .iter()
                .zip(fields)
                .all(|(c, f)| c.data_type() == f.data_type());
        if identity {
            return Ok(columns);
        }
        fields
            .iter()
            .zip(&self.feeds)
            .map(|(field, feed)| match feed.and_then(|i| columns.get(i)) {
                None => Ok(arrow_array::new_null_array(field.data_type(), rows)),
                Some(c) if c.data_type() == field.data_type() => Ok(c.clone()),
                Some(c) => arrow_cast::cast_with_options(
                    c,
                    field.data_type(),
                    &arrow_cast::CastOptions {
                        safe: false,
                        format_options: arrow_cast::display::FormatOptions::new(),
                    },
                )
                .map_err(|_| {
                    // Arrow's message quotes the value: row data stays out
                    // of errors and logs, so only the column and types go.
                    crate::Error::Mapping(format!(
                        "{}: a value of column `{}` ({}) does not fit its destination type {}",
                        self.source_name,
                        field.name(),
                        c.data_type(),
                        field.data_type()
                    ))
                }),
            })
            .collect()
    }

    /// A batch read from the source (source column names) under the destination names.
    ///
    /// # Errors
    /// [`crate::Error::Arrow`] when the batch does not have the synced
    /// columns' types; as [`SyncedTable::conform`].
    pub fn to_dest(&self, batch: RecordBatch) -> crate::Result<RecordBatch> {
        let rows = batch.num_rows();
        let columns = self.conform(batch.columns().to_vec(), rows)?;
        Ok(RecordBatch::try_new_with_options(
            self.base_schema.clone(),
            columns,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?)
    }
}

/// The naming rules of one task.
#[derive(Clone, Debug)]
pub struct Naming {
    objects: ObjectsConfig,
    osc: crate::osc::Classifier,
}

impl Naming {
    /// The rules of a task file's `[objects]`.
    pub fn new(objects: &ObjectsConfig) -> Self {
        Self {
            objects: objects.clone(),
            // The task-file check has compiled these patterns already.
            osc: crate::osc::Classifier::new(&objects.online_ddl).unwrap_or_default(),
        }
    }

    /// The destination stem of `db.table` (before `_base` / `_log`).
    pub fn table_stem(&self, db: &str, table: &str) -> String {
        destination_name(NameKind::Table, &self.chosen_stem(db, table)).into_owned()
    }

    /// The stem that renames and the case policy give, before escaping.
    fn chosen_stem(&self, db: &str, table: &str) -> String {
        let case = self.objects.capitalization;
        if let Some(name) = self
            .table_options(db, table)
            .and_then(|o| o.name.as_deref())
        {
            case.apply(name)
        } else {
            match self.objects.databases.get(db) {
                Some(dest_db) => case.apply(&format!("{dest_db}_{table}")),
                None => case.apply(table),
            }
        }
    }

    /// The destination name of a column of `db.table`.
    pub fn column(&self, db: &str, table: &str, column: &str) -> String {
        destination_name(NameKind::Column, &self.chosen_column(db, table, column)).into_owned()
    }

    /// Every name of `schema` that [`destination_name`] had to escape, as
    /// `source → destination` lines for the precheck and the logs.
    pub fn escaped(&self, schema: &TableSchema) -> Vec<String> {
        let (db, table) = (&schema.database, &schema.table);
        let mut out = Vec::new();
        let chosen = self.chosen_stem(db, table);
        let stem = self.table_stem(db, table);
        if stem != chosen {
            out.push(format!("table {db}.{table} → {stem}_base / {stem}_log"));
        }
        for c in &schema.columns {
            let chosen = self.chosen_column(db, table, &c.name);
            let dest = self.column(db, table, &c.name);
            if dest != chosen {
                out.push(format!("column {db}.{table}.{} → {dest}", c.name));
            }
        }
        out
    }

    /// Every name of `schema` that lands spelt otherwise than in the source
    /// (beyond letter case, which MaxCompute ignores): task-file renames and
    /// escaped characters, as `what source → destination`.
    pub fn renamed(&self, schema: &TableSchema) -> Vec<String> {
        let (db, table) = (&schema.database, &schema.table);
        let mut out = Vec::new();
        let stem = self.table_stem(db, table);
        if !stem.eq_ignore_ascii_case(table) {
            out.push(format!("table {db}.{table} → {stem}"));
        }
        for c in &schema.columns {
            let dest = self.column(db, table, &c.name);
            if !dest.eq_ignore_ascii_case(&c.name) {
                out.push(format!("column {} → {dest}", c.name));
            }
        }
        out
    }

    fn chosen_column(&self, db: &str, table: &str, column: &str) -> String {
        let renamed = self
            .table_options(db, table)
            .and_then(|o| {
                o.rename_columns
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(column))
                    .map(|(_, v)| v)
            })
            .map_or(column, String::as_str);
        self.objects.capitalization.apply(renamed)
    }

    fn table_options(&self, db: &str, table: &str) -> Option<&crate::config::TableOptions> {
        self.objects.tables.get(&format!("{db}.{table}"))
    }

    /// Whether the include and exclude patterns select `db.table`; never a
    /// table of an online schema-change tool ([`Naming::osc_role`]).
    pub fn selects_table(&self, db: &str, table: &str) -> bool {
        self.objects.selects(db, table) && self.osc_role(db, table).is_none()
    }

    /// What an online schema-change tool uses `db.table` for, by the
    /// patterns of `[objects.online_ddl]`; `None` for other tables and for
    /// one an include entry names literally (`db.table`).
    pub fn osc_role(&self, db: &str, table: &str) -> Option<crate::osc::Role> {
        let role = self.osc.role(table)?;
        let name = format!("{db}.{table}");
        let named = self
            .objects
            .include
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&name));
        (!named).then_some(role)
    }

    /// Whether a column of `db.table` is synced: every column is, unless the
    /// table has a column list.
    pub fn selects_column(&self, db: &str, table: &str, column: &str) -> bool {
        self.table_options(db, table)
            .and_then(|o| o.columns.as_ref())
            .is_none_or(|list| listed(list, column))
    }

    /// Whether any table is renamed, has renamed columns or a column list:
    /// the edits DTS limits to 1,000 tables per task.
    pub fn edits_tables(&self) -> bool {
        !self.objects.tables.is_empty()
    }

    /// `[objects.tables]` entries naming no table in `selected` (`db.table` names).
    pub fn unknown_table_options<'a>(&'a self, selected: &[String]) -> Vec<&'a str> {
        self.objects
            .tables
            .keys()
            .filter(|k| !selected.iter().any(|s| s == *k))
            .map(String::as_str)
            .collect()
    }

    /// The destination form of one source table.
    ///
    /// # Errors
    /// As [`Naming::tracked`].
    pub fn table(&self, schema: &TableSchema, meta: &MetaColumns) -> Result<SyncedTable, String> {
        Ok(self.tracked(schema)?.synced(meta))
    }

    /// One source table with the destination column each of its columns
    /// lands in: where the schema history of the incremental phase starts.
    ///
    /// # Errors
    /// A message for the precheck when the table's column list or column
    /// renames name a column the table does not have, or the column list
    /// leaves out part of the row key.
    pub fn tracked(&self, schema: &TableSchema) -> Result<TrackedTable, String> {
        let (db, table) = (&schema.database, &schema.table);
        let source_name = format!("{db}.{table}");
        let options = self.table_options(db, table);
        if let Some(o) = options {
            for name in o.rename_columns.keys() {
                if schema.column(name).is_none() {
                    return Err(format!(
                        "[objects.tables.\"{source_name}\"] rename_columns names `{name}`, which {source_name} does not have"
                    ));
                }
            }
        }
        if let Some(list) = options.and_then(|o| o.columns.as_ref()) {
            for name in list {
                if schema.column(name).is_none() {
                    return Err(format!(
                        "[objects.tables.\"{source_name}\"] columns names `{name}`, which {source_name} does not have"
                    ));
                }
            }
            if let Some(key) = schema.row_key() {
                let missing: Vec<&str> = key
                    .iter()
                    .filter(|k| !listed(list, k))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    return Err(format!(
                        "[objects.tables.\"{source_name}\"] columns leaves out the row key column(s) {}: \
                         add them, or the merge cannot tell rows apart",
                        missing.join(", ")
                    ));
                }
            }
        }
        let lands_in: Vec<Option<String>> = schema
            .columns
            .iter()
            .map(|c| {
                self.selects_column(db, table, &c.name)
                    .then(|| self.column(db, table, &c.name))
            })
            .collect();
        let dest_columns = schema
            .columns
            .iter()
            .zip(&lands_in)
            .filter_map(|(c, l)| {
                l.as_ref().map(|name| DestColumn {
                    name: name.clone(),
                    column: c.clone(),
                })
            })
            .collect();
        let tracked = TrackedTable {
            source: schema.clone(),
            lands_in,
            dest: self.table_stem(db, table),
            dest_columns,
            added: Vec::new(),
            filter: options.and_then(|o| o.filter.clone()),
        };
        tracked
            .compile_filter()
            .map_err(|e| format!("[objects.tables.\"{source_name}\"] filter: {e}"))?;
        Ok(tracked)
    }
}

/// Whether `column` is in `list`; column names compare without case, as in MySQL.
fn listed(list: &[String], column: &str) -> bool {
    list.iter().any(|c| c.eq_ignore_ascii_case(column))
}

/// Names that would collide in the destination, as precheck messages:
/// a business column named like a metadata or partition column, two
/// columns of one table with one destination name, two tables with one
/// destination table. MaxCompute compares names without case, so these
/// comparisons ignore case too.
pub fn clashes(
    tables: &[SyncedTable],
    meta: &MetaColumns,
    partition_columns: &[String],
) -> (Vec<String>, Vec<String>) {
    let reserved: Vec<String> = meta
        .all()
        .iter()
        .map(|s| s.to_lowercase())
        .chain(partition_columns.iter().map(|s| s.to_lowercase()))
        .collect();
    let mut meta_clashes = Vec::new();
    let mut name_clashes = Vec::new();
    let mut stems: HashMap<String, &str> = HashMap::new();
    for t in tables {
        let mut seen: HashMap<String, &str> = HashMap::new();
        for (col, dest) in t.schema.columns.iter().zip(t.dest_columns()) {
            let folded = dest.to_lowercase();
            if reserved.contains(&folded) {
                meta_clashes.push(format!(
                    "{}.{} lands as `{dest}`, the name of a metadata column of {}",
                    t.source_name,
                    col.name,
                    t.log_table()
                ));
            }
            if let Some(other) = seen.insert(folded, &col.name) {
                name_clashes.push(format!(
                    "columns `{other}` and `{}` of {} both land as `{dest}`",
                    col.name, t.source_name
                ));
            }
        }
        if let Some(other) = stems.insert(t.dest.to_lowercase(), &t.source_name) {
            name_clashes.push(format!(
                "tables {other} and {} both land as {} / {}",
                t.source_name,
                t.base_table(),
                t.log_table()
            ));
        }
    }
    (meta_clashes, name_clashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::NamingRule;
    use mysql_source::schema::{ColumnSchema, ColumnType};

    fn col(name: &str, ordinal: u32) -> ColumnSchema {
        ColumnSchema {
            name: name.into(),
            ordinal,
            column_type: ColumnType::Int,
            column_type_text: "int(11)".into(),
            unsigned: false,
            nullable: false,
            charset: None,
            collation: None,
            default: None,
            auto_increment: false,
            generated: None,
            invisible: false,
            comment: String::new(),
        }
    }

    fn schema() -> TableSchema {
        TableSchema {
            database: "Shop".into(),
            table: "Orders".into(),
            columns: vec![col("Id", 1), col("Total", 2), col("Note", 3)],
            primary_key: vec!["Id".into()],
            unique_keys: vec![],
            engine: "InnoDB".into(),
        }
    }

    fn objects(extra: &str) -> ObjectsConfig {
        toml::from_str(&format!("include = [\"Shop.*\"]\n{extra}")).expect("objects")
    }

    #[test]
    fn names_follow_renames_then_the_case_policy() {
        let meta = NamingRule::New.meta_columns();
        let t = Naming::new(&objects(""))
            .table(&schema(), &meta)
            .expect("table");
        assert_eq!(
            (t.base_table(), t.dest_columns()),
            ("orders_base".into(), vec!["id", "total", "note"])
        );
        let n = Naming::new(&objects(
            "capitalization = \"upper\"\n[databases]\nShop = \"Sales\"",
        ));
        let t = n.table(&schema(), &meta).expect("table");
        assert_eq!(
            (t.log_table(), t.dest_key()),
            ("SALES_ORDERS_log".into(), vec!["ID"])
        );
        let n = Naming::new(&objects(
            "capitalization = \"source\"\n[tables.\"Shop.Orders\"]\nname = \"Sales\"\ncolumns = [\"Id\", \"Note\"]\nrename_columns = { Note = \"Remark\" }",
        ));
        let t = n.table(&schema(), &meta).expect("table");
        assert_eq!(
            (t.dest.as_str(), t.dest_columns()),
            ("Sales", vec!["Id", "Remark"])
        );
        assert_eq!(t.image_columns, vec![0, 2]);
        assert_eq!(t.schema.columns.len(), 2);
    }

    #[test]
    fn column_lists_keep_the_key_and_name_real_columns() {
        let meta = NamingRule::New.meta_columns();
        let n = Naming::new(&objects(
            "[tables.\"Shop.Orders\"]\ncolumns = [\"id\", \"total\"]\nrename_columns = { TOTAL = \"Sum\" }",
        ));
        let t = n.table(&schema(), &meta).expect("any case");
        assert_eq!(t.dest_columns(), ["id", "sum"]);
        let n = Naming::new(&objects("[tables.\"Shop.Orders\"]\ncolumns = [\"Total\"]"));
        let err = n.table(&schema(), &meta).expect_err("key left out");
        assert!(err.contains("row key") && err.contains("Id"), "{err}");
        let n = Naming::new(&objects(
            "[tables.\"Shop.Orders\"]\ncolumns = [\"Id\", \"Totl\"]",
        ));
        assert!(
            n.table(&schema(), &meta)
                .expect_err("typo")
                .contains("`Totl`")
        );
    }

    #[test]
    fn hostile_names_become_valid_maxcompute_names_one_way() {
        let valid = |kind: NameKind, n: &str| {
            let max = if kind == NameKind::Table {
                MAX_STEM_BYTES
            } else {
                MAX_NAME_BYTES
            };
            !n.is_empty()
                && n.len() <= max
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && (kind == NameKind::Column || n.starts_with(|c: char| c.is_ascii_alphabetic()))
        };
        let long = "x".repeat(300);
        let hostile = [
            "../../../x",
            "..",
            ".",
            "/etc/passwd",
            "a\\b",
            "Order-Items",
            "order items",
            "名前",
            "Mixed Case Col",
            "1st",
            "_t",
            "",
            "select",
            long.as_str(),
            "a_b",
            "a-b",
            "a b",
            "%2e%2e",
            "nul\0",
        ];
        for kind in [NameKind::Table, NameKind::Column] {
            let mut seen = HashMap::new();
            for n in hostile {
                let d = destination_name(kind, n);
                assert!(valid(kind, &d), "{kind:?} {n:?} -> {d:?}");
                assert_eq!(d, destination_name(kind, n), "deterministic");
                if let Some(other) = seen.insert(d.to_lowercase(), n) {
                    panic!("{other:?} and {n:?} both land as {d:?}");
                }
            }
        }
        // Valid names stay; `_t` is a valid column but not a valid table.
        assert_eq!(
            destination_name(NameKind::Table, "Orders_2024"),
            "Orders_2024"
        );
        assert_eq!(destination_name(NameKind::Column, "_t"), "_t");
        assert!(destination_name(NameKind::Table, "_t").starts_with("t__t_"));
        // Through the naming rules: the stem and columns of a hostile table.
        let mut s = schema();
        s.table = "../../Order-Items".into();
        s.columns[1].name = "order-id".into();
        let t = Naming::new(&objects(""))
            .table(&s, &NamingRule::New.meta_columns())
            .expect("table");
        assert!(t.dest.starts_with("t_______order_items_"), "{}", t.dest);
        assert!(
            t.dest_columns()[1].starts_with("order_id_"),
            "{:?}",
            t.dest_columns()
        );
    }

    #[test]
    fn clashes_are_found_without_regard_to_case() {
        let meta = NamingRule::Previous.meta_columns();
        let mut s = schema();
        s.columns.push(col("Record_ID", 4));
        s.columns.push(col("note", 5));
        let n = Naming::new(&objects("capitalization = \"source\""));
        let t = n.table(&s, &meta).expect("table");
        let mut other = schema();
        other.database = "Crm".into();
        let t2 = n.table(&other, &meta).expect("table");
        let (metas, names) = clashes(&[t, t2], &meta, &["modifytime_day".into()]);
        assert_eq!(metas.len(), 1, "{metas:?}");
        assert!(metas[0].contains("Record_ID"));
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
