//! Events: the transactional outbox, the relay that publishes it to RabbitMQ, the topology, and
//! the consumer runner. Producers never publish directly; consumers dedupe in their own
//! transaction and acknowledge after it commits.

mod connection;
mod consumer;
mod outbox;
mod relay;
mod topology;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use essentials_proto::events::v1::EventEnvelope;
use prost::Message;
use tokio::sync::watch;
use uuid::Uuid;

pub use connection::{Backoff, connect};
pub use consumer::{Consumer, ConsumerSpec, EventHandler, HandlerError};
pub use outbox::{enqueue, pending_count};
pub use relay::OutboxRelay;
pub use topology::{
    dead_letter_exchange, dead_letter_queue, declare_exchanges, declare_queue, events_exchange,
    queue_name,
};

/// An event about to be written to the outbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: String,
    pub organization_id: Option<Uuid>,
    /// The encoded `EventEnvelope`.
    pub envelope: Vec<u8>,
}

impl NewEvent {
    /// An event whose routing key is the payload type's event name.
    pub fn new<P: essentials_proto::events::EventPayload>(
        organization_id: Option<Uuid>,
        actor_user_id: Option<Uuid>,
        payload: &P,
    ) -> Self {
        Self::from_any(
            P::EVENT_TYPE,
            organization_id,
            actor_user_id,
            prost_types::Any::from_msg(payload).unwrap_or_else(|_| prost_types::Any {
                // Encoding into a Vec cannot run out of space; keep the type even so.
                type_url: format!("type.googleapis.com/{}", P::full_name()),
                value: payload.encode_to_vec(),
            }),
        )
    }

    /// An event with an explicit routing key and payload.
    pub fn from_any(
        event_type: &str,
        organization_id: Option<Uuid>,
        actor_user_id: Option<Uuid>,
        payload: prost_types::Any,
    ) -> Self {
        let id = Uuid::now_v7();
        let envelope = EventEnvelope {
            event_id: id.to_string(),
            event_type: event_type.to_owned(),
            organization_id: organization_id.map(|id| id.to_string()).unwrap_or_default(),
            occurred_at: Some(prost_types::Timestamp::from(SystemTime::now())),
            actor_user_id: actor_user_id.map(|id| id.to_string()).unwrap_or_default(),
            payload: Some(payload),
        };
        Self {
            id,
            event_type: event_type.to_owned(),
            organization_id,
            envelope: envelope.encode_to_vec(),
        }
    }
}

/// An event as a consumer receives it.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    pub id: Uuid,
    pub event_type: String,
    pub organization_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub occurred_at: Option<prost_types::Timestamp>,
    pub payload: prost_types::Any,
}

impl ReceivedEvent {
    /// Decodes a delivered envelope; `None` for bytes that are not one (a poison message).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let envelope = EventEnvelope::decode(bytes).ok()?;
        let parse_optional = |text: &str| {
            if text.is_empty() {
                Some(None)
            } else {
                Uuid::parse_str(text).ok().map(Some)
            }
        };
        Some(Self {
            id: Uuid::parse_str(&envelope.event_id).ok()?,
            organization_id: parse_optional(&envelope.organization_id)?,
            actor_user_id: parse_optional(&envelope.actor_user_id)?,
            event_type: envelope.event_type,
            occurred_at: envelope.occurred_at,
            payload: envelope.payload.unwrap_or_default(),
        })
    }

    /// The payload as its message type; a mismatch is permanent (retrying cannot fix it).
    pub fn payload<P: prost::Name + Default>(&self) -> Result<P, HandlerError> {
        self.payload.to_msg::<P>().map_err(|error| {
            HandlerError::Permanent(anyhow::anyhow!(
                "event {} ({}) does not carry a {}: {error}",
                self.id,
                self.event_type,
                P::full_name()
            ))
        })
    }
}

/// Live broker state of each bus component (relay, consumers), for readiness and `/readyz`.
#[derive(Clone)]
pub struct BusStatus {
    state: Arc<watch::Sender<HashMap<String, bool>>>,
}

impl Default for BusStatus {
    fn default() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(HashMap::new())),
        }
    }
}

impl BusStatus {
    /// Registers a component as not yet connected.
    pub fn register(&self, component: &str) {
        self.set(component, false);
    }

    pub fn set(&self, component: &str, connected: bool) {
        crate::metrics::metrics()
            .bus_connected
            .get_or_create(&crate::metrics::ComponentLabels {
                component: component.to_owned(),
            })
            .set(i64::from(connected));
        self.state.send_if_modified(|state| {
            state.insert(component.to_owned(), connected) != Some(connected)
        });
    }

    /// True when every registered component is connected (and at least one is registered).
    pub fn all_connected(&self) -> bool {
        let state = self.state.borrow();
        !state.is_empty() && state.values().all(|connected| *connected)
    }

    pub fn snapshot(&self) -> HashMap<String, bool> {
        self.state.borrow().clone()
    }

    /// Waits until every registered component is connected, or the timeout passes.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut receiver = self.state.subscribe();
        tokio::time::timeout(
            timeout,
            receiver.wait_for(|state| !state.is_empty() && state.values().all(|c| *c)),
        )
        .await
        .is_ok_and(|result| result.is_ok())
    }

    pub fn subscribe(&self) -> watch::Receiver<HashMap<String, bool>> {
        self.state.subscribe()
    }
}
