//! A doubling pause with a ceiling, for loops that must not spin on a
//! failure that repeats (a failed `accept()`, a busy service).
//!
//! ```
//! use odps_tunnel::backoff::Doubling;
//! use std::time::Duration;
//! let mut b = Doubling::new(Duration::from_millis(100), Duration::from_secs(1));
//! let pauses: Vec<u128> = (0..6).map(|_| b.next_pause().as_millis()).collect();
//! assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000]);
//! b.reset();
//! assert_eq!(b.next_pause(), Duration::from_millis(100));
//! ```

use std::time::Duration;

/// `first`, doubling up to `max` while failures last; back to `first`
/// after [`Doubling::reset`].
#[derive(Clone, Debug)]
pub struct Doubling {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Doubling {
    /// A backoff starting at `first` and never above `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first.min(max),
        }
    }

    /// The pause `accept()` loops use: 100 ms doubling to 1 s.
    pub fn for_accept() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// The pause before the next attempt; the one after it is twice as long.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        pause
    }

    /// After a success: the next pause is `first` again.
    pub fn reset(&mut self) {
        self.next = self.first.min(self.max);
    }
}
