//! The gRPC surface: decode and validate, check the caller, call the use cases, map errors.

use std::pin::Pin;
use std::time::Duration;

use essentials_proto::notification::v1 as pb;
use essentials_runtime::auth::{Role, principal};
use essentials_runtime::{CancellationToken, FieldViolation, ServiceError};
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::reminders::parse_day;
use crate::repo::{DashboardRows, EmailFilter, EmailRow};
use crate::service::Notifications;
use crate::watch::DashboardHub;

type Answer<T> = Result<Response<T>, Status>;

const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 500;
/// A Watch stream ends after this long (clients reconnect); it bounds how long a shutdown waits
/// for watchers, since the server drains streams before workers are told to stop.
const MAX_WATCH: Duration = Duration::from_secs(300);

pub fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: i32::try_from(time.nanosecond()).unwrap_or(0),
    }
}

fn page_size(requested: i32) -> Result<i64, ServiceError> {
    match i64::from(requested) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        size if size < 0 => Err(ServiceError::invalid(vec![FieldViolation::new(
            "page_size",
            "must not be negative",
        )])),
        size => Ok(size.min(MAX_PAGE_SIZE)),
    }
}

fn page_token(next: Option<(OffsetDateTime, Uuid)>) -> String {
    next.map(|(created_at, id)| format!("{}.{id}", created_at.unix_timestamp_nanos()))
        .unwrap_or_default()
}

fn parse_page_token(token: &str) -> Result<Option<(OffsetDateTime, Uuid)>, ServiceError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        ServiceError::invalid(vec![FieldViolation::new(
            "page_token",
            "is not a token this list returned",
        )])
    };
    let (nanos, id) = token.split_once('.').ok_or_else(bad)?;
    let nanos: i128 = nanos.parse().map_err(|_| bad())?;
    let created_at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| bad())?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok(Some((created_at, id)))
}

fn status_name(status: pb::EmailStatus) -> Option<&'static str> {
    match status {
        pb::EmailStatus::Unspecified => None,
        pb::EmailStatus::Pending => Some("pending"),
        pb::EmailStatus::Sent => Some("sent"),
        pb::EmailStatus::Failed => Some("failed"),
    }
}

fn email_status(name: &str) -> pb::EmailStatus {
    match name {
        "pending" => pb::EmailStatus::Pending,
        "sent" => pb::EmailStatus::Sent,
        "failed" => pb::EmailStatus::Failed,
        _ => pb::EmailStatus::Unspecified,
    }
}

pub fn email_message(row: EmailRow) -> pb::Email {
    pb::Email {
        id: row.id.to_string(),
        to: row.to_address,
        cc: row.cc_addresses,
        subject: row.subject,
        event_type: row.event_type,
        status: email_status(&row.status) as i32,
        sent_at: row.sent_at.map(timestamp),
        created_at: Some(timestamp(row.created_at)),
        event_id: row.event_id.map(|id| id.to_string()).unwrap_or_default(),
        error: row.last_error.unwrap_or_default(),
        attempts: row.attempts,
        text_body: row.text_body,
        html_body: row.html_body,
        attachment_names: row.attachment_name.into_iter().collect(),
    }
}

pub fn dashboard_message(organization_id: Uuid, rows: DashboardRows) -> pb::Dashboard {
    pb::Dashboard {
        organization_id: organization_id.to_string(),
        outstanding_requests: rows
            .outstanding
            .into_iter()
            .map(|request| pb::OutstandingRequest {
                request_id: request.request_id.to_string(),
                partner_id: request
                    .partner_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                partner_name: request.partner_name,
                requester: match (
                    request.requester_name.is_empty(),
                    request.requester_email.is_empty(),
                ) {
                    (_, true) => request.requester_name.clone(),
                    (true, false) => request.requester_email.clone(),
                    (false, false) => {
                        format!("{} <{}>", request.requester_name, request.requester_email)
                    }
                },
                requester_name: request.requester_name,
                requester_email: request.requester_email,
                comments: request.comments,
                created_at: request.created_at.map(timestamp),
            })
            .collect(),
        outstanding_requests_count: i32::try_from(rows.outstanding_count).unwrap_or(i32::MAX),
        partner_approvals: rows
            .approvals
            .into_iter()
            .map(|partner| pb::PartnerApproval {
                partner_id: partner.partner_id.to_string(),
                name: partner.name,
                primary_contact_name: partner.primary_contact_name,
                primary_contact_email: partner.primary_contact_email,
                review_requested_at: partner.review_requested_at.map(timestamp),
            })
            .collect(),
        low_inventory: rows
            .low_stock
            .into_iter()
            .map(|item| pb::LowInventoryItem {
                item_id: item.item_id.to_string(),
                name: item.name,
                quantity: item.quantity,
                minimum: item.minimum,
                recommended: item.recommended,
                below_minimum: item.minimum > 0 && item.quantity < item.minimum,
            })
            .collect(),
        upcoming_distributions_count: i32::try_from(rows.upcoming_distributions)
            .unwrap_or(i32::MAX),
        version: rows.version,
        updated_at: rows.updated_at.map(timestamp),
    }
}

fn parse_uuid(field: &str, text: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(text.trim())
        .map_err(|_| ServiceError::invalid(vec![FieldViolation::new(field, "must be a UUID")]))
}

/// An optional id: empty means none.
fn optional_uuid(field: &str, text: &str) -> Result<Option<Uuid>, ServiceError> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        parse_uuid(field, text).map(Some)
    }
}

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
        let size =
            page_size(message.page_size).map_err(|error| violations.extend(error.field_violations));
        let before = parse_page_token(&message.page_token)
            .map_err(|error| violations.extend(error.field_violations));
        let status = pb::EmailStatus::try_from(message.status).map_err(|_| {
            violations.push(FieldViolation::new("status", "is not an e-mail status"));
        });
        let (Ok(size), Ok(before), Ok(status)) = (size, before, status) else {
            return Err(ServiceError::invalid(violations).into());
        };
        let filter = EmailFilter {
            to: Some(message.to.trim().to_owned()).filter(|to| !to.is_empty()),
            event_type: Some(message.event_type.trim().to_owned()).filter(|kind| !kind.is_empty()),
            status: status_name(status).map(str::to_owned),
            before,
        };
        let page = self.app.list_emails(organization_id, &filter, size).await?;
        Ok(Response::new(pb::ListEmailsResponse {
            next_page_token: page_token(page.next),
            emails: page.emails.into_iter().map(email_message).collect(),
        }))
    }

    async fn get_email(
        &self,
        request: Request<pb::GetEmailRequest>,
    ) -> Answer<pb::GetEmailResponse> {
        let organization_id = principal(&request)?.require_bank_staff()?;
        let id = parse_uuid("email_id", &request.get_ref().email_id)?;
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
        let named = optional_uuid("organization_id", &message.organization_id)
            .map_err(|error| violations.extend(error.field_violations));
        let day = if message.date.trim().is_empty() {
            Ok(OffsetDateTime::now_utc().date())
        } else {
            parse_day(&message.date).ok_or_else(|| {
                violations.push(FieldViolation::new("date", "must be a date, YYYY-MM-DD"));
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
        let (Ok(named), Ok(day)) = (named, day) else {
            return Err(ServiceError::invalid(violations).into());
        };
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations).into());
        }
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
        let id = parse_uuid("distribution_id", &request.get_ref().distribution_id)?;
        let (file_name, pdf) = self.app.distribution_receipt(&caller, id).await?;
        Ok(Response::new(pb::GetDistributionReceiptResponse {
            pdf,
            file_name,
        }))
    }
}

#[derive(Clone)]
pub struct DashboardGrpc {
    pub app: Notifications,
    pub hub: DashboardHub,
    pub shutdown: CancellationToken,
}

type DashboardStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchDashboardResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::dashboard_service_server::DashboardService for DashboardGrpc {
    async fn get_dashboard(
        &self,
        request: Request<pb::GetDashboardRequest>,
    ) -> Answer<pb::GetDashboardResponse> {
        let organization_id = principal(&request)?.require_bank_staff()?;
        let rows = self.app.dashboard(organization_id).await?;
        Ok(Response::new(pb::GetDashboardResponse {
            dashboard: Some(dashboard_message(organization_id, rows)),
        }))
    }

    type WatchDashboardStream = DashboardStream;

    async fn watch_dashboard(
        &self,
        request: Request<pb::WatchDashboardRequest>,
    ) -> Answer<Self::WatchDashboardStream> {
        let organization_id = principal(&request)?.require_bank_staff()?;
        // Subscribe before the first read, so no change between the two is missed.
        let mut changes = self.hub.subscribe();
        let first = self.app.dashboard(organization_id).await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        let app = self.app.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::sleep(MAX_WATCH);
            tokio::pin!(deadline);
            let mut last_version = first.version;
            let first = pb::WatchDashboardResponse {
                dashboard: Some(dashboard_message(organization_id, first)),
            };
            if sender.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                let reload = tokio::select! {
                    change = changes.recv() => match change {
                        Ok(Some(bank)) => bank == organization_id,
                        Ok(None) | Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => return,
                    },
                    () = sender.closed() => return,
                    () = shutdown.cancelled() => return,
                    () = &mut deadline => return,
                };
                if !reload {
                    continue;
                }
                match app.dashboard(organization_id).await {
                    Ok(rows) if rows.version > last_version => {
                        last_version = rows.version;
                        let update = pb::WatchDashboardResponse {
                            dashboard: Some(dashboard_message(organization_id, rows)),
                        };
                        if sender.send(Ok(update)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        let _ = sender.send(Err(error.into())).await;
                        return;
                    }
                }
            }
        });
        let stream: DashboardStream =
            Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver));
        Ok(Response::new(stream))
    }

    async fn rebuild_dashboard(
        &self,
        request: Request<pb::RebuildDashboardRequest>,
    ) -> Answer<pb::RebuildDashboardResponse> {
        let caller = principal(&request)?;
        let named = optional_uuid("organization_id", &request.get_ref().organization_id)?;
        if caller.role == Role::SuperAdmin {
            // The owning parts answer a bank's lists only to that bank's roles (a super admin's
            // token names no bank), and this part cannot mint a token of its own.
            return Err(ServiceError::permission_denied(
                "Rebuilding a dashboard reads the bank's requests, partners and stock as the caller, \
                 and those answer only the bank's own roles: rebuild it as an org_admin of that \
                 bank, or with a service account scoped to it.",
            )
            .into());
        }
        let organization_id = caller.require_org_admin()?;
        if named.is_some_and(|named| named != organization_id) {
            return Err(ServiceError::not_found("organization").into());
        }
        let rows = self.app.rebuild_dashboard(&caller, organization_id).await?;
        Ok(Response::new(pb::RebuildDashboardResponse {
            dashboard: Some(dashboard_message(organization_id, rows)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_bad_ones_are_refused() {
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(1_790_000_000_123_456_789).expect("time");
        let id = Uuid::now_v7();
        let token = page_token(Some((at, id)));
        assert_eq!(parse_page_token(&token).expect("valid"), Some((at, id)));
        assert_eq!(parse_page_token("").expect("empty"), None);
        let error = parse_page_token("nonsense").expect_err("invalid");
        assert_eq!(error.field_violations[0].field, "page_token");
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(page_size(0).expect("ok"), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(10_000).expect("ok"), MAX_PAGE_SIZE);
        assert!(page_size(-1).is_err());
    }
}
