//! Items, item categories and storage locations (API.md § Catalog and stock).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use essentials_proto::inventory::v1 as pb;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::inventory::v1::storage_location_service_client::StorageLocationServiceClient;
use essentials_runtime::auth::forward;
use essentials_runtime::{FieldViolation, ServiceError};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::convert::{Page, PageQuery, optional, patch_body, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, IdempotencyKey};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items, create_item))
        .routes(routes!(get_item, update_item))
        .routes(routes!(list_categories, create_category))
        .routes(routes!(get_category, update_category, delete_category))
        .routes(routes!(list_locations, create_location))
        .routes(routes!(get_location, update_location))
        .routes(routes!(deactivate_location))
        .routes(routes!(reactivate_location))
}

fn catalog(state: &AppState) -> CatalogServiceClient<Channel> {
    CatalogServiceClient::new(state.upstreams.inventory.clone())
}

fn locations(state: &AppState) -> StorageLocationServiceClient<Channel> {
    StorageLocationServiceClient::new(state.upstreams.inventory.clone())
}

fn page_size(query: &PageQuery) -> i32 {
    query
        .page_size
        .map_or(0, |size| i32::try_from(size).unwrap_or(i32::MAX))
}

fn missing(what: &str) -> ApiError {
    ApiError::from(ServiceError::internal(format!("no {what} in the answer")))
}

fn nothing_to_change() -> ApiError {
    ApiError::from(ServiceError::invalid(vec![FieldViolation::new(
        "body",
        "name at least one field to change",
    )]))
}

/// The category an item is reported under.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReportingCategory)]
pub enum ReportingCategoryDto {
    AdultIncontinence,
    ClothDiapers,
    DisposableDiapers,
    Pads,
    PeriodLiners,
    PeriodOther,
    PeriodUnderwear,
    Tampons,
    Other,
}

impl ReportingCategoryDto {
    fn to_proto(self) -> i32 {
        use pb::ReportingCategory as P;
        (match self {
            Self::AdultIncontinence => P::AdultIncontinence,
            Self::ClothDiapers => P::ClothDiapers,
            Self::DisposableDiapers => P::DisposableDiapers,
            Self::Pads => P::Pads,
            Self::PeriodLiners => P::PeriodLiners,
            Self::PeriodOther => P::PeriodOther,
            Self::PeriodUnderwear => P::PeriodUnderwear,
            Self::Tampons => P::Tampons,
            Self::Other => P::Other,
        }) as i32
    }

    fn from_proto(value: i32) -> Option<Self> {
        use pb::ReportingCategory as P;
        Some(match P::try_from(value).ok()? {
            P::Unspecified => return None,
            P::AdultIncontinence => Self::AdultIncontinence,
            P::ClothDiapers => Self::ClothDiapers,
            P::DisposableDiapers => Self::DisposableDiapers,
            P::Pads => Self::Pads,
            P::PeriodLiners => Self::PeriodLiners,
            P::PeriodOther => Self::PeriodOther,
            P::PeriodUnderwear => Self::PeriodUnderwear,
            P::Tampons => Self::Tampons,
            P::Other => Self::Other,
        })
    }
}

/// An item as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Item)]
pub struct ItemDto {
    id: String,
    name: String,
    item_category_id: Option<String>,
    reporting_category: Option<ReportingCategoryDto>,
    partner_key: Option<String>,
    value_in_cents: i64,
    package_size: Option<i32>,
    distribution_quantity: i32,
    on_hand_minimum_quantity: i32,
    on_hand_recommended_quantity: i32,
    visible_to_partners: bool,
    active: bool,
    additional_info: String,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<pb::Item> for ItemDto {
    fn from(item: pb::Item) -> Self {
        Self {
            id: item.id,
            name: item.name,
            item_category_id: optional(item.item_category_id),
            reporting_category: ReportingCategoryDto::from_proto(item.reporting_category),
            partner_key: optional(item.partner_key),
            value_in_cents: item.value_in_cents,
            package_size: item.package_size,
            distribution_quantity: item.distribution_quantity.unwrap_or(50),
            on_hand_minimum_quantity: item.on_hand_minimum_quantity.unwrap_or(0),
            on_hand_recommended_quantity: item.on_hand_recommended_quantity.unwrap_or(0),
            visible_to_partners: item.visible_to_partners.unwrap_or(true),
            active: item.active.unwrap_or(true),
            additional_info: item.additional_info,
            created_at: timestamp(item.created_at.as_ref()),
            updated_at: timestamp(item.updated_at.as_ref()),
        }
    }
}

fn item_answer(item: Option<pb::Item>) -> Result<Json<ItemDto>, ApiError> {
    item.map(|item| Json(ItemDto::from(item)))
        .ok_or_else(|| missing("item"))
}

/// The writable fields of an item (create: name required; PATCH: the fields present, at least
/// one).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ItemFields)]
struct ItemBody {
    name: Option<String>,
    item_category_id: Option<String>,
    reporting_category: Option<ReportingCategoryDto>,
    partner_key: Option<String>,
    value_in_cents: Option<i64>,
    package_size: Option<i32>,
    distribution_quantity: Option<i32>,
    on_hand_minimum_quantity: Option<i32>,
    on_hand_recommended_quantity: Option<i32>,
    visible_to_partners: Option<bool>,
    active: Option<bool>,
    additional_info: Option<String>,
}

impl ItemBody {
    fn into_proto(self, id: String) -> pb::Item {
        pb::Item {
            id,
            name: self.name.unwrap_or_default(),
            item_category_id: self.item_category_id.unwrap_or_default(),
            reporting_category: self
                .reporting_category
                .map_or(0, ReportingCategoryDto::to_proto),
            partner_key: self.partner_key.unwrap_or_default(),
            value_in_cents: self.value_in_cents.unwrap_or(0),
            package_size: self.package_size,
            distribution_quantity: self.distribution_quantity,
            on_hand_minimum_quantity: self.on_hand_minimum_quantity,
            on_hand_recommended_quantity: self.on_hand_recommended_quantity,
            visible_to_partners: self.visible_to_partners,
            active: self.active,
            additional_info: self.additional_info.unwrap_or_default(),
            ..pb::Item::default()
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ItemListQuery {
    /// Only the items of this category.
    item_category_id: Option<String>,
    /// Include deactivated items (default false).
    include_inactive: Option<bool>,
    /// Only the items partners may (true) or may not (false) request.
    visible_to_partners: Option<bool>,
    /// Only the items whose name contains this text.
    name_contains: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// The bank's items (active ones unless `include_inactive`).
#[utoipa::path(get, path = "/items", tag = "catalog", params(ItemListQuery, PageQuery),
    responses((status = 200, description = "A page of items", body = Page<ItemDto>)))]
async fn list_items(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ItemListQuery>,
) -> Result<Json<Page<ItemDto>>, ApiError> {
    let answer = catalog(&state)
        .list_items(forward(
            &caller,
            pb::ListItemsRequest {
                page_size: page_size(&query.page),
                page_token: query.page.page_token.clone().unwrap_or_default(),
                item_category_id: query.item_category_id.unwrap_or_default(),
                include_inactive: query.include_inactive.unwrap_or(false),
                visible_to_partners: query.visible_to_partners,
                name_contains: query.name_contains.unwrap_or_default(),
                reporting_category: 0,
            },
        ))
        .await?
        .into_inner();
    Ok(Json(Page::new(
        answer.items.into_iter().map(ItemDto::from).collect(),
        answer.next_page_token,
    )))
}

/// Add an item (`name` required, unique in the bank, else 409 NAME_TAKEN).
#[utoipa::path(post, path = "/items", tag = "catalog", request_body = ItemBody,
    responses((status = 201, description = "The new item", body = ItemDto)))]
async fn create_item(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<ItemBody>,
) -> Result<(StatusCode, Json<ItemDto>), ApiError> {
    if body.name.is_none() {
        return Err(ServiceError::invalid(vec![FieldViolation::new("name", "is required")]).into());
    }
    let answer = catalog(&state)
        .create_item(forward(
            &caller,
            pb::CreateItemRequest {
                item: Some(body.into_proto(String::new())),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, item_answer(answer.item)?))
}

/// One item.
#[utoipa::path(get, path = "/items/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "The item")),
    responses((status = 200, description = "The item", body = ItemDto)))]
async fn get_item(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ItemDto>, ApiError> {
    let answer = catalog(&state)
        .get_item(forward(
            &caller,
            pb::GetItemRequest {
                item_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    item_answer(answer.item)
}

/// Change some of an item's fields (the keys sent; at least one); deactivating an item in
/// stock is 409 ITEM_IN_STOCK.
#[utoipa::path(patch, path = "/items/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "The item")), request_body = ItemBody,
    responses((status = 200, description = "The item as it now is", body = ItemDto)))]
async fn update_item(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    crate::extract::ApiBody(body): crate::extract::ApiBody,
) -> Result<Json<ItemDto>, ApiError> {
    let (patch, keys) = patch_body::<ItemBody>(&body)?;
    if keys.is_empty() {
        return Err(nothing_to_change());
    }
    let answer = catalog(&state)
        .update_item(forward(
            &caller,
            pb::UpdateItemRequest {
                item: Some(patch.into_proto(id.to_string())),
                update_mask: Some(prost_types::FieldMask { paths: keys }),
            },
        ))
        .await?
        .into_inner();
    item_answer(answer.item)
}

/// A category of items (partner groups are allowed to request by category).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ItemCategory)]
pub struct ItemCategoryDto {
    id: String,
    name: String,
    description: String,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<pb::ItemCategory> for ItemCategoryDto {
    fn from(category: pb::ItemCategory) -> Self {
        Self {
            id: category.id,
            name: category.name,
            description: category.description,
            created_at: timestamp(category.created_at.as_ref()),
            updated_at: timestamp(category.updated_at.as_ref()),
        }
    }
}

fn category_answer(category: Option<pb::ItemCategory>) -> Result<Json<ItemCategoryDto>, ApiError> {
    category
        .map(|category| Json(ItemCategoryDto::from(category)))
        .ok_or_else(|| missing("item category"))
}

/// The writable fields of an item category (PATCH: the fields present, at least one).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ItemCategoryFields)]
struct CategoryBody {
    name: Option<String>,
    description: Option<String>,
}

/// The bank's item categories.
#[utoipa::path(get, path = "/item_categories", tag = "catalog", params(PageQuery),
    responses((status = 200, description = "A page of item categories",
        body = Page<ItemCategoryDto>)))]
async fn list_categories(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<ItemCategoryDto>>, ApiError> {
    let answer = catalog(&state)
        .list_item_categories(forward(
            &caller,
            pb::ListItemCategoriesRequest {
                page_size: page_size(&query),
                page_token: query.page_token.clone().unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok(Json(Page::new(
        answer
            .item_categories
            .into_iter()
            .map(ItemCategoryDto::from)
            .collect(),
        answer.next_page_token,
    )))
}

/// Add an item category (the name is unique in the bank, else 409 NAME_TAKEN).
#[utoipa::path(post, path = "/item_categories", tag = "catalog", request_body = CategoryBody,
    responses((status = 201, description = "The new item category", body = ItemCategoryDto)))]
async fn create_category(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<CategoryBody>,
) -> Result<(StatusCode, Json<ItemCategoryDto>), ApiError> {
    let answer = catalog(&state)
        .create_item_category(forward(
            &caller,
            pb::CreateItemCategoryRequest {
                item_category: Some(pb::ItemCategory {
                    name: body.name.unwrap_or_default(),
                    description: body.description.unwrap_or_default(),
                    ..pb::ItemCategory::default()
                }),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, category_answer(answer.item_category)?))
}

/// One item category.
#[utoipa::path(get, path = "/item_categories/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "The item category")),
    responses((status = 200, description = "The item category", body = ItemCategoryDto)))]
async fn get_category(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ItemCategoryDto>, ApiError> {
    let answer = catalog(&state)
        .get_item_category(forward(
            &caller,
            pb::GetItemCategoryRequest {
                item_category_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    category_answer(answer.item_category)
}

/// Change an item category's name or description (the keys sent; at least one).
#[utoipa::path(patch, path = "/item_categories/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "The item category")), request_body = CategoryBody,
    responses((status = 200, description = "The item category as it now is",
        body = ItemCategoryDto)))]
async fn update_category(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    crate::extract::ApiBody(body): crate::extract::ApiBody,
) -> Result<Json<ItemCategoryDto>, ApiError> {
    let (patch, keys) = patch_body::<CategoryBody>(&body)?;
    if keys.is_empty() {
        return Err(nothing_to_change());
    }
    let answer = catalog(&state)
        .update_item_category(forward(
            &caller,
            pb::UpdateItemCategoryRequest {
                item_category: Some(pb::ItemCategory {
                    id: id.to_string(),
                    name: patch.name.unwrap_or_default(),
                    description: patch.description.unwrap_or_default(),
                    ..pb::ItemCategory::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths: keys }),
            },
        ))
        .await?
        .into_inner();
    category_answer(answer.item_category)
}

/// Delete an item category.
#[utoipa::path(delete, path = "/item_categories/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "The item category")),
    responses((status = 204, description = "Deleted")))]
async fn delete_category(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    catalog(&state)
        .delete_item_category(forward(
            &caller,
            pb::DeleteItemCategoryRequest {
                item_category_id: id.to_string(),
            },
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The kind of space a storage location is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = WarehouseType)]
enum WarehouseTypeDto {
    Residential,
    SelfStorage,
    Commercial,
    DonatedSpace,
}

impl WarehouseTypeDto {
    fn to_proto(self) -> i32 {
        use pb::WarehouseType as P;
        (match self {
            Self::Residential => P::Residential,
            Self::SelfStorage => P::SelfStorage,
            Self::Commercial => P::Commercial,
            Self::DonatedSpace => P::DonatedSpace,
        }) as i32
    }

    fn from_proto(value: i32) -> Option<Self> {
        use pb::WarehouseType as P;
        Some(match P::try_from(value).ok()? {
            P::Unspecified => return None,
            P::Residential => Self::Residential,
            P::SelfStorage => Self::SelfStorage,
            P::Commercial => Self::Commercial,
            P::DonatedSpace => Self::DonatedSpace,
        })
    }
}

/// A place where the bank keeps stock.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StorageLocation)]
pub struct StorageLocationDto {
    id: String,
    name: String,
    address: String,
    warehouse_type: Option<WarehouseTypeDto>,
    square_footage: Option<i32>,
    time_zone: String,
    active: bool,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<pb::StorageLocation> for StorageLocationDto {
    fn from(location: pb::StorageLocation) -> Self {
        Self {
            id: location.id,
            name: location.name,
            address: location.address,
            warehouse_type: WarehouseTypeDto::from_proto(location.warehouse_type),
            square_footage: location.square_footage,
            time_zone: location.time_zone,
            active: location.active,
            created_at: timestamp(location.created_at.as_ref()),
            updated_at: timestamp(location.updated_at.as_ref()),
        }
    }
}

fn location_answer(
    location: Option<pb::StorageLocation>,
) -> Result<Json<StorageLocationDto>, ApiError> {
    location
        .map(|location| Json(StorageLocationDto::from(location)))
        .ok_or_else(|| missing("storage location"))
}

/// The writable fields of a storage location (PATCH: the fields present, at least one).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = StorageLocationFields)]
struct LocationBody {
    name: Option<String>,
    address: Option<String>,
    warehouse_type: Option<WarehouseTypeDto>,
    square_footage: Option<i32>,
    time_zone: Option<String>,
}

impl LocationBody {
    fn into_proto(self, id: String) -> pb::StorageLocation {
        pb::StorageLocation {
            id,
            name: self.name.unwrap_or_default(),
            address: self.address.unwrap_or_default(),
            warehouse_type: self.warehouse_type.map_or(0, WarehouseTypeDto::to_proto),
            square_footage: self.square_footage,
            time_zone: self.time_zone.unwrap_or_default(),
            ..pb::StorageLocation::default()
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LocationListQuery {
    /// Include deactivated locations (default false).
    include_inactive: Option<bool>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// The bank's storage locations (active ones unless `include_inactive`).
#[utoipa::path(get, path = "/storage_locations", tag = "catalog",
    params(LocationListQuery, PageQuery),
    responses((status = 200, description = "A page of storage locations",
        body = Page<StorageLocationDto>)))]
async fn list_locations(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<LocationListQuery>,
) -> Result<Json<Page<StorageLocationDto>>, ApiError> {
    let answer = locations(&state)
        .list_storage_locations(forward(
            &caller,
            pb::ListStorageLocationsRequest {
                page_size: page_size(&query.page),
                page_token: query.page.page_token.clone().unwrap_or_default(),
                include_inactive: query.include_inactive.unwrap_or(false),
            },
        ))
        .await?
        .into_inner();
    Ok(Json(Page::new(
        answer
            .storage_locations
            .into_iter()
            .map(StorageLocationDto::from)
            .collect(),
        answer.next_page_token,
    )))
}

/// Add a storage location.
#[utoipa::path(post, path = "/storage_locations", tag = "catalog", request_body = LocationBody,
    responses((status = 201, description = "The new storage location", body = StorageLocationDto)))]
async fn create_location(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<LocationBody>,
) -> Result<(StatusCode, Json<StorageLocationDto>), ApiError> {
    let answer = locations(&state)
        .create_storage_location(forward(
            &caller,
            pb::CreateStorageLocationRequest {
                storage_location: Some(body.into_proto(String::new())),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        location_answer(answer.storage_location)?,
    ))
}

/// One storage location.
#[utoipa::path(get, path = "/storage_locations/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "The storage location")),
    responses((status = 200, description = "The storage location", body = StorageLocationDto)))]
async fn get_location(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<StorageLocationDto>, ApiError> {
    let answer = locations(&state)
        .get_storage_location(forward(
            &caller,
            pb::GetStorageLocationRequest {
                storage_location_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    location_answer(answer.storage_location)
}

/// Change some of a storage location's fields (the keys sent; at least one).
#[utoipa::path(patch, path = "/storage_locations/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "The storage location")), request_body = LocationBody,
    responses((status = 200, description = "The storage location as it now is",
        body = StorageLocationDto)))]
async fn update_location(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    crate::extract::ApiBody(body): crate::extract::ApiBody,
) -> Result<Json<StorageLocationDto>, ApiError> {
    let (patch, keys) = patch_body::<LocationBody>(&body)?;
    if keys.is_empty() {
        return Err(nothing_to_change());
    }
    let answer = locations(&state)
        .update_storage_location(forward(
            &caller,
            pb::UpdateStorageLocationRequest {
                storage_location: Some(patch.into_proto(id.to_string())),
                update_mask: Some(prost_types::FieldMask { paths: keys }),
            },
        ))
        .await?
        .into_inner();
    location_answer(answer.storage_location)
}

/// Deactivate a storage location → active = false; one that still holds stock is 409
/// STORAGE_LOCATION_NOT_EMPTY.
#[utoipa::path(post, path = "/storage_locations/{id}/deactivate", tag = "catalog",
    params(("id" = Uuid, Path, description = "The storage location")),
    responses((status = 200, description = "The storage location, now inactive",
        body = StorageLocationDto)))]
async fn deactivate_location(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<StorageLocationDto>, ApiError> {
    let answer = locations(&state)
        .deactivate_storage_location(forward(
            &caller,
            pb::DeactivateStorageLocationRequest {
                storage_location_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    location_answer(answer.storage_location)
}

/// Reactivate a storage location → active = true.
#[utoipa::path(post, path = "/storage_locations/{id}/reactivate", tag = "catalog",
    params(("id" = Uuid, Path, description = "The storage location")),
    responses((status = 200, description = "The storage location, now active",
        body = StorageLocationDto)))]
async fn reactivate_location(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<StorageLocationDto>, ApiError> {
    let answer = locations(&state)
        .reactivate_storage_location(forward(
            &caller,
            pb::ReactivateStorageLocationRequest {
                storage_location_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    location_answer(answer.storage_location)
}
