//! Hosted checkout sessions: what a shop asked its customer to pay, and the STK attempts the
//! customer made to pay it.
//!
//! A session allows one open attempt at a time (so a customer never has two prompts for one
//! order) and at most `max_attempts` attempts in all. It completes when one attempt's payment
//! completes, even after its expiry or after the attempt was given up on: money that moved is
//! never hidden. [`decide`] is the pure state machine; every change goes through the settle
//! engine (`services/checkout/flow.rs`).

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::{Amount, ClientId, Description, FailureReason, Metadata, Msisdn, PaymentId, Reference};

/// Attempts a session allows unless the shop asks for fewer (a customer who typed a wrong PIN,
/// cancelled by mistake and then used another phone still gets a fourth and fifth chance).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Longest a session may stay open, and its default.
pub const MAX_EXPIRY: Duration = Duration::hours(24);
pub const MIN_EXPIRY: Duration = Duration::minutes(5);
pub const DEFAULT_EXPIRY: Duration = Duration::minutes(30);
/// An attempt whose payment was never written this long after the attempt started will never
/// be (the request that started it is long gone): the session may start another.
pub const ABANDONED_AFTER: Duration = Duration::seconds(60);

/// `cs_` and 32 lowercase hex digits: 128 random bits, so the page's URL cannot be guessed
/// (it is the only credential the customer's browser holds).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CheckoutSessionId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid checkout session id")]
pub struct InvalidSessionId;

impl CheckoutSessionId {
    pub const PREFIX: &'static str = "cs_";

    pub fn generate() -> CheckoutSessionId {
        CheckoutSessionId(format!("cs_{:032x}", rand::random::<u128>()))
    }

    pub fn parse(input: &str) -> Result<CheckoutSessionId, InvalidSessionId> {
        let hex = input.strip_prefix(Self::PREFIX).ok_or(InvalidSessionId)?;
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(InvalidSessionId);
        }
        Ok(CheckoutSessionId(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckoutSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Logs show only the start: the whole id opens the session's page.
impl fmt::Debug for CheckoutSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckoutSessionId({}…)", &self.0[..self.0.len().min(9)])
    }
}

impl TryFrom<String> for CheckoutSessionId {
    type Error = InvalidSessionId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CheckoutSessionId::parse(&value)
    }
}

impl From<CheckoutSessionId> for String {
    fn from(id: CheckoutSessionId) -> String {
        id.0
    }
}

/// Where the customer's browser goes back to the shop: an absolute `https` URL (or `http` on a
/// loopback host, for a shop being developed), without credentials or fragment, at most
/// [`ReturnUrl::MAX_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReturnUrl(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReturnUrlError {
    #[error("must be an absolute URL, e.g. https://shop.example/orders/123")]
    NotAbsolute,
    #[error("must use https (http only for localhost)")]
    NotHttps,
    #[error("must not contain a user name, password or fragment")]
    HasCredentialsOrFragment,
    #[error("must be at most 2048 characters")]
    TooLong,
}

impl ReturnUrl {
    pub const MAX_BYTES: usize = 2048;

    pub fn parse(text: &str) -> Result<ReturnUrl, ReturnUrlError> {
        if text.len() > Self::MAX_BYTES {
            return Err(ReturnUrlError::TooLong);
        }
        let url = Url::parse(text).map_err(|_| ReturnUrlError::NotAbsolute)?;
        let host = url.host_str().ok_or(ReturnUrlError::NotAbsolute)?;
        let loopback = is_loopback_host(host);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(ReturnUrlError::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(ReturnUrlError::HasCredentialsOrFragment);
        }
        let normalised = url.to_string();
        if normalised.len() > Self::MAX_BYTES {
            return Err(ReturnUrlError::TooLong);
        }
        Ok(ReturnUrl(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `scheme://host[:port]`, as `frame-ancestors` and `postMessage` name an origin.
    pub fn origin(&self) -> String {
        Url::parse(&self.0)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }
}

impl TryFrom<String> for ReturnUrl {
    type Error = ReturnUrlError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ReturnUrl::parse(&value)
    }
}

impl From<ReturnUrl> for String {
    fn from(url: ReturnUrl) -> String {
        url.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// The customer may pay (or is paying).
    Open,
    /// One attempt's payment completed.
    Completed,
    /// Closed unpaid: see [`CheckoutSession::closed_by`].
    Expired,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Open => "open",
            SessionStatus::Completed => "completed",
            SessionStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<SessionStatus> {
        [SessionStatus::Open, SessionStatus::Completed, SessionStatus::Expired]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// Why a session closed unpaid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// Its expiry passed (the sweeper closes it).
    Deadline,
    /// The shop expired it (`POST /v1/checkout/sessions/{id}/expire`).
    Merchant,
    /// The customer chose to go back to the shop.
    Customer,
    /// Every allowed attempt failed.
    AttemptsExhausted,
}

impl ClosedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedBy::Deadline => "deadline",
            ClosedBy::Merchant => "merchant",
            ClosedBy::Customer => "customer",
            ClosedBy::AttemptsExhausted => "attempts_exhausted",
        }
    }
}

/// Who made a session's latest change (its events' cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangedBy {
    Merchant,
    Customer,
    /// An attempt's payment reached its outcome (a callback or reconciliation).
    Payment,
    /// The sweeper closing it at its deadline.
    Sweeper,
}

/// How an attempt ended: its payment's final status (and why it failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AttemptEnd {
    Completed {
        receipt: Option<String>,
    },
    Failed {
        /// The payment's failure reason (`cancelled_by_customer`, `wrong_pin`, ...);
        /// `None` when its payment was never written ([`ABANDONED_AFTER`]).
        reason: Option<FailureReason>,
    },
}

/// One STK prompt the customer asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Counts from 1; names the attempt's idempotency key, so a retry of the same start never
    /// prompts twice.
    pub number: u32,
    pub payment_id: PaymentId,
    pub phone: Msisdn,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end: Option<AttemptEnd>,
}

impl Attempt {
    pub fn is_open(&self) -> bool {
        self.end.is_none()
    }
}

/// What the shop asked for, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub amount: Amount,
    pub reference: Reference,
    pub description: Option<Description>,
    /// The customer's number, when the shop knows it: the page suggests it (masked).
    pub phone: Option<Msisdn>,
    pub success_url: ReturnUrl,
    pub cancel_url: ReturnUrl,
    pub expires_in: Duration,
    pub max_attempts: u32,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSession {
    pub id: CheckoutSessionId,
    pub owner: ClientId,
    /// The page the customer pays on (`<public base>/pay/<id>`).
    pub url: String,
    pub status: SessionStatus,
    pub amount: Amount,
    pub reference: Reference,
    pub description: Option<Description>,
    pub phone: Option<Msisdn>,
    pub success_url: ReturnUrl,
    pub cancel_url: ReturnUrl,
    #[serde(default)]
    pub metadata: Metadata,
    pub max_attempts: u32,
    pub attempts: Vec<Attempt>,
    /// The completed attempt's payment.
    pub payment_id: Option<PaymentId>,
    pub closed_by: Option<ClosedBy>,
    pub last_changed_by: ChangedBy,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}

impl CheckoutSession {
    pub fn create(
        id: CheckoutSessionId,
        owner: ClientId,
        request: NewSession,
        public_base_url: &str,
        now: DateTime<Utc>,
    ) -> CheckoutSession {
        CheckoutSession {
            url: format!("{}/pay/{id}", public_base_url.trim_end_matches('/')),
            id,
            owner,
            status: SessionStatus::Open,
            amount: request.amount,
            reference: request.reference,
            description: request.description,
            phone: request.phone,
            success_url: request.success_url,
            cancel_url: request.cancel_url,
            metadata: request.metadata,
            max_attempts: request.max_attempts,
            attempts: Vec::new(),
            payment_id: None,
            closed_by: None,
            last_changed_by: ChangedBy::Merchant,
            created_at: now,
            expires_at: now + request.expires_in,
            updated_at: now,
            version: 0,
        }
    }

    pub fn open_attempt(&self) -> Option<&Attempt> {
        self.attempts.iter().find(|a| a.is_open())
    }

    pub fn last_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// Attempts the customer may still start.
    pub fn attempts_left(&self) -> u32 {
        self.max_attempts.saturating_sub(self.attempts.len() as u32)
    }

    /// Past its expiry: no new attempt may start (an open one may still complete it).
    pub fn is_past_expiry(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// What happens to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The customer asked for a prompt on `phone`; its payment will be `payment_id`.
    StartAttempt { payment_id: PaymentId, phone: Msisdn },
    /// The attempt's payment reached a final status (or was never written).
    AttemptEnded { payment_id: PaymentId, end: AttemptEnd },
    /// Close it unpaid.
    Close { by: ClosedBy },
}

/// Why an event changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionIgnored {
    /// Completed or expired: nothing more may start (`status`).
    NotOpen { status: SessionStatus },
    /// Its expiry passed: no new attempt.
    PastExpiry,
    /// An attempt's prompt is still open.
    AttemptInProgress,
    /// Every allowed attempt was made.
    NoAttemptsLeft,
    /// No attempt of this session has this payment.
    UnknownAttempt,
    /// Closing at its deadline before the deadline.
    NotDue,
    /// The same thing was applied before.
    Duplicate,
}

impl SessionIgnored {
    pub fn code(&self) -> &'static str {
        match self {
            SessionIgnored::NotOpen { .. } => "session_not_open",
            SessionIgnored::PastExpiry => "session_past_expiry",
            SessionIgnored::AttemptInProgress => "attempt_in_progress",
            SessionIgnored::NoAttemptsLeft => "no_attempts_left",
            SessionIgnored::UnknownAttempt => "unknown_attempt",
            SessionIgnored::NotDue => "not_due",
            SessionIgnored::Duplicate => "duplicate",
        }
    }

    pub fn is_anomaly(&self) -> bool {
        matches!(self, SessionIgnored::UnknownAttempt)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionDecision {
    Apply(Box<CheckoutSession>),
    Ignore(SessionIgnored),
}

/// The session state machine (pure).
pub fn decide(session: &CheckoutSession, event: &SessionEvent, now: DateTime<Utc>) -> SessionDecision {
    use SessionDecision::{Apply, Ignore};
    let mut next = session.clone();
    next.updated_at = now;
    match event {
        SessionEvent::StartAttempt { payment_id, phone } => {
            if session.attempts.iter().any(|a| &a.payment_id == payment_id) {
                return Ignore(SessionIgnored::Duplicate);
            }
            if session.status != SessionStatus::Open {
                return Ignore(SessionIgnored::NotOpen { status: session.status });
            }
            if session.open_attempt().is_some() {
                return Ignore(SessionIgnored::AttemptInProgress);
            }
            if session.is_past_expiry(now) {
                return Ignore(SessionIgnored::PastExpiry);
            }
            if session.attempts_left() == 0 {
                return Ignore(SessionIgnored::NoAttemptsLeft);
            }
            next.last_changed_by = ChangedBy::Customer;
            next.attempts.push(Attempt {
                number: session.attempts.len() as u32 + 1,
                payment_id: payment_id.clone(),
                phone: phone.clone(),
                started_at: now,
                ended_at: None,
                end: None,
            });
            Apply(Box::new(next))
        }
        SessionEvent::AttemptEnded { payment_id, end } => {
            let Some(index) = session.attempts.iter().position(|a| &a.payment_id == payment_id) else {
                return Ignore(SessionIgnored::UnknownAttempt);
            };
            let attempt = &session.attempts[index];
            let completes = matches!(end, AttemptEnd::Completed { .. });
            match &attempt.end {
                Some(previous) if previous == end => return Ignore(SessionIgnored::Duplicate),
                // A final failure stays final, except that a late success (a payment that timed
                // out, or was given up on, then completed) is money that moved: it wins.
                Some(AttemptEnd::Completed { .. }) => return Ignore(SessionIgnored::Duplicate),
                Some(AttemptEnd::Failed { .. }) if !completes => return Ignore(SessionIgnored::Duplicate),
                _ => {}
            }
            next.last_changed_by = ChangedBy::Payment;
            next.attempts[index].end = Some(end.clone());
            next.attempts[index].ended_at = Some(now);
            if completes {
                // A second completed attempt (a late success after another attempt paid) is
                // recorded on its attempt; the session keeps the first payment.
                if session.status != SessionStatus::Completed {
                    next.status = SessionStatus::Completed;
                    next.payment_id = Some(payment_id.clone());
                    next.closed_by = None;
                }
            } else if session.status == SessionStatus::Open && next.attempts_left() == 0 {
                next.status = SessionStatus::Expired;
                next.closed_by = Some(ClosedBy::AttemptsExhausted);
            }
            Apply(Box::new(next))
        }
        SessionEvent::Close { by } => match session.status {
            SessionStatus::Expired => Ignore(SessionIgnored::Duplicate),
            SessionStatus::Completed => Ignore(SessionIgnored::NotOpen { status: session.status }),
            // A prompt may be on the phone: closing now could hide a payment that completes a
            // second later. Whoever closes waits for the attempt to end.
            SessionStatus::Open if session.open_attempt().is_some() => Ignore(SessionIgnored::AttemptInProgress),
            SessionStatus::Open if *by == ClosedBy::Deadline && !session.is_past_expiry(now) => {
                Ignore(SessionIgnored::NotDue)
            }
            SessionStatus::Open => {
                next.status = SessionStatus::Expired;
                next.closed_by = Some(*by);
                next.last_changed_by = match by {
                    ClosedBy::Deadline => ChangedBy::Sweeper,
                    ClosedBy::Merchant => ChangedBy::Merchant,
                    ClosedBy::Customer => ChangedBy::Customer,
                    ClosedBy::AttemptsExhausted => ChangedBy::Payment,
                };
                Apply(Box::new(next))
            }
        },
    }
}

/// A host name of this machine (`localhost`, `127.0.0.1`, `[::1]`, as `Url::host_str` writes
/// them): where plain `http`/`ws` is allowed, for local runs.
pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn session(max_attempts: u32) -> CheckoutSession {
        CheckoutSession::create(
            CheckoutSessionId::generate(),
            ClientId::parse("merchant-a").unwrap(),
            NewSession {
                amount: Amount::new(1250).unwrap(),
                reference: Reference::parse("INV-1").unwrap(),
                description: None,
                phone: None,
                success_url: ReturnUrl::parse("https://shop.example/ok").unwrap(),
                cancel_url: ReturnUrl::parse("https://shop.example/cancel").unwrap(),
                expires_in: DEFAULT_EXPIRY,
                max_attempts,
                metadata: Metadata::default(),
            },
            "https://pay.example/",
            t0(),
        )
    }

    fn phone() -> Msisdn {
        Msisdn::parse("0712345678").unwrap()
    }

    fn apply(session: &CheckoutSession, event: SessionEvent, now: DateTime<Utc>) -> CheckoutSession {
        match decide(session, &event, now) {
            SessionDecision::Apply(next) => *next,
            SessionDecision::Ignore(why) => panic!("ignored: {why:?}"),
        }
    }

    fn ignored(session: &CheckoutSession, event: SessionEvent, now: DateTime<Utc>) -> SessionIgnored {
        match decide(session, &event, now) {
            SessionDecision::Apply(_) => panic!("applied"),
            SessionDecision::Ignore(why) => why,
        }
    }

    fn start(payment_id: &PaymentId) -> SessionEvent {
        SessionEvent::StartAttempt {
            payment_id: payment_id.clone(),
            phone: phone(),
        }
    }

    fn failed(payment_id: &PaymentId, reason: FailureReason) -> SessionEvent {
        SessionEvent::AttemptEnded {
            payment_id: payment_id.clone(),
            end: AttemptEnd::Failed { reason: Some(reason) },
        }
    }

    fn completed(payment_id: &PaymentId) -> SessionEvent {
        SessionEvent::AttemptEnded {
            payment_id: payment_id.clone(),
            end: AttemptEnd::Completed {
                receipt: Some("SFK8Z3X4Q1".into()),
            },
        }
    }

    #[test]
    fn ids_are_unguessable_and_parse_strictly() {
        let id = CheckoutSessionId::generate();
        assert_eq!(CheckoutSessionId::parse(id.as_str()), Ok(id.clone()));
        assert_ne!(id, CheckoutSessionId::generate());
        for bad in [
            "",
            "cs_",
            "cs_ABC",
            &id.as_str().to_uppercase(),
            &format!("{}0", id.as_str()),
            "pay_0123",
        ] {
            assert!(CheckoutSessionId::parse(bad).is_err(), "{bad}");
        }
        assert!(!format!("{id:?}").contains(&id.as_str()[9..]));
    }

    #[test]
    fn return_urls_are_https_or_loopback_http() {
        assert!(ReturnUrl::parse("https://shop.example/ok?order=1").is_ok());
        assert!(ReturnUrl::parse("http://127.0.0.1:8080/ok").is_ok());
        assert!(ReturnUrl::parse("http://localhost/ok").is_ok());
        assert_eq!(
            ReturnUrl::parse("http://shop.example/ok"),
            Err(ReturnUrlError::NotHttps)
        );
        assert_eq!(
            ReturnUrl::parse("javascript:alert(1)"),
            Err(ReturnUrlError::NotAbsolute)
        );
        assert_eq!(ReturnUrl::parse("/relative"), Err(ReturnUrlError::NotAbsolute));
        assert_eq!(
            ReturnUrl::parse("https://u:p@shop.example/"),
            Err(ReturnUrlError::HasCredentialsOrFragment)
        );
        assert_eq!(
            ReturnUrl::parse("https://shop.example/#x"),
            Err(ReturnUrlError::HasCredentialsOrFragment)
        );
        let long = format!("https://shop.example/{}", "a".repeat(2100));
        assert_eq!(ReturnUrl::parse(&long), Err(ReturnUrlError::TooLong));
        assert_eq!(
            ReturnUrl::parse("https://shop.example:8443/x").unwrap().origin(),
            "https://shop.example:8443"
        );
    }

    #[test]
    fn one_open_attempt_at_a_time_and_a_retry_after_a_failure() {
        let s = session(5);
        let (p1, p2) = (PaymentId::generate(), PaymentId::generate());
        let s = apply(&s, start(&p1), t0());
        assert_eq!(ignored(&s, start(&p2), t0()), SessionIgnored::AttemptInProgress);
        assert_eq!(ignored(&s, start(&p1), t0()), SessionIgnored::Duplicate);
        let s = apply(&s, failed(&p1, FailureReason::CancelledByCustomer), t0());
        assert_eq!(s.status, SessionStatus::Open);
        let s = apply(&s, start(&p2), t0());
        assert_eq!(s.attempts[1].number, 2);
        let s = apply(&s, completed(&p2), t0());
        assert_eq!(s.status, SessionStatus::Completed);
        assert_eq!(s.payment_id, Some(p2));
        assert_eq!(s.attempts_left(), 3);
    }

    #[test]
    fn the_last_failed_attempt_closes_the_session() {
        let s = session(2);
        let (p1, p2) = (PaymentId::generate(), PaymentId::generate());
        let s = apply(&s, start(&p1), t0());
        let s = apply(&s, failed(&p1, FailureReason::WrongPin), t0());
        let s = apply(&s, start(&p2), t0());
        let s = apply(&s, failed(&p2, FailureReason::InsufficientFunds), t0());
        assert_eq!(s.status, SessionStatus::Expired);
        assert_eq!(s.closed_by, Some(ClosedBy::AttemptsExhausted));
        assert!(matches!(
            ignored(&s, start(&PaymentId::generate()), t0()),
            SessionIgnored::NotOpen { .. }
        ));
    }

    #[test]
    fn a_late_success_completes_even_an_expired_session() {
        let s = session(1);
        let p1 = PaymentId::generate();
        let s = apply(&s, start(&p1), t0());
        let s = apply(&s, failed(&p1, FailureReason::NoFinalResult), t0());
        assert_eq!(s.status, SessionStatus::Expired);
        let s = apply(&s, completed(&p1), t0() + Duration::hours(2));
        assert_eq!(s.status, SessionStatus::Completed);
        assert_eq!(s.closed_by, None);
        // ...and a failure never undoes a completion.
        assert_eq!(
            ignored(&s, failed(&p1, FailureReason::Unknown), t0()),
            SessionIgnored::Duplicate
        );
    }

    #[test]
    fn closing_waits_for_an_open_attempt_and_the_deadline() {
        let s = session(5);
        assert_eq!(
            ignored(&s, SessionEvent::Close { by: ClosedBy::Deadline }, t0()),
            SessionIgnored::NotDue
        );
        let p1 = PaymentId::generate();
        let open = apply(&s, start(&p1), t0());
        let late = t0() + Duration::hours(1);
        assert_eq!(
            ignored(&open, SessionEvent::Close { by: ClosedBy::Merchant }, late),
            SessionIgnored::AttemptInProgress
        );
        let closed = apply(&s, SessionEvent::Close { by: ClosedBy::Deadline }, late);
        assert_eq!(closed.closed_by, Some(ClosedBy::Deadline));
        assert_eq!(
            ignored(&closed, SessionEvent::Close { by: ClosedBy::Merchant }, late),
            SessionIgnored::Duplicate
        );
        assert_eq!(ignored(&s, start(&p1), late), SessionIgnored::PastExpiry);
    }

    #[test]
    fn an_unknown_payment_is_an_anomaly() {
        let why = ignored(&session(5), completed(&PaymentId::generate()), t0());
        assert_eq!(why, SessionIgnored::UnknownAttempt);
        assert!(why.is_anomaly());
    }

    #[derive(Debug, Clone)]
    enum Step {
        Start,
        EndOpen(bool),
        LateComplete(usize),
        Close(u8),
        Wait(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Start),
            any::<bool>().prop_map(Step::EndOpen),
            (0usize..6).prop_map(Step::LateComplete),
            (0u8..3).prop_map(Step::Close),
            (0i64..4000).prop_map(Step::Wait),
        ]
    }

    proptest! {
        /// Whatever happens: never two open attempts, never more attempts than allowed, a
        /// completed session names a completed attempt and stays completed, and a new attempt
        /// never starts on a closed or expired session.
        #[test]
        fn session_invariants_hold(max in 1u32..6, steps in proptest::collection::vec(step(), 0..40)) {
            let mut s = session(max);
            let mut now = t0();
            for step in steps {
                let event = match step {
                    Step::Start => start(&PaymentId::generate()),
                    Step::EndOpen(ok) => match s.open_attempt() {
                        Some(a) if ok => completed(&a.payment_id),
                        Some(a) => failed(&a.payment_id, FailureReason::CancelledByCustomer),
                        None => continue,
                    },
                    Step::LateComplete(i) => match s.attempts.get(i) {
                        Some(a) => completed(&a.payment_id),
                        None => continue,
                    },
                    Step::Close(by) => SessionEvent::Close {
                        by: [ClosedBy::Deadline, ClosedBy::Merchant, ClosedBy::Customer][by as usize],
                    },
                    Step::Wait(seconds) => {
                        now += Duration::seconds(seconds);
                        continue;
                    }
                };
                let before = s.clone();
                if let SessionDecision::Apply(next) = decide(&s, &event, now) {
                    s = *next;
                }
                prop_assert!(s.attempts.iter().filter(|a| a.is_open()).count() <= 1);
                prop_assert!(s.attempts.len() as u32 <= max);
                if before.status == SessionStatus::Completed {
                    prop_assert_eq!(s.status, SessionStatus::Completed);
                    prop_assert_eq!(&s.payment_id, &before.payment_id);
                }
                if s.attempts.len() > before.attempts.len() {
                    prop_assert_eq!(before.status, SessionStatus::Open);
                    prop_assert!(!before.is_past_expiry(now));
                }
                if s.status == SessionStatus::Completed {
                    let paid = s.payment_id.clone().unwrap();
                    let paid_attempt = s.attempts.iter().any(|a| {
                        a.payment_id == paid && matches!(a.end, Some(AttemptEnd::Completed { .. }))
                    });
                    prop_assert!(paid_attempt);
                }
            }
        }
    }
}
