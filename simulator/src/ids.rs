//! Identifier and receipt shapes, drawn from the seeded RNG so a run can be replayed.

use chrono::Datelike;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::clock::Nairobi;

const HEX: &[u8] = b"0123456789abcdef";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn pick(rng: &mut ChaCha8Rng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

fn digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    pick(rng, b"0123456789", n)
}

/// `ac7b-470b-8df7-23ab3cef38271071873`: MerchantRequestID, requestId, C2B originator ids.
pub fn request_like(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}-{}-{}-{}{}",
        pick(rng, HEX, 4),
        pick(rng, HEX, 4),
        pick(rng, HEX, 4),
        pick(rng, HEX, 12),
        digits(rng, 7)
    )
}

/// `ws_CO_` + ddMMyyyyHHmmss + milliseconds + one random digit + the phone's last 9 digits.
pub fn checkout_request_id(rng: &mut ChaCha8Rng, now: &Nairobi, phone: &str) -> String {
    let digits_only: String = phone.chars().filter(char::is_ascii_digit).collect();
    let tail = &digits_only[digits_only.len().saturating_sub(9)..];
    format!(
        "ws_CO_{}{:03}{}{}",
        now.format("%d%m%Y%H%M%S"),
        now.timestamp_subsec_millis() % 1000,
        digits(rng, 1),
        tail
    )
}

/// `AG_20261121_2010` + 16 hex digits.
pub fn conversation_id(rng: &mut ChaCha8Rng, now: &Nairobi) -> String {
    format!("AG_{}_2010{}", now.format("%Y%m%d"), pick(rng, HEX, 16))
}

/// Originator id the simulator makes up itself (B2C v1, Transaction Status, ...): `29112-34801843-1`.
pub fn originator_conversation_id(rng: &mut ChaCha8Rng) -> String {
    format!("{}-{}-1", digits(rng, 5), digits(rng, 8))
}

/// The three date letters opening a receipt: year (2026 = T), month (A = January), day (1-9, A = 10).
pub fn receipt_prefix(now: &Nairobi) -> String {
    let year = (b'A' + ((now.year() - 2007).rem_euclid(26)) as u8) as char;
    let month = (b'A' + (now.month0() as u8)) as char;
    let day = now.day();
    let day = if day < 10 {
        char::from_digit(day, 10).unwrap_or('1')
    } else {
        (b'A' + (day - 10) as u8) as char
    };
    format!("{year}{month}{day}")
}

/// A receipt / TransID such as `TKL4ABC12D`.
pub fn receipt(rng: &mut ChaCha8Rng, now: &Nairobi) -> String {
    format!("{}{}", receipt_prefix(now), pick(rng, UPPER_ALNUM, 7))
}

/// The placeholder TransactionID of failed results (`TKL0000000`).
pub fn placeholder_receipt(now: &Nairobi) -> String {
    format!("{}0000000", receipt_prefix(now))
}

/// An OAuth access token (28 alphanumerics, like the real ones).
pub fn access_token(rng: &mut ChaCha8Rng) -> String {
    pick(rng, ALNUM, 28)
}

/// `2547****5678`: how phone numbers appear in logs.
pub fn mask_for_log(msisdn: &str) -> String {
    let chars: Vec<char> = msisdn.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// `2547 ***** 126`: the MSISDN of C2B notifications for v2 registrations.
pub fn mask_for_c2b(msisdn: &str) -> String {
    let chars: Vec<char> = msisdn.chars().collect();
    if chars.len() < 7 {
        return "*****".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head} ***** {tail}")
}

/// Lower-case SHA-256 hex: the MSISDN of C2B notifications for v1 registrations.
pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A stable made-up customer name for a phone number, so results and notifications agree.
pub fn customer_name(msisdn: &str) -> (&'static str, &'static str, &'static str) {
    const FIRST: [&str; 8] = ["JANE", "JOHN", "AMINA", "BRIAN", "WANJIKU", "OTIENO", "FAITH", "KEVIN"];
    const MIDDLE: [&str; 4] = ["", "W", "N", "A"];
    const LAST: [&str; 8] = [
        "DOE", "KAMAU", "ODHIAMBO", "MWANGI", "WAFULA", "CHEBET", "NJERI", "MUTUA",
    ];
    let h = msisdn
        .bytes()
        .fold(0u64, |acc, b| acc.wrapping_mul(31).wrapping_add(b as u64));
    (
        FIRST[(h % 8) as usize],
        MIDDLE[((h / 8) % 4) as usize],
        LAST[((h / 32) % 8) as usize],
    )
}

/// `254712345678 - JANE DOE`.
pub fn public_name(msisdn: &str) -> String {
    let (first, _, last) = customer_name(msisdn);
    format!("{msisdn} - {first} {last}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::nairobi_offset;
    use chrono::TimeZone;
    use rand::SeedableRng;

    #[test]
    fn shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let t = nairobi_offset().with_ymd_and_hms(2026, 11, 21, 14, 30, 5).unwrap();
        let id = request_like(&mut rng);
        assert_eq!(id.len(), 34);
        let ws = checkout_request_id(&mut rng, &t, "254712345678");
        assert!(ws.starts_with("ws_CO_21112026143005"), "{ws}");
        assert!(ws.ends_with("712345678"));
        assert_eq!(ws.len(), "ws_CO_211120261430051234712345678".len());
        assert_eq!(receipt_prefix(&t), "TKL");
        assert_eq!(receipt(&mut rng, &t).len(), 10);
        assert!(conversation_id(&mut rng, &t).starts_with("AG_20261121_"));
        assert_eq!(mask_for_log("254712345678"), "2547****5678");
        assert_eq!(mask_for_c2b("254712345126"), "2547 ***** 126");
        assert_eq!(sha256_hex("a").len(), 64);
    }
}
