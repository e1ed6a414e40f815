//! STK Push payments: initiation (the service), the flow on the settle engine, its callbacks
//! and its sweep (STK Query, deadlines).

pub mod callbacks;
pub mod flow;
pub mod service;
pub mod sweep;

pub use service::*;
