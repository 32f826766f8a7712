//! The precheck: every DTS check, each a pass, a warning or a failure with a
//! fix hint, run before anything is written (and again on every restart).
//!
//! | check | fails when | warns when |
//! |---|---|---|
//! | `source_reachable` | the source refuses or cannot be reached | |
//! | `destination_reachable` | the sink cannot be reached or written | |
//! | `objects` | no table is selected, or `[objects.tables]` names an unknown table or column | |
//! | `online_ddl_tables` | | the include patterns match tables of online schema-change tools (left out and followed), or a synced table's name looks like one (an include entry names it) |
//! | `source_privileges` | `SHOW GRANTS` lacks SELECT, REPLICATION SLAVE or REPLICATION CLIENT (MariaDB: BINLOG MONITOR) | |
//! | `log_bin` | binary logging is off | |
//! | `binlog_format` | not `ROW` | |
//! | `binlog_row_image` | not `FULL` | |
//! | `binlog_retention` | binlogs expire in less than 3 days | … in less than 7 days |
//! | `binlog_available` | (a resumed task) the binlog file it resumes from is purged | |
//! | `server_id` | the source's server id is 0, or the task's id is the source's own | |
//! | `storage_engines` | a table's engine writes no rows to the binlog (FEDERATED, MERGE, BLACKHOLE) | |
//! | `cascading_foreign_keys` | | a synced table is the child of a foreign key with `ON DELETE`/`ON UPDATE` `CASCADE` or `SET NULL` (those changes reach no binlog) |
//! | `memory_tables` | | a synced table is a MEMORY table (emptied by a server restart, which the binlog shows only as a statement) |
//! | `session_binlog_format` | | an account that may write synced tables may also change its session's `binlog_format` / `binlog_row_image` (SUPER, BINLOG ADMIN, SYSTEM_VARIABLES_ADMIN, SESSION_VARIABLES_ADMIN) |
//! | `row_keys` | | a table has neither a primary key nor a NOT NULL unique key (merged as a multiset; a write during the full phase can count twice) |
//! | `destination_conflicts` | (mode `error`) a destination table exists already; (mode `ignore`) one the task cannot write into: a keyless table's `t_base` with the full phase, a `t_log` of a higher `record_id_tag` | (mode `ignore`) destination tables exist: it says what the task does with them ([`crate::conflict`]) |
//! | `destination_schema` | (mode `ignore`) an existing destination table's columns or partitions differ from what the task would create | |
//! | `destination_owners` | another task writes a destination table under this task's `record_id_tag` | |
//! | `name_clashes` | two tables or columns land under one name | |
//! | `metadata_columns` | a business column is named like a metadata column | |
//! | `column_types` | a column has a type the task cannot map | |
//! | `table_limit` | more than 1,000 tables with table-level edits | |
//!
//! The binlog checks apply only when the incremental phase is selected.

use crate::config::TaskConfig;
use crate::naming::{Naming, SyncedTable, clashes};
use crate::records::MetaColumns;
use crate::sink::Sink;
use mysql_source::schema::{ColumnType, TableSchema};
use mysql_source::{ConnectOptions, RawConn};
use std::fmt;

/// What to do about destination tables that exist before the task starts
/// (DTS: "processing mode of conflicting tables").
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictMode {
    /// The precheck fails ("precheck and report errors").
    #[default]
    Error,
    /// The precheck warns and the task writes into them ("ignore errors and
    /// proceed"): the full phase keeps the rows whose key is there, changes
    /// get record ids above the old ones ([`crate::conflict`]).
    Ignore,
}

/// Tables with table-level edits one task may hold, as DTS limits it.
pub const MAX_EDITED_TABLES: usize = 1_000;
/// Binlog retention below this fails the precheck.
pub const MIN_RETENTION_DAYS: f64 = 3.0;
/// Binlog retention below this warns.
pub const RECOMMENDED_RETENTION_DAYS: f64 = 7.0;

/// How a check came out.
#[derive(Clone, Copy, Debug, Eq, Ord, PartialEq, PartialOrd, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Fine.
    Pass,
    /// The task can run, at a risk the message names.
    Warning,
    /// The task must not start.
    Failure,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Pass => "pass",
            Self::Warning => "warning",
            Self::Failure => "failure",
        })
    }
}

/// One check's result.
#[derive(Clone, Debug, Eq, PartialEq, serde::Serialize)]
pub struct Check {
    /// Stable id, e.g. `binlog_format`.
    pub id: &'static str,
    /// How it came out.
    pub outcome: Outcome,
    /// What was found.
    pub message: String,
    /// How to fix it (warnings and failures).
    pub fix: Option<String>,
}

/// Every check's result, in a fixed order; as JSON `{"checks": [{"id",
/// "outcome": "pass"|"warning"|"failure", "message", "fix"}]}`.
#[derive(Clone, Debug, Default, Eq, PartialEq, serde::Serialize)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, id: &'static str, outcome: Outcome, message: String, fix: Option<String>) {
        self.checks.push(Check {
            id,
            outcome,
            message,
            fix,
        });
    }

    fn pass(&mut self, id: &'static str, message: impl Into<String>) {
        self.add(id, Outcome::Pass, message.into(), None);
    }

    fn warn(&mut self, id: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.add(id, Outcome::Warning, message.into(), Some(fix.into()));
    }

    pub(crate) fn fail(
        &mut self,
        id: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.add(id, Outcome::Failure, message.into(), Some(fix.into()));
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.outcome == Outcome::Failure)
    }

    /// Whether the task may start (warnings allowed).
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The check with this id.
    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            writeln!(f, "{:<8} {:<22} {}", c.outcome, c.id, c.message)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "{:<8} {:<22} fix: {fix}", "", "")?;
            }
        }
        Ok(())
    }
}

/// What the precheck looks at.
pub struct Inputs<'a, S: Sink + ?Sized> {
    /// The task file.
    pub cfg: &'a TaskConfig,
    /// How to reach the source.
    pub connect: &'a ConnectOptions,
    /// The destination.
    pub sink: &'a S,
    /// The metadata column names.
    pub meta: &'a MetaColumns,
    /// The partition column names of `t_log`.
    pub partition_columns: &'a [String],
    /// True when the task's checkpoint is past the precheck: destination
    /// tables that exist then are the task's own, not conflicts.
    pub resumed: bool,
    /// The binlog file a resumed task reads from next, if it has one yet.
    pub resume_binlog: Option<String>,
    /// The task's id from its checkpoint (empty before its first run, and
    /// in checkpoints older than task ids).
    pub task_id: &'a str,
    /// The destination tables the checkpoint says the task created.
    pub created: Created,
}

/// Which destination tables a task's checkpoint says are there
/// ([`Inputs::created`]): a resumed task whose tables are gone would
/// otherwise recreate them empty, or fail on every write.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Created {
    /// None yet (a new task, or one still in its schema phase).
    #[default]
    Nothing,
    /// The tables of these source tables (`db.table`) that the task's
    /// `types` write; `None` = of every selected table.
    Tables(Option<std::collections::BTreeSet<String>>),
    /// These destination tables, by name.
    Named(Vec<String>),
}

/// How to resolve [`crate::Error::TableOwned`] and a `destination_owners`
/// failure.
pub const OWNER_FIX: &str = "give this task its own record_id_tag in [source] (0-255) or other \
     destination names ([objects.databases], [objects.tables]); if the other task is gone for good \
     (its state_dir deleted), remove its owner marker: the file `_owner.tag-N` in the table's \
     folder (local warehouse), or the `[sync owners: ...]` part of the table comment \
     (MaxCompute: ALTER TABLE t SET COMMENT '...')";

/// Runs every check.
pub async fn run<S: Sink + ?Sized>(inputs: &Inputs<'_, S>) -> Report {
    let mut report = Report::default();
    let cfg = inputs.cfg;
    let incremental = cfg.sync.selected().incremental;
    state_dir(cfg, &mut report);
    let dest = match inputs.sink.probe().await {
        Ok(()) => {
            report.pass("destination_reachable", "the destination answers");
            true
        }
        Err(e) => {
            report.fail(
                "destination_reachable",
                format!("the destination cannot be used: {e}"),
                "check [destination]: the path must be writable (local), the endpoint, project and \
                 access key must be right and reachable (maxcompute)",
            );
            false
        }
    };
    let mut conn = match RawConn::connect(inputs.connect).await {
        Ok(c) => {
            report.pass(
                "source_reachable",
                format!(
                    "{} at {}:{} as {}",
                    // MariaDB prefixes its version with 5.5.5- for old clients.
                    c.hello().version.trim_start_matches("5.5.5-"),
                    inputs.connect.host,
                    inputs.connect.port,
                    inputs.connect.user
                ),
            );
            c
        }
        Err(e) => {
            report.fail(
                "source_reachable",
                format!("cannot log in to the source: {e}"),
                "check [source] url (host, port, user), the password (in the URL or \
                 SYNC_SOURCE_PASSWORD), the TLS options, and that no firewall blocks the port",
            );
            return report;
        }
    };
    if let Err(e) = source_checks(&mut conn, inputs, incremental, dest, &mut report).await {
        report.fail(
            "source_queries",
            format!("the source refused a precheck query: {e}"),
            "grant the task's user the privileges listed above, or run the precheck as a user who may \
             read information_schema and the server variables",
        );
    }
    let _ = conn.close().await;
    report
}

/// Each `include` entry must select something: a literal `db.table` that
/// selects nothing is a failure (a typo, or a table not created yet), a
/// pattern that selects nothing a warning naming it.
fn include_patterns(cfg: &crate::config::TaskConfig, selected: &[String], report: &mut Report) {
    if selected.is_empty() {
        // The `objects` check already failed naming the patterns.
        return;
    }
    let idle: Vec<&String> = cfg
        .objects
        .include
        .iter()
        .filter(|p| !selected.iter().any(|t| crate::config::glob(p, t)))
        .collect();
    let (literal, patterns): (Vec<&String>, Vec<&String>) =
        idle.into_iter().partition(|p| !p.contains('*'));
    if !literal.is_empty() {
        report.fail(
            "include_tables",
            format!(
                "include names {} but no such base table exists in the source (or exclude removes it)",
                quoted_list(&literal)
            ),
            "create the table first, correct the name (`db.table`, case-sensitive as in the source), \
             or remove it from [objects] include",
        );
    } else if !patterns.is_empty() {
        report.warn(
            "include_tables",
            format!(
                "include pattern(s) {} select no table",
                quoted_list(&patterns)
            ),
            "nothing to do if the tables come later (they are not picked up by a running task); \
             else correct or remove the pattern",
        );
    } else {
        report.pass("include_tables", "every include entry selects a table");
    }
}

fn quoted_list(items: &[&String]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn source_checks<S: Sink + ?Sized>(
    conn: &mut RawConn,
    inputs: &Inputs<'_, S>,
    incremental: bool,
    dest_ok: bool,
    report: &mut Report,
) -> mysql_source::Result<()> {
    let cfg = inputs.cfg;
    let schemas = crate::run::read_selected(conn, &cfg.objects).await?;
    let naming = Naming::new(&cfg.objects);
    let selected: Vec<String> = schemas
        .iter()
        .map(|s| format!("{}.{}", s.database, s.table))
        .collect();
    let mut tables = Vec::new();
    let mut object_problems = Vec::new();
    let escaped: Vec<String> = schemas.iter().flat_map(|s| naming.escaped(s)).collect();
    if escaped.is_empty() {
        report.pass(
            "destination_names",
            "every table and column keeps its name (letters, digits and _ only)",
        );
    } else {
        report.warn(
            "destination_names",
            format!(
                "{} name(s) hold characters MaxCompute does not take and land escaped: {}",
                escaped.len(),
                escaped.join("; ")
            ),
            "nothing to do if these names suit you; else choose your own with \
             [objects.tables.\"db.t\"] name = \"...\" or rename_columns (letters, digits, _; \
             a table's name starts with a letter)",
        );
    }
    for s in &schemas {
        match naming.table(s, inputs.meta) {
            Ok(t) => tables.push(t),
            Err(e) => object_problems.push(e),
        }
    }
    for unknown in naming.unknown_table_options(&selected) {
        object_problems.push(format!(
            "[objects.tables.\"{unknown}\"] names a table that the include/exclude patterns do not select \
             (or that does not exist)"
        ));
    }
    if schemas.is_empty() {
        report.fail(
            "objects",
            format!(
                "no source table matches include = {:?} (exclude = {:?})",
                cfg.objects.include, cfg.objects.exclude
            ),
            "fix the [objects] patterns (`db.table`, `*` matches any run of characters)",
        );
    } else if !object_problems.is_empty() {
        report.fail(
            "objects",
            object_problems.join("; "),
            "fix the [objects.tables] entries: source names are case-sensitive, as in the source",
        );
    } else {
        let n = schemas.len();
        report.pass(
            "objects",
            format!("{n} table{} selected", if n == 1 { "" } else { "s" }),
        );
    }
    include_patterns(cfg, &selected, report);
    online_ddl_tables(conn, cfg, &naming, &selected, report).await?;

    privileges(conn, &schemas, report).await?;
    if incremental {
        binlog_settings(conn, report).await?;
        binlog_available(conn, inputs.resume_binlog.as_deref(), report).await?;
        server_id(conn, cfg.source.server_id, report).await?;
        storage_engines(&schemas, report);
        cascading_foreign_keys(conn, &schemas, report).await?;
        memory_tables(&schemas, report);
        session_binlog_format(conn, &schemas, report).await?;
    } else {
        report.pass(
            "binlog",
            "no incremental phase: the binlog settings do not matter",
        );
    }
    row_keys(&schemas, report);
    mirror_keyless(inputs.cfg, &tables, report);
    if dest_ok {
        conflicts(inputs, &tables, report).await;
        owners(inputs, &tables, report).await;
        destination_tables(inputs, &tables, report).await;
    }
    let (meta_clashes, name_clashes) = clashes(&tables, inputs.meta, inputs.partition_columns);
    if name_clashes.is_empty() {
        report.pass(
            "name_clashes",
            "every destination table and column name is unique",
        );
    } else {
        report.fail(
            "name_clashes",
            name_clashes.join("; "),
            "rename one of them ([objects.databases], [objects.tables.\"db.t\"] name or \
             rename_columns), or keep the source's case (capitalization = \"source\")",
        );
    }
    if meta_clashes.is_empty() {
        report.pass(
            "metadata_columns",
            "no business column is named like a metadata column",
        );
    } else {
        report.fail(
            "metadata_columns",
            meta_clashes.join("; "),
            "choose naming_rule = \"new\" in [sync] (new_dts_sync_* names), or rename the column \
             with rename_columns",
        );
    }
    column_types(&tables, inputs.sink, report);
    if naming.edits_tables() && schemas.len() > MAX_EDITED_TABLES {
        report.fail(
            "table_limit",
            format!(
                "{} tables selected with table-level edits ([objects.tables]); one task may edit at most {MAX_EDITED_TABLES}",
                schemas.len()
            ),
            "split the tables over several tasks, or drop the [objects.tables] edits \
             (database renames and whole-table selection have no limit)",
        );
    } else {
        report.pass("table_limit", "within the table limit");
    }
    Ok(())
}

/// A privilege held on some scope.
#[derive(Debug, PartialEq)]
struct Grant {
    privileges: Vec<String>,
    /// `None` = `*.*`; `Some((db, None))` = `db.*`; `Some((db, Some(t)))` = one table.
    scope: Option<(String, Option<String>)>,
}

/// Parses one line of `SHOW GRANTS`; `None` for lines that grant no privileges (roles, proxy).
fn parse_grant(line: &str) -> Option<Grant> {
    let rest = line.strip_prefix("GRANT ")?;
    let on = rest.find(" ON ")?;
    let (privs, after) = (&rest[..on], &rest[on + 4..]);
    let to = after.find(" TO ")?;
    let object = after[..to].trim();
    // Split the list on commas outside parentheses (column lists).
    let mut privileges = Vec::new();
    let (mut depth, mut cur) = (0, String::new());
    for ch in privs.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                privileges.push(cur.trim().to_ascii_uppercase());
                cur.clear();
                continue;
            }
            _ => {}
        }
        if depth == 0 && ch != ')' {
            cur.push(ch);
        }
    }
    privileges.push(cur.trim().to_ascii_uppercase());
    let object = object.strip_prefix("TABLE ").unwrap_or(object);
    if object.starts_with("PROCEDURE ") || object.starts_with("FUNCTION ") {
        return None;
    }
    let unquote = |s: &str| s.trim().trim_matches('`').replace("``", "`");
    let scope = if object == "*.*" || object == "*" {
        None
    } else {
        let dot = object
            .rfind("`.")
            .map(|i| i + 1)
            .or_else(|| object.find('.'))?;
        let (db, table) = (&object[..dot], &object[dot + 1..]);
        let table = (table.trim() != "*").then(|| unquote(table));
        Some((unquote(db), table))
    };
    Some(Grant { privileges, scope })
}

fn holds(grant: &Grant, privilege: &str) -> bool {
    grant
        .privileges
        .iter()
        .any(|p| p == privilege || p == "ALL" || p == "ALL PRIVILEGES")
}

async fn privileges(
    conn: &mut RawConn,
    schemas: &[TableSchema],
    report: &mut Report,
) -> mysql_source::Result<()> {
    let rows = conn.query_strings("SHOW GRANTS").await?;
    let grants: Vec<Grant> = rows
        .iter()
        .filter_map(|r| r.first().cloned().flatten())
        .filter_map(|l| parse_grant(&l))
        .collect();
    let global = |p: &str| grants.iter().any(|g| g.scope.is_none() && holds(g, p));
    let mut missing = Vec::new();
    if !global("REPLICATION SLAVE") {
        missing.push("REPLICATION SLAVE ON *.*".to_owned());
    }
    // MariaDB 10.5 renamed REPLICATION CLIENT to BINLOG MONITOR.
    if !global("REPLICATION CLIENT") && !global("BINLOG MONITOR") && !global("SUPER") {
        missing.push("REPLICATION CLIENT ON *.* (MariaDB: BINLOG MONITOR)".to_owned());
    }
    let no_select: Vec<String> = schemas
        .iter()
        .filter(|s| {
            !grants.iter().any(|g| {
                holds(g, "SELECT")
                    && match &g.scope {
                        None => true,
                        Some((db, None)) => db_matches(db, &s.database),
                        Some((db, Some(t))) => db == &s.database && t == &s.table,
                    }
            })
        })
        .map(|s| format!("{}.{}", s.database, s.table))
        .collect();
    if !no_select.is_empty() {
        missing.push(format!("SELECT on {}", no_select.join(", ")));
    }
    if missing.is_empty() {
        report.pass(
            "source_privileges",
            "SELECT, REPLICATION SLAVE and REPLICATION CLIENT are granted",
        );
    } else {
        // The account as the server matched it (a host pattern, say).
        let account = conn
            .query_strings("SELECT CURRENT_USER()")
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .and_then(|u| {
                u.rsplit_once('@')
                    .map(|(user, host)| format!("'{user}'@'{host}'"))
            })
            .unwrap_or_else(|| "the task's account".to_owned());
        report.fail(
            "source_privileges",
            format!("the source user {account} lacks {}", missing.join("; ")),
            format!(
                "as an administrator: GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* \
                 TO {account} (MariaDB 10.5+: BINLOG MONITOR instead of REPLICATION CLIENT)"
            ),
        );
    }
    Ok(())
}

/// A database-level grant's name may hold `%` and `_` wildcards (escaped as `\_`).
fn db_matches(pattern: &str, db: &str) -> bool {
    fn go(p: &[char], d: &[char]) -> bool {
        match p.split_first() {
            None => d.is_empty(),
            Some(('\\', rest)) => match (rest.split_first(), d.split_first()) {
                (Some((pc, prest)), Some((dc, drest))) => pc == dc && go(prest, drest),
                _ => false,
            },
            Some(('%', rest)) => (0..=d.len()).any(|i| go(rest, &d[i..])),
            Some(('_', rest)) => !d.is_empty() && go(rest, &d[1..]),
            Some((c, rest)) => d.first() == Some(c) && go(rest, &d[1..]),
        }
    }
    let (p, d): (Vec<char>, Vec<char>) = (pattern.chars().collect(), db.chars().collect());
    go(&p, &d)
}

async fn variable(conn: &mut RawConn, name: &str) -> mysql_source::Result<Option<String>> {
    let rows = conn
        .query_strings(&format!("SHOW GLOBAL VARIABLES LIKE '{name}'"))
        .await?;
    Ok(rows.first().and_then(|r| r.get(1).cloned().flatten()))
}

async fn binlog_settings(conn: &mut RawConn, report: &mut Report) -> mysql_source::Result<()> {
    let log_bin = variable(conn, "log_bin").await?.unwrap_or_default();
    if log_bin.eq_ignore_ascii_case("ON") || log_bin == "1" {
        report.pass("log_bin", "binary logging is on");
    } else {
        report.fail(
            "log_bin",
            format!("binary logging is off (log_bin = {log_bin})"),
            "enable it in the server's config file (log-bin = mysql-bin, server-id = <n>; \
             PolarDB: loose_polar_log_bin = ON) and restart the server",
        );
    }
    let format = variable(conn, "binlog_format").await?.unwrap_or_default();
    if format.eq_ignore_ascii_case("ROW") {
        report.pass("binlog_format", "binlog_format = ROW");
    } else {
        report.fail(
            "binlog_format",
            format!("binlog_format = {format}, the task needs ROW"),
            "SET GLOBAL binlog_format = 'ROW' and put binlog_format = ROW in the server's config \
             file; connections opened before keep their format, so restart the writers",
        );
    }
    let image = variable(conn, "binlog_row_image")
        .await?
        .unwrap_or_default();
    if image.eq_ignore_ascii_case("FULL") {
        report.pass("binlog_row_image", "binlog_row_image = FULL");
    } else {
        report.fail(
            "binlog_row_image",
            format!("binlog_row_image = {image}, the task needs FULL (whole rows before and after each change)"),
            "SET GLOBAL binlog_row_image = 'FULL' and put binlog_row_image = FULL in the server's \
             config file",
        );
    }
    let seconds = variable(conn, "binlog_expire_logs_seconds")
        .await?
        .and_then(|v| v.parse::<f64>().ok());
    let days = variable(conn, "expire_logs_days")
        .await?
        .and_then(|v| v.parse::<f64>().ok());
    let auto_purge = variable(conn, "binlog_expire_logs_auto_purge").await?;
    let retention = match (seconds, days) {
        _ if auto_purge.is_some_and(|v| v.eq_ignore_ascii_case("OFF")) => None,
        (Some(s), _) if s > 0.0 => Some(s / 86_400.0),
        (_, Some(d)) if d > 0.0 => Some(d),
        _ => None,
    };
    let fix = "keep binlogs longer: SET GLOBAL binlog_expire_logs_seconds = 604800 (7 days; \
               MariaDB before 10.6 and MySQL 5.7: expire_logs_days = 7) and the same in the config file";
    match retention {
        None => report.pass(
            "binlog_retention",
            "binlogs never expire automatically (purged only by hand)",
        ),
        Some(d) if d < MIN_RETENTION_DAYS => report.fail(
            "binlog_retention",
            format!(
                "binlogs expire after {d:.2} days; at least {MIN_RETENTION_DAYS} are needed so that a \
                 stopped task can resume"
            ),
            fix,
        ),
        Some(d) if d < RECOMMENDED_RETENTION_DAYS => report.warn(
            "binlog_retention",
            format!(
                "binlogs expire after {d:.2} days; {RECOMMENDED_RETENTION_DAYS} are recommended"
            ),
            fix,
        ),
        Some(d) => report.pass("binlog_retention", format!("binlogs are kept {d:.2} days")),
    }
    Ok(())
}

async fn binlog_available(
    conn: &mut RawConn,
    resume: Option<&str>,
    report: &mut Report,
) -> mysql_source::Result<()> {
    let Some(file) = resume else {
        report.pass(
            "binlog_available",
            "the task starts from the current binlog position",
        );
        return Ok(());
    };
    let logs = conn.query_strings("SHOW BINARY LOGS").await?;
    if logs
        .iter()
        .any(|r| r.first().cloned().flatten().as_deref() == Some(file))
    {
        report.pass(
            "binlog_available",
            format!("{file}, where the task resumes, is on the server"),
        );
    } else {
        report.fail(
            "binlog_available",
            format!(
                "{file}, where the task resumes, is no longer on the server: the changes in it are lost \
                 to this task"
            ),
            "start the task afresh (a new state_dir and new or emptied destination tables) to take a \
             new snapshot, and keep binlogs longer (binlog_expire_logs_seconds)",
        );
    }
    Ok(())
}

async fn server_id(conn: &mut RawConn, ours: u32, report: &mut Report) -> mysql_source::Result<()> {
    let theirs = variable(conn, "server_id")
        .await?
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    if theirs == 0 {
        report.fail(
            "server_id",
            "the source's server_id is 0: it refuses replicas",
            "set server-id = <a unique number > 0> in the source's config file and restart it",
        );
    } else if theirs == ours {
        report.fail(
            "server_id",
            format!("[source] server_id = {ours} is the source's own server id"),
            "give the task a server_id that no server or replica of this source uses",
        );
    } else {
        report.pass(
            "server_id",
            format!("source server id {theirs}, the task reads as replica {ours}"),
        );
    }
    Ok(())
}

fn storage_engines(schemas: &[TableSchema], report: &mut Report) {
    // Changes to these tables never reach the binlog as rows of the table.
    const NO_ROWS: [&str; 4] = ["FEDERATED", "MRG_MYISAM", "MERGE", "BLACKHOLE"];
    let bad: Vec<String> = schemas
        .iter()
        .filter(|s| NO_ROWS.iter().any(|e| s.engine.eq_ignore_ascii_case(e)))
        .map(|s| format!("{}.{} ({})", s.database, s.table, s.engine))
        .collect();
    if bad.is_empty() {
        report.pass("storage_engines", "every table's engine logs its rows");
    } else {
        report.fail(
            "storage_engines",
            format!(
                "the incremental phase cannot follow {}: their engine writes no rows of its own to the binlog",
                bad.join(", ")
            ),
            "exclude them in [objects] exclude (sync the underlying tables instead), or convert them \
             to InnoDB",
        );
    }
}

/// At most this many names in one warning; the rest are counted.
const NAMES_SHOWN: usize = 20;

/// `names` joined with `, `, the first [`NAMES_SHOWN`] of them.
fn name_list(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(NAMES_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES_SHOWN {
        text.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    text
}

/// Synced tables that are the child of an `ON DELETE`/`ON UPDATE`
/// `CASCADE` or `SET NULL` foreign key: InnoDB makes those changes below
/// the binlog (MariaDB and MySQL 8 log no rows for them).
async fn cascading_foreign_keys(
    conn: &mut RawConn,
    schemas: &[TableSchema],
    report: &mut Report,
) -> mysql_source::Result<()> {
    let rows = conn
        .query_strings(
            "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, UNIQUE_CONSTRAINT_SCHEMA, \
             REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE \
             FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE DELETE_RULE IN ('CASCADE', 'SET NULL') OR UPDATE_RULE IN ('CASCADE', 'SET NULL') \
             ORDER BY CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME",
        )
        .await?;
    let cascades = |rule: &str| rule == "CASCADE" || rule == "SET NULL";
    let found: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let cell = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let (db, table) = (cell(0), cell(1));
            if !schemas.iter().any(|s| s.database == db && s.table == table) {
                return None;
            }
            let (delete, update) = (cell(5), cell(6));
            let rules: Vec<String> = [("DELETE", delete), ("UPDATE", update)]
                .into_iter()
                .filter(|(_, rule)| cascades(rule))
                .map(|(on, rule)| format!("ON {on} {rule}"))
                .collect();
            Some(format!(
                "{db}.{table} (foreign key {} to {}.{} {})",
                cell(2),
                cell(3),
                cell(4),
                rules.join(" ")
            ))
        })
        .collect();
    if found.is_empty() {
        report.pass(
            "cascading_foreign_keys",
            "no synced table is changed by a cascading foreign key",
        );
    } else {
        report.warn(
            "cascading_foreign_keys",
            format!(
                "the rows that a foreign key's CASCADE or SET NULL changes in these synced tables \
                 never reach the binlog (MariaDB and MySQL 8 log no rows for them), so the \
                 destination misses those changes: {}",
                name_list(&found)
            ),
            "let the application change the child rows itself (ON DELETE/UPDATE RESTRICT), or run \
             `sync-cli verify` regularly and resync a table that differs",
        );
    }
    Ok(())
}

/// Synced MEMORY tables: a server restart empties them, and the binlog
/// shows that only as a statement.
/// Tables of online schema-change tools ([`crate::osc`]): the include
/// patterns' matches that are left out as such, and synced tables that
/// look like one because an include entry names them.
async fn online_ddl_tables(
    conn: &mut RawConn,
    cfg: &crate::config::TaskConfig,
    naming: &Naming,
    selected: &[String],
    report: &mut Report,
) -> mysql_source::Result<()> {
    let rows = conn
        .query_strings(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' ORDER BY 1, 2",
        )
        .await?;
    let mut left_out = Vec::new();
    let mut synced = Vec::new();
    for row in rows {
        let (Some(Some(db)), Some(Some(table))) = (row.first(), row.get(1)) else {
            continue;
        };
        let name = format!("{db}.{table}");
        if let Some(role) = naming.osc_role(db, table)
            && cfg.objects.selects(db, table)
        {
            left_out.push(format!("{name} ({})", role.as_str()));
        } else if selected.contains(&name)
            && let Ok(Some(role)) =
                crate::osc::Classifier::new(&cfg.objects.online_ddl).map(|c| c.role(table))
        {
            synced.push(format!("{name} ({})", role.as_str()));
        }
    }
    if !synced.is_empty() {
        report.warn(
            "online_ddl_tables",
            format!(
                "synced because an include entry names them, though their names are those of an \
                 online schema-change tool's tables: {}",
                name_list(&synced)
            ),
            "nothing to do if they are your own tables; else remove them from [objects] include",
        );
    } else if !left_out.is_empty() {
        report.warn(
            "online_ddl_tables",
            format!(
                "not synced, as tables of an online schema-change tool (gh-ost, \
                 pt-online-schema-change, DMS; [objects.online_ddl]): {}; a change under way \
                 is followed, and its cut-over is the table's DDL",
                name_list(&left_out)
            ),
            "nothing to do; if one is your own table, name it in [objects] include",
        );
    } else {
        report.pass(
            "online_ddl_tables",
            "no table of an online schema-change tool among the selected ones",
        );
    }
    Ok(())
}

fn memory_tables(schemas: &[TableSchema], report: &mut Report) {
    let memory: Vec<String> = schemas
        .iter()
        .filter(|s| s.engine.eq_ignore_ascii_case("MEMORY"))
        .map(|s| format!("{}.{}", s.database, s.table))
        .collect();
    if memory.is_empty() {
        report.pass("memory_tables", "no synced table is a MEMORY table");
    } else {
        report.warn(
            "memory_tables",
            format!(
                "MEMORY tables lose their rows when the server restarts, and the binlog shows \
                 that only as a statement the server generates (TRUNCATE TABLE, which \
                 [sync.ddl] truncate_table decides; older servers: DELETE, at which the task \
                 stops under [sync] unsupported_events), never as row deletes: {}",
                name_list(&memory)
            ),
            "convert them to InnoDB (ALTER TABLE … ENGINE = InnoDB), or exclude them in [objects] \
             exclude",
        );
    }
}

/// Privileges that let a session change its own `binlog_format` and
/// `binlog_row_image`: MariaDB asks for SUPER or BINLOG ADMIN (10.5.2+),
/// MySQL 8 for SYSTEM_VARIABLES_ADMIN or SESSION_VARIABLES_ADMIN (or SUPER).
const FORMAT_SWITCH_PRIVILEGES: [&str; 4] = [
    "SUPER",
    "BINLOG ADMIN",
    "SYSTEM_VARIABLES_ADMIN",
    "SESSION_VARIABLES_ADMIN",
];

/// Accounts that may write synced tables and may also switch their
/// session to `binlog_format = STATEMENT` or a row image that is not full
/// (or turn `sql_log_bin` off): their changes may reach the binlog without
/// whole row images.
async fn session_binlog_format(
    conn: &mut RawConn,
    schemas: &[TableSchema],
    report: &mut Report,
) -> mysql_source::Result<()> {
    const WRITES: [&str; 3] = ["INSERT", "UPDATE", "DELETE"];
    let in_list = |list: &[&str]| {
        list.iter()
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let global = conn
        .query_strings(&format!(
            "SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES \
             WHERE PRIVILEGE_TYPE IN ({}, {})",
            in_list(&FORMAT_SWITCH_PRIVILEGES),
            in_list(&WRITES)
        ))
        .await?;
    let schema_level = conn
        .query_strings(&format!(
            "SELECT GRANTEE, TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES \
             WHERE PRIVILEGE_TYPE IN ({})",
            in_list(&WRITES)
        ))
        .await?;
    let table_level = conn
        .query_strings(&format!(
            "SELECT GRANTEE, TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLE_PRIVILEGES \
             WHERE PRIVILEGE_TYPE IN ({})",
            in_list(&WRITES)
        ))
        .await?;
    let cell = |r: &Vec<Option<String>>, i: usize| r.get(i).cloned().flatten().unwrap_or_default();
    let mut switchers: Vec<String> = Vec::new();
    let mut writers: Vec<String> = Vec::new();
    for r in &global {
        let (grantee, privilege) = (cell(r, 0), cell(r, 1));
        let into = if FORMAT_SWITCH_PRIVILEGES.contains(&privilege.as_str()) {
            &mut switchers
        } else {
            &mut writers
        };
        if !into.contains(&grantee) {
            into.push(grantee);
        }
    }
    for r in &schema_level {
        let (grantee, pattern) = (cell(r, 0), cell(r, 1));
        if schemas.iter().any(|s| db_matches(&pattern, &s.database)) && !writers.contains(&grantee)
        {
            writers.push(grantee);
        }
    }
    for r in &table_level {
        let (grantee, db, table) = (cell(r, 0), cell(r, 1), cell(r, 2));
        if schemas.iter().any(|s| s.database == db && s.table == table)
            && !writers.contains(&grantee)
        {
            writers.push(grantee);
        }
    }
    let mut risky: Vec<String> = switchers
        .into_iter()
        .filter(|g| writers.contains(g))
        .collect();
    risky.sort();
    // Without SELECT on the grant tables a user sees only its own grants.
    let sees_all = conn
        .query_strings("SELECT 1 FROM mysql.user LIMIT 1")
        .await
        .is_ok();
    let scope = if sees_all {
        String::new()
    } else {
        " (only the task's own account could be checked: grant it SELECT ON mysql.user to check \
         every account)"
            .to_owned()
    };
    if risky.is_empty() {
        report.pass(
            "session_binlog_format",
            format!(
                "no account that may write synced tables may change its session's binlog format{scope}"
            ),
        );
    } else {
        report.warn(
            "session_binlog_format",
            format!(
                "these accounts may write synced tables and may switch their own session to \
                 binlog_format = STATEMENT or binlog_row_image = MINIMAL (they hold SUPER, \
                 BINLOG ADMIN, SYSTEM_VARIABLES_ADMIN or SESSION_VARIABLES_ADMIN), which the task \
                 cannot turn into row changes and stops at ([sync] unsupported_events): {}{scope}",
                name_list(&risky)
            ),
            format!(
                "write with accounts that hold none of these privileges (REVOKE SUPER, BINLOG \
                 ADMIN ON *.* FROM {}; MySQL 8: SYSTEM_VARIABLES_ADMIN, SESSION_VARIABLES_ADMIN), \
                 and keep binlog_format = ROW and binlog_row_image = FULL in the server's config \
                 file",
                risky.join(", ")
            ),
        );
    }
    Ok(())
}

fn row_keys(schemas: &[TableSchema], report: &mut Report) {
    let keyless: Vec<String> = schemas
        .iter()
        .filter(|s| s.row_key().is_none())
        .map(|s| format!("{}.{}", s.database, s.table))
        .collect();
    if keyless.is_empty() {
        report.pass(
            "row_keys",
            "every table has a primary key or a NOT NULL unique key",
        );
    } else {
        report.warn(
            "row_keys",
            format!(
                "no primary key and no NOT NULL unique key on {}: merge, merge-sql and verify \
                 treat their rows as multisets (identical rows stay separate copies; an UPDATE \
                 or DELETE of one copy changes one copy); the full phase reads each in one \
                 scan, and a change made to one between the start of the full phase and its \
                 scan counts twice (an inserted row lands twice, a deleted one of identical \
                 rows takes a second copy with it; verify lists them)",
                keyless.join(", ")
            ),
            "add a primary key (ALTER TABLE ... ADD PRIMARY KEY (...)) where you can; \
             otherwise do not write to these tables during the full phase",
        );
    }
}

fn mirror_on(cfg: &crate::config::TaskConfig) -> bool {
    matches!(&cfg.destination, crate::config::DestinationConfig::Maxcompute(mc) if mc.mirror)
}

/// `[destination] mirror`: a table without a key gets no mirror table.
fn mirror_keyless(cfg: &crate::config::TaskConfig, tables: &[SyncedTable], report: &mut Report) {
    if !mirror_on(cfg) {
        return;
    }
    let keyless: Vec<String> = tables
        .iter()
        .filter(|t| crate::mirror::Mirror::name_of(t).is_none())
        .map(|t| t.source_name.clone())
        .collect();
    // A mirror is named like a stem: `orders_base`'s mirror would be `orders`'s t_base.
    let landed: std::collections::HashMap<String, &str> = tables
        .iter()
        .flat_map(|t| {
            [t.base_table(), t.log_table()].map(|n| (n.to_lowercase(), t.source_name.as_str()))
        })
        .collect();
    let clashes: Vec<String> = tables
        .iter()
        .filter_map(|t| {
            let name = crate::mirror::Mirror::name_of(t)?;
            let other = landed.get(&name.to_lowercase())?;
            Some(format!(
                "the mirror table of {} is {name}, which is a table of {other}",
                t.source_name
            ))
        })
        .collect();
    if clashes.is_empty() {
        report.pass(
            "mirror_names",
            "no mirror table is named like another table",
        );
    } else {
        report.fail(
            "mirror_names",
            clashes.join("; "),
            "rename one of the tables ([objects.tables.\"db.t\"] name)",
        );
    }
    if keyless.is_empty() {
        report.pass("mirror_keyless", "every table gets its mirror table");
    } else {
        report.warn(
            "mirror_keyless",
            format!(
                "no primary key and no NOT NULL unique key on {}: they get no mirror table \
                 (a Delta table needs a primary key); their t_base and t_log are written as usual",
                keyless.join(", ")
            ),
            "add a primary key (ALTER TABLE ... ADD PRIMARY KEY (...)) to mirror them",
        );
    }
}

async fn conflicts<S: Sink + ?Sized>(
    inputs: &Inputs<'_, S>,
    tables: &[SyncedTable],
    report: &mut Report,
) {
    if inputs.resumed {
        report.pass(
            "destination_conflicts",
            "the task is past its precheck: its destination tables are its own",
        );
        return;
    }
    let mut existing = Vec::new();
    let mirror = mirror_on(inputs.cfg);
    for t in tables {
        let own = crate::mirror::Mirror::name_of(t).filter(|_| mirror);
        for name in [t.base_table(), t.log_table()].into_iter().chain(own) {
            match inputs.sink.table_exists(&name).await {
                Ok(true) => existing.push(name),
                Ok(false) => {}
                Err(e) => {
                    report.fail(
                        "destination_conflicts",
                        format!("cannot tell whether {name} exists: {e}"),
                        "check that the destination is reachable and readable",
                    );
                    return;
                }
            }
        }
    }
    if existing.is_empty() {
        report.pass("destination_conflicts", "no destination table exists yet");
        return;
    }
    let list = existing.join(", ");
    match inputs.cfg.objects.conflicting_tables {
        crate::precheck::ConflictMode::Error => report.fail(
            "destination_conflicts",
            format!("destination tables exist already: {list}"),
            "rename the tables ([objects.databases] or [objects.tables.\"db.t\"] name), drop or \
             rename the destination tables, or set conflicting_tables = \"ignore\" in [objects] to \
             write into them",
        ),
        crate::precheck::ConflictMode::Ignore => ignore_conflicts(inputs, tables, report).await,
    }
}

/// `conflicting_tables = "ignore"` with destination tables that exist: what
/// the task will do with them, or why it cannot ([`crate::conflict`]).
async fn ignore_conflicts<S: Sink + ?Sized>(
    inputs: &Inputs<'_, S>,
    tables: &[SyncedTable],
    report: &mut Report,
) {
    let found = match crate::conflict::survey(
        inputs.sink,
        tables,
        inputs.cfg,
        inputs.meta,
        inputs.partition_columns,
    )
    .await
    {
        Ok(f) => f,
        Err(e) => {
            report.fail(
                "destination_conflicts",
                format!("cannot read the destination tables that exist already: {e}"),
                "check that the destination is reachable and readable",
            );
            return;
        }
    };
    let mut schema = Vec::new();
    let mut other = Vec::new();
    for p in &found.problems {
        let line = (format!("{}: {}", p.table, p.problem), p.fix.clone());
        if p.check == "destination_schema" {
            schema.push(line);
        } else {
            other.push(line);
        }
    }
    let join = |v: &[(String, String)], i: usize| {
        v.iter()
            .map(|l| if i == 0 { l.0.clone() } else { l.1.clone() })
            .collect::<Vec<_>>()
            .join("; ")
    };
    if schema.is_empty() {
        report.pass(
            "destination_schema",
            "the existing destination tables have the columns the task writes",
        );
    } else {
        report.fail("destination_schema", join(&schema, 0), join(&schema, 1));
    }
    if !other.is_empty() {
        report.fail("destination_conflicts", join(&other, 0), join(&other, 1));
        return;
    }
    let base: Vec<String> = tables
        .iter()
        .filter(|t| found.existing.base.contains(&t.source_name))
        .map(|t| t.base_table())
        .collect();
    let mut what = Vec::new();
    if !base.is_empty() {
        what.push(format!(
            "the full phase skips every source row whose key {} holds already (the row there \
             stays as it is; status and the log count the skipped rows per table)",
            base.join(", ")
        ));
    }
    let logs: Vec<String> = found
        .logs
        .iter()
        .map(|(name, max)| match max {
            Some(max) => format!("{name} up to record_id {max}"),
            None => format!("{name} empty"),
        })
        .collect();
    if !logs.is_empty() {
        what.push(format!(
            "changes get record_ids from counter {} of record_id_tag {} on ({}), so they outrank \
             every older record in merge, merge-sql and verify",
            found.existing.next_record_id,
            inputs.cfg.source.record_id_tag,
            logs.join(", ")
        ));
    }
    what.push(
        "rows and records already there stay: a key the source no longer has, or changed while \
         no task synced it, keeps its old state until its next change"
            .to_owned(),
    );
    report.warn(
        "destination_conflicts",
        format!(
            "destination tables exist already and will be written into (conflicting_tables = \
             \"ignore\"): {}. {}",
            found.tables.join(", "),
            capitalized(&what.join("; "))
        ),
        "nothing to do if that is what you want; otherwise drop or rename those tables, or \
         give the task's tables other names ([objects.databases], [objects.tables])",
    );
}

/// `text` with its first letter in upper case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `state_dir`: the task can keep its checkpoint, lock and ledgers: the
/// folder exists or can be made, and a file written into it lands.
fn state_dir(cfg: &crate::config::TaskConfig, report: &mut Report) {
    let dir = &cfg.sync.state_dir;
    let probe = dir.join(format!(".precheck-{}", std::process::id()));
    let written = crate::private_fs::create_dir_all(dir)
        .and_then(|()| crate::private_fs::write_durably(&probe, b"probe"));
    let _ = std::fs::remove_file(&probe);
    match written {
        Ok(()) => report.pass("state_dir", format!("{} is writable", dir.display())),
        Err(e) => report.fail(
            "state_dir",
            format!(
                "the task cannot keep its checkpoint in {}: {e}",
                dir.display()
            ),
            "let the task's user create and write that folder, or set [sync] state_dir to one \
             it may write (one folder per task, kept between runs)",
        ),
    }
}

/// `destination_tables`: every destination table the task will write is
/// there when it does not create it itself — a resumed task's own tables
/// (gone tables would come back empty, without the rows the checkpoint
/// says they hold), and with `types` lacking `"schema"` all of them.
async fn destination_tables<S: Sink + ?Sized>(
    inputs: &Inputs<'_, S>,
    tables: &[SyncedTable],
    report: &mut Report,
) {
    let selected = inputs.cfg.sync.selected();
    let written = |t: &SyncedTable| {
        let mut names = Vec::new();
        if selected.schema || selected.full {
            names.push(t.base_table());
        }
        if selected.schema || selected.incremental {
            names.push(t.log_table());
        }
        names
    };
    let (needed, resumed): (Vec<String>, bool) = match &inputs.created {
        Created::Named(names) => (names.clone(), true),
        Created::Tables(only) => (
            tables
                .iter()
                .filter(|t| only.as_ref().is_none_or(|o| o.contains(&t.source_name)))
                .flat_map(written)
                .collect(),
            true,
        ),
        Created::Nothing if !selected.schema && !inputs.resumed => {
            (tables.iter().flat_map(written).collect(), false)
        }
        Created::Nothing => {
            report.pass(
                "destination_tables",
                "the task creates its destination tables (types include \"schema\")",
            );
            return;
        }
    };
    let mut missing = Vec::new();
    for name in needed {
        match inputs.sink.table_exists(&name).await {
            Ok(true) => {}
            Ok(false) => missing.push(name),
            Err(e) => {
                report.fail(
                    "destination_tables",
                    format!("cannot tell whether {name} exists: {e}"),
                    "check that the destination is reachable and readable",
                );
                return;
            }
        }
    }
    match (missing.is_empty(), resumed) {
        (true, true) => report.pass(
            "destination_tables",
            "every destination table the checkpoint names is there",
        ),
        (true, false) => report.pass(
            "destination_tables",
            "types lack \"schema\" and every destination table the task writes exists",
        ),
        (false, true) => report.fail(
            "destination_tables",
            format!(
                "the checkpoint says the task created and wrote these destination tables, but \
                 they are gone: {}",
                missing.join(", ")
            ),
            "point [destination] back at the warehouse or project that holds them, or restore \
             them; to start over, use a new state_dir",
        ),
        (false, false) => report.fail(
            "destination_tables",
            format!(
                "[sync] types = [{}] lack \"schema\", so the task creates no table, and these \
                 do not exist: {}",
                inputs
                    .cfg
                    .sync
                    .types
                    .iter()
                    .map(|t| format!("\"{}\"", format!("{t:?}").to_lowercase()))
                    .collect::<Vec<_>>()
                    .join(", "),
                missing.join(", ")
            ),
            "add \"schema\" to [sync] types (the task then creates them), or create them first \
             (a run with types = [\"schema\"])",
        ),
    }
}

/// `destination_owners`: no other task writes a destination table under
/// this task's `record_id_tag` ([`Sink::claim_table`]).
async fn owners<S: Sink + ?Sized>(
    inputs: &Inputs<'_, S>,
    tables: &[SyncedTable],
    report: &mut Report,
) {
    let tag = inputs.cfg.source.record_id_tag;
    let mut taken = Vec::new();
    for t in tables {
        for name in [t.base_table(), t.log_table()] {
            let owners = match inputs.sink.table_exists(&name).await {
                Ok(false) => continue,
                Ok(true) => inputs.sink.table_owners(&name).await,
                Err(e) => Err(e),
            };
            match owners {
                Ok(owners) => {
                    if let Some(owner) = owners.get(&tag).filter(|o| *o != inputs.task_id) {
                        taken.push(format!("{name} (task {owner})"));
                    }
                }
                Err(e) => {
                    report.fail(
                        "destination_owners",
                        format!("cannot read the owners of {name}: {e}"),
                        "check that the destination is reachable and readable",
                    );
                    return;
                }
            }
        }
    }
    if taken.is_empty() {
        report.pass(
            "destination_owners",
            format!("no other task writes the destination tables under record_id_tag {tag}"),
        );
    } else {
        let this = if inputs.task_id.is_empty() {
            "this task (not started yet)".to_owned()
        } else {
            format!("this task ({})", inputs.task_id)
        };
        report.fail(
            "destination_owners",
            format!(
                "another task writes these destination tables under record_id_tag {tag}, the \
                 tag of {this}; both would write the same rows with colliding record ids: {}",
                taken.join(", ")
            ),
            OWNER_FIX,
        );
    }
}

/// Why a column type cannot be synced, if it cannot.
pub fn unsupported_type(column_type: &ColumnType) -> Option<String> {
    match column_type {
        // The snapshot reads these as text while the binlog carries their
        // binary form: t_base and t_log would disagree.
        ColumnType::Other(name) => Some(format!(
            "type {name} has no mapping (its binlog form differs from what SELECT returns)"
        )),
        _ => None,
    }
}

fn column_types<S: Sink + ?Sized>(tables: &[SyncedTable], sink: &S, report: &mut Report) {
    let bad: Vec<String> = tables
        .iter()
        .flat_map(|t| {
            t.schema
                .columns
                .iter()
                .zip(t.base_schema.fields())
                .filter_map(move |(c, field)| {
                    unsupported_type(&c.column_type)
                        .or_else(|| sink.column_problem(field))
                        .map(|why| format!("{}.{}: {why}", t.source_name, c.name))
                })
        })
        .collect();
    if bad.is_empty() {
        report.pass("column_types", "every column type maps");
    } else {
        report.fail(
            "column_types",
            bad.join("; "),
            "leave the column out with columns = [...] in [objects.tables.\"db.t\"], or exclude the table",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_on_every_scope() {
        let g = parse_grant(
            "GRANT SELECT, RELOAD, BINLOG MONITOR, REPLICATION SLAVE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*AB'",
        )
        .expect("grant");
        assert_eq!(g.scope, None);
        assert!(holds(&g, "BINLOG MONITOR") && holds(&g, "REPLICATION SLAVE"));
        let g = parse_grant("GRANT SELECT, INSERT (`a`, `b`) ON `shop`.`orders` TO 'u'@'h'")
            .expect("grant");
        assert_eq!(g.scope, Some(("shop".into(), Some("orders".into()))));
        assert_eq!(g.privileges, ["SELECT", "INSERT"]);
        let g = parse_grant("GRANT ALL PRIVILEGES ON `shop\\_1`.* TO `u`@`%`").expect("grant");
        assert_eq!(g.scope, Some(("shop\\_1".into(), None)));
        assert!(holds(&g, "SELECT"));
        assert!(parse_grant("GRANT `role1` TO `u`@`%`").is_none());
        assert!(db_matches("shop\\_1", "shop_1") && !db_matches("shop\\_1", "shopx1"));
        assert!(
            db_matches("sh%", "shop") && db_matches("s_op", "shop") && !db_matches("x%", "shop")
        );
    }

    #[test]
    fn outcomes_order_and_report_shows_fixes() {
        let mut r = Report::default();
        r.pass("a", "fine");
        r.warn("b", "hmm", "do x");
        assert!(r.passed());
        r.fail("c", "bad", "do y");
        assert!(!r.passed());
        let text = r.to_string();
        assert!(
            text.contains("failure  c") && text.contains("fix: do y"),
            "{text}"
        );
        assert!(Outcome::Failure > Outcome::Warning);
    }
}
