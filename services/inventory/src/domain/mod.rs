//! Types and rules of the inventory part. No I/O and no protobuf: the gRPC layer converts.

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

mod error;

pub use error::{Fulfilled, InventoryError};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A bank.
    OrganizationId
);
id_type!(ItemId);
id_type!(ItemCategoryId);
id_type!(StorageLocationId);
id_type!(
    /// A donation, purchase, adjustment, transfer, audit or distribution.
    DocumentId
);
id_type!(PartnerId);
id_type!(UserId);

/// Declares a text-backed enum with its database spelling.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant,)* }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }
    };
}

text_enum!(ReportingCategory {
    AdultIncontinence => "adult_incontinence",
    ClothDiapers => "cloth_diapers",
    DisposableDiapers => "disposable_diapers",
    Pads => "pads",
    PeriodLiners => "period_liners",
    PeriodOther => "period_other",
    PeriodUnderwear => "period_underwear",
    Tampons => "tampons",
    Other => "other",
});

text_enum!(WarehouseType {
    Residential => "residential",
    SelfStorage => "self_storage",
    Commercial => "commercial",
    DonatedSpace => "donated_space",
});

text_enum!(DonationSource {
    ProductDrive => "product_drive",
    Manufacturer => "manufacturer",
    DonationSite => "donation_site",
    Misc => "misc",
});

impl DonationSource {
    /// Product drives, manufacturers and donation sites must be named.
    pub fn needs_name(self) -> bool {
        !matches!(self, DonationSource::Misc)
    }
}

text_enum!(AuditStatus {
    InProgress => "in_progress",
    Confirmed => "confirmed",
    Finalized => "finalized",
});

text_enum!(DeliveryMethod {
    PickUp => "pick_up",
    Delivery => "delivery",
    Shipped => "shipped",
});

text_enum!(DistributionState {
    Scheduled => "scheduled",
    Complete => "complete",
});

text_enum!(
    /// What wrote a ledger entry.
    LedgerSource {
        Donation => "donation",
        DonationDeleted => "donation_deleted",
        Purchase => "purchase",
        PurchaseDeleted => "purchase_deleted",
        Adjustment => "adjustment",
        Transfer => "transfer",
        TransferDeleted => "transfer_deleted",
        Audit => "audit",
        Distribution => "distribution",
        DistributionUpdated => "distribution_updated",
        DistributionReclaimed => "distribution_reclaimed",
    }
);

/// An item of a bank's catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: ItemId,
    pub name: String,
    pub item_category_id: Option<ItemCategoryId>,
    pub reporting_category: ReportingCategory,
    pub partner_key: String,
    pub value_in_cents: i64,
    pub package_size: Option<i32>,
    pub distribution_quantity: i32,
    pub on_hand_minimum_quantity: i32,
    pub on_hand_recommended_quantity: Option<i32>,
    pub visible_to_partners: bool,
    pub active: bool,
    pub additional_info: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The writable fields of an item (create: defaults filled in; update: the masked fields changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFields {
    pub name: String,
    pub item_category_id: Option<ItemCategoryId>,
    pub reporting_category: ReportingCategory,
    pub partner_key: String,
    pub value_in_cents: i64,
    pub package_size: Option<i32>,
    pub distribution_quantity: i32,
    pub on_hand_minimum_quantity: i32,
    pub on_hand_recommended_quantity: Option<i32>,
    pub visible_to_partners: bool,
    pub active: bool,
    pub additional_info: String,
}

impl Default for ItemFields {
    fn default() -> Self {
        Self {
            name: String::new(),
            item_category_id: None,
            reporting_category: ReportingCategory::Other,
            partner_key: String::new(),
            value_in_cents: 0,
            package_size: None,
            distribution_quantity: 50,
            on_hand_minimum_quantity: 0,
            on_hand_recommended_quantity: None,
            visible_to_partners: true,
            active: true,
            additional_info: String::new(),
        }
    }
}

impl From<&Item> for ItemFields {
    fn from(item: &Item) -> Self {
        Self {
            name: item.name.clone(),
            item_category_id: item.item_category_id,
            reporting_category: item.reporting_category,
            partner_key: item.partner_key.clone(),
            value_in_cents: item.value_in_cents,
            package_size: item.package_size,
            distribution_quantity: item.distribution_quantity,
            on_hand_minimum_quantity: item.on_hand_minimum_quantity,
            on_hand_recommended_quantity: item.on_hand_recommended_quantity,
            visible_to_partners: item.visible_to_partners,
            active: item.active,
            additional_info: item.additional_info.clone(),
        }
    }
}

impl ItemFields {
    /// Every rule on an item's fields, as (field, description) pairs.
    pub fn violations(&self) -> Vec<(&'static str, String)> {
        let mut violations = Vec::new();
        if self.name.trim().is_empty() {
            violations.push(("name", "must not be blank".to_owned()));
        } else if self.name.chars().count() > 200 {
            violations.push(("name", "must be at most 200 characters".to_owned()));
        }
        if self.value_in_cents < 0 {
            violations.push(("value_in_cents", "must be 0 or more".to_owned()));
        }
        if self.package_size.is_some_and(|size| size < 0) {
            violations.push(("package_size", "must be 0 or more".to_owned()));
        }
        if self.distribution_quantity <= 0 {
            violations.push(("distribution_quantity", "must be at least 1".to_owned()));
        }
        if self.on_hand_minimum_quantity < 0 {
            violations.push(("on_hand_minimum_quantity", "must be 0 or more".to_owned()));
        }
        if self
            .on_hand_recommended_quantity
            .is_some_and(|value| value < 0)
        {
            violations.push((
                "on_hand_recommended_quantity",
                "must be 0 or more".to_owned(),
            ));
        }
        if self.additional_info.chars().count() > 500 {
            violations.push((
                "additional_info",
                "must be at most 500 characters".to_owned(),
            ));
        }
        violations
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemCategory {
    pub id: ItemCategoryId,
    pub name: String,
    pub description: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageLocation {
    pub id: StorageLocationId,
    pub name: String,
    pub address: String,
    pub warehouse_type: Option<WarehouseType>,
    pub square_footage: Option<i32>,
    pub time_zone: String,
    pub active: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageLocationFields {
    pub name: String,
    pub address: String,
    pub warehouse_type: Option<WarehouseType>,
    pub square_footage: Option<i32>,
    pub time_zone: String,
}

pub const DEFAULT_TIME_ZONE: &str = "America/Los_Angeles";

impl StorageLocationFields {
    pub fn violations(&self) -> Vec<(&'static str, String)> {
        let mut violations = Vec::new();
        if self.name.trim().is_empty() {
            violations.push(("name", "must not be blank".to_owned()));
        }
        if self.address.trim().is_empty() {
            violations.push(("address", "must not be blank".to_owned()));
        }
        if self.square_footage.is_some_and(|value| value < 0) {
            violations.push(("square_footage", "must be 0 or more".to_owned()));
        }
        let zone_ok = !self.time_zone.is_empty()
            && self.time_zone.len() <= 64
            && self
                .time_zone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
        if !zone_ok {
            violations.push((
                "time_zone",
                "must be an IANA time zone such as America/Los_Angeles".to_owned(),
            ));
        }
        violations
    }
}

/// A quantity of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub item_id: ItemId,
    pub quantity: i32,
}

/// What quantities a kind of document accepts on its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantityRule {
    /// At least 1 (donations, purchases, transfers, distributions).
    Positive,
    /// Any sign, never 0 after combining (adjustments).
    NonZero,
    /// 0 or more, one line per item (audits).
    NonNegative,
}

/// Why a set of lines is not acceptable, per line index (or `None` for the whole list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineViolation {
    pub index: Option<usize>,
    pub field: &'static str,
    pub description: String,
}

/// Combines lines of the same item (summing them) and checks the quantity rule; the result is
/// ordered by item id, the order in which stock is changed.
pub fn combine_lines(lines: &[Line], rule: QuantityRule) -> Result<Vec<Line>, Vec<LineViolation>> {
    let mut violations = Vec::new();
    if lines.is_empty() {
        violations.push(LineViolation {
            index: None,
            field: "line_items",
            description: "must have at least one line".to_owned(),
        });
    }
    let mut combined: BTreeMap<ItemId, i64> = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        let bad = match rule {
            QuantityRule::Positive if line.quantity < 1 => Some("must be at least 1"),
            QuantityRule::NonNegative if line.quantity < 0 => Some("must be 0 or more"),
            _ => None,
        };
        if let Some(description) = bad {
            violations.push(LineViolation {
                index: Some(index),
                field: "quantity",
                description: description.to_owned(),
            });
        }
        if rule == QuantityRule::NonNegative && combined.contains_key(&line.item_id) {
            violations.push(LineViolation {
                index: Some(index),
                field: "item_id",
                description: "is counted twice; give one line per item".to_owned(),
            });
        }
        *combined.entry(line.item_id).or_insert(0) += i64::from(line.quantity);
    }
    let mut result = Vec::with_capacity(combined.len());
    for (item_id, quantity) in combined {
        let Ok(quantity) = i32::try_from(quantity) else {
            violations.push(LineViolation {
                index: None,
                field: "line_items",
                description: format!("the combined quantity of item {item_id} is too large"),
            });
            continue;
        };
        if rule == QuantityRule::NonZero && quantity == 0 {
            violations.push(LineViolation {
                index: None,
                field: "line_items",
                description: format!("the lines of item {item_id} add up to 0"),
            });
        }
        result.push(Line { item_id, quantity });
    }
    if violations.is_empty() {
        Ok(result)
    } else {
        Err(violations)
    }
}

/// One signed change of one (location, item) balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockChange {
    pub storage_location_id: StorageLocationId,
    pub item_id: ItemId,
    pub quantity_change: i32,
}

/// Merges changes of the same (location, item), drops zero sums, and orders them by item id then
/// location id: every transaction takes balance row locks in this one order, so two transactions
/// touching the same rows cannot deadlock.
pub fn plan_changes(changes: impl IntoIterator<Item = StockChange>) -> Vec<StockChange> {
    let mut merged: BTreeMap<(ItemId, StorageLocationId), i64> = BTreeMap::new();
    for change in changes {
        *merged
            .entry((change.item_id, change.storage_location_id))
            .or_insert(0) += i64::from(change.quantity_change);
    }
    merged
        .into_iter()
        .filter(|(_, quantity)| *quantity != 0)
        .map(|((item_id, storage_location_id), quantity)| StockChange {
            storage_location_id,
            item_id,
            // Sums of i32 lines of a bounded number of documents; clamp rather than wrap.
            quantity_change: i32::try_from(quantity).unwrap_or(if quantity > 0 {
                i32::MAX
            } else {
                i32::MIN
            }),
        })
        .collect()
}

/// A reduction that could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub item_id: ItemId,
    pub item_name: String,
    pub storage_location_id: StorageLocationId,
    pub storage_location_name: String,
    pub wanted: i32,
    pub available: i32,
}

impl fmt::Display for Shortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Could not reduce quantity by {} - current quantity is {} for {} in {}",
            self.wanted, self.available, self.item_name, self.storage_location_name
        )
    }
}

/// The message of an INSUFFICIENT_STOCK error: one sentence per short line.
pub fn shortage_message(shortages: &[Shortage]) -> String {
    shortages
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `issued_at` of donations, purchases and distributions: from 2000-01-01 to one year ahead.
pub fn issued_at_violation(issued_at: OffsetDateTime, now: OffsetDateTime) -> Option<String> {
    let earliest = time::macros::datetime!(2000-01-01 0:00 UTC);
    if issued_at < earliest {
        return Some("must be on or after 2000-01-01".to_owned());
    }
    if issued_at > now + time::Duration::days(366) {
        return Some("must be at most one year ahead".to_owned());
    }
    None
}

/// Low-stock verdict for one item after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowStock {
    pub item_id: ItemId,
    pub item_name: String,
    pub bank_wide_quantity: i32,
    pub on_hand_minimum_quantity: i32,
    pub on_hand_recommended_quantity: i32,
    pub below_minimum: bool,
}

/// Below the minimum, or (not below the minimum but) below the recommended quantity.
pub fn low_stock(item: &Item, bank_wide_quantity: i32) -> Option<LowStock> {
    let minimum = item.on_hand_minimum_quantity;
    let recommended = item.on_hand_recommended_quantity.unwrap_or(0);
    let below_minimum = bank_wide_quantity < minimum;
    let below_recommended = bank_wide_quantity < recommended;
    if !below_minimum && !below_recommended {
        return None;
    }
    Some(LowStock {
        item_id: item.id,
        item_name: item.name.clone(),
        bank_wide_quantity,
        on_hand_minimum_quantity: minimum,
        on_hand_recommended_quantity: recommended,
        below_minimum,
    })
}

/// How one line of an edited distribution changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineChangeKind {
    Added,
    Updated,
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineChange {
    pub item_id: ItemId,
    pub kind: LineChangeKind,
    pub old_quantity: i32,
    pub new_quantity: i32,
}

/// The line changes between two versions of a distribution (both combined, by item).
pub fn line_changes(old: &[Line], new: &[Line]) -> Vec<LineChange> {
    let old_map: BTreeMap<ItemId, i32> = old.iter().map(|l| (l.item_id, l.quantity)).collect();
    let new_map: BTreeMap<ItemId, i32> = new.iter().map(|l| (l.item_id, l.quantity)).collect();
    let mut changes = Vec::new();
    for (item_id, old_quantity) in &old_map {
        match new_map.get(item_id) {
            None => changes.push(LineChange {
                item_id: *item_id,
                kind: LineChangeKind::Removed,
                old_quantity: *old_quantity,
                new_quantity: 0,
            }),
            Some(new_quantity) if new_quantity != old_quantity => changes.push(LineChange {
                item_id: *item_id,
                kind: LineChangeKind::Updated,
                old_quantity: *old_quantity,
                new_quantity: *new_quantity,
            }),
            Some(_) => {}
        }
    }
    for (item_id, new_quantity) in &new_map {
        if !old_map.contains_key(item_id) {
            changes.push(LineChange {
                item_id: *item_id,
                kind: LineChangeKind::Added,
                old_quantity: 0,
                new_quantity: *new_quantity,
            });
        }
    }
    changes
}

/// Whether the partner is told of an edit ("Your Distribution Has Changed"): when the issued
/// *date* (not just the time of day), the delivery method or any line changed.
///
/// DOMAIN.md §6.3 / §13 item 9: the reference ignores a line that was only added. We count it:
/// the partner plans the pick-up (people, vehicle, storage) from the list it was sent, so an
/// item it was never told about is exactly the surprise the e-mail exists to prevent, and the
/// e-mail already lists additions ("Wipes: added, 20"). One e-mail too many costs less than a
/// partner arriving unprepared.
pub fn partner_should_be_notified(
    issued_date_changed: bool,
    delivery_method_changed: bool,
    changes: &[LineChange],
) -> bool {
    issued_date_changed || delivery_method_changed || !changes.is_empty()
}

/// The stock changes that turn a distribution's old lines at its old location into its new lines
/// at its new location (a location change is a full return plus a full deduction).
pub fn distribution_edit_changes(
    old_location: StorageLocationId,
    old_lines: &[Line],
    new_location: StorageLocationId,
    new_lines: &[Line],
) -> Vec<StockChange> {
    let returned = old_lines.iter().map(|line| StockChange {
        storage_location_id: old_location,
        item_id: line.item_id,
        quantity_change: line.quantity,
    });
    let taken = new_lines.iter().map(|line| StockChange {
        storage_location_id: new_location,
        item_id: line.item_id,
        quantity_change: -line.quantity,
    });
    plan_changes(returned.chain(taken))
}

/// One base item a new bank starts with: (name, partner_key, reporting category).
pub const BASE_ITEMS: &[(&str, &str, ReportingCategory)] = &[
    (
        "Adult Briefs (Large/X-Large)",
        "adult_lxl",
        ReportingCategory::AdultIncontinence,
    ),
    (
        "Adult Briefs (Medium/Large)",
        "adult_ml",
        ReportingCategory::AdultIncontinence,
    ),
    (
        "Adult Briefs (Small/Medium)",
        "adult_sm",
        ReportingCategory::AdultIncontinence,
    ),
    (
        "Adult Briefs (XXL)",
        "adult_xxl",
        ReportingCategory::AdultIncontinence,
    ),
    (
        "Adult Briefs (XS/Small)",
        "adult_xs",
        ReportingCategory::AdultIncontinence,
    ),
    (
        "Adult Incontinence Pads",
        "adult_incontinence",
        ReportingCategory::AdultIncontinence,
    ),
    (
        "Underpads (Pack)",
        "underpads",
        ReportingCategory::AdultIncontinence,
    ),
    (
        "Cloth Diapers (AIO's/Pocket)",
        "cloth_aio",
        ReportingCategory::ClothDiapers,
    ),
    (
        "Cloth Diapers (Covers)",
        "cloth_cover",
        ReportingCategory::ClothDiapers,
    ),
    (
        "Cloth Diapers (Prefolds & Fitted)",
        "cloth_prefold",
        ReportingCategory::ClothDiapers,
    ),
    (
        "Cloth Diaper (Plastic Cover Pants)",
        "cloth_plastic_cover_pants",
        ReportingCategory::ClothDiapers,
    ),
    (
        "Cloth Training Pants",
        "cloth_training_pants",
        ReportingCategory::ClothDiapers,
    ),
    (
        "Disposable Inserts",
        "disposable_inserts",
        ReportingCategory::ClothDiapers,
    ),
    (
        "Kids (Preemie)",
        "k_preemie",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids (Newborn)",
        "k_newborn",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids (Size 1)",
        "k_size1",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids (Size 2)",
        "k_size2",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids (Size 3)",
        "k_size3",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids (Size 4)",
        "k_size4",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids (Size 5)",
        "k_size5",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids (Size 6)",
        "k_size6",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids (Size 7)",
        "k_size7",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids L/XL (60-125 lbs)",
        "k_lxl",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids S/M (38-65 lbs)",
        "k_sm",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids Pull-Ups (2T-3T)",
        "k_2t3t",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids Pull-Ups (3T-4T)",
        "k_3t4t",
        ReportingCategory::DisposableDiapers,
    ),
    (
        "Kids Pull-Ups (4T-5T)",
        "k_4t5t",
        ReportingCategory::DisposableDiapers,
    ),
    ("Swimmers", "swimmers", ReportingCategory::DisposableDiapers),
    ("Wipes (Baby)", "baby_wipes", ReportingCategory::Other),
    ("Adult Wipes", "adult_wipes", ReportingCategory::Other),
    (
        "Diaper Rash Cream/Powder",
        "diaper_rash_cream",
        ReportingCategory::Other,
    ),
    (
        "Bed Pads (Disposable)",
        "bed_pads_disposable",
        ReportingCategory::Other,
    ),
    ("Pads", "pads", ReportingCategory::Pads),
    (
        "Liners (Incontinence)",
        "liners_incontinence",
        ReportingCategory::PeriodLiners,
    ),
    (
        "Liners (Menstrual)",
        "liners_menstrual",
        ReportingCategory::PeriodLiners,
    ),
    ("Tampons", "tampons", ReportingCategory::Tampons),
    (
        "Menstrual Cups",
        "menstrual_cups",
        ReportingCategory::PeriodOther,
    ),
    (
        "Period Underwear (Pair)",
        "period_underwear",
        ReportingCategory::PeriodUnderwear,
    ),
    ("Other", "other", ReportingCategory::Other),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u128) -> ItemId {
        ItemId(Uuid::from_u128(n))
    }

    fn location(n: u128) -> StorageLocationId {
        StorageLocationId(Uuid::from_u128(n))
    }

    #[test]
    fn lines_of_the_same_item_are_combined_in_item_order() {
        let lines = [
            Line {
                item_id: item(2),
                quantity: 5,
            },
            Line {
                item_id: item(1),
                quantity: 3,
            },
            Line {
                item_id: item(2),
                quantity: 7,
            },
        ];
        let combined = combine_lines(&lines, QuantityRule::Positive).expect("valid");
        assert_eq!(
            combined,
            vec![
                Line {
                    item_id: item(1),
                    quantity: 3
                },
                Line {
                    item_id: item(2),
                    quantity: 12
                }
            ]
        );
    }

    #[test]
    fn non_positive_quantities_are_refused_with_their_index() {
        let lines = [
            Line {
                item_id: item(1),
                quantity: 0,
            },
            Line {
                item_id: item(2),
                quantity: -4,
            },
        ];
        let violations = combine_lines(&lines, QuantityRule::Positive).expect_err("invalid");
        let indexes: Vec<_> = violations.iter().map(|v| v.index).collect();
        assert_eq!(indexes, vec![Some(0), Some(1)]);
        assert!(combine_lines(&[], QuantityRule::Positive).is_err());
    }

    #[test]
    fn adjustments_may_be_negative_but_not_zero_after_combining() {
        let ok = [Line {
            item_id: item(1),
            quantity: -4,
        }];
        assert!(combine_lines(&ok, QuantityRule::NonZero).is_ok());
        let zero = [
            Line {
                item_id: item(1),
                quantity: -4,
            },
            Line {
                item_id: item(1),
                quantity: 4,
            },
        ];
        assert!(combine_lines(&zero, QuantityRule::NonZero).is_err());
    }

    #[test]
    fn audits_take_one_line_per_item() {
        let twice = [
            Line {
                item_id: item(1),
                quantity: 4,
            },
            Line {
                item_id: item(1),
                quantity: 0,
            },
        ];
        assert!(combine_lines(&twice, QuantityRule::NonNegative).is_err());
    }

    #[test]
    fn changes_are_merged_and_ordered_by_item_then_location() {
        let planned = plan_changes([
            StockChange {
                storage_location_id: location(2),
                item_id: item(9),
                quantity_change: -1,
            },
            StockChange {
                storage_location_id: location(1),
                item_id: item(9),
                quantity_change: 4,
            },
            StockChange {
                storage_location_id: location(1),
                item_id: item(3),
                quantity_change: 2,
            },
            StockChange {
                storage_location_id: location(1),
                item_id: item(3),
                quantity_change: -2,
            },
        ]);
        assert_eq!(
            planned,
            vec![
                StockChange {
                    storage_location_id: location(1),
                    item_id: item(9),
                    quantity_change: 4
                },
                StockChange {
                    storage_location_id: location(2),
                    item_id: item(9),
                    quantity_change: -1
                },
            ]
        );
    }

    #[test]
    fn shortage_reads_like_the_reference() {
        let shortage = Shortage {
            item_id: item(1),
            item_name: "Diapers Size 4".into(),
            storage_location_id: location(1),
            storage_location_name: "Main Warehouse".into(),
            wanted: 100,
            available: 50,
        };
        assert_eq!(
            shortage.to_string(),
            "Could not reduce quantity by 100 - current quantity is 50 for Diapers Size 4 in Main Warehouse"
        );
    }

    #[test]
    fn editing_a_distribution_changes_stock_by_the_difference() {
        let old = [
            Line {
                item_id: item(1),
                quantity: 10,
            },
            Line {
                item_id: item(2),
                quantity: 5,
            },
        ];
        let new = [
            Line {
                item_id: item(1),
                quantity: 4,
            },
            Line {
                item_id: item(3),
                quantity: 2,
            },
        ];
        let same_place = distribution_edit_changes(location(1), &old, location(1), &new);
        assert_eq!(
            same_place,
            vec![
                StockChange {
                    storage_location_id: location(1),
                    item_id: item(1),
                    quantity_change: 6
                },
                StockChange {
                    storage_location_id: location(1),
                    item_id: item(2),
                    quantity_change: 5
                },
                StockChange {
                    storage_location_id: location(1),
                    item_id: item(3),
                    quantity_change: -2
                },
            ]
        );
        let moved = distribution_edit_changes(location(1), &old, location(2), &old);
        assert_eq!(moved.len(), 4);
    }

    fn lines(pairs: &[(u128, i32)]) -> Vec<Line> {
        pairs
            .iter()
            .map(|(n, quantity)| Line {
                item_id: item(*n),
                quantity: *quantity,
            })
            .collect()
    }

    #[test]
    fn line_changes_name_what_was_added_removed_and_updated() {
        let old = lines(&[(1, 10), (2, 5), (3, 7)]);
        let new = lines(&[(1, 4), (3, 7), (4, 2)]);
        assert_eq!(
            line_changes(&old, &new),
            vec![
                LineChange {
                    item_id: item(1),
                    kind: LineChangeKind::Updated,
                    old_quantity: 10,
                    new_quantity: 4,
                },
                LineChange {
                    item_id: item(2),
                    kind: LineChangeKind::Removed,
                    old_quantity: 5,
                    new_quantity: 0,
                },
                LineChange {
                    item_id: item(4),
                    kind: LineChangeKind::Added,
                    old_quantity: 0,
                    new_quantity: 2,
                },
            ]
        );
        assert!(line_changes(&old, &old).is_empty());
    }

    #[test]
    fn an_edit_that_changes_nothing_the_partner_sees_tells_no_one() {
        let same = lines(&[(1, 10), (2, 5)]);
        assert!(!partner_should_be_notified(
            false,
            false,
            &line_changes(&same, &same)
        ));
    }

    #[test]
    fn a_new_date_or_delivery_method_alone_tells_the_partner() {
        let same = lines(&[(1, 10)]);
        let unchanged = line_changes(&same, &same);
        assert!(partner_should_be_notified(true, false, &unchanged));
        assert!(partner_should_be_notified(false, true, &unchanged));
    }

    #[test]
    fn a_changed_quantity_tells_the_partner() {
        let changes = line_changes(&lines(&[(1, 10), (2, 5)]), &lines(&[(1, 12), (2, 5)]));
        assert!(partner_should_be_notified(false, false, &changes));
    }

    #[test]
    fn a_removed_line_tells_the_partner() {
        let changes = line_changes(&lines(&[(1, 10), (2, 5)]), &lines(&[(1, 10)]));
        assert!(partner_should_be_notified(false, false, &changes));
    }

    /// Our decision on DOMAIN.md §13 item 9 (the reference stays silent here).
    #[test]
    fn an_added_line_alone_tells_the_partner() {
        let changes = line_changes(&lines(&[(1, 10)]), &lines(&[(1, 10), (2, 5)]));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, LineChangeKind::Added);
        assert!(partner_should_be_notified(false, false, &changes));
    }

    #[test]
    fn issued_at_must_be_sane() {
        let now = OffsetDateTime::now_utc();
        assert!(issued_at_violation(now, now).is_none());
        assert!(issued_at_violation(time::macros::datetime!(1999-12-31 0:00 UTC), now).is_some());
        assert!(issued_at_violation(now + time::Duration::days(400), now).is_some());
    }

    #[test]
    fn low_stock_prefers_the_minimum() {
        let mut it = Item {
            id: item(1),
            name: "Wipes".into(),
            item_category_id: None,
            reporting_category: ReportingCategory::Other,
            partner_key: String::new(),
            value_in_cents: 0,
            package_size: None,
            distribution_quantity: 50,
            on_hand_minimum_quantity: 10,
            on_hand_recommended_quantity: Some(20),
            visible_to_partners: true,
            active: true,
            additional_info: String::new(),
            created_at: OffsetDateTime::now_utc(),
            updated_at: OffsetDateTime::now_utc(),
        };
        assert!(low_stock(&it, 5).is_some_and(|low| low.below_minimum));
        assert!(low_stock(&it, 15).is_some_and(|low| !low.below_minimum));
        assert!(low_stock(&it, 20).is_none());
        it.on_hand_recommended_quantity = None;
        assert!(low_stock(&it, 10).is_none());
    }
}
