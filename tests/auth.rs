//! API tokens over HTTP: the `merchant` claim, the operator scope of the dev token, and the
//! stable `reason` of every refused token.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use support::{key, payment_body, Harness};

#[tokio::test]
async fn a_user_acting_for_a_merchant_is_authenticated_and_a_bad_merchant_claim_is_not() {
    let h = Harness::start().await;
    let body = payment_body("254712399931", 100);
    let clerk = h.stack.token_for_merchant(
        "alice@merchant-a",
        "merchant-a",
        &["payments:write"],
        Duration::from_secs(600),
    );
    let created = h.create_payment_as(&clerk, &key(), &body).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);

    let now = chrono::Utc::now().timestamp();
    for merchant in [json!("merchant#a"), json!(""), json!(7), json!(null)] {
        let token = h.stack.token_with_claims(
            &json!({"sub": "alice", "merchant": merchant, "scope": "payments:write", "exp": now + 600}),
        );
        let refused = h.create_payment_as(&token, &key(), &body).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "merchant {merchant}");
        assert_eq!(refused.body["code"], "unauthenticated");
        assert_eq!(refused.body["reason"], "bad_merchant", "merchant {merchant}");
    }
    let expired = h
        .stack
        .token_with_claims(&json!({"sub": "merchant-a", "scope": "payments:write", "exp": now - 120}));
    assert_eq!(
        h.create_payment_as(&expired, &key(), &body).await.body["reason"],
        "expired"
    );
    let anonymous = h
        .send(
            h.http
                .post(h.url("/v1/payments"))
                .header("idempotency-key", key())
                .json(&body),
        )
        .await;
    assert_eq!(anonymous.body["reason"], "missing_token");
    h.shutdown().await;
}

#[tokio::test]
async fn the_printed_dev_token_carries_the_operator_scope_and_the_dev_stack_honours_it() {
    assert!(devstack::DEV_TOKEN_SCOPES.contains(&checkout::auth::scopes::PLATFORM_OPERATOR));
    assert!(
        !devstack::ALL_SCOPES.contains(&checkout::auth::scopes::PLATFORM_OPERATOR),
        "merchant tokens of the tests are not operators"
    );
    let h = Harness::start().await;
    // The dev stack has no identity provider key: its HS256 key may grant the operator scope.
    let operator = h
        .stack
        .token("dev-merchant", devstack::DEV_TOKEN_SCOPES, Duration::from_secs(600));
    assert_eq!(h.get_as(&operator, "/v1/payments").await.status, StatusCode::OK);
    h.shutdown().await;
}
