//! Partners' requests: the list by status and partner, one request, "Fulfill request" (marks it
//! started and opens the new distribution pre-filled from it) and cancelling with a reason.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::partner::v1 as partner;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::request::v1 as pb;
use essentials_proto::request::v1::request_service_client::RequestServiceClient;
use essentials_runtime::auth::{Principal, forward};
use tonic::transport::Channel;

use super::path_id;
use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, Form, same_name};
use crate::session::{Csrf, Staff};
use crate::view::{self, Choice, Chrome};

fn client(web: &Web) -> RequestServiceClient<Channel> {
    RequestServiceClient::new(web.channels().request.clone())
}

struct RequestRow {
    id: String,
    partner_name: String,
    status: &'static str,
    status_label: &'static str,
    total_items: i32,
    requester: String,
    created: String,
}

#[derive(Template)]
#[template(path = "requests/list.html")]
struct ListPage {
    chrome: Chrome,
    statuses: Vec<Choice>,
    partners: Vec<Choice>,
    requests: Vec<RequestRow>,
    next_page: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    partner_id: String,
    #[serde(default)]
    page_token: String,
}

pub async fn list(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let (selected, statuses) = view::request_status_filter(&query.status);
    let partner_id = uuid::Uuid::parse_str(&query.partner_id)
        .map(|id| id.to_string())
        .unwrap_or_default();
    let mut requests = client(&web);
    let (chrome, partners, answer) = tokio::join!(
        view::chrome(&web, &principal, &csrf, "requests", "Requests"),
        super::choices::partners(&web, &principal, &partner_id),
        requests.list_requests(forward(
            &principal,
            pb::ListRequestsRequest {
                page_size: 50,
                page_token: query.page_token.clone(),
                statuses: selected.map(|status| status as i32).into_iter().collect(),
                partner_id: partner_id.clone(),
                ..Default::default()
            },
        )),
    );
    let partners = partners?;
    let answer = answer?.into_inner();
    let name_of = |id: &str| {
        partners
            .iter()
            .find(|choice| choice.value == id)
            .map(|choice| choice.label.clone())
            .unwrap_or_default()
    };
    let rows = answer
        .requests
        .iter()
        .map(|request| {
            let (status, status_label) = view::request_status(request.status);
            RequestRow {
                id: request.id.clone(),
                partner_name: name_of(&request.partner_id),
                status,
                status_label,
                total_items: request.total_items,
                requester: request.requester_name.clone(),
                created: view::date_time(request.created_at.as_ref()),
            }
        })
        .collect();
    let next_page = (!answer.next_page_token.is_empty()).then(|| {
        format!(
            "/requests?status={}&partner_id={}&page_token={}",
            view::encode(&query.status),
            view::encode(&partner_id),
            view::encode(&answer.next_page_token)
        )
    });
    Ok(render(&ListPage {
        chrome: chrome?,
        statuses,
        partners,
        requests: rows,
        next_page,
    }))
}

struct ItemRow {
    name: String,
    quantity: i32,
    persons: i32,
}

#[derive(Template)]
#[template(path = "requests/show.html")]
struct ShowPage {
    chrome: Chrome,
    id: String,
    partner_id: String,
    partner_name: String,
    status: &'static str,
    status_label: &'static str,
    open: bool,
    items: Vec<ItemRow>,
    total_items: i32,
    quota_exceeded: bool,
    comments: String,
    requester: String,
    created: String,
    distribution_id: String,
    cancel_reason: String,
    errors: Errors,
}

async fn show_page(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    id: &str,
    errors: Errors,
) -> Result<Response, PageError> {
    let request = client(web)
        .get_request(forward(
            principal,
            pb::GetRequestRequest {
                request_id: id.to_owned(),
            },
        ))
        .await?
        .into_inner()
        .request
        .ok_or_else(PageError::not_found)?;
    let mut partners = PartnerServiceClient::new(web.channels().partner.clone());
    let (chrome, partner) = tokio::join!(
        view::chrome(web, principal, csrf, "requests", "Request"),
        partners.get_partner(forward(
            principal,
            partner::GetPartnerRequest {
                partner_id: request.partner_id.clone(),
            },
        )),
    );
    let (status, status_label) = view::request_status(request.status);
    let open = matches!(
        pb::RequestStatus::try_from(request.status),
        Ok(pb::RequestStatus::Pending | pb::RequestStatus::Started)
    );
    Ok(render(&ShowPage {
        chrome: chrome?,
        id: request.id.clone(),
        partner_name: partner?.into_inner().partner.unwrap_or_default().name,
        partner_id: request.partner_id.clone(),
        status,
        status_label,
        open,
        items: request
            .items
            .iter()
            .map(|item| ItemRow {
                name: item.item_name.clone(),
                quantity: item.quantity,
                persons: item.persons,
            })
            .collect(),
        total_items: request.total_items,
        quota_exceeded: request.quota_exceeded,
        comments: request.comments.clone(),
        requester: [
            request.requester_name.as_str(),
            request.requester_email.as_str(),
        ]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" · "),
        created: view::date_time(request.created_at.as_ref()),
        distribution_id: request.distribution_id.clone(),
        cancel_reason: request.cancel_reason.clone(),
        errors,
    }))
}

pub async fn show(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    show_page(&web, &principal, &csrf, &id, Errors::default()).await
}

/// Marks the request started and shows the new distribution form filled in from it.
pub async fn fulfill(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let answer = client(&web)
        .fulfill_request(forward(
            &principal,
            pb::FulfillRequestRequest {
                request_id: id.clone(),
            },
        ))
        .await;
    match answer {
        Ok(answer) => {
            let draft = answer.into_inner().distribution_draft.unwrap_or_default();
            super::distributions::form_from_draft(&web, &principal, &csrf, draft).await
        }
        Err(status) => {
            let errors = Errors::from_status(status, same_name)?;
            show_page(&web, &principal, &csrf, &id, errors).await
        }
    }
}

pub async fn cancel(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let mut errors = Errors::default();
    let reason = form.text("reason");
    if reason.is_empty() {
        errors.add("reason", "Say why, for the partner.");
    } else {
        let answer = client(&web)
            .cancel_request(forward(
                &principal,
                pb::CancelRequestRequest {
                    request_id: id.clone(),
                    reason,
                },
            ))
            .await;
        match answer {
            Ok(_) => return Ok(Redirect::to(&format!("/requests/{id}")).into_response()),
            Err(status) => errors = Errors::from_status(status, same_name)?,
        }
    }
    show_page(&web, &principal, &csrf, &id, errors).await
}
