//! Plausible values for every declared variable, to build a function's wiring in tests (no I/O
//! happens while wiring) and to show the shape of each value. Each section gives its own
//! (`EXAMPLES` in `config/<flow>.rs`).

use std::collections::HashMap;

/// A function's wiring test: its `build(settings, sdk)` must succeed from only its required
/// variables, and from all its declared ones, without reading anything undeclared and without I/O.
#[macro_export]
macro_rules! wiring_test {
    ($function:expr, $build:path) => {
        #[cfg(test)]
        mod wiring_test {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn wires_from_its_declared_variables_only() {
                for with_optional in [false, true] {
                    let env = $crate::config::examples::env($function, with_optional);
                    let settings = $crate::config::for_function_from_map($function, env).unwrap();
                    $build(&settings, &$crate::aws::offline_sdk_config()).unwrap();
                    settings.verify().unwrap();
                }
            }
        }
    };
}

pub fn value(name: &str) -> &'static str {
    super::EXAMPLES
        .iter()
        .flat_map(|section| section.iter())
        .find(|(known, _)| *known == name)
        .map(|(_, value)| *value)
        .unwrap_or_else(|| panic!("no example value for {name}: add one to its section's EXAMPLES (config/<flow>.rs)"))
}

/// `function`'s required variables (and, with `with_optional`, every optional one) set to
/// example values.
pub fn env(function: &str, with_optional: bool) -> HashMap<String, String> {
    let declared = super::function_vars(function).unwrap_or_else(|| panic!("no function {function}"));
    let optional: &[&str] = if with_optional { declared.optional } else { &[] };
    declared
        .required
        .iter()
        .chain(optional)
        .map(|name| ((*name).to_owned(), value(name).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_variable_has_two_example_values() {
        let mut names = std::collections::BTreeSet::new();
        for (name, _) in super::super::EXAMPLES.iter().flat_map(|section| section.iter()) {
            assert!(names.insert(*name), "{name} has two example values");
        }
    }
}
