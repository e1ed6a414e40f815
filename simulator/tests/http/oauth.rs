use crate::common::*;
use serde_json::json;
use simulator::config::{AppConfig, Product};
use simulator::SimulatorConfig;
use std::time::Duration;

#[tokio::test]
async fn token_has_string_expires_in() {
    let sim = Sim::fast().await;
    let r = sim
        .client
        .get(sim.url("/oauth/v1/generate?grant_type=client_credentials"))
        .basic_auth("sim-consumer-key", Some("sim-consumer-secret"))
        .send()
        .await
        .unwrap();
    let (s, v) = read(r).await;
    assert_eq!(s, 200);
    assert_eq!(v["expires_in"], json!("3599"));
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 28);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(v.as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_scheme_grant_and_credentials() {
    let sim = Sim::fast().await;
    let url = sim.url("/oauth/v1/generate?grant_type=client_credentials");
    let (s, v) = read(sim.client.get(&url).bearer_auth("x").send().await.unwrap()).await;
    assert_error(s, &v, 400, "400.008.01", "Invalid Authentication passed");
    let (s, v) = read(sim.client.get(&url).send().await.unwrap()).await;
    assert_error(s, &v, 400, "400.008.01", "Invalid Authentication passed");
    let r = sim
        .client
        .get(sim.url("/oauth/v1/generate?grant_type=password"))
        .basic_auth("sim-consumer-key", Some("sim-consumer-secret"))
        .send()
        .await
        .unwrap();
    let (s, v) = read(r).await;
    assert_error(s, &v, 400, "400.008.02", "Invalid grant type passed");
    // Wrong key/secret: 400 with an empty body.
    let r = sim
        .client
        .get(&url)
        .basic_auth("sim-consumer-key", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "");
}

#[tokio::test]
async fn tokens_expire() {
    let cfg = SimulatorConfig {
        token_lifetime_secs: 1,
        ..SimulatorConfig::fast_for_tests()
    };
    let sim = Sim::start(cfg).await;
    let rx = Receiver::start().await;
    let (s, _) = sim.stk_push("254712345678", json!(10), &rx.url("/cb")).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (s, v) = sim.stk_push("254712345679", json!(10), &rx.url("/cb")).await;
    assert_error(s, &v, 404, "404.001.03", "Invalid Access Token");
}

#[tokio::test]
async fn invalid_token_error_differs_per_product() {
    let sim = Sim::fast().await;
    let cases = [
        ("/mpesa/stkpush/v1/processrequest", 404, "404.001.03"),
        ("/mpesa/stkpushquery/v1/query", 404, "404.001.03"),
        ("/mpesa/reversal/v1/request", 404, "404.001.03"),
        ("/mpesa/c2b/v1/registerurl", 400, "400.003.01"),
        ("/mpesa/c2b/v2/registerurl", 400, "400.003.01"),
        ("/mpesa/c2b/v1/simulate", 400, "400.003.01"),
        ("/mpesa/transactionstatus/v1/query", 400, "400.003.01"),
        ("/mpesa/b2c/v3/paymentrequest", 401, "401.002.01"),
        ("/mpesa/b2c/v1/paymentrequest", 401, "401.002.01"),
        ("/mpesa/accountbalance/v1/query", 401, "401.002.01"),
    ];
    for (path, status, code) in cases {
        let (s, v) = sim.post_with_token(path, &json!({}), "not-a-token").await;
        assert_eq!(s, status, "{path}: {v}");
        assert_eq!(v["errorCode"], code, "{path}");
        assert!(v["errorMessage"].as_str().unwrap().contains("Invalid Access Token"));
        // No Authorization header at all.
        let r = sim.client.post(sim.url(path)).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
    }
}

#[tokio::test]
async fn app_without_product_gets_no_apiproduct_match() {
    let mut cfg = SimulatorConfig::fast_for_tests();
    cfg.apps.push(AppConfig {
        name: "stk-only".into(),
        consumer_key: "k2".into(),
        consumer_secret: "s2".into(),
        products: vec![Product::Stk],
    });
    let sim = Sim::start(cfg).await;
    let r = sim
        .client
        .get(sim.url("/oauth/v1/generate?grant_type=client_credentials"))
        .basic_auth("k2", Some("s2"))
        .send()
        .await
        .unwrap();
    let token = read(r).await.1["access_token"].as_str().unwrap().to_string();
    let rx = Receiver::start().await;
    let (s, v) = sim
        .post_with_token(
            "/mpesa/b2c/v3/paymentrequest",
            &b2c_body("o-1", "254712345678", 100, &rx),
            &token,
        )
        .await;
    assert_eq!(s, 401, "{v}");
    assert!(v["errorMessage"]
        .as_str()
        .unwrap()
        .ends_with("no apiproduct match found"));
    let (s, _) = sim
        .post_with_token(
            "/mpesa/stkpush/v1/processrequest",
            &stk_body("254712345678", json!(1), &rx.url("/cb")),
            &token,
        )
        .await;
    assert_eq!(s, 200);
}
