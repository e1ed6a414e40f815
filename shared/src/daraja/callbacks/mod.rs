//! Parsers of what Safaricom POSTs to our callback URLs, and the answers we must send back.
//!
//! All parsers are pure: bytes in, `Result<_, ParseError>` out, bounded work (bodies over
//! [`super::json::MAX_BODY_BYTES`] are refused unread), no panics, no floats for money.

mod b2c_result;
mod c2b_notification;
mod replies;
mod result_envelope;
mod stk_callback;
mod transaction_status_result;

pub use b2c_result::{parse_b2c_result, B2cResult, B2cResultParameters};
pub use c2b_notification::{parse_c2b_notification, C2bNotification};
pub use replies::{C2bRejection, C2bValidationReply, B2C_RESULT_ACK, C2B_CONFIRMATION_ACK, STK_CALLBACK_ACK};
pub use result_envelope::{is_placeholder_transaction_id, parse_result_envelope, ResultEnvelope, ResultItem};
pub use stk_callback::{parse_stk_callback, StkCallback};
pub use transaction_status_result::{
    parse_transaction_status_result, TransactionStatusParameters, TransactionStatusResult, TRANSACTION_NOT_FOUND,
};
