//! A shortcode's C2B configuration ([`ShortcodeConfig`]) and its registration with Daraja.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{C2bRules, DefaultDecision, Shortcode};
use crate::domain::c2b_path_tokens::PathTokens;
use crate::domain::c2b_verification::VerificationSetting;
use crate::domain::client::ClientId;

/// Which registration API (and so which MSISDN form: v1 a SHA-256 hash, v2 a masked number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum C2bVersion {
    V1,
    #[default]
    V2,
}

impl C2bVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            C2bVersion::V1 => "v1",
            C2bVersion::V2 => "v2",
        }
    }
}

/// What M-Pesa does when validation does not answer in time (exactly Daraja's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ResponseType {
    #[default]
    Completed,
    Cancelled,
}

impl ResponseType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Completed => "Completed",
            ResponseType::Cancelled => "Cancelled",
        }
    }
}

/// Where the shortcode's registration with Daraja stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// Stored, Daraja not (yet) answered.
    Pending,
    Registered,
    /// Daraja said the URLs were registered before (production registers once); ours are
    /// derived from the shortcode, so they are the same URLs.
    AlreadyRegistered,
    Failed,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Pending => "pending",
            RegistrationStatus::Registered => "registered",
            RegistrationStatus::AlreadyRegistered => "already_registered",
            RegistrationStatus::Failed => "failed",
        }
    }
}

/// Daraja's answer to the registration, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DarajaRegistration {
    pub status: RegistrationStatus,
    pub response_code: Option<String>,
    pub response_description: Option<String>,
    pub originator_conversation_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// A shortcode's C2B configuration: registration, rules and the decision when validation cannot
/// decide. Stored before Daraja is called, so validation and confirmation always find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortcodeConfig {
    pub shortcode: Shortcode,
    pub owner: ClientId,
    pub api_version: C2bVersion,
    pub response_type: ResponseType,
    pub default_decision: DefaultDecision,
    pub rules: C2bRules,
    pub validation_url: String,
    pub confirmation_url: String,
    pub registration: DarajaRegistration,
    /// How confirmations are verified (Transaction Status unless the owner opted out, audited).
    #[serde(default)]
    pub verification: VerificationSetting,
    /// The generation of the URLs' path tokens, and the one being retired.
    #[serde(default)]
    pub tokens: PathTokens,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}
