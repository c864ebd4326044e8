//! gRPC: decode and validate requests, call the use cases, encode answers. No SQL here.

use essentials_proto::common::v1 as common;
use essentials_proto::request::v1 as pb;
use essentials_proto::request::v1::request_service_server::RequestService;
use essentials_runtime::auth::principal;
use essentials_runtime::{FieldViolation, ServiceError};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{RequestStatus, RequestType, SubmittedLine};
use crate::repo::ListFilter;
use crate::service::{App, DistributionDraft, NewRequest, RequestView};

type Answer<T> = Result<Response<T>, Status>;

const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 500;
/// Longest comment and cancel reason we keep.
const MAX_TEXT: usize = 10_000;
/// Most lines one request may have (a bank's catalogue is far smaller).
const MAX_LINES: usize = 1_000;

#[derive(Clone)]
pub struct Grpc {
    pub app: App,
}

fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: i32::try_from(time.nanosecond()).unwrap_or(0),
    }
}

fn from_timestamp(
    field: &str,
    value: Option<&prost_types::Timestamp>,
    problems: &mut Vec<FieldViolation>,
) -> Option<OffsetDateTime> {
    let value = value?;
    let nanos = i128::from(value.seconds) * 1_000_000_000 + i128::from(value.nanos);
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(time) => Some(time),
        Err(_) => {
            problems.push(FieldViolation::new(field, "is out of range"));
            None
        }
    }
}

/// A required id field.
fn id(field: &str, text: &str) -> Result<Uuid, ServiceError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ServiceError::invalid(vec![FieldViolation::new(
            field,
            "is required",
        )]));
    }
    Uuid::parse_str(text)
        .map_err(|_| ServiceError::invalid(vec![FieldViolation::new(field, "must be a UUID")]))
}

/// An optional id field (empty means none).
fn optional_id(field: &str, text: &str, problems: &mut Vec<FieldViolation>) -> Option<Uuid> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match Uuid::parse_str(text) {
        Ok(id) => Some(id),
        Err(_) => {
            problems.push(FieldViolation::new(field, "must be a UUID"));
            None
        }
    }
}

fn page_size(requested: i32) -> i64 {
    match i64::from(requested) {
        size if size <= 0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    }
}

/// Page tokens are opaque to clients: the hex of "<created_at in µs>\0<id>" of the last row.
fn encode_page_token(created_at: OffsetDateTime, id: Uuid) -> String {
    let micros = created_at.unix_timestamp_nanos() / 1_000;
    hex::encode(format!("{micros}\0{id}"))
}

fn decode_page_token(token: &str) -> Result<Option<(OffsetDateTime, Uuid)>, ServiceError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        ServiceError::invalid(vec![FieldViolation::new(
            "page_token",
            "is not a token this API gave",
        )])
    };
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (micros, id) = text.split_once('\0').ok_or_else(invalid)?;
    let micros: i128 = micros.parse().map_err(|_| invalid())?;
    let created_at =
        OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| invalid())?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok(Some((created_at, id)))
}

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

fn draft_to_proto(draft: &DistributionDraft) -> pb::DistributionDraft {
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
fn new_request(message: pb::CreateRequestRequest) -> Result<NewRequest, ServiceError> {
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

fn list_filter(message: &pb::ListRequestsRequest) -> Result<ListFilter, ServiceError> {
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
        created_after: from_timestamp(
            "created_after",
            message.created_after.as_ref(),
            &mut problems,
        ),
        created_before: from_timestamp(
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

#[tonic::async_trait]
impl RequestService for Grpc {
    async fn create_request(
        &self,
        request: Request<pb::CreateRequestRequest>,
    ) -> Answer<pb::CreateRequestResponse> {
        let caller = principal(&request)?;
        let input = new_request(request.into_inner())?;
        let view = self.app.create_request(&caller, input).await?;
        Ok(Response::new(pb::CreateRequestResponse {
            request: Some(request_to_proto(&view)),
        }))
    }

    async fn get_request(
        &self,
        request: Request<pb::GetRequestRequest>,
    ) -> Answer<pb::GetRequestResponse> {
        let caller = principal(&request)?;
        let request_id = id("request_id", &request.get_ref().request_id)?;
        let view = self.app.get_request(&caller, request_id).await?;
        Ok(Response::new(pb::GetRequestResponse {
            request: Some(request_to_proto(&view)),
        }))
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Answer<pb::ListRequestsResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let filter = list_filter(&message)?;
        let after = decode_page_token(&message.page_token)?;
        let limit = page_size(message.page_size);
        let mut views = self
            .app
            .list_requests(&caller, filter, after, limit + 1)
            .await?;
        let next_page_token = if views.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            views.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            views
                .last()
                .map(|view| encode_page_token(view.row.created_at, view.row.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListRequestsResponse {
            requests: views.iter().map(request_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn fulfill_request(
        &self,
        request: Request<pb::FulfillRequestRequest>,
    ) -> Answer<pb::FulfillRequestResponse> {
        let caller = principal(&request)?;
        let request_id = id("request_id", &request.get_ref().request_id)?;
        let (view, draft) = self.app.fulfill_request(&caller, request_id).await?;
        Ok(Response::new(pb::FulfillRequestResponse {
            request: Some(request_to_proto(&view)),
            distribution_draft: Some(draft_to_proto(&draft)),
        }))
    }

    async fn cancel_request(
        &self,
        request: Request<pb::CancelRequestRequest>,
    ) -> Answer<pb::CancelRequestResponse> {
        let caller = principal(&request)?;
        let message = request.get_ref();
        let request_id = id("request_id", &message.request_id)?;
        let reason = message.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_TEXT {
            return Err(ServiceError::invalid(vec![FieldViolation::new(
                "reason",
                format!("is required (at most {MAX_TEXT} characters): it is sent to the partner"),
            )])
            .into());
        }
        let view = self.app.cancel_request(&caller, request_id, reason).await?;
        Ok(Response::new(pb::CancelRequestResponse {
            request: Some(request_to_proto(&view)),
        }))
    }

    async fn list_requestable_items(
        &self,
        request: Request<pb::ListRequestableItemsRequest>,
    ) -> Answer<pb::ListRequestableItemsResponse> {
        let caller = principal(&request)?;
        let mut problems = Vec::new();
        let partner_id = optional_id("partner_id", &request.get_ref().partner_id, &mut problems);
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems).into());
        }
        let requestable = self.app.requestable(&caller, partner_id).await?;
        Ok(Response::new(pb::ListRequestableItemsResponse {
            items: requestable
                .items
                .into_iter()
                .map(|item| pb::RequestableItem {
                    item_id: item.id,
                    name: item.name,
                    item_category_id: item.item_category_id,
                    distribution_quantity: item
                        .distribution_quantity
                        .filter(|quantity| *quantity > 0)
                        .unwrap_or(crate::domain::DEFAULT_DISTRIBUTION_QUANTITY),
                    additional_info: item.additional_info,
                })
                .collect(),
            enabled_request_types: requestable
                .enabled_request_types
                .into_iter()
                .map(|kind| kind.to_proto() as i32)
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let created_at = time::macros::datetime!(2026-11-22 10:30:15.123456 UTC);
        let id = Uuid::now_v7();
        let token = encode_page_token(created_at, id);
        assert_eq!(
            decode_page_token(&token).expect("valid"),
            Some((created_at, id))
        );
        assert_eq!(decode_page_token("").expect("none"), None);
        let refused = decode_page_token("zz").expect_err("garbage");
        assert_eq!(refused.field_violations[0].field, "page_token");
    }

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
