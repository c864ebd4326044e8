//! The notification part's refusals: each names its code and machine-readable reason once; the
//! sentence is what a person reads. `part_error!` maps them to the shared code table.

use essentials_runtime::{Code, PartError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The owning parts answer a bank's lists only to that bank's roles (a super admin's token
    /// names no bank), and this part cannot mint a token of its own.
    #[error(
        "Rebuilding a dashboard reads the bank's requests, partners and stock as the caller, and those answer only the bank's own roles: rebuild it as an org_admin of that bank, or with a service account scoped to it."
    )]
    RebuildNeedsBankRole,
    /// Postgres found a deadlock or a serialization failure between the rebuild and a handler.
    #[error("the dashboard changed while it was rebuilt; try again")]
    RebuildRaced,
}

impl PartError for NotificationError {
    fn code(&self) -> Code {
        match self {
            NotificationError::RebuildNeedsBankRole => Code::PermissionDenied,
            NotificationError::RebuildRaced => Code::Aborted,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            NotificationError::RebuildNeedsBankRole => "DASHBOARD_REBUILD_NEEDS_BANK_ROLE",
            NotificationError::RebuildRaced => "DASHBOARD_CHANGED_DURING_REBUILD",
        }
    }
}

essentials_runtime::part_error!(NotificationError);

#[cfg(test)]
mod tests {
    use super::*;
    use essentials_runtime::ServiceError;

    #[test]
    fn a_refusal_keeps_its_reason_and_code() {
        let raced = ServiceError::from(NotificationError::RebuildRaced);
        assert_eq!(raced.code, Code::Aborted);
        assert_eq!(
            raced.reason.as_deref(),
            Some("DASHBOARD_CHANGED_DURING_REBUILD")
        );
        let denied = ServiceError::from(NotificationError::RebuildNeedsBankRole);
        assert_eq!(denied.code, Code::PermissionDenied);
        assert!(denied.message.contains("org_admin"));
    }
}
