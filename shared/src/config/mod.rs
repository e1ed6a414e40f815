//! Configuration, parsed once at cold start into typed values. Every variable is named in
//! [`vars`], and every Lambda function declares the ones it reads in [`FUNCTIONS`]: a function
//! reads through [`for_function`], which refuses a variable its declaration does not list (a
//! panic in debug builds and tests; [`Settings::verify`] fails the cold start in release), and
//! the template test checks `template.yaml` sets every `required` one for that function.
//!
//! # Layout
//!
//! - `settings.rs`: the reader ([`Settings`], [`ConfigError`], [`for_function`], [`from_env`],
//!   [`from_map`]) and its generic parsers (`required`, `optional`, `parsed`, `feature`,
//!   `optional_cap`);
//! - `functions.rs`: [`FUNCTIONS`], each function's declared variables;
//! - `examples.rs`: [`examples`] (every section's example values) and [`wiring_test!`](crate::wiring_test);
//! - one section per flow, each holding that flow's variables (its `pub mod vars`, re-exported in
//!   [`vars`]), their parsing (an `impl Settings` block of its readers), their example values
//!   (`EXAMPLES`) and their tests: `common` (table, public base URL), `secrets`, `daraja`,
//!   `auth` (JWT), `callbacks`, `payments` (STK and its reconciliation sweep), `limits`
//!   (payments'), `payouts` (B2C, with payouts' limits), `c2b`.
//!
//! # Adding a flow's section
//!
//! 1. Create `config/<flow>.rs` with a module doc saying what the flow is, and:
//!    - `pub mod vars { pub const MY_FLOW_THING: &str = "MY_FLOW_THING"; }`: each variable, with
//!      a doc comment (meaning, unit, default);
//!    - `pub(super) const EXAMPLES: &[(&str, &str)]`: a plausible value for each of them (wiring
//!      tests build every function from these);
//!    - `impl<F: Fn(&str) -> Option<String>> Settings<F> { pub fn my_flow(&self) -> Result<..,
//!      ConfigError> }`, reading through `self.required`, `self.optional`, `self.parsed`,
//!      `self.feature` and `self.optional_cap` (its own variables as `vars::X`, another section's
//!      as `super::vars::X`);
//!    - its `#[cfg(test)] mod tests`.
//! 2. Add its name to the `sections!` list below (one line): that declares the module and
//!    re-exports its variables in [`vars`] and its examples in [`examples`].
//! 3. Declare the variables in [`FUNCTIONS`] (`functions.rs`) for each function that reads them,
//!    set the required ones in `template.yaml` and describe each in `docs/operations.md`
//!    (`shared/tests/template.rs` checks both).

mod functions;
mod settings;

#[doc(hidden)]
pub mod examples;

pub use callbacks::DEFAULT_CALLBACK_SOURCES;
pub use functions::{function_vars, FunctionVars, FUNCTIONS};
pub use secrets::secret_id_var;
pub use settings::{for_function, for_function_from_map, from_env, from_map, ConfigError, EnvLookup, Settings};

/// Declares each section's module, re-exports its variables in [`vars`] and lists its examples.
macro_rules! sections {
    ($($section:ident,)*) => {
        $(mod $section;)*

        /// Environment variable names (each declared in its flow's section).
        pub mod vars {
            $(pub use super::$section::vars::*;)*
        }

        /// Every section's example values, read by [`examples::value`].
        const EXAMPLES: &[&[(&str, &str)]] = &[$($section::EXAMPLES,)*];
    };
}

sections! {
    common,
    audit,
    secrets,
    daraja,
    auth,
    callbacks,
    payments,
    limits,
    payouts,
    c2b,
    checkout,
}
