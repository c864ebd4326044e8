//! Deadline reminders (DOMAIN.md §3.3): once per bank per day, the partners whose reminder day it
//! is get a `partner.deadline_reminder_due` event, which the notification part turns into the
//! e-mail. Every replica runs the job; a claim row per (bank, day) lets exactly one of them
//! select a bank's reminders, in the same transaction as its events.

use std::time::Duration;

use essentials_proto::events::v1 as events;
use essentials_proto::partner::v1 as pb;
use essentials_runtime::auth::{Principal, Role};
use essentials_runtime::bus::{NewEvent, enqueue};
use essentials_runtime::{CancellationToken, ServiceError};
use sqlx::PgConnection;
use time::{Date, OffsetDateTime, Time};
use uuid::Uuid;

use crate::domain::{self, Schedule};
use crate::repo::{self, OrganizationRow, PartnerRow};
use crate::service::{App, bank_ref, partner_ref};

/// Reminders go out from 12:00 UTC, as the reference's clock does.
const RUN_FROM: Time = time::macros::time!(12:00);
/// How often the job looks whether today's run is due.
const CHECK_EVERY: Duration = Duration::from_secs(300);

/// A partner to remind, with the deadline and the group whose schedule chose it.
pub struct Due {
    pub partner: PartnerRow,
    pub deadline: Date,
    pub group: Option<Uuid>,
}

impl App {
    /// The bank's partners to remind on `day`.
    pub(super) async fn due(
        &self,
        connection: &mut PgConnection,
        organization: &OrganizationRow,
        day: Date,
    ) -> Result<Vec<Due>, ServiceError> {
        let candidates = repo::reminder_candidates(&mut *connection, organization.id).await?;
        let bank = Schedule {
            deadline_day: organization.deadline_day,
            reminder_day: organization.reminder_day,
        };
        let mut due = Vec::new();
        for candidate in candidates {
            let group = candidate.group_id.map(|_| Schedule {
                deadline_day: candidate.group_deadline_day,
                reminder_day: candidate.group_reminder_day,
            });
            let Some(partner) =
                crate::repo::partner(connection, organization.id, candidate.id, false).await?
            else {
                continue;
            };
            let group_scheduled = group.is_some_and(|schedule| {
                schedule.deadline_day.is_some() && schedule.reminder_day.is_some()
            });
            if let Some(deadline) =
                domain::reminder_due(day, partner.status(), partner.send_reminders, group, bank)
            {
                due.push(Due {
                    partner,
                    deadline,
                    group: candidate.group_id.filter(|_| group_scheduled),
                });
            }
        }
        Ok(due)
    }

    /// Who would be reminded on `day`: bank staff see their bank, a super admin any bank (or all).
    pub async fn list_deadline_reminders(
        &self,
        principal: &Principal,
        organization: Option<Uuid>,
        day: Date,
    ) -> Result<Vec<pb::DeadlineReminder>, ServiceError> {
        let organizations: Vec<Uuid> = match principal.role {
            Role::SuperAdmin => match organization {
                Some(id) => vec![id],
                None => repo::organization_ids(&mut *self.pool.acquire().await?).await?,
            },
            _ => vec![principal.require_bank_staff()?],
        };
        let mut connection = self.pool.acquire().await?;
        let mut reminders = Vec::new();
        for organization_id in organizations {
            let Some(organization) = repo::organization(&mut connection, organization_id).await?
            else {
                continue;
            };
            for due in self.due(&mut connection, &organization, day).await? {
                reminders.push(pb::DeadlineReminder {
                    organization_id: organization.id.to_string(),
                    organization_name: organization.name.clone(),
                    partner_id: due.partner.id.to_string(),
                    partner_name: due.partner.name.clone(),
                    partner_email: due.partner.email.clone(),
                    deadline_date: domain::format_date(due.deadline),
                    reminder_email_text: organization.reminder_email_text.clone(),
                });
            }
        }
        Ok(reminders)
    }

    /// Claims each bank's run for `day` and writes its reminder events; returns how many
    /// reminders this call wrote (0 for banks another replica already ran).
    pub async fn run_deadline_reminders(&self, day: Date) -> Result<usize, ServiceError> {
        let organizations = repo::organization_ids(&mut *self.pool.acquire().await?).await?;
        let mut written = 0;
        for organization_id in organizations {
            let mut transaction = self.pool.begin().await?;
            if !repo::claim_reminder_run(&mut transaction, organization_id, day).await? {
                continue;
            }
            let Some(organization) = repo::organization(&mut transaction, organization_id).await?
            else {
                continue;
            };
            let due = self.due(&mut transaction, &organization, day).await?;
            for reminder in &due {
                let event = NewEvent::new(
                    Some(organization_id),
                    None,
                    &events::PartnerDeadlineReminderDue {
                        partner: Some(partner_ref(&reminder.partner)),
                        bank: Some(bank_ref(&organization)),
                        deadline_date: domain::format_date(reminder.deadline),
                        reminder_date: domain::format_date(day),
                        reminder_email_text: organization.reminder_email_text.clone(),
                        partner_group_id: reminder
                            .group
                            .map(|id| id.to_string())
                            .unwrap_or_default(),
                    },
                );
                enqueue(&mut transaction, &event).await?;
            }
            let reminded = i32::try_from(due.len()).unwrap_or(i32::MAX);
            repo::record_reminder_run(&mut transaction, organization_id, day, reminded).await?;
            transaction.commit().await?;
            written += due.len();
        }
        Ok(written)
    }
}

/// The daily job: from 12:00 UTC, today's run (a no-op once every bank is claimed).
pub async fn run_daily(app: App, shutdown: CancellationToken) {
    loop {
        let now = OffsetDateTime::now_utc();
        if now.time() >= RUN_FROM {
            match app.run_deadline_reminders(now.date()).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, day = %now.date(), "deadline reminders written"),
                Err(error) => tracing::warn!(%error, "deadline reminders failed; will retry"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(CHECK_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
