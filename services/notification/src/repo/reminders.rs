//! The reminder runs: which banks and distributions are due on a day, and the (bank, day,
//! kind) claim that makes one replica log them.

use super::*;

/// Banks with scheduled distributions in `[from, to)`.
pub async fn banks_with_distributions_between(
    pool: &PgPool,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT organization_id FROM distribution
          WHERE state = 'scheduled' AND issued_at >= $1 AND issued_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// A bank's scheduled distributions in `[from, to)`, as (id, encoded snapshot).
pub async fn scheduled_distributions_between(
    pool: &PgPool,
    organization_id: Uuid,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<(Uuid, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT distribution_id, snapshot FROM distribution
          WHERE organization_id = $1 AND state = 'scheduled' AND issued_at >= $2 AND issued_at < $3
          ORDER BY issued_at, distribution_id",
    )
    .bind(organization_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// Claims the (bank, day, kind) run: `true` for the one replica that gets it.
pub async fn claim_reminder_run(
    connection: &mut PgConnection,
    organization_id: Uuid,
    day: time::Date,
    kind: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO reminder_run (organization_id, day, kind) VALUES ($1, $2, $3)
         ON CONFLICT ON CONSTRAINT reminder_run_pkey DO NOTHING",
    )
    .bind(organization_id)
    .bind(day)
    .bind(kind)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}
