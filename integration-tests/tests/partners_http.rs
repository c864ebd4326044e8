//! The partner part's public HTTP API through the gateway (API.md § Sessions and users,
//! § Partners, § Partner portal), against real PostgreSQL and RabbitMQ.

use essentials_integration_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Http, Stack, invitation_token};
use serde_json::{Value, json};

const PASSWORD: &str = "a good password!";

async fn login(http: &Http, email: &str, password: &str) -> String {
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

/// A bank whose admin has accepted the invitation; returns the admin's token.
async fn bank(stack: &Stack, name: &str, admin_email: &str) -> String {
    let http = stack.http();
    let root = login(&http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = http
        .json(
            "POST",
            "/api/v1/organizations",
            Some(&root),
            Some(json!({"name": name, "email": "info@bank.test", "admin_email": admin_email, "admin_name": "Admin"})),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["name"], name);
    let token = invitation_token(&stack.settings, admin_email).await;
    let accepted = http
        .json(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": token, "password": PASSWORD})),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    let again = http
        .json(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": token, "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        again.status, 410,
        "a used invitation is gone: {:?}",
        again.body
    );
    login(&http, admin_email, PASSWORD).await
}

fn reason(body: &Value) -> &str {
    body["error"]["reason"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_lifecycle_through_the_gateway() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Http Bank", "admin@http-bank.test").await;

    let unauthenticated = http.json("GET", "/api/v1/partners", None, None).await;
    assert_eq!(unauthenticated.status, 401);
    let wrong = http
        .json(
            "POST",
            "/api/v1/sessions",
            None,
            Some(json!({"email": "admin@http-bank.test", "password": "nope nope!"})),
        )
        .await;
    assert_eq!(wrong.status, 401);

    let bad = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "", "email": "nope"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    let fields: Vec<&str> = bad.body["error"]["field_violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|violation| violation["field"].as_str())
        .collect();
    assert_eq!(fields, vec!["name", "email"]);
    let malformed = http
        .send(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            "application/json",
            b"{\"name\":",
            &[],
        )
        .await;
    assert_eq!(malformed.status, 400);
    let wrong_type = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "X", "email": "x@y.test", "quota": "lots"})),
        )
        .await;
    assert_eq!(wrong_type.status, 400);
    assert_eq!(
        wrong_type.body["error"]["field_violations"][0]["field"],
        "quota"
    );

    let created = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "Helping Hands", "email": "Hands@Helping.test", "quota": 100})),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["status"], "uninvited");
    assert_eq!(created.body["email"], "hands@helping.test");
    let id = created.body["id"].as_str().expect("id").to_owned();

    let not_approvable = http
        .json(
            "POST",
            &format!("/api/v1/partners/{id}/approve"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(not_approvable.status, 409);
    assert_eq!(reason(&not_approvable.body), "PARTNER_NOT_APPROVABLE");

    let patched = http
        .json(
            "PATCH",
            &format!("/api/v1/partners/{id}"),
            Some(&admin),
            Some(json!({"notes": "call first"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["notes"], "call first");
    assert_eq!(patched.body["quota"], 100, "fields not sent are kept");

    let invited = http
        .json(
            "POST",
            &format!("/api/v1/partners/{id}/invite"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(invited.status, 200);
    assert_eq!(invited.body["status"], "invited");

    // The partner's user accepts, fills in the profile and submits it.
    let token = invitation_token(&stack.settings, "hands@helping.test").await;
    let accepted = http
        .json(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": token, "password": PASSWORD, "name": "Pat"})),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    let partner_user = login(&http, "hands@helping.test", PASSWORD).await;
    let own = http
        .json("GET", "/api/v1/partner", Some(&partner_user), None)
        .await;
    assert_eq!(own.body["id"], id.as_str());
    let profile = http
        .json(
            "PUT",
            "/api/v1/partner/profile",
            Some(&partner_user),
            Some(json!({
                "agency_information": {"name": "Helping Hands", "agency_type": "food_bank_pantry"},
                "contacts": {"primary_contact_name": "Pat", "primary_contact_email": "pat@helping.test"},
                "media_information": {"no_social_media_presence": true},
                "area_served": [{"county": "Kent", "client_share_percent": 100}],
                "partner_settings": {"enable_quantity_based_requests": true}
            })),
        )
        .await;
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    assert_eq!(
        profile.body["agency_information"]["agency_type"],
        "food_bank_pantry"
    );
    let bad_profile = http
        .json(
            "PUT",
            "/api/v1/partner/profile",
            Some(&partner_user),
            Some(json!({"area_served": [{"county": "Kent", "client_share_percent": 40}]})),
        )
        .await;
    assert_eq!(bad_profile.status, 400, "{:?}", bad_profile.body);
    let submitted = http
        .json(
            "POST",
            "/api/v1/partner/submit_for_approval",
            Some(&partner_user),
            None,
        )
        .await;
    assert_eq!(submitted.status, 200, "{:?}", submitted.body);
    assert_eq!(submitted.body["status"], "awaiting_review");
    let again = http
        .json(
            "POST",
            "/api/v1/partner/submit_for_approval",
            Some(&partner_user),
            None,
        )
        .await;
    assert_eq!(again.status, 409);
    let bank_only = http
        .json("GET", "/api/v1/partners", Some(&partner_user), None)
        .await;
    assert_eq!(bank_only.status, 403);

    let approved = http
        .json(
            "POST",
            &format!("/api/v1/partners/{id}/approve"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(approved.body["status"], "approved");
    let seen_by_bank = http
        .json(
            "GET",
            &format!("/api/v1/partners/{id}/profile"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(seen_by_bank.body["contacts"]["primary_contact_name"], "Pat");

    let listed = http
        .json(
            "GET",
            "/api/v1/partners?status=approved",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    let bad_filter = http
        .json("GET", "/api/v1/partners?status=happy", Some(&admin), None)
        .await;
    assert_eq!(bad_filter.status, 400);
    assert_eq!(
        bad_filter.body["error"]["field_violations"][0]["field"],
        "status"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_bank_gets_404_and_lists_nothing() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let bank_a = bank(&stack, "Bank Alpha", "admin@alpha.test").await;
    let bank_b = bank(&stack, "Bank Beta", "admin@beta.test").await;
    let created = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&bank_a),
            Some(json!({"name": "Alpha Partner", "email": "p@alpha.test"})),
        )
        .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    for (method, path) in [
        ("GET", format!("/api/v1/partners/{id}")),
        ("PATCH", format!("/api/v1/partners/{id}")),
        ("DELETE", format!("/api/v1/partners/{id}")),
        ("POST", format!("/api/v1/partners/{id}/invite")),
        ("POST", format!("/api/v1/partners/{id}/invite_and_approve")),
        ("POST", format!("/api/v1/partners/{id}/approve")),
        (
            "POST",
            format!("/api/v1/partners/{id}/request_recertification"),
        ),
        ("POST", format!("/api/v1/partners/{id}/deactivate")),
        ("POST", format!("/api/v1/partners/{id}/reactivate")),
        ("GET", format!("/api/v1/partners/{id}/profile")),
    ] {
        let body = (method == "PATCH").then(|| json!({"name": "Taken over"}));
        let answer = http.json(method, &path, Some(&bank_b), body).await;
        assert_eq!(answer.status, 404, "{method} {path}: {:?}", answer.body);
    }
    let listed = http
        .json("GET", "/api/v1/partners", Some(&bank_b), None)
        .await;
    assert_eq!(listed.body["items"], json!([]));
    let still = http
        .json(
            "GET",
            &format!("/api/v1/partners/{id}"),
            Some(&bank_a),
            None,
        )
        .await;
    assert_eq!(still.body["name"], "Alpha Partner");
    let garbage_id = http
        .json("GET", "/api/v1/partners/not-a-uuid", Some(&bank_a), None)
        .await;
    assert_eq!(garbage_id.status, 404);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_once_and_switch_roles_through_the_gateway() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Import Http Bank", "admin@imp-http.test").await;
    let csv = b"name,email\nOne,one@imp-http.test\nTwo,two@imp-http.test\nBad,bad-email\nThree,three@imp-http.test\n";
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
    assert_eq!(imported.status, 200, "{:?}", imported.body);
    assert_eq!(imported.body["imported"], 3);
    assert_eq!(imported.body["skipped"][0]["row"], 4);
    assert_eq!(imported.body["skipped"][0]["name"], "Bad");
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
    assert_eq!(reason(&again.body), "PARTNERS_ALREADY_IMPORTED");
    let not_csv = http
        .send(
            "POST",
            "/api/v1/partners/import",
            Some(&admin),
            "application/json",
            b"{}",
            &[],
        )
        .await;
    assert_eq!(not_csv.status, 400);

    // The bank's admin is also its proxy partner's user.
    let proxy = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "Direct", "email": "admin@imp-http.test"})),
        )
        .await;
    let proxy_id = proxy.body["id"].as_str().expect("id").to_owned();
    http.json(
        "POST",
        &format!("/api/v1/partners/{proxy_id}/invite"),
        Some(&admin),
        None,
    )
    .await;
    let me = http.json("GET", "/api/v1/me", Some(&admin), None).await;
    let partner_role = me.body["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|role| role["kind"] == "partner")
        .expect("partner role")
        .clone();
    let switched = http
        .json(
            "POST",
            "/api/v1/sessions/switch",
            Some(&admin),
            Some(json!({"role_id": partner_role["id"]})),
        )
        .await;
    assert_eq!(switched.status, 200, "{:?}", switched.body);
    assert_eq!(switched.body["current_role"]["kind"], "partner");
    let as_partner = switched.body["token"].as_str().expect("token").to_owned();
    let own = http
        .json("GET", "/api/v1/partner", Some(&as_partner), None)
        .await;
    assert_eq!(own.body["id"], proxy_id.as_str());
    let foreign = http
        .json(
            "POST",
            "/api/v1/sessions/switch",
            Some(&admin),
            Some(json!({"role_id": "0190e4a0-0000-7000-8000-000000000000"})),
        )
        .await;
    assert_eq!(foreign.status, 403);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Idem Bank", "admin@idem.test").await;
    let body = json!({"name": "Once Only", "email": "once@idem.test"}).to_string();
    let key = [("Idempotency-Key", "partner-1")];
    let first = http
        .send(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            "application/json",
            body.as_bytes(),
            &key,
        )
        .await;
    let retry = http
        .send(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            "application/json",
            body.as_bytes(),
            &key,
        )
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(retry.status, first.status);
    assert_eq!(retry.body, first.body, "the first answer, byte for byte");
    let listed = http
        .json("GET", "/api/v1/partners", Some(&admin), None)
        .await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    let other = json!({"name": "Someone Else", "email": "else@idem.test"}).to_string();
    let conflict = http
        .send(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            "application/json",
            other.as_bytes(),
            &key,
        )
        .await;
    assert_eq!(conflict.status, 422, "{:?}", conflict.body);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_throttled_per_email_with_retry_after() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let _admin = bank(&stack, "Throttle Bank", "admin@throttle.test").await;
    let attempt = |password: &'static str| {
        http.json(
            "POST",
            "/api/v1/sessions",
            None,
            Some(json!({"email": "admin@throttle.test", "password": password})),
        )
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong password!").await.status, 401);
    }
    let throttled = attempt(PASSWORD).await;
    assert_eq!(
        throttled.status, 429,
        "even the right password waits: {:?}",
        throttled.body
    );
    let retry_after: u64 = throttled
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After");
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    // Unknown e-mails are throttled the same way (no enumeration by the limiter either).
    for _ in 0..5 {
        let answer = http
            .json(
                "POST",
                "/api/v1/sessions",
                None,
                Some(json!({"email": "ghost@throttle.test", "password": "x!"})),
            )
            .await;
        assert_eq!(answer.status, 401);
    }
    let ghost = http
        .json(
            "POST",
            "/api/v1/sessions",
            None,
            Some(json!({"email": "ghost@throttle.test", "password": "x!"})),
        )
        .await;
    assert_eq!(ghost.status, 429);
    // Another account from the same address still signs in.
    let root = http
        .json(
            "POST",
            "/api/v1/sessions",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(root.status, 201);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_the_configured_origins() {
    let stack = Stack::start_with(&[&essentials_partner::SPEC], |settings| {
        settings.gateway.cors_origins = vec!["https://app.bank.test".into()];
    })
    .await;
    let http = stack.http();
    let preflight = |origin: &'static str| async move {
        http.send(
            "OPTIONS",
            "/api/v1/partners",
            None,
            "application/json",
            b"",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "authorization,content-type,idempotency-key",
                ),
            ],
        )
        .await
    };
    let allowed = preflight("https://app.bank.test").await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.bank.test")
    );
    assert!(
        allowed
            .header("access-control-allow-headers")
            .is_some_and(|headers| headers.contains("idempotency-key"))
    );
    let refused = preflight("https://evil.test").await;
    assert_eq!(refused.header("access-control-allow-origin"), None);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_group_categories_are_checked_with_the_inventory_part() {
    let stack = Stack::start(&[&essentials_partner::SPEC, &essentials_inventory::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Category Bank", "admin@category.test").await;
    let other = bank(&stack, "Other Category Bank", "admin@other-category.test").await;
    let category = http
        .json(
            "POST",
            "/api/v1/item_categories",
            Some(&admin),
            Some(json!({"name": "Period supplies"})),
        )
        .await;
    assert_eq!(category.status, 201, "{:?}", category.body);
    let category_id = category.body["id"].as_str().expect("id").to_owned();
    let group = http
        .json(
            "POST",
            "/api/v1/partner_groups",
            Some(&admin),
            Some(json!({"name": "Teens", "item_category_ids": [category_id]})),
        )
        .await;
    assert_eq!(group.status, 201, "{:?}", group.body);
    assert_eq!(group.body["item_category_ids"][0], category_id.as_str());
    // Another bank cannot use this bank's category; an unknown one is named.
    let foreign = http
        .json(
            "POST",
            "/api/v1/partner_groups",
            Some(&other),
            Some(json!({"name": "Borrowed", "item_category_ids": [category_id]})),
        )
        .await;
    assert_eq!(foreign.status, 400, "{:?}", foreign.body);
    assert_eq!(
        foreign.body["error"]["field_violations"][0]["field"],
        "item_category_ids[0]"
    );
    let duplicate = http
        .json(
            "POST",
            "/api/v1/partner_groups",
            Some(&admin),
            Some(json!({"name": "Teens"})),
        )
        .await;
    assert_eq!(duplicate.status, 409);
    stack.stop().await;
}
