//! The write path under load, with its baseline in the same run (the performance issue's W1):
//! starts every part and the gateway in this process (databases and bus names of its own), seeds
//! a bank with 50 items in stock and an approved partner, then for 1, 8 and 16 clients POSTs
//! `/api/v1/distributions` with 5 lines each over keep-alive connections for SECONDS, and runs
//! pgbench on the same Postgres with the SQL a distribution needs (a header, 5 lines, 5
//! conditional decrements, an outbox row, prepared) for as long. Prints one table: throughput,
//! p50/p99, errors, this process's RSS (suite and load generator together) and the ratio to the
//! baseline. Run it optimised:
//! `cargo run --release -p essentials-integration-tests --bin bench-writes [-- SECONDS]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use essentials_integration_tests::cycle::{id, post, tomorrow};
use essentials_integration_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

const ITEMS: usize = 50;
const LINES: usize = 5;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// This process's resident set (the suite runs in it, beside the load generator).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

struct Level {
    clients: usize,
    ok: usize,
    errors: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    rss: f64,
}

/// `clients` loops POSTing distributions for `seconds`.
async fn load(
    base: &str,
    token: &str,
    bodies: Arc<Vec<Bytes>>,
    clients: usize,
    seconds: u64,
) -> Level {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("{base}/api/v1/distributions").parse().expect("uri");
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (client, uri, bodies) = (client.clone(), uri.clone(), bodies.clone());
        let authorization = format!("Bearer {token}");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut index = worker;
            while Instant::now() < until {
                let request = http::Request::post(uri.clone())
                    .header("content-type", "application/json")
                    .header("authorization", &authorization)
                    .body(Full::new(bodies[index % bodies.len()].clone()))
                    .expect("request");
                index += clients;
                let sent = Instant::now();
                match client.request(request).await {
                    Ok(answer) => {
                        let status = answer.status();
                        let _body = answer.into_body().collect().await;
                        if status.as_u16() == 201 {
                            latencies.push(sent.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut own, own_errors) = task.await.expect("a client");
        latencies.append(&mut own);
        errors += own_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Level {
        clients,
        ok: latencies.len(),
        errors,
        per_second: latencies.len() as f64 / elapsed,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        rss: rss_mib(),
    }
}

/// Per gRPC method (`service/method`): (calls, seconds spent), from this process's metrics.
fn grpc_time() -> std::collections::BTreeMap<String, (f64, f64)> {
    let text = essentials_runtime::metrics::metrics().render();
    let mut spent = std::collections::BTreeMap::new();
    for line in text.lines() {
        let (series, slot) = if let Some(rest) =
            line.strip_prefix("grpc_server_request_duration_seconds_sum{")
        {
            (rest, 1)
        } else if let Some(rest) = line.strip_prefix("grpc_server_request_duration_seconds_count{")
        {
            (rest, 0)
        } else {
            continue;
        };
        let Some((labels, value)) = series.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                .map(|value| value.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let service = label("service");
        let key = format!(
            "{}/{}",
            service.rsplit('.').next().unwrap_or(&service),
            label("method")
        );
        let entry: &mut (f64, f64) = spent.entry(key).or_default();
        let value: f64 = value.trim().parse().unwrap_or(0.0);
        if slot == 0 {
            entry.0 += value;
        } else {
            entry.1 += value;
        }
    }
    spent
}

/// W4: for `count` distributions made one at a time, the time from the API's 201 until the
/// notification part has its e-mail sent (written) and its distribution in the dashboard's
/// store, read from the notification part's database every millisecond.
async fn event_lag(
    http: &essentials_integration_tests::Http,
    token: &str,
    bodies: &[Bytes],
    notification: &sqlx::PgPool,
    count: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let counts = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT (SELECT count(*) FROM email
                      WHERE event_type = 'distribution.created' AND status = 'sent'),
                    (SELECT count(*) FROM distribution)",
        )
        .fetch_one(notification)
        .await
        .expect("the notification part's counts")
    };
    let (mut to_email, mut to_dashboard) = (Vec::new(), Vec::new());
    for index in 0..count {
        let (emails, stored) = counts().await;
        let body = &bodies[index % bodies.len()];
        let made = http
            .send(
                "POST",
                "/api/v1/distributions",
                Some(token),
                "application/json",
                body,
                &[],
            )
            .await;
        assert_eq!(made.status, 201, "{:?}", made.body);
        let answered = Instant::now();
        let (mut mailed, mut known) = (None, None);
        while mailed.is_none() || known.is_none() {
            let (emails_now, stored_now) = counts().await;
            if mailed.is_none() && emails_now > emails {
                mailed = Some(answered.elapsed());
            }
            if known.is_none() && stored_now > stored {
                known = Some(answered.elapsed());
            }
            assert!(
                answered.elapsed() < Duration::from_secs(30),
                "no e-mail after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        to_email.extend(mailed);
        to_dashboard.extend(known);
    }
    to_email.sort_unstable();
    to_dashboard.sort_unstable();
    (to_email, to_dashboard)
}

/// The same SQL a distribution needs, in a database of its own: pgbench's tps at `clients`.
fn pgbench(url: &str, script: &std::path::Path, clients: usize, seconds: u64) -> f64 {
    let output = std::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-T", &seconds.to_string()])
        .args(["-c", &clients.to_string(), "-j", &clients.to_string()])
        .arg("-f")
        .arg(script)
        .arg(url)
        .output()
        .expect("pgbench (Debian's postgresql-client) runs");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line.split_whitespace().nth(2))
        .and_then(|tps| tps.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "pgbench printed no tps:\n{text}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

const BASELINE_SCHEMA: &str = "
CREATE TABLE distribution (id bigserial PRIMARY KEY, organization_id uuid NOT NULL,
    partner_id uuid NOT NULL, storage_location_id uuid NOT NULL, issued_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE line_item (distribution_id bigint NOT NULL REFERENCES distribution (id),
    item int NOT NULL, quantity int NOT NULL);
CREATE TABLE balance (item int PRIMARY KEY, quantity int NOT NULL CHECK (quantity >= 0));
CREATE TABLE outbox (id uuid PRIMARY KEY, event_type text NOT NULL, envelope bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz);
INSERT INTO balance SELECT item, 100000000 FROM generate_series(1, 50) AS item;
";

/// Distributions take one of ten disjoint sets of 5 items (set `s`: items s, s+10, …, s+40), in
/// the API and in the baseline alike, so both meet the same row contention; the baseline
/// decrements in item order, as the inventory part locks them.
const SETS: usize = ITEMS / LINES;

fn baseline_script() -> String {
    let mut script = format!("\\set s random(1, {SETS})\n");
    for line in 1..=LINES {
        script.push_str(&format!("\\set i{line} :s + {}\n", (line - 1) * SETS));
    }
    script.push_str(
        "BEGIN;\nINSERT INTO distribution (organization_id, partner_id, storage_location_id, issued_at) \
         VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), now()) RETURNING id \\gset\n",
    );
    for line in 1..=LINES {
        script.push_str(&format!(
            "INSERT INTO line_item (distribution_id, item, quantity) VALUES (:id, :i{line}, 1);\n"
        ));
    }
    for line in 1..=LINES {
        script.push_str(&format!(
            "UPDATE balance SET quantity = quantity - 1 WHERE item = :i{line} AND quantity >= 1;\n"
        ));
    }
    script.push_str(
        "INSERT INTO outbox (id, event_type, envelope) VALUES (gen_random_uuid(), 'distribution.created', '\\x00');\nCOMMIT;\n",
    );
    script
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .unwrap_or(10);
    let mail = tempfile::tempdir().expect("a mail directory");
    let mail_dir = mail.path().display().to_string();
    let stack = Stack::start_with(&essentials_integration_tests::ALL_PARTS, |settings| {
        settings.smtp.mail_dir = mail_dir;
    })
    .await;
    let http = stack.http().unchecked();
    let root = http.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    post(
        &http,
        "/api/v1/organizations",
        &root,
        json!({"name": "Load Bank", "email": "info@load.test", "admin_email": "admin@load.test"}),
    )
    .await;
    let admin = essentials_integration_tests::accept(&stack, "admin@load.test").await;
    let location = id(&post(
        &http,
        "/api/v1/storage_locations",
        &admin,
        json!({"name": "Load Warehouse", "address": "1 Main"}),
    )
    .await);
    let mut items = Vec::new();
    for index in 0..ITEMS {
        items.push(id(&post(
            &http,
            "/api/v1/items",
            &admin,
            json!({"name": format!("Load Item {index:02}")}),
        )
        .await));
    }
    let lines: Vec<_> = items
        .iter()
        .map(|item| json!({"item_id": item, "quantity": 1_000_000}))
        .collect();
    post(
        &http,
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location, "line_items": lines}),
    )
    .await;
    let partner = id(&post(
        &http,
        "/api/v1/partners",
        &admin,
        json!({"name": "Load Partner", "email": "partner@load.test", "send_reminders": true}),
    )
    .await);
    post(
        &http,
        &format!("/api/v1/partners/{partner}/invite_and_approve"),
        &admin,
        json!({}),
    )
    .await;
    let issued_at = tomorrow();
    let bodies: Vec<Bytes> = (0..SETS)
        .map(|set| {
            let lines: Vec<_> = (0..LINES)
                .map(|line| json!({"item_id": items[set + line * SETS], "quantity": 1}))
                .collect();
            Bytes::from(
                serde_json::to_vec(&json!({
                    "partner_id": partner, "storage_location_id": location,
                    "issued_at": issued_at, "delivery_method": "pick_up",
                    "line_items": lines,
                }))
                .expect("json"),
            )
        })
        .collect();
    let bodies = Arc::new(bodies);

    // The baseline's database and script, beside the suite's.
    let baseline_db = format!("{}_pgbench", stack.settings.database.prefix);
    let admin_pool = sqlx::PgPool::connect(&stack.settings.database.url)
        .await
        .expect("postgres");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {baseline_db}"
    )))
    .execute(&admin_pool)
    .await
    .expect("drop");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {baseline_db}"
    )))
    .execute(&admin_pool)
    .await
    .expect("create");
    let baseline_url = format!(
        "{}/{baseline_db}",
        stack.settings.database.url.trim_end_matches('/')
    );
    let baseline_pool = sqlx::PgPool::connect(&baseline_url)
        .await
        .expect("baseline database");
    sqlx::raw_sql(BASELINE_SCHEMA)
        .execute(&baseline_pool)
        .await
        .expect("baseline schema");
    baseline_pool.close().await;
    let script = tempfile::NamedTempFile::new().expect("a script file");
    std::fs::write(script.path(), baseline_script()).expect("script");

    let base = format!("http://{}", stack.gateway);
    // Warm-up: connections, prepared statements, caches.
    load(&base, &admin, bodies.clone(), 4, 2).await;
    let mut rows = Vec::new();
    let mut breakdown = Vec::new();
    for clients in [1, 8, 16] {
        let before = grpc_time();
        let level = load(&base, &admin, bodies.clone(), clients, seconds).await;
        if clients == 8 {
            let after = grpc_time();
            for (method, (calls, seconds_spent)) in after {
                let (calls_before, spent_before) = before.get(&method).copied().unwrap_or_default();
                let calls = calls - calls_before;
                if calls > 0.0 {
                    breakdown.push((
                        method,
                        calls / level.ok.max(1) as f64,
                        (seconds_spent - spent_before) / calls * 1000.0,
                    ));
                }
            }
        }
        let baseline = pgbench(&baseline_url, script.path(), clients, seconds);
        rows.push((level, baseline));
    }
    println!(
        "\nW1: POST /api/v1/distributions, {LINES} lines, {ITEMS} items in stock, {seconds} s per level\n"
    );
    println!(
        "| clients | API distributions/s | p50 | p99 | errors | RSS (MiB) | pgbench tps (same SQL) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (level, baseline) in &rows {
        println!(
            "| {} | {:.0} | {:.1} ms | {:.1} ms | {} | {:.0} | {:.0} | {:.2} |",
            level.clients,
            level.per_second,
            level.p50.as_secs_f64() * 1000.0,
            level.p99.as_secs_f64() * 1000.0,
            level.errors,
            level.rss,
            baseline,
            level.per_second / baseline.max(1.0)
        );
    }
    let notification = essentials_runtime::db::pool(&stack.settings, "notification").expect("pool");
    let inventory = essentials_runtime::db::pool(&stack.settings, "inventory").expect("pool");
    // Let the load's backlog drain first (events published, every e-mail sent), so that only
    // this distribution's e-mail can move the counts: the lag of an idle suite.
    let drained = Instant::now();
    loop {
        let events = essentials_runtime::bus::pending_count(&inventory)
            .await
            .unwrap_or(1);
        let mails: i64 = sqlx::query_scalar("SELECT count(*) FROM email WHERE status = 'pending'")
            .fetch_one(&notification)
            .await
            .unwrap_or(1);
        if events == 0 && mails == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "\nthe load's backlog (events and e-mails) drained {:.1} s after it",
        drained.elapsed().as_secs_f64()
    );
    inventory.close().await;
    let (to_email, to_dashboard) = event_lag(&http, &admin, &bodies, &notification, 100).await;
    notification.close().await;
    println!("\nW4: event lag from the 201 of a distribution, 100 made one at a time\n");
    println!("| to | p50 | p99 |");
    println!("|---|---|---|");
    for (to, lags) in [
        ("e-mail sent", &to_email),
        ("dashboard store", &to_dashboard),
    ] {
        println!(
            "| {to} | {:.1} ms | {:.1} ms |",
            percentile(lags, 0.5).as_secs_f64() * 1000.0,
            percentile(lags, 0.99).as_secs_f64() * 1000.0
        );
    }
    println!("\nWhere a distribution's time goes at 8 clients (gRPC calls the parts served):\n");
    println!("| method | calls per distribution | mean per call |");
    println!("|---|---|---|");
    for (method, per_distribution, mean_ms) in breakdown {
        println!("| {method} | {per_distribution:.2} | {mean_ms:.1} ms |");
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {baseline_db} WITH (FORCE)"
    )))
    .execute(&admin_pool)
    .await
    .ok();
    admin_pool.close().await;
    stack.stop().await;
}
