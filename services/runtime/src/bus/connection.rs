//! Connecting to RabbitMQ, and the backoff our own supervised loops use between attempts
//! (lapin's built-in auto-recovery is reported unreliable, amqp-rs/lapin issue 450).

use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

/// How long one connection attempt may take before it counts as failed (a black-holed host
/// would otherwise hang).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a connection named after the component, so the broker's UI says who is connected.
pub async fn connect(url: &str, component: &str) -> anyhow::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(component.into());
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(anyhow::anyhow!("could not connect to RabbitMQ: {error}")),
        Err(_) => Err(anyhow::anyhow!(
            "could not connect to RabbitMQ within {CONNECT_TIMEOUT:?}"
        )),
    }
}

/// Exponential backoff: 200 ms, 400 ms, … up to 10 s; reset after a success.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(10);

    pub fn next_delay(&mut self) -> Duration {
        let delay = Self::FIRST.saturating_mul(1u32 << self.attempt.min(16));
        self.attempt = self.attempt.saturating_add(1);
        delay.min(Self::MAX)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.next_delay(), Duration::from_millis(200));
        assert_eq!(backoff.next_delay(), Duration::from_millis(400));
        assert_eq!(backoff.next_delay(), Duration::from_millis(800));
        for _ in 0..40 {
            assert!(backoff.next_delay() <= Duration::from_secs(10));
        }
        assert_eq!(backoff.next_delay(), Duration::from_secs(10));
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(200));
    }
}
