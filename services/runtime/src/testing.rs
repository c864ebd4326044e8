//! Helpers for tests against the real PostgreSQL and RabbitMQ: isolated names, settings, clean-up,
//! waiting on a condition with a deadline, and a TCP proxy that can cut a connection.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::settings::Settings;

/// A name no other test run uses: `<stem>_<12 hex digits>`.
pub fn unique_name(stem: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{stem}_{}", &id[..12])
}

/// Default settings with a database prefix and a bus prefix of their own.
pub fn isolated_settings() -> Settings {
    let mut settings = Settings::default();
    let name = unique_name("t");
    settings.database.prefix = name.clone();
    settings.bus.prefix = name;
    settings.database.max_connections = 5;
    settings.relay.poll_interval_ms = 200;
    // A test's queues go away a minute after its consumers do, even when the test failed
    // before cleaning up (hundreds of left-over quorum queues slow the broker to a halt).
    settings.bus.queue_expires_ms = Some(60_000);
    // Tests and benchmarks send from one address as fast as they can; the limits have their own
    // tests (gateway/tests/operations.rs).
    settings.gateway.rate_limit.client_per_second = 0.0;
    settings.gateway.rate_limit.bank_per_second = 0.0;
    settings
}

/// Starts `specs` in this process, each on a free loopback port whose URL goes into `settings`
/// (so the parts and the test reach each other there); they stop on `shutdown`, and a part that
/// stops with an error fails the test.
pub async fn spawn_parts(
    specs: &[&'static crate::part::PartSpec],
    settings: &mut Settings,
    shutdown: &tokio_util::sync::CancellationToken,
) {
    let mut listeners = Vec::new();
    for spec in specs {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        settings
            .part_mut(spec.name)
            .unwrap_or_else(|| panic!("no settings for a part named {}", spec.name))
            .url = format!("http://{address}");
        listeners.push((*spec, listener));
    }
    let shared = Arc::new(settings.clone());
    for (spec, listener) in listeners {
        let run = crate::part::run(spec, shared.clone(), listener, shutdown.clone());
        tokio::spawn(async move {
            if let Err(error) = run.await {
                panic!("the {} part stopped: {error:#}", spec.name);
            }
        });
    }
}

/// The events of one type a part wrote to its outbox (`pool`), oldest first.
pub async fn outbox_events<P: essentials_proto::events::EventPayload>(
    pool: &sqlx::PgPool,
) -> Vec<P> {
    use prost::Message;
    let rows: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT envelope FROM outbox WHERE event_type = $1 ORDER BY seq")
            .bind(P::EVENT_TYPE)
            .fetch_all(pool)
            .await
            .expect("outbox");
    rows.iter()
        .map(|bytes| {
            let envelope = essentials_proto::events::v1::EventEnvelope::decode(bytes.as_slice())
                .expect("envelope");
            P::from_any(&envelope.payload.expect("payload")).expect("payload type")
        })
        .collect()
}

/// The newest invitation token the partner part wrote for `email` (`user.invited` or
/// `partner.invited`), read from its outbox (`partner_pool`) as the notification part receives it.
pub async fn invitation_token(partner_pool: &sqlx::PgPool, email: &str) -> String {
    use essentials_proto::events::EventPayload;
    use essentials_proto::events::v1 as events;
    use prost::Message;
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT event_type, envelope FROM outbox WHERE event_type = ANY($1) ORDER BY seq",
    )
    .bind([
        events::UserInvited::EVENT_TYPE,
        events::PartnerInvited::EVENT_TYPE,
    ])
    .fetch_all(partner_pool)
    .await
    .expect("outbox");
    let mut newest = None;
    for (event_type, bytes) in rows {
        let envelope = events::EventEnvelope::decode(bytes.as_slice()).expect("envelope");
        let payload = envelope.payload.expect("payload");
        let (invitee, token) = if event_type == events::UserInvited::EVENT_TYPE {
            let event = events::UserInvited::from_any(&payload).expect("user.invited");
            (event.invitee, event.invitation_token)
        } else {
            let event = events::PartnerInvited::from_any(&payload).expect("partner.invited");
            (event.invitee, event.invitation_token)
        };
        if invitee.is_some_and(|person| person.email == email) {
            newest = Some(token);
        }
    }
    newest.unwrap_or_else(|| panic!("no invitation for {email}"))
}

/// A bank created by the super admin (`root`'s token) through the partner part: (its id, its
/// admin's e-mail, `admin@<name as a slug>.test`, who is invited and has yet to accept).
pub async fn create_bank(
    partner: tonic::transport::Channel,
    root: &str,
    name: &str,
) -> (String, String) {
    use essentials_proto::partner::v1 as pb;
    let slug = name.to_lowercase().replace(' ', "-");
    let admin_email = format!("admin@{slug}.test");
    let created = pb::organization_service_client::OrganizationServiceClient::new(partner)
        .create_organization(authorized(
            root,
            pb::CreateOrganizationRequest {
                organization: Some(pb::Organization {
                    name: name.into(),
                    email: format!("info@{slug}.test"),
                    ..Default::default()
                }),
                admin_email: admin_email.clone(),
                admin_name: "Admin".into(),
                request_id: String::new(),
            },
        ))
        .await
        .expect("bank created")
        .into_inner();
    (created.organization.expect("organization").id, admin_email)
}

/// `message` with `authorization: Bearer <token>`, as a caller sends it.
pub fn authorized<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

/// Waits until `condition` holds, checking every 25 ms; fails with `what` at the deadline.
pub async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return;
        }
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Drops the databases of these parts (best effort, for test clean-up).
pub async fn drop_databases(settings: &Settings, parts: &[&str]) {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    let Ok(options) = sqlx::postgres::PgConnectOptions::from_str(&settings.database.url) else {
        return;
    };
    let Ok(mut connection) = options.database("postgres").connect().await else {
        return;
    };
    for part in parts {
        let statement = format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            settings.database_name(part)
        );
        let _ = sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut connection)
            .await;
    }
}

/// Deletes a test's exchanges and queues (best effort).
pub async fn delete_bus_objects(settings: &Settings, queues: &[String]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(connection) = crate::bus::connect(&settings.bus.url, "test-cleanup").await else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    for queue in queues {
        for name in [queue.clone(), crate::bus::dead_letter_queue(queue)] {
            let _ = channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    for exchange in [
        crate::bus::events_exchange(&settings.bus.prefix),
        crate::bus::dead_letter_exchange(&settings.bus.prefix),
    ] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "done".into()).await;
}

/// A TCP proxy on loopback in front of a real server. While "down" it accepts connections and
/// closes them at once (a broker that is unreachable, counted so a test can wait for a client's
/// attempts); while "up" it forwards. Going down also cuts every open connection.
pub struct TcpProxy {
    address: SocketAddr,
    forwarding: Arc<AtomicBool>,
    /// Added before each chunk is passed on, in either direction (ms).
    latency_ms: Arc<std::sync::atomic::AtomicU64>,
    refused: Arc<AtomicUsize>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts the proxy on a free loopback port, down.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let forwarding = Arc::new(AtomicBool::new(false));
        let latency_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let forwarding = forwarding.clone();
            let latency_ms = latency_ms.clone();
            let refused = refused.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if !forwarding.load(Ordering::SeqCst) {
                        refused.fetch_add(1, Ordering::SeqCst);
                        drop(inbound);
                        continue;
                    }
                    let latency_ms = latency_ms.clone();
                    let forward = tokio::spawn(async move {
                        if let Ok(outbound) = TcpStream::connect(target).await {
                            let (client_read, client_write) = inbound.into_split();
                            let (server_read, server_write) = outbound.into_split();
                            tokio::join!(
                                pass_on(client_read, server_write, latency_ms.clone()),
                                pass_on(server_read, client_write, latency_ms),
                            );
                        }
                    });
                    connections.lock().await.push(forward);
                }
            })
        };
        Ok(Self {
            address,
            forwarding,
            latency_ms,
            refused,
            connections,
            accept,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Connections refused while down, so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    pub fn up(&self) {
        self.forwarding.store(true, Ordering::SeqCst);
    }

    /// Delays every chunk passed on, both ways, by `latency` (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// Refuses new connections and cuts the open ones.
    pub async fn down(&self) {
        self.forwarding.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().await.drain(..) {
            connection.abort();
        }
    }
}

/// Copies one direction of a proxied connection, waiting the proxy's latency before each chunk.
async fn pass_on(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    latency_ms: Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let latency = latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
