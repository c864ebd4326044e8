//! Conversions between domain values and protobuf messages, and page tokens.

use essentials_proto::common::v1 as common;
use essentials_proto::inventory::v1 as pb;
use essentials_runtime::FieldViolation;

use crate::domain::{
    AuditStatus, DeliveryMethod, DistributionState, DonationSource, Item, ItemCategory, ItemId,
    LedgerSource, Line, ReportingCategory, StorageLocation, WarehouseType,
};
use crate::repo::distributions::Distribution;
use crate::repo::documents::{Adjustment, Audit, Donation, IssuedCursor, Purchase, Transfer};
use crate::repo::stock::{Balance, LedgerEntry};
use crate::service::distributions::DistributionView;

pub use essentials_runtime::convert::{
    decode_id_token as uuid_token, decode_token, encode_token, from_timestamp, next_token,
    optional_id, optional_timestamp, required_id, resource_id, timestamp,
};

pub use crate::service::wire::{
    delivery_method_proto, distribution_state_proto, donation_source_proto,
};

pub fn lines(
    field: &str,
    line_items: &[common::LineItem],
    problems: &mut Vec<FieldViolation>,
) -> Vec<Line> {
    line_items
        .iter()
        .enumerate()
        .map(|(index, line)| Line {
            item_id: ItemId(required_id(
                &format!("{field}[{index}].item_id"),
                &line.item_id,
                problems,
            )),
            quantity: line.quantity,
        })
        .collect()
}

pub fn line_items(lines: &[Line]) -> Vec<common::LineItem> {
    lines
        .iter()
        .map(|line| common::LineItem {
            item_id: line.item_id.to_string(),
            quantity: line.quantity,
        })
        .collect()
}

pub fn reporting_category_proto(category: ReportingCategory) -> i32 {
    use pb::ReportingCategory as P;
    (match category {
        ReportingCategory::AdultIncontinence => P::AdultIncontinence,
        ReportingCategory::ClothDiapers => P::ClothDiapers,
        ReportingCategory::DisposableDiapers => P::DisposableDiapers,
        ReportingCategory::Pads => P::Pads,
        ReportingCategory::PeriodLiners => P::PeriodLiners,
        ReportingCategory::PeriodOther => P::PeriodOther,
        ReportingCategory::PeriodUnderwear => P::PeriodUnderwear,
        ReportingCategory::Tampons => P::Tampons,
        ReportingCategory::Other => P::Other,
    }) as i32
}

/// `None` for UNSPECIFIED; a violation for unknown numbers.
pub fn reporting_category(
    field: &str,
    value: i32,
    problems: &mut Vec<FieldViolation>,
) -> Option<ReportingCategory> {
    use pb::ReportingCategory as P;
    match P::try_from(value) {
        Ok(P::Unspecified) => None,
        Ok(P::AdultIncontinence) => Some(ReportingCategory::AdultIncontinence),
        Ok(P::ClothDiapers) => Some(ReportingCategory::ClothDiapers),
        Ok(P::DisposableDiapers) => Some(ReportingCategory::DisposableDiapers),
        Ok(P::Pads) => Some(ReportingCategory::Pads),
        Ok(P::PeriodLiners) => Some(ReportingCategory::PeriodLiners),
        Ok(P::PeriodOther) => Some(ReportingCategory::PeriodOther),
        Ok(P::PeriodUnderwear) => Some(ReportingCategory::PeriodUnderwear),
        Ok(P::Tampons) => Some(ReportingCategory::Tampons),
        Ok(P::Other) => Some(ReportingCategory::Other),
        Err(_) => {
            problems.push(FieldViolation::new(
                field,
                "is not a known reporting category",
            ));
            None
        }
    }
}

pub fn warehouse_type_proto(value: Option<WarehouseType>) -> i32 {
    use pb::WarehouseType as P;
    (match value {
        None => P::Unspecified,
        Some(WarehouseType::Residential) => P::Residential,
        Some(WarehouseType::SelfStorage) => P::SelfStorage,
        Some(WarehouseType::Commercial) => P::Commercial,
        Some(WarehouseType::DonatedSpace) => P::DonatedSpace,
    }) as i32
}

pub fn warehouse_type(value: i32, problems: &mut Vec<FieldViolation>) -> Option<WarehouseType> {
    use pb::WarehouseType as P;
    match P::try_from(value) {
        Ok(P::Unspecified) => None,
        Ok(P::Residential) => Some(WarehouseType::Residential),
        Ok(P::SelfStorage) => Some(WarehouseType::SelfStorage),
        Ok(P::Commercial) => Some(WarehouseType::Commercial),
        Ok(P::DonatedSpace) => Some(WarehouseType::DonatedSpace),
        Err(_) => {
            problems.push(FieldViolation::new(
                "storage_location.warehouse_type",
                "is not a known warehouse type",
            ));
            None
        }
    }
}

pub fn donation_source(
    field: &str,
    value: i32,
    problems: &mut Vec<FieldViolation>,
) -> Option<DonationSource> {
    use pb::DonationSource as P;
    match P::try_from(value) {
        Ok(P::Unspecified) => None,
        Ok(P::ProductDrive) => Some(DonationSource::ProductDrive),
        Ok(P::Manufacturer) => Some(DonationSource::Manufacturer),
        Ok(P::DonationSite) => Some(DonationSource::DonationSite),
        Ok(P::Misc) => Some(DonationSource::Misc),
        Err(_) => {
            problems.push(FieldViolation::new(field, "is not a known donation source"));
            None
        }
    }
}

pub fn audit_status_proto(status: AuditStatus) -> i32 {
    use pb::AuditStatus as P;
    (match status {
        AuditStatus::InProgress => P::InProgress,
        AuditStatus::Confirmed => P::Confirmed,
        AuditStatus::Finalized => P::Finalized,
    }) as i32
}

pub fn audit_status(value: i32, problems: &mut Vec<FieldViolation>) -> Option<AuditStatus> {
    use pb::AuditStatus as P;
    match P::try_from(value) {
        Ok(P::Unspecified) => None,
        Ok(P::InProgress) => Some(AuditStatus::InProgress),
        Ok(P::Confirmed) => Some(AuditStatus::Confirmed),
        Ok(P::Finalized) => Some(AuditStatus::Finalized),
        Err(_) => {
            problems.push(FieldViolation::new("status", "is not a known audit status"));
            None
        }
    }
}

pub fn delivery_method(
    field: &str,
    value: i32,
    problems: &mut Vec<FieldViolation>,
) -> Option<DeliveryMethod> {
    use common::DeliveryMethod as P;
    match P::try_from(value) {
        Ok(P::Unspecified) => None,
        Ok(P::PickUp) => Some(DeliveryMethod::PickUp),
        Ok(P::Delivery) => Some(DeliveryMethod::Delivery),
        Ok(P::Shipped) => Some(DeliveryMethod::Shipped),
        Err(_) => {
            problems.push(FieldViolation::new(field, "is not a known delivery method"));
            None
        }
    }
}

pub fn distribution_state(
    value: i32,
    problems: &mut Vec<FieldViolation>,
) -> Option<DistributionState> {
    use pb::DistributionState as P;
    match P::try_from(value) {
        Ok(P::Unspecified) => None,
        Ok(P::Scheduled) => Some(DistributionState::Scheduled),
        Ok(P::Complete) => Some(DistributionState::Complete),
        Err(_) => {
            problems.push(FieldViolation::new("state", "is not a known state"));
            None
        }
    }
}

pub fn ledger_source(value: i32, problems: &mut Vec<FieldViolation>) -> Option<LedgerSource> {
    use pb::LedgerSourceType as P;
    match P::try_from(value) {
        Ok(P::Unspecified) => None,
        Ok(P::Donation) => Some(LedgerSource::Donation),
        Ok(P::DonationDeleted) => Some(LedgerSource::DonationDeleted),
        Ok(P::Purchase) => Some(LedgerSource::Purchase),
        Ok(P::PurchaseDeleted) => Some(LedgerSource::PurchaseDeleted),
        Ok(P::Adjustment) => Some(LedgerSource::Adjustment),
        Ok(P::Transfer) => Some(LedgerSource::Transfer),
        Ok(P::TransferDeleted) => Some(LedgerSource::TransferDeleted),
        Ok(P::Audit) => Some(LedgerSource::Audit),
        Ok(P::Distribution) => Some(LedgerSource::Distribution),
        Ok(P::DistributionUpdated) => Some(LedgerSource::DistributionUpdated),
        Ok(P::DistributionReclaimed) => Some(LedgerSource::DistributionReclaimed),
        Err(_) => {
            problems.push(FieldViolation::new("source_type", "is not a known source"));
            None
        }
    }
}

pub fn item(item: &Item) -> pb::Item {
    pb::Item {
        id: item.id.to_string(),
        name: item.name.clone(),
        item_category_id: item
            .item_category_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        reporting_category: reporting_category_proto(item.reporting_category),
        partner_key: item.partner_key.clone(),
        value_in_cents: item.value_in_cents,
        package_size: item.package_size,
        distribution_quantity: Some(item.distribution_quantity),
        on_hand_minimum_quantity: Some(item.on_hand_minimum_quantity),
        on_hand_recommended_quantity: Some(item.on_hand_recommended_quantity.unwrap_or(0)),
        visible_to_partners: Some(item.visible_to_partners),
        active: Some(item.active),
        additional_info: item.additional_info.clone(),
        created_at: Some(timestamp(item.created_at)),
        updated_at: Some(timestamp(item.updated_at)),
    }
}

pub fn category(category: &ItemCategory) -> pb::ItemCategory {
    pb::ItemCategory {
        id: category.id.to_string(),
        name: category.name.clone(),
        description: category.description.clone(),
        created_at: Some(timestamp(category.created_at)),
        updated_at: Some(timestamp(category.updated_at)),
    }
}

pub fn location(location: &StorageLocation) -> pb::StorageLocation {
    pb::StorageLocation {
        id: location.id.to_string(),
        name: location.name.clone(),
        address: location.address.clone(),
        warehouse_type: warehouse_type_proto(location.warehouse_type),
        square_footage: location.square_footage,
        time_zone: location.time_zone.clone(),
        active: location.active,
        created_at: Some(timestamp(location.created_at)),
        updated_at: Some(timestamp(location.updated_at)),
    }
}

pub fn balance(balance: &Balance) -> pb::StockBalance {
    pb::StockBalance {
        storage_location_id: balance
            .storage_location_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        item_id: balance.item_id.to_string(),
        quantity: i32::try_from(balance.quantity).unwrap_or(i32::MAX),
    }
}

pub fn ledger_entry(entry: &LedgerEntry) -> pb::LedgerEntry {
    pb::LedgerEntry {
        id: entry.id.to_string(),
        storage_location_id: entry.storage_location_id.to_string(),
        item_id: entry.item_id.to_string(),
        quantity_change: entry.quantity_change,
        quantity_after: entry.quantity_after,
        source_type: crate::service::ledger_source_proto(entry.source),
        source_id: entry.source_id.to_string(),
        effective_at: Some(timestamp(entry.effective_at)),
        recorded_at: Some(timestamp(entry.recorded_at)),
        user_id: entry.user_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}

pub fn donation(donation: &Donation, total_value_in_cents: i64) -> pb::Donation {
    pb::Donation {
        id: donation.id.to_string(),
        storage_location_id: donation.storage_location_id.to_string(),
        issued_at: Some(timestamp(donation.issued_at)),
        source: donation_source_proto(donation.source),
        source_name: donation.source_name.clone(),
        money_raised_in_cents: donation.money_raised_in_cents,
        comment: donation.comment.clone(),
        line_items: line_items(&donation.lines),
        total_value_in_cents,
        user_id: donation
            .user_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        created_at: Some(timestamp(donation.created_at)),
    }
}

pub fn purchase(purchase: &Purchase, total_value_in_cents: i64) -> pb::Purchase {
    pb::Purchase {
        id: purchase.id.to_string(),
        storage_location_id: purchase.storage_location_id.to_string(),
        issued_at: Some(timestamp(purchase.issued_at)),
        vendor: purchase.vendor.clone(),
        amount_spent_in_cents: purchase.amount_spent_in_cents,
        amount_spent_on_diapers_in_cents: purchase.breakdown_in_cents[0],
        amount_spent_on_adult_incontinence_in_cents: purchase.breakdown_in_cents[1],
        amount_spent_on_period_supplies_in_cents: purchase.breakdown_in_cents[2],
        amount_spent_on_other_in_cents: purchase.breakdown_in_cents[3],
        comment: purchase.comment.clone(),
        line_items: line_items(&purchase.lines),
        total_value_in_cents,
        user_id: purchase
            .user_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        created_at: Some(timestamp(purchase.created_at)),
    }
}

pub fn adjustment(adjustment: &Adjustment) -> pb::Adjustment {
    pb::Adjustment {
        id: adjustment.id.to_string(),
        storage_location_id: adjustment.storage_location_id.to_string(),
        comment: adjustment.comment.clone(),
        line_items: line_items(&adjustment.lines),
        user_id: adjustment
            .user_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        created_at: Some(timestamp(adjustment.created_at)),
    }
}

pub fn transfer(transfer: &Transfer) -> pb::Transfer {
    pb::Transfer {
        id: transfer.id.to_string(),
        from_storage_location_id: transfer.from_storage_location_id.to_string(),
        to_storage_location_id: transfer.to_storage_location_id.to_string(),
        comment: transfer.comment.clone(),
        line_items: line_items(&transfer.lines),
        user_id: transfer
            .user_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        created_at: Some(timestamp(transfer.created_at)),
    }
}

pub fn audit(audit: &Audit) -> pb::Audit {
    pb::Audit {
        id: audit.id.to_string(),
        storage_location_id: audit.storage_location_id.to_string(),
        status: audit_status_proto(audit.status),
        line_items: line_items(&audit.lines),
        user_id: audit.user_id.map(|id| id.to_string()).unwrap_or_default(),
        created_at: Some(timestamp(audit.created_at)),
        updated_at: Some(timestamp(audit.updated_at)),
        finalized_at: audit.finalized_at.map(timestamp),
    }
}

pub fn distribution(view: &DistributionView) -> pb::Distribution {
    let d: &Distribution = &view.distribution;
    pb::Distribution {
        id: d.id.to_string(),
        partner_id: d.partner_id.to_string(),
        storage_location_id: d.storage_location_id.to_string(),
        issued_at: Some(timestamp(d.issued_at)),
        delivery_method: delivery_method_proto(d.delivery_method),
        shipping_cost_in_cents: d.shipping_cost_in_cents,
        comment: d.comment.clone(),
        agency_rep: d.agency_rep.clone(),
        request_id: d.request_id.map(|id| id.to_string()).unwrap_or_default(),
        state: distribution_state_proto(d.state),
        reminder_email_enabled: d.reminder_email_enabled,
        line_items: line_items(&d.lines),
        total_quantity: view.total_quantity,
        total_value_in_cents: view.total_value_in_cents,
        user_id: d.user_id.map(|id| id.to_string()).unwrap_or_default(),
        created_at: Some(timestamp(d.created_at)),
        updated_at: Some(timestamp(d.updated_at)),
    }
}

pub fn low_stock_warnings(view: &DistributionView) -> Vec<pb::LowStockWarning> {
    view.low_stock
        .iter()
        .map(|low| pb::LowStockWarning {
            item_id: low.item_id.to_string(),
            item_name: low.item_name.clone(),
            bank_wide_quantity: low.bank_wide_quantity,
            on_hand_minimum_quantity: low.on_hand_minimum_quantity,
            on_hand_recommended_quantity: low.on_hand_recommended_quantity,
            below_minimum: low.below_minimum,
        })
        .collect()
}

pub fn issued_token(cursor: IssuedCursor) -> String {
    essentials_runtime::convert::time_token(cursor.issued_at, cursor.id)
}

pub fn issued_cursor(token: &str, problems: &mut Vec<FieldViolation>) -> Option<IssuedCursor> {
    essentials_runtime::convert::decode_time_token(token, problems)
        .map(|(issued_at, id)| IssuedCursor { issued_at, id })
}
