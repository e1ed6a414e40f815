//! STK Query answer.
#![no_main]

use checkout::daraja::{classify_error_response, parse_stk_query_response, Operation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(answer) = parse_stk_query_response(data) {
        assert!(answer.result.is_some() || answer.response_code.is_some());
    }
    let _ = classify_error_response(Operation::StkQuery, 500, data);
});
