//! CatalogService and StorageLocationService.

use essentials_proto::inventory::v1 as pb;
use essentials_proto::inventory::v1::catalog_service_server::CatalogService;
use essentials_proto::inventory::v1::storage_location_service_server::StorageLocationService;
use essentials_runtime::auth::principal;
use essentials_runtime::{FieldViolation, ServiceError};
use tonic::{Request, Response, Status};

use super::convert::{self, next_token};
use super::{InventoryApi, check, idempotency_key, mask_paths, staff};
use crate::domain::{
    DEFAULT_TIME_ZONE, ItemCategoryId, ItemFields, ItemId, OrganizationId, StorageLocationFields,
    StorageLocationId,
};
use crate::repo::catalog::ItemFilter;
use crate::service::page_limit;

const ITEM_PATHS: &[&str] = &[
    "name",
    "item_category_id",
    "reporting_category",
    "partner_key",
    "value_in_cents",
    "package_size",
    "distribution_quantity",
    "on_hand_minimum_quantity",
    "on_hand_recommended_quantity",
    "visible_to_partners",
    "active",
    "additional_info",
];

const LOCATION_PATHS: &[&str] = &[
    "name",
    "address",
    "warehouse_type",
    "square_footage",
    "time_zone",
];

/// Writes the masked fields of `item` onto `fields`. Optional fields left unset keep their value.
fn apply_item(
    item: &pb::Item,
    paths: &[String],
    fields: &mut ItemFields,
    problems: &mut Vec<FieldViolation>,
) {
    for path in paths {
        match path.as_str() {
            "name" => fields.name = item.name.clone(),
            "item_category_id" => {
                fields.item_category_id =
                    convert::optional_id("item.item_category_id", &item.item_category_id, problems)
                        .map(ItemCategoryId);
            }
            "reporting_category" => {
                if let Some(category) = convert::reporting_category(
                    "item.reporting_category",
                    item.reporting_category,
                    problems,
                ) {
                    fields.reporting_category = category;
                }
            }
            "partner_key" => fields.partner_key = item.partner_key.clone(),
            "value_in_cents" => fields.value_in_cents = item.value_in_cents,
            "package_size" if item.package_size.is_some() => {
                fields.package_size = item.package_size;
            }
            "distribution_quantity" => {
                if let Some(value) = item.distribution_quantity {
                    fields.distribution_quantity = value;
                }
            }
            "on_hand_minimum_quantity" => {
                if let Some(value) = item.on_hand_minimum_quantity {
                    fields.on_hand_minimum_quantity = value;
                }
            }
            "on_hand_recommended_quantity" if item.on_hand_recommended_quantity.is_some() => {
                fields.on_hand_recommended_quantity = item.on_hand_recommended_quantity;
            }
            "visible_to_partners" => {
                if let Some(value) = item.visible_to_partners {
                    fields.visible_to_partners = value;
                }
            }
            "active" => {
                if let Some(value) = item.active {
                    fields.active = value;
                }
            }
            "additional_info" => fields.additional_info = item.additional_info.clone(),
            _ => {}
        }
    }
}

fn item_violations(fields: &ItemFields) -> Vec<FieldViolation> {
    fields
        .violations()
        .into_iter()
        .map(|(field, description)| FieldViolation::new(format!("item.{field}"), description))
        .collect()
}

#[tonic::async_trait]
impl CatalogService for InventoryApi {
    async fn create_item(
        &self,
        request: Request<pb::CreateItemRequest>,
    ) -> Result<Response<pb::CreateItemResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let item = message.item.unwrap_or_default();
        let mut fields = ItemFields::default();
        apply_item(&item, &to_strings(ITEM_PATHS), &mut fields, &mut problems);
        problems.extend(item_violations(&fields));
        check(problems)?;
        let item = self
            .inventory
            .create_item(&staff, fields, idempotency_key(&message.request_id))
            .await?;
        Ok(Response::new(pb::CreateItemResponse {
            item: Some(convert::item(&item)),
        }))
    }

    async fn get_item(
        &self,
        request: Request<pb::GetItemRequest>,
    ) -> Result<Response<pb::GetItemResponse>, Status> {
        let staff = staff(&request)?;
        let id = ItemId(convert::resource_id(&request.get_ref().item_id, "item")?);
        let item = self.inventory.get_item(&staff, id).await?;
        Ok(Response::new(pb::GetItemResponse {
            item: Some(convert::item(&item)),
        }))
    }

    async fn batch_get_items(
        &self,
        request: Request<pb::BatchGetItemsRequest>,
    ) -> Result<Response<pb::BatchGetItemsResponse>, Status> {
        let caller = principal(&request)?;
        let organization_id = OrganizationId(caller.organization()?);
        let message = request.into_inner();
        if message.item_ids.len() > 1000 {
            return Err(ServiceError::invalid(vec![FieldViolation::new(
                "item_ids",
                "must hold at most 1000 ids",
            )])
            .into());
        }
        let ids: Vec<ItemId> = message
            .item_ids
            .iter()
            .filter_map(|id| uuid::Uuid::parse_str(id).ok().map(ItemId))
            .collect();
        let items = self
            .inventory
            .batch_get_items(organization_id, &ids)
            .await?;
        Ok(Response::new(pb::BatchGetItemsResponse {
            items: items.iter().map(convert::item).collect(),
        }))
    }

    async fn list_items(
        &self,
        request: Request<pb::ListItemsRequest>,
    ) -> Result<Response<pb::ListItemsResponse>, Status> {
        let caller = principal(&request)?;
        let organization_id = OrganizationId(caller.organization()?);
        let partner_view = !caller.is_bank_staff();
        let message = request.into_inner();
        let mut problems = Vec::new();
        let after = convert::decode_token(&message.page_token, &mut problems);
        let filter = ItemFilter {
            item_category_id: convert::optional_id(
                "item_category_id",
                &message.item_category_id,
                &mut problems,
            )
            .map(ItemCategoryId),
            // Partner users only ever see active items visible to partners.
            include_inactive: message.include_inactive && !partner_view,
            visible_to_partners: if partner_view {
                Some(true)
            } else {
                message.visible_to_partners
            },
            name_contains: Some(message.name_contains.trim().to_owned())
                .filter(|text| !text.is_empty()),
            reporting_category: convert::reporting_category(
                "reporting_category",
                message.reporting_category,
                &mut problems,
            ),
            category_in: None,
        };
        check(problems)?;
        let page = self
            .inventory
            .list_items(
                organization_id,
                &filter,
                after.as_deref(),
                page_limit(message.page_size),
            )
            .await?;
        Ok(Response::new(pb::ListItemsResponse {
            next_page_token: next_token(&page.items, page.more, |item| {
                convert::encode_token(&item.name.to_lowercase())
            }),
            items: page.items.iter().map(convert::item).collect(),
        }))
    }

    async fn update_item(
        &self,
        request: Request<pb::UpdateItemRequest>,
    ) -> Result<Response<pb::UpdateItemResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let item = message.item.unwrap_or_default();
        let id = ItemId(convert::resource_id(&item.id, "item")?);
        let mut problems = Vec::new();
        let paths = mask_paths(message.update_mask.as_ref(), ITEM_PATHS, &mut problems);
        // Decode once up front so every violation of the request is reported together.
        apply_item(&item, &paths, &mut ItemFields::default(), &mut problems);
        check(problems)?;
        let updated = self
            .inventory
            .update_item(&staff, id, |fields| {
                apply_item(&item, &paths, fields, &mut Vec::new());
            })
            .await?;
        Ok(Response::new(pb::UpdateItemResponse {
            item: Some(convert::item(&updated)),
        }))
    }

    async fn delete_item(
        &self,
        request: Request<pb::DeleteItemRequest>,
    ) -> Result<Response<pb::DeleteItemResponse>, Status> {
        let staff = staff(&request)?;
        let id = ItemId(convert::resource_id(&request.get_ref().item_id, "item")?);
        self.inventory.delete_item(&staff, id).await?;
        Ok(Response::new(pb::DeleteItemResponse {}))
    }

    async fn create_item_category(
        &self,
        request: Request<pb::CreateItemCategoryRequest>,
    ) -> Result<Response<pb::CreateItemCategoryResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let category = message.item_category.unwrap_or_default();
        let created = self
            .inventory
            .create_category(
                &staff,
                category.name,
                category.description,
                idempotency_key(&message.request_id),
            )
            .await?;
        Ok(Response::new(pb::CreateItemCategoryResponse {
            item_category: Some(convert::category(&created)),
        }))
    }

    async fn get_item_category(
        &self,
        request: Request<pb::GetItemCategoryRequest>,
    ) -> Result<Response<pb::GetItemCategoryResponse>, Status> {
        let staff = staff(&request)?;
        let id = ItemCategoryId(convert::resource_id(
            &request.get_ref().item_category_id,
            "item category",
        )?);
        let category = self.inventory.get_category(&staff, id).await?;
        Ok(Response::new(pb::GetItemCategoryResponse {
            item_category: Some(convert::category(&category)),
        }))
    }

    async fn list_item_categories(
        &self,
        request: Request<pb::ListItemCategoriesRequest>,
    ) -> Result<Response<pb::ListItemCategoriesResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let after = convert::decode_token(&message.page_token, &mut problems);
        check(problems)?;
        let page = self
            .inventory
            .list_categories(&staff, after.as_deref(), page_limit(message.page_size))
            .await?;
        Ok(Response::new(pb::ListItemCategoriesResponse {
            next_page_token: next_token(&page.items, page.more, |category| {
                convert::encode_token(&category.name.to_lowercase())
            }),
            item_categories: page.items.iter().map(convert::category).collect(),
        }))
    }

    async fn update_item_category(
        &self,
        request: Request<pb::UpdateItemCategoryRequest>,
    ) -> Result<Response<pb::UpdateItemCategoryResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let category = message.item_category.unwrap_or_default();
        let id = ItemCategoryId(convert::resource_id(&category.id, "item category")?);
        let mut problems = Vec::new();
        let paths = mask_paths(
            message.update_mask.as_ref(),
            &["name", "description"],
            &mut problems,
        );
        check(problems)?;
        let name = paths
            .iter()
            .any(|path| path == "name")
            .then(|| category.name.clone());
        let description = paths
            .iter()
            .any(|path| path == "description")
            .then(|| category.description.clone());
        let updated = self
            .inventory
            .update_category(&staff, id, name, description)
            .await?;
        Ok(Response::new(pb::UpdateItemCategoryResponse {
            item_category: Some(convert::category(&updated)),
        }))
    }

    async fn delete_item_category(
        &self,
        request: Request<pb::DeleteItemCategoryRequest>,
    ) -> Result<Response<pb::DeleteItemCategoryResponse>, Status> {
        let staff = staff(&request)?;
        let id = ItemCategoryId(convert::resource_id(
            &request.get_ref().item_category_id,
            "item category",
        )?);
        self.inventory.delete_category(&staff, id).await?;
        Ok(Response::new(pb::DeleteItemCategoryResponse {}))
    }
}

fn to_strings(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|path| (*path).to_owned()).collect()
}

fn apply_location(
    location: &pb::StorageLocation,
    paths: &[String],
    fields: &mut StorageLocationFields,
    problems: &mut Vec<FieldViolation>,
) {
    for path in paths {
        match path.as_str() {
            "name" => fields.name = location.name.clone(),
            "address" => fields.address = location.address.clone(),
            "warehouse_type" => {
                fields.warehouse_type = convert::warehouse_type(location.warehouse_type, problems);
            }
            "square_footage" if location.square_footage.is_some() => {
                fields.square_footage = location.square_footage;
            }
            "time_zone" if !location.time_zone.is_empty() => {
                fields.time_zone = location.time_zone.clone();
            }
            _ => {}
        }
    }
}

fn location_violations(fields: &StorageLocationFields) -> Vec<FieldViolation> {
    fields
        .violations()
        .into_iter()
        .map(|(field, description)| {
            FieldViolation::new(format!("storage_location.{field}"), description)
        })
        .collect()
}

#[tonic::async_trait]
impl StorageLocationService for InventoryApi {
    async fn create_storage_location(
        &self,
        request: Request<pb::CreateStorageLocationRequest>,
    ) -> Result<Response<pb::CreateStorageLocationResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let location = message.storage_location.unwrap_or_default();
        let mut problems = Vec::new();
        let mut fields = StorageLocationFields {
            name: String::new(),
            address: String::new(),
            warehouse_type: None,
            square_footage: None,
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
        };
        apply_location(
            &location,
            &to_strings(LOCATION_PATHS),
            &mut fields,
            &mut problems,
        );
        problems.extend(location_violations(&fields));
        check(problems)?;
        let created = self
            .inventory
            .create_location(&staff, fields, idempotency_key(&message.request_id))
            .await?;
        Ok(Response::new(pb::CreateStorageLocationResponse {
            storage_location: Some(convert::location(&created)),
        }))
    }

    async fn get_storage_location(
        &self,
        request: Request<pb::GetStorageLocationRequest>,
    ) -> Result<Response<pb::GetStorageLocationResponse>, Status> {
        let staff = staff(&request)?;
        let id = StorageLocationId(convert::resource_id(
            &request.get_ref().storage_location_id,
            "storage location",
        )?);
        let location = self.inventory.get_location(&staff, id).await?;
        Ok(Response::new(pb::GetStorageLocationResponse {
            storage_location: Some(convert::location(&location)),
        }))
    }

    async fn list_storage_locations(
        &self,
        request: Request<pb::ListStorageLocationsRequest>,
    ) -> Result<Response<pb::ListStorageLocationsResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let after = convert::decode_token(&message.page_token, &mut problems);
        check(problems)?;
        let page = self
            .inventory
            .list_locations(
                &staff,
                message.include_inactive,
                after.as_deref(),
                page_limit(message.page_size),
            )
            .await?;
        Ok(Response::new(pb::ListStorageLocationsResponse {
            next_page_token: next_token(&page.items, page.more, |location| {
                convert::encode_token(&location.name.to_lowercase())
            }),
            storage_locations: page.items.iter().map(convert::location).collect(),
        }))
    }

    async fn update_storage_location(
        &self,
        request: Request<pb::UpdateStorageLocationRequest>,
    ) -> Result<Response<pb::UpdateStorageLocationResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let location = message.storage_location.unwrap_or_default();
        let id = StorageLocationId(convert::resource_id(&location.id, "storage location")?);
        let mut problems = Vec::new();
        let paths = mask_paths(message.update_mask.as_ref(), LOCATION_PATHS, &mut problems);
        let mut probe = StorageLocationFields {
            name: String::new(),
            address: String::new(),
            warehouse_type: None,
            square_footage: None,
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
        };
        apply_location(&location, &paths, &mut probe, &mut problems);
        check(problems)?;
        let updated = self
            .inventory
            .update_location(&staff, id, |fields| {
                apply_location(&location, &paths, fields, &mut Vec::new());
            })
            .await?;
        Ok(Response::new(pb::UpdateStorageLocationResponse {
            storage_location: Some(convert::location(&updated)),
        }))
    }

    async fn deactivate_storage_location(
        &self,
        request: Request<pb::DeactivateStorageLocationRequest>,
    ) -> Result<Response<pb::DeactivateStorageLocationResponse>, Status> {
        let staff = staff(&request)?;
        let id = StorageLocationId(convert::resource_id(
            &request.get_ref().storage_location_id,
            "storage location",
        )?);
        let location = self
            .inventory
            .set_location_active(&staff, id, false)
            .await?;
        Ok(Response::new(pb::DeactivateStorageLocationResponse {
            storage_location: Some(convert::location(&location)),
        }))
    }

    async fn reactivate_storage_location(
        &self,
        request: Request<pb::ReactivateStorageLocationRequest>,
    ) -> Result<Response<pb::ReactivateStorageLocationResponse>, Status> {
        let staff = staff(&request)?;
        let id = StorageLocationId(convert::resource_id(
            &request.get_ref().storage_location_id,
            "storage location",
        )?);
        let location = self.inventory.set_location_active(&staff, id, true).await?;
        Ok(Response::new(pb::ReactivateStorageLocationResponse {
            storage_location: Some(convert::location(&location)),
        }))
    }
}
