//! Rate limits of the public page routes, per client address and per session, kept in the
//! function's memory (fixed one-minute windows).
//!
//! They bound what one browser (or one leaked link) can make a warm function do; they are not
//! the money-safety limits. Those are durable and global: a session allows one open prompt and
//! `max_attempts` in all (conditional writes on the session), and every attempt's payment passes
//! the phone's and the merchant's limits like any other payment.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Entries kept before expired windows are swept out, so memory stays bounded.
const MAX_ENTRIES: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Requests per minute from one client address, all page routes together (a page polling
    /// every second makes 60).
    pub per_client: u32,
    /// Requests per minute for one session, whoever sends them.
    pub per_session: u32,
    /// Prompts asked for per minute from one client address.
    pub attempts_per_client: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            per_client: 300,
            per_session: 240,
            attempts_per_client: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Seconds until the window ends.
    Limited {
        retry_after: u64,
    },
}

#[derive(Debug, Default)]
pub struct PublicLimits {
    pub config: LimitsConfig,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl PublicLimits {
    pub fn new(config: LimitsConfig) -> PublicLimits {
        PublicLimits {
            config,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `client` on `session` (`attempt`: one asking for a prompt) and
    /// says whether it may go on. A refused request still counts.
    pub fn admit(&self, client: &str, session: &str, attempt: bool) -> Verdict {
        self.admit_at(Instant::now(), client, session, attempt)
    }

    fn admit_at(&self, now: Instant, client: &str, session: &str, attempt: bool) -> Verdict {
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > MAX_ENTRIES {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let mut verdict = Verdict::Allowed;
        let mut count = |key: String, limit: u32| {
            let entry = windows.entry(key).or_insert((now, 0));
            if now.duration_since(entry.0) >= WINDOW {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(1);
            if entry.1 > limit {
                let left = WINDOW.saturating_sub(now.duration_since(entry.0)).as_secs().max(1);
                verdict = Verdict::Limited { retry_after: left };
            }
        };
        count(format!("c#{client}"), self.config.per_client);
        count(format!("s#{session}"), self.config.per_session);
        if attempt {
            count(format!("a#{client}"), self.config.attempts_per_client);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PublicLimits {
        PublicLimits::new(LimitsConfig {
            per_client: 5,
            per_session: 3,
            attempts_per_client: 2,
        })
    }

    #[test]
    fn each_bound_holds_and_resets_with_its_window() {
        let l = limits();
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.admit_at(t, "1.2.3.4", "cs_a", false), Verdict::Allowed);
        }
        assert!(matches!(
            l.admit_at(t, "1.2.3.4", "cs_a", false),
            Verdict::Limited { .. }
        ));
        // Another session from the same client: the client's bound (5) is next.
        assert_eq!(l.admit_at(t, "1.2.3.4", "cs_b", false), Verdict::Allowed);
        assert!(matches!(
            l.admit_at(t, "1.2.3.4", "cs_c", false),
            Verdict::Limited { .. }
        ));
        // Another client is not affected.
        assert_eq!(l.admit_at(t, "5.6.7.8", "cs_d", false), Verdict::Allowed);
        // A minute later everything is allowed again.
        assert_eq!(l.admit_at(t + WINDOW, "1.2.3.4", "cs_a", false), Verdict::Allowed);
    }

    #[test]
    fn prompts_have_their_own_tighter_bound() {
        let l = limits();
        let t = Instant::now();
        assert_eq!(l.admit_at(t, "c", "cs_1", true), Verdict::Allowed);
        assert_eq!(l.admit_at(t, "c", "cs_2", true), Verdict::Allowed);
        match l.admit_at(t, "c", "cs_3", true) {
            Verdict::Limited { retry_after } => assert!((1..=60).contains(&retry_after)),
            other => panic!("{other:?}"),
        }
        assert_eq!(l.admit_at(t, "c", "cs_4", false), Verdict::Allowed);
    }
}
