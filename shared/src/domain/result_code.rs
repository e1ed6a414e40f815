//! Daraja result codes, kept verbatim.
//!
//! Daraja sends codes as JSON numbers in callbacks, strings in queries, and some are not numeric
//! at all (`SFC_IC0003`). We keep the exact text and never branch on descriptions.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResultCode(String);

impl ResultCode {
    pub fn new(code: impl Into<String>) -> Self {
        ResultCode(code.into().trim().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `0`, `"0"`, `"00"`: Daraja's success.
    pub fn is_success(&self) -> bool {
        !self.0.is_empty() && self.0.bytes().all(|b| b == b'0')
    }

    /// The code as a number when it is one (leading zeros ignored), for table lookups.
    pub fn numeric(&self) -> Option<u64> {
        if self.0.is_empty() || self.0.len() > 18 || !self.0.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.0.parse().ok()
    }
}

impl fmt::Debug for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResultCode({})", self.0)
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ResultCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ResultCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CodeVisitor;
        impl Visitor<'_> for CodeVisitor {
            type Value = ResultCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a result code as a number or string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ResultCode, E> {
                Ok(ResultCode(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ResultCode, E> {
                Ok(ResultCode(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ResultCode, E> {
                // A code sent as 0.0 is still code 0; anything else is kept as printed.
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    Ok(ResultCode(format!("{}", v as i64)))
                } else {
                    Ok(ResultCode(v.to_string()))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ResultCode, E> {
                if v.trim().is_empty() {
                    return Err(E::custom("empty result code"));
                }
                Ok(ResultCode::new(v))
            }
        }
        d.deserialize_any(CodeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_strings_verbatim() {
        let n: ResultCode = serde_json::from_str("1032").unwrap();
        let s: ResultCode = serde_json::from_str("\"1032\"").unwrap();
        assert_eq!(n, s);
        assert_eq!(n.numeric(), Some(1032));
        let sfc: ResultCode = serde_json::from_str("\"SFC_IC0003\"").unwrap();
        assert_eq!(sfc.as_str(), "SFC_IC0003");
        assert_eq!(sfc.numeric(), None);
        assert!(serde_json::from_str::<ResultCode>("0").unwrap().is_success());
        assert!(serde_json::from_str::<ResultCode>("\"0\"").unwrap().is_success());
        assert!(!serde_json::from_str::<ResultCode>("\"1\"").unwrap().is_success());
        assert!(serde_json::from_str::<ResultCode>("\"\"").is_err());
        assert!(serde_json::from_str::<ResultCode>("null").is_err());
        assert!(serde_json::from_str::<ResultCode>("{}").is_err());
    }
}
