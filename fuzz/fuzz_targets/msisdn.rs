//! Msisdn::parse.
#![no_main]

use checkout::domain::Msisdn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(msisdn) = Msisdn::parse(text) {
        let canonical = msisdn.as_str();
        assert_eq!(canonical.len(), 12);
        assert!(canonical.starts_with("2547") || canonical.starts_with("2541"));
        assert!(canonical.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(Msisdn::parse(canonical).as_ref(), Ok(&msisdn));
        assert!(!msisdn.masked().contains(canonical));
    }
});
