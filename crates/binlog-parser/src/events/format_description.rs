//! FORMAT_DESCRIPTION_EVENT (15): binlog version, server version, the
//! post-header length of every event type and the checksum algorithm.

use crate::error::Result;
use crate::header::{ChecksumAlg, EventType, HEADER_LEN};
use crate::parse::{fail, run, take, u8_, u16_, u32_};

/// Which server family wrote the binlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// MySQL (or Percona, PolarDB for MySQL).
    MySql,
    /// MariaDB.
    MariaDb,
}

/// A decoded FORMAT_DESCRIPTION event: the context every later event of the
/// file is decoded with. Owned, because it outlives the bytes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDescription {
    /// Binlog format version (4 for every supported file).
    pub binlog_version: u16,
    /// Server version string, e.g. `8.0.26` or `10.5.15-MariaDB-log`.
    pub server_version: String,
    /// `(major, minor, patch)` parsed from `server_version`.
    pub version: (u16, u16, u16),
    /// MySQL or MariaDB.
    pub flavor: Flavor,
    /// Seconds since the epoch when the file was created (0 if not the first).
    pub create_timestamp: u32,
    /// Length of the common header (19).
    pub common_header_len: u8,
    /// `post_header_lens[t - 1]` is the post-header length of event type `t`.
    pub post_header_lens: Vec<u8>,
    /// Checksum algorithm of the following events.
    pub checksum_alg: ChecksumAlg,
}

const SERVER_VERSION_LEN: usize = 50;

impl Default for FormatDescription {
    /// What to assume before any FDE is seen: a MySQL 8 server without
    /// checksums, whose post-header lengths are the modern ones.
    fn default() -> Self {
        FormatDescription {
            binlog_version: 4,
            server_version: String::new(),
            version: (8, 0, 0),
            flavor: Flavor::MySql,
            create_timestamp: 0,
            common_header_len: HEADER_LEN as u8,
            post_header_lens: Vec::new(),
            checksum_alg: ChecksumAlg::Undefined,
        }
    }
}

/// Parses `1.2.3-suffix` into numbers; missing parts are 0.
fn parse_version(s: &str) -> (u16, u16, u16) {
    let mut parts = s
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|p| p.parse::<u16>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

impl FormatDescription {
    /// Whether a server of this version writes the checksum-alg byte (and a
    /// checksum) at the end of its FDE: MySQL ≥ 5.6.1, MariaDB ≥ 5.3.0.
    fn writes_checksum_alg(flavor: Flavor, version: (u16, u16, u16)) -> bool {
        match flavor {
            Flavor::MySql => version >= (5, 6, 1),
            Flavor::MariaDb => version >= (5, 3, 0),
        }
    }

    /// Reads the server version out of a whole FDE (header included) and
    /// says whether the event carries checksum-alg byte and CRC.
    pub(crate) fn event_has_checksum_tail(event: &[u8]) -> bool {
        let start = HEADER_LEN + 2;
        let Some(raw) = event.get(start..start + SERVER_VERSION_LEN) else {
            return false;
        };
        let (flavor, version) = Self::flavor_and_version(raw);
        Self::writes_checksum_alg(flavor, version)
    }

    fn flavor_and_version(raw: &[u8]) -> (Flavor, (u16, u16, u16)) {
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let s = String::from_utf8_lossy(&raw[..end]);
        let flavor = if s.contains("MariaDB") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        };
        (flavor, parse_version(&s))
    }

    /// Decodes an FDE body (after the common header, checksum included if
    /// present). `body_start` is the header length (for error positions).
    pub(crate) fn parse(body: &[u8], body_start: usize) -> Result<Self> {
        run(EventType::FormatDescription, body, body_start, |i| {
            let all = i;
            let (i, binlog_version) = u16_(i)?;
            let (i, raw_version) = take(SERVER_VERSION_LEN)(i)?;
            let (i, create_timestamp) = u32_(i)?;
            let (i, common_header_len) = u8_(i)?;
            if usize::from(common_header_len) < HEADER_LEN {
                return fail(i, "common header shorter than 19 bytes");
            }
            let (flavor, version) = Self::flavor_and_version(raw_version);
            let end = raw_version
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(raw_version.len());
            let server_version = String::from_utf8_lossy(&raw_version[..end]).into_owned();
            let (lens, checksum_alg) = if Self::writes_checksum_alg(flavor, version) {
                if i.len() < 5 {
                    return fail(i, "FDE too short for its checksum algorithm byte");
                }
                let alg = i[i.len() - 5];
                (&i[..i.len() - 5], ChecksumAlg::from_byte(alg))
            } else {
                (i, ChecksumAlg::Undefined)
            };
            let _ = all;
            Ok((
                &i[i.len()..],
                FormatDescription {
                    binlog_version,
                    server_version,
                    version,
                    flavor,
                    create_timestamp,
                    common_header_len,
                    post_header_lens: lens.to_vec(),
                    checksum_alg,
                },
            ))
        })
    }

    /// Post-header length of `event_type` as announced by this FDE, or the
    /// modern default when the FDE lists fewer types (or none was seen).
    pub fn post_header_len(&self, event_type: EventType) -> usize {
        let code = event_type.code();
        if let Some(&len) = usize::from(code)
            .checked_sub(1)
            .and_then(|i| self.post_header_lens.get(i))
        {
            return usize::from(len);
        }
        default_post_header_len(event_type)
    }

    /// Bytes of the common header (19, possibly more in exotic files).
    pub fn header_len(&self) -> usize {
        usize::from(self.common_header_len)
    }

    /// Whether this is a MariaDB binlog.
    pub fn is_mariadb(&self) -> bool {
        self.flavor == Flavor::MariaDb
    }

    /// Bytes at the end of every non-FDE event that hold a checksum.
    pub fn checksum_len(&self) -> usize {
        if self.checksum_alg == ChecksumAlg::Crc32 {
            4
        } else {
            0
        }
    }
}

/// Post-header lengths of MySQL 8 / MariaDB 10, used when the FDE is absent
/// or shorter than the type code.
fn default_post_header_len(event_type: EventType) -> usize {
    use EventType::*;
    match event_type {
        Query | QueryCompressed => 13,
        Rotate => 8,
        Intvar | Rand | UserVar | Xid | Stop | Heartbeat | HeartbeatV2 | RowsQuery | Ignorable => 0,
        FormatDescription => 0,
        BeginLoadQuery | AppendBlock => 4,
        ExecuteLoadQuery => 26,
        DeleteFile => 4,
        TableMap => 8,
        PreGaWriteRows | PreGaUpdateRows | PreGaDeleteRows => 8,
        WriteRowsV1 | UpdateRowsV1 | DeleteRowsV1 => 8,
        WriteRowsCompressedV1 | UpdateRowsCompressedV1 | DeleteRowsCompressedV1 => 8,
        WriteRows | UpdateRows | DeleteRows | PartialUpdateRows => 10,
        WriteRowsCompressed | UpdateRowsCompressed | DeleteRowsCompressed => 10,
        Incident => 2,
        Gtid | AnonymousGtid => 42,
        MariadbGtid => 19,
        MariadbGtidList | BinlogCheckpoint => 4,
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("10.5.15-MariaDB-log"), (10, 5, 15));
        assert_eq!(parse_version("5.0.86"), (5, 0, 86));
        assert_eq!(parse_version(""), (0, 0, 0));
    }
}
