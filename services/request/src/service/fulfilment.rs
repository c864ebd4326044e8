//! The inventory part's distribution events: a distribution made from a request fulfils it; a
//! reclaimed one leaves it fulfilled and clears its link (the reference's behaviour, DOMAIN.md
//! §5.3). The runner dedupes by event id in this same transaction; the guarded updates make a
//! duplicate or late event (another distribution, a cancelled request) change nothing either.

use essentials_proto::events::EventPayload;
use essentials_proto::events::v1 as events;
use essentials_runtime::bus::{
    ConsumerSpec, EventHandler, HandlerError, NewEvent, ReceivedEvent, enqueue,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::repo;

pub fn spec() -> ConsumerSpec {
    ConsumerSpec {
        consumer: "request".into(),
        purpose: "distribution-events".into(),
        bindings: vec![
            events::DistributionCreated::EVENT_TYPE.into(),
            events::DistributionReclaimed::EVENT_TYPE.into(),
        ],
    }
}

pub struct DistributionEvents;

fn permanent(message: String) -> HandlerError {
    HandlerError::Permanent(anyhow::anyhow!(message))
}

/// The (bank, request, distribution) an event names; `None` for a distribution made without a
/// request.
fn link(
    event: &ReceivedEvent,
    snapshot: Option<events::DistributionSnapshot>,
) -> Result<Option<(Uuid, Uuid, Uuid, events::DistributionSnapshot)>, HandlerError> {
    let snapshot = snapshot
        .ok_or_else(|| permanent(format!("{} without a distribution", event.event_type)))?;
    if snapshot.request_id.is_empty() {
        return Ok(None);
    }
    let organization_id = event
        .organization_id
        .ok_or_else(|| permanent(format!("{} without a bank", event.event_type)))?;
    let request_id = Uuid::parse_str(&snapshot.request_id)
        .map_err(|error| permanent(format!("bad request id: {error}")))?;
    let distribution_id = Uuid::parse_str(&snapshot.distribution_id)
        .map_err(|error| permanent(format!("bad distribution id: {error}")))?;
    Ok(Some((
        organization_id,
        request_id,
        distribution_id,
        snapshot,
    )))
}

impl EventHandler for DistributionEvents {
    async fn handle(
        &self,
        transaction: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        match event.event_type.as_str() {
            events::DistributionCreated::EVENT_TYPE => {
                let created = event.payload::<events::DistributionCreated>()?;
                let Some((organization_id, request_id, distribution_id, snapshot)) =
                    link(event, created.distribution)?
                else {
                    return Ok(());
                };
                let fulfilled =
                    repo::fulfil(transaction, organization_id, request_id, distribution_id).await?;
                let Some(row) = fulfilled else {
                    tracing::info!(
                        %request_id, %distribution_id,
                        "distribution.created for a request that is not open (or not ours): nothing to do"
                    );
                    return Ok(());
                };
                let partner = snapshot.partner.unwrap_or_else(|| events::PartnerRef {
                    partner_id: row.partner_id.to_string(),
                    ..Default::default()
                });
                enqueue(
                    transaction,
                    &NewEvent::new(
                        Some(organization_id),
                        event.actor_user_id,
                        &events::RequestFulfilled {
                            request_id: request_id.to_string(),
                            distribution_id: distribution_id.to_string(),
                            partner: Some(partner),
                        },
                    ),
                )
                .await?;
                Ok(())
            }
            events::DistributionReclaimed::EVENT_TYPE => {
                let reclaimed = event.payload::<events::DistributionReclaimed>()?;
                let Some((organization_id, request_id, distribution_id, _)) =
                    link(event, reclaimed.distribution)?
                else {
                    return Ok(());
                };
                repo::clear_distribution(transaction, organization_id, request_id, distribution_id)
                    .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
