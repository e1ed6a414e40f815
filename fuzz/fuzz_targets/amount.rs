//! Amount::parse_api_literal, Amount::parse_daraja_literal and KesDecimal::parse_literal.
#![no_main]

use checkout::daraja::KesDecimal;
use checkout::domain::{Amount, AmountLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for limits in [AmountLimits::STK_PUSH, AmountLimits::B2C] {
        if let Ok(amount) = Amount::parse_api_literal(text, limits) {
            assert!(limits.contains(amount));
            // What our API accepts, the Daraja parser reads the same.
            assert_eq!(Amount::parse_daraja_literal(text), Ok(amount));
        }
    }
    if let Ok(amount) = Amount::parse_daraja_literal(text) {
        assert!(amount.shillings() > 0);
    }
    if let Ok(value) = KesDecimal::parse_literal(text) {
        assert_eq!(KesDecimal::parse_literal(&value.to_string()), Ok(value));
    }
});
