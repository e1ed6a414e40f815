//! Free-text fields that end up in Daraja requests or on a customer's phone.
//!
//! Daraja does not reliably enforce its own length limits (overlong text fails later with 1025
//! or the prompt never arrives), so we enforce them at the edge with a conservative alphabet.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must be between {min} and {max} characters")]
    Length { min: usize, max: usize },
    #[error("may contain only {allowed}")]
    Characters { allowed: &'static str },
}

/// Letters, digits, space and `-_.`: safe on every M-Pesa prompt and statement.
fn is_prompt_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.')
}

const PROMPT_SAFE: &str = "letters, digits, spaces and - _ .";

/// Letters, digits and common punctuation for payout remarks (shown on statements, not prompts).
fn is_remark_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | ',' | ':' | '/' | '(' | ')' | '\'')
}

const REMARK_SAFE: &str = "letters, digits, spaces and - _ . , : / ( ) '";

fn check(value: &str, min: usize, max: usize, allowed: fn(char) -> bool, name: &'static str) -> Result<(), TextError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(TextError::Length { min, max });
    }
    if !value.chars().all(allowed) {
        return Err(TextError::Characters { allowed: name });
    }
    Ok(())
}

macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $allowed:expr, $allowed_name:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MIN_CHARS: usize = $min;
            pub const MAX_CHARS: usize = $max;

            pub fn parse(value: &str) -> Result<Self, TextError> {
                check(value, $min, $max, $allowed, $allowed_name)?;
                Ok(Self(value.to_owned()))
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
            type Error = TextError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

bounded_text!(
    /// The merchant's reference (Daraja `AccountReference`): 1-12 prompt-safe characters.
    Reference, 1, 12, is_prompt_safe, PROMPT_SAFE
);
bounded_text!(
    /// Shown on the prompt (Daraja `TransactionDesc`): 1-13 prompt-safe characters.
    Description, 1, 13, is_prompt_safe, PROMPT_SAFE
);
bounded_text!(
    /// B2C `Remarks`: 2-100 characters.
    Remarks, 2, 100, is_remark_safe, REMARK_SAFE
);
bounded_text!(
    /// B2C `Occassion`: 1-100 characters.
    Occasion, 1, 100, is_remark_safe, REMARK_SAFE
);

/// Merchant-supplied string map, stored and echoed back, never sent to Daraja.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata must be an object whose values are strings")]
    NotAStringMap,
    #[error("metadata may have at most {max} keys")]
    TooManyKeys { max: usize },
    #[error("metadata keys must be 1-{max} characters of letters, digits and - _ .")]
    InvalidKey { max: usize },
    #[error("metadata values may be at most {max} characters")]
    ValueTooLong { max: usize },
}

impl Metadata {
    pub const MAX_KEYS: usize = 20;
    pub const MAX_KEY_CHARS: usize = 40;
    pub const MAX_VALUE_CHARS: usize = 500;

    pub fn parse(value: &serde_json::Value) -> Result<Self, MetadataError> {
        let object = value.as_object().ok_or(MetadataError::NotAStringMap)?;
        if object.len() > Self::MAX_KEYS {
            return Err(MetadataError::TooManyKeys { max: Self::MAX_KEYS });
        }
        let mut map = BTreeMap::new();
        for (key, value) in object {
            let key_ok = !key.is_empty()
                && key.chars().count() <= Self::MAX_KEY_CHARS
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !key_ok {
                return Err(MetadataError::InvalidKey {
                    max: Self::MAX_KEY_CHARS,
                });
            }
            let text = value.as_str().ok_or(MetadataError::NotAStringMap)?;
            if text.chars().count() > Self::MAX_VALUE_CHARS {
                return Err(MetadataError::ValueTooLong {
                    max: Self::MAX_VALUE_CHARS,
                });
            }
            map.insert(key.clone(), text.to_owned());
        }
        Ok(Metadata(map))
    }

    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_and_description_limits() {
        assert!(Reference::parse("ORDER1234").is_ok());
        assert!(Reference::parse("A-1_2.3 x").is_ok());
        assert!(Reference::parse("123456789012").is_ok());
        assert_eq!(
            Reference::parse("1234567890123"),
            Err(TextError::Length { min: 1, max: 12 })
        );
        assert_eq!(Reference::parse(""), Err(TextError::Length { min: 1, max: 12 }));
        assert!(matches!(Reference::parse("ORDER#1"), Err(TextError::Characters { .. })));
        assert!(matches!(Reference::parse("a&b"), Err(TextError::Characters { .. })));
        assert!(matches!(Reference::parse("café"), Err(TextError::Characters { .. })));
        assert!(Description::parse("Chess set").is_ok());
        assert!(Description::parse("1234567890123").is_ok());
        assert!(Description::parse("12345678901234").is_err());
        assert!(Remarks::parse("x").is_err());
        assert!(Remarks::parse("Refund ORDER1234").is_ok());
    }

    #[test]
    fn metadata_rules() {
        assert!(Metadata::parse(&json!({"order_id": "A-1"})).is_ok());
        assert_eq!(Metadata::parse(&json!([1])), Err(MetadataError::NotAStringMap));
        assert_eq!(Metadata::parse(&json!({"n": 1})), Err(MetadataError::NotAStringMap));
        assert_eq!(
            Metadata::parse(&json!({"": "x"})),
            Err(MetadataError::InvalidKey { max: 40 })
        );
        assert_eq!(
            Metadata::parse(&json!({"a b": "x"})),
            Err(MetadataError::InvalidKey { max: 40 })
        );
        assert_eq!(
            Metadata::parse(&json!({"k": "x".repeat(501)})),
            Err(MetadataError::ValueTooLong { max: 500 })
        );
        let many: serde_json::Map<String, serde_json::Value> = (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(
            Metadata::parse(&serde_json::Value::Object(many)),
            Err(MetadataError::TooManyKeys { max: 20 })
        );
    }
}
