//! `Idempotency-Key` on mutating routes beyond creates (API.md: "a retry with the same key and
//! body returns the first answer and changes nothing more"): status verbs, edits, a reclaim and
//! a cancellation, across the partner, inventory and request parts, through the gateway.

use essentials_integration_tests::cycle::id;
use essentials_integration_tests::{Answer, Http, Stack, bank};
use serde_json::{Value, json};

async fn with_key(
    http: &Http,
    method: &str,
    path: &str,
    token: &str,
    key: &str,
    body: Option<Value>,
) -> Answer {
    let bytes = body.map(|value| value.to_string()).unwrap_or_default();
    http.send(
        method,
        path,
        Some(token),
        "application/json",
        bytes.as_bytes(),
        &[("Idempotency-Key", key)],
    )
    .await
}

/// Events of `event_type` the partner part wrote.
async fn partner_events(stack: &Stack, event_type: &str) -> i64 {
    let pool = essentials_runtime::db::pool(&stack.settings, "partner").expect("pool");
    let count = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_state_changes_return_the_first_answer_and_change_nothing_more() {
    let stack = Stack::start(&[
        &essentials_partner::SPEC,
        &essentials_inventory::SPEC,
        &essentials_request::SPEC,
    ])
    .await;
    let http = stack.http();
    let admin = bank(&stack, "Retry Bank", "admin@retry.test").await;

    // Partner part: a create, retried, is answered from the claim its own transaction made.
    let body = json!({"name": "Created Once", "email": "once@retry.test"});
    let created = with_key(
        &http,
        "POST",
        "/api/v1/partners",
        &admin,
        "create-1",
        Some(body.clone()),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let created_again = with_key(
        &http,
        "POST",
        "/api/v1/partners",
        &admin,
        "create-1",
        Some(body),
    )
    .await;
    assert_eq!(created_again.status, 201, "{:?}", created_again.body);
    assert_eq!(created_again.body, created.body, "the first answer");
    assert_eq!(partner_events(&stack, "partner.created").await, 1);
    let other_body = with_key(
        &http,
        "POST",
        "/api/v1/partners",
        &admin,
        "create-1",
        Some(json!({"name": "Someone Else", "email": "else@retry.test"})),
    )
    .await;
    assert_eq!(other_body.status, 422, "{:?}", other_body.body);
    assert_eq!(other_body.body["error"]["reason"], "IDEMPOTENCY_KEY_REUSED");

    // Partner part: approve, retried.
    let partner = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "Retry Agency", "email": "agency@retry.test"})),
        )
        .await;
    assert_eq!(partner.status, 201, "{:?}", partner.body);
    let partner_id = id(&partner);
    let invited = http
        .json(
            "POST",
            &format!("/api/v1/partners/{partner_id}/invite"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(invited.status, 200, "{:?}", invited.body);
    let approve = format!("/api/v1/partners/{partner_id}/approve");
    let first = with_key(&http, "POST", &approve, &admin, "approve-1", None).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["status"], "approved");
    let retry = with_key(&http, "POST", &approve, &admin, "approve-1", None).await;
    assert_eq!(retry.status, first.status);
    assert_eq!(retry.body, first.body, "the first answer, byte for byte");
    assert_eq!(partner_events(&stack, "partner.approved").await, 1);
    // Without the key the same call is a new one, and approving twice is refused.
    let again = http.json("POST", &approve, Some(&admin), None).await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.body["error"]["reason"], "PARTNER_NOT_APPROVABLE");

    // The same key for another partner is another request: 422, and nothing happens.
    let other = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "Other Agency", "email": "other@retry.test"})),
        )
        .await;
    let other_id = id(&other);
    let reused = with_key(
        &http,
        "POST",
        &format!("/api/v1/partners/{other_id}/invite_and_approve"),
        &admin,
        "approve-1",
        None,
    )
    .await;
    // invite_and_approve is its own gRPC method: the key is free there.
    assert_eq!(reused.status, 200, "{:?}", reused.body);
    let conflicting = with_key(
        &http,
        "POST",
        &format!("/api/v1/partners/{partner_id}/deactivate"),
        &admin,
        "deactivate-1",
        None,
    )
    .await;
    assert_eq!(conflicting.status, 200, "{:?}", conflicting.body);
    let conflicting = with_key(
        &http,
        "POST",
        &format!("/api/v1/partners/{other_id}/deactivate"),
        &admin,
        "deactivate-1",
        None,
    )
    .await;
    assert_eq!(conflicting.status, 422, "{:?}", conflicting.body);
    let still = http
        .json(
            "GET",
            &format!("/api/v1/partners/{other_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        still.body["status"], "approved",
        "the refused call changed nothing"
    );

    // An edit, retried: the answer is the first one even after a later change.
    let patch = with_key(
        &http,
        "PATCH",
        "/api/v1/organization",
        &admin,
        "rename-1",
        Some(json!({"name": "Retry Bank East"})),
    )
    .await;
    assert_eq!(patch.status, 200, "{:?}", patch.body);
    let renamed = http
        .json(
            "PATCH",
            "/api/v1/organization",
            Some(&admin),
            Some(json!({"name": "Retry Bank West"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    let replayed = with_key(
        &http,
        "PATCH",
        "/api/v1/organization",
        &admin,
        "rename-1",
        Some(json!({"name": "Retry Bank East"})),
    )
    .await;
    assert_eq!(replayed.body, patch.body);
    let now = http
        .json("GET", "/api/v1/organization", Some(&admin), None)
        .await;
    assert_eq!(
        now.body["name"], "Retry Bank West",
        "the replay changed nothing"
    );

    // Inventory part: a reclaim, retried, returns the stock once.
    let item = http
        .json(
            "POST",
            "/api/v1/items",
            Some(&admin),
            Some(json!({"name": "Retry Wipes"})),
        )
        .await;
    let item_id = id(&item);
    let location = http
        .json(
            "POST",
            "/api/v1/storage_locations",
            Some(&admin),
            Some(json!({"name": "Retry Warehouse", "address": "1 Main St"})),
        )
        .await;
    let location_id = id(&location);
    let donation = http
        .json(
            "POST",
            "/api/v1/donations",
            Some(&admin),
            Some(json!({"storage_location_id": location_id,
                "line_items": [{"item_id": item_id, "quantity": 10}]})),
        )
        .await;
    assert_eq!(donation.status, 201, "{:?}", donation.body);
    let next_week = (time::OffsetDateTime::now_utc() + time::Duration::days(7))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a date");
    let distribution = http
        .json(
            "POST",
            "/api/v1/distributions",
            Some(&admin),
            Some(
                json!({"partner_id": other_id, "storage_location_id": location_id,
                "issued_at": next_week, "delivery_method": "pick_up",
                "line_items": [{"item_id": item_id, "quantity": 4}]}),
            ),
        )
        .await;
    assert_eq!(distribution.status, 201, "{:?}", distribution.body);
    let reclaim = format!("/api/v1/distributions/{}", id(&distribution));
    let reclaimed = with_key(&http, "DELETE", &reclaim, &admin, "reclaim-1", None).await;
    assert_eq!(reclaimed.status, 200, "{:?}", reclaimed.body);
    let retry = with_key(&http, "DELETE", &reclaim, &admin, "reclaim-1", None).await;
    assert_eq!((retry.status, &retry.body), (200, &reclaimed.body));
    let stock = http
        .json(
            "GET",
            &format!("/api/v1/inventory?storage_location_id={location_id}&item_id={item_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(stock.body["items"][0]["quantity"], 10, "{:?}", stock.body);

    // Request part: a cancellation, retried.
    let request = http
        .json(
            "POST",
            "/api/v1/requests",
            Some(&admin),
            Some(json!({"partner_id": other_id, "items": [{"item_id": item_id, "quantity": 2}]})),
        )
        .await;
    assert_eq!(request.status, 201, "{:?}", request.body);
    let cancel = format!("/api/v1/requests/{}/cancel", id(&request));
    let body = json!({"reason": "a duplicate"});
    let cancelled = with_key(
        &http,
        "POST",
        &cancel,
        &admin,
        "cancel-1",
        Some(body.clone()),
    )
    .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    let retry = with_key(&http, "POST", &cancel, &admin, "cancel-1", Some(body)).await;
    assert_eq!((retry.status, &retry.body), (200, &cancelled.body));
    let different = with_key(
        &http,
        "POST",
        &cancel,
        &admin,
        "cancel-1",
        Some(json!({"reason": "changed my mind"})),
    )
    .await;
    assert_eq!(different.status, 422, "{:?}", different.body);
    assert_eq!(different.body["error"]["reason"], "IDEMPOTENCY_KEY_REUSED");

    // Answers that carry tokens or secrets are never stored: a refresh with a key is not kept.
    let refreshed = with_key(
        &http,
        "POST",
        "/api/v1/sessions/refresh",
        &admin,
        "refresh-1",
        None,
    )
    .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    let pool = essentials_runtime::db::pool(&stack.settings, "partner").expect("pool");
    let (stored, auth_stored): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE method LIKE '%AuthService%') FROM idempotency_record",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    pool.close().await;
    assert!(stored > 0, "the partner part stored its answers");
    assert_eq!(auth_stored, 0, "no session token is kept");

    // A service account, retried: one account; its secret is shown once and never stored, so
    // the replay answers the account without it.
    let body = json!({"name": "Warehouse scanner"});
    let created = with_key(
        &http,
        "POST",
        "/api/v1/service_accounts",
        &admin,
        "svc-1",
        Some(body.clone()),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert!(created.body["client_secret"].is_string());
    let again = with_key(
        &http,
        "POST",
        "/api/v1/service_accounts",
        &admin,
        "svc-1",
        Some(body),
    )
    .await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert_eq!(again.body["id"], created.body["id"]);
    assert!(
        again.body.get("client_secret").is_none(),
        "{:?}",
        again.body
    );
    let accounts = http
        .json("GET", "/api/v1/service_accounts", Some(&admin), None)
        .await;
    assert_eq!(accounts.body["items"].as_array().map(Vec::len), Some(1));

    // Keys are the caller's own: another bank's admin with the same key is a new request.
    let stranger = bank(&stack, "Stranger Bank", "admin@stranger.test").await;
    let theirs = with_key(
        &http,
        "POST",
        &cancel,
        &stranger,
        "cancel-1",
        Some(json!({"reason": "a duplicate"})),
    )
    .await;
    assert_eq!(
        theirs.status, 404,
        "not bank A's stored answer: {:?}",
        theirs.body
    );
    stack.stop().await;
}

/// What a crash (or a client gone) between a change's commit and storing its answer leaves: the
/// claim without its answer, long enough ago to count as abandoned. `committed` says whether the
/// change's transaction marked it.
async fn lose_the_answer(stack: &Stack, key: &str, committed: bool) {
    let pool = essentials_runtime::db::pool(&stack.settings, "partner").expect("pool");
    let marked: Option<bool> = sqlx::query_scalar(
        "SELECT committed_at IS NOT NULL FROM idempotency_record WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(&pool)
    .await
    .expect("the claim");
    assert_eq!(
        marked,
        Some(true),
        "the change's transaction marked its claim"
    );
    sqlx::query(
        "UPDATE idempotency_record SET response = NULL,
                created_at = now() - interval '10 minutes',
                committed_at = CASE WHEN $2 THEN committed_at END
          WHERE key = $1",
    )
    .bind(key)
    .bind(committed)
    .execute(&pool)
    .await
    .expect("lose the answer");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_answer_was_lost_is_never_run_again() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let admin = bank(&stack, "Lost Answer Bank", "admin@lost-answer.test").await;
    let partner = id(&with_key(
        &http,
        "POST",
        "/api/v1/partners",
        &admin,
        "lost-create",
        Some(json!({"name": "Lost Answer Partner", "email": "partner@lost-answer.test"})),
    )
    .await);
    let invite = format!("/api/v1/partners/{partner}/invite");
    // Inviting again re-sends the invitation: running a retried invite twice would show.
    let first = with_key(&http, "POST", &invite, &admin, "invite-1", None).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(partner_events(&stack, "partner.invited").await, 1);

    // The change committed, its answer was lost: the retry is told so, and nothing runs again.
    lose_the_answer(&stack, "invite-1", true).await;
    let retried = with_key(&http, "POST", &invite, &admin, "invite-1", None).await;
    assert_eq!(retried.status, 409, "{:?}", retried.body);
    assert_eq!(retried.body["error"]["reason"], "IDEMPOTENCY_ANSWER_LOST");
    assert_eq!(partner_events(&stack, "partner.invited").await, 1);

    // A claim whose change never committed (the process died before) is taken over and run.
    let second = with_key(&http, "POST", &invite, &admin, "invite-2", None).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(partner_events(&stack, "partner.invited").await, 2);
    lose_the_answer(&stack, "invite-2", false).await;
    let taken_over = with_key(&http, "POST", &invite, &admin, "invite-2", None).await;
    assert_eq!(taken_over.status, 200, "{:?}", taken_over.body);
    assert_eq!(partner_events(&stack, "partner.invited").await, 3);
    stack.stop().await;
}
