//! `sync-cli init`: a commented task file for a source, ready for
//! `precheck`. The password never goes into the file.

use anyhow::{Context, Result, bail};
use clap::Args;
use mysql_source::conn::{ConnectOptions, RawConn};
use std::path::PathBuf;

/// `init` options.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The source, `mysql://user[:password]@host[:port]`; the password is
    /// used to connect and never written (the file reads it from
    /// SYNC_SOURCE_PASSWORD).
    #[arg(long)]
    source: String,
    /// `local:PATH` (Parquet files) or `maxcompute:ENDPOINT/PROJECT`, e.g.
    /// `maxcompute:https://service.cn-hangzhou.maxcompute.aliyun.com/api/my_project`.
    #[arg(long, default_value = "local:./warehouse")]
    destination: String,
    /// Tables to select (`db.table` patterns, repeatable); default: every
    /// database but the server's own, as `db.*`.
    #[arg(long)]
    include: Vec<String>,
    /// Where to write the task file.
    #[arg(long, short, default_value = "task.toml")]
    out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

const SYSTEM_DATABASES: [&str; 4] = ["information_schema", "mysql", "performance_schema", "sys"];

pub(crate) async fn init(args: InitArgs) -> Result<()> {
    if args.out.exists() && !args.force {
        bail!(
            "{} exists already: choose another --out, or --force to replace it",
            args.out.display()
        );
    }
    let destination = destination_section(&args.destination)?;
    let mut options = ConnectOptions::from_url(&args.source)?;
    if options.password.is_none() {
        options.password = std::env::var("SYNC_SOURCE_PASSWORD").ok();
    }
    let mut conn = RawConn::connect(&options).await.with_context(|| {
        format!(
            "connecting to {}",
            mysql_source::conn::redact_url(&args.source)
        )
    })?;
    let version = conn.hello().version.trim_start_matches("5.5.5-").to_owned();
    let databases: Vec<String> = conn
        .query_strings("SHOW DATABASES")
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .filter(|d| !SYSTEM_DATABASES.contains(&d.to_ascii_lowercase().as_str()))
        .collect();
    let source_id: u64 = conn
        .query_strings("SELECT @@server_id")
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let _ = conn.close().await;
    let include = if args.include.is_empty() {
        if databases.is_empty() {
            bail!("the source has no database of its users' to sync (only {SYSTEM_DATABASES:?})");
        }
        databases.iter().map(|d| format!("{d}.*")).collect()
    } else {
        args.include.clone()
    };
    let server_id = replica_id(source_id);
    let text = task_file(
        &without_password(&args.source),
        &version,
        &databases,
        &include,
        server_id,
        &destination,
    );
    // What `run` will read must parse as it reads it.
    sync_core::taskfile::parse(&text, &args.out.display().to_string())
        .context("the generated task file does not parse (a bug: please report it)")?;
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} database(s) selected: {}); next: sync-cli precheck -c {}",
        args.out.display(),
        include.len(),
        include.join(", "),
        args.out.display()
    );
    if options.password.is_some() {
        eprintln!("the password is not in the file: export SYNC_SOURCE_PASSWORD before `run`");
    }
    Ok(())
}

/// A server id of our own: derived from the clock, never 0 nor the source's.
fn replica_id(source_id: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) ^ d.as_secs());
    let id = 100_000 + nanos % 4_000_000_000;
    if id == source_id { id + 1 } else { id }
}

/// The URL with its password left out (`mysql://user@host:port/...`).
fn without_password(url: &str) -> String {
    let redacted = mysql_source::conn::redact_url(url);
    redacted.replacen(":***@", "@", 1)
}

fn destination_section(spec: &str) -> Result<String> {
    if let Some(path) = spec.strip_prefix("local:") {
        if path.is_empty() {
            bail!("--destination local:PATH needs a path");
        }
        return Ok(format!(
            "[destination]\nkind = \"local\"                        # Parquet files, one folder per table\n\
             path = {}\n# compression = \"zstd\"               # zstd (default), snappy, lz4, none\n",
            toml_string(path)
        ));
    }
    if let Some(rest) = spec.strip_prefix("maxcompute:") {
        let Some((endpoint, project)) = rest.rsplit_once('/') else {
            bail!(
                "--destination maxcompute:ENDPOINT/PROJECT, e.g. maxcompute:https://service.cn-hangzhou.maxcompute.aliyun.com/api/my_project"
            );
        };
        if project.is_empty() || !endpoint.contains("://") {
            bail!(
                "--destination maxcompute:ENDPOINT/PROJECT, e.g. maxcompute:https://service.cn-hangzhou.maxcompute.aliyun.com/api/my_project"
            );
        }
        return Ok(format!(
            "[destination]\nkind = \"maxcompute\"\nendpoint = {}\nproject = {}\n\
             # access_id_env = \"ALIBABA_CLOUD_ACCESS_KEY_ID\"       # the environment variables that hold\n\
             # access_key_env = \"ALIBABA_CLOUD_ACCESS_KEY_SECRET\"  #  the AccessKey (never in this file)\n\
             # timezone = \"Asia/Shanghai\"        # default: the project's own odps.sql.timezone\n\
             # type_system = \"odps2\"             # \"odps1\" for projects on the 1.0 types\n\
             # oversized_values = \"stop\"         # values over the 8 MiB field limit: stop, null, truncate\n\
             # mirror = false                    # also keep a primary-key Delta table per keyed table\n\
             # mirror_commit_seconds = 60        # least time between two commits into one mirror table\n",
            toml_string(endpoint),
            toml_string(project)
        ));
    }
    bail!("--destination is local:PATH or maxcompute:ENDPOINT/PROJECT, not {spec:?}")
}

/// A TOML basic string (JSON's escapes are TOML's).
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn task_file(
    url: &str,
    version: &str,
    databases: &[String],
    include: &[String],
    server_id: u64,
    destination: &str,
) -> String {
    let include: Vec<String> = include.iter().map(|p| toml_string(p)).collect();
    format!(
        "# Task file written by `sync-cli init` for {version}.\n\
         # Databases found: {}.\n\
         # Check it with `sync-cli precheck -c <this file>`; every key is explained in the README.\n\
         \n\
         [source]\n\
         url = {}   # the password: SYNC_SOURCE_PASSWORD (never written here)\n\
         server_id = {server_id}                 # this task's replica id: unique among the source's replicas\n\
         # resume = \"gtid\"                      # resume by GTID (failover) instead of file:position\n\
         \n\
         {destination}\n\
         [objects]\n\
         include = [{}]\n\
         # exclude = [\"db.tmp_*\"]\n\
         # conflicting_tables = \"error\"         # destination tables that exist already: error or ignore\n\
         \n\
         [sync]\n\
         types = [\"schema\", \"full\", \"incremental\"]\n\
         state_dir = \"./state\"                  # checkpoints: keep it, one folder per task\n\
         # log_partitions = [\"year\", \"month\", \"day\"]\n\
         # parallelism = 2                       # full phase reader connections\n\
         # unsupported_events = \"stop\"          # statement-logged changes: stop (default) or skip\n\
         \n\
         # [monitor]\n\
         # listen = \"127.0.0.1:9108\"            # Prometheus metrics at /metrics\n",
        if databases.is_empty() {
            "none".to_owned()
        } else {
            databases.join(", ")
        },
        toml_string(url),
        include.join(", "),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_reaches_the_file_and_destinations_parse() {
        assert_eq!(
            without_password("mysql://repl:s3cr%40t@db.example:3306/?ssl-mode=required"),
            "mysql://repl@db.example:3306/?ssl-mode=required"
        );
        assert_eq!(without_password("mysql://repl@db"), "mysql://repl@db");
        let mc =
            destination_section("maxcompute:https://service.example.com/api/my_project").unwrap();
        assert!(
            mc.contains("endpoint = \"https://service.example.com/api\"\nproject = \"my_project\""),
            "{mc}"
        );
        assert!(destination_section("maxcompute:my_project").is_err());
        assert!(destination_section("s3:bucket").is_err());
        let text = task_file(
            "mysql://repl@db",
            "10.11",
            &["shop".into()],
            &["shop.*".into()],
            123_456,
            &destination_section("local:./w h").unwrap(),
        );
        let cfg = sync_core::taskfile::parse(&text, "task.toml").unwrap();
        assert_eq!(cfg.objects.include, ["shop.*"]);
        assert_ne!(replica_id(123_456), 0);
        assert_ne!(replica_id(replica_id(0)), 0);
    }
}
