//! One table of canonical error codes, mapped to gRPC and to HTTP, with rich details (field
//! violations and a machine-readable reason). Every service converts its own error enum into
//! [`ServiceError`]; the gateway turns a received `tonic::Status` back into one.

use std::collections::HashMap;
use std::fmt;

use tonic_types::{ErrorDetails, StatusExt};

/// The domain that `google.rpc.ErrorInfo` reasons belong to.
pub const ERROR_DOMAIN: &str = "essentials";

/// The canonical codes our APIs use (a subset of gRPC's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    Aborted,
    FailedPrecondition,
    ResourceExhausted,
    Unavailable,
    DeadlineExceeded,
    Internal,
}

/// The one table: canonical code, gRPC code, HTTP status, JSON name.
const TABLE: &[(Code, tonic::Code, u16, &str)] = &[
    (
        Code::InvalidArgument,
        tonic::Code::InvalidArgument,
        400,
        "INVALID_ARGUMENT",
    ),
    (
        Code::Unauthenticated,
        tonic::Code::Unauthenticated,
        401,
        "UNAUTHENTICATED",
    ),
    (
        Code::PermissionDenied,
        tonic::Code::PermissionDenied,
        403,
        "PERMISSION_DENIED",
    ),
    (Code::NotFound, tonic::Code::NotFound, 404, "NOT_FOUND"),
    (
        Code::AlreadyExists,
        tonic::Code::AlreadyExists,
        409,
        "ALREADY_EXISTS",
    ),
    (Code::Aborted, tonic::Code::Aborted, 409, "ABORTED"),
    (
        Code::FailedPrecondition,
        tonic::Code::FailedPrecondition,
        409,
        "FAILED_PRECONDITION",
    ),
    (
        Code::ResourceExhausted,
        tonic::Code::ResourceExhausted,
        429,
        "RESOURCE_EXHAUSTED",
    ),
    (
        Code::Unavailable,
        tonic::Code::Unavailable,
        503,
        "UNAVAILABLE",
    ),
    (
        Code::DeadlineExceeded,
        tonic::Code::DeadlineExceeded,
        504,
        "DEADLINE_EXCEEDED",
    ),
    (Code::Internal, tonic::Code::Internal, 500, "INTERNAL"),
];

impl Code {
    fn row(self) -> &'static (Code, tonic::Code, u16, &'static str) {
        // The table lists every variant, so the fallback is never taken.
        TABLE
            .iter()
            .find(|row| row.0 == self)
            .unwrap_or(&TABLE[TABLE.len() - 1])
    }

    pub fn grpc(self) -> tonic::Code {
        self.row().1
    }

    pub fn http_status(self) -> u16 {
        self.row().2
    }

    pub fn as_str(self) -> &'static str {
        self.row().3
    }

    /// A received gRPC code; codes outside our table count as internal.
    pub fn from_grpc(code: tonic::Code) -> Self {
        TABLE
            .iter()
            .find(|row| row.1 == code)
            .map(|row| row.0)
            .unwrap_or(Code::Internal)
    }
}

/// One bad field of a request, named by its path (`line_items[0].quantity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// A part's own error enum: each variant names its canonical code and machine-readable reason
/// once, and its `Display` is the sentence for people. `part_error!` turns it into a
/// [`ServiceError`].
pub trait PartError: fmt::Display {
    fn code(&self) -> Code;
    /// The `google.rpc.ErrorInfo` reason, e.g. `PARTNER_NOT_APPROVED`.
    fn reason(&self) -> &'static str;
    /// Facts that go with the reason (item, wanted, available…).
    fn metadata(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

impl ServiceError {
    pub fn from_part(error: &impl PartError) -> Self {
        let mut answer = Self::new(error.code(), error.to_string()).with_reason(error.reason());
        for (key, value) in error.metadata() {
            answer = answer.with_metadata(&key, value);
        }
        answer
    }
}

/// `impl From<$error> for ServiceError` (and for `tonic::Status`) for a part's [`PartError`].
#[macro_export]
macro_rules! part_error {
    ($error:ty) => {
        impl From<$error> for $crate::ServiceError {
            fn from(error: $error) -> Self {
                $crate::ServiceError::from_part(&error)
            }
        }
        impl From<$error> for ::tonic::Status {
            fn from(error: $error) -> Self {
                $crate::ServiceError::from_part(&error).into()
            }
        }
    };
}

/// An error as a client sees it: a code, a sentence for people, and optional details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub code: Code,
    pub message: String,
    /// Machine-readable reason, e.g. `PARTNER_NOT_APPROVED`.
    pub reason: Option<String>,
    pub field_violations: Vec<FieldViolation>,
    /// Extra machine-readable facts that go with the reason (item, wanted, available…).
    pub metadata: HashMap<String, String>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ServiceError {}

impl ServiceError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
            field_violations: Vec::new(),
            metadata: HashMap::new(),
        }
    }

    /// A request with bad fields; the message summarises them all.
    pub fn invalid(field_violations: Vec<FieldViolation>) -> Self {
        let summary = field_violations
            .iter()
            .map(|violation| format!("{} {}", violation.field, violation.description))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            field_violations,
            ..Self::new(Code::InvalidArgument, format!("Invalid request: {summary}"))
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn failed_precondition(reason: &str, message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, message).with_reason(reason)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, message)
    }

    /// An internal failure: logged here once, returned without its text.
    pub fn internal(error: impl fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error");
        Self::new(Code::Internal, "internal error")
    }

    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    pub fn with_metadata(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// Another part failed in a way our caller cannot act on but by retrying (it is down, timed
    /// out, or answered with an error of its own): logged, and UNAVAILABLE to the caller.
    pub fn part_unavailable(part: &str, status: &tonic::Status) -> Self {
        tracing::warn!(part, code = ?status.code(), message = status.message(), "a part failed");
        Self::new(
            Code::Unavailable,
            format!("the {part} part is unavailable, try again"),
        )
    }

    /// Reads a status received from another part, keeping its details.
    pub fn from_status(status: &tonic::Status) -> Self {
        let details = status.get_error_details();
        let field_violations = details
            .bad_request()
            .map(|bad_request| {
                bad_request
                    .field_violations
                    .iter()
                    .map(|violation| FieldViolation::new(&violation.field, &violation.description))
                    .collect()
            })
            .unwrap_or_default();
        let (reason, metadata) = details
            .error_info()
            .map(|info| (Some(info.reason.clone()), info.metadata.clone()))
            .unwrap_or_default();
        // Our channels' own deadline ends a call as CANCELLED ("Timeout expired"): the other part
        // did not answer in time, which callers see as DEADLINE_EXCEEDED (504), not a 500.
        let code = match status.code() {
            tonic::Code::Cancelled => Code::DeadlineExceeded,
            code => Code::from_grpc(code),
        };
        Self {
            code,
            message: status.message().to_owned(),
            reason,
            field_violations,
            metadata,
        }
    }
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        let mut details = ErrorDetails::new();
        if !error.field_violations.is_empty() {
            details.set_bad_request(
                error
                    .field_violations
                    .iter()
                    .map(|violation| {
                        tonic_types::FieldViolation::new(&violation.field, &violation.description)
                    })
                    .collect::<Vec<_>>(),
            );
        }
        if let Some(reason) = &error.reason {
            details.set_error_info(reason.clone(), ERROR_DOMAIN, error.metadata.clone());
        }
        tonic::Status::with_error_details(error.code.grpc(), error.message, details)
    }
}

/// The SQLSTATE of a database error, if it is one.
pub fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// The violated constraint's name when the error is a unique violation (23505).
pub fn unique_violation(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            db.constraint().map(str::to_owned)
        }
        _ => None,
    }
}

/// The database could not be reached: no connection, the pool timed out or closed, or the
/// connection broke (SQLSTATE class 08). Worth a retry, not the caller's fault.
pub fn database_unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    ) || sqlstate(error).is_some_and(|state| state.starts_with("08"))
}

impl From<sqlx::Error> for ServiceError {
    /// Database failures that no caller mapped are the server's fault, or a lost connection.
    fn from(error: sqlx::Error) -> Self {
        match &error {
            _ if database_unreachable(&error) => {
                tracing::warn!(error = %error, "database unavailable");
                // The pool reconnects by itself: a second is a fair first wait.
                Self::new(Code::Unavailable, "the database is unavailable, try again")
                    .with_reason("DATABASE_UNAVAILABLE")
                    .with_metadata("retry_after_seconds", "1")
            }
            // Serialization failure or deadlock: the client may retry.
            _ if matches!(sqlstate(&error).as_deref(), Some("40001" | "40P01")) => {
                Self::new(Code::Aborted, "a concurrent change interfered, try again")
            }
            // A text with a character Postgres cannot store (NUL): the caller's input, not ours.
            _ if matches!(sqlstate(&error).as_deref(), Some("22021" | "22P05")) => Self::new(
                Code::InvalidArgument,
                "a text contains a character that cannot be stored (NUL, \\0)",
            ),
            _ => Self::internal(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Short(i64);
    impl fmt::Display for Short {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "only {} left", self.0)
        }
    }
    impl PartError for Short {
        fn code(&self) -> Code {
            Code::FailedPrecondition
        }
        fn reason(&self) -> &'static str {
            "INSUFFICIENT_STOCK"
        }
        fn metadata(&self) -> Vec<(String, String)> {
            vec![("available".into(), self.0.to_string())]
        }
    }

    #[test]
    fn a_call_our_channel_gave_up_on_is_a_deadline_not_a_500() {
        let error = ServiceError::from_status(&tonic::Status::cancelled("Timeout expired"));
        assert_eq!(error.code, Code::DeadlineExceeded);
        assert_eq!(error.code.http_status(), 504);
    }

    #[test]
    fn a_part_error_keeps_its_code_reason_sentence_and_facts() {
        let error = ServiceError::from_part(&Short(3));
        assert_eq!(error.code, Code::FailedPrecondition);
        assert_eq!(error.reason.as_deref(), Some("INSUFFICIENT_STOCK"));
        assert_eq!(error.message, "only 3 left");
        assert_eq!(
            error.metadata.get("available").map(String::as_str),
            Some("3")
        );
    }

    #[test]
    fn table_maps_every_code_to_grpc_and_http() {
        assert_eq!(Code::InvalidArgument.http_status(), 400);
        assert_eq!(Code::FailedPrecondition.http_status(), 409);
        assert_eq!(Code::Aborted.http_status(), 409);
        assert_eq!(Code::ResourceExhausted.http_status(), 429);
        assert_eq!(Code::DeadlineExceeded.http_status(), 504);
        assert_eq!(Code::Internal.http_status(), 500);
        for (code, grpc, _, _) in TABLE {
            assert_eq!(Code::from_grpc(*grpc), *code);
            assert_eq!(code.grpc(), *grpc);
        }
        assert_eq!(Code::from_grpc(tonic::Code::DataLoss), Code::Internal);
    }

    #[test]
    fn details_survive_the_trip_through_a_status() {
        let error = ServiceError::invalid(vec![
            FieldViolation::new("name", "must not be blank"),
            FieldViolation::new("line_items[0].quantity", "must be at least 1"),
        ]);
        let status = tonic::Status::from(error.clone());
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let back = ServiceError::from_status(&status);
        assert_eq!(back.field_violations, error.field_violations);
        assert!(
            back.message
                .contains("line_items[0].quantity must be at least 1")
        );

        let error = ServiceError::failed_precondition("INSUFFICIENT_STOCK", "Could not reduce")
            .with_metadata("available", "50");
        let back = ServiceError::from_status(&tonic::Status::from(error));
        assert_eq!(back.code, Code::FailedPrecondition);
        assert_eq!(back.reason.as_deref(), Some("INSUFFICIENT_STOCK"));
        assert_eq!(
            back.metadata.get("available").map(String::as_str),
            Some("50")
        );
    }

    #[test]
    fn internal_errors_hide_their_text() {
        let error = ServiceError::internal("relation \"secret_table\" does not exist");
        assert_eq!(error.code, Code::Internal);
        assert!(!error.message.contains("secret_table"));
    }
}
