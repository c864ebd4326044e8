//! Stock reads and the documents that move stock: donations, purchases, adjustments, transfers
//! and audits.

use essentials_proto::events::v1::{DonationReceived, ItemLine};
use essentials_runtime::audit::{self, Audited};
use essentials_runtime::bus::{NewEvent, enqueue};
use essentials_runtime::{FieldViolation, ServiceError};
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{Recorded, StockDocument, fetch};
use super::{Inventory, Page, Staff, StockContext, StockOutcome, load_context, move_stock};
use crate::domain::InventoryError;
use crate::domain::{
    AuditStatus, DocumentId, DonationSource, ItemId, LedgerSource, Line, OrganizationId,
    QuantityRule, StockChange, StorageLocationId, combine_lines, issued_at_violation, plan_changes,
};
use crate::repo;
use crate::repo::catalog::ItemFilter;
use crate::repo::documents::{Adjustment, Audit, DocumentKind, Donation, Purchase, Transfer};
use crate::repo::stock::{Balance, BalanceFilter, LedgerEntry, LedgerFilter, LedgerSourceRef};

/// Combines lines under a quantity rule, recording violations under `line_items`.
pub fn prepare_lines(
    lines: &[Line],
    rule: QuantityRule,
    problems: &mut Vec<FieldViolation>,
) -> Vec<Line> {
    match combine_lines(lines, rule) {
        Ok(lines) => lines,
        Err(violations) => {
            for violation in violations {
                let field = match violation.index {
                    Some(index) => format!("line_items[{index}].{}", violation.field),
                    None => violation.field.to_owned(),
                };
                problems.push(FieldViolation::new(field, violation.description));
            }
            Vec::new()
        }
    }
}

fn check_issued_at(issued_at: OffsetDateTime, problems: &mut Vec<FieldViolation>) {
    if let Some(description) = issued_at_violation(issued_at, OffsetDateTime::now_utc()) {
        problems.push(FieldViolation::new("issued_at", description));
    }
}

pub(super) fn item_ids(lines: &[Line]) -> Vec<ItemId> {
    lines.iter().map(|line| line.item_id).collect()
}

/// Σ quantity × the item's current value.
pub fn total_value(lines: &[Line], context: &StockContext) -> i64 {
    lines
        .iter()
        .map(|line| {
            i64::from(line.quantity)
                * context
                    .items
                    .get(&line.item_id)
                    .map(|item| item.value_in_cents)
                    .unwrap_or(0)
        })
        .sum()
}

/// A new document's input: where and what.
#[derive(Debug, Clone)]
pub struct NewDonation {
    pub storage_location_id: StorageLocationId,
    pub issued_at: Option<OffsetDateTime>,
    pub source: DonationSource,
    pub source_name: String,
    pub money_raised_in_cents: i64,
    pub comment: String,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone)]
pub struct NewPurchase {
    pub storage_location_id: StorageLocationId,
    pub issued_at: Option<OffsetDateTime>,
    pub vendor: String,
    pub amount_spent_in_cents: i64,
    pub breakdown_in_cents: [i64; 4],
    pub comment: String,
    pub lines: Vec<Line>,
}

impl Inventory {
    pub async fn balances(
        &self,
        staff: &Staff,
        filter: BalanceFilter,
        as_of: Option<OffsetDateTime>,
    ) -> Result<Vec<Balance>, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        Ok(repo::stock::balances(&mut connection, staff.organization_id, filter, as_of).await?)
    }

    pub async fn ledger(
        &self,
        staff: &Staff,
        filter: &LedgerFilter,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Page<LedgerEntry>, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let rows = repo::stock::list_ledger(
            &mut connection,
            staff.organization_id,
            filter,
            before,
            limit + 1,
        )
        .await?;
        Ok(Page::from_rows(rows, limit))
    }

    pub async fn requestable_items(
        &self,
        organization_id: OrganizationId,
        categories: Option<Vec<crate::domain::ItemCategoryId>>,
    ) -> Result<Vec<crate::domain::Item>, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let filter = ItemFilter {
            visible_to_partners: Some(true),
            category_in: categories,
            ..ItemFilter::default()
        };
        Ok(
            repo::catalog::list_items(&mut connection, organization_id, &filter, None, 10_000)
                .await?,
        )
    }

    pub async fn create_donation(
        &self,
        staff: &Staff,
        input: NewDonation,
        idempotency_key: Option<&str>,
    ) -> Result<(Donation, i64), ServiceError> {
        let mut problems = Vec::new();
        let lines = prepare_lines(&input.lines, QuantityRule::Positive, &mut problems);
        let issued_at = input.issued_at.unwrap_or_else(OffsetDateTime::now_utc);
        check_issued_at(issued_at, &mut problems);
        if input.source.needs_name() && input.source_name.trim().is_empty() {
            problems.push(FieldViolation::new(
                "source_name",
                "must name the product drive, manufacturer or donation site",
            ));
        }
        if input.money_raised_in_cents < 0 {
            problems.push(FieldViolation::new(
                "money_raised_in_cents",
                "must be 0 or more",
            ));
        }
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let context = load_context(
            &mut transaction,
            org,
            &item_ids(&lines),
            &[("storage_location_id", input.storage_location_id)],
            true,
            &mut problems,
        )
        .await?;
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let mut donation = Donation {
            id: DocumentId::new(),
            storage_location_id: input.storage_location_id,
            issued_at,
            source: input.source,
            source_name: input.source_name.trim().to_owned(),
            money_raised_in_cents: input.money_raised_in_cents,
            comment: input.comment,
            user_id: Some(staff.user_id),
            created_at: OffsetDateTime::now_utc(),
            lines,
        };
        if let Recorded::Earlier(existing) = self
            .record(
                &mut transaction,
                staff,
                &mut donation,
                idempotency_key,
                &context,
            )
            .await?
        {
            drop(transaction);
            return self.get_valued(staff, existing).await;
        }
        let id = donation.id;
        let total = total_value(&donation.lines, &context);
        let location_name = context
            .locations
            .get(&donation.storage_location_id)
            .map(|location| location.name.clone())
            .unwrap_or_default();
        let received = DonationReceived {
            donation_id: id.to_string(),
            storage_location_id: donation.storage_location_id.to_string(),
            storage_location_name: location_name,
            source: crate::service::wire::donation_source_proto(donation.source),
            source_name: donation.source_name.clone(),
            issued_at: Some(essentials_runtime::convert::timestamp(issued_at)),
            items: item_lines(&donation.lines, &context),
            money_raised_in_cents: donation.money_raised_in_cents,
            total_value_in_cents: total,
            comment: donation.comment.clone(),
        };
        enqueue(
            &mut transaction,
            &NewEvent::new(Some(org.0), Some(staff.user_id.0), &received),
        )
        .await?;
        transaction.commit().await?;
        Ok((donation, total))
    }

    /// Takes a donation's stock back out (org_admin); refused if it has since left the location.
    pub async fn delete_donation(&self, staff: &Staff, id: DocumentId) -> Result<(), ServiceError> {
        staff.require_admin()?;
        let mut transaction = self.pool.begin().await?;
        let donation: Donation = self.locked(&mut transaction, staff, id).await?;
        self.reverse(
            &mut transaction,
            staff,
            &donation,
            LedgerSource::DonationDeleted,
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn create_purchase(
        &self,
        staff: &Staff,
        input: NewPurchase,
        idempotency_key: Option<&str>,
    ) -> Result<(Purchase, i64), ServiceError> {
        let mut problems = Vec::new();
        let lines = prepare_lines(&input.lines, QuantityRule::Positive, &mut problems);
        let issued_at = input.issued_at.unwrap_or_else(OffsetDateTime::now_utc);
        check_issued_at(issued_at, &mut problems);
        if input.amount_spent_in_cents <= 0 {
            problems.push(FieldViolation::new(
                "amount_spent_in_cents",
                "must be more than 0",
            ));
        }
        let breakdown: i64 = input.breakdown_in_cents.iter().sum();
        if input.breakdown_in_cents.iter().any(|part| *part < 0) {
            problems.push(FieldViolation::new(
                "amount_spent_on_other_in_cents",
                "the breakdown amounts must be 0 or more",
            ));
        } else if breakdown != 0 && breakdown != input.amount_spent_in_cents {
            problems.push(FieldViolation::new(
                "amount_spent_in_cents",
                format!(
                    "must equal the sum of the breakdown ({breakdown}) when a breakdown is given"
                ),
            ));
        }
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let context = load_context(
            &mut transaction,
            org,
            &item_ids(&lines),
            &[("storage_location_id", input.storage_location_id)],
            true,
            &mut problems,
        )
        .await?;
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let mut purchase = Purchase {
            id: DocumentId::new(),
            storage_location_id: input.storage_location_id,
            issued_at,
            vendor: input.vendor.trim().to_owned(),
            amount_spent_in_cents: input.amount_spent_in_cents,
            breakdown_in_cents: input.breakdown_in_cents,
            comment: input.comment,
            user_id: Some(staff.user_id),
            created_at: OffsetDateTime::now_utc(),
            lines,
        };
        if let Recorded::Earlier(existing) = self
            .record(
                &mut transaction,
                staff,
                &mut purchase,
                idempotency_key,
                &context,
            )
            .await?
        {
            drop(transaction);
            return self.get_valued(staff, existing).await;
        }
        let total = total_value(&purchase.lines, &context);
        transaction.commit().await?;
        Ok((purchase, total))
    }

    pub async fn delete_purchase(&self, staff: &Staff, id: DocumentId) -> Result<(), ServiceError> {
        staff.require_admin()?;
        let mut transaction = self.pool.begin().await?;
        let purchase: Purchase = self.locked(&mut transaction, staff, id).await?;
        self.reverse(
            &mut transaction,
            staff,
            &purchase,
            LedgerSource::PurchaseDeleted,
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn create_adjustment(
        &self,
        staff: &Staff,
        storage_location_id: StorageLocationId,
        comment: String,
        lines: Vec<Line>,
        idempotency_key: Option<&str>,
    ) -> Result<(Adjustment, StockOutcome), ServiceError> {
        let mut problems = Vec::new();
        let lines = prepare_lines(&lines, QuantityRule::NonZero, &mut problems);
        if comment.trim().is_empty() {
            problems.push(FieldViolation::new("comment", "must say why"));
        }
        let raises = lines.iter().any(|line| line.quantity > 0);
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let context = load_context(
            &mut transaction,
            org,
            &item_ids(&lines),
            &[("storage_location_id", storage_location_id)],
            raises,
            &mut problems,
        )
        .await?;
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let mut adjustment = Adjustment {
            id: DocumentId::new(),
            storage_location_id,
            comment,
            user_id: Some(staff.user_id),
            created_at: OffsetDateTime::now_utc(),
            lines,
        };
        match self
            .record(
                &mut transaction,
                staff,
                &mut adjustment,
                idempotency_key,
                &context,
            )
            .await?
        {
            Recorded::Earlier(existing) => {
                drop(transaction);
                let adjustment = self.get_document(staff, existing).await?;
                Ok((adjustment, StockOutcome::default()))
            }
            Recorded::New(outcome) => {
                transaction.commit().await?;
                Ok((adjustment, outcome))
            }
        }
    }

    pub async fn create_transfer(
        &self,
        staff: &Staff,
        from: StorageLocationId,
        to: StorageLocationId,
        comment: String,
        lines: Vec<Line>,
        idempotency_key: Option<&str>,
    ) -> Result<Transfer, ServiceError> {
        let mut problems = Vec::new();
        let lines = prepare_lines(&lines, QuantityRule::Positive, &mut problems);
        if from == to {
            problems.push(FieldViolation::new(
                "to_storage_location_id",
                "must differ from from_storage_location_id",
            ));
        }
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let context = load_context(
            &mut transaction,
            org,
            &item_ids(&lines),
            &[
                ("from_storage_location_id", from),
                ("to_storage_location_id", to),
            ],
            true,
            &mut problems,
        )
        .await?;
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let mut transfer = Transfer {
            id: DocumentId::new(),
            from_storage_location_id: from,
            to_storage_location_id: to,
            comment,
            user_id: Some(staff.user_id),
            created_at: OffsetDateTime::now_utc(),
            lines,
        };
        if let Recorded::Earlier(existing) = self
            .record(
                &mut transaction,
                staff,
                &mut transfer,
                idempotency_key,
                &context,
            )
            .await?
        {
            drop(transaction);
            return self.get_document(staff, existing).await;
        }
        transaction.commit().await?;
        Ok(transfer)
    }

    /// Moves a transfer's stock back; refused when a finalized audit has since counted its items
    /// at either location.
    pub async fn delete_transfer(&self, staff: &Staff, id: DocumentId) -> Result<(), ServiceError> {
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let transfer: Transfer = self.locked(&mut transaction, staff, id).await?;
        if repo::documents::audited_since(
            &mut transaction,
            org,
            &transfer.locations(),
            &item_ids(&transfer.lines),
            transfer.created_at,
        )
        .await?
        {
            return Err(InventoryError::AuditedSince.into());
        }
        self.reverse(
            &mut transaction,
            staff,
            &transfer,
            LedgerSource::TransferDeleted,
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn create_audit(
        &self,
        staff: &Staff,
        storage_location_id: StorageLocationId,
        lines: Vec<Line>,
        idempotency_key: Option<&str>,
    ) -> Result<Audit, ServiceError> {
        staff.require_admin()?;
        let mut problems = Vec::new();
        let lines = prepare_lines(&lines, QuantityRule::NonNegative, &mut problems);
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let context = load_context(
            &mut transaction,
            org,
            &item_ids(&lines),
            &[("storage_location_id", storage_location_id)],
            false,
            &mut problems,
        )
        .await?;
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let mut audit = Audit {
            id: DocumentId::new(),
            storage_location_id,
            status: AuditStatus::InProgress,
            user_id: Some(staff.user_id),
            created_at: OffsetDateTime::now_utc(),
            updated_at: OffsetDateTime::now_utc(),
            finalized_at: None,
            lines,
        };
        if let Recorded::Earlier(existing) = self
            .record(
                &mut transaction,
                staff,
                &mut audit,
                idempotency_key,
                &context,
            )
            .await?
        {
            drop(transaction);
            return self.get_document(staff, existing).await;
        }
        transaction.commit().await?;
        Ok(audit)
    }

    /// New counts and/or CONFIRMED; a finalized audit is immutable.
    pub async fn update_audit(
        &self,
        staff: &Staff,
        id: DocumentId,
        lines: Option<Vec<Line>>,
        confirm: bool,
    ) -> Result<Audit, ServiceError> {
        staff.require_admin()?;
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let audit: Audit = self.locked(&mut transaction, staff, id).await?;
        if audit.status == AuditStatus::Finalized {
            return Err(audit_finalized());
        }
        if let Some(lines) = lines {
            let mut problems = Vec::new();
            let lines = prepare_lines(&lines, QuantityRule::NonNegative, &mut problems);
            load_context(
                &mut transaction,
                org,
                &item_ids(&lines),
                &[],
                false,
                &mut problems,
            )
            .await?;
            if !problems.is_empty() {
                return Err(ServiceError::invalid(problems));
            }
            repo::documents::delete_lines(&mut transaction, org, id).await?;
            repo::documents::insert_lines(&mut transaction, org, id, &lines).await?;
        }
        if confirm {
            repo::documents::set_audit_status(&mut transaction, org, id, AuditStatus::Confirmed)
                .await?;
        } else {
            repo::documents::set_audit_status(&mut transaction, org, id, audit.status).await?;
        }
        let audit = fetch::<Audit>(&mut transaction, org, id, false).await?;
        audit::record(&mut transaction, Audited::subject("audit", id.0)).await?;
        transaction.commit().await?;
        Ok(audit)
    }

    /// Sets the location's stock of every counted item to its count; then immutable.
    pub async fn finalize_audit(
        &self,
        staff: &Staff,
        id: DocumentId,
    ) -> Result<Audit, ServiceError> {
        staff.require_admin()?;
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let audit: Audit = self.locked(&mut transaction, staff, id).await?;
        if audit.status == AuditStatus::Finalized {
            return Err(audit_finalized());
        }
        let mut problems = Vec::new();
        let context = load_context(
            &mut transaction,
            org,
            &item_ids(&audit.lines),
            &[("storage_location_id", audit.storage_location_id)],
            true,
            &mut problems,
        )
        .await?;
        if !problems.is_empty() {
            return Err(InventoryError::AuditNotFinalizable {
                problems: problems
                    .iter()
                    .map(|problem| format!("{} {}", problem.field, problem.description))
                    .collect::<Vec<_>>()
                    .join("; "),
            }
            .into());
        }
        let current = repo::stock::lock_balances(
            &mut transaction,
            org,
            audit.storage_location_id,
            &item_ids(&audit.lines),
        )
        .await?;
        let changes = plan_changes(audit.lines.iter().map(|line| StockChange {
            storage_location_id: audit.storage_location_id,
            item_id: line.item_id,
            quantity_change: line.quantity - current.get(&line.item_id).copied().unwrap_or(0),
        }));
        repo::documents::set_audit_status(&mut transaction, org, id, AuditStatus::Finalized)
            .await?;
        move_stock(
            &mut transaction,
            org,
            &changes,
            LedgerSourceRef {
                source: LedgerSource::Audit,
                source_id: id,
                effective_at: OffsetDateTime::now_utc(),
                user_id: Some(staff.user_id),
            },
            &context,
        )
        .await?;
        let audit = fetch::<Audit>(&mut transaction, org, id, false).await?;
        transaction.commit().await?;
        Ok(audit)
    }

    pub async fn delete_audit(&self, staff: &Staff, id: DocumentId) -> Result<(), ServiceError> {
        staff.require_admin()?;
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let audit: Audit = self.locked(&mut transaction, staff, id).await?;
        if audit.status == AuditStatus::Finalized {
            return Err(audit_finalized());
        }
        repo::documents::delete_document(&mut transaction, org, Audit::TABLE, id).await?;
        transaction.commit().await?;
        Ok(())
    }
}

fn audit_finalized() -> ServiceError {
    InventoryError::AuditFinalized.into()
}

/// Each line as a change at one location, with `sign` +1 (in) or -1 (out).
pub fn into_changes(location: StorageLocationId, lines: &[Line], sign: i32) -> Vec<StockChange> {
    plan_changes(lines.iter().map(|line| StockChange {
        storage_location_id: location,
        item_id: line.item_id,
        quantity_change: line.quantity * sign,
    }))
}

/// Adds locations (active or not) to a context, for names in errors and events; `share_lock` when stock goes back into them, so that none
/// can be deactivated (it must be empty for that) until the caller commits.
pub async fn with_locations(
    connection: &mut sqlx::PgConnection,
    organization_id: OrganizationId,
    mut context: StockContext,
    locations: &[StorageLocationId],
    share_lock: bool,
) -> Result<StockContext, ServiceError> {
    for location in
        repo::catalog::get_locations(connection, organization_id, locations, share_lock).await?
    {
        context.locations.insert(location.id, location);
    }
    Ok(context)
}

pub fn item_lines(lines: &[Line], context: &StockContext) -> Vec<ItemLine> {
    lines
        .iter()
        .map(|line| {
            let item = context.items.get(&line.item_id);
            ItemLine {
                item_id: line.item_id.to_string(),
                item_name: item.map(|item| item.name.clone()).unwrap_or_default(),
                quantity: line.quantity,
                value_in_cents: item.map(|item| item.value_in_cents).unwrap_or(0),
                persons: 0,
            }
        })
        .collect()
}
