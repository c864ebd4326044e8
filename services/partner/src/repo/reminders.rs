//! SQL of the deadline reminders: who may be reminded, and each bank's daily run claim.

use sqlx::PgConnection;
use time::Date;
use uuid::Uuid;

/// A bank's partner that may be reminded, with its group's schedule when it has a group.
#[derive(sqlx::FromRow)]
pub struct Candidate {
    pub id: Uuid,
    pub group_deadline_day: Option<i32>,
    pub group_reminder_day: Option<i32>,
    pub group_id: Option<Uuid>,
}

pub async fn reminder_candidates(
    connection: &mut PgConnection,
    organization_id: Uuid,
) -> Result<Vec<Candidate>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id, g.deadline_day AS group_deadline_day, g.reminder_day AS group_reminder_day,
                g.id AS group_id
         FROM partner p LEFT JOIN partner_group g ON g.id = p.partner_group_id
         WHERE p.organization_id = $1 AND p.status <> 'deactivated'
         ORDER BY p.name, p.id",
    )
    .bind(organization_id)
    .fetch_all(connection)
    .await
}

/// Claims a bank's run for `day`; false when a replica already ran it.
pub async fn claim_reminder_run(
    connection: &mut PgConnection,
    organization_id: Uuid,
    day: Date,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO reminder_run (organization_id, day) VALUES ($1, $2)
         ON CONFLICT ON CONSTRAINT reminder_run_pkey DO NOTHING",
    )
    .bind(organization_id)
    .bind(day)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(claimed > 0)
}

pub async fn record_reminder_run(
    connection: &mut PgConnection,
    organization_id: Uuid,
    day: Date,
    reminded: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reminder_run SET reminded = $3 WHERE organization_id = $1 AND day = $2")
        .bind(organization_id)
        .bind(day)
        .bind(reminded)
        .execute(connection)
        .await?;
    Ok(())
}
