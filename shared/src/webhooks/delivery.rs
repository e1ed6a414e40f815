//! One event's delivery to one endpoint, with every attempt, and the retry schedule.
//!
//! A delivery is created once per (event, endpoint) when the event is fanned out (its id is made
//! of both, so a stream redelivery of the event finds it and creates nothing). Attempt 1 is made
//! at once; after a failed attempt the next is due after [`RETRY_SCHEDULE`]'s next delay; after
//! the last one the delivery is `failed` (dead-lettered: listed, counted and alarmed; a merchant
//! or operator may redeliver it). Due attempts are found by the sweep from an index of pending
//! deliveries by due time, so no attempt depends on a timer that a crash could lose.
//!
//! Before sending, an attempt takes a lease: a conditional write that moves the due time
//! [`LEASE_SECONDS`] ahead. Two senders (the stream and the sweep) therefore never send the same
//! attempt at once, and a sender that crashes after sending leaves the delivery due again when
//! the lease runs out: at least once, never lost.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{ClientId, WebhookEndpointId};
use crate::events::EventType;

/// The wait after each failed attempt: attempt 1 at once, then 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 10 h, 24 h and 24 h (10 attempts over 3 days, 3 hours and 35 minutes).
pub const RETRY_SCHEDULE: [Duration; 9] = [
    Duration::seconds(5),
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
    Duration::hours(5),
    Duration::hours(10),
    Duration::hours(10),
    Duration::hours(24),
    Duration::hours(24),
];

/// Attempts in one run of the schedule (the first plus one per delay).
pub const MAX_ATTEMPTS: u32 = RETRY_SCHEDULE.len() as u32 + 1;

/// How long an attempt in progress holds its delivery (longer than the send's 10 s timeout).
pub const LEASE_SECONDS: i64 = 60;

/// Attempts kept on the item (oldest dropped first): bounds the item however often it is
/// redelivered.
pub const KEPT_ATTEMPTS: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet delivered; the next attempt is due at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Every attempt of the schedule failed: dead-lettered until redelivered.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// What one attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// 2xx within the timeout.
    Delivered,
    /// Any other answer (3xx included: redirects are not followed).
    Rejected,
    /// No answer: DNS, connection, TLS or timeout.
    Unreachable,
    /// The target resolved to an address we never send to (private, loopback, metadata).
    Forbidden,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based, counted over the delivery's whole life (redeliveries continue the count).
    pub number: u32,
    pub at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// The first 1 KiB of the answer, or why there was none.
    pub response: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `whd_<event id>_<endpoint id>`.
    pub id: String,
    pub event_id: String,
    pub event_type: EventType,
    pub endpoint_id: WebhookEndpointId,
    pub merchant: ClientId,
    pub status: DeliveryStatus,
    /// When the next attempt is due (`None` once succeeded or failed).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Attempts made in the current run of the schedule (a redelivery starts a new run).
    pub run_attempts: u32,
    /// Every attempt ever made (the last [`KEPT_ATTEMPTS`]).
    pub attempts: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}

impl Delivery {
    pub fn id_for(event_id: &str, endpoint: &WebhookEndpointId) -> String {
        format!("whd_{event_id}_{endpoint}")
    }

    /// A new delivery of `event_id` to `endpoint`, its first attempt due at once.
    pub fn new(
        event_id: &str,
        event_type: EventType,
        endpoint: &WebhookEndpointId,
        merchant: &ClientId,
        now: DateTime<Utc>,
    ) -> Delivery {
        Delivery {
            id: Delivery::id_for(event_id, endpoint),
            event_id: event_id.to_owned(),
            event_type,
            endpoint_id: endpoint.clone(),
            merchant: merchant.clone(),
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(now),
            run_attempts: 0,
            attempts: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    /// Whether an attempt may start at `now`: pending and due (a lease in force is not due).
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == DeliveryStatus::Pending && self.next_attempt_at.is_some_and(|at| at <= now)
    }

    /// The delivery leased for an attempt starting at `now`.
    pub fn leased(&self, now: DateTime<Utc>) -> Delivery {
        let mut next = self.clone();
        next.next_attempt_at = Some(now + Duration::seconds(LEASE_SECONDS));
        next.updated_at = now;
        next
    }

    /// The delivery after an attempt: succeeded, due again after the schedule's next delay, or
    /// failed after the last attempt of the run.
    pub fn after_attempt(&self, attempt: Attempt, now: DateTime<Utc>) -> Delivery {
        let mut next = self.clone();
        next.run_attempts = self.run_attempts.saturating_add(1);
        let delivered = attempt.outcome == AttemptOutcome::Delivered;
        next.attempts.push(attempt);
        if next.attempts.len() > KEPT_ATTEMPTS {
            let excess = next.attempts.len() - KEPT_ATTEMPTS;
            next.attempts.drain(..excess);
        }
        next.updated_at = now;
        if delivered {
            next.status = DeliveryStatus::Succeeded;
            next.next_attempt_at = None;
        } else if next.run_attempts >= MAX_ATTEMPTS {
            next.status = DeliveryStatus::Failed;
            next.next_attempt_at = None;
        } else {
            next.status = DeliveryStatus::Pending;
            next.next_attempt_at = Some(now + RETRY_SCHEDULE[(next.run_attempts - 1) as usize]);
        }
        next
    }

    /// The delivery sent again from the start of the schedule (a redelivery), due at `now`.
    pub fn redelivered(&self, now: DateTime<Utc>) -> Delivery {
        let mut next = self.clone();
        next.status = DeliveryStatus::Pending;
        next.next_attempt_at = Some(now);
        next.run_attempts = 0;
        next.updated_at = now;
        next
    }

    /// The delivery closed as failed without an attempt: its endpoint was deleted or its event
    /// is gone.
    pub fn abandoned(&self, now: DateTime<Utc>) -> Delivery {
        let mut next = self.clone();
        next.status = DeliveryStatus::Failed;
        next.next_attempt_at = None;
        next.updated_at = now;
        next
    }

    /// The number the next attempt gets.
    pub fn next_attempt_number(&self) -> u32 {
        self.attempts.last().map_or(1, |a| a.number.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn delivery(now: DateTime<Utc>) -> Delivery {
        Delivery::new(
            "evt_pay_1_00000003",
            EventType::PaymentCompleted,
            &WebhookEndpointId::generate(),
            &ClientId::parse("shop").unwrap(),
            now,
        )
    }

    fn attempt(d: &Delivery, outcome: AttemptOutcome, at: DateTime<Utc>) -> Attempt {
        Attempt {
            number: d.next_attempt_number(),
            at,
            outcome,
            status: (outcome == AttemptOutcome::Rejected).then_some(500),
            latency_ms: 12,
            response: String::new(),
        }
    }

    #[test]
    fn the_schedule_reaches_past_three_days() {
        let total: Duration = RETRY_SCHEDULE.iter().copied().sum();
        assert!(total > Duration::days(3), "{total}");
        assert_eq!(MAX_ATTEMPTS, 10);
    }

    #[test]
    fn failed_attempts_follow_the_schedule_then_dead_letter() {
        let start = Utc::now();
        let mut d = delivery(start);
        let mut now = start;
        assert!(d.is_due(now));
        for delay in RETRY_SCHEDULE {
            d = d.after_attempt(attempt(&d, AttemptOutcome::Rejected, now), now);
            assert_eq!(d.status, DeliveryStatus::Pending);
            assert_eq!(d.next_attempt_at, Some(now + delay));
            assert!(!d.is_due(now + delay - Duration::milliseconds(1)));
            now += delay;
            assert!(d.is_due(now));
        }
        d = d.after_attempt(attempt(&d, AttemptOutcome::Unreachable, now), now);
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(d.next_attempt_at, None);
        assert_eq!(d.attempts.len(), MAX_ATTEMPTS as usize);
        assert!(!d.is_due(now + Duration::days(30)));

        // A redelivery starts a new run; attempt numbers continue.
        let again = d.redelivered(now);
        assert!(again.is_due(now));
        let done = again.after_attempt(attempt(&again, AttemptOutcome::Delivered, now), now);
        assert_eq!(done.status, DeliveryStatus::Succeeded);
        assert_eq!(done.attempts.last().unwrap().number, MAX_ATTEMPTS + 1);
    }

    #[test]
    fn a_lease_makes_the_delivery_not_due_until_it_runs_out() {
        let now = Utc::now();
        let leased = delivery(now).leased(now);
        assert!(!leased.is_due(now + Duration::seconds(LEASE_SECONDS - 1)));
        assert!(leased.is_due(now + Duration::seconds(LEASE_SECONDS)));
    }

    fn outcome() -> impl Strategy<Value = AttemptOutcome> {
        prop_oneof![
            Just(AttemptOutcome::Delivered),
            Just(AttemptOutcome::Rejected),
            Just(AttemptOutcome::Unreachable),
            Just(AttemptOutcome::Forbidden),
        ]
    }

    proptest! {
        /// Whatever the outcomes: a run never makes more than MAX_ATTEMPTS attempts, a success
        /// ends it, the due time only moves forward, and the kept attempts stay bounded.
        #[test]
        fn a_run_is_bounded_and_ends_on_success(outcomes in proptest::collection::vec(outcome(), 1..40), redeliver_every in 1usize..15) {
            let start = Utc::now();
            let mut d = delivery(start);
            let mut now = start;
            for (i, o) in outcomes.into_iter().enumerate() {
                if !d.is_due(now) {
                    if i % redeliver_every == 0 {
                        d = d.redelivered(now);
                    } else {
                        continue;
                    }
                }
                let before = d.clone();
                d = d.after_attempt(attempt(&d, o, now), now);
                prop_assert!(d.run_attempts <= MAX_ATTEMPTS);
                prop_assert!(d.attempts.len() <= KEPT_ATTEMPTS);
                match o {
                    AttemptOutcome::Delivered => prop_assert_eq!(d.status, DeliveryStatus::Succeeded),
                    _ if d.run_attempts == MAX_ATTEMPTS => prop_assert_eq!(d.status, DeliveryStatus::Failed),
                    _ => {
                        prop_assert_eq!(d.status, DeliveryStatus::Pending);
                        prop_assert!(d.next_attempt_at.unwrap() > now);
                    }
                }
                prop_assert!(d.next_attempt_number() > before.next_attempt_number());
                if let Some(at) = d.next_attempt_at {
                    now = at;
                }
            }
        }
    }
}
