//! `template.yaml` (and `samconfig.toml`, `docs/operations.md`) against the code:
//! - every function: its crate and binary exist, it is declared in `config::FUNCTIONS`, built by
//!   cargo-lambda for arm64 on `provided.al2023`, with memory, timeout, tracing, its own log
//!   group with retention, and a release (alias, deployment preference, rollback alarm);
//! - every route of `api::routes::ROUTES` is an HttpApi event of the function the table names,
//!   with a throttle, and the template has no route the code does not know;
//! - every variable a function requires (`config::FUNCTIONS`) is set for it, none it does not
//!   declare is, and the data variables point at the right resource;
//! - IAM: no wildcard action; data actions only on the table, its indexes, the queues, the
//!   secrets, the KMS key and the audit digests' bucket, exactly the ones each function uses (the
//!   table below; for the secrets, the `SECRET_ID_<PART>` its declaration requires, which its
//!   wiring loads exactly); the bucket only ever gets new objects (the sweeper's PutObject under
//!   the code's key prefix), never a read, a delete or a retention change;
//! - timeouts: every function's `Timeout` exceeds its worst wait on Daraja, computed from the
//!   code (`wiring::invocation_worst_case`: retry policy, per-request timeout, batch and sweep
//!   budgets) plus `wiring::NON_DARAJA_MARGIN`; API functions stay under API Gateway's 30 s;
//! - secrets: one per concern, each created with only its own fields;
//! - queues: a DLQ each, a consumer each, visibility at least 6x its timeout, encryption, partial
//!   batch responses; the table: on-demand, PITR, TTL on the code's attribute, the code's indexes;
//! - the audit digests' archive: S3 Object Lock in compliance mode for `AuditDigestRetentionDays`,
//!   versioned, encrypted, never public, TLS only, kept when the stack goes;
//! - alarms and the dashboard read metrics the code emits, with exactly those names and
//!   dimension sets (see `checkout::metrics`), and every alarm notifies the alarm topic;
//! - `samconfig.toml` has a profile per stage, using only template parameters;
//! - `docs/operations.md` covers every alarm, parameter and variable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use checkout::api::routes::ROUTES;
use checkout::config::{vars, FUNCTIONS};
use checkout::secrets::SecretPart;
use checkout::store::Index;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// YAML with CloudFormation's short tags, as JSON with the long forms (`!Ref X` → `{"Ref": "X"}`,
/// `!GetAtt A.B` → `{"Fn::GetAtt": "A.B"}`, `!If [...]` → `{"Fn::If": [...]}`).
fn to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_norway::to_string(&other).unwrap_or_default().trim().to_owned(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = match name {
                "Ref" | "Condition" => name.to_owned(),
                other => format!("Fn::{other}"),
            };
            let mut object = serde_json::Map::new();
            object.insert(key, to_json(tagged.value));
            Value::Object(object)
        }
    }
}

struct Template {
    doc: Value,
}

impl Template {
    fn load() -> Template {
        let yaml: serde_norway::Value = serde_norway::from_str(&read("template.yaml")).expect("template.yaml is YAML");
        Template { doc: to_json(yaml) }
    }

    fn resources(&self) -> &serde_json::Map<String, Value> {
        self.doc["Resources"].as_object().expect("Resources")
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources().iter().filter(move |(_, r)| r["Type"] == kind)
    }

    fn resource(&self, name: &str) -> &Value {
        self.resources()
            .get(name)
            .unwrap_or_else(|| panic!("no resource {name}"))
    }

    /// function directory → (logical id, resource)
    fn functions(&self) -> BTreeMap<String, (String, Value)> {
        let mut out = BTreeMap::new();
        for (id, resource) in self.of_type("AWS::Serverless::Function") {
            let code_uri = resource["Properties"]["CodeUri"].as_str().expect("CodeUri");
            let dir = code_uri
                .strip_prefix("functions/")
                .unwrap_or_else(|| panic!("{id}: CodeUri {code_uri} is not under functions/"));
            assert!(
                out.insert(dir.to_owned(), (id.clone(), resource.clone())).is_none(),
                "two resources build functions/{dir}"
            );
        }
        out
    }

    /// The Allow statements of a function's policies (inline Policies, or its explicit Role).
    fn statements(&self, id: &str, function: &Value) -> Vec<Value> {
        let properties = &function["Properties"];
        let mut statements = Vec::new();
        let mut push = |statement: &Value| {
            // `!If [HasKmsKey, {...}, !Ref AWS::NoValue]`: the statement when the condition holds.
            let statement = match statement.get("Fn::If") {
                Some(branches) => &branches[1],
                None => statement,
            };
            statements.push(statement.clone());
        };
        if let Some(role) = properties.get("Role") {
            let role_id = role["Fn::GetAtt"]
                .as_str()
                .and_then(|s| s.strip_suffix(".Arn"))
                .unwrap_or_else(|| panic!("{id}: Role must be !GetAtt <Role>.Arn"));
            for policy in self.resource(role_id)["Properties"]["Policies"]
                .as_array()
                .expect("Policies")
            {
                for statement in policy["PolicyDocument"]["Statement"].as_array().expect("Statement") {
                    push(statement);
                }
            }
        } else {
            for policy in properties["Policies"].as_array().map(Vec::as_slice).unwrap_or_default() {
                for statement in policy["Statement"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    push(statement);
                }
            }
        }
        statements
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// Every `Ref`/`GetAtt`/`Sub` target named inside `value` (`Table`, `Table.Arn`, `${Table.Arn}/index/gsi1`).
fn references(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("Ref", Value::String(s)) | ("Fn::GetAtt", Value::String(s)) => out.push(s.clone()),
                    ("Fn::Sub", Value::String(s)) => out.push(s.clone()),
                    _ => out.extend(references(v)),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| out.extend(references(v))),
        _ => {}
    }
    out
}

/// The resources (by logical id) a data statement's Resource names: `Table`, `Table/index/gsi3`,
/// `CallbackQueue`, `DarajaAppSecret`, `KmsKeyArn`.
fn resource_targets(resource: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for reference in references(resource) {
        let target = reference.replace("${", "").replace('}', "").replace(".Arn", "");
        out.insert(target);
    }
    for literal in strings(resource) {
        assert!(literal != "*", "a data statement grants every resource");
        out.insert(literal);
    }
    out
}

fn globals(template: &Template) -> &Value {
    &template.doc["Globals"]["Function"]
}

// ------------------------------------------------------------------------------------- functions

#[test]
fn every_function_has_a_binary_a_declaration_and_a_safe_release() {
    let template = Template::load();
    let functions = template.functions();
    let dirs: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let in_template: BTreeSet<String> = functions.keys().cloned().collect();
    assert_eq!(
        dirs, in_template,
        "every crate under functions/ is a template function and back"
    );
    let declared: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.function.to_owned()).collect();
    assert_eq!(
        declared, in_template,
        "config::FUNCTIONS declares exactly the template's functions"
    );

    let globals = globals(&template);
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"], serde_json::json!(["arm64"]));
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["Tracing"], "Active");
    assert_eq!(globals["AutoPublishAlias"], "live");
    assert!(globals["DeploymentPreference"]["Type"].is_object() || globals["DeploymentPreference"]["Type"].is_string());
    let stage_config = &template.doc["Mappings"]["StageConfig"];
    assert_eq!(stage_config["dev"]["DeploymentType"], "AllAtOnce");
    assert!(stage_config["prod"]["DeploymentType"]
        .as_str()
        .is_some_and(|t| t.starts_with("Canary")));

    let mut log_groups = BTreeSet::new();
    for (dir, (id, function)) in &functions {
        assert_eq!(function["Metadata"]["BuildMethod"], "rust-cargolambda", "{id}");
        let properties = &function["Properties"];
        for key in ["Runtime", "Architectures", "Handler"] {
            assert!(properties.get(key).is_none(), "{id}: {key} comes from Globals");
        }
        // The binary cargo-lambda builds exists in the crate.
        // A crate with several binaries names the function's (SAM: `BuildProperties.Binary`).
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or(dir);
        let bins = read(&format!("functions/{dir}/Cargo.toml")).matches("[[bin]]").count();
        assert!(
            bins == 1 || function["Metadata"]["BuildProperties"]["Binary"].is_string(),
            "{id}: functions/{dir} has {bins} binaries; name the function's in Metadata.BuildProperties.Binary"
        );
        let manifest = read(&format!("functions/{dir}/Cargo.toml"));
        let bin_section = manifest
            .split("[[bin]]")
            .skip(1)
            .find(|section| section.contains(&format!("name = \"{binary}\"")))
            .unwrap_or_else(|| panic!("{id}: functions/{dir}/Cargo.toml has no [[bin]] {binary}"));
        let path = bin_section
            .lines()
            .find_map(|l| l.trim().strip_prefix("path = \""))
            .and_then(|p| p.strip_suffix('"'))
            .unwrap_or("src/main.rs");
        assert!(
            root().join("functions").join(dir).join(path).is_file(),
            "{id}: {path} missing"
        );
        // Sized and bounded.
        let memory = properties["MemorySize"]
            .as_u64()
            .unwrap_or_else(|| panic!("{id}: MemorySize"));
        assert!((128..=1024).contains(&memory), "{id}: MemorySize {memory}");
        let timeout = properties["Timeout"]
            .as_u64()
            .unwrap_or_else(|| panic!("{id}: Timeout"));
        assert!((1..=900).contains(&timeout), "{id}: Timeout {timeout}");
        // Its own log group, with retention.
        let group = properties["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup must !Ref a log group"));
        assert!(log_groups.insert(group.to_owned()), "{id}: log group {group} shared");
        let group_resource = template.resource(group);
        assert_eq!(group_resource["Type"], "AWS::Logs::LogGroup");
        assert!(
            group_resource["Properties"].get("RetentionInDays").is_some(),
            "{group}: retention"
        );
        // Released through the alias, rolled back by an alarm on the new version.
        let alarms = references(&properties["DeploymentPreference"]["Alarms"]);
        let release_alarm = format!("{}ReleaseErrorsAlarm", id.trim_end_matches("Function"));
        assert!(alarms.contains(&release_alarm), "{id}: rollback alarm {release_alarm}");
        let dims = &template.resource(&release_alarm)["Properties"]["Dimensions"];
        assert!(
            dims.as_array()
                .is_some_and(|d| d.iter().any(|d| d["Name"] == "ExecutedVersion")),
            "{release_alarm} watches the version being released"
        );
        let has_http = properties["Events"]
            .as_object()
            .is_some_and(|e| e.values().any(|e| e["Type"] == "HttpApi"));
        if has_http {
            // Its own HTTP 500 answers roll it back too; never the API-wide 5xx alarm, which
            // cannot tell the versions apart (and would undo the release fixing an incident).
            let release_5xx = format!("{}ReleaseServerErrorsAlarm", id.trim_end_matches("Function"));
            assert!(alarms.contains(&release_5xx), "{id}: rollback alarm {release_5xx}");
            let dims = &template.resource(&release_5xx)["Properties"]["Dimensions"];
            assert!(
                dims.as_array()
                    .is_some_and(|d| d.iter().any(|d| d["Name"] == "Version")),
                "{release_5xx} watches the version being released"
            );
        }
        assert!(
            !alarms.contains(&"ApiServerErrorsAlarm".to_owned()),
            "{id}: rolls back on its own version's failures"
        );
    }
}

#[test]
fn every_variable_a_function_requires_is_set_and_none_other() {
    let template = Template::load();
    let ambient: BTreeSet<String> = globals(&template)["Environment"]["Variables"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(
        ambient,
        BTreeSet::from(["RUST_LOG".to_owned()]),
        "Globals set only RUST_LOG"
    );
    // Where each data variable must point.
    let targets = BTreeMap::from([
        (vars::TABLE_NAME, "Table"),
        (vars::SECRET_ID_DARAJA_APP, "DarajaAppSecret"),
        (vars::SECRET_ID_B2C_INITIATOR, "B2cInitiatorSecret"),
        (vars::SECRET_ID_CALLBACK_KEYS, "CallbackKeysSecret"),
        (vars::SECRET_ID_JWT, "JwtSecret"),
        (vars::B2C_SHORTCODE, "B2cShortcode"),
        (vars::CALLBACK_QUEUE_URL, "CallbackQueue"),
        (vars::PAYOUT_QUEUE_URL, "PayoutQueue"),
        (vars::DARAJA_BASE_URL, "DarajaBaseUrl"),
        (vars::B2C_CERTIFICATE_PEM, "B2cCertificatePem"),
        (vars::AUDIT_DIGEST_BUCKET, "AuditDigestBucket"),
    ]);
    // Optional for the code (the dev stack has no bucket), never for a deployment: without it the
    // sweeper keeps digests in the table only, where the table's writers could rewrite them.
    let sweeper_env = &template.functions()["timeout-sweeper"].1["Properties"]["Environment"]["Variables"];
    assert!(
        sweeper_env.get(vars::AUDIT_DIGEST_BUCKET).is_some(),
        "the sweeper archives audit digests: {} must be set",
        vars::AUDIT_DIGEST_BUCKET
    );
    for (dir, (id, function)) in template.functions() {
        let declared = checkout::config::function_vars(&dir).unwrap_or_else(|| panic!("{dir} undeclared"));
        let env = function["Properties"]["Environment"]["Variables"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for name in declared.required {
            assert!(
                env.contains_key(*name),
                "{id} ({dir}) requires {name}, which the template does not set"
            );
        }
        for (name, value) in &env {
            assert!(
                declared.declares(name),
                "{id} ({dir}) is given {name}, which config::FUNCTIONS does not declare for it"
            );
            if let Some(target) = targets.get(name.as_str()) {
                assert!(
                    references(value).iter().any(|r| r == target),
                    "{id}: {name} must come from {target}"
                );
            }
        }
    }
}

// ------------------------------------------------------------------------------------- timeouts

/// The environment a function gets from the template, as far as the test can know it: literal
/// values as they are, `!Ref Parameter` as the parameter's default, anything else (a `!Sub`, an
/// `!If`) as the example value of `config::examples`.
fn template_env(template: &Template, dir: &str, function: &Value) -> std::collections::HashMap<String, String> {
    let declared = checkout::config::function_vars(dir).unwrap_or_else(|| panic!("{dir} undeclared"));
    let parameters = &template.doc["Parameters"];
    let mut env = std::collections::HashMap::new();
    for (name, value) in function["Properties"]["Environment"]["Variables"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        if !declared.declares(&name) {
            continue; // another test refuses it
        }
        let text = match &value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Object(o) => match o.get("Ref").and_then(Value::as_str) {
                Some(parameter) => match &parameters[parameter]["Default"] {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                },
                None => None,
            },
            _ => None,
        };
        let text = text.unwrap_or_else(|| checkout::config::examples::value(&name).to_owned());
        env.insert(name, text);
    }
    env
}

/// The SQS event source's batch size, for a queue consumer.
fn sqs_batch_size(function: &Value) -> Option<u32> {
    function["Properties"]["Events"]
        .as_object()?
        .values()
        .find(|e| e["Type"] == "SQS")
        .map(|e| e["Properties"]["BatchSize"].as_u64().unwrap_or(10) as u32)
}

#[test]
fn every_function_timeout_exceeds_its_worst_case_wait_on_daraja() {
    let template = Template::load();
    let mut checked = BTreeSet::new();
    for (dir, (id, function)) in template.functions() {
        let timeout = std::time::Duration::from_secs(function["Properties"]["Timeout"].as_u64().expect("Timeout"));
        let settings = checkout::config::for_function_from_map(&dir, template_env(&template, &dir, &function))
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        let worst = checkout::wiring::invocation_worst_case(&settings, sqs_batch_size(&function))
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        if let Some(worst) = worst {
            let needed = worst + checkout::wiring::NON_DARAJA_MARGIN;
            assert!(
                timeout > needed,
                "{id} ({dir}): Timeout {timeout:?} does not exceed its worst wait on Daraja, {worst:?}, plus {:?}",
                checkout::wiring::NON_DARAJA_MARGIN
            );
            checked.insert(dir.clone());
        }
        // API Gateway's HTTP API gives up on an integration after 30 s: a synchronous function
        // must finish (and answer) before that.
        let http = function["Properties"]["Events"]
            .as_object()
            .is_some_and(|e| e.values().any(|e| e["Type"] == "HttpApi"));
        if http {
            assert!(
                timeout < std::time::Duration::from_secs(30),
                "{id}: an API function's Timeout must stay under API Gateway's 30 s"
            );
        }
    }
    // Every function whose code calls Daraja was checked.
    for dir in ["initiate", "status", "timeout-sweeper", "b2c-payout", "c2b-api"] {
        assert!(
            checked.contains(dir),
            "{dir} calls Daraja: wiring::daraja_use must say how"
        );
    }
}

#[test]
fn the_budget_model_counts_tokens_retries_backoff_and_batches() {
    use checkout::daraja::{Operation, RetryPolicy};
    use std::time::Duration;
    let once = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };
    let t = Duration::from_secs(6);
    // Token (6) + a refused token's request (6) + a fresh token (6) + the push (6).
    assert_eq!(
        checkout::wiring::worst_call(once, t, Operation::StkPush),
        Duration::from_secs(24)
    );
    let three = RetryPolicy::default();
    let token = t * 3 + three.backoff_cap(1) + three.backoff_cap(2);
    assert_eq!(
        checkout::wiring::worst_call(three, t, Operation::B2cPayment),
        token * 2 + t * 4 + three.backoff_cap(1) + three.backoff_cap(2)
    );
    // A batch of 10 with 4 at a time is three rounds of one call.
    let env = |pairs: &[(&str, &str)]| {
        let mut env = checkout::config::examples::env("b2c-payout", false);
        env.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        checkout::config::for_function_from_map("b2c-payout", env).unwrap()
    };
    let settings = env(&[
        (vars::DARAJA_TIMEOUT_MS, "6000"),
        (vars::PAYOUT_WORKER_CONCURRENCY, "4"),
    ]);
    let one = checkout::wiring::invocation_worst_case(&settings, Some(4))
        .unwrap()
        .unwrap();
    let three_rounds = checkout::wiring::invocation_worst_case(&settings, Some(10))
        .unwrap()
        .unwrap();
    assert_eq!(three_rounds, one * 3);
    assert_eq!(one, checkout::wiring::worst_call(three, t, Operation::B2cPayment));
    // The sweep: its budget, a turn on the pace, the slowest call started last, then the audit
    // digests' budget and their last S3 put.
    let mut env = checkout::config::examples::env("timeout-sweeper", false);
    env.insert(vars::SWEEP_TIME_BUDGET_SECONDS.into(), "30".into());
    env.insert(vars::DARAJA_TIMEOUT_MS.into(), "6000".into());
    let sweeper = checkout::config::for_function_from_map("timeout-sweeper", env).unwrap();
    let worst = checkout::wiring::invocation_worst_case(&sweeper, None)
        .unwrap()
        .unwrap();
    let digests = checkout::audit::digest::DIGEST_TIME_BUDGET + checkout::audit::s3::OPERATION_TIMEOUT;
    assert!(
        worst >= Duration::from_secs(30 + 24) + digests && worst < Duration::from_secs(30 + 24 + 2) + digests,
        "{worst:?}"
    );
    // Functions that never call Daraja have no such bound.
    let processor = checkout::config::for_function_from_map(
        "callback-processor",
        checkout::config::examples::env("callback-processor", false),
    )
    .unwrap();
    assert_eq!(
        checkout::wiring::invocation_worst_case(&processor, Some(10)).unwrap(),
        None
    );
}

// ------------------------------------------------------------------------------------- routes

#[test]
fn every_route_has_its_handler_and_a_throttle() {
    let template = Template::load();
    let mut in_template = BTreeSet::new();
    for (dir, (id, function)) in template.functions() {
        for (name, event) in function["Properties"]["Events"]
            .as_object()
            .cloned()
            .unwrap_or_default()
        {
            if event["Type"] != "HttpApi" {
                continue;
            }
            let p = &event["Properties"];
            assert_eq!(p["ApiId"]["Ref"], "HttpApi", "{id}.{name}");
            let key = (
                p["Method"].as_str().expect("Method").to_owned(),
                p["Path"].as_str().expect("Path").to_owned(),
                dir.clone(),
            );
            assert!(in_template.insert(key), "{id}.{name} twice");
        }
    }
    let in_code: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned(), r.function.to_owned()))
        .collect();
    let missing: Vec<_> = in_code.difference(&in_template).collect();
    let unknown: Vec<_> = in_template.difference(&in_code).collect();
    assert!(
        missing.is_empty(),
        "routes with no handler in template.yaml: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "template routes the code does not serve: {unknown:?}"
    );

    let api = &template.resource("HttpApi")["Properties"];
    let settings = api["RouteSettings"].as_object().expect("RouteSettings");
    for route in ROUTES {
        let key = format!("{} {}", route.method, route.path);
        let setting = settings.get(&key).unwrap_or_else(|| panic!("no throttle for {key}"));
        assert!(setting.get("ThrottlingRateLimit").is_some() && setting.get("ThrottlingBurstLimit").is_some());
    }
    assert_eq!(
        settings.len(),
        ROUTES.len(),
        "a throttle for a route that does not exist fails the deploy"
    );
    assert!(api["DefaultRouteSettings"].get("ThrottlingRateLimit").is_some());
    assert!(api["CorsConfiguration"]["AllowOrigins"]["Ref"] == "CorsAllowOrigins");
    let log_format = api["AccessLogSettings"]["Format"].as_str().expect("access log format");
    assert!(log_format.contains("$context.routeKey"));
    assert!(
        !log_format.contains("$context.path") && !log_format.contains("$context.http.path"),
        "raw paths carry callback tokens"
    );
    // A custom domain (C2B URLs may not contain "exec"), optional.
    assert_eq!(
        template.resource("ApiDomainName")["Type"],
        "AWS::ApiGatewayV2::DomainName"
    );
    assert_eq!(template.resource("ApiMapping")["Type"], "AWS::ApiGatewayV2::ApiMapping");
}

// ------------------------------------------------------------------------------------- IAM

/// Exactly the data permissions each function uses: (resource, actions). `Table/index/gsiN` for
/// queries; the KMS key only when `KmsKeyArn` is set (checked separately).
/// The template's secret resource of each part.
fn secret_resource(part: SecretPart) -> &'static str {
    match part {
        SecretPart::DarajaApp => "DarajaAppSecret",
        SecretPart::B2cInitiator => "B2cInitiatorSecret",
        SecretPart::CallbackKeys => "CallbackKeysSecret",
        SecretPart::Jwt => "JwtSecret",
    }
}

/// The IAM target (as [`resource_targets`] names it) of the archive's objects: the bucket, and
/// the first segment of the code's keys (`audit-digests/<merchant>/<seq>.json`).
fn audit_archive_target() -> String {
    let key = checkout::audit::digest::Digest::archive_key("shop", 1);
    let prefix = key.split('/').next().expect("a key prefix");
    assert!(
        key.starts_with(&format!("{prefix}/")) && !prefix.is_empty(),
        "{key}: digests are archived under a prefix of their own"
    );
    format!("AuditDigestBucket/{prefix}/*")
}

/// The live channel's connections, and no other API's: `@connections` of the WebSocket API's
/// stage (as [`resource_targets`] names the `!Sub` ARN).
const LIVE_CONNECTIONS_TARGET: &str =
    "arn:AWS::Partition:execute-api:AWS::Region:AWS::AccountId:LiveApi/Stage/*/@connections/*";

fn expected_permissions(function: &str) -> BTreeSet<(String, String)> {
    const WRITE: &[&str] = &[
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    ];
    const CONSUME: &[&str] = &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"];
    let mut out = BTreeSet::new();
    let mut grant = |resource: &str, actions: &[&str]| {
        for action in actions {
            out.insert((resource.to_owned(), (*action).to_owned()));
        }
    };
    // The secrets: exactly those its declaration requires (its wiring loads exactly those).
    let declared = checkout::config::function_vars(function).unwrap_or_else(|| panic!("{function} undeclared"));
    for part in SecretPart::ALL {
        if declared.required.contains(&checkout::config::secret_id_var(part)) {
            grant(secret_resource(part), &["secretsmanager:GetSecretValue"]);
        }
    }
    match function {
        "health" => {}
        "initiate" => {
            grant("Table", WRITE);
            // A merchant's checkout sessions (`GET /v1/checkout/sessions`).
            grant("Table/index/gsi1", &["dynamodb:Query"]);
        }
        "status" => {
            grant("Table", &["dynamodb:GetItem"]);
            grant("Table/index/gsi1", &["dynamodb:Query"]);
            grant("Table/index/gsi2", &["dynamodb:Query"]);
            grant("CallbackQueue", &["sqs:GetQueueAttributes"]);
            grant("PayoutQueue", &["sqs:GetQueueAttributes"]);
        }
        "callback" | "c2b-confirmation" => grant("CallbackQueue", &["sqs:SendMessage"]),
        "callback-processor" => {
            grant("Table", WRITE);
            grant("Table/index/gsi4", &["dynamodb:Query"]);
            grant("CallbackQueue", CONSUME);
        }
        "timeout-sweeper" => {
            grant("Table", WRITE);
            // gsi3: open payments, payouts, confirmations, due webhook deliveries; gsi1: the
            // merchant's webhook endpoints (a redriven event fans out).
            grant("Table/index/gsi1", &["dynamodb:Query"]);
            grant("Table/index/gsi3", &["dynamodb:Query"]);
            grant("PayoutQueue", &["sqs:SendMessage"]);
            // The audit digests' archive: new objects under the code's key prefix, nothing else
            // (no GetObject: only the offline `audit verify` reads it, with an operator's
            // credentials; no DeleteObject, no retention or legal-hold changes).
            grant(&audit_archive_target(), &["s3:PutObject"]);
        }
        "payouts-api" => {
            grant("Table", WRITE);
            grant("Table/index/gsi1", &["dynamodb:Query"]);
            grant("Table/index/gsi2", &["dynamodb:Query"]);
            grant("PayoutQueue", &["sqs:SendMessage"]);
        }
        "b2c-payout" => {
            grant("Table", WRITE);
            grant("PayoutQueue", CONSUME);
        }
        "c2b-validation" => {
            grant("Table", &["dynamodb:GetItem"]);
        }
        "c2b-api" => {
            grant("Table", WRITE);
            grant("Table/index/gsi1", &["dynamodb:Query"]);
            grant("Table/index/gsi2", &["dynamodb:Query"]);
        }
        "webhooks-api" => {
            grant(
                "Table",
                &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
            );
            // gsi1: a merchant's endpoints; gsi2: an event's deliveries; gsi4: an endpoint's
            // failed deliveries.
            grant("Table/index/gsi1", &["dynamodb:Query"]);
            grant("Table/index/gsi2", &["dynamodb:Query"]);
            grant("Table/index/gsi4", &["dynamodb:Query"]);
        }
        "events" => {
            // Marks events handled; creates and updates webhook deliveries.
            grant("Table", &["dynamodb:GetItem", "dynamodb:PutItem"]);
            // The merchant's webhook endpoints, when an event fans out.
            grant("Table/index/gsi1", &["dynamodb:Query"]);
            // The payment pages' live channel: a session's open connections, forgotten when
            // gone or finished; pushes to them and closes them.
            grant("LiveConnectionsTable/index/gsi1", &["dynamodb:Query"]);
            grant("LiveConnectionsTable", &["dynamodb:DeleteItem"]);
            grant(LIVE_CONNECTIONS_TARGET, &["execute-api:ManageConnections"]);
            grant(
                "Table/stream/*",
                &[
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                ],
            );
        }
        "checkout-live" => {
            // Is the session open?
            grant("Table", &["dynamodb:GetItem"]);
            grant("LiveConnectionsTable", &["dynamodb:PutItem", "dynamodb:DeleteItem"]);
            grant("LiveConnectionsTable/index/gsi1", &["dynamodb:Query"]);
        }
        other => panic!("no expected permissions for {other}: add them here"),
    }
    out
}

#[test]
fn iam_grants_each_function_exactly_its_data_actions_and_no_wildcards() {
    let template = Template::load();
    let data_services = [
        "dynamodb:",
        "sqs:",
        "secretsmanager:",
        "kms:",
        "s3:",
        "sns:",
        "execute-api:",
    ];
    for (dir, (id, function)) in template.functions() {
        let mut granted = BTreeSet::new();
        let mut kms = BTreeSet::new();
        for statement in template.statements(&id, &function) {
            if statement["Effect"] != "Allow" {
                continue;
            }
            let actions = strings(&statement["Action"]);
            for action in &actions {
                assert!(!action.contains('*'), "{id}: wildcard action {action}");
            }
            if !actions.iter().any(|a| data_services.iter().any(|s| a.starts_with(s))) {
                // Logs on the function's own log group, X-Ray (no resource-level permissions).
                assert!(
                    actions.iter().all(|a| a.starts_with("logs:") || a.starts_with("xray:")),
                    "{id}: unexpected actions {actions:?}"
                );
                continue;
            }
            let targets = resource_targets(&statement["Resource"]);
            for action in actions {
                for target in &targets {
                    if action.starts_with("kms:") {
                        assert_eq!(target, "KmsKeyArn", "{id}: KMS only on the stack's key");
                        kms.insert(action.clone());
                    } else {
                        granted.insert((target.clone(), action.clone()));
                    }
                }
            }
        }
        assert_eq!(granted, expected_permissions(&dir), "{id} ({dir}): data permissions");
        // The key: decrypt what it reads (secret, queue), encrypt what it sends.
        let reads = granted
            .iter()
            .any(|(_, a)| a == "secretsmanager:GetSecretValue" || a == "sqs:ReceiveMessage");
        let sends = granted.iter().any(|(_, a)| a == "sqs:SendMessage");
        let mut wanted = BTreeSet::new();
        if reads || sends {
            wanted.insert("kms:Decrypt".to_owned());
        }
        if sends {
            wanted.insert("kms:GenerateDataKey".to_owned());
        }
        assert_eq!(kms, wanted, "{id}: KMS permissions");
        // SAM attaches AWSLambdaSQSQueueExecutionRole (every queue) to SQS consumers with
        // generated roles: those get an explicit role.
        let consumes = function["Properties"]["Events"]
            .as_object()
            .is_some_and(|e| e.values().any(|e| e["Type"] == "SQS"));
        if consumes {
            assert!(
                function["Properties"].get("Role").is_some(),
                "{id}: SQS consumer needs its own role"
            );
        }
        // Likewise AWSLambdaDynamoDBExecutionRole (every stream) for stream consumers.
        let reads_stream = function["Properties"]["Events"]
            .as_object()
            .is_some_and(|e| e.values().any(|e| e["Type"] == "DynamoDB"));
        if reads_stream {
            assert!(
                function["Properties"].get("Role").is_some(),
                "{id}: stream consumer needs its own role"
            );
        }
    }
}

// ------------------------------------------------------------------------------------- state

#[test]
fn queues_table_secret_and_schedule_are_as_the_code_needs() {
    let template = Template::load();
    let queues: BTreeMap<&String, &Value> = template.of_type("AWS::SQS::Queue").collect();
    let dlqs: BTreeSet<String> = queues
        .values()
        .filter_map(|q| q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"].as_str())
        .map(|s| s.trim_end_matches(".Arn").to_owned())
        .collect();
    assert!(!dlqs.is_empty());
    for (name, queue) in &queues {
        let p = &queue["Properties"];
        assert!(
            p.get("SqsManagedSseEnabled").is_some() && p.get("KmsMasterKeyId").is_some(),
            "{name}: SSE-SQS, or the KMS key when given"
        );
        if dlqs.contains(*name) {
            assert_eq!(
                p["MessageRetentionPeriod"], 1_209_600,
                "{name}: a DLQ keeps messages 14 days"
            );
            continue;
        }
        assert!(p["RedrivePolicy"].is_object(), "{name} has no DLQ");
        // Its consumer: visibility at least 6x its timeout, partial batch responses.
        let visibility = p["VisibilityTimeout"].as_u64().expect("VisibilityTimeout");
        let mut consumers = 0;
        for (dir, (id, function)) in template.functions() {
            for event in function["Properties"]["Events"]
                .as_object()
                .cloned()
                .unwrap_or_default()
                .values()
            {
                if event["Type"] != "SQS" || event["Properties"]["Queue"]["Fn::GetAtt"] != format!("{name}.Arn") {
                    continue;
                }
                consumers += 1;
                let timeout = function["Properties"]["Timeout"].as_u64().expect("Timeout");
                assert!(
                    visibility >= 6 * timeout,
                    "{name}: visibility {visibility} < 6 x {dir}'s {timeout}"
                );
                assert_eq!(
                    event["Properties"]["FunctionResponseTypes"],
                    serde_json::json!(["ReportBatchItemFailures"]),
                    "{id}: partial batch responses"
                );
            }
        }
        assert!(
            consumers > 0,
            "{name}: no function consumes it, so no visibility check covers it"
        );
    }

    let table = &template.resource("Table")["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], "expires_at");
    assert!(read("shared/src/store/dynamo.rs").contains("const EXPIRES_AT: &str = \"expires_at\";"));
    assert_eq!(table["DeletionProtectionEnabled"]["Fn::If"][0], "IsProd");
    assert!(references(&table["SSESpecification"]).contains(&"KmsKeyArn".to_owned()));
    let indexes: BTreeSet<String> = table["GlobalSecondaryIndexes"]
        .as_array()
        .expect("GSIs")
        .iter()
        .map(|g| g["IndexName"].as_str().unwrap_or_default().to_owned())
        .collect();
    let in_code: BTreeSet<String> = Index::ALL.iter().map(|i| i.name().to_owned()).collect();
    assert_eq!(indexes, in_code);

    // One secret per part: encrypted with the stack's key when given, kept when the stack goes,
    // created with only its own fields (placeholders and one generated value, so an update
    // never rewrites what operators put there), and no other secret in the stack.
    let secrets: BTreeSet<String> = template
        .of_type("AWS::SecretsManager::Secret")
        .map(|(id, _)| id.clone())
        .collect();
    let parts: BTreeSet<String> = SecretPart::ALL.iter().map(|p| secret_resource(*p).to_owned()).collect();
    assert_eq!(secrets, parts, "one secret per concern");
    for part in SecretPart::ALL {
        let resource = template.resource(secret_resource(part));
        assert_eq!(resource["DeletionPolicy"], "Retain", "{part}");
        let secret = &resource["Properties"];
        assert!(
            references(&secret["KmsKeyId"]).contains(&"KmsKeyArn".to_owned()),
            "{part}"
        );
        assert!(
            secret.get("SecretString").is_none(),
            "{part}: generated, never a literal value"
        );
        let generate = &secret["GenerateSecretString"];
        let mut created = serde_json::from_str::<serde_json::Map<String, Value>>(
            generate["SecretStringTemplate"].as_str().expect("SecretStringTemplate"),
        )
        .expect("the template is JSON");
        let generated = generate["GenerateStringKey"].as_str().expect("GenerateStringKey");
        created.insert(generated.to_owned(), Value::String("x".repeat(48)));
        for field in created.keys() {
            assert!(
                part.fields().contains(&field.as_str()),
                "{part}: {field} is another secret's field"
            );
        }
        checkout::secrets::AppSecrets::parse_part(part, &Value::Object(created).to_string())
            .unwrap_or_else(|e| panic!("{part}: the secret as created does not parse: {e}"));
    }

    // The outbox: the table streams new event items to the events function, and only those.
    assert_eq!(table["StreamSpecification"]["StreamViewType"], "KEYS_ONLY");
    let events = &template.functions()["events"].1;
    let stream = events["Properties"]["Events"]
        .as_object()
        .and_then(|e| e.values().find(|e| e["Type"] == "DynamoDB"))
        .expect("the events function reads the table's stream");
    let p = &stream["Properties"];
    assert_eq!(p["Stream"]["Fn::GetAtt"], "Table.StreamArn");
    assert_eq!(
        p["FunctionResponseTypes"],
        serde_json::json!(["ReportBatchItemFailures"])
    );
    assert_eq!(
        p["StartingPosition"], "TRIM_HORIZON",
        "events written before a deploy are not skipped"
    );
    let filters = p["FilterCriteria"]["Filters"]
        .as_array()
        .expect("filtered to event items");
    assert_eq!(filters.len(), 1);
    let pattern: Value = serde_json::from_str(filters[0]["Pattern"].as_str().expect("Pattern")).expect("JSON");
    assert_eq!(pattern["eventName"], serde_json::json!(["INSERT"]));
    assert_eq!(
        pattern["dynamodb"]["Keys"]["pk"]["S"],
        serde_json::json!([{ "prefix": checkout::events::repo::KEY_PREFIX }])
    );
    // What the stream's records look like is what the function parses.
    let record = serde_json::json!({"Records": [{"eventName": "INSERT", "dynamodb": {
        "Keys": {"pk": {"S": format!("{}evt_pay_1_00000001", checkout::events::repo::KEY_PREFIX)}},
        "SequenceNumber": "1"}}]});
    assert_eq!(checkout::events::stream::new_events(&record).len(), 1);

    let sweeper = &template.functions()["timeout-sweeper"].1;
    let schedule = sweeper["Properties"]["Events"]
        .as_object()
        .and_then(|e| e.values().find(|e| e["Type"] == "ScheduleV2"))
        .expect("the sweeper runs on EventBridge Scheduler");
    assert_eq!(schedule["Properties"]["ScheduleExpression"], "rate(1 minute)");
}

#[test]
fn the_payment_pages_live_channel_is_a_websocket_api_on_its_function() {
    let template = Template::load();
    let api = &template.resource("LiveApi")["Properties"];
    assert_eq!(template.resource("LiveApi")["Type"], "AWS::ApiGatewayV2::Api");
    assert_eq!(api["ProtocolType"], "WEBSOCKET");
    // Every route reaches the function's alias (released and rolled back like the others).
    let integration = template.resource("LiveIntegration");
    assert_eq!(integration["Properties"]["IntegrationType"], "AWS_PROXY");
    assert!(
        references(&integration["Properties"]["IntegrationUri"])
            .iter()
            .any(|r| r == "CheckoutLiveFunction.Alias"),
        "the integration invokes the alias"
    );
    let routes: BTreeMap<String, Value> = template
        .of_type("AWS::ApiGatewayV2::Route")
        .filter(|(_, r)| r["Properties"]["ApiId"]["Ref"] == "LiveApi")
        .map(|(_, r)| {
            (
                r["Properties"]["RouteKey"].as_str().unwrap_or_default().to_owned(),
                r.clone(),
            )
        })
        .collect();
    assert_eq!(
        routes.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["$connect", "$default", "$disconnect"]
    );
    for (key, route) in &routes {
        assert!(
            references(&route["Properties"]["Target"])
                .iter()
                .any(|r| r.contains("${LiveIntegration}")),
            "{key}"
        );
    }
    // $connect is authorised by the session (the function), not by a merchant token.
    assert_eq!(routes["$connect"]["Properties"]["AuthorizationType"], "NONE");
    let permission = &template.resource("LiveInvokePermission")["Properties"];
    assert_eq!(permission["Principal"], "apigateway.amazonaws.com");
    assert_eq!(permission["FunctionName"]["Ref"], "CheckoutLiveFunction.Alias");
    assert!(references(&permission["SourceArn"])
        .iter()
        .any(|r| r.contains("${LiveApi}/*")));
    // One stage, deployed with every change, throttled as a whole.
    let stage = &template.resource("LiveStage")["Properties"];
    assert_eq!(stage["ApiId"]["Ref"], "LiveApi");
    assert_eq!(stage["StageName"]["Ref"], "Stage");
    assert_eq!(stage["AutoDeploy"], true);
    assert!(stage["DefaultRouteSettings"].get("ThrottlingRateLimit").is_some());
    assert!(stage["DefaultRouteSettings"].get("ThrottlingBurstLimit").is_some());
    // The page connects to the stage; the events function posts to the same stage.
    let env = |dir: &str, name: &str| {
        let function = &template.functions()[dir].1;
        references(&function["Properties"]["Environment"]["Variables"][name]).join(" ")
    };
    assert_eq!(
        env("initiate", "CHECKOUT_LIVE_URL"),
        "wss://${LiveApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
    );
    assert_eq!(
        env("events", "LIVE_MANAGEMENT_URL"),
        "https://${LiveApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
    );
    assert_eq!(env("events", "LIVE_CONNECTIONS_TABLE"), "LiveConnectionsTable");
    assert_eq!(env("checkout-live", "LIVE_CONNECTIONS_TABLE"), "LiveConnectionsTable");
    // What the page is given parses as its live channel.
    let live = checkout::api::checkout::LiveChannel::parse("wss://abc123.execute-api.eu-west-1.amazonaws.com/prod")
        .expect("the stage URL is a live channel");
    assert_eq!(live.origin(), "wss://abc123.execute-api.eu-west-1.amazonaws.com");

    // The connections: the code's key and gsi1 only, expiring by TTL, encrypted with the
    // stack's key when given, no stream (nothing consumes it).
    let table = &template.resource("LiveConnectionsTable")["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], "expires_at");
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    assert!(table.get("StreamSpecification").is_none());
    assert!(references(&table["SSESpecification"]).contains(&"KmsKeyArn".to_owned()));
    assert_eq!(
        table["KeySchema"],
        serde_json::json!([{"AttributeName": "pk", "KeyType": "HASH"}])
    );
    let indexes = table["GlobalSecondaryIndexes"].as_array().expect("gsi1");
    assert_eq!(indexes.len(), 1);
    assert_eq!(indexes[0]["IndexName"], Index::Gsi1.name());
    assert_eq!(
        indexes[0]["KeySchema"],
        serde_json::json!([
            {"AttributeName": "gsi1pk", "KeyType": "HASH"},
            {"AttributeName": "gsi1sk", "KeyType": "RANGE"}
        ])
    );
    assert!(read("shared/src/repo/live_connections.rs").contains("Index::Gsi1"));
}

#[test]
fn the_audit_digest_archive_is_locked_private_and_kept() {
    let template = Template::load();
    // The only bucket: a new one needs its own checks here.
    let buckets: BTreeSet<String> = template.of_type("AWS::S3::Bucket").map(|(id, _)| id.clone()).collect();
    assert_eq!(buckets, BTreeSet::from(["AuditDigestBucket".to_owned()]));
    let bucket = template.resource("AuditDigestBucket");
    assert_eq!(bucket["DeletionPolicy"], "Retain", "the archive outlives the stack");
    assert_eq!(
        bucket["UpdateReplacePolicy"], "Retain",
        "a replacement keeps the old archive"
    );
    let p = &bucket["Properties"];

    // Object Lock, compliance mode (governance mode can be bypassed with a permission), for the
    // retention parameter, in days (never `Years` as well: S3 refuses both).
    assert_eq!(p["ObjectLockEnabled"], true);
    let lock = &p["ObjectLockConfiguration"];
    assert_eq!(lock["ObjectLockEnabled"], "Enabled");
    let retention = &lock["Rule"]["DefaultRetention"];
    assert_eq!(
        retention["Mode"], "COMPLIANCE",
        "compliance mode: nobody can shorten or lift it"
    );
    assert_eq!(
        retention["Days"],
        serde_json::json!({"Ref": "AuditDigestRetentionDays"})
    );
    assert!(retention.get("Years").is_none(), "Days or Years, not both");
    let parameter = &template.doc["Parameters"]["AuditDigestRetentionDays"];
    assert_eq!(parameter["Type"], "Number");
    assert_eq!(parameter["Default"], 2555, "7 years by default");
    assert!(parameter["MinValue"].as_u64().is_some_and(|m| m >= 1), "at least a day");
    assert!(
        parameter["MaxValue"].as_u64().is_none_or(|m| m <= 36_500),
        "S3 refuses retentions over 100 years"
    );
    assert!(parameter["Description"].as_str().is_some_and(|d| !d.is_empty()));

    // Object Lock needs versioning; encrypted at rest; never public, ACLs off.
    assert_eq!(p["VersioningConfiguration"]["Status"], "Enabled");
    let encryption = p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        .as_array()
        .expect("default encryption");
    assert!(
        encryption.iter().any(|rule| {
            let algorithm = &rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"];
            algorithm == "AES256" || algorithm == "aws:kms"
        }),
        "default encryption: {encryption:?}"
    );
    let block = &p["PublicAccessBlockConfiguration"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[setting], true, "PublicAccessBlockConfiguration.{setting}");
    }
    assert_eq!(
        p["OwnershipControls"]["Rules"][0]["ObjectOwnership"],
        "BucketOwnerEnforced"
    );

    // TLS only, on the bucket and its objects.
    let policies: Vec<&Value> = template
        .of_type("AWS::S3::BucketPolicy")
        .filter(|(_, policy)| policy["Properties"]["Bucket"]["Ref"] == "AuditDigestBucket")
        .map(|(_, policy)| policy)
        .collect();
    assert_eq!(policies.len(), 1, "one bucket policy");
    let statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .expect("Statement");
    // Write-once keys: a put without `If-None-Match` (which could shadow an archived digest
    // with a newer version) is refused; `audit/s3.rs` sends it.
    let overwrite = statements
        .iter()
        .find(|s| s["Effect"] == "Deny" && s["Condition"]["Null"]["s3:if-none-match"] == "true")
        .expect("a statement denying puts without If-None-Match");
    assert_eq!(
        (overwrite["Principal"].as_str(), overwrite["Action"].as_str()),
        (Some("*"), Some("s3:PutObject"))
    );
    let tls = statements
        .iter()
        .find(|s| s["Effect"] == "Deny" && s["Condition"]["Bool"]["aws:SecureTransport"] == "false")
        .expect("a statement denying requests without TLS");
    assert_eq!(tls["Principal"], "*");
    assert_eq!(tls["Action"], "s3:*");
    let targets = resource_targets(&tls["Resource"]);
    assert!(
        targets.contains("AuditDigestBucket") && targets.contains("AuditDigestBucket/*"),
        "TLS only on the bucket and its objects: {targets:?}"
    );
    assert!(
        statements.iter().all(|s| s["Effect"] == "Deny"),
        "the bucket policy grants nothing (grants are the functions' own)"
    );

    // Who touches it: the sweeper puts, under the code's prefix; nobody reads, deletes or changes
    // a lock (the IAM test checks the same grants in full; this names what must never appear).
    let forbidden = [
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:PutObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:BypassGovernanceRetention",
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutBucketPolicy",
        "s3:PutLifecycleConfiguration",
    ];
    for (dir, (id, function)) in template.functions() {
        let mut s3 = BTreeSet::new();
        for statement in template.statements(&id, &function) {
            if statement["Effect"] != "Allow" {
                continue;
            }
            for action in strings(&statement["Action"])
                .into_iter()
                .filter(|a| a.starts_with("s3:"))
            {
                assert!(!forbidden.contains(&action.as_str()), "{id}: {action} on the archive");
                for target in resource_targets(&statement["Resource"]) {
                    s3.insert((target, action.clone()));
                }
            }
        }
        let expected = match dir.as_str() {
            "timeout-sweeper" => BTreeSet::from([(audit_archive_target(), "s3:PutObject".to_owned())]),
            _ => BTreeSet::new(),
        };
        assert_eq!(s3, expected, "{id} ({dir}): S3 permissions");
    }
    let sweeper = &template.functions()["timeout-sweeper"].1;
    assert_eq!(
        sweeper["Properties"]["Environment"]["Variables"][vars::AUDIT_DIGEST_BUCKET],
        serde_json::json!({"Ref": "AuditDigestBucket"})
    );
    assert_eq!(
        template.doc["Outputs"]["AuditDigestBucketName"]["Value"],
        serde_json::json!({"Ref": "AuditDigestBucket"}),
        "the bucket's name is an output (audit verify reads it)"
    );
}

// ------------------------------------------------------------------------------------- metrics

/// Metric name → the dimension keys of each place the code emits it (from the source text).
fn emitted_metrics() -> BTreeMap<String, BTreeSet<Vec<String>>> {
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry")) {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&root().join("shared/src"), &mut files);
    rust_files(&root().join("functions"), &mut files);
    let call = regex::Regex::new(r#"(?s)metrics::(count|gauge|timing)\(\s*"([A-Za-z0-9]+)"(.*?)\);"#).expect("regex");
    let key = regex::Regex::new(r#"\(\s*"([A-Za-z]+)"\s*,"#).expect("regex");
    let mut out: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        for c in call.captures_iter(&text) {
            let dims: Vec<String> = key.captures_iter(&c[3]).map(|k| k[1].to_owned()).collect();
            out.entry(c[2].to_owned()).or_default().insert(dims);
        }
    }
    out
}

/// Whether `dims` (names) is a dimension set CloudWatch has for `metric` (see `metrics::dimension_sets`).
fn published(emitted: &BTreeMap<String, BTreeSet<Vec<String>>>, metric: &str, dims: &BTreeSet<String>) -> bool {
    let Some(sites) = emitted.get(metric) else {
        return false;
    };
    sites.iter().any(|site| {
        let names: Vec<&str> = site.iter().map(String::as_str).collect();
        checkout::metrics::dimension_sets(&names)
            .iter()
            .any(|set| set.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>() == *dims)
    })
}

/// A dimension value the alarm filters on is one the code can produce.
fn check_value(name: &str, value: &Value, sources: &str, context: &str) {
    let Some(value) = value.as_str() else {
        return;
    };
    if name == "Service" {
        assert!(
            FUNCTIONS.iter().any(|f| f.function == value),
            "{context}: Service={value} is no function"
        );
    } else {
        assert!(
            sources.contains(&format!("\"{value}\"")),
            "{context}: {name}={value} appears nowhere in the code"
        );
    }
}

/// The source of the domain, the services and the Daraja client, modules in folders included.
fn all_sources() -> String {
    fn read_dir(dir: &Path, text: &mut String) {
        for entry in std::fs::read_dir(dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                read_dir(&path, text);
            } else if path.extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(path).expect("source"));
            }
        }
    }
    let mut text = String::new();
    for dir in [
        "shared/src/domain",
        "shared/src/services",
        "shared/src/daraja",
        "shared/src/webhooks",
        "shared/src/audit",
        "shared/src/events",
    ] {
        read_dir(&root().join(dir), &mut text);
    }
    text
}

#[test]
fn the_code_emits_the_metrics_the_issue_asks_for() {
    let emitted = emitted_metrics();
    let has = |metric: &str, dims: &[&str]| {
        emitted
            .get(metric)
            .is_some_and(|sites| sites.contains(&dims.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>()))
    };
    assert!(has("PaymentTransitions", &["Status"]), "payments by status");
    assert!(has("PaymentSettleLatency", &[]), "latency to settle");
    assert!(has("CallbacksReceived", &["Kind"]));
    assert!(has("CallbacksProcessed", &["Kind", "Verdict"]), "callbacks applied");
    assert!(has("CallbackAnomalies", &["Reason"]));
    assert!(has("DarajaRequests", &["Operation"]));
    assert!(
        has("DarajaErrors", &["Operation", "Kind", "Code"]),
        "Daraja errors by code"
    );
    assert!(has("Reconciliations", &["Result"]));
    assert!(has("LimitRefusals", &["Limit"]));
    assert!(has("OpenPayments", &["Age"]));
    assert!(has("PayoutTransitions", &["Status"]));
    assert!(has("Sweeps", &[]));
    assert!(
        has("ApiInternalErrors", &["Version"]),
        "HTTP 500s by version, for release rollbacks"
    );
    assert!(all_sources().contains("\"past_deadline\""));
}

#[test]
fn alarms_and_dashboard_read_metrics_the_code_emits() {
    let template = Template::load();
    let emitted = emitted_metrics();
    let sources = all_sources();
    let functions = template.functions();
    let mut alarmed_functions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut alarmed_queues = BTreeSet::new();
    for (id, alarm) in template.of_type("AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        let actions = references(&p["AlarmActions"]);
        assert!(
            actions.contains(&"AlarmTopic".to_owned()) && actions.contains(&"AlarmTopicArn".to_owned()),
            "{id}: notifies the alarm topic"
        );
        let description = p["AlarmDescription"]
            .as_str()
            .or_else(|| p["AlarmDescription"]["Fn::Sub"].as_str())
            .unwrap_or_default();
        assert!(
            description.contains("docs/operations.md"),
            "{id}: says where the runbook is"
        );
        let mut metrics = Vec::new();
        if p.get("MetricName").is_some() {
            metrics.push(serde_json::json!({"Namespace": p["Namespace"], "MetricName": p["MetricName"], "Dimensions": p["Dimensions"]}));
        }
        for m in p["Metrics"].as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(metric) = m["MetricStat"].get("Metric") {
                metrics.push(metric.clone());
            }
        }
        assert!(!metrics.is_empty(), "{id}: reads no metric");
        for metric in metrics {
            let namespace = metric["Namespace"].as_str().expect("Namespace");
            let name = metric["MetricName"].as_str().expect("MetricName");
            let dims: Vec<(String, Value)> = metric["Dimensions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|d| (d["Name"].as_str().expect("Name").to_owned(), d["Value"].clone()))
                .collect();
            match namespace {
                checkout::metrics::NAMESPACE => {
                    let names: BTreeSet<String> = dims.iter().map(|(n, _)| n.clone()).collect();
                    assert!(
                        published(&emitted, name, &names),
                        "{id}: {name} with dimensions {names:?} is not a metric the code publishes ({:?})",
                        emitted.get(name)
                    );
                    for (n, v) in &dims {
                        check_value(n, v, &sources, id);
                    }
                }
                "AWS/Lambda" => {
                    let function = dims
                        .iter()
                        .find(|(n, _)| n == "FunctionName")
                        .and_then(|(_, v)| v["Ref"].as_str())
                        .expect("FunctionName: !Ref a function");
                    alarmed_functions
                        .entry(function.to_owned())
                        .or_default()
                        .insert(name.to_owned());
                }
                "AWS/SQS" => {
                    let queue = dims
                        .iter()
                        .find(|(n, _)| n == "QueueName")
                        .and_then(|(_, v)| v["Fn::GetAtt"].as_str())
                        .expect("QueueName: !GetAtt <queue>.QueueName");
                    alarmed_queues.insert(queue.trim_end_matches(".QueueName").to_owned());
                }
                "AWS/ApiGateway" => assert_eq!(dims[0].1["Ref"], "HttpApi", "{id}"),
                other => panic!("{id}: namespace {other}"),
            }
        }
    }
    for (id, _) in functions.values() {
        let watched = alarmed_functions.get(id).cloned().unwrap_or_default();
        assert!(
            watched.contains("Errors") && watched.contains("Throttles"),
            "{id}: errors and throttles alarms"
        );
    }
    let dlqs: BTreeSet<String> = template
        .of_type("AWS::SQS::Queue")
        .filter(|(name, _)| name.contains("DeadLetter"))
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(alarmed_queues, dlqs, "every DLQ has a not-empty alarm");
    let issue_alarms = [
        "PaymentSuccessRateAlarm",
        "OpenPaymentsPastDeadlineAlarm",
        "CallbackAnomaliesAlarm",
        "DarajaErrorRateAlarm",
        "ApiServerErrorsAlarm",
    ];
    for alarm in issue_alarms {
        assert_eq!(template.resource(alarm)["Type"], "AWS::CloudWatch::Alarm");
    }

    // The dashboard: every metric it plots.
    let body = template.resource("Dashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("DashboardBody: !Sub")
        .to_owned();
    let substituted = regex::Regex::new(r"\$\{([^}]+)\}")
        .expect("regex")
        .replace_all(&body, "$1")
        .into_owned();
    let dashboard: Value = serde_json::from_str(&substituted).expect("the dashboard body is JSON");
    let search = regex::Regex::new(r#"SEARCH\('\{([^}]+)\} MetricName="([A-Za-z0-9]+)""#).expect("regex");
    let mut plotted = 0;
    for widget in dashboard["widgets"].as_array().expect("widgets") {
        if widget["type"] == "alarm" {
            for arn in strings(&widget["properties"]["alarms"]) {
                let alarm = arn.trim_end_matches(".Arn");
                assert_eq!(template.resource(alarm)["Type"], "AWS::CloudWatch::Alarm");
            }
            continue;
        }
        for line in widget["properties"]["metrics"].as_array().expect("metrics") {
            let items = line.as_array().expect("a metric line");
            if let Some(expression) = items[0]["expression"].as_str() {
                for c in search.captures_iter(expression) {
                    let mut schema = c[1].split(',').map(str::trim);
                    let namespace = schema.next().unwrap_or_default();
                    if namespace == checkout::metrics::NAMESPACE {
                        let dims: BTreeSet<String> = schema.map(str::to_owned).collect();
                        assert!(published(&emitted, &c[2], &dims), "dashboard: {} {dims:?}", &c[2]);
                        plotted += 1;
                    }
                }
            } else if items[0] == checkout::metrics::NAMESPACE {
                let name = items[1].as_str().expect("metric name");
                let pairs: Vec<&Value> = items[2..].iter().take_while(|v| v.is_string()).collect();
                let dims: BTreeSet<String> = pairs
                    .chunks(2)
                    .map(|c| c[0].as_str().unwrap_or_default().to_owned())
                    .collect();
                assert!(published(&emitted, name, &dims), "dashboard: {name} {dims:?}");
                for pair in pairs.chunks(2) {
                    check_value(pair[0].as_str().unwrap_or_default(), pair[1], &sources, "dashboard");
                }
                plotted += 1;
            }
        }
    }
    assert!(plotted >= 15, "the dashboard plots the product's figures ({plotted})");
}

// ------------------------------------------------------------------------------------- config and docs

#[test]
fn samconfig_has_a_profile_per_stage_with_template_parameters() {
    let template = Template::load();
    let parameters: BTreeSet<String> = template.doc["Parameters"]
        .as_object()
        .expect("Parameters")
        .keys()
        .cloned()
        .collect();
    let stages = strings(&template.doc["Parameters"]["Stage"]["AllowedValues"]);
    assert_eq!(stages, ["dev", "staging", "prod"]);
    let samconfig = read("samconfig.toml");
    let overrides = regex::Regex::new(r#""([A-Za-z0-9]+)=[^"]*""#).expect("regex");
    for stage in &stages {
        let section = samconfig
            .split(&format!("[{stage}.deploy.parameters]"))
            .nth(1)
            .unwrap_or_else(|| panic!("samconfig.toml: no [{stage}.deploy.parameters]"));
        let section = section.split("\n[").next().unwrap_or_default();
        assert!(
            section.contains(&format!("\"Stage={stage}\"")),
            "{stage}: Stage={stage}"
        );
        for c in overrides.captures_iter(section) {
            assert!(
                parameters.contains(&c[1]),
                "samconfig {stage}: {} is no template parameter",
                &c[1]
            );
        }
        assert!(samconfig.contains(&format!("[{stage}.build.parameters]")));
    }
}

#[test]
fn the_operations_guide_covers_every_alarm_parameter_and_variable() {
    let template = Template::load();
    let guide = read("docs/operations.md");
    let lower = guide.to_ascii_lowercase();
    for (id, _) in template.of_type("AWS::CloudWatch::Alarm") {
        let per_function = [
            "ErrorsAlarm",
            "ThrottlesAlarm",
            "ReleaseErrorsAlarm",
            "ReleaseServerErrorsAlarm",
        ]
        .iter()
        .any(|suffix| {
            id.ends_with(suffix)
                && template
                    .resources()
                    .contains_key(&format!("{}Function", id.trim_end_matches(suffix)))
        });
        if per_function {
            continue; // documented once, as <Function>ErrorsAlarm etc.
        }
        assert!(
            lower.contains(&format!("### {}", id.to_ascii_lowercase())),
            "docs/operations.md has no \"### {id}\" section"
        );
    }
    for suffix in [
        "ErrorsAlarm",
        "ThrottlesAlarm",
        "ReleaseErrorsAlarm",
        "ReleaseServerErrorsAlarm",
    ] {
        assert!(
            guide.contains(&format!("<Function>{suffix}")),
            "docs: <Function>{suffix}"
        );
    }
    for parameter in template.doc["Parameters"].as_object().expect("Parameters").keys() {
        assert!(
            guide.contains(&format!("`{parameter}`")),
            "docs/operations.md does not describe `{parameter}`"
        );
    }
    for function in FUNCTIONS {
        for name in function.required.iter().chain(function.optional) {
            assert!(
                guide.contains(&format!("`{name}`")),
                "docs/operations.md does not describe `{name}`"
            );
        }
    }
    for part in SecretPart::ALL {
        assert!(guide.contains(&format!("`{part}`")), "docs: the {part} secret");
        for field in part.fields() {
            assert!(
                guide.contains(&format!("\"{field}\"")),
                "docs: the {part} secret's {field}"
            );
        }
    }
}
