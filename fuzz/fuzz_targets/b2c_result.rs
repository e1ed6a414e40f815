//! The `Result` envelope: B2C results, queue timeouts and Transaction Status results.
#![no_main]

use checkout::daraja::callbacks::{parse_b2c_result, parse_result_envelope, parse_transaction_status_result};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let envelope = parse_result_envelope(data);
    let b2c = parse_b2c_result(data);
    let status = parse_transaction_status_result(data);
    // The typed parsers add views, never new reasons to fail.
    assert_eq!(envelope.is_ok(), b2c.is_ok());
    assert_eq!(envelope.is_ok(), status.is_ok());
    if let Ok(result) = b2c {
        if let Some(Ok(funds)) = result.params.charges_paid_account_funds {
            assert_eq!(
                checkout::daraja::KesDecimal::parse_literal(&funds.to_string()),
                Ok(funds)
            );
        }
        let _ = result.receipt();
    }
    if let Ok(status) = status {
        let _ = (status.is_not_found(), status.is_completed());
    }
});
