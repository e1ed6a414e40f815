//! Hosted checkout: the shop's name on the page, and the origins that may frame it.

use super::{ConfigError, Settings};
use crate::api::checkout::LiveChannel;
use crate::services::checkout::CheckoutConfig;

/// Environment variable names.
pub mod vars {
    /// The shop's name as customers know it: on the payment page and in "pay KES 1,250 to ...".
    /// 1-60 characters.
    pub const CHECKOUT_DISPLAY_NAME: &str = "CHECKOUT_DISPLAY_NAME";
    /// Origins allowed to show the page in an iframe (the embeddable modal), comma-separated:
    /// `https://shop.example,https://www.shop.example`. Unset: the page may not be framed.
    pub const CHECKOUT_ALLOWED_ORIGINS: &str = "CHECKOUT_ALLOWED_ORIGINS";
    /// The payment page's live channel, the WebSocket API stage's public URL:
    /// `wss://<api>.execute-api.<region>.amazonaws.com/<stage>`. Unset: the page polls.
    pub const CHECKOUT_LIVE_URL: &str = "CHECKOUT_LIVE_URL";
    /// The table of the live channel's open connections.
    pub const LIVE_CONNECTIONS_TABLE: &str = "LIVE_CONNECTIONS_TABLE";
    /// The WebSocket API stage's management endpoint, where pushes are posted:
    /// `https://<api>.execute-api.<region>.amazonaws.com/<stage>`.
    pub const LIVE_MANAGEMENT_URL: &str = "LIVE_MANAGEMENT_URL";
}

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (vars::CHECKOUT_DISPLAY_NAME, "Duka la Mama"),
    (vars::CHECKOUT_ALLOWED_ORIGINS, "https://shop.example"),
    (vars::CHECKOUT_LIVE_URL, "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod"),
    (vars::LIVE_CONNECTIONS_TABLE, "mpesa-checkout-live-connections"),
    (vars::LIVE_MANAGEMENT_URL, "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"),
];

const MAX_DISPLAY_NAME: usize = 60;

/// `https://host[:port]` (or `http://` on a loopback host): an origin, nothing more.
fn is_origin(text: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(text) else {
        return false;
    };
    let loopback = url.host_str().is_some_and(crate::domain::checkout_session::is_loopback_host);
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    scheme_ok && url.origin().ascii_serialization() == text.trim_end_matches('/')
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    pub fn checkout(&self) -> Result<CheckoutConfig, ConfigError> {
        let public_base_url = self.required(super::vars::PUBLIC_BASE_URL)?;
        let display_name = self.required(vars::CHECKOUT_DISPLAY_NAME)?.trim().to_owned();
        if display_name.is_empty() || display_name.chars().count() > MAX_DISPLAY_NAME {
            return Err(ConfigError::Invalid {
                name: vars::CHECKOUT_DISPLAY_NAME,
                reason: format!("must be 1-{MAX_DISPLAY_NAME} characters"),
            });
        }
        let mut allowed_origins = Vec::new();
        for origin in self
            .optional(vars::CHECKOUT_ALLOWED_ORIGINS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            if !is_origin(origin) {
                return Err(ConfigError::Invalid {
                    name: vars::CHECKOUT_ALLOWED_ORIGINS,
                    reason: format!("{origin:?} is not an origin such as https://shop.example"),
                });
            }
            allowed_origins.push(origin.trim_end_matches('/').to_owned());
        }
        Ok(CheckoutConfig {
            public_base_url,
            display_name,
            allowed_origins,
            ..CheckoutConfig::default()
        })
    }
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// The page's live channel, when one is deployed.
    pub fn checkout_live(&self) -> Result<Option<LiveChannel>, ConfigError> {
        let Some(url) = self.optional(vars::CHECKOUT_LIVE_URL) else {
            return Ok(None);
        };
        LiveChannel::parse(url.trim())
            .map(Some)
            .map_err(|reason| ConfigError::Invalid {
                name: vars::CHECKOUT_LIVE_URL,
                reason,
            })
    }

    /// Where pushes to the live channel's connections are posted.
    pub fn live_management_url(&self) -> Result<String, ConfigError> {
        let url = self.required(vars::LIVE_MANAGEMENT_URL)?;
        match reqwest::Url::parse(&url) {
            Ok(parsed) if parsed.scheme() == "https" || parsed.scheme() == "http" => Ok(url),
            _ => Err(ConfigError::Invalid {
                name: vars::LIVE_MANAGEMENT_URL,
                reason: "must be the stage's https:// management endpoint".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{for_function_from_map, vars};

    #[test]
    fn name_and_origins_are_checked() {
        let env = crate::config::examples::env("initiate", true);
        let config = for_function_from_map("initiate", env.clone()).unwrap().checkout().unwrap();
        assert_eq!(config.display_name, "Duka la Mama");
        assert_eq!(config.allowed_origins, vec!["https://shop.example".to_owned()]);
        for bad in ["shop.example", "https://shop.example/path", "http://shop.example", "javascript:x"] {
            let mut env = env.clone();
            env.insert(vars::CHECKOUT_ALLOWED_ORIGINS.into(), bad.into());
            let settings = for_function_from_map("initiate", env).unwrap();
            assert!(settings.checkout().is_err(), "{bad}");
        }
        let mut env = env.clone();
        env.insert(vars::CHECKOUT_DISPLAY_NAME.into(), " ".into());
        assert!(for_function_from_map("initiate", env).unwrap().checkout().is_err());
    }

    #[test]
    fn the_live_channel_is_a_wss_url_or_absent() {
        let env = crate::config::examples::env("initiate", true);
        let live = for_function_from_map("initiate", env.clone()).unwrap().checkout_live().unwrap().unwrap();
        assert_eq!(live.origin(), "wss://abc123.execute-api.eu-west-1.amazonaws.com");
        let mut without = env.clone();
        without.remove(vars::CHECKOUT_LIVE_URL);
        assert_eq!(for_function_from_map("initiate", without).unwrap().checkout_live().unwrap(), None);
        for bad in [
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod",
            "ws://abc.example/prod",
            "wss://abc.example/prod?x=1",
            "wss://",
            "not a url",
        ] {
            let mut env = env.clone();
            env.insert(vars::CHECKOUT_LIVE_URL.into(), bad.into());
            assert!(for_function_from_map("initiate", env).unwrap().checkout_live().is_err(), "{bad}");
        }
    }
}
