//! Fan-out of dashboard changes to watchers: one Postgres LISTEN per replica turns the NOTIFYs of
//! the dashboard consumer (whichever replica handled the event) into an in-process broadcast.

use std::time::Duration;

use essentials_runtime::CancellationToken;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::repo::DASHBOARD_CHANNEL;

/// A change: `Some(bank)`, or `None` when notifications may have been missed (every watcher
/// reloads).
pub type DashboardChange = Option<Uuid>;

#[derive(Clone)]
pub struct DashboardHub {
    changes: broadcast::Sender<DashboardChange>,
}

impl Default for DashboardHub {
    fn default() -> Self {
        Self {
            changes: broadcast::Sender::new(256),
        }
    }
}

impl DashboardHub {
    pub fn subscribe(&self) -> broadcast::Receiver<DashboardChange> {
        self.changes.subscribe()
    }

    /// Listens until `shutdown`, reconnecting with backoff.
    pub async fn run(self, pool: PgPool, shutdown: CancellationToken) {
        let mut backoff = essentials_runtime::bus::Backoff::default();
        while !shutdown.is_cancelled() {
            match self.listen(&pool, &shutdown, &mut backoff).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "dashboard notifications lost; reconnecting");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay().min(Duration::from_secs(5))) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    async fn listen(
        &self,
        pool: &PgPool,
        shutdown: &CancellationToken,
        backoff: &mut essentials_runtime::bus::Backoff,
    ) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(DASHBOARD_CHANNEL).await?;
        backoff.reset();
        // Anything may have changed while we were not listening.
        let _ = self.changes.send(None);
        loop {
            tokio::select! {
                notification = listener.recv() => {
                    let notification = notification?;
                    let change = Uuid::parse_str(notification.payload()).ok();
                    // No receivers is fine: nobody is watching.
                    let _ = self.changes.send(change);
                }
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }
}
