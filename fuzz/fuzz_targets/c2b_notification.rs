//! C2B validation / confirmation body.
#![no_main]

use checkout::daraja::callbacks::parse_c2b_notification;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = parse_c2b_notification(data) {
        assert!(!n.trans_id.trim().is_empty());
        let _ = format!("{n:?}");
        let _ = n.trans_time_nairobi();
        let _ = n.org_account_balance_kes();
    }
});
