//! The partner part's refusals: each names its code and machine-readable reason once; the
//! sentence is what a person reads. `part_error!` maps them to the shared code table.

use essentials_runtime::{Code, PartError};

use super::PartnerStatus;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerError {
    #[error(
        "{name} is {} and cannot be invited; only uninvited partners are invited (and invited ones re-sent)",
        status.as_str()
    )]
    NotInvitable { name: String, status: PartnerStatus },
    #[error("{name} is {} and cannot be invited and approved", status.as_str())]
    NotInvitableAndApprovable { name: String, status: PartnerStatus },
    #[error("This partner has already requested approval.")]
    AlreadyAwaitingReview,
    #[error("{name} is already approved")]
    AlreadyApproved { name: String },
    #[error("{name} has been deactivated; contact the bank to reactivate it")]
    DeactivatedContactBank { name: String },
    #[error("{name} has been deactivated")]
    Deactivated { name: String },
    #[error("{name} is not waiting for approval (it is {})", status.as_str())]
    NotApprovable { name: String, status: PartnerStatus },
    #[error("{name} has already been requested to recertify")]
    AlreadyRecertificationRequired { name: String },
    #[error("{name} has not been invited, so it cannot recertify")]
    NotInvited { name: String },
    #[error("{name} is already deactivated")]
    AlreadyDeactivated { name: String },
    #[error("{name} is not deactivated!")]
    NotDeactivated { name: String },
    #[error(
        "{name} cannot be deleted: only uninvited partners without users, requests or distributions can"
    )]
    NotDeletable { name: String },
    #[error("this bank already has a partner with that name")]
    NameTaken,
    #[error("a partner with that e-mail already exists")]
    EmailTaken,
    #[error("This bank has already imported its partners; add further partners one by one.")]
    AlreadyImported,
    #[error("This invitation link is not valid; ask for a new invitation.")]
    InvitationInvalid,
    #[error("This invitation has already been used; sign in, or ask for a new invitation.")]
    InvitationUsed,
    #[error("This invitation has expired; ask for a new invitation.")]
    InvitationExpired,
    #[error("This reset link is not valid any more; ask for a new one.")]
    ResetLinkInvalid,
    #[error("This user has already accepted the invitation; they can sign in.")]
    InvitationAlreadyAccepted,
    #[error("Partner Group cannot be deleted: {group} still has {members} partner(s).")]
    GroupHasPartners { group: String, members: i64 },
    #[error("You cannot remove your own access.")]
    CannotRemoveSelf,
    #[error("You cannot demote yourself; ask another administrator.")]
    CannotDemoteSelf,
    #[error("Your access to this partner was removed; sign in again or switch to another role.")]
    RoleRemoved,
    #[error("Too many failed sign-ins; try again in {retry_after_seconds} seconds.")]
    SignInThrottled { retry_after_seconds: u64 },
}

impl PartError for PartnerError {
    fn code(&self) -> Code {
        use PartnerError::*;
        match self {
            NameTaken | EmailTaken => Code::AlreadyExists,
            RoleRemoved => Code::PermissionDenied,
            SignInThrottled { .. } => Code::ResourceExhausted,
            _ => Code::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        use PartnerError::*;
        match self {
            NotInvitable { .. } | NotInvitableAndApprovable { .. } => "PARTNER_NOT_INVITABLE",
            AlreadyAwaitingReview => "PARTNER_ALREADY_AWAITING_REVIEW",
            AlreadyApproved { .. } => "PARTNER_ALREADY_APPROVED",
            DeactivatedContactBank { .. } | Deactivated { .. } => "PARTNER_DEACTIVATED",
            NotApprovable { .. } => "PARTNER_NOT_APPROVABLE",
            AlreadyRecertificationRequired { .. } => "PARTNER_ALREADY_RECERTIFICATION_REQUIRED",
            NotInvited { .. } => "PARTNER_NOT_INVITED",
            AlreadyDeactivated { .. } => "PARTNER_ALREADY_DEACTIVATED",
            NotDeactivated { .. } => "PARTNER_NOT_DEACTIVATED",
            NotDeletable { .. } => "PARTNER_NOT_DELETABLE",
            NameTaken => "PARTNER_NAME_TAKEN",
            EmailTaken => "PARTNER_EMAIL_TAKEN",
            AlreadyImported => "PARTNERS_ALREADY_IMPORTED",
            // A reset link is an invitation row of another kind: one reason for both.
            InvitationInvalid | InvitationUsed | ResetLinkInvalid => "INVITATION_USED",
            InvitationExpired => "INVITATION_EXPIRED",
            InvitationAlreadyAccepted => "INVITATION_ALREADY_ACCEPTED",
            GroupHasPartners { .. } => "PARTNER_GROUP_HAS_PARTNERS",
            CannotRemoveSelf | CannotDemoteSelf => "USER_ROLE_REQUIRED",
            RoleRemoved => "USER_ROLE_REMOVED",
            SignInThrottled { .. } => "SIGN_IN_THROTTLED",
        }
    }

    fn metadata(&self) -> Vec<(String, String)> {
        match self {
            PartnerError::SignInThrottled {
                retry_after_seconds,
            } => vec![(
                "retry_after_seconds".into(),
                retry_after_seconds.to_string(),
            )],
            _ => Vec::new(),
        }
    }
}

essentials_runtime::part_error!(PartnerError);

#[cfg(test)]
mod tests {
    use super::*;
    use essentials_runtime::ServiceError;

    #[test]
    fn a_refusal_keeps_its_reason_code_and_sentence() {
        let error = ServiceError::from(PartnerError::NotApprovable {
            name: "Acme".into(),
            status: PartnerStatus::Approved,
        });
        assert_eq!(error.code, Code::FailedPrecondition);
        assert_eq!(error.reason.as_deref(), Some("PARTNER_NOT_APPROVABLE"));
        assert_eq!(
            error.message,
            "Acme is not waiting for approval (it is approved)"
        );
        let throttled = ServiceError::from(PartnerError::SignInThrottled {
            retry_after_seconds: 7,
        });
        assert_eq!(throttled.code, Code::ResourceExhausted);
        assert_eq!(
            throttled
                .metadata
                .get("retry_after_seconds")
                .map(String::as_str),
            Some("7")
        );
        assert_eq!(
            ServiceError::from(PartnerError::EmailTaken).code,
            Code::AlreadyExists
        );
    }
}
