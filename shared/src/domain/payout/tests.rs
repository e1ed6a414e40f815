//! Tests of the payout state machine and its submission lease (`super` is `domain::payout`).

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::domain::amount::Amount;
use crate::domain::b2c_outcome::{b2c_outcome, B2cOutcome, PayoutFailureReason};
use crate::domain::client::ClientId;
use crate::domain::ids::PayoutId;
use crate::domain::msisdn::Msisdn;
use crate::domain::payment::DarajaResult;
use crate::domain::text::{Metadata, Remarks};
use crate::domain::ResultCode;
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T11:30:05Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn owner() -> ClientId {
    ClientId::parse("merchant-1").unwrap()
}

fn approver() -> ClientId {
    ClientId::parse("approver-1").unwrap()
}

fn new_payout(requires_approval: bool) -> Payout {
    Payout::create(
        PayoutId::generate(),
        owner(),
        "600992".into(),
        NewPayout {
            amount: Amount::new(2500).unwrap(),
            phone: Msisdn::parse("0712345678").unwrap(),
            kind: PayoutKind::BusinessPayment,
            remarks: Remarks::parse("Refund ORDER1234").unwrap(),
            occasion: None,
            metadata: Metadata::default(),
        },
        requires_approval,
        t0(),
        PayoutTimings::default(),
    )
}

fn res(code: &str) -> DarajaResult {
    DarajaResult {
        code: ResultCode::new(code),
        description: "desc".into(),
    }
}

fn result(p: &Payout, code: &str, amount: Option<u64>, receipt: Option<&str>) -> PayoutEvent {
    PayoutEvent::Result(B2cFinalResult {
        originator_conversation_id: Some(p.id.to_string()),
        conversation_id: Some("AG_1".into()),
        result: res(code),
        receipt: receipt.map(str::to_owned),
        amount: amount.map(|a| Amount::new(a).unwrap()),
        recipient_name: Some("254712345678 - JANE DOE".into()),
    })
}

fn accepted() -> PayoutEvent {
    PayoutEvent::DarajaAccepted {
        conversation_id: "AG_1".into(),
    }
}

fn apply_at(p: &Payout, e: &PayoutEvent, now: DateTime<Utc>) -> Payout {
    match decide(p, e, now) {
        PayoutDecision::Apply(next) => *next,
        PayoutDecision::Ignore(why) => panic!("expected a change, got {why:?}"),
    }
}

fn step(p: &Payout, e: &PayoutEvent) -> Payout {
    apply_at(p, e, t0())
}

fn ignored(p: &Payout, e: &PayoutEvent) -> PayoutIgnored {
    match decide(p, e, t0()) {
        PayoutDecision::Apply(next) => panic!("expected no change, got {:?}", next.status),
        PayoutDecision::Ignore(why) => why,
    }
}

#[test]
fn happy_path_and_duplicate_results() {
    let p = new_payout(false);
    assert_eq!(p.status, PayoutStatus::Pending);
    assert_eq!(p.originator_conversation_id(), p.id.as_str());
    assert!(p.next_check_at.is_some(), "a pending payout is watched for a lost job");
    let sent = step(&p, &accepted());
    assert_eq!(sent.status, PayoutStatus::Sent);
    assert_eq!(sent.conversation_id.as_deref(), Some("AG_1"));
    assert_eq!(sent.deadline_at, Some(t0() + PayoutTimings::default().deadline()));
    let done = step(&sent, &result(&p, "0", Some(2500), Some("TKL632NMUA")));
    assert_eq!(done.status, PayoutStatus::Completed);
    assert_eq!(done.mpesa_receipt.as_deref(), Some("TKL632NMUA"));
    assert_eq!(done.recipient_name.as_deref(), Some("254712345678 - JANE DOE"));
    assert_eq!(done.next_check_at, None);
    let sources: Vec<_> = done.history.iter().map(|h| h.source).collect();
    assert_eq!(
        sources,
        [PayoutSource::Api, PayoutSource::Daraja, PayoutSource::Callback]
    );
    assert_eq!(
        ignored(&done, &result(&p, "0", Some(2500), Some("TKL632NMUA"))),
        PayoutIgnored::Duplicate
    );
    assert!(ignored(&done, &result(&p, "0", Some(2500), Some("OTHER"))).is_anomaly());
    assert!(ignored(&done, &result(&p, "1", None, None)).is_anomaly());
    // The acceptance arriving after the result changes nothing.
    assert!(matches!(
        ignored(&done, &PayoutEvent::AlreadySubmitted),
        PayoutIgnored::NotApplicable { .. }
    ));
}

#[test]
fn failure_results_map_through_the_table() {
    let p = new_payout(false);
    let sent = step(&p, &accepted());
    let failed = step(&sent, &result(&p, "2001", None, None));
    assert_eq!(failed.status, PayoutStatus::Failed);
    assert_eq!(
        failed.failure_reason,
        Some(PayoutFailureReason::InitiatorCredentialsInvalid)
    );
    assert_eq!(failed.result.as_ref().unwrap().code.as_str(), "2001");
    assert_eq!(
        ignored(&failed, &result(&p, "2001", None, None)),
        PayoutIgnored::Duplicate
    );
    let late_money = ignored(&failed, &result(&p, "0", Some(2500), Some("R1")));
    assert!(late_money.is_anomaly(), "money after a failure must be flagged");
}

#[test]
fn results_that_do_not_match_are_anomalies() {
    let p = new_payout(false);
    let sent = step(&p, &accepted());
    assert!(matches!(
        ignored(&sent, &result(&p, "0", Some(2499), Some("R"))),
        PayoutIgnored::AmountMismatch { .. }
    ));
    assert!(matches!(
        ignored(&sent, &result(&p, "0", None, Some("R"))),
        PayoutIgnored::AmountMismatch { .. }
    ));
    assert_eq!(
        ignored(&sent, &result(&p, "0", Some(2500), None)),
        PayoutIgnored::MissingReceipt
    );
    let mut other = result(&p, "0", Some(2500), Some("R"));
    if let PayoutEvent::Result(r) = &mut other {
        r.originator_conversation_id = Some("po_other".into());
    }
    assert!(matches!(
        ignored(&sent, &other),
        PayoutIgnored::ConversationMismatch { .. }
    ));
    let mut other_conversation = result(&p, "0", Some(2500), Some("R"));
    if let PayoutEvent::Result(r) = &mut other_conversation {
        r.conversation_id = Some("AG_2".into());
    }
    assert!(matches!(
        ignored(&sent, &other_conversation),
        PayoutIgnored::ConversationMismatch { .. }
    ));
}

#[test]
fn a_duplicate_refusal_means_sent_and_a_result_can_settle_a_pending_payout() {
    let p = new_payout(false);
    let sent = step(&p, &PayoutEvent::AlreadySubmitted);
    assert_eq!(sent.status, PayoutStatus::Sent);
    assert_eq!(sent.conversation_id, None);
    // The result names the conversation; we keep it.
    let done = step(&sent, &result(&p, "0", Some(2500), Some("R1")));
    assert_eq!(done.conversation_id.as_deref(), Some("AG_1"));
    // A crash lost the acceptance entirely: the result still settles the pending payout.
    let done = step(&p, &result(&p, "0", Some(2500), Some("R1")));
    assert_eq!(done.status, PayoutStatus::Completed);
}

#[test]
fn a_queue_timeout_is_never_a_failure() {
    let p = new_payout(false);
    let sent = step(&p, &accepted());
    let unknown = step(&sent, &PayoutEvent::QueueTimeout);
    assert_eq!(unknown.status, PayoutStatus::Unknown);
    assert_eq!(unknown.failure_reason, None);
    assert_eq!(unknown.next_check_at, Some(t0()), "ask Transaction Status at once");
    assert_eq!(ignored(&unknown, &PayoutEvent::QueueTimeout), PayoutIgnored::Duplicate);
    let done = step(
        &unknown,
        &PayoutEvent::StatusCompleted {
            result: res("0"),
            receipt: Some("R1".into()),
            amount: Some(Amount::new(2500).unwrap()),
            recipient_name: None,
        },
    );
    assert_eq!(done.status, PayoutStatus::Completed);
    assert_eq!(done.history.last().unwrap().source, PayoutSource::Reconciliation);
    // The late result with the same receipt is a duplicate.
    assert_eq!(
        ignored(&done, &result(&p, "0", Some(2500), Some("R1"))),
        PayoutIgnored::Duplicate
    );
    let wrong_amount = PayoutEvent::StatusCompleted {
        result: res("0"),
        receipt: Some("R1".into()),
        amount: Some(Amount::new(10).unwrap()),
        recipient_name: None,
    };
    assert!(ignored(&unknown, &wrong_amount).is_anomaly());
}

#[test]
fn not_found_never_fails_a_payout_and_is_raised_past_the_deadline() {
    let p = new_payout(false);
    let unknown = step(&step(&p, &accepted()), &PayoutEvent::QueueTimeout);
    let not_found = PayoutEvent::StatusNotFound { result: res("2032") };
    let timings = PayoutTimings::default();
    let deadline = unknown.deadline_at.unwrap();
    let mut q = unknown.clone();
    for at in [t0(), deadline, deadline + timings.status_interval() * 3] {
        q = apply_at(&q, &not_found, at);
        assert_eq!(
            q.status,
            PayoutStatus::Unknown,
            "2032 at {at} is recorded, never a failure"
        );
        assert_eq!(q.failure_reason, None);
    }
    assert_eq!(q.not_found_answers.len(), 3);
    assert!(q.not_found_confirmed());
    assert_eq!(
        q.history.len(),
        unknown.history.len(),
        "recording an answer is not a transition"
    );
    assert_eq!(q.unresolved_at(t0()), None, "before the deadline it is simply open");
    assert_eq!(q.unresolved_at(deadline), Some(deadline), "past it operators must look");
    // The genuine result that arrives late still settles it.
    let done = step(&q, &result(&p, "0", Some(2500), Some("TKL632NMUA")));
    assert_eq!(done.status, PayoutStatus::Completed);
    assert_eq!(done.unresolved_at(deadline), None);
}

#[test]
fn a_payout_failed_as_not_found_by_an_older_release_completes_on_a_genuine_success() {
    let p = new_payout(false);
    let sent = step(&p, &accepted());
    let mut failed = sent.clone();
    failed.status = PayoutStatus::Failed;
    failed.failure_reason = Some(PayoutFailureReason::NotFoundAtDaraja);
    failed.next_check_at = None;
    let done = step(&failed, &result(&p, "0", Some(2500), Some("R1")));
    assert_eq!((done.status, done.failure_reason), (PayoutStatus::Completed, None));
    let by_status = step(
        &failed,
        &PayoutEvent::StatusCompleted {
            result: res("0"),
            receipt: Some("R1".into()),
            amount: Some(Amount::new(2500).unwrap()),
            recipient_name: None,
        },
    );
    assert_eq!(by_status.status, PayoutStatus::Completed);
    // Any other failure stays failed: a success after it is an anomaly.
    let mut refused = failed.clone();
    refused.failure_reason = Some(PayoutFailureReason::DarajaRejected);
    assert!(ignored(&refused, &result(&p, "0", Some(2500), Some("R1"))).is_anomaly());
}

#[test]
fn an_unrecognised_result_code_makes_a_payout_unknown_not_failed() {
    let p = new_payout(false);
    let sent = step(&p, &accepted());
    let unknown = step(&sent, &result(&p, "4242", None, None));
    assert_eq!(unknown.status, PayoutStatus::Unknown);
    assert_eq!(unknown.failure_reason, None);
    assert_eq!(unknown.result.as_ref().unwrap().code.as_str(), "4242");
    assert_eq!(unknown.next_check_at, Some(t0()), "ask Transaction Status at once");
    assert_eq!(
        ignored(&unknown, &result(&p, "4242", None, None)),
        PayoutIgnored::Duplicate
    );
    // A documented failure code still fails it.
    let failed = step(&unknown, &result(&p, "2040", None, None));
    assert_eq!(failed.failure_reason, Some(PayoutFailureReason::RecipientNotRegistered));
}

#[test]
fn approval_needs_another_principal() {
    let p = new_payout(true);
    assert_eq!(p.status, PayoutStatus::AwaitingApproval);
    assert_eq!(p.next_check_at, None, "not watched until approved");
    assert_eq!(
        ignored(&p, &PayoutEvent::Approve { by: owner() }),
        PayoutIgnored::SelfApproval
    );
    assert_eq!(
        ignored(&p, &PayoutEvent::Reject { by: owner() }),
        PayoutIgnored::SelfApproval
    );
    assert!(matches!(ignored(&p, &accepted()), PayoutIgnored::NotApplicable { .. }));
    let approved = step(&p, &PayoutEvent::Approve { by: approver() });
    assert_eq!(approved.status, PayoutStatus::Pending);
    assert_eq!(approved.approval.as_ref().unwrap().by, approver());
    assert_eq!(approved.history.last().unwrap().by, Some(approver()));
    assert!(approved.next_check_at.is_some());
    assert!(matches!(
        ignored(&approved, &PayoutEvent::Approve { by: approver() }),
        PayoutIgnored::NotApplicable { .. }
    ));
    let rejected = step(&p, &PayoutEvent::Reject { by: approver() });
    assert_eq!(rejected.status, PayoutStatus::Rejected);
    assert_eq!(rejected.approval.unwrap().decision, ApprovalDecision::Rejected);
    assert_eq!(rejected.next_check_at, None);
}

fn leased(p: &Payout) -> Payout {
    p.take_submission_lease("worker-a", t0(), Duration::seconds(120))
        .unwrap()
}

#[test]
fn a_refusal_after_an_attempt_that_may_have_reached_daraja_is_not_a_failure() {
    let first = leased(&new_payout(false));
    let refused = PayoutEvent::DarajaRefused {
        result: res("400.002.02"),
    };
    assert_eq!(
        step(&first, &refused).status,
        PayoutStatus::Failed,
        "a first refusal is definitive"
    );
    // The first attempt's answer was lost (or we crashed): its lease runs out, a second job
    // takes one, and Daraja refuses that one. The first may have paid.
    let later = t0() + Duration::seconds(121);
    let retried = first
        .take_submission_lease("worker-b", later, Duration::seconds(120))
        .unwrap();
    let unknown = step(&retried, &refused);
    assert_eq!(unknown.status, PayoutStatus::Unknown, "the first attempt may have paid");
    assert_eq!(unknown.failure_reason, None);
    assert_eq!(unknown.submission_lease, None);
    // An attempt that provably never left does not count: the refusal is definitive.
    let unsent = first.released_unsent(t0());
    let retried = unsent
        .take_submission_lease("worker-b", t0(), Duration::seconds(120))
        .unwrap();
    assert!(!retried.earlier_attempt_may_have_paid());
    assert_eq!(step(&retried, &refused).status, PayoutStatus::Failed);
}

#[test]
fn one_submission_lease_at_a_time() {
    let p = new_payout(false);
    let lease = Duration::seconds(120);
    let a = p.take_submission_lease("worker-a", t0(), lease).unwrap();
    assert_eq!(a.submit_attempts, 1);
    assert_eq!(a.history, p.history, "taking a lease is not a transition");
    assert_eq!(
        a.next_check_at,
        Some(t0() + lease),
        "the sweeper waits for the lease to end"
    );
    assert_eq!(
        a.take_submission_lease("worker-b", t0() + Duration::seconds(119), lease),
        Err(LeaseRefused::Held {
            holder: "worker-a".into(),
            until: t0() + lease
        })
    );
    // Run out (a crash): another job may take it.
    let b = a
        .take_submission_lease("worker-b", t0() + lease, lease)
        .expect("an expired lease is free");
    assert_eq!(b.submit_attempts, 2);
    // Given back early because nothing was sent: free at once.
    let released = a.released_unsent(t0());
    assert_eq!(
        (released.submission_lease.as_ref(), released.unsent_attempts),
        (None, 1)
    );
    assert!(released.take_submission_lease("worker-b", t0(), lease).is_ok());
    // Leaving `pending` clears it; only a pending payout is submitted.
    let sent = step(&a, &accepted());
    assert_eq!(sent.submission_lease, None);
    assert_eq!(
        sent.take_submission_lease("worker-b", t0(), lease),
        Err(LeaseRefused::NotPending {
            status: PayoutStatus::Sent
        })
    );
    assert!(matches!(
        new_payout(true).take_submission_lease("w", t0(), lease),
        Err(LeaseRefused::NotPending { .. })
    ));
}

fn any_event(p: &Payout) -> impl Strategy<Value = (PayoutEvent, i64)> {
    let codes = prop::sample::select(vec!["0", "1", "2001", "2040", "SFC_IC0003", "4242"]);
    let id = p.id.to_string();
    let event = prop_oneof![
        Just(accepted()),
        Just(PayoutEvent::AlreadySubmitted),
        Just(PayoutEvent::DarajaRefused {
            result: res("400.002.02")
        }),
        Just(PayoutEvent::QueueTimeout),
        Just(PayoutEvent::NoResult),
        Just(PayoutEvent::Approve { by: approver() }),
        Just(PayoutEvent::Approve { by: owner() }),
        Just(PayoutEvent::Reject { by: approver() }),
        Just(PayoutEvent::StatusNotFound { result: res("2032") }),
        Just(PayoutEvent::StatusDeclined { result: res("0") }),
        (
            prop::option::of(prop::sample::select(vec![2500u64, 10])),
            prop::option::of(prop::sample::select(vec!["R1", "R2"]))
        )
            .prop_map(|(amount, receipt)| PayoutEvent::StatusCompleted {
                result: res("0"),
                receipt: receipt.map(str::to_owned),
                amount: amount.map(|a| Amount::new(a).unwrap()),
                recipient_name: None,
            }),
        (
            codes,
            prop::option::of(prop::sample::select(vec![2500u64, 99])),
            prop::option::of(prop::sample::select(vec!["R1", "R2"]))
        )
            .prop_map(move |(code, amount, receipt)| PayoutEvent::Result(B2cFinalResult {
                originator_conversation_id: Some(id.clone()),
                conversation_id: None,
                result: res(code),
                receipt: receipt.map(str::to_owned),
                amount: amount.map(|a| Amount::new(a).unwrap()),
                recipient_name: None,
            })),
    ];
    (event, 0i64..400)
}

fn allowed(from: PayoutStatus, to: PayoutStatus) -> bool {
    use PayoutStatus::*;
    match from {
        AwaitingApproval => matches!(to, Pending | Rejected),
        Pending => matches!(to, Sent | Unknown | Completed | Failed),
        Sent => matches!(to, Unknown | Completed | Failed),
        Unknown => matches!(to, Completed | Failed),
        Completed | Failed | Rejected => false,
    }
}

proptest! {
    /// Whatever order, repetition and timing results, timeouts, Transaction Status answers and
    /// approvals arrive in: every transition is allowed; settled payouts never move; a completed
    /// payout keeps its receipt; a timeout never fails a payout; "not found" fails one only
    /// after the deadline with two spaced answers; history grows exactly with transitions.
    #[test]
    fn state_machine_invariants(requires_approval in prop::bool::ANY, seed_events in prop::collection::vec(any_event(&new_payout(false)), 0..14)) {
        let mut payout = new_payout(requires_approval);
        // Results carry the id of the payout they were generated for: rebind them to ours.
        let events: Vec<(PayoutEvent, i64)> = seed_events.into_iter().map(|(e, dt)| match e {
            PayoutEvent::Result(mut r) => { r.originator_conversation_id = Some(payout.id.to_string()); (PayoutEvent::Result(r), dt) }
            other => (other, dt),
        }).collect();
        let mut now = t0();
        for (event, dt) in &events {
            now += Duration::seconds(*dt);
            let before = payout.clone();
            if let PayoutDecision::Apply(next) = decide(&payout, event, now) {
                let next = *next;
                if next.status != before.status {
                    prop_assert!(allowed(before.status, next.status), "{:?} -> {:?} on {:?}", before.status, next.status, event);
                    prop_assert_eq!(next.history.len(), before.history.len() + 1);
                    prop_assert_eq!(next.history.last().unwrap().status, next.status);
                } else {
                    prop_assert_eq!(&next.history, &before.history);
                }
                prop_assert_eq!(next.next_check_at.is_some(), next.status.is_open(), "{:?}", next.status);
                if matches!(event, PayoutEvent::QueueTimeout | PayoutEvent::NoResult | PayoutEvent::StatusNotFound { .. }) {
                    prop_assert_ne!(next.status, PayoutStatus::Failed, "{:?} never fails a payout", event);
                }
                if let PayoutEvent::Result(r) = event {
                    if b2c_outcome(&r.result.code) == B2cOutcome::Unrecognised {
                        prop_assert_ne!(next.status, PayoutStatus::Failed, "an unrecognised code never fails a payout");
                    }
                }
                if next.status == PayoutStatus::Failed && before.status != PayoutStatus::Failed {
                    prop_assert!(next.failure_reason.is_some());
                }
                if next.status != PayoutStatus::Pending {
                    prop_assert!(next.submission_lease.is_none());
                }
                if next.status == PayoutStatus::Completed {
                    prop_assert_eq!(next.failure_reason, None);
                }
                if before.status.is_settled() {
                    prop_assert_eq!(next.status, before.status, "settled payouts never move");
                    if before.mpesa_receipt.is_some() {
                        prop_assert_eq!(&next.mpesa_receipt, &before.mpesa_receipt);
                    }
                }
                if matches!(event, PayoutEvent::Approve { by } | PayoutEvent::Reject { by } if by == payout.creator()) {
                    prop_assert!(false, "self approval applied");
                }
                payout = next;
            }
        }
    }
}
