//! Nairobi time (UTC+3, no daylight saving) and the STK Push password.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};

use crate::secrets::Secret;

/// East Africa Time, UTC+3 (checked at compile time).
pub const NAIROBI: FixedOffset = match FixedOffset::east_opt(3 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+3 is a valid offset"),
};

/// East Africa Time.
pub fn nairobi() -> FixedOffset {
    NAIROBI
}

/// Daraja's `Timestamp`: `YYYYMMDDHHmmss` in Nairobi time.
pub fn daraja_timestamp(now: DateTime<Utc>) -> String {
    now.with_timezone(&nairobi()).format("%Y%m%d%H%M%S").to_string()
}

/// STK `Password` = base64(BusinessShortCode + Passkey + Timestamp). The timestamp must be the
/// exact one sent in the request, or Daraja answers "Wrong credentials".
pub fn stk_password(shortcode: &str, passkey: &Secret, timestamp: &str) -> Secret {
    let mut plain = String::with_capacity(shortcode.len() + passkey.expose().len() + timestamp.len());
    plain.push_str(shortcode);
    plain.push_str(passkey.expose());
    plain.push_str(timestamp);
    Secret::new(STANDARD.encode(plain.as_bytes()))
}

/// Parses `YYYYMMDDHHmmss` (STK `TransactionDate`, C2B `TransTime`), Nairobi local time.
pub fn parse_daraja_timestamp(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S").ok()
}

/// Parses B2C's `TransactionCompletedDateTime`, `dd.MM.yyyy HH:mm:ss`, Nairobi local time.
pub fn parse_b2c_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if text.len() > 24 {
        return None;
    }
    NaiveDateTime::parse_from_str(text, "%d.%m.%Y %H:%M:%S").ok()
}

/// A Nairobi local time as an instant.
pub fn nairobi_to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    (local - chrono::Duration::hours(3)).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Timelike};

    #[test]
    fn timestamp_is_nairobi_time() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 11, 30, 5).unwrap();
        assert_eq!(daraja_timestamp(now), "20261121143005");
        // Crossing midnight in Nairobi while it is still the previous day in UTC.
        let late = Utc.with_ymd_and_hms(2026, 12, 31, 22, 0, 0).unwrap();
        assert_eq!(daraja_timestamp(late), "20270101010000");
    }

    #[test]
    fn password_is_base64_of_shortcode_passkey_timestamp() {
        let passkey = Secret::new("bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919");
        let password = stk_password("174379", &passkey, "20261121143005");
        let decoded = String::from_utf8(STANDARD.decode(password.expose()).unwrap()).unwrap();
        assert_eq!(
            decoded,
            "174379bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c91920261121143005"
        );
        assert_eq!(format!("{password:?}"), "Secret(***)");
    }

    #[test]
    fn parses_daraja_date_formats() {
        let expected = NaiveDate::from_ymd_opt(2026, 11, 21)
            .unwrap()
            .and_hms_opt(14, 48, 52)
            .unwrap();
        assert_eq!(parse_b2c_datetime("21.11.2026 14:48:52"), Some(expected));
        assert_eq!(parse_b2c_datetime("2026-11-21 14:48:52"), None);
        assert_eq!(parse_b2c_datetime("32.11.2026 14:48:52"), None);
        assert_eq!(parse_daraja_timestamp("20261121144852"), Some(expected));
        assert_eq!(parse_daraja_timestamp("2026112114485"), None);
        assert_eq!(parse_daraja_timestamp("20261321144852"), None);
        assert_eq!(nairobi_to_utc(expected).hour(), 11);
    }
}
