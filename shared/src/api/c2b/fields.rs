//! Parsers of the fields of C2B request bodies (registrations and expected payments).

use std::collections::BTreeSet;

use crate::api::http::JsonObject;
use crate::api::problem::FieldError;
use crate::domain::c2b::{AccountNumber, C2bRules, Shortcode};
use crate::domain::AmountLimits;

pub(super) const C2B_AMOUNTS: AmountLimits = AmountLimits {
    min: 1,
    max: crate::domain::amount::MAX_TRANSACTION_KES,
};

pub(super) fn string_field<'a>(body: &'a JsonObject, field: &str, errors: &mut Vec<FieldError>) -> Option<&'a str> {
    let value = body.get(field)?;
    match value.as_str() {
        Some(text) => Some(text),
        None => {
            errors.push(FieldError::new(
                field,
                "invalid_type",
                format!("{field} must be a string"),
            ));
            None
        }
    }
}

pub(super) fn shortcode_field(body: &JsonObject, errors: &mut Vec<FieldError>) -> Option<Shortcode> {
    let Some(text) = string_field(body, "shortcode", errors) else {
        if body.get("shortcode").is_none() {
            errors.push(FieldError::new("shortcode", "required", "shortcode is required"));
        }
        return None;
    };
    match Shortcode::parse(text) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(FieldError::new(
                "shortcode",
                "invalid_shortcode",
                format!("{e}, given as a string"),
            ));
            None
        }
    }
}

pub(super) fn choice<T>(
    body: &JsonObject,
    field: &str,
    parse: fn(&str) -> Option<T>,
    allowed: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let text = string_field(body, field, errors)?;
    let parsed = parse(text);
    if parsed.is_none() {
        errors.push(FieldError::new(
            field,
            "invalid_value",
            format!("{field} must be one of {allowed}"),
        ));
    }
    parsed
}

pub(super) fn bool_field(body: &JsonObject, field: &str, name: &str, errors: &mut Vec<FieldError>) -> bool {
    match body.get(field) {
        None => false,
        Some(value) => value.as_bool().unwrap_or_else(|| {
            errors.push(FieldError::new(
                name,
                "invalid_type",
                format!("{name} must be true or false"),
            ));
            false
        }),
    }
}

pub(super) fn list_field(body: &JsonObject, field: &str, name: &str, errors: &mut Vec<FieldError>) -> Vec<String> {
    let Some(value) = body.get(field) else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        errors.push(FieldError::new(
            name,
            "invalid_type",
            format!("{name} must be an array of strings"),
        ));
        return Vec::new();
    };
    if items.len() > C2bRules::MAX_LIST_ENTRIES {
        errors.push(FieldError::new(
            name,
            "too_many_entries",
            format!("{name} may hold at most {} entries", C2bRules::MAX_LIST_ENTRIES),
        ));
        return Vec::new();
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str().map(str::trim) {
            Some(text) if !text.is_empty() && text.chars().count() <= C2bRules::MAX_ENTRY_CHARS => {
                out.push(text.to_owned())
            }
            _ => {
                errors.push(FieldError::new(
                    name,
                    "invalid_entry",
                    format!(
                        "{name} entries are non-empty strings of at most {} characters",
                        C2bRules::MAX_ENTRY_CHARS
                    ),
                ));
                return Vec::new();
            }
        }
    }
    out
}

pub(super) fn accounts(entries: Vec<String>, name: &str, errors: &mut Vec<FieldError>) -> BTreeSet<AccountNumber> {
    let mut set = BTreeSet::new();
    for entry in entries {
        match AccountNumber::parse(&entry) {
            Ok(a) => {
                set.insert(a);
            }
            Err(e) => {
                errors.push(FieldError::new(
                    name,
                    "invalid_account_number",
                    format!("{entry:?}: account numbers {e}"),
                ));
                return BTreeSet::new();
            }
        }
    }
    set
}
