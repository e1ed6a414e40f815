//! B2C and Transaction Status synchronous answers.
#![no_main]

use checkout::daraja::{parse_acknowledgement, parse_b2c_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(accepted) = parse_b2c_response(data) {
        assert!(!accepted.conversation_id.trim().is_empty());
    }
    if let Ok(ack) = parse_acknowledgement(data) {
        assert!(!ack.response_code.trim().is_empty());
    }
});
