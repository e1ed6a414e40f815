//! Linking an STK payment and the C2B confirmation of the same M-Pesa receipt.
//!
//! An STK payment to a paybill with registered C2B URLs also produces a C2B confirmation for the
//! same receipt. Both paths write the receipt's registry item (`RCPT#<receipt>`, see
//! [`crate::repo::receipts`]) conditionally, in the same transaction as their own write:
//! - STK first: the completion registers the receipt; the confirmation then finds it and is
//!   recorded as `stk_duplicate` of that payment.
//! - C2B first: the confirmation registers the receipt; the STK completion then finds it and,
//!   in its own transaction, turns that confirmation into `stk_duplicate` of the payment.
//!
//! The confirmation is never counted as new money; what it did to an expected payment (its
//! account number) was done once, by its receipt, whichever order they came in.

use chrono::{DateTime, Utc};

use crate::domain::c2b::C2bKind;
use crate::domain::PaymentId;
use crate::metrics;
use crate::repo::c2b as c2b_repo;
use crate::repo::receipts::{self, ReceiptLink};
use crate::store::{StoreError, Table, Write};

/// Receipts we key items by: 1-64 letters, digits, `-` or `_` (M-Pesa's are 10 upper-case
/// alphanumerics). Anything else is never used as a key.
pub fn is_usable_receipt(receipt: &str) -> bool {
    (1..=64).contains(&receipt.len())
        && receipt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The writes that register `receipt` for the STK payment `payment_id`, to go in the same
/// transaction as its completion (each conditional on what was read here).
///
/// `optimistic`: assume the receipt is not registered yet and read nothing (the common case: no
/// C2B echo, or the STK callback first). The write is then conditional on absence; if a C2B
/// confirmation registered it first, the transaction fails and the caller decides again with
/// `optimistic = false`, which reads the registry and links.
pub async fn stk_completion_writes(
    table: &dyn Table,
    payment_id: &PaymentId,
    receipt: &str,
    now: DateTime<Utc>,
    optimistic: bool,
) -> Result<Vec<Write>, StoreError> {
    if !is_usable_receipt(receipt) {
        return Ok(Vec::new());
    }
    let fresh = || ReceiptLink {
        receipt: receipt.to_owned(),
        stk_payment_id: Some(payment_id.clone()),
        c2b_payment_id: None,
        updated_at: now,
        version: 0,
    };
    if optimistic {
        return Ok(vec![receipts::put(&fresh())]);
    }
    let Some(link) = receipts::get(table, receipt).await? else {
        return Ok(vec![receipts::put(&fresh())]);
    };
    match &link.stk_payment_id {
        Some(existing) if existing == payment_id => Ok(Vec::new()),
        Some(other) => {
            // Two STK payments with one receipt: never link either silently.
            metrics::count("CallbackAnomalies", 1, &[("Reason", "receipt_on_two_payments")]);
            tracing::warn!(payment_id = %payment_id, other = %other, "receipt already belongs to another STK payment; not linked");
            Ok(Vec::new())
        }
        None => {
            let mut writes = vec![receipts::put(&ReceiptLink {
                stk_payment_id: Some(payment_id.clone()),
                updated_at: now,
                ..link.clone()
            })];
            if link.c2b_payment_id.is_some() {
                if let Some(c2b) = c2b_repo::get_payment_by_trans_id(table, receipt).await? {
                    if c2b.kind != C2bKind::StkDuplicate || c2b.linked_payment_id.as_ref() != Some(payment_id) {
                        let linked = c2b.linked_to_stk(payment_id, now);
                        writes.push(c2b_repo::update_payment(&linked));
                        writes.extend(crate::services::c2b::events::c2b_event_write(&c2b, &linked, now));
                    }
                }
            }
            Ok(writes)
        }
    }
}
