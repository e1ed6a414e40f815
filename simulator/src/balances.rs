//! Organisation account balances, so balance queries and B2C results reflect what happened.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::SimulatorConfig;
use crate::sync::lock;

/// Balances in cents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub working: i64,
    pub utility: i64,
    pub charges_paid: i64,
}

fn kes(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

impl Account {
    /// The `&`-separated `Name|Currency|amount|...` format of the AccountBalance parameter.
    pub fn daraja_string(&self) -> String {
        let row = |name: &str, c: i64| format!("{name}|KES|{}|{}|0.00|0.00", kes(c), kes(c));
        [
            row("Working Account", self.working),
            row("Float Account", 0),
            row("Utility Account", self.utility),
            row("Charges Paid Account", self.charges_paid),
            row("Organization Settlement Account", 0),
        ]
        .join("&")
    }
}

/// A B2C fee by amount band (whole shillings); only used to make balances move plausibly.
pub fn b2c_charge(amount: u64) -> i64 {
    match amount {
        0..=100 => 0,
        101..=1_500 => 5,
        1_501..=5_000 => 9,
        5_001..=20_000 => 11,
        _ => 13,
    }
}

#[derive(Default)]
pub struct Balances {
    accounts: Mutex<HashMap<String, Account>>,
}

impl Balances {
    pub fn new(cfg: &SimulatorConfig) -> Self {
        let b = Balances::default();
        b.reset(cfg);
        b
    }

    pub fn reset(&self, cfg: &SimulatorConfig) {
        let mut g = lock(&self.accounts);
        g.clear();
        for o in &cfg.org_shortcodes {
            g.insert(
                o.shortcode.clone(),
                Account {
                    working: o.working_balance as i64 * 100,
                    utility: o.utility_balance as i64 * 100,
                    charges_paid: 0,
                },
            );
        }
    }

    pub fn get(&self, shortcode: &str) -> Account {
        lock(&self.accounts).get(shortcode).copied().unwrap_or_default()
    }

    /// A customer paid the organisation (STK, C2B).
    pub fn credit(&self, shortcode: &str, amount: u64) {
        lock(&self.accounts).entry(shortcode.to_string()).or_default().utility += amount as i64 * 100;
    }

    /// A reversal took a customer payment back.
    pub fn debit(&self, shortcode: &str, amount: u64) -> Account {
        let mut g = lock(&self.accounts);
        let a = g.entry(shortcode.to_string()).or_default();
        a.utility -= amount as i64 * 100;
        *a
    }

    /// Pays out from the utility account; `None` when funds are insufficient.
    pub fn disburse(&self, shortcode: &str, amount: u64) -> Option<Account> {
        let mut g = lock(&self.accounts);
        let a = g.entry(shortcode.to_string()).or_default();
        let cents = amount as i64 * 100;
        if a.utility < cents {
            return None;
        }
        a.utility -= cents;
        a.charges_paid -= b2c_charge(amount) * 100;
        Some(*a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format() {
        let a = Account {
            working: 70_000_000,
            utility: 22_803_700,
            charges_paid: -154_000,
        };
        let s = a.daraja_string();
        assert!(s.starts_with("Working Account|KES|700000.00|700000.00|0.00|0.00&Float Account"));
        assert!(s.contains("Charges Paid Account|KES|-1540.00|"));
        assert_eq!(s.split('&').count(), 5);
    }
}
