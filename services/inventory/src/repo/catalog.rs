//! Items, item categories and storage locations.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::{optional_text_enum, text_enum};
use crate::domain::{
    Item, ItemCategory, ItemCategoryId, ItemFields, ItemId, OrganizationId, ReportingCategory,
    StorageLocation, StorageLocationFields, StorageLocationId, WarehouseType,
};

macro_rules! item_columns {
    () => {
        "id, name, item_category_id, reporting_category, partner_key, value_in_cents, package_size, \
         distribution_quantity, on_hand_minimum_quantity, on_hand_recommended_quantity, \
         visible_to_partners, active, additional_info, created_at, updated_at"
    };
}

macro_rules! category_columns {
    () => {
        "id, name, description, created_at, updated_at"
    };
}

macro_rules! location_columns {
    () => {
        "id, name, address, warehouse_type, square_footage, time_zone, active, created_at, updated_at"
    };
}

fn item_from_row(row: &PgRow) -> Result<Item, sqlx::Error> {
    Ok(Item {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        item_category_id: row.try_get("item_category_id")?,
        reporting_category: text_enum(row, "reporting_category", ReportingCategory::parse)?,
        partner_key: row.try_get("partner_key")?,
        value_in_cents: row.try_get("value_in_cents")?,
        package_size: row.try_get("package_size")?,
        distribution_quantity: row.try_get("distribution_quantity")?,
        on_hand_minimum_quantity: row.try_get("on_hand_minimum_quantity")?,
        on_hand_recommended_quantity: row.try_get("on_hand_recommended_quantity")?,
        visible_to_partners: row.try_get("visible_to_partners")?,
        active: row.try_get("active")?,
        additional_info: row.try_get("additional_info")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn category_from_row(row: &PgRow) -> Result<ItemCategory, sqlx::Error> {
    Ok(ItemCategory {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn location_from_row(row: &PgRow) -> Result<StorageLocation, sqlx::Error> {
    Ok(StorageLocation {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        address: row.try_get("address")?,
        warehouse_type: optional_text_enum(row, "warehouse_type", WarehouseType::parse)?,
        square_footage: row.try_get("square_footage")?,
        time_zone: row.try_get("time_zone")?,
        active: row.try_get("active")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert_item(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: ItemId,
    fields: &ItemFields,
) -> Result<Item, sqlx::Error> {
    let row = sqlx::query(concat!(
        "INSERT INTO item (id, organization_id, name, item_category_id, reporting_category, partner_key, \
         value_in_cents, package_size, distribution_quantity, on_hand_minimum_quantity, \
         on_hand_recommended_quantity, visible_to_partners, active, additional_info)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         RETURNING ",
        item_columns!()
    ))
    .bind(id)
    .bind(organization_id)
    .bind(fields.name.trim())
    .bind(fields.item_category_id)
    .bind(fields.reporting_category.as_str())
    .bind(&fields.partner_key)
    .bind(fields.value_in_cents)
    .bind(fields.package_size)
    .bind(fields.distribution_quantity)
    .bind(fields.on_hand_minimum_quantity)
    .bind(fields.on_hand_recommended_quantity)
    .bind(fields.visible_to_partners)
    .bind(fields.active)
    .bind(&fields.additional_info)
    .fetch_one(&mut *connection)
    .await?;
    item_from_row(&row)
}

/// Seeds the base items of a new bank; names already present are left alone. Returns how many
/// were added.
pub async fn insert_base_items(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    base_items: &[(&str, &str, ReportingCategory)],
) -> Result<u64, sqlx::Error> {
    let ids: Vec<Uuid> = base_items.iter().map(|_| Uuid::now_v7()).collect();
    let names: Vec<&str> = base_items.iter().map(|(name, _, _)| *name).collect();
    let keys: Vec<&str> = base_items.iter().map(|(_, key, _)| *key).collect();
    let categories: Vec<&str> = base_items
        .iter()
        .map(|(_, _, category)| category.as_str())
        .collect();
    let done = sqlx::query(
        "INSERT INTO item (id, organization_id, name, partner_key, reporting_category)
         SELECT id, $1, name, partner_key, reporting_category
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[])
              AS base(id, name, partner_key, reporting_category)
         ON CONFLICT (organization_id, lower(name)) DO NOTHING",
    )
    .bind(organization_id)
    .bind(&ids)
    .bind(&names)
    .bind(&keys)
    .bind(&categories)
    .execute(&mut *connection)
    .await?;
    Ok(done.rows_affected())
}

pub async fn update_item(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: ItemId,
    fields: &ItemFields,
) -> Result<Option<Item>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE item SET name = $3, item_category_id = $4, reporting_category = $5, partner_key = $6,
             value_in_cents = $7, package_size = $8, distribution_quantity = $9,
             on_hand_minimum_quantity = $10, on_hand_recommended_quantity = $11,
             visible_to_partners = $12, active = $13, additional_info = $14, updated_at = now()
         WHERE organization_id = $1 AND id = $2
         RETURNING ",
        item_columns!()
    ))
    .bind(organization_id)
    .bind(id)
    .bind(fields.name.trim())
    .bind(fields.item_category_id)
    .bind(fields.reporting_category.as_str())
    .bind(&fields.partner_key)
    .bind(fields.value_in_cents)
    .bind(fields.package_size)
    .bind(fields.distribution_quantity)
    .bind(fields.on_hand_minimum_quantity)
    .bind(fields.on_hand_recommended_quantity)
    .bind(fields.visible_to_partners)
    .bind(fields.active)
    .bind(&fields.additional_info)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(item_from_row).transpose()
}

/// One item, locked for update when `lock` is set.
pub async fn get_item(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: ItemId,
    lock: bool,
) -> Result<Option<Item>, sqlx::Error> {
    let query = if lock {
        concat!(
            "SELECT ",
            item_columns!(),
            " FROM item WHERE organization_id = $1 AND id = $2 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            item_columns!(),
            " FROM item WHERE organization_id = $1 AND id = $2"
        )
    };
    let row = sqlx::query(query)
        .bind(organization_id)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(item_from_row).transpose()
}

/// These items of the bank (unknown ids left out); `share_lock` keeps them from being
/// deactivated until the transaction ends.
pub async fn get_items(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    ids: &[ItemId],
    share_lock: bool,
) -> Result<Vec<Item>, sqlx::Error> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    let query = if share_lock {
        concat!(
            "SELECT ",
            item_columns!(),
            " FROM item WHERE organization_id = $1 AND id = ANY($2) ORDER BY id FOR SHARE"
        )
    } else {
        concat!(
            "SELECT ",
            item_columns!(),
            " FROM item WHERE organization_id = $1 AND id = ANY($2)"
        )
    };
    let rows = sqlx::query(query)
        .bind(organization_id)
        .bind(&ids)
        .fetch_all(&mut *connection)
        .await?;
    rows.iter().map(item_from_row).collect()
}

/// Filters of an item list.
#[derive(Debug, Default, Clone)]
pub struct ItemFilter {
    pub item_category_id: Option<ItemCategoryId>,
    pub include_inactive: bool,
    pub visible_to_partners: Option<bool>,
    pub name_contains: Option<String>,
    pub reporting_category: Option<ReportingCategory>,
    /// Only items whose category is one of these (requestable items of a restricted group).
    pub category_in: Option<Vec<ItemCategoryId>>,
}

/// Items ordered by name, after the name `after` (lower-cased), at most `limit`.
pub async fn list_items(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    filter: &ItemFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Item>, sqlx::Error> {
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(concat!(
        "SELECT ",
        item_columns!(),
        " FROM item WHERE organization_id = "
    ));
    query.push_bind(organization_id);
    if let Some(category) = filter.item_category_id {
        query.push(" AND item_category_id = ").push_bind(category);
    }
    if !filter.include_inactive {
        query.push(" AND active");
    }
    if let Some(visible) = filter.visible_to_partners {
        query.push(" AND visible_to_partners = ").push_bind(visible);
    }
    if let Some(text) = &filter.name_contains {
        let pattern = format!(
            "%{}%",
            text.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        query.push(" AND lower(name) LIKE ").push_bind(pattern);
    }
    if let Some(category) = filter.reporting_category {
        query
            .push(" AND reporting_category = ")
            .push_bind(category.as_str());
    }
    if let Some(categories) = &filter.category_in {
        let ids: Vec<Uuid> = categories.iter().map(|id| id.0).collect();
        query
            .push(" AND item_category_id = ANY(")
            .push_bind(ids)
            .push(")");
    }
    if let Some(after) = after {
        query
            .push(" AND lower(name) > ")
            .push_bind(after.to_owned());
    }
    query.push(" ORDER BY lower(name) LIMIT ").push_bind(limit);
    let rows = query.build().fetch_all(&mut *connection).await?;
    rows.iter().map(item_from_row).collect()
}

/// Whether the item has stock anywhere.
pub async fn item_in_stock(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: ItemId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM stock_balance
                        WHERE organization_id = $1 AND item_id = $2 AND quantity > 0)",
    )
    .bind(organization_id)
    .bind(id)
    .fetch_one(&mut *connection)
    .await
}

/// Whether any document line or ledger entry names the item.
pub async fn item_in_use(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: ItemId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM document_line WHERE organization_id = $1 AND item_id = $2)
             OR EXISTS (SELECT 1 FROM stock_ledger WHERE organization_id = $1 AND item_id = $2)
             OR EXISTS (SELECT 1 FROM stock_balance WHERE organization_id = $1 AND item_id = $2)",
    )
    .bind(organization_id)
    .bind(id)
    .fetch_one(&mut *connection)
    .await
}

pub async fn delete_item(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: ItemId,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM item WHERE organization_id = $1 AND id = $2")
        .bind(organization_id)
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_category(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: ItemCategoryId,
    name: &str,
    description: &str,
) -> Result<ItemCategory, sqlx::Error> {
    let row = sqlx::query(concat!(
        "INSERT INTO item_category (id, organization_id, name, description) VALUES ($1, $2, $3, $4)
         RETURNING ",
        category_columns!()
    ))
    .bind(id)
    .bind(organization_id)
    .bind(name.trim())
    .bind(description)
    .fetch_one(&mut *connection)
    .await?;
    category_from_row(&row)
}

pub async fn get_category(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: ItemCategoryId,
) -> Result<Option<ItemCategory>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        category_columns!(),
        " FROM item_category WHERE organization_id = $1 AND id = $2"
    ))
    .bind(organization_id)
    .bind(id)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(category_from_row).transpose()
}

pub async fn list_categories(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ItemCategory>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        category_columns!(),
        " FROM item_category WHERE organization_id = $1 AND ($2::text IS NULL OR lower(name) > $2)
         ORDER BY lower(name) LIMIT $3"
    ))
    .bind(organization_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter().map(category_from_row).collect()
}

pub async fn update_category(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: ItemCategoryId,
    name: &str,
    description: &str,
) -> Result<Option<ItemCategory>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE item_category SET name = $3, description = $4, updated_at = now()
         WHERE organization_id = $1 AND id = $2 RETURNING ",
        category_columns!()
    ))
    .bind(organization_id)
    .bind(id)
    .bind(name.trim())
    .bind(description)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(category_from_row).transpose()
}

pub async fn delete_category(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: ItemCategoryId,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM item_category WHERE organization_id = $1 AND id = $2")
        .bind(organization_id)
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_location(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: StorageLocationId,
    fields: &StorageLocationFields,
) -> Result<StorageLocation, sqlx::Error> {
    let row = sqlx::query(concat!(
        "INSERT INTO storage_location (id, organization_id, name, address, warehouse_type, square_footage, time_zone)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        location_columns!()
    ))
    .bind(id)
    .bind(organization_id)
    .bind(fields.name.trim())
    .bind(fields.address.trim())
    .bind(fields.warehouse_type.map(WarehouseType::as_str))
    .bind(fields.square_footage)
    .bind(&fields.time_zone)
    .fetch_one(&mut *connection)
    .await?;
    location_from_row(&row)
}

pub async fn update_location(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: StorageLocationId,
    fields: &StorageLocationFields,
) -> Result<Option<StorageLocation>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE storage_location SET name = $3, address = $4, warehouse_type = $5, square_footage = $6,
             time_zone = $7, updated_at = now()
         WHERE organization_id = $1 AND id = $2 RETURNING ",
        location_columns!()
    ))
    .bind(organization_id)
    .bind(id)
    .bind(fields.name.trim())
    .bind(fields.address.trim())
    .bind(fields.warehouse_type.map(WarehouseType::as_str))
    .bind(fields.square_footage)
    .bind(&fields.time_zone)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(location_from_row).transpose()
}

pub async fn set_location_active(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: StorageLocationId,
    active: bool,
) -> Result<Option<StorageLocation>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE storage_location SET active = $3, updated_at = now()
         WHERE organization_id = $1 AND id = $2 RETURNING ",
        location_columns!()
    ))
    .bind(organization_id)
    .bind(id)
    .bind(active)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(location_from_row).transpose()
}

pub async fn get_location(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: StorageLocationId,
    lock: bool,
) -> Result<Option<StorageLocation>, sqlx::Error> {
    let query = if lock {
        concat!(
            "SELECT ",
            location_columns!(),
            " FROM storage_location WHERE organization_id = $1 AND id = $2 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            location_columns!(),
            " FROM storage_location WHERE organization_id = $1 AND id = $2"
        )
    };
    let row = sqlx::query(query)
        .bind(organization_id)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(location_from_row).transpose()
}

/// These locations of the bank; `share_lock` keeps them from being deactivated until the
/// transaction ends.
pub async fn get_locations(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    ids: &[StorageLocationId],
    share_lock: bool,
) -> Result<Vec<StorageLocation>, sqlx::Error> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    let query = if share_lock {
        concat!(
            "SELECT ",
            location_columns!(),
            " FROM storage_location WHERE organization_id = $1 AND id = ANY($2) ORDER BY id FOR SHARE"
        )
    } else {
        concat!(
            "SELECT ",
            location_columns!(),
            " FROM storage_location WHERE organization_id = $1 AND id = ANY($2)"
        )
    };
    let rows = sqlx::query(query)
        .bind(organization_id)
        .bind(&ids)
        .fetch_all(&mut *connection)
        .await?;
    rows.iter().map(location_from_row).collect()
}

pub async fn list_locations(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    include_inactive: bool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<StorageLocation>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        location_columns!(),
        " FROM storage_location WHERE organization_id = $1 AND (active OR $2)
            AND ($3::text IS NULL OR lower(name) > $3)
         ORDER BY lower(name) LIMIT $4"
    ))
    .bind(organization_id)
    .bind(include_inactive)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter().map(location_from_row).collect()
}

/// Total units the location holds.
pub async fn location_total(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: StorageLocationId,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(quantity), 0)::bigint FROM stock_balance
         WHERE organization_id = $1 AND storage_location_id = $2",
    )
    .bind(organization_id)
    .bind(id)
    .fetch_one(&mut *connection)
    .await
}
