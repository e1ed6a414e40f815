//! The outbox invariant, checked from outside: given a resource's public view (as its `GET`
//! shows it) and its events (as `GET /v1/events?resource_id=` shows them), what is wrong.
//!
//! - exactly one event per state change, in order: a payment's or payout's events are its
//!   history's statuses, one each (`*.created` for the first), plus `*.receipt_received` for a
//!   receipt that came without a change of status;
//! - no event without its change: each event's `data` is the resource at that change (its
//!   status), and the last one's status is the resource's;
//! - `sequence` strictly increases; no two events share an id;
//! - a C2B payment: one `c2b.payment.received` first; `verified` / `rejected` / `linked` at most
//!   once each, and `verified`/`rejected` exactly when the payment became so after it was
//!   received.
//!
//! Used by the end-to-end suites, the AWS (moto) suite and the chaos suite's checks.

use serde_json::Value;

use super::ResourceKind;

fn status(value: &Value) -> &str {
    value["status"].as_str().unwrap_or("")
}

/// The event type a resource's move to `status` emits (`first`: its creation).
fn expected_type(resource: ResourceKind, status: &str, previous: Option<&str>) -> String {
    match (resource, status, previous) {
        (ResourceKind::Payment, _, None) | (ResourceKind::Payout, _, None) => {
            format!("{}.created", prefix(resource))
        }
        (ResourceKind::Payment, "timeout", _) => "payment.timed_out".into(),
        (ResourceKind::Payout, "pending", Some("awaiting_approval")) => "payout.approved".into(),
        (_, status, _) => format!("{}.{status}", prefix(resource)),
    }
}

fn prefix(resource: ResourceKind) -> &'static str {
    match resource {
        ResourceKind::Payment => "payment",
        ResourceKind::Payout => "payout",
        ResourceKind::C2bPayment => "c2b.payment",
        ResourceKind::WebhookEndpoint => "webhook_endpoint",
        ResourceKind::CheckoutSession => "checkout.session",
    }
}

/// What is wrong with `events` (any order) as the outbox of `view`; empty when nothing is.
pub fn problems(resource: ResourceKind, view: &Value, events: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let mut events: Vec<&Value> = events.iter().collect();
    events.sort_by_key(|e| e["sequence"].as_u64().unwrap_or(0));
    let id = view["id"].as_str().unwrap_or("?");
    let sequences: Vec<u64> = events.iter().map(|e| e["sequence"].as_u64().unwrap_or(0)).collect();
    if sequences.windows(2).any(|w| w[0] >= w[1]) {
        out.push(format!("{id}: sequences not strictly increasing: {sequences:?}"));
    }
    for event in &events {
        if event["resource_id"].as_str() != Some(id) {
            out.push(format!("{id}: event {} names {}", event["id"], event["resource_id"]));
        }
    }
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or("")).collect();
    match resource {
        ResourceKind::Payment | ResourceKind::Payout => {
            let receipt = format!("{}.receipt_received", prefix(resource));
            let changes: Vec<&&Value> = events.iter().filter(|e| e["type"].as_str() != Some(&receipt)).collect();
            let mut history: Vec<&str> = view["history"]
                .as_array()
                .map(|h| h.iter().map(status).collect())
                .unwrap_or_default();
            history.dedup();
            let expected: Vec<String> = history
                .iter()
                .enumerate()
                .map(|(i, s)| expected_type(resource, s, i.checked_sub(1).map(|p| history[p])))
                .collect();
            let got: Vec<&str> = changes.iter().map(|e| e["type"].as_str().unwrap_or("")).collect();
            if got != expected.iter().map(String::as_str).collect::<Vec<_>>() {
                out.push(format!("{id}: events {got:?}, history says {expected:?}"));
            } else {
                for (event, at) in changes.iter().zip(&history) {
                    if status(&event["data"]) != *at {
                        out.push(format!(
                            "{id}: event {} shows {} for the change to {at}",
                            event["id"],
                            status(&event["data"])
                        ));
                    }
                }
            }
            match events.last() {
                Some(last) if status(&last["data"]) != status(view) => out.push(format!(
                    "{id}: last event shows {}, the resource is {}",
                    status(&last["data"]),
                    status(view)
                )),
                None => out.push(format!("{id}: no events")),
                _ => {}
            }
            let receipts = types.iter().filter(|t| **t == receipt).count();
            if receipts > 1 {
                out.push(format!("{id}: {receipts} receipt events"));
            }
        }
        ResourceKind::C2bPayment => {
            if types.first() != Some(&"c2b.payment.received") {
                out.push(format!("{id}: first event {types:?}, not c2b.payment.received"));
            }
            for t in [
                "c2b.payment.received",
                "c2b.payment.verified",
                "c2b.payment.rejected",
                "c2b.payment.linked",
            ] {
                let n = types.iter().filter(|x| **x == t).count();
                if n > 1 {
                    out.push(format!("{id}: {n} {t} events"));
                }
            }
            let verification = |v: &Value| v["verification"]["status"].as_str().unwrap_or("").to_owned();
            let received_as = events.first().map(|e| verification(&e["data"])).unwrap_or_default();
            let now = verification(view);
            for (state, t) in [
                ("verified", "c2b.payment.verified"),
                ("rejected", "c2b.payment.rejected"),
            ] {
                let expected = now == state && received_as != state;
                let has = types.contains(&t);
                // Linked and verified in one change emit `linked` (one change, one event).
                let linked_instead = state == "verified" && types.contains(&"c2b.payment.linked");
                if expected && !has && !linked_instead {
                    out.push(format!("{id}: became {state} without {t}"));
                }
                if has && now != state {
                    out.push(format!("{id}: {t} but the payment is {now}"));
                }
            }
        }
        // Created once; one `attempt_started` per attempt; `completed` once and only for a
        // completed session; `expired` at most once (a late success may follow it).
        ResourceKind::CheckoutSession => {
            let count = |t: &str| types.iter().filter(|x| **x == t).count();
            if types.first() != Some(&"checkout.session.created") || count("checkout.session.created") != 1 {
                out.push(format!(
                    "{id}: does not start with one checkout.session.created: {types:?}"
                ));
            }
            let attempts = view["attempts"].as_array().map(Vec::len).unwrap_or(0);
            if count("checkout.session.attempt_started") != attempts {
                out.push(format!("{id}: {attempts} attempts but events {types:?}"));
            }
            let completed = status(view) == "completed";
            if count("checkout.session.completed") != usize::from(completed) {
                out.push(format!("{id}: status {} but events {types:?}", status(view)));
            }
            if count("checkout.session.expired") > 1
                || (status(view) == "expired" && count("checkout.session.expired") != 1)
            {
                out.push(format!("{id}: status {} but events {types:?}", status(view)));
            }
        }
        // Only its automatic disabling is an event; a disabled endpoint says so.
        ResourceKind::WebhookEndpoint => {
            if types.contains(&"webhook_endpoint.disabled") && view["auto_disabled_at"].is_null() {
                out.push(format!(
                    "{id}: webhook_endpoint.disabled but never disabled automatically"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(seq: u64, t: &str, status: &str) -> Value {
        json!({"id": format!("evt_pay_1_{seq:08}"), "resource_id": "pay_1", "sequence": seq, "type": t, "data": {"status": status}})
    }

    fn payment(history: &[&str]) -> Value {
        json!({"id": "pay_1", "status": history.last().unwrap(),
               "history": history.iter().map(|s| json!({"status": s})).collect::<Vec<_>>()})
    }

    #[test]
    fn one_event_per_change_in_order_holds() {
        let view = payment(&["pending", "sent", "completed"]);
        let events = [
            event(1, "payment.created", "pending"),
            event(3, "payment.completed", "completed"),
            event(2, "payment.sent", "sent"),
        ];
        assert_eq!(problems(ResourceKind::Payment, &view, &events), Vec::<String>::new());
    }

    #[test]
    fn a_missing_a_doubled_or_a_stale_event_is_found() {
        let view = payment(&["pending", "sent", "completed"]);
        let missing = [
            event(1, "payment.created", "pending"),
            event(3, "payment.completed", "completed"),
        ];
        assert_eq!(problems(ResourceKind::Payment, &view, &missing).len(), 1);
        let doubled = [
            event(1, "payment.created", "pending"),
            event(2, "payment.sent", "sent"),
            event(3, "payment.completed", "completed"),
            event(4, "payment.completed", "completed"),
        ];
        assert!(!problems(ResourceKind::Payment, &view, &doubled).is_empty());
        let stale = [
            event(1, "payment.created", "pending"),
            event(2, "payment.sent", "pending"),
            event(3, "payment.completed", "completed"),
        ];
        assert!(!problems(ResourceKind::Payment, &view, &stale).is_empty());
        let without_change = payment(&["pending", "sent"]);
        let ahead = [
            event(1, "payment.created", "pending"),
            event(2, "payment.sent", "sent"),
            event(3, "payment.completed", "completed"),
        ];
        assert!(!problems(ResourceKind::Payment, &without_change, &ahead).is_empty());
    }

    #[test]
    fn an_approved_payout_has_created_then_approved() {
        let view = json!({"id": "po_1", "status": "pending",
            "history": [{"status": "awaiting_approval"}, {"status": "pending"}]});
        let events = [
            json!({"id": "a", "resource_id": "po_1", "sequence": 1, "type": "payout.created", "data": {"status": "awaiting_approval"}}),
            json!({"id": "b", "resource_id": "po_1", "sequence": 2, "type": "payout.approved", "data": {"status": "pending"}}),
        ];
        assert_eq!(problems(ResourceKind::Payout, &view, &events), Vec::<String>::new());
    }
}
