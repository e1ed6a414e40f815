//! Where a merchant webhook may be sent, and one delivery attempt to it.
//!
//! A webhook URL is chosen by the merchant, so without care it is a server-side request forgery
//! vector: `https://169.254.169.254/latest/meta-data/` would make *us* fetch our own cloud
//! credentials, and a name that resolves to `10.0.0.5` would let a merchant probe our VPC.
//! Three layers stop that:
//!
//! 1. [`WebhookUrl::parse`] accepts only absolute `https` URLs with a host, without credentials
//!    or fragment, and refuses IP-literal hosts in the forbidden ranges ([`is_forbidden`]) right
//!    away, so the merchant hears about a wrong URL when registering it.
//! 2. At send time the HTTP client resolves names through [`GuardedResolver`], which refuses
//!    the request when *any* resolved address is forbidden. The connection then only goes to
//!    the addresses that were checked, so DNS rebinding (a public answer at registration, an
//!    internal one later) cannot reach an internal address.
//! 3. reqwest connects to IP-literal hosts without asking the resolver, so
//!    [`WebhookSender::send`] checks those itself before sending (a URL stored under older
//!    rules is checked again too).
//!
//! Redirects are not followed (a 3xx is a failed attempt: following it would hand the merchant a
//! way around these checks), no proxy is used (a proxy would resolve names itself, out of our
//! sight) and each attempt has a total timeout.
//!
//! [`TargetPolicy::local_development`] lifts the address and `http` restrictions, only for the
//! dev stack, where a newcomer points webhooks at a server on their own machine.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Url;

pub use super::address::is_forbidden;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Total time one attempt may take, from sending the request to the end of reading the excerpt.
/// Short, because a merchant endpoint should acknowledge and process later; a slow endpoint
/// would otherwise hold a delivery worker.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Time to establish the TCP connection (and TLS), within [`ATTEMPT_TIMEOUT`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest accepted webhook URL, in bytes (both as given and once normalised). Bounds what we
/// store and echo back, and is far beyond any real endpoint.
pub const MAX_URL_BYTES: usize = 2048;

/// Most bytes of the merchant's answer kept in [`AttemptResult::response_excerpt`]: enough to
/// show an error message in the dashboard, too little to make attempts expensive to store.
pub const EXCERPT_BYTES: usize = 1024;

/// `User-Agent` of our webhook requests, so merchants can recognise (and allow-list) them.
pub const USER_AGENT: &str = "checkout-webhooks/1";

/// Which targets are acceptable. Production refuses private addresses and plain `http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetPolicy {
    /// Allow `http` and private, loopback, link-local addresses. Only the dev stack sets it
    /// (explicitly), so webhooks can reach a server on the developer's machine.
    pub allow_private: bool,
}

impl TargetPolicy {
    /// The policy for any deployed stage: `https` only, public addresses only.
    pub const fn production() -> Self {
        TargetPolicy { allow_private: false }
    }

    /// The dev stack's policy: `http` and local addresses allowed.
    pub const fn local_development() -> Self {
        TargetPolicy { allow_private: true }
    }
}

/// Why a webhook URL is refused. The messages are stable and written for the merchant: they
/// complete the sentence "The webhook URL …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("must be an absolute URL, like https://example.com/webhooks")]
    NotAbsolute,
    #[error("must be at most {MAX_URL_BYTES} bytes long")]
    TooLong,
    #[error("must use https")]
    NotHttps,
    #[error("must have a host name")]
    MissingHost,
    #[error("must not contain credentials (user:password@)")]
    Credentials,
    #[error("must not contain a fragment (#...)")]
    Fragment,
    #[error("must not point at a private, loopback, link-local or metadata address")]
    ForbiddenAddress,
}

/// A merchant webhook URL that passed [`WebhookUrl::parse`] (or was stored after passing it).
///
/// Serialises as the plain URL string. Deserialising goes through [`WebhookUrl::stored`],
/// which checks only that the text is a URL and does **not** apply a [`TargetPolicy`]: stored
/// URLs were checked when they were created, and a stored endpoint must keep loading even if
/// the rules later tighten. The sender re-checks what matters at send time anyway.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    /// Parses a URL a merchant gave us, applying every rule of `policy`.
    pub fn parse(text: &str, policy: TargetPolicy) -> Result<WebhookUrl, TargetError> {
        // Checked before parsing too, so a huge input costs nothing.
        if text.len() > MAX_URL_BYTES {
            return Err(TargetError::TooLong);
        }
        let url = Url::parse(text).map_err(|_| TargetError::NotAbsolute)?;
        // The scheme first: "must use https" is the useful answer to `mailto:` or `ftp://`.
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_private => {}
            _ => return Err(TargetError::NotHttps),
        }
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or(TargetError::MissingHost)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(TargetError::Fragment);
        }
        if !policy.allow_private && ip_literal(host).is_some_and(is_forbidden) {
            return Err(TargetError::ForbiddenAddress);
        }
        // Normalisation (percent-encoding, IDNA) can lengthen the text.
        if url.as_str().len() > MAX_URL_BYTES {
            return Err(TargetError::TooLong);
        }
        Ok(WebhookUrl(url))
    }

    /// Rebuilds a URL read back from storage: only checks that it is a URL, not the policy
    /// (see the type's documentation for why).
    pub fn stored(text: String) -> Result<WebhookUrl, TargetError> {
        Url::parse(&text).map(WebhookUrl).map_err(|_| TargetError::NotAbsolute)
    }

    /// The normalised URL, as stored and as shown to the merchant.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL, for the HTTP client.
    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for WebhookUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        WebhookUrl::stored(text).map_err(serde::de::Error::custom)
    }
}

/// The address of an IP-literal host as the `url` crate normalises it (`1.2.3.4`, `[::1]`);
/// `None` for a domain name.
fn ip_literal(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// Why [`GuardedResolver`] refused or failed; found again in reqwest's error chain to tell a
/// forbidden target from an unreachable one.
#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("{host} resolves to {addr}, a private, loopback, link-local or metadata address")]
    Forbidden { host: String, addr: IpAddr },
    #[error("dns lookup of {host} failed: {source}")]
    Lookup { host: String, source: std::io::Error },
    #[error("dns lookup of {host} returned no address")]
    NoAddress { host: String },
}

/// A DNS resolver for reqwest that refuses names resolving to forbidden addresses.
///
/// The check happens after resolution, on exactly the addresses reqwest will then connect to,
/// so a name cannot pass the check with one answer and connect with another. It refuses when
/// *any* address is forbidden rather than filtering: a name mixing public and internal answers
/// is an attack or a misconfiguration, and either way the merchant should hear of it.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Skip the address check (dev stack only; see [`TargetPolicy::allow_private`]).
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest replaces it with the URL's port.
            let looked_up = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(Iterator::collect::<Vec<SocketAddr>>);
            let addrs = match looked_up {
                Ok(addrs) => addrs,
                Err(source) => return Err(ResolveError::Lookup { host, source }.into()),
            };
            if addrs.is_empty() {
                return Err(ResolveError::NoAddress { host }.into());
            }
            if !allow_private {
                if let Some(bad) = addrs.iter().find(|addr| is_forbidden(addr.ip())) {
                    return Err(ResolveError::Forbidden { host, addr: bad.ip() }.into());
                }
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client could not be built (TLS backend initialisation); a deployment problem.
#[derive(Debug, thiserror::Error)]
#[error("could not build the webhook HTTP client: {0}")]
pub struct SenderError(#[source] reqwest::Error);

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The endpoint answered 2xx within the timeout.
    Delivered,
    /// The endpoint answered something else, 3xx included (redirects are not followed); the
    /// status is in [`AttemptResult::status`].
    Rejected,
    /// No answer: DNS, connection, TLS or timeout failure. `reason` is a short sentence that
    /// never contains the URL (its query may carry a merchant's token).
    Unreachable { reason: String },
    /// The target is not allowed (it is, or resolved to, a forbidden address, or a stored URL
    /// is not `https`); nothing was sent. Retried like any failure, since the merchant may fix
    /// their DNS, but recorded as such, with `reason`, so they can see why.
    Forbidden { reason: String },
}

/// What one attempt produced, to record on the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub outcome: AttemptOutcome,
    /// From sending the request to the response status (or to the failure), in milliseconds.
    pub latency_ms: u64,
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    /// At most [`EXCERPT_BYTES`] bytes of the answer's body, as (lossy) UTF-8; empty when there
    /// was no answer.
    pub response_excerpt: String,
}

/// Sends webhook attempts under one [`TargetPolicy`]. Cheap to clone (shares the connection pool).
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    policy: TargetPolicy,
    timeout: Duration,
}

impl WebhookSender {
    /// A sender with the standard [`ATTEMPT_TIMEOUT`].
    pub fn new(policy: TargetPolicy) -> Result<Self, SenderError> {
        Self::with_timeout(policy, ATTEMPT_TIMEOUT)
    }

    /// A sender whose attempts time out after `timeout` (the connect timeout is
    /// [`CONNECT_TIMEOUT`] or `timeout`, whichever is shorter). Tests use short timeouts.
    pub fn with_timeout(policy: TargetPolicy, timeout: Duration) -> Result<Self, SenderError> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: policy.allow_private,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .no_proxy()
            .https_only(!policy.allow_private)
            .user_agent(USER_AGENT)
            .build()
            .map_err(SenderError)?;
        Ok(WebhookSender {
            client,
            policy,
            timeout,
        })
    }

    /// The policy this sender enforces.
    pub fn policy(&self) -> TargetPolicy {
        self.policy
    }

    /// Makes one attempt: POSTs `body` as `application/json` with `headers` (which replace
    /// ours of the same name) and records how it went. Never fails: every failure is an outcome.
    pub async fn send(&self, url: &WebhookUrl, headers: &[(&str, String)], body: Bytes) -> AttemptResult {
        let started = Instant::now();
        if let Err(reason) = self.check_before_sending(url.as_url()) {
            return AttemptResult::without_answer(AttemptOutcome::Forbidden { reason }, started);
        }
        let headers = match request_headers(headers) {
            Ok(headers) => headers,
            Err(reason) => {
                return AttemptResult::without_answer(AttemptOutcome::Unreachable { reason }, started);
            }
        };
        let sent = self
            .client
            .post(url.as_url().clone())
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return AttemptResult::without_answer(self.classify(&error), started),
        };
        let latency_ms = elapsed_ms(started);
        let status = response.status();
        let response_excerpt = read_excerpt(&mut response).await;
        // A 2xx counts even if reading the excerpt then failed: the endpoint acknowledged.
        let outcome = if status.is_success() {
            AttemptOutcome::Delivered
        } else {
            AttemptOutcome::Rejected
        };
        AttemptResult {
            outcome,
            latency_ms,
            status: Some(status.as_u16()),
            response_excerpt,
        }
    }

    /// What the resolver cannot see: IP-literal hosts (reqwest connects to them directly) and
    /// the scheme of URLs stored under older rules.
    fn check_before_sending(&self, url: &Url) -> Result<(), String> {
        if self.policy.allow_private {
            return Ok(());
        }
        if url.scheme() != "https" {
            return Err(TargetError::NotHttps.to_string());
        }
        let host = url.host_str().unwrap_or_default();
        match ip_literal(host) {
            Some(ip) if is_forbidden(ip) => Err(format!("{ip} is a private, loopback, link-local or metadata address")),
            _ => Ok(()),
        }
    }

    /// Turns a reqwest error into an outcome whose reason names the failure without the URL.
    fn classify(&self, error: &reqwest::Error) -> AttemptOutcome {
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
        while let Some(current) = source {
            if let Some(resolve) = current.downcast_ref::<ResolveError>() {
                let reason = short(resolve.to_string());
                return match resolve {
                    ResolveError::Forbidden { .. } => AttemptOutcome::Forbidden { reason },
                    _ => AttemptOutcome::Unreachable { reason },
                };
            }
            source = current.source();
        }
        let reason = if error.is_timeout() {
            format!("timed out after {} ms", self.timeout.as_millis())
        } else if error.is_connect() {
            format!("connection failed: {}", innermost(error))
        } else {
            format!("request failed: {}", innermost(error))
        };
        AttemptOutcome::Unreachable { reason: short(reason) }
    }
}

impl AttemptResult {
    fn without_answer(outcome: AttemptOutcome, started: Instant) -> Self {
        AttemptResult {
            outcome,
            latency_ms: elapsed_ms(started),
            status: None,
            response_excerpt: String::new(),
        }
    }
}

/// `Content-Type: application/json`, then the caller's headers. An invalid header is our own
/// bug, reported by name only (a value may be a signature).
fn request_headers(extra: &[(&str, String)]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in extra {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))?;
        let value = HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name:?}"))?;
        headers.insert(header, value);
    }
    Ok(headers)
}

/// Reads at most [`EXCERPT_BYTES`] of the body, chunk by chunk, then stops: a merchant's
/// endpoint could answer with an endless body. A read error keeps what was read.
async fn read_excerpt(response: &mut reqwest::Response) -> String {
    let mut raw: Vec<u8> = Vec::with_capacity(EXCERPT_BYTES);
    while raw.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = EXCERPT_BYTES - raw.len();
                raw.extend_from_slice(&chunk[..room.min(chunk.len())]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    excerpt(&raw)
}

/// The raw prefix as UTF-8 of at most [`EXCERPT_BYTES`] bytes: a character cut by the byte
/// limit is dropped rather than shown as U+FFFD, other invalid bytes become U+FFFD, and the
/// text is cut on a character boundary if those replacements made it longer.
fn excerpt(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(EXCERPT_BYTES)];
    let mut text = String::from_utf8_lossy(without_cut_char(raw)).into_owned();
    truncate_on_char_boundary(&mut text, EXCERPT_BYTES);
    text
}

/// `raw` without a trailing, incomplete UTF-8 sequence (the start of a character whose
/// remaining bytes were beyond the limit).
fn without_cut_char(raw: &[u8]) -> &[u8] {
    // A character is at most 4 bytes: its lead byte is within the last 3 if it is cut.
    for back in 1..=raw.len().min(3) {
        let index = raw.len() - back;
        let byte = raw[index];
        if byte & 0xc0 == 0x80 {
            continue; // continuation byte: keep looking for the lead byte
        }
        let length = match byte {
            0xf0..=0xff => 4,
            0xe0..=0xef => 3,
            0xc0..=0xdf => 2,
            _ => 1,
        };
        return if length > back { &raw[..index] } else { raw };
    }
    raw
}

fn truncate_on_char_boundary(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

/// The deepest cause's message ("Connection refused (os error 111)", "invalid peer
/// certificate: UnknownIssuer"), never reqwest's own message, which includes the URL.
fn innermost(error: &reqwest::Error) -> String {
    let Some(mut cause) = std::error::Error::source(error) else {
        return "no detail".to_owned();
    };
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Bounds a failure reason for storage (on a character boundary).
fn short(mut reason: String) -> String {
    const MAX_REASON_BYTES: usize = 200;
    truncate_on_char_boundary(&mut reason, MAX_REASON_BYTES);
    reason
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
