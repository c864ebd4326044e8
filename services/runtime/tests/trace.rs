//! W3C trace context travels with the work, with no collector configured: into outgoing gRPC
//! metadata, and through the outbox, the relay and RabbitMQ into the consumer's span. Its own
//! test binary, since it installs the process-wide subscriber.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use essentials_runtime::bus::{
    self, BusStatus, Consumer, ConsumerSpec, EventHandler, HandlerError, NewEvent, OutboxRelay,
    ReceivedEvent,
};
use essentials_runtime::settings::LogSettings;
use essentials_runtime::testing::{self, wait_until};
use essentials_runtime::{CancellationToken, db, telemetry};
use opentelemetry::trace::{TraceContextExt, TraceId};
use sqlx::migrate::Migrator;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const DEADLINE: Duration = Duration::from_secs(30);
const EVENT: &str = "test.traced";

fn trace_id(span: &tracing::Span) -> TraceId {
    span.context().span().span_context().trace_id()
}

/// Remembers the trace each handled event ran in.
struct SeesTrace {
    seen: Arc<Mutex<Vec<TraceId>>>,
}

impl EventHandler for SeesTrace {
    async fn handle(
        &self,
        _transaction: &mut sqlx::PgConnection,
        _event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let current = trace_id(&tracing::Span::current());
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(current);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_goes_out_with_grpc_calls_and_through_the_outbox_to_consumers() {
    let _telemetry = telemetry::init("trace-test", &LogSettings::default());
    // gRPC: an outgoing call made inside a span names that span's trace.
    let span = tracing::info_span!("client");
    let expected = trace_id(&span);
    assert_ne!(
        expected,
        TraceId::INVALID,
        "spans get trace ids without a collector"
    );
    let request = span.in_scope(|| telemetry::traced_request(()));
    let traceparent = request
        .metadata()
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .expect("traceparent in the metadata")
        .to_owned();
    assert!(
        traceparent.contains(&expected.to_string()),
        "{traceparent} names {expected}"
    );

    // AMQP: an event enqueued inside a span is handled inside the same trace.
    let settings = testing::isolated_settings();
    let pool = db::prepare(&settings, "trace", &Migrator::with_migrations(Vec::new()))
        .await
        .expect("database");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = Consumer::new(
        pool.clone(),
        &settings,
        ConsumerSpec {
            consumer: "test".into(),
            purpose: "traced".into(),
            bindings: vec![EVENT.into()],
        },
        Arc::new(SeesTrace { seen: seen.clone() }),
        BusStatus::default(),
    );
    let queue = consumer.queue().to_owned();
    consumer.declare().await.expect("declared");
    let shutdown = CancellationToken::new();
    tokio::spawn(consumer.run(shutdown.clone()));
    let relay = OutboxRelay::new(pool.clone(), &settings, "trace", BusStatus::default());
    tokio::spawn(relay.run(shutdown.clone()));

    let producer = tracing::info_span!("producer");
    let produced = trace_id(&producer);
    async {
        let mut transaction = pool.begin().await.expect("begin");
        let event = NewEvent::from_any(
            EVENT,
            None,
            None,
            prost_types::Any {
                type_url: "type.googleapis.com/test.Traced".into(),
                value: Vec::new(),
            },
        );
        bus::enqueue(&mut transaction, &event)
            .await
            .expect("enqueue");
        transaction.commit().await.expect("commit");
    }
    .instrument(producer)
    .await;
    wait_until(DEADLINE, "the event to be handled", || async {
        seen.lock().map(|seen| !seen.is_empty()).unwrap_or(false)
    })
    .await;
    shutdown.cancel();
    let handled = seen.lock().map(|seen| seen.clone()).unwrap_or_default();
    assert_eq!(
        handled,
        vec![produced],
        "the consumer ran in the producer's trace"
    );
    pool.close().await;
    testing::drop_databases(&settings, &["trace"]).await;
    testing::delete_bus_objects(&settings, &[queue]).await;
}
