//! The bank's records offered in selects: partners, storage locations, partner groups.

use essentials_proto::inventory::v1 as inventory;
use essentials_proto::inventory::v1::storage_location_service_client::StorageLocationServiceClient;
use essentials_proto::partner::v1 as partner;
use essentials_proto::partner::v1::partner_group_service_client::PartnerGroupServiceClient;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_runtime::auth::{Principal, forward};

use crate::Web;
use crate::error::PageError;
use crate::view::Choice;

/// Up to this many of each (a part's largest page).
const MOST: i32 = 500;

/// The bank's partners, by name.
pub async fn partners(
    web: &Web,
    principal: &Principal,
    selected: &str,
) -> Result<Vec<Choice>, PageError> {
    let answer = PartnerServiceClient::new(web.channels().partner.clone())
        .list_partners(forward(
            principal,
            partner::ListPartnersRequest {
                page_size: MOST,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    let pairs = answer.partners.into_iter().map(|row| (row.id, row.name));
    Ok(Choice::list(pairs, selected))
}

/// The bank's active storage locations, by name.
pub async fn locations(
    web: &Web,
    principal: &Principal,
    selected: &str,
) -> Result<Vec<Choice>, PageError> {
    let answer = StorageLocationServiceClient::new(web.channels().inventory.clone())
        .list_storage_locations(forward(
            principal,
            inventory::ListStorageLocationsRequest {
                page_size: MOST,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    let pairs = answer
        .storage_locations
        .into_iter()
        .map(|row| (row.id, row.name));
    Ok(Choice::list(pairs, selected))
}

/// The bank's partner groups, by name.
pub async fn groups(
    web: &Web,
    principal: &Principal,
    selected: &str,
) -> Result<Vec<Choice>, PageError> {
    let answer = PartnerGroupServiceClient::new(web.channels().partner.clone())
        .list_partner_groups(forward(
            principal,
            partner::ListPartnerGroupsRequest {
                page_size: MOST,
                page_token: String::new(),
            },
        ))
        .await?
        .into_inner();
    let pairs = answer
        .partner_groups
        .into_iter()
        .map(|row| (row.id, row.name));
    Ok(Choice::list(pairs, selected))
}
