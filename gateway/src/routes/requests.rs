//! Partner requests (API.md § Requests and distributions, § Partner portal): the bank's list, get,
//! create on a partner's behalf, fulfil and cancel; the partner's own list, get, create and its
//! requestable items. Everything is answered by the request part.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use essentials_proto::common::v1 as common;
use essentials_proto::request::v1 as pb;
use essentials_proto::request::v1::request_service_client::RequestServiceClient;
use essentials_runtime::auth::{Principal, forward};
use essentials_runtime::{FieldViolation, ServiceError};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::convert::{Page, optional, parse_timestamp, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, IdempotencyKey};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_requests, create_request))
        .routes(routes!(get_request))
        .routes(routes!(fulfill_request))
        .routes(routes!(cancel_request))
        .routes(routes!(list_own_requests, create_own_request))
        .routes(routes!(get_own_request))
        .routes(routes!(requestable_items))
}

fn client(state: &AppState) -> RequestServiceClient<Channel> {
    RequestServiceClient::new(state.upstreams.request.clone())
}

fn status_name(status: pb::RequestStatus) -> &'static str {
    match status {
        pb::RequestStatus::Pending => "pending",
        pb::RequestStatus::Started => "started",
        pb::RequestStatus::Fulfilled => "fulfilled",
        pb::RequestStatus::Cancelled => "cancelled",
        pb::RequestStatus::Unspecified => "unspecified",
    }
}

fn parse_status(name: &str) -> Option<pb::RequestStatus> {
    [
        pb::RequestStatus::Pending,
        pb::RequestStatus::Started,
        pb::RequestStatus::Fulfilled,
        pb::RequestStatus::Cancelled,
    ]
    .into_iter()
    .find(|status| status_name(*status) == name)
}

fn type_name(kind: common::RequestType) -> &'static str {
    match kind {
        common::RequestType::Quantity => "quantity",
        common::RequestType::Individual => "individual",
        common::RequestType::Child => "child",
        common::RequestType::Unspecified => "unspecified",
    }
}

fn parse_type(field: &str, name: Option<&str>) -> Result<common::RequestType, ServiceError> {
    match name {
        None | Some("") => Ok(common::RequestType::Unspecified),
        Some("quantity") => Ok(common::RequestType::Quantity),
        Some("individual") => Ok(common::RequestType::Individual),
        Some("child") => Ok(common::RequestType::Child),
        Some(other) => Err(ServiceError::invalid(vec![FieldViolation::new(
            field,
            format!("`{other}` is not one of quantity, individual, child"),
        )])),
    }
}

fn delivery_method_name(method: common::DeliveryMethod) -> Option<&'static str> {
    match method {
        common::DeliveryMethod::PickUp => Some("pick_up"),
        common::DeliveryMethod::Delivery => Some("delivery"),
        common::DeliveryMethod::Shipped => Some("shipped"),
        common::DeliveryMethod::Unspecified => None,
    }
}

/// One requested item.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RequestItem)]
pub struct RequestItemDto {
    item_id: String,
    quantity: i32,
    item_name: String,
    /// Individual requests: the number of persons.
    #[serde(skip_serializing_if = "Option::is_none")]
    persons: Option<i32>,
}

/// A partner's request for items.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Request)]
pub struct RequestDto {
    /// null in the answer to a `validate_only` create (nothing was saved).
    id: Option<String>,
    partner_id: String,
    /// pending, started, fulfilled or cancelled.
    status: &'static str,
    /// quantity, individual or child.
    request_type: &'static str,
    items: Vec<RequestItemDto>,
    comments: String,
    requester_user_id: String,
    requester_name: String,
    requester_email: String,
    on_behalf_of_partner: bool,
    distribution_id: Option<String>,
    total_items: i32,
    quota: Option<i32>,
    quota_exceeded: bool,
    cancel_reason: Option<String>,
    cancelled_at: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<pb::Request> for RequestDto {
    fn from(request: pb::Request) -> Self {
        Self {
            status: status_name(request.status()),
            request_type: type_name(request.request_type()),
            cancelled_at: timestamp(request.cancelled_at.as_ref()),
            created_at: timestamp(request.created_at.as_ref()),
            updated_at: timestamp(request.updated_at.as_ref()),
            id: optional(request.id),
            partner_id: request.partner_id,
            items: request
                .items
                .into_iter()
                .map(|item| RequestItemDto {
                    item_id: item.item_id,
                    quantity: item.quantity,
                    item_name: item.item_name,
                    persons: (item.persons > 0).then_some(item.persons),
                })
                .collect(),
            comments: request.comments,
            requester_user_id: request.requester_user_id,
            requester_name: request.requester_name,
            requester_email: request.requester_email,
            on_behalf_of_partner: request.on_behalf_of_partner,
            distribution_id: optional(request.distribution_id),
            total_items: request.total_items,
            quota: request.quota,
            quota_exceeded: request.quota_exceeded,
            cancel_reason: optional(request.cancel_reason),
        }
    }
}

fn request_answer(request: Option<pb::Request>) -> Result<Json<RequestDto>, ApiError> {
    request
        .map(|request| Json(RequestDto::from(request)))
        .ok_or_else(|| ApiError::from(ServiceError::internal("no request in the answer")))
}

/// `{item_id, quantity}` of a distribution draft.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DistributionDraftLine)]
struct LineItemDto {
    item_id: String,
    quantity: i32,
}

/// A distribution prefilled from the request, to review and then create with
/// `POST /distributions`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DistributionDraft)]
struct DistributionDraftDto {
    partner_id: String,
    request_id: String,
    storage_location_id: Option<String>,
    issued_at: Option<String>,
    /// pick_up, delivery, shipped, or null when not chosen.
    delivery_method: Option<&'static str>,
    comment: String,
    agency_rep: String,
    line_items: Vec<LineItemDto>,
}

/// The request, now started, and a draft of the distribution that fulfils it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RequestFulfillment)]
struct FulfillDto {
    request: RequestDto,
    distribution_draft: Option<DistributionDraftDto>,
}

/// `?status=&partner_id=&request_type=&created_after=&created_before=&item_id=` plus paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only these statuses, comma-separated: pending, started, fulfilled, cancelled.
    status: Option<String>,
    /// Only this partner's requests.
    partner_id: Option<String>,
    /// Only this type: quantity, individual or child.
    request_type: Option<String>,
    /// Created at or after this moment (RFC 3339).
    created_after: Option<String>,
    /// Created before this moment (RFC 3339).
    created_before: Option<String>,
    /// Only the requests that ask for this item.
    item_id: Option<String>,
    /// Rows per page (default 50, at most 500).
    page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    page_token: Option<String>,
}

fn list_message(query: ListQuery) -> Result<pb::ListRequestsRequest, ServiceError> {
    let mut statuses = Vec::new();
    for name in query.status.iter().flat_map(|text| text.split(',')) {
        let status = parse_status(name.trim()).ok_or_else(|| {
            ServiceError::invalid(vec![FieldViolation::new(
                "status",
                format!("`{name}` is not one of pending, started, fulfilled, cancelled"),
            )])
        })?;
        statuses.push(status as i32);
    }
    Ok(pb::ListRequestsRequest {
        page_size: query
            .page_size
            .map_or(0, |size| i32::try_from(size).unwrap_or(i32::MAX)),
        page_token: query.page_token.unwrap_or_default(),
        statuses,
        partner_id: query.partner_id.unwrap_or_default(),
        request_type: parse_type("request_type", query.request_type.as_deref())? as i32,
        created_after: query
            .created_after
            .as_deref()
            .map(|text| parse_timestamp("created_after", text))
            .transpose()?,
        created_before: query
            .created_before
            .as_deref()
            .map(|text| parse_timestamp("created_before", text))
            .transpose()?,
        item_id: query.item_id.unwrap_or_default(),
    })
}

async fn list(
    state: &AppState,
    caller: &Principal,
    query: ListQuery,
) -> Result<Json<Page<RequestDto>>, ApiError> {
    let message = list_message(query)?;
    let answer = client(state)
        .list_requests(forward(caller, message))
        .await?
        .into_inner();
    Ok(Json(Page::new(
        answer.requests.into_iter().map(RequestDto::from).collect(),
        answer.next_page_token,
    )))
}

async fn get_one(
    state: &AppState,
    caller: &Principal,
    id: Uuid,
) -> Result<Json<RequestDto>, ApiError> {
    let answer = client(state)
        .get_request(forward(
            caller,
            pb::GetRequestRequest {
                request_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    request_answer(answer.request)
}

/// One item to request: `quantity`, or for individual requests `persons`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateRequestItem)]
struct LineBody {
    #[serde(default)]
    item_id: String,
    #[serde(default)]
    quantity: i32,
    /// Individual requests.
    #[serde(default)]
    persons: i32,
}

/// A new request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateRequest)]
struct CreateBody {
    /// Bank route: the partner to request for (required there); ignored by the partner portal.
    partner_id: Option<String>,
    #[serde(default)]
    items: Vec<LineBody>,
    #[serde(default)]
    comments: String,
    /// `quantity` (default), `individual` or `child` (child-based requests are not available yet:
    /// 400); the type must be enabled for the partner. The bank route enters quantity only.
    request_type: Option<String>,
    /// Check and compute totals, save nothing.
    #[serde(default)]
    validate_only: bool,
}

async fn create(
    state: &AppState,
    caller: &Principal,
    key: Option<String>,
    body: CreateBody,
    partner_id: String,
) -> Result<(StatusCode, Json<RequestDto>), ApiError> {
    let request_type = parse_type("request_type", body.request_type.as_deref())?;
    let validate_only = body.validate_only;
    let answer = client(state)
        .create_request(forward(
            caller,
            pb::CreateRequestRequest {
                partner_id,
                request_type: request_type as i32,
                items: body
                    .items
                    .into_iter()
                    .map(|line| pb::RequestedItem {
                        item_id: line.item_id,
                        quantity: line.quantity,
                        persons: line.persons,
                    })
                    .collect(),
                comments: body.comments,
                request_id: key.unwrap_or_default(),
                validate_only,
            },
        ))
        .await?
        .into_inner();
    let status = if validate_only {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, request_answer(answer.request)?))
}

// ---- bank roles ---------------------------------------------------------------------------------

/// The bank's requests (bank staff), filtered by status, partner, type, dates or item.
#[utoipa::path(get, path = "/requests", tag = "requests", params(ListQuery),
    responses((status = 200, description = "A page of requests", body = Page<RequestDto>)))]
async fn list_requests(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<RequestDto>>, ApiError> {
    caller.require_bank_staff()?;
    list(&state, &caller, query).await
}

/// Create a quantity request on a partner's behalf (org_admin; `partner_id` required); the
/// partner must be approved (else 409 PARTNER_NOT_APPROVED or PARTNER_DEACTIVATED).
#[utoipa::path(post, path = "/requests", tag = "requests", request_body = CreateBody,
    responses(
        (status = 201, description = "The request, saved", body = RequestDto),
        (status = 200,
            description = "With validate_only: the request as it would be, not saved (id null)",
            body = RequestDto),
    ))]
async fn create_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<RequestDto>), ApiError> {
    caller.require_org_admin()?;
    let partner_id = body.partner_id.clone().unwrap_or_default();
    create(&state, &caller, key, body, partner_id).await
}

/// One request (bank staff).
#[utoipa::path(get, path = "/requests/{id}", tag = "requests",
    params(("id" = Uuid, Path, description = "The request")),
    responses((status = 200, description = "The request", body = RequestDto)))]
async fn get_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<RequestDto>, ApiError> {
    caller.require_bank_staff()?;
    get_one(&state, &caller, id).await
}

/// Start fulfilling a request → started, with a distribution draft; from pending or started,
/// else 409 REQUEST_NOT_FULFILLABLE.
#[utoipa::path(post, path = "/requests/{id}/fulfill", tag = "requests",
    params(("id" = Uuid, Path, description = "The request")),
    responses((status = 200, description = "The request and its distribution draft",
        body = FulfillDto)))]
async fn fulfill_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<FulfillDto>, ApiError> {
    let answer = client(&state)
        .fulfill_request(forward(
            &caller,
            pb::FulfillRequestRequest {
                request_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    let request = request_answer(answer.request)?.0;
    let distribution_draft = answer.distribution_draft.map(|draft| DistributionDraftDto {
        delivery_method: delivery_method_name(draft.delivery_method()),
        issued_at: timestamp(draft.issued_at.as_ref()),
        partner_id: draft.partner_id,
        request_id: draft.request_id,
        storage_location_id: optional(draft.storage_location_id),
        comment: draft.comment,
        agency_rep: draft.agency_rep,
        line_items: draft
            .line_items
            .into_iter()
            .map(|line| LineItemDto {
                item_id: line.item_id,
                quantity: line.quantity,
            })
            .collect(),
    });
    Ok(Json(FulfillDto {
        request,
        distribution_draft,
    }))
}

/// Why the bank cancels the request (told to the partner).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CancelRequest)]
struct CancelBody {
    reason: String,
}

/// Cancel a request → cancelled (the partner is told the reason); from pending or started, else
/// 409 REQUEST_NOT_CANCELLABLE. A user of the request's own partner may withdraw it while it is
/// pending (started: 409; another partner's: 404).
#[utoipa::path(post, path = "/requests/{id}/cancel", tag = "requests",
    params(("id" = Uuid, Path, description = "The request")), request_body = CancelBody,
    responses((status = 200, description = "The request, now cancelled", body = RequestDto)))]
async fn cancel_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CancelBody>,
) -> Result<Json<RequestDto>, ApiError> {
    let answer = client(&state)
        .cancel_request(forward(
            &caller,
            pb::CancelRequestRequest {
                request_id: id.to_string(),
                reason: body.reason,
            },
        ))
        .await?
        .into_inner();
    request_answer(answer.request)
}

// ---- partner portal -----------------------------------------------------------------------------

/// The partner's own requests.
#[utoipa::path(get, path = "/partner/requests", tag = "partner portal", params(ListQuery),
    responses((status = 200, description = "A page of the partner's requests",
        body = Page<RequestDto>)))]
async fn list_own_requests(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<RequestDto>>, ApiError> {
    caller.require_partner()?;
    list(&state, &caller, query).await
}

/// Submit a request for the caller's partner (`partner_id` ignored); only an approved partner may
/// request (else 409 PARTNER_NOT_APPROVED or PARTNER_DEACTIVATED), and only an enabled type (409
/// REQUEST_TYPE_NOT_ENABLED).
#[utoipa::path(post, path = "/partner/requests", tag = "partner portal", request_body = CreateBody,
    responses(
        (status = 201, description = "The request, saved", body = RequestDto),
        (status = 200,
            description = "With validate_only: the request as it would be, not saved (id null)",
            body = RequestDto),
    ))]
async fn create_own_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<RequestDto>), ApiError> {
    let (_, partner_id) = caller.require_partner()?;
    create(&state, &caller, key, body, partner_id.to_string()).await
}

/// One of the partner's own requests.
#[utoipa::path(get, path = "/partner/requests/{id}", tag = "partner portal",
    params(("id" = Uuid, Path, description = "The request")),
    responses((status = 200, description = "The request", body = RequestDto)))]
async fn get_own_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<RequestDto>, ApiError> {
    caller.require_partner()?;
    get_one(&state, &caller, id).await
}

/// An item the partner may request.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RequestableItem)]
struct RequestableItemDto {
    id: String,
    name: String,
    item_category_id: Option<String>,
    distribution_quantity: i32,
    additional_info: Option<String>,
}

/// What the partner may request.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RequestableItems)]
struct RequestableItemsDto {
    items: Vec<RequestableItemDto>,
    /// The request types this partner may submit now: quantity, individual, child.
    enabled_request_types: Vec<&'static str>,
}

/// The items the partner may request, and the request types it may submit now.
#[utoipa::path(get, path = "/partner/requestable_items", tag = "partner portal",
    responses((status = 200, description = "The requestable items", body = RequestableItemsDto)))]
async fn requestable_items(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<RequestableItemsDto>, ApiError> {
    caller.require_partner()?;
    let answer = client(&state)
        .list_requestable_items(forward(&caller, pb::ListRequestableItemsRequest::default()))
        .await?
        .into_inner();
    Ok(Json(RequestableItemsDto {
        enabled_request_types: answer.enabled_request_types().map(type_name).collect(),
        items: answer
            .items
            .into_iter()
            .map(|item| RequestableItemDto {
                id: item.item_id,
                name: item.name,
                item_category_id: optional(item.item_category_id),
                distribution_quantity: item.distribution_quantity,
                additional_info: optional(item.additional_info),
            })
            .collect(),
    }))
}
