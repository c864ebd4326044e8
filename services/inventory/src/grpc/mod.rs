//! The gRPC surface: decode each request, validate every field at once (collecting field
//! violations), call the use case, encode the answer. No SQL here.

mod catalog;
pub mod convert;
mod distributions;
mod inventory;

use std::sync::Arc;

use essentials_runtime::auth::principal;
use essentials_runtime::{FieldViolation, ServiceError};
use tonic::{Request, Status};

use crate::service::{Inventory, Staff};

/// One handle to the use cases, serving all four gRPC services.
#[derive(Clone)]
pub struct InventoryApi {
    inventory: Arc<Inventory>,
}

impl InventoryApi {
    pub fn new(inventory: Inventory) -> Self {
        Self {
            inventory: Arc::new(inventory),
        }
    }
}

/// The calling bank staff member.
fn staff<T>(request: &Request<T>) -> Result<Staff, Status> {
    let caller = principal(request)?;
    Ok(Staff::from_principal(&caller)?)
}

/// INVALID_ARGUMENT with every violation, or Ok.
fn check(problems: Vec<FieldViolation>) -> Result<(), Status> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::invalid(problems).into())
    }
}

/// The idempotency key of a creating call (empty: none).
fn idempotency_key(request_id: &str) -> Option<&str> {
    let trimmed = request_id.trim();
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed)
    }
}

/// The paths of an update mask, checked against the writable ones; empty means all.
fn mask_paths(
    mask: Option<&prost_types::FieldMask>,
    writable: &[&str],
    problems: &mut Vec<FieldViolation>,
) -> Vec<String> {
    let paths: Vec<String> = mask.map(|mask| mask.paths.clone()).unwrap_or_default();
    for path in &paths {
        if !writable.contains(&path.as_str()) {
            problems.push(FieldViolation::new(
                "update_mask",
                format!(
                    "{path} is not a writable field; use one of {}",
                    writable.join(", ")
                ),
            ));
        }
    }
    if paths.is_empty() {
        writable.iter().map(|path| (*path).to_owned()).collect()
    } else {
        paths
    }
}
