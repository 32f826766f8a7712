//! Row changes as `t_log` records, the way DTS writes them.
//!
//! | change | records | `operation_flag` | `before_flag` | `after_flag` |
//! |---|---|---|---|---|
//! | INSERT | the new row | `I` | `N` | `Y` |
//! | UPDATE | the old row, then the new row, one `record_id` | `U`, `U` | `Y`, `N` | `N`, `Y` |
//! | DELETE | the old row | `D` | `Y` | `N` |
//!
//! `record_id` comes from [`RecordIds`]: a counter carried in the checkpoint
//! and advanced once per row change in binlog order. Replaying the same
//! binlog range from the same checkpoint therefore yields the very same ids,
//! which is what makes a redo after a crash write no duplicates.

use arrow_schema::{DataType, Field};
use binlog_parser::calendar::civil_from_days;

/// How the metadata columns are named (DTS's "naming rules of additional columns").
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NamingRule {
    /// `new_dts_sync_record_id`, …: cannot clash with business columns named like the old ones.
    #[default]
    New,
    /// `record_id`, `operation_flag`, …: what older DTS tasks wrote.
    Previous,
}

/// The five metadata column names of `t_log` under one [`NamingRule`].
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct MetaColumns {
    /// Entry id; both records of an UPDATE share it.
    pub record_id: String,
    /// `I`, `U` or `D`.
    pub operation_flag: String,
    /// Binlog event time, Unix seconds (UTC).
    pub utc_timestamp: String,
    /// `Y` when the record holds the row before the change.
    pub before_flag: String,
    /// `Y` when the record holds the row after the change.
    pub after_flag: String,
}

impl NamingRule {
    fn prefix(self) -> &'static str {
        match self {
            Self::New => "new_dts_sync_",
            Self::Previous => "",
        }
    }

    /// The metadata column names under this rule.
    pub fn meta_columns(self) -> MetaColumns {
        let p = self.prefix();
        MetaColumns {
            record_id: format!("{p}record_id"),
            operation_flag: format!("{p}operation_flag"),
            utc_timestamp: format!("{p}utc_timestamp"),
            before_flag: format!("{p}before_flag"),
            after_flag: format!("{p}after_flag"),
        }
    }

    /// The partition column of `t_log` for one time level, e.g. `modifytime_day`.
    pub fn partition_column(self, level: TimeLevel) -> String {
        format!("{}modifytime_{}", self.prefix(), level.name())
    }
}

impl MetaColumns {
    /// The names in table order.
    pub fn all(&self) -> [&str; 5] {
        [
            &self.record_id,
            &self.operation_flag,
            &self.utc_timestamp,
            &self.before_flag,
            &self.after_flag,
        ]
    }

    /// The Arrow fields of the metadata columns, in table order.
    pub fn fields(&self) -> Vec<Field> {
        vec![
            Field::new(&self.record_id, DataType::Int64, false),
            Field::new(&self.operation_flag, DataType::Utf8, false),
            Field::new(&self.utc_timestamp, DataType::Int64, false),
            Field::new(&self.before_flag, DataType::Utf8, false),
            Field::new(&self.after_flag, DataType::Utf8, false),
        ]
    }
}

/// One level of `t_log`'s time partitioning.
#[derive(
    Clone, Copy, Debug, Eq, Ord, PartialEq, PartialOrd, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TimeLevel {
    /// `2026`
    Year,
    /// `01`–`12`
    Month,
    /// `01`–`31`
    Day,
    /// `00`–`23`
    Hour,
    /// `00`–`59`
    Minute,
}

impl TimeLevel {
    /// The level's name as it appears in the partition column.
    pub fn name(self) -> &'static str {
        match self {
            Self::Year => "year",
            Self::Month => "month",
            Self::Day => "day",
            Self::Hour => "hour",
            Self::Minute => "minute",
        }
    }
}

/// The partition levels of `t_log`, coarse to fine; empty means not partitioned.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct LogPartitioning {
    levels: Vec<TimeLevel>,
    /// The zone the values are read in (UTC when `None`).
    zone: Option<crate::timezone::Zone>,
}

impl LogPartitioning {
    /// Partitioning by the given levels, put in year → minute order, duplicates dropped.
    pub fn new(levels: impl IntoIterator<Item = TimeLevel>) -> Self {
        let mut levels: Vec<TimeLevel> = levels.into_iter().collect();
        levels.sort();
        levels.dedup();
        Self { levels, zone: None }
    }

    /// The same levels with values read in `zone` (`[sync]
    /// partition_timezone`) instead of UTC.
    pub fn in_zone(mut self, zone: crate::timezone::Zone) -> Self {
        self.zone = Some(zone).filter(|z| !z.is_utc());
        self
    }

    /// The levels, coarse to fine.
    pub fn levels(&self) -> &[TimeLevel] {
        &self.levels
    }

    /// The partition values of a change made at `utc_seconds`, zero-padded,
    /// in UTC or the zone of [`LogPartitioning::in_zone`].
    pub fn values(&self, utc_seconds: i64) -> Vec<String> {
        let local = match &self.zone {
            Some(z) => utc_seconds.saturating_add(z.offset_seconds_at(utc_seconds)),
            None => utc_seconds,
        };
        let (y, m, d) = civil_from_days(local.div_euclid(86_400));
        let secs = local.rem_euclid(86_400);
        self.levels
            .iter()
            .map(|level| match level {
                TimeLevel::Year => format!("{y:04}"),
                TimeLevel::Month => format!("{m:02}"),
                TimeLevel::Day => format!("{d:02}"),
                TimeLevel::Hour => format!("{:02}", secs / 3600),
                TimeLevel::Minute => format!("{:02}", secs % 3600 / 60),
            })
            .collect()
    }
}

/// The kind of a row change.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Op {
    /// A new row.
    Insert,
    /// A changed row (possibly with a new primary key).
    Update,
    /// A removed row.
    Delete,
}

impl Op {
    /// The `operation_flag` value.
    pub fn flag(self) -> &'static str {
        match self {
            Self::Insert => "I",
            Self::Update => "U",
            Self::Delete => "D",
        }
    }
}

/// Which image of the row a record carries.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Image {
    /// The row before the change.
    Before,
    /// The row after the change.
    After,
}

/// The metadata of one `t_log` record.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct LogRecordMeta {
    /// The change's id.
    pub record_id: i64,
    /// The change's kind.
    pub op: Op,
    /// Binlog event time, Unix seconds.
    pub utc_timestamp: i64,
    /// The image this record carries.
    pub image: Image,
}

impl LogRecordMeta {
    /// `before_flag`: `Y` for a before image.
    pub fn before_flag(&self) -> &'static str {
        if self.image == Image::Before {
            "Y"
        } else {
            "N"
        }
    }

    /// `after_flag`: `Y` for an after image.
    pub fn after_flag(&self) -> &'static str {
        if self.image == Image::After { "Y" } else { "N" }
    }

    /// The records of one change, in the order they are written: an UPDATE's
    /// before image first, then its after image, under one `record_id`.
    pub fn for_change(op: Op, record_id: i64, utc_timestamp: i64) -> impl Iterator<Item = Self> {
        let images: &'static [Image] = match op {
            Op::Insert => &[Image::After],
            Op::Update => &[Image::Before, Image::After],
            Op::Delete => &[Image::Before],
        };
        images.iter().map(move |&image| Self {
            record_id,
            op,
            utc_timestamp,
            image,
        })
    }
}

/// Hands out `record_id`s: strictly increasing in binlog order, one per row change.
///
/// The top 8 bits of the 63 usable ones hold a source tag, so that several
/// sources writing into one destination (many-to-one) can never produce the
/// same id; the low 55 bits count changes (3.6 × 10^16 of them per source).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct RecordIds {
    source_tag: u8,
    next: u64,
}

/// Bits of the per-source change counter.
const COUNTER_BITS: u32 = 55;

impl RecordIds {
    /// Continues from a checkpoint: `next` is the counter the next change gets (starts at 1).
    pub fn new(source_tag: u8, next: u64) -> Self {
        Self { source_tag, next }
    }

    /// The counter the next change will get (what the checkpoint stores).
    pub fn next_counter(&self) -> u64 {
        self.next
    }

    /// The change counter inside `record_id` (its low 55 bits, without the
    /// source tag): what [`Self::next_counter`] and the checkpoint count.
    pub fn counter_of(record_id: i64) -> u64 {
        (record_id as u64) & ((1 << COUNTER_BITS) - 1)
    }

    /// The id of the next change, advancing the counter.
    ///
    /// # Panics
    /// Never in practice: it would need 3.6 × 10^16 changes from one source.
    pub fn allocate(&mut self) -> i64 {
        let counter = self.next & ((1 << COUNTER_BITS) - 1);
        self.next += 1;
        ((u64::from(self.source_tag) << COUNTER_BITS) | counter) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_rules_give_the_documented_names() {
        let old = NamingRule::Previous.meta_columns();
        assert_eq!(
            old.all(),
            [
                "record_id",
                "operation_flag",
                "utc_timestamp",
                "before_flag",
                "after_flag"
            ]
        );
        let new = NamingRule::New.meta_columns();
        assert_eq!(new.record_id, "new_dts_sync_record_id");
        assert_eq!(new.after_flag, "new_dts_sync_after_flag");
        assert_eq!(
            NamingRule::Previous.partition_column(TimeLevel::Day),
            "modifytime_day"
        );
        assert_eq!(
            NamingRule::New.partition_column(TimeLevel::Minute),
            "new_dts_sync_modifytime_minute"
        );
    }

    #[test]
    fn partition_values_are_utc_and_padded() {
        let all = LogPartitioning::new([
            TimeLevel::Minute,
            TimeLevel::Year,
            TimeLevel::Day,
            TimeLevel::Month,
            TimeLevel::Hour,
        ]);
        assert_eq!(all.levels().first(), Some(&TimeLevel::Year));
        // 1565944878 is the DTS documentation's example: 2019-08-16 08:41:18 UTC.
        assert_eq!(all.values(1_565_944_878), ["2019", "08", "16", "08", "41"]);
        assert_eq!(all.values(0), ["1970", "01", "01", "00", "00"]);
        // A leap day and the last second of a year.
        assert_eq!(all.values(951_782_400), ["2000", "02", "29", "00", "00"]);
        assert_eq!(all.values(1_767_225_599), ["2025", "12", "31", "23", "59"]);
        assert!(LogPartitioning::default().values(5).is_empty());
        // The same instant in Shanghai's day and hour.
        let shanghai = LogPartitioning::new([TimeLevel::Day, TimeLevel::Hour])
            .in_zone(crate::timezone::Zone::parse("Asia/Shanghai").expect("zone"));
        assert_eq!(shanghai.values(1_565_944_878), ["16", "16"]);
        assert_eq!(shanghai.values(1_767_225_599), ["01", "07"]);
    }

    #[test]
    fn an_update_is_two_records_before_image_first() {
        let recs: Vec<_> = LogRecordMeta::for_change(Op::Update, 7, 100).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].before_flag(), recs[0].after_flag()), ("Y", "N"));
        assert_eq!((recs[1].before_flag(), recs[1].after_flag()), ("N", "Y"));
        assert!(recs.iter().all(|r| r.record_id == 7 && r.op.flag() == "U"));
        let ins: Vec<_> = LogRecordMeta::for_change(Op::Insert, 8, 100).collect();
        assert_eq!(
            (ins.len(), ins[0].before_flag(), ins[0].after_flag()),
            (1, "N", "Y")
        );
        let del: Vec<_> = LogRecordMeta::for_change(Op::Delete, 9, 100).collect();
        assert_eq!(
            (
                del.len(),
                del[0].before_flag(),
                del[0].after_flag(),
                del[0].op.flag()
            ),
            (1, "Y", "N", "D")
        );
    }

    #[test]
    fn record_ids_increase_and_sources_never_collide() {
        let mut a = RecordIds::new(0, 1);
        let mut b = RecordIds::new(1, 1);
        let ids_a: Vec<i64> = (0..100).map(|_| a.allocate()).collect();
        let ids_b: Vec<i64> = (0..100).map(|_| b.allocate()).collect();
        assert!(ids_a.windows(2).all(|w| w[0] < w[1]));
        assert!(ids_a.iter().all(|id| !ids_b.contains(id)));
        assert_eq!(a.next_counter(), 101);
        // Replaying from the same checkpoint gives the same ids.
        let mut replay = RecordIds::new(0, 51);
        assert_eq!(replay.allocate(), ids_a[50]);
        assert!(RecordIds::new(255, 1).allocate() > 0, "ids stay positive");
        let tagged = RecordIds::new(255, 77).allocate();
        assert_eq!(
            RecordIds::counter_of(tagged),
            77,
            "the counter without the tag"
        );
    }
}
