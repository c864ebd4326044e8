//! Operations routes: liveness, readiness (every upstream answers gRPC health) and metrics.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::AppState;

const UPSTREAM_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

/// 200 only when every part reports SERVING; the body says which did not.
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

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        essentials_runtime::metrics::metrics().render(),
    )
}
