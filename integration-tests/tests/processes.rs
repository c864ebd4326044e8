//! The suite as real processes of the `essentials` binary: the seed's cycle with `essentials all`,
//! and with every part as two processes of its own behind one gateway process (no duplicate
//! e-mails, no double fulfilment, consistent stock, calls spread over both replicas), then one
//! replica of every part killed with SIGKILL mid-flow and the flow finished by the survivors; a
//! part killed mid-flow and started again, and the flow completes with nothing lost or doubled.

use essentials_integration_tests::cycle::tomorrow;
use essentials_integration_tests::cycle::{
    self, DEADLINE, Suite, on_hand, post, stocked_bank, wait_for_subject, wait_outstanding,
};
use essentials_integration_tests::processes::{Processes, Shape};
use essentials_runtime::smtp_sink::SmtpSink;
use essentials_runtime::testing::wait_until;
use serde_json::json;

async fn start(shape: Shape, sink: &SmtpSink) -> Processes {
    Processes::start(
        env!("CARGO_BIN_EXE_essentials-under-test"),
        shape,
        |settings| settings.smtp.url = Some(sink.url()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cycle_runs_with_essentials_all() {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let suite = start(Shape::All, &sink).await;
    assert_eq!(suite.names(), ["all"], "one process");
    cycle::request_distribution_cycle(&suite, &sink, "all").await;
    cycle::assert_no_duplicate_emails(&sink);
    suite.stop().await;
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_every_part_behind_the_gateway() {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let mut suite = start(Shape::Separate { replicas: 2 }, &sink).await;
    assert_eq!(suite.names().len(), 9, "{:?}", suite.names());
    let done = cycle::request_distribution_cycle(&suite, &sink, "replicas").await;
    cycle::assert_no_duplicate_emails(&sink);
    let http = suite.http();
    let admin = &done.bank.admin;

    // Two saves of a distribution for one request, at once, reaching either replica: one wins,
    // the stock moves once.
    let request = post(
        &http,
        "/api/v1/partner/requests",
        &done.bank.partner_user,
        json!({"items": [{"item_id": done.bank.item_id, "quantity": 5}]}),
    )
    .await;
    let request_id = request.body["id"].as_str().expect("id").to_owned();
    let before = on_hand(&http, admin, &done.bank.item_id, &done.bank.location_id).await;
    let body = json!({
        "partner_id": done.bank.partner_id,
        "request_id": request_id,
        "storage_location_id": done.bank.location_id,
        "issued_at": tomorrow(),
        "delivery_method": "pick_up",
        "line_items": [{"item_id": done.bank.item_id, "quantity": 5}],
    });
    let saves: Vec<_> = (0..2)
        .map(|_| {
            let body = body.clone();
            let admin = admin.clone();
            tokio::spawn(async move {
                http.json("POST", "/api/v1/distributions", Some(&admin), Some(body))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for save in saves {
        statuses.push(save.await.expect("a save"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses[0], 201, "{statuses:?}");
    assert!(
        statuses[1] == 409 || statuses[1] == 422,
        "the second save is refused: {statuses:?}"
    );
    assert_eq!(
        on_hand(&http, admin, &done.bank.item_id, &done.bank.location_id).await,
        before - 5
    );
    done.bank
        .wait_request(&http, &request_id, "fulfilled")
        .await;

    // Many distributions at once over both inventory replicas, from a stock that cannot cover
    // them all: exactly the stock is given out, never more.
    let item = post(
        &http,
        "/api/v1/items",
        admin,
        json!({"name": "Replica Wipes"}),
    )
    .await;
    let item_id = item.body["id"].as_str().expect("id").to_owned();
    post(
        &http,
        "/api/v1/donations",
        admin,
        json!({"storage_location_id": done.bank.location_id, "line_items": [{"item_id": item_id, "quantity": 30}]}),
    )
    .await;
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let admin = admin.clone();
            let body = json!({
                "partner_id": done.bank.partner_id,
                "storage_location_id": done.bank.location_id,
                "issued_at": tomorrow(),
                "delivery_method": "delivery",
                "line_items": [{"item_id": item_id, "quantity": 1}],
            });
            tokio::spawn(async move {
                http.json("POST", "/api/v1/distributions", Some(&admin), Some(body))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for attempt in attempts {
        let answer = attempt.await.expect("an attempt");
        match answer.status {
            201 => created += 1,
            409 if answer.body["error"]["reason"] == "INSUFFICIENT_STOCK" => {}
            other => panic!("a distribution answered {other}: {:?}", answer.body),
        }
    }
    assert_eq!(created, 30, "as many as the stock covers");
    assert_eq!(
        on_hand(&http, admin, &item_id, &done.bank.location_id).await,
        0
    );

    // Every distribution e-mailed once: the cycle's, the request's, and the thirty.
    let wanted = 1 + 1 + 30;
    wait_until(DEADLINE, "every distribution e-mail", || {
        let count = distribution_emails(&sink, &done.bank.partner_email);
        async move { count >= wanted }
    })
    .await;
    // Each distribution.created event is in the notification part's log once it is sent; a
    // second delivery would be a second e-mail, so the count must stay exact.
    let log = http
        .json(
            "GET",
            &format!(
                "/api/v1/emails?to={}&page_size=100",
                done.bank.partner_email
            ),
            Some(admin),
            None,
        )
        .await;
    let logged = log.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|email| {
            email["subject"]
                .as_str()
                .is_some_and(|subject| subject.starts_with("Your Distribution from"))
        })
        .count();
    assert_eq!(logged, wanted, "{:?}", log.body);
    assert_eq!(distribution_emails(&sink, &done.bank.partner_email), wanted);

    // The calls and the events were spread: both inventory replicas created distributions, and
    // both notification replicas handled events (competing consumers on one queue).
    for replica in ["inventory-1", "inventory-2"] {
        let served = suite
            .metric(
                replica,
                "grpc_server_requests_total",
                &["method=\"CreateDistribution\""],
            )
            .await;
        assert!(served > 0.0, "{replica} served no CreateDistribution");
    }
    for replica in ["notification-1", "notification-2"] {
        let handled = suite
            .metric(replica, "consumer_messages_total", &["outcome=\"acked\""])
            .await;
        assert!(handled > 0.0, "{replica} handled no event");
    }

    // One replica of every part dies (SIGKILL) mid-flow, between a partner's request and its
    // fulfilment: the survivors finish the flow. A call that reached a dying replica answers a
    // clean 503 and is retried with its key, as a client does; the request is fulfilled once
    // and every e-mail goes out once.
    // Five distributions tomorrow that remind their partner, known to the notification part.
    let mut reminded = Vec::new();
    for _ in 0..5 {
        reminded.push(cycle::id(&post(
            &http,
            "/api/v1/distributions",
            admin,
            json!({"partner_id": done.bank.partner_id, "storage_location_id": done.bank.location_id,
                   "issued_at": tomorrow(), "delivery_method": "pick_up",
                   "reminder_email_enabled": true,
                   "line_items": [{"item_id": done.bank.item_id, "quantity": 1}]}),
        )
        .await));
    }
    let notification_db =
        essentials_runtime::db::pool(&suite.settings, "notification").expect("pool");
    wait_until(DEADLINE, "the notification part to know them", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM distribution WHERE distribution_id = ANY($1::text[]::uuid[])",
        )
        .bind(&reminded)
        .fetch_one(&notification_db)
        .await
        .is_ok_and(|known| known == 5)
    })
    .await;
    notification_db.close().await;
    let run_reminders = |url: String| {
        let admin = admin.clone();
        async move {
            use essentials_proto::notification::v1 as pb;
            let channel = essentials_runtime::grpc::channel(&url).expect("channel");
            pb::notification_service_client::NotificationServiceClient::new(channel)
                .run_due_reminders(essentials_runtime::testing::authorized(
                    &admin,
                    pb::RunDueRemindersRequest {
                        kinds: vec![pb::ReminderKind::Distribution as i32],
                        ..Default::default()
                    },
                ))
                .await
                .map(|answer| answer.into_inner().distribution_reminders_sent)
        }
    };
    let notification_urls: Vec<String> = suite
        .settings
        .notification
        .url
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(notification_urls.len(), 2);
    let confirmation = format!("{} - Requests Confirmation", done.bank.name);
    let confirmations = || {
        sink.messages_to(&done.bank.partner_email)
            .iter()
            .filter(|mail| mail.subject().unwrap_or_default() == confirmation)
            .count()
    };
    let confirmed_before = confirmations();
    let request_id = done.bank.request(&http, 3).await;
    let before = on_hand(&http, admin, &done.bank.item_id, &done.bank.location_id).await;
    // The day's reminders run on both notification replicas at once: the five go out once.
    let racing: Vec<_> = notification_urls
        .iter()
        .map(|url| tokio::spawn(run_reminders(url.clone())))
        .collect();
    let mut raced = Vec::new();
    for run in racing {
        raced.push(run.await.expect("a run").expect("a reminder run"));
    }
    // (The daily job, after 12:00 UTC, may have logged some of them itself.)
    assert!(
        raced.iter().sum::<i32>() <= 5,
        "the five logged at most once between the two: {raced:?}"
    );
    let reminders = || {
        sink.messages_to(&done.bank.partner_email)
            .iter()
            .filter(|mail| {
                mail.subject()
                    .unwrap_or_default()
                    .ends_with("Distribution Reminder")
            })
            .count()
    };
    wait_until(DEADLINE, "the five reminders", || {
        let count = reminders();
        async move { count >= 5 }
    })
    .await;
    for replica in ["partner-2", "request-2", "inventory-2", "notification-2"] {
        suite.kill(replica).await;
    }
    let unavailable = std::cell::Cell::new(0);
    let unavailable_count = &unavailable;
    let retried =
        move |method: &'static str, path: String, body: serde_json::Value, key: String| {
            let admin = admin.clone();
            async move {
                let body = serde_json::to_vec(&body).expect("json");
                let started = std::time::Instant::now();
                loop {
                    let answer = http
                        .send(
                            method,
                            &path,
                            Some(&admin),
                            "application/json",
                            &body,
                            &[("Idempotency-Key", &key)],
                        )
                        .await;
                    match answer.status {
                        503 if started.elapsed() < DEADLINE => {
                            unavailable_count.set(unavailable_count.get() + 1);
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                        status => {
                            assert!(status < 500, "{path}: {status} {:?}", answer.body);
                            return answer;
                        }
                    }
                }
            }
        };
    let fulfil = retried(
        "POST",
        format!("/api/v1/requests/{request_id}/fulfill"),
        json!({}),
        "failover-fulfil".into(),
    )
    .await;
    assert_eq!(fulfil.status, 200, "{:?}", fulfil.body);
    let distribution = json!({
        "partner_id": done.bank.partner_id,
        "request_id": request_id,
        "storage_location_id": done.bank.location_id,
        "issued_at": tomorrow(),
        "delivery_method": "pick_up",
        "line_items": [{"item_id": done.bank.item_id, "quantity": 3}],
    });
    let made = retried(
        "POST",
        "/api/v1/distributions".into(),
        distribution.clone(),
        "failover-distribution".into(),
    )
    .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let again = retried(
        "POST",
        "/api/v1/distributions".into(),
        distribution,
        "failover-second".into(),
    )
    .await;
    assert!(
        again.status == 409 || again.status == 422,
        "a second fulfilment is refused: {:?}",
        again.body
    );
    done.bank
        .wait_request(&http, &request_id, "fulfilled")
        .await;
    let wanted = wanted + 1;
    wait_until(DEADLINE, "the failover distribution's e-mail", || {
        let count = distribution_emails(&sink, &done.bank.partner_email);
        async move { count >= wanted + 5 }
    })
    .await;
    // Reads after the failover are retried on 503 like the writes.
    let stock_path = format!(
        "/api/v1/inventory?storage_location_id={}&item_id={}",
        done.bank.location_id, done.bank.item_id
    );
    let stock = std::cell::Cell::new(None);
    let stock_read = &stock;
    wait_until(DEADLINE, "the stock read through the survivors", || {
        let path = stock_path.clone();
        let admin = admin.clone();
        async move {
            let answer = http.json("GET", &path, Some(&admin), None).await;
            assert!(matches!(answer.status, 200 | 503), "{:?}", answer.body);
            if answer.status == 503 {
                unavailable_count.set(unavailable_count.get() + 1);
                return false;
            }
            stock_read.set(answer.body["items"][0]["quantity"].as_i64());
            true
        }
    })
    .await;
    assert_eq!(stock.get(), Some(before - 3), "the stock moved once");
    // Once the callers' probes have seen the dead replicas (every second), they are out of the
    // balancers: every call reaches a survivor, none fails on a dead one.
    let read = || {
        let path = stock_path.clone();
        let admin = admin.clone();
        async move { http.json("GET", &path, Some(&admin), None).await.status }
    };
    wait_until(
        DEADLINE,
        "the dead replicas out of the balancers",
        || async {
            for _ in 0..10 {
                if read().await != 200 {
                    return false;
                }
            }
            true
        },
    )
    .await;
    for _ in 0..40 {
        assert_eq!(read().await, 200, "a call reached a dead replica");
    }
    wait_until(DEADLINE, "the request's confirmation", || {
        let count = confirmations();
        async move { count > confirmed_before }
    })
    .await;
    assert_eq!(
        distribution_emails(&sink, &done.bank.partner_email),
        wanted + 5
    );
    assert_eq!(confirmations(), confirmed_before + 1, "confirmed once");

    // After the kill the survivor runs the day's reminders again: none is logged twice, so none
    // is sent twice.
    let again = run_reminders(notification_urls[0].clone())
        .await
        .expect("the survivor runs the reminders");
    assert_eq!(again, 0, "the day's reminders are sent");
    assert_eq!(
        reminders(),
        5,
        "each reminder once: runs {raced:?}, then {again}"
    );
    println!(
        "replica killed mid-flow: {} calls answered 503 and were retried; 1 fulfilment, \
         {wanted} distribution e-mails for {wanted} distributions (and 5 with reminders), 0 lost, \
         0 doubled; 5 reminders for 5 distributions",
        unavailable.get()
    );
    suite.stop().await;
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_killed_mid_flow_comes_back_and_the_flow_completes() {
    let sink = SmtpSink::start().await.expect("smtp listener");
    let mut suite = start(Shape::Separate { replicas: 1 }, &sink).await;
    let http = suite.http();
    let bank = stocked_bank(&http, &sink, "Crash", 50).await;
    let mails_before = sink.messages_to(&bank.partner_email).len();

    // The notification part dies (SIGKILL): the flow goes on, its events wait in RabbitMQ.
    suite.kill("notification-1").await;
    let request_id = bank.request(&http, 4).await;
    bank.fulfil(&http, &request_id).await;
    // The request part dies too, with the distribution's event possibly not yet handled: its
    // routes answer a clean 503 meanwhile, never a 500.
    suite.kill("request-1").await;
    let unavailable = http
        .json(
            "GET",
            &format!("/api/v1/requests/{request_id}"),
            Some(&bank.admin),
            None,
        )
        .await;
    assert_eq!(unavailable.status, 503, "{:?}", unavailable.body);
    assert_eq!(bank.on_hand(&http).await, 46);
    assert_eq!(
        sink.messages_to(&bank.partner_email).len(),
        mails_before,
        "nothing sent while the notification part is down"
    );

    // Both come back: every e-mail goes out once, the request ends fulfilled and off the
    // dashboard.
    suite.restart("request-1").await;
    suite.restart("notification-1").await;
    let confirmation = format!("{} - Requests Confirmation", bank.name);
    wait_for_subject(&sink, &bank.partner_email, &confirmation).await;
    wait_for_subject(&sink, &bank.partner_email, "Your Distribution from").await;
    bank.wait_request(&http, &request_id, "fulfilled").await;
    wait_outstanding(&http, &bank.admin, &request_id, false).await;
    assert_eq!(bank.on_hand(&http).await, 46);
    // A killed partner part loses nothing either: an invitation made just before its death is
    // e-mailed once it is back.
    bank.invite_partner(&http, "Late Partner", "late@crash.test")
        .await;
    suite.kill("partner-1").await;
    suite.restart("partner-1").await;
    sink.wait_for_to("late@crash.test", 1, DEADLINE).await;
    cycle::assert_no_duplicate_emails(&sink);
    suite.stop().await;
    sink.stop().await;
}

fn distribution_emails(sink: &SmtpSink, to: &str) -> usize {
    sink.messages_to(to)
        .iter()
        .filter(|mail| {
            mail.subject()
                .unwrap_or_default()
                .starts_with("Your Distribution from")
        })
        .count()
}
