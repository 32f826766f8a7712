//! `sync-cli precheck` prints every check and exits 1 on a failure; `run`
//! shows progress bars on a terminal and plain log lines otherwise; a bad
//! task file is reported by key and line; a second task over one task's
//! destination tables and `record_id_tag` is refused.

use crate::common::cli;
use mysql_async::prelude::Queryable;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A task file in `dir`; `server_id` is the test's own replica id (the
/// tests of this binary stream from one server at the same time).
fn write_task(server_id: u32, dir: &Path, url: &str, db: &str, sync_extra: &str) -> PathBuf {
    let path = dir.join("task.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{url}\"\nserver_id = {server_id}\n[destination]\nkind = \"local\"\npath = \"{}\"\n\
             [objects]\ninclude = [\"{db}.*\"]\n[sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
             state_dir = \"{}\"\nchunk_rows = 10\n{sync_extra}\n",
            dir.join("warehouse").display(),
            dir.join("state").display()
        ),
    )
    .expect("task file");
    path
}

async fn load(url: &str, db: &str, tables: &str) {
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; USE {db}; {tables}"
    ))
    .await
    .expect("setup");
    conn.disconnect().await.expect("disconnect");
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn rows_sql(n: u32) -> String {
    let values: Vec<String> = (1..=n).map(|i| format!("({i}, 'v{i}')")).collect();
    format!(
        "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO items VALUES {};",
        values.join(",")
    )
}

#[tokio::test]
async fn precheck_prints_each_check_and_exits_1_on_a_failure() {
    let url = sync_testkit::mysql_url();
    let db = "cli_precheck";
    load(
        &url,
        db,
        "CREATE TABLE t (id INT PRIMARY KEY, record_id BIGINT);",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let task = write_task(7441, dir.path(), &url, db, "naming_rule = \"previous\"");
    let out = cli()
        .args(["precheck", "-c"])
        .arg(&task)
        .output()
        .expect("precheck");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("pass     source_reachable"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "failure  metadata_columns       {db}.t.record_id lands as `record_id`"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: choose naming_rule = \"new\""),
        "{stdout}"
    );
    assert!(stdout.contains(" 1 failure\n"), "{stdout}");
    assert!(
        text(&out.stderr).contains("the precheck failed"),
        "{}",
        text(&out.stderr)
    );

    // `run` refuses on the same failure and creates nothing.
    let out = cli()
        .args(["run", "--exit-when-caught-up", "-c"])
        .arg(&task)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("metadata_columns"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("warehouse/t_base").exists());

    // Fixed: exit 0.
    let task = write_task(7441, dir.path(), &url, db, "naming_rule = \"new\"");
    let out = cli()
        .args(["precheck", "-c"])
        .arg(&task)
        .output()
        .expect("precheck");
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(" 0 failures\n"));

    // `--json`: one object a script can read, the same exit code.
    let json = |naming: &str| {
        let task = write_task(7441, dir.path(), &url, db, naming);
        let out = cli()
            .args(["precheck", "--json", "-c"])
            .arg(&task)
            .output()
            .expect("precheck --json");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
        (out.status.code(), v)
    };
    let (code, v) = json("naming_rule = \"new\"");
    assert_eq!(
        (code, &v["passed"]),
        (Some(0), &serde_json::Value::Bool(true))
    );
    let (code, v) = json("naming_rule = \"previous\"");
    assert_eq!(
        (code, &v["passed"]),
        (Some(1), &serde_json::Value::Bool(false))
    );
    let failed = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "metadata_columns")
        .expect("metadata_columns");
    assert_eq!(failed["outcome"], "failure");
    assert!(
        failed["fix"]
            .as_str()
            .is_some_and(|f| f.contains("naming_rule"))
    );
}

fn run_piped(task: &Path) -> Output {
    cli()
        .args(["run", "--exit-when-caught-up", "-c"])
        .arg(task)
        .output()
        .expect("run")
}

#[tokio::test]
async fn run_logs_plain_lines_without_a_terminal_and_draws_bars_on_one() {
    let url = sync_testkit::mysql_url();
    let db = "cli_progress";
    load(&url, db, &rows_sql(35)).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let task = write_task(7442, dir.path(), &url, db, "");
    let out = run_piped(&task);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("full sync: chunk 4/4 committed") && stderr.contains("rows_done=35"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains("\u{1b}["),
        "no terminal control codes in a log: {stderr:?}"
    );

    // The same under a pseudo-terminal (util-linux `script`).
    let dir = tempfile::tempdir().expect("tempdir");
    let task = write_task(7442, dir.path(), &url, db, "");
    let command = format!(
        "'{}' run --exit-when-caught-up -c '{}'",
        env!("CARGO_BIN_EXE_sync-cli"),
        task.display()
    );
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .output()
        .expect("script(1) from util-linux runs the command on a terminal");
    let screen = text(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("cli_progress.items"), "{screen}");
    assert!(screen.contains("4/4 chunks  35 rows, done"), "{screen:?}");
    assert!(
        !screen.contains("full sync: chunk"),
        "bars replace the per-chunk lines: {screen}"
    );
}

#[test]
fn task_file_errors_name_the_key_and_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task.toml");
    std::fs::write(
        &task,
        "[source]\nurl = \"mysql://root@127.0.0.1:1\"\nservr_id = 3\n[destination]\nkind = \"local\"\npath = \"w\"\n\
         [objects]\ninclude = [\"a.*\"]\n[sync]\ntypes = [\"schema\"]\nstate_dir = \"s\"\n",
    )
    .expect("write");
    let out = cli()
        .args(["status", "-c"])
        .arg(&task)
        .output()
        .expect("status");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "task file {}, line 3: unknown key `servr_id` in [source]; did you mean `server_id`?",
            task.display()
        )),
        "{stderr}"
    );
}

/// Only a program passing its own sink may leave `[destination]` out: the
/// CLI names the section and how to write it, for every command.
#[test]
fn a_task_file_without_a_destination_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task.toml");
    std::fs::write(
        &task,
        "[source]\nurl = \"mysql://root@127.0.0.1:1\"\nserver_id = 3\n\
         [objects]\ninclude = [\"a.*\"]\n[sync]\ntypes = [\"schema\"]\nstate_dir = \"s\"\n",
    )
    .expect("write");
    for command in ["status", "precheck", "run", "tables"] {
        let out = cli()
            .args([command, "-c"])
            .arg(&task)
            .output()
            .expect("sync-cli");
        assert!(!out.status.success(), "{command}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("no [destination] section: add one")
                && stderr.contains("kind = \"local\""),
            "{command}: {stderr}"
        );
    }
}

#[tokio::test]
async fn merge_sql_uses_the_destination_names() {
    let url = sync_testkit::mysql_url();
    let db = "cli_merge_names";
    load(&url, db, &rows_sql(2)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let task = write_task(7443, dir.path(), &url, db, "");
    let edited = std::fs::read_to_string(&task).expect("read").replace(
        "[sync]",
        "capitalization = \"upper\"\n[objects.tables.\"cli_merge_names.items\"]\n\
             name = \"Things\"\nrename_columns = { v = \"label\" }\n[sync]",
    );
    std::fs::write(&task, edited).expect("write");
    let out = cli()
        .args([
            "merge-sql",
            "--table",
            "cli_merge_names.items",
            "--as-of",
            "100",
            "-c",
        ])
        .arg(&task)
        .output()
        .expect("merge-sql");
    let sql = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        sql.contains("CREATE TABLE IF NOT EXISTS `THINGS_100` (`ID` int, `LABEL` string);\n"),
        "{sql}"
    );
    assert!(sql.contains("INSERT OVERWRITE TABLE `THINGS_100`"), "{sql}");
    assert!(
        sql.contains("FROM `THINGS_log` WHERE `new_dts_sync_utc_timestamp` < 100"),
        "{sql}"
    );
    assert!(
        sql.contains("PARTITION BY `ID`") && sql.contains("`ID`, `LABEL` FROM `THINGS_base`"),
        "{sql}"
    );
}

#[tokio::test]
async fn a_password_with_url_delimiters_never_reaches_the_output() {
    let url = sync_testkit::mysql_url();
    let db = "cli_secret";
    // Every character that ends a URL part, so a parser that splits early
    // would put a piece of it in an error.
    let password = "Zq/7?x#k@p:ss";
    load(
        &url,
        db,
        &format!(
            "{} CREATE USER IF NOT EXISTS 'sync_secret'@'%' IDENTIFIED BY '{password}';
             ALTER USER 'sync_secret'@'%' IDENTIFIED BY '{password}';
             GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT
               ON *.* TO 'sync_secret'@'%';",
            rows_sql(12)
        ),
    )
    .await;
    let host = url.rsplit_once('@').expect("sandbox url").1;
    let good = format!("mysql://sync_secret:{password}@{host}");
    let wrong = format!("mysql://sync_secret:{password}-wrong@{host}");
    let bad_port = format!("mysql://sync_secret:{password}@127.0.0.1:port");
    let dir = tempfile::tempdir().expect("tempdir");
    let leaks = |what: &str, out: &Output| {
        for stream in [&out.stdout, &out.stderr] {
            let t = text(stream);
            for piece in [password, "Zq/7", "p:ss", "Zq%2F7"] {
                assert!(!t.contains(piece), "{what} printed {piece:?}:\n{t}");
            }
        }
    };
    let task = write_task(7444, dir.path(), &good, db, "");
    for args in [
        &["precheck", "-c"][..],
        &["run", "--exit-when-caught-up", "-c"],
        &["status", "-c"],
    ] {
        let out = cli()
            .args(args)
            .arg(&task)
            .env("RUST_LOG", "debug")
            .output()
            .expect("cli");
        leaks(args[0], &out);
        assert!(
            out.status.success(),
            "{} with the right password: {}",
            args[0],
            text(&out.stderr)
        );
    }
    for (case, url) in [("wrong password", &wrong), ("bad port", &bad_port)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let task = write_task(7444, dir.path(), url, db, "");
        for cmd in ["precheck", "run"] {
            let out = cli()
                .args([cmd, "-c"])
                .arg(&task)
                .env("RUST_LOG", "debug")
                .output()
                .expect("cli");
            assert!(!out.status.success(), "{cmd} with a {case} succeeded");
            leaks(&format!("{cmd} with a {case}"), &out);
        }
    }
}

/// A task of its own (`state`) into the shared `dir/warehouse`.
fn owner_task(dir: &Path, url: &str, db: &str, state: &str, tag: u8) -> PathBuf {
    let path = dir.join(format!("{state}.toml"));
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{url}\"\nserver_id = 7445\nrecord_id_tag = {tag}\n\
             [destination]\nkind = \"local\"\npath = \"{}\"\n\
             [objects]\ninclude = [\"{db}.*\"]\nconflicting_tables = \"ignore\"\n\
             [sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\nstate_dir = \"{}\"\n",
            dir.join("warehouse").display(),
            dir.join(state).display()
        ),
    )
    .expect("task file");
    path
}

#[tokio::test]
async fn a_second_task_over_the_same_tables_and_tag_is_refused() {
    let url = sync_testkit::mysql_url();
    let db = "cli_owners";
    load(&url, db, &rows_sql(20)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = owner_task(dir.path(), &url, db, "state-a", 0);
    let out = run_piped(&first);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let checkpoint: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("state-a/task.json")).expect("checkpoint"),
    )
    .expect("json");
    let owner = checkpoint["state"]["task_id"].as_str().expect("task id");
    let marker = dir.path().join("warehouse/items_log/_owner.tag-0");
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), owner);
    // The task itself passes on every restart.
    let out = cli()
        .args(["precheck", "-c"])
        .arg(&first)
        .output()
        .expect("precheck");
    assert!(out.status.success(), "{}", text(&out.stdout));

    // Same tables, same tag, another state_dir: refused by the precheck,
    // even with conflicting_tables = "ignore", and by `run`.
    let second = owner_task(dir.path(), &url, db, "state-b", 0);
    let out = cli()
        .args(["precheck", "-c"])
        .arg(&second)
        .output()
        .expect("precheck");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("failure  destination_owners")
            && stdout.contains(&format!("items_base (task {owner})"))
            && stdout.contains("record_id_tag 0"),
        "{stdout}"
    );
    assert!(stdout.contains("own record_id_tag"), "{stdout}");
    let out = run_piped(&second);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("destination_owners"),
        "{}",
        text(&out.stderr)
    );
    let rows = |table: &str| -> usize {
        sync_core::sink::local::LocalWarehouse::new(dir.path().join("warehouse"))
            .read_table_blocking(table)
            .expect("read")
            .iter()
            .map(|b| b.num_rows())
            .sum()
    };
    assert_eq!(rows("items_base"), 20, "the refused task wrote nothing");

    // Another tag (another source into the same tables) is the operator's call.
    let third = owner_task(dir.path(), &url, db, "state-c", 1);
    let out = cli()
        .args(["precheck", "-c"])
        .arg(&third)
        .output()
        .expect("precheck");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("pass     destination_owners"), "{stdout}");
    // It writes into them: every key is there already, so every row is
    // skipped, and `status` says so.
    let out = run_piped(&third);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(rows("items_base"), 20, "no row twice");
    let out = cli()
        .args(["status", "-c"])
        .arg(&third)
        .output()
        .expect("status");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "cli_owners.items: the full phase skipped 20 rows as already present in the \
             destination (conflicting_tables = \"ignore\")"
        ),
        "{stdout}"
    );
}

/// A table without a key through the CLI: `verify` compares it as a
/// multiset and `merge-sql` prints the multiset query. After an `ADD
/// COLUMN`, a change to a copy written before it removes that copy in
/// `merge` and `verify` (matched on its other columns), and `merge-sql`
/// warns that its SQL cannot.
#[tokio::test]
async fn keyless_table_through_verify_merge_and_merge_sql() {
    let url = sync_testkit::mysql_url();
    let db = "cli_keyless";
    load(
        &url,
        db,
        "CREATE TABLE t (a INT, b VARCHAR(10)); INSERT INTO t VALUES (1, 'x'), (1, 'x'), (2, 'y');",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let task = write_task(7446, dir.path(), &url, db, "");
    let command = |args: &[&str]| {
        let out = cli()
            .args(args)
            .arg("-c")
            .arg(&task)
            .output()
            .expect("sync-cli");
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    };
    let source = |sql: &'static str| {
        let url = url.clone();
        async move {
            let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
                .await
                .expect("connect");
            conn.query_drop(format!("USE {db}; {sql}"))
                .await
                .expect("change");
            conn.disconnect().await.expect("disconnect");
        }
    };
    command(&["run", "--exit-when-caught-up"]);
    source("UPDATE t SET b = 'x2' WHERE a = 1 LIMIT 1").await;
    command(&["run", "--exit-when-caught-up"]);
    let verify = text(&command(&["verify"]).stdout);
    assert!(
        verify.contains("cli_keyless.t: equal (3 rows, no key: compared as a multiset)"),
        "{verify}"
    );
    let sql = command(&["merge-sql", "--table", "cli_keyless.t", "--as-of", "100"]);
    assert!(
        text(&sql.stdout).contains("ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"),
        "{}",
        text(&sql.stdout)
    );
    assert!(
        !text(&sql.stderr).contains("gained columns"),
        "{}",
        text(&sql.stderr)
    );

    // The copies of t_base hold NULL in `c`; the source shows 5. The
    // UPDATE's before image (1, 'x', 5) takes one of the two (1, 'x', NULL).
    source(
        "ALTER TABLE t ADD COLUMN c INT NOT NULL DEFAULT 5;
         UPDATE t SET b = 'x3' WHERE b = 'x' LIMIT 1",
    )
    .await;
    command(&["run", "--exit-when-caught-up"]);
    let verify = text(&command(&["verify"]).stdout);
    assert!(
        verify.contains(
            "cli_keyless.t: equal (3 rows, no key: compared as a multiset; 2 of them NULL in \
             columns added after their last change"
        ),
        "{verify}"
    );
    let out = dir.path().join("t.parquet");
    let merge = cli()
        .args(["merge", "--table", "cli_keyless.t", "--out"])
        .arg(&out)
        .arg("-c")
        .arg(&task)
        .output()
        .expect("merge");
    assert!(
        text(&merge.stdout).contains("cli_keyless.t: 3 rows written"),
        "{}{}",
        text(&merge.stdout),
        text(&merge.stderr)
    );
    let sql = command(&["merge-sql", "--table", "cli_keyless.t", "--as-of", "100"]);
    assert!(
        text(&sql.stderr).contains(
            "warning: cli_keyless.t has no key and gained columns during the incremental phase (c)"
        ),
        "{}",
        text(&sql.stderr)
    );
    // From the schema the task tracks, with the source out of reach: the
    // result table gains `c` right after the ALTER, and is created first.
    let host = url.rsplit_once('@').expect("sandbox url").1;
    let offline = std::fs::read_to_string(&task)
        .expect("read")
        .replace(host, "127.0.0.1:1");
    let offline_task = dir.path().join("offline.toml");
    std::fs::write(&offline_task, offline).expect("write");
    let out = cli()
        .args([
            "merge-sql",
            "--table",
            "cli_keyless.t",
            "--as-of",
            "100",
            "-c",
        ])
        .arg(&offline_task)
        .output()
        .expect("merge-sql");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(
            "set odps.sql.type.system.odps2=true;\nset odps.sql.decimal.odps2=true;\n\
             CREATE TABLE IF NOT EXISTS `t_100` (`a` int, `b` string, `c` int);\n"
        ),
        "{}",
        text(&out.stdout)
    );
}

/// `tables` shows what a task selects and where each name lands before
/// anything runs: escaped names, renames, left-out columns, the key (or
/// its absence), the filter and the row estimate; `--json` the same.
#[tokio::test]
async fn tables_lists_every_selected_table_with_its_destination_names() {
    let url = sync_testkit::mysql_url();
    let db = "cli_tables";
    load(
        &url,
        db,
        "CREATE TABLE `Order-Items` (`order-id` INT PRIMARY KEY, `名前` VARCHAR(10), `select` INT,
           skipped INT, at DATETIME(3));
         INSERT INTO `Order-Items` VALUES (1, 'a', 1, 1, NULL), (2, 'b', 2, 2, NULL);
         CREATE TABLE loose (v INT); ANALYZE TABLE `Order-Items`;",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let task = write_task(7447, dir.path(), &url, db, "log_partitions = [\"day\"]");
    let text_task = std::fs::read_to_string(&task).expect("read") .replace(
        "[sync]\n",
        &format!(
            "[objects.tables.\"{db}.Order-Items\"]\ncolumns = [\"order-id\", \"名前\", \"select\", \"at\"]\n\
             rename_columns = {{ \"select\" = \"picked\" }}\nfilter = \"`select` > 0\"\n[sync]\n"
        ),
    );
    std::fs::write(&task, text_task).expect("write");
    let out = cli()
        .args(["tables", "-c"])
        .arg(&task)
        .output()
        .expect("tables");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("{db}.loose → loose_base / loose_log")),
        "{stdout}"
    );
    assert!(stdout.contains("no key: merged as a multiset"), "{stdout}");
    assert!(stdout.contains("filter: `select` > 0"), "{stdout}");
    assert!(stdout.contains("column select → picked"), "{stdout}");
    assert!(
        stdout.contains("(not synced: [objects.tables] columns)"),
        "{stdout}"
    );
    assert!(stdout.ends_with("2 tables selected\n"), "{stdout}");
    // Nothing was written.
    assert!(!dir.path().join("warehouse").exists() && !dir.path().join("state").exists());

    let out = cli()
        .args(["tables", "--json", "-c"])
        .arg(&task)
        .output()
        .expect("tables --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let t = v
        .as_array()
        .expect("array")
        .iter()
        .find(|t| t["source"] == format!("{db}.Order-Items"))
        .expect("Order-Items");
    let base = t["base"].as_str().expect("base");
    assert!(
        base.starts_with("order_items_") && base.ends_with("_base"),
        "escaped, with a checksum suffix: {base}"
    );
    assert_eq!(t["rows_estimate"], 2);
    assert_eq!(
        t["log_partitions"],
        serde_json::json!(["new_dts_sync_modifytime_day"])
    );
    let key = t["key"][0].as_str().expect("key");
    let columns = t["columns"].as_array().expect("columns");
    let order_id = &columns[0];
    assert_eq!(order_id["source"], "order-id");
    assert_eq!(order_id["dest"].as_str(), Some(key));
    assert_eq!(
        columns[3]["dest"],
        serde_json::Value::Null,
        "skipped is left out"
    );
    assert_eq!(columns[4]["source_type"], "datetime(3)");
}

/// `init` writes a commented task file that passes `precheck` as it is,
/// with the password left out (read from SYNC_SOURCE_PASSWORD), and never
/// overwrites a file unasked.
#[tokio::test]
async fn init_writes_a_task_file_that_passes_the_precheck_without_the_password() {
    let url = sync_testkit::mysql_url();
    let db = "cli_init";
    load(
        &url,
        db,
        "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO items VALUES (1, 'a');
         CREATE USER IF NOT EXISTS 'cli_initer'@'%' IDENTIFIED BY 'In1t-pw/secret';
         GRANT ALL ON *.* TO 'cli_initer'@'%';",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task.toml");
    let with_password = url.replacen("mysql://root@", "mysql://cli_initer:In1t-pw%2Fsecret@", 1);
    let init = || {
        let mut c = cli();
        c.current_dir(dir.path())
            .args([
                "init",
                "--source",
                &with_password,
                "--include",
                &format!("{db}.*"),
            ])
            .args(["--destination", "local:warehouse", "-o"])
            .arg(&task);
        c
    };
    let out = init().output().expect("init");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("SYNC_SOURCE_PASSWORD"),
        "{}",
        text(&out.stderr)
    );
    let file = std::fs::read_to_string(&task).expect("task file");
    assert!(!file.contains("In1t-pw"), "{file}");
    assert!(file.contains(&format!("include = [\"{db}.*\"]")), "{file}");
    assert!(file.contains("mysql://cli_initer@"), "{file}");

    let out = cli()
        .current_dir(dir.path())
        .env("SYNC_SOURCE_PASSWORD", "In1t-pw/secret")
        .args(["precheck", "-c"])
        .arg(&task)
        .output()
        .expect("precheck");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("1 table selected"),
        "{}",
        text(&out.stdout)
    );

    let again = init().output().expect("init again");
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("exists already"),
        "{}",
        text(&again.stderr)
    );
}

/// `verify` and `merge` before any run say "not started" (exit 1, not a
/// list of every key as missing); `verify --table` compares one table and
/// names the `db.table` meant for a bare name; `--json` is one object.
#[tokio::test]
async fn verify_before_a_run_one_table_and_as_json() {
    let url = sync_testkit::mysql_url();
    let db = "cli_verify";
    load(
        &url,
        db,
        &format!("{} CREATE TABLE other (id INT PRIMARY KEY);", rows_sql(3)),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let task = write_task(7448, dir.path(), &url, db, "");
    let run = |args: &[&str]| {
        cli()
            .args(args)
            .arg("-c")
            .arg(&task)
            .output()
            .expect("sync-cli")
    };
    let out = run(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not started: there is no checkpoint"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stdout).contains("missing"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&[
        "merge",
        "--table",
        &format!("{db}.items"),
        "--out",
        "x.parquet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nothing to merge: not started"),
        "{}",
        text(&out.stderr)
    );

    let status = |args: &[&str]| -> serde_json::Value {
        let out = run(args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status json")
    };
    let v = status(&["status", "--json"]);
    assert_eq!(
        (v["phase"].as_str(), v["alive"].as_bool()),
        (Some("not_started"), Some(false))
    );

    let out = run(&["run", "--exit-when-caught-up"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = status(&["status", "--json"]);
    assert_eq!(
        (v["phase"].as_str(), v["alive"].as_bool()),
        (Some("incremental"), Some(false))
    );
    assert_eq!(v["run"]["command"], "run", "{v}");
    assert!(
        v["checkpoint"]["phase"]["position"]["file"].is_string(),
        "{v}"
    );
    assert_eq!(v["progress"]["last_stop"]["reason"], "caught_up", "{v}");
    let out = run(&["verify", "--table", &format!("{db}.items")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("1 table equal\n"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["verify", "--table", "items"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("did you mean {db}.items?")),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["verify", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["equal"], true);
    let tables = v["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 2);
    let items = tables
        .iter()
        .find(|t| t["table"] == format!("{db}.items"))
        .expect("items");
    assert_eq!(
        (items["source_rows"].as_u64(), items["equal"].as_bool()),
        (Some(3), Some(true))
    );
}
