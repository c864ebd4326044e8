//! The web application of Essentials: pages for bank staff, rendered on the server from
//! compile-checked templates (askama), enhanced with htmx, served by the gateway beside `/api/v1`.
//! Pages call the parts over the same gRPC clients, and map their errors through the same code
//! table, as the JSON API; no rule and no SQL lives here.

mod assets;
mod error;
mod form;
mod pages;
mod session;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use essentials_runtime::Settings;
use essentials_runtime::auth::TokenVerifier;
use tonic::transport::Channel;

/// Channels to the parts (the gateway's own, shared).
#[derive(Clone)]
pub struct Channels {
    pub partner: Channel,
    pub request: Channel,
    pub inventory: Channel,
    pub notification: Channel,
}

/// What every page can reach.
#[derive(Clone)]
pub struct Web(Arc<Inner>);

struct Inner {
    channels: Channels,
    verifier: TokenVerifier,
    keys: session::Keys,
    /// Cookies get `Secure` when the public URL is https.
    secure_cookies: bool,
    /// Proxies in front of the gateway (sign-in throttling per client address).
    forwarded_for_hops: u8,
}

impl Web {
    pub fn new(settings: &Settings, channels: Channels, verifier: TokenVerifier) -> Self {
        Self(Arc::new(Inner {
            channels,
            verifier,
            keys: session::Keys::from_settings(settings),
            secure_cookies: settings.public_url.starts_with("https://"),
            forwarded_for_hops: settings.gateway.forwarded_for_hops,
        }))
    }

    fn channels(&self) -> &Channels {
        &self.0.channels
    }
}

/// Every page, the static assets and the live dashboard stream.
pub fn router(web: Web) -> Router {
    pages::router()
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            session::refresh_and_csrf,
        ))
        // Assets need no session (and must not renew one three times in parallel).
        .merge(assets::router())
        .with_state(web)
}

/// The friendly "not found" page, for paths no route knows.
pub fn not_found() -> Response {
    error::PageError::not_found().into_response_page()
}
