//! Stock: balances, the ledger, and the documents that move stock (API.md § Catalog and stock).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use essentials_proto::common::v1::LineItem;
use essentials_proto::inventory::v1 as pb;
use essentials_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use essentials_runtime::auth::forward;
use essentials_runtime::{FieldViolation, ServiceError};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::convert::{Page, PageQuery, optional, parse_timestamp, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, IdempotencyKey};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_inventory))
        .routes(routes!(list_ledger))
        .routes(routes!(list_donations, create_donation))
        .routes(routes!(get_donation, delete_donation))
        .routes(routes!(create_purchase))
        .routes(routes!(get_purchase))
        .routes(routes!(create_adjustment))
        .routes(routes!(get_adjustment))
        .routes(routes!(create_transfer))
        .routes(routes!(get_transfer, delete_transfer))
        .routes(routes!(create_audit))
        .routes(routes!(get_audit, delete_audit))
        .routes(routes!(finalize_audit))
}

fn client(state: &AppState) -> InventoryServiceClient<Channel> {
    InventoryServiceClient::new(state.upstreams.inventory.clone())
}

fn missing(what: &str) -> ApiError {
    ApiError::from(ServiceError::internal(format!("no {what} in the answer")))
}

/// `{item_id, quantity}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LineItem)]
pub struct LineItemDto {
    pub item_id: String,
    pub quantity: i32,
}

pub fn to_lines(lines: Vec<LineItemDto>) -> Vec<LineItem> {
    lines
        .into_iter()
        .map(|line| LineItem {
            item_id: line.item_id,
            quantity: line.quantity,
        })
        .collect()
}

pub fn from_lines(lines: Vec<LineItem>) -> Vec<LineItemDto> {
    lines
        .into_iter()
        .map(|line| LineItemDto {
            item_id: line.item_id,
            quantity: line.quantity,
        })
        .collect()
}

/// An optional RFC 3339 field as a protobuf timestamp.
pub fn optional_time(
    field: &str,
    text: Option<&str>,
) -> Result<Option<prost_types::Timestamp>, ApiError> {
    text.map(|text| parse_timestamp(field, text))
        .transpose()
        .map_err(ApiError::from)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InventoryQuery {
    /// Only this storage location.
    storage_location_id: Option<Uuid>,
    /// Only this item.
    item_id: Option<Uuid>,
    /// One balance per item over every location (`storage_location_id` is then null).
    bank_wide: Option<bool>,
    /// Include balances of zero (default false).
    include_zero: Option<bool>,
    /// Balances as of this moment (RFC 3339), from the ledger.
    as_of: Option<String>,
}

/// How many of an item are on hand at a location (or bank-wide).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StockBalance)]
struct BalanceDto {
    /// null for a bank-wide balance.
    storage_location_id: Option<String>,
    item_id: String,
    quantity: i32,
}

/// Stock balances (`{"items":[…]}`, not paged).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StockBalances)]
struct BalancesDto {
    items: Vec<BalanceDto>,
}

/// Stock balances now, or as of a past moment (`as_of`, from the ledger).
#[utoipa::path(get, path = "/inventory", tag = "inventory", params(InventoryQuery),
    responses((status = 200, description = "The balances", body = BalancesDto)))]
async fn get_inventory(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<InventoryQuery>,
) -> Result<Json<BalancesDto>, ApiError> {
    let location = query
        .storage_location_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    let item = query.item_id.map(|id| id.to_string()).unwrap_or_default();
    let balances = match optional_time("as_of", query.as_of.as_deref())? {
        None => {
            client(&state)
                .get_inventory(forward(
                    &caller,
                    pb::GetInventoryRequest {
                        storage_location_id: location,
                        item_id: item,
                        bank_wide: query.bank_wide.unwrap_or(false),
                        include_zero: query.include_zero.unwrap_or(false),
                    },
                ))
                .await?
                .into_inner()
                .balances
        }
        Some(as_of) => {
            client(&state)
                .get_inventory_as_of(forward(
                    &caller,
                    pb::GetInventoryAsOfRequest {
                        as_of: Some(as_of),
                        storage_location_id: location,
                        item_id: item,
                        bank_wide: query.bank_wide.unwrap_or(false),
                        include_zero: query.include_zero.unwrap_or(false),
                    },
                ))
                .await?
                .into_inner()
                .balances
        }
    };
    Ok(Json(BalancesDto {
        items: balances
            .into_iter()
            .map(|balance| BalanceDto {
                storage_location_id: optional(balance.storage_location_id),
                item_id: balance.item_id,
                quantity: balance.quantity,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LedgerQuery {
    /// Only this storage location.
    storage_location_id: Option<Uuid>,
    /// Only this item.
    item_id: Option<Uuid>,
    /// Only the entries of this document (donation, purchase, adjustment, transfer, audit,
    /// distribution).
    source_id: Option<Uuid>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// One change to a balance, and the document that made it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LedgerEntry)]
struct LedgerEntryDto {
    id: String,
    storage_location_id: String,
    item_id: String,
    quantity_change: i32,
    quantity_after: i32,
    /// donation, donation_deleted, purchase, purchase_deleted, adjustment, transfer,
    /// transfer_deleted, audit, distribution, distribution_updated or distribution_reclaimed.
    source_type: &'static str,
    source_id: String,
    effective_at: Option<String>,
    recorded_at: Option<String>,
    user_id: Option<String>,
}

fn source_type_name(value: i32) -> &'static str {
    use pb::LedgerSourceType as P;
    match P::try_from(value).unwrap_or(P::Unspecified) {
        P::Unspecified => "unspecified",
        P::Donation => "donation",
        P::DonationDeleted => "donation_deleted",
        P::Purchase => "purchase",
        P::PurchaseDeleted => "purchase_deleted",
        P::Adjustment => "adjustment",
        P::Transfer => "transfer",
        P::TransferDeleted => "transfer_deleted",
        P::Audit => "audit",
        P::Distribution => "distribution",
        P::DistributionUpdated => "distribution_updated",
        P::DistributionReclaimed => "distribution_reclaimed",
    }
}

/// The stock ledger: every change to a balance, newest first.
#[utoipa::path(get, path = "/inventory/ledger", tag = "inventory", params(LedgerQuery, PageQuery),
    responses((status = 200, description = "A page of ledger entries",
        body = Page<LedgerEntryDto>)))]
async fn list_ledger(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<LedgerQuery>,
) -> Result<Json<Page<LedgerEntryDto>>, ApiError> {
    let answer = client(&state)
        .list_ledger_entries(forward(
            &caller,
            pb::ListLedgerEntriesRequest {
                page_size: query
                    .page
                    .page_size
                    .map_or(0, |size| i32::try_from(size).unwrap_or(i32::MAX)),
                page_token: query.page.page_token.clone().unwrap_or_default(),
                storage_location_id: query
                    .storage_location_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                item_id: query.item_id.map(|id| id.to_string()).unwrap_or_default(),
                source_id: query.source_id.map(|id| id.to_string()).unwrap_or_default(),
                ..pb::ListLedgerEntriesRequest::default()
            },
        ))
        .await?
        .into_inner();
    Ok(Json(Page::new(
        answer
            .entries
            .into_iter()
            .map(|entry| LedgerEntryDto {
                id: entry.id,
                storage_location_id: entry.storage_location_id,
                item_id: entry.item_id,
                quantity_change: entry.quantity_change,
                quantity_after: entry.quantity_after,
                source_type: source_type_name(entry.source_type),
                source_id: entry.source_id,
                effective_at: timestamp(entry.effective_at.as_ref()),
                recorded_at: timestamp(entry.recorded_at.as_ref()),
                user_id: optional(entry.user_id),
            })
            .collect(),
        answer.next_page_token,
    )))
}

/// Where a donation came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DonationSource)]
enum DonationSourceDto {
    ProductDrive,
    Manufacturer,
    DonationSite,
    Misc,
}

impl DonationSourceDto {
    fn to_proto(self) -> i32 {
        use pb::DonationSource as P;
        (match self {
            Self::ProductDrive => P::ProductDrive,
            Self::Manufacturer => P::Manufacturer,
            Self::DonationSite => P::DonationSite,
            Self::Misc => P::Misc,
        }) as i32
    }

    fn from_proto(value: i32) -> Self {
        use pb::DonationSource as P;
        match P::try_from(value).unwrap_or(P::Misc) {
            P::ProductDrive => Self::ProductDrive,
            P::Manufacturer => Self::Manufacturer,
            P::DonationSite => Self::DonationSite,
            P::Misc | P::Unspecified => Self::Misc,
        }
    }
}

/// A donation received into one storage location; `issued_at` is RFC 3339 (default now).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateDonation)]
struct DonationBody {
    storage_location_id: String,
    issued_at: Option<String>,
    source: Option<DonationSourceDto>,
    source_name: Option<String>,
    money_raised_in_cents: Option<i64>,
    comment: Option<String>,
    line_items: Vec<LineItemDto>,
}

/// A donation.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Donation)]
struct DonationDto {
    id: String,
    storage_location_id: String,
    issued_at: Option<String>,
    source: DonationSourceDto,
    source_name: Option<String>,
    money_raised_in_cents: i64,
    comment: String,
    line_items: Vec<LineItemDto>,
    total_value_in_cents: i64,
    user_id: Option<String>,
    created_at: Option<String>,
}

fn donation_answer(donation: Option<pb::Donation>) -> Result<Json<DonationDto>, ApiError> {
    let donation = donation.ok_or_else(|| missing("donation"))?;
    Ok(Json(DonationDto {
        id: donation.id,
        storage_location_id: donation.storage_location_id,
        issued_at: timestamp(donation.issued_at.as_ref()),
        source: DonationSourceDto::from_proto(donation.source),
        source_name: optional(donation.source_name),
        money_raised_in_cents: donation.money_raised_in_cents,
        comment: donation.comment,
        line_items: from_lines(donation.line_items),
        total_value_in_cents: donation.total_value_in_cents,
        user_id: optional(donation.user_id),
        created_at: timestamp(donation.created_at.as_ref()),
    }))
}

/// Record a donation: its lines are added to the location's stock.
#[utoipa::path(post, path = "/donations", tag = "inventory", request_body = DonationBody,
    responses((status = 201, description = "The donation", body = DonationDto)))]
async fn create_donation(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<DonationBody>,
) -> Result<(StatusCode, Json<DonationDto>), ApiError> {
    let issued_at = optional_time("issued_at", body.issued_at.as_deref())?;
    let answer = client(&state)
        .create_donation(forward(
            &caller,
            pb::CreateDonationRequest {
                donation: Some(pb::Donation {
                    storage_location_id: body.storage_location_id,
                    issued_at,
                    source: body.source.map_or(0, DonationSourceDto::to_proto),
                    source_name: body.source_name.unwrap_or_default(),
                    money_raised_in_cents: body.money_raised_in_cents.unwrap_or(0),
                    comment: body.comment.unwrap_or_default(),
                    line_items: to_lines(body.line_items),
                    ..pb::Donation::default()
                }),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, donation_answer(answer.donation)?))
}

/// One donation.
#[utoipa::path(get, path = "/donations/{id}", tag = "inventory",
    params(("id" = Uuid, Path, description = "The donation")),
    responses((status = 200, description = "The donation", body = DonationDto)))]
async fn get_donation(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DonationDto>, ApiError> {
    let answer = client(&state)
        .get_donation(forward(
            &caller,
            pb::GetDonationRequest {
                donation_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    donation_answer(answer.donation)
}

/// The bank's donations.
#[utoipa::path(get, path = "/donations", tag = "inventory", params(PageQuery),
    responses((status = 200, description = "A page of donations", body = Page<DonationDto>)))]
async fn list_donations(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<DonationDto>>, ApiError> {
    let answer = client(&state)
        .list_donations(forward(
            &caller,
            pb::ListDonationsRequest {
                page_size: query
                    .page_size
                    .map_or(0, |size| i32::try_from(size).unwrap_or(i32::MAX)),
                page_token: query.page_token.clone().unwrap_or_default(),
                ..pb::ListDonationsRequest::default()
            },
        ))
        .await?
        .into_inner();
    let mut items = Vec::with_capacity(answer.donations.len());
    for donation in answer.donations {
        items.push(donation_answer(Some(donation))?.0);
    }
    Ok(Json(Page::new(items, answer.next_page_token)))
}

/// Delete a donation and take its stock back out (org_admin); too little stock left is 409
/// INSUFFICIENT_STOCK.
#[utoipa::path(delete, path = "/donations/{id}", tag = "inventory",
    params(("id" = Uuid, Path, description = "The donation")),
    responses((status = 204, description = "Deleted")))]
async fn delete_donation(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    client(&state)
        .delete_donation(forward(
            &caller,
            pb::DeleteDonationRequest {
                donation_id: id.to_string(),
            },
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A purchase received into one storage location; `issued_at` is RFC 3339 (default now).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreatePurchase)]
struct PurchaseBody {
    storage_location_id: String,
    issued_at: Option<String>,
    vendor: Option<String>,
    amount_spent_in_cents: Option<i64>,
    comment: Option<String>,
    line_items: Vec<LineItemDto>,
}

/// A purchase.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Purchase)]
struct PurchaseDto {
    id: String,
    storage_location_id: String,
    issued_at: Option<String>,
    vendor: String,
    amount_spent_in_cents: i64,
    comment: String,
    line_items: Vec<LineItemDto>,
    total_value_in_cents: i64,
    user_id: Option<String>,
    created_at: Option<String>,
}

fn purchase_answer(purchase: Option<pb::Purchase>) -> Result<Json<PurchaseDto>, ApiError> {
    let purchase = purchase.ok_or_else(|| missing("purchase"))?;
    Ok(Json(PurchaseDto {
        id: purchase.id,
        storage_location_id: purchase.storage_location_id,
        issued_at: timestamp(purchase.issued_at.as_ref()),
        vendor: purchase.vendor,
        amount_spent_in_cents: purchase.amount_spent_in_cents,
        comment: purchase.comment,
        line_items: from_lines(purchase.line_items),
        total_value_in_cents: purchase.total_value_in_cents,
        user_id: optional(purchase.user_id),
        created_at: timestamp(purchase.created_at.as_ref()),
    }))
}

/// Record a purchase: its lines are added to the location's stock.
#[utoipa::path(post, path = "/purchases", tag = "inventory", request_body = PurchaseBody,
    responses((status = 201, description = "The purchase", body = PurchaseDto)))]
async fn create_purchase(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<PurchaseBody>,
) -> Result<(StatusCode, Json<PurchaseDto>), ApiError> {
    let issued_at = optional_time("issued_at", body.issued_at.as_deref())?;
    let answer = client(&state)
        .create_purchase(forward(
            &caller,
            pb::CreatePurchaseRequest {
                purchase: Some(pb::Purchase {
                    storage_location_id: body.storage_location_id,
                    issued_at,
                    vendor: body.vendor.unwrap_or_default(),
                    amount_spent_in_cents: body.amount_spent_in_cents.unwrap_or(0),
                    comment: body.comment.unwrap_or_default(),
                    line_items: to_lines(body.line_items),
                    ..pb::Purchase::default()
                }),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, purchase_answer(answer.purchase)?))
}

/// One purchase.
#[utoipa::path(get, path = "/purchases/{id}", tag = "inventory",
    params(("id" = Uuid, Path, description = "The purchase")),
    responses((status = 200, description = "The purchase", body = PurchaseDto)))]
async fn get_purchase(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PurchaseDto>, ApiError> {
    let answer = client(&state)
        .get_purchase(forward(
            &caller,
            pb::GetPurchaseRequest {
                purchase_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    purchase_answer(answer.purchase)
}

/// A correction of stock at one location: each line's quantity is added (negative to remove).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateAdjustment)]
struct AdjustmentBody {
    storage_location_id: String,
    comment: String,
    line_items: Vec<LineItemDto>,
}

/// An adjustment.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Adjustment)]
struct AdjustmentDto {
    id: String,
    storage_location_id: String,
    comment: String,
    line_items: Vec<LineItemDto>,
    user_id: Option<String>,
    created_at: Option<String>,
}

fn adjustment_answer(adjustment: Option<pb::Adjustment>) -> Result<Json<AdjustmentDto>, ApiError> {
    let adjustment = adjustment.ok_or_else(|| missing("adjustment"))?;
    Ok(Json(AdjustmentDto {
        id: adjustment.id,
        storage_location_id: adjustment.storage_location_id,
        comment: adjustment.comment,
        line_items: from_lines(adjustment.line_items),
        user_id: optional(adjustment.user_id),
        created_at: timestamp(adjustment.created_at.as_ref()),
    }))
}

/// Adjust stock at a location; taking out more than is there is 409 INSUFFICIENT_STOCK.
#[utoipa::path(post, path = "/adjustments", tag = "inventory", request_body = AdjustmentBody,
    responses((status = 201, description = "The adjustment", body = AdjustmentDto)))]
async fn create_adjustment(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<AdjustmentBody>,
) -> Result<(StatusCode, Json<AdjustmentDto>), ApiError> {
    let answer = client(&state)
        .create_adjustment(forward(
            &caller,
            pb::CreateAdjustmentRequest {
                adjustment: Some(pb::Adjustment {
                    storage_location_id: body.storage_location_id,
                    comment: body.comment,
                    line_items: to_lines(body.line_items),
                    ..pb::Adjustment::default()
                }),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, adjustment_answer(answer.adjustment)?))
}

/// One adjustment.
#[utoipa::path(get, path = "/adjustments/{id}", tag = "inventory",
    params(("id" = Uuid, Path, description = "The adjustment")),
    responses((status = 200, description = "The adjustment", body = AdjustmentDto)))]
async fn get_adjustment(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AdjustmentDto>, ApiError> {
    let answer = client(&state)
        .get_adjustment(forward(
            &caller,
            pb::GetAdjustmentRequest {
                adjustment_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    adjustment_answer(answer.adjustment)
}

/// Stock moved from one storage location to another.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateTransfer)]
struct TransferBody {
    from_storage_location_id: String,
    to_storage_location_id: String,
    comment: Option<String>,
    line_items: Vec<LineItemDto>,
}

/// A transfer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Transfer)]
struct TransferDto {
    id: String,
    from_storage_location_id: String,
    to_storage_location_id: String,
    comment: String,
    line_items: Vec<LineItemDto>,
    user_id: Option<String>,
    created_at: Option<String>,
}

fn transfer_answer(transfer: Option<pb::Transfer>) -> Result<Json<TransferDto>, ApiError> {
    let transfer = transfer.ok_or_else(|| missing("transfer"))?;
    Ok(Json(TransferDto {
        id: transfer.id,
        from_storage_location_id: transfer.from_storage_location_id,
        to_storage_location_id: transfer.to_storage_location_id,
        comment: transfer.comment,
        line_items: from_lines(transfer.line_items),
        user_id: optional(transfer.user_id),
        created_at: timestamp(transfer.created_at.as_ref()),
    }))
}

/// Move stock between two locations; moving more than is there is 409 INSUFFICIENT_STOCK.
#[utoipa::path(post, path = "/transfers", tag = "inventory", request_body = TransferBody,
    responses((status = 201, description = "The transfer", body = TransferDto)))]
async fn create_transfer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<(StatusCode, Json<TransferDto>), ApiError> {
    let answer = client(&state)
        .create_transfer(forward(
            &caller,
            pb::CreateTransferRequest {
                transfer: Some(pb::Transfer {
                    from_storage_location_id: body.from_storage_location_id,
                    to_storage_location_id: body.to_storage_location_id,
                    comment: body.comment.unwrap_or_default(),
                    line_items: to_lines(body.line_items),
                    ..pb::Transfer::default()
                }),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, transfer_answer(answer.transfer)?))
}

/// One transfer.
#[utoipa::path(get, path = "/transfers/{id}", tag = "inventory",
    params(("id" = Uuid, Path, description = "The transfer")),
    responses((status = 200, description = "The transfer", body = TransferDto)))]
async fn get_transfer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<TransferDto>, ApiError> {
    let answer = client(&state)
        .get_transfer(forward(
            &caller,
            pb::GetTransferRequest {
                transfer_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    transfer_answer(answer.transfer)
}

/// Delete a transfer and move its stock back; refused with 409 AUDITED_SINCE when a finalized
/// audit has counted its items since, or INSUFFICIENT_STOCK.
#[utoipa::path(delete, path = "/transfers/{id}", tag = "inventory",
    params(("id" = Uuid, Path, description = "The transfer")),
    responses((status = 204, description = "Deleted")))]
async fn delete_transfer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    client(&state)
        .delete_transfer(forward(
            &caller,
            pb::DeleteTransferRequest {
                transfer_id: id.to_string(),
            },
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A count of stock at one location (at least one line): the quantities counted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateAudit)]
struct AuditBody {
    storage_location_id: String,
    line_items: Vec<LineItemDto>,
}

/// An audit.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Audit)]
struct AuditDto {
    id: String,
    storage_location_id: String,
    /// in_progress, confirmed or finalized.
    status: &'static str,
    line_items: Vec<LineItemDto>,
    user_id: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    finalized_at: Option<String>,
}

fn audit_answer(audit: Option<pb::Audit>) -> Result<Json<AuditDto>, ApiError> {
    let audit = audit.ok_or_else(|| missing("audit"))?;
    let status = match pb::AuditStatus::try_from(audit.status).unwrap_or_default() {
        pb::AuditStatus::Confirmed => "confirmed",
        pb::AuditStatus::Finalized => "finalized",
        pb::AuditStatus::InProgress | pb::AuditStatus::Unspecified => "in_progress",
    };
    Ok(Json(AuditDto {
        id: audit.id,
        storage_location_id: audit.storage_location_id,
        status,
        line_items: from_lines(audit.line_items),
        user_id: optional(audit.user_id),
        created_at: timestamp(audit.created_at.as_ref()),
        updated_at: timestamp(audit.updated_at.as_ref()),
        finalized_at: timestamp(audit.finalized_at.as_ref()),
    }))
}

/// Start an audit of a location (status in_progress); it changes no stock until finalized.
#[utoipa::path(post, path = "/audits", tag = "inventory", request_body = AuditBody,
    responses((status = 201, description = "The audit", body = AuditDto)))]
async fn create_audit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<AuditBody>,
) -> Result<(StatusCode, Json<AuditDto>), ApiError> {
    if body.line_items.is_empty() {
        return Err(ServiceError::invalid(vec![FieldViolation::new(
            "line_items",
            "must count at least one item",
        )])
        .into());
    }
    let answer = client(&state)
        .create_audit(forward(
            &caller,
            pb::CreateAuditRequest {
                audit: Some(pb::Audit {
                    storage_location_id: body.storage_location_id,
                    line_items: to_lines(body.line_items),
                    ..pb::Audit::default()
                }),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, audit_answer(answer.audit)?))
}

/// One audit.
#[utoipa::path(get, path = "/audits/{id}", tag = "inventory",
    params(("id" = Uuid, Path, description = "The audit")),
    responses((status = 200, description = "The audit", body = AuditDto)))]
async fn get_audit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AuditDto>, ApiError> {
    let answer = client(&state)
        .get_audit(forward(
            &caller,
            pb::GetAuditRequest {
                audit_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    audit_answer(answer.audit)
}

/// Finalize an audit (org_admin) → finalized: the location's balances become the counted
/// quantities; an already finalized audit is 409 AUDIT_FINALIZED.
#[utoipa::path(post, path = "/audits/{id}/finalize", tag = "inventory",
    params(("id" = Uuid, Path, description = "The audit")),
    responses((status = 200, description = "The audit, now finalized", body = AuditDto)))]
async fn finalize_audit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AuditDto>, ApiError> {
    let answer = client(&state)
        .finalize_audit(forward(
            &caller,
            pb::FinalizeAuditRequest {
                audit_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    audit_answer(answer.audit)
}

/// Delete an audit that is not finalized (org_admin), else 409 AUDIT_FINALIZED.
#[utoipa::path(delete, path = "/audits/{id}", tag = "inventory",
    params(("id" = Uuid, Path, description = "The audit")),
    responses((status = 204, description = "Deleted")))]
async fn delete_audit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    client(&state)
        .delete_audit(forward(
            &caller,
            pb::DeleteAuditRequest {
                audit_id: id.to_string(),
            },
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
