//! Who is calling: JWT bearer tokens verified against configured keys, turned into a [`Principal`].
//!
//! A token names two parties: `sub`, the acting user or service (who did it: audit, self-approval
//! checks, idempotency scope), and `merchant`, the tenant whose data it acts on (defaults to `sub`
//! for single-user integrations). Acting across merchants takes the one operator scope,
//! [`scopes::PLATFORM_OPERATOR`].

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
    /// Read the merchant's events (`GET /v1/events`).
    pub const EVENTS_READ: &str = "events:read";
    /// Read the merchant's audit trail (`GET /v1/audit`, `GET /v1/payments/{id}/audit`, ...).
    pub const AUDIT_READ: &str = "audit:read";
    /// See the merchant's webhook endpoints and the deliveries of its events.
    pub const WEBHOOKS_READ: &str = "webhooks:read";
    /// Create, change, rotate and delete webhook endpoints; redeliver events.
    pub const WEBHOOKS_WRITE: &str = "webhooks:write";
    /// Create and expire hosted checkout sessions.
    pub const CHECKOUT_WRITE: &str = "checkout:write";
    /// Read the merchant's checkout sessions.
    pub const CHECKOUT_READ: &str = "checkout:read";
    /// The only way to act across merchants (e.g. approve another merchant's payout, administer
    /// any shortcode). It adds reach, not actions: the action's own scope is still needed. Only
    /// the identity provider's asymmetric key may grant it once one is configured (see
    /// [`super::jwt`]).
    pub const PLATFORM_OPERATOR: &str = "platform:operator";
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The acting user or service: the token's `sub`.
    pub client: ClientId,
    /// The merchant (tenant) it acts for: the token's `merchant` claim, else its `sub`.
    pub merchant: ClientId,
    pub scopes: BTreeSet<String>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Holds [`scopes::PLATFORM_OPERATOR`]: may act on every merchant's resources.
    pub fn is_operator(&self) -> bool {
        self.has_scope(scopes::PLATFORM_OPERATOR)
    }

    /// Whether a resource belonging to merchant `owner` is within this caller's reach: its own
    /// merchant's, or any merchant's for an operator. (Scopes are checked separately.)
    pub fn may_act_for(&self, owner: &ClientId) -> bool {
        self.merchant == *owner || self.is_operator()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(sub: &str, merchant: &str, scopes: &[&str]) -> Principal {
        Principal {
            client: ClientId::parse(sub).unwrap(),
            merchant: ClientId::parse(merchant).unwrap(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn reach_is_the_own_merchant_unless_operator() {
        let shop = ClientId::parse("shop-1").unwrap();
        let other = ClientId::parse("shop-2").unwrap();
        let clerk = principal("alice", "shop-1", &[scopes::PAYOUTS_APPROVE]);
        assert!(clerk.may_act_for(&shop));
        assert!(!clerk.may_act_for(&other));
        assert!(
            !clerk.may_act_for(&ClientId::parse("alice").unwrap()),
            "the merchant, not the user"
        );
        let operator = principal("ops", "platform", &[scopes::PAYOUTS_APPROVE, scopes::PLATFORM_OPERATOR]);
        assert!(operator.is_operator() && operator.may_act_for(&other));
    }
}
