//! The payment page's live channel on AWS: the WebSocket API's `$connect`/`$disconnect`
//! ([`LiveGateway`]) and the events function's pushes ([`LivePush`]) through the real
//! `@connections` client against a stand-in management API (wiremock: it records what is
//! posted and answers `410 GoneException` for a closed connection, as API Gateway does).
//! Connections are stored in the in-memory table and in a DynamoDB table on moto.

mod support;

use std::sync::Arc;

use aws_sdk_dynamodb::config::{Credentials, Region};
use checkout::api::checkout::client_limits::{LimitsConfig, PublicLimits};
use checkout::api::checkout::live::{LiveGateway, LivePush};
use checkout::api::checkout::live_management::ManagementApi;
use checkout::api::checkout::StatusAnswers;
use checkout::clock::SystemClock;
use checkout::domain::checkout_session::{
    Attempt, CheckoutSession, CheckoutSessionId, NewSession, ReturnUrl, SessionStatus, DEFAULT_EXPIRY,
};
use checkout::domain::{Amount, ClientId, Metadata, Msisdn, PaymentId, Reference};
use checkout::events::handler::EventConsumer;
use checkout::events::{Cause, EventRecord, EventType, ResourceKind};
use checkout::repo::checkout_sessions::SessionRepo;
use checkout::repo::live_connections::{ConnectionId, LiveConnections, MAX_CONNECTIONS_PER_SESSION};
use checkout::services::checkout::{CheckoutConfig, CheckoutService};
use checkout::store::memory::MemoryTable;
use checkout::store::Table;
use chrono::Utc;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const STAGE: &str = "prod";

fn new_session(open_attempt: bool) -> CheckoutSession {
    let mut session = CheckoutSession::create(
        CheckoutSessionId::generate(),
        ClientId::parse("shop").unwrap(),
        NewSession {
            amount: Amount::new(1250).unwrap(),
            reference: Reference::parse("INV-7").unwrap(),
            description: None,
            phone: None,
            success_url: ReturnUrl::parse("https://shop.example/paid").unwrap(),
            cancel_url: ReturnUrl::parse("https://shop.example/cart").unwrap(),
            expires_in: DEFAULT_EXPIRY,
            max_attempts: 3,
            metadata: Metadata::default(),
        },
        "https://pay.example",
        Utc::now(),
    );
    if open_attempt {
        session.attempts.push(Attempt {
            number: 1,
            payment_id: PaymentId::generate(),
            phone: Msisdn::parse("0712345678").unwrap(),
            started_at: Utc::now(),
            ended_at: None,
            end: None,
        });
    }
    session
}

struct Rig {
    table: Arc<dyn Table>,
    connections: LiveConnections,
    gateway: LiveGateway,
    push: LivePush,
    management: MockServer,
}

async fn rig(connections_table: Arc<dyn Table>, limits: LimitsConfig) -> Rig {
    let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
    let connections = LiveConnections::new(connections_table);
    let management = MockServer::start().await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "live-tests"))
        .load()
        .await;
    let service = Arc::new(CheckoutService {
        repo: SessionRepo::new(table.clone()),
        payment_repo: checkout::repo::payments::PaymentRepo::new(table.clone()),
        table: table.clone(),
        clock: Arc::new(SystemClock),
        config: CheckoutConfig {
            public_base_url: "https://pay.example".into(),
            display_name: "Duka la Mama".into(),
            ..CheckoutConfig::default()
        },
    });
    Rig {
        gateway: LiveGateway {
            sessions: SessionRepo::new(table.clone()),
            connections: connections.clone(),
            limits: PublicLimits::new(limits),
            clock: Arc::new(SystemClock),
        },
        push: LivePush {
            answers: StatusAnswers {
                service,
                prompt_after: chrono::Duration::seconds(300),
            },
            connections: connections.clone(),
            sender: Arc::new(ManagementApi::new(&sdk, &format!("{}/{STAGE}", management.uri()))),
        },
        connections,
        table,
        management,
    }
}

impl Rig {
    async fn store(&self, session: &CheckoutSession) {
        self.table.write(vec![SessionRepo::insert(session)]).await.unwrap();
    }

    async fn connect(&self, connection: &str, session: &str, lang: &str, ip: &str) -> u64 {
        // The shape API Gateway sends (trimmed of what is not read).
        let event = json!({
            "headers": {"Host": "abc123.execute-api.eu-west-1.amazonaws.com", "Sec-WebSocket-Version": "13"},
            "queryStringParameters": {"session": session, "lang": lang},
            "requestContext": {
                "routeKey": "$connect", "eventType": "CONNECT", "connectionId": connection,
                "stage": STAGE, "apiId": "abc123", "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
                "identity": {"sourceIp": ip, "userAgent": "Mozilla/5.0"}
            },
            "isBase64Encoded": false
        });
        self.gateway.handle(&event).await["statusCode"].as_u64().unwrap()
    }

    async fn disconnect(&self, connection: &str) -> u64 {
        let event = json!({
            "headers": {"Host": "abc123.execute-api.eu-west-1.amazonaws.com"},
            "requestContext": {
                "routeKey": "$disconnect", "eventType": "DISCONNECT", "connectionId": connection,
                "disconnectStatusCode": 1001, "disconnectReason": "Going away",
                "stage": STAGE, "identity": {"sourceIp": "203.0.113.9"}
            },
            "isBase64Encoded": false
        });
        self.gateway.handle(&event).await["statusCode"].as_u64().unwrap()
    }

    async fn connected(&self, session: &CheckoutSession) -> Vec<String> {
        let mut ids: Vec<String> = self
            .connections
            .of_session(&session.id)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.connection.as_str().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// What was posted to each connection, and which were closed, in order.
    async fn received(&self) -> (Vec<(String, Value)>, Vec<String>) {
        let mut posted = Vec::new();
        let mut closed = Vec::new();
        for request in self.management.received_requests().await.unwrap() {
            let connection = request.url.path().rsplit('/').next().unwrap_or_default().to_owned();
            assert_eq!(
                request.url.path(),
                format!("/{STAGE}/@connections/{connection}"),
                "the stage's @connections API"
            );
            assert!(
                request
                    .headers
                    .get("authorization")
                    .is_some_and(|v| v.to_str().unwrap_or_default().contains("/execute-api/aws4_request")),
                "signed for execute-api"
            );
            match request.method.as_str() {
                "POST" => posted.push((connection, serde_json::from_slice(&request.body).unwrap())),
                "DELETE" => closed.push(connection),
                other => panic!("unexpected {other}"),
            }
        }
        (posted, closed)
    }
}

fn session_event(session: &CheckoutSession) -> EventRecord {
    EventRecord::new(
        EventType::CheckoutSessionAttemptStarted,
        ResourceKind::CheckoutSession,
        session.id.as_str(),
        2,
        Some("shop".into()),
        Cause::Customer,
        Utc::now(),
        checkout::events::empty_data(),
    )
}

async fn connects_only_open_sessions_within_their_limits(connections_table: Arc<dyn Table>) {
    let rig = rig(
        connections_table,
        LimitsConfig {
            per_client: 10,
            ..LimitsConfig::default()
        },
    )
    .await;
    let open = new_session(true);
    rig.store(&open).await;
    let mut closed = new_session(false);
    closed.status = SessionStatus::Expired;
    rig.store(&closed).await;

    assert_eq!(rig.connect("conn0", open.id.as_str(), "sw", "203.0.113.9").await, 200);
    let stored = rig.connections.of_session(&open.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].lang, checkout::pages::checkout::Lang::Sw);
    // An unknown, a malformed and a closed session are refused (the page then polls).
    assert_eq!(
        rig.connect("conn1", CheckoutSessionId::generate().as_str(), "en", "203.0.113.9")
            .await,
        404
    );
    assert_eq!(rig.connect("conn2", "cs_nope", "en", "203.0.113.9").await, 404);
    assert_eq!(rig.connect("conn3", closed.id.as_str(), "en", "203.0.113.9").await, 410);
    // At most a few pages per session.
    for n in 1..MAX_CONNECTIONS_PER_SESSION {
        assert_eq!(
            rig.connect(&format!("more{n}"), open.id.as_str(), "en", "203.0.113.9")
                .await,
            200
        );
    }
    assert_eq!(
        rig.connect("onetoomany", open.id.as_str(), "en", "203.0.113.9").await,
        429
    );
    assert_eq!(rig.connected(&open).await.len(), MAX_CONNECTIONS_PER_SESSION);
    // One address asking too often is refused like on the page's routes (10 per minute here).
    let other = new_session(true);
    rig.store(&other).await;
    let mut answers = Vec::new();
    for n in 0..4 {
        answers.push(
            rig.connect(&format!("burst{n}"), other.id.as_str(), "en", "203.0.113.9")
                .await,
        );
    }
    assert_eq!(
        answers,
        vec![200, 200, 429, 429],
        "the 11th request of the minute is refused"
    );
    assert_eq!(
        rig.connect("elsewhere", other.id.as_str(), "en", "198.51.100.7").await,
        200
    );
    // A disconnect forgets the connection; a second one (or one never recorded) is fine.
    assert_eq!(rig.disconnect("conn0").await, 200);
    assert_eq!(rig.disconnect("conn0").await, 200);
    assert!(!rig.connected(&open).await.contains(&"conn0".to_owned()));
    // Not a WebSocket API event at all.
    assert_eq!(
        rig.gateway.handle(&json!({"hello": 1})).await,
        json!({"statusCode": 400})
    );
}

async fn pushes_each_page_its_status_and_closes_when_it_is_final(connections_table: Arc<dyn Table>) {
    let rig = rig(connections_table, LimitsConfig::default()).await;
    Mock::given(method("POST"))
        .and(path(format!("/{STAGE}/@connections/closedtab")))
        .respond_with(
            ResponseTemplate::new(410)
                .insert_header("x-amzn-ErrorType", "GoneException")
                .set_body_json(json!({"message": "Gone"})),
        )
        .mount(&rig.management)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/{STAGE}/@connections/flaky")))
        .respond_with(ResponseTemplate::new(500).insert_header("x-amzn-ErrorType", "InternalServerErrorException"))
        .mount(&rig.management)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&rig.management)
        .await;

    let waiting = new_session(true);
    rig.store(&waiting).await;
    let bystander = new_session(true);
    rig.store(&bystander).await;
    for (connection, lang) in [("phone", "sw"), ("laptop", "en"), ("closedtab", "en"), ("flaky", "en")] {
        assert_eq!(
            rig.connect(connection, waiting.id.as_str(), lang, "203.0.113.9").await,
            200
        );
    }
    assert_eq!(
        rig.connect("other", bystander.id.as_str(), "en", "203.0.113.9").await,
        200
    );

    // The attempt started: every page of that session hears "waiting", in its own language.
    rig.push.consume(&session_event(&waiting)).await.unwrap();
    let (posted, closed) = rig.received().await;
    let mut to: Vec<&str> = posted.iter().map(|(c, _)| c.as_str()).collect();
    to.sort();
    assert_eq!(
        to,
        vec!["closedtab", "flaky", "laptop", "phone"],
        "never the other session's page"
    );
    for (connection, status) in &posted {
        assert_eq!(status["state"], "waiting", "{connection}");
        let message = status["message"].as_str().unwrap();
        if connection == "phone" {
            assert!(message.starts_with("Angalia simu yako"), "Kiswahili: {message}");
        } else {
            assert!(message.contains("Check your phone"), "{message}");
        }
        assert!(
            message.contains("KES 1,250") && message.contains("Duka la Mama"),
            "{message}"
        );
    }
    assert!(closed.is_empty(), "a waiting page keeps its channel");
    // The closed tab's connection is forgotten; the one whose push failed is kept (it polls).
    assert_eq!(rig.connected(&waiting).await, vec!["flaky", "laptop", "phone"]);
    assert_eq!(rig.connected(&bystander).await, vec!["other"]);

    // The session expired: each page gets the outcome once, and its channel is closed.
    rig.management.reset().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&rig.management)
        .await;
    let mut expired = rig.push.answers.service.repo.get(&waiting.id).await.unwrap().unwrap();
    expired.attempts.clear();
    expired.status = SessionStatus::Expired;
    rig.table.write(vec![SessionRepo::update(&expired)]).await.unwrap();
    rig.push.consume(&session_event(&waiting)).await.unwrap();
    let (posted, closed) = rig.received().await;
    assert_eq!(posted.len(), 3);
    for (connection, status) in &posted {
        assert_eq!(status["state"], "closed", "{connection}");
        assert_eq!(status["redirect_url"], "https://shop.example/cart");
    }
    let mut closed = closed;
    closed.sort();
    assert_eq!(closed, vec!["flaky", "laptop", "phone"]);
    assert!(rig.connected(&waiting).await.is_empty());

    // An event about something else, or about a session nobody watches, pushes nothing.
    rig.management.reset().await;
    let unrelated = EventRecord::new(
        EventType::PaymentCreated,
        ResourceKind::Payment,
        "pay_1",
        1,
        Some("shop".into()),
        Cause::Api,
        Utc::now(),
        checkout::events::empty_data(),
    );
    rig.push.consume(&unrelated).await.unwrap();
    let unwatched = new_session(true);
    rig.store(&unwatched).await;
    rig.push.consume(&session_event(&unwatched)).await.unwrap();
    assert!(rig.management.received_requests().await.unwrap().is_empty());
    // A payment's event reaches its session's pages (the payment names its session).
    let linked = EventRecord::new(
        EventType::PaymentCreated,
        ResourceKind::Payment,
        "pay_2",
        1,
        Some("shop".into()),
        Cause::Api,
        Utc::now(),
        checkout::events::data_of(&json!({"checkout_session": bystander.id.as_str()})),
    );
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&rig.management)
        .await;
    rig.push.consume(&linked).await.unwrap();
    let (posted, _) = rig.received().await;
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].0, "other");
}

#[tokio::test]
async fn connects_only_open_sessions_within_their_limits_in_memory() {
    connects_only_open_sessions_within_their_limits(Arc::new(MemoryTable::new())).await;
}

#[tokio::test]
async fn connects_only_open_sessions_within_their_limits_on_dynamodb() {
    connects_only_open_sessions_within_their_limits(support::dynamo_table().await).await;
}

#[tokio::test]
async fn pushes_each_page_its_status_and_closes_when_it_is_final_in_memory() {
    pushes_each_page_its_status_and_closes_when_it_is_final(Arc::new(MemoryTable::new())).await;
}

#[tokio::test]
async fn pushes_each_page_its_status_and_closes_when_it_is_final_on_dynamodb() {
    pushes_each_page_its_status_and_closes_when_it_is_final(support::dynamo_table().await).await;
}

#[test]
fn connection_ids_from_api_gateway_parse() {
    assert!(ConnectionId::parse("L0SM9cOFvHcCIhw=").is_ok());
}
