//! nom building blocks shared by the event parsers: little-endian integers,
//! MySQL packed ("length-encoded") integers, the serialization library's
//! varlen integers, and the bridge from nom errors to [`Error`].

use nom::{IResult, Parser, error::ErrorKind};

use crate::error::Error;
use crate::event_type::EventType;

/// nom error: where (as bytes left) and why parsing stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PErr {
    pub(crate) remaining: usize,
    pub(crate) reason: &'static str,
}

impl<'a> nom::error::ParseError<&'a [u8]> for PErr {
    fn from_error_kind(input: &'a [u8], kind: ErrorKind) -> Self {
        let reason = match kind {
            ErrorKind::Eof | ErrorKind::Complete => "unexpected end of event",
            _ => "unexpected end of event or invalid field",
        };
        PErr {
            remaining: input.len(),
            reason,
        }
    }
    fn append(_: &'a [u8], _: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, T> = IResult<&'a [u8], T, PErr>;

/// Stops parsing with `reason` at `i`.
pub(crate) fn fail<'a, T>(i: &'a [u8], reason: &'static str) -> PResult<'a, T> {
    Err(nom::Err::Failure(PErr {
        remaining: i.len(),
        reason,
    }))
}

pub(crate) fn u8_(i: &[u8]) -> PResult<'_, u8> {
    nom::number::complete::le_u8(i)
}
pub(crate) fn u16_(i: &[u8]) -> PResult<'_, u16> {
    nom::number::complete::le_u16(i)
}
pub(crate) fn u24_(i: &[u8]) -> PResult<'_, u32> {
    nom::number::complete::le_u24(i)
}
pub(crate) fn u32_(i: &[u8]) -> PResult<'_, u32> {
    nom::number::complete::le_u32(i)
}
pub(crate) fn u64_(i: &[u8]) -> PResult<'_, u64> {
    nom::number::complete::le_u64(i)
}
pub(crate) fn i64_(i: &[u8]) -> PResult<'_, i64> {
    nom::number::complete::le_i64(i)
}
/// 48-bit little-endian integer (table ids).
pub(crate) fn u48_(i: &[u8]) -> PResult<'_, u64> {
    let (i, lo) = u32_(i)?;
    let (i, hi) = u16_(i)?;
    Ok((i, u64::from(lo) | u64::from(hi) << 32))
}
/// 56-bit little-endian integer (GTID commit timestamps).
pub(crate) fn u56_(i: &[u8]) -> PResult<'_, u64> {
    let (i, lo) = u32_(i)?;
    let (i, hi) = u24_(i)?;
    Ok((i, u64::from(lo) | u64::from(hi) << 32))
}

pub(crate) fn take(n: usize) -> impl Fn(&[u8]) -> PResult<'_, &[u8]> {
    move |i: &[u8]| nom::bytes::complete::take(n).parse(i)
}

/// A byte slice whose length comes as a packed integer.
pub(crate) fn packed_bytes(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, n) = packed(i)?;
    let Ok(n) = usize::try_from(n) else {
        return fail(i, "length does not fit in memory");
    };
    if n > i.len() {
        return fail(i, "length runs past the end of the event");
    }
    take(n)(i)
}

/// MySQL packed integer: `<251` one byte, `0xfc`+u16, `0xfd`+u24, `0xfe`+u64.
pub(crate) fn packed(i: &[u8]) -> PResult<'_, u64> {
    let (rest, b) = u8_(i)?;
    match b {
        0..=250 => Ok((rest, u64::from(b))),
        0xfc => u16_(rest).map(|(r, v)| (r, u64::from(v))),
        0xfd => u24_(rest).map(|(r, v)| (r, u64::from(v))),
        0xfe => u64_(rest),
        _ => fail(i, "invalid packed integer prefix"),
    }
}

/// Unsigned varlen integer of MySQL's serialization library: the number of
/// trailing 1-bits of the first byte is the number of extra bytes.
pub(crate) fn varlen(i: &[u8]) -> PResult<'_, u64> {
    let (_, first) = u8_(i)?;
    let ones = first.trailing_ones() as usize;
    if ones == 8 {
        let (i, _) = u8_(i)?;
        return u64_(i);
    }
    let n = ones + 1;
    let (rest, raw) = take(n)(i)?;
    let mut le = [0u8; 8];
    le[..n].copy_from_slice(raw);
    Ok((rest, u64::from_le_bytes(le) >> n))
}

/// Signed (zig-zag) varlen integer.
pub(crate) fn varlen_signed(i: &[u8]) -> PResult<'_, i64> {
    let (i, u) = varlen(i)?;
    let magnitude = (u >> 1) as i64;
    Ok((
        i,
        if u & 1 == 1 {
            -magnitude - 1
        } else {
            magnitude
        },
    ))
}

/// Runs `parser` over `body` and turns a nom error into [`Error::Malformed`],
/// with `at` counted from the start of the event (`body_start` = bytes
/// before `body` in the event).
pub(crate) fn run<'a, T>(
    event_type: EventType,
    body: &'a [u8],
    body_start: usize,
    parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> Result<T, Error> {
    match parser(body) {
        Ok((_, v)) => Ok(v),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(Error::Malformed {
            offset: 0,
            event_type,
            at: body_start + body.len().saturating_sub(e.remaining),
            reason: e.reason,
        }),
        Err(nom::Err::Incomplete(_)) => Err(Error::Malformed {
            offset: 0,
            event_type,
            at: body_start + body.len(),
            reason: "unexpected end of event",
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn packed_integers() {
        assert_eq!(packed(&[250]).unwrap().1, 250);
        assert_eq!(packed(&[0xfc, 0x34, 0x12]).unwrap().1, 0x1234);
        assert_eq!(packed(&[0xfd, 1, 2, 3]).unwrap().1, 0x030201);
        assert!(packed(&[0xfc, 1]).is_err());
        assert!(packed(&[0xff]).is_err());
    }

    #[test]
    fn varlen_integers() {
        // 5 << 1 (one byte, low bit 0 terminates)
        assert_eq!(varlen(&[10]).unwrap().1, 5);
        // two bytes: low bits 01, value 300
        let enc = (300u64 << 2 | 1).to_le_bytes();
        assert_eq!(varlen(&enc[..2]).unwrap().1, 300);
        assert_eq!(varlen_signed(&[6]).unwrap().1, -2);
        assert_eq!(varlen_signed(&[8]).unwrap().1, 2);
    }
}
