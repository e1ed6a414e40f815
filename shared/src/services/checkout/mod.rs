//! Hosted checkout: sessions a shop creates and its customer pays on our page.
//!
//! `flow.rs` puts sessions on the settle engine; `service.rs` holds the use cases (create,
//! read, expire; and the page's: start an attempt, refresh); `outcomes.rs` the events consumer
//! that ends an attempt when its payment settles; `sweep.rs` closes sessions past their expiry.

pub mod flow;
pub mod outcomes;
pub mod service;
pub mod sweep;

pub use service::{CheckoutConfig, CheckoutError, CheckoutService, StartedAttempt};
