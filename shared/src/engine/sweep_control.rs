//! Pacing and the circuit breaker of one sweep, shared by every sweep ([`super::sweep::run`]).
//!
//! Daraja publishes no query rate, so every query waits its turn on one global pace; the sweep
//! stops asking at the first Spike Arrest (asking more only prolongs it) or after a run of
//! consecutive failures (Daraja is down), and stops starting checks when its time budget is spent
//! (the Lambda's timeout minus a margin). What was not asked is simply asked by a later sweep.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::daraja::DarajaError;

pub struct SweepControl {
    pacer: Mutex<tokio::time::Interval>,
    stopped: AtomicBool,
    consecutive_failures: AtomicU32,
    queries: AtomicUsize,
    started: Instant,
    time_budget: Duration,
    failure_threshold: u32,
}

/// What a failed query did to the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Keep asking about the other items.
    GoOn { consecutive_failures: u32 },
    /// Rate-limited or failing too often: this sweep asks nothing more.
    StopAsking { consecutive_failures: u32 },
}

impl SweepControl {
    /// Must be called inside the Tokio runtime (the pace is a Tokio interval).
    pub fn new(queries_per_second: u32, time_budget: Duration, failure_threshold: u32) -> Self {
        let period = Duration::from_secs_f64(1.0 / f64::from(queries_per_second.max(1)));
        let mut pacer = tokio::time::interval(period);
        pacer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        SweepControl {
            pacer: Mutex::new(pacer),
            stopped: AtomicBool::new(false),
            consecutive_failures: AtomicU32::new(0),
            queries: AtomicUsize::new(0),
            started: Instant::now(),
            time_budget,
            failure_threshold,
        }
    }

    /// Whether another item may be checked: false once stopped or past the time budget.
    pub fn may_start(&self) -> bool {
        if self.stopped() {
            return false;
        }
        if self.started.elapsed() > self.time_budget {
            self.stopped.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Waits for this query's turn on the pace and counts it; false (not counted) when the sweep
    /// stopped asking meanwhile: another query may have hit a rate limit while this one waited.
    pub async fn take_turn(&self) -> bool {
        if self.stopped() {
            return false;
        }
        self.pacer.lock().await.tick().await;
        if self.stopped() {
            return false;
        }
        self.queries.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Daraja answered (whatever it said): the failure run is over.
    pub fn answered(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// Daraja could not be asked; decides whether the sweep goes on asking.
    pub fn failed(&self, error: &DarajaError) -> AfterFailure {
        let consecutive_failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if matches!(error, DarajaError::RateLimited { .. }) || consecutive_failures >= self.failure_threshold {
            self.stopped.store(true, Ordering::Relaxed);
            AfterFailure::StopAsking { consecutive_failures }
        } else {
            AfterFailure::GoOn { consecutive_failures }
        }
    }

    /// Queries that took their turn.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> DarajaError {
        DarajaError::Unavailable {
            detail: "connection refused".into(),
        }
    }

    #[tokio::test]
    async fn spike_arrest_stops_asking_at_once() {
        let control = SweepControl::new(1000, Duration::from_secs(60), 5);
        let spike = DarajaError::RateLimited {
            code: "500.003.02".into(),
            message: "Spike arrest violation".into(),
        };
        assert_eq!(
            control.failed(&spike),
            AfterFailure::StopAsking {
                consecutive_failures: 1
            }
        );
        assert!(control.stopped());
        assert!(!control.may_start());
        assert!(!control.take_turn().await);
        assert_eq!(control.queries(), 0);
    }

    #[tokio::test]
    async fn a_run_of_failures_stops_asking_and_an_answer_resets_the_run() {
        let control = SweepControl::new(1000, Duration::from_secs(60), 3);
        assert_eq!(
            control.failed(&unavailable()),
            AfterFailure::GoOn {
                consecutive_failures: 1
            }
        );
        assert_eq!(
            control.failed(&unavailable()),
            AfterFailure::GoOn {
                consecutive_failures: 2
            }
        );
        control.answered();
        assert_eq!(
            control.failed(&unavailable()),
            AfterFailure::GoOn {
                consecutive_failures: 1
            }
        );
        assert!(control.may_start());
        control.failed(&unavailable());
        assert_eq!(
            control.failed(&unavailable()),
            AfterFailure::StopAsking {
                consecutive_failures: 3
            }
        );
        assert!(!control.may_start());
    }

    #[tokio::test]
    async fn a_spent_time_budget_stops_new_checks() {
        let control = SweepControl::new(1000, Duration::ZERO, 3);
        std::thread::sleep(Duration::from_millis(2));
        assert!(!control.may_start());
        assert!(control.stopped());
    }

    #[tokio::test(start_paused = true)]
    async fn turns_are_paced_and_counted() {
        let control = SweepControl::new(10, Duration::from_secs(60), 3);
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            assert!(control.take_turn().await);
        }
        // The first turn is immediate, then one every 100 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        assert_eq!(control.queries(), 3);
    }
}
