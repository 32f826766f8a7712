//! ROWS events: WRITE/UPDATE/DELETE v1 (23–25, MariaDB) and v2 (30–32),
//! PARTIAL_UPDATE_ROWS (39) and MariaDB's compressed variants (166–171).
//! Row images are decoded lazily into values that borrow from the event.

use std::borrow::Cow;

use crate::compression::mariadb_uncompress;
use crate::error::{Error, Result};
use crate::events::format_description::FormatDescription;
use crate::events::table_map::TableMap;
use crate::header::EventType;
use crate::parse::{packed, run, take, u16_, u32_, u48_};
use crate::value::{Value, decode_value, skip_value};

/// What a rows event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    /// INSERT: after images.
    Write,
    /// UPDATE: before and after images.
    Update,
    /// DELETE: before images.
    Delete,
    /// UPDATE with partial JSON diffs in the after images.
    PartialUpdate,
}

/// Rows-event flag: last event of the statement.
pub const STMT_END_F: u16 = 1;

/// A rows event; decode its rows with [`RowsEvent::rows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsEvent<'a> {
    /// Offset of the event in its file (for errors).
    pub offset: u64,
    /// Event type as written (e.g. `WriteRowsCompressedV1`).
    pub event_type: EventType,
    /// Write, update, delete or partial update.
    pub kind: RowsKind,
    /// 1 for v1 events, 2 for v2.
    pub version: u8,
    /// Table id (see the preceding TABLE_MAP).
    pub table_id: u64,
    /// Flags (`STMT_END_F` …).
    pub flags: u16,
    /// v2 extra data (partition info, NDB), without its length field.
    pub extra_data: &'a [u8],
    /// Number of columns of the table.
    pub width: usize,
    /// Present-columns bitmap of the before image (UPDATE/DELETE) or of the
    /// after image (WRITE).
    pub columns_1: &'a [u8],
    /// Present-columns bitmap of the after image (UPDATE only).
    pub columns_2: &'a [u8],
    /// Row images; owned only for MariaDB compressed events.
    pub rows_data: Cow<'a, [u8]>,
    /// Where `rows_data` starts in the event (for error positions).
    data_start: usize,
}

impl<'a> RowsEvent<'a> {
    pub(crate) fn parse(
        body: &'a [u8],
        body_start: usize,
        fd: &FormatDescription,
        event_type: EventType,
    ) -> Result<Self> {
        use EventType::*;
        let (kind, compressed) = match event_type {
            WriteRowsV1 | WriteRows => (RowsKind::Write, false),
            UpdateRowsV1 | UpdateRows => (RowsKind::Update, false),
            DeleteRowsV1 | DeleteRows => (RowsKind::Delete, false),
            PartialUpdateRows => (RowsKind::PartialUpdate, false),
            WriteRowsCompressedV1 | WriteRowsCompressed => (RowsKind::Write, true),
            UpdateRowsCompressedV1 | UpdateRowsCompressed => (RowsKind::Update, true),
            DeleteRowsCompressedV1 | DeleteRowsCompressed => (RowsKind::Delete, true),
            _ => (RowsKind::Write, false),
        };
        let post_len = fd.post_header_len(event_type);
        // MySQL 9 lists 0 for the obsolete v1 types; v1 layout is 8.
        let post_len = if post_len == 0 { 8 } else { post_len };
        let version = if post_len >= 10 { 2 } else { 1 };
        let id_len = if post_len == 6 { 4 } else { 6 };
        let two_bitmaps = matches!(kind, RowsKind::Update | RowsKind::PartialUpdate);
        let mut ev = run(event_type, body, body_start, |i| {
            let (i, table_id) = if id_len == 4 {
                let (i, v) = u32_(i)?;
                (i, u64::from(v))
            } else {
                u48_(i)?
            };
            let (mut i, flags) = u16_(i)?;
            let mut extra_data: &[u8] = &[];
            if version == 2 {
                let (r, extra_len) = u16_(i)?;
                let (r, extra) = take(usize::from(extra_len.saturating_sub(2)))(r)?;
                extra_data = extra;
                i = r;
            }
            let (i, width) = packed(i)?;
            if width > (i.len() as u64) * 8 {
                return crate::parse::fail(i, "column count runs past the event");
            }
            let width = width as usize;
            let (i, columns_1) = take(width.div_ceil(8))(i)?;
            let (i, columns_2) = if two_bitmaps {
                take(width.div_ceil(8))(i)?
            } else {
                (i, &i[..0])
            };
            Ok((
                &i[i.len()..],
                RowsEvent {
                    offset: 0,
                    event_type,
                    kind,
                    version,
                    table_id,
                    flags,
                    extra_data,
                    width,
                    columns_1,
                    columns_2,
                    rows_data: Cow::Borrowed(i),
                    data_start: body_start + body.len() - i.len(),
                },
            ))
        })?;
        if compressed {
            let region = &body[ev.data_start - body_start..];
            let data = mariadb_uncompress(region).map_err(|reason| Error::Decompress {
                offset: 0,
                event_type,
                reason,
            })?;
            ev.rows_data = Cow::Owned(data);
        }
        Ok(ev)
    }

    /// Whether this event ends its statement.
    pub fn is_stmt_end(&self) -> bool {
        self.flags & STMT_END_F != 0
    }

    /// Iterates the row changes, decoding with `table` (the context's map
    /// for [`RowsEvent::table_id`]).
    ///
    /// # Errors
    /// [`Error::Malformed`] if the table map's column count differs from the
    /// event's width.
    pub fn rows<'s, 't>(&'s self, table: &'t TableMap) -> Result<Rows<'s, 't>> {
        if table.columns.len() != self.width {
            return Err(Error::Malformed {
                offset: self.offset,
                event_type: self.event_type,
                at: 0,
                reason: "rows event width differs from its table map",
            });
        }
        Ok(Rows {
            ev: self,
            table,
            data: &self.rows_data,
            pos: 0,
            failed: false,
        })
    }
}

impl<'s, 't> Rows<'s, 't> {
    /// An iterator that yields nothing (empty "dummy" rows events of old
    /// servers, which may refer to a table id without a map).
    pub(crate) fn empty(ev: &'s RowsEvent<'s>, table: &'t TableMap) -> Self {
        Rows {
            ev,
            table,
            data: &[],
            pos: 0,
            failed: false,
        }
    }
}

/// Iterator over the row changes of one rows event.
#[derive(Debug, Clone)]
pub struct Rows<'s, 't> {
    ev: &'s RowsEvent<'s>,
    table: &'t TableMap,
    data: &'s [u8],
    pos: usize,
    failed: bool,
}

/// One row change: before and/or after image.
#[derive(Debug, Clone, Copy)]
pub struct RowChange<'r, 't> {
    /// Row before the change (UPDATE, DELETE).
    pub before: Option<RowImage<'r, 't>>,
    /// Row after the change (WRITE, UPDATE).
    pub after: Option<RowImage<'r, 't>>,
}

/// One row image. Iterate its values with [`RowImage::values`].
#[derive(Debug, Clone, Copy)]
pub struct RowImage<'r, 't> {
    table: &'t TableMap,
    present: &'r [u8],
    nulls: &'r [u8],
    /// The rows data of the event and the range of this image's values.
    data: &'r [u8],
    start: usize,
    end: usize,
    partial_json: Option<&'r [u8]>,
    offset: u64,
    event_type: EventType,
    at: usize,
}

#[inline(always)]
fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i >> 3).is_some_and(|b| b & (1 << (i & 7)) != 0)
}

impl<'s, 't> Rows<'s, 't> {
    fn error(&self, at: usize, reason: &'static str) -> Error {
        Error::Malformed {
            offset: self.ev.offset,
            event_type: self.ev.event_type,
            at: self.ev.data_start + at,
            reason,
        }
    }

    /// Reads one image starting at `self.pos`.
    fn image(&mut self, present: &'s [u8], after: bool) -> Result<RowImage<'s, 't>> {
        let data = self.data;
        let mut pos = self.pos;
        let mut partial_json = None;
        if after && self.ev.kind == RowsKind::PartialUpdate {
            let (rest, opts) =
                packed(&data[pos..]).map_err(|_| self.error(pos, "bad value_options"))?;
            pos = data.len() - rest.len();
            if opts & 1 != 0 {
                let n = self.table.json_columns.div_ceil(8);
                let b = data
                    .get(pos..pos + n)
                    .ok_or_else(|| self.error(pos, "partial-JSON bitmap past the end"))?;
                partial_json = Some(b);
                pos += n;
            }
        }
        let n_present = present
            .iter()
            .map(|b| b.count_ones() as usize)
            .sum::<usize>()
            .min(self.ev.width);
        let nlen = n_present.div_ceil(8);
        let nulls = data
            .get(pos..pos + nlen)
            .ok_or_else(|| self.error(pos, "null bitmap past the end of the event"))?;
        pos += nlen;
        let start = pos;
        let mut k = 0usize;
        for (idx, col) in self.table.columns.iter().enumerate() {
            if !bit(present, idx) {
                continue;
            }
            let is_null = bit(nulls, k);
            k += 1;
            if is_null {
                continue;
            }
            let partial = partial_json
                .zip(col.json_ordinal)
                .is_some_and(|(b, j)| bit(b, j));
            if partial {
                decode_value(col, data, &mut pos, true).map_err(|r| self.error(pos, r))?;
            } else {
                skip_value(col, data, &mut pos).map_err(|r| self.error(pos, r))?;
            }
        }
        let img = RowImage {
            table: self.table,
            present,
            nulls,
            data,
            start,
            end: pos,
            partial_json,
            offset: self.ev.offset,
            event_type: self.ev.event_type,
            at: self.ev.data_start,
        };
        self.pos = pos;
        Ok(img)
    }
}

impl<'s, 't> Iterator for Rows<'s, 't> {
    type Item = Result<RowChange<'s, 't>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let ev = self.ev;
        let start = self.pos;
        let r = (|| {
            Ok(match ev.kind {
                RowsKind::Write => RowChange {
                    before: None,
                    after: Some(self.image(ev.columns_1, true)?),
                },
                RowsKind::Delete => RowChange {
                    before: Some(self.image(ev.columns_1, false)?),
                    after: None,
                },
                RowsKind::Update | RowsKind::PartialUpdate => {
                    let before = self.image(ev.columns_1, false)?;
                    let after = self.image(ev.columns_2, true)?;
                    RowChange {
                        before: Some(before),
                        after: Some(after),
                    }
                }
            })
        })();
        // A change that occupies no bytes (no present columns) would repeat
        // forever: no server writes one, so it is corrupt input.
        let r = match r {
            Ok(_) if self.pos == start => Err(self.error(start, "row image without any columns")),
            other => other,
        };
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

impl<'r, 't> RowImage<'r, 't> {
    /// The table this image belongs to.
    pub fn table(&self) -> &'t TableMap {
        self.table
    }

    /// Whether column `idx` is in this image (MINIMAL/NOBLOB images omit some).
    pub fn is_present(&self, idx: usize) -> bool {
        bit(self.present, idx)
    }

    /// Bytes of the image's values (after the null bitmap).
    pub fn value_bytes(&self) -> &'r [u8] {
        &self.data[self.start..self.end]
    }

    /// Iterates `(column index, value)` for every present column, in order.
    pub fn values(&self) -> Values<'r, 't> {
        Values {
            img: *self,
            idx: 0,
            k: 0,
            pos: self.start,
        }
    }

    /// Value of column `idx`; `None` if the column is absent from the image.
    ///
    /// # Errors
    /// As [`Values`].
    pub fn get(&self, idx: usize) -> Option<Result<Value<'r>>> {
        if !self.is_present(idx) {
            return None;
        }
        self.values()
            .find(|r| r.as_ref().map_or(true, |(i, _)| *i == idx))
            .map(|r| r.map(|(_, v)| v))
    }
}

/// Iterator over the values of one image: `(column index, value)`.
#[derive(Debug, Clone)]
pub struct Values<'r, 't> {
    img: RowImage<'r, 't>,
    idx: usize,
    k: usize,
    pos: usize,
}

impl<'r> Iterator for Values<'r, '_> {
    type Item = Result<(usize, Value<'r>)>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let cols = &self.img.table.columns;
        while self.idx < cols.len() {
            let idx = self.idx;
            self.idx += 1;
            if !bit(self.img.present, idx) {
                continue;
            }
            let is_null = bit(self.img.nulls, self.k);
            self.k += 1;
            if is_null {
                return Some(Ok((idx, Value::Null)));
            }
            let col = &cols[idx];
            let partial = self
                .img
                .partial_json
                .zip(col.json_ordinal)
                .is_some_and(|(b, j)| bit(b, j));
            return Some(
                decode_value(col, self.img.data, &mut self.pos, partial)
                    .map(|v| (idx, v))
                    .map_err(|reason| {
                        self.idx = cols.len();
                        Error::Malformed {
                            offset: self.img.offset,
                            event_type: self.img.event_type,
                            at: self.img.at + self.pos,
                            reason,
                        }
                    }),
            );
        }
        None
    }
}
