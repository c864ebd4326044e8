//! Tenant isolation through the public API: a user of bank B (and a partner user of another
//! partner) gets 403 or 404 on bank A's ids on every route, and lists none of bank A's rows.
//! (The partner routes' matrix is in partners_http.rs.)

use essentials_integration_tests::{Answer, Http, Stack, accept, bank};
use serde_json::{Value, json};

async fn create(http: &Http, token: &str, path: &str, body: Value) -> String {
    let answer: Answer = http.json("POST", path, Some(token), Some(body)).await;
    assert!(
        answer.status < 300,
        "POST {path}: {} {:?}",
        answer.status,
        answer.body
    );
    answer.body["id"].as_str().expect("id").to_owned()
}

fn tomorrow() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a date")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_bank_and_another_partner_reach_none_of_bank_a() {
    let stack = Stack::start(&[
        &essentials_partner::SPEC,
        &essentials_inventory::SPEC,
        &essentials_request::SPEC,
        &essentials_notification::SPEC,
    ])
    .await;
    let http = stack.http();
    let bank_a = bank(&stack, "Iso Bank A", "admin@iso-a.test").await;
    let bank_b = bank(&stack, "Iso Bank B", "admin@iso-b.test").await;

    // Bank A's rows.
    let category = create(
        &http,
        &bank_a,
        "/api/v1/item_categories",
        json!({"name": "A Category"}),
    )
    .await;
    let item = create(
        &http,
        &bank_a,
        "/api/v1/items",
        json!({"name": "A Item", "item_category_id": category}),
    )
    .await;
    let location = create(
        &http,
        &bank_a,
        "/api/v1/storage_locations",
        json!({"name": "A Hall", "address": "a"}),
    )
    .await;
    let other_location = create(
        &http,
        &bank_a,
        "/api/v1/storage_locations",
        json!({"name": "A Annex", "address": "b"}),
    )
    .await;
    let lines = json!([{"item_id": item, "quantity": 20}]);
    let donation = create(
        &http,
        &bank_a,
        "/api/v1/donations",
        json!({"storage_location_id": location, "line_items": lines}),
    )
    .await;
    let purchase = create(
        &http,
        &bank_a,
        "/api/v1/purchases",
        json!({"storage_location_id": location, "vendor": "Vendor", "amount_spent_in_cents": 1000, "line_items": lines}),
    )
    .await;
    let adjustment = create(&http, &bank_a, "/api/v1/adjustments", json!({"storage_location_id": location, "comment": "count", "line_items": [{"item_id": item, "quantity": -1}]})).await;
    let transfer = create(&http, &bank_a, "/api/v1/transfers", json!({"from_storage_location_id": location, "to_storage_location_id": other_location, "line_items": [{"item_id": item, "quantity": 1}]})).await;
    let audit = create(&http, &bank_a, "/api/v1/audits", json!({"storage_location_id": other_location, "line_items": [{"item_id": item, "quantity": 1}]})).await;
    let partner = create(
        &http,
        &bank_a,
        "/api/v1/partners",
        json!({"name": "A Partner", "email": "partner@iso-a.test"}),
    )
    .await;
    http.json(
        "POST",
        &format!("/api/v1/partners/{partner}/invite_and_approve"),
        Some(&bank_a),
        None,
    )
    .await;
    let partner_user = accept(&stack, "partner@iso-a.test").await;
    let other_partner = create(
        &http,
        &bank_a,
        "/api/v1/partners",
        json!({"name": "A Other", "email": "other@iso-a.test"}),
    )
    .await;
    http.json(
        "POST",
        &format!("/api/v1/partners/{other_partner}/invite_and_approve"),
        Some(&bank_a),
        None,
    )
    .await;
    let other_partner_user = accept(&stack, "other@iso-a.test").await;
    let request = create(
        &http,
        &partner_user,
        "/api/v1/partner/requests",
        json!({"items": [{"item_id": item, "quantity": 2}]}),
    )
    .await;
    let distribution = create(
        &http,
        &bank_a,
        "/api/v1/distributions",
        json!({"partner_id": partner, "storage_location_id": location, "issued_at": tomorrow(), "delivery_method": "pick_up", "line_items": [{"item_id": item, "quantity": 2}]}),
    )
    .await;

    // Bank B: every route on bank A's ids is 403 or 404, and nothing changes.
    let by_id: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/v1/items/{item}"), None),
        (
            "PATCH",
            format!("/api/v1/items/{item}"),
            Some(json!({"name": "Taken"})),
        ),
        ("GET", format!("/api/v1/item_categories/{category}"), None),
        (
            "PATCH",
            format!("/api/v1/item_categories/{category}"),
            Some(json!({"name": "Taken"})),
        ),
        (
            "DELETE",
            format!("/api/v1/item_categories/{category}"),
            None,
        ),
        ("GET", format!("/api/v1/storage_locations/{location}"), None),
        (
            "PATCH",
            format!("/api/v1/storage_locations/{location}"),
            Some(json!({"name": "Taken"})),
        ),
        (
            "POST",
            format!("/api/v1/storage_locations/{location}/deactivate"),
            None,
        ),
        ("GET", format!("/api/v1/donations/{donation}"), None),
        ("DELETE", format!("/api/v1/donations/{donation}"), None),
        ("GET", format!("/api/v1/purchases/{purchase}"), None),
        ("GET", format!("/api/v1/adjustments/{adjustment}"), None),
        ("GET", format!("/api/v1/transfers/{transfer}"), None),
        ("DELETE", format!("/api/v1/transfers/{transfer}"), None),
        ("GET", format!("/api/v1/audits/{audit}"), None),
        ("POST", format!("/api/v1/audits/{audit}/finalize"), None),
        ("DELETE", format!("/api/v1/audits/{audit}"), None),
        ("GET", format!("/api/v1/distributions/{distribution}"), None),
        (
            "PATCH",
            format!("/api/v1/distributions/{distribution}"),
            Some(json!({"comment": "taken"})),
        ),
        (
            "POST",
            format!("/api/v1/distributions/{distribution}/complete"),
            None,
        ),
        (
            "DELETE",
            format!("/api/v1/distributions/{distribution}"),
            None,
        ),
        ("GET", format!("/api/v1/requests/{request}"), None),
        ("POST", format!("/api/v1/requests/{request}/fulfill"), None),
        (
            "POST",
            format!("/api/v1/requests/{request}/cancel"),
            Some(json!({"reason": "taken"})),
        ),
    ];
    for (method, path, body) in &by_id {
        let answer = http.json(method, path, Some(&bank_b), body.clone()).await;
        assert!(
            answer.status == 404 || answer.status == 403,
            "bank B {method} {path}: {} {:?}",
            answer.status,
            answer.body
        );
    }
    // Bank B's lists hold none of bank A's rows (its own seeded base items aside).
    for path in [
        "/api/v1/items?page_size=500",
        "/api/v1/item_categories",
        "/api/v1/storage_locations",
        "/api/v1/donations",
        "/api/v1/distributions",
        "/api/v1/requests",
        "/api/v1/inventory",
        "/api/v1/emails",
    ] {
        let answer = http.json("GET", path, Some(&bank_b), None).await;
        assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
        let text = answer.body.to_string();
        for foreign in [
            &item,
            &category,
            &location,
            &donation,
            &distribution,
            &request,
            &partner,
        ] {
            assert!(
                !text.contains(foreign.as_str()),
                "{path} shows bank A's {foreign}"
            );
        }
    }
    let dashboard = http
        .json("GET", "/api/v1/dashboard", Some(&bank_b), None)
        .await;
    assert!(
        !dashboard.body.to_string().contains(&request),
        "{:?}",
        dashboard.body
    );

    // Another partner of bank A sees neither the request nor the distribution.
    let hidden = http
        .json(
            "GET",
            &format!("/api/v1/partner/requests/{request}"),
            Some(&other_partner_user),
            None,
        )
        .await;
    assert_eq!(hidden.status, 404, "{:?}", hidden.body);
    let own_list = http
        .json(
            "GET",
            "/api/v1/partner/requests",
            Some(&other_partner_user),
            None,
        )
        .await;
    assert!(!own_list.body.to_string().contains(&request));
    let distributions = http
        .json(
            "GET",
            "/api/v1/partner/distributions",
            Some(&other_partner_user),
            None,
        )
        .await;
    assert!(!distributions.body.to_string().contains(&distribution));
    // A partner user sees the bank's catalogue only as partners may (visible items), and none of
    // the bank's working routes.
    let catalogue = http
        .json("GET", "/api/v1/items", Some(&partner_user), None)
        .await;
    assert_eq!(catalogue.status, 200, "{:?}", catalogue.body);
    assert!(
        catalogue.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|item| item["visible_to_partners"] == true)
    );
    for path in ["/api/v1/requests", "/api/v1/inventory", "/api/v1/dashboard"] {
        let answer = http.json("GET", path, Some(&partner_user), None).await;
        assert_eq!(
            answer.status, 403,
            "partner user on {path}: {:?}",
            answer.body
        );
    }
    // Nothing of bank A changed.
    let still = http
        .json("GET", &format!("/api/v1/items/{item}"), Some(&bank_a), None)
        .await;
    assert_eq!(still.body["name"], "A Item");
    let request_state = http
        .json(
            "GET",
            &format!("/api/v1/requests/{request}"),
            Some(&bank_a),
            None,
        )
        .await;
    assert_eq!(request_state.body["status"], "pending");
    let distribution_state = http
        .json(
            "GET",
            &format!("/api/v1/distributions/{distribution}"),
            Some(&bank_a),
            None,
        )
        .await;
    assert_eq!(distribution_state.body["state"], "scheduled");
    stack.stop().await;
}
