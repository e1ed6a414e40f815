//! `openapi.yaml` against the code:
//! - every route of `api::routes::ROUTES` is documented with its method, path, path parameters,
//!   authentication and scopes, and problem responses; no documented route is missing from the code;
//! - `GET /v1/openapi.json` serves exactly `openapi.yaml`;
//! - through the dev stack (every real handler): the documented scopes are the ones each route
//!   enforces (its scopes alone get past authorisation, no scope gets 403), every status a route
//!   answered here is documented, and the request examples, run in order (create, then read,
//!   approve, list), get documented success answers whose bodies match the documented schemas.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use checkout::api::routes::ROUTES;
use serde_json::{json, Value};
use support::Harness;

fn spec() -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).expect("openapi.yaml is YAML")
}

/// Follows a local `$ref`.
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("local $ref");
            resolve(
                spec,
                spec.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}")),
            )
        }
        None => value,
    }
}

fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            out.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    out
}

fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> &'a Value {
    &spec["paths"][path][method.to_lowercase()]
}

/// The scopes of which any one is enough (`security: [{bearerAuth: [s]}, ...]`); empty when public.
fn documented_scopes(operation: &Value) -> BTreeSet<String> {
    let security = operation.get("security").expect("every operation states its security");
    security
        .as_array()
        .expect("security list")
        .iter()
        .flat_map(|requirement| {
            let scopes = requirement["bearerAuth"].as_array().expect("bearerAuth");
            assert!(scopes.len() <= 1, "one scope per alternative: {requirement}");
            scopes
                .iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn problem_statuses(spec: &Value, operation: &Value) -> BTreeSet<String> {
    operation["responses"]
        .as_object()
        .expect("responses")
        .iter()
        .filter(|(_, r)| resolve(spec, r)["content"].get("application/problem+json").is_some())
        .map(|(status, _)| status.clone())
        .collect()
}

// ------------------------------------------------------------------------------------- a small JSON Schema check

/// The subset of JSON Schema `openapi.yaml` uses: `$ref`, `oneOf`, `type` (one or a list),
/// `enum`, `required`, `properties`, `additionalProperties`, `items`.
fn validate(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(spec, schema);
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        return if branches.iter().any(|b| validate(spec, b, value, at).is_ok()) {
            Ok(())
        } else {
            Err(format!("{at}: {value} matches no oneOf branch"))
        };
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.iter().any(|t| fits(t)) {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if !values.contains(value) {
            return Err(format!("{at}: {value} is not one of {values:?}"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: required {name} is missing from {value}"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(property) => validate(spec, property, item, &format!("{at}.{key}"))?,
                None => {
                    if let Some(extra) = schema.get("additionalProperties").filter(|e| e.is_object()) {
                        validate(spec, extra, item, &format!("{at}.{key}"))?;
                    }
                }
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            validate(spec, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------- static checks

#[test]
fn every_route_is_documented_with_its_auth_and_problems_and_nothing_else() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.1.0");
    let version = spec["info"]["version"].as_str().expect("info.version");
    assert_eq!(version.split('.').count(), 3, "info.version is semver");
    let documented: BTreeSet<(String, String)> = operations(&spec).into_iter().map(|(m, p, _)| (m, p)).collect();
    let in_code: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(
        documented.difference(&in_code).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented routes the code does not serve"
    );
    assert_eq!(
        in_code.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes missing from openapi.yaml"
    );
    let mut ids = BTreeSet::new();
    for route in ROUTES {
        let op = operation(&spec, route.method.as_str(), route.path);
        let name = format!("{} {}", route.method, route.path);
        assert!(
            ids.insert(op["operationId"].as_str().expect("operationId").to_owned()),
            "{name}: operationId"
        );
        // Path parameters.
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(&spec, p))
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        let in_path: BTreeSet<String> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        assert_eq!(declared, in_path, "{name}: path parameters");
        // Authentication and scopes.
        let scopes = documented_scopes(op);
        let expected: BTreeSet<String> = route.scopes.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(scopes, expected, "{name}: documented scopes");
        // Problems.
        let responses = op["responses"].as_object().expect("responses");
        // A form post's success is its redirect (`303 See Other`).
        assert!(
            responses.keys().any(|s| s.starts_with('2') || s == "303"),
            "{name}: a success response"
        );
        if route.path.starts_with("/v1/") {
            let problems = problem_statuses(&spec, op);
            assert!(!problems.is_empty(), "{name}: documents its problem responses");
            if route.authenticated {
                for status in ["401", "403"] {
                    assert!(problems.contains(status), "{name}: {status} problem");
                }
            }
        }
    }
}

#[test]
fn the_served_document_is_openapi_yaml() {
    let served: Value = serde_json::from_str(checkout::api::openapi::OPENAPI_JSON).expect("JSON");
    assert_eq!(served, spec(), "build.rs converted openapi.yaml");
}

// ------------------------------------------------------------------------------------- through the dev stack

struct Client<'a> {
    harness: &'a Harness,
    /// Shows redirects instead of following them: the documented answer is the one checked.
    http: reqwest::Client,
    spec: &'a Value,
    /// Every status each operation answered, to compare with the documentation.
    seen: BTreeMap<(String, String), BTreeSet<u16>>,
    key: u32,
}

impl Client<'_> {
    /// Sends a request to the route `(method, template)` at `path`; checks the answer's status is
    /// documented and, for a documented JSON body, that the body matches its schema.
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = self.harness.url(path);
        let mut request = self
            .http
            .request(method.parse().expect("method"), &url)
            .header("x-forwarded-for", "196.201.214.200");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let op = operation(self.spec, method, template).clone();
        let needs_key = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| resolve(self.spec, p)["name"] == "Idempotency-Key");
        if needs_key {
            self.key += 1;
            request = request.header("idempotency-key", format!("openapi-{}", self.key));
        }
        if let Some(body) = body {
            let form = resolve(self.spec, &op["requestBody"])["content"]
                .get("application/x-www-form-urlencoded")
                .is_some();
            request = if form { request.form(body) } else { request.json(body) };
        }
        let response = request.send().await.expect("the stack answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        // A JSON body as its value; any other (a page, a script) as a string.
        let text = response.text().await.unwrap_or_default();
        let value: Value = match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(_) if text.is_empty() => Value::Null,
            Err(_) => Value::String(text),
        };
        let name = format!("{method} {template}");
        self.seen
            .entry((method.to_owned(), template.to_owned()))
            .or_default()
            .insert(status);
        let documented = resolve(
            self.spec,
            op["responses"]
                .get(status.to_string())
                .unwrap_or_else(|| panic!("{name} answered {status}, which openapi.yaml does not document: {value}")),
        );
        if let Some(content) = documented["content"].as_object() {
            let (_, described) = content
                .iter()
                .find(|(media, _)| content_type.starts_with(media.as_str()))
                .unwrap_or_else(|| {
                    let documented: Vec<&String> = content.keys().collect();
                    panic!("{name} {status}: {content_type}, documented {documented:?}")
                });
            if let Err(error) = validate(self.spec, &described["schema"], &value, "body") {
                panic!("{name} {status}: {error}");
            }
        }
        (status, value)
    }
}

/// A chain as the audit routes show it: numbered 1, 2, 3 ..., each entry linked to the one
/// before (the first to 64 zeros), and every hash recomputed from the entry as received by the
/// rule the `AuditEntry` schema documents (SHA-256 of `prev_hash`, a newline and the canonical
/// JSON of the entry without `hash`, `object` and `id`).
fn assert_intact_chain(chain: &str, entries: &[Value]) {
    use checkout::audit::entry::{canonical_json, hash_lines, GENESIS};
    assert!(!entries.is_empty(), "{chain}: no entries");
    let mut prev = GENESIS.to_owned();
    for (i, entry) in entries.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(entry["seq"], seq, "{chain}: oldest first, without gaps: {entry}");
        assert_eq!(entry["chain"], chain, "{entry}");
        assert_eq!(entry["id"], format!("{chain}:{seq}").as_str(), "{entry}");
        assert_eq!(
            entry["prev_hash"],
            prev.as_str(),
            "{chain}:{seq} links to the entry before"
        );
        let mut document = entry.clone();
        let fields = document.as_object_mut().expect("an entry is an object");
        for shown_only in ["hash", "object", "id"] {
            fields.remove(shown_only);
        }
        let canonical = canonical_json(&document);
        let recomputed = hash_lines([prev.as_str(), canonical.as_str()]);
        assert_eq!(
            entry["hash"],
            recomputed.as_str(),
            "{chain}:{seq}: the documented rule recomputes its hash"
        );
        prev = recomputed;
    }
}

fn example(spec: &Value, method: &str, path: &str) -> Value {
    let op = operation(spec, method, path);
    let body = resolve(spec, &op["requestBody"]);
    let media = body["content"].as_object().and_then(|c| c.values().next());
    media.map(|m| m["example"].clone()).unwrap_or(Value::Null)
}

fn concrete(template: &str, ids: &BTreeMap<&str, String>) -> String {
    let mut path = template.to_owned();
    for (name, value) in ids {
        path = path.replace(name, value);
    }
    path
}

#[tokio::test]
async fn the_documented_scopes_statuses_examples_and_schemas_are_the_real_ones() {
    let spec = spec();
    let mut options = devstack::Options::for_tests();
    // Above KES 1000 a payout waits for approval, so approve and reject can be exercised.
    options.payouts.config.approval_threshold = Some(1000);
    let harness = Harness::start_with(options).await;
    let mut client = Client {
        harness: &harness,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        spec: &spec,
        seen: BTreeMap::new(),
        key: 0,
    };
    let token = harness.token.clone();
    let approver = harness.colleague("approver-b", devstack::ALL_SCOPES);

    // Scopes: a token with only one documented alternative gets past authorisation; a token with
    // no scope is refused with 403; no token is 401.
    let nobody = harness.token_for("nobody", &["none"]);
    for route in ROUTES.iter().filter(|r| r.authenticated) {
        let (method, template) = (route.method.as_str(), route.path);
        let path = template.replace("{id}", "x_unknown");
        let body = Some(json!({}));
        let (status, _) = client.call(method, template, &path, None, body.as_ref()).await;
        assert_eq!(status, 401, "{method} {template} without a token");
        let (status, _) = client.call(method, template, &path, Some(&nobody), body.as_ref()).await;
        assert_eq!(status, 403, "{method} {template} without its scope");
        for scope in route.scopes {
            let only = harness.token_for("merchant-a", &[scope]);
            let (status, value) = client.call(method, template, &path, Some(&only), body.as_ref()).await;
            assert!(
                status != 401 && status != 403,
                "{method} {template} with {scope}: {status} {value}"
            );
        }
    }

    // The examples, in a merchant's order.
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    let (status, payment) = client
        .call(
            "POST",
            "/v1/payments",
            "/v1/payments",
            Some(&token),
            Some(&example(&spec, "POST", "/v1/payments")),
        )
        .await;
    assert_eq!(status, 202, "{payment}");
    ids.insert("{id}", payment["id"].as_str().expect("id").to_owned());
    let path = concrete("/v1/payments/{id}", &ids);
    assert_eq!(
        client
            .call("GET", "/v1/payments/{id}", &path, Some(&token), None)
            .await
            .0,
        200
    );
    assert_eq!(
        client
            .call("GET", "/v1/payments", "/v1/payments?limit=5", Some(&token), None)
            .await
            .0,
        200
    );

    // The payment's events: created, then what Daraja answered.
    let (status, events) = client
        .call(
            "GET",
            "/v1/events",
            &format!("/v1/events?resource_id={}", ids["{id}"]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{events}");
    let event_id = events["data"][0]["id"]
        .as_str()
        .expect("an event of the payment")
        .to_owned();
    assert_eq!(
        client
            .call(
                "GET",
                "/v1/events/{id}",
                &format!("/v1/events/{event_id}"),
                Some(&token),
                None
            )
            .await
            .0,
        200
    );

    // Webhook endpoints: register, read, change, rotate, see an event's deliveries, delete,
    // redeliver (no endpoint left: nothing to send).
    let (status, endpoint) = client
        .call(
            "POST",
            "/v1/webhook-endpoints",
            "/v1/webhook-endpoints",
            Some(&token),
            Some(&example(&spec, "POST", "/v1/webhook-endpoints")),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    assert!(endpoint["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")));
    let endpoint_path = format!("/v1/webhook-endpoints/{}", endpoint["id"].as_str().expect("id"));
    for (method, template, path, body, expected) in [
        (
            "GET",
            "/v1/webhook-endpoints",
            "/v1/webhook-endpoints".to_owned(),
            None,
            200,
        ),
        ("GET", "/v1/webhook-endpoints/{id}", endpoint_path.clone(), None, 200),
        (
            "PATCH",
            "/v1/webhook-endpoints/{id}",
            endpoint_path.clone(),
            Some(example(&spec, "PATCH", "/v1/webhook-endpoints/{id}")),
            200,
        ),
        (
            "POST",
            "/v1/webhook-endpoints/{id}/rotate-secret",
            format!("{endpoint_path}/rotate-secret"),
            None,
            200,
        ),
        (
            "GET",
            "/v1/events/{id}/deliveries",
            format!("/v1/events/{event_id}/deliveries"),
            None,
            200,
        ),
        (
            "POST",
            "/v1/webhook-endpoints/{id}/redrive",
            format!("{endpoint_path}/redrive"),
            None,
            202,
        ),
        ("DELETE", "/v1/webhook-endpoints/{id}", endpoint_path.clone(), None, 204),
        (
            "POST",
            "/v1/events/{id}/redeliver",
            format!("/v1/events/{event_id}/redeliver"),
            None,
            202,
        ),
    ] {
        let (status, value) = client.call(method, template, &path, Some(&token), body.as_ref()).await;
        assert_eq!(status, expected, "{method} {template}: {value}");
    }

    let payout_example = example(&spec, "POST", "/v1/payouts");
    let mut payout_ids = Vec::new();
    for _ in 0..2 {
        let (status, payout) = client
            .call(
                "POST",
                "/v1/payouts",
                "/v1/payouts",
                Some(&token),
                Some(&payout_example),
            )
            .await;
        assert_eq!(status, 202, "{payout}");
        assert_eq!(payout["status"], "awaiting_approval");
        payout_ids.push(payout["id"].as_str().expect("id").to_owned());
    }
    let approve = format!("/v1/payouts/{}/approve", payout_ids[0]);
    assert_eq!(
        client
            .call("POST", "/v1/payouts/{id}/approve", &approve, Some(&approver), None)
            .await
            .0,
        200
    );
    let reject = format!("/v1/payouts/{}/reject", payout_ids[1]);
    assert_eq!(
        client
            .call("POST", "/v1/payouts/{id}/reject", &reject, Some(&approver), None)
            .await
            .0,
        200
    );
    // Reviewing it again: the documented 409.
    assert_eq!(
        client
            .call("POST", "/v1/payouts/{id}/reject", &reject, Some(&approver), None)
            .await
            .0,
        409
    );
    let get = format!("/v1/payouts/{}", payout_ids[0]);
    assert_eq!(
        client.call("GET", "/v1/payouts/{id}", &get, Some(&token), None).await.0,
        200
    );
    assert_eq!(
        client
            .call("GET", "/v1/payouts", "/v1/payouts", Some(&token), None)
            .await
            .0,
        200
    );

    let (status, registration) = client
        .call(
            "POST",
            "/v1/c2b/registrations",
            "/v1/c2b/registrations",
            Some(&token),
            Some(&example(&spec, "POST", "/v1/c2b/registrations")),
        )
        .await;
    assert_eq!(status, 200, "{registration}");
    let (status, expected) = client
        .call(
            "POST",
            "/v1/c2b/expected-payments",
            "/v1/c2b/expected-payments",
            Some(&token),
            Some(&example(&spec, "POST", "/v1/c2b/expected-payments")),
        )
        .await;
    assert_eq!(status, 201, "{expected}");
    let path = format!("/v1/c2b/expected-payments/{}", expected["id"].as_str().expect("id"));
    assert_eq!(
        client
            .call("GET", "/v1/c2b/expected-payments/{id}", &path, Some(&token), None)
            .await
            .0,
        200
    );

    // Safaricom's side, with the URLs the registration made (shown as a prefix only: the full
    // ones are what Daraja was given).
    let notification = example(&spec, "POST", "/c2b/validation/{token}");
    let shortcode = registration["shortcode"].as_str().expect("shortcode");
    let (validation_url, confirmation_url) = harness.stack.c2b_urls(shortcode, 0).await;
    let path_of = |url: &str| url[url.find("/c2b/").expect("a C2B path")..].to_owned();
    let validation = path_of(&validation_url);
    let (status, reply) = client
        .call(
            "POST",
            "/c2b/validation/{token}",
            &validation,
            None,
            Some(&notification),
        )
        .await;
    assert_eq!((status, reply["ResultCode"].as_str()), (200, Some("0")), "{reply}");
    let confirmation = path_of(&confirmation_url);
    assert_eq!(
        client
            .call(
                "POST",
                "/c2b/confirmation/{token}",
                &confirmation,
                None,
                Some(&notification)
            )
            .await
            .0,
        200
    );
    let mut listed = Value::Null;
    for _ in 0..100 {
        let (status, page) = client
            .call("GET", "/v1/c2b/payments", "/v1/c2b/payments", Some(&token), None)
            .await;
        assert_eq!(status, 200);
        if page["data"].as_array().is_some_and(|d| !d.is_empty()) {
            listed = page;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c2b_id = listed["data"][0]["id"].as_str().expect("the confirmation was recorded");
    let path = format!("/v1/c2b/payments/{c2b_id}");
    assert_eq!(
        client
            .call("GET", "/v1/c2b/payments/{id}", &path, Some(&token), None)
            .await
            .0,
        200
    );

    // The audit trail. Each resource's chain: the calls are recorded before their answers, the
    // state changes by the events function (and the C2B confirmation by the callback processor)
    // a moment later; until its chain names the merchant, a C2B payment's trail is a 404.
    let payment_id = ids["{id}"].clone();
    for (template, id, wanted) in [
        ("/v1/payments/{id}/audit", payment_id.as_str(), "payment.created"),
        ("/v1/payouts/{id}/audit", payout_ids[0].as_str(), "payout.approved"),
        ("/v1/c2b/payments/{id}/audit", c2b_id, "c2b.payment.received"),
    ] {
        let path = format!("{}?limit=100", template.replace("{id}", id));
        let mut entries = Vec::new();
        for _ in 0..100 {
            let (status, page) = client.call("GET", template, &path, Some(&token), None).await;
            assert!(status == 200 || status == 404, "{template}: {status} {page}");
            entries = page["data"].as_array().cloned().unwrap_or_default();
            if entries.iter().any(|e| e["action"] == wanted) {
                assert!(page["next_cursor"].is_null(), "{template}: one page holds it: {page}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            entries
                .iter()
                .any(|e| e["action"] == wanted && e["kind"] == "state_change"),
            "{template}: no {wanted} entry in {entries:?}"
        );
        assert_intact_chain(id, &entries);
    }
    // The payment's creation, as its caller made it (recorded before the answer; where in the
    // chain depends on when the events function appended the state change).
    let payment_path = format!("/v1/payments/{payment_id}/audit");
    let (status, chain) = client
        .call("GET", "/v1/payments/{id}/audit", &payment_path, Some(&token), None)
        .await;
    assert_eq!(status, 200, "{chain}");
    let created = chain["data"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["kind"] == "api_call"))
        .unwrap_or_else(|| panic!("the creating call is recorded: {chain}"));
    assert_eq!(
        (created["action"].as_str(), created["outcome"].as_str()),
        (Some("POST /v1/payments"), Some("202")),
        "{created}"
    );
    assert_eq!(created["actor"]["type"], "api");
    assert_eq!(created["actor"]["subject"], "merchant-a");
    assert_eq!(created["actor"]["merchant"], "merchant-a");
    assert_eq!(created["resource"], json!({"type": "payment", "id": payment_id}));
    // Pages follow next_cursor, oldest first.
    let (status, first) = client
        .call(
            "GET",
            "/v1/payments/{id}/audit",
            &format!("{payment_path}?limit=1"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!((status, &first["data"][0]["seq"]), (200, &json!(1)), "{first}");
    let cursor = first["next_cursor"].as_str().expect("more than one entry");
    let (status, second) = client
        .call(
            "GET",
            "/v1/payments/{id}/audit",
            &format!("{payment_path}?limit=1&cursor={cursor}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!((status, &second["data"][0]["seq"]), (200, &json!(2)), "{second}");
    // Unknown, and another merchant's: the same 404.
    let stranger = harness.token_for("merchant-b", &["audit:read"]);
    for (who, path) in [
        (&token, "/v1/payments/pay_unknown/audit".to_owned()),
        (&stranger, payment_path.clone()),
    ] {
        let (status, problem) = client
            .call("GET", "/v1/payments/{id}/audit", &path, Some(who.as_str()), None)
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (404, Some("not_found")),
            "{path}: {problem}"
        );
    }
    // The merchant's entries, filtered; bad filters are the documented 400.
    let (status, calls) = client
        .call(
            "GET",
            "/v1/audit",
            &format!("/v1/audit?kind=api_call&resource_id={payment_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{calls}");
    let calls = calls["data"].as_array().cloned().unwrap_or_default();
    assert!(
        !calls.is_empty()
            && calls
                .iter()
                .all(|e| e["kind"] == "api_call" && e["chain"] == payment_id.as_str()),
        "{calls:?}"
    );
    let (status, approvals) = client
        .call(
            "GET",
            "/v1/audit",
            "/v1/audit?action=POST%20/v1/payouts/%7Bid%7D/approve&from=2020-01-01T00:00:00Z",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{approvals}");
    assert!(
        approvals["data"].as_array().is_some_and(|d| d
            .iter()
            .any(|e| e["kind"] == "operator_action" && e["resource"]["id"] == payout_ids[0].as_str())),
        "{approvals}"
    );
    let (status, everything) = client
        .call("GET", "/v1/audit", "/v1/audit?limit=5", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{everything}");
    assert!(
        everything["next_cursor"].is_string(),
        "more than 5 entries: {everything}"
    );
    for query in [
        "kind=deleted",
        "action=%3Cscript%3E",
        "resource_id=pay-1",
        "from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
        "limit=0",
    ] {
        let (status, problem) = client
            .call("GET", "/v1/audit", &format!("/v1/audit?{query}"), Some(&token), None)
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("validation_failed")),
            "{query}: {problem}"
        );
    }

    // Hosted checkout: the shop's session, its customer's page (a browser's form posts, answered
    // 303 back to the page), the attempt's payment; then the shop expires a second session.
    let session_example = example(&spec, "POST", "/v1/checkout/sessions");
    let (status, session) = client
        .call(
            "POST",
            "/v1/checkout/sessions",
            "/v1/checkout/sessions",
            Some(&token),
            Some(&session_example),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["id"].as_str().expect("id").to_owned();
    let page = format!("/pay/{session_id}");
    let assets = checkout::pages::checkout::assets();
    let (script, stylesheet) = (assets[0].path, assets[1].path);
    for (method, template, path, body, expected) in [
        (
            "GET",
            "/v1/checkout/sessions/{id}",
            format!("/v1/checkout/sessions/{session_id}"),
            None,
            200,
        ),
        (
            "GET",
            "/v1/checkout/sessions",
            "/v1/checkout/sessions?status=open&limit=5".to_owned(),
            None,
            200,
        ),
        ("GET", "/pay/{session}", format!("{page}?lang=sw"), None, 200),
        ("GET", "/pay/{session}", "/pay/cs_unknown".to_owned(), None, 404),
        ("GET", "/pay/assets/{file}", script.to_owned(), None, 200),
        ("GET", "/pay/assets/{file}", stylesheet.to_owned(), None, 200),
        (
            "GET",
            "/pay/assets/{file}",
            "/pay/assets/pay-00000000.js".to_owned(),
            None,
            404,
        ),
        (
            "GET",
            "/pay/{session}/status",
            format!("{page}/status?lang=en"),
            None,
            200,
        ),
        (
            "POST",
            "/pay/{session}",
            page.clone(),
            Some(json!({"phone": "07123", "lang": "en"})),
            422,
        ),
        (
            "POST",
            "/pay/{session}",
            page.clone(),
            Some(example(&spec, "POST", "/pay/{session}")),
            303,
        ),
    ] {
        let auth = template.starts_with("/v1/").then_some(token.as_str());
        let (status, value) = client.call(method, template, &path, auth, body.as_ref()).await;
        assert_eq!(status, expected, "{method} {path}: {value}");
    }
    let status_path = format!("{page}/status?lang=en");
    let mut answer = Value::Null;
    for _ in 0..200 {
        let (status, value) = client
            .call("GET", "/pay/{session}/status", &status_path, None, None)
            .await;
        assert_eq!(status, 200, "{value}");
        answer = value;
        if answer["state"] == "paid" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer["state"], "paid", "{answer}");
    let session_path = format!("/v1/checkout/sessions/{session_id}");
    let (status, paid) = client
        .call("GET", "/v1/checkout/sessions/{id}", &session_path, Some(&token), None)
        .await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("completed")), "{paid}");
    let attempt_payment = paid["attempts"][0]["payment_id"].as_str().expect("an attempt");
    let (status, payment) = client
        .call(
            "GET",
            "/v1/payments/{id}",
            &format!("/v1/payments/{attempt_payment}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, payment["checkout_session"].as_str()),
        (200, Some(session_id.as_str())),
        "{payment}"
    );
    let cancel = example(&spec, "POST", "/pay/{session}/cancel");
    assert_eq!(
        client
            .call(
                "POST",
                "/pay/{session}/cancel",
                &format!("{page}/cancel"),
                None,
                Some(&cancel)
            )
            .await
            .0,
        303
    );
    let (status, problem) = client
        .call(
            "POST",
            "/v1/checkout/sessions/{id}/expire",
            &format!("{session_path}/expire"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("session_not_open")),
        "{problem}"
    );
    let (status, other) = client
        .call(
            "POST",
            "/v1/checkout/sessions",
            "/v1/checkout/sessions",
            Some(&token),
            Some(&session_example),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let other_id = other["id"].as_str().expect("id");
    let (status, expired) = client
        .call(
            "POST",
            "/v1/checkout/sessions/{id}/expire",
            &format!("/v1/checkout/sessions/{other_id}/expire"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, expired["status"].as_str(), expired["closed_by"].as_str()),
        (200, Some("expired"), Some("merchant")),
        "{expired}"
    );
    let (status, closed) = client
        .call(
            "GET",
            "/pay/{session}/status",
            &format!("/pay/{other_id}/status?lang=en"),
            None,
            None,
        )
        .await;
    assert_eq!((status, closed["state"].as_str()), (200, Some("closed")), "{closed}");

    let callback = example(&spec, "POST", "/callbacks/stk/{token}");
    for template in ROUTES.iter().map(|r| r.path).filter(|p| p.starts_with("/callbacks/")) {
        let path = template.replace("{token}", "pay_forged.0000");
        assert_eq!(
            client.call("POST", template, &path, None, Some(&callback)).await.0,
            200,
            "{template}"
        );
    }

    let ops = harness.token_for("ops", &["ops:read"]);
    assert_eq!(
        client.call("GET", "/v1/ready", "/v1/ready", Some(&ops), None).await.0,
        200
    );
    assert_eq!(client.call("GET", "/v1/health", "/v1/health", None, None).await.0, 200);
    let (status, document) = client
        .call("GET", "/v1/openapi.json", "/v1/openapi.json", None, None)
        .await;
    assert_eq!((status, &document), (200, &spec));

    // Every route was exercised.
    for route in ROUTES {
        assert!(
            client
                .seen
                .contains_key(&(route.method.to_string(), route.path.to_owned())),
            "{} {} was not exercised",
            route.method,
            route.path
        );
    }
    harness.stack.shutdown().await;
}
