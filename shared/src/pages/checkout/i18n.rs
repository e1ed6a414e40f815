//! Every word the page says, in English and Kiswahili, and how the customer's language is chosen.
//!
//! Fixed words live in one [`Words`] table per language, so a word added to one language cannot
//! be forgotten in the other (the struct would not build). Sentences that carry a value are
//! functions matching on the language.

use super::model::{ClosedReason, Outcome, PageState};
use super::phone::PhoneProblem;

/// Stored (the live channel's connections) by its code: `"en"`, `"sw"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Lang {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "sw")]
    Sw,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Sw];

    /// The `lang` attribute and the `?lang=` value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Sw => "sw",
        }
    }

    /// `?lang=en` / `?lang=sw`, any case.
    pub fn from_query(value: &str) -> Option<Lang> {
        let value = value.trim();
        Lang::ALL
            .into_iter()
            .find(|lang| value.eq_ignore_ascii_case(lang.code()))
    }

    /// The supported language the browser prefers most (`q` values honoured, ties to the earlier
    /// entry; `sw`, `sw-KE`, `sw-TZ` are Kiswahili); English when it names neither or the header
    /// is missing or malformed.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best: Option<(Lang, u16)> = None;
        for entry in header.unwrap_or_default().split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let Some(weight) = weight(parts) else { continue };
            let primary = tag.split(['-', '_']).next().unwrap_or_default();
            let Some(lang) = Lang::ALL.into_iter().find(|l| primary.eq_ignore_ascii_case(l.code())) else {
                continue;
            };
            if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
                best = Some((lang, weight));
            }
        }
        best.map(|(lang, _)| lang).unwrap_or_default()
    }

    pub fn words(self) -> &'static Words {
        match self {
            Lang::En => &EN,
            Lang::Sw => &SW,
        }
    }
}

/// An entry's `q` in thousandths (RFC 9110 `qvalue`); `None` for a malformed one, which
/// disqualifies the entry rather than guessing.
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut weight = 1000;
    for param in params {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            weight = qvalue(value.trim())?;
        }
    }
    Some(weight)
}

fn qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    let value = whole + thousandths;
    (value <= 1000).then_some(value)
}

/// The fixed words of one language.
#[derive(Debug)]
pub struct Words {
    pub pay_with_mpesa: &'static str,
    pub language: &'static str,
    pub reference: &'static str,
    pub phone_label: &'static str,
    pub phone_hint: &'static str,
    pub cancel: &'static str,
    pub time_left: &'static str,
    pub waiting_for_mpesa: &'static str,
    pub one_prompt_at_a_time: &'static str,
    pub refreshes_itself: &'static str,
    pub enter_phone_status: &'static str,
    pub paid_status: &'static str,
    pub nothing_received: &'static str,
}

const EN: Words = Words {
    pay_with_mpesa: "Pay with M-Pesa",
    language: "Language",
    reference: "Reference",
    phone_label: "M-Pesa phone number",
    phone_hint: "We will send the payment prompt to this phone, e.g. 0712 345 678.",
    cancel: "Cancel payment",
    time_left: "Time left",
    waiting_for_mpesa: "Waiting for M-Pesa…",
    one_prompt_at_a_time: "You can use another number once this prompt has ended.",
    refreshes_itself: "This page refreshes itself every few seconds.",
    enter_phone_status: "Enter your M-Pesa phone number to pay.",
    paid_status: "Payment received. Thank you!",
    nothing_received: "No payment was received.",
};

const SW: Words = Words {
    pay_with_mpesa: "Lipa kwa M-Pesa",
    language: "Lugha",
    reference: "Kumbukumbu",
    phone_label: "Nambari ya simu ya M-Pesa",
    phone_hint: "Tutatuma ombi la malipo kwa simu hii, mfano 0712 345 678.",
    cancel: "Ghairi malipo",
    time_left: "Muda uliobaki",
    waiting_for_mpesa: "Tunasubiri M-Pesa…",
    one_prompt_at_a_time: "Utaweza kutumia nambari nyingine ombi hili likiisha.",
    refreshes_itself: "Ukurasa huu hujisasisha kila baada ya sekunde chache.",
    enter_phone_status: "Weka nambari yako ya simu ya M-Pesa ili kulipa.",
    paid_status: "Malipo yamepokelewa. Asante!",
    nothing_received: "Hakuna malipo yaliyopokelewa.",
};

/// The one sentence the page's `role="status"` region holds, and the status JSON's `message`.
/// A phone number refused by the server is not in it: that message sits by the input.
pub fn status_message(lang: Lang, state: &PageState<'_>) -> String {
    let words = lang.words();
    match *state {
        PageState::EnterPhone {
            after_failure: Some(outcome),
            ..
        } => format!(
            "{} {}",
            outcome_message(lang, outcome),
            outcome_next_step(lang, outcome)
        ),
        PageState::EnterPhone { .. } => words.enter_phone_status.to_owned(),
        PageState::Waiting {
            amount_shillings,
            merchant_name,
            ..
        } => waiting_status(lang, amount_shillings, merchant_name),
        PageState::Paid {
            receipt: Some(receipt), ..
        } => match lang {
            Lang::En => format!("Payment received. M-Pesa receipt: {receipt}."),
            Lang::Sw => format!("Malipo yamepokelewa. Risiti ya M-Pesa: {receipt}."),
        },
        PageState::Paid { receipt: None, .. } => words.paid_status.to_owned(),
        PageState::Closed { reason, .. } => format!("{} {}", closed_message(lang, reason), words.nothing_received),
    }
}

/// "Check your phone: enter your M-Pesa PIN to pay KES 1,250 to SHOP."
pub fn waiting_status(lang: Lang, amount_shillings: u64, merchant: &str) -> String {
    let amount = super::money::format_kes(amount_shillings);
    match lang {
        Lang::En => format!("Check your phone: enter your M-Pesa PIN to pay {amount} to {merchant}."),
        Lang::Sw => format!("Angalia simu yako: weka PIN yako ya M-Pesa ili kulipa {amount} kwa {merchant}."),
    }
}

/// What happened, in the customer's terms.
pub fn outcome_message(lang: Lang, outcome: Outcome) -> &'static str {
    match (lang, outcome) {
        (Lang::En, Outcome::Cancelled) => "You cancelled the M-Pesa prompt.",
        (Lang::En, Outcome::WrongPin) => "The M-Pesa PIN was wrong.",
        (Lang::En, Outcome::InsufficientFunds) => "There is not enough money in this M-Pesa account.",
        (Lang::En, Outcome::Unreachable) => "We could not reach this phone.",
        (Lang::En, Outcome::TimedOut) => "The prompt was not answered in time.",
        (Lang::En, Outcome::Declined) => "M-Pesa could not complete the payment.",
        (Lang::Sw, Outcome::Cancelled) => "Ulighairi ombi la M-Pesa.",
        (Lang::Sw, Outcome::WrongPin) => "PIN ya M-Pesa uliyoweka si sahihi.",
        (Lang::Sw, Outcome::InsufficientFunds) => "Hakuna pesa za kutosha kwenye akaunti hii ya M-Pesa.",
        (Lang::Sw, Outcome::Unreachable) => "Hatukuweza kuifikia simu hii.",
        (Lang::Sw, Outcome::TimedOut) => "Ombi halikujibiwa kwa wakati.",
        (Lang::Sw, Outcome::Declined) => "M-Pesa haikuweza kukamilisha malipo.",
    }
}

/// What to do about it.
pub fn outcome_next_step(lang: Lang, outcome: Outcome) -> &'static str {
    match (lang, outcome) {
        (Lang::En, Outcome::Cancelled) => "Try again, or use another number.",
        (Lang::En, Outcome::WrongPin) => "Try again and enter your M-Pesa PIN carefully.",
        (Lang::En, Outcome::InsufficientFunds) => "Top up, or pay with another number.",
        (Lang::En, Outcome::Unreachable) => "Check it is on and has signal, then try again.",
        (Lang::En, Outcome::TimedOut) => "Try again, and answer the prompt as soon as it appears.",
        (Lang::En, Outcome::Declined) => "Try again in a few minutes, or use another number.",
        (Lang::Sw, Outcome::Cancelled) => "Jaribu tena, au tumia nambari nyingine.",
        (Lang::Sw, Outcome::WrongPin) => "Jaribu tena na uweke PIN yako ya M-Pesa kwa uangalifu.",
        (Lang::Sw, Outcome::InsufficientFunds) => "Ongeza pesa kwenye M-Pesa, au lipa kwa nambari nyingine.",
        (Lang::Sw, Outcome::Unreachable) => "Hakikisha imewashwa na ina mtandao, kisha ujaribu tena.",
        (Lang::Sw, Outcome::TimedOut) => "Jaribu tena, na ujibu ombi mara tu linapotokea.",
        (Lang::Sw, Outcome::Declined) => "Jaribu tena baada ya dakika chache, au tumia nambari nyingine.",
    }
}

/// Why the session ended; followed on the page by [`Words::nothing_received`].
pub fn closed_message(lang: Lang, reason: ClosedReason) -> &'static str {
    match (lang, reason) {
        (Lang::En, ClosedReason::Expired) => "This payment link has expired.",
        (Lang::En, ClosedReason::NoAttemptsLeft) => "All the attempts allowed for this payment have been used.",
        (Lang::En, ClosedReason::CancelledByShop) => "The shop cancelled this payment.",
        (Lang::En, ClosedReason::CancelledByCustomer) => "You cancelled this payment.",
        (Lang::Sw, ClosedReason::Expired) => "Muda wa kiungo hiki cha malipo umekwisha.",
        (Lang::Sw, ClosedReason::NoAttemptsLeft) => "Majaribio yote yanayoruhusiwa kwa malipo haya yametumika.",
        (Lang::Sw, ClosedReason::CancelledByShop) => "Muuzaji ameghairi malipo haya.",
        (Lang::Sw, ClosedReason::CancelledByCustomer) => "Umeghairi malipo haya.",
    }
}

/// Each names the fix and shows a number that works. `pay.js` carries the same table (a test
/// there keeps them equal), so no message may contain a double quote.
pub fn phone_problem_message(lang: Lang, problem: PhoneProblem) -> &'static str {
    match (lang, problem) {
        (Lang::En, PhoneProblem::Empty) => "Enter your M-Pesa phone number, e.g. 0712 345 678.",
        (Lang::En, PhoneProblem::NotDigits) => {
            "Use digits only; you may put a space or dash between them, e.g. 0712 345 678."
        }
        (Lang::En, PhoneProblem::TooShort) => "This number has too few digits, e.g. 0712 345 678.",
        (Lang::En, PhoneProblem::TooLong) => "This number has too many digits, e.g. 0712 345 678.",
        (Lang::En, PhoneProblem::NotKenyan) => "Use a Kenyan number: start with 07, 01 or +254, e.g. 0712 345 678.",
        (Lang::En, PhoneProblem::NotMobile) => "Use a mobile number: it starts with 07 or 01, e.g. 0712 345 678.",
        (Lang::Sw, PhoneProblem::Empty) => "Weka nambari yako ya simu ya M-Pesa, mfano 0712 345 678.",
        (Lang::Sw, PhoneProblem::NotDigits) => {
            "Tumia tarakimu tu; unaweza kuweka nafasi au kistari kati yake, mfano 0712 345 678."
        }
        (Lang::Sw, PhoneProblem::TooShort) => "Nambari hii ina tarakimu chache mno, mfano 0712 345 678.",
        (Lang::Sw, PhoneProblem::TooLong) => "Nambari hii ina tarakimu nyingi mno, mfano 0712 345 678.",
        (Lang::Sw, PhoneProblem::NotKenyan) => "Tumia nambari ya Kenya: anza na 07, 01 au +254, mfano 0712 345 678.",
        (Lang::Sw, PhoneProblem::NotMobile) => {
            "Tumia nambari ya simu ya mkononi: inaanza na 07 au 01, mfano 0712 345 678."
        }
    }
}

pub fn pay_button(lang: Lang, amount: &str) -> String {
    match lang {
        Lang::En => format!("Pay {amount}"),
        Lang::Sw => format!("Lipa {amount}"),
    }
}

pub fn suggested_phone(lang: Lang, merchant: &str, masked: &str) -> String {
    match lang {
        Lang::En => format!("{merchant} suggested {masked}."),
        Lang::Sw => format!("{merchant} amependekeza {masked}."),
    }
}

/// Shown only when few are left: a customer with five chances needs no count.
pub fn attempts_left(lang: Lang, left: u32) -> String {
    match (lang, left) {
        (Lang::En, 1) => "1 attempt left.".to_owned(),
        (Lang::En, n) => format!("{n} attempts left."),
        (Lang::Sw, 1) => "Jaribio 1 limebaki.".to_owned(),
        (Lang::Sw, n) => format!("Majaribio {n} yamebaki."),
    }
}

pub fn pay_before(lang: Lang, time: &str) -> String {
    match lang {
        Lang::En => format!("Pay before {time}."),
        Lang::Sw => format!("Lipa kabla ya {time}."),
    }
}

pub fn prompt_sent_to(lang: Lang, phone_masked: &str) -> String {
    match lang {
        Lang::En => format!("The prompt went to {phone_masked}."),
        Lang::Sw => format!("Ombi limetumwa kwa {phone_masked}."),
    }
}

pub fn wait_until(lang: Lang, time: &str) -> String {
    match lang {
        Lang::En => format!("We will wait until {time}."),
        Lang::Sw => format!("Tutasubiri hadi {time}."),
    }
}

pub fn back_to(lang: Lang, merchant: &str) -> String {
    match lang {
        Lang::En => format!("Back to {merchant}"),
        Lang::Sw => format!("Rudi kwa {merchant}"),
    }
}

pub fn taking_you_back(lang: Lang, merchant: &str) -> String {
    match lang {
        Lang::En => format!("Taking you back to {merchant}…"),
        Lang::Sw => format!("Tunakurudisha kwa {merchant}…"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        let cases: &[(Option<&str>, Lang)] = &[
            (Some("sw-KE,sw;q=0.9,en;q=0.8"), Lang::Sw),
            (Some("en-GB,sw;q=0.5"), Lang::En),
            (Some("fr-FR, sw;q=0.7, en;q=0.3"), Lang::Sw),
            (Some("en;q=0.4, sw-TZ;q=0.6"), Lang::Sw),
            (Some("SW"), Lang::Sw),
            (Some("sw_KE"), Lang::Sw),
            (Some("sw;q=0, en;q=0.1"), Lang::En),
            (Some("sw;q=0"), Lang::En),
            (Some("en, sw"), Lang::En),
            (Some("sw , en"), Lang::Sw),
            (Some("sw;, en;q=0.9"), Lang::Sw),
            (Some("sw;q=1.0, en;q=1"), Lang::Sw),
            (Some("*, sw;q=0.5"), Lang::Sw),
            (Some("fr"), Lang::En),
            (Some(""), Lang::En),
            (None, Lang::En),
            (Some("garbage;;;=,,,"), Lang::En),
            (Some("\u{0}\u{ffff}"), Lang::En),
            // Malformed q values disqualify their entry instead of counting as 1.
            (Some("sw;q=high, en;q=0.1"), Lang::En),
            (Some("sw;q=1.5, en;q=0.1"), Lang::En),
            (Some("sw;q=0.1234, en;q=0.1"), Lang::En),
            (Some("sw;q=NaN, en;q=0.1"), Lang::En),
            (Some("swahili"), Lang::En),
        ];
        for (header, expected) in cases {
            assert_eq!(Lang::from_accept_language(*header), *expected, "{header:?}");
        }
    }

    #[test]
    fn query_values() {
        assert_eq!(Lang::from_query("sw"), Some(Lang::Sw));
        assert_eq!(Lang::from_query("EN"), Some(Lang::En));
        assert_eq!(Lang::from_query("fr"), None);
        assert_eq!(Lang::from_query(""), None);
        for lang in Lang::ALL {
            assert_eq!(Lang::from_query(lang.code()), Some(lang));
        }
    }

    #[test]
    fn qvalues() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.05"), Some(50));
        assert_eq!(qvalue("0."), Some(0));
        assert_eq!(qvalue("1.001"), None);
        assert_eq!(qvalue("2"), None);
        assert_eq!(qvalue("-0.5"), None);
        assert_eq!(qvalue(""), None);
    }

    #[test]
    fn every_message_is_a_sentence_and_differs_between_languages() {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for outcome in Outcome::ALL {
            pairs.push((outcome_message(Lang::En, outcome), outcome_message(Lang::Sw, outcome)));
            pairs.push((
                outcome_next_step(Lang::En, outcome),
                outcome_next_step(Lang::Sw, outcome),
            ));
        }
        for reason in ClosedReason::ALL {
            pairs.push((closed_message(Lang::En, reason), closed_message(Lang::Sw, reason)));
        }
        for problem in PhoneProblem::ALL {
            let (en, sw) = (
                phone_problem_message(Lang::En, problem),
                phone_problem_message(Lang::Sw, problem),
            );
            assert!(
                en.contains("e.g. 0712 345 678") && sw.contains("mfano 0712 345 678"),
                "{en} / {sw}"
            );
            assert!(!en.contains('"') && !sw.contains('"') && !en.contains('\\') && !sw.contains('\\'));
            pairs.push((en, sw));
        }
        for (en, sw) in pairs {
            assert_ne!(en, sw);
            for text in [en, sw] {
                assert!(text.ends_with('.'), "{text}");
                assert!(text.starts_with(|c: char| c.is_uppercase()), "{text}");
            }
        }
    }
}
