//! A partner agency's home page: its status in plain words with what it can do now, what the
//! bank wrote for it, its open requests and upcoming distributions, and "Submit for approval"
//! when its status allows it. (The partner's profile and request pages are the partner portal's.)

use askama::Template;
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::inventory::v1 as inventory;
use essentials_proto::inventory::v1::distribution_service_client::DistributionServiceClient;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::request::v1 as request;
use essentials_proto::request::v1::request_service_client::RequestServiceClient;
use essentials_runtime::auth::{Principal, forward};

use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, same_name};
use crate::view::{self, Chrome};

struct RequestRow {
    id: String,
    created: String,
    status: &'static str,
    status_label: &'static str,
    total_items: i32,
}

struct DistributionRow {
    id: String,
    issued: String,
    delivery: &'static str,
    total_quantity: i32,
}

#[derive(Template)]
#[template(path = "partner/home.html")]
struct HomePage {
    chrome: Chrome,
    name: String,
    status: &'static str,
    status_label: &'static str,
    /// What the status lets the partner do, in plain words.
    explanation: &'static str,
    info_for_partner: String,
    may_submit: bool,
    may_request: bool,
    bank_name: String,
    bank_email: String,
    requests: Vec<RequestRow>,
    distributions: Vec<DistributionRow>,
    problem: String,
}

fn explanation(status: pb::PartnerStatus) -> &'static str {
    match status {
        pb::PartnerStatus::Invited => {
            "Your bank has invited your agency. Fill in your agency's profile, then submit it for approval. You can make requests once the bank approves it."
        }
        pb::PartnerStatus::AwaitingReview => {
            "Your profile is with the bank for review. You will get an e-mail when it is approved; until then you cannot make requests."
        }
        pb::PartnerStatus::Approved => "Your agency is approved: you can make requests.",
        pb::PartnerStatus::RecertificationRequired => {
            "The bank asks you to update your agency's profile and submit it again. You can make requests again once it is approved."
        }
        pb::PartnerStatus::Deactivated => {
            "Your agency's account is deactivated, so you cannot make requests. Contact the bank to have it reactivated."
        }
        pb::PartnerStatus::Uninvited | pb::PartnerStatus::Unspecified => {
            "Your bank has not invited your agency yet."
        }
    }
}

/// The home page of the partner `principal` acts for.
pub async fn show(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    problem: String,
) -> Result<Response, PageError> {
    let (_, partner_id) = principal.require_partner()?;
    let mut partners = PartnerServiceClient::new(web.channels().partner.clone());
    let mut requests = RequestServiceClient::new(web.channels().request.clone());
    let mut distributions = DistributionServiceClient::new(web.channels().inventory.clone());
    let mut contacts = PartnerServiceClient::new(web.channels().partner.clone());
    let (chrome, contacts, partner, requests, distributions) = tokio::join!(
        view::chrome(web, principal, csrf, "home", "Home"),
        contacts.get_partner_contacts(forward(
            principal,
            pb::GetPartnerContactsRequest {
                partner_id: partner_id.to_string(),
            },
        )),
        partners.get_partner(forward(
            principal,
            pb::GetPartnerRequest {
                partner_id: partner_id.to_string(),
            },
        )),
        requests.list_requests(forward(
            principal,
            request::ListRequestsRequest {
                page_size: 10,
                statuses: vec![
                    request::RequestStatus::Pending as i32,
                    request::RequestStatus::Started as i32,
                ],
                ..Default::default()
            },
        )),
        distributions.list_distributions(forward(
            principal,
            inventory::ListDistributionsRequest {
                page_size: 10,
                upcoming: true,
                ..Default::default()
            },
        )),
    );
    let partner = partner?.into_inner().partner.unwrap_or_default();
    let contacts = contacts?.into_inner();
    let (status, status_label) = view::partner_status(partner.status);
    Ok(render(&HomePage {
        chrome: chrome?,
        may_request: partner.status == pb::PartnerStatus::Approved as i32,
        bank_name: contacts.organization_name,
        bank_email: contacts.organization_email,
        explanation: explanation(partner.status()),
        may_submit: partner
            .actions
            .iter()
            .any(|action| action.name == "submit_for_approval" && action.allowed),
        name: partner.name,
        status,
        status_label,
        info_for_partner: partner.info_for_partner,
        requests: requests?
            .into_inner()
            .requests
            .into_iter()
            .map(|request| {
                let (status, status_label) = view::request_status(request.status);
                RequestRow {
                    id: request.id.clone(),
                    created: view::date_time(request.created_at.as_ref()),
                    status,
                    status_label,
                    total_items: request.total_items,
                }
            })
            .collect(),
        distributions: distributions?
            .into_inner()
            .distributions
            .into_iter()
            .map(|distribution| DistributionRow {
                id: distribution.id.clone(),
                issued: view::date_time(distribution.issued_at.as_ref()),
                delivery: view::delivery_method(distribution.delivery_method).1,
                total_quantity: distribution.total_quantity,
            })
            .collect(),
        problem,
    }))
}

/// "Submit for approval": the partner's profile goes to the bank for review.
pub async fn submit(
    axum::extract::State(web): axum::extract::State<Web>,
    crate::session::Csrf(csrf): crate::session::Csrf,
    crate::session::MaybeSignedIn(signed_in): crate::session::MaybeSignedIn,
    _form: crate::form::Form,
) -> Result<Response, PageError> {
    let Some(principal) = signed_in else {
        return Err(PageError::SignIn { next: "/".into() });
    };
    let (_, partner_id) = principal.require_partner()?;
    let answer = PartnerServiceClient::new(web.channels().partner.clone())
        .submit_for_approval(forward(
            &principal,
            pb::SubmitForApprovalRequest {
                partner_id: partner_id.to_string(),
            },
        ))
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to("/").into_response()),
        Err(status) => {
            let problem = Errors::from_status(status, same_name)?
                .summary
                .unwrap_or_default();
            show(&web, &principal, &csrf, problem).await
        }
    }
}
