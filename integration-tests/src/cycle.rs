//! The seed "The Request/Distribution Cycle", every step, through the public API of any shape of
//! the suite (parts in this process, `essentials all`, or the parts as separate processes with
//! replicas): the same steps must hold in each.

use std::collections::HashMap;
use std::time::Duration;

use essentials_runtime::Settings;
use essentials_runtime::smtp_sink::SmtpSink;
use essentials_runtime::testing::wait_until;
use serde_json::{Value, json};

use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, Answer, Http, PASSWORD};

pub const DEADLINE: Duration = Duration::from_secs(60);

/// A running suite behind a gateway, whatever its shape.
pub trait Suite {
    fn http(&self) -> Http;
    fn settings(&self) -> &Settings;
}

/// What the cycle made, for checks after it.
pub struct Cycle {
    pub bank: StockedBank,
    pub request_id: String,
    pub distribution_id: String,
}

pub async fn login(http: &Http, email: &str) -> String {
    let password = if email == ADMIN_EMAIL {
        ADMIN_PASSWORD
    } else {
        PASSWORD
    };
    http.login(email, password).await
}

/// Accepts the invitation e-mailed to `email` (the link in the mail) and signs in.
pub async fn accept_mailed_invitation(http: &Http, sink: &SmtpSink, email: &str) -> String {
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
    let token = acceptance_token(&body);
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

/// The token of the acceptance link (`…?token=…`) in an e-mail's text.
pub fn acceptance_token(text: &str) -> String {
    let start = text.find("token=").expect("an acceptance link") + "token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// POSTs and insists on a success.
pub async fn post(http: &Http, path: &str, token: &str, body: Value) -> Answer {
    let answer = http.json("POST", path, Some(token), Some(body)).await;
    assert!(
        answer.status < 300,
        "POST {path}: {} {:?}",
        answer.status,
        answer.body
    );
    answer
}

/// The `id` of a created row.
pub fn id(answer: &Answer) -> String {
    answer.body["id"].as_str().expect("an id").to_owned()
}

/// This time tomorrow (RFC 3339): an `issued_at` for a distribution still to come.
pub fn tomorrow() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a date")
}

pub async fn on_hand(http: &Http, admin: &str, item: &str, location: &str) -> i64 {
    let answer = http
        .json(
            "GET",
            &format!("/api/v1/inventory?storage_location_id={location}&item_id={item}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["items"][0]["quantity"].as_i64().unwrap_or(0)
}

/// A bank made by the bootstrap super admin, whose admin accepted the e-mailed invitation; the
/// admin's token.
pub async fn mailed_bank(http: &Http, sink: &SmtpSink, name: &str, admin_email: &str) -> String {
    let root = login(http, ADMIN_EMAIL).await;
    post(
        http,
        "/api/v1/organizations",
        &root,
        json!({"name": name, "email": "info@bank.test", "admin_email": admin_email}),
    )
    .await;
    accept_mailed_invitation(http, sink, admin_email).await
}

/// A bank with stock of one item in one location and an approved partner that takes
/// distribution e-mails, whose user accepted its e-mailed invitation.
pub struct StockedBank {
    /// `"{tag} Bank"`, as it appears in e-mail subjects.
    pub name: String,
    pub admin: String,
    pub item_id: String,
    pub location_id: String,
    pub partner_id: String,
    pub partner_email: String,
    pub partner_user: String,
}

/// Makes a [`StockedBank`] (`tag` names it: "Crash" → "Crash Bank", `partner@crash.test`).
pub async fn stocked_bank(http: &Http, sink: &SmtpSink, tag: &str, stock: i64) -> StockedBank {
    let domain = format!("{}.test", tag.to_lowercase().replace(' ', "-"));
    let name = format!("{tag} Bank");
    let admin = mailed_bank(http, sink, &name, &format!("admin@{domain}")).await;
    let item_id = id(&post(
        http,
        "/api/v1/items",
        &admin,
        json!({"name": format!("{tag} Diapers")}),
    )
    .await);
    let location_id = id(&post(
        http,
        "/api/v1/storage_locations",
        &admin,
        json!({"name": format!("{tag} Warehouse"), "address": "1 Main"}),
    )
    .await);
    post(
        http,
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location_id, "line_items": [{"item_id": item_id, "quantity": stock}]}),
    )
    .await;
    let partner_email = format!("partner@{domain}");
    let partner_id = id(&post(
        http,
        "/api/v1/partners",
        &admin,
        json!({"name": format!("{tag} Partner"), "email": partner_email, "send_reminders": true}),
    )
    .await);
    post(
        http,
        &format!("/api/v1/partners/{partner_id}/invite_and_approve"),
        &admin,
        json!({}),
    )
    .await;
    let partner_user = accept_mailed_invitation(http, sink, &partner_email).await;
    StockedBank {
        name,
        admin,
        item_id,
        location_id,
        partner_id,
        partner_email,
        partner_user,
    }
}

impl StockedBank {
    /// The partner requests `quantity` of the item; the request's id.
    pub async fn request(&self, http: &Http, quantity: i64) -> String {
        id(&post(
            http,
            "/api/v1/partner/requests",
            &self.partner_user,
            json!({"items": [{"item_id": self.item_id, "quantity": quantity}]}),
        )
        .await)
    }

    /// Fulfils the request: the pre-filled draft saved as it is; the distribution's id.
    pub async fn fulfil(&self, http: &Http, request_id: &str) -> String {
        let fulfil = post(
            http,
            &format!("/api/v1/requests/{request_id}/fulfill"),
            &self.admin,
            json!({}),
        )
        .await;
        let draft = &fulfil.body["distribution_draft"];
        let lines: Vec<Value> = draft["line_items"]
            .as_array()
            .expect("the draft's lines")
            .iter()
            .map(|line| json!({"item_id": line["item_id"], "quantity": line["quantity"]}))
            .collect();
        id(&post(
            http,
            "/api/v1/distributions",
            &self.admin,
            json!({
                "partner_id": self.partner_id,
                "request_id": request_id,
                "storage_location_id": self.location_id,
                "issued_at": draft["issued_at"],
                "delivery_method": "pick_up",
                "line_items": lines,
            }),
        )
        .await)
    }

    /// A second partner of the bank, invited; its id.
    pub async fn invite_partner(&self, http: &Http, name: &str, email: &str) -> String {
        let partner = id(&post(
            http,
            "/api/v1/partners",
            &self.admin,
            json!({"name": name, "email": email}),
        )
        .await);
        post(
            http,
            &format!("/api/v1/partners/{partner}/invite"),
            &self.admin,
            json!({}),
        )
        .await;
        partner
    }

    pub async fn on_hand(&self, http: &Http) -> i64 {
        on_hand(http, &self.admin, &self.item_id, &self.location_id).await
    }

    /// Waits until the request has `status`.
    pub async fn wait_request(&self, http: &Http, request_id: &str, status: &str) {
        wait_until(DEADLINE, "the request's status", || async {
            let answer = http
                .json(
                    "GET",
                    &format!("/api/v1/requests/{request_id}"),
                    Some(&self.admin),
                    None,
                )
                .await;
            answer.body["status"] == status
        })
        .await;
    }
}

/// Waits until the bank's dashboard lists (or no longer lists) `request_id` as outstanding.
pub async fn wait_outstanding(http: &Http, admin: &str, request_id: &str, listed: bool) {
    wait_until(DEADLINE, "the dashboard's outstanding requests", || async {
        let dashboard = http
            .json("GET", "/api/v1/dashboard", Some(admin), None)
            .await;
        dashboard.body["outstanding_requests"]
            .as_array()
            .is_some_and(|requests| {
                requests.iter().any(|r| r["request_id"] == request_id) == listed
            })
    })
    .await;
}

/// Every step of the seed, `tag` keeping its names apart from other cycles in the same suite.
pub async fn request_distribution_cycle(suite: &impl Suite, sink: &SmtpSink, tag: &str) -> Cycle {
    let http = suite.http();
    let bank = stocked_bank(&http, sink, &format!("Cycle {tag}"), 100).await;
    let StockedBank {
        admin,
        item_id,
        location_id,
        partner_id,
        partner_email,
        partner_user,
        ..
    } = &bank;
    let item_name = format!("Cycle {tag} Diapers");
    let before_request = sink.messages_to(partner_email).len();

    // 1. The partner saves a request; 2. it is e-mailed a confirmation listing the items.
    let request_id = id(&post(
        &http,
        "/api/v1/partner/requests",
        partner_user,
        json!({"items": [{"item_id": item_id, "quantity": 10}], "comments": "for the winter"}),
    )
    .await);
    let mails = sink
        .wait_for_to(partner_email, before_request + 1, DEADLINE)
        .await;
    assert!(
        mails
            .iter()
            .any(|mail| mail.text_body().unwrap_or_default().contains(&item_name)),
        "a confirmation listing the items"
    );

    // 3. It shows on the dashboard under Outstanding Requests and in the request list.
    wait_outstanding(&http, admin, &request_id, true).await;
    let listed = http
        .json("GET", "/api/v1/requests?status=pending", Some(admin), None)
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
        admin,
        json!({}),
    )
    .await;
    assert_eq!(fulfil.body["request"]["status"], "started");
    let draft = fulfil.body["distribution_draft"].clone();
    assert_eq!(draft["line_items"][0]["quantity"], 10);
    assert_eq!(draft["partner_id"], partner_id.as_str());

    // 6–7. The bank adjusts and saves: stock falls, the partner is e-mailed with the receipt.
    let distribution_id = id(&post(
        &http,
        "/api/v1/distributions",
        admin,
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
    .await);
    assert_eq!(on_hand(&http, admin, item_id, location_id).await, 92);
    let distribution_mail = wait_for_subject(sink, partner_email, "Your Distribution from").await;
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
                Some(admin),
                None,
            )
            .await;
        answer.body["status"] == "fulfilled"
    })
    .await;
    // 8. ... and it is among the partner's upcoming distributions.
    let upcoming = http
        .json(
            "GET",
            "/api/v1/partner/distributions?upcoming=true",
            Some(partner_user),
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

    // An edit re-adjusts the stock by the difference, and a changed quantity is e-mailed
    // (DOMAIN §6.3) with the change listed.
    let edited = http
        .json(
            "PATCH",
            &format!("/api/v1/distributions/{distribution_id}"),
            Some(admin),
            Some(json!({"line_items": [{"item_id": item_id, "quantity": 12}]})),
        )
        .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert_eq!(on_hand(&http, admin, item_id, location_id).await, 88);
    let changed = wait_for_subject(sink, partner_email, "Your Distribution Has Changed").await;
    let text = changed.text_body().unwrap_or_default();
    assert!(text.contains(&format!("{item_name}: 8 → 12")), "{text}");

    // The receipt prints the distribution as it is now, for the bank and for its partner.
    for (who, token) in [("the bank", admin), ("the partner", partner_user)] {
        let receipt = http
            .send(
                "GET",
                &format!("/api/v1/distributions/{distribution_id}/receipt"),
                Some(token),
                "",
                b"",
                &[],
            )
            .await;
        assert_eq!(receipt.status, 200, "{who}: {:?}", receipt.body);
        assert_eq!(receipt.header("content-type"), Some("application/pdf"));
        let pdf = receipt.body.as_str().unwrap_or_default();
        assert!(pdf.starts_with("%PDF-"), "{who}: not a PDF");
        assert!(
            pdf.contains(&format!("Distribution receipt {distribution_id}")),
            "{who}: {pdf}"
        );
        let total = format!("{:<44}{:>10}", "Total", 12);
        assert!(pdf.contains(&total), "{who}: the edited total: {pdf}");
    }

    // 9. The bank marks it complete; it leaves the outstanding list for good.
    let completed = post(
        &http,
        &format!("/api/v1/distributions/{distribution_id}/complete"),
        admin,
        json!({}),
    )
    .await;
    assert_eq!(completed.body["state"], "complete");
    wait_outstanding(&http, admin, &request_id, false).await;

    Cycle {
        request_id,
        distribution_id,
        bank,
    }
}

/// The first e-mail to `to` whose subject starts with `subject`, waiting for it.
pub async fn wait_for_subject(
    sink: &SmtpSink,
    to: &str,
    subject: &str,
) -> essentials_runtime::smtp_sink::ReceivedMail {
    let mut found = None;
    wait_until(DEADLINE, "an e-mail with that subject", || {
        found = sink
            .messages_to(to)
            .into_iter()
            .find(|mail| mail.subject().unwrap_or_default().starts_with(subject));
        let done = found.is_some();
        async move { done }
    })
    .await;
    found.expect("found")
}

/// Every e-mail the sink got went out once: no recipient got the same subject twice. (The
/// cycle's e-mails all differ in subject, so a second copy is a duplicate delivery.)
pub fn assert_no_duplicate_emails(sink: &SmtpSink) {
    let mut seen: HashMap<(Vec<String>, String), usize> = HashMap::new();
    for mail in sink.messages() {
        *seen
            .entry((mail.to(), mail.subject().unwrap_or_default()))
            .or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "e-mails sent more than once: {twice:?}");
}
