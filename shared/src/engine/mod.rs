//! The settle engine: the one way a resource's state changes.
//!
//! A flow (payments, payouts, ...) describes its state machine with [`Flow`]: how to read its
//! record, the pure `decide`, the conditional update, the writes a change brings with it
//! (`effects`), and the event a change emits. [`Settler`] owns the algorithm every flow shares:
//!
//! 1. read the record (or take the one the caller just read);
//! 2. decide with the pure state machine (apply, or ignore with a reason);
//! 3. build one transaction of named parts ([`Batch`]): the callback record that caused it (with
//!    its verdict), the conditional update, the flow's effects, the outbox event
//!    ([`crate::events`]), and whatever the caller adds (e.g. the idempotency response);
//! 4. commit it; on conflict decide again from a fresh read.
//!
//! **Retry policy** (one, for every flow): at most [`MAX_ATTEMPTS`] attempts. A refused
//! condition on a part that depends on what was read ([`Slot::Entity`] and the flow's effects)
//! means someone else moved it first: read again and decide again. `TransactionConflict` (another
//! transaction in progress on one of the items; nothing written) is retried the same way after a
//! short jittered pause. A refused [`Slot::CallbackRecord`] means this very message was processed
//! before: [`Settled::AlreadyProcessed`]. Any other refused part is the caller's to interpret
//! ([`Settled::Refused`]). Giving up is [`StoreError::Unavailable`]: the caller retries later
//! (a queue message is redelivered), never guesses.

pub mod batch;
pub mod sweep;
mod sweep_control;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use batch::{Batch, CommitError, Slot};

use crate::clock::Clock;
use crate::events::{repo as events, EventRecord};
use crate::repo::callbacks::{self, CallbackRecord, Verdict};
use crate::store::{StoreError, Table, Write};

/// Attempts of one settle before giving up (see the module's retry policy).
pub const MAX_ATTEMPTS: u32 = 8;

/// Why an event changed nothing.
pub trait IgnoreReason: std::fmt::Debug + Clone + Send + Sync {
    /// Stable code recorded on callback records and counted in metrics.
    fn code(&self) -> &'static str;
    /// Something to alert on (a contradiction), rather than a harmless repeat.
    fn is_anomaly(&self) -> bool;
    /// The same thing was already applied.
    fn is_duplicate(&self) -> bool;
}

/// A resource's state machine, as the engine needs it.
#[async_trait]
pub trait Flow: Send + Sync + 'static {
    type Id: std::fmt::Display + Send + Sync + ?Sized;
    type Entity: Clone + std::fmt::Debug + Send + Sync;
    type Event: Send + Sync;
    type Ignored: IgnoreReason;

    /// The callback record's reason when the resource does not exist (`unknown_payment`).
    const UNKNOWN_REASON: &'static str;

    async fn load(&self, table: &dyn Table, id: &Self::Id) -> Result<Option<Self::Entity>, StoreError>;

    /// The pure state machine.
    fn decide(entity: &Self::Entity, event: &Self::Event, now: DateTime<Utc>) -> Result<Self::Entity, Self::Ignored>;

    /// The resource an event creates when none exists yet (a C2B confirmation records a new
    /// payment); `None`: the event needs an existing resource ([`Settled::Unknown`]).
    fn create(_event: &Self::Event, _now: DateTime<Utc>) -> Option<Self::Entity> {
        None
    }

    /// The write replacing the entity read at `after`'s version.
    fn update(after: &Self::Entity) -> Write;

    /// The writes creating `after` (each conditional on absence). Needed only by flows whose
    /// events create their resource ([`Flow::create`]).
    fn insert(_after: &Self::Entity) -> Vec<Write> {
        Vec::new()
    }

    fn version(entity: &Self::Entity) -> u64;

    fn set_version(entity: &mut Self::Entity, version: u64);

    /// The id a callback record names (`resource_id`).
    fn resource_id(entity: &Self::Entity) -> String;

    /// What the change brings with it in other records, each write conditional on what was read
    /// (a refusal of one is decided again like a refusal of the entity). It may complete `after`
    /// with what those records say (a C2B payment linked to the STK payment it echoes, matched to
    /// the invoice it pays). `before` is `None` for a resource being created; `attempt` counts
    /// from 0.
    async fn effects(
        &self,
        _table: &dyn Table,
        _before: Option<&Self::Entity>,
        _after: &mut Self::Entity,
        _now: DateTime<Utc>,
        _attempt: u32,
    ) -> Result<Vec<(Slot, Write)>, StoreError> {
        Ok(Vec::new())
    }

    /// The event of this change (`after` at its new version; `before` `None` when it is being
    /// created), or `None` when nothing a consumer cares about changed.
    fn event(before: Option<&Self::Entity>, after: &Self::Entity, now: DateTime<Utc>) -> Option<EventRecord>;

    /// The verdict and reason a callback record of an applied change carries (most flows:
    /// applied; a C2B Transaction Status answer that only records a "not found" is `ignored`).
    fn applied_verdict(
        _event: &Self::Event,
        _before: Option<&Self::Entity>,
        _after: &Self::Entity,
    ) -> (Verdict, String) {
        (Verdict::Applied, "applied".to_owned())
    }

    /// Metrics and logs of a settled outcome (ids and codes only, never personal data).
    fn observe(_outcome: &Settled<Self>)
    where
        Self: Sized,
    {
    }
}

/// What settling an event did.
#[derive(Debug)]
pub enum Settled<F: Flow> {
    /// The event created the resource (as stored now, at version 1).
    Created {
        after: Box<F::Entity>,
    },
    Applied {
        before: Box<F::Entity>,
        /// As stored now (at its new version).
        after: Box<F::Entity>,
    },
    Unchanged {
        entity: Box<F::Entity>,
        why: F::Ignored,
    },
    /// The callback record was already written: this exact message was processed before.
    AlreadyProcessed,
    /// The resource does not exist.
    Unknown,
    /// A part the caller added was refused; nothing was written.
    Refused {
        slot: Slot,
    },
}

impl<F: Flow> Settled<F> {
    pub fn verdict(&self) -> Verdict {
        match self {
            Settled::Applied { .. } | Settled::Created { .. } => Verdict::Applied,
            Settled::Unchanged { why, .. } if why.is_duplicate() => Verdict::Duplicate,
            Settled::AlreadyProcessed => Verdict::Duplicate,
            Settled::Unchanged { why, .. } if !why.is_anomaly() => Verdict::Ignored,
            Settled::Unchanged { .. } | Settled::Unknown | Settled::Refused { .. } => Verdict::Anomaly,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Settled::Applied { .. } | Settled::Created { .. } => "applied",
            Settled::Unchanged { why, .. } => why.code(),
            Settled::AlreadyProcessed => "already_processed",
            Settled::Unknown => F::UNKNOWN_REASON,
            Settled::Refused { slot } => slot.as_str(),
        }
    }

    /// The resource as stored after this event, when it exists.
    pub fn entity(&self) -> Option<&F::Entity> {
        match self {
            Settled::Applied { after, .. } | Settled::Created { after } => Some(after),
            Settled::Unchanged { entity, .. } => Some(entity),
            _ => None,
        }
    }
}

/// The verdict and reason a callback record of `outcome` carries (what the engine writes on the
/// record it is given; handlers answer with the verdict).
pub fn verdict_of<F: Flow>(event: &F::Event, outcome: &Settled<F>) -> (Verdict, String) {
    match outcome {
        Settled::Applied { before, after } => F::applied_verdict(event, Some(before), after),
        Settled::Created { after } => F::applied_verdict(event, None, after),
        other => (other.verdict(), other.reason().to_owned()),
    }
}

/// Parts a caller adds to the transaction, given the outcome about to be written.
pub type AlsoWrite<'a, F> = &'a (dyn Fn(&Settled<F>) -> Vec<(Slot, Write)> + Send + Sync);

/// One settle: the event, and what the caller knows or adds.
pub struct Settle<'a, F: Flow> {
    pub id: &'a F::Id,
    pub event: &'a F::Event,
    /// The entity as the caller just read it (saves a read on the first attempt).
    pub known: Option<F::Entity>,
    /// The callback that caused it: written in the same transaction with its verdict filled in.
    pub record: Option<CallbackRecord>,
    pub also: Option<AlsoWrite<'a, F>>,
}

impl<'a, F: Flow> Settle<'a, F> {
    pub fn new(id: &'a F::Id, event: &'a F::Event) -> Settle<'a, F> {
        Settle {
            id,
            event,
            known: None,
            record: None,
            also: None,
        }
    }

    pub fn known(mut self, entity: F::Entity) -> Self {
        self.known = Some(entity);
        self
    }

    pub fn known_opt(mut self, entity: Option<F::Entity>) -> Self {
        self.known = entity;
        self
    }

    pub fn recording(mut self, record: Option<CallbackRecord>) -> Self {
        self.record = record;
        self
    }

    pub fn also(mut self, also: AlsoWrite<'a, F>) -> Self {
        self.also = Some(also);
        self
    }
}

/// The generic settler (see the module docs for the algorithm and its retry policy).
pub struct Settler<F: Flow> {
    pub flow: F,
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
}

impl<F: Flow + Clone> Clone for Settler<F> {
    fn clone(&self) -> Self {
        Settler {
            flow: self.flow.clone(),
            table: self.table.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<F: Flow> Settler<F> {
    pub fn new(flow: F, table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Settler<F> {
        Settler { flow, table, clock }
    }

    /// Applies `event` to the resource `id`, with no callback record and nothing added.
    pub async fn apply(
        &self,
        id: &F::Id,
        event: &F::Event,
        known: Option<F::Entity>,
    ) -> Result<Settled<F>, StoreError> {
        self.settle(Settle::new(id, event).known_opt(known)).await
    }

    pub async fn settle(&self, request: Settle<'_, F>) -> Result<Settled<F>, StoreError> {
        let Settle {
            id,
            event,
            mut known,
            mut record,
            also,
        } = request;
        for attempt in 0..MAX_ATTEMPTS {
            let entity = match known.take() {
                Some(entity) => Some(entity),
                None => self.flow.load(self.table.as_ref(), id).await?,
            };
            let now = self.clock.now();
            let mut outcome = match entity {
                Some(entity) => match F::decide(&entity, event, now) {
                    Ok(next) => Settled::Applied {
                        before: Box::new(entity),
                        after: Box::new(next),
                    },
                    Err(why) => Settled::Unchanged {
                        entity: Box::new(entity),
                        why,
                    },
                },
                None => match F::create(event, now) {
                    Some(created) => Settled::Created {
                        after: Box::new(created),
                    },
                    None => return self.unknown(record.as_mut()).await,
                },
            };
            let mut batch = Batch::new();
            // The change's own writes, its effects (which may complete it) and its event.
            let mut changed = match &mut outcome {
                Settled::Applied { before, after } => Some((Some(&**before), &mut **after)),
                Settled::Created { after } => Some((None, &mut **after)),
                _ => None,
            };
            if let Some((before, after)) = changed.as_mut() {
                let effects = self
                    .flow
                    .effects(self.table.as_ref(), *before, after, now, attempt)
                    .await?;
                match before {
                    Some(_) => {
                        batch.push(Slot::Entity, F::update(after));
                    }
                    None => {
                        batch.extend(Slot::Entity, F::insert(after));
                    }
                }
                batch.append(effects);
                // The event shows the entity as stored (its new version), without copying it.
                let read_at = F::version(after);
                F::set_version(after, before.map_or(1, |_| read_at + 1));
                let event = F::event(*before, after, now);
                F::set_version(after, read_at);
                if let Some(event) = event {
                    batch.push(Slot::Event, events::insert(&event));
                }
            }
            if let Some(record) = record.as_mut() {
                let (verdict, reason) = verdict_of(event, &outcome);
                record.verdict = verdict;
                record.reason = reason;
                record.processed_at = now;
                if record.resource_id.is_none() {
                    record.resource_id = outcome.entity().map(F::resource_id);
                }
                batch.push(Slot::CallbackRecord, callbacks::insert(record));
            }
            let added = also.map(|also| also(&outcome)).unwrap_or_default();
            let added_slots: Vec<Slot> = added.iter().map(|(slot, _)| *slot).collect();
            batch.append(added);
            if batch.is_empty() {
                return Ok(outcome);
            }
            match batch.commit(self.table.as_ref()).await {
                Ok(()) => {
                    let outcome = match outcome {
                        Settled::Applied { before, mut after } => {
                            let version = F::version(&after) + 1;
                            F::set_version(&mut after, version);
                            Settled::Applied { before, after }
                        }
                        Settled::Created { mut after } => {
                            F::set_version(&mut after, 1);
                            Settled::Created { after }
                        }
                        other => other,
                    };
                    F::observe(&outcome);
                    return Ok(outcome);
                }
                Err(CommitError::Refused {
                    slot: Slot::CallbackRecord,
                }) => return Ok(Settled::AlreadyProcessed),
                Err(CommitError::Refused { slot }) if added_slots.contains(&slot) => {
                    return Ok(Settled::Refused { slot })
                }
                // The entity or one of its effects moved under us (or another message created
                // it first): decide again from a fresh read.
                Err(CommitError::Refused { .. }) => continue,
                Err(CommitError::Store(StoreError::TransactionConflict)) => {
                    pause(attempt).await;
                    continue;
                }
                Err(CommitError::Store(error)) => return Err(error),
            }
        }
        tracing::warn!(id = %id, "gave up settling after {MAX_ATTEMPTS} attempts: the resource kept changing");
        Err(StoreError::Unavailable("the resource kept changing under us".into()))
    }

    async fn unknown(&self, record: Option<&mut CallbackRecord>) -> Result<Settled<F>, StoreError> {
        let Some(record) = record else {
            return Ok(Settled::Unknown);
        };
        record.verdict = Verdict::Anomaly;
        record.reason = F::UNKNOWN_REASON.into();
        match self.table.write(vec![callbacks::insert(record)]).await {
            Ok(()) => Ok(Settled::Unknown),
            Err(StoreError::ConditionFailed { .. }) => Ok(Settled::AlreadyProcessed),
            Err(e) => Err(e),
        }
    }
}

/// A short jittered pause before retrying a transaction conflict (1-2 ms doubling, at most ~64 ms).
async fn pause(attempt: u32) {
    use rand::Rng;
    let base = 1u64 << attempt.min(6);
    let jitter = rand::thread_rng().gen_range(0..=base);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}
