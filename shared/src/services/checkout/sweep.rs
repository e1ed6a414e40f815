//! Closes open sessions past their expiry (`checkout.session.expired`, closed by `deadline`).
//! A session whose prompt is still open is left for a later sweep: its payment settles by its
//! own deadline, and a session is never closed under a prompt that could still be paid.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::flow::SessionSettled;
use super::service::{CheckoutError, CheckoutService};
use crate::domain::checkout_session::CheckoutSession;
use crate::engine::sweep::{self, Pacing, Sweep, SweepControl};
use crate::metrics;
use crate::store::StoreError;

/// Sessions read per index shard per sweep.
pub const EXPIRY_BATCH: usize = 50;

/// No Daraja queries: the pace and breaker never apply; the budget bounds one sweep.
pub const EXPIRY_PACING: Pacing = Pacing {
    concurrency: 8,
    queries_per_second: 1000,
    time_budget: std::time::Duration::from_secs(10),
    failure_threshold: u32::MAX,
};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpirySweepReport {
    pub due: usize,
    pub closed: usize,
    /// Past expiry with a prompt still open (or completed by it meanwhile).
    pub left_open: usize,
    pub errors: usize,
}

pub struct SessionExpirySweep {
    pub service: Arc<CheckoutService>,
}

#[async_trait]
impl Sweep for SessionExpirySweep {
    type Item = CheckoutSession;
    type Checked = bool;

    const ITEM: &'static str = "checkout session";

    fn pacing(&self) -> Pacing {
        EXPIRY_PACING
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<CheckoutSession>, StoreError> {
        self.service.repo.past_expiry(now, EXPIRY_BATCH).await
    }

    async fn check(&self, session: CheckoutSession, _control: &SweepControl) -> Result<bool, StoreError> {
        match self.service.close_if_past_expiry(session).await {
            Ok(SessionSettled::Applied { .. }) => Ok(true),
            Ok(_) => Ok(false),
            Err(CheckoutError::Unavailable) => Err(StoreError::Unavailable("checkout session store".into())),
            Err(error) => {
                tracing::warn!(%error, "a checkout session past its expiry could not be closed");
                Ok(false)
            }
        }
    }
}

impl SessionExpirySweep {
    pub async fn sweep(&self) -> ExpirySweepReport {
        let swept = sweep::run(self, self.service.now()).await;
        let mut report = ExpirySweepReport {
            due: swept.due,
            errors: usize::from(swept.read_failed),
            ..ExpirySweepReport::default()
        };
        let mut skipped = 0;
        for outcome in swept.outcomes {
            match outcome.checked_or_count(&mut skipped, &mut report.errors) {
                Some(true) => report.closed += 1,
                Some(false) => report.left_open += 1,
                None => {}
            }
        }
        report.left_open += skipped;
        if report.closed > 0 {
            metrics::count("CheckoutSessionsExpired", report.closed as u64, &[]);
        }
        report
    }
}
