//! OAuth access tokens: the parser of the token answer, and a cache keyed per credential set
//! (a hash of key and secret) with early refresh and single-flight fetching.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::errors::{DarajaError, ParseError};
use super::json::{self, Kind};
use super::ApiCredentials;
use crate::secrets::Secret;

/// Tokens are refreshed this long before Daraja says they expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// When the answer has no `expires_in` (Daraja's tokens live an hour).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);
/// Longer lifetimes are not believed.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A parsed token answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_in: Duration,
}

/// Parses `{"access_token": "...", "expires_in": "3599"}`; `expires_in` may be a string or a
/// number (the docs say number, real answers send a string), and is clamped to a day.
pub fn parse_token_response(body: &[u8]) -> Result<AccessToken, ParseError> {
    let root = json::root(body)?;
    let token = match root.get("access_token") {
        Some(raw) if json::kind(raw) == Kind::String => json::text(raw, "access_token")?,
        Some(_) => {
            return Err(ParseError::WrongType {
                field: "access_token",
                expected: "a string",
            })
        }
        None => None,
    }
    .ok_or(ParseError::Missing { field: "access_token" })?;
    if token.len() > 4096 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ParseError::Invalid {
            field: "access_token",
            reason: "not a bearer token",
        });
    }
    let expires_in = match root.text("expires_in")? {
        None => DEFAULT_TOKEN_LIFETIME,
        Some(text) => parse_seconds(&text).ok_or(ParseError::Invalid {
            field: "expires_in",
            reason: "not a whole number of seconds",
        })?,
    };
    Ok(AccessToken {
        token: Secret::new(token),
        expires_in: expires_in.min(MAX_TOKEN_LIFETIME),
    })
}

fn parse_seconds(text: &str) -> Option<Duration> {
    let text = text.trim();
    // "3599" or "3599.0"; a fraction of a second is dropped.
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = whole.trim_start_matches('0');
    if significant.len() > 9 {
        return Some(MAX_TOKEN_LIFETIME);
    }
    Some(Duration::from_secs(significant.parse().unwrap_or(0)))
}

/// A token handed out by the cache; `generation` lets a caller invalidate exactly the token
/// that was refused, not a newer one fetched meanwhile.
#[derive(Clone)]
pub(crate) struct IssuedToken {
    pub(crate) token: Secret,
    pub(crate) generation: u64,
}

struct Cached {
    token: Secret,
    generation: u64,
    refresh_at: Instant,
    expires_at: Instant,
}

#[derive(Default)]
struct SlotState {
    token: Option<Cached>,
    last_error: Option<DarajaError>,
}

#[derive(Default)]
struct Slot {
    state: tokio::sync::Mutex<SlotState>,
    /// Fetches finished (either way); a waiter that saw a fetch finish while it queued shares
    /// that fetch's error instead of starting another.
    fetches: AtomicU64,
}

/// The cached token if it has not expired yet (even inside the refresh margin).
fn usable(state: &SlotState, now: Instant) -> Option<IssuedToken> {
    state
        .token
        .as_ref()
        .filter(|c| now < c.expires_at)
        .map(|c| IssuedToken {
            token: c.token.clone(),
            generation: c.generation,
        })
}

/// Identifies a credential set without keeping it: SHA-256 of the length-prefixed key and secret.
pub(crate) type Fingerprint = [u8; 32];

pub(crate) fn fingerprint(credentials: &ApiCredentials) -> Fingerprint {
    let mut hasher = Sha256::new();
    let key = credentials.consumer_key.expose().as_bytes();
    hasher.update((key.len() as u64).to_be_bytes());
    hasher.update(key);
    hasher.update(credentials.consumer_secret.expose().as_bytes());
    hasher.finalize().into()
}

/// Tokens per credential set. Concurrent callers for one set share one fetch.
#[derive(Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<Fingerprint, Arc<Slot>>>,
    generations: AtomicU64,
}

/// Credential sets beyond this many are pruned of their expired entries (sets rotate rarely).
const PRUNE_ABOVE: usize = 64;

impl TokenCache {
    fn slot(&self, key: Fingerprint) -> Arc<Slot> {
        let mut slots = match self.slots.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slots.len() > PRUNE_ABOVE && !slots.contains_key(&key) {
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot
                        .state
                        .try_lock()
                        .map(|s| s.token.as_ref().is_some_and(|t| t.expires_at > Instant::now()))
                        .unwrap_or(true)
            });
        }
        slots.entry(key).or_default().clone()
    }

    /// A valid token for `credentials`, fetching with `fetch` when none is fresh. While one
    /// caller fetches, the others wait for its result.
    pub(crate) async fn get<F, Fut>(&self, credentials: &ApiCredentials, fetch: F) -> Result<IssuedToken, DarajaError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, DarajaError>>,
    {
        let slot = self.slot(fingerprint(credentials));
        let fetches_seen = slot.fetches.load(Ordering::SeqCst);
        let mut state = slot.state.lock().await;
        let now = Instant::now();
        if let Some(cached) = state.token.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(IssuedToken {
                token: cached.token.clone(),
                generation: cached.generation,
            });
        }
        if slot.fetches.load(Ordering::SeqCst) != fetches_seen {
            if let Some(error) = &state.last_error {
                return match usable(&state, now) {
                    Some(token) => Ok(token),
                    None => Err(error.clone()),
                };
            }
        }
        let result = fetch().await;
        slot.fetches.fetch_add(1, Ordering::SeqCst);
        match result {
            Ok(fresh) => {
                let now = Instant::now();
                let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
                let lifetime = fresh.expires_in;
                state.token = Some(Cached {
                    token: fresh.token.clone(),
                    generation,
                    refresh_at: now + lifetime.saturating_sub(REFRESH_MARGIN),
                    expires_at: now + lifetime,
                });
                state.last_error = None;
                Ok(IssuedToken {
                    token: fresh.token,
                    generation,
                })
            }
            Err(error) => {
                // A token inside its refresh margin still works: keep using it while Daraja's
                // token endpoint is failing.
                let fallback = usable(&state, Instant::now());
                state.last_error = Some(error.clone());
                match fallback {
                    Some(token) => {
                        tracing::warn!(%error, "token refresh failed; using the current token until it expires");
                        Ok(token)
                    }
                    None => Err(error),
                }
            }
        }
    }

    /// Forgets the token of `generation` (Daraja refused it). A newer token is kept.
    pub(crate) async fn invalidate(&self, credentials: &ApiCredentials, generation: u64) {
        let slot = self.slot(fingerprint(credentials));
        let mut state = slot.state.lock().await;
        if state.token.as_ref().is_some_and(|c| c.generation == generation) {
            state.token = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn creds(key: &str, secret: &str) -> ApiCredentials {
        ApiCredentials {
            consumer_key: Secret::new(key),
            consumer_secret: Secret::new(secret),
        }
    }

    #[test]
    fn expires_in_may_be_a_string_or_a_number() {
        let t = parse_token_response(br#"{ "access_token": "c9SQxWWhmdVRlyh0zh8gZDTkubVF", "expires_in": "3599" }"#)
            .unwrap();
        assert_eq!(t.token.expose(), "c9SQxWWhmdVRlyh0zh8gZDTkubVF");
        assert_eq!(t.expires_in, Duration::from_secs(3599));
        let n = parse_token_response(br#"{"access_token":"abc","expires_in":3599}"#).unwrap();
        assert_eq!(n.expires_in, Duration::from_secs(3599));
        let f = parse_token_response(br#"{"access_token":"abc","expires_in":3599.0}"#).unwrap();
        assert_eq!(f.expires_in, Duration::from_secs(3599));
        let missing = parse_token_response(br#"{"access_token":"abc"}"#).unwrap();
        assert_eq!(missing.expires_in, DEFAULT_TOKEN_LIFETIME);
        let huge = parse_token_response(br#"{"access_token":"abc","expires_in":"99999999999999999999"}"#).unwrap();
        assert_eq!(huge.expires_in, MAX_TOKEN_LIFETIME);
    }

    #[test]
    fn refuses_bodies_without_a_usable_token() {
        for body in [
            &br#"{"expires_in":"3599"}"#[..],
            br#"{"access_token":"","expires_in":"3599"}"#,
            br#"{"access_token":42,"expires_in":"3599"}"#,
            br#"{"access_token":"a b","expires_in":"3599"}"#,
            br#"{"access_token":"abc","expires_in":"-5"}"#,
            br#"{"access_token":"abc","expires_in":"soon"}"#,
            br#"{"errorCode":"400.008.01","errorMessage":"Invalid Authentication passed"}"#,
            b"",
            b"<html/>",
        ] {
            assert!(parse_token_response(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn fingerprints_differ_per_credential_set() {
        assert_eq!(fingerprint(&creds("a", "b")), fingerprint(&creds("a", "b")));
        assert_ne!(fingerprint(&creds("a", "b")), fingerprint(&creds("a", "c")));
        assert_ne!(fingerprint(&creds("ab", "c")), fingerprint(&creds("a", "bc")));
    }

    fn token(value: &str, secs: u64) -> AccessToken {
        AccessToken {
            token: Secret::new(value),
            expires_in: Duration::from_secs(secs),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn caches_per_set_refreshes_early_and_invalidates_by_generation() {
        let cache = TokenCache::default();
        let a = creds("key-a", "secret-a");
        let b = creds("key-b", "secret-b");
        let t1 = cache.get(&a, || async { Ok(token("t1", 3599)) }).await.unwrap();
        let again = cache.get(&a, || async { Ok(token("never", 3599)) }).await.unwrap();
        assert_eq!(again.token.expose(), "t1");
        let other = cache.get(&b, || async { Ok(token("tb", 3599)) }).await.unwrap();
        assert_eq!(other.token.expose(), "tb");
        // 60 s before expiry the token is refreshed.
        tokio::time::advance(Duration::from_secs(3599 - 60)).await;
        let t2 = cache.get(&a, || async { Ok(token("t2", 3599)) }).await.unwrap();
        assert_eq!(t2.token.expose(), "t2");
        // Invalidating an old generation keeps the newer token.
        cache.invalidate(&a, t1.generation).await;
        assert_eq!(
            cache
                .get(&a, || async { Ok(token("t3", 3599)) })
                .await
                .unwrap()
                .token
                .expose(),
            "t2"
        );
        cache.invalidate(&a, t2.generation).await;
        assert_eq!(
            cache
                .get(&a, || async { Ok(token("t3", 3599)) })
                .await
                .unwrap()
                .token
                .expose(),
            "t3"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_inside_the_margin_keeps_the_current_token() {
        let cache = TokenCache::default();
        let a = creds("k", "s");
        cache.get(&a, || async { Ok(token("t1", 3599)) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(3599 - 30)).await;
        let unavailable = || async { Err(DarajaError::Unavailable { detail: "down".into() }) };
        assert_eq!(cache.get(&a, unavailable).await.unwrap().token.expose(), "t1");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(cache.get(&a, unavailable).await.is_err());
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(TokenCache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let cache = cache.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                let a = creds("k", "s");
                cache
                    .get(&a, || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(token("shared", 3599))
                    })
                    .await
                    .map(|t| t.token.expose().to_owned())
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), "shared");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn waiters_share_a_failed_fetch_instead_of_stampeding() {
        let cache = Arc::new(TokenCache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let cache = cache.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                let a = creds("k", "s");
                cache
                    .get(&a, || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(DarajaError::Unavailable { detail: "down".into() })
                    })
                    .await
                    .is_err()
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
