//! The reader: [`Settings`] looks variables up (in the process environment, or a map in tests),
//! restricted to what one function declares, and parses them; each flow's section adds its own
//! readers in an `impl Settings` block.

use std::str::FromStr;

use super::{function_vars, FunctionVars};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("no function {0} in config::FUNCTIONS")]
    UnknownFunction(String),
    #[error("{function} read {name}, which config::FUNCTIONS does not declare for it (declare it, and set it in template.yaml if required)")]
    Undeclared { function: &'static str, name: &'static str },
}

/// Reads configuration from a lookup function (the process environment, or a map in tests),
/// optionally restricted to one function's declared variables.
pub struct Settings<F: Fn(&str) -> Option<String>> {
    lookup: F,
    scope: Option<&'static FunctionVars>,
    /// Undeclared variables a scoped reader was asked for (refused; see [`Settings::verify`]).
    refused: std::sync::Mutex<Vec<ConfigError>>,
}

/// How [`for_function`] looks a variable up (in the process environment). A named type, so a
/// function's `build`, generic over the lookup, can be handed to
/// [`run_http_function`](crate::lambda::run_http_function) and instantiated there.
pub type EnvLookup = fn(&str) -> Option<String>;

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Every variable, unrestricted: the dev stack and tools. Lambda functions use [`for_function`].
pub fn from_env() -> Settings<impl Fn(&str) -> Option<String>> {
    Settings::new(env_lookup, None)
}

pub fn from_map(map: std::collections::HashMap<String, String>) -> Settings<impl Fn(&str) -> Option<String>> {
    Settings::new(move |name: &str| map.get(name).cloned(), None)
}

/// The environment as `function` may read it: only the variables [`FUNCTIONS`](super::FUNCTIONS)
/// declares for it.
pub fn for_function(function: &str) -> Result<Settings<EnvLookup>, ConfigError> {
    let scope = function_vars(function).ok_or_else(|| ConfigError::UnknownFunction(function.to_owned()))?;
    Ok(Settings::new(env_lookup as EnvLookup, Some(scope)))
}

/// [`for_function`] over a map (tests of a function's wiring).
pub fn for_function_from_map(
    function: &str,
    map: std::collections::HashMap<String, String>,
) -> Result<Settings<impl Fn(&str) -> Option<String>>, ConfigError> {
    let scope = function_vars(function).ok_or_else(|| ConfigError::UnknownFunction(function.to_owned()))?;
    Ok(Settings::new(
        move |name: &str| map.get(name).filter(|v| !v.trim().is_empty()).cloned(),
        Some(scope),
    ))
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    fn new(lookup: F, scope: Option<&'static FunctionVars>) -> Settings<F> {
        Settings {
            lookup,
            scope,
            refused: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The function this reader is restricted to, if any.
    pub fn function(&self) -> Option<&'static str> {
        self.scope.map(|s| s.function)
    }

    /// Whether this reader may read `name`: the function declares it (or the reader is unscoped).
    pub fn declares(&self, name: &str) -> bool {
        self.scope.is_none_or(|scope| scope.declares(name))
    }

    /// Whether `name` may be read; an undeclared read panics in debug builds (tests catch it) and
    /// is remembered in release, where [`Settings::verify`] turns it into a cold-start error.
    fn may_read(&self, name: &'static str) -> bool {
        let Some(scope) = self.scope else {
            return true;
        };
        if scope.declares(name) {
            return true;
        }
        let error = ConfigError::Undeclared {
            function: scope.function,
            name,
        };
        if cfg!(debug_assertions) {
            panic!("{error}");
        }
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).push(error);
        false
    }

    /// Call after wiring, before serving: fails if the function read an undeclared variable.
    pub fn verify(&self) -> Result<(), ConfigError> {
        match self.refused.lock().unwrap_or_else(|p| p.into_inner()).first() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        if !self.may_read(name) {
            return None;
        }
        (self.lookup)(name)
    }

    /// A feature flag: `on`/`off` (also `true`/`false`), on when unset.
    pub fn feature(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.optional(name).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("on") | Some("true") => Ok(true),
            Some("off") | Some("false") => Ok(false),
            Some(_) => Err(ConfigError::Invalid {
                name,
                reason: "on or off".into(),
            }),
        }
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(text) => text.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
        }
    }

    /// A cap that may be turned off with `off`.
    pub(super) fn optional_cap(&self, name: &'static str, default: Option<u64>) -> Result<Option<u64>, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(text) if text.trim().eq_ignore_ascii_case("off") => Ok(None),
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(ConfigError::Invalid {
                    name,
                    reason: "a positive integer, or off".into(),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{examples, vars};

    fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn a_scoped_reader_reads_declared_variables() {
        let settings = for_function_from_map("callback", examples::env("callback", true)).unwrap();
        assert_eq!(settings.function(), Some("callback"));
        assert!(settings.optional(vars::CALLBACK_QUEUE_URL).is_some());
        assert!(settings.callback_sources().is_ok());
        assert_eq!(settings.verify(), Ok(()));
    }

    #[test]
    #[should_panic(expected = "does not declare")]
    fn a_scoped_reader_refuses_an_undeclared_variable() {
        let settings = for_function_from_map("callback", examples::env("callback", true)).unwrap();
        let _ = settings.optional(vars::TABLE_NAME);
    }

    #[test]
    fn feature_flags() {
        assert_eq!(settings(&[]).feature(vars::FEATURE_PAYOUTS), Ok(true));
        assert_eq!(
            settings(&[(vars::FEATURE_PAYOUTS, "off")]).feature(vars::FEATURE_PAYOUTS),
            Ok(false)
        );
        assert_eq!(
            settings(&[(vars::FEATURE_C2B, "ON")]).feature(vars::FEATURE_C2B),
            Ok(true)
        );
        assert!(settings(&[(vars::FEATURE_C2B, "maybe")])
            .feature(vars::FEATURE_C2B)
            .is_err());
    }
}
