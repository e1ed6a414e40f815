//! B2C payouts: each paid at most once, its shown status what the ground truth says.

use super::*;

pub(super) fn payouts(inputs: &Inputs, verdict: &mut Verdict) {
    let listed = inputs.observed.payouts_by_chaos_id();
    let mut known_ocids: HashSet<String> = HashSet::new();
    for op in inputs.mix.payouts() {
        let sent = inputs.ledger.payouts.get(&op.id);
        let found = listed.get(op.id.as_str()).cloned().unwrap_or_default();
        duplicates(verdict, Flow::Payouts, &op.id, &found, sent.map(|s| &s.sent));
        for p in &found {
            let ocid = p["originator_conversation_id"].as_str().unwrap_or(id_of(p));
            known_ocids.insert(ocid.to_owned());
        }
        let Some(payout) = found.first() else {
            let ids = sent.map(|s| s.sent.ids()).unwrap_or_default();
            let rows: Vec<&TransactionRecord> = ids.iter().flat_map(|id| inputs.truth.b2c(id)).collect();
            if !ids.is_empty() {
                verdict.fail(
                    Flow::Payouts,
                    Check::Lost,
                    &op.id,
                    format!("the API named {ids:?} but does not list it"),
                    summaries(rows),
                );
            } else {
                verdict.tolerate(
                    Flow::Payouts,
                    &op.id,
                    "never_created",
                    sent.map(|s| s.sent.outcome()).unwrap_or_default(),
                );
            }
            continue;
        };
        let id = id_of(payout);
        let ocid = payout["originator_conversation_id"].as_str().unwrap_or(id);
        let record = format!("{} {id}", op.id);
        let rows = inputs.truth.b2c(ocid);
        let truth = summaries(rows);
        let accepted: Vec<&TransactionRecord> = rows.iter().filter(|r| processed(r)).collect();
        let moved = rows.iter().filter(|r| r.money_moved).count();
        let status = status_of(payout);
        server_errors(
            verdict,
            Flow::Payouts,
            &record,
            sent.map(|s| &s.sent),
            format!("money moved: {}; now {status}", moved > 0),
            truth.clone(),
        );
        if moved > 1 {
            verdict.fail(
                Flow::Payouts,
                Check::PaidTwice,
                &record,
                format!("disbursed {moved} times"),
                truth.clone(),
            );
        }
        // A second request for one payout: accepted twice, or refused by Daraja's dedupe.
        let refused_duplicates: Vec<&TransactionRecord> = rows
            .iter()
            .filter(|r| {
                !processed(r)
                    && r.error_code.as_deref() == Some(checkout::daraja::errors::DUPLICATE_ORIGINATOR_CONVERSATION_ID)
            })
            .collect();
        if let Some(first) = accepted.first() {
            let repeats: Vec<&TransactionRecord> = accepted[1..]
                .iter()
                .copied()
                .chain(refused_duplicates.iter().copied())
                .collect();
            let across_crash = repeats
                .iter()
                .all(|r| crash_between(inputs.kills, &first.created_at, &r.created_at));
            if repeats.is_empty() {
                // One request: what should happen.
            } else if across_crash {
                verdict.tolerate(
                    Flow::Payouts,
                    &record,
                    "b2c_resent_after_a_crash",
                    format!("{} more B2C request(s) after a crash", repeats.len()),
                );
            } else if accepted.len() == 1 && ambiguous_answer(first) {
                // The first request's answer was lost (5xx after Daraja took it, a timeout): once
                // its lease ran out the payout was resubmitted with the same
                // OriginatorConversationID, and Daraja refused that as a duplicate. One payment;
                // the product's documented design (docs/operations.md, PAYOUT_SUBMISSION_LEASE_SECONDS).
                verdict.tolerate(
                    Flow::Payouts,
                    &record,
                    "b2c_resubmitted_after_an_ambiguous_answer_refused_as_duplicate",
                    format!(
                        "{} resubmission(s) after {}, refused by Daraja as duplicates",
                        repeats.len(),
                        first.faults.join(", ")
                    ),
                );
            } else {
                verdict.fail(
                    Flow::Payouts,
                    Check::SentTwice,
                    &record,
                    format!(
                        "{} B2C requests for one payout ({} refused by Daraja as duplicates)",
                        1 + repeats.len(),
                        refused_duplicates.len()
                    ),
                    truth.clone(),
                );
            }
        }
        let paid = moved > 0;
        let reviewed = sent.is_some_and(|s| s.reviews.iter().any(|a| a.is_success()));
        match (paid, status) {
            (true, "completed") => {
                // The result we acknowledged carries the receipt; a missing one is an update lost.
                let acknowledged = rows
                    .iter()
                    .any(|r| r.money_moved && delivered(r, FaultTarget::B2cResult));
                if acknowledged && payout["mpesa_receipt"].is_null() {
                    verdict.fail(
                        Flow::Payouts,
                        Check::Lost,
                        &record,
                        "the success result was acknowledged, yet the payout has no receipt",
                        truth,
                    );
                }
            }
            (false, "failed") | (false, "rejected") => {}
            (true, "failed") | (true, "rejected") => verdict.fail(
                Flow::Payouts,
                Check::WrongFinalState,
                &record,
                format!(
                    "the money moved; shown {status} ({})",
                    payout["failure_reason"].as_str().unwrap_or("no reason")
                ),
                truth,
            ),
            (false, "completed") => verdict.fail(
                Flow::Payouts,
                Check::WrongFinalState,
                &record,
                "shown completed; no money moved",
                truth,
            ),
            (_, "unknown") => {
                let reason = if paid {
                    "money_moved_result_unconfirmed"
                } else if accepted.is_empty() {
                    "unknown_after_a_refusal"
                } else {
                    "transaction_status_finds_nothing"
                };
                verdict.open(Flow::Payouts, &record, reason, format!("{} B2C rows", rows.len()));
            }
            (_, "awaiting_approval") => {
                let review = sent
                    .and_then(|s| s.reviews.iter().find(|a| !a.is_success()))
                    .map(|a| format!("{:?} {}", a.status, a.code().unwrap_or("")));
                match review {
                    Some(refused) if !reviewed => {
                        verdict.open(Flow::Payouts, &record, "approval_refused_by_the_api", refused)
                    }
                    _ => verdict.fail(
                        Flow::Payouts,
                        Check::StillOpen,
                        &record,
                        "still awaiting approval after it was reviewed",
                        truth,
                    ),
                }
            }
            (_, s) if PAYOUT_OPEN.contains(&s) => {
                if rows.iter().any(|r| r.status == TxStatus::Pending) {
                    verdict.open(Flow::Payouts, &record, "daraja_still_processing", s);
                } else {
                    verdict.fail(
                        Flow::Payouts,
                        Check::StillOpen,
                        &record,
                        format!("still {s} (money moved: {paid})"),
                        truth,
                    );
                }
            }
            (_, s) => verdict.fail(
                Flow::Payouts,
                Check::WrongFinalState,
                &record,
                format!("unknown status {s}"),
                truth,
            ),
        }
    }
    for (ocid, rows) in &inputs.truth.b2c_by_ocid {
        if !known_ocids.contains(ocid) && rows.iter().any(processed) {
            let moved = rows.iter().any(|r| r.money_moved);
            verdict.fail(
                Flow::Payouts,
                Check::Lost,
                ocid,
                format!("Daraja accepted a payout the API does not list (money moved: {moved})"),
                summaries(rows),
            );
        }
    }
}
