//! Partners as bank staff see them (API.md § Partners): CRUD, the status verbs, profiles,
//! partner users and the one-time import.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_runtime::auth::{Principal, forward};
use essentials_runtime::{FieldViolation, ServiceError};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::profile::{ProfileBody, ProfileDto};
use super::sessions::UserDto;
use crate::AppState;
use crate::convert::{Page, PageQuery, optional, patch_body, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, IdempotencyKey};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_partners, create_partner))
        .routes(routes!(import_partners))
        .routes(routes!(get_partner, update_partner, delete_partner))
        .routes(routes!(invite))
        .routes(routes!(invite_and_approve))
        .routes(routes!(approve))
        .routes(routes!(request_recertification))
        .routes(routes!(deactivate))
        .routes(routes!(reactivate))
        .routes(routes!(get_profile, put_profile))
        .routes(routes!(list_users, invite_user))
        .routes(routes!(remove_user))
        .routes(routes!(resend_user_invitation))
}

pub fn client(state: &AppState) -> PartnerServiceClient<Channel> {
    PartnerServiceClient::new(state.upstreams.partner.clone())
}

pub fn status_name(status: pb::PartnerStatus) -> &'static str {
    match status {
        pb::PartnerStatus::Uninvited => "uninvited",
        pb::PartnerStatus::Invited => "invited",
        pb::PartnerStatus::AwaitingReview => "awaiting_review",
        pb::PartnerStatus::Approved => "approved",
        pb::PartnerStatus::RecertificationRequired => "recertification_required",
        pb::PartnerStatus::Deactivated => "deactivated",
        pb::PartnerStatus::Unspecified => "unspecified",
    }
}

fn parse_status(name: &str) -> Option<pb::PartnerStatus> {
    [
        pb::PartnerStatus::Uninvited,
        pb::PartnerStatus::Invited,
        pb::PartnerStatus::AwaitingReview,
        pb::PartnerStatus::Approved,
        pb::PartnerStatus::RecertificationRequired,
        pb::PartnerStatus::Deactivated,
    ]
    .into_iter()
    .find(|status| status_name(*status) == name)
}

/// A partner agency of the bank.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Partner)]
pub struct PartnerDto {
    id: String,
    name: String,
    email: String,
    /// uninvited, invited, awaiting_review, approved, recertification_required or deactivated.
    status: &'static str,
    send_reminders: bool,
    quota: Option<i32>,
    notes: String,
    info_for_partner: String,
    partner_group_id: Option<String>,
    default_storage_location_id: Option<String>,
    deletable: bool,
    review_requested_at: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// What can be done with the partner now: each action (invite, invite_and_approve,
    /// submit_for_approval, approve, request_recertification, deactivate, reactivate, delete),
    /// whether its status allows it, and why not.
    actions: Vec<PartnerActionDto>,
}

/// An action on a partner and whether it is allowed now.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PartnerAction)]
pub struct PartnerActionDto {
    name: String,
    allowed: bool,
    /// Why it is refused; empty when allowed.
    reason: String,
}

impl From<pb::Partner> for PartnerDto {
    fn from(partner: pb::Partner) -> Self {
        Self {
            status: status_name(partner.status()),
            review_requested_at: timestamp(partner.review_requested_at.as_ref()),
            created_at: timestamp(partner.created_at.as_ref()),
            updated_at: timestamp(partner.updated_at.as_ref()),
            id: partner.id,
            name: partner.name,
            email: partner.email,
            send_reminders: partner.send_reminders,
            quota: partner.quota,
            notes: partner.notes,
            info_for_partner: partner.info_for_partner,
            partner_group_id: optional(partner.partner_group_id),
            default_storage_location_id: optional(partner.default_storage_location_id),
            deletable: partner.deletable,
            actions: partner
                .actions
                .into_iter()
                .map(|action| PartnerActionDto {
                    name: action.name,
                    allowed: action.allowed,
                    reason: action.reason,
                })
                .collect(),
        }
    }
}

fn partner_answer(partner: Option<pb::Partner>) -> Result<Json<PartnerDto>, ApiError> {
    partner
        .map(|partner| Json(PartnerDto::from(partner)))
        .ok_or_else(|| ApiError::from(ServiceError::internal("no partner in the answer")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only these statuses, comma-separated: uninvited, invited, awaiting_review, approved,
    /// recertification_required, deactivated.
    status: Option<String>,
    /// Only the partners of this group.
    partner_group_id: Option<String>,
    /// Search text.
    q: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// The bank's partners, filtered by status, group or search text.
#[utoipa::path(get, path = "/partners", tag = "partners", params(ListQuery, PageQuery),
    responses((status = 200, description = "A page of partners", body = Page<PartnerDto>)))]
async fn list_partners(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<PartnerDto>>, ApiError> {
    let mut statuses = Vec::new();
    for name in query.status.iter().flat_map(|text| text.split(',')) {
        let status = parse_status(name.trim()).ok_or_else(|| {
            ServiceError::invalid(vec![FieldViolation::new(
                "status",
                format!("`{name}` is not one of uninvited, invited, awaiting_review, approved, recertification_required, deactivated"),
            )])
        })?;
        statuses.push(status as i32);
    }
    let answer = client(&state)
        .list_partners(forward(
            &caller,
            pb::ListPartnersRequest {
                page_size: query
                    .page
                    .page_size
                    .map_or(0, |size| i32::try_from(size).unwrap_or(i32::MAX)),
                page_token: query.page.page_token.unwrap_or_default(),
                statuses,
                partner_group_id: query.partner_group_id.unwrap_or_default(),
                query: query.q.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok(Json(Page::new(
        answer.partners.into_iter().map(PartnerDto::from).collect(),
        answer.next_page_token,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreatePartner)]
struct CreatePartnerBody {
    name: String,
    email: String,
    #[serde(default)]
    send_reminders: bool,
    quota: Option<i32>,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    info_for_partner: String,
    partner_group_id: Option<String>,
    default_storage_location_id: Option<String>,
}

/// Add a partner (status uninvited); a name or e-mail already used in the bank is 409
/// (PARTNER_NAME_TAKEN, PARTNER_EMAIL_TAKEN).
#[utoipa::path(post, path = "/partners", tag = "partners", request_body = CreatePartnerBody,
    responses((status = 201, description = "The new partner", body = PartnerDto)))]
async fn create_partner(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<CreatePartnerBody>,
) -> Result<(StatusCode, Json<PartnerDto>), ApiError> {
    let answer = client(&state)
        .create_partner(forward(
            &caller,
            pb::CreatePartnerRequest {
                partner: Some(pb::Partner {
                    name: body.name,
                    email: body.email,
                    send_reminders: body.send_reminders,
                    quota: body.quota,
                    notes: body.notes,
                    info_for_partner: body.info_for_partner,
                    partner_group_id: body.partner_group_id.unwrap_or_default(),
                    default_storage_location_id: body
                        .default_storage_location_id
                        .unwrap_or_default(),
                    ..Default::default()
                }),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, partner_answer(answer.partner)?))
}

/// One partner.
#[utoipa::path(get, path = "/partners/{id}", tag = "partners",
    params(("id" = Uuid, Path, description = "The partner")),
    responses((status = 200, description = "The partner", body = PartnerDto)))]
async fn get_partner(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PartnerDto>, ApiError> {
    let answer = client(&state)
        .get_partner(forward(
            &caller,
            pb::GetPartnerRequest {
                partner_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    partner_answer(answer.partner)
}

/// The fields to change (at least one); a field sent as null is cleared.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdatePartner)]
struct PartnerPatch {
    name: Option<String>,
    email: Option<String>,
    send_reminders: Option<bool>,
    quota: Option<i32>,
    notes: Option<String>,
    info_for_partner: Option<String>,
    partner_group_id: Option<String>,
    default_storage_location_id: Option<String>,
}

/// Change some of a partner's fields (the keys sent; at least one).
#[utoipa::path(patch, path = "/partners/{id}", tag = "partners",
    params(("id" = Uuid, Path, description = "The partner")), request_body = PartnerPatch,
    responses((status = 200, description = "The partner as it now is", body = PartnerDto)))]
async fn update_partner(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    crate::extract::ApiBody(body): crate::extract::ApiBody,
) -> Result<Json<PartnerDto>, ApiError> {
    let (patch, keys) = patch_body::<PartnerPatch>(&body)?;
    if keys.is_empty() {
        return Err(ServiceError::invalid(vec![FieldViolation::new(
            "body",
            "name at least one field to change",
        )])
        .into());
    }
    let answer = client(&state)
        .update_partner(forward(
            &caller,
            pb::UpdatePartnerRequest {
                partner: Some(pb::Partner {
                    id: id.to_string(),
                    name: patch.name.unwrap_or_default(),
                    email: patch.email.unwrap_or_default(),
                    send_reminders: patch.send_reminders.unwrap_or_default(),
                    quota: patch.quota,
                    notes: patch.notes.unwrap_or_default(),
                    info_for_partner: patch.info_for_partner.unwrap_or_default(),
                    partner_group_id: patch.partner_group_id.unwrap_or_default(),
                    default_storage_location_id: patch
                        .default_storage_location_id
                        .unwrap_or_default(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths: keys }),
            },
        ))
        .await?
        .into_inner();
    partner_answer(answer.partner)
}

/// Delete a partner; only while `deletable`, else 409 PARTNER_NOT_DELETABLE.
#[utoipa::path(delete, path = "/partners/{id}", tag = "partners",
    params(("id" = Uuid, Path, description = "The partner")),
    responses((status = 204, description = "Deleted")))]
async fn delete_partner(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    client(&state)
        .delete_partner(forward(
            &caller,
            pb::DeletePartnerRequest {
                partner_id: id.to_string(),
            },
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The status verbs: each answers 200 with the partner as it now is.
macro_rules! verb {
    ($(#[$meta:meta])* $name:ident, $method:ident, $request:ident) => {
        $(#[$meta])*
        async fn $name(
            State(state): State<AppState>,
            Caller(caller): Caller,
            ApiPath(id): ApiPath<Uuid>,
        ) -> Result<Json<PartnerDto>, ApiError> {
            let answer = client(&state)
                .$method(forward(
                    &caller,
                    pb::$request {
                        partner_id: id.to_string(),
                    },
                ))
                .await?
                .into_inner();
            partner_answer(answer.partner)
        }
    };
}

verb!(
    /// Invite the partner (its contact gets an invitation e-mail) → invited; from uninvited or
    /// invited (sent again), else 409 PARTNER_NOT_INVITABLE.
    #[utoipa::path(post, path = "/partners/{id}/invite", tag = "partners",
        operation_id = "invite_partner", params(("id" = Uuid, Path, description = "The partner")),
        responses((status = 200, description = "The partner, now invited", body = PartnerDto)))]
    invite, invite_partner, InvitePartnerRequest
);
verb!(
    /// Invite and approve at once → approved; from uninvited or invited, else 409
    /// PARTNER_NOT_INVITABLE.
    #[utoipa::path(post, path = "/partners/{id}/invite_and_approve", tag = "partners",
        operation_id = "invite_and_approve_partner",
        params(("id" = Uuid, Path, description = "The partner")),
        responses((status = 200, description = "The partner, now approved", body = PartnerDto)))]
    invite_and_approve, invite_and_approve_partner, InviteAndApprovePartnerRequest
);
verb!(
    /// Approve the partner → approved; from invited or awaiting_review, else 409
    /// PARTNER_NOT_APPROVABLE.
    #[utoipa::path(post, path = "/partners/{id}/approve", tag = "partners",
        operation_id = "approve_partner", params(("id" = Uuid, Path, description = "The partner")),
        responses((status = 200, description = "The partner, now approved", body = PartnerDto)))]
    approve, approve_partner, ApprovePartnerRequest
);
verb!(
    /// Ask the partner to recertify its profile → recertification_required; from invited,
    /// awaiting_review or approved, else 409 (PARTNER_NOT_INVITED, PARTNER_DEACTIVATED,
    /// PARTNER_ALREADY_RECERTIFICATION_REQUIRED).
    #[utoipa::path(post, path = "/partners/{id}/request_recertification", tag = "partners",
        operation_id = "request_partner_recertification",
        params(("id" = Uuid, Path, description = "The partner")),
        responses((status = 200, description = "The partner, now recertification_required",
            body = PartnerDto)))]
    request_recertification, request_recertification, RequestRecertificationRequest
);
verb!(
    /// Deactivate the partner → deactivated (it can no longer request); from any other status,
    /// else 409 PARTNER_ALREADY_DEACTIVATED.
    #[utoipa::path(post, path = "/partners/{id}/deactivate", tag = "partners",
        operation_id = "deactivate_partner",
        params(("id" = Uuid, Path, description = "The partner")),
        responses((status = 200, description = "The partner, now deactivated", body = PartnerDto)))]
    deactivate, deactivate_partner, DeactivatePartnerRequest
);
verb!(
    /// Reactivate the partner → approved; from deactivated only, else 409
    /// PARTNER_NOT_DEACTIVATED.
    #[utoipa::path(post, path = "/partners/{id}/reactivate", tag = "partners",
        operation_id = "reactivate_partner",
        params(("id" = Uuid, Path, description = "The partner")),
        responses((status = 200, description = "The partner, now approved", body = PartnerDto)))]
    reactivate, reactivate_partner, ReactivatePartnerRequest
);

pub async fn fetch_profile(
    state: &AppState,
    caller: &Principal,
    partner_id: String,
) -> Result<Json<ProfileDto>, ApiError> {
    let answer = client(state)
        .get_profile(forward(caller, pb::GetProfileRequest { partner_id }))
        .await?
        .into_inner();
    Ok(Json(ProfileDto::from(answer.profile.unwrap_or_default())))
}

pub async fn store_profile(
    state: &AppState,
    caller: &Principal,
    partner_id: String,
    profile: ProfileBody,
) -> Result<Json<ProfileDto>, ApiError> {
    let profile = profile.into_proto()?;
    let answer = client(state)
        .update_profile(forward(
            caller,
            pb::UpdateProfileRequest {
                partner_id,
                profile: Some(profile),
                update_mask: None,
            },
        ))
        .await?
        .into_inner();
    Ok(Json(ProfileDto::from(answer.profile.unwrap_or_default())))
}

/// A partner's profile.
#[utoipa::path(get, path = "/partners/{id}/profile", tag = "partners",
    operation_id = "get_partner_profile", params(("id" = Uuid, Path, description = "The partner")),
    responses((status = 200, description = "The profile", body = ProfileDto)))]
async fn get_profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ProfileDto>, ApiError> {
    fetch_profile(&state, &caller, id.to_string()).await
}

/// Replace a partner's profile (every section); an unknown agency_type is 400.
#[utoipa::path(put, path = "/partners/{id}/profile", tag = "partners",
    operation_id = "put_partner_profile", params(("id" = Uuid, Path, description = "The partner")),
    request_body = ProfileBody,
    responses((status = 200, description = "The profile as stored", body = ProfileDto)))]
async fn put_profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(profile): ApiJson<ProfileBody>,
) -> Result<Json<ProfileDto>, ApiError> {
    store_profile(&state, &caller, id.to_string(), profile).await
}

/// The partner's users.
#[utoipa::path(get, path = "/partners/{id}/users", tag = "partners",
    operation_id = "list_partner_users", params(("id" = Uuid, Path, description = "The partner")),
    responses((status = 200, description = "The partner's users", body = Page<UserDto>)))]
async fn list_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Page<UserDto>>, ApiError> {
    let answer = client(&state)
        .list_partner_users(forward(
            &caller,
            pb::ListPartnerUsersRequest {
                partner_id: id.to_string(),
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    Ok(Json(Page::new(
        answer.users.into_iter().map(UserDto::from).collect(),
        answer.next_page_token,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = InvitePartnerUser)]
struct InvitePartnerUserBody {
    email: String,
    #[serde(default)]
    name: String,
}

/// Invite a user to the partner (an invitation e-mail is sent).
#[utoipa::path(post, path = "/partners/{id}/users", tag = "partners",
    operation_id = "invite_partner_user", params(("id" = Uuid, Path, description = "The partner")),
    request_body = InvitePartnerUserBody,
    responses((status = 201, description = "The invited user", body = UserDto)))]
async fn invite_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<InvitePartnerUserBody>,
) -> Result<(StatusCode, Json<UserDto>), ApiError> {
    let answer = client(&state)
        .invite_partner_user(forward(
            &caller,
            pb::InvitePartnerUserRequest {
                partner_id: id.to_string(),
                email: body.email,
                name: body.name,
                request_id: String::new(),
            },
        ))
        .await?
        .into_inner();
    let user = answer
        .user
        .ok_or_else(|| ServiceError::internal("no user in the answer"))?;
    Ok((StatusCode::CREATED, Json(UserDto::from(user))))
}

/// Remove a user from the partner.
#[utoipa::path(delete, path = "/partners/{id}/users/{user_id}", tag = "partners",
    operation_id = "remove_partner_user",
    params(
        ("id" = Uuid, Path, description = "The partner"),
        ("user_id" = Uuid, Path, description = "The partner user"),
    ),
    responses((status = 204, description = "Removed")))]
async fn remove_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    client(&state)
        .remove_partner_user(forward(
            &caller,
            pb::RemovePartnerUserRequest {
                partner_id: id.to_string(),
                user_id: user_id.to_string(),
            },
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A CSV row that was not imported, and why.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PartnerImportSkippedRow)]
struct SkippedDto {
    row: i32,
    name: String,
    message: String,
}

/// What the import did: how many partners it created and the rows it skipped.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PartnerImport)]
struct ImportDto {
    imported: i32,
    skipped: Vec<SkippedDto>,
}

/// Import partners from CSV (`Content-Type: text/csv`, header `name,email`), once per bank:
/// a second import is 409 PARTNERS_ALREADY_IMPORTED.
#[utoipa::path(post, path = "/partners/import", tag = "partners",
    request_body(content = String, content_type = "text/csv",
        description = "A CSV file with the header `name,email`"),
    responses((status = 200, description = "What was imported and what was skipped",
        body = ImportDto)))]
async fn import_partners(
    State(state): State<AppState>,
    Caller(caller): Caller,
    IdempotencyKey(key): IdempotencyKey,
    headers: HeaderMap,
    crate::extract::ApiBody(body): crate::extract::ApiBody,
) -> Result<Json<ImportDto>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("text/csv") {
        return Err(ServiceError::invalid(vec![FieldViolation::new(
            "Content-Type",
            "must be text/csv (a file with the header name,email)",
        )])
        .into());
    }
    if body.is_empty() {
        return Err(ServiceError::invalid(vec![FieldViolation::new(
            "body",
            "No file was attached!",
        )])
        .into());
    }
    let answer = client(&state)
        .import_partners(forward(
            &caller,
            pb::ImportPartnersRequest {
                csv: body.to_vec(),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok(Json(ImportDto {
        imported: answer.imported,
        skipped: answer
            .skipped
            .into_iter()
            .map(|row| SkippedDto {
                row: row.row,
                name: row.name,
                message: row.message,
            })
            .collect(),
    }))
}

/// Send a partner user's invitation again.
#[utoipa::path(post, path = "/partners/{id}/users/{user_id}/resend_invitation", tag = "partners",
    operation_id = "resend_partner_user_invitation",
    params(
        ("id" = Uuid, Path, description = "The partner"),
        ("user_id" = Uuid, Path, description = "The partner user"),
    ),
    responses((status = 200, description = "The user", body = UserDto)))]
async fn resend_user_invitation(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<UserDto>, ApiError> {
    let answer = client(&state)
        .resend_partner_user_invitation(forward(
            &caller,
            pb::ResendPartnerUserInvitationRequest {
                partner_id: id.to_string(),
                user_id: user_id.to_string(),
            },
        ))
        .await?
        .into_inner();
    let user = answer
        .user
        .ok_or_else(|| ServiceError::internal("no user in the answer"))?;
    Ok(Json(UserDto::from(user)))
}
