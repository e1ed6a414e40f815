//! C2B (paybill and till) payments: URL registration, validation, expected payments (invoices),
//! confirmations and their verification, the flow on the settle engine and its effects.

pub mod callback_context;
pub mod confirmations;
pub mod effects;
pub mod events;
pub mod expected_payments;
pub mod flow;
pub mod receipt_links;
pub mod registration;
pub mod validation;
pub mod verification;
