//! SQL of the one-time partner import's claim row.

use sqlx::PgConnection;
use uuid::Uuid;

/// Claims the bank's one import; false when it was used up. A concurrent import of the same
/// bank waits on the row (the unique key) until this transaction ends.
pub async fn claim_import(
    connection: &mut PgConnection,
    organization_id: Uuid,
    imported_by: Uuid,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO partner_import (organization_id, imported_count, skipped_count, imported_by)
         VALUES ($1, 0, 0, $2) ON CONFLICT (organization_id) DO NOTHING",
    )
    .bind(organization_id)
    .bind(imported_by)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(claimed > 0)
}

pub async fn record_import(
    connection: &mut PgConnection,
    organization_id: Uuid,
    imported: i32,
    skipped: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE partner_import SET imported_count = $2, skipped_count = $3 WHERE organization_id = $1",
    )
    .bind(organization_id)
    .bind(imported)
    .bind(skipped)
    .execute(connection)
    .await?;
    Ok(())
}
