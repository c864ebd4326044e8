//! What other parts ask of a partner: whether it may request (and what), and who its
//! distribution e-mails go to.

use essentials_proto::common::v1::RequestType;
use essentials_proto::partner::v1 as pb;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::Principal;
use uuid::Uuid;

use super::*;
use crate::repo;

/// What the request part needs to accept a request from a partner.
pub struct Eligibility {
    pub partner: PartnerRow,
    pub organization: OrganizationRow,
    /// Empty when the partner is in no group (it may request any category).
    pub allowed_item_category_ids: Vec<Uuid>,
    pub enabled_request_types: Vec<RequestType>,
    pub requester: Option<UserRow>,
}

impl App {
    /// What the request part needs to accept a request: status, allowed categories, request
    /// types, bank settings.
    pub async fn eligibility(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<Eligibility, ServiceError> {
        let organization_id = self.partner_scope(principal, partner_id).await?;
        let mut connection = self.pool.acquire().await?;
        let partner = self
            .partner_row(&mut connection, organization_id, partner_id, false)
            .await?;
        let organization = self
            .organization_row(&mut connection, organization_id)
            .await?;
        let profile = self
            .load_profile(&mut connection, organization_id, partner_id)
            .await?;
        let categories = match partner.partner_group_id {
            Some(group) => repo::group_categories(&mut connection, organization_id, group).await?,
            None => Vec::new(),
        };
        let settings = profile.partner_settings.unwrap_or_default();
        let mut types = Vec::new();
        if settings.enable_quantity_based_requests && organization.enable_quantity_based_requests {
            types.push(RequestType::Quantity);
        }
        if settings.enable_individual_requests && organization.enable_individual_requests {
            types.push(RequestType::Individual);
        }
        if settings.enable_child_based_requests && organization.enable_child_based_requests {
            types.push(RequestType::Child);
        }
        let requester = repo::user(&mut connection, principal.user_id).await?;
        Ok(Eligibility {
            partner,
            organization,
            allowed_item_category_ids: categories,
            enabled_request_types: types,
            requester,
        })
    }

    /// Who a distribution's e-mail goes to.
    pub async fn contacts(
        &self,
        principal: &Principal,
        partner_id: Uuid,
    ) -> Result<pb::GetPartnerContactsResponse, ServiceError> {
        let organization_id = self.partner_scope(principal, partner_id).await?;
        let mut connection = self.pool.acquire().await?;
        let partner = self
            .partner_row(&mut connection, organization_id, partner_id, false)
            .await?;
        let organization = self
            .organization_row(&mut connection, organization_id)
            .await?;
        let profile = self
            .load_profile(&mut connection, organization_id, partner_id)
            .await?;
        let contacts = profile.contacts.unwrap_or_default();
        Ok(pb::GetPartnerContactsResponse {
            partner_id: partner.id.to_string(),
            partner_name: partner.name.clone(),
            partner_email: partner.email.clone(),
            status: partner.status().to_proto() as i32,
            send_reminders: partner.send_reminders,
            pick_up_emails: profile.pick_up_person.map(|p| p.emails).unwrap_or_default(),
            primary_contact_name: contacts.primary_contact_name,
            primary_contact_email: contacts.primary_contact_email,
            organization_id: organization_id.to_string(),
            organization_name: organization.name.clone(),
            organization_email: organization.email.clone(),
            default_email_text: organization.default_email_text.clone(),
            default_storage_location_id: partner
                .default_storage_location_id
                .or(organization.default_storage_location_id)
                .map(|id| id.to_string())
                .unwrap_or_default(),
        })
    }
}
