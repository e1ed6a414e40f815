//! Lenient, bounded reading of the JSON Safaricom sends.
//!
//! Values are kept as `&RawValue` so numbers keep their literal text (`100.0`, `254712345678`)
//! and money never goes through `f64`. Every accessor returns a [`ParseError`] instead of
//! panicking, and error messages name fields, never values.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::errors::ParseError;

/// Larger bodies are refused unread: nothing Safaricom sends us comes near this.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// The JSON type of a raw value, from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

pub(crate) fn kind(raw: &RawValue) -> Kind {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

/// Checks size and encoding, and returns the body as text.
pub(crate) fn body_text(body: &[u8]) -> Result<&str, ParseError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ParseError::TooLarge { max: MAX_BODY_BYTES });
    }
    let text = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
    // A UTF-8 byte-order mark is not JSON, but gateways add one now and then.
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// The body's top-level JSON object.
pub(crate) fn root(body: &[u8]) -> Result<Object<'_>, ParseError> {
    let text = body_text(body)?;
    let raw: &RawValue = serde_json::from_str(text).map_err(ParseError::from_json)?;
    Object::from_raw(raw, "body")
}

/// A JSON object whose values are still raw. Duplicate keys are refused: a body that says two
/// different things about one field is not something to guess about.
pub(crate) struct Object<'a> {
    fields: Vec<(String, &'a RawValue)>,
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Result<Vec<(String, &'de RawValue)>, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        let mut seen = HashSet::new();
        let mut duplicate = None;
        while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
            if duplicate.is_none() && !seen.insert(key.clone()) {
                duplicate = Some(key.clone());
            }
            fields.push((key, value));
        }
        Ok(match duplicate {
            Some(key) => Err(key),
            None => Ok(fields),
        })
    }
}

struct ObjectFields<'a>(Result<Vec<(String, &'a RawValue)>, String>);

impl<'de> Deserialize<'de> for ObjectFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor).map(ObjectFields)
    }
}

impl<'a> Object<'a> {
    pub(crate) fn from_raw(raw: &'a RawValue, at: &'static str) -> Result<Self, ParseError> {
        if kind(raw) != Kind::Object {
            return Err(ParseError::NotAnObject { at });
        }
        let fields: ObjectFields<'a> = serde_json::from_str(raw.get()).map_err(ParseError::from_json)?;
        match fields.0 {
            Ok(fields) => Ok(Object { fields }),
            Err(key) => Err(ParseError::DuplicateKey {
                key: truncate_key(&key),
            }),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// A nested object; absent or `null` is `None`.
    pub(crate) fn object(&self, key: &'static str) -> Result<Option<Object<'a>>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if kind(raw) == Kind::Null => Ok(None),
            Some(raw) => Object::from_raw(raw, key).map(Some),
        }
    }

    pub(crate) fn required_object(&self, key: &'static str) -> Result<Object<'a>, ParseError> {
        self.object(key)?.ok_or(ParseError::Missing { field: key })
    }

    /// Text of a string or number field; absent, `null`, `""` or blank is `None`.
    pub(crate) fn text(&self, key: &'static str) -> Result<Option<String>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => text(raw, key),
        }
    }

    pub(crate) fn text_any(&self, keys: &[&'static str]) -> Result<Option<String>, ParseError> {
        for key in keys {
            if let Some(raw) = self.get(key) {
                return text(raw, key);
            }
        }
        Ok(None)
    }

    pub(crate) fn required_text(&self, key: &'static str) -> Result<String, ParseError> {
        self.text(key)?.ok_or(ParseError::Missing { field: key })
    }
}

/// Text of a string or number: strings unescaped, numbers as their literal text. `null`, `""`
/// and blank strings are `None`; booleans, arrays and objects are a type error.
pub(crate) fn text(raw: &RawValue, field: &'static str) -> Result<Option<String>, ParseError> {
    match kind(raw) {
        Kind::Null => Ok(None),
        Kind::String => {
            let s: String = serde_json::from_str(raw.get()).map_err(|_| ParseError::WrongType {
                field,
                expected: "a string or number",
            })?;
            if s.trim().is_empty() {
                Ok(None)
            } else {
                Ok(Some(s))
            }
        }
        Kind::Number => Ok(Some(raw.get().trim().to_owned())),
        Kind::Bool | Kind::Array | Kind::Object => Err(ParseError::WrongType {
            field,
            expected: "a string or number",
        }),
    }
}

/// One object or a list of objects (`ResultParameter`, `ReferenceItem`, `Item`): Daraja sends
/// a bare object when there is only one.
pub(crate) fn one_or_many<'a>(raw: &'a RawValue, field: &'static str) -> Result<Vec<Object<'a>>, ParseError> {
    match kind(raw) {
        Kind::Null => Ok(Vec::new()),
        Kind::Object => Ok(vec![Object::from_raw(raw, field)?]),
        Kind::Array => {
            let items: Vec<&'a RawValue> = serde_json::from_str(raw.get()).map_err(ParseError::from_json)?;
            items
                .into_iter()
                .filter(|item| kind(item) != Kind::Null)
                .map(|item| Object::from_raw(item, field))
                .collect()
        }
        _ => Err(ParseError::WrongType {
            field,
            expected: "an object or a list of objects",
        }),
    }
}

fn truncate_key(key: &str) -> String {
    key.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_of_strings_and_numbers_literally() {
        let body = br#"{"a":"x\"y","b":100.0,"c":null,"d":"","e":"  ","f":254712345678,"g":true}"#;
        let o = root(body).unwrap();
        assert_eq!(o.text("a").unwrap().as_deref(), Some("x\"y"));
        assert_eq!(o.text("b").unwrap().as_deref(), Some("100.0"));
        assert_eq!(o.text("c").unwrap(), None);
        assert_eq!(o.text("d").unwrap(), None);
        assert_eq!(o.text("e").unwrap(), None);
        assert_eq!(o.text("f").unwrap().as_deref(), Some("254712345678"));
        assert!(o.text("g").is_err());
        assert_eq!(o.text("missing").unwrap(), None);
    }

    #[test]
    fn refuses_duplicates_non_objects_and_oversized_bodies() {
        assert!(matches!(
            root(br#"{"a":1,"a":2}"#),
            Err(ParseError::DuplicateKey { .. })
        ));
        assert!(matches!(root(b"[1,2]"), Err(ParseError::NotAnObject { .. })));
        assert!(matches!(root(b"<html></html>"), Err(ParseError::NotJson { .. })));
        assert!(matches!(root(b"\xff\xfe"), Err(ParseError::NotUtf8)));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(matches!(root(&big), Err(ParseError::TooLarge { .. })));
        assert!(root("\u{feff}{}".as_bytes()).is_ok());
    }

    #[test]
    fn one_or_many_accepts_both_shapes() {
        let o = root(br#"{"one":{"Key":"a"},"many":[{"Key":"a"},null,{"Key":"b"}],"bad":3}"#).unwrap();
        assert_eq!(one_or_many(o.get("one").unwrap(), "one").unwrap().len(), 1);
        assert_eq!(one_or_many(o.get("many").unwrap(), "many").unwrap().len(), 2);
        assert!(one_or_many(o.get("bad").unwrap(), "bad").is_err());
    }
}
