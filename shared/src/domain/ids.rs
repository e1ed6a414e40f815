//! Identifiers we mint: a type prefix plus a ULID, so they sort by creation time and say what they are.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct InvalidId {
    pub kind: &'static str,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id; ULIDs made later sort after earlier ones (to the millisecond).
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, Ulid::new()))
            }

            pub fn parse(input: &str) -> Result<Self, InvalidId> {
                let ulid = input.strip_prefix($prefix).ok_or(InvalidId { kind: $kind })?;
                // Canonical upper-case form only, so one payment has exactly one id string.
                // A ULID's first character is at most '7' (128 bits); reject overflowing text.
                if ulid.len() != 26 || ulid.bytes().any(|b| b.is_ascii_lowercase()) || ulid.as_bytes()[0] > b'7' {
                    return Err(InvalidId { kind: $kind });
                }
                Ulid::from_str(ulid).map_err(|_| InvalidId { kind: $kind })?;
                Ok(Self(input.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

prefixed_id!(
    /// A customer payment (STK Push): `pay_01J…`.
    PaymentId, "pay_", "payment"
);
prefixed_id!(
    /// A business-to-customer payout: `po_01J…`.
    PayoutId, "po_", "payout"
);
prefixed_id!(
    /// A C2B payment received on a paybill or till: `c2b_01J…`.
    C2bPaymentId, "c2b_", "C2B payment"
);
prefixed_id!(
    /// An expected C2B payment (invoice): `exp_01J…`.
    ExpectedPaymentId, "exp_", "expected payment"
);
prefixed_id!(
    /// A merchant's webhook endpoint: `we_01J…`.
    WebhookEndpointId, "we_", "webhook endpoint"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_time() {
        let a = PaymentId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = PaymentId::generate();
        assert!(a < b);
        assert_eq!(PaymentId::parse(a.as_str()).unwrap(), a);
        assert!(a.as_str().starts_with("pay_"));
    }

    #[test]
    fn malformed_ids_are_refused() {
        let good = PaymentId::generate();
        for bad in [
            "",
            "pay_",
            "po_01J0000000000000000000000",
            &good.as_str().to_lowercase(),
            &format!("{}X", good.as_str()),
            "pay_ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "pay_01j00000000000000000000000",
        ] {
            assert!(PaymentId::parse(bad).is_err(), "{bad}");
        }
        assert!(PayoutId::parse(good.as_str()).is_err());
    }
}
