//! gRPC: decode and validate requests, call the use cases, encode answers. The only layer that
//! knows the partner API's proto types (the profile, a proto document, aside); no SQL here.

mod auth;
mod groups;
mod organizations;
mod partners;

use essentials_proto::partner::v1 as pb;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::Role;
use essentials_runtime::convert::{id, timestamp};
use time::OffsetDateTime;
use tonic::{Response, Status};
use uuid::Uuid;

use crate::repo::{PartnerUserRow, RoleRow, UserRow};
use crate::service::App;

type Answer<T> = Result<Response<T>, Status>;

fn role_kind(kind: &str) -> pb::RoleKind {
    match Role::parse(kind) {
        Some(Role::SuperAdmin) => pb::RoleKind::SuperAdmin,
        Some(Role::OrgAdmin) => pb::RoleKind::OrgAdmin,
        Some(Role::OrgUser) => pb::RoleKind::OrgUser,
        Some(Role::Partner) => pb::RoleKind::Partner,
        None => pb::RoleKind::Unspecified,
    }
}

fn role_to_proto(role: &RoleRow) -> pb::Role {
    pb::Role {
        id: role.id.to_string(),
        kind: role_kind(&role.kind) as i32,
        organization_id: role
            .organization_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        partner_id: role.partner_id.map(|id| id.to_string()).unwrap_or_default(),
        organization_name: role.organization_name.clone().unwrap_or_default(),
        partner_name: role.partner_name.clone().unwrap_or_default(),
    }
}

fn invitation_status(
    accepted: Option<OffsetDateTime>,
    signed_in: Option<OffsetDateTime>,
) -> pb::InvitationStatus {
    match (accepted, signed_in) {
        (_, Some(_)) => pb::InvitationStatus::Joined,
        (Some(_), None) => pb::InvitationStatus::Accepted,
        (None, None) => pb::InvitationStatus::Invited,
    }
}

pub fn user_to_proto(user: &UserRow) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email.clone(),
        name: user.name.clone().unwrap_or_default(),
        invitation_status: invitation_status(user.invitation_accepted_at, user.last_sign_in_at)
            as i32,
        created_at: Some(timestamp(user.created_at)),
        last_sign_in_at: user.last_sign_in_at.map(timestamp),
    }
}

fn listed_user_to_proto(user: &PartnerUserRow) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email.clone(),
        name: user.name.clone().unwrap_or_default(),
        invitation_status: invitation_status(user.invitation_accepted_at, user.last_sign_in_at)
            as i32,
        created_at: Some(timestamp(user.created_at)),
        last_sign_in_at: user.last_sign_in_at.map(timestamp),
    }
}

/// Whether an update mask (empty: every field) names `field`.
fn masked(mask: &[String], field: &str) -> bool {
    mask.is_empty() || mask.iter().any(|path| path == field)
}

fn mask_paths(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|mask| mask.paths).unwrap_or_default()
}

/// The gRPC face of the partner part.
#[derive(Clone)]
pub struct Grpc {
    pub app: App,
}

impl Grpc {
    /// An update naming `default_storage_location_id` (a bank's or a partner's) must name a
    /// location of the caller's bank; the inventory part is asked. A location that is no UUID
    /// is left to the update's own parse, which names it.
    async fn check_masked_location(
        &self,
        caller: &essentials_runtime::auth::Principal,
        mask: &[String],
        location: &str,
    ) -> Result<(), ServiceError> {
        if !masked(mask, "default_storage_location_id") {
            return Ok(());
        }
        match essentials_runtime::convert::alone(|problems| {
            essentials_runtime::convert::optional_id(
                "default_storage_location_id",
                location,
                problems,
            )
        }) {
            Ok(location) => self.app.check_storage_location(caller, location).await,
            Err(_) => Ok(()),
        }
    }
}

/// Keeps `limit` rows and makes the next token from the last kept one when more exist.
fn split_page<T>(mut rows: Vec<T>, limit: i64, token: impl Fn(&T) -> String) -> (Vec<T>, String) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(&token).unwrap_or_default();
        (rows, next)
    } else {
        (rows, String::new())
    }
}

fn role_from_proto(kind: i32) -> Option<Role> {
    match pb::RoleKind::try_from(kind).ok()? {
        pb::RoleKind::OrgAdmin => Some(Role::OrgAdmin),
        pb::RoleKind::OrgUser => Some(Role::OrgUser),
        pb::RoleKind::Partner => Some(Role::Partner),
        pb::RoleKind::SuperAdmin => Some(Role::SuperAdmin),
        pb::RoleKind::Unspecified => None,
    }
}

/// The partner a request names, or the caller's own partner when none is named.
fn own_or_given(
    caller: &essentials_runtime::auth::Principal,
    given: &str,
) -> Result<Uuid, ServiceError> {
    match (caller.partner_id, given.trim()) {
        (Some(own), "") => Ok(own),
        (_, given) => id("partner_id", given),
    }
}
