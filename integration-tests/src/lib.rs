//! Helpers for end-to-end tests: parts and the gateway started in this process with isolated
//! databases and bus names, and a small HTTP client for the public API that checks every answer
//! against the gateway's OpenAPI document.

pub mod browser;
pub mod contract;
pub mod cycle;
pub mod processes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use essentials_runtime::part::PartSpec;
use essentials_runtime::testing::{self, wait_until};
use essentials_runtime::{CancellationToken, Settings};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

pub const ADMIN_EMAIL: &str = "root@essentials.test";
pub const ADMIN_PASSWORD: &str = "root password!";

/// The four parts: a whole suite in this process.
pub static ALL_PARTS: [&PartSpec; 4] = [
    &essentials_partner::SPEC,
    &essentials_inventory::SPEC,
    &essentials_request::SPEC,
    &essentials_notification::SPEC,
];

/// Some parts and the gateway, running in this process.
pub struct Stack {
    pub settings: Settings,
    pub gateway: SocketAddr,
    parts: Vec<&'static str>,
    shutdown: CancellationToken,
}

impl Stack {
    /// Starts `parts` (each on a free port) and the gateway in front of them; parts not started
    /// point at a closed port.
    pub async fn start(parts: &[&'static PartSpec]) -> Self {
        Self::start_with(parts, |_| {}).await
    }

    /// Every part and the gateway, e-mailing through the SMTP listener at `smtp_url`.
    pub async fn everything(smtp_url: String) -> Self {
        Self::start_with(&ALL_PARTS, |settings| settings.smtp.url = Some(smtp_url)).await
    }

    /// Like `start`, with settings adjusted first.
    pub async fn start_with(
        parts: &[&'static PartSpec],
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::start_proxied(parts, adjust, &[]).await.0
    }

    /// Like `start_with`, the gateway reaching each part named in `proxied` through a
    /// [`TcpProxy`] (forwarding), so a test can cut or slow that hop alone; the parts reach each
    /// other directly.
    pub async fn start_proxied(
        parts: &[&'static PartSpec],
        adjust: impl FnOnce(&mut Settings),
        proxied: &[&str],
    ) -> (Self, Vec<testing::TcpProxy>) {
        let mut settings = testing::isolated_settings();
        adjust(&mut settings);
        settings.bootstrap.admin_email = Some(ADMIN_EMAIL.into());
        settings.bootstrap.admin_password = Some(ADMIN_PASSWORD.into());
        for part in [
            &mut settings.partner,
            &mut settings.request,
            &mut settings.inventory,
            &mut settings.notification,
        ] {
            // Port 9 (discard) is closed here: calls to a part not started fail fast.
            part.url = "http://127.0.0.1:9".into();
        }
        let shutdown = CancellationToken::new();
        testing::spawn_parts(parts, &mut settings, &shutdown).await;
        for spec in parts {
            let url = settings.part_mut(spec.name).expect("a part").url.clone();
            wait_serving(&url).await;
        }
        let mut gateway_settings = settings.clone();
        let mut proxies = Vec::new();
        for name in proxied {
            let part = gateway_settings.part_mut(name).expect("a part");
            let target = part
                .url
                .trim_start_matches("http://")
                .parse()
                .expect("a part at host:port");
            let proxy = testing::TcpProxy::start(target).await.expect("proxy");
            proxy.up();
            part.url = format!("http://{}", proxy.address());
            proxies.push(proxy);
        }
        let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let gateway = gateway_listener.local_addr().expect("address");
        let upstreams =
            essentials_gateway::Upstreams::from_settings(&gateway_settings).expect("upstreams");
        tokio::spawn(essentials_gateway::serve(
            Arc::new(gateway_settings),
            upstreams,
            gateway_listener,
            shutdown.clone(),
        ));
        let stack = Self {
            settings,
            gateway,
            parts: parts.iter().map(|spec| spec.name).collect(),
            shutdown,
        };
        (stack, proxies)
    }

    /// A client whose every answer is checked against the OpenAPI document.
    pub fn http(&self) -> Http {
        Http {
            address: self.gateway,
            check_contract: true,
        }
    }

    /// Events of `part` still waiting in its outbox (not yet confirmed by the broker).
    pub async fn pending_events(&self, part: &str) -> i64 {
        let pool = essentials_runtime::db::pool(&self.settings, part).expect("pool");
        let pending = essentials_runtime::bus::pending_count(&pool)
            .await
            .unwrap_or(-1);
        pool.close().await;
        pending
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        testing::drop_databases(&self.settings, &self.parts).await;
        testing::delete_bus_objects(&self.settings, &[]).await;
    }
}

impl cycle::Suite for Stack {
    fn http(&self) -> Http {
        Stack::http(self)
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// Waits until the part at `url` reports SERVING over gRPC health.
pub async fn wait_serving(url: &str) {
    wait_until(Duration::from_secs(60), "a part to serve", || serving(url)).await;
}

/// Whether the part at `url` answers SERVING over gRPC health now.
pub async fn serving(url: &str) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(url.to_owned()) else {
        return false;
    };
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|answer| answer.into_inner().status() == ServingStatus::Serving)
        .unwrap_or(false)
}

/// An answer: status, headers (lower-case names) and body (JSON when it parses, else a string).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A minimal HTTP/1.1 client (one connection per request) for the gateway.
#[derive(Clone, Copy)]
pub struct Http {
    pub address: SocketAddr,
    /// Panics on an answer the OpenAPI document does not describe (see [`contract`]).
    pub check_contract: bool,
}

impl Http {
    /// The same client without the contract check, for probing what is deliberately outside
    /// the document.
    pub fn unchecked(self) -> Self {
        Self {
            check_contract: false,
            ..self
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
        extra_headers: &[(&str, &str)],
    ) -> Answer {
        let mut stream = tokio::net::TcpStream::connect(self.address)
            .await
            .expect("connect");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        if !body.is_empty() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (name, value) in extra_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.write_all(body).await.expect("write body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let answer = parse_answer(&raw);
        let documented_route = !method.eq_ignore_ascii_case("OPTIONS")
            && !path.starts_with("/docs")
            && !path.starts_with(essentials_gateway::openapi::DOCUMENT_PATH);
        if self.check_contract
            && documented_route
            && let Err(mismatch) = contract::check_answer(method, path, answer.status, &answer.body)
        {
            panic!("the answer breaks the API contract: {mismatch}");
        }
        answer
    }

    pub async fn json(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let bytes = body
            .map(|value| value.to_string().into_bytes())
            .unwrap_or_default();
        self.send(method, path, token, "application/json", &bytes, &[])
            .await
    }
}

fn parse_answer(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The newest invitation token the partner part wrote for `email` (see
/// [`testing::invitation_token`]).
pub async fn invitation_token(settings: &Settings, email: &str) -> String {
    let pool = essentials_runtime::db::pool(settings, "partner").expect("pool");
    let token = testing::invitation_token(&pool, email).await;
    pool.close().await;
    token
}

/// The password the tests' users choose when they accept an invitation.
pub const PASSWORD: &str = "a good password!";

impl Http {
    /// Signs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let answer = self
            .json(
                "POST",
                "/api/v1/sessions",
                None,
                Some(serde_json::json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        answer.body["token"].as_str().expect("token").to_owned()
    }
}

/// Accepts the newest invitation of `email` (read from the partner part's outbox) with
/// [`PASSWORD`] and signs in.
pub async fn accept(stack: &Stack, email: &str) -> String {
    let http = stack.http();
    let token = invitation_token(&stack.settings, email).await;
    let accepted = http
        .json(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(serde_json::json!({"token": token, "password": PASSWORD})),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    http.login(email, PASSWORD).await
}

/// A bank created by the bootstrap super admin, whose admin accepted the invitation; returns the
/// admin's token.
pub async fn bank(stack: &Stack, name: &str, admin_email: &str) -> String {
    let http = stack.http();
    let root = http.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = http
        .json(
            "POST",
            "/api/v1/organizations",
            Some(&root),
            Some(serde_json::json!({"name": name, "email": "info@bank.test", "admin_email": admin_email})),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    accept(stack, admin_email).await
}
