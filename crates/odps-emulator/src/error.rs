//! MaxCompute's error responses: an HTTP status, a code and a message, sent
//! as `<Error>` XML on the REST API and as JSON on the Tunnel.

use std::fmt;

use odps_tunnel::session::PartitionSpec;

/// An error the emulator reports to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OdpsError {
    /// HTTP status.
    pub status: u16,
    /// MaxCompute's error code, e.g. `NoSuchObject` or `SignatureNotMatch`.
    pub code: String,
    /// Human-readable message, usually starting with an `ODPS-xxxxxxx` number.
    pub message: String,
}

impl OdpsError {
    /// Any error.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// A bad request parameter.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(
            400,
            "InvalidArgument",
            format!("ODPS-0420111: Invalid argument - {}", message.into()),
        )
    }

    /// A missing table.
    pub fn no_such_table(project: &str, table: &str) -> Self {
        Self::new(
            404,
            "NoSuchObject",
            format!("ODPS-0130131:Table not found - '{project}.{table}' cannot be resolved"),
        )
    }

    /// A missing partition.
    pub fn no_such_partition(table: &str, spec: &str) -> Self {
        Self::new(
            404,
            "NoSuchPartition",
            format!("ODPS-0130131:Partition not found - table {table}, partition {spec}"),
        )
    }

    /// A partition spec that does not fit the table's keys.
    pub fn invalid_partition(table: &str, spec: &[(String, String)]) -> Self {
        Self::invalid_argument(format!(
            "partition spec {} does not match the partition keys of table {table}",
            PartitionSpec::new(spec.iter().cloned())
        ))
    }

    /// An endpoint or action the emulator does not implement. A 4xx status,
    /// so that clients do not retry it as a server failure.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(
            400,
            "NotImplemented",
            format!(
                "ODPS-0420095: Access Denied - the MaxCompute emulator does not support {}",
                what.into()
            ),
        )
    }

    /// A request body larger than `limit` bytes, as sent or once its
    /// `Content-Encoding` is undone. MaxCompute answers an oversized request
    /// with `413`; the code is not retryable, so clients do not send it again.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!(
                "ODPS-0420111: Invalid argument - the request body is larger than {limit} bytes \
                 (after decompression, if compressed)"
            ),
        )
    }

    /// A server-side failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalServerError",
            format!("ODPS-0010000:System internal error - {}", message.into()),
        )
    }

    /// A file-system failure.
    pub fn io(err: std::io::Error) -> Self {
        Self::internal(err.to_string())
    }

    /// As `odps-tunnel`'s [`ServerError`](odps_tunnel::ServerError), whose
    /// renderers produce the bodies, so client and server parse alike.
    fn server_error(&self, request_id: &str) -> odps_tunnel::ServerError {
        let mut err =
            odps_tunnel::ServerError::new(self.status, self.code.clone(), self.message.clone());
        err.request_id = Some(request_id.to_owned());
        err.host_id = Some(HOST_ID.to_owned());
        err
    }

    /// The REST API's XML body.
    pub fn to_xml(&self, request_id: &str) -> String {
        self.server_error(request_id).to_xml()
    }

    /// The Tunnel's JSON body.
    pub fn to_json(&self, request_id: &str) -> String {
        self.server_error(request_id).to_json()
    }
}

/// `HostId` of every error body.
const HOST_ID: &str = "odps-emulator";

impl fmt::Display for OdpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for OdpsError {}

/// Escapes text for an XML element or attribute.
pub fn xml_escape(text: &str) -> String {
    odps_tunnel::xml::escape(text)
}
