//! What an accept loop does when accepting fails (usually EMFILE: the
//! file-descriptor limit): wait longer each time, up to a second, and log at
//! most once a second, saying how many failures went unlogged.

use std::time::{Duration, Instant};

const FIRST_WAIT: Duration = Duration::from_millis(10);
const LONGEST_WAIT: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(1);

/// The wait before the next accept after a failure: doubling, capped.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    pub fn next(&mut self) -> Duration {
        let wait = self.next.unwrap_or(FIRST_WAIT);
        self.next = Some((wait * 2).min(LONGEST_WAIT));
        wait
    }

    /// An accept succeeded.
    pub fn reset(&mut self) {
        self.next = None;
    }
}

/// Lets a repeated log line through at most once per `LOG_EVERY`.
#[derive(Debug, Default)]
pub(crate) struct LogThrottle {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    /// `Some(n)` when the line may be logged now, `n` being how many were
    /// held back since the last one; `None` to hold this one back.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_wait_doubles_up_to_a_second_and_resets_on_success() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..9).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next(), FIRST_WAIT);
    }

    #[test]
    fn held_back_lines_are_counted_in_the_next() {
        let t0 = Instant::now();
        let mut t = LogThrottle::default();
        assert_eq!(t.allow(t0), Some(0));
        assert_eq!(t.allow(t0 + Duration::from_millis(10)), None);
        assert_eq!(t.allow(t0 + Duration::from_millis(999)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), Some(2));
        assert_eq!(t.allow(t0 + Duration::from_millis(1500)), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// However failures are spaced, at most one line per second (plus
        /// the first) is logged, and every failure is either logged or
        /// counted in a later line (or still pending at the end).
        #[test]
        fn at_most_one_line_a_second(gaps in proptest::collection::vec(0u64..1500, 1..200)) {
            let t0 = Instant::now();
            let mut t = LogThrottle::default();
            let mut now = t0;
            let (mut logged, mut counted) = (0u64, 0u64);
            for gap in gaps.iter() {
                now += Duration::from_millis(*gap);
                if let Some(n) = t.allow(now) {
                    logged += 1;
                    counted += n;
                }
            }
            let span = now.duration_since(t0).as_secs();
            prop_assert!(logged <= span + 1);
            prop_assert_eq!(logged + counted + t.suppressed, gaps.len() as u64);
        }
    }
}
