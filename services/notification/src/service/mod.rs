//! Use cases of the notification part: the e-mail log, the dashboard (and its rebuild from the
//! owning parts), the reminder runs. The part's other entry points sit beside them: the event
//! `handlers`, the e-mail `sender`, the daily reminder `jobs`, the dashboard `watch` hub; the
//! questions to the owning parts are in `owners`, turned into projection rows by `rebuild`.

pub mod handlers;
pub mod jobs;
pub mod owners;
pub mod rebuild;
pub mod sender;
pub mod watch;

use std::collections::BTreeMap;

use essentials_proto::events::v1::DistributionSnapshot;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::{Principal, Role};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use time::{Date, OffsetDateTime, Time};
use uuid::Uuid;

use crate::domain::NotificationError;
use crate::domain::dashboard::{OUTSTANDING_LIMIT, rebuild_as_of, rest_of_week};
use crate::domain::emails::{self, DueDeadlineReminder, receipt_name};
use crate::domain::pdf;
use crate::domain::reminders::format_day;
use crate::repo::{self, DashboardRows, EmailFilter, EmailRow};
use owners::Owners;

/// The event_type of distribution reminder e-mails.
pub const DISTRIBUTION_REMINDER_EVENT: &str = "reminder.distribution";
/// The event_type of deadline reminder e-mails.
pub const DEADLINE_REMINDER_EVENT: &str = "reminder.deadline";

fn internal(error: sqlx::Error) -> ServiceError {
    ServiceError::internal(error)
}

/// The rebuild's writes wait on rows handlers hold and the other way round; should Postgres
/// still find a deadlock or a serialization failure, the caller may simply try again.
fn rebuild_write_error(error: sqlx::Error) -> ServiceError {
    match essentials_runtime::error::sqlstate(&error).as_deref() {
        Some("40P01" | "40001") => NotificationError::RebuildRaced.into(),
        _ => ServiceError::from(error),
    }
}

/// The log key of a deadline reminder: one per (bank, partner, reminder day), whoever logs it.
pub fn deadline_reminder_key(partner_id: Uuid, day: Date) -> String {
    format!("{DEADLINE_REMINDER_EVENT}/{partner_id}/{}", format_day(day))
}

/// Logs one deadline reminder (pending; the sender sends it); `false` when there is no address
/// to write to or this (bank, partner, day) is already in the log. The one way deadline
/// reminders are logged: `partner.deadline_reminder_due` (with its event id) and RunDueReminders
/// (without) both come here, so neither can send a reminder the other already logged.
pub async fn log_deadline_reminder(
    connection: &mut PgConnection,
    organization_id: Uuid,
    due: &DueDeadlineReminder,
    event_id: Option<Uuid>,
) -> Result<bool, sqlx::Error> {
    let Some(outgoing) = emails::deadline_reminder(&due.reminder) else {
        return Ok(false);
    };
    repo::insert_email(
        connection,
        organization_id,
        &deadline_reminder_key(due.partner_id, due.day),
        event_id,
        DEADLINE_REMINDER_EVENT,
        &outgoing,
    )
    .await
}

#[derive(Clone)]
pub struct Notifications {
    pool: PgPool,
    /// The partner, request and inventory parts (rebuild, deadline reminders).
    owners: Owners,
}

/// One page of the log and where the next starts.
pub struct EmailPage {
    pub emails: Vec<EmailRow>,
    pub next: Option<(OffsetDateTime, Uuid)>,
}

impl Notifications {
    pub fn new(pool: PgPool, owners: Owners) -> Self {
        Self { pool, owners }
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

    /// A distribution's receipt (file name, PDF bytes), from the owning parts' current answers.
    pub async fn distribution_receipt(
        &self,
        principal: &Principal,
        distribution_id: Uuid,
    ) -> Result<(String, Vec<u8>), ServiceError> {
        let snapshot =
            rebuild::current_snapshot(&self.owners, principal, &distribution_id.to_string())
                .await?
                .ok_or_else(|| ServiceError::not_found("distribution"))?;
        Ok((receipt_name(&snapshot), pdf::receipt(&snapshot)))
    }

    pub async fn dashboard(&self, organization_id: Uuid) -> Result<DashboardRows, ServiceError> {
        let week = rest_of_week(OffsetDateTime::now_utc());
        repo::load_dashboard(&self.pool, organization_id, week, OUTSTANDING_LIMIT)
            .await
            .map_err(internal)
    }

    /// Rebuilds the bank's projection from the owning parts (asked with the caller's token) and
    /// returns the new dashboard.
    ///
    /// Events keep arriving while the rebuild reads, so the order of the two matters. The
    /// rebuild does not lock the bank against its event handlers: that would hold the bank's
    /// events (and a consumer slot serving every bank) for the length of several remote calls,
    /// and would still not order the events already queued. Instead its rows carry the time of
    /// the read, as events carry theirs, and go through the handlers' own guards:
    /// - every row is stamped `as_of` = the read's start (less `REBUILD_READ_MARGIN`). An event
    ///   handled later that happened before it changed nothing the read did not see, and loses;
    ///   one that happened after it wins, as it would over any older row. Requests have no time
    ///   but a rank that only grows, so a fulfilment or cancellation always wins;
    /// - the write (one transaction) replaces only rows no event touched since `as_of`; a row an
    ///   event wrote while the rebuild read is newer than the read and is kept as it is;
    /// - what the owners no longer report is retired, not forgotten, where an older event could
    ///   otherwise bring it back: partners are marked reviewed, every item keeps its level,
    ///   distributions gone from the inventory part are marked reclaimed.
    ///
    /// The version is bumped in the same transaction, so watchers reload the rebuilt state.
    pub async fn rebuild_dashboard(
        &self,
        principal: &Principal,
        organization_id: Uuid,
    ) -> Result<DashboardRows, ServiceError> {
        let read_started = OffsetDateTime::now_utc();
        let as_of = rebuild_as_of(read_started);
        let today = rest_of_week(read_started).0;
        let projected = repo::scheduled_distribution_ids_from(&self.pool, organization_id, today)
            .await
            .map_err(internal)?;
        let rebuilt = rebuild::read(&self.owners, principal, as_of, today, &projected).await?;

        let write = async {
            let mut transaction = self.pool.begin().await?;
            repo::replace_requests(&mut transaction, organization_id, as_of, &rebuilt.requests)
                .await?;
            repo::replace_partner_reviews(
                &mut transaction,
                organization_id,
                as_of,
                &rebuilt.awaiting_review,
            )
            .await?;
            repo::replace_stock_levels(&mut transaction, organization_id, as_of, &rebuilt.stock)
                .await?;
            repo::replace_distributions(
                &mut transaction,
                organization_id,
                as_of,
                &rebuilt.distributions,
                &rebuilt.reclaimed,
            )
            .await?;
            repo::bump_dashboard_version(&mut transaction, organization_id).await?;
            essentials_runtime::audit::record(
                &mut transaction,
                essentials_runtime::audit::Audited::subject("dashboard", organization_id),
            )
            .await?;
            transaction.commit().await
        };
        write.await.map_err(rebuild_write_error)?;
        tracing::info!(
            %organization_id,
            requests = rebuilt.requests.len(),
            awaiting_review = rebuilt.awaiting_review.len(),
            items = rebuilt.stock.len(),
            distributions = rebuilt.distributions.len(),
            reclaimed = rebuilt.reclaimed.len(),
            "dashboard rebuilt"
        );
        self.dashboard(organization_id).await
    }

    /// Logs the deadline reminders due on `day` for one bank or (a super admin's call) every
    /// bank, as the partner part selects them (PartnerService.ListDeadlineReminders, asked with
    /// the caller's token); returns how many e-mails were newly logged. Each is logged through
    /// [`log_deadline_reminder`], so one the partner part's event already brought (or an earlier
    /// run) is not sent again.
    pub async fn run_deadline_reminders(
        &self,
        principal: &Principal,
        day: Date,
        organization_id: Option<Uuid>,
    ) -> Result<i32, ServiceError> {
        let listed = self
            .owners
            .deadline_reminders(principal, organization_id, day)
            .await?;
        // The partner part scopes the answer to the caller; this keeps it true whatever it says.
        let allowed = match principal.role {
            Role::SuperAdmin => organization_id,
            _ => Some(principal.organization()?),
        };
        let mut by_bank: BTreeMap<Uuid, Vec<DueDeadlineReminder>> = BTreeMap::new();
        for reminder in &listed {
            let Ok(bank) = Uuid::parse_str(&reminder.organization_id) else {
                tracing::warn!(organization_id = %reminder.organization_id, "deadline reminder without a valid bank; skipped");
                continue;
            };
            if allowed.is_some_and(|allowed| allowed != bank) {
                tracing::warn!(%bank, "deadline reminder of another bank; skipped");
                continue;
            }
            match emails::listed_deadline_reminder(reminder, day) {
                Ok(due) => by_bank.entry(bank).or_default().push(due),
                Err(problem) => {
                    tracing::warn!(%bank, problem, "malformed deadline reminder; skipped");
                }
            }
        }
        let mut sent = 0;
        for (bank, reminders) in by_bank {
            let mut transaction = self.pool.begin().await.map_err(internal)?;
            for due in &reminders {
                if log_deadline_reminder(&mut transaction, bank, due, None)
                    .await
                    .map_err(internal)?
                {
                    sent += 1;
                }
            }
            transaction.commit().await.map_err(internal)?;
        }
        Ok(sent)
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
