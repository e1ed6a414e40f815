//! Pure domain: values that can only be built by parsing, and the state machines that move
//! payments. Nothing here knows about AWS, HTTP or Daraja's wire format.

pub mod amount;
pub mod b2c_outcome;
pub mod c2b;
pub mod c2b_path_tokens;
pub mod c2b_verification;
pub mod checkout_session;
pub mod client;
pub mod expected_payment;
pub mod ids;
pub mod msisdn;
pub mod payment;
pub mod payout;
pub mod result_code;
pub mod stk_outcome;
pub mod text;

pub use amount::{Amount, AmountError, AmountLimits};
pub use b2c_outcome::{b2c_outcome, B2cOutcome, FailureCategory, PayoutFailureReason};
pub use checkout_session::{CheckoutSession, CheckoutSessionId, NewSession, ReturnUrl, SessionStatus};
pub use client::ClientId;
pub use ids::{C2bPaymentId, ExpectedPaymentId, PaymentId, PayoutId, WebhookEndpointId};
pub use msisdn::Msisdn;
pub use payment::{
    decide, DarajaResult, Decision, HistoryEntry, Ignored, NewPayment, Payment, PaymentEvent, PaymentStatus,
    PaymentTimings, Source, StkFinalResult,
};
pub use payout::{
    ApprovalDecision, B2cFinalResult, NewPayout, Payout, PayoutDecision, PayoutEvent, PayoutIgnored, PayoutKind,
    PayoutSource, PayoutStatus, PayoutTimings,
};
pub use result_code::ResultCode;
pub use stk_outcome::{stk_outcome, FailureReason, StkOutcome};
pub use text::{Description, Metadata, Occasion, Reference, Remarks};
