//! The parts that own what this part projects, asked over gRPC on the caller's behalf: the
//! caller's token is forwarded, so each part scopes its answer to the caller's bank exactly as it
//! would for the caller, and refuses what the caller may not see. RebuildDashboard reads through
//! here, and so does RunDueReminders for the deadline reminders due on a day.

use std::collections::HashMap;
use std::future::Future;

use essentials_proto::inventory::v1 as inventory;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::inventory::v1::distribution_service_client::DistributionServiceClient;
use essentials_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use essentials_proto::inventory::v1::storage_location_service_client::StorageLocationServiceClient;
use essentials_proto::partner::v1 as partner;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::request::v1 as request;
use essentials_proto::request::v1::request_service_client::RequestServiceClient;
use essentials_runtime::auth::{Principal, forward};
use essentials_runtime::{ServiceError, Settings};
use time::Date;
use tonic::transport::Channel;
use uuid::Uuid;

/// The largest page every owning part serves.
const PAGE_SIZE: i32 = 500;
/// BatchGetPartners takes at most this many ids.
const BATCH_GET_LIMIT: usize = 1000;

/// Channels to the partner, request and inventory parts.
#[derive(Clone)]
pub struct Owners {
    partner: Channel,
    request: Channel,
    inventory: Channel,
}

/// A failure of another part, as our caller should see it: a refusal is theirs to see (the
/// forwarded token lacked the right), anything else means the part is not answering properly now.
fn upstream_error(part: &str, status: &tonic::Status) -> ServiceError {
    match status.code() {
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
            ServiceError::from_status(status)
        }
        // Our question was malformed: our bug, not the caller's.
        tonic::Code::InvalidArgument => ServiceError::internal(format!(
            "the {part} part refused our question: {}",
            status.message()
        )),
        _ => ServiceError::part_unavailable(part, status),
    }
}

/// Every page of a list: `fetch` gets a page token and answers (rows, next token).
async fn all_pages<T, F, Fut>(part: &str, mut fetch: F) -> Result<Vec<T>, ServiceError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    // More pages than any bank has rows at the largest page size: a part cycling through tokens.
    const MAX_PAGES: usize = 10_000;
    let mut rows = Vec::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let (page, next) = fetch(token.clone())
            .await
            .map_err(|status| upstream_error(part, &status))?;
        rows.extend(page);
        if next.is_empty() {
            return Ok(rows);
        }
        // A part that hands back the token it was given would keep us here for ever.
        if next == token {
            return Err(ServiceError::internal(format!(
                "the {part} part answered the same page token twice"
            )));
        }
        token = next;
    }
    Err(ServiceError::internal(format!(
        "the {part} part kept answering more pages than {MAX_PAGES}"
    )))
}

fn not_found_as_none<T>(
    part: &str,
    answer: Result<T, tonic::Status>,
) -> Result<Option<T>, ServiceError> {
    match answer {
        Ok(found) => Ok(Some(found)),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(upstream_error(part, &status)),
    }
}

impl Owners {
    pub fn new(partner: Channel, request: Channel, inventory: Channel) -> Self {
        Self {
            partner,
            request,
            inventory,
        }
    }

    /// Lazy channels to `settings.partner.url`, `request.url` and `inventory.url`.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self::new(
            essentials_runtime::grpc::channel(&settings.partner.url)?,
            essentials_runtime::grpc::channel(&settings.request.url)?,
            essentials_runtime::grpc::channel(&settings.inventory.url)?,
        ))
    }

    // ---- request part ---------------------------------------------------------------------------

    /// The bank's pending and started requests, every page.
    pub async fn outstanding_requests(
        &self,
        principal: &Principal,
    ) -> Result<Vec<request::Request>, ServiceError> {
        let client = RequestServiceClient::new(self.request.clone());
        all_pages("request", |page_token| {
            let mut client = client.clone();
            let message = request::ListRequestsRequest {
                page_size: PAGE_SIZE,
                page_token,
                statuses: vec![
                    request::RequestStatus::Pending as i32,
                    request::RequestStatus::Started as i32,
                ],
                ..Default::default()
            };
            async move {
                let answer = client
                    .list_requests(forward(principal, message))
                    .await?
                    .into_inner();
                Ok((answer.requests, answer.next_page_token))
            }
        })
        .await
    }

    /// One request; `None` when the request part knows no such request of the bank.
    pub async fn request(
        &self,
        principal: &Principal,
        request_id: &str,
    ) -> Result<Option<request::Request>, ServiceError> {
        let answer = RequestServiceClient::new(self.request.clone())
            .get_request(forward(
                principal,
                request::GetRequestRequest {
                    request_id: request_id.to_owned(),
                },
            ))
            .await;
        Ok(not_found_as_none("request", answer)?.and_then(|answer| answer.into_inner().request))
    }

    // ---- partner part ---------------------------------------------------------------------------

    /// The bank's partners in one status, every page.
    pub async fn partners_with_status(
        &self,
        principal: &Principal,
        status: partner::PartnerStatus,
    ) -> Result<Vec<partner::Partner>, ServiceError> {
        let client = PartnerServiceClient::new(self.partner.clone());
        all_pages("partner", |page_token| {
            let mut client = client.clone();
            let message = partner::ListPartnersRequest {
                page_size: PAGE_SIZE,
                page_token,
                statuses: vec![status as i32],
                ..Default::default()
            };
            async move {
                let answer = client
                    .list_partners(forward(principal, message))
                    .await?
                    .into_inner();
                Ok((answer.partners, answer.next_page_token))
            }
        })
        .await
    }

    /// The bank's partners among `ids`, by id (unknown ids are left out).
    pub async fn partners_by_id(
        &self,
        principal: &Principal,
        ids: &[String],
    ) -> Result<HashMap<String, partner::Partner>, ServiceError> {
        let mut client = PartnerServiceClient::new(self.partner.clone());
        let mut found = HashMap::new();
        for chunk in ids.chunks(BATCH_GET_LIMIT) {
            let answer = client
                .batch_get_partners(forward(
                    principal,
                    partner::BatchGetPartnersRequest {
                        partner_ids: chunk.to_vec(),
                    },
                ))
                .await
                .map_err(|status| upstream_error("partner", &status))?
                .into_inner();
            found.extend(
                answer
                    .partners
                    .into_iter()
                    .map(|partner| (partner.id.clone(), partner)),
            );
        }
        Ok(found)
    }

    /// Whom to tell about a partner (its profile's primary contact and pick-up people) and with
    /// which bank texts; `None` when the partner is gone.
    pub async fn contacts(
        &self,
        principal: &Principal,
        partner_id: &str,
    ) -> Result<Option<partner::GetPartnerContactsResponse>, ServiceError> {
        let answer = PartnerServiceClient::new(self.partner.clone())
            .get_partner_contacts(forward(
                principal,
                partner::GetPartnerContactsRequest {
                    partner_id: partner_id.to_owned(),
                },
            ))
            .await;
        Ok(not_found_as_none("partner", answer)?.map(tonic::Response::into_inner))
    }

    /// The deadline reminders due on `day`, for one bank or (operators) every bank, every page.
    pub async fn deadline_reminders(
        &self,
        principal: &Principal,
        organization_id: Option<Uuid>,
        day: Date,
    ) -> Result<Vec<partner::DeadlineReminder>, ServiceError> {
        let client = PartnerServiceClient::new(self.partner.clone());
        let date = crate::domain::reminders::format_day(day);
        let organization_id = organization_id.map(|id| id.to_string()).unwrap_or_default();
        all_pages("partner", |page_token| {
            let mut client = client.clone();
            let message = partner::ListDeadlineRemindersRequest {
                date: date.clone(),
                organization_id: organization_id.clone(),
                page_size: PAGE_SIZE,
                page_token,
            };
            async move {
                let answer = client
                    .list_deadline_reminders(forward(principal, message))
                    .await?
                    .into_inner();
                Ok((answer.reminders, answer.next_page_token))
            }
        })
        .await
    }

    // ---- inventory part -------------------------------------------------------------------------

    /// Every item of the catalogue, inactive ones included (stock events do not stop at an
    /// item's deactivation, so neither does the rebuild), every page.
    pub async fn items(&self, principal: &Principal) -> Result<Vec<inventory::Item>, ServiceError> {
        let client = CatalogServiceClient::new(self.inventory.clone());
        all_pages("inventory", |page_token| {
            let mut client = client.clone();
            let message = inventory::ListItemsRequest {
                page_size: PAGE_SIZE,
                page_token,
                include_inactive: true,
                ..Default::default()
            };
            async move {
                let answer = client
                    .list_items(forward(principal, message))
                    .await?
                    .into_inner();
                Ok((answer.items, answer.next_page_token))
            }
        })
        .await
    }

    /// Bank-wide balances, one per item (zero ones included).
    pub async fn bank_wide_stock(
        &self,
        principal: &Principal,
    ) -> Result<Vec<inventory::StockBalance>, ServiceError> {
        let answer = InventoryServiceClient::new(self.inventory.clone())
            .get_inventory(forward(
                principal,
                inventory::GetInventoryRequest {
                    bank_wide: true,
                    include_zero: true,
                    ..Default::default()
                },
            ))
            .await
            .map_err(|status| upstream_error("inventory", &status))?;
        Ok(answer.into_inner().balances)
    }

    /// Every storage location, deactivated ones included, every page.
    pub async fn storage_locations(
        &self,
        principal: &Principal,
    ) -> Result<Vec<inventory::StorageLocation>, ServiceError> {
        let client = StorageLocationServiceClient::new(self.inventory.clone());
        all_pages("inventory", |page_token| {
            let mut client = client.clone();
            let message = inventory::ListStorageLocationsRequest {
                page_size: PAGE_SIZE,
                page_token,
                include_inactive: true,
            };
            async move {
                let answer = client
                    .list_storage_locations(forward(principal, message))
                    .await?
                    .into_inner();
                Ok((answer.storage_locations, answer.next_page_token))
            }
        })
        .await
    }

    /// The distributions issued at or after `from`, in any state, every page.
    pub async fn distributions_issued_from(
        &self,
        principal: &Principal,
        from: prost_types::Timestamp,
    ) -> Result<Vec<inventory::Distribution>, ServiceError> {
        let client = DistributionServiceClient::new(self.inventory.clone());
        all_pages("inventory", |page_token| {
            let mut client = client.clone();
            let message = inventory::ListDistributionsRequest {
                page_size: PAGE_SIZE,
                page_token,
                issued_after: Some(from),
                ..Default::default()
            };
            async move {
                let answer = client
                    .list_distributions(forward(principal, message))
                    .await?
                    .into_inner();
                Ok((answer.distributions, answer.next_page_token))
            }
        })
        .await
    }

    /// One distribution; `None` when it is gone (reclaimed).
    pub async fn distribution(
        &self,
        principal: &Principal,
        distribution_id: &str,
    ) -> Result<Option<inventory::Distribution>, ServiceError> {
        let answer = DistributionServiceClient::new(self.inventory.clone())
            .get_distribution(forward(
                principal,
                inventory::GetDistributionRequest {
                    distribution_id: distribution_id.to_owned(),
                },
            ))
            .await;
        Ok(not_found_as_none("inventory", answer)?
            .and_then(|answer| answer.into_inner().distribution))
    }
}
