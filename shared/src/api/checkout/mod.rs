//! Hosted checkout over HTTP: the shop's session API (`sessions.rs`, merchant token) and the
//! customer's page (`page.rs`, public, scoped to one session).

pub mod client_limits;
pub mod page;
pub mod sessions;

pub use page::CheckoutPages;
