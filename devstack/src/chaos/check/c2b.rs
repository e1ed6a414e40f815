//! C2B confirmations recorded exactly once per receipt, and the invoices they pay.

use super::*;

pub(super) fn c2b(inputs: &Inputs, verdict: &mut Verdict) {
    let by_trans_id = inputs.observed.c2b_by_trans_id();
    let verification = inputs.observed.c2b_has_verification();
    if !verification && !inputs.observed.c2b_payments.is_empty() {
        verdict.notes.push(
            "C2B payments carry no `verification` state: every recorded confirmation is taken at its word".into(),
        );
    }
    let payments = inputs.observed.payments_by_reference();
    let mut accounted: HashSet<&str> = HashSet::new();
    let shown = |p: &Value| {
        format!(
            "{} kind {} amount {} match {}",
            id_of(p),
            p["kind"].as_str().unwrap_or("?"),
            p["amount"],
            p["match"]["status"].as_str().unwrap_or("?")
        )
    };

    // The customers' own C2B payments.
    let ours: HashMap<&str, &str> = inputs
        .ledger
        .c2b
        .iter()
        .filter_map(|(id, s)| s.ocid.as_deref().map(|o| (o, id.as_str())))
        .collect();
    for row in &inputs.truth.c2b {
        let Some(receipt) = row.receipt.as_deref().filter(|_| row.money_moved) else {
            continue;
        };
        accounted.insert(receipt);
        let name = row
            .originator_conversation_id
            .as_deref()
            .and_then(|o| ours.get(o))
            .map_or_else(|| receipt.to_owned(), |ours| format!("{ours} {receipt}"));
        let recs = by_trans_id.get(receipt).cloned().unwrap_or_default();
        if recs.len() > 1 {
            let all: Vec<String> = recs.iter().map(|p| shown(p)).collect();
            verdict.fail(
                Flow::C2b,
                Check::AppliedTwice,
                &name,
                format!("one receipt recorded {} times: {}", recs.len(), all.join("; ")),
                json!([summary(row)]),
            );
        }
        match recs.first() {
            None if delivered(row, FaultTarget::C2bConfirmation) => verdict.fail(
                Flow::C2b,
                Check::Lost,
                &name,
                "the confirmation was delivered (we answered 2xx) but no C2B payment has this receipt",
                json!([summary(row)]),
            ),
            None => verdict.open(
                Flow::C2b,
                &name,
                "confirmation_not_delivered",
                if attempted(row, FaultTarget::C2bConfirmation) {
                    "dropped or failed delivery"
                } else {
                    "never sent (scenario)"
                },
            ),
            Some(rec) => {
                if rec["kind"] != "payment" {
                    verdict.fail(
                        Flow::C2b,
                        Check::WrongFinalState,
                        &name,
                        format!("a customer's own payment shown as {}", shown(rec)),
                        json!([summary(row)]),
                    );
                }
                let status = verification_status(rec);
                if verification && status != Some("verified") {
                    verdict.open(Flow::C2b, &name, "not_verified_yet", status.unwrap_or("?"));
                }
            }
        }
    }

    // The C2B echo of each STK payment: the same receipt, linked to that payment, never new money.
    for (reference, rows) in &inputs.truth.stk_by_reference {
        for row in rows.iter().filter(|r| r.money_moved) {
            let Some(receipt) = row.receipt.as_deref() else {
                continue;
            };
            accounted.insert(receipt);
            let payment = payments.get(reference.as_str()).and_then(|p| p.first());
            let name = format!(
                "{reference} {} echo {receipt}",
                payment.map(|p| id_of(p)).unwrap_or("(no payment)")
            );
            let recs = by_trans_id.get(receipt).cloned().unwrap_or_default();
            if recs.len() > 1 {
                let all: Vec<String> = recs.iter().map(|p| shown(p)).collect();
                verdict.fail(
                    Flow::C2b,
                    Check::AppliedTwice,
                    &name,
                    format!("one echo recorded {} times: {}", recs.len(), all.join("; ")),
                    json!([summary(row)]),
                );
            }
            match recs.first() {
                None if delivered(row, FaultTarget::C2bConfirmation) => verdict.fail(
                    Flow::C2b,
                    Check::Lost,
                    &name,
                    "the echo confirmation was delivered but not recorded",
                    json!([summary(row)]),
                ),
                None => {}
                // Recorded, not verified yet: it moves no money until it is (and is linked then).
                Some(rec) if verification && verification_status(rec) == Some("unverified") => {
                    verdict.open(Flow::C2b, &name, "echo_not_verified_yet", "unverified");
                }
                Some(rec) if rec["kind"] != "stk_duplicate" => verdict.fail(
                    Flow::C2b,
                    Check::AppliedTwice,
                    &name,
                    format!(
                        "the C2B echo of an STK payment counted as new money ({}; payment receipt {})",
                        shown(rec),
                        payment.map_or("?".to_owned(), |p| p["mpesa_receipt"].to_string())
                    ),
                    json!([summary(row)]),
                ),
                Some(rec) => {
                    let linked = rec["payment_id"].as_str();
                    if linked != payment.map(|p| id_of(p)) {
                        verdict.fail(
                            Flow::C2b,
                            Check::WrongFinalState,
                            &name,
                            format!("echo linked to {linked:?}"),
                            json!([summary(row)]),
                        );
                    }
                }
            }
        }
    }

    // Forged confirmations and anything else Daraja never moved money for.
    let forged: HashSet<&str> = inputs.mix.forged().map(|f| f.trans_id.as_str()).collect();
    for rec in &inputs.observed.c2b_payments {
        let trans_id = rec["trans_id"].as_str().unwrap_or("");
        if accounted.contains(trans_id) {
            continue;
        }
        let why = if forged.contains(trans_id) {
            "a forged confirmation (a TransID Daraja never issued)"
        } else {
            "a receipt Daraja has no payment for"
        };
        let counted_as_money = match verification_status(rec) {
            None => rec.get("verification").is_none(),
            Some(status) => status == "verified",
        };
        let settled_invoice = rec["match"]["status"] == "matched";
        if counted_as_money || settled_invoice {
            verdict.fail(
                Flow::C2b,
                Check::Phantom,
                format!("{trans_id} {}", id_of(rec)),
                format!(
                    "{why} recorded as money ({}; verification {})",
                    shown(rec),
                    rec.get("verification").map_or("absent".to_owned(), Value::to_string)
                ),
                Value::Null,
            );
        }
    }
}

pub(super) fn invoices(inputs: &Inputs, verdict: &mut Verdict) {
    let by_trans_id = inputs.observed.c2b_by_trans_id();
    let verification = inputs.observed.c2b_has_verification();
    for op in &inputs.mix.invoices {
        let sent = inputs.ledger.invoices.get(&op.id);
        let Some(invoice) = inputs.observed.invoices.get(&op.id) else {
            if sent.is_some_and(Sent::succeeded) {
                verdict.fail(
                    Flow::Invoices,
                    Check::Lost,
                    &op.id,
                    "created, but cannot be read back",
                    Value::Null,
                );
            } else {
                verdict.tolerate(
                    Flow::Invoices,
                    &op.id,
                    "never_created",
                    sent.map(Sent::outcome).unwrap_or_default(),
                );
            }
            continue;
        };
        duplicates(verdict, Flow::Invoices, &op.id, &[invoice], sent);
        let record = format!("{} {} {}", op.id, id_of(invoice), op.account);
        server_errors(verdict, Flow::Invoices, &record, sent, String::new(), Value::Null);
        let rows: Vec<&TransactionRecord> = inputs
            .truth
            .c2b
            .iter()
            .filter(|r| {
                r.money_moved
                    && r.shortcode.as_deref() == Some(C2B_SHORTCODE)
                    && r.reference
                        .as_deref()
                        .is_some_and(|b| b.eq_ignore_ascii_case(&op.account))
            })
            .collect();
        let moved: u64 = rows.iter().filter_map(|r| r.amount).sum();
        let delivered_total: u64 = rows
            .iter()
            .filter(|r| delivered(r, FaultTarget::C2bConfirmation))
            .filter_map(|r| r.amount)
            .sum();
        // Receipts the product has not verified yet settle nothing (after issue 10).
        let unverified: u64 = rows
            .iter()
            .filter(|r| {
                verification
                    && r.receipt
                        .as_deref()
                        .and_then(|t| by_trans_id.get(t))
                        .is_some_and(|recs| recs.iter().all(|p| verification_status(p) != Some("verified")))
            })
            .filter_map(|r| r.amount)
            .sum();
        let paid = invoice["amount_paid"].as_u64().unwrap_or(0);
        let truth = summaries(rows.iter().copied());
        let applied: Vec<&str> = invoice["payments"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["trans_id"].as_str()).collect())
            .unwrap_or_default();
        let distinct: HashSet<&str> = applied.iter().copied().collect();
        if paid > moved {
            let check = if distinct.len() < applied.len() {
                Check::AppliedTwice
            } else {
                Check::Phantom
            };
            verdict.fail(
                Flow::Invoices,
                check,
                &record,
                format!(
                    "amount_paid {paid} but {moved} moved for this account (applied receipts: {})",
                    applied.join(", ")
                ),
                truth,
            );
        } else if paid + unverified < delivered_total {
            verdict.fail(
                Flow::Invoices,
                Check::Lost,
                &record,
                format!("amount_paid {paid} but {delivered_total} moved and was confirmed to us"),
                truth,
            );
        } else if paid < moved {
            let reason = if paid < delivered_total {
                "receipts_not_verified_yet"
            } else {
                "confirmation_not_delivered"
            };
            verdict.open(
                Flow::Invoices,
                &record,
                reason,
                format!("amount_paid {paid}, moved {moved}"),
            );
        }
    }
    // The mix's C2B payments that Daraja refused or that failed leave no trace to check; count
    // the ones the simulator refused outright so the report shows they happened.
    let refused = inputs.ledger.c2b.values().filter(|s| s.refused.is_some()).count();
    if refused > 0 {
        verdict
            .notes
            .push(format!("{refused} C2B simulate requests were refused by the simulator"));
    }
}
