use crate::common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const ENDPOINTS: [&str; 11] = [
    "/mpesa/stkpush/v1/processrequest",
    "/mpesa/stkpushquery/v1/query",
    "/mpesa/c2b/v1/registerurl",
    "/mpesa/c2b/v2/registerurl",
    "/mpesa/c2b/v1/simulate",
    "/mpesa/b2c/v3/paymentrequest",
    "/mpesa/b2c/v1/paymentrequest",
    "/mpesa/transactionstatus/v1/query",
    "/mpesa/accountbalance/v1/query",
    "/mpesa/reversal/v1/request",
    "/mpesa/c2b/v2/simulate",
];

async fn raw(sim: &Sim, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let r = sim
        .client
        .post(sim.url(path))
        .bearer_auth(&sim.token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    read(r).await
}

fn assert_daraja_error(status: u16, v: &Value, what: &str) {
    assert!((400..500).contains(&status), "{what}: {status} {v}");
    assert_eq!(v["errorCode"], "400.002.02", "{what}: {v}");
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Bad Request - Invalid "),
        "{what}"
    );
}

#[tokio::test]
async fn malformed_bodies_get_daraja_errors() {
    let sim = Sim::fast().await;
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(100 * 1024)).into_bytes();
    for path in ENDPOINTS {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("not json", b"BusinessShortCode=174379".to_vec()),
            ("array", b"[1,2,3]".to_vec()),
            ("string", b"\"hello\"".to_vec()),
            ("empty", Vec::new()),
            ("truncated", b"{\"ShortCode\": ".to_vec()),
            ("invalid utf8", vec![0xff, 0xfe, b'{', b'}']),
            ("huge", huge.clone()),
            ("empty object", b"{}".to_vec()),
            ("wrong types", br#"{"BusinessShortCode": {"a": 1}, "ShortCode": [1], "Initiator": 5.5, "OriginatorConversationID": true, "InitiatorName": null}"#.to_vec()),
        ];
        for (what, body) in cases {
            let (s, v) = raw(&sim, path, "application/json", body).await;
            assert_daraja_error(s, &v, &format!("{path} {what}"));
        }
    }
}

/// Random values of random types in every field: answers are Daraja-shaped, never a panic.
#[tokio::test]
async fn fuzzed_fields_never_break_the_server() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let templates = [
        (
            "/mpesa/stkpush/v1/processrequest",
            stk_body("254712345678", json!(1), &rx.url("/f")),
        ),
        ("/mpesa/b2c/v3/paymentrequest", b2c_body("fz", "254712345678", 100, &rx)),
        (
            "/mpesa/c2b/v1/simulate",
            crate::c2b::simulate_body("600984", "254712345678"),
        ),
        (
            "/mpesa/transactionstatus/v1/query",
            crate::account::status_body("X", &rx, "/ts"),
        ),
    ];
    let values = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e308),
        json!(u64::MAX),
        json!(""),
        json!("   "),
        json!("😀"),
        json!([]),
        json!({}),
        json!("254712345678"),
        json!("0"),
        json!(1.5),
        json!("9".repeat(400)),
        json!("http://"),
        json!("\u{0000}"),
    ];
    for i in 0..300 {
        let (path, template) = &templates[i % templates.len()];
        let mut body = template.clone();
        let keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
        for _ in 0..rng.gen_range(1..4) {
            let k = &keys[rng.gen_range(0..keys.len())];
            body[k] = values[rng.gen_range(0..values.len())].clone();
        }
        if i % 7 == 0 {
            body["OriginatorConversationID"] = json!(format!("fz-{i}"));
        }
        let (s, v) = sim.post(path, &body).await;
        match s {
            200 => assert!(v.is_object(), "{v}"),
            400 | 404 | 500 => assert!(v["errorCode"].is_string(), "{path} {body} -> {s} {v}"),
            other => panic!("{path} {body} -> {other} {v}"),
        }
    }
    let (s, _) = sim.control(reqwest::Method::GET, "/__control/health", None).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_daraja_shaped() {
    let sim = Sim::fast().await;
    let (s, v) = read(sim.client.get(sim.url("/mpesa/nothing/v1")).send().await.unwrap()).await;
    assert_error(s, &v, 404, "404.001.01", "Resource not found");
    let (s, v) = read(
        sim.client
            .get(sim.url("/mpesa/stkpush/v1/processrequest"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &v, 405, "405.001.01", "Method Not Allowed");
    let (s, v) = read(
        sim.client
            .post(sim.url("/oauth/v1/generate?grant_type=client_credentials"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &v, 405, "405.001.01", "Method Not Allowed");
}
