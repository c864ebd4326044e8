//! Distributions (API.md § Requests and distributions) and the partner's own distributions
//! (`GET /partner/distributions`).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use essentials_proto::common::v1::DeliveryMethod;
use essentials_proto::inventory::v1 as pb;
use essentials_proto::inventory::v1::distribution_service_client::DistributionServiceClient;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::forward;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use uuid::Uuid;

use super::inventory::{LineItemDto, from_lines, optional_time, to_lines};
use crate::AppState;
use crate::convert::{Page, PageQuery, optional, patch_body, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, IdempotencyKey};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/distributions",
            get(list_distributions).post(create_distribution),
        )
        .route(
            "/distributions/{id}",
            get(get_distribution)
                .patch(update_distribution)
                .delete(reclaim_distribution),
        )
        .route("/distributions/{id}/complete", post(complete_distribution))
        .route("/partner/distributions", get(list_partner_distributions))
}

fn client(state: &AppState) -> DistributionServiceClient<Channel> {
    DistributionServiceClient::new(state.upstreams.inventory.clone())
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

#[derive(Debug, Serialize)]
struct LowStockDto {
    item_id: String,
    item_name: String,
    bank_wide_quantity: i32,
    on_hand_minimum_quantity: i32,
    on_hand_recommended_quantity: i32,
    below_minimum: bool,
}

#[derive(Debug, Serialize)]
struct DistributionDto {
    id: String,
    partner_id: String,
    storage_location_id: String,
    issued_at: Option<String>,
    delivery_method: DeliveryMethodDto,
    shipping_cost: Option<i64>,
    comment: String,
    agency_rep: String,
    request_id: Option<String>,
    state: &'static str,
    reminder_email_enabled: bool,
    line_items: Vec<LineItemDto>,
    total_quantity: i32,
    total_value_in_cents: i64,
    user_id: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
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

/// `shipping_cost` is in cents (integer money, as everywhere in the API).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Deserialize)]
struct ListQuery {
    partner_id: Option<Uuid>,
    storage_location_id: Option<Uuid>,
    upcoming: Option<bool>,
    #[serde(flatten)]
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

async fn list_distributions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<DistributionDto>>, ApiError> {
    list(&state, &caller, list_request(&query)).await
}

/// The partner's own distributions: `upcoming=true` for issued today or later and not complete,
/// `upcoming=false` for the ones issued before today, absent for all.
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
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        answer(created.distribution, created.low_stock_warnings)?,
    ))
}

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

async fn update_distribution(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
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
        .await?
        .into_inner();
    answer(updated.distribution, updated.low_stock_warnings)
}

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

/// DELETE: reclaim; 200 with the distribution as it was.
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
