//! Event handlers: the second entry point beside the gRPC services.

use essentials_proto::events::v1::OrganizationCreated;
use essentials_runtime::bus::{EventHandler, HandlerError, ReceivedEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::OrganizationId;
use crate::service::Inventory;

/// `organization.created`: a new bank starts with one item per base item.
pub struct OrganizationEvents;

impl EventHandler for OrganizationEvents {
    async fn handle(
        &self,
        transaction: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let created: OrganizationCreated = event.payload()?;
        let from_payload = created
            .bank
            .as_ref()
            .and_then(|bank| Uuid::parse_str(&bank.organization_id).ok());
        let Some(organization_id) = from_payload.or(event.organization_id) else {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "organization.created {} names no organization",
                event.id
            )));
        };
        let added =
            Inventory::seed_base_items(transaction, OrganizationId(organization_id)).await?;
        tracing::info!(%organization_id, added, "seeded the base items of a new bank");
        Ok(())
    }
}
