//! Use cases of the request part: each change runs in one transaction and writes its event to the
//! outbox in that transaction. The partner and inventory parts are asked (one call each) before
//! the transaction opens. Reading and the questions to other parts are here; creating is in
//! `create`, fulfilling and cancelling in `changes`, the distribution events in `fulfilment`.

mod changes;
mod create;
pub mod fulfilment;

use std::collections::HashMap;

use essentials_proto::events::v1 as events;
use essentials_proto::inventory::v1 as inventory;
use essentials_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use essentials_proto::partner::v1 as partner;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_runtime::auth::{Principal, Role, forward};
use essentials_runtime::{FieldViolation, ServiceError};
use sqlx::PgPool;
use time::OffsetDateTime;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::domain::{RequestLine, RequestStatus, RequestType, SubmittedLine};
use crate::repo::{self, ItemRow, ListFilter, RequestRow};

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
pub(super) fn read_scope(principal: &Principal) -> Result<(Uuid, Option<Uuid>), ServiceError> {
    match principal.role {
        Role::Partner => {
            let (organization_id, partner_id) = principal.require_partner()?;
            Ok((organization_id, Some(partner_id)))
        }
        _ => Ok((principal.require_bank_staff()?, None)),
    }
}

/// A failure of another part, as our caller should see it.
pub(super) fn upstream_error(part: &str, what: &str, status: &tonic::Status) -> ServiceError {
    match status.code() {
        tonic::Code::NotFound => ServiceError::not_found(what),
        tonic::Code::PermissionDenied
        | tonic::Code::Unauthenticated
        | tonic::Code::InvalidArgument
        | tonic::Code::FailedPrecondition => ServiceError::from_status(status),
        _ => ServiceError::part_unavailable(part, status),
    }
}

pub(super) fn parse_uuid(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text).ok()
}

pub(super) fn status_of(row: &RequestRow) -> Result<RequestStatus, ServiceError> {
    RequestStatus::parse(&row.status).ok_or_else(|| {
        ServiceError::internal(format!("request {} has status {:?}", row.id, row.status))
    })
}

pub(super) fn bank_ref(eligibility: &partner::GetRequestEligibilityResponse) -> events::BankRef {
    events::BankRef {
        organization_id: eligibility.organization_id.clone(),
        name: eligibility.organization_name.clone(),
        email: eligibility.organization_email.clone(),
    }
}

pub(super) fn partner_ref(
    eligibility: &partner::GetRequestEligibilityResponse,
) -> events::PartnerRef {
    events::PartnerRef {
        partner_id: eligibility.partner_id.clone(),
        name: eligibility.partner_name.clone(),
        email: eligibility.partner_email.clone(),
        status: eligibility.status,
        send_reminders: false,
    }
}

/// The calling user as the partner part knows them (name and e-mail when it told us).
pub(super) fn caller_ref(
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

pub(super) fn requester_ref(row: &RequestRow) -> events::PersonRef {
    events::PersonRef {
        user_id: row.requester_user_id.to_string(),
        name: row.requester_name.clone(),
        email: row.requester_email.clone(),
    }
}

pub(super) fn item_lines(items: &[ItemRow]) -> Vec<events::ItemLine> {
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

pub(super) fn lines_as_items(request_id: Uuid, lines: &[RequestLine]) -> Vec<ItemRow> {
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

pub(super) fn enabled_types(
    eligibility: &partner::GetRequestEligibilityResponse,
) -> Vec<RequestType> {
    eligibility
        .enabled_request_types()
        .filter_map(RequestType::from_proto)
        .collect()
}

impl App {
    // ---- questions to other parts -------------------------------------------------------------

    /// The partner part's answer: may this partner request, and what (one call).
    pub(super) async fn eligibility(
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
    pub(super) async fn requestable_items(
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

    pub(super) async fn view(
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
}
