//! Distributions: the list (upcoming first) with filters, the new-distribution form (also opened
//! pre-filled by "Fulfill request"), one distribution, marking it complete and reclaiming it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::common::v1::{DeliveryMethod, LineItem};
use essentials_proto::inventory::v1 as pb;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::inventory::v1::distribution_service_client::DistributionServiceClient;
use essentials_proto::inventory::v1::storage_location_service_client::StorageLocationServiceClient;
use essentials_proto::notification::v1::GetDistributionReceiptRequest;
use essentials_proto::notification::v1::notification_service_client::NotificationServiceClient;
use essentials_proto::partner::v1 as partner;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_proto::request::v1::DistributionDraft;
use essentials_runtime::auth::{Principal, forward};
use essentials_runtime::http::inline_pdf;
use essentials_runtime::{Code, ServiceError};
use tonic::transport::Channel;

use super::path_id;
use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, Form};
use crate::session::{Csrf, SignedIn, Staff};
use crate::view::{self, Choice, Chrome};

/// Empty item lines offered below the filled ones.
const BLANK_LINES: usize = 3;

fn client(web: &Web) -> DistributionServiceClient<Channel> {
    DistributionServiceClient::new(web.channels().inventory.clone())
}

/// The bank's active items, by name.
async fn items(web: &Web, principal: &Principal) -> Result<Vec<pb::Item>, PageError> {
    Ok(CatalogServiceClient::new(web.channels().inventory.clone())
        .list_items(forward(
            principal,
            pb::ListItemsRequest {
                page_size: 500,
                ..Default::default()
            },
        ))
        .await?
        .into_inner()
        .items)
}

/// One line of the form: the item's choices (with this line's item selected) and the quantity.
struct Line {
    items: Vec<Choice>,
    quantity: String,
    error: Option<String>,
}

/// The form's fields, as typed or as drafted from a request.
#[derive(Default)]
struct Fields {
    request_id: String,
    partner_id: String,
    storage_location_id: String,
    issued_at: String,
    delivery_method: String,
    shipping_cost: String,
    agency_rep: String,
    comment: String,
    reminder_email_enabled: bool,
    lines: Vec<(String, String)>,
}

impl Fields {
    fn from_form(form: &Form) -> Self {
        let quantities = form.all("quantity");
        Fields {
            request_id: form.text("request_id"),
            partner_id: form.text("partner_id"),
            storage_location_id: form.text("storage_location_id"),
            issued_at: form.text("issued_at"),
            delivery_method: form.text("delivery_method"),
            shipping_cost: form.text("shipping_cost"),
            agency_rep: form.text("agency_rep"),
            comment: form.text("comment"),
            reminder_email_enabled: form.checked("reminder_email_enabled"),
            lines: form
                .all("item_id")
                .into_iter()
                .zip(
                    quantities
                        .into_iter()
                        .chain(std::iter::repeat(String::new())),
                )
                .collect(),
        }
    }

    fn from_draft(draft: DistributionDraft) -> Self {
        let (method, _) = view::delivery_method(draft.delivery_method);
        Fields {
            request_id: draft.request_id,
            partner_id: draft.partner_id,
            storage_location_id: draft.storage_location_id,
            issued_at: view::datetime_input(draft.issued_at.as_ref()),
            delivery_method: method.to_owned(),
            agency_rep: draft.agency_rep,
            comment: draft.comment,
            lines: draft
                .line_items
                .into_iter()
                .map(|line| (line.item_id, line.quantity.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn from_distribution(distribution: &pb::Distribution) -> Self {
        let shipping = distribution.shipping_cost_in_cents;
        Fields {
            request_id: distribution.request_id.clone(),
            partner_id: distribution.partner_id.clone(),
            storage_location_id: distribution.storage_location_id.clone(),
            issued_at: view::datetime_input(distribution.issued_at.as_ref()),
            delivery_method: view::delivery_method(distribution.delivery_method)
                .0
                .to_owned(),
            shipping_cost: if shipping == 0 {
                String::new()
            } else {
                format!("{}.{:02}", shipping / 100, shipping % 100)
            },
            agency_rep: distribution.agency_rep.clone(),
            comment: distribution.comment.clone(),
            reminder_email_enabled: distribution.reminder_email_enabled,
            lines: distribution
                .line_items
                .iter()
                .map(|line| (line.item_id.clone(), line.quantity.to_string()))
                .collect(),
        }
    }

    /// The distribution to send, with the errors the form itself finds (by form field).
    fn to_distribution(&self, errors: &mut Errors) -> pb::Distribution {
        let issued_at = view::parse_datetime_input(&self.issued_at);
        if issued_at.is_none() {
            errors.add("issued_at", "Choose the date and time of the distribution.");
        }
        let delivery_method = match self.delivery_method.as_str() {
            "pick_up" => DeliveryMethod::PickUp,
            "delivery" => DeliveryMethod::Delivery,
            "shipped" => DeliveryMethod::Shipped,
            _ => {
                errors.add("delivery_method", "Choose pick-up, delivery or shipped.");
                DeliveryMethod::Unspecified
            }
        };
        let shipping_cost_in_cents = if self.shipping_cost.is_empty() {
            0
        } else {
            match parse_money(&self.shipping_cost) {
                Some(cents) => cents,
                None => {
                    errors.add("shipping_cost", "Enter an amount such as 12.50.");
                    0
                }
            }
        };
        let mut line_items = Vec::new();
        for (index, (item_id, quantity)) in self.lines.iter().enumerate() {
            if item_id.is_empty() && quantity.is_empty() {
                continue;
            }
            if item_id.is_empty() {
                errors.add(
                    &format!("line_{index}"),
                    "Choose an item for this quantity.",
                );
                continue;
            }
            match quantity.parse::<i32>() {
                Ok(quantity) if quantity > 0 => line_items.push(LineItem {
                    item_id: item_id.clone(),
                    quantity,
                }),
                _ => errors.add(
                    &format!("line_{index}"),
                    "Enter a whole number of items, more than 0.",
                ),
            }
        }
        pb::Distribution {
            partner_id: self.partner_id.clone(),
            storage_location_id: self.storage_location_id.clone(),
            issued_at,
            delivery_method: delivery_method as i32,
            shipping_cost_in_cents,
            comment: self.comment.clone(),
            agency_rep: self.agency_rep.clone(),
            request_id: self.request_id.clone(),
            reminder_email_enabled: self.reminder_email_enabled,
            line_items,
            ..Default::default()
        }
    }
}

/// `12.50` or `12` as cents; `None` for anything else.
fn parse_money(text: &str) -> Option<i64> {
    let text = text.trim().trim_start_matches('$');
    let (dollars, cents) = text.split_once('.').unwrap_or((text, "0"));
    if cents.len() > 2 || dollars.is_empty() {
        return None;
    }
    let dollars: i64 = dollars.parse().ok()?;
    let cents: i64 = format!("{cents:0<2}").parse().ok()?;
    (dollars >= 0).then(|| dollars * 100 + cents)
}

/// The API's field path as the form's field: `distribution.line_items[2].quantity` → `line_2`.
fn form_field(field: &str) -> String {
    if let Some(rest) = field.split("line_items[").nth(1)
        && let Some(index) = rest.split(']').next()
    {
        return format!("line_{index}");
    }
    crate::form::same_name(field)
}

#[derive(Template)]
#[template(path = "distributions/form.html")]
struct FormPage {
    chrome: Chrome,
    /// Empty for a new distribution.
    id: String,
    /// The partner's name, shown instead of the choice when editing.
    partner_name: String,
    fields: Fields,
    partners: Vec<Choice>,
    locations: Vec<Choice>,
    lines: Vec<Line>,
    errors: Errors,
    form_id: String,
}

async fn form_page(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    id: &str,
    fields: Fields,
    errors: Errors,
    form_id: String,
) -> Result<Response, PageError> {
    let title = if id.is_empty() {
        "New distribution"
    } else {
        "Edit distribution"
    };
    let (chrome, partners, locations, items) = tokio::join!(
        view::chrome(web, principal, csrf, "distributions", title),
        super::choices::partners(web, principal, &fields.partner_id),
        super::choices::locations(web, principal, &fields.storage_location_id),
        items(web, principal),
    );
    let items = items?;
    let choices = |selected: &str| {
        let pairs = items
            .iter()
            .map(|item| (item.id.clone(), item.name.clone()));
        Choice::list(pairs, selected)
    };
    let lines = fields
        .lines
        .iter()
        .enumerate()
        .map(|(index, (item_id, quantity))| Line {
            items: choices(item_id),
            quantity: quantity.clone(),
            error: errors.get(&format!("line_{index}")).map(str::to_owned),
        })
        .chain((0..BLANK_LINES).map(|_| Line {
            items: choices(""),
            quantity: String::new(),
            error: None,
        }))
        .collect();
    let partners = partners?;
    let partner_name = partners
        .iter()
        .find(|choice| choice.selected)
        .map(|choice| choice.label.clone())
        .unwrap_or_default();
    Ok(render(&FormPage {
        chrome: chrome?,
        id: id.to_owned(),
        partner_name,
        fields,
        partners,
        locations: locations?,
        lines,
        errors,
        form_id,
    }))
}

/// The new-distribution form filled in from a request's draft ("Fulfill request").
pub async fn form_from_draft(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    draft: DistributionDraft,
) -> Result<Response, PageError> {
    let form_id = uuid::Uuid::new_v4().to_string();
    form_page(
        web,
        principal,
        csrf,
        "",
        Fields::from_draft(draft),
        Errors::default(),
        form_id,
    )
    .await
}

pub async fn new_form(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
) -> Result<Response, PageError> {
    let fields = Fields {
        delivery_method: "pick_up".to_owned(),
        issued_at: view::datetime_input(Some(&prost_types::Timestamp {
            seconds: time::OffsetDateTime::now_utc().unix_timestamp(),
            nanos: 0,
        })),
        ..Default::default()
    };
    let form_id = uuid::Uuid::new_v4().to_string();
    form_page(
        &web,
        &principal,
        &csrf,
        "",
        fields,
        Errors::default(),
        form_id,
    )
    .await
}

/// Errors of a refused distribution: short stock goes next to each short line.
fn refusal_errors(error: ServiceError, fields: &Fields) -> Result<Errors, PageError> {
    let shortages: Vec<(String, String)> = (0..)
        .map_while(|index| {
            let item = error.metadata.get(&format!("shortages.{index}.item_id"))?;
            let available = error
                .metadata
                .get(&format!("shortages.{index}.available"))
                .cloned()
                .unwrap_or_default();
            Some((item.clone(), available))
        })
        .collect();
    let mut errors = Errors::from_service(error, form_field)?;
    for (item_id, available) in shortages {
        if let Some(index) = fields.lines.iter().position(|(item, _)| *item == item_id) {
            errors.add(
                &format!("line_{index}"),
                format!("Not enough in stock: {available} on hand at this location."),
            );
        }
    }
    Ok(errors)
}

pub async fn create(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    form: Form,
) -> Result<Response, PageError> {
    let fields = Fields::from_form(&form);
    let form_id = form.text("form_id");
    let mut errors = Errors::default();
    let distribution = fields.to_distribution(&mut errors);
    if errors.is_empty() {
        let answer = client(&web)
            .create_distribution(forward(
                &principal,
                pb::CreateDistributionRequest {
                    distribution: Some(distribution),
                    // A double submit makes one distribution.
                    request_id: form_id.clone(),
                },
            ))
            .await;
        match answer {
            Ok(answer) => {
                let id = answer.into_inner().distribution.unwrap_or_default().id;
                return Ok(
                    Redirect::to(&format!("/distributions/{id}?done=created")).into_response()
                );
            }
            Err(status) => errors = refusal_errors(ServiceError::from_status(&status), &fields)?,
        }
    }
    form_page(&web, &principal, &csrf, "", fields, errors, form_id).await
}

async fn get_distribution(
    web: &Web,
    principal: &Principal,
    id: &str,
) -> Result<pb::Distribution, PageError> {
    client(web)
        .get_distribution(forward(
            principal,
            pb::GetDistributionRequest {
                distribution_id: id.to_owned(),
            },
        ))
        .await?
        .into_inner()
        .distribution
        .ok_or_else(PageError::not_found)
}

pub async fn edit_form(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let distribution = get_distribution(&web, &principal, &id).await?;
    let fields = Fields::from_distribution(&distribution);
    form_page(
        &web,
        &principal,
        &csrf,
        &id,
        fields,
        Errors::default(),
        String::new(),
    )
    .await
}

/// Saves every field of the form (the partner stays): stock moves by the difference.
pub async fn update(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let mut fields = Fields::from_form(&form);
    // The partner is not edited; keep it for the page shown again.
    fields.partner_id = get_distribution(&web, &principal, &id).await?.partner_id;
    let mut errors = Errors::default();
    let mut distribution = fields.to_distribution(&mut errors);
    distribution.id = id.clone();
    if errors.is_empty() {
        let answer = client(&web)
            .update_distribution(forward(
                &principal,
                pb::UpdateDistributionRequest {
                    distribution: Some(distribution),
                    // The form holds every writable field: an empty mask means all of them.
                    update_mask: None,
                },
            ))
            .await;
        match answer {
            Ok(_) => {
                return Ok(
                    Redirect::to(&format!("/distributions/{id}?done=updated")).into_response()
                );
            }
            Err(status) => errors = refusal_errors(ServiceError::from_status(&status), &fields)?,
        }
    }
    form_page(&web, &principal, &csrf, &id, fields, errors, String::new()).await
}

struct DistributionRow {
    id: String,
    partner_name: String,
    issued: String,
    delivery: &'static str,
    total_quantity: i32,
    complete: bool,
}

#[derive(Template)]
#[template(path = "distributions/list.html")]
struct ListPage {
    chrome: Chrome,
    partners: Vec<Choice>,
    state: String,
    upcoming: bool,
    from: String,
    to: String,
    distributions: Vec<DistributionRow>,
    next_page: Option<String>,
    errors: Errors,
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    partner_id: String,
    #[serde(default)]
    state: String,
    /// "1" (the default view): today and later, soonest first.
    #[serde(default)]
    upcoming: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page_token: String,
}

pub async fn list(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let mut errors = Errors::default();
    let partner_id = uuid::Uuid::parse_str(&query.partner_id)
        .map(|id| id.to_string())
        .unwrap_or_default();
    let state = match query.state.as_str() {
        "scheduled" => pb::DistributionState::Scheduled,
        "complete" => pb::DistributionState::Complete,
        _ => pb::DistributionState::Unspecified,
    };
    let mut date = |name: &str, text: &str| {
        if text.is_empty() {
            return None;
        }
        let at = view::parse_datetime_input(text);
        if at.is_none() {
            errors.add(name, "Enter a date such as 2026-12-31.");
        }
        at
    };
    let issued_after = date("from", &query.from);
    let issued_before = date("to", &query.to).map(|at| prost_types::Timestamp {
        // The whole of the last day.
        seconds: at.seconds + 86_399,
        nanos: 0,
    });
    let upcoming = query.upcoming != "0";
    let mut distributions = client(&web);
    let (chrome, partners, answer) = tokio::join!(
        view::chrome(&web, &principal, &csrf, "distributions", "Distributions"),
        super::choices::partners(&web, &principal, &partner_id),
        distributions.list_distributions(forward(
            &principal,
            pb::ListDistributionsRequest {
                page_size: 50,
                page_token: query.page_token.clone(),
                partner_id: partner_id.clone(),
                state: state as i32,
                upcoming,
                issued_after,
                issued_before,
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
        .distributions
        .iter()
        .map(|distribution| DistributionRow {
            id: distribution.id.clone(),
            partner_name: name_of(&distribution.partner_id),
            issued: view::date_time(distribution.issued_at.as_ref()),
            delivery: view::delivery_method(distribution.delivery_method).1,
            total_quantity: distribution.total_quantity,
            complete: distribution.state == pb::DistributionState::Complete as i32,
        })
        .collect();
    let next_page = (!answer.next_page_token.is_empty()).then(|| {
        format!(
            "/distributions?partner_id={}&state={}&upcoming={}&from={}&to={}&page_token={}",
            view::encode(&partner_id),
            view::encode(&query.state),
            if upcoming { "1" } else { "0" },
            view::encode(&query.from),
            view::encode(&query.to),
            view::encode(&answer.next_page_token)
        )
    });
    Ok(render(&ListPage {
        chrome: chrome?,
        partners,
        state: query.state,
        upcoming,
        from: query.from,
        to: query.to,
        distributions: rows,
        next_page,
        errors,
    }))
}

struct LineRow {
    name: String,
    quantity: i32,
}

#[derive(Template)]
#[template(path = "distributions/show.html")]
struct ShowPage {
    chrome: Chrome,
    id: String,
    partner_id: String,
    partner_name: String,
    location_name: String,
    issued: String,
    delivery: &'static str,
    shipping_cost: String,
    agency_rep: String,
    comment: String,
    request_id: String,
    complete: bool,
    lines: Vec<LineRow>,
    total_quantity: i32,
    total_value: String,
    notice: &'static str,
    problem: String,
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
    problem: String,
) -> Result<Response, PageError> {
    let distribution = get_distribution(web, principal, id).await?;
    let mut partners = PartnerServiceClient::new(web.channels().partner.clone());
    let mut locations = StorageLocationServiceClient::new(web.channels().inventory.clone());
    let (chrome, partner, location, items) = tokio::join!(
        view::chrome(web, principal, csrf, "distributions", "Distribution"),
        partners.get_partner(forward(
            principal,
            partner::GetPartnerRequest {
                partner_id: distribution.partner_id.clone(),
            },
        )),
        locations.get_storage_location(forward(
            principal,
            pb::GetStorageLocationRequest {
                storage_location_id: distribution.storage_location_id.clone(),
            },
        )),
        items(web, principal),
    );
    let items = items?;
    let name_of = |id: &str| {
        items
            .iter()
            .find(|item| item.id == id)
            .map(|item| item.name.clone())
            .unwrap_or_else(|| "(inactive item)".to_owned())
    };
    Ok(render(&ShowPage {
        chrome: chrome?,
        id: distribution.id.clone(),
        partner_id: distribution.partner_id.clone(),
        partner_name: partner?.into_inner().partner.unwrap_or_default().name,
        location_name: location?
            .into_inner()
            .storage_location
            .unwrap_or_default()
            .name,
        issued: view::date_time(distribution.issued_at.as_ref()),
        delivery: view::delivery_method(distribution.delivery_method).1,
        shipping_cost: view::money(distribution.shipping_cost_in_cents),
        agency_rep: distribution.agency_rep.clone(),
        comment: distribution.comment.clone(),
        request_id: distribution.request_id.clone(),
        complete: distribution.state == pb::DistributionState::Complete as i32,
        lines: distribution
            .line_items
            .iter()
            .map(|line| LineRow {
                name: name_of(&line.item_id),
                quantity: line.quantity,
            })
            .collect(),
        total_quantity: distribution.total_quantity,
        total_value: view::money(distribution.total_value_in_cents),
        notice,
        problem,
    }))
}

pub async fn show(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let notice = match query.done.as_str() {
        "created" => "The distribution was saved and the stock taken out.",
        "complete" => "Marked complete.",
        "updated" => "Saved; the stock was adjusted by the difference.",
        "reclaim" => "Reclaimed: the items are back in stock.",
        _ => "",
    };
    show_page(&web, &principal, &csrf, &id, notice, String::new()).await
}

/// The receipt PDF, the one the partner's e-mail attaches: for the bank's staff, and for a user
/// of the distribution's own partner (the parts decide; anyone else gets the 404 page).
pub async fn receipt(
    State(web): State<Web>,
    SignedIn(principal): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let receipt = NotificationServiceClient::new(web.channels().notification.clone())
        .get_distribution_receipt(forward(
            &principal,
            GetDistributionReceiptRequest {
                distribution_id: id,
            },
        ))
        .await?
        .into_inner();
    Ok(inline_pdf(&receipt.file_name, receipt.pdf))
}

async fn after(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    id: &str,
    done: &str,
    outcome: Result<(), tonic::Status>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/distributions/{id}?done={done}")).into_response()),
        Err(status) => {
            let error = ServiceError::from_status(&status);
            if matches!(error.code, Code::FailedPrecondition | Code::Aborted) {
                show_page(web, principal, csrf, id, "", error.message).await
            } else {
                Err(PageError::Service(error))
            }
        }
    }
}

pub async fn complete(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let outcome = client(&web)
        .complete_distribution(forward(
            &principal,
            pb::CompleteDistributionRequest {
                distribution_id: id.clone(),
            },
        ))
        .await
        .map(drop);
    after(&web, &principal, &csrf, &id, "complete", outcome).await
}

pub async fn reclaim(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let outcome = client(&web)
        .reclaim_distribution(forward(
            &principal,
            pb::ReclaimDistributionRequest {
                distribution_id: id.clone(),
            },
        ))
        .await
        .map(drop);
    after(&web, &principal, &csrf, &id, "reclaim", outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_inputs_parse_to_cents() {
        assert_eq!(parse_money("12.5"), Some(1250));
        assert_eq!(parse_money("$3"), Some(300));
        assert_eq!(parse_money("0.05"), Some(5));
        assert_eq!(parse_money("1.234"), None);
        assert_eq!(parse_money("-1"), None);
        assert_eq!(parse_money("ten"), None);
    }

    #[test]
    fn api_line_fields_become_form_lines() {
        assert_eq!(form_field("distribution.line_items[2].quantity"), "line_2");
        assert_eq!(form_field("distribution.partner_id"), "partner_id");
    }

    #[test]
    fn form_lines_are_read_in_order_and_bad_quantities_are_named() {
        let form = Form::from_pairs(&[
            ("issued_at", "2026-12-08T10:00"),
            ("delivery_method", "pick_up"),
            ("item_id", "a"),
            ("quantity", "5"),
            ("item_id", ""),
            ("quantity", ""),
            ("item_id", "b"),
            ("quantity", "zero"),
        ]);
        let mut errors = Errors::default();
        let distribution = Fields::from_form(&form).to_distribution(&mut errors);
        assert_eq!(distribution.line_items.len(), 1);
        assert_eq!(distribution.line_items[0].quantity, 5);
        assert!(errors.get("line_1").is_none());
        assert!(errors.get("line_2").is_some());
    }
}
