//! The audit trail: where its digests are archived.

use super::{ConfigError, Settings};

/// Environment variable names.
pub mod vars {
    /// The S3 bucket (Object Lock, compliance mode) the sweeper archives audit digests to.
    /// Unset: digests are kept in the table only (the dev stack keeps them in memory too).
    pub const AUDIT_DIGEST_BUCKET: &str = "AUDIT_DIGEST_BUCKET";
}

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[(vars::AUDIT_DIGEST_BUCKET, "mpesa-checkout-dev-audit-digests")];

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// `AUDIT_DIGEST_BUCKET`, when set: an S3 bucket name (3-63 lowercase letters, digits, `-`, `.`).
    pub fn audit_digest_bucket(&self) -> Result<Option<String>, ConfigError> {
        let Some(bucket) = self.optional(vars::AUDIT_DIGEST_BUCKET) else {
            return Ok(None);
        };
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.as_bytes()[0].is_ascii_alphanumeric();
        if !valid {
            return Err(ConfigError::Invalid {
                name: vars::AUDIT_DIGEST_BUCKET,
                reason: "must be an S3 bucket name (3-63 lowercase letters, digits, '-', '.')".into(),
            });
        }
        Ok(Some(bucket))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{for_function_from_map, vars};

    #[test]
    fn the_digest_bucket_is_optional_and_checked() {
        let mut env = crate::config::examples::env("timeout-sweeper", false);
        let settings = for_function_from_map("timeout-sweeper", env.clone()).unwrap();
        assert_eq!(settings.audit_digest_bucket().unwrap(), None);
        env.insert(vars::AUDIT_DIGEST_BUCKET.into(), "Not A Bucket".into());
        let settings = for_function_from_map("timeout-sweeper", env.clone()).unwrap();
        assert!(settings.audit_digest_bucket().is_err());
        env.insert(vars::AUDIT_DIGEST_BUCKET.into(), "shop-audit-digests".into());
        let settings = for_function_from_map("timeout-sweeper", env).unwrap();
        assert_eq!(settings.audit_digest_bucket().unwrap().as_deref(), Some("shop-audit-digests"));
    }
}
