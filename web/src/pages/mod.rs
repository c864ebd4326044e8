//! The pages, one module per area of the bank's work.

mod audit;
mod auth;
mod choices;
mod dashboard;
mod distributions;
mod groups;
mod partner_home;
mod partners;
mod portal;
mod portal_requests;
mod profile;
mod requests;
mod setup;
mod users;

use axum::Router;
use axum::routing::{get, post};

use crate::Web;

pub fn router() -> Router<Web> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/dashboard/live", get(dashboard::live))
        .route("/partner/submit", post(partner_home::submit))
        .route("/partner/profile", get(profile::own_review))
        .route("/partner/profile/submit", post(profile::submit))
        .route(
            "/partner/profile/{section}",
            get(profile::own_edit).post(profile::own_save),
        )
        .route("/partner/requests", get(portal_requests::list))
        .route(
            "/partner/requests/new",
            get(portal_requests::new_form).post(portal_requests::create),
        )
        .route("/partner/requests/{id}", get(portal_requests::show))
        .route(
            "/partner/requests/{id}/cancel",
            post(portal_requests::cancel),
        )
        .route("/partner/distributions", get(portal::distributions))
        .route("/partner/distributions/{id}", get(portal::distribution))
        .route("/partner/users", get(portal::users).post(portal::invite))
        .route("/partners/{id}/profile", get(profile::bank_review))
        .route(
            "/partners/{id}/profile/{section}",
            get(profile::bank_edit).post(profile::bank_save),
        )
        .route("/sign-in", get(auth::sign_in_form).post(auth::sign_in))
        .route("/sign-out", post(auth::sign_out))
        .route("/switch", post(auth::switch))
        .route(
            "/invitations/accept",
            get(auth::accept_form).post(auth::accept),
        )
        .route(
            "/password/forgot",
            get(auth::forgot_form).post(auth::forgot),
        )
        .route("/password/reset", get(auth::reset_form).post(auth::reset))
        .route("/partners", get(partners::list))
        .route(
            "/partners/new",
            get(partners::new_form).post(partners::create),
        )
        .route(
            "/partners/import",
            get(partners::import_form).post(partners::import),
        )
        .route("/partners/{id}/users", post(partners::invite_user))
        .route(
            "/partners/{id}/users/{user_id}/{action}",
            post(partners::user_action),
        )
        .route("/partner_groups", get(groups::list).post(groups::create))
        .route(
            "/partner_groups/{id}",
            get(groups::edit_form).post(groups::update),
        )
        .route("/partner_groups/{id}/delete", post(groups::delete))
        .route("/partners/{id}", get(partners::show))
        .route(
            "/partners/{id}/edit",
            get(partners::edit_form).post(partners::update),
        )
        .route("/partners/{id}/actions/{action}", post(partners::act))
        .route("/requests", get(requests::list))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/fulfill", post(requests::fulfill))
        .route("/requests/{id}/cancel", post(requests::cancel))
        .route("/distributions", get(distributions::list))
        .route(
            "/distributions/new",
            get(distributions::new_form).post(distributions::create),
        )
        .route("/distributions/{id}", get(distributions::show))
        .route(
            "/distributions/{id}/edit",
            get(distributions::edit_form).post(distributions::update),
        )
        .route(
            "/distributions/{id}/complete",
            post(distributions::complete),
        )
        .route("/distributions/{id}/reclaim", post(distributions::reclaim))
        .route("/distributions/{id}/receipt", get(distributions::receipt))
        .route(
            "/storage_locations/new",
            get(setup::location_form).post(setup::create_location),
        )
        .route("/items/new", get(setup::item_form).post(setup::create_item))
        .route("/users", get(users::list))
        .route("/audit", get(audit::list))
        .route("/users/invite", post(users::invite))
        .route("/users/{id}/{action}", post(users::act))
}

/// A path of ours to go back to after signing in (never another site).
pub fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

/// A UUID from a path segment; anything else names nothing that exists.
pub fn path_id(text: &str) -> Result<String, crate::error::PageError> {
    uuid::Uuid::parse_str(text)
        .map(|id| id.to_string())
        .map_err(|_| crate::error::PageError::not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_paths_are_followed_after_sign_in() {
        assert_eq!(
            local_path("/partners?status=approved"),
            "/partners?status=approved"
        );
        assert_eq!(local_path("//evil.test/"), "/");
        assert_eq!(local_path("https://evil.test/"), "/");
        assert_eq!(local_path("/\\evil.test"), "/");
    }
}
