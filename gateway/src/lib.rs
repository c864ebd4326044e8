//! The public HTTP/JSON gateway of Essentials: it authenticates callers, validates and translates
//! requests to the parts' gRPC APIs, and serves health, readiness and metrics. It holds no
//! business logic and no durable state.

pub mod convert;
mod error;
pub mod extract;
mod limits;
pub mod openapi;
mod ops;
mod routes;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use essentials_runtime::auth::TokenVerifier;
use essentials_runtime::metrics::{HttpLabels, HttpRouteLabels, metrics};
use essentials_runtime::{CancellationToken, Settings};
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

/// Channels to the four parts (lazily connected; balanced over replicas when named by DNS).
#[derive(Clone)]
pub struct Upstreams {
    pub partner: Channel,
    pub request: Channel,
    pub inventory: Channel,
    pub notification: Channel,
}

impl Upstreams {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let timeout = std::time::Duration::from_millis(settings.gateway.upstream_timeout_ms.max(1));
        let channel = |url: &str| essentials_runtime::grpc::channel_with_timeout(url, timeout);
        Ok(Self {
            partner: channel(&settings.partner.url)?,
            request: channel(&settings.request.url)?,
            inventory: channel(&settings.inventory.url)?,
            notification: channel(&settings.notification.url)?,
        })
    }

    fn named(&self) -> [(&'static str, Channel); 4] {
        [
            ("partner", self.partner.clone()),
            ("request", self.request.clone()),
            ("inventory", self.inventory.clone()),
            ("notification", self.notification.clone()),
        ]
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub upstreams: Upstreams,
    pub verifier: TokenVerifier,
    /// The API's rate limits (`gateway.rate_limit`), shared by every request of this replica.
    pub limits: Arc<limits::Limits>,
}

impl AppState {
    pub fn new(settings: Arc<Settings>, upstreams: Upstreams, verifier: TokenVerifier) -> Self {
        Self {
            limits: Arc::new(limits::Limits::new(&settings.gateway.rate_limit)),
            settings,
            upstreams,
            verifier,
        }
    }
}

/// Every documented route: operations and `/api/v1`.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(ops::router())
        .nest("/api/v1", routes::router())
}

/// The OpenAPI document of the whole HTTP surface, as `/api/v1/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(documented_routes().into_openapi())
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let max_body = state.settings.gateway.max_body_bytes;
    let cors = cors_layer(&state.settings.gateway.cors_origins);
    let client_limit = ClientLimit {
        limits: state.limits.clone(),
        hops: state.settings.gateway.forwarded_for_hops,
    };
    let (routes, document) = documented_routes().split_for_parts();
    let web = essentials_web::Web::new(
        &state.settings,
        essentials_web::Channels {
            partner: state.upstreams.partner.clone(),
            request: state.upstreams.request.clone(),
            inventory: state.upstreams.inventory.clone(),
            notification: state.upstreams.notification.clone(),
        },
        state.verifier.clone(),
    );
    routes
        .merge(openapi::router(openapi::finish(document)))
        .with_state(state)
        .merge(essentials_web::router(web))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(pass_idempotency_key_on))
        .layer(axum::middleware::from_fn_with_state(
            client_limit,
            limit_clients,
        ))
        .layer(axum::middleware::from_fn(observe))
        .layer(cors)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// An unknown path: the API's JSON error under `/api`, the web application's page elsewhere.
async fn not_found(uri: axum::http::Uri) -> Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/api/") {
        ApiError::not_found_route().into_response()
    } else {
        essentials_web::not_found()
    }
}

/// Cross-origin access for the configured origins only (none by default: same-origin clients and
/// servers need no CORS).
fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, HeaderValue, Method, header};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin.trim()).ok())
        .collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

/// Serves the gateway until `shutdown`; in-flight requests finish first.
pub async fn serve(
    settings: Arc<Settings>,
    upstreams: Upstreams,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let verifier = TokenVerifier::from_settings(&settings.auth)?;
    // Over the gateway's own channel to the partner part: no second connection for the poll.
    let revocations = essentials_runtime::revocation::spawn(
        &verifier,
        upstreams.partner.clone(),
        &settings,
        shutdown.clone(),
    );
    let app = router(AppState::new(settings, upstreams, verifier));
    tracing::info!(part = "gateway", addr = %address, "listening");
    use axum::serve::ListenerExt;
    // No Nagle delay on answers written in pieces (headers, then body).
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await?;
    revocations.abort();
    tracing::info!(part = "gateway", "stopped");
    Ok(())
}

/// A mutating request's `Idempotency-Key` goes with every gRPC call made to serve it: each owning
/// part stores its answer under the key, so a retry gets the first answer and changes nothing.
async fn pass_idempotency_key_on(request: Request, next: Next) -> Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if reads {
        return next.run(request).await;
    }
    match extract::IdempotencyKey::from_headers(request.headers()) {
        Ok(extract::IdempotencyKey(Some(key))) => {
            essentials_runtime::idempotency::with_client_key(key, next.run(request)).await
        }
        Ok(extract::IdempotencyKey(None)) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

#[derive(Clone)]
struct ClientLimit {
    limits: Arc<limits::Limits>,
    hops: u8,
}

/// The per-client limit, before any other work: only the JSON API counts (the web application's
/// pages and the operations routes do not).
async fn limit_clients(
    axum::extract::State(limit): axum::extract::State<ClientLimit>,
    request: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse;
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    if let Some(client) = essentials_runtime::auth::client_address(&parts, limit.hops)
        && let Err(error) = limit.limits.check_client(client)
    {
        return ApiError::from(error).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Access log, request metrics and a span per request (child of the caller's trace).
async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    // The route template, not the raw path, so ids don't explode the label set.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!("http", %method, %route, %request_id);
    essentials_runtime::telemetry::set_parent_from_headers(&span, request.headers());
    // The parts' calls made for this request carry its id (`auth::forward` reads it), so their
    // logs and audit entries name the id the client got back.
    let call = essentials_runtime::audit::Call::new(&route, &request_id);
    let response = tracing::Instrument::instrument(
        essentials_runtime::audit::Call::run(call, next.run(request)),
        span.clone(),
    )
    .await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics()
        .http_requests
        .get_or_create(&HttpLabels {
            route: route.clone(),
            method: method.clone(),
            status,
        })
        .inc();
    metrics()
        .http_request_duration
        .get_or_create(&HttpRouteLabels {
            route,
            method: method.clone(),
        })
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(%path, status, latency_ms = elapsed.as_millis() as u64, "http request");
    });
    response
}
