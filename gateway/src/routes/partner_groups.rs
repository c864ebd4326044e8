//! Partner groups (API.md § Partners): the item categories a group may request and its
//! reminder settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::partner_group_service_client::PartnerGroupServiceClient;
use essentials_runtime::auth::forward;
use essentials_runtime::{FieldViolation, ServiceError};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::convert::{Page, patch_body, timestamp};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
}

fn client(state: &AppState) -> PartnerGroupServiceClient<Channel> {
    PartnerGroupServiceClient::new(state.upstreams.partner.clone())
}

/// A group of partners: the item categories its partners may request, and its reminders.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PartnerGroup)]
struct GroupDto {
    id: String,
    name: String,
    item_category_ids: Vec<String>,
    send_reminders: bool,
    deadline_day: Option<i32>,
    reminder_day: Option<i32>,
    partner_count: i32,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<pb::PartnerGroup> for GroupDto {
    fn from(group: pb::PartnerGroup) -> Self {
        Self {
            created_at: timestamp(group.created_at.as_ref()),
            updated_at: timestamp(group.updated_at.as_ref()),
            id: group.id,
            name: group.name,
            item_category_ids: group.item_category_ids,
            send_reminders: group.send_reminders,
            deadline_day: group.deadline_day,
            reminder_day: group.reminder_day,
            partner_count: group.partner_count,
        }
    }
}

fn group_answer(group: Option<pb::PartnerGroup>) -> Result<Json<GroupDto>, ApiError> {
    group
        .map(|group| Json(GroupDto::from(group)))
        .ok_or_else(|| ApiError::from(ServiceError::internal("no group in the answer")))
}

/// A group's writable fields: on create `name` is required; on PATCH the keys sent are changed
/// (at least one).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = PartnerGroupFields)]
struct GroupBody {
    name: Option<String>,
    item_category_ids: Option<Vec<String>>,
    send_reminders: Option<bool>,
    deadline_day: Option<i32>,
    reminder_day: Option<i32>,
}

impl GroupBody {
    fn into_proto(self, id: String) -> pb::PartnerGroup {
        pb::PartnerGroup {
            id,
            name: self.name.unwrap_or_default(),
            item_category_ids: self.item_category_ids.unwrap_or_default(),
            send_reminders: self.send_reminders.unwrap_or_default(),
            deadline_day: self.deadline_day,
            reminder_day: self.reminder_day,
            ..Default::default()
        }
    }
}

/// The bank's partner groups.
#[utoipa::path(get, path = "/partner_groups", tag = "partner groups",
    responses((status = 200, description = "The partner groups", body = Page<GroupDto>)))]
async fn list_groups(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Page<GroupDto>>, ApiError> {
    let answer = client(&state)
        .list_partner_groups(forward(&caller, pb::ListPartnerGroupsRequest::default()))
        .await?
        .into_inner();
    Ok(Json(Page::new(
        answer
            .partner_groups
            .into_iter()
            .map(GroupDto::from)
            .collect(),
        answer.next_page_token,
    )))
}

/// Create a partner group (`name` required).
#[utoipa::path(post, path = "/partner_groups", tag = "partner groups", request_body = GroupBody,
    responses((status = 201, description = "The new group", body = GroupDto)))]
async fn create_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<GroupBody>,
) -> Result<(StatusCode, Json<GroupDto>), ApiError> {
    if body.name.is_none() {
        return Err(ServiceError::invalid(vec![FieldViolation::new("name", "is required")]).into());
    }
    let answer = client(&state)
        .create_partner_group(forward(
            &caller,
            pb::CreatePartnerGroupRequest {
                partner_group: Some(body.into_proto(String::new())),
                request_id: String::new(),
            },
        ))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, group_answer(answer.partner_group)?))
}

/// One partner group.
#[utoipa::path(get, path = "/partner_groups/{id}", tag = "partner groups",
    params(("id" = Uuid, Path, description = "The partner group")),
    responses((status = 200, description = "The group", body = GroupDto)))]
async fn get_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<GroupDto>, ApiError> {
    let answer = client(&state)
        .get_partner_group(forward(
            &caller,
            pb::GetPartnerGroupRequest {
                partner_group_id: id.to_string(),
            },
        ))
        .await?
        .into_inner();
    group_answer(answer.partner_group)
}

/// Change some of a group's fields (the keys sent; at least one).
#[utoipa::path(patch, path = "/partner_groups/{id}", tag = "partner groups",
    params(("id" = Uuid, Path, description = "The partner group")), request_body = GroupBody,
    responses((status = 200, description = "The group as it now is", body = GroupDto)))]
async fn update_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    crate::extract::ApiBody(body): crate::extract::ApiBody,
) -> Result<Json<GroupDto>, ApiError> {
    let (patch, keys) = patch_body::<GroupBody>(&body)?;
    if keys.is_empty() {
        return Err(ServiceError::invalid(vec![FieldViolation::new(
            "body",
            "name at least one field to change",
        )])
        .into());
    }
    let answer = client(&state)
        .update_partner_group(forward(
            &caller,
            pb::UpdatePartnerGroupRequest {
                partner_group: Some(patch.into_proto(id.to_string())),
                update_mask: Some(prost_types::FieldMask { paths: keys }),
            },
        ))
        .await?
        .into_inner();
    group_answer(answer.partner_group)
}

/// Delete a partner group; one that still has partners is 409 PARTNER_GROUP_HAS_PARTNERS.
#[utoipa::path(delete, path = "/partner_groups/{id}", tag = "partner groups",
    params(("id" = Uuid, Path, description = "The partner group")),
    responses((status = 204, description = "Deleted")))]
async fn delete_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    client(&state)
        .delete_partner_group(forward(
            &caller,
            pb::DeletePartnerGroupRequest {
                partner_group_id: id.to_string(),
            },
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
