//! The time zone DATETIME values are read in at the destination.
//!
//! MySQL's DATETIME is a wall clock; MaxCompute's `datetime` is an instant
//! that SQL and the SDKs show in the project's zone (`odps.sql.timezone`,
//! Asia/Shanghai unless the project says otherwise). So that a DATETIME
//! reads in the project as the source shows it, the task sends the instant
//! at which the project's zone shows that wall clock, and turns instants
//! read back into wall clocks of the same zone. TIMESTAMP columns are
//! instants already and are never shifted; `timestamp_ntz` and `date` carry
//! no zone.
//!
//! ```
//! use sync_core::timezone::Zone;
//! let shanghai = Zone::parse("Asia/Shanghai").unwrap();
//! // 2024-01-02 03:04:05.123 in Shanghai is 2024-01-01 19:04:05.123 UTC.
//! let wall = 1_704_164_645_123_000; // the wall clock read as if UTC, in µs
//! let instant = shanghai.wall_to_instant(wall).unwrap();
//! assert_eq!(instant, 1_704_135_845_123_000);
//! assert_eq!(shanghai.instant_to_wall(instant), wall);
//! assert!(Zone::parse("Mars/Olympus").is_err());
//! ```

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// A named time zone: an IANA name (`Asia/Shanghai`), `UTC`, or a fixed
/// offset (`+08:00`).
#[derive(Clone, Debug)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

/// The zone MaxCompute uses when a project does not name one.
pub const SERVICE_DEFAULT: &str = "Asia/Shanghai";

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl Zone {
    /// UTC: values pass unchanged.
    pub fn utc() -> Self {
        Self {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    /// The zone a task file or a project names.
    ///
    /// # Errors
    /// A message saying what is accepted, for a name that is neither an
    /// IANA zone nor an offset.
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        let tz = if let Some(offset) = parse_offset(name) {
            TimeZone::fixed(offset)
        } else {
            TimeZone::get(name).map_err(|_| {
                format!(
                    "unknown time zone {name:?}: use an IANA name such as \"Asia/Shanghai\" or \
                     \"UTC\", or a fixed offset such as \"+08:00\""
                )
            })?
        };
        Ok(Self {
            name: name.to_owned(),
            tz,
        })
    }

    /// Its name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether values pass unchanged.
    pub fn is_utc(&self) -> bool {
        matches!(self.name.as_str(), "UTC" | "Etc/UTC" | "+00:00" | "Z")
            || self.tz.to_fixed_offset().is_ok_and(|o| o == Offset::UTC)
    }

    /// The instant (µs since the epoch) at which this zone shows the wall
    /// clock `wall` (µs since 1970-01-01 00:00 read as a wall clock). At a
    /// clock change that repeats an hour, the earlier instant.
    ///
    /// # Errors
    /// For a wall clock the zone skips (a daylight-saving gap, such as
    /// 1986-05-04 02:30 in Asia/Shanghai), which no instant shows.
    pub fn wall_to_instant(&self, wall: i64) -> Result<i64, String> {
        if self.is_utc() {
            return Ok(wall);
        }
        let dt = civil(wall)?;
        let offset = match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            AmbiguousOffset::Fold { before, .. } => before,
            AmbiguousOffset::Gap { .. } => {
                return Err(format!(
                    "{dt} never happened in {}: the clocks skipped it",
                    self.name
                ));
            }
        };
        Ok(wall - i64::from(offset.seconds()) * 1_000_000)
    }

    /// The wall clock (µs, read as if UTC) this zone shows at `instant`.
    pub fn instant_to_wall(&self, instant: i64) -> i64 {
        if self.is_utc() {
            return instant;
        }
        instant + i64::from(self.offset_at(instant).seconds()) * 1_000_000
    }

    /// The zone's offset at an instant (µs); beyond the years jiff covers,
    /// the offset at its nearest end.
    fn offset_at(&self, instant: i64) -> Offset {
        let ts = Timestamp::from_microsecond(instant).unwrap_or(if instant < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        });
        self.tz.to_offset(ts)
    }

    /// The offset in seconds at a Unix second (for partition values).
    pub fn offset_seconds_at(&self, unix_seconds: i64) -> i64 {
        i64::from(
            self.offset_at(unix_seconds.saturating_mul(1_000_000))
                .seconds(),
        )
    }
}

/// `+08:00`, `-05:30`, `+0800`, `+08`.
fn parse_offset(s: &str) -> Option<Offset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if hours > 14 || minutes > 59 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// A wall clock in µs since 1970-01-01 00:00 as a civil date-time.
fn civil(wall: i64) -> Result<DateTime, String> {
    let epoch = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);
    epoch
        .checked_add(SignedDuration::from_micros(wall))
        .map_err(|_| format!("{wall} µs is outside the years 0001 to 9999"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: i64 = 1_000_000;

    fn wall(s: &str) -> i64 {
        let dt: DateTime = s.parse().expect("datetime");
        let epoch = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);
        epoch.duration_until(dt).as_micros() as i64
    }

    #[test]
    fn shanghai_wall_clocks_round_trip_over_the_whole_range() {
        let z = Zone::parse("Asia/Shanghai").expect("zone");
        for s in [
            "1000-01-01T00:00:00",
            "1900-12-31T23:59:59.999",
            "1928-01-01T00:00:00",
            "1970-01-01T00:00:00",
            "1986-09-14T01:30:00", // repeated hour: the earlier instant
            "2024-02-29T12:00:00.5",
            "9999-12-31T23:59:59.999999",
        ] {
            let w = wall(s);
            let i = z.wall_to_instant(w).expect(s);
            assert_eq!(z.instant_to_wall(i), w, "{s}");
        }
        // Today's rule, and the local mean time before 1901 (+08:05:43).
        let w = wall("2024-01-02T03:04:05.123");
        assert_eq!(w - z.wall_to_instant(w).expect("converts"), 8 * 3600 * US);
        let w = wall("1000-01-01T00:00:00");
        assert_eq!(
            w - z.wall_to_instant(w).expect("converts"),
            (8 * 3600 + 5 * 60 + 43) * US
        );
    }

    #[test]
    fn a_skipped_wall_clock_is_refused_and_fixed_offsets_never_skip() {
        let z = Zone::parse("Asia/Shanghai").expect("zone");
        let gap = wall("1986-05-04T02:30:00");
        let e = z.wall_to_instant(gap).expect_err("gap");
        assert!(e.contains("never happened in Asia/Shanghai"), "{e}");
        let fixed = Zone::parse("+08:00").expect("offset");
        assert_eq!(
            fixed.wall_to_instant(gap).expect("converts"),
            gap - 8 * 3600 * US
        );
        assert_eq!(fixed.offset_seconds_at(0), 8 * 3600);
        assert_eq!(
            Zone::parse("-0530").expect("converts").offset_seconds_at(0),
            -19_800
        );
        for bad in ["+25:00", "8", "+8:0", "Nowhere/Else", ""] {
            assert!(Zone::parse(bad).is_err(), "{bad}");
        }
        assert!(Zone::utc().is_utc() && Zone::parse("Etc/UTC").expect("converts").is_utc());
        assert_eq!(Zone::utc().wall_to_instant(gap), Ok(gap));
    }
}
