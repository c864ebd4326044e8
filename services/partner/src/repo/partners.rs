//! SQL of partners.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::PartnerStatus;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PartnerRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub email: String,
    pub status: String,
    pub send_reminders: bool,
    pub quota: Option<i32>,
    pub notes: String,
    pub info_for_partner: String,
    pub partner_group_id: Option<Uuid>,
    pub default_storage_location_id: Option<Uuid>,
    pub review_requested_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Derived: uninvited, no users, and no requests or distributions (counted from events).
    pub deletable: bool,
}

impl PartnerRow {
    pub fn status(&self) -> PartnerStatus {
        // The column's CHECK constraint admits only known names.
        PartnerStatus::parse(&self.status).unwrap_or(PartnerStatus::Uninvited)
    }
}

const PARTNER_SELECT: &str = "SELECT p.id, p.organization_id, p.name, p.email, p.status, \
    p.send_reminders, p.quota, p.notes, p.info_for_partner, p.partner_group_id, \
    p.default_storage_location_id, p.review_requested_at, p.created_at, p.updated_at, \
    (p.status = 'uninvited' \
        AND NOT EXISTS (SELECT 1 FROM role_grant r WHERE r.partner_id = p.id) \
        AND NOT EXISTS (SELECT 1 FROM partner_activity a WHERE a.partner_id = p.id)) AS deletable \
    FROM partner p";

pub async fn insert_partner(
    connection: &mut PgConnection,
    partner: &PartnerRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO partner (id, organization_id, name, email, status, send_reminders, quota,
            notes, info_for_partner, partner_group_id, default_storage_location_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(partner.id)
    .bind(partner.organization_id)
    .bind(&partner.name)
    .bind(&partner.email)
    .bind(&partner.status)
    .bind(partner.send_reminders)
    .bind(partner.quota)
    .bind(&partner.notes)
    .bind(&partner.info_for_partner)
    .bind(partner.partner_group_id)
    .bind(partner.default_storage_location_id)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn update_partner(
    connection: &mut PgConnection,
    partner: &PartnerRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE partner SET name = $3, email = $4, status = $5, send_reminders = $6, quota = $7,
            notes = $8, info_for_partner = $9, partner_group_id = $10,
            default_storage_location_id = $11, review_requested_at = $12, updated_at = now()
         WHERE id = $1 AND organization_id = $2",
    )
    .bind(partner.id)
    .bind(partner.organization_id)
    .bind(&partner.name)
    .bind(&partner.email)
    .bind(&partner.status)
    .bind(partner.send_reminders)
    .bind(partner.quota)
    .bind(&partner.notes)
    .bind(&partner.info_for_partner)
    .bind(partner.partner_group_id)
    .bind(partner.default_storage_location_id)
    .bind(partner.review_requested_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// One of the bank's partners; `lock` takes a row lock for a status change.
pub async fn partner(
    connection: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
    lock: bool,
) -> Result<Option<PartnerRow>, sqlx::Error> {
    let lock_clause = if lock { " FOR UPDATE OF p" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PARTNER_SELECT} WHERE p.organization_id = $1 AND p.id = $2{lock_clause}"
    )))
    .bind(organization_id)
    .bind(id)
    .fetch_optional(connection)
    .await
}

pub async fn partners_by_ids(
    connection: &mut PgConnection,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<PartnerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PARTNER_SELECT} WHERE p.organization_id = $1 AND p.id = ANY($2) ORDER BY p.name, p.id"
    )))
    .bind(organization_id)
    .bind(ids)
    .fetch_all(connection)
    .await
}

/// A page of the bank's partners by name.
pub async fn list_partners(
    connection: &mut PgConnection,
    organization_id: Uuid,
    statuses: &[String],
    partner_group_id: Option<Uuid>,
    query: Option<&str>,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<PartnerRow>, sqlx::Error> {
    let (after_name, after_id) = after.unwrap_or_default();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PARTNER_SELECT}
         WHERE p.organization_id = $1
           AND p.status = ANY($2)
           AND ($3::uuid IS NULL OR p.partner_group_id = $3)
           AND ($4::text IS NULL OR p.name ILIKE '%' || $4 || '%' OR p.email ILIKE '%' || $4 || '%')
           AND (p.name, p.id) > ($5, $6)
         ORDER BY p.name, p.id
         LIMIT $7"
    )))
    .bind(organization_id)
    .bind(statuses)
    .bind(partner_group_id)
    .bind(query)
    .bind(after_name)
    .bind(after_id)
    .bind(limit)
    .fetch_all(connection)
    .await
}

pub async fn delete_partner(
    connection: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM partner WHERE organization_id = $1 AND id = $2")
            .bind(organization_id)
            .bind(id)
            .execute(connection)
            .await?
            .rows_affected(),
    )
}
