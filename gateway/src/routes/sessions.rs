//! Sign-in, role switching, the caller, invitation acceptance (API.md § Sessions and users).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::auth_service_client::AuthServiceClient;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::forward;
use essentials_runtime::telemetry::traced_request;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::convert::{optional, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sessions", post(create_session))
        .route("/sessions/switch", post(switch_role))
        .route("/me", get(me))
        .route("/invitations/accept", post(accept_invitation))
}

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
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

#[derive(Debug, Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

async fn create_session(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let answer = AuthServiceClient::new(state.upstreams.partner.clone())
        .login(traced_request(pb::LoginRequest {
            email: body.email,
            password: body.password,
        }))
        .await?
        .into_inner();
    let session = answer
        .session
        .ok_or_else(|| ServiceError::internal("login answered without a session"))?;
    Ok((StatusCode::CREATED, Json(SessionDto::from(session))))
}

#[derive(Debug, Deserialize)]
struct SwitchBody {
    role_id: String,
}

async fn switch_role(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<SwitchBody>,
) -> Result<Json<SessionDto>, ApiError> {
    let answer = AuthServiceClient::new(state.upstreams.partner.clone())
        .switch_role(forward(
            &caller,
            pb::SwitchRoleRequest {
                role_id: body.role_id,
            },
        ))
        .await?
        .into_inner();
    let session = answer
        .session
        .ok_or_else(|| ServiceError::internal("switch answered without a session"))?;
    Ok(Json(SessionDto::from(session)))
}

#[derive(Debug, Serialize)]
struct MeDto {
    user: Option<UserDto>,
    roles: Vec<RoleDto>,
    current_role: Option<RoleDto>,
}

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

#[derive(Debug, Deserialize)]
struct AcceptBody {
    token: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Serialize)]
struct AcceptedDto {
    user: Option<UserDto>,
}

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
