//! XA branches held aside until the source decides them.
//!
//! MariaDB and MySQL 8 write an XA branch's changes as their own event
//! group that ends in an XA_PREPARE event, and the decision later, as a
//! separate group: `XA COMMIT xid` or `XA ROLLBACK xid`. The rows of a
//! branch land only at its `XA COMMIT`, with the record ids of that
//! position, so a replay from any checkpoint gives the same ids; after
//! `XA ROLLBACK` they are dropped. MySQL 8's `XA COMMIT … ONE PHASE` is an
//! XA_PREPARE with `one_phase` set: the branch commits there.
//!
//! While a branch is read, its TABLE_MAP and rows events (raw, after the
//! stream's FORMAT_DESCRIPTION) are written to `state_dir/xa/open.tmp`, so
//! memory stays bounded whatever its size. At its XA_PREPARE the file is
//! fsynced and renamed to a name of its own; the checkpoint lists the
//! branches prepared and undecided at its position ([`PreparedXa`]), so a
//! restart (or kill -9) after the checkpoint passed the PREPARE still has
//! them. A file is deleted only once no saved checkpoint lists it.

use crate::error::{Error, Result};
use crate::machine::PreparedXa;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// The folder of `state_dir` that holds the branches' files.
pub const XA_DIR: &str = "xa";

/// The file a branch is written to until its XA_PREPARE.
const OPEN_FILE: &str = "open.tmp";

/// An xid as SQL writes it (`X'gtrid',X'bqual',formatID`, hex in capitals):
/// the same text whether it came from a statement, a MariaDB GTID event or
/// an XA_PREPARE event.
pub fn xid_text(format_id: u32, gtrid: &[u8], bqual: &[u8]) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    format!("X'{}',X'{}',{format_id}", hex(gtrid), hex(bqual))
}

/// An XA statement as the binlog carries it in a QUERY event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XaStatement {
    /// `XA START xid` (MySQL 8 opens a branch's group with it).
    Start(String),
    /// `XA END xid`.
    End,
    /// `XA COMMIT xid [ONE PHASE]`.
    Commit {
        /// The xid ([`xid_text`]).
        xid: String,
        /// `ONE PHASE`: the branch's changes are in this same group.
        one_phase: bool,
    },
    /// `XA ROLLBACK xid`.
    Rollback(String),
}

/// The XA statement `sql` is, or `None` when it is no XA statement.
///
/// # Errors
/// A message when it starts with `XA COMMIT`/`XA ROLLBACK`/`XA START` but
/// its xid cannot be read.
pub fn statement(sql: &str) -> Option<std::result::Result<XaStatement, String>> {
    let mut words = sql.trim_start().splitn(3, char::is_whitespace);
    if !words.next()?.eq_ignore_ascii_case("XA") {
        return None;
    }
    let verb = words.next()?.to_ascii_uppercase();
    let rest = words.next().unwrap_or("").trim();
    let xid = |rest| parse_xid(rest).ok_or_else(|| format!("cannot read the xid of `{sql}`"));
    Some(match verb.as_str() {
        "START" | "BEGIN" => xid(rest).map(|(x, _)| XaStatement::Start(x)),
        "END" => Ok(XaStatement::End),
        "COMMIT" => xid(rest).map(|(xid, tail)| XaStatement::Commit {
            xid,
            one_phase: tail.to_ascii_uppercase().contains("ONE PHASE"),
        }),
        "ROLLBACK" => xid(rest).map(|(x, _)| XaStatement::Rollback(x)),
        _ => return None,
    })
}

/// Reads `gtrid[, bqual[, formatID]]` (each string `X'hex'`, `0xhex` or
/// `'text'`); returns the xid text and what follows it.
fn parse_xid(s: &str) -> Option<(String, &str)> {
    let (gtrid, rest) = parse_string(s.trim_start())?;
    let mut bqual = Vec::new();
    let mut format_id = 1u32;
    let mut rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix(',') {
        let (b, r) = parse_string(r.trim_start())?;
        bqual = b;
        rest = r.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            let r = r.trim_start();
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            format_id = r[..end].parse().ok()?;
            rest = &r[end..];
        }
    }
    Some((xid_text(format_id, &gtrid, &bqual), rest))
}

fn parse_string(s: &str) -> Option<(Vec<u8>, &str)> {
    let hex = |h: &str| -> Option<Vec<u8>> {
        if !h.len().is_multiple_of(2) {
            return None;
        }
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
            .collect()
    };
    if let Some(r) = s.strip_prefix("X'").or_else(|| s.strip_prefix("x'")) {
        let end = r.find('\'')?;
        return Some((hex(&r[..end])?, &r[end + 1..]));
    }
    if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        let end = r.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(r.len());
        return Some((hex(&r[..end])?, &r[end..]));
    }
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let mut out = Vec::new();
    let mut chars = s[1..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            if chars.peek().is_some_and(|(_, n)| *n == quote) {
                chars.next();
            } else {
                return Some((out, &s[1 + i + 1..]));
            }
        } else if c == '\\' {
            let (_, n) = chars.next()?;
            out.extend_from_slice(n.encode_utf8(&mut [0; 4]).as_bytes());
        } else {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
    None
}

/// A branch being read (between its first event and its XA_PREPARE).
#[derive(Debug)]
struct OpenBranch {
    xid: String,
    out: BufWriter<File>,
    row_events: u64,
}

/// The branches of one run: the one being read and those prepared.
#[derive(Debug)]
pub(crate) struct XaBranches {
    dir: PathBuf,
    held: Vec<PreparedXa>,
    open: Option<OpenBranch>,
}

impl XaBranches {
    /// The branches `held` at the checkpoint; `keep` lists other files a
    /// saved checkpoint still names (a pending batch's). Files nobody
    /// names (branches decided since, or prepared after the checkpoint and
    /// read again now) are deleted.
    ///
    /// # Errors
    /// [`Error::XaBranchFile`] when a held branch's file is gone.
    pub(crate) fn load(state_dir: &Path, held: &[PreparedXa], keep: &[PreparedXa]) -> Result<Self> {
        let dir = state_dir.join(XA_DIR);
        for b in held.iter().chain(keep) {
            let path = dir.join(&b.file);
            if !path.is_file() {
                return Err(Error::XaBranchFile {
                    path,
                    xid: b.xid.clone(),
                    reason: "the checkpoint lists this prepared branch but its file is missing"
                        .into(),
                });
            }
        }
        let me = Self {
            dir,
            held: held.to_vec(),
            open: None,
        };
        me.collect(keep)?;
        Ok(me)
    }

    /// The branches prepared and not yet decided, oldest first.
    pub(crate) fn held(&self) -> &[PreparedXa] {
        &self.held
    }

    /// Whether a branch is being read: its rows go to [`Self::hold`].
    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// A branch's group starts; `fde` is the stream's FORMAT_DESCRIPTION
    /// event, which its events need to be decoded again.
    pub(crate) fn open(&mut self, xid: String, fde: &[u8]) -> Result<()> {
        crate::private_fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(OPEN_FILE);
        let file = crate::private_fs::create_file(&path)?;
        let mut open = OpenBranch {
            xid,
            out: BufWriter::new(file),
            row_events: 0,
        };
        write_record(&mut open.out, fde).map_err(|e| Error::io("writing", &path, e))?;
        self.open = Some(open);
        Ok(())
    }

    /// An event of the branch being read (TABLE_MAP, or rows of a synced table).
    pub(crate) fn hold(&mut self, bytes: &[u8], rows: bool) -> Result<()> {
        let path = self.dir.join(OPEN_FILE);
        if let Some(open) = &mut self.open {
            write_record(&mut open.out, bytes).map_err(|e| Error::io("writing", &path, e))?;
            open.row_events += u64::from(rows);
        }
        Ok(())
    }

    /// The branch's XA_PREPARE: its file is made durable under a name of
    /// its own (`name`, unique per PREPARE event) and the branch is held.
    /// A branch whose start this run did not see (nothing open) is held
    /// with no rows.
    pub(crate) fn prepare(
        &mut self,
        xid: String,
        name: String,
        prepared_at: String,
        since_unix: i64,
    ) -> Result<()> {
        crate::private_fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(&name);
        let row_events = match self.open.take() {
            Some(open) => {
                if open.xid != xid {
                    warn!(open = %open.xid, prepared = %xid, "XA_PREPARE names another xid than its group's start; using the PREPARE's");
                }
                let tmp = self.dir.join(OPEN_FILE);
                finish(open.out).map_err(|e| Error::io("fsyncing", &tmp, e))?;
                std::fs::rename(&tmp, &path).map_err(|e| Error::io("renaming", &path, e))?;
                open.row_events
            }
            None => {
                crate::private_fs::write_durably(&path, &[])?;
                0
            }
        };
        crate::checkpoint::sync_dir(&self.dir)?;
        // The same xid prepared again (a replay, or a reused xid after
        // its decision): the newer PREPARE is the branch.
        self.held.retain(|b| b.xid != xid);
        info!(%xid, %prepared_at, row_events, "XA branch prepared: its changes wait for XA COMMIT");
        self.held.push(PreparedXa {
            xid,
            file: name,
            prepared_at,
            since_unix,
            row_events,
        });
        Ok(())
    }

    /// The branch being read commits in its own group (`XA COMMIT … ONE
    /// PHASE`): its events, to apply now.
    pub(crate) fn commit_open(&mut self) -> Result<Option<HeldEvents>> {
        let Some(open) = self.open.take() else {
            return Ok(None);
        };
        let path = self.dir.join(OPEN_FILE);
        let file = open
            .out
            .into_inner()
            .map_err(|e| Error::io("writing", &path, e.into_error()))?;
        drop(file);
        HeldEvents::open(&path).map(Some)
    }

    /// The branch being read ends without a PREPARE (its group rolled back
    /// or was cut short): its events are dropped.
    pub(crate) fn drop_open(&mut self) {
        self.open = None;
    }

    /// The source decided `xid`: the held branch, no longer held (its file
    /// stays until no saved checkpoint names it).
    pub(crate) fn decide(&mut self, xid: &str) -> Option<PreparedXa> {
        let i = self.held.iter().position(|b| b.xid == xid)?;
        Some(self.held.remove(i))
    }

    /// The events of a held branch, to apply at its commit.
    pub(crate) fn events(&self, branch: &PreparedXa) -> Result<HeldEvents> {
        HeldEvents::open(&self.dir.join(&branch.file))
    }

    /// Deletes the files that neither this run holds nor `keep` (what the
    /// saved checkpoint names) lists.
    pub(crate) fn collect(&self, keep: &[PreparedXa]) -> Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("listing", &self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing", &self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let named = |b: &PreparedXa| b.file == name;
            if (name == OPEN_FILE && self.open.is_some())
                || self.held.iter().any(named)
                || keep.iter().any(named)
            {
                continue;
            }
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::io("deleting", &path, e))?;
        }
        Ok(())
    }
}

/// The file name of the branch prepared by the XA_PREPARE ending at
/// `file:end` (unique per PREPARE event on one server).
pub(crate) fn branch_file_name(file: &str, end: u64) -> String {
    crate::private_fs::file_component(&format!("{file}-{end:012}.xa"))
}

fn write_record(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len =
        u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("event larger than 4 GiB"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

fn finish(out: BufWriter<File>) -> std::io::Result<()> {
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// The events of a branch, read back one at a time: first the
/// FORMAT_DESCRIPTION, then TABLE_MAP and rows events in binlog order.
#[derive(Debug)]
pub(crate) struct HeldEvents {
    path: PathBuf,
    input: BufReader<File>,
}

impl HeldEvents {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        Ok(Self {
            path: path.to_owned(),
            input: BufReader::new(file),
        })
    }

    /// The next event, or `None` at the end.
    pub(crate) fn next_event(&mut self) -> Result<Option<Vec<u8>>> {
        let mut len = [0u8; 4];
        match self.input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(Error::io("reading", &self.path, e)),
        }
        let mut bytes = vec![0; u32::from_le_bytes(len) as usize];
        self.input
            .read_exact(&mut bytes)
            .map_err(|e| Error::io("reading", &self.path, e))?;
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_and_their_xids() {
        let s = |q: &str| statement(q).map(|r| r.expect("xid"));
        assert_eq!(
            s("XA COMMIT X'6131',X'',1"),
            Some(XaStatement::Commit {
                xid: "X'6131',X'',1".into(),
                one_phase: false
            })
        );
        assert_eq!(
            s("xa rollback 'b2','bq',7"),
            Some(XaStatement::Rollback(xid_text(7, b"b2", b"bq")))
        );
        assert_eq!(
            s("XA COMMIT 'a1' ONE PHASE"),
            Some(XaStatement::Commit {
                xid: xid_text(1, b"a1", b""),
                one_phase: true
            })
        );
        assert_eq!(
            s("XA START X'6331',X'',1"),
            Some(XaStatement::Start(xid_text(1, b"c1", b"")))
        );
        assert_eq!(s("XA END X'6331',X'',1"), Some(XaStatement::End));
        assert_eq!(s("COMMIT"), None);
        assert_eq!(s("XACT"), None);
        assert!(statement("XA COMMIT X'6").is_some_and(|r| r.is_err()));
    }
}

/// Where the PREPARE of a branch the task never saw was found, and whether
/// its group changed a synced table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EarlierBranch {
    /// Binlog `file:offset` of its XA_PREPARE.
    pub(crate) prepared_at: String,
    /// The synced tables its group changed (`db.table`), none when it
    /// changed only other tables.
    pub(crate) synced_tables: Vec<String>,
}

/// Rows of `SHOW BINLOG EVENTS` read per query.
const EVENTS_PAGE: usize = 5000;

/// Looks for the last XA PREPARE of `xid` before `file:position` in the
/// binlog files the server still has (newest first, with `SHOW BINLOG
/// EVENTS`: a branch prepared before the task's start position), and tells
/// which synced tables (per `synced`) its group changed. `None` when no
/// file holds it (purged).
pub(crate) async fn find_earlier_branch(
    conn: &mut mysql_source::RawConn,
    xid: &str,
    file: &str,
    position: u64,
    synced: impl Fn(&str, &str) -> bool,
) -> std::result::Result<Option<EarlierBranch>, mysql_source::Error> {
    let logs = conn.query_strings("SHOW BINARY LOGS").await?;
    let mut files: Vec<String> = logs
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .filter(|f| f.as_str() <= file)
        .collect();
    files.reverse();
    for f in files {
        let mut found = None;
        // The group being read: (is it `xid`'s, synced tables it changed).
        let mut group: Option<(bool, Vec<String>)> = None;
        let mut from = 4u64;
        'pages: loop {
            let sql = format!(
                "SHOW BINLOG EVENTS IN '{}' FROM {from} LIMIT {EVENTS_PAGE}",
                f.replace('\'', "''")
            );
            let rows = conn.query_strings(&sql).await?;
            let n = rows.len();
            for row in rows {
                let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                let pos: u64 = cell(1).parse().unwrap_or(0);
                if f == file && pos >= position {
                    break 'pages;
                }
                let (kind, info) = (cell(2), cell(5));
                from = cell(4).parse().unwrap_or(from);
                let starts = info
                    .find("XA START ")
                    .and_then(|i| parse_xid(&info[i + "XA START ".len()..]));
                if let Some((started, _)) = starts {
                    group = Some((started == xid, Vec::new()));
                } else if kind.eq_ignore_ascii_case("Gtid") {
                    // Another group starts.
                    group = None;
                } else if kind.eq_ignore_ascii_case("Table_map") {
                    if let (Some((true, tables)), Some(name)) = (&mut group, mapped_table(&info))
                        && let Some((db, table)) = name.split_once('.')
                        && synced(db, table)
                        && !tables.contains(&name)
                    {
                        tables.push(name);
                    }
                } else if kind.eq_ignore_ascii_case("XA_prepare")
                    && let Some((true, tables)) = group.take()
                {
                    found = Some(EarlierBranch {
                        prepared_at: format!("{f}:{pos}"),
                        synced_tables: tables,
                    });
                }
            }
            if n < EVENTS_PAGE {
                break;
            }
        }
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// `db.table` of a `Table_map` row's info, `table_id: 18 (db.table)`.
fn mapped_table(info: &str) -> Option<String> {
    let open = info.find('(')?;
    let close = info.rfind(')')?;
    info.get(open + 1..close).map(str::to_owned)
}
