//! Page latency of the web application for a large bank: starts every part and the gateway in
//! this process (on databases and bus names of its own), seeds a bank with 500 partners and
//! 20,000 distributions through the API, signs in through the sign-in form, then requests each
//! page in turn and prints p50/p99 per page. Run it optimised:
//! `cargo run --release -p essentials-integration-tests --bin bench-pages [-- PARTNERS DISTRIBUTIONS ROUNDS]`.

use std::time::{Duration, Instant};

use essentials_integration_tests::cycle::{id, post};
use essentials_integration_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Http, PASSWORD, Stack};
use serde_json::json;

fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .nth(index)
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// `cookie=value` pairs from an answer's Set-Cookie headers.
fn cookies(answer: &essentials_integration_tests::Answer) -> Vec<String> {
    answer
        .headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .filter_map(|(_, value)| value.split(';').next().map(str::to_owned))
        .collect()
}

/// Signs in through the form; the browser's Cookie header.
async fn sign_in(web: &Http, email: &str) -> String {
    let page = web.send("GET", "/sign-in", None, "", b"", &[]).await;
    let csrf_cookie = cookies(&page).join("; ");
    let html = page.body.as_str().unwrap_or_default().to_owned();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token on the sign-in page");
    let body = format!(
        "csrf={token}&email={}&password={}",
        form_urlencoded(email),
        form_urlencoded(PASSWORD)
    );
    let signed_in = web
        .send(
            "POST",
            "/sign-in",
            None,
            "application/x-www-form-urlencoded",
            body.as_bytes(),
            &[("Cookie", &csrf_cookie)],
        )
        .await;
    assert_eq!(signed_in.status, 303, "sign-in: {:?}", signed_in.body);
    let mut all = vec![csrf_cookie];
    all.extend(cookies(&signed_in));
    all.join("; ")
}

fn form_urlencoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let partners = arg(1, 500);
    let distributions = arg(2, 20_000);
    let rounds = arg(3, 200);
    let mail = tempfile::tempdir().expect("a mail directory");
    let mail_dir = mail.path().display().to_string();
    let stack = Stack::start_with(&essentials_integration_tests::ALL_PARTS, |settings| {
        settings.smtp.mail_dir = mail_dir;
        settings.database.max_connections = 10;
    })
    .await;
    let http = stack.http().unchecked();

    let seeding = Instant::now();
    let root = http.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let bank = post(
        &http,
        "/api/v1/organizations",
        &root,
        json!({"name": "Bench Bank", "email": "info@bench.test", "admin_email": "admin@bench.test"}),
    )
    .await;
    assert_eq!(bank.status, 201, "{:?}", bank.body);
    let admin = essentials_integration_tests::accept(&stack, "admin@bench.test").await;
    let item = id(&post(
        &http,
        "/api/v1/items",
        &admin,
        json!({"name": "Bench Diapers"}),
    )
    .await);
    let location = id(&post(
        &http,
        "/api/v1/storage_locations",
        &admin,
        json!({"name": "Bench Warehouse", "address": "1 Main"}),
    )
    .await);
    post(
        &http,
        "/api/v1/donations",
        &admin,
        json!({"storage_location_id": location, "line_items": [{"item_id": item, "quantity": distributions * 2 + 10}]}),
    )
    .await;
    let mut csv = String::from("name,email\n");
    for index in 0..partners {
        csv.push_str(&format!(
            "Bench Partner {index:04},partner{index}@bench.test\n"
        ));
    }
    let imported = http
        .send(
            "POST",
            "/api/v1/partners/import",
            Some(&admin),
            "text/csv",
            csv.as_bytes(),
            &[],
        )
        .await;
    assert_eq!(imported.status, 200, "{:?}", imported.body);
    assert_eq!(imported.body["imported"], partners, "{:?}", imported.body);
    let mut partner_ids: Vec<String> = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = http
            .json(
                "GET",
                &format!("/api/v1/partners?page_size=100&page_token={page_token}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        partner_ids.extend(
            page.body["items"]
                .as_array()
                .expect("partners")
                .iter()
                .filter_map(|partner| partner["id"].as_str().map(str::to_owned)),
        );
        match page.body["next_page_token"].as_str() {
            Some(next) if !next.is_empty() => page_token = next.to_owned(),
            _ => break,
        }
    }
    assert_eq!(partner_ids.len(), partners, "every imported partner listed");
    // Distributions over the last two years and the next month, 16 at a time.
    let now = time::OffsetDateTime::now_utc();
    let span = 760 * 24 * 3600 / distributions.max(1) as i64;
    let writers = 16;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (http, admin, item, location) = (http, admin.clone(), item.clone(), location.clone());
        let partner_ids = partner_ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut index = writer;
            while index < distributions {
                let issued =
                    now - time::Duration::days(730) + time::Duration::seconds(span * index as i64);
                let issued = issued
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("a time");
                let made = post(
                    &http,
                    "/api/v1/distributions",
                    &admin,
                    json!({"partner_id": partner_ids[index % partner_ids.len()],
                           "storage_location_id": location, "issued_at": issued,
                           "delivery_method": "pick_up",
                           "line_items": [{"item_id": item, "quantity": 1}]}),
                )
                .await;
                assert_eq!(made.status, 201, "{:?}", made.body);
                index += writers;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a writer");
    }
    println!(
        "seeded {partners} partners and {distributions} distributions in {:.0} s",
        seeding.elapsed().as_secs_f64()
    );

    let web = http;
    let cookie = sign_in(&web, "admin@bench.test").await;
    let some_partner = &partner_ids[partner_ids.len() / 2];
    let listed = http
        .json(
            "GET",
            "/api/v1/distributions?page_size=1",
            Some(&admin),
            None,
        )
        .await;
    let some_distribution = listed.body["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pages = [
        "/".to_owned(),
        "/partners".to_owned(),
        "/partners?status=uninvited&q=Partner%2002".to_owned(),
        format!("/partners/{some_partner}"),
        format!("/partners/{some_partner}/edit"),
        "/requests".to_owned(),
        "/distributions".to_owned(),
        "/distributions?upcoming=0".to_owned(),
        format!("/distributions?upcoming=0&partner_id={some_partner}"),
        format!("/distributions/{some_distribution}"),
        format!("/distributions/{some_distribution}/receipt"),
        "/distributions/new".to_owned(),
        "/partner_groups".to_owned(),
        "/users".to_owned(),
    ];
    println!();
    println!("| page | requests | errors | p50 | p99 |");
    println!("|---|---|---|---|---|");
    let mut worst = Duration::ZERO;
    for page in &pages {
        // Warm-up: connections, caches.
        for _ in 0..5 {
            web.send("GET", page, None, "", b"", &[("Cookie", &cookie)])
                .await;
        }
        let mut times = Vec::with_capacity(rounds);
        let mut errors = 0;
        for _ in 0..rounds {
            let started = Instant::now();
            let answer = web
                .send("GET", page, None, "", b"", &[("Cookie", &cookie)])
                .await;
            times.push(started.elapsed());
            if answer.status != 200 {
                errors += 1;
            }
        }
        times.sort();
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        worst = worst.max(p99);
        println!(
            "| `{page}` | {rounds} | {errors} | {:.1} ms | {:.1} ms |",
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0
        );
    }
    println!();
    println!(
        "worst p99: {:.1} ms (target 50 ms)",
        worst.as_secs_f64() * 1000.0
    );
    stack.stop().await;
}
