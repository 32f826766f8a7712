//! Proleptic Gregorian day numbers: the one conversion between calendar
//! dates and days since 1970-01-01 that the decoder's users share (DATE and
//! DATETIME to Arrow, partition values from timestamps).
//!
//! ```
//! use binlog_parser::calendar::{civil_from_days, days_from_civil};
//! assert_eq!(days_from_civil(2000, 2, 29), 11_016);
//! assert_eq!(civil_from_days(11_016), (2000, 2, 29));
//! ```

/// Days since 1970-01-01 of the date `y-m-d` (month 1..=12, day 1..=31;
/// not range-checked, so out-of-range parts roll over arithmetically).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // Years start on March 1st here, so a leap day ends its 400-year era.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = i64::from((m + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(d) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `(year, month 1..=12, day 1..=31)` of a day since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Both fit: day 1..=31 and month 1..=12 by construction.
    let d = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let m = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    (year_of_era + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
    }

    #[test]
    fn round_trip_over_every_day_of_mysql_range() {
        let (first, last) = (days_from_civil(0, 1, 1), days_from_civil(9999, 12, 31));
        let mut expected = (0i64, 1u32, 1u32);
        for day in first..=last {
            let date = civil_from_days(day);
            assert_eq!(date, expected, "day {day}");
            assert_eq!(days_from_civil(date.0, date.1, date.2), day);
            expected = next_date(expected);
        }
    }

    /// The day after, by the calendar's own rules (independent of the formulas).
    fn next_date((y, m, d): (i64, u32, u32)) -> (i64, u32, u32) {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        match (d < month_len, m < 12) {
            (true, _) => (y, m, d + 1),
            (false, true) => (y, m + 1, 1),
            (false, false) => (y + 1, 1, 1),
        }
    }
}
