//! Rebuilding the projection (RebuildDashboard). Each `replace_*` runs in the rebuild's one
//! transaction and writes through the same guards as the event handlers, with the rebuild's
//! `as_of` (see `service::Notifications::rebuild_dashboard`): rows an event touched after `as_of`
//! are left as that event made them, older rows are replaced, and rows the owners no longer
//! report are retired. Rows are written in id order, the order handlers touch several rows in,
//! so a rebuild and a handler wait for each other instead of deadlocking.

use super::*;

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
