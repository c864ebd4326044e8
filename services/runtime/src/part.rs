//! Running one part: database, outbox relay, consumers, gRPC server, readiness and an orderly
//! shutdown. Each service crate describes itself with a [`PartSpec`]; the binary runs specs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::auth::TokenVerifier;
use crate::bus::{BusStatus, OutboxRelay};
use crate::settings::Settings;

/// The health service name that reports the live broker state.
pub const BUS_HEALTH_SERVICE: &str = "essentials.bus";

/// The health service name that liveness probes ask for.
pub const LIVENESS_HEALTH_SERVICE: &str = "liveness";

/// How long workers (relay, consumers) get to finish after the server stops.
const WORKER_GRACE: Duration = Duration::from_secs(5);

/// What a running part hands to its services.
#[derive(Clone)]
pub struct PartContext {
    pub name: &'static str,
    pub settings: Arc<Settings>,
    pub pool: PgPool,
    pub verifier: TokenVerifier,
    pub bus: BusStatus,
    /// Workers' token: cancelled once the gRPC server has drained, so in-flight calls can still
    /// enqueue events while it stops.
    pub shutdown: CancellationToken,
    /// Cancelled as soon as the part starts stopping: long-lived streams end on it, so that the
    /// server can drain.
    pub stopping: CancellationToken,
}

/// A background task of a part (a consumer, a scheduler).
pub struct Worker {
    pub name: String,
    pub task: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Worker {
    pub fn new(name: impl Into<String>, task: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            name: name.into(),
            task: Box::pin(task),
        }
    }
}

/// The gRPC services and workers a part runs.
pub struct PartServices {
    pub routes: tonic::service::Routes,
    /// Fully qualified names of the gRPC services, marked SERVING when the part is ready.
    pub service_names: Vec<&'static str>,
    pub workers: Vec<Worker>,
    /// Tasks that finish before the part reports SERVING (e.g. creating the configured first
    /// user), so that a caller who waits for readiness finds their effects.
    pub startup: Vec<Worker>,
    /// Method path prefixes (`/package.Service/` or `/package.Service/Method`) the idempotency
    /// layer leaves alone: streams (never buffered), calls whose answers carry secrets that must
    /// never be stored, and creating calls that claim their `request_id` inside their own
    /// transaction (a second claim in the layer would only add writes).
    pub not_idempotent: Vec<&'static str>,
}

/// How a service crate describes itself to the runtime.
pub struct PartSpec {
    /// `partner`, `request`, `inventory` or `notification`: names the database and the queues.
    pub name: &'static str,
    pub migrator: &'static Migrator,
    pub build: fn(&PartContext) -> anyhow::Result<PartServices>,
}

impl PartSpec {
    /// Creates (if needed) and migrates this part's database.
    pub async fn migrate(&self, settings: &Settings) -> anyhow::Result<PgPool> {
        crate::db::prepare(settings, self.name, self.migrator).await
    }
}

/// Binds a part's gRPC listener; port 0 picks a free port.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|error| anyhow::anyhow!("could not listen on {address}: {error}"))
}

/// Runs a part until `shutdown`: serves gRPC at once (health NOT_SERVING, so probes get an answer
/// while the database is unreachable), prepares and migrates its database (retrying), then starts
/// the relay and the part's workers, runs its start-up tasks, and reports SERVING once the broker
/// has been reached; stops in order: server, workers, relay.
pub async fn run(
    spec: &'static PartSpec,
    settings: Arc<Settings>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    // Lazy: no connection is made until the database has been prepared below.
    let pool = crate::db::pool(&settings, spec.name)?;
    let verifier = TokenVerifier::from_settings(&settings.auth)?;
    let revocations = crate::revocation::spawn(
        &verifier,
        crate::grpc::channel(&settings.partner.url)?,
        &settings,
        shutdown.clone(),
    );
    let bus = BusStatus::default();
    // Workers stop after the server has drained, so in-flight calls can still enqueue events.
    let workers_shutdown = CancellationToken::new();
    let context = PartContext {
        name: spec.name,
        settings: settings.clone(),
        pool: pool.clone(),
        verifier: verifier.clone(),
        bus: bus.clone(),
        shutdown: workers_shutdown.clone(),
        stopping: shutdown.clone(),
    };
    let services = (spec.build)(&context)?;
    let context_verifier = verifier.clone();

    let (reporter, health) = tonic_health::server::health_reporter();
    // Liveness: SERVING for as long as the process answers at all (Kubernetes probes it).
    reporter
        .set_service_status(
            LIVENESS_HEALTH_SERVICE,
            tonic_health::ServingStatus::Serving,
        )
        .await;
    crate::grpc::set_serving(&reporter, &services.service_names, false).await;
    reporter
        .set_service_status(BUS_HEALTH_SERVICE, tonic_health::ServingStatus::NotServing)
        .await;
    let gate = crate::grpc::ReadyGateLayer::default();
    let starting = tokio::spawn(start_when_database_ready(
        spec,
        settings.clone(),
        pool.clone(),
        Background {
            workers: services.workers,
            startup: services.startup,
            reporter,
            service_names: services.service_names.clone(),
            bus,
            gate: gate.clone(),
        },
        shutdown.clone(),
        workers_shutdown.clone(),
    ));
    tracing::info!(part = spec.name, addr = %address, "listening");
    let idempotency =
        crate::idempotency::IdempotencyLayer::new(pool.clone(), verifier, services.not_idempotent);
    let served = crate::grpc::serve(
        listener,
        services.routes.add_service(
            essentials_proto::common::v1::audit_service_server::AuditServiceServer::with_interceptor(
                crate::audit::AuditGrpc::new(spec.name, pool.clone()),
                crate::auth::AuthInterceptor::new(context_verifier),
            ),
        ),
        health,
        shutdown.clone(),
        idempotency,
        gate,
    )
    .await;
    workers_shutdown.cancel();
    // Still preparing the database (waiting for it, or for another replica's migration): stop
    // that; once it has started the workers it is done and hands them over.
    starting.abort();
    let mut workers = starting.await.ok().flatten().unwrap_or_default();
    let drained = tokio::time::timeout(WORKER_GRACE, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            part = spec.name,
            "workers did not stop in time; aborting them"
        );
        workers.abort_all();
    }
    revocations.abort();
    pool.close().await;
    tracing::info!(part = spec.name, "stopped");
    served
}

/// What starts once the database is ready.
struct Background {
    workers: Vec<Worker>,
    startup: Vec<Worker>,
    reporter: tonic_health::server::HealthReporter,
    service_names: Vec<&'static str>,
    bus: BusStatus,
    gate: crate::grpc::ReadyGateLayer,
}

/// Prepares the database (retrying until `shutdown`), then starts the relay, the workers and
/// readiness tracking; `None` when shut down first.
async fn start_when_database_ready(
    spec: &'static PartSpec,
    settings: Arc<Settings>,
    pool: PgPool,
    background: Background,
    shutdown: CancellationToken,
    workers_shutdown: CancellationToken,
) -> Option<JoinSet<()>> {
    let mut backoff = crate::bus::Backoff::default();
    loop {
        match crate::db::prepare_pool(&settings, spec.name, spec.migrator, &pool).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(part = spec.name, %error, "database not ready; retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = shutdown.cancelled() => return None,
        }
    }
    background.gate.open();
    let mut workers = JoinSet::new();
    let relay = OutboxRelay::new(pool.clone(), &settings, spec.name, background.bus.clone());
    workers.spawn(relay.run(workers_shutdown.clone()));
    workers.spawn(observe_pool(spec.name, pool, workers_shutdown));
    for worker in background.workers {
        tracing::debug!(part = spec.name, worker = %worker.name, "starting worker");
        workers.spawn(worker.task);
    }
    workers.spawn(track_readiness(
        background.reporter,
        background.service_names,
        background.startup,
        background.bus,
        shutdown,
    ));
    Some(workers)
}

/// Keeps the pool gauges (`db_pool_connections`) current.
async fn observe_pool(part: &'static str, pool: PgPool, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = ticks.tick() => crate::metrics::metrics().observe_pool(part, &pool),
            () = shutdown.cancelled() => return,
        }
    }
}

/// SERVING once the broker has been reached; after that the part stays SERVING while the broker
/// is away (events wait in the outbox), and `essentials.bus` reports the broker's live state.
async fn track_readiness(
    reporter: tonic_health::server::HealthReporter,
    service_names: Vec<&'static str>,
    startup: Vec<Worker>,
    bus: BusStatus,
    shutdown: CancellationToken,
) {
    for task in startup {
        tracing::debug!(worker = %task.name, "running start-up task");
        tokio::select! {
            () = task.task => {}
            () = shutdown.cancelled() => return,
        }
    }
    let mut changes = bus.subscribe();
    let mut ready = false;
    loop {
        let connected = bus.all_connected();
        if connected && !ready {
            crate::grpc::set_serving(&reporter, &service_names, true).await;
            ready = true;
        }
        let status = if connected {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        reporter
            .set_service_status(BUS_HEALTH_SERVICE, status)
            .await;
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => {
                // Stop taking work: callers see NOT_SERVING while in-flight calls finish.
                crate::grpc::set_serving(&reporter, &service_names, false).await;
                return;
            }
        }
    }
}

/// Cancels the token on SIGTERM or Ctrl-C.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        cancel.cancel();
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
