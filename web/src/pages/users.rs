//! The bank's staff (admins only): invite, re-send an invitation, make admin or not, remove.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::user_service_client::UserServiceClient;
use essentials_runtime::auth::{Principal, Role, forward};
use tonic::transport::Channel;

use super::path_id;
use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, Form, same_name};
use crate::session::{Csrf, Staff};
use crate::view::{self, Chrome};

fn client(web: &Web) -> UserServiceClient<Channel> {
    UserServiceClient::new(web.channels().partner.clone())
}

/// The caller, if a bank admin; the page says why not otherwise.
fn admin(principal: Principal) -> Result<Principal, PageError> {
    if principal.role == Role::OrgAdmin {
        Ok(principal)
    } else {
        Err(PageError::forbidden(
            "Only the bank's administrators manage its staff.",
        ))
    }
}

pub fn invitation_label(status: i32) -> &'static str {
    match pb::InvitationStatus::try_from(status).unwrap_or(pb::InvitationStatus::Unspecified) {
        pb::InvitationStatus::Invited => "Invited",
        pb::InvitationStatus::Accepted => "Accepted",
        pb::InvitationStatus::Joined => "Joined",
        pb::InvitationStatus::Unspecified => "",
    }
}

struct UserRow {
    id: String,
    name: String,
    email: String,
    admin: bool,
    invited: bool,
    invitation: &'static str,
    last_sign_in: String,
    me: bool,
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct ListPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    email: String,
    name: String,
    make_admin: bool,
    form_id: String,
    errors: Errors,
    notice: &'static str,
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    done: String,
}

struct Typed {
    email: String,
    name: String,
    make_admin: bool,
    form_id: String,
}

async fn list_page(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    typed: Typed,
    errors: Errors,
    notice: &'static str,
) -> Result<Response, PageError> {
    let mut users = client(web);
    let (chrome, answer) = tokio::join!(
        view::chrome(web, principal, csrf, "users", "Staff"),
        users.list_users(forward(
            principal,
            pb::ListUsersRequest {
                page_size: 500,
                page_token: String::new(),
            },
        )),
    );
    let me = principal.user_id.to_string();
    let users = answer?
        .into_inner()
        .users
        .into_iter()
        .map(|bank_user| {
            let user = bank_user.user.unwrap_or_default();
            UserRow {
                admin: bank_user.role == pb::RoleKind::OrgAdmin as i32,
                invited: user.invitation_status == pb::InvitationStatus::Invited as i32,
                invitation: invitation_label(user.invitation_status),
                last_sign_in: view::date_time(user.last_sign_in_at.as_ref()),
                me: user.id == me,
                id: user.id,
                name: user.name,
                email: user.email,
            }
        })
        .collect();
    Ok(render(&ListPage {
        chrome: chrome?,
        users,
        email: typed.email,
        name: typed.name,
        make_admin: typed.make_admin,
        form_id: typed.form_id,
        errors,
        notice,
    }))
}

pub async fn list(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let principal = admin(principal)?;
    let notice = match query.done.as_str() {
        "invited" => "Invited: an e-mail with a link to set a password is on its way.",
        "resent" => "The invitation was sent again.",
        "role" => "Saved.",
        "removed" => "Removed from this bank.",
        _ => "",
    };
    let typed = Typed {
        email: String::new(),
        name: String::new(),
        make_admin: false,
        form_id: uuid::Uuid::new_v4().to_string(),
    };
    list_page(&web, &principal, &csrf, typed, Errors::default(), notice).await
}

pub async fn invite(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    form: Form,
) -> Result<Response, PageError> {
    let principal = admin(principal)?;
    let typed = Typed {
        email: form.text("email"),
        name: form.text("name"),
        make_admin: form.checked("admin"),
        form_id: form.text("form_id"),
    };
    let role = if typed.make_admin {
        pb::RoleKind::OrgAdmin
    } else {
        pb::RoleKind::OrgUser
    };
    let answer = client(&web)
        .invite_user(forward(
            &principal,
            pb::InviteUserRequest {
                email: typed.email.clone(),
                name: typed.name.clone(),
                role: role as i32,
                request_id: typed.form_id.clone(),
            },
        ))
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to("/users?done=invited").into_response()),
        Err(status) => {
            let errors = Errors::from_status(status, same_name)?;
            list_page(&web, &principal, &csrf, typed, errors, "").await
        }
    }
}

/// Re-send, make admin, make staff (not admin), or remove one user.
pub async fn act(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path((id, action)): Path<(String, String)>,
    _form: Form,
) -> Result<Response, PageError> {
    let principal = admin(principal)?;
    let user_id = path_id(&id)?;
    let mut users = client(&web);
    let role = |kind: pb::RoleKind| pb::UpdateUserRoleRequest {
        user_id: user_id.clone(),
        role: kind as i32,
    };
    let (outcome, done) = match action.as_str() {
        "resend" => (
            users
                .resend_invitation(forward(
                    &principal,
                    pb::ResendInvitationRequest {
                        user_id: user_id.clone(),
                    },
                ))
                .await
                .map(drop),
            "resent",
        ),
        "make_admin" => (
            users
                .update_user_role(forward(&principal, role(pb::RoleKind::OrgAdmin)))
                .await
                .map(drop),
            "role",
        ),
        "make_staff" => (
            users
                .update_user_role(forward(&principal, role(pb::RoleKind::OrgUser)))
                .await
                .map(drop),
            "role",
        ),
        "remove" => (
            users
                .remove_user(forward(
                    &principal,
                    pb::RemoveUserRequest {
                        user_id: user_id.clone(),
                    },
                ))
                .await
                .map(drop),
            "removed",
        ),
        _ => return Err(PageError::not_found()),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/users?done={done}")).into_response()),
        Err(status) => {
            let errors = Errors::from_status(status, same_name)?;
            let typed = Typed {
                email: String::new(),
                name: String::new(),
                make_admin: false,
                form_id: uuid::Uuid::new_v4().to_string(),
            };
            list_page(&web, &principal, &csrf, typed, errors, "").await
        }
    }
}
