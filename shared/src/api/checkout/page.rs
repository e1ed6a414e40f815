//! The hosted payment page's routes: public, scoped to one session by its unguessable id (the
//! browser never holds a merchant token), rate-limited per client address and per session.
//!
//! - `GET /pay/{session}`: the page in the state the session is in;
//! - `POST /pay/{session}` (form: `phone`, `lang`): start an attempt, then `303` back to the
//!   page (post/redirect/get, so a refresh never posts again); a malformed phone is answered
//!   with the page and the reason, `422`;
//! - `GET /pay/{session}/status`: the page's state as JSON, which the page's script polls;
//! - `POST /pay/{session}/cancel`: the customer goes back to the shop unpaid;
//! - `GET /pay/assets/{file}`: the page's script and stylesheet (named by content, cached a year).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderValue, StatusCode};

use super::super::http::{ApiRequest, ApiResponse};
use super::super::problem::ApiError;
use super::client_limits::{PublicLimits, Verdict};
use crate::domain::checkout_session::{AttemptEnd, CheckoutSession, CheckoutSessionId, ClosedBy, SessionStatus};
use crate::domain::{FailureReason, Msisdn};
use crate::pages::checkout::{
    self as page, display_masked, phone_problem, render_page, ClosedReason, Lang, Outcome, PageModel, PageState,
    PhoneProblem, StatusAnswer,
};
use crate::pages::{security_headers, HTML_CONTENT_TYPE};
use crate::services::checkout::{CheckoutError, CheckoutService};
use crate::services::payments::PaymentsService;

/// Form bodies are tiny: a phone number and a language.
const MAX_FORM_BYTES: usize = 1024;

/// The page routes' services.
pub struct CheckoutPages {
    pub service: Arc<CheckoutService>,
    /// Starts the attempts' payments.
    pub payments: Arc<PaymentsService>,
    pub limits: PublicLimits,
    /// The live channel the page connects to while it waits; `None`: the page polls.
    pub live: Option<LiveChannel>,
}

/// Where the page's live channel is: a WebSocket URL the page opens with `?session=<id>&lang=`
/// (the dev stack's `ws://127.0.0.1:3000/pay/live`, or an API Gateway WebSocket stage,
/// `wss://abc.execute-api.eu-west-1.amazonaws.com/prod`), and its origin for the page's CSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveChannel {
    url: String,
    origin: String,
}

impl LiveChannel {
    /// `wss://` (or `ws://` on a loopback host) with a host and no query or fragment.
    pub fn parse(text: &str) -> Result<LiveChannel, String> {
        let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        let loopback = url
            .host_str()
            .is_some_and(crate::domain::checkout_session::is_loopback_host);
        if !(url.scheme() == "wss" || (url.scheme() == "ws" && loopback)) {
            return Err(format!("{text:?} must be a wss:// URL (ws:// only on loopback)"));
        }
        if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{text:?} must name a host and no query or fragment"));
        }
        let origin = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
            + &url.port().map(|p| format!(":{p}")).unwrap_or_default();
        Ok(LiveChannel {
            url: text.trim_end_matches('/').to_owned(),
            origin,
        })
    }

    /// The URL a session's page connects to (the script adds `&lang=`).
    pub fn url_for(&self, session: &CheckoutSessionId) -> String {
        format!("{}?session={session}", self.url)
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// The page's state as the status JSON ([`StatusAnswer`]): what `GET /pay/{session}/status`
/// answers and what the live channels push, so both always say the same.
#[derive(Clone)]
pub struct StatusAnswers {
    pub service: Arc<CheckoutService>,
    /// How long a prompt is waited for (the payments' deadline): the page's countdown.
    pub prompt_after: chrono::Duration,
}

/// One status answer: its JSON, and whether the page is still waiting for an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub json: String,
    pub waiting: bool,
}

impl StatusAnswers {
    /// The session's state (an attempt whose payment ended is ended first) in `lang`.
    pub async fn answer(&self, id: &CheckoutSessionId, lang: Lang) -> Result<Status, CheckoutError> {
        let session = self.service.current(id).await?;
        let suggested = session.phone.as_ref().map(display_masked);
        let shown = session.open_attempt().map(|a| display_masked(&a.phone));
        let after = self.prompt_after;
        let state = page_state(
            &session,
            &self.service.config.display_name,
            suggested.as_deref(),
            shown.as_deref(),
            None,
            move |started| started + after,
            self.service.now(),
        );
        let waiting = matches!(state, PageState::Waiting { .. });
        let json = serde_json::to_string(&StatusAnswer::new(lang, &state)).map_err(|_| CheckoutError::Internal)?;
        Ok(Status { json, waiting })
    }
}

/// What the customer typed, to show again with its problem.
struct Refused<'a> {
    typed: &'a str,
    problem: PhoneProblem,
}

fn lang_of(request: &ApiRequest, form_lang: Option<&str>) -> Lang {
    let chosen = form_lang.or_else(|| request.query.iter().find(|(k, _)| k == "lang").map(|(_, v)| v.as_str()));
    chosen
        .and_then(Lang::from_query)
        .unwrap_or_else(|| Lang::from_accept_language(request.header("accept-language")))
}

fn session_id(request: &ApiRequest) -> Option<CheckoutSessionId> {
    request
        .path_param("session")
        .and_then(|id| CheckoutSessionId::parse(id).ok())
}

fn with_headers(mut response: ApiResponse, headers: Vec<(&'static str, String)>) -> ApiResponse {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers.insert(name, value);
        }
    }
    response
}

fn html(status: StatusCode, body: String, frame_ancestors: &[String], live_origin: Option<&str>) -> ApiResponse {
    let mut response = ApiResponse {
        status,
        headers: http::HeaderMap::new(),
        body: Bytes::from(body),
    };
    response
        .headers
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(HTML_CONTENT_TYPE));
    with_headers(response, security_headers(frame_ancestors, live_origin))
}

/// A page for what is not a session's page (an unknown or mistyped link, too many requests, a
/// failure of ours): in both languages, as the customer may not have chosen one yet.
fn message_page(status: StatusCode, english: &str, swahili: &str) -> ApiResponse {
    let css = page::assets()
        .iter()
        .find(|a| a.path.ends_with(".css"))
        .map(|a| a.path)
        .unwrap_or("");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>M-Pesa</title><link rel=\"stylesheet\" href=\"{css}\"></head>\
         <body><main><h1>{english}</h1><p lang=\"sw\">{swahili}</p></main></body></html>"
    );
    html(status, body, &[], None)
}

fn not_found_page() -> ApiResponse {
    message_page(
        StatusCode::NOT_FOUND,
        "This payment link is not valid. Ask the shop for a new one.",
        "Kiungo hiki cha malipo si sahihi. Omba duka kiungo kipya.",
    )
}

fn too_many_page(retry_after: u64) -> ApiResponse {
    message_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many tries from this device. Wait a minute, then try again.",
        "Majaribio mengi mno kutoka kifaa hiki. Subiri dakika moja, kisha ujaribu tena.",
    )
    .with_header("retry-after", &retry_after.to_string())
}

fn unavailable_page() -> ApiResponse {
    message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "We could not load this payment just now. Refresh the page in a few seconds.",
        "Hatukuweza kupakia malipo haya sasa hivi. Pakia ukurasa upya baada ya sekunde chache.",
    )
    .with_header("retry-after", "5")
}

fn error_page(error: &CheckoutError) -> ApiResponse {
    match error {
        CheckoutError::NotFound => not_found_page(),
        _ => unavailable_page(),
    }
}

fn closed_reason(by: Option<ClosedBy>) -> ClosedReason {
    match by {
        Some(ClosedBy::Merchant) => ClosedReason::CancelledByShop,
        Some(ClosedBy::Customer) => ClosedReason::CancelledByCustomer,
        Some(ClosedBy::AttemptsExhausted) => ClosedReason::NoAttemptsLeft,
        Some(ClosedBy::Deadline) | None => ClosedReason::Expired,
    }
}

/// The state the customer is in. `prompt_deadline`: when an attempt started at `t` stops being
/// waited for (its payment's deadline).
fn page_state<'a>(
    session: &'a CheckoutSession,
    merchant_name: &'a str,
    suggested: Option<&'a str>,
    phone_shown: Option<&'a str>,
    refused: Option<&Refused<'a>>,
    prompt_deadline: impl Fn(DateTime<Utc>) -> DateTime<Utc>,
    now: DateTime<Utc>,
) -> PageState<'a> {
    match session.status {
        SessionStatus::Completed => {
            let receipt = session
                .attempts
                .iter()
                .find(|a| Some(&a.payment_id) == session.payment_id.as_ref())
                .and_then(|a| match &a.end {
                    Some(AttemptEnd::Completed { receipt }) => receipt.as_deref(),
                    _ => None,
                });
            PageState::Paid {
                receipt,
                success_url: session.success_url.as_str(),
            }
        }
        SessionStatus::Expired => PageState::Closed {
            reason: closed_reason(session.closed_by),
            cancel_url: session.cancel_url.as_str(),
        },
        SessionStatus::Open => match session.open_attempt() {
            Some(attempt) => PageState::Waiting {
                phone_masked: phone_shown.unwrap_or(""),
                deadline: prompt_deadline(attempt.started_at),
                amount_shillings: session.amount.shillings(),
                merchant_name,
            },
            None if session.is_past_expiry(now) => PageState::Closed {
                reason: ClosedReason::Expired,
                cancel_url: session.cancel_url.as_str(),
            },
            None => {
                let after_failure = session.last_attempt().and_then(|a| match &a.end {
                    Some(AttemptEnd::Failed { reason }) => Some(Outcome::from_failure_reason(
                        reason.unwrap_or(FailureReason::DarajaUnavailable),
                    )),
                    _ => None,
                });
                PageState::EnterPhone {
                    typed: refused.map(|r| r.typed),
                    problem: refused.map(|r| r.problem),
                    suggested_masked: suggested,
                    after_failure,
                    attempts_left: session.attempts_left(),
                }
            }
        },
    }
}

impl CheckoutPages {
    fn client_key(request: &ApiRequest) -> String {
        request
            .source_ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".to_owned())
    }

    /// Per client address and per session; `attempt`: a prompt is asked for (stricter).
    fn admit(&self, request: &ApiRequest, session: &CheckoutSessionId, attempt: bool) -> Verdict {
        self.limits.admit(&Self::client_key(request), session.as_str(), attempt)
    }

    fn prompt_deadline(&self) -> impl Fn(DateTime<Utc>) -> DateTime<Utc> {
        let after = self.payments.config.timings.deadline_after;
        move |started| started + after
    }

    /// The `origin` the page is framed by (the modal passes `?origin=`; the page's forms carry
    /// it on), if it is one of the allowed origins.
    fn parent_origin<'a>(&self, request: &'a ApiRequest) -> Option<&'a str> {
        let origin = request
            .query
            .iter()
            .find(|(k, _)| k == "origin")
            .map(|(_, v)| v.as_str())?;
        self.allowed(origin)
    }

    fn allowed<'a>(&self, origin: &'a str) -> Option<&'a str> {
        self.service
            .config
            .allowed_origins
            .iter()
            .any(|allowed| allowed == origin)
            .then_some(origin)
    }

    fn render(
        &self,
        session: &CheckoutSession,
        lang: Lang,
        refused: Option<&Refused<'_>>,
        status: StatusCode,
        parent_origin: Option<&str>,
    ) -> ApiResponse {
        let now = self.service.now();
        let live_url = self.live.as_ref().map(|live| live.url_for(&session.id));
        let suggested = session.phone.as_ref().map(display_masked);
        let shown = session.open_attempt().map(|a| display_masked(&a.phone));
        let state = page_state(
            session,
            &self.service.config.display_name,
            suggested.as_deref(),
            shown.as_deref(),
            refused,
            self.prompt_deadline(),
            now,
        );
        let model = PageModel {
            lang,
            session_id: session.id.as_str(),
            merchant_name: &self.service.config.display_name,
            amount_shillings: session.amount.shillings(),
            description: session.description.as_ref().map(|d| d.as_str()),
            reference: session.reference.as_str(),
            state,
            expires_at: session.expires_at,
            now,
            parent_origin,
            live_url: live_url.as_deref(),
        };
        html(
            status,
            render_page(&model),
            &self.service.config.allowed_origins,
            self.live.as_ref().map(LiveChannel::origin),
        )
    }

    pub async fn page(&self, request: ApiRequest) -> ApiResponse {
        let Some(id) = session_id(&request) else {
            return not_found_page();
        };
        if let Verdict::Limited { retry_after } = self.admit(&request, &id, false) {
            return too_many_page(retry_after);
        }
        match self.service.current(&id).await {
            Ok(session) => {
                let lang = lang_of(&request, None);
                self.render(&session, lang, None, StatusCode::OK, self.parent_origin(&request))
            }
            Err(error) => error_page(&error),
        }
    }

    pub async fn status(&self, request: ApiRequest) -> ApiResponse {
        let not_found = || {
            ApiError::NotFound {
                resource: "checkout session",
            }
            .to_response(&request.request_id)
        };
        let Some(id) = session_id(&request) else {
            return not_found();
        };
        if let Verdict::Limited { retry_after } = self.admit(&request, &id, false) {
            return ApiError::Conflict {
                code: "too_many_requests",
                detail: "too many requests from this client; slow down".into(),
            }
            .to_response(&request.request_id)
            .with_status(StatusCode::TOO_MANY_REQUESTS)
            .with_header("retry-after", &retry_after.to_string());
        }
        match self.status_answer(&id, lang_of(&request, None)).await {
            Ok(answer) => ApiResponse::raw_json(StatusCode::OK, Bytes::from(answer.json))
                .with_header("cache-control", "no-store")
                .with_header("x-content-type-options", "nosniff"),
            Err(CheckoutError::NotFound) => not_found(),
            Err(error) => ApiError::from(error).to_response(&request.request_id),
        }
    }

    /// The status answers of these pages' sessions.
    pub fn answers(&self) -> StatusAnswers {
        StatusAnswers {
            service: self.service.clone(),
            prompt_after: self.payments.config.timings.deadline_after,
        }
    }

    /// The page's state as the status JSON ([`StatusAnswer`]) in `lang`: what the status route
    /// answers and the live channel pushes.
    pub async fn status_answer(&self, id: &CheckoutSessionId, lang: Lang) -> Result<Status, CheckoutError> {
        self.answers().answer(id, lang).await
    }

    /// Counts a live channel's connection like a page load (per client address and session).
    pub fn admit_live(&self, client: Option<std::net::IpAddr>, session: &CheckoutSessionId) -> Verdict {
        let client = client.map(|ip| ip.to_string()).unwrap_or_else(|| "unknown".to_owned());
        self.limits.admit(&client, session.as_str(), false)
    }

    /// Back to the page (in the customer's language, in the modal of `origin`) after a form post.
    fn see_page(id: &CheckoutSessionId, lang: Lang, origin: Option<&str>) -> ApiResponse {
        let mut response = ApiResponse {
            status: StatusCode::SEE_OTHER,
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
        };
        let mut location = format!("/pay/{id}?lang={}", lang.code());
        if let Some(origin) = origin {
            location.push_str("&origin=");
            location.extend(form_urlencoded::byte_serialize(origin.as_bytes()));
        }
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers.insert(http::header::LOCATION, location);
        }
        with_headers(response, security_headers(&[], None))
    }

    pub async fn pay(&self, request: ApiRequest) -> ApiResponse {
        let Some(id) = session_id(&request) else {
            return not_found_page();
        };
        if let Verdict::Limited { retry_after } = self.admit(&request, &id, true) {
            return too_many_page(retry_after);
        }
        let form = form_fields(&request.body);
        let lang = lang_of(&request, field(&form, "lang"));
        let origin = field(&form, "origin").and_then(|o| self.allowed(o));
        let typed = field(&form, "phone").unwrap_or("");
        if let Some(problem) = phone_problem(typed) {
            return match self.service.current(&id).await {
                Ok(session) => {
                    let refused = Refused { typed, problem };
                    let status = StatusCode::UNPROCESSABLE_ENTITY;
                    self.render(&session, lang, Some(&refused), status, origin)
                }
                Err(error) => error_page(&error),
            };
        }
        let Ok(phone) = Msisdn::parse(typed) else {
            return unavailable_page();
        };
        match self.service.start_attempt(&self.payments, &id, phone).await {
            // Whatever became of the attempt (started, already open, refused, or the session
            // closed meanwhile), the page shows it.
            Ok(_)
            | Err(CheckoutError::AttemptInProgress)
            | Err(CheckoutError::NotOpen { .. })
            | Err(CheckoutError::PastExpiry)
            | Err(CheckoutError::PaymentRefused(_)) => Self::see_page(&id, lang, origin),
            Err(error) => error_page(&error),
        }
    }

    pub async fn cancel(&self, request: ApiRequest) -> ApiResponse {
        let Some(id) = session_id(&request) else {
            return not_found_page();
        };
        if let Verdict::Limited { retry_after } = self.admit(&request, &id, false) {
            return too_many_page(retry_after);
        }
        let form = form_fields(&request.body);
        let lang = lang_of(&request, field(&form, "lang"));
        let origin = field(&form, "origin").and_then(|o| self.allowed(o));
        match self.service.cancel_by_customer(&id).await {
            // Closed now, or it cannot be (paid, closed, or a prompt open): the page says which.
            Ok(_)
            | Err(CheckoutError::AttemptInProgress)
            | Err(CheckoutError::NotOpen { .. })
            | Err(CheckoutError::PastExpiry) => Self::see_page(&id, lang, origin),
            Err(error) => error_page(&error),
        }
    }
}

/// The embeddable modal's script, at a stable versioned path shops put in a script tag.
pub const MODAL_SCRIPT_PATH: &str = "/pay/assets/checkout-v1.js";
const MODAL_SCRIPT: &str = include_str!("../../pages/checkout/assets/checkout.js");

/// `GET /pay/assets/{file}`: the page's assets (named by content: cached a year) and the
/// modal's script (a stable path: fixes within v1 reach shops within an hour).
pub fn asset(request: &ApiRequest) -> ApiResponse {
    if request.path == MODAL_SCRIPT_PATH {
        let mut response = ApiResponse {
            status: StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: Bytes::from_static(MODAL_SCRIPT.as_bytes()),
        };
        response.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        );
        return response
            .with_header("cache-control", "public, max-age=3600")
            .with_header("x-content-type-options", "nosniff")
            .with_header("cross-origin-resource-policy", "cross-origin");
    }
    match page::asset(&request.path) {
        Some(asset) => {
            let mut response = ApiResponse {
                status: StatusCode::OK,
                headers: http::HeaderMap::new(),
                body: Bytes::from_static(asset.body.as_bytes()),
            };
            response
                .headers
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
            response
                .with_header("cache-control", "public, max-age=31536000, immutable")
                .with_header("x-content-type-options", "nosniff")
        }
        None => message_page(StatusCode::NOT_FOUND, "Not found.", "Haipatikani."),
    }
}

/// The fields of an `application/x-www-form-urlencoded` body (empty when it is too large).
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    if body.len() > MAX_FORM_BYTES {
        return Vec::new();
    }
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}
