//! Partner requests through the gateway (API.md § Partner portal, § Requests and distributions),
//! from the partner's submission to the distribution that fulfils it, with the real partner,
//! inventory and request parts, PostgreSQL and RabbitMQ.

use std::time::Duration;

use essentials_integration_tests::{Http, Stack, accept, bank};
use essentials_runtime::testing::wait_until;
use serde_json::{Value, json};

/// A partner invited (and approved when `approve`), with its user signed in: (partner id, token).
async fn partner(
    stack: &Stack,
    admin: &str,
    name: &str,
    email: &str,
    approve: bool,
) -> (String, String) {
    let http = stack.http();
    let created = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(admin),
            Some(json!({"name": name, "email": email})),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let verb = if approve {
        "invite_and_approve"
    } else {
        "invite"
    };
    let invited = http
        .json(
            "POST",
            &format!("/api/v1/partners/{id}/{verb}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(invited.status, 200, "{:?}", invited.body);
    (id, accept(stack, email).await)
}

async fn post(
    http: &Http,
    path: &str,
    token: &str,
    body: Value,
) -> essentials_integration_tests::Answer {
    http.json("POST", path, Some(token), Some(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_request_is_fulfilled_by_its_distribution_through_the_api() {
    let stack = Stack::start(&[
        &essentials_partner::SPEC,
        &essentials_inventory::SPEC,
        &essentials_request::SPEC,
    ])
    .await;
    let http = stack.http();
    let admin = bank(&stack, "Http Request Bank", "admin@http-request.test").await;
    let other_admin = bank(&stack, "Http Other Bank", "admin@http-other.test").await;

    // Catalogue and stock.
    let item = post(
        &http,
        "/api/v1/items",
        &admin,
        json!({"name": "Http Diapers"}),
    )
    .await;
    assert_eq!(item.status, 201, "{:?}", item.body);
    let item_id = item.body["id"].as_str().expect("id").to_owned();
    let hidden = post(
        &http,
        "/api/v1/items",
        &admin,
        json!({"name": "Http Hidden", "visible_to_partners": false}),
    )
    .await;
    assert_eq!(hidden.status, 201, "{:?}", hidden.body);
    let location = post(
        &http,
        "/api/v1/storage_locations",
        &admin,
        json!({"name": "Main Warehouse", "address": "1 Main St"}),
    )
    .await;
    assert_eq!(location.status, 201, "{:?}", location.body);
    let location_id = location.body["id"].as_str().expect("id").to_owned();
    let donation = post(
        &http,
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location_id, "line_items": [{"item_id": item_id, "quantity": 100}]}),
    )
    .await;
    assert_eq!(donation.status, 201, "{:?}", donation.body);

    // A partner still waiting for approval is refused with the reason.
    let (_, waiting) = partner(&stack, &admin, "Http Waiting", "waiting@http.test", false).await;
    let refused = post(
        &http,
        "/api/v1/partner/requests",
        &waiting,
        json!({"items": [{"item_id": item_id, "quantity": 5}]}),
    )
    .await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["reason"], "PARTNER_NOT_APPROVED");

    let (partner_id, agency) =
        partner(&stack, &admin, "Http Agency", "agency@http.test", true).await;
    let requestable = http
        .json(
            "GET",
            "/api/v1/partner/requestable_items",
            Some(&agency),
            None,
        )
        .await;
    assert_eq!(requestable.status, 200, "{:?}", requestable.body);
    let names: Vec<&str> = requestable.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["name"].as_str())
        .collect();
    assert!(names.contains(&"Http Diapers"), "{names:?}");
    assert!(!names.contains(&"Http Hidden"), "{names:?}");

    // Not requestable: 400 naming the line; a bad body: 400, never 500.
    let hidden_id = hidden.body["id"].as_str().expect("id");
    let invalid = post(
        &http,
        "/api/v1/partner/requests",
        &agency,
        json!({"items": [{"item_id": hidden_id, "quantity": 1}]}),
    )
    .await;
    assert_eq!(invalid.status, 400, "{:?}", invalid.body);
    assert_eq!(
        invalid.body["error"]["field_violations"][0]["field"],
        "items[0].item_id"
    );
    let malformed = post(
        &http,
        "/api/v1/partner/requests",
        &agency,
        json!({"items": [{"item_id": item_id, "quantity": "many"}]}),
    )
    .await;
    assert_eq!(malformed.status, 400, "{:?}", malformed.body);

    // Created once for one Idempotency-Key.
    let body = json!({"items": [{"item_id": item_id, "quantity": 10}, {"item_id": item_id, "quantity": 2}], "comments": "Thanks!"})
        .to_string();
    let headers = [("Idempotency-Key", "http-request-1")];
    let created = http
        .send(
            "POST",
            "/api/v1/partner/requests",
            Some(&agency),
            "application/json",
            body.as_bytes(),
            &headers,
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let retried = http
        .send(
            "POST",
            "/api/v1/partner/requests",
            Some(&agency),
            "application/json",
            body.as_bytes(),
            &headers,
        )
        .await;
    assert_eq!(retried.body["id"], created.body["id"]);
    let request_id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(created.body["status"], "pending");
    assert_eq!(created.body["partner_id"], partner_id.as_str());
    assert_eq!(created.body["items"][0]["quantity"], 12);
    assert_eq!(created.body["items"][0]["item_name"], "Http Diapers");
    assert_eq!(created.body["comments"], "Thanks!");
    assert!(created.body["distribution_id"].is_null());
    let own = http
        .json(
            "GET",
            &format!("/api/v1/partner/requests/{request_id}"),
            Some(&agency),
            None,
        )
        .await;
    assert_eq!(own.status, 200, "{:?}", own.body);

    // A second request, to cancel; the bank lists both, another bank sees neither.
    let to_cancel = post(
        &http,
        "/api/v1/partner/requests",
        &agency,
        json!({"comments": "Any wipes?"}),
    )
    .await;
    assert_eq!(to_cancel.status, 201, "{:?}", to_cancel.body);
    let cancel_id = to_cancel.body["id"].as_str().expect("id").to_owned();
    let listed = http
        .json(
            "GET",
            &format!("/api/v1/requests?status=pending&partner_id={partner_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body["items"].as_array().expect("items").len(), 2);
    let hidden_from_b = http
        .json(
            "GET",
            &format!("/api/v1/requests/{request_id}"),
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(hidden_from_b.status, 404);
    let cancel_by_b = post(
        &http,
        &format!("/api/v1/requests/{cancel_id}/cancel"),
        &other_admin,
        json!({"reason": "not yours"}),
    )
    .await;
    assert_eq!(cancel_by_b.status, 404);

    // Fulfil: started, with the draft the bank completes into a distribution.
    let fulfilled = post(
        &http,
        &format!("/api/v1/requests/{request_id}/fulfill"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(fulfilled.status, 200, "{:?}", fulfilled.body);
    assert_eq!(fulfilled.body["request"]["status"], "started");
    let draft = &fulfilled.body["distribution_draft"];
    assert_eq!(draft["partner_id"], partner_id.as_str());
    assert_eq!(draft["request_id"], request_id.as_str());
    assert_eq!(draft["delivery_method"], "pick_up");
    assert_eq!(draft["comment"], "Thanks!");
    assert_eq!(draft["line_items"][0]["item_id"], item_id.as_str());
    assert_eq!(draft["line_items"][0]["quantity"], 12);
    assert!(draft["issued_at"].is_string());
    // Bad values are named as the body names them, every one at once, and nothing is saved.
    let refused = post(
        &http,
        "/api/v1/distributions",
        &admin,
        json!({
            "partner_id": draft["partner_id"],
            "request_id": draft["request_id"],
            "storage_location_id": location_id,
            "issued_at": "2099-01-01T10:00:00Z",
            "delivery_method": "pick_up",
            "line_items": [{"item_id": item_id, "quantity": 0}],
        }),
    )
    .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    let fields: Vec<&str> = refused.body["error"]["field_violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|violation| violation["field"].as_str())
        .collect();
    assert!(fields.contains(&"issued_at"), "{fields:?}");
    assert!(fields.contains(&"line_items[0].quantity"), "{fields:?}");
    let distribution = post(
        &http,
        "/api/v1/distributions",
        &admin,
        json!({
            "partner_id": draft["partner_id"],
            "request_id": draft["request_id"],
            "storage_location_id": location_id,
            "issued_at": draft["issued_at"],
            "delivery_method": draft["delivery_method"],
            "comment": draft["comment"],
            "line_items": draft["line_items"],
        }),
    )
    .await;
    assert_eq!(distribution.status, 201, "{:?}", distribution.body);
    let distribution_id = distribution.body["id"].as_str().expect("id").to_owned();
    wait_until(
        Duration::from_secs(60),
        "the request to be fulfilled",
        || async {
            let answer = http
                .json(
                    "GET",
                    &format!("/api/v1/requests/{request_id}"),
                    Some(&admin),
                    None,
                )
                .await;
            answer.body["status"] == "fulfilled"
                && answer.body["distribution_id"] == distribution_id.as_str()
        },
    )
    .await;
    let again = post(
        &http,
        &format!("/api/v1/requests/{request_id}/fulfill"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.body["error"]["reason"], "REQUEST_NOT_FULFILLABLE");

    // Cancel with a reason; cancelled is terminal.
    let cancelled = post(
        &http,
        &format!("/api/v1/requests/{cancel_id}/cancel"),
        &admin,
        json!({"reason": "We have no wipes this month"}),
    )
    .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(
        cancelled.body["cancel_reason"],
        "We have no wipes this month"
    );
    let twice = post(
        &http,
        &format!("/api/v1/requests/{cancel_id}/cancel"),
        &admin,
        json!({"reason": "again"}),
    )
    .await;
    assert_eq!(twice.status, 409, "{:?}", twice.body);
    assert_eq!(twice.body["error"]["reason"], "REQUEST_NOT_CANCELLABLE");
    stack.stop().await;
}
