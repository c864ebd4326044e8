//! PartnerService: partners through their statuses, profiles, partner users, the import, and
//! the questions other parts ask.

use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::partner_service_server::PartnerService;
use essentials_runtime::auth::principal;
use essentials_runtime::convert::{self, id, optional_id, page_size, timestamp};
use essentials_runtime::{FieldViolation, ServiceError};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::*;
use crate::domain::{PartnerStatus, Transition};
use crate::repo::PartnerRow;
use crate::service::Eligibility;

pub fn partner_to_proto(partner: &PartnerRow) -> pb::Partner {
    pb::Partner {
        id: partner.id.to_string(),
        organization_id: partner.organization_id.to_string(),
        name: partner.name.clone(),
        email: partner.email.clone(),
        status: partner.status().to_proto() as i32,
        send_reminders: partner.send_reminders,
        quota: partner.quota,
        notes: partner.notes.clone(),
        info_for_partner: partner.info_for_partner.clone(),
        partner_group_id: partner
            .partner_group_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        default_storage_location_id: partner
            .default_storage_location_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        deletable: partner.deletable,
        review_requested_at: partner.review_requested_at.map(timestamp),
        created_at: Some(timestamp(partner.created_at)),
        updated_at: Some(timestamp(partner.updated_at)),
        actions: partner_actions(partner),
    }
}

/// Every action and whether the partner's status allows it, from the one transition table.
fn eligibility_to_proto(eligibility: Eligibility) -> pb::GetRequestEligibilityResponse {
    let Eligibility {
        partner,
        organization,
        allowed_item_category_ids,
        enabled_request_types,
        requester,
    } = eligibility;
    pb::GetRequestEligibilityResponse {
        partner_id: partner.id.to_string(),
        organization_id: organization.id.to_string(),
        status: partner.status().to_proto() as i32,
        partner_name: partner.name.clone(),
        partner_email: partner.email.clone(),
        restricted_to_categories: partner.partner_group_id.is_some(),
        allowed_item_category_ids: allowed_item_category_ids
            .iter()
            .map(Uuid::to_string)
            .collect(),
        enabled_request_types: enabled_request_types
            .into_iter()
            .map(|kind| kind as i32)
            .collect(),
        default_storage_location_id: partner
            .default_storage_location_id
            .or(organization.default_storage_location_id)
            .map(|id| id.to_string())
            .unwrap_or_default(),
        quota: partner.quota,
        organization_name: organization.name,
        organization_email: organization.email,
        receive_email_on_requests: organization.receive_email_on_requests,
        requester: requester.as_ref().map(user_to_proto),
    }
}

fn partner_actions(partner: &PartnerRow) -> Vec<pb::PartnerAction> {
    let mut actions: Vec<pb::PartnerAction> = crate::domain::Transition::ALL
        .into_iter()
        .map(|transition| {
            let refusal =
                crate::domain::next_status(&partner.name, partner.status(), transition).err();
            pb::PartnerAction {
                name: transition.name().to_owned(),
                allowed: refusal.is_none(),
                reason: refusal.map(|error| error.to_string()).unwrap_or_default(),
            }
        })
        .collect();
    let refusal = crate::domain::check_deletable(&partner.name, partner.deletable).err();
    actions.push(pb::PartnerAction {
        name: "delete".to_owned(),
        allowed: refusal.is_none(),
        reason: refusal.map(|error| error.to_string()).unwrap_or_default(),
    });
    actions
}

/// Applies the masked fields of a proto partner to a row (an empty mask means every field).
fn apply_partner(
    row: &mut PartnerRow,
    input: &pb::Partner,
    mask: &[String],
) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    let wanted = |field: &str| masked(mask, field);
    for path in mask {
        if !matches!(
            path.as_str(),
            "name"
                | "email"
                | "send_reminders"
                | "quota"
                | "notes"
                | "info_for_partner"
                | "partner_group_id"
                | "default_storage_location_id"
        ) {
            violations.push(FieldViolation::new(
                "update_mask",
                format!("`{path}` cannot be updated"),
            ));
        }
    }
    if wanted("name") {
        row.name = input.name.clone();
    }
    if wanted("email") {
        row.email = input.email.clone();
    }
    if wanted("send_reminders") {
        row.send_reminders = input.send_reminders;
    }
    if wanted("quota") {
        row.quota = input.quota;
    }
    if wanted("notes") {
        row.notes = input.notes.clone();
    }
    if wanted("info_for_partner") {
        row.info_for_partner = input.info_for_partner.clone();
    }
    if wanted("partner_group_id") {
        row.partner_group_id =
            optional_id("partner_group_id", &input.partner_group_id, &mut violations);
    }
    if wanted("default_storage_location_id") {
        row.default_storage_location_id = optional_id(
            "default_storage_location_id",
            &input.default_storage_location_id,
            &mut violations,
        );
    }
    violations
}

impl Grpc {
    async fn transition(
        &self,
        request_partner: &str,
        caller: &essentials_runtime::auth::Principal,
        transition: Transition,
    ) -> Result<pb::Partner, Status> {
        let partner_id = id("partner_id", request_partner)?;
        let partner = self.app.transition(caller, partner_id, transition).await?;
        Ok(partner_to_proto(&partner))
    }
}

#[tonic::async_trait]
impl PartnerService for Grpc {
    async fn create_partner(
        &self,
        request: Request<pb::CreatePartnerRequest>,
    ) -> Answer<pb::CreatePartnerResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let input = message.partner.clone().unwrap_or_default();
        let mut row = crate::service::new_partner_row(input.name.clone(), input.email.clone());
        let violations = apply_partner(&mut row, &input, &[]);
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations).into());
        }
        self.app
            .check_storage_location(&caller, row.default_storage_location_id)
            .await?;
        let partner = self
            .app
            .create_partner(
                &caller,
                row,
                &message.request_id,
                &message,
                partner_to_proto,
            )
            .await?;
        Ok(Response::new(pb::CreatePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn get_partner(
        &self,
        request: Request<pb::GetPartnerRequest>,
    ) -> Answer<pb::GetPartnerResponse> {
        let caller = principal(&request)?;
        let partner_id = id("partner_id", &request.get_ref().partner_id)?;
        let partner = self.app.get_partner(&caller, partner_id).await?;
        Ok(Response::new(pb::GetPartnerResponse {
            partner: Some(partner_to_proto(&partner)),
        }))
    }

    async fn batch_get_partners(
        &self,
        request: Request<pb::BatchGetPartnersRequest>,
    ) -> Answer<pb::BatchGetPartnersResponse> {
        let caller = principal(&request)?;
        let mut ids = Vec::new();
        let mut violations = Vec::new();
        for (index, text) in request.get_ref().partner_ids.iter().enumerate() {
            match Uuid::parse_str(text) {
                Ok(parsed) => ids.push(parsed),
                Err(_) => violations.push(FieldViolation::new(
                    format!("partner_ids[{index}]"),
                    "must be a UUID",
                )),
            }
        }
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations).into());
        }
        let partners = self.app.batch_get_partners(&caller, &ids).await?;
        Ok(Response::new(pb::BatchGetPartnersResponse {
            partners: partners.iter().map(partner_to_proto).collect(),
        }))
    }

    async fn list_partners(
        &self,
        request: Request<pb::ListPartnersRequest>,
    ) -> Answer<pb::ListPartnersResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let mut violations = Vec::new();
        let mut statuses = Vec::new();
        for (index, raw) in message.statuses.iter().enumerate() {
            match pb::PartnerStatus::try_from(*raw)
                .ok()
                .and_then(PartnerStatus::from_proto)
            {
                Some(status) => statuses.push(status),
                None => violations.push(FieldViolation::new(
                    format!("statuses[{index}]"),
                    "is not a partner status",
                )),
            }
        }
        let group = optional_id(
            "partner_group_id",
            &message.partner_group_id,
            &mut violations,
        );
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations).into());
        }
        let limit = page_size(message.page_size);
        let query = (!message.query.trim().is_empty()).then_some(message.query.trim());
        let rows = self
            .app
            .list_partners(
                &caller,
                &statuses,
                group,
                query,
                convert::alone(|problems| {
                    convert::decode_name_token(&message.page_token, problems)
                })?,
                limit + 1,
            )
            .await?;
        let (rows, next) = split_page(rows, limit, |row| convert::name_token(&row.name, row.id));
        Ok(Response::new(pb::ListPartnersResponse {
            partners: rows.iter().map(partner_to_proto).collect(),
            next_page_token: next,
        }))
    }

    async fn update_partner(
        &self,
        request: Request<pb::UpdatePartnerRequest>,
    ) -> Answer<pb::UpdatePartnerResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let input = message.partner.unwrap_or_default();
        let partner_id = id("partner.id", &input.id)?;
        let mask = mask_paths(message.update_mask);
        self.check_masked_location(&caller, &mask, &input.default_storage_location_id)
            .await?;
        let partner = self
            .app
            .update_partner(&caller, partner_id, |row| apply_partner(row, &input, &mask))
            .await?;
        Ok(Response::new(pb::UpdatePartnerResponse {
            partner: Some(partner_to_proto(&partner)),
        }))
    }

    async fn delete_partner(
        &self,
        request: Request<pb::DeletePartnerRequest>,
    ) -> Answer<pb::DeletePartnerResponse> {
        let caller = principal(&request)?;
        let partner_id = id("partner_id", &request.get_ref().partner_id)?;
        self.app.delete_partner(&caller, partner_id).await?;
        Ok(Response::new(pb::DeletePartnerResponse {}))
    }

    async fn invite_partner(
        &self,
        request: Request<pb::InvitePartnerRequest>,
    ) -> Answer<pb::InvitePartnerResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(&request.get_ref().partner_id, &caller, Transition::Invite)
            .await?;
        Ok(Response::new(pb::InvitePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn invite_and_approve_partner(
        &self,
        request: Request<pb::InviteAndApprovePartnerRequest>,
    ) -> Answer<pb::InviteAndApprovePartnerResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(
                &request.get_ref().partner_id,
                &caller,
                Transition::InviteAndApprove,
            )
            .await?;
        Ok(Response::new(pb::InviteAndApprovePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn submit_for_approval(
        &self,
        request: Request<pb::SubmitForApprovalRequest>,
    ) -> Answer<pb::SubmitForApprovalResponse> {
        let caller = principal(&request)?;
        // A partner user may leave the id out: it is their own partner.
        let partner_id = match (&caller.partner_id, request.get_ref().partner_id.trim()) {
            (Some(own), "") => own.to_string(),
            (_, given) => given.to_owned(),
        };
        let partner = self
            .transition(&partner_id, &caller, Transition::SubmitForApproval)
            .await?;
        Ok(Response::new(pb::SubmitForApprovalResponse {
            partner: Some(partner),
        }))
    }

    async fn approve_partner(
        &self,
        request: Request<pb::ApprovePartnerRequest>,
    ) -> Answer<pb::ApprovePartnerResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(&request.get_ref().partner_id, &caller, Transition::Approve)
            .await?;
        Ok(Response::new(pb::ApprovePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn request_recertification(
        &self,
        request: Request<pb::RequestRecertificationRequest>,
    ) -> Answer<pb::RequestRecertificationResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(
                &request.get_ref().partner_id,
                &caller,
                Transition::RequestRecertification,
            )
            .await?;
        Ok(Response::new(pb::RequestRecertificationResponse {
            partner: Some(partner),
        }))
    }

    async fn deactivate_partner(
        &self,
        request: Request<pb::DeactivatePartnerRequest>,
    ) -> Answer<pb::DeactivatePartnerResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(
                &request.get_ref().partner_id,
                &caller,
                Transition::Deactivate,
            )
            .await?;
        Ok(Response::new(pb::DeactivatePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn reactivate_partner(
        &self,
        request: Request<pb::ReactivatePartnerRequest>,
    ) -> Answer<pb::ReactivatePartnerResponse> {
        let caller = principal(&request)?;
        let partner = self
            .transition(
                &request.get_ref().partner_id,
                &caller,
                Transition::Reactivate,
            )
            .await?;
        Ok(Response::new(pb::ReactivatePartnerResponse {
            partner: Some(partner),
        }))
    }

    async fn get_profile(
        &self,
        request: Request<pb::GetProfileRequest>,
    ) -> Answer<pb::GetProfileResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let profile = self.app.get_profile(&caller, partner_id).await?;
        Ok(Response::new(pb::GetProfileResponse {
            profile: Some(profile),
        }))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Answer<pb::UpdateProfileResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let profile = request.into_inner().profile.unwrap_or_default();
        let profile = self
            .app
            .update_profile(&caller, partner_id, profile)
            .await?;
        Ok(Response::new(pb::UpdateProfileResponse {
            profile: Some(profile),
        }))
    }

    async fn list_partner_users(
        &self,
        request: Request<pb::ListPartnerUsersRequest>,
    ) -> Answer<pb::ListPartnerUsersResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let users = self.app.list_partner_users(&caller, partner_id).await?;
        Ok(Response::new(pb::ListPartnerUsersResponse {
            users: users.iter().map(listed_user_to_proto).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn invite_partner_user(
        &self,
        request: Request<pb::InvitePartnerUserRequest>,
    ) -> Answer<pb::InvitePartnerUserResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let message = request.into_inner();
        let user = self
            .app
            .invite_partner_user(&caller, partner_id, &message.email, &message.name)
            .await?;
        Ok(Response::new(pb::InvitePartnerUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn remove_partner_user(
        &self,
        request: Request<pb::RemovePartnerUserRequest>,
    ) -> Answer<pb::RemovePartnerUserResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let user_id = id("user_id", &request.get_ref().user_id)?;
        self.app
            .remove_partner_user(&caller, partner_id, user_id)
            .await?;
        Ok(Response::new(pb::RemovePartnerUserResponse {}))
    }

    async fn resend_partner_user_invitation(
        &self,
        request: Request<pb::ResendPartnerUserInvitationRequest>,
    ) -> Answer<pb::ResendPartnerUserInvitationResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let user_id = id("user_id", &request.get_ref().user_id)?;
        let user = self
            .app
            .resend_invitation(&caller, user_id, Some(partner_id))
            .await?;
        Ok(Response::new(pb::ResendPartnerUserInvitationResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn import_partners(
        &self,
        request: Request<pb::ImportPartnersRequest>,
    ) -> Answer<pb::ImportPartnersResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        Ok(Response::new(
            self.app.import_partners(&caller, &message).await?,
        ))
    }

    async fn get_request_eligibility(
        &self,
        request: Request<pb::GetRequestEligibilityRequest>,
    ) -> Answer<pb::GetRequestEligibilityResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        let eligibility = self.app.eligibility(&caller, partner_id).await?;
        Ok(Response::new(eligibility_to_proto(eligibility)))
    }

    async fn get_partner_contacts(
        &self,
        request: Request<pb::GetPartnerContactsRequest>,
    ) -> Answer<pb::GetPartnerContactsResponse> {
        let caller = principal(&request)?;
        let partner_id = own_or_given(&caller, &request.get_ref().partner_id)?;
        Ok(Response::new(self.app.contacts(&caller, partner_id).await?))
    }

    async fn list_deadline_reminders(
        &self,
        request: Request<pb::ListDeadlineRemindersRequest>,
    ) -> Answer<pb::ListDeadlineRemindersResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let organization = convert::alone(|problems| {
            optional_id("organization_id", &message.organization_id, problems)
        })?;
        let day = if message.date.is_empty() {
            OffsetDateTime::now_utc().date()
        } else {
            crate::domain::parse_date("date", &message.date)?
        };
        let reminders = self
            .app
            .list_deadline_reminders(&caller, organization, day)
            .await?;
        Ok(Response::new(pb::ListDeadlineRemindersResponse {
            reminders,
            next_page_token: String::new(),
        }))
    }
}
