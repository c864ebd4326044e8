//! Reminder dates (DOMAIN.md §3.2–3.3, §6.6; behaviours 29 and 30): who is reminded of the
//! request deadline on a day, which deadline the e-mail names, and which distributions get their
//! reminder. Pure; the daily job and RunDueReminders use it.

use time::format_description::BorrowedFormatItem;
use time::{Date, Duration, Month, Weekday};

/// Days on the wire ("YYYY-MM-DD": RunDueRemindersRequest.date, the partner part's reminder
/// dates) and in reminder dedupe keys.
const DAY_FORMAT: &[BorrowedFormatItem<'_>] =
    time::macros::format_description!("[year]-[month]-[day]");

pub fn format_day(day: Date) -> String {
    day.format(DAY_FORMAT).unwrap_or_default()
}

pub fn parse_day(text: &str) -> Option<Date> {
    Date::parse(text.trim(), DAY_FORMAT).ok()
}

/// Which week of the month a day-of-week schedule means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeekOfMonth {
    /// 1..=4.
    Nth(u8),
    Last,
}

/// A monthly reminder schedule, as a bank or a partner group stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// The nth day of each month (1–28).
    DayOfMonth(u8),
    /// e.g. the second Tuesday, or the last Friday, of each month.
    DayOfWeek { weekday: Weekday, week: WeekOfMonth },
}

impl Schedule {
    pub fn occurs_on(&self, date: Date) -> bool {
        match *self {
            Schedule::DayOfMonth(day) => date.day() == day,
            Schedule::DayOfWeek { weekday, week } => {
                if date.weekday() != weekday {
                    return false;
                }
                match week {
                    WeekOfMonth::Nth(nth) => (date.day() - 1) / 7 + 1 == nth,
                    WeekOfMonth::Last => (date + Duration::days(7)).month() != date.month(),
                }
            }
        }
    }
}

/// The reminder settings of a bank or a group: both a schedule and a deadline day, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReminderSettings {
    pub schedule: Option<Schedule>,
    /// 1–28.
    pub deadline_day: Option<u8>,
}

impl ReminderSettings {
    fn complete(&self) -> Option<(Schedule, u8)> {
        Some((self.schedule?, self.deadline_day?))
    }
}

/// What the selection needs to know of a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartnerReminderFacts {
    pub deactivated: bool,
    pub send_reminders: bool,
    /// The partner's group's settings, if it is in a group.
    pub group: Option<ReminderSettings>,
}

/// The deadline day to remind this partner of today, or `None` when it is not reminded today.
/// A group with a schedule and a deadline day decides alone (the partner's own flag is not
/// consulted); otherwise the partner must have opted in and the bank's schedule decides.
/// Deactivated partners are never reminded.
pub fn reminder_due(
    partner: &PartnerReminderFacts,
    bank: &ReminderSettings,
    today: Date,
) -> Option<u8> {
    if partner.deactivated {
        return None;
    }
    if let Some((schedule, deadline_day)) = partner.group.and_then(|group| group.complete()) {
        return schedule.occurs_on(today).then_some(deadline_day);
    }
    let (schedule, deadline_day) = bank.complete()?;
    (partner.send_reminders && schedule.occurs_on(today)).then_some(deadline_day)
}

/// The next deadline: this month when today is before the deadline day, else next month
/// (a deadline "today" means next month's).
pub fn next_deadline(today: Date, deadline_day: u8) -> Date {
    let (year, month) = if today.day() < deadline_day {
        (today.year(), today.month())
    } else if today.month() == Month::December {
        (today.year() + 1, Month::January)
    } else {
        (today.year(), today.month().next())
    };
    // Deadline days are 1–28, so every month has the day; clamp defensively all the same.
    let day = deadline_day.clamp(1, 28);
    Date::from_calendar_date(year, month, day).unwrap_or(today)
}

/// A distribution's reminder goes out the day before its date.
pub fn distribution_reminder_due(issued_on: Date, today: Date) -> bool {
    today.next_day() == Some(issued_on)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const BANK: ReminderSettings = ReminderSettings {
        schedule: Some(Schedule::DayOfMonth(10)),
        deadline_day: Some(20),
    };

    fn partner(send_reminders: bool, group: Option<ReminderSettings>) -> PartnerReminderFacts {
        PartnerReminderFacts {
            deactivated: false,
            send_reminders,
            group,
        }
    }

    // Behaviour 29.
    #[test]
    fn bank_schedule_today_reminds_partners_that_opted_in() {
        let today = date!(2026 - 11 - 10);
        assert_eq!(reminder_due(&partner(true, None), &BANK, today), Some(20));
        assert_eq!(reminder_due(&partner(false, None), &BANK, today), None);
    }

    #[test]
    fn deactivated_partner_is_never_reminded() {
        let today = date!(2026 - 11 - 10);
        let mut facts = partner(true, None);
        facts.deactivated = true;
        assert_eq!(reminder_due(&facts, &BANK, today), None);
        facts.group = Some(ReminderSettings {
            schedule: Some(Schedule::DayOfMonth(10)),
            deadline_day: Some(15),
        });
        assert_eq!(reminder_due(&facts, &BANK, today), None);
    }

    #[test]
    fn group_schedule_overrides_the_bank_and_ignores_the_partner_flag() {
        let group = ReminderSettings {
            schedule: Some(Schedule::DayOfMonth(12)),
            deadline_day: Some(25),
        };
        // The bank's day: the group decides, so no reminder.
        assert_eq!(
            reminder_due(&partner(true, Some(group)), &BANK, date!(2026 - 11 - 10)),
            None
        );
        // The group's day: reminded even without the partner's opt-in, with the group's deadline.
        assert_eq!(
            reminder_due(&partner(false, Some(group)), &BANK, date!(2026 - 11 - 12)),
            Some(25)
        );
    }

    #[test]
    fn group_without_schedule_falls_back_to_the_bank() {
        let group = ReminderSettings::default();
        assert_eq!(
            reminder_due(&partner(true, Some(group)), &BANK, date!(2026 - 11 - 10)),
            Some(20)
        );
    }

    #[test]
    fn not_today_is_not_reminded() {
        assert_eq!(
            reminder_due(&partner(true, None), &BANK, date!(2026 - 11 - 11)),
            None
        );
        let no_schedule = ReminderSettings {
            schedule: None,
            deadline_day: Some(20),
        };
        assert_eq!(
            reminder_due(&partner(true, None), &no_schedule, date!(2026 - 11 - 10)),
            None
        );
    }

    #[test]
    fn day_of_week_schedules() {
        let second_tuesday = Schedule::DayOfWeek {
            weekday: Weekday::Tuesday,
            week: WeekOfMonth::Nth(2),
        };
        // November 2026: Tuesdays are the 3rd, 10th, 17th, 24th.
        assert!(second_tuesday.occurs_on(date!(2026 - 11 - 10)));
        assert!(!second_tuesday.occurs_on(date!(2026 - 11 - 3)));
        assert!(!second_tuesday.occurs_on(date!(2026 - 11 - 11)));
        let last_tuesday = Schedule::DayOfWeek {
            weekday: Weekday::Tuesday,
            week: WeekOfMonth::Last,
        };
        assert!(last_tuesday.occurs_on(date!(2026 - 11 - 24)));
        assert!(!last_tuesday.occurs_on(date!(2026 - 11 - 17)));
    }

    // Behaviour 30.
    #[test]
    fn deadline_is_this_month_when_the_day_is_ahead() {
        assert_eq!(
            next_deadline(date!(2026 - 11 - 10), 20),
            date!(2026 - 11 - 20)
        );
    }

    #[test]
    fn deadline_today_or_past_is_next_month() {
        assert_eq!(
            next_deadline(date!(2026 - 11 - 20), 20),
            date!(2026 - 12 - 20)
        );
        assert_eq!(
            next_deadline(date!(2026 - 11 - 25), 20),
            date!(2026 - 12 - 20)
        );
        assert_eq!(
            next_deadline(date!(2026 - 12 - 25), 5),
            date!(2027 - 01 - 05)
        );
    }

    #[test]
    fn group_deadline_beats_the_bank_deadline() {
        let group = ReminderSettings {
            schedule: Some(Schedule::DayOfMonth(10)),
            deadline_day: Some(15),
        };
        let today = date!(2026 - 11 - 10);
        let deadline_day = reminder_due(&partner(false, Some(group)), &BANK, today).expect("due");
        assert_eq!(next_deadline(today, deadline_day), date!(2026 - 11 - 15));
    }

    #[test]
    fn days_round_trip_as_year_month_day() {
        assert_eq!(format_day(date!(2026 - 01 - 05)), "2026-01-05");
        assert_eq!(parse_day(" 2026-01-05 "), Some(date!(2026 - 01 - 05)));
        assert_eq!(parse_day("01/05/2026"), None);
    }

    #[test]
    fn distribution_reminder_is_the_day_before() {
        assert!(distribution_reminder_due(
            date!(2026 - 11 - 11),
            date!(2026 - 11 - 10)
        ));
        assert!(!distribution_reminder_due(
            date!(2026 - 11 - 10),
            date!(2026 - 11 - 10)
        ));
        assert!(distribution_reminder_due(
            date!(2027 - 01 - 01),
            date!(2026 - 12 - 31)
        ));
    }
}
