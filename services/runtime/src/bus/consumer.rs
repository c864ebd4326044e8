//! The consumer runner: one durable quorum queue per consuming part and purpose, a prefetch limit,
//! the handler's effects and a `processed_event` row in one transaction, acknowledgement after
//! commit, bounded redeliveries and then the dead-letter queue, reconnection with backoff.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Backoff, BusStatus, ReceivedEvent, connect, declare_queue, queue_name};
use crate::metrics::{ConsumerLabels, QueueLabels, metrics};
use crate::settings::Settings;

/// Why a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth another try (database busy, a part unavailable): the message is redelivered until
    /// the queue's delivery limit, then dead-lettered.
    #[error("transient: {0}")]
    Retry(anyhow::Error),
    /// Retrying cannot help (undecodable payload, broken invariant): dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(anyhow::Error),
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        HandlerError::Retry(error.into())
    }
}

/// Handles one event inside the transaction that also records it as processed.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(
        &self,
        transaction: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// What a consumer listens to.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The consuming part, e.g. `request`.
    pub consumer: String,
    /// What the queue is for, e.g. `distribution-events`.
    pub purpose: String,
    /// Routing keys (event names, or topic patterns like `partner.*`).
    pub bindings: Vec<String>,
}

pub struct Consumer<H> {
    pool: PgPool,
    handler: Arc<H>,
    bus_url: String,
    prefix: String,
    queue: String,
    /// Key of this consumer in `processed_event` (the queue name without the bus prefix).
    dedupe_key: String,
    bindings: Vec<String>,
    prefetch: u16,
    delivery_limit: u32,
    queue_expires_ms: Option<u64>,
    status: BusStatus,
}

enum Outcome {
    Acked,
    Duplicate,
    Retried,
    DeadLettered,
    /// Left unsettled at shutdown while the database was away: the broker hands it to another
    /// consumer when this channel closes.
    Released,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Acked => "acked",
            Outcome::Duplicate => "duplicate",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Released => "released",
        }
    }
}

impl<H: EventHandler> Consumer<H> {
    pub fn new(
        pool: PgPool,
        settings: &Settings,
        spec: ConsumerSpec,
        handler: Arc<H>,
        status: BusStatus,
    ) -> Self {
        let queue = queue_name(&settings.bus.prefix, &spec.consumer, &spec.purpose);
        status.register(&queue);
        Self {
            pool,
            handler,
            bus_url: settings.bus.url.clone(),
            prefix: settings.bus.prefix.clone(),
            dedupe_key: format!("{}.{}", spec.consumer, spec.purpose),
            queue,
            bindings: spec.bindings,
            prefetch: settings.bus.prefetch,
            delivery_limit: settings.bus.delivery_limit,
            queue_expires_ms: settings.bus.queue_expires_ms,
            status,
        }
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Declares the queue and its bindings (also done by `run`); lets a caller make sure that
    /// events published from now on are kept for this consumer.
    pub async fn declare(&self) -> anyhow::Result<()> {
        let connection = connect(&self.bus_url, &self.queue).await?;
        let channel = connection.create_channel().await?;
        declare_queue(
            &channel,
            &self.prefix,
            &self.queue,
            &self.bindings,
            self.delivery_limit,
            self.queue_expires_ms,
        )
        .await?;
        connection.close(200, "declared".into()).await?;
        Ok(())
    }

    /// Consumes until `shutdown`; messages in hand are finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown, &mut backoff).await {
                Ok(()) => {}
                Err(error) => {
                    tracing::warn!(queue = %self.queue, %error, "consumer lost RabbitMQ; reconnecting");
                }
            }
            self.status.set(&self.queue, false);
            if !shutdown.is_cancelled() {
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }

    async fn consume(
        &self,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> anyhow::Result<()> {
        let connection = connect(&self.bus_url, &self.queue).await?;
        let channel = connection.create_channel().await?;
        declare_queue(
            &channel,
            &self.prefix,
            &self.queue,
            &self.bindings,
            self.delivery_limit,
            self.queue_expires_ms,
        )
        .await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let deliveries = channel
            .basic_consume(
                self.queue.as_str().into(),
                format!("{}-{}", self.queue, uuid::Uuid::now_v7())
                    .as_str()
                    .into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.status.set(&self.queue, true);
        backoff.reset();
        tracing::info!(queue = %self.queue, "consumer connected");
        let sampling = CancellationToken::new();
        tokio::spawn(sample_queue_depth(
            channel.clone(),
            self.queue.clone(),
            sampling.clone(),
        ));
        let _stop_sampling = sampling.drop_guard();
        let mut failure: Option<anyhow::Error> = None;
        let failure_ref = &mut failure;
        deliveries
            .take_until(shutdown.cancelled())
            .take_while(|delivery| {
                let keep_going = delivery.is_ok();
                if let Err(error) = delivery {
                    *failure_ref = Some(anyhow::anyhow!("{error}"));
                }
                std::future::ready(keep_going)
            })
            .for_each_concurrent(usize::from(self.prefetch), |delivery| async move {
                if let Ok(delivery) = delivery {
                    self.process(delivery, shutdown).await;
                }
            })
            .await;
        if shutdown.is_cancelled() {
            let _ = connection.close(200, "shutting down".into()).await;
            return Ok(());
        }
        Err(failure.unwrap_or_else(|| anyhow::anyhow!("the broker ended the consumer")))
    }

    async fn process(&self, delivery: Delivery, shutdown: &CancellationToken) {
        let started = Instant::now();
        let Some(event) = ReceivedEvent::decode(&delivery.data) else {
            tracing::error!(queue = %self.queue, "undecodable message; dead-lettering it");
            self.settle(&delivery, Outcome::DeadLettered).await;
            return;
        };
        let span = tracing::info_span!(
            "consume",
            queue = %self.queue,
            event_type = %event.event_type,
            event_id = %event.id
        );
        crate::telemetry::set_parent_from_traceparent(&span, traceparent(&delivery).as_deref());
        let outcome = self
            .handle(&event, &delivery, shutdown)
            .instrument(span)
            .await;
        metrics()
            .consumer_handle_duration
            .get_or_create(&QueueLabels {
                queue: self.queue.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.settle(&delivery, outcome).await;
    }

    async fn handle(
        &self,
        event: &ReceivedEvent,
        delivery: &Delivery,
        shutdown: &CancellationToken,
    ) -> Outcome {
        // While our own database is unreachable no handler can succeed: hold the message and
        // wait for the database, so an outage costs it none of its bounded delivery attempts
        // (otherwise a few seconds of downtime would dead-letter everything in flight).
        let mut backoff = super::Backoff::default();
        let result = loop {
            match self.handle_once(event).await {
                Err(error) if database_unreachable(&error) => {
                    tracing::warn!(%error, "database unreachable; holding the event until it answers");
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                        () = shutdown.cancelled() => return Outcome::Released,
                    }
                }
                result => break result,
            }
        };
        match result {
            Ok(true) => Outcome::Acked,
            Ok(false) => Outcome::Duplicate,
            Err(HandlerError::Permanent(error)) => {
                tracing::error!(%error, "event cannot be handled; dead-lettering it");
                Outcome::DeadLettered
            }
            Err(HandlerError::Retry(error)) => {
                let attempts = delivery_count(delivery);
                tracing::warn!(%error, attempts, limit = self.delivery_limit, "event handler failed; will retry");
                // Back off before handing it back, so a failing dependency isn't hammered.
                let delay = Duration::from_millis(100u64.saturating_mul(1 << attempts.min(6)));
                tokio::time::sleep(delay.min(Duration::from_secs(5))).await;
                Outcome::Retried
            }
        }
    }

    /// Runs the handler in a transaction with the dedupe row; `Ok(false)` for a duplicate.
    async fn handle_once(&self, event: &ReceivedEvent) -> Result<bool, HandlerError> {
        let mut transaction = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO processed_event (consumer, event_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.dedupe_key)
        .bind(event.id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        self.handler.handle(&mut transaction, event).await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn settle(&self, delivery: &Delivery, outcome: Outcome) {
        let result = match outcome {
            Outcome::Acked | Outcome::Duplicate => delivery.ack(BasicAckOptions::default()).await,
            Outcome::Retried => {
                delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await
            }
            Outcome::DeadLettered => delivery.reject(BasicRejectOptions { requeue: false }).await,
            Outcome::Released => Ok(true),
        };
        if let Err(error) = result {
            // The broker will redeliver it; the dedupe row makes that harmless.
            tracing::warn!(queue = %self.queue, %error, "could not settle a delivery");
        }
        metrics()
            .consumer_messages
            .get_or_create(&ConsumerLabels {
                queue: self.queue.clone(),
                outcome: outcome.label(),
            })
            .inc();
    }
}

/// Keeps `consumer_queue_messages` (the queue's backlog: consumer lag) current while connected.
async fn sample_queue_depth(channel: lapin::Channel, queue: String, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => return,
        }
        let declared = channel
            .queue_declare(
                queue.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        let Ok(declared) = declared else {
            return; // The channel is gone; the next connection samples again.
        };
        metrics()
            .consumer_queue_messages
            .get_or_create(&QueueLabels {
                queue: queue.clone(),
            })
            .set(i64::from(declared.message_count()));
    }
}

/// The handler failed because the database could not be reached (no connection, the pool timed
/// out, the server is shutting down), not because of the event.
fn database_unreachable(error: &HandlerError) -> bool {
    let HandlerError::Retry(error) = error else {
        return false;
    };
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .any(|cause| {
            crate::error::database_unreachable(cause)
                || matches!(cause, sqlx::Error::Tls(_))
                // 57P0x: the server is shutting down or starting.
                || crate::error::sqlstate(cause).is_some_and(|code| code.starts_with("57P0"))
        })
}

fn header<'a>(delivery: &'a Delivery, name: &str) -> Option<&'a AMQPValue> {
    delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(name))
}

/// How often the broker has delivered this message before (quorum queues count it).
fn delivery_count(delivery: &Delivery) -> u32 {
    match header(delivery, "x-delivery-count") {
        Some(AMQPValue::LongLongInt(count)) => u32::try_from(*count).unwrap_or(u32::MAX),
        Some(AMQPValue::LongInt(count)) => u32::try_from(*count).unwrap_or(u32::MAX),
        Some(AMQPValue::LongUInt(count)) => *count,
        Some(AMQPValue::ShortInt(count)) => u32::try_from(*count).unwrap_or(0),
        _ => 0,
    }
}

fn traceparent(delivery: &Delivery) -> Option<String> {
    match header(delivery, "traceparent") {
        Some(AMQPValue::LongString(value)) => Some(value.to_string()),
        _ => None,
    }
}
