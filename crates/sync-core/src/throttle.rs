//! The task's rate limits (`[throttle]`), as DTS offers them: the full
//! phase by queries per second to the source, rows per second and MB/s; the
//! incremental phase by rows per second and MB/s.
//!
//! The limiters are [`mysql_source::throttle`]'s token buckets. The full
//! phase pays in the snapshot readers (each chunk query before it is sent,
//! each batch's rows and row payload bytes as it is read); the incremental
//! phase pays per rows event of a selected table (its row changes and the
//! event's bytes) before reading on, so a limit slows the binlog read itself.
//! A megabyte is 1,000,000 bytes.
//!
//! ```
//! let cfg: sync_core::throttle::ThrottleConfig =
//!     toml::from_str("full_rows_per_second = 5000\nincremental_mb_per_second = 2.5").expect("toml");
//! assert_eq!(cfg.full_limits().rows_per_sec, Some(5000.0));
//! assert_eq!(cfg.full_limits().queries_per_sec, None);
//! ```

use mysql_source::throttle::{Throttle, ThrottleLimits};
use serde::Deserialize;

/// Bytes in the MB of the `*_mb_per_second` keys.
pub const MB: f64 = 1_000_000.0;

/// The `[throttle]` section: every key optional, absent = unlimited.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Full phase: chunk queries per second to the source.
    #[serde(default)]
    pub full_qps: Option<f64>,
    /// Full phase: rows read per second.
    #[serde(default)]
    pub full_rows_per_second: Option<f64>,
    /// Full phase: MB of row payload read per second.
    #[serde(default)]
    pub full_mb_per_second: Option<f64>,
    /// Incremental phase: row changes per second.
    #[serde(default)]
    pub incremental_rows_per_second: Option<f64>,
    /// Incremental phase: MB of rows events per second.
    #[serde(default)]
    pub incremental_mb_per_second: Option<f64>,
}

impl ThrottleConfig {
    /// The snapshot readers' limits.
    pub fn full_limits(&self) -> ThrottleLimits {
        ThrottleLimits {
            queries_per_sec: self.full_qps,
            rows_per_sec: self.full_rows_per_second,
            bytes_per_sec: self.full_mb_per_second.map(|m| m * MB),
        }
    }

    /// The incremental phase's limiter.
    pub fn incremental(&self) -> IncrementalThrottle {
        let limits = ThrottleLimits {
            queries_per_sec: None,
            rows_per_sec: self.incremental_rows_per_second,
            bytes_per_sec: self.incremental_mb_per_second.map(|m| m * MB),
        };
        IncrementalThrottle(limits.is_limited().then(|| Throttle::new(limits)))
    }

    /// A value that cannot work: (key path, message).
    pub(crate) fn invalid(&self) -> Option<(Vec<&'static str>, String)> {
        [
            ("full_qps", self.full_qps),
            ("full_rows_per_second", self.full_rows_per_second),
            ("full_mb_per_second", self.full_mb_per_second),
            ("incremental_rows_per_second", self.incremental_rows_per_second),
            ("incremental_mb_per_second", self.incremental_mb_per_second),
        ]
        .into_iter()
        .find_map(|(key, v)| {
            v.filter(|v| !(v.is_finite() && *v > 0.0)).map(|v| {
                (
                    vec!["throttle", key],
                    format!(
                        "`throttle.{key}` must be a number greater than 0, but it is {v}; leave it out for no limit"
                    ),
                )
            })
        })
    }
}

/// The incremental phase's limiter (a no-op without limits).
#[derive(Debug, Default)]
pub struct IncrementalThrottle(Option<Throttle>);

impl IncrementalThrottle {
    /// Pays for a rows event: `rows` row changes in `bytes` bytes.
    pub async fn rows_event(&self, rows: u64, bytes: usize) {
        if let Some(t) = &self.0 {
            t.take(0.0, rows as f64, bytes as f64).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_their_validation() {
        let cfg: ThrottleConfig =
            toml::from_str("full_qps = 20\nfull_mb_per_second = 0.5").expect("toml");
        let l = cfg.full_limits();
        assert_eq!(l.queries_per_sec, Some(20.0));
        assert_eq!(l.bytes_per_sec, Some(500_000.0));
        assert!(cfg.incremental().0.is_none(), "no incremental limit");
        assert!(cfg.invalid().is_none());
        let bad: ThrottleConfig = toml::from_str("incremental_rows_per_second = 0").expect("toml");
        let (key, msg) = bad.invalid().expect("zero");
        assert_eq!(key, ["throttle", "incremental_rows_per_second"]);
        assert!(msg.contains("greater than 0"), "{msg}");
    }
}
