//! Distributions: create (stock falls), edit (stock re-adjusted by the difference), complete,
//! reclaim (stock returns). The partner service answers whether the partner may receive and
//! whom to tell; the request service whether a linked request may be fulfilled. A request is
//! fulfilled by at most one distribution: the unique constraint `distribution_request_key`
//! decides between concurrent saves.

use essentials_proto::events::v1::{
    BankRef, DistributionChange, DistributionCompleted, DistributionCreated, DistributionReclaimed,
    DistributionSnapshot, DistributionUpdated, PartnerRef, PersonRef,
};
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::partner::v1::{GetPartnerContactsRequest, GetPartnerRequest, PartnerStatus};
use essentials_proto::request::v1::request_service_client::RequestServiceClient;
use essentials_proto::request::v1::{GetRequestRequest, RequestStatus};
use essentials_runtime::auth::{Principal, forward};
use essentials_runtime::bus::{NewEvent, enqueue};
use essentials_runtime::{Code, FieldViolation, ServiceError};
use time::OffsetDateTime;
use uuid::Uuid;

use super::stock::{into_changes, item_lines, prepare_lines, total_value, with_locations};
use super::{Inventory, Page, Staff, StockContext, load_context, move_stock};
use crate::domain::{
    DeliveryMethod, DistributionState, DocumentId, ItemId, LedgerSource, Line, LineChangeKind,
    LowStock, OrganizationId, PartnerId, QuantityRule, StorageLocationId, UserId,
    distribution_edit_changes, issued_at_violation, line_changes, partner_should_be_notified,
};
use crate::domain::{Fulfilled, InventoryError};
use essentials_runtime::convert::timestamp;

use crate::repo;
use crate::repo::distributions::{Distribution, DistributionFilter, Requester};
use crate::repo::documents::{DocumentTable, IssuedCursor, claim_idempotency_key};
use crate::repo::stock::LedgerSourceRef;
use crate::service::wire::{delivery_method_proto, distribution_state_proto};

/// A new distribution as the caller asked for it.
#[derive(Debug, Clone)]
pub struct NewDistribution {
    pub partner_id: PartnerId,
    pub storage_location_id: StorageLocationId,
    pub issued_at: Option<OffsetDateTime>,
    pub delivery_method: DeliveryMethod,
    pub shipping_cost_in_cents: i64,
    pub comment: String,
    pub agency_rep: String,
    pub request_id: Option<Uuid>,
    pub reminder_email_enabled: bool,
    pub lines: Vec<Line>,
}

/// The fields an edit changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct DistributionPatch {
    pub storage_location_id: Option<StorageLocationId>,
    pub issued_at: Option<OffsetDateTime>,
    pub delivery_method: Option<DeliveryMethod>,
    pub shipping_cost_in_cents: Option<i64>,
    pub comment: Option<String>,
    pub agency_rep: Option<String>,
    pub reminder_email_enabled: Option<bool>,
    pub lines: Option<Vec<Line>>,
}

/// A distribution with what answers show.
#[derive(Debug, Clone)]
pub struct DistributionView {
    pub distribution: Distribution,
    pub total_quantity: i32,
    pub total_value_in_cents: i64,
    pub low_stock: Vec<LowStock>,
}

/// What the partner service says about a partner, for checks and e-mail events.
#[derive(Debug, Clone, Default)]
pub struct PartnerInfo {
    pub partner: PartnerRef,
    pub bank: BankRef,
    pub pick_up_emails: Vec<String>,
    pub default_email_text: String,
}

/// Who may read a distribution.
#[derive(Debug, Clone, Copy)]
pub enum Reader {
    Staff(OrganizationId),
    Partner(OrganizationId, PartnerId),
}

impl Reader {
    pub fn from_principal(principal: &Principal) -> Result<Self, ServiceError> {
        if principal.is_bank_staff() {
            return Ok(Reader::Staff(OrganizationId(
                principal.require_bank_staff()?,
            )));
        }
        let (organization, partner) = principal.require_partner()?;
        Ok(Reader::Partner(
            OrganizationId(organization),
            PartnerId(partner),
        ))
    }

    fn organization(self) -> OrganizationId {
        match self {
            Reader::Staff(organization) | Reader::Partner(organization, _) => organization,
        }
    }
}

fn unavailable(part: &str) -> ServiceError {
    ServiceError::new(
        Code::Unavailable,
        format!("the {part} service is unavailable, try again"),
    )
}

fn started_of_today() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT)
}

impl Inventory {
    /// Asks the partner service about a partner of the caller's bank (with the caller's token).
    pub async fn partner_info(
        &self,
        principal: &Principal,
        partner_id: PartnerId,
    ) -> Result<PartnerInfo, ServiceError> {
        let mut client = PartnerServiceClient::new(self.partner.clone());
        let contacts = client
            .get_partner_contacts(forward(
                principal,
                GetPartnerContactsRequest {
                    partner_id: partner_id.to_string(),
                },
            ))
            .await;
        match contacts {
            Ok(response) => {
                let contacts = response.into_inner();
                return Ok(PartnerInfo {
                    partner: PartnerRef {
                        partner_id: contacts.partner_id,
                        name: contacts.partner_name,
                        email: contacts.partner_email,
                        status: contacts.status,
                        send_reminders: contacts.send_reminders,
                    },
                    bank: BankRef {
                        organization_id: contacts.organization_id,
                        name: contacts.organization_name,
                        email: contacts.organization_email,
                    },
                    pick_up_emails: contacts.pick_up_emails,
                    default_email_text: contacts.default_email_text,
                });
            }
            Err(status) if status.code() == tonic::Code::Unimplemented => {}
            Err(status) => return Err(partner_error(&status)),
        }
        // A partner service without GetPartnerContacts yet: GetPartner has what the checks need.
        let partner = client
            .get_partner(forward(
                principal,
                GetPartnerRequest {
                    partner_id: partner_id.to_string(),
                },
            ))
            .await
            .map_err(|status| partner_error(&status))?
            .into_inner()
            .partner
            .unwrap_or_default();
        Ok(PartnerInfo {
            partner: PartnerRef {
                partner_id: partner.id,
                name: partner.name,
                email: partner.email,
                status: partner.status,
                send_reminders: partner.send_reminders,
            },
            bank: BankRef {
                organization_id: partner.organization_id,
                ..BankRef::default()
            },
            ..PartnerInfo::default()
        })
    }

    /// Checks a linked request with the request service: same bank (the token scopes the call),
    /// same partner, pending or started.
    async fn check_request(
        &self,
        principal: &Principal,
        request_id: Uuid,
        partner_id: PartnerId,
    ) -> Result<Requester, ServiceError> {
        let mut client = RequestServiceClient::new(self.request.clone());
        let request = client
            .get_request(forward(
                principal,
                GetRequestRequest {
                    request_id: request_id.to_string(),
                },
            ))
            .await
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => ServiceError::invalid(vec![FieldViolation::new(
                    "distribution.request_id",
                    "names no request of this bank",
                )]),
                tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
                    ServiceError::from_status(&status)
                }
                _ => unavailable("request"),
            })?
            .into_inner()
            .request
            .unwrap_or_default();
        if request.partner_id != partner_id.to_string() {
            return Err(ServiceError::invalid(vec![FieldViolation::new(
                "distribution.request_id",
                "is a request of another partner",
            )]));
        }
        let status = RequestStatus::try_from(request.status).unwrap_or(RequestStatus::Unspecified);
        match status {
            RequestStatus::Pending | RequestStatus::Started => {}
            RequestStatus::Fulfilled => {
                return Err(InventoryError::RequestAlreadyFulfilled {
                    by: Fulfilled::Request,
                }
                .into());
            }
            _ => return Err(InventoryError::RequestCancelled.into()),
        }
        Ok(Requester {
            user_id: Uuid::parse_str(&request.requester_user_id).ok().map(UserId),
            name: request.requester_name,
            email: request.requester_email,
        })
    }

    pub async fn create_distribution(
        &self,
        staff: &Staff,
        input: NewDistribution,
        idempotency_key: Option<&str>,
    ) -> Result<DistributionView, ServiceError> {
        let mut problems = Vec::new();
        let lines = prepare_lines(&input.lines, QuantityRule::Positive, &mut problems);
        let issued_at = match input.issued_at {
            Some(issued_at) => {
                if let Some(description) = issued_at_violation(issued_at, OffsetDateTime::now_utc())
                {
                    problems.push(FieldViolation::new("distribution.issued_at", description));
                }
                issued_at
            }
            None => {
                problems.push(FieldViolation::new(
                    "distribution.issued_at",
                    "Distribution date and time can't be blank",
                ));
                OffsetDateTime::now_utc()
            }
        };
        if input.shipping_cost_in_cents < 0 {
            problems.push(FieldViolation::new(
                "distribution.shipping_cost_in_cents",
                "must be 0 or more",
            ));
        }
        if !problems.is_empty() {
            return Err(ServiceError::invalid(prefix_lines(problems)));
        }
        let partner = self
            .partner_info(&staff.principal, input.partner_id)
            .await?;
        if partner.partner.status == PartnerStatus::Deactivated as i32 {
            return Err(InventoryError::PartnerDeactivated {
                name: partner.partner.name,
            }
            .into());
        }
        let requester = match input.request_id {
            Some(request_id) => Some(
                self.check_request(&staff.principal, request_id, input.partner_id)
                    .await?,
            ),
            None => None,
        };
        let org = staff.organization_id;
        let mut transaction = self.pool.begin().await?;
        let item_ids: Vec<ItemId> = lines.iter().map(|line| line.item_id).collect();
        let context = load_context(
            &mut transaction,
            org,
            &item_ids,
            &[(
                "distribution.storage_location_id",
                input.storage_location_id,
            )],
            false,
            &mut problems,
        )
        .await?;
        inactive_items(&lines, &context, &mut problems);
        if !problems.is_empty() {
            return Err(ServiceError::invalid(prefix_lines(problems)));
        }
        let id = DocumentId::new();
        if let Some(key) = idempotency_key
            && let Some(existing) =
                claim_idempotency_key(&mut transaction, org, "create_distribution", key, id.0)
                    .await?
        {
            drop(transaction);
            return self
                .get_distribution(Reader::Staff(org), DocumentId(existing))
                .await;
        }
        let mut distribution = Distribution {
            id,
            partner_id: input.partner_id,
            storage_location_id: input.storage_location_id,
            issued_at,
            delivery_method: input.delivery_method,
            shipping_cost_in_cents: if input.delivery_method == DeliveryMethod::Shipped {
                input.shipping_cost_in_cents
            } else {
                0
            },
            comment: input.comment,
            agency_rep: input.agency_rep,
            request_id: input.request_id,
            requester,
            state: DistributionState::Scheduled,
            reminder_email_enabled: input.reminder_email_enabled,
            user_id: Some(staff.user_id),
            created_at: OffsetDateTime::now_utc(),
            updated_at: OffsetDateTime::now_utc(),
            lines,
        };
        let inserted = repo::distributions::insert(&mut transaction, org, &distribution).await;
        match inserted {
            Ok((created_at, updated_at)) => {
                distribution.created_at = created_at;
                distribution.updated_at = updated_at;
            }
            Err(error)
                if essentials_runtime::error::unique_violation(&error).as_deref()
                    == Some("distribution_request_key") =>
            {
                drop(transaction);
                return Err(self
                    .already_fulfilled(org, input.request_id.unwrap_or_default())
                    .await);
            }
            Err(error) => return Err(error.into()),
        }
        repo::documents::insert_lines(&mut transaction, org, id, &distribution.lines).await?;
        let changes = into_changes(distribution.storage_location_id, &distribution.lines, -1);
        let outcome = move_stock(
            &mut transaction,
            org,
            &changes,
            LedgerSourceRef {
                source: LedgerSource::Distribution,
                source_id: id,
                effective_at: issued_at,
                user_id: Some(staff.user_id),
            },
            &context,
        )
        .await?;
        let created = DistributionCreated {
            distribution: Some(snapshot(&distribution, &partner, &context)),
        };
        enqueue(
            &mut transaction,
            &NewEvent::new(Some(org.0), Some(staff.user_id.0), &created),
        )
        .await?;
        transaction.commit().await?;
        Ok(view(distribution, &context, outcome.low_stock))
    }

    async fn already_fulfilled(&self, org: OrganizationId, request_id: Uuid) -> ServiceError {
        let existing = async {
            let mut connection = self.pool.acquire().await?;
            repo::distributions::list(
                &mut connection,
                org,
                DistributionFilter {
                    request_id: Some(request_id),
                    ..DistributionFilter::default()
                },
                None,
                1,
            )
            .await
        }
        .await;
        let other = existing
            .ok()
            .and_then(|found| found.into_iter().next())
            .map(|other| other.id.0);
        InventoryError::RequestAlreadyFulfilled {
            by: Fulfilled::Distribution(other),
        }
        .into()
    }

    pub async fn get_distribution(
        &self,
        reader: Reader,
        id: DocumentId,
    ) -> Result<DistributionView, ServiceError> {
        let org = reader.organization();
        let mut connection = self.pool.acquire().await?;
        let distribution = repo::distributions::get(&mut connection, org, id, false)
            .await?
            .ok_or_else(|| ServiceError::not_found("distribution"))?;
        if let Reader::Partner(_, partner) = reader
            && distribution.partner_id != partner
        {
            return Err(ServiceError::not_found("distribution"));
        }
        let context = self
            .items_context(&mut connection, org, &distribution.lines)
            .await?;
        Ok(view(distribution, &context, Vec::new()))
    }

    pub async fn list_distributions(
        &self,
        reader: Reader,
        mut filter: DistributionFilter,
        cursor: Option<IssuedCursor>,
        limit: i64,
    ) -> Result<Page<DistributionView>, ServiceError> {
        let org = reader.organization();
        if let Reader::Partner(_, partner) = reader {
            filter.partner_id = Some(partner);
        }
        let mut connection = self.pool.acquire().await?;
        let rows =
            repo::distributions::list(&mut connection, org, filter, cursor, limit + 1).await?;
        let all_lines: Vec<Line> = rows.iter().flat_map(|d| d.lines.clone()).collect();
        let context = self.items_context(&mut connection, org, &all_lines).await?;
        let views = rows
            .into_iter()
            .map(|distribution| view(distribution, &context, Vec::new()))
            .collect();
        Ok(Page::from_rows(views, limit))
    }

    /// Only scheduled distributions issued today or later ("upcoming"), from the start of today.
    pub fn upcoming_from() -> OffsetDateTime {
        started_of_today()
    }

    pub async fn update_distribution(
        &self,
        staff: &Staff,
        id: DocumentId,
        patch: DistributionPatch,
    ) -> Result<DistributionView, ServiceError> {
        let org = staff.organization_id;
        let partner_id = {
            let mut connection = self.pool.acquire().await?;
            repo::distributions::get(&mut connection, org, id, false)
                .await?
                .ok_or_else(|| ServiceError::not_found("distribution"))?
                .partner_id
        };
        let partner = self.partner_info(&staff.principal, partner_id).await?;
        let mut transaction = self.pool.begin().await?;
        let old = repo::distributions::get(&mut transaction, org, id, true)
            .await?
            .ok_or_else(|| ServiceError::not_found("distribution"))?;
        let past = old.issued_at < started_of_today();
        if (old.state == DistributionState::Complete || past) && !staff.is_admin {
            return Err(ServiceError::permission_denied(
                "To edit a distribution, you must be an organization admin or the current date must be later than today.",
            ));
        }
        let mut problems = Vec::new();
        let mut new = old.clone();
        if let Some(location) = patch.storage_location_id {
            new.storage_location_id = location;
        }
        if let Some(issued_at) = patch.issued_at {
            if let Some(description) = issued_at_violation(issued_at, OffsetDateTime::now_utc()) {
                problems.push(FieldViolation::new("distribution.issued_at", description));
            }
            new.issued_at = issued_at;
        }
        if let Some(method) = patch.delivery_method {
            new.delivery_method = method;
        }
        if let Some(cost) = patch.shipping_cost_in_cents {
            if cost < 0 {
                problems.push(FieldViolation::new(
                    "distribution.shipping_cost_in_cents",
                    "must be 0 or more",
                ));
            }
            new.shipping_cost_in_cents = cost;
        }
        if new.delivery_method != DeliveryMethod::Shipped {
            new.shipping_cost_in_cents = 0;
        }
        if let Some(comment) = patch.comment {
            new.comment = comment;
        }
        if let Some(agency_rep) = patch.agency_rep {
            new.agency_rep = agency_rep;
        }
        if let Some(reminder) = patch.reminder_email_enabled {
            new.reminder_email_enabled = reminder;
        }
        if let Some(lines) = patch.lines {
            let kept: Vec<Line> = lines
                .into_iter()
                .filter(|line| line.quantity != 0)
                .collect();
            new.lines = prepare_lines(&kept, QuantityRule::Positive, &mut problems);
        }
        let mut item_ids: Vec<ItemId> = old
            .lines
            .iter()
            .chain(new.lines.iter())
            .map(|line| line.item_id)
            .collect();
        item_ids.sort();
        item_ids.dedup();
        let changes = distribution_edit_changes(
            old.storage_location_id,
            &old.lines,
            new.storage_location_id,
            &new.lines,
        );
        let raises = changes.iter().any(|change| change.quantity_change > 0);
        // A new location must be active; the one it stays at may have been deactivated since
        // (emptied): editing the comment or date there is fine, giving it stock back is not
        // (`refuse_raises_into_inactive`).
        let moved = new.storage_location_id != old.storage_location_id;
        let new_location: &[(&str, StorageLocationId)] = if moved {
            &[("distribution.storage_location_id", new.storage_location_id)]
        } else {
            &[]
        };
        let context = load_context(
            &mut transaction,
            org,
            &[],
            new_location,
            raises,
            &mut problems,
        )
        .await?;
        let items = repo::catalog::get_items(&mut transaction, org, &item_ids, raises).await?;
        let mut context = with_locations(
            &mut transaction,
            org,
            context,
            &[old.storage_location_id, new.storage_location_id],
            raises,
        )
        .await?;
        context.items = items.into_iter().map(|item| (item.id, item)).collect();
        for (index, line) in new.lines.iter().enumerate() {
            match context.items.get(&line.item_id) {
                None => problems.push(FieldViolation::new(
                    format!("distribution.line_items[{index}].item_id"),
                    "names no item of this bank",
                )),
                Some(item) if !item.active => problems.push(FieldViolation::new(
                    format!("distribution.line_items[{index}].item_id"),
                    format!("{} is inactive", item.name),
                )),
                Some(_) => {}
            }
        }
        if !problems.is_empty() {
            return Err(ServiceError::invalid(prefix_lines(problems)));
        }
        refuse_raises_into_inactive(&changes, &context, &EDIT_REFUSAL)?;
        let mut low_stock = Vec::new();
        if !changes.is_empty() {
            let outcome = move_stock(
                &mut transaction,
                org,
                &changes,
                LedgerSourceRef {
                    source: LedgerSource::DistributionUpdated,
                    source_id: id,
                    effective_at: new.issued_at,
                    user_id: Some(staff.user_id),
                },
                &context,
            )
            .await?;
            low_stock = outcome.low_stock;
        }
        new.updated_at = repo::distributions::update(&mut transaction, org, &new).await?;
        if old.lines != new.lines {
            repo::documents::delete_lines(&mut transaction, org, id).await?;
            repo::documents::insert_lines(&mut transaction, org, id, &new.lines).await?;
        }
        let line_diff = line_changes(&old.lines, &new.lines);
        let issued_date_changed = old.issued_at.date() != new.issued_at.date();
        let method_changed = old.delivery_method != new.delivery_method;
        let updated = DistributionUpdated {
            distribution: Some(snapshot(&new, &partner, &context)),
            changes: line_diff
                .iter()
                .map(|change| DistributionChange {
                    item_id: change.item_id.to_string(),
                    item_name: context
                        .items
                        .get(&change.item_id)
                        .map(|item| item.name.clone())
                        .unwrap_or_default(),
                    kind: match change.kind {
                        LineChangeKind::Added => 1,
                        LineChangeKind::Updated => 2,
                        LineChangeKind::Removed => 3,
                    },
                    old_quantity: change.old_quantity,
                    new_quantity: change.new_quantity,
                })
                .collect(),
            previous_issued_at: (old.issued_at != new.issued_at).then(|| timestamp(old.issued_at)),
            previous_delivery_method: if method_changed {
                delivery_method_proto(old.delivery_method)
            } else {
                0
            },
            previous_storage_location_id: if old.storage_location_id != new.storage_location_id {
                old.storage_location_id.to_string()
            } else {
                String::new()
            },
            notify_partner: partner_should_be_notified(
                issued_date_changed,
                method_changed,
                &line_diff,
            ),
        };
        enqueue(
            &mut transaction,
            &NewEvent::new(Some(org.0), Some(staff.user_id.0), &updated),
        )
        .await?;
        transaction.commit().await?;
        Ok(view(new, &context, low_stock))
    }

    pub async fn complete_distribution(
        &self,
        staff: &Staff,
        id: DocumentId,
    ) -> Result<DistributionView, ServiceError> {
        let org = staff.organization_id;
        let current = self.get_distribution(Reader::Staff(org), id).await?;
        if current.distribution.state == DistributionState::Complete {
            return Err(already_complete());
        }
        let partner = self
            .partner_info(&staff.principal, current.distribution.partner_id)
            .await?;
        let mut transaction = self.pool.begin().await?;
        let mut distribution = repo::distributions::get(&mut transaction, org, id, true)
            .await?
            .ok_or_else(|| ServiceError::not_found("distribution"))?;
        if distribution.state == DistributionState::Complete {
            return Err(already_complete());
        }
        distribution.state = DistributionState::Complete;
        distribution.updated_at =
            repo::distributions::update(&mut transaction, org, &distribution).await?;
        let context = self
            .items_context(&mut transaction, org, &distribution.lines)
            .await?;
        let context = with_locations(
            &mut transaction,
            org,
            context,
            &[distribution.storage_location_id],
            false,
        )
        .await?;
        let completed = DistributionCompleted {
            distribution: Some(snapshot(&distribution, &partner, &context)),
        };
        enqueue(
            &mut transaction,
            &NewEvent::new(Some(org.0), Some(staff.user_id.0), &completed),
        )
        .await?;
        transaction.commit().await?;
        Ok(view(distribution, &context, Vec::new()))
    }

    /// Deletes the distribution and returns its stock to its location.
    pub async fn reclaim_distribution(
        &self,
        staff: &Staff,
        id: DocumentId,
    ) -> Result<DistributionView, ServiceError> {
        let org = staff.organization_id;
        let current = self.get_distribution(Reader::Staff(org), id).await?;
        let partner = self
            .partner_info(&staff.principal, current.distribution.partner_id)
            .await?;
        let mut transaction = self.pool.begin().await?;
        let distribution = repo::distributions::get(&mut transaction, org, id, true)
            .await?
            .ok_or_else(|| ServiceError::not_found("distribution"))?;
        // Stock comes back, so the items and the location are share-locked (as for any raise):
        // deactivating either needs it empty, and this keeps that true until we commit.
        let item_ids: Vec<ItemId> = distribution.lines.iter().map(|l| l.item_id).collect();
        let items = repo::catalog::get_items(&mut transaction, org, &item_ids, true).await?;
        let context = with_locations(
            &mut transaction,
            org,
            StockContext {
                items: items.into_iter().map(|item| (item.id, item)).collect(),
                ..StockContext::default()
            },
            &[distribution.storage_location_id],
            true,
        )
        .await?;
        let changes = into_changes(distribution.storage_location_id, &distribution.lines, 1);
        refuse_raises_into_inactive(&changes, &context, &RECLAIM_REFUSAL)?;
        move_stock(
            &mut transaction,
            org,
            &changes,
            LedgerSourceRef {
                source: LedgerSource::DistributionReclaimed,
                source_id: id,
                effective_at: OffsetDateTime::now_utc(),
                user_id: Some(staff.user_id),
            },
            &context,
        )
        .await?;
        repo::documents::delete_document(&mut transaction, org, DocumentTable::Distribution, id)
            .await?;
        let reclaimed = DistributionReclaimed {
            distribution: Some(snapshot(&distribution, &partner, &context)),
        };
        enqueue(
            &mut transaction,
            &NewEvent::new(Some(org.0), Some(staff.user_id.0), &reclaimed),
        )
        .await?;
        transaction.commit().await?;
        Ok(view(distribution, &context, Vec::new()))
    }

    async fn items_context(
        &self,
        connection: &mut sqlx::PgConnection,
        org: OrganizationId,
        lines: &[Line],
    ) -> Result<StockContext, ServiceError> {
        let mut item_ids: Vec<ItemId> = lines.iter().map(|line| line.item_id).collect();
        item_ids.sort();
        item_ids.dedup();
        let items = repo::catalog::get_items(connection, org, &item_ids, false).await?;
        Ok(StockContext {
            items: items.into_iter().map(|item| (item.id, item)).collect(),
            ..StockContext::default()
        })
    }
}

/// How a refusal to put stock back into a deactivated item or location is worded.
struct InactiveRefusal {
    items: fn(&str) -> String,
    location: fn(&str) -> String,
}

/// A reclaim, in the reference's words: it disables Reclaim for distributions with inactive
/// items, and a deactivated location must stay empty (that is what let it be deactivated).
const RECLAIM_REFUSAL: InactiveRefusal = InactiveRefusal {
    items: |names| {
        format!(
            "Reclaim failed: the following items are currently inactive: {names}. Reactivate them, then reclaim the distribution."
        )
    },
    location: |name| {
        format!(
            "Reclaim failed: {name} is deactivated. Reactivate it, then reclaim the distribution."
        )
    },
};

const EDIT_REFUSAL: InactiveRefusal = InactiveRefusal {
    items: |names| {
        format!("The edit would return stock of inactive items: {names}. Reactivate them first.")
    },
    location: |name| {
        format!("The edit would return stock to {name}, which is deactivated. Reactivate it first.")
    },
};

/// Stock given back (a reclaim; an edit's smaller quantity, removed line or other location) must
/// not go into a deactivated location or item: they stay empty. Nothing has changed yet.
fn refuse_raises_into_inactive(
    changes: &[crate::domain::StockChange],
    context: &StockContext,
    wording: &InactiveRefusal,
) -> Result<(), ServiceError> {
    let raises = || changes.iter().filter(|change| change.quantity_change > 0);
    let mut inactive_items: Vec<&str> = raises()
        .filter_map(|change| context.items.get(&change.item_id))
        .filter(|item| !item.active)
        .map(|item| item.name.as_str())
        .collect();
    inactive_items.sort_unstable();
    inactive_items.dedup();
    if !inactive_items.is_empty() {
        return Err(InventoryError::ItemsInactive {
            message: (wording.items)(&inactive_items.join(", ")),
        }
        .into());
    }
    let inactive_location = raises()
        .filter_map(|change| context.locations.get(&change.storage_location_id))
        .find(|location| !location.active);
    match inactive_location {
        Some(location) => Err(InventoryError::LocationInactive {
            message: (wording.location)(&location.name),
        }
        .into()),
        None => Ok(()),
    }
}

fn already_complete() -> ServiceError {
    InventoryError::DistributionAlreadyComplete.into()
}

fn partner_error(status: &tonic::Status) -> ServiceError {
    match status.code() {
        tonic::Code::NotFound | tonic::Code::InvalidArgument => {
            ServiceError::invalid(vec![FieldViolation::new(
                "distribution.partner_id",
                "names no partner of this bank",
            )])
        }
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
            ServiceError::from_status(status)
        }
        _ => unavailable("partner"),
    }
}

/// Line violations are reported under the distribution.
fn prefix_lines(problems: Vec<FieldViolation>) -> Vec<FieldViolation> {
    problems
        .into_iter()
        .map(|problem| {
            if problem.field.starts_with("line_items") {
                FieldViolation::new(
                    format!("distribution.{}", problem.field),
                    problem.description,
                )
            } else {
                problem
            }
        })
        .collect()
}

fn inactive_items(lines: &[Line], context: &StockContext, problems: &mut Vec<FieldViolation>) {
    for (index, line) in lines.iter().enumerate() {
        if let Some(item) = context.items.get(&line.item_id)
            && !item.active
        {
            problems.push(FieldViolation::new(
                format!("line_items[{index}].item_id"),
                format!("{} is inactive", item.name),
            ));
        }
    }
}

fn view(
    distribution: Distribution,
    context: &StockContext,
    low_stock: Vec<LowStock>,
) -> DistributionView {
    let total_quantity = distribution.lines.iter().map(|line| line.quantity).sum();
    let total_value_in_cents = total_value(&distribution.lines, context);
    DistributionView {
        distribution,
        total_quantity,
        total_value_in_cents,
        low_stock,
    }
}

/// The distribution with everything its e-mails need.
fn snapshot(
    distribution: &Distribution,
    partner: &PartnerInfo,
    context: &StockContext,
) -> DistributionSnapshot {
    let location = context.locations.get(&distribution.storage_location_id);
    DistributionSnapshot {
        distribution_id: distribution.id.to_string(),
        bank: Some(partner.bank.clone()),
        partner: Some(partner.partner.clone()),
        pick_up_emails: partner.pick_up_emails.clone(),
        request_id: distribution
            .request_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        requester: distribution.requester.as_ref().map(|requester| PersonRef {
            user_id: requester
                .user_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            name: requester.name.clone(),
            email: requester.email.clone(),
        }),
        storage_location_id: distribution.storage_location_id.to_string(),
        storage_location_name: location.map(|l| l.name.clone()).unwrap_or_default(),
        time_zone: location.map(|l| l.time_zone.clone()).unwrap_or_default(),
        issued_at: Some(timestamp(distribution.issued_at)),
        delivery_method: delivery_method_proto(distribution.delivery_method),
        shipping_cost_in_cents: distribution.shipping_cost_in_cents,
        comment: distribution.comment.clone(),
        agency_rep: distribution.agency_rep.clone(),
        state: distribution_state_proto(distribution.state),
        reminder_email_enabled: distribution.reminder_email_enabled,
        items: item_lines(&distribution.lines, context),
        total_quantity: distribution.lines.iter().map(|line| line.quantity).sum(),
        total_value_in_cents: total_value(&distribution.lines, context),
        default_email_text: partner.default_email_text.clone(),
        created_at: Some(timestamp(distribution.created_at)),
    }
}
