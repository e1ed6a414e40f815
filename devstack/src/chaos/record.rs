//! What the run did and was told (the ledger), and what the product shows at the end (the
//! observation: every payment, payout and C2B payment listed through the API, every invoice read).

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::client::{Answer, Api};
use super::mix::Mix;

/// The answers to one creation: one list per copy sent with its key (the last answer of each
/// list decides), and the answers to the same key with another body.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    pub copies: Vec<Vec<Answer>>,
    pub reused_key: Vec<Answer>,
}

impl Sent {
    pub fn answers(&self) -> impl Iterator<Item = &Answer> {
        self.copies.iter().flatten()
    }

    /// Distinct resource ids the answers to this key named (successes and problems alike).
    pub fn ids(&self) -> BTreeSet<String> {
        self.answers().filter_map(Answer::resource_id).collect()
    }

    /// Whether some copy ended with a 2xx.
    pub fn succeeded(&self) -> bool {
        self.copies.iter().any(|c| c.last().is_some_and(Answer::is_success))
    }

    /// The first successful answer's body.
    pub fn created(&self) -> Option<&Value> {
        self.copies
            .iter()
            .filter_map(|c| c.last())
            .find(|a| a.is_success())
            .map(|a| &a.body)
    }

    /// Fresh (not replayed) 5xx answers, as `status code`.
    pub fn server_errors(&self) -> Vec<String> {
        self.answers()
            .chain(self.reused_key.iter())
            .filter(|a| a.is_5xx() && !a.replayed)
            .map(|a| format!("{} {}", a.status.unwrap_or(0), a.code().unwrap_or("-")))
            .collect()
    }

    /// The last answer of each copy, `status code`, for reports.
    pub fn outcome(&self) -> String {
        let finals: Vec<String> = self
            .copies
            .iter()
            .filter_map(|c| c.last())
            .map(|a| match a.status {
                Some(s) => format!("{s} {}", a.code().unwrap_or("")).trim().to_owned(),
                None => "no answer".to_owned(),
            })
            .collect();
        finals.join(", ")
    }
}

#[derive(Debug, Clone, Default)]
pub struct PayoutSent {
    pub sent: Sent,
    /// Approve / reject answers, when the payout awaited approval.
    pub reviews: Vec<Answer>,
}

#[derive(Debug, Clone, Default)]
pub struct C2bSent {
    /// The simulator's OriginatorCoversationID of the customer's payment.
    pub ocid: Option<String>,
    pub refused: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub payments: HashMap<String, Sent>,
    pub payouts: HashMap<String, PayoutSent>,
    pub invoices: HashMap<String, Sent>,
    pub c2b: HashMap<String, C2bSent>,
    /// Our answer to each forged confirmation.
    pub forged: HashMap<String, Answer>,
}

/// Everything the API shows at the end.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub payments: Vec<Value>,
    pub payouts: Vec<Value>,
    pub c2b_payments: Vec<Value>,
    /// Invoices by our id (read one by one: there is no listing).
    pub invoices: HashMap<String, Value>,
    /// Listings that failed (route and answer), so the report says what it could not see.
    pub errors: Vec<String>,
}

/// Our name of a resource: `metadata.chaos_id`.
pub fn chaos_id(v: &Value) -> Option<&str> {
    v["metadata"]["chaos_id"].as_str()
}

impl Observed {
    pub async fn collect(api: &Api, mix: &Mix, ledger: &Ledger) -> Observed {
        let mut observed = Observed::default();
        let mut list = |route: &'static str, result: Result<Vec<Value>, Answer>| match result {
            Ok(items) => items,
            Err(answer) => {
                observed
                    .errors
                    .push(format!("{route}: {:?} {}", answer.status, answer.body));
                Vec::new()
            }
        };
        let payments = list(
            "GET /v1/payments",
            api.list_all("GET /v1/payments", "/v1/payments").await,
        );
        let payouts = list("GET /v1/payouts", api.list_all("GET /v1/payouts", "/v1/payouts").await);
        let c2b = list(
            "GET /v1/c2b/payments",
            api.list_all("GET /v1/c2b/payments", "/v1/c2b/payments").await,
        );
        observed.payments = payments;
        observed.payouts = payouts;
        observed.c2b_payments = c2b;
        for invoice in &mix.invoices {
            let Some(id) = ledger
                .invoices
                .get(&invoice.id)
                .and_then(|s| s.created())
                .and_then(|b| b["id"].as_str())
            else {
                continue;
            };
            let answer = api
                .get(
                    "GET /v1/c2b/expected-payments/{id}",
                    &format!("/v1/c2b/expected-payments/{id}"),
                )
                .await;
            if answer.status == Some(200) {
                observed.invoices.insert(invoice.id.clone(), answer.body);
            } else {
                observed
                    .errors
                    .push(format!("invoice {id}: {:?} {}", answer.status, answer.body));
            }
        }
        observed
    }

    /// Payments by reference (our id).
    pub fn payments_by_reference(&self) -> HashMap<&str, Vec<&Value>> {
        let mut map: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in &self.payments {
            if let Some(reference) = p["reference"].as_str() {
                map.entry(reference).or_default().push(p);
            }
        }
        map
    }

    /// Payouts by our id (metadata).
    pub fn payouts_by_chaos_id(&self) -> HashMap<&str, Vec<&Value>> {
        let mut map: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in &self.payouts {
            if let Some(id) = chaos_id(p) {
                map.entry(id).or_default().push(p);
            }
        }
        map
    }

    /// C2B payments by receipt.
    pub fn c2b_by_trans_id(&self) -> HashMap<&str, Vec<&Value>> {
        let mut map: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in &self.c2b_payments {
            if let Some(trans_id) = p["trans_id"].as_str() {
                map.entry(trans_id).or_default().push(p);
            }
        }
        map
    }

    /// Whether C2B payments carry a `verification` state (the API after issue 10 does).
    pub fn c2b_has_verification(&self) -> bool {
        self.c2b_payments.iter().any(|p| p.get("verification").is_some())
    }
}

/// A C2B payment's verification status as the API shows it: `verification.status`
/// (`unverified`, `verified`, `rejected`); `None` when the API has no verification.
pub fn verification_status(rec: &serde_json::Value) -> Option<&str> {
    match rec.get("verification")? {
        serde_json::Value::String(status) => Some(status),
        other => other.get("status")?.as_str(),
    }
}
