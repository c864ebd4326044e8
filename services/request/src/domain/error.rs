//! The request part's refusals: each names its code and machine-readable reason once; the
//! sentence is what a person reads. `part_error!` maps them to the shared code table.

use essentials_runtime::{Code, PartError};

use super::{RequestStatus, RequestType};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The partner is not approved (uninvited, invited, awaiting review, recertification).
    #[error("{name} is not approved yet and cannot make requests.")]
    PartnerNotApproved { name: String },
    #[error("{name} has been deactivated by its bank and cannot make requests.")]
    PartnerDeactivated { name: String },
    // The partner part narrows the profile's flags by the bank's, so either may be the one that
    // is off: the sentence names both places to look.
    #[error(
        "{} requests are not enabled for this partner: the bank's settings and the partner's profile must both allow them.",
        kind_label(*kind)
    )]
    TypeNotEnabled { kind: RequestType },
    #[error(
        "This request is already {} and cannot be fulfilled again.",
        status.as_str()
    )]
    NotFulfillable { status: RequestStatus },
    #[error("This request is already {} and cannot be cancelled.", status.as_str())]
    NotCancellable { status: RequestStatus },
    #[error("The bank has started fulfilling this request; ask the bank to cancel it.")]
    StartedNotWithdrawable,
    #[error("this idempotency key was already used for another request")]
    IdempotencyKeyReused,
}

fn kind_label(kind: RequestType) -> &'static str {
    match kind {
        RequestType::Quantity => "Quantity",
        RequestType::Individual => "Individual",
        RequestType::Child => "Child-based",
    }
}

impl PartError for RequestError {
    fn code(&self) -> Code {
        match self {
            RequestError::IdempotencyKeyReused => Code::AlreadyExists,
            _ => Code::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        use RequestError::*;
        match self {
            PartnerNotApproved { .. } => "PARTNER_NOT_APPROVED",
            PartnerDeactivated { .. } => "PARTNER_DEACTIVATED",
            TypeNotEnabled { .. } => "REQUEST_TYPE_NOT_ENABLED",
            NotFulfillable { .. } => "REQUEST_NOT_FULFILLABLE",
            NotCancellable { .. } | StartedNotWithdrawable => "REQUEST_NOT_CANCELLABLE",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
        }
    }
}

essentials_runtime::part_error!(RequestError);

#[cfg(test)]
mod tests {
    use super::*;
    use essentials_runtime::ServiceError;

    #[test]
    fn a_refusal_keeps_its_reason_code_and_sentence() {
        let error = ServiceError::from(RequestError::NotFulfillable {
            status: RequestStatus::Cancelled,
        });
        assert_eq!(error.code, Code::FailedPrecondition);
        assert_eq!(error.reason.as_deref(), Some("REQUEST_NOT_FULFILLABLE"));
        assert_eq!(
            error.message,
            "This request is already cancelled and cannot be fulfilled again."
        );
        let reused = ServiceError::from(RequestError::IdempotencyKeyReused);
        assert_eq!(reused.code, Code::AlreadyExists);
        assert_eq!(reused.reason.as_deref(), Some("IDEMPOTENCY_KEY_REUSED"));
        let disabled = RequestError::TypeNotEnabled {
            kind: RequestType::Individual,
        };
        assert!(
            disabled
                .to_string()
                .starts_with("Individual requests are not enabled")
        );
    }
}
