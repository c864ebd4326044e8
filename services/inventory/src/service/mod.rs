//! Use cases of the inventory part: each runs in one transaction that also writes its events to
//! the outbox. Callers (the gRPC layer) hand in validated domain values and the acting caller.

pub mod catalog;
pub mod distributions;
pub mod documents;
pub mod stock;
pub mod wire;

use std::collections::HashMap;

use essentials_proto::events::v1::{LowStockItem, StockChanged, StockLevel, StockLow};
use essentials_runtime::auth::{Principal, Role};
use essentials_runtime::bus::{NewEvent, enqueue};
use essentials_runtime::{FieldViolation, ServiceError};
use sqlx::{PgConnection, PgPool};
use tonic::transport::Channel;

use crate::domain::InventoryError;
use crate::domain::{
    Item, ItemId, LedgerSource, LowStock, OrganizationId, Shortage, StockChange, StorageLocation,
    StorageLocationId, UserId, low_stock,
};
use crate::repo;
use crate::repo::stock::{AppliedChange, LedgerSourceRef};

/// What the use cases share: the database and channels to the parts they ask.
#[derive(Clone)]
pub struct Inventory {
    pub pool: PgPool,
    pub partner: Channel,
    pub request: Channel,
}

/// A bank staff member acting on their bank.
#[derive(Debug, Clone)]
pub struct Staff {
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub is_admin: bool,
    pub principal: Principal,
}

impl Staff {
    pub fn from_principal(principal: &Principal) -> Result<Self, ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        Ok(Self {
            organization_id: OrganizationId(organization_id),
            user_id: UserId(principal.user_id),
            is_admin: principal.role == Role::OrgAdmin,
            principal: principal.clone(),
        })
    }

    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.is_admin {
            Ok(())
        } else {
            Err(ServiceError::permission_denied(
                "That action needs a bank administrator (org_admin).",
            ))
        }
    }
}

/// One page of a list and whether more follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

impl<T> Page<T> {
    /// From `limit + 1` fetched rows.
    pub fn from_rows(mut rows: Vec<T>, limit: i64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        Self { items: rows, more }
    }
}

/// The bank's items and locations that a stock change names, by id.
#[derive(Debug, Clone, Default)]
pub struct StockContext {
    pub items: HashMap<ItemId, Item>,
    pub locations: HashMap<StorageLocationId, StorageLocation>,
}

/// What a stock change did (for answers and events).
#[derive(Debug, Clone, Default)]
pub struct StockOutcome {
    pub applied: Vec<AppliedChange>,
    pub bank_wide: HashMap<ItemId, i32>,
    pub low_stock: Vec<LowStock>,
}

/// Loads the items and locations of a change, checking that each belongs to the bank. Items are
/// named by `line_items[i].item_id` in violations; `share_lock` keeps them (and the locations)
/// from being deactivated before the transaction ends (used when stock rises).
pub async fn load_context(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    item_ids: &[ItemId],
    location_fields: &[(&str, StorageLocationId)],
    share_lock: bool,
    violations: &mut Vec<FieldViolation>,
) -> Result<StockContext, ServiceError> {
    let items = repo::catalog::get_items(connection, organization_id, item_ids, share_lock).await?;
    let items: HashMap<ItemId, Item> = items.into_iter().map(|item| (item.id, item)).collect();
    for (index, item_id) in item_ids.iter().enumerate() {
        if !items.contains_key(item_id) {
            violations.push(FieldViolation::new(
                format!("line_items[{index}].item_id"),
                "names no item of this bank",
            ));
        }
    }
    let location_ids: Vec<StorageLocationId> = location_fields.iter().map(|(_, id)| *id).collect();
    let locations =
        repo::catalog::get_locations(connection, organization_id, &location_ids, share_lock)
            .await?;
    let locations: HashMap<StorageLocationId, StorageLocation> = locations
        .into_iter()
        .map(|location| (location.id, location))
        .collect();
    for (field, id) in location_fields {
        match locations.get(id) {
            None => violations.push(FieldViolation::new(
                *field,
                "names no storage location of this bank",
            )),
            Some(location) if !location.active => violations.push(FieldViolation::new(
                *field,
                "names a deactivated storage location",
            )),
            Some(_) => {}
        }
    }
    Ok(StockContext { items, locations })
}

/// Applies planned changes, appends the ledger, and enqueues stock.changed (and stock.low when
/// an item's bank-wide quantity fell below a threshold). Short stock: INSUFFICIENT_STOCK naming
/// every short line; the caller's transaction must then be dropped (it is, by `?`).
pub async fn move_stock(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    changes: &[StockChange],
    source: LedgerSourceRef,
    context: &StockContext,
) -> Result<StockOutcome, ServiceError> {
    let applied =
        match repo::stock::apply_changes(connection, organization_id, changes, &source).await? {
            Ok(applied) => applied,
            Err(short) => {
                let shortages: Vec<Shortage> = short
                    .iter()
                    .map(|line| Shortage {
                        item_id: line.change.item_id,
                        item_name: context
                            .items
                            .get(&line.change.item_id)
                            .map(|item| item.name.clone())
                            .unwrap_or_default(),
                        storage_location_id: line.change.storage_location_id,
                        storage_location_name: context
                            .locations
                            .get(&line.change.storage_location_id)
                            .map(|location| location.name.clone())
                            .unwrap_or_default(),
                        wanted: line.change.quantity_change.saturating_abs(),
                        available: line.available,
                    })
                    .collect();
                return Err(insufficient_stock(&shortages));
            }
        };
    let mut item_ids: Vec<ItemId> = applied.iter().map(|a| a.change.item_id).collect();
    item_ids.dedup();
    let bank_wide =
        repo::stock::bank_wide_quantities(connection, organization_id, &item_ids).await?;
    let mut net: HashMap<ItemId, i64> = HashMap::new();
    for change in &applied {
        *net.entry(change.change.item_id).or_insert(0) += i64::from(change.change.quantity_change);
    }
    let mut low = Vec::new();
    for item_id in &item_ids {
        let fell = net.get(item_id).is_some_and(|delta| *delta < 0);
        let (Some(item), true) = (context.items.get(item_id), fell) else {
            continue;
        };
        if let Some(warning) = low_stock(item, bank_wide.get(item_id).copied().unwrap_or(0)) {
            low.push(warning);
        }
    }
    let levels = applied
        .iter()
        .map(|change| {
            let item = context.items.get(&change.change.item_id);
            StockLevel {
                item_id: change.change.item_id.to_string(),
                item_name: item.map(|item| item.name.clone()).unwrap_or_default(),
                storage_location_id: change.change.storage_location_id.to_string(),
                storage_location_name: context
                    .locations
                    .get(&change.change.storage_location_id)
                    .map(|location| location.name.clone())
                    .unwrap_or_default(),
                quantity_change: change.change.quantity_change,
                location_quantity: change.quantity_after,
                bank_wide_quantity: bank_wide.get(&change.change.item_id).copied().unwrap_or(0),
                on_hand_minimum_quantity: item
                    .map(|item| item.on_hand_minimum_quantity)
                    .unwrap_or(0),
                on_hand_recommended_quantity: item
                    .and_then(|item| item.on_hand_recommended_quantity)
                    .unwrap_or(0),
            }
        })
        .collect();
    let source_type = ledger_source_proto(source.source);
    let actor = source.user_id.map(|id| id.0);
    let changed = StockChanged {
        source_type,
        source_id: source.source_id.to_string(),
        levels,
    };
    enqueue(
        connection,
        &NewEvent::new(Some(organization_id.0), actor, &changed),
    )
    .await?;
    if !low.is_empty() {
        let stock_low = StockLow {
            source_type,
            source_id: source.source_id.to_string(),
            items: low
                .iter()
                .map(|warning| LowStockItem {
                    item_id: warning.item_id.to_string(),
                    item_name: warning.item_name.clone(),
                    bank_wide_quantity: warning.bank_wide_quantity,
                    on_hand_minimum_quantity: warning.on_hand_minimum_quantity,
                    on_hand_recommended_quantity: warning.on_hand_recommended_quantity,
                    below_minimum: warning.below_minimum,
                })
                .collect(),
        };
        enqueue(
            connection,
            &NewEvent::new(Some(organization_id.0), actor, &stock_low),
        )
        .await?;
    }
    Ok(StockOutcome {
        applied,
        bank_wide,
        low_stock: low,
    })
}

/// FAILED_PRECONDITION reason INSUFFICIENT_STOCK (see `InventoryError::InsufficientStock`).
pub fn insufficient_stock(shortages: &[Shortage]) -> ServiceError {
    InventoryError::InsufficientStock {
        shortages: shortages.to_vec(),
    }
    .into()
}

pub fn ledger_source_proto(source: LedgerSource) -> i32 {
    use essentials_proto::inventory::v1::LedgerSourceType as P;
    let value = match source {
        LedgerSource::Donation => P::Donation,
        LedgerSource::DonationDeleted => P::DonationDeleted,
        LedgerSource::Purchase => P::Purchase,
        LedgerSource::PurchaseDeleted => P::PurchaseDeleted,
        LedgerSource::Adjustment => P::Adjustment,
        LedgerSource::Transfer => P::Transfer,
        LedgerSource::TransferDeleted => P::TransferDeleted,
        LedgerSource::Audit => P::Audit,
        LedgerSource::Distribution => P::Distribution,
        LedgerSource::DistributionUpdated => P::DistributionUpdated,
        LedgerSource::DistributionReclaimed => P::DistributionReclaimed,
    };
    value as i32
}

/// Maps a unique violation of a named constraint to a client error, else passes it on.
pub fn map_unique(
    error: sqlx::Error,
    constraint: &str,
    to: impl FnOnce() -> ServiceError,
) -> ServiceError {
    match essentials_runtime::error::unique_violation(&error) {
        Some(name) if name == constraint => to(),
        _ => ServiceError::from(error),
    }
}

/// A list's page size: default 50, at most 500.
pub use essentials_runtime::convert::page_size as page_limit;
