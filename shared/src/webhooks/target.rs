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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use wiremock::matchers::{body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[test]
    fn parse_rejects_with_merchant_messages() {
        let production = TargetPolicy::production();
        let long = format!("https://example.com/{}", "a".repeat(3000));
        let table = [
            ("http://example.com", TargetError::NotHttps),
            ("ftp://x", TargetError::NotHttps),
            ("https://user:pw@example.com", TargetError::Credentials),
            ("https://user@example.com", TargetError::Credentials),
            ("https://169.254.169.254/latest", TargetError::ForbiddenAddress),
            ("https://[::ffff:10.0.0.1]/", TargetError::ForbiddenAddress),
            ("https://127.0.0.1:8443/", TargetError::ForbiddenAddress),
            ("https://0x7f.1/", TargetError::ForbiddenAddress), // 127.0.0.1 spelt in hex
            ("https://[fd00:ec2::254]/", TargetError::ForbiddenAddress),
            ("https://example.com/hook#part", TargetError::Fragment),
            ("/relative/path", TargetError::NotAbsolute),
            ("mailto:ops@example.com", TargetError::NotHttps),
            ("not a url", TargetError::NotAbsolute),
            (long.as_str(), TargetError::TooLong),
        ];
        for (text, expected) in table {
            assert_eq!(WebhookUrl::parse(text, production), Err(expected), "{text:.60}");
        }
        assert_eq!(TargetError::NotHttps.to_string(), "must use https");
        assert_eq!(
            TargetError::ForbiddenAddress.to_string(),
            "must not point at a private, loopback, link-local or metadata address"
        );
    }

    #[test]
    fn parse_accepts_public_https_with_port_and_query() {
        let url = WebhookUrl::parse("https://hooks.example.com:8443/mpesa?x=1", TargetPolicy::production()).unwrap();
        assert_eq!(url.as_str(), "https://hooks.example.com:8443/mpesa?x=1");
        let url = WebhookUrl::parse("https://8.8.8.8/hook", TargetPolicy::production()).unwrap();
        assert_eq!(url.as_str(), "https://8.8.8.8/hook");
    }

    #[test]
    fn local_development_allows_http_and_local_addresses() {
        let dev = TargetPolicy::local_development();
        for text in [
            "http://localhost:3000/hook",
            "http://127.0.0.1:9000/",
            "https://[::1]:8443/",
        ] {
            assert!(WebhookUrl::parse(text, dev).is_ok(), "{text}");
        }
        // Everything else still applies.
        assert_eq!(WebhookUrl::parse("ftp://x", dev), Err(TargetError::NotHttps));
        assert_eq!(
            WebhookUrl::parse("http://u:p@localhost/", dev),
            Err(TargetError::Credentials)
        );
    }

    #[test]
    fn serde_round_trip_does_not_recheck_the_policy() {
        let url = WebhookUrl::parse("http://127.0.0.1:9000/hook", TargetPolicy::local_development()).unwrap();
        let json = serde_json::to_string(&url).unwrap();
        assert_eq!(json, r#""http://127.0.0.1:9000/hook""#);
        let back: WebhookUrl = serde_json::from_str(&json).unwrap();
        assert_eq!(back, url);
        assert!(serde_json::from_str::<WebhookUrl>(r#""not a url""#).is_err());
    }

    #[test]
    fn excerpt_is_cut_on_a_char_boundary() {
        // 1023 ASCII bytes then a 2-byte 'é': the 'é' is cut by the limit and dropped.
        let mut raw = vec![b'a'; 1023];
        raw.extend_from_slice("é".as_bytes());
        assert_eq!(excerpt(&raw), "a".repeat(1023));
        // Complete multibyte characters stay.
        assert_eq!(excerpt("héllo €".as_bytes()), "héllo €");
        // Invalid bytes become U+FFFD, still within the limit.
        let text = excerpt(&[0xff; 2000]);
        assert!(text.len() <= EXCERPT_BYTES && text.chars().all(|c| c == '\u{fffd}'));
        assert_eq!(text.len(), 1023); // 341 replacement characters of 3 bytes
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,300}") {
            let _ = WebhookUrl::parse(&text, TargetPolicy::production());
            let _ = WebhookUrl::parse(&text, TargetPolicy::local_development());
        }

        #[test]
        fn parse_never_panics_on_url_like_text(
            text in "(https?|ftp|HTTPS)://[a-zA-Z0-9.:@\\[\\]%/?#&=_~+-]{0,80}",
        ) {
            let _ = WebhookUrl::parse(&text, TargetPolicy::production());
            let _ = WebhookUrl::parse(&text, TargetPolicy::local_development());
        }

        #[test]
        fn excerpt_is_bounded_utf8(raw in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let text = excerpt(&raw);
            prop_assert!(text.len() <= EXCERPT_BYTES);
        }
    }

    fn dev_sender() -> WebhookSender {
        WebhookSender::with_timeout(TargetPolicy::local_development(), Duration::from_millis(300)).unwrap()
    }

    fn stored(text: String) -> WebhookUrl {
        WebhookUrl::stored(text).unwrap()
    }

    async fn mock_answering(template: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(template)
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn a_2xx_is_delivered_with_status_and_excerpt() {
        let server = mock_answering(ResponseTemplate::new(200).set_body_string("thanks")).await;
        let result = dev_sender()
            .send(&stored(format!("{}/hook", server.uri())), &[], Bytes::from("{}"))
            .await;
        assert_eq!(result.outcome, AttemptOutcome::Delivered);
        assert_eq!(result.status, Some(200));
        assert_eq!(result.response_excerpt, "thanks");
        assert!(result.latency_ms < 300);
    }

    #[tokio::test]
    async fn a_500_is_rejected() {
        let server = mock_answering(ResponseTemplate::new(500).set_body_string("boom")).await;
        let result = dev_sender()
            .send(&stored(format!("{}/hook", server.uri())), &[], Bytes::from("{}"))
            .await;
        assert_eq!(result.outcome, AttemptOutcome::Rejected);
        assert_eq!(result.status, Some(500));
        assert_eq!(result.response_excerpt, "boom");
    }

    #[tokio::test]
    async fn a_redirect_is_rejected_and_not_followed() {
        let server = MockServer::start().await;
        let elsewhere = format!("{}/elsewhere", server.uri());
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(ResponseTemplate::new(302).insert_header("location", elsewhere.as_str()))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/elsewhere"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let result = dev_sender()
            .send(&stored(format!("{}/hook", server.uri())), &[], Bytes::from("{}"))
            .await;
        assert_eq!(result.outcome, AttemptOutcome::Rejected);
        assert_eq!(result.status, Some(302));
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_slow_answer_is_unreachable_after_the_timeout() {
        let server = mock_answering(ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
        let result = dev_sender()
            .send(&stored(format!("{}/hook", server.uri())), &[], Bytes::from("{}"))
            .await;
        let reason = "timed out after 300 ms".to_owned();
        assert_eq!(result.outcome, AttemptOutcome::Unreachable { reason });
        assert_eq!(result.status, None);
        assert!((300..2000).contains(&result.latency_ms), "{}", result.latency_ms);
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable_without_the_url() {
        // Bind then drop a listener: nothing listens on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = stored(format!("http://127.0.0.1:{port}/hook?token=secret"));
        let result = dev_sender().send(&url, &[], Bytes::from("{}")).await;
        let AttemptOutcome::Unreachable { reason } = &result.outcome else {
            panic!("expected Unreachable, got {result:?}");
        };
        assert!(reason.starts_with("connection failed"), "{reason}");
        assert!(!reason.contains("secret") && !reason.contains("127.0.0.1"), "{reason}");
    }

    #[tokio::test]
    async fn a_large_answer_gives_an_excerpt_of_exactly_1024_bytes() {
        let server = mock_answering(ResponseTemplate::new(400).set_body_string("x".repeat(3 * 1024))).await;
        let result = dev_sender()
            .send(&stored(format!("{}/hook", server.uri())), &[], Bytes::from("{}"))
            .await;
        assert_eq!(result.outcome, AttemptOutcome::Rejected);
        assert_eq!(result.response_excerpt.len(), 1024);
    }

    #[tokio::test]
    async fn our_headers_and_body_arrive() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .and(header("content-type", "application/json"))
            .and(header("user-agent", USER_AGENT))
            .and(header("webhook-id", "msg_01"))
            .and(body_string(r#"{"type":"payment.succeeded"}"#))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let headers = [
            ("webhook-id", "msg_01".to_owned()),
            ("webhook-signature", "v1,abc=".to_owned()),
        ];
        let body = Bytes::from_static(br#"{"type":"payment.succeeded"}"#);
        let result = dev_sender()
            .send(&stored(format!("{}/hook", server.uri())), &headers, body)
            .await;
        assert_eq!(result.outcome, AttemptOutcome::Delivered);
        assert_eq!(result.status, Some(204));
        // Checked by hand: wiremock's `header` matcher splits values on commas.
        let received = server.received_requests().await.unwrap();
        let signature = received[0].headers.get("webhook-signature").unwrap();
        assert_eq!(signature.to_str().unwrap(), "v1,abc=");
        assert_eq!(received[0].headers.get_all("content-type").iter().count(), 1);
    }

    #[tokio::test]
    async fn an_invalid_header_is_reported_without_sending() {
        let server = mock_answering(ResponseTemplate::new(200)).await;
        let headers = [("bad header", "x".to_owned())];
        let result = dev_sender()
            .send(&stored(format!("{}/hook", server.uri())), &headers, Bytes::new())
            .await;
        let reason = r#"invalid header name "bad header""#.to_owned();
        assert_eq!(result.outcome, AttemptOutcome::Unreachable { reason });
        assert_eq!(server.received_requests().await.unwrap().len(), 0);
    }

    fn production_sender() -> WebhookSender {
        WebhookSender::with_timeout(TargetPolicy::production(), Duration::from_millis(300)).unwrap()
    }

    async fn assert_forbidden_without_request(url: String, reason_contains: &str) {
        let server = mock_answering(ResponseTemplate::new(200)).await;
        let url = url.replace("{port}", &server.address().port().to_string());
        let result = production_sender()
            .send(&stored(url.clone()), &[], Bytes::from("{}"))
            .await;
        let AttemptOutcome::Forbidden { reason } = &result.outcome else {
            panic!("{url}: expected Forbidden, got {result:?}");
        };
        assert!(reason.contains(reason_contains), "{url}: {reason}");
        assert_eq!(result.status, None);
        assert_eq!(server.received_requests().await.unwrap().len(), 0, "{url}");
    }

    #[tokio::test]
    async fn production_refuses_ip_literal_loopback_before_sending() {
        assert_forbidden_without_request("https://127.0.0.1:{port}/hook".to_owned(), "127.0.0.1").await;
        assert_forbidden_without_request("https://[::1]:{port}/hook".to_owned(), "::1").await;
    }

    #[tokio::test]
    async fn production_refuses_a_name_resolving_to_loopback() {
        assert_forbidden_without_request("https://localhost:{port}/hook".to_owned(), "localhost resolves to").await;
    }

    #[tokio::test]
    async fn production_refuses_a_stored_http_url() {
        assert_forbidden_without_request("http://localhost:{port}/hook".to_owned(), "must use https").await;
    }

    /// The resolver on its own, over plain http (which the production sender refuses earlier):
    /// the mock server is reachable, so only the resolver stands between it and the request.
    #[tokio::test]
    async fn the_guarded_resolver_stops_a_reachable_local_server() {
        let server = mock_answering(ResponseTemplate::new(200)).await;
        let url = format!("http://localhost:{}/hook", server.address().port());
        let client = |allow_private| {
            reqwest::Client::builder()
                .dns_resolver(Arc::new(GuardedResolver { allow_private }))
                .no_proxy()
                .build()
                .unwrap()
        };
        let refused = client(false).post(&url).send().await.unwrap_err();
        let outcome = production_sender().classify(&refused);
        let AttemptOutcome::Forbidden { reason } = &outcome else {
            panic!("expected Forbidden, got {outcome:?}");
        };
        assert!(reason.starts_with("localhost resolves to"), "{reason}");
        assert_eq!(server.received_requests().await.unwrap().len(), 0);

        let allowed = client(true).post(&url).send().await.unwrap();
        assert_eq!(allowed.status(), 200);
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}
