//! Use cases of the notification part: the e-mail log, the dashboard, the reminder runs.

use essentials_proto::events::v1::DistributionSnapshot;
use essentials_runtime::ServiceError;
use prost::Message;
use sqlx::PgPool;
use time::{Date, OffsetDateTime, Time};
use uuid::Uuid;

use crate::domain::dashboard::{OUTSTANDING_LIMIT, rest_of_week};
use crate::domain::emails;
use crate::repo::{self, DashboardRows, EmailFilter, EmailRow};

/// The event_type of distribution reminder e-mails.
pub const DISTRIBUTION_REMINDER_EVENT: &str = "reminder.distribution";
/// The event_type of deadline reminder e-mails.
pub const DEADLINE_REMINDER_EVENT: &str = "reminder.deadline";

fn internal(error: sqlx::Error) -> ServiceError {
    ServiceError::internal(error)
}

#[derive(Clone)]
pub struct Notifications {
    pool: PgPool,
}

/// One page of the log and where the next starts.
pub struct EmailPage {
    pub emails: Vec<EmailRow>,
    pub next: Option<(OffsetDateTime, Uuid)>,
}

impl Notifications {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn list_emails(
        &self,
        organization_id: Uuid,
        filter: &EmailFilter,
        page_size: i64,
    ) -> Result<EmailPage, ServiceError> {
        let mut emails = repo::list_emails(&self.pool, organization_id, filter, page_size + 1)
            .await
            .map_err(internal)?;
        let next = if emails.len() as i64 > page_size {
            emails.truncate(usize::try_from(page_size).unwrap_or(0));
            emails.last().map(|last| (last.created_at, last.id))
        } else {
            None
        };
        Ok(EmailPage { emails, next })
    }

    pub async fn get_email(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<EmailRow, ServiceError> {
        repo::get_email(&self.pool, organization_id, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| ServiceError::not_found("e-mail"))
    }

    pub async fn dashboard(&self, organization_id: Uuid) -> Result<DashboardRows, ServiceError> {
        let week = rest_of_week(OffsetDateTime::now_utc());
        repo::load_dashboard(&self.pool, organization_id, week, OUTSTANDING_LIMIT)
            .await
            .map_err(internal)
    }

    /// Logs the distribution reminders due on `day` (distributions of the next day) for one bank
    /// or every bank; returns how many e-mails were newly logged. With `claim`, a bank whose run
    /// for that day another replica (or an earlier round) already claimed is skipped; without it
    /// (RunDueReminders) each reminder's dedupe key alone keeps it from going out twice.
    pub async fn run_distribution_reminders(
        &self,
        day: Date,
        organization_id: Option<Uuid>,
        claim: bool,
    ) -> Result<i32, ServiceError> {
        let from = day.next_day().unwrap_or(day).midnight().assume_utc();
        let to = from + time::Duration::days(1);
        let banks = match organization_id {
            Some(bank) => vec![bank],
            None => repo::banks_with_distributions_between(&self.pool, from, to)
                .await
                .map_err(internal)?,
        };
        let now = day.with_time(Time::MIDNIGHT).assume_utc();
        let mut sent = 0;
        for bank in banks {
            let mut transaction = self.pool.begin().await.map_err(internal)?;
            let claimed =
                repo::claim_reminder_run(&mut transaction, bank, day, DISTRIBUTION_REMINDER_EVENT)
                    .await
                    .map_err(internal)?;
            if claim && !claimed {
                continue;
            }
            let due = repo::scheduled_distributions_between(&self.pool, bank, from, to)
                .await
                .map_err(internal)?;
            for (distribution_id, encoded) in due {
                let Ok(snapshot) = DistributionSnapshot::decode(encoded.as_slice()) else {
                    tracing::error!(%distribution_id, "stored distribution snapshot is unreadable");
                    continue;
                };
                let Some(outgoing) = emails::distribution_reminder(&snapshot, now) else {
                    continue;
                };
                let dedupe_key = format!(
                    "{DISTRIBUTION_REMINDER_EVENT}/{distribution_id}/{}",
                    from.date()
                );
                let inserted = repo::insert_email(
                    &mut transaction,
                    bank,
                    &dedupe_key,
                    None,
                    DISTRIBUTION_REMINDER_EVENT,
                    &outgoing,
                )
                .await
                .map_err(internal)?;
                if inserted {
                    sent += 1;
                }
            }
            transaction.commit().await.map_err(internal)?;
        }
        Ok(sent)
    }
}
