//! Banks and their staff (API.md § Sessions and users).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::organization_service_client::OrganizationServiceClient;
use essentials_proto::partner::v1::user_service_client::UserServiceClient;
use essentials_runtime::auth::forward;
use essentials_runtime::{FieldViolation, ServiceError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::sessions::{UserDto, role_kind};
use crate::AppState;
use crate::convert::{Page, optional, patch_body, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_organization))
        .routes(routes!(get_organization, update_organization))
        .routes(routes!(list_users, invite_user))
        .routes(routes!(remove_user, update_user_role))
        .routes(routes!(resend_invitation))
}

/// An essentials bank and its settings.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Organization)]
pub struct OrganizationDto {
    id: String,
    name: String,
    email: String,
    url: String,
    street: String,
    city: String,
    state: String,
    zip_code: String,
    one_step_partner_invite: bool,
    deadline_day: Option<i32>,
    reminder_day: Option<i32>,
    reminder_email_text: String,
    default_email_text: String,
    invitation_text: String,
    default_storage_location_id: Option<String>,
    receive_email_on_requests: bool,
    enable_quantity_based_requests: bool,
    enable_individual_requests: bool,
    enable_child_based_requests: bool,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// When the bank used its one partner import; null before.
    partners_imported_at: Option<String>,
}

impl From<pb::Organization> for OrganizationDto {
    fn from(organization: pb::Organization) -> Self {
        Self {
            created_at: timestamp(organization.created_at.as_ref()),
            updated_at: timestamp(organization.updated_at.as_ref()),
            partners_imported_at: timestamp(organization.partners_imported_at.as_ref()),
            id: organization.id,
            name: organization.name,
            email: organization.email,
            url: organization.url,
            street: organization.street,
            city: organization.city,
            state: organization.state,
            zip_code: organization.zip_code,
            one_step_partner_invite: organization.one_step_partner_invite,
            deadline_day: organization.deadline_day,
            reminder_day: organization.reminder_day,
            reminder_email_text: organization.reminder_email_text,
            default_email_text: organization.default_email_text,
            invitation_text: organization.invitation_text,
            default_storage_location_id: optional(organization.default_storage_location_id),
            receive_email_on_requests: organization.receive_email_on_requests,
            enable_quantity_based_requests: organization.enable_quantity_based_requests,
            enable_individual_requests: organization.enable_individual_requests,
            enable_child_based_requests: organization.enable_child_based_requests,
        }
    }
}

/// A new bank and its first administrator (who is sent an invitation).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateOrganization)]
struct CreateOrganizationBody {
    name: String,
    #[serde(default)]
    email: String,
    admin_email: String,
    #[serde(default)]
    admin_name: String,
}

/// Create a bank and invite its first administrator (super_admin only).
#[utoipa::path(post, path = "/organizations", tag = "organizations",
    request_body = CreateOrganizationBody,
    responses((status = 201, description = "The new bank", body = OrganizationDto)))]
async fn create_organization(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CreateOrganizationBody>,
) -> Result<(StatusCode, Json<OrganizationDto>), ApiError> {
    let answer = OrganizationServiceClient::new(state.upstreams.partner.clone())
        .create_organization(forward(
            &caller,
            pb::CreateOrganizationRequest {
                organization: Some(pb::Organization {
                    name: body.name,
                    email: body.email,
                    ..Default::default()
                }),
                admin_email: body.admin_email,
                admin_name: body.admin_name,
                request_id: String::new(),
            },
        ))
        .await?
        .into_inner();
    let organization = answer
        .organization
        .ok_or_else(|| ServiceError::internal("no organization in the answer"))?;
    Ok((
        StatusCode::CREATED,
        Json(OrganizationDto::from(organization)),
    ))
}

/// The caller's bank and its settings (bank staff; a partner user has `/me`).
#[utoipa::path(get, path = "/organization", tag = "organizations",
    responses((status = 200, description = "The bank", body = OrganizationDto)))]
async fn get_organization(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<OrganizationDto>, ApiError> {
    caller.require_bank_staff()?;
    let answer = OrganizationServiceClient::new(state.upstreams.partner.clone())
        .get_organization(forward(&caller, pb::GetOrganizationRequest::default()))
        .await?
        .into_inner();
    let organization = answer
        .organization
        .ok_or_else(|| ServiceError::internal("no organization in the answer"))?;
    Ok(Json(OrganizationDto::from(organization)))
}

/// The settings to change (at least one); a field sent as null is cleared.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateOrganization)]
struct OrganizationPatch {
    name: Option<String>,
    email: Option<String>,
    url: Option<String>,
    street: Option<String>,
    city: Option<String>,
    state: Option<String>,
    zip_code: Option<String>,
    one_step_partner_invite: Option<bool>,
    deadline_day: Option<i32>,
    reminder_day: Option<i32>,
    reminder_email_text: Option<String>,
    default_email_text: Option<String>,
    invitation_text: Option<String>,
    default_storage_location_id: Option<String>,
    receive_email_on_requests: Option<bool>,
    enable_quantity_based_requests: Option<bool>,
    enable_individual_requests: Option<bool>,
    enable_child_based_requests: Option<bool>,
}

/// Change some of the bank's settings (the keys sent; at least one; org_admin).
#[utoipa::path(patch, path = "/organization", tag = "organizations",
    request_body = OrganizationPatch,
    responses((status = 200, description = "The bank as it now is", body = OrganizationDto)))]
async fn update_organization(
    State(state): State<AppState>,
    Caller(caller): Caller,
    crate::extract::ApiBody(body): crate::extract::ApiBody,
) -> Result<Json<OrganizationDto>, ApiError> {
    let (patch, keys) = patch_body::<OrganizationPatch>(&body)?;
    let organization = pb::Organization {
        name: patch.name.unwrap_or_default(),
        email: patch.email.unwrap_or_default(),
        url: patch.url.unwrap_or_default(),
        street: patch.street.unwrap_or_default(),
        city: patch.city.unwrap_or_default(),
        state: patch.state.unwrap_or_default(),
        zip_code: patch.zip_code.unwrap_or_default(),
        one_step_partner_invite: patch.one_step_partner_invite.unwrap_or_default(),
        deadline_day: patch.deadline_day,
        reminder_day: patch.reminder_day,
        reminder_email_text: patch.reminder_email_text.unwrap_or_default(),
        default_email_text: patch.default_email_text.unwrap_or_default(),
        invitation_text: patch.invitation_text.unwrap_or_default(),
        default_storage_location_id: patch.default_storage_location_id.unwrap_or_default(),
        receive_email_on_requests: patch.receive_email_on_requests.unwrap_or_default(),
        enable_quantity_based_requests: patch.enable_quantity_based_requests.unwrap_or_default(),
        enable_individual_requests: patch.enable_individual_requests.unwrap_or_default(),
        enable_child_based_requests: patch.enable_child_based_requests.unwrap_or_default(),
        ..Default::default()
    };
    if keys.is_empty() {
        return Err(ServiceError::invalid(vec![FieldViolation::new(
            "body",
            "name at least one field to change",
        )])
        .into());
    }
    let answer = OrganizationServiceClient::new(state.upstreams.partner.clone())
        .update_organization(forward(
            &caller,
            pb::UpdateOrganizationRequest {
                organization: Some(organization),
                update_mask: Some(prost_types::FieldMask { paths: keys }),
            },
        ))
        .await?
        .into_inner();
    let organization = answer
        .organization
        .ok_or_else(|| ServiceError::internal("no organization in the answer"))?;
    Ok(Json(OrganizationDto::from(organization)))
}

/// A member of the bank's staff: the user and their role there.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BankUser)]
struct BankUserDto {
    #[serde(flatten)]
    user: UserDto,
    /// org_admin or org_user.
    role: &'static str,
}

/// The bank's staff (org_admin).
#[utoipa::path(get, path = "/users", tag = "organizations",
    responses((status = 200, description = "The bank's staff", body = Page<BankUserDto>)))]
async fn list_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Page<BankUserDto>>, ApiError> {
    let answer = UserServiceClient::new(state.upstreams.partner.clone())
        .list_users(forward(&caller, pb::ListUsersRequest::default()))
        .await?
        .into_inner();
    let items = answer
        .users
        .into_iter()
        .filter_map(|bank_user| {
            let role = role_kind(bank_user.role());
            bank_user.user.map(|user| BankUserDto {
                user: UserDto::from(user),
                role,
            })
        })
        .collect();
    Ok(Json(Page::new(items, answer.next_page_token)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = InviteUser)]
struct InviteUserBody {
    email: String,
    #[serde(default)]
    name: String,
    role: StaffRole,
}

/// A staff role: org_user or org_admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum StaffRole {
    OrgUser,
    OrgAdmin,
}

/// Invite a staff member as org_user or org_admin (an invitation e-mail is sent; org_admin).
#[utoipa::path(post, path = "/users", tag = "organizations", request_body = InviteUserBody,
    responses((status = 201, description = "The invited user", body = BankUserDto)))]
async fn invite_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<InviteUserBody>,
) -> Result<(StatusCode, Json<BankUserDto>), ApiError> {
    let role = match body.role {
        StaffRole::OrgUser => pb::RoleKind::OrgUser,
        StaffRole::OrgAdmin => pb::RoleKind::OrgAdmin,
    };
    let answer = UserServiceClient::new(state.upstreams.partner.clone())
        .invite_user(forward(
            &caller,
            pb::InviteUserRequest {
                email: body.email,
                name: body.name,
                role: role as i32,
                request_id: String::new(),
            },
        ))
        .await?
        .into_inner();
    let bank_user = answer
        .user
        .ok_or_else(|| ServiceError::internal("no user in the answer"))?;
    let role = role_kind(bank_user.role());
    let user = bank_user
        .user
        .ok_or_else(|| ServiceError::internal("no user in the answer"))?;
    Ok((
        StatusCode::CREATED,
        Json(BankUserDto {
            user: UserDto::from(user),
            role,
        }),
    ))
}

/// Remove a staff member's access to the bank (org_admin); removing yourself is 409
/// USER_ROLE_REQUIRED.
#[utoipa::path(delete, path = "/users/{id}", tag = "organizations",
    params(("id" = uuid::Uuid, Path, description = "The user")),
    responses((status = 204, description = "Removed")))]
async fn remove_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    UserServiceClient::new(state.upstreams.partner.clone())
        .remove_user(forward(
            &caller,
            pb::RemoveUserRequest {
                user_id: id.to_string(),
            },
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateUserRole)]
struct RoleBody {
    role: StaffRole,
}

/// Promote a staff member to org_admin or demote them to org_user (org_admin); demoting
/// yourself is 409 USER_ROLE_REQUIRED.
#[utoipa::path(patch, path = "/users/{id}", tag = "organizations",
    params(("id" = uuid::Uuid, Path, description = "The user")), request_body = RoleBody,
    responses((status = 200, description = "The user with their new role", body = BankUserDto)))]
async fn update_user_role(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<uuid::Uuid>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<BankUserDto>, ApiError> {
    let role = match body.role {
        StaffRole::OrgUser => pb::RoleKind::OrgUser,
        StaffRole::OrgAdmin => pb::RoleKind::OrgAdmin,
    };
    let answer = UserServiceClient::new(state.upstreams.partner.clone())
        .update_user_role(forward(
            &caller,
            pb::UpdateUserRoleRequest {
                user_id: id.to_string(),
                role: role as i32,
            },
        ))
        .await?
        .into_inner();
    bank_user_answer(answer.user)
}

/// Send a staff member's invitation again.
#[utoipa::path(post, path = "/users/{id}/resend_invitation", tag = "organizations",
    params(("id" = uuid::Uuid, Path, description = "The user")),
    responses((status = 200, description = "The user", body = BankUserDto)))]
async fn resend_invitation(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Result<Json<BankUserDto>, ApiError> {
    let answer = UserServiceClient::new(state.upstreams.partner.clone())
        .resend_invitation(forward(
            &caller,
            pb::ResendInvitationRequest {
                user_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    bank_user_answer(answer.user)
}

fn bank_user_answer(bank_user: Option<pb::BankUser>) -> Result<Json<BankUserDto>, ApiError> {
    let bank_user = bank_user.ok_or_else(|| ServiceError::internal("no user in the answer"))?;
    let role = role_kind(bank_user.role());
    let user = bank_user
        .user
        .ok_or_else(|| ServiceError::internal("no user in the answer"))?;
    Ok(Json(BankUserDto {
        user: UserDto::from(user),
        role,
    }))
}
