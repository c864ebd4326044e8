//! SQL of users, role grants and invitation / reset links.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

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
    /// Goes into every token as `ver`; a revocation bumps it.
    pub token_version: i32,
}

const USER_COLUMNS: &str = "id, email, name, password_hash, invitation_accepted_at, \
    last_sign_in_at, last_role_id, created_at, token_version";

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

// ---- service accounts --------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServiceAccountRow {
    pub id: Uuid,
    pub name: String,
    pub client_id: String,
    pub secret_hash: String,
    pub organization_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

pub async fn insert_service_account(
    connection: &mut PgConnection,
    account: &ServiceAccountRow,
    created_by: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO service_account (id, name, client_id, secret_hash, organization_id, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(account.id)
    .bind(&account.name)
    .bind(&account.client_id)
    .bind(&account.secret_hash)
    .bind(account.organization_id)
    .bind(created_by)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn service_account(
    connection: &mut PgConnection,
    client_id: &str,
) -> Result<Option<ServiceAccountRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, client_id, secret_hash, organization_id, created_at
         FROM service_account WHERE client_id = $1",
    )
    .bind(client_id)
    .fetch_optional(connection)
    .await
}

/// A bank's accounts, or every one when `scope` is None (super admin).
pub async fn list_service_accounts(
    connection: &mut PgConnection,
    scope: Option<Uuid>,
) -> Result<Vec<ServiceAccountRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, client_id, secret_hash, organization_id, created_at FROM service_account
         WHERE ($1::uuid IS NULL OR organization_id = $1) ORDER BY created_at, id",
    )
    .bind(scope)
    .fetch_all(connection)
    .await
}

pub async fn delete_service_account(
    connection: &mut PgConnection,
    id: Uuid,
    scope: Option<Uuid>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM service_account WHERE id = $1 AND ($2::uuid IS NULL OR organization_id = $2)",
    )
    .bind(id)
    .bind(scope)
    .execute(connection)
    .await?
    .rows_affected())
}

/// Whether the user holds a role of `kind` in the bank (for `partner_id`, or bank-wide).
pub async fn holds_role(
    connection: &mut PgConnection,
    user_id: Uuid,
    organization_id: Uuid,
    kind: &str,
    partner_id: Option<Uuid>,
) -> Result<bool, sqlx::Error> {
    let holds: Option<String> = sqlx::query_scalar(
        "SELECT kind FROM role_grant WHERE user_id = $1 AND organization_id = $2
           AND kind = $3 AND partner_id IS NOT DISTINCT FROM $4",
    )
    .bind(user_id)
    .bind(organization_id)
    .bind(kind)
    .bind(partner_id)
    .fetch_optional(connection)
    .await?;
    Ok(holds.is_some())
}

/// Takes a bank's org_admin role from a user (org_user stays).
pub async fn revoke_org_admin(
    connection: &mut PgConnection,
    user_id: Uuid,
    organization_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM role_grant WHERE user_id = $1 AND organization_id = $2 AND kind = 'org_admin'
         RETURNING id",
    )
    .bind(user_id)
    .bind(organization_id)
    .fetch_all(connection)
    .await
}
