//! The bank dashboard's rules (DOMAIN.md §8): what counts as outstanding, low and this week.

use essentials_proto::inventory::v1::DistributionState;
use time::{Duration, OffsetDateTime, Time};

/// The outstanding-requests list shows at most this many, oldest first.
pub const OUTSTANDING_LIMIT: i64 = 25;

/// RebuildDashboard stamps its rows this long before its first read. An event stamped earlier
/// loses to the rebuilt row, a later one wins; the margin covers the few milliseconds between a
/// producer stamping an event and committing it (a change stamped just before the read but
/// committed after it is not in what the rebuild read, so its event must still win) and small
/// clock differences between replicas. It is short because the other way round costs too: an
/// event of the margin that is older than what the rebuild read, handled after it, re-applies
/// its older state until the next change.
pub const REBUILD_READ_MARGIN: Duration = Duration::seconds(1);

/// The `as_of` / `status_at` of rebuilt rows.
pub fn rebuild_as_of(read_started: OffsetDateTime) -> OffsetDateTime {
    read_started - REBUILD_READ_MARGIN
}

/// The `distribution.state` a distribution in this state is stored with (reclaimed ones are
/// gone from the inventory part; events and the rebuild mark those themselves).
pub fn distribution_state_name(state: DistributionState) -> &'static str {
    match state {
        DistributionState::Complete => "complete",
        DistributionState::Scheduled | DistributionState::Unspecified => "scheduled",
    }
}

/// A request's status as the dashboard tracks it. The rank only grows, so an event handled late
/// (the consumer handles several at once) never moves a request back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Pending,
    Started,
    Fulfilled,
    Cancelled,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Started => "started",
            RequestStatus::Fulfilled => "fulfilled",
            RequestStatus::Cancelled => "cancelled",
        }
    }

    pub fn rank(self) -> i16 {
        match self {
            RequestStatus::Pending => 0,
            RequestStatus::Started => 1,
            RequestStatus::Fulfilled | RequestStatus::Cancelled => 2,
        }
    }
}

/// Below the minimum or the recommended quantity (a threshold of 0 means none).
pub fn is_low(quantity: i32, minimum: i32, recommended: i32) -> bool {
    (minimum > 0 && quantity < minimum) || (recommended > 0 && quantity < recommended)
}

/// "This week, today or later": from the start of today to the end of Sunday (UTC).
pub fn rest_of_week(now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let start = now.replace_time(Time::MIDNIGHT);
    let days_to_monday = 7 - i64::from(now.weekday().number_days_from_monday());
    (start, start + Duration::days(days_to_monday))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn low_means_below_either_threshold() {
        assert!(is_low(5, 10, 20));
        assert!(is_low(15, 10, 20));
        assert!(!is_low(20, 10, 20));
        assert!(!is_low(0, 0, 0), "no thresholds, never low");
    }

    #[test]
    fn rest_of_week_runs_from_today_to_sunday_night() {
        // 2026-11-25 is a Wednesday.
        let (start, end) = rest_of_week(datetime!(2026-11-25 15:30 UTC));
        assert_eq!(start, datetime!(2026-11-25 00:00 UTC));
        assert_eq!(end, datetime!(2026-11-30 00:00 UTC));
        // On a Sunday the window is that day only.
        let (start, end) = rest_of_week(datetime!(2026-11-29 08:00 UTC));
        assert_eq!(start, datetime!(2026-11-29 00:00 UTC));
        assert_eq!(end, datetime!(2026-11-30 00:00 UTC));
    }

    #[test]
    fn rebuilt_rows_are_stamped_just_before_the_read() {
        let read = datetime!(2026-11-25 15:30 UTC);
        assert_eq!(rebuild_as_of(read), datetime!(2026-11-25 15:29:59 UTC));
        assert_eq!(
            distribution_state_name(DistributionState::Complete),
            "complete"
        );
        assert_eq!(
            distribution_state_name(DistributionState::Unspecified),
            "scheduled"
        );
    }

    #[test]
    fn status_ranks_never_go_back() {
        assert!(RequestStatus::Started.rank() > RequestStatus::Pending.rank());
        assert_eq!(
            RequestStatus::Fulfilled.rank(),
            RequestStatus::Cancelled.rank()
        );
    }
}
