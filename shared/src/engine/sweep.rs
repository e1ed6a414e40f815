//! The one sweep loop: every flow's sweeper (STK reconciliation, payout reconciliation, C2B
//! verification, the events redrive) reads what is due and checks each item through [`run`],
//! with one pace, one time budget and one circuit breaker ([`SweepControl`]). A flow says only
//! what is due and how one item is checked ([`Sweep`]); an item that fails is logged and counted
//! and never stops the others; what a sweep did not reach, a later sweep does.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;

pub use super::sweep_control::{AfterFailure, SweepControl};
use crate::store::StoreError;

/// How hard a sweep may push (each flow's sweep config holds one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Items checked at once.
    pub concurrency: usize,
    /// Daraja queries per second (each waits its turn: [`SweepControl::take_turn`]).
    pub queries_per_second: u32,
    /// No check starts after this long (the Lambda's timeout minus a margin).
    pub time_budget: std::time::Duration,
    /// Consecutive failed queries after which the sweep stops asking.
    pub failure_threshold: u32,
}

impl Default for Pacing {
    /// The Daraja sweeps' pace: 4 items at once, 5 queries a second, stop asking after 5
    /// consecutive failures, no check started after 50 s (the Lambda's timeout minus a margin).
    fn default() -> Self {
        Pacing {
            concurrency: 4,
            queries_per_second: 5,
            time_budget: std::time::Duration::from_secs(50),
            failure_threshold: 5,
        }
    }
}

/// One flow's sweep.
#[async_trait]
pub trait Sweep: Send + Sync {
    type Item: Send;
    /// What checking one item did (the flow's own report line).
    type Checked: Send;

    /// What an item is, for logs (`payment`, `payout`, `C2B confirmation`, `event`).
    const ITEM: &'static str;

    fn pacing(&self) -> Pacing;

    /// The items due at `now` (bounded by the flow's batch size).
    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<Self::Item>, StoreError>;

    async fn check(&self, item: Self::Item, control: &SweepControl) -> Result<Self::Checked, StoreError>;
}

/// What became of one due item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<C> {
    /// It was checked: the flow's own report line.
    Checked(C),
    /// Not started: the sweep had stopped (circuit breaker) or ran out of time before it.
    Skipped,
    /// Its check returned a store error (logged; a later sweep takes it again).
    Failed,
}

impl<C> Outcome<C> {
    /// The checked item's report line; an item not started is counted in `skipped`, one whose
    /// check failed in `errors` (the counts every Daraja sweep's report keeps), and give `None`.
    pub fn checked_or_count(self, skipped: &mut usize, errors: &mut usize) -> Option<C> {
        match self {
            Outcome::Checked(checked) => return Some(checked),
            Outcome::Skipped => *skipped += 1,
            Outcome::Failed => *errors += 1,
        }
        None
    }
}

/// What one sweep did.
#[derive(Debug)]
pub struct Swept<C> {
    pub due: usize,
    /// One outcome per due item (in no particular order).
    pub outcomes: Vec<Outcome<C>>,
    /// What was due could not be read (logged): nothing was checked.
    pub read_failed: bool,
    pub stopped_early: bool,
    /// Daraja queries made.
    pub queries: usize,
}

/// Runs one sweep of `sweep` at `now`.
pub async fn run<S: Sweep>(sweep: &S, now: DateTime<Utc>) -> Swept<S::Checked> {
    let due = match sweep.due(now).await {
        Ok(due) => due,
        Err(error) => {
            tracing::error!(%error, item = S::ITEM, "sweep could not read what is due");
            return Swept {
                due: 0,
                outcomes: Vec::new(),
                read_failed: true,
                stopped_early: false,
                queries: 0,
            };
        }
    };
    let count = due.len();
    let pacing = sweep.pacing();
    let control = SweepControl::new(pacing.queries_per_second, pacing.time_budget, pacing.failure_threshold);
    let outcomes: Vec<Outcome<S::Checked>> = futures::stream::iter(due)
        .map(|item| async {
            if !control.may_start() {
                return Outcome::Skipped;
            }
            match sweep.check(item, &control).await {
                Ok(checked) => Outcome::Checked(checked),
                Err(error) => {
                    tracing::warn!(%error, item = S::ITEM, "a sweep's check of one item failed; the others go on");
                    Outcome::Failed
                }
            }
        })
        .buffer_unordered(pacing.concurrency.max(1))
        .collect()
        .await;
    Swept {
        due: count,
        outcomes,
        read_failed: false,
        stopped_early: control.stopped(),
        queries: control.queries(),
    }
}
