//! The documents that move stock (donations, purchases, adjustments, transfers, audits), their
//! lines, and idempotency keys of creating calls.

use std::collections::HashMap;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::text_enum;
use crate::domain::{
    AuditStatus, DocumentId, DonationSource, ItemId, Line, OrganizationId, StorageLocationId,
    UserId,
};

/// Records the idempotency key of a creating call in the caller's transaction. `Ok(None)`: the key
/// is new and now taken by `resource_id`. `Ok(Some(id))`: an earlier call with the same key made
/// `id` (a concurrent one with the key waits here until that call's transaction ends).
pub async fn claim_idempotency_key(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    operation: &str,
    key: &str,
    resource_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO idempotency_key (organization_id, operation, key, resource_id)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING resource_id",
    )
    .bind(organization_id)
    .bind(operation)
    .bind(key)
    .bind(resource_id)
    .fetch_optional(&mut *connection)
    .await?;
    if inserted.is_some() {
        return Ok(None);
    }
    sqlx::query_scalar(
        "SELECT resource_id FROM idempotency_key
         WHERE organization_id = $1 AND operation = $2 AND key = $3",
    )
    .bind(organization_id)
    .bind(operation)
    .bind(key)
    .fetch_optional(&mut *connection)
    .await
}

pub async fn insert_lines(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    document_id: DocumentId,
    lines: &[Line],
) -> Result<(), sqlx::Error> {
    let items: Vec<Uuid> = lines.iter().map(|line| line.item_id.0).collect();
    let quantities: Vec<i32> = lines.iter().map(|line| line.quantity).collect();
    sqlx::query(
        "INSERT INTO document_line (organization_id, document_id, item_id, quantity)
         SELECT $1, $2, item_id, quantity FROM unnest($3::uuid[], $4::int[]) AS line(item_id, quantity)",
    )
    .bind(organization_id)
    .bind(document_id)
    .bind(&items)
    .bind(&quantities)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

pub async fn delete_lines(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    document_id: DocumentId,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM document_line WHERE organization_id = $1 AND document_id = $2")
        .bind(organization_id)
        .bind(document_id)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Lines of these documents, by document, in item order.
pub async fn lines_of(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    documents: &[DocumentId],
) -> Result<HashMap<DocumentId, Vec<Line>>, sqlx::Error> {
    let ids: Vec<Uuid> = documents.iter().map(|id| id.0).collect();
    let rows = sqlx::query(
        "SELECT document_id, item_id, quantity FROM document_line
         WHERE organization_id = $1 AND document_id = ANY($2) ORDER BY document_id, item_id",
    )
    .bind(organization_id)
    .bind(&ids)
    .fetch_all(&mut *connection)
    .await?;
    let mut lines: HashMap<DocumentId, Vec<Line>> = HashMap::new();
    for row in rows {
        lines
            .entry(row.try_get("document_id")?)
            .or_default()
            .push(Line {
                item_id: row.try_get("item_id")?,
                quantity: row.try_get("quantity")?,
            });
    }
    Ok(lines)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Donation {
    pub id: DocumentId,
    pub storage_location_id: StorageLocationId,
    pub issued_at: OffsetDateTime,
    pub source: DonationSource,
    pub source_name: String,
    pub money_raised_in_cents: i64,
    pub comment: String,
    pub user_id: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    pub id: DocumentId,
    pub storage_location_id: StorageLocationId,
    pub issued_at: OffsetDateTime,
    pub vendor: String,
    pub amount_spent_in_cents: i64,
    /// diapers, adult incontinence, period supplies, other.
    pub breakdown_in_cents: [i64; 4],
    pub comment: String,
    pub user_id: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub id: DocumentId,
    pub storage_location_id: StorageLocationId,
    pub comment: String,
    pub user_id: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: DocumentId,
    pub from_storage_location_id: StorageLocationId,
    pub to_storage_location_id: StorageLocationId,
    pub comment: String,
    pub user_id: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub id: DocumentId,
    pub storage_location_id: StorageLocationId,
    pub status: AuditStatus,
    pub user_id: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub finalized_at: Option<OffsetDateTime>,
    pub lines: Vec<Line>,
}

async fn insert_donation(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    donation: &Donation,
) -> Result<OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO donation (id, organization_id, storage_location_id, issued_at, source, source_name,
             money_raised_in_cents, comment, user_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING created_at",
    )
    .bind(donation.id)
    .bind(organization_id)
    .bind(donation.storage_location_id)
    .bind(donation.issued_at)
    .bind(donation.source.as_str())
    .bind(&donation.source_name)
    .bind(donation.money_raised_in_cents)
    .bind(&donation.comment)
    .bind(donation.user_id)
    .fetch_one(&mut *connection)
    .await
}

fn donation_from_row(row: &PgRow) -> Result<Donation, sqlx::Error> {
    Ok(Donation {
        id: row.try_get("id")?,
        storage_location_id: row.try_get("storage_location_id")?,
        issued_at: row.try_get("issued_at")?,
        source: text_enum(row, "source", DonationSource::parse)?,
        source_name: row.try_get("source_name")?,
        money_raised_in_cents: row.try_get("money_raised_in_cents")?,
        comment: row.try_get("comment")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        lines: Vec::new(),
    })
}

/// Keyset position of lists ordered by issued_at then id, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuedCursor {
    pub issued_at: OffsetDateTime,
    pub id: Uuid,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentFilter {
    pub storage_location_id: Option<StorageLocationId>,
    pub donation_source: Option<DonationSource>,
    pub audit_status: Option<AuditStatus>,
    pub after: Option<OffsetDateTime>,
    pub before: Option<OffsetDateTime>,
}

fn push_issued_filters(
    query: &mut QueryBuilder<Postgres>,
    filter: &DocumentFilter,
    cursor: Option<IssuedCursor>,
) {
    if let Some(location) = filter.storage_location_id {
        query
            .push(" AND storage_location_id = ")
            .push_bind(location);
    }
    if let Some(after) = filter.after {
        query.push(" AND issued_at >= ").push_bind(after);
    }
    if let Some(before) = filter.before {
        query.push(" AND issued_at < ").push_bind(before);
    }
    if let Some(cursor) = cursor {
        query
            .push(" AND (issued_at, id) < (")
            .push_bind(cursor.issued_at)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
}

pub async fn delete_document(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    table: DocumentTable,
    id: DocumentId,
) -> Result<bool, sqlx::Error> {
    delete_lines(connection, organization_id, id).await?;
    let statement = format!(
        "DELETE FROM {} WHERE organization_id = $1 AND id = $2",
        table.name()
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(organization_id)
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentTable {
    Donation,
    Purchase,
    Adjustment,
    Transfer,
    Audit,
    Distribution,
}

fn purchase_from_row(row: &PgRow) -> Result<Purchase, sqlx::Error> {
    Ok(Purchase {
        id: row.try_get("id")?,
        storage_location_id: row.try_get("storage_location_id")?,
        issued_at: row.try_get("issued_at")?,
        vendor: row.try_get("vendor")?,
        amount_spent_in_cents: row.try_get("amount_spent_in_cents")?,
        breakdown_in_cents: [
            row.try_get("amount_spent_on_diapers_in_cents")?,
            row.try_get("amount_spent_on_adult_incontinence_in_cents")?,
            row.try_get("amount_spent_on_period_supplies_in_cents")?,
            row.try_get("amount_spent_on_other_in_cents")?,
        ],
        comment: row.try_get("comment")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        lines: Vec::new(),
    })
}

async fn insert_purchase(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    purchase: &Purchase,
) -> Result<OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO purchase (id, organization_id, storage_location_id, issued_at, vendor,
             amount_spent_in_cents, amount_spent_on_diapers_in_cents,
             amount_spent_on_adult_incontinence_in_cents, amount_spent_on_period_supplies_in_cents,
             amount_spent_on_other_in_cents, comment, user_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING created_at",
    )
    .bind(purchase.id)
    .bind(organization_id)
    .bind(purchase.storage_location_id)
    .bind(purchase.issued_at)
    .bind(&purchase.vendor)
    .bind(purchase.amount_spent_in_cents)
    .bind(purchase.breakdown_in_cents[0])
    .bind(purchase.breakdown_in_cents[1])
    .bind(purchase.breakdown_in_cents[2])
    .bind(purchase.breakdown_in_cents[3])
    .bind(&purchase.comment)
    .bind(purchase.user_id)
    .fetch_one(&mut *connection)
    .await
}

async fn insert_adjustment(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    adjustment: &Adjustment,
) -> Result<OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO adjustment (id, organization_id, storage_location_id, comment, user_id)
         VALUES ($1, $2, $3, $4, $5) RETURNING created_at",
    )
    .bind(adjustment.id)
    .bind(organization_id)
    .bind(adjustment.storage_location_id)
    .bind(&adjustment.comment)
    .bind(adjustment.user_id)
    .fetch_one(&mut *connection)
    .await
}

fn adjustment_from_row(row: &PgRow) -> Result<Adjustment, sqlx::Error> {
    Ok(Adjustment {
        id: row.try_get("id")?,
        storage_location_id: row.try_get("storage_location_id")?,
        comment: row.try_get("comment")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        lines: Vec::new(),
    })
}

fn push_created_filters(
    query: &mut QueryBuilder<Postgres>,
    filter: &DocumentFilter,
    cursor: Option<Uuid>,
    location_condition: &'static str,
) {
    if let Some(location) = filter.storage_location_id {
        query.push(" AND (").push(location_condition);
        query.push_bind(location);
        if location_condition.contains("from_storage_location_id") {
            query
                .push(" OR to_storage_location_id = ")
                .push_bind(location);
        }
        query.push(")");
    }
    if let Some(after) = filter.after {
        query.push(" AND created_at >= ").push_bind(after);
    }
    if let Some(before) = filter.before {
        query.push(" AND created_at < ").push_bind(before);
    }
    if let Some(cursor) = cursor {
        query.push(" AND id < ").push_bind(cursor);
    }
}

async fn insert_transfer(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    transfer: &Transfer,
) -> Result<OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO transfer (id, organization_id, from_storage_location_id, to_storage_location_id,
             comment, user_id)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at",
    )
    .bind(transfer.id)
    .bind(organization_id)
    .bind(transfer.from_storage_location_id)
    .bind(transfer.to_storage_location_id)
    .bind(&transfer.comment)
    .bind(transfer.user_id)
    .fetch_one(&mut *connection)
    .await
}

fn transfer_from_row(row: &PgRow) -> Result<Transfer, sqlx::Error> {
    Ok(Transfer {
        id: row.try_get("id")?,
        from_storage_location_id: row.try_get("from_storage_location_id")?,
        to_storage_location_id: row.try_get("to_storage_location_id")?,
        comment: row.try_get("comment")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        lines: Vec::new(),
    })
}

/// Whether a finalized audit since `since` counted any of these items at either location.
pub async fn audited_since(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    locations: &[StorageLocationId],
    items: &[ItemId],
    since: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let locations: Vec<Uuid> = locations.iter().map(|id| id.0).collect();
    let items: Vec<Uuid> = items.iter().map(|id| id.0).collect();
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM audit a JOIN document_line l
               ON l.organization_id = a.organization_id AND l.document_id = a.id
             WHERE a.organization_id = $1 AND a.status = 'finalized' AND a.finalized_at > $4
               AND a.storage_location_id = ANY($2) AND l.item_id = ANY($3))",
    )
    .bind(organization_id)
    .bind(&locations)
    .bind(&items)
    .bind(since)
    .fetch_one(&mut *connection)
    .await
}

fn audit_from_row(row: &PgRow) -> Result<Audit, sqlx::Error> {
    Ok(Audit {
        id: row.try_get("id")?,
        storage_location_id: row.try_get("storage_location_id")?,
        status: text_enum(row, "status", AuditStatus::parse)?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finalized_at: row.try_get("finalized_at")?,
        lines: Vec::new(),
    })
}

async fn insert_audit(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    audit: &Audit,
) -> Result<(OffsetDateTime, OffsetDateTime), sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO audit (id, organization_id, storage_location_id, status, user_id)
         VALUES ($1, $2, $3, $4, $5) RETURNING created_at, updated_at",
    )
    .bind(audit.id)
    .bind(organization_id)
    .bind(audit.storage_location_id)
    .bind(audit.status.as_str())
    .bind(audit.user_id)
    .fetch_one(&mut *connection)
    .await?;
    Ok((row.try_get("created_at")?, row.try_get("updated_at")?))
}

pub async fn set_audit_status(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: DocumentId,
    status: AuditStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE audit SET status = $3, updated_at = now(),
             finalized_at = CASE WHEN $3 = 'finalized' THEN now() ELSE NULL END
         WHERE organization_id = $1 AND id = $2",
    )
    .bind(organization_id)
    .bind(id)
    .bind(status.as_str())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

impl DocumentTable {
    pub fn name(self) -> &'static str {
        match self {
            DocumentTable::Donation => "donation",
            DocumentTable::Purchase => "purchase",
            DocumentTable::Adjustment => "adjustment",
            DocumentTable::Transfer => "transfer",
            DocumentTable::Audit => "audit",
            DocumentTable::Distribution => "distribution",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One path for the five kinds: what differs (table, columns, row, header insert, list order and
// filters) is in each kind's `DocumentKind`; reading one, listing a page with its lines, and
// writing a new one with its lines are written once below.

/// What differs between the kinds of stock document in SQL.
pub trait DocumentKind: Sized + Send + Sync {
    const TABLE: DocumentTable;
    /// The columns `from_row` reads.
    const COLUMNS: &'static str;
    /// Keyset position of a page (issued_at and id, or id alone).
    type Cursor: Copy + Send;
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error>;
    fn id(&self) -> DocumentId;
    fn lines(&self) -> &[Line];
    fn lines_mut(&mut self) -> &mut Vec<Line>;
    /// Appends the list's filters and keyset condition, then its ORDER BY.
    fn push_list(
        query: &mut QueryBuilder<Postgres>,
        filter: &DocumentFilter,
        cursor: Option<Self::Cursor>,
    );
    /// Writes the header row; the database's timestamps come back into `self`.
    fn insert_header<'a>(
        &'a mut self,
        connection: &'a mut PgConnection,
        organization_id: OrganizationId,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a;
}

/// One document of the bank with its lines; `lock` takes its row lock for a change.
pub async fn get<D: DocumentKind>(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: DocumentId,
    lock: bool,
) -> Result<Option<D>, sqlx::Error> {
    let statement = format!(
        "SELECT {} FROM {} WHERE organization_id = $1 AND id = $2{}",
        D::COLUMNS,
        D::TABLE.name(),
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(organization_id)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut document = D::from_row(&row)?;
    *document.lines_mut() = lines_of(connection, organization_id, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(Some(document))
}

/// A page of the bank's documents of one kind, newest first, each with its lines.
pub async fn list<D: DocumentKind>(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    filter: DocumentFilter,
    cursor: Option<D::Cursor>,
    limit: i64,
) -> Result<Vec<D>, sqlx::Error> {
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {} FROM {} WHERE organization_id = ",
        D::COLUMNS,
        D::TABLE.name()
    ));
    query.push_bind(organization_id);
    D::push_list(&mut query, &filter, cursor);
    query.push(" LIMIT ").push_bind(limit);
    let rows = query.build().fetch_all(&mut *connection).await?;
    let mut documents = rows
        .iter()
        .map(D::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<DocumentId> = documents.iter().map(DocumentKind::id).collect();
    let mut lines = lines_of(connection, organization_id, &ids).await?;
    for document in &mut documents {
        *document.lines_mut() = lines.remove(&document.id()).unwrap_or_default();
    }
    Ok(documents)
}

/// Writes a new document: its header, then its lines.
pub async fn insert<D: DocumentKind>(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    document: &mut D,
) -> Result<(), sqlx::Error> {
    document.insert_header(connection, organization_id).await?;
    insert_lines(connection, organization_id, document.id(), document.lines()).await
}

macro_rules! document_kind {
    ($kind:ty, $table:ident, $columns:expr, $cursor:ty, $from_row:ident,
     |$query:ident, $filter:ident, $position:ident| $push_list:block,
     |$document:ident, $connection:ident, $organization:ident| $insert:block) => {
        impl DocumentKind for $kind {
            const TABLE: DocumentTable = DocumentTable::$table;
            const COLUMNS: &'static str = $columns;
            type Cursor = $cursor;
            fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
                $from_row(row)
            }
            fn id(&self) -> DocumentId {
                self.id
            }
            fn lines(&self) -> &[Line] {
                &self.lines
            }
            fn lines_mut(&mut self) -> &mut Vec<Line> {
                &mut self.lines
            }
            fn push_list(
                $query: &mut QueryBuilder<Postgres>,
                $filter: &DocumentFilter,
                $position: Option<$cursor>,
            ) $push_list
            fn insert_header<'a>(
                &'a mut self,
                $connection: &'a mut PgConnection,
                $organization: OrganizationId,
            ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a {
                let $document = self;
                async move $insert
            }
        }
    };
}

document_kind!(
    Donation,
    Donation,
    "id, storage_location_id, issued_at, source, source_name, money_raised_in_cents, comment, \
     user_id, created_at",
    IssuedCursor,
    donation_from_row,
    |query, filter, cursor| {
        push_issued_filters(query, filter, cursor);
        if let Some(source) = filter.donation_source {
            query.push(" AND source = ").push_bind(source.as_str());
        }
        query.push(" ORDER BY issued_at DESC, id DESC");
    },
    |donation, connection, organization_id| {
        donation.created_at = insert_donation(connection, organization_id, donation).await?;
        Ok(())
    }
);

document_kind!(
    Purchase,
    Purchase,
    "id, storage_location_id, issued_at, vendor, amount_spent_in_cents, \
     amount_spent_on_diapers_in_cents, amount_spent_on_adult_incontinence_in_cents, \
     amount_spent_on_period_supplies_in_cents, amount_spent_on_other_in_cents, comment, user_id, \
     created_at",
    IssuedCursor,
    purchase_from_row,
    |query, filter, cursor| {
        push_issued_filters(query, filter, cursor);
        query.push(" ORDER BY issued_at DESC, id DESC");
    },
    |purchase, connection, organization_id| {
        purchase.created_at = insert_purchase(connection, organization_id, purchase).await?;
        Ok(())
    }
);

document_kind!(
    Adjustment,
    Adjustment,
    "id, storage_location_id, comment, user_id, created_at",
    Uuid,
    adjustment_from_row,
    |query, filter, cursor| {
        push_created_filters(query, filter, cursor, "storage_location_id = ");
        query.push(" ORDER BY id DESC");
    },
    |adjustment, connection, organization_id| {
        adjustment.created_at = insert_adjustment(connection, organization_id, adjustment).await?;
        Ok(())
    }
);

document_kind!(
    Transfer,
    Transfer,
    "id, from_storage_location_id, to_storage_location_id, comment, user_id, created_at",
    Uuid,
    transfer_from_row,
    |query, filter, cursor| {
        push_created_filters(query, filter, cursor, "from_storage_location_id = ");
        query.push(" ORDER BY id DESC");
    },
    |transfer, connection, organization_id| {
        transfer.created_at = insert_transfer(connection, organization_id, transfer).await?;
        Ok(())
    }
);

document_kind!(
    Audit,
    Audit,
    "id, storage_location_id, status, user_id, created_at, updated_at, finalized_at",
    Uuid,
    audit_from_row,
    |query, filter, cursor| {
        push_created_filters(query, filter, cursor, "storage_location_id = ");
        if let Some(status) = filter.audit_status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        query.push(" ORDER BY id DESC");
    },
    |audit, connection, organization_id| {
        (audit.created_at, audit.updated_at) =
            insert_audit(connection, organization_id, audit).await?;
        Ok(())
    }
);
