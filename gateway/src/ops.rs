//! Operations routes: liveness, readiness (every upstream answers gRPC health) and metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

const UPSTREAM_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// `{"status":"alive"}` while the gateway answers at all, and `{"status":"ready"|"not_ready",
/// "upstreams":{part: serving|not_serving|unreachable|timeout}}` from readiness.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only describes the answer in the document.
struct HealthDto {
    status: String,
    upstreams: Option<std::collections::BTreeMap<String, String>>,
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The gateway answers", body = HealthDto)))]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

/// Readiness: 200 only when every part reports SERVING; the body says which did not.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Every part is serving", body = HealthDto),
        (status = 503, description = "A part is not serving", body = HealthDto),
    ))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let checks = state.upstreams.named().map(|(name, channel)| async move {
        let mut client = HealthClient::new(channel);
        let answer = tokio::time::timeout(
            UPSTREAM_CHECK_TIMEOUT,
            client.check(HealthCheckRequest {
                service: String::new(),
            }),
        )
        .await;
        let status = match answer {
            Ok(Ok(response)) => match response.into_inner().status() {
                tonic_health::pb::health_check_response::ServingStatus::Serving => "serving",
                _ => "not_serving",
            },
            Ok(Err(_)) => "unreachable",
            Err(_) => "timeout",
        };
        (name, status)
    });
    let results = futures_util::future::join_all(checks).await;
    let ready = results.iter().all(|(_, status)| *status == "serving");
    let upstreams: serde_json::Map<String, Value> = results
        .into_iter()
        .map(|(name, status)| (name.to_owned(), Value::from(status)))
        .collect();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({"status": if ready { "ready" } else { "not_ready" }, "upstreams": upstreams})),
    )
}

/// Prometheus metrics (OpenMetrics text): HTTP requests by route and status, latencies, gRPC
/// calls, outbox and consumer figures, e-mails sent and failed.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "OpenMetrics text", body = String,
        content_type = "application/openmetrics-text")))]
async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        essentials_runtime::metrics::metrics().render(),
    )
}
