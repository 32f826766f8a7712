//! The binary row format of prepared-statement results, walked without
//! copying.
//!
//! The snapshot reads chunks this way because the server then sends numbers
//! and temporals in their native form: no integer-to-digits formatting on
//! the server, no digits-to-integer parsing here, and FLOAT arrives as its
//! four stored bytes (the text protocol prints only six significant digits).
//!
//! A row is `0x00`, a NULL bitmap of `(columns + 9) / 8` bytes whose first
//! two bits are reserved, then the non-NULL values in column order. Each
//! value's layout follows its column's wire type: fixed-width little-endian
//! integers and floats, a length byte and a packed struct for temporals, a
//! length-encoded string for everything else (DECIMAL digits, text, BLOBs,
//! BIT bytes, JSON, geometry).

use crate::conn::ResultColumn;
use crate::error::{Error, Result};
// The binlog decoder's temporal values: the same fields, whichever wire carried them.
use binlog_parser::{DateTime, Time};

/// `UNSIGNED_FLAG` of a column definition.
const UNSIGNED_FLAG: u16 = 32;

/// How one column's values are laid out in a binary row.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum WireLayout {
    /// A little-endian integer of this many bytes, sign-extended unless unsigned.
    Int {
        /// 1, 2, 4 or 8.
        width: u8,
        /// The column is UNSIGNED.
        unsigned: bool,
    },
    /// A little-endian IEEE single.
    Float,
    /// A little-endian IEEE double.
    Double,
    /// DATE, DATETIME, TIMESTAMP: length byte, then year, month, day,
    /// hour, minute, second, microseconds as far as the length reaches.
    DateTime,
    /// TIME: length byte, then sign, days, hour, minute, second, microseconds.
    Time,
    /// A length-encoded byte string.
    Bytes,
    /// MYSQL_TYPE_NULL: the value is always NULL (nothing on the wire).
    Null,
}

impl WireLayout {
    /// The layout of a result column.
    pub fn of(column: &ResultColumn) -> Self {
        let unsigned = column.flags & UNSIGNED_FLAG != 0;
        match column.column_type {
            0x01 => Self::Int { width: 1, unsigned },
            // SHORT and YEAR
            0x02 | 0x0d => Self::Int { width: 2, unsigned },
            // LONG and INT24
            0x03 | 0x09 => Self::Int { width: 4, unsigned },
            0x08 => Self::Int { width: 8, unsigned },
            0x04 => Self::Float,
            0x05 => Self::Double,
            // TIMESTAMP, DATE, DATETIME, NEWDATE, TIMESTAMP2, DATETIME2
            0x07 | 0x0a | 0x0c | 0x0e | 0x11 | 0x12 => Self::DateTime,
            // TIME, TIME2
            0x0b | 0x13 => Self::Time,
            0x06 => Self::Null,
            _ => Self::Bytes,
        }
    }
}

/// One value of a binary row, borrowing from the packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinaryCell<'a> {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A FLOAT.
    Float(f32),
    /// A DOUBLE.
    Double(f64),
    /// A DATE, DATETIME or TIMESTAMP (all fields zero for the zero date).
    DateTime(DateTime),
    /// A TIME.
    Time(Time),
    /// Any other value: its bytes as sent.
    Bytes(&'a [u8]),
}

/// Walks the values of one binary row packet.
#[derive(Debug)]
pub struct BinaryRow<'a> {
    nulls: &'a [u8],
    buf: &'a [u8],
    index: usize,
}

fn short() -> Error {
    Error::Protocol("binary row packet ends early".into())
}

impl<'a> BinaryRow<'a> {
    /// Starts at the first value of `packet`, a row of `columns` columns.
    ///
    /// # Errors
    /// [`Error::Protocol`] when the packet is not a binary row.
    pub fn new(packet: &'a [u8], columns: usize) -> Result<Self> {
        let bitmap = (columns + 9) / 8;
        match packet.split_first() {
            Some((0x00, rest)) if rest.len() >= bitmap => {
                let (nulls, buf) = rest.split_at(bitmap);
                Ok(Self {
                    nulls,
                    buf,
                    index: 0,
                })
            }
            _ => Err(Error::Protocol("not a binary result row".into())),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(short());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn lenenc_len(&mut self) -> Result<usize> {
        let first = self.take(1)?[0];
        let n = match first {
            0..=0xfa => return Ok(usize::from(first)),
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            _ => return Err(Error::Protocol("bad length in a binary row".into())),
        };
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(self.take(n)?);
        usize::try_from(u64::from_le_bytes(b)).map_err(|_| short())
    }

    /// The next value, laid out as `layout` says: `None` for SQL NULL.
    ///
    /// # Errors
    /// [`Error::Protocol`] when the packet ends early or a length is bad.
    #[inline]
    pub fn next_cell(&mut self, layout: WireLayout) -> Result<Option<BinaryCell<'a>>> {
        let bit = self.index + 2;
        self.index += 1;
        let null = self
            .nulls
            .get(bit / 8)
            .is_none_or(|b| b & (1 << (bit % 8)) != 0);
        if null || layout == WireLayout::Null {
            return Ok(None);
        }
        Ok(Some(match layout {
            WireLayout::Int { width, unsigned } => {
                let raw = self.take(usize::from(width))?;
                let mut b = [0u8; 8];
                b[..raw.len()].copy_from_slice(raw);
                let bits = u64::from_le_bytes(b);
                if unsigned {
                    BinaryCell::UInt(bits)
                } else {
                    // Sign-extend from the wire width.
                    let shift = 64 - 8 * u32::from(width);
                    BinaryCell::Int(((bits << shift) as i64) >> shift)
                }
            }
            WireLayout::Float => {
                let raw = self.take(4)?;
                BinaryCell::Float(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
            }
            WireLayout::Double => {
                let mut b = [0u8; 8];
                b.copy_from_slice(self.take(8)?);
                BinaryCell::Double(f64::from_le_bytes(b))
            }
            WireLayout::DateTime => {
                let len = usize::from(self.take(1)?[0]);
                let raw = self.take(len)?;
                BinaryCell::DateTime(date_time_parts(raw)?)
            }
            WireLayout::Time => {
                let len = usize::from(self.take(1)?[0]);
                let raw = self.take(len)?;
                BinaryCell::Time(time_parts(raw)?)
            }
            WireLayout::Bytes | WireLayout::Null => {
                let len = self.lenenc_len()?;
                BinaryCell::Bytes(self.take(len)?)
            }
        }))
    }
}

fn micros(raw: &[u8]) -> u32 {
    u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])
}

fn date_time_parts(raw: &[u8]) -> Result<DateTime> {
    let mut p = DateTime {
        year: 0,
        month: 0,
        day: 0,
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
    };
    if !matches!(raw.len(), 0 | 4 | 7 | 11) {
        return Err(Error::Protocol(format!(
            "a binary DATETIME of {} bytes",
            raw.len()
        )));
    }
    if raw.len() >= 4 {
        p.year = u16::from_le_bytes([raw[0], raw[1]]);
        p.month = raw[2];
        p.day = raw[3];
    }
    if raw.len() >= 7 {
        p.hour = raw[4];
        p.minute = raw[5];
        p.second = raw[6];
    }
    if raw.len() == 11 {
        p.micros = micros(&raw[7..]);
    }
    Ok(p)
}

fn time_parts(raw: &[u8]) -> Result<Time> {
    let mut p = Time {
        negative: false,
        hours: 0,
        minutes: 0,
        seconds: 0,
        micros: 0,
    };
    if !matches!(raw.len(), 0 | 8 | 12) {
        return Err(Error::Protocol(format!(
            "a binary TIME of {} bytes",
            raw.len()
        )));
    }
    if raw.len() >= 8 {
        p.negative = raw[0] == 1;
        // Days and hours on the wire; the server's range is ±838 hours.
        let hours = u64::from(micros(&raw[1..5])) * 24 + u64::from(raw[5]);
        p.hours = u16::try_from(hours)
            .map_err(|_| Error::Protocol("a binary TIME beyond 65535 hours".into()))?;
        p.minutes = raw[6];
        p.seconds = raw[7];
    }
    if raw.len() == 12 {
        p.micros = micros(&raw[8..]);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(column_type: u8, flags: u16) -> WireLayout {
        WireLayout::of(&ResultColumn {
            name: String::new(),
            column_type,
            flags,
            charset: 63,
        })
    }

    #[test]
    fn values_follow_their_layouts_and_the_null_bitmap() {
        // 6 columns: TINY -1, NULL, LONGLONG UNSIGNED max, FLOAT 10044.125,
        // DATETIME 2024-02-29 13:14:15.000123, VAR_STRING "hé".
        let mut p = vec![0x00, 0b0000_1000];
        p.push(0xff);
        p.extend_from_slice(&u64::MAX.to_le_bytes());
        p.extend_from_slice(&10044.125f32.to_le_bytes());
        p.extend_from_slice(&[11, 0xe8, 0x07, 2, 29, 13, 14, 15]);
        p.extend_from_slice(&123u32.to_le_bytes());
        p.extend_from_slice(&[3, b'h', 0xc3, 0xa9]);
        let layouts = [
            column(0x01, 0),
            column(0x03, 0),
            column(0x08, UNSIGNED_FLAG),
            column(0x04, 0),
            column(0x0c, 0),
            column(0xfd, 0),
        ];
        let mut row = BinaryRow::new(&p, layouts.len()).expect("row");
        let cells: Vec<_> = layouts
            .iter()
            .map(|l| row.next_cell(*l).expect("cell"))
            .collect();
        assert_eq!(
            cells,
            vec![
                Some(BinaryCell::Int(-1)),
                None,
                Some(BinaryCell::UInt(u64::MAX)),
                Some(BinaryCell::Float(10044.125)),
                Some(BinaryCell::DateTime(DateTime {
                    year: 2024,
                    month: 2,
                    day: 29,
                    hour: 13,
                    minute: 14,
                    second: 15,
                    micros: 123,
                })),
                Some(BinaryCell::Bytes("hé".as_bytes())),
            ]
        );
    }

    #[test]
    fn short_sizes_and_signs() {
        // SMALLINT -2, MEDIUMINT (INT24) -8388608, TIME -838:59:59 (34 days 22 h),
        // zero DATE (length 0), midnight DATETIME (length 4).
        let mut p = vec![0x00, 0x00];
        p.extend_from_slice(&(-2i16).to_le_bytes());
        p.extend_from_slice(&(-8_388_608i32).to_le_bytes());
        p.extend_from_slice(&[8, 1]);
        p.extend_from_slice(&34u32.to_le_bytes());
        p.extend_from_slice(&[22, 59, 59]);
        p.push(0);
        p.extend_from_slice(&[4, 0xd0, 0x07, 1, 2]);
        let layouts = [
            column(0x02, 0),
            column(0x09, 0),
            column(0x0b, 0),
            column(0x0a, 0),
            column(0x0c, 0),
        ];
        let mut row = BinaryRow::new(&p, layouts.len()).expect("row");
        let mut next = |i: usize| row.next_cell(layouts[i]).expect("cell");
        assert_eq!(next(0), Some(BinaryCell::Int(-2)));
        assert_eq!(next(1), Some(BinaryCell::Int(-8_388_608)));
        assert_eq!(
            next(2),
            Some(BinaryCell::Time(Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 59,
                micros: 0,
            }))
        );
        let midnight = |year, month, day| DateTime {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
        };
        assert_eq!(next(3), Some(BinaryCell::DateTime(midnight(0, 0, 0))));
        assert_eq!(next(4), Some(BinaryCell::DateTime(midnight(2000, 1, 2))));
    }

    #[test]
    fn any_bytes_under_any_layouts_give_values_or_errors_never_a_panic() {
        let types = [
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0f,
            0x10, 0xf5, 0xf6, 0xfc, 0xfd, 0xfe,
        ];
        // xorshift: reproducible without a dependency.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut whole, mut cut, mut refused) = (0, 0, 0);
        for _ in 0..20_000 {
            let columns = (next() % 12) as usize + 1;
            let layouts: Vec<_> = (0..columns)
                .map(|_| {
                    let t = types[(next() % types.len() as u64) as usize];
                    column(t, if next() % 2 == 0 { UNSIGNED_FLAG } else { 0 })
                })
                .collect();
            let len = (next() % 64) as usize;
            let mut packet: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = packet.first_mut() {
                *first = 0;
            }
            let Ok(mut row) = BinaryRow::new(&packet, columns) else {
                refused += 1;
                continue;
            };
            if layouts.iter().all(|l| row.next_cell(*l).is_ok()) {
                whole += 1;
            } else {
                cut += 1;
            }
        }
        // Every outcome was reached, so the loop did walk the decoder.
        assert!(
            whole > 1000 && cut > 1000 && refused > 100,
            "{whole} {cut} {refused}"
        );
    }

    #[test]
    fn truncated_and_malformed_rows_are_errors() {
        assert!(BinaryRow::new(&[0x01, 0, 0], 1).is_err(), "not a row");
        assert!(BinaryRow::new(&[0x00], 1).is_err(), "no bitmap");
        let mut row = BinaryRow::new(&[0x00, 0x00, 0x01], 1).expect("row");
        assert!(row.next_cell(column(0x08, 0)).is_err(), "8 bytes promised");
        let mut row = BinaryRow::new(&[0x00, 0x00, 5, 1, 2, 3, 4, 5], 1).expect("row");
        assert!(row.next_cell(column(0x0c, 0)).is_err(), "a 5-byte DATETIME");
        let mut far = vec![0x00, 0x00, 8, 0];
        far.extend_from_slice(&u32::MAX.to_le_bytes());
        far.extend_from_slice(&[0, 0, 0]);
        let mut row = BinaryRow::new(&far, 1).expect("row");
        assert!(
            row.next_cell(column(0x0b, 0)).is_err(),
            "a TIME of 4 G days"
        );
        let mut row = BinaryRow::new(&[0x00, 0x00, 0xfc, 0xff], 1).expect("row");
        assert!(row.next_cell(column(0xfc, 0)).is_err(), "length cut");
        let mut row = BinaryRow::new(&[0x00, 0x00, 0xfb], 1).expect("row");
        assert!(
            row.next_cell(column(0xfc, 0)).is_err(),
            "0xfb is no length here"
        );
    }
}
