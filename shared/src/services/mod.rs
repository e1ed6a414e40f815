//! Use cases: the application logic between the HTTP/queue edges and the domain. Each service
//! holds exactly the ports it needs.

pub mod b2c_credential;
pub mod c2b_confirmations;
pub mod c2b_events;
pub mod c2b_flow;
pub mod c2b_registration;
pub mod c2b_settlement;
pub mod c2b_validation;
pub mod c2b_verification;
pub mod callback_intake;
pub mod callback_processor;
pub mod expected_payments;
pub mod idempotent;
pub mod limits;
pub mod payments;
pub mod payout_callbacks;
pub mod payout_limits;
pub mod payout_reconciliation;
pub mod payout_settlement;
pub mod payout_worker;
pub mod payouts;
pub mod readiness;
pub mod receipt_links;
pub mod reconciliation;
pub mod settlement;
pub mod stk_callbacks;
pub mod store_failure;
