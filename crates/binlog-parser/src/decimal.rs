//! Exact DECIMAL values in MySQL's binary format. Row values and binary JSON
//! both hold them, so this depends on nothing. Their public path is
//! [`value`](crate::value).

use std::fmt;

/// Exact DECIMAL in MySQL's binary format; render with `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal<'a> {
    /// Total digits.
    pub precision: u8,
    /// Digits after the point.
    pub scale: u8,
    /// The binary value.
    pub bytes: &'a [u8],
}

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const POW10: [u64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Bytes a DECIMAL(precision, scale) value takes.
pub fn decimal_size(precision: u8, scale: u8) -> usize {
    let intg = usize::from(precision.saturating_sub(scale));
    let frac = usize::from(scale);
    intg / 9 * 4 + DIG2BYTES[intg % 9] + frac / 9 * 4 + DIG2BYTES[frac % 9]
}

impl Decimal<'_> {
    /// Whether the value is negative.
    pub fn is_negative(&self) -> bool {
        self.bytes.first().is_some_and(|b| b & 0x80 == 0)
    }

    /// Calls `f(group_value, digits)` for each digit group in order, integer
    /// part first (the leading partial group, then full groups), then the
    /// fraction (full groups, then the trailing partial group).
    fn groups(&self, mut f: impl FnMut(u64, usize, bool)) {
        let neg = self.is_negative();
        let mask = if neg { 0xff } else { 0 };
        let intg = usize::from(self.precision.saturating_sub(self.scale));
        let frac = usize::from(self.scale);
        let mut pos = 0usize;
        let mut read = |n: usize| -> u64 {
            let mut v = 0u64;
            for k in 0..n {
                let mut b = self.bytes.get(pos + k).copied().unwrap_or(0) ^ mask;
                if pos + k == 0 {
                    b ^= 0x80;
                }
                v = v << 8 | u64::from(b);
            }
            pos += n;
            v
        };
        if intg % 9 > 0 {
            f(read(DIG2BYTES[intg % 9]), intg % 9, false);
        }
        for _ in 0..intg / 9 {
            f(read(4), 9, false);
        }
        for _ in 0..frac / 9 {
            f(read(4), 9, true);
        }
        if frac % 9 > 0 {
            f(read(DIG2BYTES[frac % 9]), frac % 9, true);
        }
    }

    /// The unscaled integer (value × 10^scale), if it fits in an i128
    /// (always for precision ≤ 38).
    pub fn to_i128(&self) -> Option<i128> {
        let mut acc: Option<i128> = Some(0);
        self.groups(|g, digits, _| {
            acc = acc
                .and_then(|a| a.checked_mul(i128::from(POW10[digits])))
                .and_then(|a| a.checked_add(i128::from(g)));
        });
        let v = acc?;
        Some(if self.is_negative() { -v } else { v })
    }
}

impl fmt::Display for Decimal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut int_started = false;
        let mut frac_started = false;
        let mut res = Ok(());
        if self.is_negative() {
            res = f.write_str("-");
        }
        self.groups(|g, digits, is_frac| {
            if res.is_err() {
                return;
            }
            if is_frac {
                if !frac_started {
                    if !int_started {
                        res = f.write_str("0");
                    }
                    int_started = true;
                    frac_started = true;
                    if res.is_ok() {
                        res = f.write_str(".");
                    }
                }
                if res.is_ok() {
                    res = write!(f, "{g:0digits$}");
                }
            } else if int_started {
                res = write!(f, "{g:09}");
            } else if g != 0 {
                int_started = true;
                res = write!(f, "{g}");
            }
        });
        res?;
        if !int_started {
            f.write_str("0")?;
        }
        Ok(())
    }
}
