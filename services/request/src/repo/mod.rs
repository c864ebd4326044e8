//! SQL of the request part. Every query filters on `organization_id`; status changes are guarded
//! in the statement itself (`WHERE status IN (...)`), so two clicks or two tabs cannot both apply.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::RequestLine;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub partner_id: Uuid,
    pub request_type: String,
    pub status: String,
    pub comments: String,
    pub requester_user_id: Uuid,
    pub requester_name: String,
    pub requester_email: String,
    pub on_behalf_of_partner: bool,
    pub total_items: i32,
    pub quota: Option<i32>,
    pub distribution_id: Option<Uuid>,
    pub cancel_reason: String,
    pub cancelled_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const REQUEST_COLUMNS: &str = "r.id, r.organization_id, r.partner_id, r.request_type, r.status, \
    r.comments, r.requester_user_id, r.requester_name, r.requester_email, r.on_behalf_of_partner, \
    r.total_items, r.quota, r.distribution_id, r.cancel_reason, r.cancelled_at, r.created_at, \
    r.updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub request_id: Uuid,
    pub item_id: Uuid,
    pub item_name: String,
    pub quantity: i32,
    pub persons: i32,
}

/// A new request's row (timestamps come from the database).
pub struct NewRequestRow<'a> {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub partner_id: Uuid,
    pub request_type: &'a str,
    pub comments: &'a str,
    pub requester_user_id: Uuid,
    pub requester_name: &'a str,
    pub requester_email: &'a str,
    pub on_behalf_of_partner: bool,
    pub total_items: i32,
    pub quota: Option<i32>,
    pub idempotency_key: Option<&'a str>,
}

/// Inserts a request and its lines (one statement each); a reused idempotency key fails with the
/// unique violation `request_idempotency_key`.
pub async fn insert_request(
    connection: &mut PgConnection,
    request: &NewRequestRow<'_>,
    lines: &[RequestLine],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO request (id, organization_id, partner_id, request_type, comments,
            requester_user_id, requester_name, requester_email, on_behalf_of_partner, total_items,
            quota, idempotency_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(request.id)
    .bind(request.organization_id)
    .bind(request.partner_id)
    .bind(request.request_type)
    .bind(request.comments)
    .bind(request.requester_user_id)
    .bind(request.requester_name)
    .bind(request.requester_email)
    .bind(request.on_behalf_of_partner)
    .bind(request.total_items)
    .bind(request.quota)
    .bind(request.idempotency_key)
    .execute(&mut *connection)
    .await?;
    if lines.is_empty() {
        return Ok(());
    }
    let positions: Vec<i32> = (0..lines.len())
        .map(|position| i32::try_from(position).unwrap_or(i32::MAX))
        .collect();
    let item_ids: Vec<Uuid> = lines.iter().map(|line| line.item_id).collect();
    let names: Vec<String> = lines.iter().map(|line| line.item_name.clone()).collect();
    let quantities: Vec<i32> = lines.iter().map(|line| line.quantity).collect();
    let persons: Vec<i32> = lines.iter().map(|line| line.persons).collect();
    sqlx::query(
        "INSERT INTO request_item (request_id, organization_id, position, item_id, item_name,
            quantity, persons)
         SELECT $1, $2, position, item_id, item_name, quantity, persons
         FROM UNNEST($3::integer[], $4::uuid[], $5::text[], $6::integer[], $7::integer[])
              AS line (position, item_id, item_name, quantity, persons)",
    )
    .bind(request.id)
    .bind(request.organization_id)
    .bind(positions)
    .bind(item_ids)
    .bind(names)
    .bind(quantities)
    .bind(persons)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// One request of the bank (and of `partner_id` when given); `lock` takes a row lock for a
/// status change.
pub async fn request(
    connection: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
    partner_id: Option<Uuid>,
    lock: bool,
) -> Result<Option<RequestRow>, sqlx::Error> {
    let lock = if lock { "FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM request r
         WHERE r.organization_id = $1 AND r.id = $2 AND ($3::uuid IS NULL OR r.partner_id = $3)
         {lock}"
    )))
    .bind(organization_id)
    .bind(id)
    .bind(partner_id)
    .fetch_optional(connection)
    .await
}

/// The request a creating call with this idempotency key made.
pub async fn request_by_idempotency_key(
    connection: &mut PgConnection,
    organization_id: Uuid,
    key: &str,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM request r
         WHERE r.organization_id = $1 AND r.idempotency_key = $2"
    )))
    .bind(organization_id)
    .bind(key)
    .fetch_optional(connection)
    .await
}

/// The lines of these requests, in their order.
pub async fn items(
    connection: &mut PgConnection,
    organization_id: Uuid,
    request_ids: &[Uuid],
) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_id, item_id, item_name, quantity, persons FROM request_item
         WHERE organization_id = $1 AND request_id = ANY($2)
         ORDER BY request_id, position",
    )
    .bind(organization_id)
    .bind(request_ids)
    .fetch_all(connection)
    .await
}

/// What a list is narrowed to.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    /// Empty: every status.
    pub statuses: Vec<String>,
    pub partner_id: Option<Uuid>,
    pub request_type: Option<String>,
    pub created_after: Option<OffsetDateTime>,
    pub created_before: Option<OffsetDateTime>,
    pub item_id: Option<Uuid>,
}

/// A page of the bank's requests, newest first, after the keyset `(created_at, id)`.
pub async fn list_requests(
    connection: &mut PgConnection,
    organization_id: Uuid,
    filter: &ListFilter,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    let (after_created, after_id) = match after {
        Some((created_at, id)) => (Some(created_at), Some(id)),
        None => (None, None),
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM request r
         WHERE r.organization_id = $1
           AND (cardinality($2::text[]) = 0 OR r.status = ANY($2))
           AND ($3::uuid IS NULL OR r.partner_id = $3)
           AND ($4::text IS NULL OR r.request_type = $4)
           AND ($5::timestamptz IS NULL OR r.created_at >= $5)
           AND ($6::timestamptz IS NULL OR r.created_at < $6)
           AND ($7::uuid IS NULL OR EXISTS (
                SELECT 1 FROM request_item i
                WHERE i.organization_id = r.organization_id AND i.request_id = r.id
                  AND i.item_id = $7))
           AND ($8::timestamptz IS NULL OR (r.created_at, r.id) < ($8, $9::uuid))
         ORDER BY r.created_at DESC, r.id DESC
         LIMIT $10"
    )))
    .bind(organization_id)
    .bind(&filter.statuses)
    .bind(filter.partner_id)
    .bind(filter.request_type.as_deref())
    .bind(filter.created_after)
    .bind(filter.created_before)
    .bind(filter.item_id)
    .bind(after_created)
    .bind(after_id)
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// pending or started → started; `None` when the request is not open (any more).
pub async fn start(
    connection: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE request r SET status = 'started', started_at = COALESCE(r.started_at, now()),
            updated_at = now()
         WHERE r.organization_id = $1 AND r.id = $2 AND r.status IN ('pending', 'started')
         RETURNING {REQUEST_COLUMNS}"
    )))
    .bind(organization_id)
    .bind(id)
    .fetch_optional(connection)
    .await
}

/// pending or started → cancelled with a reason; `None` when the request is not open (any more).
pub async fn cancel(
    connection: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
    reason: &str,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE request r SET status = 'cancelled', cancel_reason = $3, cancelled_at = now(),
            updated_at = now()
         WHERE r.organization_id = $1 AND r.id = $2 AND r.status IN ('pending', 'started')
         RETURNING {REQUEST_COLUMNS}"
    )))
    .bind(organization_id)
    .bind(id)
    .bind(reason)
    .fetch_optional(connection)
    .await
}

/// pending or started → fulfilled by this distribution; `None` when the request is unknown,
/// already fulfilled or cancelled (a duplicate or late event).
pub async fn fulfil(
    connection: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
    distribution_id: Uuid,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE request r SET status = 'fulfilled', distribution_id = $3, fulfilled_at = now(),
            updated_at = now()
         WHERE r.organization_id = $1 AND r.id = $2 AND r.status IN ('pending', 'started')
         RETURNING {REQUEST_COLUMNS}"
    )))
    .bind(organization_id)
    .bind(id)
    .bind(distribution_id)
    .fetch_optional(connection)
    .await
}

/// The distribution that fulfilled a request was reclaimed: the link is cleared (the request
/// stays fulfilled). Returns how many rows changed (0 when the link was already gone).
pub async fn clear_distribution(
    connection: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
    distribution_id: Uuid,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE request SET distribution_id = NULL, updated_at = now()
         WHERE organization_id = $1 AND id = $2 AND distribution_id = $3",
    )
    .bind(organization_id)
    .bind(id)
    .bind(distribution_id)
    .execute(connection)
    .await?
    .rows_affected())
}
