//! The public error body of API.md, built from the runtime's canonical errors.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use essentials_runtime::{Code, ServiceError};
use serde::Serialize;

/// Every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// The canonical code: INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND,
    /// ALREADY_EXISTS, FAILED_PRECONDITION, RESOURCE_EXHAUSTED, UNAVAILABLE, PAYLOAD_TOO_LARGE…
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// A machine-readable reason, e.g. PARTNER_NOT_APPROVED or INSUFFICIENT_STOCK.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub field_violations: Vec<FieldViolationBody>,
}

/// One bad field: its path in the body or query (`line_items[0].quantity`) and what is wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldViolationBody {
    pub field: String,
    pub description: String,
}

/// An error answer of the gateway: a canonical error, or 413 for a body over the limit (which
/// has no gRPC counterpart).
#[derive(Debug)]
pub struct ApiError(pub ServiceError, Option<StatusCode>);

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        Self(error, None)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let error = ServiceError::from_status(&status);
        // A reused Idempotency-Key is the client's mistake about the request's content: 422.
        let status = (error.reason.as_deref() == Some(essentials_runtime::idempotency::KEY_REUSED))
            .then_some(StatusCode::UNPROCESSABLE_ENTITY);
        Self(error, status)
    }
}

impl ApiError {
    /// An error answered with a status of its own (e.g. 410 for a used invitation).
    pub fn with_status(error: ServiceError, status: StatusCode) -> Self {
        Self(error, Some(status))
    }

    pub fn payload_too_large() -> Self {
        Self(
            ServiceError::new(Code::InvalidArgument, "the request body is too large"),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        )
    }

    /// A known path with a method it does not take.
    pub fn method_not_allowed() -> Self {
        Self(
            ServiceError::new(
                Code::InvalidArgument,
                "this path does not take that method; see /api/v1/openapi.json",
            ),
            Some(StatusCode::METHOD_NOT_ALLOWED),
        )
    }

    pub fn not_found_route() -> Self {
        Self::from(ServiceError::new(
            Code::NotFound,
            "no such route; see /api/v1/openapi.json",
        ))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiError(error, status_override) = self;
        let retry_after = error.metadata.get("retry_after_seconds").cloned();
        let status = status_override.unwrap_or_else(|| {
            StatusCode::from_u16(error.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
            StatusCode::GONE => "GONE",
            StatusCode::UNPROCESSABLE_ENTITY => "UNPROCESSABLE_ENTITY",
            StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
            _ => error.code.as_str(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: error.message,
                reason: error.reason,
                field_violations: error
                    .field_violations
                    .into_iter()
                    .map(|violation| FieldViolationBody {
                        field: violation.field,
                        description: violation.description,
                    })
                    .collect(),
            },
        };
        // Every 503 is worth a retry (a part or its database is back within seconds); one that
        // names no wait gets a second.
        let retry_after = retry_after
            .or_else(|| (status == StatusCode::SERVICE_UNAVAILABLE).then(|| "1".to_owned()));
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after.and_then(|seconds| seconds.parse().ok()) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds);
        }
        response
    }
}
