//! Counts requests and distributions made for each partner, from the request and inventory
//! parts' events: a partner with either is not deletable.

use essentials_proto::events::EventPayload;
use essentials_proto::events::v1 as events;
use essentials_runtime::bus::{ConsumerSpec, EventHandler, HandlerError, ReceivedEvent};
use sqlx::PgConnection;
use uuid::Uuid;

pub fn spec() -> ConsumerSpec {
    ConsumerSpec {
        consumer: "partner".into(),
        purpose: "activity".into(),
        bindings: vec![
            events::RequestCreated::EVENT_TYPE.into(),
            events::DistributionCreated::EVENT_TYPE.into(),
        ],
    }
}

pub struct ActivityHandler;

impl EventHandler for ActivityHandler {
    async fn handle(
        &self,
        transaction: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let (partner, column) = match event.event_type.as_str() {
            events::RequestCreated::EVENT_TYPE => (
                event.payload::<events::RequestCreated>()?.partner,
                "requests",
            ),
            events::DistributionCreated::EVENT_TYPE => (
                event
                    .payload::<events::DistributionCreated>()?
                    .distribution
                    .and_then(|distribution| distribution.partner),
                "distributions",
            ),
            _ => return Ok(()),
        };
        let (Some(partner), Some(organization_id)) = (partner, event.organization_id) else {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "{} without a partner or a bank",
                event.event_type
            )));
        };
        let partner_id = Uuid::parse_str(&partner.partner_id)
            .map_err(|error| HandlerError::Permanent(error.into()))?;
        // Only a partner of that bank counts; an unknown one (deleted since) is ignored.
        let statement = format!(
            "INSERT INTO partner_activity (partner_id, organization_id, {column})
             SELECT id, organization_id, 1 FROM partner WHERE id = $1 AND organization_id = $2
             ON CONFLICT (partner_id) DO UPDATE SET {column} = partner_activity.{column} + 1"
        );
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(partner_id)
            .bind(organization_id)
            .execute(transaction)
            .await?;
        Ok(())
    }
}
