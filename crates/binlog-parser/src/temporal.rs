//! Temporal values: DATE, TIME, DATETIME and TIMESTAMP as MySQL stores them
//! (zero dates allowed). Row values and binary JSON both hold them, so this
//! depends only on the [`calendar`](crate::calendar). Their public path is
//! [`value`](crate::value).

use std::fmt;

use crate::calendar::civil_from_days;

/// A calendar date (DATE; zero parts allowed, as MySQL does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    /// Year 0–9999.
    pub year: u16,
    /// Month 0–12.
    pub month: u8,
    /// Day 0–31.
    pub day: u8,
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A TIME value (may be negative and exceed 24 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// Sign.
    pub negative: bool,
    /// Hours 0–838.
    pub hours: u16,
    /// Minutes.
    pub minutes: u8,
    /// Seconds.
    pub seconds: u8,
    /// Microseconds.
    pub micros: u32,
}

impl Time {
    /// Signed microseconds.
    pub fn total_micros(&self) -> i64 {
        let v = ((i64::from(self.hours) * 60 + i64::from(self.minutes)) * 60
            + i64::from(self.seconds))
            * 1_000_000
            + i64::from(self.micros);
        if self.negative { -v } else { v }
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        write!(
            f,
            "{:02}:{:02}:{:02}",
            self.hours, self.minutes, self.seconds
        )?;
        if self.micros != 0 {
            write!(f, ".{:06}", self.micros)?;
        }
        Ok(())
    }
}

/// A DATETIME value (no time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Year.
    pub year: u16,
    /// Month.
    pub month: u8,
    /// Day.
    pub day: u8,
    /// Hour.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
    /// Microseconds.
    pub micros: u32,
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.micros != 0 {
            write!(f, ".{:06}", self.micros)?;
        }
        Ok(())
    }
}

/// A TIMESTAMP: seconds since the epoch (UTC) and microseconds; 0 = zero date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since 1970-01-01 UTC.
    pub seconds: u32,
    /// Microseconds.
    pub micros: u32,
}

impl Timestamp {
    /// The instant as a UTC calendar date and time (the zero timestamp
    /// gives `0000-00-00 00:00:00`, as MySQL prints it).
    pub fn to_utc(&self) -> DateTime {
        if self.seconds == 0 {
            return DateTime {
                year: 0,
                month: 0,
                day: 0,
                hour: 0,
                minute: 0,
                second: 0,
                micros: self.micros,
            };
        }
        let secs = i64::from(self.seconds);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        // A u32 of seconds ends in 2106: year, month and day all fit.
        DateTime {
            year: year as u16,
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
            micros: self.micros,
        }
    }
}

impl fmt::Display for Timestamp {
    /// UTC date and time, e.g. `2022-04-20 22:18:04`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_utc().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::days_from_civil;

    /// The arithmetic `Timestamp::to_utc` carried before it used the
    /// calendar module, kept here only to show the two agree.
    fn former_to_utc_date(days: i64) -> (i64, u32, u32) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (yoe + era * 400 + i64::from(month <= 2), month, day)
    }

    #[test]
    fn the_calendar_gives_the_former_results_over_the_whole_date_range() {
        let (first, last) = (days_from_civil(1, 1, 1), days_from_civil(9999, 12, 31));
        for day in first..=last {
            let date = civil_from_days(day);
            assert_eq!(date, former_to_utc_date(day), "day {day}");
            assert_eq!(days_from_civil(date.0, date.1, date.2), day, "{date:?}");
        }
        assert_eq!(civil_from_days(first), (1, 1, 1));
        assert_eq!(civil_from_days(last), (9999, 12, 31));
    }

    #[test]
    fn every_timestamp_day_renders_its_utc_date() {
        // Every day a TIMESTAMP can hold (u32 seconds: up to 2106-02-07),
        // at a time of day that moves through the clock.
        let last_day = i64::from(u32::MAX) / 86_400;
        for day in 1..=last_day {
            let second_of_day = (day * 7_919) % 86_400;
            let seconds = day * 86_400 + second_of_day;
            let Ok(seconds) = u32::try_from(seconds) else {
                // Only the last day ends before its chosen second.
                assert_eq!(day, last_day);
                continue;
            };
            let utc = Timestamp { seconds, micros: 5 }.to_utc();
            let (y, m, d) = former_to_utc_date(day);
            let expected = DateTime {
                year: y as u16,
                month: m as u8,
                day: d as u8,
                hour: (second_of_day / 3600) as u8,
                minute: (second_of_day / 60 % 60) as u8,
                second: (second_of_day % 60) as u8,
                micros: 5,
            };
            assert_eq!(utc, expected, "{seconds}");
        }
        let max = Timestamp {
            seconds: u32::MAX,
            micros: 0,
        };
        assert_eq!(max.to_string(), "2106-02-07 06:28:15");
        let zero = Timestamp {
            seconds: 0,
            micros: 0,
        };
        assert_eq!(zero.to_string(), "0000-00-00 00:00:00");
    }
}
