//! SQL of the token revocation log.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// The version logged for an id that is gone for good (a deleted role grant or service account):
/// no token naming it (as `rid` or `sub`) is good again.
pub const GONE_FOR_GOOD: i32 = i32::MAX;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevocationRow {
    pub subject_id: Uuid,
    pub token_version: i32,
    pub revoked_at: OffsetDateTime,
}

/// Bumps these users' token versions and logs each bump, in the caller's transaction.
pub async fn revoke_user_tokens(
    connection: &mut PgConnection,
    user_ids: &[Uuid],
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "WITH bumped AS (
             UPDATE app_user SET token_version = token_version + 1
              WHERE id = ANY($1) RETURNING id, token_version)
         INSERT INTO token_revocation (subject_id, token_version, reason)
         SELECT id, token_version, $2 FROM bumped",
    )
    .bind(user_ids)
    .bind(reason)
    .execute(connection)
    .await?;
    Ok(result.rows_affected())
}

/// Logs that no token naming these ids (deleted role grants, a deleted service account) is good
/// any more.
pub async fn revoke_for_good(
    connection: &mut PgConnection,
    ids: &[Uuid],
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO token_revocation (subject_id, token_version, reason)
         SELECT id, $2, $3 FROM unnest($1::uuid[]) AS id",
    )
    .bind(ids)
    .bind(GONE_FOR_GOOD)
    .bind(reason)
    .execute(connection)
    .await?;
    Ok(())
}

/// The users holding a partner role on this partner.
pub async fn partner_user_ids(
    connection: &mut PgConnection,
    partner_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT user_id FROM role_grant WHERE partner_id = $1 AND kind = 'partner'",
    )
    .bind(partner_id)
    .fetch_all(connection)
    .await
}

/// The revocations logged since `since` (the log's clock), oldest first, at most `limit`.
pub async fn revocations_since(
    connection: &mut PgConnection,
    since: OffsetDateTime,
    limit: i64,
) -> Result<Vec<RevocationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT subject_id, token_version, revoked_at FROM token_revocation
          WHERE revoked_at >= $1 ORDER BY revoked_at, id LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// Forgets revocations a day old: every token they refused expired long since.
pub async fn forget_old_revocations(connection: &mut PgConnection) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM token_revocation WHERE revoked_at < now() - interval '1 day'")
            .execute(connection)
            .await?
            .rows_affected(),
    )
}

/// The log's clock, so that pollers never compare their own clocks with it.
pub async fn now(connection: &mut PgConnection) -> Result<OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(connection)
        .await
}
