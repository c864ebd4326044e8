//! The bank's dashboard: Getting Started until the bank is set up, Outstanding Requests, Partner
//! Approvals and low stock, pushed to the open page as the notification part's projection changes.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::inventory::v1 as inventory;
use essentials_proto::inventory::v1::catalog_service_client::CatalogServiceClient;
use essentials_proto::inventory::v1::storage_location_service_client::StorageLocationServiceClient;
use essentials_proto::notification::v1 as pb;
use essentials_proto::notification::v1::dashboard_service_client::DashboardServiceClient;
use essentials_proto::partner::v1 as partner;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_runtime::auth::{Principal, forward};
use futures_util::{Stream, StreamExt};

use crate::Web;
use crate::error::{PageError, render};
use crate::session::{Csrf, MaybeSignedIn};
use crate::view::{self, Chrome};

/// What is left of Getting Started (seed "Getting Started").
struct Setup {
    has_location: bool,
    has_items: bool,
    has_partner: bool,
}

struct OutstandingRow {
    request_id: String,
    partner_name: String,
    requester: String,
    comments: String,
    created: String,
}

struct ApprovalRow {
    partner_id: String,
    name: String,
    contact: String,
    requested: String,
}

struct LowRow {
    name: String,
    quantity: i32,
    threshold: i32,
    below_minimum: bool,
}

/// The part of the dashboard that is replaced live.
#[derive(Template)]
#[template(path = "dashboard/live.html")]
struct Live {
    outstanding: Vec<OutstandingRow>,
    outstanding_count: i32,
    approvals: Vec<ApprovalRow>,
    low: Vec<LowRow>,
    upcoming_count: i32,
}

impl From<pb::Dashboard> for Live {
    fn from(dashboard: pb::Dashboard) -> Self {
        Live {
            outstanding: dashboard
                .outstanding_requests
                .into_iter()
                .map(|request| OutstandingRow {
                    created: view::date_time(request.created_at.as_ref()),
                    request_id: request.request_id,
                    partner_name: request.partner_name,
                    requester: request.requester,
                    comments: request.comments,
                })
                .collect(),
            outstanding_count: dashboard.outstanding_requests_count,
            approvals: dashboard
                .partner_approvals
                .into_iter()
                .map(|approval| ApprovalRow {
                    requested: view::date_time(approval.review_requested_at.as_ref()),
                    partner_id: approval.partner_id,
                    name: approval.name,
                    contact: [
                        approval.primary_contact_name,
                        approval.primary_contact_email,
                    ]
                    .into_iter()
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join(" · "),
                })
                .collect(),
            low: dashboard
                .low_inventory
                .into_iter()
                .map(|item| LowRow {
                    threshold: if item.below_minimum {
                        item.minimum
                    } else {
                        item.recommended
                    },
                    name: item.name,
                    quantity: item.quantity,
                    below_minimum: item.below_minimum,
                })
                .collect(),
            upcoming_count: dashboard.upcoming_distributions_count,
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/show.html")]
struct DashboardPage {
    chrome: Chrome,
    setup: Option<Setup>,
    live: Live,
}

async fn setup(web: &Web, principal: &Principal) -> Result<Option<Setup>, PageError> {
    let channels = web.channels();
    let mut locations = StorageLocationServiceClient::new(channels.inventory.clone());
    let mut catalog = CatalogServiceClient::new(channels.inventory.clone());
    let mut partners = PartnerServiceClient::new(channels.partner.clone());
    let (locations, items, partners) = tokio::join!(
        locations.list_storage_locations(forward(
            principal,
            inventory::ListStorageLocationsRequest {
                page_size: 1,
                ..Default::default()
            },
        )),
        catalog.list_items(forward(
            principal,
            inventory::ListItemsRequest {
                page_size: 1,
                ..Default::default()
            },
        )),
        partners.list_partners(forward(
            principal,
            partner::ListPartnersRequest {
                page_size: 1,
                ..Default::default()
            },
        )),
    );
    let setup = Setup {
        has_location: !locations?.into_inner().storage_locations.is_empty(),
        has_items: !items?.into_inner().items.is_empty(),
        has_partner: !partners?.into_inner().partners.is_empty(),
    };
    Ok((!(setup.has_location && setup.has_items && setup.has_partner)).then_some(setup))
}

pub async fn show(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    MaybeSignedIn(signed_in): MaybeSignedIn,
) -> Result<Response, PageError> {
    let Some(principal) = signed_in else {
        return Ok(Redirect::to("/sign-in").into_response());
    };
    if principal.role == essentials_runtime::auth::Role::Partner {
        return super::partner_home::show(&web, &principal, &csrf, String::new()).await;
    }
    if !principal.is_bank_staff() {
        return Err(PageError::forbidden(
            "These pages are for a bank's staff and its partner agencies.",
        ));
    }
    let mut dashboard = DashboardServiceClient::new(web.channels().notification.clone());
    let (chrome, setup, dashboard) = tokio::join!(
        view::chrome(&web, &principal, &csrf, "dashboard", "Dashboard"),
        setup(&web, &principal),
        dashboard.get_dashboard(forward(&principal, pb::GetDashboardRequest {})),
    );
    let dashboard = dashboard?.into_inner().dashboard.unwrap_or_default();
    Ok(render(&DashboardPage {
        chrome: chrome?,
        setup: setup?,
        live: Live::from(dashboard),
    }))
}

/// `text/event-stream` of the live part of the dashboard, rendered, on every change.
pub async fn live(
    State(web): State<Web>,
    crate::session::Staff(principal): crate::session::Staff,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let stream = DashboardServiceClient::new(web.channels().notification.clone())
        .watch_dashboard(forward(&principal, pb::WatchDashboardRequest {}))
        .await?
        .into_inner();
    let events = stream
        .take_while(|message| std::future::ready(message.is_ok()))
        .filter_map(|message| async move {
            let dashboard = message.ok()?.dashboard?;
            let html = Live::from(dashboard).render().ok()?;
            Some(Ok(Event::default().event("dashboard").data(html)))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
