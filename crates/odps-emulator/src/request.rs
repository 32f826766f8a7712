//! A table request of the Tunnel (upload, download and upsert sessions):
//! the project, the table and the query parameters that say the rest.

use crate::catalog::{self, PartitionValues};
use crate::error::OdpsError;

/// What a tunnel request asks for, from its query parameters.
#[derive(Debug)]
pub struct TableRequest<'a> {
    /// Project name.
    pub project: &'a str,
    /// Table name.
    pub table: &'a str,
    /// Decoded query parameters.
    pub params: &'a [(String, String)],
}

impl TableRequest<'_> {
    /// A parameter's value, if present.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `partition` parameter as partition values (none: no partition).
    pub fn partition(&self) -> Result<PartitionValues, OdpsError> {
        catalog::parse_spec(self.param("partition").unwrap_or(""))
    }
}
