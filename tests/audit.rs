//! The audit trail end to end: a payment's chain holds the API call (who, from where), every
//! state change and the callback with its verdict; approvals are operator actions, webhook
//! endpoint changes their own kind, forged callbacks are recorded as forged; `audit verify`
//! passes on the intact log and names the entry that was edited, deleted or reordered, a chain
//! rewritten whole (against its digest) and a digest changed in the archive.

mod support;

use std::sync::Arc;

use checkout::audit::chain::Problem;
use checkout::audit::{repo, verify, AuditEntry};
use checkout::store::{Condition, Table, Write};
use devstack::Options;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{key, payment_body, payout_body, Harness};

/// The payment's audit entries once they include `count` entries (the state changes arrive
/// from the outbox, the callback from the queue).
async fn trail(h: &Harness, path: &str, count: usize) -> Vec<Value> {
    for _ in 0..300 {
        let reply = h.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let entries = reply.body["data"].as_array().cloned().unwrap_or_default();
        if entries.len() >= count {
            return entries;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{path} never had {count} entries");
}

fn actions(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{}:{}", e["kind"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect()
}

async fn pay(h: &Harness) -> String {
    let created = h
        .send(
            h.http
                .post(h.url("/v1/payments"))
                .bearer_auth(&h.token)
                .header("idempotency-key", key())
                .header("user-agent", "shop-backend/2.1")
                .json(&payment_body("254712399931", 1250)),
        )
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    h.wait_for_status(&id, "completed").await;
    h.settle_queue().await;
    id
}

async fn verified(h: &Harness) -> verify::Report {
    let archive = h.stack.audit_archive();
    verify::verify(h.stack.table().as_ref(), Some(archive.as_ref()))
        .await
        .unwrap()
}

async fn put_entry(table: &Arc<dyn Table>, entry: &AuditEntry) {
    let Write::Put { item, .. } = repo::insert_entry(entry) else {
        unreachable!()
    };
    table
        .write(vec![Write::Put {
            item,
            condition: Condition::Always,
        }])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_payments_trail_has_the_call_every_change_and_the_callback_for_its_merchant_only() {
    let h = Harness::start().await;
    let id = pay(&h).await;
    let path = format!("/v1/payments/{id}/audit");
    let entries = trail(&h, &path, 5).await;
    let kinds = actions(&entries);
    // In the order they were recorded (the outbox may record the creation before the edge
    // records the call; `occurred_at` says when each happened).
    for expected in [
        "api_call:POST /v1/payments",
        "state_change:payment.created",
        "state_change:payment.sent",
        "state_change:payment.completed",
        "callback:stk_callback",
    ] {
        assert!(
            kinds.contains(&expected.to_owned()),
            "{expected} missing from {kinds:?}"
        );
    }
    // Who called, from where, with what.
    let call = entries.iter().find(|e| e["kind"] == "api_call").unwrap();
    assert_eq!(call["actor"]["type"], "api");
    assert_eq!(call["actor"]["subject"], "merchant-a");
    assert_eq!(call["actor"]["user_agent"], "shop-backend/2.1");
    assert_eq!(call["actor"]["source_ip"], "127.0.0.1");
    assert!(call["actor"]["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(call["outcome"], "202");
    assert_eq!(call["resource"], json!({"type": "payment", "id": id}));
    let callback = entries.iter().find(|e| e["kind"] == "callback").unwrap();
    assert_eq!(
        (callback["outcome"].as_str(), callback["actor"]["type"].as_str()),
        (Some("applied"), Some("safaricom"))
    );
    // Numbered and linked, as shown.
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        assert_eq!(e["id"], format!("{id}:{}", i + 1));
        if i > 0 {
            assert_eq!(e["prev_hash"], entries[i - 1]["hash"]);
        }
    }
    // Redacted: the phone only masked, no callback body.
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("254712399931"), "{text}");
    assert!(!text.contains("MpesaReceiptNumber"), "no callback body in the trail");

    // Merchant-wide, filtered.
    let callbacks = h.get("/v1/audit?kind=callback").await;
    assert_eq!(callbacks.status, StatusCode::OK, "{}", callbacks.body);
    let listed = callbacks.body["data"].as_array().unwrap();
    assert!(
        !listed.is_empty() && listed.iter().all(|e| e["kind"] == "callback"),
        "{listed:?}"
    );
    let completed = h
        .get(&format!("/v1/audit?action=payment.completed&resource_id={id}"))
        .await;
    assert_eq!(
        completed.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        completed.body
    );
    let page = h.get("/v1/audit?limit=2").await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 2);
    let cursor = page.body["next_cursor"].as_str().expect("a next page").to_owned();
    let next = h.get(&format!("/v1/audit?limit=2&cursor={cursor}")).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
    assert_ne!(next.body["data"][0]["id"], page.body["data"][0]["id"]);
    // A resource's chain pages too.
    let first = h.get(&format!("{path}?limit=3")).await;
    let cursor = first.body["next_cursor"].as_str().expect("more entries").to_owned();
    let rest = h.get(&format!("{path}?cursor={cursor}")).await;
    assert_eq!(rest.body["data"][0]["seq"], 4, "{}", rest.body);
    // Another listing's cursor is refused, not read as an empty page.
    let merchant_cursor = page.body["next_cursor"].as_str().unwrap();
    let mixed = h.get(&format!("{path}?cursor={merchant_cursor}")).await;
    assert_eq!(
        (mixed.status, mixed.body["errors"][0]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_cursor"))
    );

    // Bad filters are clear errors.
    let bad = h.get("/v1/audit?kind=everything").await;
    assert_eq!(
        (bad.status, bad.body["errors"][0]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("kind"))
    );
    let bad = h
        .get("/v1/audit?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Another merchant sees nothing of it; a token without the scope is refused.
    let other = h.token_for("merchant-b", &["audit:read"]);
    assert_eq!(h.get_as(&other, &path).await.status, StatusCode::NOT_FOUND);
    let theirs = h.get_as(&other, "/v1/audit").await;
    assert_eq!(theirs.body["data"], json!([]));
    let no_scope = h.token_for("merchant-a", &["payments:read"]);
    assert_eq!(h.get_as(&no_scope, &path).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        h.get("/v1/payments/pay_unknown/audit").await.status,
        StatusCode::NOT_FOUND
    );
    assert!(verified(&h).await.is_intact());
    h.shutdown().await;
}

#[tokio::test]
async fn approvals_webhook_changes_and_forged_callbacks_are_recorded() {
    let mut options = Options::for_tests();
    options.payouts.config.approval_threshold = Some(100_000);
    let h = Harness::start_with(options).await;
    // An approval: an operator action by the approver, on the payout's chain.
    let payout = h.create_payout(&key(), &payout_body("0712345009", 150_000)).await;
    let payout_id = payout.body["id"].as_str().unwrap().to_owned();
    let approver = h.colleague("approver-1", &["payouts:approve"]);
    assert_eq!(
        h.review_payout(&approver, &payout_id, "approve").await.status,
        StatusCode::OK
    );
    let entries = trail(&h, &format!("/v1/payouts/{payout_id}/audit"), 4).await;
    let approval = entries
        .iter()
        .find(|e| e["kind"] == "operator_action")
        .unwrap_or_else(|| panic!("{:?}", actions(&entries)));
    assert_eq!(approval["action"], "POST /v1/payouts/{id}/approve");
    assert_eq!(approval["actor"]["subject"], "approver-1");
    assert!(actions(&entries).contains(&"state_change:payout.approved".to_owned()));

    // A webhook endpoint created and rotated.
    let created = h
        .send(
            h.http
                .post(h.url("/v1/webhook-endpoints"))
                .bearer_auth(&h.token)
                .json(&json!({"url": "https://shop.example.com/hooks", "enabled_events": ["payment.completed"]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let endpoint = created.body["id"].as_str().unwrap().to_owned();
    let rotated = h
        .send(
            h.http
                .post(h.url(&format!("/v1/webhook-endpoints/{endpoint}/rotate-secret")))
                .bearer_auth(&h.token),
        )
        .await;
    assert!(rotated.status.is_success(), "{}", rotated.body);
    let changes = h
        .get(&format!(
            "/v1/audit?kind=webhook_endpoint_change&resource_id={endpoint}"
        ))
        .await;
    let changes = actions(changes.body["data"].as_array().unwrap());
    assert_eq!(
        changes,
        [
            "webhook_endpoint_change:POST /v1/webhook-endpoints/{id}/rotate-secret",
            "webhook_endpoint_change:POST /v1/webhook-endpoints"
        ]
    );
    // The secret is in the answer, never in the trail.
    let secret = created.body["secret"].as_str().unwrap();
    let all = h.get("/v1/audit?limit=100").await;
    assert!(!all.body.to_string().contains(secret));

    // A forged callback: recorded with its verdict, on a chain of unmatched callbacks.
    let forged = h
        .post_callback(
            &h.url("/callbacks/stk/pay_01ARZ3NDEKTSV4RRFFQ69G5FAV.forged"),
            &json!({"Body": {}}),
        )
        .await;
    assert_eq!(forged.status, StatusCode::OK);
    h.settle_queue().await;
    let record = h
        .anomaly_records()
        .await
        .into_iter()
        .find(|r| r["reason"] == "invalid_token")
        .expect("the forged callback's record");
    let source = format!("cb_{}", record["message_id"].as_str().unwrap());
    let mut entry = None;
    for _ in 0..300 {
        entry = repo::entry(h.stack.table().as_ref(), &source).await.unwrap();
        if entry.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let entry = entry.expect("the forged callback's entry");
    assert_eq!((entry.outcome.as_str(), entry.merchant.as_deref()), ("forged", None));
    assert!(entry.chain.starts_with("callbacks_"), "{}", entry.chain);
    assert!(verified(&h).await.is_intact());
    h.shutdown().await;
}

#[tokio::test]
async fn verify_names_the_entry_edited_deleted_or_reordered() {
    let h = Harness::start_with_manual_clock(Options::for_tests()).await;
    let id = pay(&h).await;
    trail(&h, &format!("/v1/payments/{id}/audit"), 5).await;
    let table = h.stack.table();
    let intact = verified(&h).await;
    assert!(intact.is_intact(), "{:?}", intact.broken);
    assert!(intact.chains >= 1 && intact.entries >= 5, "{intact:?}");
    let original = repo::whole_chain(table.as_ref(), &id).await.unwrap();

    // Edited: the amount of a state change.
    let mut edited = original[2].clone();
    edited.detail["data"]["amount"] = json!(1);
    put_entry(&table, &edited).await;
    let broken = verified(&h).await.broken.expect("an edit is found");
    assert_eq!(
        (broken.chain.as_str(), broken.seq, broken.problem),
        (id.as_str(), 3, Problem::Edited)
    );
    assert_eq!(broken.source.as_deref(), Some(original[2].source.as_str()));
    put_entry(&table, &original[2]).await;
    assert!(verified(&h).await.is_intact());

    // Deleted.
    table
        .write(vec![Write::Delete {
            key: repo::entry_key(&original[1].source),
            condition: Condition::Always,
        }])
        .await
        .unwrap();
    let broken = verified(&h).await.broken.expect("a deletion is found");
    assert_eq!((broken.seq, broken.problem), (3, Problem::Missing { from: 2 }));
    put_entry(&table, &original[1]).await;
    assert!(verified(&h).await.is_intact());

    // Reordered: entries 2 and 3 exchange their places.
    let (mut second, mut third) = (original[1].clone(), original[2].clone());
    std::mem::swap(&mut second.seq, &mut third.seq);
    put_entry(&table, &second).await;
    put_entry(&table, &third).await;
    let broken = verified(&h).await.broken.expect("a reordering is found");
    assert_eq!((broken.seq, broken.problem), (2, Problem::Reordered));
    assert_eq!(broken.source.as_deref(), Some(original[2].source.as_str()));
    put_entry(&table, &original[1]).await;
    put_entry(&table, &original[2]).await;
    assert!(verified(&h).await.is_intact());

    // Rewritten whole after a digest anchored it: new hashes all the way to the head still
    // differ from what the digest (and its archived copy) hold.
    h.advance(checkout::audit::digest::DIGEST_LAG_SECONDS + 1);
    let digested = h.stack.digest_audit_now().await.unwrap();
    assert!(
        digested.digests >= 1 && !h.stack.audit_archive().is_empty(),
        "{digested:?}"
    );
    let mut prev = checkout::audit::entry::GENESIS.to_owned();
    let mut rewritten = Vec::new();
    for e in &original {
        let mut e = e.clone();
        if e.seq == 3 {
            e.detail["data"]["amount"] = json!(1);
        }
        e.prev_hash = prev;
        let e = e.seal();
        prev = e.hash.clone();
        rewritten.push(e);
    }
    for e in &rewritten {
        put_entry(&table, e).await;
    }
    let mut head = repo::head(table.as_ref(), &id).await.unwrap().unwrap();
    head.hash = prev;
    let Write::Put { item, .. } = repo::write_head(&head) else {
        unreachable!()
    };
    table
        .write(vec![Write::Put {
            item,
            condition: Condition::Always,
        }])
        .await
        .unwrap();
    let broken = verified(&h).await.broken.expect("a rewritten chain is found");
    assert_eq!(broken.chain, id);
    assert!(matches!(broken.problem, Problem::DigestMismatch { .. }), "{broken}");
    h.shutdown_unchecked().await;
}

#[tokio::test]
async fn a_digest_changed_in_the_table_or_the_archive_is_found() {
    let h = Harness::start_with_manual_clock(Options::for_tests()).await;
    let id = pay(&h).await;
    trail(&h, &format!("/v1/payments/{id}/audit"), 5).await;
    h.advance(checkout::audit::digest::DIGEST_LAG_SECONDS + 1);
    assert!(h.stack.digest_audit_now().await.unwrap().digests >= 1);
    // Nothing moved: the next run writes no digest.
    h.advance(120);
    assert_eq!(h.stack.digest_audit_now().await.unwrap().digests, 0);
    let report = verified(&h).await;
    assert!(
        report.is_intact() && report.archived >= 1 && report.anchors >= 1,
        "{report:?}"
    );
    // The archived copy of merchant-a's first digest, changed (as a bucket without its lock could be).
    let archive = h.stack.audit_archive();
    let key = checkout::audit::digest::Digest::archive_key("merchant-a", 1);
    archive.overwrite(&key, "{}");
    let broken = verified(&h).await.broken.expect("a changed archive copy is found");
    assert!(matches!(broken.problem, Problem::DigestTampered { .. }), "{broken}");
    assert!(broken.to_string().contains("merchant-a/"), "{broken}");
    h.shutdown_unchecked().await;
}
