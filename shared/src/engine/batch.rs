//! Named writes: a transaction whose parts say what they are, so a refused condition is reported
//! as the part that failed (`Slot::IdempotencyClaim`), never as a position in the batch.

use crate::store::{StoreError, Table, Write};

/// What one write of a transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The resource the transaction changes (payment, payout, C2B payment), conditional on the
    /// version it was read at.
    Entity,
    /// The record of the callback that caused the change (written once per queue message).
    CallbackRecord,
    /// The idempotency key's claim (absent when first used).
    IdempotencyClaim,
    /// The idempotency key's stored first response.
    IdempotencyResponse,
    /// The receipt registry item (`RCPT#`), conditional on its version.
    ReceiptLink,
    /// The STK payment a C2B confirmation echoes.
    EchoedPayment,
    /// The expected payment (invoice) a C2B payment pays, and its account-number claim.
    ExpectedPayment,
    /// The C2B confirmation linked to an STK payment's receipt.
    LinkedC2bPayment,
    /// The outbox event of the change (`EVT#`).
    Event,
    /// A limit's counter or window (merchant, phone or recipient caps), by its position among
    /// the admission's writes.
    Limit(usize),
    /// An approval threshold's running total.
    ApprovalTotal,
    /// An audit entry (absent: its source is appended once).
    AuditEntry,
    /// An audit chain's (or digest chain's) head, conditional on the version read.
    AuditHead,
    /// An audit digest.
    AuditDigest,
}

impl Slot {
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Entity => "entity",
            Slot::CallbackRecord => "callback_record",
            Slot::IdempotencyClaim => "idempotency_claim",
            Slot::IdempotencyResponse => "idempotency_response",
            Slot::ReceiptLink => "receipt_link",
            Slot::EchoedPayment => "echoed_payment",
            Slot::ExpectedPayment => "expected_payment",
            Slot::LinkedC2bPayment => "linked_c2b_payment",
            Slot::Event => "event",
            Slot::Limit(_) => "limit",
            Slot::ApprovalTotal => "approval_total",
            Slot::AuditEntry => "audit_entry",
            Slot::AuditHead => "audit_head",
            Slot::AuditDigest => "audit_digest",
        }
    }
}

/// Why a batch was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The condition of this part failed; nothing was written.
    #[error("condition failed on the {} part", .slot.as_str())]
    Refused { slot: Slot },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CommitError {
    fn from(error: StoreError) -> Self {
        CommitError::Store(error)
    }
}

/// One transaction being built: writes, each with the name of what it is for.
#[derive(Debug, Default)]
pub struct Batch {
    parts: Vec<(Slot, Write)>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch { parts: Vec::new() }
    }

    pub fn push(&mut self, slot: Slot, write: Write) -> &mut Batch {
        self.parts.push((slot, write));
        self
    }

    pub fn extend(&mut self, slot: Slot, writes: impl IntoIterator<Item = Write>) -> &mut Batch {
        self.parts.extend(writes.into_iter().map(|w| (slot, w)));
        self
    }

    pub fn append(&mut self, parts: impl IntoIterator<Item = (Slot, Write)>) -> &mut Batch {
        self.parts.extend(parts);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn contains(&self, slot: Slot) -> bool {
        self.parts.iter().any(|(s, _)| *s == slot)
    }

    /// All parts are written, or none. A failed condition names its part.
    pub async fn commit(self, table: &dyn Table) -> Result<(), CommitError> {
        let (slots, writes): (Vec<Slot>, Vec<Write>) = self.parts.into_iter().unzip();
        match table.write(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { index }) => match slots.get(index) {
                Some(slot) => Err(CommitError::Refused { slot: *slot }),
                None => Err(CommitError::Store(StoreError::ConditionFailed { index })),
            },
            Err(error) => Err(CommitError::Store(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryTable;
    use crate::store::{Condition, Item};

    fn put(key: &str, condition: Condition) -> Write {
        Write::Put {
            item: Item::new(key, 1, "{}".into()),
            condition,
        }
    }

    #[tokio::test]
    async fn a_refused_condition_names_its_part_not_its_position() {
        let table = MemoryTable::new();
        table
            .write(vec![put("CLAIM", Condition::Absent { now_epoch: 0 })])
            .await
            .unwrap();
        let mut batch = Batch::new();
        batch
            .push(Slot::Entity, put("PAY#1", Condition::Absent { now_epoch: 0 }))
            .push(Slot::Event, put("EVT#1", Condition::Absent { now_epoch: 0 }))
            .push(Slot::IdempotencyClaim, put("CLAIM", Condition::Absent { now_epoch: 0 }));
        assert_eq!(
            batch.commit(&table).await,
            Err(CommitError::Refused {
                slot: Slot::IdempotencyClaim
            })
        );
        assert!(
            table.get("PAY#1").await.unwrap().is_none(),
            "nothing of a refused batch is written"
        );
    }
}
