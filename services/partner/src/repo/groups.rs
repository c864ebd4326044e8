//! SQL of partner groups and the item categories their partners may request.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub send_reminders: bool,
    pub deadline_day: Option<i32>,
    pub reminder_day: Option<i32>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub partner_count: i64,
    pub item_category_ids: Vec<Uuid>,
}

const GROUP_SELECT: &str = "SELECT g.id, g.organization_id, g.name, g.send_reminders, \
    g.deadline_day, g.reminder_day, g.created_at, g.updated_at, \
    (SELECT count(*) FROM partner p WHERE p.partner_group_id = g.id) AS partner_count, \
    COALESCE(ARRAY(SELECT c.item_category_id FROM partner_group_item_category c \
        WHERE c.partner_group_id = g.id ORDER BY c.item_category_id), '{}') AS item_category_ids \
    FROM partner_group g";

pub async fn group(
    connection: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<GroupRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{GROUP_SELECT} WHERE g.organization_id = $1 AND g.id = $2"
    )))
    .bind(organization_id)
    .bind(id)
    .fetch_optional(connection)
    .await
}

pub async fn list_groups(
    connection: &mut PgConnection,
    organization_id: Uuid,
) -> Result<Vec<GroupRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{GROUP_SELECT} WHERE g.organization_id = $1 ORDER BY g.name, g.id"
    )))
    .bind(organization_id)
    .fetch_all(connection)
    .await
}

pub async fn insert_group(
    connection: &mut PgConnection,
    group: &GroupRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO partner_group (id, organization_id, name, send_reminders, deadline_day, reminder_day)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(group.id)
    .bind(group.organization_id)
    .bind(&group.name)
    .bind(group.send_reminders)
    .bind(group.deadline_day)
    .bind(group.reminder_day)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn update_group(
    connection: &mut PgConnection,
    group: &GroupRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE partner_group SET name = $3, send_reminders = $4, deadline_day = $5,
            reminder_day = $6, updated_at = now()
         WHERE organization_id = $1 AND id = $2",
    )
    .bind(group.organization_id)
    .bind(group.id)
    .bind(&group.name)
    .bind(group.send_reminders)
    .bind(group.deadline_day)
    .bind(group.reminder_day)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn replace_group_categories(
    connection: &mut PgConnection,
    group: &GroupRow,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM partner_group_item_category WHERE partner_group_id = $1")
        .bind(group.id)
        .execute(&mut *connection)
        .await?;
    sqlx::query(
        "INSERT INTO partner_group_item_category (partner_group_id, item_category_id, organization_id)
         SELECT $1, unnest($2::uuid[]), $3",
    )
    .bind(group.id)
    .bind(&group.item_category_ids)
    .bind(group.organization_id)
    .execute(connection)
    .await?;
    Ok(())
}

/// Locks the group (so no partner joins it meanwhile) and counts its partners.
pub async fn lock_group_members(
    connection: &mut PgConnection,
    id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT 1 FROM partner_group WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *connection)
        .await?;
    sqlx::query_scalar("SELECT count(*) FROM partner WHERE partner_group_id = $1")
        .bind(id)
        .fetch_one(connection)
        .await
}

pub async fn delete_group(
    connection: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM partner_group WHERE organization_id = $1 AND id = $2")
        .bind(organization_id)
        .bind(id)
        .execute(connection)
        .await?;
    Ok(())
}

/// The item categories a group's partners may request.
pub async fn group_categories(
    connection: &mut PgConnection,
    organization_id: Uuid,
    group: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT item_category_id FROM partner_group_item_category
         WHERE organization_id = $1 AND partner_group_id = $2 ORDER BY item_category_id",
    )
    .bind(organization_id)
    .bind(group)
    .fetch_all(connection)
    .await
}

/// Whether `group` is one of the bank's groups.
pub async fn group_exists(
    connection: &mut PgConnection,
    organization_id: Uuid,
    group: Uuid,
) -> Result<bool, sqlx::Error> {
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM partner_group WHERE organization_id = $1 AND id = $2")
            .bind(organization_id)
            .bind(group)
            .fetch_optional(connection)
            .await?;
    Ok(exists.is_some())
}
