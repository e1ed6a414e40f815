//! Unguessable callback path tokens.
//!
//! Daraja signs nothing, so each payment (and payout, and C2B shortcode) gets its own callback
//! URL: `<id>.<HMAC-SHA256(key, purpose:id)>`. The id lets a callback correlate even when
//! Daraja's synchronous answer was lost; the MAC, compared in constant time, makes the URL
//! impossible to guess from the id.
//!
//! Rotation: tokens are always made with the current key; a token made with the previous key
//! (`callback_hmac_key_previous` in the secret) still verifies, so callbacks of payments opened
//! before a rotation are not lost.

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
    TransactionStatusTimeout,
    /// Transaction Status about a C2B receipt (the verification of a confirmation).
    C2bStatusResult,
    C2bStatusTimeout,
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
            TokenPurpose::TransactionStatusTimeout => "ts-timeout",
            TokenPurpose::C2bStatusResult => "c2b-ts-result",
            TokenPurpose::C2bStatusTimeout => "c2b-ts-timeout",
        }
    }
}

pub struct CallbackTokens {
    key: Secret,
    previous: Option<Secret>,
}

fn mac_with(key: &Secret, purpose: TokenPurpose, id: &str) -> HmacSha256 {
    // HMAC accepts keys of any length.
    let mut mac = HmacSha256::new_from_slice(key.expose().as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(purpose.label().as_bytes());
    mac.update(b":");
    mac.update(id.as_bytes());
    mac
}

impl CallbackTokens {
    pub fn new(key: Secret) -> CallbackTokens {
        CallbackTokens { key, previous: None }
    }

    /// The current key, and the previous one while a rotation is under way. Every function whose
    /// code makes or checks tokens reads the callback-keys secret (the parts it passes to
    /// `wiring::secrets`); one that does not gets a fresh random key here: nothing it makes or
    /// checks matches a real token, so a miswired function fails closed and loudly, never with a
    /// known key.
    pub fn from_secrets(secrets: &crate::secrets::AppSecrets) -> CallbackTokens {
        let key = secrets.callback_hmac_key.clone().unwrap_or_else(|| {
            tracing::error!("callback tokens used without the callback-keys secret: none will verify");
            let random: [u8; 32] = rand::random();
            Secret::new(URL_SAFE_NO_PAD.encode(random))
        });
        CallbackTokens {
            key,
            previous: secrets.callback_hmac_key_previous.clone(),
        }
    }

    fn mac(&self, purpose: TokenPurpose, id: &str) -> HmacSha256 {
        mac_with(&self.key, purpose, id)
    }

    /// Whether `tag` is the MAC of `id` under the current or the previous key (each compared in
    /// constant time).
    fn genuine(&self, purpose: TokenPurpose, id: &str, tag: &[u8]) -> bool {
        std::iter::once(&self.key)
            .chain(self.previous.as_ref())
            .any(|key| mac_with(key, purpose, id).verify_slice(tag).is_ok())
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
        self.genuine(purpose, id, &tag).then_some(id)
    }

    /// A token whose MAC is lower-case hex: `<id>.<64 hex digits>`. For C2B URLs: Daraja refuses
    /// URLs containing `exe`, `cmd`, `sql`, `query`, `mpesa`, ... in any case, and a base64 MAC
    /// spells one of them now and then; the hex alphabet (`0-9a-f`) cannot.
    pub fn hex_token_for(&self, purpose: TokenPurpose, id: &str) -> String {
        let tag = self.mac(purpose, id).finalize().into_bytes();
        let hex = hex::encode(tag);
        format!("{id}.{hex}")
    }

    /// The id a [`CallbackTokens::hex_token_for`] token was made for, if it is genuine
    /// (compared in constant time).
    pub fn verify_hex<'t>(&self, purpose: TokenPurpose, token: &'t str) -> Option<&'t str> {
        if token.len() > 200 {
            return None;
        }
        let (id, hex) = token.rsplit_once('.')?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let digit = |b: u8| if b.is_ascii_digit() { b - b'0' } else { b - b'a' + 10 };
        let tag: Vec<u8> = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| (digit(pair[0]) << 4) | digit(pair[1]))
            .collect();
        self.genuine(purpose, id, &tag).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_the_previous_key_verify_during_a_rotation() {
        let old = CallbackTokens::new(Secret::new("o".repeat(32)));
        let stk = old.token_for(TokenPurpose::StkCallback, "pay_01ABC");
        let c2b = old.hex_token_for(TokenPurpose::C2bConfirmation, "600984");
        let rotating = CallbackTokens {
            key: Secret::new("n".repeat(32)),
            previous: Some(Secret::new("o".repeat(32))),
        };
        assert_eq!(rotating.verify(TokenPurpose::StkCallback, &stk), Some("pay_01ABC"));
        assert_eq!(rotating.verify_hex(TokenPurpose::C2bConfirmation, &c2b), Some("600984"));
        // New tokens use the new key only.
        let fresh = rotating.token_for(TokenPurpose::StkCallback, "pay_01ABC");
        assert_ne!(fresh, stk);
        assert_eq!(old.verify(TokenPurpose::StkCallback, &fresh), None);
        // Once the previous key is dropped, its tokens stop working.
        let rotated = CallbackTokens::new(Secret::new("n".repeat(32)));
        assert_eq!(rotated.verify(TokenPurpose::StkCallback, &stk), None);
    }

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

    #[test]
    fn hex_tokens_round_trip_and_refuse_forgeries() {
        let t = tokens();
        let token = t.hex_token_for(TokenPurpose::C2bValidation, "600984");
        let (id, hex) = token.split_once('.').unwrap();
        assert_eq!(id, "600984");
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(t.verify_hex(TokenPurpose::C2bValidation, &token), Some("600984"));
        assert_eq!(
            t.verify_hex(TokenPurpose::C2bConfirmation, &token),
            None,
            "purpose is bound"
        );
        assert_eq!(
            t.verify(TokenPurpose::C2bValidation, &token),
            None,
            "not a base64 token"
        );
        let other = token.replacen("600984", "600985", 1);
        assert_eq!(t.verify_hex(TokenPurpose::C2bValidation, &other), None);
        let upper = format!("600984.{}", hex.to_ascii_uppercase());
        assert_eq!(
            t.verify_hex(TokenPurpose::C2bValidation, &upper),
            None,
            "one spelling only"
        );
        let flipped = format!("600984.{}{}", if hex.starts_with('0') { '1' } else { '0' }, &hex[1..]);
        assert_eq!(t.verify_hex(TokenPurpose::C2bValidation, &flipped), None);
        for junk in [
            "",
            ".",
            "600984",
            "600984.",
            "600984.zz",
            &format!("600984.{}", "g".repeat(64)),
        ] {
            assert_eq!(t.verify_hex(TokenPurpose::C2bValidation, junk), None, "{junk}");
        }
    }
}
