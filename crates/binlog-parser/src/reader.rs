//! Framing over a whole file in memory ([`BinlogFile`]) or a byte stream
//! with bounded memory ([`BinlogReader`]).

use std::io::Read;

use crate::error::{Error, Result};
use crate::events::{DecodeContext, Event};
use crate::header::{BINLOG_MAGIC, EventHeader, HEADER_LEN, MAX_EVENT_SIZE};

// Framed events are the header's vocabulary (events decode them); this is
// their public path.
pub use crate::header::RawEvent;

/// The error for input that ends inside an event's common header.
fn short_header(offset: u64, available: usize) -> Error {
    Error::Truncated {
        offset,
        needed: HEADER_LEN as u64,
        available: available as u64,
    }
}

/// Checks the four-byte magic at the start of a binlog.
fn check_magic(data: &[u8]) -> Result<()> {
    if data.len() < 4 || data[..4] != BINLOG_MAGIC {
        return Err(Error::BadMagic {
            found: data[..data.len().min(4)].to_vec(),
        });
    }
    Ok(())
}

/// Iterates the events of a binlog file held in memory. Events borrow from
/// the slice.
///
/// Framing errors (truncation, checksum mismatch) end the iteration after
/// being returned; an event whose body is malformed is returned as an error
/// and iteration continues with the next event.
///
/// ```
/// use binlog_parser::{BinlogFile, EventData};
/// # let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/binlogs/mariadb-bin.000001")).unwrap();
/// let mut file = BinlogFile::new(&bytes)?;
/// let mut row_images = 0;
/// while let Some(event) = file.next_event() {
///     if let EventData::Rows(rows) = event?.data {
///         for change in file.context().rows(&rows)? {
///             let change = change?;
///             for image in change.before.iter().chain(change.after.iter()) {
///                 for value in image.values() {
///                     let (_column, _value) = value?;
///                 }
///                 row_images += 1;
///             }
///         }
///     }
/// }
/// assert_eq!(row_images, 2);
/// # Ok::<(), binlog_parser::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BinlogFile<'a> {
    data: &'a [u8],
    pos: usize,
    ctx: DecodeContext,
    done: bool,
}

impl<'a> BinlogFile<'a> {
    /// Starts reading `data`, which must begin with the binlog magic.
    ///
    /// # Errors
    /// [`Error::BadMagic`].
    pub fn new(data: &'a [u8]) -> Result<Self> {
        check_magic(data)?;
        Ok(BinlogFile {
            data,
            pos: 4,
            ctx: DecodeContext::new(),
            done: false,
        })
    }

    /// Reads events starting at `pos` (e.g. resuming after an FDE was fed to
    /// `ctx`); no magic is expected there.
    pub fn at(data: &'a [u8], pos: usize, ctx: DecodeContext) -> Self {
        BinlogFile {
            data,
            pos,
            ctx,
            done: false,
        }
    }

    /// The decoding context (format description, table maps).
    pub fn context(&self) -> &DecodeContext {
        &self.ctx
    }

    /// Mutable context.
    pub fn context_mut(&mut self) -> &mut DecodeContext {
        &mut self.ctx
    }

    /// Offset of the next event.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    /// Frames the next event and steps past it; a framing error ends the
    /// iteration after being returned.
    fn frame_next(&mut self) -> Option<Result<RawEvent<'a>>> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let offset = self.pos as u64;
        let rest = &self.data[self.pos..];
        let framed = if rest.len() < HEADER_LEN {
            Err(short_header(offset, rest.len()))
        } else {
            self.ctx.frame(rest, offset)
        };
        match &framed {
            Ok(raw) => self.pos += raw.bytes.len(),
            Err(_) => self.done = true,
        }
        Some(framed)
    }

    /// Frames the next event (checksum verified) without decoding its body.
    /// An FDE is decoded anyway: later framing depends on it.
    pub fn next_raw(&mut self) -> Option<Result<RawEvent<'a>>> {
        let raw = match self.frame_next()? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        if raw.header.event_type == crate::EventType::FormatDescription
            && let Err(e) = self.ctx.decode(raw)
        {
            return Some(Err(e));
        }
        Some(Ok(raw))
    }

    /// Frames and decodes the next event.
    pub fn next_event(&mut self) -> Option<Result<Event<'a>>> {
        Some(self.frame_next()?.and_then(|raw| self.ctx.decode(raw)))
    }
}

impl<'a> Iterator for BinlogFile<'a> {
    type Item = Result<Event<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_event()
    }
}

/// Reads events from any [`Read`] (a file being written, a pipe) with memory
/// bounded by the largest event. Each event borrows the reader's buffer
/// until the next call.
///
/// ```
/// use binlog_parser::{BinlogReader, EventData};
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/binlogs/mariadb-bin.000001");
/// let mut reader = BinlogReader::new(std::fs::File::open(path).unwrap())?;
/// let mut tables = Vec::new();
/// while let Some((event, _ctx)) = reader.next_event()? {
///     if let EventData::TableMap(tm) = &event.data {
///         tables.push(String::from_utf8_lossy(tm.table).into_owned());
///     }
/// }
/// assert!(!tables.is_empty());
/// # Ok::<(), binlog_parser::Error>(())
/// ```
#[derive(Debug)]
pub struct BinlogReader<R> {
    inner: R,
    buf: Vec<u8>,
    offset: u64,
    ctx: DecodeContext,
    max_event_size: u32,
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> BinlogReader<R> {
    /// Reads and checks the magic.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::BadMagic`].
    pub fn new(mut inner: R) -> Result<Self> {
        let mut magic = [0u8; 4];
        let n =
            read_full(&mut inner, &mut magic).map_err(|source| Error::Io { offset: 0, source })?;
        check_magic(&magic[..n])?;
        Ok(Self::at(inner, 4, DecodeContext::new()))
    }

    /// Reads from a stream already positioned at `offset` (no magic there).
    pub fn at(inner: R, offset: u64, ctx: DecodeContext) -> Self {
        BinlogReader {
            inner,
            buf: Vec::new(),
            offset,
            ctx,
            max_event_size: MAX_EVENT_SIZE,
        }
    }

    /// Refuse events larger than `max` bytes (bounds memory; default 1 GiB).
    pub fn set_max_event_size(&mut self, max: u32) {
        self.max_event_size = max;
    }

    /// Offset of the next event.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// The decoding context.
    pub fn context(&self) -> &DecodeContext {
        &self.ctx
    }

    /// Mutable context.
    pub fn context_mut(&mut self) -> &mut DecodeContext {
        &mut self.ctx
    }

    /// Reads the next event into the internal buffer and frames it. `Ok(None)`
    /// at a clean end of stream (between events).
    fn fill(&mut self) -> Result<Option<usize>> {
        let offset = self.offset;
        let mut header = [0u8; HEADER_LEN];
        let n = read_full(&mut self.inner, &mut header)
            .map_err(|source| Error::Io { offset, source })?;
        if n == 0 {
            return Ok(None);
        }
        if n < HEADER_LEN {
            return Err(short_header(offset, n));
        }
        let h = EventHeader::parse(&header).map_err(|e| e.at_event(offset))?;
        if h.event_size > self.max_event_size {
            return Err(Error::Malformed {
                offset,
                event_type: h.event_type,
                at: 9,
                reason: "event larger than the reader's maximum event size",
            });
        }
        let size = h.event_size as usize;
        self.buf.clear();
        self.buf.extend_from_slice(&header);
        self.buf.resize(size, 0);
        let got = read_full(&mut self.inner, &mut self.buf[HEADER_LEN..])
            .map_err(|source| Error::Io { offset, source })?;
        if got < size - HEADER_LEN {
            return Err(Error::Truncated {
                offset,
                needed: size as u64,
                available: (HEADER_LEN + got) as u64,
            });
        }
        self.offset += size as u64;
        Ok(Some(size))
    }

    /// Reads, frames and decodes the next event. Returns the event with the
    /// context it was decoded in (for rows: the table maps).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Truncated`] (stream ends inside an event),
    /// checksum and decoding errors.
    pub fn next_event(&mut self) -> Result<Option<(Event<'_>, &DecodeContext)>> {
        let offset = self.offset;
        if self.fill()?.is_none() {
            return Ok(None);
        }
        let Self { buf, ctx, .. } = self;
        let raw = ctx.frame(buf, offset)?;
        let ev = ctx.decode(raw)?;
        Ok(Some((ev, &*ctx)))
    }
}
