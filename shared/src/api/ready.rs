//! `GET /v1/ready` (scope `ops:read`): the readiness check, 200 when every dependency answers,
//! 503 otherwise, with each check's status and latency (see [`crate::services::readiness`]).
//! Never cached; never carries a secret value.

use http::StatusCode;

use super::auth::Authenticator;
use super::http::{ApiRequest, ApiResponse};
use super::respond;
use crate::auth::scopes;
use crate::services::readiness::Readiness;

pub async fn ready(readiness: &Readiness, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        auth.require(&request, scopes::OPS_READ).await?;
        request.only_query_params(&[])?;
        let report = readiness.check().await;
        let status = if report.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        Ok(ApiResponse::json(status, &report).with_header("cache-control", "no-store"))
    })
    .await
}
