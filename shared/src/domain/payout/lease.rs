//! Submissions: a worker calls B2C only while it holds the payout's [`SubmissionLease`], so two
//! jobs for one payout never both call Daraja (see the module documentation of `domain::payout`).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Payout, PayoutStatus};

/// A worker's claim to submit a payout to Daraja. While it is live no other job submits it; it is
/// cleared when the payout leaves `pending`, or released early when the attempt provably did not
/// reach Daraja. After a lost answer or a crash it simply runs out, and the sweeper re-queues the
/// payout then (its next check is the lease's end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionLease {
    /// Who holds it (the worker instance and the queue message), for logs and operators.
    pub holder: String,
    pub until: DateTime<Utc>,
}

/// Why a job may not submit a payout now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseRefused {
    /// Only a `pending` payout is submitted.
    NotPending { status: PayoutStatus },
    /// Another job holds the lease until then.
    Held { holder: String, until: DateTime<Utc> },
}

impl Payout {
    /// The payout with a submission lease for `holder` until `now + lease`, the attempt counted,
    /// and its next check moved to the lease's end (so the sweeper re-queues it only once the
    /// lease has run out). Written with a version condition, this is what lets one job, and only
    /// one, call Daraja.
    pub fn take_submission_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Payout, LeaseRefused> {
        if self.status != PayoutStatus::Pending {
            return Err(LeaseRefused::NotPending { status: self.status });
        }
        if let Some(held) = self.submission_lease.as_ref().filter(|l| l.until > now) {
            return Err(LeaseRefused::Held {
                holder: held.holder.clone(),
                until: held.until,
            });
        }
        let until = now + lease;
        let mut next = self.clone();
        next.submit_attempts = self.submit_attempts.saturating_add(1);
        next.submission_lease = Some(SubmissionLease {
            holder: holder.to_owned(),
            until,
        });
        next.next_check_at = Some(until);
        Ok(next)
    }

    /// The attempt under the current lease provably never reached Daraja: give the lease back
    /// (the job's retry may take it at once) and remember that this attempt cannot have paid.
    pub fn released_unsent(&self, now: DateTime<Utc>) -> Payout {
        let mut next = self.clone();
        if self.status == PayoutStatus::Pending && self.submission_lease.is_some() {
            next.submission_lease = None;
            next.unsent_attempts = self.unsent_attempts.saturating_add(1).min(self.submit_attempts);
            next.next_check_at = Some(now + self.timings.requeue());
        }
        next
    }

    /// Whether an attempt before the current one may have reached Daraja (so it may have paid,
    /// whatever Daraja says of this one).
    pub fn earlier_attempt_may_have_paid(&self) -> bool {
        self.submit_attempts.saturating_sub(1) > self.unsent_attempts
    }
}
