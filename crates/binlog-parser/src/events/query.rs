//! QUERY_EVENT (2), EXECUTE_LOAD_QUERY_EVENT (18: a `LOAD DATA` in statement
//! format; its longer post-header adds the file id and the file name's
//! place in the text, which is skipped) and MariaDB's QUERY_COMPRESSED_EVENT
//! (165): a statement (BEGIN, COMMIT, DDL, or SQL in statement format) with
//! its session state.

use std::borrow::Cow;

use crate::compression::mariadb_uncompress;
use crate::error::{Error, Result};
use crate::events::format_description::FormatDescription;
use crate::header::EventType;
use crate::parse::{PResult, fail, run, take, u8_, u16_, u24_, u32_, u64_};

/// A statement with its schema and session variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryEvent<'a> {
    /// Id of the connection that ran the statement.
    pub thread_id: u32,
    /// Seconds the statement took.
    pub exec_time: u32,
    /// Error code the statement ended with on the source (0 = success).
    pub error_code: u16,
    /// Default schema (`USE db`), may be empty.
    pub schema: &'a [u8],
    /// Statement text; owned only for MariaDB compressed queries.
    pub query: Cow<'a, [u8]>,
    /// Raw status-variables block; decode it with [`QueryEvent::status_vars`].
    pub status_vars_raw: &'a [u8],
}

/// One status variable of a QUERY event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusVar<'a> {
    /// 0: `@@session.sql_auto_is_null`, foreign/unique checks, autocommit bits.
    Flags2(u32),
    /// 1: `@@session.sql_mode`.
    SqlMode(u64),
    /// 2 / 6: catalog name (always `std`).
    Catalog(&'a [u8]),
    /// 3: auto_increment_increment and _offset.
    AutoIncrement {
        /// auto_increment_increment
        increment: u16,
        /// auto_increment_offset
        offset: u16,
    },
    /// 4: character_set_client, collation_connection, collation_server.
    Charset {
        /// character_set_client (collation id)
        client: u16,
        /// collation_connection
        connection: u16,
        /// collation_server
        server: u16,
    },
    /// 5: `@@session.time_zone`.
    TimeZone(&'a [u8]),
    /// 7: lc_time_names id.
    LcTimeNames(u16),
    /// 8: collation_database.
    CharsetDatabase(u16),
    /// 9: table map for multi-table update.
    TableMapForUpdate(u64),
    /// 10: master data written (relay logs of 5.0).
    MasterDataWritten(u32),
    /// 11: definer of the stored program.
    Invoker {
        /// user
        user: &'a [u8],
        /// host
        host: &'a [u8],
    },
    /// 12: databases touched (raw: count byte then NUL-terminated names).
    UpdatedDbNames(&'a [u8]),
    /// 13: microseconds part of the start time.
    Microseconds(u32),
    /// 16: explicit_defaults_for_timestamp.
    ExplicitDefaultsForTimestamp(u8),
    /// 17: XID of a DDL logged with XID.
    DdlLoggedWithXid(u64),
    /// 18: default_collation_for_utf8mb4.
    DefaultCollationForUtf8mb4(u16),
    /// 19: sql_require_primary_key.
    SqlRequirePrimaryKey(u8),
    /// 20: default_table_encryption.
    DefaultTableEncryption(u8),
    /// MariaDB 128: microseconds of the timestamp.
    HrNow(u32),
    /// MariaDB 129: XID of a DDL.
    MariadbXid(u64),
    /// MariaDB 130: GTID flags3 (+ start-alter sequence number).
    GtidFlags3 {
        /// flags
        flags: u8,
        /// sequence number of the start-alter, if flagged
        sa_seq_no: Option<u64>,
    },
}

impl<'a> QueryEvent<'a> {
    pub(crate) fn parse(
        body: &'a [u8],
        body_start: usize,
        fd: &FormatDescription,
        event_type: EventType,
    ) -> Result<Self> {
        let post_len = fd.post_header_len(event_type).max(11);
        let (ev, region) = run(event_type, body, body_start, |i| {
            let (i, post) = take(post_len)(i)?;
            let (p, thread_id) = u32_(post)?;
            let (p, exec_time) = u32_(p)?;
            let (p, db_len) = u8_(p)?;
            let (p, error_code) = u16_(p)?;
            let status_len = if post_len >= 13 { u16_(p)?.1 } else { 0 };
            let (i, status_vars_raw) = take(usize::from(status_len))(i)?;
            let (i, schema) = take(usize::from(db_len))(i)?;
            let (i, _nul) = u8_(i)?;
            let region = body.len() - i.len();
            Ok((
                &i[i.len()..],
                (
                    QueryEvent {
                        thread_id,
                        exec_time,
                        error_code,
                        schema,
                        query: Cow::Borrowed(i),
                        status_vars_raw,
                    },
                    region,
                ),
            ))
        })?;
        if event_type == EventType::QueryCompressed {
            let text = mariadb_uncompress(&body[region..]).map_err(|reason| Error::Decompress {
                offset: 0,
                event_type,
                reason,
            })?;
            return Ok(QueryEvent {
                query: Cow::Owned(text),
                ..ev
            });
        }
        Ok(ev)
    }

    /// The statement as text (lossy UTF-8).
    pub fn query_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.query)
    }

    /// Iterates the status variables. Iteration stops at the first code it
    /// does not know, as the servers do; a malformed value ends it with an error.
    pub fn status_vars(&self) -> StatusVars<'a> {
        StatusVars {
            rest: self.status_vars_raw,
        }
    }

    /// `(client, connection, server)` collation ids, if logged.
    pub fn charset(&self) -> Option<(u16, u16, u16)> {
        self.status_vars().find_map(|v| match v {
            Ok(StatusVar::Charset {
                client,
                connection,
                server,
            }) => Some((client, connection, server)),
            _ => None,
        })
    }

    /// `sql_mode`, if logged.
    pub fn sql_mode(&self) -> Option<u64> {
        self.status_vars().find_map(|v| match v {
            Ok(StatusVar::SqlMode(m)) => Some(m),
            _ => None,
        })
    }

    /// `time_zone`, if logged.
    pub fn time_zone(&self) -> Option<&'a [u8]> {
        self.status_vars().find_map(|v| match v {
            Ok(StatusVar::TimeZone(z)) => Some(z),
            _ => None,
        })
    }
}

/// Iterator over a QUERY event's status variables.
#[derive(Debug, Clone)]
pub struct StatusVars<'a> {
    rest: &'a [u8],
}

fn len8_str(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, n) = u8_(i)?;
    take(usize::from(n))(i)
}

fn status_var(i: &[u8]) -> PResult<'_, Option<StatusVar<'_>>> {
    let (i, code) = u8_(i)?;
    let r = match code {
        0 => u32_(i).map(|(i, v)| (i, StatusVar::Flags2(v)))?,
        1 => u64_(i).map(|(i, v)| (i, StatusVar::SqlMode(v)))?,
        2 => {
            let (i, s) = len8_str(i)?;
            let (i, _) = u8_(i)?;
            (i, StatusVar::Catalog(s))
        }
        3 => {
            let (i, increment) = u16_(i)?;
            let (i, offset) = u16_(i)?;
            (i, StatusVar::AutoIncrement { increment, offset })
        }
        4 => {
            let (i, client) = u16_(i)?;
            let (i, connection) = u16_(i)?;
            let (i, server) = u16_(i)?;
            (
                i,
                StatusVar::Charset {
                    client,
                    connection,
                    server,
                },
            )
        }
        5 => len8_str(i).map(|(i, v)| (i, StatusVar::TimeZone(v)))?,
        6 => len8_str(i).map(|(i, v)| (i, StatusVar::Catalog(v)))?,
        7 => u16_(i).map(|(i, v)| (i, StatusVar::LcTimeNames(v)))?,
        8 => u16_(i).map(|(i, v)| (i, StatusVar::CharsetDatabase(v)))?,
        9 => u64_(i).map(|(i, v)| (i, StatusVar::TableMapForUpdate(v)))?,
        10 => u32_(i).map(|(i, v)| (i, StatusVar::MasterDataWritten(v)))?,
        11 => {
            let (i, user) = len8_str(i)?;
            let (i, host) = len8_str(i)?;
            (i, StatusVar::Invoker { user, host })
        }
        12 => {
            let start = i;
            let (mut i, n) = u8_(i)?;
            if n <= 16 {
                for _ in 0..n {
                    let Some(end) = i.iter().position(|&b| b == 0) else {
                        return fail(i, "unterminated database name in status variables");
                    };
                    i = &i[end + 1..];
                }
            }
            let used = start.len() - i.len();
            (i, StatusVar::UpdatedDbNames(&start[..used]))
        }
        13 => u24_(i).map(|(i, v)| (i, StatusVar::Microseconds(v)))?,
        16 => u8_(i).map(|(i, v)| (i, StatusVar::ExplicitDefaultsForTimestamp(v)))?,
        17 => u64_(i).map(|(i, v)| (i, StatusVar::DdlLoggedWithXid(v)))?,
        18 => u16_(i).map(|(i, v)| (i, StatusVar::DefaultCollationForUtf8mb4(v)))?,
        19 => u8_(i).map(|(i, v)| (i, StatusVar::SqlRequirePrimaryKey(v)))?,
        20 => u8_(i).map(|(i, v)| (i, StatusVar::DefaultTableEncryption(v)))?,
        128 => u24_(i).map(|(i, v)| (i, StatusVar::HrNow(v)))?,
        129 => u64_(i).map(|(i, v)| (i, StatusVar::MariadbXid(v)))?,
        130 => {
            let (i, flags) = u8_(i)?;
            // COMMIT_ALTER (2) or ROLLBACK_ALTER (4) carry the start-alter seq no.
            if flags & (2 | 4) != 0 {
                let (i, s) = u64_(i)?;
                (
                    i,
                    StatusVar::GtidFlags3 {
                        flags,
                        sa_seq_no: Some(s),
                    },
                )
            } else {
                (
                    i,
                    StatusVar::GtidFlags3 {
                        flags,
                        sa_seq_no: None,
                    },
                )
            }
        }
        _ => return Ok((&i[i.len()..], None)),
    };
    Ok((r.0, Some(r.1)))
}

impl<'a> Iterator for StatusVars<'a> {
    type Item = std::result::Result<StatusVar<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match status_var(self.rest) {
            Ok((rest, Some(v))) => {
                self.rest = rest;
                Some(Ok(v))
            }
            Ok((_, None)) => {
                self.rest = &[];
                None
            }
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                self.rest = &[];
                Some(Err(e.reason))
            }
            Err(nom::Err::Incomplete(_)) => {
                self.rest = &[];
                Some(Err("truncated status variable"))
            }
        }
    }
}
