//! One router per resource, merged here. Each module is owned by the issue that builds its part.

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

mod audit;
mod catalog;
mod dashboard;
mod distributions;
mod inventory;
mod organizations;
mod partner_groups;
mod partner_portal;
mod partners;
mod profile;
mod requests;
mod sessions;

/// Every `/api/v1` route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(sessions::router())
        .merge(organizations::router())
        .merge(partners::router())
        .merge(partner_groups::router())
        .merge(partner_portal::router())
        .merge(catalog::router())
        .merge(inventory::router())
        .merge(distributions::router())
        .merge(requests::router())
        .merge(dashboard::router())
        .merge(audit::router())
}
