//! Use cases: the application logic between the HTTP/queue edges and the domain. Each service
//! holds exactly the ports it needs.

pub mod c2b;
pub mod callback_intake;
pub mod callback_processor;
pub mod checkout;
pub mod idempotent;
pub mod limits;
pub mod payments;
pub mod payouts;
pub mod readiness;
pub mod store_failure;
