//! C2B URL registration, and the rules Safaricom applies to the URLs.

use serde_json::{json, Value};

use super::errors::ParseError;
use super::json;
use super::ApiCredentials;
use crate::domain::ResultCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum C2bApiVersion {
    V1,
    V2,
}

impl C2bApiVersion {
    pub fn register_path(self) -> &'static str {
        match self {
            C2bApiVersion::V1 => "/mpesa/c2b/v1/registerurl",
            C2bApiVersion::V2 => "/mpesa/c2b/v2/registerurl",
        }
    }
}

/// What M-Pesa does when the validation URL does not answer in time (about 8 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum C2bResponseType {
    Completed,
    Cancelled,
}

impl C2bResponseType {
    /// Exactly so spelled and capitalised.
    pub fn as_str(self) -> &'static str {
        match self {
            C2bResponseType::Completed => "Completed",
            C2bResponseType::Cancelled => "Cancelled",
        }
    }
}

#[derive(Clone, Copy)]
pub struct C2bRegisterRequest<'a> {
    pub credentials: &'a ApiCredentials,
    pub version: C2bApiVersion,
    pub short_code: &'a str,
    pub response_type: C2bResponseType,
    pub confirmation_url: &'a str,
    pub validation_url: &'a str,
}

impl C2bRegisterRequest<'_> {
    pub fn to_body(&self) -> Value {
        json!({
            "ShortCode": self.short_code,
            "ResponseType": self.response_type.as_str(),
            "ConfirmationURL": self.confirmation_url,
            "ValidationURL": self.validation_url,
        })
    }
}

/// A successful registration, in whichever shape it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2bRegistered {
    /// Daraja spells it `OriginatorCoversationID`; both spellings are read.
    pub originator_conversation_id: Option<String>,
    pub response_code: Option<String>,
    pub response_description: Option<String>,
}

/// The registration answer as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2bRegisterResponse {
    pub originator_conversation_id: Option<String>,
    pub response_code: Option<String>,
    pub response_description: Option<String>,
}

impl C2bRegisterResponse {
    /// Success shapes: `"ResponseCode": "0"`, `"00000000"`, or no code and only
    /// `"ResponseDescription": "Success"` (any case).
    pub fn is_success(&self) -> bool {
        match &self.response_code {
            Some(code) => ResultCode::new(code.as_str()).is_success(),
            None => self
                .response_description
                .as_deref()
                .is_some_and(|d| d.trim().to_ascii_lowercase().starts_with("success")),
        }
    }
}

pub fn parse_c2b_register_response(body: &[u8]) -> Result<C2bRegisterResponse, ParseError> {
    let root = json::root(body)?;
    let parsed = C2bRegisterResponse {
        originator_conversation_id: root.text_any(&["OriginatorCoversationID", "OriginatorConversationID"])?,
        response_code: root.text("ResponseCode")?,
        response_description: root.text("ResponseDescription")?,
    };
    if parsed.response_code.is_none() && parsed.response_description.is_none() {
        return Err(ParseError::Missing { field: "ResponseCode" });
    }
    Ok(parsed)
}

/// Why Safaricom would refuse a C2B URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum C2bUrlError {
    #[error("not an absolute http(s) URL")]
    Malformed,
    #[error("must use HTTPS")]
    NotHttps,
    #[error("contains the forbidden word {word:?} (Safaricom refuses it in any case, anywhere in the URL)")]
    ForbiddenWord { word: &'static str },
    #[error("{host_kind} hosts are refused by Safaricom")]
    ForbiddenHost { host_kind: &'static str },
}

/// Words Safaricom refuses anywhere in a C2B URL, in any case.
pub const FORBIDDEN_URL_WORDS: &[&str] = &["m-pesa", "mpesa", "safaricom", "exec", "exe", "cmd", "sql", "query"];

/// Tunnelling and request-bin services (matched against the host and its parent domains).
pub const FORBIDDEN_HOSTS: &[(&str, &str)] = &[
    ("ngrok", "ngrok"),
    ("localtunnel", "localtunnel"),
    ("loca.lt", "localtunnel"),
    ("requestbin", "requestbin"),
    ("webhook.site", "webhook.site"),
    ("pipedream", "pipedream"),
    ("mockbin", "mockbin"),
    ("beeceptor", "beeceptor"),
    ("hookbin", "hookbin"),
    ("requestcatcher", "requestcatcher"),
    ("postb.in", "postbin"),
    ("ptsv2", "ptsv2"),
    ("ptsv3", "ptsv3"),
    ("smee.io", "smee"),
    ("serveo", "serveo"),
    ("localhost.run", "localhost.run"),
    ("lhr.life", "localhost.run"),
    ("trycloudflare.com", "cloudflare tunnel"),
    ("telebit", "telebit"),
    ("pagekite", "pagekite"),
    ("localxpose", "localxpose"),
    ("loclx.io", "localxpose"),
    ("tunnelmole", "tunnelmole"),
    ("tunnelto.dev", "tunnelto"),
    ("expose.dev", "expose"),
    ("sharedwithexpose.com", "expose"),
];

/// Checks a confirmation or validation URL against Safaricom's rules before registering it.
/// `require_https` is for production (the sandbox and the simulator accept plain HTTP).
pub fn check_c2b_url(url: &str, require_https: bool) -> Result<(), C2bUrlError> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| C2bUrlError::Malformed)?;
    match parsed.scheme() {
        "https" => {}
        "http" if require_https => return Err(C2bUrlError::NotHttps),
        "http" => {}
        _ => return Err(C2bUrlError::Malformed),
    }
    let host = parsed.host_str().ok_or(C2bUrlError::Malformed)?.to_ascii_lowercase();
    // Check both the text as given and as normalised (percent-decoding could hide a word).
    let given = url.to_ascii_lowercase();
    let normalised = parsed.as_str().to_ascii_lowercase();
    let decoded = percent_decode_lossy(&normalised);
    for word in FORBIDDEN_URL_WORDS {
        if given.contains(word) || normalised.contains(word) || decoded.contains(word) {
            return Err(C2bUrlError::ForbiddenWord { word });
        }
    }
    for (needle, kind) in FORBIDDEN_HOSTS {
        if host.contains(needle) {
            return Err(C2bUrlError::ForbiddenHost { host_kind: kind });
        }
    }
    Ok(())
}

fn percent_decode_lossy(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    #[test]
    fn accepts_ordinary_callback_urls() {
        assert_eq!(
            check_c2b_url("https://api.example.com/c2b/confirm/Zx81kLq", true),
            Ok(())
        );
        assert_eq!(check_c2b_url("http://127.0.0.1:9000/c2b/validate/abc", false), Ok(()));
    }

    #[test]
    fn refuses_forbidden_words_in_any_case_anywhere() {
        let cases = [
            ("https://api.example.com/mpesa/confirm", "mpesa"),
            ("https://api.example.com/M-PESA/confirm", "m-pesa"),
            ("https://SafariCom.example.com/confirm", "safaricom"),
            ("https://api.example.com/run.exe", "exe"),
            ("https://api.example.com/execute", "exec"),
            ("https://api.example.com/c2b?x=CMD", "cmd"),
            ("https://mysql.example.com/confirm", "sql"),
            ("https://api.example.com/confirm?Query=1", "query"),
            ("https://api.example.com/m%70esa", "mpesa"),
        ];
        for (url, word) in cases {
            assert_eq!(
                check_c2b_url(url, true),
                Err(C2bUrlError::ForbiddenWord { word }),
                "{url}"
            );
        }
    }

    #[test]
    fn refuses_tunnels_bins_plain_http_and_garbage() {
        for url in [
            "https://abc123.ngrok-free.app/c2b",
            "https://abc.ngrok.io/c2b",
            "https://funny-cat.loca.lt/c2b",
            "https://webhook.site/1234",
            "https://eo1234.m.pipedream.net",
            "https://x.requestbin.net/r",
            "https://mockbin.org/bin/1",
            "https://me.free.beeceptor.com/c2b",
            "https://a-b.trycloudflare.com/c2b",
        ] {
            assert!(
                matches!(check_c2b_url(url, false), Err(C2bUrlError::ForbiddenHost { .. })),
                "{url}"
            );
        }
        assert_eq!(
            check_c2b_url("http://api.example.com/c2b", true),
            Err(C2bUrlError::NotHttps)
        );
        assert_eq!(
            check_c2b_url("ftp://api.example.com/c2b", false),
            Err(C2bUrlError::Malformed)
        );
        assert_eq!(check_c2b_url("not a url", false), Err(C2bUrlError::Malformed));
        assert_eq!(check_c2b_url("", false), Err(C2bUrlError::Malformed));
    }

    #[test]
    fn every_success_shape_is_success() {
        for body in [
            &br#"{"OriginatorCoversationID":"6e86-45dd-91ac-fd5d4178ab523559","ResponseCode":"0","ResponseDescription":"success"}"#[..],
            br#"{"ResponseCode":"00000000","ResponseDescription":"Success"}"#,
            br#"{"ResponseDescription":"Success"}"#,
            br#"{"ResponseCode":0}"#,
        ] {
            let r = parse_c2b_register_response(body).unwrap();
            assert!(r.is_success(), "{}", String::from_utf8_lossy(body));
        }
        let r = parse_c2b_register_response(
            br#"{"OriginatorCoversationID":"x","ResponseCode":"0","ResponseDescription":"success"}"#,
        )
        .unwrap();
        assert_eq!(r.originator_conversation_id.as_deref(), Some("x"));
        assert!(
            !parse_c2b_register_response(br#"{"ResponseCode":"1","ResponseDescription":"Success?"}"#)
                .unwrap()
                .is_success()
        );
        assert!(!parse_c2b_register_response(br#"{"ResponseDescription":"Failed"}"#)
            .unwrap()
            .is_success());
        assert!(parse_c2b_register_response(br#"{"errorCode":"500.003.1001"}"#).is_err());
    }

    #[test]
    fn body_spells_response_type_exactly() {
        let credentials = ApiCredentials {
            consumer_key: Secret::new("k"),
            consumer_secret: Secret::new("s"),
        };
        let request = C2bRegisterRequest {
            credentials: &credentials,
            version: C2bApiVersion::V2,
            short_code: "600984",
            response_type: C2bResponseType::Completed,
            confirmation_url: "https://api.example.com/c2b/confirm/t",
            validation_url: "https://api.example.com/c2b/validate/t",
        };
        let body = request.to_body();
        assert_eq!(body["ResponseType"], "Completed");
        assert_eq!(body["ShortCode"], "600984");
        assert_eq!(C2bResponseType::Cancelled.as_str(), "Cancelled");
        assert_eq!(C2bApiVersion::V1.register_path(), "/mpesa/c2b/v1/registerurl");
    }
}
