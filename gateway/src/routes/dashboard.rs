//! The bank dashboard, its live stream (server-sent events) and the e-mail log (API.md § Dashboard,
//! e-mail log), served by the notification part.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use essentials_proto::notification::v1 as pb;
use essentials_proto::notification::v1::dashboard_service_client::DashboardServiceClient;
use essentials_proto::notification::v1::notification_service_client::NotificationServiceClient;
use essentials_runtime::auth::forward;
use essentials_runtime::{FieldViolation, ServiceError};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::convert::{Page, optional, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiQuery, Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_dashboard))
        .routes(routes!(rebuild_dashboard))
        .routes(routes!(stream_dashboard))
        .routes(routes!(list_emails))
}

/// A pending or started request.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DashboardOutstandingRequest)]
pub struct OutstandingRequestDto {
    pub request_id: String,
    pub partner_id: String,
    pub partner_name: String,
    /// `Name <email>` of the submitting user.
    pub requester: String,
    pub comments: String,
    pub created_at: Option<String>,
}

/// A partner waiting for the bank's review.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DashboardPartnerApproval)]
pub struct PartnerApprovalDto {
    pub partner_id: String,
    pub name: String,
    pub primary_contact_name: String,
    pub primary_contact_email: String,
    pub review_requested_at: Option<String>,
}

/// An item whose bank-wide stock is below its minimum or recommended quantity.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DashboardLowInventory)]
pub struct LowInventoryDto {
    pub item_id: String,
    pub name: String,
    pub quantity: i32,
    pub minimum: i32,
    pub recommended: i32,
    pub below_minimum: bool,
}

/// What the bank should look at now.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Dashboard)]
pub struct DashboardDto {
    pub outstanding_requests: Vec<OutstandingRequestDto>,
    /// Every pending and started request (the list above shows up to 25).
    pub outstanding_requests_count: i32,
    pub partner_approvals: Vec<PartnerApprovalDto>,
    pub low_inventory: Vec<LowInventoryDto>,
    pub upcoming_distributions_count: i32,
    /// Grows with each change.
    pub version: i64,
    pub updated_at: Option<String>,
}

impl From<pb::Dashboard> for DashboardDto {
    fn from(dashboard: pb::Dashboard) -> Self {
        Self {
            outstanding_requests: dashboard
                .outstanding_requests
                .into_iter()
                .map(|request| OutstandingRequestDto {
                    created_at: timestamp(request.created_at.as_ref()),
                    request_id: request.request_id,
                    partner_id: request.partner_id,
                    partner_name: request.partner_name,
                    requester: request.requester,
                    comments: request.comments,
                })
                .collect(),
            outstanding_requests_count: dashboard.outstanding_requests_count,
            partner_approvals: dashboard
                .partner_approvals
                .into_iter()
                .map(|partner| PartnerApprovalDto {
                    review_requested_at: timestamp(partner.review_requested_at.as_ref()),
                    partner_id: partner.partner_id,
                    name: partner.name,
                    primary_contact_name: partner.primary_contact_name,
                    primary_contact_email: partner.primary_contact_email,
                })
                .collect(),
            low_inventory: dashboard
                .low_inventory
                .into_iter()
                .map(|item| LowInventoryDto {
                    item_id: item.item_id,
                    name: item.name,
                    quantity: item.quantity,
                    minimum: item.minimum,
                    recommended: item.recommended,
                    below_minimum: item.below_minimum,
                })
                .collect(),
            upcoming_distributions_count: dashboard.upcoming_distributions_count,
            version: dashboard.version,
            updated_at: timestamp(dashboard.updated_at.as_ref()),
        }
    }
}

/// The bank's dashboard: outstanding requests, partners to review, low inventory, upcoming
/// distributions.
#[utoipa::path(get, path = "/dashboard", tag = "dashboard",
    responses((status = 200, description = "The dashboard", body = DashboardDto)))]
async fn get_dashboard(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<DashboardDto>, ApiError> {
    let mut client = DashboardServiceClient::new(state.upstreams.notification.clone());
    let response = client
        .get_dashboard(forward(&principal, pb::GetDashboardRequest {}))
        .await?
        .into_inner();
    Ok(Json(response.dashboard.unwrap_or_default().into()))
}

/// Rebuild the bank's dashboard from the parts that own its data (org_admin), e.g. after the
/// projection was lost; answers the rebuilt dashboard. Live watchers are pushed the new state.
#[utoipa::path(post, path = "/dashboard/rebuild", tag = "dashboard",
    responses((status = 200, description = "The rebuilt dashboard", body = DashboardDto)))]
async fn rebuild_dashboard(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<DashboardDto>, ApiError> {
    let mut client = DashboardServiceClient::new(state.upstreams.notification.clone());
    let response = client
        .rebuild_dashboard(forward(
            &principal,
            pb::RebuildDashboardRequest {
                organization_id: String::new(),
            },
        ))
        .await?
        .into_inner();
    Ok(Json(response.dashboard.unwrap_or_default().into()))
}

/// The dashboard live, as server-sent events: a `dashboard` event with the whole dashboard at
/// once, then one each time it changes.
///
/// `text/event-stream`: each event's `data` is a Dashboard (JSON) and its `id` the dashboard's
/// version; a keep-alive comment every 15 s. The stream ends when the notification part ends it
/// (clients reconnect, as EventSource does by itself).
#[utoipa::path(get, path = "/dashboard/stream", tag = "dashboard",
    responses((status = 200,
        description = "`dashboard` events: `id` the version, `data` the Dashboard as JSON",
        content_type = "text/event-stream", body = String)))]
async fn stream_dashboard(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut client = DashboardServiceClient::new(state.upstreams.notification.clone());
    let updates = client
        .watch_dashboard(forward(&principal, pb::WatchDashboardRequest {}))
        .await?
        .into_inner();
    let events = updates
        .take_while(|update| std::future::ready(update.is_ok()))
        .filter_map(|update| async move {
            let dashboard = update.ok()?.dashboard?;
            let version = dashboard.version;
            let event = Event::default()
                .event("dashboard")
                .id(version.to_string())
                .json_data(DashboardDto::from(dashboard))
                .ok()?;
            Some(Ok(event))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EmailQuery {
    /// Only the e-mails to this address.
    pub to: Option<String>,
    /// Only the e-mails of this event type.
    pub event_type: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub status: Option<String>,
    /// Rows per page (default 50, at most 500).
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

/// An e-mail the bank's events sent (or tried to).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Email)]
pub struct EmailDto {
    pub id: String,
    pub to: String,
    pub cc: Vec<String>,
    pub subject: String,
    pub event_type: String,
    /// `pending`, `sent` or `failed`.
    pub status: &'static str,
    pub sent_at: Option<String>,
    pub created_at: Option<String>,
    pub attempts: i32,
    /// The last delivery error, if any.
    pub error: Option<String>,
}

fn status_name(status: pb::EmailStatus) -> &'static str {
    match status {
        pb::EmailStatus::Pending | pb::EmailStatus::Unspecified => "pending",
        pb::EmailStatus::Sent => "sent",
        pb::EmailStatus::Failed => "failed",
    }
}

/// The e-mail log of the bank, filtered by recipient, event type or status.
#[utoipa::path(get, path = "/emails", tag = "dashboard", params(EmailQuery),
    responses((status = 200, description = "A page of e-mails", body = Page<EmailDto>)))]
async fn list_emails(
    State(state): State<AppState>,
    Caller(principal): Caller,
    ApiQuery(query): ApiQuery<EmailQuery>,
) -> Result<Json<Page<EmailDto>>, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => pb::EmailStatus::Unspecified,
        Some("pending") => pb::EmailStatus::Pending,
        Some("sent") => pb::EmailStatus::Sent,
        Some("failed") => pb::EmailStatus::Failed,
        Some(_) => {
            return Err(ServiceError::invalid(vec![FieldViolation::new(
                "status",
                "must be one of pending, sent, failed",
            )])
            .into());
        }
    };
    let request = pb::ListEmailsRequest {
        page_size: i32::try_from(query.page_size.unwrap_or(0)).unwrap_or(i32::MAX),
        page_token: query.page_token.unwrap_or_default(),
        to: query.to.unwrap_or_default(),
        event_type: query.event_type.unwrap_or_default(),
        status: status as i32,
    };
    let mut client = NotificationServiceClient::new(state.upstreams.notification.clone());
    let response = client
        .list_emails(forward(&principal, request))
        .await?
        .into_inner();
    let items = response
        .emails
        .into_iter()
        .map(|email| EmailDto {
            status: status_name(email.status()),
            sent_at: timestamp(email.sent_at.as_ref()),
            created_at: timestamp(email.created_at.as_ref()),
            id: email.id,
            to: email.to,
            cc: email.cc,
            subject: email.subject,
            event_type: email.event_type,
            attempts: email.attempts,
            error: optional(email.error),
        })
        .collect();
    Ok(Json(Page::new(items, response.next_page_token)))
}
