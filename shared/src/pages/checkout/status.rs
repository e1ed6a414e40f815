//! The JSON that `GET /pay/{id}/status` answers (and a live push sends): what `pay.js` reads to
//! know the wait is over. Built here, beside the page, so the two cannot drift apart.

use serde::Serialize;

use super::i18n::{status_message, Lang};
use super::model::PageState;
use super::render::safe_href;

/// `{"state": "waiting", "outcome": null, "message": "...", "receipt": null, "redirect_url": null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusAnswer<'a> {
    /// [`PageState::code`].
    pub state: &'static str,
    /// How the last attempt failed ([`super::Outcome::code`]), while the customer may try again.
    pub outcome: Option<&'static str>,
    /// [`status_message`] in the page's language.
    pub message: String,
    pub receipt: Option<&'a str>,
    /// Where the customer goes next (success or cancel URL), only when it is http(s).
    pub redirect_url: Option<&'a str>,
}

impl<'a> StatusAnswer<'a> {
    pub fn new(lang: Lang, state: &PageState<'a>) -> StatusAnswer<'a> {
        let (outcome, receipt, redirect) = match *state {
            PageState::EnterPhone { after_failure, .. } => (after_failure.map(|o| o.code()), None, None),
            PageState::Waiting { .. } => (None, None, None),
            PageState::Paid { receipt, success_url } => (None, receipt, Some(success_url)),
            PageState::Closed { cancel_url, .. } => (None, None, Some(cancel_url)),
        };
        StatusAnswer {
            state: state.code(),
            outcome,
            message: status_message(lang, state),
            receipt,
            redirect_url: redirect.filter(|url| safe_href(url) == *url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::checkout::model::{ClosedReason, Outcome};

    #[test]
    fn the_shape_pay_js_reads() {
        let waiting = PageState::Waiting {
            phone_masked: "0712 *** 678",
            deadline: chrono::Utc::now(),
            amount_shillings: 1250,
            merchant_name: "SHOP",
        };
        assert_eq!(
            serde_json::to_value(StatusAnswer::new(Lang::En, &waiting)).unwrap(),
            serde_json::json!({
                "state": "waiting",
                "outcome": null,
                "message": "Check your phone: enter your M-Pesa PIN to pay KES 1,250 to SHOP.",
                "receipt": null,
                "redirect_url": null,
            })
        );
        let paid = PageState::Paid {
            receipt: Some("SFK8Z3X4Q1"),
            success_url: "https://shop.example/thanks",
        };
        let answer = StatusAnswer::new(Lang::Sw, &paid);
        assert_eq!(answer.state, "paid");
        assert_eq!(answer.receipt, Some("SFK8Z3X4Q1"));
        assert_eq!(answer.redirect_url, Some("https://shop.example/thanks"));
        assert!(answer.message.contains("SFK8Z3X4Q1"));
        let retry = PageState::EnterPhone {
            typed: None,
            problem: None,
            suggested_masked: None,
            after_failure: Some(Outcome::WrongPin),
            attempts_left: 2,
        };
        assert_eq!(StatusAnswer::new(Lang::En, &retry).outcome, Some("wrong_pin"));
    }

    #[test]
    fn a_url_that_is_not_http_is_never_handed_to_the_script() {
        let closed = PageState::Closed {
            reason: ClosedReason::Expired,
            cancel_url: "javascript:alert(1)",
        };
        assert_eq!(StatusAnswer::new(Lang::En, &closed).redirect_url, None);
    }
}
