//! Simulator configuration: profiles, apps, shortcodes, timings. Serializable so that a JSON file,
//! the CLI and `PATCH /__control/config` all edit the same struct.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

use crate::faults::FaultConfig;
use crate::test_credentials as tc;

/// A Daraja API product an app can have enabled. Tokens of an app without the product get
/// "...no apiproduct match found".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    /// M-Pesa Express: STK Push and STK Query.
    Stk,
    /// C2B register URL and simulate.
    C2b,
    /// B2C payment request (v1 and v3).
    B2c,
    TransactionStatus,
    AccountBalance,
    Reversal,
}

impl Product {
    pub const ALL: [Product; 6] = [
        Product::Stk,
        Product::C2b,
        Product::B2c,
        Product::TransactionStatus,
        Product::AccountBalance,
        Product::Reversal,
    ];
}

/// One Daraja app (consumer key/secret pair).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    #[serde(default)]
    pub name: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    #[serde(default = "all_products")]
    pub products: Vec<Product>,
}

fn all_products() -> Vec<Product> {
    Product::ALL.to_vec()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortcodeKind {
    Paybill,
    Till,
}

/// A shortcode that can receive STK Push payments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StkShortcode {
    pub shortcode: String,
    pub passkey: String,
    #[serde(default = "paybill")]
    pub kind: ShortcodeKind,
    /// For a till store number: the till numbers accepted as PartyB.
    #[serde(default)]
    pub tills: Vec<String>,
    #[serde(default)]
    pub name: String,
}

fn paybill() -> ShortcodeKind {
    ShortcodeKind::Paybill
}

/// An organisation shortcode that pays out (B2C PartyA) or is queried (balance).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgShortcode {
    pub shortcode: String,
    #[serde(default)]
    pub name: String,
    /// Opening utility account balance in whole shillings.
    #[serde(default)]
    pub utility_balance: u64,
    /// Opening working account balance in whole shillings.
    #[serde(default)]
    pub working_balance: u64,
}

/// An API initiator and the password its SecurityCredential must decrypt to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitiatorConfig {
    pub name: String,
    pub password: String,
}

/// Inclusive range of milliseconds; the value used is drawn from the seeded RNG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayRange {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl DelayRange {
    /// A delay in the range (an inverted range counts as its minimum).
    pub fn draw(&self, rng: &mut impl rand::Rng) -> u64 {
        rng.gen_range(self.min_ms..=self.max_ms.max(self.min_ms))
    }

    pub const fn fixed(ms: u64) -> Self {
        DelayRange { min_ms: ms, max_ms: ms }
    }
}

/// Which success shape `registerurl` answers with (Daraja's vary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterResponseStyle {
    /// Pick one of the shapes below with the seeded RNG.
    Vary,
    /// `"ResponseCode": "0"`.
    Code0,
    /// `"ResponseCode": "00000000"`.
    Code00000000,
    /// Only `"ResponseDescription": "Success"`.
    DescriptionOnly,
}

/// Everything the simulator can be told. `Default` is sandbox-like with short delays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Seed of the RNG behind ids, receipts, tokens, delays (and faults unless they set their own).
    pub seed: u64,
    pub apps: Vec<AppConfig>,
    /// Lifetime of OAuth tokens; `expires_in` is returned as this number, as a string.
    pub token_lifetime_secs: u64,
    pub stk_shortcodes: Vec<StkShortcode>,
    pub org_shortcodes: Vec<OrgShortcode>,
    pub initiators: Vec<InitiatorConfig>,
    /// Wrong SecurityCredentials before an initiator is locked (8006).
    pub initiator_lock_after: u32,
    /// Delay before an asynchronous outcome (STK callback, B2C/TS/balance/reversal result, C2B).
    pub callback_delay: DelayRange,
    /// STK Query answers "does not Exist" for an open payment this young.
    pub stk_query_not_found_ms: u64,
    /// How long an unanswered prompt stays open (the unreachable scenario ends with 1037 then).
    pub stk_prompt_lifetime_ms: u64,
    /// A second push to a phone with an open prompt is refused ("Unable to lock subscriber").
    pub stk_subscriber_lock: bool,
    /// An STK payment to a shortcode with C2B URLs also sends a C2B confirmation.
    pub stk_emits_c2b_confirmation: bool,
    /// STK callback `Amount` as `100.0` instead of `100`.
    pub stk_callback_amount_as_float: bool,
    /// Call the ValidationURL before confirming C2B payments.
    pub c2b_validation_enabled: bool,
    /// How long the validation URL has to answer before ResponseType decides.
    pub c2b_validation_timeout_ms: u64,
    /// The sandbox lets a shortcode register again; production answers 500.003.1001.
    pub c2b_allow_reregistration: bool,
    pub c2b_register_response: RegisterResponseStyle,
    /// Words refused in C2B URLs, matched case-insensitively.
    pub c2b_forbidden_url_words: Vec<String>,
    /// Host fragments refused in C2B URLs (tunnels, request bins).
    pub c2b_refused_url_hosts: Vec<String>,
    /// Timeout of one callback POST.
    pub callback_timeout_ms: u64,
    /// Header carrying the simulated source IP on callbacks; empty = none.
    pub callback_source_header: String,
    pub callback_source_ip: String,
    /// Gap between the two deliveries of a `duplicate` fault.
    pub duplicate_gap_ms: u64,
    /// Longest a `reorder` fault holds a callback waiting for a later one to overtake it.
    pub reorder_max_hold_ms: u64,
    /// Request bodies above this size are refused.
    pub max_body_bytes: usize,
    /// Fault rules active at startup and after `POST /__control/reset`.
    pub faults: FaultConfig,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            seed: 42,
            apps: vec![AppConfig {
                name: "default".into(),
                consumer_key: tc::CONSUMER_KEY.into(),
                consumer_secret: tc::CONSUMER_SECRET.into(),
                products: all_products(),
            }],
            token_lifetime_secs: 3599,
            stk_shortcodes: vec![StkShortcode {
                shortcode: tc::STK_SHORTCODE.into(),
                passkey: tc::STK_PASSKEY.into(),
                kind: ShortcodeKind::Paybill,
                tills: vec![],
                name: "SIM SHOP".into(),
            }],
            org_shortcodes: vec![
                OrgShortcode {
                    shortcode: tc::B2C_SHORTCODE.into(),
                    name: "SIM PAYOUTS".into(),
                    utility_balance: 10_000_000,
                    working_balance: 700_000,
                },
                OrgShortcode {
                    shortcode: tc::C2B_SHORTCODE.into(),
                    name: "SIM PAYBILL".into(),
                    utility_balance: 0,
                    working_balance: 0,
                },
            ],
            initiators: vec![InitiatorConfig {
                name: tc::INITIATOR_NAME.into(),
                password: tc::INITIATOR_PASSWORD.into(),
            }],
            initiator_lock_after: 3,
            callback_delay: DelayRange {
                min_ms: 1_000,
                max_ms: 3_000,
            },
            stk_query_not_found_ms: 1_000,
            stk_prompt_lifetime_ms: 15_000,
            stk_subscriber_lock: true,
            stk_emits_c2b_confirmation: true,
            stk_callback_amount_as_float: false,
            c2b_validation_enabled: true,
            c2b_validation_timeout_ms: 8_000,
            c2b_allow_reregistration: true,
            c2b_register_response: RegisterResponseStyle::Vary,
            c2b_forbidden_url_words: ["mpesa", "m-pesa", "safaricom", "exe", "exec", "cmd", "sql", "query"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            c2b_refused_url_hosts: [
                "ngrok",
                "mockbin",
                "requestbin",
                "webhook.site",
                "pipedream",
                "localtunnel",
                "loca.lt",
                "beeceptor",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            callback_timeout_ms: 5_000,
            callback_source_header: "X-Forwarded-For".into(),
            callback_source_ip: "196.201.214.200".into(),
            duplicate_gap_ms: 200,
            reorder_max_hold_ms: 5_000,
            max_body_bytes: 64 * 1024,
            faults: FaultConfig::default(),
        }
    }
}

/// Named starting points for the CLI's `--profile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Fast,
    Default,
    Realistic,
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fast" => Ok(Profile::Fast),
            "default" => Ok(Profile::Default),
            "realistic" => Ok(Profile::Realistic),
            other => Err(format!(
                "unknown profile {other:?} (expected fast, default or realistic)"
            )),
        }
    }
}

impl SimulatorConfig {
    pub fn from_profile(profile: Profile) -> Self {
        match profile {
            Profile::Fast => Self::fast_for_tests(),
            Profile::Default => Self::default(),
            Profile::Realistic => Self::realistic(),
        }
    }

    /// Millisecond delays and timeouts so a test suite runs in seconds.
    pub fn fast_for_tests() -> Self {
        SimulatorConfig {
            callback_delay: DelayRange { min_ms: 5, max_ms: 30 },
            stk_query_not_found_ms: 0,
            stk_prompt_lifetime_ms: 300,
            c2b_validation_timeout_ms: 500,
            callback_timeout_ms: 2_000,
            duplicate_gap_ms: 20,
            reorder_max_hold_ms: 1_000,
            ..Self::default()
        }
    }

    /// Timings like the real sandbox: callbacks after 20-60 s, "does not Exist" for 30 s.
    pub fn realistic() -> Self {
        SimulatorConfig {
            callback_delay: DelayRange {
                min_ms: 20_000,
                max_ms: 60_000,
            },
            stk_query_not_found_ms: 30_000,
            stk_prompt_lifetime_ms: 60_000,
            c2b_validation_timeout_ms: 8_000,
            callback_timeout_ms: 10_000,
            ..Self::default()
        }
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn with_callback_delay_ms(mut self, min_ms: u64, max_ms: u64) -> Self {
        self.callback_delay = DelayRange { min_ms, max_ms };
        self
    }

    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    pub fn with_callback_source(mut self, header: &str, ip: &str) -> Self {
        self.callback_source_header = header.into();
        self.callback_source_ip = ip.into();
        self
    }

    /// Parses a JSON config (file or PATCH body) over `self`: keys present replace, nested
    /// objects merge, absent keys keep their value.
    pub fn merged_with(&self, patch: &Value) -> Result<Self, String> {
        if !patch.is_object() {
            return Err("configuration must be a JSON object".into());
        }
        let mut base = serde_json::to_value(self).map_err(|e| e.to_string())?;
        merge(&mut base, patch);
        let merged: SimulatorConfig = serde_json::from_value(base).map_err(|e| e.to_string())?;
        merged.validate()?;
        Ok(merged)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.callback_delay.min_ms > self.callback_delay.max_ms {
            return Err("callback_delay.min_ms must not exceed max_ms".into());
        }
        if self.apps.is_empty() {
            return Err("at least one app is required".into());
        }
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes must be positive".into());
        }
        self.faults.validate()
    }

    pub fn stk_shortcode(&self, code: &str) -> Option<&StkShortcode> {
        self.stk_shortcodes.iter().find(|s| s.shortcode == code)
    }

    pub fn org(&self, code: &str) -> Option<&OrgShortcode> {
        self.org_shortcodes.iter().find(|s| s.shortcode == code)
    }

    pub fn initiator_password(&self, name: &str) -> Option<&str> {
        self.initiators
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.password.as_str())
    }

    /// Display name used in result parameters (`600992 - SIM PAYOUTS`).
    pub fn shortcode_name(&self, code: &str) -> String {
        let name = self
            .org(code)
            .map(|o| o.name.clone())
            .or_else(|| self.stk_shortcode(code).map(|s| s.name.clone()))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "SIMULATED ORG".into());
        format!("{code} - {name}")
    }

    pub fn callback_timeout(&self) -> Duration {
        Duration::from_millis(self.callback_timeout_ms)
    }
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readme_example_parses_over_a_profile() {
        let patch = json!({ "seed": 7,
          "callback_delay": { "min_ms": 200, "max_ms": 800 },
          "apps": [ { "consumer_key": "k", "consumer_secret": "s", "products": ["stk", "b2c", "transaction_status"] } ],
          "stk_shortcodes": [ { "shortcode": "174379", "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919" },
                              { "shortcode": "300300", "passkey": "p", "kind": "till", "tills": ["300301"] } ],
          "faults": { "rules": { "stk_callback": { "kind": "duplicate", "probability": 0.2 } } } });
        let cfg = SimulatorConfig::fast_for_tests().merged_with(&patch).unwrap();
        assert_eq!(cfg.seed, 7);
        assert_eq!(
            cfg.callback_delay,
            DelayRange {
                min_ms: 200,
                max_ms: 800
            }
        );
        assert_eq!(cfg.stk_shortcodes[1].kind, ShortcodeKind::Till);
        assert_eq!(cfg.faults.rules.len(), 1);
        assert_eq!(cfg.c2b_validation_timeout_ms, 500, "profile values kept");
        assert!(SimulatorConfig::default().merged_with(&json!({"nope": 1})).is_err());
        assert!(SimulatorConfig::realistic().callback_delay.min_ms >= 20_000);
    }
}
