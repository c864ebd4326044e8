//! Creating a request: who may request for whom, eligibility and requestable items (one call
//! each), the lines' rules, then one transaction with `request.created`. A retry with the same
//! idempotency key answers with the first request.

use std::collections::HashMap;

use essentials_proto::events::v1 as events;
use essentials_runtime::auth::{Principal, Role};
use essentials_runtime::bus::{NewEvent, enqueue};
use essentials_runtime::error::unique_violation;
use essentials_runtime::{FieldViolation, ServiceError};
use time::OffsetDateTime;
use uuid::Uuid;

use super::*;
use crate::domain::{self, RequestError, RequestStatus, RequestType, RequestableItem};
use crate::repo::{self, NewRequestRow, RequestRow};

impl App {
    // ---- creating -----------------------------------------------------------------------------

    /// A retry of a creating call answers with the first request (only to the same user).
    async fn earlier_request(
        &self,
        principal: &Principal,
        organization_id: Uuid,
        key: &str,
    ) -> Result<Option<RequestView>, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let Some(row) =
            repo::request_by_idempotency_key(&mut connection, organization_id, key).await?
        else {
            return Ok(None);
        };
        if row.requester_user_id != principal.user_id {
            return Err(RequestError::IdempotencyKeyReused.into());
        }
        Ok(Some(self.view(&mut connection, row).await?))
    }

    /// Creates a pending request (or, with `validate_only`, checks it and saves nothing).
    pub async fn create_request(
        &self,
        principal: &Principal,
        input: NewRequest,
    ) -> Result<RequestView, ServiceError> {
        // Who requests for whom: a partner user for its own partner; an org_admin, quantity
        // requests only, for a partner of its bank.
        let (organization_id, partner_id, on_behalf_of_partner) = match principal.role {
            Role::Partner => {
                let (organization_id, own) = principal.require_partner()?;
                if input.partner_id.is_some_and(|given| given != own) {
                    return Err(ServiceError::permission_denied(
                        "A partner user can only request for its own partner.",
                    ));
                }
                (organization_id, own, false)
            }
            Role::OrgAdmin => {
                let organization_id = principal.require_org_admin()?;
                let mut problems = Vec::new();
                if input.partner_id.is_none() {
                    problems.push(FieldViolation::new(
                        "partner_id",
                        "is required when a bank administrator requests on a partner's behalf",
                    ));
                }
                if input.request_type != RequestType::Quantity {
                    problems.push(FieldViolation::new(
                        "request_type",
                        "a bank administrator enters quantity requests only",
                    ));
                }
                let Some(partner_id) = input.partner_id.filter(|_| problems.is_empty()) else {
                    return Err(ServiceError::invalid(problems));
                };
                (organization_id, partner_id, true)
            }
            _ => {
                return Err(ServiceError::permission_denied(
                    "Requests are made by a partner's users, or by a bank administrator on a partner's behalf.",
                ));
            }
        };
        let idempotency_key = input
            .idempotency_key
            .as_deref()
            .filter(|_| !input.validate_only);
        if let Some(key) = idempotency_key
            && let Some(earlier) = self
                .earlier_request(principal, organization_id, key)
                .await?
        {
            return Ok(earlier);
        }

        let eligibility = self.eligibility(principal, Some(partner_id)).await?;
        domain::check_partner_may_request(eligibility.status(), &eligibility.partner_name)?;
        domain::check_request_type(input.request_type, &enabled_types(&eligibility))?;

        let mut problems = Vec::new();
        let merged = match domain::merge_lines(input.request_type, &input.lines) {
            Ok(merged) => merged,
            Err(found) => {
                problems.extend(found);
                Vec::new()
            }
        };
        if problems.is_empty()
            && let Err(problem) = domain::check_not_empty(&merged, &input.comments)
        {
            problems.push(problem);
        }
        if !problems.is_empty() {
            return Err(ServiceError::invalid(problems));
        }
        let lines = if merged.is_empty() {
            Vec::new()
        } else {
            let requestable: HashMap<Uuid, RequestableItem> = self
                .requestable_items(principal, &eligibility)
                .await?
                .into_iter()
                .filter_map(|item| {
                    Some((
                        parse_uuid(&item.id)?,
                        RequestableItem {
                            id: parse_uuid(&item.id)?,
                            name: item.name,
                            distribution_quantity: item.distribution_quantity,
                        },
                    ))
                })
                .collect();
            domain::resolve_lines(input.request_type, &merged, &requestable)
                .map_err(ServiceError::invalid)?
        };
        let total_items = domain::total_items(&lines);
        let requester = eligibility.requester.clone().unwrap_or_default();
        let id = Uuid::now_v7();
        let new_row = NewRequestRow {
            id,
            organization_id,
            partner_id,
            request_type: input.request_type.as_str(),
            comments: input.comments.trim(),
            requester_user_id: principal.user_id,
            requester_name: &requester.name,
            requester_email: &requester.email,
            on_behalf_of_partner,
            total_items,
            quota: eligibility.quota,
            idempotency_key,
        };
        if input.validate_only {
            let now = OffsetDateTime::now_utc();
            return Ok(RequestView {
                row: RequestRow {
                    id: Uuid::nil(),
                    organization_id,
                    partner_id,
                    request_type: input.request_type.as_str().to_owned(),
                    status: RequestStatus::Pending.as_str().to_owned(),
                    comments: new_row.comments.to_owned(),
                    requester_user_id: principal.user_id,
                    requester_name: requester.name.clone(),
                    requester_email: requester.email.clone(),
                    on_behalf_of_partner,
                    total_items,
                    quota: eligibility.quota,
                    distribution_id: None,
                    cancel_reason: String::new(),
                    cancelled_at: None,
                    created_at: now,
                    updated_at: now,
                },
                items: lines_as_items(Uuid::nil(), &lines),
            });
        }

        let mut transaction = self.pool.begin().await?;
        if let Err(error) = repo::insert_request(&mut transaction, &new_row, &lines).await {
            if unique_violation(&error).as_deref() == Some("request_idempotency_key")
                && let Some(key) = idempotency_key
            {
                // A concurrent retry with the same key won the race: answer with its request.
                transaction.rollback().await?;
                return self
                    .earlier_request(principal, organization_id, key)
                    .await?
                    .ok_or_else(|| ServiceError::internal("idempotency key without its request"));
            }
            return Err(error.into());
        }
        let event = events::RequestCreated {
            request_id: id.to_string(),
            bank: Some(bank_ref(&eligibility)),
            partner: Some(partner_ref(&eligibility)),
            requester: Some(caller_ref(principal, &eligibility)),
            request_type: input.request_type.to_proto() as i32,
            items: item_lines(&lines_as_items(id, &lines)),
            comments: new_row.comments.to_owned(),
            cc_bank: eligibility.receive_email_on_requests,
            total_items,
            quota_exceeded: domain::quota_exceeded(total_items, eligibility.quota),
            on_behalf_of_partner,
        };
        enqueue(
            &mut transaction,
            &NewEvent::new(Some(organization_id), Some(principal.user_id), &event),
        )
        .await?;
        let row = repo::request(&mut transaction, organization_id, id, None, false)
            .await?
            .ok_or_else(|| ServiceError::internal("the new request vanished"))?;
        transaction.commit().await?;
        Ok(RequestView {
            items: lines_as_items(id, &lines),
            row,
        })
    }
}
