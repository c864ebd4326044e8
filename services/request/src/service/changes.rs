//! Changing a request: the bank fulfils (pending or started → started, with a distribution
//! draft) or cancels it; a partner user withdraws its own pending request. The terminal states
//! are refused before any other part is asked, and again under the row lock.

use essentials_proto::events::v1 as events;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::Principal;
use essentials_runtime::bus::{NewEvent, enqueue};
use time::OffsetDateTime;
use uuid::Uuid;

use super::*;
use crate::domain::{self, RequestError, RequestStatus};
use crate::repo::{self, RequestRow};

impl App {
    // ---- changing -----------------------------------------------------------------------------

    /// Reads an open request of the caller's bank, refusing terminal ones before asking anyone.
    async fn open_request(
        &self,
        organization_id: Uuid,
        id: Uuid,
        partner_id: Option<Uuid>,
        check: fn(RequestStatus) -> Result<RequestStatus, RequestError>,
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
            return Err(RequestError::NotFulfillable {
                status: RequestStatus::Fulfilled,
            }
            .into());
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
            return Err(RequestError::NotCancellable {
                status: RequestStatus::Cancelled,
            }
            .into());
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
