//! Exchanges and queues. Every part declares what it uses at start (declarations are idempotent),
//! so a fresh broker needs no setup; deploy/ also ships the same topology as a definitions file.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

/// The topic exchange every event goes to, routed by event name.
pub fn events_exchange(prefix: &str) -> String {
    format!("{prefix}.events")
}

/// Where poison messages and messages past their delivery limit go.
pub fn dead_letter_exchange(prefix: &str) -> String {
    format!("{prefix}.dead-letter")
}

/// `<prefix>.<consumer>.<purpose>`, one queue per consuming part and purpose.
pub fn queue_name(prefix: &str, consumer: &str, purpose: &str) -> String {
    format!("{prefix}.{consumer}.{purpose}")
}

pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dead")
}

pub async fn declare_exchanges(channel: &Channel, prefix: &str) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            events_exchange(prefix).into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            dead_letter_exchange(prefix).into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// Declares a quorum queue bound to the events exchange for each routing key, with its
/// dead-letter queue. The broker counts deliveries and dead-letters a message once it has been
/// delivered more than `delivery_limit` times.
pub async fn declare_queue(
    channel: &Channel,
    prefix: &str,
    queue: &str,
    bindings: &[String],
    delivery_limit: u32,
    expires_ms: Option<u64>,
) -> lapin::Result<()> {
    declare_exchanges(channel, prefix).await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let dead_queue = dead_letter_queue(queue);
    let expires =
        expires_ms.map(|ms| AMQPValue::LongLongInt(i64::try_from(ms).unwrap_or(i64::MAX)));
    let mut dead_arguments = FieldTable::default();
    dead_arguments.insert(ShortString::from("x-queue-type"), text("quorum"));
    if let Some(expires) = &expires {
        dead_arguments.insert(ShortString::from("x-expires"), expires.clone());
    }
    channel
        .queue_declare(dead_queue.as_str().into(), durable, dead_arguments)
        .await?;
    channel
        .queue_bind(
            dead_queue.as_str().into(),
            dead_letter_exchange(prefix).into(),
            dead_queue.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut arguments = FieldTable::default();
    arguments.insert(ShortString::from("x-queue-type"), text("quorum"));
    arguments.insert(
        ShortString::from("x-delivery-limit"),
        AMQPValue::LongInt(i32::try_from(delivery_limit).unwrap_or(i32::MAX)),
    );
    arguments.insert(
        ShortString::from("x-dead-letter-exchange"),
        text(&dead_letter_exchange(prefix)),
    );
    arguments.insert(
        ShortString::from("x-dead-letter-routing-key"),
        text(&dead_queue),
    );
    if let Some(expires) = expires {
        arguments.insert(ShortString::from("x-expires"), expires);
    }
    channel
        .queue_declare(queue.into(), durable, arguments)
        .await?;
    for routing_key in bindings {
        channel
            .queue_bind(
                queue.into(),
                events_exchange(prefix).into(),
                routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
