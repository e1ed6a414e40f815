//! C2B register answer and the URL rules.
#![no_main]

use checkout::daraja::{check_c2b_url, parse_c2b_register_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = parse_c2b_register_response(data) {
        let _ = response.is_success();
    }
    if let Ok(url) = std::str::from_utf8(data) {
        if check_c2b_url(url, true).is_ok() {
            let lower = url.to_ascii_lowercase();
            for word in checkout::daraja::c2b::FORBIDDEN_URL_WORDS {
                assert!(!lower.contains(word), "{word} accepted in {url:?}");
            }
            assert!(check_c2b_url(url, false).is_ok());
        }
    }
});
