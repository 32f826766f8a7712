//! The task file: what to sync, from where, to where, and how.
//!
//! ```toml
//! [source]
//! url = "mysql://root@127.0.0.1:3307"   # password in the URL or SYNC_SOURCE_PASSWORD
//! server_id = 5501                      # this replica's id, unique among the source's replicas
//!
//! [destination]
//! kind = "local"                        # the embedded Parquet warehouse
//! path = "./warehouse"
//! # or MaxCompute:
//! # kind = "maxcompute"
//! # endpoint = "https://service.cn-hangzhou.maxcompute.aliyun.com/api"
//! # tunnel_endpoint = "https://dt.cn-hangzhou.maxcompute.aliyun.com"   # optional: discovered
//! # project = "my_project"
//! # access_id_env = "ALIBABA_CLOUD_ACCESS_KEY_ID"       # names of the environment
//! # access_key_env = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  #  variables (these are the defaults)
//! # allow_insecure_http = false       # true accepts http:// endpoints off this machine
//!
//! [objects]
//! include = ["shop.*"]                  # db.table patterns, `*` matches any run of characters
//! exclude = ["shop.tmp_*"]
//! capitalization = "lower"              # destination names: lower (default), upper, source
//! conflicting_tables = "error"          # existing destination tables: error (precheck fails) or ignore (crate::conflict)
//!
//! [objects.databases]
//! shop = "sales"                        # tables of `shop` land as sales_<table>_base / _log
//!
//! [objects.tables."shop.customers"]
//! name = "clients"                      # clients_base / clients_log
//! columns = ["id", "email", "country"]  # sync only these (the row key must be among them)
//! rename_columns = { email = "mail" }
//! filter = "country IN ('DE', 'FR') AND signup_at >= '2024-01-01'"  # rows to sync, both phases
//!
//! [sync]
//! types = ["schema", "full", "incremental"]
//! state_dir = "./state"
//! naming_rule = "new"                   # or "previous": record_id, operation_flag, ...
//! log_partitions = []                   # any of year, month, day, hour, minute
//! chunk_rows = 50000                    # full phase: rows per primary-key chunk
//! chunk_mb = 16                         # full phase: fewer rows per chunk when rows are wide
//! read_protocol = "binary"              # full phase: or "text" (no prepared statements)
//! parallelism = 2                       # full phase: reader connections
//! batch_rows = 20000                    # incremental: change records per commit
//! flush_interval_ms = 1000              # incremental: commit a batch at the latest this long after its first record
//! max_batch_records = 200000            # incremental: a bigger transaction is committed in parts
//! ddl = { add_column = "apply", create_table = "apply", other = "stop" }   # see DdlConfig
//! unsupported_events = "stop"           # or "skip": a synced table's change without whole rows (see UnsupportedEvents)
//!
//! [throttle]                            # optional; each limit absent = unlimited
//! full_qps = 50                         # full phase: chunk queries per second to the source
//! full_rows_per_second = 20000
//! full_mb_per_second = 10               # MB = 1,000,000 bytes of row payload
//! incremental_rows_per_second = 5000    # row changes
//! incremental_mb_per_second = 5         # rows events' bytes
//!
//! [retry]
//! connection_minutes = 720              # 10–1440: failed connections
//! other_minutes = 10                    # 1–1440, less than connection_minutes: destination failures
//!
//! [heartbeat]
//! enabled = true                        # write a heartbeat row on the source
//! interval_seconds = 1
//! table = "dts.dts_heartbeat"           # created when allowed; never synced
//! ```

use crate::error::{Error, Result};
use crate::machine::SelectedPhases;
pub use crate::naming::Capitalization;
pub use crate::precheck::ConflictMode;
use crate::records::{NamingRule, TimeLevel};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole task file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// The MySQL side.
    pub source: SourceConfig,
    /// The destination. A program that passes its own [`crate::sink::Sink`]
    /// to [`crate::run::TaskRunner::new`] may leave the section out
    /// ([`DestinationConfig::Embedded`]); `sync-cli` needs it.
    #[serde(default)]
    pub destination: DestinationConfig,
    /// Which tables.
    pub objects: ObjectsConfig,
    /// How.
    pub sync: SyncConfig,
    /// Metrics endpoint.
    #[serde(default)]
    pub monitor: MonitorConfig,
    /// Alerts (lag over a threshold, task failed); none when absent.
    #[serde(default)]
    pub alert: Option<crate::alert::AlertConfig>,
    /// Rate limits of the full and incremental phases; none when absent.
    #[serde(default)]
    pub throttle: crate::throttle::ThrottleConfig,
    /// How long failures are retried.
    #[serde(default)]
    pub retry: crate::retry::RetryConfig,
    /// Heartbeat writes to the source; off when absent.
    #[serde(default)]
    pub heartbeat: crate::heartbeat::HeartbeatConfig,
}

/// The `[monitor]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Serve Prometheus metrics at `http://LISTEN/metrics`, e.g. `"127.0.0.1:9108"`
    /// or `"localhost:9108"` (a host name resolves when the task file is read).
    #[serde(default, deserialize_with = "listen_address")]
    pub listen: Option<std::net::SocketAddr>,
}

/// `host:port` with an IP address or a host name (the first address it
/// resolves to, IPv4 first).
fn listen_address<'de, D>(
    deserializer: D,
) -> std::result::Result<Option<std::net::SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use std::net::ToSocketAddrs;
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Ok(addr) = text.parse() {
        return Ok(Some(addr));
    }
    let bad = |why: String| {
        serde::de::Error::custom(format!(
            "`{text}` is not host:port ({why}); e.g. \"127.0.0.1:9108\" or \"localhost:9108\""
        ))
    };
    let addrs: Vec<std::net::SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .map(Some)
        .ok_or_else(|| bad("it resolves to no address".into()))
}

/// The MySQL side. Its `Debug` shows the URLs without their passwords.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `mysql://user[:password]@host:port[?ssl-mode=...&ssl-ca=...]`.
    pub url: String,
    /// This replica's server id.
    #[serde(default = "default_server_id")]
    pub server_id: u32,
    /// Other servers of the source's replication group, tried in order when
    /// `url` does not answer or is read-only (a demoted primary); needs
    /// `resume = "gtid"`.
    #[serde(default)]
    pub failover_urls: Vec<String>,
    /// How the incremental phase resumes: at the checkpoint's binlog file
    /// and offset, or after the checkpoint's GTID position (valid on any
    /// server of the group, so the task can follow a failover).
    #[serde(default)]
    pub resume: ResumeBy,
    /// High bits of every `record_id` this task writes (0–255): tasks of
    /// different sources writing into one destination give each a distinct
    /// tag, so their ids never collide.
    #[serde(default)]
    pub record_id_tag: u8,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failover: Vec<String> = self
            .failover_urls
            .iter()
            .map(|u| mysql_source::redact_url(u))
            .collect();
        f.debug_struct("SourceConfig")
            .field("url", &mysql_source::redact_url(&self.url))
            .field("server_id", &self.server_id)
            .field("failover_urls", &failover)
            .field("resume", &self.resume)
            .field("record_id_tag", &self.record_id_tag)
            .finish()
    }
}

/// `[source] resume`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Eq, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ResumeBy {
    /// Binlog file and offset (any server with binary logging).
    #[default]
    Position,
    /// GTID position (MariaDB, or MySQL with `gtid_mode=ON`).
    Gtid,
}

/// The destination.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DestinationConfig {
    /// A directory of Parquet files.
    Local {
        /// The warehouse directory.
        path: PathBuf,
        /// Codec of the Parquet files: `zstd` (when unset), `snappy`,
        /// `lz4` or `none` (see [`ParquetCompression::from_name`]; the
        /// task-file check names a bad one with its line).
        #[serde(default)]
        compression: Option<String>,
        /// Dictionary-encode the columns of the Parquet files (off by
        /// default: it costs a hash per value and rarely shrinks a file
        /// that ZSTD compresses anyway).
        #[serde(default)]
        dictionary: bool,
    },
    /// A MaxCompute project.
    Maxcompute(MaxComputeConfig),
    /// No `[destination]` section: the sink is the one the embedding
    /// program passes to [`crate::run::TaskRunner::new`], with no
    /// destination settings (MaxCompute's type system, time zone and
    /// oversized-value policy at their defaults).
    #[serde(skip)]
    #[default]
    Embedded,
}

/// `[destination] compression` of the local warehouse's Parquet files.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum ParquetCompression {
    /// ZSTD at level 1.
    #[default]
    Zstd,
    /// Snappy: faster, larger files.
    Snappy,
    /// LZ4 (the `LZ4_RAW` codec).
    Lz4,
    /// Uncompressed.
    None,
}

impl ParquetCompression {
    /// The names a task file may use.
    pub const NAMES: [&str; 4] = ["zstd", "snappy", "lz4", "none"];

    /// The codec a task file names (`None` for an unknown name).
    ///
    /// ```
    /// use sync_core::config::ParquetCompression;
    /// assert_eq!(ParquetCompression::from_name("snappy"), Some(ParquetCompression::Snappy));
    /// assert_eq!(ParquetCompression::from_name("gzip"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "zstd" => Self::Zstd,
            "snappy" => Self::Snappy,
            "lz4" => Self::Lz4,
            "none" => Self::None,
            _ => return None,
        })
    }
}

/// `[destination] kind = "maxcompute"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxComputeConfig {
    /// Service endpoint, e.g. `https://service.cn-hangzhou.maxcompute.aliyun.com/api`.
    pub endpoint: String,
    /// Tunnel endpoint; asked of the service when absent.
    #[serde(default)]
    pub tunnel_endpoint: Option<String>,
    /// The project.
    pub project: String,
    /// Environment variable holding the AccessKey id.
    #[serde(default = "default_access_id_env")]
    pub access_id_env: String,
    /// Environment variable holding the AccessKey secret (never printed).
    #[serde(default = "default_access_key_env")]
    pub access_key_env: String,
    /// Accept `http://` endpoints (`endpoint`, `tunnel_endpoint`, or the
    /// tunnel the service names) whose host is not loopback. Off by default:
    /// MaxCompute's request signature does not cover the body, so without
    /// TLS anyone on the network path could change the synced data.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// What a STRING/BINARY value over MaxCompute's 8 MiB field size limit
    /// becomes: `"stop"` (default), `"null"` or `"truncate"` (see
    /// [`crate::oversized`]).
    #[serde(default)]
    pub oversized_values: crate::oversized::OversizedPolicy,
    /// The zone DATETIME(0..3) values are wall clocks of in the project
    /// (an IANA name such as `"Asia/Shanghai"`, `"UTC"`, or `"+08:00"`);
    /// unset: the project's own `odps.sql.timezone` ([`crate::timezone`]).
    #[serde(default)]
    pub timezone: Option<String>,
    /// The MaxCompute type edition the task creates tables in: `"odps2"`
    /// (default) or `"odps1"` ([`crate::mapping::odps_type_in`]).
    #[serde(default)]
    pub type_system: crate::mapping::TypeSystem,
    /// Also keep, per table with a key, a primary-key Delta table named
    /// like the table's destination stem, equal to the source
    /// ([`crate::mirror`]).
    #[serde(default)]
    pub mirror: bool,
    /// The least time between two commits into one mirror table, in seconds
    /// (default 60: the service asks for at most about one commit per
    /// minute per table; 0 commits after every `t_log` batch).
    #[serde(default = "default_mirror_commit_seconds")]
    pub mirror_commit_seconds: u64,
}

fn default_mirror_commit_seconds() -> u64 {
    60
}

fn default_access_id_env() -> String {
    "ALIBABA_CLOUD_ACCESS_KEY_ID".into()
}
fn default_access_key_env() -> String {
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET".into()
}

impl MaxComputeConfig {
    /// A client for the project with the credentials from the environment.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key whose variable is unset, or the
    /// endpoint that does not parse.
    pub fn client(&self) -> Result<odps_tunnel::Client> {
        let var = |key: &str, name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "[destination] {key}: environment variable {name} is not set"
                    ))
                })
        };
        let id = var("access_id_env", &self.access_id_env)?;
        let secret = var("access_key_env", &self.access_key_env)?;
        let options = odps_tunnel::rest::ClientOptions {
            tunnel_endpoint: self.tunnel_endpoint.clone(),
            allow_insecure_http: self.allow_insecure_http,
            ..odps_tunnel::rest::ClientOptions::default()
        };
        odps_tunnel::Client::with_options(
            &self.endpoint,
            &self.project,
            odps_tunnel::auth::Credentials::new(id, secret),
            options,
        )
        .map_err(|e| {
            Error::Config(format!(
                "[destination] endpoint / tunnel_endpoint / project: {e}"
            ))
        })
    }
}

/// Which tables.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectsConfig {
    /// `db.table` patterns to sync.
    pub include: Vec<String>,
    /// `db.table` patterns to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Case of destination names.
    #[serde(default)]
    pub capitalization: Capitalization,
    /// What to do about destination tables that exist before the task.
    #[serde(default)]
    pub conflicting_tables: ConflictMode,
    /// Database renames: source database → destination name prefix.
    #[serde(default)]
    pub databases: BTreeMap<String, String>,
    /// Per-table edits, keyed by `db.table`.
    #[serde(default)]
    pub tables: BTreeMap<String, TableOptions>,
    /// The tables of online schema-change tools (`[objects.online_ddl]`).
    #[serde(default)]
    pub online_ddl: OnlineDdlConfig,
}

/// `[objects.online_ddl]`: how the tables of online schema-change tools
/// (gh-ost, pt-online-schema-change, Alibaba DMS lock-free DDL) are told
/// apart, so that they are followed instead of synced ([`crate::osc`]).
///
/// Each list holds regular expressions matched against the bare table
/// name. A table matching one is never synced (an include entry naming it
/// literally, `db.table`, overrides that).
#[derive(Clone, Debug, Deserialize, Eq, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OnlineDdlConfig {
    /// Follow the tools (default true); `false` treats their tables like
    /// any other.
    #[serde(default = "yes")]
    pub follow: bool,
    /// The tool's copy of the table with the new schema (gh-ost `_t_gho`,
    /// pt-osc `_t_new`, DMS `tp_<n>_ogt_t`).
    #[serde(default = "default_shadow_tables")]
    pub shadow_tables: Vec<String>,
    /// The tool's own bookkeeping tables (gh-ost `_t_ghc`/`_t_ghk`, DMS
    /// `tp_<n>_ogl_t`).
    #[serde(default = "default_helper_tables")]
    pub helper_tables: Vec<String>,
    /// Where the old table goes at the cut-over, and gh-ost's sentry
    /// (`_t_del`, `_t_old`, DMS `tp_<n>_del_t`).
    #[serde(default = "default_trash_tables")]
    pub trash_tables: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_shadow_tables() -> Vec<String> {
    vec!["^_.+_(gho|new)$".into(), "^tp_\\d+_ogt_.+$".into()]
}
fn default_helper_tables() -> Vec<String> {
    vec!["^_.+_(ghc|ghk)$".into(), "^tp_\\d+_ogl_.+$".into()]
}
fn default_trash_tables() -> Vec<String> {
    vec!["^_.+_(del|old)$".into(), "^tp_\\d+_del_.+$".into()]
}

impl Default for OnlineDdlConfig {
    fn default() -> Self {
        Self {
            follow: true,
            shadow_tables: default_shadow_tables(),
            helper_tables: default_helper_tables(),
            trash_tables: default_trash_tables(),
        }
    }
}

/// Edits of one table (`[objects.tables."db.table"]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableOptions {
    /// Destination stem (`name_base`, `name_log`).
    pub name: Option<String>,
    /// Sync only these columns (they must include the row key).
    pub columns: Option<Vec<String>>,
    /// Column renames: source name → destination name.
    #[serde(default)]
    pub rename_columns: BTreeMap<String, String>,
    /// Row filter: a SQL condition over the synced columns (source names);
    /// only rows for which it is true are synced, in both phases.
    pub filter: Option<String>,
}

/// One sync type.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum SyncType {
    /// Create `t_base` and `t_log`.
    Schema,
    /// Copy existing rows into `t_base`.
    Full,
    /// Stream changes into `t_log`.
    Incremental,
}

/// How.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The sync types to run.
    pub types: Vec<SyncType>,
    /// Where checkpoints live.
    pub state_dir: PathBuf,
    /// Names of the metadata columns.
    #[serde(default)]
    pub naming_rule: NamingRule,
    /// Time partition levels of `t_log`.
    #[serde(default)]
    pub log_partitions: Vec<TimeLevel>,
    /// The zone the `modifytime_*` partition values are read in (an IANA
    /// name or an offset; UTC when unset).
    #[serde(default)]
    pub partition_timezone: Option<String>,
    /// Rows per primary-key chunk in the full phase.
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: u64,
    /// The most bytes per primary-key chunk in the full phase (MB of
    /// 1,000,000 bytes, from the server's average row length): wide rows
    /// get fewer than `chunk_rows` per chunk, which bounds memory.
    #[serde(default = "default_chunk_mb")]
    pub chunk_mb: u64,
    /// How the full phase reads rows: `binary` (prepared statements, the
    /// default) or `text` (plain queries, for proxies without prepared
    /// statements).
    #[serde(default)]
    pub read_protocol: mysql_source::snapshot::ReadProtocol,
    /// Reader connections in the full phase.
    #[serde(default = "default_parallelism")]
    pub parallelism: usize,
    /// Change records per incremental commit.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Incremental: a batch with records commits at the latest this many
    /// milliseconds after its first record (bounds the lag on a quiet source).
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Incremental: the most change records one commit holds. A transaction
    /// with more is committed in parts of this size, at event boundaries, so
    /// memory stays bounded whatever the transaction's size.
    #[serde(default = "default_max_batch_records")]
    pub max_batch_records: usize,
    /// What the incremental phase does with DDL on synced tables.
    #[serde(default)]
    pub ddl: DdlConfig,
    /// What the incremental phase does with a change to a synced table it
    /// cannot turn into row changes (DML logged as a statement, row images
    /// that are not full).
    #[serde(default)]
    pub unsupported_events: UnsupportedEvents,
}

/// What the incremental phase does with an event that changes a synced
/// table but carries no whole row changes: DML a session logged in
/// `STATEMENT` or `MIXED` format (`INSERT`, `UPDATE`, `DELETE`, `LOAD DATA`,
/// `CREATE TABLE … SELECT`, a stored function call, …), or a rows event
/// whose images lack columns (a session's `binlog_row_image = MINIMAL` or
/// `NOBLOB`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Eq, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsupportedEvents {
    /// Stop the task at the event with a definite error; everything before
    /// its transaction is committed and the checkpoint stays there, so the
    /// next run stops at it again until the policy is changed.
    #[default]
    Stop,
    /// Skip the event: its change is not in the destination. Each one is
    /// logged at WARN with its position and counted
    /// (`sync_unsupported_events_skipped_total`, `status`).
    Skip,
}

impl UnsupportedEvents {
    /// The word the task file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Skip => "skip",
        }
    }
}

/// What the incremental phase does with one kind of DDL statement.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DdlAction {
    /// Change the destination the same way (only `add_column`).
    Apply,
    /// Leave the destination as it is and go on (logged); the task still
    /// follows the source's new schema, so later rows decode right.
    Ignore,
    /// Stop the task at the statement, everything before it committed.
    Stop,
}

impl DdlAction {
    /// The word the task file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Ignore => "ignore",
            Self::Stop => "stop",
        }
    }
}

/// The kinds of DDL a policy distinguishes (one key of `[sync.ddl]` each).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum DdlKind {
    /// `ALTER TABLE … ADD [COLUMN]`.
    AddColumn,
    /// `ALTER TABLE … DROP [COLUMN]` of a synced column.
    DropColumn,
    /// `RENAME COLUMN`, or `CHANGE` to a new name.
    RenameColumn,
    /// `MODIFY` / `CHANGE` that changes a synced column's destination type.
    ModifyColumn,
    /// `RENAME TABLE`, `ALTER TABLE … RENAME TO`.
    RenameTable,
    /// `DROP TABLE`, `DROP DATABASE`, `CREATE OR REPLACE TABLE`.
    DropTable,
    /// `TRUNCATE TABLE`, and partition or tablespace operations that remove
    /// rows without row events (`DROP`/`TRUNCATE`/`EXCHANGE PARTITION`, …).
    TruncateTable,
    /// A change of the row key (`ADD`/`DROP PRIMARY KEY`, the unique key a
    /// table without a primary key is keyed by).
    RowKey,
    /// `CREATE TABLE` of a table the include patterns select.
    CreateTable,
    /// Anything else that alters a synced table and is not understood.
    Other,
}

impl DdlKind {
    /// The key in `[sync.ddl]`.
    pub fn key(self) -> &'static str {
        match self {
            Self::AddColumn => "add_column",
            Self::DropColumn => "drop_column",
            Self::RenameColumn => "rename_column",
            Self::ModifyColumn => "modify_column",
            Self::RenameTable => "rename_table",
            Self::DropTable => "drop_table",
            Self::TruncateTable => "truncate_table",
            Self::RowKey => "row_key",
            Self::CreateTable => "create_table",
            Self::Other => "other",
        }
    }
}

/// `[sync.ddl]` (or `ddl = { ... }` in `[sync]`): the DDL policy.
///
/// `add_column` and `create_table` may be `apply` (their default), `ignore`
/// or `stop`; every other key `ignore` or `stop`. The keys `drop_column` …
/// `row_key` default to `other`, which defaults to `stop`.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DdlConfig {
    /// `ADD COLUMN`.
    #[serde(default = "action_apply")]
    pub add_column: DdlAction,
    /// `CREATE TABLE` matching the include patterns (`apply`: the task
    /// syncs the new table from its creation on).
    #[serde(default = "action_apply")]
    pub create_table: DdlAction,
    /// Every kind below that is not set, and DDL the task does not understand.
    #[serde(default = "action_stop")]
    pub other: DdlAction,
    /// `DROP COLUMN`.
    #[serde(default)]
    pub drop_column: Option<DdlAction>,
    /// `RENAME COLUMN`, `CHANGE` to a new name.
    #[serde(default)]
    pub rename_column: Option<DdlAction>,
    /// `MODIFY` / `CHANGE` of a column's destination type.
    #[serde(default)]
    pub modify_column: Option<DdlAction>,
    /// `RENAME TABLE`.
    #[serde(default)]
    pub rename_table: Option<DdlAction>,
    /// `DROP TABLE`.
    #[serde(default)]
    pub drop_table: Option<DdlAction>,
    /// `TRUNCATE TABLE` and kin.
    #[serde(default)]
    pub truncate_table: Option<DdlAction>,
    /// Row key changes.
    #[serde(default)]
    pub row_key: Option<DdlAction>,
    /// What the destination shows, in a column added with a default, for
    /// the rows the `ALTER` filled without logging them.
    #[serde(default)]
    pub rewritten_rows: RewrittenRows,
}

/// `[sync.ddl] rewritten_rows`: an `ALTER TABLE … ADD COLUMN c … DEFAULT v`
/// gives every existing row `v` without a row in the binlog, so the rows
/// last changed before it hold NULL in `c` in `t_base`/`t_log`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Eq, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum RewrittenRows {
    /// They stay NULL there; `verify` counts them as equal and says so.
    #[default]
    Null,
    /// `merge`, `merge-sql` and `verify` fill the constant default in for
    /// them (a default that is an expression, like `CURRENT_TIMESTAMP`,
    /// stays NULL: its value is not known).
    Default,
    /// The table needs a new baseline generation: `status` says so until
    /// `sync-cli resnapshot` has made one read after the `ALTER`.
    Resnapshot,
}

fn action_apply() -> DdlAction {
    DdlAction::Apply
}
fn action_stop() -> DdlAction {
    DdlAction::Stop
}

impl Default for DdlConfig {
    fn default() -> Self {
        Self {
            add_column: DdlAction::Apply,
            create_table: DdlAction::Apply,
            other: DdlAction::Stop,
            drop_column: None,
            rename_column: None,
            modify_column: None,
            rename_table: None,
            drop_table: None,
            truncate_table: None,
            row_key: None,
            rewritten_rows: RewrittenRows::Null,
        }
    }
}

impl DdlConfig {
    /// The action for a kind, and the key that decided it (`other` for an
    /// unset key).
    pub fn action(&self, kind: DdlKind) -> (DdlAction, DdlKind) {
        let specific = match kind {
            DdlKind::AddColumn => Some(self.add_column),
            DdlKind::CreateTable => Some(self.create_table),
            DdlKind::Other => Some(self.other),
            DdlKind::DropColumn => self.drop_column,
            DdlKind::RenameColumn => self.rename_column,
            DdlKind::ModifyColumn => self.modify_column,
            DdlKind::RenameTable => self.rename_table,
            DdlKind::DropTable => self.drop_table,
            DdlKind::TruncateTable => self.truncate_table,
            DdlKind::RowKey => self.row_key,
        };
        match specific {
            Some(a) => (a, kind),
            None => (self.other, DdlKind::Other),
        }
    }

    /// Keys set to an action they cannot take (only `add_column` and
    /// `create_table` apply).
    pub fn refused(&self) -> Option<DdlKind> {
        [
            (DdlKind::Other, Some(self.other)),
            (DdlKind::DropColumn, self.drop_column),
            (DdlKind::RenameColumn, self.rename_column),
            (DdlKind::ModifyColumn, self.modify_column),
            (DdlKind::RenameTable, self.rename_table),
            (DdlKind::DropTable, self.drop_table),
            (DdlKind::TruncateTable, self.truncate_table),
            (DdlKind::RowKey, self.row_key),
        ]
        .into_iter()
        .find(|(_, a)| *a == Some(DdlAction::Apply))
        .map(|(k, _)| k)
    }
}

fn default_server_id() -> u32 {
    5501
}
fn default_chunk_rows() -> u64 {
    50_000
}
fn default_chunk_mb() -> u64 {
    16
}
fn default_parallelism() -> usize {
    2
}
fn default_flush_interval_ms() -> u64 {
    1_000
}
fn default_batch_rows() -> usize {
    20_000
}
fn default_max_batch_records() -> usize {
    200_000
}

impl SyncConfig {
    /// The selected phases.
    pub fn selected(&self) -> SelectedPhases {
        SelectedPhases {
            schema: self.types.contains(&SyncType::Schema),
            full: self.types.contains(&SyncType::Full),
            incremental: self.types.contains(&SyncType::Incremental),
        }
    }
}

impl ObjectsConfig {
    /// Whether `db.table` is selected.
    pub fn selects(&self, db: &str, table: &str) -> bool {
        let name = format!("{db}.{table}");
        self.include.iter().any(|p| glob(p, &name)) && !self.exclude.iter().any(|p| glob(p, &name))
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_file_parses_with_defaults_and_patterns_select() {
        let cfg: TaskConfig = toml::from_str(
            r#"
            [source]
            url = "mysql://root@127.0.0.1:3307"
            [destination]
            kind = "local"
            path = "./warehouse"
            [objects]
            include = ["shop.*"]
            exclude = ["shop.tmp_*"]
            [sync]
            types = ["schema", "full", "incremental"]
            state_dir = "./state"
            log_partitions = ["day", "year"]
            "#,
        )
        .expect("parse");
        assert_eq!(cfg.sync.naming_rule, NamingRule::New);
        assert_eq!(cfg.sync.chunk_rows, 50_000);
        assert_eq!(cfg.sync.chunk_mb, 16);
        assert_eq!(
            cfg.sync.read_protocol,
            mysql_source::snapshot::ReadProtocol::Binary
        );
        assert!(cfg.sync.selected().full);
        assert!(cfg.objects.selects("shop", "orders"));
        assert!(!cfg.objects.selects("shop", "tmp_x"));
        assert!(!cfg.objects.selects("shopx", "orders"));
        assert!(glob("*.*", "a.b") && glob("a*c", "abbc") && !glob("a*c", "abcd"));
    }

    #[test]
    fn maxcompute_destination_parses_and_names_missing_credentials() {
        let cfg: TaskConfig = toml::from_str(
            r#"
            [source]
            url = "mysql://root@127.0.0.1:3307"
            [destination]
            kind = "maxcompute"
            endpoint = "http://127.0.0.1:9/api"
            project = "p"
            access_id_env = "SYNC_CORE_TEST_UNSET_ID"
            access_key_env = "SYNC_CORE_TEST_UNSET_KEY"
            [objects]
            include = ["shop.*"]
            [sync]
            types = ["schema"]
            state_dir = "./state"
            "#,
        )
        .expect("parse");
        let DestinationConfig::Maxcompute(mc) = &cfg.destination else {
            panic!("{:?}", cfg.destination)
        };
        assert!(mc.tunnel_endpoint.is_none());
        let err = mc.client().expect_err("no credentials").to_string();
        assert!(
            err.contains("access_id_env") && err.contains("SYNC_CORE_TEST_UNSET_ID"),
            "{err}"
        );
        let typo = toml::from_str::<TaskConfig>(
            "[source]\nurl = \"mysql://h\"\n[destination]\nkind = \"maxcompute\"\nendpoint = \"http://h/api\"\nproject = \"p\"\nacess_key_env = \"K\"\n",
        )
        .expect_err("typo");
        assert!(typo.to_string().contains("acess_key_env"), "{typo}");
    }

    #[test]
    fn plain_http_maxcompute_off_this_machine_needs_allow_insecure_http() {
        // PATH is set wherever tests run: it stands in for both credentials.
        let file = |endpoint: &str, extra: &str| {
            format!(
                "[source]\nurl = \"mysql://h\"\n[destination]\nkind = \"maxcompute\"\n\
                 endpoint = \"{endpoint}\"\nproject = \"p\"\naccess_id_env = \"PATH\"\n\
                 access_key_env = \"PATH\"\n{extra}[objects]\ninclude = [\"a.*\"]\n\
                 [sync]\ntypes = [\"schema\"]\nstate_dir = \"s\"\n"
            )
        };
        let client = |text: String| {
            let cfg: TaskConfig = toml::from_str(&text).expect("parse");
            let DestinationConfig::Maxcompute(mc) = cfg.destination else {
                panic!("not maxcompute")
            };
            mc.client()
        };
        let err = client(file("http://10.1.2.3/api", ""))
            .expect_err("plain HTTP off this machine")
            .to_string();
        assert!(err.contains("allow_insecure_http"), "{err}");
        assert!(client(file("http://10.1.2.3/api", "allow_insecure_http = true\n")).is_ok());
        assert!(client(file("http://127.0.0.1:9/api", "")).is_ok());
        assert!(client(file("https://10.1.2.3/api", "")).is_ok());
    }

    #[test]
    fn oversized_values_defaults_to_stop_and_names_its_choices() {
        let file = |extra: &str| {
            format!(
                "[source]\nurl = \"mysql://h\"\n[destination]\nkind = \"maxcompute\"\n\
                 endpoint = \"http://127.0.0.1:9/api\"\nproject = \"p\"\n{extra}\
                 [objects]\ninclude = [\"a.*\"]\n[sync]\ntypes = [\"schema\"]\nstate_dir = \"s\"\n"
            )
        };
        let policy = |text: String| match toml::from_str::<TaskConfig>(&text).map(|c| c.destination)
        {
            Ok(DestinationConfig::Maxcompute(mc)) => Ok(mc.oversized_values),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.to_string()),
        };
        use crate::oversized::OversizedPolicy;
        assert_eq!(policy(file("")), Ok(OversizedPolicy::Stop));
        assert_eq!(
            policy(file("oversized_values = \"truncate\"\n")),
            Ok(OversizedPolicy::Truncate)
        );
        let err = policy(file("oversized_values = \"nul\"\n")).expect_err("unknown");
        assert!(err.contains("nul") && err.contains("truncate"), "{err}");
    }

    #[test]
    fn the_monitor_listens_on_an_address_or_a_host_name() {
        let listen = |value: &str| {
            let text = format!(
                "[source]\nurl = \"mysql://h\"\n[destination]\nkind = \"local\"\npath = \"w\"\n\
                 [objects]\ninclude = [\"a.*\"]\n[sync]\ntypes = [\"schema\"]\nstate_dir = \"s\"\n\
                 [monitor]\nlisten = \"{value}\"\n"
            );
            toml::from_str::<TaskConfig>(&text)
                .map(|c| c.monitor.listen)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            listen("127.0.0.1:9108"),
            Ok(Some("127.0.0.1:9108".parse().expect("addr")))
        );
        let local = listen("localhost:9108").expect("a host name resolves");
        assert!(local.is_some_and(|a| a.ip().is_loopback() && a.port() == 9108));
        let err = listen("localhost").expect_err("no port");
        assert!(err.contains("is not host:port"), "{err}");
    }

    #[test]
    fn unknown_key_is_an_error_naming_it_and_its_line() {
        let err = toml::from_str::<TaskConfig>(
            "[source]\nurl = \"mysql://h\"\nservr_id = 3\n[destination]\nkind = \"local\"\npath = \"w\"\n",
        )
        .expect_err("typo");
        let msg = err.to_string();
        assert!(msg.contains("servr_id") && msg.contains("line 3"), "{msg}");
    }
}
