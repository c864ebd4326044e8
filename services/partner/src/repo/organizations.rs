//! SQL of banks (organizations) and their settings.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrganizationRow {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub url: String,
    pub street: String,
    pub city: String,
    pub state: String,
    pub zip_code: String,
    pub one_step_partner_invite: bool,
    pub deadline_day: Option<i32>,
    pub reminder_day: Option<i32>,
    pub reminder_email_text: String,
    pub default_email_text: String,
    pub invitation_text: String,
    pub default_storage_location_id: Option<Uuid>,
    pub receive_email_on_requests: bool,
    pub enable_quantity_based_requests: bool,
    pub enable_individual_requests: bool,
    pub enable_child_based_requests: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// When the bank used its one partner import (read, never written through this row).
    pub partners_imported_at: Option<OffsetDateTime>,
}

const ORGANIZATION_COLUMNS: &str = "id, name, email, url, street, city, state, zip_code, \
    one_step_partner_invite, deadline_day, reminder_day, reminder_email_text, default_email_text, \
    invitation_text, default_storage_location_id, receive_email_on_requests, \
    enable_quantity_based_requests, enable_individual_requests, enable_child_based_requests, \
    created_at, updated_at, \
    (SELECT imported_at FROM partner_import i WHERE i.organization_id = organization.id) \
    AS partners_imported_at";

pub async fn insert_organization(
    connection: &mut PgConnection,
    organization: &OrganizationRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO organization (id, name, email, url, street, city, state, zip_code,
            one_step_partner_invite, deadline_day, reminder_day, reminder_email_text,
            default_email_text, invitation_text, default_storage_location_id,
            receive_email_on_requests, enable_quantity_based_requests, enable_individual_requests,
            enable_child_based_requests)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)",
    )
    .bind(organization.id)
    .bind(&organization.name)
    .bind(&organization.email)
    .bind(&organization.url)
    .bind(&organization.street)
    .bind(&organization.city)
    .bind(&organization.state)
    .bind(&organization.zip_code)
    .bind(organization.one_step_partner_invite)
    .bind(organization.deadline_day)
    .bind(organization.reminder_day)
    .bind(&organization.reminder_email_text)
    .bind(&organization.default_email_text)
    .bind(&organization.invitation_text)
    .bind(organization.default_storage_location_id)
    .bind(organization.receive_email_on_requests)
    .bind(organization.enable_quantity_based_requests)
    .bind(organization.enable_individual_requests)
    .bind(organization.enable_child_based_requests)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn update_organization(
    connection: &mut PgConnection,
    organization: &OrganizationRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE organization SET name = $2, email = $3, url = $4, street = $5, city = $6,
            state = $7, zip_code = $8, one_step_partner_invite = $9, deadline_day = $10,
            reminder_day = $11, reminder_email_text = $12, default_email_text = $13,
            invitation_text = $14, default_storage_location_id = $15,
            receive_email_on_requests = $16, enable_quantity_based_requests = $17,
            enable_individual_requests = $18, enable_child_based_requests = $19,
            updated_at = now()
         WHERE id = $1",
    )
    .bind(organization.id)
    .bind(&organization.name)
    .bind(&organization.email)
    .bind(&organization.url)
    .bind(&organization.street)
    .bind(&organization.city)
    .bind(&organization.state)
    .bind(&organization.zip_code)
    .bind(organization.one_step_partner_invite)
    .bind(organization.deadline_day)
    .bind(organization.reminder_day)
    .bind(&organization.reminder_email_text)
    .bind(&organization.default_email_text)
    .bind(&organization.invitation_text)
    .bind(organization.default_storage_location_id)
    .bind(organization.receive_email_on_requests)
    .bind(organization.enable_quantity_based_requests)
    .bind(organization.enable_individual_requests)
    .bind(organization.enable_child_based_requests)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn organization(
    connection: &mut PgConnection,
    id: Uuid,
) -> Result<Option<OrganizationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORGANIZATION_COLUMNS} FROM organization WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(connection)
    .await
}

pub async fn list_organizations(
    connection: &mut PgConnection,
    after_name: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<OrganizationRow>, sqlx::Error> {
    let (name, id) = after_name.unwrap_or_default();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORGANIZATION_COLUMNS} FROM organization
         WHERE (name, id) > ($1, $2) ORDER BY name, id LIMIT $3"
    )))
    .bind(name)
    .bind(id)
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// Every bank's id (the reminder job's round).
pub async fn organization_ids(connection: &mut PgConnection) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM organization ORDER BY id")
        .fetch_all(connection)
        .await
}
