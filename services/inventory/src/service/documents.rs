//! One path for the five stock documents (donations, purchases, adjustments, transfers, audits):
//! what differs between them in their use cases is in each kind's `StockDocument` (with its SQL
//! in `repo::documents::DocumentKind`); reading, listing, recording a new one and reversing one
//! are written once here. Each kind's own rules (what a valid donation is, an audit's counts)
//! stay in `stock`.

use essentials_runtime::ServiceError;
use essentials_runtime::audit::{self, Audited};
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::stock::{into_changes, item_ids, total_value, with_locations};
use super::{Inventory, Page, Staff, StockContext, StockOutcome, load_context, move_stock};
use crate::domain::{
    DocumentId, LedgerSource, OrganizationId, StockChange, StorageLocationId, plan_changes,
};
use crate::repo;
use crate::repo::documents::{
    Adjustment, Audit, DocumentFilter, DocumentKind, Donation, Purchase, Transfer,
    claim_idempotency_key,
};
use crate::repo::stock::LedgerSourceRef;

/// What differs between the kinds of stock document in their use cases.
pub trait StockDocument: DocumentKind {
    /// The name NOT_FOUND answers use.
    const WHAT: &'static str;
    /// The operation its creating calls' idempotency keys are claimed under.
    const CREATE: &'static str;
    /// The ledger source of the stock it moves when made.
    const SOURCE: LedgerSource;
    /// When its stock moves: when it was issued, or when it was recorded.
    fn effective_at(&self) -> OffsetDateTime;
    /// The stock it moves: `sign` +1 when it is made, -1 when it is reversed.
    fn changes(&self, sign: i32) -> Vec<StockChange>;
    /// The locations it moves stock at.
    fn locations(&self) -> Vec<StorageLocationId>;
}

/// A kind whose stock is at one location, moved by its lines as they are (an adjustment's are
/// signed already: each raises or lowers the location's stock).
macro_rules! at_one_location {
    ($($kind:ident: $what:literal, $create:literal, $effective:ident;)*) => {$(
        impl StockDocument for $kind {
            const WHAT: &'static str = $what;
            const CREATE: &'static str = $create;
            const SOURCE: LedgerSource = LedgerSource::$kind;
            fn effective_at(&self) -> OffsetDateTime {
                self.$effective
            }
            fn changes(&self, sign: i32) -> Vec<StockChange> {
                into_changes(self.storage_location_id, &self.lines, sign)
            }
            fn locations(&self) -> Vec<StorageLocationId> {
                vec![self.storage_location_id]
            }
        }
    )*};
}

at_one_location! {
    Donation: "donation", "create_donation", issued_at;
    Purchase: "purchase", "create_purchase", issued_at;
    Adjustment: "adjustment", "create_adjustment", created_at;
}

impl StockDocument for Transfer {
    const WHAT: &'static str = "transfer";
    const CREATE: &'static str = "create_transfer";
    const SOURCE: LedgerSource = LedgerSource::Transfer;
    fn effective_at(&self) -> OffsetDateTime {
        self.created_at
    }
    fn changes(&self, sign: i32) -> Vec<StockChange> {
        plan_changes(
            into_changes(self.from_storage_location_id, &self.lines, -sign)
                .into_iter()
                .chain(into_changes(self.to_storage_location_id, &self.lines, sign)),
        )
    }
    fn locations(&self) -> Vec<StorageLocationId> {
        vec![self.from_storage_location_id, self.to_storage_location_id]
    }
}

impl StockDocument for Audit {
    const WHAT: &'static str = "audit";
    const CREATE: &'static str = "create_audit";
    const SOURCE: LedgerSource = LedgerSource::Audit;
    fn effective_at(&self) -> OffsetDateTime {
        self.created_at
    }
    /// Counting moves nothing; finalizing sets each count (see `finalize_audit`).
    fn changes(&self, _sign: i32) -> Vec<StockChange> {
        Vec::new()
    }
    fn locations(&self) -> Vec<StorageLocationId> {
        vec![self.storage_location_id]
    }
}

/// What recording a new document did.
pub enum Recorded {
    /// It was written and its stock moved.
    New(StockOutcome),
    /// An earlier call with the same idempotency key made this document; nothing was written.
    Earlier(DocumentId),
}

/// One document of the bank, or NOT_FOUND naming its kind.
pub async fn fetch<D: StockDocument>(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    id: DocumentId,
    lock: bool,
) -> Result<D, ServiceError> {
    repo::documents::get::<D>(connection, organization_id, id, lock)
        .await?
        .ok_or_else(|| ServiceError::not_found(D::WHAT))
}

impl Inventory {
    pub async fn get_document<D: StockDocument>(
        &self,
        staff: &Staff,
        id: DocumentId,
    ) -> Result<D, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        fetch(&mut connection, staff.organization_id, id, false).await
    }

    pub async fn list_documents<D: StockDocument>(
        &self,
        staff: &Staff,
        filter: DocumentFilter,
        cursor: Option<D::Cursor>,
        limit: i64,
    ) -> Result<Page<D>, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let rows = repo::documents::list::<D>(
            &mut connection,
            staff.organization_id,
            filter,
            cursor,
            limit + 1,
        )
        .await?;
        Ok(Page::from_rows(rows, limit))
    }

    /// A document with its value at the items' current values (donations, purchases).
    pub async fn get_valued<D: StockDocument>(
        &self,
        staff: &Staff,
        id: DocumentId,
    ) -> Result<(D, i64), ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let document: D = fetch(&mut connection, staff.organization_id, id, false).await?;
        let total = value_of(&mut connection, staff.organization_id, &document).await?;
        Ok((document, total))
    }

    pub async fn list_valued<D: StockDocument>(
        &self,
        staff: &Staff,
        filter: DocumentFilter,
        cursor: Option<D::Cursor>,
        limit: i64,
    ) -> Result<Page<(D, i64)>, ServiceError> {
        let page = self
            .list_documents::<D>(staff, filter, cursor, limit)
            .await?;
        let mut connection = self.pool.acquire().await?;
        let mut items = Vec::with_capacity(page.items.len());
        for document in page.items {
            let total = value_of(&mut connection, staff.organization_id, &document).await?;
            items.push((document, total));
        }
        Ok(Page {
            items,
            more: page.more,
        })
    }

    /// A document of the caller's bank under its row lock, for a change in `transaction`.
    pub(super) async fn locked<D: StockDocument>(
        &self,
        transaction: &mut PgConnection,
        staff: &Staff,
        id: DocumentId,
    ) -> Result<D, ServiceError> {
        fetch(transaction, staff.organization_id, id, true).await
    }

    /// A new, checked document in the caller's transaction: the idempotency key is claimed
    /// first (a retry gets the earlier document's id and writes nothing), then the header, its
    /// lines and the stock it moves, with the ledger rows and events of `move_stock`.
    pub(super) async fn record<D: StockDocument>(
        &self,
        transaction: &mut PgConnection,
        staff: &Staff,
        document: &mut D,
        idempotency_key: Option<&str>,
        context: &StockContext,
    ) -> Result<Recorded, ServiceError> {
        let org = staff.organization_id;
        if let Some(key) = idempotency_key
            && let Some(existing) =
                claim_idempotency_key(transaction, org, D::CREATE, key, document.id().0).await?
        {
            return Ok(Recorded::Earlier(DocumentId(existing)));
        }
        repo::documents::insert(transaction, org, document).await?;
        audit::record(
            transaction,
            Audited::subject(D::TABLE.name(), document.id().0),
        )
        .await?;
        let changes = document.changes(1);
        if changes.is_empty() {
            return Ok(Recorded::New(StockOutcome::default()));
        }
        let outcome = move_stock(
            transaction,
            org,
            &changes,
            LedgerSourceRef {
                source: D::SOURCE,
                source_id: document.id(),
                effective_at: document.effective_at(),
                user_id: Some(staff.user_id),
            },
            context,
        )
        .await?;
        Ok(Recorded::New(outcome))
    }

    /// Takes a locked document's stock back (refused, changing nothing, when that stock has
    /// since left) and deletes it, in the caller's transaction.
    pub(super) async fn reverse<D: StockDocument>(
        &self,
        transaction: &mut PgConnection,
        staff: &Staff,
        document: &D,
        source: LedgerSource,
    ) -> Result<(), ServiceError> {
        let org = staff.organization_id;
        let mut problems = Vec::new();
        let context = load_context(
            transaction,
            org,
            &item_ids(document.lines()),
            &[],
            false,
            &mut problems,
        )
        .await?;
        let context =
            with_locations(transaction, org, context, &document.locations(), false).await?;
        move_stock(
            transaction,
            org,
            &document.changes(-1),
            LedgerSourceRef {
                source,
                source_id: document.id(),
                effective_at: OffsetDateTime::now_utc(),
                user_id: Some(staff.user_id),
            },
            &context,
        )
        .await?;
        repo::documents::delete_document(transaction, org, D::TABLE, document.id()).await?;
        audit::record(
            transaction,
            Audited::subject(D::TABLE.name(), document.id().0),
        )
        .await?;
        Ok(())
    }
}

/// Σ quantity × the item's current value.
async fn value_of<D: StockDocument>(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    document: &D,
) -> Result<i64, ServiceError> {
    let lines = document.lines();
    let items =
        repo::catalog::get_items(connection, organization_id, &item_ids(lines), false).await?;
    let context = StockContext {
        items: items.into_iter().map(|item| (item.id, item)).collect(),
        ..StockContext::default()
    };
    Ok(total_value(lines, &context))
}
