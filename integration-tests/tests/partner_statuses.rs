//! The seed "Partner statuses" end to end: the partner and notification parts behind the gateway,
//! with RabbitMQ between them and a real SMTP listener. Every e-mail is read from the listener,
//! and the invitation link in it is the one the partner follows.

use std::time::Duration;

use essentials_integration_tests::cycle::{DEADLINE, acceptance_token, tomorrow};
use essentials_integration_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, Stack};
use essentials_runtime::smtp_sink::{ReceivedMail, SmtpSink};
use essentials_runtime::testing::wait_until;
use serde_json::json;

const MAIL_WAIT: Duration = Duration::from_secs(30);

/// Waits for the next e-mail to `to` (after `seen` earlier ones) and returns it.
async fn next_mail(sink: &SmtpSink, to: &str, seen: usize) -> ReceivedMail {
    sink.wait_for_to(to, seen + 1, MAIL_WAIT).await[seen].clone()
}

/// The invitation token in an e-mail's acceptance link.
fn token_in(mail: &ReceivedMail) -> String {
    acceptance_token(&mail.text_body().expect("a text body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_partner_status_and_what_it_sends() {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let stack = Stack::start_with(
        &[&essentials_partner::SPEC, &essentials_notification::SPEC],
        |settings| settings.smtp.url = Some(sink.url()),
    )
    .await;
    let http = stack.http();
    let root = http.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let bank = http
        .json(
            "POST",
            "/api/v1/organizations",
            Some(&root),
            Some(json!({"name": "Seed Bank", "email": "info@seed.test", "admin_email": "admin@seed.test", "admin_name": "Ada"})),
        )
        .await;
    assert_eq!(bank.status, 201, "{:?}", bank.body);
    let invitation = next_mail(&sink, "admin@seed.test", 0).await;
    let accepted = http
        .json(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": token_in(&invitation), "password": PASSWORD})),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    let admin = http.login("admin@seed.test", PASSWORD).await;

    // Uninvited: the bank can keep the partner without inviting it; nobody is e-mailed.
    let partner = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "Little Ones", "email": "hello@littleones.test"})),
        )
        .await;
    assert_eq!(partner.body["status"], "uninvited");
    let id = partner.body["id"].as_str().expect("id").to_owned();

    // Invited: the partner's e-mail gets an invitation with a link to set a password.
    let invited = http
        .json(
            "POST",
            &format!("/api/v1/partners/{id}/invite"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(invited.body["status"], "invited");
    let mail = next_mail(&sink, "hello@littleones.test", 0).await;
    assert!(
        mail.subject().unwrap_or_default().contains("Seed Bank"),
        "{:?}",
        mail.subject()
    );
    let accepted = http
        .json(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": token_in(&mail), "password": PASSWORD})),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    let partner_user = http.login("hello@littleones.test", PASSWORD).await;

    // Awaiting review: the partner fills in its profile and submits; the bank is e-mailed.
    let profile = http
        .json(
            "PUT",
            "/api/v1/partner/profile",
            Some(&partner_user),
            Some(json!({
                "contacts": {"primary_contact_name": "Lia", "primary_contact_email": "lia@littleones.test"},
                "media_information": {"website": "https://littleones.test"},
                "partner_settings": {"enable_quantity_based_requests": true}
            })),
        )
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    let submitted = http
        .json(
            "POST",
            "/api/v1/partner/submit_for_approval",
            Some(&partner_user),
            None,
        )
        .await;
    assert_eq!(submitted.body["status"], "awaiting_review");
    let to_bank = next_mail(&sink, "info@seed.test", 0).await;
    assert!(
        to_bank
            .subject()
            .unwrap_or_default()
            .contains("Approval requested for Little Ones"),
        "{:?}",
        to_bank.subject()
    );

    // Approved: the partner is told.
    let approved = http
        .json(
            "POST",
            &format!("/api/v1/partners/{id}/approve"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(approved.body["status"], "approved");
    let approval = next_mail(&sink, "hello@littleones.test", 1).await;
    assert!(
        approval
            .subject()
            .unwrap_or_default()
            .to_lowercase()
            .contains("approved"),
        "{:?}",
        approval.subject()
    );

    // Recertification required: the partner is asked to update its information.
    let recert = http
        .json(
            "POST",
            &format!("/api/v1/partners/{id}/request_recertification"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(recert.body["status"], "recertification_required");
    let ask = next_mail(&sink, "hello@littleones.test", 2).await;
    assert!(
        ask.subject()
            .unwrap_or_default()
            .contains("Please Update Your Agency Information"),
        "{:?}",
        ask.subject()
    );

    // Deactivated, then reactivated: no e-mail, back to approved.
    http.json(
        "POST",
        &format!("/api/v1/partners/{id}/deactivate"),
        Some(&admin),
        None,
    )
    .await;
    let reactivated = http
        .json(
            "POST",
            &format!("/api/v1/partners/{id}/reactivate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(reactivated.body["status"], "approved");

    // The bank's e-mail log lists what was sent, through the gateway.
    let log = http
        .json(
            "GET",
            "/api/v1/emails?to=hello@littleones.test",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    assert_eq!(
        log.body["items"].as_array().map(Vec::len),
        Some(3),
        "{:?}",
        log.body
    );
    assert_eq!(
        sink.messages_to("hello@littleones.test").len(),
        3,
        "each e-mail once"
    );
    stack.stop().await;
    sink.stop().await;
}

/// The seed's other half: what a partner may do in each status, through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_each_partner_status_allows() {
    use essentials_integration_tests::cycle::{
        accept_mailed_invitation, mailed_bank, on_hand, post,
    };
    let sink = SmtpSink::start().await.expect("smtp listener");
    let stack = Stack::everything(sink.url()).await;
    let http = stack.http();
    let admin = mailed_bank(&http, &sink, "Allow Bank", "admin@allow.test").await;
    let item = post(
        &http,
        "/api/v1/items",
        &admin,
        json!({"name": "Allow Wipes"}),
    )
    .await;
    let item_id = item.body["id"].as_str().expect("id").to_owned();
    let location = post(
        &http,
        "/api/v1/storage_locations",
        &admin,
        json!({"name": "Allow Hall", "address": "5 Main"}),
    )
    .await;
    let location_id = location.body["id"].as_str().expect("id").to_owned();
    post(
        &http,
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location_id, "line_items": [{"item_id": item_id, "quantity": 20}]}),
    )
    .await;
    let partner = post(
        &http,
        "/api/v1/partners",
        &admin,
        json!({"name": "Allow Partner", "email": "partner@allow.test"}),
    )
    .await;
    let id = partner.body["id"].as_str().expect("id").to_owned();
    let distribute = || {
        json!({
            "partner_id": id,
            "storage_location_id": location_id,
            "issued_at": tomorrow(),
            "delivery_method": "pick_up",
            "line_items": [{"item_id": item_id, "quantity": 1}],
        })
    };
    let action = |path: &str| format!("/api/v1/partners/{id}/{path}");
    let request_body = json!({"items": [{"item_id": item_id, "quantity": 1}]});

    // Uninvited: distributions may go to it; nobody can sign in for it.
    assert_eq!(partner.body["status"], "uninvited");
    post(&http, "/api/v1/distributions", &admin, distribute()).await;
    assert_eq!(on_hand(&http, &admin, &item_id, &location_id).await, 19);
    let no_login = http
        .json(
            "POST",
            "/api/v1/sessions",
            None,
            Some(json!({"email": "partner@allow.test", "password": PASSWORD})),
        )
        .await;
    assert_eq!(no_login.status, 401, "{:?}", no_login.body);

    // Invited: the profile, but no requests.
    post(&http, &action("invite"), &admin, json!({})).await;
    let partner_user = accept_mailed_invitation(&http, &sink, "partner@allow.test").await;
    let refused_as = |expected_reason: &'static str| {
        let partner_user = partner_user.clone();
        let request_body = request_body.clone();
        async move {
            let answer = http
                .json(
                    "POST",
                    "/api/v1/partner/requests",
                    Some(&partner_user),
                    Some(request_body),
                )
                .await;
            assert!(
                answer.status == 403 || answer.status == 409,
                "{:?}",
                answer.body
            );
            assert_eq!(answer.body["error"]["reason"], expected_reason);
        }
    };
    let profile = http
        .json("GET", "/api/v1/partner/profile", Some(&partner_user), None)
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    refused_as("PARTNER_NOT_APPROVED").await;
    let filled = http
        .json(
            "PUT",
            "/api/v1/partner/profile",
            Some(&partner_user),
            Some(json!({
                "media_information": {"website": "https://allow.test"},
                "partner_settings": {"enable_quantity_based_requests": true}
            })),
        )
        .await;
    assert_eq!(filled.status, 200, "{:?}", filled.body);

    // Awaiting review: on the bank's dashboard under Partner Approvals; still no requests.
    let submitted = post(
        &http,
        "/api/v1/partner/submit_for_approval",
        &partner_user,
        json!({}),
    )
    .await;
    assert_eq!(submitted.body["status"], "awaiting_review");
    refused_as("PARTNER_NOT_APPROVED").await;
    let awaiting = |listed: bool| {
        let admin = admin.clone();
        let id = id.clone();
        async move {
            wait_until(DEADLINE, "the dashboard's partner approvals", || async {
                let dashboard = http
                    .json("GET", "/api/v1/dashboard", Some(&admin), None)
                    .await;
                dashboard.body["partner_approvals"]
                    .as_array()
                    .is_some_and(|list| {
                        list.iter().any(|p| p["partner_id"] == id.as_str()) == listed
                    })
            })
            .await;
        }
    };
    awaiting(true).await;

    // Approved: requests; it leaves Partner Approvals.
    post(&http, &action("approve"), &admin, json!({})).await;
    post(
        &http,
        "/api/v1/partner/requests",
        &partner_user,
        request_body.clone(),
    )
    .await;
    awaiting(false).await;

    // Recertification required: no requests until it resubmits and is approved again; the
    // profile stays open to it.
    post(&http, &action("request_recertification"), &admin, json!({})).await;
    refused_as("PARTNER_NOT_APPROVED").await;
    let updated = http
        .json(
            "PUT",
            "/api/v1/partner/profile",
            Some(&partner_user),
            Some(json!({
                "media_information": {"website": "https://allow.test/about"},
                "partner_settings": {"enable_quantity_based_requests": true}
            })),
        )
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    post(
        &http,
        "/api/v1/partner/submit_for_approval",
        &partner_user,
        json!({}),
    )
    .await;
    awaiting(true).await;
    post(&http, &action("approve"), &admin, json!({})).await;
    post(
        &http,
        "/api/v1/partner/requests",
        &partner_user,
        request_body.clone(),
    )
    .await;

    // Deactivated: the partner's tokens are revoked (once the parts read the revocation), and
    // signed in again it makes no requests; reactivated: requests again.
    post(&http, &action("deactivate"), &admin, json!({})).await;
    wait_until(
        DEADLINE,
        "the deactivated partner's token revoked",
        || async {
            let answer = http
                .json("GET", "/api/v1/partner/requests", Some(&partner_user), None)
                .await;
            answer.status == 401 && answer.body["error"]["reason"] == "TOKEN_REVOKED"
        },
    )
    .await;
    let partner_user = http.login("partner@allow.test", PASSWORD).await;
    let refused = http
        .json(
            "POST",
            "/api/v1/partner/requests",
            Some(&partner_user),
            Some(request_body.clone()),
        )
        .await;
    assert!(
        refused.status == 403 || refused.status == 409,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.body["error"]["reason"], "PARTNER_DEACTIVATED");
    post(&http, &action("reactivate"), &admin, json!({})).await;
    post(
        &http,
        "/api/v1/partner/requests",
        &partner_user,
        request_body,
    )
    .await;
    let own = http
        .json("GET", "/api/v1/partner/requests", Some(&partner_user), None)
        .await;
    assert_eq!(
        own.body["items"].as_array().map(Vec::len),
        Some(3),
        "{:?}",
        own.body
    );
    stack.stop().await;
    sink.stop().await;
}
