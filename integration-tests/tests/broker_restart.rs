//! RabbitMQ itself stopped mid-flow (`rabbitmqctl stop_app`) and started again (`start_app`):
//! the API keeps working, the events wait in the outboxes, and once the broker is back every
//! event is delivered and every e-mail sent exactly once. This stops the machine's real broker,
//! so it is the only test of its binary (Cargo runs test binaries one after another).

use std::process::Command;

use essentials_integration_tests::Stack;
use essentials_integration_tests::cycle::{
    self, DEADLINE, accept_mailed_invitation, mailed_bank, on_hand, post, wait_for_subject,
    wait_outstanding,
};
use essentials_runtime::smtp_sink::SmtpSink;
use essentials_runtime::testing::wait_until;
use serde_json::json;

fn rabbitmqctl(command: &str) {
    let status = Command::new("rabbitmqctl")
        .arg(command)
        .status()
        .unwrap_or_else(|error| panic!("rabbitmqctl {command}: {error}"));
    assert!(status.success(), "rabbitmqctl {command}: {status}");
}

/// Starts the broker's application again however the test ends, so that a failure here does
/// not leave the machine without RabbitMQ.
struct BrokerStopped;

impl BrokerStopped {
    fn stop() -> Self {
        rabbitmqctl("stop_app");
        Self
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").status();
        let _ = Command::new("rabbitmqctl")
            .args(["await_startup", "--timeout", "60"])
            .status();
    }
}

async fn pending_events(stack: &Stack, part: &str) -> i64 {
    let pool = essentials_runtime::db::pool(&stack.settings, part).expect("pool");
    let pending = essentials_runtime::bus::pending_count(&pool)
        .await
        .unwrap_or(-1);
    pool.close().await;
    pending
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stopped_and_started_mid_flow_delivers_every_event_once() {
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
    let admin = mailed_bank(&http, &sink, "Broker Bank", "admin@broker.test").await;
    let item = post(
        &http,
        "/api/v1/items",
        &admin,
        json!({"name": "Broker Pads"}),
    )
    .await;
    let item_id = item.body["id"].as_str().expect("id").to_owned();
    let location = post(
        &http,
        "/api/v1/storage_locations",
        &admin,
        json!({"name": "Broker Hall", "address": "3 Main"}),
    )
    .await;
    let location_id = location.body["id"].as_str().expect("id").to_owned();
    post(
        &http,
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location_id, "line_items": [{"item_id": item_id, "quantity": 40}]}),
    )
    .await;
    let partner = post(
        &http,
        "/api/v1/partners",
        &admin,
        json!({"name": "Broker Partner", "email": "partner@broker.test", "send_reminders": true}),
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
    let partner_user = accept_mailed_invitation(&http, &sink, "partner@broker.test").await;
    let mails_before = sink.messages_to("partner@broker.test").len();

    // The broker stops. Requests, fulfilment and a distribution still work; their events wait.
    let broker = BrokerStopped::stop();
    let request = post(
        &http,
        "/api/v1/partner/requests",
        &partner_user,
        json!({"items": [{"item_id": item_id, "quantity": 6}]}),
    )
    .await;
    let request_id = request.body["id"].as_str().expect("id").to_owned();
    let fulfil = post(
        &http,
        &format!("/api/v1/requests/{request_id}/fulfill"),
        &admin,
        json!({}),
    )
    .await;
    let draft = fulfil.body["distribution_draft"].clone();
    post(
        &http,
        "/api/v1/distributions",
        &admin,
        json!({
            "partner_id": partner_id,
            "request_id": request_id,
            "storage_location_id": location_id,
            "issued_at": draft["issued_at"],
            "delivery_method": "pick_up",
            "line_items": [{"item_id": item_id, "quantity": 6}],
        }),
    )
    .await;
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 34);
    let second = post(
        &http,
        "/api/v1/partners",
        &admin,
        json!({"name": "Broker Late", "email": "late@broker.test"}),
    )
    .await;
    let second_id = second.body["id"].as_str().expect("id").to_owned();
    post(
        &http,
        &format!("/api/v1/partners/{second_id}/invite"),
        &admin,
        json!({}),
    )
    .await;
    for part in ["request", "inventory", "partner"] {
        let pending = pending_events(&stack, part).await;
        assert!(pending > 0, "{part}'s events wait in its outbox: {pending}");
    }
    assert_eq!(
        sink.messages_to("partner@broker.test").len(),
        mails_before,
        "nothing sent while the broker is down"
    );

    // The broker starts again: everything arrives, once.
    drop(broker);
    wait_for_subject(
        &sink,
        "partner@broker.test",
        "Broker Bank - Requests Confirmation",
    )
    .await;
    wait_for_subject(&sink, "partner@broker.test", "Your Distribution from").await;
    sink.wait_for_to("late@broker.test", 1, DEADLINE).await;
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
    wait_outstanding(&http, &admin, &request_id, false).await;
    for part in ["partner", "request", "inventory", "notification"] {
        wait_until(DEADLINE, "every outbox to drain", || async {
            pending_events(&stack, part).await == 0
        })
        .await;
    }
    cycle::assert_no_duplicate_emails(&sink);
    assert_eq!(
        sink.messages_to("partner@broker.test").len(),
        mails_before + 2,
        "the confirmation and the distribution, nothing more"
    );
    stack.stop().await;
    sink.stop().await;
}
