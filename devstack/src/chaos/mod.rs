//! The chaos and crash suite (issue 17): drives a seeded mix of STK payments, payouts, invoices
//! and C2B payments (with repeated and concurrent Idempotency-Keys, forged confirmations and
//! approvals) through the dev stack while the simulator injects faults (duplicated, dropped,
//! reordered and delayed callbacks; 5xx after Daraja processed a request; Spike Arrest and quota
//! refusals; slow queries), optionally SIGKILLs the dev stack (AWS backend on moto) and restarts it
//! on the same table and queues, lets everything settle, and compares every record with the
//! simulator's ground truth. `cargo run -p devstack --bin chaos -- --help`; `RELIABILITY.md`.
//!
//! - [`plan`]: counts, rates, fault plan, timings (the short and long forms are presets).
//! - [`mix`]: the seeded operations. [`drive`]: sends them. [`client`]: our API, 5xx per route.
//! - [`stack`]: the dev stack in process or as a child process ([`moto_proxy`] serialises its
//!   DynamoDB requests to moto). [`truth`]: the ground truth.
//! - [`record`]: what the run was told and what the API shows. [`check`]: the invariants.
//! - [`report`]: the verdict. [`run`]: one run start to end.

pub mod check;
pub mod client;
pub mod drive;
pub mod mix;
pub mod moto_proxy;
pub mod plan;
pub mod record;
pub mod report;
pub mod run;
pub mod stack;
pub mod truth;

pub use plan::{BackendKind, ChaosPlan, FaultPlan, Form, Timings};
pub use report::Report;
pub use run::{run, RunOptions};

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("setup: {0}")]
    Setup(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
}
