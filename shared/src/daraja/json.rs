//! Lenient, bounded reading of the JSON Safaricom sends.
//!
//! Values are kept as `&RawValue` so numbers keep their literal text (`100.0`, `254712345678`)
//! and money never goes through `f64`. Every accessor returns a [`ParseError`] instead of
//! panicking, and error messages name fields, never values.

use std::borrow::Cow;
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
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// An object key, borrowed from the body unless it had escapes (serde's own `Cow<str>` always
/// copies).
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Objects up to this many fields find duplicates by comparing keys (no allocation); larger
/// ones (never from Safaricom, but a body may be hostile) through a set.
const SMALL_OBJECT: usize = 32;

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Result<Vec<(Cow<'de, str>, &'de RawValue)>, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
        let mut seen: Option<HashSet<Cow<'de, str>>> = None;
        let mut duplicate = None;
        while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
            if duplicate.is_none() {
                let repeated = match seen.as_mut() {
                    Some(seen) => !seen.insert(key.clone()),
                    None => fields.iter().any(|(k, _)| *k == key),
                };
                if repeated {
                    duplicate = Some(key.to_string());
                } else if seen.is_none() && fields.len() == SMALL_OBJECT {
                    let mut set: HashSet<Cow<'de, str>> = fields.iter().map(|(k, _)| k.clone()).collect();
                    set.insert(key.clone());
                    seen = Some(set);
                }
            }
            fields.push((key, value));
        }
        Ok(match duplicate {
            Some(key) => Err(key),
            None => Ok(fields),
        })
    }
}

struct ObjectFields<'a>(Result<Vec<(Cow<'a, str>, &'a RawValue)>, String>);

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
    fn finds_duplicates_in_small_and_large_objects_and_escaped_keys() {
        let object = |fields: &[String]| format!("{{{}}}", fields.join(","));
        let mut fields: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
        assert!(root(object(&fields).as_bytes()).is_ok());
        fields.push("\"k5\":0".into());
        assert!(matches!(
            root(object(&fields).as_bytes()),
            Err(ParseError::DuplicateKey { key }) if key == "k5"
        ));
        // A duplicate of a field read before the switch to a set.
        let mut fields: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        fields.push("\"k0\":0".into());
        assert!(matches!(
            root(object(&fields).as_bytes()),
            Err(ParseError::DuplicateKey { .. })
        ));
        // An escaped key is the same key as its plain spelling.
        assert!(matches!(
            root(br#"{"ab":1,"a\u0062":2}"#),
            Err(ParseError::DuplicateKey { .. })
        ));
        let o = root(br#"{"a\u0062":"x"}"#).unwrap();
        assert_eq!(o.text("ab").unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn one_or_many_accepts_both_shapes() {
        let o = root(br#"{"one":{"Key":"a"},"many":[{"Key":"a"},null,{"Key":"b"}],"bad":3}"#).unwrap();
        assert_eq!(one_or_many(o.get("one").unwrap(), "one").unwrap().len(), 1);
        assert_eq!(one_or_many(o.get("many").unwrap(), "many").unwrap().len(), 2);
        assert!(one_or_many(o.get("bad").unwrap(), "bad").is_err());
    }
}
