//! DistributionService.

use essentials_proto::inventory::v1 as pb;
use essentials_proto::inventory::v1::distribution_service_server::DistributionService;
use essentials_runtime::auth::principal;
use tonic::{Request, Response, Status};

use super::convert::{self, next_token};
use super::{InventoryApi, check, idempotency_key, mask_paths, staff};
use crate::domain::{DeliveryMethod, DocumentId, PartnerId, StorageLocationId};
use crate::repo::distributions::DistributionFilter;
use crate::repo::documents::IssuedCursor;
use crate::service::distributions::{DistributionPatch, NewDistribution, Reader};
use crate::service::{Inventory, page_limit};

const WRITABLE: &[&str] = &[
    "storage_location_id",
    "issued_at",
    "delivery_method",
    "shipping_cost_in_cents",
    "comment",
    "agency_rep",
    "reminder_email_enabled",
    "line_items",
];

fn distribution_id(text: &str) -> Result<DocumentId, Status> {
    Ok(DocumentId(convert::resource_id(text, "distribution")?))
}

#[tonic::async_trait]
impl DistributionService for InventoryApi {
    async fn create_distribution(
        &self,
        request: Request<pb::CreateDistributionRequest>,
    ) -> Result<Response<pb::CreateDistributionResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let distribution = message.distribution.unwrap_or_default();
        let mut problems = Vec::new();
        let input = NewDistribution {
            partner_id: PartnerId(convert::required_id(
                "distribution.partner_id",
                &distribution.partner_id,
                &mut problems,
            )),
            storage_location_id: StorageLocationId(convert::required_id(
                "distribution.storage_location_id",
                &distribution.storage_location_id,
                &mut problems,
            )),
            issued_at: convert::optional_timestamp(
                "distribution.issued_at",
                distribution.issued_at.as_ref(),
                &mut problems,
            ),
            delivery_method: convert::delivery_method(
                "distribution.delivery_method",
                distribution.delivery_method,
                &mut problems,
            )
            .unwrap_or(DeliveryMethod::PickUp),
            shipping_cost_in_cents: distribution.shipping_cost_in_cents,
            comment: distribution.comment,
            agency_rep: distribution.agency_rep,
            request_id: convert::optional_id(
                "distribution.request_id",
                &distribution.request_id,
                &mut problems,
            ),
            reminder_email_enabled: distribution.reminder_email_enabled,
            lines: convert::lines(
                "distribution.line_items",
                &distribution.line_items,
                &mut problems,
            ),
        };
        check(problems)?;
        let created = self
            .inventory
            .create_distribution(&staff, input, idempotency_key(&message.request_id))
            .await?;
        Ok(Response::new(pb::CreateDistributionResponse {
            distribution: Some(convert::distribution(&created)),
            low_stock_warnings: convert::low_stock_warnings(&created),
        }))
    }

    async fn get_distribution(
        &self,
        request: Request<pb::GetDistributionRequest>,
    ) -> Result<Response<pb::GetDistributionResponse>, Status> {
        let reader = Reader::from_principal(&principal(&request)?)?;
        let id = distribution_id(&request.get_ref().distribution_id)?;
        let found = self.inventory.get_distribution(reader, id).await?;
        Ok(Response::new(pb::GetDistributionResponse {
            distribution: Some(convert::distribution(&found)),
        }))
    }

    async fn list_distributions(
        &self,
        request: Request<pb::ListDistributionsRequest>,
    ) -> Result<Response<pb::ListDistributionsResponse>, Status> {
        let reader = Reader::from_principal(&principal(&request)?)?;
        let message = request.into_inner();
        let mut problems = Vec::new();
        let cursor = convert::issued_cursor(&message.page_token, &mut problems);
        let filter = DistributionFilter {
            partner_id: convert::optional_id("partner_id", &message.partner_id, &mut problems)
                .map(PartnerId),
            storage_location_id: convert::optional_id(
                "storage_location_id",
                &message.storage_location_id,
                &mut problems,
            )
            .map(StorageLocationId),
            state: convert::distribution_state(message.state, &mut problems),
            upcoming_from: message.upcoming.then(Inventory::upcoming_from),
            issued_after: convert::optional_timestamp(
                "issued_after",
                message.issued_after.as_ref(),
                &mut problems,
            ),
            issued_before: convert::optional_timestamp(
                "issued_before",
                message.issued_before.as_ref(),
                &mut problems,
            ),
            request_id: convert::optional_id("request_id", &message.request_id, &mut problems),
        };
        check(problems)?;
        let page = self
            .inventory
            .list_distributions(reader, filter, cursor, page_limit(message.page_size))
            .await?;
        Ok(Response::new(pb::ListDistributionsResponse {
            next_page_token: next_token(&page.items, page.more, |view| {
                convert::issued_token(IssuedCursor {
                    issued_at: view.distribution.issued_at,
                    id: view.distribution.id.0,
                })
            }),
            distributions: page.items.iter().map(convert::distribution).collect(),
        }))
    }

    async fn update_distribution(
        &self,
        request: Request<pb::UpdateDistributionRequest>,
    ) -> Result<Response<pb::UpdateDistributionResponse>, Status> {
        let staff = staff(&request)?;
        let message = request.into_inner();
        let distribution = message.distribution.unwrap_or_default();
        let id = distribution_id(&distribution.id)?;
        let mut problems = Vec::new();
        let paths = mask_paths(message.update_mask.as_ref(), WRITABLE, &mut problems);
        let mut patch = DistributionPatch::default();
        for path in &paths {
            match path.as_str() {
                "storage_location_id" => {
                    patch.storage_location_id = Some(StorageLocationId(convert::required_id(
                        "distribution.storage_location_id",
                        &distribution.storage_location_id,
                        &mut problems,
                    )));
                }
                "issued_at" => {
                    patch.issued_at = convert::optional_timestamp(
                        "distribution.issued_at",
                        distribution.issued_at.as_ref(),
                        &mut problems,
                    );
                }
                "delivery_method" => {
                    patch.delivery_method = convert::delivery_method(
                        "distribution.delivery_method",
                        distribution.delivery_method,
                        &mut problems,
                    );
                }
                "shipping_cost_in_cents" => {
                    patch.shipping_cost_in_cents = Some(distribution.shipping_cost_in_cents);
                }
                "comment" => patch.comment = Some(distribution.comment.clone()),
                "agency_rep" => patch.agency_rep = Some(distribution.agency_rep.clone()),
                "reminder_email_enabled" => {
                    patch.reminder_email_enabled = Some(distribution.reminder_email_enabled);
                }
                "line_items" => {
                    patch.lines = Some(convert::lines(
                        "distribution.line_items",
                        &distribution.line_items,
                        &mut problems,
                    ));
                }
                _ => {}
            }
        }
        check(problems)?;
        let updated = self
            .inventory
            .update_distribution(&staff, id, patch)
            .await?;
        Ok(Response::new(pb::UpdateDistributionResponse {
            distribution: Some(convert::distribution(&updated)),
            low_stock_warnings: convert::low_stock_warnings(&updated),
        }))
    }

    async fn complete_distribution(
        &self,
        request: Request<pb::CompleteDistributionRequest>,
    ) -> Result<Response<pb::CompleteDistributionResponse>, Status> {
        let staff = staff(&request)?;
        let id = distribution_id(&request.get_ref().distribution_id)?;
        let completed = self.inventory.complete_distribution(&staff, id).await?;
        Ok(Response::new(pb::CompleteDistributionResponse {
            distribution: Some(convert::distribution(&completed)),
        }))
    }

    async fn reclaim_distribution(
        &self,
        request: Request<pb::ReclaimDistributionRequest>,
    ) -> Result<Response<pb::ReclaimDistributionResponse>, Status> {
        let staff = staff(&request)?;
        let id = distribution_id(&request.get_ref().distribution_id)?;
        let reclaimed = self.inventory.reclaim_distribution(&staff, id).await?;
        Ok(Response::new(pb::ReclaimDistributionResponse {
            distribution: Some(convert::distribution(&reclaimed)),
        }))
    }
}
