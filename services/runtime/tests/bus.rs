//! The outbox, the relay and the consumer runner against the real PostgreSQL and RabbitMQ.
//! Every test uses its own database and bus prefix.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use essentials_runtime::bus::{
    self, BusStatus, Consumer, ConsumerSpec, EventHandler, HandlerError, NewEvent, OutboxRelay,
    ReceivedEvent,
};
use essentials_runtime::metrics::{ConsumerLabels, metrics};
use essentials_runtime::settings::Settings;
use essentials_runtime::testing::{self, TcpProxy, wait_until};
use essentials_runtime::{CancellationToken, db};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(30);
const TEST_EVENT: &str = "test.happened";

/// A test's own database, bus prefix and broker connection.
struct Fixture {
    settings: Settings,
    pool: PgPool,
    connection: Connection,
    channel: Channel,
    queues: Vec<String>,
}

impl Fixture {
    async fn new() -> Self {
        let settings = testing::isolated_settings();
        let pool = db::prepare(&settings, "bus", &Migrator::with_migrations(Vec::new()))
            .await
            .expect("database ready");
        let connection = bus::connect(&settings.bus.url, "bus-test")
            .await
            .expect("RabbitMQ reachable");
        let channel = connection.create_channel().await.expect("channel");
        bus::declare_exchanges(&channel, &settings.bus.prefix)
            .await
            .expect("exchanges");
        Self {
            settings,
            pool,
            connection,
            channel,
            queues: Vec::new(),
        }
    }

    /// A queue bound to the test event, as a consumer would declare it.
    async fn queue(&mut self, purpose: &str) -> String {
        let queue = bus::queue_name(&self.settings.bus.prefix, "test", purpose);
        bus::declare_queue(
            &self.channel,
            &self.settings.bus.prefix,
            &queue,
            &[TEST_EVENT.to_owned()],
            self.settings.bus.delivery_limit,
            self.settings.bus.queue_expires_ms,
        )
        .await
        .expect("queue declared");
        self.queues.push(queue.clone());
        queue
    }

    async fn message_count(&self, queue: &str) -> u32 {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue exists")
            .message_count()
    }

    async fn pending(&self) -> i64 {
        bus::pending_count(&self.pool).await.expect("count")
    }

    /// Enqueues `count` events in one transaction and commits (or rolls back).
    async fn enqueue(&self, count: usize, commit: bool) -> Vec<Uuid> {
        let mut transaction = self.pool.begin().await.expect("begin");
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let event = test_event();
            ids.push(
                bus::enqueue(&mut transaction, &event)
                    .await
                    .expect("enqueue"),
            );
        }
        if commit {
            transaction.commit().await.expect("commit");
        } else {
            transaction.rollback().await.expect("rollback");
        }
        ids
    }

    fn start_relay(&self, settings: &Settings, shutdown: &CancellationToken) -> BusStatus {
        let status = BusStatus::default();
        let relay = OutboxRelay::new(self.pool.clone(), settings, "bus", status.clone());
        tokio::spawn(relay.run(shutdown.clone()));
        status
    }

    /// Reads every message in the queue (acking them) until `expected` have arrived, and returns
    /// their event ids.
    async fn drain(&self, queue: &str, expected: usize) -> Vec<Uuid> {
        let mut consumer = self
            .channel
            .basic_consume(
                queue.into(),
                "drain".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let mut ids = Vec::new();
        while ids.len() < expected {
            let delivery = tokio::time::timeout(DEADLINE, consumer.next())
                .await
                .expect("messages keep coming")
                .expect("stream open")
                .expect("delivery");
            let event = ReceivedEvent::decode(&delivery.data).expect("an envelope");
            assert_eq!(event.event_type, TEST_EVENT);
            ids.push(event.id);
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
        }
        self.channel
            .basic_cancel("drain".into(), Default::default())
            .await
            .expect("cancel");
        ids
    }

    async fn publish_raw(&self, envelope: &[u8]) {
        let channel = self.connection.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        let confirmation = channel
            .basic_publish(
                bus::events_exchange(&self.settings.bus.prefix)
                    .as_str()
                    .into(),
                TEST_EVENT.into(),
                BasicPublishOptions::default(),
                envelope,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirmation.is_ack());
    }

    async fn cleanup(self) {
        let _ = self.connection.close(200, "done".into()).await;
        self.pool.close().await;
        testing::delete_bus_objects(&self.settings, &self.queues).await;
        testing::drop_databases(&self.settings, &["bus"]).await;
    }
}

fn test_event() -> NewEvent {
    NewEvent::from_any(
        TEST_EVENT,
        Some(Uuid::now_v7()),
        None,
        prost_types::Any {
            type_url: "type.googleapis.com/test.Happened".into(),
            value: b"payload".to_vec(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_event_is_published_once_and_rolled_back_event_never() {
    let mut fixture = Fixture::new().await;
    let queue = fixture.queue("once").await;
    let committed = fixture.enqueue(1, true).await;
    let rolled_back = fixture.enqueue(1, false).await;
    assert_eq!(
        fixture.pending().await,
        1,
        "the rolled-back event is not in the outbox"
    );

    let shutdown = CancellationToken::new();
    fixture.start_relay(&fixture.settings, &shutdown);
    wait_until(DEADLINE, "the outbox to be published", || async {
        fixture.pending().await == 0
    })
    .await;
    // Confirms came before marking: whatever was published is in the queue now.
    assert_eq!(fixture.message_count(&queue).await, 1);
    let received = fixture.drain(&queue, 1).await;
    assert_eq!(received, committed);
    assert!(!received.contains(&rolled_back[0]));
    assert_eq!(
        fixture.message_count(&queue).await,
        0,
        "nothing else arrives"
    );
    shutdown.cancel();
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_publish_each_of_1000_events_exactly_once() {
    let mut fixture = Fixture::new().await;
    let queue = fixture.queue("race").await;
    let mut enqueued = HashSet::new();
    for _ in 0..10 {
        enqueued.extend(fixture.enqueue(100, true).await);
    }
    assert_eq!(enqueued.len(), 1000);

    // Small batches, so the two relays really claim rows side by side.
    let mut settings = fixture.settings.clone();
    settings.relay.batch_size = 25;
    let shutdown = CancellationToken::new();
    fixture.start_relay(&settings, &shutdown);
    fixture.start_relay(&settings, &shutdown);
    wait_until(DEADLINE, "both relays to empty the outbox", || async {
        fixture.pending().await == 0
    })
    .await;
    shutdown.cancel();

    assert_eq!(
        fixture.message_count(&queue).await,
        1000,
        "none lost, none twice"
    );
    let received = fixture.drain(&queue, 1000).await;
    let unique: HashSet<Uuid> = received.iter().copied().collect();
    assert_eq!(unique.len(), 1000, "no event published twice");
    assert_eq!(unique, enqueued, "every enqueued event arrived");
    assert_eq!(fixture.message_count(&queue).await, 0);
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_keeps_events_while_the_broker_is_unreachable() {
    let mut fixture = Fixture::new().await;
    let queue = fixture.queue("outage").await;
    let broker: SocketAddr = "127.0.0.1:5672".parse().expect("address");
    let proxy = TcpProxy::start(broker).await.expect("proxy");
    let mut settings = fixture.settings.clone();
    settings.bus.url = format!("amqp://guest:guest@{}/%2f", proxy.address());

    let first = fixture.enqueue(20, true).await;
    let shutdown = CancellationToken::new();
    let status = fixture.start_relay(&settings, &shutdown);
    wait_until(DEADLINE, "the relay to try the broker twice", || async {
        proxy.refused() >= 2
    })
    .await;
    assert_eq!(fixture.pending().await, 20, "events wait in the outbox");
    assert_eq!(fixture.message_count(&queue).await, 0);
    assert!(!status.all_connected());

    proxy.up();
    wait_until(
        DEADLINE,
        "the relay to publish after the broker came back",
        || async { fixture.pending().await == 0 },
    )
    .await;
    assert!(status.all_connected());

    // The broker goes away again while the relay is connected.
    proxy.down().await;
    let second = fixture.enqueue(5, true).await;
    wait_until(
        DEADLINE,
        "the relay to notice the broker is gone",
        || async { !status.all_connected() },
    )
    .await;
    proxy.up();
    wait_until(
        DEADLINE,
        "the relay to publish after reconnecting",
        || async { fixture.pending().await == 0 },
    )
    .await;
    shutdown.cancel();

    let received: HashSet<Uuid> = fixture.drain(&queue, 25).await.into_iter().collect();
    let expected: HashSet<Uuid> = first.into_iter().chain(second).collect();
    assert_eq!(received, expected, "every event arrived once");
    assert_eq!(fixture.message_count(&queue).await, 0);
    fixture.cleanup().await;
}

/// Fails every time, counting its attempts.
struct AlwaysFails {
    attempts: AtomicU32,
}

impl EventHandler for AlwaysFails {
    async fn handle(
        &self,
        _transaction: &mut sqlx::PgConnection,
        _event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err(HandlerError::Retry(anyhow::anyhow!("dependency down")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_handler_sends_the_message_to_the_dead_letter_queue() {
    let mut fixture = Fixture::new().await;
    let mut settings = fixture.settings.clone();
    settings.bus.delivery_limit = 2;
    fixture.settings.bus.delivery_limit = 2;
    let handler = Arc::new(AlwaysFails {
        attempts: AtomicU32::new(0),
    });
    let spec = ConsumerSpec {
        consumer: "test".into(),
        purpose: "failing".into(),
        bindings: vec![TEST_EVENT.into()],
    };
    let consumer = Consumer::new(
        fixture.pool.clone(),
        &settings,
        spec,
        handler.clone(),
        BusStatus::default(),
    );
    let queue = consumer.queue().to_owned();
    fixture.queues.push(queue.clone());
    consumer.declare().await.expect("declared");
    let shutdown = CancellationToken::new();
    tokio::spawn(consumer.run(shutdown.clone()));

    let event = test_event();
    fixture.publish_raw(&event.envelope).await;
    let dead_queue = bus::dead_letter_queue(&queue);
    wait_until(DEADLINE, "the message to be dead-lettered", || async {
        fixture.message_count(&dead_queue).await == 1
    })
    .await;
    shutdown.cancel();
    // The first delivery plus `delivery_limit` redeliveries, then the broker gives up.
    assert_eq!(handler.attempts.load(Ordering::SeqCst), 3);
    assert_eq!(fixture.message_count(&queue).await, 0);
    let dead = fixture.drain(&dead_queue, 1).await;
    assert_eq!(dead, vec![event.id]);
    let processed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_event WHERE event_id = $1")
            .bind(event.id)
            .fetch_one(&fixture.pool)
            .await
            .expect("count");
    assert_eq!(processed, 0, "a failed handling leaves no dedupe row");
    fixture.cleanup().await;
}

/// Records each event it handles in a table, in the consumer's transaction.
struct RecordsEffect {
    calls: AtomicU32,
}

impl EventHandler for RecordsEffect {
    async fn handle(
        &self,
        transaction: &mut sqlx::PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        sqlx::query("INSERT INTO effect (event_id) VALUES ($1)")
            .bind(event.id)
            .execute(transaction)
            .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_duplicate_is_not_processed_twice() {
    let mut fixture = Fixture::new().await;
    sqlx::query("CREATE TABLE effect (event_id uuid NOT NULL)")
        .execute(&fixture.pool)
        .await
        .expect("table");
    let handler = Arc::new(RecordsEffect {
        calls: AtomicU32::new(0),
    });
    let spec = ConsumerSpec {
        consumer: "test".into(),
        purpose: "dedupe".into(),
        bindings: vec![TEST_EVENT.into()],
    };
    let consumer = Consumer::new(
        fixture.pool.clone(),
        &fixture.settings,
        spec,
        handler.clone(),
        BusStatus::default(),
    );
    let queue = consumer.queue().to_owned();
    fixture.queues.push(queue.clone());
    consumer.declare().await.expect("declared");
    let shutdown = CancellationToken::new();
    tokio::spawn(consumer.run(shutdown.clone()));

    let event = test_event();
    let other = test_event();
    fixture.publish_raw(&event.envelope).await;
    fixture.publish_raw(&event.envelope).await;
    fixture.publish_raw(&other.envelope).await;

    // Clones: holding the family's guard would block the consumer's own updates.
    let duplicates = metrics()
        .consumer_messages
        .get_or_create(&ConsumerLabels {
            queue: queue.clone(),
            outcome: "duplicate",
        })
        .clone();
    let acked = metrics()
        .consumer_messages
        .get_or_create(&ConsumerLabels {
            queue: queue.clone(),
            outcome: "acked",
        })
        .clone();
    wait_until(DEADLINE, "all three deliveries to be settled", || async {
        duplicates.get() + acked.get() == 3
    })
    .await;
    shutdown.cancel();
    assert_eq!(duplicates.get(), 1);
    assert_eq!(acked.get(), 2);
    let effects: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM effect ORDER BY event_id")
        .fetch_all(&fixture.pool)
        .await
        .expect("effects");
    let mut expected = vec![event.id, other.id];
    expected.sort();
    assert_eq!(effects, expected, "each event took effect once");
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_holds_events_instead_of_dead_lettering_them() {
    let mut fixture = Fixture::new().await;
    sqlx::query("CREATE TABLE effect (event_id uuid NOT NULL)")
        .execute(&fixture.pool)
        .await
        .expect("table");
    // The consumer reaches its database through a proxy that starts down.
    let direct = db::connect_options(&fixture.settings, "bus").expect("options");
    let postgres: SocketAddr = format!("{}:{}", direct.get_host(), direct.get_port())
        .parse()
        .expect("a loopback address");
    let proxy = TcpProxy::start(postgres).await.expect("proxy");
    let through_proxy = direct.host("127.0.0.1").port(proxy.address().port());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .test_before_acquire(true)
        .connect_lazy_with(through_proxy);
    // One redelivery at most: two failed deliveries would dead-letter the event.
    fixture.settings.bus.delivery_limit = 1;
    let handler = Arc::new(RecordsEffect {
        calls: AtomicU32::new(0),
    });
    let spec = ConsumerSpec {
        consumer: "test".into(),
        purpose: "outage".into(),
        bindings: vec![TEST_EVENT.into()],
    };
    let consumer = Consumer::new(
        pool,
        &fixture.settings,
        spec,
        handler.clone(),
        BusStatus::default(),
    );
    let queue = consumer.queue().to_owned();
    fixture.queues.push(queue.clone());
    consumer.declare().await.expect("declared");
    let shutdown = CancellationToken::new();
    tokio::spawn(consumer.run(shutdown.clone()));

    let event = test_event();
    fixture.publish_raw(&event.envelope).await;
    wait_until(
        DEADLINE,
        "the consumer to try its database again and again",
        || async { proxy.refused() >= 4 },
    )
    .await;
    let dead_queue = bus::dead_letter_queue(&queue);
    assert_eq!(
        fixture.message_count(&dead_queue).await,
        0,
        "not dead-lettered"
    );
    // The backlog of a connected consumer's queue is sampled as consumer lag.
    let gauge = format!("consumer_queue_messages{{queue=\"{queue}\"}}");
    wait_until(DEADLINE, "the queue's backlog in the metrics", || async {
        metrics().render().contains(&gauge)
    })
    .await;
    proxy.up();
    wait_until(
        DEADLINE,
        "the event's effect once the database is back",
        || async {
            let effects: i64 =
                sqlx::query_scalar("SELECT count(*) FROM effect WHERE event_id = $1")
                    .bind(event.id)
                    .fetch_one(&fixture.pool)
                    .await
                    .expect("count");
            effects == 1
        },
    )
    .await;
    shutdown.cancel();
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
    assert_eq!(fixture.message_count(&dead_queue).await, 0);
    assert_eq!(fixture.message_count(&queue).await, 0);
    fixture.cleanup().await;
}
