//! Distributions to partners (their lines are in document_line).

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{IssuedCursor, lines_of};
use super::text_enum;
use crate::domain::{
    DeliveryMethod, DistributionState, DocumentId, Line, OrganizationId, PartnerId,
    StorageLocationId, UserId,
};

/// The user who submitted the request a distribution fulfils, as of the distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub user_id: Option<UserId>,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    pub id: DocumentId,
    pub partner_id: PartnerId,
    pub storage_location_id: StorageLocationId,
    pub issued_at: OffsetDateTime,
    pub delivery_method: DeliveryMethod,
    pub shipping_cost_in_cents: i64,
    pub comment: String,
    pub agency_rep: String,
    pub request_id: Option<Uuid>,
    pub requester: Option<Requester>,
    pub state: DistributionState,
    pub reminder_email_enabled: bool,
    pub user_id: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub lines: Vec<Line>,
}

macro_rules! distribution_columns {
    () => {
        "id, partner_id, storage_location_id, issued_at, delivery_method, shipping_cost_in_cents, comment, \
         agency_rep, request_id, requester_user_id, requester_name, requester_email, state, reminder_email_enabled, user_id, created_at, updated_at"
    };
}

fn distribution_from_row(row: &PgRow) -> Result<Distribution, sqlx::Error> {
    Ok(Distribution {
        id: row.try_get("id")?,
        partner_id: row.try_get("partner_id")?,
        storage_location_id: row.try_get("storage_location_id")?,
        issued_at: row.try_get("issued_at")?,
        delivery_method: text_enum(row, "delivery_method", DeliveryMethod::parse)?,
        shipping_cost_in_cents: row.try_get("shipping_cost_in_cents")?,
        comment: row.try_get("comment")?,
        agency_rep: row.try_get("agency_rep")?,
        request_id: row.try_get("request_id")?,
        requester: {
            let user_id: Option<UserId> = row.try_get("requester_user_id")?;
            let name: String = row.try_get("requester_name")?;
            let email: String = row.try_get("requester_email")?;
            if user_id.is_none() && email.is_empty() {
                None
            } else {
                Some(Requester {
                    user_id,
                    name,
                    email,
                })
            }
        },
        state: text_enum(row, "state", DistributionState::parse)?,
        reminder_email_enabled: row.try_get("reminder_email_enabled")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        lines: Vec::new(),
    })
}

/// Inserts the distribution (not its lines); fails with the unique violation
/// `distribution_request_key` when its request already has a distribution.
pub async fn insert(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    distribution: &Distribution,
) -> Result<(OffsetDateTime, OffsetDateTime), sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO distribution (id, organization_id, partner_id, storage_location_id, issued_at,
             delivery_method, shipping_cost_in_cents, comment, agency_rep, request_id, state,
             reminder_email_enabled, user_id, requester_user_id, requester_name, requester_email)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         RETURNING created_at, updated_at",
    )
    .bind(distribution.id)
    .bind(organization_id)
    .bind(distribution.partner_id)
    .bind(distribution.storage_location_id)
    .bind(distribution.issued_at)
    .bind(distribution.delivery_method.as_str())
    .bind(distribution.shipping_cost_in_cents)
    .bind(&distribution.comment)
    .bind(&distribution.agency_rep)
    .bind(distribution.request_id)
    .bind(distribution.state.as_str())
    .bind(distribution.reminder_email_enabled)
    .bind(distribution.user_id)
    .bind(distribution.requester.as_ref().and_then(|r| r.user_id))
    .bind(
        distribution
            .requester
            .as_ref()
            .map(|r| r.name.as_str())
            .unwrap_or_default(),
    )
    .bind(
        distribution
            .requester
            .as_ref()
            .map(|r| r.email.as_str())
            .unwrap_or_default(),
    )
    .fetch_one(&mut *connection)
    .await?;
    Ok((row.try_get("created_at")?, row.try_get("updated_at")?))
}

/// Writes the editable fields and the state; returns the new updated_at.
pub async fn update(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    distribution: &Distribution,
) -> Result<OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE distribution SET storage_location_id = $3, issued_at = $4, delivery_method = $5,
             shipping_cost_in_cents = $6, comment = $7, agency_rep = $8, state = $9,
             reminder_email_enabled = $10, updated_at = now()
         WHERE organization_id = $1 AND id = $2 RETURNING updated_at",
    )
    .bind(organization_id)
    .bind(distribution.id)
    .bind(distribution.storage_location_id)
    .bind(distribution.issued_at)
    .bind(distribution.delivery_method.as_str())
    .bind(distribution.shipping_cost_in_cents)
    .bind(&distribution.comment)
    .bind(&distribution.agency_rep)
    .bind(distribution.state.as_str())
    .bind(distribution.reminder_email_enabled)
    .fetch_one(&mut *connection)
    .await
}

pub async fn get(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: DocumentId,
    lock: bool,
) -> Result<Option<Distribution>, sqlx::Error> {
    let query = if lock {
        concat!(
            "SELECT ",
            distribution_columns!(),
            " FROM distribution WHERE organization_id = $1 AND id = $2 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            distribution_columns!(),
            " FROM distribution WHERE organization_id = $1 AND id = $2"
        )
    };
    let row = sqlx::query(query)
        .bind(organization_id)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut distribution = distribution_from_row(&row)?;
    distribution.lines = lines_of(connection, organization_id, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(Some(distribution))
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DistributionFilter {
    pub partner_id: Option<PartnerId>,
    pub storage_location_id: Option<StorageLocationId>,
    pub state: Option<DistributionState>,
    /// Scheduled and issued at or after this moment.
    pub upcoming_from: Option<OffsetDateTime>,
    /// Issued before this moment (prior distributions).
    pub issued_after: Option<OffsetDateTime>,
    pub issued_before: Option<OffsetDateTime>,
    pub request_id: Option<Uuid>,
}

pub async fn list(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    filter: DistributionFilter,
    cursor: Option<IssuedCursor>,
    limit: i64,
) -> Result<Vec<Distribution>, sqlx::Error> {
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(concat!(
        "SELECT ",
        distribution_columns!(),
        " FROM distribution WHERE organization_id = "
    ));
    query.push_bind(organization_id);
    if let Some(partner) = filter.partner_id {
        query.push(" AND partner_id = ").push_bind(partner);
    }
    if let Some(location) = filter.storage_location_id {
        query
            .push(" AND storage_location_id = ")
            .push_bind(location);
    }
    if let Some(state) = filter.state {
        query.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(from) = filter.upcoming_from {
        query
            .push(" AND state = 'scheduled' AND issued_at >= ")
            .push_bind(from);
    }
    if let Some(after) = filter.issued_after {
        query.push(" AND issued_at >= ").push_bind(after);
    }
    if let Some(before) = filter.issued_before {
        query.push(" AND issued_at < ").push_bind(before);
    }
    if let Some(request) = filter.request_id {
        query.push(" AND request_id = ").push_bind(request);
    }
    if let Some(cursor) = cursor {
        query
            .push(" AND (issued_at, id) < (")
            .push_bind(cursor.issued_at)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
    query
        .push(" ORDER BY issued_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    let rows = query.build().fetch_all(&mut *connection).await?;
    let mut distributions = rows
        .iter()
        .map(distribution_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<DocumentId> = distributions.iter().map(|d| d.id).collect();
    let mut lines = lines_of(connection, organization_id, &ids).await?;
    for distribution in &mut distributions {
        distribution.lines = lines.remove(&distribution.id).unwrap_or_default();
    }
    Ok(distributions)
}
