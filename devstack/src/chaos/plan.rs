//! What a chaos run does: how many payments, payouts and C2B payments, how fast, with which
//! faults, how many crashes and with which timings. Every number is a parameter; the presets are
//! the short form (the test command) and the long form (`RELIABILITY.md`).

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

/// Where the dev stack keeps its state during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// In-memory table and queues, the dev stack in this process (fast; no crashes possible).
    Memory,
    /// DynamoDB and SQS on moto's server, the dev stack a child process killed with SIGKILL.
    Aws,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChaosPlan {
    /// A label for the report (`short-memory`, `long-crash`, ...).
    pub name: String,
    pub seed: u64,
    pub backend: BackendKind,
    pub payments: usize,
    pub payouts: usize,
    pub c2b: usize,
    /// Invoices (expected payments) the C2B payments pay; default: half the C2B count.
    pub invoices: usize,
    /// Confirmations we forge (a caller who learnt the confirmation URL, with a TransID Daraja
    /// never issued): they must settle nothing.
    pub forged_c2b: usize,
    /// Creations started per second, all flows together (open loop).
    pub rate: f64,
    /// Share of creations sent again with the same key once the first answer came.
    pub replay_share: f64,
    /// Share of creations sent two or three times at once with the same key.
    pub concurrent_share: f64,
    /// Share of creations followed by the same key with another body (must be refused).
    pub reused_key_share: f64,
    /// Payouts above this need a second principal's approval (`None`: no approvals).
    pub approval_threshold: Option<u64>,
    /// Share of payouts awaiting approval that are rejected instead of approved.
    pub reject_share: f64,
    /// Share of approvals sent twice at once.
    pub double_approve_share: f64,
    pub faults: FaultPlan,
    /// SIGKILLs of the dev stack during the run (AWS backend only).
    pub crashes: usize,
    pub timings: Timings,
    /// Longest wait for the run to settle after the last creation.
    pub settle_timeout: Duration,
}

/// Short timings so that sweeps, deadlines and Transaction Status settle a run in seconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timings {
    pub payment_first_check_secs: i64,
    pub payment_deadline_secs: i64,
    pub payout_result_wait_secs: i64,
    pub payout_status_interval_secs: i64,
    pub payout_deadline_secs: i64,
    pub payout_requeue_secs: i64,
    pub sweep_interval_secs: u64,
    /// Lease of a claimed payment / payout in the sweeps.
    pub sweep_lease_secs: i64,
    /// First backoff between STK Queries of one payment.
    pub sweep_backoff_secs: i64,
    /// Between Transaction Status checks of an unverified C2B confirmation.
    pub c2b_verify_interval_secs: i64,
    /// After receipt, before "not found" may reject a C2B confirmation.
    pub c2b_verify_deadline_secs: i64,
    /// A payout job's submission lease: an answer lost after an ambiguous send waits this long
    /// before the next job asks Transaction Status.
    pub payout_submission_lease_secs: i64,
    /// Visibility timeout of the SQS queues (AWS backend): how soon a job in flight at a crash
    /// is delivered again.
    pub queue_visibility_secs: u32,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            payment_first_check_secs: 2,
            payment_deadline_secs: 15,
            payout_result_wait_secs: 3,
            payout_status_interval_secs: 2,
            payout_deadline_secs: 12,
            payout_requeue_secs: 4,
            sweep_interval_secs: 1,
            sweep_lease_secs: 5,
            sweep_backoff_secs: 2,
            c2b_verify_interval_secs: 2,
            c2b_verify_deadline_secs: 12,
            payout_submission_lease_secs: 6,
            queue_visibility_secs: 8,
        }
    }
}

impl Timings {
    /// The longest wait between two STK Queries of one payment (the dev stack's `backoff * 8`).
    pub fn sweep_backoff_max_secs(&self) -> i64 {
        self.sweep_backoff_secs * 8
    }

    /// The last moment, after the last creation, at which anything may still legitimately move.
    pub fn quiet_after(&self) -> Duration {
        // A payment whose STK Query failed at its deadline waits one whole backoff (and a lease
        // taken just before) for its next question.
        let secs = (self.payment_deadline_secs + self.sweep_backoff_max_secs() + self.sweep_lease_secs)
            .max(self.payout_deadline_secs + self.payout_result_wait_secs)
            .max(self.payout_submission_lease_secs + self.payout_requeue_secs + self.payout_deadline_secs)
            .max(0) as u64;
        Duration::from_secs(secs + 3 * self.sweep_interval_secs + u64::from(self.queue_visibility_secs) + 5)
    }
}

/// Fault rates, each a probability per event, applied to every callback kind / every endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct FaultPlan {
    pub seed: u64,
    pub duplicate: f64,
    pub drop: f64,
    pub reorder: f64,
    pub delay: f64,
    pub delay_ms: u64,
    /// `http_503` / `http_500` in phase `after`: Daraja processed the request, the answer is lost.
    pub http_503_after: f64,
    pub http_500_after: f64,
    /// Refusals in phase `before`: nothing was processed.
    pub spike_arrest: f64,
    pub quota_violation: f64,
    /// `slow` on STK Query and Transaction Status.
    pub slow: f64,
    pub slow_ms: u64,
}

/// Every callback kind the simulator sends.
pub const CALLBACK_TARGETS: &[&str] = &[
    "stk_callback",
    "b2c_result",
    "b2c_timeout",
    "c2b_validation",
    "c2b_confirmation",
    "transaction_status_result",
    "account_balance_result",
    "reversal_result",
];

/// Every endpoint the product calls. `c2b_simulate` is left out: it is the customer paying (the
/// runner), not the product; `c2b_register` only runs before the faults are switched on.
pub const ENDPOINT_TARGETS: &[&str] = &[
    "oauth",
    "stk_push",
    "stk_query",
    "b2c",
    "transaction_status",
    "c2b_register",
    "account_balance",
    "reversal",
];

impl FaultPlan {
    pub fn none(seed: u64) -> FaultPlan {
        FaultPlan {
            seed,
            duplicate: 0.0,
            drop: 0.0,
            reorder: 0.0,
            delay: 0.0,
            delay_ms: 500,
            http_503_after: 0.0,
            http_500_after: 0.0,
            spike_arrest: 0.0,
            quota_violation: 0.0,
            slow: 0.0,
            slow_ms: 1500,
        }
    }

    /// The default plan of both forms: a few percent of everything.
    pub fn standard(seed: u64) -> FaultPlan {
        FaultPlan {
            duplicate: 0.05,
            drop: 0.03,
            reorder: 0.03,
            delay: 0.05,
            http_503_after: 0.02,
            http_500_after: 0.01,
            spike_arrest: 0.02,
            quota_violation: 0.01,
            slow: 0.10,
            ..FaultPlan::none(seed)
        }
    }

    /// The simulator's `PUT /__control/faults` body.
    pub fn rules(&self) -> Value {
        let mut rules = Vec::new();
        let mut add = |endpoint: &str, kind: &str, p: f64, extra: Value| {
            if p > 0.0 {
                let mut rule = json!({"endpoint": endpoint, "kind": kind, "probability": p.min(1.0)});
                if let (Some(rule), Some(extra)) = (rule.as_object_mut(), extra.as_object()) {
                    rule.extend(extra.clone());
                }
                rules.push(rule);
            }
        };
        for target in CALLBACK_TARGETS {
            add(target, "duplicate", self.duplicate, json!({}));
            add(target, "drop", self.drop, json!({}));
            add(target, "reorder", self.reorder, json!({}));
            add(target, "delay", self.delay, json!({"delay_ms": self.delay_ms}));
        }
        for target in ENDPOINT_TARGETS {
            add(target, "http_503", self.http_503_after, json!({"phase": "after"}));
            add(target, "http_500", self.http_500_after, json!({"phase": "after"}));
            add(target, "spike_arrest", self.spike_arrest, json!({"phase": "before"}));
            add(
                target,
                "quota_violation",
                self.quota_violation,
                json!({"phase": "before"}),
            );
        }
        for target in ["stk_query", "transaction_status"] {
            add(target, "slow", self.slow, json!({"delay_ms": self.slow_ms}));
        }
        json!({"seed": self.seed, "rules": rules})
    }
}

/// Which form of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Short,
    Long,
}

impl ChaosPlan {
    fn base(name: &str, seed: u64, backend: BackendKind) -> ChaosPlan {
        ChaosPlan {
            name: name.to_owned(),
            seed,
            backend,
            payments: 0,
            payouts: 0,
            c2b: 0,
            invoices: 0,
            forged_c2b: 0,
            rate: 100.0,
            replay_share: 0.05,
            concurrent_share: 0.05,
            reused_key_share: 0.02,
            approval_threshold: Some(1_800),
            reject_share: 0.2,
            double_approve_share: 0.3,
            faults: FaultPlan::standard(seed),
            crashes: 0,
            timings: Timings::default(),
            settle_timeout: Duration::from_secs(90),
        }
    }

    /// The in-memory part: the whole mix at a high rate, no crashes.
    pub fn memory(form: Form, seed: u64) -> ChaosPlan {
        let (payments, payouts, c2b, rate) = match form {
            Form::Short => (1_000, 200, 200, 100.0),
            Form::Long => (10_000, 2_000, 2_000, 150.0),
        };
        ChaosPlan {
            payments,
            payouts,
            c2b,
            invoices: c2b / 2,
            forged_c2b: (c2b / 50).max(1),
            rate,
            // The long form's thousands of C2B confirmations are verified by Transaction Status
            // after the drive ends: give the verification sweep time to finish them.
            settle_timeout: Duration::from_secs(match form {
                Form::Short => 90,
                Form::Long => 420,
            }),
            ..ChaosPlan::base(&format!("{}-memory", form.label()), seed, BackendKind::Memory)
        }
    }

    /// The crash part on moto: a smaller mix at a rate moto's server survives, with SIGKILLs.
    pub fn crash(form: Form, seed: u64) -> ChaosPlan {
        let (payments, payouts, c2b, crashes) = match form {
            Form::Short => (150, 30, 30, 3),
            // Moto copies the whole table in every transaction: a bigger crash part makes moto,
            // not the product, the bottleneck (and its memory grows by gigabytes).
            Form::Long => (200, 40, 40, 6),
        };
        ChaosPlan {
            payments,
            payouts,
            c2b,
            invoices: c2b / 2,
            forged_c2b: (c2b / 30).max(1),
            rate: 5.0,
            crashes,
            settle_timeout: Duration::from_secs(120),
            ..ChaosPlan::base(&format!("{}-crash", form.label()), seed, BackendKind::Aws)
        }
    }

    /// The dev stack's settings as the environment variables Lambda reads (the child process
    /// gets exactly these; the in-process stack parses the same map).
    pub fn stack_env(&self) -> Vec<(&'static str, String)> {
        use checkout::config::vars;
        let t = &self.timings;
        let mut env = vec![
            // The scenario numbers are shared by many simulated customers: per-phone caps would
            // refuse what distinct customers would not. Merchant caps stay at their defaults.
            (vars::LIMIT_PHONE_PROMPTS, "off".to_owned()),
            (vars::LIMIT_PHONE_DAILY_AMOUNT, "off".to_owned()),
            (vars::LIMIT_PAYOUT_RECIPIENT_DAILY_AMOUNT, "off".to_owned()),
            (
                vars::PAYMENT_FIRST_CHECK_SECONDS,
                t.payment_first_check_secs.to_string(),
            ),
            (vars::PAYMENT_DEADLINE_SECONDS, t.payment_deadline_secs.to_string()),
            (vars::PAYOUT_RESULT_WAIT_SECONDS, t.payout_result_wait_secs.to_string()),
            (
                vars::PAYOUT_STATUS_INTERVAL_SECONDS,
                t.payout_status_interval_secs.to_string(),
            ),
            (vars::PAYOUT_DEADLINE_SECONDS, t.payout_deadline_secs.to_string()),
            (vars::PAYOUT_REQUEUE_SECONDS, t.payout_requeue_secs.to_string()),
            // Daraja calls of the dev stack are bounded by this; the lease must outlast one.
            (vars::DARAJA_TIMEOUT_MS, "5000".to_owned()),
            (
                vars::PAYOUT_SUBMISSION_LEASE_SECONDS,
                t.payout_submission_lease_secs.to_string(),
            ),
            (vars::SWEEP_QUERIES_PER_SECOND, "200".to_owned()),
            (vars::PAYOUT_SWEEP_QUERIES_PER_SECOND, "200".to_owned()),
        ];
        if let Some(threshold) = self.approval_threshold {
            env.push((vars::PAYOUT_APPROVAL_THRESHOLD, threshold.to_string()));
        }
        env
    }
}

impl Form {
    pub fn label(self) -> &'static str {
        match self {
            Form::Short => "short",
            Form::Long => "long",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_callback_kind_and_endpoint_gets_each_fault_it_can_take() {
        let rules = FaultPlan::standard(7).rules();
        let rules = rules["rules"].as_array().unwrap();
        let has = |endpoint: &str, kind: &str| rules.iter().any(|r| r["endpoint"] == endpoint && r["kind"] == kind);
        for target in CALLBACK_TARGETS {
            for kind in ["duplicate", "drop", "reorder", "delay"] {
                assert!(has(target, kind), "{target} {kind}");
            }
        }
        for target in ENDPOINT_TARGETS {
            for kind in ["http_503", "http_500", "spike_arrest", "quota_violation"] {
                assert!(has(target, kind), "{target} {kind}");
            }
        }
        assert!(has("stk_query", "slow") && has("transaction_status", "slow"));
        assert!(rules
            .iter()
            .filter(|r| r["kind"] == "http_503")
            .all(|r| r["phase"] == "after"));
        // The simulator accepts the plan as it is.
        let parsed: simulator::FaultConfig = serde_json::from_value(FaultPlan::standard(7).rules()).unwrap();
        assert!(parsed.validate().is_ok());
        assert_eq!(parsed.seed, Some(7));
    }

    #[test]
    fn a_plan_without_faults_installs_no_rule() {
        assert_eq!(FaultPlan::none(1).rules()["rules"], json!([]));
    }

    #[test]
    fn the_quiet_period_covers_every_deadline() {
        let t = Timings::default();
        let quiet = t.quiet_after().as_secs() as i64;
        assert!(quiet > t.payment_deadline_secs && quiet > t.payout_deadline_secs + t.payout_result_wait_secs);
        assert!(quiet > t.payment_deadline_secs + t.sweep_backoff_max_secs());
    }
}
