//! The outbox: an event for every state change, written in the same transaction as the change.
//!
//! The settle engine ([`crate::engine`]) writes an [`EventRecord`] (`EVT#<id>`) next to every
//! change of a payment, payout or C2B payment: nothing changes without its event, and no event is
//! written for a change that did not happen (both are parts of one conditional transaction).
//! DynamoDB Streams delivers new event items to the `events` function (in the dev stack the
//! in-memory table emits the same stream); [`handler::EventHandler`] is the one place consumers
//! plug in (webhooks, audit, live status). An event not marked handled within
//! [`handler::REDRIVE_AFTER_SECONDS`] is delivered again by the sweep, so an event is never lost
//! between the table and its consumers (a stream keeps records 24 hours; a consumer may be down
//! for longer).
//!
//! The catalogue is [`EventType`]; `docs/architecture.md` lists it.

pub mod handler;
pub mod invariant;
pub mod repo;
pub mod stream;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Every event the product emits: `<resource>.<what happened>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A payment was accepted by the API (`pending`).
    #[serde(rename = "payment.created")]
    PaymentCreated,
    /// Daraja accepted the STK Push: the customer's phone is being prompted (`sent`).
    #[serde(rename = "payment.sent")]
    PaymentSent,
    /// Whether money moved is not known; reconciliation will tell (`unknown`).
    #[serde(rename = "payment.unknown")]
    PaymentUnknown,
    /// The customer paid (`completed`; also a late success after `timeout`).
    #[serde(rename = "payment.completed")]
    PaymentCompleted,
    /// Daraja refused or the customer's payment failed (`failed`).
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    /// The customer cancelled the prompt (`cancelled`).
    #[serde(rename = "payment.cancelled")]
    PaymentCancelled,
    /// No final answer by the deadline (`timeout`).
    #[serde(rename = "payment.timed_out")]
    PaymentTimedOut,
    /// A completed payment received its M-Pesa receipt (e.g. from its C2B echo) without a change
    /// of status.
    #[serde(rename = "payment.receipt_received")]
    PaymentReceiptReceived,
    /// A payout was accepted by the API (`awaiting_approval` or `pending`).
    #[serde(rename = "payout.created")]
    PayoutCreated,
    /// A payout awaiting approval was approved (`pending`).
    #[serde(rename = "payout.approved")]
    PayoutApproved,
    /// A payout awaiting approval was rejected (`rejected`).
    #[serde(rename = "payout.rejected")]
    PayoutRejected,
    /// Daraja accepted the B2C request (`sent`).
    #[serde(rename = "payout.sent")]
    PayoutSent,
    /// Whether money moved is not known; Transaction Status will tell (`unknown`).
    #[serde(rename = "payout.unknown")]
    PayoutUnknown,
    /// The recipient was paid (`completed`).
    #[serde(rename = "payout.completed")]
    PayoutCompleted,
    /// No money moved (`failed`).
    #[serde(rename = "payout.failed")]
    PayoutFailed,
    /// A completed payout received its receipt without a change of status.
    #[serde(rename = "payout.receipt_received")]
    PayoutReceiptReceived,
    /// A C2B confirmation was recorded (verified or not yet).
    #[serde(rename = "c2b.payment.received")]
    C2bPaymentReceived,
    /// Daraja confirmed a recorded C2B payment: it now pays what it matches.
    #[serde(rename = "c2b.payment.verified")]
    C2bPaymentVerified,
    /// Daraja did not confirm a recorded C2B payment: it moves no money.
    #[serde(rename = "c2b.payment.rejected")]
    C2bPaymentRejected,
    /// A recorded C2B payment is the echo of one of our STK payments (same receipt, or same
    /// shortcode, reference and amount): a notification of that payment, never new money.
    #[serde(rename = "c2b.payment.linked")]
    C2bPaymentLinked,
    /// A webhook endpoint that had failed for days was disabled (the merchant re-enables it).
    #[serde(rename = "webhook_endpoint.disabled")]
    WebhookEndpointDisabled,
    /// A hosted checkout session was created (`open`).
    #[serde(rename = "checkout.session.created")]
    CheckoutSessionCreated,
    /// The customer asked for a prompt: an attempt's payment is being initiated.
    #[serde(rename = "checkout.session.attempt_started")]
    CheckoutSessionAttemptStarted,
    /// An attempt's payment failed; the session stays open while attempts are left.
    #[serde(rename = "checkout.session.attempt_failed")]
    CheckoutSessionAttemptFailed,
    /// One attempt's payment completed (`completed`).
    #[serde(rename = "checkout.session.completed")]
    CheckoutSessionCompleted,
    /// The session closed unpaid (`expired`: its deadline, the shop, the customer, or no
    /// attempts left).
    #[serde(rename = "checkout.session.expired")]
    CheckoutSessionExpired,
}

impl EventType {
    pub const ALL: [EventType; 26] = [
        EventType::PaymentCreated,
        EventType::PaymentSent,
        EventType::PaymentUnknown,
        EventType::PaymentCompleted,
        EventType::PaymentFailed,
        EventType::PaymentCancelled,
        EventType::PaymentTimedOut,
        EventType::PaymentReceiptReceived,
        EventType::PayoutCreated,
        EventType::PayoutApproved,
        EventType::PayoutRejected,
        EventType::PayoutSent,
        EventType::PayoutUnknown,
        EventType::PayoutCompleted,
        EventType::PayoutFailed,
        EventType::PayoutReceiptReceived,
        EventType::C2bPaymentReceived,
        EventType::C2bPaymentVerified,
        EventType::C2bPaymentRejected,
        EventType::C2bPaymentLinked,
        EventType::WebhookEndpointDisabled,
        EventType::CheckoutSessionCreated,
        EventType::CheckoutSessionAttemptStarted,
        EventType::CheckoutSessionAttemptFailed,
        EventType::CheckoutSessionCompleted,
        EventType::CheckoutSessionExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PaymentCreated => "payment.created",
            EventType::PaymentSent => "payment.sent",
            EventType::PaymentUnknown => "payment.unknown",
            EventType::PaymentCompleted => "payment.completed",
            EventType::PaymentFailed => "payment.failed",
            EventType::PaymentCancelled => "payment.cancelled",
            EventType::PaymentTimedOut => "payment.timed_out",
            EventType::PaymentReceiptReceived => "payment.receipt_received",
            EventType::PayoutCreated => "payout.created",
            EventType::PayoutApproved => "payout.approved",
            EventType::PayoutRejected => "payout.rejected",
            EventType::PayoutSent => "payout.sent",
            EventType::PayoutUnknown => "payout.unknown",
            EventType::PayoutCompleted => "payout.completed",
            EventType::PayoutFailed => "payout.failed",
            EventType::PayoutReceiptReceived => "payout.receipt_received",
            EventType::C2bPaymentReceived => "c2b.payment.received",
            EventType::C2bPaymentVerified => "c2b.payment.verified",
            EventType::C2bPaymentRejected => "c2b.payment.rejected",
            EventType::C2bPaymentLinked => "c2b.payment.linked",
            EventType::WebhookEndpointDisabled => "webhook_endpoint.disabled",
            EventType::CheckoutSessionCreated => "checkout.session.created",
            EventType::CheckoutSessionAttemptStarted => "checkout.session.attempt_started",
            EventType::CheckoutSessionAttemptFailed => "checkout.session.attempt_failed",
            EventType::CheckoutSessionCompleted => "checkout.session.completed",
            EventType::CheckoutSessionExpired => "checkout.session.expired",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// What kind of resource an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Payment,
    Payout,
    C2bPayment,
    WebhookEndpoint,
    CheckoutSession,
}

/// What caused the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A merchant's API call (creation).
    Api,
    /// Daraja's synchronous answer to our request.
    Daraja,
    /// A callback from Safaricom (STK, B2C result, C2B confirmation, Transaction Status).
    Callback,
    /// A reconciliation sweep (STK Query, Transaction Status, deadline).
    Sweeper,
    /// A person acting on it (approval, rejection).
    Operator,
    /// The customer, on the hosted checkout page.
    Customer,
}

/// One event: what happened to which resource, its public view after the change, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    /// `evt_<resource id>_<sequence>`: the same change always has the same id.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub resource: ResourceKind,
    pub resource_id: String,
    /// The resource's version after the change: strictly increasing per resource (not
    /// contiguous: bookkeeping writes such as a sweep's claim also move the version).
    pub sequence: u64,
    /// The merchant the resource belongs to (unknown for a C2B payment on an unregistered
    /// shortcode: `None`).
    pub merchant: Option<String>,
    pub cause: Cause,
    pub occurred_at: DateTime<Utc>,
    /// The resource's public view after the change (phones masked), as the API shows it. Kept
    /// as the JSON text it was written as: an event is read, marked and shown without ever
    /// rebuilding the view.
    pub data: Box<serde_json::value::RawValue>,
    /// When the events function delivered it to every consumer; `None` until then.
    #[serde(default)]
    pub handled_at: Option<DateTime<Utc>>,
    /// Deliveries attempted (by the stream or the redrive sweep).
    #[serde(default)]
    pub deliveries: u32,
    #[serde(skip)]
    pub version: u64,
}

impl EventRecord {
    pub fn id_for(resource_id: &str, sequence: u64) -> String {
        format!("evt_{resource_id}_{sequence:08}")
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        event_type: EventType,
        resource: ResourceKind,
        resource_id: &str,
        sequence: u64,
        merchant: Option<String>,
        cause: Cause,
        occurred_at: DateTime<Utc>,
        data: Box<serde_json::value::RawValue>,
    ) -> EventRecord {
        EventRecord {
            id: EventRecord::id_for(resource_id, sequence),
            event_type,
            resource,
            resource_id: resource_id.to_owned(),
            sequence,
            merchant,
            cause,
            occurred_at,
            data,
            handled_at: None,
            deliveries: 0,
            version: 0,
        }
    }
}

/// `view` as an event's `data` (an empty object if it cannot be written, which a view never is).
pub fn data_of<T: Serialize>(view: &T) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(view).unwrap_or_else(|_| empty_data())
}

/// `{}` as an event's `data`.
pub fn empty_data() -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string("{}".to_owned()).expect("valid JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_round_trips_through_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.as_str()));
        }
        assert_eq!(EventType::parse("payment.paid"), None);
    }
}
