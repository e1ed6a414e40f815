//! `template.yaml` against the code for the C2B functions: every C2B route is an HttpApi event of
//! the function the route table names, each function gets the variables it reads, and its IAM
//! grants only the data actions it needs (no wildcards).

use std::path::PathBuf;

use checkout::api::routes::ROUTES;
use checkout::config::vars;

fn template() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the resource whose `CodeUri` is `functions/<function>` (from its name line to the
/// next resource at the same indentation).
fn resource_for(template: &str, function: &str) -> String {
    let lines: Vec<&str> = template.lines().collect();
    let is_resource_start = |l: &str| l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':');
    let starts: Vec<usize> = (0..lines.len()).filter(|&i| is_resource_start(lines[i])).collect();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        let block = lines[start..end].join("\n");
        if block
            .lines()
            .any(|l| l.trim() == format!("CodeUri: functions/{function}"))
        {
            return block;
        }
    }
    panic!("no resource with CodeUri functions/{function}");
}

#[test]
fn every_c2b_route_is_served_by_its_function() {
    let template = template();
    let c2b: Vec<_> = ROUTES.iter().filter(|r| r.function.starts_with("c2b-")).collect();
    assert_eq!(c2b.len(), 7);
    for route in c2b {
        let block = resource_for(&template, route.function);
        let quoted = format!("Method: {}, Path: \"{}\" }}", route.method, route.path);
        let bare = format!("Method: {}, Path: {} }}", route.method, route.path);
        assert!(
            block.contains(&quoted) || block.contains(&bare),
            "{} {} not an event of {}",
            route.method,
            route.path,
            route.function
        );
    }
}

#[test]
fn c2b_functions_get_their_variables_and_least_privilege() {
    let template = template();
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "c2b-validation",
            &[
                vars::TABLE_NAME,
                vars::SECRET_ID,
                vars::C2B_VALIDATION_BUDGET_MS,
                vars::C2B_RULES_CACHE_SECONDS,
                vars::C2B_FALLBACK_DECISION,
            ],
            &["dynamodb:GetItem", "secretsmanager:GetSecretValue"],
        ),
        ("c2b-confirmation", &[vars::CALLBACK_QUEUE_URL], &["sqs:SendMessage"]),
        (
            "c2b-api",
            &[
                vars::TABLE_NAME,
                vars::SECRET_ID,
                vars::DARAJA_BASE_URL,
                vars::PUBLIC_BASE_URL,
                vars::C2B_ALLOW_HTTP,
                vars::JWT_ISSUER,
            ],
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:Query",
            ],
        ),
    ];
    for (function, variables, actions) in cases {
        let block = resource_for(&template, function);
        for variable in variables {
            assert!(block.contains(&format!("{variable}:")), "{function} lacks {variable}");
        }
        for action in actions {
            assert!(block.contains(action), "{function} lacks {action}");
        }
        assert!(!block.contains(":*"), "{function}: no wildcard actions");
        assert!(
            !block.contains("Scan") && !block.contains("DeleteItem"),
            "{function}: no actions it does not use"
        );
    }
    // Validation reads one item; it never writes.
    let validation = resource_for(&template, "c2b-validation");
    assert!(!validation.contains("PutItem") && !validation.contains("Query"));
}
