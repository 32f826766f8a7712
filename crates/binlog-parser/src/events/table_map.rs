//! TABLE_MAP_EVENT (19): the definition (types, metadata, nullability and,
//! with `binlog_row_metadata`, names, signedness, charsets, ENUM/SET strings…)
//! of the table the following rows events change.

use crate::error::{Error, Result};
use crate::events::format_description::FormatDescription;
use crate::header::EventType;
use crate::parse::{PResult, fail, packed, packed_bytes, run, take, u8_, u16_, u32_, u48_};

// Columns are what row values decode by, so they live below both; this is
// their public path.
pub use crate::column::{Column, ColumnType};

/// A decoded TABLE_MAP event, borrowing from the event bytes. The context
/// turns it into an owned [`TableMap`] used to decode rows events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMapEvent<'a> {
    /// Table id the rows events refer to.
    pub table_id: u64,
    /// Flags (unused by servers).
    pub flags: u16,
    /// Schema name.
    pub schema: &'a [u8],
    /// Table name.
    pub table: &'a [u8],
    /// One type byte per column.
    pub column_types: &'a [u8],
    /// Per-type metadata block.
    pub metadata: &'a [u8],
    /// Nullability bitmap, LSB-first.
    pub null_bits: &'a [u8],
    /// Optional metadata TLVs (`binlog_row_metadata`).
    pub optional_metadata: &'a [u8],
    /// The whole event body (used to skip rebuilding an unchanged map).
    pub body: &'a [u8],
}

fn nul_terminated(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, s) = packed_bytes(i)?;
    let (i, nul) = u8_(i)?;
    if nul != 0 {
        return fail(i, "name not followed by NUL");
    }
    Ok((i, s))
}

impl<'a> TableMapEvent<'a> {
    pub(crate) fn parse(body: &'a [u8], body_start: usize, fd: &FormatDescription) -> Result<Self> {
        let id_len = if fd.post_header_len(EventType::TableMap) == 6 {
            4
        } else {
            6
        };
        run(EventType::TableMap, body, body_start, |i| {
            let (i, table_id) = if id_len == 4 {
                let (i, v) = u32_(i)?;
                (i, u64::from(v))
            } else {
                u48_(i)?
            };
            let (i, flags) = u16_(i)?;
            let (i, schema) = nul_terminated(i)?;
            let (i, table) = nul_terminated(i)?;
            let (i, ncols) = packed(i)?;
            if ncols > i.len() as u64 {
                return fail(i, "column count runs past the event");
            }
            let (i, column_types) = take(ncols as usize)(i)?;
            let (i, metadata, null_bits) = if i.is_empty() {
                (i, &i[..0], &i[..0])
            } else {
                let (i, metadata) = packed_bytes(i)?;
                let (i, null_bits) = take(column_types.len().div_ceil(8))(i)?;
                (i, metadata, null_bits)
            };
            Ok((
                &i[i.len()..],
                TableMapEvent {
                    table_id,
                    flags,
                    schema,
                    table,
                    column_types,
                    metadata,
                    null_bits,
                    optional_metadata: i,
                    body,
                },
            ))
        })
    }

    /// Number of columns.
    pub fn column_count(&self) -> usize {
        self.column_types.len()
    }

    /// Optional metadata fields as `(type, value)` pairs.
    pub fn optional_fields(&self) -> OptionalFields<'a> {
        OptionalFields {
            rest: self.optional_metadata,
        }
    }
}

/// Iterator over optional metadata TLVs; stops (with `Err`) at a malformed one.
#[derive(Debug, Clone)]
pub struct OptionalFields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for OptionalFields<'a> {
    type Item = std::result::Result<(u8, &'a [u8]), &'static str>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r: PResult<'a, (u8, &'a [u8])> = (|i: &'a [u8]| {
            let (i, t) = u8_(i)?;
            let (i, v) = packed_bytes(i)?;
            Ok((i, (t, v)))
        })(self.rest);
        match r {
            Ok((rest, item)) => {
                self.rest = rest;
                Some(Ok(item))
            }
            Err(_) => {
                self.rest = &[];
                Some(Err("malformed optional metadata field"))
            }
        }
    }
}

/// Optional metadata field types.
pub mod optional_field {
    /// Signedness bitmap of numeric columns.
    pub const SIGNEDNESS: u8 = 1;
    /// Default charset plus exceptions, over character columns.
    pub const DEFAULT_CHARSET: u8 = 2;
    /// Charset of each character column.
    pub const COLUMN_CHARSET: u8 = 3;
    /// Column names.
    pub const COLUMN_NAME: u8 = 4;
    /// SET member strings.
    pub const SET_STR_VALUE: u8 = 5;
    /// ENUM member strings.
    pub const ENUM_STR_VALUE: u8 = 6;
    /// Geometry subtype per geometry column.
    pub const GEOMETRY_TYPE: u8 = 7;
    /// Primary key column indexes.
    pub const SIMPLE_PRIMARY_KEY: u8 = 8;
    /// Primary key columns with prefix lengths.
    pub const PRIMARY_KEY_WITH_PREFIX: u8 = 9;
    /// Default charset over ENUM/SET columns.
    pub const ENUM_AND_SET_DEFAULT_CHARSET: u8 = 10;
    /// Charset per ENUM/SET column.
    pub const ENUM_AND_SET_COLUMN_CHARSET: u8 = 11;
    /// Visibility bitmap (1 = visible).
    pub const COLUMN_VISIBILITY: u8 = 12;
    /// Dimension per VECTOR column.
    pub const VECTOR_DIMENSIONALITY: u8 = 13;
}

/// Owned table definition kept by the [`DecodeContext`](crate::DecodeContext)
/// between a TABLE_MAP and the rows events that use it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableMap {
    /// Table id.
    pub table_id: u64,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// Primary key `(column index, prefix length)`; prefix 0 = whole column.
    pub primary_key: Vec<(usize, usize)>,
    /// Number of JSON columns (partial-update bitmaps have one bit each).
    pub json_columns: usize,
    /// Event body the map was built from.
    pub(crate) raw: Vec<u8>,
}

/// A map with no columns, for empty rows events without a table map.
pub(crate) static EMPTY_TABLE: TableMap = TableMap {
    table_id: 0,
    schema: String::new(),
    table: String::new(),
    columns: Vec::new(),
    primary_key: Vec::new(),
    json_columns: 0,
    raw: Vec::new(),
};

impl TableMap {
    /// Builds the owned map from a TABLE_MAP event, decoding all metadata.
    /// `mariadb` selects MariaDB's rule for which columns carry a charset.
    ///
    /// # Errors
    /// [`Error::Malformed`] if the metadata block or a TLV is inconsistent
    /// with the column types.
    pub fn from_event(ev: &TableMapEvent<'_>, mariadb: bool) -> Result<Self> {
        let malformed = |reason| Error::Malformed {
            offset: 0,
            event_type: EventType::TableMap,
            at: 0,
            reason,
        };
        let n = ev.column_types.len();
        if ev.metadata.len() > 4 * n.max(1) + 1 && !ev.column_types.contains(&20) {
            return Err(malformed("metadata block longer than 4 bytes per column"));
        }
        let mut columns = Vec::with_capacity(n);
        let mut meta = ev.metadata;
        let mut json_columns = 0;
        for (idx, &code) in ev.column_types.iter().enumerate() {
            let mlen = if code == 20 {
                // TYPED_ARRAY: element type, then that type's metadata.
                1 + meta
                    .first()
                    .map(|&t| ColumnType::metadata_len(t))
                    .unwrap_or(0)
            } else {
                ColumnType::metadata_len(code)
            };
            if meta.len() < mlen && !ev.metadata.is_empty() {
                return Err(malformed(
                    "metadata block shorter than the column types need",
                ));
            }
            let mut m = [0u8; 2];
            let take_n = mlen.min(meta.len());
            for (k, b) in meta[..take_n].iter().take(2).enumerate() {
                m[k] = *b;
            }
            meta = &meta[take_n..];
            let nullable = ev
                .null_bits
                .get(idx / 8)
                .is_some_and(|b| b & (1 << (idx % 8)) != 0);
            let mut col = Column::new(code, m, nullable);
            if col.kind == ColumnType::Json {
                col.json_ordinal = Some(json_columns);
                json_columns += 1;
            }
            columns.push(col);
        }
        let mut map = TableMap {
            table_id: ev.table_id,
            schema: String::from_utf8_lossy(ev.schema).into_owned(),
            table: String::from_utf8_lossy(ev.table).into_owned(),
            columns,
            primary_key: Vec::new(),
            json_columns,
            raw: ev.body.to_vec(),
        };
        for field in ev.optional_fields() {
            let (t, v) = field.map_err(malformed)?;
            map.apply_optional(t, v, mariadb)
                .map_err(|_| malformed("malformed optional metadata value"))?;
        }
        Ok(map)
    }

    fn apply_optional(&mut self, t: u8, v: &[u8], mariadb: bool) -> std::result::Result<(), ()> {
        use optional_field::*;
        let err = |_| ();
        match t {
            SIGNEDNESS => {
                for (k, c) in self
                    .columns
                    .iter_mut()
                    .filter(|c| c.kind.is_numeric())
                    .enumerate()
                {
                    let bit = v.get(k / 8).map(|b| b & (0x80 >> (k % 8)) != 0).ok_or(())?;
                    c.unsigned = bit;
                }
            }
            DEFAULT_CHARSET | ENUM_AND_SET_DEFAULT_CHARSET => {
                let enum_set = t == ENUM_AND_SET_DEFAULT_CHARSET;
                let (mut i, default) = packed(v).map_err(err)?;
                let mut cols: Vec<&mut Column> = self
                    .columns
                    .iter_mut()
                    .filter(|c| {
                        if enum_set {
                            matches!(c.kind, ColumnType::Enum | ColumnType::Set)
                        } else {
                            c.is_character(mariadb)
                        }
                    })
                    .collect();
                for c in cols.iter_mut() {
                    c.charset = Some(default as u32);
                }
                while !i.is_empty() {
                    let (r, idx) = packed(i).map_err(err)?;
                    let (r, coll) = packed(r).map_err(err)?;
                    if let Some(c) = cols.get_mut(idx as usize) {
                        c.charset = Some(coll as u32);
                    }
                    i = r;
                }
            }
            COLUMN_CHARSET | ENUM_AND_SET_COLUMN_CHARSET => {
                let enum_set = t == ENUM_AND_SET_COLUMN_CHARSET;
                let mut i = v;
                for c in self.columns.iter_mut().filter(|c| {
                    if enum_set {
                        matches!(c.kind, ColumnType::Enum | ColumnType::Set)
                    } else {
                        c.is_character(mariadb)
                    }
                }) {
                    if i.is_empty() {
                        break;
                    }
                    let (r, coll) = packed(i).map_err(err)?;
                    c.charset = Some(coll as u32);
                    i = r;
                }
            }
            COLUMN_NAME => {
                let mut i = v;
                for c in self.columns.iter_mut() {
                    if i.is_empty() {
                        break;
                    }
                    let (r, name) = packed_bytes(i).map_err(err)?;
                    c.name = Some(String::from_utf8_lossy(name).into_owned());
                    i = r;
                }
            }
            SET_STR_VALUE | ENUM_STR_VALUE => {
                let kind = if t == SET_STR_VALUE {
                    ColumnType::Set
                } else {
                    ColumnType::Enum
                };
                let mut i = v;
                for c in self.columns.iter_mut().filter(|c| c.kind == kind) {
                    if i.is_empty() {
                        break;
                    }
                    let (r, count) = packed(i).map_err(err)?;
                    if count > r.len() as u64 {
                        return Err(());
                    }
                    let mut r = r;
                    c.members = Vec::with_capacity(count as usize);
                    for _ in 0..count {
                        let (rr, s) = packed_bytes(r).map_err(err)?;
                        c.members.push(s.to_vec());
                        r = rr;
                    }
                    i = r;
                }
            }
            GEOMETRY_TYPE => {
                let mut i = v;
                for c in self
                    .columns
                    .iter_mut()
                    .filter(|c| c.kind == ColumnType::Geometry)
                {
                    if i.is_empty() {
                        break;
                    }
                    let (r, g) = packed(i).map_err(err)?;
                    c.geometry_type = Some(g as u32);
                    i = r;
                }
            }
            SIMPLE_PRIMARY_KEY => {
                let mut i = v;
                while !i.is_empty() {
                    let (r, idx) = packed(i).map_err(err)?;
                    self.primary_key.push((idx as usize, 0));
                    i = r;
                }
            }
            PRIMARY_KEY_WITH_PREFIX => {
                let mut i = v;
                while !i.is_empty() {
                    let (r, idx) = packed(i).map_err(err)?;
                    let (r, prefix) = packed(r).map_err(err)?;
                    self.primary_key.push((idx as usize, prefix as usize));
                    i = r;
                }
            }
            COLUMN_VISIBILITY => {
                for (k, c) in self.columns.iter_mut().enumerate() {
                    let Some(b) = v.get(k / 8) else { break };
                    c.visible = Some(b & (0x80 >> (k % 8)) != 0);
                }
            }
            VECTOR_DIMENSIONALITY => {
                let mut i = v;
                for c in self
                    .columns
                    .iter_mut()
                    .filter(|c| c.kind == ColumnType::Vector)
                {
                    if i.is_empty() {
                        break;
                    }
                    let (r, d) = packed(i).map_err(err)?;
                    c.vector_dimension = Some(d as u32);
                    i = r;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Column by name (needs COLUMN_NAME metadata).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.as_deref() == Some(name))
    }

    /// Overrides signedness from the caller's schema (servers without
    /// SIGNEDNESS metadata). Index out of range is ignored.
    pub fn set_unsigned(&mut self, column: usize, unsigned: bool) {
        if let Some(c) = self.columns.get_mut(column) {
            c.unsigned = unsigned;
        }
    }

    /// Overrides the collation from the caller's schema (63 = binary).
    pub fn set_charset(&mut self, column: usize, collation: u32) {
        if let Some(c) = self.columns.get_mut(column) {
            c.charset = Some(collation);
        }
    }
}
