//! The gateway's dashboard routes against the running notification part: GET /dashboard,
//! GET /emails and the server-sent events of GET /dashboard/stream.

mod common;

use std::time::Duration;

use common::Part;
use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1::PartnerStatus;
use essentials_runtime::CancellationToken;
use essentials_runtime::auth::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(1);

async fn start_gateway(part: &Part) -> (std::net::SocketAddr, CancellationToken) {
    let mut settings = part.settings.clone();
    settings.notification.url = format!("http://{}", part.address);
    let upstreams = essentials_gateway::Upstreams::from_settings(&settings).expect("upstreams");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let address = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    tokio::spawn(essentials_gateway::serve(
        std::sync::Arc::new(settings),
        upstreams,
        listener,
        shutdown.clone(),
    ));
    (address, shutdown)
}

/// Opens a GET and returns the connection after the request is written.
async fn get(address: std::net::SocketAddr, path: &str, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    stream
}

async fn get_body(
    address: std::net::SocketAddr,
    path: &str,
    token: &str,
) -> (String, serde_json::Value) {
    let mut stream = get(address, path, token).await;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    // Small JSON bodies come with Content-Length (no chunking).
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// Reads the SSE stream until `needle` appears (or `within` passes).
async fn read_until(
    stream: &mut TcpStream,
    seen: &mut String,
    needle: &str,
    within: Duration,
) -> bool {
    let outcome = tokio::time::timeout(within, async {
        let mut buffer = [0_u8; 4096];
        while !seen.contains(needle) {
            let read = stream.read(&mut buffer).await.expect("read");
            assert!(read > 0, "the stream ended; got {seen}");
            seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
    })
    .await;
    outcome.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_serves_the_dashboard_its_stream_and_the_email_log() {
    let part = Part::start().await;
    let (gateway, gateway_shutdown) = start_gateway(&part).await;
    let token = part.token(Role::OrgUser);

    let (status, body) = get_body(gateway, "/api/v1/dashboard", &token).await;
    assert_eq!(status, "200");
    assert_eq!(body["outstanding_requests"], serde_json::json!([]));
    assert_eq!(body["upcoming_distributions_count"], 0);
    let (status, _) = get_body(gateway, "/api/v1/dashboard", "not-a-token").await;
    assert_eq!(status, "401");

    let mut stream = get(gateway, "/api/v1/dashboard/stream", &token).await;
    let mut seen = String::new();
    assert!(
        read_until(
            &mut stream,
            &mut seen,
            "event: dashboard",
            Duration::from_secs(10)
        )
        .await
    );
    assert!(seen.contains("text/event-stream"), "{seen}");

    let partner_id = Uuid::now_v7().to_string();
    let submitted = part.event(&events::PartnerApprovalRequested {
        partner: Some(events::PartnerRef {
            partner_id: partner_id.clone(),
            name: "Little Ones".into(),
            email: "review@little.test".into(),
            status: PartnerStatus::AwaitingReview as i32,
            send_reminders: false,
        }),
        bank: Some(events::BankRef {
            organization_id: part.organization_id.to_string(),
            name: "North Diaper Bank".into(),
            email: "bank@north.test".into(),
        }),
        primary_contact_name: "Pat".into(),
        ..events::PartnerApprovalRequested::default()
    });
    part.publish(&submitted).await;
    assert!(
        read_until(&mut stream, &mut seen, &partner_id, WITHIN).await,
        "the SSE client saw the new partner approval within {WITHIN:?}: {seen}"
    );
    drop(stream);

    let (status, body) = get_body(gateway, "/api/v1/dashboard", &token).await;
    assert_eq!(status, "200");
    assert_eq!(body["partner_approvals"][0]["partner_id"], partner_id);
    assert_eq!(body["partner_approvals"][0]["primary_contact_name"], "Pat");

    // The approval request e-mailed the bank; the log shows it.
    part.wait_outbox_of_mail_empty().await;
    part.sink.wait_for(1, common::DEADLINE).await;
    let (status, body) = get_body(
        gateway,
        "/api/v1/emails?to=bank@north.test&event_type=partner.approval_requested",
        &token,
    )
    .await;
    assert_eq!(status, "200", "{body}");
    assert_eq!(body["items"][0]["to"], "bank@north.test");
    assert_eq!(body["items"][0]["status"], "sent");
    assert_eq!(
        body["items"][0]["subject"],
        "[Action Required] Approval requested for Little Ones"
    );
    assert!(body["items"][0]["sent_at"].is_string());
    let (status, body) = get_body(gateway, "/api/v1/emails?status=lost", &token).await;
    assert_eq!(status, "400");
    assert_eq!(body["error"]["field_violations"][0]["field"], "status");

    gateway_shutdown.cancel();
    part.stop().await;
}
