//! Rate limits: a token bucket ([`RateLimiter`]) and the three-way limit
//! of a read ([`Throttle`]: queries, rows and bytes per second).
//!
//! A taker debits the bucket first and then waits until the balance is back
//! at zero, so a take larger than the bucket still passes (after a longer
//! wait) and concurrent takers queue in the order they debited. The bucket
//! holds at most [`BURST`] worth of tokens: after a quiet spell at most that
//! much goes through at once, so over any window of `T` seconds no more than
//! `rate × (T + BURST)` passes (+0.8% over a minute), plus what the takers
//! use before they pay (callers that pay after the fact keep their takes
//! small). The burst also lets a reader that paused briefly (a commit, a
//! slow disk) catch up, so the rate does not fall short of the limit either.
//!
//! Time is [`tokio::time::Instant`]: tests run it paused.
//!
//! ```
//! use mysql_source::throttle::RateLimiter;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let limiter = RateLimiter::new(1_000.0); // 1,000 per second
//! limiter.acquire(10.0).await; // within the burst: no wait
//! # }
//! ```

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How much a bucket holds, in seconds of its rate.
pub const BURST: Duration = Duration::from_millis(500);

/// A token bucket refilled at `rate` per second, holding at most `rate × BURST`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    capacity: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens at `at`; negative while takers wait for what they took.
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// A full bucket for `rate` per second (a rate that is not a positive
    /// number lets everything through).
    pub fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            f64::INFINITY
        };
        let capacity = rate * BURST.as_secs_f64();
        Self {
            rate,
            capacity,
            state: Mutex::new(Bucket {
                tokens: capacity,
                at: Instant::now(),
            }),
        }
    }

    /// The rate per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Debits `amount` now and returns how long the taker must wait before
    /// using it (zero while the bucket covers it).
    pub fn reserve(&self, amount: f64) -> Duration {
        if self.rate.is_infinite() || amount <= 0.0 {
            return Duration::ZERO;
        }
        let mut b = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + refill).min(self.capacity) - amount;
        b.at = now;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate)
        }
    }

    /// Takes `amount` and waits until the bucket has paid for it.
    pub async fn acquire(&self, amount: f64) {
        let wait = self.reserve(amount);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Rate limits of a read (`None` = unlimited).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThrottleLimits {
    /// Queries per second.
    pub queries_per_sec: Option<f64>,
    /// Rows per second.
    pub rows_per_sec: Option<f64>,
    /// Bytes per second (row payload).
    pub bytes_per_sec: Option<f64>,
}

impl ThrottleLimits {
    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        [self.queries_per_sec, self.rows_per_sec, self.bytes_per_sec]
            .iter()
            .any(|r| r.is_some_and(|r| r > 0.0))
    }
}

/// Queries, rows and bytes per second, each its own [`RateLimiter`],
/// shared by every connection of a read.
#[derive(Debug, Default)]
pub struct Throttle {
    queries: Option<RateLimiter>,
    rows: Option<RateLimiter>,
    bytes: Option<RateLimiter>,
}

impl Throttle {
    /// A limiter with full buckets.
    pub fn new(limits: ThrottleLimits) -> Self {
        let bucket = |r: Option<f64>| r.filter(|r| *r > 0.0).map(RateLimiter::new);
        Self {
            queries: bucket(limits.queries_per_sec),
            rows: bucket(limits.rows_per_sec),
            bytes: bucket(limits.bytes_per_sec),
        }
    }

    /// Accounts for `queries`, `rows` and `bytes` and sleeps as long as the
    /// most limiting rate requires.
    pub async fn take(&self, queries: f64, rows: f64, bytes: f64) {
        let mut wait = Duration::ZERO;
        for (bucket, amount) in [
            (&self.queries, queries),
            (&self.rows, rows),
            (&self.bytes, bytes),
        ] {
            if let Some(b) = bucket {
                wait = wait.max(b.reserve(amount));
            }
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The batch size to pay for at a time: `wanted`, or fewer rows when the
    /// rows limit would make one batch take longer than a tenth of a second.
    pub fn batch_rows(&self, wanted: usize) -> usize {
        match &self.rows {
            Some(r) => wanted.min((r.rate() / 10.0).ceil() as usize).max(1),
            None => wanted.max(1),
        }
    }

    /// Whether `bytes` unpaid bytes are a tenth of a second's worth under
    /// the bytes limit (time to pay before reading on).
    pub fn bytes_due(&self, bytes: u64) -> bool {
        self.bytes
            .as_ref()
            .is_some_and(|b| bytes as f64 >= b.rate() / 10.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `step` as fast as the limiter allows for `secs` (paused
    /// clock); returns what went through.
    async fn drain(limiter: &RateLimiter, step: f64, secs: u64) -> f64 {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut total = 0.0;
        loop {
            limiter.acquire(step).await;
            if Instant::now() > end {
                return total;
            }
            total += step;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_minute_at_full_speed_stays_within_the_rate() {
        for (rate, step) in [(100.0, 1.0), (1_000.0, 37.0), (5.0, 1.0), (2e6, 65_536.0)] {
            let limiter = RateLimiter::new(rate);
            let got = drain(&limiter, step, 60).await;
            let limit = rate * 60.0;
            // The first burst, plus at most one step of rounding.
            let most = limit + rate * BURST.as_secs_f64() + step;
            assert!(
                got <= most && got >= limit * 0.99 - step,
                "rate {rate}, step {step}: {got} in 60 s"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_quiet_spell_only_the_burst_goes_at_once() {
        let limiter = RateLimiter::new(1_000.0);
        tokio::time::sleep(Duration::from_secs(30)).await;
        let t0 = Instant::now();
        limiter.acquire(500.0).await;
        assert_eq!(t0.elapsed(), Duration::ZERO, "the burst is free");
        limiter.acquire(250.0).await;
        let waited = t0.elapsed();
        assert!(
            (250..=252).contains(&waited.as_millis()),
            "the rest pays: {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_take_larger_than_the_bucket_waits_for_it() {
        let limiter = RateLimiter::new(10.0);
        let t0 = Instant::now();
        limiter.acquire(5.0).await; // the full bucket holds exactly 5
        limiter.acquire(50.0).await;
        assert_eq!(t0.elapsed().as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_takers_share_one_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::new(200.0));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move { drain(&l, 1.0, 20).await }));
        }
        let mut total = 0.0;
        for t in tasks {
            total += t.await.expect("task");
        }
        assert!(
            (3_960.0..=4_110.0).contains(&total),
            "{total} in 20 s at 200/s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttle_waits_for_its_most_limiting_rate() {
        let t = Throttle::new(ThrottleLimits {
            queries_per_sec: Some(20.0),
            rows_per_sec: Some(1_000.0),
            bytes_per_sec: None,
        });
        let t0 = Instant::now();
        for _ in 0..42 {
            t.take(1.0, 10.0, 1e9).await;
        }
        // 42 queries at 20/s, 10 free in the burst: 1.6 s; the rows (420 at
        // 1,000/s, 500 free) never wait.
        let waited = t0.elapsed();
        assert!((1_600..=1_620).contains(&waited.as_millis()), "{waited:?}");
        assert_eq!(t.batch_rows(8192), 100);
        assert!(!t.bytes_due(u64::MAX), "no bytes limit");
        let unlimited = Throttle::new(ThrottleLimits::default());
        unlimited.take(1e9, 1e9, 1e9).await;
        assert_eq!(unlimited.batch_rows(8192), 8192);
    }
}
