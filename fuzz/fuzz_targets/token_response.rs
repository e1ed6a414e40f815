//! OAuth token answer.
#![no_main]

use checkout::daraja::{classify_error_response, parse_token_response, Operation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = parse_token_response(data) {
        assert!(!token.token.expose().is_empty());
        assert!(token.expires_in.as_secs() <= 24 * 3600);
    }
    for status in [400, 401, 500] {
        let _ = classify_error_response(Operation::Token, status, data);
    }
});
