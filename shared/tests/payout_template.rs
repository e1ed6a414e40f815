//! `template.yaml` against the code for payouts: every payout route and B2C callback route is an
//! HttpApi event of the function the route table names, the payout functions (and the sweeper
//! that reconciles payouts) get the variables they read, the worker consumes the payout queue with
//! partial batch responses, and IAM grants no wildcard actions.

use std::path::PathBuf;

use checkout::api::routes::{RouteId, ROUTES};
use checkout::config::vars;

fn template() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the resource whose `CodeUri` is `functions/<function>`.
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
fn every_payout_route_is_served_by_its_function() {
    let template = template();
    let payout_routes = [
        RouteId::CreatePayout,
        RouteId::ListPayouts,
        RouteId::GetPayout,
        RouteId::ApprovePayout,
        RouteId::RejectPayout,
        RouteId::B2cResultCallback,
        RouteId::B2cTimeoutCallback,
        RouteId::B2cStatusCallback,
        RouteId::B2cStatusTimeoutCallback,
    ];
    for id in payout_routes {
        let route = ROUTES.iter().find(|r| r.id == id).expect("in the route table");
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
fn payout_functions_get_their_variables_queue_and_least_privilege() {
    let template = template();
    let cases: [(&str, &[&str]); 3] = [
        (
            "payouts-api",
            &[
                vars::TABLE_NAME,
                vars::SECRET_ID,
                vars::PAYOUT_QUEUE_URL,
                vars::PAYOUT_APPROVAL_THRESHOLD,
            ],
        ),
        (
            "b2c-payout",
            &[
                vars::TABLE_NAME,
                vars::SECRET_ID,
                vars::DARAJA_BASE_URL,
                vars::PUBLIC_BASE_URL,
                vars::B2C_CERTIFICATE_PEM,
            ],
        ),
        (
            "timeout-sweeper",
            &[
                vars::TABLE_NAME,
                vars::SECRET_ID,
                vars::DARAJA_BASE_URL,
                vars::PUBLIC_BASE_URL,
                vars::PAYOUT_QUEUE_URL,
                vars::B2C_CERTIFICATE_PEM,
            ],
        ),
    ];
    for (function, variables) in cases {
        let block = resource_for(&template, function);
        for variable in variables {
            assert!(block.contains(&format!("{variable}:")), "{function} lacks {variable}");
        }
        assert!(!block.contains(":*"), "{function} grants a wildcard action");
    }
    let worker = resource_for(&template, "b2c-payout");
    assert!(worker.contains("Queue: !GetAtt PayoutQueue.Arn"));
    assert!(worker.contains("FunctionResponseTypes: [ReportBatchItemFailures]"));
    assert!(
        !resource_for(&template, "payouts-api").contains("DARAJA_BASE_URL"),
        "the API never calls Daraja"
    );
    assert!(template.contains("deadLetterTargetArn: !GetAtt PayoutDeadLetterQueue.Arn"));
}
