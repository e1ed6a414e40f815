//! Unguessable callback path tokens.
//!
//! Daraja signs nothing, so each payment (and payout, and C2B shortcode) gets its own callback
//! URL: `<id>.<HMAC-SHA256(key, purpose:id)>`. The id lets a callback correlate even when
//! Daraja's synchronous answer was lost; the MAC, compared in constant time, makes the URL
//! impossible to guess from the id.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secrets::Secret;

type HmacSha256 = Hmac<Sha256>;

/// What a token authorises; part of the MAC so a payment's token is useless for a payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    StkCallback,
    B2cResult,
    B2cTimeout,
    C2bValidation,
    C2bConfirmation,
    TransactionStatusResult,
}

impl TokenPurpose {
    fn label(self) -> &'static str {
        match self {
            TokenPurpose::StkCallback => "stk",
            TokenPurpose::B2cResult => "b2c-result",
            TokenPurpose::B2cTimeout => "b2c-timeout",
            TokenPurpose::C2bValidation => "c2b-validation",
            TokenPurpose::C2bConfirmation => "c2b-confirmation",
            TokenPurpose::TransactionStatusResult => "ts-result",
        }
    }
}

pub struct CallbackTokens {
    key: Secret,
}

impl CallbackTokens {
    pub fn new(key: Secret) -> CallbackTokens {
        CallbackTokens { key }
    }

    fn mac(&self, purpose: TokenPurpose, id: &str) -> HmacSha256 {
        // HMAC accepts keys of any length.
        let mut mac = HmacSha256::new_from_slice(self.key.expose().as_bytes()).unwrap_or_else(|_| unreachable!());
        mac.update(purpose.label().as_bytes());
        mac.update(b":");
        mac.update(id.as_bytes());
        mac
    }

    pub fn token_for(&self, purpose: TokenPurpose, id: &str) -> String {
        let tag = self.mac(purpose, id).finalize().into_bytes();
        format!("{id}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The id the token was made for, if the token is genuine.
    pub fn verify<'t>(&self, purpose: TokenPurpose, token: &'t str) -> Option<&'t str> {
        if token.len() > 200 {
            return None;
        }
        let (id, tag) = token.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(purpose, id).verify_slice(&tag).ok()?;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> CallbackTokens {
        CallbackTokens::new(Secret::new("k".repeat(32)))
    }

    #[test]
    fn round_trip_and_forgeries() {
        let t = tokens();
        let token = t.token_for(TokenPurpose::StkCallback, "pay_01ABC");
        assert_eq!(t.verify(TokenPurpose::StkCallback, &token), Some("pay_01ABC"));
        assert_eq!(t.verify(TokenPurpose::B2cResult, &token), None, "purpose is bound");
        let other_key = CallbackTokens::new(Secret::new("j".repeat(32)));
        assert_eq!(other_key.verify(TokenPurpose::StkCallback, &token), None);
        let swapped = token.replacen("pay_01ABC", "pay_01ABD", 1);
        assert_eq!(t.verify(TokenPurpose::StkCallback, &swapped), None);
        for junk in ["", ".", "pay_01ABC", "pay_01ABC.", "pay_01ABC.!!!", "pay_01ABC.AAAA"] {
            assert_eq!(t.verify(TokenPurpose::StkCallback, junk), None, "{junk}");
        }
        assert!(!token.contains('/') && !token.contains('+') && !token.contains('='));
    }
}
