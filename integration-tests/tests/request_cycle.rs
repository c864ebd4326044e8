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
    // The rebuild is an admin's action on the notification part's data: it is in the trail.
    let trail = audit_trail(http, admin, 500, "").await;
    let rebuilds: Vec<&Value> = trail
        .iter()
        .filter(|entry| {
            entry["part"] == "notification"
                && entry["method"]
                    .as_str()
                    .is_some_and(|method| method.ends_with("/RebuildDashboard"))
        })
        .collect();
    assert_eq!(rebuilds.len(), 1, "{trail:?}");
}

/// Every entry of the bank's audit trail, newest first, read `page_size` at a time.
async fn audit_trail(http: &Http, token: &str, page_size: u32, filter: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut token_param = String::new();
    loop {
        let page = http
            .json(
                "GET",
                &format!("/api/v1/audit_events?page_size={page_size}{filter}{token_param}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        entries.extend(page.body["items"].as_array().cloned().unwrap_or_default());
        match page.body["next_page_token"].as_str() {
            Some(next) if !next.is_empty() => token_param = format!("&page_token={next}"),
            _ => return entries,
        }
    }
}

/// The entries whose list `field` (`subjects`, `events`) holds `value`.
fn listing<'a>(entries: &'a [Value], field: &str, value: &str) -> Vec<&'a Value> {
    entries
        .iter()
        .filter(|entry| {
            entry[field]
                .as_array()
                .is_some_and(|values| values.iter().any(|one| one == value))
        })
        .collect()
}

fn with_subject<'a>(entries: &'a [Value], subject: &str) -> Vec<&'a Value> {
    listing(entries, "subjects", subject)
}

fn with_event<'a>(entries: &'a [Value], event: &str) -> Vec<&'a Value> {
    listing(entries, "events", event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_names_who_changed_what_through_which_request_once_per_change() {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let stack = Stack::everything(sink.url()).await;
    let http = stack.http();
    let bank = cycle::stocked_bank(&http, &sink, "Audited", 100).await;
    let other = cycle::stocked_bank(&http, &sink, "Unaudited", 10).await;
    let me = |token: String| async move {
        let me = http.json("GET", "/api/v1/me", Some(&token), None).await;
        me.body["user"]["id"].as_str().expect("id").to_owned()
    };
    let admin_id = me(bank.admin.clone()).await;
    let partner_user_id = me(bank.partner_user.clone()).await;

    // A change through the API: its entry carries the id the client got back.
    let body = serde_json::to_vec(&json!({"name": "Audited Wipes"})).expect("json");
    let created = http
        .send(
            "POST",
            "/api/v1/items",
            Some(&bank.admin),
            "application/json",
            &body,
            &[("Idempotency-Key", "audited-wipes")],
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let request_id = created
        .header("x-request-id")
        .expect("a request id")
        .to_owned();
    let item_id = created.body["id"].as_str().expect("id").to_owned();
    // Its retry changes nothing, and records nothing.
    let retried = http
        .send(
            "POST",
            "/api/v1/items",
            Some(&bank.admin),
            "application/json",
            &body,
            &[("Idempotency-Key", "audited-wipes")],
        )
        .await;
    assert!(retried.status < 300, "{:?}", retried.body);
    // A refused change (more than is in stock) leaves no entry: it rolled back with it.
    let refused = http
        .json(
            "POST",
            "/api/v1/distributions",
            Some(&bank.admin),
            Some(
                json!({"partner_id": bank.partner_id, "storage_location_id": bank.location_id,
                        "issued_at": cycle::tomorrow(), "delivery_method": "pick_up",
                        "line_items": [{"item_id": bank.item_id, "quantity": 1000}]}),
            ),
        )
        .await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    // The partner's request, fulfilled by the bank.
    let request = bank.request(&http, 5).await;
    bank.fulfil(&http, &request).await;

    let entries = audit_trail(&http, &bank.admin, 500, "").await;
    let item = with_subject(&entries, &format!("item:{item_id}"));
    assert_eq!(
        item.len(),
        1,
        "one entry for the item, none for its retry: {item:?}"
    );
    assert_eq!(item[0]["request_id"], request_id.as_str());
    assert_eq!(item[0]["actor_id"], admin_id.as_str());
    assert_eq!(item[0]["actor_role"], "org_admin");
    assert_eq!(item[0]["part"], "inventory");
    assert!(
        item[0]["method"]
            .as_str()
            .is_some_and(|method| method.ends_with("CatalogService/CreateItem")),
        "{:?}",
        item[0]
    );
    let requested = with_event(&entries, "request.created");
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert_eq!(requested[0]["actor_id"], partner_user_id.as_str());
    assert_eq!(requested[0]["actor_role"], "partner");
    assert_eq!(requested[0]["part"], "request");
    // One entry per change: the distribution and its stock movement are one call.
    let distributed = with_event(&entries, "distribution.created");
    assert_eq!(
        distributed.len(),
        1,
        "the refused one left none: {distributed:?}"
    );
    assert!(
        distributed[0]["events"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e == "stock.changed")),
        "{:?}",
        distributed[0]
    );
    // An action without a token is in the trail too: the partner user set its password with the
    // e-mailed link.
    let accepted = with_subject(&entries, &format!("invitation_accepted:{partner_user_id}"));
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0]["actor_id"], partner_user_id.as_str());
    assert_eq!(accepted[0]["actor_role"], "user");
    for part in ["partner", "inventory", "request"] {
        assert!(
            entries.iter().any(|entry| entry["part"] == part),
            "the {part} part's changes are in the trail"
        );
    }
    // Newest first, and the same entries page by page as in one page.
    let times: Vec<&str> = entries
        .iter()
        .filter_map(|entry| entry["at"].as_str())
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");
    let paged = audit_trail(&http, &bank.admin, 2, "").await;
    let ids = |list: &[Value]| -> Vec<String> {
        list.iter()
            .filter_map(|entry| entry["id"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(ids(&paged), ids(&entries));
    let by_partner = audit_trail(
        &http,
        &bank.admin,
        500,
        &format!("&actor_id={partner_user_id}"),
    )
    .await;
    assert!(!by_partner.is_empty());
    assert!(
        by_partner
            .iter()
            .all(|entry| entry["actor_id"] == partner_user_id.as_str())
    );

    // Another bank's admin reads only its own; a partner user reads none.
    let theirs = audit_trail(&http, &other.admin, 500, "").await;
    assert!(!theirs.is_empty());
    let ours: std::collections::HashSet<String> = ids(&entries).into_iter().collect();
    assert!(ids(&theirs).iter().all(|id| !ours.contains(id)));
    let as_partner = http
        .json(
            "GET",
            "/api/v1/audit_events",
            Some(&bank.partner_user),
            None,
        )
        .await;
    assert_eq!(as_partner.status, 403, "{:?}", as_partner.body);
    println!(
        "audit trail: {} entries for the bank ({} from the partner user), {} for the other",
        entries.len(),
        by_partner.len(),
        theirs.len()
    );
    stack.stop().await;
    sink.stop().await;
}
