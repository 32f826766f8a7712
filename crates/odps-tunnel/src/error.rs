//! Errors: an opaque [`Error`] with predicates, and [`ServerError`], the
//! code and message MaxCompute sent.
//!
//! [`ServerError`] also renders the two error body formats (XML for the REST
//! API, JSON for the Tunnel), so a server can answer exactly as MaxCompute does.

use std::fmt;

use crate::encode::{DecodeError, EncodeError};
use crate::types::TypeError;
use crate::xml::{self, Element};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from MaxCompute itself: HTTP status, error code and message.
#[derive(Clone, Debug, Eq, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ServerError {
    /// HTTP status of the response.
    #[serde(skip)]
    pub status: u16,
    /// MaxCompute error code, e.g. `NoSuchObject`, `SignatureNotMatch`, `ODPS-0130071`.
    #[serde(rename = "Code", default)]
    pub code: String,
    /// Human-readable message.
    #[serde(rename = "Message", default)]
    pub message: String,
    /// Request id, from the body or the `x-odps-request-id` header.
    #[serde(rename = "RequestId", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Host id, when the server sent one.
    #[serde(rename = "HostId", default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
}

impl std::error::Error for ServerError {}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MaxCompute error {} (HTTP {}): {}",
            self.code, self.status, self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

impl ServerError {
    /// A new error with no request or host id.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            request_id: None,
            host_id: None,
        }
    }

    /// Reads an error body (XML `<Error>` or JSON `{"Code", "Message"}`).
    /// A body in neither form becomes code `HTTP<status>` with the body text
    /// as message, so nothing the server said is lost.
    pub fn from_body(status: u16, body: &[u8], request_id_header: Option<&str>) -> Self {
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim();
        let mut parsed = if trimmed.starts_with('{') {
            serde_json::from_str::<Self>(trimmed).ok()
        } else if trimmed.starts_with('<') {
            Element::parse(trimmed).ok().and_then(|root| {
                let el = if root.name == "Error" {
                    &root
                } else {
                    root.child("Error")?
                };
                Some(Self {
                    status,
                    code: el.child_text("Code").unwrap_or_default().to_owned(),
                    message: el.child_text("Message").unwrap_or_default().to_owned(),
                    request_id: el.child_text("RequestId").map(str::to_owned),
                    host_id: el.child_text("HostId").map(str::to_owned),
                })
            })
        } else {
            None
        }
        .unwrap_or_else(|| Self::new(status, format!("HTTP{status}"), trimmed));
        parsed.status = status;
        if parsed.request_id.is_none() {
            parsed.request_id = request_id_header.map(str::to_owned);
        }
        parsed
    }

    /// The XML body the REST API sends.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
        out.push_str(&format!(
            "<Code>{}</Code><Message>{}</Message>",
            xml::escape(&self.code),
            xml::escape(&self.message)
        ));
        if let Some(id) = &self.request_id {
            out.push_str(&format!("<RequestId>{}</RequestId>", xml::escape(id)));
        }
        if let Some(id) = &self.host_id {
            out.push_str(&format!("<HostId>{}</HostId>", xml::escape(id)));
        }
        out.push_str("</Error>");
        out
    }

    /// The JSON body the Tunnel sends.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether MaxCompute asks for a retry (5xx, throttling, clock skew).
    pub fn is_retryable(&self) -> bool {
        self.status >= 500
            || self.status == 429
            || matches!(
                self.code.as_str(),
                "InternalServerError" | "RequestTimeTooSkewed" | "ServiceUnavailable"
            )
    }
}

/// The kind of an [`Error`], for callers that need to branch on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// MaxCompute answered with an error.
    #[error(transparent)]
    Server(ServerError),
    /// A SQL instance ended in failure.
    #[error("SQL instance {instance_id} failed: {message}")]
    Sql {
        /// Instance id.
        instance_id: String,
        /// The error text of the failed task (e.g. `ODPS-0130071:...`).
        message: String,
    },
    /// A block or response body could not be decoded.
    #[error(transparent)]
    Decode(DecodeError),
    /// A type string, Arrow type or value does not fit MaxCompute.
    #[error(transparent)]
    Type(TypeError),
    /// Arrow could not encode or decode a batch.
    #[error("arrow: {0}")]
    Arrow(arrow_schema::ArrowError),
    /// Connecting or talking HTTP failed.
    #[error("transport: {0}")]
    Transport(String),
    /// A response did not have the shape the protocol promises.
    #[error("unexpected response: {0}")]
    Protocol(String),
    /// The caller misused the API (bad endpoint, bad block id, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A response body was larger than
    /// [`ClientOptions::max_response_bytes`](crate::rest::ClientOptions::max_response_bytes).
    #[error("response body from {endpoint} is larger than {limit} bytes (max_response_bytes)")]
    ResponseTooLarge {
        /// The endpoint that sent it.
        endpoint: String,
        /// The limit in force.
        limit: usize,
    },
    /// An upsert session is not open for what was asked (written to after
    /// its commit or abort), or its commit ended in a status other than
    /// `committed` (expired, aborted, critical, or still committing at the
    /// commit timeout). Nothing of an uncommitted session is visible.
    #[error("upsert session {id} is {status}: {message}")]
    UpsertSession {
        /// Session id.
        id: String,
        /// The session's status as last seen (`committed`, `aborted`, …).
        status: String,
        /// What was asked of it.
        message: String,
    },
    /// A row cannot go into an upsert session: a NULL or unhashable primary
    /// key column, or a batch without the key columns. Nothing of the batch
    /// was buffered.
    #[error("upsert row refused: {0}")]
    UpsertRow(String),
    /// A plain `http://` endpoint whose host is not loopback, without
    /// [`ClientOptions::allow_insecure_http`](crate::rest::ClientOptions::allow_insecure_http).
    #[error(
        "refusing the plain-HTTP {which} {endpoint}: the request signature does not cover the body, \
         so anyone on the path could change the data; use https://, or set allow_insecure_http = true \
         to accept that risk"
    )]
    InsecureEndpoint {
        /// Which endpoint: `endpoint`, `tunnel_endpoint` or `tunnel endpoint returned by the service`.
        which: &'static str,
        /// The endpoint (`http://host[:port]/path`).
        endpoint: String,
    },
}

/// This crate's error: an [`ErrorKind`] behind a box, with predicates.
pub struct Error {
    kind: Box<ErrorKind>,
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The server's error, if MaxCompute sent one.
    pub fn server(&self) -> Option<&ServerError> {
        match &*self.kind {
            ErrorKind::Server(e) => Some(e),
            _ => None,
        }
    }

    /// Whether trying the same request again may succeed (network trouble,
    /// 5xx, throttling, timeouts, a body damaged on the way).
    pub fn is_retryable(&self) -> bool {
        match &*self.kind {
            ErrorKind::Server(e) => e.is_retryable(),
            ErrorKind::Transport(_) | ErrorKind::Timeout(_) => true,
            ErrorKind::Decode(DecodeError::ChecksumMismatch { .. }) => true,
            _ => false,
        }
    }

    /// Whether the credentials or the signature were refused.
    pub fn is_auth(&self) -> bool {
        self.server().is_some_and(|e| {
            e.status == 401
                || e.status == 403
                || e.code.contains("Signature")
                || e.code.contains("AccessDenied")
                || e.code.contains("InvalidAccessKey")
                || e.code == "Unauthorized"
        })
    }

    /// Whether the object (project, table, partition, session) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.server()
            .is_some_and(|e| e.status == 404 || e.code.starts_with("NoSuch"))
    }
}

impl Error {
    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        ErrorKind::Protocol(msg.into()).into()
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        ErrorKind::InvalidArgument(msg.into()).into()
    }

    pub(crate) fn transport(msg: impl fmt::Display) -> Self {
        ErrorKind::Transport(msg.to_string()).into()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.kind, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.kind)
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self {
            kind: Box::new(kind),
        }
    }
}

impl From<ServerError> for Error {
    fn from(e: ServerError) -> Self {
        ErrorKind::Server(e).into()
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        ErrorKind::Decode(e).into()
    }
}

impl From<TypeError> for Error {
    fn from(e: TypeError) -> Self {
        ErrorKind::Type(e).into()
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Self {
        match e {
            EncodeError::Type(t) => t.into(),
            other => ErrorKind::InvalidArgument(other.to_string()).into(),
        }
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        ErrorKind::Arrow(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_error_round_trips() {
        let mut e = ServerError::new(403, "SignatureNotMatch", "bad <sig> & more");
        e.request_id = Some("r1".into());
        let back = ServerError::from_body(403, e.to_xml().as_bytes(), None);
        assert_eq!(back, e);
        let err = Error::from(back);
        assert!(err.is_auth());
        assert!(!err.is_retryable());
    }

    #[test]
    fn json_error_round_trips_and_header_id_fills_in() {
        let e = ServerError::new(500, "InternalServerError", "boom");
        let back = ServerError::from_body(500, e.to_json().as_bytes(), Some("hdr"));
        assert_eq!(back.code, "InternalServerError");
        assert_eq!(back.request_id.as_deref(), Some("hdr"));
        assert!(Error::from(back).is_retryable());
    }

    #[test]
    fn unknown_body_keeps_text() {
        let e = ServerError::from_body(404, b"not here", None);
        assert_eq!(e.code, "HTTP404");
        assert_eq!(e.message, "not here");
        assert!(Error::from(e).is_not_found());
    }
}
