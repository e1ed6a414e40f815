//! STK Push callback parser.
#![no_main]

use checkout::daraja::callbacks::parse_stk_callback;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(callback) = parse_stk_callback(data) {
        assert!(!callback.checkout_request_id.trim().is_empty());
        assert!(!callback.result.code.as_str().is_empty());
        if let Some(Ok(amount)) = callback.amount {
            assert!(amount.shillings() > 0);
        }
        // Debug output masks the phone and must not fail.
        let _ = format!("{callback:?}");
        let _ = callback.transaction_date_nairobi();
    }
});
