//! The seed "Getting Started — Partner Management": distribute to an uninvited partner, import
//! once, invite and approve in one step, partner groups limit what a partner may request, and
//! one login working as the bank and as its proxy partner. All four parts behind the gateway.

use essentials_integration_tests::cycle::tomorrow;
use essentials_integration_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Answer, Http, Stack, accept};
use serde_json::{Value, json};

async fn send(http: &Http, method: &str, path: &str, token: &str, body: Value) -> Answer {
    http.json(method, path, Some(token), Some(body)).await
}

fn id(answer: &Answer) -> String {
    assert!(answer.status < 300, "{} {:?}", answer.status, answer.body);
    answer.body["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getting_started_with_partners() {
    let stack = Stack::start(&[
        &essentials_partner::SPEC,
        &essentials_inventory::SPEC,
        &essentials_request::SPEC,
    ])
    .await;
    let http = stack.http();
    let root = http.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let bank = send(
        &http,
        "POST",
        "/api/v1/organizations",
        &root,
        json!({"name": "Starter Bank", "email": "info@starter.test", "admin_email": "admin@starter.test"}),
    )
    .await;
    assert_eq!(bank.status, 201, "{:?}", bank.body);
    let admin = accept(&stack, "admin@starter.test").await;

    let diapers_category = id(&send(
        &http,
        "POST",
        "/api/v1/item_categories",
        &admin,
        json!({"name": "Diapers"}),
    )
    .await);
    let period_category = id(&send(
        &http,
        "POST",
        "/api/v1/item_categories",
        &admin,
        json!({"name": "Period"}),
    )
    .await);
    let diapers = id(&send(
        &http,
        "POST",
        "/api/v1/items",
        &admin,
        json!({"name": "Starter Diapers", "item_category_id": diapers_category}),
    )
    .await);
    let pads = id(&send(
        &http,
        "POST",
        "/api/v1/items",
        &admin,
        json!({"name": "Starter Pads", "item_category_id": period_category}),
    )
    .await);
    let location = id(&send(
        &http,
        "POST",
        "/api/v1/storage_locations",
        &admin,
        json!({"name": "Starter Hall", "address": "2 Main"}),
    )
    .await);
    let donation = send(
        &http,
        "POST",
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location, "line_items": [{"item_id": diapers, "quantity": 50}, {"item_id": pads, "quantity": 50}]}),
    )
    .await;
    assert_eq!(donation.status, 201, "{:?}", donation.body);

    // 1–2. A partner in the system without an invitation still receives distributions.
    let uninvited = id(&send(
        &http,
        "POST",
        "/api/v1/partners",
        &admin,
        json!({"name": "Walk-in Pantry", "email": "walkin@starter.test"}),
    )
    .await);
    let distribution = send(
        &http,
        "POST",
        "/api/v1/distributions",
        &admin,
        json!({
            "partner_id": uninvited,
            "storage_location_id": location,
            "issued_at": tomorrow(),
            "delivery_method": "delivery",
            "line_items": [{"item_id": diapers, "quantity": 5}],
        }),
    )
    .await;
    assert_eq!(distribution.status, 201, "{:?}", distribution.body);
    let partner = http
        .json(
            "GET",
            &format!("/api/v1/partners/{uninvited}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(partner.body["status"], "uninvited");

    // 3. Import once: a second import is refused, the first one's rows landed as uninvited.
    let csv = b"name,email\nImported One,one@starter.test\nImported Two,two@starter.test\n";
    let imported = http
        .send(
            "POST",
            "/api/v1/partners/import",
            Some(&admin),
            "text/csv",
            csv,
            &[],
        )
        .await;
    assert_eq!(imported.body["imported"], 2, "{:?}", imported.body);
    let again = http
        .send(
            "POST",
            "/api/v1/partners/import",
            Some(&admin),
            "text/csv",
            csv,
            &[],
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["error"]["reason"], "PARTNERS_ALREADY_IMPORTED");

    // 4. Invite and approve in one step: the partner may request at once.
    let quick = id(&send(
        &http,
        "POST",
        "/api/v1/partners",
        &admin,
        json!({"name": "Quick Start", "email": "quick@starter.test"}),
    )
    .await);
    let approved = send(
        &http,
        "POST",
        &format!("/api/v1/partners/{quick}/invite_and_approve"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(approved.body["status"], "approved");
    let quick_user = accept(&stack, "quick@starter.test").await;
    let request = send(
        &http,
        "POST",
        "/api/v1/partner/requests",
        &quick_user,
        json!({"items": [{"item_id": pads, "quantity": 3}]}),
    )
    .await;
    assert_eq!(request.status, 201, "{:?}", request.body);

    // 6. A partner group limits the items its partners may request.
    let group = id(&send(
        &http,
        "POST",
        "/api/v1/partner_groups",
        &admin,
        json!({"name": "Diaper grant", "item_category_ids": [diapers_category]}),
    )
    .await);
    let grouped = id(&send(
        &http,
        "POST",
        "/api/v1/partners",
        &admin,
        json!({"name": "Grant Partner", "email": "grant@starter.test", "partner_group_id": group}),
    )
    .await);
    send(
        &http,
        "POST",
        &format!("/api/v1/partners/{grouped}/invite_and_approve"),
        &admin,
        json!({}),
    )
    .await;
    let grant_user = accept(&stack, "grant@starter.test").await;
    let requestable = http
        .json(
            "GET",
            "/api/v1/partner/requestable_items",
            Some(&grant_user),
            None,
        )
        .await;
    let names: Vec<&str> = requestable.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["name"].as_str())
        .collect();
    assert!(
        names.contains(&"Starter Diapers") && !names.contains(&"Starter Pads"),
        "{names:?}"
    );
    let outside = send(
        &http,
        "POST",
        "/api/v1/partner/requests",
        &grant_user,
        json!({"items": [{"item_id": pads, "quantity": 1}]}),
    )
    .await;
    assert_eq!(outside.status, 400, "{:?}", outside.body);
    assert_eq!(
        outside.body["error"]["field_violations"][0]["field"],
        "items[0].item_id"
    );
    let inside = send(
        &http,
        "POST",
        "/api/v1/partner/requests",
        &grant_user,
        json!({"items": [{"item_id": diapers, "quantity": 1}]}),
    )
    .await;
    assert_eq!(inside.status, 201, "{:?}", inside.body);

    // 5. The bank's own login also acts as its proxy partner.
    let proxy = id(&send(
        &http,
        "POST",
        "/api/v1/partners",
        &admin,
        json!({"name": "Direct Service", "email": "admin@starter.test"}),
    )
    .await);
    send(
        &http,
        "POST",
        &format!("/api/v1/partners/{proxy}/invite_and_approve"),
        &admin,
        json!({}),
    )
    .await;
    let me = http.json("GET", "/api/v1/me", Some(&admin), None).await;
    let partner_role = me.body["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|role| role["kind"] == "partner")
        .expect("the partner role on the same login")
        .clone();
    let switched = send(
        &http,
        "POST",
        "/api/v1/sessions/switch",
        &admin,
        json!({"role_id": partner_role["id"]}),
    )
    .await;
    let as_partner = switched.body["token"].as_str().expect("token").to_owned();
    let own_request = send(
        &http,
        "POST",
        "/api/v1/partner/requests",
        &as_partner,
        json!({"items": [{"item_id": pads, "quantity": 2}]}),
    )
    .await;
    assert_eq!(own_request.status, 201, "{:?}", own_request.body);
    assert_eq!(own_request.body["partner_id"], proxy.as_str());
    let bank_role = me.body["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|role| role["kind"] == "org_admin")
        .expect("the bank role")
        .clone();
    let back = send(
        &http,
        "POST",
        "/api/v1/sessions/switch",
        &as_partner,
        json!({"role_id": bank_role["id"]}),
    )
    .await;
    let as_bank = back.body["token"].as_str().expect("token").to_owned();
    let requests = http
        .json(
            "GET",
            &format!("/api/v1/requests?partner_id={proxy}"),
            Some(&as_bank),
            None,
        )
        .await;
    assert_eq!(
        requests.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        requests.body
    );
    stack.stop().await;
}
