//! Balances and the append-only ledger. Every change of a balance writes a ledger entry in the
//! same transaction; a reduction is a conditional update that never takes a balance below zero.

use std::collections::HashMap;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::text_enum;
use crate::domain::{
    DocumentId, ItemId, LedgerSource, OrganizationId, StockChange, StorageLocationId, UserId,
};

/// A change that was made, with the balance right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedChange {
    pub change: StockChange,
    pub quantity_after: i32,
}

/// A reduction that could not be made: what the location holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortLine {
    pub change: StockChange,
    pub available: i32,
}

/// Where the entries of one application come from.
#[derive(Debug, Clone, Copy)]
pub struct LedgerSourceRef {
    pub source: LedgerSource,
    pub source_id: DocumentId,
    pub effective_at: OffsetDateTime,
    pub user_id: Option<UserId>,
}

/// Applies planned changes (merged and ordered by [`crate::domain::plan_changes`]) one by one, in
/// their order, and appends their ledger entries. Every short line is reported; when any is short
/// the caller must roll the transaction back (nothing of it may be committed).
pub async fn apply_changes(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    changes: &[StockChange],
    source: &LedgerSourceRef,
) -> Result<Result<Vec<AppliedChange>, Vec<ShortLine>>, sqlx::Error> {
    let mut applied = Vec::with_capacity(changes.len());
    let mut short = Vec::new();
    for change in changes {
        if change.quantity_change >= 0 {
            let quantity_after: i32 = sqlx::query_scalar(
                "INSERT INTO stock_balance (organization_id, storage_location_id, item_id, quantity)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (organization_id, storage_location_id, item_id)
                 DO UPDATE SET quantity = stock_balance.quantity + EXCLUDED.quantity
                 RETURNING quantity",
            )
            .bind(organization_id)
            .bind(change.storage_location_id)
            .bind(change.item_id)
            .bind(change.quantity_change)
            .fetch_one(&mut *connection)
            .await?;
            applied.push(AppliedChange {
                change: *change,
                quantity_after,
            });
            continue;
        }
        let wanted = i64::from(change.quantity_change).abs();
        // Waits for a concurrent writer of the row, then re-checks the condition on its result.
        let reduced: Option<i32> = sqlx::query_scalar(
            "UPDATE stock_balance SET quantity = quantity - $4
             WHERE organization_id = $1 AND storage_location_id = $2 AND item_id = $3
               AND quantity >= $4
             RETURNING quantity",
        )
        .bind(organization_id)
        .bind(change.storage_location_id)
        .bind(change.item_id)
        .bind(wanted)
        .fetch_optional(&mut *connection)
        .await?;
        match reduced {
            Some(quantity_after) => applied.push(AppliedChange {
                change: *change,
                quantity_after,
            }),
            None => {
                let available: Option<i32> = sqlx::query_scalar(
                    "SELECT quantity FROM stock_balance
                     WHERE organization_id = $1 AND storage_location_id = $2 AND item_id = $3",
                )
                .bind(organization_id)
                .bind(change.storage_location_id)
                .bind(change.item_id)
                .fetch_optional(&mut *connection)
                .await?;
                short.push(ShortLine {
                    change: *change,
                    available: available.unwrap_or(0),
                });
            }
        }
    }
    if !short.is_empty() {
        return Ok(Err(short));
    }
    append_ledger(connection, organization_id, &applied, source).await?;
    Ok(Ok(applied))
}

async fn append_ledger(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    applied: &[AppliedChange],
    source: &LedgerSourceRef,
) -> Result<(), sqlx::Error> {
    if applied.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = applied.iter().map(|_| Uuid::now_v7()).collect();
    let locations: Vec<Uuid> = applied
        .iter()
        .map(|a| a.change.storage_location_id.0)
        .collect();
    let items: Vec<Uuid> = applied.iter().map(|a| a.change.item_id.0).collect();
    let changes: Vec<i32> = applied.iter().map(|a| a.change.quantity_change).collect();
    let after: Vec<i32> = applied.iter().map(|a| a.quantity_after).collect();
    sqlx::query(
        "INSERT INTO stock_ledger (id, organization_id, storage_location_id, item_id, quantity_change,
             quantity_after, source_type, source_id, effective_at, user_id)
         SELECT id, $1, storage_location_id, item_id, quantity_change, quantity_after, $7, $8, $9, $10
         FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::int[], $6::int[])
              AS entry(id, storage_location_id, item_id, quantity_change, quantity_after)",
    )
    .bind(organization_id)
    .bind(&ids)
    .bind(&locations)
    .bind(&items)
    .bind(&changes)
    .bind(&after)
    .bind(source.source.as_str())
    .bind(source.source_id)
    .bind(source.effective_at)
    .bind(source.user_id)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Locks the balances of these (location, item) pairs in the global order and returns them
/// (missing rows count as 0). Used by audits, which set absolute quantities.
pub async fn lock_balances(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    location: StorageLocationId,
    items: &[ItemId],
) -> Result<HashMap<ItemId, i32>, sqlx::Error> {
    let ids: Vec<Uuid> = items.iter().map(|id| id.0).collect();
    let rows = sqlx::query(
        "SELECT item_id, quantity FROM stock_balance
         WHERE organization_id = $1 AND storage_location_id = $2 AND item_id = ANY($3)
         ORDER BY item_id FOR UPDATE",
    )
    .bind(organization_id)
    .bind(location)
    .bind(&ids)
    .fetch_all(&mut *connection)
    .await?;
    let mut balances = HashMap::new();
    for row in rows {
        balances.insert(row.try_get("item_id")?, row.try_get("quantity")?);
    }
    Ok(balances)
}

/// Bank-wide quantity of each of these items.
pub async fn bank_wide_quantities(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    items: &[ItemId],
) -> Result<HashMap<ItemId, i32>, sqlx::Error> {
    let ids: Vec<Uuid> = items.iter().map(|id| id.0).collect();
    let rows = sqlx::query(
        "SELECT item_id, COALESCE(sum(quantity), 0)::int AS quantity FROM stock_balance
         WHERE organization_id = $1 AND item_id = ANY($2) GROUP BY item_id",
    )
    .bind(organization_id)
    .bind(&ids)
    .fetch_all(&mut *connection)
    .await?;
    let mut quantities = HashMap::new();
    for row in rows {
        quantities.insert(row.try_get("item_id")?, row.try_get("quantity")?);
    }
    Ok(quantities)
}

/// One balance row (location empty in bank-wide answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub storage_location_id: Option<StorageLocationId>,
    pub item_id: ItemId,
    pub quantity: i64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct BalanceFilter {
    pub storage_location_id: Option<StorageLocationId>,
    pub item_id: Option<ItemId>,
    pub bank_wide: bool,
    pub include_zero: bool,
}

/// Current balances, or (with `as_of`) balances summed from the ledger up to that moment.
pub async fn balances(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    filter: BalanceFilter,
    as_of: Option<OffsetDateTime>,
) -> Result<Vec<Balance>, sqlx::Error> {
    let (table, quantity) = match as_of {
        None => ("stock_balance", "quantity"),
        Some(_) => ("stock_ledger", "quantity_change"),
    };
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new("SELECT ");
    if filter.bank_wide {
        query.push("NULL::uuid AS storage_location_id, ");
    } else {
        query.push("storage_location_id, ");
    }
    query.push(format!(
        "item_id, COALESCE(sum({quantity}), 0)::bigint AS quantity FROM {table} WHERE organization_id = "
    ));
    query.push_bind(organization_id);
    if let Some(location) = filter.storage_location_id {
        query
            .push(" AND storage_location_id = ")
            .push_bind(location);
    }
    if let Some(item) = filter.item_id {
        query.push(" AND item_id = ").push_bind(item);
    }
    if let Some(as_of) = as_of {
        query.push(" AND effective_at <= ").push_bind(as_of);
    }
    if filter.bank_wide {
        query.push(" GROUP BY item_id");
    } else {
        query.push(" GROUP BY storage_location_id, item_id");
    }
    if !filter.include_zero {
        query.push(format!(" HAVING sum({quantity}) <> 0"));
    }
    if filter.bank_wide {
        query.push(" ORDER BY item_id");
    } else {
        query.push(" ORDER BY storage_location_id, item_id");
    }
    let rows = query.build().fetch_all(&mut *connection).await?;
    let mut balances = Vec::with_capacity(rows.len());
    for row in rows {
        balances.push(Balance {
            storage_location_id: row.try_get("storage_location_id")?,
            item_id: row.try_get("item_id")?,
            quantity: row.try_get("quantity")?,
        });
    }
    Ok(balances)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub storage_location_id: StorageLocationId,
    pub item_id: ItemId,
    pub quantity_change: i32,
    pub quantity_after: i32,
    pub source: LedgerSource,
    pub source_id: DocumentId,
    pub effective_at: OffsetDateTime,
    pub recorded_at: OffsetDateTime,
    pub user_id: Option<UserId>,
}

#[derive(Debug, Clone, Default)]
pub struct LedgerFilter {
    pub storage_location_id: Option<StorageLocationId>,
    pub item_id: Option<ItemId>,
    pub source: Option<LedgerSource>,
    pub source_id: Option<DocumentId>,
    pub recorded_after: Option<OffsetDateTime>,
    pub recorded_before: Option<OffsetDateTime>,
}

fn ledger_from_row(row: &PgRow) -> Result<LedgerEntry, sqlx::Error> {
    Ok(LedgerEntry {
        id: row.try_get("id")?,
        storage_location_id: row.try_get("storage_location_id")?,
        item_id: row.try_get("item_id")?,
        quantity_change: row.try_get("quantity_change")?,
        quantity_after: row.try_get("quantity_after")?,
        source: text_enum(row, "source_type", LedgerSource::parse)?,
        source_id: row.try_get("source_id")?,
        effective_at: row.try_get("effective_at")?,
        recorded_at: row.try_get("recorded_at")?,
        user_id: row.try_get("user_id")?,
    })
}

/// Ledger entries newest first (by id, which is time-ordered), before the id `before`.
pub async fn list_ledger(
    connection: &mut PgConnection,
    organization_id: OrganizationId,
    filter: &LedgerFilter,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<LedgerEntry>, sqlx::Error> {
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT id, storage_location_id, item_id, quantity_change, quantity_after, source_type,
                source_id, effective_at, recorded_at, user_id
         FROM stock_ledger WHERE organization_id = ",
    );
    query.push_bind(organization_id);
    if let Some(location) = filter.storage_location_id {
        query
            .push(" AND storage_location_id = ")
            .push_bind(location);
    }
    if let Some(item) = filter.item_id {
        query.push(" AND item_id = ").push_bind(item);
    }
    if let Some(source) = filter.source {
        query.push(" AND source_type = ").push_bind(source.as_str());
    }
    if let Some(source_id) = filter.source_id {
        query.push(" AND source_id = ").push_bind(source_id);
    }
    if let Some(after) = filter.recorded_after {
        query.push(" AND recorded_at >= ").push_bind(after);
    }
    if let Some(before_time) = filter.recorded_before {
        query.push(" AND recorded_at < ").push_bind(before_time);
    }
    if let Some(before) = before {
        query.push(" AND id < ").push_bind(before);
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    let rows = query.build().fetch_all(&mut *connection).await?;
    rows.iter().map(ledger_from_row).collect()
}
