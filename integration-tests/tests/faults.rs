//! Faults with nothing lost, each printing its figures: the broker going away mid-flow and cut
//! for 20 s under 50 distributions, Postgres connections killed and its link cut for 10 s,
//! latency on one hop, SMTP down, a restore from pg_dump. Each cut is made with a TCP proxy in
//! front of the real server, so that other tests sharing it are not disturbed.

use essentials_integration_tests::cycle::mailed_bank;
use essentials_integration_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack};
use essentials_runtime::smtp_sink::SmtpSink;
use essentials_runtime::testing::{TcpProxy, wait_until};
use serde_json::json;

use essentials_integration_tests::cycle::DEADLINE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_mid_flow_loses_and_duplicates_nothing() {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().expect("address"))
        .await
        .expect("proxy");
    proxy.up();
    let bus_url = format!("amqp://guest:guest@{}/%2f", proxy.address());
    let stack = Stack::start_with(
        &[&essentials_partner::SPEC, &essentials_notification::SPEC],
        |settings| {
            settings.smtp.url = Some(sink.url());
            settings.bus.url = bus_url;
        },
    )
    .await;
    let http = stack.http();
    let admin = mailed_bank(&http, &sink, "Outage Bank", "admin@outage.test").await;

    // The broker goes away; the bank keeps working and the events wait in the outbox.
    proxy.down().await;
    let mut ids = Vec::new();
    for index in 0..3 {
        let partner = http
            .json(
                "POST",
                "/api/v1/partners",
                Some(&admin),
                Some(json!({"name": format!("Partner {index}"), "email": format!("p{index}@outage.test")})),
            )
            .await;
        assert_eq!(
            partner.status, 201,
            "the API works without the broker: {:?}",
            partner.body
        );
        let id = partner.body["id"].as_str().expect("id").to_owned();
        let invited = http
            .json(
                "POST",
                &format!("/api/v1/partners/{id}/invite"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(invited.status, 200, "{:?}", invited.body);
        ids.push(id);
    }
    wait_until(
        DEADLINE,
        "the invitations to wait in the outbox",
        || async { stack.pending_events("partner").await >= 3 },
    )
    .await;
    assert!(
        sink.messages_to("p0@outage.test").is_empty(),
        "nothing sent while the broker is away"
    );

    // The broker comes back: every invitation is e-mailed, once.
    proxy.up();
    for index in 0..3 {
        sink.wait_for_to(&format!("p{index}@outage.test"), 1, DEADLINE)
            .await;
    }
    wait_until(DEADLINE, "the outbox to drain", || async {
        stack.pending_events("partner").await == 0
    })
    .await;
    // Let any duplicate that could still be in flight arrive: the e-mail log is the authority.
    let log = http.json("GET", "/api/v1/emails", Some(&admin), None).await;
    let sent_to_partners = log.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|email| {
            email["to"]
                .as_str()
                .is_some_and(|to| to.ends_with("@outage.test") && to.starts_with('p'))
        })
        .count();
    assert_eq!(sent_to_partners, 3, "{:?}", log.body);
    for index in 0..3 {
        assert_eq!(
            sink.messages_to(&format!("p{index}@outage.test")).len(),
            1,
            "exactly once"
        );
    }
    stack.stop().await;
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_database_connections_fail_cleanly_and_recover_without_a_restart() {
    let stack = Stack::start(&[&essentials_partner::SPEC]).await;
    let http = stack.http();
    let root = http.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let database = stack.settings.database_name("partner");
    let admin_pool = essentials_runtime::db::pool(&stack.settings, "partner").expect("pool");
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&database)
    .fetch_all(&admin_pool)
    .await
    .expect("terminate");
    assert!(!terminated.is_empty(), "the part had connections to kill");
    admin_pool.close().await;
    // Every answer is a success or a clean "try again", never a 500; it recovers by itself.
    let statuses = std::sync::Mutex::new(Vec::new());
    wait_until(DEADLINE, "the part to answer again", || {
        let root = root.clone();
        let statuses = &statuses;
        async move {
            // GET /me reads the user and their roles: 200 means the database answered.
            let answer = http.json("GET", "/api/v1/me", Some(&root), None).await;
            if let Ok(mut seen) = statuses.lock() {
                seen.push(answer.status);
            }
            answer.status == 200
        }
    })
    .await;
    let statuses = statuses.into_inner().unwrap_or_default();
    assert!(
        statuses
            .iter()
            .all(|status| *status == 200 || *status == 503),
        "{statuses:?}"
    );
    let signed_in = http.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(!signed_in.is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_wait_for_smtp_and_go_out_once_it_returns() {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let stack = Stack::start_with(
        &[&essentials_partner::SPEC, &essentials_notification::SPEC],
        |settings| settings.smtp.url = Some(sink.url()),
    )
    .await;
    let http = stack.http();
    let admin = mailed_bank(&http, &sink, "Smtp Bank", "admin@smtp-down.test").await;
    sink.stop().await;
    let partner = http
        .json(
            "POST",
            "/api/v1/partners",
            Some(&admin),
            Some(json!({"name": "Patient", "email": "patient@smtp-down.test"})),
        )
        .await;
    let id = partner.body["id"].as_str().expect("id").to_owned();
    http.json(
        "POST",
        &format!("/api/v1/partners/{id}/invite"),
        Some(&admin),
        None,
    )
    .await;
    wait_until(
        DEADLINE,
        "the send to fail and wait for a retry",
        || async {
            let log = http
                .json(
                    "GET",
                    "/api/v1/emails?to=patient@smtp-down.test",
                    Some(&admin),
                    None,
                )
                .await;
            log.body["items"][0]["status"]
                .as_str()
                .is_some_and(|status| status != "sent")
        },
    )
    .await;
    sink.restart().await.expect("smtp back");
    let mails = sink
        .wait_for_to("patient@smtp-down.test", 1, DEADLINE)
        .await;
    assert_eq!(mails.len(), 1);
    wait_until(DEADLINE, "the log to say sent", || async {
        let log = http
            .json(
                "GET",
                "/api/v1/emails?to=patient@smtp-down.test",
                Some(&admin),
                None,
            )
            .await;
        log.body["items"][0]["status"] == "sent"
    })
    .await;
    assert_eq!(sink.messages_to("patient@smtp-down.test").len(), 1, "once");
    stack.stop().await;
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_part_recovers_from_killed_database_connections_mid_flow() {
    use essentials_integration_tests::cycle::{
        assert_no_duplicate_emails, stocked_bank, wait_for_subject, wait_outstanding,
    };
    let sink = SmtpSink::start().await.expect("smtp listener");
    let stack = Stack::everything(sink.url()).await;
    let http = stack.http();
    let bank = stocked_bank(&http, &sink, "Cut", 10).await;
    let admin = bank.admin.clone();
    let request_id = bank.request(&http, 2).await;

    // Every connection of every part is cut: pools, relays' listeners, consumers' work.
    let admin_pool = essentials_runtime::db::pool(&stack.settings, "partner").expect("pool");
    let databases: Vec<String> = ["partner", "request", "inventory", "notification"]
        .iter()
        .map(|part| stack.settings.database_name(part))
        .collect();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = ANY($1) AND pid <> pg_backend_pid()",
    )
    .bind(&databases)
    .fetch_all(&admin_pool)
    .await
    .expect("terminate");
    admin_pool.close().await;
    assert!(terminated.len() >= 4, "every part had connections to kill");

    // Each part's routes answer a success or a clean 503 meanwhile, and come back by themselves.
    let routes = [
        "/api/v1/me",
        "/api/v1/requests",
        "/api/v1/inventory",
        "/api/v1/dashboard",
    ];
    let statuses = std::sync::Mutex::new(Vec::new());
    wait_until(DEADLINE, "every part to answer again", || {
        let admin = admin.clone();
        let statuses = &statuses;
        async move {
            let mut all_ok = true;
            for route in routes {
                let answer = http.json("GET", route, Some(&admin), None).await;
                all_ok &= answer.status == 200;
                if let Ok(mut seen) = statuses.lock() {
                    seen.push((route, answer.status));
                }
            }
            all_ok
        }
    })
    .await;
    let statuses = statuses.into_inner().unwrap_or_default();
    assert!(
        statuses
            .iter()
            .all(|(_, status)| *status == 200 || *status == 503),
        "{statuses:?}"
    );

    // The flow goes on: fulfilment, a distribution, its events and e-mails, none lost.
    bank.fulfil(&http, &request_id).await;
    let confirmation = format!("{} - Requests Confirmation", bank.name);
    wait_for_subject(&sink, &bank.partner_email, &confirmation).await;
    wait_for_subject(&sink, &bank.partner_email, "Your Distribution from").await;
    bank.wait_request(&http, &request_id, "fulfilled").await;
    wait_outstanding(&http, &admin, &request_id, false).await;
    assert_no_duplicate_emails(&sink);
    stack.stop().await;
    sink.stop().await;
}

/// Runs a PostgreSQL client tool; its stderr in the failure.
async fn pg_tool(program: &str, args: &[&str]) {
    let output = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|error| panic!("run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// docs/operations.md's logical backup, done: each part's database dumped with `pg_dump` once the
/// outboxes are empty, restored with `pg_restore` into fresh databases, and a suite started on
/// them answers every read as the first one did, signs in, and takes new writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_restored_from_pg_dump_serves_the_same_answers() {
    use essentials_integration_tests::cycle::{login, on_hand, request_distribution_cycle};
    const PARTS: [&str; 4] = ["partner", "request", "inventory", "notification"];
    let sink = SmtpSink::start().await.expect("smtp listener");
    let stack = Stack::everything(sink.url()).await;
    let http = stack.http();
    let cycle = request_distribution_cycle(&stack, &sink, "Restore").await;
    let bank = &cycle.bank;
    let reads = [
        "/api/v1/partners".to_owned(),
        format!("/api/v1/partners/{}", bank.partner_id),
        "/api/v1/requests".to_owned(),
        format!("/api/v1/requests/{}", cycle.request_id),
        "/api/v1/distributions".to_owned(),
        format!("/api/v1/distributions/{}", cycle.distribution_id),
        format!("/api/v1/inventory?storage_location_id={}", bank.location_id),
        "/api/v1/items".to_owned(),
    ];
    let mut before = Vec::new();
    for path in &reads {
        let answer = http.json("GET", path, Some(&bank.admin), None).await;
        assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
        before.push(answer.body);
    }
    for part in PARTS {
        wait_until(
            DEADLINE,
            &format!("{part}'s outbox to be empty"),
            || async { stack.pending_events(part).await == 0 },
        )
        .await;
    }

    let dumps = tempfile::tempdir().expect("temporary directory");
    let server = stack.settings.database.url.trim_end_matches('/').to_owned();
    let restored = essentials_runtime::testing::unique_name("r");
    for part in PARTS {
        let file = dumps.path().join(format!("{part}.dump"));
        let file = file.to_str().expect("a UTF-8 path");
        let source = format!("{server}/{}", stack.settings.database_name(part));
        pg_tool(
            "pg_dump",
            &[
                "--format=custom",
                "--no-owner",
                "--dbname",
                &source,
                "--file",
                file,
            ],
        )
        .await;
        let target = format!("{restored}_{part}");
        pg_tool(
            "createdb",
            &["--maintenance-db", &format!("{server}/postgres"), &target],
        )
        .await;
        pg_tool(
            "pg_restore",
            &[
                "--no-owner",
                "--exit-on-error",
                "--dbname",
                &format!("{server}/{target}"),
                file,
            ],
        )
        .await;
    }
    stack.stop().await;

    let again = Stack::start_with(&essentials_integration_tests::ALL_PARTS, |settings| {
        settings.smtp.url = Some(sink.url());
        settings.database.prefix = restored.clone();
    })
    .await;
    let http = again.http();
    let admin = login(&http, "admin@cycle-restore.test").await;
    for (path, first) in reads.iter().zip(&before) {
        let answer = http.json("GET", path, Some(&admin), None).await;
        assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
        assert_eq!(&answer.body, first, "{path} answers as before the backup");
    }
    // The restored suite goes on: stock moves from where it was.
    let stock = on_hand(&http, &admin, &bank.item_id, &bank.location_id).await;
    let donation = http
        .json(
            "POST",
            "/api/v1/donations",
            Some(&admin),
            Some(json!({
                "storage_location_id": bank.location_id,
                "source": "misc",
                "line_items": [{"item_id": bank.item_id, "quantity": 7}],
            })),
        )
        .await;
    assert_eq!(donation.status, 201, "{:?}", donation.body);
    assert_eq!(
        on_hand(&http, &admin, &bank.item_id, &bank.location_id).await,
        stock + 7
    );
    again.stop().await;
    sink.stop().await;
}

/// Latency injected on the gateway's hop to the partner part: an answer slower than the
/// gateway's deadline ends as a clean 504 at about the deadline (the gateway does not wait for
/// it), one inside the deadline is whole, and the hop recovers when the latency goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_on_the_partner_part_keeps_the_gateways_deadline() {
    use essentials_integration_tests::cycle::login;
    use std::time::{Duration, Instant};
    let deadline = Duration::from_millis(1000);
    let (stack, proxies) = Stack::start_proxied(
        &[&essentials_partner::SPEC],
        |settings| {
            settings.gateway.upstream_timeout_ms =
                u64::try_from(deadline.as_millis()).unwrap_or(1000);
        },
        &["partner"],
    )
    .await;
    let proxy = &proxies[0];
    let http = stack.http();
    let root = login(&http, ADMIN_EMAIL).await;
    let organizations = |http: &essentials_integration_tests::Http| {
        let http = *http;
        let root = root.clone();
        async move {
            let started = Instant::now();
            let answer = http.json("GET", "/api/v1/me", Some(&root), None).await;
            (answer, started.elapsed())
        }
    };
    let mut figures = Vec::new();

    proxy.set_latency(Duration::from_millis(50));
    let (answer, took) = organizations(&http).await;
    assert_eq!(answer.status, 200, "slow but in time: {:?}", answer.body);
    figures.push(("50 ms", answer.status, took));

    // Each chunk now waits 3 s: the answer cannot come before 3 s, the deadline is 1 s.
    proxy.set_latency(Duration::from_secs(3));
    for _ in 0..3 {
        let (answer, took) = organizations(&http).await;
        assert_eq!(answer.status, 504, "{:?}", answer.body);
        assert_eq!(answer.body["error"]["code"], "DEADLINE_EXCEEDED");
        assert!(
            took >= deadline && took < Duration::from_secs(3),
            "answered at the deadline, not after the slow part: {took:?}"
        );
        figures.push(("3 s", answer.status, took));
    }
    // Routes that need no partner call are not held up.
    let (status, _) = {
        let started = Instant::now();
        let answer = http.json("GET", "/healthz", None, None).await;
        (answer.status, started.elapsed())
    };
    assert_eq!(status, 200);

    proxy.set_latency(Duration::ZERO);
    wait_until(DEADLINE, "the partner hop to answer again", || async {
        organizations(&http).await.0.status == 200
    })
    .await;
    let (answer, took) = organizations(&http).await;
    figures.push(("none", answer.status, took));
    for (latency, status, took) in &figures {
        println!("latency {latency}: {status} in {took:?}");
    }
    let server_errors = figures
        .iter()
        .filter(|(_, status, _)| *status >= 500 && *status != 504)
        .count();
    println!(
        "latency fault: {} requests, {} 504 at the deadline, {server_errors} other 5xx",
        figures.len(),
        figures
            .iter()
            .filter(|(_, status, _)| *status == 504)
            .count()
    );
    assert_eq!(server_errors, 0);
    stack.stop().await;
}

/// Every part and the gateway, e-mailing to a new SMTP listener, reaching the shared server at
/// `target` through a [`TcpProxy`] (up) that `point` names in the settings.
async fn whole_suite_behind_a_proxy(
    target: &str,
    point: impl FnOnce(&mut essentials_runtime::Settings, std::net::SocketAddr),
) -> (Stack, TcpProxy, SmtpSink) {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let proxy = TcpProxy::start(target.parse().expect("address"))
        .await
        .expect("proxy");
    proxy.up();
    let proxied = proxy.address();
    let smtp = sink.url();
    let stack = Stack::start_with(&essentials_integration_tests::ALL_PARTS, |settings| {
        settings.smtp.url = Some(smtp);
        point(settings, proxied);
    })
    .await;
    (stack, proxy, sink)
}

/// The Postgres link cut for 10 s under the whole suite (a proxy in front of the shared server):
/// every answer meanwhile is a success or a clean 503 with Retry-After, the suite recovers
/// without a restart, and each donation tried during the cut, retried afterwards with its
/// Idempotency-Key, exists exactly once with exactly its stock — nothing half-written, nothing
/// doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_database_link_answers_503_with_retry_after_and_loses_nothing() {
    use essentials_integration_tests::cycle::{on_hand, stocked_bank};
    use std::time::{Duration, Instant};
    let (stack, proxy, sink) = whole_suite_behind_a_proxy("127.0.0.1:5432", |settings, proxied| {
        settings.database.url = format!("postgres://postgres@{proxied}");
        settings.database.acquire_timeout_ms = 1000;
    })
    .await;
    let http = stack.http();
    let bank = stocked_bank(&http, &sink, "Cut", 10).await;
    let stock_before = on_hand(&http, &bank.admin, &bank.item_id, &bank.location_id).await;
    let donations = || async {
        let listed = http
            .json(
                "GET",
                "/api/v1/donations?page_size=500",
                Some(&bank.admin),
                None,
            )
            .await;
        assert_eq!(listed.status, 200, "{:?}", listed.body);
        listed.body["items"].as_array().map(Vec::len).unwrap_or(0)
    };
    let donations_before = donations().await;
    let donate = |key: String| {
        let admin = bank.admin.clone();
        let body = json!({
            "storage_location_id": bank.location_id,
            "source": "misc",
            "line_items": [{"item_id": bank.item_id, "quantity": 3}],
        });
        async move {
            let body = serde_json::to_vec(&body).expect("json");
            http.send(
                "POST",
                "/api/v1/donations",
                Some(&admin),
                "application/json",
                &body,
                &[("Idempotency-Key", &key)],
            )
            .await
        }
    };

    proxy.down().await;
    let cut_at = Instant::now();
    let mut keys = Vec::new();
    let (mut written, mut refused, mut other) = (0, 0, Vec::new());
    while cut_at.elapsed() < Duration::from_secs(10) {
        let key = format!("cut-{}", keys.len());
        let answer = donate(key.clone()).await;
        match answer.status {
            201 => written += 1,
            503 => {
                refused += 1;
                assert!(
                    answer.header("retry-after").is_some(),
                    "a 503 says when to retry: {:?}",
                    answer.headers
                );
            }
            status => other.push(status),
        }
        keys.push(key);
        let read = http
            .json("GET", "/api/v1/donations", Some(&bank.admin), None)
            .await;
        assert!(matches!(read.status, 200 | 503), "{:?}", read.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    proxy.up();
    assert!(
        other.is_empty(),
        "only 201 or 503 during the cut: {other:?}"
    );
    assert!(refused > 0, "the cut was felt");

    // Recovery without a restart; then every try is retried with its key.
    wait_until(
        DEADLINE,
        "the suite to reach its database again",
        || async {
            http.json("GET", "/api/v1/donations", Some(&bank.admin), None)
                .await
                .status
                == 200
        },
    )
    .await;
    let mut ids = std::collections::HashSet::new();
    for key in &keys {
        let answer = donate(key.clone()).await;
        assert!(
            matches!(answer.status, 200 | 201),
            "{key}: {:?}",
            answer.body
        );
        ids.insert(answer.body["id"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(ids.len(), keys.len(), "one donation per key");
    let listed = donations().await;
    let stock_after = on_hand(&http, &bank.admin, &bank.item_id, &bank.location_id).await;
    println!(
        "database cut: {} donations tried, {written} written and {refused} refused (503) during \
         the cut; after it {} exist, stock +{}",
        keys.len(),
        ids.len(),
        stock_after - stock_before
    );
    assert_eq!(
        stock_after - stock_before,
        3 * i64::try_from(keys.len()).unwrap_or(0)
    );
    assert_eq!(
        listed,
        donations_before + keys.len(),
        "every donation listed once"
    );
    stack.stop().await;
    sink.stop().await;
}

/// The quantities of `item` in the distribution e-mails `sink` got for `to` (one per e-mail).
fn mailed_quantities(sink: &SmtpSink, to: &str, subject: &str, item: &str) -> Vec<i64> {
    let marker = format!("- {item}: ");
    sink.messages_to(to)
        .iter()
        .filter(|mail| mail.subject().unwrap_or_default() == subject)
        .filter_map(|mail| {
            let text = mail.text_body()?;
            let start = text.find(&marker)? + marker.len();
            text[start..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_cut_for_20_s_under_50_distributions_answers_no_5xx_and_mails_each_once() {
    use essentials_integration_tests::cycle::{stocked_bank, tomorrow};
    use std::collections::{BTreeSet, HashSet};
    use std::time::{Duration, Instant};
    let (stack, proxy, sink) = whole_suite_behind_a_proxy("127.0.0.1:5672", |settings, proxied| {
        settings.bus.url = format!("amqp://guest:guest@{proxied}/%2f");
    })
    .await;
    let http = stack.http();
    let bank = stocked_bank(&http, &sink, "Broker Cut", 5000).await;
    let item = "Broker Cut Diapers";
    let stock_before = bank.on_hand(&http).await;
    let mails_before = sink.messages().len();

    // 50 distributions over 20 s without the broker: 40 made directly, 10 fulfilling requests
    // the partner makes during the cut; 3 more requests stay open. Distribution n carries n
    // items, so each e-mail names its distribution.
    proxy.down().await;
    let cut_at = Instant::now();
    let (mut statuses, mut fulfilled, mut open) = (Vec::new(), Vec::new(), Vec::new());
    let mut cycle_calls = 0;
    for n in 1..=50_i64 {
        let due = cut_at + Duration::from_millis(400 * u64::try_from(n - 1).unwrap_or(0));
        tokio::time::sleep_until(due.into()).await;
        if n <= 40 {
            let made = http
                .json(
                    "POST",
                    "/api/v1/distributions",
                    Some(&bank.admin),
                    Some(json!({"partner_id": bank.partner_id,
                                "storage_location_id": bank.location_id,
                                "issued_at": tomorrow(), "delivery_method": "pick_up",
                                "line_items": [{"item_id": bank.item_id, "quantity": n}]})),
                )
                .await;
            statuses.push(made.status);
        } else {
            // `request` and `fulfil` fail the test at once on anything but a success.
            let request = bank.request(&http, n).await;
            bank.fulfil(&http, &request).await;
            cycle_calls += 3;
            fulfilled.push(request);
        }
    }
    for quantity in [101, 102, 103] {
        open.push(bank.request(&http, quantity).await);
    }
    while cut_at.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waiting = stack.pending_events("inventory").await;
    let sent_during_cut = sink.messages().len() - mails_before;
    proxy.up();
    let server_errors = statuses.iter().filter(|status| **status >= 500).count();
    assert!(
        statuses.iter().all(|status| *status == 201),
        "every distribution made during the cut: {statuses:?}"
    );
    assert_eq!(
        sent_during_cut, 0,
        "nothing can be mailed without the broker"
    );
    assert!(waiting >= 50, "the distributions' events waited: {waiting}");

    // After the cut: every distribution e-mailed once, every request confirmed once, the
    // fulfilled requests fulfilled, the dashboard showing exactly the open ones.
    let subject = format!("{} - Requests Confirmation", bank.name);
    let distribution_subject = format!("Your Distribution from {}", bank.name);
    wait_until(
        DEADLINE,
        "50 distribution e-mails and 13 confirmations",
        || async {
            mailed_quantities(&sink, &bank.partner_email, &distribution_subject, item).len() >= 50
                && sink
                    .messages_to(&bank.partner_email)
                    .iter()
                    .filter(|mail| mail.subject().unwrap_or_default() == subject)
                    .count()
                    >= 13
        },
    )
    .await;
    for part in ["partner", "inventory", "request", "notification"] {
        wait_until(DEADLINE, "every outbox to drain", || async {
            stack.pending_events(part).await == 0
        })
        .await;
    }
    for request in &fulfilled {
        bank.wait_request(&http, request, "fulfilled").await;
    }
    let open_ids: HashSet<String> = open.iter().cloned().collect();
    let outstanding = || async {
        let dashboard = http
            .json("GET", "/api/v1/dashboard", Some(&bank.admin), None)
            .await;
        dashboard.body["outstanding_requests"]
            .as_array()
            .map(|requests| {
                requests
                    .iter()
                    .filter_map(|request| request["request_id"].as_str().map(str::to_owned))
                    .collect::<HashSet<String>>()
            })
            .unwrap_or_default()
    };
    wait_until(
        DEADLINE,
        "the dashboard to list exactly the open requests",
        || async { outstanding().await == open_ids },
    )
    .await;

    let quantities = mailed_quantities(&sink, &bank.partner_email, &distribution_subject, item);
    let distinct: BTreeSet<i64> = quantities.iter().copied().collect();
    let confirmations = sink
        .messages_to(&bank.partner_email)
        .iter()
        .filter(|mail| mail.subject().unwrap_or_default() == subject)
        .count();
    let stock_after = bank.on_hand(&http).await;
    println!(
        "broker cut 20 s: {} distribution calls ({server_errors} 5xx) and {cycle_calls} request, \
         fulfil and distribution calls (all 2xx); {waiting} inventory events waited; after \
         it {} distribution e-mails for {} distributions, {confirmations} confirmations for 13 \
         requests, stock -{}",
        statuses.len(),
        quantities.len(),
        distinct.len(),
        stock_before - stock_after
    );
    assert_eq!(distinct, (1..=50).collect(), "every distribution e-mailed");
    assert_eq!(quantities.len(), 50, "each exactly once: {quantities:?}");
    assert_eq!(confirmations, 13, "each request confirmed exactly once");
    assert_eq!(stock_before - stock_after, (1..=50).sum::<i64>());
    assert_eq!(outstanding().await, open_ids, "the dashboard stays right");
    stack.stop().await;
    sink.stop().await;
}
