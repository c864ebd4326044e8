//! A bounded fuzz test of the gateway's request decoding: random and mutated JSON bodies and
//! query strings are sent, through the real router, to every route that takes input. No answer
//! may be a 500: bad input is a 4xx, and input that decodes reaches the parts (here: none are
//! running, so 503). Deterministic (fixed seed) and bounded by a case count.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use essentials_gateway::{AppState, Upstreams, router};
use essentials_runtime::Settings;
use essentials_runtime::auth::{Claims, Role, TokenSigner, TokenVerifier};
use tower::ServiceExt;

/// Cases per route; with about 60 routes this stays within a few seconds.
const CASES_PER_ROUTE: usize = 40;

const ID: &str = "0190e4a0-0000-7000-8000-000000000001";

/// Every route that reads a body or a query, with a plausible body to mutate.
const ROUTES: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/api/v1/sessions",
        r#"{"email":"a@b.test","password":"secret!!"}"#,
    ),
    (
        "POST",
        "/api/v1/sessions/switch",
        r#"{"role_id":"0190e4a0-0000-7000-8000-000000000001"}"#,
    ),
    (
        "POST",
        "/api/v1/invitations/accept",
        r#"{"token":"abc","password":"secret!!","name":"A"}"#,
    ),
    ("POST", "/api/v1/password_resets", r#"{"email":"a@b.test"}"#),
    (
        "POST",
        "/api/v1/password_resets/complete",
        r#"{"token":"abc","password":"secret!!"}"#,
    ),
    (
        "POST",
        "/api/v1/service_tokens",
        r#"{"client_id":"svc_1","client_secret":"x"}"#,
    ),
    (
        "POST",
        "/api/v1/service_accounts",
        r#"{"name":"n","organization_id":null}"#,
    ),
    (
        "POST",
        "/api/v1/organizations",
        r#"{"name":"B","email":"b@b.test","admin_email":"a@b.test","admin_name":"A"}"#,
    ),
    (
        "PATCH",
        "/api/v1/organization",
        r#"{"name":"B","deadline_day":10,"enable_quantity_based_requests":true}"#,
    ),
    (
        "POST",
        "/api/v1/users",
        r#"{"email":"a@b.test","name":"A","role":"org_user"}"#,
    ),
    ("PATCH", "/api/v1/users/{id}", r#"{"role":"org_admin"}"#),
    ("GET", "/api/v1/partners?status=approved&page_size=10", ""),
    (
        "POST",
        "/api/v1/partners",
        r#"{"name":"P","email":"p@b.test","quota":10,"send_reminders":true}"#,
    ),
    (
        "PATCH",
        "/api/v1/partners/{id}",
        r#"{"name":"P","quota":null,"partner_group_id":null}"#,
    ),
    (
        "PUT",
        "/api/v1/partners/{id}/profile",
        r#"{"agency_information":{"name":"P","agency_type":"food_bank_pantry"},"area_served":[{"county":"K","client_share_percent":100}]}"#,
    ),
    (
        "POST",
        "/api/v1/partners/{id}/users",
        r#"{"email":"u@b.test","name":"U"}"#,
    ),
    (
        "POST",
        "/api/v1/partner_groups",
        r#"{"name":"G","item_category_ids":[],"deadline_day":10,"reminder_day":5}"#,
    ),
    ("PATCH", "/api/v1/partner_groups/{id}", r#"{"name":"G"}"#),
    (
        "PUT",
        "/api/v1/partner/profile",
        r#"{"contacts":{"primary_contact_name":"C"}}"#,
    ),
    (
        "POST",
        "/api/v1/partner/requests",
        r#"{"items":[{"item_id":"0190e4a0-0000-7000-8000-000000000001","quantity":2}],"comments":"c"}"#,
    ),
    ("GET", "/api/v1/partner/distributions?upcoming=true", ""),
    (
        "POST",
        "/api/v1/items",
        r#"{"name":"I","value_in_cents":100,"visible_to_partners":true}"#,
    ),
    (
        "PATCH",
        "/api/v1/items/{id}",
        r#"{"name":"I","active":false}"#,
    ),
    (
        "POST",
        "/api/v1/item_categories",
        r#"{"name":"C","description":"d"}"#,
    ),
    (
        "POST",
        "/api/v1/storage_locations",
        r#"{"name":"L","address":"a"}"#,
    ),
    (
        "GET",
        "/api/v1/inventory?storage_location_id=0190e4a0-0000-7000-8000-000000000001",
        "",
    ),
    (
        "POST",
        "/api/v1/donations",
        r#"{"storage_location_id":"0190e4a0-0000-7000-8000-000000000001","line_items":[{"item_id":"0190e4a0-0000-7000-8000-000000000001","quantity":5}]}"#,
    ),
    (
        "POST",
        "/api/v1/purchases",
        r#"{"storage_location_id":"0190e4a0-0000-7000-8000-000000000001","line_items":[{"item_id":"0190e4a0-0000-7000-8000-000000000001","quantity":5}]}"#,
    ),
    (
        "POST",
        "/api/v1/adjustments",
        r#"{"storage_location_id":"0190e4a0-0000-7000-8000-000000000001","comment":"c","line_items":[{"item_id":"0190e4a0-0000-7000-8000-000000000001","quantity":-5}]}"#,
    ),
    (
        "POST",
        "/api/v1/transfers",
        r#"{"from_storage_location_id":"0190e4a0-0000-7000-8000-000000000001","to_storage_location_id":"0190e4a0-0000-7000-8000-000000000002","line_items":[{"item_id":"0190e4a0-0000-7000-8000-000000000001","quantity":5}]}"#,
    ),
    (
        "POST",
        "/api/v1/audits",
        r#"{"storage_location_id":"0190e4a0-0000-7000-8000-000000000001","line_items":[{"item_id":"0190e4a0-0000-7000-8000-000000000001","quantity":5}]}"#,
    ),
    (
        "POST",
        "/api/v1/distributions",
        r#"{"partner_id":"0190e4a0-0000-7000-8000-000000000001","storage_location_id":"0190e4a0-0000-7000-8000-000000000001","issued_at":"2026-12-01T10:00:00Z","delivery_method":"pick_up","line_items":[{"item_id":"0190e4a0-0000-7000-8000-000000000001","quantity":5}]}"#,
    ),
    (
        "PATCH",
        "/api/v1/distributions/{id}",
        r#"{"delivery_method":"shipped","shipping_cost":100}"#,
    ),
    (
        "GET",
        "/api/v1/requests?status=pending&partner_id=0190e4a0-0000-7000-8000-000000000001",
        "",
    ),
    (
        "POST",
        "/api/v1/requests",
        r#"{"partner_id":"0190e4a0-0000-7000-8000-000000000001","items":[{"item_id":"0190e4a0-0000-7000-8000-000000000001","quantity":1}]}"#,
    ),
    ("POST", "/api/v1/requests/{id}/cancel", r#"{"reason":"r"}"#),
    ("GET", "/api/v1/emails?to=a@b.test", ""),
];

/// xorshift64*: a tiny deterministic generator, enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

const INTERESTING: &[&str] = &[
    "null",
    "true",
    "-1",
    "0",
    "1e309",
    "18446744073709551616",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "[null]",
    "\"\\u0000\"",
    "-9223372036854775809",
    "3.5",
    "\"not-a-uuid\"",
    "\"2026-13-45T99:00:00Z\"",
    "\"\u{1F600}\"",
    "{\"a\":{\"b\":{\"c\":[[[[]]]]}}}",
];

/// A mutated version of `seed`: replace a JSON value, flip, insert or delete bytes, or truncate.
fn mutate(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                // Swap the value after a colon for an interesting one.
                let colons: Vec<usize> = bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b':')
                    .map(|(i, _)| i)
                    .collect();
                if let Some(&at) = colons.get(rng.below(colons.len())) {
                    let end = bytes[at + 1..]
                        .iter()
                        .position(|b| *b == b',' || *b == b'}')
                        .map_or(bytes.len(), |offset| at + 1 + offset);
                    let value = INTERESTING[rng.below(INTERESTING.len())].as_bytes();
                    bytes.splice(at + 1..end, value.iter().copied());
                }
            }
            1 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] = u8::try_from(rng.next() & 0xff).unwrap_or(0);
            }
            2 => {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(at, b"{}[]\",:\\0-e9"[rng.below(12)]);
            }
            3 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes.remove(at);
            }
            4 => bytes.truncate(rng.below(bytes.len() + 1)),
            _ => {
                bytes = INTERESTING[rng.below(INTERESTING.len())]
                    .as_bytes()
                    .to_vec();
            }
        }
    }
    bytes
}

fn token(settings: &Settings) -> String {
    let signer = TokenSigner::from_settings(&settings.auth).expect("signer");
    let (token, _) = signer
        .sign(Claims {
            sub: uuid::Uuid::now_v7(),
            rid: uuid::Uuid::now_v7(),
            role: Role::OrgAdmin,
            org: Some(uuid::Uuid::now_v7()),
            ptn: Some(uuid::Uuid::now_v7()),
            svc: false,
            iat: 0,
            exp: 0,
            iss: String::new(),
        })
        .expect("token");
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_input_makes_the_gateway_answer_500() {
    let mut settings = Settings::default();
    for part in [
        &mut settings.partner,
        &mut settings.request,
        &mut settings.inventory,
        &mut settings.notification,
    ] {
        // Nothing listens on port 9: a body that decodes gets a clean 503 from the part call.
        part.url = "http://127.0.0.1:9".into();
    }
    let state = AppState {
        upstreams: Upstreams::from_settings(&settings).expect("upstreams"),
        verifier: TokenVerifier::from_settings(&settings.auth).expect("verifier"),
        settings: Arc::new(settings.clone()),
    };
    let app = router(state);
    let bearer = format!("Bearer {}", token(&settings));
    let mut rng = Rng(0x5eed_cafe_f00d_beef);
    let mut sent = 0;
    let (mut refused, mut passed_on) = (0, 0);
    for (method, path, seed) in ROUTES {
        let path = path.replace("{id}", ID);
        for case in 0..CASES_PER_ROUTE {
            let (uri, body) = if *method == "GET" {
                // Mutate the query string instead of a body.
                let (base, query) = path.split_once('?').unwrap_or((&path, ""));
                let mutated = String::from_utf8_lossy(&mutate(&mut rng, query)).into_owned();
                let encoded: String = mutated
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"=&_-.".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                (format!("{base}?{encoded}"), Vec::new())
            } else if case == 0 {
                (path.clone(), seed.as_bytes().to_vec())
            } else {
                (path.clone(), mutate(&mut rng, seed))
            };
            let request = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).expect("method"))
                .uri(&uri)
                .header("authorization", &bearer)
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .expect("request");
            let response = app.clone().oneshot(request).await.expect("an answer");
            let status = response.status().as_u16();
            assert!(
                (400..500).contains(&status)
                    || status == 503
                    || status == 200
                    || status == 201
                    || status == 204,
                "{method} {uri} with {:?} answered {status}",
                String::from_utf8_lossy(&body)
            );
            if status == 503 {
                passed_on += 1;
            } else if (400..500).contains(&status) {
                refused += 1;
            }
            sent += 1;
        }
    }
    assert_eq!(sent, ROUTES.len() * CASES_PER_ROUTE);
    // The run exercised both sides: bad input refused, good input decoded and passed on.
    assert!(refused > sent / 4, "{refused} of {sent} refused");
    assert!(passed_on >= ROUTES.len(), "{passed_on} of {sent} passed on");
}
