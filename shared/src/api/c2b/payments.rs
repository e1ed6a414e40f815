//! Received C2B payments: `GET /v1/c2b/payments/{id}` and `GET /v1/c2b/payments` (`c2b:read`;
//! filters `shortcode`, `account_number`, `verification`, `from`, `to`; `limit`, `cursor`).

use http::StatusCode;

use super::{owns, C2bApi};
use crate::api::auth::Authenticator;
use crate::api::c2b_views::C2bPaymentView;
use crate::api::errors::store_error;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::payments::{page_params, range_params};
use crate::api::problem::{ApiError, FieldError};
use crate::api::respond;
use crate::api::views::ListView;
use crate::auth::scopes;
use crate::domain::c2b::{AccountNumber, Shortcode};
use crate::domain::c2b_verification::VerificationStatus;
use crate::domain::C2bPaymentId;
use crate::repo::c2b::{self as repo, C2bListFilter, C2bScope};

impl C2bApi {
    pub async fn get_payment(&self, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
        respond(&request.request_id, async {
            let principal = auth.require(&request, scopes::C2B_READ).await?;
            let not_found = ApiError::NotFound {
                resource: "C2B payment",
            };
            let id = request
                .path_param("id")
                .and_then(|id| C2bPaymentId::parse(id).ok())
                .ok_or(not_found.clone())?;
            let payment = repo::get_payment(self.table.as_ref(), &id)
                .await
                .map_err(store_error)?
                .ok_or(not_found.clone())?;
            // Another client's payment is indistinguishable from a missing one.
            if !owns(
                self.table.as_ref(),
                &principal,
                &payment.shortcode,
                payment.owner.as_ref(),
            )
            .await?
            {
                return Err(not_found);
            }
            Ok(ApiResponse::json(StatusCode::OK, &C2bPaymentView::from(&payment)))
        })
        .await
    }

    pub async fn list_payments(&self, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
        respond(&request.request_id, async {
            let principal = auth.require(&request, scopes::C2B_READ).await?;
            request.only_query_params(&[
                "shortcode",
                "account_number",
                "verification",
                "from",
                "to",
                "limit",
                "cursor",
            ])?;
            let mut errors = Vec::new();
            let shortcode = match request.query_param("shortcode")? {
                None => None,
                Some(text) => match Shortcode::parse(text) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        errors.push(FieldError::new("shortcode", "invalid_value", format!("shortcode {e}")));
                        None
                    }
                },
            };
            let account = match request.query_param("account_number")? {
                None => None,
                Some(text) => match AccountNumber::parse(text) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        errors.push(FieldError::new(
                            "account_number",
                            "invalid_value",
                            format!("account_number {e}"),
                        ));
                        None
                    }
                },
            };
            let verification = match request.query_param("verification")? {
                None => None,
                Some(text) => {
                    let parsed = [
                        VerificationStatus::Unverified,
                        VerificationStatus::Verified,
                        VerificationStatus::Rejected,
                    ]
                    .into_iter()
                    .find(|s| s.as_str() == text);
                    if parsed.is_none() {
                        errors.push(FieldError::new(
                            "verification",
                            "invalid_value",
                            "verification must be one of unverified, verified, rejected",
                        ));
                    }
                    parsed
                }
            };
            let (from, to) = range_params(&request, &mut errors)?;
            let (limit, cursor) = page_params(&request, &mut errors)?;
            if let Some(shortcode) = &shortcode {
                if errors.is_empty() && !owns(self.table.as_ref(), &principal, shortcode, None).await? {
                    errors.push(FieldError::new(
                        "shortcode",
                        "unknown_shortcode",
                        "no C2B registration of yours for this shortcode",
                    ));
                }
            }
            if !errors.is_empty() {
                return Err(ApiError::Validation(errors));
            }
            let scope = match shortcode {
                Some(shortcode) => C2bScope::Shortcode(shortcode),
                None => C2bScope::Owner(principal.merchant.clone()),
            };
            let filter = C2bListFilter {
                scope,
                account,
                verification,
                from,
                to,
            };
            let page = repo::list_payments(&self.table, &filter, limit, cursor.as_ref())
                .await
                .map_err(store_error)?;
            let view = ListView {
                data: page.payments.iter().map(C2bPaymentView::from).collect(),
                next_cursor: page.next.map(|c| c.encode()),
            };
            Ok(ApiResponse::json(StatusCode::OK, &view))
        })
        .await
    }
}
