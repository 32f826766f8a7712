//! Errors of the MySQL source.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to the source server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection URL could not be parsed.
    #[error("invalid MySQL URL: {0}")]
    Url(String),
    /// The server could not be reached or the connection broke.
    #[error("cannot talk to the MySQL server: {0}")]
    Connection(#[source] mysql_async::Error),
    /// The server answered with an error.
    #[error("MySQL server error {code} ({state}): {message}")]
    Server {
        /// The server's error number, e.g. 1045 for access denied.
        code: u16,
        /// The SQLSTATE.
        state: String,
        /// The server's message.
        message: String,
    },
    /// The server answered, but not in the shape we expected.
    #[error("unexpected answer from the MySQL server: {0}")]
    Unexpected(String),
}

impl From<mysql_async::Error> for Error {
    fn from(e: mysql_async::Error) -> Self {
        match e {
            mysql_async::Error::Server(s) => Error::Server { code: s.code, state: s.state, message: s.message },
            mysql_async::Error::Url(u) => Error::Url(u.to_string()),
            other => Error::Connection(other),
        }
    }
}
