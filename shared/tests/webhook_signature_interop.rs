//! Interoperability of our webhook signatures: the reference Standard Webhooks library
//! (`standardwebhooks` from PyPI, pinned in requirements-dev.txt) must verify what
//! `checkout::webhooks::signature` signs, and refuse what was tampered with. Merchants verify
//! with that library or its siblings, so agreeing with our own `verify` alone is not enough.
//!
//! Python comes from `CHECKOUT_TEST_PYTHON`, else `<workspace>/.venv/bin/python` (which
//! `scripts/test.sh` installs); without it the test fails, it never passes silently.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use checkout::webhooks::signature::{headers, verify, SigningSecret, TOLERANCE_SECS};
use serde_json::{json, Value};

/// Reads the cases as JSON on stdin, verifies each with the library, prints the outcomes as
/// JSON. Exit code 3: the library is not installed. Only `WebhookVerificationError` counts as
/// a rejection; any other exception is reported as an error, so a crash cannot pass for one.
const VERIFIER: &str = r#"
import json, sys
try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError as error:
    print(f"cannot import standardwebhooks: {error}", file=sys.stderr)
    sys.exit(3)

outcomes = []
for case in json.load(sys.stdin):
    try:
        Webhook(case["secret"]).verify(case["body"], case["headers"])
        outcomes.append({"name": case["name"], "outcome": "verified"})
    except WebhookVerificationError as error:
        outcomes.append({"name": case["name"], "outcome": "rejected", "detail": str(error)})
    except Exception as error:
        outcomes.append({"name": case["name"], "outcome": "error", "detail": repr(error)})
json.dump(outcomes, sys.stdout)
"#;

const MASTER_KEY: &[u8] = b"interop test master key, 32 byte";

/// The published test vector's secret (24 bytes, the spec's minimum).
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One delivery as the receiver sees it, and whether the library must accept it.
#[derive(Clone)]
struct Case {
    name: &'static str,
    /// The secret the receiver holds.
    secret: SigningSecret,
    /// The body the receiver got (for a tampered case, not the one that was signed).
    body: String,
    msg_id: String,
    timestamp: String,
    signature: String,
    should_verify: bool,
}

impl Case {
    /// A delivery as our sender makes it: `headers` signed now by `signers`, received intact by
    /// the holder of the first signer's secret.
    fn signed(signers: &[&SigningSecret], msg_id: &str, body: &str) -> Case {
        let [(_, msg_id), (_, timestamp), (_, signature)] = headers(signers, msg_id, now_secs(), body.as_bytes());
        Case {
            name: "",
            secret: signers[0].clone(),
            body: body.to_owned(),
            msg_id,
            timestamp,
            signature,
            should_verify: true,
        }
    }

    fn named(&self, name: &'static str) -> Case {
        Case { name, ..self.clone() }
    }

    fn received_by(self, secret: &SigningSecret) -> Case {
        Case {
            secret: secret.clone(),
            ..self
        }
    }

    fn with_body(self, body: &str) -> Case {
        Case {
            body: body.to_owned(),
            ..self
        }
    }

    fn with_msg_id(self, msg_id: &str) -> Case {
        Case {
            msg_id: msg_id.to_owned(),
            ..self
        }
    }

    fn refused(self) -> Case {
        Case {
            should_verify: false,
            ..self
        }
    }

    fn as_json(&self) -> Value {
        json!({
            "name": self.name,
            "secret": self.secret.to_whsec(),
            "body": self.body,
            "headers": {
                "webhook-id": self.msg_id,
                "webhook-timestamp": self.timestamp,
                "webhook-signature": self.signature,
            },
        })
    }
}

/// Now, since the library checks the timestamp against its own clock.
fn now_secs() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock before 1970");
    i64::try_from(since_epoch.as_secs()).expect("clock beyond i64 seconds")
}

fn cases() -> Vec<Case> {
    let current = SigningSecret::derive(MASTER_KEY, "we_01JINTEROP", 1);
    let old = SigningSecret::derive(MASTER_KEY, "we_01JROTATE", 1);
    let new = SigningSecret::derive(MASTER_KEY, "we_01JROTATE", 2);
    let stranger = SigningSecret::derive(MASTER_KEY, "we_01JSTRANGER", 1);
    let spec = SigningSecret::parse(SPEC_SECRET).expect("the spec's secret parses");

    let payment = r#"{"type":"payment.succeeded","data":{"payment_id":"pay_01JINTEROP","amount":"1500.00"}}"#;
    let payment_tampered = payment.replace("1500.00", "9500.00");
    // Multi-byte UTF-8, literal newlines (LF and CRLF) and escaped ones, a tab.
    let unicode = concat!(
        "{\n",
        "  \"type\": \"payment.succeeded\",\n",
        "  \"data\": {\n",
        "    \"payer\": \"Wanjikũ Ñjoroge — 名前 🇰🇪\",\n",
        "    \"note\": \"line one\\nline two\",\n",
        "    \"memo\": \"tab\\there, crlf\\r\\n\"\n",
        "  }\r\n",
        "}\n",
    );
    let unicode_tampered = unicode.replace("Wanjikũ", "Wanjiku");

    let single = Case::signed(&[&current], "msg_01JONE", payment);
    // During a rotation the new and the old secret both sign.
    let rotation = Case::signed(&[&new, &old], "msg_01JROT", payment);
    let international = Case::signed(&[&current], "msg_01JUNI", unicode);
    vec![
        single.named("one secret"),
        single
            .named("one secret, tampered body")
            .with_body(&payment_tampered)
            .refused(),
        single
            .named("one secret, tampered id")
            .with_msg_id("msg_01JOTHER")
            .refused(),
        single
            .named("one secret, another endpoint's secret")
            .received_by(&stranger)
            .refused(),
        rotation.named("rotation, new secret"),
        rotation.named("rotation, old secret").received_by(&old),
        rotation
            .named("rotation, another endpoint's secret")
            .received_by(&stranger)
            .refused(),
        rotation
            .named("rotation, tampered body")
            .received_by(&old)
            .with_body(&payment_tampered)
            .refused(),
        international.named("unicode and newlines"),
        international
            .named("unicode, tampered body")
            .with_body(&unicode_tampered)
            .refused(),
        Case::signed(&[&spec], "msg_p5jXN8AQM9LWM0D4loKWxJek", payment).named("the spec's 24-byte secret"),
    ]
}

fn python() -> PathBuf {
    match std::env::var_os("CHECKOUT_TEST_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    }
}

/// The library's verdict on each case, by name.
fn verify_with_the_python_library(cases: &[Case]) -> Vec<(String, String, String)> {
    let python = python();
    if !python.exists() {
        panic!(
            "no Python at {}: run scripts/test.sh (it creates .venv and installs requirements-dev.txt, \
             standardwebhooks included), or point CHECKOUT_TEST_PYTHON at a Python that has standardwebhooks",
            python.display()
        );
    }
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(VERIFIER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {}: {error}; run scripts/test.sh", python.display()));
    let input = Value::Array(cases.iter().map(Case::as_json).collect()).to_string();
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("writing the cases to Python");
    let output = child.wait_with_output().expect("waiting for Python");
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        Some(3) => panic!(
            "{} has no standardwebhooks ({}): run scripts/test.sh, which installs requirements-dev.txt",
            python.display(),
            stderr.trim()
        ),
        _ => panic!("the Python verifier failed ({}): {stderr}", output.status),
    }
    let outcomes: Vec<Value> = serde_json::from_slice(&output.stdout).expect("the verifier prints JSON");
    outcomes
        .iter()
        .map(|outcome| {
            let field = |key: &str| outcome[key].as_str().unwrap_or_default().to_owned();
            (field("name"), field("outcome"), field("detail"))
        })
        .collect()
}

#[test]
fn the_standard_webhooks_python_library_verifies_our_signatures() {
    let cases = cases();
    // Our own verify must agree with every expectation first: the cases are what they say.
    for case in &cases {
        let ours = verify(
            &case.secret,
            &case.msg_id,
            &case.timestamp,
            &case.signature,
            case.body.as_bytes(),
            now_secs(),
            TOLERANCE_SECS,
        );
        assert_eq!(
            ours.is_ok(),
            case.should_verify,
            "our verify on {:?}: {ours:?}",
            case.name
        );
    }
    let rotation = cases
        .iter()
        .find(|case| case.name == "rotation, old secret")
        .expect("the rotation case");
    assert_eq!(
        rotation.signature.split(' ').count(),
        2,
        "the rotation header carries two signatures"
    );

    let outcomes = verify_with_the_python_library(&cases);
    assert_eq!(outcomes.len(), cases.len(), "one outcome per case: {outcomes:?}");
    for (case, (name, outcome, detail)) in cases.iter().zip(&outcomes) {
        assert_eq!(name, case.name);
        let expected = if case.should_verify { "verified" } else { "rejected" };
        assert_eq!(outcome, expected, "standardwebhooks on {name:?}: {detail}");
    }
}
