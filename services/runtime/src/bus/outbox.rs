//! Writing events to the outbox inside the caller's transaction.

use sqlx::PgConnection;
use uuid::Uuid;

use super::NewEvent;

/// The channel the relay listens on; NOTIFY is delivered when the transaction commits.
pub(crate) const NOTIFY_CHANNEL: &str = "essentials_outbox";

/// Writes the event in the caller's transaction: it is published if and only if that
/// transaction commits.
pub async fn enqueue(connection: &mut PgConnection, event: &NewEvent) -> Result<Uuid, sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (id, event_type, organization_id, envelope, traceparent)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event.id)
    .bind(&event.event_type)
    .bind(event.organization_id)
    .bind(&event.envelope)
    .bind(crate::telemetry::current_traceparent())
    .execute(&mut *connection)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *connection)
        .await?;
    // A caller's change publishes its events in its transaction: the audit row goes with them.
    crate::audit::record(
        connection,
        crate::audit::Audited {
            organization_id: event.organization_id,
            event_type: Some(&event.event_type),
            ..Default::default()
        },
    )
    .await?;
    Ok(event.id)
}

/// How many events wait to be published.
pub async fn pending_count(pool: &sqlx::PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
}
