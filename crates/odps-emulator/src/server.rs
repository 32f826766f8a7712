//! HTTP front: checks the signature, routes `/api/...` to the REST API and
//! everything else to the Tunnel, and turns errors into MaxCompute's error
//! bodies (XML on the REST API, JSON on the Tunnel).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use crate::auth::{Credentials, SignedParts};
use crate::catalog::{self, Catalog, OWNER, TableMeta};
use crate::error::{OdpsError, xml_escape};
use crate::instances::{self, Instances};
use crate::request::TableRequest;
use crate::tunnel::{Format, Tunnel};

/// Path prefix of the REST API.
const API_PREFIX: &str = "/api";

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// Tables and partitions.
    pub catalog: Arc<Catalog>,
    /// Serializes metadata changes.
    pub meta_lock: Arc<Mutex<()>>,
    /// The account requests must be signed with.
    pub credentials: Credentials,
    /// Finished SQL instances.
    pub instances: Instances,
    /// Upload and download sessions.
    pub tunnel: Tunnel,
    /// Upsert sessions of primary-key Delta tables.
    pub upserts: crate::upsert::Upserts,
    /// `host:port` the Tunnel is reached at.
    pub tunnel_host: String,
    /// Largest request body in bytes, as received and once decompressed.
    pub max_body: usize,
    /// The projects' `odps.sql.timezone`.
    pub timezone: String,
    /// The projects' `odps.sql.type.system.odps2`: whether SQL may use the
    /// 2.0 types without setting it.
    pub odps2: bool,
}

/// A response before it becomes an HTTP response.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Bytes,
    location: Option<String>,
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            status: 200,
            content_type,
            body: body.into(),
            location: None,
        }
    }

    fn xml(body: String) -> Self {
        Self::ok("application/xml", body)
    }

    fn json(body: String) -> Self {
        Self::ok("application/json", body)
    }
}

/// Which side of the server a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plane {
    Rest,
    Tunnel,
}

/// Handles one request; never fails at the HTTP level.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let request_id = format!("{:032x}", catalog::now_nanos());
    let path = req.uri().path().to_owned();
    let (plane, local_path) = match path.strip_prefix(API_PREFIX) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => (Plane::Rest, rest.to_owned()),
        _ => (Plane::Tunnel, path.clone()),
    };
    let method = req.method().clone();
    tracing::debug!(%method, uri = %req.uri(), "request");
    let reply = match serve(&state, plane, &local_path, req).await {
        Ok(reply) => reply,
        Err(err) => {
            tracing::info!(%method, %path, code = %err.code, message = %err.message, "request failed");
            let (content_type, body) = match plane {
                Plane::Rest => ("application/xml", err.to_xml(&request_id)),
                Plane::Tunnel => ("application/json", err.to_json(&request_id)),
            };
            Reply {
                status: err.status,
                content_type,
                body: body.into(),
                location: None,
            }
        }
    };
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", reply.content_type)
        .header("x-odps-request-id", &request_id)
        .header(
            "date",
            odps_tunnel::auth::http_date(std::time::SystemTime::now()),
        );
    if let Some(location) = reply.location {
        builder = builder.header("location", location);
    }
    Ok(builder
        .body(Full::new(reply.body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

async fn serve(
    state: &AppState,
    plane: Plane,
    path: &str,
    req: Request<Incoming>,
) -> Result<Reply, OdpsError> {
    let method = req.method().clone();
    let query = req.uri().query().map(str::to_owned);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    state.credentials.verify(&SignedParts {
        method: method.as_str(),
        headers: headers.clone(),
        path,
        query: query.as_deref(),
    })?;
    crate::auth::check_date(&headers, catalog::now_secs())?;
    // A declared length over the cap is refused before anything is kept.
    let declared = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    let body = req.into_body();
    if declared.is_some_and(|len| len > state.max_body as u64) {
        drain(body, state.max_body).await;
        return Err(OdpsError::body_too_large(state.max_body));
    }
    let body = read_body(body, state.max_body, declared).await?;
    let encoding = headers
        .iter()
        .find(|(k, _)| k == "content-encoding")
        .map(|(_, v)| v.as_str());
    let body = decompress(encoding, body, state.max_body)?;
    let params = parse_query(query.as_deref().unwrap_or(""));
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match plane {
        Plane::Rest => rest(state, &method, &segments, &params, &body),
        Plane::Tunnel => tunnel(state, &method, &segments, &params, &body).await,
    }
}

/// The instance tunnel: a download session over a query's result.
fn instance_tunnel(
    state: &AppState,
    method: &Method,
    project: &str,
    instance_id: &str,
    segments: &[&str],
    params: &[(String, String)],
) -> Result<Reply, OdpsError> {
    let req = TableRequest {
        project,
        table: "",
        params,
    };
    let format = if has(params, "arrow") {
        Format::Arrow
    } else {
        Format::Protobuf
    };
    match (method, get(params, "downloadid")) {
        (&Method::POST, None) if has(params, "downloads") => {
            let instance = state.instances.get(project, instance_id)?;
            state
                .tunnel
                .create_instance_download(project, &instance)
                .map(Reply::json)
        }
        (&Method::GET, Some(id)) if has(params, "data") => state
            .tunnel
            .read(&req, id, format)
            .map(|b| Reply::ok("application/octet-stream", b)),
        (&Method::GET, Some(id)) => state.tunnel.download_status(&req, id).map(Reply::json),
        _ => Err(unknown(method, segments, params)),
    }
}

/// Reads a request body whole, refusing one over `limit` bytes (chunked
/// bodies have no declared length, so the count is kept while reading). A
/// declared length is allocated at once: blocks are megabytes, and growing
/// by doubling would copy each one about twice more.
async fn read_body<B>(mut body: B, limit: usize, declared: Option<u64>) -> Result<Bytes, OdpsError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let capacity = declared.map_or(0, |len| usize::try_from(len).unwrap_or(limit).min(limit));
    let mut out = BytesMut::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            OdpsError::invalid_argument(format!("reading the request body failed: {e}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.len() > limit - out.len() {
            drain(body, limit).await;
            return Err(OdpsError::body_too_large(limit));
        }
        out.extend_from_slice(&data);
    }
    Ok(out.freeze())
}

/// Reads and discards what is left of a refused body, so that the client,
/// still sending, gets the error response instead of a reset connection.
/// Gives up (and hyper closes the connection) after `budget` more bytes or
/// [`DRAIN_TIME`]; nothing read is kept.
async fn drain<B>(mut body: B, budget: usize)
where
    B: Body<Data = Bytes> + Unpin,
{
    let discard = async {
        let mut left = budget;
        while let Some(Ok(frame)) = body.frame().await {
            let Some(data) = frame.data_ref() else {
                continue;
            };
            let Some(rest) = left.checked_sub(data.len()) else {
                return;
            };
            left = rest;
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

/// How long a refused body is drained at most.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Undoes the whole-body compression the Tunnel allows on uploads. The
/// output is capped at `limit` bytes: a small body that inflates past it (a
/// compression bomb) is refused without being inflated further.
fn decompress(encoding: Option<&str>, body: Bytes, limit: usize) -> Result<Bytes, OdpsError> {
    use std::io::Read;
    let bad = |e: std::io::Error| {
        OdpsError::new(
            400,
            "MalformedDataStream",
            format!("ODPS-0420061: Malformed compressed body - {e}"),
        )
    };
    // Reads at most one byte more than the limit, so an over-long output
    // is told apart from one of exactly `limit` bytes.
    let inflate = |reader: &mut dyn Read| -> Result<Bytes, OdpsError> {
        let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
        reader
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(bad)?;
        if out.len() > limit {
            return Err(OdpsError::body_too_large(limit));
        }
        Ok(out.into())
    };
    match encoding.map(str::trim) {
        None | Some("" | "identity") => Ok(body),
        Some("deflate") => {
            tracing::debug!(compressed = body.len(), "inflating a deflate body");
            inflate(&mut flate2::read::ZlibDecoder::new(&body[..]))
        }
        Some("zstd") => {
            tracing::debug!(compressed = body.len(), "inflating a zstd body");
            let mut decoder = zstd::stream::read::Decoder::with_buffer(&body[..]).map_err(bad)?;
            inflate(&mut decoder)
        }
        Some(other) => Err(OdpsError::unsupported(format!(
            "Content-Encoding {other} (supported: deflate, zstd, or none)"
        ))),
    }
}

/// Query pairs in order, decoded (`+` is a space); a bare key has value "".
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Percent-decodes; with `plus_is_space`, `+` becomes a space (form style).
/// Invalid escapes stay as they are.
fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits make at most 0xFF.
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn has(params: &[(String, String)], key: &str) -> bool {
    params.iter().any(|(k, _)| k == key)
}

fn get<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `projects/{p}/tables/{t}` or `projects/{p}/schemas/{s}/tables/{t}` (only
/// the `default` schema exists).
fn table_path<'a>(segments: &[&'a str]) -> Option<(&'a str, &'a str)> {
    match segments {
        ["projects", p, "tables", t] => Some((p, t)),
        ["projects", p, "schemas", s, "tables", t] if s.eq_ignore_ascii_case("default") => {
            Some((p, t))
        }
        _ => None,
    }
}

fn unknown(method: &Method, segments: &[&str], params: &[(String, String)]) -> OdpsError {
    let keys: Vec<&str> = params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != "curr_project")
        .collect();
    OdpsError::unsupported(format!(
        "{method} /{} with parameters {keys:?}",
        segments.join("/")
    ))
}

fn rest(
    state: &AppState,
    method: &Method,
    segments: &[&str],
    params: &[(String, String)],
    body: &[u8],
) -> Result<Reply, OdpsError> {
    if let Some((project, table)) = table_path(segments) {
        if method == Method::GET {
            return table_get(state, project, table, params);
        }
        return Err(unknown(method, segments, params));
    }
    match (method, segments) {
        (&Method::GET, ["projects", project]) => {
            state.catalog.project_dir(project)?;
            Ok(Reply::xml(project_xml(
                project,
                &state.timezone,
                state.odps2,
            )))
        }
        (&Method::GET, ["projects", project, "tunnel"]) if has(params, "service") => {
            state.catalog.project_dir(project)?;
            Ok(Reply::ok("text/plain", state.tunnel_host.clone()))
        }
        (&Method::GET, ["projects", project, "tables"]) => {
            let project_dir = state.catalog.project_dir(project)?;
            tables_xml(state, project, &project_dir, params).map(Reply::xml)
        }
        (&Method::POST, ["projects", project, "instances"]) => {
            state.catalog.project_dir(project)?;
            let xml = std::str::from_utf8(body)
                .map_err(|_| OdpsError::invalid_argument("instance XML is not UTF-8"))?;
            let job = instances::parse_sql_job(xml)?;
            let id = format!("{:x}", catalog::now_nanos());
            let query = job.query.clone();
            tracing::info!(%project, %id, %query, "running SQL");
            let instance = instances::run(
                &state.catalog,
                &state.meta_lock,
                project,
                id.clone(),
                job.name.clone(),
                &query,
                job.odps2(state.odps2),
            );
            state.instances.insert(project, instance);
            Ok(Reply {
                status: 201,
                content_type: "application/xml",
                body: Bytes::new(),
                location: Some(format!(
                    "http://{}/api/projects/{project}/instances/{id}",
                    state.tunnel_host
                )),
            })
        }
        (&Method::GET, ["projects", project, "instances", id]) => {
            let instance = state.instances.get(project, id)?;
            let actions: Vec<&str> = params
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| *k != "curr_project" && *k != "curr_schema")
                .collect();
            match actions.as_slice() {
                [] => Ok(Reply::xml(instances::status_xml(&instance))),
                ["taskstatus"] => Ok(Reply::xml(instances::task_status_xml(&instance))),
                ["result"] => Ok(Reply::xml(instances::result_xml(&instance))),
                ["source"] => Ok(Reply::xml(instances::source_xml(&instance))),
                _ => Err(unknown(method, segments, params)),
            }
        }
        (&Method::PUT, ["projects", project, "instances", id]) => {
            // Instances finish before their creation returns, so stopping is a no-op.
            state.instances.get(project, id)?;
            Ok(Reply::xml(String::new()))
        }
        _ => Err(unknown(method, segments, params)),
    }
}

fn table_get(
    state: &AppState,
    project: &str,
    table: &str,
    params: &[(String, String)],
) -> Result<Reply, OdpsError> {
    let meta = state.catalog.require(project, table)?;
    if has(params, "partitions") {
        let spec = catalog::parse_spec(get(params, "partition").unwrap_or(""))?;
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Partitions>\n");
        for p in meta.matching_partitions(&spec) {
            xml.push_str(&partition_xml(
                state, project, &meta, &p.values, p.created, p.modified,
            )?);
        }
        xml.push_str("  <Marker></Marker>\n  <MaxItems>1000</MaxItems>\n</Partitions>\n");
        return Ok(Reply::xml(xml));
    }
    if let Some(spec) = get(params, "partition") {
        let values = meta.full_partition(&catalog::parse_spec(spec)?)?;
        let index = meta.find_partition(&values).ok_or_else(|| {
            OdpsError::no_such_partition(&meta.name, &catalog::spec_string(&values))
        })?;
        let p = &meta.partitions[index];
        let body = partition_xml(state, project, &meta, &p.values, p.created, p.modified)?;
        return Ok(Reply::xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"
        )));
    }
    // Whole table: every partition's files (the data directory's subtree).
    let (rows, bytes) = rows_in(state, project, &meta.name, &Vec::new())?;
    Ok(Reply::xml(table_xml(&meta, rows, bytes)))
}

fn rows_in(
    state: &AppState,
    project: &str,
    table: &str,
    values: &catalog::PartitionValues,
) -> Result<(u64, u64), OdpsError> {
    let mut rows = 0;
    let mut bytes = 0;
    for file in crate::storage::data_files(&state.catalog.data_dir(project, table, values)?)? {
        rows += file.rows;
        bytes += std::fs::metadata(&file.path).map_err(OdpsError::io)?.len();
    }
    Ok((rows, bytes))
}

fn partition_xml(
    state: &AppState,
    project: &str,
    meta: &TableMeta,
    values: &catalog::PartitionValues,
    created: i64,
    modified: i64,
) -> Result<String, OdpsError> {
    let (rows, bytes) = rows_in(state, project, &meta.name, values)?;
    let mut xml = String::from("  <Partition>\n");
    for (k, v) in values {
        xml.push_str(&format!(
            "    <Column Name=\"{}\" Value=\"{}\"/>\n",
            xml_escape(k),
            xml_escape(v)
        ));
    }
    let schema = serde_json::json!({
        "createTime": created, "lastDDLTime": created, "lastModifiedTime": modified,
        "partitionSize": bytes, "partitionRecordNum": rows,
    });
    xml.push_str(&format!(
        "    <CreationTime>{created}</CreationTime>\n    <LastDDLTime>{created}</LastDDLTime>\n    <LastModifiedTime>{modified}</LastModifiedTime>\n    <PartitionSize>{bytes}</PartitionSize>\n    <PartitionRecordCount>{rows}</PartitionRecordCount>\n    <Schema><![CDATA[{schema}]]></Schema>\n  </Partition>\n"
    ));
    Ok(xml)
}

fn table_xml(meta: &TableMeta, rows: u64, bytes: u64) -> String {
    let mut schema = meta.schema_json();
    schema["recordNum"] = rows.into();
    schema["size"] = bytes.into();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Table>\n  <Name>{}</Name>\n  <TableId>{}</TableId>\n  <Comment>{}</Comment>\n  <Owner>{}</Owner>\n  <Type>MANAGED_TABLE</Type>\n  <CreationTime>{}</CreationTime>\n  <LastModifiedTime>{}</LastModifiedTime>\n  <Schema format=\"json\"><![CDATA[{}]]></Schema>\n</Table>\n",
        xml_escape(&meta.name),
        xml_escape(&meta.table_id),
        xml_escape(&meta.comment),
        xml_escape(OWNER),
        catalog::http_date(meta.created),
        catalog::http_date(meta.data_modified),
        schema.to_string().replace("]]>", "]]]]><![CDATA[>")
    )
}

fn tables_xml(
    state: &AppState,
    project: &str,
    project_dir: &std::path::Path,
    params: &[(String, String)],
) -> Result<String, OdpsError> {
    let prefix = get(params, "name").unwrap_or("").to_ascii_lowercase();
    let mut names = Vec::new();
    if let Ok(entries) = std::fs::read_dir(project_dir.join("tables")) {
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str()
                && name.starts_with(&prefix)
            {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tables>\n");
    for name in names {
        if let Some(meta) = state.catalog.load(project, &name)? {
            xml.push_str(&format!(
                "  <Table>\n    <Name>{}</Name>\n    <TableId>{}</TableId>\n    <Owner>{}</Owner>\n    <Type>MANAGED_TABLE</Type>\n  </Table>\n",
                xml_escape(&meta.name),
                xml_escape(&meta.table_id),
                xml_escape(OWNER)
            ));
        }
    }
    xml.push_str("  <Marker></Marker>\n  <MaxItems>1000</MaxItems>\n</Tables>\n");
    Ok(xml)
}

fn project_xml(project: &str, timezone: &str, odps2: bool) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Project>\n  <Name>{}</Name>\n  <Comment></Comment>\n  <Owner>{}</Owner>\n  <State>AVAILABLE</State>\n  <ProjectGroupName></ProjectGroupName>\n  <Properties>\n    <Property>\n      <Name>odps.sql.timezone</Name>\n      <Value>{}</Value>\n    </Property>\n    <Property>\n      <Name>odps.sql.type.system.odps2</Name>\n      <Value>{odps2}</Value>\n    </Property>\n  </Properties>\n</Project>\n",
        xml_escape(project),
        xml_escape(OWNER),
        xml_escape(timezone)
    )
}

async fn tunnel(
    state: &AppState,
    method: &Method,
    segments: &[&str],
    params: &[(String, String)],
    body: &Bytes,
) -> Result<Reply, OdpsError> {
    if let ["projects", project, "instances", instance_id] = segments {
        return instance_tunnel(state, method, project, instance_id, segments, params);
    }
    if let Some((&"upserts", table_segments)) = segments.split_last()
        && let Some((project, table)) = table_path(table_segments)
    {
        let req = TableRequest {
            project,
            table,
            params,
        };
        return match (method, get(params, "upsertid")) {
            (&Method::POST, None) => state.upserts.create(&req).map(Reply::json),
            (&Method::GET, Some(id)) => state.upserts.status(&req, id).map(Reply::json),
            (&Method::PUT, Some(id)) => {
                state.upserts.put(&req, id, body.clone()).await?;
                Ok(Reply::ok("application/json", Bytes::new()))
            }
            (&Method::POST, Some(id)) => state.upserts.commit(&req, id).await.map(Reply::json),
            (&Method::DELETE, Some(id)) => state.upserts.abort(&req, id).map(Reply::json),
            _ => Err(unknown(method, segments, params)),
        };
    }
    let Some((project, table)) = table_path(segments) else {
        return Err(unknown(method, segments, params));
    };
    let req = TableRequest {
        project,
        table,
        params,
    };
    let format = if has(params, "arrow") {
        Format::Arrow
    } else {
        Format::Protobuf
    };
    match (method, get(params, "uploadid"), get(params, "downloadid")) {
        (&Method::POST, None, None) if has(params, "uploads") => {
            state.tunnel.create_upload(&req).map(Reply::json)
        }
        (&Method::POST, None, None) if has(params, "downloads") => {
            state.tunnel.create_download(&req).map(Reply::json)
        }
        (&Method::GET, Some(id), None) => state.tunnel.upload_status(&req, id).map(Reply::json),
        (&Method::PUT, Some(id), None) if has(params, "blockid") => {
            state
                .tunnel
                .upload_block(&req, id, body.clone(), format)
                .await?;
            Ok(Reply::ok("application/json", Bytes::new()))
        }
        (&Method::POST, Some(id), None) => state.tunnel.commit(&req, id).await.map(Reply::json),
        (&Method::GET, None, Some(id)) if has(params, "data") => state
            .tunnel
            .read(&req, id, format)
            .map(|b| Reply::ok("application/octet-stream", b)),
        (&Method::GET, None, Some(id)) => state.tunnel.download_status(&req, id).map(Reply::json),
        _ => Err(unknown(method, segments, params)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    const LIMIT: usize = 1 << 20;

    #[test]
    fn decompresses_the_tunnels_body_encodings() {
        let data = b"tunnel block body ".repeat(100);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&data).unwrap();
        let deflated = Bytes::from(zlib.finish().unwrap());
        assert_eq!(
            decompress(Some("deflate"), deflated.clone(), LIMIT).unwrap(),
            data.as_slice()
        );
        let zstd = Bytes::from(zstd::stream::encode_all(&data[..], 3).unwrap());
        assert_eq!(
            decompress(Some("zstd"), zstd.clone(), LIMIT).unwrap(),
            data.as_slice()
        );
        // Exactly the limit is fine; one byte less is not.
        assert_eq!(
            decompress(Some("zstd"), zstd.clone(), data.len())
                .unwrap()
                .len(),
            data.len()
        );
        for body in [deflated, zstd] {
            let encoding = if body[0] == 0x78 { "deflate" } else { "zstd" };
            let err = decompress(Some(encoding), body, data.len() - 1).unwrap_err();
            assert_eq!(
                (err.status, err.code.as_str()),
                (413, "RequestEntityTooLarge")
            );
        }
        assert_eq!(
            decompress(None, Bytes::from_static(b"raw"), LIMIT).unwrap(),
            &b"raw"[..]
        );
        assert_eq!(
            decompress(Some("x-lz4-frame"), Bytes::new(), LIMIT)
                .unwrap_err()
                .code,
            "NotImplemented"
        );
        assert_eq!(
            decompress(Some("deflate"), Bytes::from_static(b"junk"), LIMIT)
                .unwrap_err()
                .status,
            400
        );
    }

    /// 64 MiB of zeros compress to a few KB; with a 1 MiB cap, inflating
    /// them stops just past 1 MiB with a 413 instead of filling memory.
    #[test]
    fn compression_bombs_stop_at_the_cap() {
        const MIB: usize = 1 << 20;
        let zeros = vec![0u8; MIB];
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let mut zstd_enc = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
        for _ in 0..64 {
            zlib.write_all(&zeros).unwrap();
            zstd_enc.write_all(&zeros).unwrap();
        }
        drop(zeros);
        let bombs = [
            ("deflate", Bytes::from(zlib.finish().unwrap())),
            ("zstd", Bytes::from(zstd_enc.finish().unwrap())),
        ];
        for (encoding, bomb) in bombs {
            assert!(bomb.len() < 128 * 1024, "{encoding}: {} bytes", bomb.len());
            let err = decompress(Some(encoding), bomb, MIB).unwrap_err();
            assert_eq!(err.status, 413, "{encoding}: {err}");
            assert_eq!(err.code, "RequestEntityTooLarge");
        }
    }

    /// A body sent in frames with no declared length, like a chunked one.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_refused_while_read() {
        let chunks = |n: usize| Chunks((0..n).map(|_| Bytes::from(vec![7u8; 300])).collect());
        let err = read_body(chunks(5), 1000, None).await.unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (413, "RequestEntityTooLarge")
        );
        assert_eq!(
            read_body(chunks(3), 900, Some(900)).await.unwrap().len(),
            900
        );
    }

    #[test]
    fn decodes_queries_like_the_sdk() {
        assert_eq!(
            parse_query("uploads=1&partition=pt%3D20240101%2Cr%3Dcn&arrow&x=a+b"),
            vec![
                ("uploads".to_owned(), "1".to_owned()),
                ("partition".to_owned(), "pt=20240101,r=cn".to_owned()),
                ("arrow".to_owned(), String::new()),
                ("x".to_owned(), "a b".to_owned()),
            ]
        );
        assert_eq!(percent_decode("%zz%41", false), "%zzA");
    }
}
