//! The inventory part's refusals: each names its code and machine-readable reason once; the
//! sentence is what a person reads, the metadata what a program reads. `part_error!` maps them to
//! the shared code table.

use essentials_runtime::{Code, PartError};
use uuid::Uuid;

use super::{Shortage, shortage_message};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// `what` is the record's kind with its article ("An item", "A storage location").
    #[error("{what} with that name already exists in this bank (names are case-insensitive)")]
    NameTaken { what: &'static str },
    /// One sentence per short line; the metadata names each.
    #[error("{}", shortage_message(shortages))]
    InsufficientStock { shortages: Vec<Shortage> },
    #[error(
        "Cannot deactivate {name} - it is in stock at a storage location. Distribute, transfer or adjust it out first."
    )]
    ItemInStock { name: String, item_id: Uuid },
    #[error(
        "{name} has been used in stock documents and cannot be deleted; deactivate it instead."
    )]
    ItemInUse { name: String },
    /// The sentence depends on the document (a donation of, a distribution of…).
    #[error("{message}")]
    ItemsInactive { message: String },
    #[error(
        "Cannot deactivate {name} - it still holds {total} units. Transfer or adjust them out first."
    )]
    LocationNotEmpty { name: String, total: i64 },
    #[error("{message}")]
    LocationInactive { message: String },
    #[error("{name} is deactivated; reactivate the partner before distributing to it.")]
    PartnerDeactivated { name: String },
    /// The request part says so, or another distribution of this bank already names it.
    #[error("{}", fulfilled_message(*by))]
    RequestAlreadyFulfilled { by: Fulfilled },
    #[error("That request was cancelled and cannot be fulfilled.")]
    RequestCancelled,
    #[error("This distribution is already complete.")]
    DistributionAlreadyComplete,
    #[error(
        "A finalized audit has counted these items at one of the transfer's locations since the transfer; adjust the stock instead."
    )]
    AuditedSince,
    /// `problems` lists what keeps the audit from being finalized.
    #[error("{problems}")]
    AuditNotFinalizable { problems: String },
    #[error("This audit is finalized and can no longer be changed or deleted.")]
    AuditFinalized,
}

/// Who fulfilled a request already, as far as we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fulfilled {
    /// The request part's status says fulfilled.
    Request,
    /// A distribution of ours holds the request; which one, when it could be read.
    Distribution(Option<Uuid>),
}

fn fulfilled_message(by: Fulfilled) -> String {
    match by {
        Fulfilled::Request => "That request has already been fulfilled.".to_owned(),
        Fulfilled::Distribution(None) => {
            "That request has already been fulfilled by another distribution.".to_owned()
        }
        Fulfilled::Distribution(Some(id)) => {
            format!("Request has already been fulfilled by Distribution {id}")
        }
    }
}

impl PartError for InventoryError {
    fn code(&self) -> Code {
        match self {
            InventoryError::NameTaken { .. } => Code::AlreadyExists,
            _ => Code::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        use InventoryError::*;
        match self {
            NameTaken { .. } => "NAME_TAKEN",
            InsufficientStock { .. } => "INSUFFICIENT_STOCK",
            ItemInStock { .. } => "ITEM_IN_STOCK",
            ItemInUse { .. } => "ITEM_IN_USE",
            ItemsInactive { .. } => "ITEMS_INACTIVE",
            LocationNotEmpty { .. } => "STORAGE_LOCATION_NOT_EMPTY",
            LocationInactive { .. } => "STORAGE_LOCATION_INACTIVE",
            PartnerDeactivated { .. } => "PARTNER_DEACTIVATED",
            RequestAlreadyFulfilled { .. } => "REQUEST_ALREADY_FULFILLED",
            RequestCancelled => "REQUEST_NOT_FULFILLABLE",
            DistributionAlreadyComplete => "DISTRIBUTION_ALREADY_COMPLETE",
            AuditedSince => "AUDITED_SINCE",
            AuditNotFinalizable { .. } => "AUDIT_NOT_FINALIZABLE",
            AuditFinalized => "AUDIT_FINALIZED",
        }
    }

    /// INSUFFICIENT_STOCK names each short line (`shortages.<n>.item_id` …) and the first one
    /// without an index too, for clients that show one.
    fn metadata(&self) -> Vec<(String, String)> {
        match self {
            InventoryError::InsufficientStock { shortages } => {
                let mut facts = vec![("shortage_count".to_owned(), shortages.len().to_string())];
                for (index, shortage) in shortages.iter().enumerate() {
                    let line = [
                        ("item_id", shortage.item_id.to_string()),
                        ("item_name", shortage.item_name.clone()),
                        (
                            "storage_location_id",
                            shortage.storage_location_id.to_string(),
                        ),
                        (
                            "storage_location_name",
                            shortage.storage_location_name.clone(),
                        ),
                        ("wanted", shortage.wanted.to_string()),
                        ("available", shortage.available.to_string()),
                    ];
                    for (key, value) in line {
                        if index == 0 {
                            facts.push((key.to_owned(), value.clone()));
                        }
                        facts.push((format!("shortages.{index}.{key}"), value));
                    }
                }
                facts
            }
            InventoryError::ItemInStock { item_id, .. } => {
                vec![("item_id".to_owned(), item_id.to_string())]
            }
            InventoryError::RequestAlreadyFulfilled {
                by: Fulfilled::Distribution(Some(id)),
            } => vec![("distribution_id".to_owned(), id.to_string())],
            _ => Vec::new(),
        }
    }
}

essentials_runtime::part_error!(InventoryError);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ItemId, StorageLocationId};
    use essentials_runtime::ServiceError;

    #[test]
    fn a_shortage_names_every_short_line_and_the_first_alone() {
        let short = |name: &str, wanted, available| Shortage {
            item_id: ItemId::new(),
            item_name: name.to_owned(),
            storage_location_id: StorageLocationId::new(),
            storage_location_name: "Main".to_owned(),
            wanted,
            available,
        };
        let shortages = vec![short("Diapers", 5, 2), short("Wipes", 3, 0)];
        let error = ServiceError::from(InventoryError::InsufficientStock {
            shortages: shortages.clone(),
        });
        assert_eq!(error.code, Code::FailedPrecondition);
        assert_eq!(error.reason.as_deref(), Some("INSUFFICIENT_STOCK"));
        assert_eq!(error.message, shortage_message(&shortages));
        assert_eq!(error.metadata["shortage_count"], "2");
        assert_eq!(error.metadata["item_name"], "Diapers");
        assert_eq!(error.metadata["shortages.1.item_name"], "Wipes");
        assert_eq!(error.metadata["shortages.1.available"], "0");
    }

    #[test]
    fn a_request_fulfilled_elsewhere_names_the_distribution() {
        let id = Uuid::now_v7();
        let error = ServiceError::from(InventoryError::RequestAlreadyFulfilled {
            by: Fulfilled::Distribution(Some(id)),
        });
        assert_eq!(error.reason.as_deref(), Some("REQUEST_ALREADY_FULFILLED"));
        assert_eq!(error.metadata["distribution_id"], id.to_string());
        assert!(error.message.ends_with(&id.to_string()));
        let taken = ServiceError::from(InventoryError::NameTaken { what: "An item" });
        assert_eq!(taken.code, Code::AlreadyExists);
    }
}
