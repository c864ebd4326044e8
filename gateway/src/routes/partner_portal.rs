//! The partner portal: a partner user's own partner and profile (API.md § Partner portal).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use essentials_proto::partner::v1 as pb;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::forward;

use super::partners::{PartnerDto, client, fetch_profile, store_profile};
use super::profile::ProfileDto;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/partner", get(own_partner))
        .route("/partner/profile", get(own_profile).put(put_own_profile))
        .route("/partner/submit_for_approval", post(submit_for_approval))
}

/// The caller's own partner id; bank staff get 403 here.
fn own_partner_id(caller: &essentials_runtime::auth::Principal) -> Result<String, ApiError> {
    let (_, partner_id) = caller.require_partner()?;
    Ok(partner_id.to_string())
}

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

async fn own_profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<ProfileDto>, ApiError> {
    let partner_id = own_partner_id(&caller)?;
    fetch_profile(&state, &caller, partner_id).await
}

async fn put_own_profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(profile): ApiJson<ProfileDto>,
) -> Result<Json<ProfileDto>, ApiError> {
    let partner_id = own_partner_id(&caller)?;
    store_profile(&state, &caller, partner_id, profile).await
}

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
