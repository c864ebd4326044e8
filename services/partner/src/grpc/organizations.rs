//! OrganizationService and UserService: banks, their settings and their staff.

use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::organization_service_server::OrganizationService;
use essentials_proto::partner::v1::user_service_server::UserService;
use essentials_runtime::auth::{Role, principal};
use essentials_runtime::convert::{self, id, optional_id, page_size, timestamp};
use essentials_runtime::{FieldViolation, ServiceError};
use tonic::{Request, Response};

use super::*;
use crate::repo::OrganizationRow;

pub fn organization_to_proto(organization: &OrganizationRow) -> pb::Organization {
    pb::Organization {
        id: organization.id.to_string(),
        name: organization.name.clone(),
        email: organization.email.clone(),
        url: organization.url.clone(),
        street: organization.street.clone(),
        city: organization.city.clone(),
        state: organization.state.clone(),
        zip_code: organization.zip_code.clone(),
        one_step_partner_invite: organization.one_step_partner_invite,
        deadline_day: organization.deadline_day,
        reminder_day: organization.reminder_day,
        reminder_email_text: organization.reminder_email_text.clone(),
        default_email_text: organization.default_email_text.clone(),
        invitation_text: organization.invitation_text.clone(),
        default_storage_location_id: organization
            .default_storage_location_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        intake_storage_location_id: String::new(),
        receive_email_on_requests: organization.receive_email_on_requests,
        enable_quantity_based_requests: organization.enable_quantity_based_requests,
        enable_individual_requests: organization.enable_individual_requests,
        enable_child_based_requests: organization.enable_child_based_requests,
        partner_form_fields: Vec::new(),
        bank_is_set_up: false,
        created_at: Some(timestamp(organization.created_at)),
        updated_at: Some(timestamp(organization.updated_at)),
        partners_imported_at: organization.partners_imported_at.map(timestamp),
    }
}

/// Applies the masked fields of a proto organization to a row.
fn apply_organization(
    row: &mut OrganizationRow,
    input: &pb::Organization,
    mask: &[String],
) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    let wanted = |field: &str| masked(mask, field);
    macro_rules! copy {
        ($($field:ident),*) => {
            $(if wanted(stringify!($field)) { row.$field = input.$field.clone(); })*
        };
    }
    copy!(
        name,
        email,
        url,
        street,
        city,
        state,
        zip_code,
        one_step_partner_invite,
        deadline_day,
        reminder_day,
        reminder_email_text,
        default_email_text,
        invitation_text,
        receive_email_on_requests,
        enable_quantity_based_requests,
        enable_individual_requests,
        enable_child_based_requests
    );
    if wanted("default_storage_location_id") {
        row.default_storage_location_id = optional_id(
            "default_storage_location_id",
            &input.default_storage_location_id,
            &mut violations,
        );
    }
    const KNOWN: &[&str] = &[
        "name",
        "email",
        "url",
        "street",
        "city",
        "state",
        "zip_code",
        "one_step_partner_invite",
        "deadline_day",
        "reminder_day",
        "reminder_email_text",
        "default_email_text",
        "invitation_text",
        "receive_email_on_requests",
        "enable_quantity_based_requests",
        "enable_individual_requests",
        "enable_child_based_requests",
        "default_storage_location_id",
    ];
    for path in mask {
        if !KNOWN.contains(&path.as_str()) {
            violations.push(FieldViolation::new(
                "update_mask",
                format!("`{path}` cannot be updated"),
            ));
        }
    }
    violations
}

#[tonic::async_trait]
impl OrganizationService for Grpc {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Answer<pb::CreateOrganizationResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let input = message.organization.unwrap_or_default();
        let mut row = crate::service::new_organization_row(input.name.clone(), input.email.clone());
        let mut violations = apply_organization(&mut row, &input, &[]);
        row.name = row.name.trim().to_owned();
        // proto3 cannot tell "false" from "not given": a new bank with no request type named
        // gets the default, all of them.
        if !(row.enable_quantity_based_requests
            || row.enable_individual_requests
            || row.enable_child_based_requests)
        {
            row.enable_quantity_based_requests = true;
            row.enable_individual_requests = true;
            row.enable_child_based_requests = true;
        }
        if message.admin_email.trim().is_empty() {
            violations.push(FieldViolation::new("admin_email", "is required"));
        }
        if !violations.is_empty() {
            return Err(ServiceError::invalid(violations).into());
        }
        let (organization, admin) = self
            .app
            .create_organization(&caller, row, &message.admin_email, &message.admin_name)
            .await?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization: Some(organization_to_proto(&organization)),
            admin_user: Some(user_to_proto(&admin)),
        }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Answer<pb::GetOrganizationResponse> {
        let caller = principal(&request)?;
        let requested = convert::alone(|problems| {
            optional_id(
                "organization_id",
                &request.get_ref().organization_id,
                problems,
            )
        })?;
        let organization = self.app.get_organization(&caller, requested).await?;
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(organization_to_proto(&organization)),
        }))
    }

    async fn update_organization(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Answer<pb::UpdateOrganizationResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let input = message.organization.unwrap_or_default();
        let mask = mask_paths(message.update_mask);
        self.check_masked_location(&caller, &mask, &input.default_storage_location_id)
            .await?;
        let organization = self
            .app
            .update_organization(&caller, |row| apply_organization(row, &input, &mask))
            .await?;
        Ok(Response::new(pb::UpdateOrganizationResponse {
            organization: Some(organization_to_proto(&organization)),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Answer<pb::ListOrganizationsResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let limit = page_size(message.page_size);
        let rows = self
            .app
            .list_organizations(
                &caller,
                convert::alone(|problems| {
                    convert::decode_name_token(&message.page_token, problems)
                })?,
                limit + 1,
            )
            .await?;
        let (rows, next) = split_page(rows, limit, |row| convert::name_token(&row.name, row.id));
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: rows.iter().map(organization_to_proto).collect(),
            next_page_token: next,
        }))
    }
}

#[tonic::async_trait]
impl UserService for Grpc {
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Answer<pb::ListUsersResponse> {
        let caller = principal(&request)?;
        let users = self.app.list_users(&caller).await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users
                .iter()
                .map(|(user, kind)| pb::BankUser {
                    user: Some(listed_user_to_proto(user)),
                    role: role_kind(kind) as i32,
                })
                .collect(),
            next_page_token: String::new(),
        }))
    }

    async fn invite_user(
        &self,
        request: Request<pb::InviteUserRequest>,
    ) -> Answer<pb::InviteUserResponse> {
        let caller = principal(&request)?;
        let message = request.into_inner();
        let role = role_from_proto(message.role).unwrap_or(Role::OrgUser);
        let (user, role) = self
            .app
            .invite_user(&caller, &message.email, &message.name, role)
            .await?;
        Ok(Response::new(pb::InviteUserResponse {
            user: Some(pb::BankUser {
                user: Some(user_to_proto(&user)),
                role: role_kind(role.as_str()) as i32,
            }),
        }))
    }

    async fn remove_user(
        &self,
        request: Request<pb::RemoveUserRequest>,
    ) -> Answer<pb::RemoveUserResponse> {
        let caller = principal(&request)?;
        let user_id = id("user_id", &request.get_ref().user_id)?;
        self.app.remove_user(&caller, user_id).await?;
        Ok(Response::new(pb::RemoveUserResponse {}))
    }

    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> Answer<pb::ResendInvitationResponse> {
        let caller = principal(&request)?;
        let user_id = id("user_id", &request.get_ref().user_id)?;
        let user = self.app.resend_invitation(&caller, user_id, None).await?;
        Ok(Response::new(pb::ResendInvitationResponse {
            user: Some(pb::BankUser {
                user: Some(user_to_proto(&user)),
                role: pb::RoleKind::OrgUser as i32,
            }),
        }))
    }

    async fn update_user_role(
        &self,
        request: Request<pb::UpdateUserRoleRequest>,
    ) -> Answer<pb::UpdateUserRoleResponse> {
        let caller = principal(&request)?;
        let user_id = id("user_id", &request.get_ref().user_id)?;
        let role = role_from_proto(request.get_ref().role).ok_or_else(|| {
            ServiceError::invalid(vec![FieldViolation::new(
                "role",
                "must be org_user or org_admin",
            )])
        })?;
        let user = self.app.update_user_role(&caller, user_id, role).await?;
        Ok(Response::new(pb::UpdateUserRoleResponse {
            user: Some(pb::BankUser {
                user: Some(user_to_proto(&user)),
                role: role_kind(role.as_str()) as i32,
            }),
        }))
    }
}
