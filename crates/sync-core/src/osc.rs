//! Online schema-change tools (gh-ost, pt-online-schema-change, Alibaba
//! DMS lock-free DDL): which tables are theirs, and the state of a change
//! under way.
//!
//! Such a tool copies a synced table `t` into a *shadow* table that has the
//! new schema, keeps it current (triggers or its own binlog reader), then
//! swaps the two by renaming (the *cut-over*) and drops the old table
//! (*trash*); some keep *helper* tables too. Syncing those tables as tables
//! would copy every row twice and stop the task at the swap. Instead their
//! names are classified here (regular expressions of
//! `[objects.online_ddl]`, before the include patterns), they are never
//! synced, and [`crate::schema_history`] tracks each shadow's schema and
//! turns the cut-over into `t`'s own DDL under `[sync.ddl]`: `t_base` and
//! `t_log` stay, record_ids go on. The state ([`Shadow`], [`Held`]) is part
//! of the saved schema set, so a restart mid-change decides the same way.

use crate::config::OnlineDdlConfig;
use crate::ddl::{AlterSpec, TableName};
use mysql_source::schema::TableSchema;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// What an online schema-change tool uses a table for.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Role {
    /// The copy with the new schema that replaces the table at the cut-over.
    Shadow,
    /// The tool's bookkeeping (gh-ost's changelog, DMS's log table).
    Helper,
    /// Where the old table goes at the cut-over (and gh-ost's sentry).
    Trash,
}

impl Role {
    /// The word logs and the precheck use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shadow => "shadow",
            Self::Helper => "helper",
            Self::Trash => "trash",
        }
    }
}

/// The compiled name patterns of `[objects.online_ddl]`.
#[derive(Clone, Debug, Default)]
pub struct Classifier {
    patterns: Vec<(Role, Regex)>,
}

impl Classifier {
    /// The patterns of `cfg` (none when `follow = false`).
    ///
    /// # Errors
    /// The key and the pattern that does not compile, with why.
    pub fn new(cfg: &OnlineDdlConfig) -> Result<Self, (&'static str, String)> {
        if !cfg.follow {
            return Ok(Self::default());
        }
        let mut patterns = Vec::new();
        for (role, key, list) in [
            (Role::Shadow, "shadow_tables", &cfg.shadow_tables),
            (Role::Helper, "helper_tables", &cfg.helper_tables),
            (Role::Trash, "trash_tables", &cfg.trash_tables),
        ] {
            for p in list {
                let re = Regex::new(p).map_err(|e| {
                    (
                        key,
                        format!("pattern {p:?} is not a regular expression: {e}"),
                    )
                })?;
                patterns.push((role, re));
            }
        }
        Ok(Self { patterns })
    }

    /// The role of a table named `table` (bare name, any database).
    pub fn role(&self, table: &str) -> Option<Role> {
        self.patterns
            .iter()
            .find(|(_, re)| re.is_match(table))
            .map(|(r, _)| *r)
    }
}

/// A shadow table being filled: its columns when made and the alterations
/// run on it since, in order.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Shadow {
    /// The columns it was created with (a `CREATE TABLE` column list, or
    /// the tracked table it was created `LIKE`); `None` when unknown.
    pub base: Option<TableSchema>,
    /// Every alteration run on it (renames excepted).
    pub specs: Vec<AlterSpec>,
    /// Its columns as `information_schema` showed them when the incremental
    /// phase began with the change under way (its `CREATE` unseen): the
    /// cut-over then applies the difference to the table's columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded: Option<TableSchema>,
}

impl Shadow {
    /// A shadow found in the source as it is now.
    pub fn loaded(schema: TableSchema) -> Self {
        Self {
            base: None,
            specs: Vec::new(),
            loaded: Some(schema),
        }
    }
}

/// The alterations that turn `table`'s columns into `shadow`'s: drops,
/// then additions in the shadow's places, then changed types. A column
/// renamed shows as a drop and an addition (the names alone cannot tell).
pub fn column_diff(table: &TableSchema, shadow: &TableSchema) -> Vec<AlterSpec> {
    use crate::ddl::{ColumnDef, ColumnPosition};
    let find = |cols: &[mysql_source::schema::ColumnSchema], name: &str| {
        cols.iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .cloned()
    };
    let mut specs: Vec<AlterSpec> = table
        .columns
        .iter()
        .filter(|c| find(&shadow.columns, &c.name).is_none())
        .map(|c| AlterSpec::DropColumn {
            name: c.name.clone(),
            if_exists: false,
        })
        .collect();
    for (i, c) in shadow.columns.iter().enumerate() {
        // The shadow's ALTER text is not kept, so a literal default is not
        // known here: `rewritten_rows = "default"` does not apply to
        // columns a tool adds (they merge as NULL for untouched rows).
        let def = ColumnDef {
            column: c.clone(),
            key: None,
            literal_default: None,
        };
        match find(&table.columns, &c.name) {
            None => specs.push(AlterSpec::AddColumns {
                columns: vec![def],
                position: Some(match i.checked_sub(1).and_then(|p| shadow.columns.get(p)) {
                    Some(before) => ColumnPosition::After(before.name.clone()),
                    None => ColumnPosition::First,
                }),
                if_not_exists: false,
            }),
            Some(was)
                if !was
                    .column_type_text
                    .eq_ignore_ascii_case(&c.column_type_text) =>
            {
                specs.push(AlterSpec::ChangeColumn {
                    old: was.name.clone(),
                    column: Box::new(def),
                    position: None,
                    if_exists: false,
                });
            }
            Some(_) => {}
        }
    }
    specs
}

/// A synced table moved away (renamed or dropped) while a shadow exists in
/// its database: the first half of a two-step cut-over (gh-ost
/// `--cut-over=two-step`, pt-osc `drop_swap`), decided by the next DDL.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Held {
    /// The synced table (`db.table`, its key in the schema set).
    pub table: TableName,
    /// Where it went; `None`: dropped.
    pub to: Option<TableName>,
}
