//! The waits between attempts of a loop that must not spin on a failure
//! that repeats: one type for every such loop of the task ([`Backoff`]).
//! It only computes waits, so its sequence is tested without a clock.

use std::time::Duration;

/// The waits between attempts of a loop that must not spin on a failure
/// that repeats: `initial`, then `factor` times the one before, never above
/// `max`; with a jitter, each wait is shortened by a pseudo-random part of
/// up to that fraction, drawn from a seed (so that a seed gives the same
/// waits again). It only computes: the caller sleeps.
///
/// ```
/// use std::time::Duration;
/// use sync_core::backoff::Backoff;
/// let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
/// let waits: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
/// assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
/// b.reset();
/// assert_eq!(b.next_delay(), Duration::from_millis(100));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: u32,
    jitter: f64,
    seed: u64,
    /// Waits handed out since the last reset.
    given: u64,
    /// The next wait before jitter.
    next: Duration,
}

impl Backoff {
    /// Waits from `initial`, doubling, up to `max`, without jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            factor: 2,
            jitter: 0.0,
            seed: 0,
            given: 0,
            next: initial.min(max),
        }
    }

    /// Each wait `factor` times the one before (1: a fixed pause).
    #[must_use]
    pub fn with_factor(mut self, factor: u32) -> Self {
        self.factor = factor.max(1);
        self
    }

    /// Each wait shortened by up to `fraction` (0 to 1) of it, by a part
    /// drawn from `seed`.
    #[must_use]
    pub fn with_jitter(mut self, fraction: f64, seed: u64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.seed = seed;
        self
    }

    /// The wait before the next attempt; the one after it is `factor`
    /// times longer (before jitter), up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = self.next.saturating_mul(self.factor).min(self.max);
        self.given += 1;
        if self.jitter == 0.0 {
            return nominal;
        }
        let draw = unit_interval(splitmix64(self.seed.wrapping_add(self.given)));
        nominal.saturating_sub(nominal.mul_f64(self.jitter * draw))
    }

    /// After a success: the next wait is `initial` again.
    pub fn reset(&mut self) {
        self.next = self.initial.min(self.max);
        self.given = 0;
    }
}

/// A well-mixed 64-bit value of `x` (SplitMix64's finaliser): enough to
/// spread waits, with no dependency and the same value for the same seed.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `x` as a number in [0, 1) (its top 53 bits).
fn unit_interval(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_its_factor_up_to_its_ceiling_and_restarts() {
        let ms = |b: &mut Backoff, n: usize| -> Vec<u128> {
            (0..n).map(|_| b.next_delay().as_millis()).collect()
        };
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(
            ms(&mut b, 8),
            [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        b.reset();
        assert_eq!(ms(&mut b, 2), [1000, 2000]);
        let mut triple =
            Backoff::new(Duration::from_millis(10), Duration::from_millis(500)).with_factor(3);
        assert_eq!(ms(&mut triple, 6), [10, 30, 90, 270, 500, 500]);
        let mut fixed =
            Backoff::new(Duration::from_millis(50), Duration::from_secs(9)).with_factor(1);
        assert_eq!(ms(&mut fixed, 3), [50, 50, 50]);
        // A first wait above the ceiling is cut to it.
        let mut capped = Backoff::new(Duration::from_secs(5), Duration::from_secs(2));
        assert_eq!(ms(&mut capped, 2), [2000, 2000]);
        // Saturates instead of overflowing.
        let mut huge = Backoff::new(Duration::from_secs(1), Duration::MAX);
        let last = (0..80).map(|_| huge.next_delay()).last();
        assert_eq!(last, Some(Duration::MAX));
    }

    #[test]
    fn jitter_shortens_each_wait_by_at_most_its_fraction_the_same_for_a_seed() {
        let plain: Vec<Duration> = {
            let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
            (0..10).map(|_| b.next_delay()).collect()
        };
        let jittered = |seed: u64| -> Vec<Duration> {
            let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30))
                .with_jitter(0.2, seed);
            (0..10).map(|_| b.next_delay()).collect()
        };
        let a = jittered(7);
        for (j, p) in a.iter().zip(&plain) {
            assert!(*j <= *p && *j >= p.mul_f64(0.8), "{j:?} vs {p:?}");
        }
        assert_eq!(a, jittered(7), "a seed gives the same waits again");
        assert_ne!(a, jittered(8), "another seed spreads them otherwise");
        assert_ne!(a, plain, "the jitter shortens some waits");
        // After a reset the same seed draws the same waits again.
        let mut b =
            Backoff::new(Duration::from_secs(1), Duration::from_secs(30)).with_jitter(0.2, 7);
        let first: Vec<Duration> = (0..3).map(|_| b.next_delay()).collect();
        b.reset();
        let again: Vec<Duration> = (0..3).map(|_| b.next_delay()).collect();
        assert_eq!(first, again);
        // Out-of-range fractions are clamped: 0 keeps the waits, 1 may
        // shorten them to nothing but never lengthens them.
        let mut none =
            Backoff::new(Duration::from_secs(1), Duration::from_secs(30)).with_jitter(-3.0, 1);
        assert_eq!(none.next_delay(), Duration::from_secs(1));
        let mut nan =
            Backoff::new(Duration::from_secs(1), Duration::from_secs(30)).with_jitter(f64::NAN, 1);
        assert_eq!(nan.next_delay(), Duration::from_secs(1));
        let mut full =
            Backoff::new(Duration::from_secs(1), Duration::from_secs(30)).with_jitter(5.0, 1);
        assert!(full.next_delay() <= Duration::from_secs(1));
    }
}
