//! Routes of this resource (see ../../../../shared/design/API.md); added by the issue that builds it.

use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
