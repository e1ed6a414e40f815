//! B2C payouts: creation and approval (the service), the worker that submits them, the flow on
//! the settle engine, its callbacks (results, Transaction Status) and its sweep.

pub mod callbacks;
pub mod credential;
pub mod flow;
pub mod limits;
pub mod service;
pub mod sweep;
pub mod worker;

pub use service::*;
