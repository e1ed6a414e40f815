//! The events of C2B payments (the outbox, [`crate::events`]): which change of a recorded
//! confirmation emits which event. Every writer of a C2B payment adds the event returned here to
//! the transaction that writes the payment.

use chrono::{DateTime, Utc};

use crate::domain::c2b::{C2bKind, C2bPayment};
use crate::domain::c2b_verification::VerificationStatus;
use crate::events::{repo as events, Cause, EventRecord, EventType, ResourceKind};
use crate::store::Write;
use crate::views::c2b::C2bPaymentView;

/// The event of a C2B payment's change: `before` as read (`None`: it is new), `after` as stored
/// by the change (at its new version: the event's sequence).
pub fn c2b_event(before: Option<&C2bPayment>, after: &C2bPayment, now: DateTime<Utc>) -> Option<EventRecord> {
    let event_type = match before {
        None => EventType::C2bPaymentReceived,
        Some(before) => {
            let status = |p: &C2bPayment| p.verification.status;
            if before.kind != C2bKind::StkDuplicate && after.kind == C2bKind::StkDuplicate {
                EventType::C2bPaymentLinked
            } else if status(before) != VerificationStatus::Verified && status(after) == VerificationStatus::Verified {
                EventType::C2bPaymentVerified
            } else if status(before) != VerificationStatus::Rejected && status(after) == VerificationStatus::Rejected {
                EventType::C2bPaymentRejected
            } else {
                return None;
            }
        }
    };
    Some(EventRecord::new(
        event_type,
        ResourceKind::C2bPayment,
        after.id.as_str(),
        after.version,
        after.owner.as_ref().map(ToString::to_string),
        Cause::Callback,
        now,
        crate::events::data_of(&C2bPaymentView::from(after)),
    ))
}

/// The event write of a C2B payment changed outside its own flow (an STK completion linking its
/// echo): `after` as it will be written, at the version it was read at.
pub fn c2b_event_write(before: &C2bPayment, after: &C2bPayment, now: DateTime<Utc>) -> Option<Write> {
    let mut stored = after.clone();
    stored.version += 1;
    c2b_event(Some(before), &stored, now).map(|event| events::insert(&event))
}
