//! The `essentials` binary as an operator runs it, against the real PostgreSQL and RabbitMQ.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use essentials_runtime::testing::{self, wait_until};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const PARTS: [&str; 4] = ["partner", "request", "inventory", "notification"];
const DEADLINE: Duration = Duration::from_secs(60);

/// Environment for an isolated run: own database and bus prefixes, every port chosen by the OS.
fn isolated_env() -> (String, Vec<(String, String)>) {
    let prefix = testing::unique_name("t");
    let mut env = vec![
        ("ESSENTIALS__DATABASE__PREFIX".to_owned(), prefix.clone()),
        ("ESSENTIALS__BUS__PREFIX".to_owned(), prefix.clone()),
        (
            "ESSENTIALS__GATEWAY__LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        (
            "ESSENTIALS__METRICS__LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        ("ESSENTIALS__LOG__FORMAT".to_owned(), "json".to_owned()),
        // The run's queues go away a minute after it stops.
        (
            "ESSENTIALS__BUS__QUEUE_EXPIRES_MS".to_owned(),
            "60000".to_owned(),
        ),
        ("RUST_LOG".to_owned(), "info".to_owned()),
    ];
    for part in PARTS {
        env.push((
            format!("ESSENTIALS__{}__LISTEN", part.to_uppercase()),
            "127.0.0.1:0".to_owned(),
        ));
    }
    (prefix, env)
}

fn essentials(args: &[&str], env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_essentials"));
    command
        .args(args)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Reads the JSON log until every part and the gateway said where it listens.
async fn listening_addresses(child: &mut Child) -> HashMap<String, String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut addresses = HashMap::new();
    let found = tokio::time::timeout(DEADLINE, async {
        while addresses.len() < 5 {
            let Some(line) = lines.next_line().await.expect("read log") else {
                panic!("essentials exited before listening; got {addresses:?}");
            };
            let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if record["message"] == "listening" {
                let part = record["part"].as_str().unwrap_or_default().to_owned();
                let addr = record["addr"].as_str().unwrap_or_default().to_owned();
                addresses.insert(part, addr);
            }
        }
    })
    .await;
    assert!(found.is_ok(), "not every part listened: {addresses:?}");
    // Keep draining the log so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    addresses
}

async fn health(addr: &str, service: &str) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .ok()?;
    Some(response.into_inner().status())
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
async fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `essentials probe <target> <addr>`: whether it exited 0, and what it said on stderr.
async fn probe(target: &str, addr: &str, env: &[(String, String)]) -> (bool, String) {
    let output = essentials(&["probe", target, addr], env)
        .output()
        .await
        .expect("run essentials probe");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("stopped within 10 s of SIGTERM")
        .expect("exit status")
}

fn settings_for(prefix: &str) -> essentials_runtime::Settings {
    let mut settings = essentials_runtime::Settings::default();
    settings.database.prefix = prefix.to_owned();
    settings.bus.prefix = prefix.to_owned();
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_starts_reports_serving_and_stops_cleanly_on_sigterm() {
    let (prefix, env) = isolated_env();
    let mut child = essentials(&["all"], &env)
        .spawn()
        .expect("spawn essentials");
    let addresses = listening_addresses(&mut child).await;

    for part in PARTS {
        let addr = addresses[part].clone();
        wait_until(DEADLINE, &format!("{part} to report SERVING"), || {
            let addr = addr.clone();
            async move { health(&addr, "").await == Some(ServingStatus::Serving) }
        })
        .await;
        assert_eq!(
            health(&addr, "liveness").await,
            Some(ServingStatus::Serving)
        );
        assert_eq!(
            health(&addr, "essentials.bus").await,
            Some(ServingStatus::Serving)
        );
        let (healthy, said) = probe(part, &addr, &env).await;
        assert!(healthy, "probe {part}: {said}");
    }
    let gateway = addresses["gateway"].clone();
    let (status, body) = http_get(&gateway, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    wait_until(DEADLINE, "/readyz to be 200", || {
        let gateway = gateway.clone();
        async move { http_get(&gateway, "/readyz").await.0 == 200 }
    })
    .await;
    let (healthy, said) = probe("gateway", &gateway, &env).await;
    assert!(healthy, "probe gateway: {said}");
    let (_, ready) = http_get(&gateway, "/readyz").await;
    for part in PARTS {
        assert!(
            ready.contains(&format!("\"{part}\":\"serving\"")),
            "{ready}"
        );
    }
    let (status, metrics) = http_get(&gateway, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("bus_connected"), "{metrics}");
    // An unknown API route is the JSON error; any other unknown path the web application's page.
    let (status, body) = http_get(&gateway, "/api/v1/no/such/route").await;
    assert_eq!(status, 404);
    assert!(body.contains("\"code\":\"NOT_FOUND\""), "{body}");
    let (status, body) = http_get(&gateway, "/no/such/route").await;
    assert_eq!(status, 404);
    assert!(body.contains("<h1>Not found</h1>"), "{body}");

    let exit = terminate(&mut child).await;
    assert!(exit.success(), "clean exit after SIGTERM, got {exit:?}");
    let settings = settings_for(&prefix);
    testing::drop_databases(&settings, &PARTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_a_part_is_down() {
    let (prefix, env) = isolated_env();
    // The gateway alone, pointed at parts that do not run.
    let mut env = env;
    for (index, part) in PARTS.iter().enumerate() {
        env.push((
            format!("ESSENTIALS__{}__URL", part.to_uppercase()),
            format!("http://127.0.0.1:{}", 9 + index),
        ));
    }
    let mut child = essentials(&["gateway"], &env)
        .spawn()
        .expect("spawn gateway");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let gateway = tokio::time::timeout(DEADLINE, async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("read")
                .expect("gateway running");
            if let Ok(record) = serde_json::from_str::<serde_json::Value>(&line)
                && record["message"] == "listening"
            {
                return record["addr"].as_str().unwrap_or_default().to_owned();
            }
        }
    })
    .await
    .expect("gateway listens");
    let (status, body) = http_get(&gateway, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"partner\":\"unreachable\""), "{body}");
    assert_eq!(
        http_get(&gateway, "/healthz").await.0,
        200,
        "alive though not ready"
    );
    // The container health check: unhealthy while a part is down, and says why.
    let (healthy, said) = probe("gateway", &gateway, &env).await;
    assert!(!healthy, "the gateway is not ready");
    assert!(said.contains("answered 503"), "{said}");
    let (healthy, said) = probe("partner", "127.0.0.1:9", &env).await;
    assert!(!healthy, "nothing serves the partner part there");
    assert!(said.contains("cannot reach 127.0.0.1:9"), "{said}");
    let exit = terminate(&mut child).await;
    assert!(exit.success());
    let _ = prefix;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_creates_every_database_and_exits() {
    let (prefix, env) = isolated_env();
    let output = essentials(&["migrate"], &env)
        .output()
        .await
        .expect("run migrate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let settings = settings_for(&prefix);
    for part in PARTS {
        let pool = essentials_runtime::db::pool(&settings, part).expect("pool");
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|error| panic!("{part} database migrated: {error}"));
        assert_eq!(outbox, 0);
        pool.close().await;
    }
    testing::drop_databases(&settings, &PARTS).await;
}

#[tokio::test]
async fn bad_setting_stops_the_process_and_names_the_key() {
    let (_, mut env) = isolated_env();
    env.push(("ESSENTIALS__BUS__PREFETCH".to_owned(), "many".to_owned()));
    let output = essentials(&["all"], &env).output().await.expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bus.prefetch"), "{stderr}");
}

#[tokio::test]
async fn unknown_command_prints_usage() {
    let output = essentials(&["bogus"], &[]).output().await.expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: essentials"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otlp_endpoint_with_nothing_listening_neither_crashes_nor_hangs() {
    let (prefix, env) = isolated_env();
    let started = std::time::Instant::now();
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        essentials(&["migrate"], &env)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
            .output(),
    )
    .await
    .expect("no hang")
    .expect("ran");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    testing::drop_databases(&settings_for(&prefix), &PARTS).await;
}
