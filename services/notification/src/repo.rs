//! SQL of the notification part. Every bank-scoped query filters on organization_id; the sender's
//! and the reminder job's queue queries span banks by design (they serve every bank).

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::dashboard::RequestStatus;
use crate::domain::emails::OutgoingEmail;

/// NOTIFY channel: a new e-mail is waiting (delivered when the writing transaction commits).
pub const EMAIL_CHANNEL: &str = "essentials_email";
/// NOTIFY channel: a bank's dashboard changed; the payload is the bank id.
pub const DASHBOARD_CHANNEL: &str = "essentials_dashboard";

// ---------------------------------------------------------------------------------------------
// E-mail log

/// Writes an e-mail to the log as pending; `false` when this (bank, dedupe key) is already there.
pub async fn insert_email(
    connection: &mut PgConnection,
    organization_id: Uuid,
    dedupe_key: &str,
    event_id: Option<Uuid>,
    event_type: &str,
    email: &OutgoingEmail,
) -> Result<bool, sqlx::Error> {
    let (attachment_name, attachment_type, attachment) = match &email.attachment {
        Some(attachment) => (
            Some(attachment.name.as_str()),
            Some(attachment.content_type.as_str()),
            Some(attachment.content.as_slice()),
        ),
        None => (None, None, None),
    };
    let inserted = sqlx::query(
        "INSERT INTO email (id, organization_id, dedupe_key, event_id, event_type, template,
                            to_address, cc_addresses, subject, text_body, html_body,
                            attachment_name, attachment_type, attachment)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT ON CONSTRAINT email_dedupe_key_unique DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(organization_id)
    .bind(dedupe_key)
    .bind(event_id)
    .bind(event_type)
    .bind(email.template)
    .bind(&email.to)
    .bind(&email.cc)
    .bind(&email.subject)
    .bind(&email.text_body)
    .bind(&email.html_body)
    .bind(attachment_name)
    .bind(attachment_type)
    .bind(attachment)
    .execute(&mut *connection)
    .await?
    .rows_affected();
    if inserted > 0 {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(EMAIL_CHANNEL)
            .execute(&mut *connection)
            .await?;
    }
    Ok(inserted > 0)
}

/// An e-mail claimed for sending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailToSend {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub to_address: String,
    pub cc_addresses: Vec<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub attachment_name: Option<String>,
    pub attachment_type: Option<String>,
    pub attachment: Option<Vec<u8>>,
    /// Including this one.
    pub attempts: i32,
}

/// Claims up to `limit` due e-mails (any bank) for `lease`: they are not due again until the lease
/// ends, so a sender that dies mid-send leaves them to another after it. Replicas skip each
/// other's rows.
pub async fn claim_due_emails(
    pool: &PgPool,
    limit: i64,
    lease: time::Duration,
) -> Result<Vec<EmailToSend>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE email
            SET attempts = attempts + 1, next_attempt_at = now() + $2
          WHERE id IN (SELECT id FROM email
                        WHERE status = 'pending' AND next_attempt_at <= now()
                        ORDER BY next_attempt_at
                        LIMIT $1
                        FOR UPDATE SKIP LOCKED)
          RETURNING id, organization_id, to_address, cc_addresses, subject, text_body, html_body,
                    attachment_name, attachment_type, attachment, attempts",
    )
    .bind(limit)
    .bind(lease)
    .fetch_all(pool)
    .await
}

/// When the next pending e-mail is due (to sleep until then).
pub async fn next_due_at(pool: &PgPool) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar("SELECT min(next_attempt_at) FROM email WHERE status = 'pending'")
        .fetch_one(pool)
        .await
}

pub async fn mark_sent(pool: &PgPool, organization_id: Uuid, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email SET status = 'sent', sent_at = now(), last_error = NULL
          WHERE organization_id = $1 AND id = $2",
    )
    .bind(organization_id)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Keeps the e-mail pending, due again after `delay`.
pub async fn mark_retry(
    pool: &PgPool,
    organization_id: Uuid,
    id: Uuid,
    error: &str,
    delay: time::Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email SET last_error = $3, next_attempt_at = now() + $4
          WHERE organization_id = $1 AND id = $2 AND status = 'pending'",
    )
    .bind(organization_id)
    .bind(id)
    .bind(error)
    .bind(delay)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn mark_failed(
    pool: &PgPool,
    organization_id: Uuid,
    id: Uuid,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email SET status = 'failed', last_error = $3
          WHERE organization_id = $1 AND id = $2 AND status = 'pending'",
    )
    .bind(organization_id)
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// A row of the e-mail log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailRow {
    pub id: Uuid,
    pub event_id: Option<Uuid>,
    pub event_type: String,
    pub to_address: String,
    pub cc_addresses: Vec<String>,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub text_body: String,
    pub html_body: String,
    pub attachment_name: Option<String>,
}

/// Filters of the bank's log.
#[derive(Debug, Clone, Default)]
pub struct EmailFilter {
    pub to: Option<String>,
    pub event_type: Option<String>,
    pub status: Option<String>,
    /// Keyset: rows strictly older than this (created_at, id).
    pub before: Option<(OffsetDateTime, Uuid)>,
}

const EMAIL_LIST_COLUMNS: &str = "id, event_id, event_type, to_address, cc_addresses, subject,
    status, attempts, last_error, sent_at, created_at, '' AS text_body, '' AS html_body,
    attachment_name";

pub async fn list_emails(
    pool: &PgPool,
    organization_id: Uuid,
    filter: &EmailFilter,
    limit: i64,
) -> Result<Vec<EmailRow>, sqlx::Error> {
    let (before_at, before_id) = filter.before.unzip();
    let statement = format!(
        "SELECT {EMAIL_LIST_COLUMNS} FROM email
          WHERE organization_id = $1
            AND ($2::text IS NULL OR lower(to_address) = lower($2))
            AND ($3::text IS NULL OR event_type = $3)
            AND ($4::text IS NULL OR status = $4)
            AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
          ORDER BY created_at DESC, id DESC
          LIMIT $7"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .bind(organization_id)
        .bind(filter.to.as_deref())
        .bind(filter.event_type.as_deref())
        .bind(filter.status.as_deref())
        .bind(before_at)
        .bind(before_id)
        .bind(limit)
        .fetch_all(pool)
        .await
}

pub async fn get_email(
    pool: &PgPool,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<EmailRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_id, event_type, to_address, cc_addresses, subject, status, attempts,
                last_error, sent_at, created_at, text_body, html_body, attachment_name
           FROM email WHERE organization_id = $1 AND id = $2",
    )
    .bind(organization_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

// ---------------------------------------------------------------------------------------------
// Dashboard projection

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

// ---------------------------------------------------------------------------------------------
// Rebuilding the projection (RebuildDashboard). Each `replace_*` runs in the rebuild's one
// transaction and writes through the same guards as the event handlers, with the rebuild's
// `as_of` (see `service::Notifications::rebuild_dashboard`): rows an event touched after `as_of`
// are left as that event made them, older rows are replaced, and rows the owners no longer
// report are retired. Rows are written in id order, the order handlers touch several rows in,
// so a rebuild and a handler wait for each other instead of deadlocking.

/// A pending or started request as the request part reports it.
#[derive(Debug, Clone)]
pub struct OutstandingRequest {
    pub request: NewRequest,
    pub status: RequestStatus,
}

/// The bank's outstanding requests are these. A row's rank never goes down (a fulfilment or a
/// cancellation an event brought meanwhile stays); rows of requests that are no longer
/// outstanding are removed unless created after `as_of` (a request.created handled while the
/// rebuild read). Placeholders (a late request.created, no created_at) are not shown anyway and
/// are left to their events.
pub async fn replace_requests(
    connection: &mut PgConnection,
    organization_id: Uuid,
    as_of: OffsetDateTime,
    requests: &[OutstandingRequest],
) -> Result<(), sqlx::Error> {
    let mut ids = Vec::with_capacity(requests.len());
    for outstanding in requests {
        let request = &outstanding.request;
        ids.push(request.request_id);
        sqlx::query(
            "INSERT INTO dashboard_request (organization_id, request_id, partner_id, partner_name,
                    requester_name, requester_email, comments, created_at, status, status_rank)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT ON CONSTRAINT dashboard_request_pkey DO UPDATE
                SET partner_id = EXCLUDED.partner_id, partner_name = EXCLUDED.partner_name,
                    requester_name = EXCLUDED.requester_name,
                    requester_email = EXCLUDED.requester_email,
                    comments = EXCLUDED.comments, created_at = EXCLUDED.created_at,
                    status = CASE WHEN dashboard_request.status_rank < EXCLUDED.status_rank
                                  THEN EXCLUDED.status ELSE dashboard_request.status END,
                    status_rank = GREATEST(dashboard_request.status_rank, EXCLUDED.status_rank)",
        )
        .bind(organization_id)
        .bind(request.request_id)
        .bind(request.partner_id)
        .bind(&request.partner_name)
        .bind(&request.requester_name)
        .bind(&request.requester_email)
        .bind(&request.comments)
        .bind(request.created_at)
        .bind(outstanding.status.as_str())
        .bind(outstanding.status.rank())
        .execute(&mut *connection)
        .await?;
    }
    sqlx::query(
        "DELETE FROM dashboard_request
          WHERE organization_id = $1 AND status_rank < 2 AND created_at <= $2
            AND NOT (request_id = ANY($3))",
    )
    .bind(organization_id)
    .bind(as_of)
    .bind(&ids)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The bank's partners awaiting review are these (each stamped `as_of`); other partners the
/// projection still has as awaiting review, and no event touched since `as_of`, are marked
/// reviewed. The rows are kept, not deleted, so an older event handled later cannot bring a
/// partner back.
pub async fn replace_partner_reviews(
    connection: &mut PgConnection,
    organization_id: Uuid,
    as_of: OffsetDateTime,
    awaiting: &[PartnerReview],
) -> Result<(), sqlx::Error> {
    for review in awaiting {
        record_partner_review(connection, organization_id, review).await?;
    }
    let ids: Vec<Uuid> = awaiting.iter().map(|review| review.partner_id).collect();
    sqlx::query(
        "UPDATE dashboard_partner SET awaiting_review = false, status_at = $2
          WHERE organization_id = $1 AND awaiting_review AND status_at <= $2
            AND NOT (partner_id = ANY($3))",
    )
    .bind(organization_id)
    .bind(as_of)
    .bind(&ids)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The bank-wide levels of every item of the catalogue are these (low or not, as stock.changed
/// records every level it carries: a row above its thresholds keeps an older event from making
/// the item low again). Rows of items the catalogue no longer has are removed.
pub async fn replace_stock_levels(
    connection: &mut PgConnection,
    organization_id: Uuid,
    as_of: OffsetDateTime,
    levels: &[StockLevel],
) -> Result<(), sqlx::Error> {
    for level in levels {
        record_stock_level(connection, organization_id, level).await?;
    }
    let ids: Vec<Uuid> = levels.iter().map(|level| level.item_id).collect();
    sqlx::query(
        "DELETE FROM dashboard_stock
          WHERE organization_id = $1 AND as_of <= $2 AND NOT (item_id = ANY($3))",
    )
    .bind(organization_id)
    .bind(as_of)
    .bind(&ids)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// A distribution as the inventory part reports it, in the shape the handlers store.
#[derive(Debug, Clone)]
pub struct DistributionRecord {
    pub distribution_id: Uuid,
    pub issued_at: OffsetDateTime,
    pub state: &'static str,
    /// The encoded events.v1.DistributionSnapshot.
    pub snapshot: Vec<u8>,
}

/// Records these distributions as of `as_of`, and marks `reclaimed` ones (gone from the
/// inventory part) reclaimed, which no later event undoes.
pub async fn replace_distributions(
    connection: &mut PgConnection,
    organization_id: Uuid,
    as_of: OffsetDateTime,
    distributions: &[DistributionRecord],
    reclaimed: &[Uuid],
) -> Result<(), sqlx::Error> {
    for distribution in distributions {
        record_distribution(
            connection,
            organization_id,
            distribution.distribution_id,
            distribution.issued_at,
            distribution.state,
            &distribution.snapshot,
            as_of,
        )
        .await?;
    }
    sqlx::query(
        "UPDATE distribution SET state = 'reclaimed', as_of = $2
          WHERE organization_id = $1 AND as_of <= $2 AND distribution_id = ANY($3)",
    )
    .bind(organization_id)
    .bind(as_of)
    .bind(reclaimed)
    .execute(&mut *connection)
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

// ---------------------------------------------------------------------------------------------
// Reminders

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
