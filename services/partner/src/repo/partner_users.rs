//! SQL of the users holding a bank's or a partner's roles.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

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
/// Deletes the grants; answers their ids (for the revocation log).
pub async fn revoke_roles(
    connection: &mut PgConnection,
    user_id: Uuid,
    organization_id: Uuid,
    partner_id: Option<Uuid>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    match partner_id {
        Some(partner_id) => {
            sqlx::query_scalar(
                "DELETE FROM role_grant WHERE user_id = $1 AND organization_id = $2
                   AND partner_id = $3 AND kind = 'partner' RETURNING id",
            )
            .bind(user_id)
            .bind(organization_id)
            .bind(partner_id)
            .fetch_all(connection)
            .await
        }
        None => {
            sqlx::query_scalar(
                "DELETE FROM role_grant WHERE user_id = $1 AND organization_id = $2
                   AND kind IN ('org_admin', 'org_user') RETURNING id",
            )
            .bind(user_id)
            .bind(organization_id)
            .fetch_all(connection)
            .await
        }
    }
}
