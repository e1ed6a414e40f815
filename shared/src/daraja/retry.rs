//! Bounded retries with exponential backoff and full jitter.

use std::time::Duration;

use rand::Rng;

/// How often and how patiently an operation is retried, where retrying is safe at all (see
/// [`super::errors`] for which failures each operation retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (0 is treated as 1).
    pub max_attempts: u32,
    /// Cap of the first backoff; doubles each retry.
    pub base_delay: Duration,
    /// No backoff is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, backoff up to 250 ms then 500 ms: short enough for a Lambda's budget.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub const fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The upper bound of the wait before retry number `retry` (1-based):
    /// `min(max_delay, base_delay * 2^(retry-1))`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Full jitter: a uniformly random wait between zero and [`Self::backoff_cap`], so many
    /// clients that failed together do not retry together.
    pub fn delay_before_retry<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let cap = self.backoff_cap(retry);
        let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        if cap_nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rng.gen_range(0..=cap_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn caps_grow_exponentially_up_to_the_maximum() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(p.backoff_cap(1), Duration::from_millis(100));
        assert_eq!(p.backoff_cap(2), Duration::from_millis(200));
        assert_eq!(p.backoff_cap(3), Duration::from_millis(400));
        assert_eq!(p.backoff_cap(5), Duration::from_secs(1));
        assert_eq!(p.backoff_cap(u32::MAX), Duration::from_secs(1));
        assert_eq!(RetryPolicy::none().attempts(), 1);
        assert_eq!(RetryPolicy { max_attempts: 0, ..p }.attempts(), 1);
    }

    #[test]
    fn delays_are_jittered_within_the_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 1..=6 {
            let delays: Vec<Duration> = (0..200).map(|_| p.delay_before_retry(retry, &mut rng)).collect();
            assert!(delays.iter().all(|d| *d <= p.backoff_cap(retry)));
            let distinct: HashSet<_> = delays.iter().collect();
            assert!(
                distinct.len() > 150,
                "delays must be spread, got {} distinct",
                distinct.len()
            );
            let below_half = delays.iter().filter(|d| **d < p.backoff_cap(retry) / 2).count();
            assert!((50..150).contains(&below_half), "full jitter is uniform: {below_half}");
        }
        assert_eq!(RetryPolicy::none().delay_before_retry(1, &mut rng), Duration::ZERO);
    }
}
