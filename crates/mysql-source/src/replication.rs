//! The replication stream: register as a replica, dump the binlog, hand out
//! events, survive disconnects.
//!
//! # Back-pressure and memory
//! [`BinlogStream::next_event`] is pull-based: a packet is read from the
//! socket only when the consumer asks for the next event, so a slow
//! consumer slows the server (TCP flow control) and memory holds one event
//! plus the read buffer, whatever the size of the transaction. Each
//! [`Event::bytes`] is a [`Bytes`] slice of the read buffer, not a copy.
//!
//! # Transaction boundaries and resuming
//! The stream follows the transaction shape (GTID / `BEGIN` … `XID` /
//! `COMMIT`, standalone DDL) and, after each event that ends a transaction,
//! advances its [`Checkpoint`]: binlog file, the position after the event,
//! and the executed GTID state. Those are the only positions a restart may
//! use.
//!
//! When the connection drops, the stream reconnects (with capped exponential
//! backoff, for a number of attempts or a time window, telling an optional
//! observer of each attempt: [`ReconnectPolicy`]) and
//! dumps again from the last checkpoint, i.e. the start of the transaction
//! that was being read. The events of that transaction that the consumer
//! already got are re-sent by the server; the stream recognises them by
//! their end positions, checks that the last one is byte-identical to what
//! was delivered (else [`Error::Diverged`]) and drops them, then continues
//! with the first event the consumer has not seen. The consumer therefore
//! sees every transaction exactly once, whole and in order, as if nothing
//! happened; no transaction is buffered by the stream to achieve this.
//! A consumer that restarts from a stored checkpoint starts a new stream
//! there: it has never seen any event after that point, so nothing is
//! dropped.
//!
//! A purged binlog ends the stream with [`Error::BinlogPurged`]; it is
//! never skipped.

use crate::conn::{ConnectOptions, RawConn};
use crate::error::{Error, Result};
use crate::gtid::{GtidState, MariadbGtidPos, MysqlGtidSet};
use crate::schema::quote_str;
use crate::server::BinlogPosition;
use binlog_parser::header::flags::ARTIFICIAL;
use binlog_parser::{DecodeContext, EventData, EventHeader, EventType};
use bytes::Bytes;
use mysql_common_037::packets::{ComBinlogDump, ComRegisterSlave};
use mysql_common_037::proto::MySerialize;
use std::time::Duration;
use tracing::{debug, info, warn};

/// Where the dump starts.
#[derive(Clone, Debug)]
pub enum StartPosition {
    /// A binlog file and byte offset (4 = the file's first event).
    File(BinlogPosition),
    /// A MariaDB GTID position (`@slave_connect_state`): the stream starts
    /// after these transactions.
    MariadbGtid(MariadbGtidPos),
    /// A MySQL executed GTID set (`COM_BINLOG_DUMP_GTID`): the stream sends
    /// every transaction not in it.
    MysqlGtid(MysqlGtidSet),
}

/// How to retry after a dropped connection.
#[derive(Clone, Debug)]
pub struct ReconnectPolicy {
    /// Attempts in a row before giving up (0 = never reconnect).
    pub max_attempts: u32,
    /// First wait; doubled after each failed attempt.
    pub initial_backoff: Duration,
    /// Upper bound of the wait.
    pub max_backoff: Duration,
    /// Give up once this long has passed since the first failure of an
    /// outage, whatever the attempts (`None`: attempts only). The last wait
    /// is cut so that the last attempt falls at the end of the window.
    pub max_elapsed: Option<Duration>,
    /// Told of every attempt and of the recovery (metrics, status).
    pub observer: Option<ReconnectObserver>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_elapsed: None,
            observer: None,
        }
    }
}

impl ReconnectPolicy {
    /// The wait before attempt `attempt` (1-based): doubling, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// What a [`ReconnectObserver`] is told.
#[derive(Debug)]
pub enum ReconnectEvent<'a> {
    /// The connection failed; attempt `attempt` follows after `wait`.
    Retrying {
        /// 1-based attempt of this outage.
        attempt: u32,
        /// The failure.
        cause: &'a Error,
        /// The wait before the attempt.
        wait: Duration,
        /// When the outage began.
        since: tokio::time::Instant,
    },
    /// The stream is connected again after `attempts` attempts.
    Resumed {
        /// Attempts it took.
        attempts: u32,
    },
}

/// A callback told of reconnects (called on the stream's task: keep it short).
#[derive(Clone)]
pub struct ReconnectObserver(std::sync::Arc<dyn Fn(&ReconnectEvent<'_>) + Send + Sync>);

impl ReconnectObserver {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&ReconnectEvent<'_>) + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }

    fn notify(&self, event: &ReconnectEvent<'_>) {
        (self.0)(event);
    }
}

impl std::fmt::Debug for ReconnectObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReconnectObserver")
    }
}

/// Options of a replication stream.
#[derive(Clone, Debug)]
pub struct ReplicationOptions {
    /// Connection options (user needs `REPLICATION SLAVE`).
    pub connect: ConnectOptions,
    /// This replica's server id: unique among the source's replicas.
    pub server_id: u32,
    /// Where to start.
    pub start: StartPosition,
    /// Heartbeat period asked from the server (`None` = no heartbeats).
    pub heartbeat: Option<Duration>,
    /// Stop with `None` at the end of the binlog instead of waiting for more
    /// (`BINLOG_DUMP_NON_BLOCK`); used by tools and benches.
    pub stop_at_end: bool,
    /// Reconnect policy.
    pub reconnect: ReconnectPolicy,
}

impl ReplicationOptions {
    /// Options with a 5 s heartbeat and the default reconnect policy.
    pub fn new(connect: ConnectOptions, server_id: u32, start: StartPosition) -> Self {
        Self {
            connect,
            server_id,
            start,
            heartbeat: Some(Duration::from_secs(5)),
            stop_at_end: false,
            reconnect: ReconnectPolicy::default(),
        }
    }
}

/// A position where the consumer may (re)start: just after a transaction.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Checkpoint {
    /// Binlog file and the offset after the transaction's last event.
    pub position: BinlogPosition,
    /// The executed GTIDs up to and including that transaction.
    pub gtid: GtidState,
}

/// One binlog event as the server sent it.
#[derive(Clone, Debug)]
pub struct Event {
    /// The whole event: 19-byte header, body and (if enabled) the CRC32.
    pub bytes: Bytes,
    /// Event type.
    pub event_type: EventType,
    /// Offset after this event in its binlog file (0 for artificial events).
    pub log_pos: u32,
    /// True when this event ends a transaction (or is a standalone event
    /// outside one): [`BinlogStream::checkpoint`] now points after it.
    pub ends_transaction: bool,
}

/// Where the stream is inside the transaction shape.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum TrxState {
    /// Between transactions.
    Outside,
    /// After a MySQL GTID: `BEGIN`, a DDL or a payload event follows.
    AfterGtid,
    /// After a MariaDB standalone GTID: the next event is the whole group.
    StandaloneNext,
    /// Inside `BEGIN` … `XID`/`COMMIT`.
    Inside,
}

/// The GTID of the transaction being read, applied at its end.
#[derive(Clone, Debug)]
enum PendingGtid {
    None,
    Mariadb {
        domain: u32,
        server: u32,
        seq: u64,
    },
    Mysql {
        sid: [u8; 16],
        tag: String,
        gno: u64,
    },
}

/// Suppression of re-sent events after a reconnect.
#[derive(Debug)]
struct CatchUp {
    /// End offset of the last event the consumer got.
    delivered_pos: u32,
    /// That event's bytes, to check the server re-sent the same.
    delivered: Bytes,
    /// True once the re-sent copy of `delivered` was seen.
    matched: bool,
}

/// A replication stream; see the module docs.
#[derive(Debug)]
pub struct BinlogStream {
    opts: ReplicationOptions,
    conn: Option<RawConn>,
    checkpoint: Checkpoint,
    /// File of the events being read.
    file: String,
    /// Checksum bytes per event, from the server's `binlog_checksum`.
    checksum_len: usize,
    /// binlog-parser's context: the FDE (for QUERY post-headers and checksums).
    ctx: DecodeContext,
    trx: TrxState,
    pending: PendingGtid,
    /// Last delivered real event (end offset, bytes).
    last_delivered: Option<(u32, Bytes)>,
    catch_up: Option<CatchUp>,
    reconnects: u32,
    /// Re-sent events dropped after reconnects (already delivered).
    dropped_replays: u64,
    finished: bool,
}

impl BinlogStream {
    /// Connects, registers as a replica and starts the dump.
    ///
    /// # Errors
    /// Connection errors, [`Error::ServerIdInUse`] when another replica has
    /// the server id, [`Error::BinlogPurged`] when the start is gone.
    pub async fn start(opts: ReplicationOptions) -> Result<Self> {
        let (file, gtid) = match &opts.start {
            StartPosition::File(p) => (p.file.clone(), GtidState::None),
            StartPosition::MariadbGtid(g) => (String::new(), GtidState::Mariadb(g.clone())),
            StartPosition::MysqlGtid(s) => (String::new(), GtidState::Mysql(s.clone())),
        };
        let position = match &opts.start {
            StartPosition::File(p) => p.clone(),
            _ => BinlogPosition {
                file: String::new(),
                position: 4,
            },
        };
        let mut stream = Self {
            conn: None,
            checkpoint: Checkpoint { position, gtid },
            file,
            checksum_len: 0,
            ctx: DecodeContext::new(),
            trx: TrxState::Outside,
            pending: PendingGtid::None,
            last_delivered: None,
            catch_up: None,
            reconnects: 0,
            dropped_replays: 0,
            finished: false,
            opts,
        };
        let conn = stream.open(true).await?;
        stream.conn = Some(conn);
        Ok(stream)
    }

    /// The last transaction boundary: where a restart resumes.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// How many times the stream reconnected.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// How many re-sent events (of transactions open at a disconnect) were
    /// dropped because the consumer already had them.
    pub fn dropped_replays(&self) -> u64 {
        self.dropped_replays
    }

    /// The server's thread id of the current dump connection.
    pub fn connection_id(&self) -> Option<u32> {
        self.conn.as_ref().map(|c| c.hello().connection_id)
    }

    /// The next event; `None` only with [`ReplicationOptions::stop_at_end`]
    /// at the end of the binlog. Heartbeats are consumed here.
    ///
    /// Cancel-safe (e.g. in `select!` or under a timeout): a partly read
    /// packet stays buffered and the next call continues it.
    ///
    /// # Errors
    /// Final errors only: transient ones are retried per the policy first.
    pub async fn next_event(&mut self) -> Result<Option<Event>> {
        let mut attempts = 0u32;
        let mut since: Option<tokio::time::Instant> = None;
        // Why the last reconnect failed: the cause of the next attempt.
        let mut failed_reconnect: Option<Error> = None;
        loop {
            if self.finished {
                return Ok(None);
            }
            let packet = match self.conn.as_mut() {
                Some(conn) => conn.read_packet().await,
                None => Err(failed_reconnect
                    .take()
                    .unwrap_or_else(|| Error::Io(std::io::ErrorKind::NotConnected.into()))),
            };
            let packet = match packet.and_then(|p| self.check_packet(p)) {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.finished = true;
                    // The server ends the connection after the dump (a
                    // COM_QUIT now would race its close: EPIPE): let it go.
                    self.conn = None;
                    return Ok(None);
                }
                Err(e) if e.is_transient() && self.may_retry(attempts, since) => {
                    attempts += 1;
                    let began = *since.get_or_insert_with(tokio::time::Instant::now);
                    match self.reconnect(attempts, &e, began).await {
                        Ok(()) => {}
                        // Server still away: the next attempt waits longer
                        // and reports why this one failed.
                        Err(again) if again.is_transient() => {
                            self.conn = None;
                            failed_reconnect = Some(again);
                        }
                        Err(fatal) => return Err(fatal),
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if attempts > 0 {
                if let Some(o) = &self.opts.reconnect.observer {
                    o.notify(&ReconnectEvent::Resumed { attempts });
                }
                attempts = 0;
                since = None;
            }
            if let Some(event) = self.on_event(packet)? {
                return Ok(Some(event));
            }
        }
    }

    /// Drops the current connection, with whatever it had buffered but not
    /// yet handed out, and resumes from the last checkpoint exactly as after
    /// a failure (e.g. to move to a restarted server at once).
    ///
    /// # Errors
    /// As [`BinlogStream::start`].
    pub async fn reconnect_now(&mut self) -> Result<()> {
        let cause = Error::Io(std::io::Error::other("reconnect asked by the caller"));
        self.reconnect(1, &cause, tokio::time::Instant::now()).await
    }

    /// Whether the policy allows another attempt in an outage that began at
    /// `since` (none yet: this is its first failure).
    fn may_retry(&self, attempts: u32, since: Option<tokio::time::Instant>) -> bool {
        let p = &self.opts.reconnect;
        attempts < p.max_attempts
            && match (p.max_elapsed, since) {
                (Some(window), Some(t)) => t.elapsed() < window,
                _ => true,
            }
    }

    /// Ends the dump and closes the connection.
    ///
    /// # Errors
    /// I/O errors while closing (harmless).
    pub async fn close(mut self) -> Result<()> {
        match self.conn.take() {
            Some(c) => c.close().await,
            None => Ok(()),
        }
    }

    /// Unwraps a stream packet: `Some(event bytes)`, `None` at EOF, or the server's error.
    fn check_packet(&self, packet: Bytes) -> Result<Option<Bytes>> {
        match packet.first() {
            Some(0x00) => Ok(Some(packet.slice(1..))),
            // End of the binlog: asked for with `stop_at_end`; otherwise the
            // server ended the dump (e.g. shutting down), which is a
            // dropped connection.
            Some(0xfe) if packet.len() < 9 && self.opts.stop_at_end => Ok(None),
            Some(0xfe) if packet.len() < 9 => Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server ended the binlog dump",
            ))),
            Some(0xff) => {
                Err(self.classify(crate::packet::server_error(&packet, Default::default())))
            }
            _ => Err(Error::Protocol(
                "unexpected packet in the binlog stream".into(),
            )),
        }
    }

    /// Maps error 1236 and kin to their typed errors.
    fn classify(&self, e: Error) -> Error {
        match e {
            Error::Server {
                code,
                message,
                state,
            } => {
                let lower = message.to_ascii_lowercase();
                if lower.contains("same server_id") || lower.contains("same server_uuid") {
                    Error::ServerIdInUse {
                        server_id: self.opts.server_id,
                        detail: message,
                    }
                } else if code == 1236
                    && (lower.contains("purged") || lower.contains("could not find first log file"))
                    || code == 1373
                {
                    let file = match &self.opts.start {
                        _ if !self.checkpoint.position.file.is_empty() => {
                            self.checkpoint.position.file.clone()
                        }
                        StartPosition::MariadbGtid(g) => format!("GTID position {g}"),
                        StartPosition::MysqlGtid(s) => format!("GTID set {s}"),
                        StartPosition::File(p) => p.file.clone(),
                    };
                    Error::BinlogPurged { file, message }
                } else {
                    Error::Server {
                        code,
                        message,
                        state,
                    }
                }
            }
            other => other,
        }
    }

    /// Classifies one event, updates the state, decides whether the consumer sees it.
    fn on_event(&mut self, bytes: Bytes) -> Result<Option<Event>> {
        let h = EventHeader::parse(&bytes)?;
        if h.event_size as usize != bytes.len() {
            return Err(Error::Binlog(format!(
                "{:?} event says {} bytes but its packet holds {}",
                h.event_type,
                h.event_size,
                bytes.len()
            )));
        }
        let artificial = h.flags & ARTIFICIAL != 0 || h.log_pos == 0;
        match h.event_type {
            EventType::Heartbeat | EventType::HeartbeatV2 => return Ok(None),
            EventType::Rotate if artificial => {
                // The server names the file it streams from: always the first event.
                let (pos, name) = self.rotate(&bytes)?;
                if let Some(cu) = &self.catch_up {
                    if name == self.file {
                        return Ok(None);
                    }
                    // The file ended and the server went on to the next one:
                    // a crashed server's file ends without a ROTATE, and a
                    // stream idle at the end of a file (nothing delivered
                    // past the checkpoint) has nothing more to see in it.
                    // Only events delivered past the checkpoint that never
                    // came back mean the binlog changed.
                    let nothing_open = self.checkpoint.position.file == self.file
                        && u64::from(cu.delivered_pos) <= self.checkpoint.position.position;
                    if !(cu.matched || nothing_open) {
                        return Err(Error::Diverged(format!(
                            "resumed in '{name}' but the stream was in '{}'",
                            self.file
                        )));
                    }
                    debug!(from = %self.file, to = %name, "caught up after reconnect: the server moved to the next file");
                    self.catch_up = None;
                }
                if name != self.file {
                    // Nothing delivered in the new file yet.
                    self.last_delivered = None;
                }
                self.file = name.clone();
                if self.trx == TrxState::Outside {
                    self.checkpoint.position = BinlogPosition {
                        file: name,
                        position: pos,
                    };
                }
                return Ok(Some(Event {
                    bytes,
                    event_type: h.event_type,
                    log_pos: h.log_pos,
                    ends_transaction: false,
                }));
            }
            EventType::FormatDescription => {
                self.ctx.decode_packet(&bytes)?;
            }
            _ => {}
        }
        if let Some(cu) = &mut self.catch_up {
            if artificial || h.log_pos <= cu.delivered_pos {
                if !artificial && h.log_pos == cu.delivered_pos {
                    if bytes != cu.delivered {
                        return Err(Error::Diverged(format!(
                            "the event ending at {}:{} differs from the one delivered before the reconnect",
                            self.file, h.log_pos
                        )));
                    }
                    cu.matched = true;
                }
                if !artificial {
                    self.dropped_replays += 1;
                }
                if !artificial && u64::from(h.log_pos) > self.checkpoint.position.position {
                    // Re-run the boundary tracker over the replayed part of the open transaction.
                    self.track(&bytes, h)?;
                }
                return Ok(None);
            }
            if !cu.matched && cu.delivered_pos > self.checkpoint.position.position as u32 {
                return Err(Error::Diverged(format!(
                    "no event ends at {}:{} after the reconnect",
                    self.file, cu.delivered_pos
                )));
            }
            debug!(file = %self.file, pos = h.log_pos, "caught up after reconnect");
            self.catch_up = None;
        }
        // Events before the checkpoint (the FDE re-sent when a dump starts
        // mid-file) are shown to the consumer but do not move the checkpoint.
        let stale = self.file == self.checkpoint.position.file
            && u64::from(h.log_pos) <= self.checkpoint.position.position
            && h.event_type != EventType::Rotate;
        let ends = if artificial || stale {
            false
        } else {
            self.track(&bytes, h)?
        };
        if !artificial {
            self.last_delivered = Some((h.log_pos, bytes.clone()));
        }
        Ok(Some(Event {
            bytes,
            event_type: h.event_type,
            log_pos: h.log_pos,
            ends_transaction: ends,
        }))
    }

    /// A ROTATE's (position, next file). Before the stream's first FDE the
    /// parser cannot know whether events carry a CRC; the server's
    /// `binlog_checksum` (read at connect) says so.
    fn rotate(&mut self, bytes: &[u8]) -> Result<(u64, String)> {
        let ev = self.ctx.decode_packet(bytes)?;
        let EventData::Rotate(r) = ev.data else {
            return Err(Error::Binlog("ROTATE did not decode as one".into()));
        };
        let missing = self
            .checksum_len
            .saturating_sub(self.ctx.format().checksum_len());
        let name = &r.name[..r.name.len().saturating_sub(missing)];
        Ok((r.position, String::from_utf8_lossy(name).into_owned()))
    }

    /// Follows the transaction shape; true when `bytes` ends a transaction.
    fn track(&mut self, bytes: &[u8], h: EventHeader) -> Result<bool> {
        use EventType as T;
        let decoded = match h.event_type {
            T::Query
            | T::QueryCompressed
            | T::Gtid
            | T::AnonymousGtid
            | T::GtidTagged
            | T::MariadbGtid => Some(self.ctx.decode_packet(bytes)?.data),
            _ => None,
        };
        let ends = match (decoded, h.event_type, self.trx) {
            (Some(EventData::MariadbGtid(g)), _, _) => {
                self.pending = PendingGtid::Mariadb {
                    domain: g.domain_id,
                    server: h.server_id,
                    seq: g.seq_no,
                };
                self.trx = if g.is_standalone() {
                    TrxState::StandaloneNext
                } else {
                    TrxState::Inside
                };
                false
            }
            (Some(EventData::Gtid(g)), _, _) => {
                self.pending = match (g.anonymous, u64::try_from(g.gno)) {
                    (false, Ok(gno)) => PendingGtid::Mysql {
                        sid: g.sid,
                        tag: String::from_utf8_lossy(g.tag.unwrap_or_default())
                            .to_ascii_lowercase(),
                        gno,
                    },
                    _ => PendingGtid::None,
                };
                self.trx = TrxState::AfterGtid;
                false
            }
            (Some(EventData::Query(q)), _, state) => {
                if is_begin(&q.query) {
                    self.trx = TrxState::Inside;
                    false
                } else if state == TrxState::Inside {
                    is_end(&q.query)
                } else {
                    true
                }
            }
            (_, T::Xid | T::XaPrepare, _) => true,
            (_, T::TransactionPayload, TrxState::AfterGtid) => true,
            (_, _, TrxState::StandaloneNext) => true,
            (
                _,
                T::Rotate
                | T::FormatDescription
                | T::PreviousGtids
                | T::MariadbGtidList
                | T::BinlogCheckpoint
                | T::Stop,
                TrxState::Outside,
            ) => true,
            _ => false,
        };
        if ends {
            self.commit(bytes, h)?;
        }
        Ok(ends)
    }

    /// Moves the checkpoint past the event that ended a transaction.
    fn commit(&mut self, bytes: &[u8], h: EventHeader) -> Result<()> {
        match std::mem::replace(&mut self.pending, PendingGtid::None) {
            PendingGtid::Mariadb {
                domain,
                server,
                seq,
            } => {
                if let GtidState::Mariadb(p) = &mut self.checkpoint.gtid {
                    p.update(domain, server, seq);
                } else {
                    let mut p = MariadbGtidPos::new();
                    p.update(domain, server, seq);
                    self.checkpoint.gtid = GtidState::Mariadb(p);
                }
            }
            PendingGtid::Mysql { sid, tag, gno } => {
                if let GtidState::Mysql(s) = &mut self.checkpoint.gtid {
                    s.add(sid, &tag, gno);
                } else {
                    let mut s = MysqlGtidSet::new();
                    s.add(sid, &tag, gno);
                    self.checkpoint.gtid = GtidState::Mysql(s);
                }
            }
            PendingGtid::None => {}
        }
        self.trx = TrxState::Outside;
        if h.event_type == EventType::Rotate {
            let (pos, name) = self.rotate(bytes)?;
            self.file = name.clone();
            self.checkpoint.position = BinlogPosition {
                file: name,
                position: pos,
            };
            // The next file starts fresh: nothing delivered in it yet.
            self.last_delivered = None;
        } else {
            self.checkpoint.position = BinlogPosition {
                file: self.file.clone(),
                position: u64::from(h.log_pos),
            };
        }
        Ok(())
    }

    async fn reconnect(
        &mut self,
        attempt: u32,
        cause: &Error,
        since: tokio::time::Instant,
    ) -> Result<()> {
        let p = &self.opts.reconnect;
        let mut wait = p.backoff(attempt);
        if let Some(window) = p.max_elapsed {
            wait = wait.min(window.saturating_sub(since.elapsed()));
        }
        warn!(
            %cause,
            attempt,
            wait = %format!("{:.1} s", wait.as_secs_f64()),
            checkpoint = %self.checkpoint.position,
            "binlog connection lost; reconnecting"
        );
        if let Some(o) = &p.observer {
            o.notify(&ReconnectEvent::Retrying {
                attempt,
                cause,
                wait,
                since,
            });
        }
        if let Some(c) = self.conn.take() {
            drop(c);
        }
        tokio::time::sleep(wait).await;
        // Re-read the open transaction from its start; drop what was delivered.
        self.catch_up = self.last_delivered.as_ref().map(|(pos, bytes)| CatchUp {
            delivered_pos: *pos,
            delivered: bytes.clone(),
            matched: false,
        });
        self.trx = TrxState::Outside;
        self.pending = PendingGtid::None;
        let conn = self.open(false).await?;
        self.conn = Some(conn);
        self.reconnects += 1;
        info!(reconnects = self.reconnects, "binlog stream resumed");
        Ok(())
    }

    /// Opens a connection, prepares the session, registers and sends the dump command.
    async fn open(&mut self, first: bool) -> Result<RawConn> {
        let mut conn = RawConn::connect(&self.opts.connect).await?;
        let server_id = self.opts.server_id;
        if server_id == 0 {
            return Err(Error::ServerIdInUse {
                server_id,
                detail: "0 is not a valid replica id".into(),
            });
        }
        let rows = conn
            .query_strings("SELECT @@server_id, @@global.binlog_checksum")
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Unexpected("no row for @@server_id".into()))?;
        let own: u32 = row
            .first()
            .cloned()
            .flatten()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if own == server_id {
            return Err(Error::ServerIdInUse {
                server_id,
                detail: "it is the source server's own @@server_id".into(),
            });
        }
        if first {
            self.wait_for_free_server_id(&mut conn).await?;
        }
        let checksum = row.get(1).cloned().flatten().unwrap_or_default();
        self.checksum_len = if checksum.eq_ignore_ascii_case("NONE") {
            0
        } else {
            4
        };
        conn.query_drop("SET @master_binlog_checksum = @@global.binlog_checksum")
            .await?;
        conn.query_drop("SET @source_binlog_checksum = @@global.binlog_checksum")
            .await?;
        // MariaDB: we understand GTID events and annotate events.
        conn.query_drop("SET @mariadb_slave_capability = 4").await?;
        if let Some(hb) = self.opts.heartbeat {
            let ns = hb.as_nanos().max(1_000_000);
            conn.query_drop(&format!("SET @master_heartbeat_period = {ns}"))
                .await?;
            conn.query_drop(&format!("SET @source_heartbeat_period = {ns}"))
                .await?;
            // A silent server for three periods is a dead connection.
            conn.set_read_timeout(Some(hb * 3 + Duration::from_secs(5)));
        } else {
            conn.set_read_timeout(None);
        }

        let mut reg = Vec::new();
        ComRegisterSlave::new(server_id).serialize(&mut reg);
        conn.send_command(&reg).await?;
        let ok = conn.read_packet().await?;
        if ok.first() == Some(&0xff) {
            return Err(self.classify(conn.server_error(&ok)));
        }

        if let (true, true, StartPosition::File(p)) =
            (first, conn.hello().is_mariadb, &self.opts.start)
        {
            {
                // The GTID state at the start position, so checkpoints carry GTIDs too.
                let q = format!(
                    "SELECT BINLOG_GTID_POS({}, {})",
                    quote_str(&p.file),
                    p.position
                );
                let rows = conn.query_strings(&q).await?;
                if let Some(Some(g)) = rows.first().and_then(|r| r.first()).cloned() {
                    self.checkpoint.gtid = GtidState::Mariadb(MariadbGtidPos::parse(&g)?);
                }
            }
        }
        let mut flags = if self.opts.stop_at_end { 1u16 } else { 0 };
        if conn.hello().is_mariadb {
            // BINLOG_SEND_ANNOTATE_ROWS_EVENT: the statement text before row events.
            flags |= 2;
        }
        // Every (re)start dumps from the checkpoint: by file position when the
        // stream started from one, by GTID state when it started from GTIDs
        // (a file position is not meaningful before the first boundary there).
        let cmd = if let StartPosition::File(_) = self.opts.start {
            let p = &self.checkpoint.position;
            let pos = u32::try_from(p.position).map_err(|_| {
                Error::Unexpected(format!("binlog offset {} exceeds 4 GiB", p.position))
            })?;
            self.file = p.file.clone();
            let mut buf = Vec::new();
            ComBinlogDump::new(server_id)
                .with_pos(pos)
                .with_filename(p.file.as_bytes())
                .with_flags(mysql_common_037::packets::BinlogDumpFlags::from_bits_truncate(flags))
                .serialize(&mut buf);
            buf
        } else {
            match &self.checkpoint.gtid {
                GtidState::Mariadb(g) => {
                    conn.query_drop(&format!(
                        "SET @slave_connect_state = {}",
                        quote_str(&g.to_string())
                    ))
                    .await?;
                    conn.query_drop("SET @slave_gtid_strict_mode = 1").await?;
                    conn.query_drop("SET @slave_gtid_ignore_duplicates = 0")
                        .await?;
                    let mut buf = Vec::new();
                    ComBinlogDump::new(server_id)
                        .with_pos(4)
                        .with_flags(
                            mysql_common_037::packets::BinlogDumpFlags::from_bits_truncate(flags),
                        )
                        .serialize(&mut buf);
                    buf
                }
                GtidState::Mysql(set) => binlog_dump_gtid(server_id, flags, set),
                GtidState::None => {
                    return Err(Error::Unexpected("GTID start without a GTID state".into()));
                }
            }
        };
        conn.send_command(&cmd).await?;
        info!(server_id, start = %self.checkpoint.position, "binlog dump started");
        Ok(conn)
    }
}

/// `COM_BINLOG_DUMP_GTID` with `BINLOG_THROUGH_GTID`: empty file name, position 4.
pub fn binlog_dump_gtid(server_id: u32, flags: u16, set: &MysqlGtidSet) -> Vec<u8> {
    let data = set.encode();
    let mut buf = Vec::with_capacity(27 + data.len());
    buf.push(0x1e);
    buf.extend_from_slice(&(flags | 0x04).to_le_bytes());
    buf.extend_from_slice(&server_id.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes()); // file name length
    buf.extend_from_slice(&4u64.to_le_bytes());
    buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
    buf.extend_from_slice(&data);
    buf
}

impl BinlogStream {
    /// How long a clashing registration may linger before it counts: a
    /// replica that died without closing (ours, after a crash) stays listed
    /// until the server's next heartbeat writes to its dead socket fail.
    fn server_id_grace(&self) -> Duration {
        self.opts
            .heartbeat
            .map_or(Duration::from_secs(3), |hb| hb * 2 + Duration::from_secs(3))
    }

    /// Waits out a lingering registration of our server id; a live replica
    /// that keeps it past the grace period is a real clash.
    async fn wait_for_free_server_id(&self, conn: &mut RawConn) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.server_id_grace();
        loop {
            match check_replica_ids(conn, self.opts.server_id).await {
                Err(Error::ServerIdInUse { .. }) if tokio::time::Instant::now() < deadline => {
                    debug!(
                        server_id = self.opts.server_id,
                        "server id still registered; waiting for a dead replica to drop"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => return other,
            }
        }
    }
}

/// `ER_PARSE_ERROR`: the server does not know the statement.
const PARSE_ERROR: u16 = 1064;
/// `ER_SPECIFIC_ACCESS_DENIED_ERROR`: a privilege the statement needs is missing.
const SPECIFIC_ACCESS_DENIED: u16 = 1227;

/// Fails when another registered replica uses `server_id`. A user that may
/// not list the replicas goes without the check, with a warning: MariaDB
/// 10.5+ shows them only to `REPLICATION MASTER ADMIN`, which a replica
/// needs for nothing else (DTS asks for `REPLICATION SLAVE`, `REPLICATION
/// CLIENT` and `SELECT` only).
async fn check_replica_ids(conn: &mut RawConn, server_id: u32) -> Result<()> {
    let listed = match conn.query_strings("SHOW SLAVE HOSTS").await {
        // MySQL 8.4 dropped the old name.
        Err(Error::Server {
            code: PARSE_ERROR, ..
        }) => conn.query_strings("SHOW REPLICAS").await,
        other => other,
    };
    let rows = match listed {
        Ok(r) => r,
        Err(Error::Server {
            code: SPECIFIC_ACCESS_DENIED,
            message,
            ..
        }) => {
            warn!(
                server_id,
                %message,
                "cannot list the source's replicas, so another replica using this server id \
                 would go unnoticed (grant REPLICATION MASTER ADMIN on MariaDB to have it checked)"
            );
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for row in rows {
        if row
            .first()
            .cloned()
            .flatten()
            .and_then(|s| s.parse::<u32>().ok())
            == Some(server_id)
        {
            let host = row.get(1).cloned().flatten().unwrap_or_default();
            return Err(Error::ServerIdInUse {
                server_id,
                detail: format!("a replica on '{host}' is registered with it"),
            });
        }
    }
    Ok(())
}

/// True for `BEGIN` (case-insensitive, blanks ignored) and `XA START` /
/// `XA BEGIN`, which open an XA branch's group in MySQL 8 (it ends at the
/// XA_PREPARE event).
fn is_begin(q: &[u8]) -> bool {
    let q = q.trim_ascii();
    let starts = |p: &[u8]| q.len() >= p.len() && q[..p.len()].eq_ignore_ascii_case(p);
    q.eq_ignore_ascii_case(b"BEGIN") || starts(b"XA START") || starts(b"XA BEGIN")
}

/// True for `COMMIT` / `ROLLBACK` and their XA forms.
fn is_end(q: &[u8]) -> bool {
    let q = q.trim_ascii();
    let starts = |p: &[u8]| q.len() >= p.len() && q[..p.len()].eq_ignore_ascii_case(p);
    q.eq_ignore_ascii_case(b"COMMIT")
        || q.eq_ignore_ascii_case(b"ROLLBACK")
        || starts(b"XA COMMIT")
        || starts(b"XA ROLLBACK")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_gtid_packet_layout() {
        let set = MysqlGtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5").expect("set");
        let p = binlog_dump_gtid(7, 0, &set);
        assert_eq!(p[0], 0x1e);
        assert_eq!(u16::from_le_bytes([p[1], p[2]]), 4);
        assert_eq!(u32::from_le_bytes([p[3], p[4], p[5], p[6]]), 7);
        assert_eq!(&p[7..11], &[0, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(p[11..19].try_into().expect("8")), 4);
        assert_eq!(
            u32::from_le_bytes(p[19..23].try_into().expect("4")) as usize,
            p.len() - 23
        );
    }

    #[test]
    fn transaction_ends() {
        assert!(is_begin(b" begin "));
        // MySQL 8 opens an XA branch's group with the statement itself.
        assert!(is_begin(b"XA START X'6131',X'',1") && !is_begin(b"XA END X'6131',X'',1"));
        assert!(!is_end(b"XA END X'6131',X'',1"));
        assert!(is_end(b"COMMIT") && is_end(b"rollback") && is_end(b"XA COMMIT 'x'"));
        assert!(!is_end(b"INSERT INTO t VALUES (1)"));
    }
}
