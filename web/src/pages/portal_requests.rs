//! A partner agency's requests: its list by status, a new request (only the items it may
//! request, quantity or individual as its settings allow), the confirmation, one request, and
//! withdrawing a pending one. The request part applies every rule again on submit.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::common::v1::RequestType;
use essentials_proto::partner::v1 as partner;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::request::v1 as pb;
use essentials_proto::request::v1::request_service_client::RequestServiceClient;
use essentials_runtime::auth::{Principal, forward};
use tonic::transport::Channel;

use super::path_id;
use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, Form};
use crate::session::{Csrf, PartnerUser};
use crate::view::{self, Choice, Chrome};

/// Lines offered on a new request.
const LINES: usize = 5;

fn client(web: &Web) -> RequestServiceClient<Channel> {
    RequestServiceClient::new(web.channels().request.clone())
}

// ---- the list -----------------------------------------------------------------------------------

struct RequestRow {
    id: String,
    created: String,
    status: &'static str,
    status_label: &'static str,
    request_type: &'static str,
    total_items: i32,
}

#[derive(Template)]
#[template(path = "portal/requests.html")]
struct ListPage {
    chrome: Chrome,
    statuses: Vec<Choice>,
    requests: Vec<RequestRow>,
    next_page: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    page_token: String,
}

fn type_words(request_type: i32) -> &'static str {
    match RequestType::try_from(request_type) {
        Ok(RequestType::Individual) => "For people",
        Ok(RequestType::Child) => "For children",
        _ => "Quantities",
    }
}

pub async fn list(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, _): PartnerUser,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let (selected, statuses) = view::request_status_filter(&query.status);
    let mut requests = client(&web);
    let (chrome, answer) = tokio::join!(
        view::chrome(&web, &principal, &csrf, "requests", "Your requests"),
        requests.list_requests(forward(
            &principal,
            pb::ListRequestsRequest {
                page_size: 50,
                page_token: query.page_token.clone(),
                statuses: selected.map(|status| status as i32).into_iter().collect(),
                ..Default::default()
            },
        )),
    );
    let answer = answer?.into_inner();
    let rows = answer
        .requests
        .iter()
        .map(|request| {
            let (status, status_label) = view::request_status(request.status);
            RequestRow {
                id: request.id.clone(),
                created: view::date_time(request.created_at.as_ref()),
                status,
                status_label,
                request_type: type_words(request.request_type),
                total_items: request.total_items,
            }
        })
        .collect();
    let next_page = (!answer.next_page_token.is_empty()).then(|| {
        format!(
            "/partner/requests?status={}&page_token={}",
            view::encode(&query.status),
            view::encode(&answer.next_page_token)
        )
    });
    Ok(render(&ListPage {
        chrome: chrome?,
        statuses,
        requests: rows,
        next_page,
    }))
}

// ---- a new request ------------------------------------------------------------------------------

struct Line {
    items: Vec<Choice>,
    amount: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/request_form.html")]
struct FormPage {
    chrome: Chrome,
    /// Why the partner cannot request now; the form is not shown then.
    refusal: String,
    types: Vec<Choice>,
    lines: Vec<Line>,
    comments: String,
    errors: Errors,
    form_id: String,
}

/// What the form was filled with.
#[derive(Default)]
struct Typed {
    request_type: String,
    lines: Vec<(String, String)>,
    comments: String,
}

impl Typed {
    fn from_form(form: &Form) -> Self {
        Typed {
            request_type: form.text("request_type"),
            lines: form
                .all("item_id")
                .into_iter()
                .zip(
                    form.all("amount")
                        .into_iter()
                        .chain(std::iter::repeat(String::new())),
                )
                .collect(),
            comments: form.text("comments"),
        }
    }
}

fn type_value(request_type: RequestType) -> &'static str {
    match request_type {
        RequestType::Individual => "individual",
        RequestType::Child => "child",
        _ => "quantity",
    }
}

/// Why a partner in this status cannot request, in plain words; `None` when it can.
fn refusal(status: partner::PartnerStatus) -> Option<&'static str> {
    match status {
        partner::PartnerStatus::Approved => None,
        partner::PartnerStatus::AwaitingReview => Some(
            "Your profile is with the bank for review: you can make requests once it is approved.",
        ),
        partner::PartnerStatus::Deactivated => Some(
            "Your agency's account is deactivated, so you cannot make requests. Contact the bank.",
        ),
        partner::PartnerStatus::RecertificationRequired => Some(
            "The bank asks you to update your profile and submit it again before you make more requests.",
        ),
        _ => Some(
            "Your agency is not approved yet: fill in your profile and submit it for approval first.",
        ),
    }
}

async fn form_page(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    typed: Typed,
    errors: Errors,
    form_id: String,
) -> Result<Response, PageError> {
    let mut partners = PartnerServiceClient::new(web.channels().partner.clone());
    let mut requests = client(web);
    let (chrome, eligibility, items) = tokio::join!(
        view::chrome(web, principal, csrf, "requests", "New request"),
        partners.get_request_eligibility(forward(
            principal,
            partner::GetRequestEligibilityRequest {
                requester_user_id: principal.user_id.to_string(),
                ..Default::default()
            },
        )),
        requests.list_requestable_items(forward(
            principal,
            pb::ListRequestableItemsRequest::default()
        )),
    );
    let eligibility = eligibility?.into_inner();
    let items = items?.into_inner().items;
    let enabled: Vec<RequestType> = eligibility
        .enabled_request_types()
        .filter(|kind| matches!(kind, RequestType::Quantity | RequestType::Individual))
        .collect();
    let refusal = refusal(eligibility.status())
        .map(str::to_owned)
        .or_else(|| {
            enabled.is_empty().then(|| {
                "The bank has turned off the kinds of request this form makes. Contact the bank."
                    .to_owned()
            })
        })
        .or_else(|| {
            items.is_empty().then(|| {
                "There are no items you may request at the moment. Contact the bank.".to_owned()
            })
        })
        .unwrap_or_default();
    let chosen_type = if typed.request_type.is_empty() {
        enabled
            .first()
            .map(|kind| type_value(*kind))
            .unwrap_or("quantity")
            .to_owned()
    } else {
        typed.request_type.clone()
    };
    let types = Choice::list(
        enabled.iter().map(|kind| {
            let label = match kind {
                RequestType::Individual => {
                    "For a number of people (each gets the item's quantity per person)"
                }
                _ => "Items and quantities",
            };
            (type_value(*kind).to_owned(), label.to_owned())
        }),
        &chosen_type,
    );
    let item_pairs: Vec<(String, String)> = items
        .iter()
        .map(|item| {
            (
                item.item_id.clone(),
                format!("{} ({} per person)", item.name, item.distribution_quantity),
            )
        })
        .collect();
    let mut rows = typed.lines;
    rows.resize(rows.len().max(LINES), (String::new(), String::new()));
    let lines = rows
        .into_iter()
        .enumerate()
        .map(|(index, (item_id, amount))| {
            let mut choices = vec![Choice {
                value: String::new(),
                label: "Choose an item".to_owned(),
                selected: item_id.is_empty(),
            }];
            choices.extend(Choice::list(item_pairs.iter().cloned(), &item_id));
            Line {
                items: choices,
                amount,
                error: errors.get(&format!("line_{index}")).map(str::to_owned),
            }
        })
        .collect();
    Ok(render(&FormPage {
        chrome: chrome?,
        refusal,
        types,
        lines,
        comments: typed.comments,
        errors,
        form_id,
    }))
}

pub async fn new_form(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, _): PartnerUser,
) -> Result<Response, PageError> {
    let form_id = uuid::Uuid::now_v7().to_string();
    form_page(
        &web,
        &principal,
        &csrf,
        Typed::default(),
        Errors::default(),
        form_id,
    )
    .await
}

/// The lines the partner filled in, each with the form row it came from (for its errors).
fn requested_items(
    typed: &Typed,
    individual: bool,
    errors: &mut Errors,
) -> (Vec<pb::RequestedItem>, Vec<usize>) {
    let mut items = Vec::new();
    let mut rows = Vec::new();
    for (index, (item_id, amount)) in typed.lines.iter().enumerate() {
        if item_id.is_empty() && amount.is_empty() {
            continue;
        }
        let Ok(amount) = amount.parse::<i32>() else {
            errors.add(&format!("line_{index}"), "How many: a whole number");
            continue;
        };
        items.push(pb::RequestedItem {
            item_id: item_id.clone(),
            quantity: if individual { 0 } else { amount },
            persons: if individual { amount } else { 0 },
        });
        rows.push(index);
    }
    (items, rows)
}

/// The request part's field path as the form's: `items[1].quantity` → the row it came from.
fn form_field(field: &str, rows: &[usize]) -> String {
    if let Some(rest) = field.strip_prefix("items[")
        && let Some(index) = rest.split(']').next().and_then(|n| n.parse::<usize>().ok())
    {
        return format!("line_{}", rows.get(index).copied().unwrap_or(index));
    }
    crate::form::same_name(field)
}

pub async fn create(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, _): PartnerUser,
    form: Form,
) -> Result<Response, PageError> {
    let typed = Typed::from_form(&form);
    let form_id = uuid::Uuid::parse_str(&form.text("form_id"))
        .unwrap_or_else(|_| uuid::Uuid::now_v7())
        .to_string();
    let individual = typed.request_type == "individual";
    let mut errors = Errors::default();
    let (items, rows) = requested_items(&typed, individual, &mut errors);
    if !errors.is_empty() {
        return form_page(&web, &principal, &csrf, typed, errors, form_id).await;
    }
    let answer = client(&web)
        .create_request(forward(
            &principal,
            pb::CreateRequestRequest {
                request_type: if individual {
                    RequestType::Individual as i32
                } else {
                    RequestType::Quantity as i32
                },
                items,
                comments: typed.comments.clone(),
                request_id: form_id.clone(),
                ..Default::default()
            },
        ))
        .await;
    match answer {
        Ok(created) => {
            let id = created
                .into_inner()
                .request
                .map(|request| request.id)
                .unwrap_or_default();
            Ok(Redirect::to(&format!("/partner/requests/{id}?done=created")).into_response())
        }
        Err(status) => {
            let errors = Errors::from_status(status, |field| form_field(field, &rows))?;
            form_page(&web, &principal, &csrf, typed, errors, form_id).await
        }
    }
}

// ---- one request --------------------------------------------------------------------------------

struct ItemRow {
    name: String,
    quantity: i32,
    persons: i32,
}

#[derive(Template)]
#[template(path = "portal/request.html")]
struct ShowPage {
    chrome: Chrome,
    id: String,
    status: &'static str,
    status_label: &'static str,
    request_type: &'static str,
    pending: bool,
    items: Vec<ItemRow>,
    total_items: i32,
    comments: String,
    created: String,
    distribution_id: String,
    cancel_reason: String,
    notice: &'static str,
    errors: Errors,
}

#[derive(serde::Deserialize, Default)]
pub struct ShowQuery {
    #[serde(default)]
    done: String,
}

async fn show_page(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    id: &str,
    notice: &'static str,
    errors: Errors,
) -> Result<Response, PageError> {
    let mut requests = client(web);
    let (chrome, request) = tokio::join!(
        view::chrome(web, principal, csrf, "requests", "Request"),
        requests.get_request(forward(
            principal,
            pb::GetRequestRequest {
                request_id: id.to_owned(),
            },
        )),
    );
    let request = request?
        .into_inner()
        .request
        .ok_or_else(PageError::not_found)?;
    let (status, status_label) = view::request_status(request.status);
    Ok(render(&ShowPage {
        chrome: chrome?,
        id: request.id.clone(),
        status,
        status_label,
        request_type: type_words(request.request_type),
        pending: request.status == pb::RequestStatus::Pending as i32,
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
        comments: request.comments.clone(),
        created: view::date_time(request.created_at.as_ref()),
        distribution_id: request.distribution_id.clone(),
        cancel_reason: request.cancel_reason.clone(),
        notice,
        errors,
    }))
}

pub async fn show(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, _): PartnerUser,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let notice = match query.done.as_str() {
        "created" => {
            "Your request was sent to the bank. A confirmation e-mail is on its way; the bank will tell you when it is ready."
        }
        "cancelled" => "Your request was withdrawn.",
        _ => "",
    };
    show_page(&web, &principal, &csrf, &id, notice, Errors::default()).await
}

/// Withdraws a pending request (the request part refuses once the bank has started on it).
pub async fn cancel(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, _): PartnerUser,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let answer = client(&web)
        .cancel_request(forward(
            &principal,
            pb::CancelRequestRequest {
                request_id: id.clone(),
                reason: form.text("reason"),
            },
        ))
        .await;
    match answer {
        Ok(_) => {
            Ok(Redirect::to(&format!("/partner/requests/{id}?done=cancelled")).into_response())
        }
        Err(status) => {
            let errors = Errors::from_status(status, crate::form::same_name)?;
            show_page(&web, &principal, &csrf, &id, "", errors).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_skipped_and_errors_find_their_row() {
        let typed = Typed {
            request_type: "quantity".into(),
            lines: vec![
                ("a".into(), "3".into()),
                (String::new(), String::new()),
                ("b".into(), "x".into()),
                ("c".into(), "2".into()),
            ],
            comments: String::new(),
        };
        let mut errors = Errors::default();
        let (items, rows) = requested_items(&typed, false, &mut errors);
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].item_id, "c");
        assert_eq!(items[1].quantity, 2);
        assert_eq!(rows, vec![0, 3]);
        assert!(errors.get("line_2").is_some());
        assert_eq!(form_field("items[1].quantity", &rows), "line_3");
        assert_eq!(form_field("comments", &rows), "comments");
    }

    #[test]
    fn individual_lines_carry_persons() {
        let typed = Typed {
            request_type: "individual".into(),
            lines: vec![("a".into(), "4".into())],
            comments: String::new(),
        };
        let mut errors = Errors::default();
        let (items, _) = requested_items(&typed, true, &mut errors);
        assert_eq!((items[0].quantity, items[0].persons), (0, 4));
    }
}
