//! SQL instances: a submitted query runs at once (the DDL subset and
//! `SELECT COUNT(*)`), and the instance keeps its status and result for the
//! status, task-status and result endpoints.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::catalog::{self, Catalog, PartitionMeta, TableMeta, now_nanos, now_secs};
use crate::error::{OdpsError, xml_escape};
use crate::sql::{self, Statement};
use crate::storage::{self, ResultSet};

/// A finished instance.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Instance id.
    pub id: String,
    /// Task name from the submitted job.
    pub task_name: String,
    /// The submitted query.
    pub query: String,
    /// Whether every statement succeeded.
    pub success: bool,
    /// Result text (CSV for a query) or the error text.
    pub result: String,
    /// The row count a `SELECT COUNT(*)` produced, for the instance tunnel.
    pub count: Option<u64>,
    /// The rows a `SELECT *` produced, for the instance tunnel.
    pub rows: Option<std::sync::Arc<ResultSet>>,
    /// Start time, seconds since the epoch.
    pub start: i64,
    /// End time, seconds since the epoch.
    pub end: i64,
}

/// What a statement produced.
#[derive(Debug, Default)]
struct Output {
    text: String,
    count: Option<u64>,
    rows: Option<ResultSet>,
}

/// Finished instances by project and id.
#[derive(Debug, Default)]
pub struct Instances {
    by_id: Mutex<HashMap<(String, String), Instance>>,
}

impl Instances {
    /// Remembers an instance.
    pub fn insert(&self, project: &str, instance: Instance) {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(
            (project.to_ascii_lowercase(), instance.id.clone()),
            instance,
        );
    }

    /// Looks an instance up.
    pub fn get(&self, project: &str, id: &str) -> Result<Instance, OdpsError> {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(project.to_ascii_lowercase(), id.to_owned()))
            .cloned()
            .ok_or_else(|| {
                OdpsError::new(
                    404,
                    "NoSuchObject",
                    format!("ODPS-0420062: Instance not found - {id}"),
                )
            })
    }
}

/// A submitted SQL job: its task name, query and `settings` hints (the
/// JSON object pyodps and the Java SDK send as a task property).
#[derive(Debug)]
pub struct Job {
    /// The task's name.
    pub name: String,
    /// The SQL script.
    pub query: String,
    /// The task's settings, e.g. `odps.sql.type.system.odps2 = "true"`.
    pub settings: std::collections::HashMap<String, String>,
}

impl Job {
    /// Whether the job runs with the 2.0 types: the project's own edition,
    /// or the job's `odps.sql.type.system.odps2` setting.
    pub fn odps2(&self, project_default: bool) -> bool {
        match self.settings.get("odps.sql.type.system.odps2") {
            Some(v) => v.eq_ignore_ascii_case("true"),
            None => project_default,
        }
    }
}

/// The task name and query of a submitted `<Instance>` job.
pub fn parse_job(xml: &str) -> Result<(String, String), OdpsError> {
    parse_sql_job(xml).map(|j| (j.name, j.query))
}

/// A submitted `<Instance>` job whole ([`Job`]).
pub fn parse_sql_job(xml: &str) -> Result<Job, OdpsError> {
    let root = odps_tunnel::xml::Element::parse(xml)
        .map_err(|e| OdpsError::invalid_argument(format!("instance XML: {e}")))?;
    let tasks = root
        .path(&["Job", "Tasks"])
        .ok_or_else(|| OdpsError::invalid_argument("instance XML without Job/Tasks"))?;
    let [task] = tasks.children.as_slice() else {
        return Err(OdpsError::unsupported(
            "jobs with other than exactly one task",
        ));
    };
    if task.name != "SQL" {
        return Err(OdpsError::unsupported(format!(
            "{} tasks (only SQL tasks run here)",
            task.name
        )));
    }
    let name = task
        .child_text("Name")
        .map_or("AnonymousSQLTask", str::trim)
        .to_owned();
    let query = task
        .child_text("Query")
        .ok_or_else(|| OdpsError::invalid_argument("SQL task without a Query"))?;
    let mut settings = std::collections::HashMap::new();
    for property in task
        .child("Config")
        .into_iter()
        .flat_map(|c| c.children_named("Property"))
    {
        if property.child_text("Name").map(str::trim) != Some("settings") {
            continue;
        }
        let text = property.child_text("Value").unwrap_or("{}");
        let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| OdpsError::invalid_argument(format!("task settings: {e}")))?;
        for (k, v) in json {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            settings.insert(k, v);
        }
    }
    Ok(Job {
        name,
        query: query.trim().to_owned(),
        settings,
    })
}

/// Whether a column type needs the 2.0 type system: 1.0 has `bigint`,
/// `double`, `decimal` (without parameters), `string`, `datetime` and
/// `boolean` (and the complex types over them).
fn needs_odps2(type_name: &str) -> bool {
    let t = type_name.trim().to_ascii_lowercase();
    if let Some(inner) = t
        .strip_prefix("array<")
        .or_else(|| t.strip_prefix("map<"))
        .and_then(|r| r.strip_suffix('>'))
    {
        return inner.split(',').any(needs_odps2);
    }
    !matches!(
        t.as_str(),
        "bigint" | "double" | "decimal" | "string" | "datetime" | "boolean"
    ) && !t.starts_with("struct<")
}

fn refuse_odps2_types(columns: &[crate::catalog::Column]) -> Result<(), OdpsError> {
    match columns.iter().find(|c| needs_odps2(&c.type_name)) {
        Some(c) => Err(semantic(format!(
            "column {}: type {} is not enabled in the current mode (the 1.0 data types); \
             set odps.sql.type.system.odps2=true to use it",
            c.name, c.type_name
        ))),
        None => Ok(()),
    }
}

/// Runs a script; the first failing statement ends it.
pub fn run(
    catalog: &Catalog,
    lock: &Mutex<()>,
    project: &str,
    id: String,
    task_name: String,
    query: &str,
    odps2: bool,
) -> Instance {
    let start = now_secs();
    let outcome = sql::parse_script(query)
        .map_err(|e| e.to_string())
        .and_then(|statements| {
            let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut result = Output::default();
            for statement in statements {
                result = execute(catalog, project, statement, odps2).map_err(|e| e.message)?;
            }
            Ok(result)
        });
    tracing::info!(%project, %id, ok = outcome.is_ok(), "instance finished");
    let (success, result, count, rows) = match outcome {
        Ok(out) => (true, out.text, out.count, out.rows.map(std::sync::Arc::new)),
        Err(e) => (false, e, None, None),
    };
    Instance {
        id,
        task_name,
        query: query.to_owned(),
        success,
        result,
        count,
        rows,
        start,
        end: now_secs(),
    }
}

fn semantic(message: String) -> OdpsError {
    OdpsError::new(
        400,
        "SemanticError",
        format!("ODPS-0130071:[0,0] Semantic analysis exception - {message}"),
    )
}

/// Runs one statement: its result text, the count of a `SELECT COUNT(*)`,
/// the rows of a `SELECT *`.
fn execute(
    catalog: &Catalog,
    project: &str,
    statement: Statement,
    odps2: bool,
) -> Result<Output, OdpsError> {
    match statement {
        Statement::CreateTable {
            if_not_exists,
            table,
            columns,
            partition_keys,
            comment,
            lifecycle,
            primary_key,
            properties,
        } => {
            if !odps2 {
                refuse_odps2_types(&columns)?;
            }
            let mut columns = columns;
            let properties: std::collections::BTreeMap<String, String> =
                properties.into_iter().collect();
            let transactional = properties
                .get("transactional")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            crate::upsert::check_delta_ddl(
                &table,
                &mut columns,
                &partition_keys,
                &primary_key,
                transactional,
                &properties,
            )
            .map_err(semantic)?;
            if catalog.load(project, &table)?.is_some() {
                return if if_not_exists {
                    Ok(Output::default())
                } else {
                    Err(semantic(format!(
                        "Table or view already exists - {project}.{table}"
                    )))
                };
            }
            let mut seen = std::collections::HashSet::new();
            for c in columns.iter().chain(&partition_keys) {
                catalog::check_name(&c.name, "column").map_err(|e| semantic(e.message))?;
                if !seen.insert(c.name.clone()) {
                    return Err(semantic(format!(
                        "column {} is defined more than once",
                        c.name
                    )));
                }
            }
            let now = now_secs();
            let meta = TableMeta {
                table_id: format!("{:032x}", now_nanos()),
                name: table,
                comment,
                columns,
                partition_keys,
                partitions: Vec::new(),
                lifecycle,
                created: now,
                ddl_modified: now,
                data_modified: now,
                transactional,
                primary_key,
                properties,
            };
            catalog.save(project, &meta)?;
            Ok(Output::default())
        }
        Statement::AddColumns { table, columns } => {
            if !odps2 {
                refuse_odps2_types(&columns)?;
            }
            let mut meta = require(catalog, project, &table)?;
            for c in columns {
                catalog::check_name(&c.name, "column").map_err(|e| semantic(e.message))?;
                if meta
                    .columns
                    .iter()
                    .chain(&meta.partition_keys)
                    .any(|e| e.name == c.name)
                {
                    return Err(semantic(format!(
                        "column {} already exists in {table}",
                        c.name
                    )));
                }
                meta.columns.push(c);
            }
            meta.ddl_modified = now_secs();
            catalog.save(project, &meta)?;
            Ok(Output::default())
        }
        Statement::SetComment { table, comment } => {
            let mut meta = require(catalog, project, &table)?;
            meta.comment = comment;
            meta.ddl_modified = now_secs();
            catalog.save(project, &meta)?;
            Ok(Output::default())
        }
        Statement::AddPartitions {
            table,
            if_not_exists,
            partitions,
        } => {
            let mut meta = require(catalog, project, &table)?;
            if !meta.is_partitioned() {
                return Err(semantic(format!("table {table} is not partitioned")));
            }
            for spec in partitions {
                let values = meta
                    .full_partition(&spec)
                    .map_err(|e| semantic(e.message))?;
                if meta.find_partition(&values).is_some() {
                    if if_not_exists {
                        continue;
                    }
                    return Err(semantic(format!(
                        "Partition already exists - {}",
                        catalog::spec_string(&values)
                    )));
                }
                let now = now_secs();
                meta.partitions.push(PartitionMeta {
                    values,
                    created: now,
                    modified: now,
                });
            }
            catalog.save(project, &meta)?;
            Ok(Output::default())
        }
        Statement::DropPartitions {
            table,
            if_exists,
            partitions,
        } => {
            let mut meta = require(catalog, project, &table)?;
            for spec in partitions {
                let values = meta
                    .full_partition(&spec)
                    .map_err(|e| semantic(e.message))?;
                match meta.find_partition(&values) {
                    Some(i) => {
                        meta.partitions.remove(i);
                        let dir = catalog.data_dir(project, &table, &values)?;
                        if dir.exists() {
                            std::fs::remove_dir_all(dir).map_err(OdpsError::io)?;
                        }
                    }
                    None if if_exists => {}
                    None => {
                        return Err(semantic(format!(
                            "Partition not found - {}",
                            catalog::spec_string(&values)
                        )));
                    }
                }
            }
            catalog.save(project, &meta)?;
            Ok(Output::default())
        }
        Statement::DropTable { if_exists, table } => {
            if catalog.load(project, &table)?.is_none() {
                return if if_exists {
                    Ok(Output::default())
                } else {
                    Err(no_table(project, &table))
                };
            }
            catalog.drop_table(project, &table)?;
            Ok(Output::default())
        }
        Statement::SelectAll { table, filter } => {
            let meta = require(catalog, project, &table)?;
            if !meta.is_delta() {
                // As before Delta tables: a parse error, as for any query
                // outside the subset.
                return Err(OdpsError::new(
                    400,
                    "ParseError",
                    format!(
                        "ODPS-0130161:[1,8] Parse exception - the MaxCompute emulator supports \
                         SELECT * only on primary-key Delta tables, and {table} is not one \
                         (read it with a download session)"
                    ),
                ));
            }
            let rows = crate::upsert::select_all(catalog, project, &meta, &filter)?;
            Ok(Output {
                text: crate::upsert::csv(&rows)?,
                count: None,
                rows: Some(rows),
            })
        }
        Statement::SelectCount { table, filter } => {
            let meta = require(catalog, project, &table)?;
            for (k, _) in &filter {
                if !meta.partition_keys.iter().any(|p| &p.name == k) {
                    return Err(OdpsError::unsupported(format!(
                        "WHERE on column {k}: only equality on partition keys is supported"
                    )));
                }
            }
            let dirs = if meta.is_partitioned() {
                meta.matching_partitions(&filter)
                    .into_iter()
                    .map(|p| catalog.data_dir(project, &table, &p.values))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                vec![catalog.data_dir(project, &table, &Vec::new())?]
            };
            let mut total = 0u64;
            for dir in dirs {
                total += storage::data_files(&dir)?
                    .iter()
                    .map(|f| f.rows)
                    .sum::<u64>();
            }
            Ok(Output {
                text: format!("\"_c0\"\n{total}\n"),
                count: Some(total),
                rows: None,
            })
        }
    }
}

fn no_table(project: &str, table: &str) -> OdpsError {
    OdpsError::new(
        404,
        "NoSuchTable",
        format!("ODPS-0130131:[1,1] Table not found - table {project}.{table} cannot be resolved"),
    )
}

fn require(catalog: &Catalog, project: &str, table: &str) -> Result<TableMeta, OdpsError> {
    catalog
        .load(project, table)?
        .ok_or_else(|| no_table(project, table))
}

/// `GET …/instances/{id}`: the instance status.
pub fn status_xml(instance: &Instance) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Instance>\n  <Status>Terminated</Status>\n  <StartTime>{}</StartTime>\n  <EndTime>{}</EndTime>\n</Instance>\n",
        catalog::http_date(instance.start),
        catalog::http_date(instance.end)
    )
}

fn task_status(instance: &Instance) -> &'static str {
    if instance.success {
        "Success"
    } else {
        "Failed"
    }
}

/// `GET …/instances/{id}?taskstatus`.
pub fn task_status_xml(instance: &Instance) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Instance>\n  <Status>Terminated</Status>\n  <Tasks>\n    <Task Type=\"SQL\">\n      <Name>{}</Name>\n      <StartTime>{}</StartTime>\n      <EndTime>{}</EndTime>\n      <Status>{}</Status>\n      <Histories/>\n    </Task>\n  </Tasks>\n</Instance>\n",
        xml_escape(&instance.task_name),
        catalog::http_date(instance.start),
        catalog::http_date(instance.end),
        task_status(instance)
    )
}

/// `GET …/instances/{id}?source`: the submitted job.
pub fn source_xml(instance: &Instance) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Job>\n  <Owner>{}</Owner>\n  <Priority>9</Priority>\n  <Tasks>\n    <SQL>\n      <Name>{}</Name>\n      <Query><![CDATA[{}]]></Query>\n    </SQL>\n  </Tasks>\n  <DAG>\n    <RunMode>Sequence</RunMode>\n  </DAG>\n</Job>\n",
        xml_escape(crate::catalog::OWNER),
        xml_escape(&instance.task_name),
        instance.query.replace("]]>", "]]]]><![CDATA[>")
    )
}

/// `GET …/instances/{id}?result`.
pub fn result_xml(instance: &Instance) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Instance>\n  <Tasks>\n    <Task Type=\"SQL\">\n      <Name>{}</Name>\n      <Status>{}</Status>\n      <Result Format=\"csv\"><![CDATA[{}]]></Result>\n    </Task>\n  </Tasks>\n</Instance>\n",
        xml_escape(&instance.task_name),
        task_status(instance),
        instance.result.replace("]]>", "]]]]><![CDATA[>")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sdks_job_xml() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<Instance><Job><Priority>9</Priority><Tasks><SQL><Name>AnonymousSQLTask</Name>
<Config><Property><Name>settings</Name><Value>{}</Value></Property></Config>
<Query><![CDATA[select count(*) from t where a > 1;]]></Query></SQL></Tasks></Job></Instance>"#;
        let (name, query) = parse_job(xml).unwrap();
        assert_eq!(name, "AnonymousSQLTask");
        assert_eq!(query, "select count(*) from t where a > 1;");
        assert!(parse_job("<Instance><Job><Tasks><SQLRT/></Tasks></Job></Instance>").is_err());
    }

    #[test]
    fn runs_ddl_against_a_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::new(dir.path().to_path_buf());
        let lock = Mutex::new(());
        let ok = run(
            &catalog,
            &lock,
            "p",
            "1".into(),
            "t".into(),
            "CREATE TABLE t (id BIGINT) PARTITIONED BY (pt STRING); ALTER TABLE t ADD PARTITION (pt='a');",
            true,
        );
        assert!(ok.success, "{}", ok.result);
        let meta = catalog.require("p", "t").unwrap();
        assert_eq!(meta.partitions.len(), 1);
        let again = run(
            &catalog,
            &lock,
            "p",
            "2".into(),
            "t".into(),
            "ALTER TABLE t ADD PARTITION (pt='a')",
            true,
        );
        assert!(!again.success);
        assert!(
            again.result.contains("Partition already exists"),
            "{}",
            again.result
        );
        let count = run(
            &catalog,
            &lock,
            "p",
            "3".into(),
            "t".into(),
            "SELECT COUNT(*) FROM t WHERE pt='a'",
            true,
        );
        assert_eq!(count.result, "\"_c0\"\n0\n");
        let missing = run(
            &catalog,
            &lock,
            "p",
            "4".into(),
            "t".into(),
            "DROP TABLE nope",
            true,
        );
        assert!(
            missing.result.starts_with("ODPS-0130131"),
            "{}",
            missing.result
        );
    }

    #[test]
    fn a_1_0_project_refuses_2_0_types_unless_the_job_sets_them() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::new(dir.path().to_path_buf());
        let lock = Mutex::new(());
        let ddl = |id: &str, sql: &str, odps2: bool| {
            run(&catalog, &lock, "p", id.into(), "t".into(), sql, odps2)
        };
        let refused = ddl("1", "CREATE TABLE a (id TINYINT, v DECIMAL(10,2))", false);
        assert!(!refused.success);
        assert!(
            refused
                .result
                .contains("type tinyint is not enabled in the current mode"),
            "{}",
            refused.result
        );
        let one = ddl(
            "2",
            "CREATE TABLE b (id BIGINT, v DECIMAL, s STRING, d DATETIME, f DOUBLE, ok BOOLEAN)",
            false,
        );
        assert!(one.success, "{}", one.result);
        let add = ddl("3", "ALTER TABLE b ADD COLUMNS (dt DATE)", false);
        assert!(
            !add.success && add.result.contains("type date"),
            "{}",
            add.result
        );
        assert!(ddl("4", "CREATE TABLE a (id TINYINT)", true).success);
        let xml = r#"<Instance><Job><Tasks><SQL><Name>x</Name><Config><Property><Name>settings</Name>
<Value>{"odps.sql.type.system.odps2": "true"}</Value></Property></Config><Query>select 1;</Query>
</SQL></Tasks></Job></Instance>"#;
        let job = parse_sql_job(xml).unwrap();
        assert!(job.odps2(false));
        assert!(
            !parse_sql_job(&xml.replace("\"true\"", "\"false\""))
                .unwrap()
                .odps2(true)
        );
    }
}
