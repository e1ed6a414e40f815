//! Who is calling: JWT bearer tokens verified against configured keys, turned into a [`Principal`].

pub mod jwt;

use std::collections::BTreeSet;

use crate::domain::ClientId;

pub use jwt::{AuthError, JwtSettings, JwtVerifier};

/// Scopes the API knows. A token may carry others; they grant nothing here.
pub mod scopes {
    pub const PAYMENTS_WRITE: &str = "payments:write";
    pub const PAYMENTS_READ: &str = "payments:read";
    pub const PAYMENTS_READ_ALL: &str = "payments:read_all";
    pub const PAYOUTS_WRITE: &str = "payouts:write";
    pub const PAYOUTS_READ: &str = "payouts:read";
    pub const PAYOUTS_APPROVE: &str = "payouts:approve";
    pub const C2B_ADMIN: &str = "c2b:admin";
    pub const C2B_WRITE: &str = "c2b:write";
    pub const C2B_READ: &str = "c2b:read";
    pub const OPS_READ: &str = "ops:read";
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub client: ClientId,
    pub scopes: BTreeSet<String>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}
