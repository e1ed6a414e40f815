//! The seeded mix of what merchants and customers do: STK payments (including the simulator's
//! failure and "no callback" numbers), payouts (including queue timeouts and results that never
//! come, some awaiting approval), invoices and the C2B payments that pay them, forged
//! confirmations, and repeated or concurrent Idempotency-Keys. The same seed gives the same mix.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::plan::ChaosPlan;

/// How a creation is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Copies {
    Once,
    /// Sent again with the same key and body once the first answer came: a replay.
    Replay,
    /// Sent this many times at once with the same key and body.
    Concurrent(u8),
    /// Then the same key with another amount: must be refused (`idempotency_key_reused`).
    ReusedKey,
}

/// A scenario: the customer's number and what the simulator does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scenario {
    pub name: &'static str,
    /// A fixed number, or `None` for a fresh ordinary number (the default outcome: success).
    pub phone: Option<&'static str>,
    weight: u32,
}

const fn sc(name: &'static str, phone: Option<&'static str>, weight: u32) -> Scenario {
    Scenario { name, phone, weight }
}

/// STK Push: mostly successes; the failure codes; "no callback" (the prompt expires, Query
/// answers 1037); "success, callback never sent" (only STK Query knows; its C2B echo still comes).
pub const STK_SCENARIOS: &[Scenario] = &[
    sc("success", None, 700),
    sc("success_no_callback", Some("254700090002"), 50),
    sc("unreachable_no_callback", Some("254700090001"), 40),
    sc("cancelled_1032", Some("254700001032"), 40),
    sc("insufficient_1", Some("254700000001"), 30),
    sc("wrong_pin_2001", Some("254700002001"), 20),
    sc("no_answer_1037", Some("254700001037"), 20),
    sc("expired_1019", Some("254700001019"), 10),
    sc("push_not_sent_9999", Some("254700009999"), 10),
    sc("sfc_ic0003", Some("254700090003"), 10),
    sc("sandbox_1037", Some("254708374149"), 10),
    sc("locked_1001", Some("254700001001"), 10),
    sc("pin_locked_8006", Some("254700008006"), 10),
    sc("limit_2", Some("254700000002"), 10),
];

/// B2C: successes; failures; money moved with no result POST; queue timeout with and without
/// money; nothing posted and no money.
pub const PAYOUT_SCENARIOS: &[Scenario] = &[
    sc("success", None, 700),
    sc("moved_no_result", Some("254700090001"), 60),
    sc("queue_timeout_moved", Some("254700090002"), 60),
    sc("queue_timeout_not_moved", Some("254700090004"), 40),
    sc("nothing_not_moved", Some("254700090005"), 40),
    sc("not_registered_2040", Some("254700002040"), 30),
    sc("insufficient_1", Some("254700000001"), 20),
    sc("initiator_21", Some("254700000021"), 15),
    sc("invalid_state_11", Some("254700000011"), 15),
    sc("rule_17", Some("254700000017"), 20),
];

fn pick(rng: &mut StdRng, table: &[Scenario]) -> Scenario {
    let total: u32 = table.iter().map(|s| s.weight).sum();
    let mut n = rng.gen_range(0..total);
    for s in table {
        if n < s.weight {
            return *s;
        }
        n -= s.weight;
    }
    table[0]
}

/// A fresh ordinary number with `prefix` (`25471`, `25472`, ...): never a scenario number.
fn fresh_phone(rng: &mut StdRng, prefix: &str) -> String {
    format!("{prefix}{:07}", rng.gen_range(0..10_000_000u32))
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentOp {
    /// Our name for it: also the payment's `reference` (and so Daraja's AccountReference).
    pub id: String,
    pub key: String,
    pub phone: String,
    pub amount: u64,
    pub scenario: &'static str,
    pub copies: Copies,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Review {
    Approve { twice: bool },
    Reject,
}

#[derive(Debug, Clone, Serialize)]
pub struct PayoutOp {
    /// Our name for it, carried in the payout's metadata (`chaos_id`).
    pub id: String,
    pub key: String,
    pub phone: String,
    pub amount: u64,
    pub scenario: &'static str,
    pub copies: Copies,
    /// What the approver does when the payout awaits approval.
    pub review: Review,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvoiceOp {
    pub id: String,
    pub key: String,
    pub account: String,
    pub amount: u64,
    pub copies: Copies,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum C2bKind {
    /// Pays what the invoice asks.
    Full,
    Partial,
    /// More than asked (validation may refuse it).
    Over,
    /// An account number no invoice has.
    UnknownAccount,
    /// The customer's payment fails: nothing is confirmed.
    Fails,
    /// Money moves, the confirmation is never sent.
    NoConfirmation,
}

#[derive(Debug, Clone, Serialize)]
pub struct C2bOp {
    pub id: String,
    pub account: String,
    pub amount: u64,
    pub phone: String,
    pub kind: C2bKind,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForgedOp {
    pub id: String,
    pub account: String,
    pub amount: u64,
    /// A receipt Daraja never issued.
    pub trans_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub enum Op {
    Payment(PaymentOp),
    Payout(PayoutOp),
    C2b(C2bOp),
    Forged(ForgedOp),
}

/// What the run does: invoices first (the C2B payments pay them), then the mix, shuffled.
#[derive(Debug, Clone, Serialize)]
pub struct Mix {
    pub invoices: Vec<InvoiceOp>,
    pub ops: Vec<Op>,
}

/// The C2B shortcode the invoices live on.
pub const C2B_SHORTCODE: &str = "600984";
/// The STK paybill (also registered for C2B: M-Pesa echoes each STK payment as a confirmation).
pub const STK_SHORTCODE: &str = "174379";

fn copies(rng: &mut StdRng, plan: &ChaosPlan) -> Copies {
    let x: f64 = rng.gen();
    if x < plan.replay_share {
        Copies::Replay
    } else if x < plan.replay_share + plan.concurrent_share {
        Copies::Concurrent(rng.gen_range(2..=3))
    } else if x < plan.replay_share + plan.concurrent_share + plan.reused_key_share {
        Copies::ReusedKey
    } else {
        Copies::Once
    }
}

impl Mix {
    pub fn generate(plan: &ChaosPlan) -> Mix {
        let mut rng = StdRng::seed_from_u64(plan.seed);
        let run = plan.seed % 1000;
        let key = |kind: &str, n: usize| format!("chaos-{}-{}-{kind}{n:06}", plan.name, plan.seed);
        let invoices: Vec<InvoiceOp> = (0..plan.invoices)
            .map(|n| InvoiceOp {
                id: format!("I{n:06}"),
                key: key("I", n),
                account: format!("INV-{run}-{n}"),
                amount: rng.gen_range(100..=3_000),
                copies: copies(&mut rng, plan),
            })
            .collect();
        let mut ops = Vec::with_capacity(plan.payments + plan.payouts + plan.c2b + plan.forged_c2b);
        for n in 0..plan.payments {
            let scenario = pick(&mut rng, STK_SCENARIOS);
            ops.push(Op::Payment(PaymentOp {
                id: format!("P{n:06}"),
                key: key("P", n),
                phone: scenario
                    .phone
                    .map(str::to_owned)
                    .unwrap_or_else(|| fresh_phone(&mut rng, "25471")),
                amount: rng.gen_range(1..=5_000),
                scenario: scenario.name,
                copies: copies(&mut rng, plan),
            }));
        }
        for n in 0..plan.payouts {
            let scenario = pick(&mut rng, PAYOUT_SCENARIOS);
            let review = if rng.gen::<f64>() < plan.reject_share {
                Review::Reject
            } else {
                Review::Approve {
                    twice: rng.gen::<f64>() < plan.double_approve_share,
                }
            };
            ops.push(Op::Payout(PayoutOp {
                id: format!("O{n:06}"),
                key: key("O", n),
                phone: scenario
                    .phone
                    .map(str::to_owned)
                    .unwrap_or_else(|| fresh_phone(&mut rng, "25473")),
                amount: rng.gen_range(10..=2_000),
                scenario: scenario.name,
                copies: copies(&mut rng, plan),
                review,
            }));
        }
        for n in 0..plan.c2b {
            let x: f64 = rng.gen();
            let kind = match x {
                x if x < 0.55 => C2bKind::Full,
                x if x < 0.70 => C2bKind::Partial,
                x if x < 0.75 => C2bKind::Over,
                x if x < 0.85 => C2bKind::UnknownAccount,
                x if x < 0.95 => C2bKind::Fails,
                _ => C2bKind::NoConfirmation,
            };
            let invoice = (!invoices.is_empty()).then(|| &invoices[n % invoices.len()]);
            let (account, asked) = match (kind, invoice) {
                (C2bKind::UnknownAccount, _) | (_, None) => (format!("ACC-{run}-{n}"), rng.gen_range(10..=3_000)),
                (_, Some(invoice)) => (invoice.account.clone(), invoice.amount),
            };
            let amount = match kind {
                C2bKind::Partial => (asked / 2).max(1),
                C2bKind::Over => asked + 100,
                _ => asked,
            };
            let phone = match kind {
                C2bKind::Fails => "254700000001".to_owned(),
                C2bKind::NoConfirmation => "254700090002".to_owned(),
                _ => fresh_phone(&mut rng, "25472"),
            };
            ops.push(Op::C2b(C2bOp {
                id: format!("C{n:06}"),
                account,
                amount,
                phone,
                kind,
            }));
        }
        for n in 0..plan.forged_c2b {
            let (account, amount) = match invoices.get(rng.gen_range(0..invoices.len().max(1))) {
                Some(invoice) => (invoice.account.clone(), invoice.amount),
                None => (format!("ACC-{run}-F{n}"), 500),
            };
            ops.push(Op::Forged(ForgedOp {
                id: format!("F{n:06}"),
                account,
                amount,
                trans_id: format!("TKF{run:03}{n:04}"),
            }));
        }
        ops.shuffle(&mut rng);
        Mix { invoices, ops }
    }

    pub fn payments(&self) -> impl Iterator<Item = &PaymentOp> {
        self.ops.iter().filter_map(|op| match op {
            Op::Payment(p) => Some(p),
            _ => None,
        })
    }

    pub fn payouts(&self) -> impl Iterator<Item = &PayoutOp> {
        self.ops.iter().filter_map(|op| match op {
            Op::Payout(p) => Some(p),
            _ => None,
        })
    }

    pub fn forged(&self) -> impl Iterator<Item = &ForgedOp> {
        self.ops.iter().filter_map(|op| match op {
            Op::Forged(f) => Some(f),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::plan::Form;

    #[test]
    fn the_same_seed_gives_the_same_mix_and_another_seed_another() {
        let plan = ChaosPlan::memory(Form::Short, 11);
        let a = serde_json::to_string(&Mix::generate(&plan)).unwrap();
        assert_eq!(a, serde_json::to_string(&Mix::generate(&plan)).unwrap());
        let other = ChaosPlan::memory(Form::Short, 12);
        assert_ne!(a, serde_json::to_string(&Mix::generate(&other)).unwrap());
    }

    #[test]
    fn the_mix_has_every_flow_scenario_and_kind_of_duplicate() {
        let plan = ChaosPlan::memory(Form::Short, 3);
        let mix = Mix::generate(&plan);
        assert_eq!(mix.payments().count(), plan.payments);
        assert_eq!(mix.payouts().count(), plan.payouts);
        assert_eq!(mix.forged().count(), plan.forged_c2b);
        assert_eq!(mix.invoices.len(), plan.invoices);
        for scenario in STK_SCENARIOS {
            assert!(mix.payments().any(|p| p.scenario == scenario.name), "{}", scenario.name);
        }
        for scenario in PAYOUT_SCENARIOS {
            assert!(mix.payouts().any(|p| p.scenario == scenario.name), "{}", scenario.name);
        }
        for copies in [Copies::Replay, Copies::ReusedKey, Copies::Once] {
            assert!(mix.payments().any(|p| p.copies == copies), "{copies:?}");
        }
        assert!(mix.payments().any(|p| matches!(p.copies, Copies::Concurrent(_))));
        // References are unique (they name the payment at Daraja) and valid (1-12 characters).
        let mut refs: Vec<&str> = mix.payments().map(|p| p.id.as_str()).collect();
        refs.sort_unstable();
        refs.dedup();
        assert_eq!(refs.len(), plan.payments);
        assert!(refs.iter().all(|r| r.len() <= 12));
        // Ordinary numbers never collide with the scenario table's.
        assert!(mix
            .payments()
            .filter(|p| p.scenario == "success")
            .all(|p| p.phone.starts_with("25471") && p.phone.len() == 12));
    }
}
