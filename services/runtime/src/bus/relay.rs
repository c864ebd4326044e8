//! The outbox relay: publishes committed outbox rows with publisher confirms and marks them
//! published. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so replicas run side by side and
//! each row is published by one of them; a broker outage leaves the rows waiting.

use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::outbox::NOTIFY_CHANNEL;
use super::{Backoff, BusStatus, connect, events_exchange};
use crate::metrics::{PartLabels, metrics};
use crate::settings::Settings;

/// How often published rows past their retention are deleted.
const CLEANUP_EVERY: Duration = Duration::from_secs(600);

/// How long the relay waits for the broker to confirm a batch's events.
const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
pub struct OutboxRelay {
    pool: PgPool,
    part: String,
    bus_url: String,
    exchange: String,
    batch_size: i64,
    poll_interval: Duration,
    retention_hours: i32,
    status: BusStatus,
    component: String,
}

enum BatchError {
    Database(sqlx::Error),
    Broker(anyhow::Error),
}

struct OutboxRow {
    id: Uuid,
    event_type: String,
    envelope: Vec<u8>,
    traceparent: Option<String>,
}

impl OutboxRelay {
    pub fn new(pool: PgPool, settings: &Settings, part: &str, status: BusStatus) -> Self {
        let component = format!("{part}.relay");
        status.register(&component);
        Self {
            pool,
            part: part.to_owned(),
            bus_url: settings.bus.url.clone(),
            exchange: events_exchange(&settings.bus.prefix),
            batch_size: i64::from(settings.relay.batch_size),
            poll_interval: Duration::from_millis(settings.relay.poll_interval_ms),
            retention_hours: i32::try_from(settings.relay.retention_hours).unwrap_or(i32::MAX),
            status,
            component,
        }
    }

    /// Runs until `shutdown` is cancelled; the batch in flight is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut broker: Option<(Connection, Channel)> = None;
        let mut backoff = Backoff::default();
        let mut listener: Option<PgListener> = None;
        let mut last_cleanup = Instant::now();
        while !shutdown.is_cancelled() {
            if listener.is_none() {
                listener = self.listen().await;
            }
            let channel = match &broker {
                Some((connection, channel)) if connection.status().connected() => channel.clone(),
                _ => match self.open_channel().await {
                    Ok(opened) => {
                        let channel = opened.1.clone();
                        broker = Some(opened);
                        backoff.reset();
                        self.status.set(&self.component, true);
                        tracing::info!(part = %self.part, "outbox relay connected to RabbitMQ");
                        channel
                    }
                    Err(error) => {
                        self.broker_down(&mut broker, &error);
                        self.observe_lag().await;
                        pause(&shutdown, backoff.next_delay()).await;
                        continue;
                    }
                },
            };
            match self.publish_batch(&channel).await {
                Ok(published) if published as i64 == self.batch_size => continue,
                Ok(_) => {
                    self.observe_lag().await;
                    if last_cleanup.elapsed() >= CLEANUP_EVERY {
                        self.cleanup().await;
                        last_cleanup = Instant::now();
                    }
                    self.wait_for_work(&mut listener, &shutdown).await;
                }
                Err(BatchError::Broker(error)) => {
                    metrics()
                        .outbox_publish_failures
                        .get_or_create(&self.labels())
                        .inc();
                    self.broker_down(&mut broker, &error);
                    pause(&shutdown, backoff.next_delay()).await;
                }
                Err(BatchError::Database(error)) => {
                    tracing::warn!(part = %self.part, %error, "outbox relay cannot read the database");
                    listener = None;
                    pause(&shutdown, self.poll_interval).await;
                }
            }
        }
        if let Some((connection, _)) = broker {
            let _ = connection.close(200, "shutting down".into()).await;
        }
        self.status.set(&self.component, false);
    }

    fn labels(&self) -> PartLabels {
        PartLabels {
            part: self.part.clone(),
        }
    }

    fn broker_down(&self, broker: &mut Option<(Connection, Channel)>, error: &anyhow::Error) {
        if broker.take().is_some() || self.status.snapshot().get(&self.component) != Some(&false) {
            tracing::warn!(part = %self.part, %error, "outbox relay lost RabbitMQ; events wait in the outbox");
        }
        self.status.set(&self.component, false);
    }

    async fn open_channel(&self) -> anyhow::Result<(Connection, Channel)> {
        let connection = connect(&self.bus_url, &self.component).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        super::declare_exchanges(&channel, exchange_prefix(&self.exchange)).await?;
        Ok((connection, channel))
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "LISTEN unavailable; polling");
                return None;
            }
        };
        match listener.listen(NOTIFY_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::debug!(%error, "LISTEN failed; polling");
                None
            }
        }
    }

    /// Sleeps until a commit notifies us, the poll interval passes, or shutdown.
    async fn wait_for_work(&self, listener: &mut Option<PgListener>, shutdown: &CancellationToken) {
        match listener {
            Some(active) => {
                tokio::select! {
                    received = active.recv() => {
                        if received.is_err() {
                            *listener = None;
                        }
                    }
                    () = tokio::time::sleep(self.poll_interval) => {}
                    () = shutdown.cancelled() => {}
                }
            }
            None => pause(shutdown, self.poll_interval).await,
        }
    }

    async fn publish_batch(&self, channel: &Channel) -> Result<usize, BatchError> {
        let mut transaction = self.pool.begin().await.map_err(BatchError::Database)?;
        let rows: Vec<(Uuid, String, Vec<u8>, Option<String>)> = sqlx::query_as(
            "SELECT id, event_type, envelope, traceparent FROM outbox
             WHERE published_at IS NULL
             ORDER BY seq
             LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *transaction)
        .await
        .map_err(BatchError::Database)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let rows: Vec<OutboxRow> = rows
            .into_iter()
            .map(|(id, event_type, envelope, traceparent)| OutboxRow {
                id,
                event_type,
                envelope,
                traceparent,
            })
            .collect();
        let mut confirms = Vec::with_capacity(rows.len());
        for row in &rows {
            let confirm = channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    row.event_type.as_str().into(),
                    BasicPublishOptions::default(),
                    &row.envelope,
                    properties(row),
                )
                .await
                .map_err(|error| BatchError::Broker(error.into()))?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            // A broker that stops confirming would otherwise hold these rows locked until the
            // connection's heartbeat gives up; the rows go out again on the next connection.
            let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
                .await
                .map_err(|_| {
                    BatchError::Broker(anyhow::anyhow!(
                        "RabbitMQ did not confirm a published event within {CONFIRM_TIMEOUT:?}"
                    ))
                })?
                .map_err(|error| BatchError::Broker(error.into()))?;
            if !confirmation.is_ack() {
                return Err(BatchError::Broker(anyhow::anyhow!(
                    "RabbitMQ refused (nacked) a published event"
                )));
            }
        }
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *transaction)
            .await
            .map_err(BatchError::Database)?;
        // Should this commit fail, the events were published but stay unmarked and go out again:
        // delivery is at-least-once and consumers dedupe by event id.
        transaction.commit().await.map_err(BatchError::Database)?;
        metrics()
            .outbox_published
            .get_or_create(&self.labels())
            .inc_by(rows.len() as u64);
        tracing::debug!(part = %self.part, count = rows.len(), "published outbox events");
        Ok(rows.len())
    }

    async fn observe_lag(&self) {
        let stats: Result<(i64, Option<f64>), _> = sqlx::query_as(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await;
        if let Ok((pending, lag)) = stats {
            let labels = self.labels();
            metrics().outbox_pending.get_or_create(&labels).set(pending);
            metrics()
                .outbox_lag_seconds
                .get_or_create(&labels)
                .set(lag.unwrap_or(0.0) as i64);
        }
    }

    async fn cleanup(&self) {
        let deleted = sqlx::query(
            "DELETE FROM outbox
             WHERE published_at IS NOT NULL AND published_at < now() - make_interval(hours => $1)",
        )
        .bind(self.retention_hours)
        .execute(&self.pool)
        .await;
        match deleted {
            Ok(result) if result.rows_affected() > 0 => {
                tracing::info!(part = %self.part, rows = result.rows_affected(), "deleted old published outbox rows");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "outbox cleanup failed"),
        }
        // Idempotency keys answer retries for a day (as payment APIs do); older ones go.
        let expired = sqlx::query(
            "DELETE FROM idempotency_record WHERE created_at < now() - interval '24 hours'",
        )
        .execute(&self.pool)
        .await;
        if let Err(error) = expired {
            tracing::warn!(%error, "idempotency key cleanup failed");
        }
    }
}

fn exchange_prefix(exchange: &str) -> &str {
    exchange.strip_suffix(".events").unwrap_or(exchange)
}

/// AMQP properties of a published event: persistent, id, type, content type, trace context.
fn properties(row: &OutboxRow) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(traceparent) = &row.traceparent {
        headers.insert(
            ShortString::from("traceparent"),
            AMQPValue::LongString(LongString::from(traceparent.as_str())),
        );
    }
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id(row.id.to_string().as_str().into())
        .with_type(row.event_type.as_str().into())
        .with_content_type("application/x-protobuf".into())
        .with_headers(headers)
}

/// Sleeps, waking early on shutdown.
async fn pause(shutdown: &CancellationToken, duration: Duration) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = shutdown.cancelled() => {}
    }
}
