//! Partner groups: which item categories their partners may request, and when they are reminded
//! of the bank's request deadline.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::inventory::v1 as inventory;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::partner_group_service_client::PartnerGroupServiceClient;
use essentials_runtime::auth::{Principal, forward};
use tonic::transport::Channel;

use super::path_id;
use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, Form, same_name};
use crate::session::{Csrf, Staff};
use crate::view::{self, Choice, Chrome};

fn client(web: &Web) -> PartnerGroupServiceClient<Channel> {
    PartnerGroupServiceClient::new(web.channels().partner.clone())
}

/// The group form's fields, as typed.
#[derive(Default)]
struct Fields {
    name: String,
    categories: Vec<String>,
    send_reminders: bool,
    deadline_day: String,
    reminder_day: String,
}

impl Fields {
    fn from_form(form: &Form) -> Self {
        Fields {
            name: form.text("name"),
            categories: form.all("item_category_id"),
            send_reminders: form.checked("send_reminders"),
            deadline_day: form.text("deadline_day"),
            reminder_day: form.text("reminder_day"),
        }
    }

    fn from_group(group: &pb::PartnerGroup) -> Self {
        let day = |day: Option<i32>| day.map(|day| day.to_string()).unwrap_or_default();
        Fields {
            name: group.name.clone(),
            categories: group.item_category_ids.clone(),
            send_reminders: group.send_reminders,
            deadline_day: day(group.deadline_day),
            reminder_day: day(group.reminder_day),
        }
    }

    fn to_group(&self, errors: &mut Errors) -> pb::PartnerGroup {
        let mut day = |field: &str, text: &str| {
            if text.is_empty() {
                return None;
            }
            let day = text.parse::<i32>().ok();
            if day.is_none() {
                errors.add(field, "must be a day of the month, 1 to 28");
            }
            day
        };
        pb::PartnerGroup {
            name: self.name.clone(),
            item_category_ids: self.categories.clone(),
            send_reminders: self.send_reminders,
            deadline_day: day("deadline_day", &self.deadline_day),
            reminder_day: day("reminder_day", &self.reminder_day),
            ..Default::default()
        }
    }
}

struct GroupRow {
    id: String,
    name: String,
    categories: String,
    partner_count: i32,
    reminders: String,
}

#[derive(Template)]
#[template(path = "groups/page.html")]
struct GroupsPage {
    chrome: Chrome,
    /// Empty on the list (the form adds a group).
    id: String,
    groups: Vec<GroupRow>,
    fields: Fields,
    categories: Vec<Choice>,
    errors: Errors,
    form_id: String,
    notice: &'static str,
}

async fn categories(
    web: &Web,
    principal: &Principal,
) -> Result<Vec<inventory::ItemCategory>, PageError> {
    Ok(CatalogServiceClient::new(web.channels().inventory.clone())
        .list_item_categories(forward(
            principal,
            inventory::ListItemCategoriesRequest {
                page_size: 500,
                page_token: String::new(),
            },
        ))
        .await?
        .into_inner()
        .item_categories)
}

struct PageInput {
    id: String,
    fields: Fields,
    errors: Errors,
    form_id: String,
    notice: &'static str,
}

async fn page(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    input: PageInput,
) -> Result<Response, PageError> {
    let title = if input.id.is_empty() {
        "Partner groups"
    } else {
        "Edit partner group"
    };
    let mut groups = client(web);
    let (chrome, categories, groups) = tokio::join!(
        view::chrome(web, principal, csrf, "partners", title),
        categories(web, principal),
        groups.list_partner_groups(forward(
            principal,
            pb::ListPartnerGroupsRequest {
                page_size: 500,
                page_token: String::new(),
            },
        )),
    );
    let categories = categories?;
    let name_of = |id: &String| {
        categories
            .iter()
            .find(|category| &category.id == id)
            .map(|category| category.name.clone())
            .unwrap_or_default()
    };
    let rows = groups?
        .into_inner()
        .partner_groups
        .into_iter()
        .map(|group| GroupRow {
            categories: if group.item_category_ids.is_empty() {
                "Every category".to_owned()
            } else {
                group
                    .item_category_ids
                    .iter()
                    .map(name_of)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            reminders: match (group.send_reminders, group.reminder_day, group.deadline_day) {
                (true, Some(reminder), Some(deadline)) => {
                    format!("on the {reminder}th, for the {deadline}th")
                }
                (true, _, _) => "on".to_owned(),
                (false, _, _) => "off".to_owned(),
            },
            id: group.id,
            name: group.name,
            partner_count: group.partner_count,
        })
        .collect();
    let choices = categories
        .iter()
        .map(|category| Choice {
            selected: input.fields.categories.contains(&category.id),
            value: category.id.clone(),
            label: category.name.clone(),
        })
        .collect();
    Ok(render(&GroupsPage {
        chrome: chrome?,
        id: input.id,
        groups: rows,
        fields: input.fields,
        categories: choices,
        errors: input.errors,
        form_id: input.form_id,
        notice: input.notice,
    }))
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    done: String,
}

pub async fn list(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let notice = match query.done.as_str() {
        "created" => "The group was added.",
        "updated" => "Saved.",
        "deleted" => "The group was deleted.",
        _ => "",
    };
    let input = PageInput {
        id: String::new(),
        fields: Fields::default(),
        errors: Errors::default(),
        form_id: uuid::Uuid::new_v4().to_string(),
        notice,
    };
    page(&web, &principal, &csrf, input).await
}

pub async fn create(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    form: Form,
) -> Result<Response, PageError> {
    let fields = Fields::from_form(&form);
    let mut errors = Errors::default();
    let group = fields.to_group(&mut errors);
    if errors.is_empty() {
        let answer = client(&web)
            .create_partner_group(forward(
                &principal,
                pb::CreatePartnerGroupRequest {
                    partner_group: Some(group),
                    request_id: form.text("form_id"),
                },
            ))
            .await;
        match answer {
            Ok(_) => return Ok(Redirect::to("/partner_groups?done=created").into_response()),
            Err(status) => errors = Errors::from_status(status, same_name)?,
        }
    }
    let input = PageInput {
        id: String::new(),
        fields,
        errors,
        form_id: form.text("form_id"),
        notice: "",
    };
    page(&web, &principal, &csrf, input).await
}

pub async fn edit_form(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let group = client(&web)
        .get_partner_group(forward(
            &principal,
            pb::GetPartnerGroupRequest {
                partner_group_id: id.clone(),
            },
        ))
        .await?
        .into_inner()
        .partner_group
        .ok_or_else(PageError::not_found)?;
    let input = PageInput {
        id,
        fields: Fields::from_group(&group),
        errors: Errors::default(),
        form_id: String::new(),
        notice: "",
    };
    page(&web, &principal, &csrf, input).await
}

pub async fn update(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let fields = Fields::from_form(&form);
    let mut errors = Errors::default();
    let mut group = fields.to_group(&mut errors);
    group.id = id.clone();
    if errors.is_empty() {
        let answer = client(&web)
            .update_partner_group(forward(
                &principal,
                pb::UpdatePartnerGroupRequest {
                    partner_group: Some(group),
                    // The form holds every writable field: an empty mask means all of them.
                    update_mask: None,
                },
            ))
            .await;
        match answer {
            Ok(_) => return Ok(Redirect::to("/partner_groups?done=updated").into_response()),
            Err(status) => errors = Errors::from_status(status, same_name)?,
        }
    }
    let input = PageInput {
        id,
        fields,
        errors,
        form_id: String::new(),
        notice: "",
    };
    page(&web, &principal, &csrf, input).await
}

/// Deletes a group; one with partners is refused (the page says so).
pub async fn delete(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    let answer = client(&web)
        .delete_partner_group(forward(
            &principal,
            pb::DeletePartnerGroupRequest {
                partner_group_id: id,
            },
        ))
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to("/partner_groups?done=deleted").into_response()),
        Err(status) => {
            let input = PageInput {
                id: String::new(),
                fields: Fields::default(),
                errors: Errors::from_status(status, same_name)?,
                form_id: uuid::Uuid::new_v4().to_string(),
                notice: "",
            };
            page(&web, &principal, &csrf, input).await
        }
    }
}
