//! The seed "The Request/Distribution Cycle", every step, with all four parts in this process
//! behind the gateway, RabbitMQ between them and a real SMTP listener; then a lost dashboard
//! projection rebuilt. (The same cycle runs as processes in `processes.rs`.)

use essentials_integration_tests::cycle::{self, post, wait_outstanding};
use essentials_integration_tests::{Answer, Http, Stack};
use essentials_runtime::smtp_sink::SmtpSink;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_to_distribution_cycle() {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let stack = Stack::everything(sink.url()).await;
    let http = stack.http();
    let done = cycle::request_distribution_cycle(&stack, &sink, "in-process").await;
    cycle::assert_no_duplicate_emails(&sink);

    // A second request waits on the dashboard; the projection is lost and rebuilt.
    let pending = post(
        &http,
        "/api/v1/partner/requests",
        &done.bank.partner_user,
        json!({"items": [{"item_id": done.bank.item_id, "quantity": 3}]}),
    )
    .await;
    let pending_id = pending.body["id"].as_str().expect("id").to_owned();
    wait_outstanding(&http, &done.bank.admin, &pending_id, true).await;
    rebuild_after_a_lost_projection(&stack, &http, &done.bank.admin).await;

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
