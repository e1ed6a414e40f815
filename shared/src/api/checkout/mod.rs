//! Hosted checkout over HTTP: the shop's session API (`sessions.rs`, merchant token) and the
//! customer's page (`page.rs`, public, scoped to one session) and its live channel on AWS
//! (`live.rs`, API Gateway WebSocket API; `live_management.rs`, its `@connections` API).

pub mod client_limits;
pub mod live;
pub mod live_management;
pub mod page;
pub mod sessions;

pub use page::{CheckoutPages, LiveChannel, StatusAnswers};
