//! RabbitMQ itself stopped mid-flow (`rabbitmqctl stop_app`) and started again (`start_app`):
//! the API keeps working, the events wait in the outboxes, and once the broker is back every
//! event is delivered and every e-mail sent exactly once. This stops the machine's real broker,
//! so it is the only test of its binary (Cargo runs test binaries one after another).

use std::process::Command;

use essentials_integration_tests::Stack;
use essentials_integration_tests::cycle::{
    self, DEADLINE, stocked_bank, wait_for_subject, wait_outstanding,
};
use essentials_runtime::smtp_sink::SmtpSink;
use essentials_runtime::testing::wait_until;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stopped_and_started_mid_flow_delivers_every_event_once() {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let stack = Stack::everything(sink.url()).await;
    let http = stack.http();
    let bank = stocked_bank(&http, &sink, "Broker", 40).await;
    let mails_before = sink.messages_to(&bank.partner_email).len();

    // The broker stops. Requests, fulfilment and a distribution still work; their events wait.
    let broker = BrokerStopped::stop();
    let request_id = bank.request(&http, 6).await;
    bank.fulfil(&http, &request_id).await;
    assert_eq!(bank.on_hand(&http).await, 34);
    bank.invite_partner(&http, "Broker Late", "late@broker.test")
        .await;
    for part in ["request", "inventory", "partner"] {
        let pending = stack.pending_events(part).await;
        assert!(pending > 0, "{part}'s events wait in its outbox: {pending}");
    }
    assert_eq!(
        sink.messages_to(&bank.partner_email).len(),
        mails_before,
        "nothing sent while the broker is down"
    );

    // The broker starts again: everything arrives, once.
    drop(broker);
    let confirmation = format!("{} - Requests Confirmation", bank.name);
    wait_for_subject(&sink, &bank.partner_email, &confirmation).await;
    wait_for_subject(&sink, &bank.partner_email, "Your Distribution from").await;
    sink.wait_for_to("late@broker.test", 1, DEADLINE).await;
    bank.wait_request(&http, &request_id, "fulfilled").await;
    wait_outstanding(&http, &bank.admin, &request_id, false).await;
    for part in ["partner", "request", "inventory", "notification"] {
        wait_until(DEADLINE, "every outbox to drain", || async {
            stack.pending_events(part).await == 0
        })
        .await;
    }
    cycle::assert_no_duplicate_emails(&sink);
    assert_eq!(
        sink.messages_to(&bank.partner_email).len(),
        mails_before + 2,
        "the confirmation and the distribution, nothing more"
    );
    stack.stop().await;
    sink.stop().await;
}
