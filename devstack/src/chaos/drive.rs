//! Drives the mix: invoices first, then every operation started on an open-loop schedule at the
//! plan's rate (a slow or dead stack does not slow the schedule down), each with its copies
//! (replays, concurrent duplicates, a reused key with another body) and, for payouts awaiting
//! approval, the approver's decision.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};

use super::client::{Answer, Api};
use super::mix::{Copies, ForgedOp, InvoiceOp, Mix, Op, PaymentOp, PayoutOp, Review, C2B_SHORTCODE};
use super::record::{C2bSent, Ledger, PayoutSent, Sent};

/// The Daraja side the customers use (C2B simulate) and the confirmation URL a forger learnt.
#[derive(Clone)]
pub struct Customers {
    pub http: reqwest::Client,
    pub simulator_url: String,
    /// A Daraja token taken before any fault was switched on.
    pub daraja_token: String,
    pub confirmation_url: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends one creation with its copies.
async fn create_with_copies(
    api: &Api,
    route: &'static str,
    path: &str,
    key: &str,
    body: &Value,
    copies: Copies,
    other: impl FnOnce() -> Value,
) -> Sent {
    let mut sent = Sent::default();
    match copies {
        Copies::Once => sent.copies.push(api.create(route, path, key, body).await),
        Copies::Replay => {
            sent.copies.push(api.create(route, path, key, body).await);
            sent.copies.push(api.create(route, path, key, body).await);
        }
        Copies::Concurrent(n) => {
            let all = join_all((0..n).map(|_| api.create(route, path, key, body))).await;
            sent.copies.extend(all);
        }
        Copies::ReusedKey => {
            sent.copies.push(api.create(route, path, key, body).await);
            sent.reused_key = api.create(route, path, key, &other()).await;
        }
    }
    sent
}

fn with_amount(body: &Value, amount: u64) -> Value {
    let mut other = body.clone();
    other["amount"] = json!(amount);
    other
}

async fn payment(api: &Api, op: &PaymentOp) -> Sent {
    let body = json!({
        "amount": op.amount,
        "phone": op.phone,
        "reference": op.id,
        "metadata": {"chaos_id": op.id, "scenario": op.scenario},
    });
    create_with_copies(
        api,
        "POST /v1/payments",
        "/v1/payments",
        &op.key,
        &body,
        op.copies,
        || with_amount(&body, op.amount + 1),
    )
    .await
}

async fn payout(api: &Api, op: &PayoutOp) -> PayoutSent {
    let body = json!({
        "amount": op.amount,
        "phone": op.phone,
        "kind": "business_payment",
        "remarks": format!("Chaos payout {}", op.id),
        "metadata": {"chaos_id": op.id, "scenario": op.scenario},
    });
    let sent = create_with_copies(
        api,
        "POST /v1/payouts",
        "/v1/payouts",
        &op.key,
        &body,
        op.copies,
        || with_amount(&body, op.amount + 1),
    )
    .await;
    let mut reviews = Vec::new();
    if let Some(created) = sent.created().filter(|b| b["status"] == "awaiting_approval") {
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        match op.review {
            Review::Reject => {
                reviews.push(
                    api.review("POST /v1/payouts/{id}/reject", &format!("/v1/payouts/{id}/reject"))
                        .await,
                );
            }
            Review::Approve { twice } => {
                let path = format!("/v1/payouts/{id}/approve");
                let n = if twice { 2 } else { 1 };
                reviews.extend(join_all((0..n).map(|_| api.review("POST /v1/payouts/{id}/approve", &path))).await);
            }
        }
    }
    PayoutSent { sent, reviews }
}

pub async fn invoice(api: &Api, op: &InvoiceOp) -> Sent {
    let body = json!({
        "shortcode": C2B_SHORTCODE,
        "account_number": op.account,
        "amount": {"rule": "exact", "value": op.amount},
        "metadata": {"chaos_id": op.id},
    });
    create_with_copies(
        api,
        "POST /v1/c2b/expected-payments",
        "/v1/c2b/expected-payments",
        &op.key,
        &body,
        op.copies,
        || {
            let mut other = body.clone();
            other["amount"]["value"] = json!(op.amount + 1);
            other
        },
    )
    .await
}

/// A customer paying the paybill from their phone (Daraja's C2B simulate).
async fn c2b(customers: &Customers, op: &super::mix::C2bOp) -> C2bSent {
    let body = json!({"ShortCode": C2B_SHORTCODE, "CommandID": "CustomerPayBillOnline", "Amount": op.amount.to_string(),
                      "Msisdn": op.phone, "BillRefNumber": op.account});
    let answer = customers
        .http
        .post(format!("{}/mpesa/c2b/v1/simulate", customers.simulator_url))
        .bearer_auth(&customers.daraja_token)
        .json(&body)
        .send()
        .await;
    match answer {
        Ok(response) if response.status().is_success() => {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            C2bSent {
                ocid: body["OriginatorCoversationID"].as_str().map(str::to_owned),
                refused: None,
            }
        }
        Ok(response) => C2bSent {
            ocid: None,
            refused: Some(format!("HTTP {}", response.status())),
        },
        Err(e) => C2bSent {
            ocid: None,
            refused: Some(e.to_string()),
        },
    }
}

/// A confirmation nobody at Safaricom sent: a real-looking body with a TransID Daraja never
/// issued, posted to the confirmation URL from Safaricom's announced address.
async fn forged(api: &Api, customers: &Customers, op: &ForgedOp) -> Answer {
    let now = chrono::Utc::now() + chrono::Duration::hours(3);
    let body = json!({"TransactionType": "Pay Bill", "TransID": op.trans_id, "TransTime": now.format("%Y%m%d%H%M%S").to_string(),
        "TransAmount": format!("{}.00", op.amount), "BusinessShortCode": C2B_SHORTCODE, "BillRefNumber": op.account,
        "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "", "MSISDN": "2547 ***** 678",
        "FirstName": "JANE", "MiddleName": "", "LastName": "DOE"});
    let url = customers.confirmation_url.clone();
    api.send("POST /c2b/confirmation/{token}", move |http, _| {
        http.post(url.as_str())
            .header("x-forwarded-for", "196.201.214.200")
            .json(&body)
    })
    .await
}

/// Creates every invoice (at twice the plan's rate), so the C2B payments find them.
pub async fn invoices(api: &Api, mix: &Mix, rate: f64, ledger: &Arc<Mutex<Ledger>>) {
    let interval = Duration::from_secs_f64(1.0 / (2.0 * rate).max(0.1));
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = mix
        .invoices
        .iter()
        .enumerate()
        .map(|(n, op)| {
            let api = api.clone();
            let op = op.clone();
            let ledger = ledger.clone();
            async move {
                tokio::time::sleep_until(start + interval * n as u32).await;
                let sent = invoice(&api, &op).await;
                lock(&ledger).invoices.insert(op.id.clone(), sent);
            }
        })
        .collect();
    join_all(tasks).await;
}

/// Starts every operation on schedule; returns once all have finished.
pub async fn mix(api: &Api, customers: &Customers, mix: &Mix, rate: f64, ledger: &Arc<Mutex<Ledger>>) {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(mix.ops.len());
    for (n, op) in mix.ops.iter().enumerate() {
        tokio::time::sleep_until(start + interval * n as u32).await;
        let api = api.clone();
        let customers = customers.clone();
        let op = op.clone();
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            match &op {
                Op::Payment(p) => {
                    let sent = payment(&api, p).await;
                    lock(&ledger).payments.insert(p.id.clone(), sent);
                }
                Op::Payout(p) => {
                    let sent = payout(&api, p).await;
                    lock(&ledger).payouts.insert(p.id.clone(), sent);
                }
                Op::C2b(c) => {
                    let sent = c2b(&customers, c).await;
                    lock(&ledger).c2b.insert(c.id.clone(), sent);
                }
                Op::Forged(f) => {
                    let answer = forged(&api, &customers, f).await;
                    lock(&ledger).forged.insert(f.id.clone(), answer);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}
