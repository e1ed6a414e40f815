//! The payment state machine: the events that may move a payment, and [`decide`], the only place
//! transitions are chosen (pure, returning apply or ignore with a reason), with its property tests.

use chrono::{DateTime, Utc};

use super::{DarajaResult, Payment, PaymentStatus, Source};
use crate::domain::amount::Amount;
use crate::domain::result_code::ResultCode;
use crate::domain::stk_outcome::{stk_outcome, FailureReason, StkOutcome};

/// A final answer about an STK payment, from its callback or from STK Query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StkFinalResult {
    pub checkout_request_id: String,
    pub result: DarajaResult,
    /// Present on successful callbacks; STK Query carries neither receipt nor amount.
    pub receipt: Option<String>,
    pub amount: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    /// Daraja accepted the push: the prompt is on the phone.
    DarajaAccepted {
        checkout_request_id: String,
        merchant_request_id: String,
    },
    /// Daraja refused the push synchronously: no prompt was sent.
    DarajaRejected { result: DarajaResult },
    /// Daraja could not be reached (or rate-limited us) and provably sent nothing.
    DarajaUnavailable { result: Option<DarajaResult> },
    /// The push may have been delivered but its answer was lost (HTTP 503/408, a timeout, a
    /// reset, an unreadable answer): the prompt may be on the phone.
    PushOutcomeUnknown,
    /// A final result, from the callback or from reconciliation.
    Final { outcome: StkFinalResult, source: Source },
    /// No final answer by the deadline.
    DeadlinePassed,
}

/// Why an event changed nothing. `is_anomaly` separates harmless repeats from things to alert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// The same final result was already applied (duplicate delivery).
    Duplicate,
    /// The event does not apply in this state (e.g. an acceptance arriving after the callback).
    NotApplicable { status: PaymentStatus },
    /// A different final result for an already-settled payment.
    ConflictingResult {
        status: PaymentStatus,
        reported: ResultCode,
    },
    /// The result names another CheckoutRequestID than the one Daraja gave us.
    CheckoutRequestMismatch { expected: String, reported: String },
    /// A success whose amount differs from the payment's (or is missing).
    AmountMismatch { expected: Amount, reported: Option<Amount> },
    /// A success callback without a receipt number.
    MissingReceipt,
}

impl Ignored {
    pub fn is_anomaly(&self) -> bool {
        !matches!(self, Ignored::Duplicate | Ignored::NotApplicable { .. })
    }

    pub fn code(&self) -> &'static str {
        match self {
            Ignored::Duplicate => "duplicate",
            Ignored::NotApplicable { .. } => "not_applicable",
            Ignored::ConflictingResult { .. } => "conflicting_result",
            Ignored::CheckoutRequestMismatch { .. } => "checkout_request_mismatch",
            Ignored::AmountMismatch { .. } => "amount_mismatch",
            Ignored::MissingReceipt => "missing_receipt",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Apply(Box<Payment>),
    Ignore(Ignored),
}

/// The payment state machine: what `event` does to `payment` at `now`.
pub fn decide(payment: &Payment, event: &PaymentEvent, now: DateTime<Utc>) -> Decision {
    use PaymentStatus::*;
    match event {
        PaymentEvent::DarajaAccepted {
            checkout_request_id,
            merchant_request_id,
        } => {
            if payment.status != Pending {
                return Decision::Ignore(Ignored::NotApplicable { status: payment.status });
            }
            let mut next = payment.moved_to(Sent, Source::Daraja, now);
            next.checkout_request_id = Some(checkout_request_id.clone());
            next.merchant_request_id = Some(merchant_request_id.clone());
            Decision::Apply(Box::new(next))
        }
        PaymentEvent::DarajaRejected { result } => {
            if payment.status != Pending {
                return Decision::Ignore(Ignored::NotApplicable { status: payment.status });
            }
            let mut next = payment.moved_to(Failed, Source::Daraja, now);
            next.result = Some(result.clone());
            next.failure_reason = Some(FailureReason::DarajaRejected);
            Decision::Apply(Box::new(next))
        }
        PaymentEvent::DarajaUnavailable { result } => {
            if payment.status != Pending {
                return Decision::Ignore(Ignored::NotApplicable { status: payment.status });
            }
            let mut next = payment.moved_to(Failed, Source::Daraja, now);
            next.result = result.clone();
            next.failure_reason = Some(FailureReason::DarajaUnavailable);
            Decision::Apply(Box::new(next))
        }
        PaymentEvent::PushOutcomeUnknown => {
            if payment.status != Pending {
                return Decision::Ignore(Ignored::NotApplicable { status: payment.status });
            }
            Decision::Apply(Box::new(payment.moved_to(Unknown, Source::Daraja, now)))
        }
        PaymentEvent::DeadlinePassed => {
            if !payment.status.is_open() {
                return Decision::Ignore(Ignored::NotApplicable { status: payment.status });
            }
            if payment.checkout_request_id.is_none() {
                // Without a CheckoutRequestID nothing can be asked: whether the push was
                // delivered (and paid) is unknown, and saying `timeout` would be a guess. It
                // stays open for its callback; operators see it past the deadline.
                return match payment.status {
                    Unknown => Decision::Ignore(Ignored::NotApplicable { status: Unknown }),
                    _ => Decision::Apply(Box::new(payment.moved_to(Unknown, Source::Reconciliation, now))),
                };
            }
            let mut next = payment.moved_to(Timeout, Source::Reconciliation, now);
            next.failure_reason = Some(FailureReason::NoFinalResult);
            Decision::Apply(Box::new(next))
        }
        PaymentEvent::Final { outcome, source } => decide_final(payment, outcome, *source, now),
    }
}

fn decide_final(payment: &Payment, reported: &StkFinalResult, source: Source, now: DateTime<Utc>) -> Decision {
    use PaymentStatus::*;
    if let Some(expected) = &payment.checkout_request_id {
        if *expected != reported.checkout_request_id {
            return Decision::Ignore(Ignored::CheckoutRequestMismatch {
                expected: expected.clone(),
                reported: reported.checkout_request_id.clone(),
            });
        }
    }
    let outcome = stk_outcome(&reported.result.code);
    if outcome == StkOutcome::Completed && matches!(source, Source::Callback | Source::C2bEcho) {
        // A callback (or an echo) is untrusted input: a success must carry our amount and a receipt.
        if reported.amount != Some(payment.amount) {
            return Decision::Ignore(Ignored::AmountMismatch {
                expected: payment.amount,
                reported: reported.amount,
            });
        }
        if reported.receipt.as_deref().is_none_or(str::is_empty) {
            return Decision::Ignore(Ignored::MissingReceipt);
        }
    }

    let same_result = payment.result.as_ref().map(|r| &r.code) == Some(&reported.result.code);
    match payment.status {
        Pending | Sent | Unknown => {}
        _ if outcome == StkOutcome::Completed && payment.closed_for_transport_reason() => {}
        Completed if outcome == StkOutcome::Completed => {
            return match (&payment.mpesa_receipt, &reported.receipt) {
                // Completed by reconciliation (no receipt); the verified callback brings the receipt.
                (None, Some(receipt)) => {
                    let mut next = payment.clone();
                    next.mpesa_receipt = Some(receipt.clone());
                    next.updated_at = now;
                    Decision::Apply(Box::new(next))
                }
                (_, None) => Decision::Ignore(Ignored::Duplicate),
                (Some(ours), Some(theirs)) if ours == theirs => Decision::Ignore(Ignored::Duplicate),
                _ => Decision::Ignore(Ignored::ConflictingResult {
                    status: Completed,
                    reported: reported.result.code.clone(),
                }),
            };
        }
        status if same_result => {
            let _ = status;
            return Decision::Ignore(Ignored::Duplicate);
        }
        status => {
            return Decision::Ignore(Ignored::ConflictingResult {
                status,
                reported: reported.result.code.clone(),
            });
        }
    }

    let (status, reason) = match outcome {
        StkOutcome::Completed => (Completed, None),
        StkOutcome::Cancelled(r) => (Cancelled, Some(r)),
        StkOutcome::Timeout(r) => (Timeout, Some(r)),
        StkOutcome::Failed(r) => (Failed, Some(r)),
    };
    let mut next = payment.moved_to(status, source, now);
    if payment.checkout_request_id.is_none() && !reported.checkout_request_id.is_empty() {
        next.checkout_request_id = Some(reported.checkout_request_id.clone());
    }
    next.result = Some(reported.result.clone());
    if status == Completed {
        next.late = payment.closed_for_transport_reason();
        next.failure_reason = None;
        if reported.receipt.is_some() {
            next.mpesa_receipt = reported.receipt.clone();
        }
    } else {
        next.failure_reason = reason;
    }
    Decision::Apply(Box::new(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::ClientId;
    use crate::domain::ids::PaymentId;
    use crate::domain::msisdn::Msisdn;
    use crate::domain::payment::{NewPayment, PaymentTimings};
    use crate::domain::text::{Metadata, Reference};
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T11:30:05Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn new_payment() -> Payment {
        Payment::create(
            PaymentId::generate(),
            ClientId::parse("merchant-1").unwrap(),
            "174379".into(),
            NewPayment {
                amount: Amount::new(100).unwrap(),
                phone: Msisdn::parse("0712345678").unwrap(),
                reference: Reference::parse("ORDER1").unwrap(),
                description: None,
                metadata: Metadata::default(),
            },
            t0(),
            PaymentTimings::default(),
        )
    }

    fn accepted() -> PaymentEvent {
        PaymentEvent::DarajaAccepted {
            checkout_request_id: "ws_CO_1".into(),
            merchant_request_id: "m-1".into(),
        }
    }

    fn callback(code: &str, amount: Option<u64>, receipt: Option<&str>) -> PaymentEvent {
        PaymentEvent::Final {
            outcome: StkFinalResult {
                checkout_request_id: "ws_CO_1".into(),
                result: DarajaResult {
                    code: ResultCode::new(code),
                    description: "desc".into(),
                },
                receipt: receipt.map(str::to_owned),
                amount: amount.map(|a| Amount::new(a).unwrap()),
            },
            source: Source::Callback,
        }
    }

    fn apply(p: &Payment, e: &PaymentEvent) -> Payment {
        match decide(p, e, t0()) {
            Decision::Apply(next) => *next,
            Decision::Ignore(why) => panic!("expected a transition, got {why:?}"),
        }
    }

    fn ignored(p: &Payment, e: &PaymentEvent) -> Ignored {
        match decide(p, e, t0()) {
            Decision::Apply(next) => panic!("expected no change, got {:?}", next.status),
            Decision::Ignore(why) => why,
        }
    }

    #[test]
    fn happy_path() {
        let sent = apply(&new_payment(), &accepted());
        assert_eq!(sent.status, PaymentStatus::Sent);
        assert_eq!(sent.checkout_request_id.as_deref(), Some("ws_CO_1"));
        let done = apply(&sent, &callback("0", Some(100), Some("TKL4ABC12D")));
        assert_eq!(done.status, PaymentStatus::Completed);
        assert_eq!(done.mpesa_receipt.as_deref(), Some("TKL4ABC12D"));
        assert_eq!(done.next_check_at, None);
        assert!(!done.late);
        let sources: Vec<_> = done.history.iter().map(|h| h.source).collect();
        assert_eq!(sources, [Source::Api, Source::Daraja, Source::Callback]);
    }

    #[test]
    fn duplicate_and_conflicting_callbacks_change_nothing() {
        let done = apply(
            &apply(&new_payment(), &accepted()),
            &callback("0", Some(100), Some("R1")),
        );
        assert_eq!(
            ignored(&done, &callback("0", Some(100), Some("R1"))),
            Ignored::Duplicate
        );
        assert!(matches!(
            ignored(&done, &callback("1032", None, None)),
            Ignored::ConflictingResult { .. }
        ));
        assert!(matches!(
            ignored(&done, &callback("0", Some(100), Some("R2"))),
            Ignored::ConflictingResult { .. }
        ));
        let cancelled = apply(&apply(&new_payment(), &accepted()), &callback("1032", None, None));
        assert_eq!(cancelled.failure_reason, Some(FailureReason::CancelledByCustomer));
        assert_eq!(ignored(&cancelled, &callback("1032", None, None)), Ignored::Duplicate);
        let late_success = ignored(&cancelled, &callback("0", Some(100), Some("R1")));
        assert!(late_success.is_anomaly(), "money after a cancellation must be flagged");
    }

    #[test]
    fn callback_success_must_match_amount_and_carry_a_receipt() {
        let sent = apply(&new_payment(), &accepted());
        assert!(matches!(
            ignored(&sent, &callback("0", Some(101), Some("R"))),
            Ignored::AmountMismatch { .. }
        ));
        assert!(matches!(
            ignored(&sent, &callback("0", None, Some("R"))),
            Ignored::AmountMismatch { .. }
        ));
        assert_eq!(ignored(&sent, &callback("0", Some(100), None)), Ignored::MissingReceipt);
        let mut other = callback("0", Some(100), Some("R"));
        if let PaymentEvent::Final { outcome, .. } = &mut other {
            outcome.checkout_request_id = "ws_CO_other".into();
        }
        assert!(matches!(
            ignored(&sent, &other),
            Ignored::CheckoutRequestMismatch { .. }
        ));
    }

    #[test]
    fn success_after_timeout_completes_late() {
        let sent = apply(&new_payment(), &accepted());
        let timed_out = apply(&sent, &PaymentEvent::DeadlinePassed);
        assert_eq!(timed_out.status, PaymentStatus::Timeout);
        assert_eq!(timed_out.failure_reason, Some(FailureReason::NoFinalResult));
        let done = apply(&timed_out, &callback("0", Some(100), Some("R1")));
        assert_eq!(done.status, PaymentStatus::Completed);
        assert!(done.late);
        assert_eq!(done.failure_reason, None);
        // 1037 is a timeout too, and a later success still completes it.
        let unreachable = apply(&sent, &callback("1037", None, None));
        assert_eq!(unreachable.status, PaymentStatus::Timeout);
        assert!(apply(&unreachable, &callback("0", Some(100), Some("R1"))).late);
    }

    #[test]
    fn callback_resolves_a_payment_whose_initiation_outcome_was_unknown() {
        let pending = new_payment();
        let done = apply(&pending, &callback("0", Some(100), Some("R1")));
        assert_eq!(done.status, PaymentStatus::Completed);
        assert_eq!(done.checkout_request_id.as_deref(), Some("ws_CO_1"));
        // The acceptance arriving after the callback changes nothing.
        assert!(matches!(ignored(&done, &accepted()), Ignored::NotApplicable { .. }));
    }

    #[test]
    fn reconciliation_success_needs_no_receipt() {
        let sent = apply(&new_payment(), &accepted());
        let event = PaymentEvent::Final {
            outcome: StkFinalResult {
                checkout_request_id: "ws_CO_1".into(),
                result: DarajaResult {
                    code: ResultCode::new("0"),
                    description: "ok".into(),
                },
                receipt: None,
                amount: None,
            },
            source: Source::Reconciliation,
        };
        let done = apply(&sent, &event);
        assert_eq!(done.status, PaymentStatus::Completed);
        assert_eq!(done.mpesa_receipt, None);
        assert_eq!(done.history.last().unwrap().source, Source::Reconciliation);
        // Then the verified callback adds its receipt without another transition...
        let with_receipt = apply(&done, &callback("0", Some(100), Some("R1")));
        assert_eq!(with_receipt.mpesa_receipt.as_deref(), Some("R1"));
        assert_eq!(with_receipt.history, done.history);
        // ...and a repeat of it is a duplicate.
        assert_eq!(
            ignored(&with_receipt, &callback("0", Some(100), Some("R1"))),
            Ignored::Duplicate
        );
        assert_eq!(ignored(&with_receipt, &event), Ignored::Duplicate);
    }

    #[test]
    fn a_lost_push_answer_is_unknown_and_its_verified_success_completes_it() {
        let unknown = apply(&new_payment(), &PaymentEvent::PushOutcomeUnknown);
        assert_eq!(unknown.status, PaymentStatus::Unknown);
        assert!(unknown.status.is_open() && unknown.next_check_at.is_some());
        assert_eq!(unknown.failure_reason, None);
        let done = apply(&unknown, &callback("0", Some(100), Some("R1")));
        assert_eq!(done.status, PaymentStatus::Completed);
        assert_eq!(
            done.checkout_request_id.as_deref(),
            Some("ws_CO_1"),
            "learned from the callback"
        );
        assert!(!done.late);
        // Past the deadline without a CheckoutRequestID nothing can be asked: it stays unknown.
        assert!(matches!(
            ignored(&unknown, &PaymentEvent::DeadlinePassed),
            Ignored::NotApplicable { .. }
        ));
        let crashed = apply(&new_payment(), &PaymentEvent::DeadlinePassed);
        assert_eq!(crashed.status, PaymentStatus::Unknown, "a push that may have happened");
        let sent = apply(&new_payment(), &accepted());
        assert_eq!(
            apply(&sent, &PaymentEvent::DeadlinePassed).status,
            PaymentStatus::Timeout
        );
    }

    #[test]
    fn a_verified_success_completes_a_payment_closed_for_a_transport_reason() {
        let unavailable = apply(
            &new_payment(),
            &PaymentEvent::DarajaUnavailable {
                result: Some(DarajaResult {
                    code: ResultCode::new("500.003.02"),
                    description: "Spike Arrest Violation".into(),
                }),
            },
        );
        assert_eq!(unavailable.failure_reason, Some(FailureReason::DarajaUnavailable));
        let done = apply(&unavailable, &callback("0", Some(100), Some("R1")));
        assert_eq!(
            (done.status, done.late, done.failure_reason),
            (PaymentStatus::Completed, true, None)
        );
        // Still only a verified success: a mismatched amount stays an anomaly.
        assert!(ignored(&unavailable, &callback("0", Some(99), Some("R1"))).is_anomaly());
        // A payment Daraja itself refused or that the customer cancelled is not reopened.
        let rejected = apply(
            &new_payment(),
            &PaymentEvent::DarajaRejected {
                result: DarajaResult {
                    code: ResultCode::new("400.002.02"),
                    description: "bad".into(),
                },
            },
        );
        assert!(ignored(&rejected, &callback("0", Some(100), Some("R1"))).is_anomaly());
    }

    #[test]
    fn a_payment_past_its_deadline_that_cannot_be_asked_goes_to_the_back_of_the_queue() {
        let p = new_payment();
        let before = p.check_again(t0(), chrono::Duration::days(1));
        assert_eq!(
            before.next_check_at,
            Some(p.deadline_at),
            "capped at the deadline before it"
        );
        assert_eq!(before.reconcile_attempts, 1);
        let later = p.deadline_at + chrono::Duration::minutes(10);
        let past = before.check_again(p.deadline_at, chrono::Duration::minutes(10));
        assert_eq!(past.reconcile_attempts, 2);
        assert_eq!(past.next_check_at, Some(later), "past the deadline: no cap, it rotates");
    }

    #[test]
    fn a_claim_or_an_unasked_hand_back_counts_no_attempt_and_respects_the_deadline() {
        let p = new_payment();
        let claimed = p.not_before(t0(), chrono::Duration::days(1));
        assert_eq!(claimed.reconcile_attempts, 0);
        assert_eq!(claimed.next_check_at, Some(p.deadline_at));
        let just_before = p.deadline_at - chrono::Duration::seconds(1);
        let late = claimed.not_before(just_before, chrono::Duration::seconds(30));
        assert_eq!(
            late.next_check_at,
            Some(p.deadline_at),
            "still capped one second before"
        );
    }

    #[test]
    fn rejection_only_from_pending() {
        let rejected = PaymentEvent::DarajaRejected {
            result: DarajaResult {
                code: ResultCode::new("500.001.1001"),
                description: "Wrong credentials".into(),
            },
        };
        let failed = apply(&new_payment(), &rejected);
        assert_eq!(failed.status, PaymentStatus::Failed);
        assert_eq!(failed.failure_reason, Some(FailureReason::DarajaRejected));
        let sent = apply(&new_payment(), &accepted());
        assert!(matches!(ignored(&sent, &rejected), Ignored::NotApplicable { .. }));
    }

    fn any_event() -> impl Strategy<Value = PaymentEvent> {
        let codes = prop::sample::select(vec!["0", "1", "17", "1032", "1037", "2001", "SFC_IC0003", "4242"]);
        prop_oneof![
            Just(accepted()),
            Just(PaymentEvent::DarajaRejected {
                result: DarajaResult {
                    code: ResultCode::new("400.002.02"),
                    description: "bad".into()
                }
            }),
            Just(PaymentEvent::DeadlinePassed),
            Just(PaymentEvent::PushOutcomeUnknown),
            Just(PaymentEvent::DarajaUnavailable { result: None }),
            (
                codes,
                prop::option::of(prop::sample::select(vec![100u64, 99])),
                prop::option::of(prop::sample::select(vec!["R1", "R2"])),
                prop::bool::ANY
            )
                .prop_map(|(code, amount, receipt, from_callback)| {
                    let mut e = callback(code, amount, receipt);
                    if let PaymentEvent::Final { source, .. } = &mut e {
                        *source = if from_callback {
                            Source::Callback
                        } else {
                            Source::Reconciliation
                        };
                    }
                    e
                }),
        ]
    }

    proptest! {
        /// Whatever order and repetition Daraja, reconciliation and the deadline produce:
        /// a completed payment stays completed with its receipt; the only way out of a settled
        /// state is a success after `timeout`; history only grows; every transition is allowed.
        #[test]
        fn state_machine_invariants(events in prop::collection::vec(any_event(), 0..12)) {
            let mut payment = new_payment();
            for event in &events {
                let before = payment.clone();
                if let Decision::Apply(next) = decide(&payment, event, t0()) {
                    let next = *next;
                    let receipt_added = before.status == PaymentStatus::Completed
                        && next.status == PaymentStatus::Completed
                        && before.mpesa_receipt.is_none()
                        && next.mpesa_receipt.is_some();
                    let allowed = match (before.status, next.status) {
                        (PaymentStatus::Pending, _) => next.status != PaymentStatus::Pending,
                        (PaymentStatus::Sent, s) => !matches!(s, PaymentStatus::Pending | PaymentStatus::Sent | PaymentStatus::Unknown),
                        (PaymentStatus::Unknown, s) => !matches!(s, PaymentStatus::Pending | PaymentStatus::Sent | PaymentStatus::Unknown),
                        (_, PaymentStatus::Completed) if before.closed_for_transport_reason() => true,
                        _ => receipt_added,
                    };
                    prop_assert!(allowed, "{:?} -> {:?} on {:?}", before.status, next.status, event);
                    let added = if receipt_added { 0 } else { 1 };
                    prop_assert_eq!(next.history.len(), before.history.len() + added);
                    prop_assert_eq!(next.history.last().unwrap().status, next.status);
                    prop_assert_eq!(next.next_check_at.is_some(), next.status.is_open());
                    if next.status == PaymentStatus::Completed {
                        prop_assert_eq!(next.failure_reason, None);
                        let expected_late = if receipt_added { before.late } else { before.closed_for_transport_reason() };
                        prop_assert_eq!(next.late, expected_late);
                    } else if !next.status.is_open() {
                        prop_assert!(next.failure_reason.is_some());
                    }
                    payment = next;
                }
                if before.status == PaymentStatus::Completed {
                    // A completed payment keeps its status and any receipt it had.
                    prop_assert_eq!(payment.status, PaymentStatus::Completed);
                    if before.mpesa_receipt.is_some() {
                        prop_assert_eq!(&payment, &before);
                    }
                }
            }
            // Replaying the whole sequence again never moves a settled payment, except a verified
            // success completing one closed for a transport reason.
            let settled = payment.clone();
            for event in &events {
                if let Decision::Apply(next) = decide(&payment, event, t0()) {
                    let late_success = payment.closed_for_transport_reason() && next.status == PaymentStatus::Completed;
                    let receipt_added = payment.status == PaymentStatus::Completed && payment.mpesa_receipt.is_none();
                    prop_assert!(settled.status.is_open() || late_success || receipt_added);
                    payment = *next;
                }
            }
        }
    }
}
