//! A partner agency's distributions (upcoming and past, each with its items and its receipt)
//! and its own users (the agency's people invite one another).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::inventory::v1 as inventory;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::inventory::v1::distribution_service_client::DistributionServiceClient;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_runtime::auth::{Principal, forward};

use super::path_id;
use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, Form, same_name};
use crate::session::{Csrf, PartnerUser};
use crate::view::{self, Chrome};

// ---- distributions ------------------------------------------------------------------------------

struct DistributionRow {
    id: String,
    issued: String,
    delivery: &'static str,
    total_quantity: i32,
    complete: bool,
}

#[derive(Template)]
#[template(path = "portal/distributions.html")]
struct ListPage {
    chrome: Chrome,
    upcoming: bool,
    distributions: Vec<DistributionRow>,
    next_page: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    /// "past" for those before today; anything else: upcoming.
    #[serde(default)]
    when: String,
    #[serde(default)]
    page_token: String,
}

fn start_of_today() -> prost_types::Timestamp {
    let today = time::OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
    prost_types::Timestamp {
        seconds: today.unix_timestamp(),
        nanos: 0,
    }
}

pub async fn distributions(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, _): PartnerUser,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let upcoming = query.when != "past";
    let mut client = DistributionServiceClient::new(web.channels().inventory.clone());
    let (chrome, answer) = tokio::join!(
        view::chrome(
            &web,
            &principal,
            &csrf,
            "distributions",
            "Your distributions"
        ),
        client.list_distributions(forward(
            &principal,
            inventory::ListDistributionsRequest {
                page_size: 50,
                page_token: query.page_token.clone(),
                upcoming,
                issued_before: (!upcoming).then(start_of_today),
                ..Default::default()
            },
        )),
    );
    let answer = answer?.into_inner();
    let rows = answer
        .distributions
        .iter()
        .map(|distribution| DistributionRow {
            id: distribution.id.clone(),
            issued: view::date_time(distribution.issued_at.as_ref()),
            delivery: view::delivery_method(distribution.delivery_method).1,
            total_quantity: distribution.total_quantity,
            complete: distribution.state == inventory::DistributionState::Complete as i32,
        })
        .collect();
    let next_page = (!answer.next_page_token.is_empty()).then(|| {
        format!(
            "/partner/distributions?when={}&page_token={}",
            if upcoming { "upcoming" } else { "past" },
            view::encode(&answer.next_page_token)
        )
    });
    Ok(render(&ListPage {
        chrome: chrome?,
        upcoming,
        distributions: rows,
        next_page,
    }))
}

struct LineRow {
    name: String,
    quantity: i32,
}

#[derive(Template)]
#[template(path = "portal/distribution.html")]
struct ShowPage {
    chrome: Chrome,
    id: String,
    issued: String,
    delivery: &'static str,
    complete: bool,
    comment: String,
    request_id: String,
    lines: Vec<LineRow>,
    total_quantity: i32,
}

pub async fn distribution(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, _): PartnerUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let mut distributions = DistributionServiceClient::new(web.channels().inventory.clone());
    let mut catalog = CatalogServiceClient::new(web.channels().inventory.clone());
    let (chrome, distribution, items) = tokio::join!(
        view::chrome(&web, &principal, &csrf, "distributions", "Distribution"),
        distributions.get_distribution(forward(
            &principal,
            inventory::GetDistributionRequest {
                distribution_id: id,
            },
        )),
        catalog.list_items(forward(
            &principal,
            inventory::ListItemsRequest {
                page_size: 500,
                include_inactive: true,
                ..Default::default()
            },
        )),
    );
    let distribution = distribution?
        .into_inner()
        .distribution
        .ok_or_else(PageError::not_found)?;
    // Items hidden from partners are not listed to them; the line still counts.
    let items = items?.into_inner().items;
    let name_of = |item_id: &str| {
        items
            .iter()
            .find(|item| item.id == item_id)
            .map(|item| item.name.clone())
            .unwrap_or_else(|| "Another item".to_owned())
    };
    Ok(render(&ShowPage {
        chrome: chrome?,
        id: distribution.id.clone(),
        issued: view::date_time(distribution.issued_at.as_ref()),
        delivery: view::delivery_method(distribution.delivery_method).1,
        complete: distribution.state == inventory::DistributionState::Complete as i32,
        comment: distribution.comment.clone(),
        request_id: distribution.request_id.clone(),
        lines: distribution
            .line_items
            .iter()
            .map(|line| LineRow {
                name: name_of(&line.item_id),
                quantity: line.quantity,
            })
            .collect(),
        total_quantity: distribution.total_quantity,
    }))
}

// ---- the agency's users -------------------------------------------------------------------------

struct UserRow {
    name: String,
    email: String,
    invitation: &'static str,
}

#[derive(Template)]
#[template(path = "portal/users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    name: String,
    email: String,
    errors: Errors,
    notice: &'static str,
    form_id: String,
}

#[derive(serde::Deserialize, Default)]
pub struct UsersQuery {
    #[serde(default)]
    done: String,
}

async fn users_page(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    typed: (String, String),
    errors: Errors,
    notice: &'static str,
) -> Result<Response, PageError> {
    let mut partners = PartnerServiceClient::new(web.channels().partner.clone());
    let (chrome, users) = tokio::join!(
        view::chrome(web, principal, csrf, "users", "Your agency's users"),
        partners.list_partner_users(forward(principal, pb::ListPartnerUsersRequest::default())),
    );
    let users = users?
        .into_inner()
        .users
        .into_iter()
        .map(|user| UserRow {
            invitation: super::users::invitation_label(user.invitation_status),
            name: user.name,
            email: user.email,
        })
        .collect();
    Ok(render(&UsersPage {
        chrome: chrome?,
        users,
        name: typed.0,
        email: typed.1,
        errors,
        notice,
        form_id: uuid::Uuid::now_v7().to_string(),
    }))
}

pub async fn users(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, _): PartnerUser,
    Query(query): Query<UsersQuery>,
) -> Result<Response, PageError> {
    let notice = match query.done.as_str() {
        "invited" => "Invited: they have been e-mailed a link to set their password.",
        _ => "",
    };
    users_page(
        &web,
        &principal,
        &csrf,
        Default::default(),
        Errors::default(),
        notice,
    )
    .await
}

/// Invites another user of the caller's own agency.
pub async fn invite(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, _): PartnerUser,
    form: Form,
) -> Result<Response, PageError> {
    let (name, email) = (form.text("name"), form.text("email"));
    let answer = PartnerServiceClient::new(web.channels().partner.clone())
        .invite_partner_user(forward(
            &principal,
            pb::InvitePartnerUserRequest {
                email: email.clone(),
                name: name.clone(),
                request_id: form.text("form_id"),
                ..Default::default()
            },
        ))
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to("/partner/users?done=invited").into_response()),
        Err(status) => {
            let errors = Errors::from_status(status, same_name)?;
            users_page(&web, &principal, &csrf, (name, email), errors, "").await
        }
    }
}
