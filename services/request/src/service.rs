//! Use cases of the request part: each change runs in one transaction and writes its event to the
//! outbox in that transaction. The partner and inventory parts are asked (one call each) before
//! the transaction opens.

use std::collections::HashMap;

use essentials_proto::events::v1 as events;
use essentials_proto::inventory::v1 as inventory;
use essentials_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use essentials_proto::partner::v1 as partner;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_runtime::auth::{Principal, Role, forward};
use essentials_runtime::bus::{NewEvent, enqueue};
use essentials_runtime::error::unique_violation;
use essentials_runtime::{Code, FieldViolation, ServiceError};
use sqlx::PgPool;
use time::OffsetDateTime;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::domain::{
    self, RequestLine, RequestStatus, RequestType, RequestableItem, SubmittedLine,
};
use crate::repo::{self, ItemRow, ListFilter, NewRequestRow, RequestRow};

/// The request part's use cases.
#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
    /// The partner part (eligibility: status, categories, request types, bank settings).
    pub partner: Channel,
    /// The inventory part (requestable items).
    pub inventory: Channel,
}

/// A request with its lines.
#[derive(Debug, Clone)]
pub struct RequestView {
    pub row: RequestRow,
    pub items: Vec<ItemRow>,
}

/// A new request as the transport decoded it.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub partner_id: Option<Uuid>,
    pub request_type: RequestType,
    pub lines: Vec<SubmittedLine>,
    pub comments: String,
    pub idempotency_key: Option<String>,
    pub validate_only: bool,
}

/// A distribution pre-filled from a request.
#[derive(Debug, Clone)]
pub struct DistributionDraft {
    pub partner_id: Uuid,
    pub request_id: Uuid,
    pub storage_location_id: Option<Uuid>,
    pub issued_at: OffsetDateTime,
    pub comment: String,
    pub agency_rep: String,
    pub line_items: Vec<(Uuid, i32)>,
}

/// The items a partner may request, and the request types it may use.
#[derive(Debug, Clone)]
pub struct Requestable {
    pub items: Vec<inventory::Item>,
    pub enabled_request_types: Vec<RequestType>,
}

/// Who may see which requests: bank staff their bank's, a partner user its partner's.
fn read_scope(principal: &Principal) -> Result<(Uuid, Option<Uuid>), ServiceError> {
    match principal.role {
        Role::Partner => {
            let (organization_id, partner_id) = principal.require_partner()?;
            Ok((organization_id, Some(partner_id)))
        }
        _ => Ok((principal.require_bank_staff()?, None)),
    }
}

/// A failure of another part, as our caller should see it.
fn upstream_error(part: &str, what: &str, status: &tonic::Status) -> ServiceError {
    match status.code() {
        tonic::Code::NotFound => ServiceError::not_found(what),
        tonic::Code::PermissionDenied
        | tonic::Code::Unauthenticated
        | tonic::Code::InvalidArgument
        | tonic::Code::FailedPrecondition => ServiceError::from_status(status),
        _ => ServiceError::part_unavailable(part, status),
    }
}

fn parse_uuid(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text).ok()
}

fn status_of(row: &RequestRow) -> Result<RequestStatus, ServiceError> {
    RequestStatus::parse(&row.status).ok_or_else(|| {
        ServiceError::internal(format!("request {} has status {:?}", row.id, row.status))
    })
}

fn bank_ref(eligibility: &partner::GetRequestEligibilityResponse) -> events::BankRef {
    events::BankRef {
        organization_id: eligibility.organization_id.clone(),
        name: eligibility.organization_name.clone(),
        email: eligibility.organization_email.clone(),
    }
}

fn partner_ref(eligibility: &partner::GetRequestEligibilityResponse) -> events::PartnerRef {
    events::PartnerRef {
        partner_id: eligibility.partner_id.clone(),
        name: eligibility.partner_name.clone(),
        email: eligibility.partner_email.clone(),
        status: eligibility.status,
        send_reminders: false,
    }
}

/// The calling user as the partner part knows them (name and e-mail when it told us).
fn caller_ref(
    principal: &Principal,
    eligibility: &partner::GetRequestEligibilityResponse,
) -> events::PersonRef {
    let user = eligibility.requester.clone().unwrap_or_default();
    events::PersonRef {
        user_id: principal.user_id.to_string(),
        name: user.name,
        email: user.email,
    }
}

fn requester_ref(row: &RequestRow) -> events::PersonRef {
    events::PersonRef {
        user_id: row.requester_user_id.to_string(),
        name: row.requester_name.clone(),
        email: row.requester_email.clone(),
    }
}

fn item_lines(items: &[ItemRow]) -> Vec<events::ItemLine> {
    items
        .iter()
        .map(|item| events::ItemLine {
            item_id: item.item_id.to_string(),
            item_name: item.item_name.clone(),
            quantity: item.quantity,
            value_in_cents: 0,
            persons: item.persons,
        })
        .collect()
}

fn lines_as_items(request_id: Uuid, lines: &[RequestLine]) -> Vec<ItemRow> {
    lines
        .iter()
        .map(|line| ItemRow {
            request_id,
            item_id: line.item_id,
            item_name: line.item_name.clone(),
            quantity: line.quantity,
            persons: line.persons,
        })
        .collect()
}

fn enabled_types(eligibility: &partner::GetRequestEligibilityResponse) -> Vec<RequestType> {
    eligibility
        .enabled_request_types()
        .filter_map(RequestType::from_proto)
        .collect()
}

impl App {
    // ---- questions to other parts -------------------------------------------------------------

    /// The partner part's answer: may this partner request, and what (one call).
    async fn eligibility(
        &self,
        principal: &Principal,
        partner_id: Option<Uuid>,
    ) -> Result<partner::GetRequestEligibilityResponse, ServiceError> {
        PartnerServiceClient::new(self.partner.clone())
            .get_request_eligibility(forward(
                principal,
                partner::GetRequestEligibilityRequest {
                    partner_id: partner_id.map(|id| id.to_string()).unwrap_or_default(),
                    requester_user_id: principal.user_id.to_string(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| upstream_error("partner", "partner", &status))
    }

    /// The inventory part's answer: the items this partner may request now (one call).
    async fn requestable_items(
        &self,
        principal: &Principal,
        eligibility: &partner::GetRequestEligibilityResponse,
    ) -> Result<Vec<inventory::Item>, ServiceError> {
        let items = InventoryServiceClient::new(self.inventory.clone())
            .list_requestable_items(forward(
                principal,
                inventory::ListRequestableItemsRequest {
                    restricted_to_categories: eligibility.restricted_to_categories,
                    item_category_ids: eligibility.allowed_item_category_ids.clone(),
                },
            ))
            .await
            .map_err(|status| upstream_error("inventory", "items", &status))?
            .into_inner()
            .items;
        // The inventory part already narrows; this keeps the rule true whatever it answers.
        Ok(items
            .into_iter()
            .filter(|item| item.active != Some(false) && item.visible_to_partners != Some(false))
            .collect())
    }

    // ---- reading ------------------------------------------------------------------------------

    async fn view(
        &self,
        connection: &mut sqlx::PgConnection,
        row: RequestRow,
    ) -> Result<RequestView, ServiceError> {
        let items = repo::items(connection, row.organization_id, &[row.id]).await?;
        Ok(RequestView { row, items })
    }

    pub async fn get_request(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<RequestView, ServiceError> {
        let (organization_id, partner_id) = read_scope(principal)?;
        let mut connection = self.pool.acquire().await?;
        let row = repo::request(&mut connection, organization_id, id, partner_id, false)
            .await?
            .ok_or_else(|| ServiceError::not_found("request"))?;
        self.view(&mut connection, row).await
    }

    /// A page of requests, newest first; a partner user's list is forced to its own partner.
    pub async fn list_requests(
        &self,
        principal: &Principal,
        mut filter: ListFilter,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: i64,
    ) -> Result<Vec<RequestView>, ServiceError> {
        let (organization_id, own_partner) = read_scope(principal)?;
        if own_partner.is_some() {
            filter.partner_id = own_partner;
        }
        let mut connection = self.pool.acquire().await?;
        let rows =
            repo::list_requests(&mut connection, organization_id, &filter, after, limit).await?;
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let mut items_by_request: HashMap<Uuid, Vec<ItemRow>> = HashMap::new();
        for item in repo::items(&mut connection, organization_id, &ids).await? {
            items_by_request
                .entry(item.request_id)
                .or_default()
                .push(item);
        }
        Ok(rows
            .into_iter()
            .map(|row| RequestView {
                items: items_by_request.remove(&row.id).unwrap_or_default(),
                row,
            })
            .collect())
    }

    /// The items a partner may request: its own (partner user) or a partner of the bank (staff).
    pub async fn requestable(
        &self,
        principal: &Principal,
        partner_id: Option<Uuid>,
    ) -> Result<Requestable, ServiceError> {
        let partner_id = match principal.role {
            Role::Partner => {
                let (_, own) = principal.require_partner()?;
                if partner_id.is_some_and(|given| given != own) {
                    return Err(ServiceError::not_found("partner"));
                }
                own
            }
            _ => {
                principal.require_bank_staff()?;
                partner_id.ok_or_else(|| {
                    ServiceError::invalid(vec![FieldViolation::new("partner_id", "is required")])
                })?
            }
        };
        let eligibility = self.eligibility(principal, Some(partner_id)).await?;
        let items = self.requestable_items(principal, &eligibility).await?;
        let approved = eligibility.status() == partner::PartnerStatus::Approved;
        Ok(Requestable {
            items,
            enabled_request_types: if approved {
                enabled_types(&eligibility)
                    .into_iter()
                    .filter(|kind| *kind != RequestType::Child)
                    .collect()
            } else {
                Vec::new()
            },
        })
    }

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
            return Err(ServiceError::new(
                Code::AlreadyExists,
                "this idempotency key was already used for another request",
            )
            .with_reason("IDEMPOTENCY_KEY_REUSED"));
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

    // ---- changing -----------------------------------------------------------------------------

    /// Reads an open request of the caller's bank, refusing terminal ones before asking anyone.
    async fn open_request(
        &self,
        organization_id: Uuid,
        id: Uuid,
        partner_id: Option<Uuid>,
        check: fn(RequestStatus) -> Result<RequestStatus, ServiceError>,
    ) -> Result<RequestRow, ServiceError> {
        let mut connection = self.pool.acquire().await?;
        let row = repo::request(&mut connection, organization_id, id, partner_id, false)
            .await?
            .ok_or_else(|| ServiceError::not_found("request"))?;
        check(status_of(&row)?)?;
        Ok(row)
    }

    /// pending or started → started, with a distribution draft pre-filled from the request.
    pub async fn fulfill_request(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(RequestView, DistributionDraft), ServiceError> {
        let organization_id = principal.require_bank_staff()?;
        let current = self
            .open_request(organization_id, id, None, RequestStatus::start)
            .await?;
        let eligibility = self
            .eligibility(principal, Some(current.partner_id))
            .await?;

        let mut transaction = self.pool.begin().await?;
        let locked = repo::request(&mut transaction, organization_id, id, None, true)
            .await?
            .ok_or_else(|| ServiceError::not_found("request"))?;
        let previous = status_of(&locked)?;
        previous.start()?;
        let Some(row) = repo::start(&mut transaction, organization_id, id).await? else {
            // The guard refused: it left pending/started since the lock (cannot happen while the
            // lock is held, kept as the last line of defence).
            return Err(RequestStatus::Fulfilled
                .start()
                .err()
                .unwrap_or_else(|| ServiceError::internal("start refused without a reason")));
        };
        if previous == RequestStatus::Pending {
            enqueue(
                &mut transaction,
                &NewEvent::new(
                    Some(organization_id),
                    Some(principal.user_id),
                    &events::RequestStarted {
                        request_id: id.to_string(),
                        partner: Some(partner_ref(&eligibility)),
                        started_by: Some(caller_ref(principal, &eligibility)),
                    },
                ),
            )
            .await?;
        }
        let view = self.view(&mut transaction, row).await?;
        transaction.commit().await?;
        let draft = DistributionDraft {
            partner_id: view.row.partner_id,
            request_id: view.row.id,
            storage_location_id: parse_uuid(&eligibility.default_storage_location_id),
            issued_at: domain::draft_issued_at(OffsetDateTime::now_utc()),
            comment: view.row.comments.clone(),
            agency_rep: domain::agency_rep(&view.row.requester_name, &view.row.requester_email),
            line_items: view
                .items
                .iter()
                .map(|item| (item.item_id, item.quantity))
                .collect(),
        };
        Ok((view, draft))
    }

    /// pending or started → cancelled with a reason (the bank), or pending → cancelled (a user of
    /// the request's own partner withdrawing it); the partner is told by e-mail.
    pub async fn cancel_request(
        &self,
        principal: &Principal,
        id: Uuid,
        reason: &str,
    ) -> Result<RequestView, ServiceError> {
        let (organization_id, own_partner) = read_scope(principal)?;
        let check = if own_partner.is_some() {
            RequestStatus::withdraw
        } else {
            RequestStatus::cancel
        };
        let current = self
            .open_request(organization_id, id, own_partner, check)
            .await?;
        let eligibility = self
            .eligibility(principal, Some(current.partner_id))
            .await?;

        let mut transaction = self.pool.begin().await?;
        let locked = repo::request(&mut transaction, organization_id, id, own_partner, true)
            .await?
            .ok_or_else(|| ServiceError::not_found("request"))?;
        let previous = status_of(&locked)?;
        check(previous)?;
        let Some(row) = repo::cancel(&mut transaction, organization_id, id, reason).await? else {
            return Err(RequestStatus::Cancelled
                .cancel()
                .err()
                .unwrap_or_else(|| ServiceError::internal("cancel refused without a reason")));
        };
        let view = self.view(&mut transaction, row).await?;
        enqueue(
            &mut transaction,
            &NewEvent::new(
                Some(organization_id),
                Some(principal.user_id),
                &events::RequestCancelled {
                    request_id: id.to_string(),
                    bank: Some(bank_ref(&eligibility)),
                    partner: Some(partner_ref(&eligibility)),
                    requester: Some(requester_ref(&view.row)),
                    reason: reason.to_owned(),
                    items: item_lines(&view.items),
                    previous_status: previous.to_proto() as i32,
                    cancelled_by: Some(caller_ref(principal, &eligibility)),
                },
            ),
        )
        .await?;
        transaction.commit().await?;
        Ok(view)
    }
}
