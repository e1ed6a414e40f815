//! Fault injection: rules per endpoint or callback kind, decided by counters and a seeded RNG so
//! the same seed and the same request sequence inject the same faults.

use axum::http::StatusCode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::clock;
use crate::errors::{ApiError, GATEWAY_HTML};
use crate::sync::lock;

/// What a rule applies to: an API endpoint or a kind of outgoing callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    Oauth,
    StkPush,
    StkQuery,
    C2bRegister,
    C2bSimulate,
    B2c,
    TransactionStatus,
    AccountBalance,
    Reversal,
    StkCallback,
    B2cResult,
    B2cTimeout,
    C2bValidation,
    C2bConfirmation,
    TransactionStatusResult,
    AccountBalanceResult,
    ReversalResult,
}

impl FaultTarget {
    pub fn is_callback(self) -> bool {
        matches!(
            self,
            FaultTarget::StkCallback
                | FaultTarget::B2cResult
                | FaultTarget::B2cTimeout
                | FaultTarget::C2bValidation
                | FaultTarget::C2bConfirmation
                | FaultTarget::TransactionStatusResult
                | FaultTarget::AccountBalanceResult
                | FaultTarget::ReversalResult
        )
    }

    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultKind {
    #[serde(rename = "http_500")]
    Http500,
    #[serde(rename = "http_503")]
    Http503,
    /// `500.003.02 Spike Arrest Violation`.
    #[serde(rename = "spike_arrest")]
    SpikeArrest,
    /// `500.003.03 Quota Violation`.
    #[serde(rename = "quota_violation")]
    QuotaViolation,
    /// An HTML gateway page instead of JSON.
    #[serde(rename = "non_json_error")]
    NonJsonError,
    /// Answer after `delay_ms`.
    #[serde(rename = "slow")]
    Slow,
    /// Revoke every token before handling the request.
    #[serde(rename = "revoke_tokens")]
    RevokeTokens,
    /// Deliver the callback twice.
    #[serde(rename = "duplicate")]
    Duplicate,
    /// Never deliver the callback.
    #[serde(rename = "drop")]
    Drop,
    /// Deliver the callback `delay_ms` later.
    #[serde(rename = "delay")]
    Delay,
    /// Hold the callback until a later one of the same kind has been delivered.
    #[serde(rename = "reorder")]
    Reorder,
}

impl FaultKind {
    pub fn is_callback_kind(self) -> bool {
        matches!(
            self,
            FaultKind::Duplicate | FaultKind::Drop | FaultKind::Delay | FaultKind::Reorder
        )
    }

    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// For error faults: fail instead of processing (`before`, default) or process the request and
/// then lose the answer (`after`: the transaction exists, the client sees an error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Before,
    After,
}

/// One rule. With no condition it fires every time; with several, all must hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    #[serde(alias = "target")]
    pub endpoint: FaultTarget,
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_nth: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
}

/// Rules plus the seed of their RNG. `rules` is a list of rules with `endpoint`, or an object
/// `{endpoint: rule | [rules]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Defaults to the simulator's seed.
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default, deserialize_with = "rules_list_or_map")]
    pub rules: Vec<FaultRule>,
}

fn rules_list_or_map<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FaultRule>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Untargeted {
        kind: FaultKind,
        #[serde(default)]
        probability: Option<f64>,
        #[serde(default)]
        every_nth: Option<u64>,
        #[serde(default)]
        first_n: Option<u64>,
        #[serde(default)]
        delay_ms: Option<u64>,
        #[serde(default)]
        phase: Option<Phase>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Untargeted),
        Many(Vec<Untargeted>),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        List(Vec<FaultRule>),
        Map(BTreeMap<FaultTarget, OneOrMany>),
    }
    let to_rule = |endpoint: FaultTarget, u: Untargeted| FaultRule {
        endpoint,
        kind: u.kind,
        probability: u.probability,
        every_nth: u.every_nth,
        first_n: u.first_n,
        delay_ms: u.delay_ms,
        phase: u.phase,
    };
    Ok(match Shape::deserialize(d)? {
        Shape::List(v) => v,
        Shape::Map(m) => m
            .into_iter()
            .flat_map(|(target, rules)| {
                let v = match rules {
                    OneOrMany::One(u) => vec![u],
                    OneOrMany::Many(v) => v,
                };
                v.into_iter().map(move |u| to_rule(target, u)).collect::<Vec<_>>()
            })
            .collect(),
    })
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (i, r) in self.rules.iter().enumerate() {
            if r.kind.is_callback_kind() != r.endpoint.is_callback() {
                return Err(format!(
                    "rule {i}: fault {} does not apply to {}",
                    r.kind.name(),
                    r.endpoint.name()
                ));
            }
            if let Some(p) = r.probability {
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("rule {i}: probability must be within 0..=1"));
                }
            }
            if r.every_nth == Some(0) {
                return Err(format!("rule {i}: every_nth must be at least 1"));
            }
        }
        Ok(())
    }
}

/// A fault that fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FiredFault {
    pub rule: usize,
    pub endpoint: FaultTarget,
    pub kind: FaultKind,
    /// The n-th evaluation of that rule.
    pub n: u64,
    pub at: String,
    pub delay_ms: Option<u64>,
    pub phase: Phase,
}

struct Engine {
    config: FaultConfig,
    seed: u64,
    counters: Vec<u64>,
    fired: Vec<FiredFault>,
}

const FIRED_LOG_CAP: usize = 100_000;

pub struct FaultEngine {
    inner: Mutex<Engine>,
}

impl FaultEngine {
    pub fn new(config: FaultConfig, default_seed: u64) -> Self {
        FaultEngine {
            inner: Mutex::new(Self::engine(config, default_seed)),
        }
    }

    fn engine(config: FaultConfig, default_seed: u64) -> Engine {
        let seed = config.seed.unwrap_or(default_seed);
        Engine {
            counters: vec![0; config.rules.len()],
            seed,
            config,
            fired: Vec::new(),
        }
    }

    pub fn configure(&self, config: FaultConfig, default_seed: u64) {
        *lock(&self.inner) = Self::engine(config, default_seed);
    }

    /// Current rules, seed and every fault fired so far.
    pub fn snapshot(&self) -> serde_json::Value {
        let g = lock(&self.inner);
        json!({
            "seed": g.seed,
            "rules": g.config.rules,
            "counters": g.counters,
            "fired": g.fired,
        })
    }

    /// Evaluates every rule for `target` (counters advance even when nothing fires).
    ///
    /// `key` identifies the event for probability draws: callbacks pass their transaction's
    /// sequence number so the draw does not depend on delivery timing; endpoints pass `None`
    /// and use the rule's counter (requests arrive in the order the client sends them).
    pub fn evaluate(&self, target: FaultTarget, key: Option<u64>) -> Vec<FiredFault> {
        let mut g = lock(&self.inner);
        let g = &mut *g;
        let mut out = Vec::new();
        for (i, rule) in g.config.rules.iter().enumerate() {
            if rule.endpoint != target {
                continue;
            }
            g.counters[i] += 1;
            let n = g.counters[i];
            let mut fires = true;
            if let Some(first) = rule.first_n {
                fires &= n <= first;
            }
            if let Some(every) = rule.every_nth {
                fires &= n % every.max(1) == 0;
            }
            if let Some(p) = rule.probability {
                fires &= draw(g.seed, i, key.unwrap_or(n)) < p;
            }
            if fires {
                let f = FiredFault {
                    rule: i,
                    endpoint: target,
                    kind: rule.kind,
                    n,
                    at: clock::rfc3339(&clock::now()),
                    delay_ms: rule.delay_ms,
                    phase: rule.phase.unwrap_or_default(),
                };
                if g.fired.len() < FIRED_LOG_CAP {
                    g.fired.push(f.clone());
                }
                out.push(f);
            }
        }
        out
    }
}

/// A uniform draw in `[0, 1)` that depends only on the seed, the rule and the event.
fn draw(seed: u64, rule: usize, event: u64) -> f64 {
    let mixed = seed ^ (rule as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ event.wrapping_mul(0xD1B5_4A32_D192_ED03);
    ChaCha8Rng::seed_from_u64(mixed).gen()
}

/// The synchronous answer of an error fault.
pub fn error_for(kind: FaultKind) -> Option<ApiError> {
    Some(match kind {
        FaultKind::Http500 => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500.000.1001",
            "Internal Server Error",
        ),
        FaultKind::Http503 => ApiError::Raw(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"fault": {"faultstring": "The Service is temporarily unavailable",
                "detail": {"errorcode": "messaging.adaptors.http.flow.ServiceUnavailable"}}}),
        ),
        FaultKind::SpikeArrest => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500.003.02",
            "Spike Arrest Violation",
        ),
        FaultKind::QuotaViolation => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "500.003.03", "Quota Violation"),
        FaultKind::NonJsonError => ApiError::Html(StatusCode::BAD_GATEWAY, GATEWAY_HTML),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_and_list_shapes() {
        let a: FaultConfig = serde_json::from_value(json!({
            "seed": 7, "rules": {"stk_push": {"kind": "http_503", "first_n": 1},
                                 "stk_callback": [{"kind": "duplicate"}, {"kind": "drop", "every_nth": 2}]}
        }))
        .unwrap();
        assert_eq!(a.rules.len(), 3);
        let b: FaultConfig = serde_json::from_value(json!({
            "rules": [{"endpoint": "b2c", "kind": "spike_arrest", "probability": 0.5}]
        }))
        .unwrap();
        assert_eq!(b.rules[0].endpoint, FaultTarget::B2c);
        assert!(b.validate().is_ok());
        let bad: FaultConfig = serde_json::from_value(json!({
            "rules": [{"endpoint": "b2c", "kind": "duplicate"}]
        }))
        .unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn counters() {
        let cfg: FaultConfig = serde_json::from_value(json!({
            "rules": [{"endpoint": "stk_push", "kind": "http_500", "every_nth": 2},
                      {"endpoint": "stk_push", "kind": "slow", "first_n": 1}]
        }))
        .unwrap();
        let e = FaultEngine::new(cfg, 1);
        let kinds = |v: Vec<FiredFault>| v.into_iter().map(|f| f.kind).collect::<Vec<_>>();
        assert_eq!(kinds(e.evaluate(FaultTarget::StkPush, None)), vec![FaultKind::Slow]);
        assert_eq!(kinds(e.evaluate(FaultTarget::StkPush, None)), vec![FaultKind::Http500]);
        assert!(e.evaluate(FaultTarget::StkPush, None).is_empty());
        assert!(e.evaluate(FaultTarget::B2c, None).is_empty());
    }
}
