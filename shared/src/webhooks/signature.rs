//! Standard Webhooks signatures (<https://www.standardwebhooks.com>, symmetric scheme `v1`).
//!
//! A webhook carries three headers: `webhook-id` (the message id, the same on every retry, so
//! the merchant can deduplicate), `webhook-timestamp` (unix seconds of this attempt, so a
//! captured request cannot be replayed later) and `webhook-signature`: space-separated
//! `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>` entries, one per secret that
//! signs. During a rotation both the old and the new secret sign, so a merchant can switch
//! secrets whenever it likes without losing a delivery.
//!
//! Because the signed content is joined with `.`, a message id must never contain a `.`
//! (the ids we send are ULID-based); [`verify`] refuses such ids.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

type HmacSha256 = Hmac<Sha256>;

/// How far a `webhook-timestamp` may be from the receiver's clock, either way: 5 minutes, the
/// value the Standard Webhooks libraries use. Long enough for clock skew and a slow network,
/// short enough that a captured request is soon useless for a replay.
pub const TOLERANCE_SECS: i64 = 300;

/// The spec's minimum secret size (192 bits); shorter keys are refused when parsed.
pub const MIN_SECRET_BYTES: usize = 24;

/// The spec's maximum secret size (512 bits).
pub const MAX_SECRET_BYTES: usize = 64;

/// Header names, lower case as the spec writes them (HTTP header names are case-insensitive).
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How secrets are shown to merchants, so they (and the libraries) recognise the scheme.
const SECRET_PREFIX: &str = "whsec_";

/// The version tag of a symmetric (HMAC-SHA256) signature.
const SIGNATURE_VERSION: &str = "v1";

/// Domain separation for [`SigningSecret::derive`]: the master key derives nothing else with
/// this prefix, and a future scheme would use `v2`.
const DERIVATION_LABEL: &[u8] = b"checkout/webhook-signing/v1\0";

/// Standard base64 that accepts the secret with or without its `=` padding, as the Python and
/// JavaScript libraries do (merchants copy secrets around; the padding is easily lost).
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A webhook signing secret: the raw key bytes. Shown only as `whsec_<base64>` through
/// [`SigningSecret::to_whsec`]; its `Debug` hides the key so it cannot end up in a log.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

/// Why a `whsec_...` string is not a signing secret. The messages never contain the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook signing secret starts with `whsec_`")]
    MissingPrefix,
    #[error("a webhook signing secret is `whsec_` followed by standard base64")]
    NotBase64,
    #[error("a webhook signing secret has at least {MIN_SECRET_BYTES} bytes, this one has {bytes}")]
    TooShort { bytes: usize },
    #[error("a webhook signing secret has at most {MAX_SECRET_BYTES} bytes, this one has {bytes}")]
    TooLong { bytes: usize },
}

impl SigningSecret {
    /// A secret as shown to a merchant: `whsec_` and the standard base64 of 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<SigningSecret, SecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = SECRET_BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        match key.len() {
            bytes if bytes < MIN_SECRET_BYTES => Err(SecretError::TooShort { bytes }),
            bytes if bytes > MAX_SECRET_BYTES => Err(SecretError::TooLong { bytes }),
            _ => Ok(SigningSecret(key)),
        }
    }

    /// The form a merchant is given and every Standard Webhooks library accepts.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The secret of an endpoint's `generation`: HMAC-SHA256(master_key,
    /// `"checkout/webhook-signing/v1\0" + endpoint_id + "\0" + generation` in decimal), 32 bytes.
    ///
    /// Derived rather than stored, so the table never holds a signing secret: reading the table
    /// is not enough to forge webhooks, and only the master key (in the secrets store) needs
    /// guarding. Rotation bumps the endpoint's generation; the previous generation keeps
    /// signing alongside until the rotation ends. The generation is digits only, so the last
    /// `\0` ends the endpoint id and no two (endpoint, generation) pairs share an input.
    pub fn derive(master_key: &[u8], endpoint_id: &str, generation: u32) -> SigningSecret {
        let mut mac = new_mac(master_key);
        mac.update(DERIVATION_LABEL);
        mac.update(endpoint_id.as_bytes());
        mac.update(b"\0");
        mac.update(generation.to_string().as_bytes());
        SigningSecret(mac.finalize().into_bytes().to_vec())
    }

    fn key(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

/// Compared in constant time, so a comparison reveals nothing of where two keys differ.
impl PartialEq for SigningSecret {
    fn eq(&self, other: &SigningSecret) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for SigningSecret {}

/// Why a received webhook is refused. A receiver should answer any of them with a 4xx and
/// drop the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the webhook-id header is empty")]
    MissingId,
    #[error("the webhook-id contains a `.`, which would make the signed content ambiguous")]
    InvalidId,
    #[error("the webhook-timestamp header is not a whole number of unix seconds")]
    InvalidTimestamp,
    #[error("the webhook-timestamp is older than the tolerance allows")]
    TimestampTooOld,
    #[error("the webhook-timestamp is further in the future than the tolerance allows")]
    TimestampTooNew,
    #[error("no v1 signature in the webhook-signature header matches")]
    NoMatchingSignature,
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// The raw HMAC over `{msg_id}.{timestamp}.{body}`, fed in pieces so the body is not copied.
fn mac_of(secret: &SigningSecret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(secret.key());
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// One signature: `v1,<base64 HMAC-SHA256(secret, "{msg_id}.{timestamp_secs}.{body}")>`.
/// `body` is the exact bytes sent: re-serialised JSON would not verify.
pub fn sign(secret: &SigningSecret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let mac = mac_of(secret, msg_id, timestamp_secs, body);
    format!("{SIGNATURE_VERSION},{}", STANDARD.encode(mac))
}

/// The `webhook-signature` header value: one signature per secret, space-separated. During a
/// rotation pass the new and the old secret, so merchants holding either one can verify. No
/// secrets gives an empty value, which no receiver accepts.
pub fn signature_header(secrets: &[&SigningSecret], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, msg_id, timestamp_secs, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three headers of a delivery attempt: `webhook-id`, `webhook-timestamp`,
/// `webhook-signature` (see [`signature_header`]).
pub fn headers(
    secrets: &[&SigningSecret],
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        (HEADER_ID, msg_id.to_owned()),
        (HEADER_TIMESTAMP, timestamp_secs.to_string()),
        (
            HEADER_SIGNATURE,
            signature_header(secrets, msg_id, timestamp_secs, body),
        ),
    ]
}

/// Checks a received webhook as a merchant should: the timestamp within `tolerance_secs` of
/// `now_secs` either way (use [`TOLERANCE_SECS`]), then any `v1` signature of the header
/// matching, each compared in constant time. Entries of other versions (`v1a`, ...) or that
/// are malformed are skipped, as the spec asks, so a header of several signatures still
/// verifies when one of them is ours. Never panics, whatever the headers hold.
pub fn verify(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    if msg_id.is_empty() {
        return Err(VerifyError::MissingId);
    }
    if msg_id.contains('.') {
        return Err(VerifyError::InvalidId);
    }
    let timestamp_secs = parse_timestamp(timestamp_header)?;
    // i128: no overflow whatever the two clocks say.
    let age = i128::from(now_secs) - i128::from(timestamp_secs);
    let tolerance = i128::from(tolerance_secs.max(0));
    if age > tolerance {
        return Err(VerifyError::TimestampTooOld);
    }
    if age < -tolerance {
        return Err(VerifyError::TimestampTooNew);
    }

    let expected = mac_of(secret, msg_id, timestamp_secs, body);
    // Every entry is compared (no early exit), so the time taken says nothing of which matched.
    let mut matched = Choice::from(0);
    for entry in signature_header.split(' ') {
        let Some((version, encoded)) = entry.split_once(',') else {
            continue;
        };
        if version != SIGNATURE_VERSION {
            continue;
        }
        let Ok(candidate) = STANDARD.decode(encoded) else {
            continue;
        };
        matched |= expected.as_slice().ct_eq(&candidate);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// Whole unix seconds in ASCII digits, as the spec sends them (no sign, no fraction).
fn parse_timestamp(header: &str) -> Result<i64, VerifyError> {
    if header.is_empty() || !header.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    header.parse().map_err(|_| VerifyError::InvalidTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The published test vector of the Standard Webhooks libraries: `test_sign_function` in
    // libraries/python/tests/test_webhooks.py of github.com/standard-webhooks/standard-webhooks.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const NOW: i64 = 1_700_000_000;
    const MASTER: &[u8] = b"master key of the tests, 32 byte";

    fn spec_secret() -> SigningSecret {
        SigningSecret::parse(SPEC_SECRET).unwrap()
    }

    fn check(secret: &SigningSecret, id: &str, ts: &str, sig: &str, body: &[u8]) -> Result<(), VerifyError> {
        verify(secret, id, ts, sig, body, NOW, TOLERANCE_SECS)
    }

    #[test]
    fn the_spec_test_vector_signs_and_verifies() {
        let secret = spec_secret();
        assert_eq!(sign(&secret, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY), SPEC_SIGNATURE);
        let ts = SPEC_TIMESTAMP.to_string();
        let verified = verify(
            &secret,
            SPEC_MSG_ID,
            &ts,
            SPEC_SIGNATURE,
            SPEC_BODY,
            SPEC_TIMESTAMP,
            TOLERANCE_SECS,
        );
        assert_eq!(verified, Ok(()));
        // The library's `test_invalid_signature_raises_error`: the last base64 digit changed.
        let forged = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
        let refused = verify(
            &secret,
            SPEC_MSG_ID,
            &ts,
            forged,
            SPEC_BODY,
            SPEC_TIMESTAMP,
            TOLERANCE_SECS,
        );
        assert_eq!(refused, Err(VerifyError::NoMatchingSignature));
    }

    #[test]
    fn secrets_parse_and_show_as_whsec() {
        let secret = spec_secret();
        assert_eq!(secret.to_whsec(), SPEC_SECRET);
        assert_eq!(SigningSecret::parse(&secret.to_whsec()), Ok(secret));
        let derived = SigningSecret::derive(MASTER, "we_01", 1);
        let shown = derived.to_whsec();
        assert!(shown.starts_with("whsec_") && shown.ends_with('='), "{shown}");
        assert_eq!(SigningSecret::parse(&shown), Ok(derived.clone()));
        // The padding is optional on input, as in the Python and JavaScript libraries.
        assert_eq!(SigningSecret::parse(shown.trim_end_matches('=')), Ok(derived));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        let key_of = |n: usize| format!("whsec_{}", STANDARD.encode(vec![7u8; n]));
        assert_eq!(
            SigningSecret::parse(&key_of(23)),
            Err(SecretError::TooShort { bytes: 23 })
        );
        assert!(SigningSecret::parse(&key_of(24)).is_ok());
        assert!(SigningSecret::parse(&key_of(64)).is_ok());
        assert_eq!(
            SigningSecret::parse(&key_of(65)),
            Err(SecretError::TooLong { bytes: 65 })
        );
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::MissingPrefix)
        );
        assert_eq!(SigningSecret::parse(""), Err(SecretError::MissingPrefix));
        assert_eq!(SigningSecret::parse("whsec_"), Err(SecretError::TooShort { bytes: 0 }));
        for junk in [
            "whsec_!!!!",
            "whsec_MfKQ9r8G KYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo",
        ] {
            assert_eq!(SigningSecret::parse(junk), Err(SecretError::NotBase64), "{junk}");
        }
    }

    #[test]
    fn debug_and_errors_do_not_leak_the_key() {
        let secret = spec_secret();
        assert_eq!(format!("{secret:?}"), "SigningSecret(..)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(SigningSecret(..))");
        let error = SigningSecret::parse("whsec_MfKQ9r8G").unwrap_err();
        assert!(!format!("{error} {error:?}").contains("MfKQ9r8G"));
    }

    #[test]
    fn derivation_is_deterministic_and_separates_endpoints_and_generations() {
        let secret = SigningSecret::derive(MASTER, "we_01", 1);
        assert_eq!(secret, SigningSecret::derive(MASTER, "we_01", 1));
        assert_eq!(secret.key().len(), 32);
        let others = [
            SigningSecret::derive(MASTER, "we_02", 1),
            SigningSecret::derive(MASTER, "we_01", 2),
            SigningSecret::derive(MASTER, "we_01", 0),
            SigningSecret::derive(b"another master key, also 32 byte", "we_01", 1),
            // The separator keeps (id, generation) pairs apart: "we_0" + "11" is not "we_01" + "1".
            SigningSecret::derive(MASTER, "we_0", 11),
            SigningSecret::derive(MASTER, "we_01\u{0}1", 1),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(&secret, other, "derivation {i}");
        }
        // The exact construction, recomputed by hand, so a refactor cannot change every secret.
        let mut mac = new_mac(MASTER);
        mac.update(b"checkout/webhook-signing/v1\0we_01\x001");
        assert_eq!(secret.key(), &mac.finalize().into_bytes()[..]);
    }

    #[test]
    fn headers_name_the_id_the_timestamp_and_the_signature() {
        let secret = spec_secret();
        let [id, ts, sig] = headers(&[&secret], SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY);
        assert_eq!(id, ("webhook-id", SPEC_MSG_ID.to_owned()));
        assert_eq!(ts, ("webhook-timestamp", "1614265330".to_owned()));
        assert_eq!(sig, ("webhook-signature", SPEC_SIGNATURE.to_owned()));
        assert_eq!(signature_header(&[], SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY), "");
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        let old = SigningSecret::derive(MASTER, "we_01", 1);
        let new = SigningSecret::derive(MASTER, "we_01", 2);
        let body = br#"{"type":"payment.succeeded"}"#;
        let header = signature_header(&[&new, &old], "msg_1", NOW, body);
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            entries,
            [sign(&new, "msg_1", NOW, body), sign(&old, "msg_1", NOW, body)]
        );
        let ts = NOW.to_string();
        assert_eq!(check(&old, "msg_1", &ts, &header, body), Ok(()));
        assert_eq!(check(&new, "msg_1", &ts, &header, body), Ok(()));
        let stranger = SigningSecret::derive(MASTER, "we_02", 1);
        assert_eq!(
            check(&stranger, "msg_1", &ts, &header, body),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn other_versions_and_junk_entries_are_skipped() {
        let secret = spec_secret();
        let ours = sign(&secret, "msg_1", NOW, b"{}");
        let b64 = ours.trim_start_matches("v1,");
        let header = format!(
            "v1a,{b64} v2,{b64} junk ,,, v1,!!! v1,AAAA  {ours} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        assert_eq!(check(&secret, "msg_1", &NOW.to_string(), &header, b"{}"), Ok(()));
        // Our signature under another version tag is not ours.
        let relabelled = format!("v1a,{b64}");
        assert_eq!(
            check(&secret, "msg_1", &NOW.to_string(), &relabelled, b"{}"),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn tampering_with_the_body_the_id_or_the_timestamp_is_refused() {
        let secret = spec_secret();
        let body = br#"{"amount":100}"#;
        let sig = sign(&secret, "msg_1", NOW, body);
        let ts = NOW.to_string();
        assert_eq!(check(&secret, "msg_1", &ts, &sig, body), Ok(()));
        let refused = Err(VerifyError::NoMatchingSignature);
        assert_eq!(check(&secret, "msg_1", &ts, &sig, br#"{"amount":900}"#), refused);
        assert_eq!(check(&secret, "msg_1", &ts, &sig, br#"{"amount":100} "#), refused);
        assert_eq!(check(&secret, "msg_2", &ts, &sig, body), refused);
        assert_eq!(check(&secret, "msg_1", &(NOW + 1).to_string(), &sig, body), refused);
        assert_eq!(check(&secret, "msg_1", &ts, &sig.to_lowercase(), body), refused);
    }

    #[test]
    fn ids_with_a_dot_are_refused_so_the_signed_content_stays_unambiguous() {
        let secret = spec_secret();
        // "msg.1" + "2" + "x" and "msg" + "1" + "2.x" sign the same bytes.
        let sig = sign(&secret, "msg", 1, b"2.x");
        assert_eq!(sign(&secret, "msg.1", 2, b"x"), sig);
        let refused = verify(&secret, "msg.1", "2", &sig, b"x", 2, TOLERANCE_SECS);
        assert_eq!(refused, Err(VerifyError::InvalidId));
        assert_eq!(
            verify(&secret, "", "2", &sig, b"x", 2, TOLERANCE_SECS),
            Err(VerifyError::MissingId)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused() {
        let secret = spec_secret();
        let at = |ts: i64| {
            let sig = sign(&secret, "msg_1", ts, b"{}");
            check(&secret, "msg_1", &ts.to_string(), &sig, b"{}")
        };
        assert_eq!(at(NOW - TOLERANCE_SECS), Ok(()));
        assert_eq!(at(NOW + TOLERANCE_SECS), Ok(()));
        assert_eq!(at(NOW - TOLERANCE_SECS - 1), Err(VerifyError::TimestampTooOld));
        assert_eq!(at(NOW + TOLERANCE_SECS + 1), Err(VerifyError::TimestampTooNew));
        assert_eq!(at(0), Err(VerifyError::TimestampTooOld));
        assert_eq!(at(i64::MAX), Err(VerifyError::TimestampTooNew));
        // Extreme clocks and tolerances do not overflow.
        let sig = sign(&secret, "msg_1", i64::MAX, b"{}");
        let far = verify(&secret, "msg_1", &i64::MAX.to_string(), &sig, b"{}", i64::MIN, i64::MAX);
        assert_eq!(far, Err(VerifyError::TimestampTooNew));
        let ts_of = |ts: i64| ts.to_string();
        // A negative tolerance acts as 0: only the receiver's own second is accepted.
        let sig = sign(&secret, "msg_1", NOW, b"{}");
        assert_eq!(verify(&secret, "msg_1", &ts_of(NOW), &sig, b"{}", NOW, -5), Ok(()));
        assert_eq!(
            verify(&secret, "msg_1", &ts_of(NOW), &sig, b"{}", NOW + 1, -5),
            Err(VerifyError::TimestampTooOld)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let secret = spec_secret();
        let sig = sign(&secret, "msg_1", NOW, b"{}");
        let ts = NOW.to_string();
        for bad_ts in [
            "",
            " ",
            "abc",
            "-1",
            "+1700000000",
            "1700000000.0",
            "1e9",
            " 1700000000",
            "99999999999999999999",
        ] {
            assert_eq!(
                check(&secret, "msg_1", bad_ts, &sig, b"{}"),
                Err(VerifyError::InvalidTimestamp),
                "{bad_ts:?}"
            );
        }
        for bad_sig in [
            "",
            " ",
            ",",
            "v1",
            "v1,",
            "v1,=",
            "v1,AAAA",
            "V1,x",
            "\u{0}",
            "v1,\u{1F600}",
            ",v1",
        ] {
            assert_eq!(
                check(&secret, "msg_1", &ts, bad_sig, b"{}"),
                Err(VerifyError::NoMatchingSignature),
                "{bad_sig:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_headers(
            id in "\\PC{0,40}",
            ts in "\\PC{0,24}",
            sig in "\\PC{0,120}",
            body in proptest::collection::vec(any::<u8>(), 0..64),
            now in any::<i64>(),
            tolerance in any::<i64>(),
        ) {
            let _ = verify(&spec_secret(), &id, &ts, &sig, &body, now, tolerance);
        }

        #[test]
        fn sign_then_verify_round_trips(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            id in "msg_[0-9A-Za-z_-]{1,40}",
            ts in 0i64..4_102_444_800,
            generation in any::<u32>(),
        ) {
            let secret = SigningSecret::derive(MASTER, "we_prop", generation);
            let header = signature_header(&[&secret], &id, ts, &body);
            prop_assert_eq!(verify(&secret, &id, &ts.to_string(), &header, &body, ts, TOLERANCE_SECS), Ok(()));
            let mut tampered = body.clone();
            tampered.push(b' ');
            prop_assert_eq!(
                verify(&secret, &id, &ts.to_string(), &header, &tampered, ts, TOLERANCE_SECS),
                Err(VerifyError::NoMatchingSignature)
            );
        }
    }
}
