//! STK payments: each shown once, settled as the simulator's ground truth says.

use super::*;

pub(super) fn stk(inputs: &Inputs, verdict: &mut Verdict) {
    let listed = inputs.observed.payments_by_reference();
    for op in inputs.mix.payments() {
        let rows = inputs.truth.stk(&op.id);
        let sent = inputs.ledger.payments.get(&op.id);
        let found = listed.get(op.id.as_str()).cloned().unwrap_or_default();
        duplicates(verdict, Flow::Stk, &op.id, &found, sent);
        let pushes: Vec<&TransactionRecord> = rows.iter().filter(|r| processed(r)).collect();
        let moved: Vec<&TransactionRecord> = rows.iter().filter(|r| r.money_moved).collect();
        let Some(payment) = found.first() else {
            let ids = sent.map(Sent::ids).unwrap_or_default();
            if !ids.is_empty() {
                verdict.fail(
                    Flow::Stk,
                    Check::Lost,
                    &op.id,
                    format!("the API named {ids:?} but does not list it"),
                    summaries(rows),
                );
            } else if !pushes.is_empty() {
                verdict.fail(
                    Flow::Stk,
                    Check::Lost,
                    &op.id,
                    format!(
                        "Daraja prompted the customer (money moved: {}) for a payment the API does not have",
                        !moved.is_empty()
                    ),
                    summaries(rows),
                );
            } else {
                verdict.tolerate(
                    Flow::Stk,
                    &op.id,
                    "never_created",
                    sent.map(Sent::outcome).unwrap_or_default(),
                );
            }
            continue;
        };
        let record = format!("{} {}", op.id, id_of(payment));
        let status = status_of(payment);
        let truth = summaries(rows);
        server_errors(
            verdict,
            Flow::Stk,
            &record,
            sent,
            format!(
                "Daraja processed the push: {}; money moved: {}; now {status}",
                !pushes.is_empty(),
                !moved.is_empty()
            ),
            truth.clone(),
        );
        if pushes.len() > 1 {
            verdict.fail(
                Flow::Stk,
                Check::SentTwice,
                &record,
                format!("Daraja prompted the customer {} times for one payment", pushes.len()),
                truth.clone(),
            );
        }
        if moved.len() > 1 {
            verdict.fail(
                Flow::Stk,
                Check::PaidTwice,
                &record,
                format!("the customer paid {} times for one payment", moved.len()),
                truth.clone(),
            );
        }
        let paid = !moved.is_empty();
        match (paid, status) {
            (true, "completed") => {
                let receipt = moved[0].receipt.as_deref();
                match payment["mpesa_receipt"].as_str() {
                    Some(shown) if Some(shown) != receipt => verdict.fail(
                        Flow::Stk,
                        Check::WrongFinalState,
                        &record,
                        format!("receipt {shown}, Daraja's is {receipt:?}"),
                        truth.clone(),
                    ),
                    // A success callback we acknowledged carries the receipt, and the state
                    // machine attaches it even to a payment reconciliation completed first: a
                    // missing one is an update lost (overwritten by a stale write).
                    None if moved.iter().any(|r| delivered(r, FaultTarget::StkCallback)) => verdict.fail(
                        Flow::Stk,
                        Check::Lost,
                        &record,
                        "the success callback was acknowledged, yet the payment has no receipt",
                        truth.clone(),
                    ),
                    _ => {}
                }
                if payment["amount"].as_u64() != moved[0].amount {
                    verdict.fail(
                        Flow::Stk,
                        Check::WrongFinalState,
                        &record,
                        format!("amount {} but {:?} moved", payment["amount"], moved[0].amount),
                        truth.clone(),
                    );
                }
            }
            (true, s) if STK_NOT_PAID.contains(&s) => verdict.fail(
                Flow::Stk,
                Check::WrongFinalState,
                &record,
                format!(
                    "the customer paid; shown {s} ({}){}",
                    payment["failure_reason"].as_str().unwrap_or("no reason"),
                    if payment["checkout_request_id"].is_null() {
                        "; no CheckoutRequestID recorded"
                    } else {
                        ""
                    }
                ),
                truth,
            ),
            (false, "completed") => verdict.fail(
                Flow::Stk,
                Check::WrongFinalState,
                &record,
                "shown completed; no money moved",
                truth,
            ),
            (false, s) if STK_NOT_PAID.contains(&s) => {}
            (_, s) if STK_OPEN.contains(&s) => {
                if rows.iter().any(|r| r.status == TxStatus::Pending) {
                    verdict.open(Flow::Stk, &record, "daraja_still_processing", s);
                } else if payment["checkout_request_id"].is_null()
                    && !rows.iter().any(|r| delivered(r, FaultTarget::StkCallback))
                {
                    // The push's answer was lost and no callback reached us: nothing to ask
                    // STK Query with, so `unknown` is the honest answer.
                    verdict.open(
                        Flow::Stk,
                        &record,
                        "no_checkout_request_id_and_no_callback",
                        format!("{s} (money moved: {paid})"),
                    );
                } else {
                    verdict.fail(
                        Flow::Stk,
                        Check::StillOpen,
                        &record,
                        format!("still {s}; Daraja settled it (money moved: {paid})"),
                        truth,
                    );
                }
            }
            (_, s) => verdict.fail(
                Flow::Stk,
                Check::WrongFinalState,
                &record,
                format!("unknown status {s}"),
                truth,
            ),
        }
    }
    // Every push Daraja saw belongs to a payment of the mix (by reference).
    let ours: HashSet<&str> = inputs.mix.payments().map(|p| p.id.as_str()).collect();
    for (reference, rows) in &inputs.truth.stk_by_reference {
        if !ours.contains(reference.as_str()) && rows.iter().any(processed) {
            verdict.fail(
                Flow::Stk,
                Check::Lost,
                reference,
                "Daraja saw a push with a reference the run never used",
                summaries(rows),
            );
        }
    }
}
