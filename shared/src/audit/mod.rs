//! The audit trail: append-only and tamper-evident.
//!
//! What is recorded, each by the one place that sees it:
//! - every state change, from the outbox ([`log::AuditLog`] is an
//!   [`crate::events::handler::EventConsumer`]);
//! - every API call that changed something (who: token subject and merchant, source IP, user
//!   agent, request id), by the HTTP edge (`api/audit.rs`); approvals, rejections and C2B URL
//!   registrations as operator actions, webhook endpoint changes as their own kind;
//! - every callback from Safaricom with its verdict (applied, duplicate, ignored, anomaly,
//!   forged), by the callback queue's consumer before the message is deleted.
//!
//! Entries are hash-chained per resource ([`chain`]): no item is written by every payment of a
//! merchant. Per-merchant digests ([`digest`]) anchor all chains periodically and are archived
//! where the table's writers cannot reach; [`verify`] recomputes both and names the first broken
//! link. Entries are redacted by their builders ([`sources`]).

pub mod chain;
pub mod consumer;
pub mod digest;
pub mod entry;
pub mod log;
pub mod repo;
pub mod s3;
pub mod sources;
pub mod verify;

pub use entry::{AuditEntry, EntryKind};
pub use log::{Appended, AuditLog, NewEntry};
