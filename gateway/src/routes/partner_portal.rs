//! The partner portal: a partner user's own partner and profile (API.md § Partner portal).

use axum::Json;
use axum::extract::State;
use essentials_proto::partner::v1 as pb;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::forward;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::partners::{PartnerDto, client, fetch_profile, store_profile};
use super::profile::{ProfileBody, ProfileDto};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(own_partner))
        .routes(routes!(own_profile, put_own_profile))
        .routes(routes!(submit_for_approval))
}

/// The caller's own partner id; bank staff get 403 here.
fn own_partner_id(caller: &essentials_runtime::auth::Principal) -> Result<String, ApiError> {
    let (_, partner_id) = caller.require_partner()?;
    Ok(partner_id.to_string())
}

/// The caller's own partner (current role = partner; bank staff get 403).
#[utoipa::path(get, path = "/partner", tag = "partner portal",
    responses((status = 200, description = "The caller's partner", body = PartnerDto)))]
async fn own_partner(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<PartnerDto>, ApiError> {
    let partner_id = own_partner_id(&caller)?;
    let answer = client(&state)
        .get_partner(forward(&caller, pb::GetPartnerRequest { partner_id }))
        .await?
        .into_inner();
    answer
        .partner
        .map(|partner| Json(PartnerDto::from(partner)))
        .ok_or_else(|| ApiError::from(ServiceError::internal("no partner in the answer")))
}

/// The caller's own partner profile.
#[utoipa::path(get, path = "/partner/profile", tag = "partner portal",
    responses((status = 200, description = "The profile", body = ProfileDto)))]
async fn own_profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<ProfileDto>, ApiError> {
    let partner_id = own_partner_id(&caller)?;
    fetch_profile(&state, &caller, partner_id).await
}

/// Replace the caller's own partner profile (every section); an unknown agency_type is 400.
#[utoipa::path(put, path = "/partner/profile", tag = "partner portal", request_body = ProfileBody,
    responses((status = 200, description = "The profile as stored", body = ProfileDto)))]
async fn put_own_profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(profile): ApiJson<ProfileBody>,
) -> Result<Json<ProfileDto>, ApiError> {
    let partner_id = own_partner_id(&caller)?;
    store_profile(&state, &caller, partner_id, profile).await
}

/// Submit the profile for the bank's review → awaiting_review; from uninvited, invited or
/// recertification_required, else 409 (PARTNER_ALREADY_AWAITING_REVIEW, PARTNER_ALREADY_APPROVED,
/// PARTNER_DEACTIVATED).
#[utoipa::path(post, path = "/partner/submit_for_approval", tag = "partner portal",
    responses((status = 200, description = "The partner, now awaiting_review", body = PartnerDto)))]
async fn submit_for_approval(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<PartnerDto>, ApiError> {
    let partner_id = own_partner_id(&caller)?;
    let answer = client(&state)
        .submit_for_approval(forward(
            &caller,
            pb::SubmitForApprovalRequest { partner_id },
        ))
        .await?
        .into_inner();
    answer
        .partner
        .map(|partner| Json(PartnerDto::from(partner)))
        .ok_or_else(|| ApiError::from(ServiceError::internal("no partner in the answer")))
}
