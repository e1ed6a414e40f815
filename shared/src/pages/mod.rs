//! Pages we render ourselves for customers' browsers (the hosted payment page), and the
//! security headers every such page is served with.
//!
//! The pages carry no inline script or style, so the policy below can forbid both outright:
//! an injected `<script>` or `style=` does nothing even if escaping ever failed.

pub mod checkout;

/// The page URL is the customer's only credential for a session: never send it to the shop or
/// to anyone else in a `Referer`.
pub const REFERRER_POLICY: &str = "no-referrer";

/// What the caller sends as `content-type` with [`checkout::render::render_page`]'s output.
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// Features the pages never use; denying them means an injected frame or script cannot ask for
/// them either.
const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=(), usb=()";

/// The `content-security-policy` of our pages. `frame_ancestors` are the origins allowed to show
/// the page in an iframe (the shop's modal); none means the page may not be framed at all.
///
/// `form-action 'self'`: the page's forms post only to us. Success and cancel URLs are reached
/// by links and script navigation, which `form-action` does not govern; but browsers apply it to
/// redirects that answer a form post, so a post must be answered from our own origin (see the
/// module docs of [`checkout`]).
///
/// Entries of `frame_ancestors` that are not plain origins (`https://shop.example`,
/// `https://*.shop.example:8443`, `'self'`) are left out, so a bad setting can never inject
/// another directive; if none is left the page cannot be framed.
///
/// `live_origin` (`wss://abc.execute-api.eu-west-1.amazonaws.com`) is the live channel's origin
/// when it is not the page's own: the page's script may connect there too, nowhere else.
pub fn content_security_policy(frame_ancestors: &[String], live_origin: Option<&str>) -> String {
    let ancestors: Vec<&str> = frame_ancestors
        .iter()
        .map(String::as_str)
        .filter(|origin| is_frame_ancestor_source(origin))
        .collect();
    let ancestors = if ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        ancestors.join(" ")
    };
    let connect = match live_origin.filter(|origin| is_live_origin(origin)) {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; \
         form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )
}

/// `wss://host[:port]` (or `ws://` on loopback), nothing more: a source that cannot widen the
/// policy (no wildcard, path, quote or separator).
fn is_live_origin(origin: &str) -> bool {
    let Some((scheme, host)) = origin.split_once("://") else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    let loopback = host.starts_with("127.0.0.1") || host.starts_with("localhost") || host.starts_with("[::1]");
    host_ok && (scheme == "wss" || (scheme == "ws" && loopback))
}

/// Headers for every page response (not the static assets, which need only `nosniff` and their
/// long cache headers).
///
/// `cross-origin-opener-policy: same-origin` is kept: browsers apply it only to top-level
/// documents, so inside the shop's iframe it is ignored and `window.parent.postMessage` still
/// works. It does cut `window.opener` for a page opened as a popup, a way of embedding we do not
/// offer (a popup shop should use the success and cancel URLs).
///
/// `x-frame-options: DENY` repeats `frame-ancestors 'none'` for browsers that predate CSP's
/// frame-ancestors; when origins are allowed it is left out (it cannot name several).
pub fn security_headers(frame_ancestors: &[String], live_origin: Option<&str>) -> Vec<(&'static str, String)> {
    let csp = content_security_policy(frame_ancestors, live_origin);
    let framable = !csp.ends_with("frame-ancestors 'none'");
    let mut headers = vec![
        ("content-security-policy", csp),
        ("referrer-policy", REFERRER_POLICY.to_owned()),
        ("x-content-type-options", "nosniff".to_owned()),
        ("cache-control", "no-store".to_owned()),
        ("cross-origin-opener-policy", "same-origin".to_owned()),
        ("permissions-policy", PERMISSIONS_POLICY.to_owned()),
    ];
    if !framable {
        headers.push(("x-frame-options", "DENY".to_owned()));
    }
    headers
}

/// `'self'`, or `http(s)://host[:port]` where the host may start with a `*.` wildcard: the only
/// source expressions a shop's origin needs, and none of them can end the directive.
fn is_frame_ancestor_source(source: &str) -> bool {
    if source == "'self'" {
        return true;
    }
    let Some(authority) = source
        .strip_prefix("https://")
        .or_else(|| source.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    let host_ok = !host.is_empty()
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_policy_forbids_everything_the_page_does_not_use() {
        let csp = content_security_policy(&[], None);
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.split("; ").any(|d| d == directive),
                "{directive} missing from {csp}"
            );
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(csp.split("; ").count(), 8, "{csp}");
    }

    #[test]
    fn frame_ancestors_lists_the_shops_origins() {
        let csp = content_security_policy(&origins(&["https://shop.example", "https://*.shop.example:8443"]), None);
        assert!(
            csp.ends_with("; frame-ancestors https://shop.example https://*.shop.example:8443"),
            "{csp}"
        );
        assert!(!csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn entries_that_are_not_origins_are_left_out() {
        let bad = origins(&[
            "https://shop.example; script-src *",
            "https://shop.example/path",
            "javascript:alert(1)",
            "*",
            "https://",
            "https://shop..example",
            "https://shop.example:80a",
            "https://shop.example\r\nx-evil: 1",
            "",
        ]);
        assert!(content_security_policy(&bad, None).ends_with("frame-ancestors 'none'"));
        let mixed = origins(&["https://ok.example", "https://bad.example;"]);
        assert!(content_security_policy(&mixed, None).ends_with("frame-ancestors https://ok.example"));
        assert!(content_security_policy(&origins(&["'self'"]), None).ends_with("frame-ancestors 'self'"));
    }

    #[test]
    fn the_live_channel_origin_is_the_one_other_place_the_page_may_connect() {
        let live = "wss://abc123.execute-api.eu-west-1.amazonaws.com";
        let csp = content_security_policy(&[], Some(live));
        assert!(
            csp.split("; ").any(|d| d == format!("connect-src 'self' {live}")),
            "{csp}"
        );
        assert!(content_security_policy(&[], Some("ws://127.0.0.1:3000"))
            .contains("connect-src 'self' ws://127.0.0.1:3000;"));
        for bad in [
            "ws://pay.example",
            "https://pay.example",
            "wss://*.example",
            "wss://pay.example/path",
            "wss://pay.example; script-src *",
            "wss://",
            "",
        ] {
            let csp = content_security_policy(&[], Some(bad));
            assert!(csp.split("; ").any(|d| d == "connect-src 'self'"), "{bad:?}: {csp}");
        }
    }

    #[test]
    fn headers_for_a_page_that_cannot_be_framed() {
        let headers = security_headers(&[], None);
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(
            get("content-security-policy"),
            Some(content_security_policy(&[], None).as_str())
        );
        assert_eq!(get("referrer-policy"), Some("no-referrer"));
        assert_eq!(get("x-content-type-options"), Some("nosniff"));
        assert_eq!(get("cache-control"), Some("no-store"));
        assert_eq!(get("cross-origin-opener-policy"), Some("same-origin"));
        assert!(get("permissions-policy").unwrap().contains("camera=()"));
        assert_eq!(get("x-frame-options"), Some("DENY"));
        for (name, value) in &headers {
            assert!(http::HeaderValue::from_str(value).is_ok(), "{name}");
            assert_eq!(*name, name.to_ascii_lowercase());
        }
    }

    #[test]
    fn headers_for_a_page_a_shop_may_frame() {
        let headers = security_headers(&origins(&["https://shop.example"]), None);
        assert!(headers.iter().all(|(name, _)| *name != "x-frame-options"));
        assert!(headers.iter().any(|(name, value)| *name == "content-security-policy"
            && value.ends_with("frame-ancestors https://shop.example")));
    }
}
