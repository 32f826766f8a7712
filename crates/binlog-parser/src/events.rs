//! Event bodies, one module per event type, and the [`DecodeContext`] that
//! decodes a framed event with what earlier events established (format
//! description, table maps).

pub mod format_description;
pub mod gtid;
pub mod mariadb;
pub mod misc;
pub mod query;
pub mod rotate;
pub mod rows;
pub mod table_map;
pub mod transaction_payload;
pub mod xa;
pub mod xid;

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::header::{CHECKSUM_LEN, EventHeader, EventType, HEADER_LEN, RawEvent, verify_checksum};
use format_description::FormatDescription;
use gtid::{GtidEvent, PreviousGtidsEvent};
use mariadb::{AnnotateRowsEvent, BinlogCheckpointEvent, MariadbGtidEvent, MariadbGtidListEvent};
use misc::{HeartbeatEvent, IncidentEvent, IntvarEvent, RandEvent, RowsQueryEvent};
use query::QueryEvent;
use rotate::RotateEvent;
use rows::{Rows, RowsEvent};
use table_map::{TableMap, TableMapEvent};
use transaction_payload::TransactionPayloadEvent;
use xa::XaPrepareEvent;
use xid::XidEvent;

/// A decoded event: its framing plus the decoded body.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Framing: offset, header, raw bytes.
    pub raw: RawEvent<'a>,
    /// Decoded body.
    pub data: EventData<'a>,
}

impl<'a> Event<'a> {
    /// The common header.
    pub fn header(&self) -> &EventHeader {
        &self.raw.header
    }

    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.raw.header.event_type
    }

    /// Offset of the event's first byte in its file.
    pub fn offset(&self) -> u64 {
        self.raw.offset
    }

    /// Offset just past the event (where to resume after it).
    pub fn end_offset(&self) -> u64 {
        self.raw.offset + self.raw.bytes.len() as u64
    }
}

/// Decoded body of an event.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventData<'a> {
    /// FORMAT_DESCRIPTION (the context has already switched to it).
    FormatDescription(FormatDescription),
    /// ROTATE.
    Rotate(RotateEvent<'a>),
    /// QUERY, MariaDB QUERY_COMPRESSED, or EXECUTE_LOAD_QUERY (a statement-logged `LOAD DATA`).
    Query(QueryEvent<'a>),
    /// XID.
    Xid(XidEvent),
    /// XA_PREPARE: the end of an XA branch's group (prepared, or with
    /// `one_phase` committed).
    XaPrepare(XaPrepareEvent<'a>),
    /// MySQL GTID, ANONYMOUS_GTID or GTID_TAGGED.
    Gtid(GtidEvent<'a>),
    /// MySQL PREVIOUS_GTIDS.
    PreviousGtids(PreviousGtidsEvent<'a>),
    /// MariaDB GTID.
    MariadbGtid(MariadbGtidEvent<'a>),
    /// MariaDB GTID_LIST.
    MariadbGtidList(MariadbGtidListEvent),
    /// MariaDB BINLOG_CHECKPOINT.
    BinlogCheckpoint(BinlogCheckpointEvent<'a>),
    /// MariaDB ANNOTATE_ROWS.
    AnnotateRows(AnnotateRowsEvent<'a>),
    /// TABLE_MAP (the context keeps an owned copy for the rows events).
    TableMap(TableMapEvent<'a>),
    /// Any ROWS event (v1, v2, partial, MariaDB compressed).
    Rows(RowsEvent<'a>),
    /// TRANSACTION_PAYLOAD.
    TransactionPayload(TransactionPayloadEvent<'a>),
    /// HEARTBEAT or HEARTBEAT_V2.
    Heartbeat(HeartbeatEvent<'a>),
    /// ROWS_QUERY.
    RowsQuery(RowsQueryEvent<'a>),
    /// INCIDENT.
    Incident(IncidentEvent<'a>),
    /// INTVAR.
    Intvar(IntvarEvent),
    /// RAND.
    Rand(RandEvent),
    /// STOP.
    Stop,
    /// Any other type (USER_VAR, LOAD DATA, unknown codes…):
    /// the body is in [`RawEvent::body`].
    Undecoded,
}

/// What earlier events established: the format description (checksums,
/// post-header lengths) and the table maps. Passed explicitly; one per
/// binlog stream.
#[derive(Debug, Clone, Default)]
pub struct DecodeContext {
    format: FormatDescription,
    tables: HashMap<u64, TableMap>,
    skip_checksums: bool,
}

impl DecodeContext {
    /// A context that has seen no FDE yet (assumes no checksums until one
    /// arrives).
    pub fn new() -> Self {
        Self::default()
    }

    /// A context for a stream whose FDE was seen elsewhere.
    pub fn with_format(format: FormatDescription) -> Self {
        DecodeContext {
            format,
            ..Self::default()
        }
    }

    /// Turns CRC32 verification off (it is on by default).
    pub fn set_verify_checksums(&mut self, verify: bool) {
        self.skip_checksums = !verify;
    }

    /// The current format description.
    pub fn format(&self) -> &FormatDescription {
        &self.format
    }

    /// The table map for `table_id`, if one was seen.
    pub fn table(&self, table_id: u64) -> Option<&TableMap> {
        self.tables.get(&table_id)
    }

    /// Mutable table map, e.g. to set signedness from the caller's schema.
    pub fn table_mut(&mut self, table_id: u64) -> Option<&mut TableMap> {
        self.tables.get_mut(&table_id)
    }

    /// The rows of a rows event, decoded with its table map.
    ///
    /// # Errors
    /// [`Error::MissingTableMap`] when no TABLE_MAP for its id was seen.
    pub fn rows<'s>(&'s self, ev: &'s RowsEvent<'_>) -> Result<Rows<'s, 's>> {
        // Shorten the event's lifetime to 's (covariant).
        let ev: &'s RowsEvent<'s> = ev;
        match self.tables.get(&ev.table_id) {
            Some(table) => ev.rows(table),
            // Old servers wrote empty STMT_END rows events for unmapped ids.
            None if ev.rows_data.is_empty() => Ok(Rows::empty(ev, &table_map::EMPTY_TABLE)),
            None => Err(Error::MissingTableMap {
                offset: ev.offset,
                table_id: ev.table_id,
            }),
        }
    }

    /// Frames one event: `bytes` holds exactly one event (header, body,
    /// checksum) found at `offset`. Verifies the CRC32 when the format says
    /// so. FDEs update the checksum setting only once decoded.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::Malformed`] (bad size) or [`Error::Checksum`].
    pub fn frame<'a>(&self, bytes: &'a [u8], offset: u64) -> Result<RawEvent<'a>> {
        let header = EventHeader::parse(bytes).map_err(|e| e.at_event(offset))?;
        let size = header.event_size as usize;
        if size > bytes.len() {
            return Err(Error::Truncated {
                offset,
                needed: size as u64,
                available: bytes.len() as u64,
            });
        }
        let bytes = &bytes[..size];
        let (body_start, checksum) = if header.event_type == EventType::FormatDescription {
            let tail = FormatDescription::event_has_checksum_tail(bytes);
            (HEADER_LEN, if tail { CHECKSUM_LEN } else { 0 })
        } else {
            let start = if header.event_type == EventType::Rotate {
                HEADER_LEN
            } else {
                self.format.header_len()
            };
            (start, self.format.checksum_len())
        };
        if size < body_start + checksum {
            return Err(Error::Malformed {
                offset,
                event_type: header.event_type,
                at: 9,
                reason: "event_size smaller than header plus checksum",
            });
        }
        if checksum > 0 && !self.skip_checksums {
            verify_checksum(bytes).map_err(|e| e.at_event(offset))?;
        }
        // The FDE body keeps its alg byte + CRC: its parser needs the alg.
        let body_end = if header.event_type == EventType::FormatDescription {
            size
        } else {
            size - checksum
        };
        Ok(RawEvent {
            offset,
            header,
            bytes,
            body: &bytes[body_start..body_end],
            in_payload: false,
        })
    }

    /// Frames and decodes one event received as a network packet (the
    /// caller strips the leading 0x00 OK byte).
    ///
    /// # Errors
    /// As [`DecodeContext::frame`] and [`DecodeContext::decode`].
    pub fn decode_packet<'a>(&mut self, packet: &'a [u8]) -> Result<Event<'a>> {
        let raw = self.frame(packet, 0)?;
        self.decode(raw)
    }

    /// Decodes a framed event, updating the context (FDE, TABLE_MAP).
    ///
    /// # Errors
    /// [`Error::Malformed`], [`Error::Unsupported`] or [`Error::Decompress`]
    /// carrying the event's offset.
    pub fn decode<'a>(&mut self, raw: RawEvent<'a>) -> Result<Event<'a>> {
        self.decode_data(&raw)
            .map(|data| Event { raw, data })
            .map_err(|e| e.at_event(raw.offset))
    }

    fn decode_data<'a>(&mut self, raw: &RawEvent<'a>) -> Result<EventData<'a>> {
        use EventType as T;
        let body = raw.body;
        // Where the body starts inside the event (for error positions).
        let start = (raw.body.as_ptr() as usize).saturating_sub(raw.bytes.as_ptr() as usize);
        let fd = &self.format;
        Ok(match raw.header.event_type {
            T::FormatDescription => {
                let f = FormatDescription::parse(body, start)?;
                self.format = f.clone();
                EventData::FormatDescription(f)
            }
            T::Rotate => EventData::Rotate(RotateEvent::parse(body, start)?),
            T::Query | T::QueryCompressed => {
                EventData::Query(QueryEvent::parse(body, start, fd, raw.header.event_type)?)
            }
            // EXECUTE_LOAD_QUERY (a statement-logged `LOAD DATA`) is a QUERY
            // event with a longer post-header: its text is the statement.
            // Pre-GA 5.1 servers used code 18 for something else, with a
            // shorter post-header.
            T::ExecuteLoadQuery if fd.post_header_len(T::ExecuteLoadQuery) >= 26 => {
                EventData::Query(QueryEvent::parse(body, start, fd, raw.header.event_type)?)
            }
            T::Xid => EventData::Xid(XidEvent::parse(body, start)?),
            T::XaPrepare => EventData::XaPrepare(XaPrepareEvent::parse(body, start)?),
            T::Gtid | T::AnonymousGtid | T::GtidTagged => {
                EventData::Gtid(GtidEvent::parse(body, start, raw.header.event_type)?)
            }
            T::PreviousGtids => EventData::PreviousGtids(PreviousGtidsEvent::parse(body, start)?),
            T::MariadbGtid => EventData::MariadbGtid(MariadbGtidEvent::parse(body, start)?),
            T::MariadbGtidList => {
                EventData::MariadbGtidList(MariadbGtidListEvent::parse(body, start)?)
            }
            T::BinlogCheckpoint => {
                EventData::BinlogCheckpoint(BinlogCheckpointEvent::parse(body, start)?)
            }
            T::AnnotateRows => EventData::AnnotateRows(AnnotateRowsEvent { query: body }),
            T::TableMap => {
                let ev = TableMapEvent::parse(body, start, fd)?;
                let mariadb = fd.is_mariadb();
                let unchanged = self
                    .tables
                    .get(&ev.table_id)
                    .is_some_and(|t| t.raw.as_slice() == ev.body);
                if !unchanged {
                    let map = TableMap::from_event(&ev, mariadb)?;
                    self.tables.insert(ev.table_id, map);
                }
                EventData::TableMap(ev)
            }
            T::WriteRowsV1
            | T::UpdateRowsV1
            | T::DeleteRowsV1
            | T::WriteRows
            | T::UpdateRows
            | T::DeleteRows
            | T::PartialUpdateRows
            | T::WriteRowsCompressedV1
            | T::UpdateRowsCompressedV1
            | T::DeleteRowsCompressedV1
            | T::WriteRowsCompressed
            | T::UpdateRowsCompressed
            | T::DeleteRowsCompressed => {
                let mut ev = RowsEvent::parse(body, start, fd, raw.header.event_type)?;
                ev.offset = raw.offset;
                EventData::Rows(ev)
            }
            T::TransactionPayload => {
                if raw.in_payload {
                    return Err(Error::Malformed {
                        offset: raw.offset,
                        event_type: T::TransactionPayload,
                        at: 0,
                        reason: "transaction payload nested in a transaction payload",
                    });
                }
                let mut ev = TransactionPayloadEvent::parse(body, start)?;
                ev.offset = raw.offset;
                EventData::TransactionPayload(ev)
            }
            T::Heartbeat => {
                EventData::Heartbeat(HeartbeatEvent::parse_v1(body, raw.header.log_pos))
            }
            T::HeartbeatV2 => EventData::Heartbeat(HeartbeatEvent::parse_v2(body, start)?),
            T::RowsQuery => EventData::RowsQuery(RowsQueryEvent::parse(body)),
            T::Incident => EventData::Incident(IncidentEvent::parse(body, start)?),
            T::Intvar => EventData::Intvar(IntvarEvent::parse(body, start)?),
            T::Rand => EventData::Rand(RandEvent::parse(body, start)?),
            T::Stop => EventData::Stop,
            T::StartEncryption => {
                return Err(Error::Unsupported {
                    offset: raw.offset,
                    event_type: T::StartEncryption,
                    reason: "encrypted binlog: the rest of the file cannot be read",
                });
            }
            _ => EventData::Undecoded,
        })
    }
}
