//! Every precheck failure provoked once for real, and its message asserted:
//! binlog settings on private MariaDB instances (the shared sandbox keeps its
//! settings), privileges, conflicts, clashes, types and limits on the sandbox.

use mysql_async::prelude::Queryable;
use std::path::Path;
use std::sync::Arc;
use sync_core::Error;
use sync_core::precheck::{Outcome, Report};
use sync_core::run::{RunOptions, TaskRunner};
use sync_core::sink::local::LocalWarehouse;
use sync_core::sink::{Sink, TableDef};

/// A task over `url`; `server_id` is the test's own replica id (the tests
/// of this binary stream from one server at the same time).
fn task(server_id: u32, url: &str, dir: &Path, objects: &str, sync: &str) -> String {
    format!(
        "[source]\nurl = \"{url}\"\nserver_id = {server_id}\n\
         [destination]\nkind = \"local\"\npath = \"{}\"\n\
         [objects]\n{objects}\n\
         [sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\nstate_dir = \"{}\"\n{sync}\n",
        dir.join("warehouse").display(),
        dir.join("state").display()
    )
}

fn runner(text: &str, dir: &Path) -> TaskRunner<LocalWarehouse> {
    let cfg = sync_core::taskfile::parse(text, "task.toml").expect("task file");
    TaskRunner::new(cfg, LocalWarehouse::new(dir.join("warehouse"))).expect("runner")
}

async fn precheck(text: &str, dir: &Path) -> Report {
    runner(text, dir).precheck().await.expect("precheck")
}

/// The check, asserted to have come out as `outcome`, with its message.
fn outcome(report: &Report, id: &str, outcome: Outcome) -> String {
    let c = report
        .get(id)
        .unwrap_or_else(|| panic!("no check {id} in\n{report}"));
    assert_eq!(c.outcome, outcome, "{id}:\n{report}");
    if outcome != Outcome::Pass {
        assert!(
            c.fix.as_deref().is_some_and(|f| !f.is_empty()),
            "{id} has no fix"
        );
    }
    c.message.clone()
}

async fn admin(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(url).expect("url"))
        .await
        .expect("connect")
}

async fn fresh_db(conn: &mut mysql_async::Conn, db: &str, tables: &str) {
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; USE {db}; {tables}"
    ))
    .await
    .expect("setup");
}

#[tokio::test]
async fn wrong_binlog_settings_fail_with_their_fix() {
    let server = sync_testkit::PrivateServer::start(&[
        "binlog_format=STATEMENT",
        "binlog_row_image=MINIMAL",
        "expire_logs_days=1",
    ])
    .expect("private server");
    let mut conn = admin(&server.url()).await;
    fresh_db(&mut conn, "pre_bl", "CREATE TABLE t (id INT PRIMARY KEY);").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = task(
        7341,
        &server.url(),
        dir.path(),
        "include = [\"pre_bl.*\"]",
        "",
    );
    let report = precheck(&text, dir.path()).await;
    outcome(&report, "log_bin", Outcome::Pass);
    let m = outcome(&report, "binlog_format", Outcome::Failure);
    assert_eq!(m, "binlog_format = STATEMENT, the task needs ROW");
    let m = outcome(&report, "binlog_row_image", Outcome::Failure);
    assert!(
        m.starts_with("binlog_row_image = MINIMAL, the task needs FULL"),
        "{m}"
    );
    let m = outcome(&report, "binlog_retention", Outcome::Failure);
    assert!(
        m.starts_with("binlogs expire after 1.00 days; at least 3"),
        "{m}"
    );
    assert!(!report.passed());

    // `run` refuses to start and writes nothing.
    let err = runner(&text, dir.path())
        .run(&RunOptions::default())
        .await
        .expect_err("run must refuse");
    match &err {
        Error::Precheck(r) => assert!(r.get("binlog_format").is_some()),
        other => panic!("expected a precheck error, got {other}"),
    }
    assert!(
        err.to_string().contains("binlog_format = STATEMENT"),
        "{err}"
    );
    // (The state directory holds the run's lock and its stop report only.)
    assert!(
        !dir.path().join("state/task.json").exists(),
        "no checkpoint written"
    );
    assert!(
        !dir.path().join("warehouse/t_base").exists(),
        "no table created"
    );

    // Fixed at run time (a private server: nobody else sees it); 5 days warn.
    conn.query_drop(
        "SET GLOBAL binlog_format = 'ROW'; SET GLOBAL binlog_row_image = 'FULL'; \
         SET GLOBAL binlog_expire_logs_seconds = 432000",
    )
    .await
    .expect("fix");
    let report = precheck(&text, dir.path()).await;
    outcome(&report, "binlog_format", Outcome::Pass);
    outcome(&report, "binlog_row_image", Outcome::Pass);
    let m = outcome(&report, "binlog_retention", Outcome::Warning);
    assert!(m.contains("5.00 days; 7 are recommended"), "{m}");
    assert!(report.passed(), "{report}");

    // A task that resumes from a binlog file the server has purged.
    let runner = runner(&text, dir.path());
    runner
        .run(&RunOptions {
            exit_when_caught_up: true,
            ..RunOptions::default()
        })
        .await
        .expect("run");
    outcome(
        &runner.precheck().await.expect("precheck"),
        "binlog_available",
        Outcome::Pass,
    );
    let first: String = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("status")
        .map(|r: mysql_async::Row| r.get(0).expect("file"))
        .expect("a row");
    conn.query_drop("FLUSH BINARY LOGS").await.expect("flush");
    let current: String = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("status")
        .map(|r: mysql_async::Row| r.get(0).expect("file"))
        .expect("a row");
    // The server keeps a file until its crash-recovery checkpoint passes: retry.
    let mut purged = false;
    for _ in 0..60 {
        conn.query_drop(format!("PURGE BINARY LOGS TO '{current}'"))
            .await
            .expect("purge");
        let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await.expect("logs");
        if logs
            .iter()
            .all(|r| r.get::<String, _>(0).is_some_and(|f| f != first))
        {
            purged = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(purged, "{first} was purged");
    let report = runner.precheck().await.expect("precheck");
    let m = outcome(&report, "binlog_available", Outcome::Failure);
    assert_eq!(
        m,
        format!(
            "{first}, where the task resumes, is no longer on the server: the changes in it are lost to this task"
        )
    );
    assert!(matches!(
        runner.run(&RunOptions::default()).await,
        Err(Error::Precheck(_))
    ));
    drop(conn);
}

#[tokio::test]
async fn binary_logging_off_fails() {
    let server = sync_testkit::PrivateServer::start(&["skip-log-bin"]).expect("private server");
    let mut conn = admin(&server.url()).await;
    fresh_db(
        &mut conn,
        "pre_nolog",
        "CREATE TABLE t (id INT PRIMARY KEY);",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = task(
        7342,
        &server.url(),
        dir.path(),
        "include = [\"pre_nolog.*\"]",
        "",
    );
    let report = precheck(&text, dir.path()).await;
    let m = outcome(&report, "log_bin", Outcome::Failure);
    assert_eq!(m, "binary logging is off (log_bin = OFF)");
    let fix = report.get("log_bin").and_then(|c| c.fix.clone());
    assert!(fix.is_some_and(|f| f.contains("log-bin")));

    // A task without an incremental phase does not need the binlog.
    let full_only = text.replace(
        "types = [\"schema\", \"full\", \"incremental\"]",
        "types = [\"schema\", \"full\"]",
    );
    let report = precheck(&full_only, dir.path()).await;
    assert!(report.get("log_bin").is_none());
    outcome(&report, "binlog", Outcome::Pass);
    assert!(report.passed(), "{report}");
}

#[tokio::test]
async fn a_user_without_replication_slave_fails_the_privilege_check() {
    let url = sync_testkit::mysql_url();
    let mut conn = admin(&url).await;
    fresh_db(
        &mut conn,
        "pre_priv",
        "CREATE TABLE t (id INT PRIMARY KEY); CREATE TABLE u (id INT PRIMARY KEY);",
    )
    .await;
    conn.query_drop(
        "DROP USER IF EXISTS 'pre_noslave'@'%'; \
         CREATE USER 'pre_noslave'@'%' IDENTIFIED BY 'pw'; \
         GRANT BINLOG MONITOR ON *.* TO 'pre_noslave'@'%'; \
         GRANT SELECT ON pre_priv.t TO 'pre_noslave'@'%'; \
         GRANT INSERT ON pre_priv.u TO 'pre_noslave'@'%'",
    )
    .await
    .expect("user");
    let dir = tempfile::tempdir().expect("tempdir");
    let limited = url.replacen("root@", "pre_noslave:pw@", 1);
    let text = task(7343, &limited, dir.path(), "include = [\"pre_priv.*\"]", "");
    let report = precheck(&text, dir.path()).await;
    let m = outcome(&report, "source_privileges", Outcome::Failure);
    assert_eq!(
        m,
        "the source user 'pre_noslave'@'%' lacks REPLICATION SLAVE ON *.*; SELECT on pre_priv.u"
    );
    let fix = report
        .get("source_privileges")
        .and_then(|c| c.fix.clone())
        .expect("fix");
    assert!(fix.contains("ON *.* TO 'pre_noslave'@'%'"), "{fix}");

    conn.query_drop(
        "GRANT REPLICATION SLAVE ON *.* TO 'pre_noslave'@'%'; \
         GRANT SELECT ON pre_priv.* TO 'pre_noslave'@'%'",
    )
    .await
    .expect("grant");
    let report = precheck(&text, dir.path()).await;
    outcome(&report, "source_privileges", Outcome::Pass);
    conn.query_drop("DROP USER 'pre_noslave'@'%'")
        .await
        .expect("drop user");

    // The wrong password: the source is not reachable as that user.
    let wrong = url.replacen("root@", "pre_noslave:nope@", 1);
    let report = precheck(
        &task(7343, &wrong, dir.path(), "include = [\"pre_priv.*\"]", ""),
        dir.path(),
    )
    .await;
    let m = outcome(&report, "source_reachable", Outcome::Failure);
    assert!(m.contains("access denied for user 'pre_noslave'"), "{m}");
}

#[tokio::test]
async fn unreachable_ends_fail() {
    // A port nobody listens on, and a warehouse under a regular file.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("warehouse"), b"a file, not a folder").expect("file");
    let text = task(
        7344,
        &format!("mysql://root@127.0.0.1:{port}"),
        dir.path(),
        "include = [\"x.*\"]",
        "",
    );
    let report = precheck(&text, dir.path()).await;
    let m = outcome(&report, "source_reachable", Outcome::Failure);
    assert!(
        m.contains(&format!(
            "cannot reach the MySQL server at 127.0.0.1:{port}"
        )),
        "{m}"
    );
    let m = outcome(&report, "destination_reachable", Outcome::Failure);
    assert!(
        m.starts_with("the destination cannot be used: creating"),
        "{m}"
    );
}

#[tokio::test]
async fn destination_conflicts_fail_or_warn_by_mode() {
    let url = sync_testkit::mysql_url();
    let mut conn = admin(&url).await;
    fresh_db(
        &mut conn,
        "pre_conf",
        "CREATE TABLE orders (id INT PRIMARY KEY);",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = LocalWarehouse::new(dir.path().join("warehouse"));
    wh.ensure_table(&TableDef {
        name: "orders_base".into(),
        schema: Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "id",
            arrow_schema::DataType::Int32,
            false,
        )])),
        partition_columns: vec![],
    })
    .await
    .expect("existing table");
    let text = task(7345, &url, dir.path(), "include = [\"pre_conf.*\"]", "");
    let report = precheck(&text, dir.path()).await;
    let m = outcome(&report, "destination_conflicts", Outcome::Failure);
    assert_eq!(m, "destination tables exist already: orders_base");
    let ignore = text.replace(
        "[objects]\n",
        "[objects]\nconflicting_tables = \"ignore\"\n",
    );
    let report = precheck(&ignore, dir.path()).await;
    let m = outcome(&report, "destination_conflicts", Outcome::Warning);
    assert!(
        m.starts_with(
            "destination tables exist already and will be written into (conflicting_tables = \
             \"ignore\"): orders_base. The full phase skips every source row whose key \
             orders_base holds already (the row there stays as it is; status and the log count \
             the skipped rows per table); rows and records already there stay"
        ),
        "{m}"
    );
    outcome(&report, "destination_schema", Outcome::Pass);
    assert!(report.passed());
    // A rename avoids the conflict.
    let renamed = text.replace(
        "[objects]\n",
        "[objects]\ndatabases = { pre_conf = \"c\" }\n",
    );
    let report = precheck(&renamed, dir.path()).await;
    outcome(&report, "destination_conflicts", Outcome::Pass);
}

/// With `ignore`, an existing table whose columns differ from what the
/// task writes fails (naming the columns), as does a keyless table's
/// `t_base` with the full phase; `run` refuses both.
#[tokio::test]
async fn ignore_refuses_other_columns_and_keyless_baselines() {
    let url = sync_testkit::mysql_url();
    let mut conn = admin(&url).await;
    fresh_db(
        &mut conn,
        "pre_ign",
        "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(10), w INT);
         CREATE TABLE loose (a INT);",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = LocalWarehouse::new(dir.path().join("warehouse"));
    let field = |n: &str, t| arrow_schema::Field::new(n, t, true);
    use arrow_schema::DataType::{Int32, Int64, Utf8};
    for (name, fields) in [
        (
            "items_base",
            vec![field("id", Int32), field("v", Int64), field("extra", Utf8)],
        ),
        ("loose_base", vec![field("a", Int32)]),
    ] {
        wh.ensure_table(&TableDef {
            name: name.into(),
            schema: Arc::new(arrow_schema::Schema::new(fields)),
            partition_columns: vec![],
        })
        .await
        .expect("existing table");
    }
    let text = task(
        7346,
        &url,
        dir.path(),
        "include = [\"pre_ign.*\"]\nconflicting_tables = \"ignore\"",
        "",
    );
    let report = precheck(&text, dir.path()).await;
    let m = outcome(&report, "destination_schema", Outcome::Failure);
    assert_eq!(
        m,
        "items_base: it differs from the table the task writes for pre_ign.items: column `v` is \
         Int64, the task writes Utf8; column `w` (Int32) is missing; column `extra` (Utf8) is not \
         one the task writes"
    );
    let m = outcome(&report, "destination_conflicts", Outcome::Failure);
    assert!(
        m.starts_with("loose_base: pre_ign.loose has no primary key and no NOT NULL unique key"),
        "{m}"
    );
    let fix = report
        .get("destination_conflicts")
        .and_then(|c| c.fix.clone())
        .unwrap_or_default();
    assert!(fix.contains("add a primary key to pre_ign.loose"), "{fix}");
    match runner(&text, dir.path()).run(&RunOptions::default()).await {
        Err(Error::Precheck(r)) => {
            assert!(r.failures().any(|c| c.id == "destination_schema"), "{r}");
        }
        other => panic!("the run must refuse: {other:?}"),
    }
    assert!(
        wh.read_table_blocking("items_base")
            .expect("read")
            .is_empty(),
        "nothing written"
    );
    // Without the full phase a keyless table's t_base is not written: fine.
    let incremental = text.replace(
        "types = [\"schema\", \"full\", \"incremental\"]",
        "types = [\"incremental\"]",
    );
    let incremental = incremental.replace("\"pre_ign.*\"", "\"pre_ign.loose\"");
    let report = precheck(&incremental, dir.path()).await;
    outcome(&report, "destination_schema", Outcome::Pass);
    outcome(&report, "destination_conflicts", Outcome::Warning);
}

#[tokio::test]
async fn clashing_names_and_unmappable_types_fail_keyless_tables_warn() {
    let url = sync_testkit::mysql_url();
    let mut conn = admin(&url).await;
    fresh_db(
        &mut conn,
        "pre_clash",
        "CREATE TABLE events (id INT PRIMARY KEY, record_id BIGINT, note TEXT, remark TEXT);
         CREATE TABLE hosts (id INT PRIMARY KEY, addr INET6);
         CREATE TABLE loose (a INT, b INT);
         CREATE TABLE merged (id INT) ENGINE=MERGE UNION=() INSERT_METHOD=NO;",
    )
    .await;
    fresh_db(
        &mut conn,
        "pre_clash2",
        "CREATE TABLE hosts (id INT PRIMARY KEY);",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = task(
        7347,
        &url,
        dir.path(),
        "include = [\"pre_clash.*\", \"pre_clash2.*\"]",
        "naming_rule = \"previous\"",
    )
    .replace(
        "[sync]",
        "[objects.tables.\"pre_clash.events\"]\nrename_columns = { remark = \"Note\" }\n[sync]",
    );
    let report = precheck(&text, dir.path()).await;
    let m = outcome(&report, "metadata_columns", Outcome::Failure);
    assert_eq!(
        m,
        "pre_clash.events.record_id lands as `record_id`, the name of a metadata column of events_log"
    );
    let m = outcome(&report, "name_clashes", Outcome::Failure);
    assert_eq!(
        m,
        "columns `note` and `remark` of pre_clash.events both land as `note`; \
         tables pre_clash.hosts and pre_clash2.hosts both land as hosts_base / hosts_log"
    );
    let m = outcome(&report, "column_types", Outcome::Failure);
    assert!(
        m.starts_with("pre_clash.hosts.addr: type inet6 has no mapping"),
        "{m}"
    );
    let m = outcome(&report, "row_keys", Outcome::Warning);
    assert!(
        m.starts_with(
            "no primary key and no NOT NULL unique key on pre_clash.loose, pre_clash.merged"
        ) && m.contains("multisets (identical rows stay separate copies"),
        "{m}"
    );
    let m = outcome(&report, "storage_engines", Outcome::Failure);
    assert!(
        m.starts_with("the incremental phase cannot follow pre_clash.merged (MRG_MyISAM)"),
        "{m}"
    );

    // The fixes the hints name: the new naming rule, a rename, a column list.
    let fixed = task(
        7347,
        &url,
        dir.path(),
        "include = [\"pre_clash.*\", \"pre_clash2.*\"]\nexclude = [\"pre_clash.merged\"]\n\
         databases = { pre_clash2 = \"two\" }\n\
         [objects.tables.\"pre_clash.hosts\"]\ncolumns = [\"id\"]",
        "naming_rule = \"new\"",
    );
    let report = precheck(&fixed, dir.path()).await;
    for id in [
        "metadata_columns",
        "name_clashes",
        "column_types",
        "objects",
    ] {
        outcome(&report, id, Outcome::Pass);
    }
    assert!(report.passed(), "{report}");

    // Object edits that name nothing real.
    let typo = task(
        7347,
        &url,
        dir.path(),
        "include = [\"pre_clash.*\"]\n[objects.tables.\"pre_clash.hostz\"]\nname = \"h\"",
        "",
    );
    let m = outcome(
        &precheck(&typo, dir.path()).await,
        "objects",
        Outcome::Failure,
    );
    assert!(
        m.starts_with("[objects.tables.\"pre_clash.hostz\"] names a table"),
        "{m}"
    );
    let none = task(
        7347,
        &url,
        dir.path(),
        "include = [\"pre_nothing_here.*\"]",
        "",
    );
    let m = outcome(
        &precheck(&none, dir.path()).await,
        "objects",
        Outcome::Failure,
    );
    assert!(m.starts_with("no source table matches include"), "{m}");

    // Each include entry must select something: a literal table that does
    // not exist fails, a pattern that selects nothing warns.
    let missing = task(
        7347,
        &url,
        dir.path(),
        "include = [\"pre_clash.*\", \"pre_clash.orderz\", \"pre_later_*.x\"]",
        "",
    );
    let report = precheck(&missing, dir.path()).await;
    let m = outcome(&report, "include_tables", Outcome::Failure);
    assert!(m.contains("\"pre_clash.orderz\""), "{m}");
    assert!(!m.contains("pre_later_"), "{m}");
    let later = task(
        7347,
        &url,
        dir.path(),
        "include = [\"pre_clash.*\", \"pre_later_*.x\"]",
        "",
    );
    let m = outcome(
        &precheck(&later, dir.path()).await,
        "include_tables",
        Outcome::Warning,
    );
    assert!(m.contains("\"pre_later_*.x\" select no table"), "{m}");
}

#[tokio::test]
async fn more_than_a_thousand_edited_tables_fail() {
    let url = sync_testkit::mysql_url();
    let mut conn = admin(&url).await;
    let creates: String = (0..=1000)
        .map(|i| format!("CREATE TABLE t{i:04} (id INT PRIMARY KEY);"))
        .collect();
    fresh_db(&mut conn, "pre_many", &creates).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = task(7348, &url, dir.path(), "include = [\"pre_many.*\"]", "");
    let report = precheck(&plain, dir.path()).await;
    outcome(&report, "table_limit", Outcome::Pass);
    let edited = task(
        7348,
        &url,
        dir.path(),
        "include = [\"pre_many.*\"]\n[objects.tables.\"pre_many.t0000\"]\nname = \"first\"",
        "",
    );
    let report = precheck(&edited, dir.path()).await;
    let m = outcome(&report, "table_limit", Outcome::Failure);
    assert_eq!(
        m,
        "1001 tables selected with table-level edits ([objects.tables]); one task may edit at most 1000"
    );
    conn.query_drop("DROP DATABASE pre_many")
        .await
        .expect("drop");
}

#[tokio::test]
async fn the_sources_own_server_id_fails() {
    let url = sync_testkit::mysql_url();
    let mut conn = admin(&url).await;
    fresh_db(&mut conn, "pre_sid", "CREATE TABLE t (id INT PRIMARY KEY);").await;
    let theirs: u32 = conn
        .query_first("SELECT @@server_id")
        .await
        .expect("server id")
        .expect("a row");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = task(7349, &url, dir.path(), "include = [\"pre_sid.*\"]", "")
        .replace("server_id = 7349", &format!("server_id = {theirs}"));
    let m = outcome(
        &precheck(&text, dir.path()).await,
        "server_id",
        Outcome::Failure,
    );
    assert_eq!(
        m,
        format!("[source] server_id = {theirs} is the source's own server id")
    );
    let text = task(7349, &url, dir.path(), "include = [\"pre_sid.*\"]", "");
    outcome(
        &precheck(&text, dir.path()).await,
        "server_id",
        Outcome::Pass,
    );
}

#[tokio::test]
async fn changes_that_never_reach_the_binlog_warn_naming_their_tables_and_accounts() {
    let url = sync_testkit::mysql_url();
    let mut conn = admin(&url).await;
    fresh_db(
        &mut conn,
        "pre_unlogged",
        "CREATE TABLE parent (id INT PRIMARY KEY);
         CREATE TABLE child (id INT PRIMARY KEY, p INT, CONSTRAINT fk_child_parent
           FOREIGN KEY (p) REFERENCES parent (id) ON DELETE CASCADE ON UPDATE SET NULL);
         CREATE TABLE strict_child (id INT PRIMARY KEY, p INT, CONSTRAINT fk_strict
           FOREIGN KEY (p) REFERENCES parent (id));
         CREATE TABLE mem (id INT PRIMARY KEY) ENGINE = MEMORY;",
    )
    .await;
    conn.query_drop(
        "DROP USER IF EXISTS 'pre_switcher'@'%', 'pre_super'@'%', 'pre_reader'@'%', 'pre_writer'@'%';
         CREATE USER 'pre_switcher'@'%' IDENTIFIED BY 'pw';
         GRANT BINLOG ADMIN ON *.* TO 'pre_switcher'@'%';
         GRANT INSERT ON pre_unlogged.* TO 'pre_switcher'@'%';
         CREATE USER 'pre_super'@'%' IDENTIFIED BY 'pw';
         GRANT SUPER ON *.* TO 'pre_super'@'%';
         GRANT UPDATE ON pre_unlogged.child TO 'pre_super'@'%';
         CREATE USER 'pre_reader'@'%' IDENTIFIED BY 'pw';
         GRANT BINLOG ADMIN ON *.* TO 'pre_reader'@'%';
         GRANT SELECT ON pre_unlogged.* TO 'pre_reader'@'%';
         CREATE USER 'pre_writer'@'%' IDENTIFIED BY 'pw';
         GRANT INSERT, UPDATE, DELETE ON pre_unlogged.* TO 'pre_writer'@'%';",
    )
    .await
    .expect("users");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = task(7350, &url, dir.path(), "include = [\"pre_unlogged.*\"]", "");
    let report = precheck(&text, dir.path()).await;
    let m = outcome(&report, "cascading_foreign_keys", Outcome::Warning);
    assert!(
        m.ends_with(
            "pre_unlogged.child (foreign key fk_child_parent to pre_unlogged.parent \
             ON DELETE CASCADE ON UPDATE SET NULL)"
        ),
        "{m}"
    );
    let m = outcome(&report, "memory_tables", Outcome::Warning);
    assert!(m.ends_with("never as row deletes: pre_unlogged.mem"), "{m}");
    let m = outcome(&report, "session_binlog_format", Outcome::Warning);
    assert!(
        m.contains("'pre_super'@'%'") && m.contains("'pre_switcher'@'%'"),
        "{m}"
    );
    assert!(
        !m.contains("pre_reader") && !m.contains("pre_writer") && !m.contains("only the task's"),
        "{m}"
    );
    let fix = report
        .get("session_binlog_format")
        .and_then(|c| c.fix.clone())
        .expect("fix");
    assert!(
        fix.contains("ON *.* FROM ") && fix.contains("'pre_super'@'%'") && !fix.contains("<user>"),
        "the fix names the real accounts: {fix}"
    );
    assert!(report.passed(), "warnings only:\n{report}");

    // Neither the child of a cascade nor the MEMORY table synced: no warning.
    let text = task(
        7350,
        &url,
        dir.path(),
        "include = [\"pre_unlogged.*\"]\nexclude = [\"pre_unlogged.child\", \"pre_unlogged.mem\"]",
        "",
    );
    let report = precheck(&text, dir.path()).await;
    outcome(&report, "cascading_foreign_keys", Outcome::Pass);
    outcome(&report, "memory_tables", Outcome::Pass);
    conn.query_drop(
        "DROP USER 'pre_switcher'@'%', 'pre_super'@'%', 'pre_reader'@'%', 'pre_writer'@'%'",
    )
    .await
    .expect("drop users");
}

/// What no retry can mend is found by the precheck and stops `run` at once,
/// each with its fix: a state_dir the task cannot write, `types` without
/// `"schema"` on a destination that lacks the tables, and a resumed task
/// whose destination tables are gone. The sinks' own errors say the same
/// when the tables vanish mid-run, and none of them is retried.
#[tokio::test]
async fn definite_failures_are_found_before_the_run_and_never_retried() {
    let url = sync_testkit::mysql_url();
    let mut conn = admin(&url).await;
    fresh_db(
        &mut conn,
        "pre_definite",
        "CREATE TABLE orders (id INT PRIMARY KEY, v INT); INSERT INTO orders VALUES (1, 1), (2, 2);",
    )
    .await;
    let quick = "[retry]\nother_seconds = 600\nconnection_seconds = 1200\n";
    let objects = "include = [\"pre_definite.*\"]";

    // A state_dir under a regular file.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("state"), b"a file, not a folder").expect("file");
    let text = format!("{}{quick}", task(7351, &url, dir.path(), objects, ""));
    let report = precheck(&text, dir.path()).await;
    let m = outcome(&report, "state_dir", Outcome::Failure);
    assert!(
        m.starts_with("the task cannot keep its checkpoint in "),
        "{m}"
    );

    // `types` without "schema" on an empty destination.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("{}{quick}", task(7351, &url, dir.path(), objects, "")).replace(
        "types = [\"schema\", \"full\", \"incremental\"]",
        "types = [\"full\", \"incremental\"]",
    );
    let report = precheck(&text, dir.path()).await;
    let m = outcome(&report, "destination_tables", Outcome::Failure);
    assert_eq!(
        m,
        "[sync] types = [\"full\", \"incremental\"] lack \"schema\", so the task creates no \
         table, and these do not exist: orders_base, orders_log"
    );
    let started = std::time::Instant::now();
    let err = runner(&text, dir.path())
        .run(&RunOptions::default())
        .await
        .expect_err("run must refuse");
    assert!(matches!(&err, Error::Precheck(r) if r.get("destination_tables").is_some()));
    assert!(!err.is_transient(), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));

    // A task in its incremental phase whose log table is gone.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("{}{quick}", task(7351, &url, dir.path(), objects, ""));
    let caught_up = RunOptions {
        exit_when_caught_up: true,
        ..RunOptions::default()
    };
    runner(&text, dir.path())
        .run(&caught_up)
        .await
        .expect("first run");
    outcome(
        &precheck(&text, dir.path()).await,
        "destination_tables",
        Outcome::Pass,
    );
    std::fs::remove_dir_all(dir.path().join("warehouse").join("orders_log")).expect("drop");
    let m = outcome(
        &precheck(&text, dir.path()).await,
        "destination_tables",
        Outcome::Failure,
    );
    assert_eq!(
        m,
        "the checkpoint says the task created and wrote these destination tables, but they \
         are gone: orders_log"
    );
    let err = runner(&text, dir.path())
        .run(&caught_up)
        .await
        .expect_err("run must refuse");
    assert!(matches!(&err, Error::Precheck(_)), "{err}");

    // Gone between the precheck and a write: the sink says so, definitely.
    let wh = LocalWarehouse::new(dir.path().join("warehouse"));
    let batch = arrow_array::RecordBatch::try_new(
        Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "id",
            arrow_schema::DataType::Int32,
            false,
        )])),
        vec![Arc::new(arrow_array::Int32Array::from(vec![1]))],
    )
    .expect("batch");
    let err = wh
        .commit_unit(
            "u1",
            vec![sync_core::sink::TableBatch {
                table: "orders_log".into(),
                partition: vec![],
                batch,
            }],
        )
        .await
        .expect_err("no table");
    assert!(
        matches!(&err, Error::DestinationTableMissing { .. }),
        "{err}"
    );
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains("fix: point [destination] back"),
        "{err}"
    );
    assert!(
        !dir.path().join("warehouse/orders_log").exists(),
        "recreated"
    );
}
