//! Deadline reminders: schedules, the next deadline and who is reminded on a day.

use essentials_runtime::{FieldViolation, ServiceError};
use time::Date;

use super::PartnerStatus;

const DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Dates in events and the API: ISO 8601, `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}

/// A client's date; a violation under `field` when it is not `YYYY-MM-DD`.
pub fn parse_date(field: &str, text: &str) -> Result<Date, ServiceError> {
    Date::parse(text, DATE_FORMAT).map_err(|_| {
        ServiceError::invalid(vec![FieldViolation::new(
            field,
            "must be a date, YYYY-MM-DD",
        )])
    })
}

/// A reminder schedule: the deadline day and the day of the month the reminder goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    pub deadline_day: Option<i32>,
    pub reminder_day: Option<i32>,
}

impl Schedule {
    fn complete(self) -> Option<(i32, i32)> {
        Some((self.deadline_day?, self.reminder_day?))
    }
}

/// The next deadline after `today`: this month when the deadline day is still ahead, otherwise
/// next month (a deadline "today" means next month's).
pub fn next_deadline(today: time::Date, deadline_day: i32) -> Option<time::Date> {
    let day = u8::try_from(deadline_day).ok()?;
    let (year, month) = if i32::from(today.day()) < deadline_day {
        (today.year(), today.month())
    } else if today.month() == time::Month::December {
        (today.year() + 1, time::Month::January)
    } else {
        (today.year(), today.month().next())
    };
    time::Date::from_calendar_date(year, month, day).ok()
}

/// Whether a partner is reminded today, and of which deadline (DOMAIN.md §3.3): a group with a
/// schedule decides for its partners whatever their own opt-in; otherwise the bank's schedule
/// applies to partners that opted in. Deactivated partners are never reminded.
pub fn reminder_due(
    today: time::Date,
    status: PartnerStatus,
    send_reminders: bool,
    group: Option<Schedule>,
    bank: Schedule,
) -> Option<time::Date> {
    if status == PartnerStatus::Deactivated {
        return None;
    }
    let today_day = i32::from(today.day());
    if let Some((deadline, reminder)) = group.and_then(Schedule::complete) {
        return (reminder == today_day)
            .then(|| next_deadline(today, deadline))
            .flatten();
    }
    let (deadline, reminder) = bank.complete()?;
    (send_reminders && reminder == today_day)
        .then(|| next_deadline(today, deadline))
        .flatten()
}

#[cfg(test)]
mod reminder_tests {
    use super::*;
    use time::macros::date;

    fn schedule(deadline: i32, reminder: i32) -> Schedule {
        Schedule {
            deadline_day: Some(deadline),
            reminder_day: Some(reminder),
        }
    }

    #[test]
    fn deadline_is_this_month_when_ahead_else_next_month() {
        assert_eq!(
            next_deadline(date!(2026 - 11 - 10), 20),
            Some(date!(2026 - 11 - 20))
        );
        assert_eq!(
            next_deadline(date!(2026 - 11 - 20), 20),
            Some(date!(2026 - 12 - 20))
        );
        assert_eq!(
            next_deadline(date!(2026 - 11 - 25), 20),
            Some(date!(2026 - 12 - 20))
        );
        assert_eq!(
            next_deadline(date!(2026 - 12 - 25), 5),
            Some(date!(2027 - 01 - 05))
        );
    }

    #[test]
    fn bank_schedule_reminds_partners_that_opted_in_on_its_day() {
        let today = date!(2026 - 11 - 10);
        let bank = schedule(20, 10);
        assert_eq!(
            reminder_due(today, PartnerStatus::Approved, true, None, bank),
            Some(date!(2026 - 11 - 20))
        );
        assert_eq!(
            reminder_due(today, PartnerStatus::Approved, false, None, bank),
            None
        );
        assert_eq!(
            reminder_due(
                date!(2026 - 11 - 11),
                PartnerStatus::Approved,
                true,
                None,
                bank
            ),
            None
        );
        assert_eq!(
            reminder_due(today, PartnerStatus::Deactivated, true, None, bank),
            None
        );
        assert_eq!(
            reminder_due(
                today,
                PartnerStatus::Approved,
                true,
                None,
                Schedule::default()
            ),
            None,
            "no bank schedule, no reminder"
        );
    }

    #[test]
    fn group_schedule_overrides_the_bank_and_the_partners_opt_in() {
        let bank = schedule(20, 10);
        let group = schedule(25, 15);
        assert_eq!(
            reminder_due(
                date!(2026 - 11 - 15),
                PartnerStatus::Invited,
                false,
                Some(group),
                bank
            ),
            Some(date!(2026 - 11 - 25))
        );
        assert_eq!(
            reminder_due(
                date!(2026 - 11 - 10),
                PartnerStatus::Invited,
                true,
                Some(group),
                bank
            ),
            None,
            "the bank's day does not apply to a scheduled group"
        );
        assert_eq!(
            reminder_due(
                date!(2026 - 11 - 15),
                PartnerStatus::Deactivated,
                true,
                Some(group),
                bank
            ),
            None
        );
        // A group without a schedule leaves its partners to the bank's.
        assert_eq!(
            reminder_due(
                date!(2026 - 11 - 10),
                PartnerStatus::Approved,
                true,
                Some(Schedule::default()),
                bank
            ),
            Some(date!(2026 - 11 - 20))
        );
    }
}
