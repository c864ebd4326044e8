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

/// How many events the partner part has written so far: a refused call adds none.
async fn outbox_len(stack: &Stack) -> i64 {
    let pool = essentials_runtime::db::pool(&stack.settings, "partner").expect("pool");
    let count = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .expect("outbox");
    pool.close().await;
    count
}

/// The descriptions of an error answer's field violations.
fn violation_texts(body: &Value) -> Vec<String> {
    body["error"]["field_violations"]
        .as_array()
        .map(|violations| {
            violations
                .iter()
                .map(|violation| {
                    format!(
                        "{}: {}",
                        violation["field"].as_str().unwrap_or_default(),
                        violation["description"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
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
    // A's partner has a user who has not accepted yet: B must not reach them either.
    let invited = http
        .json(
            "POST",
            &format!("/api/v1/partners/{id}/invite"),
            Some(&bank_a),
            None,
        )
        .await;
    assert_eq!(invited.status, 200, "{:?}", invited.body);
    let pending_token = invitation_token(&stack.settings, "p@alpha.test").await;
    let users = http
        .json(
            "GET",
            &format!("/api/v1/partners/{id}/users"),
            Some(&bank_a),
            None,
        )
        .await;
    let user_id = users.body["items"][0]["id"]
        .as_str()
        .expect("user")
        .to_owned();
    let profile_before = http
        .json(
            "GET",
            &format!("/api/v1/partners/{id}/profile"),
            Some(&bank_a),
            None,
        )
        .await;
    let events_before = outbox_len(&stack).await;
    let user_routes: Vec<(&str, String, Option<Value>)> = vec![
        (
            "PUT",
            format!("/api/v1/partners/{id}/profile"),
            Some(json!({
                "agency_information": {"name": "Taken over"},
                "partner_settings": {"enable_quantity_based_requests": true}
            })),
        ),
        ("GET", format!("/api/v1/partners/{id}/users"), None),
        (
            "POST",
            format!("/api/v1/partners/{id}/users"),
            Some(json!({"email": "intruder@beta.test", "name": "Intruder"})),
        ),
        (
            "DELETE",
            format!("/api/v1/partners/{id}/users/{user_id}"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/partners/{id}/users/{user_id}/resend_invitation"),
            None,
        ),
    ];
    for (method, path, body) in user_routes {
        let answer = http.json(method, &path, Some(&bank_b), body).await;
        assert_eq!(answer.status, 404, "{method} {path}: {:?}", answer.body);
    }
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
    assert_eq!(still.body["status"], "invited");
    assert_eq!(
        outbox_len(&stack).await,
        events_before,
        "bank B's attempts wrote nothing"
    );
    let profile_after = http
        .json(
            "GET",
            &format!("/api/v1/partners/{id}/profile"),
            Some(&bank_a),
            None,
        )
        .await;
    assert_eq!(
        profile_after.body, profile_before.body,
        "the profile is A's"
    );
    let users_after = http
        .json(
            "GET",
            &format!("/api/v1/partners/{id}/users"),
            Some(&bank_a),
            None,
        )
        .await;
    assert_eq!(users_after.body, users.body, "the same users");
    // B's resend did not void the link A's partner user holds.
    let accepted = http
        .json(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": pending_token, "password": PASSWORD})),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_user_only_ever_sees_its_own_partner() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Portal Bank", "admin@portal.test").await;
    let mut partners = Vec::new();
    for (name, email) in [
        ("Own", "own@portal.test"),
        ("Neighbour", "next@portal.test"),
    ] {
        let created = http
            .json(
                "POST",
                "/api/v1/partners",
                Some(&admin),
                Some(json!({"name": name, "email": email})),
            )
            .await;
        let id = created.body["id"].as_str().expect("id").to_owned();
        http.json(
            "POST",
            &format!("/api/v1/partners/{id}/invite"),
            Some(&admin),
            None,
        )
        .await;
        partners.push(id);
    }
    let (own, neighbour) = (partners[0].clone(), partners[1].clone());
    let token = invitation_token(&stack.settings, "own@portal.test").await;
    let accepted = http
        .json(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": token, "password": PASSWORD})),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    let user = login(&http, "own@portal.test", PASSWORD).await;
    let neighbour_profile = http
        .json(
            "GET",
            &format!("/api/v1/partners/{neighbour}/profile"),
            Some(&admin),
            None,
        )
        .await;

    let portal = http.json("GET", "/api/v1/partner", Some(&user), None).await;
    assert_eq!(portal.body["id"], own.as_str());
    let saved = http
        .json(
            "PUT",
            "/api/v1/partner/profile",
            Some(&user),
            Some(json!({
                "agency_information": {"name": "Own Agency"},
                "partner_settings": {"enable_quantity_based_requests": true}
            })),
        )
        .await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    let own_profile = http
        .json("GET", "/api/v1/partner/profile", Some(&user), None)
        .await;
    assert_eq!(own_profile.body["agency_information"]["name"], "Own Agency");
    // The neighbour's routes answer as if it did not exist, and nothing of it changes.
    for (method, path, body) in [
        ("GET", format!("/api/v1/partners/{neighbour}"), None),
        ("GET", format!("/api/v1/partners/{neighbour}/profile"), None),
        (
            "PUT",
            format!("/api/v1/partners/{neighbour}/profile"),
            Some(json!({
                "agency_information": {"name": "Taken over"},
                "partner_settings": {"enable_quantity_based_requests": true}
            })),
        ),
        ("GET", format!("/api/v1/partners/{neighbour}/users"), None),
        (
            "POST",
            format!("/api/v1/partners/{neighbour}/users"),
            Some(json!({"email": "mole@portal.test"})),
        ),
    ] {
        let answer = http.json(method, &path, Some(&user), body).await;
        assert_eq!(answer.status, 404, "{method} {path}: {:?}", answer.body);
    }
    let listed = http
        .json("GET", "/api/v1/partners", Some(&user), None)
        .await;
    assert_eq!(listed.status, 403, "bank staff only");
    let unchanged = http
        .json(
            "GET",
            &format!("/api/v1/partners/{neighbour}/profile"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(unchanged.body, neighbour_profile.body);
    let neighbour_users = http
        .json(
            "GET",
            &format!("/api/v1/partners/{neighbour}/users"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        neighbour_users.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        neighbour_users.body
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_no_file_and_bad_headers_and_reports_each_skipped_row() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Import Errors Bank", "admin@imp-errors.test").await;
    let import = |body: &'static [u8]| {
        http.send(
            "POST",
            "/api/v1/partners/import",
            Some(&admin),
            "text/csv",
            body,
            // Sent even with an empty body, as a browser posting an empty file would.
            &[("Content-Type", "text/csv")],
        )
    };
    let no_file = import(b"").await;
    assert_eq!(no_file.status, 400, "{:?}", no_file.body);
    assert!(
        violation_texts(&no_file.body)
            .iter()
            .any(|text| text.contains("No file was attached!")),
        "{:?}",
        no_file.body
    );
    for bad_headers in [
        &b"partner,mail\nAcme,acme@x.test\n"[..],
        &b"name\nAcme\n"[..],
        &b"name,email,phone\nAcme,acme@x.test,1\n"[..],
    ] {
        let answer = http
            .send(
                "POST",
                "/api/v1/partners/import",
                Some(&admin),
                "text/csv",
                bad_headers,
                &[],
            )
            .await;
        assert_eq!(answer.status, 400, "{:?}", answer.body);
        assert!(
            violation_texts(&answer.body)
                .iter()
                .any(|text| text.contains("Check headers in file!")),
            "{:?}",
            answer.body
        );
    }
    // Nothing landed from a file of bad rows: the one import is still there.
    let all_bad = import(b"name,email\nNo Mail,not-an-email\n").await;
    assert_eq!(all_bad.status, 200, "{:?}", all_bad.body);
    assert_eq!(all_bad.body["imported"], 0);
    assert_eq!(all_bad.body["skipped"][0]["row"], 2);
    assert!(
        all_bad.body["skipped"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("email")),
        "{:?}",
        all_bad.body
    );
    let imported = import(
        b"name,email\nTwin,twin@imp-errors.test\nTwin,twin2@imp-errors.test\nOther,TWIN@imp-errors.test\nSolo,solo@imp-errors.test\n",
    )
    .await;
    assert_eq!(imported.status, 200, "{:?}", imported.body);
    assert_eq!(imported.body["imported"], 2);
    let skipped: Vec<(i64, &str)> = imported.body["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|row| {
            (
                row["row"].as_i64().unwrap_or_default(),
                row["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        vec![(3, "Twin"), (4, "Other")],
        "the duplicate name and the duplicate e-mail inside the file"
    );
    let messages = imported.body["skipped"].to_string();
    assert!(messages.contains("name"), "{messages}");
    assert!(messages.contains("e-mail"), "{messages}");
    let again = import(b"name,email\nLate,late@imp-errors.test\n").await;
    assert_eq!(again.status, 409);
    assert_eq!(reason(&again.body), "PARTNERS_ALREADY_IMPORTED");
    let listed = http
        .json("GET", "/api/v1/partners", Some(&admin), None)
        .await;
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|partner| partner["name"].as_str())
        .collect();
    assert_eq!(names, vec!["Solo", "Twin"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_below_zero_is_refused_naming_quota() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Quota Http Bank", "admin@quota-http.test").await;
    let negative = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "Minus", "email": "minus@quota.test", "quota": -1})),
        )
        .await;
    assert_eq!(negative.status, 400, "{:?}", negative.body);
    assert_eq!(
        negative.body["error"]["field_violations"][0]["field"],
        "quota"
    );
    let listed = http
        .json("GET", "/api/v1/partners", Some(&admin), None)
        .await;
    assert_eq!(listed.body["items"], json!([]), "nothing was created");
    let zero = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "Zero", "email": "zero@quota.test", "quota": 0})),
        )
        .await;
    assert_eq!(zero.status, 201, "{:?}", zero.body);
    assert_eq!(zero.body["quota"], 0);
    let id = zero.body["id"].as_str().expect("id").to_owned();
    let lowered = http
        .json(
            "PATCH",
            &format!("/api/v1/partners/{id}"),
            Some(&admin),
            Some(json!({"quota": -3})),
        )
        .await;
    assert_eq!(lowered.status, 400, "{:?}", lowered.body);
    assert_eq!(
        lowered.body["error"]["field_violations"][0]["field"],
        "quota"
    );
    let still = http
        .json("GET", &format!("/api/v1/partners/{id}"), Some(&admin), None)
        .await;
    assert_eq!(still.body["quota"], 0);
    stack.stop().await;
}
