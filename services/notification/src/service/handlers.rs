//! Event handlers, the part's second entry point beside grpc.rs. Each runs inside the consumer's
//! transaction, with the `processed_event` row: its effects happen once per event.

use essentials_proto::events::EventPayload;
use essentials_proto::events::v1 as events;
use essentials_runtime::bus::{HandlerError, ReceivedEvent};
use prost::Message;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::dashboard::{RequestStatus, distribution_state_name};
use crate::domain::emails::{self, MailContext, OutgoingEmail, to_datetime};
use crate::{repo, service};

/// Events that may cause e-mails.
pub const EMAIL_EVENTS: &[&str] = &[
    events::UserInvited::EVENT_TYPE,
    events::UserRoleAdded::EVENT_TYPE,
    events::UserPasswordResetRequested::EVENT_TYPE,
    events::PartnerInvited::EVENT_TYPE,
    events::PartnerApprovalRequested::EVENT_TYPE,
    events::PartnerApproved::EVENT_TYPE,
    events::PartnerRecertificationRequested::EVENT_TYPE,
    events::RequestCreated::EVENT_TYPE,
    events::RequestCancelled::EVENT_TYPE,
    events::DistributionCreated::EVENT_TYPE,
    events::DistributionUpdated::EVENT_TYPE,
    events::PartnerDeadlineReminderDue::EVENT_TYPE,
];

/// Events that change the dashboard (and the distributions the reminders read).
pub const DASHBOARD_EVENTS: &[&str] = &[
    events::RequestCreated::EVENT_TYPE,
    events::RequestStarted::EVENT_TYPE,
    events::RequestFulfilled::EVENT_TYPE,
    events::RequestCancelled::EVENT_TYPE,
    events::PartnerApprovalRequested::EVENT_TYPE,
    events::PartnerApproved::EVENT_TYPE,
    events::PartnerRecertificationRequested::EVENT_TYPE,
    events::PartnerDeactivated::EVENT_TYPE,
    events::PartnerReactivated::EVENT_TYPE,
    events::StockChanged::EVENT_TYPE,
    events::StockLow::EVENT_TYPE,
    events::DistributionCreated::EVENT_TYPE,
    events::DistributionUpdated::EVENT_TYPE,
    events::DistributionCompleted::EVENT_TYPE,
    events::DistributionReclaimed::EVENT_TYPE,
];

fn parse_id(text: &str, what: &str, event: &ReceivedEvent) -> Result<Uuid, HandlerError> {
    Uuid::parse_str(text).map_err(|_| {
        HandlerError::Permanent(anyhow::anyhow!(
            "event {} ({}) has no valid {what}: {text:?}",
            event.id,
            event.event_type
        ))
    })
}

fn optional_id(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text).ok()
}

/// The bank an event belongs to: the envelope's, else the payload's bank; e-mails of events with
/// neither (a super admin's password reset) are logged under the nil id.
fn bank_of(event: &ReceivedEvent, bank: Option<&events::BankRef>) -> Uuid {
    event
        .organization_id
        .or_else(|| bank.and_then(|bank| optional_id(&bank.organization_id)))
        .unwrap_or(Uuid::nil())
}

fn occurred_at(event: &ReceivedEvent) -> OffsetDateTime {
    to_datetime(event.occurred_at.as_ref()).unwrap_or_else(OffsetDateTime::now_utc)
}

/// Writes each e-mail an event causes to the log (pending); the sender sends it.
pub struct EmailHandler {
    pub public_url: String,
}

impl EmailHandler {
    /// The e-mail an event causes, and the bank it belongs to.
    pub fn emails_for(
        &self,
        event: &ReceivedEvent,
        now: OffsetDateTime,
    ) -> Result<(Uuid, Option<OutgoingEmail>), HandlerError> {
        let context = MailContext {
            public_url: self.public_url.clone(),
            now,
        };
        let result = match event.event_type.as_str() {
            events::UserInvited::EVENT_TYPE => {
                let payload: events::UserInvited = event.payload()?;
                (
                    bank_of(event, payload.bank.as_ref()),
                    emails::user_invited(&payload, &context),
                )
            }
            events::UserRoleAdded::EVENT_TYPE => {
                let payload: events::UserRoleAdded = event.payload()?;
                (bank_of(event, None), emails::role_added(&payload, &context))
            }
            events::UserPasswordResetRequested::EVENT_TYPE => {
                let payload: events::UserPasswordResetRequested = event.payload()?;
                (
                    bank_of(event, None),
                    emails::password_reset(&payload, &context),
                )
            }
            events::PartnerInvited::EVENT_TYPE => {
                let payload: events::PartnerInvited = event.payload()?;
                (
                    bank_of(event, payload.bank.as_ref()),
                    emails::partner_invited(&payload, &context),
                )
            }
            events::PartnerApprovalRequested::EVENT_TYPE => {
                let payload: events::PartnerApprovalRequested = event.payload()?;
                (
                    bank_of(event, payload.bank.as_ref()),
                    emails::approval_requested(&payload, &context),
                )
            }
            events::PartnerApproved::EVENT_TYPE => {
                let payload: events::PartnerApproved = event.payload()?;
                (
                    bank_of(event, payload.bank.as_ref()),
                    emails::application_approved(&payload, &context),
                )
            }
            events::PartnerRecertificationRequested::EVENT_TYPE => {
                let payload: events::PartnerRecertificationRequested = event.payload()?;
                (
                    bank_of(event, payload.bank.as_ref()),
                    emails::recertification_requested(&payload, &context),
                )
            }
            events::RequestCreated::EVENT_TYPE => {
                let payload: events::RequestCreated = event.payload()?;
                (
                    bank_of(event, payload.bank.as_ref()),
                    emails::request_confirmation(&payload, &context),
                )
            }
            events::RequestCancelled::EVENT_TYPE => {
                let payload: events::RequestCancelled = event.payload()?;
                (
                    bank_of(event, payload.bank.as_ref()),
                    emails::request_cancelled(&payload, &context),
                )
            }
            events::DistributionCreated::EVENT_TYPE => {
                let payload: events::DistributionCreated = event.payload()?;
                let bank = payload.distribution.as_ref().and_then(|d| d.bank.as_ref());
                (
                    bank_of(event, bank),
                    emails::distribution_created(&payload, &context),
                )
            }
            events::DistributionUpdated::EVENT_TYPE => {
                let payload: events::DistributionUpdated = event.payload()?;
                let bank = payload.distribution.as_ref().and_then(|d| d.bank.as_ref());
                (
                    bank_of(event, bank),
                    emails::distribution_changed(&payload, &context),
                )
            }
            // partner.deadline_reminder_due is logged by `log_deadline_reminder`, not here.
            _ => (bank_of(event, None), None),
        };
        Ok(result)
    }
}

impl EmailHandler {
    /// `partner.deadline_reminder_due`: logged through the same function as RunDueReminders'
    /// deadline reminders, under the same (bank, partner, day) key, so the on-demand run and the
    /// event can never both send one reminder.
    async fn log_deadline_reminder(
        &self,
        transaction: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let payload: events::PartnerDeadlineReminderDue = event.payload()?;
        let due = emails::due_deadline_reminder(&payload).map_err(|problem| {
            HandlerError::Permanent(anyhow::anyhow!(
                "event {} ({}) {problem}",
                event.id,
                event.event_type
            ))
        })?;
        let Some(due) = due else {
            tracing::debug!(event_id = %event.id, "no deadline reminder for this event");
            return Ok(());
        };
        let organization_id = bank_of(event, payload.bank.as_ref());
        let logged =
            service::log_deadline_reminder(transaction, organization_id, &due, Some(event.id))
                .await?;
        if !logged {
            tracing::info!(
                partner_id = %due.partner_id,
                day = %due.day,
                "deadline reminder already logged (by RunDueReminders or an earlier event)"
            );
        }
        Ok(())
    }
}

impl essentials_runtime::bus::EventHandler for EmailHandler {
    async fn handle(
        &self,
        transaction: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        if event.event_type == events::PartnerDeadlineReminderDue::EVENT_TYPE {
            return self.log_deadline_reminder(transaction, event).await;
        }
        let (organization_id, outgoing) = self.emails_for(event, OffsetDateTime::now_utc())?;
        let Some(outgoing) = outgoing else {
            tracing::debug!(event_type = %event.event_type, "no e-mail for this event");
            return Ok(());
        };
        let (dedupe_key, event_type) = log_key(event, &outgoing);
        let inserted = repo::insert_email(
            transaction,
            organization_id,
            &dedupe_key,
            Some(event.id),
            event_type,
            &outgoing,
        )
        .await?;
        if !inserted {
            tracing::info!(%dedupe_key, "e-mail already logged; not sending it again");
        }
        Ok(())
    }
}

/// The e-mail's key in the log and its event_type there (deadline reminders have their own key,
/// see `service::deadline_reminder_key`).
fn log_key(event: &ReceivedEvent, outgoing: &OutgoingEmail) -> (String, &'static str) {
    let event_type = EMAIL_EVENTS
        .iter()
        .copied()
        .find(|known| *known == event.event_type)
        .unwrap_or("unknown");
    (format!("{}/{}", event.id, outgoing.template), event_type)
}

/// Keeps the dashboard projection (and the distributions the reminders need).
pub struct DashboardHandler;

fn partner_review(
    partner: Option<&events::PartnerRef>,
    awaiting_review: bool,
    event: &ReceivedEvent,
) -> Result<repo::PartnerReview, HandlerError> {
    let partner = partner.cloned().unwrap_or_default();
    Ok(repo::PartnerReview {
        partner_id: parse_id(&partner.partner_id, "partner id", event)?,
        name: partner.name,
        primary_contact_name: String::new(),
        primary_contact_email: String::new(),
        awaiting_review,
        review_requested_at: None,
        as_of: occurred_at(event),
    })
}

async fn record_snapshot(
    transaction: &mut PgConnection,
    organization_id: Uuid,
    snapshot: Option<&events::DistributionSnapshot>,
    state_override: Option<&str>,
    event: &ReceivedEvent,
) -> Result<(), HandlerError> {
    let Some(snapshot) = snapshot else {
        return Err(HandlerError::Permanent(anyhow::anyhow!(
            "event {} has no distribution",
            event.id
        )));
    };
    let distribution_id = parse_id(&snapshot.distribution_id, "distribution id", event)?;
    let issued_at = to_datetime(snapshot.issued_at.as_ref()).unwrap_or_else(|| occurred_at(event));
    let state = state_override.unwrap_or(distribution_state_name(snapshot.state()));
    repo::record_distribution(
        transaction,
        organization_id,
        distribution_id,
        issued_at,
        state,
        &snapshot.encode_to_vec(),
        occurred_at(event),
    )
    .await?;
    Ok(())
}

impl essentials_runtime::bus::EventHandler for DashboardHandler {
    async fn handle(
        &self,
        transaction: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let Some(organization_id) = event.organization_id else {
            tracing::warn!(event_id = %event.id, event_type = %event.event_type, "event without a bank; ignored by the dashboard");
            return Ok(());
        };
        match event.event_type.as_str() {
            events::RequestCreated::EVENT_TYPE => {
                let payload: events::RequestCreated = event.payload()?;
                let partner = payload.partner.clone().unwrap_or_default();
                let requester = payload.requester.clone().unwrap_or_default();
                let request = repo::NewRequest {
                    request_id: parse_id(&payload.request_id, "request id", event)?,
                    partner_id: optional_id(&partner.partner_id),
                    partner_name: partner.name,
                    requester_name: requester.name,
                    requester_email: requester.email,
                    comments: payload.comments,
                    created_at: occurred_at(event),
                };
                repo::record_request_created(transaction, organization_id, &request).await?;
            }
            events::RequestStarted::EVENT_TYPE => {
                let payload: events::RequestStarted = event.payload()?;
                let request_id = parse_id(&payload.request_id, "request id", event)?;
                repo::advance_request(
                    transaction,
                    organization_id,
                    request_id,
                    RequestStatus::Started,
                )
                .await?;
            }
            events::RequestFulfilled::EVENT_TYPE => {
                let payload: events::RequestFulfilled = event.payload()?;
                let request_id = parse_id(&payload.request_id, "request id", event)?;
                repo::advance_request(
                    transaction,
                    organization_id,
                    request_id,
                    RequestStatus::Fulfilled,
                )
                .await?;
            }
            events::RequestCancelled::EVENT_TYPE => {
                let payload: events::RequestCancelled = event.payload()?;
                let request_id = parse_id(&payload.request_id, "request id", event)?;
                repo::advance_request(
                    transaction,
                    organization_id,
                    request_id,
                    RequestStatus::Cancelled,
                )
                .await?;
            }
            events::PartnerApprovalRequested::EVENT_TYPE => {
                let payload: events::PartnerApprovalRequested = event.payload()?;
                let mut review = partner_review(payload.partner.as_ref(), true, event)?;
                review.primary_contact_name = payload.primary_contact_name;
                review.primary_contact_email = payload.primary_contact_email;
                review.review_requested_at =
                    to_datetime(payload.review_requested_at.as_ref()).or(Some(review.as_of));
                repo::record_partner_review(transaction, organization_id, &review).await?;
            }
            events::PartnerApproved::EVENT_TYPE => {
                let payload: events::PartnerApproved = event.payload()?;
                let review = partner_review(payload.partner.as_ref(), false, event)?;
                repo::record_partner_review(transaction, organization_id, &review).await?;
            }
            events::PartnerRecertificationRequested::EVENT_TYPE => {
                let payload: events::PartnerRecertificationRequested = event.payload()?;
                let review = partner_review(payload.partner.as_ref(), false, event)?;
                repo::record_partner_review(transaction, organization_id, &review).await?;
            }
            events::PartnerDeactivated::EVENT_TYPE => {
                let payload: events::PartnerDeactivated = event.payload()?;
                let review = partner_review(payload.partner.as_ref(), false, event)?;
                repo::record_partner_review(transaction, organization_id, &review).await?;
            }
            events::PartnerReactivated::EVENT_TYPE => {
                let payload: events::PartnerReactivated = event.payload()?;
                let review = partner_review(payload.partner.as_ref(), false, event)?;
                repo::record_partner_review(transaction, organization_id, &review).await?;
            }
            events::StockChanged::EVENT_TYPE => {
                let payload: events::StockChanged = event.payload()?;
                for level in payload.levels {
                    let stock = repo::StockLevel {
                        item_id: parse_id(&level.item_id, "item id", event)?,
                        name: level.item_name,
                        quantity: level.bank_wide_quantity,
                        minimum: level.on_hand_minimum_quantity,
                        recommended: level.on_hand_recommended_quantity,
                        as_of: occurred_at(event),
                    };
                    repo::record_stock_level(transaction, organization_id, &stock).await?;
                }
            }
            events::StockLow::EVENT_TYPE => {
                let payload: events::StockLow = event.payload()?;
                for item in payload.items {
                    let stock = repo::StockLevel {
                        item_id: parse_id(&item.item_id, "item id", event)?,
                        name: item.item_name,
                        quantity: item.bank_wide_quantity,
                        minimum: item.on_hand_minimum_quantity,
                        recommended: item.on_hand_recommended_quantity,
                        as_of: occurred_at(event),
                    };
                    repo::record_stock_level(transaction, organization_id, &stock).await?;
                }
            }
            events::DistributionCreated::EVENT_TYPE => {
                let payload: events::DistributionCreated = event.payload()?;
                record_snapshot(
                    transaction,
                    organization_id,
                    payload.distribution.as_ref(),
                    None,
                    event,
                )
                .await?;
            }
            events::DistributionUpdated::EVENT_TYPE => {
                let payload: events::DistributionUpdated = event.payload()?;
                record_snapshot(
                    transaction,
                    organization_id,
                    payload.distribution.as_ref(),
                    None,
                    event,
                )
                .await?;
            }
            events::DistributionCompleted::EVENT_TYPE => {
                let payload: events::DistributionCompleted = event.payload()?;
                record_snapshot(
                    transaction,
                    organization_id,
                    payload.distribution.as_ref(),
                    Some("complete"),
                    event,
                )
                .await?;
            }
            events::DistributionReclaimed::EVENT_TYPE => {
                let payload: events::DistributionReclaimed = event.payload()?;
                record_snapshot(
                    transaction,
                    organization_id,
                    payload.distribution.as_ref(),
                    Some("reclaimed"),
                    event,
                )
                .await?;
            }
            _ => return Ok(()),
        }
        repo::bump_dashboard_version(transaction, organization_id).await?;
        Ok(())
    }
}
