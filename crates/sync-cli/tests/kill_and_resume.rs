//! SIGKILL `sync-cli run` at random moments (full phase, incremental phase,
//! between a sink commit and its checkpoint) while a writer keeps changing the
//! source; after a final catch-up, `verify` passes and no `t_log` record is
//! doubled.

use mysql_async::prelude::Queryable;
use std::process::{Command, Stdio};
use std::time::Duration;
use sync_core::sink::local::LocalWarehouse;
use sync_testkit::records::{doubled, log_record_keys};
use sync_testkit::rng::Rng;
use sync_testkit::shop::{Scale, changes_sql, shop_sql};

const DB: &str = "cli_kill_shop";

fn task_file(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("task.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{url}\"\nserver_id = 7202\n[destination]\nkind = \"local\"\npath = \"{}\"\n\
             [objects]\ninclude = [\"{DB}.*\"]\n[sync]\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
             state_dir = \"{}\"\nchunk_rows = 150\nbatch_rows = 40\nlog_partitions = [\"day\"]\n",
            dir.join("warehouse").display(),
            dir.join("state").display()
        ),
    )
    .expect("task file");
    path
}

/// Waits until the checkpoint holds a captured binlog position.
async fn wait_for_position(checkpoint: &std::path::Path) {
    let t0 = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(checkpoint).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let phase = &v["state"]["phase"];
        let positioned = phase["phase"] == "incremental"
            || (phase["phase"] == "full_sync" && !phase["start"].is_null());
        if positioned {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the first run never captured its position: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sync-cli"))
}

async fn write_some(conn: &mut mysql_async::Conn, rng: &mut Rng, round: u32) {
    conn.query_drop(changes_sql(DB, rng, 200_000 + round))
        .await
        .expect("writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_resume_without_loss_or_duplicates() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    conn.query_drop(format!("DROP DATABASE IF EXISTS {DB}"))
        .await
        .expect("drop");
    conn.query_drop(shop_sql(
        DB,
        Scale {
            customers: 1500,
            products: 300,
            orders: 1500,
            events: 100,
        },
        11,
    ))
    .await
    .expect("load");
    let dir = tempfile::tempdir().expect("tempdir");
    let task = task_file(dir.path(), &url);
    let mut rng = Rng::new(2026);

    for round in 0..12u32 {
        write_some(&mut conn, &mut rng, round).await;
        let mut child = cli()
            .args(["run", "-c"])
            .arg(&task)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sync-cli");
        if round == 0 {
            // The first run must get past the precheck and capture its
            // position, or (on a loaded machine) every kill lands before any
            // change could reach t_log.
            wait_for_position(&dir.path().join("state/task.json")).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.range(50, 900) as u64)).await;
        write_some(&mut conn, &mut rng, 100 + round).await;
        tokio::time::sleep(Duration::from_millis(rng.range(0, 300) as u64)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    let out = cli()
        .args(["run", "--exit-when-caught-up", "-c"])
        .arg(&task)
        .output()
        .expect("catch up");
    assert!(
        out.status.success(),
        "catch-up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli()
        .args(["verify", "-c"])
        .arg(&task)
        .output()
        .expect("verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("5 tables equal"), "{text}");

    let wh = LocalWarehouse::new(dir.path().join("warehouse"));
    let mut total = 0;
    for table in [
        "customers_log",
        "orders_log",
        "order_items_log",
        "products_log",
        "event_log_log",
    ] {
        let keys = log_record_keys(&wh.read_table_blocking(table).expect("read")).expect("keys");
        assert_eq!(doubled(&keys), vec![], "{table} holds a doubled record");
        total += keys.len();
    }
    assert!(
        total > 100,
        "the writer's changes reached t_log ({total} records)"
    );
    conn.query_drop(format!("DROP DATABASE {DB}"))
        .await
        .expect("drop");
}
