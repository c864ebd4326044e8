//! The dashboard projection: the guarded writes of the event handlers (a row only moves
//! forward) and the one read of a bank's dashboard.

use super::*;

/// A request as request.created describes it.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub request_id: Uuid,
    pub partner_id: Option<Uuid>,
    pub partner_name: String,
    pub requester_name: String,
    pub requester_email: String,
    pub comments: String,
    pub created_at: OffsetDateTime,
}

/// Records a new request; a later status that arrived first is kept.
pub async fn record_request_created(
    connection: &mut PgConnection,
    organization_id: Uuid,
    request: &NewRequest,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dashboard_request (organization_id, request_id, partner_id, partner_name,
                requester_name, requester_email, comments, created_at, status, status_rank)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0)
         ON CONFLICT ON CONSTRAINT dashboard_request_pkey DO UPDATE
            SET partner_id = EXCLUDED.partner_id, partner_name = EXCLUDED.partner_name,
                requester_name = EXCLUDED.requester_name,
                requester_email = EXCLUDED.requester_email,
                comments = EXCLUDED.comments, created_at = EXCLUDED.created_at",
    )
    .bind(organization_id)
    .bind(request.request_id)
    .bind(request.partner_id)
    .bind(&request.partner_name)
    .bind(&request.requester_name)
    .bind(&request.requester_email)
    .bind(&request.comments)
    .bind(request.created_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Moves a request forward (never back); creates a placeholder if request.created is late.
pub async fn advance_request(
    connection: &mut PgConnection,
    organization_id: Uuid,
    request_id: Uuid,
    status: RequestStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dashboard_request (organization_id, request_id, status, status_rank)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT ON CONSTRAINT dashboard_request_pkey DO UPDATE
            SET status = EXCLUDED.status, status_rank = EXCLUDED.status_rank
          WHERE dashboard_request.status_rank < EXCLUDED.status_rank",
    )
    .bind(organization_id)
    .bind(request_id)
    .bind(status.as_str())
    .bind(status.rank())
    .execute(connection)
    .await?;
    Ok(())
}

/// A partner's review state as of an event.
#[derive(Debug, Clone)]
pub struct PartnerReview {
    pub partner_id: Uuid,
    pub name: String,
    pub primary_contact_name: String,
    pub primary_contact_email: String,
    pub awaiting_review: bool,
    pub review_requested_at: Option<OffsetDateTime>,
    /// The event's time: an older event never overrides a newer one.
    pub as_of: OffsetDateTime,
}

pub async fn record_partner_review(
    connection: &mut PgConnection,
    organization_id: Uuid,
    review: &PartnerReview,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dashboard_partner (organization_id, partner_id, name, primary_contact_name,
                primary_contact_email, awaiting_review, review_requested_at, status_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT ON CONSTRAINT dashboard_partner_pkey DO UPDATE
            SET name = EXCLUDED.name,
                primary_contact_name = CASE WHEN EXCLUDED.awaiting_review
                    THEN EXCLUDED.primary_contact_name ELSE dashboard_partner.primary_contact_name END,
                primary_contact_email = CASE WHEN EXCLUDED.awaiting_review
                    THEN EXCLUDED.primary_contact_email ELSE dashboard_partner.primary_contact_email END,
                awaiting_review = EXCLUDED.awaiting_review,
                review_requested_at = COALESCE(EXCLUDED.review_requested_at,
                                               dashboard_partner.review_requested_at),
                status_at = EXCLUDED.status_at
          WHERE dashboard_partner.status_at <= EXCLUDED.status_at",
    )
    .bind(organization_id)
    .bind(review.partner_id)
    .bind(&review.name)
    .bind(&review.primary_contact_name)
    .bind(&review.primary_contact_email)
    .bind(review.awaiting_review)
    .bind(review.review_requested_at)
    .bind(review.as_of)
    .execute(connection)
    .await?;
    Ok(())
}

/// An item's bank-wide level as of an event.
#[derive(Debug, Clone)]
pub struct StockLevel {
    pub item_id: Uuid,
    pub name: String,
    pub quantity: i32,
    pub minimum: i32,
    pub recommended: i32,
    pub as_of: OffsetDateTime,
}

pub async fn record_stock_level(
    connection: &mut PgConnection,
    organization_id: Uuid,
    level: &StockLevel,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dashboard_stock (organization_id, item_id, name, quantity, minimum,
                recommended, as_of)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT ON CONSTRAINT dashboard_stock_pkey DO UPDATE
            SET name = EXCLUDED.name, quantity = EXCLUDED.quantity, minimum = EXCLUDED.minimum,
                recommended = EXCLUDED.recommended, as_of = EXCLUDED.as_of
          WHERE dashboard_stock.as_of <= EXCLUDED.as_of",
    )
    .bind(organization_id)
    .bind(level.item_id)
    .bind(&level.name)
    .bind(level.quantity)
    .bind(level.minimum)
    .bind(level.recommended)
    .bind(level.as_of)
    .execute(connection)
    .await?;
    Ok(())
}

/// The latest snapshot of a distribution (older events are ignored).
pub async fn record_distribution(
    connection: &mut PgConnection,
    organization_id: Uuid,
    distribution_id: Uuid,
    issued_at: OffsetDateTime,
    state: &str,
    snapshot: &[u8],
    as_of: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO distribution (organization_id, distribution_id, issued_at, state, snapshot, as_of)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ON CONSTRAINT distribution_pkey DO UPDATE
            SET issued_at = EXCLUDED.issued_at, state = EXCLUDED.state,
                snapshot = EXCLUDED.snapshot, as_of = EXCLUDED.as_of
          WHERE distribution.as_of <= EXCLUDED.as_of AND distribution.state <> 'reclaimed'",
    )
    .bind(organization_id)
    .bind(distribution_id)
    .bind(issued_at)
    .bind(state)
    .bind(snapshot)
    .bind(as_of)
    .execute(connection)
    .await?;
    Ok(())
}

/// The bank's distributions the projection holds as scheduled and issued at or after `from`.
pub async fn scheduled_distribution_ids_from(
    pool: &PgPool,
    organization_id: Uuid,
    from: OffsetDateTime,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT distribution_id FROM distribution
          WHERE organization_id = $1 AND state = 'scheduled' AND issued_at >= $2
          ORDER BY distribution_id",
    )
    .bind(organization_id)
    .bind(from)
    .fetch_all(pool)
    .await
}

/// Bumps the bank's dashboard version and wakes its watchers (on commit).
pub async fn bump_dashboard_version(
    connection: &mut PgConnection,
    organization_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dashboard_version (organization_id, version, updated_at) VALUES ($1, 1, now())
         ON CONFLICT ON CONSTRAINT dashboard_version_pkey DO UPDATE
            SET version = dashboard_version.version + 1, updated_at = now()",
    )
    .bind(organization_id)
    .execute(&mut *connection)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(DASHBOARD_CHANNEL)
        .bind(organization_id.to_string())
        .execute(&mut *connection)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutstandingRequestRow {
    pub request_id: Uuid,
    pub partner_id: Option<Uuid>,
    pub partner_name: String,
    pub requester_name: String,
    pub requester_email: String,
    pub comments: String,
    pub created_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PartnerApprovalRow {
    pub partner_id: Uuid,
    pub name: String,
    pub primary_contact_name: String,
    pub primary_contact_email: String,
    pub review_requested_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LowStockRow {
    pub item_id: Uuid,
    pub name: String,
    pub quantity: i32,
    pub minimum: i32,
    pub recommended: i32,
}

/// The whole dashboard of one bank, read in one snapshot.
#[derive(Debug, Clone)]
pub struct DashboardRows {
    pub outstanding: Vec<OutstandingRequestRow>,
    pub outstanding_count: i64,
    pub approvals: Vec<PartnerApprovalRow>,
    pub low_stock: Vec<LowStockRow>,
    pub upcoming_distributions: i64,
    pub version: i64,
    pub updated_at: Option<OffsetDateTime>,
}

pub async fn load_dashboard(
    pool: &PgPool,
    organization_id: Uuid,
    week: (OffsetDateTime, OffsetDateTime),
    limit: i64,
) -> Result<DashboardRows, sqlx::Error> {
    // One repeatable-read transaction, so the sections and the version agree.
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *transaction)
        .await?;
    let version: Option<(i64, OffsetDateTime)> = sqlx::query_as(
        "SELECT version, updated_at FROM dashboard_version WHERE organization_id = $1",
    )
    .bind(organization_id)
    .fetch_optional(&mut *transaction)
    .await?;
    // Requests whose request.created has not arrived yet (no created_at) are left out until it does.
    let outstanding = sqlx::query_as(
        "SELECT request_id, partner_id, partner_name, requester_name, requester_email, comments,
                created_at
           FROM dashboard_request
          WHERE organization_id = $1 AND status_rank < 2 AND created_at IS NOT NULL
          ORDER BY created_at, request_id
          LIMIT $2",
    )
    .bind(organization_id)
    .bind(limit)
    .fetch_all(&mut *transaction)
    .await?;
    let outstanding_count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dashboard_request
          WHERE organization_id = $1 AND status_rank < 2 AND created_at IS NOT NULL",
    )
    .bind(organization_id)
    .fetch_one(&mut *transaction)
    .await?;
    let approvals = sqlx::query_as(
        "SELECT partner_id, name, primary_contact_name, primary_contact_email, review_requested_at
           FROM dashboard_partner
          WHERE organization_id = $1 AND awaiting_review
          ORDER BY review_requested_at NULLS LAST, partner_id",
    )
    .bind(organization_id)
    .fetch_all(&mut *transaction)
    .await?;
    let low_stock = sqlx::query_as(
        "SELECT item_id, name, quantity, minimum, recommended
           FROM dashboard_stock
          WHERE organization_id = $1
            AND ((minimum > 0 AND quantity < minimum) OR (recommended > 0 AND quantity < recommended))
          ORDER BY name, item_id",
    )
    .bind(organization_id)
    .fetch_all(&mut *transaction)
    .await?;
    let upcoming_distributions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM distribution
          WHERE organization_id = $1 AND state = 'scheduled'
            AND issued_at >= $2 AND issued_at < $3",
    )
    .bind(organization_id)
    .bind(week.0)
    .bind(week.1)
    .fetch_one(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(DashboardRows {
        outstanding,
        outstanding_count,
        approvals,
        low_stock,
        upcoming_distributions,
        version: version.map(|(version, _)| version).unwrap_or(0),
        updated_at: version.map(|(_, updated_at)| updated_at),
    })
}
