//! Defensive parsing of Daraja request bodies: any JSON shape, wrong types, missing fields.
//! Every failure becomes `400.002.02 Bad Request - Invalid <Field>`.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// Reads at most `limit` bytes; larger or broken bodies are refused like an unparsable one.
pub async fn read_body(body: Body, limit: usize, first_field: &str) -> Result<Vec<u8>, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| ApiError::invalid(first_field))
}

/// The gateway only parses JSON bodies; without the JSON content type it cannot find the first
/// field and says so ("Invalid BusinessShortCode" for STK).
pub fn parse_json(headers: &HeaderMap, bytes: &[u8], first_field: &str) -> Result<Fields, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase().contains("application/json"))
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::invalid(first_field));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(Fields(map)),
        _ => Err(ApiError::invalid(first_field)),
    }
}

/// A parsed JSON object with Daraja-style accessors.
#[derive(Debug, Clone)]
pub struct Fields(pub Map<String, Value>);

impl Fields {
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A string, or an integer given as a JSON number (Daraja accepts both for codes and phones).
    pub fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
            _ => None,
        }
    }

    /// A present, non-blank string.
    pub fn required(&self, key: &str) -> Result<String, ApiError> {
        match self.text(key) {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ApiError::invalid(key)),
        }
    }

    /// An optional string: absent and null are `None`; other non-strings are invalid.
    pub fn optional(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.text(key).map(Some).ok_or_else(|| ApiError::invalid(key)),
        }
    }

    /// A present string that may be empty.
    pub fn present(&self, key: &str) -> Result<String, ApiError> {
        self.text(key).ok_or_else(|| ApiError::invalid(key))
    }

    /// ASCII digits only (shortcodes, identifier types).
    pub fn digits(&self, key: &str, min_len: usize, max_len: usize) -> Result<String, ApiError> {
        let v = self.required(key)?;
        let v = v.trim().to_string();
        if v.len() >= min_len && v.len() <= max_len && v.bytes().all(|b| b.is_ascii_digit()) {
            Ok(v)
        } else {
            Err(ApiError::invalid(key))
        }
    }

    /// A phone number shaped `2547XXXXXXXX` / `2541XXXXXXXX` (no operator prefix table).
    pub fn msisdn(&self, key: &str) -> Result<String, ApiError> {
        let v = self.required(key)?;
        if is_msisdn(&v) {
            Ok(v)
        } else {
            Err(ApiError::invalid(key))
        }
    }

    /// Whole shillings in `min..=max`, from a JSON number or a numeric string.
    pub fn amount(&self, key: &str, min: u64, max: u64) -> Result<u64, ApiError> {
        let parsed = match self.0.get(key) {
            Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().and_then(whole)),
            Some(Value::String(s)) => {
                let s = s.trim();
                s.parse::<u64>().ok().or_else(|| {
                    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                        s.parse::<f64>().ok().and_then(whole)
                    } else {
                        None
                    }
                })
            }
            _ => None,
        };
        match parsed {
            Some(a) if a >= min && a <= max => Ok(a),
            _ => Err(ApiError::invalid(key)),
        }
    }

    /// An absolute http(s) URL. Plain `http` is allowed so loopback receivers work.
    pub fn url(&self, key: &str) -> Result<String, ApiError> {
        let v = self.required(key)?;
        match reqwest::Url::parse(v.trim()) {
            Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => Ok(v.trim().to_string()),
            _ => Err(ApiError::invalid(key)),
        }
    }

    /// One of the listed values, exactly.
    pub fn one_of(&self, key: &str, allowed: &[&str]) -> Result<String, ApiError> {
        let v = self.required(key)?;
        if allowed.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(ApiError::invalid(key))
        }
    }

    /// A string of `min..=max` characters.
    pub fn text_len(&self, key: &str, min: usize, max: usize) -> Result<String, ApiError> {
        let v = self.present(key)?;
        let n = v.chars().count();
        if n >= min && n <= max {
            Ok(v)
        } else {
            Err(ApiError::invalid(key))
        }
    }
}

fn whole(f: f64) -> Option<u64> {
    if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 {
        Some(f as u64)
    } else {
        None
    }
}

pub fn is_msisdn(v: &str) -> bool {
    v.len() == 12 && (v.starts_with("2547") || v.starts_with("2541")) && v.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(v: Value) -> Fields {
        match v {
            Value::Object(m) => Fields(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn amounts() {
        let x = f(
            json!({"a": "100", "b": 100, "c": "1.5", "d": 1.5, "e": "100.0", "f": -3, "g": "abc", "h": true, "i": "1e3"}),
        );
        assert_eq!(x.amount("a", 1, 250_000).unwrap(), 100);
        assert_eq!(x.amount("b", 1, 250_000).unwrap(), 100);
        assert!(x.amount("c", 1, 250_000).is_err());
        assert!(x.amount("d", 1, 250_000).is_err());
        assert_eq!(x.amount("e", 1, 250_000).unwrap(), 100);
        assert!(x.amount("f", 1, 250_000).is_err());
        assert!(x.amount("g", 1, 250_000).is_err());
        assert!(x.amount("h", 1, 250_000).is_err());
        assert!(x.amount("i", 1, 250_000).is_err());
        assert!(x.amount("missing", 1, 250_000).is_err());
        assert!(x.amount("a", 101, 250_000).is_err());
    }

    #[test]
    fn phones() {
        assert!(is_msisdn("254712345678"));
        assert!(is_msisdn("254112345678"));
        assert!(!is_msisdn("0712345678"));
        assert!(!is_msisdn("+254712345678"));
        assert!(!is_msisdn("254812345678"));
        assert!(!is_msisdn("25471234567a"));
    }
}
