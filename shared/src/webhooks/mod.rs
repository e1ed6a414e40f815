//! Signed merchant webhooks: endpoints, Standard Webhooks signatures, deliveries with their
//! attempts, and the sender that refuses private targets.

pub mod address;
pub mod delivery;
pub mod dispatch;
pub mod endpoint;
pub mod repo;
pub mod service;
pub mod signature;
pub mod target;
