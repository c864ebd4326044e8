//! The daily reminder job. Every replica runs it; the (bank, day, kind) claim row makes exactly
//! one of them log a bank's reminders for a day, and each reminder's dedupe key keeps a re-run
//! from sending it twice.

use std::time::Duration;

use essentials_runtime::CancellationToken;
use time::{OffsetDateTime, Time};

use crate::service::Notifications;

/// Reminders go out from 12:00 UTC (the reference's clock.rb runs the job at noon).
const RUN_FROM: Time = time::macros::time!(12:00);
/// How often the job looks whether today's run is due and claimed.
const CHECK_EVERY: Duration = Duration::from_secs(300);

pub async fn run_daily_reminders(app: Notifications, shutdown: CancellationToken) {
    loop {
        let now = OffsetDateTime::now_utc();
        if now.time() >= RUN_FROM {
            match app.run_distribution_reminders(now.date(), None, true).await {
                Ok(0) => {}
                Ok(count) => {
                    tracing::info!(count, day = %now.date(), "distribution reminders logged")
                }
                Err(error) => tracing::warn!(%error, "distribution reminders failed; will retry"),
            }
            // Deadline reminders arrive as partner.deadline_reminder_due events (see the README).
        }
        tokio::select! {
            () = tokio::time::sleep(CHECK_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
