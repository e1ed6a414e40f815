//! The URL rules, the guarded resolver and one attempt against local servers.

use super::*;
use proptest::prelude::*;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[test]
fn parse_rejects_with_merchant_messages() {
    let production = TargetPolicy::production();
    let long = format!("https://example.com/{}", "a".repeat(3000));
    let table = [
        ("http://example.com", TargetError::NotHttps),
        ("ftp://x", TargetError::NotHttps),
        ("https://user:pw@example.com", TargetError::Credentials),
        ("https://user@example.com", TargetError::Credentials),
        ("https://169.254.169.254/latest", TargetError::ForbiddenAddress),
        ("https://[::ffff:10.0.0.1]/", TargetError::ForbiddenAddress),
        ("https://127.0.0.1:8443/", TargetError::ForbiddenAddress),
        ("https://0x7f.1/", TargetError::ForbiddenAddress), // 127.0.0.1 spelt in hex
        ("https://[fd00:ec2::254]/", TargetError::ForbiddenAddress),
        ("https://example.com/hook#part", TargetError::Fragment),
        ("/relative/path", TargetError::NotAbsolute),
        ("mailto:ops@example.com", TargetError::NotHttps),
        ("not a url", TargetError::NotAbsolute),
        (long.as_str(), TargetError::TooLong),
    ];
    for (text, expected) in table {
        assert_eq!(WebhookUrl::parse(text, production), Err(expected), "{text:.60}");
    }
    assert_eq!(TargetError::NotHttps.to_string(), "must use https");
    assert_eq!(
        TargetError::ForbiddenAddress.to_string(),
        "must not point at a private, loopback, link-local or metadata address"
    );
}

#[test]
fn parse_accepts_public_https_with_port_and_query() {
    let url = WebhookUrl::parse("https://hooks.example.com:8443/mpesa?x=1", TargetPolicy::production()).unwrap();
    assert_eq!(url.as_str(), "https://hooks.example.com:8443/mpesa?x=1");
    let url = WebhookUrl::parse("https://8.8.8.8/hook", TargetPolicy::production()).unwrap();
    assert_eq!(url.as_str(), "https://8.8.8.8/hook");
}

#[test]
fn local_development_allows_http_and_local_addresses() {
    let dev = TargetPolicy::local_development();
    for text in [
        "http://localhost:3000/hook",
        "http://127.0.0.1:9000/",
        "https://[::1]:8443/",
    ] {
        assert!(WebhookUrl::parse(text, dev).is_ok(), "{text}");
    }
    // Everything else still applies.
    assert_eq!(WebhookUrl::parse("ftp://x", dev), Err(TargetError::NotHttps));
    assert_eq!(
        WebhookUrl::parse("http://u:p@localhost/", dev),
        Err(TargetError::Credentials)
    );
}

#[test]
fn serde_round_trip_does_not_recheck_the_policy() {
    let url = WebhookUrl::parse("http://127.0.0.1:9000/hook", TargetPolicy::local_development()).unwrap();
    let json = serde_json::to_string(&url).unwrap();
    assert_eq!(json, r#""http://127.0.0.1:9000/hook""#);
    let back: WebhookUrl = serde_json::from_str(&json).unwrap();
    assert_eq!(back, url);
    assert!(serde_json::from_str::<WebhookUrl>(r#""not a url""#).is_err());
}

#[test]
fn excerpt_is_cut_on_a_char_boundary() {
    // 1023 ASCII bytes then a 2-byte 'é': the 'é' is cut by the limit and dropped.
    let mut raw = vec![b'a'; 1023];
    raw.extend_from_slice("é".as_bytes());
    assert_eq!(excerpt(&raw), "a".repeat(1023));
    // Complete multibyte characters stay.
    assert_eq!(excerpt("héllo €".as_bytes()), "héllo €");
    // Invalid bytes become U+FFFD, still within the limit.
    let text = excerpt(&[0xff; 2000]);
    assert!(text.len() <= EXCERPT_BYTES && text.chars().all(|c| c == '\u{fffd}'));
    assert_eq!(text.len(), 1023); // 341 replacement characters of 3 bytes
}

proptest! {
    #[test]
    fn parse_never_panics(text in ".{0,300}") {
        let _ = WebhookUrl::parse(&text, TargetPolicy::production());
        let _ = WebhookUrl::parse(&text, TargetPolicy::local_development());
    }

    #[test]
    fn parse_never_panics_on_url_like_text(
        text in "(https?|ftp|HTTPS)://[a-zA-Z0-9.:@\\[\\]%/?#&=_~+-]{0,80}",
    ) {
        let _ = WebhookUrl::parse(&text, TargetPolicy::production());
        let _ = WebhookUrl::parse(&text, TargetPolicy::local_development());
    }

    #[test]
    fn excerpt_is_bounded_utf8(raw in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let text = excerpt(&raw);
        prop_assert!(text.len() <= EXCERPT_BYTES);
    }
}

fn dev_sender() -> WebhookSender {
    WebhookSender::with_timeout(TargetPolicy::local_development(), Duration::from_millis(300)).unwrap()
}

fn stored(text: String) -> WebhookUrl {
    WebhookUrl::stored(text).unwrap()
}

async fn mock_answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_2xx_is_delivered_with_status_and_excerpt() {
    let server = mock_answering(ResponseTemplate::new(200).set_body_string("thanks")).await;
    let result = dev_sender()
        .send(&stored(format!("{}/hook", server.uri())), &[], Bytes::from("{}"))
        .await;
    assert_eq!(result.outcome, AttemptOutcome::Delivered);
    assert_eq!(result.status, Some(200));
    assert_eq!(result.response_excerpt, "thanks");
    assert!(result.latency_ms < 300);
}

#[tokio::test]
async fn a_500_is_rejected() {
    let server = mock_answering(ResponseTemplate::new(500).set_body_string("boom")).await;
    let result = dev_sender()
        .send(&stored(format!("{}/hook", server.uri())), &[], Bytes::from("{}"))
        .await;
    assert_eq!(result.outcome, AttemptOutcome::Rejected);
    assert_eq!(result.status, Some(500));
    assert_eq!(result.response_excerpt, "boom");
}

#[tokio::test]
async fn a_redirect_is_rejected_and_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = format!("{}/elsewhere", server.uri());
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", elsewhere.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let result = dev_sender()
        .send(&stored(format!("{}/hook", server.uri())), &[], Bytes::from("{}"))
        .await;
    assert_eq!(result.outcome, AttemptOutcome::Rejected);
    assert_eq!(result.status, Some(302));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_slow_answer_is_unreachable_after_the_timeout() {
    let server = mock_answering(ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
    let result = dev_sender()
        .send(&stored(format!("{}/hook", server.uri())), &[], Bytes::from("{}"))
        .await;
    let reason = "timed out after 300 ms".to_owned();
    assert_eq!(result.outcome, AttemptOutcome::Unreachable { reason });
    assert_eq!(result.status, None);
    assert!((300..2000).contains(&result.latency_ms), "{}", result.latency_ms);
}

#[tokio::test]
async fn a_refused_connection_is_unreachable_without_the_url() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = stored(format!("http://127.0.0.1:{port}/hook?token=secret"));
    let result = dev_sender().send(&url, &[], Bytes::from("{}")).await;
    let AttemptOutcome::Unreachable { reason } = &result.outcome else {
        panic!("expected Unreachable, got {result:?}");
    };
    assert!(reason.starts_with("connection failed"), "{reason}");
    assert!(!reason.contains("secret") && !reason.contains("127.0.0.1"), "{reason}");
}

#[tokio::test]
async fn a_large_answer_gives_an_excerpt_of_exactly_1024_bytes() {
    let server = mock_answering(ResponseTemplate::new(400).set_body_string("x".repeat(3 * 1024))).await;
    let result = dev_sender()
        .send(&stored(format!("{}/hook", server.uri())), &[], Bytes::from("{}"))
        .await;
    assert_eq!(result.outcome, AttemptOutcome::Rejected);
    assert_eq!(result.response_excerpt.len(), 1024);
}

#[tokio::test]
async fn our_headers_and_body_arrive() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("content-type", "application/json"))
        .and(header("user-agent", USER_AGENT))
        .and(header("webhook-id", "msg_01"))
        .and(body_string(r#"{"type":"payment.succeeded"}"#))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let headers = [
        ("webhook-id", "msg_01".to_owned()),
        ("webhook-signature", "v1,abc=".to_owned()),
    ];
    let body = Bytes::from_static(br#"{"type":"payment.succeeded"}"#);
    let result = dev_sender()
        .send(&stored(format!("{}/hook", server.uri())), &headers, body)
        .await;
    assert_eq!(result.outcome, AttemptOutcome::Delivered);
    assert_eq!(result.status, Some(204));
    // Checked by hand: wiremock's `header` matcher splits values on commas.
    let received = server.received_requests().await.unwrap();
    let signature = received[0].headers.get("webhook-signature").unwrap();
    assert_eq!(signature.to_str().unwrap(), "v1,abc=");
    assert_eq!(received[0].headers.get_all("content-type").iter().count(), 1);
}

#[tokio::test]
async fn an_invalid_header_is_reported_without_sending() {
    let server = mock_answering(ResponseTemplate::new(200)).await;
    let headers = [("bad header", "x".to_owned())];
    let result = dev_sender()
        .send(&stored(format!("{}/hook", server.uri())), &headers, Bytes::new())
        .await;
    let reason = r#"invalid header name "bad header""#.to_owned();
    assert_eq!(result.outcome, AttemptOutcome::Unreachable { reason });
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
}

fn production_sender() -> WebhookSender {
    WebhookSender::with_timeout(TargetPolicy::production(), Duration::from_millis(300)).unwrap()
}

async fn assert_forbidden_without_request(url: String, reason_contains: &str) {
    let server = mock_answering(ResponseTemplate::new(200)).await;
    let url = url.replace("{port}", &server.address().port().to_string());
    let result = production_sender()
        .send(&stored(url.clone()), &[], Bytes::from("{}"))
        .await;
    let AttemptOutcome::Forbidden { reason } = &result.outcome else {
        panic!("{url}: expected Forbidden, got {result:?}");
    };
    assert!(reason.contains(reason_contains), "{url}: {reason}");
    assert_eq!(result.status, None);
    assert_eq!(server.received_requests().await.unwrap().len(), 0, "{url}");
}

#[tokio::test]
async fn production_refuses_ip_literal_loopback_before_sending() {
    assert_forbidden_without_request("https://127.0.0.1:{port}/hook".to_owned(), "127.0.0.1").await;
    assert_forbidden_without_request("https://[::1]:{port}/hook".to_owned(), "::1").await;
}

#[tokio::test]
async fn production_refuses_a_name_resolving_to_loopback() {
    assert_forbidden_without_request("https://localhost:{port}/hook".to_owned(), "localhost resolves to").await;
}

#[tokio::test]
async fn production_refuses_a_stored_http_url() {
    assert_forbidden_without_request("http://localhost:{port}/hook".to_owned(), "must use https").await;
}

/// The resolver on its own, over plain http (which the production sender refuses earlier):
/// the mock server is reachable, so only the resolver stands between it and the request.
#[tokio::test]
async fn the_guarded_resolver_stops_a_reachable_local_server() {
    let server = mock_answering(ResponseTemplate::new(200)).await;
    let url = format!("http://localhost:{}/hook", server.address().port());
    let client = |allow_private| {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .no_proxy()
            .build()
            .unwrap()
    };
    let refused = client(false).post(&url).send().await.unwrap_err();
    let outcome = production_sender().classify(&refused);
    let AttemptOutcome::Forbidden { reason } = &outcome else {
        panic!("expected Forbidden, got {outcome:?}");
    };
    assert!(reason.starts_with("localhost resolves to"), "{reason}");
    assert_eq!(server.received_requests().await.unwrap().len(), 0);

    let allowed = client(true).post(&url).send().await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
