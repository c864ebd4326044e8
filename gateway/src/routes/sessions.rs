//! Sign-in, role switching, the caller, invitation acceptance (API.md § Sessions and users).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_client::AuthServiceClient;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::forward;
use essentials_runtime::telemetry::traced_request;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::convert::{optional, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_session))
        .routes(routes!(switch_role))
        .routes(routes!(refresh_session))
        .routes(routes!(me))
        .routes(routes!(accept_invitation))
        .routes(routes!(request_password_reset))
        .routes(routes!(reset_password))
        .routes(routes!(issue_service_token))
        .routes(routes!(list_service_accounts, create_service_account))
        .routes(routes!(delete_service_account))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserDto {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
}

impl From<pb::User> for UserDto {
    fn from(user: pb::User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: optional(user.name),
        }
    }
}

/// A role the user holds; `kind` is super_admin, org_admin, org_user or partner.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Role)]
pub struct RoleDto {
    pub id: String,
    pub kind: &'static str,
    pub organization_id: Option<String>,
    pub partner_id: Option<String>,
    pub organization_name: Option<String>,
    pub partner_name: Option<String>,
}

pub fn role_kind(kind: pb::RoleKind) -> &'static str {
    match kind {
        pb::RoleKind::SuperAdmin => "super_admin",
        pb::RoleKind::OrgAdmin => "org_admin",
        pb::RoleKind::OrgUser => "org_user",
        pb::RoleKind::Partner => "partner",
        pb::RoleKind::Unspecified => "unspecified",
    }
}

impl From<pb::Role> for RoleDto {
    fn from(role: pb::Role) -> Self {
        Self {
            kind: role_kind(role.kind()),
            id: role.id,
            organization_id: optional(role.organization_id),
            partner_id: optional(role.partner_id),
            organization_name: optional(role.organization_name),
            partner_name: optional(role.partner_name),
        }
    }
}

/// A signed-in session: the access token for the current role, and every role of the user.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionDto {
    pub token: String,
    pub expires_at: Option<String>,
    pub user: Option<UserDto>,
    pub roles: Vec<RoleDto>,
    pub current_role: Option<RoleDto>,
}

impl From<pb::Session> for SessionDto {
    fn from(session: pb::Session) -> Self {
        Self {
            expires_at: timestamp(session.expires_at.as_ref()),
            token: session.token,
            user: session.user.map(UserDto::from),
            roles: session.roles.into_iter().map(RoleDto::from).collect(),
            current_role: session.current_role.map(RoleDto::from),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
struct Credentials {
    email: String,
    password: String,
}

/// Sign in. Wrong e-mail and wrong password get the same 401; repeated failures per e-mail or
/// client address are throttled (429 with Retry-After).
#[utoipa::path(post, path = "/sessions", tag = "sessions", security(()),
    request_body = Credentials,
    responses((status = 201, description = "Signed in", body = SessionDto)))]
async fn create_session(
    State(state): State<AppState>,
    client: crate::extract::ClientAddress,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let mut request = traced_request(pb::LoginRequest {
        email: body.email,
        password: body.password,
    });
    essentials_runtime::auth::with_client_address(&mut request, client.0);
    let answer = AuthServiceClient::new(state.upstreams.partner.clone())
        .login(request)
        .await?
        .into_inner();
    let session = answer
        .session
        .ok_or_else(|| ServiceError::internal("login answered without a session"))?;
    Ok((StatusCode::CREATED, Json(SessionDto::from(session))))
}

#[derive(Debug, Deserialize, ToSchema)]
struct SwitchBody {
    role_id: String,
}

/// Switch to another role of the signed-in user (bank staff acting as their proxy partner);
/// a role the user lacks is 403.
#[utoipa::path(post, path = "/sessions/switch", tag = "sessions", request_body = SwitchBody,
    responses((status = 200, description = "A token for that role", body = SessionDto)))]
async fn switch_role(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<SwitchBody>,
) -> Result<Json<SessionDto>, ApiError> {
    switch_to(&state, &caller, body.role_id).await
}

/// A session for `role_id`, if the caller holds it.
async fn switch_to(
    state: &AppState,
    caller: &essentials_runtime::auth::Principal,
    role_id: String,
) -> Result<Json<SessionDto>, ApiError> {
    let answer = AuthServiceClient::new(state.upstreams.partner.clone())
        .switch_role(forward(caller, pb::SwitchRoleRequest { role_id }))
        .await?
        .into_inner();
    let session = answer
        .session
        .ok_or_else(|| ServiceError::internal("switch answered without a session"))?;
    Ok(Json(SessionDto::from(session)))
}

/// A fresh token for the caller's current role, while the user still holds it (tokens are
/// short-lived: refresh before `expires_at`). A role taken away since is 403, so a removed staff
/// member or partner user keeps access at most one token lifetime.
#[utoipa::path(post, path = "/sessions/refresh", tag = "sessions",
    responses((status = 200, description = "A new token for the same role", body = SessionDto)))]
async fn refresh_session(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<SessionDto>, ApiError> {
    switch_to(&state, &caller, caller.role_id.to_string()).await
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Me)]
struct MeDto {
    user: Option<UserDto>,
    roles: Vec<RoleDto>,
    current_role: Option<RoleDto>,
}

/// The signed-in user, their roles and the current one.
#[utoipa::path(get, path = "/me", tag = "sessions",
    responses((status = 200, description = "The caller", body = MeDto)))]
async fn me(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<MeDto>, ApiError> {
    let answer = AuthServiceClient::new(state.upstreams.partner.clone())
        .get_me(forward(&caller, pb::GetMeRequest {}))
        .await?
        .into_inner();
    Ok(Json(MeDto {
        user: answer.user.map(UserDto::from),
        roles: answer.roles.into_iter().map(RoleDto::from).collect(),
        current_role: answer.current_role.map(RoleDto::from),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
struct AcceptBody {
    token: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AcceptedInvitation)]
struct AcceptedDto {
    user: Option<UserDto>,
}

/// Accept an invitation: set a password (8–128 characters, at least one that is not a letter
/// or digit). A used or expired token is 410.
#[utoipa::path(post, path = "/invitations/accept", tag = "sessions", security(()),
    request_body = AcceptBody,
    responses(
        (status = 200, description = "The account is ready to sign in", body = AcceptedDto),
        (status = 410, description = "The invitation was used or has expired", body = crate::error::ErrorBody),
    ))]
async fn accept_invitation(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AcceptBody>,
) -> Result<Json<AcceptedDto>, ApiError> {
    let answer = AuthServiceClient::new(state.upstreams.partner.clone())
        .accept_invitation(traced_request(pb::AcceptInvitationRequest {
            token: body.token,
            password: body.password,
            name: body.name.unwrap_or_default(),
        }))
        .await
        .map_err(|status| {
            let error = ServiceError::from_status(&status);
            // A used or expired invitation is gone for good: 410, as API.md says.
            match error.reason.as_deref() {
                Some("INVITATION_USED" | "INVITATION_EXPIRED") => {
                    ApiError::with_status(error, StatusCode::GONE)
                }
                _ => ApiError::from(error),
            }
        })?
        .into_inner();
    Ok(Json(AcceptedDto {
        user: answer.user.map(UserDto::from),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
struct ResetRequestBody {
    email: String,
}

/// Ask for a password-reset e-mail. Always 202: whether the e-mail has an account is not told.
#[utoipa::path(post, path = "/password_resets", tag = "sessions", security(()),
    request_body = ResetRequestBody,
    responses((status = 202, description = "If the account exists, an e-mail is on its way")))]
async fn request_password_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetRequestBody>,
) -> Result<StatusCode, ApiError> {
    AuthServiceClient::new(state.upstreams.partner.clone())
        .request_password_reset(traced_request(pb::RequestPasswordResetRequest {
            email: body.email,
        }))
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, ToSchema)]
struct ResetBody {
    token: String,
    password: String,
}

/// Set a new password with the token from the reset e-mail (single use).
#[utoipa::path(post, path = "/password_resets/complete", tag = "sessions", security(()),
    request_body = ResetBody,
    responses(
        (status = 204, description = "The password is changed"),
        (status = 410, description = "The token was used or has expired", body = crate::error::ErrorBody),
    ))]
async fn reset_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<StatusCode, ApiError> {
    AuthServiceClient::new(state.upstreams.partner.clone())
        .reset_password(traced_request(pb::ResetPasswordRequest {
            token: body.token,
            password: body.password,
        }))
        .await
        .map_err(|status| {
            let error = ServiceError::from_status(&status);
            match error.reason.as_deref() {
                Some("INVITATION_USED" | "INVITATION_EXPIRED") => {
                    ApiError::with_status(error, StatusCode::GONE)
                }
                _ => ApiError::from(error),
            }
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
struct ClientCredentials {
    client_id: String,
    client_secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ServiceToken)]
struct ServiceTokenDto {
    access_token: String,
    expires_at: Option<String>,
    role: Option<RoleDto>,
}

/// Exchange a service account's client credentials for an access token (internal service
/// clients).
#[utoipa::path(post, path = "/service_tokens", tag = "sessions", security(()),
    request_body = ClientCredentials,
    responses((status = 201, description = "An access token", body = ServiceTokenDto)))]
async fn issue_service_token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ClientCredentials>,
) -> Result<(StatusCode, Json<ServiceTokenDto>), ApiError> {
    let answer = AuthServiceClient::new(state.upstreams.partner.clone())
        .issue_service_token(traced_request(pb::IssueServiceTokenRequest {
            client_id: body.client_id,
            client_secret: body.client_secret,
        }))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(ServiceTokenDto {
            expires_at: timestamp(answer.expires_at.as_ref()),
            access_token: answer.access_token,
            role: answer.role.map(RoleDto::from),
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ServiceAccount)]
struct ServiceAccountDto {
    id: String,
    name: String,
    client_id: String,
    organization_id: Option<String>,
    created_at: Option<String>,
    /// Only in the answer to the creation: keep it, it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

impl ServiceAccountDto {
    fn new(account: pb::ServiceAccount, secret: Option<String>) -> Self {
        Self {
            created_at: timestamp(account.created_at.as_ref()),
            id: account.id,
            name: account.name,
            client_id: account.client_id,
            organization_id: optional(account.organization_id),
            client_secret: secret,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ServiceAccountBody {
    name: String,
    organization_id: Option<String>,
}

/// Create a service account: scoped to one bank (org_admin, or super_admin naming the bank) or,
/// without `organization_id`, an operator account (super_admin). The secret is shown once: a
/// retry with the same Idempotency-Key answers the same account without it (it is never stored).
#[utoipa::path(post, path = "/service_accounts", tag = "sessions",
    request_body = ServiceAccountBody,
    responses((status = 201, description = "The account, with its secret", body = ServiceAccountDto)))]
async fn create_service_account(
    State(state): State<AppState>,
    Caller(caller): Caller,
    crate::extract::IdempotencyKey(key): crate::extract::IdempotencyKey,
    ApiJson(body): ApiJson<ServiceAccountBody>,
) -> Result<(StatusCode, Json<ServiceAccountDto>), ApiError> {
    let answer = AuthServiceClient::new(state.upstreams.partner.clone())
        .create_service_account(forward(
            &caller,
            pb::CreateServiceAccountRequest {
                name: body.name,
                organization_id: body.organization_id.unwrap_or_default(),
                request_id: key.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    let account = answer
        .service_account
        .ok_or_else(|| ServiceError::internal("no account in the answer"))?;
    Ok((
        StatusCode::CREATED,
        Json(ServiceAccountDto::new(
            account,
            optional(answer.client_secret),
        )),
    ))
}

/// Service accounts the caller may manage.
#[utoipa::path(get, path = "/service_accounts", tag = "sessions",
    responses((status = 200, description = "Service accounts", body = crate::convert::Page<ServiceAccountDto>)))]
async fn list_service_accounts(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<crate::convert::Page<ServiceAccountDto>>, ApiError> {
    let answer = AuthServiceClient::new(state.upstreams.partner.clone())
        .list_service_accounts(forward(&caller, pb::ListServiceAccountsRequest::default()))
        .await?
        .into_inner();
    Ok(Json(crate::convert::Page::new(
        answer
            .service_accounts
            .into_iter()
            .map(|account| ServiceAccountDto::new(account, None))
            .collect(),
        answer.next_page_token,
    )))
}

/// Delete a service account: its tokens stop working when they expire.
#[utoipa::path(delete, path = "/service_accounts/{id}", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "The service account")),
    responses((status = 204, description = "Deleted")))]
async fn delete_service_account(
    State(state): State<AppState>,
    Caller(caller): Caller,
    crate::extract::ApiPath(id): crate::extract::ApiPath<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    AuthServiceClient::new(state.upstreams.partner.clone())
        .delete_service_account(forward(
            &caller,
            pb::DeleteServiceAccountRequest {
                service_account_id: id.to_string(),
            },
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
