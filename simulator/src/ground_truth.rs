//! Ground truth: every transaction the simulator handled, what it decided, whether money moved,
//! and every callback attempt. Tests compare this with what the product recorded.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use crate::faults::FaultTarget;
use crate::scenarios::Plan;
use crate::sync::lock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    Stk,
    C2b,
    C2bRegister,
    B2c,
    TransactionStatus,
    AccountBalance,
    Reversal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// Accepted, outcome not settled yet.
    Pending,
    /// Settled with result code 0 (or the request needed no outcome).
    Completed,
    /// Settled with a failure code.
    Failed,
    /// STK 1032, or C2B cancelled after an unanswered validation with ResponseType Cancelled.
    Cancelled,
    /// STK 1037 (no answer from the customer).
    Timeout,
    /// Refused synchronously (validation error, lock, duplicate, injected fault).
    Rejected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    Scheduled,
    /// The receiver answered 2xx.
    Delivered,
    /// Non-2xx answer, connection error or timeout.
    Failed,
    /// Never sent (drop fault or forced drop).
    Dropped,
}

/// One POST (or decision not to POST) to a callback / result / validation URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallbackAttempt {
    pub kind: FaultTarget,
    pub url: String,
    pub body: Value,
    pub state: AttemptState,
    pub scheduled_at: String,
    pub sent_at: Option<String>,
    pub finished_at: Option<String>,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub response_body: Option<String>,
    /// The second delivery of a `duplicate` fault.
    pub duplicate: bool,
    /// Faults applied to this delivery (`duplicate`, `delay`, `reorder`, `drop`).
    pub faults: Vec<String>,
    /// The simulated source header sent, `Name: value`.
    pub source_header: Option<String>,
}

/// One row of `GET /__control/transactions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransactionRecord {
    pub seq: u64,
    pub kind: TxKind,
    pub status: TxStatus,
    pub endpoint: String,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// The synchronous answer.
    pub http_status: u16,
    pub response: Value,
    pub error_code: Option<String>,
    pub shortcode: Option<String>,
    pub msisdn: Option<String>,
    pub amount: Option<u64>,
    pub merchant_request_id: Option<String>,
    pub checkout_request_id: Option<String>,
    pub conversation_id: Option<String>,
    pub originator_conversation_id: Option<String>,
    /// M-Pesa receipt (STK MpesaReceiptNumber, C2B TransID, B2C TransactionReceipt), once money moved.
    pub receipt: Option<String>,
    /// AccountReference / BillRefNumber.
    pub reference: Option<String>,
    /// Transaction Status / Reversal: the id asked about.
    pub target_id: Option<String>,
    /// What the simulator decided (result code, delivery, whether money moves, why).
    pub decision: Option<Plan>,
    /// Final result code once settled.
    pub result_code: Option<String>,
    /// Money moved (for B2C: the disbursement happened; at most once per OriginatorConversationID).
    pub money_moved: bool,
    pub reversed: bool,
    /// Injected endpoint faults that touched this request.
    pub faults: Vec<String>,
    pub callbacks: Vec<CallbackAttempt>,
    /// The request body as received (JSON when it parsed, else the raw text).
    pub request: Value,
}

impl TransactionRecord {
    pub fn new(kind: TxKind, endpoint: &str, created_at: String, request: Value) -> Self {
        TransactionRecord {
            seq: 0,
            kind,
            status: TxStatus::Pending,
            endpoint: endpoint.to_string(),
            created_at,
            completed_at: None,
            http_status: 200,
            response: Value::Null,
            error_code: None,
            shortcode: None,
            msisdn: None,
            amount: None,
            merchant_request_id: None,
            checkout_request_id: None,
            conversation_id: None,
            originator_conversation_id: None,
            receipt: None,
            reference: None,
            target_id: None,
            decision: None,
            result_code: None,
            money_moved: false,
            reversed: false,
            faults: Vec::new(),
            callbacks: Vec::new(),
            request,
        }
    }
}

/// Query filter of `GET /__control/transactions`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TxFilter {
    pub kind: Option<TxKind>,
    pub status: Option<TxStatus>,
    pub checkout_request_id: Option<String>,
    pub merchant_request_id: Option<String>,
    pub originator_conversation_id: Option<String>,
    pub conversation_id: Option<String>,
    pub receipt: Option<String>,
    pub msisdn: Option<String>,
}

impl TxFilter {
    fn accepts(&self, r: &TransactionRecord) -> bool {
        fn eq(want: &Option<String>, have: &Option<String>) -> bool {
            want.as_ref().is_none_or(|w| have.as_deref() == Some(w.as_str()))
        }
        self.kind.is_none_or(|k| k == r.kind)
            && self.status.is_none_or(|s| s == r.status)
            && eq(&self.checkout_request_id, &r.checkout_request_id)
            && eq(&self.merchant_request_id, &r.merchant_request_id)
            && eq(&self.originator_conversation_id, &r.originator_conversation_id)
            && eq(&self.conversation_id, &r.conversation_id)
            && eq(&self.receipt, &r.receipt)
            && eq(&self.msisdn, &r.msisdn)
    }
}

/// A handle on a stored transaction; stale after a reset (its epoch no longer matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxRef {
    epoch: u64,
    idx: usize,
}

impl TxRef {
    /// The transaction's `seq` in ground truth.
    pub fn seq(&self) -> u64 {
        self.idx as u64 + 1
    }
}

/// A stored transaction with the simulator's private bookkeeping.
pub struct Entry {
    pub rec: TransactionRecord,
    /// Bumped when the outcome is rescheduled; a settle task only acts on its own generation.
    pub generation: u64,
    pub created: Instant,
    /// Receipt allocated at request time (so ids follow request order), published on success.
    pub pending_receipt: Option<String>,
}

#[derive(Default)]
struct Inner {
    epoch: u64,
    txs: Vec<Entry>,
    by_id: HashMap<String, usize>,
    open_prompts: HashMap<String, usize>,
    b2c_ocids: HashSet<String>,
}

/// Why an insert was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Conflict {
    SubscriberLocked,
    DuplicateOriginatorConversationId,
}

#[derive(Default)]
pub struct Store {
    inner: Mutex<Inner>,
}

impl Inner {
    fn push(&mut self, mut rec: TransactionRecord, pending_receipt: Option<String>) -> TxRef {
        let idx = self.txs.len();
        rec.seq = idx as u64 + 1;
        for id in [
            &rec.merchant_request_id,
            &rec.checkout_request_id,
            &rec.conversation_id,
            &rec.originator_conversation_id,
            &rec.receipt,
        ]
        .into_iter()
        .flatten()
        {
            self.by_id.entry(id.clone()).or_insert(idx);
        }
        self.txs.push(Entry {
            rec,
            generation: 0,
            created: Instant::now(),
            pending_receipt,
        });
        TxRef { epoch: self.epoch, idx }
    }
}

impl Store {
    pub fn insert(&self, rec: TransactionRecord, pending_receipt: Option<String>) -> TxRef {
        lock(&self.inner).push(rec, pending_receipt)
    }

    /// Inserts an STK push unless the phone already has an open prompt (then nothing is stored).
    pub fn insert_stk(
        &self,
        rec: TransactionRecord,
        phone: &str,
        lock_subscriber: bool,
        pending_receipt: Option<String>,
    ) -> Result<TxRef, Conflict> {
        let mut g = lock(&self.inner);
        if lock_subscriber && g.open_prompts.contains_key(phone) {
            return Err(Conflict::SubscriberLocked);
        }
        let r = g.push(rec, pending_receipt);
        g.open_prompts.insert(phone.to_string(), r.idx);
        Ok(r)
    }

    /// Releases the phone's prompt lock if `tx` holds it.
    pub fn close_prompt(&self, tx: TxRef, phone: &str) {
        let mut g = lock(&self.inner);
        if g.epoch == tx.epoch && g.open_prompts.get(phone) == Some(&tx.idx) {
            g.open_prompts.remove(phone);
        }
    }

    /// Inserts an accepted B2C request unless its OriginatorConversationID was seen before.
    pub fn insert_b2c(
        &self,
        rec: TransactionRecord,
        ocid: &str,
        pending_receipt: Option<String>,
    ) -> Result<TxRef, Conflict> {
        let mut g = lock(&self.inner);
        if !g.b2c_ocids.insert(ocid.to_string()) {
            return Err(Conflict::DuplicateOriginatorConversationId);
        }
        Ok(g.push(rec, pending_receipt))
    }

    pub fn has_b2c_ocid(&self, ocid: &str) -> bool {
        lock(&self.inner).b2c_ocids.contains(ocid)
    }

    /// Runs `f` on the entry unless the reference went stale.
    pub fn with<R>(&self, tx: TxRef, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let mut g = lock(&self.inner);
        if g.epoch != tx.epoch {
            return None;
        }
        g.txs.get_mut(tx.idx).map(f)
    }

    /// Publishes a receipt on the record and makes it findable.
    pub fn set_receipt(&self, tx: TxRef, receipt: &str) {
        let mut g = lock(&self.inner);
        if g.epoch != tx.epoch {
            return;
        }
        if let Some(e) = g.txs.get_mut(tx.idx) {
            e.rec.receipt = Some(receipt.to_string());
            g.by_id.insert(receipt.to_string(), tx.idx);
        }
    }

    /// Finds a transaction by any of its ids (receipt, CheckoutRequestID, ConversationID, ...).
    pub fn find(&self, id: &str) -> Option<TxRef> {
        let g = lock(&self.inner);
        g.by_id.get(id).map(|&idx| TxRef { epoch: g.epoch, idx })
    }

    pub fn get(&self, tx: TxRef) -> Option<TransactionRecord> {
        self.with(tx, |e| e.rec.clone())
    }

    pub fn list(&self, filter: &TxFilter) -> Vec<TransactionRecord> {
        lock(&self.inner)
            .txs
            .iter()
            .filter(|e| filter.accepts(&e.rec))
            .map(|e| e.rec.clone())
            .collect()
    }

    pub fn add_attempt(&self, tx: TxRef, attempt: CallbackAttempt) -> Option<usize> {
        self.with(tx, |e| {
            e.rec.callbacks.push(attempt);
            e.rec.callbacks.len() - 1
        })
    }

    pub fn update_attempt(&self, tx: TxRef, i: usize, f: impl FnOnce(&mut CallbackAttempt)) {
        self.with(tx, |e| e.rec.callbacks.get_mut(i).map(f));
    }

    pub fn is_current(&self, tx: TxRef) -> bool {
        lock(&self.inner).epoch == tx.epoch
    }

    /// Forgets everything; outstanding references and tasks become no-ops.
    pub fn reset(&self) {
        let mut g = lock(&self.inner);
        let epoch = g.epoch + 1;
        *g = Inner {
            epoch,
            ..Inner::default()
        };
    }
}
