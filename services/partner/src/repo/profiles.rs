//! SQL of partner profiles (one encoded proto document per partner).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

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
