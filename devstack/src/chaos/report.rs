//! The run's verdict: per flow, how many records broke each invariant, each failing record named
//! with its id and the ground-truth row, the records legitimately still open with their reason,
//! 5xx answers per route, and the faults that fired.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::client::RouteStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    Stk,
    Payouts,
    C2b,
    Invoices,
}

impl Flow {
    pub const ALL: [Flow; 4] = [Flow::Stk, Flow::Payouts, Flow::C2b, Flow::Invoices];

    pub fn label(self) -> &'static str {
        match self {
            Flow::Stk => "stk",
            Flow::Payouts => "payouts",
            Flow::C2b => "c2b",
            Flow::Invoices => "invoices",
        }
    }

    /// The flow an API route belongs to (for 5xx answers).
    pub fn of_route(route: &str) -> Option<Flow> {
        if route.contains("/v1/payments") || route.contains("/callbacks/stk") {
            Some(Flow::Stk)
        } else if route.contains("/v1/payouts") {
            Some(Flow::Payouts)
        } else if route.contains("expected-payments") {
            Some(Flow::Invoices)
        } else if route.contains("/c2b") {
            Some(Flow::C2b)
        } else {
            None
        }
    }
}

/// An invariant. Every count must be 0 for the run to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Money moved (or we were given an id) and the product does not have it.
    Lost,
    /// One receipt counted more than once (a C2B echo recorded as new money, a receipt twice).
    AppliedTwice,
    /// Money moved twice for one payment or payout.
    PaidTwice,
    /// Daraja got the same payment or payout twice (a second STK prompt, a second B2C request).
    SentTwice,
    /// A final state that contradicts the money (paid but failed, completed with nothing paid).
    WrongFinalState,
    /// Money recorded that never moved (a forged or unknown receipt counted).
    Phantom,
    /// Open at the end with no reason the ground truth explains.
    StillOpen,
    /// 5xx answers of the API (every 5xx counts: per route below).
    ServerErrors,
    /// One Idempotency-Key (or one of our names) gave two resources.
    DuplicateCreations,
    /// A state change without its event, an event without its change, two for one, out of
    /// order, or never delivered (the outbox invariant).
    Outbox,
}

impl Check {
    pub const ALL: [Check; 10] = [
        Check::Lost,
        Check::AppliedTwice,
        Check::PaidTwice,
        Check::SentTwice,
        Check::WrongFinalState,
        Check::Phantom,
        Check::StillOpen,
        Check::ServerErrors,
        Check::DuplicateCreations,
        Check::Outbox,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Check::Lost => "lost",
            Check::AppliedTwice => "applied twice",
            Check::PaidTwice => "paid twice",
            Check::SentTwice => "sent twice",
            Check::WrongFinalState => "wrong final state",
            Check::Phantom => "money that never moved",
            Check::StillOpen => "still open, unexplained",
            Check::ServerErrors => "5xx answers",
            Check::DuplicateCreations => "duplicate creations",
            Check::Outbox => "events (outbox)",
        }
    }

    /// Whether the invariant means anything for the flow (`-` in the table otherwise).
    pub fn applies(self, flow: Flow) -> bool {
        !matches!(
            (self, flow),
            (Check::PaidTwice | Check::SentTwice, Flow::C2b | Flow::Invoices)
                | (Check::StillOpen, Flow::Invoices)
                | (Check::DuplicateCreations, Flow::C2b)
                | (Check::Outbox, Flow::Invoices)
        )
    }
}

/// One record that breaks an invariant.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub flow: Flow,
    pub check: Check,
    /// Our id and the product's (`P000123 pay_01J...`).
    pub record: String,
    pub detail: String,
    /// The ground-truth rows behind the verdict.
    pub truth: Value,
}

/// A record open at the end (or a tolerated oddity) that the ground truth explains.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    pub flow: Flow,
    pub record: String,
    pub reason: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrashRecord {
    pub killed_at: String,
    pub down_ms: u64,
    pub back_after_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub plan: String,
    pub seed: u64,
    pub backend: String,
    pub summary: String,
    pub records: BTreeMap<Flow, usize>,
    pub findings: Vec<Finding>,
    /// Legitimately still open, with the reason.
    pub still_open: Vec<Explained>,
    /// Not a broken invariant, worth knowing (e.g. a B2C request repeated across a crash).
    pub tolerated: Vec<Explained>,
    pub http: BTreeMap<String, RouteStats>,
    pub crashes: Vec<CrashRecord>,
    /// Faults that fired, `endpoint kind` → count.
    pub faults_fired: BTreeMap<String, u64>,
    /// Messages left in dead-letter queues at the end, per queue.
    pub dead_letters: BTreeMap<String, usize>,
    pub notes: Vec<String>,
    pub drive_secs: f64,
    pub settle_secs: f64,
    pub total_secs: f64,
}

impl Report {
    pub fn count(&self, flow: Flow, check: Check) -> usize {
        if check == Check::ServerErrors {
            return self
                .http
                .iter()
                .filter(|(route, _)| Flow::of_route(route) == Some(flow))
                .map(|(_, s)| s.five_xx() as usize)
                .sum();
        }
        self.findings
            .iter()
            .filter(|f| f.flow == flow && f.check == check)
            .count()
    }

    pub fn failures(&self) -> usize {
        let per_flow: usize = Flow::ALL
            .iter()
            .flat_map(|f| Check::ALL.iter().map(move |c| (*f, *c)))
            .filter(|(f, c)| c.applies(*f))
            .map(|(f, c)| self.count(f, c))
            .sum();
        per_flow + self.dead_letters.values().sum::<usize>()
    }

    pub fn passed(&self) -> bool {
        self.failures() == 0
    }

    /// The console form: the table, 5xx per route, then up to `per_check` failing records per
    /// flow and invariant (the JSON report has them all).
    pub fn render(&self, per_check: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "== chaos run {} (seed {}, {} backend)",
            self.plan, self.seed, self.backend
        );
        let _ = writeln!(out, "{}", self.summary);
        let _ = writeln!(
            out,
            "time: {:.1} s (drive {:.1} s, settle {:.1} s); crashes: {}",
            self.total_secs,
            self.drive_secs,
            self.settle_secs,
            self.crashes.len()
        );
        let _ = write!(out, "\n{:<28}", "");
        for flow in Flow::ALL {
            let _ = write!(out, "{:>10}", flow.label());
        }
        let _ = writeln!(out);
        let _ = write!(out, "{:<28}", "records");
        for flow in Flow::ALL {
            let _ = write!(out, "{:>10}", self.records.get(&flow).copied().unwrap_or(0));
        }
        let _ = writeln!(out);
        for check in Check::ALL {
            let _ = write!(out, "{:<28}", check.label());
            for flow in Flow::ALL {
                if check.applies(flow) {
                    let _ = write!(out, "{:>10}", self.count(flow, check));
                } else {
                    let _ = write!(out, "{:>10}", "-");
                }
            }
            let _ = writeln!(out);
        }
        let _ = write!(out, "{:<28}", "still open, explained");
        for flow in Flow::ALL {
            let _ = write!(out, "{:>10}", self.still_open.iter().filter(|e| e.flow == flow).count());
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<28}{:>10}", "webhook deliveries missing", "n/a");
        if !self.dead_letters.is_empty() {
            let dl: Vec<String> = self.dead_letters.iter().map(|(q, n)| format!("{q} {n}")).collect();
            let _ = writeln!(out, "{:<28}{}", "dead letters", dl.join(", "));
        }

        let errors: Vec<(&String, &RouteStats)> = self.http.iter().filter(|(_, s)| s.five_xx() > 0).collect();
        if !errors.is_empty() {
            let _ = writeln!(out, "\n5xx answers by route:");
            for (route, stats) in errors {
                let codes: Vec<String> = stats.server_errors.iter().map(|(c, n)| format!("{c}: {n}")).collect();
                let _ = writeln!(
                    out,
                    "  {route}: {} of {} ({}){}",
                    stats.five_xx(),
                    stats.requests,
                    codes.join(", "),
                    if stats.replayed_5xx > 0 {
                        format!("; {} replays of a stored 5xx", stats.replayed_5xx)
                    } else {
                        String::new()
                    }
                );
            }
        }
        let transport: u64 = self.http.values().map(|s| s.transport_errors).sum();
        if transport > 0 {
            let _ = writeln!(out, "requests with no answer (crashes): {transport}");
        }

        let mut open_reasons: BTreeMap<(Flow, &str), usize> = BTreeMap::new();
        for e in &self.still_open {
            *open_reasons.entry((e.flow, e.reason)).or_default() += 1;
        }
        if !open_reasons.is_empty() {
            let _ = writeln!(out, "\nstill open, explained by the ground truth:");
            for ((flow, reason), n) in &open_reasons {
                let _ = writeln!(out, "  {} {reason}: {n}", flow.label());
            }
        }
        let mut tolerated: BTreeMap<(Flow, &str), usize> = BTreeMap::new();
        for e in &self.tolerated {
            *tolerated.entry((e.flow, e.reason)).or_default() += 1;
        }
        if !tolerated.is_empty() {
            let _ = writeln!(out, "\ntolerated (not an invariant):");
            for ((flow, reason), n) in &tolerated {
                let _ = writeln!(out, "  {} {reason}: {n}", flow.label());
            }
        }
        if !self.faults_fired.is_empty() {
            let fired: Vec<String> = self.faults_fired.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(out, "\nfaults fired: {}", fired.join(", "));
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }

        if !self.findings.is_empty() {
            let _ = writeln!(out, "\nfailing records (up to {per_check} per flow and invariant):");
            let mut shown: BTreeMap<(Flow, Check), usize> = BTreeMap::new();
            for f in &self.findings {
                let n = shown.entry((f.flow, f.check)).or_default();
                *n += 1;
                if *n > per_check {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "  [{} / {}] {}: {}",
                    f.flow.label(),
                    f.check.label(),
                    f.record,
                    f.detail
                );
                if !f.truth.is_null() && f.truth != Value::Array(vec![]) {
                    let _ = writeln!(out, "      truth: {}", f.truth);
                }
            }
            for ((flow, check), n) in shown {
                if n > per_check {
                    let _ = writeln!(out, "  ... {} more {} / {}", n - per_check, flow.label(), check.label());
                }
            }
        }
        let _ = writeln!(
            out,
            "\nverdict: {}",
            if self.passed() {
                "PASS (every invariant at 0)".to_owned()
            } else {
                format!("FAIL ({} broken)", self.failures())
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(flow: Flow, check: Check) -> Finding {
        Finding {
            flow,
            check,
            record: "P000001 pay_1".into(),
            detail: "money moved; shown failed".into(),
            truth: serde_json::json!([{"seq": 1}]),
        }
    }

    #[test]
    fn every_finding_and_5xx_fails_the_run_and_explained_ones_do_not() {
        let mut report = Report::default();
        report.still_open.push(Explained {
            flow: Flow::C2b,
            record: "C000001".into(),
            reason: "confirmation_not_delivered",
            detail: String::new(),
        });
        assert!(report.passed());
        report.findings.push(finding(Flow::Stk, Check::WrongFinalState));
        assert_eq!(report.failures(), 1);
        let mut stats = RouteStats::default();
        stats.server_errors.insert("503 daraja_unavailable".into(), 2);
        report.http.insert("POST /v1/payments".into(), stats);
        assert_eq!(report.count(Flow::Stk, Check::ServerErrors), 2);
        assert_eq!(report.failures(), 3);
        report.dead_letters.insert("callbacks".into(), 1);
        assert_eq!(report.failures(), 4);
        let text = report.render(5);
        assert!(text.contains("P000001 pay_1: money moved; shown failed"), "{text}");
        assert!(
            text.contains("POST /v1/payments: 2 of 0 (503 daraja_unavailable: 2)"),
            "{text}"
        );
        assert!(text.contains("c2b confirmation_not_delivered: 1"), "{text}");
        assert!(text.contains("FAIL (4 broken)"), "{text}");
    }

    #[test]
    fn routes_map_to_flows() {
        assert_eq!(Flow::of_route("POST /v1/payments"), Some(Flow::Stk));
        assert_eq!(Flow::of_route("POST /v1/payouts/{id}/approve"), Some(Flow::Payouts));
        assert_eq!(Flow::of_route("POST /v1/c2b/expected-payments"), Some(Flow::Invoices));
        assert_eq!(Flow::of_route("GET /v1/c2b/payments"), Some(Flow::C2b));
        assert_eq!(Flow::of_route("POST /c2b/confirmation/{token}"), Some(Flow::C2b));
    }
}
