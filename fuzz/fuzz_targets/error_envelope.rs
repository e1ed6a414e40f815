//! Error envelope / gateway fault, and what any error answer means for every operation.
#![no_main]

use checkout::daraja::{classify_error_response, parse_error_envelope, Classified, Operation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_error_envelope(data);
    let ops = [
        Operation::Token,
        Operation::StkPush,
        Operation::StkQuery,
        Operation::B2cPayment,
        Operation::TransactionStatus,
        Operation::C2bRegister,
    ];
    let status = data.first().map(|b| 400 + u16::from(*b) % 200).unwrap_or(500);
    for op in ops {
        match classify_error_response(op, status, data) {
            Classified::InvalidToken { .. } => assert!(op != Operation::Token),
            Classified::Error(error) => {
                // Messages are sanitised: no 9-digit run survives.
                let text = error.to_string();
                let longest = text
                    .split(|c: char| !c.is_ascii_digit())
                    .map(str::len)
                    .max()
                    .unwrap_or(0);
                assert!(longest < 9, "digit run in {text:?}");
            }
        }
    }
});
