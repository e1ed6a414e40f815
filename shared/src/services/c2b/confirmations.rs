//! C2B confirmations from the queue: verify the shortcode's path token (and its generation),
//! parse per Daraja's quirks, and record the confirmation at once, exactly once per receipt
//! (`TransID`). A confirmation is someone's word, not money: it is applied to what it pays only
//! once it is verified ([`crate::domain::c2b_verification`]): at once when its receipt is one of
//! our STK payments' (an authenticated callback carried it) or when its shortcode trusts its
//! confirmations (an explicit opt-in); otherwise by Transaction Status, asked by the verification
//! sweep ([`crate::services::c2b::verification`]). Another body for a receipt not yet verified is kept beside
//! the first, so a forgery sent first never swallows the real confirmation. One transaction writes
//! the callback record, the confirmation, the receipt registry and, when verified, its effects
//! ([`crate::services::c2b::effects`]). Anything that does not check out is recorded as an anomaly.

use std::sync::Arc;

use async_trait::async_trait;

use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::timestamp::nairobi_to_utc;
use crate::daraja::{parse_c2b_notification, C2bNotification};
use crate::domain::c2b::{amount_anomaly, AccountNumber};
use crate::domain::c2b_path_tokens::TokenId;
use crate::domain::c2b_verification::{ConfirmationBody, VerificationMethod};
use crate::domain::C2bPaymentId;
use crate::engine::{self, Settle};
use crate::repo::c2b as repo;
use crate::repo::callbacks::Verdict;
use crate::secrets::SecretCache;
use crate::services::c2b::callback_context::C2bCallbackContext;
use crate::services::c2b::flow::{C2bEvent, NewConfirmation};
use crate::services::c2b::receipt_links::is_usable_receipt;
use crate::services::callback_intake::CallbackEnvelope;
use crate::services::callback_processor::{CallbackHandler, Retry};
use crate::store::Table;

/// Handles [`CallbackKind::C2bConfirmation`](crate::services::callback_intake::CallbackKind::C2bConfirmation).
pub struct C2bConfirmationHandler {
    pub context: C2bCallbackContext,
}

impl C2bConfirmationHandler {
    pub fn new(table: Arc<dyn Table>, secrets: Arc<SecretCache>, clock: Arc<dyn Clock>) -> C2bConfirmationHandler {
        C2bConfirmationHandler {
            context: C2bCallbackContext::new("c2b_confirmation", table, secrets, clock),
        }
    }
}

/// The body of a notification as a confirmation records it.
fn body_of(notification: &C2bNotification, envelope: &CallbackEnvelope) -> ConfirmationBody {
    ConfirmationBody {
        transaction_type: notification.transaction_type.clone(),
        amount: notification.trans_amount.and_then(Result::ok),
        amount_text: envelope_amount_text(&envelope.body_bytes()),
        bill_ref_number: notification.bill_ref_number.clone(),
        account_number: notification
            .bill_ref_number
            .as_deref()
            .and_then(|r| AccountNumber::parse(r).ok()),
        invoice_number: notification.invoice_number.clone(),
        third_party_trans_id: notification.third_party_trans_id.clone(),
        org_account_balance: notification.org_account_balance.clone(),
        msisdn: notification.msisdn.clone(),
        first_name: notification.first_name.clone(),
        middle_name: notification.middle_name.clone(),
        last_name: notification.last_name.clone(),
        trans_time: notification.trans_time.clone(),
        trans_time_at: notification.trans_time_nairobi().map(nairobi_to_utc),
        anomalies: amount_anomaly(&notification.trans_amount)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        received_at: envelope.received_at,
    }
}

#[async_trait]
impl CallbackHandler for C2bConfirmationHandler {
    async fn handle(&self, message_id: &str, envelope: &CallbackEnvelope) -> Result<Verdict, Retry> {
        let context = &self.context;
        let (secrets, record) = context.begin(message_id, envelope).await?;
        let tokens = CallbackTokens::from_secrets(&secrets);
        let Some(token_id) = tokens
            .verify_hex(TokenPurpose::C2bConfirmation, &envelope.token)
            .and_then(TokenId::parse)
        else {
            return context.finish(record, Verdict::Anomaly, "invalid_token").await;
        };
        let shortcode = token_id.shortcode.clone();
        let config = repo::get_config(context.table.as_ref(), &shortcode).await?;
        // A genuine MAC of a retired generation (after its grace period) is refused too.
        let generation_ok = match &config {
            Some(config) => config.tokens.accepts(token_id.generation, envelope.received_at),
            None => token_id.generation == 0,
        };
        if !generation_ok {
            return context.finish(record, Verdict::Anomaly, "retired_token").await;
        }
        let notification = match parse_c2b_notification(&envelope.body_bytes()) {
            Ok(n) if is_usable_receipt(&n.trans_id) => n,
            Ok(_) => return context.finish(record, Verdict::Anomaly, "malformed").await,
            Err(error) => {
                tracing::warn!(%error, shortcode = %shortcode, "malformed C2B confirmation");
                return context.finish(record, Verdict::Anomaly, "malformed").await;
            }
        };
        if notification.business_short_code.as_deref() != Some(shortcode.as_str()) {
            return context.finish(record, Verdict::Anomaly, "shortcode_mismatch").await;
        }
        let receipt = notification.trans_id.clone();
        let trusted = config
            .as_ref()
            .is_some_and(|c| c.verification.method == VerificationMethod::TrustConfirmation);
        let event = C2bEvent::Confirmation(Box::new(NewConfirmation {
            id: C2bPaymentId::generate(),
            trans_id: receipt.clone(),
            shortcode,
            owner: config.map(|c| c.owner),
            body: body_of(&notification, envelope),
            trusted,
            timings: context.timings,
        }));
        let settled = context
            .settler()
            .settle(Settle::new(receipt.as_str(), &event).recording(Some(record)))
            .await?;
        Ok(engine::verdict_of(&event, &settled).0)
    }
}

/// `TransAmount` exactly as sent, when it is a string (every Daraja C2B field is).
fn envelope_amount_text(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.get("TransAmount")? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.chars().take(32).collect()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::c2b::{C2bKind, C2bPayment, MatchOutcome, UnmatchedReason};
    use crate::domain::c2b::{
        C2bRules, C2bVersion, DarajaRegistration, DefaultDecision, RegistrationStatus, ResponseType, Shortcode,
        ShortcodeConfig,
    };
    use crate::domain::c2b_verification::VerificationStatus;
    use crate::domain::expected_payment::{ExpectedAmount, ExpectedPayment, ExpectedStatus};
    use crate::domain::{Amount, ClientId, ExpectedPaymentId, Metadata, PaymentId};
    use crate::repo::receipts;
    use crate::secrets::{Secret, StaticSecret};
    use crate::services::c2b::receipt_links::stk_completion_writes;
    use crate::services::callback_intake::CallbackKind;
    use crate::store::memory::MemoryTable;
    use crate::store::StoreError;
    use chrono::{DateTime, Utc};
    use std::time::Duration;

    const KEY: &str = "confirmation-test-hmac-key-0123456789abcdef";

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T09:13:25Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    struct Fixture {
        table: Arc<dyn Table>,
        clock: Arc<ManualClock>,
        handler: C2bConfirmationHandler,
    }

    /// A shortcode that trusts its confirmations (so they settle at once), as the tests of what a
    /// verified confirmation does need; [`fixture_verifying`] is the default setting.
    async fn fixture() -> Fixture {
        fixture_with(VerificationMethod::TrustConfirmation).await
    }

    async fn fixture_verifying() -> Fixture {
        fixture_with(VerificationMethod::TransactionStatus).await
    }

    async fn fixture_with(method: VerificationMethod) -> Fixture {
        let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
        let clock = Arc::new(ManualClock::new(t0()));
        let json = serde_json::json!({
            "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379",
            "stk_passkey": "p", "callback_hmac_key": KEY,
        });
        let secrets = Arc::new(SecretCache::new(
            Arc::new(StaticSecret(json.to_string())),
            Duration::from_secs(3600),
        ));
        let config = ShortcodeConfig {
            shortcode: Shortcode::parse("600984").unwrap(),
            owner: ClientId::parse("merchant-a").unwrap(),
            api_version: C2bVersion::V2,
            response_type: ResponseType::Completed,
            default_decision: DefaultDecision::Accept,
            rules: C2bRules::default(),
            validation_url: String::new(),
            confirmation_url: String::new(),
            registration: DarajaRegistration {
                status: RegistrationStatus::Registered,
                response_code: None,
                response_description: None,
                originator_conversation_id: None,
                at: t0(),
            },
            verification: crate::domain::c2b_verification::VerificationSetting {
                method,
                set_by: Some(ClientId::parse("merchant-a").unwrap()),
                set_at: Some(t0()),
            },
            tokens: Default::default(),
            created_at: t0(),
            updated_at: t0(),
            version: 0,
        };
        table.write(vec![repo::put_config(&config)]).await.unwrap();
        let handler = C2bConfirmationHandler::new(table.clone(), secrets, clock.clone());
        Fixture { table, clock, handler }
    }

    fn envelope(token: &str, trans_id: &str, bill_ref: &str, amount: &str) -> CallbackEnvelope {
        let body = serde_json::json!({
            "TransactionType": "Pay Bill", "TransID": trans_id, "TransTime": "20261121121325",
            "TransAmount": amount, "BusinessShortCode": "600984", "BillRefNumber": bill_ref,
            "InvoiceNumber": "", "OrgAccountBalance": "49197.00", "ThirdPartyTransID": "",
            "MSISDN": "2547 ***** 126", "FirstName": "JANE", "MiddleName": "", "LastName": null
        });
        CallbackEnvelope {
            v: 1,
            kind: CallbackKind::C2bConfirmation,
            token: token.to_owned(),
            received_at: t0(),
            source_ip: Some("196.201.214.200".into()),
            request_id: "req".into(),
            body: body.to_string(),
            body_base64: false,
        }
    }

    fn token() -> String {
        CallbackTokens::new(Secret::new(KEY)).hex_token_for(TokenPurpose::C2bConfirmation, "600984")
    }

    async fn invoice(f: &Fixture, account: &str, amount: ExpectedAmount) -> ExpectedPaymentId {
        let e = ExpectedPayment::create(
            ExpectedPaymentId::generate(),
            ClientId::parse("merchant-a").unwrap(),
            Shortcode::parse("600984").unwrap(),
            AccountNumber::parse(account).unwrap(),
            amount,
            t0() + chrono::Duration::hours(1),
            Metadata::default(),
            t0(),
        );
        f.table
            .write(repo::insert_expected(&e, None, t0()).to_vec())
            .await
            .unwrap();
        e.id
    }

    async fn payment(f: &Fixture, trans_id: &str) -> C2bPayment {
        repo::get_payment_by_trans_id(f.table.as_ref(), trans_id)
            .await
            .unwrap()
            .expect("recorded")
    }

    fn kes(n: u64) -> Amount {
        Amount::new(n).unwrap()
    }

    #[tokio::test]
    async fn records_once_and_settles_the_expected_payment_once() {
        let f = fixture().await;
        let exp = invoice(&f, "INV-2231", ExpectedAmount::Exact { value: kes(500) }).await;
        let e = envelope(&token(), "TKL51ZDR4F", "inv-2231", "300.00");
        assert_eq!(f.handler.handle("m1", &e).await.unwrap(), Verdict::Applied);
        // The same message again, and another message with the same receipt.
        assert_eq!(f.handler.handle("m1", &e).await.unwrap(), Verdict::Duplicate);
        assert_eq!(f.handler.handle("m2", &e).await.unwrap(), Verdict::Duplicate);
        let p = payment(&f, "TKL51ZDR4F").await;
        assert_eq!(p.amount, Some(kes(300)));
        assert_eq!(p.kind, C2bKind::Payment);
        assert_eq!(p.msisdn.as_deref(), Some("2547 ***** 126"), "stored as given");
        assert_eq!(p.last_name, None);
        assert_eq!(p.owner.as_ref().map(ClientId::as_str), Some("merchant-a"));
        assert_eq!(p.trans_time_at, Some(t0()));
        assert!(matches!(
            p.matched,
            MatchOutcome::Matched {
                resulting_status: ExpectedStatus::PartiallyPaid,
                amount_paid_after: 300,
                ..
            }
        ));
        let e2 = repo::get_expected(f.table.as_ref(), &exp).await.unwrap().unwrap();
        assert_eq!((e2.amount_paid, e2.payment_count), (300, 1));
        // The claim mirrors it (what validation reads).
        let claim = repo::get_claim(f.table.as_ref(), &e2.shortcode, &e2.account_number)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claim.expected, e2);
        assert_eq!(
            repo::get_payment(f.table.as_ref(), &p.id)
                .await
                .unwrap()
                .unwrap()
                .trans_id,
            "TKL51ZDR4F"
        );
    }

    #[tokio::test]
    async fn unknown_expired_anomalous_and_forged() {
        let f = fixture().await;
        assert_eq!(
            f.handler
                .handle("a", &envelope(&token(), "TKA0000001", "NOPE-1", "10.00"))
                .await
                .unwrap(),
            Verdict::Applied
        );
        assert!(matches!(
            payment(&f, "TKA0000001").await.matched,
            MatchOutcome::Unmatched {
                reason: UnmatchedReason::UnknownAccount,
                ..
            }
        ));
        assert_eq!(
            f.handler
                .handle("b", &envelope(&token(), "TKA0000002", "", "10.00"))
                .await
                .unwrap(),
            Verdict::Applied
        );
        assert!(matches!(
            payment(&f, "TKA0000002").await.matched,
            MatchOutcome::Unmatched {
                reason: UnmatchedReason::NoAccountNumber,
                ..
            }
        ));
        // A fractional amount: recorded (money moved) but flagged, never applied to an invoice.
        invoice(&f, "INV-9", ExpectedAmount::Open).await;
        assert_eq!(
            f.handler
                .handle("c", &envelope(&token(), "TKA0000003", "INV-9", "10.50"))
                .await
                .unwrap(),
            Verdict::Anomaly
        );
        let odd = payment(&f, "TKA0000003").await;
        assert_eq!((odd.amount, odd.amount_text.as_deref()), (None, Some("10.50")));
        assert_eq!(odd.anomalies, ["fractional_amount"]);
        assert!(matches!(
            odd.matched,
            MatchOutcome::Unmatched {
                reason: UnmatchedReason::AmountAnomaly,
                ..
            }
        ));
        // Expired by the time the payment was received.
        let exp = invoice(&f, "INV-OLD", ExpectedAmount::Exact { value: kes(10) }).await;
        let mut late = envelope(&token(), "TKA0000004", "INV-OLD", "10.00");
        late.received_at = t0() + chrono::Duration::hours(2);
        f.clock.advance(chrono::Duration::hours(2));
        assert_eq!(f.handler.handle("d", &late).await.unwrap(), Verdict::Applied);
        assert_eq!(
            payment(&f, "TKA0000004").await.matched,
            MatchOutcome::Unmatched {
                reason: UnmatchedReason::Expired,
                expected_payment_id: Some(exp.clone())
            }
        );
        assert_eq!(
            repo::get_expected(f.table.as_ref(), &exp)
                .await
                .unwrap()
                .unwrap()
                .amount_paid,
            0
        );
        // Forged token, another shortcode's body, garbage: anomalies, nothing recorded.
        let forged =
            CallbackTokens::new(Secret::new("x".repeat(40))).hex_token_for(TokenPurpose::C2bConfirmation, "600984");
        assert_eq!(
            f.handler
                .handle("e", &envelope(&forged, "TKA0000005", "A", "1"))
                .await
                .unwrap(),
            Verdict::Anomaly
        );
        let mut foreign = envelope(&token(), "TKA0000006", "A", "1");
        foreign.body = foreign.body.replace("600984", "600985");
        assert_eq!(f.handler.handle("f", &foreign).await.unwrap(), Verdict::Anomaly);
        let mut garbage = envelope(&token(), "TKA0000007", "A", "1");
        garbage.body = "{\"TransID\": \"\"}".into();
        assert_eq!(f.handler.handle("g", &garbage).await.unwrap(), Verdict::Anomaly);
        let weird_receipt = envelope(&token(), "TK#1/../x", "A", "1");
        assert_eq!(f.handler.handle("h", &weird_receipt).await.unwrap(), Verdict::Anomaly);
        for receipt in ["TKA0000005", "TKA0000006", "TKA0000007"] {
            assert!(repo::get_payment_by_trans_id(f.table.as_ref(), receipt)
                .await
                .unwrap()
                .is_none());
        }
    }

    /// The registry links an STK payment and its C2B echo whichever is processed first.
    #[tokio::test]
    async fn stk_and_c2b_link_in_both_orders() {
        for stk_first in [true, false] {
            let f = fixture().await;
            let pay = PaymentId::generate();
            let receipt = if stk_first { "TKS0000001" } else { "TKS0000002" };
            // As the settler does: optimistic first, and on a conflict read and link.
            let stk = || async {
                for optimistic in [true, false] {
                    let writes = stk_completion_writes(f.table.as_ref(), &pay, receipt, t0(), optimistic)
                        .await
                        .unwrap();
                    if writes.is_empty() {
                        return;
                    }
                    match f.table.write(writes).await {
                        Ok(()) => return,
                        Err(StoreError::ConditionFailed { .. }) if optimistic => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            };
            if stk_first {
                stk().await;
            }
            f.handler
                .handle("m", &envelope(&token(), receipt, "ORDER1", "100.00"))
                .await
                .unwrap();
            if !stk_first {
                assert_eq!(
                    payment(&f, receipt).await.kind,
                    C2bKind::Payment,
                    "not yet known as an STK payment"
                );
                stk().await;
                stk().await; // a repeated completion changes nothing more
            }
            let p = payment(&f, receipt).await;
            assert_eq!(
                (p.kind, p.linked_payment_id.as_ref()),
                (C2bKind::StkDuplicate, Some(&pay)),
                "stk_first={stk_first}"
            );
            let link = receipts::get(f.table.as_ref(), receipt).await.unwrap().unwrap();
            assert_eq!(
                (link.stk_payment_id.as_ref(), link.c2b_payment_id.as_ref()),
                (Some(&pay), Some(&p.id))
            );
        }
    }

    /// By default a confirmation is recorded at once but moves no money: it waits for Transaction
    /// Status. A second, different body for the same receipt is kept, not dropped as a duplicate.
    #[tokio::test]
    async fn an_unverified_confirmation_is_recorded_and_settles_nothing() {
        let f = fixture_verifying().await;
        let exp = invoice(&f, "INV-7", ExpectedAmount::Exact { value: kes(500) }).await;
        let forged = envelope(&token(), "TKV0000001", "INV-7", "500.00");
        assert_eq!(f.handler.handle("m1", &forged).await.unwrap(), Verdict::Applied);
        let p = payment(&f, "TKV0000001").await;
        assert_eq!(p.verification.status, VerificationStatus::Unverified);
        assert!(matches!(
            p.matched,
            MatchOutcome::Unmatched {
                reason: UnmatchedReason::Unverified,
                ..
            }
        ));
        let e = repo::get_expected(f.table.as_ref(), &exp).await.unwrap().unwrap();
        assert_eq!(e.amount_paid, 0, "an unverified confirmation never pays an invoice");
        let due = repo::due_for_verification(f.table.as_ref(), t0(), 10).await.unwrap();
        assert_eq!(
            due.iter().map(|d| d.trans_id.as_str()).collect::<Vec<_>>(),
            ["TKV0000001"]
        );
        // The real confirmation for that receipt arrives after the forged one: kept beside it.
        let real = envelope(&token(), "TKV0000001", "INV-8", "120.00");
        assert_eq!(f.handler.handle("m2", &real).await.unwrap(), Verdict::Applied);
        let p = payment(&f, "TKV0000001").await;
        assert_eq!(p.alternatives.len(), 1);
        assert_eq!(p.alternatives[0].amount, Some(kes(120)));
        // The same bodies again are duplicates.
        assert_eq!(f.handler.handle("m3", &real).await.unwrap(), Verdict::Duplicate);
        assert_eq!(f.handler.handle("m4", &forged).await.unwrap(), Verdict::Duplicate);
    }

    /// A retired token generation is refused even though its MAC is genuine.
    #[tokio::test]
    async fn a_retired_token_generation_is_refused() {
        let f = fixture_verifying().await;
        let mut config = repo::get_config(f.table.as_ref(), &Shortcode::parse("600984").unwrap())
            .await
            .unwrap()
            .unwrap();
        config.tokens = config.tokens.rotated(t0()).unwrap().new_urls_registered(t0());
        f.table.write(vec![repo::put_config(&config)]).await.unwrap();
        let tokens = CallbackTokens::new(Secret::new(KEY));
        let new = tokens.hex_token_for(TokenPurpose::C2bConfirmation, "600984-1");
        let old = token();
        assert_eq!(
            f.handler
                .handle("a", &envelope(&old, "TKR0000001", "A", "1"))
                .await
                .unwrap(),
            Verdict::Applied,
            "the previous generation works during the grace period"
        );
        let mut late = envelope(&old, "TKR0000002", "A", "1");
        late.received_at = t0() + crate::domain::c2b_path_tokens::ROTATION_GRACE;
        assert_eq!(f.handler.handle("b", &late).await.unwrap(), Verdict::Anomaly);
        let mut current = envelope(&new, "TKR0000003", "A", "1");
        current.received_at = late.received_at;
        assert_eq!(f.handler.handle("c", &current).await.unwrap(), Verdict::Applied);
        let unknown = tokens.hex_token_for(TokenPurpose::C2bConfirmation, "600984-7");
        assert_eq!(
            f.handler
                .handle("d", &envelope(&unknown, "TKR0000004", "A", "1"))
                .await
                .unwrap(),
            Verdict::Anomaly
        );
    }
}
