//! The Daraja (Safaricom M-Pesa API) client and the parsers of everything Safaricom sends us.
//!
//! - [`Daraja`] is the port; [`HttpDaraja`] its HTTP adapter (token cache per credential set,
//!   single-flight token fetches, refresh-once on an invalid token, bounded jittered retries
//!   only where a retry cannot pay or charge twice).
//! - [`DarajaError`] classifies every failure (see [`errors`] for the table).
//! - [`callbacks`] parses what Safaricom POSTs to us (STK callback, B2C result and queue
//!   timeout, Transaction Status result, C2B validation/confirmation) and holds our replies.
//! - [`security_credential`] builds the B2C `SecurityCredential`.
//!
//! Nothing here logs a request body, a token, a password or a full phone number.

use async_trait::async_trait;

use crate::secrets::Secret;

pub mod b2c;
pub mod c2b;
pub mod callbacks;
pub mod client;
pub mod errors;
mod json;
pub mod money;
#[cfg(test)]
mod proptests;
pub mod retry;
pub mod security_credential;
pub mod stk;
pub mod timestamp;
pub mod token;
pub mod transaction_status;

pub use b2c::{parse_b2c_response, B2cAccepted, B2cCommand, B2cPaymentRequest};
pub use c2b::{
    check_c2b_url, parse_c2b_register_response, C2bApiVersion, C2bRegisterRequest, C2bRegisterResponse, C2bRegistered,
    C2bResponseType, C2bUrlError,
};
pub use callbacks::{
    parse_b2c_result, parse_c2b_notification, parse_result_envelope, parse_stk_callback,
    parse_transaction_status_result, B2cResult, B2cResultParameters, C2bNotification, C2bRejection, C2bValidationReply,
    ResultEnvelope, ResultItem, StkCallback, TransactionStatusParameters, TransactionStatusResult,
};
pub use client::HttpDaraja;
pub use errors::{
    classify_error_response, parse_error_envelope, Classified, DarajaError, ErrorEnvelope, Operation, ParseError,
};
pub use json::MAX_BODY_BYTES;
pub use money::{KesDecimal, MoneyError};
pub use retry::RetryPolicy;
pub use security_credential::{encrypt_security_credential, CredentialError};
pub use stk::{
    parse_stk_push_response, parse_stk_query_response, StkPushAccepted, StkPushRequest, StkQueryAnswer,
    StkQueryRequest, StkQueryResponse, StkTransactionType,
};
pub use token::{parse_token_response, AccessToken};
pub use transaction_status::{parse_acknowledgement, Acknowledgement, TransactionStatusRequest};

/// One Daraja app's consumer key and secret. Credentials can rotate: tokens are cached per set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCredentials {
    pub consumer_key: Secret,
    pub consumer_secret: Secret,
}

impl ApiCredentials {
    pub fn new(consumer_key: impl Into<String>, consumer_secret: impl Into<String>) -> ApiCredentials {
        ApiCredentials {
            consumer_key: Secret::new(consumer_key),
            consumer_secret: Secret::new(consumer_secret),
        }
    }
}

/// The Daraja port.
#[async_trait]
pub trait Daraja: Send + Sync {
    /// Sends an STK Push. Never retried unless the request provably was not processed: Daraja
    /// has no idempotency for pushes. On [`DarajaError::may_have_been_acted_on`], query.
    async fn stk_push(&self, request: &StkPushRequest<'_>) -> Result<StkPushAccepted, DarajaError>;
    /// Asks for the final result of a push; "being processed" / "does not Exist" are
    /// [`StkQueryAnswer::NotKnownYet`], never failures.
    async fn stk_query(&self, request: &StkQueryRequest<'_>) -> Result<StkQueryAnswer, DarajaError>;
    /// Submits a payout. A reused OriginatorConversationID is refused
    /// ([`DarajaError::is_duplicate_originator_conversation_id`]).
    async fn b2c_payment(&self, request: &B2cPaymentRequest<'_>) -> Result<B2cAccepted, DarajaError>;
    /// Asks for a transaction's status; the answer comes to the ResultURL.
    async fn transaction_status(&self, request: &TransactionStatusRequest<'_>) -> Result<Acknowledgement, DarajaError>;
    /// Registers C2B URLs; "already registered" is [`DarajaError::is_urls_already_registered`].
    async fn register_c2b_urls(&self, request: &C2bRegisterRequest<'_>) -> Result<C2bRegistered, DarajaError>;
    /// Whether these credentials get an access token (the readiness check; a cached token counts).
    /// Test doubles without an OAuth step answer yes.
    async fn check_access(&self, _credentials: &ApiCredentials) -> Result<(), DarajaError> {
        Ok(())
    }
}
