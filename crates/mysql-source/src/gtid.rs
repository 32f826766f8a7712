//! GTID positions: MySQL GTID sets (tagged GTIDs included) and MariaDB
//! GTID positions, their text forms and the `COM_BINLOG_DUMP_GTID` encoding.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;

/// `[start, end)` intervals of one (uuid, tag).
type Intervals = Vec<(u64, u64)>;

/// A MySQL GTID set, e.g. `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,3e11…:tag1:1-3`.
///
/// Intervals are kept sorted and merged; `end` is exclusive internally.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct MysqlGtidSet {
    /// (source uuid, tag; empty = untagged) → sorted, disjoint `[start, end)` intervals.
    sids: BTreeMap<([u8; 16], String), Intervals>,
}

impl MysqlGtidSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the text form (whitespace and newlines are ignored).
    ///
    /// # Errors
    /// [`Error::Url`] for a malformed set.
    pub fn parse(text: &str) -> Result<Self> {
        let mut set = Self::new();
        let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for entry in cleaned.split(',').filter(|e| !e.is_empty()) {
            let mut parts = entry.split(':');
            let uuid = parse_uuid(parts.next().unwrap_or(""))?;
            let mut tag = String::new();
            let mut any = false;
            for part in parts {
                if part.starts_with(|c: char| c.is_ascii_digit()) {
                    let (a, b) = match part.split_once('-') {
                        Some((a, b)) => (parse_gno(a)?, parse_gno(b)?),
                        None => (parse_gno(part)?, parse_gno(part)?),
                    };
                    if a == 0 || b < a {
                        return Err(Error::Url(format!("bad GTID interval '{part}'")));
                    }
                    set.add_interval(uuid, &tag, a, b + 1);
                    any = true;
                } else {
                    check_tag(part)?;
                    tag = part.to_ascii_lowercase();
                }
            }
            if !any {
                return Err(Error::Url(format!(
                    "GTID set entry '{entry}' has no interval"
                )));
            }
        }
        Ok(set)
    }

    /// Adds one transaction.
    pub fn add(&mut self, uuid: [u8; 16], tag: &str, gno: u64) {
        self.add_interval(uuid, tag, gno, gno + 1);
    }

    fn add_interval(&mut self, uuid: [u8; 16], tag: &str, start: u64, end: u64) {
        let ivs = self.sids.entry((uuid, tag.to_owned())).or_default();
        ivs.push((start, end));
        ivs.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
        for &(s, e) in ivs.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *ivs = merged;
    }

    /// True when the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.sids.is_empty()
    }

    /// True when some GTID carries a tag (needs the tagged wire format, MySQL 8.3+).
    pub fn is_tagged(&self) -> bool {
        self.sids.keys().any(|(_, t)| !t.is_empty())
    }

    /// The set as `COM_BINLOG_DUMP_GTID` carries it (`Gtid_set::encode`):
    /// untagged `n_sids u64 | (uuid[16] | n u64 | (start i64, end i64)*)*`;
    /// tagged (MySQL 8.3+): the u64 header holds the format (1) in its lowest
    /// and highest byte and `n_sids` in the six between, and every sid has
    /// its tag (serialization varlen length + bytes) after the uuid.
    pub fn encode(&self) -> Vec<u8> {
        let tagged = self.is_tagged();
        let n = self.sids.len() as u64;
        let mut out = Vec::with_capacity(8 + self.sids.len() * 48);
        let header = if tagged { 1 | (n << 8) | (1 << 56) } else { n };
        out.extend_from_slice(&header.to_le_bytes());
        for ((uuid, tag), ivs) in &self.sids {
            out.extend_from_slice(uuid);
            if tagged {
                put_varlen(&mut out, tag.len() as u64);
                out.extend_from_slice(tag.as_bytes());
            }
            out.extend_from_slice(&(ivs.len() as u64).to_le_bytes());
            for &(s, e) in ivs {
                out.extend_from_slice(&s.to_le_bytes());
                out.extend_from_slice(&e.to_le_bytes());
            }
        }
        out
    }
}

impl fmt::Display for MysqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same uuid, several tags: one entry per (uuid, tag), as MySQL prints them.
        let mut first = true;
        for ((uuid, tag), ivs) in &self.sids {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write_uuid(f, uuid)?;
            if !tag.is_empty() {
                write!(f, ":{tag}")?;
            }
            for &(s, e) in ivs {
                if e == s + 1 {
                    write!(f, ":{s}")?;
                } else {
                    write!(f, ":{s}-{}", e - 1)?;
                }
            }
        }
        Ok(())
    }
}

/// A MariaDB GTID position: the last GTID per replication domain, e.g. `0-1-100,1-2-7`.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct MariadbGtidPos {
    domains: BTreeMap<u32, (u32, u64)>,
}

impl MariadbGtidPos {
    /// The empty position (start from the beginning of the binlog history).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `domain-server-seq[,…]`.
    ///
    /// # Errors
    /// [`Error::Url`] for a malformed position.
    pub fn parse(text: &str) -> Result<Self> {
        let mut pos = Self::new();
        for gtid in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let mut it = gtid.split('-');
            let bad = || Error::Url(format!("bad MariaDB GTID '{gtid}'"));
            let d = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            let s = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            let q = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            if it.next().is_some() {
                return Err(bad());
            }
            pos.domains.insert(d, (s, q));
        }
        Ok(pos)
    }

    /// Records a committed transaction.
    pub fn update(&mut self, domain: u32, server: u32, seq: u64) {
        self.domains.insert(domain, (server, seq));
    }

    /// True when no domain is known.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

impl fmt::Display for MariadbGtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (d, (s, q)) in &self.domains {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{d}-{s}-{q}")?;
        }
        Ok(())
    }
}

/// The executed-GTID state at a transaction boundary.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub enum GtidState {
    /// Unknown (file/position dump on a server without GTIDs).
    #[default]
    None,
    /// MySQL GTID set.
    Mysql(MysqlGtidSet),
    /// MariaDB GTID position.
    Mariadb(MariadbGtidPos),
}

impl fmt::Display for GtidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidState::None => Ok(()),
            GtidState::Mysql(s) => s.fmt(f),
            GtidState::Mariadb(p) => p.fmt(f),
        }
    }
}

fn parse_gno(s: &str) -> Result<u64> {
    s.parse::<u64>()
        .ok()
        .filter(|&v| v < (1 << 63))
        .ok_or_else(|| Error::Url(format!("bad GTID number '{s}'")))
}

fn check_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 32
        && tag.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Url(format!("bad GTID tag '{tag}'")))
    }
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (dashes optional).
pub(crate) fn parse_uuid(s: &str) -> Result<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|&b| b != b'-').collect();
    if hex.len() != 32 {
        return Err(Error::Url(format!("bad server uuid '{s}'")));
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok();
        out[i] = digits
            .and_then(|d| u8::from_str_radix(d, 16).ok())
            .ok_or_else(|| Error::Url(format!("bad server uuid '{s}'")))?;
    }
    Ok(out)
}

fn write_uuid(f: &mut fmt::Formatter<'_>, u: &[u8; 16]) -> fmt::Result {
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            f.write_str("-")?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// `mysql::serialization` variable-length unsigned integer: the number of
/// trailing one bits of the first byte is the count of extra bytes.
fn put_varlen(out: &mut Vec<u8>, v: u64) {
    let bits = 64 - v.leading_zeros() as usize;
    let extra = if bits <= 7 {
        0
    } else {
        ((bits - 1) / 7).min(8)
    };
    if extra >= 8 {
        out.push(0xff);
        out.extend_from_slice(&v.to_le_bytes());
        return;
    }
    let encoded = (v << (extra + 1)) | ((1u64 << extra) - 1);
    out.extend_from_slice(&encoded.to_le_bytes()[..=extra]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "55778904-0299-11f1-b1b8-4ef0c4956feb";

    #[test]
    fn mysql_set_round_trips_and_merges() {
        let mut s = MysqlGtidSet::parse(&format!("{U1}:1-5:7, {U2}:3")).expect("parse");
        assert_eq!(s.to_string(), format!("{U1}:1-5:7,{U2}:3"));
        s.add(parse_uuid(U1).expect("uuid"), "", 6);
        assert_eq!(s.to_string(), format!("{U1}:1-7,{U2}:3"));
    }

    #[test]
    fn tagged_set_keeps_tags_apart() {
        let s = MysqlGtidSet::parse(&format!("{U1}:1-3:mytag:1-2")).expect("parse");
        assert!(s.is_tagged());
        assert_eq!(s.to_string(), format!("{U1}:1-3,{U1}:mytag:1-2"));
        assert!(MysqlGtidSet::parse(&format!("{U1}:9bad:1")).is_err());
        assert!(MysqlGtidSet::parse(&format!("{U1}:0-3")).is_err());
    }

    #[test]
    fn untagged_encoding_matches_mysql_common() {
        use mysql_common_037::packets::{ComBinlogDumpGtid, GnoInterval, Sid};
        use mysql_common_037::proto::MySerialize;
        let set = MysqlGtidSet::parse(&format!("{U1}:1-5:7,{U2}:3")).expect("parse");
        let sids = vec![
            Sid::new(parse_uuid(U1).expect("u"))
                .with_interval(GnoInterval::new(1, 6))
                .with_interval(GnoInterval::new(7, 8)),
            Sid::new(parse_uuid(U2).expect("u")).with_interval(GnoInterval::new(3, 4)),
        ];
        let mut theirs = Vec::new();
        ComBinlogDumpGtid::new(5)
            .with_sids(sids)
            .serialize(&mut theirs);
        let ours = set.encode();
        // Their packet ends with `data_len u32 | data`.
        assert_eq!(&theirs[theirs.len() - ours.len()..], &ours[..]);
        assert_eq!(
            u32::from_le_bytes(
                theirs[theirs.len() - ours.len() - 4..theirs.len() - ours.len()]
                    .try_into()
                    .expect("4")
            ),
            ours.len() as u32
        );
    }

    #[test]
    fn tagged_encoding_has_the_8_3_layout() {
        let set = MysqlGtidSet::parse(&format!("{U2}:1-13,{U2}:tag_1:1")).expect("parse");
        let enc = set.encode();
        // Header: format 1 in the lowest and highest byte, 2 sids between
        // (the same header a MySQL 9.6 PREVIOUS_GTIDS event of the corpus has).
        assert_eq!(&enc[..8], &[1, 2, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&enc[8..24], &parse_uuid(U2).expect("u"));
        assert_eq!(enc[24], 0, "untagged sid: tag length 0");
        assert_eq!(&enc[25..33], &1u64.to_le_bytes());
        assert_eq!(&enc[33..41], &1u64.to_le_bytes());
        assert_eq!(&enc[41..49], &14u64.to_le_bytes());
        assert_eq!(&enc[49..65], &parse_uuid(U2).expect("u"));
        assert_eq!(enc[65], 5 << 1, "tag length 5 as a one-byte varlen");
        assert_eq!(&enc[66..71], b"tag_1");
    }

    #[test]
    fn varlen_matches_the_serialization_rules() {
        let enc = |v| {
            let mut o = Vec::new();
            put_varlen(&mut o, v);
            o
        };
        assert_eq!(enc(0), vec![0]);
        assert_eq!(enc(127), vec![0xfe]);
        assert_eq!(enc(128), vec![0x01, 0x02]);
        assert_eq!(enc(u64::MAX)[0], 0xff);
        assert_eq!(enc(u64::MAX).len(), 9);
    }

    #[test]
    fn mariadb_position_round_trips() {
        let mut p = MariadbGtidPos::parse("0-1-100, 1-2-7").expect("parse");
        p.update(0, 1, 101);
        assert_eq!(p.to_string(), "0-1-101,1-2-7");
        assert!(MariadbGtidPos::parse("0-1").is_err());
    }
}
