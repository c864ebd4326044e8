//! The bank's audit trail (admins only): who changed what, when, through which request, newest
//! first, from every part.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use essentials_proto::common::v1 as audit;
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::user_service_client::UserServiceClient;
use essentials_runtime::auth::{Role, forward};

use crate::Web;
use crate::error::{PageError, render};
use crate::session::{Csrf, Staff};
use crate::view::{self, Chrome};

struct EntryRow {
    at: String,
    who: String,
    role: String,
    part: String,
    action: String,
    events: String,
    subjects: String,
    request_id: String,
}

#[derive(Template)]
#[template(path = "audit/list.html")]
struct ListPage {
    chrome: Chrome,
    entries: Vec<EntryRow>,
    next: String,
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    page_token: String,
}

/// `essentials.inventory.v1.CatalogService/CreateItem` → `Create item`.
fn action(method: &str) -> String {
    let name = method.rsplit('/').next().unwrap_or(method);
    let mut words = String::new();
    for (index, character) in name.chars().enumerate() {
        if character.is_uppercase() && index > 0 {
            words.push(' ');
            words.extend(character.to_lowercase());
        } else {
            words.push(character);
        }
    }
    words
}

pub async fn list(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    if principal.role != Role::OrgAdmin {
        return Err(PageError::forbidden(
            "Only the bank's administrators read its audit trail.",
        ));
    }
    let channels = web.channels();
    let parts = [
        channels.partner.clone(),
        channels.request.clone(),
        channels.inventory.clone(),
        channels.notification.clone(),
    ];
    let request = audit::ListAuditEventsRequest {
        page_size: 100,
        page_token: query.page_token,
        ..Default::default()
    };
    let mut users = UserServiceClient::new(channels.partner.clone());
    let (chrome, trail, staff) = tokio::join!(
        view::chrome(&web, &principal, &csrf, "audit", "Audit trail"),
        essentials_runtime::audit::read_merged(&parts, &principal, request),
        users.list_users(forward(
            &principal,
            pb::ListUsersRequest {
                page_size: 500,
                page_token: String::new(),
            },
        )),
    );
    // Staff by name; anyone else (partner users, service accounts) by role and id.
    let names: HashMap<String, String> = staff?
        .into_inner()
        .users
        .into_iter()
        .filter_map(|bank_user| bank_user.user)
        .map(|user| {
            let name = if user.name.is_empty() {
                user.email
            } else {
                format!("{} ({})", user.name, user.email)
            };
            (user.id, name)
        })
        .collect();
    let trail = trail?;
    let entries = trail
        .events
        .into_iter()
        .map(|entry| EntryRow {
            at: view::date_time(entry.at.as_ref()),
            who: names
                .get(&entry.actor_id)
                .cloned()
                .unwrap_or_else(|| entry.actor_id.clone()),
            role: if entry.service_account {
                format!("{} (service account)", entry.actor_role)
            } else {
                entry.actor_role
            },
            part: entry.part,
            action: action(&entry.method),
            events: entry.events.join(", "),
            subjects: entry.subjects.join(", "),
            request_id: entry.request_id,
        })
        .collect();
    Ok(render(&ListPage {
        chrome: chrome?,
        entries,
        next: trail.next_page_token,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn methods_read_as_actions() {
        assert_eq!(
            super::action("essentials.inventory.v1.CatalogService/CreateItem"),
            "Create item"
        );
        assert_eq!(super::action("Approve"), "Approve");
    }
}
