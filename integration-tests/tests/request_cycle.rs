//! The seed "The Request/Distribution Cycle", every step, with all four parts behind the
//! gateway, RabbitMQ between them and a real SMTP listener.

use std::time::Duration;

use essentials_integration_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Answer, Http, Stack};
use essentials_runtime::smtp_sink::SmtpSink;
use essentials_runtime::testing::wait_until;
use serde_json::{Value, json};

const PASSWORD: &str = "a good password!";
const DEADLINE: Duration = Duration::from_secs(60);

async fn login(http: &Http, email: &str) -> String {
    let password = if email == ADMIN_EMAIL {
        ADMIN_PASSWORD
    } else {
        PASSWORD
    };
    let answer = http
        .json(
            "POST",
            "/api/v1/sessions",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.body["token"].as_str().expect("token").to_owned()
}

/// Accepts the invitation e-mailed to `email` (the link in the mail) and signs in.
async fn accept_mailed_invitation(http: &Http, sink: &SmtpSink, email: &str) -> String {
    let mut body = String::new();
    wait_until(DEADLINE, "an e-mail with the acceptance link", || {
        let found = sink
            .messages_to(email)
            .iter()
            .filter_map(|mail| mail.text_body())
            .find(|text| text.contains("token="));
        let found_some = found.is_some();
        if let Some(text) = found {
            body = text;
        }
        async move { found_some }
    })
    .await;
    let start = body.find("token=").expect("an acceptance link") + "token=".len();
    let token: String = body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let accepted = http
        .json(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": token, "password": PASSWORD})),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    login(http, email).await
}

async fn post(http: &Http, path: &str, token: &str, body: Value) -> Answer {
    let answer = http.json("POST", path, Some(token), Some(body)).await;
    assert!(
        answer.status < 300,
        "POST {path}: {} {:?}",
        answer.status,
        answer.body
    );
    answer
}

async fn on_hand(http: &Http, admin: &str, item: &str, location: &str) -> i64 {
    let answer = http
        .json(
            "GET",
            &format!("/api/v1/inventory?storage_location_id={location}&item_id={item}"),
            Some(admin),
            None,
        )
        .await;
    answer.body["items"][0]["quantity"].as_i64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_to_distribution_cycle() {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let stack = Stack::start_with(
        &[
            &essentials_partner::SPEC,
            &essentials_inventory::SPEC,
            &essentials_request::SPEC,
            &essentials_notification::SPEC,
        ],
        |settings| settings.smtp.url = Some(sink.url()),
    )
    .await;
    let http = stack.http();
    let root = login(&http, ADMIN_EMAIL).await;
    post(
        &http,
        "/api/v1/organizations",
        &root,
        json!({"name": "Cycle Bank", "email": "info@cycle.test", "admin_email": "admin@cycle.test"}),
    )
    .await;
    let admin = accept_mailed_invitation(&http, &sink, "admin@cycle.test").await;

    // Stock to distribute.
    let item = post(
        &http,
        "/api/v1/items",
        &admin,
        json!({"name": "Cycle Diapers"}),
    )
    .await;
    let item_id = item.body["id"].as_str().expect("id").to_owned();
    let location = post(
        &http,
        "/api/v1/storage_locations",
        &admin,
        json!({"name": "Cycle Warehouse", "address": "1 Main"}),
    )
    .await;
    let location_id = location.body["id"].as_str().expect("id").to_owned();
    post(
        &http,
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location_id, "line_items": [{"item_id": item_id, "quantity": 100}]}),
    )
    .await;

    // An approved partner that takes distribution e-mails.
    let partner = post(
        &http,
        "/api/v1/partners",
        &admin,
        json!({"name": "Cycle Partner", "email": "cycle@partner.test", "send_reminders": true}),
    )
    .await;
    let partner_id = partner.body["id"].as_str().expect("id").to_owned();
    post(
        &http,
        &format!("/api/v1/partners/{partner_id}/invite_and_approve"),
        &admin,
        json!({}),
    )
    .await;
    let partner_user = accept_mailed_invitation(&http, &sink, "cycle@partner.test").await;

    // 1. The partner saves a request; 2. it is e-mailed a confirmation.
    let request = post(
        &http,
        "/api/v1/partner/requests",
        &partner_user,
        json!({"items": [{"item_id": item_id, "quantity": 10}], "comments": "for the winter"}),
    )
    .await;
    let request_id = request.body["id"].as_str().expect("id").to_owned();
    let confirmations = sink.wait_for_to("cycle@partner.test", 3, DEADLINE).await;
    assert!(
        confirmations.iter().any(|mail| mail
            .text_body()
            .unwrap_or_default()
            .contains("Cycle Diapers")),
        "a confirmation listing the items"
    );

    // 3. It shows on the dashboard under Outstanding Requests and in the request list.
    wait_until(DEADLINE, "the request on the dashboard", || async {
        let dashboard = http
            .json("GET", "/api/v1/dashboard", Some(&admin), None)
            .await;
        dashboard.body["outstanding_requests"]
            .as_array()
            .is_some_and(|requests| {
                requests
                    .iter()
                    .any(|r| r["request_id"] == request_id.as_str())
            })
    })
    .await;
    rebuild_after_a_lost_projection(&stack, &http, &admin).await;
    let listed = http
        .json("GET", "/api/v1/requests?status=pending", Some(&admin), None)
        .await;
    assert!(
        listed.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|r| r["id"] == request_id.as_str())
    );

    // 4–5. Fulfill marks it started and pre-fills a distribution.
    let fulfil = post(
        &http,
        &format!("/api/v1/requests/{request_id}/fulfill"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(fulfil.body["request"]["status"], "started");
    let draft = fulfil.body["distribution_draft"].clone();
    assert_eq!(draft["line_items"][0]["quantity"], 10);

    // 6–7. The bank adjusts and saves: stock falls, the partner is e-mailed with the receipt.
    let distribution = post(
        &http,
        "/api/v1/distributions",
        &admin,
        json!({
            "partner_id": partner_id,
            "request_id": request_id,
            "storage_location_id": location_id,
            "issued_at": draft["issued_at"],
            "delivery_method": "pick_up",
            "comment": "adjusted",
            "line_items": [{"item_id": item_id, "quantity": 8}],
        }),
    )
    .await;
    let distribution_id = distribution.body["id"].as_str().expect("id").to_owned();
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 92);
    let mails = sink.wait_for_to("cycle@partner.test", 4, DEADLINE).await;
    let distribution_mail = mails
        .iter()
        .find(|mail| {
            mail.subject()
                .unwrap_or_default()
                .contains("Your Distribution")
        })
        .expect("the distribution e-mail");
    assert!(
        distribution_mail
            .attachment_names()
            .iter()
            .any(|name| name.ends_with(".pdf")),
        "with the receipt attached"
    );
    wait_until(DEADLINE, "the request to be fulfilled", || async {
        let answer = http
            .json(
                "GET",
                &format!("/api/v1/requests/{request_id}"),
                Some(&admin),
                None,
            )
            .await;
        answer.body["status"] == "fulfilled"
    })
    .await;
    // ... and it is among the partner's upcoming distributions.
    let upcoming = http
        .json(
            "GET",
            "/api/v1/partner/distributions?upcoming=true",
            Some(&partner_user),
            None,
        )
        .await;
    assert!(
        upcoming.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|d| d["id"] == distribution_id.as_str()),
        "{:?}",
        upcoming.body
    );

    // An edit re-adjusts the stock by the difference.
    let edited = http
        .json(
            "PATCH",
            &format!("/api/v1/distributions/{distribution_id}"),
            Some(&admin),
            Some(json!({"line_items": [{"item_id": item_id, "quantity": 12}]})),
        )
        .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 88);

    // 9. The bank marks it complete; it leaves the outstanding list for good.
    let completed = post(
        &http,
        &format!("/api/v1/distributions/{distribution_id}/complete"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(completed.body["state"], "complete");
    wait_until(DEADLINE, "the request to leave the dashboard", || async {
        let dashboard = http
            .json("GET", "/api/v1/dashboard", Some(&admin), None)
            .await;
        dashboard.body["outstanding_requests"]
            .as_array()
            .is_some_and(|requests| {
                requests
                    .iter()
                    .all(|r| r["request_id"] != request_id.as_str())
            })
    })
    .await;

    stack.stop().await;
    sink.stop().await;
}

/// Wipes the bank's dashboard projection (a lost projection), checks that it is gone, rebuilds it
/// through the API and checks it is what it was.
async fn rebuild_after_a_lost_projection(stack: &Stack, http: &Http, admin: &str) {
    let before = http
        .json("GET", "/api/v1/dashboard", Some(admin), None)
        .await;
    let organization = http
        .json("GET", "/api/v1/organization", Some(admin), None)
        .await;
    let organization_id = organization.body["id"]
        .as_str()
        .expect("the bank's id")
        .to_owned();
    let projection = essentials_runtime::db::pool(&stack.settings, "notification").expect("pool");
    for table in [
        "dashboard_request",
        "dashboard_partner",
        "dashboard_stock",
        "distribution",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE organization_id = $1::uuid"
        )))
        .bind(&organization_id)
        .execute(&projection)
        .await
        .expect("wipe");
    }
    projection.close().await;
    let wiped = http
        .json("GET", "/api/v1/dashboard", Some(admin), None)
        .await;
    assert_eq!(
        wiped.body["outstanding_requests"],
        json!([]),
        "the projection is gone"
    );
    let rebuilt = post(http, "/api/v1/dashboard/rebuild", admin, json!({})).await;
    assert_eq!(rebuilt.status, 200, "{:?}", rebuilt.body);
    // The projection keeps a request's time from its event, the request part from its row: the
    // two differ by the milliseconds between them.
    let without_times = |answer: &Answer| {
        let mut requests = answer.body["outstanding_requests"].clone();
        for request in requests.as_array_mut().into_iter().flatten() {
            assert!(request["created_at"].is_string(), "{request}");
            request["created_at"] = Value::Null;
        }
        requests
    };
    assert_eq!(without_times(&rebuilt), without_times(&before));
    for section in [
        "outstanding_requests_count",
        "partner_approvals",
        "low_inventory",
        "upcoming_distributions_count",
    ] {
        assert_eq!(rebuilt.body[section], before.body[section], "{section}");
    }
}
