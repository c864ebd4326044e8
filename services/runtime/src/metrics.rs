//! The process's Prometheus registry. One per process: in `essentials all` every part reports into
//! it and the gateway's `/metrics` serves it; a single part serves it on `metrics.listen`.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRouteLabels {
    pub route: String,
    pub method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub service: String,
    pub method: String,
    pub code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcMethodLabels {
    pub service: String,
    pub method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartLabels {
    pub part: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    pub component: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub queue: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub part: String,
    pub state: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric that matters, registered once.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_request_duration: HistogramFamily<HttpRouteLabels>,
    pub grpc_requests: Family<GrpcLabels, Counter>,
    pub grpc_request_duration: HistogramFamily<GrpcMethodLabels>,
    pub outbox_pending: Family<PartLabels, Gauge>,
    pub outbox_lag_seconds: Family<PartLabels, Gauge>,
    pub outbox_published: Family<PartLabels, Counter>,
    pub outbox_publish_failures: Family<PartLabels, Counter>,
    pub bus_connected: Family<ComponentLabels, Gauge>,
    pub consumer_messages: Family<ConsumerLabels, Counter>,
    pub consumer_handle_duration: HistogramFamily<QueueLabels>,
    pub consumer_queue_messages: Family<QueueLabels, Gauge>,
    pub emails_sent: Counter,
    pub emails_failed: Counter,
    pub db_pool_connections: Family<PoolLabels, Gauge>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = Self {
            http_requests: Family::default(),
            http_request_duration: Family::new_with_constructor(latency_histogram),
            grpc_requests: Family::default(),
            grpc_request_duration: Family::new_with_constructor(latency_histogram),
            outbox_pending: Family::default(),
            outbox_lag_seconds: Family::default(),
            outbox_published: Family::default(),
            outbox_publish_failures: Family::default(),
            bus_connected: Family::default(),
            consumer_messages: Family::default(),
            consumer_handle_duration: Family::new_with_constructor(latency_histogram),
            consumer_queue_messages: Family::default(),
            emails_sent: Counter::default(),
            emails_failed: Counter::default(),
            db_pool_connections: Family::default(),
            registry: Registry::default(),
        };
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "http_requests",
            "HTTP requests answered by the gateway",
            metrics.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Gateway request latency",
            metrics.http_request_duration.clone(),
        );
        registry.register(
            "grpc_server_requests",
            "gRPC requests answered, by status code",
            metrics.grpc_requests.clone(),
        );
        registry.register(
            "grpc_server_request_duration_seconds",
            "gRPC request latency",
            metrics.grpc_request_duration.clone(),
        );
        registry.register(
            "outbox_pending",
            "Outbox events not yet published",
            metrics.outbox_pending.clone(),
        );
        registry.register(
            "outbox_lag_seconds",
            "Age of the oldest unpublished outbox event",
            metrics.outbox_lag_seconds.clone(),
        );
        registry.register(
            "outbox_published",
            "Outbox events published and confirmed by the broker",
            metrics.outbox_published.clone(),
        );
        registry.register(
            "outbox_publish_failures",
            "Outbox publish attempts that failed (broker down or refused)",
            metrics.outbox_publish_failures.clone(),
        );
        registry.register(
            "bus_connected",
            "1 while the component is connected to RabbitMQ",
            metrics.bus_connected.clone(),
        );
        registry.register(
            "consumer_messages",
            "Messages handled by consumers, by outcome",
            metrics.consumer_messages.clone(),
        );
        registry.register(
            "consumer_handle_duration_seconds",
            "Time a consumer spent on one message",
            metrics.consumer_handle_duration.clone(),
        );
        registry.register(
            "consumer_queue_messages",
            "Messages waiting in a consumer's queue (consumer lag), sampled every 15 s",
            metrics.consumer_queue_messages.clone(),
        );
        registry.register(
            "emails_sent",
            "E-mails accepted by the SMTP server",
            metrics.emails_sent.clone(),
        );
        registry.register(
            "emails_failed",
            "E-mails given up on (a permanent refusal, or every attempt used)",
            metrics.emails_failed.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state",
            metrics.db_pool_connections.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "could not encode metrics");
        }
        text
    }

    /// Records the pool's connection counts (called when metrics are scraped).
    pub fn observe_pool(&self, part: &str, pool: &sqlx::PgPool) {
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        let size = i64::from(pool.size());
        self.db_pool_connections
            .get_or_create(&PoolLabels {
                part: part.to_owned(),
                state: "idle",
            })
            .set(idle);
        self.db_pool_connections
            .get_or_create(&PoolLabels {
                part: part.to_owned(),
                state: "in_use",
            })
            .set(size - idle);
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Serves `/metrics` over HTTP until `shutdown` (single-part processes; the gateway serves its
/// own).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    http::header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                metrics().render(),
            )
        }),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_registered_metrics() {
        let metrics = metrics();
        metrics
            .consumer_messages
            .get_or_create(&ConsumerLabels {
                queue: "test.queue".into(),
                outcome: "acked",
            })
            .inc();
        metrics
            .outbox_pending
            .get_or_create(&PartLabels {
                part: "test".into(),
            })
            .set(3);
        let text = metrics.render();
        assert!(text.contains("consumer_messages_total{queue=\"test.queue\",outcome=\"acked\"}"));
        assert!(text.contains("outbox_pending{part=\"test\"} 3"), "{text}");
    }
}
