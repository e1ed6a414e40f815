//! The page's HTML. `maud` escapes every spliced value, so names and descriptions the shop sent
//! cannot become markup; URLs are also checked for their scheme, because escaping alone does
//! not stop a `javascript:` link.
//!
//! No inline script or style anywhere: behaviour and looks come only from the two hashed
//! assets, which the page's CSP allows and nothing else.

use chrono::{DateTime, FixedOffset, Utc};
use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::assets;
use super::i18n::{self, status_message, Lang};
use super::model::{Outcome, PageModel, PageState};
use super::money::format_kes;
use super::phone::PhoneProblem;

/// Attempts counts are shown from this many down: more than that is no news to the customer.
const FEW_ATTEMPTS: u32 = 2;

/// Kenya keeps East Africa Time all year (UTC+3, no daylight saving).
const EAST_AFRICA_SECONDS: i32 = 3 * 3600;

/// Characters left as they are in a path segment: the session id is `cs_` and hex, but the URL
/// must stay a path even if it were not.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-').remove(b'.').remove(b'~');

/// `url` when it is an http(s) URL, otherwise `"#"`: a link to a `javascript:` or `data:` URL
/// would run in our origin even though it is escaped.
pub fn safe_href(url: &str) -> &str {
    let has_scheme = |scheme: &str| {
        url.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    };
    if has_scheme("https://") || has_scheme("http://") {
        url
    } else {
        "#"
    }
}

/// A complete HTML5 document for the session's current state.
pub fn render_page(model: &PageModel<'_>) -> String {
    let words = model.lang.words();
    let paths = Paths::new(model.session_id, model.lang);
    let script = assets::script();
    let stylesheet = assets::stylesheet();
    let (receipt, reason) = match model.state {
        PageState::Paid { receipt, .. } => (receipt, None),
        PageState::Closed { reason, .. } => (None, Some(reason.code())),
        _ => (None, None),
    };
    let outcome = match model.state {
        PageState::EnterPhone { after_failure, .. } => after_failure.map(Outcome::code),
        _ => None,
    };
    html! {
        (DOCTYPE)
        html lang=(model.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex, nofollow";
                // Keeps iOS from turning receipts and amounts into phone-call links.
                meta name="format-detection" content="telephone=no";
                title { (words.pay_with_mpesa) " – " (model.merchant_name) }
                // An empty icon, so browsers do not ask for a /favicon.ico we do not serve.
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(stylesheet.path) integrity=(stylesheet.integrity);
                script src=(script.path) integrity=(script.integrity) defer {}
                @if matches!(model.state, PageState::Waiting { .. }) {
                    noscript { meta http-equiv="refresh" content="3"; }
                }
            }
            body data-session=(model.session_id)
                data-status-url=(paths.status)
                data-lang=(model.lang.code())
                data-state=(model.state.code())
                data-parent-origin=[model.parent_origin.map(safe_href).filter(|o| *o != "#")]
                data-live-url=[model.live_url]
                data-receipt=[receipt]
                data-reason=[reason]
                data-outcome=[outcome] {
                main.page {
                    (language_switch(model.lang, &paths))
                    div.card {
                        (payee(model))
                        div id="status" class=(format!("status tone-{}", tone(&model.state))) role="status" aria-live="polite" {
                            (status_message(model.lang, &model.state))
                        }
                        @match model.state {
                            PageState::EnterPhone { typed, problem, suggested_masked, after_failure, attempts_left } => {
                                (enter_phone(model, &paths, EnterPhone { typed, problem, suggested_masked, after_failure, attempts_left }))
                            }
                            PageState::Waiting { phone_masked, deadline, .. } => {
                                (waiting(model, phone_masked, deadline))
                            }
                            PageState::Paid { success_url, .. } => (paid(model, success_url)),
                            PageState::Closed { cancel_url, .. } => (closed(model, cancel_url)),
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

/// The page's own URLs.
struct Paths {
    page: String,
    status: String,
    cancel: String,
    lang: Lang,
}

impl Paths {
    fn new(session_id: &str, lang: Lang) -> Paths {
        let page = format!("/pay/{}", utf8_percent_encode(session_id, PATH_SEGMENT));
        Paths {
            status: format!("{page}/status"),
            cancel: format!("{page}/cancel"),
            page,
            lang,
        }
    }

    fn page_in(&self, lang: Lang) -> String {
        format!("{}?lang={}", self.page, lang.code())
    }
}

fn tone(state: &PageState<'_>) -> &'static str {
    match state {
        PageState::EnterPhone {
            after_failure: Some(_), ..
        } => "warn",
        PageState::EnterPhone { .. } | PageState::Waiting { .. } => "info",
        PageState::Paid { .. } => "ok",
        PageState::Closed { .. } => "closed",
    }
}

fn language_switch(current: Lang, paths: &Paths) -> Markup {
    html! {
        nav.lang aria-label=(current.words().language) {
            @for lang in Lang::ALL {
                a href=(paths.page_in(lang)) hreflang=(lang.code()) lang=(lang.code())
                    aria-current=[(lang == current).then_some("page")] {
                    (language_name(lang))
                }
            }
        }
    }
}

/// Each language is named in itself, so a customer finds theirs whatever the page shows.
fn language_name(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "English",
        Lang::Sw => "Kiswahili",
    }
}

fn payee(model: &PageModel<'_>) -> Markup {
    let words = model.lang.words();
    html! {
        header.payee {
            p.eyebrow { (words.pay_with_mpesa) }
            h1 { (model.merchant_name) }
            p.amount { (format_kes(model.amount_shillings)) }
            @if let Some(description) = model.description {
                p.description { (description) }
            } @else {
                p.reference { (words.reference) ": " (model.reference) }
            }
        }
    }
}

/// The shop's origin when the page is in its modal (only an http(s) one).
fn framing_origin<'a>(model: &PageModel<'a>) -> Option<&'a str> {
    model.parent_origin.map(safe_href).filter(|o| *o != "#")
}

struct EnterPhone<'a> {
    typed: Option<&'a str>,
    problem: Option<PhoneProblem>,
    suggested_masked: Option<&'a str>,
    after_failure: Option<Outcome>,
    attempts_left: u32,
}

fn enter_phone(model: &PageModel<'_>, paths: &Paths, form: EnterPhone<'_>) -> Markup {
    let lang = model.lang;
    let words = lang.words();
    let amount = format_kes(model.amount_shillings);
    // After a refusal the customer is back to fix the number: put them in the box.
    let retrying = form.problem.is_some() || form.after_failure.is_some();
    html! {
        section.step {
            @if (1..=FEW_ATTEMPTS).contains(&form.attempts_left) {
                p.attempts { (i18n::attempts_left(lang, form.attempts_left)) }
            }
            form #pay-form method="post" action=(paths.page) novalidate {
                input type="hidden" name="lang" value=(paths.lang.code());
                // In the modal: the page after the post still knows whom to tell the outcome.
                @if let Some(origin) = framing_origin(model) {
                    input type="hidden" name="origin" value=(origin);
                }
                label for="phone" { (words.phone_label) }
                p id="phone-hint" class="hint" {
                    (words.phone_hint)
                    @if let Some(masked) = form.suggested_masked {
                        " " (unbroken(&i18n::suggested_phone(lang, model.merchant_name, masked), masked))
                    }
                }
                input #phone name="phone" type="tel" inputmode="tel" autocomplete="tel"
                    aria-describedby="phone-hint phone-error"
                    value=[form.typed]
                    aria-invalid=[form.problem.map(|_| "true")]
                    autofocus[retrying];
                p id="phone-error" class="error" aria-live="polite" {
                    @if let Some(problem) = form.problem {
                        (i18n::phone_problem_message(lang, problem))
                    }
                }
                button.button type="submit" { (i18n::pay_button(lang, &amount)) }
            }
            p.note { (i18n::pay_before(lang, &clock_time(model.expires_at))) }
            form.cancel-form method="post" action=(paths.cancel) {
                input type="hidden" name="lang" value=(paths.lang.code());
                @if let Some(origin) = framing_origin(model) {
                    input type="hidden" name="origin" value=(origin);
                }
                button.link-button type="submit" { (words.cancel) }
            }
        }
    }
}

fn waiting(model: &PageModel<'_>, phone_masked: &str, deadline: DateTime<Utc>) -> Markup {
    let lang = model.lang;
    let words = lang.words();
    html! {
        section.step {
            p.sent-to { (unbroken(&i18n::prompt_sent_to(lang, phone_masked), phone_masked)) }
            p.countdown {
                (words.time_left) ": "
                // The script keeps it ticking from the server's clock (`data-now`), not the
                // phone's, which may be off.
                span #countdown role="timer" data-deadline=(deadline.timestamp()) data-now=(model.now.timestamp()) {
                    (minutes_seconds(deadline, model.now))
                }
            }
            p.note { (i18n::wait_until(lang, &clock_time(deadline))) }
            p.waiting { (words.waiting_for_mpesa) }
            p.note { (words.one_prompt_at_a_time) }
            noscript { p.note { (words.refreshes_itself) } }
        }
    }
}

fn paid(model: &PageModel<'_>, success_url: &str) -> Markup {
    let href = safe_href(success_url);
    html! {
        section.step {
            // `_top`: inside the shop's modal the link leaves the modal, not just the frame.
            a id="redirect" class="button" href=(href) data-redirect=(href) target="_top" {
                (i18n::back_to(model.lang, model.merchant_name))
            }
            p id="redirect-note" class="note" hidden { (i18n::taking_you_back(model.lang, model.merchant_name)) }
        }
    }
}

fn closed(model: &PageModel<'_>, cancel_url: &str) -> Markup {
    html! {
        section.step {
            a.button href=(safe_href(cancel_url)) target="_top" {
                (i18n::back_to(model.lang, model.merchant_name))
            }
        }
    }
}

/// `sentence` with its first `part` kept on one line: a masked number split as "0712 ***" and
/// "678" reads as two numbers.
fn unbroken(sentence: &str, part: &str) -> Markup {
    match sentence.split_once(part) {
        Some((before, after)) if !part.is_empty() => html! { (before) span.nowrap { (part) } (after) },
        _ => html! { (sentence) },
    }
}

/// `14:05`, in Kenya's time: the customer's clock, and M-Pesa's.
fn clock_time(at: DateTime<Utc>) -> String {
    let east_africa = FixedOffset::east_opt(EAST_AFRICA_SECONDS).expect("UTC+3 is a valid offset");
    at.with_timezone(&east_africa).format("%H:%M").to_string()
}

/// What the countdown shows before the script takes over (and without it, at each refresh).
fn minutes_seconds(deadline: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = (deadline - now).num_seconds().max(0);
    format!("{:02}:{:02}", left / 60, left % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::checkout::i18n::{closed_message, outcome_message, outcome_next_step, phone_problem_message};
    use crate::pages::checkout::model::ClosedReason;
    use chrono::TimeZone;

    const SESSION: &str = "cs_0123456789abcdef0123456789abcdef";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 11, 0, 0).unwrap()
    }

    fn model(lang: Lang, state: PageState<'static>) -> PageModel<'static> {
        PageModel {
            lang,
            session_id: SESSION,
            merchant_name: "SHOP",
            amount_shillings: 1_250,
            description: Some("Order 1042"),
            reference: "INV-1042",
            state,
            expires_at: now() + chrono::Duration::minutes(30),
            now: now(),
            parent_origin: None,
            live_url: None,
        }
    }

    fn enter_phone_state() -> PageState<'static> {
        PageState::EnterPhone {
            typed: None,
            problem: None,
            suggested_masked: None,
            after_failure: None,
            attempts_left: 5,
        }
    }

    fn waiting_state() -> PageState<'static> {
        PageState::Waiting {
            phone_masked: "0712 *** 678",
            deadline: now() + chrono::Duration::seconds(95),
            amount_shillings: 1250,
            merchant_name: "SHOP",
        }
    }

    /// One of each state, with every optional part filled (the heaviest pages).
    fn every_state() -> Vec<PageState<'static>> {
        let mut states = vec![
            enter_phone_state(),
            PageState::EnterPhone {
                typed: Some("0812 345 678"),
                problem: Some(PhoneProblem::NotMobile),
                suggested_masked: Some("0712 *** 678"),
                after_failure: Some(Outcome::InsufficientFunds),
                attempts_left: 1,
            },
            waiting_state(),
            PageState::Paid {
                receipt: Some("SFK8Z3X4Q1"),
                success_url: "https://shop.example/thanks?order=1042",
            },
            PageState::Paid {
                receipt: None,
                success_url: "https://shop.example/thanks",
            },
        ];
        states.extend(ClosedReason::ALL.map(|reason| PageState::Closed {
            reason,
            cancel_url: "https://shop.example/cart",
        }));
        states
    }

    fn escaped(text: &str) -> String {
        html! { (text) }.into_string()
    }

    /// Every `name=` attribute name in the document's tags.
    fn attribute_names(html: &str) -> Vec<String> {
        let mut names = Vec::new();
        for tag in html.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap_or_default();
            let mut in_quotes = false;
            let mut name = String::new();
            for c in tag.chars() {
                match c {
                    '"' => in_quotes = !in_quotes,
                    '=' if !in_quotes => names.push(std::mem::take(&mut name)),
                    c if c.is_whitespace() && !in_quotes => name.clear(),
                    c if !in_quotes => name.push(c),
                    _ => {}
                }
            }
        }
        names
    }

    #[test]
    fn every_state_renders_in_both_languages() {
        for lang in Lang::ALL {
            for state in every_state() {
                let page = model(lang, state);
                let html = render_page(&page);
                let label = format!("{lang:?} {state:?}");
                assert!(html.starts_with("<!DOCTYPE html><html lang=\""), "{label}");
                assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())), "{label}");
                assert!(html.contains("KES 1,250"), "{label}");
                let status = format!(
                    "role=\"status\" aria-live=\"polite\">{}</div>",
                    escaped(&status_message(lang, &state))
                );
                assert!(html.contains("<div id=\"status\" class=\"status tone-"), "{label}");
                assert!(html.contains(&status), "{label}: no {status}");
                assert_eq!(
                    html.contains("<label for=\"phone\">"),
                    matches!(state, PageState::EnterPhone { .. }),
                    "{label}"
                );
                assert_eq!(
                    html.contains("<noscript><meta http-equiv=\"refresh\" content=\"3\"></noscript></head>"),
                    matches!(state, PageState::Waiting { .. }),
                    "{label}"
                );
                assert_eq!(
                    html.matches("http-equiv").count(),
                    usize::from(matches!(state, PageState::Waiting { .. }))
                );
                let body = format!(
                    "<body data-session=\"{SESSION}\" data-status-url=\"/pay/{SESSION}/status\" data-lang=\"{}\" data-state=\"{}\"",
                    lang.code(),
                    state.code()
                );
                assert!(html.contains(&body), "{label}");
                assert!(html.contains(&format!("href=\"/pay/{SESSION}?lang=sw\" hreflang=\"sw\" lang=\"sw\"")));
                assert!(html.contains(&format!("href=\"/pay/{SESSION}?lang=en\" hreflang=\"en\" lang=\"en\"")));
                assert_eq!(html.matches("aria-current=\"page\"").count(), 1, "{label}");
                assert_eq!(html.matches("</html>").count(), 1);
            }
        }
    }

    #[test]
    fn no_inline_script_style_or_handlers() {
        for lang in Lang::ALL {
            for state in every_state() {
                let html = render_page(&model(lang, state));
                for (at, _) in html.match_indices("<script") {
                    let tag = &html[at..at + html[at..].find('>').unwrap()];
                    assert!(tag.contains(" src=\"/pay/assets/"), "{tag}");
                    assert!(html[at..].contains("></script>"), "a script element with a body");
                }
                assert_eq!(html.matches("<script").count(), 1);
                assert!(!html.contains("<style"));
                for name in attribute_names(&html) {
                    assert_ne!(name, "style", "{state:?}");
                    assert!(!name.starts_with("on"), "{name} in {state:?}");
                }
                assert!(!html.contains("javascript:"));
            }
        }
    }

    #[test]
    fn the_page_links_only_our_own_hashed_assets() {
        let html = render_page(&model(Lang::En, enter_phone_state()));
        let script = assets::script();
        let stylesheet = assets::stylesheet();
        assert!(html.contains(&format!(
            "<script src=\"{}\" integrity=\"{}\" defer></script>",
            script.path, script.integrity
        )));
        assert!(html.contains(&format!(
            "<link rel=\"stylesheet\" href=\"{}\" integrity=\"{}\">",
            stylesheet.path, stylesheet.integrity
        )));
        assert!(!html.contains("//cdn") && !html.contains("src=\"http") && !html.contains("href=\"//"));
    }

    #[test]
    fn shop_text_is_escaped() {
        let mut page = model(
            Lang::En,
            PageState::EnterPhone {
                typed: Some("\"><script>alert(3)</script>"),
                problem: Some(PhoneProblem::NotDigits),
                suggested_masked: Some("<b>0712</b>"),
                after_failure: None,
                attempts_left: 5,
            },
        );
        page.merchant_name = "<script>alert(1)</script> \"Duka\"";
        page.description = Some("<script>alert(2)</script> 10\" screen & case");
        let html = render_page(&page);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>"));
        assert!(
            html.contains("<title>Pay with M-Pesa – &lt;script&gt;alert(1)&lt;/script&gt; &quot;Duka&quot;</title>")
        );
        assert!(html.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt; &quot;Duka&quot;</h1>"));
        assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt; 10&quot; screen &amp; case"));
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;\""));
    }

    #[test]
    fn unbroken_parts_are_escaped_like_the_rest() {
        assert_eq!(
            unbroken("<b>x</b> 0712 *** 678 & co", "0712 *** 678").into_string(),
            "&lt;b&gt;x&lt;/b&gt; <span class=\"nowrap\">0712 *** 678</span> &amp; co"
        );
        assert_eq!(unbroken("no part here", "0712").into_string(), "no part here");
        assert_eq!(unbroken("a<b", "").into_string(), "a&lt;b");
    }

    #[test]
    fn a_url_that_is_not_http_never_becomes_a_link() {
        for url in [
            "javascript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,x",
            "//evil.example",
            "",
        ] {
            assert_eq!(safe_href(url), "#", "{url}");
            let html = render_page(&model(
                Lang::En,
                PageState::Paid {
                    receipt: None,
                    success_url: url,
                },
            ));
            assert!(
                html.contains("<a id=\"redirect\" class=\"button\" href=\"#\" data-redirect=\"#\""),
                "{url}"
            );
            let html = render_page(&model(
                Lang::En,
                PageState::Closed {
                    reason: ClosedReason::Expired,
                    cancel_url: url,
                },
            ));
            assert!(html.contains("<a class=\"button\" href=\"#\""), "{url}");
        }
        assert_eq!(safe_href("https://shop.example/ok"), "https://shop.example/ok");
        assert_eq!(safe_href("HTTPS://shop.example/ok"), "HTTPS://shop.example/ok");
        assert_eq!(safe_href("http://127.0.0.1:8080/ok"), "http://127.0.0.1:8080/ok");
    }

    #[test]
    fn enter_phone_posts_to_the_session_and_offers_to_cancel() {
        let html = render_page(&model(Lang::En, enter_phone_state()));
        assert!(html.contains(&format!(
            "<form id=\"pay-form\" method=\"post\" action=\"/pay/{SESSION}\" novalidate>"
        )));
        assert!(html.contains(
            "<input id=\"phone\" name=\"phone\" type=\"tel\" inputmode=\"tel\" autocomplete=\"tel\" aria-describedby=\"phone-hint phone-error\">"
        ));
        assert!(html.contains("<p id=\"phone-hint\" class=\"hint\">"));
        assert!(html.contains("<p id=\"phone-error\" class=\"error\" aria-live=\"polite\"></p>"));
        assert!(html.contains("<button class=\"button\" type=\"submit\">Pay KES 1,250</button>"));
        assert!(html.contains(&format!(
            "<form class=\"cancel-form\" method=\"post\" action=\"/pay/{SESSION}/cancel\">"
        )));
        assert!(html.contains("<input type=\"hidden\" name=\"lang\" value=\"en\">"));
        assert!(
            html.contains("Pay before 14:30."),
            "the session's expiry in Kenyan time"
        );
        assert!(!html.contains("autofocus") && !html.contains("aria-invalid") && !html.contains("attempt"));
    }

    #[test]
    fn a_refused_number_is_shown_again_with_why() {
        for lang in Lang::ALL {
            let html = render_page(&model(
                lang,
                PageState::EnterPhone {
                    typed: Some("0812 345 678"),
                    problem: Some(PhoneProblem::NotMobile),
                    suggested_masked: Some("0712 *** 678"),
                    after_failure: None,
                    attempts_left: 3,
                },
            ));
            assert!(html.contains("value=\"0812 345 678\" aria-invalid=\"true\" autofocus>"));
            assert!(html.contains(&format!(
                "<p id=\"phone-error\" class=\"error\" aria-live=\"polite\">{}</p>",
                phone_problem_message(lang, PhoneProblem::NotMobile)
            )));
            let suggestion = i18n::suggested_phone(lang, "SHOP", "0712 *** 678");
            assert!(html.contains(&unbroken(&suggestion, "0712 *** 678").into_string()));
            assert!(html.contains("<span class=\"nowrap\">0712 *** 678</span>"));
            assert!(!html.contains("attempts left") && !html.contains("yamebaki"));
        }
    }

    #[test]
    fn the_last_failure_says_what_happened_and_what_to_do() {
        for lang in Lang::ALL {
            for outcome in Outcome::ALL {
                for attempts_left in [1, 2, 3] {
                    let html = render_page(&model(
                        lang,
                        PageState::EnterPhone {
                            typed: None,
                            problem: None,
                            suggested_masked: None,
                            after_failure: Some(outcome),
                            attempts_left,
                        },
                    ));
                    assert!(html.contains("class=\"status tone-warn\""));
                    assert!(html.contains(outcome_message(lang, outcome)));
                    assert!(html.contains(outcome_next_step(lang, outcome)));
                    assert!(html.contains(&format!("data-outcome=\"{}\"", outcome.code())));
                    assert_eq!(
                        html.contains(&i18n::attempts_left(lang, attempts_left)),
                        attempts_left <= FEW_ATTEMPTS
                    );
                }
            }
        }
        assert_eq!(i18n::attempts_left(Lang::En, 1), "1 attempt left.");
        assert_eq!(i18n::attempts_left(Lang::Sw, 2), "Majaribio 2 yamebaki.");
    }

    #[test]
    fn waiting_counts_down_and_offers_no_other_number() {
        let html = render_page(&model(Lang::En, waiting_state()));
        let deadline = (now() + chrono::Duration::seconds(95)).timestamp();
        assert!(html.contains(&format!(
            "<span id=\"countdown\" role=\"timer\" data-deadline=\"{deadline}\" data-now=\"{}\">01:35</span>",
            now().timestamp()
        )));
        assert!(html.contains("We will wait until 14:01."));
        assert!(html.contains("The prompt went to <span class=\"nowrap\">0712 *** 678</span>."));
        assert!(html.contains("Waiting for M-Pesa…"));
        assert!(html.contains("Check your phone: enter your M-Pesa PIN to pay KES 1,250 to SHOP."));
        assert!(!html.contains("<form") && !html.contains("<input"));
        let sw = render_page(&model(Lang::Sw, waiting_state()));
        assert!(sw.contains("Angalia simu yako: weka PIN yako ya M-Pesa ili kulipa KES 1,250 kwa SHOP."));
        assert!(sw.contains("Tunasubiri M-Pesa…"));
        assert_eq!(minutes_seconds(now(), now() + chrono::Duration::seconds(5)), "00:00");
    }

    #[test]
    fn paid_shows_the_receipt_and_the_way_back() {
        let html = render_page(&model(
            Lang::En,
            PageState::Paid {
                receipt: Some("SFK8Z3X4Q1"),
                success_url: "https://shop.example/thanks?order=1042&x=1",
            },
        ));
        assert!(html.contains("Payment received. M-Pesa receipt: SFK8Z3X4Q1."));
        assert!(html.contains("data-receipt=\"SFK8Z3X4Q1\""));
        assert!(html.contains(
            "<a id=\"redirect\" class=\"button\" href=\"https://shop.example/thanks?order=1042&amp;x=1\" \
             data-redirect=\"https://shop.example/thanks?order=1042&amp;x=1\" target=\"_top\">Back to SHOP</a>"
        ));
        assert!(html.contains("<p id=\"redirect-note\" class=\"note\" hidden>Taking you back to SHOP…</p>"));
    }

    #[test]
    fn closed_says_why_and_links_back() {
        for lang in Lang::ALL {
            for reason in ClosedReason::ALL {
                let html = render_page(&model(
                    lang,
                    PageState::Closed {
                        reason,
                        cancel_url: "https://shop.example/cart",
                    },
                ));
                assert!(html.contains(closed_message(lang, reason)));
                assert!(html.contains(&format!("data-reason=\"{}\"", reason.code())));
                assert!(html.contains(&format!(
                    "<a class=\"button\" href=\"https://shop.example/cart\" target=\"_top\">{}</a>",
                    i18n::back_to(lang, "SHOP")
                )));
            }
        }
    }

    #[test]
    fn modal_and_live_hooks_appear_only_when_given() {
        let mut page = model(Lang::En, waiting_state());
        let plain = render_page(&page);
        assert!(!plain.contains("data-parent-origin") && !plain.contains("data-live-url"));
        page.parent_origin = Some("https://shop.example");
        page.live_url = Some("wss://pay.example/pay/live");
        let hooked = render_page(&page);
        assert!(hooked.contains("data-parent-origin=\"https://shop.example\""));
        assert!(hooked.contains("data-live-url=\"wss://pay.example/pay/live\""));
        page.parent_origin = Some("*");
        assert!(!render_page(&page).contains("data-parent-origin"));
    }

    #[test]
    fn the_session_id_stays_one_path_segment() {
        let paths = Paths::new("cs_a/b?c#d e", Lang::Sw);
        assert_eq!(paths.page, "/pay/cs_a%2Fb%3Fc%23d%20e");
        assert_eq!(paths.status, "/pay/cs_a%2Fb%3Fc%23d%20e/status");
        assert_eq!(paths.cancel, "/pay/cs_a%2Fb%3Fc%23d%20e/cancel");
        assert_eq!(paths.page_in(Lang::En), "/pay/cs_a%2Fb%3Fc%23d%20e?lang=en");
    }

    #[test]
    fn a_reference_stands_in_for_a_missing_description() {
        let mut page = model(Lang::Sw, enter_phone_state());
        page.description = None;
        assert!(render_page(&page).contains("<p class=\"reference\">Kumbukumbu: INV-1042</p>"));
    }

    #[test]
    fn the_whole_page_weighs_well_under_50_kib() {
        let heaviest = Lang::ALL
            .into_iter()
            .flat_map(|lang| {
                every_state()
                    .into_iter()
                    .map(move |state| render_page(&model(lang, state)).len())
            })
            .max()
            .unwrap();
        let total = heaviest + assets::script().body.len() + assets::stylesheet().body.len();
        assert!(total < 50 * 1024, "{total} bytes");
    }
}
