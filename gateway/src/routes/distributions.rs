//! Distributions (API.md § Requests and distributions) and the partner's own distributions
//! (`GET /partner/distributions`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use essentials_proto::common::v1::DeliveryMethod;
use essentials_proto::inventory::v1 as pb;
use essentials_proto::inventory::v1::distribution_service_client::DistributionServiceClient;
use essentials_proto::notification::v1::GetDistributionReceiptRequest;
use essentials_proto::notification::v1::notification_service_client::NotificationServiceClient;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::forward;
use essentials_runtime::http::inline_pdf;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::inventory::{LineItemDto, from_lines, optional_time, to_lines};
use crate::AppState;
use crate::convert::{Page, PageQuery, optional, patch_body, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, IdempotencyKey};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_distributions, create_distribution))
        .routes(routes!(
            get_distribution,
            update_distribution,
            reclaim_distribution
        ))
        .routes(routes!(complete_distribution))
        .routes(routes!(distribution_receipt))
        .routes(routes!(list_partner_distributions))
}

fn client(state: &AppState) -> DistributionServiceClient<Channel> {
    DistributionServiceClient::new(state.upstreams.inventory.clone())
}

/// How the partner gets a distribution.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DeliveryMethod)]
enum DeliveryMethodDto {
    PickUp,
    Delivery,
    Shipped,
}

impl DeliveryMethodDto {
    fn to_proto(self) -> i32 {
        (match self {
            Self::PickUp => DeliveryMethod::PickUp,
            Self::Delivery => DeliveryMethod::Delivery,
            Self::Shipped => DeliveryMethod::Shipped,
        }) as i32
    }

    fn from_proto(value: i32) -> Self {
        match DeliveryMethod::try_from(value).unwrap_or(DeliveryMethod::PickUp) {
            DeliveryMethod::Delivery => Self::Delivery,
            DeliveryMethod::Shipped => Self::Shipped,
            DeliveryMethod::PickUp | DeliveryMethod::Unspecified => Self::PickUp,
        }
    }
}

/// An item whose bank-wide stock fell below its minimum or recommended quantity.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LowStockWarning)]
struct LowStockDto {
    item_id: String,
    item_name: String,
    bank_wide_quantity: i32,
    on_hand_minimum_quantity: i32,
    on_hand_recommended_quantity: i32,
    below_minimum: bool,
}

/// Stock going out to a partner.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Distribution)]
struct DistributionDto {
    id: String,
    partner_id: String,
    storage_location_id: String,
    issued_at: Option<String>,
    delivery_method: DeliveryMethodDto,
    /// In cents; null unless `delivery_method` is shipped.
    shipping_cost: Option<i64>,
    comment: String,
    agency_rep: String,
    /// The request this distribution fulfils, if any.
    request_id: Option<String>,
    /// scheduled or complete.
    state: &'static str,
    reminder_email_enabled: bool,
    line_items: Vec<LineItemDto>,
    total_quantity: i32,
    total_value_in_cents: i64,
    user_id: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// Only in the answers to create and update, and only when some item runs low.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    low_stock_warnings: Vec<LowStockDto>,
}

fn distribution_dto(
    distribution: pb::Distribution,
    warnings: Vec<pb::LowStockWarning>,
) -> DistributionDto {
    let state = match pb::DistributionState::try_from(distribution.state).unwrap_or_default() {
        pb::DistributionState::Complete => "complete",
        _ => "scheduled",
    };
    let delivery_method = DeliveryMethodDto::from_proto(distribution.delivery_method);
    DistributionDto {
        id: distribution.id,
        partner_id: distribution.partner_id,
        storage_location_id: distribution.storage_location_id,
        issued_at: timestamp(distribution.issued_at.as_ref()),
        shipping_cost: matches!(delivery_method, DeliveryMethodDto::Shipped)
            .then_some(distribution.shipping_cost_in_cents),
        delivery_method,
        comment: distribution.comment,
        agency_rep: distribution.agency_rep,
        request_id: optional(distribution.request_id),
        state,
        reminder_email_enabled: distribution.reminder_email_enabled,
        line_items: from_lines(distribution.line_items),
        total_quantity: distribution.total_quantity,
        total_value_in_cents: distribution.total_value_in_cents,
        user_id: optional(distribution.user_id),
        created_at: timestamp(distribution.created_at.as_ref()),
        updated_at: timestamp(distribution.updated_at.as_ref()),
        low_stock_warnings: warnings
            .into_iter()
            .map(|warning| LowStockDto {
                item_id: warning.item_id,
                item_name: warning.item_name,
                bank_wide_quantity: warning.bank_wide_quantity,
                on_hand_minimum_quantity: warning.on_hand_minimum_quantity,
                on_hand_recommended_quantity: warning.on_hand_recommended_quantity,
                below_minimum: warning.below_minimum,
            })
            .collect(),
    }
}

fn answer(
    distribution: Option<pb::Distribution>,
    warnings: Vec<pb::LowStockWarning>,
) -> Result<Json<DistributionDto>, ApiError> {
    distribution
        .map(|distribution| Json(distribution_dto(distribution, warnings)))
        .ok_or_else(|| ApiError::from(ServiceError::internal("no distribution in the answer")))
}

/// A distribution's writable fields (create, or PATCH with the keys to change). `shipping_cost`
/// is in cents (integer money, as everywhere in the API); `issued_at` is RFC 3339.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DistributionFields)]
struct DistributionBody {
    partner_id: Option<String>,
    storage_location_id: Option<String>,
    issued_at: Option<String>,
    delivery_method: Option<DeliveryMethodDto>,
    shipping_cost: Option<i64>,
    comment: Option<String>,
    agency_rep: Option<String>,
    request_id: Option<String>,
    reminder_email_enabled: Option<bool>,
    line_items: Option<Vec<LineItemDto>>,
}

impl DistributionBody {
    fn into_proto(self, id: String) -> Result<pb::Distribution, ApiError> {
        Ok(pb::Distribution {
            id,
            partner_id: self.partner_id.unwrap_or_default(),
            storage_location_id: self.storage_location_id.unwrap_or_default(),
            issued_at: optional_time("issued_at", self.issued_at.as_deref())?,
            delivery_method: self.delivery_method.map_or(0, DeliveryMethodDto::to_proto),
            shipping_cost_in_cents: self.shipping_cost.unwrap_or(0),
            comment: self.comment.unwrap_or_default(),
            agency_rep: self.agency_rep.unwrap_or_default(),
            request_id: self.request_id.unwrap_or_default(),
            reminder_email_enabled: self.reminder_email_enabled.unwrap_or(false),
            line_items: to_lines(self.line_items.unwrap_or_default()),
            ..pb::Distribution::default()
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this partner's (ignored by /partner/distributions).
    partner_id: Option<Uuid>,
    /// Only the ones from this storage location.
    storage_location_id: Option<Uuid>,
    /// true: issued today or later and not complete; on /partner/distributions false: issued
    /// before today.
    upcoming: Option<bool>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

fn list_request(query: &ListQuery) -> pb::ListDistributionsRequest {
    pb::ListDistributionsRequest {
        page_size: query
            .page
            .page_size
            .map_or(0, |size| i32::try_from(size).unwrap_or(i32::MAX)),
        page_token: query.page.page_token.clone().unwrap_or_default(),
        partner_id: query
            .partner_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        storage_location_id: query
            .storage_location_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        upcoming: query.upcoming.unwrap_or(false),
        ..pb::ListDistributionsRequest::default()
    }
}

async fn list(
    state: &AppState,
    caller: &essentials_runtime::auth::Principal,
    request: pb::ListDistributionsRequest,
) -> Result<Json<Page<DistributionDto>>, ApiError> {
    let answer = client(state)
        .list_distributions(forward(caller, request))
        .await?
        .into_inner();
    Ok(Json(Page::new(
        answer
            .distributions
            .into_iter()
            .map(|distribution| distribution_dto(distribution, Vec::new()))
            .collect(),
        answer.next_page_token,
    )))
}

/// The bank's distributions.
#[utoipa::path(get, path = "/distributions", tag = "distributions", params(ListQuery, PageQuery),
    responses((status = 200, description = "A page of distributions",
        body = Page<DistributionDto>)))]
async fn list_distributions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<DistributionDto>>, ApiError> {
    // Partner users have `/partner/distributions`.
    caller.require_bank_staff()?;
    list(&state, &caller, list_request(&query)).await
}

/// The partner's own distributions: `upcoming=true` for issued today or later and not complete,
/// `upcoming=false` for the ones issued before today, absent for all.
#[utoipa::path(get, path = "/partner/distributions", tag = "partner portal",
    params(ListQuery, PageQuery),
    responses((status = 200, description = "A page of the partner's distributions",
        body = Page<DistributionDto>)))]
async fn list_partner_distributions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<DistributionDto>>, ApiError> {
    caller.require_partner()?;
    let mut request = list_request(&query);
    request.partner_id = String::new();
    if query.upcoming == Some(false) {
        let now = time::OffsetDateTime::now_utc();
        let start_of_today = now.replace_time(time::Time::MIDNIGHT);
        request.issued_before = Some(prost_types::Timestamp {
            seconds: start_of_today.unix_timestamp(),
            nanos: 0,
        });
    }
    list(&state, &caller, request).await
}

/// Create a distribution (state scheduled): its lines leave the location's stock; too little is
/// 409 INSUFFICIENT_STOCK; with `request_id`, that request must still be open (else 409
/// REQUEST_ALREADY_FULFILLED or REQUEST_NOT_FULFILLABLE).
#[utoipa::path(post, path = "/distributions", tag = "distributions",
    request_body = DistributionBody,
    responses((status = 201, description = "The distribution, with any low-stock warnings",
        body = DistributionDto)))]
async fn create_distribution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<DistributionBody>,
) -> Result<(StatusCode, Json<DistributionDto>), ApiError> {
    let distribution = body.into_proto(String::new())?;
    let created = client(&state)
        .create_distribution(forward(
            &caller,
            pb::CreateDistributionRequest {
                distribution: Some(distribution),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await
        .map_err(body_fields)?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        answer(created.distribution, created.low_stock_warnings)?,
    ))
}

/// One distribution.
#[utoipa::path(get, path = "/distributions/{id}", tag = "distributions",
    params(("id" = Uuid, Path, description = "The distribution")),
    responses((status = 200, description = "The distribution", body = DistributionDto)))]
async fn get_distribution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DistributionDto>, ApiError> {
    let found = client(&state)
        .get_distribution(forward(
            &caller,
            pb::GetDistributionRequest {
                distribution_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    answer(found.distribution, Vec::new())
}

/// Change some of a distribution's fields (the keys sent; at least one); stock follows the new
/// lines; a complete or past one only by org_admin (else 403).
#[utoipa::path(patch, path = "/distributions/{id}", tag = "distributions",
    params(("id" = Uuid, Path, description = "The distribution")), request_body = DistributionBody,
    responses((status = 200,
        description = "The distribution as it now is, with any low-stock warnings",
        body = DistributionDto)))]
async fn update_distribution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    crate::extract::ApiBody(body): crate::extract::ApiBody,
) -> Result<Json<DistributionDto>, ApiError> {
    let (patch, keys) = patch_body::<DistributionBody>(&body)?;
    let paths: Vec<String> = keys
        .into_iter()
        .map(|key| match key.as_str() {
            "shipping_cost" => "shipping_cost_in_cents".to_owned(),
            _ => key,
        })
        .collect();
    if paths.is_empty() {
        return Err(
            ServiceError::invalid(vec![essentials_runtime::FieldViolation::new(
                "body",
                "name at least one field to change",
            )])
            .into(),
        );
    }
    let updated = client(&state)
        .update_distribution(forward(
            &caller,
            pb::UpdateDistributionRequest {
                distribution: Some(patch.into_proto(id.to_string())?),
                update_mask: Some(prost_types::FieldMask { paths }),
            },
        ))
        .await
        .map_err(body_fields)?
        .into_inner();
    answer(updated.distribution, updated.low_stock_warnings)
}

/// Mark a distribution complete → complete; one already complete is 409
/// DISTRIBUTION_ALREADY_COMPLETE.
#[utoipa::path(post, path = "/distributions/{id}/complete", tag = "distributions",
    params(("id" = Uuid, Path, description = "The distribution")),
    responses((status = 200, description = "The distribution, now complete",
        body = DistributionDto)))]
async fn complete_distribution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DistributionDto>, ApiError> {
    let completed = client(&state)
        .complete_distribution(forward(
            &caller,
            pb::CompleteDistributionRequest {
                distribution_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    answer(completed.distribution, Vec::new())
}

/// The distribution's receipt, the PDF its e-mail attaches (rendered by the notification part
/// from the current distribution): bank staff for their bank's, a partner user for its own.
#[utoipa::path(get, path = "/distributions/{id}/receipt", tag = "distributions",
    params(("id" = Uuid, Path, description = "The distribution")),
    responses((status = 200, description = "The receipt", content_type = "application/pdf",
        body = Vec<u8>)))]
async fn distribution_receipt(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let receipt = NotificationServiceClient::new(state.upstreams.notification.clone())
        .get_distribution_receipt(forward(
            &caller,
            GetDistributionReceiptRequest {
                distribution_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    Ok(inline_pdf(&receipt.file_name, receipt.pdf))
}

/// Reclaim a distribution: its stock goes back to the location and it is deleted; 200 with the
/// distribution as it was.
#[utoipa::path(delete, path = "/distributions/{id}", tag = "distributions",
    params(("id" = Uuid, Path, description = "The distribution")),
    responses((status = 200, description = "The distribution as it was", body = DistributionDto)))]
async fn reclaim_distribution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DistributionDto>, ApiError> {
    let reclaimed = client(&state)
        .reclaim_distribution(forward(
            &caller,
            pb::ReclaimDistributionRequest {
                distribution_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    answer(reclaimed.distribution, Vec::new())
}

/// The inventory part names fields by their gRPC path (`distribution.issued_at`); the body has
/// them at its top level (`issued_at`, `line_items[0].quantity`).
fn body_fields(status: tonic::Status) -> ApiError {
    let mut error = ApiError::from(status);
    for violation in &mut error.0.field_violations {
        if let Some(field) = violation.field.strip_prefix("distribution.") {
            violation.field = match field {
                "shipping_cost_in_cents" => "shipping_cost".to_owned(),
                other => other.to_owned(),
            };
        }
    }
    error
}
