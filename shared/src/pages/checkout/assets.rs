//! The page's script and stylesheet, built into the binary and named by their content, so the
//! caller can serve them with a year-long immutable cache: a changed file is a new path.

use std::sync::LazyLock;

use base64::Engine;
use sha2::{Digest, Sha256};

const PAY_JS: &str = include_str!("assets/pay.js");
const PAY_CSS: &str = include_str!("assets/pay.css");

/// Hex digits of the content hash in a path: enough to tell versions apart, not to secure
/// anything (the `integrity` attribute does that).
const HASH_CHARS: usize = 8;

#[derive(Debug)]
pub struct Asset {
    /// e.g. `/pay/assets/pay-3f2a9c1d.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
    /// Subresource integrity of `body` (`sha256-...`), which the page's tags carry.
    pub integrity: &'static str,
}

// Built once per process; the leaked strings are two short names that live as long as the
// process anyway, which keeps `Asset` plain `&'static str` for the caller.
static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        Asset::named_by_content("pay", "js", "text/javascript; charset=utf-8", PAY_JS),
        Asset::named_by_content("pay", "css", "text/css; charset=utf-8", PAY_CSS),
    ]
});

impl Asset {
    fn named_by_content(stem: &str, extension: &str, content_type: &'static str, body: &'static str) -> Asset {
        let digest = Sha256::digest(body.as_bytes());
        let hash = &hex::encode(digest)[..HASH_CHARS];
        let integrity = format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest));
        Asset {
            path: Box::leak(format!("/pay/assets/{stem}-{hash}.{extension}").into_boxed_str()),
            content_type,
            body,
            integrity: Box::leak(integrity.into_boxed_str()),
        }
    }
}

pub fn assets() -> &'static [Asset] {
    &*ASSETS
}

/// The asset served at `path`, if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    assets().iter().find(|asset| asset.path == path)
}

pub(crate) fn script() -> &'static Asset {
    &ASSETS[0]
}

pub(crate) fn stylesheet() -> &'static Asset {
    &ASSETS[1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::checkout::i18n::{phone_problem_message, Lang};
    use crate::pages::checkout::phone::PhoneProblem;

    #[test]
    fn paths_are_named_by_content_and_found_again() {
        let js = script();
        let css = stylesheet();
        assert!(
            js.path.starts_with("/pay/assets/pay-") && js.path.ends_with(".js"),
            "{}",
            js.path
        );
        assert!(
            css.path.starts_with("/pay/assets/pay-") && css.path.ends_with(".css"),
            "{}",
            css.path
        );
        let hash = &js.path["/pay/assets/pay-".len()..js.path.len() - ".js".len()];
        assert_eq!(hash.len(), HASH_CHARS);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(asset(js.path).unwrap().body, PAY_JS);
        assert_eq!(asset(css.path).unwrap().content_type, "text/css; charset=utf-8");
        assert!(asset("/pay/assets/pay.js").is_none());
        assert!(js.integrity.starts_with("sha256-") && js.integrity.len() == "sha256-".len() + 44);
    }

    /// The browser's check and the server's must say the same words.
    #[test]
    fn pay_js_carries_the_phone_messages_of_i18n() {
        let table_of = |lang: Lang| {
            let start = PAY_JS
                .find(&format!("    {}: {{\n", lang.code()))
                .expect("a table per language");
            let end = start + PAY_JS[start..].find("    },\n").expect("the table's end");
            &PAY_JS[start..end]
        };
        for lang in Lang::ALL {
            let table = table_of(lang);
            assert_eq!(table.lines().count(), 1 + PhoneProblem::ALL.len());
            for problem in PhoneProblem::ALL {
                let line = format!(
                    "      {}: \"{}\",",
                    problem.code(),
                    phone_problem_message(lang, problem)
                );
                assert!(table.contains(&line), "pay.js lacks {line}");
            }
        }
    }

    /// `pay.js` trims what Rust's `str::trim` trims (Unicode White_Space), not what JavaScript's
    /// `String#trim` does, so both sides see the same number.
    #[test]
    fn pay_js_trims_what_rust_trims() {
        let start = PAY_JS.find("const EDGE_SPACE = /^[").unwrap() + "const EDGE_SPACE = /^[".len();
        let class = &PAY_JS[start..start + PAY_JS[start..].find(']').unwrap()];
        let mut listed = std::collections::BTreeSet::new();
        let mut chars = class.chars().peekable();
        let mut previous: Option<char> = None;
        while let Some(c) = chars.next() {
            let one = if c == '\\' {
                match chars.next().unwrap() {
                    't' => '\t',
                    'r' => '\r',
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap()
                    }
                    other => panic!("unexpected escape \\{other}"),
                }
            } else if c == '-' && previous.is_some() {
                let low = previous.take().unwrap();
                let high = match chars.next().unwrap() {
                    '\\' => match chars.next().unwrap() {
                        'r' => '\r',
                        'u' => {
                            let hex: String = chars.by_ref().take(4).collect();
                            char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap()
                        }
                        other => panic!("unexpected escape \\{other}"),
                    },
                    high => high,
                };
                listed.extend(low..=high);
                continue;
            } else {
                c
            };
            listed.insert(one);
            previous = Some(one);
        }
        let rust: std::collections::BTreeSet<char> = (char::MIN..=char::MAX).filter(|c| c.is_whitespace()).collect();
        assert_eq!(listed, rust);
        assert!(
            PAY_JS.contains(&format!("]+|[{class}]+$/g;")),
            "both ends trim the same set"
        );
    }

    /// WCAG AA: 4.5:1 for text, 3:1 for borders and the focus ring.
    #[test]
    fn pay_css_colours_are_readable() {
        let colour = |name: &str| -> [f64; 3] {
            let start = PAY_CSS
                .find(&format!("--{name}: #"))
                .unwrap_or_else(|| panic!("--{name}"));
            let hex = &PAY_CSS[start + name.len() + 5..start + name.len() + 11];
            let channel = |i: usize| f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            [channel(0), channel(2), channel(4)]
        };
        let luminance = |[r, g, b]: [f64; 3]| {
            let linear = |c: f64| {
                if c <= 0.04045 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
        };
        let ratio = |a: &str, b: &str| {
            let (x, y) = (luminance(colour(a)), luminance(colour(b)));
            (x.max(y) + 0.05) / (x.min(y) + 0.05)
        };
        let text = [
            ("ink", "card"),
            ("ink", "page"),
            ("muted", "card"),
            ("link", "card"),
            ("link", "page"),
            ("error", "card"),
            ("on-brand", "brand"),
            ("on-brand", "brand-dark"),
            ("info-ink", "info-bg"),
            ("warn-ink", "warn-bg"),
            ("ok-ink", "ok-bg"),
            ("closed-ink", "closed-bg"),
        ];
        for (fg, bg) in text {
            assert!(ratio(fg, bg) >= 4.5, "{fg} on {bg}: {:.2}", ratio(fg, bg));
        }
        for (fg, bg) in [
            ("line", "card"),
            ("focus", "card"),
            ("focus", "page"),
            ("error", "card"),
        ] {
            assert!(ratio(fg, bg) >= 3.0, "{fg} on {bg}: {:.2}", ratio(fg, bg));
        }
    }

    #[test]
    fn the_assets_declare_no_foreign_sources() {
        assert!(!PAY_CSS.contains("url(") && !PAY_CSS.contains("@import"));
        assert!(!PAY_JS.contains("eval(") && !PAY_JS.contains("innerHTML") && !PAY_JS.contains("new Function"));
        assert!(!PAY_JS.contains("postMessage(message, '*')") && !PAY_JS.contains("'*')"));
    }
}
