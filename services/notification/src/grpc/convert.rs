//! Messages ↔ the service's types. Timestamps, ids and page tokens come from
//! `runtime::convert`; this list's page size refuses a negative one (it always has).

use essentials_proto::notification::v1 as pb;
use essentials_runtime::FieldViolation;
use essentials_runtime::convert::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, timestamp};
use uuid::Uuid;

use crate::repo::{DashboardRows, EmailRow};

pub fn page_size(requested: i32, problems: &mut Vec<FieldViolation>) -> i64 {
    match i64::from(requested) {
        0 => DEFAULT_PAGE_SIZE,
        size if size < 0 => {
            problems.push(FieldViolation::new("page_size", "must not be negative"));
            DEFAULT_PAGE_SIZE
        }
        size => size.min(MAX_PAGE_SIZE),
    }
}

pub fn status_name(status: pb::EmailStatus) -> Option<&'static str> {
    match status {
        pb::EmailStatus::Unspecified => None,
        pb::EmailStatus::Pending => Some("pending"),
        pb::EmailStatus::Sent => Some("sent"),
        pb::EmailStatus::Failed => Some("failed"),
    }
}

pub fn email_status(name: &str) -> pb::EmailStatus {
    match name {
        "pending" => pb::EmailStatus::Pending,
        "sent" => pb::EmailStatus::Sent,
        "failed" => pb::EmailStatus::Failed,
        _ => pb::EmailStatus::Unspecified,
    }
}

pub fn email_message(row: EmailRow) -> pb::Email {
    pb::Email {
        id: row.id.to_string(),
        to: row.to_address,
        cc: row.cc_addresses,
        subject: row.subject,
        event_type: row.event_type,
        status: email_status(&row.status) as i32,
        sent_at: row.sent_at.map(timestamp),
        created_at: Some(timestamp(row.created_at)),
        event_id: row.event_id.map(|id| id.to_string()).unwrap_or_default(),
        error: row.last_error.unwrap_or_default(),
        attempts: row.attempts,
        text_body: row.text_body,
        html_body: row.html_body,
        attachment_names: row.attachment_name.into_iter().collect(),
    }
}

pub fn dashboard_message(organization_id: Uuid, rows: DashboardRows) -> pb::Dashboard {
    pb::Dashboard {
        organization_id: organization_id.to_string(),
        outstanding_requests: rows
            .outstanding
            .into_iter()
            .map(|request| pb::OutstandingRequest {
                request_id: request.request_id.to_string(),
                partner_id: request
                    .partner_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                partner_name: request.partner_name,
                requester: match (
                    request.requester_name.is_empty(),
                    request.requester_email.is_empty(),
                ) {
                    (_, true) => request.requester_name.clone(),
                    (true, false) => request.requester_email.clone(),
                    (false, false) => {
                        format!("{} <{}>", request.requester_name, request.requester_email)
                    }
                },
                requester_name: request.requester_name,
                requester_email: request.requester_email,
                comments: request.comments,
                created_at: request.created_at.map(timestamp),
            })
            .collect(),
        outstanding_requests_count: i32::try_from(rows.outstanding_count).unwrap_or(i32::MAX),
        partner_approvals: rows
            .approvals
            .into_iter()
            .map(|partner| pb::PartnerApproval {
                partner_id: partner.partner_id.to_string(),
                name: partner.name,
                primary_contact_name: partner.primary_contact_name,
                primary_contact_email: partner.primary_contact_email,
                review_requested_at: partner.review_requested_at.map(timestamp),
            })
            .collect(),
        low_inventory: rows
            .low_stock
            .into_iter()
            .map(|item| pb::LowInventoryItem {
                item_id: item.item_id.to_string(),
                name: item.name,
                quantity: item.quantity,
                minimum: item.minimum,
                recommended: item.recommended,
                below_minimum: item.minimum > 0 && item.quantity < item.minimum,
            })
            .collect(),
        upcoming_distributions_count: i32::try_from(rows.upcoming_distributions)
            .unwrap_or(i32::MAX),
        version: rows.version,
        updated_at: rows.updated_at.map(timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_and_caps() {
        let mut problems = Vec::new();
        assert_eq!(page_size(0, &mut problems), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(10_000, &mut problems), MAX_PAGE_SIZE);
        assert!(problems.is_empty());
        page_size(-1, &mut problems);
        assert_eq!(problems[0].field, "page_size");
    }

    #[test]
    fn statuses_round_trip() {
        for status in [
            pb::EmailStatus::Pending,
            pb::EmailStatus::Sent,
            pb::EmailStatus::Failed,
        ] {
            let name = status_name(status).expect("named");
            assert_eq!(email_status(name), status);
        }
        assert_eq!(status_name(pb::EmailStatus::Unspecified), None);
    }
}
