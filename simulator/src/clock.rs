//! Nairobi time (UTC+3, no DST) and the formats Daraja uses.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};

pub type Nairobi = DateTime<FixedOffset>;

pub fn nairobi_offset() -> FixedOffset {
    FixedOffset::east_opt(3 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero"))
}

pub fn now() -> Nairobi {
    Utc::now().with_timezone(&nairobi_offset())
}

/// `YYYYMMDDHHmmss`.
pub fn ts14(t: &Nairobi) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

/// `YYYYMMDDHHmmss` as a number, as in STK callbacks and result parameters.
pub fn ts14_number(t: &Nairobi) -> u64 {
    ts14(t).parse().unwrap_or(0)
}

/// B2C `TransactionCompletedDateTime`: `dd.MM.yyyy HH:mm:ss`.
pub fn dotted(t: &Nairobi) -> String {
    t.format("%d.%m.%Y %H:%M:%S").to_string()
}

pub fn rfc3339(t: &Nairobi) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// Whether `s` is a valid `YYYYMMDDHHmmss` timestamp.
pub fn is_valid_ts14(s: &str) -> bool {
    s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) && NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").is_ok()
}
