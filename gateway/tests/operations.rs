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

#[tokio::test]
async fn the_api_limits_each_client_and_each_bank_with_429_and_retry_after() {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use tower::ServiceExt;
    let mut settings = settings();
    settings.gateway.rate_limit.client_per_second = 0.5;
    settings.gateway.rate_limit.client_burst = 3;
    settings.gateway.rate_limit.bank_per_second = 0.5;
    settings.gateway.rate_limit.bank_burst = 2;
    let app = app(&settings);
    let token = bearer(&settings);
    let call = |client: [u8; 4], token: Option<&str>, uri: &str| {
        let mut request = Request::builder().uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let mut request = request.body(Body::empty()).expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(std::net::SocketAddr::from((client, 40_000))));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.expect("answer");
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .expect("body");
            (
                status,
                retry_after,
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
    };
    let a = [10, 0, 0, 1];
    let b = [10, 0, 0, 2];
    // The bank's bucket holds two calls: both reach the (closed) partner part, the third is
    // refused before any part is asked.
    for _ in 0..2 {
        let (status, _, body) = call(a, Some(&token), "/api/v1/partners").await;
        assert_eq!(status, 503, "{body}");
    }
    let (status, retry_after, body) = call(b, Some(&token), "/api/v1/partners").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        retry_after.as_deref(),
        Some("2"),
        "one call per 2 s refills"
    );
    assert!(body.contains("\"reason\":\"RATE_LIMITED\""), "{body}");
    assert!(body.contains("from this bank"), "{body}");
    // Client a has made two calls of its three; the third passes the client limit and is
    // refused by the bank's; the fourth is refused as the client's, token or not.
    let (status, _, _) = call(a, Some(&token), "/api/v1/partners").await;
    assert_eq!(status, 429);
    let (status, retry_after, body) = call(a, None, "/api/v1/partners").await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("from this client"), "{body}");
    assert!(retry_after.is_some());
    // Another client without a token is merely unauthenticated; the operations routes and the
    // web application's pages are not counted.
    assert_eq!(call(b, None, "/api/v1/partners").await.0, 401);
    assert_eq!(call(a, None, "/healthz").await.0, 200);
    assert_eq!(call(a, None, "/sign-in").await.0, 200);
}
