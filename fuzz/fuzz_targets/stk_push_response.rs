//! STK Push synchronous answer, parsed and classified at every interesting status.
#![no_main]

use checkout::daraja::{classify_error_response, parse_stk_push_response, Operation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_stk_push_response(data);
    for status in [200, 400, 404, 500, 503] {
        let _ = classify_error_response(Operation::StkPush, status, data);
    }
});
