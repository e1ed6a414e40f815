//! The outbox invariant over everything a stack stored: every payment, payout and C2B payment
//! in the table against its events ([`checkout::events::invariant`]), and, when the stack streams
//! its events, that each was delivered (and recorded in the audit trail, whose chains verify).
//! The end-to-end suites run it at every shutdown, so every state change they make is checked.

use std::sync::Arc;
use std::time::Duration;

use checkout::api::events::EventView;
use checkout::events::{invariant, repo as events, ResourceKind};
use checkout::repo::c2b::{self as c2b_repo, C2bListFilter, C2bScope};
use checkout::repo::checkout_sessions::{SessionListFilter, SessionRepo};
use checkout::repo::payments::{PaymentListFilter, PaymentRepo};
use checkout::repo::payouts::{PayoutListFilter, PayoutRepo};
use checkout::store::Table;
use checkout::views::c2b::C2bPaymentView;
use checkout::views::checkout::CheckoutSessionView;
use checkout::views::{PaymentView, PayoutView};
use serde_json::Value;

/// One resource to check: its kind, merchant, id (and receipt, for a C2B payment).
struct Resource {
    kind: ResourceKind,
    merchant: String,
    id: String,
    trans_id: Option<String>,
}

/// The resource's public view as stored now.
async fn view_of(table: &Arc<dyn Table>, resource: &Resource) -> Result<Option<Value>, String> {
    let e = |e: checkout::store::StoreError| e.to_string();
    let view = match resource.kind {
        ResourceKind::Payment => {
            let id = checkout::domain::PaymentId::parse(&resource.id).map_err(|e| e.to_string())?;
            PaymentRepo::new(table.clone())
                .get(&id)
                .await
                .map_err(e)?
                .map(|p| serde_json::to_value(PaymentView::from(&p)))
        }
        ResourceKind::Payout => {
            let id = checkout::domain::PayoutId::parse(&resource.id).map_err(|e| e.to_string())?;
            PayoutRepo::new(table.clone())
                .get(&id)
                .await
                .map_err(e)?
                .map(|p| serde_json::to_value(PayoutView::from(&p)))
        }
        ResourceKind::C2bPayment => {
            let trans_id = resource.trans_id.as_deref().unwrap_or_default();
            c2b_repo::get_payment_by_trans_id(table.as_ref(), trans_id)
                .await
                .map_err(e)?
                .map(|p| serde_json::to_value(C2bPaymentView::from(&p)))
        }
        ResourceKind::CheckoutSession => {
            let id = checkout::domain::CheckoutSessionId::parse(&resource.id).map_err(|e| e.to_string())?;
            SessionRepo::new(table.clone())
                .get(&id)
                .await
                .map_err(e)?
                .map(|s| serde_json::to_value(CheckoutSessionView::from(&s)))
        }
        // Not among the resources checked (see `resources`).
        ResourceKind::WebhookEndpoint => return Ok(None),
    };
    Ok(view.map(|v| v.unwrap_or_default()))
}

/// The resource and its events as of one instant: the events read before and after the resource
/// are the same (a change and its event are one transaction, so the resource read between them
/// is the one those events describe). Work in flight may move it: read again, a few times.
async fn snapshot(table: &Arc<dyn Table>, resource: &Resource) -> Result<(Value, Vec<Value>), String> {
    let read_events = || async {
        events::of_resource(table.as_ref(), &resource.merchant, &resource.id)
            .await
            .map_err(|e| e.to_string())
    };
    let mut last = None;
    for _ in 0..10 {
        let before = read_events().await?;
        let view = view_of(table, resource).await?.ok_or("vanished")?;
        let after = read_events().await?;
        let same = before.len() == after.len() && before.iter().zip(&after).all(|(a, b)| a.id == b.id);
        let shown: Vec<Value> = after
            .iter()
            .map(|e| serde_json::to_value(EventView::from(e)).unwrap_or_default())
            .collect();
        if same {
            return Ok((view, shown));
        }
        last = Some((view, shown));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    last.ok_or_else(|| "never read".to_owned())
}

async fn resources(table: &Arc<dyn Table>) -> Result<Vec<Resource>, String> {
    let e = |e: checkout::store::StoreError| e.to_string();
    let mut out = Vec::new();
    let payments = PaymentRepo::new(table.clone());
    let mut cursor = None;
    loop {
        let page = payments
            .list(&PaymentListFilter::default(), 100, cursor.as_ref())
            .await
            .map_err(e)?;
        for p in &page.payments {
            out.push(Resource {
                kind: ResourceKind::Payment,
                merchant: p.owner.to_string(),
                id: p.id.to_string(),
                trans_id: None,
            });
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let sessions = SessionRepo::new(table.clone());
    let filter = SessionListFilter {
        owner: None,
        status: None,
        from: None,
        to: None,
    };
    let mut cursor = None;
    loop {
        let page = sessions.list(&filter, 100, cursor.as_ref()).await.map_err(e)?;
        for s in &page.sessions {
            out.push(Resource {
                kind: ResourceKind::CheckoutSession,
                merchant: s.owner.to_string(),
                id: s.id.to_string(),
                trans_id: None,
            });
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let payouts = PayoutRepo::new(table.clone());
    let filter = PayoutListFilter {
        owner: None,
        status: None,
        kind: None,
        from: None,
        to: None,
    };
    let mut cursor = None;
    loop {
        let page = payouts.list(&filter, 100, cursor.as_ref()).await.map_err(e)?;
        for p in &page.payouts {
            out.push(Resource {
                kind: ResourceKind::Payout,
                merchant: p.owner.to_string(),
                id: p.id.to_string(),
                trans_id: None,
            });
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    // C2B payments of registered shortcodes (a confirmation for an unknown shortcode has no
    // merchant, so its events are in no merchant's listing).
    for config in c2b_repo::list_configs(table.as_ref(), 1000).await.map_err(e)? {
        let filter = C2bListFilter {
            scope: C2bScope::Shortcode(config.shortcode.clone()),
            account: None,
            verification: None,
            from: None,
            to: None,
        };
        let mut cursor = None;
        loop {
            let page = c2b_repo::list_payments(table, &filter, 100, cursor.as_ref())
                .await
                .map_err(e)?;
            for p in &page.payments {
                let Some(owner) = &p.owner else { continue };
                out.push(Resource {
                    kind: ResourceKind::C2bPayment,
                    merchant: owner.to_string(),
                    id: p.id.to_string(),
                    trans_id: Some(p.trans_id.clone()),
                });
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(out)
}

/// What is wrong with the stack's outbox; empty when nothing is. `delivered`: also require every
/// event to be handled. Problems must last `wait` to count (the stream catching up, work in
/// flight).
pub async fn problems(table: &Arc<dyn Table>, delivered: bool, wait: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let mut out = Vec::new();
        let mut unhandled = Vec::new();
        let mut handled = Vec::new();
        match resources(table).await {
            Err(error) => out.push(format!("could not list resources: {error}")),
            Ok(resources) => {
                for resource in resources {
                    let (view, shown) = match snapshot(table, &resource).await {
                        Ok(read) => read,
                        Err(error) => {
                            out.push(format!("{}: unreadable: {error}", resource.id));
                            continue;
                        }
                    };
                    for event in &shown {
                        let id = event["id"].as_str().unwrap_or_default().to_owned();
                        match event["handled_at"].is_null() {
                            true => unhandled.push(id),
                            false => handled.push(id),
                        }
                    }
                    out.extend(invariant::problems(resource.kind, &view, &shown));
                }
            }
        }
        if delivered && !unhandled.is_empty() {
            out.push(format!(
                "{} events never delivered: {:?}",
                unhandled.len(),
                &unhandled[..unhandled.len().min(5)]
            ));
        }
        out.extend(audit_problems(table, &handled).await);
        // Work still in flight (a callback, a payout job) may change a resource between reading
        // it and reading its events: look again until it holds or the wait is over.
        if out.is_empty() || std::time::Instant::now() >= deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The audit trail over everything stored: every delivered event has its entry (the audit is a
/// consumer: an event is marked handled only after it), and every chain verifies.
async fn audit_problems(table: &Arc<dyn Table>, handled_events: &[String]) -> Vec<String> {
    use checkout::audit::{repo as audit, verify};
    let mut out = Vec::new();
    for id in handled_events {
        match audit::entry(table.as_ref(), id).await {
            Ok(Some(_)) => {}
            Ok(None) => out.push(format!("{id}: delivered without its audit entry")),
            Err(error) => out.push(format!("{id}: audit entry unreadable: {error}")),
        }
    }
    match verify::verify(table.as_ref(), None).await {
        Ok(report) => out.extend(report.broken.map(|b| format!("audit trail: {b}"))),
        Err(error) => out.push(format!("audit trail unreadable: {error}")),
    }
    out
}
