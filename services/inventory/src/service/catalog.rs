//! Items, item categories and storage locations.

use essentials_runtime::audit::{self, Audited};
use essentials_runtime::{FieldViolation, ServiceError};

use super::{Inventory, Page, Staff, map_unique};
use crate::domain::InventoryError;
use crate::domain::{
    BASE_ITEMS, Item, ItemCategory, ItemCategoryId, ItemFields, ItemId, OrganizationId,
    StorageLocation, StorageLocationFields, StorageLocationId,
};
use crate::repo;
use crate::repo::catalog::ItemFilter;
use crate::repo::documents::claim_idempotency_key;

fn name_taken(what: &'static str) -> ServiceError {
    InventoryError::NameTaken { what }.into()
}

fn violations(list: Vec<(&'static str, String)>) -> Vec<FieldViolation> {
    list.into_iter()
        .map(|(field, description)| FieldViolation::new(field, description))
        .collect()
}

impl Inventory {
    pub async fn create_item(
        &self,
        staff: &Staff,
        fields: ItemFields,
        idempotency_key: Option<&str>,
    ) -> Result<Item, ServiceError> {
        let mut problems = violations(fields.violations());
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        if let Some(category) = fields.item_category_id
            && repo::catalog::get_category(&mut transaction, org, category)
                .await?
                .is_none()
        {
            problems.push(FieldViolation::new(
                "item_category_id",
                "names no item category of this bank",
            ));
        }
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let id = ItemId::new();
        if let Some(key) = idempotency_key
            && let Some(existing) =
                claim_idempotency_key(&mut transaction, org, "create_item", key, id.0).await?
        {
            drop(transaction);
            return self.get_item(staff, ItemId(existing)).await;
        }
        let item = repo::catalog::insert_item(&mut transaction, org, id, &fields)
            .await
            .map_err(|error| map_unique(error, "item_name_key", || name_taken("An item")))?;
        audit::record(&mut transaction, Audited::subject("item", id.0)).await?;
        transaction.commit().await?;
        Ok(item)
    }

    pub async fn get_item(&self, staff: &Staff, id: ItemId) -> Result<Item, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        repo::catalog::get_item(&mut connection, staff.organization_id, id, false)
            .await?
            .ok_or_else(|| ServiceError::not_found("item"))
    }

    /// Items of the bank (bank staff and partner users alike).
    pub async fn batch_get_items(
        &self,
        organization_id: OrganizationId,
        ids: &[ItemId],
    ) -> Result<Vec<Item>, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        Ok(repo::catalog::get_items(&mut connection, organization_id, ids, false).await?)
    }

    pub async fn list_items(
        &self,
        organization_id: OrganizationId,
        filter: &ItemFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Page<Item>, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let rows =
            repo::catalog::list_items(&mut connection, organization_id, filter, after, limit + 1)
                .await?;
        Ok(Page::from_rows(rows, limit))
    }

    /// Applies `patch` to the current fields; deactivation is refused while the item is in stock.
    pub async fn update_item(
        &self,
        staff: &Staff,
        id: ItemId,
        patch: impl FnOnce(&mut ItemFields),
    ) -> Result<Item, ServiceError> {
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let current = repo::catalog::get_item(&mut transaction, org, id, true)
            .await?
            .ok_or_else(|| ServiceError::not_found("item"))?;
        let mut fields = ItemFields::from(&current);
        patch(&mut fields);
        let mut problems = violations(fields.violations());
        if let Some(category) = fields.item_category_id
            && fields.item_category_id != current.item_category_id
            && repo::catalog::get_category(&mut transaction, org, category)
                .await?
                .is_none()
        {
            problems.push(FieldViolation::new(
                "item_category_id",
                "names no item category of this bank",
            ));
        }
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        if current.active
            && !fields.active
            && repo::catalog::item_in_stock(&mut transaction, org, id).await?
        {
            return Err(InventoryError::ItemInStock {
                name: current.name,
                item_id: id.0,
            }
            .into());
        }
        let item = repo::catalog::update_item(&mut transaction, org, id, &fields)
            .await
            .map_err(|error| map_unique(error, "item_name_key", || name_taken("An item")))?
            .ok_or_else(|| ServiceError::not_found("item"))?;
        audit::record(&mut transaction, Audited::subject("item", id.0)).await?;
        transaction.commit().await?;
        Ok(item)
    }

    pub async fn delete_item(&self, staff: &Staff, id: ItemId) -> Result<(), ServiceError> {
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let item = repo::catalog::get_item(&mut transaction, org, id, true)
            .await?
            .ok_or_else(|| ServiceError::not_found("item"))?;
        if repo::catalog::item_in_use(&mut transaction, org, id).await? {
            return Err(InventoryError::ItemInUse { name: item.name }.into());
        }
        repo::catalog::delete_item(&mut transaction, org, id).await?;
        audit::record(&mut transaction, Audited::subject("item", id.0)).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Gives a bank one item per base item (names it already has are kept). Idempotent.
    pub async fn seed_base_items(
        connection: &mut sqlx::PgConnection,
        organization_id: OrganizationId,
    ) -> Result<u64, sqlx::Error> {
        repo::catalog::insert_base_items(connection, organization_id, BASE_ITEMS).await
    }

    pub async fn create_category(
        &self,
        staff: &Staff,
        name: String,
        description: String,
        idempotency_key: Option<&str>,
    ) -> Result<ItemCategory, ServiceError> {
        let problems = category_violations(&name, &description);
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let org = staff.organization_id;
        let id = ItemCategoryId::new();
        let mut transaction = self.pool.begin().await?;
        if let Some(key) = idempotency_key
            && let Some(existing) =
                claim_idempotency_key(&mut transaction, org, "create_item_category", key, id.0)
                    .await?
        {
            drop(transaction);
            return self.get_category(staff, ItemCategoryId(existing)).await;
        }
        let category =
            repo::catalog::insert_category(&mut transaction, org, id, &name, &description)
                .await
                .map_err(|error| {
                    map_unique(error, "item_category_name_key", || {
                        name_taken("An item category")
                    })
                })?;
        audit::record(&mut transaction, Audited::subject("item_category", id.0)).await?;
        transaction.commit().await?;
        Ok(category)
    }

    pub async fn get_category(
        &self,
        staff: &Staff,
        id: ItemCategoryId,
    ) -> Result<ItemCategory, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        repo::catalog::get_category(&mut connection, staff.organization_id, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("item category"))
    }

    pub async fn list_categories(
        &self,
        staff: &Staff,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Page<ItemCategory>, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let rows = repo::catalog::list_categories(
            &mut connection,
            staff.organization_id,
            after,
            limit + 1,
        )
        .await?;
        Ok(Page::from_rows(rows, limit))
    }

    pub async fn update_category(
        &self,
        staff: &Staff,
        id: ItemCategoryId,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<ItemCategory, ServiceError> {
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let current = repo::catalog::get_category(&mut transaction, org, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("item category"))?;
        let name = name.unwrap_or(current.name);
        let description = description.unwrap_or(current.description);
        let problems = category_violations(&name, &description);
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let category =
            repo::catalog::update_category(&mut transaction, org, id, &name, &description)
                .await
                .map_err(|error| {
                    map_unique(error, "item_category_name_key", || {
                        name_taken("An item category")
                    })
                })?
                .ok_or_else(|| ServiceError::not_found("item category"))?;
        audit::record(&mut transaction, Audited::subject("item_category", id.0)).await?;
        transaction.commit().await?;
        Ok(category)
    }

    pub async fn delete_category(
        &self,
        staff: &Staff,
        id: ItemCategoryId,
    ) -> Result<(), ServiceError> {
        let mut transaction = self.pool.begin().await?;
        if !repo::catalog::delete_category(&mut transaction, staff.organization_id, id).await? {
            return Err(ServiceError::not_found("item category"));
        }
        audit::record(&mut transaction, Audited::subject("item_category", id.0)).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn create_location(
        &self,
        staff: &Staff,
        fields: StorageLocationFields,
        idempotency_key: Option<&str>,
    ) -> Result<StorageLocation, ServiceError> {
        let problems = violations(fields.violations());
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let org = staff.organization_id;
        let id = StorageLocationId::new();
        let mut transaction = self.pool.begin().await?;
        if let Some(key) = idempotency_key
            && let Some(existing) =
                claim_idempotency_key(&mut transaction, org, "create_storage_location", key, id.0)
                    .await?
        {
            drop(transaction);
            return self.get_location(staff, StorageLocationId(existing)).await;
        }
        let location = repo::catalog::insert_location(&mut transaction, org, id, &fields)
            .await
            .map_err(|error| {
                map_unique(error, "storage_location_name_key", || {
                    name_taken("A storage location")
                })
            })?;
        audit::record(&mut transaction, Audited::subject("storage_location", id.0)).await?;
        transaction.commit().await?;
        Ok(location)
    }

    pub async fn get_location(
        &self,
        staff: &Staff,
        id: StorageLocationId,
    ) -> Result<StorageLocation, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        repo::catalog::get_location(&mut connection, staff.organization_id, id, false)
            .await?
            .ok_or_else(|| ServiceError::not_found("storage location"))
    }

    pub async fn list_locations(
        &self,
        staff: &Staff,
        include_inactive: bool,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Page<StorageLocation>, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let rows = repo::catalog::list_locations(
            &mut connection,
            staff.organization_id,
            include_inactive,
            after,
            limit + 1,
        )
        .await?;
        Ok(Page::from_rows(rows, limit))
    }

    pub async fn update_location(
        &self,
        staff: &Staff,
        id: StorageLocationId,
        patch: impl FnOnce(&mut StorageLocationFields),
    ) -> Result<StorageLocation, ServiceError> {
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let current = repo::catalog::get_location(&mut transaction, org, id, true)
            .await?
            .ok_or_else(|| ServiceError::not_found("storage location"))?;
        let mut fields = StorageLocationFields {
            name: current.name,
            address: current.address,
            warehouse_type: current.warehouse_type,
            square_footage: current.square_footage,
            time_zone: current.time_zone,
        };
        patch(&mut fields);
        let problems = violations(fields.violations());
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let location = repo::catalog::update_location(&mut transaction, org, id, &fields)
            .await
            .map_err(|error| {
                map_unique(error, "storage_location_name_key", || {
                    name_taken("A storage location")
                })
            })?
            .ok_or_else(|| ServiceError::not_found("storage location"))?;
        audit::record(&mut transaction, Audited::subject("storage_location", id.0)).await?;
        transaction.commit().await?;
        Ok(location)
    }

    /// Only an empty location can be deactivated. The row lock makes stock-raising writes (which
    /// share-lock the location) wait, so it cannot fill up between the check and the change.
    pub async fn set_location_active(
        &self,
        staff: &Staff,
        id: StorageLocationId,
        active: bool,
    ) -> Result<StorageLocation, ServiceError> {
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let current = repo::catalog::get_location(&mut transaction, org, id, true)
            .await?
            .ok_or_else(|| ServiceError::not_found("storage location"))?;
        if !active {
            let total = repo::catalog::location_total(&mut transaction, org, id).await?;
            if total > 0 {
                return Err(InventoryError::LocationNotEmpty {
                    name: current.name,
                    total,
                }
                .into());
            }
        }
        let location = repo::catalog::set_location_active(&mut transaction, org, id, active)
            .await?
            .ok_or_else(|| ServiceError::not_found("storage location"))?;
        audit::record(&mut transaction, Audited::subject("storage_location", id.0)).await?;
        transaction.commit().await?;
        Ok(location)
    }
}

fn category_violations(name: &str, description: &str) -> Vec<FieldViolation> {
    let mut problems = Vec::new();
    if name.trim().is_empty() {
        problems.push(FieldViolation::new("name", "must not be blank"));
    }
    if description.chars().count() > 250 {
        problems.push(FieldViolation::new(
            "description",
            "must be at most 250 characters",
        ));
    }
    problems
}
