//! The MaxCompute REST control plane: a signed HTTP client, SQL instances,
//! table metadata and tunnel endpoint discovery.
//!
//! # Requests
//!
//! Every request carries `Date`, `x-odps-user-agent` and the query parameter
//! `curr_project`, and is signed as [`crate::auth`] describes, against the
//! path relative to the endpoint (so `/api` is not signed). Responses outside
//! 2xx become [`ServerError`]s with MaxCompute's code and message.
//!
//! # SQL
//!
//! [`Client::run_sql`] submits an `SQLTask` instance with the MaxCompute 2.0
//! type system switched on, polls it until it terminates and returns the task
//! result text, or [`ErrorKind::Sql`] with the server's error text.
//!
//! # Example
//!
//! ```no_run
//! use odps_tunnel::auth::Credentials;
//! use odps_tunnel::rest::Client;
//!
//! # async fn demo() -> odps_tunnel::Result<()> {
//! let client = Client::new("http://127.0.0.1:8080/api", "my_project", Credentials::new("id", "key"))?;
//! client.run_sql("CREATE TABLE IF NOT EXISTS t (id BIGINT) PARTITIONED BY (pt STRING);").await?;
//! let table = client.table("t").await?;
//! assert_eq!(table.schema.columns[0].name, "id");
//! # Ok(())
//! # }
//! ```

pub mod http;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use self::http::{Endpoint, HttpClient, Response};
use crate::auth::{self, Credentials};
use crate::error::{Error, ErrorKind, Result, ServerError};
use crate::session::{PartitionSpec, REQUEST_ID_HEADER, TableSchema, USER_AGENT_HEADER};
use crate::xml::{self, Element};

/// Characters left as they are in query values and path segments.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Which base URL a request goes to.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Plane {
    /// The REST API (service endpoint).
    Service,
    /// The Tunnel (discovered or configured).
    Tunnel,
}

/// Settings of a [`Client`].
#[derive(Clone)]
pub struct ClientOptions {
    /// Timeout of one HTTP exchange.
    pub request_timeout: Duration,
    /// How long [`Client::run_sql`] waits for an instance.
    pub sql_timeout: Duration,
    /// Tries of an idempotent control-plane request (GET) on retryable errors.
    pub max_attempts: u32,
    /// Value of `User-Agent` and `x-odps-user-agent`.
    pub user_agent: String,
    /// Tunnel endpoint; discovered from the service when `None`.
    pub tunnel_endpoint: Option<String>,
    /// Quota name passed to tunnel discovery and sessions.
    pub quota_name: Option<String>,
    /// Extra CA certificates (PEM) trusted for HTTPS besides the webpki
    /// roots, for private endpoints.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// Accept plain `http://` endpoints (service, configured or discovered
    /// tunnel) whose host is not loopback. Off by default: MaxCompute's
    /// signature does not cover the body, so without TLS anyone on the
    /// network path could change the data unnoticed. Loopback hosts
    /// (`127.0.0.0/8`, `::1`, `localhost`) are always accepted.
    pub allow_insecure_http: bool,
    /// Largest response body read, in bytes (256 MiB by default): a larger
    /// one fails with [`ErrorKind::ResponseTooLarge`] instead of being
    /// buffered. Size tunnel reads (`count` rows) to stay under it.
    pub max_response_bytes: usize,
}

/// Default of [`ClientOptions::max_response_bytes`]: 256 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 << 20;

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("request_timeout", &self.request_timeout)
            .field("sql_timeout", &self.sql_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("user_agent", &self.user_agent)
            .field("tunnel_endpoint", &self.tunnel_endpoint)
            .field("quota_name", &self.quota_name)
            .field(
                "extra_roots_pem",
                &self
                    .extra_roots_pem
                    .as_ref()
                    .map(|pem| format!("{} bytes", pem.len())),
            )
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(300),
            sql_timeout: Duration::from_secs(3600),
            max_attempts: 4,
            user_agent: format!("odps-tunnel-rs/{}", env!("CARGO_PKG_VERSION")),
            tunnel_endpoint: None,
            quota_name: None,
            extra_roots_pem: None,
            allow_insecure_http: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

struct Inner {
    http: HttpClient,
    service: Endpoint,
    tunnel: Mutex<Option<Endpoint>>,
    project: String,
    credentials: Credentials,
    options: ClientOptions,
}

/// A MaxCompute client for one project. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.inner.service.to_string())
            .field("project", &self.inner.project)
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

/// A table's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Owner, when the server sent it.
    pub owner: Option<String>,
    /// Schema: data columns and partition keys.
    pub schema: TableSchema,
}

impl TableInfo {
    /// The schema's `Reserved` properties (a JSON object the service sends
    /// as a string), e.g. `Transactional`, `PrimaryKey`.
    pub fn reserved(&self) -> serde_json::Map<String, serde_json::Value> {
        match self.schema.extra.get("Reserved") {
            Some(serde_json::Value::String(text)) => serde_json::from_str(text).unwrap_or_default(),
            Some(serde_json::Value::Object(map)) => map.clone(),
            _ => serde_json::Map::new(),
        }
    }

    /// Whether the table is transactional (`Reserved.Transactional`).
    pub fn is_transactional(&self) -> bool {
        self.reserved()
            .get("Transactional")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The primary key columns (`Reserved.PrimaryKey`), empty when none:
    /// a transactional table with a primary key is a Delta table, written
    /// through upsert sessions.
    pub fn primary_key(&self) -> Vec<String> {
        match self.reserved().get("PrimaryKey") {
            Some(serde_json::Value::Array(keys)) => keys
                .iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(k)) if !k.is_empty() => {
                k.split(',').map(|s| s.trim().to_owned()).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Status of an instance and its tasks.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct InstanceStatus {
    /// `Running`, `Suspended` or `Terminated`.
    pub status: String,
    /// `(task name, task status)` pairs.
    pub tasks: Vec<(String, String)>,
}

impl InstanceStatus {
    /// Whether the instance has ended.
    pub fn is_terminated(&self) -> bool {
        self.status.eq_ignore_ascii_case("terminated")
    }
}

/// One task's result.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct TaskResult {
    /// Task name.
    pub name: String,
    /// Task status (`Success`, `Failed`, ...).
    pub status: String,
    /// Result text, base64-decoded when the server said so.
    pub result: String,
}

impl Client {
    /// A client for `project` at the service endpoint (e.g.
    /// `https://service.cn-hangzhou.maxcompute.aliyun.com/api`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for a malformed endpoint.
    pub fn new(endpoint: &str, project: &str, credentials: Credentials) -> Result<Self> {
        Self::with_options(endpoint, project, credentials, ClientOptions::default())
    }

    /// A client with explicit options.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for a malformed endpoint, and
    /// [`ErrorKind::InsecureEndpoint`] for an `http://` endpoint or tunnel
    /// endpoint off this machine without
    /// [`allow_insecure_http`](ClientOptions::allow_insecure_http).
    pub fn with_options(
        endpoint: &str,
        project: &str,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Self> {
        let service: Endpoint = endpoint.parse()?;
        service.check_transport("endpoint", options.allow_insecure_http)?;
        let tunnel = options
            .tunnel_endpoint
            .as_deref()
            .map(str::parse::<Endpoint>)
            .transpose()?;
        if let Some(tunnel) = &tunnel {
            tunnel.check_transport("tunnel_endpoint", options.allow_insecure_http)?;
        }
        if project.is_empty() {
            return Err(Error::invalid("project name is empty"));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                http: HttpClient::new(
                    options.request_timeout,
                    options.max_response_bytes,
                    options.extra_roots_pem.clone(),
                ),
                service,
                tunnel: Mutex::new(tunnel),
                project: project.to_owned(),
                credentials,
                options,
            }),
        })
    }

    /// The project name.
    pub fn project(&self) -> &str {
        &self.inner.project
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// `/projects/{project}`, percent-encoded.
    pub(crate) fn project_path(&self) -> String {
        format!("/projects/{}", encode_component(&self.inner.project))
    }

    /// `/projects/{project}/tables/{table}`, percent-encoded.
    pub(crate) fn table_path(&self, table: &str) -> String {
        format!("{}/tables/{}", self.project_path(), encode_component(table))
    }

    /// Sends one signed request and turns a non-2xx answer into an error.
    ///
    /// `params` are sent in order; a `None` value is a bare action flag
    /// (`?data`). `curr_project` is added. `body` is the content type and
    /// bytes, or `None` for an empty body.
    pub(crate) async fn request(
        &self,
        plane: Plane,
        method: Method,
        path: &str,
        params: &[(&str, Option<&str>)],
        headers: &[(&str, &str)],
        body: Option<(&str, Bytes)>,
    ) -> Result<Response> {
        let (content_type, body) = match body {
            Some((ct, b)) => (Some(ct), b),
            None => (None, Bytes::new()),
        };
        let endpoint = match plane {
            Plane::Service => self.inner.service.clone(),
            // Boxed: discovery itself sends a (service) request.
            Plane::Tunnel => Box::pin(self.tunnel_endpoint()).await?,
        };
        let mut query = String::new();
        let mut push = |k: &str, v: Option<&str>| {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&encode_component(k));
            if let Some(v) = v {
                query.push('=');
                query.push_str(&encode_component(v));
            }
        };
        for (k, v) in params {
            push(k, *v);
        }
        if !params.iter().any(|(k, _)| *k == "curr_project") {
            push("curr_project", Some(&self.inner.project));
        }
        let date = auth::http_date(SystemTime::now());
        let ua = self.inner.options.user_agent.as_str();
        let mut signed: Vec<(&str, &str)> = vec![("Date", &date), (USER_AGENT_HEADER, ua)];
        if let Some(ct) = content_type {
            signed.push(("Content-Type", ct));
        }
        signed.extend_from_slice(headers);
        let canonical =
            auth::canonical_string(method.as_str(), path, Some(&query), signed.iter().copied());
        let authorization = self.inner.credentials.authorization(&canonical);

        let uri = format!("{}{path}?{query}", endpoint.base_path());
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header("Host", endpoint.authority())
            .header("User-Agent", ua)
            .header("Content-Length", body.len().to_string())
            .header(auth::AUTHORIZATION, authorization);
        for (k, v) in &signed {
            builder = builder.header(*k, *v);
        }
        if let Some(token) = self.inner.credentials.sts_token() {
            builder = builder.header(auth::STS_TOKEN_HEADER, token.expose());
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| Error::invalid(format!("request {method} {uri}: {e}")))?;
        tracing::debug!(%method, %endpoint, path, query = %query, "odps request");
        let response = self.inner.http.send(&endpoint, request).await?;
        if response.status.is_success() {
            return Ok(response);
        }
        let request_id = response
            .headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok());
        let error = ServerError::from_body(response.status.as_u16(), &response.body, request_id);
        tracing::debug!(%method, path, code = %error.code, status = error.status, "odps error");
        Err(error.into())
    }

    /// Like [`request`](Self::request) for GETs, retried on retryable errors.
    pub(crate) async fn get(
        &self,
        plane: Plane,
        path: &str,
        params: &[(&str, Option<&str>)],
        headers: &[(&str, &str)],
    ) -> Result<Response> {
        let mut attempt = 1;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self
                .request(plane, Method::GET, path, params, headers, None)
                .await
            {
                Err(e) if e.is_retryable() && attempt < self.inner.options.max_attempts => {
                    tracing::warn!(error = %e, attempt, "retrying GET {path}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The tunnel endpoint: configured, or asked of the service once
    /// (`GET /projects/{p}/tunnel?service`) and cached.
    ///
    /// # Errors
    ///
    /// Server and transport errors of the discovery request, and
    /// [`ErrorKind::InsecureEndpoint`] when the service names a plain-HTTP
    /// tunnel off this machine without
    /// [`allow_insecure_http`](ClientOptions::allow_insecure_http).
    pub async fn tunnel_endpoint(&self) -> Result<Endpoint> {
        if let Some(ep) = self.inner.tunnel.lock().ok().and_then(|t| t.clone()) {
            return Ok(ep);
        }
        let path = format!("{}/tunnel", self.project_path());
        let mut params = vec![("service", None)];
        if let Some(q) = &self.inner.options.quota_name {
            params.push(("quotaName", Some(q.as_str())));
        }
        let response = self.get(Plane::Service, &path, &params, &[]).await?;
        let text = String::from_utf8_lossy(&response.body);
        let host = text.trim();
        if host.is_empty() {
            return Err(Error::protocol("tunnel discovery returned an empty body"));
        }
        // The body is `host[:port]`; some servers send a full URL.
        let ep = if host.starts_with("http://") || host.starts_with("https://") {
            host.parse()?
        } else {
            self.inner.service.with_authority(host)?
        };
        ep.check_transport(
            "tunnel endpoint returned by the service",
            self.inner.options.allow_insecure_http,
        )?;
        if let Ok(mut t) = self.inner.tunnel.lock() {
            *t = Some(ep.clone());
        }
        Ok(ep)
    }

    /// Submits SQL as an instance and returns its id.
    ///
    /// # Errors
    ///
    /// Server errors (e.g. a syntax error found at submit time) and transport errors.
    pub async fn create_instance(&self, sql: &str) -> Result<String> {
        let mut sql = sql.trim().to_owned();
        if !sql.ends_with(';') {
            sql.push(';');
        }
        let settings =
            r#"{"odps.sql.type.system.odps2": "true", "odps.sql.decimal.odps2": "true"}"#;
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Instance><Job><Priority>9</Priority><Tasks><SQL>\
             <Name>AnonymousSQLTask</Name><Config>\
             <Property><Name>settings</Name><Value>{}</Value></Property>\
             <Property><Name>uuid</Name><Value>{}</Value></Property>\
             </Config><Query>{}</Query></SQL></Tasks><DAG><RunMode>Sequence</RunMode></DAG></Job></Instance>",
            xml::escape(settings),
            random_uuid(),
            xml::cdata(&sql)
        );
        let path = format!("{}/instances", self.project_path());
        let response = self
            .request(
                Plane::Service,
                Method::POST,
                &path,
                &[],
                &[],
                Some(("application/xml", Bytes::from(body))),
            )
            .await?;
        let location = response
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::protocol("instance created without a Location header"))?;
        let id = location
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        if id.is_empty() {
            return Err(Error::protocol(format!(
                "no instance id in Location {location:?}"
            )));
        }
        Ok(id.to_owned())
    }

    /// The status of an instance and its tasks.
    ///
    /// # Errors
    ///
    /// Server, transport and malformed-XML errors.
    pub async fn instance_status(&self, id: &str) -> Result<InstanceStatus> {
        let path = format!("{}/instances/{}", self.project_path(), encode_component(id));
        let response = self
            .get(Plane::Service, &path, &[("taskstatus", None)], &[])
            .await?;
        let root = parse_xml(&response.body)?;
        let status = root
            .child_text("Status")
            .ok_or_else(|| Error::protocol("instance status XML without <Status>"))?
            .trim()
            .to_owned();
        let tasks = root
            .child("Tasks")
            .map(|t| {
                t.children_named("Task")
                    .map(|task| {
                        (
                            task.child_text("Name")
                                .unwrap_or_default()
                                .trim()
                                .to_owned(),
                            task.child_text("Status")
                                .unwrap_or_default()
                                .trim()
                                .to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(InstanceStatus { status, tasks })
    }

    /// The results of an instance's tasks.
    ///
    /// # Errors
    ///
    /// Server, transport and malformed-XML errors.
    pub async fn instance_results(&self, id: &str) -> Result<Vec<TaskResult>> {
        let path = format!("{}/instances/{}", self.project_path(), encode_component(id));
        let response = self
            .get(Plane::Service, &path, &[("result", None)], &[])
            .await?;
        let root = parse_xml(&response.body)?;
        let Some(tasks) = root.child("Tasks") else {
            return Ok(Vec::new());
        };
        tasks
            .children_named("Task")
            .map(|task| {
                let result = task.child("Result");
                let raw = result.map(|r| r.text.as_str()).unwrap_or_default();
                let text = if result.and_then(|r| r.attribute("Transform")) == Some("Base64") {
                    let bytes = BASE64
                        .decode(raw.trim())
                        .map_err(|e| Error::protocol(format!("task result is not base64: {e}")))?;
                    String::from_utf8_lossy(&bytes).into_owned()
                } else {
                    raw.to_owned()
                };
                Ok(TaskResult {
                    name: task
                        .child_text("Name")
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                    status: task
                        .child_text("Status")
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                    result: text,
                })
            })
            .collect()
    }

    /// Polls an instance until it terminates and returns its first task's
    /// result text.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Sql`] when a task did not succeed, [`ErrorKind::Timeout`]
    /// after [`ClientOptions::sql_timeout`], and request errors.
    pub async fn wait_instance(&self, id: &str) -> Result<String> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let status = self.instance_status(id).await?;
            if status.is_terminated() {
                break;
            }
            if start.elapsed() > self.inner.options.sql_timeout {
                return Err(ErrorKind::Timeout(format!(
                    "SQL instance {id} still {}",
                    status.status
                ))
                .into());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(Duration::from_secs(2));
        }
        let results = self.instance_results(id).await?;
        if let Some(failed) = results
            .iter()
            .find(|t| !t.status.eq_ignore_ascii_case("success"))
        {
            return Err(ErrorKind::Sql {
                instance_id: id.to_owned(),
                message: if failed.result.is_empty() {
                    format!("task {} ended {}", failed.name, failed.status)
                } else {
                    failed.result.clone()
                },
            }
            .into());
        }
        Ok(results
            .into_iter()
            .next()
            .map(|t| t.result)
            .unwrap_or_default())
    }

    /// Runs SQL to completion and returns the result text (empty for DDL).
    ///
    /// # Errors
    ///
    /// As [`create_instance`](Self::create_instance) and [`wait_instance`](Self::wait_instance).
    pub async fn run_sql(&self, sql: &str) -> Result<String> {
        let id = self.create_instance(sql).await?;
        tracing::debug!(instance = %id, "SQL submitted");
        self.wait_instance(&id).await
    }

    /// The project's properties (`GET /projects/{p}`: `<Properties>`), e.g.
    /// `odps.sql.timezone`, as name–value pairs in the order the service
    /// sends them.
    ///
    /// # Errors
    ///
    /// Request and parse errors.
    pub async fn project_properties(&self) -> Result<Vec<(String, String)>> {
        let response = self
            .get(Plane::Service, &self.project_path(), &[], &[])
            .await?;
        let root = parse_xml(&response.body)?;
        Ok(root
            .child("Properties")
            .map(|props| {
                props
                    .children_named("Property")
                    .filter_map(|p| {
                        Some((
                            p.child_text("Name")?.trim().to_owned(),
                            p.child_text("Value").unwrap_or("").trim().to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// A table's metadata and schema.
    ///
    /// # Errors
    ///
    /// A server error for which [`Error::is_not_found`] holds when the table
    /// does not exist; request and parse errors.
    pub async fn table(&self, table: &str) -> Result<TableInfo> {
        let response = self
            .get(Plane::Service, &self.table_path(table), &[], &[])
            .await?;
        let root = parse_xml(&response.body)?;
        let schema_text = root
            .child_text("Schema")
            .ok_or_else(|| Error::protocol("table XML without <Schema>"))?;
        let schema: TableSchema = serde_json::from_str(schema_text.trim())
            .map_err(|e| Error::protocol(format!("table schema JSON: {e}")))?;
        Ok(TableInfo {
            name: root.child_text("Name").unwrap_or(table).trim().to_owned(),
            owner: root.child_text("Owner").map(|s| s.trim().to_owned()),
            schema,
        })
    }

    /// Whether a table exists.
    ///
    /// # Errors
    ///
    /// Request errors other than "not found".
    pub async fn table_exists(&self, table: &str) -> Result<bool> {
        match self.table(table).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a partition unless it exists (`ALTER TABLE t ADD IF NOT
    /// EXISTS PARTITION (k='v', …)`). Upsert sessions need their partition
    /// to exist (they have no `create_partition`); it is one SQL instance,
    /// so call it once per new partition, not per session.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for an empty spec; as [`run_sql`](Self::run_sql).
    pub async fn add_partition(&self, table: &str, partition: &PartitionSpec) -> Result<()> {
        if partition.is_empty() {
            return Err(Error::invalid(format!(
                "add_partition on {table}: empty partition spec"
            )));
        }
        let literal = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let pairs: Vec<String> = partition
            .pairs
            .iter()
            .map(|(k, v)| format!("`{}`={}", k.replace('`', "``"), literal(v)))
            .collect();
        self.run_sql(&format!(
            "ALTER TABLE `{}` ADD IF NOT EXISTS PARTITION ({});",
            table.replace('`', "``"),
            pairs.join(", ")
        ))
        .await
        .map(drop)
    }

    /// A table's partitions (all pages).
    ///
    /// # Errors
    ///
    /// Request and parse errors.
    pub async fn partitions(&self, table: &str) -> Result<Vec<PartitionSpec>> {
        // The partition list is an action on the table resource.
        let path = self.table_path(table);
        let mut marker = String::new();
        let mut out = Vec::new();
        loop {
            let mut params = vec![("partitions", None), ("expectmarker", Some("true"))];
            if !marker.is_empty() {
                params.push(("marker", Some(marker.as_str())));
            }
            let response = self.get(Plane::Service, &path, &params, &[]).await?;
            let root = parse_xml(&response.body)?;
            for p in root.children_named("Partition") {
                out.push(PartitionSpec::new(p.children_named("Column").filter_map(
                    |c| {
                        Some((
                            c.attribute("Name")?.to_owned(),
                            c.attribute("Value")?.to_owned(),
                        ))
                    },
                )));
            }
            let next = root
                .child_text("Marker")
                .unwrap_or_default()
                .trim()
                .to_owned();
            if next.is_empty() || next == marker {
                return Ok(out);
            }
            marker = next;
        }
    }
}

fn parse_xml(body: &[u8]) -> Result<Element> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Error::protocol(format!("XML body is not UTF-8: {e}")))?;
    Element::parse(text).map_err(|e| Error::protocol(e.to_string()))
}

/// Percent-encodes a path segment or query component.
pub(crate) fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// A random-looking UUID v4 string (the instance's idempotency token).
fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str, tunnel: Option<&str>, allow: bool) -> Result<Client> {
        Client::with_options(
            endpoint,
            "p",
            Credentials::new("AK", "the-secret"),
            ClientOptions {
                tunnel_endpoint: tunnel.map(str::to_owned),
                allow_insecure_http: allow,
                ..ClientOptions::default()
            },
        )
    }

    #[test]
    fn plain_http_off_this_machine_needs_the_option() {
        let err = client("http://10.1.2.3/api", None, false).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::InsecureEndpoint {
                    which: "endpoint",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        assert!(client("http://10.1.2.3/api", None, true).is_ok());
        assert!(client("http://127.0.0.1:8080/api", None, false).is_ok());
        assert!(client("http://localhost:8080/api", None, false).is_ok());
        assert!(client("https://10.1.2.3/api", None, false).is_ok());
        // The tunnel endpoint too.
        let err = client(
            "https://s.example.com/api",
            Some("http://dt.example.com"),
            false,
        )
        .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::InsecureEndpoint {
                    which: "tunnel_endpoint",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            client(
                "https://s.example.com/api",
                Some("http://dt.example.com"),
                true
            )
            .is_ok()
        );
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let c = client("http://127.0.0.1:1/api", None, false).unwrap();
        let shown = format!("{c:?} {:?}", c.options());
        assert!(!shown.contains("the-secret"), "{shown}");
        assert!(shown.contains("AK") && shown.contains("***"), "{shown}");
    }

    #[test]
    fn uuid_shape() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, random_uuid());
    }

    #[test]
    fn components_are_encoded_like_pyodps_expects() {
        assert_eq!(encode_component("pt=x,y='a b'"), "pt%3Dx%2Cy%3D%27a%20b%27");
        assert_eq!(encode_component("(0,10)"), "%280%2C10%29");
    }
}
