//! SQL of the partner part. Every bank-scoped query filters on `organization_id`.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::PartnerStatus;

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

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub invitation_accepted_at: Option<OffsetDateTime>,
    pub last_sign_in_at: Option<OffsetDateTime>,
    pub last_role_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

const USER_COLUMNS: &str = "id, email, name, password_hash, invitation_accepted_at, \
    last_sign_in_at, last_role_id, created_at";

pub async fn user_by_email(
    connection: &mut PgConnection,
    email: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM app_user WHERE email = $1"
    )))
    .bind(email)
    .fetch_optional(connection)
    .await
}

pub async fn user(connection: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM app_user WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(connection)
    .await
}

/// The user with this (normalized) e-mail, created without a password when new; the flag says
/// whether it existed.
pub async fn ensure_user(
    connection: &mut PgConnection,
    email: &str,
    name: Option<&str>,
) -> Result<(UserRow, bool), sqlx::Error> {
    let inserted: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO app_user (id, email, name) VALUES ($1, $2, $3)
         ON CONFLICT (email) DO NOTHING RETURNING {USER_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(name.filter(|name| !name.trim().is_empty()))
    .fetch_optional(&mut *connection)
    .await?;
    match inserted {
        Some(user) => Ok((user, false)),
        None => {
            let existing = user_by_email(connection, email)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?;
            Ok((existing, true))
        }
    }
}

pub async fn set_password(
    connection: &mut PgConnection,
    user_id: Uuid,
    password_hash: &str,
    name: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE app_user SET password_hash = $2, name = COALESCE($3, name),
            invitation_accepted_at = COALESCE(invitation_accepted_at, now()), updated_at = now()
         WHERE id = $1",
    )
    .bind(user_id)
    .bind(password_hash)
    .bind(name.filter(|name| !name.trim().is_empty()))
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn record_sign_in(
    connection: &mut PgConnection,
    user_id: Uuid,
    role_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET last_sign_in_at = now(), last_role_id = $2 WHERE id = $1")
        .bind(user_id)
        .bind(role_id)
        .execute(connection)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoleRow {
    pub id: Uuid,
    pub kind: String,
    pub organization_id: Option<Uuid>,
    pub partner_id: Option<Uuid>,
    pub organization_name: Option<String>,
    pub partner_name: Option<String>,
}

/// A user's roles, strongest first (super_admin > org_admin > org_user > partner).
pub async fn roles(
    connection: &mut PgConnection,
    user_id: Uuid,
) -> Result<Vec<RoleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.kind, r.organization_id, r.partner_id, o.name AS organization_name,
                p.name AS partner_name
         FROM role_grant r
         LEFT JOIN organization o ON o.id = r.organization_id
         LEFT JOIN partner p ON p.id = r.partner_id
         WHERE r.user_id = $1
         ORDER BY CASE r.kind WHEN 'super_admin' THEN 0 WHEN 'org_admin' THEN 1
                              WHEN 'org_user' THEN 2 ELSE 3 END, r.created_at, r.id",
    )
    .bind(user_id)
    .fetch_all(connection)
    .await
}

/// Grants a role; `false` when the user already had it.
pub async fn grant_role(
    connection: &mut PgConnection,
    user_id: Uuid,
    kind: &str,
    organization_id: Option<Uuid>,
    partner_id: Option<Uuid>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO role_grant (id, user_id, kind, organization_id, partner_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT ON CONSTRAINT role_grant_unique DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(kind)
    .bind(organization_id)
    .bind(partner_id)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Stores a new invitation (hash of its token) for a user.
pub async fn insert_invitation(
    connection: &mut PgConnection,
    token_hash: &[u8],
    user_id: Uuid,
    organization_id: Option<Uuid>,
    expires_at: OffsetDateTime,
    purpose: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invitation (token_hash, user_id, organization_id, expires_at, purpose)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(organization_id)
    .bind(expires_at)
    .bind(purpose)
    .execute(connection)
    .await?;
    Ok(())
}

/// Marks a user's unused invitations used, so that only the one issued next works.
pub async fn void_invitations(
    connection: &mut PgConnection,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invitation SET used_at = now()
         WHERE user_id = $1 AND used_at IS NULL AND purpose = 'invitation'",
    )
    .bind(user_id)
    .execute(connection)
    .await?;
    Ok(())
}

/// Whether the partner role grant a partner user's token names still exists: removing a
/// partner user deletes the grant, and their token must stop working for that partner then,
/// not when it expires.
pub async fn partner_grant_exists(
    connection: &mut PgConnection,
    role_id: Uuid,
    user_id: Uuid,
    organization_id: Uuid,
    partner_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM role_grant
                        WHERE id = $1 AND user_id = $2 AND kind = 'partner'
                          AND organization_id = $3 AND partner_id = $4)",
    )
    .bind(role_id)
    .bind(user_id)
    .bind(organization_id)
    .bind(partner_id)
    .fetch_one(connection)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub user_id: Uuid,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// The invitation with this token hash, locked for the caller's transaction.
pub async fn invitation_for_update(
    connection: &mut PgConnection,
    token_hash: &[u8],
    purpose: &str,
) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, expires_at, used_at FROM invitation
         WHERE token_hash = $1 AND purpose = $2 FOR UPDATE",
    )
    .bind(token_hash)
    .bind(purpose)
    .fetch_optional(connection)
    .await
}

pub async fn use_invitation(
    connection: &mut PgConnection,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE invitation SET used_at = now() WHERE token_hash = $1")
        .bind(token_hash)
        .execute(connection)
        .await?;
    Ok(())
}

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

pub async fn upsert_profile(
    connection: &mut PgConnection,
    organization_id: Uuid,
    partner_id: Uuid,
    profile: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO partner_profile (partner_id, organization_id, profile) VALUES ($1, $2, $3)
         ON CONFLICT (partner_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = now()",
    )
    .bind(partner_id)
    .bind(organization_id)
    .bind(profile)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn profile(
    connection: &mut PgConnection,
    organization_id: Uuid,
    partner_id: Uuid,
) -> Result<Option<(Vec<u8>, OffsetDateTime)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT profile, updated_at FROM partner_profile WHERE organization_id = $1 AND partner_id = $2",
    )
    .bind(organization_id)
    .bind(partner_id)
    .fetch_optional(connection)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PartnerUserRow {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub invitation_accepted_at: Option<OffsetDateTime>,
    pub last_sign_in_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// Users holding a role on the bank (`kind` org_*) or on a partner.
pub async fn users_with_role(
    connection: &mut PgConnection,
    organization_id: Uuid,
    partner_id: Option<Uuid>,
) -> Result<Vec<(PartnerUserRow, String)>, sqlx::Error> {
    type Row = (
        Uuid,
        String,
        Option<String>,
        Option<OffsetDateTime>,
        Option<OffsetDateTime>,
        OffsetDateTime,
        String,
    );
    let rows: Vec<Row> = match partner_id {
            Some(partner_id) => {
                sqlx::query_as(
                    "SELECT u.id, u.email, u.name, u.invitation_accepted_at, u.last_sign_in_at,
                            u.created_at, 'partner'
                     FROM app_user u JOIN role_grant r ON r.user_id = u.id
                     WHERE r.organization_id = $1 AND r.partner_id = $2 AND r.kind = 'partner'
                     ORDER BY u.created_at, u.id",
                )
                .bind(organization_id)
                .bind(partner_id)
                .fetch_all(connection)
                .await?
            }
            None => {
                sqlx::query_as(
                    "SELECT u.id, u.email, u.name, u.invitation_accepted_at, u.last_sign_in_at,
                            u.created_at,
                            CASE WHEN bool_or(r.kind = 'org_admin') THEN 'org_admin' ELSE 'org_user' END
                     FROM app_user u JOIN role_grant r ON r.user_id = u.id
                     WHERE r.organization_id = $1 AND r.kind IN ('org_admin', 'org_user')
                     GROUP BY u.id
                     ORDER BY u.created_at, u.id",
                )
                .bind(organization_id)
                .fetch_all(connection)
                .await?
            }
        };
    Ok(rows
        .into_iter()
        .map(
            |(id, email, name, invitation_accepted_at, last_sign_in_at, created_at, kind)| {
                (
                    PartnerUserRow {
                        id,
                        email,
                        name,
                        invitation_accepted_at,
                        last_sign_in_at,
                        created_at,
                    },
                    kind,
                )
            },
        )
        .collect())
}

/// Removes a user's roles on a bank (`partner_id` None: org roles) or a partner.
pub async fn revoke_roles(
    connection: &mut PgConnection,
    user_id: Uuid,
    organization_id: Uuid,
    partner_id: Option<Uuid>,
) -> Result<u64, sqlx::Error> {
    let result = match partner_id {
        Some(partner_id) => {
            sqlx::query(
                "DELETE FROM role_grant WHERE user_id = $1 AND organization_id = $2
                   AND partner_id = $3 AND kind = 'partner'",
            )
            .bind(user_id)
            .bind(organization_id)
            .bind(partner_id)
            .execute(connection)
            .await?
        }
        None => {
            sqlx::query(
                "DELETE FROM role_grant WHERE user_id = $1 AND organization_id = $2
                   AND kind IN ('org_admin', 'org_user')",
            )
            .bind(user_id)
            .bind(organization_id)
            .execute(connection)
            .await?
        }
    };
    Ok(result.rows_affected())
}
