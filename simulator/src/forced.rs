//! Outcomes forced through the control API, overriding the scenario table.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Mutex;

use crate::scenarios::{Delivery, Flow, Plan};
use crate::sync::lock;

/// Which request a forced outcome applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matcher {
    /// The next STK push / B2C payment / C2B simulate (optionally of `kind`).
    Next,
    CheckoutRequestId(String),
    OriginatorConversationId(String),
    Msisdn(String),
}

/// Body of `POST /__control/outcomes`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForceRequest {
    #[serde(rename = "match")]
    pub matcher: Value,
    /// Restrict to `stk`, `b2c` or `c2b`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Result code (string or number). Absent: keep the scenario's code.
    #[serde(default)]
    pub result_code: Option<Value>,
    #[serde(default)]
    pub result_desc: Option<String>,
    /// `send` (default), `drop` or `queue_timeout`.
    #[serde(default)]
    pub callback: Option<Delivery>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Default: the money moves exactly when the result code is 0.
    #[serde(default)]
    pub money_moves: Option<bool>,
    /// How many requests it applies to; default 1, 0 = until deleted.
    #[serde(default)]
    pub times: Option<u32>,
}

/// A stored forced outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ForcedRule {
    pub id: u64,
    #[serde(rename = "match")]
    pub matcher: Matcher,
    pub kind: Option<String>,
    pub result_code: Option<String>,
    pub result_desc: Option<String>,
    pub callback: Option<Delivery>,
    pub delay_ms: Option<u64>,
    pub money_moves: Option<bool>,
    /// `None` = unlimited.
    pub remaining: Option<u32>,
}

impl ForceRequest {
    pub fn into_rule(self, id: u64) -> Result<ForcedRule, String> {
        let matcher = parse_matcher(&self.matcher)?;
        if let Some(k) = &self.kind {
            if !["stk", "b2c", "c2b"].contains(&k.as_str()) {
                return Err(format!("kind must be stk, b2c or c2b, not {k:?}"));
            }
        }
        let result_code = match self.result_code {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => return Err(format!("result_code must be a string or number, not {other}")),
        };
        let remaining = match self.times {
            None => Some(1),
            Some(0) => None,
            Some(n) => Some(n),
        };
        Ok(ForcedRule {
            id,
            matcher,
            kind: self.kind,
            result_code,
            result_desc: self.result_desc,
            callback: self.callback,
            delay_ms: self.delay_ms,
            money_moves: self.money_moves,
            remaining,
        })
    }
}

fn parse_matcher(v: &Value) -> Result<Matcher, String> {
    match v {
        Value::String(s) if s == "next" => Ok(Matcher::Next),
        Value::Object(m) if m.len() == 1 => {
            let (k, val) = m.iter().next().ok_or("empty match")?;
            let s = match val {
                Value::String(s) if !s.is_empty() => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(format!("match.{k} must be a non-empty string")),
            };
            match k.as_str() {
                "checkout_request_id" => Ok(Matcher::CheckoutRequestId(s)),
                "originator_conversation_id" => Ok(Matcher::OriginatorConversationId(s)),
                "msisdn" => Ok(Matcher::Msisdn(s)),
                other => Err(format!(
                    "unknown match key {other:?} (checkout_request_id, originator_conversation_id, msisdn)"
                )),
            }
        }
        _ => Err(r#"match must be "next" or an object with one key"#.into()),
    }
}

fn flow_name(flow: Flow) -> &'static str {
    match flow {
        Flow::Stk => "stk",
        Flow::B2c => "b2c",
        Flow::C2b => "c2b",
    }
}

impl ForcedRule {
    fn matches(&self, flow: Flow, msisdn: &str, ocid: Option<&str>) -> bool {
        if let Some(k) = &self.kind {
            if k != flow_name(flow) {
                return false;
            }
        }
        match &self.matcher {
            Matcher::Next => true,
            Matcher::Msisdn(m) => m == msisdn,
            Matcher::OriginatorConversationId(o) => Some(o.as_str()) == ocid,
            Matcher::CheckoutRequestId(_) => false,
        }
    }

    /// The plan this rule turns `scenario` into.
    pub fn apply(&self, flow: Flow, scenario: Plan) -> Plan {
        let mut plan = match &self.result_code {
            Some(code) => Plan::new(flow, code, Delivery::Send, "forced"),
            None => Plan {
                source: "forced".into(),
                ..scenario
            },
        };
        if let Some(d) = &self.result_desc {
            plan.result_desc = d.clone();
        }
        if let Some(c) = self.callback {
            plan.delivery = c;
        }
        if let Some(m) = self.money_moves {
            plan.money_moves = m;
        }
        if self.delay_ms.is_some() {
            plan.delay_ms = self.delay_ms;
            plan.at_prompt_lifetime = false;
        }
        plan
    }
}

/// The list of pending forced outcomes, consumed in insertion order.
#[derive(Default)]
pub struct ForcedOutcomes {
    rules: Mutex<(u64, Vec<ForcedRule>)>,
}

impl ForcedOutcomes {
    pub fn next_id(&self) -> u64 {
        let mut g = lock(&self.rules);
        g.0 += 1;
        g.0
    }

    pub fn add(&self, rule: ForcedRule) {
        lock(&self.rules).1.push(rule);
    }

    pub fn list(&self) -> Vec<ForcedRule> {
        lock(&self.rules).1.clone()
    }

    pub fn clear(&self) {
        lock(&self.rules).1.clear();
    }

    /// Takes (one use of) the first rule matching a new request.
    pub fn take(&self, flow: Flow, msisdn: &str, ocid: Option<&str>) -> Option<ForcedRule> {
        let mut g = lock(&self.rules);
        let idx = g.1.iter().position(|r| r.matches(flow, msisdn, ocid))?;
        let rule = g.1[idx].clone();
        match g.1[idx].remaining {
            Some(1) => {
                g.1.remove(idx);
            }
            Some(ref mut n) => *n -= 1,
            None => {}
        }
        Some(rule)
    }

    /// Returns a use taken by a request that was then refused.
    pub fn give_back(&self, rule: ForcedRule) {
        let mut g = lock(&self.rules);
        if let Some(r) = g.1.iter_mut().find(|r| r.id == rule.id) {
            if let Some(n) = r.remaining.as_mut() {
                *n += 1;
            }
        } else {
            g.1.insert(
                0,
                ForcedRule {
                    remaining: Some(1),
                    ..rule
                },
            );
        }
    }
}
