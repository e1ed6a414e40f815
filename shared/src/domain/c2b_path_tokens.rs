//! Generations of a shortcode's C2B URL path tokens, so the URLs can be rotated.
//!
//! The validation and confirmation URLs carry a token naming the shortcode and a generation
//! (`600984` for generation 0, the URLs of releases before rotation existed; `600984-3` after
//! three rotations), MACed with the callback key. Registering again with `rotate_token` moves to a
//! new generation and registers the new URLs with Daraja. The previous generation keeps working
//! for [`ROTATION_GRACE`] once Daraja has taken the new URLs, so confirmations already on their
//! way are never refused; if Daraja kept the old URLs (production registers once: "URLs are
//! already registered"), the previous generation stays valid with no end until a registration
//! that Daraja accepts. Only one rotation runs at a time.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::c2b::Shortcode;

/// How long the previous generation's URLs keep working after Daraja took the new ones.
pub const ROTATION_GRACE: Duration = Duration::hours(72);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PathTokens {
    pub generation: u32,
    #[serde(default)]
    pub retiring: Option<RetiringGeneration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiringGeneration {
    pub generation: u32,
    /// `None`: still in use by Daraja (it has not taken the new URLs); no end yet.
    pub valid_until: Option<DateTime<Utc>>,
}

/// The id a token is made for: a shortcode and a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenId {
    pub shortcode: Shortcode,
    pub generation: u32,
}

impl TokenId {
    pub fn new(shortcode: Shortcode, generation: u32) -> TokenId {
        TokenId { shortcode, generation }
    }

    /// `600984` (generation 0) or `600984-3`.
    pub fn parse(id: &str) -> Option<TokenId> {
        let (shortcode, generation) = match id.split_once('-') {
            None => (id, 0),
            Some((shortcode, generation)) => {
                // Canonical digits only: `600984-03` is not `600984-3`.
                if generation.is_empty() || generation.starts_with('0') || generation.len() > 9 {
                    return None;
                }
                (shortcode, generation.parse().ok()?)
            }
        };
        Some(TokenId {
            shortcode: Shortcode::parse(shortcode).ok()?,
            generation,
        })
    }

    pub fn as_id(&self) -> String {
        match self.generation {
            0 => self.shortcode.to_string(),
            g => format!("{}-{g}", self.shortcode),
        }
    }
}

/// Why a rotation cannot start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationInProgress {
    pub retiring: u32,
    pub valid_until: Option<DateTime<Utc>>,
}

impl PathTokens {
    /// Whether a token of `generation` is accepted at `now`.
    pub fn accepts(&self, generation: u32, now: DateTime<Utc>) -> bool {
        generation == self.generation
            || self
                .retiring
                .as_ref()
                .is_some_and(|r| r.generation == generation && r.valid_until.is_none_or(|until| now < until))
    }

    /// The next generation; the current one starts retiring (with no end until Daraja takes the
    /// new URLs: [`PathTokens::new_urls_registered`]).
    pub fn rotated(&self, now: DateTime<Utc>) -> Result<PathTokens, RotationInProgress> {
        if let Some(retiring) = self.retiring.as_ref().filter(|r| self.accepts(r.generation, now)) {
            return Err(RotationInProgress {
                retiring: retiring.generation,
                valid_until: retiring.valid_until,
            });
        }
        Ok(PathTokens {
            generation: self.generation.saturating_add(1),
            retiring: Some(RetiringGeneration {
                generation: self.generation,
                valid_until: None,
            }),
        })
    }

    /// Daraja took the current generation's URLs: the retiring one ends after the grace period.
    pub fn new_urls_registered(&self, now: DateTime<Utc>) -> PathTokens {
        let mut next = self.clone();
        if let Some(retiring) = next.retiring.as_mut() {
            if retiring.valid_until.is_none() {
                retiring.valid_until = Some(now + ROTATION_GRACE);
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn ids_name_a_shortcode_and_a_generation() {
        let id = TokenId::parse("600984").unwrap();
        assert_eq!((id.shortcode.as_str(), id.generation), ("600984", 0));
        assert_eq!(id.as_id(), "600984");
        let id = TokenId::parse("600984-3").unwrap();
        assert_eq!(id.generation, 3);
        assert_eq!(id.as_id(), "600984-3");
        for bad in [
            "600984-",
            "600984-03",
            "600984-x",
            "60098-1-2",
            "abc",
            "600984-9999999999",
        ] {
            assert_eq!(TokenId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_previous_generation_works_until_the_grace_period_ends() {
        let tokens = PathTokens::default();
        assert!(tokens.accepts(0, t0()) && !tokens.accepts(1, t0()));
        let rotating = tokens.rotated(t0()).unwrap();
        assert_eq!(rotating.generation, 1);
        // Daraja has not taken the new URLs yet: both work, with no end.
        assert!(rotating.accepts(0, t0() + Duration::days(400)) && rotating.accepts(1, t0()));
        assert!(rotating.rotated(t0()).is_err(), "one rotation at a time");
        let taken = rotating.new_urls_registered(t0());
        assert!(taken.accepts(0, t0() + ROTATION_GRACE - Duration::seconds(1)));
        assert!(!taken.accepts(0, t0() + ROTATION_GRACE));
        assert!(taken.accepts(1, t0() + Duration::days(400)));
        assert!(taken.rotated(t0()).is_err());
        let next = taken.rotated(t0() + ROTATION_GRACE).unwrap();
        assert_eq!(next.generation, 2);
        assert!(!next.accepts(0, t0() + ROTATION_GRACE));
    }
}
