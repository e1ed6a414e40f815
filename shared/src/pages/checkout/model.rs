//! What the page shows, as the caller hands it over: the session's facts and the one state the
//! customer is in. Borrowed strings, so filling it costs no copies.

use chrono::{DateTime, Utc};

use super::i18n::Lang;
use super::phone::PhoneProblem;
use crate::domain::FailureReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageModel<'a> {
    pub lang: Lang,
    pub session_id: &'a str,
    pub merchant_name: &'a str,
    /// Whole shillings: M-Pesa moves no cents, and floats never touch money.
    pub amount_shillings: u64,
    pub description: Option<&'a str>,
    pub reference: &'a str,
    pub state: PageState<'a>,
    /// The session's expiry.
    pub expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// The shop's origin when the page is shown in its iframe modal (one of the CSP's
    /// frame-ancestors, e.g. `https://shop.example`): the page tells it the outcome with
    /// `postMessage` to exactly this origin. `None` sends nothing.
    pub parent_origin: Option<&'a str>,
    /// A `wss://` URL pushing the same JSON as the status URL, used instead of polling while it
    /// stays open. `None` polls.
    pub live_url: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageState<'a> {
    /// Ask for the phone. `typed`: what the customer typed last (shown again after a
    /// server-side refusal); `problem`: why it was refused; `suggested_masked`: the masked phone
    /// the shop suggested (e.g. "0712 *** 678"), shown as a hint; `after_failure`: how the last
    /// attempt ended; `attempts_left`: attempts the session still allows.
    EnterPhone {
        typed: Option<&'a str>,
        problem: Option<PhoneProblem>,
        suggested_masked: Option<&'a str>,
        after_failure: Option<Outcome>,
        attempts_left: u32,
    },
    /// A prompt is on the phone. `phone_masked` e.g. "0712 *** 678"; `deadline`: when we stop
    /// waiting (the countdown's end); the amount and the shop, for "enter your M-Pesa PIN to pay
    /// KES 1,250 to SHOP".
    Waiting {
        phone_masked: &'a str,
        deadline: DateTime<Utc>,
        amount_shillings: u64,
        merchant_name: &'a str,
    },
    /// Paid. `receipt` e.g. "SFK8Z3X4Q1"; `success_url`: back to the shop (script follows it
    /// after a few seconds; a visible link without script).
    Paid {
        receipt: Option<&'a str>,
        success_url: &'a str,
    },
    /// The session ended unpaid; `cancel_url` returns to the shop.
    Closed { reason: ClosedReason, cancel_url: &'a str },
}

impl PageState<'_> {
    /// The `state` of the status JSON, and the page's `data-state`.
    pub fn code(&self) -> &'static str {
        match self {
            PageState::EnterPhone { .. } => "enter_phone",
            PageState::Waiting { .. } => "waiting",
            PageState::Paid { .. } => "paid",
            PageState::Closed { .. } => "closed",
        }
    }
}

/// How an attempt ended without paying, in the terms a customer can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Result 1032: the customer dismissed the prompt.
    Cancelled,
    /// Result 2001.
    WrongPin,
    /// Result 1.
    InsufficientFunds,
    /// Result 1037: phone off or out of reach.
    Unreachable,
    /// No answer in time.
    TimedOut,
    /// Anything else.
    Declined,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Cancelled,
        Outcome::WrongPin,
        Outcome::InsufficientFunds,
        Outcome::Unreachable,
        Outcome::TimedOut,
        Outcome::Declined,
    ];

    /// Stable: the status JSON's `outcome` and the modal's message carry it.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Cancelled => "cancelled",
            Outcome::WrongPin => "wrong_pin",
            Outcome::InsufficientFunds => "insufficient_funds",
            Outcome::Unreachable => "unreachable",
            Outcome::TimedOut => "timed_out",
            Outcome::Declined => "declined",
        }
    }

    /// A failed payment's reason, as the customer's next step sees it. Reasons a customer
    /// cannot act on (limits, operator faults) are all "declined".
    pub fn from_failure_reason(reason: FailureReason) -> Outcome {
        match reason {
            FailureReason::CancelledByCustomer => Outcome::Cancelled,
            FailureReason::WrongPin => Outcome::WrongPin,
            FailureReason::InsufficientFunds => Outcome::InsufficientFunds,
            FailureReason::CustomerUnreachable => Outcome::Unreachable,
            FailureReason::Expired | FailureReason::NoFinalResult => Outcome::TimedOut,
            FailureReason::LimitExceeded
            | FailureReason::DuplicateTooSoon
            | FailureReason::SubscriberBusy
            | FailureReason::PushFailed
            | FailureReason::NetworkError
            | FailureReason::PinLocked
            | FailureReason::MerchantMisconfigured
            | FailureReason::Unknown
            | FailureReason::DarajaRejected
            | FailureReason::DarajaUnavailable => Outcome::Declined,
        }
    }
}

/// Why a session ended unpaid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClosedReason {
    Expired,
    NoAttemptsLeft,
    CancelledByShop,
    /// The customer pressed "Cancel" on the page.
    CancelledByCustomer,
}

impl ClosedReason {
    pub const ALL: [ClosedReason; 4] = [
        ClosedReason::Expired,
        ClosedReason::NoAttemptsLeft,
        ClosedReason::CancelledByShop,
        ClosedReason::CancelledByCustomer,
    ];

    /// Stable: the modal's message carries it.
    pub fn code(self) -> &'static str {
        match self {
            ClosedReason::Expired => "expired",
            ClosedReason::NoAttemptsLeft => "no_attempts_left",
            ClosedReason::CancelledByShop => "cancelled_by_shop",
            ClosedReason::CancelledByCustomer => "cancelled_by_customer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case() {
        let mut codes: Vec<&str> = Outcome::ALL.iter().map(|o| o.code()).collect();
        codes.extend(ClosedReason::ALL.iter().map(|r| r.code()));
        for code in &codes {
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
        }
        let outcomes: std::collections::HashSet<_> = Outcome::ALL.iter().map(|o| o.code()).collect();
        assert_eq!(outcomes.len(), Outcome::ALL.len());
    }

    #[test]
    fn failure_reasons_the_customer_can_act_on_keep_their_meaning() {
        assert_eq!(
            Outcome::from_failure_reason(FailureReason::CancelledByCustomer),
            Outcome::Cancelled
        );
        assert_eq!(Outcome::from_failure_reason(FailureReason::WrongPin), Outcome::WrongPin);
        assert_eq!(
            Outcome::from_failure_reason(FailureReason::InsufficientFunds),
            Outcome::InsufficientFunds
        );
        assert_eq!(
            Outcome::from_failure_reason(FailureReason::CustomerUnreachable),
            Outcome::Unreachable
        );
        assert_eq!(Outcome::from_failure_reason(FailureReason::Expired), Outcome::TimedOut);
        assert_eq!(
            Outcome::from_failure_reason(FailureReason::MerchantMisconfigured),
            Outcome::Declined
        );
    }
}
