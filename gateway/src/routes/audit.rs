//! The bank's audit trail (GET /audit_events): every part keeps the entries of its own data, and
//! this merges the four, newest first, into one paged list.

use axum::Json;
use axum::extract::State;
use essentials_proto::common::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::convert::{Page, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiQuery, Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_events))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this user's (or service account's) actions.
    pub actor_id: Option<String>,
    /// The bank, for a super admin; anyone else reads their own.
    pub organization_id: Option<String>,
    /// Rows per page (default 50, at most 500).
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

/// One call that changed the bank's data.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventDto {
    pub id: String,
    pub organization_id: String,
    /// The user or service account who acted, and the role its token acted in.
    pub actor_id: String,
    pub actor_role: String,
    pub service_account: bool,
    /// The part that owns the changed data: partner, request, inventory or notification.
    pub part: String,
    /// The gRPC method the change came through (`essentials.inventory.v1.CatalogService/CreateItem`).
    pub method: String,
    /// The `X-Request-Id` of the HTTP request, for finding its logs and traces.
    pub request_id: String,
    /// The events the change published, e.g. `distribution.created`.
    pub events: Vec<String>,
    /// What was changed, as `kind:id`, where the change names it.
    pub subjects: Vec<String>,
    pub at: Option<String>,
}

/// The bank's audit trail: who changed what, when, through which request. Bank admins only.
#[utoipa::path(get, path = "/audit_events", tag = "organizations", params(AuditQuery),
    responses((status = 200, description = "A page of entries, newest first", body = Page<AuditEventDto>)))]
async fn list_audit_events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEventDto>>, ApiError> {
    let request = pb::ListAuditEventsRequest {
        organization_id: query.organization_id.unwrap_or_default(),
        page_size: i32::try_from(query.page_size.unwrap_or(0)).unwrap_or(i32::MAX),
        page_token: query.page_token.unwrap_or_default(),
        actor_id: query.actor_id.unwrap_or_default(),
    };
    let upstreams = &state.upstreams;
    let merged = essentials_runtime::audit::read_merged(
        &[
            upstreams.partner.clone(),
            upstreams.request.clone(),
            upstreams.inventory.clone(),
            upstreams.notification.clone(),
        ],
        &caller,
        request,
    )
    .await?;
    let items = merged
        .events
        .into_iter()
        .map(|event| AuditEventDto {
            at: timestamp(event.at.as_ref()),
            id: event.id,
            organization_id: event.organization_id,
            actor_id: event.actor_id,
            actor_role: event.actor_role,
            service_account: event.service_account,
            part: event.part,
            method: event.method,
            request_id: event.request_id,
            events: event.events,
            subjects: event.subjects,
        })
        .collect();
    Ok(Json(Page::new(items, merged.next_page_token)))
}
