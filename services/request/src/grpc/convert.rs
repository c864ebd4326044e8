//! Messages ↔ the service's types: every field of a message decoded and checked at once, every
//! answer encoded. Timestamps, ids and page tokens come from `runtime::convert`.

use essentials_proto::common::v1 as common;
use essentials_proto::request::v1 as pb;
use essentials_runtime::convert::{optional_id, optional_timestamp, timestamp};
use essentials_runtime::{FieldViolation, ServiceError};

use crate::domain::{RequestStatus, RequestType, SubmittedLine};
use crate::repo::ListFilter;
use crate::service::{DistributionDraft, NewRequest, RequestView};

/// Longest comment and cancel reason we keep.
pub const MAX_TEXT: usize = 10_000;
/// Most lines one request may have (a bank's catalogue is far smaller).
const MAX_LINES: usize = 1_000;

pub fn request_to_proto(view: &RequestView) -> pb::Request {
    let row = &view.row;
    let status = RequestStatus::parse(&row.status)
        .map(|status| status.to_proto())
        .unwrap_or(pb::RequestStatus::Unspecified);
    let request_type = RequestType::parse(&row.request_type)
        .map(|kind| kind.to_proto())
        .unwrap_or(common::RequestType::Unspecified);
    pb::Request {
        id: if row.id.is_nil() {
            String::new()
        } else {
            row.id.to_string()
        },
        partner_id: row.partner_id.to_string(),
        status: status as i32,
        request_type: request_type as i32,
        items: view
            .items
            .iter()
            .map(|item| pb::RequestItem {
                item_id: item.item_id.to_string(),
                quantity: item.quantity,
                item_name: item.item_name.clone(),
                persons: item.persons,
            })
            .collect(),
        comments: row.comments.clone(),
        requester_user_id: row.requester_user_id.to_string(),
        requester_name: row.requester_name.clone(),
        requester_email: row.requester_email.clone(),
        distribution_id: row
            .distribution_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        total_items: row.total_items,
        quota: row.quota,
        quota_exceeded: crate::domain::quota_exceeded(row.total_items, row.quota),
        cancel_reason: row.cancel_reason.clone(),
        cancelled_at: row.cancelled_at.map(timestamp),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        on_behalf_of_partner: row.on_behalf_of_partner,
    }
}

pub fn draft_to_proto(draft: &DistributionDraft) -> pb::DistributionDraft {
    pb::DistributionDraft {
        partner_id: draft.partner_id.to_string(),
        request_id: draft.request_id.to_string(),
        storage_location_id: draft
            .storage_location_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        issued_at: Some(timestamp(draft.issued_at)),
        delivery_method: common::DeliveryMethod::PickUp as i32,
        comment: draft.comment.clone(),
        agency_rep: draft.agency_rep.clone(),
        line_items: draft
            .line_items
            .iter()
            .map(|(item_id, quantity)| common::LineItem {
                item_id: item_id.to_string(),
                quantity: *quantity,
            })
            .collect(),
    }
}

/// Decodes and checks every field of a new request at once.
pub fn new_request(message: pb::CreateRequestRequest) -> Result<NewRequest, ServiceError> {
    let mut problems = Vec::new();
    let partner_id = optional_id("partner_id", &message.partner_id, &mut problems);
    let request_type = match common::RequestType::try_from(message.request_type) {
        Ok(common::RequestType::Unspecified) => Some(RequestType::Quantity),
        Ok(kind) => RequestType::from_proto(kind),
        Err(_) => None,
    };
    if request_type.is_none() {
        problems.push(FieldViolation::new(
            "request_type",
            "must be quantity or individual",
        ));
    }
    if message.items.len() > MAX_LINES {
        problems.push(FieldViolation::new(
            "items",
            format!("must hold at most {MAX_LINES} lines"),
        ));
    }
    let mut lines = Vec::with_capacity(message.items.len());
    for (index, item) in message.items.iter().enumerate() {
        lines.push(SubmittedLine {
            index,
            item_id: optional_id(
                &format!("items[{index}].item_id"),
                &item.item_id,
                &mut problems,
            ),
            quantity: item.quantity,
            persons: item.persons,
        });
    }
    if message.comments.chars().count() > MAX_TEXT {
        problems.push(FieldViolation::new(
            "comments",
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    let key = message.request_id.trim();
    if key.len() > 200 {
        problems.push(FieldViolation::new(
            "request_id",
            "must be at most 200 characters",
        ));
    }
    if !problems.is_empty() {
        return Err(ServiceError::invalid(problems));
    }
    Ok(NewRequest {
        partner_id,
        request_type: request_type.unwrap_or(RequestType::Quantity),
        lines,
        comments: message.comments,
        idempotency_key: (!key.is_empty()).then(|| key.to_owned()),
        validate_only: message.validate_only,
    })
}

pub fn list_filter(message: &pb::ListRequestsRequest) -> Result<ListFilter, ServiceError> {
    let mut problems = Vec::new();
    let mut statuses = Vec::new();
    for (index, status) in message.statuses.iter().enumerate() {
        match pb::RequestStatus::try_from(*status)
            .ok()
            .and_then(RequestStatus::from_proto)
        {
            Some(status) => statuses.push(status.as_str().to_owned()),
            None => problems.push(FieldViolation::new(
                format!("statuses[{index}]"),
                "must be pending, started, fulfilled or cancelled",
            )),
        }
    }
    let request_type = match common::RequestType::try_from(message.request_type) {
        Ok(common::RequestType::Unspecified) => None,
        Ok(kind) => RequestType::from_proto(kind).map(|kind| kind.as_str().to_owned()),
        Err(_) => {
            problems.push(FieldViolation::new(
                "request_type",
                "must be quantity, individual or child",
            ));
            None
        }
    };
    let filter = ListFilter {
        statuses,
        partner_id: optional_id("partner_id", &message.partner_id, &mut problems),
        request_type,
        created_after: optional_timestamp(
            "created_after",
            message.created_after.as_ref(),
            &mut problems,
        ),
        created_before: optional_timestamp(
            "created_before",
            message.created_before.as_ref(),
            &mut problems,
        ),
        item_id: optional_id("item_id", &message.item_id, &mut problems),
    };
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(ServiceError::invalid(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_request_names_every_bad_field() {
        let refused = new_request(pb::CreateRequestRequest {
            partner_id: "nope".into(),
            request_type: 99,
            items: vec![pb::RequestedItem {
                item_id: "bad".into(),
                quantity: 1,
                persons: 0,
            }],
            ..Default::default()
        })
        .expect_err("invalid");
        let fields: Vec<&str> = refused
            .field_violations
            .iter()
            .map(|violation| violation.field.as_str())
            .collect();
        assert_eq!(fields, ["partner_id", "request_type", "items[0].item_id"]);
        let accepted = new_request(pb::CreateRequestRequest {
            comments: "only a comment".into(),
            request_id: " key-1 ".into(),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(accepted.request_type, RequestType::Quantity);
        assert_eq!(accepted.idempotency_key.as_deref(), Some("key-1"));
    }
}
