//! The gRPC surface: decode and validate, check the caller, call the use cases, map errors.
//! `NotificationService` is here, `DashboardService` in `dashboard`, the message mapping in
//! `convert`.

mod convert;
mod dashboard;

use essentials_proto::notification::v1 as pb;
use essentials_runtime::auth::{Role, principal};
use essentials_runtime::convert::{checked, decode_time_token, id, optional_id, time_token};
use essentials_runtime::{FieldViolation, ServiceError};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::domain::reminders::parse_day;
use crate::repo::EmailFilter;
use crate::service::Notifications;
use convert::{email_message, page_size, status_name};
pub use dashboard::DashboardGrpc;

type Answer<T> = Result<Response<T>, Status>;

#[derive(Clone)]
pub struct NotificationGrpc {
    pub app: Notifications,
}

#[tonic::async_trait]
impl pb::notification_service_server::NotificationService for NotificationGrpc {
    async fn list_emails(
        &self,
        request: Request<pb::ListEmailsRequest>,
    ) -> Answer<pb::ListEmailsResponse> {
        let organization_id = principal(&request)?.require_bank_staff()?;
        let message = request.into_inner();
        let mut violations = Vec::new();
        let size = page_size(message.page_size, &mut violations);
        let before = decode_time_token(&message.page_token, &mut violations);
        let status = pb::EmailStatus::try_from(message.status).unwrap_or_else(|_| {
            violations.push(FieldViolation::new("status", "is not an e-mail status"));
            pb::EmailStatus::Unspecified
        });
        checked(violations)?;
        let filter = EmailFilter {
            to: Some(message.to.trim().to_owned()).filter(|to| !to.is_empty()),
            event_type: Some(message.event_type.trim().to_owned()).filter(|kind| !kind.is_empty()),
            status: status_name(status).map(str::to_owned),
            before,
        };
        let page = self.app.list_emails(organization_id, &filter, size).await?;
        Ok(Response::new(pb::ListEmailsResponse {
            next_page_token: page
                .next
                .map(|(created_at, id)| time_token(created_at, id))
                .unwrap_or_default(),
            emails: page.emails.into_iter().map(email_message).collect(),
        }))
    }

    async fn get_email(
        &self,
        request: Request<pb::GetEmailRequest>,
    ) -> Answer<pb::GetEmailResponse> {
        let organization_id = principal(&request)?.require_bank_staff()?;
        let id = id("email_id", &request.get_ref().email_id)?;
        let row = self.app.get_email(organization_id, id).await?;
        Ok(Response::new(pb::GetEmailResponse {
            email: Some(email_message(row)),
        }))
    }

    async fn run_due_reminders(
        &self,
        request: Request<pb::RunDueRemindersRequest>,
    ) -> Answer<pb::RunDueRemindersResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let mut violations = Vec::new();
        let named = optional_id("organization_id", &message.organization_id, &mut violations);
        let today = OffsetDateTime::now_utc().date();
        let day = if message.date.trim().is_empty() {
            today
        } else {
            parse_day(&message.date).unwrap_or_else(|| {
                violations.push(FieldViolation::new("date", "must be a date, YYYY-MM-DD"));
                today
            })
        };
        let mut kinds = Vec::new();
        for (index, kind) in message.kinds.iter().enumerate() {
            match pb::ReminderKind::try_from(*kind) {
                Ok(kind) => kinds.push(kind),
                Err(_) => violations.push(FieldViolation::new(
                    format!("kinds[{index}]"),
                    "is not a reminder kind",
                )),
            }
        }
        checked(violations)?;
        let organization_id = match caller.role {
            Role::SuperAdmin => named,
            _ => {
                let own = caller.require_org_admin()?;
                if named.is_some_and(|named| named != own) {
                    return Err(ServiceError::not_found("organization").into());
                }
                Some(own)
            }
        };
        let wants = |kind: pb::ReminderKind| kinds.is_empty() || kinds.contains(&kind);
        // Both kinds are idempotent per reminder, so a call that fails half-way can be repeated.
        let distribution_reminders_sent = if wants(pb::ReminderKind::Distribution) {
            self.app
                .run_distribution_reminders(day, organization_id, false)
                .await?
        } else {
            0
        };
        let deadline_reminders_sent = if wants(pb::ReminderKind::Deadline) {
            self.app
                .run_deadline_reminders(&caller, day, organization_id)
                .await?
        } else {
            0
        };
        Ok(Response::new(pb::RunDueRemindersResponse {
            deadline_reminders_sent,
            distribution_reminders_sent,
        }))
    }

    async fn get_distribution_receipt(
        &self,
        request: Request<pb::GetDistributionReceiptRequest>,
    ) -> Answer<pb::GetDistributionReceiptResponse> {
        let caller = principal(&request)?;
        caller.organization()?;
        let id = id("distribution_id", &request.get_ref().distribution_id)?;
        let (file_name, pdf) = self.app.distribution_receipt(&caller, id).await?;
        Ok(Response::new(pb::GetDistributionReceiptResponse {
            pdf,
            file_name,
        }))
    }
}
