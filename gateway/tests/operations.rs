//! What operators rely on: a request id on every answer, and `/metrics` counting requests by
//! route template and status with latency histograms.

mod common;

use common::{ID, app, bearer, send, settings};

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_callers_own_is_kept() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    let settings = settings();
    let app = app(&settings);
    let mut seen = std::collections::HashSet::new();
    for (method, uri) in [
        ("GET", "/healthz"),
        ("GET", "/api/v1/partners"),
        ("POST", "/api/v1/sessions"),
        ("GET", "/api/v1/no_such_route"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("answer");
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("{method} {uri}: no x-request-id"))
            .to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert!(seen.insert(id), "request ids are unique");
    }
    let request = Request::builder()
        .uri("/healthz")
        .header("x-request-id", "caller-chosen-42")
        .body(Body::empty())
        .expect("request");
    let response = app.oneshot(request).await.expect("answer");
    assert_eq!(response.headers()["x-request-id"], "caller-chosen-42");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status_with_latencies() {
    let settings = settings();
    let app = app(&settings);
    let bearer = bearer(&settings);
    let auth = [("authorization", bearer.as_str())];
    // Two different ids: one route template in the labels, not two paths.
    for id in [ID, "0190e4a0-0000-7000-8000-000000000002"] {
        let answer = send(
            &app,
            "GET",
            &format!("/api/v1/partners/{id}"),
            &auth,
            Vec::new(),
        )
        .await;
        assert_eq!(answer.status, 503, "no partner part runs here");
    }
    let unauthenticated = send(&app, "GET", "/api/v1/partners", &[], Vec::new()).await;
    assert_eq!(unauthenticated.status, 401);
    let metrics = send(&app, "GET", "/metrics", &[], Vec::new()).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body.as_str().expect("text").to_owned();
    let line = |needle: &[&str]| {
        text.lines()
            .find(|line| needle.iter().all(|part| line.contains(part)))
            .map(str::to_owned)
    };
    let by_template = line(&[
        "http_requests_total{",
        "route=\"/api/v1/partners/{id}\"",
        "method=\"GET\"",
        "status=\"503\"",
    ])
    .unwrap_or_else(|| panic!("no counter for the template in:\n{text}"));
    assert!(by_template.ends_with(" 2"), "{by_template}");
    assert!(
        line(&[
            "http_requests_total{",
            "route=\"/api/v1/partners\"",
            "status=\"401\""
        ])
        .is_some(),
        "{text}"
    );
    assert!(!text.contains(ID), "raw paths never become labels");
    assert!(
        line(&[
            "http_request_duration_seconds_bucket{",
            "route=\"/api/v1/partners/{id}\""
        ])
        .is_some(),
        "a latency histogram per route:\n{text}"
    );
}
