//! Requests: statuses and their transitions, request types, and the rules a new request must
//! pass (DOMAIN.md §5). No I/O: everything here is checked by unit tests.

use std::collections::HashMap;

use essentials_proto::common::v1 as common;
use essentials_proto::partner::v1::PartnerStatus;
use essentials_proto::request::v1 as pb;
use essentials_runtime::{FieldViolation, ServiceError};
use time::OffsetDateTime;
use uuid::Uuid;

mod error;

pub use error::RequestError;

/// The quantity per person of an item without its own (the reference's default).
pub const DEFAULT_DISTRIBUTION_QUANTITY: i32 = 50;

/// A request's status (DOMAIN.md §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Pending,
    Started,
    Fulfilled,
    Cancelled,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 4] = [
        RequestStatus::Pending,
        RequestStatus::Started,
        RequestStatus::Fulfilled,
        RequestStatus::Cancelled,
    ];

    /// The statuses from which the bank may still fulfil or cancel.
    pub const OPEN: [RequestStatus; 2] = [RequestStatus::Pending, RequestStatus::Started];

    /// The name stored in the database and used in the JSON API.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Started => "started",
            RequestStatus::Fulfilled => "fulfilled",
            RequestStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn to_proto(self) -> pb::RequestStatus {
        match self {
            RequestStatus::Pending => pb::RequestStatus::Pending,
            RequestStatus::Started => pb::RequestStatus::Started,
            RequestStatus::Fulfilled => pb::RequestStatus::Fulfilled,
            RequestStatus::Cancelled => pb::RequestStatus::Cancelled,
        }
    }

    pub fn from_proto(status: pb::RequestStatus) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|candidate| candidate.to_proto() == status)
    }

    /// Fulfilled and cancelled requests never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, RequestStatus::Fulfilled | RequestStatus::Cancelled)
    }

    /// The bank starts fulfilling: pending or started → started (starting again is harmless: the
    /// bank may reopen the draft).
    pub fn start(self) -> Result<RequestStatus, RequestError> {
        match self {
            RequestStatus::Pending | RequestStatus::Started => Ok(RequestStatus::Started),
            status => Err(RequestError::NotFulfillable { status }),
        }
    }

    /// The partner withdraws its own request: only while pending, since once the bank has
    /// started on it the goods may be on a cart already.
    pub fn withdraw(self) -> Result<RequestStatus, RequestError> {
        match self {
            RequestStatus::Pending => Ok(RequestStatus::Cancelled),
            RequestStatus::Started => Err(RequestError::StartedNotWithdrawable),
            terminal => terminal.cancel(),
        }
    }

    /// The bank cancels: pending or started → cancelled.
    pub fn cancel(self) -> Result<RequestStatus, RequestError> {
        match self {
            RequestStatus::Pending | RequestStatus::Started => Ok(RequestStatus::Cancelled),
            status => Err(RequestError::NotCancellable { status }),
        }
    }
}

/// The kind of a request (DOMAIN.md §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    Quantity,
    Individual,
    Child,
}

impl RequestType {
    pub const ALL: [RequestType; 3] = [
        RequestType::Quantity,
        RequestType::Individual,
        RequestType::Child,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Quantity => "quantity",
            RequestType::Individual => "individual",
            RequestType::Child => "child",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn to_proto(self) -> common::RequestType {
        match self {
            RequestType::Quantity => common::RequestType::Quantity,
            RequestType::Individual => common::RequestType::Individual,
            RequestType::Child => common::RequestType::Child,
        }
    }

    pub fn from_proto(kind: common::RequestType) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|candidate| candidate.to_proto() == kind)
    }
}

/// A line as the client sent it (`index` is its position, for error paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedLine {
    pub index: usize,
    pub item_id: Option<Uuid>,
    pub quantity: i32,
    pub persons: i32,
}

/// The lines of one item, summed; `first_index` names it in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedLine {
    pub first_index: usize,
    pub item_id: Uuid,
    pub quantity: i32,
    pub persons: i32,
}

/// What the catalogue says about an item this partner may request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestableItem {
    pub id: Uuid,
    pub name: String,
    /// `None`: the catalogue's default.
    pub distribution_quantity: Option<i32>,
}

/// A line of a request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    pub item_id: Uuid,
    pub item_name: String,
    pub quantity: i32,
    pub persons: i32,
}

/// Ignores rows with neither item nor amount, checks the amounts, and merges the rows of one item
/// by summing them (first appearance keeps its place). Every problem is reported at once.
pub fn merge_lines(
    request_type: RequestType,
    lines: &[SubmittedLine],
) -> Result<Vec<MergedLine>, Vec<FieldViolation>> {
    let mut problems = Vec::new();
    let mut merged: Vec<MergedLine> = Vec::new();
    for line in lines {
        if line.item_id.is_none() && line.quantity == 0 && line.persons == 0 {
            continue;
        }
        let Some(item_id) = line.item_id else {
            problems.push(FieldViolation::new(
                format!("items[{}].item_id", line.index),
                "is required",
            ));
            continue;
        };
        match request_type {
            RequestType::Individual => {
                if line.persons < 1 {
                    problems.push(FieldViolation::new(
                        format!("items[{}].persons", line.index),
                        "must be at least 1",
                    ));
                    continue;
                }
            }
            RequestType::Quantity | RequestType::Child => {
                if line.quantity < 1 {
                    problems.push(FieldViolation::new(
                        format!("items[{}].quantity", line.index),
                        "must be at least 1",
                    ));
                    continue;
                }
            }
        }
        let (quantity, persons) = match request_type {
            RequestType::Individual => (0, line.persons),
            RequestType::Quantity | RequestType::Child => (line.quantity, 0),
        };
        match merged.iter_mut().find(|seen| seen.item_id == item_id) {
            Some(seen) => {
                let (Some(total_quantity), Some(total_persons)) = (
                    seen.quantity.checked_add(quantity),
                    seen.persons.checked_add(persons),
                ) else {
                    problems.push(FieldViolation::new(
                        format!("items[{}]", line.index),
                        "the lines of this item add up to more than a request can hold",
                    ));
                    continue;
                };
                seen.quantity = total_quantity;
                seen.persons = total_persons;
            }
            None => merged.push(MergedLine {
                first_index: line.index,
                item_id,
                quantity,
                persons,
            }),
        }
    }
    if problems.is_empty() {
        Ok(merged)
    } else {
        Err(problems)
    }
}

/// A request needs at least one item or a comment (a comment-only request is valid).
pub fn check_not_empty(lines: &[MergedLine], comments: &str) -> Result<(), FieldViolation> {
    if lines.is_empty() && comments.trim().is_empty() {
        Err(FieldViolation::new(
            "items",
            "a completely empty request: add at least one item or a comment",
        ))
    } else {
        Ok(())
    }
}

/// Only approved partners request (our decision 1, for every request type); a deactivated partner
/// is told so apart from one still on its way to approval.
pub fn check_partner_may_request(
    status: PartnerStatus,
    partner_name: &str,
) -> Result<(), RequestError> {
    let name = partner_name.to_owned();
    match status {
        PartnerStatus::Approved => Ok(()),
        PartnerStatus::Deactivated => Err(RequestError::PartnerDeactivated { name }),
        _ => Err(RequestError::PartnerNotApproved { name }),
    }
}

/// The kind of request must be enabled by the bank and the partner's profile (our decision 1);
/// child requests need family records, which come later (decision 8).
pub fn check_request_type(
    request_type: RequestType,
    enabled: &[RequestType],
) -> Result<(), ServiceError> {
    if request_type == RequestType::Child {
        return Err(ServiceError::invalid(vec![FieldViolation::new(
            "request_type",
            "child-based requests need family records and are not available yet",
        )]));
    }
    if enabled.contains(&request_type) {
        Ok(())
    } else {
        Err(RequestError::TypeNotEnabled { kind: request_type }.into())
    }
}

/// Every line must name an item this partner may request now; the item's name is kept as a
/// snapshot, and an individual line's quantity is persons × the item's distribution quantity.
pub fn resolve_lines(
    request_type: RequestType,
    lines: &[MergedLine],
    requestable: &HashMap<Uuid, RequestableItem>,
) -> Result<Vec<RequestLine>, Vec<FieldViolation>> {
    let mut problems = Vec::new();
    let mut resolved = Vec::with_capacity(lines.len());
    for line in lines {
        let Some(item) = requestable.get(&line.item_id) else {
            problems.push(FieldViolation::new(
                format!("items[{}].item_id", line.first_index),
                "is not an item this partner may request (unknown, inactive, hidden from partners or outside its group's categories)",
            ));
            continue;
        };
        let quantity = match request_type {
            RequestType::Individual => {
                let per_person = item
                    .distribution_quantity
                    .filter(|quantity| *quantity > 0)
                    .unwrap_or(DEFAULT_DISTRIBUTION_QUANTITY);
                match line.persons.checked_mul(per_person) {
                    Some(quantity) => quantity,
                    None => {
                        problems.push(FieldViolation::new(
                            format!("items[{}].persons", line.first_index),
                            "is too large",
                        ));
                        continue;
                    }
                }
            }
            RequestType::Quantity | RequestType::Child => line.quantity,
        };
        resolved.push(RequestLine {
            item_id: line.item_id,
            item_name: item.name.clone(),
            quantity,
            persons: line.persons,
        });
    }
    if problems.is_empty() {
        Ok(resolved)
    } else {
        Err(problems)
    }
}

/// The sum of the quantities (saturating: a request this large is refused elsewhere anyway).
pub fn total_items(lines: &[RequestLine]) -> i32 {
    lines
        .iter()
        .fold(0_i32, |total, line| total.saturating_add(line.quantity))
}

/// The quota is advisory: exceeding it is shown, never refused.
pub fn quota_exceeded(total_items: i32, quota: Option<i32>) -> bool {
    quota.is_some_and(|quota| total_items > quota)
}

/// A distribution drafted from a request is issued tomorrow, this time of day (the bank edits it).
pub fn draft_issued_at(now: OffsetDateTime) -> OffsetDateTime {
    let tomorrow = now + time::Duration::days(1);
    tomorrow.replace_nanosecond(0).unwrap_or(tomorrow)
}

/// The distribution's agency representative: the requester, `Name <email>`.
pub fn agency_rep(name: &str, email: &str) -> String {
    match (name.trim(), email.trim()) {
        ("", "") => String::new(),
        (name, "") => name.to_owned(),
        ("", email) => email.to_owned(),
        (name, email) => format!("{name} <{email}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use essentials_runtime::PartError;

    fn line(index: usize, item: Option<Uuid>, quantity: i32, persons: i32) -> SubmittedLine {
        SubmittedLine {
            index,
            item_id: item,
            quantity,
            persons,
        }
    }

    fn catalogue(items: &[(Uuid, &str, Option<i32>)]) -> HashMap<Uuid, RequestableItem> {
        items
            .iter()
            .map(|(id, name, per_person)| {
                (
                    *id,
                    RequestableItem {
                        id: *id,
                        name: (*name).to_owned(),
                        distribution_quantity: *per_person,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn statuses_round_trip_through_text_and_proto() {
        for status in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(status.as_str()), Some(status));
            assert_eq!(RequestStatus::from_proto(status.to_proto()), Some(status));
        }
        assert_eq!(
            RequestStatus::from_proto(pb::RequestStatus::Unspecified),
            None
        );
        for kind in RequestType::ALL {
            assert_eq!(RequestType::parse(kind.as_str()), Some(kind));
            assert_eq!(RequestType::from_proto(kind.to_proto()), Some(kind));
        }
    }

    #[test]
    fn pending_or_started_requests_start_and_cancel() {
        assert_eq!(
            RequestStatus::Pending.start().ok(),
            Some(RequestStatus::Started)
        );
        assert_eq!(
            RequestStatus::Started.start().ok(),
            Some(RequestStatus::Started)
        );
        assert_eq!(
            RequestStatus::Pending.cancel().ok(),
            Some(RequestStatus::Cancelled)
        );
        assert_eq!(
            RequestStatus::Started.cancel().ok(),
            Some(RequestStatus::Cancelled)
        );
    }

    #[test]
    fn a_partner_withdraws_only_what_the_bank_has_not_started() {
        assert_eq!(
            RequestStatus::Pending.withdraw().ok(),
            Some(RequestStatus::Cancelled)
        );
        for later in [
            RequestStatus::Started,
            RequestStatus::Fulfilled,
            RequestStatus::Cancelled,
        ] {
            let refused = later.withdraw().expect_err("not pending");
            assert_eq!(refused.reason(), "REQUEST_NOT_CANCELLABLE");
        }
    }

    #[test]
    fn fulfilled_and_cancelled_requests_never_change() {
        for terminal in [RequestStatus::Fulfilled, RequestStatus::Cancelled] {
            assert!(terminal.is_terminal());
            let start = terminal.start().expect_err("terminal");
            assert_eq!(start.reason(), "REQUEST_NOT_FULFILLABLE");
            let cancel = terminal.cancel().expect_err("terminal");
            assert_eq!(cancel.reason(), "REQUEST_NOT_CANCELLABLE");
        }
        assert!(!RequestStatus::Pending.is_terminal());
    }

    #[test]
    fn duplicate_rows_are_summed_and_empty_rows_ignored() {
        let diapers = Uuid::now_v7();
        let wipes = Uuid::now_v7();
        let merged = merge_lines(
            RequestType::Quantity,
            &[
                line(0, Some(diapers), 10, 0),
                line(1, None, 0, 0),
                line(2, Some(wipes), 3, 0),
                line(3, Some(diapers), 5, 0),
            ],
        )
        .expect("valid");
        assert_eq!(
            merged,
            vec![
                MergedLine {
                    first_index: 0,
                    item_id: diapers,
                    quantity: 15,
                    persons: 0
                },
                MergedLine {
                    first_index: 2,
                    item_id: wipes,
                    quantity: 3,
                    persons: 0
                },
            ]
        );
    }

    #[test]
    fn quantities_must_be_at_least_one_and_every_problem_is_named() {
        let item = Uuid::now_v7();
        let problems = merge_lines(
            RequestType::Quantity,
            &[
                line(0, Some(item), 0, 0),
                line(1, Some(item), -4, 0),
                line(2, None, 3, 0),
            ],
        )
        .expect_err("invalid");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["items[0].quantity", "items[1].quantity", "items[2].item_id"]
        );
        let problems = merge_lines(RequestType::Individual, &[line(0, Some(item), 5, 0)])
            .expect_err("persons needed");
        assert_eq!(problems[0].field, "items[0].persons");
    }

    #[test]
    fn summing_past_the_integer_range_is_refused() {
        let item = Uuid::now_v7();
        let problems = merge_lines(
            RequestType::Quantity,
            &[line(0, Some(item), i32::MAX, 0), line(1, Some(item), 1, 0)],
        )
        .expect_err("overflow");
        assert_eq!(problems[0].field, "items[1]");
    }

    #[test]
    fn a_comment_only_request_is_valid_but_a_completely_empty_one_is_not() {
        assert!(check_not_empty(&[], "Please call us").is_ok());
        let empty = check_not_empty(&[], "   ").expect_err("empty");
        assert!(empty.description.contains("completely empty request"));
        let lines = [MergedLine {
            first_index: 0,
            item_id: Uuid::now_v7(),
            quantity: 1,
            persons: 0,
        }];
        assert!(check_not_empty(&lines, "").is_ok());
    }

    #[test]
    fn only_approved_partners_request_and_deactivated_ones_are_told_apart() {
        assert!(check_partner_may_request(PartnerStatus::Approved, "P").is_ok());
        for status in [
            PartnerStatus::Uninvited,
            PartnerStatus::Invited,
            PartnerStatus::AwaitingReview,
            PartnerStatus::RecertificationRequired,
        ] {
            let refused = check_partner_may_request(status, "P").expect_err("not approved");
            assert_eq!(refused.reason(), "PARTNER_NOT_APPROVED");
        }
        let refused =
            check_partner_may_request(PartnerStatus::Deactivated, "P").expect_err("deactivated");
        assert_eq!(refused.reason(), "PARTNER_DEACTIVATED");
    }

    #[test]
    fn request_types_must_be_enabled_and_child_requests_wait() {
        assert!(check_request_type(RequestType::Quantity, &[RequestType::Quantity]).is_ok());
        let refused = check_request_type(RequestType::Individual, &[RequestType::Quantity])
            .expect_err("disabled");
        assert_eq!(refused.reason.as_deref(), Some("REQUEST_TYPE_NOT_ENABLED"));
        let child = check_request_type(RequestType::Child, &RequestType::ALL).expect_err("later");
        assert_eq!(child.field_violations[0].field, "request_type");
    }

    #[test]
    fn lines_take_the_item_name_and_unrequestable_items_are_named() {
        let diapers = Uuid::now_v7();
        let hidden = Uuid::now_v7();
        let items = catalogue(&[(diapers, "Diapers Size 4", None)]);
        let merged = vec![
            MergedLine {
                first_index: 0,
                item_id: diapers,
                quantity: 20,
                persons: 0,
            },
            MergedLine {
                first_index: 3,
                item_id: hidden,
                quantity: 1,
                persons: 0,
            },
        ];
        let problems =
            resolve_lines(RequestType::Quantity, &merged, &items).expect_err("hidden item");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "items[3].item_id");
        let resolved =
            resolve_lines(RequestType::Quantity, &merged[..1], &items).expect("requestable");
        assert_eq!(resolved[0].item_name, "Diapers Size 4");
        assert_eq!(resolved[0].quantity, 20);
    }

    #[test]
    fn individual_quantity_is_persons_times_the_distribution_quantity() {
        let pads = Uuid::now_v7();
        let wipes = Uuid::now_v7();
        let items = catalogue(&[(pads, "Pads", Some(20)), (wipes, "Wipes", None)]);
        let merged = merge_lines(
            RequestType::Individual,
            &[
                line(0, Some(pads), 0, 3),
                line(1, Some(wipes), 0, 2),
                line(2, Some(pads), 0, 1),
            ],
        )
        .expect("valid");
        let resolved = resolve_lines(RequestType::Individual, &merged, &items).expect("resolved");
        assert_eq!((resolved[0].persons, resolved[0].quantity), (4, 80));
        assert_eq!(
            (resolved[1].persons, resolved[1].quantity),
            (2, 2 * DEFAULT_DISTRIBUTION_QUANTITY)
        );
        assert_eq!(total_items(&resolved), 180);
    }

    #[test]
    fn the_quota_is_advisory() {
        assert!(quota_exceeded(101, Some(100)));
        assert!(!quota_exceeded(100, Some(100)));
        assert!(!quota_exceeded(10_000, None));
    }

    #[test]
    fn the_draft_is_issued_tomorrow_and_names_the_requester() {
        let now = time::macros::datetime!(2026-11-22 10:30:15.5 UTC);
        assert_eq!(
            draft_issued_at(now),
            time::macros::datetime!(2026-11-23 10:30:15 UTC)
        );
        assert_eq!(agency_rep("Ana", "ana@p.test"), "Ana <ana@p.test>");
        assert_eq!(agency_rep("", "ana@p.test"), "ana@p.test");
        assert_eq!(agency_rep("", ""), "");
    }
}
